/**
 * Security issue #9, items 6, 7 and 11: state that is not on the log is not trusted (tokens and
 * policy heads), rate limits cannot lock another caller out, and HTTP hygiene (the auth hook on
 * the decoded path, security headers, one error shape). Real SQLite in a temporary directory; the
 * attacker edits the database file directly, as someone with write access to it would.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { DB_FILE, initDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import type { Governance } from '../src/service/governance.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp, type AppOptions } from '../src/server/app.js';
import { canonicalJsonBytes } from '../src/core/canonical-json.js';
import { EXIT, assertError, ensureBuilt, callIn } from './helpers/cli.js';
import { useTempRoot } from './helpers/fixtures.js';

const SETUP = { actor: 'test-setup', role: 'operator' };
const D1 = 'a1'.repeat(32);
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

const root = useTempRoot('authsec');

interface Env {
  readonly dataDir: string;
  app: FastifyInstance;
  log: Log;
  dir: DataDir;
  auth: Authenticator;
  governance: Governance;
  readonly admin: string;
  readonly po: string;
  readonly derm: string;
  readonly options: Partial<AppOptions>;
}

async function openEnv(dataDir: string, options: Partial<AppOptions>): Promise<Pick<Env, 'app' | 'log' | 'dir' | 'auth' | 'governance'>> {
  const { dir, log, gov: governance, auth, close: closeLog } = await root.openServices({ dataDir });
  const app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, ...options });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    await closeLog();
  };
  root.defer(close);
  return { app, log, dir, auth, governance, [CLOSE]: close } as never;
}
const CLOSE = Symbol('close');

async function newEnv(options: Partial<AppOptions> = {}): Promise<Env> {
  const dataDir = root.next();
  await initDataDir(dataDir, { origin: 'authsec.test/log' });
  const e = await openEnv(dataDir, options);
  const admin = (await e.auth.createToken('admin-1', 'admin', SETUP)).token;
  const po = (await e.auth.createToken('po-1', 'privacy_officer', SETUP)).token;
  const derm = (await e.auth.createToken('dr-derm', 'dermatologist', SETUP)).token;
  return { dataDir, ...e, admin, po, derm, options };
}

/** Closes the app, log and store, and opens them again on the same data directory (a restart). */
async function restart(env: Env): Promise<void> {
  await (env as unknown as Record<symbol, () => Promise<void>>)[CLOSE]!();
  Object.assign(env, await openEnv(env.dataDir, env.options));
}

/** The attacker: a second connection to the live SQLite file. */
function withDb<T>(env: Env, fn: (db: Database.Database) => T): T {
  const db = new Database(join(env.dataDir, DB_FILE), { fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function call(app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, token?: string, body?: unknown, extra: Partial<InjectOptions> = {}): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) };
  const o: InjectOptions = { method, url, headers, ...extra };
  if (body !== undefined) {
    o.payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['content-type'] ??= 'application/json';
  }
  if (extra.headers) Object.assign(headers, extra.headers);
  o.headers = headers;
  return Promise.resolve(app.inject(o));
}

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, res.body);
  assert.equal(typeof body.error.message, 'string');
}

const tokenId = (token: string) => /^custos_([0-9a-f]{16})_/.exec(token)![1]!;

// ---- 6. tokens: the log is the source of truth --------------------------------------------

