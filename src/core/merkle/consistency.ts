/**
 * RFC 9162 §2.1.4.2: verifying a consistency proof.
 * @module
 */
import { HASH_SIZE, bytesEqual, hashChildren } from '../hash.js';
import { VerificationError } from '../errors.js';
import { isPow2 } from './node-id.js';

function fail(message: string, details?: Record<string, unknown>): never {
  throw new VerificationError('CONSISTENCY_PROOF_INVALID', message, details ? { details } : undefined);
}

/**
 * Verifies that the tree of `oldSize` with `oldRoot` is a prefix of the tree of `newSize` with `newRoot`.
 *
 * Equal sizes need an empty proof and equal roots. A proof from size 0 is refused, as in the
 * transparency-dev vectors: an empty tree is trivially a prefix, and callers that want that rule
 * (the C2SP tlog-witness `old 0` case) must handle it before calling.
 * @throws {VerificationError} CONSISTENCY_PROOF_INVALID
 */
export function verifyConsistency(oldSize: number, newSize: number, proof: readonly Uint8Array[], oldRoot: Uint8Array, newRoot: Uint8Array): void {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || newSize < 0) {
    fail('tree sizes must be non-negative integers');
  }
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE) fail('root hashes must be 32 bytes');
  for (const p of proof) if (p.length !== HASH_SIZE) fail('proof hashes must be 32 bytes');
  if (newSize < oldSize) fail('new tree is smaller than old tree', { oldSize, newSize });
  if (oldSize === newSize) {
    if (proof.length !== 0) fail('proof between equal sizes must be empty');
    if (!bytesEqual(oldRoot, newRoot)) fail('roots of equal sizes differ');
    if (oldSize === 0) fail('consistency from the empty tree is meaningless');
    return;
  }
  if (oldSize === 0) fail('consistency from the empty tree is meaningless');
  // RFC 9162 §2.1.4.2
  if (proof.length === 0) fail('proof is empty');
  const path = isPow2(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) fail('proof is longer than expected');
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('proof is shorter than expected');
  if (!bytesEqual(fr, oldRoot)) fail('old root does not match', { oldSize, newSize });
  if (!bytesEqual(sr, newRoot)) fail('new root does not match', { oldSize, newSize });
}
