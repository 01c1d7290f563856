/**
 * The accountant: exact decimals, basic composition, periods, calibration, the budget file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertThrowsCode } from '../../../test/helpers/assert-code.js';
import { ValidationError } from '../errors.js';
import { DEFAULT_DP_CONFIG, DELTA_SCALE, EPSILON_SCALE, budgetOf, composeBasic, gaussianSigma2, parsePrivacyParams, periodOf, toUnits, withinBudget } from './accountant.js';
import { parseDpConfig } from './config.js';

describe('toUnits', () => {
  it('converts decimals exactly, from numbers and from text', () => {
    assert.equal(toUnits(0.1, EPSILON_SCALE), 100_000n);
    assert.equal(toUnits('0.000001', EPSILON_SCALE), 1n);
    assert.equal(toUnits(1e-9, DELTA_SCALE), 1_000_000n);
    assert.equal(toUnits('2.5e-7', DELTA_SCALE), 250_000_000n);
  });
  it('refuses what the scale cannot hold exactly', () => {
    assert.equal(toUnits(0.1234567, EPSILON_SCALE), undefined);
    assert.equal(toUnits('-1', EPSILON_SCALE), undefined);
    assert.equal(toUnits(Number.NaN, EPSILON_SCALE), undefined);
  });
});

describe('basic composition', () => {
  it('sums exactly: 0.1 + 0.2 fits a budget of 0.3', () => {
    const a = parsePrivacyParams(0.1);
    const b = parsePrivacyParams(0.2);
    assert.ok(withinBudget(a, b, parsePrivacyParams(0.3)));
    assert.ok(!withinBudget(composeBasic([a, b]), parsePrivacyParams(0.000001), parsePrivacyParams(0.3)));
  });
  it('refuses ε = 0, ε > 100 and δ > 0.01', () => {
    for (const [e, d] of [
      [0, 0],
      [101, 0],
      [1, 0.5],
      ['abc', 0],
    ] as const)
      assertThrowsCode(() => parsePrivacyParams(e, d), ValidationError, 'VALIDATION_FAILED');
  });
});

describe('periodOf', () => {
  const t = Date.parse('2026-12-03T15:00:00.000Z'); // a Thursday
  it('names calendar periods as ISO 8601 intervals', () => {
    assert.equal(periodOf('day', t).id, '2026-12-03/P1D');
    assert.equal(periodOf('week', t).id, '2026-11-30/P1W');
    assert.equal(periodOf('month', t).id, '2026-12-01/P1M');
    assert.equal(periodOf('year', t).id, '2026-01-01/P1Y');
    const w = periodOf('week', t);
    assert.ok(w.startMs <= t && t < w.endMs);
  });
});

describe('gaussianSigma2', () => {
  it('rounds σ² up from the zCDP conversion', () => {
    const { num, den } = gaussianSigma2(parsePrivacyParams(1, 1e-5), 1);
    const L = Math.log(1e5);
    const rho = (Math.sqrt(L + 1) - Math.sqrt(L)) ** 2;
    assert.ok(Number(num) / Number(den) >= 1 / (2 * rho));
    assert.ok(Number(num) / Number(den) < 1 / (2 * rho) + 0.001);
  });
  it('refuses δ = 0', () => assertThrowsCode(() => gaussianSigma2(parsePrivacyParams(1), 1), ValidationError, 'VALIDATION_FAILED'));
});

describe('parseDpConfig', () => {
  it('reads the declared consumers (ids lowercased) and the total', () => {
    const c = parseDpConfig({ period: 'week', total: { epsilon: 3, delta: 1e-6 }, consumers: { 'Public-Site': { epsilon: 2, delta: 1e-6 }, board: { epsilon: 0.5 } } });
    assert.equal(c.period, 'week');
    assert.deepEqual(c.total, { epsilon: 3_000_000n, delta: 1_000_000_000n });
    assert.deepEqual([...c.consumers.keys()], ['public-site', 'board']);
    assert.deepEqual(budgetOf(c, 'PUBLIC-site'), { epsilon: 2_000_000n, delta: 1_000_000_000n });
    assert.deepEqual(budgetOf(c, 'board'), { epsilon: 500_000n, delta: 0n });
    assert.equal(budgetOf(c, 'public'), undefined, 'an unlisted consumer has no budget');
  });
  it('declares the one consumer public, and a total of ε = 1, δ = 1e-5, by default', () => {
    for (const c of [DEFAULT_DP_CONFIG, parseDpConfig({ period: 'year' })]) {
      assert.deepEqual([...c.consumers.keys()], ['public']);
      assert.deepEqual(budgetOf(c, 'public'), { epsilon: 1_000_000n, delta: 10_000_000_000n });
      assert.deepEqual(c.total, { epsilon: 1_000_000n, delta: 10_000_000_000n });
    }
    assert.equal(parseDpConfig({ consumers: {} }).consumers.size, 0);
  });
  it('refuses a default budget for unlisted consumers, and ids listed twice but for case', () => {
    assertThrowsCode(() => parseDpConfig({ default: { epsilon: 1 } }), ValidationError, 'VALIDATION_FAILED');
    assertThrowsCode(() => parseDpConfig({ default: null }), ValidationError, 'VALIDATION_FAILED');
    assertThrowsCode(() => parseDpConfig({ consumers: { web: { epsilon: 1 }, WEB: { epsilon: 1 } } }), ValidationError, 'VALIDATION_FAILED');
  });
  it('refuses an unknown field or period', () => {
    assertThrowsCode(() => parseDpConfig({ perio: 'week' }), ValidationError, 'VALIDATION_FAILED');
    assertThrowsCode(() => parseDpConfig({ period: 'fortnight' }), ValidationError, 'VALIDATION_FAILED');
  });
});
