/**
 * The break-glass review queue, derived from the log: every BREAK_GLASS entry is a review item, open
 * until a BREAK_GLASS_REVIEWED entry names it. Nothing else holds review state: there is no table to
 * edit, and a restart (or another process) rebuilds the same queue from the log's verified scan
 * (only entries a signed checkpoint covers; see log/verified-scan.ts).
 *
 * Closing a review is decided at sequencing time, like a consent decision: the item must exist, be
 * open (in the committed log and in the batch being sequenced), and not be the reviewer's own; a
 * refusal throws from the decide step, so nothing is written.
 * @module
 */
import { ValidationError, NotFoundError, ConflictError, AuthError } from '../../core/errors.js';
import { formatEntryTime } from '../../core/entry.js';
import { hashLeaf, toHex } from '../../core/hash.js';
import { reviewStatus, type ReviewItem, type ReviewStatus } from '../../core/break-glass.js';
import { GOVERNANCE_EVENT as EVENT, parseLoggedEvent, stringField, type LoggedEvent } from '../../core/events.js';
import { REVIEW_OUTCOMES, type ReviewOutcome } from '../../core/vocabulary.js';
import { parseWith } from '../../core/schema/parse.js';
import type { AppendResult, Log } from '../../log/log.js';
import { ACTOR, REVIEW, type ReviewInput } from '../requests.js';
import type { Actor, GovernanceState } from './state.js';

const MARK = `"type":"${EVENT.breakGlass}`; // matches BREAK_GLASS and BREAK_GLASS_REVIEWED

const num = (p: Readonly<Record<string, unknown>>, k: string): number | undefined => (Number.isSafeInteger(p[k]) ? (p[k] as number) : undefined);

/** The item a BREAK_GLASS entry opens (pure; undefined for a malformed one, the verifier's finding). */
export function reviewItemOf(index: number, e: LoggedEvent): ReviewItem | undefined {
  const p = e.payload;
  const [actor, role, purpose, justification, reason, policyId] = ['actor', 'role', 'purpose', 'justification', 'reason', 'policyId'].map((k) => stringField(p, k));
  const timeMs = Date.parse(e.time);
  if (!actor || !role || !purpose || !justification || !reason || !policyId || !Number.isFinite(timeMs)) return undefined;
  const version = num(p, 'policyVersion');
  const provision = stringField(p, 'provision');
  return {
    index,
    time: e.time,
    timeMs,
    actor,
    role,
    purpose,
    justification,
    overridden: { reason, policyId, ...(version === undefined ? {} : { policyVersion: version }), ...(provision === undefined ? {} : { provision }) },
  };
}

/** The break-glass items of one log and their reviews, as this process knows them. */
export class ReviewLedger {
  readonly #log: Log;
  /** By the index of the BREAK_GLASS entry. */
  readonly #items = new Map<number, ReviewItem>();
  /** Items closed by the batch being sequenced (dropped if that batch is retried). */
  readonly #staged = new Set<number>();
  #stagedBatch = -1;

  /** Subscribes to the log's verified scan. */
  constructor(log: Log) {
    this.#log = log;
    log.scan.subscribe({ matches: (bytes) => bytes.indexOf(MARK) >= 0, apply: (index, bytes) => this.apply(index, parseLoggedEvent(bytes)) });
  }

