/**
 * The permission matrix of the HTTP API, on a real server (loopback port, real SQLite log).
 *
 * Every authenticated route of the route table (read from /openapi.json, plus the entry-bundle
 * tile, the receipt- and bundle-opening variants and the consent attestation) × every role of the default role table, plus anonymous,
 * an invalid token, and a token whose role is not in the table. Expectations come from the role
 * table and the route's `x-custos-permission`, so a new route or role is covered without editing
 * this file:
 * - no or an invalid credential: 401 UNAUTHENTICATED;
 * - a role lacking the route's permission: 403 FORBIDDEN naming the role and the permission;
 * - a role holding it: neither 401 nor 403, and never a 5xx (400 for a missing body is fine).
 * Each route is also requested percent-encoded (/%61pi/...), as HEAD when it is a GET, and, when it
 * is a POST, with a malformed or non-JSON body: the permission is decided before the body is read.
 *
 * Under /fhir an error is an OperationOutcome: its code and permission are read from
 * `issue[0].details.coding` (the Custos error and permission systems).
 *
 * It also checks that the route table of docs/http-api.md lists every route of /openapi.json
 * with the same permission, and that every route Fastify serves under /api, /fhir or /metrics is in
 * /openapi.json (a route registered beside the route table would escape this matrix).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { pid } from './helpers/policy-ids.js';
import { DEFAULT_ROLES, type Permission } from '../src/core/vocabulary.js';
import { Authenticator } from '../src/server/auth.js';
import { CS } from '../src/fhir/uris.js';
import { createServerEnv, SETUP_ACTOR, type ServerEnv } from './helpers/server-env.js';

const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } };
const ANY = 'any authenticated caller';

interface OpenApi {
  paths: Record<string, Record<string, { security?: unknown[]; 'x-custos-permission'?: string }>>;
}

/** One row of the matrix: a request and the permissions it needs (all of them). */
interface Case {
  readonly method: string;
  readonly path: string; // the OpenAPI path, e.g. /api/v1/receipts/{index}
  readonly url: string; // the concrete URL sent
  readonly needs: readonly Permission[];
  /** A JSON body that selects a variant needing more than the route's permission (sent as is, no malformed variants). */
  readonly body?: unknown;
}

/** A caller: its Authorization header (none for anonymous) and its permissions (null: must get 401). */
interface Caller {
  readonly name: string;
  readonly header: string | undefined;
  readonly permissions: ReadonlySet<string> | null;
}

