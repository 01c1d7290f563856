/**
 * The C2SP tlog-tiles geometry (https://c2sp.org/tlog-tiles): tiles of 256 hashes and entry bundles
 * of 256 entries. Pure arithmetic and encodings; storage backends use it to lay out the tree.
 *
 * Tile (L, N) holds the hashes of tree level 8L with indices [256N, 256N + 256). Custos stores each
 * complete tile "fat": row 0 is exactly the C2SP tile, followed by the tile's interior rows
 * (levels 8L+1 .. 8L+7: 128, 64, ..., 2 hashes), so a proof never re-hashes a tile.
 * @module
 */
import { HASH_SIZE } from '../hash.js';

/** Hashes per tile row 0 and entries per bundle (C2SP tlog-tiles). */
export const TILE_WIDTH = 256;
/** Tree levels per tile level. */
export const TILE_HEIGHT = 8;
/** Hashes in a fat tile: 256 + 128 + ... + 2. */
export const FAT_TILE_HASHES = 510;
/** Bytes of a fat tile. */
export const FAT_TILE_BYTES = FAT_TILE_HASHES * HASH_SIZE;
/** Largest entry an entry bundle can hold (uint16 length prefix). */
export const MAX_BUNDLE_ENTRY_BYTES = 0xffff;

/** Where node (level, index) lives: tile (tileLevel, tileIndex), row `row`, position `pos` within the row. */
export interface TilePosition {
  readonly tileLevel: number;
  readonly tileIndex: number;
  readonly row: number;
  readonly pos: number;
}

/** The fat-tile position of node (level, index). */
export function tilePosition(level: number, index: number): TilePosition {
  const tileLevel = Math.floor(level / TILE_HEIGHT);
  const row = level - tileLevel * TILE_HEIGHT;
  const perRow = TILE_WIDTH >> row;
  const tileIndex = Math.floor(index / perRow);
  return { tileLevel, tileIndex, row, pos: index - tileIndex * perRow };
}

/** Hash offset of row `row` in a fat tile: 256 + 128 + ... for the rows before it. */
export function rowOffset(row: number): number {
  return 2 * TILE_WIDTH - ((2 * TILE_WIDTH) >> row);
}

/** Byte offset of a node within its fat tile. */
export function fatTileByteOffset(p: TilePosition): number {
  return (rowOffset(p.row) + p.pos) * HASH_SIZE;
}

/** True when tile (tileLevel, tileIndex) is complete in a tree of `treeSize` leaves. */
export function isTileComplete(tileLevel: number, tileIndex: number, treeSize: number): boolean {
  return (tileIndex + 1) * TILE_WIDTH ** (tileLevel + 1) <= treeSize;
}

/** Encodes entries as a C2SP entry bundle: each entry prefixed by its length as a big-endian uint16. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const e of entries) size += 2 + e.length;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, off);
    out.set(e, off + 2);
    off += 2 + e.length;
  }
  return out;
}

/**
 * Decodes an entry bundle into views of its entries. Stops at the first malformed length
 * (a damaged bundle yields fewer entries; callers detect the gap). `trailingBytes` counts what
 * could not be decoded; a well-formed bundle has none.
 */
export function decodeEntryBundle(bundle: Buffer): { entries: Buffer[]; trailingBytes: number } {
  const entries: Buffer[] = [];
  let off = 0;
  while (off + 2 <= bundle.length) {
    const len = bundle.readUInt16BE(off);
    if (off + 2 + len > bundle.length) break;
    entries.push(bundle.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return { entries, trailingBytes: bundle.length - off };
}
