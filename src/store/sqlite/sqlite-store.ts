/**
 * The embedded default backend: one SQLite file (better-sqlite3, WAL, synchronous=FULL), laid out
 * as C2SP tlog-tiles: complete entry bundles and complete "fat" tiles are single rows; only the
 * right edge of the tree (fewer than 256 entries, and the nodes of incomplete tiles) is kept row by
 * row, and is repacked into a bundle or tile in the transaction that completes it.
 *
 * Why: one row per entry and per node cost 2-4 us per row to read back with better-sqlite3 on this
 * machine, which capped verification near 100k entries/s; a 256-entry row is read in about the time
 * of one small row. The tiles are also exactly what a tlog-tiles HTTP endpoint serves.
 * @module
 */
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConflictError, CustosError, StoreError } from '../../core/errors.js';
import { HASH_SIZE } from '../../core/hash.js';
import { nodeSeq, type NodeId } from '../../core/merkle/node-id.js';
import {
  FAT_TILE_BYTES,
  TILE_HEIGHT,
  TILE_WIDTH,
  decodeEntryBundle,
  encodeEntryBundle,
  fatTileByteOffset,
  isTileComplete,
  rowOffset,
  tilePosition,
} from '../../core/merkle/tiles.js';
import type { AppendBatch, BundleTile, LogStore, ScrubReport, SidecarCommitment, SidecarDocument, SidecarState, StoreStats, StoredCheckpoint, StoredEntry, StoredNode } from '../store.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

/** Options for {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** How long a writer waits for another process's write lock before LOG_LOCKED (ms). */
  readonly busyTimeoutMs?: number;
  /** Open without write access (verification of a copied file, say). */
  readonly readonly?: boolean;
}

// Bundles per page when streaming entries (16 x 256 = 4096 entries).
const BUNDLE_PAGE = 16;

// better-sqlite3 is synchronous: a scan over an async iterator of its pages would otherwise run
// as one long task (promise continuations never reach the event loop), and a server would answer
// nothing else until it ends. Every page iterator waits for the next turn of the event loop after
// each page it yields, so concurrent requests interleave with scans.
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const CHECKPOINT_PAGE = 4096;
// Rows per multi-row INSERT into the tails.
const CHUNK = 64;
// Complete tiles are immutable, so they can be cached; 256 fat tiles = 4 MiB.
const TILE_CACHE_SIZE = 256;
// Tail nodes cached by seq (FIFO): 16,384 x 32 bytes.
const NODE_CACHE_SIZE = 16_384;
const EMPTY = Buffer.alloc(0);

type CheckpointRow = [number, Buffer, string, number];

/** Row key of tile (level, index) in the tiles table. */
export function tileId(level: number, index: number): number {
  return level * 2 ** 40 + index;
}

function toCheckpoint(r: CheckpointRow): StoredCheckpoint {
  return { treeSize: r[0], rootHash: r[1], note: r[2], timeMs: r[3] };
}

/** Wraps better-sqlite3 errors so SQLite's error shapes never leak above the store. */
function wrap(err: unknown, what: string): never {
  if (err instanceof CustosError) throw err;
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    throw new ConflictError('LOG_LOCKED', 'the log is locked by another writer', { cause: err });
  }
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') {
    throw new StoreError('STORE_CORRUPT', `database file is corrupt (${what})`, { cause: err });
  }
  throw new StoreError('STORE_FAILURE', `storage failure (${what})`, { cause: err });
}

/** A {@link LogStore} in one SQLite file. */
export class SqliteStore implements LogStore {
  readonly backend = 'sqlite';
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #s;
  readonly #appendTx: Database.Transaction<(batch: AppendBatch) => void>;
  readonly #tileCache = new Map<string, Buffer>();
  readonly #nodeCache = new Map<number, Buffer>();
  #latestCp: StoredCheckpoint | undefined;
  // A lower bound of the tree size (sizes only grow): tiles complete below it are in `tiles`.
  #knownSize = 0;
  #pendingSize = 0;

