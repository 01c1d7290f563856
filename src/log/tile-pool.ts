/**
 * The worker threads of parallel verification: a small pool that checks pages of complete bundles
 * (see verify-worker.ts) and answers each page with a promise. Bounded: the caller keeps at most a
 * few pages in flight. A worker that fails answers `undefined` for its pages (and every later page),
 * and the caller checks those bundles itself: a broken thread costs speed, never a finding.
 * @module
 */
import { Worker } from 'node:worker_threads';
import type { RawBundle } from '../store/store.js';
import type { TileJob, TileResult } from './verify-worker.js';

// A worker's heap holds little (a page's digests): small limits keep each thread's memory small.
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 64 };

/**
 * Starts one worker: the module beside this one, verify-worker.js, in the built package (dist/, and
 * build/ for the benchmarks). From sources under tsx (the tests), Node 20 does not hand the `--import
 * tsx` loader to workers, so the worker registers tsx itself before importing verify-worker.ts.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./verify-worker.js', import.meta.url), { resourceLimits: RESOURCE_LIMITS });
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = new URL('./verify-worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(source)}))`, { eval: true, resourceLimits: RESOURCE_LIMITS });
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, (r: TileResult | undefined) => void>;
  dead: boolean;
}

/** A pool of verification workers. Close it when done. */
export class TilePool {
  readonly #slots: Slot[] = [];
  #nextId = 0;
  // Page buffers handed back by the workers, reused: allocating 1 MB of external memory per page
  // makes V8 collect the main thread's heap far more often.
  readonly #free: ArrayBuffer[] = [];

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const worker = startWorker();
      const slot: Slot = { worker, pending: new Map(), dead: false };
      worker.on('message', (r: TileResult) => {
        if (this.#free.length < 16) this.#free.push(r.buf);
        const resolve = slot.pending.get(r.id);
        slot.pending.delete(r.id);
        resolve?.(r);
      });
      const fail = () => {
        slot.dead = true;
        for (const resolve of slot.pending.values()) resolve(undefined);
        slot.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', fail);
      this.#slots.push(slot);
    }
  }

  /**
   * Checks a page of bundles on the least busy worker. Resolves with one verdict per bundle of the
   * page (in order), or undefined when no worker could answer.
   */
  check(page: readonly RawBundle[]): Promise<TileResult | undefined> {
    let slot: Slot | undefined;
    for (const s of this.#slots) if (!s.dead && (!slot || s.pending.size < slot.pending.size)) slot = s;
    if (!slot) return Promise.resolve(undefined);
    const job = pack(this.#nextId++, page, this.#free);
    const target = slot;
    return new Promise((resolve) => {
      target.pending.set(job.id, resolve);
      target.worker.postMessage(job, [job.buf, job.meta.buffer as ArrayBuffer]);
    });
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}

/** Copies a page's bundles and tiles into one transferable buffer (the worker uses it as scratch). */
function pack(id: number, page: readonly RawBundle[], free: ArrayBuffer[]): TileJob {
  let size = 0;
  for (const rb of page) if (rb.tile) size += rb.data.length + rb.tile.length;
  // A buffer handed back, if one is large enough; else a new one, with room to spare. Not
  // zero-filled, and not from the shared pool: the whole ArrayBuffer is this page's, to transfer.
  let ab = free.pop();
  while (ab && ab.byteLength < size) ab = free.pop();
  const bytes = ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(Math.ceil((size * 5) / 4));
  const meta = new Float64Array(4 * page.length);
  let off = 0;
  page.forEach((rb, i) => {
    meta[4 * i] = rb.index;
    meta[4 * i + 3] = -1;
    if (!rb.tile) return;
    rb.data.copy(bytes, off);
    meta[4 * i + 1] = off;
    meta[4 * i + 2] = rb.data.length;
    off += rb.data.length;
    rb.tile.copy(bytes, off);
    meta[4 * i + 3] = off;
    off += rb.tile.length;
  });
  return { id, buf: bytes.buffer as ArrayBuffer, meta };
}