describe('tokens are derived from the log', () => {
  let env: Env;
  before(async () => {
    env = await newEnv();
  });

  it('refuses a token row written straight into the database (401), and verify reports TOKEN_NOT_ON_LOG', async () => {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const row = { id, name: 'intruder', role: 'admin', hash: sha(secret), createdAt: new Date().toISOString(), revokedAt: null };
    withDb(env, (db) => db.prepare("INSERT INTO state (ns, key, value) VALUES ('token', ?, ?)").run(id, JSON.stringify(row)));
    expectError(await call(env.app, 'GET', '/api/v1/tokens', `custos_${id}_${secret}`), 401, 'UNAUTHENTICATED');
    // Nor is it listed: the list is the log's.
    const list = await call(env.app, 'GET', '/api/v1/tokens', env.admin);
    assert.equal(list.statusCode, 200, list.body);
    assert.ok(!(list.json() as { id: string }[]).some((t) => t.id === id));
    const report = await verifyDocuments({ store: env.dir.store });
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.ref]),
      [['TOKEN_NOT_ON_LOG', id]],
    );
    withDb(env, (db) => db.prepare("DELETE FROM state WHERE ns = 'token' AND key = ?").run(id));
    assert.equal((await verifyDocuments({ store: env.dir.store })).ok, true);
  });

  it('keeps a revoked token revoked when revokedAt is cleared in its row; verify reports TOKEN_REVOKED_ON_LOG', async () => {
    const t = await env.auth.createToken('short-lived', 'auditor', SETUP);
    assert.equal((await call(env.app, 'GET', '/api/v1/stats', t.token)).statusCode, 200);
    assert.equal((await call(env.app, 'DELETE', `/api/v1/tokens/${t.record.id}`, env.admin)).statusCode, 204);
    expectError(await call(env.app, 'GET', '/api/v1/stats', t.token), 401, 'UNAUTHENTICATED');
    withDb(env, (db) => {
      const value = JSON.parse(db.prepare("SELECT value FROM state WHERE ns = 'token' AND key = ?").pluck().get(t.record.id) as string) as Record<string, unknown>;
      assert.notEqual(value['revokedAt'], null);
      db.prepare("UPDATE state SET value = ? WHERE ns = 'token' AND key = ?").run(JSON.stringify({ ...value, revokedAt: null }), t.record.id);
    });
    expectError(await call(env.app, 'GET', '/api/v1/stats', t.token), 401, 'UNAUTHENTICATED');
    await restart(env);
    expectError(await call(env.app, 'GET', '/api/v1/stats', t.token), 401, 'UNAUTHENTICATED');
    const report = await verifyDocuments({ store: env.dir.store });
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.ref]),
      [['TOKEN_REVOKED_ON_LOG', t.record.id]],
    );
    // Put the row back as the log has it.
    await env.auth.revokeToken(t.record.id, SETUP).catch(() => undefined);
    withDb(env, (db) => {
      const value = JSON.parse(db.prepare("SELECT value FROM state WHERE ns = 'token' AND key = ?").pluck().get(t.record.id) as string) as Record<string, unknown>;
      db.prepare("UPDATE state SET value = ? WHERE ns = 'token' AND key = ?").run(JSON.stringify({ ...value, revokedAt: new Date().toISOString() }), t.record.id);
    });
    assert.equal((await verifyDocuments({ store: env.dir.store })).ok, true);
  });

  it('refuses a genuine token row whose secret hash or role was replaced; verify reports TOKEN_ROW_MISMATCH', async () => {
    const t = await env.auth.createToken('nurse-9', 'nurse', SETUP);
    const secret = randomBytes(32).toString('base64url');
    const original = withDb(env, (db) => db.prepare("SELECT value FROM state WHERE ns = 'token' AND key = ?").pluck().get(t.record.id) as string);
    withDb(env, (db) => db.prepare("UPDATE state SET value = ? WHERE ns = 'token' AND key = ?").run(JSON.stringify({ ...JSON.parse(original), hash: sha(secret), role: 'admin' }), t.record.id));
    expectError(await call(env.app, 'GET', '/api/v1/tokens', `custos_${t.record.id}_${secret}`), 401, 'UNAUTHENTICATED');
    // The real secret still works, with the role the log gave it (not the row's).
    const me = await call(env.app, 'GET', '/api/v1/me', t.token);
    assert.equal(me.statusCode, 200, me.body);
    assert.equal(me.json().role, 'nurse');
    const report = await verifyDocuments({ store: env.dir.store });
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.ref]),
      [['TOKEN_ROW_MISMATCH', t.record.id]],
    );
    withDb(env, (db) => db.prepare("UPDATE state SET value = ? WHERE ns = 'token' AND key = ?").run(original, t.record.id));
    assert.equal((await verifyDocuments({ store: env.dir.store })).ok, true);
  });

  it('custos verify (the CLI) reports a forged token row with its stable code and exits 4', async () => {
    ensureBuilt();
    const other = await newEnv();
    const id = randomBytes(8).toString('hex');
    const row = { id, name: 'intruder', role: 'admin', hash: sha('x'), createdAt: new Date().toISOString(), revokedAt: null };
    withDb(other, (db) => db.prepare("INSERT INTO state (ns, key, value) VALUES ('token', ?, ?)").run(id, JSON.stringify(row)));
    const r = await callIn(other.dataDir, ['--json', 'verify']);
    assertError(r, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
    const out = JSON.parse(r.stdout) as { ok: boolean; documents: { findings: { kind: string; ref: string }[] } };
    assert.equal(out.ok, false);
    assert.deepEqual(
      out.documents.findings.map((f) => [f.kind, f.ref]),
      [['TOKEN_NOT_ON_LOG', id]],
    );
  });

  it('a token revoked by another process stops working at once', async () => {
    const t = await env.auth.createToken('other-proc', 'auditor', SETUP);
    assert.equal((await call(env.app, 'GET', '/api/v1/stats', t.token)).statusCode, 200);
    // A second log over the same file, as `custos token revoke` would open.
    const other = await openLog(env.dataDir);
    try {
      await new Authenticator({ log: other.log }).revokeToken(t.record.id, SETUP);
    } finally {
      await other.log.close();
      await other.dir.store.close();
    }
    expectError(await call(env.app, 'GET', '/api/v1/stats', t.token), 401, 'UNAUTHENTICATED');
  });
});

