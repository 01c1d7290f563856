/**
 * The log engine: sequencing, group commit, signed checkpoints and proofs over a {@link LogStore}.
 *
 * Invariants:
 * - An append resolves only after its entry, the nodes it creates and a signed checkpoint covering
 *   it are durable in one store transaction.
 * - Appending costs O(log n): the engine keeps only the tree's right edge (the frontier) in memory.
 * - Entry times never decrease with the index (so time queries can binary-search).
 * - A writer that finds the log grown by another writer reloads its frontier and re-sequences;
 *   the store's size check under its write lock means two writers never fork the log.
 * @module
 */
import { ConflictError, hasCode } from '../core/errors.js';
import { encodeLeaf } from '../core/hash.js';
import { encodeEntry, formatEntryTime, prepareEvent, type PreparedEvent } from '../core/entry.js';
import { Frontier } from '../core/merkle/tree.js';
import { frontierNodes, nodeSeq } from '../core/merkle/node-id.js';
import { formatCheckpointBody } from '../core/checkpoint.js';
import { signNote, type NoteSigner } from '../core/note.js';
import type { LogStore, StoredCheckpoint, StoredNode } from '../store/store.js';
import { LogReader } from './reader.js';

export type { InclusionProof, ConsistencyProof } from './reader.js';
import { systemClock, type Clock } from './clock.js';

/** Options for {@link Log.open}. */
export interface LogOptions {
  readonly store: LogStore;
  /** Signs every checkpoint. Its name should be the origin. */
  readonly signer: NoteSigner;
  /** The checkpoint origin line: a unique name for this log. */
  readonly origin: string;
  readonly clock?: Clock;
  /** Most entries in one group commit (default 10,000). */
  readonly maxBatchEntries?: number;
  /** Most entry bytes in one group commit (default 16 MiB). */
  readonly maxBatchBytes?: number;
}

/** What an append returns once the entry is durable and covered by a signed checkpoint. */
export interface AppendResult {
  readonly index: number;
  readonly leafHash: Buffer;
  /** The canonical JSON of the entry, as committed. */
  readonly entry: string;
  readonly checkpoint: StoredCheckpoint;
}

interface Pending {
  readonly event: PreparedEvent;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (err: unknown) => void;
}

const MAX_CONFLICT_RETRIES = 32;


/** An open, writable verifiable log. */
export class Log {
  readonly #store: LogStore;
  readonly #signer: NoteSigner;
  readonly #origin: string;
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #frontier: Frontier = Frontier.empty();
  #lastTimeMs = 0;
  #latest: StoredCheckpoint | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;
  readonly #reader: LogReader;

  private constructor(o: LogOptions) {
    this.#store = o.store;
    this.#signer = o.signer;
    this.#origin = o.origin;
    this.#clock = o.clock ?? systemClock;
    this.#maxEntries = Math.max(1, o.maxBatchEntries ?? 10_000);
    this.#maxBytes = Math.max(1, o.maxBatchBytes ?? 16 * 1024 * 1024);
    this.#reader = new LogReader(o.store);
  }

  /** Opens a log over `store`, loading its O(log n) frontier. */
  static async open(options: LogOptions): Promise<Log> {
    const log = new Log(options);
    await log.#reload();
    return log;
  }

  get origin(): string {
    return this.#origin;
  }

  get store(): LogStore {
    return this.#store;
  }

  /** Number of entries this writer knows to be committed. */
  get size(): number {
    return this.#frontier.size;
  }

