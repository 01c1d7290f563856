/**
 * Salted commitments: how identifiers (subject ids, artifact URIs) appear on the log.
 *
 * commitment = hex(SHA-256(salt || UTF-8(value))), with a random 32-byte salt per distinct value kept
 * off-ledger. Without the salt, the commitment reveals nothing checkable about the value; deleting
 * the salt (erasure) makes every log entry that carries it unlinkable, and the tree is untouched.
 * @module
 */
import { isWellFormedString } from './canonical-json.js';
import { ValidationError } from './errors.js';
import { sha256, toHex } from './hash.js';

/** Bytes of salt per committed value. */
export const COMMITMENT_SALT_BYTES = 32;

/**
 * Computes the commitment to `value` under `salt`. Pure: the caller supplies the random salt.
 * A string with a lone surrogate has no UTF-8 encoding (Buffer.from would substitute U+FFFD, and
 * a store another way), so the commitment would be over bytes other than the stored ones: refused.
 * @throws {ValidationError} VALIDATION_FAILED when `value` is not a well-formed string
 */
export function computeCommitment(salt: Uint8Array, value: string): string {
  if (typeof value !== 'string' || !isWellFormedString(value)) {
    throw new ValidationError('VALIDATION_FAILED', 'a committed value must be well-formed Unicode', { issues: [{ path: 'value', message: 'not well-formed Unicode (lone surrogate)' }] });
  }
  return toHex(sha256(Buffer.concat([salt, Buffer.from(value, 'utf8')])));
}