// ---- 6. policy heads: derived from the log --------------------------------------------------

describe('policy heads are derived from the log', () => {
  it('a forged head with a forged document does not re-permit a revoked policy after a restart', async () => {
    const env = await newEnv();
    const policy = { policyId: pid('p-forged'), subject: 'patient-1', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] };
    const created = await call(env.app, 'POST', '/api/v1/consents', env.po, policy);
    assert.equal(created.statusCode, 201, created.body);
    const revoked = await call(env.app, 'POST', `/api/v1/consents/${pid('p-forged')}/revoke`, env.po);
    assert.equal(revoked.statusCode, 201, revoked.body);
    const access = { purpose: 'TREAT', policyId: pid('p-forged'), artifact: { uri: 's3://b/k', digest: D1 } };
    expectError(await call(env.app, 'POST', '/api/v1/access', env.derm, access), 403, 'CONSENT_DENIED');

    // The attacker writes version 3, not revoked, as a document with its true hash, and points the head at it.
    const v2 = revoked.json().policy as Record<string, unknown>;
    const forged = { ...v2, version: 3, revoked: false, previous: revoked.json().hash };
    const bytes = canonicalJsonBytes(forged);
    const hash = sha(bytes);
    withDb(env, (db) => {
      db.prepare('INSERT INTO documents (hash, kind, data) VALUES (?, ?, ?)').run(hash, 'consent-policy', bytes);
      db.prepare("UPDATE state SET value = ? WHERE ns = 'policy' AND key = ?").run(JSON.stringify({ version: 3, hash, index: revoked.json().event.index }), pid('p-forged'));
    });
    await restart(env);
    const size = env.log.size;
    const res = await call(env.app, 'POST', '/api/v1/access', env.derm, access);
    expectError(res, 403, 'CONSENT_DENIED');
    assert.equal(res.json().decision.reason, 'REVOKED');
    assert.equal(res.json().decision.policyVersion, 2);
    assert.equal(env.log.size, size + 1);
    // The read-only check agrees, and verify names both defects.
    const check = await call(env.app, 'POST', `/api/v1/consents/${pid('p-forged')}/check`, env.derm, { purpose: 'TREAT', role: 'dermatologist' });
    assert.equal(check.json().effect, 'deny', check.body);
    const kinds = (await verifyDocuments({ store: env.dir.store })).findings.map((f) => f.kind).sort();
    assert.deepEqual(kinds, ['DOCUMENT_UNREFERENCED', 'POLICY_HEAD_MISMATCH']);
  });
});

