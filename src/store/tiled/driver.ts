/**
 * The row-level interface a backend implements for {@link TiledStore} (the role of kysely's
 * `Driver`): it reads and writes rows of the tiled layout (store/tiled/layout.ts) and the
 * off-ledger tables, and owns its SQL, its transactions and its locking. Everything above rows
 * (the caches, node resolution, paging, decoding, append planning) is shared.
 *
 * A method may answer synchronously (better-sqlite3) or with a promise (pg): the shared code awaits
 * once per call, and every call moves a page or a batch of rows, never one entry.
 * @module
 */
import type { NodeId } from '../../core/merkle/node-id.js';
import type { AppendBatch, SidecarCommitment, SidecarDocument, SidecarState, StoredCheckpoint } from '../store.js';
import type { NodeRow } from './layout.js';

/** A value, or a promise of it. */
export type Maybe<T> = T | Promise<T>;

/** A stored bundle row. */
export interface BundleRow {
  readonly idx: number;
  readonly data: Buffer;
}

/** A tail entry row with its leaf hash from the node tail (null when that row is missing). */
export interface TailEntryRow {
  readonly idx: number;
  readonly data: Buffer;
  readonly leafHash: Buffer | null;
}

/** The rows of one backend's store of one log. */
export interface TiledDriver {
  /** Rethrows a backend error as a CustosError (CustosErrors pass through): LOG_LOCKED, STORE_CORRUPT, STORE_FAILURE. */
  fail(err: unknown, what: string): never;
  /** Awaited between pages of a scan (SQLite: the next turn of the event loop, so a scan does not starve other work). */
  pageBreak?(): Promise<void>;

  // ---- the tree ----
  /** The largest index in the entry tail and in the bundles (null: none). */
  maxIndexes(): Maybe<{ readonly tail: number | null; readonly bundle: number | null }>;
  /** Tile rows by id (missing ones absent). */
  tiles(ids: readonly number[]): Maybe<readonly { readonly id: number; readonly hashes: Buffer }[]>;
  /** Node tail rows by id (missing ones absent). */
  tailNodes(ids: readonly NodeId[]): Maybe<readonly NodeRow[]>;
  /** Level-0 node tail rows (leaf hashes) with index in [lo, hi). */
  tailLeaves(lo: number, hi: number): Maybe<readonly NodeRow[]>;

  // ---- entries ----
  /** Bundle rows with index in [lo, hi), ascending or descending, at most `limit`. */
  bundles(lo: number, hi: number, limit: number, descending: boolean): Maybe<readonly BundleRow[]>;
  /** Bundle rows as {@link bundles} ascending, each with its level-0 tile row (id = idx) or null. */
  bundlesWithTiles(lo: number, hi: number, limit: number): Maybe<readonly (BundleRow & { readonly tile: Buffer | null })[]>;
  /** Tail entry rows with index in [lo, hi), ascending or descending. */
  tailEntries(lo: number, hi: number, descending: boolean): Maybe<readonly TailEntryRow[]>;
  /** Entry `index`: its tail row if there is one, else the row of bundle `bundle`. */
  entry(index: number, bundle: number): Maybe<{ readonly tail: TailEntryRow } | { readonly bundle: BundleRow } | undefined>;

  // ---- checkpoints ----
  /** Checkpoints with tree size above `after`, ascending, at most `limit`. */
  checkpoints(after: number, limit: number): Maybe<readonly StoredCheckpoint[]>;
  /** The largest checkpointed tree size (an index-only read), null when none. */
  maxCheckpointSize(): Maybe<number | null>;
  latestCheckpoint(): Maybe<StoredCheckpoint | undefined>;
  checkpointAt(treeSize: number): Maybe<StoredCheckpoint | undefined>;

  // ---- off-ledger rows ----
  meta(key: string): Maybe<string | undefined>;
  document(hash: string): Maybe<{ readonly kind: string; readonly bytes: Buffer } | undefined>;
  /** Documents with hash above `after` (byte order), at most `limit`. */
  documents(after: string, limit: number): Maybe<readonly SidecarDocument[]>;
  commitment(commitment: string): Maybe<SidecarCommitment | undefined>;
  /** Openings of a value, ordered by commitment; at most `limit` if given. */
  commitmentsOf(kind: string, value: string, limit?: number): Maybe<readonly SidecarCommitment[]>;
  /** Openings with commitment above `after` (byte order), at most `limit`. */
  commitments(after: string, limit: number): Maybe<readonly SidecarCommitment[]>;
  state(ns: string, key: string): Maybe<string | undefined>;

  // ---- change detection (optional: a backend without it gets no off-ledger read caches) ----
  /**
   * A number that changes whenever another connection (another process, an editor of the file)
   * commits to the store, and never for this connection's own commits (SQLite's
   * `PRAGMA data_version`). While it is unchanged, rows this connection read are still the rows
   * on disk.
   */
  externalVersion?(): number;
  /** (kind, value) of the commitment rows inserted after position `after` (insertion order), at most `limit`, each with its position. */
  commitmentKeys?(after: number, limit: number): readonly { readonly seq: number; readonly kind: string; readonly value: string }[];
  states(ns: string): Maybe<readonly SidecarState[]>;

  // ---- writes (each one transaction) ----
  /**
   * Under the backend's write lock: reads the stored size, plans the batch with `planAppend` (which
   * refuses a stale `expectedSize`), moves and inserts the planned rows, the checkpoint and the
   * sidecar, and commits. Returns the new size.
   */
  append(batch: AppendBatch): Promise<number>;
  /** Inserts missing meta values; refuses (DATA_DIR_EXISTS) a different existing value. */
  initMeta(values: Readonly<Record<string, string>>): Maybe<void>;
  writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): Maybe<void>;
}
