/**
 * A sorted Merkle tree over a set of 32-byte values (issue 14: training cohorts), with proofs of
 * inclusion and of non-inclusion.
 *
 * The tree is the RFC 9162 §2.1.1 Merkle tree, with the same domain separation as the log
 * (leaf = SHA-256(0x00 || value), node = SHA-256(0x01 || left || right), empty tree = SHA-256 of
 * the empty string), over the values sorted by their bytes (unsigned, lexicographic: for 32-byte
 * values the order of their lowercase hex) without duplicates. Sorting is what makes absence
 * provable: a value lies strictly between two adjacent leaves (indexes i and i + 1), before the
 * first, after the last, or the tree is empty, and inclusion proofs of those neighbours, with
 * their adjacency, show that nothing else sits in between.
 *
 * What the verifier of a non-inclusion proof trusts: that the tree was built sorted. The set itself
 * (the sorted leaves) is kept as a document whose hash is on the log, so anyone holding it can check
 * the order and the root ({@link checkSortedSet}); the proofs alone cannot.
 * @module
 */
import { VerificationError } from '../errors.js';
import { EMPTY_ROOT, RFC6962_LEAF_PREFIX, bytesEqual, hashChildren, sha256 } from '../hash.js';
import { rootFromInclusionProof } from './inclusion.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** An inclusion proof in the sorted tree: the value is the leaf at `leafIndex`, with its RFC 9162 audit path. */
export interface SortedInclusionProof {
  readonly leafIndex: number;
  /** The audit path, bottom up, lowercase hex. */
  readonly path: readonly string[];
}

/** A neighbour of an absent value: the leaf's value (hex) and its inclusion proof. */
export interface SortedNeighbour extends SortedInclusionProof {
  readonly value: string;
}

/**
 * A non-inclusion proof: the leaves just below (`left`) and just above (`right`) the absent value.
 * Both in a tree where the value falls between two leaves (then `right.leafIndex = left.leafIndex + 1`);
 * only `right` (leaf 0) when it is below every leaf, only `left` (the last leaf) when above; neither
 * when the tree is empty.
 */
export interface SortedNonInclusionProof {
  readonly left?: SortedNeighbour;
  readonly right?: SortedNeighbour;
}

function fail(message: string, details?: Record<string, unknown>): never {
  throw new VerificationError('COHORT_PROOF_INVALID', message, details ? { details } : undefined);
}

/** The leaf hash of a value: SHA-256(0x00 || 32 bytes). */
export function sortedLeafHash(valueHex: string): Buffer {
  if (!HEX64.test(valueHex)) fail('a leaf value must be 64 lowercase hex characters');
  return sha256(Buffer.concat([Buffer.from([RFC6962_LEAF_PREFIX]), Buffer.from(valueHex, 'hex')]));
}

/** The values sorted by their bytes, duplicates removed (lowercase hex sorts as the bytes do). */
export function sortValues(valuesHex: Iterable<string>): string[] {
  const out = [...new Set(valuesHex)];
  for (const v of out) if (!HEX64.test(v)) fail('a leaf value must be 64 lowercase hex characters');
  return out.sort();
}

/**
 * The levels of the tree over leaf hashes, bottom up: level 0 is the leaves; an unpaired last node
 * is carried up unhashed, which gives the RFC 9162 MTH (the split at the largest power of two below n).
 */
function levelsOf(leaves: readonly Buffer[]): Buffer[][] {
  const levels: Buffer[][] = [leaves.slice()];
  while (levels[levels.length - 1]!.length > 1) {
    const below = levels[levels.length - 1]!;
    const up: Buffer[] = [];
    for (let i = 0; i < below.length; i += 2) up.push(i + 1 < below.length ? hashChildren(below[i]!, below[i + 1]!) : below[i]!);
    levels.push(up);
  }
  return levels;
}

/** A sorted tree built over values: its root, and proofs from it. Pure; O(n) memory. */
export class SortedTree {
  /** The sorted values (hex), without duplicates. */
  readonly values: readonly string[];
  readonly #levels: Buffer[][];

  /** Builds the tree over `valuesHex` (sorted and deduplicated here). */
  constructor(valuesHex: Iterable<string>) {
    this.values = Object.freeze(sortValues(valuesHex));
    this.#levels = levelsOf(this.values.map(sortedLeafHash));
  }

  get size(): number {
    return this.values.length;
  }

  /** The root (RFC 9162 MTH); the empty tree's root is SHA-256 of the empty string. */
  get root(): Buffer {
    return this.size === 0 ? Buffer.from(EMPTY_ROOT) : Buffer.from(this.#levels[this.#levels.length - 1]![0]!);
  }

  /** The leaf index of `valueHex`, or -1. */
  indexOf(valueHex: string): number {
    let lo = 0;
    let hi = this.values.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.values[mid]! < valueHex) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.values.length && this.values[lo] === valueHex ? lo : -(lo + 1);
  }

