/**
 * The governance overlay on a real SQLite log: consent, data access, inference receipts, training
 * records, refusals (each one logged exactly once), privacy of identifiers, erasure, and races
 * between revocation and the operations it must stop, in one process and across two connections.
 *
 * Time is a ManualClock shared by the Log and the Governance: decisions are made at the log's
 * sequencing time, never at a time the caller gives.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { useTempRoot } from './helpers/fixtures.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/vectors.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { rebuildReceipt } from '../src/service/receipt.js';
import Database from 'better-sqlite3';
import { initDataDir, DB_FILE, type DataDir } from '../src/log/data-dir.js';
import { ManualClock } from '../src/log/clock.js';
import type { AppendResult, Log } from '../src/log/log.js';
import { verifyLog } from '../src/log/verify-log.js';
import type { LogStore } from '../src/store/store.js';
import { decodeEntry, formatEntryTime, type LogEntry } from '../src/core/entry.js';
import { canonicalJsonBytes } from '../src/core/canonical-json.js';
import { sha256, toHex } from '../src/core/hash.js';
import { computeCommitment } from '../src/core/commitment.js';
import { ConflictError, ConsentError, type CustosError, NotFoundError, ValidationError } from '../src/core/errors.js';
import type { DecisionReason } from '../src/core/consent/evaluate.js';
import { ConsentDeniedError, EVENT, type Governance, type Actor, type DataAccessInput, type InferenceInput, type TrainingInput } from '../src/service/governance.js';

// ---- fixtures -------------------------------------------------------------------------------

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const ADMIN: Actor = { id: 'po-1', role: 'privacy_officer' };
const DERM: Actor = { id: 'user-42', role: 'dermatologist' };
const SUBJECT = 'patient-pseudo-7781';
const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const W1 = 'c3'.repeat(32);
const W2 = 'd4'.repeat(32);
const IMAGE_URI = `s3://clinic-bucket/${SUBJECT}/visit1/image1.jpg`;
const REPORT_URI = `s3://clinic-bucket/${SUBJECT}/visit1/report.json`;

const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224, normalize: true } };
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: W1, framework: 'pytorch' };

function policyInput(policyId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    policyId,
    subject: SUBJECT,
    allowedPurposes: ['TREAT', 'HRESCH'],
    allowedRoles: ['dermatologist', 'ml_engineer'],
    ...over,
  };
}

function accessInput(policyId: string, over: Partial<DataAccessInput> = {}): DataAccessInput {
  return { actor: DERM, purpose: 'TREAT', policyId, artifact: { uri: IMAGE_URI, digest: D1 }, ...over };
}

function inferenceInput(policyId: string, over: Partial<InferenceInput> = {}): InferenceInput {
  return {
    actor: DERM,
    purpose: 'TREAT',
    policyId,
    input: { uri: IMAGE_URI, digest: D1 },
    outputs: [{ name: 'report_json', uri: REPORT_URI, digest: D2 }],
    pipeline: PIPELINE,
    model: MODEL,
    ...over,
  };
}

function trainingInput(type: string, over: Partial<TrainingInput> = {}): TrainingInput {
  return {
    actor: { id: 'eng-7', role: 'ml_engineer' },
    purpose: 'HRESCH',
    dataset: { uri: `s3://training-bucket/${type}/v1.parquet`, digest: D1, type: type as 'synthetic' },
    manifest: { name: 'finetune-1', lr: 0.001, seed: 7 },
    modelBefore: MODEL,
    modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: W2 },
    ...(type === 'identified' ? {} : { attestation: { method: type === 'synthetic' ? ('synthetic-generator' as const) : ('safe-harbor' as const) } }),
    computeBackend: 'cpu',
    ...over,
  };
}

// ---- environment ----------------------------------------------------------------------------

const root = useTempRoot('governance');

interface Env {
  readonly dataDir: string;
  readonly clock: ManualClock;
  readonly log: Log;
  readonly dir: DataDir;
  readonly store: LogStore;
  readonly gov: Governance;
}

async function newDataDir(): Promise<string> {
  const d = root.next();
  await initDataDir(d, { origin: 'governance.test/log' });
  return d;
}

/** Opens (another) writer on `dataDir`: its own SQLite connection, Log and Governance. */
async function openEnv(dataDir: string, clock: ManualClock): Promise<Env> {
  const { dir, log, gov } = await root.openGovernance({ dataDir, clock });
  return { dataDir, clock, log, dir, store: dir.store, gov };
}

async function freshEnv(startMs = T0): Promise<Env> {
  return openEnv(await newDataDir(), new ManualClock(startMs));
}

async function entryAt(env: Env, index: number): Promise<LogEntry> {
  const e = await env.store.getEntry(index);
  assert.ok(e, `entry ${index} exists`);
  return decodeEntry(e.bytes.toString('utf8'));
}

async function allEntries(store: LogStore): Promise<{ index: number; bytes: Buffer }[]> {
  const out: { index: number; bytes: Buffer }[] = [];
  for await (const page of store.entryPages(0, await store.treeSize())) for (const e of page) out.push({ index: e.index, bytes: e.bytes });
  return out;
}

async function counts(store: LogStore): Promise<{ entries: number; documents: number; commitments: number }> {
  let documents = 0;
  let commitments = 0;
  for await (const page of store.documentPages()) documents += page.length;
  for await (const page of store.commitmentPages()) commitments += page.length;
  return { entries: await store.treeSize(), documents, commitments };
}

/** Captures the rejection of `p` (fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

/**
 * Runs an attempt that consent must refuse: a ConsentDeniedError with `reason`, and exactly one
 * CONSENT_DENIED event appended, carrying that reason.
 */
async function expectDenied(env: Env, attempt: () => Promise<unknown>, reason: DecisionReason, operation: string): Promise<ConsentDeniedError> {
  const size = await env.store.treeSize();
  const err = await rejection(attempt());
  assert.ok(err instanceof ConsentDeniedError, `expected ConsentDeniedError, got ${String(err)}`);
  assert.ok(err instanceof ConsentError);
  assert.equal(err.code, 'CONSENT_DENIED');
  assert.equal(err.decision.reason, reason);
  assert.equal(err.decision.effect, 'deny');
  assert.equal(await env.store.treeSize(), size + 1, 'exactly one event appended');
  assert.equal(env.log.size, size + 1);
  assert.equal(err.event.index, size);
  const e = await entryAt(env, err.event.index);
  assert.equal(e.type, EVENT.consentDenied);
  assert.equal(e.payload['reason'], reason);
  assert.equal(e.payload['operation'], operation);
  assert.equal(e.payload['policyId'], err.decision.policyId);
  assert.equal(e.payload['policyVersion'], err.decision.policyVersion);
  assert.equal(e.payload['policyHash'], err.decision.policyHash);
  return err;
}

