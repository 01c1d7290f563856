/**
 * The tiled layout both backends store the log in (C2SP tlog-tiles, see core/merkle/tiles.ts):
 * complete 256-entry bundles and complete "fat" tiles are single rows; only the right edge of the
 * tree (entries after the last complete bundle, nodes of incomplete tiles) is kept row by row, and
 * is repacked into a bundle or tile in the transaction that completes it.
 *
 * Everything here is pure: the row keys, the decoding of stored rows into entries, and the planning
 * of which rows an append writes. The drivers (store/<backend>/) only move rows.
 * @module
 */
import { ConflictError } from '../../core/errors.js';
import { HASH_SIZE } from '../../core/hash.js';
import { FAT_TILE_BYTES, TILE_HEIGHT, TILE_WIDTH, decodeEntryBundle, encodeEntryBundle, rowOffset } from '../../core/merkle/tiles.js';
import type { AppendBatch, BundleTile, StoredEntry } from '../store.js';

/** An empty hash: what a {@link StoredEntry} carries when the store has lost its leaf hash. */
export const EMPTY = Buffer.alloc(0);

/** Row key of tile (level, index) in the `tiles` table: level * 2^40 + index (so tile 0/N is N). */
export function tileId(level: number, index: number): number {
  return level * 2 ** 40 + index;
}

/** The tree size from the largest tail index and the largest bundle index (null: none stored). */
export function sizeFromMax(tail: number | null, bundle: number | null): number {
  return tail !== null ? tail + 1 : bundle === null ? 0 : (bundle + 1) * TILE_WIDTH;
}

/** The 256 leaf hashes of bundle N, as views into its stored level-0 fat tile. */
export function tileLeaves(tile: Buffer): Buffer[] {
  const leaves = new Array<Buffer>(TILE_WIDTH);
  for (let i = 0; i < TILE_WIDTH; i++) leaves[i] = tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  return leaves;
}

/**
 * The entries of stored bundle N with their leaf hashes (`leaves[j]` for entry 256N + j). A full
 * bundle with more data after it has its last entry flagged (the extra data is not part of the
 * log); a short bundle's trailing bytes are a torn entry, which the reader reports as missing.
 */
export function bundleEntries(n: number, data: Buffer, leaves: readonly (Buffer | undefined)[]): StoredEntry[] {
  const { entries, trailingBytes } = decodeEntryBundle(data);
  const items = entries.slice(0, TILE_WIDTH);
  const out: StoredEntry[] = items.map((bytes, j) => ({ index: n * TILE_WIDTH + j, bytes, leafHash: leaves[j] ?? EMPTY }));
  const extra = entries.length - items.length;
  if ((extra > 0 || trailingBytes > 0) && out.length === TILE_WIDTH) {
    const last = out[out.length - 1]!;
    out[out.length - 1] = { ...last, anomaly: `entry bundle ${n} has ${extra} extra record(s) and ${trailingBytes} trailing byte(s)` };
  }
  return out;
}

/** A stored bundle with its level-0 fat tile (if stored), for bulk verification. */
export function bundleTile(index: number, data: Buffer, tile: Buffer | null | undefined): BundleTile {
  const { entries, trailingBytes } = decodeEntryBundle(data);
  return {
    index,
    entries,
    malformed: entries.length !== TILE_WIDTH || trailingBytes !== 0,
    tile: tile?.length === FAT_TILE_BYTES ? tile : undefined,
  };
}

/** A range [lo, hi) of node indices at one tree level. */
export interface NodeRange {
  readonly level: number;
  readonly lo: number;
  readonly hi: number;
}

/** A tail node row. */
export interface NodeRow {
  readonly level: number;
  readonly idx: number;
  readonly hash: Buffer;
}

/**
 * A tail node row taken into a fat tile: its hash as bytes, or as hex (any case), which a driver may
 * read instead (SQLite's hex(): a string costs far less to read back than a buffer per row).
 */
export interface TakenNodeRow {
  readonly level: number;
  readonly idx: number;
  readonly hash: Buffer | string;
}

/** The rows one append inserts, as columns (the shape of PostgreSQL's unnest and of SQLite's multi-row inserts). */
export interface AppendRows {
  readonly bundles: { readonly idx: number[]; readonly data: Buffer[] };
  readonly tailEntries: { readonly idx: number[]; readonly data: Buffer[] };
  readonly tiles: { readonly id: number[]; readonly hashes: Buffer[] };
  readonly tailNodes: { readonly level: number[]; readonly idx: number[]; readonly hash: Buffer[] };
}

/**
 * What an append sequenced at `start` reads and writes. The driver, under its write lock:
 * 1. removes the tail entries in `takeEntries` and the tail nodes in `takeNodes` (rows an earlier
 *    batch wrote into the bundle or tiles this batch completes), returning them;
 * 2. inserts `rows(takenEntries, takenNodes)`, the checkpoint and the sidecar, and commits.
 */
export interface AppendPlan {
  readonly start: number;
  /** The tree size once committed. */
  readonly end: number;
  /** Tail entries [lo, hi) to move into the bundle this batch completes, if any. */
  readonly takeEntries: { readonly lo: number; readonly hi: number } | undefined;
  /** Tail node ranges to move into the tiles this batch completes. */
  readonly takeNodes: readonly NodeRange[];
  /** The rows to insert, given the taken tail entries (in index order) and tail nodes (any order). */
  rows(takenEntries: readonly Buffer[], takenNodes: readonly TakenNodeRow[]): AppendRows;
}

