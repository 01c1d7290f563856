import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openCheckpoint } from '../../core/checkpoint.js';
import { parseVerifierKey } from '../../core/note.js';
import { verifyInclusion } from '../../core/merkle/inclusion.js';
import { initDataDir, openLog } from '../../log/data-dir.js';
import { verifyLog } from '../../log/verify-log.js';
import { ConsentDeniedError, Governance, ModelRefusedError } from '../../service/governance.js';
import { rebuildReceipt } from '../../service/receipt.js';
import { verifyDocuments } from '../../service/verify-documents.js';
import type { CommandContext } from '../context.js';
// issue 14: training cohorts
import { verifyCohortProof } from '../../core/cohort.js';
import type { Log } from '../../log/log.js';
import { AuditTrail } from '../../service/audit.js';
import { buildCohortProof } from '../../service/governance/cohort.js';
import { CLI_COHORT_PROOF_ROUTE } from './training.js';

export interface DemoOptions {
  /** Keep the demo's data directory instead of deleting it. */
  readonly keep?: boolean;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The model registry part of the demo (issue 14): a version registered by the ML engineer is refused
 * until the clinical safety officer approves it (INFERENCE_REFUSED, MODEL_NOT_APPROVED), then runs,
 * and the registry lists the inference under the version. Returns whether it went as it should.
 */
async function modelRegistryDemo(
  g: Governance,
  out: (s?: string) => void,
  o: { derm: { id: string; role: string }; engineer: { id: string; role: string }; policyId: string; pipeline: Record<string, unknown> },
): Promise<boolean> {
  out('4b. Model registry: a version is usable only once a clinical safety officer approves it');
  const safety = { id: 'cso-1', role: 'clinical_safety_officer' };
  const model = { modelName: 'lesion_triage', modelVersion: '2.0.0', weightsHash: sha('weights triage 2.0.0'), framework: 'onnx' };
  const reg = await g.registerModel(
    { model: 'lesion_triage', version: '2.0.0', weightsHash: model.weightsHash, intendedUse: 'triage', riskClass: 'eu_mdr_iia', spec: { indications: 'dermoscopy images of adults' } },
    o.engineer,
  );
  out(`   lesion_triage@2.0.0 registered by eng-7 (MODEL_REGISTERED, entry ${reg.event.index}; intended use triage, risk class eu_mdr_iia; spec off-ledger)`);
  const run = (n: number) =>
    g.recordInference({
      actor: o.derm,
      purpose: 'TREAT',
      policyId: o.policyId,
      input: { uri: `s3://noetiv-bucket/patient_pseudo_123/visit1/triage${n}.jpg`, digest: sha(`triage ${n}`) },
      outputs: [{ name: 'triage_json', uri: `s3://noetiv-bucket/patient_pseudo_123/visit1/triage${n}.json`, digest: sha(`triage out ${n}`) }],
      pipeline: o.pipeline,
      model,
    });
  let ok = true;
  try {
    await run(1);
    out('   UNEXPECTED: an unapproved model ran');
    ok = false;
  } catch (err) {
    if (!(err instanceof ModelRefusedError)) throw err;
    out(`   an inference under it before approval is refused: ${err.code} (${err.state}); on the log as INFERENCE_REFUSED (entry ${err.event.index})`);
  }
  const approved = await g.approveModel('lesion_triage', '2.0.0', safety);
  out(`   approved by cso-1 (clinical_safety_officer, model:approve): MODEL_APPROVED, entry ${approved.event.index}`);
  const inf = await run(2);
  const shown = await g.showModel('lesion_triage', '2.0.0');
  const listed = 'inferences' in shown ? shown.inferences : [];
  out(`   the same inference now runs: INFERENCE_EXECUTED at entry ${inf.event.index}; custos model show lesion_triage@2.0.0 lists entries ${listed.join(', ')}`);
  return ok && listed.includes(inf.event.index);
}

/**
 * `custos demo`: the reference notebook's demo, end to end, in a fresh temporary data directory:
 * a consent policy, a data access, an inference with its receipt, training on synthetic data, a
 * revocation, a denied attempt, and verification of the log and the off-ledger store, checked
 * the way an outside auditor would, with nothing but the verifier key. Returns the exit code (4 when
 * a check failed).
 */
export async function demo(ctx: CommandContext, options: DemoOptions): Promise<number> {
  const out = (s = '') => ctx.io.stdout.write(`${s}\n`);
  const dataDir = mkdtempSync(join(tmpdir(), 'custos-demo-'));
  let ok = true;
  try {
    out('Custos demo: consent-enforced, verifiable governance for a clinical AI pipeline');
    const init = await initDataDir(dataDir, { origin: 'demo.custos.local/governance' });
    out(`   log ${init.origin} in ${dataDir}`);
    out(`   verifier key ${init.verifierKey}`);
    const { dir, log } = await openLog(dataDir);
    try {
      const g = await Governance.open({ log });
      const officer = { id: 'privacy-officer-1', role: 'privacy_officer' };
      const derm = { id: 'user_42', role: 'dermatologist' };
      const engineer = { id: 'eng-7', role: 'ml_engineer' };

      out('1. Consent policy');
      const policy = await g.createConsent(
        { subject: 'patient_pseudo_123', externalRef: 'FHIR Consent/123', allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist', 'ml_engineer'] },
        officer,
      );
      const policyId = policy.policy.policyId;
      out(`   ${policyId} v1: purposes TREAT, HRESCH (HL7 v3 PurposeOfUse); roles dermatologist, ml_engineer (entry ${policy.event.index})`);
      out('   the policy id is opaque (generated); the FHIR Consent reference is logged only as a salted commitment');
      out(`   the subject appears on the log only as a salted commitment: ${policy.policy.subject.slice(0, 16)}...`);

      out('2. Data access (consent checked first)');
      const image = { uri: 's3://noetiv-bucket/patient_pseudo_123/visit1/image1.jpg', digest: sha('image1.jpg bytes') };
      const access = await g.recordDataAccess({ actor: derm, purpose: 'TREAT', policyId, artifact: image });
      out(`   ${access.decision.reason}: user_42 (dermatologist) read the image for TREAT (entry ${access.event.index})`);

      out('3. Inference with its receipt');
      const model = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: sha('weights v0.9.3'), framework: 'pytorch', extra: { calibration: 'temperature' } };
      const pipeline = {
        pipelineName: 'derm-preprocess',
        pipelineVersion: '1.2.0',
        containerImage: `registry.example/derm@sha256:${sha('image')}`,
        codeCommit: 'a1b2c3d',
        parameters: { resize: 224, normalize: 'imagenet' },
        dependencies: { torch: '2.4.0' },
      };
      const inf = await g.recordInference({
        actor: derm,
        purpose: 'TREAT',
        policyId,
        input: image,
        outputs: [{ name: 'report_json', uri: 's3://noetiv-bucket/patient_pseudo_123/visit1/report.json', digest: sha('report') }],
        pipeline,
        model,
      });
      out(`   INFERENCE_EXECUTED at entry ${inf.event.index}; receipt ${inf.receiptHash.slice(0, 16)}... stored off-ledger`);
      const rebuilt = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, inf.event.index);
      out(
        `   custos receipt ${inf.event.index}: ${rebuilt.checks.length} hashes re-checked, ${rebuilt.ok ? 'all match' : 'MISMATCH'}; inclusion proof verified against the signed root of size ${rebuilt.proof.treeSize}`,
      );
      ok &&= rebuilt.ok;

      out('4. Training: on synthetic data (attested), and on identified data under consent');
      const trained = await g.recordTraining({
        actor: engineer,
        purpose: 'HRESCH',
        dataset: { uri: 's3://noetiv-bucket/synthetic/lesions-v1.parquet', digest: sha('synthetic'), type: 'synthetic' },
        manifest: { name: 'finetune-lesion-0.9.4', learningRate: 0.0001, epochs: 3, seed: 7 },
        modelBefore: model,
        modelAfter: { ...model, modelVersion: '0.9.4', weightsHash: sha('weights v0.9.4') },
        attestation: { method: 'synthetic-generator' },
        computeBackend: 'cpu',
      });
      out(`   TRAINING_EXECUTED at entry ${trained.event.index} (dataset type synthetic, attested by eng-7; training manifest ${trained.manifestHash.slice(0, 16)}...)`);
      const underConsent = await g.recordTraining({
        actor: engineer,
        purpose: 'HRESCH',
        dataset: { uri: 's3://noetiv-bucket/cohort/lesions-identified-v1.parquet', digest: sha('identified'), type: 'identified' },
        policyIds: [policyId],
        manifest: { name: 'finetune-lesion-0.9.5', learningRate: 0.0001, epochs: 1, seed: 7 },
        modelBefore: model,
        modelAfter: { ...model, modelVersion: '0.9.5', weightsHash: sha('weights v0.9.5') },
        computeBackend: 'cpu',
      });
      out(`   TRAINING_EXECUTED at entry ${underConsent.event.index} (identified data: ${underConsent.decisions.map((d) => d.reason).join(', ')} under ${policyId} v1 for HRESCH)`);

      // issue 14: the model registry (docs/models.md).
      ok &&= await modelRegistryDemo(g, out, { derm, engineer, policyId, pipeline });

      out('5. Revocation');
      const revoked = await g.revokeConsent(policyId, officer);
      out(`   ${policyId} v${revoked.policy.version} revoked (entry ${revoked.event.index})`);

      out('6. A denied attempt');
      try {
        await g.recordInference({
          actor: derm,
          purpose: 'TREAT',
          policyId,
          input: { uri: 's3://noetiv-bucket/patient_pseudo_123/visit2/image1.jpg', digest: sha('visit2') },
          outputs: [{ name: 'report_json', uri: 's3://noetiv-bucket/patient_pseudo_123/visit2/report.json', digest: sha('report2') }],
          pipeline,
          model,
        });
        out('   UNEXPECTED: the inference ran after revocation');
        ok = false;
      } catch (err) {
        if (!(err instanceof ConsentDeniedError)) throw err;
        out(`   refused: ${err.decision.reason}; the refusal is on the log as CONSENT_DENIED (entry ${err.event.index})`);
      }

      out('7. Verification');
      const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
      const docs = await verifyDocuments({ store: dir.store });
      out(`   log: ${report.ok ? 'OK' : 'FAILED'}, ${report.entries} entries, ${report.checkpointsChecked} signed checkpoints, root ${report.rootHex ?? '-'}`);
      out(`   off-ledger store: ${docs.ok ? 'OK' : 'FAILED'}, ${docs.documentsChecked} documents and ${docs.commitmentsChecked} commitment openings match the log`);
      const latest = log.latestCheckpoint()!;
      const cp = openCheckpoint(latest.note, [parseVerifierKey(init.verifierKey)], init.origin);
      const inc = await log.reader.inclusionProof(inf.event.index, cp.treeSize);
      verifyInclusion(inf.event.index, cp.treeSize, inc.leafHash, inc.proof, cp.rootHash);
      out(`   an auditor with only the verifier key checks the signed checkpoint and the inference's inclusion proof (${inc.proof.length} hashes): OK`);
      for (const line of latest.note.trimEnd().split('\n')) out(`   | ${line}`);
      const leaked = [];
      for await (const page of dir.store.entryPages(0, report.entries)) {
        for (const e of page) if (e.bytes.includes('patient_pseudo_123') || e.bytes.includes('FHIR Consent')) leaked.push(e.index);
      }
      out(`   patient identifiers on the log: ${leaked.length === 0 ? 'none (only commitments, codes and hashes)' : `FOUND in ${leaked.join(', ')}`}`);
      ok &&= report.ok && docs.ok && leaked.length === 0;
      // issue 14: training cohorts (a step of its own, for easy merging)
      ok = (await demoCohortProof(g, log, init.verifierKey, out)) && ok;
    } finally {
      await log.close();
      await dir.store.close();
    }
    out();
    out(ok ? 'Demo OK.' : 'Demo FAILED.');
    out(options.keep ? `Data kept in ${dataDir}; try: custos --data-dir ${dataDir} receipt 2` : 'Next: custos init, then see custos --help and the README.');
    return ok ? 0 : 4;
  } finally {
    if (!options.keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * issue 14: the demo's cohort step. Three patients consent to research; one withdraws. A training
 * run names all three: the withdrawn one is left out and counted. The privacy officer then
 * produces, for the withdrawn patient, the proof that they were not in the run (the read on the
 * log first), and it is verified with nothing but the verifier key. Returns whether every check passed.
 */
async function demoCohortProof(g: Governance, log: Log, verifierKey: string, out: (s?: string) => void): Promise<boolean> {
  const officer = { id: 'privacy-officer-1', role: 'privacy_officer' };
  const engineer = { id: 'eng-7', role: 'ml_engineer' };
  out('8. Training cohort: a withdrawn patient left out, and a proof of it');
  const patients = ['patient_pseudo_201', 'patient_pseudo_202', 'patient_pseudo_203'];
  const cohort = [];
  for (const subject of patients) {
    const p = await g.createConsent({ subject, allowedPurposes: ['HRESCH'], allowedRoles: ['ml_engineer'] }, officer);
    cohort.push({ subject, policyId: p.policy.policyId });
  }
  const withdrawn = patients[2]!;
  await g.revokeConsent(cohort[2]!.policyId, officer);
  out(`   three patients consented to research (HRESCH); ${withdrawn} withdrew`);
  const model = { modelName: 'lesion_classifier', modelVersion: '0.9.5', weightsHash: sha('weights v0.9.5'), framework: 'pytorch' };
  const run = await g.recordTraining({
    actor: engineer,
    purpose: 'HRESCH',
    dataset: { uri: 's3://noetiv-bucket/cohort/lesions-identified-v2.parquet', digest: sha('identified v2'), type: 'identified' },
    cohort,
    // The reference's own training manifest shape (a PipelineManifest) is accepted as it is.
    manifest: {
      pipeline_name: 'train_lesion_classifier',
      pipeline_version: '0.1.0',
      container_image: 'registry/noetiv/train:0.1.0',
      code_commit: 'train789',
      parameters: { epochs: 10, lr: 0.0001, batch_size: 16 },
      dependencies: { python: '3.11', torch: '2.4.0' },
    },
    modelBefore: model,
    modelAfter: { ...model, modelVersion: '0.9.6', weightsHash: sha('weights v0.9.6') },
    computeBackend: 'cpu',
  });
  const c = run.cohort!;
  out(
    `   TRAINING_EXECUTED at entry ${run.event.index}: ${c.size} included, ${c.excludedTotal} excluded (${c.excluded.map((x) => `${x.reason} ${x.count}`).join(', ')}); cohort root ${c.root.slice(0, 16)}...`,
  );
  const trail = new AuditTrail({ log, vocabulary: g.vocabulary });
  const { proof } = await buildCohortProof(log, run.event.index, withdrawn, {
    absent: true,
    audit: async (commitments) => {
      await trail.opened(officer, { route: CLI_COHORT_PROOF_ROUTE, permission: 'training:proof', purpose: 'PATRQT', eventIndex: run.event.index, commitments });
    },
  });
  out(`   custos training proof ${run.event.index} --subject ${withdrawn} --absent: a ${proof.kind} proof (logged first as PATIENT_DATA_OPENED)`);
  const v = verifyCohortProof(proof, { logKey: parseVerifierKey(verifierKey) });
  for (const check of v.checks) out(`   ${check.ok ? 'ok  ' : 'FAIL'} ${check.name} (${check.detail})`);
  out(`   a patient advocate with only the verifier key: ${withdrawn} was ${v.ok ? 'NOT in the run (verified)' : 'NOT PROVED ABSENT'}`);
  const docs = await verifyDocuments({ store: log });
  out(`   the cohort document matches the log: ${docs.ok ? 'OK' : 'FAILED'}`);
  return v.ok && docs.ok && c.size === 2 && c.excludedTotal === 1;
}
