/**
 * What reaches the log is never free text, and consent means what the patient said (issue #9,
 * defects 3 and 12), on a real SQLite log:
 * - every field of every event type is a code, an identifier with a strict pattern, a hash or a
 *   salted commitment (the registry in core/events.ts, rendered in docs/log-format.md);
 * - policy ids are opaque and generated; a caller's own reference is only committed;
 * - purposes and roles come from configured vocabularies;
 * - sibling provisions are decided deny-overrides, whatever their order;
 * - training on identified data is decided under every subject's consent; other data carries an
 *   attestation.
 */
import { writeFlEvents } from './helpers/federated.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataDir } from '../src/log/data-dir.js';
import { ManualClock } from '../src/log/clock.js';
import type { Log } from '../src/log/log.js';
import { decodeEntry, type LogEntry } from '../src/core/entry.js';
import { computeCommitment } from '../src/core/commitment.js';
import { type CustosError, ValidationError } from '../src/core/errors.js';
import { EVENT_REGISTRY, EVENT_TYPE, GOVERNANCE_EVENT, TOKEN_EVENT, checkEventPayload } from '../src/core/events.js';
import { DEFAULT_VOCABULARY, POLICY_ID_RE, createVocabulary, policyIdFromBytes } from '../src/core/vocabulary.js';
import { randomBytesFrom, seededRandom } from '../src/core/random.js';
import { ConsentDeniedError, EVENT, type Governance, type Actor, type TrainingInput } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { eventFromOptions } from '../src/cli/commands/append.js';
import { AUDIT_EVENT, AuditTrail } from '../src/service/audit.js';
import { WitnessCollector } from '../src/server/witnesses.js';
import { witnessKeyFromVkey } from '../src/server/witness-key.js';
import { REPO_ROOT } from './helpers/vectors.js';
// issue 15: attestations
import { Attestations } from '../src/service/attestations.js';
import { attestationKeyFromSeed } from '../src/log/attestation-key.js';
import { useTempRoot } from './helpers/fixtures.js';
// issue 14: import of the reference's ledgers
import { sampleLedger } from './helpers/reference-ledger.js';
import { verifyReferenceLedger } from '../src/core/reference-ledger.js';
import { importReferenceLedger } from '../src/service/reference-import.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const OFFICER: Actor = { id: 'po-1', role: 'privacy_officer' };
const DERM: Actor = { id: 'user-42', role: 'dermatologist' };
const ENG: Actor = { id: 'eng-7', role: 'ml_engineer' };
const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' };
/** What the clinician in the issue typed. */
const FREE_TEXT = 'patient John Smith DOB 1970-01-01 MRN 00012345';

const root = useTempRoot('vocab');

interface Env {
  readonly log: Log;
  readonly dir: DataDir;
  readonly gov: Governance;
}

async function env(options: Partial<Parameters<typeof Governance.open>[0]> = {}, seed = 1): Promise<Env> {
  const clock = new ManualClock(T0);
  const rnd = seededRandom(seed);
  const { dir, log, gov } = await root.openGovernance({ origin: 'vocab.test/log', clock, governance: { randomBytes: (k) => randomBytesFrom(rnd, k), ...options } });
  return { log, dir, gov };
}

async function entries(e: Env): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const page of e.dir.store.entryPages(0, await e.dir.store.treeSize())) for (const x of page) out.push(decodeEntry(x.bytes.toString('utf8')));
  return out;
}