/** Runs an attempt that must fail with `cls`/`code` and write nothing at all. */
async function expectNothingWritten(env: Env, attempt: () => Promise<unknown>, cls: new (...a: never[]) => CustosError, code: string): Promise<unknown> {
  const before = await counts(env.store);
  const size = env.log.size;
  const err = await rejection(attempt());
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  assert.equal((err as CustosError).code, code);
  assert.deepEqual(await counts(env.store), before, 'no entry, document or commitment written');
  assert.equal(env.log.size, size);
  return err;
}

const docHash = (value: unknown): string => toHex(sha256(canonicalJsonBytes(value)));

async function storedJson(env: Env, hash: string): Promise<unknown> {
  const d = await env.store.getDocument(hash);
  assert.ok(d, `document ${hash} is stored`);
  assert.equal(toHex(sha256(d.bytes)), hash, 'document bytes hash to their address');
  return JSON.parse(d.bytes.toString('utf8'));
}

/** Opens a commitment with its stored salt, checking SHA-256(salt || value) = commitment. */
async function opening(env: Env, commitment: string): Promise<{ kind: string; value: string }> {
  const c = await env.store.getCommitment(commitment);
  assert.ok(c, `commitment ${commitment} has an opening`);
  assert.equal(computeCommitment(c.salt, c.value), commitment);
  return { kind: c.kind, value: c.value };
}

// ---- happy paths --------------------------------------------------------------------------

describe('governance: operations that succeed', () => {
  let env: Env;
  let created: Awaited<ReturnType<Governance['createConsent']>>;

  before(async () => {
    env = await freshEnv();
    created = await env.gov.createConsent(policyInput(pid('consent-001'), { validUntil: '2031-01-01T00:00:00Z' }), ADMIN);
  });

  it('createConsent writes version 1 and a CONSENT_CREATED event committing its document', async () => {
    const { policy, hash, event } = created;
    assert.equal(event.index, 0);
    assert.equal(policy.version, 1);
    assert.equal(policy.revoked, false);
    assert.equal(policy.revocable, true);
    assert.equal(policy.previous, null);
    assert.equal(policy.period.start, formatEntryTime(T0), 'validFrom defaults to the log time');
    assert.equal(policy.period.end, '2031-01-01T00:00:00.000Z');
    assert.equal(policy.recordedAt, formatEntryTime(T0));
    assert.deepEqual(policy.recordedBy, { actor: ADMIN.id, role: ADMIN.role });
    assert.deepEqual(policy.provision, { type: 'permit', purposes: ['TREAT', 'HRESCH'], roles: ['dermatologist', 'ml_engineer'] });
    assert.equal(hash, docHash(policy));
    assert.deepEqual(await storedJson(env, hash), policy);
    const e = await entryAt(env, 0);
    assert.equal(e.type, EVENT.consentCreated);
    assert.equal(e.time, formatEntryTime(T0));
    assert.deepEqual(e.payload['documents'], { policy: hash });
    assert.equal(e.payload['policyId'], pid('consent-001'));
    assert.equal(e.payload['version'], 1);
    assert.equal(e.payload['subject'], policy.subject);
    assert.deepEqual(await opening(env, policy.subject), { kind: 'subject', value: SUBJECT });
  });

  it('recordDataAccess is permitted and records the policy version it was decided under', async () => {
    env.clock.advance(1000);
    const r = await env.gov.recordDataAccess(accessInput(pid('consent-001')));
    assert.equal(r.decision.reason, 'PERMITTED');
    assert.equal(r.decision.policyVersion, 1);
    assert.equal(r.decision.policyHash, created.hash);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, EVENT.dataAccessed);
    assert.equal(e.time, formatEntryTime(T0 + 1000));
    assert.equal(e.payload['policyVersion'], 1);
    assert.equal(e.payload['policyHash'], created.hash);
    const artifact = e.payload['artifact'] as { uri: string; digest: string };
    assert.equal(artifact.digest, D1);
    assert.deepEqual(await opening(env, artifact.uri), { kind: 'uri', value: IMAGE_URI });
  });

  it('recordInference returns a receipt matching the consent, the documents stored and its event', async () => {
    env.clock.advance(1000);
    const upper = D1.toUpperCase();
    const r = await env.gov.recordInference(inferenceInput(pid('consent-001'), { input: { uri: IMAGE_URI, digest: upper } }));
    const { receipt, receiptHash, event } = r;
    const e = await entryAt(env, event.index);
    assert.equal(e.type, EVENT.inferenceExecuted);
    assert.equal(receipt.schema, 'custos/receipt/v1');
    assert.deepEqual(receipt.event, { index: event.index, time: e.time });
    assert.equal(receipt.event.time, formatEntryTime(T0 + 2000));
    assert.deepEqual(receipt.consent, { policyId: pid('consent-001'), version: 1, policyHash: created.hash });
    assert.equal(receipt.actor, DERM.id);
    assert.equal(receipt.role, DERM.role);
    assert.equal(receipt.purpose, 'TREAT');
    // Digests are normalized to lower case; URIs appear only as commitments.
    assert.equal(receipt.input.digest, D1);
    assert.deepEqual(await opening(env, receipt.input.uri), { kind: 'uri', value: IMAGE_URI });
    assert.equal(receipt.outputs.length, 1);
    assert.equal(receipt.outputs[0]?.name, 'report_json');
    assert.equal(receipt.outputs[0]?.digest, D2);
    assert.deepEqual(await opening(env, receipt.outputs[0]!.uri), { kind: 'uri', value: REPORT_URI });
    // Pipeline and model hashes: SHA-256 of the canonical JSON documents stored (defaults filled in).
    const expectedPipeline = { ...PIPELINE, dependencies: {} };
    const expectedModel = { ...MODEL, extra: {} };
    assert.equal(receipt.pipeline, docHash(expectedPipeline));
    assert.equal(receipt.model, docHash(expectedModel));
    assert.deepEqual(await storedJson(env, receipt.pipeline), expectedPipeline);
    assert.deepEqual(await storedJson(env, receipt.model), expectedModel);
    // The receipt itself is stored, and the event commits it.
    assert.equal(receiptHash, docHash(receipt));
    assert.deepEqual(await storedJson(env, receiptHash), receipt);
    assert.deepEqual(e.payload['documents'], { receipt: receiptHash, policy: created.hash, pipeline: receipt.pipeline, model: receipt.model });
    assert.deepEqual(e.payload['input'], receipt.input);
    assert.deepEqual(e.payload['outputs'], [{ name: 'report_json', digest: D2 }]);
    assert.equal(e.payload['policyVersion'], 1);
  });

  for (const type of ['synthetic', 'deidentified']) {
    it(`recordTraining on ${type} data stores the manifest and both model specs`, async () => {
      const input = trainingInput(type);
      const r = await env.gov.recordTraining(input);
      const e = await entryAt(env, r.event.index);
      assert.equal(e.type, EVENT.trainingExecuted);
      assert.equal(r.manifestHash, docHash(input.manifest));
      assert.deepEqual(await storedJson(env, r.manifestHash), input.manifest);
      const dataset = e.payload['dataset'] as { uri: string; digest: string; type: string };
      assert.equal(dataset.type, type);
      assert.equal(dataset.digest, D1);
      assert.deepEqual(await opening(env, dataset.uri), { kind: 'uri', value: input.dataset.uri });
      const docs = e.payload['documents'] as { training: string; modelBefore: string; modelAfter: string };
      assert.equal(docs.training, r.manifestHash);
      assert.deepEqual(await storedJson(env, docs.modelBefore), { ...MODEL, extra: {} });
      assert.deepEqual(await storedJson(env, docs.modelAfter), { ...MODEL, modelVersion: '0.9.4', weightsHash: W2, extra: {} });
    });
  }

  it('checkConsent answers without writing anything', async () => {
    const size = env.log.size;
    const d = await env.gov.checkConsent(pid('consent-001'), { purpose: 'HRESCH', role: 'ml_engineer' });
    assert.equal(d.reason, 'PERMITTED');
    assert.equal(d.policyVersion, 1);
    assert.equal(d.policyHash, created.hash);
    assert.equal((await env.gov.checkConsent(pid('consent-001'), { purpose: 'HMARKT', role: 'ml_engineer' })).reason, 'PURPOSE_NOT_ALLOWED');
    assert.equal((await env.gov.checkConsent(pid('consent-001'), { purpose: 'HRESCH', role: 'radiologist' })).reason, 'ROLE_NOT_ALLOWED');
    assert.equal((await env.gov.checkConsent(pid('nope'), { purpose: 'HRESCH', role: 'radiologist' })).reason, 'POLICY_NOT_FOUND');
    assert.equal(env.log.size, size);
    assert.equal(await env.store.treeSize(), size);
  });

  it('revokeConsent writes version 2 linked to version 1, and later operations are denied REVOKED', async () => {
    env.clock.advance(1000);
    const r = await env.gov.revokeConsent(pid('consent-001'), ADMIN);
    assert.equal(r.policy.version, 2);
    assert.equal(r.policy.revoked, true);
    assert.equal(r.policy.previous, created.hash);
    assert.equal(r.policy.subject, created.policy.subject);
    assert.deepEqual(r.policy.period, created.policy.period);
    assert.equal(r.hash, docHash(r.policy));
    assert.deepEqual(await storedJson(env, r.hash), r.policy);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, EVENT.consentRevoked);
    assert.deepEqual(e.payload['documents'], { policy: r.hash });
    assert.equal(e.payload['previous'], created.hash);
    assert.equal(e.payload['version'], 2);
    const d = await env.gov.checkConsent(pid('consent-001'), { purpose: 'TREAT', role: 'dermatologist' });
    assert.deepEqual([d.reason, d.policyVersion, d.policyHash], ['REVOKED', 2, r.hash]);
    const err = await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('consent-001'))), 'REVOKED', 'data_access');
    assert.equal(err.decision.policyVersion, 2);
  });

  it('showConsent lists the versions in order, each with its event index and a document check', async () => {
    const s = await env.gov.showConsent(pid('consent-001'));
    assert.equal(s.policyId, pid('consent-001'));
    assert.equal(s.versions.length, 2);
    const [v1, v2] = s.versions;
    assert.ok(v1 && v2);
    assert.deepEqual([v1.version, v1.index, v1.hash, v1.documentOk, v1.type], [1, 0, created.hash, true, EVENT.consentCreated]);
    assert.deepEqual(v1.policy, created.policy);
    assert.equal(v2.version, 2);
    assert.equal(v2.documentOk, true);
    assert.equal(v2.type, EVENT.consentRevoked);
    assert.equal(v2.policy?.previous, created.hash);
    const e2 = await entryAt(env, v2.index);
    assert.equal(e2.type, EVENT.consentRevoked);
    assert.deepEqual(e2.payload['documents'], { policy: v2.hash });
    assert.equal(v2.time, e2.time);
    assert.ok(v2.index > v1.index);
  });

  it('showConsent of an unknown policy is POLICY_NOT_FOUND', async () => {
    const err = await rejection(env.gov.showConsent(pid('never-created')));
    assert.ok(err instanceof NotFoundError);
    assert.equal(err.code, 'POLICY_NOT_FOUND');
  });

  it('the log verifies after all of it', async () => {
    const report = await verifyLog({ store: env.store, verifiers: [env.dir.verifier], origin: env.dir.origin });
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.equal(report.entries, env.log.size);
  });
});

