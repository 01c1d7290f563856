/**
 * `custos reviews list|close`: the break-glass review queue, derived from the log.
 * @module
 */
import { toHex } from '../../core/hash.js';
import type { ReviewStatus } from '../../core/break-glass.js';
import { openLog } from '../../log/data-dir.js';
import { Governance, type Actor, type ReviewInput } from '../../service/governance.js';
import { printFields, printJson } from '../output.js';
import type { CommandContext } from '../context.js';

async function withGovernance<T>(ctx: CommandContext, reviewDeadlineMs: number | undefined, fn: (g: Governance) => Promise<T>): Promise<T> {
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    return await fn(await Governance.open({ log, ...(reviewDeadlineMs === undefined ? {} : { breakGlass: { reviewDeadlineMs } }) }));
  } finally {
    await log.close();
    await dir.store.close();
  }
}

const json = ({ timeMs: _t, ...rest }: ReviewStatus): Omit<ReviewStatus, 'timeMs'> => rest;

function line(x: ReviewStatus): string {
  const o = x.overridden;
  const state = x.review ? `closed ${x.review.outcome} (${x.review.reason}) by ${x.review.actor}, entry ${x.review.index}` : x.overdue ? `OVERDUE since ${x.dueAt}` : `open, due ${x.dueAt}`;
  return `entry ${x.index}  ${x.time}  ${x.actor} (${x.role})  ${x.purpose} ${x.justification}  overrode ${o.reason} under ${o.policyId}${o.policyVersion === undefined ? '' : ` v${o.policyVersion}`}  ${state}\n`;
}

/** `custos reviews list`. */
export async function reviewsList(ctx: CommandContext, o: { overdue: boolean; all: boolean; reviewDeadlineMs: number }): Promise<void> {
  const q = await withGovernance(ctx, o.reviewDeadlineMs, (g) => g.listReviews({ overdue: o.overdue, status: o.all ? 'all' : 'open' }));
  if (ctx.json) return printJson(ctx.io, { now: q.now, deadlineHours: q.deadlineMs / 3_600_000, open: q.open, overdue: q.overdue, items: q.items.map(json) });
  ctx.io.stdout.write(`${q.open} open, ${q.overdue} overdue (deadline ${q.deadlineMs / 3_600_000} h, now ${q.now})\n`);
  for (const x of q.items) ctx.io.stdout.write(line(x));
}

/** `custos reviews close`. */
export async function reviewsClose(ctx: CommandContext, index: string, input: ReviewInput, actor: Actor): Promise<void> {
  const r = await withGovernance(ctx, undefined, (g) => g.closeReview(index, input, actor));
  const event = { index: r.event.index, leafHash: toHex(r.event.leafHash), treeSize: r.event.checkpoint.treeSize, rootHash: toHex(r.event.checkpoint.rootHash) };
  if (ctx.json) return printJson(ctx.io, { review: json(r.review), event });
  printFields(ctx.io, { reviewed: `entry ${r.review.index}: ${input.outcome} (${input.reason})`, 'logged as': `BREAK_GLASS_REVIEWED, entry ${r.event.index}` });
}
