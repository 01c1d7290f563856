/**
 * CLI commands of the governance overlay: consent, access, infer, train, receipt, erase, tamper-check.
 * @module
 */
import { readFileSync } from 'node:fs';
import { ValidationError, VerificationError } from '../../core/errors.js';
import { toHex } from '../../core/hash.js';
import { decisionToJson } from '../../core/consent/evaluate.js';
import { openLog } from '../../log/data-dir.js';
import type { AppendResult } from '../../log/log.js';
import { ConsentDeniedError, Governance, ModelRefusedError, type Actor } from '../../service/governance.js';
import { rebuildReceipt } from '../../service/receipt.js';
import { tamperCheckDataDir } from '../../sim/offledger.js';
import { formatRate } from '../../service/tamper-check.js';
import { trustedVerifiers, withDataDir, withLog, type CommandContext } from '../context.js';
import { openingAudit, requireOpener } from '../opening.js';
import { inCwd, printFields, printJson, readStdin, type Io } from '../output.js';
import { requestFields, type RequestFlagValues } from '../request-flags.js';
import { sha256File } from '../file-digest.js';
import type { InferenceInput, TrainingInput } from '../../service/requests.js';
import { changeControlFields, changeControlJson, changeControlOf } from './models.js';
import { governanceRoleOptions } from '../roles-file.js';

/**
 * Runs `fn` with the governance overlay open on the data directory's log; with `rolesFile`
 * (`--roles FILE`), under that role table and role mapping (read before the log is opened).
 */
async function withGovernance<T>(ctx: CommandContext, fn: (g: Governance) => Promise<T>, rolesFile?: string, extra: { requireRegisteredModels?: boolean } = {}): Promise<T> {
  const roleOptions = governanceRoleOptions(ctx.io, rolesFile);
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    return await fn(await Governance.open({ log, ...roleOptions, ...extra }));
  } finally {
    await log.close();
    await dir.store.close();
  }
}

/** Reads a JSON file given on the command line (`-`: standard input). */
export function readJsonFile(io: Io, path: string, what: string): unknown {
  let text: string;
  try {
    text = path === '-' ? readStdin(io) : readFileSync(inCwd(io, path), 'utf8');
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read ${what} file ${path}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `${what} file ${path} is not valid JSON`, { cause: err });
  }
}

/** Splits a comma-separated list of codes. */
export function list(s: string | undefined): string[] | undefined {
  return s === undefined
    ? undefined
    : s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0);
}

function eventFields(e: AppendResult): Record<string, unknown> {
  return { index: e.index, leafHash: toHex(e.leafHash), treeSize: e.checkpoint.treeSize, rootHash: toHex(e.checkpoint.rootHash) };
}

// A denial is an outcome with an event on the log: print it, then fail with CONSENT_DENIED.
async function reportDenial<T>(ctx: CommandContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // issue 14: an inference refused for its model (INFERENCE_REFUSED is on the log).
    if (err instanceof ModelRefusedError) {
      if (ctx.json) printJson(ctx.io, { refused: true, reason: err.reason, state: err.state, details: err.details, event: eventFields(err.event) });
      else printFields(ctx.io, { refused: `${err.reason}: ${err.message}`, 'logged as': `INFERENCE_REFUSED, entry ${err.event.index}` });
    }
    if (err instanceof ConsentDeniedError) {
      if (ctx.json)
        printJson(ctx.io, { denied: true, decision: decisionToJson(err.decision), event: eventFields(err.event), ...(err.breakGlassRefusal ? { breakGlassRefusal: err.breakGlassRefusal } : {}) });
      else
        printFields(ctx.io, {
          denied: `${err.decision.reason}: ${err.decision.explanation}`,
          ...(err.breakGlassRefusal ? { 'break-glass refused': err.breakGlassRefusal } : {}),
          'logged as': `CONSENT_DENIED, entry ${err.event.index}`,
        });
    }
    throw err;
  }
}