// ---- refusals ------------------------------------------------------------------------------

describe('governance: refusals by consent (one CONSENT_DENIED event each)', () => {
  let env: Env;
  before(async () => {
    env = await freshEnv();
    await env.gov.createConsent(policyInput(pid('p-main'), { validUntil: formatEntryTime(T0 + DAY) }), ADMIN);
  });

  it('POLICY_NOT_FOUND (access and inference)', async () => {
    const a = await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-none'))), 'POLICY_NOT_FOUND', 'data_access');
    assert.equal(a.decision.policyVersion, undefined);
    const e = await entryAt(env, a.event.index);
    assert.equal('policyVersion' in e.payload, false);
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-none'))), 'POLICY_NOT_FOUND', 'inference');
  });

  it('PURPOSE_NOT_ALLOWED (access and inference)', async () => {
    const a = await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-main'), { purpose: 'HMARKT' })), 'PURPOSE_NOT_ALLOWED', 'data_access');
    assert.equal(a.decision.policyVersion, 1);
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-main'), { purpose: 'HMARKT' })), 'PURPOSE_NOT_ALLOWED', 'inference');
  });

  it('ROLE_NOT_ALLOWED (access and inference)', async () => {
    const nurse = { id: 'nurse-1', role: 'nurse' };
    await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-main'), { actor: nurse })), 'ROLE_NOT_ALLOWED', 'data_access');
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-main'), { actor: nurse })), 'ROLE_NOT_ALLOWED', 'inference');
  });

  it('DENIED_BY_PROVISION from a nested deny given at creation', async () => {
    await env.gov.createConsent(policyInput(pid('p-nested'), { provisions: [{ type: 'deny', purposes: ['HRESCH'] }] }), ADMIN);
    await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-nested'), { purpose: 'HRESCH' })), 'DENIED_BY_PROVISION', 'data_access');
    const ok = await env.gov.recordDataAccess(accessInput(pid('p-nested')));
    assert.equal(ok.decision.reason, 'PERMITTED');
  });

  it('a denied inference records what was attempted (model, pipeline, input commitment) but stores no receipt', async () => {
    const before = await counts(env.store);
    const err = await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-main'), { purpose: 'HMARKT' })), 'PURPOSE_NOT_ALLOWED', 'inference');
    const e = await entryAt(env, err.event.index);
    assert.equal(e.payload['model'], docHash({ ...MODEL, extra: {} }));
    assert.equal(e.payload['pipeline'], docHash({ ...PIPELINE, dependencies: {} }));
    const input = e.payload['input'] as { uri: string; digest: string };
    assert.deepEqual(await opening(env, input.uri), { kind: 'uri', value: IMAGE_URI });
    assert.equal((await counts(env.store)).documents, before.documents, 'no receipt or manifest stored for a refusal');
  });

  it('NOT_YET_VALID while validFrom is in the future; permitted from validFrom on (inclusive)', async () => {
    const from = env.clock.now() + HOUR;
    await env.gov.createConsent(policyInput(pid('p-future'), { validFrom: formatEntryTime(from) }), ADMIN);
    await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-future'))), 'NOT_YET_VALID', 'data_access');
    env.clock.set(from - 1);
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-future'))), 'NOT_YET_VALID', 'inference');
    env.clock.set(from);
    assert.equal((await env.gov.recordDataAccess(accessInput(pid('p-future')))).decision.reason, 'PERMITTED');
  });

  it('EXPIRED once the clock passes validUntil (validUntil itself is inclusive)', async () => {
    const now = env.clock.now();
    const until = now + 10 * 60_000;
    await env.gov.createConsent(policyInput(pid('p-expiring'), { validUntil: formatEntryTime(until) }), ADMIN);
    env.clock.set(until);
    assert.equal((await env.gov.recordDataAccess(accessInput(pid('p-expiring')))).decision.reason, 'PERMITTED');
    env.clock.set(until + 1);
    await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-expiring'))), 'EXPIRED', 'data_access');
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-expiring'))), 'EXPIRED', 'inference');
  });

  it('REVOKED after revokeConsent (access and inference)', async () => {
    await env.gov.createConsent(policyInput(pid('p-revoked')), ADMIN);
    const rv = await env.gov.revokeConsent(pid('p-revoked'), ADMIN);
    const a = await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-revoked'))), 'REVOKED', 'data_access');
    assert.deepEqual([a.decision.policyVersion, a.decision.policyHash], [2, rv.hash]);
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-revoked'))), 'REVOKED', 'inference');
  });

  it('POLICY_TAMPERED when the stored policy document is edited behind the log', async () => {
    const c = await env.gov.createConsent(policyInput(pid('p-tamper'), { allowedPurposes: ['TREAT'] }), ADMIN);
    assert.equal((await env.gov.recordDataAccess(accessInput(pid('p-tamper')))).decision.reason, 'PERMITTED');
    // Widen the allowed purposes by editing the row through a separate connection.
    const forged = { ...c.policy, provision: { ...c.policy.provision, purposes: ['TREAT', 'HMARKT'] } };
    const db = new Database(join(env.dataDir, DB_FILE));
    try {
      const changed = db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(canonicalJsonBytes(forged), c.hash).changes;
      assert.equal(changed, 1);
    } finally {
      db.close();
    }
    const a = await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-tamper'), { purpose: 'HMARKT' })), 'POLICY_TAMPERED', 'data_access');
    assert.deepEqual([a.decision.policyVersion, a.decision.policyHash], [1, c.hash]);
    await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-tamper'))), 'POLICY_TAMPERED', 'data_access');
    await expectDenied(env, () => env.gov.recordInference(inferenceInput(pid('p-tamper'))), 'POLICY_TAMPERED', 'inference');
    assert.equal((await env.gov.checkConsent(pid('p-tamper'), { purpose: 'TREAT', role: 'dermatologist' })).reason, 'POLICY_TAMPERED');
    const shown = await env.gov.showConsent(pid('p-tamper'));
    assert.equal(shown.versions.length, 1);
    assert.equal(shown.versions[0]?.documentOk, false);
    // Revoking on a tampered document is refused, and nothing is written.
    await expectNothingWritten(env, () => env.gov.revokeConsent(pid('p-tamper'), ADMIN), ConsentError, 'POLICY_TAMPERED');
  });

  it('POLICY_TAMPERED when the stored policy document is deleted', async () => {
    const c = await env.gov.createConsent(policyInput(pid('p-deleted')), ADMIN);
    const db = new Database(join(env.dataDir, DB_FILE));
    try {
      assert.equal(db.prepare('DELETE FROM documents WHERE hash = ?').run(c.hash).changes, 1);
    } finally {
      db.close();
    }
    await expectDenied(env, () => env.gov.recordDataAccess(accessInput(pid('p-deleted'))), 'POLICY_TAMPERED', 'data_access');
  });
});