async function logText(e: Env): Promise<string> {
  return (await entries(e)).map((x) => JSON.stringify(x)).join('\n');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

/** The attempt fails with VALIDATION_FAILED (on `path` when given) and the log does not grow. */
async function refused(e: Env, p: () => Promise<unknown>, path?: string): Promise<void> {
  const size = e.log.size;
  const err = await rejection(p());
  assert.ok(err instanceof ValidationError, `expected VALIDATION_FAILED, got ${String(err)}`);
  assert.equal(err.code, 'VALIDATION_FAILED');
  if (path !== undefined)
    assert.ok(
      err.issues.some((i) => i.path === path),
      `no issue at ${path}: ${JSON.stringify(err.issues)}`,
    );
  assert.equal(e.log.size, size, 'nothing written');
  assert.equal(await e.dir.store.treeSize(), size);
}

const policy = (over: Record<string, unknown> = {}) => ({ subject: 'patient-pseudo-1', allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist', 'ml_engineer'], ...over });
const access = (policyId: string, over: Record<string, unknown> = {}) => ({ actor: DERM, purpose: 'TREAT', policyId, artifact: { uri: 's3://b/img.jpg', digest: D1 }, ...over });
function training(type: 'identified' | 'deidentified' | 'synthetic', over: Partial<TrainingInput> = {}): TrainingInput {
  return {
    actor: ENG,
    purpose: 'HRESCH',
    dataset: { uri: `s3://train/${type}.parquet`, digest: D1, type },
    manifest: { name: 'finetune-1', seed: 7 },
    modelBefore: MODEL,
    modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: D2 },
    computeBackend: 'gpu-cluster-1',
    ...over,
  };
}

describe('policy ids are opaque', () => {
  it('createConsent generates a pol_ id from the injected randomness (seeded runs repeat it)', async () => {
    const a = await env({}, 42);
    const b = await env({}, 42);
    const ra = await a.gov.createConsent(policy(), OFFICER);
    const rb = await b.gov.createConsent(policy(), OFFICER);
    assert.match(ra.policy.policyId, POLICY_ID_RE);
    assert.equal(ra.policy.policyId, rb.policy.policyId);
    const second = await a.gov.createConsent(policy(), OFFICER);
    assert.notEqual(second.policy.policyId, ra.policy.policyId);
    // The returned id is the one to use.
    assert.equal((await a.gov.recordDataAccess(access(ra.policy.policyId))).decision.reason, 'PERMITTED');
  });

  it('a caller-chosen id such as MRN00012345-John-Smith is refused, and nothing is written', async () => {
    const e = await env();
    await refused(e, () => e.gov.createConsent(policy({ policyId: 'MRN00012345-John-Smith' }), OFFICER), 'policyId');
    await refused(e, () => e.gov.recordDataAccess(access('MRN00012345-John-Smith')), 'policyId');
    await refused(
      e,
      () =>
        e.gov.recordInference({
          ...access('MRN00012345-John-Smith'),
          input: { uri: 's3://b/i', digest: D1 },
          outputs: [{ name: 'report_json', uri: 's3://b/o', digest: D2 }],
          pipeline: PIPELINE,
          model: MODEL,
        }),
      'policyId',
    );
    assert.ok(!(await logText(e)).includes('John'));
  });

  it('a caller may supply an id of exactly the opaque form', async () => {
    const e = await env();
    const id = policyIdFromBytes(Buffer.alloc(16, 7));
    assert.equal((await e.gov.createConsent(policy({ policyId: id }), OFFICER)).policy.policyId, id);
    // Not canonical base32 (the last character carries bits beyond 128): refused.
    await refused(e, () => e.gov.createConsent(policy({ policyId: `${id.slice(0, -1)}b` }), OFFICER), 'policyId');
  });

  it('an unknown (well-formed) policy id is CONSENT_DENIED with POLICY_NOT_FOUND, logged', async () => {
    const e = await env();
    const unknown = policyIdFromBytes(Buffer.alloc(16, 1));
    const err = await rejection(e.gov.recordDataAccess(access(unknown)));
    assert.ok(err instanceof ConsentDeniedError);
    assert.equal(err.decision.reason, 'POLICY_NOT_FOUND');
    const last = (await entries(e)).at(-1)!;
    assert.equal(last.type, 'CONSENT_DENIED');
    assert.equal(last.payload['reason'], 'POLICY_NOT_FOUND');
    assert.equal(last.payload['policyId'], unknown);
  });

  it("the caller's own reference (externalRef) is logged only as a salted commitment, erasable", async () => {
    const e = await env();
    const r = await e.gov.createConsent(policy({ externalRef: 'MRN00012345-John-Smith' }), OFFICER);
    const created = (await entries(e)).at(-1)!;
    const c = created.payload['externalRef'] as string;
    assert.match(c, /^[0-9a-f]{64}$/);
    assert.equal(r.policy.externalRef, c);
    const opening = await e.dir.store.getCommitment(c);
    assert.ok(opening);
    assert.equal(computeCommitment(opening.salt, opening.value), c);
    assert.ok(!(await logText(e)).includes('Smith'));
    const erased = await e.gov.erase('external_ref', 'MRN00012345-John-Smith', OFFICER);
    assert.deepEqual(erased.commitments, [c]);
    assert.equal(await e.dir.store.getCommitment(c), undefined);
  });
});

describe('free text is refused in every field a caller fills', () => {
  it('computeBackend with a patient name: VALIDATION_FAILED, nothing written', async () => {
    const e = await env();
    await refused(e, () => e.gov.recordTraining(training('synthetic', { attestation: { method: 'synthetic-generator' }, computeBackend: FREE_TEXT })), 'computeBackend');
  });

  it('purpose: free text, and a code outside the vocabulary, are refused (access, inference, training, check, policy)', async () => {
    const e = await env();
    const { policy: p } = await e.gov.createConsent(policy(), OFFICER);
    for (const purpose of [FREE_TEXT, 'research', 'clinical_care']) {
      await refused(e, () => e.gov.recordDataAccess(access(p.policyId, { purpose })), 'purpose');
      await refused(e, () => e.gov.recordTraining(training('synthetic', { purpose, attestation: { method: 'synthetic-generator' } })), 'purpose');
      await rejection(e.gov.checkConsent(p.policyId, { purpose, role: 'dermatologist' })).then((err) => assert.equal((err as CustosError).code, 'VALIDATION_FAILED'));
    }
    await refused(e, () => e.gov.createConsent(policy({ allowedPurposes: ['TREAT', 'research'] }), OFFICER), 'allowedPurposes.1');
    await refused(e, () => e.gov.createConsent(policy({ provisions: [{ type: 'deny', purposes: ['marketing'] }] }), OFFICER), 'provisions.0.purposes.0');
  });

  it('roles must be in the role table (on the actor and in the policy)', async () => {
    const e = await env();
    const { policy: p } = await e.gov.createConsent(policy(), OFFICER);
    await refused(e, () => e.gov.recordDataAccess(access(p.policyId, { actor: { id: 'x', role: 'janitor' } })), 'actor.role');
    await refused(e, () => e.gov.createConsent(policy({ allowedRoles: ['dermatologist', 'janitor'] }), OFFICER), 'allowedRoles.1');
  });

  it('configured purposes and roles extend the vocabularies', async () => {
    const e = await env({ purposes: ['DERM_SCREENING'], roles: { dermatologist: ['access'], privacy_officer: ['consent:write'], tele_derm: ['access'] } });
    const { policy: p } = await e.gov.createConsent(policy({ allowedPurposes: ['DERM_SCREENING'], allowedRoles: ['tele_derm'] }), OFFICER);
    const r = await e.gov.recordDataAccess(access(p.policyId, { purpose: 'DERM_SCREENING', actor: { id: 'td-1', role: 'tele_derm' } }));
    assert.equal(r.decision.reason, 'PERMITTED');
  });

  it('output names are lowercase identifiers', async () => {
    const e = await env();
    const { policy: p } = await e.gov.createConsent(policy(), OFFICER);
    const inf = { ...access(p.policyId), input: { uri: 's3://b/i', digest: D1 }, pipeline: PIPELINE, model: MODEL };
    await refused(e, () => e.gov.recordInference({ ...inf, outputs: [{ name: 'John Smith report', uri: 's3://b/o', digest: D2 }] }), 'outputs.0.name');
  });
});

describe('sibling provisions: deny overrides, whatever their order', () => {
  it('"deny HRESCH" and "permit ml_engineer" decide the same in either order, and name the deny', async () => {
    const e = await env();
    const deny = { type: 'deny', purposes: ['HRESCH'] };
    const permit = { type: 'permit', roles: ['ml_engineer'] };
    for (const provisions of [
      [deny, permit],
      [permit, deny],
    ]) {
      const { policy: p } = await e.gov.createConsent(policy({ provisions }), OFFICER);
      const err = await rejection(e.gov.recordDataAccess(access(p.policyId, { actor: ENG, purpose: 'HRESCH' })));
      assert.ok(err instanceof ConsentDeniedError);
      assert.equal(err.decision.reason, 'DENIED_BY_PROVISION');
      const path = `provision.provisions[${provisions.indexOf(deny)}]`;
      assert.equal(err.decision.provision, path);
      assert.equal((await entries(e)).at(-1)!.payload['provision'], path);
    }
  });
});

describe('training under consent', () => {
  it("identified data: decided under every subject's consent, for a training purpose; the decisions are on the event", async () => {
    const e = await env();
    const a = await e.gov.createConsent(policy({ subject: 's-a' }), OFFICER);
    const b = await e.gov.createConsent(policy({ subject: 's-b' }), OFFICER);
    const r = await e.gov.recordTraining(training('identified', { policyIds: [a.policy.policyId, b.policy.policyId] }));
    assert.deepEqual(
      r.decisions.map((d) => d.reason),
      ['PERMITTED', 'PERMITTED'],
    );
    const ev = (await entries(e)).at(-1)!;
    assert.equal(ev.type, 'TRAINING_EXECUTED');
    assert.deepEqual(ev.payload['consents'], [
      { policyId: a.policy.policyId, policyVersion: 1, policyHash: a.hash, provision: 'provision' },
      { policyId: b.policy.policyId, policyVersion: 1, policyHash: b.hash, provision: 'provision' },
    ]);
    assert.equal(ev.payload['attestation'], undefined);
  });

  it('one subject who did not consent to research refuses the run: CONSENT_DENIED (training) is logged, no TRAINING_EXECUTED', async () => {
    const e = await env();
    const a = await e.gov.createConsent(policy({ subject: 's-a' }), OFFICER);
    const careOnly = await e.gov.createConsent(policy({ subject: 's-b', allowedPurposes: ['TREAT'] }), OFFICER);
    const size = e.log.size;
    const err = await rejection(e.gov.recordTraining(training('identified', { policyIds: [a.policy.policyId, careOnly.policy.policyId] })));
    assert.ok(err instanceof ConsentDeniedError);
    assert.equal(err.decision.reason, 'PURPOSE_NOT_ALLOWED');
    assert.equal(err.decision.policyId, careOnly.policy.policyId);
    assert.equal(e.log.size, size + 1);
    const ev = (await entries(e)).at(-1)!;
    assert.equal(ev.type, 'CONSENT_DENIED');
    assert.equal(ev.payload['operation'], 'training');
    assert.equal(ev.payload['policyId'], careOnly.policy.policyId);
  });

  it('a revoked subject refuses the run', async () => {
    const e = await env();
    const a = await e.gov.createConsent(policy(), OFFICER);
    await e.gov.revokeConsent(a.policy.policyId, OFFICER);
    const err = await rejection(e.gov.recordTraining(training('identified', { policyIds: [a.policy.policyId] })));
    assert.ok(err instanceof ConsentDeniedError);
    assert.equal(err.decision.reason, 'REVOKED');
  });

  it('identified data for a purpose that is not a training purpose, or without policies: VALIDATION_FAILED', async () => {
    const e = await env();
    const a = await e.gov.createConsent(policy(), OFFICER);
    await refused(e, () => e.gov.recordTraining(training('identified', { purpose: 'TREAT', policyIds: [a.policy.policyId] })), 'purpose');
    await refused(e, () => e.gov.recordTraining(training('identified')), 'policyIds');
    await refused(e, () => e.gov.recordTraining(training('identified', { policyIds: [a.policy.policyId], attestation: { method: 'safe-harbor' } })), 'attestation');
  });

  it('de-identified or synthetic data needs an attestation, recorded with the attestor', async () => {
    const e = await env();
    await refused(e, () => e.gov.recordTraining(training('deidentified')), 'attestation');
    await refused(e, () => e.gov.recordTraining(training('synthetic', { attestation: { method: 'trust me' as 'safe-harbor' } })), 'attestation.method');
    await e.gov.recordTraining(training('deidentified', { attestation: { method: 'expert-determination', document: D2 } }));
    const ev = (await entries(e)).at(-1)!;
    assert.deepEqual(ev.payload['attestation'], { method: 'expert-determination', attestor: ENG.id, document: D2 });
    assert.equal(ev.payload['consents'], undefined);
  });
});

/** A small R4 Consent (written from the R4 specification): treatment permitted, under an identifier. */
function fhirConsent(status: string, dateTime: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceType: 'Consent',
      identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0b6c9d2e-4f1a-4c3b-8e7d-2a9f5c1e6b30' }],
      status,
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: 'Patient/p-vocabulary-1' },
      dateTime,
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
      provision: { type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] },
    }),
  );
}

