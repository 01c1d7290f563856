// The API client: bearer token from sessionStorage, JSON errors turned into ApiError.

const TOKEN_KEY = 'custos.token';

export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    super(e.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = e.code ?? `HTTP_${status}`;
    this.details = e.details;
    this.body = body;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Called on any 401: the token is gone or revoked. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * Calls the API. `query` values that are undefined or '' are left out.
 * @throws {ApiError}
 */
export async function api(path, { method = 'GET', query, body, token = getToken(), silent401 = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { error: { code: 'NETWORK_ERROR', message: `cannot reach the server: ${err instanceof Error ? err.message : err}` } });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: { code: `HTTP_${res.status}`, message: text.slice(0, 200) } };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !silent401) onUnauthorized(err);
    throw err;
  }
  return data;
}
