/**
 * The budget configuration of differential-privacy releases: the data directory's dp.json
 * (docs/privacy.md), parsed.
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../errors.js';
import { ACTOR_ID_RE } from '../events.js';
import { parseWith } from '../schema/parse.js';
import { BUDGET_PERIODS, DEFAULT_DP_CONFIG, DELTA_SCALE, EPSILON_SCALE, toUnits, type DpBudgetConfig, type PrivacyUnits } from './accountant.js';

const NUM = v.union([v.number(), v.pipe(v.string(), v.maxLength(40))]);
const BUDGET = v.strictObject({ epsilon: NUM, delta: v.optional(NUM) });
const CONFIG = v.strictObject({
  period: v.optional(v.picklist(BUDGET_PERIODS, `period must be one of ${BUDGET_PERIODS.join(', ')}`)),
  default: v.optional(v.nullable(BUDGET)),
  consumers: v.optional(v.record(v.pipe(v.string(), v.regex(ACTOR_ID_RE, 'a consumer id is an identifier')), BUDGET)),
});

function budgetUnits(b: v.InferOutput<typeof BUDGET>, path: string): PrivacyUnits {
  const e = toUnits(b.epsilon, EPSILON_SCALE);
  const d = toUnits(b.delta ?? 0, DELTA_SCALE);
  if (e === undefined || d === undefined) {
    throw new ValidationError('VALIDATION_FAILED', `${path}: a budget is a non-negative decimal (ε at most ${EPSILON_SCALE} decimals, δ at most ${DELTA_SCALE})`, {
      issues: [{ path, message: 'expected non-negative decimals' }],
    });
  }
  return { epsilon: e, delta: d };
}

/**
 * Parses a budget configuration (the data directory's dp.json, docs/privacy.md):
 * `{ "period": "month", "default": { "epsilon": 1, "delta": 1e-5 }, "consumers": { "ID": { "epsilon": 2 } } }`.
 * `default: null` gives unlisted consumers no budget.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseDpConfig(input: unknown): DpBudgetConfig {
  const c = parseWith(CONFIG, input, 'dp configuration');
  const consumers = new Map<string, PrivacyUnits>();
  for (const [id, b] of Object.entries(c.consumers ?? {})) consumers.set(id, budgetUnits(b, `consumers.${id}`));
  return Object.freeze({
    period: c.period ?? DEFAULT_DP_CONFIG.period,
    default: c.default === null ? undefined : c.default === undefined ? DEFAULT_DP_CONFIG.default : budgetUnits(c.default, 'default'),
    consumers,
  });
}
