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
import { LeafEncoder } from '../core/hash.js';
import { entryEncoder, formatEntryTime, prepareEvent, type PreparedEvent } from '../core/entry.js';
import { Frontier } from '../core/merkle/tree.js';
import { frontierNodes, nodeSeq } from '../core/merkle/node-id.js';
import { formatCheckpointBody, openCheckpoint } from '../core/checkpoint.js';
import { signNote, type NoteSigner, type NoteVerifier } from '../core/note.js';
import { EMPTY_ROOT, bytesEqual } from '../core/hash.js';
import { VerificationError } from '../core/errors.js';
import { VerifiedScan } from './verified-scan.js';
import type { AppendBatch, LogStore, SidecarCommitment, SidecarDocument, SidecarState, StoredCheckpoint, StoredNode } from '../store/store.js';
import { LogReader, type SidecarReader } from './reader.js';
import { verifyLog, type VerifyLogOptions, type VerifyReport } from './verify-log.js';

export type { LogSource, LogView, ScrubReport, SidecarCommitment, SidecarDocument, SidecarReader } from './reader.js';
export { logView } from './reader.js';

export type { InclusionProof, ConsistencyProof } from './reader.js';
import { systemClock, type Clock } from './clock.js';

/** Options for {@link Log.open}. */
export interface LogOptions {
  readonly store: LogStore;
  /** Signs every checkpoint. Its name should be the origin. */
  readonly signer: NoteSigner;
  /** The checkpoint origin line: a unique name for this log. */
  readonly origin: string;
  /**
   * The verifier of `signer` (default: derived from the signer: Ed25519 signatures are
   * deterministic, so a signature is checked by signing again). Stored checkpoints are trusted
   * only if they verify under it.
   */
  readonly verifier?: NoteVerifier;
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

/** Where and when an entry is being sequenced: given to a {@link Decide} callback. */
export interface SequencingContext {
  /** The index the entry will have. */
  readonly index: number;
  /** The log's time for this batch (epoch ms): the entry's time, and the time to decide at. */
  readonly timeMs: number;
  /** Identifies one attempt at committing one batch; a retried batch gets a new id. */
  readonly batchId: number;
}

/** Off-ledger writes committed in the same transaction as the entry. */
export interface Sidecar {
  readonly documents?: readonly SidecarDocument[];
  readonly commitments?: readonly SidecarCommitment[];
  readonly state?: readonly SidecarState[];
  /** Commitments whose openings are deleted in the same transaction (erasure). */
  readonly erase?: readonly string[];
  /** Hashes of documents deleted in the same transaction (erasure), after the batch's inserts. */
  readonly eraseDocuments?: readonly string[];
}

/** What a {@link Decide} callback returns: the event to append, and what to write with it. */
export interface Decided {
  readonly type: string;
  readonly payload: unknown;
  readonly sidecar?: Sidecar;
  /** Called synchronously, in log order, once the batch holding this entry is committed. */
  readonly onCommitted?: () => void;
}

/**
 * Computes an event at the moment it is sequenced, so that a decision (a consent check, say) is
 * serialized with every append before it. Must be synchronous and must not throw for a refusal:
 * a refusal is an event too. If it throws, that append fails and takes no index.
 */
export type Decide = (ctx: SequencingContext) => Decided;

interface Pending {
  readonly event: PreparedEvent | Decide;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (err: unknown) => void;
}

const MAX_CONFLICT_RETRIES = 32;

/** A batch sequenced by Log#sequence (batch and checkpoint undefined when no input took an index). */
interface Sequenced {
  readonly f: Frontier;
  readonly timeMs: number;
  /** Per input: its position in `entries`, or the Error its decide callback threw. */
  readonly slots: readonly (number | Error)[];
  readonly entries: readonly { readonly index: number; readonly bytes: Buffer }[];
  readonly leaves: readonly Buffer[];
  readonly texts: readonly string[];
  readonly committed: readonly (() => void)[];
  readonly batch: AppendBatch | undefined;
  readonly checkpoint: StoredCheckpoint | undefined;
}

/** A verifier for an Ed25519 signer's own signatures (RFC 8032 signatures are deterministic). */
export function verifierOfSigner(signer: NoteSigner): NoteVerifier {
  return Object.freeze({ name: signer.name, keyId: signer.keyId, verify: (message: Uint8Array, signature: Uint8Array) => bytesEqual(signer.sign(message), signature) });
}

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
  #batchIds = 0;
  readonly #reloadListeners: (() => Promise<void>)[] = [];
  readonly #commitListeners: ((checkpoint: StoredCheckpoint) => void)[] = [];
  readonly #reader: LogReader;
  readonly #verifier: NoteVerifier;
  #scan: VerifiedScan | undefined;

