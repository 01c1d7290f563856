/**
 * RFC 9162 §2.1.3.2: verifying an inclusion proof.
 * @module
 */
import { HASH_SIZE, bytesEqual, hashChildren } from '../hash.js';
import { VerificationError } from '../errors.js';

function fail(message: string, details?: Record<string, unknown>): never {
  throw new VerificationError('INCLUSION_PROOF_INVALID', message, details ? { details } : undefined);
}

/**
 * Computes the root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-4).
 * All inputs are attacker-controlled: sizes, indices and hash lengths are checked.
 * @throws {VerificationError} INCLUSION_PROOF_INVALID
 */
export function rootFromInclusionProof(leafIndex: number, treeSize: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Buffer {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0 || treeSize < 0) {
    fail('leaf index and tree size must be non-negative integers');
  }
  if (leafIndex >= treeSize) fail('leaf index is not below tree size', { leafIndex, treeSize });
  if (leafHash.length !== HASH_SIZE) fail('leaf hash must be 32 bytes');
  for (const p of proof) if (p.length !== HASH_SIZE) fail('proof hashes must be 32 bytes');

  // fn and sn exceed 32 bits for large logs, so shifts are done with arithmetic.
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) fail('proof is longer than expected');
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('proof is shorter than expected');
  return r;
}

/**
 * Verifies that `leafHash` is the leaf at `leafIndex` in the tree of `treeSize` with `rootHash`.
 * @throws {VerificationError} INCLUSION_PROOF_INVALID
 * @example
 * verifyInclusion(5, 8, leafHash, proof, root) // returns, or throws
 */
export function verifyInclusion(leafIndex: number, treeSize: number, leafHash: Uint8Array, proof: readonly Uint8Array[], rootHash: Uint8Array): void {
  if (rootHash.length !== HASH_SIZE) fail('root hash must be 32 bytes');
  const r = rootFromInclusionProof(leafIndex, treeSize, leafHash, proof);
  if (!bytesEqual(r, rootHash)) fail('computed root does not match', { leafIndex, treeSize });
}
