/**
 * The storage interface. Each backend (`store/<backend>/`) owns its SQL and migrations;
 * nothing above this file knows which backend it talks to.
 *
 * Invariants every backend keeps:
 * - `appendBatch` is atomic: the entries, their nodes and the checkpoint that covers them are
 *   durable together, or none of them is.
 * - `appendBatch` refuses (LOG_APPEND_CONFLICT) unless the stored tree size equals
 *   `batch.expectedSize`, checked under the backend's write lock, so two writers never fork the log.
 * - Entries, nodes and checkpoints are never updated or deleted.
 * @module
 */

import type { NodeId } from '../core/merkle/node-id.js';

/** An entry as stored: its index, the exact canonical JSON bytes the leaf hash commits to, and columns for queries. */
export interface StoredEntry {
  readonly index: number;
  readonly bytes: Buffer;
  /** The stored leaf hash (RFC 9162: SHA-256(0x00 || bytes)); verification recomputes it. */
  readonly leafHash: Buffer;
  readonly type: string;
  readonly timeMs: number;
}

/** An interior node hash (level >= 1) keyed by its creation order (`nodeSeq`). Leaf hashes live with their entries. */
export interface StoredNode {
  readonly seq: number;
  readonly hash: Buffer;
}

/** A signed checkpoint as stored. The note is the authority; the columns are for lookups. */
export interface StoredCheckpoint {
  readonly treeSize: number;
  readonly rootHash: Buffer;
  readonly note: string;
  readonly timeMs: number;
}

/** One atomic write: a batch of entries, the nodes they create and the checkpoint that covers them. */
export interface AppendBatch {
  readonly expectedSize: number;
  readonly entries: readonly StoredEntry[];
  readonly nodes: readonly StoredNode[];
  readonly checkpoint: StoredCheckpoint;
}

/** Facts about the store for `custos stats`. */
export interface StoreStats {
  readonly treeSize: number;
  readonly bytesOnDisk: number;
  readonly lastEntryTimeMs: number | undefined;
  readonly checkpoints: number;
}

/** Filters for listing entries. */
export interface EntryQuery {
  /** First index to consider (inclusive). */
  readonly fromIndex?: number;
  /** Only entries with this event type. */
  readonly type?: string;
  /** Only entries at or after this time (epoch ms). */
  readonly sinceMs?: number;
  /** Newest first instead of oldest first. */
  readonly descending?: boolean;
  readonly limit?: number;
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
  /** The entry with the largest index, if any. */
  lastEntry(): Promise<StoredEntry | undefined>;
  /** Node hashes (leaves included) keyed by `nodeSeq`; missing nodes are absent from the map. */
  getNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>>;
  getEntry(index: number): Promise<StoredEntry | undefined>;
  queryEntries(query: EntryQuery): Promise<StoredEntry[]>;
  /**
   * Streams entries with index in [from, to) in index order, a page at a time, in bounded memory.
   * Pages (not single rows) keep per-row overhead low on the verification hot path.
   */
  entryPages(from: number, to: number): AsyncIterable<readonly StoredEntry[]>;
  /** Streams interior nodes with seq >= from in seq order, a page at a time. */
  nodePages(from: number): AsyncIterable<readonly StoredNode[]>;
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
  close(): Promise<void>;
}