  private constructor(db: Database.Database, path: string) {
    this.#db = db;
    this.#path = path;
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      getMeta: p('SELECT value FROM meta WHERE key = ?').pluck(),
      putMeta: p('INSERT INTO meta(key, value) VALUES (?, ?)'),
      maxTail: p('SELECT MAX(idx) FROM entry_tail').pluck(),
      maxBundle: p('SELECT MAX(idx) FROM entry_bundles').pluck(),
      bundle: p('SELECT data FROM entry_bundles WHERE idx = ?').pluck(),
      bundlePage: p('SELECT idx, data FROM entry_bundles WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?').raw(),
      bundlePageDesc: p('SELECT idx, data FROM entry_bundles WHERE idx >= ? AND idx < ? ORDER BY idx DESC LIMIT ?').raw(),
      tailEntry: p('SELECT data FROM entry_tail WHERE idx = ?').pluck(),
      tailRange: p('SELECT idx, data FROM entry_tail WHERE idx >= ? AND idx < ? ORDER BY idx').raw(),
      tailRangeDesc: p('SELECT idx, data FROM entry_tail WHERE idx >= ? AND idx < ? ORDER BY idx DESC').raw(),
      delTail: p('DELETE FROM entry_tail WHERE idx >= ? AND idx < ?'),
      insTail: p('INSERT INTO entry_tail(idx, data) VALUES (?, ?)'),
      insTailChunk: p(`INSERT INTO entry_tail(idx, data) VALUES ${Array(CHUNK).fill('(?, ?)').join(', ')}`),
      insBundle: p('INSERT INTO entry_bundles(idx, data) VALUES (?, ?)'),
      tile: p('SELECT hashes FROM tiles WHERE id = ?').pluck(),
      tileRange: p('SELECT id, hashes FROM tiles WHERE id >= ? AND id < ? ORDER BY id').raw(),
      insTile: p('INSERT INTO tiles(id, hashes) VALUES (?, ?)'),
      node: p('SELECT hash FROM node_tail WHERE level = ? AND idx = ?').pluck(),
      nodeRange: p('SELECT idx, hash FROM node_tail WHERE level = ? AND idx >= ? AND idx < ?').raw(),
      delNodes: p('DELETE FROM node_tail WHERE level = ? AND idx >= ? AND idx < ?'),
      insNode: p('INSERT INTO node_tail(level, idx, hash) VALUES (?, ?, ?)'),
      insNodeChunk: p(`INSERT INTO node_tail(level, idx, hash) VALUES ${Array(CHUNK).fill('(?, ?, ?)').join(', ')}`),
      cpPage: p('SELECT tree_size, root, note, time_ms FROM checkpoints WHERE tree_size > ? ORDER BY tree_size LIMIT ?').raw(),
      cpLatest: p('SELECT tree_size, root, note, time_ms FROM checkpoints ORDER BY tree_size DESC LIMIT 1').raw(),
      cpAt: p('SELECT tree_size, root, note, time_ms FROM checkpoints WHERE tree_size = ?').raw(),
      cpCount: p('SELECT COUNT(*) FROM checkpoints').pluck(),
      cpMax: p('SELECT MAX(tree_size) FROM checkpoints').pluck(),
      insCp: p('INSERT INTO checkpoints(tree_size, root, note, time_ms) VALUES (?, ?, ?, ?)'),
      getDoc: p('SELECT kind, data FROM documents WHERE hash = ?').raw(),
      docPage: p('SELECT hash, kind, data FROM documents WHERE hash > ? ORDER BY hash LIMIT ?').raw(),
      insDoc: p('INSERT INTO documents(hash, kind, data) VALUES (?, ?, ?) ON CONFLICT(hash) DO NOTHING'),
      insDocChunk: p(`INSERT INTO documents(hash, kind, data) VALUES ${Array(CHUNK).fill('(?, ?, ?)').join(', ')} ON CONFLICT(hash) DO NOTHING`),
      getCommit: p('SELECT commitment, kind, value, salt FROM commitments WHERE commitment = ?').raw(),
      findCommit: p('SELECT commitment, kind, value, salt FROM commitments WHERE kind = ? AND value = ? ORDER BY commitment LIMIT 1').raw(),
      commitPage: p('SELECT commitment, kind, value, salt FROM commitments WHERE commitment > ? ORDER BY commitment LIMIT ?').raw(),
      insCommit: p('INSERT INTO commitments(commitment, kind, value, salt) VALUES (?, ?, ?, ?) ON CONFLICT(commitment) DO NOTHING'),
      insCommitChunk: p(`INSERT INTO commitments(commitment, kind, value, salt) VALUES ${Array(CHUNK).fill('(?, ?, ?, ?)').join(', ')} ON CONFLICT(commitment) DO NOTHING`),
      findCommits: p('SELECT commitment, kind, value, salt FROM commitments WHERE kind = ? AND value = ? ORDER BY commitment').raw(),
      eraseCommit: p('DELETE FROM commitments WHERE commitment = ?'),
      eraseDoc: p('DELETE FROM documents WHERE hash = ?'),
      getState: p('SELECT value FROM state WHERE ns = ? AND key = ?').pluck(),
      listState: p('SELECT ns, key, value FROM state WHERE ns = ? ORDER BY key').raw(),
      putState: p('INSERT INTO state(ns, key, value) VALUES (?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value'),
    };
    this.#appendTx = db.transaction((batch: AppendBatch) => this.#write(batch));
  }

  /**
   * Opens (creating if needed) the SQLite file at `path` and applies migrations.
   * @throws {StoreError} STORE_FAILURE, STORE_CORRUPT, STORE_SCHEMA_UNSUPPORTED
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 10_000))}`);
      // Erasure must be physical: a deleted row (a commitment opening) is overwritten with zeros
      // in its page, and freed pages are zeroed, instead of lingering in free space. Set on every
      // connection (it is not persistent).
      db.pragma('secure_delete = ON');
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        // FULL: a committed transaction survives power loss, not only a process crash.
        db.pragma('synchronous = FULL');
      }
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new StoreError('STORE_SCHEMA_UNSUPPORTED', `database schema v${version} is newer than this Custos (v${SCHEMA_VERSION})`);
      }
      if (version < SCHEMA_VERSION) {
        if (options.readonly) throw new StoreError('STORE_SCHEMA_UNSUPPORTED', 'database needs migrating; open it writable');
        const d = db;
        d.transaction(() => {
          for (let v = version; v < SCHEMA_VERSION; v++) d.exec(MIGRATIONS[v]!);
          d.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
      }
      const store = new SqliteStore(db, path);
      // A crash between an erasure's commit and its scrub leaves old page images in the WAL: the
      // first writer to open the file checkpoints it away (without waiting on readers).
      if (!options.readonly && path !== ':memory:' && path !== '') store.#checkpointTruncate(0);
      return store;
    } catch (err) {
      db?.close();
      wrap(err, 'open');
    }
  }

  // ---- size -------------------------------------------------------------------------------

  #size(): number {
    const t = this.#s.maxTail.get() as number | null;
    const b = this.#s.maxBundle.get() as number | null;
    const size = t !== null ? t + 1 : b === null ? 0 : (b + 1) * TILE_WIDTH;
    if (size > this.#knownSize) this.#knownSize = size;
    return size;
  }

  async treeSize(): Promise<number> {
    try {
      return this.#size();
    } catch (err) {
      wrap(err, 'read size');
    }
  }

  // ---- meta -------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    try {
      return this.#s.getMeta.get(key) as string | undefined;
    } catch (err) {
      wrap(err, 'read meta');
    }
  }

  async initMeta(values: Readonly<Record<string, string>>): Promise<void> {
    const s = this.#s;
    try {
      this.#db
        .transaction(() => {
          for (const [k, v] of Object.entries(values)) {
            const cur = s.getMeta.get(k) as string | undefined;
            if (cur === undefined) s.putMeta.run(k, v);
            else if (cur !== v) throw new ConflictError('DATA_DIR_EXISTS', `log already has a different ${k}`);
          }
        })
        .immediate();
    } catch (err) {
      wrap(err, 'write meta');
    }
  }

  // ---- nodes ------------------------------------------------------------------------------

  #tile(level: number, index: number): Buffer | undefined {
    const key = `${level}/${index}`;
    const hit = this.#tileCache.get(key);
    if (hit) {
      // Refresh LRU position.
      this.#tileCache.delete(key);
      this.#tileCache.set(key, hit);
      return hit;
    }
    const t = this.#s.tile.get(tileId(level, index)) as Buffer | undefined;
    if (t === undefined || t.length !== FAT_TILE_BYTES) return undefined;
    this.#tileCache.set(key, t);
    if (this.#tileCache.size > TILE_CACHE_SIZE) this.#tileCache.delete(this.#tileCache.keys().next().value!);
    return t;
  }

  #node(level: number, index: number): Buffer | undefined {
    const p = tilePosition(level, index);
    // A tile known to be incomplete is not looked up (its nodes are in the tail); another process
    // may have completed it since, so a tail miss still falls back to the tiles table.
    if (!isTileComplete(p.tileLevel, p.tileIndex, this.#knownSize)) {
      // A node's hash never changes once written (it may only move from the tail into a tile), so
      // tail nodes are cached: the high levels of the right edge are in every proof.
      const key = nodeSeq(level, index);
      const cached = this.#nodeCache.get(key);
      if (cached) return cached;
      const h = this.#s.node.get(level, index) as Buffer | undefined;
      if (h) {
        this.#nodeCache.set(key, h);
        if (this.#nodeCache.size > NODE_CACHE_SIZE) this.#nodeCache.delete(this.#nodeCache.keys().next().value!);
        return h;
      }
    }
    const tile = this.#tile(p.tileLevel, p.tileIndex);
    if (tile) {
      const off = fatTileByteOffset(p);
      return tile.subarray(off, off + HASH_SIZE);
    }
    return this.#s.node.get(level, index) as Buffer | undefined;
  }

  async getNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    try {
      for (const id of ids) {
        const h = this.#node(id.level, id.index);
        if (h) out.set(nodeSeq(id.level, id.index), h);
      }
    } catch (err) {
      wrap(err, 'read nodes');
    }
    return out;
  }

  // ---- entries ----------------------------------------------------------------------------

  // Leaf hashes of entries [start, start + count) from the level-0 tile or the node tail.
  #leafHashes(start: number, count: number): Buffer[] {
    const out: Buffer[] = new Array<Buffer>(count);
    const tileIndex = Math.floor(start / TILE_WIDTH);
    const tile = this.#tile(0, tileIndex);
    if (tile && start + count <= (tileIndex + 1) * TILE_WIDTH) {
      const base = start - tileIndex * TILE_WIDTH;
      for (let i = 0; i < count; i++) out[i] = tile.subarray((base + i) * HASH_SIZE, (base + i + 1) * HASH_SIZE);
      return out;
    }
    out.fill(EMPTY);
    for (const [idx, hash] of this.#s.nodeRange.all(0, start, start + count) as [number, Buffer][]) out[idx - start] = hash;
    return out;
  }

  #bundleEntries(n: number, data: Buffer): StoredEntry[] {
    const { entries, trailingBytes } = decodeEntryBundle(data);
    const items = entries.slice(0, TILE_WIDTH);
    const leaves = this.#leafHashes(n * TILE_WIDTH, TILE_WIDTH);
    const out: StoredEntry[] = items.map((bytes, j) => ({ index: n * TILE_WIDTH + j, bytes, leafHash: leaves[j]! }));
    const extra = entries.length - items.length;
    // A full bundle with more data after it: flag its last entry (the extra data is not part of the
    // log). A short bundle's trailing bytes are a torn entry, which the reader reports as missing.
    if ((extra > 0 || trailingBytes > 0) && out.length === TILE_WIDTH) {
      const last = out[out.length - 1]!;
      out[out.length - 1] = { ...last, anomaly: `entry bundle ${n} has ${extra} extra record(s) and ${trailingBytes} trailing byte(s)` };
    }
    return out;
  }

  #tailEntries(rows: [number, Buffer][]): StoredEntry[] {
    if (rows.length === 0) return [];
    const lo = Math.min(rows[0]![0], rows[rows.length - 1]![0]);
    const hi = Math.max(rows[0]![0], rows[rows.length - 1]![0]);
    const hashes = new Map((this.#s.nodeRange.all(0, lo, hi + 1) as [number, Buffer][]).map(([i, h]) => [i, h]));
    return rows.map(([index, bytes]) => ({ index, bytes, leafHash: hashes.get(index) ?? EMPTY }));
  }

  async getEntry(index: number): Promise<StoredEntry | undefined> {
    try {
      const tail = this.#s.tailEntry.get(index) as Buffer | undefined;
      if (tail) return this.#tailEntries([[index, tail]])[0];
      const n = Math.floor(index / TILE_WIDTH);
      const data = this.#s.bundle.get(n) as Buffer | undefined;
      if (!data) return undefined;
      return this.#bundleEntries(n, data).find((e) => e.index === index);
    } catch (err) {
      wrap(err, 'read entry');
    }
  }

  async *entryPages(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    let n = Math.floor(from / TILE_WIDTH);
    const lastBundle = Math.ceil(to / TILE_WIDTH);
    for (;;) {
      let page: StoredEntry[];
      try {
        const rows = this.#s.bundlePage.all(n, lastBundle, BUNDLE_PAGE) as [number, Buffer][];
        if (rows.length === 0) break;
        page = [];
        for (const [idx, data] of rows) {
          for (const e of this.#bundleEntries(idx, data)) if (e.index >= from && e.index < to) page.push(e);
        }
        n = rows[rows.length - 1]![0] + 1;
      } catch (err) {
        wrap(err, 'read entries');
      }
      if (page.length > 0) yield page;
      // Only between bundle pages: the last (empty) bundle read and the tail read stay one step,
      // so a writer packing the tail into a bundle in between cannot hide entries.
      await nextTurn();
    }
    let tail: StoredEntry[];
    try {
      tail = this.#tailEntries(this.#s.tailRange.all(from, to) as [number, Buffer][]);
    } catch (err) {
      wrap(err, 'read entries');
    }
    if (tail.length > 0) yield tail;
  }

  async *bundlePages(from: number, to: number): AsyncIterable<readonly BundleTile[]> {
    let n = from;
    while (n < to) {
      let page: BundleTile[];
      try {
        const rows = this.#s.bundlePage.all(n, to, BUNDLE_PAGE) as [number, Buffer][];
        if (rows.length === 0) return;
        const last = rows[rows.length - 1]![0];
        const tiles = new Map(this.#s.tileRange.all(tileId(0, rows[0]![0]), tileId(0, last) + 1) as [number, Buffer][]);
        page = rows.map(([idx, data]) => {
          const { entries, trailingBytes } = decodeEntryBundle(data);
          const tile = tiles.get(tileId(0, idx));
          return {
            index: idx,
            entries,
            malformed: entries.length !== TILE_WIDTH || trailingBytes !== 0,
            tile: tile?.length === FAT_TILE_BYTES ? tile : undefined,
          };
        });
        n = last + 1;
      } catch (err) {
        wrap(err, 'read bundles');
      }
      yield page;
      await nextTurn();
    }
  }

  async *entryPagesDescending(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    let tail: StoredEntry[];
    try {
      tail = this.#tailEntries(this.#s.tailRangeDesc.all(from, to) as [number, Buffer][]);
    } catch (err) {
      wrap(err, 'read entries');
    }
    const firstBundle = Math.floor(from / TILE_WIDTH);
    // Bundles below the tail just read: a writer may pack that tail into a bundle while the
    // consumer works, and its entries must not come out twice.
    let end = tail.length > 0 ? Math.floor(tail[tail.length - 1]!.index / TILE_WIDTH) : Math.ceil(to / TILE_WIDTH);
    if (tail.length > 0) {
      yield tail;
      await nextTurn();
    }
    for (;;) {
      let page: StoredEntry[];
      try {
        const rows = this.#s.bundlePageDesc.all(firstBundle, end, 1) as [number, Buffer][];
        if (rows.length === 0) break;
        const [idx, data] = rows[0]!;
        page = this.#bundleEntries(idx, data).filter((e) => e.index >= from && e.index < to).reverse();
        end = idx;
      } catch (err) {
        wrap(err, 'read entries');
      }
      if (page.length > 0) yield page;
      await nextTurn();
    }
  }

  // ---- checkpoints ------------------------------------------------------------------------

  async *checkpointPages(): AsyncIterable<readonly StoredCheckpoint[]> {
    let after = -1;
    for (;;) {
      let rows: CheckpointRow[];
      try {
        rows = this.#s.cpPage.all(after, CHECKPOINT_PAGE) as CheckpointRow[];
      } catch (err) {
        wrap(err, 'read checkpoints');
      }
      if (rows.length === 0) return;
      yield rows.map(toCheckpoint);
      after = rows[rows.length - 1]![0];
      await nextTurn();
    }
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    try {
      // Checkpoints are never changed once written, so the latest one is re-read only when a larger
      // tree size appears (an index-only MAX() costs far less than reading the note).
      const size = this.#s.cpMax.get() as number | null;
      if (size === null) return undefined;
      if (this.#latestCp?.treeSize === size) return this.#latestCp;
      const r = this.#s.cpLatest.get() as CheckpointRow | undefined;
      if (r && r[0] > this.#knownSize) this.#knownSize = r[0];
      this.#latestCp = r && toCheckpoint(r);
      return this.#latestCp;
    } catch (err) {
      wrap(err, 'read checkpoint');
    }
  }

  async checkpointAt(treeSize: number): Promise<StoredCheckpoint | undefined> {
    try {
      const r = this.#s.cpAt.get(treeSize) as CheckpointRow | undefined;
      return r && toCheckpoint(r);
    } catch (err) {
      wrap(err, 'read checkpoint');
    }
  }

  // ---- writes -----------------------------------------------------------------------------

  async appendBatch(batch: AppendBatch): Promise<void> {
    try {
      // BEGIN IMMEDIATE takes SQLite's write lock up front; other processes wait busy_timeout.
      this.#appendTx.immediate(batch);
      // Only once committed: a rolled-back batch must not raise the known size.
      this.#knownSize = Math.max(this.#knownSize, this.#pendingSize);
    } catch (err) {
      wrap(err, 'append');
    }
  }

  #write(batch: AppendBatch): void {
    const s = this.#s;
    const start = this.#size();
    if (start !== batch.expectedSize) {
      throw new ConflictError('LOG_APPEND_CONFLICT', 'the log grew since this writer last read it', {
        details: { expectedSize: batch.expectedSize, actualSize: start },
      });
    }
    const entries = batch.entries;
    const end = start + entries.length;

    // Entries: bundles completed by this batch become one row each; the rest go to the tail.
    const fullEnd = Math.floor(end / TILE_WIDTH) * TILE_WIDTH;
    for (let b = Math.floor(start / TILE_WIDTH) * TILE_WIDTH; b < fullEnd; b += TILE_WIDTH) {
      const parts: Buffer[] = [];
      if (b < start) {
        for (const [, data] of s.tailRange.all(b, start) as [number, Buffer][]) parts.push(data);
        s.delTail.run(b, start);
      }
      for (let i = Math.max(b, start); i < b + TILE_WIDTH; i++) parts.push(entries[i - start]!.bytes);
      s.insBundle.run(b / TILE_WIDTH, encodeEntryBundle(parts));
    }
    const tailRows: unknown[] = [];
    for (let i = Math.max(start, fullEnd); i < end; i++) tailRows.push(i, entries[i - start]!.bytes);
    this.#insertChunked(tailRows, 2, s.insTail, s.insTailChunk);

    // Nodes: tiles completed by this batch become one fat row each; the rest go to the node tail.
    const complete = new Map<string, StoredNode[]>();
    const nodeRows: unknown[] = [];
    for (const n of batch.nodes) {
      const p = tilePosition(n.level, n.index);
      if (isTileComplete(p.tileLevel, p.tileIndex, end)) {
        const key = `${p.tileLevel}/${p.tileIndex}`;
        let list = complete.get(key);
        if (!list) complete.set(key, (list = []));
        list.push(n);
      } else {
        nodeRows.push(n.level, n.index, n.hash);
      }
    }
    for (const [key, nodes] of complete) {
      const [tl, ti] = key.split('/').map(Number) as [number, number];
      const fat = Buffer.alloc(FAT_TILE_BYTES);
      // Nodes of this tile written by earlier batches.
      for (let row = 0; row < TILE_HEIGHT; row++) {
        const level = tl * TILE_HEIGHT + row;
        const perRow = TILE_WIDTH >> row;
        const lo = ti * perRow;
        for (const [idx, hash] of s.nodeRange.all(level, lo, lo + perRow) as [number, Buffer][]) {
          fat.set(hash, (rowOffset(row) + idx - lo) * HASH_SIZE);
        }
        s.delNodes.run(level, lo, lo + perRow);
      }
      for (const n of nodes) fat.set(n.hash, fatTileByteOffset(tilePosition(n.level, n.index)));
      s.insTile.run(tileId(tl, ti), fat);
    }
    this.#insertChunked(nodeRows, 3, s.insNode, s.insNodeChunk);

    const cp = batch.checkpoint;
    s.insCp.run(cp.treeSize, cp.rootHash, cp.note, cp.timeMs);
    if (batch.sidecar) this.#writeSidecar(batch.sidecar);
    this.#pendingSize = end;
  }

  #insertChunked(flat: unknown[], width: number, one: Database.Statement, chunk: Database.Statement): void {
    const rows = flat.length / width;
    let r = 0;
    for (; r + CHUNK <= rows; r += CHUNK) chunk.run(flat.slice(r * width, (r + CHUNK) * width));
    for (; r < rows; r++) one.run(flat.slice(r * width, (r + 1) * width));
  }

  // ---- misc -------------------------------------------------------------------------------

  async stats(): Promise<StoreStats> {
    try {
      let bytes = 0;
      for (const suffix of ['', '-wal']) {
        try {
          bytes += statSync(this.#path + suffix).size;
        } catch {
          // no WAL file yet
        }
      }
      return { treeSize: this.#size(), bytesOnDisk: bytes, checkpoints: this.#s.cpCount.get() as number };
    } catch (err) {
      wrap(err, 'stats');
    }
  }

  // ---- off-ledger data ----------------------------------------------------------------------

  async getDocument(hash: string): Promise<{ kind: string; bytes: Buffer } | undefined> {
    try {
      const r = this.#s.getDoc.get(hash) as [string, Buffer] | undefined;
      return r && { kind: r[0], bytes: r[1] };
    } catch (err) {
      wrap(err, 'read document');
    }
  }

  async *documentPages(): AsyncIterable<readonly SidecarDocument[]> {
    let after = '';
    for (;;) {
      let rows: [string, string, Buffer][];
      try {
        rows = this.#s.docPage.all(after, 512) as [string, string, Buffer][];
      } catch (err) {
        wrap(err, 'read documents');
      }
      if (rows.length === 0) return;
      yield rows.map(([hash, kind, bytes]) => ({ hash, kind, bytes }));
      after = rows[rows.length - 1]![0];
      await nextTurn();
    }
  }

  async getCommitment(commitment: string): Promise<SidecarCommitment | undefined> {
    try {
      const r = this.#s.getCommit.get(commitment) as [string, string, string, Buffer] | undefined;
      return r && { commitment: r[0], kind: r[1], value: r[2], salt: r[3] };
    } catch (err) {
      wrap(err, 'read commitment');
    }
  }

  async findCommitment(kind: string, value: string): Promise<SidecarCommitment | undefined> {
    try {
      const r = this.#s.findCommit.get(kind, value) as [string, string, string, Buffer] | undefined;
      return r && { commitment: r[0], kind: r[1], value: r[2], salt: r[3] };
    } catch (err) {
      wrap(err, 'read commitment');
    }
  }

  async *commitmentPages(): AsyncIterable<readonly SidecarCommitment[]> {
    let after = '';
    for (;;) {
      let rows: [string, string, string, Buffer][];
      try {
        rows = this.#s.commitPage.all(after, 1024) as [string, string, string, Buffer][];
      } catch (err) {
        wrap(err, 'read commitments');
      }
      if (rows.length === 0) return;
      yield rows.map(([commitment, kind, value, salt]) => ({ commitment, kind, value, salt }));
      after = rows[rows.length - 1]![0];
      await nextTurn();
    }
  }

  async findCommitments(kind: string, value: string): Promise<readonly SidecarCommitment[]> {
    try {
      return (this.#s.findCommits.all(kind, value) as [string, string, string, Buffer][]).map(([commitment, k, v, salt]) => ({ commitment, kind: k, value: v, salt }));
    } catch (err) {
      wrap(err, 'read commitment');
    }
  }

  // Copies every WAL frame into the database file and truncates the WAL to zero bytes, so no old
  // page image (one holding a deleted opening, say) stays in it. Returns false when a reader's
  // snapshot or another writer kept it from completing within `waitMs`.
  #checkpointTruncate(waitMs: number): boolean {
    const before = this.#db.pragma('busy_timeout', { simple: true }) as number;
    try {
      this.#db.pragma(`busy_timeout = ${waitMs}`);
      const r = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
      return r[0]?.busy === 0;
    } catch {
      return false;
    } finally {
      this.#db.pragma(`busy_timeout = ${before}`);
    }
  }

  async scrub(): Promise<ScrubReport> {
    if (this.#path === ':memory:' || this.#path === '') return { complete: true, detail: 'in-memory database' };
    // secure_delete has zeroed the deleted rows in the pages the erasure wrote; the WAL still
    // holds older images of those pages until it is checkpointed and truncated. TRUNCATE waits
    // (busy_timeout) for readers on an older snapshot; a reader that keeps its snapshot longer
    // (a long verification or export) blocks it, so it is retried, and done again by the next
    // writer to open the file and when the last connection closes (SQLite then deletes the WAL).
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.#checkpointTruncate(1_000)) return { complete: true, detail: 'WAL checkpointed and truncated' };
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
    return {
      complete: false,
      detail: 'a reader holds an older snapshot: the WAL keeps old page images until it is checkpointed (next open, or when the last connection closes)',
    };
  }

  async writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): Promise<void> {
    try {
      this.#db.transaction(() => this.#writeSidecar(sidecar)).immediate();
    } catch (err) {
      wrap(err, 'write off-ledger data');
    }
  }

  #writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): void {
    const s = this.#s;
    const docs: unknown[] = [];
    for (const d of sidecar.documents) docs.push(d.hash, d.kind, d.bytes);
    this.#insertChunked(docs, 3, s.insDoc, s.insDocChunk);
    const cs: unknown[] = [];
    for (const c of sidecar.commitments) cs.push(c.commitment, c.kind, c.value, c.salt);
    this.#insertChunked(cs, 4, s.insCommit, s.insCommitChunk);
    for (const st of sidecar.state) s.putState.run(st.ns, st.key, st.value);
    for (const c of sidecar.erase ?? []) s.eraseCommit.run(c);
    for (const h of sidecar.eraseDocuments ?? []) s.eraseDoc.run(h);
  }

  async getState(ns: string, key: string): Promise<string | undefined> {
    try {
      return this.#s.getState.get(ns, key) as string | undefined;
    } catch (err) {
      wrap(err, 'read state');
    }
  }

  async listState(ns: string): Promise<readonly SidecarState[]> {
    try {
      return (this.#s.listState.all(ns) as [string, string, string][]).map(([n, key, value]) => ({ ns: n, key, value }));
    } catch (err) {
      wrap(err, 'read state');
    }
  }

  async readSnapshot(): Promise<{ readonly store: LogStore; release(): Promise<void> }> {
    // A second read-only connection inside one read transaction: WAL gives it a stable snapshot
    // while this connection (or another process) keeps writing. An in-memory database cannot be
    // opened twice; it has no other writer, so it is its own snapshot.
    if (this.#path === ':memory:' || this.#path === '') return { store: this, release: async () => {} };
    const snap = SqliteStore.open(this.#path, { readonly: true });
    try {
      snap.#db.exec('BEGIN');
      snap.#size(); // the first read fixes the snapshot
    } catch (err) {
      await snap.close();
      wrap(err, 'snapshot');
    }
    return {
      store: snap,
      release: async () => {
        try {
          if (snap.#db.inTransaction) snap.#db.exec('COMMIT');
        } finally {
          await snap.close();
        }
      },
    };
  }

  async close(): Promise<void> {
    // The last connection to close checkpoints and deletes the WAL itself.
    if (this.#db.open) this.#db.close();
  }
}
