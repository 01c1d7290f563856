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
    .description('check this installation in a temporary directory: append, verify, prove, export, a consent round trip; one PASS/FAIL line')
    .addHelpText(
      'after',
      `
Runs in a fresh directory under $TMPDIR, removed afterwards (also when a step fails); the data
directory (--data-dir, $CUSTOS_DATA_DIR) is never opened. Steps: tempdir, init, append, consent,
verify, prove, export, cleanup. --json prints every step with its status, detail and time in ms.
Exit 0 on pass; 15 (SELFTEST_FAILED, naming the step) on failure.`,
    )
    .action(async (_o: unknown, cmd: Command) => {
      const { selftest } = await import('../commands/selftest.js');
      return selftest(await ctx(cmd), { tmpBase: env['TMPDIR'] || env['TMP'] || env['TEMP'] || tmpdir() });
    });
}
