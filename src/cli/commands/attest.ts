/**
 * issue 15, selective disclosure (docs/attestations.md):
 * - `custos attest consent POLICY [--at INDEX]` and `custos attest receipt INDEX`: an SD-JWT of
 *   one fact of the log, signed with the data directory's issuer key (logged as ATTESTATION_ISSUED);
 * - `custos present FILE --disclose a,b,...`: the presentation that discloses only those claims;
 * - `custos verify-presentation FILE --issuer-key KEY [--checkpoint FILE]`: its offline check,
 *   with no data directory.
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { MAX_ATTESTATION_CHARS, parseIssuerJwk, presentAttestation, verifyAttestation, type IssuerJwk } from '../../core/attestation.js';
import { ValidationError, VerificationError } from '../../core/errors.js';
import { loadAttestationKey } from '../../log/attestation-key.js';
import { openLog } from '../../log/data-dir.js';
import { Attestations, type IssuedAttestation } from '../../service/attestations.js';
import { Governance } from '../../service/governance.js';
import { trustedVerifiers, type CommandContext } from '../context.js';
import { readKeyArg, verifierKeyArg } from '../keys.js';
import { inCwd, printJson, writeFileWhole } from '../output.js';
import { governanceRoleOptions } from '../roles-file.js';

/** The route the CLI's ATTESTATION_ISSUED events name (audit events name a route; this one is the CLI's). */
export const CLI_ATTEST_ROUTE = 'POST /cli/attest';

/** Options of `custos attest consent|receipt`. */
export interface AttestOptions {
  readonly out?: string;
  readonly actor: string;
  readonly actorRole: string;
  /** `--roles FILE`: the deployment's role table (the actor's role must be in it). */
  readonly roles?: string;
}