export interface ConsentCreateOptions {
  readonly policyId?: string;
  readonly externalRef?: string;
  readonly subject?: string;
  readonly purposes?: string;
  readonly roles?: string;
  readonly validFrom?: string;
  readonly validUntil?: string;
  readonly nonRevocable?: boolean;
  readonly file?: string;
}

/** `custos consent create`. */
export async function consentCreate(ctx: CommandContext, o: ConsentCreateOptions, actor: Actor): Promise<void> {
  const fromFile = o.file === undefined ? {} : (readJsonFile(ctx.io, o.file, 'policy') as Record<string, unknown>);
  const input = {
    ...fromFile,
    ...(o.policyId === undefined ? {} : { policyId: o.policyId }),
    ...(o.externalRef === undefined ? {} : { externalRef: o.externalRef }),
    ...(o.subject === undefined ? {} : { subject: o.subject }),
    ...(o.purposes === undefined ? {} : { allowedPurposes: list(o.purposes) }),
    ...(o.roles === undefined ? {} : { allowedRoles: list(o.roles) }),
    ...(o.validFrom === undefined ? {} : { validFrom: o.validFrom }),
    ...(o.validUntil === undefined ? {} : { validUntil: o.validUntil }),
    ...(o.nonRevocable ? { revocable: false } : {}),
  };
  const r = await withGovernance(ctx, (g) => g.createConsent(input, actor));
  if (ctx.json) return printJson(ctx.io, { policy: r.policy, hash: r.hash, event: eventFields(r.event) });
  printFields(ctx.io, {
    'created': `${r.policy.policyId} version ${r.policy.version}`,
    'policy id': r.policy.policyId,
    'policy hash': r.hash,
    'subject': `${r.policy.subject} (salted commitment; the id stays off the log)`,
    'purposes': r.policy.provision.purposes?.join(', ') ?? '-',
    'roles': r.policy.provision.roles?.join(', ') ?? '-',
    'valid': `${r.policy.period.start} .. ${r.policy.period.end ?? 'no end'}`,
    'revocable': String(r.policy.revocable),
    'logged as': `CONSENT_CREATED, entry ${r.event.index}`,
  });
}

/** `custos consent revoke`. */
export async function consentRevoke(ctx: CommandContext, policyId: string, actor: Actor): Promise<void> {
  const r = await withGovernance(ctx, (g) => g.revokeConsent(policyId, actor));
  if (ctx.json) return printJson(ctx.io, { policy: r.policy, hash: r.hash, event: eventFields(r.event) });
  printFields(ctx.io, { revoked: `${r.policy.policyId} (now version ${r.policy.version})`, 'policy hash': r.hash, 'logged as': `CONSENT_REVOKED, entry ${r.event.index}` });
}

/** `custos consent show`: the versions of a policy and the log entry of each. */
export async function consentShow(ctx: CommandContext, policyId: string): Promise<void> {
  const r = await withGovernance(ctx, (g) => g.showConsent(policyId));
  if (ctx.json) return printJson(ctx.io, r);
  for (const v of r.versions) {
    ctx.io.stdout.write(
      `version ${v.version}  entry ${v.index}  ${v.time}  ${v.type}  ${v.documentOk ? 'document ok' : 'DOCUMENT DOES NOT MATCH THE LOG'}  ${v.hash}\n` +
        (v.policy
          ? `  purposes ${v.policy.provision.purposes?.join(', ') ?? '-'}; roles ${v.policy.provision.roles?.join(', ') ?? '-'}; valid ${v.policy.period.start} .. ${v.policy.period.end ?? 'no end'}; revocable ${v.policy.revocable}; revoked ${v.policy.revoked}\n`
          : ''),
    );
  }
}

export interface AccessOptions extends RequestFlagValues, RolesFileOption {
  readonly purpose: string;
  readonly policy: string;
  readonly uri?: string | undefined;
  readonly digest?: string | undefined;
  /** Stream this file for the digest (its file: URI unless `uri`). */
  readonly artifactFile?: string | undefined;
  /** Break-glass: a justification code (with purpose BTG or ETREAT). */
  readonly justification?: string;
}

