/**
 * A release: exact counts plus noise from one mechanism, and the document that records it
 * off-ledger (its hash is on the log, in the DP_RELEASE event).
 * @module
 */
import { fromUnits, gaussianSigma2, laplaceScale, privacyJson, type DpMechanism, type PrivacyUnits } from './accountant.js';
import type { RandomSource } from './random.js';
import { sampleDiscreteGaussian, sampleDiscreteLaplace } from './sample.js';
import type { DpBin } from './query.js';

/** How the noise was calibrated (published with the release: the noise distribution is public, only the draws are secret). */
export interface NoiseParameters {
  readonly mechanism: DpMechanism;
  /** The L1 (Laplace) or L2 (Gaussian) sensitivity: the clip bound. */
  readonly sensitivity: number;
  /** discrete_laplace: the scale Δ₁/ε (P(x) ∝ exp(−|x|/scale)), as an exact fraction "t/s" and as a number. */
  readonly scale?: { readonly exact: string; readonly value: number };
  /** discrete_gaussian: σ² (P(x) ∝ exp(−x²/(2σ²))), as an exact fraction and as a number. */
  readonly sigma2?: { readonly exact: string; readonly value: number };
}

/**
 * Adds independent noise to each count: the discrete Laplace with scale `clip`/ε (ε-DP for the
 * whole vector: the clip bounds its L1 sensitivity), or the discrete Gaussian with σ² from
 * {@link gaussianSigma2} ((ε, δ)-DP: the clip bounds its L2 sensitivity).
 */
export function addNoise(counts: readonly number[], mechanism: DpMechanism, cost: PrivacyUnits, clip: number, rng: RandomSource): { values: number[]; noise: NoiseParameters } {
  if (mechanism === 'discrete_laplace') {
    const { s, t } = reduced(laplaceScale(cost, clip));
    const values = counts.map((c) => c + Number(sampleDiscreteLaplace(rng, s, t)));
    return { values, noise: { mechanism, sensitivity: clip, scale: { exact: `${t}/${s}`, value: Number(t) / Number(s) } } };
  }
  const { num, den } = gaussianSigma2(cost, clip);
  const values = counts.map((c) => c + Number(sampleDiscreteGaussian(rng, num, den)));
  return { values, noise: { mechanism, sensitivity: clip, sigma2: { exact: `${num}/${den}`, value: fromUnits(num, 6) } } };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

// t/s in lowest terms (the published fraction; the sampler reduces it too).
function reduced({ s, t }: { s: bigint; t: bigint }): { s: bigint; t: bigint } {
  const g = gcd(s, t);
  return { s: s / g, t: t / g };
}

/** The release document's format version. */
export const DP_RELEASE_DOC_VERSION = 1;

/** The off-ledger document of one release (canonical JSON; its SHA-256 is `documents.release` on the log). */
export interface DpReleaseDocument {
  readonly v: typeof DP_RELEASE_DOC_VERSION;
  readonly consumer: string;
  readonly query: Record<string, unknown>;
  readonly queryHash: string;
  readonly epsilon: number;
  readonly delta: number;
  readonly noise: NoiseParameters;
  /** The budget period the release was charged to (ISO 8601 interval, e.g. 2026-12-01/P1M). */
  readonly budgetPeriod: string;
  /** The log size the exact counts were computed over (entries 0 .. treeSize − 1). */
  readonly treeSize: number;
  /** One per bin: the bin and its released (noisy) value. */
  readonly values: readonly (DpBin & { readonly value: number })[];
}

/** Builds the document of a release. */
export function dpReleaseDocument(o: {
  consumer: string;
  query: Record<string, unknown>;
  queryHash: string;
  cost: PrivacyUnits;
  noise: NoiseParameters;
  budgetPeriod: string;
  treeSize: number;
  bins: readonly DpBin[];
  values: readonly number[];
}): DpReleaseDocument {
  return {
    v: DP_RELEASE_DOC_VERSION,
    consumer: o.consumer,
    query: o.query,
    queryHash: o.queryHash,
    ...privacyJson(o.cost),
    noise: o.noise,
    budgetPeriod: o.budgetPeriod,
    treeSize: o.treeSize,
    values: o.bins.map((b, i) => ({ ...b, value: o.values[i]! })),
  };
}
