/**
 * Registration of the offline-evidence commands: `custos bundle` and `custos verify-bundle`. Light:
 * each action imports its command module only when it runs.
 * @module
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { parseCount } from '../parse.js';

/** Registers `bundle` and `verify-bundle` on `program`. */
export function registerBundle(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  program
    .command('bundle <index>')
    .description('write the offline evidence bundle of an inference event (DSSE-signed in-toto statement, documents, openings, inclusion proof, checkpoint)')
    .requiredOption('-o, --output <file>', 'the bundle file to write')
    .option('--redact', 'leave every commitment opening out (nothing patient-linked is read)')
    .option('--purpose <code>', 'purpose of use for opening the commitments (without --redact; logged as PATIENT_DATA_OPENED)')
    .option('--actor <id>', 'who opens the commitments (without --redact)')
    .option('--actor-role <role>', "the opener's role (without --redact)")
    .action(async (index: string, o: { output: string; redact?: boolean; purpose?: string; actor?: string; actorRole?: string }, cmd: Command) =>
      (await import('../commands/bundle.js')).bundle(await ctx(cmd), parseCount(index, 'index'), o),
    );

  program
    .command('verify-bundle <file>')
    .description('verify an offline evidence bundle with only the log key: no data directory, no network')
    .requiredOption('--key <vkey|file>', "the log's verifier key")
    .option('--witness <vkey|file>', 'a trusted witness key (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--quorum <k>', 'cosignatures required from the --witness keys (default: all of them)')
    .action(async (file: string, o: { key: string; witness?: string[]; quorum?: string }, cmd: Command) =>
      (await import('../commands/bundle.js')).verifyBundleFile(await ctx(cmd), file, {
        key: o.key,
        witnesses: o.witness ?? [],
        ...(o.quorum === undefined ? {} : { quorum: parseCount(o.quorum, 'quorum') }),
      }),
    );
}
