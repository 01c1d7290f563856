/**
 * The worker thread of parallel verification (see verify-log.ts): it checks pages of complete entry
 * bundles against their stored level-0 fat tiles and answers, for each, whether every leaf and
 * interior hash matched and, if so, the tile's root. It reads nothing and decides nothing: the main
 * thread owns the reading, the order, the tree above the tiles, the checkpoints and the findings.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { checkBundleTileInPlace } from '../core/merkle/bundle-check.js';
import { HASH_SIZE } from '../core/hash.js';

/** A page of bundles: `buf` holds each bundle's bytes and its fat tile; `meta` is (tile index, bundle offset, bundle length, tile offset) per bundle. */
export interface TileJob {
  readonly id: number;
  readonly buf: ArrayBuffer;
  readonly meta: Float64Array;
}

/** The answer to a {@link TileJob}: ok[i] is 1 when bundle i checked out, and roots holds its tile root at 32 i. */
export interface TileResult {
  readonly id: number;
  /** The job's buffer, handed back for the next page. */
  readonly buf: ArrayBuffer;
  readonly ok: Uint8Array;
  readonly roots: Uint8Array;
}

/** Checks every bundle of a job (the job's buffer is scratch, see checkBundleTileInPlace). */
export function runTileJob(job: TileJob): TileResult {
  const buf = Buffer.from(job.buf);
  const n = job.meta.length / 4;
  const ok = new Uint8Array(n);
  const roots = new Uint8Array(n * HASH_SIZE);
  for (let i = 0; i < n; i++) {
    const [tileIndex, dataOff, dataLen, tileOff] = [job.meta[4 * i]!, job.meta[4 * i + 1]!, job.meta[4 * i + 2]!, job.meta[4 * i + 3]!];
    if (tileOff < 0) continue;
    const root = checkBundleTileInPlace(buf, dataOff, dataLen, tileOff, tileIndex);
    if (root) {
      ok[i] = 1;
      roots.set(root, i * HASH_SIZE);
    }
  }
  return { id: job.id, buf: job.buf, ok, roots };
}

parentPort?.on('message', (job: TileJob) => {
  const r = runTileJob(job);
  parentPort!.postMessage(r, [r.buf, r.ok.buffer as ArrayBuffer, r.roots.buffer as ArrayBuffer]);
});
