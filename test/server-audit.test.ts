/**
 * Security issue #9, defects 4, 5 and 14, over a real SQLite log and the real HTTP app (Fastify
 * `inject`):
 * - entry bundles (`/tile/entries/...`) need the `read` permission unless the operator opts in;
 *   hash tiles, the checkpoint and the verifier key stay public;
 * - a receipt shows commitments only; opening them needs `commitments:open` and a purpose of use,
 *   is recorded on the log (PATIENT_DATA_OPENED) before the values are returned, and is rate-limited;
 * - exports, bulk reads, reads, verifications and refusals leave audit events, refusals aggregated
 *   per caller and window (SECURITY_ALERT), and the log still verifies afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { initDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import { ManualClock } from '../src/log/clock.js';
import { verifyLog } from '../src/log/verify-log.js';
import { Governance } from '../src/service/governance.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp, type AppOptions } from '../src/server/app.js';
import { decodeEntryBundle } from '../src/core/merkle/tiles.js';

const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const SUBJECT = 'patient-pseudo-9911';
const IMAGE_URI = `s3://clinic-bucket/${SUBJECT}/visit1/image1.jpg`;
const REPORT_URI = `s3://clinic-bucket/${SUBJECT}/visit1/report.json`;
const SETUP = { actor: 'test-setup', role: 'operator' };
const T0 = Date.parse('2026-03-01T08:00:00.000Z');

const NAMES = { admin: 'admin-1', privacy_officer: 'po-1', auditor: 'aud-1', dermatologist: 'dr-derm', nurse: 'nurse-1', ml_engineer: 'eng-7' } as const;
type Role = keyof typeof NAMES;

interface Env {
  readonly app: FastifyInstance;
  readonly log: Log;
  readonly dir: DataDir;
  readonly governance: Governance;
  readonly auth: Authenticator;
  readonly clock: ManualClock;
  readonly tokens: Record<Role, string>;
  /** Index of an INFERENCE_EXECUTED event on IMAGE_URI -> REPORT_URI. */
  readonly inference: number;
}

interface Entry {
  index: number;
  type: string;
  payload: Record<string, unknown>;
  text: string;
}

let root: string;
let counter = 0;
const cleanup: (() => Promise<void>)[] = [];

