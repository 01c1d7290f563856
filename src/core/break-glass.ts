/**
 * Break-glass, the pure part: when a request is one, whether it may override a consent denial, and
 * when its review is due. The service decides at sequencing time (service/governance/decisions.ts)
 * and derives the review queue from the log (service/governance/reviews.ts); the time is always
 * passed in (the service's clock), never read here.
 * @module
 */
import type { ReviewOutcome, Vocabulary } from './vocabulary.js';

/**
 * Why a break-glass request could not override a consent denial (the denial is logged as usual,
 * CONSENT_DENIED, with this code in `breakGlassRefusal`):
 * - `ROLE_NOT_PERMITTED`: the actor's role does not hold the `break-glass` permission;
 * - `JUSTIFICATION_MISSING`: a break-glass purpose (BTG, ETREAT) without a justification code;
 * - `PURPOSE_NOT_BREAK_GLASS`: a justification with a purpose that is not a break-glass purpose.
 */
export const BREAK_GLASS_REFUSALS = ['ROLE_NOT_PERMITTED', 'JUSTIFICATION_MISSING', 'PURPOSE_NOT_BREAK_GLASS'] as const;
export type BreakGlassRefusal = (typeof BREAK_GLASS_REFUSALS)[number];

/** Reviews still open this long after their break-glass access are overdue, by default (72 hours). */
export const DEFAULT_REVIEW_DEADLINE_MS = 72 * 3_600_000;

/** What a request asks, as far as break-glass is concerned. */
export interface BreakGlassAsk {
  readonly purpose: string;
  readonly justification: string | undefined;
  /** Whether the actor's role holds the `break-glass` permission. */
  readonly permitted: boolean;
}

/**
 * Classifies a request: `undefined` when it does not ask for break-glass (no justification and
 * not a break-glass purpose: an ordinary request); otherwise whether it may override a denial, or
 * why not. The role is checked first, then the purpose, then the justification.
 */
export function classifyBreakGlass(
  ask: BreakGlassAsk,
  vocab: Pick<Vocabulary, 'breakGlassPurposes'>,
): { readonly override: true } | { readonly override: false; readonly refusal: BreakGlassRefusal } | undefined {
  const bgPurpose = vocab.breakGlassPurposes.has(ask.purpose);
  if (ask.justification === undefined && !bgPurpose) return undefined;
  if (!ask.permitted) return { override: false, refusal: 'ROLE_NOT_PERMITTED' };
  if (!bgPurpose) return { override: false, refusal: 'PURPOSE_NOT_BREAK_GLASS' };
  if (ask.justification === undefined) return { override: false, refusal: 'JUSTIFICATION_MISSING' };
  return { override: true };
}

/** One break-glass access and its review, as derived from the log. */
export interface ReviewItem {
  /** The index of the BREAK_GLASS entry (the review's id). */
  readonly index: number;
  /** The entry's time (RFC 3339, the log's), and in epoch ms. */
  readonly time: string;
  readonly timeMs: number;
  readonly actor: string;
  readonly role: string;
  readonly purpose: string;
  readonly justification: string;
  /** The consent decision the access overrode. */
  readonly overridden: { readonly reason: string; readonly policyId: string; readonly policyVersion?: number; readonly provision?: string };
  /** The review, once closed. */
  readonly review?: { readonly index: number; readonly time: string; readonly actor: string; readonly role: string; readonly outcome: ReviewOutcome; readonly reason: string };
}

/** A review item as shown: with its due time and whether it is overdue at `nowMs`. */
export interface ReviewStatus extends ReviewItem {
  readonly status: 'open' | 'closed';
  readonly dueAt: string;
  /** Open and past its due time. */
  readonly overdue: boolean;
}

/**
 * The status of an item at `nowMs` (the caller's clock) under a deadline of `deadlineMs`: due at
 * the access's log time plus the deadline; overdue when still open after that (strictly).
 */
export function reviewStatus(item: ReviewItem, nowMs: number, deadlineMs: number): ReviewStatus {
  const due = item.timeMs + deadlineMs;
  return { ...item, status: item.review ? 'closed' : 'open', dueAt: new Date(due).toISOString(), overdue: !item.review && nowMs > due };
}