describe('governance: refusals that write nothing', () => {
  let env: Env;
  before(async () => {
    env = await freshEnv();
    await env.gov.createConsent(policyInput(pid('p-1')), ADMIN);
    await env.gov.createConsent(policyInput(pid('p-fixed'), { revocable: false }), ADMIN);
  });

  it('createConsent twice: POLICY_EXISTS', async () => {
    await expectNothingWritten(env, () => env.gov.createConsent(policyInput(pid('p-1')), ADMIN), ConflictError, 'POLICY_EXISTS');
    // Even with another subject and other rules.
    await expectNothingWritten(env, () => env.gov.createConsent(policyInput(pid('p-1'), { subject: 'someone-else', allowedPurposes: ['HRESCH'] }), ADMIN), ConflictError, 'POLICY_EXISTS');
  });

  it('createConsent twice at once: exactly one wins', async () => {
    const size = env.log.size;
    const rs = await Promise.allSettled([env.gov.createConsent(policyInput(pid('p-twice')), ADMIN), env.gov.createConsent(policyInput(pid('p-twice')), ADMIN)]);
    const ok = rs.filter((r) => r.status === 'fulfilled');
    const failed = rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 1);
    assert.equal(failed.length, 1);
    assert.ok(failed[0]!.reason instanceof ConflictError);
    assert.equal(failed[0]!.reason.code, 'POLICY_EXISTS');
    assert.equal(env.log.size, size + 1);
  });

  it('createConsent with invalid input: VALIDATION_FAILED', async () => {
    await expectNothingWritten(env, () => env.gov.createConsent(policyInput('bad id'), ADMIN), ValidationError, 'VALIDATION_FAILED');
    await expectNothingWritten(env, () => env.gov.createConsent(policyInput(pid('p-2'), { allowedPurposes: [] }), ADMIN), ValidationError, 'VALIDATION_FAILED');
    await expectNothingWritten(env, () => env.gov.createConsent(policyInput(pid('p-2')), { id: 'po 1', role: 'privacy_officer' }), ValidationError, 'VALIDATION_FAILED');
  });

  it('revoking a non-revocable policy: CONSENT_NOT_REVOCABLE', async () => {
    await expectNothingWritten(env, () => env.gov.revokeConsent(pid('p-fixed'), ADMIN), ConsentError, 'CONSENT_NOT_REVOCABLE');
    assert.equal((await env.gov.checkConsent(pid('p-fixed'), { purpose: 'TREAT', role: 'dermatologist' })).reason, 'PERMITTED');
  });

  it('revoking twice: CONSENT_ALREADY_REVOKED', async () => {
    await env.gov.createConsent(policyInput(pid('p-rv')), ADMIN);
    await env.gov.revokeConsent(pid('p-rv'), ADMIN);
    await expectNothingWritten(env, () => env.gov.revokeConsent(pid('p-rv'), ADMIN), ConsentError, 'CONSENT_ALREADY_REVOKED');
  });

  it('revoking twice at once: one succeeds, the other is CONSENT_ALREADY_REVOKED', async () => {
    await env.gov.createConsent(policyInput(pid('p-rv2')), ADMIN);
    const size = env.log.size;
    const rs = await Promise.allSettled([env.gov.revokeConsent(pid('p-rv2'), ADMIN), env.gov.revokeConsent(pid('p-rv2'), ADMIN)]);
    const failed = rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(failed.length, 1);
    assert.ok(failed[0]!.reason instanceof ConsentError);
    assert.equal(failed[0]!.reason.code, 'CONSENT_ALREADY_REVOKED');
    assert.equal(env.log.size, size + 1);
  });

  it('revoking an unknown policy: POLICY_NOT_FOUND', async () => {
    await expectNothingWritten(env, () => env.gov.revokeConsent(pid('p-unknown'), ADMIN), NotFoundError, 'POLICY_NOT_FOUND');
  });

  it("training on identified data without the subjects' policies: VALIDATION_FAILED on policyIds", async () => {
    const err = await expectNothingWritten(env, () => env.gov.recordTraining(trainingInput('identified')), ValidationError, 'VALIDATION_FAILED');
    assert.ok((err as ValidationError).issues.some((i) => i.path === 'policyIds'));
  });

  const invalid: [string, () => Promise<unknown>, (path: string) => boolean][] = [
    ['an access with a bad digest', () => env.gov.recordDataAccess(accessInput(pid('p-1'), { artifact: { uri: IMAGE_URI, digest: 'abc' } })), (p) => p === 'artifact.digest'],
    ['an access with a non-hex digest', () => env.gov.recordDataAccess(accessInput(pid('p-1'), { artifact: { uri: IMAGE_URI, digest: 'g'.repeat(64) } })), (p) => p === 'artifact.digest'],
    ['an access with a bad URI', () => env.gov.recordDataAccess(accessInput(pid('p-1'), { artifact: { uri: 'not a uri', digest: D1 } })), (p) => p === 'artifact.uri'],
    ['an access with an empty URI', () => env.gov.recordDataAccess(accessInput(pid('p-1'), { artifact: { uri: '', digest: D1 } })), (p) => p === 'artifact.uri'],
    ['an access with a bad purpose code', () => env.gov.recordDataAccess(accessInput(pid('p-1'), { purpose: 'clinical care' })), (p) => p === 'purpose'],
    ['an access with a bad policy id', () => env.gov.recordDataAccess(accessInput('p 1')), (p) => p === 'policyId'],
    ['an access with a bad actor role', () => env.gov.recordDataAccess(accessInput(pid('p-1'), { actor: { id: 'u', role: '' } })), (p) => p === 'actor.role'],
    ['an inference with a bad input digest', () => env.gov.recordInference(inferenceInput(pid('p-1'), { input: { uri: IMAGE_URI, digest: 'xyz' } })), (p) => p === 'input.digest'],
    [
      'an inference with a bad output URI',
      () => env.gov.recordInference(inferenceInput(pid('p-1'), { outputs: [{ name: 'report_json', uri: 'report.json', digest: D2 }] })),
      (p) => p === 'outputs.0.uri',
    ],
    ['an inference with no outputs', () => env.gov.recordInference(inferenceInput(pid('p-1'), { outputs: [] })), (p) => p === 'outputs'],
    [
      'an inference whose model has no weightsHash',
      () => env.gov.recordInference(inferenceInput(pid('p-1'), { model: { modelName: 'm', modelVersion: '1', framework: 'pytorch' } })),
      (p) => p.endsWith('weightsHash'),
    ],
    ['an inference whose model has a bad weightsHash', () => env.gov.recordInference(inferenceInput(pid('p-1'), { model: { ...MODEL, weightsHash: 'nope' } })), (p) => p.endsWith('weightsHash')],
    ['an inference without a pipeline name', () => env.gov.recordInference(inferenceInput(pid('p-1'), { pipeline: { pipelineVersion: '1' } })), (p) => p.endsWith('pipelineName')],
    [
      'a training run whose modelAfter has no weightsHash',
      () => env.gov.recordTraining(trainingInput('synthetic', { modelAfter: { modelName: 'm', modelVersion: '2', framework: 'pytorch' } })),
      (p) => p.endsWith('weightsHash'),
    ],
    ['a training run with a bad dataset URI', () => env.gov.recordTraining(trainingInput('synthetic', { dataset: { uri: 'nope', digest: D1, type: 'synthetic' } })), (p) => p === 'dataset.uri'],
    ['a training run without a manifest name', () => env.gov.recordTraining(trainingInput('synthetic', { manifest: { lr: 0.1 } })), (p) => p.endsWith('name')],
  ];
  for (const [name, attempt, path] of invalid) {
    it(`${name}: VALIDATION_FAILED with its path`, async () => {
      const err = await expectNothingWritten(env, attempt, ValidationError, 'VALIDATION_FAILED');
      const issues = (err as ValidationError).issues;
      assert.ok(
        issues.some((i) => path(i.path)),
        `paths: ${issues.map((i) => i.path).join(', ')}`,
      );
    });
  }

  it('invalid input for an unknown policy is still a validation error, not a logged refusal', async () => {
    await expectNothingWritten(env, () => env.gov.recordDataAccess(accessInput(pid('p-unknown'), { artifact: { uri: IMAGE_URI, digest: 'abc' } })), ValidationError, 'VALIDATION_FAILED');
  });
});

