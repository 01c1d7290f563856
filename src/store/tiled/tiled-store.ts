/**
 * The part of a {@link LogStore} that is the same on every backend: node resolution through the
 * tile and node caches, entry and bundle paging over the tiled layout, checkpoint and off-ledger
 * paging, and append bookkeeping. A backend extends it with a {@link TiledDriver} (its SQL, locking
 * and transactions) and adds what only it knows: opening, stats, snapshots, scrubbing, closing.
 * @module
 */
import { HASH_SIZE } from '../../core/hash.js';
import { nodeSeq, type NodeId } from '../../core/merkle/node-id.js';
import { FAT_TILE_BYTES, TILE_WIDTH, fatTileByteOffset, isTileComplete, tilePosition } from '../../core/merkle/tiles.js';
import type { AppendBatch, BundleTile, LogStore, RawBundle, ScrubReport, SidecarCommitment, SidecarDocument, SidecarState, StoreStats, StoredCheckpoint, StoredEntry } from '../store.js';
import { BoundedCache, DOCUMENT_CACHE_SIZE, NODE_CACHE_SIZE, TILE_CACHE_SIZE } from './caches.js';
import { ValueFilter, valueKey } from './value-filter.js';
import type { BundleRow, TailEntryRow, TiledDriver } from './driver.js';
import { EMPTY, bundleEntries, bundleTile, sizeFromMax, tileId, tileLeaves } from './layout.js';

// Bundles per page when streaming entries (16 x 256 = 4096 entries).
const BUNDLE_PAGE = 16;
const CHECKPOINT_PAGE = 4096;
const DOCUMENT_PAGE = 512;
const COMMITMENT_PAGE = 1024;
// Commitment keys per page when the value filter catches up with the table.
const FILTER_PAGE = 8192;

function toEntry(r: TailEntryRow): StoredEntry {
  return { index: r.idx, bytes: r.data, leafHash: r.leafHash ?? EMPTY };
}

/** A {@link LogStore} over the tiled layout, reading and writing rows through a {@link TiledDriver}. */
export abstract class TiledStore implements LogStore {
  abstract readonly backend: string;
  readonly #d: TiledDriver;
  readonly #tileCache = new BoundedCache<number, Buffer>(TILE_CACHE_SIZE, { lru: true });
  readonly #nodeCache = new BoundedCache<number, Buffer>(NODE_CACHE_SIZE);
  #latestCp: StoredCheckpoint | undefined;
  // A lower bound of the tree size (sizes only grow): tiles complete below it are in `tiles`.
  #knownSize = 0;
  // Off-ledger read caches, kept only on a backend that tells when another connection wrote
  // (driver.externalVersion): they hold what this connection read or wrote, and are dropped or
  // brought up to date as soon as anyone else commits. An edit of the file under a running
  // service is therefore seen by the next read, as without them.
  /** Documents as read from the store, valid while the external version is #docsVersion. */
  readonly #docs = new BoundedCache<string, { readonly kind: string; readonly bytes: Buffer }>(DOCUMENT_CACHE_SIZE, { lru: true });
  #docsVersion: number | undefined;
  /** Every (kind, value) in the commitments table up to row #filterSeq, as of external version #filterVersion. */
  #filter: ValueFilter | undefined;
  #filterSeq = 0;
  #filterVersion: number | undefined;
  #filterCatchUp: Promise<void> | undefined;
  /** The external version as read in the current turn of the event loop (see reusableCommitment). */
  #turnVersion: number | undefined;

  protected constructor(driver: TiledDriver) {
    this.#d = driver;
  }

  abstract stats(): Promise<StoreStats>;
  abstract readSnapshot(): Promise<{ readonly store: LogStore; release(): Promise<void> }>;
  abstract scrub(table?: 'commitments' | 'documents'): Promise<ScrubReport>;
  abstract close(): Promise<void>;

