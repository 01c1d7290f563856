/**
 * The budget configuration of differential-privacy releases: the data directory's dp.json
 * (docs/privacy.md), parsed.
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../errors.js';
import { ACTOR_ID_RE } from '../events.js';
import { parseWith } from '../schema/parse.js';
import { BUDGET_PERIODS, DEFAULT_BUDGET, DEFAULT_DP_CONFIG, DELTA_SCALE, EPSILON_SCALE, normalizeConsumer, toUnits, type DpBudgetConfig, type PrivacyUnits } from './accountant.js';

const NUM = v.union([v.number(), v.pipe(v.string(), v.maxLength(40))]);
const BUDGET = v.strictObject({ epsilon: NUM, delta: v.optional(NUM) });
const CONFIG = v.strictObject({
  period: v.optional(v.picklist(BUDGET_PERIODS, `period must be one of ${BUDGET_PERIODS.join(', ')}`)),
  total: v.optional(BUDGET),
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
 * `{ "period": "month", "consumers": { "ID": { "epsilon": 2, "delta": 1e-6 } }, "total": { "epsilon": 3 } }`.
 * Only the consumers listed may be released to (ids lowercased; two ids equal but for case are
 * refused); without `consumers`, the one consumer `public` with ε = 1, δ = 10⁻⁵. `total` is the
 * budget of all consumers together per period (default ε = 1, δ = 10⁻⁵). The `default` budget of
 * earlier versions (a budget for any unlisted consumer) is refused: consumers are declared.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseDpConfig(input: unknown): DpBudgetConfig {
  if (typeof input === 'object' && input !== null && Object.hasOwn(input, 'default')) {
    throw new ValidationError('VALIDATION_FAILED', 'dp configuration: "default" is not supported: list each consumer under "consumers" (docs/privacy.md)', {
      issues: [{ path: 'default', message: 'not supported: consumers are declared' }],
    });
  }
  const c = parseWith(CONFIG, input, 'dp configuration');
  let consumers: Map<string, PrivacyUnits>;
  if (c.consumers === undefined) consumers = new Map(DEFAULT_DP_CONFIG.consumers);
  else {
    consumers = new Map();
    for (const [id, b] of Object.entries(c.consumers)) {
      const key = normalizeConsumer(id);
      if (consumers.has(key)) {
        throw new ValidationError('VALIDATION_FAILED', `consumers.${id}: consumer ids are matched case-insensitively, and ${key} is listed twice`, {
          issues: [{ path: `consumers.${id}`, message: 'listed twice (ids are case-insensitive)' }],
        });
      }
      consumers.set(key, budgetUnits(b, `consumers.${id}`));
    }
  }
  return Object.freeze({
    period: c.period ?? DEFAULT_DP_CONFIG.period,
    consumers,
    total: c.total === undefined ? DEFAULT_BUDGET : budgetUnits(c.total, 'total'),
  });
}
