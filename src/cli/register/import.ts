/**
 * Registration of `custos import` (issue 14: import of the reference's ledgers). Light: the
 * command's module is imported inside the action.
 * @module
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** Registers `custos import reference-ledger DIR`. */
export function registerImport(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const imp = program.command('import').description("bring another system's history into the log");
  imp
    .command('reference-ledger <dir>')
    .description('verify a ledger written by the reference notebook (ledger.jsonl, policy_store/, manifest_store/) byte for byte, then import it as legacy events')
    .option('--ledger <file>', 'the ledger file (default: DIR/ledger.jsonl, else the one *.jsonl in DIR/ledger/)')
    .option('--dry-run', 'verify and report what would be imported; write nothing')
    .addHelpText(
      'after',
      `
Checks, as a correct verifier would: the genesis line, the prev_hash chain from 64 zeros, each entry's
hash (Python's json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) of the parsed
entry, as the reference computes it), every reproducibility manifest, and every policy file against
the last policy hash on the ledger. The first defect is reported with its 0-based line:
REFERENCE_LEDGER_INVALID (exit 4; details.defect, details.line), and nothing is written.
On success each line becomes a LEGACY_EVENT (its exact bytes off-ledger, subject ids and URIs as
salted commitments) and a LEGACY_IMPORT_COMPLETED records the legacy head hash. A ledger already
imported is refused: LEGACY_ALREADY_IMPORTED (exit 5). See docs/import.md.`,
    )
    .action(async (dir: string, o: { ledger?: string; dryRun?: boolean }, cmd: Command) => {
      const { importReference } = await import('../commands/import-reference.js');
      return importReference(await ctx(cmd), dir, { ...(o.ledger === undefined ? {} : { ledger: o.ledger }), dryRun: o.dryRun === true });
    });
}
