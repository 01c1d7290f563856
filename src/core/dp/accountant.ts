/**
 * The privacy accountant: privacy parameters as exact decimals, the budget configuration, the
 * budget periods, and how much noise each mechanism needs.
 *
 * Composition is basic (sequential) composition: releases (ε₁, δ₁), …, (εₖ, δₖ) on the same data
 * together satisfy (Σεᵢ, Σδᵢ)-differential privacy (Dwork and Roth, "The Algorithmic Foundations of
 * Differential Privacy", 2014, Theorem 3.16). It is loose (advanced composition or zCDP accounting
 * would allow more releases for the same guarantee) but it holds for any mix of mechanisms, it is
 * simple to audit by hand from the log, and it never overstates what is left. ε and δ are summed as
 * exact integers (ε in millionths, δ in units of 10⁻¹⁵), so 0.1 + 0.2 is exactly 0.3.
 * @module
 */
import { ValidationError } from '../errors.js';

/** ε is counted in millionths. */
export const EPSILON_SCALE = 6;
/** δ is counted in units of 10⁻¹⁵. */
export const DELTA_SCALE = 15;
/** The largest ε one release may spend. */
export const MAX_EPSILON = 100;
/** The largest δ one release may spend. */
export const MAX_DELTA = 0.01;

const DECIMAL_RE = /^(\d{1,20})(?:\.(\d{1,30}))?(?:[eE]([+-]?\d{1,3}))?$/;

/**
 * A non-negative decimal (a JSON number or its text: `0.5`, `1e-9`) as an integer count of
 * 10^-scale, or undefined when it is not exactly representable at that scale.
 */
export function toUnits(x: number | string, scale: number): bigint | undefined {
  if (typeof x === 'number' && !Number.isFinite(x)) return undefined;
  // String(number) is the shortest text that reads back as the same number: the decimal the caller meant.
  const m = DECIMAL_RE.exec(typeof x === 'number' ? String(x) : x.trim());
  if (!m) return undefined;
  const frac = m[2] ?? '';
  const exp = Number(m[3] ?? '0') - frac.length + scale;
  const digits = BigInt(m[1]! + frac);
  if (exp >= 0) return digits * 10n ** BigInt(exp);
  const d = 10n ** BigInt(-exp);
  return digits % d === 0n ? digits / d : undefined;
}

/** An integer count of 10^-scale as a decimal number (for display and the log). */
export function fromUnits(units: bigint, scale: number): number {
  const s = units.toString().padStart(scale + 1, '0');
  return Number(`${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`);
}

/** A privacy cost or budget, exact. */
export interface PrivacyUnits {
  /** ε in millionths. */
  readonly epsilon: bigint;
  /** δ in units of 10⁻¹⁵. */
  readonly delta: bigint;
}

/**
 * Parses the ε and δ of one release.
 * @throws {ValidationError} VALIDATION_FAILED: ε not in (0, 100] with at most 6 decimals; δ not in [0, 0.01] with at most 15 decimals
 */
export function parsePrivacyParams(epsilon: unknown, delta: unknown = 0): PrivacyUnits {
  const issues: { path: string; message: string }[] = [];
  const e = typeof epsilon === 'number' || typeof epsilon === 'string' ? toUnits(epsilon, EPSILON_SCALE) : undefined;
  if (e === undefined || e <= 0n || e > BigInt(MAX_EPSILON) * 10n ** BigInt(EPSILON_SCALE)) {
    issues.push({ path: 'epsilon', message: `expected a number in (0, ${MAX_EPSILON}] with at most ${EPSILON_SCALE} decimals` });
  }
  const d = typeof delta === 'number' || typeof delta === 'string' ? toUnits(delta, DELTA_SCALE) : undefined;
  if (d === undefined || d < 0n || d > toUnits(MAX_DELTA, DELTA_SCALE)!) {
    issues.push({ path: 'delta', message: `expected a number in [0, ${MAX_DELTA}] with at most ${DELTA_SCALE} decimals` });
  }
  if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', `${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  return { epsilon: e!, delta: d! };
}

/** The privacy cost of a release as numbers. */
export function privacyJson(u: PrivacyUnits): { epsilon: number; delta: number } {
  return { epsilon: fromUnits(u.epsilon, EPSILON_SCALE), delta: fromUnits(u.delta, DELTA_SCALE) };
}

/** The sum of costs (basic composition). */
export function composeBasic(costs: Iterable<PrivacyUnits>): PrivacyUnits {
  let epsilon = 0n;
  let delta = 0n;
  for (const c of costs) {
    epsilon += c.epsilon;
    delta += c.delta;
  }
  return { epsilon, delta };
}

