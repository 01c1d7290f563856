/**
 * Exact samplers for the discrete Laplace and discrete Gaussian distributions, after Canonne, Kamath
 * and Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020, arXiv:2004.00010),
 * Algorithms 1–3. Every step is integer or rational arithmetic on BigInt, driven by uniform integers
 * from a {@link RandomSource}: no floating point touches a sample. That is the point: the textbook
 * Laplace mechanism computed in floating point (`-b·ln(U)`) leaves holes and uneven gaps in the set
 * of outputs it can produce, and those gaps reveal the true value (Mironov, "On Significance of the
 * Least Significant Bits for Differential Privacy", CCS 2012).
 *
 * The discrete Laplace with scale t has P(x) ∝ exp(−|x|/t) on the integers; the discrete Gaussian
 * with variance parameter σ² has P(x) ∝ exp(−x²/(2σ²)).
 * @module
 */
import type { RandomSource } from './random.js';

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** floor(sqrt(n)) for n ≥ 0 (Newton's method on BigInt). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt of a negative number');
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  // Correct the float estimate (exact for any size).
  while (x * x > n) x = (x + n / x) / 2n;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/** Bernoulli(num/den), 0 ≤ num ≤ den, den ≥ 1. */
export function sampleBernoulli(rng: RandomSource, num: bigint, den: bigint): boolean {
  return rng.below(den) < num;
}

/**
 * Bernoulli(exp(−γ)) for a rational γ = num/den ≥ 0 (CKS 2020, Algorithm 1). For γ ≤ 1 it counts
 * the Bernoulli(γ/k) successes in a row; the count's parity has exactly the right law. For γ > 1 it
 * takes ⌊γ⌋ Bernoulli(exp(−1)) draws and one Bernoulli(exp(−(γ − ⌊γ⌋))).
 */
export function sampleBernoulliExp(rng: RandomSource, num: bigint, den: bigint): boolean {
  if (num < 0n || den < 1n) throw new RangeError('Bernoulli(exp(-γ)) needs γ = num/den with num ≥ 0, den ≥ 1');
  if (num <= den) {
    let k = 1n;
    while (sampleBernoulli(rng, num, den * k)) k++;
    return k % 2n === 1n;
  }
  const whole = num / den;
  for (let i = 0n; i < whole; i++) if (!sampleBernoulliExp(rng, 1n, 1n)) return false;
  return sampleBernoulliExp(rng, num - whole * den, den);
}

/**
 * One sample of the discrete Laplace distribution with scale t/s (s, t ≥ 1 integers):
 * P(x) = tanh(s/(2t))·exp(−|x|·s/t) (CKS 2020, Algorithm 2). For a query of L1 sensitivity Δ, scale
 * Δ/ε gives ε-differential privacy.
 */
export function sampleDiscreteLaplace(rng: RandomSource, s: bigint, t: bigint): bigint {
  if (s < 1n || t < 1n) throw new RangeError('the discrete Laplace scale t/s needs s, t ≥ 1');
  const g = gcd(s, t);
  s /= g;
  t /= g;
  for (;;) {
    const u = rng.below(t);
    if (!sampleBernoulliExp(rng, u, t)) continue;
    let v = 0n;
    while (sampleBernoulliExp(rng, 1n, 1n)) v++;
    const y = (u + t * v) / s;
    const negative = rng.below(2n) === 1n;
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}

/**
 * One sample of the discrete Gaussian distribution with variance parameter σ² = num/den (> 0):
 * P(x) ∝ exp(−x²/(2σ²)) (CKS 2020, Algorithm 3: a discrete Laplace proposal with scale ⌊σ⌋ + 1,
 * accepted with probability exp(−(|y| − σ²/t)²/(2σ²)), all in exact rationals).
 */
export function sampleDiscreteGaussian(rng: RandomSource, num: bigint, den: bigint): bigint {
  if (num < 1n || den < 1n) throw new RangeError('the discrete Gaussian needs σ² = num/den > 0');
  const t = isqrt(num / den) + 1n;
  for (;;) {
    const y = sampleDiscreteLaplace(rng, 1n, t);
    const a = y < 0n ? -y : y;
    // (|y| − σ²/t)² / (2σ²) = (|y|·den·t − num)² / (2·num·den·t²)
    const d = a * den * t - num;
    if (sampleBernoulliExp(rng, d * d, 2n * num * den * t * t)) return y;
  }
}

/** The discrete Laplace pmf with scale `scale` at x (floating point: for tests and docs, never for sampling). */
export function discreteLaplacePmf(x: number, scale: number): number {
  const q = Math.exp(-1 / scale);
  return ((1 - q) / (1 + q)) * q ** Math.abs(x);
}

/** The discrete Gaussian pmf with variance parameter σ² at x (floating point: for tests and docs). */
export function discreteGaussianPmf(x: number, sigma2: number): number {
  let z = 0;
  const bound = Math.ceil(Math.sqrt(sigma2) * 40) + 10;
  for (let k = -bound; k <= bound; k++) z += Math.exp(-(k * k) / (2 * sigma2));
  return Math.exp(-(x * x) / (2 * sigma2)) / z;
}
