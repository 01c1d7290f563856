/**
 * The scenario of the disclosure suites: two subjects (A and B) with a policy each, accesses,
 * inferences, denials and a training run on both, a third subject (C) erased, and an erasure of
 * one of A's links (the URI A's denied access named). Entries are an hour apart on a manual clock,
 * so period bounds fall between them.
 * @module
 */
import assert from 'node:assert/strict';
import type { ManualClock } from '../../src/log/clock.js';
import { ConsentDeniedError, type Governance } from '../../src/service/governance.js';
import { hasCode } from '../../src/core/errors.js';
import { pid } from './policy-ids.js';

export const PO = { id: 'po-1', role: 'privacy_officer' };
export const DERM = { id: 'dr-1', role: 'dermatologist' };
export const ENG = { id: 'eng-7', role: 'ml_engineer' };
const D = 'ab'.repeat(32);
const PIPELINE = { pipelineName: 'p', pipelineVersion: '1' };
const MODEL = { modelName: 'm', modelVersion: '1', weightsHash: 'ef'.repeat(32), framework: 'onnx' };
export const HOUR = 3_600_000;
/** The scenario's clock starts here (2026-03-01T00:00:00.000Z). */
export const T0 = Date.UTC(2026, 2, 1);

/** One expected line of a subject's report. */
export interface Expected {
  readonly index: number;
  readonly type: string;
  readonly time: string;
  readonly actor: string;
  readonly role: string;
  readonly purpose: string;
  readonly outcome: 'executed' | 'denied';
  readonly reason?: string;
}

/** What the scenario wrote. */
export interface Scenario {
  readonly subjects: { readonly a: string; readonly b: string; readonly c: string };
  readonly policies: { readonly a: string; readonly b: string; readonly c: string };
  readonly expected: { readonly a: readonly Expected[]; readonly b: readonly Expected[] };
  /** The URI of A's denied access, erased at the end. */
  readonly erasedUri: string;
  readonly erasures: { readonly subjectC: number; readonly uriA: number };
}

/** Writes the scenario through `g`, advancing `clock` an hour before each event. */
export async function writeScenario(g: Governance, clock: ManualClock, tag = 'x'): Promise<Scenario> {
  const subjects = { a: `pt-${tag}-alice`, b: `pt-${tag}-bob`, c: `pt-${tag}-carol` };
  const policies = { a: pid(`disc-${tag}-a`), b: pid(`disc-${tag}-b`), c: pid(`disc-${tag}-c`) };
  const expected: { a: Expected[]; b: Expected[] } = { a: [], b: [] };
  const at = () => new Date(clock.now()).toISOString();
  const tick = () => clock.advance(HOUR);
  for (const k of ['a', 'b', 'c'] as const) {
    tick();
    await g.createConsent({ policyId: policies[k], subject: subjects[k], allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist', 'ml_engineer'] }, PO);
  }
  const uri = (k: string, n: string) => `s3://clinic/${tag}/${k}/${n}`;
  for (const k of ['a', 'b'] as const) {
    tick();
    const acc = await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: policies[k], artifact: { uri: uri(k, 'img1.jpg'), digest: D } });
    expected[k].push({ index: acc.event.index, type: 'DATA_ACCESSED', time: at(), actor: DERM.id, role: DERM.role, purpose: 'TREAT', outcome: 'executed' });
    tick();
    const inf = await g.recordInference({
      actor: DERM,
      purpose: 'TREAT',
      policyId: policies[k],
      input: { uri: uri(k, 'img1.jpg'), digest: D },
      outputs: [{ name: 'report', uri: uri(k, 'report.json'), digest: D }],
      pipeline: PIPELINE,
      model: MODEL,
    });
    expected[k].push({ index: inf.event.index, type: 'INFERENCE_EXECUTED', time: at(), actor: DERM.id, role: DERM.role, purpose: 'TREAT', outcome: 'executed' });
    tick();
    const denied = await g.recordDataAccess({ actor: DERM, purpose: 'HMARKT', policyId: policies[k], artifact: { uri: uri(k, 'denied.jpg'), digest: D } }).then(
      () => assert.fail('HMARKT is not allowed'),
      (err: unknown) => {
        assert.ok(err instanceof ConsentDeniedError && hasCode(err, 'CONSENT_DENIED'));
        return err.event.index;
      },
    );
    expected[k].push({ index: denied, type: 'CONSENT_DENIED', time: at(), actor: DERM.id, role: DERM.role, purpose: 'HMARKT', outcome: 'denied', reason: 'PURPOSE_NOT_ALLOWED' });
  }
  // A's access to C's data: C only.
  tick();
  await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: policies.c, artifact: { uri: uri('c', 'img.jpg'), digest: D } });
  // One training run on A's and B's identified data.
  tick();
  const tr = await g.recordTraining({
    actor: ENG,
    purpose: 'HRESCH',
    dataset: { uri: uri('ab', 'cohort.parquet'), digest: D, type: 'identified' },
    policyIds: [policies.a, policies.b],
    manifest: { name: 'finetune-1', lr: 0.001, seed: 7 },
    modelBefore: MODEL,
    modelAfter: { ...MODEL, modelVersion: '2', weightsHash: 'cd'.repeat(32) },
    computeBackend: 'cpu',
  });
  for (const k of ['a', 'b'] as const) expected[k].push({ index: tr.event.index, type: 'TRAINING_EXECUTED', time: at(), actor: ENG.id, role: ENG.role, purpose: 'HRESCH', outcome: 'executed' });
  tick();
  const ec = await g.erase('subject', subjects.c, PO);
  tick();
  const ea = await g.erase('uri', uri('a', 'denied.jpg'), PO);
  assert.ok(ec.event && ea.event);
  return { subjects, policies, expected, erasedUri: uri('a', 'denied.jpg'), erasures: { subjectC: ec.event.index, uriA: ea.event.index } };
}
