/**
 * Security issue #9, defect 6 (review follow-up): tokens and policy heads are derived only from
 * entries a checkpoint signed by the log's own key covers, whose bytes hash to its root. The
 * attacker has write access to the SQLite file but not the signing key: they insert entry rows
 * or edit entry bytes directly. Real SQLite in a temporary directory, the real app in process.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { DB_FILE, initDataDir, openDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import { verifyLog } from '../src/log/verify-log.js';
import { Governance } from '../src/service/governance.js';
import { tokenSecretDigest } from '../src/service/tokens.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp } from '../src/server/app.js';
import { toHttpError } from '../src/server/http-errors.js';
import { encodeEntry, formatEntryTime, prepareEvent } from '../src/core/entry.js';
import { hasCode } from '../src/core/errors.js';
import { pid } from './helpers/policy-ids.js';
import { useTempRoot } from './helpers/fixtures.js';

const SETUP = { actor: 'test-setup', role: 'operator' };
const D1 = 'a1'.repeat(32);
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

const root = useTempRoot('derived');

interface Server {
  readonly app: FastifyInstance;
  readonly log: Log;
  readonly dir: DataDir;
  readonly auth: Authenticator;
  close(): Promise<void>;
}

async function open(dataDir: string): Promise<Server> {
  // The authenticator and the overlay share one verified scan (as `custos serve` opens them).
  const { dir, log, auth, gov: governance, close: closeLog } = await root.openServices({ dataDir });
  let app: FastifyInstance | undefined;
  const close = async () => {
    await app?.close();
    await closeLog();
  };
  try {
    app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false });
    root.defer(close);
    return { app, log, dir, auth, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function fresh(): Promise<{ dataDir: string; s: Server; admin: string; po: string; derm: string }> {
  const dataDir = root.next();
  await initDataDir(dataDir, { origin: 'derived.test/log' });
  const s = await open(dataDir);
  const admin = (await s.auth.createToken('admin-1', 'admin', SETUP)).token;
  const po = (await s.auth.createToken('po-1', 'privacy_officer', SETUP)).token;
  const derm = (await s.auth.createToken('dr-derm', 'dermatologist', SETUP)).token;
  return { dataDir, s, admin, po, derm };
}

function withDb<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, DB_FILE), { fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function call(app: FastifyInstance, method: 'GET' | 'POST', url: string, token?: string, body?: unknown): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return Promise.resolve(app.inject({ method, url, headers, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) }));
}

// The attacker rewrites one tail row's bytes in place (these logs are below 256 entries: all tail rows).
function editEntry(dataDir: string, type: string, edit: (text: string) => string): void {
  withDb(dataDir, (db) => {
    const rows = db.prepare('SELECT idx, data FROM entry_tail ORDER BY idx').all() as { idx: number; data: Buffer }[];
    const row = rows.find((r) => r.data.toString('utf8').includes(`"type":"${type}"`));
    assert.ok(row, `no ${type} entry in the tail`);
    const text = edit(row.data.toString('utf8'));
    assert.notEqual(text, row.data.toString('utf8'));
    assert.equal(db.prepare('UPDATE entry_tail SET data = ? WHERE idx = ?').run(Buffer.from(text, 'utf8'), row.idx).changes, 1);
  });
}

async function assertIntegrityRefusal(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(hasCode(err, 'LOG_INTEGRITY'), `expected LOG_INTEGRITY, got ${String(err)}`);
    assert.equal(toHttpError(err).status, 503);
    return true;
  });
}

async function verifyFindings(dataDir: string): Promise<string[]> {
  const d = await openDataDir(dataDir, { readonly: true });
  try {
    const report = await verifyLog({ store: d.store, verifiers: [d.verifier], origin: d.origin });
    assert.equal(report.ok, false);
    return [...new Set(report.findings.map((f) => f.kind))].sort();
  } finally {
    await d.store.close();
  }
}

describe('attack 1: a forged TOKEN_CREATED row at the next index', () => {
  it('is not covered by a signed checkpoint: the token is refused (401), live and after a restart, and the log signs nothing over it', async () => {
    const { dataDir, s, admin } = await fresh();
    assert.equal((await call(s.app, 'GET', '/api/v1/stats', admin)).statusCode, 200);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const payload = { tokenId: id, tokenName: 'mallory', tokenRole: 'admin', secretDigest: tokenSecretDigest(sha(secret)), actor: 'admin-1', role: 'admin' };
    withDb(dataDir, (db) => {
      const next = (db.prepare('SELECT MAX(idx) FROM entry_tail').pluck().get() as number) + 1;
      const text = encodeEntry(next, prepareEvent('TOKEN_CREATED', payload), formatEntryTime(Date.now()));
      db.prepare('INSERT INTO entry_tail (idx, data) VALUES (?, ?)').run(next, Buffer.from(text, 'utf8'));
    });
    const forged = `custos_${id}_${secret}`;
    const live = await call(s.app, 'GET', '/api/v1/stats', forged);
    assert.equal(live.statusCode, 401, live.body);
    // The engine does not extend the log over the uncovered row (no checkpoint of ours will cover it).
    await assert.rejects(s.auth.createToken('later', 'auditor', SETUP));
    assert.equal((await call(s.app, 'GET', '/api/v1/stats', forged)).statusCode, 401);
    await s.close();

    const again = await open(dataDir);
    assert.equal((await call(again.app, 'GET', '/api/v1/stats', forged)).statusCode, 401);
    assert.equal((await call(again.app, 'GET', '/api/v1/stats', admin)).statusCode, 200);
    await again.close();
    assert.ok((await verifyFindings(dataDir)).includes('ENTRY_NOT_COVERED'));
  });
});

describe('attack 2: the bytes of an old revocation edited in place', () => {
  it('TOKEN_REVOKED edited: after a restart the token is still refused (LOG_INTEGRITY, 503), and verify reports it', async () => {
    const { dataDir, s } = await fresh();
    const t = await s.auth.createToken('temp-1', 'admin', SETUP);
    await s.auth.revokeToken(t.record.id, SETUP);
    assert.equal((await call(s.app, 'GET', '/api/v1/stats', t.token)).statusCode, 401);
    await s.close();
    editEntry(dataDir, 'TOKEN_REVOKED', (x) => x.replace('"type":"TOKEN_REVOKED"', '"type":"TOKEN_REVOKEX"'));

    // A restarted server: the authenticator refuses to decide on a log that does not match its signature.
    const { dir, log } = await openLog(dataDir);
    try {
      const auth = new Authenticator({ log });
      await assertIntegrityRefusal(auth.authenticate(`Bearer ${t.token}`));
      await assertIntegrityRefusal(auth.load());
      await assertIntegrityRefusal(Governance.open({ log }));
    } finally {
      await log.close();
      await dir.store.close();
    }
    await assertIntegrityRefusal(open(dataDir));
    assert.deepEqual(await verifyFindings(dataDir), ['CHECKPOINT_ROOT_MISMATCH', 'LEAF_HASH_MISMATCH']);
  });

  it('TOKEN_REVOKED edited while the server runs: it stays refused, and an authenticator opened late on the same log refuses (LOG_INTEGRITY)', async () => {
    const { dataDir, s } = await fresh();
    const t = await s.auth.createToken('temp-2', 'admin', SETUP);
    await s.auth.revokeToken(t.record.id, SETUP);
    assert.equal((await call(s.app, 'GET', '/api/v1/stats', t.token)).statusCode, 401);
    // Edited after this server verified it: the server keeps what it verified.
    editEntry(dataDir, 'TOKEN_REVOKED', (x) => x.replace('"type":"TOKEN_REVOKED"', '"type":"TOKEN_REVOKEX"'));
    assert.equal((await call(s.app, 'GET', '/api/v1/stats', t.token)).statusCode, 401);
    // Joins the scan after it passed the edited entry: it is caught up against the verified root.
    const late = new Authenticator({ log: s.log });
    await assertIntegrityRefusal(late.authenticate(`Bearer ${t.token}`));
    await s.close();
  });

  it('CONSENT_REVOKED edited: after a restart the policy is not re-permitted (decisions refused with LOG_INTEGRITY)', async () => {
    const { dataDir, s, po, derm } = await fresh();
    const policy = { policyId: pid('p-edit'), subject: 'patient-1', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] };
    assert.equal((await call(s.app, 'POST', '/api/v1/consents', po, policy)).statusCode, 201);
    assert.equal((await call(s.app, 'POST', `/api/v1/consents/${pid('p-edit')}/revoke`, po)).statusCode, 201);
    const access = { purpose: 'TREAT', policyId: pid('p-edit'), artifact: { uri: 's3://b/k', digest: D1 } };
    assert.equal((await call(s.app, 'POST', '/api/v1/access', derm, access)).statusCode, 403);
    await s.close();
    editEntry(dataDir, 'CONSENT_REVOKED', (x) => x.replace('"type":"CONSENT_REVOKED"', '"type":"CONSENT_REVOKEX"'));

    const { dir, log } = await openLog(dataDir);
    try {
      await assertIntegrityRefusal(Governance.open({ log }));
    } finally {
      await log.close();
      await dir.store.close();
    }
    await assertIntegrityRefusal(open(dataDir));
    assert.deepEqual(await verifyFindings(dataDir), ['CHECKPOINT_ROOT_MISMATCH', 'LEAF_HASH_MISMATCH']);
  });
});

describe('the normal path', () => {
  it('tokens and consents created and revoked, then a restart: everything as before, and the log verifies', async () => {
    const { dataDir, s, admin, po, derm } = await fresh();
    const keep = await s.auth.createToken('keep-1', 'auditor', SETUP);
    const gone = await s.auth.createToken('gone-1', 'auditor', SETUP);
    await s.auth.revokeToken(gone.record.id, SETUP);
    const live = { policyId: pid('p-live'), subject: 'patient-2', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] };
    const dead = { ...live, policyId: pid('p-dead'), subject: 'patient-3' };
    assert.equal((await call(s.app, 'POST', '/api/v1/consents', po, live)).statusCode, 201);
    assert.equal((await call(s.app, 'POST', '/api/v1/consents', po, dead)).statusCode, 201);
    assert.equal((await call(s.app, 'POST', `/api/v1/consents/${pid('p-dead')}/revoke`, po)).statusCode, 201);
    const access = (policyId: string) => ({ purpose: 'TREAT', policyId, artifact: { uri: 's3://b/n', digest: D1 } });
    const check = async (srv: Server) => {
      assert.equal((await call(srv.app, 'GET', '/api/v1/stats', admin)).statusCode, 200);
      assert.equal((await call(srv.app, 'GET', '/api/v1/stats', keep.token)).statusCode, 200);
      assert.equal((await call(srv.app, 'GET', '/api/v1/stats', gone.token)).statusCode, 401);
      const ok = await call(srv.app, 'POST', '/api/v1/access', derm, access(pid('p-live')));
      assert.equal(ok.statusCode, 201, ok.body);
      const no = await call(srv.app, 'POST', '/api/v1/access', derm, access(pid('p-dead')));
      assert.equal(no.statusCode, 403, no.body);
    };
    await check(s);
    await s.close();
    const again = await open(dataDir);
    await check(again);
    // Changes after the restart are seen at once (incremental verified sync).
    await again.auth.revokeToken(keep.record.id, SETUP);
    assert.equal((await call(again.app, 'GET', '/api/v1/stats', keep.token)).statusCode, 401);
    const report = await verifyLog({ store: again.dir.store, verifiers: [again.dir.verifier], origin: again.dir.origin });
    assert.ok(report.ok, JSON.stringify(report.findings));
    await again.close();
  });
});