describe('policy heads are derived from the log (rollback)', () => {
  it('a head row rolled back to the genuine version 1 does not re-permit a revoked policy after a restart', async () => {
    const env = await newEnv();
    const policy = { policyId: pid('p-rolled'), subject: 'patient-2', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] };
    const created = await call(env.app, 'POST', '/api/v1/consents', env.po, policy);
    assert.equal(created.statusCode, 201, created.body);
    const v1 = withDb(env, (db) => db.prepare("SELECT value FROM state WHERE ns = 'policy' AND key = ?").pluck().get(pid('p-rolled')) as string);
    assert.equal((await call(env.app, 'POST', `/api/v1/consents/${pid('p-rolled')}/revoke`, env.po)).statusCode, 201);
    withDb(env, (db) => db.prepare("UPDATE state SET value = ? WHERE ns = 'policy' AND key = ?").run(v1, pid('p-rolled')));
    await restart(env);
    const access = { purpose: 'TREAT', policyId: pid('p-rolled'), artifact: { uri: 's3://b/k2', digest: D1 } };
    const res = await call(env.app, 'POST', '/api/v1/access', env.derm, access);
    expectError(res, 403, 'CONSENT_DENIED');
    assert.equal(res.json().decision.reason, 'REVOKED');
    // The versions shown start from the log's head (version 2, revoked), not the row's.
    const shown = await call(env.app, 'GET', `/api/v1/consents/${pid('p-rolled')}`, env.po);
    assert.equal(shown.statusCode, 200, shown.body);
    assert.deepEqual(
      (shown.json() as { versions: { version: number }[] }).versions.map((x) => x.version),
      [1, 2],
    );
  });
});

// ---- 7. rate limits: no lockout ---------------------------------------------------------------