/** `custos access`: records an access to patient data, after the consent check (or under break-glass). */
export async function access(ctx: CommandContext, o: AccessOptions, actor: Actor): Promise<void> {
  const artifact = await artifactOf(ctx, { uri: o.uri, digest: o.digest, file: o.artifactFile }, { uri: '--uri', digest: '--digest', file: '--artifact-file' });
  const input = {
    actor,
    purpose: o.purpose,
    policyId: o.policy,
    artifact,
    ...requestFields(o),
    ...(o.justification === undefined ? {} : { justification: o.justification }),
  };
  const r = await withGovernance(ctx, (g) => reportDenial(ctx, () => g.recordDataAccess(input)), o.roles);
  if (ctx.json) return printJson(ctx.io, { decision: decisionToJson(r.decision), event: eventFields(r.event), ...(r.breakGlass ? { breakGlass: r.breakGlass } : {}) });
  if (r.breakGlass) {
    return printFields(ctx.io, {
      'break-glass': `consent denied (${r.decision.reason}: ${r.decision.explanation}); the access was executed under break-glass (${r.breakGlass.justification})`,
      'logged as': `BREAK_GLASS, entry ${r.event.index} (flagged; review due ${r.breakGlass.reviewDue})`,
    });
  }
  printFields(ctx.io, { permitted: r.decision.explanation, 'logged as': `DATA_ACCESSED, entry ${r.event.index}` });
}

/** Parses `name=uri@digest`. */
export function parseOutput(s: string): { name: string; uri: string; digest: string } {
  const m = /^([A-Za-z][A-Za-z0-9_.:-]*)=(.+)@([0-9a-fA-F]{64})$/.exec(s);
  if (!m) throw new ValidationError('VALIDATION_FAILED', `--output must be name=uri@sha256, got ${JSON.stringify(s.slice(0, 80))}`);
  return { name: m[1]!, uri: m[2]!, digest: m[3]! };
}

/**
 * An artifact named by flags: a URI and a digest, or a file whose SHA-256 is streamed (its file:
 * URI unless a URI is given). Hashed before anything is opened or written.
 * @throws {ValidationError} VALIDATION_FAILED (a flag missing, or a digest given with a file); FILE_UNREADABLE
 */
export async function artifactOf(
  ctx: CommandContext,
  f: { uri?: string | undefined; digest?: string | undefined; file?: string | undefined },
  flags: { uri: string; digest: string; file: string },
): Promise<{ uri: string; digest: string }> {
  if (f.file !== undefined) {
    if (f.digest !== undefined) throw new ValidationError('VALIDATION_FAILED', `${flags.digest} and ${flags.file} are exclusive: the file's digest is computed`);
    const d = await sha256File(ctx.io, f.file, flags.file);
    return { uri: f.uri ?? d.uri, digest: d.digest };
  }
  if (f.uri === undefined || f.digest === undefined) {
    throw new ValidationError('VALIDATION_FAILED', `${f.uri === undefined ? flags.uri : flags.digest} is required (or ${flags.file} FILE)`);
  }
  return { uri: f.uri, digest: f.digest };
}

/** Parses `--output-file name=path` and streams the file's digest; the URI is the file's file: URI. */
export async function outputFileOf(ctx: CommandContext, s: string): Promise<{ name: string; uri: string; digest: string }> {
  const m = /^([A-Za-z][A-Za-z0-9_.:-]*)=(.+)$/.exec(s);
  if (!m) throw new ValidationError('VALIDATION_FAILED', `--output-file must be name=path, got ${JSON.stringify(s.slice(0, 80))}`);
  const d = await sha256File(ctx.io, m[2]!, `--output-file ${m[1]!}`);
  return { name: m[1]!, uri: d.uri, digest: d.digest };
}

