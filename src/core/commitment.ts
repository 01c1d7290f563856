/**
 * Salted commitments: how identifiers (subject ids, artifact URIs) appear on the log.
 *
 * commitment = hex(SHA-256(salt || UTF-8(value))), with a random 32-byte salt per distinct value kept
 * off-ledger. Without the salt, the commitment reveals nothing checkable about the value; deleting
 * the salt (erasure) makes every log entry that carries it unlinkable, and the tree is untouched.
 * @module
 */
import { sha256, toHex } from './hash.js';

/** Bytes of salt per committed value. */
export const COMMITMENT_SALT_BYTES = 32;

/** Computes the commitment to `value` under `salt`. Pure: the caller supplies the random salt. */
export function computeCommitment(salt: Uint8Array, value: string): string {
  return toHex(sha256(Buffer.concat([salt, Buffer.from(value, 'utf8')])));
}
