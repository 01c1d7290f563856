/**
 * issue 15: statistics released with differential privacy (docs/privacy.md). A release spends the
 * consumer's privacy budget and is a DP_RELEASE event; asking again for the same release in the
 * period returns the stored one (200) and spends nothing. The list of releases is public to every
 * authenticated caller: the released figures are noisy by design and safe to publish (they are
 * what the explorer's "Public statistics" page shows), so reading them is not logged.
 * @module
 */
import * as v from 'valibot';
import { DP_MECHANISMS } from '../../core/dp/accountant.js';
import { DP_RELEASE_REQUEST } from '../../service/requests.js';
import type { DpBudgetStatus, DpRelease } from '../../service/governance.js';
import { route } from '../route.js';
import { EVENT, eventJson } from './shared.js';

const STR_LIST = v.optional(v.array(v.string()));
const FRACTION = v.object({ exact: v.string(), value: v.number() });
export const DP_RELEASE_JSON = v.object({
  index: v.number(),
  time: v.string(),
  consumer: v.string(),
  unit: v.string(),
  mechanism: v.picklist(DP_MECHANISMS),
  epsilon: v.number(),
  delta: v.number(),
  queryHash: v.string(),
  documentHash: v.string(),
  /** The release document (null when missing from the off-ledger store, or edited there). */
  document: v.nullable(
    v.object({
      v: v.number(),
      consumer: v.string(),
      query: v.object({
        unit: v.string(),
        clip: v.number(),
        by: v.array(v.string()),
        per: v.string(),
        from: v.string(),
        to: v.string(),
        where: v.object({ type: STR_LIST, purpose: STR_LIST, role: STR_LIST, model: STR_LIST, outcome: STR_LIST }),
      }),
      queryHash: v.string(),
      epsilon: v.number(),
      delta: v.number(),
      noise: v.object({ mechanism: v.string(), sensitivity: v.number(), scale: v.optional(FRACTION), sigma2: v.optional(FRACTION) }),
      budgetPeriod: v.string(),
      treeSize: v.number(),
      values: v.array(
        v.object({
          period: v.string(),
          type: v.optional(v.string()),
          purpose: v.optional(v.string()),
          role: v.optional(v.string()),
          model: v.optional(v.string()),
          outcome: v.optional(v.string()),
          value: v.number(),
        }),
      ),
    }),
  ),
});
const AMOUNT = v.object({ budget: v.number(), spent: v.number(), remaining: v.number() });
export const DP_BUDGET_JSON = v.object({ consumer: v.string(), period: v.string(), epsilon: AMOUNT, delta: AMOUNT, total: v.object({ epsilon: AMOUNT, delta: AMOUNT }) });
export const DP_RELEASE_RESPONSE = v.object({ release: DP_RELEASE_JSON, reused: v.boolean(), budget: DP_BUDGET_JSON, event: v.optional(EVENT) });
export const DP_RELEASES_RESPONSE = v.object({ releases: v.array(DP_RELEASE_JSON), budget: v.optional(DP_BUDGET_JSON) });
export const DP_RELEASES_QUERY = v.object({ consumer: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/, 'consumer: an identifier'))) });

// The service's types, as the response schemas have them (the document is plain JSON).
const releaseJson = (r: DpRelease): v.InferOutput<typeof DP_RELEASE_JSON> => r as unknown as v.InferOutput<typeof DP_RELEASE_JSON>;
const budgetJson = (b: DpBudgetStatus): v.InferOutput<typeof DP_BUDGET_JSON> => b;

export const dpRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/dp/releases',
    summary:
      'Release the answer to a query with differential privacy (query, epsilon, delta, mechanism, consumer: one declared in dp.json, default public): a DP_RELEASE event, 201; the same release already made in this budget period is returned as stored, 200, and spends nothing; past the consumer or the total budget: 429 DP_BUDGET_EXHAUSTED; an undeclared consumer: 403 DP_CONSUMER_UNKNOWN',
    permission: 'dp:release',
    status: 201,
    heavy: true,
    body: DP_RELEASE_REQUEST,
    response: DP_RELEASE_RESPONSE,
    handler: async ({ body, principal: p, reply }, { governance }) => {
      const r = await governance.releaseStatistics(body, { id: p.actor, role: p.role });
      if (r.reused) reply.status(200);
      return { release: releaseJson(r.release), reused: r.reused, budget: budgetJson(r.budget), ...(r.event ? { event: eventJson(r.event) } : {}) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/dp/releases',
    summary:
      'The statistics released with differential privacy, oldest first, with their ε, δ, mechanism and period (query: consumer, which adds its budget and the total budget; an undeclared consumer: 403 DP_CONSUMER_UNKNOWN); public to any authenticated caller',
    permission: null,
    query: DP_RELEASES_QUERY,
    response: DP_RELEASES_RESPONSE,
    handler: async ({ query }, { governance }) => {
      const r = await governance.listReleases(query.consumer === undefined ? {} : { consumer: query.consumer });
      return { releases: r.releases.map(releaseJson), ...(r.budget ? { budget: budgetJson(r.budget) } : {}) };
    },
  }),
];