/**
 * Reads `--explanation FILE.json`: one explanation object, or an array of them. An explanation
 * with `file` (a path, relative to the working directory) instead of `digest` has its SHA-256
 * streamed from that file, and its file: URI unless `uri` is given. The service checks the rest.
 */
export async function explanationsOf(ctx: CommandContext, files: readonly string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const path of files) {
    const json = readJsonFile(ctx.io, path, 'explanation');
    for (const x of Array.isArray(json) ? json : [json]) {
      if (x === null || typeof x !== 'object' || Array.isArray(x) || !('file' in x)) {
        out.push(x);
        continue;
      }
      const { file, ...rest } = x as Record<string, unknown>;
      if (typeof file !== 'string' || 'digest' in rest) {
        throw new ValidationError('VALIDATION_FAILED', `explanation file ${path}: "file" must be a path, and goes without "digest"`, {
          issues: [{ path: `explanations.${out.length}.file`, message: 'a path, without digest' }],
        });
      }
      const d = await sha256File(ctx.io, file, `explanation (${path})`);
      out.push({ ...rest, uri: typeof rest['uri'] === 'string' ? rest['uri'] : d.uri, digest: d.digest });
    }
  }
  return out;
}

export interface InferOptions extends RequestFlagValues, RolesFileOption {
  readonly purpose: string;
  readonly policy: string;
  readonly inputUri?: string | undefined;
  readonly inputDigest?: string | undefined;
  /** Stream this file for the input digest (its file: URI unless `inputUri`). */
  readonly inputFile?: string | undefined;
  readonly output: readonly string[];
  /** `name=path`: an output whose digest is streamed from the file. */
  readonly outputFile?: readonly string[] | undefined;
  /** Explanation artifact JSON files (issue 14). */
  readonly explanation?: readonly string[] | undefined;
  readonly pipeline: string;
  readonly model: string;
  /** issue 14: refuse any model that is not a registered, approved version. */
  readonly requireRegisteredModels?: boolean | undefined;
}

/** `custos infer`: records an inference under consent and prints its receipt. */
export async function infer(ctx: CommandContext, o: InferOptions, actor: Actor): Promise<void> {
  // Every file is read and hashed before the log is opened: a missing one writes nothing.
  const outputs = o.output.map(parseOutput);
  for (const f of o.outputFile ?? []) outputs.push(await outputFileOf(ctx, f));
  const input = await artifactOf(ctx, { uri: o.inputUri, digest: o.inputDigest, file: o.inputFile }, { uri: '--input-uri', digest: '--input-digest', file: '--input-file' });
  const explanations = await explanationsOf(ctx, o.explanation ?? []);
  const pipeline = readJsonFile(ctx.io, o.pipeline, 'pipeline manifest');
  const model = readJsonFile(ctx.io, o.model, 'model spec');
  const r = await withGovernance(
    ctx,
    (g) =>
      reportDenial(ctx, () =>
        g.recordInference({
          actor,
          purpose: o.purpose,
          policyId: o.policy,
          input,
          outputs,
          pipeline,
          model,
          ...requestFields(o),
          // Unchecked JSON from the files: the service parses it with the request schema.
          ...(explanations.length > 0 ? { explanations: explanations as InferenceInput['explanations'] } : {}),
        }),
      ),
    o.roles,
    o.requireRegisteredModels ? { requireRegisteredModels: true } : {},
  );
  if (ctx.json) return printJson(ctx.io, { receipt: r.receipt, receiptHash: r.receiptHash, decision: decisionToJson(r.decision), event: eventFields(r.event) });
  printFields(ctx.io, {
    permitted: r.decision.explanation,
    'logged as': `INFERENCE_EXECUTED, entry ${r.event.index}`,
    'receipt hash': r.receiptHash,
    ...(r.receipt.explanations === undefined ? {} : { explanations: `${explanations.length}, document ${r.receipt.explanations}` }),
    'see': `custos receipt ${r.event.index}`,
  });
}

/** `--roles FILE`: the role table and role mapping the decision is made under (default: the default role table, no mapping). */
export interface RolesFileOption {
  readonly roles?: string | undefined;
}