  async #reload(): Promise<void> {
    const size = await this.#store.treeSize();
    const ids = frontierNodes(size);
    const nodes = await this.#store.getNodes(ids);
    const hashes = ids.map((n) => nodes.get(nodeSeq(n.level, n.index)));
    if (hashes.some((h) => h === undefined)) {
      throw new ConflictError('LOG_APPEND_CONFLICT', 'the log is missing tree nodes; run custos verify', {
        details: { treeSize: size },
      });
    }
    this.#frontier = Frontier.fromNodes(size, hashes as Buffer[]);
    this.#latest = await this.#store.latestCheckpoint();
    // All entries of a batch share the batch's time, which is also its checkpoint's time.
    this.#lastTimeMs = this.#latest?.timeMs ?? 0;
  }

  /**
   * Appends one event. Concurrent calls are batched into one durable transaction with one signed
   * checkpoint; the promise resolves when the entry is durable and covered by that checkpoint.
   * @throws {ValidationError} VALIDATION_FAILED, CANONICAL_JSON_UNSUPPORTED_VALUE (nothing is written)
   * @throws {ConflictError} LOG_LOCKED, LOG_CLOSED
   * @throws {StoreError} STORE_FAILURE
   * @example
   * const { index, checkpoint } = await log.append('AUDIT_EVENT', { resource: 'r-1' });
   */
  append(type: string, payload: unknown): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new ConflictError('LOG_CLOSED', 'the log is closed'));
    let event: PreparedEvent;
    try {
      event = prepareEvent(type, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ event, resolve, reject });
      // Appends made before the next turn of the event loop join the same batch.
      this.#flushing ??= new Promise<void>((done) => setImmediate(done)).then(() => this.#drain());
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        let n = 0;
        let bytes = 0;
        while (n < this.#queue.length && n < this.#maxEntries) {
          bytes += this.#queue[n]!.event.payloadJson.length;
          if (n > 0 && bytes > this.#maxBytes) break;
          n++;
        }
        const batch = this.#queue.splice(0, n);
        try {
          const results = await this.#commit(batch.map((p) => p.event));
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          batch.forEach((p) => p.reject(err));
          // The failure may have left the store ahead of or behind us: reread before the next batch.
          await this.#reload().catch(() => undefined);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #commit(events: readonly PreparedEvent[]): Promise<AppendResult[]> {
    for (let attempt = 0; ; attempt++) {
      const f = this.#frontier.clone();
      const start = f.size;
      const timeMs = Math.max(this.#clock.now(), this.#lastTimeMs);
      const time = formatEntryTime(timeMs);
      const entries: { index: number; bytes: Buffer }[] = [];
      const nodes: StoredNode[] = [];
      const texts: string[] = [];
      const leaves: Buffer[] = [];
      for (let i = 0; i < events.length; i++) {
        const ev = events[i]!;
        const text = encodeEntry(start + i, ev, time);
        const { bytes, leafHash: leaf } = encodeLeaf(text);
        for (const n of f.append(leaf)) nodes.push(n);
        entries.push({ index: start + i, bytes });
        texts.push(text);
        leaves.push(leaf);
      }
      const rootHash = f.root();
      const note = signNote(formatCheckpointBody({ origin: this.#origin, treeSize: f.size, rootHash }), [this.#signer]);
      const checkpoint: StoredCheckpoint = { treeSize: f.size, rootHash, note, timeMs };
      try {
        await this.#store.appendBatch({ expectedSize: start, entries, nodes, checkpoint });
      } catch (err) {
        if (hasCode(err, 'LOG_APPEND_CONFLICT') && attempt < MAX_CONFLICT_RETRIES) {
          await this.#reload();
          continue;
        }
        throw err;
      }
      this.#frontier = f;
      this.#lastTimeMs = timeMs;
      this.#latest = checkpoint;
      return entries.map((e, i) => ({ index: e.index, leafHash: leaves[i]!, entry: texts[i]!, checkpoint }));
    }
  }

  /** Resolves once every append queued so far has settled. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** The latest signed checkpoint this writer committed or loaded. */
  latestCheckpoint(): StoredCheckpoint | undefined {
    return this.#latest;
  }

  /** Read-side operations (entries and proofs) over the same store. */
  get reader(): LogReader {
    return this.#reader;
  }

  /** Waits for pending appends, then refuses new ones. Does not close the store. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }
}
