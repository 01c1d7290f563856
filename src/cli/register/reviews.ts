/**
 * Registration of `custos reviews list|close` (issue 12: break-glass). Light: the command's module
 * (the log, SQLite) is imported inside the actions.
 * @module
 */
import type { Command } from 'commander';
import { ValidationError } from '../../core/errors.js';
import type { CommandContext } from '../context.js';
import { parseChoice, parseLimit } from '../parse.js';

const OUTCOMES = ['justified', 'not_justified'] as const;

/** `--review-deadline HOURS` (1..8760) in milliseconds; undefined when not given (the default, 72 h). */
export function parseReviewDeadline(hours: string | undefined): number | undefined {
  return hours === undefined ? undefined : parseLimit(hours, 'review-deadline', 8760) * 3_600_000;
}

/** Registers `custos reviews list` and `custos reviews close`. */
export function registerReviews(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const reviews = program.command('reviews').description('the break-glass review queue: accesses consent denied and break-glass overrode, until a privacy officer reviews them');
  reviews
    .command('list')
    .description('list break-glass reviews (open ones by default), oldest first, with their due time')
    .option('--overdue', 'only open reviews past the deadline')
    .option('--all', 'closed reviews too')
    .option('--review-deadline <hours>', 'open reviews older than this are overdue', '72')
    .action(async (o: { overdue?: boolean; all?: boolean; reviewDeadline: string }, cmd: Command) =>
      (await import('../commands/reviews.js')).reviewsList(await ctx(cmd), { overdue: o.overdue === true, all: o.all === true, reviewDeadlineMs: parseReviewDeadline(o.reviewDeadline)! }),
    );
  reviews
    .command('close <index>')
    .description('close the review of the break-glass access at entry INDEX: a BREAK_GLASS_REVIEWED event (never your own)')
    .requiredOption('--outcome <outcome>', 'justified or not_justified')
    .requiredOption('--reason <code>', 'a review reason code of that outcome (docs/governance.md)')
    .option('--actor <id>', 'who reviews (required)')
    .option('--actor-role <role>', 'their role code, holding break-glass:review (required)')
    .action(async (index: string, o: { outcome: string; reason: string; actor?: string; actorRole?: string }, cmd: Command) => {
      if (o.actor === undefined || o.actorRole === undefined) throw new ValidationError('VALIDATION_FAILED', 'say who acts: --actor ID --actor-role ROLE');
      return (await import('../commands/reviews.js')).reviewsClose(
        await ctx(cmd),
        index,
        { outcome: parseChoice(o.outcome, 'outcome', OUTCOMES), reason: o.reason },
        { id: o.actor, role: o.actorRole },
      );
    });
}
