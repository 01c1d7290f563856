/**
 * issue 15: registration of `custos attest consent|receipt`, `custos present` and `custos
 * verify-presentation` (selective disclosure, docs/attestations.md). Light: each action imports its
 * command module only when it runs.
 * @module
 */
import type { Command } from 'commander';
import type { CommandContext } from '../context.js';
import { parseCount } from '../parse.js';

interface AttestFlags {
  out?: string;
  actor: string;
  actorRole: string;
  roles?: string;
}

/** Registers `attest`, `present` and `verify-presentation` on `program`. */
export function registerAttest(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const attest = program.command('attest').description('issue an attestation of one fact of the log as an SD-JWT in which every claim is selectively disclosable (logged as ATTESTATION_ISSUED)');
  const common = (c: Command) =>
    c
      .option('--out <file>', 'write the SD-JWT to this file (mode 0600) instead of standard output')
      .requiredOption('--actor <id>', 'who asks (logged)')
      .requiredOption('--actor-role <role>', 'their role code (logged; a role of the role table)')
      .option('--roles <file>', 'the deployment role table (JSON), as given to serve');
  common(
    attest.command('receipt <index>').description('attest the INFERENCE_EXECUTED entry <index>: purpose, role, policy and version, decision, time, model and pipeline digests, output digests'),
  ).action(async (index: string, o: AttestFlags, cmd: Command) => (await import('../commands/attest.js')).attestReceipt(await ctx(cmd), parseCount(index, 'index'), o));
  common(
    attest
      .command('consent <policy>')
      .description('attest the version of consent policy <policy> in force (now, or at entry --at): purposes, roles, decision, exceptions, validity, revocation')
      .option('--at <index>', 'the version in force at this log entry (default: the latest)'),
  ).action(async (policy: string, o: AttestFlags & { at?: string }, cmd: Command) => {
    const { at, ...rest } = o;
    return (await import('../commands/attest.js')).attestConsent(await ctx(cmd), policy, { ...rest, ...(at === undefined ? {} : { at: parseCount(at, 'at') }) });
  });

  program
    .command('present <file>')
    .description('from an attestation, a presentation that discloses only the claims named (no data directory needed)')
    .requiredOption('--disclose <claims>', 'comma-separated claims: purpose,decision,outputs.report_json,purposes.TREAT ...')
    .option('--out <file>', 'write the presentation to this file (mode 0600) instead of standard output')
    .action(async (file: string, o: { disclose: string; out?: string }, cmd: Command) => (await import('../commands/attest.js')).present(await ctx(cmd), file, o));

  program
    .command('verify-presentation <file>')
    .description('verify an attestation or presentation offline, with no data directory: issuer signature, each disclosure, inclusion against the checkpoint')
    .requiredOption('--issuer-key <jwk|file>', 'the issuer public key (attestation.jwk, or GET /api/v1/attestations/issuer-key)')
    .option('--checkpoint <file>', 'a checkpoint you trust (signed note) to check inclusion against, instead of the one in the attestation')
    .option('--log-key <vkey|file>', "pin the log's verifier key (default: the one the issuer signed into the attestation)")
    .action(async (file: string, o: { issuerKey: string; checkpoint?: string; logKey?: string }, cmd: Command) => (await import('../commands/attest.js')).verifyPresentation(await ctx(cmd), file, o));
}