  /** Raises the known lower bound of the tree size (a backend's stats read it too). */
  protected noteSize(size: number): void {
    if (size > this.#knownSize) this.#knownSize = size;
  }

  /** Runs a driver read, wrapping its errors. */
  async #read<T>(what: string, fn: (d: TiledDriver) => T | Promise<T>): Promise<T> {
    try {
      return await fn(this.#d);
    } catch (err) {
      this.#d.fail(err, what);
    }
  }

  /** Keyset pagination from `first`: each page starts after the key of the last row of the previous one. */
  async *#pages<T, K>(what: string, first: K, fetch: (after: K) => Promise<readonly T[]> | readonly T[], key: (row: T) => K): AsyncIterable<readonly T[]> {
    let after = first;
    for (;;) {
      const rows = await this.#read(what, () => fetch(after));
      if (rows.length === 0) return;
      yield rows;
      after = key(rows[rows.length - 1]!);
      await this.#d.pageBreak?.();
    }
  }

  // ---- size and meta --------------------------------------------------------------------------

  /** The stored tree size (raises the known size). */
  protected async storedSize(): Promise<number> {
    const m = await this.#d.maxIndexes();
    const size = sizeFromMax(m.tail, m.bundle);
    this.noteSize(size);
    return size;
  }

  treeSize(): Promise<number> {
    return this.#read('read size', () => this.storedSize());
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.#read('read meta', (d) => d.meta(key));
  }

  async initMeta(values: Readonly<Record<string, string>>): Promise<void> {
    await this.#read('write meta', (d) => d.initMeta(values));
  }

  // ---- nodes ----------------------------------------------------------------------------------