describe('rate limits', () => {
  it('a client flooding a token id with wrong secrets does not lock out the real holder', async () => {
    const env = await newEnv({ rateLimitPerMinute: 3, authFailuresPerMinute: 3 });
    const forged = `custos_${tokenId(env.admin)}_${'A'.repeat(43)}`;
    // Public routes do not authenticate, so a header naming the victim's id costs the attacker nothing.
    for (const url of ['/healthz', '/checkpoint', '/api/v1/stats']) {
      for (let i = 0; i < 5; i++) {
        const r = await call(env.app, 'GET', url, forged, undefined, { remoteAddress: '203.0.113.66' });
        assert.ok([200, 401, 404, 429].includes(r.statusCode), r.body);
      }
    }
    const real = await call(env.app, 'GET', '/api/v1/stats', env.admin, undefined, { remoteAddress: '198.51.100.5' });
    assert.equal(real.statusCode, 200, real.body);
  });

  it('limits failed authentication per client address (429), and not other addresses', async () => {
    const env = await newEnv({ authFailuresPerMinute: 3 });
    for (let i = 0; i < 3; i++) expectError(await call(env.app, 'GET', '/api/v1/stats', 'nope', undefined, { remoteAddress: '203.0.113.7' }), 401, 'UNAUTHENTICATED');
    expectError(await call(env.app, 'GET', '/api/v1/stats', 'nope', undefined, { remoteAddress: '203.0.113.7' }), 429, 'RATE_LIMITED');
    expectError(await call(env.app, 'GET', '/api/v1/stats', undefined, undefined, { remoteAddress: '203.0.113.7' }), 429, 'RATE_LIMITED');
    expectError(await call(env.app, 'GET', '/api/v1/stats', 'nope', undefined, { remoteAddress: '203.0.113.8' }), 401, 'UNAUTHENTICATED');
  });

  it('an encoded entry-tile path (/tile/%65ntries/000) counts failed authentications and ends in 429 like any other', async () => {
    const env = await newEnv({ authFailuresPerMinute: 3 });
    const ip = { remoteAddress: '203.0.113.9' };
    for (let i = 0; i < 3; i++) expectError(await call(env.app, 'GET', '/tile/%65ntries/000', 'nope', undefined, ip), 401, 'UNAUTHENTICATED');
    expectError(await call(env.app, 'GET', '/tile/%65ntries/000', 'nope', undefined, ip), 429, 'RATE_LIMITED');
    expectError(await call(env.app, 'GET', '/tile/%65ntries/000', env.admin, undefined, ip), 429, 'RATE_LIMITED');
    // The same limit: failures on the tile route count for the API too, and the reverse.
    expectError(await call(env.app, 'GET', '/api/v1/stats', 'nope', undefined, ip), 429, 'RATE_LIMITED');
    const other = { remoteAddress: '203.0.113.10' };
    for (let i = 0; i < 3; i++) expectError(await call(env.app, 'GET', '/api/v1/stats', 'nope', undefined, other), 401, 'UNAUTHENTICATED');
    expectError(await call(env.app, 'GET', '/tile/%65ntries/000', 'nope', undefined, other), 429, 'RATE_LIMITED');
  });

  it('limits authenticated requests per verified identity, whatever the address', async () => {
    const env = await newEnv({ rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) assert.equal((await call(env.app, 'GET', '/api/v1/stats', env.admin, undefined, { remoteAddress: `198.51.100.${i + 1}` })).statusCode, 200);
    expectError(await call(env.app, 'GET', '/api/v1/stats', env.admin, undefined, { remoteAddress: '198.51.100.99' }), 429, 'RATE_LIMITED');
    assert.equal((await call(env.app, 'GET', '/api/v1/stats', env.po, undefined, { remoteAddress: '198.51.100.1' })).statusCode, 200);
  });
});

// ---- 11. HTTP hygiene ---------------------------------------------------------------------------

describe('HTTP hygiene', () => {
  let env: Env;
  before(async () => {
    env = await newEnv();
  });

  it('authenticates percent-encoded /api paths before any validation (401, no details)', async () => {
    for (const url of ['/%61pi/v1/consents', '/api/v1/%63onsents', '/%61%70%69/v1/consents']) {
      const res = await call(env.app, 'POST', url, undefined, { nonsense: true });
      expectError(res, 401, 'UNAUTHENTICATED');
      assert.equal(res.json().error.details, undefined);
    }
    expectError(await call(env.app, 'GET', '/%6detrics'), 401, 'UNAUTHENTICATED');
    expectError(await call(env.app, 'GET', '/%61pi/v1/no-such-route'), 401, 'UNAUTHENTICATED');
  });

  it('sends security headers on API, static, error and public responses', async () => {
    const responses = [
      await call(env.app, 'GET', '/api/v1/me', env.admin),
      await call(env.app, 'GET', '/api/v1/me'),
      await call(env.app, 'GET', '/'),
      await call(env.app, 'GET', '/ui/app.js'),
      await call(env.app, 'GET', '/docs'),
      await call(env.app, 'GET', '/healthz'),
      await call(env.app, 'GET', '/no-such-thing'),
    ];
    for (const r of responses) {
      assert.equal(r.headers['x-content-type-options'], 'nosniff', r.body);
      assert.equal(r.headers['x-frame-options'], 'DENY');
      assert.equal(r.headers['referrer-policy'], 'no-referrer');
      const csp = String(r.headers['content-security-policy']);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, /default-src '(self|none)'/);
      assert.doesNotMatch(csp, /script-src[^;]*unsafe/);
    }
  });

  it('GET /api/v1/me answers any authenticated caller, as documented', async () => {
    const t = await env.auth.createToken('ops-1', 'admin', SETUP);
    assert.equal((await call(env.app, 'GET', '/api/v1/me', t.token)).statusCode, 200);
  });

  it('415 UNSUPPORTED_MEDIA_TYPE for a text/plain body, nothing written', async () => {
    const size = env.log.size;
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.po, '{"policyId":"x"}', { headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectError(await call(env.app, 'POST', '/api/v1/consents/p/revoke', env.po, 'hello', { headers: { 'content-type': 'text/plain' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(env.log.size, size);
  });

  it('router errors use the one error shape: bad URL encoding, unknown method', async () => {
    expectError(await call(env.app, 'GET', '/ui/%zz'), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'PUT', '/api/v1/consents', env.po, {}), 404, 'ROUTE_NOT_FOUND');
    const r = await env.app.inject({ method: 'PROPFIND' as never, url: '/healthz' });
    assert.ok(r.statusCode === 404 || r.statusCode === 405, r.body);
    assert.equal(typeof (r.json() as { error: { code: string } }).error.code, 'string', r.body);
  });
});
