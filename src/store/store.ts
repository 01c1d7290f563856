/**
 * The storage interface. Each backend (`store/<backend>/`) owns its SQL, its physical layout and
 * its migrations; nothing above this file knows which backend it talks to.
 *
 * Invariants every backend keeps:
 * - `appendBatch` is atomic: the entries, their tree nodes and the checkpoint that covers them are
 *   durable together, or none of them is.
 * - `appendBatch` refuses (LOG_APPEND_CONFLICT) unless the stored tree size equals
 *   `batch.expectedSize`, checked under the backend's write lock, so two writers never fork the log.
 * - What was written is never updated or deleted (a backend may repack it, e.g. into tiles,
 *   in the same transaction, byte for byte).
 * @module
 */
import type { NodeId } from '../core/merkle/node-id.js';

/** An entry as stored: its index and the exact canonical JSON bytes the leaf hash commits to. */
export interface StoredEntry {
  readonly index: number;
  readonly bytes: Buffer;
  /**
   * The stored leaf hash (RFC 9162: SHA-256(0x00 || bytes)). Verification recomputes it.
   * Empty when the store has lost it (a damaged store); never trusted.
   */
  readonly leafHash: Buffer;
  /** Set when the store found its container of this entry malformed (e.g. bytes after the last entry of a bundle). */
  readonly anomaly?: string;
}

/** A complete entry bundle with the fat tile of its leaves, for bulk verification. */
export interface BundleTile {
  /** Bundle (and level-0 tile) index N: entries 256N ... 256N+255. */
  readonly index: number;
  /** The entries decoded from the bundle (fewer than 256 if the bundle is damaged). */
  readonly entries: readonly Buffer[];
  /** Set when the bundle holds data that is not an entry, or cannot be fully decoded. */
  readonly malformed: boolean;
  /** The stored fat tile 0/N (16,320 bytes), or undefined if it is missing or the wrong size. */
  readonly tile: Buffer | undefined;
}

/** A complete entry bundle as stored, not decoded, with its stored level-0 fat tile. */
export interface RawBundle {
  /** Bundle (and level-0 tile) index N: entries 256N ... 256N+255. */
  readonly index: number;
  /** The C2SP entry bundle bytes, as stored. */
  readonly data: Buffer;
  /** The stored fat tile 0/N, or undefined if it is missing or the wrong size. */
  readonly tile: Buffer | undefined;
}

/** A tree node (leaf or interior) created by an append. */
export interface StoredNode extends NodeId {
  readonly hash: Buffer;
}

/** A signed checkpoint as stored. The note is the authority; the columns are for lookups. */
export interface StoredCheckpoint {
  readonly treeSize: number;
  readonly rootHash: Buffer;
  readonly note: string;
  readonly timeMs: number;
}

/** An off-ledger document, content-addressed by the SHA-256 (hex) of its bytes (canonical JSON). */
export interface SidecarDocument {
  readonly hash: string;
  readonly kind: string;
  readonly bytes: Buffer;
}

/** A salted commitment's opening, kept off-ledger: SHA-256(salt || value) = commitment. */
export interface SidecarCommitment {
  readonly commitment: string;
  readonly kind: string;
  readonly value: string;
  readonly salt: Buffer;
}

/** A derived-state row (e.g. a policy's current version), written with the event it derives from. */
export interface SidecarState {
  readonly ns: string;
  readonly key: string;
  readonly value: string;
}

/** One atomic write: a batch of entries, every node they create (leaves included) and the checkpoint covering them. */
export interface AppendBatch {
  readonly expectedSize: number;
  readonly entries: readonly { readonly index: number; readonly bytes: Buffer }[];
  readonly nodes: readonly StoredNode[];
  readonly checkpoint: StoredCheckpoint;
  /** Off-ledger writes committed in the same transaction (documents are written once; identical rewrites are ignored). */
  readonly sidecar?: {
    readonly documents: readonly SidecarDocument[];
    readonly commitments: readonly SidecarCommitment[];
    readonly state: readonly SidecarState[];
    /**
     * Erasure: commitments whose openings are deleted in this transaction, after the inserts above
     * (an opening is never deleted without the ERASURE_PERFORMED event that records it). Deleted
     * rows are overwritten where the backend allows it; call {@link LogStore.scrub} after commit.
     */
    readonly erase?: readonly string[];
    /**
     * Erasure of provenance documents: hashes of documents deleted in this transaction, after the
     * inserts above (a later event may store the same bytes again). Scrub after commit as above.
     */
    readonly eraseDocuments?: readonly string[];
  };
}

/** What {@link LogStore.scrub} achieved. */
export interface ScrubReport {
  /** True when no file the backend controls still holds a deleted row's bytes. */
  readonly complete: boolean;
  /** What was done, or what is left and why (e.g. a reader holds an old snapshot). */
  readonly detail: string;
}

