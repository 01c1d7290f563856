/**
 * The batch tamper check of the reference, on Custos: sample receipts, tamper with a fraction of
 * them, and measure how many edits verification detects and how many untouched receipts it flags.
 * Pure bookkeeping around three injected steps (verify, tamper, verify), so it runs against any
 * store copy.
 * @module
 */

/**
 * Detection figures of one tamper check. `total_inference_events` and `baseline_ok_before` keep the
 * reference's names (its `batch_offledger_tamper_test`); the other reference names map as docs/simulation.md says.
 */
export interface TamperCheckReport {
  /** Receipts (inference events) available to sample: the reference's `total_inference_events`. */
  readonly total_inference_events: number;
  /** Sampled receipts that verified before anything was tampered with: the reference's `baseline_ok_before`. */
  readonly baseline_ok_before: number;
  readonly sampled: number;
  readonly tampered: number;
  readonly detected: number;
  readonly missed: number;
  readonly falseAlarms: number;
  /** detected / tampered; null when nothing was tampered (undefined, not 100%). */
  readonly detectionRate: number | null;
  /** false alarms / untouched sampled receipts; null when every sampled receipt was tampered with. */
  readonly falseAlarmRate: number | null;
  readonly seed: number;
}

export { seededRandom } from '../core/random.js';
import { seededRandom } from '../core/random.js';

/** A rate that is undefined (null) when its denominator is 0: never a made-up 100% or 0%. */
export function rateOrNull(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}

/** A rate as a percentage with one decimal, or `n/a` when it is undefined. */
export function formatRate(rate: number | null): string {
  return rate === null ? 'n/a' : `${(rate * 100).toFixed(1)}%`;
}

/**
 * Samples up to `sample` receipts, asks `flagged` which of them verification reports before any
 * edit (the baseline), tampers with `rate` of them through `tamper`, asks `flagged` again, and
 * scores the result.
 */
export async function runTamperCheck(o: {
  receipts: readonly string[];
  sample: number;
  rate: number;
  seed: number;
  tamper: (hash: string) => void;
  /** The receipts verification reports; called twice: before the edits and after them. */
  flagged: (phase: 'before' | 'after') => Promise<Set<string>>;
}): Promise<TamperCheckReport> {
  const rnd = seededRandom(o.seed);
  const pool = [...o.receipts];
  // Fisher-Yates, seeded.
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const sampled = pool.slice(0, Math.min(o.sample, pool.length));
  const before = await o.flagged('before');
  const baselineOk = sampled.filter((h) => !before.has(h)).length;
  // As the reference: int(len(sample) * fraction).
  const nTamper = Math.floor(sampled.length * o.rate);
  const tampered = new Set(sampled.slice(0, nTamper));
  for (const h of tampered) o.tamper(h);
  const flagged = await o.flagged('after');
  let detected = 0;
  let falseAlarms = 0;
  for (const h of sampled) {
    if (tampered.has(h) && flagged.has(h)) detected++;
    if (!tampered.has(h) && flagged.has(h)) falseAlarms++;
  }
  const clean = sampled.length - tampered.size;
  return {
    total_inference_events: o.receipts.length,
    baseline_ok_before: baselineOk,
    sampled: sampled.length,
    tampered: tampered.size,
    detected,
    missed: tampered.size - detected,
    falseAlarms,
    detectionRate: rateOrNull(detected, tampered.size),
    falseAlarmRate: rateOrNull(falseAlarms, clean),
    seed: o.seed,
  };
}