describe('the event registry', () => {
  it('every event type, made through the service, matches the registry; free text in any field is refused', async () => {
    const e = await env();
    const auth = new Authenticator({ log: e.log });
    const a = await e.gov.createConsent(policy({ externalRef: 'FHIR-Consent/123', validUntil: '2031-01-01T00:00:00Z' }), OFFICER);
    const b = await e.gov.createConsent(policy({ subject: 's-2' }), OFFICER);
    await e.gov.recordDataAccess(access(a.policy.policyId));
    await e.gov.recordInference({
      ...access(a.policy.policyId),
      input: { uri: 's3://b/i', digest: D1 },
      outputs: [{ name: 'report_json', uri: 's3://b/o', digest: D2 }],
      pipeline: PIPELINE,
      model: MODEL,
    });
    await e.gov.recordTraining(training('identified', { policyIds: [a.policy.policyId] }));
    await e.gov.recordTraining(training('synthetic', { attestation: { method: 'synthetic-generator', document: D2 } }));
    await rejection(e.gov.recordDataAccess(access(a.policy.policyId, { purpose: 'HMARKT', justification: 'URGENT_TREATMENT' })));
    // Break-glass: an access consent denies (BTG is not among the purposes), and its review.
    const bg = await e.gov.recordDataAccess(access(a.policy.policyId, { purpose: 'BTG', justification: 'URGENT_TREATMENT' }));
    await e.gov.closeReview(bg.event.index, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER);
    // issue 15: a release of statistics with differential privacy.
    await e.gov.releaseStatistics({ query: 'unit=patient clip=2 by=outcome from=2020-01-01 to=2029-01-01', epsilon: 0.5, consumer: 'public' }, OFFICER);
    await rejection(
      e.gov.recordInference({
        ...access(b.policy.policyId, { purpose: 'HMARKT' }),
        input: { uri: 's3://b/i', digest: D1 },
        outputs: [{ name: 'report_json', uri: 's3://b/o', digest: D2 }],
        pipeline: PIPELINE,
        model: MODEL,
      }),
    );
    await e.gov.revokeConsent(b.policy.policyId, OFFICER);
    await rejection(e.gov.recordTraining(training('identified', { policyIds: [b.policy.policyId] })));
    // Issue 12: a FHIR Consent imported (CONSENT_CREATED with its source), re-imported under its
    // identifier (CONSENT_UPDATED), a decision with the full request model, and a revocation by status.
    const f1 = await e.gov.importFhirConsent(fhirConsent('active', '2024-01-01'), OFFICER);
    await e.gov.importFhirConsent(fhirConsent('active', '2024-02-01'), OFFICER);
    await e.gov.recordDataAccess({
      ...access(f1.policy.policyId),
      actorReference: 'Practitioner/p-77',
      action: 'http://terminology.hl7.org/CodeSystem/consentaction|access',
      class: 'http://hl7.org/fhir/resource-types|Observation',
      securityLabels: ['http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N'],
      dataTime: '2024-03-01T00:00:00Z',
    });
    await e.gov.importFhirConsent(fhirConsent('inactive', '2024-03-01'), OFFICER);
    await e.gov.erase('uri', 's3://b/img.jpg', OFFICER);
    // Issue 14: the model registry: a version registered, approved, run (INFERENCE_EXECUTED naming
    // it), refused with a forged digest (INFERENCE_REFUSED), retired; a change control plan.
    const CSO: Actor = { id: 'cso-1', role: 'clinical_safety_officer' };
    await e.gov.registerModel(
      { model: MODEL.modelName, version: MODEL.modelVersion, weightsHash: MODEL.weightsHash, intendedUse: 'diagnosis_aid', riskClass: 'eu_mdr_iia', spec: { note: 'free text, off-ledger' } },
      ENG,
    );
    await e.gov.approveModel(MODEL.modelName, MODEL.modelVersion, CSO);
    await e.gov.commitChangePlan({ planId: 'lc-pccp-1', model: MODEL.modelName, modifications: ['retrain'], acceptance: [{ metric: 'auroc', min: 0.9 }] }, CSO);
    const run = { ...access(a.policy.policyId), input: { uri: 's3://b/i2', digest: D1 }, outputs: [{ name: 'report_json', uri: 's3://b/o2', digest: D2 }], pipeline: PIPELINE };
    await e.gov.recordInference({ ...run, model: MODEL });
    await rejection(e.gov.recordInference({ ...run, model: { ...MODEL, weightsHash: D2 } }));
    await e.gov.retireModel(MODEL.modelName, MODEL.modelVersion, CSO, 'superseded');
    const t = await auth.createToken('temp-aud', 'auditor', { actor: 'admin-1', role: 'admin' });
    await auth.revokeToken(t.record.id, { actor: 'admin-1', role: 'admin' });
    const generic = eventFromOptions({ resource: 'res-1', practitioner: 'doc-456', hash: D1 }, () => '');
    await e.log.append(generic.type, generic.payload);
    // The HTTP server's audit trail (service/audit.ts).
    const audit = new AuditTrail({ log: e.log });
    const who = { id: 'aud-1', role: 'auditor' };
    await audit.query(who, { route: 'GET /api/v1/export', permission: 'export', range: { from: 0, to: 5 }, count: 5, queryHash: D1 });
    await audit.read(who, { route: 'GET /api/v1/consents/:policyId', permission: 'consent:read', policyId: a.policy.policyId });
    await audit.opened(
      { id: 'user-42', role: 'dermatologist' },
      { route: 'GET /api/v1/receipts/:index', permission: 'commitments:open', purpose: 'TREAT', eventIndex: 3, commitments: [a.policy.subject] },
    );
    await audit.refused({ client: 'ab'.repeat(16) }, { code: 'UNAUTHENTICATED', route: 'GET /api/v1/stats' });
    await audit.refused({ actor: 'eng-7', role: 'ml_engineer' }, { code: 'FORBIDDEN', route: 'GET /api/v1/export', permission: 'export' });
    await audit.flush();
    // The witness collector's alarm (server/witnesses.ts), as it writes it.
    const wkey = witnessKeyFromVkey('witness.test/w1+1fbaba55+BIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c');
    const collector = new WitnessCollector({ log: e.log, witnesses: [{ url: 'http://127.0.0.1:9', key: wkey }], vocabulary: e.gov.vocabulary });
    assert.notEqual(await collector.writeAlarm(wkey.name, { reason: 'REFUSED', status: 409, checkpointSize: 12, witnessSize: 10, at: 0, eventIndex: null }, 3), null);
    // issue 14: federated learning (a site, a final round with DP, a refused round, the site retired).
    await writeFlEvents(e.gov);
    // issue 14: a reference ledger imported (LEGACY_EVENT per line, LEGACY_IMPORT_COMPLETED).
    const legacy = sampleLedger();
    const verified = verifyReferenceLedger({ ledger: Buffer.from(legacy.text), policy: (id) => legacy.policies.get(id), manifest: (n) => legacy.manifests.get(n) });
    assert.ok(verified.ok);
    await importReferenceLedger(e.log, verified.ledger, { random: (k) => randomBytesFrom(seededRandom(9), k) });
    // issue 15: an attestation (ATTESTATION_KEY_PUBLISHED before the key's first use, then ATTESTATION_ISSUED).
    const attestations = new Attestations({ log: e.log, governance: e.gov, key: attestationKeyFromSeed(Buffer.alloc(32, 5)), verifiers: [e.dir.verifier], origin: e.dir.origin });
    await attestations.consent(a.policy.policyId, undefined, { actor: 'po-1', role: 'privacy_officer', route: 'POST /api/v1/attestations' });

    const all = await entries(e);
    assert.deepEqual(new Set(all.map((x) => x.type)), new Set(Object.keys(EVENT_REGISTRY)), 'every registered type was made, and nothing else');
    const vocab = e.gov.vocabulary;
    let mutated = 0;
    for (const entry of all) {
      checkEventPayload(entry.type, entry.payload, vocab);
      // Each leaf, replaced by free text, is refused.
      const visit = (node: unknown, set: (v: unknown) => void, path: string): void => {
        if (Array.isArray(node)) node.forEach((x, i) => visit(x, (v) => (node[i] = v), path));
        else if (node !== null && typeof node === 'object') for (const [k, x] of Object.entries(node)) visit(x, (v) => ((node as Record<string, unknown>)[k] = v), path ? `${path}.${k}` : k);
        else {
          set(FREE_TEXT);
          assert.throws(
            () => checkEventPayload(entry.type, entry.payload, vocab),
            (err: unknown) => err instanceof ValidationError && err.code === 'VALIDATION_FAILED',
            `${entry.type}.${path} accepted free text`,
          );
          set(node);
          mutated++;
        }
      };
      visit(entry.payload, () => undefined, '');
      // An unregistered field is refused too.
      assert.throws(() => checkEventPayload(entry.type, { ...entry.payload, note: 'x' }, vocab), ValidationError);
    }
    assert.ok(mutated > 100);
    assert.ok(!(await logText(e)).includes('FHIR-Consent'));
  });

  it('docs/log-format.md lists every field of every event type with its class', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'log-format.md'), 'utf8');
    const rows = new Set([...doc.matchAll(/^\| `([A-Z_]+)` \| `([^`]+)` \| (\w+) \|/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`));
    const expected = new Set(Object.entries(EVENT_REGISTRY).flatMap(([type, fields]) => Object.entries(fields).map(([path, f]) => `${type} ${path} ${f.class}`)));
    assert.deepEqual(rows, expected);
  });

  it('the default vocabulary is HL7 v3 PurposeOfUse and the role table', () => {
    for (const c of ['TREAT', 'ETREAT', 'HPAYMT', 'HOPERAT', 'HRESCH', 'PATRQT', 'PUBHLTH', 'HMARKT', 'HSYSADMIN', 'CLINTRCH']) assert.ok(DEFAULT_VOCABULARY.purposes.has(c), c);
    assert.ok(!DEFAULT_VOCABULARY.purposes.has('research'));
    assert.ok(DEFAULT_VOCABULARY.roles.has('dermatologist'));
    assert.throws(() => createVocabulary({ purposes: ['free text'] }), TypeError);
    assert.throws(() => createVocabulary({ trainingPurposes: ['TREATX'] }), TypeError);
  });
});