// ---- one event per attempt -------------------------------------------------------------------

describe('governance: every attempt leaves exactly one event', () => {
  it('a concurrent mix of permitted and denied attempts grows the log by exactly their number', async () => {
    const env = await freshEnv();
    await env.gov.createConsent(policyInput(pid('p-a'), { provisions: [{ type: 'deny', purposes: ['HRESCH'], roles: ['ml_engineer'] }] }), ADMIN);
    await env.gov.createConsent(policyInput(pid('p-b')), ADMIN);
    await env.gov.revokeConsent(pid('p-b'), ADMIN);
    await env.gov.createConsent(policyInput(pid('p-c'), { validFrom: formatEntryTime(T0 + DAY) }), ADMIN);
    const start = env.log.size;
    const attempts: { expect: DecisionReason; run: () => Promise<{ event: AppendResult }> }[] = [];
    const eng = { id: 'eng-1', role: 'ml_engineer' };
    for (let i = 0; i < 12; i++) {
      const uri = `s3://mix/${i % 4}.jpg`;
      const artifact = { uri, digest: D1 };
      attempts.push(
        { expect: 'PERMITTED', run: () => env.gov.recordDataAccess(accessInput(pid('p-a'), { artifact })) },
        { expect: 'PERMITTED', run: () => env.gov.recordInference(inferenceInput(pid('p-a'), { input: artifact })) },
        { expect: 'DENIED_BY_PROVISION', run: () => env.gov.recordDataAccess(accessInput(pid('p-a'), { actor: eng, purpose: 'HRESCH', artifact })) },
        { expect: 'PURPOSE_NOT_ALLOWED', run: () => env.gov.recordInference(inferenceInput(pid('p-a'), { purpose: 'HPAYMT', input: artifact })) },
        { expect: 'ROLE_NOT_ALLOWED', run: () => env.gov.recordDataAccess(accessInput(pid('p-a'), { actor: { id: 'x', role: 'radiologist' }, artifact })) },
        { expect: 'REVOKED', run: () => env.gov.recordDataAccess(accessInput(pid('p-b'), { artifact })) },
        { expect: 'NOT_YET_VALID', run: () => env.gov.recordInference(inferenceInput(pid('p-c'), { input: artifact })) },
        { expect: 'POLICY_NOT_FOUND', run: () => env.gov.recordDataAccess(accessInput(pid('p-z'), { artifact })) },
      );
    }
    const settled = await Promise.allSettled(attempts.map((a) => a.run()));
    const indexes: number[] = [];
    settled.forEach((s, i) => {
      const want = attempts[i]!.expect;
      if (s.status === 'fulfilled') {
        assert.equal(want, 'PERMITTED', `attempt ${i} should have been denied ${want}`);
        indexes.push(s.value.event.index);
      } else {
        assert.ok(s.reason instanceof ConsentDeniedError, `attempt ${i}: ${String(s.reason)}`);
        assert.equal(s.reason.decision.reason, want, `attempt ${i}`);
        indexes.push(s.reason.event.index);
      }
    });
    const n = attempts.length;
    assert.equal(env.log.size, start + n);
    assert.equal(await env.store.treeSize(), start + n);
    // Each attempt owns a distinct index, and together they cover exactly the new entries.
    assert.deepEqual(
      [...indexes].sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => start + i),
    );
    for (let i = 0; i < n; i++) {
      const e = await entryAt(env, indexes[i]!);
      const want = attempts[i]!.expect;
      if (want === 'PERMITTED') assert.ok(e.type === EVENT.dataAccessed || e.type === EVENT.inferenceExecuted);
      else {
        assert.equal(e.type, EVENT.consentDenied);
        assert.equal(e.payload['reason'], want);
      }
    }
  });
});

