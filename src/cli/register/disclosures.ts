/**
 * Registration of `custos disclosures` (a patient's accounting of disclosures) and `custos
 * verify-disclosures` (its offline check). Light: each action imports its command module only
 * when it runs.
 * @module
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';

/** Registers `disclosures` and `verify-disclosures` on `program`. */
export function registerDisclosures(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  program
    .command('disclosures')
    .description("a patient's accounting of disclosures: every access, inference, training run, denial, read and opening of one subject, each with its inclusion proof (logged first as AUDIT_QUERY)")
    .requiredOption('--subject <id>', 'the pseudonymous subject id the consent was recorded under')
    .option('--since <time>', 'only entries at or after this RFC 3339 time')
    .option('--until <time>', 'only entries before this RFC 3339 time')
    .option('--format <format>', 'json, html or fhir (a FHIR R4 Bundle of AuditEvents)', 'json')
    .option('-o, --output <file>', 'write the report to this file instead of standard output')
    .requiredOption('--actor <id>', 'who asks (a privacy officer; logged)')
    .requiredOption('--actor-role <role>', 'their role code (logged)')
    .action(async (o: { subject: string; since?: string; until?: string; format: string; output?: string; actor: string; actorRole: string }, cmd: Command) =>
      (await import('../commands/disclosures.js')).disclosures(await ctx(cmd), o),
    );

  program
    .command('verify-disclosures <file>')
    .description('check an accounting of disclosures (JSON) offline with only the log key: the checkpoint signature and every line')
    .requiredOption('--key <vkey|file>', "the log's verifier key")
    .action(async (file: string, o: { key: string }, cmd: Command) => (await import('../commands/disclosures.js')).verifyDisclosuresFile(await ctx(cmd), file, o));
}