/** The length of a budget period: each budget is spent within one calendar period (UTC). */
export const BUDGET_PERIODS = ['day', 'week', 'month', 'year'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/**
 * The budget configuration, parsed (config.ts parses dp.json into it). Consumers are declared: a
 * release to a consumer not listed is refused (DP_CONSUMER_UNKNOWN), so only operator-chosen ids
 * reach the log. Ids are lowercase (a requested id is lowercased before it is looked up).
 */
export interface DpBudgetConfig {
  readonly period: BudgetPeriod;
  /** The budget of each declared consumer, by lowercase id. */
  readonly consumers: ReadonlyMap<string, PrivacyUnits>;
  /** The budget of all consumers together in one period: the bound on what the public releases reveal. */
  readonly total: PrivacyUnits;
}

/** The consumer of a release when the request names none, and the one consumer declared when there is no dp.json. */
export const DEFAULT_CONSUMER = 'public';

/** The budget of the default consumer, and the default total: ε = 1, δ = 10⁻⁵ a period. */
export const DEFAULT_BUDGET: PrivacyUnits = Object.freeze({ epsilon: 1_000_000n, delta: 10_000_000_000n });

/** The configuration when none is given: one consumer, `public`, with ε = 1, δ = 10⁻⁵ a month, which is also the total. */
export const DEFAULT_DP_CONFIG: DpBudgetConfig = Object.freeze({
  period: 'month',
  consumers: new Map([[DEFAULT_CONSUMER, DEFAULT_BUDGET]]),
  total: DEFAULT_BUDGET,
});

/** A consumer id as it is matched and logged: lowercase (ids are matched case-insensitively). */
export function normalizeConsumer(id: string): string {
  return id.toLowerCase();
}

/** The budget of `consumer` (any case) under `config`; undefined when it is not declared. */
export function budgetOf(config: DpBudgetConfig, consumer: string): PrivacyUnits | undefined {
  return config.consumers.get(normalizeConsumer(consumer));
}

/** Whether spending `cost` after `spent` stays within `budget` (in ε and in δ). */
export function withinBudget(spent: PrivacyUnits, cost: PrivacyUnits, budget: PrivacyUnits): boolean {
  return spent.epsilon + cost.epsilon <= budget.epsilon && spent.delta + cost.delta <= budget.delta;
}

/** One budget period: its start and end (epoch ms, UTC) and its name, an ISO 8601 interval (`2026-12-01/P1M`). */
export interface PeriodSpan {
  readonly id: string;
  readonly startMs: number;
  readonly endMs: number;
}

const DAY_MS = 86_400_000;

/** The period of `period` length holding the time `timeMs` (weeks start on Monday, as ISO 8601 weeks do). */
export function periodOf(period: BudgetPeriod, timeMs: number): PeriodSpan {
  const d = new Date(timeMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  let start: number;
  let end: number;
  let dur: string;
  if (period === 'day') {
    start = Date.UTC(y, m, d.getUTCDate());
    end = start + DAY_MS;
    dur = 'P1D';
  } else if (period === 'week') {
    start = Date.UTC(y, m, d.getUTCDate()) - ((d.getUTCDay() + 6) % 7) * DAY_MS;
    end = start + 7 * DAY_MS;
    dur = 'P1W';
  } else if (period === 'month') {
    start = Date.UTC(y, m, 1);
    end = Date.UTC(y, m + 1, 1);
    dur = 'P1M';
  } else {
    start = Date.UTC(y, 0, 1);
    end = Date.UTC(y + 1, 0, 1);
    dur = 'P1Y';
  }
  return { id: `${new Date(start).toISOString().slice(0, 10)}/${dur}`, startMs: start, endMs: end };
}

// ---- calibration ---------------------------------------------------------------------------------

/** The noise mechanisms. */
export const DP_MECHANISMS = ['discrete_laplace', 'discrete_gaussian'] as const;
export type DpMechanism = (typeof DP_MECHANISMS)[number];

/**
 * The discrete Laplace scale for ε-DP at L1 sensitivity `l1`: Δ₁/ε, as the rational t/s the
 * sampler takes (exact: ε is a count of millionths).
 */
export function laplaceScale(cost: PrivacyUnits, l1: number): { s: bigint; t: bigint } {
  return { s: cost.epsilon, t: BigInt(l1) * 10n ** BigInt(EPSILON_SCALE) };
}

/**
 * The discrete Gaussian variance parameter σ² for (ε, δ)-DP at L2 sensitivity `l2`, as a rational
 * num/10⁶ rounded up (more noise, never less). The discrete Gaussian with σ² satisfies ρ-zCDP with
 * ρ = Δ₂²/(2σ²) (CKS 2020, §2: the discrete Gaussian satisfies concentrated DP), and ρ-zCDP implies (ρ + 2√(ρ·ln(1/δ)), δ)-DP (Bun and
 * Steinke 2016, Proposition 1.3); so ρ = (√(ln(1/δ) + ε) − √(ln(1/δ)))². This calibrates a
 * parameter only: the samples themselves are exact.
 * @throws {ValidationError} VALIDATION_FAILED when δ = 0 (the Gaussian needs δ > 0)
 */
export function gaussianSigma2(cost: PrivacyUnits, l2: number): { num: bigint; den: bigint } {
  if (cost.delta <= 0n) throw new ValidationError('VALIDATION_FAILED', 'the discrete Gaussian needs delta > 0', { issues: [{ path: 'delta', message: 'must be > 0 for discrete_gaussian' }] });
  const eps = fromUnits(cost.epsilon, EPSILON_SCALE);
  const L = Math.log(1 / fromUnits(cost.delta, DELTA_SCALE));
  const rho = (Math.sqrt(L + eps) - Math.sqrt(L)) ** 2;
  const sigma2 = (l2 * l2) / (2 * rho);
  // Round up, with a margin for the rounding of the float computation above.
  return { num: BigInt(Math.ceil(sigma2 * 1e6 * (1 + 1e-9))) + 1n, den: 1_000_000n };
}
