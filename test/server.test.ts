/**
 * The HTTP API in process (Fastify `inject`) over a real SQLite log in a temporary directory:
 * authentication, the role table, actors taken from the token, every governance operation,
 * the tokens API, the error contract, C2SP tlog-tiles, metrics, OpenAPI, log redaction, and one
 * smoke test on a real port.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { initDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import { Governance } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp, type AppOptions } from '../src/server/app.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { verifyConsistency } from '../src/core/merkle/consistency.js';
import { decodeEntryBundle } from '../src/core/merkle/tiles.js';
import { hashLeaf, sha256, toHex } from '../src/core/hash.js';
import { openCheckpoint } from '../src/core/checkpoint.js';
import { parseVerifierKey } from '../src/core/note.js';

// ---- fixtures -------------------------------------------------------------------------------

const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const W1 = 'c3'.repeat(32);
const W2 = 'd4'.repeat(32);
const SUBJECT = 'patient-pseudo-5521';
const IMAGE_URI = `s3://clinic-bucket/${SUBJECT}/visit1/image1.jpg`;
const REPORT_URI = `s3://clinic-bucket/${SUBJECT}/visit1/report.json`;
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } };
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: W1, framework: 'pytorch' };

const SETUP = { actor: 'test-setup', role: 'operator' };

/** Names of the tokens every environment gets, by role (the name is the actor on events). */
const NAMES = {
  admin: 'admin-1',
  privacy_officer: 'po-1',
  auditor: 'aud-1',
  dermatologist: 'dr-derm',
  nurse: 'nurse-1',
  ml_engineer: 'eng-7',
} as const;
type Role = keyof typeof NAMES;

function policyBody(policyId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    policyId,
    subject: SUBJECT,
    allowedPurposes: ['TREAT', 'HRESCH'],
    allowedRoles: ['dermatologist', 'nurse', 'ml_engineer'],
    ...over,
  };
}

function accessBody(policyId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { purpose: 'TREAT', policyId, artifact: { uri: IMAGE_URI, digest: D1 }, ...over };
}

function inferenceBody(policyId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    purpose: 'TREAT',
    policyId,
    input: { uri: IMAGE_URI, digest: D1 },
    outputs: [{ name: 'report_json', uri: REPORT_URI, digest: D2 }],
    pipeline: PIPELINE,
    model: MODEL,
    ...over,
  };
}

function trainingBody(type: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    purpose: 'HRESCH',
    dataset: { uri: `s3://training-bucket/${type}/v1.parquet`, digest: D1, type },
    manifest: { name: 'finetune-1', lr: 0.001, seed: 7 },
    modelBefore: MODEL,
    modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: W2 },
    ...(type === 'identified' ? {} : { attestation: { method: type === 'synthetic' ? 'synthetic-generator' : 'safe-harbor' } }),
    computeBackend: 'cpu',
    ...over,
  };
}

// ---- environment ----------------------------------------------------------------------------

let root: string;
let counter = 0;
const cleanup: (() => Promise<void>)[] = [];

before(() => {
  root = mkdtempSync(join(tmpdir(), 'custos-server-'));
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

interface Env {
  readonly app: FastifyInstance;
  readonly log: Log;
  readonly dir: DataDir;
  readonly auth: Authenticator;
  readonly governance: Governance;
  /** A token per role, named after NAMES. */
  readonly tokens: Record<Role, string>;
}

/** A fresh log with one token per role and an app over it. */
async function newEnv(appOptions: Partial<AppOptions> = {}): Promise<Env> {
  const dataDir = join(root, `log-${counter++}`);
  await initDataDir(dataDir, { origin: 'server.test/log' });
  const { dir, log } = await openLog(dataDir);
  const governance = await Governance.open({ log });
  const auth = new Authenticator({ log });
  const tokens = {} as Record<Role, string>;
  for (const role of Object.keys(NAMES) as Role[]) tokens[role] = (await auth.createToken(NAMES[role], role, SETUP)).token;
  const app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, ...appOptions });
  cleanup.push(async () => {
    await app.close();
    await log.close();
    await dir.store.close();
  });
  return { app, log, dir, auth, governance, tokens };
}

/** Another app over the same log (other options: body limit, rate limit, logger). */
async function sideApp(env: Env, appOptions: Partial<AppOptions>): Promise<FastifyInstance> {
  const app = await createApp({ log: env.log, governance: env.governance, auth: env.auth, verifiers: [env.dir.verifier], origin: env.dir.origin, logger: false, ...appOptions });
  cleanup.push(() => app.close());
  return app;
}

type Method = 'GET' | 'POST' | 'DELETE';

async function call(app: FastifyInstance, method: Method, url: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  const o: InjectOptions = { method, url, headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers } };
  if (body !== undefined) o.payload = typeof body === 'string' ? body : JSON.stringify(body);
  if (body !== undefined && headers['content-type'] === undefined) (o.headers as Record<string, string>)['content-type'] = 'application/json';
  return app.inject(o);
}

/** Asserts an error response: status, code, and the `{error:{code,message}}` body shape. */
function expectError(res: LightMyRequestResponse, status: number, code: string): { code: string; message: string; details?: Record<string, unknown> } {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json() as { error: { code: string; message: string; details?: Record<string, unknown> } };
  assert.equal(typeof body.error, 'object');
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  return body.error;
}

function ok<T = Record<string, unknown>>(res: LightMyRequestResponse, status = 200): T {
  assert.equal(res.statusCode, status, `expected ${status}, got ${res.statusCode}: ${res.body}`);
  return res.json() as T;
}

interface Exported {
  index: number;
  leafHash: string;
  /** The entry's exact bytes, sliced from the NDJSON line. */
  text: string;
  entry: { type: string; time: string; payload: Record<string, unknown> };
}

async function exportAll(env: Env): Promise<Exported[]> {
  const res = await call(env.app, 'GET', '/api/v1/export', env.tokens.auditor);
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/x-ndjson/);
  const lines = res.body.split('\n');
  assert.equal(lines.pop(), '', 'the export ends with a newline');
  return lines.map((line) => {
    const marker = ',"entry":';
    const at = line.indexOf(marker);
    assert.ok(at > 0 && line.endsWith('}'));
    const text = line.slice(at + marker.length, -1);
    const parsed = JSON.parse(line) as { index: number; leafHash: string; entry: Exported['entry'] };
    return { index: parsed.index, leafHash: parsed.leafHash, text, entry: parsed.entry };
  });
}

async function entryAt(env: Env, index: number): Promise<Exported['entry']> {
  const e = await env.log.reader.getEntry(index);
  return JSON.parse(e.bytes.toString('utf8')) as Exported['entry'];
}

const fromHex = (h: string) => Buffer.from(h, 'hex');

/** Refusals are audited (SECURITY_ALERT, aggregated per caller); asserts nothing else was written since `from`. */
async function assertOnlyAlerts(env: Env, from: number): Promise<void> {
  for (let i = from; i < env.log.size; i++) assert.equal((await entryAt(env, i)).type, 'SECURITY_ALERT', `entry ${i}`);
}

// ---- the main environment -----------------------------------------------------------------

let env: Env;
before(async () => {
  env = await newEnv();
});