describe('one list of event types', () => {
  it('EVENT_TYPE names exactly the registered types; the service constants are views of it', () => {
    assert.deepEqual(Object.values(EVENT_TYPE).sort(), Object.keys(EVENT_REGISTRY).sort());
    for (const [name, c] of [
      ['EVENT', EVENT],
      ['GOVERNANCE_EVENT', GOVERNANCE_EVENT],
      ['TOKEN_EVENT', TOKEN_EVENT],
      ['AUDIT_EVENT', AUDIT_EVENT],
    ] as const) {
      for (const t of Object.values(c)) assert.ok(Object.hasOwn(EVENT_REGISTRY, t), `${name}: ${t} is registered`);
    }
    assert.equal(EVENT, GOVERNANCE_EVENT);
  });

  it('src/service and src/sim spell no event type name: they take it from src/core/events.ts', () => {
    const names = Object.values(EVENT_TYPE);
    const found: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, f.name);
        if (f.isDirectory()) walk(p);
        else if (p.endsWith('.ts')) {
          const text = readFileSync(p, 'utf8');
          // The error code CONSENT_DENIED shares its name with the event type (ConsentDeniedError's `super('CONSENT_DENIED', ...)`).
          const codes = text.replaceAll("super('CONSENT_DENIED'", '');
          for (const n of names) if (codes.includes(`'${n}'`) || codes.includes(`"${n}"`)) found.push(`${p.slice(REPO_ROOT.length + 1)}: ${n}`);
        }
      }
    };
    walk(join(REPO_ROOT, 'src', 'service'));
    walk(join(REPO_ROOT, 'src', 'sim'));
    assert.deepEqual(found, []);
  });
});