// Checked before anything is written: the directory exists, the target is not a directory.
function outTarget(ctx: CommandContext, out: string | undefined): string | undefined {
  const target = out === undefined ? undefined : inCwd(ctx.io, out);
  if (target !== undefined && (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory() || (existsSync(target) && statSync(target).isDirectory()))) {
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${out}: no such directory, or it is a directory`);
  }
  return target;
}

// Written whole, then renamed, mode 0600 (a credential about a patient's care): a reader never sees half of it.
function writeWhole(target: string, given: string, text: string): void {
  writeFileWhole(target, given, text, 0o600);
}

async function withAttestations(ctx: CommandContext, o: AttestOptions, fn: (a: Attestations) => Promise<IssuedAttestation>): Promise<IssuedAttestation> {
  const roleOptions = governanceRoleOptions(ctx.io, o.roles);
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    // The issuer key lives beside the log key, created on first use (mode 0600).
    const key = loadAttestationKey(ctx.dataDir, { create: true });
    const governance = await Governance.open({ log, ...roleOptions });
    const a = new Attestations({ log, governance, key, verifiers: trustedVerifiers(ctx, dir, undefined).verifiers, origin: dir.origin });
    return await fn(a);
  } finally {
    await log.close();
    await dir.store.close();
  }
}

function report(ctx: CommandContext, r: IssuedAttestation, out: string | undefined, target: string | undefined): void {
  if (target !== undefined) writeWhole(target, out!, `${r.credential}\n`);
  const { credential, ...meta } = r;
  if (ctx.json) {
    printJson(ctx.io, { ...meta, ...(target === undefined ? { credential } : { file: out }) });
    return;
  }
  if (target === undefined) ctx.io.stdout.write(`${credential}\n`);
  ctx.io.stderr.write(
    `${target === undefined ? 'issued' : `wrote ${out}:`} a ${r.kind} attestation of entry ${r.eventIndex} (SD-JWT, key ${r.keyId.slice(0, 16)}..., published at entry ${r.keyEvent}); logged as ATTESTATION_ISSUED at entry ${r.issuedEvent}\n` +
      `claims (disclose with custos present --disclose): ${r.disclosable.join(', ')}\n`,
  );
}

/** `custos attest receipt INDEX [--out F] --actor ID --actor-role ROLE`. */
export async function attestReceipt(ctx: CommandContext, index: number, o: AttestOptions): Promise<void> {
  const target = outTarget(ctx, o.out);
  const r = await withAttestations(ctx, o, (a) => a.receipt(index, { actor: o.actor, role: o.actorRole, route: CLI_ATTEST_ROUTE }));
  report(ctx, r, o.out, target);
}

/** `custos attest consent POLICY [--at INDEX] [--out F] --actor ID --actor-role ROLE`. */
export async function attestConsent(ctx: CommandContext, policyId: string, o: AttestOptions & { at?: number }): Promise<void> {
  const target = outTarget(ctx, o.out);
  const r = await withAttestations(ctx, o, (a) => a.consent(policyId, o.at, { actor: o.actor, role: o.actorRole, route: CLI_ATTEST_ROUTE }));
  report(ctx, r, o.out, target);
}

function readAttestationFile(ctx: CommandContext, file: string): string {
  let text: string;
  try {
    const path = inCwd(ctx.io, file);
    if (statSync(path).size > MAX_ATTESTATION_CHARS) throw new ValidationError('VALIDATION_FAILED', `${file} is larger than an attestation can be`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError('FILE_UNREADABLE', `cannot read ${file}`, { cause: err });
  }
  return text.trim();
}

/** `custos present FILE --disclose a,b,... [--out F]`: no data directory is opened. */
export async function present(ctx: CommandContext, file: string, o: { disclose: string; out?: string }): Promise<void> {
  const target = outTarget(ctx, o.out);
  const paths = o.disclose
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
  const presentation = presentAttestation(readAttestationFile(ctx, file), paths);
  if (target !== undefined) writeWhole(target, o.out!, `${presentation}\n`);
  if (ctx.json) printJson(ctx.io, { disclosed: paths, ...(target === undefined ? { presentation } : { file: o.out }) });
  else if (target === undefined) ctx.io.stdout.write(`${presentation}\n`);
  else ctx.io.stderr.write(`wrote ${o.out}: discloses ${paths.join(', ')} (and the entry index, leaf hash and inclusion proof)\n`);
}

/** `custos verify-presentation FILE --issuer-key KEY [--checkpoint FILE] [--log-key VKEY]`: offline, no data directory. */
export async function verifyPresentation(ctx: CommandContext, file: string, o: { issuerKey: string; checkpoint?: string; logKey?: string }): Promise<void> {
  let issuerKey: IssuerJwk;
  try {
    issuerKey = parseIssuerJwk(readKeyArg(ctx, o.issuerKey, 'issuer key'));
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new VerificationError('KEY_MALFORMED', '--issuer-key is not an Ed25519 public JWK (a file such as attestation.jwk, or its JSON)', { cause: err });
  }
  const logKey = o.logKey === undefined ? undefined : verifierKeyArg(ctx, o.logKey, '--log-key', 'log key');
  let checkpoint: string | undefined;
  if (o.checkpoint !== undefined) {
    try {
      checkpoint = readFileSync(inCwd(ctx.io, o.checkpoint), 'utf8');
    } catch (err) {
      throw new ValidationError('FILE_UNREADABLE', `cannot read the checkpoint ${o.checkpoint}`, { cause: err });
    }
  }
  const r = await verifyAttestation(readAttestationFile(ctx, file), {
    issuerKey,
    now: Math.floor(Date.now() / 1000),
    ...(checkpoint === undefined ? {} : { checkpoint }),
    ...(logKey ? { logKey } : {}),
  });
  if (ctx.json) {
    printJson(ctx.io, { ok: true, ...r });
    return;
  }
  const shown = Object.entries(r.disclosed).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  ctx.io.stdout.write(
    `ok: a ${r.kind} attestation of entry ${r.entryIndex} of ${r.issuer}, signed by issuer key ${r.keyId} (kid ${r.kid})\n` +
      `  inclusion: leaf ${r.leafHash} at ${r.entryIndex} in the checkpoint of size ${r.checkpoint.treeSize} (${r.checkpoint.source === 'given' ? 'the one given' : "the attestation's"}), signed by ${r.checkpoint.signedBy}${o.logKey === undefined ? ' (the log key named in the attestation; pin it with --log-key)' : ''}\n` +
      `  disclosed (${r.disclosures} disclosure(s), each checked against its digest): ${shown.length === 0 ? '(none)' : shown.join(', ')}\n` +
      `  withheld: ${r.withheld} claim(s)\n`,
  );
}