  /** The RFC 9162 audit path of leaf `i`. */
  #path(i: number): string[] {
    const path: string[] = [];
    let k = i;
    for (let l = 0; l < this.#levels.length - 1; l++) {
      const level = this.#levels[l]!;
      const sibling = k ^ 1;
      if (sibling < level.length) path.push(level[sibling]!.toString('hex'));
      k >>= 1;
    }
    return path;
  }

  /** The inclusion proof of `valueHex`, or undefined when it is not a leaf. */
  proveInclusion(valueHex: string): SortedInclusionProof | undefined {
    const i = this.indexOf(valueHex);
    return i < 0 ? undefined : { leafIndex: i, path: this.#path(i) };
  }

  /** The non-inclusion proof of `valueHex`, or undefined when it is a leaf. */
  proveNonInclusion(valueHex: string): SortedNonInclusionProof | undefined {
    if (!HEX64.test(valueHex)) fail('a value must be 64 lowercase hex characters');
    const i = this.indexOf(valueHex);
    if (i >= 0) return undefined;
    const at = -(i + 1); // the first leaf above the value
    const neighbour = (j: number): SortedNeighbour => ({ value: this.values[j]!, leafIndex: j, path: this.#path(j) });
    return { ...(at > 0 ? { left: neighbour(at - 1) } : {}), ...(at < this.size ? { right: neighbour(at) } : {}) };
  }
}

// Attacker-controlled: the index, the path and its hashes are checked before use.
function rootOf(valueHex: string, p: SortedInclusionProof, treeSize: number): Buffer {
  if (!Array.isArray(p.path) || p.path.some((h) => typeof h !== 'string' || !HEX64.test(h))) fail('the audit path must be 64-hex hashes');
  try {
    return rootFromInclusionProof(
      p.leafIndex,
      treeSize,
      sortedLeafHash(valueHex),
      p.path.map((h) => Buffer.from(h, 'hex')),
    );
  } catch (err) {
    if (err instanceof VerificationError) fail(`inclusion proof: ${err.message}`, { leafIndex: p.leafIndex, treeSize });
    throw err;
  }
}

function checkRoot(rootHex: string): Buffer {
  if (typeof rootHex !== 'string' || !HEX64.test(rootHex)) fail('the root must be 64 lowercase hex characters');
  return Buffer.from(rootHex, 'hex');
}

/**
 * Verifies that `valueHex` is the leaf at `proof.leafIndex` of the sorted tree of `treeSize` leaves with root `rootHex`.
 * @throws {VerificationError} COHORT_PROOF_INVALID
 * @example
 * verifySortedInclusion(commitment, { leafIndex: 3, path }, 8, root) // returns, or throws
 */
export function verifySortedInclusion(valueHex: string, proof: SortedInclusionProof, treeSize: number, rootHex: string): void {
  const root = checkRoot(rootHex);
  if (!bytesEqual(rootOf(valueHex, proof, treeSize), root)) fail('the inclusion proof does not lead to the root', { leafIndex: proof.leafIndex, treeSize });
}

/**
 * Verifies that `valueHex` is not a leaf of the sorted tree of `treeSize` leaves with root `rootHex`:
 * its neighbours are leaves (each proof leads to the root), they bracket it strictly, and they are
 * adjacent (indexes i and i + 1), or the first leaf, or the last, or the tree is empty.
 * @throws {VerificationError} COHORT_PROOF_INVALID
 */
export function verifySortedNonInclusion(valueHex: string, proof: SortedNonInclusionProof, treeSize: number, rootHex: string): void {
  const root = checkRoot(rootHex);
  if (!HEX64.test(valueHex)) fail('the value must be 64 lowercase hex characters');
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) fail('the tree size must be a non-negative integer');
  const { left, right } = proof;
  if (left === undefined && right === undefined) {
    if (treeSize !== 0 || !bytesEqual(root, EMPTY_ROOT)) fail('no neighbours given, and the tree is not empty');
    return;
  }
  for (const [name, n] of [
    ['left', left],
    ['right', right],
  ] as const) {
    if (n === undefined) continue;
    if (typeof n.value !== 'string' || !HEX64.test(n.value)) fail(`the ${name} neighbour's value must be 64 lowercase hex characters`);
    if (!bytesEqual(rootOf(n.value, n, treeSize), root)) fail(`the ${name} neighbour's inclusion proof does not lead to the root`, { leafIndex: n.leafIndex, treeSize });
  }
  if (left !== undefined && !(left.value < valueHex)) fail('the left neighbour is not below the value');
  if (right !== undefined && !(valueHex < right.value)) fail('the right neighbour is not above the value');
  if (left !== undefined && right !== undefined) {
    if (right.leafIndex !== left.leafIndex + 1) fail('the neighbours are not adjacent leaves', { left: left.leafIndex, right: right.leafIndex });
  } else if (left !== undefined) {
    if (left.leafIndex !== treeSize - 1) fail('with no right neighbour, the left one must be the last leaf', { leafIndex: left.leafIndex, treeSize });
  } else if (right!.leafIndex !== 0) fail('with no left neighbour, the right one must be the first leaf', { leafIndex: right!.leafIndex });
}

/** Why a set document does not match its root: undefined when it does. */
export function checkSortedSet(valuesHex: readonly unknown[], treeSize: number, rootHex: string): string | undefined {
  if (valuesHex.length !== treeSize) return `${valuesHex.length} values, the log says ${treeSize}`;
  for (let i = 0; i < valuesHex.length; i++) {
    const v = valuesHex[i];
    if (typeof v !== 'string' || !HEX64.test(v)) return `value ${i} is not 64 lowercase hex characters`;
    if (i > 0 && !((valuesHex[i - 1] as string) < v)) return `value ${i} is not above value ${i - 1} (the set must be sorted, without duplicates)`;
  }
  const root = new SortedTree(valuesHex as string[]).root;
  return root.toString('hex') === rootHex ? undefined : 'the values do not hash to the root';
}