// ---- privacy and erasure ---------------------------------------------------------------------

describe('governance: identifiers reach the log only as commitments', () => {
  let env: Env;
  const uris = [IMAGE_URI, REPORT_URI, 's3://clinic-bucket/denied/only.jpg', 's3://training-bucket/synthetic/v1.parquet', 's3://training-bucket/deidentified/v1.parquet'];

  before(async () => {
    env = await freshEnv();
    await env.gov.createConsent(policyInput(pid('p-priv')), ADMIN);
    await env.gov.recordDataAccess(accessInput(pid('p-priv')));
    await env.gov.recordInference(inferenceInput(pid('p-priv')));
    await rejection(env.gov.recordDataAccess(accessInput(pid('p-priv'), { purpose: 'HMARKT', artifact: { uri: uris[2]!, digest: D1 } })));
    await env.gov.recordTraining(trainingInput('synthetic'));
    await env.gov.recordTraining(trainingInput('deidentified'));
  });

  it('no entry contains the subject id or any artifact URI', async () => {
    const entries = await allEntries(env.store);
    assert.equal(entries.length, env.log.size);
    for (const { index, bytes } of entries) {
      for (const secret of [SUBJECT, ...uris, 'clinic-bucket', 'training-bucket']) {
        assert.equal(bytes.includes(Buffer.from(secret, 'utf8')), false, `entry ${index} contains ${secret}`);
      }
    }
  });

  it('every commitment on the log opens with the salt in the store', async () => {
    const seen = new Map<string, string>();
    for (const { bytes } of await allEntries(env.store)) {
      const e = decodeEntry(bytes.toString('utf8'));
      const p = e.payload as { subject?: string; artifact?: { uri: string }; input?: { uri: string }; dataset?: { uri: string } };
      const cs: string[] = [];
      if (e.type === EVENT.consentCreated && p.subject) cs.push(p.subject);
      if ((e.type === EVENT.dataAccessed || e.type === EVENT.consentDenied) && p.artifact) cs.push(p.artifact.uri);
      if ((e.type === EVENT.inferenceExecuted || e.type === EVENT.consentDenied) && p.input) cs.push(p.input.uri);
      if (e.type === EVENT.trainingExecuted && p.dataset) cs.push(p.dataset.uri);
      if (e.type === EVENT.consentCreated || e.type === EVENT.dataAccessed || e.type === EVENT.inferenceExecuted || e.type === EVENT.trainingExecuted) {
        assert.equal(cs.length, 1, `entry ${e.index} (${e.type}) carries its commitment`);
      }
      for (const c of cs) {
        const o = await opening(env, c);
        seen.set(o.value, c);
      }
    }
    // The same value is committed with the same salt every time (one salt per value).
    assert.deepEqual(new Set(seen.keys()), new Set([SUBJECT, IMAGE_URI, uris[2], uris[3], uris[4]]));
    const sub = await env.store.findCommitment('subject', SUBJECT);
    assert.equal(sub?.commitment, seen.get(SUBJECT));
  });

  it('erase("subject") deletes the opening, logs ERASURE_PERFORMED, and the log still verifies', async () => {
    const policy = (await env.gov.showConsent(pid('p-priv'))).versions[0]!.policy!;
    const commitment = policy.subject;
    assert.ok(await env.store.getCommitment(commitment));
    const size = env.log.size;
    // The subject's URIs: the access, the inference's input and output, the denied access.
    const linked: string[] = [];
    for (const u of [IMAGE_URI, REPORT_URI, uris[2]!]) linked.push((await env.store.findCommitment('uri', u))!.commitment);
    const training = (await env.store.findCommitment('uri', uris[3]!))!.commitment;
    const r = await env.gov.erase('subject', SUBJECT, ADMIN);
    const erased = [commitment, ...linked].sort();
    assert.deepEqual(r.commitments, erased);
    for (const c of erased) assert.equal(await env.store.getCommitment(c), undefined);
    assert.ok(await env.store.getCommitment(training), 'a training dataset is linked to no subject');
    assert.ok(r.event);
    assert.equal(r.event.index, size);
    assert.equal(env.log.size, size + 1);
    const e = await entryAt(env, r.event.index);
    assert.equal(e.type, EVENT.erasure);
    assert.deepEqual(e.payload['commitments'], erased);
    assert.equal(e.payload['kind'], 'subject');
    assert.equal(r.event.entry.includes(SUBJECT), false);
    assert.equal(await env.store.getCommitment(commitment), undefined);
    assert.equal(await env.store.findCommitment('subject', SUBJECT), undefined);
    const report = await verifyLog({ store: env.store, verifiers: [env.dir.verifier], origin: env.dir.origin });
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.equal(report.entries, size + 1);
    // The policy still governs: erasure unlinks the subject, it does not change consent.
    assert.equal((await env.gov.recordDataAccess(accessInput(pid('p-priv')))).decision.reason, 'PERMITTED');
  });

  it('erase("uri") unlinks every event that carried the URI', async () => {
    const c = (await env.store.findCommitment('uri', uris[3]!))?.commitment;
    assert.ok(c);
    const r = await env.gov.erase('uri', uris[3]!, ADMIN);
    assert.deepEqual(r.commitments, [c]);
    assert.equal(await env.store.getCommitment(c), undefined);
    const report = await verifyLog({ store: env.store, verifiers: [env.dir.verifier], origin: env.dir.origin });
    assert.equal(report.ok, true);
  });

  it('erasing a value with no commitment writes nothing', async () => {
    const size = env.log.size;
    const r = await env.gov.erase('subject', 'nobody-at-all', ADMIN);
    assert.deepEqual(r, { commitments: [], event: undefined });
    assert.equal(env.log.size, size);
    const again = await env.gov.erase('subject', SUBJECT, ADMIN);
    assert.deepEqual(again, { commitments: [], event: undefined });
    assert.equal(env.log.size, size);
  });
});

