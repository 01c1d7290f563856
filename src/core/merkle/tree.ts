/**
 * The incremental tree state: the hashes of the complete subtrees on the tree's right edge.
 * Appending a leaf costs O(log n) time and memory whatever the size of the log.
 * @module
 */
import { EMPTY_ROOT, HASH_SIZE, hashChildren } from '../hash.js';
import { InternalError } from '../errors.js';
import { frontierNodes, nodeSeq, type NodeId } from './node-id.js';

/** A node with its hash. */
export interface HashedNode extends NodeId {
  readonly hash: Buffer;
}

/** A node created by an append, with the key under which it is stored. */
export interface CreatedNode extends HashedNode {
  readonly seq: number;
}

/**
 * Folds a list of complete-subtree hashes, largest (leftmost) first, into one hash:
 * H(c1, H(c2, ... H(c[j-1], c[j]))) as in RFC 9162 §2.1.1's MTH recursion.
 */
export function foldRight(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return Buffer.from(EMPTY_ROOT);
  let acc: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) acc = hashChildren(hashes[i]!, acc);
  return acc;
}

/**
 * The right edge of an append-only Merkle tree (a compact range from 0).
 * Pure: no I/O. The log engine persists what `append` returns.
 */
export class Frontier {
  #size: number;
  // Parallel arrays: frontier subtree levels (strictly decreasing) and hashes.
  #levels: number[];
  #hashes: Buffer[];

  private constructor(size: number, levels: number[], hashes: Buffer[]) {
    this.#size = size;
    this.#levels = levels;
    this.#hashes = hashes;
  }

  /** The empty tree. */
  static empty(): Frontier {
    return new Frontier(0, [], []);
  }

  /**
   * Rebuilds the frontier of a tree of `size` leaves from the hashes of `Frontier.nodesFor(size)`.
   */
  static fromNodes(size: number, hashes: readonly Uint8Array[]): Frontier {
    const ids = frontierNodes(size);
    if (ids.length !== hashes.length || hashes.some((h) => h.length !== HASH_SIZE)) {
      throw new InternalError('INTERNAL', 'frontier hashes do not match the tree size');
    }
    return new Frontier(
      size,
      ids.map((n) => n.level),
      hashes.map((h) => Buffer.from(h)),
    );
  }

  /** The nodes whose hashes `fromNodes` needs for a tree of `size` leaves. */
  static nodesFor(size: number): NodeId[] {
    return frontierNodes(size);
  }

  get size(): number {
    return this.#size;
  }

  /** A copy that can be advanced without changing this one. */
  clone(): Frontier {
    return new Frontier(this.#size, [...this.#levels], [...this.#hashes]);
  }

  /**
   * Appends one leaf hash. Returns the nodes it creates (the leaf, then each merged parent),
   * in creation order, keyed by `nodeSeq`.
   */
  append(leafHash: Buffer): CreatedNode[] {
    const created: CreatedNode[] = [];
    this.#push(leafHash, created);
    return created;
  }

  /**
   * Appends one leaf hash, pushing the nodes it creates (the leaf, then each merged parent) onto
   * `out` without a key or an array of its own: the log engine's hot path (one call per entry).
   */
  appendTo(leafHash: Buffer, out: HashedNode[]): void {
    let index = this.#size;
    out.push({ level: 0, index, hash: leafHash });
    let level = 0;
    let hash = leafHash;
    const levels = this.#levels;
    const hashes = this.#hashes;
    while (levels.length > 0 && levels[levels.length - 1] === level) {
      hash = hashChildren(hashes.pop()!, hash);
      levels.pop();
      level++;
      index = Math.floor(index / 2);
      out.push({ level, index, hash });
    }
    levels.push(level);
    hashes.push(hash);
    this.#size++;
  }

  /** Appends one leaf hash without listing the nodes it creates (for scans that only need the root). */
  push(leafHash: Buffer): void {
    this.#push(leafHash, undefined);
  }

  #push(leafHash: Buffer, created: CreatedNode[] | undefined): void {
    const leafIndex = this.#size;
    created?.push({ level: 0, index: leafIndex, seq: nodeSeq(0, leafIndex), hash: leafHash });
    let level = 0;
    let hash = leafHash;
    let index = leafIndex;
    while (this.#levels.length > 0 && this.#levels[this.#levels.length - 1] === level) {
      const left = this.#hashes.pop()!;
      this.#levels.pop();
      hash = hashChildren(left, hash);
      level++;
      index = Math.floor(index / 2);
      created?.push({ level, index, seq: nodeSeq(level, index), hash });
    }
    this.#levels.push(level);
    this.#hashes.push(hash);
    this.#size++;
  }

  /** The RFC 9162 Merkle tree hash of the current tree. */
  root(): Buffer {
    return foldRight(this.#hashes);
  }

  /**
   * The root of this tree followed by a range whose own fold is `rightFold` (the hash of the
   * complete subtrees to the right of this frontier, folded). Used to combine a tree of whole
   * tiles with a partial tile.
   */
  rootWith(rightFold: Buffer): Buffer {
    return foldRight([...this.#hashes, rightFold]);
  }
}

/** RFC 9162 MTH of a list of leaf hashes (for tests and small trees). */
export function computeRoot(leafHashes: readonly Buffer[]): Buffer {
  const f = Frontier.empty();
  for (const h of leafHashes) f.append(h);
  return f.root();
}
