/**
 * Registration of `custos monitor` (issue 11: monitors and pinned history). Light: the command's
 * module is imported inside the action.
 * @module
 */
import type { Command } from 'commander';
import { ValidationError } from '../../core/errors.js';
import type { CommandContext } from '../context.js';
import { parseCount } from '../parse.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Registers `custos monitor`. */
export function registerMonitor(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  program
    .command('monitor <url>')
    .description('check a remote log from its public checkpoint and tiles: signature, witnesses, consistency with the last run, rollback, fork, stale (for cron)')
    .requiredOption('--key <vkey|file>', "the log's verifier key, pinned (its name is the log's origin)")
    .requiredOption('--state <file>', 'where this monitor records what it has seen (created on the first run: trust on first use)')
    .option('--witness <vkey|file>', 'a witness cosigner key (repeatable)', collect)
    .option('--quorum <k>', 'cosignatures required from --witness keys (default: all of them)')
    .option('--token <token>', 'a read token: also fetch the new entry bundles and recompute every leaf')
    .option('--entries', 'fetch the new entry bundles and recompute every leaf (implied by --token; without one the server must publish entries)')
    .option('--max-age <duration>', 'LOG_STALE when the log stays at one size longer than this (90s, 30m, 24h, 7d; 0: off)', '24h')
    .option('--timeout <duration>', 'per-request timeout', '30s')
    .action(async (url: string, o: { key: string; state: string; witness?: string[]; quorum?: string; token?: string; entries?: boolean; maxAge: string; timeout: string }, cmd: Command) => {
      const { monitor, parseDuration } = await import('../commands/monitor.js');
      const witnesses = o.witness ?? [];
      const timeoutMs = parseDuration(o.timeout, 'timeout');
      if (timeoutMs === 0) throw new ValidationError('VALIDATION_FAILED', '--timeout must be more than 0');
      return monitor(await ctx(cmd), {
        url,
        key: o.key,
        state: o.state,
        witnesses,
        ...(o.quorum === undefined ? {} : { quorum: parseCount(o.quorum, 'quorum') }),
        ...(o.token === undefined ? {} : { token: o.token }),
        entries: o.entries === true,
        maxAgeMs: parseDuration(o.maxAge, 'max-age'),
        timeoutMs,
      });
    });
}