// ---- time --------------------------------------------------------------------------------

describe('governance: decisions use the service clock', () => {
  it('a request cannot supply a time; advancing the clock past validUntil makes the next decision EXPIRED', async () => {
    const env = await freshEnv();
    const until = T0 + HOUR;
    await env.gov.createConsent(policyInput(pid('p-clock'), { validUntil: formatEntryTime(until) }), ADMIN);
    const withTime: DataAccessInput = {
      ...accessInput(pid('p-clock')),
      // @ts-expect-error -- there is no time field: the service decides at its own clock
      time: formatEntryTime(T0),
    };
    assert.equal((await env.gov.checkConsent(pid('p-clock'), { purpose: 'TREAT', role: 'dermatologist' })).reason, 'PERMITTED');
    env.clock.set(until);
    const atEnd = await env.gov.recordDataAccess(withTime);
    assert.equal(atEnd.decision.reason, 'PERMITTED');
    assert.equal((await entryAt(env, atEnd.event.index)).time, formatEntryTime(until));
    env.clock.advance(1);
    assert.equal((await env.gov.checkConsent(pid('p-clock'), { purpose: 'TREAT', role: 'dermatologist' })).reason, 'EXPIRED');
    const err = await expectDenied(env, () => env.gov.recordDataAccess(withTime), 'EXPIRED', 'data_access');
    const e = await entryAt(env, err.event.index);
    assert.equal(e.time, formatEntryTime(until + 1), 'decided and stamped at the service time');
    assert.equal('time' in e.payload, false);
    // A time smuggled into the check request is ignored as well.
    const smuggled = { purpose: 'TREAT', role: 'dermatologist', time: formatEntryTime(T0) };
    assert.equal((await env.gov.checkConsent(pid('p-clock'), smuggled)).reason, 'EXPIRED');
  });
});

// ---- concurrency -----------------------------------------------------------------------------

interface Outcome {
  readonly startedAfterRevokeAck: boolean;
  readonly permitted: boolean;
  readonly index: number;
  readonly reason: DecisionReason;
}

