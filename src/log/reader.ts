/**
 * Read-side operations on a log: entries, inclusion and consistency proofs. Needs no signing key,
 * so auditors and read-only servers use it directly.
 * @module
 */
import { NotFoundError, StoreError, ValidationError, hasCode } from '../core/errors.js';
import { frontierNodes, nodeSeq } from '../core/merkle/node-id.js';
import { planConsistency, planInclusion, planNodes, resolveProof } from '../core/merkle/proof-plan.js';
import { verifyConsistency } from '../core/merkle/consistency.js';
import { verifyInclusion } from '../core/merkle/inclusion.js';
import { peekEntry } from '../core/entry.js';
import type { NodeId } from '../core/merkle/node-id.js';
import type { LogStore, StoreStats, StoredCheckpoint, StoredEntry } from '../store/store.js';

/** An inclusion proof of one entry against a tree size. */
export interface InclusionProof {
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly leafHash: Buffer;
  readonly rootHash: Buffer;
  readonly proof: Buffer[];
  /** The signed checkpoint for `treeSize`, when one was signed at that size. */
  readonly checkpoint: StoredCheckpoint | undefined;
}

/** A consistency proof between two tree sizes. */
export interface ConsistencyProof {
  readonly oldSize: number;
  readonly newSize: number;
  readonly oldRoot: Buffer;
  readonly newRoot: Buffer;
  readonly proof: Buffer[];
  readonly oldCheckpoint: StoredCheckpoint | undefined;
  readonly newCheckpoint: StoredCheckpoint | undefined;
}

// A node a proof needs is missing from the store: the store is damaged (run custos verify).
function damagedIfMissing<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (hasCode(err, 'INTERNAL')) throw new StoreError('STORE_CORRUPT', 'a tree node needed for this proof is missing; run custos verify', { cause: err });
    throw err;
  }
}

function rangeError(message: string, details: Record<string, unknown>): ValidationError {
  return new ValidationError('INDEX_OUT_OF_RANGE', message, { details });
}

/** Row types of the sidecar and the entry pages, for the layers above the log. */
export type { ScrubReport, SidecarCommitment, SidecarDocument, StoredEntry } from '../store/store.js';

/**
 * The off-ledger sidecar as the service layer sees it: documents, salted commitments and derived
 * state rows, plus the scrub an erasure runs. Everything else about the store stays behind the log.
 */
export type SidecarReader = Pick<
  LogStore,
  'getDocument' | 'documentPages' | 'getCommitment' | 'findCommitment' | 'reusableCommitment' | 'findCommitments' | 'commitmentPages' | 'getState' | 'listState' | 'scrub'
>;

/**
 * A log as the service layer reads it: entries and proofs ({@link LogReader}) and the off-ledger
 * sidecar. An open {@link Log} is one; {@link logView} makes one over a store (read-only tools).
 */
export interface LogView {
  readonly reader: LogReader;
  readonly sidecar: SidecarReader;
}

/** What the read-side service functions accept: a log view (an open Log), or a store to view. */
export type LogSource = LogView | LogStore;

/** The {@link LogView} of a source: itself if it is one, else a reader and the sidecar over the store. */
export function logView(source: LogSource): LogView {
  if ('reader' in source && 'sidecar' in source) return source;
  return { reader: new LogReader(source), sidecar: source };
}

/** Reads entries and builds proofs from a {@link LogStore} in O(log n) node reads. */
export class LogReader {
  readonly #store: LogStore;

  constructor(store: LogStore) {
    this.#store = store;
  }

  /**
   * Entries in the store (possibly more than the latest checkpoint covers, if the store was
   * edited; see {@link LogReader.latestCheckpoint}).
   */
  size(): Promise<number> {
    return this.#store.treeSize();
  }

  /**
   * A consistent view of the log and its sidecar at one moment (a read snapshot of the store), for
   * checks that read both in several passes. Release it when done.
   */
  async snapshot(): Promise<LogView & { release(): Promise<void> }> {
    const snap = await this.#store.readSnapshot();
    return { reader: new LogReader(snap.store), sidecar: snap.store, release: () => snap.release() };
  }

  /** Pages of stored entries in `[from, to)`, oldest first (verification, export, scans). */
  entryPages(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    return this.#store.entryPages(from, to);
  }

  /** Pages of stored entries in `[from, to)`, newest first (the explorer's recent windows). */
  entryPagesDescending(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    return this.#store.entryPagesDescending(from, to);
  }