before(() => {
  root = mkdtempSync(join(tmpdir(), 'custos-audit-'));
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

async function newEnv(appOptions: Partial<AppOptions> = {}): Promise<Env> {
  const dataDir = join(root, `log-${counter++}`);
  await initDataDir(dataDir, { origin: 'audit.test/log' });
  const clock = new ManualClock(T0);
  const { dir, log } = await openLog(dataDir, { clock });
  const governance = await Governance.open({ log, clock });
  const auth = new Authenticator({ log });
  const tokens = {} as Record<Role, string>;
  for (const role of Object.keys(NAMES) as Role[]) tokens[role] = (await auth.createToken(NAMES[role], role, SETUP)).token;
  await governance.createConsent({ policyId: pid('p-audit'), subject: SUBJECT, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
  const inf = await governance.recordInference({
    actor: { id: 'dr-derm', role: 'dermatologist' },
    purpose: 'TREAT',
    policyId: pid('p-audit'),
    input: { uri: IMAGE_URI, digest: D1 },
    outputs: [{ name: 'report_json', uri: REPORT_URI, digest: D2 }],
    pipeline: { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: {} },
    model: { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' },
  });
  const app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, clock, ...appOptions });
  let closed = false;
  const env: Env = { app, log, dir, governance, auth, clock, tokens, inference: inf.event.index };
  cleanup.push(async () => {
    if (!closed) await app.close();
    closed = true;
    await log.close();
    await dir.store.close();
  });
  return env;
}

async function call(app: FastifyInstance, method: 'GET' | 'POST', url: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const o: InjectOptions = { method, url, headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers } };
  if (body !== undefined) {
    o.payload = JSON.stringify(body);
    (o.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  return app.inject(o);
}

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  assert.equal((res.json() as { error: { code: string } }).error.code, code);
}

function ok<T = Record<string, unknown>>(res: LightMyRequestResponse, status = 200): T {
  assert.equal(res.statusCode, status, `expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res.json() as T;
}

async function entries(log: Log, from = 0): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const page of log.reader.entryPages(from, log.size)) {
    for (const e of page) {
      const text = e.bytes.toString('utf8');
      const j = JSON.parse(text) as { type: string; payload: Record<string, unknown> };
      out.push({ index: e.index, type: j.type, payload: j.payload, text });
    }
  }
  return out;
}

async function assertVerifies(env: Env): Promise<void> {
  const report = await verifyLog({ store: env.dir.store, verifiers: [env.dir.verifier], origin: env.dir.origin });
  assert.equal(report.ok, true, JSON.stringify(report.findings));
  const docs = await verifyDocuments({ store: env.dir.store });
  assert.equal(docs.ok, true, JSON.stringify(docs.findings));
}

// ---- defect 4: public tiles ------------------------------------------------------------------

describe('entry bundles are not public by default (defect 4)', () => {
  let env: Env;
  before(async () => {
    env = await newEnv();
  });

  it('anonymous GET /tile/entries/... is 401; hash tiles, /checkpoint and /log.pub stay public', async () => {
    const n = env.log.size;
    expectError(await call(env.app, 'GET', `/tile/entries/000.p/${n}`), 401, 'UNAUTHENTICATED');
    const hashTile = await call(env.app, 'GET', `/tile/0/000.p/${n}`);
    assert.equal(hashTile.statusCode, 200);
    assert.equal(hashTile.rawPayload.length, n * 32);
    assert.equal((await call(env.app, 'GET', '/checkpoint')).statusCode, 200);
    assert.equal((await call(env.app, 'GET', '/log.pub')).statusCode, 200);
  });

  it('encoded or doubled paths do not get around the credential', async () => {
    const n = env.log.size;
    for (const path of [`/tile/%65ntries/000.p/${n}`, `/tile/entries%2F000.p%2F${n}`, `//tile/entries/000.p/${n}`, `/tile//entries/000.p/${n}`, `/tile/./entries/000.p/${n}`]) {
      const r = await call(env.app, 'GET', path);
      assert.ok(r.statusCode === 401 || r.statusCode === 404, `${path}: ${r.statusCode}`);
      assert.ok(!r.body.includes('TOKEN_CREATED'), path);
    }
  });

  it('a read token gets the bundle (private cache), and the read is an AUDIT_QUERY event; a role without read gets 403', async () => {
    const n = env.log.size;
    const r = await call(env.app, 'GET', `/tile/entries/000.p/${n}`, env.tokens.auditor);
    assert.equal(r.statusCode, 200);
    assert.equal(decodeEntryBundle(r.rawPayload).entries.length, n);
    assert.match(String(r.headers['cache-control']), /private|no-store/);
    const last = (await entries(env.log, n)).find((e) => e.type === 'AUDIT_QUERY');
    assert.ok(last, 'the bundle read is on the log');
    assert.equal(last.payload['actor'], NAMES.auditor);
    assert.equal(last.payload['route'], 'GET /tile/*');
    assert.deepEqual(last.payload['range'], { from: 0, to: n });
    expectError(await call(env.app, 'GET', `/tile/entries/000.p/${n}`, env.tokens.nurse), 403, 'FORBIDDEN');
  });

  it('with publicEntries (custos serve --public-entries) anonymous callers get the bundles', async () => {
    const pub = await newEnv({ publicEntries: true });
    const n = pub.log.size;
    const r = await call(pub.app, 'GET', `/tile/entries/000.p/${n}`);
    assert.equal(r.statusCode, 200);
    assert.equal(decodeEntryBundle(r.rawPayload).entries.length, n);
  });
});

// ---- defect 5: receipts and openings ---------------------------------------------------------

