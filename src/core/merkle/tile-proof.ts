/**
 * Proofs from C2SP tlog-tiles hash tiles, for a client that holds only the public tiles of a log
 * (a monitor): which tile holds what a proof needs, and how to compute any complete node from them.
 *
 * Hash tile (L, N) of a tree of size n holds the level-8L hashes with indices [256N, 256N + W), where
 * W = min(256, floor(n / 256^L) - 256N) (a partial tile when W < 256). Any complete node at level
 * 8L + r (0 <= r < 8) is the perfect-subtree hash of 2^r consecutive hashes of one such tile.
 * Pure: the caller supplies a function that fetches a tile.
 * @module
 */
import { EMPTY_ROOT, HASH_SIZE, hashChildren } from '../hash.js';
import { VerificationError } from '../errors.js';
import { foldRight } from './tree.js';
import { nodeSeq, rangeNodes, type NodeId } from './node-id.js';
import { planConsistency, planNodes, resolveProof } from './proof-plan.js';
import { TILE_HEIGHT, TILE_WIDTH } from './tiles.js';

/** One hash tile of a tree: tile level, tile index and width (1..256; 256 is a full tile). */
export interface TileRef {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** Formats a tile index as tlog-tiles path elements (1234067 is x001/x234/067). */
export function formatTileIndex(n: number): string {
  const s = String(n);
  const padded = s.padStart(Math.ceil(s.length / 3) * 3, '0');
  const groups = padded.match(/.{3}/g)!;
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** The URL path of a hash tile (`tile/L/N[.p/W]`), or of an entry bundle when `level` is 'entries'. */
export function tilePath(level: number | 'entries', index: number, width: number): string {
  return `tile/${level}/${formatTileIndex(index)}${width < TILE_WIDTH ? `.p/${width}` : ''}`;
}

/** The width of tile (level, index) in a tree of `treeSize` leaves (0 if the tile does not exist yet). */
export function tileWidth(level: number, index: number, treeSize: number): number {
  const complete = Math.floor(treeSize / TILE_WIDTH ** level);
  return Math.max(0, Math.min(TILE_WIDTH, complete - index * TILE_WIDTH));
}

/** Where the hashes of complete node (level, index) lie: a tile and the range [first, first + count) in it. */
export function tileSpanOfNode(level: number, index: number, treeSize: number): { tile: TileRef; first: number; count: number } {
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const r = level - tileLevel * TILE_HEIGHT;
  const count = 2 ** r;
  const base = index * count;
  const tileIndex = Math.floor(base / TILE_WIDTH);
  const width = tileWidth(tileLevel, tileIndex, treeSize);
  const first = base - tileIndex * TILE_WIDTH;
  if (first + count > width) {
    throw new VerificationError('CONSISTENCY_PROOF_INVALID', `node ${level}/${index} is not complete in a tree of size ${treeSize}`);
  }
  return { tile: { level: tileLevel, index: tileIndex, width }, first, count };
}

/** The hash of a perfect subtree from its 2^r bottom hashes. */
export function perfectSubtreeHash(hashes: readonly Uint8Array[]): Buffer {
  let row: Buffer[] = hashes.map((h) => Buffer.from(h));
  while (row.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < row.length; i += 2) next.push(hashChildren(row[i]!, row[i + 1]!));
    row = next;
  }
  return row[0]!;
}

/** Fetches one hash tile: exactly `width` × 32 bytes. */
export type FetchTile = (tile: TileRef) => Promise<Uint8Array>;

/**
 * The node hashes of one tree size, computed from its hash tiles (each tile fetched once).
 * A tile of the wrong length is refused (TILE_INVALID is the caller's call: here it throws
 * CONSISTENCY_PROOF_INVALID with `details.tile`).
 */
export class TileNodeSource {
  readonly #tiles = new Map<string, Promise<Uint8Array>>();
  /** Tiles fetched so far. */
  fetched = 0;

  constructor(
    readonly treeSize: number,
    readonly fetchTile: FetchTile,
  ) {}

  /** The hashes of tile (level, index) of this tree. */
  tile(level: number, index: number): Promise<Uint8Array> {
    const width = tileWidth(level, index, this.treeSize);
    const key = `${level}/${index}/${width}`;
    let p = this.#tiles.get(key);
    if (!p) {
      p = this.fetchTile({ level, index, width }).then((bytes) => {
        if (bytes.length !== width * HASH_SIZE) {
          throw new VerificationError('CONSISTENCY_PROOF_INVALID', `tile ${tilePath(level, index, width)} has ${bytes.length} bytes, expected ${width * HASH_SIZE}`, {
            details: { tile: tilePath(level, index, width) },
          });
        }
        return bytes;
      });
      this.fetched++;
      this.#tiles.set(key, p);
    }
    return p;
  }

  /** The hash of complete node (level, index). */
  async node(id: NodeId): Promise<Buffer> {
    const span = tileSpanOfNode(id.level, id.index, this.treeSize);
    const bytes = await this.tile(span.tile.level, span.tile.index);
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < span.count; i++) hashes.push(bytes.subarray((span.first + i) * HASH_SIZE, (span.first + i + 1) * HASH_SIZE));
    return perfectSubtreeHash(hashes);
  }

  /** Node hashes keyed by `nodeSeq`. */
  async nodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const hashes = await Promise.all(ids.map((id) => this.node(id)));
    ids.forEach((id, i) => out.set(nodeSeq(id.level, id.index), hashes[i]!));
    return out;
  }

  /** The root of this tree, folded from its complete subtrees (SHA-256 of "" for the empty tree). */
  async root(): Promise<Buffer> {
    if (this.treeSize === 0) return EMPTY_ROOT;
    const ids = rangeNodes(0, this.treeSize);
    const m = await this.nodes(ids);
    return foldRight(ids.map((id) => m.get(nodeSeq(id.level, id.index))!));
  }

  /** RFC 9162 PROOF(oldSize, D[treeSize]) from the tiles. Requires 0 < oldSize < treeSize. */
  async consistencyProof(oldSize: number): Promise<Buffer[]> {
    const plan = planConsistency(oldSize, this.treeSize);
    return resolveProof(plan, await this.nodes(planNodes(plan)));
  }

  /** The leaf hashes [start, end) from the level-0 tiles. */
  async leafHashes(start: number, end: number): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (let t = Math.floor(start / TILE_WIDTH); t * TILE_WIDTH < end; t++) {
      const bytes = await this.tile(0, t);
      const lo = Math.max(start, t * TILE_WIDTH);
      const hi = Math.min(end, t * TILE_WIDTH + bytes.length / HASH_SIZE);
      for (let i = lo; i < hi; i++) out.push(Buffer.from(bytes.subarray((i - t * TILE_WIDTH) * HASH_SIZE, (i - t * TILE_WIDTH + 1) * HASH_SIZE)));
    }
    return out;
  }
}