/** Facts about the store for `custos stats`. */
export interface StoreStats {
  readonly treeSize: number;
  readonly bytesOnDisk: number;
  readonly checkpoints: number;
}

/** The storage backend of one log. */
export interface LogStore {
  readonly backend: string;
  /** Reads a metadata value (origin, verifier key, ...). */
  getMeta(key: string): Promise<string | undefined>;
  /** Writes metadata values once; refuses to overwrite an existing different value. */
  initMeta(values: Readonly<Record<string, string>>): Promise<void>;
  /** Number of entries stored (the next index). */
  treeSize(): Promise<number>;
  /** Node hashes (leaves included) keyed by `nodeSeq`; missing nodes are absent from the map. */
  getNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>>;
  getEntry(index: number): Promise<StoredEntry | undefined>;
  /**
   * Streams entries with index in [from, to) in index order, a page at a time, in bounded memory.
   * Pages (not single rows) keep per-entry overhead low on the verification and export paths.
   * An entry the store has lost is absent from its page (the caller sees the gap).
   */
  entryPages(from: number, to: number): AsyncIterable<readonly StoredEntry[]>;
  /**
   * Streams complete bundles with index in [from, to) in order, each with its stored level-0 fat
   * tile. Missing bundles are absent (the caller sees the gap).
   */
  bundlePages(from: number, to: number): AsyncIterable<readonly BundleTile[]>;
  /**
   * The bundles of {@link bundlePages}, as stored and not decoded: what verification hands to its
   * worker threads. Optional: without it, verification stays on one thread.
   */
  rawBundlePages?(from: number, to: number): AsyncIterable<readonly RawBundle[]>;
  /** Streams entries with index in [from, to) newest first, a page at a time. */
  entryPagesDescending(from: number, to: number): AsyncIterable<readonly StoredEntry[]>;
  /** Streams all checkpoints in tree-size order, a page at a time. */
  checkpointPages(): AsyncIterable<readonly StoredCheckpoint[]>;
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** The checkpoint for exactly `treeSize`, if one was signed. */
  checkpointAt(treeSize: number): Promise<StoredCheckpoint | undefined>;
  /**
   * Atomically and durably writes a batch.
   * @throws {ConflictError} LOG_APPEND_CONFLICT when the stored size is not `batch.expectedSize`
   * @throws {ConflictError} LOG_LOCKED when another writer holds the log for too long
   */
  appendBatch(batch: AppendBatch): Promise<void>;
  stats(): Promise<StoreStats>;
  /**
   * A consistent read-only view for long reads (verification, export): writers that commit meanwhile
   * are invisible to it. Release it when done.
   */
  readSnapshot(): Promise<{ readonly store: LogStore; release(): Promise<void> }>;

  // ---- off-ledger data (written through AppendBatch.sidecar) --------------------------------
  getDocument(hash: string): Promise<{ readonly kind: string; readonly bytes: Buffer } | undefined>;
  /** Streams all documents, a page at a time. */
  documentPages(): AsyncIterable<readonly SidecarDocument[]>;
  /** The opening of a commitment, unless it was erased. */
  getCommitment(commitment: string): Promise<SidecarCommitment | undefined>;
  /** The commitment already used for a value of a kind (its salt is per value), if any. */
  findCommitment(kind: string, value: string): Promise<SidecarCommitment | undefined>;
  /**
   * {@link LogStore.findCommitment} for a writer about to commit the value again: it may miss a
   * commitment another connection made during the current turn of the event loop (the value then
   * gets a second commitment, as when two writers race on a new value), and in exchange looks up
   * a value never committed without a read.
   */
  reusableCommitment(kind: string, value: string): Promise<SidecarCommitment | undefined>;
  /** Streams all commitment openings, a page at a time. */
  commitmentPages(): AsyncIterable<readonly SidecarCommitment[]>;
  /** Every opening of a value's commitments (one as a rule; two writers racing on a new value may each have made one). */
  findCommitments(kind: string, value: string): Promise<readonly SidecarCommitment[]>;
  /**
   * After an erasure committed: removes the old copies of deleted rows from the store's files
   * (SQLite: WAL checkpoint TRUNCATE; PostgreSQL: VACUUM FULL of `table`, by default the openings). Never throws.
   */
  scrub(table?: 'commitments' | 'documents'): Promise<ScrubReport>;
  /** Writes off-ledger rows without entries, in one transaction (used by migration). */
  writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): Promise<void>;
  getState(ns: string, key: string): Promise<string | undefined>;
  /** All state rows of a namespace. */
  listState(ns: string): Promise<readonly SidecarState[]>;
  close(): Promise<void>;
}
