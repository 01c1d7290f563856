/**
 * A log holding every event type of EVENT_TYPE, written by the real services (governance, the
 * authenticator, the audit trail, the log for the generic and witness events), for the FHIR suites.
 * @module
 */
import { writeFlEvents } from './federated.js';
import { EVENT_TYPE } from '../../src/core/events.js';
import type { Log } from '../../src/log/log.js';
import { AuditTrail } from '../../src/service/audit.js';
import { ConsentDeniedError, ModelRefusedError, type Governance } from '../../src/service/governance.js';
import type { Authenticator } from '../../src/server/auth.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pid } from './policy-ids.js';
// issue 14: import of the reference's ledgers
import { verifyReferenceLedger } from '../../src/core/reference-ledger.js';
import { importReferenceLedger } from '../../src/service/reference-import.js';
import { sampleLedger } from './reference-ledger.js';
import { VECTORS } from './vectors.js';
// issue 15: attestations
import { parseVerifierKey } from '../../src/core/note.js';
import { attestationKeyFromSeed } from '../../src/log/attestation-key.js';
import { Attestations } from '../../src/service/attestations.js';

/** The R4 Consent example imported twice under one identifier (CONSENT_CREATED, then CONSENT_UPDATED). */
export const CONSENT_EXAMPLE = join(VECTORS, 'fhir-consent', 'r4', 'Consent-consent-example-notOrg.json');
/** Whether the example is there (../shared/vectors); without it there is no CONSENT_UPDATED entry. */
export const HAVE_CONSENT_EXAMPLE = existsSync(CONSENT_EXAMPLE);

export const D1 = 'a1'.repeat(32);
export const D2 = 'b2'.repeat(32);
export const W1 = 'c3'.repeat(32);
export const W2 = 'd4'.repeat(32);
export const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: W1, framework: 'pytorch' };
export const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } };
export const PO = { id: 'po-1', role: 'privacy_officer' };
export const DERM = { id: 'dr-derm', role: 'dermatologist' };
export const SUBJECT = 'patient-fhir-1';
export const OTHER_SUBJECT = 'patient-fhir-2';

/** What was written: the policies, and the index of the first entry of each type. */
export interface Trail {
  readonly policy: string;
  readonly otherPolicy: string;
  readonly firstOf: Readonly<Record<string, number>>;
  readonly inference: number;
}