  private constructor(o: LogOptions) {
    this.#store = o.store;
    this.#signer = o.signer;
    this.#origin = o.origin;
    this.#clock = o.clock ?? systemClock;
    this.#maxEntries = Math.max(1, o.maxBatchEntries ?? 10_000);
    this.#maxBytes = Math.max(1, o.maxBatchBytes ?? 16 * 1024 * 1024);
    this.#reader = new LogReader(o.store);
    this.#verifier = o.verifier ?? verifierOfSigner(o.signer);
  }

  /**
   * The one verified scan of this log (shared by everything that derives state from it: tokens,
   * policy heads). See {@link VerifiedScan}.
   */
  get scan(): VerifiedScan {
    this.#scan ??= new VerifiedScan(this.#store, this.#verifier, this.#origin);
    return this.#scan;
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

  /**
   * The log's signing key, for the other formats this log signs about itself: the DSSE envelopes
   * of offline bundles and in-toto exports (src/service/bundle.ts). Never exported or printed.
   */
  get signer(): NoteSigner {
    return this.#signer;
  }

  /** The off-ledger sidecar (documents, commitments, derived state): see {@link SidecarReader}. */
  get sidecar(): SidecarReader {
    return this.#store;
  }

  /** Number of entries this writer knows to be committed. */
  get size(): number {
    return this.#frontier.size;
  }

  // Loads the frontier at the latest checkpoint, checked against its signature: the engine never
  // signs over stored nodes (or entry rows beyond the checkpoint) the log's key did not sign.
  async #reload(): Promise<void> {
    const latest = await this.#store.latestCheckpoint();
    let size = 0;
    let root: Buffer | undefined;
    if (latest) {
      try {
        const cp = openCheckpoint(latest.note, [this.#verifier], this.#origin);
        size = cp.treeSize;
        root = cp.rootHash;
      } catch (err) {
        throw new VerificationError('LOG_INTEGRITY', `the latest stored checkpoint does not verify under the log's key (${(err as Error).message}); run custos verify`);
      }
    }
    const ids = frontierNodes(size);
    const nodes = await this.#store.getNodes(ids);
    const hashes = ids.map((n) => nodes.get(nodeSeq(n.level, n.index)));
    if (hashes.some((h) => h === undefined)) {
      throw new ConflictError('LOG_APPEND_CONFLICT', 'the log is missing tree nodes; run custos verify', {
        details: { treeSize: size },
      });
    }
    const frontier = Frontier.fromNodes(size, hashes as Buffer[]);
    if (root && !bytesEqual(frontier.root(), root)) {
      throw new VerificationError('LOG_INTEGRITY', 'the stored tree does not match the signed checkpoint; run custos verify', { details: { treeSize: size } });
    }
    this.#frontier = frontier;
    for (const listener of this.#reloadListeners) await listener();
    this.#latest = latest;
    // All entries of a batch share the batch's time, which is also its checkpoint's time.
    // The empty tree's checkpoint (size 0) covers no entry: it does not bound entry times.
    this.#lastTimeMs = this.#latest && this.#latest.treeSize > 0 ? this.#latest.timeMs : 0;
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
    let event: PreparedEvent;
    try {
      event = prepareEvent(type, payload);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(event);
  }

  /**
   * Appends an event computed at sequencing time by `decide` (see {@link Decide}), with its
   * off-ledger writes in the same transaction. Resolves like {@link Log.append}.
   */
  appendDecided(decide: Decide): Promise<AppendResult> {
    return this.#enqueue(decide);
  }

  #enqueue(event: PreparedEvent | Decide): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new ConflictError('LOG_CLOSED', 'the log is closed'));
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
          const ev = this.#queue[n]!.event;
          bytes += typeof ev === 'function' ? 1024 : ev.payloadJson.length;
          if (n > 0 && bytes > this.#maxBytes) break;
          n++;
        }
        const batch = this.#queue.splice(0, n);
        try {
          const results = await this.#commit(batch.map((p) => p.event));
          batch.forEach((p, i) => {
            const r = results[i]!;
            if (r instanceof Error) p.reject(r);
            else p.resolve(r);
          });
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

  // Returns, per input, its result or the Error its decide callback threw (that input took no index).
  async #commit(events: readonly (PreparedEvent | Decide)[]): Promise<(AppendResult | Error)[]> {
    for (let attempt = 0; ; attempt++) {
      let s: Sequenced = this.#sequence(events);
      if (!s.batch) return s.slots as Error[];
      try {
        // A store that shares its write lock with other processes may find, under that lock, that
        // another writer appended since: it then has this writer reread the log and sequence the
        // same events again (decisions included) without letting go of the lock, so the retry
        // cannot lose again (see store.ts Resequence).
        await this.#store.appendBatch(s.batch, async () => {
          await this.#reload();
          s = this.#sequence(events);
          return s.batch;
        });
      } catch (err) {
        if (hasCode(err, 'LOG_APPEND_CONFLICT') && attempt < MAX_CONFLICT_RETRIES) {
          await this.#reload();
          continue;
        }
        throw err;
      }
      if (!s.batch || !s.checkpoint) return s.slots as Error[];
      const { f, timeMs, checkpoint, slots, entries, leaves, texts, committed } = s;
      this.#frontier = f;
      this.#lastTimeMs = timeMs;
      this.#latest = checkpoint;
      // In log order, before any later batch is sequenced: decisions see every committed change.
      for (const fn of committed) fn();
      for (const listener of this.#commitListeners) {
        try {
          listener(checkpoint);
        } catch {
          // A listener must not fail an append that is already durable.
        }
      }
      return slots.map((slot) => (typeof slot === 'number' ? { index: entries[slot]!.index, leafHash: leaves[slot]!, entry: texts[slot]!, checkpoint } : slot));
    }
  }

  // Sequences `events` after this writer's frontier: runs the decide callbacks, encodes and hashes
  // the entries, signs the checkpoint. `batch` is undefined when every decide callback threw.
  #sequence(events: readonly (PreparedEvent | Decide)[]): Sequenced {
    const batchId = ++this.#batchIds;
    const f = this.#frontier.clone();
    const start = f.size;
    const timeMs = Math.max(this.#clock.now(), this.#lastTimeMs);
    const encodeEntry = entryEncoder(formatEntryTime(timeMs));
    const entries: { index: number; bytes: Buffer }[] = [];
    const nodes: StoredNode[] = [];
    const texts: string[] = [];
    const leaves: Buffer[] = [];
    const slots: (number | Error)[] = [];
    const committed: (() => void)[] = [];
    const documents: SidecarDocument[] = [];
    const docHashes = new Set<string>();
    const commitments: SidecarCommitment[] = [];
    const state: SidecarState[] = [];
    const erase: string[] = [];
    const eraseDocuments: string[] = [];
    // UTF-16 units of the entries (their UTF-8 size when ASCII), plus one prefix byte each.
    let units = 0;
    for (const input of events) {
      const index = start + texts.length;
      let ev: PreparedEvent;
      if (typeof input === 'function') {
        try {
          const d = input({ index, timeMs, batchId });
          ev = prepareEvent(d.type, d.payload);
          // A document is written once per batch (a service sends the same pipeline and model
          // with every request).
          if (d.sidecar?.documents) {
            for (const doc of d.sidecar.documents) {
              if (docHashes.has(doc.hash)) continue;
              docHashes.add(doc.hash);
              documents.push(doc);
            }
          }
          if (d.sidecar?.commitments) commitments.push(...d.sidecar.commitments);
          if (d.sidecar?.state) state.push(...d.sidecar.state);
          if (d.sidecar?.erase) erase.push(...d.sidecar.erase);
          if (d.sidecar?.eraseDocuments) eraseDocuments.push(...d.sidecar.eraseDocuments);
          if (d.onCommitted) committed.push(d.onCommitted);
        } catch (err) {
          slots.push(err instanceof Error ? err : new Error(String(err)));
          continue;
        }
      } else {
        ev = input;
      }
      const text = encodeEntry(index, ev);
      slots.push(texts.length);
      texts.push(text);
      units += text.length + 1;
    }
    const base = { f, timeMs, slots, entries, leaves, texts, committed };
    if (texts.length === 0) return { ...base, batch: undefined, checkpoint: undefined };
    // All entry bytes in one buffer of the batch's size (more only for non-ASCII text).
    const leafEncoder = new LeafEncoder(units);
    for (let i = 0; i < texts.length; i++) {
      const bytes = leafEncoder.encode(texts[i]!);
      const leaf = leafEncoder.lastLeafHash;
      f.appendTo(leaf, nodes);
      entries.push({ index: start + i, bytes });
      leaves.push(leaf);
    }
    const rootHash = f.root();
    const note = signNote(formatCheckpointBody({ origin: this.#origin, treeSize: f.size, rootHash }), [this.#signer]);
    const checkpoint: StoredCheckpoint = { treeSize: f.size, rootHash, note, timeMs };
    const sidecar =
      documents.length + commitments.length + state.length + erase.length + eraseDocuments.length > 0
        ? { documents, commitments, state, ...(erase.length > 0 ? { erase } : {}), ...(eraseDocuments.length > 0 ? { eraseDocuments } : {}) }
        : undefined;
    const batch: AppendBatch = { expectedSize: start, entries, nodes, checkpoint, ...(sidecar ? { sidecar } : {}) };
    return { ...base, batch, checkpoint };
  }

  /**
   * Signs the empty tree's checkpoint (size 0, root SHA-256 of the empty string, RFC 9162 §2.1.1)
   * when the log is empty and has none yet: C2SP tlog-tiles serves a checkpoint from the start.
   * `custos init` calls it; so does every writable open of an empty log made before this existed.
   * Returns whether it signed one. Two writers racing here both end with a checkpoint of size 0.
   */
  async signEmptyCheckpoint(): Promise<boolean> {
    if (this.#latest || this.#frontier.size !== 0) return false;
    const timeMs = this.#clock.now();
    const note = signNote(formatCheckpointBody({ origin: this.#origin, treeSize: 0, rootHash: EMPTY_ROOT }), [this.#signer]);
    const checkpoint: StoredCheckpoint = { treeSize: 0, rootHash: EMPTY_ROOT, note, timeMs };
    try {
      await this.#store.appendBatch({ expectedSize: 0, entries: [], nodes: [], checkpoint });
    } catch (err) {
      // Another writer appended or signed meanwhile: take what it wrote.
      await this.#reload();
      if (this.#latest) return false;
      throw err;
    }
    this.#latest = checkpoint;
    return true;
  }

  /** Resolves once every append queued so far has settled. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** The latest signed checkpoint this writer committed or loaded. */
  latestCheckpoint(): StoredCheckpoint | undefined {
    return this.#latest;
  }

  /**
   * Registers a listener run whenever this writer rereads the log because another writer grew it
   * (state derived from the log must be reread too before anything more is sequenced).
   */
  onReload(listener: () => Promise<void>): void {
    this.#reloadListeners.push(listener);
  }

  /**
   * Registers a listener told, synchronously and in log order, of every checkpoint this writer signs
   * and commits. It must not block: work it starts runs after the append has resolved, and an error
   * it throws is ignored (e.g. witness collection: appends never wait for witnesses).
   */
  onCommit(listener: (checkpoint: StoredCheckpoint) => void): () => void {
    this.#commitListeners.push(listener);
    return () => {
      const i = this.#commitListeners.indexOf(listener);
      if (i >= 0) this.#commitListeners.splice(i, 1);
    };
  }

  /**
   * Writes derived-state rows (upserts by namespace and key) in one transaction, without an entry:
   * for off-ledger state that is not derived from one event (e.g. witness cosignatures).
   * @throws {StoreError} STORE_FAILURE
   */
  putState(rows: readonly SidecarState[]): Promise<void> {
    return this.#store.writeSidecar({ documents: [], commitments: [], state: rows });
  }

  /** Read-side operations (entries and proofs) over the same store. */
  get reader(): LogReader {
    return this.#reader;
  }

  /**
   * Verifies the whole stored log against `verifiers` (a full streaming check over one snapshot:
   * see {@link verifyLog}); defects are findings, not exceptions.
   */
  verify(options: Omit<VerifyLogOptions, 'store'>): Promise<VerifyReport> {
    return verifyLog({ ...options, store: this.#store });
  }

  /** Waits for pending appends, then refuses new ones. Does not close the store. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }
}
