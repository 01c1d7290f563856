/**
 * issue 14: consent-governed training cohorts, end to end.
 *
 * HTTP (a real server on a loopback port, real SQLite log):
 * - a training run with a cohort: a subject who withdrew (revoked) and one whose consent has no
 *   training purpose are left out and counted by reason on TRAINING_EXECUTED; the cohort root and
 *   size are on the entry, the cohort document off-ledger; no subject id reaches the log;
 * - the privacy officer's cohort-proof route: an inclusion proof and a non-inclusion proof (for the
 *   withdrawn subject) both verify offline with only the log key; each read is on the log first
 *   (PATIENT_DATA_OPENED with the subject's commitment, never the id);
 * - the wrong kind asked for: 409 COHORT_SUBJECT_ABSENT / COHORT_SUBJECT_PRESENT; a run without a
 *   cohort: 404 COHORT_NOT_FOUND; an unknown subject: 404 SUBJECT_NOT_FOUND; a role without
 *   training:proof: 403, and nothing opened;
 * - tampered proofs fail, each at the check it breaks;
 * - training without a cohort works as before;
 * - a revocation sequenced in the same batch as the training run, before it, excludes the subject
 *   (after it, it does not).
 * CLI: `custos train --cohort` with a manifest in the reference's PipelineManifest shape,
 * `custos training proof` and `custos training verify-proof` (no data directory), exit codes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { computeCommitment } from '../src/core/commitment.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from '../src/core/crypto.js';
import { verifyCohortProof, type CohortProof } from '../src/core/cohort.js';
import { VerificationError } from '../src/core/errors.js';
import { fromBase64Strict, hashLeaf, toBase64 } from '../src/core/hash.js';
import { formatVerifierKey, parseVerifierKey } from '../src/core/note.js';
import { createServerEnv, assertVerifies, type ServerEnv } from './helpers/server-env.js';
import { canonicalJsonBytes } from '../src/core/canonical-json.js';
import { sha256, toHex } from '../src/core/hash.js';
import { SortedTree } from '../src/core/merkle/sorted.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { buildCohortProof } from '../src/service/governance/cohort.js';

const sha256Hex = (b: Uint8Array): string => toHex(sha256(b));
import { EXIT, assertError, callCli, callIn, ensureBuilt, makeTempDir, okJson } from './helpers/cli.js';

const D1 = 'a1'.repeat(32);
const W1 = 'c3'.repeat(32);
const W2 = 'd4'.repeat(32);
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: W1, framework: 'pytorch' };
const MODEL_AFTER = { ...MODEL, modelVersion: '0.9.4', weightsHash: W2 };
const PO = { id: 'po-1', role: 'privacy_officer' };
/** The reference's PipelineManifest, as `dataclasses.asdict` writes it (its own demo's training manifest). */
const REFERENCE_MANIFEST = {
  pipeline_name: 'train_lesion_classifier',
  pipeline_version: '0.1.0',
  container_image: 'registry/noetiv/train:0.1.0',
  code_commit: 'train789',
  parameters: { epochs: 10, lr: 0.0001, batch_size: 16 },
  dependencies: { python: '3.11', torch: '2.4.0' },
};

interface Entry {
  index: number;
  type: string;
  payload: Record<string, unknown>;
}

async function entry(env: ServerEnv, index: number): Promise<Entry> {
  return JSON.parse((await env.log.reader.getEntry(index)).bytes.toString('utf8')) as Entry;
}
async function allBytes(env: ServerEnv): Promise<string> {
  const out: string[] = [];
  for (let i = 0; i < env.log.size; i++) out.push((await env.log.reader.getEntry(i)).bytes.toString('utf8'));
  return out.join('\n');
}

function invalidAt(proof: unknown, key: string, check: string): void {
  const r = verifyCohortProof(proof, { logKey: parseVerifierKey(key) });
  assert.equal(r.ok, false, `a tampered proof verified (expected ${check} to fail)`);
  assert.equal(r.failed?.name, check, `expected ${check} to fail first, got ${r.failed?.name}: ${r.failed?.detail}`);
}

