/**
 * The `custos` command line: thin wiring from arguments to command functions, and the one place
 * where errors become exit codes and a single line on stderr.
 * @module
 */
import { Command, CommanderError, Option } from 'commander';
import { CustosError, EXIT, InternalError, exitCodeOf } from '../core/errors.js';
import type { CommandContext } from './context.js';
import { processIo, type Io } from './output.js';
import { registerBundle } from './register/bundle.js';
import { registerDisclosures } from './register/disclosures.js';
import { assertWellFormedArgs, parseChoice, parseCount, parseLimit, parseSince } from './parse.js';
import { registerWitness } from './register/witness.js';
import { ValidationError as VE } from '../core/errors.js';
import { registerMonitor } from './register/monitor.js';
import { registerConsentFhir } from './register/consent-fhir.js';
import { parseReviewDeadline, registerReviews } from './register/reviews.js';
import { ROLES_FILE_HELP, requestFlags } from './request-flags.js';
import { registerSelftest } from './register/selftest.js';
// issue 14: model registry and change control
import { registerModels } from './register/models.js';
import { registerFederated } from './register/federated.js';
// issue 14: import of the reference's ledgers
import { registerImport } from './register/import.js';
// issue 15: selective disclosure (attestations)
import { registerAttest } from './register/attest.js';
// issue 14: training cohorts
import { registerTraining } from './register/training.js';

// Only commander and the argument parsers load up front. Each command's module, and what it needs
// (SQLite, PostgreSQL, the HTTP stack, progress bars), is imported inside its action, so that
// `custos --help` and `custos <command> --help` stay fast (npm run bench:cli).

// The acting identity of a write: required, never defaulted. (The HTTP server takes it from the token.)
function actorOf(o: { actor?: string; actorRole?: string }): { id: string; role: string } {
  if (o.actor === undefined || o.actorRole === undefined) {
    throw new VE('VALIDATION_FAILED', 'say who acts: --actor ID --actor-role ROLE');
  }
  return { id: o.actor, role: o.actorRole };
}

function parseRate(s: string): number {
  const n = Number(s);
  if (!/^(0|1|0?\.\d+|1\.0+)$/.test(s) || !(n >= 0 && n <= 1)) throw new VE('VALIDATION_FAILED', '--rate must be a number from 0 to 1');
  return n;
}

/** Exit codes by error class: the error registry's (src/core/errors.ts, docs/errors.md). */
export { EXIT };

/** Maps an error to its exit code, through the error registry. */
export function exitCodeFor(err: unknown): number {
  return exitCodeOf(err);
}