/** Every API route: method, URL (with sample parameters) and a body. Used for the 401 sweep. */
const API_ROUTES: readonly { method: Method; url: string; openapi: string; body?: unknown }[] = [
  { method: 'GET', url: '/api/v1/me', openapi: '/api/v1/me' },
  { method: 'POST', url: '/api/v1/consents', openapi: '/api/v1/consents', body: policyBody(pid('p-any')) },
  { method: 'POST', url: `/api/v1/consents/${pid('p-any')}/revoke`, openapi: '/api/v1/consents/{policyId}/revoke', body: {} },
  { method: 'POST', url: `/api/v1/consents/${pid('p-any')}/check`, openapi: '/api/v1/consents/{policyId}/check', body: { purpose: 'TREAT', role: 'nurse' } },
  { method: 'GET', url: `/api/v1/consents/${pid('p-any')}`, openapi: '/api/v1/consents/{policyId}' },
  { method: 'POST', url: '/api/v1/access', openapi: '/api/v1/access', body: accessBody(pid('p-any')) },
  { method: 'POST', url: '/api/v1/inferences', openapi: '/api/v1/inferences', body: inferenceBody(pid('p-any')) },
  { method: 'POST', url: '/api/v1/trainings', openapi: '/api/v1/trainings', body: trainingBody('synthetic') },
  { method: 'GET', url: '/api/v1/reviews', openapi: '/api/v1/reviews' },
  { method: 'POST', url: '/api/v1/reviews/0', openapi: '/api/v1/reviews/{index}', body: { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' } },
  { method: 'POST', url: '/api/v1/erasures', openapi: '/api/v1/erasures', body: { kind: 'subject', value: SUBJECT } },
  { method: 'GET', url: '/api/v1/disclosures?subject=pt-1', openapi: '/api/v1/disclosures' },
  { method: 'GET', url: '/api/v1/receipts/0', openapi: '/api/v1/receipts/{index}' },
  { method: 'GET', url: '/api/v1/bundles/0', openapi: '/api/v1/bundles/{index}' },
  { method: 'GET', url: '/api/v1/entries', openapi: '/api/v1/entries' },
  { method: 'GET', url: '/api/v1/entries/0', openapi: '/api/v1/entries/{index}' },
  { method: 'GET', url: '/api/v1/proofs/inclusion/0', openapi: '/api/v1/proofs/inclusion/{index}' },
  { method: 'GET', url: '/api/v1/proofs/consistency?from=1&to=2', openapi: '/api/v1/proofs/consistency' },
  { method: 'GET', url: '/api/v1/checkpoint', openapi: '/api/v1/checkpoint' },
  { method: 'POST', url: '/api/v1/verify', openapi: '/api/v1/verify' },
  { method: 'GET', url: '/api/v1/stats', openapi: '/api/v1/stats' },
  { method: 'GET', url: '/api/v1/overview', openapi: '/api/v1/overview' },
  { method: 'GET', url: '/api/v1/anomalies', openapi: '/api/v1/anomalies' },
  { method: 'GET', url: '/api/v1/export', openapi: '/api/v1/export' },
  { method: 'GET', url: '/api/v1/witnesses', openapi: '/api/v1/witnesses' },
  { method: 'POST', url: '/api/v1/tokens', openapi: '/api/v1/tokens', body: { name: 'x', role: 'nurse' } },
  { method: 'GET', url: '/api/v1/tokens', openapi: '/api/v1/tokens' },
  { method: 'DELETE', url: '/api/v1/tokens/0123456789abcdef', openapi: '/api/v1/tokens/{id}' },
  { method: 'GET', url: '/metrics', openapi: '/metrics' },
  // issue 14: model registry and change control
  { method: 'GET', url: '/api/v1/models', openapi: '/api/v1/models' },
  { method: 'POST', url: '/api/v1/models', openapi: '/api/v1/models', body: { model: 'm', version: '1', weightsHash: 'ab'.repeat(32), intendedUse: 'triage', riskClass: 'imdrf_ii' } },
  { method: 'GET', url: '/api/v1/models/m', openapi: '/api/v1/models/{model}' },
  { method: 'GET', url: '/api/v1/models/m/versions/1', openapi: '/api/v1/models/{model}/versions/{version}' },
  { method: 'POST', url: '/api/v1/models/m/versions/1/approval', openapi: '/api/v1/models/{model}/versions/{version}/approval', body: {} },
  { method: 'POST', url: '/api/v1/models/m/versions/1/retirement', openapi: '/api/v1/models/{model}/versions/{version}/retirement', body: {} },
  { method: 'GET', url: '/api/v1/models/m/versions/1/inferences', openapi: '/api/v1/models/{model}/versions/{version}/inferences' },
  { method: 'GET', url: '/api/v1/models/m/plans', openapi: '/api/v1/models/{model}/plans' },
  {
    method: 'POST',
    url: '/api/v1/models/m/plans',
    openapi: '/api/v1/models/{model}/plans',
    body: { planId: 'p', model: 'm', modifications: ['retrain'], acceptance: [{ metric: 'auroc', min: 0.9 }] },
  },
  { method: 'GET', url: '/api/v1/models/m/plans/p', openapi: '/api/v1/models/{model}/plans/{planId}' },
  // issue 14: federated learning (the routes main added; listed here so the OpenAPI check sees them)
  { method: 'GET', url: '/api/v1/fl/sites', openapi: '/api/v1/fl/sites' },
  { method: 'POST', url: '/api/v1/fl/sites', openapi: '/api/v1/fl/sites', body: {} },
  { method: 'POST', url: '/api/v1/fl/sites/site-a/retire', openapi: '/api/v1/fl/sites/{site}/retire', body: {} },
  { method: 'POST', url: '/api/v1/fl/rounds', openapi: '/api/v1/fl/rounds', body: {} },
  { method: 'GET', url: '/api/v1/fl/lines', openapi: '/api/v1/fl/lines' },
  { method: 'GET', url: '/api/v1/fl/lines/line-a/rounds', openapi: '/api/v1/fl/lines/{line}/rounds' },
  // issue 15: differential privacy
  { method: 'POST', url: '/api/v1/dp/releases', openapi: '/api/v1/dp/releases', body: { query: 'unit=event from=2020-01-01 to=2020-02-01', epsilon: 0.1 } },
  { method: 'GET', url: '/api/v1/dp/releases', openapi: '/api/v1/dp/releases' },
  // issue 15: attestations
  { method: 'POST', url: '/api/v1/attestations', openapi: '/api/v1/attestations', body: { kind: 'receipt', index: 0 } },
  { method: 'GET', url: '/api/v1/attestations/issuer-key', openapi: '/api/v1/attestations/issuer-key' },
  // issue 14: training cohorts
  { method: 'POST', url: '/api/v1/training/0/cohort-proof', openapi: '/api/v1/training/{index}/cohort-proof', body: { subject: 'pt-1', purpose: 'PATRQT' } },
  // issue 14: import of the reference's ledgers
  { method: 'POST', url: '/api/v1/imports/reference-ledger', openapi: '/api/v1/imports/reference-ledger', body: { ledger: '', dryRun: true } },
];

// ---- authentication -------------------------------------------------------------------------

describe('authentication', () => {
  it('refuses every /api route and /metrics without a token (401 UNAUTHENTICATED), writing nothing', async () => {
    const size = env.log.size;
    for (const r of API_ROUTES) {
      const res = await call(env.app, r.method, r.url, undefined, r.body);
      expectError(res, 401, 'UNAUTHENTICATED');
    }
    // Unknown /api routes are authenticated first, too.
    expectError(await call(env.app, 'GET', '/api/v1/no-such-thing'), 401, 'UNAUTHENTICATED');
    // One client: at most one alert written at once; the rest are counted for the window's end.
    assert.ok(env.log.size <= size + 1);
    await assertOnlyAlerts(env, size);
  });

  it('refuses malformed, unknown and wrong-secret tokens (401)', async () => {
    const real = env.tokens.auditor;
    const [, id] = /^custos_([0-9a-f]{16})_/.exec(real)!;
    const wrongSecret = `custos_${id}_${'A'.repeat(43)}`;
    const unknownId = real.replace(/^custos_[0-9a-f]{16}_/, 'custos_0000000000000000_');
    const headers = [
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Bearer ${real} extra`,
      `Bearer ${real.slice(0, -1)}`,
      `Bearer ${real}x`,
      'Bearer custos_nothex0000000000_secret',
      `Bearer ${wrongSecret}`,
      `Bearer ${unknownId}`,
      'Bearer a.b.c',
      real,
    ];
    for (const h of headers) {
      const res = await env.app.inject({ method: 'GET', url: '/api/v1/stats', headers: { authorization: h } });
      expectError(res, 401, 'UNAUTHENTICATED');
    }
    // The real one works.
    ok(await call(env.app, 'GET', '/api/v1/stats', real));
  });

  it('a token verified before (cached) is refused at once when revoked, and with any other secret', async () => {
    const t = await env.auth.createToken('cached-tok', 'auditor', SETUP);
    ok(await call(env.app, 'GET', '/api/v1/stats', t.token));
    ok(await call(env.app, 'GET', '/api/v1/stats', t.token));
    // Same token id, another secret (of the right form): refused although the id was verified before.
    const other = `custos_${t.record.id}_${'B'.repeat(43)}`;
    expectError(await call(env.app, 'GET', '/api/v1/stats', other), 401, 'UNAUTHENTICATED');
    ok(await call(env.app, 'GET', '/api/v1/stats', t.token));
    // Revoked by another Authenticator on the same log (another part of the deployment): the next request is refused.
    await new Authenticator({ log: env.log }).revokeToken(t.record.id, SETUP);
    expectError(await call(env.app, 'GET', '/api/v1/stats', t.token), 401, 'UNAUTHENTICATED');
  });

  it('refuses a revoked token (401)', async () => {
    const t = await env.auth.createToken('short-lived', 'auditor', SETUP);
    ok(await call(env.app, 'GET', '/api/v1/stats', t.token));
    await env.auth.revokeToken(t.record.id, SETUP);
    expectError(await call(env.app, 'GET', '/api/v1/stats', t.token), 401, 'UNAUTHENTICATED');
  });

  it('serves /healthz, /checkpoint, hash tiles, /openapi.json and /docs without a token; entry bundles need read', async () => {
    const h = ok<{ ok: boolean; entries: number }>(await call(env.app, 'GET', '/healthz'));
    assert.equal(h.ok, true);
    assert.equal(h.entries, env.log.size);
    const cp = await call(env.app, 'GET', '/checkpoint');
    assert.equal(cp.statusCode, 200);
    assert.match(String(cp.headers['content-type']), /^text\/plain/);
    const tile = await call(env.app, 'GET', '/tile/0/000.p/1');
    assert.equal(tile.statusCode, 200);
    assert.equal(tile.rawPayload.length, 32);
    expectError(await call(env.app, 'GET', '/tile/entries/000.p/1'), 401, 'UNAUTHENTICATED');
    const bundle = await call(env.app, 'GET', '/tile/entries/000.p/1', env.tokens.auditor);
    assert.equal(bundle.statusCode, 200);
    assert.equal(ok<{ openapi: string }>(await call(env.app, 'GET', '/openapi.json')).openapi, '3.0.3');
    const docs = await call(env.app, 'GET', '/docs');
    assert.equal(docs.statusCode, 200);
    assert.match(String(docs.headers['content-type']), /^text\/html/);
    assert.match(docs.body, /\/api\/v1\/inferences/);
  });

  it('GET /api/v1/me names the caller from the token', async () => {
    const me = ok<{ actor: string; role: string; permissions: string[] }>(await call(env.app, 'GET', '/api/v1/me', env.tokens.dermatologist));
    assert.equal(me.actor, NAMES.dermatologist);
    assert.equal(me.role, 'dermatologist');
    assert.deepEqual([...me.permissions].sort(), ['access', 'break-glass', 'commitments:open', 'consent:check', 'inference', 'receipts']);
  });
});

// ---- authorization --------------------------------------------------------------------------

describe('authorization', () => {
  before(async () => {
    ok(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-authz'))), 201);
  });

  // [role, method, url, body]: each must be 403 FORBIDDEN and write nothing.
  const forbidden: [Role, Method, string, unknown][] = [
    ['dermatologist', 'POST', '/api/v1/consents', policyBody(pid('p-derm'))],
    ['dermatologist', 'POST', `/api/v1/consents/${pid('p-authz')}/revoke`, {}],
    ['dermatologist', 'GET', `/api/v1/consents/${pid('p-authz')}`, undefined],
    ['dermatologist', 'POST', '/api/v1/tokens', { name: 'dr-2', role: 'admin' }],
    ['dermatologist', 'GET', '/api/v1/tokens', undefined],
    ['dermatologist', 'POST', '/api/v1/trainings', trainingBody('synthetic')],
    ['dermatologist', 'GET', '/api/v1/entries', undefined],
    ['dermatologist', 'GET', '/api/v1/export', undefined],
    ['dermatologist', 'POST', '/api/v1/verify', undefined],
    ['dermatologist', 'GET', '/metrics', undefined],
    ['auditor', 'POST', '/api/v1/access', accessBody(pid('p-authz'))],
    ['auditor', 'POST', '/api/v1/inferences', inferenceBody(pid('p-authz'))],
    ['auditor', 'POST', '/api/v1/consents', policyBody(pid('p-aud'))],
    ['auditor', 'POST', '/api/v1/tokens', { name: 'aud-2', role: 'admin' }],
    ['auditor', 'POST', `/api/v1/consents/${pid('p-authz')}/check`, { purpose: 'TREAT', role: 'nurse' }],
    ['ml_engineer', 'POST', '/api/v1/access', accessBody(pid('p-authz'))],
    ['ml_engineer', 'POST', '/api/v1/consents', policyBody(pid('p-mle'))],
    ['ml_engineer', 'GET', '/api/v1/entries', undefined],
    ['privacy_officer', 'POST', '/api/v1/inferences', inferenceBody(pid('p-authz'))],
    ['privacy_officer', 'POST', '/api/v1/access', accessBody(pid('p-authz'))],
    ['privacy_officer', 'POST', '/api/v1/trainings', trainingBody('synthetic')],
    ['privacy_officer', 'POST', '/api/v1/tokens', { name: 'po-2', role: 'admin' }],
    ['privacy_officer', 'GET', '/api/v1/export', undefined],
    ['privacy_officer', 'POST', '/api/v1/verify', undefined],
    ['nurse', 'POST', '/api/v1/inferences', inferenceBody(pid('p-authz'))],
    ['nurse', 'POST', '/api/v1/trainings', trainingBody('synthetic')],
    ['nurse', 'GET', '/api/v1/receipts/0', undefined],
    ['admin', 'POST', '/api/v1/consents', policyBody(pid('p-admin'))],
    ['admin', 'POST', '/api/v1/access', accessBody(pid('p-authz'))],
    ['admin', 'POST', '/api/v1/inferences', inferenceBody(pid('p-authz'))],
    ['admin', 'POST', '/api/v1/trainings', trainingBody('synthetic')],
    // Erasure is the privacy officer's alone.
    ...(['admin', 'auditor', 'dermatologist', 'nurse', 'ml_engineer'] as const).map((r): [Role, Method, string, unknown] => [r, 'POST', '/api/v1/erasures', { kind: 'subject', value: SUBJECT }]),
  ];

  it('gives each role 403 FORBIDDEN for what it may not do, and writes nothing', async () => {
    const size = env.log.size;
    for (const [role, method, url, body] of forbidden) {
      const res = await call(env.app, method, url, env.tokens[role], body);
      const err = expectError(res, 403, 'FORBIDDEN');
      assert.equal((err.details as { role: string }).role, role, `${role} ${method} ${url}`);
      assert.equal(typeof (err.details as { permission: string }).permission, 'string');
    }
    await assertOnlyAlerts(env, size);
  });

  it('checks the permission before the body: a forbidden role with an invalid body gets 403, not 400', async () => {
    const size = env.log.size;
    const bad: [Role, string, unknown][] = [
      ['dermatologist', '/api/v1/consents', {}],
      ['dermatologist', '/api/v1/consents', { policyId: 5, allowedPurposes: 'x' }],
      ['dermatologist', '/api/v1/tokens', { nope: true }],
      ['auditor', '/api/v1/access', { purpose: 7 }],
      ['ml_engineer', '/api/v1/access', []],
      ['privacy_officer', '/api/v1/inferences', { input: 'not an artifact' }],
      ['nurse', '/api/v1/trainings', 'null'],
    ];
    for (const [role, url, body] of bad) expectError(await call(env.app, 'POST', url, env.tokens[role], body), 403, 'FORBIDDEN');
    // The same bodies from a permitted role are 400.
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, {}), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/access', env.tokens.nurse, { purpose: 7 }), 400, 'VALIDATION_FAILED');
    await assertOnlyAlerts(env, size);
  });

  it('checks the permission before parsing: a forbidden role sending malformed JSON gets 403', async () => {
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.dermatologist, '{"policyId":'), 403, 'FORBIDDEN');
  });

  it('gives each role 2xx for what it may do', async () => {
    const t = env.tokens;
    ok(await call(env.app, 'POST', `/api/v1/consents/${pid('p-authz')}/check`, t.dermatologist, { purpose: 'TREAT', role: 'dermatologist' }));
    ok(await call(env.app, 'POST', `/api/v1/consents/${pid('p-authz')}/check`, t.nurse, { purpose: 'TREAT', role: 'nurse' }));
    ok(await call(env.app, 'POST', `/api/v1/consents/${pid('p-authz')}/check`, t.ml_engineer, { purpose: 'HRESCH', role: 'ml_engineer' }));
    ok(await call(env.app, 'POST', `/api/v1/consents/${pid('p-authz')}/check`, t.privacy_officer, { purpose: 'HRESCH', role: 'nurse' }));
    ok(await call(env.app, 'POST', '/api/v1/access', t.dermatologist, accessBody(pid('p-authz'))), 201);
    ok(await call(env.app, 'POST', '/api/v1/access', t.nurse, accessBody(pid('p-authz'))), 201);
    const inf = ok<{ event: { index: number } }>(await call(env.app, 'POST', '/api/v1/inferences', t.dermatologist, inferenceBody(pid('p-authz'))), 201);
    ok(await call(env.app, 'POST', '/api/v1/inferences', t.ml_engineer, inferenceBody(pid('p-authz'), { purpose: 'HRESCH' })), 201);
    ok(await call(env.app, 'POST', '/api/v1/trainings', t.ml_engineer, trainingBody('deidentified')), 201);
    for (const role of ['dermatologist', 'ml_engineer', 'privacy_officer', 'auditor', 'admin'] as const) {
      ok(await call(env.app, 'GET', `/api/v1/receipts/${inf.event.index}`, t[role]));
    }
    for (const role of ['privacy_officer', 'auditor', 'admin'] as const) {
      ok(await call(env.app, 'GET', `/api/v1/consents/${pid('p-authz')}`, t[role]));
      ok(await call(env.app, 'GET', '/api/v1/entries', t[role]));
      ok(await call(env.app, 'GET', '/api/v1/stats', t[role]));
      assert.equal((await call(env.app, 'GET', '/metrics', t[role])).statusCode, 200);
    }
    for (const role of ['auditor', 'admin'] as const) {
      ok(await call(env.app, 'POST', '/api/v1/verify', t[role]));
      assert.equal((await call(env.app, 'GET', '/api/v1/export', t[role])).statusCode, 200);
    }
    ok(await call(env.app, 'GET', '/api/v1/tokens', t.admin));
    ok(await call(env.app, 'POST', '/api/v1/consents', t.privacy_officer, policyBody(pid('p-authz-2'))), 201);
    ok(await call(env.app, 'POST', `/api/v1/consents/${pid('p-authz-2')}/revoke`, t.privacy_officer), 201);
  });
});

// ---- actor and role from the token ------------------------------------------------------------

describe('the actor and role on events come from the token', () => {
  before(async () => {
    ok(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-actor'))), 201);
  });

  it('writes the token name and role on access, inference and consent events', async () => {
    const a = ok<{ event: { index: number } }>(await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(pid('p-actor'))), 201);
    const ea = await entryAt(env, a.event.index);
    assert.equal(ea.type, 'DATA_ACCESSED');
    assert.equal(ea.payload['actor'], NAMES.dermatologist);
    assert.equal(ea.payload['role'], 'dermatologist');
    const i = ok<{ event: { index: number }; receipt: { actor: string; role: string } }>(
      await call(env.app, 'POST', '/api/v1/inferences', env.tokens.dermatologist, inferenceBody(pid('p-actor'))),
      201,
    );
    const ei = await entryAt(env, i.event.index);
    assert.equal(ei.payload['actor'], NAMES.dermatologist);
    assert.equal(i.receipt.actor, NAMES.dermatologist);
    assert.equal(i.receipt.role, 'dermatologist');
    const c = ok<{ event: { index: number }; policy: { recordedBy: { actor: string; role: string } } }>(
      await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-actor-2'))),
      201,
    );
    const ec = await entryAt(env, c.event.index);
    assert.equal(ec.payload['actor'], NAMES.privacy_officer);
    assert.equal(ec.payload['role'], 'privacy_officer');
    assert.deepEqual(c.policy.recordedBy, { actor: NAMES.privacy_officer, role: 'privacy_officer' });
    const t = ok<{ event: { index: number } }>(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic')), 201);
    const et = await entryAt(env, t.event.index);
    assert.equal(et.payload['actor'], NAMES.ml_engineer);
    assert.equal(et.payload['role'], 'ml_engineer');
  });

  it('accepts a body that repeats the token’s own actor and role', async () => {
    const r = ok<{ event: { index: number } }>(
      await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(pid('p-actor'), { actor: { id: NAMES.dermatologist, role: 'dermatologist' } })),
      201,
    );
    assert.equal((await entryAt(env, r.event.index)).payload['actor'], NAMES.dermatologist);
  });

  it('refuses a body claiming another actor or role: 403 ACTOR_MISMATCH, nothing written', async () => {
    const size = env.log.size;
    const claims: [Role, string, Record<string, unknown>][] = [
      ['dermatologist', '/api/v1/access', accessBody(pid('p-actor'), { actor: { id: 'someone_else' } })],
      ['dermatologist', '/api/v1/access', accessBody(pid('p-actor'), { actor: { id: NAMES.dermatologist, role: 'privacy_officer' } })],
      ['dermatologist', '/api/v1/inferences', inferenceBody(pid('p-actor'), { actor: { id: 'someone_else', role: 'dermatologist' } })],
      ['privacy_officer', '/api/v1/consents', policyBody(pid('p-actor-3'), { actor: { id: 'someone_else' } })],
      ['privacy_officer', `/api/v1/consents/${pid('p-actor-2')}/revoke`, { actor: { id: 'someone_else' } }],
      ['ml_engineer', '/api/v1/trainings', trainingBody('synthetic', { actor: { id: 'someone_else' } })],
    ];
    for (const [role, url, body] of claims) {
      const err = expectError(await call(env.app, 'POST', url, env.tokens[role], body), 403, 'ACTOR_MISMATCH');
      assert.equal((err.details as { credentialActor: string }).credentialActor, NAMES[role]);
    }
    assert.equal(env.log.size, size, 'nothing written');
    // The policy was neither created nor revoked.
    expectError(await call(env.app, 'GET', `/api/v1/consents/${pid('p-actor-3')}`, env.tokens.privacy_officer), 404, 'POLICY_NOT_FOUND');
    const show = ok<{ versions: unknown[] }>(await call(env.app, 'GET', `/api/v1/consents/${pid('p-actor-2')}`, env.tokens.privacy_officer));
    assert.equal(show.versions.length, 1);
  });
});

// ---- governance operations ------------------------------------------------------------------

describe('governance over HTTP', () => {
  const PID = pid('p-gov');
  let createdAt = 0;
  let accessIndex = 0;
  let deniedIndex = 0;
  let inferenceIndex = 0;

  it('creates a consent (201) and refuses a second one with the same id (409 POLICY_EXISTS)', async () => {
    const size = env.log.size;
    const r = ok<{ policy: Record<string, unknown>; hash: string; event: { index: number; leafHash: string; treeSize: number; rootHash: string; checkpoint: string } }>(
      await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(PID, { allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist', 'nurse'] })),
      201,
    );
    createdAt = r.event.index;
    assert.equal(r.event.index, size);
    assert.equal(r.event.treeSize, size + 1);
    assert.equal(r.policy['policyId'], PID);
    assert.equal(r.policy['version'], 1);
    assert.match(String(r.policy['subject']), /^[0-9a-f]{64}$/, 'the subject is a commitment');
    assert.notEqual(r.policy['subject'], SUBJECT);
    const cp = openCheckpoint(r.event.checkpoint, [env.dir.verifier], env.dir.origin);
    assert.equal(cp.treeSize, r.event.treeSize);
    assert.equal(toHex(cp.rootHash), r.event.rootHash);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, 'CONSENT_CREATED');
    assert.ok(!JSON.stringify(e).includes(SUBJECT), 'the subject never reaches the log');

    const again = expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(PID)), 409, 'POLICY_EXISTS');
    assert.ok(again);
    assert.equal(env.log.size, size + 1);
  });

  it('checks consent without writing (permit, and deny with its reason)', async () => {
    const size = env.log.size;
    const permit = ok<{ effect: string; reason: string; policyVersion: number }>(
      await call(env.app, 'POST', `/api/v1/consents/${PID}/check`, env.tokens.dermatologist, { purpose: 'TREAT', role: 'dermatologist' }),
    );
    assert.equal(permit.effect, 'permit');
    assert.equal(permit.reason, 'PERMITTED');
    assert.equal(permit.policyVersion, 1);
    const deny = ok<{ effect: string; reason: string }>(await call(env.app, 'POST', `/api/v1/consents/${PID}/check`, env.tokens.dermatologist, { purpose: 'HRESCH', role: 'dermatologist' }));
    assert.equal(deny.effect, 'deny');
    assert.equal(deny.reason, 'PURPOSE_NOT_ALLOWED');
    const unknown = ok<{ effect: string; reason: string }>(
      await call(env.app, 'POST', `/api/v1/consents/${pid('p-nope')}/check`, env.tokens.dermatologist, { purpose: 'HRESCH', role: 'dermatologist' }),
    );
    assert.equal(unknown.reason, 'POLICY_NOT_FOUND');
    expectError(await call(env.app, 'POST', `/api/v1/consents/${PID}/check`, env.tokens.dermatologist, { purpose: 'TREAT' }), 400, 'VALIDATION_FAILED');
    // A check reads a patient's policy: each answered check is an AUDIT_READ, and nothing else is written.
    assert.equal(env.log.size, size + 3);
    for (let i = size; i < size + 3; i++) {
      assert.equal((JSON.parse((await env.log.reader.getEntry(i)).bytes.toString('utf8')) as { type: string }).type, 'AUDIT_READ');
    }
  });

  it('records an access (201) with the decision and a verifiable event', async () => {
    const size = env.log.size;
    const r = ok<{ decision: { effect: string; policyVersion: number; policyHash: string }; event: { index: number; leafHash: string } }>(
      await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(PID)),
      201,
    );
    accessIndex = r.event.index;
    assert.equal(r.event.index, size);
    assert.equal(r.decision.effect, 'permit');
    assert.equal(r.decision.policyVersion, 1);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, 'DATA_ACCESSED');
    assert.equal(e.payload['policyHash'], r.decision.policyHash);
    assert.ok(!JSON.stringify(e).includes(IMAGE_URI), 'the URI never reaches the log');
    assert.equal(toHex(hashLeaf((await env.log.reader.getEntry(r.event.index)).bytes)), r.event.leafHash);
  });

  it('refuses an access consent does not permit: 403 CONSENT_DENIED with decision and event, exactly one CONSENT_DENIED entry', async () => {
    const size = env.log.size;
    const res = await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(PID, { purpose: 'HRESCH' }));
    const err = expectError(res, 403, 'CONSENT_DENIED');
    assert.equal((err.details as { reason: string }).reason, 'PURPOSE_NOT_ALLOWED');
    const body = res.json() as { decision: { effect: string; reason: string; policyId: string }; event: { index: number; treeSize: number; leafHash: string } };
    assert.equal(body.decision.effect, 'deny');
    assert.equal(body.decision.reason, 'PURPOSE_NOT_ALLOWED');
    assert.equal(body.decision.policyId, PID);
    assert.equal(body.event.index, size);
    assert.equal(body.event.treeSize, size + 1);
    assert.equal(env.log.size, size + 1, 'exactly one entry');
    const e = await entryAt(env, body.event.index);
    assert.equal(e.type, 'CONSENT_DENIED');
    assert.equal(e.payload['reason'], 'PURPOSE_NOT_ALLOWED');
    assert.equal(e.payload['actor'], NAMES.dermatologist);
    assert.equal(e.payload['operation'], 'data_access');
    deniedIndex = body.event.index;
    // On an unknown policy, too.
    const res2 = await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(pid('p-unknown')));
    expectError(res2, 403, 'CONSENT_DENIED');
    assert.equal((res2.json() as { decision: { reason: string } }).decision.reason, 'POLICY_NOT_FOUND');
    assert.equal(env.log.size, size + 2);
  });

  it('records an inference (201) with its receipt, and rebuilds the receipt (ok)', async () => {
    const r = ok<{ receipt: { event: { index: number }; consent: { policyId: string; version: number }; input: { uri: string; digest: string } }; receiptHash: string; event: { index: number } }>(
      await call(env.app, 'POST', '/api/v1/inferences', env.tokens.dermatologist, inferenceBody(PID)),
      201,
    );
    inferenceIndex = r.event.index;
    assert.equal(r.receipt.event.index, r.event.index);
    assert.deepEqual(r.receipt.consent.policyId, PID);
    assert.equal(r.receipt.consent.version, 1);
    assert.match(r.receipt.input.uri, /^[0-9a-f]{64}$/, 'the receipt holds a commitment, not the URI');
    assert.match(r.receiptHash, /^[0-9a-f]{64}$/);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, 'INFERENCE_EXECUTED');
    assert.equal((e.payload['documents'] as { receipt: string }).receipt, r.receiptHash);

    const rb = ok<{
      ok: boolean;
      eventIndex: number;
      receipt: unknown;
      artifacts: { role: string; uri: string | null }[];
      checks: { ok: boolean }[];
      proof: { treeSize: number; rootHash: string; leafHash: string; path: string[] };
    }>(await call(env.app, 'GET', `/api/v1/receipts/${r.event.index}`, env.tokens.dermatologist));
    assert.equal(rb.ok, true);
    assert.equal(rb.eventIndex, r.event.index);
    assert.ok(rb.checks.length > 0 && rb.checks.every((c) => c.ok));
    assert.deepEqual(rb.receipt, r.receipt);
    assert.ok(
      rb.artifacts.every((a) => a.uri === null),
      'a receipt shows commitments only',
    );
    const opened = ok<{ artifacts: { uri: string | null }[] }>(await call(env.app, 'GET', `/api/v1/receipts/${r.event.index}?open=true&purpose=TREAT`, env.tokens.dermatologist));
    assert.ok(
      opened.artifacts.some((a) => a.uri === IMAGE_URI),
      'opened for a permitted role with a purpose',
    );
    verifyInclusion(r.event.index, rb.proof.treeSize, fromHex(rb.proof.leafHash), rb.proof.path.map(fromHex), fromHex(rb.proof.rootHash));

    expectError(await call(env.app, 'GET', `/api/v1/receipts/${accessIndex}`, env.tokens.dermatologist), 404, 'RECEIPT_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/api/v1/receipts/99999999', env.tokens.dermatologist), 400, 'INDEX_OUT_OF_RANGE');
    expectError(await call(env.app, 'GET', '/api/v1/receipts/-1', env.tokens.dermatologist), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', '/api/v1/receipts/01', env.tokens.dermatologist), 400, 'VALIDATION_FAILED');
  });

  it('refuses an inference consent does not permit (403 CONSENT_DENIED, one entry)', async () => {
    const size = env.log.size;
    const res = await call(env.app, 'POST', '/api/v1/inferences', env.tokens.ml_engineer, inferenceBody(PID));
    expectError(res, 403, 'CONSENT_DENIED');
    const body = res.json() as { decision: { reason: string }; event: { index: number } };
    assert.equal(body.decision.reason, 'ROLE_NOT_ALLOWED');
    assert.equal(env.log.size, size + 1);
    assert.equal((await entryAt(env, body.event.index)).payload['operation'], 'inference');
  });

  it('shows a consent with its versions and the decisions made under each', async () => {
    const r = ok<{
      policyId: string;
      versions: { version: number; index: number; documentOk: boolean; type: string }[];
      decisions: Record<string, { index: number; type: string; actor: string; role: string; purpose: string; reason: string }[]>;
    }>(await call(env.app, 'GET', `/api/v1/consents/${PID}`, env.tokens.auditor));
    assert.equal(r.policyId, PID);
    assert.deepEqual(
      r.versions.map((v) => [v.version, v.index, v.documentOk, v.type]),
      [[1, createdAt, true, 'CONSENT_CREATED']],
    );
    const v1 = r.decisions['1'] ?? [];
    const byIndex = new Map(v1.map((d) => [d.index, d]));
    assert.equal(byIndex.get(accessIndex)?.type, 'DATA_ACCESSED');
    assert.equal(byIndex.get(accessIndex)?.reason, 'PERMITTED');
    assert.equal(byIndex.get(accessIndex)?.actor, NAMES.dermatologist);
    assert.equal(byIndex.get(deniedIndex)?.type, 'CONSENT_DENIED');
    assert.equal(byIndex.get(deniedIndex)?.reason, 'PURPOSE_NOT_ALLOWED');
    assert.equal(byIndex.get(inferenceIndex)?.type, 'INFERENCE_EXECUTED');
    assert.equal(v1.length, 4, 'access, denied access, inference, denied inference');
    expectError(await call(env.app, 'GET', `/api/v1/consents/${pid('p-unknown')}`, env.tokens.auditor), 404, 'POLICY_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/api/v1/consents/bad%20id', env.tokens.auditor), 400, 'VALIDATION_FAILED');
  });

  it('revokes a consent (201, version 2); later attempts are refused and logged as REVOKED', async () => {
    const r = ok<{ policy: { version: number; revoked: boolean }; event: { index: number } }>(await call(env.app, 'POST', `/api/v1/consents/${PID}/revoke`, env.tokens.privacy_officer), 201);
    assert.equal(r.policy.version, 2);
    assert.equal(r.policy.revoked, true);
    assert.equal((await entryAt(env, r.event.index)).type, 'CONSENT_REVOKED');
    const size = env.log.size;
    expectError(await call(env.app, 'POST', `/api/v1/consents/${PID}/revoke`, env.tokens.privacy_officer), 403, 'CONSENT_ALREADY_REVOKED');
    expectError(await call(env.app, 'POST', `/api/v1/consents/${pid('p-unknown')}/revoke`, env.tokens.privacy_officer), 404, 'POLICY_NOT_FOUND');
    assert.equal(env.log.size, size, 'refused revocations write nothing');

    const denied = await call(env.app, 'POST', '/api/v1/inferences', env.tokens.dermatologist, inferenceBody(PID));
    expectError(denied, 403, 'CONSENT_DENIED');
    assert.equal((denied.json() as { decision: { reason: string; policyVersion: number } }).decision.reason, 'REVOKED');
    assert.equal((denied.json() as { decision: { reason: string; policyVersion: number } }).decision.policyVersion, 2);
    assert.equal(env.log.size, size + 1);
    const show = ok<{ versions: { version: number; type: string }[]; decisions: Record<string, unknown[]> }>(await call(env.app, 'GET', `/api/v1/consents/${PID}`, env.tokens.privacy_officer));
    assert.deepEqual(
      show.versions.map((v) => [v.version, v.type]),
      [
        [1, 'CONSENT_CREATED'],
        [2, 'CONSENT_REVOKED'],
      ],
    );
    assert.equal(show.decisions['2']?.length, 1);

    // A non-revocable policy.
    ok(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-fixed'), { revocable: false })), 201);
    expectError(await call(env.app, 'POST', `/api/v1/consents/${pid('p-fixed')}/revoke`, env.tokens.privacy_officer), 403, 'CONSENT_NOT_REVOCABLE');
  });

  it('records a training run (201); an identified dataset without policies, or free text, is refused (400) and nothing is written', async () => {
    const r = ok<{ manifestHash: string; event: { index: number } }>(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic')), 201);
    assert.match(r.manifestHash, /^[0-9a-f]{64}$/);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, 'TRAINING_EXECUTED');
    assert.equal((e.payload['dataset'] as { type: string }).type, 'synthetic');
    const size = env.log.size;
    const err = expectError(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('identified')), 400, 'VALIDATION_FAILED');
    assert.ok(Array.isArray((err.details as { issues: unknown[] }).issues));
    expectError(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic', { computeBackend: '' })), 400, 'VALIDATION_FAILED');
    expectError(
      await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic', { computeBackend: 'patient John Smith DOB 1970-01-01 MRN 00012345' })),
      400,
      'VALIDATION_FAILED',
    );
    expectError(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic', { attestation: undefined })), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic', { dataset: { uri: 's3://b/k', digest: D1 } })), 400, 'VALIDATION_FAILED');
    assert.equal(env.log.size, size);
  });

  it("records a training run on identified data under every subject's consent; a refusal is 403 CONSENT_DENIED and logged", async () => {
    ok(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-train-a'))), 201);
    ok(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-train-care'), { allowedPurposes: ['TREAT'] })), 201);
    const r = ok<{ decisions: { reason: string; provision: string }[]; event: { index: number } }>(
      await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('identified', { policyIds: [pid('p-train-a')] })),
      201,
    );
    assert.deepEqual(
      r.decisions.map((d) => [d.reason, d.provision]),
      [['PERMITTED', 'provision']],
    );
    const size = env.log.size;
    const denied = await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('identified', { policyIds: [pid('p-train-a'), pid('p-train-care')] }));
    expectError(denied, 403, 'CONSENT_DENIED');
    assert.equal(env.log.size, size + 1);
    const e = await entryAt(env, size);
    assert.equal(e.type, 'CONSENT_DENIED');
    assert.equal(e.payload['operation'], 'training');
    assert.equal(e.payload['policyId'], pid('p-train-care'));
  });

  it('lists entries with filters and a `next` cursor', async () => {
    const all = await exportAll(env);
    type Item = { index: number; type: string; payload: Record<string, unknown>; leafHash: string; time: string };
    const list = async (q: string) => ok<{ items: Item[]; next: number | null }>(await call(env.app, 'GET', `/api/v1/entries${q}`, env.tokens.auditor));

    // Each listing is itself logged (AUDIT_QUERY): pages are taken before the end of the export.
    const first = await list(`?before=${all.length}`);
    assert.equal(first.items.length, Math.min(50, all.length));
    assert.equal(first.items[0]?.index, all.length - 1, 'newest first');
    for (const it of first.items) assert.equal(it.leafHash, all[it.index]?.leafHash);

    // Paging with `next` visits every entry once, newest first.
    const seen: number[] = [];
    let before: number | null = all.length;
    for (let pages = 0; pages < 100; pages++) {
      const page = await list(`?limit=7&before=${before}`);
      seen.push(...page.items.map((i) => i.index));
      if (page.next === null) break;
      before = page.next;
    }
    assert.deepEqual(seen, all.map((e) => e.index).reverse());

    const expect = (pred: (e: Exported) => boolean) =>
      all
        .filter(pred)
        .map((e) => e.index)
        .reverse();
    const indices = async (q: string) => (await list(`?limit=500&before=${all.length}&${q}`)).items.map((i) => i.index);
    assert.deepEqual(
      await indices('type=DATA_ACCESSED'),
      expect((e) => e.entry.type === 'DATA_ACCESSED'),
    );
    assert.deepEqual(
      await indices(`actor=${NAMES.dermatologist}`),
      expect((e) => e.entry.payload['actor'] === NAMES.dermatologist),
    );
    assert.deepEqual(
      await indices('role=ml_engineer'),
      expect((e) => e.entry.payload['role'] === 'ml_engineer'),
    );
    assert.deepEqual(
      await indices('purpose=HRESCH'),
      expect((e) => e.entry.payload['purpose'] === 'HRESCH'),
    );
    assert.deepEqual(
      await indices('outcome=denied'),
      expect((e) => e.entry.type === 'CONSENT_DENIED'),
    );
    assert.deepEqual(
      await indices('outcome=executed'),
      expect((e) => ['DATA_ACCESSED', 'INFERENCE_EXECUTED', 'TRAINING_EXECUTED'].includes(e.entry.type)),
    );
    assert.deepEqual(
      await indices(`type=CONSENT_DENIED&actor=${NAMES.dermatologist}&purpose=HRESCH`),
      expect((e) => e.entry.type === 'CONSENT_DENIED' && e.entry.payload['actor'] === NAMES.dermatologist && e.entry.payload['purpose'] === 'HRESCH'),
    );
    assert.ok((await indices('outcome=denied')).length >= 3);
    assert.deepEqual(await indices('type=NO_SUCH_TYPE'), []);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual(await indices(`since=${future}`), []);
    assert.equal((await indices(`until=${future}`)).length, Math.min(500, all.length));

    expectError(await call(env.app, 'GET', '/api/v1/entries?limit=0', env.tokens.auditor), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', '/api/v1/entries?limit=501', env.tokens.auditor), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', '/api/v1/entries?outcome=maybe', env.tokens.auditor), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', '/api/v1/entries?before=-1', env.tokens.auditor), 400, 'VALIDATION_FAILED');
  });

  it('refuses an unparsable since/until filter', async () => {
    expectError(await call(env.app, 'GET', '/api/v1/entries?since=garbage', env.tokens.auditor), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', '/api/v1/entries?until=garbage', env.tokens.auditor), 400, 'VALIDATION_FAILED');
  });

  it('serves one entry with an inclusion proof that verifies against the signed checkpoint', async () => {
    const cpRes = ok<{ origin: string; treeSize: number; rootHash: string; note: string; verifierKey: string }>(await call(env.app, 'GET', '/api/v1/checkpoint', env.tokens.auditor));
    const cp = openCheckpoint(cpRes.note, [parseVerifierKey(cpRes.verifierKey)], cpRes.origin);
    for (const index of [0, accessIndex, inferenceIndex, cp.treeSize - 1]) {
      const r = ok<{ index: number; entry: { index: number }; entryText: string; leafHash: string; treeSize: number; rootHash: string; proof: string[]; checkpoint: string | null }>(
        await call(env.app, 'GET', `/api/v1/entries/${index}`, env.tokens.auditor),
      );
      assert.equal(r.index, index);
      assert.equal(r.entry.index, index);
      assert.equal(r.leafHash, toHex(hashLeaf(Buffer.from(r.entryText, 'utf8'))));
      // Each read is logged (AUDIT_READ), so the tree grows between reads: each proof is checked
      // against the signed checkpoint it came with.
      assert.ok(r.treeSize >= cp.treeSize);
      const signed = openCheckpoint(r.checkpoint!, [parseVerifierKey(cpRes.verifierKey)], cpRes.origin);
      assert.equal(signed.treeSize, r.treeSize);
      assert.equal(r.rootHash, toHex(signed.rootHash));
      verifyInclusion(index, r.treeSize, fromHex(r.leafHash), r.proof.map(fromHex), signed.rootHash);
    }
    expectError(await call(env.app, 'GET', `/api/v1/entries/${env.log.size + 10}`, env.tokens.auditor), 400, 'INDEX_OUT_OF_RANGE');
    expectError(await call(env.app, 'GET', '/api/v1/entries/abc', env.tokens.auditor), 400, 'VALIDATION_FAILED');
  });

  it('serves inclusion and consistency proofs that verify', async () => {
    const size = env.log.size;
    const cpRes = ok<{ origin: string; treeSize: number; rootHash: string; note: string; verifierKey: string }>(await call(env.app, 'GET', '/api/v1/checkpoint', env.tokens.auditor));
    assert.equal(cpRes.origin, env.dir.origin);
    assert.equal(cpRes.treeSize, size);
    assert.equal(cpRes.verifierKey, env.dir.verifierKey);
    const cp = openCheckpoint(cpRes.note, [parseVerifierKey(cpRes.verifierKey)], env.dir.origin);
    assert.equal(toHex(cp.rootHash), cpRes.rootHash);
    for (const [index, at] of [
      [0, undefined],
      [3, 5],
      [accessIndex, accessIndex + 1],
      [size - 1, size],
    ] as [number, number | undefined][]) {
      const r = ok<{ leafIndex: number; treeSize: number; leafHash: string; rootHash: string; proof: string[]; checkpoint: string | null }>(
        await call(env.app, 'GET', `/api/v1/proofs/inclusion/${index}${at === undefined ? '' : `?size=${at}`}`, env.tokens.auditor),
      );
      assert.equal(r.leafIndex, index);
      assert.equal(r.treeSize, at ?? size);
      verifyInclusion(index, r.treeSize, fromHex(r.leafHash), r.proof.map(fromHex), fromHex(r.rootHash));
      assert.equal(r.leafHash, toHex(hashLeaf((await env.log.reader.getEntry(index)).bytes)));
      // The root it claims is the one signed at that size (when a checkpoint was signed there).
      if (r.checkpoint !== null) {
        const c = openCheckpoint(r.checkpoint, [env.dir.verifier], env.dir.origin);
        assert.equal(c.treeSize, r.treeSize);
        assert.equal(toHex(c.rootHash), r.rootHash);
      }
      // ...and the one a consistency proof to the latest checkpoint starts from.
      const c = ok<{ oldSize: number; newSize: number; oldRoot: string; newRoot: string; proof: string[] }>(
        await call(env.app, 'GET', `/api/v1/proofs/consistency?from=${r.treeSize}&to=${size}`, env.tokens.auditor),
      );
      assert.equal(c.oldRoot, r.rootHash);
      assert.equal(c.newRoot, toHex(cp.rootHash));
      verifyConsistency(c.oldSize, c.newSize, c.proof.map(fromHex), fromHex(c.oldRoot), fromHex(c.newRoot));
    }
    // A tampered proof does not verify.
    const c = ok<{ oldSize: number; newSize: number; oldRoot: string; newRoot: string; proof: string[] }>(
      await call(env.app, 'GET', `/api/v1/proofs/consistency?from=3&to=${size}`, env.tokens.auditor),
    );
    assert.ok(c.proof.length > 0);
    const bad = c.proof.map(fromHex);
    bad[0]![0]! ^= 1;
    assert.throws(() => verifyConsistency(c.oldSize, c.newSize, bad, fromHex(c.oldRoot), fromHex(c.newRoot)));

    expectError(await call(env.app, 'GET', `/api/v1/proofs/inclusion/0?size=${size + 1}`, env.tokens.auditor), 400, 'INDEX_OUT_OF_RANGE');
    expectError(await call(env.app, 'GET', '/api/v1/proofs/inclusion/5?size=5', env.tokens.auditor), 400, 'INDEX_OUT_OF_RANGE');
    expectError(await call(env.app, 'GET', '/api/v1/proofs/consistency?from=5&to=3', env.tokens.auditor), 400, 'INDEX_OUT_OF_RANGE');
    expectError(await call(env.app, 'GET', '/api/v1/proofs/consistency?from=1', env.tokens.auditor), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'GET', '/api/v1/proofs/consistency?from=0&to=3', env.tokens.auditor), 400, 'VALIDATION_FAILED');
  });

  it('verifies the log (ok), and reports stats, overview and anomalies that match the log', async () => {
    const v = ok<{ ok: boolean; log: { ok: boolean; entries: number }; documents: { ok: boolean } }>(await call(env.app, 'POST', '/api/v1/verify', env.tokens.auditor));
    assert.equal(v.ok, true);
    assert.equal(v.log.ok, true);
    assert.equal(v.documents.ok, true);
    assert.equal(v.log.entries, env.log.size);

    const all = await exportAll(env);
    const stats = ok<{ origin: string; entries: number; treeSize: number; rootHash: string; checkpoints: number; bytesOnDisk: number }>(
      await call(env.app, 'GET', '/api/v1/stats', env.tokens.auditor),
    );
    assert.equal(stats.origin, env.dir.origin);
    assert.equal(stats.entries, all.length);
    assert.equal(stats.treeSize, all.length);
    assert.equal(stats.rootHash, toHex(env.log.latestCheckpoint()!.rootHash));
    assert.ok(stats.checkpoints >= 1);
    assert.ok(stats.bytesOnDisk > 0);

    const byType: Record<string, number> = {};
    for (const e of all) byType[e.entry.type] = (byType[e.entry.type] ?? 0) + 1;
    const ov = ok<{ entries: number; scanned: number; eventsByType: Record<string, number>; denials: number; lastVerification: { ok: boolean } | null; checkpoint: { treeSize: number } }>(
      await call(env.app, 'GET', '/api/v1/overview', env.tokens.auditor),
    );
    assert.equal(ov.entries, all.length);
    assert.equal(ov.scanned, all.length);
    assert.deepEqual(ov.eventsByType, byType);
    assert.equal(ov.denials, byType['CONSENT_DENIED']);
    assert.equal(ov.lastVerification?.ok, true, 'the verification above is remembered');
    assert.equal(ov.checkpoint.treeSize, all.length);

    // A nurse denied again and again stands out by denial rate.
    for (let i = 0; i < 5; i++) expectError(await call(env.app, 'POST', '/api/v1/access', env.tokens.nurse, accessBody(pid('p-gov'))), 403, 'CONSENT_DENIED');
    const an = ok<{ windowHours: number; actors: number; flagged: { actor: string; role: string; attempts: number; denials: number; reasons: string[] }[] }>(
      await call(env.app, 'GET', '/api/v1/anomalies?hours=1', env.tokens.auditor),
    );
    assert.equal(an.windowHours, 1);
    const nurse = an.flagged.find((f) => f.actor === NAMES.nurse);
    assert.ok(nurse, JSON.stringify(an.flagged));
    assert.ok(nurse.reasons.includes('denial rate'));
    assert.ok(nurse.denials >= 5);
    expectError(await call(env.app, 'GET', '/api/v1/anomalies?hours=0', env.tokens.auditor), 400, 'VALIDATION_FAILED');
  });

  it('exports NDJSON whose entries re-hash to their leaf hashes, in order, up to the checkpoint', async () => {
    const all = await exportAll(env);
    assert.equal(all.length, env.log.size);
    all.forEach((e, i) => {
      assert.equal(e.index, i);
      assert.equal(toHex(hashLeaf(Buffer.from(e.text, 'utf8'))), e.leafHash);
      assert.equal(JSON.stringify(e.entry), e.text, 'the entry is the canonical text');
    });
    // The leaf hashes fold to the signed root: checked by an inclusion proof of the last one.
    const last = all[all.length - 1]!;
    const p = ok<{ rootHash: string; proof: string[] }>(await call(env.app, 'GET', `/api/v1/proofs/inclusion/${last.index}`, env.tokens.auditor));
    verifyInclusion(last.index, all.length, fromHex(last.leafHash), p.proof.map(fromHex), env.log.latestCheckpoint()!.rootHash);
    assert.equal(p.rootHash, toHex(env.log.latestCheckpoint()!.rootHash));
  });
});

// ---- tokens API -------------------------------------------------------------------------------

describe('tokens API', () => {
  it('creates a token, shows it once, lists it without secret or hash, and logs TOKEN_CREATED without the secret', async () => {
    const size = env.log.size;
    const r = ok<{ token: string; id: string; name: string; role: string; createdAt: string; revokedAt: null; hash?: string }>(
      await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { name: 'nurse-2', role: 'nurse' }),
      201,
    );
    assert.match(r.token, /^custos_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.ok(r.token.startsWith(`custos_${r.id}_`));
    assert.equal(r.name, 'nurse-2');
    assert.equal(r.role, 'nurse');
    assert.equal(r.revokedAt, null);
    assert.equal(r.hash, undefined);
    const secret = r.token.slice(`custos_${r.id}_`.length);
    const secretHash = toHex(sha256(Buffer.from(secret)));
    assert.equal(env.log.size, size + 1);

    // It works, as that name and role.
    const me = ok<{ actor: string; role: string }>(await call(env.app, 'GET', '/api/v1/me', r.token));
    assert.deepEqual([me.actor, me.role], ['nurse-2', 'nurse']);

    const list = await call(env.app, 'GET', '/api/v1/tokens', env.tokens.admin);
    const items = ok<{ id: string; name: string; role: string; revokedAt: string | null; hash?: string }[]>(list);
    const mine = items.find((t) => t.id === r.id);
    assert.ok(mine);
    assert.deepEqual([mine.name, mine.role, mine.revokedAt], ['nurse-2', 'nurse', null]);
    for (const t of items) assert.equal(t.hash, undefined);
    assert.ok(!list.body.includes(secret), 'no secret in the list');
    assert.ok(!list.body.includes(secretHash), 'no hash in the list');
    for (const role of Object.keys(NAMES) as Role[]) {
      const s = env.tokens[role].slice(24);
      assert.ok(!list.body.includes(s));
    }

    const e = await env.log.reader.getEntry(size);
    const text = e.bytes.toString('utf8');
    const entry = JSON.parse(text) as { type: string; payload: Record<string, unknown> };
    assert.equal(entry.type, 'TOKEN_CREATED');
    // The log binds the secret with a digest of its hash (never the secret, nor the row's hash).
    const secretDigest = toHex(sha256(Buffer.from(`custos-token-secret-v1:${secretHash}`)));
    assert.deepEqual(entry.payload, { tokenId: r.id, tokenName: 'nurse-2', tokenRole: 'nurse', secretDigest, actor: NAMES.admin, role: 'admin' });
    assert.ok(!text.includes(secret) && !text.includes(secretHash));
    const exported = (await call(env.app, 'GET', '/api/v1/export', env.tokens.admin)).body;
    assert.ok(!exported.includes(secret) && !exported.includes(secretHash), 'no secret anywhere on the log');
  });

  it('refuses a bad token request (400) and writes nothing', async () => {
    const size = env.log.size;
    expectError(await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { name: 'x', role: 'superuser' }), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { name: 'has space', role: 'nurse' }), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { name: 'x', role: 'nurse', admin: true }), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { role: 'nurse' }), 400, 'VALIDATION_FAILED');
    assert.equal(env.log.size, size);
  });

  it('revokes a token (DELETE 204): it stops working at once; TOKEN_REVOKED is logged; revoking again is a no-op', async () => {
    const r = ok<{ token: string; id: string }>(await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { name: 'temp-aud', role: 'auditor' }), 201);
    ok(await call(env.app, 'GET', '/api/v1/stats', r.token));
    const size = env.log.size;
    const del = await call(env.app, 'DELETE', `/api/v1/tokens/${r.id}`, env.tokens.admin);
    assert.equal(del.statusCode, 204);
    assert.equal(del.body, '');
    expectError(await call(env.app, 'GET', '/api/v1/stats', r.token), 401, 'UNAUTHENTICATED');
    assert.equal(env.log.size, size + 1);
    const text = (await env.log.reader.getEntry(size)).bytes.toString('utf8');
    const entry = JSON.parse(text) as { type: string; payload: Record<string, unknown> };
    assert.equal(entry.type, 'TOKEN_REVOKED');
    assert.deepEqual(entry.payload, { tokenId: r.id, tokenName: 'temp-aud', tokenRole: 'auditor', actor: NAMES.admin, role: 'admin' });
    assert.ok(!text.includes(r.token.slice(24)));
    const listed = ok<{ id: string; revokedAt: string | null }[]>(await call(env.app, 'GET', '/api/v1/tokens', env.tokens.admin)).find((t) => t.id === r.id);
    assert.ok(listed?.revokedAt);

    assert.equal((await call(env.app, 'DELETE', `/api/v1/tokens/${r.id}`, env.tokens.admin)).statusCode, 204);
    assert.equal(env.log.size, size + 1, 'revoking a revoked token writes nothing');
    expectError(await call(env.app, 'DELETE', '/api/v1/tokens/0123456789abcdef', env.tokens.admin), 404, 'TOKEN_NOT_FOUND');
    expectError(await call(env.app, 'DELETE', '/api/v1/tokens/not-an-id', env.tokens.admin), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'DELETE', `/api/v1/tokens/${r.id}`, env.tokens.auditor), 403, 'FORBIDDEN');
  });

  it('lets an admin revoke its own token', async () => {
    const r = ok<{ token: string; id: string }>(await call(env.app, 'POST', '/api/v1/tokens', env.tokens.admin, { name: 'admin-2', role: 'admin' }), 201);
    assert.equal((await call(env.app, 'DELETE', `/api/v1/tokens/${r.id}`, r.token)).statusCode, 204);
    expectError(await call(env.app, 'GET', '/api/v1/tokens', r.token), 401, 'UNAUTHENTICATED');
  });
});

// ---- the error contract -------------------------------------------------------------------------

describe('errors', () => {
  it('400 VALIDATION_FAILED for malformed JSON, and for schema violations with details.issues', async () => {
    const size = env.log.size;
    for (const body of ['{', '{"purpose":', 'nul', '{"a":1}}']) {
      expectError(await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, body), 400, 'VALIDATION_FAILED');
    }
    const err = expectError(
      await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, { purpose: 'TREAT', artifact: { uri: IMAGE_URI, digest: 'xyz', extra: 1 } }),
      400,
      'VALIDATION_FAILED',
    );
    const issues = (err.details as { issues: { path: string; message: string }[] }).issues;
    assert.ok(issues.length >= 2, JSON.stringify(issues));
    for (const i of issues) {
      assert.equal(typeof i.path, 'string');
      assert.equal(typeof i.message, 'string');
    }
    assert.ok(
      issues.some((i) => i.path === 'artifact.digest'),
      JSON.stringify(issues),
    );
    // Errors found by the service (past the HTTP schema) have issues too.
    const svc = expectError(await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(pid('p-gov'), { purpose: 'not a code!' })), 400, 'VALIDATION_FAILED');
    assert.ok(Array.isArray((svc.details as { issues: unknown[] }).issues));
    expectError(await call(env.app, 'POST', '/api/v1/inferences', env.tokens.dermatologist, inferenceBody(pid('p-gov'), { outputs: [] })), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/inferences', env.tokens.dermatologist, inferenceBody(pid('p-gov'), { model: { modelName: 'm' } })), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-bad'), { validFrom: 'yesterday' })), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-bad'), { allowedRoles: [] })), 400, 'VALIDATION_FAILED');
    // text/plain is not JSON: 415, as documented (it used to reach the schema and get 400).
    expectError(await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, 'text body', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(env.log.size, size, 'nothing written');
  });

  it('404 ROUTE_NOT_FOUND for unknown routes, 404 for unknown policies and receipts', async () => {
    expectError(await call(env.app, 'GET', '/nope'), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/api/v1/nope', env.tokens.auditor), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'POST', '/api/v1/stats', env.tokens.auditor, {}), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'DELETE', `/api/v1/consents/${pid('p-gov')}`, env.tokens.admin), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/api/v2/stats', env.tokens.auditor), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'GET', `/api/v1/consents/${pid('p-none')}`, env.tokens.auditor), 404, 'POLICY_NOT_FOUND');
    expectError(await call(env.app, 'POST', `/api/v1/consents/${pid('p-none')}/revoke`, env.tokens.privacy_officer), 404, 'POLICY_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/api/v1/receipts/0', env.tokens.auditor), 404, 'RECEIPT_NOT_FOUND');
  });

  it('does not coerce JSON types: "revocable": null is refused, not turned into an irrevocable consent', async () => {
    const size = env.log.size;
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-null'), { revocable: null })), 400, 'VALIDATION_FAILED');
    expectError(await call(env.app, 'POST', '/api/v1/trainings', env.tokens.ml_engineer, trainingBody('synthetic', { computeBackend: 7 })), 400, 'VALIDATION_FAILED');
    assert.equal(env.log.size, size);
  });

  it('409 POLICY_EXISTS', async () => {
    ok(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-dup'))), 201);
    const size = env.log.size;
    expectError(await call(env.app, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-dup'), { subject: 'someone-else' })), 409, 'POLICY_EXISTS');
    assert.equal(env.log.size, size);
  });

  it('413 BODY_TOO_LARGE above the body limit, nothing written', async () => {
    const small = await sideApp(env, { bodyLimit: 1024 });
    const size = env.log.size;
    expectError(await call(small, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-big'), { subject: 'x'.repeat(2000) })), 413, 'BODY_TOO_LARGE');
    expectError(
      await call(small, 'POST', '/api/v1/inferences', env.tokens.dermatologist, inferenceBody(pid('p-gov'), { pipeline: { ...PIPELINE, parameters: { pad: 'y'.repeat(5000) } } })),
      413,
      'BODY_TOO_LARGE',
    );
    assert.equal(env.log.size, size);
    // Below the limit it works.
    ok(await call(small, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody(pid('p-small'))), 201);
  });

  it('429 RATE_LIMITED per token: another token is not limited', async () => {
    const limited = await sideApp(env, { rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) ok(await call(limited, 'GET', '/api/v1/stats', env.tokens.auditor));
    const res = await call(limited, 'GET', '/api/v1/stats', env.tokens.auditor);
    expectError(res, 429, 'RATE_LIMITED');
    expectError(await call(limited, 'GET', '/api/v1/entries', env.tokens.auditor), 429, 'RATE_LIMITED');
    ok(await call(limited, 'GET', '/api/v1/stats', env.tokens.admin), 200);
    ok(await call(limited, 'GET', '/api/v1/stats', env.tokens.privacy_officer), 200);
    // A limited writer writes nothing.
    const size = env.log.size;
    for (let i = 0; i < 3; i++) ok(await call(limited, 'GET', '/api/v1/me', env.tokens.dermatologist));
    expectError(await call(limited, 'POST', '/api/v1/access', env.tokens.dermatologist, accessBody(pid('p-gov'))), 429, 'RATE_LIMITED');
    await assertOnlyAlerts(env, size);
  });

  it('415 UNSUPPORTED_MEDIA_TYPE for a non-JSON content type on a POST', async () => {
    const size = env.log.size;
    for (const ct of ['application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expectError(await call(env.app, 'POST', '/api/v1/access', env.tokens.dermatologist, '<a/>', { 'content-type': ct }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    assert.equal(env.log.size, size);
  });

  it('404 ROUTE_NOT_FOUND for a missing or out-of-root explorer file', async () => {
    expectError(await call(env.app, 'GET', '/ui/no-such-file.js'), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/ui/..%2f..%2fpackage.json'), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(env.app, 'GET', '/ui/%2e%2e/%2e%2e/package.json'), 404, 'ROUTE_NOT_FOUND');
  });

  it('GET /ui/ (a directory) is 404, not 500', async () => {
    expectError(await call(env.app, 'GET', '/ui/'), 404, 'ROUTE_NOT_FOUND');
  });
});

// ---- tlog-tiles ----------------------------------------------------------------------------------

describe('tlog-tiles', () => {
  let t: Env;
  before(async () => {
    // Entry bundles published (custos serve --public-entries), as a mirror would read them.
    t = await newEnv({ publicEntries: true });
  });

  const fetchBytes = async (url: string) => {
    const r = await call(t.app, 'GET', url);
    return { status: r.statusCode, bytes: r.rawPayload, headers: r.headers, res: r };
  };

  it('serves /checkpoint as the signed note of the latest tree', async () => {
    const r = await call(t.app, 'GET', '/checkpoint');
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.equal(r.headers['cache-control'], 'no-store');
    const cp = openCheckpoint(r.body, [t.dir.verifier], t.dir.origin);
    assert.equal(cp.treeSize, t.log.size);
    assert.deepEqual(cp.rootHash, t.log.latestCheckpoint()!.rootHash);
  });

  it('serves partial tiles and entry bundles, then full ones once 256 entries exist', async () => {
    // A partial level-0 tile holds exactly the leaf hashes.
    let all = await exportAll(t);
    const n = all.length;
    assert.ok(n > 0 && n < 256);
    let p = await fetchBytes(`/tile/0/000.p/${n}`);
    assert.equal(p.status, 200);
    assert.equal(p.headers['content-type'], 'application/octet-stream');
    assert.equal(p.headers['cache-control'], 'no-store');
    assert.deepEqual(p.bytes, Buffer.concat(all.map((e) => hashLeaf(Buffer.from(e.text, 'utf8')))));
    assert.equal((await fetchBytes(`/tile/0/000.p/${n + 1}`)).status, 404);
    assert.equal((await fetchBytes('/tile/0/000')).status, 404);
    assert.equal((await fetchBytes('/tile/entries/000')).status, 404);

    // Grow past one tile (the export adds its own AUDIT_QUERY event: 300 entries).
    await Promise.all(Array.from({ length: 299 - n }, (_, i) => t.log.append('TILE_TEST', { i, note: `entry ${i}` })));
    all = await exportAll(t);
    assert.equal(all.length, 300);
    const leaves = all.map((e) => hashLeaf(Buffer.from(e.text, 'utf8')));
    all.forEach((e, i) => assert.equal(toHex(leaves[i]!), e.leafHash));

    const full = await fetchBytes('/tile/0/000');
    assert.equal(full.status, 200);
    assert.equal(full.bytes.length, 8192);
    assert.deepEqual(full.bytes, Buffer.concat(leaves.slice(0, 256)));
    assert.match(String(full.headers['cache-control']), /immutable/);
    // The earlier partial tile is a prefix of the full one.
    p = await fetchBytes(`/tile/0/000.p/${n}`);
    assert.deepEqual(p.bytes, full.bytes.subarray(0, n * 32));
    const second = await fetchBytes('/tile/0/001.p/44');
    assert.equal(second.status, 200);
    assert.deepEqual(second.bytes, Buffer.concat(leaves.slice(256, 300)));
    assert.equal((await fetchBytes('/tile/0/001.p/45')).status, 404);
    assert.equal((await fetchBytes('/tile/0/001')).status, 404);

    // Entry bundles: uint16 length-prefixed entries.
    const bundle = await fetchBytes('/tile/entries/000');
    assert.equal(bundle.status, 200);
    const decoded = decodeEntryBundle(bundle.bytes);
    assert.equal(decoded.trailingBytes, 0);
    assert.equal(decoded.entries.length, 256);
    decoded.entries.forEach((e, i) => assert.equal(e.toString('utf8'), all[i]!.text));
    // Decoded by hand, too.
    let off = 0;
    for (let i = 0; i < 256; i++) {
      const len = bundle.bytes.readUInt16BE(off);
      assert.equal(bundle.bytes.subarray(off + 2, off + 2 + len).toString('utf8'), all[i]!.text);
      off += 2 + len;
    }
    assert.equal(off, bundle.bytes.length);
    const partialBundle = await fetchBytes('/tile/entries/001.p/44');
    assert.equal(partialBundle.status, 200);
    assert.deepEqual(
      decodeEntryBundle(partialBundle.bytes).entries.map((e) => e.toString('utf8')),
      all.slice(256).map((e) => e.text),
    );
    assert.equal((await fetchBytes('/tile/entries/001.p/45')).status, 404);

    // Tile 1/000.p/1 holds the one complete level-8 node: the root of the first 256 entries.
    const l1 = await fetchBytes('/tile/1/000.p/1');
    assert.equal(l1.status, 200);
    const c = ok<{ oldRoot: string }>(await call(t.app, 'GET', '/api/v1/proofs/consistency?from=256&to=300', t.tokens.auditor));
    assert.equal(toHex(l1.bytes), c.oldRoot);
    assert.equal((await fetchBytes('/tile/1/000.p/2')).status, 404);
    assert.equal((await fetchBytes('/tile/1/000')).status, 404);

    // The checkpoint is the root of the 300 leaves, and an inclusion proof built from the tile's
    // hashes verifies against it.
    const cp = openCheckpoint((await call(t.app, 'GET', '/checkpoint')).body, [t.dir.verifier], t.dir.origin);
    assert.equal(cp.treeSize, 300);
    const proof = ok<{ proof: string[] }>(await call(t.app, 'GET', '/api/v1/proofs/inclusion/10', t.tokens.auditor));
    verifyInclusion(10, 300, full.bytes.subarray(320, 352), proof.proof.map(fromHex), cp.rootHash);
  });

  it('404 for paths that are not canonical tile paths', async () => {
    const bad = [
      '/tile/0/x000/000',
      '/tile/0/x000/001',
      '/tile/0/000.p/0',
      '/tile/0/000.p/256',
      '/tile/0/000.p/010',
      '/tile/0/000.p/',
      '/tile/0/00a',
      '/tile/0/0a0',
      '/tile/0/00',
      '/tile/0/0000',
      '/tile/0/1',
      '/tile/a/000',
      '/tile/01/000',
      '/tile/100/000',
      '/tile/-1/000',
      '/tile/entries/x000/000',
      '/tile/entries/000.p/0',
      '/tile/entries/000.p/256',
      '/tile/entries/abc',
      '/tile/entry/000',
      '/tile/0/000/',
      '/tile/0/',
      '/tile/',
      '/tile/0/x001',
      '/tile/0/999999999999999999',
      '/tile/0/x999/x999/x999/x999/x999/999',
    ];
    for (const b of bad) {
      const r = await call(t.app, 'GET', b);
      assert.equal(r.statusCode, 404, `${b}: ${r.statusCode} ${r.body}`);
      expectError(r, 404, r.json<{ error: { code: string } }>().error.code);
    }
    // Canonical but beyond the log: 404 too.
    for (const b of ['/tile/0/x001/000', '/tile/0/005', '/tile/2/000.p/1', '/tile/entries/x999/999']) assert.equal((await call(t.app, 'GET', b)).statusCode, 404, b);
  });
});

// ---- metrics and OpenAPI ---------------------------------------------------------------------------

describe('metrics and OpenAPI', () => {
  it('serves Prometheus text with request counts and the log size to a read token', async () => {
    await call(env.app, 'GET', '/healthz');
    const r = await call(env.app, 'GET', '/metrics', env.tokens.auditor);
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    assert.match(r.body, /^# TYPE custos_http_requests_total counter$/m);
    assert.match(r.body, /^custos_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+$/m);
    assert.match(r.body, /^custos_http_requests_total\{[^}]*status="403"[^}]*\} \d+$/m);
    assert.match(r.body, new RegExp(`^custos_log_entries ${env.log.size}$`, 'm'));
    assert.match(r.body, /^custos_decisions_total\{[^}]*effect="deny"[^}]*\} \d+$/m);
    assert.match(r.body, /^custos_http_request_duration_seconds_bucket\{/m);
    assert.ok(!r.body.includes(env.tokens.auditor.slice(24)));
  });

  it('/metrics with a query string still authenticates', async () => {
    assert.equal((await call(env.app, 'GET', '/metrics?format=text', env.tokens.auditor)).statusCode, 200);
  });

  it('/openapi.json is OpenAPI 3.0.3 with a path and method for every /api route', async () => {
    const doc = ok<{ openapi: string; paths: Record<string, Record<string, { 'x-custos-permission'?: string; security?: unknown }>>; components: { schemas: Record<string, unknown> } }>(
      await call(env.app, 'GET', '/openapi.json'),
    );
    assert.equal(doc.openapi, '3.0.3');
    for (const r of API_ROUTES) {
      const op = doc.paths[r.openapi]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${r.openapi} is documented`);
      assert.equal(typeof op['x-custos-permission'], 'string');
      assert.ok(op.security);
    }
    const apiOps = Object.entries(doc.paths)
      .filter(([p]) => p.startsWith('/api/'))
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    assert.deepEqual(
      apiOps,
      API_ROUTES.filter((r) => r.openapi.startsWith('/api/'))
        .map((r) => `${r.method} ${r.openapi}`)
        .sort(),
      'no undocumented or phantom routes',
    );
    for (const p of ['/healthz', '/checkpoint', '/tile/{path}']) assert.ok(doc.paths[p]?.['get'], p);
    assert.ok(doc.components.schemas['Error']);
  });
});

// ---- logs never hold tokens or patient data ----------------------------------------------------------

describe('request logs', () => {
  it('contain neither the token secret nor subjects nor URIs', async () => {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    });
    const l = await newEnv({ logger: { level: 'info', stream } });
    const subject = 'patient-XJ-99173-secret';
    const uri = `s3://hospital-phi/${subject}/scan-77.dcm`;
    const secret = l.tokens.dermatologist.slice(24);
    const poSecret = l.tokens.privacy_officer.slice(24);
    ok(await call(l.app, 'POST', '/api/v1/consents', l.tokens.privacy_officer, policyBody(pid('p-log'), { subject })), 201);
    ok(await call(l.app, 'POST', '/api/v1/access', l.tokens.dermatologist, accessBody(pid('p-log'), { artifact: { uri, digest: D1 } })), 201);
    ok(await call(l.app, 'POST', '/api/v1/inferences', l.tokens.dermatologist, inferenceBody(pid('p-log'), { input: { uri, digest: D1 } })), 201);
    expectError(await call(l.app, 'POST', '/api/v1/access', l.tokens.dermatologist, accessBody(pid('p-log'), { purpose: 'HMARKT', artifact: { uri, digest: D1 } })), 403, 'CONSENT_DENIED');
    expectError(await call(l.app, 'POST', '/api/v1/access', l.tokens.dermatologist, { purpose: 'TREAT', artifact: { uri, digest: 'bad' } }), 400, 'VALIDATION_FAILED');
    expectError(await call(l.app, 'POST', '/api/v1/access', l.tokens.dermatologist, `{"artifact":{"uri":"${uri}"`), 400, 'VALIDATION_FAILED');
    expectError(await call(l.app, 'POST', '/api/v1/consents', l.tokens.dermatologist, policyBody(pid('p-log2'), { subject })), 403, 'FORBIDDEN');
    expectError(await call(l.app, 'GET', `/api/v1/consents/${subject}`, l.tokens.privacy_officer), 400, 'VALIDATION_FAILED');
    expectError(await call(l.app, 'GET', `/nope/${subject}`, l.tokens.dermatologist), 404, 'ROUTE_NOT_FOUND');
    expectError(await call(l.app, 'GET', '/api/v1/stats', `custos_0123456789abcdef_${'Z'.repeat(43)}`), 401, 'UNAUTHENTICATED');
    await l.app.close();
    const text = chunks.join('');
    assert.ok(text.length > 0 && /"statusCode":201/.test(text), 'requests were logged');
    for (const s of [secret, poSecret, 'Z'.repeat(43), subject, uri, 'hospital-phi', 'scan-77', 'authorization', 'Bearer']) {
      assert.ok(!text.includes(s), `log must not contain ${s}`);
    }
  });
});

// ---- a real port ---------------------------------------------------------------------------------

describe('on a real port', () => {
  it('answers /healthz and an authenticated call over TCP', async () => {
    const s = await newEnv();
    const address = await s.app.listen({ host: '127.0.0.1', port: 0 });
    const h = await fetch(`${address}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(((await h.json()) as { ok: boolean }).ok, true);
    const me = await fetch(`${address}/api/v1/me`, { headers: { authorization: `Bearer ${s.tokens.dermatologist}` } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { actor: string }).actor, NAMES.dermatologist);
    const c = await fetch(`${address}/api/v1/consents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.tokens.privacy_officer}`, 'content-type': 'application/json' },
      body: JSON.stringify(policyBody(pid('p-tcp'))),
    });
    assert.equal(c.status, 201);
    const denied = await fetch(`${address}/api/v1/stats`);
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'UNAUTHENTICATED');
    await s.app.close();
  });
});