  /** Applies a BREAK_GLASS or BREAK_GLASS_REVIEWED entry (idempotent: the scan may replay what this process committed). */
  apply(index: number, e: LoggedEvent | undefined): void {
    if (!e) return;
    if (e.type === EVENT.breakGlass) {
      if (this.#items.has(index)) return;
      const item = reviewItemOf(index, e);
      if (item) this.#items.set(index, item);
    } else if (e.type === EVENT.breakGlassReviewed) {
      const target = num(e.payload, 'breakGlass');
      const item = target === undefined ? undefined : this.#items.get(target);
      const outcome = stringField(e.payload, 'outcome') as ReviewOutcome | undefined;
      const [actor, role, reason] = ['actor', 'role', 'reason'].map((k) => stringField(e.payload, k));
      // The first review of an item counts (the service never writes a second one).
      if (!item || item.review || !actor || !role || !reason || !outcome || !REVIEW_OUTCOMES.includes(outcome)) return;
      this.#items.set(item.index, { ...item, review: { index, time: e.time, actor, role, outcome, reason } });
    }
  }

  /** Reads what the log gained since the last look (other writers' break-glass and reviews). */
  sync(): Promise<void> {
    return this.#log.scan.sync();
  }

  get(index: number): ReviewItem | undefined {
    return this.#items.get(index);
  }

  /** Every item, oldest first. */
  all(): ReviewItem[] {
    return [...this.#items.values()].sort((a, b) => a.index - b.index);
  }

  /** Whether the batch `batchId` being sequenced already closes `index`. */
  staged(index: number, batchId: number): boolean {
    if (batchId !== this.#stagedBatch) {
      this.#staged.clear();
      this.#stagedBatch = batchId;
    }
    return this.#staged.has(index);
  }

  stage(index: number, batchId: number): void {
    this.staged(index, batchId);
    this.#staged.add(index);
  }
}

/** What {@link listReviews} returns. */
export interface ReviewQueue {
  /** The service clock's time the statuses were computed at. */
  readonly now: string;
  readonly deadlineMs: number;
  readonly open: number;
  readonly overdue: number;
  readonly items: readonly ReviewStatus[];
}

/** Which items {@link listReviews} returns. */
export interface ReviewFilter {
  /** Only open items past the deadline. */
  readonly overdue?: boolean;
  /** open (default), closed or all. */
  readonly status?: 'open' | 'closed' | 'all';
}

/** The review queue now (by the service's clock): counts of open and overdue items, and the items asked for, oldest first. */
export async function listReviews(s: GovernanceState, filter: ReviewFilter = {}): Promise<ReviewQueue> {
  await s.reviews.sync();
  const nowMs = s.clock.now();
  const all = s.reviews.all().map((x) => reviewStatus(x, nowMs, s.reviewDeadlineMs));
  const status = filter.status ?? 'open';
  const items = all.filter((x) => (status === 'all' || x.status === status) && (!filter.overdue || x.overdue));
  return { now: new Date(nowMs).toISOString(), deadlineMs: s.reviewDeadlineMs, open: all.filter((x) => x.status === 'open').length, overdue: all.filter((x) => x.overdue).length, items };
}

const INDEX_RE = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Closes the review of the BREAK_GLASS entry at `index` with an outcome and a reason code: a
 * BREAK_GLASS_REVIEWED event. The reviewer's role must hold `break-glass:review`.
 * @throws {ValidationError} VALIDATION_FAILED: a malformed index or body, an unknown reason code or one
 *   of the other outcome, a role without `break-glass:review` (nothing written)
 * @throws {NotFoundError} REVIEW_NOT_FOUND: no BREAK_GLASS entry at `index` (nothing written)
 * @throws {ConflictError} REVIEW_CLOSED: the review is already closed (nothing written)
 * @throws {AuthError} REVIEW_SEPARATION_OF_DUTIES: the reviewer is the actor who broke the glass (nothing written)
 */
export async function closeReview(s: GovernanceState, index: number | string, input: ReviewInput, actor: Actor): Promise<{ review: ReviewStatus; event: AppendResult }> {
  const at = typeof index === 'number' ? index : INDEX_RE.test(index) ? Number(index) : Number.NaN;
  if (!Number.isSafeInteger(at) || at < 0) throw new ValidationError('VALIDATION_FAILED', 'index must be a non-negative integer', { issues: [{ path: 'index', message: 'expected an entry index' }] });
  const who = parseWith(ACTOR, actor, 'actor', 'actor.');
  const r = parseWith(REVIEW, input, 'review');
  s.checkCodes({ role: who.role });
  if (!s.may(who.role, 'break-glass:review')) {
    throw new ValidationError('VALIDATION_FAILED', `role ${who.role} may not review break-glass accesses (it lacks break-glass:review)`, {
      issues: [{ path: 'actor.role', message: 'lacks break-glass:review' }],
    });
  }
  if (!s.vocab.reviewReasons[r.outcome].has(r.reason)) {
    throw new ValidationError('VALIDATION_FAILED', `reason ${r.reason} is not a review reason for ${r.outcome} (${[...s.vocab.reviewReasons[r.outcome]].join(', ')})`, {
      issues: [{ path: 'reason', message: `not a review reason for ${r.outcome}` }],
    });
  }
  await s.reviews.sync();
  const notFound = () => new NotFoundError('REVIEW_NOT_FOUND', `entry ${at} is not a break-glass access: no review to close`, { details: { index: at } });
  if (!s.reviews.get(at) || at >= s.log.size) throw notFound();
  // The review names the exact entry by its leaf hash (read through the log, as the scan verified it).
  const stored = await s.log.reader.getEntry(at);
  const leaf = toHex(hashLeaf(stored.bytes));
  const parsed = parseLoggedEvent(stored.bytes);
  if (parsed?.type !== EVENT.breakGlass) throw notFound();
  let closed: ReviewItem | undefined;
  const event = await s.log.appendDecided((ctx) => {
    const item = s.reviews.get(at);
    if (!item) throw notFound();
    if (item.review || s.reviews.staged(at, ctx.batchId)) {
      throw new ConflictError('REVIEW_CLOSED', `the review of entry ${at} is already closed`, { details: { index: at, ...(item.review ? { reviewIndex: item.review.index } : {}) } });
    }
    // Separation of duties: nobody reviews their own break-glass.
    if (item.actor === who.id) throw new AuthError('REVIEW_SEPARATION_OF_DUTIES', 'a reviewer may not review their own break-glass access', { details: { index: at } });
    s.reviews.stage(at, ctx.batchId);
    const payload = s.checked(EVENT.breakGlassReviewed, { breakGlass: at, breakGlassLeaf: leaf, outcome: r.outcome, reason: r.reason, actor: who.id, role: who.role });
    const time = formatEntryTime(ctx.timeMs);
    closed = { ...item, review: { index: ctx.index, time, actor: who.id, role: who.role, outcome: r.outcome, reason: r.reason } };
    return { type: EVENT.breakGlassReviewed, payload, onCommitted: () => s.reviews.apply(ctx.index, { type: EVENT.breakGlassReviewed, time, payload }) };
  });
  return { review: reviewStatus(closed!, s.clock.now(), s.reviewDeadlineMs), event };
}