/** Starts an access or inference and records its outcome (permitted or the logged refusal). */
function attempt(gov: Governance, policyId: string, i: number, revokeAcked: () => boolean, uriPrefix: string): Promise<Outcome> {
  const startedAfterRevokeAck = revokeAcked();
  const uri = i % 3 === 0 ? `${uriPrefix}/shared.jpg` : `${uriPrefix}/${i}.jpg`;
  const p: Promise<{ event: AppendResult; decision: { reason: DecisionReason } }> =
    i % 4 === 3 ? gov.recordInference(inferenceInput(policyId, { input: { uri, digest: D1 } })) : gov.recordDataAccess(accessInput(policyId, { artifact: { uri, digest: D1 } }));
  return p.then(
    (r) => ({ startedAfterRevokeAck, permitted: true, index: r.event.index, reason: r.decision.reason }),
    (err: unknown) => {
      if (!(err instanceof ConsentDeniedError)) throw err;
      return { startedAfterRevokeAck, permitted: false, index: err.event.index, reason: err.decision.reason };
    },
  );
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * One round: k acknowledged accesses, then waves of accesses with the revocation issued (from
 * `revoker`) in the middle of them, then more after it is acknowledged. Checks the invariant.
 */
async function raceRound(writer: Env, revoker: Env, policyId: string, k: number, revokeWave: number, microtaskLead: number): Promise<{ permittedConcurrent: number; deniedConcurrent: number }> {
  const prefix = `s3://race/${policyId}`;
  let acked = false;
  const isAcked = (): boolean => acked;
  let n = 0;
  const warm = await Promise.all(Array.from({ length: k }, () => attempt(writer.gov, policyId, n++, isAcked, prefix)));
  for (const o of warm) assert.equal(o.reason, 'PERMITTED');

  const outcomes: Promise<Outcome>[] = [];
  let revocation: Promise<AppendResult> | undefined;
  const WAVES = 8;
  const PER_WAVE = 6;
  for (let w = 0; w < WAVES; w++) {
    for (let j = 0; j < PER_WAVE; j++) {
      if (w === revokeWave && j === PER_WAVE / 2) {
        // Let the first half of the wave get ahead by a few microtasks, so that some of it is
        // sequenced in the same batch as the revocation, before it.
        for (let m = 0; m < microtaskLead; m++) await Promise.resolve();
        revocation = revoker.gov.revokeConsent(policyId, ADMIN).then((r) => {
          acked = true;
          return r.event;
        });
      }
      outcomes.push(attempt(writer.gov, policyId, n++, isAcked, prefix));
    }
    await tick();
  }
  const revEvent = await revocation!;
  assert.equal(acked, true);
  // After the acknowledgement, more attempts: all must be refused.
  for (let j = 0; j < 5; j++) outcomes.push(attempt(writer.gov, policyId, n++, isAcked, prefix));
  const all = await Promise.all(outcomes);

  const revIdx = revEvent.index;
  let permittedConcurrent = 0;
  let deniedConcurrent = 0;
  const indexes = new Set<number>();
  for (const o of all) {
    assert.notEqual(o.index, revIdx);
    assert.equal(indexes.has(o.index), false, 'distinct indexes');
    indexes.add(o.index);
    if (o.index > revIdx) {
      assert.equal(o.permitted, false, `attempt at ${o.index} after revocation at ${revIdx} was permitted`);
      assert.equal(o.reason, 'REVOKED');
    } else {
      assert.equal(o.permitted, true, `attempt at ${o.index} before revocation at ${revIdx} was refused (${o.reason})`);
      assert.equal(o.reason, 'PERMITTED');
    }
    if (o.startedAfterRevokeAck) assert.equal(o.permitted, false, 'an attempt started after the revocation was acknowledged was permitted');
    if (!o.startedAfterRevokeAck && o.permitted) permittedConcurrent++;
    if (!o.startedAfterRevokeAck && !o.permitted) deniedConcurrent++;
  }
  // The revocation's event and every refusal agree with the log.
  const revEntry = await entryAt(writer, revIdx);
  assert.equal(revEntry.type, EVENT.consentRevoked);
  assert.equal(revEntry.payload['policyId'], policyId);
  for (const o of all.filter((x) => !x.permitted).slice(0, 5)) {
    const e = await entryAt(writer, o.index);
    assert.equal(e.type, EVENT.consentDenied);
    assert.equal(e.payload['reason'], 'REVOKED');
    assert.equal(e.payload['policyVersion'], 2);
  }
  return { permittedConcurrent, deniedConcurrent };
}

describe('governance: revocation racing accesses and inferences', () => {
  it('one instance: nothing after the revocation event is permitted, everything before it is', async () => {
    const env = await freshEnv();
    let permitted = 0;
    let denied = 0;
    for (let round = 0; round < 6; round++) {
      const policyId = pid(`race-${round}`);
      await env.gov.createConsent(policyInput(policyId), ADMIN);
      const start = env.log.size;
      const r = await raceRound(env, env, policyId, 3 + round * 2, 1 + (round % 5), round * 2);
      permitted += r.permittedConcurrent;
      denied += r.deniedConcurrent;
      // Every attempt and the revocation: one event each.
      const attempts = 3 + round * 2 + 8 * 6 + 5;
      assert.equal(env.log.size, start + attempts + 1);
    }
    // The race was real: in-flight attempts landed on both sides of a revocation.
    assert.ok(permitted > 0, 'some in-flight attempts were sequenced before a revocation');
    assert.ok(denied > 0, 'some in-flight attempts were sequenced after a revocation');
    const report = await verifyLog({ store: env.store, verifiers: [env.dir.verifier], origin: env.dir.origin });
    assert.equal(report.ok, true);
  });

  it('two instances on one data dir: a revocation through A stops B', async () => {
    const dataDir = await newDataDir();
    const clock = new ManualClock(T0);
    const a = await openEnv(dataDir, clock);
    const b = await openEnv(dataDir, clock);
    // A policy created through A is usable through B (B rereads on LOG_APPEND_CONFLICT).
    await a.gov.createConsent(policyInput(pid('shared-0')), ADMIN);
    assert.equal((await b.gov.recordDataAccess(accessInput(pid('shared-0')))).decision.reason, 'PERMITTED');
    const rv = await a.gov.revokeConsent(pid('shared-0'), ADMIN);
    // B's very next access after A's revocation is refused REVOKED, under A's version 2.
    const err = await expectDenied(b, () => b.gov.recordDataAccess(accessInput(pid('shared-0'))), 'REVOKED', 'data_access');
    assert.equal(err.decision.policyVersion, 2);
    assert.equal(err.decision.policyHash, rv.hash);
    assert.ok(err.event.index > rv.event.index);
    // And B's next inference too.
    await expectDenied(b, () => b.gov.recordInference(inferenceInput(pid('shared-0'))), 'REVOKED', 'inference');

    // Racing: B's attempts in flight while A revokes.
    for (let round = 1; round <= 3; round++) {
      const policyId = pid(`shared-${round}`);
      await a.gov.createConsent(policyInput(policyId), ADMIN);
      await raceRound(b, a, policyId, 2 + round, round, round * 3);
    }
    const report = await verifyLog({ store: a.store, verifiers: [a.dir.verifier], origin: a.dir.origin });
    assert.equal(report.ok, true);
  });

  it('two instances: B.checkConsent reflects a revocation made through A', async () => {
    const dataDir = await newDataDir();
    const clock = new ManualClock(T0);
    const a = await openEnv(dataDir, clock);
    const b = await openEnv(dataDir, clock);
    await a.gov.createConsent(policyInput(pid('stale-1')), ADMIN);
    const req = { purpose: 'TREAT', role: 'dermatologist' };
    // B appends once (and so rereads the heads): it now knows the policy.
    await b.gov.recordDataAccess(accessInput(pid('stale-1')));
    assert.equal((await b.gov.checkConsent(pid('stale-1'), req)).reason, 'PERMITTED');
    await a.gov.revokeConsent(pid('stale-1'), ADMIN);
    // checkConsent promises "the answer a recorded operation would get at this moment": REVOKED.
    assert.equal((await b.gov.checkConsent(pid('stale-1'), req)).reason, 'REVOKED');
  });

  it('two instances committing the same new URI at once: every commitment on the log still opens', async () => {
    const dataDir = await newDataDir();
    const clock = new ManualClock(T0);
    const a = await openEnv(dataDir, clock);
    const b = await openEnv(dataDir, clock);
    await a.gov.createConsent(policyInput(pid('salt-1')), ADMIN);
    await b.gov.recordDataAccess(accessInput(pid('salt-1'), { artifact: { uri: 's3://warm/0.jpg', digest: D1 } }));
    const uri = 's3://race/same-new-uri.jpg';
    const rs = await Promise.all([
      a.gov.recordDataAccess(accessInput(pid('salt-1'), { artifact: { uri, digest: D1 } })),
      b.gov.recordDataAccess(accessInput(pid('salt-1'), { artifact: { uri, digest: D1 } })),
    ]);
    for (const r of rs) {
      const e = await entryAt(a, r.event.index);
      const c = (e.payload['artifact'] as { uri: string }).uri;
      assert.ok(await a.store.getCommitment(c), `the commitment of entry ${r.event.index} has no opening`);
    }
  });
});

describe('governance: the service reaches storage only through the log', () => {
  it("no module of src/service imports the store or reaches a log's store", () => {
    const found: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, f.name);
        if (f.isDirectory()) walk(p);
        else if (p.endsWith('.ts')) {
          const text = readFileSync(p, 'utf8');
          for (const bad of [/from '(\.\.\/)+store\//, /\bLogStore\b/, /\blog\.store\b/]) if (bad.test(text)) found.push(`${p.slice(REPO_ROOT.length + 1)}: ${bad.source}`);
        }
      }
    };
    walk(join(REPO_ROOT, 'src', 'service'));
    assert.deepEqual(found, []);
  });

  it('verifyDocuments and rebuildReceipt read an open Log (its reader and sidecar) as they read its store', async () => {
    const env = await freshEnv();
    const { policy } = await env.gov.createConsent(policyInput(pid('view')), ADMIN);
    const inf = await env.gov.recordInference(inferenceInput(policy.policyId));
    await env.gov.erase('document', inf.receipt.pipeline, ADMIN);
    const fromLog = await verifyDocuments({ log: env.log });
    assert.equal(fromLog.ok, true, JSON.stringify(fromLog.findings));
    assert.equal(fromLog.documentsErased, 1);
    assert.deepEqual(fromLog, await verifyDocuments({ store: env.store }));
    const rb = await rebuildReceipt(env.log, [env.dir.verifier], env.dir.origin, inf.event.index);
    assert.equal(rb.ok, true, JSON.stringify(rb.checks));
    assert.deepEqual(
      rb.erased.map((x) => x.what),
      ['pipeline manifest'],
    );
    assert.deepEqual(rb, await rebuildReceipt(env.store, [env.dir.verifier], env.dir.origin, inf.event.index));
  });
});