export interface TrainOptions extends RolesFileOption {
  readonly purpose: string;
  readonly policy?: string;
  /** issue 14: a cohort file (docs/training.md). */
  readonly cohort?: string;
  readonly attestation?: string;
  readonly attestationDocument?: string;
  readonly datasetUri?: string | undefined;
  readonly datasetDigest?: string | undefined;
  /** Stream this file for the dataset digest (its file: URI unless `datasetUri`). */
  readonly datasetFile?: string | undefined;
  readonly datasetType: string;
  readonly manifest: string;
  readonly modelBefore: string;
  readonly modelAfter: string;
  readonly compute: string;
  // issue 14: change control (docs/models.md)
  readonly changeControl?: string;
  readonly metrics?: string;
  readonly modification?: string;
}

/** `custos train`: records a training run (identified data under consent; other data with an attestation). */
export async function train(ctx: CommandContext, o: TrainOptions, actor: Actor): Promise<void> {
  const dataset = await artifactOf(ctx, { uri: o.datasetUri, digest: o.datasetDigest, file: o.datasetFile }, { uri: '--dataset-uri', digest: '--dataset-digest', file: '--dataset-file' });
  const manifest = readJsonFile(ctx.io, o.manifest, 'training manifest');
  const modelBefore = readJsonFile(ctx.io, o.modelBefore, 'model spec (before)');
  const modelAfter = readJsonFile(ctx.io, o.modelAfter, 'model spec (after)');
  const changeControl = changeControlOf(ctx, o);
  const cohort = o.cohort === undefined ? undefined : cohortFile(readJsonFile(ctx.io, o.cohort, 'cohort'));
  const r = await withGovernance(
    ctx,
    (g) =>
      reportDenial(ctx, () =>
        g.recordTraining({
          actor,
          purpose: o.purpose,
          dataset: { ...dataset, type: o.datasetType as 'synthetic' },
          ...(o.policy === undefined ? {} : { policyIds: list(o.policy) ?? [] }),
          // (validated by the service's schema: unknown until then)
          ...(cohort === undefined ? {} : { cohort: cohort as { subject: string; policyId: string }[] }),
          ...(o.attestation === undefined && o.attestationDocument === undefined
            ? {}
            : { attestation: { method: o.attestation as 'safe-harbor', ...(o.attestationDocument === undefined ? {} : { document: o.attestationDocument }) } }),
          manifest,
          modelBefore,
          modelAfter,
          computeBackend: o.compute,
          ...(changeControl ? { changeControl: changeControl as TrainingInput['changeControl'] } : {}),
        }),
      ),
    o.roles,
  );
  if (ctx.json)
    return printJson(ctx.io, {
      manifestHash: r.manifestHash,
      decisions: r.decisions.map(decisionToJson),
      event: eventFields(r.event),
      ...(r.cohort ? { cohort: r.cohort } : {}),
      ...(r.model ? { model: changeControlJson(r.model) } : {}),
    });
  printFields(ctx.io, {
    recorded: `TRAINING_EXECUTED, entry ${r.event.index}`,
    'manifest hash': r.manifestHash,
    ...(r.cohort
      ? {
          cohort: `${r.cohort.size} included, ${r.cohort.excludedTotal} excluded${r.cohort.excluded.length ? ` (${r.cohort.excluded.map((x) => `${x.reason} ${x.count}`).join(', ')})` : ''}`,
          'cohort root': r.cohort.root,
        }
      : {}),
    ...(r.model ? changeControlFields(r.model) : {}),
  });
}

// issue 14: a cohort file is a JSON array of {subject, policyId}, or an object with such an array as `cohort`.
function cohortFile(json: unknown): unknown {
  return json !== null && typeof json === 'object' && !Array.isArray(json) && 'cohort' in json ? (json as { cohort: unknown }).cohort : json;
}

/** The route the PATIENT_DATA_OPENED event of `custos receipt --open` names. */
export const CLI_RECEIPT_ROUTE = 'GET /cli/receipt/:index';

