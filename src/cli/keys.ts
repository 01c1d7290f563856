/**
 * Keys on the command line: a key given as its text or as a file holding it, and the witness policy
 * (`--witness VKEY`... `--quorum K`) that `verify`, `verify-bundle` and `monitor` share.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { ValidationError } from '../core/errors.js';
import { parseCosignerVerifierKey, type WitnessPolicy } from '../core/cosignature.js';
import { parseVerifierKey, type NoteVerifier } from '../core/note.js';
import type { CommandContext } from './context.js';
import { inCwd } from './output.js';

/** A key given as its text, or as the path of a file holding it. */
export function readKeyArg(ctx: CommandContext, given: string, what: string): string {
  const file = inCwd(ctx.io, given);
  if (!existsSync(file)) return given.trim();
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read ${what} file ${given}`, { cause: err });
  }
}

/**
 * A log verifier key (`name+keyid+base64`) given as its text or a file, for `flag` (e.g. `--log-key`).
 * @throws {ValidationError} VALIDATION_FAILED naming the flag (an unreadable file included)
 */
export function verifierKeyArg(ctx: CommandContext, given: string, flag: string, what: string): NoteVerifier {
  try {
    return parseVerifierKey(readKeyArg(ctx, given, what));
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `${flag} is not a verifier key (name+keyid+base64)`, { cause: err });
  }
}

/**
 * The witness policy of the command line: K (default: all) of the given cosigner keys (type 0x04).
 * Undefined when no witness is given.
 * @throws {ValidationError} VALIDATION_FAILED for a bad key, or a quorum outside 1..N
 */
export function witnessPolicyArgs(ctx: CommandContext, witnesses: readonly string[], quorum: number | undefined): WitnessPolicy | undefined {
  if (witnesses.length === 0) {
    if (quorum !== undefined && quorum > 0) throw new ValidationError('VALIDATION_FAILED', '--quorum needs --witness keys');
    return undefined;
  }
  const k = quorum ?? witnesses.length;
  if (k < 1 || k > witnesses.length) throw new ValidationError('VALIDATION_FAILED', `--quorum must be between 1 and the ${witnesses.length} --witness keys`);
  const keys = witnesses.map((w) => {
    try {
      return parseCosignerVerifierKey(readKeyArg(ctx, w, 'witness key'));
    } catch (err) {
      throw new ValidationError('VALIDATION_FAILED', `--witness ${w} is not a cosigner verifier key (type 0x04)`, { cause: err });
    }
  });
  return { witnesses: keys, quorum: k };
}
