/**
 * Registration of the consent commands of issue 12 (FHIR Consent): `custos consent import`, and
 * `consent check` / `consent show` with the full request model and `--format fhir`. Light: the
 * command's module is imported inside the actions.
 * @module
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { parseChoice } from '../parse.js';
import { ROLES_FILE_HELP, requestFields, requestFlags, type RequestFlagValues } from '../request-flags.js';

/** Registers `import`, `check` and `show` under the `consent` command. */
export function registerConsentFhir(consent: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  consent
    .command('import <file>')
    .description(
      'import a FHIR Consent resource (R4 or R5 JSON; - for stdin): its exact bytes off-ledger, its policy version on the log; a later resource with the same identifier makes a new version',
    )
    .option('--fhir-version <version>', 'R4 or R5 (default: detected)')
    .option('--actor <id>', 'who acts (required)')
    .option('--actor-role <role>', 'their role code (required)')
    .action(async (file: string, o: { fhirVersion?: string; actor?: string; actorRole?: string }, cmd: Command) =>
      (await import('../commands/fhir-consent.js')).consentImport(await ctx(cmd), file, {
        ...(o.fhirVersion === undefined ? {} : { fhirVersion: parseChoice(o.fhirVersion, 'fhir-version', ['R4', 'R5'] as const) }),
        actor: o.actor,
        actorRole: o.actorRole,
      }),
    );
  requestFlags(
    consent
      .command('check <policyId>')
      .description('the decision a request would get now, and why (writes nothing)')
      .requiredOption('--purpose <coding>', 'purpose of use: CODE (HL7 v3 PurposeOfUse or configured) or SYSTEM|CODE')
      .requiredOption('--role <coding>', 'requesting role: CODE (the role table; with its role mapping) or SYSTEM|CODE (as given)'),
  )
    .option('--roles <file>', ROLES_FILE_HELP)
    .action(async (id: string, o: RequestFlagValues & { purpose: string; role: string; roles?: string }, cmd: Command) =>
      (await import('../commands/fhir-consent.js')).consentCheck(await ctx(cmd), id, { purpose: o.purpose, role: o.role, ...requestFields(o) }, o.roles),
    );
  consent
    .command('show <policyId>')
    .description("a policy's versions and the log entry of each; --format fhir: the current version as FHIR (the exact bytes imported)")
    .option('--format <format>', 'json (the versions) or fhir', 'json')
    .option('--actor <id>', 'with --format fhir: who reads (required; logged as AUDIT_READ)')
    .option('--actor-role <role>', 'with --format fhir: their role code (required)')
    .action(async (id: string, o: { format: string; actor?: string; actorRole?: string }, cmd: Command) => {
      const format = parseChoice(o.format, 'format', ['json', 'fhir'] as const);
      if (format === 'json') return (await import('../commands/governance.js')).consentShow(await ctx(cmd), id);
      return (await import('../commands/fhir-consent.js')).consentShowFhir(await ctx(cmd), id, { actor: o.actor, actorRole: o.actorRole });
    });
}