describe('receipts show commitments; opening them is a permitted, logged, rate-limited act (defect 5)', () => {
  let env: Env;
  before(async () => {
    env = await newEnv({ openingsPerMinute: 3 });
  });

  it('ml_engineer with `receipts` gets a hash-only receipt (no URI anywhere in the body)', async () => {
    const r = ok<{ ok: boolean; artifacts: { commitment: string; uri: string | null; state: string }[] }>(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}`, env.tokens.ml_engineer));
    assert.equal(r.ok, true);
    assert.equal(r.artifacts.length, 2);
    for (const a of r.artifacts) {
      assert.equal(a.uri, null);
      assert.equal(a.state, 'sealed');
      assert.match(a.commitment, /^[0-9a-f]{64}$/);
    }
    const body = (await call(env.app, 'GET', `/api/v1/receipts/${env.inference}`, env.tokens.ml_engineer)).body;
    assert.ok(!body.includes(IMAGE_URI) && !body.includes(REPORT_URI) && !body.includes('clinic-bucket'), 'no URI in a hash-only receipt');
  });

  it('ml_engineer asking to open is refused 403 and nothing is opened or logged as opened', async () => {
    const before = env.log.size;
    const r = await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true&purpose=HRESCH`, env.tokens.ml_engineer);
    expectError(r, 403, 'FORBIDDEN');
    assert.ok(!r.body.includes('clinic-bucket'));
    assert.equal((await entries(env.log, before)).filter((e) => e.type === 'PATIENT_DATA_OPENED').length, 0);
  });

  it('opening without a purpose of use is 400 and writes nothing', async () => {
    const before = env.log.size;
    expectError(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true`, env.tokens.dermatologist), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true&purpose=not%20a%20code`, env.tokens.dermatologist), 400, 'VALIDATION_FAILED');
    assert.equal(env.log.size, before);
  });

  it('a dermatologist opens with a purpose: the URIs come back and PATIENT_DATA_OPENED names the commitments, never the values', async () => {
    const before = env.log.size;
    const r = ok<{ artifacts: { commitment: string; uri: string | null; state: string }[] }>(
      await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true&purpose=TREAT`, env.tokens.dermatologist),
    );
    assert.deepEqual(
      r.artifacts.map((a) => a.uri),
      [IMAGE_URI, REPORT_URI],
    );
    assert.deepEqual(
      r.artifacts.map((a) => a.state),
      ['opened', 'opened'],
    );
    const opened = (await entries(env.log, before)).filter((e) => e.type === 'PATIENT_DATA_OPENED');
    assert.equal(opened.length, 1);
    const p = opened[0]!.payload;
    assert.equal(p['actor'], NAMES.dermatologist);
    assert.equal(p['role'], 'dermatologist');
    assert.equal(p['purpose'], 'TREAT');
    assert.equal(p['eventIndex'], env.inference);
    assert.deepEqual(
      p['commitments'],
      r.artifacts.map((a) => a.commitment),
    );
    assert.match(String(p['nonce']), /^[0-9a-f]{32}$/);
    assert.ok(!opened[0]!.text.includes('clinic-bucket'), 'the event never holds a URI');
  });

  it('openings are rate-limited per caller: 429 OPENING_RATE_LIMITED, nothing opened', async () => {
    // openingsPerMinute: 3, one used above.
    for (let i = 0; i < 2; i++) ok(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true&purpose=TREAT`, env.tokens.dermatologist));
    const before = env.log.size;
    const r = await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true&purpose=TREAT`, env.tokens.dermatologist);
    expectError(r, 429, 'OPENING_RATE_LIMITED');
    assert.ok(!r.body.includes('clinic-bucket'));
    assert.equal((await entries(env.log, before)).filter((e) => e.type === 'PATIENT_DATA_OPENED').length, 0);
    // Hash-only receipts are not limited by it.
    ok(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}`, env.tokens.dermatologist));
    // After the window the caller may open again.
    env.clock.advance(61_000);
    ok(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}?open=true&purpose=TREAT`, env.tokens.dermatologist));
  });
});

// ---- defect 14: operations on the log are audited --------------------------------------------

describe('operations on the log leave audit events (defect 14)', () => {
  it('export, verify, entry listing, entry and receipt reads leave AUDIT_QUERY / AUDIT_READ events naming the caller', async () => {
    const env = await newEnv();
    const start = env.log.size;
    const exp = await call(env.app, 'GET', '/api/v1/export', env.tokens.auditor);
    assert.equal(exp.statusCode, 200);
    ok(await call(env.app, 'POST', '/api/v1/verify', env.tokens.auditor));
    ok(await call(env.app, 'GET', '/api/v1/entries?limit=5&type=INFERENCE_EXECUTED', env.tokens.auditor));
    ok(await call(env.app, 'GET', `/api/v1/entries/${env.inference}`, env.tokens.auditor));
    ok(await call(env.app, 'GET', `/api/v1/receipts/${env.inference}`, env.tokens.ml_engineer));
    const audit = (await entries(env.log, start)).filter((e) => e.type.startsWith('AUDIT_'));
    assert.deepEqual(
      audit.map((e) => [e.type, e.payload['route'], e.payload['actor'], e.payload['role']]),
      [
        ['AUDIT_QUERY', 'GET /api/v1/export', NAMES.auditor, 'auditor'],
        ['AUDIT_QUERY', 'POST /api/v1/verify', NAMES.auditor, 'auditor'],
        ['AUDIT_QUERY', 'GET /api/v1/entries', NAMES.auditor, 'auditor'],
        ['AUDIT_READ', 'GET /api/v1/entries/:index', NAMES.auditor, 'auditor'],
        ['AUDIT_READ', 'GET /api/v1/receipts/:index', NAMES.ml_engineer, 'ml_engineer'],
      ],
    );
    // The export is recorded before it is streamed: it carries its own audit event.
    const exportEvent = audit[0]!;
    assert.ok(exp.body.includes(`"index":${exportEvent.index},`), 'the export includes its own AUDIT_QUERY event');
    assert.deepEqual(exportEvent.payload['balp'], { type: 'rest', subtype: 'search', action: 'E' });
    assert.deepEqual(audit[3]!.payload['balp'], { type: 'rest', subtype: 'read', action: 'R' });
    assert.equal(audit[3]!.payload['eventIndex'], env.inference);
    // Patient-linked reads carry a random nonce: their public leaf hash cannot be found by guessing.
    assert.match(String(audit[3]!.payload['nonce']), /^[0-9a-f]{32}$/);
    assert.notEqual(audit[3]!.payload['nonce'], audit[4]!.payload['nonce']);
    // The listing's filter is recorded as a hash, not as free text.
    assert.match(String(audit[2]!.payload['queryHash']), /^[0-9a-f]{64}$/);
    assert.ok(!audit[2]!.text.includes('INFERENCE_EXECUTED'));
    await assertVerifies(env);
  });

  it('1,000 refusals by one caller give a bounded number of SECURITY_ALERT events whose counts sum to 1,000', async () => {
    const env = await newEnv();
    const start = env.log.size;
    for (let i = 0; i < 600; i++) expectError(await call(env.app, 'GET', '/api/v1/export', env.tokens.ml_engineer), 403, 'FORBIDDEN');
    for (let i = 0; i < 400; i++) {
      expectError(
        await call(env.app, 'POST', '/api/v1/access', env.tokens.ml_engineer, { actor: { id: 'someone-else' }, purpose: 'TREAT', policyId: pid('p-audit'), artifact: { uri: IMAGE_URI, digest: D1 } }),
        403,
        'FORBIDDEN',
      );
    }
    // Flushed at the end of the window, or when the server closes.
    await env.app.close();
    const alerts = (await entries(env.log, start)).filter((e) => e.type === 'SECURITY_ALERT');
    assert.ok(alerts.length >= 1 && alerts.length <= 2, `bounded: ${alerts.length} alerts`);
    assert.equal(
      alerts.reduce((s, a) => s + Number(a.payload['count']), 0),
      1000,
    );
    for (const a of alerts) {
      assert.equal(a.payload['actor'], NAMES.ml_engineer);
      assert.equal(a.payload['role'], 'ml_engineer');
      assert.deepEqual(a.payload['balp'], { type: 'DCM#110113', action: 'E', outcome: '4' });
      assert.ok(!a.text.includes('clinic-bucket') && !a.text.includes('someone-else'), 'no request content on the log');
    }
    const byRoute = new Map<string, number>();
    for (const a of alerts)
      for (const r of a.payload['refusals'] as { code: string; route: string; count: number }[]) byRoute.set(`${r.code} ${r.route}`, (byRoute.get(`${r.code} ${r.route}`) ?? 0) + r.count);
    assert.deepEqual(Object.fromEntries(byRoute), { 'FORBIDDEN GET /api/v1/export': 600, 'FORBIDDEN POST /api/v1/access': 400 });
    await assertVerifies(env);
  });

  it('ACTOR_MISMATCH and unauthenticated refusals are alerts too; the unauthenticated caller is a keyed hash of its address, never the token text', async () => {
    const env = await newEnv();
    const start = env.log.size;
    expectError(
      await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, { actor: { id: 'someone-else' }, purpose: 'TREAT', policyId: pid('p-audit'), artifact: { uri: IMAGE_URI, digest: D1 } }),
      403,
      'ACTOR_MISMATCH',
    );
    for (let i = 0; i < 5; i++) expectError(await call(env.app, 'GET', '/api/v1/export', 'not-a-token-<script>'), 401, 'UNAUTHENTICATED');
    expectError(await call(env.app, 'GET', '/tile/entries/000.p/1'), 401, 'UNAUTHENTICATED');
    const immediate = (await entries(env.log, start)).filter((e) => e.type === 'SECURITY_ALERT');
    // The first refusal of each caller's window is logged at once.
    assert.equal(immediate.length, 2);
    const mismatch = immediate.find((a) => a.payload['actor'] === NAMES.dermatologist)!;
    assert.deepEqual(mismatch.payload['refusals'], [{ code: 'ACTOR_MISMATCH', route: 'POST /api/v1/access', permission: 'access', count: 1 }]);
    const anon = immediate.find((a) => a.payload['actor'] === undefined)!;
    assert.match(String(anon.payload['client']), /^[0-9a-f]{32}$/);
    await env.app.close();
    const alerts = (await entries(env.log, start)).filter((e) => e.type === 'SECURITY_ALERT');
    assert.equal(
      alerts.filter((a) => a.payload['client'] === anon.payload['client']).reduce((s, a) => s + Number(a.payload['count']), 0),
      6,
    );
    for (const a of alerts) assert.ok(!a.text.includes('script') && !a.text.includes('not-a-token') && !a.text.includes('127.0.0.1'));
    await assertVerifies(env);
  });

  it('a new window starts after the window length: the previous one is flushed first', async () => {
    const env = await newEnv({ alertWindowMs: 60_000 });
    const start = env.log.size;
    for (let i = 0; i < 10; i++) expectError(await call(env.app, 'GET', '/api/v1/export', env.tokens.ml_engineer), 403, 'FORBIDDEN');
    env.clock.advance(60_001);
    expectError(await call(env.app, 'GET', '/api/v1/export', env.tokens.ml_engineer), 403, 'FORBIDDEN');
    const alerts = (await entries(env.log, start)).filter((e) => e.type === 'SECURITY_ALERT');
    assert.deepEqual(
      alerts.map((a) => a.payload['count']),
      [1, 9, 1],
    );
    assert.equal(alerts[1]!.payload['windowStart'], alerts[0]!.payload['windowStart']);
    assert.notEqual(alerts[2]!.payload['windowStart'], alerts[0]!.payload['windowStart']);
  });

  it("a consent check reads a patient's policy: AUDIT_READ names the policy id; the anomaly list is an AUDIT_QUERY", async () => {
    const env = await newEnv();
    const start = env.log.size;
    const d = ok<{ effect: string }>(await call(env.app, 'POST', `/api/v1/consents/${pid('p-audit')}/check`, env.tokens.nurse, { purpose: 'TREAT', role: 'dermatologist' }));
    assert.equal(d.effect, 'permit');
    ok(await call(env.app, 'GET', '/api/v1/anomalies?hours=2', env.tokens.auditor));
    const audit = (await entries(env.log, start)).filter((e) => e.type.startsWith('AUDIT_'));
    assert.deepEqual(
      audit.map((e) => [e.type, e.payload['route'], e.payload['actor'], e.payload['role'], e.payload['permission'], e.payload['policyId']]),
      [
        ['AUDIT_READ', 'POST /api/v1/consents/:policyId/check', NAMES.nurse, 'nurse', 'consent:check', pid('p-audit')],
        ['AUDIT_QUERY', 'GET /api/v1/anomalies', NAMES.auditor, 'auditor', 'read', undefined],
      ],
    );
    assert.match(String(audit[0]!.payload['nonce']), /^[0-9a-f]{32}$/);
    // The window asked for is recorded as a hash, not as text.
    assert.match(String(audit[1]!.payload['queryHash']), /^[0-9a-f]{64}$/);
    await assertVerifies(env);
  });
});
