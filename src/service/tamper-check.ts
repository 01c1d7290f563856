/**
 * The batch tamper check of the reference, on Custos: sample receipts, tamper with a fraction of
 * them, and measure how many edits verification detects and how many untouched receipts it flags.
 * Pure bookkeeping around two injected steps (tamper, verify), so it runs against any store copy.
 * @module
 */

/** Detection figures of one tamper check. */
export interface TamperCheckReport {
  readonly sampled: number;
  readonly tampered: number;
  readonly detected: number;
  readonly missed: number;
  readonly falseAlarms: number;
  readonly detectionRate: number;
  readonly falseAlarmRate: number;
  readonly seed: number;
}

export { seededRandom } from '../core/random.js';
import { seededRandom } from '../core/random.js';

/**
 * Samples up to `sample` receipts, tampers with `rate` of them through `tamper`, then asks `flagged`
 * which receipts verification reports, and scores the result.
 */
export async function runTamperCheck(o: {
  receipts: readonly string[];
  sample: number;
  rate: number;
  seed: number;
  tamper: (hash: string) => void;
  flagged: () => Promise<Set<string>>;
}): Promise<TamperCheckReport> {
  const rnd = seededRandom(o.seed);
  const pool = [...o.receipts];
  // Fisher-Yates, seeded.
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const sampled = pool.slice(0, Math.min(o.sample, pool.length));
  // As the reference: int(len(sample) * fraction).
  const nTamper = Math.floor(sampled.length * o.rate);
  const tampered = new Set(sampled.slice(0, nTamper));
  for (const h of tampered) o.tamper(h);
  const flagged = await o.flagged();
  let detected = 0;
  let falseAlarms = 0;
  for (const h of sampled) {
    if (tampered.has(h) && flagged.has(h)) detected++;
    if (!tampered.has(h) && flagged.has(h)) falseAlarms++;
  }
  const clean = sampled.length - tampered.size;
  return {
    sampled: sampled.length,
    tampered: tampered.size,
    detected,
    missed: tampered.size - detected,
    falseAlarms,
    detectionRate: tampered.size === 0 ? 1 : detected / tampered.size,
    falseAlarmRate: clean === 0 ? 0 : falseAlarms / clean,
    seed: o.seed,
  };
}
