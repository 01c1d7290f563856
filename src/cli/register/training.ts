/**
 * issue 14: registration of `custos training proof` and `custos training verify-proof` (training
 * cohort proofs, docs/training.md). Light: each action imports its command module only when it runs.
 * @module
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { parseCount } from '../parse.js';

/** Registers `training` and its subcommands on `program`. */
export function registerTraining(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const training = program.command('training').description('training cohorts: proofs that a subject was, or was not, in a training run (docs/training.md)');
  training
    .command('proof <run>')
    .description(
      "write the patient-held proof that a subject was in the cohort of the training run at entry RUN (or, with --absent, was not); opens the subject's commitment: logged as PATIENT_DATA_OPENED",
    )
    .requiredOption('--subject <id>', 'the pseudonymous subject id')
    .option('--absent', 'the proof of absence (non-inclusion), e.g. for the first run after a withdrawal')
    .option('--out <file>', 'write the proof to this file (default: stdout)')
    .option('--purpose <code>', 'purpose of use for opening the commitment (logged)')
    .option('--actor <id>', 'who produces the proof (logged)')
    .option('--actor-role <role>', 'their role (logged)')
    .action(async (run: string, o: { subject: string; absent?: boolean; out?: string; purpose?: string; actor?: string; actorRole?: string }, cmd: Command) =>
      (await import('../commands/training.js')).trainingProof(await ctx(cmd), parseCount(run, 'run'), o),
    );
  training
    .command('verify-proof <file>')
    .description("verify a training cohort proof offline with only the log's verifier key: no data directory, no network")
    .requiredOption('--log-key <vkey|file>', "the log's verifier key")
    .action(async (file: string, o: { logKey: string }, cmd: Command) => (await import('../commands/training.js')).trainingVerifyProof(await ctx(cmd), file, o));
}
