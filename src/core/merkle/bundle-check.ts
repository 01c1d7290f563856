/**
 * The bulk check of one complete entry bundle against its stored level-0 fat tile, on raw bytes:
 * the unit of work that full verification hands to worker threads.
 *
 * It accepts exactly what verification's per-tile fast path accepts: a bundle that decodes into
 * exactly 256 entries with no trailing bytes, each entry claiming its index, each leaf hash
 * (recomputed from the entry bytes) equal to the tile's row 0, and each interior hash (recomputed
 * from its two children, themselves already checked) equal to the tile's. It answers only "all
 * good, and here is the tile's root" or "not all good": naming a defect is the general path's job.
 * @module
 */
import { entryClaimsIndexAt } from '../entry.js';
import { HASH_SIZE, RFC6962_LEAF_PREFIX, RFC6962_NODE_PREFIX } from '../hash.js';
import { sha256Latin1 } from '../crypto.js';
import { FAT_TILE_BYTES, TILE_HEIGHT, TILE_WIDTH, rowOffset } from './tiles.js';

// Entry offsets of the bundle being checked (reused: checks are synchronous).
const entryAt = new Int32Array(TILE_WIDTH);
const entryLen = new Int32Array(TILE_WIDTH);

/**
 * Checks bundle N (the `dataLen` bytes of `buf` at `dataOff`, entries 256N ... 256N+255) against
 * its stored fat tile (the {@link FAT_TILE_BYTES} bytes of `buf` at `tileOff`, which must be at
 * least 1). Returns the tile's root (tree level 8) when everything matches, else undefined.
 *
 * `buf` is scratch, so that every hash is computed in place, without a copy: the byte before each
 * entry (the low byte of its length prefix) is overwritten with the RFC 9162 leaf prefix, and the
 * byte before each pair of children (the last byte of a hash already used) with the node prefix.
 * Pass a copy of the stored bytes, never a buffer someone else reads.
 */
export function checkBundleTileInPlace(buf: Buffer, dataOff: number, dataLen: number, tileOff: number, tileIndex: number): Buffer | undefined {
  if (tileOff < 1 || tileOff + FAT_TILE_BYTES > buf.length) return undefined;
  // Decode first (the length prefixes are about to be overwritten): exactly 256 entries, no more bytes.
  const end = dataOff + dataLen;
  let off = dataOff;
  let n = 0;
  while (off + 2 <= end) {
    const len = (buf[off]! << 8) | buf[off + 1]!;
    if (off + 2 + len > end || n === TILE_WIDTH) return undefined;
    entryAt[n] = off + 2;
    entryLen[n] = len;
    n++;
    off += 2 + len;
  }
  if (n !== TILE_WIDTH || off !== end) return undefined;
  const start = tileIndex * TILE_WIDTH;
  for (let j = 0; j < TILE_WIDTH; j++) if (!entryClaimsIndexAt(buf, entryAt[j]!, entryLen[j]!, start + j)) return undefined;
  // The tile as stored, before any prefix is written into it.
  const stored = buf.toString('latin1', tileOff, tileOff + FAT_TILE_BYTES);
  // The tile recomputed, in the fat tile's order, as one string (a rope of 510 digests) compared with
  // the stored one at the end: the fast path only needs "all equal", and one comparison costs less
  // than 510. Row 0: each leaf from its entry; the rows above: each node from its two stored children
  // (which the comparison also checks).
  const ab = buf.buffer;
  const base = buf.byteOffset;
  let computed = '';
  for (let j = 0; j < TILE_WIDTH; j++) {
    const at = entryAt[j]!;
    buf[at - 1] = RFC6962_LEAF_PREFIX;
    computed += sha256Latin1(new Uint8Array(ab, base + at - 1, entryLen[j]! + 1));
  }
  for (let row = 1; row < TILE_HEIGHT; row++) {
    const below = tileOff + rowOffset(row - 1) * HASH_SIZE;
    for (let k = 0; k < TILE_WIDTH >> row; k++) computed += nodeInPlace(buf, below + 2 * k * HASH_SIZE);
  }
  if (computed !== stored) return undefined;
  return Buffer.from(nodeInPlace(buf, tileOff + rowOffset(TILE_HEIGHT - 1) * HASH_SIZE), 'latin1');
}

// SHA-256(0x01 || the 64 bytes of `buf` at `at`), as latin1, writing the prefix over buf[at - 1]
// (the last byte of a hash already used).
function nodeInPlace(buf: Buffer, at: number): string {
  buf[at - 1] = RFC6962_NODE_PREFIX;
  return sha256Latin1(new Uint8Array(buf.buffer, buf.byteOffset + at - 1, 1 + 2 * HASH_SIZE));
}

let scratchBuf = Buffer.alloc(0);

/** {@link checkBundleTileInPlace} on copies: `data` and `tile` are left as they are. */
export function checkBundleTile(data: Uint8Array, tile: Uint8Array, tileIndex: number): Buffer | undefined {
  if (tile.length !== FAT_TILE_BYTES) return undefined;
  // One byte before the bundle: the tile's first node prefix needs a byte before it even for an empty
  // bundle. The scratch is reused (checks are synchronous): a fresh 66 kB buffer per bundle is
  // external memory that makes V8 collect a large heap far more often.
  if (scratchBuf.length < 1 + data.length + tile.length) scratchBuf = Buffer.allocUnsafeSlow(2 * (1 + data.length + tile.length));
  const scratch = scratchBuf;
  scratch.set(data, 1);
  scratch.set(tile, 1 + data.length);
  return checkBundleTileInPlace(scratch, 1, data.length, 1 + data.length, tileIndex);
}