describe('permission matrix: every route × every role, anonymous, invalid and unknown-role tokens', () => {
  let env: ServerEnv;
  let address: string;
  let openapi: OpenApi;
  let receiptIndex: number;
  const callers: Caller[] = [];

  before(async () => {
    // The matrix sends several hundred refused requests from one address within a minute: the
    // per-address limit on failed authentications (its own tests: auth-security.test.ts) is raised
    // here, so that every row gets its 401 or 403 rather than 429 once the route table grows.
    env = await createServerEnv({ authFailuresPerMinute: 100_000 });
    address = await env.app.listen({ host: '127.0.0.1', port: 0 });
    // A token for every role of the default table (the env has one per test role).
    for (const role of Object.keys(DEFAULT_ROLES)) {
      const token = (env.tokens as Record<string, string>)[role] ?? (await env.auth.createToken(`perm-${role}`, role, SETUP_ACTOR)).token;
      callers.push({ name: role, header: `Bearer ${token}`, permissions: new Set(DEFAULT_ROLES[role]) });
    }
    // A token whose role is not in the server's table (made under a table that had it, e.g. a role
    // later removed from the configuration): authenticates, holds no permission.
    const wider = new Authenticator({ log: env.log, roles: { ...DEFAULT_ROLES, retired_role: ['read', 'tokens', 'erase'] } });
    const ghost = await wider.createToken('perm-ghost', 'retired_role', SETUP_ACTOR);
    callers.push({ name: 'role not in the table', header: `Bearer ${ghost.token}`, permissions: new Set() });
    callers.push({ name: 'anonymous', header: undefined, permissions: null });
    callers.push({ name: 'invalid token', header: `Bearer custos_0123456789abcdef_${'A'.repeat(43)}`, permissions: null });
    // A receipt to read (and open), so the receipt routes reach their permission checks.
    const g = env.governance;
    const po = { id: 'po-1', role: 'privacy_officer' };
    await g.createConsent({ policyId: pid('perm-open'), subject: 'patient-perm', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, po);
    const inf = await g.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: pid('perm-open'),
      input: { uri: 's3://clinic/p.jpg', digest: D1 },
      outputs: [{ name: 'r', uri: 's3://clinic/p.json', digest: D2 }],
      pipeline: PIPELINE,
      model: MODEL,
    });
    receiptIndex = inf.event.index;
    openapi = (await (await fetch(`${address}/openapi.json`)).json()) as OpenApi;
  });

  after(async () => {
    await env.close();
  });

  /** The authenticated routes of /openapi.json (those with a bearer security requirement). */
  function apiRoutes(): { method: string; path: string; permission: string }[] {
    const out: { method: string; path: string; permission: string }[] = [];
    for (const [path, methods] of Object.entries(openapi.paths)) {
      for (const [m, op] of Object.entries(methods)) {
        if (!op.security || op.security.length === 0) continue;
        assert.equal(typeof op['x-custos-permission'], 'string', `${m.toUpperCase()} ${path} has no x-custos-permission`);
        out.push({ method: m.toUpperCase(), path, permission: op['x-custos-permission']! });
      }
    }
    return out;
  }

  function concrete(path: string): string {
    return path.replace(/\{([A-Za-z]+)\}/g, (_m, name: string) => {
      if (name === 'policyId') return pid('perm-no-such-policy');
      if (name === 'index') return String(receiptIndex);
      if (name === 'id') return '0123456789abcdef';
      return 'x';
    });
  }

  function cases(): Case[] {
    const out: Case[] = apiRoutes().map((r) => ({
      method: r.method,
      path: r.path,
      url: concrete(r.path),
      needs: r.permission === ANY ? [] : [r.permission as Permission],
    }));
    // Routes that are not rows of the table but are guarded all the same.
    out.push({ method: 'GET', path: '/tile/entries/{n}', url: '/tile/entries/000', needs: ['read'] });
    out.push({ method: 'GET', path: '/api/v1/receipts/{index}?open=true', url: `/api/v1/receipts/${receiptIndex}?open=true&purpose=TREAT`, needs: ['receipts', 'commitments:open'] });
    out.push({ method: 'GET', path: '/api/v1/bundles/{index}?open=true', url: `/api/v1/bundles/${receiptIndex}?open=true&purpose=TREAT`, needs: ['receipts', 'commitments:open'] });
    // A consent attestation carries the policy's purposes and roles: it needs consent:read too.
    out.push({
      method: 'POST',
      path: '/api/v1/attestations {kind:"consent"}',
      url: '/api/v1/attestations',
      needs: ['receipts', 'consent:read'],
      body: { kind: 'consent', policyId: pid('perm-open') },
    });
    return out;
  }

  it('covers every route of /openapi.json: every permission named is one of the role table’s', () => {
    const routes = apiRoutes();
    const all = cases();
    // The count comes from /openapi.json itself: a new route is a new row of the matrix.
    assert.equal(all.length, routes.length + 4);
    assert.ok(routes.length >= 20, `only ${routes.length} authenticated routes in /openapi.json`);
    const known = new Set<string>(Object.values(DEFAULT_ROLES).flat());
    for (const r of routes) if (r.permission !== ANY) assert.ok(known.has(r.permission), `${r.method} ${r.path}: permission ${r.permission} is held by no role`);
  });

  it('serves no route under /api, /fhir or /metrics that /openapi.json does not list', () => {
    const documented = new Set(apiRoutes().map((r) => `${r.method} ${r.path.replace(/\{[A-Za-z]+\}/g, '{}')}`));
    const served = servedRoutes(env.app.printRoutes({ commonPrefix: false, includeMeta: false }));
    const api = served.filter((r) => r.path.startsWith('/api') || r.path === '/metrics' || (r.path.startsWith('/fhir/') && r.path !== '/fhir/metadata'));
    assert.ok(api.length >= documented.size, `parsed only ${api.length} served API routes`);
    for (const r of api) assert.ok(documented.has(`${r.method} ${r.path.replace(/:[A-Za-z]+/g, '{}')}`), `${r.method} ${r.path} is served but not in /openapi.json`);
  });

  it('gives 401 without a valid credential, 403 FORBIDDEN exactly when the role lacks the permission, and no 5xx', async () => {
    const problems: string[] = [];
    let requests = 0;
    for (const c of cases()) {
      // The request as documented; the same path percent-encoded (the router decodes it); HEAD for
      // GET (Fastify adds it); for POST a malformed JSON body (permission before parsing).
      const variants: { method: string; url: string; body?: string; contentType?: string }[] =
        c.body !== undefined
          ? [{ method: c.method, url: c.url, body: JSON.stringify(c.body), contentType: 'application/json' }]
          : [
              { method: c.method, url: c.url },
              { method: c.method, url: c.url.replace(/^\/(.)/, (_m, ch: string) => `/%${ch.charCodeAt(0).toString(16)}`) },
            ];
      if (c.method === 'GET') variants.push({ method: 'HEAD', url: c.url });
      if (c.method === 'POST' && c.body === undefined)
        variants.push({ method: 'POST', url: c.url, body: '{"a":', contentType: 'application/json' }, { method: 'POST', url: c.url, body: 'x', contentType: 'text/plain' });
      for (const v of variants) {
        for (const who of callers) {
          requests++;
          const headers: Record<string, string> = who.header ? { authorization: who.header } : {};
          if (v.contentType) headers['content-type'] = v.contentType;
          const res = await fetch(`${address}${v.url}`, { method: v.method, headers, ...(v.body !== undefined ? { body: v.body } : {}) });
          const text = await res.text();
          const label = `${who.name}: ${v.method} ${v.url}${v.body !== undefined ? ` (${v.contentType} ${v.body})` : ''} -> ${res.status} ${text.slice(0, 160)}`;
          // HEAD answers have no body: only the status is checked.
          const head = v.method === 'HEAD';
          const code = res.status >= 400 ? errorOf(safeJson(text)) : undefined;
          if (res.status >= 500) problems.push(`5xx: ${label}`);
          else if (who.permissions === null) {
            if (res.status !== 401 || (!head && code?.code !== 'UNAUTHENTICATED')) problems.push(`expected 401 UNAUTHENTICATED: ${label}`);
          } else {
            const missing = c.needs.filter((p) => !who.permissions!.has(p));
            if (missing.length > 0) {
              if (res.status !== 403 || (!head && code?.code !== 'FORBIDDEN')) problems.push(`expected 403 FORBIDDEN (lacks ${missing.join(', ')}): ${label}`);
              else if (!head && !missing.includes(code!.details?.['permission'] as Permission))
                problems.push(`403 names permission ${String(code!.details?.['permission'])}, not one it lacks (${missing.join(', ')}): ${label}`);
            } else if (res.status === 401 || res.status === 403) problems.push(`holds ${c.needs.join(' + ') || 'a credential'} but refused: ${label}`);
          }
        }
      }
    }
    assert.ok(requests >= 40 * callers.length, `only ${requests} requests`);
    assert.deepEqual(problems, []);
  });

  it('docs/http-api.md lists every route of /openapi.json with the same permission', () => {
    const md = readFileSync(new URL('../docs/http-api.md', import.meta.url), 'utf8');
    const rows = docRoutes(md);
    assert.ok(rows.length > 20, `parsed only ${rows.length} routes from the docs table`);
    const key = (method: string, path: string) => `${method} ${path.replace(/\{[A-Za-z]+\}|:[A-Za-z]+/g, '{}')}`;
    const docs = new Map<string, Set<string>>();
    for (const r of rows) {
      const k = key(r.method, r.path) + (r.query.includes('open=true') ? '?open=true' : '');
      (docs.get(k) ?? docs.set(k, new Set()).get(k)!).add(r.permission);
    }
    const missing: string[] = [];
    for (const r of apiRoutes()) {
      const perms = docs.get(key(r.method, r.path));
      if (!perms) missing.push(`${r.method} ${r.path} is not in the docs table`);
      else if (!perms.has(r.permission)) missing.push(`${r.method} ${r.path}: docs say ${[...perms].join(' / ')}, /openapi.json says ${r.permission}`);
    }
    // The guarded variants outside the table.
    if (!docs.get(`${key('GET', '/api/v1/receipts/{}')}?open=true`)?.has('receipts + commitments:open')) missing.push('the receipt-opening variant is not documented as receipts + commitments:open');
    if (!docs.get(`${key('GET', '/api/v1/bundles/{}')}?open=true`)?.has('receipts + commitments:open')) missing.push('the bundle-opening variant is not documented as receipts + commitments:open');
    if (![...(docs.get(key('GET', '/tile/entries/<N>[.p/<W>]')) ?? [])].some((p) => p.startsWith('read'))) missing.push('/tile/entries is not documented as needing read');
    // And no documented API route that the server does not have.
    const served = new Set(apiRoutes().map((r) => key('X', r.path)));
    for (const r of rows) if (r.path.startsWith('/api/') && !served.has(key('X', r.path))) missing.push(`docs list ${r.method} ${r.path}, which /openapi.json does not have`);
    assert.deepEqual(missing, []);
  });
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Method and path of each route in Fastify's printRoutes({ commonPrefix: false }) tree. */
/** The code and details of an error body: `{ error: { code, details } }`, or a FHIR OperationOutcome (routes under /fhir). */
function errorOf(body: unknown): { code?: string; details?: Record<string, unknown> } | undefined {
  const b = body as { error?: { code?: string; details?: Record<string, unknown> }; resourceType?: string; issue?: { details?: { coding?: { system?: string; code?: string }[] } }[] } | undefined;
  if (b?.resourceType === 'OperationOutcome') {
    const coding = b.issue?.[0]?.details?.coding ?? [];
    const permission = coding.find((c) => c.system === CS.permission)?.code;
    return { code: coding.find((c) => c.system === CS.error)?.code, details: permission ? { permission } : {} };
  }
  return b?.error;
}

function servedRoutes(tree: string): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  // Lines look like "├── /api/v1/tokens (GET, HEAD, POST)"; nested lines carry the rest of the path.
  const stack: { depth: number; seg: string }[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([│ ├└─]*)(\S.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.replace(/\s+$/, ''));
    if (!m) continue;
    const depth = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    stack.push({ depth, seg: m[2]! });
    if (m[3]) {
      const path = stack.map((s) => s.seg).join('');
      for (const method of m[3].split(', ')) if (method !== 'HEAD') out.push({ method, path });
    }
  }
  return out;
}

/** The rows of the route table of docs/http-api.md, one per method × path (query kept apart). */
function docRoutes(md: string): { method: string; path: string; query: string; permission: string }[] {
  const out: { method: string; path: string; query: string; permission: string }[] = [];
  const lines = md.split('\n');
  const start = lines.findIndex((l) => /^\| method \| path \| permission \|/.test(l));
  assert.ok(start >= 0, 'docs/http-api.md has no "| method | path | permission |" table');
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    const [methods, paths, permission] = [cells[0]!, cells[1]!, cells[2]!];
    for (const raw of [...paths.matchAll(/`([^`]+)`/g)].map((x) => x[1]!)) {
      const [p, query = ''] = raw.split('?') as [string, string?];
      // `/api/v1/tokens[/:id]`: both paths.
      const expanded = /\[\/:[A-Za-z]+\]$/.test(p) ? [p.replace(/\[(\/:[A-Za-z]+)\]$/, ''), p.replace(/\[(\/:[A-Za-z]+)\]$/, '$1')] : [p];
      for (const path of expanded) for (const method of methods.split(/,\s*/)) out.push({ method, path, query, permission });
    }
  }
  return out;
}