function buildProgram(io: Io, env: NodeJS.ProcessEnv, exit: { code: number }): Command {
  // A new program per run: commander keeps parsed options on it.
  const program = new Command();
  const ctx = async (cmd: Command): Promise<CommandContext> => {
    const o = cmd.optsWithGlobals<{ dataDir?: string; json?: boolean; store?: string }>();
    const { resolveDataDir, resolveStoreUrl } = await import('../log/data-dir.js');
    return { dataDir: resolveDataDir(o.dataDir, env, io.cwd), storeUrl: resolveStoreUrl(o.store, env), json: o.json === true, io };
  };
  program
    .name('custos')
    .description('Verifiable governance for clinical AI: an append-only, signed Merkle audit log.')
    .option('-d, --data-dir <dir>', 'data directory (default: $CUSTOS_DATA_DIR or ./custos-data)')
    .option('--json', 'print machine-readable JSON')
    .option('--store <url>', 'keep the log in PostgreSQL (postgres://...; default: $CUSTOS_DATABASE_URL, else the SQLite file in the data directory)')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // One line, always: commander's suggestions ("Did you mean ...?") are joined onto it.
      outputError: (s, write) =>
        write(
          `custos: VALIDATION_FAILED: ${s
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    });

  program
    .command('init')
    .description('create a new log: data directory, signing key (mode 0600) and store')
    .option('--origin <name>', 'the log origin written on every checkpoint (default: custos.local/log-<random>)')
    .action(async (o: { origin?: string }, cmd: Command) => (await import('./commands/init.js')).init(await ctx(cmd), o));

  program
    .command('append')
    .description('append an event; returns once it is durable and covered by a signed checkpoint')
    .option('--resource <id>', 'generic audit event: the resource id')
    .option('--practitioner <id>', 'generic audit event: the practitioner id')
    .option('--hash <sha256>', 'generic audit event: SHA-256 (hex) of the action payload')
    .option('--type <type>', 'event type (for --payload-file; default AUDIT_EVENT for the generic event)')
    .option('--payload-file <file>', 'JSON object payload ("-" for stdin)')
    .action(async (o, cmd: Command) => (await import('./commands/append.js')).append(await ctx(cmd), o));

  program
    .command('verify')
    .description('verify the whole log, or one entry with --entry')
    .option('--entry <index>', 'verify one entry and print it with its inclusion proof')
    .option('--key <vkey|file>', 'trusted verifier key (default: the data directory log.pub)')
    .option('--trusted-checkpoint <file>', 'a checkpoint saved earlier (custos checkpoint --save): the log must still contain it (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--witness <vkey|file>', 'a witness cosigner key (repeatable): trusted checkpoints and the latest quorum checkpoint must carry the quorum', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option('--quorum <k>', 'cosignatures required from the --witness keys (default: all of them)')
    .option('--no-progress', 'no progress bar')
    .option('--workers <n>', 'worker threads hashing the log (default: one per core from 100,000 entries; 0: one thread)')
    .action(async (o: { entry?: string; key?: string; trustedCheckpoint?: string[]; witness?: string[]; quorum?: string; progress?: boolean; workers?: string }, cmd: Command) =>
      (await import('./commands/verify.js')).verify(await ctx(cmd), {
        ...(o.entry === undefined ? {} : { entry: parseCount(o.entry, 'entry') }),
        ...(o.key === undefined ? {} : { key: o.key }),
        ...(o.trustedCheckpoint === undefined ? {} : { trustedCheckpoints: o.trustedCheckpoint }),
        ...(o.witness === undefined ? {} : { witnesses: o.witness }),
        ...(o.quorum === undefined ? {} : { quorum: parseCount(o.quorum, 'quorum') }),
        ...(o.workers === undefined ? {} : { workers: parseCount(o.workers, 'workers') }),
        progress: o.progress !== false,
      }),
    );

  const proof = program.command('proof').description('print verified RFC 9162 proofs');
  proof
    .command('inclusion <index>')
    .description('inclusion proof of entry <index> (against the latest checkpoint, or --size)')
    .option('--size <treeSize>', 'tree size to prove against')
    .action(async (index: string, o: { size?: string }, cmd: Command) =>
      (await import('./commands/proof.js')).proofInclusion(await ctx(cmd), parseCount(index, 'index'), o.size === undefined ? undefined : parseCount(o.size, 'size')),
    );
  proof
    .command('consistency <oldSize> <newSize>')
    .description('consistency proof between two tree sizes')
    .action(async (m: string, n: string, _o: unknown, cmd: Command) => (await import('./commands/proof.js')).proofConsistency(await ctx(cmd), parseCount(m, 'oldSize'), parseCount(n, 'newSize')));

  program
    .command('checkpoint')
    .description('print the latest signed checkpoint (C2SP signed note), or --save it for an auditor to keep')
    .option('--save <file>', 'write the signed checkpoint note (with its cosignatures) to a file')
    .option('--force', 'with --save: overwrite an existing file')
    .action(async (o: { save?: string; force?: boolean }, cmd: Command) =>
      (await import('./commands/checkpoint.js')).checkpoint(await ctx(cmd), { ...(o.save === undefined ? {} : { save: o.save }), force: o.force === true }),
    );

  program
    .command('key')
    .description("print the log's verifier key (name+keyid+base64)")
    .action(async (_o: unknown, cmd: Command) => (await import('./commands/checkpoint.js')).key(await ctx(cmd)));

  program
    .command('list')
    .description('list entries, newest first')
    .option('--limit <n>', 'most entries to show', '20')
    .option('--type <type>', 'only this event type')
    .option('--since <time>', 'only entries at or after an RFC 3339 time or an age (30m, 2h, 7d)')
    .option('--oldest-first', 'oldest first')
    .action(async (o: { limit: string; type?: string; since?: string; oldestFirst?: boolean }, cmd: Command) =>
      (await import('./commands/list.js')).list(await ctx(cmd), {
        limit: parseLimit(o.limit, 'limit', 100_000),
        ...(o.type === undefined ? {} : { type: o.type }),
        ...(o.since === undefined ? {} : { sinceMs: parseSince(o.since, Date.now()) }),
        oldestFirst: o.oldestFirst === true,
      }),
    );

  program
    .command('stats')
    .description('entries, root, bytes on disk, last update; with --dp, statistics released with differential privacy (docs/privacy.md)')
    // issue 15: differential privacy
    .option('--dp', 'release the answer to --query with differential privacy (or, without --query, list the releases)')
    .option('--query <spec>', 'the query: key=value pairs (unit, clip, by, per, from, to, and filters type, purpose, role, model, outcome) or JSON')
    .option('--epsilon <e>', 'the ε the release spends')
    .option('--delta <d>', 'the δ it spends (default 0; > 0 selects the discrete Gaussian)')
    .option('--mechanism <m>', 'discrete_laplace or discrete_gaussian (default: by --delta)')
    .option('--consumer <id>', 'who the figures are released to, whose budget pays: a consumer declared in dp.json (default: public)')
    .option('--actor <id>', 'who releases (default: the local operator)')
    .option('--actor-role <role>', 'their role code, holding dp:release')
    .action(async (o: { dp?: boolean; query?: string; epsilon?: string; delta?: string; mechanism?: string; consumer?: string; actor?: string; actorRole?: string }, cmd: Command) => {
      const m = await import('./commands/stats.js');
      const { dp, ...rest } = o;
      if (!dp) {
        if (Object.values(rest).some((x) => x !== undefined)) throw new VE('VALIDATION_FAILED', '--query, --epsilon, --delta, --mechanism, --consumer and --actor go with --dp');
        return m.stats(await ctx(cmd));
      }
      const { mechanism, ...flags } = rest;
      return m.dpStats(await ctx(cmd), { ...flags, ...(mechanism === undefined ? {} : { mechanism: parseChoice(mechanism, 'mechanism', ['discrete_laplace', 'discrete_gaussian'] as const) }) });
    });

  program
    .command('export')
    .description('stream the log (up to the latest checkpoint) as json, csv, ndjson, intoto, or fhir (a directory of FHIR R4 NDJSON: AuditEvent.ndjson, Provenance.ndjson)')
    .addOption(new Option('--format <format>', 'output format').default('json'))
    .option('-o, --output <file>', 'write to a file (created only when complete) instead of stdout; with --format fhir, a directory')
    .option('--force', 'fhir: write into a non-empty --output directory')
    .option('--actor <id>', 'fhir: who exports, for the audit event (default: the local operator)')
    .option('--actor-role <role>', 'fhir: their role code')
    .action(async (o: { format: string; output?: string; force?: boolean; actor?: string; actorRole?: string }, cmd: Command) => {
      const { EXPORT_FORMATS, exportLog } = await import('./commands/export.js');
      return exportLog(await ctx(cmd), {
        format: parseChoice(o.format, 'format', EXPORT_FORMATS),
        ...(o.output === undefined ? {} : { output: o.output }),
        ...(o.force ? { force: true } : {}),
        ...(o.actor === undefined ? {} : { actor: o.actor }),
        ...(o.actorRole === undefined ? {} : { actorRole: o.actorRole }),
      });
    });

  const actorOptions = (c: Command) => c.option('--actor <id>', 'who acts (required)').option('--actor-role <role>', 'their role code (required)');

  const consent = program.command('consent').description('consent policies: create, revoke, import (FHIR), check, show');
  actorOptions(
    consent
      .command('create')
      .description('create version 1 of a consent policy')
      .option('--policy-id <id>', 'an opaque policy id of the form Custos generates (default: a new one)')
      .option('--external-ref <ref>', 'your own reference, e.g. a FHIR Consent id (only its salted commitment is logged)')
      .option('--subject <id>', 'pseudonymous subject id (only its salted commitment is logged)')
      .option('--purposes <codes>', 'allowed purpose-of-use codes, comma-separated')
      .option('--roles <codes>', 'allowed actor roles, comma-separated')
      .option('--valid-from <time>', 'RFC 3339 (default: now)')
      .option('--valid-until <time>', 'RFC 3339, inclusive (default: no end)')
      .option('--non-revocable', 'the policy cannot be revoked')
      .option('--file <policy.json>', 'a policy input as JSON (flags override its fields; may hold nested provisions)'),
  ).action(async (o, cmd: Command) => (await import('./commands/governance.js')).consentCreate(await ctx(cmd), o, actorOf(o)));
  actorOptions(consent.command('revoke <policyId>').description('revoke a policy (a new version)')).action(async (id: string, o, cmd: Command) =>
    (await import('./commands/governance.js')).consentRevoke(await ctx(cmd), id, actorOf(o)),
  );
  // check, show (--format fhir) and import: issue 12 (FHIR Consent), in register/consent-fhir.ts.
  registerConsentFhir(consent, ctx);

  actorOptions(
    program
      .command('access')
      .description('record an access to patient data (consent is checked first; a refusal is logged)')
      .requiredOption('--purpose <code>', 'purpose of use')
      .requiredOption('--policy <id>', 'consent policy id')
      .option('--uri <uri>', 'artifact URI (only its salted commitment is logged; default with --artifact-file: its file: URI)')
      .option('--digest <sha256>', 'SHA-256 of the artifact (or --artifact-file)')
      .option('--artifact-file <path>', 'compute the SHA-256 by streaming this file (instead of --digest)')
      .option('--justification <code>', 'break-glass: with --purpose BTG or ETREAT, a justification code; a consent denial is overridden, logged as BREAK_GLASS and queued for review'),
  ).action(async (o, cmd: Command) => (await import('./commands/governance.js')).access(await ctx(cmd), o, actorOf(o)));

  actorOptions(
    program
      .command('infer')
      .description('record an inference under consent; prints its receipt')
      .requiredOption('--purpose <code>', 'purpose of use')
      .requiredOption('--policy <id>', 'consent policy id')
      .option('--input-uri <uri>', 'input artifact URI (default with --input-file: its file: URI)')
      .option('--input-digest <sha256>', 'SHA-256 of the input (or --input-file)')
      .option('--input-file <path>', 'compute the input SHA-256 by streaming this file (instead of --input-digest)')
      .option('--output <name=uri@sha256>', 'an output artifact (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--output-file <name=path>', "an output artifact file: SHA-256 streamed, URI the file's file: URI (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
      .option('--explanation <file.json>', 'an explanation artifact: {method, output, parameters, uri, digest | file} (repeatable; docs/governance.md)', (v: string, prev: string[] = []) => [
        ...prev,
        v,
      ])
      .requiredOption('--pipeline <file>', 'pipeline manifest JSON')
      .requiredOption('--model <file>', 'model spec JSON (with weightsHash)')
      .option('--require-registered-models', 'refuse a model that is not a registered, approved version even when its line is not registered (docs/models.md)'),
  ).action(async (o, cmd: Command) =>
    (await import('./commands/governance.js')).infer(await ctx(cmd), { ...o, output: o.output ?? [], outputFile: o.outputFile ?? [], explanation: o.explanation ?? [] }, actorOf(o)),
  );

  // The consent request model of `consent check` (issue 12), on every decision that is recorded.
  for (const name of ['access', 'infer']) requestFlags(program.commands.find((c) => c.name() === name)!);

  actorOptions(
    program
      .command('train')
      .description('record a training run: identified data under consent (--policy, or --cohort), other data with an attestation')
      .requiredOption('--purpose <code>', 'purpose of use (identified data: a training purpose such as HRESCH)')
      .option('--dataset-uri <uri>', 'dataset URI (default with --dataset-file: its file: URI)')
      .option('--dataset-digest <sha256>', 'SHA-256 of the dataset (or --dataset-file)')
      .option('--dataset-file <path>', 'compute the dataset SHA-256 by streaming this file (instead of --dataset-digest)')
      .requiredOption('--dataset-type <type>', 'identified, deidentified or synthetic')
      .option('--policy <ids>', 'identified data: the policy id of every subject, comma-separated')
      .option('--cohort <file>', 'identified data: the cohort, a JSON array of {subject, policyId}; subjects without consent are left out and counted (docs/training.md)')
      .option('--attestation <method>', 'deidentified/synthetic data: safe-harbor, expert-determination or synthetic-generator')
      .option('--attestation-document <sha256>', 'SHA-256 of the attestation document (optional)')
      .requiredOption('--manifest <file>', "training manifest JSON (Custos' shape, or the reference's PipelineManifest)")
      .requiredOption('--model-before <file>', 'model spec JSON before training')
      .requiredOption('--model-after <file>', 'model spec JSON after training')
      .requiredOption('--compute <backend>', 'compute backend identifier (lowercase letters, digits, . _ -)')
      // issue 14: a new version of a registered model, under its change control plan (docs/models.md)
      .option('--change-control <planId>', 'the change control plan the new version (--model-after) is trained under; approved automatically when --metrics are within its bounds')
      .option('--metrics <file.json>', 'with --change-control: the evaluation metrics, e.g. {"auroc": 0.93}')
      .option('--modification <type>', 'with --change-control: retrain (default), fine_tune, threshold_change, input_change or architecture_change'),
  ).action(async (o, cmd: Command) => (await import('./commands/governance.js')).train(await ctx(cmd), o, actorOf(o)));
  // The role table and role mapping a recorded decision is made under (as `serve --roles`).
  for (const name of ['access', 'infer', 'train']) program.commands.find((c) => c.name() === name)!.option('--roles <file>', ROLES_FILE_HELP);

  program
    .command('receipt <index>')
    .description('rebuild the receipt of an inference event, re-check every hash, prove its inclusion; URIs sealed unless --open')
    .option('--key <vkey|file>', 'trusted verifier key')
    .option('--open', 'open the URI commitments to the URIs (patient-linked: needs the three below; logged as PATIENT_DATA_OPENED)')
    .option('--purpose <code>', 'purpose of use for opening the URIs (with --open)')
    .option('--actor <id>', 'who opens the URIs (with --open)')
    .option('--actor-role <role>', "the opener's role (with --open)")
    .action(async (index: string, o: { key?: string; open?: boolean; purpose?: string; actor?: string; actorRole?: string }, cmd: Command) =>
      (await import('./commands/governance.js')).receipt(await ctx(cmd), parseCount(index, 'index'), o),
    );

  actorOptions(
    program
      .command('erase')
      .description("erasure: delete the off-ledger opening of a subject's or URI's commitment, or a provenance document")
      .option('--subject <id>', 'pseudonymous subject id')
      .option('--uri <uri>', 'artifact URI')
      .option('--external-ref <ref>', "a policy's external reference")
      .option('--document <hash>', 'a pipeline manifest, model spec or training manifest, by its SHA-256'),
  ).action(async (o: { subject?: string; uri?: string; externalRef?: string; document?: string; actor?: string; actorRole?: string }, cmd: Command) => {
    const given = [o.subject, o.uri, o.externalRef, o.document].filter((x) => x !== undefined);
    if (given.length !== 1) throw new VE('VALIDATION_FAILED', 'give exactly one of --subject, --uri, --external-ref or --document');
    return (await import('./commands/governance.js')).erase(
      await ctx(cmd),
      o.subject !== undefined ? 'subject' : o.uri !== undefined ? 'uri' : o.externalRef !== undefined ? 'external_ref' : 'document',
      given[0]!,
      actorOf(o),
    );
  });

  program
    .command('tamper-check')
    .description('on a copy of the log: tamper with sampled receipts and report detection and false alarms')
    .option('--sample <n>', 'receipts to sample', '200')
    .option('--rate <fraction>', 'fraction to tamper with', '0.25')
    .option('--seed <n>', 'random seed', '1')
    .action(async (o: { sample: string; rate: string; seed: string }, cmd: Command) =>
      (await import('./commands/governance.js')).tamperCheck(await ctx(cmd), { sample: parseLimit(o.sample, 'sample', 1_000_000), rate: parseRate(o.rate), seed: parseCount(o.seed, 'seed') }),
    );

  // issue 14 (parity): `simulate --workload` / `--ablation`, the reference's simulate_workload and run_ablation.
  const simulateWorkloadAction = async (
    o: {
      scenario?: string;
      patients?: string;
      tamper?: boolean;
      html?: string;
      runs?: string;
      seed: string;
      revokeAt?: string;
      tamperRate?: string;
      tamperSample: string;
      output?: string;
      ablation?: boolean;
    },
    cmd: Command,
  ): Promise<void> => {
    if (o.scenario !== undefined || o.patients !== undefined || o.tamper === true || o.html !== undefined) {
      throw new VE(
        'VALIDATION_FAILED',
        '--workload and --ablation take --runs, --revoke-at, --seed, --output (and --tamper-rate, --tamper-sample with --ablation), not --scenario, --patients, --tamper or --html',
      );
    }
    if (o.ablation !== true && o.tamperRate !== undefined) {
      throw new VE('VALIDATION_FAILED', '--tamper-rate applies to --ablation (the reference simulate_workload takes tamper_rate but never uses it)');
    }
    return (await import('./commands/workload.js')).simulateWorkload(await ctx(cmd), {
      ablation: o.ablation === true,
      runs: o.runs === undefined ? 200 : parseLimit(o.runs, 'runs', 10_000_000),
      revokeAt: o.revokeAt === undefined ? 120 : parseCount(o.revokeAt, 'revoke-at'),
      seed: parseCount(o.seed, 'seed'),
      tamperRate: parseRate(o.tamperRate ?? '0.1'),
      tamperSample: parseCount(o.tamperSample, 'tamper-sample'),
      ...(o.output === undefined ? {} : { output: o.output }),
    });
  };

  program
    .command('simulate')
    .description("run the reference's scenario suite (or a custom scenario) against the real service, then the off-ledger tamper test; or its workload (--workload) and ablation (--ablation)")
    .option('--scenario <list>', 'only these reference scenarios, 1-9, comma-separated')
    .option('--patients <n>', 'custom scenario: patients (policies)')
    .option('--runs <n>', 'custom scenario: inference attempts (up to 10^6 and more)')
    .option('--revoke-prob <p>', 'custom scenario: revocation probability per run', '0.02')
    .option('--tamper', 'custom scenario: tamper with the log afterwards and verify')
    .option('--seed <n>', 'custom scenario: random seed', '7')
    .option('--window <n>', 'attempts in flight at once (they share group commits)', '256')
    .option('-o, --output <file>', 'write the JSON metrics to a file')
    .option('--html <file>', 'write a self-contained HTML report')
    .option('--tamper-sample <n>', 'off-ledger tamper test: receipts to sample (0 to skip)', '200')
    .option('--tamper-rate <fraction>', 'off-ledger tamper test: fraction to tamper with (default 0.25; with --ablation: fraction of log entries and receipts, default 0.1)')
    .option('--no-progress', 'no progress bars')
    .option('--workload', "the reference's simulate_workload: one policy, --runs attempts (default 200), revoked at step --revoke-at")
    .option('--ablation', "the reference's run_ablation: the workload, verify, tamper (--tamper-rate), verify again, naming the entries found")
    .option('--revoke-at <n>', 'workload: the step at which the policy is revoked (default 120)')
    // issue 14: federated learning rounds
    .option('--fl', 'the federated learning scenario: --sites N (default 5) sites, --rounds R (default 6) signed rounds, one site dropping out, one forged update refused (docs/federated.md)')
    .option('--sites <n>', 'with --fl: sites (2-1000)')
    .option('--rounds <n>', 'with --fl: rounds (2-10000)')
    .action(
      async (
        o: {
          scenario?: string;
          patients?: string;
          runs?: string;
          revokeProb: string;
          tamper?: boolean;
          seed: string;
          window: string;
          output?: string;
          html?: string;
          tamperSample: string;
          tamperRate?: string;
          progress?: boolean;
          workload?: boolean;
          ablation?: boolean;
          revokeAt?: string;
          fl?: boolean;
          sites?: string;
          rounds?: string;
        },
        cmd: Command,
      ) => {
        if (o.fl === true) {
          if (
            o.workload === true ||
            o.ablation === true ||
            o.scenario !== undefined ||
            o.patients !== undefined ||
            o.runs !== undefined ||
            o.tamper === true ||
            o.html !== undefined ||
            o.revokeAt !== undefined
          ) {
            throw new VE('VALIDATION_FAILED', '--fl takes --sites, --rounds, --seed and --output only');
          }
          return (await import('./commands/federated.js')).simulateFl(await ctx(cmd), {
            sites: o.sites === undefined ? 5 : parseLimit(o.sites, 'sites', 1000),
            rounds: o.rounds === undefined ? 6 : parseLimit(o.rounds, 'rounds', 10_000),
            seed: parseCount(o.seed, 'seed'),
            ...(o.output === undefined ? {} : { output: o.output }),
          });
        }
        if (o.sites !== undefined || o.rounds !== undefined) throw new VE('VALIDATION_FAILED', '--sites and --rounds apply to --fl');
        if (o.workload === true || o.ablation === true) return simulateWorkloadAction(o, cmd);
        if (o.revokeAt !== undefined) throw new VE('VALIDATION_FAILED', '--revoke-at applies to --workload and --ablation');
        const custom = o.patients !== undefined || o.runs !== undefined;
        if (custom && (o.patients === undefined || o.runs === undefined)) throw new VE('VALIDATION_FAILED', 'a custom scenario needs --patients and --runs');
        const only = o.scenario?.split(',').map((x) => parseLimit(x.trim(), 'scenario', 9));
        return (await import('./commands/simulate.js')).simulate(await ctx(cmd), {
          ...(custom
            ? {
                custom: {
                  patients: parseLimit(o.patients!, 'patients', 10_000_000),
                  runs: parseLimit(o.runs!, 'runs', 100_000_000),
                  revokeProb: parseRate(o.revokeProb),
                  tamperAfter: o.tamper === true,
                  seed: parseCount(o.seed, 'seed'),
                },
              }
            : {}),
          ...(only ? { only } : {}),
          window: parseLimit(o.window, 'window', 100_000),
          ...(o.output === undefined ? {} : { output: o.output }),
          ...(o.html === undefined ? {} : { html: o.html }),
          tamperSample: parseCount(o.tamperSample, 'tamper-sample'),
          tamperRate: parseRate(o.tamperRate ?? '0.25'),
          progress: o.progress !== false,
        });
      },
    );

  program
    .command('serve')
    .description('serve the HTTP API and the audit explorer (creates the log on first start)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port', '8080')
    .option('--roles <file>', ROLES_FILE_HELP)
    .option('--purposes <codes>', 'purpose-of-use codes added to HL7 v3 PurposeOfUse, comma-separated')
    .option('--rate-limit <n>', 'requests per minute per authenticated caller (per address on public routes)', '60000')
    .option('--auth-failure-limit <n>', 'failed authentications per minute per client address', '300')
    .option('--body-limit <bytes>', 'largest request body', '262144')
    .option('--oidc-issuer <url>', 'accept OIDC JWTs from this issuer')
    .option('--oidc-audience <aud>', 'required JWT audience')
    .option('--oidc-jwks <url>', 'JWKS URL of the issuer')
    .option('--oidc-role-claim <claim>', 'JWT claim that names the role', 'role')
    .option('--public-entries', 'serve entry bundles (/tile/entries/...) without a token: publishes policy ids, actor ids and roles (pseudonymous linkage per policy)')
    .option('--oidc-actor-prefix <prefix>', "actor id prefix of JWT subjects; must contain ':' (default oidc:<issuer host>:)")
    .option(
      '--witness <url=vkey>',
      'collect cosignatures after each checkpoint from the witness at URL (C2SP tlog-witness) with cosignature key VKEY (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--witness-quorum <k>', 'cosignatures a checkpoint needs to count as witnessed (default: every --witness)')
    .option('--review-deadline <hours>', 'break-glass reviews open longer are overdue (default 72)')
    .option('--require-registered-models', 'refuse inferences under any model that is not a registered, approved version (default: only models of registered lines are checked)')
    .action(
      async (
        o: {
          host: string;
          port: string;
          roles?: string;
          purposes?: string;
          rateLimit: string;
          authFailureLimit: string;
          bodyLimit: string;
          oidcIssuer?: string;
          oidcAudience?: string;
          oidcJwks?: string;
          oidcRoleClaim: string;
          oidcActorPrefix?: string;
          publicEntries?: boolean;
          witness?: string[];
          witnessQuorum?: string;
          reviewDeadline?: string;
          requireRegisteredModels?: boolean;
        },
        cmd: Command,
      ) => {
        const oidc = o.oidcIssuer || o.oidcAudience || o.oidcJwks;
        if (oidc && !(o.oidcIssuer && o.oidcAudience && o.oidcJwks)) throw new VE('VALIDATION_FAILED', 'OIDC needs --oidc-issuer, --oidc-audience and --oidc-jwks');
        const serveModule = await import('./commands/serve.js');
        const witnesses = serveModule.parseWitnessOptions(o.witness ?? [], o.witnessQuorum);
        return serveModule.serve(await ctx(cmd), {
          host: o.host,
          // 0: any free port (the printed address says which).
          port: o.port === '0' ? 0 : parseLimit(o.port, 'port', 65535),
          ...(o.roles === undefined ? {} : { rolesFile: o.roles }),
          ...(o.purposes === undefined
            ? {}
            : {
                purposes: o.purposes
                  .split(',')
                  .map((x) => x.trim())
                  .filter((x) => x.length > 0),
              }),
          rateLimitPerMinute: parseLimit(o.rateLimit, 'rate-limit', 100_000_000),
          authFailuresPerMinute: parseLimit(o.authFailureLimit, 'auth-failure-limit', 100_000_000),
          bodyLimit: parseLimit(o.bodyLimit, 'body-limit', 64 * 1024 * 1024),
          ...(oidc
            ? {
                oidc: {
                  issuer: o.oidcIssuer!,
                  audience: o.oidcAudience!,
                  jwksUrl: o.oidcJwks!,
                  roleClaim: o.oidcRoleClaim,
                  ...(o.oidcActorPrefix === undefined ? {} : { actorPrefix: o.oidcActorPrefix }),
                },
              }
            : {}),
          ...(o.publicEntries ? { publicEntries: true } : {}),
          ...(witnesses ? { witnesses } : {}),
          ...(o.reviewDeadline === undefined ? {} : { reviewDeadlineMs: parseReviewDeadline(o.reviewDeadline)! }),
          ...(o.requireRegisteredModels ? { requireRegisteredModels: true } : {}),
        });
      },
    );

  const token = program.command('token').description('bearer tokens for the HTTP API');
  token
    .command('create')
    .description('create a token (shown once, stored hashed)')
    .requiredOption('--name <actor>', 'the actor id written on every event made with it')
    .requiredOption('--role <role>', 'its role (see the role table)')
    .option('--roles <file>', 'JSON role table')
    .action(async (o: { name: string; role: string; roles?: string }, cmd: Command) => (await import('./commands/serve.js')).tokenCreate(await ctx(cmd), o.name, o.role, o.roles));
  token
    .command('list')
    .description('list tokens (never secrets)')
    .action(async (_o: unknown, cmd: Command) => (await import('./commands/serve.js')).tokenList(await ctx(cmd)));
  token
    .command('revoke <id>')
    .description('revoke a token')
    .action(async (id: string, _o: unknown, cmd: Command) => (await import('./commands/serve.js')).tokenRevoke(await ctx(cmd), id));

  program
    .command('migrate')
    .description('copy a SQLite log and its documents into PostgreSQL, then verify the copy')
    .requiredOption('--from <file>', 'the SQLite file (custos-data/custos.db)')
    .requiredOption('--to <url>', 'postgres://... (an empty database)')
    .option('--key <vkey>', 'trusted verifier key (default: the one recorded in the source)')
    .action(async (o: { from: string; to: string; key?: string }, cmd: Command) => (await import('./commands/migrate.js')).migrate(await ctx(cmd), o));

  registerWitness(program, ctx);
  registerBundle(program, ctx);
  registerDisclosures(program, ctx);
  registerMonitor(program, ctx);
  registerReviews(program, ctx);
  registerSelftest(program, ctx, env);
  // issue 14: model registry and change control
  registerModels(program, ctx);
  // issue 14: federated learning rounds
  registerFederated(program, ctx);
  // issue 14: import of the reference's ledgers
  registerImport(program, ctx);
  // issue 15: selective disclosure (attestations)
  registerAttest(program, ctx);
  // issue 14: training cohorts
  registerTraining(program, ctx);

  program
    .command('demo')
    .description('run the log demo in a temporary directory: init, append, verify, proofs')
    .option('--keep', 'keep the temporary data directory')
    .action(async (o: { keep?: boolean }, cmd: Command) => {
      exit.code = await (await import('./commands/demo.js')).demo(await ctx(cmd), o);
    });

  return program;
}

/**
 * Runs the CLI with `argv` (without node and script) and returns its exit code. Never throws and
 * never exits: it writes only to `io` and reads standard input from `io.stdin` when given, the
 * environment from `env` and relative paths against `io.cwd`, so it can run inside another
 * process (bin/custos.js sets process.exitCode from it; the tests call it directly).
 */
export async function run(argv: readonly string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const exit = { code: EXIT.ok as number };
  const program = buildProgram(io, env, exit);
  try {
    assertWellFormedArgs(argv);
    await program.parseAsync([...argv], { from: 'user' });
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by outputError.
      return err.exitCode === 0 ? EXIT.ok : EXIT.validation;
    }
    if (err instanceof CustosError && !(err instanceof InternalError)) {
      io.stderr.write(`custos: ${err.code}: ${err.message}\n`);
      return exitCodeFor(err);
    }
    io.stderr.write(`custos: INTERNAL: ${(err as Error)?.message ?? String(err)}\n`);
    io.stderr.write('custos: this is a bug in Custos; please report it with the command you ran.\n');
    if (env['CUSTOS_DEBUG']) io.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return EXIT.internal;
  }
}