  /** Stored tree nodes by id (tile serving). */
  getNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    return this.#store.getNodes(ids);
  }

  /** The latest checkpoint in the store (possibly newer than this process's writer knows). */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#store.latestCheckpoint();
  }

  /** A log metadata value (`origin`, `verifier_key`, `format`). */
  meta(key: string): Promise<string | undefined> {
    return this.#store.getMeta(key);
  }

  /** Size on disk and counts, for metrics and the explorer. */
  stats(): Promise<StoreStats> {
    return this.#store.stats();
  }

  /**
   * Reads entry `index`.
   * @throws {ValidationError} INDEX_OUT_OF_RANGE
   * @throws {NotFoundError} ENTRY_NOT_FOUND when the store lacks an entry below its size
   */
  async getEntry(index: number): Promise<StoredEntry> {
    const size = await this.#store.treeSize();
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw rangeError(`entry index ${index} is out of range (log has ${size} entries)`, { index, treeSize: size });
    }
    const e = await this.#store.getEntry(index);
    if (!e) throw new NotFoundError('ENTRY_NOT_FOUND', `entry ${index} is missing from the store`, { details: { index } });
    return e;
  }

  /**
   * An inclusion proof for entry `leafIndex` in the tree of `treeSize` (default: the latest
   * checkpoint's size). The proof is verified before it is returned.
   * @throws {ValidationError} INDEX_OUT_OF_RANGE
   * @throws {VerificationError} INCLUSION_PROOF_INVALID when the stored tree is damaged
   */
  async inclusionProof(leafIndex: number, treeSize?: number): Promise<InclusionProof> {
    const latest = await this.#store.latestCheckpoint();
    const size = treeSize ?? latest?.treeSize ?? 0;
    // Checkpoints are only written together with their entries, so the latest one bounds the log.
    const known = latest?.treeSize ?? 0;
    const stored = size > known ? await this.#store.treeSize() : known;
    if (!Number.isSafeInteger(size) || size < 1 || size > stored) {
      throw rangeError(`tree size ${size} is out of range (log has ${stored} entries)`, { treeSize: size, stored });
    }
    if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= size) {
      throw rangeError(`entry index ${leafIndex} is out of range for tree size ${size}`, { leafIndex, treeSize: size });
    }
    const plan = planInclusion(leafIndex, size);
    const checkpoint = latest?.treeSize === size ? latest : await this.#store.checkpointAt(size);
    const leafId = { level: 0, index: leafIndex };
    const ids = planNodes(checkpoint ? [...plan, [leafId]] : [...plan, [leafId], frontierNodes(size)]);
    const nodes = await this.#store.getNodes(ids);
    const proof = damagedIfMissing(() => resolveProof(plan, nodes));
    const rootHash = checkpoint?.rootHash ?? damagedIfMissing(() => resolveProof([frontierNodes(size)], nodes)[0]!);
    const leafHash = nodes.get(nodeSeq(0, leafIndex));
    if (!leafHash) {
      throw new NotFoundError('ENTRY_NOT_FOUND', `entry ${leafIndex} is missing from the store`, { details: { leafIndex } });
    }
    // Proving what we serve: a damaged store fails here instead of handing out a bad proof.
    verifyInclusion(leafIndex, size, leafHash, proof, rootHash);
    return { leafIndex, treeSize: size, leafHash, rootHash, proof, checkpoint };
  }

  /**
   * A consistency proof from `oldSize` to `newSize` (RFC 9162 §2.1.4), verified before it is returned.
   * @throws {ValidationError} INDEX_OUT_OF_RANGE
   */
  async consistencyProof(oldSize: number, newSize: number): Promise<ConsistencyProof> {
    const latest = await this.#store.latestCheckpoint();
    const known = latest?.treeSize ?? 0;
    const stored = Number.isSafeInteger(newSize) && newSize > known ? await this.#store.treeSize() : known;
    if (!Number.isSafeInteger(newSize) || newSize < 1 || newSize > stored) {
      throw rangeError(`tree size ${newSize} is out of range (log has ${stored} entries)`, { newSize, stored });
    }
    if (!Number.isSafeInteger(oldSize) || oldSize < 1 || oldSize > newSize) {
      throw rangeError(`old size must be between 1 and ${newSize}`, { oldSize, newSize });
    }
    const plan = oldSize === newSize ? [] : planConsistency(oldSize, newSize);
    const oldCheckpoint = await this.#store.checkpointAt(oldSize);
    const newCheckpoint = latest?.treeSize === newSize ? latest : await this.#store.checkpointAt(newSize);
    // Roots come from the signed checkpoints where there are any, so the self-check below proves
    // the proof against what was signed; otherwise they are folded from stored nodes.
    const rootPlans = [oldCheckpoint ? [] : frontierNodes(oldSize), newCheckpoint ? [] : frontierNodes(newSize)];
    const nodes = await this.#store.getNodes(planNodes([...plan, ...rootPlans]));
    const [proof, roots] = damagedIfMissing(() => [resolveProof(plan, nodes), resolveProof(rootPlans, nodes)] as const);
    const oldRoot = oldCheckpoint?.rootHash ?? roots[0]!;
    const newRoot = newCheckpoint?.rootHash ?? roots[1]!;
    verifyConsistency(oldSize, newSize, proof, oldRoot, newRoot);
    return { oldSize, newSize, oldRoot, newRoot, proof, oldCheckpoint, newCheckpoint };
  }

  /**
   * The first index whose entry time is at or after `timeMs`. Entry times never decrease with the
   * index, so this is a binary search: O(log n) entry reads.
   */
  async firstIndexAtOrAfter(timeMs: number, size: number): Promise<number> {
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const e = await this.#store.getEntry(mid);
      if (!e || peekEntry(e.bytes).timeMs >= timeMs) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Entries filtered by type and time, newest first unless `oldestFirst`. */
  async listEntries(q: ListQuery): Promise<ListedEntry[]> {
    const size = await this.#store.treeSize();
    const from = q.sinceMs === undefined ? 0 : await this.firstIndexAtOrAfter(q.sinceMs, size);
    const out: ListedEntry[] = [];
    const pages = q.oldestFirst ? this.#store.entryPages(from, size) : this.#store.entryPagesDescending(from, size);
    for await (const page of pages) {
      for (const e of page) {
        const p = peekEntry(e.bytes);
        if (q.type !== undefined && p.type !== q.type) continue;
        out.push({ index: e.index, leafHash: e.leafHash, type: p.type, time: p.time, payload: p.payload });
        if (out.length >= q.limit) return out;
      }
    }
    return out;
  }
}

/** Filters for {@link LogReader.listEntries}. */
export interface ListQuery {
  readonly limit: number;
  readonly type?: string;
  /** Only entries at or after this time (epoch ms). */
  readonly sinceMs?: number;
  readonly oldestFirst?: boolean;
}

/** An entry as listed. */
export interface ListedEntry {
  readonly index: number;
  readonly leafHash: Buffer;
  readonly type: string;
  readonly time: string;
  readonly payload: unknown;
}
