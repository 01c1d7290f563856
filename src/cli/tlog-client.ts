/**
 * A small HTTP client for the public C2SP tlog-tiles endpoints of a Custos server (`/checkpoint`,
 * hash tiles, entry bundles), for `custos monitor`. Node's global fetch, a timeout per request,
 * http(s) only, and no redirect to another origin.
 * @module
 */
import { ValidationError, VerificationError } from '../core/errors.js';
import { tilePath, type TileRef } from '../core/merkle/tile-proof.js';

/** Options of {@link TlogClient}. */
export interface TlogClientOptions {
  /** Per-request timeout in ms (default 30 s). */
  readonly timeoutMs?: number;
  /** A bearer token (sent for entry bundles only). */
  readonly token?: string;
  /** Largest response accepted, in bytes (default 64 MiB). */
  readonly maxBytes?: number;
}

const MAX_REDIRECTS = 3;

function unreachable(message: string, details?: Record<string, unknown>): never {
  throw new VerificationError('LOG_UNREACHABLE', message, details ? { details } : undefined);
}

/** Reads one log's public endpoints. */
export class TlogClient {
  readonly base: URL;
  readonly #timeoutMs: number;
  readonly #token: string | undefined;
  readonly #maxBytes: number;
  /** Requests made. */
  requests = 0;

  constructor(url: string, options: TlogClientOptions = {}) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new ValidationError('VALIDATION_FAILED', `not a URL: ${JSON.stringify(url)}`, { issues: [{ path: 'url', message: 'expected http(s)://...' }] });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ValidationError('VALIDATION_FAILED', 'the log URL must be http:// or https://', { issues: [{ path: 'url', message: 'expected http(s)://...' }] });
    }
    if (base.username || base.password) throw new ValidationError('VALIDATION_FAILED', 'the log URL must not carry credentials (use --token)');
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#token = options.token;
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  }

  /** GET `path` relative to the base URL; the body, or undefined on 404. */
  async get(path: string, auth = false): Promise<Buffer | undefined> {
    let url = new URL(path, this.base);
    for (let hop = 0; ; hop++) {
      this.requests++;
      let res: Response;
      try {
        res = await fetch(url, {
          redirect: 'manual',
          signal: AbortSignal.timeout(this.#timeoutMs),
          headers: { accept: '*/*', ...(auth && this.#token ? { authorization: `Bearer ${this.#token}` } : {}) },
        });
      } catch (err) {
        const e = err as Error;
        unreachable(`GET ${url.href} failed: ${e.name === 'TimeoutError' ? `no answer within ${this.#timeoutMs} ms` : ((e.cause as Error | undefined)?.message ?? e.message)}`, { url: url.href });
      }
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        const loc = res.headers.get('location');
        const next = loc === null ? undefined : new URL(loc, url);
        // Same origin only: a redirect elsewhere could serve another log's view to this monitor.
        if (!next || next.origin !== this.base.origin || hop >= MAX_REDIRECTS) {
          unreachable(`GET ${url.href} redirected ${next ? `to ${next.origin}` : 'without a location'}: refused (only same-origin redirects are followed)`, { url: url.href });
        }
        url = next;
        continue;
      }
      if (res.status === 404) {
        await res.body?.cancel();
        return undefined;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        unreachable(`GET ${url.href} answered HTTP ${res.status}`, { url: url.href, status: res.status });
      }
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > this.#maxBytes) unreachable(`GET ${url.href}: response too large (${declared} bytes)`);
      const body = Buffer.from(await res.arrayBuffer());
      if (body.length > this.#maxBytes) unreachable(`GET ${url.href}: response too large (${body.length} bytes)`);
      return body;
    }
  }

  /** The signed checkpoint note. */
  async checkpoint(): Promise<string> {
    const body = await this.get('checkpoint');
    if (!body) unreachable(`GET ${new URL('checkpoint', this.base).href}: the log serves no checkpoint (404)`);
    return body.toString('utf8');
  }

  /** A hash tile (exactly as served). */
  async tile(t: TileRef): Promise<Buffer> {
    const path = tilePath(t.level, t.index, t.width);
    const body = await this.get(path);
    if (!body) throw new VerificationError('LOG_TILES_INVALID', `the log serves no ${path} though its checkpoint covers it`, { details: { tile: path } });
    return body;
  }

  /** An entry bundle (needs a token unless the server publishes entries). */
  async entryBundle(index: number, width: number): Promise<Buffer> {
    const path = tilePath('entries', index, width);
    const body = await this.get(path, true);
    if (!body) throw new VerificationError('LOG_TILES_INVALID', `the log serves no ${path} though its checkpoint covers it`, { details: { tile: path } });
    return body;
  }
}
