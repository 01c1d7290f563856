/**
 * The break-glass review queue (issue 12): list it, close one review. Reading the queue is a bulk
 * read of patient-linked entries (policy ids), so it is logged (AUDIT_QUERY) before it is answered.
 * @module
 */
import * as v from 'valibot';
import { queryHash } from '../../service/audit.js';
import { REVIEW } from '../../service/requests.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { EVENT, INDEX, eventJson } from './shared.js';

const REVIEW_ITEM = v.object({
  index: v.number(),
  time: v.string(),
  actor: v.string(),
  role: v.string(),
  purpose: v.string(),
  justification: v.string(),
  overridden: v.object({ reason: v.string(), policyId: v.string(), policyVersion: v.optional(v.number()), provision: v.optional(v.string()) }),
  status: v.picklist(['open', 'closed']),
  dueAt: v.string(),
  overdue: v.boolean(),
  review: v.optional(v.object({ index: v.number(), time: v.string(), actor: v.string(), role: v.string(), outcome: v.string(), reason: v.string() })),
});

export const REVIEWS_QUERY = v.object({
  status: v.optional(v.picklist(['open', 'closed', 'all'], 'status must be open, closed or all')),
  overdue: v.optional(v.picklist(['true', 'false'], 'overdue must be true or false')),
});
export const REVIEWS_RESPONSE = v.object({
  now: v.string(),
  deadlineHours: v.number(),
  open: v.number(),
  overdue: v.number(),
  items: v.array(REVIEW_ITEM),
  /** The review reason codes per outcome (for a reviewer's form). */
  reasons: v.object({ justified: v.array(v.string()), not_justified: v.array(v.string()) }),
});
export const REVIEW_RESPONSE = v.object({ review: REVIEW_ITEM, event: EVENT });
export type ReviewsResponse = v.InferOutput<typeof REVIEWS_RESPONSE>;

// Items as the service has them (timeMs is internal).
const itemJson = <T extends { timeMs: number }>({ timeMs: _t, ...rest }: T): Omit<T, 'timeMs'> => rest;

export const reviewRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/reviews',
    summary: 'The break-glass review queue: open items by default (query: status=open|closed|all, overdue=true); logged: AUDIT_QUERY',
    permission: 'break-glass:review',
    query: REVIEWS_QUERY,
    response: REVIEWS_RESPONSE,
    handler: async ({ query, principal: p, req }, { governance, audit }) => {
      const filter = { status: query.status ?? 'open', overdue: query.overdue === 'true' } as const;
      await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'break-glass:review', queryHash: queryHash(filter) });
      const q = await governance.listReviews(filter);
      const reasons = governance.vocabulary.reviewReasons;
      return {
        now: q.now,
        deadlineHours: q.deadlineMs / 3_600_000,
        open: q.open,
        overdue: q.overdue,
        items: q.items.map(itemJson),
        reasons: { justified: [...reasons.justified], not_justified: [...reasons.not_justified] },
      };
    },
  }),
  route({
    method: 'POST',
    url: '/api/v1/reviews/:index',
    summary: 'Close the review of the break-glass access at entry :index (outcome justified|not_justified, reason code): a BREAK_GLASS_REVIEWED event',
    permission: 'break-glass:review',
    status: 201,
    params: v.object({ index: INDEX }),
    body: REVIEW,
    response: REVIEW_RESPONSE,
    handler: async ({ params, body, principal: p }, { governance }) => {
      const r = await governance.closeReview(params.index, body, { id: p.actor, role: p.role });
      return { review: itemJson(r.review), event: eventJson(r.event) };
    },
  }),
];