/** Options of {@link receipt}. */
export interface ReceiptOptions {
  /** A pinned verifier key (text or file) for the checkpoint. */
  readonly key?: string | undefined;
  /** Open the URI commitments to the URIs (needs the three below; logs PATIENT_DATA_OPENED). */
  readonly open?: boolean | undefined;
  readonly purpose?: string | undefined;
  readonly actor?: string | undefined;
  readonly actorRole?: string | undefined;
}

/**
 * `custos receipt N [--open --purpose P --actor A --actor-role R]`: rebuilds the receipt of
 * inference event N, re-checking every hash (each stored opening against its commitment too). Sealed
 * by default: the artifacts are shown by their commitments. The URIs are patient-linked: with
 * --open, PATIENT_DATA_OPENED (the commitments, never the URIs) is on the log before they are printed.
 */
export async function receipt(ctx: CommandContext, index: number, o: ReceiptOptions = {}): Promise<void> {
  // Both checked before anything is read or written.
  if (o.open !== true && (o.purpose !== undefined || o.actor !== undefined || o.actorRole !== undefined)) {
    // Not silently ignored: whoever passes them expects the URIs, and would get none.
    throw new ValidationError('VALIDATION_FAILED', '--purpose, --actor and --actor-role go with --open');
  }
  const opener = o.open === true ? requireOpener(o, 'or leave out --open for the sealed receipt') : undefined;
  const r = opener
    ? await withLog(ctx, async (log, dir) => {
        const audit = await openingAudit(log, opener, CLI_RECEIPT_ROUTE, index);
        const rebuilt = await rebuildReceipt(log, trustedVerifiers(ctx, dir, o.key).verifiers, dir.origin, index, { open: true });
        // On the log before any URI leaves: the commitments opened (an empty list when all were erased).
        await audit(rebuilt.artifacts.filter((a) => a.state === 'opened').map((a) => a.commitment));
        return rebuilt;
      })
    : await withDataDir(ctx, async (dir) => rebuildReceipt(dir.store, trustedVerifiers(ctx, dir, o.key).verifiers, dir.origin, index, { open: false }), true);
  if (ctx.json) printJson(ctx.io, r);
  else {
    const rc = r.receipt;
    const erasedPart = (what: string) => {
      const x = r.erased.find((d) => d.what === what);
      return x ? `(erased by entry ${x.erasureIndex})  sha256 ${x.hash}` : '-';
    };
    printFields(ctx.io, {
      'event': `entry ${r.eventIndex} (INFERENCE_EXECUTED)`,
      'when': rc?.event.time ?? '-',
      'actor': rc ? `${rc.actor} as ${rc.role}, purpose ${rc.purpose}` : '-',
      'consent': rc ? `${rc.consent.policyId} version ${rc.consent.version} (${rc.consent.policyHash})` : '-',
      'model': r.model
        ? `${(r.model as { modelName?: string }).modelName} ${(r.model as { modelVersion?: string }).modelVersion}, weights ${(r.model as { weightsHash?: string }).weightsHash}`
        : erasedPart('model spec'),
      'pipeline': r.pipeline ? `${(r.pipeline as { pipelineName?: string }).pipelineName} ${(r.pipeline as { pipelineVersion?: string }).pipelineVersion}` : erasedPart('pipeline manifest'),
    });
    // issue 14: each explanation's method, output explained and parameters (its artifact is listed below).
    const ex = r.explanations as { explanations?: { method?: string; output?: string; parameters?: unknown }[] } | undefined;
    (ex?.explanations ?? []).forEach((x, i) => ctx.io.stdout.write(`explanation ${i + 1}: ${String(x.method)} of output ${String(x.output)}, parameters ${JSON.stringify(x.parameters ?? {})}\n`));
    const exErased = r.erased.find((d) => d.what === 'explanations document');
    if (exErased) ctx.io.stdout.write(`explanations: (erased by entry ${exErased.erasureIndex})  sha256 ${exErased.hash}\n`);
    for (const a of r.artifacts) {
      const shown = a.state === 'opened' ? a.uri : a.state === 'erased' ? '(erased)' : `(sealed) commitment ${a.commitment}`;
      ctx.io.stdout.write(`${a.role}: ${shown}  sha256 ${a.digest}\n`);
    }
    for (const c of r.checks) ctx.io.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.what}${c.detail ? ` (${c.detail})` : ''}\n`);
    ctx.io.stdout.write(`proof against the signed tree of size ${r.proof.treeSize}, root ${r.proof.rootHash}: verified\n`);
    if (r.artifacts.some((a) => a.state === 'sealed')) ctx.io.stdout.write('URIs sealed: --open --purpose CODE --actor ID --actor-role ROLE opens them (logged as PATIENT_DATA_OPENED)\n');
    else if (opener) ctx.io.stdout.write('opened: logged as PATIENT_DATA_OPENED\n');
  }
  if (!r.ok) {
    throw new VerificationError(
      'RECEIPT_INVALID',
      `receipt of entry ${index} does not check: ${r.checks
        .filter((c) => !c.ok)
        .map((c) => c.what)
        .join(', ')}`,
    );
  }
}

/** `custos erase`: deletes the openings of a subject's (and everything linked to it), a URI's or an external reference's commitments (the log stays intact). */
export async function erase(ctx: CommandContext, kind: 'subject' | 'uri' | 'external_ref' | 'document', value: string, actor: Actor): Promise<void> {
  const r = await withGovernance(ctx, (g) => g.erase(kind, value, actor));
  if (ctx.json)
    return printJson(ctx.io, {
      erased: r.commitments,
      ...(r.document === undefined ? {} : { document: r.document }),
      ...(r.documents === undefined ? {} : { documents: r.documents }),
      event: r.event ? eventFields(r.event) : null,
      ...(r.scrub ? { scrub: r.scrub } : {}),
    });
  if (kind === 'document' && r.event) {
    printFields(ctx.io, {
      erased: `document ${r.document!}`,
      'logged as': `ERASURE_PERFORMED, entry ${r.event.index}`,
      'store files': r.scrub ? `${r.scrub.complete ? 'scrubbed' : 'NOT fully scrubbed'}: ${r.scrub.detail}` : '-',
    });
  } else if (kind === 'document') ctx.io.stdout.write('nothing to erase: no stored document has that hash\n');
  else if (r.commitments.length === 0) ctx.io.stdout.write(`nothing to erase: no commitment to that ${kind}\n`);
  else {
    printFields(ctx.io, {
      erased: r.commitments.join(', '),
      ...(r.documents === undefined ? {} : { 'FHIR Consent bytes': r.documents.join(', ') }),
      'logged as': `ERASURE_PERFORMED, entry ${r.event!.index}`,
      'store files': r.scrub ? `${r.scrub.complete ? 'scrubbed' : 'NOT fully scrubbed'}: ${r.scrub.detail}` : '-',
    });
  }
}

/**
 * `custos tamper-check`: on a copy of the data directory, samples receipts, edits a fraction of
 * them, runs the off-ledger verification and reports detection and false-alarm rates.
 * The real data directory is only read.
 */
export async function tamperCheck(ctx: CommandContext, o: { sample: number; rate: number; seed: number }): Promise<void> {
  const report = await tamperCheckDataDir(ctx.dataDir, o);
  if (ctx.json) return printJson(ctx.io, report);
  printFields(ctx.io, {
    'inference events': String(report.total_inference_events),
    sampled: String(report.sampled),
    'ok before': String(report.baseline_ok_before),
    tampered: String(report.tampered),
    detected: String(report.detected),
    missed: String(report.missed),
    'false alarms': String(report.falseAlarms),
    'detection rate': formatRate(report.detectionRate),
    'false-alarm rate': formatRate(report.falseAlarmRate),
    seed: String(report.seed),
  });
}
