/**
 * Registration of `custos selftest` (issue 14: parity with the reference). Light: the command's
 * module is imported inside the action.
 * @module
 */
import { tmpdir } from 'node:os';
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** Registers `custos selftest`. `env` gives the temporary directory's parent ($TMPDIR). */
export function registerSelftest(program: Command, ctx: (cmd: Command) => Promise<CommandContext>, env: NodeJS.ProcessEnv): void {
  program
    .command('selftest')
    .description(
      'check this installation in a fresh temporary directory ($TMPDIR; removed afterwards, the data directory is never opened): append, verify, prove, export, a consent round trip; one PASS/FAIL line (--json: every step and its time); exit 15 on failure',
    )
    .action(async (_o: unknown, cmd: Command) => {
      const { selftest } = await import('../commands/selftest.js');
      return selftest(await ctx(cmd), { tmpBase: env['TMPDIR'] || env['TMP'] || env['TEMP'] || tmpdir() });
    });
}