describe('training cohorts over HTTP', () => {
  let env: ServerEnv;
  let base: string;
  let vkey: string;
  const policies: Record<string, string> = {};
  let run: number;

  const call = async (method: string, path: string, role: keyof ServerEnv['tokens'], body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.tokens[role]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const proof = (index: number, body: Record<string, unknown>, role: keyof ServerEnv['tokens'] = 'privacy_officer') =>
    call('POST', `/api/v1/training/${index}/cohort-proof`, role, { purpose: 'PATRQT', ...body });
  const train = (cohort: unknown) =>
    call('POST', '/api/v1/trainings', 'ml_engineer', {
      purpose: 'HRESCH',
      dataset: { uri: 's3://research/cohort-7.parquet', digest: D1, type: 'identified' },
      cohort,
      manifest: REFERENCE_MANIFEST,
      modelBefore: MODEL,
      modelAfter: MODEL_AFTER,
      computeBackend: 'gpu-cluster-1',
    });

  before(async () => {
    env = await createServerEnv();
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
    vkey = readFileSync(join(env.root, 'log', 'log.pub'), 'utf8').trim();
    const g = env.governance;
    for (const [s, purposes] of [
      ['pt-alice', ['HRESCH', 'TREAT']],
      ['pt-bob', ['HRESCH']],
      ['pt-carol', ['TREAT']],
      ['pt-dave', ['HRESCH']],
    ] as const) {
      policies[s] = (await g.createConsent({ subject: s, allowedPurposes: purposes, allowedRoles: ['ml_engineer', 'dermatologist'] }, PO)).policy.policyId;
    }
    // pt-bob withdraws before the run.
    await g.revokeConsent(policies['pt-bob']!, PO);
  });

  after(async () => {
    await env?.close();
  });

  it('trains on the consenting subjects only; the withdrawn and the non-research ones are counted by reason', async () => {
    const r = await train(['pt-alice', 'pt-bob', 'pt-carol', 'pt-dave'].map((s) => ({ subject: s, policyId: policies[s] })));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const cohort = r.json['cohort'] as { root: string; size: number; excluded: { reason: string; count: number }[]; excludedTotal: number; document: string };
    assert.equal(cohort.size, 2);
    assert.equal(cohort.excludedTotal, 2);
    assert.deepEqual(cohort.excluded, [
      { reason: 'PURPOSE_NOT_ALLOWED', count: 1 },
      { reason: 'REVOKED', count: 1 },
    ]);
    run = (r.json['event'] as { index: number }).index;
    const e = await entry(env, run);
    assert.equal(e.type, 'TRAINING_EXECUTED');
    assert.deepEqual(e.payload['cohort'], { root: cohort.root, size: 2, excluded: cohort.excluded });
    assert.equal((e.payload['documents'] as Record<string, string>)['cohort'], cohort.document);
    assert.equal(e.payload['consents'], undefined);
    // The manifest in the reference's shape was mapped onto Custos' training manifest.
    const manifest = JSON.parse((await env.log.sidecar.getDocument((e.payload['documents'] as Record<string, string>)['training']!))!.bytes.toString('utf8')) as Record<string, unknown>;
    assert.equal(manifest['name'], 'train_lesion_classifier');
    assert.equal(manifest['version'], '0.1.0');
    assert.equal(manifest['codeCommit'], 'train789');
    assert.equal(manifest['format'], 'reference-pipeline-manifest');
    // The cohort document: the two included commitments, sorted; no subject id anywhere on the log.
    const doc = JSON.parse((await env.log.sidecar.getDocument(cohort.document))!.bytes.toString('utf8')) as { commitments: string[] };
    const commitmentOf = async (s: string) => (await env.log.sidecar.findCommitments('subject', s))[0]!.commitment;
    assert.deepEqual(doc.commitments, [await commitmentOf('pt-alice'), await commitmentOf('pt-dave')].sort());
    const bytes = await allBytes(env);
    for (const s of ['pt-alice', 'pt-bob', 'pt-carol', 'pt-dave']) assert.ok(!bytes.includes(s), `${s} is on the log`);
    await assertVerifies(env);
  });

  it('the run as a FHIR AuditEvent names the cohort document, root, size and exclusions', async () => {
    const r = await call('GET', `/fhir/AuditEvent/${run}`, 'auditor');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const text = JSON.stringify(r.json);
    const e = await entry(env, run);
    assert.ok(text.includes((e.payload['documents'] as Record<string, string>)['cohort']!));
    assert.match(text, new RegExp(`"type":"cohortRoot","valueString":"${(e.payload['cohort'] as { root: string }).root}"`));
    assert.match(text, /"type":"excluded-REVOKED","valueString":"1"/);
  });

  it("a patient's accounting of disclosures lists the runs they were in, not the ones they were left out of", async () => {
    const lines = async (subject: string) => {
      const r = await call('GET', `/api/v1/disclosures?subject=${subject}`, 'privacy_officer');
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return (r.json['lines'] as { index: number; kind: string }[]).filter((l) => l.kind === 'training').map((l) => l.index);
    };
    assert.deepEqual(await lines('pt-alice'), [run]);
    assert.deepEqual(await lines('pt-bob'), []);
  });

  it('an inclusion proof for an included subject verifies offline; the read is logged with the commitment only', async () => {
    const size = env.log.size;
    const r = await proof(run, { subject: 'pt-alice' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const p = r.json as unknown as CohortProof;
    assert.equal(p.kind, 'inclusion');
    const v = verifyCohortProof(p, { logKey: parseVerifierKey(vkey) });
    assert.equal(v.ok, true, JSON.stringify(v));
    // The audit event: PATIENT_DATA_OPENED, before the proof, naming the commitment (not the id).
    const audit = await entry(env, size);
    assert.equal(audit.type, 'PATIENT_DATA_OPENED');
    assert.equal(audit.payload['permission'], 'training:proof');
    assert.equal(audit.payload['route'], 'POST /api/v1/training/:index/cohort-proof');
    assert.equal(audit.payload['eventIndex'], run);
    assert.equal(audit.payload['actor'], 'po-1');
    assert.deepEqual(audit.payload['commitments'], [p.subject.openings[0]!.commitment]);
    assert.ok(!(await allBytes(env)).includes('pt-alice'));
    // The opening opens: SHA-256(salt || id).
    assert.equal(computeCommitment(fromBase64Strict(p.subject.openings[0]!.salt)!, 'pt-alice'), p.subject.openings[0]!.commitment);
  });

  it('a non-inclusion proof for the withdrawn subject verifies offline', async () => {
    const r = await proof(run, { subject: 'pt-bob', absent: true });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const p = r.json as unknown as CohortProof;
    assert.equal(p.kind, 'non-inclusion');
    const v = verifyCohortProof(p, { logKey: parseVerifierKey(vkey) });
    assert.equal(v.ok, true, JSON.stringify(v));
    assert.equal(v.cohortSize, 2);
  });

  it('tampered proofs fail at the check they break', async () => {
    const inc = (await proof(run, { subject: 'pt-dave' })).json as unknown as CohortProof;
    const abs = (await proof(run, { subject: 'pt-bob', absent: true })).json as unknown as CohortProof;
    const edit = <T>(p: T, f: (x: any) => void): T => {
      const c = structuredClone(p) as any;
      f(c);
      return c as T;
    };
    // Another subject's id with this salt does not open the commitment.
    invalidAt(
      edit(inc, (c) => {
        c.subject.value = 'pt-mallory';
      }),
      vkey,
      'opening',
    );
    // A claimed absent subject swapped in with the same neighbours (its own consent entry carried): its commitment differs.
    invalidAt(
      edit(abs, (c) => {
        c.subject.openings[0].commitment = inc.subject.openings[0]!.commitment;
        c.subject.openings[0].salt = inc.subject.openings[0]!.salt;
        c.subject.openings[0].consent = inc.subject.openings[0]!.consent;
        c.log = inc.log;
        c.subject.value = 'pt-dave';
      }),
      vkey,
      'cohort-proof',
    );
    // Another cohort root than the entry's.
    invalidAt(
      edit(inc, (c) => {
        c.cohort.root = '00'.repeat(32);
      }),
      vkey,
      'entry',
    );
    // A flipped byte in the cohort audit path.
    invalidAt(
      edit(inc, (c) => {
        const h: string = c.subject.openings[0].proof.path[0];
        c.subject.openings[0].proof.path[0] = (h[0] === '0' ? '1' : '0') + h.slice(1);
      }),
      vkey,
      'cohort-proof',
    );
    // An edited entry (cohort size raised): its bytes no longer hash to the leaf.
    invalidAt(
      edit(inc, (c) => {
        const body = fromBase64Strict(c.entry.body)!.toString('utf8').replace('"size":2', '"size":3');
        c.entry.body = toBase64(Buffer.from(body, 'utf8'));
      }),
      vkey,
      'entry',
    );
    // A wrong log inclusion proof, and a checkpoint not signed by this log.
    invalidAt(
      edit(inc, (c) => {
        c.log.hashes[0] = 'ab'.repeat(32);
      }),
      vkey,
      'inclusion-proof',
    );
    const otherKey = formatVerifierKey('other.example/log', ed25519RawPublicKey(ed25519PrivateKeyFromSeed(Buffer.alloc(32, 7))));
    invalidAt(inc, otherKey, 'checkpoint-signature');
    // Not a proof at all.
    assert.throws(
      () => verifyCohortProof({ ...inc, kind: 'maybe' }, { logKey: parseVerifierKey(vkey) }),
      (e: unknown) => e instanceof VerificationError && e.code === 'COHORT_PROOF_MALFORMED',
    );
  });

  it('regression (security review): a non-inclusion proof forged for an included subject with a fresh salt does not verify', async () => {
    // The review's forgery: the cohort document (held by the operator) gives the neighbours of a
    // commitment made afresh for pt-dave, an included subject; the opening opens it.
    const inc = (await proof(run, { subject: 'pt-dave' })).json as unknown as CohortProof;
    assert.equal(verifyCohortProof(inc, { logKey: parseVerifierKey(vkey) }).ok, true);
    const e = await entry(env, run);
    const doc = JSON.parse((await env.log.sidecar.getDocument((e.payload['documents'] as Record<string, string>)['cohort']!))!.bytes.toString('utf8')) as { commitments: string[] };
    const tree = new SortedTree(doc.commitments);
    const salt = randomBytes(32);
    const fake = computeCommitment(salt, 'pt-dave');
    assert.ok(tree.indexOf(fake) < 0);
    const forge = (consent: unknown) => {
      const f = structuredClone(inc) as any;
      f.kind = 'non-inclusion';
      f.subject.openings = [{ commitment: fake, salt: toBase64(salt), proof: tree.proveNonInclusion(fake), ...(consent === undefined ? {} : { consent }) }];
      return f as unknown;
    };
    const verifies = (p: unknown): boolean => {
      try {
        return verifyCohortProof(p, { logKey: parseVerifierKey(vkey) }).ok;
      } catch {
        return false;
      }
    };
    // Without a consent entry: not a proof.
    assert.equal(verifies(forge(undefined)), false, 'a forged non-inclusion proof without a consent entry verified');
    // With pt-dave's real consent entry carried over: that entry commits another commitment.
    assert.equal(verifies(forge(inc.subject.openings[0]!.consent)), false, 'a forged non-inclusion proof verified');
    invalidAt(forge(inc.subject.openings[0]!.consent), vkey, 'subject-binding');
    // With a consent entry rewritten to commit the fresh commitment (leaf hash recomputed): not in the signed log.
    const real = inc.subject.openings[0]!.consent;
    const rewritten = Buffer.from(fromBase64Strict(real.body)!.toString('utf8').replace(inc.subject.openings[0]!.commitment, fake), 'utf8');
    invalidAt(forge({ ...real, body: toBase64(rewritten), leafHash: hashLeaf(rewritten).toString('hex') }), vkey, 'subject-binding');
    // With the withdrawn subject's consent entry: another subject's commitment, too.
    const abs = (await proof(run, { subject: 'pt-bob', absent: true })).json as unknown as CohortProof;
    invalidAt(forge(abs.subject.openings[0]!.consent), vkey, 'subject-binding');
    // The same trick for inclusion: a foreign commitment (pt-alice's leaf) opened by nobody's consent.
    const alice = (await proof(run, { subject: 'pt-alice' })).json as unknown as CohortProof;
    invalidAt(
      { ...structuredClone(alice), subject: { ...structuredClone(alice.subject), openings: [{ ...structuredClone(alice.subject.openings[0]!), consent: inc.subject.openings[0]!.consent }] } },
      vkey,
      'subject-binding',
    );
  });

  it('each proof carries the consent entry that commits its commitment; tampering with it fails at subject-binding', async () => {
    const inc = (await proof(run, { subject: 'pt-dave' })).json as unknown as CohortProof;
    const abs = (await proof(run, { subject: 'pt-bob', absent: true })).json as unknown as CohortProof;
    for (const p of [inc, abs]) {
      const v = verifyCohortProof(p, { logKey: parseVerifierKey(vkey) });
      assert.deepEqual(
        v.checks.map((c) => [c.name, c.ok]),
        [
          ['opening', true],
          ['subject-binding', true],
          ['entry', true],
          ['cohort-proof', true],
          ['inclusion-proof', true],
          ['checkpoint-signature', true],
        ],
      );
      const c = p.subject.openings[0]!.consent;
      const ce = await entry(env, c.index);
      assert.equal(ce.type, 'CONSENT_CREATED');
      assert.equal(ce.payload['subject'], p.subject.openings[0]!.commitment);
      assert.ok(c.index < run);
    }
    const edit = <T>(p: T, f: (x: any) => void): T => {
      const c = structuredClone(p) as any;
      f(c);
      return c as T;
    };
    // The consent entry's bytes edited (its subject replaced by the fresh commitment): no longer its leaf.
    invalidAt(
      edit(inc, (c) => {
        const body = fromBase64Strict(c.subject.openings[0].consent.body)!.toString('utf8').replace(inc.subject.openings[0]!.commitment, 'ee'.repeat(32));
        c.subject.openings[0].consent.body = toBase64(Buffer.from(body, 'utf8'));
      }),
      vkey,
      'subject-binding',
    );
    invalidAt(
      edit(abs, (c) => {
        c.subject.openings[0].consent.hashes[0] = 'ab'.repeat(32);
      }),
      vkey,
      'subject-binding',
    );
    invalidAt(
      edit(inc, (c) => {
        c.subject.openings[0].consent.index += 1;
      }),
      vkey,
      'subject-binding',
    );
    // The training entry itself in place of the consent entry: not a CONSENT_CREATED event.
    invalidAt(
      edit(inc, (c) => {
        c.subject.openings[0].consent = { index: inc.entry.index, leafHash: inc.entry.leafHash, body: inc.entry.body, hashes: inc.log.hashes };
      }),
      vkey,
      'subject-binding',
    );
    // A missing or malformed consent field: not a proof.
    for (const f of [(c: any) => delete c.subject.openings[0].consent, (c: any) => (c.subject.openings[0].consent.leafHash = 'xyz')]) {
      assert.throws(
        () => verifyCohortProof(edit(inc, f), { logKey: parseVerifierKey(vkey) }),
        (e: unknown) => e instanceof VerificationError && e.code === 'COHORT_PROOF_MALFORMED',
      );
    }
  });

  it('the wrong kind of proof is a clear 409, an unknown subject 404, and a run without a cohort 404', async () => {
    const absent = await proof(run, { subject: 'pt-bob' });
    assert.equal(absent.status, 409);
    assert.equal((absent.json['error'] as { code: string }).code, 'COHORT_SUBJECT_ABSENT');
    const present = await proof(run, { subject: 'pt-alice', absent: true });
    assert.equal(present.status, 409);
    assert.equal((present.json['error'] as { code: string }).code, 'COHORT_SUBJECT_PRESENT');
    const size = env.log.size;
    const unknown = await proof(run, { subject: 'pt-nobody' });
    assert.equal(unknown.status, 404);
    assert.equal((unknown.json['error'] as { code: string }).code, 'SUBJECT_NOT_FOUND');
    // Asked all the same, and audited: whether a subject is known is itself an answer.
    const asked = await entry(env, size);
    assert.equal(asked.type, 'PATIENT_DATA_OPENED');
    assert.deepEqual(asked.payload['commitments'], []);
    // Training on synthetic data, without a cohort, as before: and it has no cohort to prove.
    const synthetic = await call('POST', '/api/v1/trainings', 'ml_engineer', {
      purpose: 'HRESCH',
      dataset: { uri: 's3://research/synthetic.parquet', digest: D1, type: 'synthetic' },
      attestation: { method: 'synthetic-generator' },
      manifest: { name: 'finetune-2' },
      modelBefore: MODEL,
      modelAfter: MODEL_AFTER,
      computeBackend: 'cpu',
    });
    assert.equal(synthetic.status, 201);
    assert.equal(synthetic.json['cohort'], undefined);
    const none = await proof((synthetic.json['event'] as { index: number }).index, { subject: 'pt-alice' });
    assert.equal(none.status, 404);
    assert.equal((none.json['error'] as { code: string }).code, 'COHORT_NOT_FOUND');
    // A purpose outside the vocabulary: 400, nothing opened.
    const bad = await proof(run, { subject: 'pt-alice', purpose: 'NOT_A_PURPOSE' });
    assert.equal(bad.status, 400);
  });

  it('a role without training:proof is refused with 403 and nothing is opened; the subject id never goes in the URL', async () => {
    const before = env.log.size;
    for (const role of ['ml_engineer', 'auditor', 'dermatologist'] as const) {
      const r = await proof(run, { subject: 'pt-alice' }, role);
      assert.equal(r.status, 403, role);
      assert.equal((r.json['error'] as { code: string }).code, 'FORBIDDEN');
    }
    for (let i = before; i < env.log.size; i++) assert.notEqual((await entry(env, i)).type, 'PATIENT_DATA_OPENED');
    // A query string is not how the subject is given: the body is strict.
    const r = await call('POST', `/api/v1/training/${run}/cohort-proof?subject=pt-alice`, 'privacy_officer', { purpose: 'PATRQT' });
    assert.equal(r.status, 400);
  });

  it('a revocation sequenced in the same batch before the run excludes the subject; after it, it does not', async () => {
    const g = env.governance;
    // Watch the real sequencing (not a mock): which batch each decision ran in, and what it decided.
    const decided: { batchId: number; type?: string; threw?: string }[] = [];
    const appendDecided = env.log.appendDecided.bind(env.log);
    env.log.appendDecided = (decide) =>
      appendDecided((ctx) => {
        try {
          const d = decide(ctx);
          decided.push({ batchId: ctx.batchId, type: d.type });
          return d;
        } catch (err) {
          decided.push({ batchId: ctx.batchId, threw: (err as { code?: string }).code ?? 'error' });
          throw err;
        }
      });
    let sameBatch = 0;
    try {
      for (let trial = 0; trial < 8; trial++) {
        const subject = `pt-race-${trial}`;
        const policyId = (await g.createConsent({ subject, allowedPurposes: ['HRESCH'], allowedRoles: ['ml_engineer'] }, PO)).policy.policyId;
        const input = {
          actor: { id: 'eng-7', role: 'ml_engineer' },
          purpose: 'HRESCH',
          dataset: { uri: `s3://research/race-${trial}.parquet`, digest: D1, type: 'identified' as const },
          cohort: [
            { subject, policyId },
            { subject: 'pt-alice', policyId: policies['pt-alice']! },
          ],
          manifest: { name: 'race' },
          modelBefore: MODEL,
          modelAfter: MODEL_AFTER,
          computeBackend: 'cpu',
        };
        decided.length = 0;
        // Both started in the same turn of the event loop: they join one batch, in either order.
        const revoking = () => g.revokeConsent(policyId, PO);
        const training = () => g.recordTraining(input);
        let rev: Awaited<ReturnType<typeof revoking>>;
        let tr: Awaited<ReturnType<typeof training>>;
        if (trial % 2 === 0) [rev, tr] = await Promise.all([revoking(), training()]);
        else [tr, rev] = await Promise.all([training(), revoking()]);
        const revBatch = decided.find((d) => d.type === 'CONSENT_REVOKED')!.batchId;
        if (decided.some((d) => d.batchId === revBatch && d.type !== 'CONSENT_REVOKED')) sameBatch++;
        const cohort = tr.cohort!;
        if (rev.event.index < tr.event.index) {
          assert.equal(cohort.size, 1, `trial ${trial}: revoked first, the subject must be excluded`);
          assert.deepEqual(cohort.excluded, [{ reason: 'REVOKED', count: 1 }]);
        } else {
          assert.equal(cohort.size, 2, `trial ${trial}: trained first, the subject was included`);
          assert.deepEqual(cohort.excluded, []);
        }
      }
    } finally {
      env.log.appendDecided = appendDecided;
    }
    // The race was real: in some trial the run was decided in the revocation's batch (after it, it
    // sees the revocation staged in the batch, and is decided again; before it, it is included).
    assert.ok(sameBatch > 0, 'no trial decided the revocation and the run in one batch');
    await assertVerifies(env);
  });
  it('a subject that no consent entry before the run commits has no proof to bind: 404 SUBJECT_NOT_FOUND, audited', async () => {
    // pt-zed is named under another subject's policy: left out (SUBJECT_MISMATCH).
    const r = await train([{ subject: 'pt-zed', policyId: policies['pt-alice'] }]);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.deepEqual((r.json['cohort'] as { excluded: unknown }).excluded, [{ reason: 'SUBJECT_MISMATCH', count: 1 }]);
    // Its consent comes only after the run: its commitment exists, but no consent entry before the run commits it.
    await env.governance.createConsent({ subject: 'pt-zed', allowedPurposes: ['HRESCH'], allowedRoles: ['ml_engineer'] }, PO);
    assert.equal((await env.log.sidecar.findCommitments('subject', 'pt-zed')).length, 1);
    const size = env.log.size;
    const p = await proof((r.json['event'] as { index: number }).index, { subject: 'pt-zed', absent: true });
    assert.equal(p.status, 404, JSON.stringify(p.json));
    assert.equal((p.json['error'] as { code: string }).code, 'SUBJECT_NOT_FOUND');
    assert.match((p.json['error'] as { message: string }).message, /no consent entry before entry/);
    assert.equal((await entry(env, size)).type, 'PATIENT_DATA_OPENED');
  });
});

describe('training cohorts through the CLI', () => {
  const tmp = makeTempDir('custos-cohorts-');
  const dir = join(tmp.path, 'log');
  const file = (name: string, value: unknown): string => {
    const p = join(tmp.path, name);
    writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
    return p;
  };
  const ACTOR = ['--actor', 'po-1', '--actor-role', 'privacy_officer'];
  const OPENER = ['--purpose', 'PATRQT', ...ACTOR];
  const policy: Record<string, string> = {};
  let run: number;

  before(async () => {
    ensureBuilt();
    okJson(await callCli(['--json', '--data-dir', dir, 'init', '--origin', 'cohorts.test/log']));
    for (const s of ['pt-1', 'pt-2', 'pt-3']) {
      const r = okJson<{ policy: { policyId: string } }>(await callIn(dir, ['--json', 'consent', 'create', '--subject', s, '--purposes', 'HRESCH', '--roles', 'ml_engineer', ...ACTOR]));
      policy[s] = r.policy.policyId;
    }
    okJson(await callIn(dir, ['--json', 'consent', 'revoke', policy['pt-2']!, ...ACTOR]));
  });
  after(() => tmp.cleanup());

  const trainArgs = (cohortFile: string, manifest: unknown): string[] => [
    'train',
    '--purpose',
    'HRESCH',
    '--dataset-uri',
    's3://research/cli.parquet',
    '--dataset-digest',
    D1,
    '--dataset-type',
    'identified',
    '--cohort',
    cohortFile,
    '--manifest',
    file('manifest.json', manifest),
    '--model-before',
    file('before.json', MODEL),
    '--model-after',
    file('after.json', MODEL_AFTER),
    '--compute',
    'gpu-1',
    '--actor',
    'eng-7',
    '--actor-role',
    'ml_engineer',
  ];

  it('custos train --cohort with a reference PipelineManifest: the withdrawn subject excluded and counted', async () => {
    const cohort = file(
      'cohort.json',
      ['pt-1', 'pt-2', 'pt-3'].map((s) => ({ subject: s, policyId: policy[s] })),
    );
    const r = okJson<{ event: { index: number }; cohort: { size: number; excluded: { reason: string; count: number }[]; excludedTotal: number } }>(
      await callIn(dir, ['--json', ...trainArgs(cohort, REFERENCE_MANIFEST)]),
    );
    assert.equal(r.cohort.size, 2);
    assert.deepEqual(r.cohort.excluded, [{ reason: 'REVOKED', count: 1 }]);
    run = r.event.index;
    const human = await callIn(dir, trainArgs(cohort, REFERENCE_MANIFEST));
    assert.equal(human.code, 0);
    assert.match(human.stdout, /cohort: +2 included, 1 excluded \(REVOKED 1\)/);
  });

  it('refuses a malformed PipelineManifest, a malformed cohort, and policyIds with a cohort; nothing written', async () => {
    const size = okJson<{ treeSize: number }>(await callIn(dir, ['--json', 'stats'])).treeSize;
    const cohort = file('cohort2.json', [{ subject: 'pt-1', policyId: policy['pt-1'] }]);
    assertError(await callIn(dir, trainArgs(cohort, { ...REFERENCE_MANIFEST, pipeline_nmae: 'typo' })), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callIn(dir, trainArgs(cohort, { pipeline_name: 'x' })), EXIT.validation, 'VALIDATION_FAILED');
    assertError(
      await callIn(
        dir,
        trainArgs(
          file('dup.json', [
            { subject: 'pt-1', policyId: policy['pt-1'] },
            { subject: 'pt-1', policyId: policy['pt-1'] },
          ]),
          REFERENCE_MANIFEST,
        ),
      ),
      EXIT.validation,
      'VALIDATION_FAILED',
    );
    assertError(await callIn(dir, [...trainArgs(cohort, REFERENCE_MANIFEST), '--policy', policy['pt-1']!]), EXIT.validation, 'VALIDATION_FAILED');
    assert.equal(okJson<{ treeSize: number }>(await callIn(dir, ['--json', 'stats'])).treeSize, size);
  });

  it('custos training proof writes inclusion and non-inclusion proofs; verify-proof checks them with no data directory', async () => {
    const inc = join(tmp.path, 'in.json');
    const abs = join(tmp.path, 'absent.json');
    const w = okJson<{ kind: string; commitments: string[] }>(await callIn(dir, ['--json', 'training', 'proof', String(run), '--subject', 'pt-1', '--out', inc, ...OPENER]));
    assert.equal(w.kind, 'inclusion');
    okJson(await callIn(dir, ['--json', 'training', 'proof', String(run), '--subject', 'pt-2', '--absent', '--out', abs, ...OPENER]));
    const key = join(dir, 'log.pub');
    // No --data-dir, and a data directory that does not exist: the check is offline.
    const env = { CUSTOS_DATA_DIR: join(tmp.path, 'does-not-exist') };
    const ok1 = await callCli(['training', 'verify-proof', inc, '--log-key', key], { env });
    assert.equal(ok1.code, 0, ok1.stderr);
    assert.match(ok1.stdout, /was in the cohort of the training run at entry/);
    const ok2 = okJson<{ ok: boolean; kind: string }>(await callCli(['--json', 'training', 'verify-proof', abs, '--log-key', key], { env }));
    assert.deepEqual([ok2.ok, ok2.kind], [true, 'non-inclusion']);
    // Tampered: exit 4 COHORT_PROOF_INVALID, naming the failed check.
    const p = JSON.parse(readFileSync(abs, 'utf8')) as CohortProof;
    const forged = file('forged.json', { ...p, cohort: { ...p.cohort, size: p.cohort.size + 1 } });
    const bad = await callCli(['training', 'verify-proof', forged, '--log-key', key], { env });
    assertError(bad, EXIT.verification, 'COHORT_PROOF_INVALID', { stdoutAllowed: true });
    assert.match(bad.stdout, /FAIL entry/);
    assertError(await callCli(['training', 'verify-proof', file('junk.json', '{"kind":'), '--log-key', key], { env }), EXIT.verification, 'COHORT_PROOF_MALFORMED');
  });

  it('the wrong kind, an unknown subject, a run without a cohort and a missing opener are clear errors', async () => {
    assertError(await callIn(dir, ['training', 'proof', String(run), '--subject', 'pt-2', ...OPENER]), EXIT.conflict, 'COHORT_SUBJECT_ABSENT');
    assertError(await callIn(dir, ['training', 'proof', String(run), '--subject', 'pt-1', '--absent', ...OPENER]), EXIT.conflict, 'COHORT_SUBJECT_PRESENT');
    assertError(await callIn(dir, ['training', 'proof', String(run), '--subject', 'pt-404', ...OPENER]), EXIT.notFound, 'SUBJECT_NOT_FOUND');
    assertError(await callIn(dir, ['training', 'proof', '0', '--subject', 'pt-1', ...OPENER]), EXIT.notFound, 'COHORT_NOT_FOUND');
    assertError(await callIn(dir, ['training', 'proof', String(run), '--subject', 'pt-1']), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('custos verify checks the cohort documents against the log', async () => {
    const r = okJson<{ ok: boolean }>(await callIn(dir, ['--json', 'verify']));
    assert.equal(r.ok, true);
  });
});

describe('custos demo: the cohort step', () => {
  it('shows the withdrawn patient excluded and counted, and its non-inclusion proof verified', async () => {
    ensureBuilt();
    const r = await callCli(['demo']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^8\. Training cohort/m);
    assert.match(r.stdout, /2 included, 1 excluded \(REVOKED 1\)/);
    assert.match(r.stdout, /patient_pseudo_203 was NOT in the run \(verified\)/);
    assert.doesNotMatch(r.stdout, /FAIL/);
  });
});

describe('custos verify and a cohort document that is not its cohort', () => {
  it('reports COHORT_MISMATCH for an unsorted document committed by a (forged) training entry, and the proof route refuses it', async () => {
    const env = await createServerEnv();
    try {
      // Written around the service, as a writer holding the key could: the document hashes right,
      // but its commitments are not sorted, so it is not the tree its root claims.
      const a = 'aa'.repeat(32);
      const b = 'bb'.repeat(32);
      const root = new SortedTree([a, b]).root.toString('hex');
      const bytes = canonicalJsonBytes({ schema: 'custos.training-cohort/v1', root, size: 2, commitments: [b, a] });
      const hash = sha256Hex(bytes);
      const e = await env.log.appendDecided(() => ({
        type: 'TRAINING_EXECUTED',
        payload: {
          actor: 'eng-7',
          role: 'ml_engineer',
          purpose: 'HRESCH',
          dataset: { uri: 'cc'.repeat(32), digest: D1, type: 'identified' },
          cohort: { root, size: 2, excluded: [] },
          computeBackend: 'cpu',
          documents: { training: hash, modelBefore: hash, modelAfter: hash, cohort: hash },
        },
        sidecar: { documents: [{ hash, kind: 'training-cohort', bytes }] },
      }));
      const r = await verifyDocuments({ log: env.log });
      assert.deepEqual(
        r.findings.map((f) => [f.kind, f.eventIndex]),
        [['COHORT_MISMATCH', e.index]],
      );
      await assert.rejects(buildCohortProof(env.log, e.index, 'pt-x', { absent: true, audit: async () => {} }), (err: unknown) => (err as { code?: string }).code === 'COHORT_NOT_FOUND');
    } finally {
      await env.close();
    }
  });
});