  /** Complete fat tiles by id, through the LRU cache; missing or wrong-sized tiles are absent. */
  async #tiles(ids: Iterable<number>): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const missing: number[] = [];
    for (const id of new Set(ids)) {
      const hit = this.#tileCache.get(id);
      if (hit) out.set(id, hit);
      else missing.push(id);
    }
    if (missing.length === 0) return out;
    for (const r of await this.#d.tiles(missing)) {
      if (r.hashes.length !== FAT_TILE_BYTES) continue;
      out.set(r.id, r.hashes);
      this.#tileCache.set(r.id, r.hashes);
    }
    return out;
  }

  async #tailNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    return new Map((await this.#d.tailNodes(ids)).map((r) => [nodeSeq(r.level, r.idx), r.hash]));
  }

  /**
   * Resolves nodes in at most three driver reads: a node of a tile known to be incomplete is looked
   * up in the (cached) node tail, then in the tiles; a node of a tile known to be complete in the
   * tiles, then in the node tail.
   */
  getNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    return this.#read('read nodes', async () => {
      const out = new Map<number, Buffer>();
      const tailFirst: NodeId[] = [];
      const tileFirst: NodeId[] = [];
      for (const id of ids) {
        const p = tilePosition(id.level, id.index);
        // A tile known to be incomplete is not looked up (its nodes are in the tail); another
        // process may have completed it since, so a tail miss still falls back to the tiles.
        if (!isTileComplete(p.tileLevel, p.tileIndex, this.#knownSize)) {
          // Tail nodes are cached: the high levels of the right edge are in every proof.
          const cached = this.#nodeCache.get(nodeSeq(id.level, id.index));
          if (cached) out.set(nodeSeq(id.level, id.index), cached);
          else tailFirst.push(id);
        } else {
          tileFirst.push(id);
        }
      }
      if (tailFirst.length > 0) {
        const found = await this.#tailNodes(tailFirst);
        for (const id of tailFirst) {
          const key = nodeSeq(id.level, id.index);
          const h = found.get(key);
          if (h) {
            out.set(key, h);
            this.#nodeCache.set(key, h);
          } else {
            tileFirst.push(id);
          }
        }
      }
      const lastResort: NodeId[] = [];
      if (tileFirst.length > 0) {
        const positions = tileFirst.map((id) => tilePosition(id.level, id.index));
        const tiles = await this.#tiles(positions.map((p) => tileId(p.tileLevel, p.tileIndex)));
        tileFirst.forEach((id, i) => {
          const p = positions[i]!;
          const tile = tiles.get(tileId(p.tileLevel, p.tileIndex));
          if (tile) {
            const off = fatTileByteOffset(p);
            out.set(nodeSeq(id.level, id.index), tile.subarray(off, off + HASH_SIZE));
          } else {
            lastResort.push(id);
          }
        });
      }
      if (lastResort.length > 0) for (const [k, h] of await this.#tailNodes(lastResort)) out.set(k, h);
      return out;
    });
  }

  // ---- entries --------------------------------------------------------------------------------

  /** Entries of bundle rows, in the rows' order, restricted to [from, to). */
  async #bundleRowsEntries(rows: readonly BundleRow[], from: number, to: number): Promise<StoredEntry[]> {
    // Leaf hashes: from each bundle's level-0 tile, else from the node tail (a damaged store).
    const tiles = await this.#tiles(rows.map((r) => tileId(0, r.idx)));
    const page: StoredEntry[] = [];
    for (const { idx, data } of rows) {
      const tile = tiles.get(tileId(0, idx));
      let leaves: (Buffer | undefined)[];
      if (tile) {
        leaves = tileLeaves(tile);
      } else {
        leaves = new Array<Buffer | undefined>(TILE_WIDTH);
        for (const r of await this.#d.tailLeaves(idx * TILE_WIDTH, (idx + 1) * TILE_WIDTH)) leaves[r.idx - idx * TILE_WIDTH] = r.hash;
      }
      for (const e of bundleEntries(idx, data, leaves)) if (e.index >= from && e.index < to) page.push(e);
    }
    return page;
  }

  getEntry(index: number): Promise<StoredEntry | undefined> {
    return this.#read('read entry', async (d) => {
      const r = await d.entry(index, Math.floor(index / TILE_WIDTH));
      if (!r) return undefined;
      if ('tail' in r) return toEntry(r.tail);
      return (await this.#bundleRowsEntries([r.bundle], index, index + 1))[0];
    });
  }

  async *entryPages(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    let n = Math.floor(from / TILE_WIDTH);
    const lastBundle = Math.ceil(to / TILE_WIDTH);
    for (;;) {
      const page = await this.#read('read entries', async (d) => {
        const rows = await d.bundles(n, lastBundle, BUNDLE_PAGE, false);
        if (rows.length === 0) return undefined;
        n = rows[rows.length - 1]!.idx + 1;
        return this.#bundleRowsEntries(rows, from, to);
      });
      if (!page) break;
      if (page.length > 0) yield page;
      // Only between bundle pages: the last (empty) bundle read and the tail read stay one step,
      // so a writer packing the tail into a bundle in between cannot hide entries.
      await this.#d.pageBreak?.();
    }
    const tail = await this.#read('read entries', async (d) => (await d.tailEntries(from, to, false)).map(toEntry));
    if (tail.length > 0) yield tail;
  }

  async *bundlePages(from: number, to: number): AsyncIterable<readonly BundleTile[]> {
    for await (const rows of this.rawBundlePages(from, to)) yield rows.map((r) => bundleTile(r.index, r.data, r.tile));
  }

  async *rawBundlePages(from: number, to: number): AsyncIterable<readonly RawBundle[]> {
    let n = from;
    while (n < to) {
      const rows = await this.#read('read bundles', (d) => d.bundlesWithTiles(n, to, BUNDLE_PAGE));
      if (rows.length === 0) return;
      n = rows[rows.length - 1]!.idx + 1;
      yield rows.map((r) => ({ index: r.idx, data: r.data, tile: r.tile?.length === FAT_TILE_BYTES ? r.tile : undefined }));
      await this.#d.pageBreak?.();
    }
  }

  async *entryPagesDescending(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    const tail = await this.#read('read entries', async (d) => (await d.tailEntries(from, to, true)).map(toEntry));
    const firstBundle = Math.floor(from / TILE_WIDTH);
    // Bundles below the tail just read: a writer may pack that tail into a bundle while the
    // consumer works, and its entries must not come out twice.
    let end = tail.length > 0 ? Math.floor(tail[tail.length - 1]!.index / TILE_WIDTH) : Math.ceil(to / TILE_WIDTH);
    if (tail.length > 0) {
      yield tail;
      await this.#d.pageBreak?.();
    }
    for (;;) {
      // One bundle at a time: a newest-first listing usually wants only the first few entries.
      const page = await this.#read('read entries', async (d) => {
        const rows = await d.bundles(firstBundle, end, 1, true);
        if (rows.length === 0) return undefined;
        end = rows[0]!.idx;
        return (await this.#bundleRowsEntries(rows, from, to)).reverse();
      });
      if (!page) break;
      if (page.length > 0) yield page;
      await this.#d.pageBreak?.();
    }
  }

  // ---- checkpoints ----------------------------------------------------------------------------

  checkpointPages(): AsyncIterable<readonly StoredCheckpoint[]> {
    return this.#pages(
      'read checkpoints',
      -1,
      (after) => this.#d.checkpoints(after, CHECKPOINT_PAGE),
      (c) => c.treeSize,
    );
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.#read('read checkpoint', async (d) => {
      // Checkpoints are never changed once written, so the latest one is re-read only when a
      // larger tree size appears (an index-only MAX() costs far less than reading the note).
      const size = await d.maxCheckpointSize();
      if (size === null) return undefined;
      if (this.#latestCp?.treeSize === size) return this.#latestCp;
      const cp = await d.latestCheckpoint();
      if (cp) this.noteSize(cp.treeSize);
      this.#latestCp = cp;
      return cp;
    });
  }

  checkpointAt(treeSize: number): Promise<StoredCheckpoint | undefined> {
    return this.#read('read checkpoint', (d) => d.checkpointAt(treeSize));
  }

  // ---- writes ---------------------------------------------------------------------------------

  async appendBatch(batch: AppendBatch): Promise<void> {
    if (batch.sidecar) this.#forgetErased(batch.sidecar);
    const end = await this.#read('append', (d) => d.append(batch));
    // Only once committed: a rolled-back batch must not raise the known size.
    this.noteSize(end);
    if (batch.sidecar) this.#wrote(batch.sidecar);
  }

  async writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): Promise<void> {
    this.#forgetErased(sidecar);
    await this.#read('write off-ledger data', (d) => d.writeSidecar(sidecar));
    this.#wrote(sidecar);
  }

  // Erased documents leave the cache before the transaction that deletes them (and stay out:
  // nothing reads them back in between, the driver call being one synchronous step on SQLite).
  #forgetErased(sidecar: NonNullable<AppendBatch['sidecar']>): void {
    for (const h of sidecar.eraseDocuments ?? []) this.#docs.delete(h);
  }

  // After a commit by this connection: its new commitments are in the table (a false positive at
  // worst, if the insert found the commitment there already), and erased documents are gone.
  #wrote(sidecar: NonNullable<AppendBatch['sidecar']>): void {
    this.#forgetErased(sidecar);
    const f = this.#filter;
    if (f) for (const c of sidecar.commitments) f.add(valueKey(c.kind, c.value));
  }

  // The external version now, or undefined when the backend cannot tell (no caching then).
  #externalVersion(): number | undefined {
    const ext = this.#d.externalVersion;
    if (!ext) return undefined;
    try {
      return ext.call(this.#d);
    } catch {
      return undefined;
    }
  }

  // ---- off-ledger data ------------------------------------------------------------------------

  async getDocument(hash: string): Promise<{ readonly kind: string; readonly bytes: Buffer } | undefined> {
    const version = this.#externalVersion();
    if (version === undefined) return this.#read('read document', (d) => d.document(hash));
    if (version !== this.#docsVersion) {
      // Someone else wrote: what this connection read before may have changed on disk.
      this.#docs.clear();
      this.#docsVersion = version;
    }
    const hit = this.#docs.get(hash);
    if (hit) return hit;
    const doc = await this.#read('read document', (d) => d.document(hash));
    if (doc && this.#docsVersion === version) this.#docs.set(hash, doc);
    return doc;
  }

  documentPages(): AsyncIterable<readonly SidecarDocument[]> {
    return this.#pages(
      'read documents',
      '',
      (after) => this.#d.documents(after, DOCUMENT_PAGE),
      (r) => r.hash,
    );
  }

  getCommitment(commitment: string): Promise<SidecarCommitment | undefined> {
    return this.#read('read commitment', (d) => d.commitment(commitment));
  }

  async findCommitment(kind: string, value: string): Promise<SidecarCommitment | undefined> {
    // A value the filter never saw is in no row: no read.
    if (this.#d.commitmentKeys && this.#filterCurrent(this.#externalVersion()) && !this.#filter!.mayHave(valueKey(kind, value))) return undefined;
    return this.#read('read commitment', async (d) => (await d.commitmentsOf(kind, value, 1))[0]);
  }

  async reusableCommitment(kind: string, value: string): Promise<SidecarCommitment | undefined> {
    // As findCommitment, with the external version read once per turn of the event loop (every new
    // URI of every decision comes here: one version read per decision was 5 to 8% of a decision).
    if (this.#d.commitmentKeys && this.#filterCurrent(this.#versionThisTurn()) && !this.#filter!.mayHave(valueKey(kind, value))) return undefined;
    return this.#read('read commitment', async (d) => (await d.commitmentsOf(kind, value, 1))[0]);
  }

  // The external version, read at most once per turn of the event loop.
  #versionThisTurn(): number | undefined {
    if (this.#turnVersion === undefined) {
      const v = this.#externalVersion();
      if (v === undefined) return undefined;
      this.#turnVersion = v;
      setImmediate(() => {
        this.#turnVersion = undefined;
      }).unref();
    }
    return this.#turnVersion;
  }

  // Whether the value filter holds every row in the commitments table as of external version
  // `version`. If another connection wrote since it last caught up (or it was never built), it
  // catches up in the background and the lookups read the table meanwhile.
  #filterCurrent(version: number | undefined): boolean {
    if (version === undefined) return false;
    if (this.#filter && this.#filterCatchUp === undefined && version === this.#filterVersion) return true;
    this.#filterCatchUp ??= this.#catchUpFilter().finally(() => {
      this.#filterCatchUp = undefined;
    });
    return false;
  }

  // Reads the (kind, value) of the rows inserted since the last catch-up, in pages. The version
  // is read before each page: a commit by another connection after it changes the version again,
  // so the filter is never taken as current while a row it lacks is in the table. (A row whose
  // position another connection reused after an erasure may be missed: a value then gets a second
  // commitment, which the table allows, as when two writers race on a new value.)
  async #catchUpFilter(): Promise<void> {
    const f = this.#filter ?? new ValueFilter();
    this.#filter = f;
    this.#filterVersion = undefined;
    try {
      for (;;) {
        const version = this.#externalVersion();
        const rows = await this.#read('read commitments', (d) => d.commitmentKeys!(this.#filterSeq, FILTER_PAGE));
        for (const r of rows) f.add(valueKey(r.kind, r.value));
        if (rows.length > 0) this.#filterSeq = rows[rows.length - 1]!.seq;
        if (rows.length < FILTER_PAGE) {
          this.#filterVersion = version;
          return;
        }
        await this.#d.pageBreak?.();
      }
    } catch {
      // Lookups keep reading the table; the next one tries again.
    }
  }

  findCommitments(kind: string, value: string): Promise<readonly SidecarCommitment[]> {
    return this.#read('read commitment', (d) => d.commitmentsOf(kind, value));
  }

  commitmentPages(): AsyncIterable<readonly SidecarCommitment[]> {
    return this.#pages(
      'read commitments',
      '',
      (after) => this.#d.commitments(after, COMMITMENT_PAGE),
      (r) => r.commitment,
    );
  }

  getState(ns: string, key: string): Promise<string | undefined> {
    return this.#read('read state', (d) => d.state(ns, key));
  }

  listState(ns: string): Promise<readonly SidecarState[]> {
    return this.#read('read state', (d) => d.states(ns));
  }
}
