/**
 * The exact samplers against their exact distributions: seeded (reproducible), bounded
 * chi-square tests with a generous threshold, plus a check that the same test rejects a wrong
 * distribution (so it is not a test that cannot fail).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandomSource, randomSourceFrom, seededRandomBytes } from './random.js';
import { discreteGaussianPmf, discreteLaplacePmf, isqrt, sampleBernoulliExp, sampleDiscreteGaussian, sampleDiscreteLaplace } from './sample.js';

const N = 20_000;

/**
 * Pearson's chi-square statistic of `samples` against `pmf`, over the integers where the expected
 * count is at least 5, with each tail merged into one cell; and its degrees of freedom.
 */
function chiSquare(samples: readonly number[], pmf: (x: number) => number): { stat: number; df: number } {
  const counts = new Map<number, number>();
  for (const x of samples) counts.set(x, (counts.get(x) ?? 0) + 1);
  let lo = 0;
  while (N * pmf(lo - 1) >= 5) lo--;
  let hi = 0;
  while (N * pmf(hi + 1) >= 5) hi++;
  let stat = 0;
  let pIn = 0;
  for (let x = lo; x <= hi; x++) {
    const e = N * pmf(x);
    pIn += pmf(x);
    const o = counts.get(x) ?? 0;
    stat += (o - e) ** 2 / e;
  }
  // The two tails, each its own cell (symmetric distributions: half the rest each).
  const eTail = (N * (1 - pIn)) / 2;
  let below = 0;
  let above = 0;
  for (const [x, c] of counts) {
    if (x < lo) below += c;
    else if (x > hi) above += c;
  }
  if (eTail > 0) stat += (below - eTail) ** 2 / eTail + (above - eTail) ** 2 / eTail;
  return { stat, df: hi - lo + 2 };
}

// A generous bound: mean df, plus 8 standard deviations (sqrt(2 df)). A correct sampler fails it
// with probability far below 1e-9; with a fixed seed the outcome is fixed anyway.
const bound = (df: number): number => df + 8 * Math.sqrt(2 * df);

function draw(n: number, f: () => bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Number(f()));
  return out;
}

describe('sampleDiscreteLaplace', () => {
  for (const [s, t] of [
    [1n, 2n],
    [3n, 5n],
    [1_000_000n, 1_500_000n],
  ] as const) {
    it(`matches the discrete Laplace pmf with scale ${t}/${s} (chi-square, seeded)`, () => {
      const rng = seededRandomSource(`dlap-${s}-${t}`);
      const scale = Number(t) / Number(s);
      const samples = draw(N, () => sampleDiscreteLaplace(rng, s, t));
      const { stat, df } = chiSquare(samples, (x) => discreteLaplacePmf(x, scale));
      assert.ok(stat < bound(df), `chi-square ${stat.toFixed(1)} with ${df} df`);
      const mean = samples.reduce((a, b) => a + b, 0) / N;
      assert.ok(Math.abs(mean) < 0.1 * scale + 0.05, `mean ${mean}`);
    });
  }

  it('the test rejects a wrong scale (it can fail)', () => {
    const rng = seededRandomSource('dlap-wrong');
    const samples = draw(N, () => sampleDiscreteLaplace(rng, 1n, 3n));
    const { stat, df } = chiSquare(samples, (x) => discreteLaplacePmf(x, 2));
    assert.ok(stat > bound(df), `chi-square ${stat.toFixed(1)} with ${df} df should exceed ${bound(df).toFixed(1)}`);
  });

  it('is reproducible from a seed and varies across seeds', () => {
    const a = draw(
      50,
      (
        (r) => () =>
          sampleDiscreteLaplace(r, 1n, 4n)
      )(seededRandomSource('x')),
    );
    const b = draw(
      50,
      (
        (r) => () =>
          sampleDiscreteLaplace(r, 1n, 4n)
      )(seededRandomSource('x')),
    );
    const c = draw(
      50,
      (
        (r) => () =>
          sampleDiscreteLaplace(r, 1n, 4n)
      )(seededRandomSource('y')),
    );
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('refuses a scale with s or t below 1', () => {
    assert.throws(() => sampleDiscreteLaplace(seededRandomSource('z'), 0n, 1n), RangeError);
  });
});

describe('sampleDiscreteGaussian', () => {
  for (const [num, den] of [
    [4n, 1n],
    [5n, 2n],
    [100n, 1n],
  ] as const) {
    it(`matches the discrete Gaussian pmf with σ² = ${num}/${den} (chi-square, seeded)`, () => {
      const rng = seededRandomSource(`dgauss-${num}-${den}`);
      const sigma2 = Number(num) / Number(den);
      const samples = draw(N, () => sampleDiscreteGaussian(rng, num, den));
      const { stat, df } = chiSquare(samples, (x) => discreteGaussianPmf(x, sigma2));
      assert.ok(stat < bound(df), `chi-square ${stat.toFixed(1)} with ${df} df`);
      const variance = samples.reduce((a, b) => a + b * b, 0) / N;
      assert.ok(Math.abs(variance - sigma2) < 0.1 * sigma2, `variance ${variance} vs ${sigma2}`);
    });
  }

  it('the test rejects a wrong variance (it can fail)', () => {
    const rng = seededRandomSource('dgauss-wrong');
    const samples = draw(N, () => sampleDiscreteGaussian(rng, 6n, 1n));
    const { stat, df } = chiSquare(samples, (x) => discreteGaussianPmf(x, 4));
    assert.ok(stat > bound(df));
  });
});

describe('sampleBernoulliExp', () => {
  for (const [num, den] of [
    [1n, 2n],
    [3n, 2n],
    [0n, 1n],
    [7n, 3n],
  ] as const) {
    it(`has mean exp(-${num}/${den})`, () => {
      const rng = seededRandomSource(`bexp-${num}-${den}`);
      let ones = 0;
      for (let i = 0; i < N; i++) if (sampleBernoulliExp(rng, num, den)) ones++;
      const p = Math.exp(-Number(num) / Number(den));
      const sd = Math.sqrt((N * p * (1 - p)) / 1) || 1;
      assert.ok(Math.abs(ones - N * p) < 6 * sd, `${ones} ones, expected ${N * p}`);
    });
  }
});

describe('randomSourceFrom', () => {
  it('is uniform below a bound that is not a power of two (no modulo bias)', () => {
    const rng = randomSourceFrom(seededRandomBytes('uniform'));
    const counts = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 60_000; i++) counts[Number(rng.below(6n))]!++;
    let stat = 0;
    for (const c of counts) stat += (c - 10_000) ** 2 / 10_000;
    assert.ok(stat < bound(5), `chi-square ${stat}`);
  });

  it('draws big bounds exactly', () => {
    const rng = seededRandomSource('big');
    const n = 2n ** 200n + 12345n;
    for (let i = 0; i < 100; i++) {
      const x = rng.below(n);
      assert.ok(x >= 0n && x < n);
    }
  });
});

describe('isqrt', () => {
  it('is the floor of the square root', () => {
    for (const n of [0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, 10n ** 40n, 10n ** 40n - 1n]) {
      const r = isqrt(n);
      assert.ok(r * r <= n && (r + 1n) * (r + 1n) > n, String(n));
    }
  });
});