// Leaves under one tile of tile level L: 256^(L + 1) (tree levels stay below 64, tile levels below 8).
const TILE_SPAN = Array.from({ length: 8 }, (_, l) => TILE_WIDTH ** (l + 1));

/**
 * Plans an append whose expected size was read as `start` under the write lock.
 * @throws {ConflictError} LOG_APPEND_CONFLICT when `start` is not `batch.expectedSize`
 */
export function planAppend(batch: AppendBatch, start: number): AppendPlan {
  if (start !== batch.expectedSize) {
    throw new ConflictError('LOG_APPEND_CONFLICT', 'the log grew since this writer last read it', {
      details: { expectedSize: batch.expectedSize, actualSize: start },
    });
  }
  const entries = batch.entries;
  const end = start + entries.length;
  const firstBundle = Math.floor(start / TILE_WIDTH) * TILE_WIDTH;
  const fullEnd = Math.floor(end / TILE_WIDTH) * TILE_WIDTH;
  // Only the bundle holding `start` can have entries of earlier batches (in the tail).
  const takeEntries = firstBundle < start && firstBundle + TILE_WIDTH <= end ? { lo: firstBundle, hi: start } : undefined;

  // Nodes: tiles completed by this batch become one fat row each; the rest go to the node tail.
  // The batch completes tile (L, N) when its last leaf is in the batch: start < (N + 1) * span <= end
  // (`batch.nodes` are every node the batch's entries create, so those are the complete tiles that
  // hold its nodes). Only a tile whose first leaf precedes this batch can hold nodes of earlier
  // batches (at most one per tile level).
  const complete: number[] = [];
  const takeNodes: NodeRange[] = [];
  for (let tileLevel = 0; tileLevel < TILE_SPAN.length && TILE_SPAN[tileLevel]! <= end; tileLevel++) {
    const span = TILE_SPAN[tileLevel]!;
    for (let tileIndex = Math.floor(start / span); tileIndex < Math.floor(end / span); tileIndex++) {
      complete.push(tileId(tileLevel, tileIndex));
      if (tileIndex * span >= start) continue;
      for (let row = 0; row < TILE_HEIGHT; row++) {
        const perRow = TILE_WIDTH >> row;
        takeNodes.push({ level: tileLevel * TILE_HEIGHT + row, lo: tileIndex * perRow, hi: (tileIndex + 1) * perRow });
      }
    }
  }

  const rows = (takenEntries: readonly Buffer[], takenNodes: readonly TakenNodeRow[]): AppendRows => {
    const bundles = { idx: [] as number[], data: [] as Buffer[] };
    for (let b = firstBundle; b < fullEnd; b += TILE_WIDTH) {
      const parts: Buffer[] = b < start ? [...takenEntries] : [];
      for (let i = Math.max(b, start); i < b + TILE_WIDTH; i++) parts.push(entries[i - start]!.bytes);
      bundles.idx.push(b / TILE_WIDTH);
      bundles.data.push(encodeEntryBundle(parts));
    }
    const tailEntries = { idx: [] as number[], data: [] as Buffer[] };
    for (let i = Math.max(start, fullEnd); i < end; i++) {
      tailEntries.idx.push(i);
      tailEntries.data.push(entries[i - start]!.bytes);
    }
    const fats = new Map<number, Buffer>();
    for (const id of complete) fats.set(id, Buffer.alloc(FAT_TILE_BYTES));
    // tilePosition and isTileComplete, inline: this runs for every node of the batch.
    const place = (level: number, index: number, hash: Buffer | string): boolean => {
      const tileLevel = Math.floor(level / TILE_HEIGHT);
      const row = level - tileLevel * TILE_HEIGHT;
      const perRow = TILE_WIDTH >> row;
      const tileIndex = Math.floor(index / perRow);
      if ((tileIndex + 1) * TILE_SPAN[tileLevel]! > end) return false;
      const fat = fats.get(tileId(tileLevel, tileIndex));
      if (fat === undefined) return false;
      const off = (rowOffset(row) + index - tileIndex * perRow) * HASH_SIZE;
      // A stored hash of the wrong length (a damaged row) fills at most its own slot either way.
      if (typeof hash === 'string') fat.write(hash, off, HASH_SIZE, 'hex');
      else fat.set(hash.length === HASH_SIZE ? hash : hash.subarray(0, HASH_SIZE), off);
      return true;
    };
    for (const m of takenNodes) place(m.level, m.idx, m.hash);
    const tailNodes = { level: [] as number[], idx: [] as number[], hash: [] as Buffer[] };
    for (const n of batch.nodes) {
      if (place(n.level, n.index, n.hash)) continue;
      tailNodes.level.push(n.level);
      tailNodes.idx.push(n.index);
      tailNodes.hash.push(n.hash);
    }
    return { bundles, tailEntries, tiles: { id: [...fats.keys()], hashes: [...fats.values()] }, tailNodes };
  };
  return { start, end, takeEntries, takeNodes, rows };
}
