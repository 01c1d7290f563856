/**
 * issue 14: training cohort proofs. `custos training proof RUN --subject ID [--absent]` writes the
 * patient-held proof that a subject was in the training run at entry RUN, or was not;
 * `custos training verify-proof FILE --log-key KEY` checks one offline (no data directory).
 * docs/training.md describes the format and the checks.
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { verifyCohortProof } from '../../core/cohort.js';
import { ValidationError, VerificationError } from '../../core/errors.js';
import { OPAQUE_ID, parseWith } from '../../core/schema/parse.js';
import { openLog } from '../../log/data-dir.js';
import { buildCohortProof } from '../../service/governance/cohort.js';
import type { CommandContext } from '../context.js';
import { verifierKeyArg } from '../keys.js';
import { openingAudit, requireOpener } from '../opening.js';
import { inCwd, printJson, writeFileWhole } from '../output.js';

/** The route the PATIENT_DATA_OPENED event of `custos training proof` names. */
export const CLI_COHORT_PROOF_ROUTE = 'POST /cli/training/:index/cohort-proof';

/** Options of {@link trainingProof}. */
export interface TrainingProofOptions {
  readonly subject: string;
  readonly absent?: boolean | undefined;
  readonly out?: string | undefined;
  readonly purpose?: string | undefined;
  readonly actor?: string | undefined;
  readonly actorRole?: string | undefined;
}

/**
 * `custos training proof RUN --subject ID [--absent] [--out F] --purpose P --actor A --actor-role R`.
 * The proof opens the subject's commitment (its salt): PATIENT_DATA_OPENED is logged before.
 */
export async function trainingProof(ctx: CommandContext, index: number, o: TrainingProofOptions): Promise<void> {
  const subject = parseWith(OPAQUE_ID, o.subject, 'subject', 'subject');
  const opener = requireOpener(o, "a proof opens the subject's commitment");
  const target = o.out === undefined ? undefined : inCwd(ctx.io, o.out);
  if (target !== undefined && (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory() || (existsSync(target) && statSync(target).isDirectory()))) {
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${o.out}: no such directory, or it is a directory`);
  }
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  let built;
  try {
    const audit = await openingAudit(log, opener, CLI_COHORT_PROOF_ROUTE, index);
    built = await buildCohortProof(log, index, subject, { absent: o.absent === true, audit });
  } finally {
    await log.close();
    await dir.store.close();
  }
  const text = `${JSON.stringify(built.proof, null, 2)}\n`;
  if (target === undefined) {
    ctx.io.stdout.write(text);
    return;
  }
  writeFileWhole(target, o.out ?? target, text, 0o600);
  if (ctx.json) printJson(ctx.io, { file: o.out, index, kind: built.proof.kind, cohortSize: built.proof.cohort.size, commitments: built.commitments });
  else
    ctx.io.stdout.write(`wrote ${o.out}: ${built.proof.kind} proof for entry ${index} (cohort of ${built.proof.cohort.size}; the file holds the subject's id and salt: give it to the patient only)\n`);
}

/** `custos training verify-proof FILE --log-key KEY`: every check, by name; no data directory. */
export async function trainingVerifyProof(ctx: CommandContext, file: string, o: { readonly logKey: string }): Promise<void> {
  const logKey = verifierKeyArg(ctx, o.logKey, '--log-key', 'log key');
  let text: string;
  try {
    text = readFileSync(inCwd(ctx.io, file), 'utf8');
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read ${file}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new VerificationError('COHORT_PROOF_MALFORMED', `${file} is not JSON`, { cause: err, details: { path: '$' } });
  }
  const r = verifyCohortProof(parsed, { logKey });
  if (ctx.json) printJson(ctx.io, r);
  else {
    for (const c of r.checks) ctx.io.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}  (${c.detail})\n`);
    if (r.ok) {
      ctx.io.stdout.write(
        r.kind === 'inclusion'
          ? `the subject was in the cohort of the training run at entry ${r.entryIndex} (signed tree of size ${r.treeSize})\n`
          : `the subject was NOT in the cohort of the training run at entry ${r.entryIndex} (${r.cohortSize} subjects; signed tree of size ${r.treeSize})\n`,
      );
    }
  }
  if (r.failed) throw new VerificationError('COHORT_PROOF_INVALID', `check ${r.failed.name} failed: ${r.failed.detail}`, { details: { check: r.failed.name } });
}
