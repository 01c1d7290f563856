/**
 * `custos bundle` (write the offline evidence of one inference event) and `custos verify-bundle`
 * (check it with only the log key: no data directory, no network).
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ValidationError, VerificationError } from '../../core/errors.js';
import { verifyBundle } from '../../core/bundle.js';
import { parseVerifierKey, type NoteVerifier } from '../../core/note.js';
import { openLog } from '../../log/data-dir.js';
import { buildBundle } from '../../service/bundle.js';
import type { CommandContext } from '../context.js';
import { readKeyArg, witnessPolicyArgs } from '../keys.js';
import { openingAudit, requireOpener } from '../opening.js';
import { inCwd, printJson, writeFileWhole } from '../output.js';

/** The route an audit event of the CLI names (audit events name a route; this one is the CLI's). */
export const CLI_BUNDLE_ROUTE = 'GET /cli/bundle/:index';

/** Options of {@link bundle}. */
export interface BundleOptions {
  readonly output: string;
  readonly redact?: boolean;
  readonly purpose?: string;
  readonly actor?: string;
  readonly actorRole?: string;
}

/**
 * `custos bundle INDEX -o FILE [--redact]`. Without --redact, the openings are patient-linked: the
 * command needs --purpose, --actor and --actor-role, and writes PATIENT_DATA_OPENED before reading them.
 */
export async function bundle(ctx: CommandContext, index: number, o: BundleOptions): Promise<void> {
  const redact = o.redact === true;
  const opener = redact ? undefined : requireOpener(o, 'or --redact to leave the openings out');
  const target = inCwd(ctx.io, o.output);
  // Checked before anything is opened (and logged as opened).
  if (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory() || (existsSync(target) && statSync(target).isDirectory())) {
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${o.output}: no such directory, or it is a directory`);
  }
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  let built;
  try {
    const audit = opener ? await openingAudit(log, opener, CLI_BUNDLE_ROUTE, index) : undefined;
    built = await buildBundle(log, log.signer, index, { redact, ...(audit ? { audit } : {}) });
  } finally {
    await log.close();
    await dir.store.close();
  }
  writeFileWhole(
    target,
    o.output,
    `${JSON.stringify(built.bundle, null, 2)}
`,
  );
  if (ctx.json) printJson(ctx.io, { file: o.output, index, redacted: redact, opened: built.opened });
  else ctx.io.stdout.write(`wrote ${o.output}: bundle of entry ${index}${redact ? ' (redacted: no openings)' : `, ${built.opened.length} commitment(s) opened (PATIENT_DATA_OPENED logged)`}\n`);
}

/** Options of {@link verifyBundleFile}. */
export interface VerifyBundleFileOptions {
  readonly key: string;
  readonly witnesses: readonly string[];
  readonly quorum?: number;
}

/** `custos verify-bundle FILE --key VKEY [--witness VKEY]... [--quorum K]`: every check, by name. */
export async function verifyBundleFile(ctx: CommandContext, file: string, o: VerifyBundleFileOptions): Promise<void> {
  let logKey: NoteVerifier;
  const keyText = readKeyArg(ctx, o.key, 'key');
  try {
    logKey = parseVerifierKey(keyText);
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `--key is not a verifier key (name+keyid+base64)`, { cause: err });
  }
  const policy = witnessPolicyArgs(ctx, o.witnesses, o.quorum);
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
    throw new VerificationError('BUNDLE_MALFORMED', `${file} is not JSON`, { cause: err });
  }
  const r = verifyBundle(parsed, { logKey, ...(policy ?? {}) });
  if (ctx.json) printJson(ctx.io, r);
  else {
    for (const c of r.checks) ctx.io.stdout.write(`${c.status === 'pass' ? 'ok  ' : c.status === 'fail' ? 'FAIL' : 'skip'} ${c.name}${c.detail ? `  (${c.detail})` : ''}\n`);
    if (r.ok) ctx.io.stdout.write(`bundle of entry ${r.logIndex} verified against the signed tree of size ${r.treeSize}\n`);
  }
  if (r.failed) {
    throw new VerificationError(r.failed.code ?? 'LOG_VERIFICATION_FAILED', `check ${r.failed.name} failed: ${r.failed.detail ?? ''}`, { details: { check: r.failed.name } });
  }
}