/** Writes at least one entry of every type of EVENT_TYPE on `log`. */
export async function writeEveryEventType(log: Log, gov: Governance, auth: Authenticator, tag = 'fhir'): Promise<Trail> {
  const policy = pid(`${tag}-p1`);
  const otherPolicy = pid(`${tag}-p2`);
  const revoked = pid(`${tag}-p3`);
  await gov.createConsent({ policyId: policy, subject: SUBJECT, allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist', 'ml_engineer'], externalRef: 'ext-42' }, PO);
  await gov.createConsent({ policyId: otherPolicy, subject: OTHER_SUBJECT, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, PO);
  await gov.createConsent({ policyId: revoked, subject: SUBJECT, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, PO);
  await gov.revokeConsent(revoked, PO);
  await gov.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: policy, artifact: { uri: 's3://clinic/img-1.jpg', digest: D1 } });
  await gov.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: otherPolicy, artifact: { uri: 's3://clinic/img-2.jpg', digest: D2 } });
  await gov.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: revoked, artifact: { uri: 's3://clinic/img-3.jpg', digest: D1 } }).catch((err: unknown) => {
    if (!(err instanceof ConsentDeniedError)) throw err;
  });
  // Break-glass on the revoked policy (consent denies; a clinician with a justification proceeds), and its review.
  const bg = await gov.recordDataAccess({
    actor: DERM,
    purpose: 'BTG',
    justification: 'LIFE_THREATENING_EMERGENCY',
    policyId: revoked,
    artifact: { uri: 's3://clinic/img-4.jpg', digest: D2 },
  });
  await gov.closeReview(bg.event.index, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, PO);
  // issue 15: a release of statistics with differential privacy.
  await gov.releaseStatistics({ query: 'unit=patient by=outcome from=2020-01-01 to=2029-01-01', epsilon: 0.5, consumer: 'public' }, PO);
  const inf = await gov.recordInference({
    actor: DERM,
    purpose: 'TREAT',
    policyId: policy,
    input: { uri: 's3://clinic/img-1.jpg', digest: D1 },
    outputs: [
      { name: 'report_json', uri: 's3://clinic/report-1.json', digest: D2 },
      { name: 'mask_png', uri: 's3://clinic/mask-1.png', digest: W2 },
    ],
    pipeline: PIPELINE,
    model: MODEL,
  });
  const training = {
    actor: { id: 'eng-7', role: 'ml_engineer' },
    purpose: 'HRESCH',
    manifest: { name: 'finetune-1', lr: 0.001 },
    modelBefore: MODEL,
    modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: W2 },
    computeBackend: 'cpu',
  };
  await gov.recordTraining({ ...training, dataset: { uri: 's3://training/synthetic.parquet', digest: D1, type: 'synthetic' }, attestation: { method: 'synthetic-generator' } });
  await gov.recordTraining({ ...training, dataset: { uri: 's3://training/identified.parquet', digest: D2, type: 'identified' }, policyIds: [policy] });
  // Issue 14: the model registry (a line of its own, so the inference above is not governed).
  const CSO = { id: 'cso-1', role: 'clinical_safety_officer' };
  const FM = { modelName: 'fhir_model', modelVersion: '1.0.0', weightsHash: W1, framework: 'onnx' };
  await gov.registerModel({ model: FM.modelName, version: FM.modelVersion, weightsHash: W1, intendedUse: 'triage', riskClass: 'imdrf_ii' }, { id: 'eng-7', role: 'ml_engineer' });
  await gov.approveModel(FM.modelName, FM.modelVersion, CSO);
  await gov.commitChangePlan({ planId: `${tag}-pccp`, model: FM.modelName, modifications: ['retrain'], acceptance: [{ metric: 'auroc', min: 0.9 }] }, CSO);
  await gov
    .recordInference({
      actor: DERM,
      purpose: 'TREAT',
      policyId: policy,
      input: { uri: 's3://clinic/img-9.jpg', digest: D1 },
      outputs: [{ name: 'report_json', uri: 's3://clinic/r-9.json', digest: D2 }],
      pipeline: PIPELINE,
      model: { ...FM, weightsHash: W2 },
    })
    .catch((err: unknown) => {
      if (!(err instanceof ModelRefusedError)) throw err;
    });
  await gov.retireModel(FM.modelName, FM.modelVersion, CSO, 'superseded');
  const { record } = await auth.createToken(`${tag}-auditor`, 'auditor', { actor: 'local:op', role: 'operator' });
  await auth.revokeToken(record.id, { actor: 'local:op', role: 'operator' });
  await log.append(EVENT_TYPE.auditEvent, { resource: 'r-1', practitioner: 'dr-x', contentHash: W1 });
  const trail = new AuditTrail({ log, vocabulary: gov.vocabulary });
  const auditor = { id: 'aud-1', role: 'auditor' };
  await trail.query(auditor, { route: 'GET /api/v1/entries', permission: 'read', range: { from: 0, to: 5 }, count: 5, queryHash: W1 });
  await trail.read(auditor, { route: 'GET /api/v1/entries/:index', permission: 'read', eventIndex: inf.event.index });
  await trail.read(auditor, { route: 'GET /api/v1/consents/:policyId', permission: 'consent:read', policyId: policy });
  await trail.opened(DERM, { route: 'GET /api/v1/receipts/:index', permission: 'commitments:open', purpose: 'TREAT', eventIndex: inf.event.index, commitments: [D1] });
  await trail.refused({ actor: 'nurse-1', role: 'nurse' }, { code: 'FORBIDDEN', route: 'GET /api/v1/export', permission: 'export' });
  await trail.refused({ client: 'ab'.repeat(16) }, { code: 'UNAUTHENTICATED', route: 'GET /api/v1/entries' });
  await trail.flush();
  await log.append(EVENT_TYPE.witnessAlarm, { witness: 'witness-a', reason: 'REFUSED', status: 409, checkpointSize: 10, witnessSize: 12, attempts: 3 });
  // issue 15: an attestation of the inference (ATTESTATION_KEY_PUBLISHED, then ATTESTATION_ISSUED).
  const logKey = parseVerifierKey((await log.reader.meta('verifier_key'))!);
  const attestations = new Attestations({ log, governance: gov, key: attestationKeyFromSeed(Buffer.alloc(32, 0x15)), verifiers: [logKey], origin: log.origin });
  await attestations.receipt(inf.event.index, { actor: PO.id, role: PO.role, route: 'POST /api/v1/attestations' });
  await gov.erase('subject', OTHER_SUBJECT, PO);
  // issue 14: federated learning (a site, a final round with DP, a refused round, the site retired).
  await writeFlEvents(gov, 'fhir-line');
  if (HAVE_CONSENT_EXAMPLE) {
    // A FHIR Consent imported, then a later resource with the same identifier: a new version.
    const r = JSON.parse(readFileSync(CONSENT_EXAMPLE, 'utf8')) as Record<string, unknown>;
    r['identifier'] = [{ system: 'urn:ietf:rfc:3986', value: `urn:uuid:3f0c3a5e-8d6b-4a8e-9b0e-0d6c2b7a1f1${tag.length % 10}` }];
    await gov.importFhirConsent(Buffer.from(JSON.stringify(r)), PO);
    r['dateTime'] = '2016-01-01';
    await gov.importFhirConsent(Buffer.from(JSON.stringify(r)), PO);
  }
  // issue 14: a reference ledger imported (LEGACY_EVENT per line, LEGACY_IMPORT_COMPLETED).
  const legacy = sampleLedger(1_700_000_000_000 + tag.length);
  const verified = verifyReferenceLedger({ ledger: Buffer.from(legacy.text), policy: (id) => legacy.policies.get(id), manifest: (n) => legacy.manifests.get(n) });
  if (!verified.ok) throw new Error(verified.defect.message);
  await importReferenceLedger(log, verified.ledger);
  // Written last so the earlier ones are covered by a checkpoint before the reads.
  const firstOf: Record<string, number> = {};
  for await (const page of log.reader.entryPages(0, log.size)) {
    for (const e of page) {
      const type = (JSON.parse(e.bytes.toString('utf8')) as { type: string }).type;
      firstOf[type] ??= e.index;
    }
  }
  return { policy, otherPolicy, firstOf, inference: inf.event.index };
}
