/**
 * Addressing of complete subtrees ("nodes") in an append-only Merkle tree.
 *
 * A node is identified by its `level` (height; leaves are level 0) and its `index`
 * among the nodes of that level. Node (level, index) covers leaves
 * [index * 2^level, (index + 1) * 2^level). Only complete subtrees are nodes; they never change
 * once created, which is why they can be stored and read back for proofs.
 * @module
 */

/** A complete subtree of the log's Merkle tree. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

const TWO32 = 2 ** 32;

/** Number of set bits of a non-negative safe integer. */
export function popcount(x: number): number {
  return popcount32(x >>> 0) + popcount32(Math.floor(x / TWO32) >>> 0);
}

// SWAR bit count of a 32-bit value (Hacker's Delight 5-2).
function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Number of trailing one bits of a non-negative safe integer. */
export function trailingOnes(x: number): number {
  let c = 0;
  while (x % 2 === 1) {
    c++;
    x = (x - 1) / 2;
  }
  return c;
}

/** Largest power of two strictly less than n (n >= 2). RFC 9162 §2.1.1's `k`. */
export function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** True if n is a power of two (n >= 1). */
export function isPow2(n: number): boolean {
  return n >= 1 && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * The position at which node (level, index) is created when leaves are appended one by one,
 * counting every node (leaves included) in creation (post-)order from 0.
 *
 * Leaf j is created after all nodes of the tree of size j, of which there are 2j - popcount(j);
 * node (level, index) is created `level` merges after its last leaf j = (index + 1) * 2^level - 1.
 * Storing nodes under this key gives a dense integer key space that is written strictly in order,
 * which B-trees store compactly, and a verifier can stream nodes in the same order it recomputes them.
 */
export function nodeSeq(level: number, index: number): number {
  const lastLeaf = (index + 1) * 2 ** level - 1;
  return 2 * lastLeaf - popcount(lastLeaf) + level;
}

/** Number of nodes (leaves included) that exist in a tree of `size` leaves: 2n - popcount(n). */
export function nodeCount(size: number): number {
  return 2 * size - popcount(size);
}

/**
 * The complete subtrees whose concatenation is the leaf range [start, start + size), largest first,
 * following the RFC 9162 §2.1.1 split (k = largest power of two < n).
 * `start` must be aligned as it is in every range the RFC recursion produces.
 */
export function rangeNodes(start: number, size: number): NodeId[] {
  const out: NodeId[] = [];
  let p = start;
  let s = size;
  while (s > 0) {
    const k = isPow2(s) ? s : largestPow2Below(s);
    const level = Math.round(Math.log2(k));
    out.push({ level, index: p / k });
    p += k;
    s -= k;
  }
  return out;
}

/** The complete subtrees that make up a tree of `size` leaves: its right edge, or "frontier". */
export function frontierNodes(size: number): NodeId[] {
  return rangeNodes(0, size);
}
