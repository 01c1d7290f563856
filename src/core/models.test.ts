import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from './errors.js';
import { applyModelEvent, checkInferenceModel, createModelRegistryState, evaluateChangePlan, parseChangePlan, parseModelRegistration, versionStatus } from './models.js';

const W1 = 'a1'.repeat(32);
const W2 = 'b2'.repeat(32);
const T = '2030-01-01T00:00:00.000Z';
const who = { actor: 'x', role: 'clinical_safety_officer' };
const PLAN = parseChangePlan({
  planId: 'p-1',
  model: 'm',
  modifications: ['retrain'],
  dataConstraints: { datasetTypes: ['synthetic'], purposes: ['HRESCH'] },
  acceptance: [
    { metric: 'auroc', min: 0.9 },
    { metric: 'fpr', max: 0.1 },
  ],
});
const run = (metrics: Record<string, number>, o: { modification?: string; datasetType?: string; purpose?: string } = {}) => ({
  modification: o.modification ?? 'retrain',
  metrics,
  datasetType: o.datasetType ?? 'synthetic',
  purpose: o.purpose ?? 'HRESCH',
});

describe('evaluateChangePlan', () => {
  it('is WITHIN_BOUNDS when every bounded metric is within its bounds (inclusive); extra metrics are not judged', () => {
    assert.deepEqual(evaluateChangePlan(PLAN, run({ auroc: 0.9, fpr: 0.1, other: 42 })), { outcome: 'WITHIN_BOUNDS', failures: [] });
  });
  it('names every metric out of bounds', () => {
    const r = evaluateChangePlan(PLAN, run({ auroc: 0.89, fpr: 0.2 }));
    assert.equal(r.outcome, 'METRIC_OUT_OF_BOUNDS');
    assert.deepEqual(
      r.failures.map((f) => f.metric),
      ['auroc', 'fpr'],
    );
  });
  it('reports a missing metric before bounds', () => {
    assert.equal(evaluateChangePlan(PLAN, run({ auroc: 0.5 })).outcome, 'METRIC_MISSING');
  });
  it('refuses a modification the plan does not allow, and data outside its constraints', () => {
    assert.equal(evaluateChangePlan(PLAN, run({ auroc: 0.95, fpr: 0 }, { modification: 'architecture_change' })).outcome, 'MODIFICATION_NOT_ALLOWED');
    assert.equal(evaluateChangePlan(PLAN, run({ auroc: 0.95, fpr: 0 }, { datasetType: 'identified' })).outcome, 'DATA_CONSTRAINT_NOT_MET');
    assert.equal(evaluateChangePlan(PLAN, run({ auroc: 0.95, fpr: 0 }, { purpose: 'TREAT' })).outcome, 'DATA_CONSTRAINT_NOT_MET');
  });
});

describe('parseChangePlan and parseModelRegistration', () => {
  for (const [what, input] of [
    ['a metric without bounds', { ...PLAN, acceptance: [{ metric: 'auroc' }] }],
    ['min above max', { ...PLAN, acceptance: [{ metric: 'auroc', min: 1, max: 0 }] }],
    [
      'a metric twice',
      {
        ...PLAN,
        acceptance: [
          { metric: 'auroc', min: 0 },
          { metric: 'auroc', max: 1 },
        ],
      },
    ],
    ['an unknown modification', { ...PLAN, modifications: ['rewrite'] }],
    ['no modification', { ...PLAN, modifications: [] }],
    ['a plan id with spaces', { ...PLAN, planId: 'my plan' }],
  ] as const) {
    it(`refuses ${what} (VALIDATION_FAILED)`, () => {
      assert.throws(
        () => parseChangePlan(input),
        (e: unknown) => e instanceof ValidationError && e.code === 'VALIDATION_FAILED',
      );
    });
  }
  it('refuses a free-text intended use or risk class, and a name with spaces', () => {
    const ok = { model: 'm', version: '1.0.0', weightsHash: W1, intendedUse: 'triage', riskClass: 'imdrf_ii' };
    assert.equal(parseModelRegistration(ok).model, 'm');
    for (const bad of [{ intendedUse: 'helps doctors' }, { riskClass: 'high' }, { model: 'my model' }, { version: '1 0' }, { spec: [1] }]) {
      assert.throws(() => parseModelRegistration({ ...ok, ...bad }), ValidationError, JSON.stringify(bad));
    }
  });
});

describe('the registry fold and checkInferenceModel', () => {
  const reg = createModelRegistryState();
  applyModelEvent(reg, 0, {
    type: 'MODEL_REGISTERED',
    time: T,
    payload: { model: 'm', version: '1', weightsHash: W1, intendedUse: 'triage', riskClass: 'imdrf_ii', documents: { spec: W2 }, ...who },
  });
  const declared = { modelName: 'm', modelVersion: '1', weightsHash: W1 };

  it('a model of an unregistered line is ungoverned unless registration is required', () => {
    assert.deepEqual(checkInferenceModel(reg.lines.get('other'), { ...declared, modelName: 'other' }, false), { kind: 'ungoverned' });
    assert.equal(checkInferenceModel(reg.lines.get('other'), { ...declared, modelName: 'other' }, true).kind, 'refused');
  });
  it('registered but not approved, another version, another digest: refused with the reason', () => {
    assert.deepEqual(checkInferenceModel(reg.lines.get('m'), declared, false), { kind: 'refused', reason: 'MODEL_NOT_APPROVED', state: 'registered' });
    assert.deepEqual(checkInferenceModel(reg.lines.get('m'), { ...declared, modelVersion: '2' }, false), { kind: 'refused', reason: 'MODEL_NOT_APPROVED', state: 'unregistered' });
    assert.equal(checkInferenceModel(reg.lines.get('m'), { ...declared, weightsHash: W2 }, false).kind, 'refused');
  });
  it('approved: runs; an approval applied twice changes nothing; retired: refused', () => {
    const approval = { type: 'MODEL_APPROVED', time: T, payload: { model: 'm', version: '1', weightsHash: W1, registered: 0, basis: 'human', ...who } };
    applyModelEvent(reg, 1, approval);
    applyModelEvent(reg, 1, approval);
    assert.equal(reg.lines.get('m')!.versions.get('1')!.approval!.index, 1);
    assert.deepEqual(checkInferenceModel(reg.lines.get('m'), declared, false), { kind: 'approved', model: 'm', version: '1' });
    applyModelEvent(reg, 2, { type: 'MODEL_RETIRED', time: T, payload: { model: 'm', version: '1', registered: 0, ...who } });
    assert.equal(versionStatus(reg.lines.get('m')!.versions.get('1')), 'retired');
    assert.deepEqual(checkInferenceModel(reg.lines.get('m'), declared, false), { kind: 'refused', reason: 'MODEL_NOT_APPROVED', state: 'retired' });
  });
  it('lists the inferences of a version once each, in order', () => {
    for (const i of [5, 3, 5]) applyModelEvent(reg, i, { type: 'INFERENCE_EXECUTED', time: T, payload: { modelName: 'm', modelVersion: '1' } });
    assert.deepEqual(reg.lines.get('m')!.versions.get('1')!.inferences, [3, 5]);
  });
});
