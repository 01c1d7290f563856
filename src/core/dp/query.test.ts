/**
 * Queries: the compact and JSON forms, the refusals, the fixed bins, and clipping per unit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertThrowsCode } from '../../../test/helpers/assert-code.js';
import { ValidationError } from '../errors.js';
import type { LoggedEvent } from '../events.js';
import { DpAggregator, dpBins, dpQueryJson, parseDpQuery, parseDpQuerySpec } from './query.js';

const domains = { purposes: ['TREAT', 'HRESCH'], roles: ['clinician', 'nurse'] };
const H = (c: string) => c.repeat(64);

describe('parseDpQuerySpec', () => {
  it('reads the compact form into the canonical query (filters sorted, defaults filled)', () => {
    const q = parseDpQuerySpec('unit=patient clip=3 by=purpose per=week from=2026-01-05 to=2026-01-19; type=INFERENCE_EXECUTED,DATA_ACCESSED', domains);
    assert.deepEqual(dpQueryJson(q), {
      unit: 'patient',
      clip: 3,
      by: ['purpose'],
      per: 'week',
      from: '2026-01-05',
      to: '2026-01-19',
      where: { type: ['DATA_ACCESSED', 'INFERENCE_EXECUTED'] },
    });
  });

  it('reads the JSON form to the same query', () => {
    const a = parseDpQuerySpec('unit=event from=2026-01-01 to=2026-02-01 outcome=denied', domains);
    const b = parseDpQuerySpec('{"unit":"event","from":"2026-01-01","to":"2026-02-01","where":{"outcome":["denied"]}}', domains);
    assert.deepEqual(dpQueryJson(a), dpQueryJson(b));
  });

  for (const [what, spec] of [
    ['an unknown key', 'unit=event from=2026-01-01 to=2026-02-01 colour=red'],
    ['a key given twice', 'unit=event unit=patient from=2026-01-01 to=2026-02-01'],
    ['to not after from', 'unit=event from=2026-02-01 to=2026-02-01'],
    ['an impossible date', 'unit=event from=2026-02-30 to=2026-03-01'],
    ['an unknown purpose', 'unit=event from=2026-01-01 to=2026-02-01 purpose=SHOPPING'],
    ['an unknown event type', 'unit=event from=2026-01-01 to=2026-02-01 type=NOPE'],
    ['a breakdown by model without the models', 'unit=event by=model from=2026-01-01 to=2026-02-01'],
    ['a clip for unit event', 'unit=event clip=2 from=2026-01-01 to=2026-02-01'],
    ['too many bins', 'unit=event by=type,purpose per=day from=2016-01-01 to=2026-01-01'],
    ['a missing unit', 'from=2026-01-01 to=2026-02-01'],
    ['invalid JSON', '{"unit":'],
  ] as const) {
    it(`refuses ${what} with VALIDATION_FAILED`, () => assertThrowsCode(() => parseDpQuerySpec(spec, domains), ValidationError, 'VALIDATION_FAILED'));
  }

  it('refuses a JSON query with an undeclared field', () => {
    assertThrowsCode(() => parseDpQuery({ unit: 'event', from: '2026-01-01', to: '2026-02-01', note: 'free text' }, domains), ValidationError, 'VALIDATION_FAILED');
  });
});

describe('dpBins', () => {
  it('is fixed by the query and the vocabularies: periods, then each dimension in order', () => {
    const q = parseDpQuerySpec('unit=event by=role,outcome per=week from=2026-01-05 to=2026-01-15 outcome=permitted,denied', domains);
    const bins = dpBins(q, domains);
    assert.equal(bins.length, 2 * 2 * 2);
    assert.deepEqual(bins[0], { period: '2026-01-05', role: 'clinician', outcome: 'denied' });
    assert.deepEqual(bins[3], { period: '2026-01-05', role: 'nurse', outcome: 'permitted' });
    assert.deepEqual(bins[4], { period: '2026-01-12', role: 'clinician', outcome: 'denied' });
  });
});

const ev = (type: string, time: string, payload: Record<string, unknown>): LoggedEvent => ({ type, time, payload });

describe('DpAggregator', () => {
  // Two patients (subjects s1, s2) under three policies; s1 has two policies.
  const events: LoggedEvent[] = [
    ev('CONSENT_CREATED', '2026-01-01T00:00:00.000Z', { policyId: 'p1', subject: H('1') }),
    ev('CONSENT_CREATED', '2026-01-01T00:00:00.000Z', { policyId: 'p2', subject: H('2') }),
    ev('CONSENT_CREATED', '2026-01-01T00:00:00.000Z', { policyId: 'p3', subject: H('1') }),
    ...[1, 2, 3, 4, 5].map((d) =>
      ev('INFERENCE_EXECUTED', `2026-01-0${d}T10:00:00.000Z`, { policyId: d % 2 ? 'p1' : 'p3', purpose: 'TREAT', role: 'clinician', actor: 'dr-a', documents: { model: H('a') } }),
    ),
    ev('CONSENT_DENIED', '2026-01-02T10:00:00.000Z', { policyId: 'p2', purpose: 'HRESCH', role: 'nurse', actor: 'n-1', model: H('a') }),
    ev('DATA_ACCESSED', '2026-01-09T10:00:00.000Z', { policyId: 'p2', purpose: 'TREAT', role: 'nurse', actor: 'n-1' }),
    // linked to no patient (unknown policy): not counted per patient
    ev('CONSENT_DENIED', '2026-01-03T10:00:00.000Z', { policyId: 'p9', purpose: 'TREAT', role: 'nurse', actor: 'n-1' }),
    // out of range
    ev('INFERENCE_EXECUTED', '2026-02-01T00:00:00.000Z', { policyId: 'p2', purpose: 'TREAT', role: 'clinician', actor: 'dr-a' }),
  ];
  const run = (spec: string): number[] => {
    const q = parseDpQuerySpec(spec, domains);
    const a = new DpAggregator(q, domains);
    events.forEach((e, i) => a.add(i, e));
    return a.counts();
  };

  it('clips each patient to `clip` events, across all bins', () => {
    // s1: 5 inferences (clipped to 2); s2: one denial, one access; outcomes in DP_OUTCOMES order.
    assert.deepEqual(run('unit=patient clip=2 by=outcome from=2026-01-01 to=2026-01-31'), [3, 1, 0]); // permitted, denied, break_glass
  });

  it('counts every selected event once with unit event', () => {
    assert.deepEqual(run('unit=event by=outcome from=2026-01-01 to=2026-01-31'), [6, 2, 0]);
  });

  it('clips per actor with unit actor', () => {
    assert.deepEqual(run('unit=actor clip=1 by=role from=2026-01-01 to=2026-01-31'), [1, 1]);
  });

  it('puts events in their day and filters by model', () => {
    const counts = run(`unit=event per=day from=2026-01-01 to=2026-01-04 model=${H('a')}`);
    assert.deepEqual(counts, [1, 2, 1]);
  });
});
