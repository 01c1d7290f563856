/**
 * The PostgreSQL backend: the same C2SP tlog-tiles layout as the SQLite backend (complete entry
 * bundles and complete "fat" tiles are single rows; only the right edge of the tree is kept row by
 * row and is repacked in the transaction that completes it), so several Custos processes can
 * serve and append to one log.
 *
 * Sequencing happens inside PostgreSQL: every batch is one transaction that first takes a
 * transaction-scoped advisory lock (one fixed key per database), then checks the stored size
 * against the size the batch was sequenced on. Writers in any number of processes therefore
 * serialize on the lock and never fork the log; a writer that waits longer than `lockTimeoutMs`
 * gets LOG_LOCKED. A writer refused because the log grew keeps the lock for its retry (see
 * PostgresStore#hold), so back-to-back writers cannot starve one another.
 *
 * Reads go through a pool. Every multi-row read or write is one statement (arrays passed as
 * parameters and `unnest`ed), so a batch of 10,000 entries is about ten round trips.
 *
 * The `pg` driver is loaded with a dynamic import in {@link PostgresStore.connect}, so users of the
 * SQLite backend never load it.
 * @module
 */
import type { CustomTypesConfig, Pool, PoolClient, QueryResultRow } from 'pg';
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
  tilePosition,
} from '../../core/merkle/tiles.js';
import type {
  AppendBatch,
  BundleTile,
  LogStore,
  ScrubReport,
  SidecarCommitment,
  SidecarDocument,
  SidecarState,
  StoreStats,
  StoredCheckpoint,
  StoredEntry,
  StoredNode,
} from '../store.js';
import { migrate } from './schema.js';

/** Options for {@link PostgresStore.connect}. */
export interface PostgresStoreOptions {
  /**
   * Most connections this store opens (default 10). A read snapshot holds one for as long as it
   * is open, and an append holds one for its transaction, so keep it at 2 or more.
   */
  readonly poolSize?: number;
  /** How long a writer waits for another writer's lock before LOG_LOCKED (ms, default 10,000). */
  readonly lockTimeoutMs?: number;
}

/**
 * Advisory lock key (a fixed 64-bit value, "CustosAp") taken by every append. Advisory locks are
 * scoped to the current database: one log per database.
 */
const APPEND_LOCK_KEY = 0x437573746f734170n;

// Bundles per page when streaming entries (16 x 256 = 4096 entries).
const BUNDLE_PAGE = 16;
const CHECKPOINT_PAGE = 4096;
const DOCUMENT_PAGE = 512;
const COMMITMENT_PAGE = 1024;
// Complete tiles are immutable, so they can be cached; 256 fat tiles = 4 MiB.
const TILE_CACHE_SIZE = 256;
// Tail nodes cached by seq (FIFO): 16,384 x 32 bytes.
const NODE_CACHE_SIZE = 16_384;
const EMPTY = Buffer.alloc(0);
// Longest time the append lock is kept for a refused writer's retry (see PostgresStore#hold).
const RETAIN_MS = 2000;
// PostgreSQL's type OID of int8 (BIGINT), also the type of COUNT(*) and pg_database_size().
const INT8_OID = 20;

/** Runs one SQL text and returns its rows (of the last statement, for a multi-statement text). */
type Exec = <R extends QueryResultRow>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

interface CheckpointRow {
  readonly tree_size: number;
  readonly root: Buffer;
  readonly note: string;
  readonly time_ms: number;
}

interface CommitmentRow {
  readonly commitment: string;
  readonly kind: string;
  readonly value: string;
  readonly salt: Buffer;
}

const CHECKPOINT_COLUMNS = 'tree_size, root, note, time_ms';
const SIZE_SQL = 'SELECT (SELECT MAX(idx) FROM entry_tail) AS t, (SELECT MAX(idx) FROM entry_bundles) AS b';
// Tail entries with their leaf hashes (level-0 nodes of the node tail).
const TAIL_ENTRIES_SQL =
  'SELECT e.idx, e.data, n.hash FROM entry_tail e LEFT JOIN node_tail n ON n.level = 0 AND n.idx = e.idx WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx';
const TAIL_NODES_SQL =
  'SELECT n.level, n.idx, n.hash FROM node_tail n JOIN unnest($1::int[], $2::bigint[]) AS r(level, idx) ON n.level = r.level AND n.idx = r.idx';

/** Row key of tile (level, index) in the tiles table (as in the SQLite backend). */
function tileId(level: number, index: number): number {
  return level * 2 ** 40 + index;
}

function toCheckpoint(r: CheckpointRow): StoredCheckpoint {
  return { treeSize: r.tree_size, rootHash: r.root, note: r.note, timeMs: r.time_ms };
}

function toCommitment(r: CommitmentRow): SidecarCommitment {
  return { commitment: r.commitment, kind: r.kind, value: r.value, salt: r.salt };
}

function sizeOf(r: { t: number | null; b: number | null } | undefined): number {
  const t = r?.t ?? null;
  const b = r?.b ?? null;
  return t !== null ? t + 1 : b === null ? 0 : (b + 1) * TILE_WIDTH;
}

/** Wraps pg and network errors so PostgreSQL's error shapes never leak above the store. */
function wrap(err: unknown, what: string): never {
  if (err instanceof CustosError) throw err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  // 55P03 lock_not_available (lock_timeout expired), 40P01 deadlock_detected.
  if (code === '55P03' || code === '40P01') {
    throw new ConflictError('LOG_LOCKED', 'the log is locked by another writer', { cause: err });
  }
  // XX001 data_corrupted, XX002 index_corrupted.
  if (code === 'XX001' || code === 'XX002') {
    throw new StoreError('STORE_CORRUPT', `database is corrupt (${what})`, { cause: err });
  }
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? `, SQLSTATE ${code}` : '';
  throw new StoreError('STORE_FAILURE', `storage failure (${what}${sqlstate})`, { cause: err });
}

function execOn(q: Pool | PoolClient): Exec {
  return async <R extends QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<R[]> => {
    // Without parameters pg uses the simple query protocol, which accepts several statements and
    // then resolves to one result per statement.
    const res = (await q.query(sql, params as unknown[] | undefined)) as unknown as { rows: R[] } | { rows: R[] }[];
    return Array.isArray(res) ? (res[res.length - 1]?.rows ?? []) : res.rows;
  };
}

type Checkout = Awaited<ReturnType<typeof checkout>>;

/** Rolls back and releases; a failed ROLLBACK means the connection is unusable, so it is destroyed. */
async function rollback(c: Checkout): Promise<void> {
  try {
    await c.exec('ROLLBACK');
    c.release();
  } catch (err) {
    c.release(err);
  }
}

/** A pooled client with an error listener while it is checked out (an unhandled 'error' would crash the process). */
async function checkout(pool: Pool): Promise<{ client: PoolClient; exec: Exec; release(destroy?: unknown): void }> {
  const client = await pool.connect();
  let broken: unknown;
  const onError = (err: unknown) => {
    broken ??= err ?? new Error('connection error');
  };
  client.on('error', onError);
  let released = false;
  return {
    client,
    exec: execOn(client),
    release(destroy?: unknown) {
      if (released) return;
      released = true;
      client.off('error', onError);
      const bad = broken ?? destroy;
      // A client that failed is destroyed, not returned to the pool.
      client.release(bad === undefined ? undefined : bad instanceof Error ? bad : true);
    },
  };
}

/** Dedupes rows by key: the first (keepLast = false) or last occurrence wins, in first-seen order. */
function dedupe<T>(rows: readonly T[], key: (r: T) => string, keepLast: boolean): T[] {
  const m = new Map<string, T>();
  for (const r of rows) {
    const k = key(r);
    if (keepLast || !m.has(k)) m.set(k, r);
  }
  return [...m.values()];
}

/** A {@link LogStore} in a PostgreSQL database. */
export class PostgresStore implements LogStore {
  readonly backend = 'postgres';
  readonly #pool: Pool;
  readonly #exec: Exec;
  readonly #lockTimeoutMs: number;
  // Set on a read-snapshot view: releases its connection. Views refuse writes.
  readonly #release: (() => Promise<void>) | undefined;
  readonly #tileCache = new Map<number, Buffer>();
  readonly #nodeCache = new Map<number, Buffer>();
  #latestCp: StoredCheckpoint | undefined;
  // A lower bound of the tree size (sizes only grow): tiles complete below it are in `tiles`.
  #knownSize = 0;
  #closed = false;
  // How long the append lock is kept after a refused batch (see #hold); 0 = never.
  readonly #retainMs: number;
  #held: { readonly c: Checkout; readonly timer: NodeJS.Timeout } | undefined;

  private constructor(pool: Pool, exec: Exec, lockTimeoutMs: number, retainMs: number, release?: () => Promise<void>) {
    this.#pool = pool;
    this.#exec = exec;
    this.#lockTimeoutMs = lockTimeoutMs;
    this.#retainMs = retainMs;
    this.#release = release;
  }

  /**
   * Connects to the database at `url` (a libpq connection URI) and applies migrations.
   * @throws {StoreError} STORE_FAILURE, STORE_SCHEMA_UNSUPPORTED
   */
  static async connect(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    let pg: typeof import('pg').default;
    try {
      pg = (await import('pg')).default;
    } catch (err) {
      throw new StoreError('STORE_FAILURE', 'the PostgreSQL driver (the pg package) cannot be loaded', { cause: err });
    }
    const lockTimeoutMs = Math.max(1, Math.floor(options.lockTimeoutMs ?? 10_000));
    const poolSize = Math.max(1, Math.floor(options.poolSize ?? 10));
    const builtin = pg.types;
    // BIGINT columns hold indices and sizes below 2^53: read them as numbers, not strings.
    const types = {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : builtin.getTypeParser(oid, format),
    } as CustomTypesConfig;
    let pool: Pool;
    try {
      pool = new pg.Pool({ connectionString: url, max: poolSize, types, application_name: 'custos' });
    } catch (err) {
      wrap(err, 'connect');
    }
    // An idle client whose connection drops is discarded by the pool; the next checkout reconnects.
    pool.on('error', () => {});
    try {
      const c = await checkout(pool);
      try {
        await migrate(c.exec, lockTimeoutMs);
      } catch (err) {
        await rollback(c);
        throw err;
      } finally {
        c.release();
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      wrap(err, 'connect');
    }
    // Other writers wait for a retained lock (see #hold): well within their lock timeout.
    const retainMs = poolSize >= 2 ? Math.min(RETAIN_MS, Math.floor(lockTimeoutMs / 4)) : 0;
    return new PostgresStore(pool, execOn(pool), lockTimeoutMs, retainMs);
  }

  #writable(what: string): void {
    if (this.#release) throw new StoreError('STORE_FAILURE', `a read snapshot is read-only (${what})`);
  }

  // ---- size -------------------------------------------------------------------------------

  async #size(): Promise<number> {
    const size = await this.#storedSize(this.#exec);
    if (size > this.#knownSize) this.#knownSize = size;
    return size;
  }

  async treeSize(): Promise<number> {
    try {
      return await this.#size();
    } catch (err) {
      wrap(err, 'read size');
    }
  }

  // ---- meta -------------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    try {
      return (await this.#exec<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]))[0]?.value;
    } catch (err) {
      wrap(err, 'read meta');
    }
  }

  async initMeta(values: Readonly<Record<string, string>>): Promise<void> {
    this.#writable('write meta');
    const keys = Object.keys(values);
    if (keys.length === 0) return;
    try {
      await this.#transaction('BEGIN', async (exec) => {
        // Inserting first makes a concurrent initMeta wait for this one (or this one for it).
        await exec('INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING', [keys, keys.map((k) => values[k]!)]);
        const rows = await exec<{ key: string; value: string }>('SELECT key, value FROM meta WHERE key = ANY($1::text[])', [keys]);
        const cur = new Map(rows.map((r) => [r.key, r.value]));
        for (const k of keys) {
          if (cur.get(k) !== values[k]) throw new ConflictError('DATA_DIR_EXISTS', `log already has a different ${k}`);
        }
      });
    } catch (err) {
      wrap(err, 'write meta');
    }
  }

  // ---- nodes ------------------------------------------------------------------------------

  /** Complete fat tiles by id, through the LRU cache; missing or wrong-sized tiles are absent. */
  async #tiles(ids: Iterable<number>): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    const missing: number[] = [];
    for (const id of new Set(ids)) {
      const hit = this.#tileCache.get(id);
      if (hit) {
        // Refresh LRU position.
        this.#tileCache.delete(id);
        this.#tileCache.set(id, hit);
        out.set(id, hit);
      } else {
        missing.push(id);
      }
    }
    if (missing.length === 0) return out;
    const rows = await this.#exec<{ id: number; hashes: Buffer }>('SELECT id, hashes FROM tiles WHERE id = ANY($1::bigint[])', [missing]);
    for (const r of rows) {
      if (r.hashes.length !== FAT_TILE_BYTES) continue;
      out.set(r.id, r.hashes);
      this.#tileCache.set(r.id, r.hashes);
      if (this.#tileCache.size > TILE_CACHE_SIZE) this.#tileCache.delete(this.#tileCache.keys().next().value!);
    }
    return out;
  }

  /** Node hashes from the node tail, keyed by nodeSeq. */
  async #tailNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    const rows = await this.#exec<{ level: number; idx: number; hash: Buffer }>(TAIL_NODES_SQL, [ids.map((n) => n.level), ids.map((n) => n.index)]);
    return new Map(rows.map((r) => [nodeSeq(r.level, r.idx), r.hash]));
  }

  /**
   * Resolves nodes as the SQLite backend does node by node, in at most three queries: a node of a
   * tile known to be incomplete is looked up in the (cached) node tail, then in the tiles; a node
   * of a tile known to be complete in the tiles, then in the node tail.
   */
  async getNodes(ids: readonly NodeId[]): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    try {
      const tailFirst: NodeId[] = [];
      const tileFirst: NodeId[] = [];
      for (const id of ids) {
        const p = tilePosition(id.level, id.index);
        // A tile known to be incomplete is not looked up (its nodes are in the tail); another
        // process may have completed it since, so a tail miss still falls back to the tiles.
        if (!isTileComplete(p.tileLevel, p.tileIndex, this.#knownSize)) {
          // A node's hash never changes once written (it may only move from the tail into a tile),
          // so tail nodes are cached: the high levels of the right edge are in every proof.
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
            if (this.#nodeCache.size > NODE_CACHE_SIZE) this.#nodeCache.delete(this.#nodeCache.keys().next().value!);
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
    } catch (err) {
      wrap(err, 'read nodes');
    }
    return out;
  }

  // ---- entries ----------------------------------------------------------------------------

  /** Leaf hashes of bundles (256 each): from their level-0 tiles, else from the node tail. */
  async #bundleLeaves(bundles: readonly number[]): Promise<Map<number, Buffer[]>> {
    const out = new Map<number, Buffer[]>();
    const tiles = await this.#tiles(bundles.map((n) => tileId(0, n)));
    const missing: number[] = [];
    for (const n of bundles) {
      const tile = tiles.get(tileId(0, n));
      if (!tile) {
        missing.push(n);
        continue;
      }
      const leaves = new Array<Buffer>(TILE_WIDTH);
      for (let i = 0; i < TILE_WIDTH; i++) leaves[i] = tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
      out.set(n, leaves);
    }
    if (missing.length > 0) {
      for (const n of missing) out.set(n, new Array<Buffer>(TILE_WIDTH).fill(EMPTY));
      const rows = await this.#exec<{ idx: number; hash: Buffer }>(
        'SELECT n.idx, n.hash FROM node_tail n JOIN unnest($1::bigint[]) AS r(b) ON n.level = 0 AND n.idx >= r.b * 256 AND n.idx < r.b * 256 + 256',
        [missing],
      );
      for (const r of rows) {
        const n = Math.floor(r.idx / TILE_WIDTH);
        out.get(n)![r.idx - n * TILE_WIDTH] = r.hash;
      }
    }
    return out;
  }

  #bundleEntries(n: number, data: Buffer, leaves: readonly Buffer[]): StoredEntry[] {
    const { entries, trailingBytes } = decodeEntryBundle(data);
    const items = entries.slice(0, TILE_WIDTH);
    const out: StoredEntry[] = items.map((bytes, j) => ({ index: n * TILE_WIDTH + j, bytes, leafHash: leaves[j] ?? EMPTY }));
    const extra = entries.length - items.length;
    // A full bundle with more data after it: flag its last entry (the extra data is not part of the
    // log). A short bundle's trailing bytes are a torn entry, which the reader reports as missing.
    if ((extra > 0 || trailingBytes > 0) && out.length === TILE_WIDTH) {
      const last = out[out.length - 1]!;
      out[out.length - 1] = { ...last, anomaly: `entry bundle ${n} has ${extra} extra record(s) and ${trailingBytes} trailing byte(s)` };
    }
    return out;
  }

  /** Entries of bundle rows, in the rows' order, restricted to [from, to). */
  async #bundleRowsEntries(rows: readonly { idx: number; data: Buffer }[], from: number, to: number): Promise<StoredEntry[]> {
    const leaves = await this.#bundleLeaves(rows.map((r) => r.idx));
    const page: StoredEntry[] = [];
    for (const { idx, data } of rows) {
      for (const e of this.#bundleEntries(idx, data, leaves.get(idx)!)) if (e.index >= from && e.index < to) page.push(e);
    }
    return page;
  }

  async #tailEntries(from: number, to: number, descending: boolean): Promise<StoredEntry[]> {
    const rows = await this.#exec<{ idx: number; data: Buffer; hash: Buffer | null }>(descending ? `${TAIL_ENTRIES_SQL} DESC` : TAIL_ENTRIES_SQL, [from, to]);
    return rows.map((r) => ({ index: r.idx, bytes: r.data, leafHash: r.hash ?? EMPTY }));
  }

  async getEntry(index: number): Promise<StoredEntry | undefined> {
    try {
      const n = Math.floor(index / TILE_WIDTH);
      const rows = await this.#exec<{ tail: boolean; data: Buffer; hash: Buffer | null }>(
        `SELECT TRUE AS tail, e.data, n.hash FROM entry_tail e LEFT JOIN node_tail n ON n.level = 0 AND n.idx = e.idx WHERE e.idx = $1
         UNION ALL SELECT FALSE, data, NULL FROM entry_bundles WHERE idx = $2`,
        [index, n],
      );
      const tail = rows.find((r) => r.tail);
      if (tail) return { index, bytes: tail.data, leafHash: tail.hash ?? EMPTY };
      const bundle = rows.find((r) => !r.tail);
      if (!bundle) return undefined;
      return (await this.#bundleRowsEntries([{ idx: n, data: bundle.data }], index, index + 1))[0];
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
        const rows = await this.#exec<{ idx: number; data: Buffer }>(
          'SELECT idx, data FROM entry_bundles WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3',
          [n, lastBundle, BUNDLE_PAGE],
        );
        if (rows.length === 0) break;
        page = await this.#bundleRowsEntries(rows, from, to);
        n = rows[rows.length - 1]!.idx + 1;
      } catch (err) {
        wrap(err, 'read entries');
      }
      if (page.length > 0) yield page;
    }
    let tail: StoredEntry[];
    try {
      tail = await this.#tailEntries(from, to, false);
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
        // tileId(0, idx) = idx: each bundle's level-0 tile in the same row.
        const rows = await this.#exec<{ idx: number; data: Buffer; hashes: Buffer | null }>(
          'SELECT b.idx, b.data, t.hashes FROM entry_bundles b LEFT JOIN tiles t ON t.id = b.idx WHERE b.idx >= $1 AND b.idx < $2 ORDER BY b.idx LIMIT $3',
          [n, to, BUNDLE_PAGE],
        );
        if (rows.length === 0) return;
        page = rows.map((r) => {
          const { entries, trailingBytes } = decodeEntryBundle(r.data);
          return {
            index: r.idx,
            entries,
            malformed: entries.length !== TILE_WIDTH || trailingBytes !== 0,
            tile: r.hashes?.length === FAT_TILE_BYTES ? r.hashes : undefined,
          };
        });
        n = rows[rows.length - 1]!.idx + 1;
      } catch (err) {
        wrap(err, 'read bundles');
      }
      yield page;
    }
  }

  async *entryPagesDescending(from: number, to: number): AsyncIterable<readonly StoredEntry[]> {
    let tail: StoredEntry[];
    try {
      tail = await this.#tailEntries(from, to, true);
    } catch (err) {
      wrap(err, 'read entries');
    }
    if (tail.length > 0) yield tail;
    const firstBundle = Math.floor(from / TILE_WIDTH);
    let end = Math.ceil(to / TILE_WIDTH);
    for (;;) {
      let page: StoredEntry[];
      try {
        // One bundle at a time: a newest-first listing usually wants only the first few entries.
        const rows = await this.#exec<{ idx: number; data: Buffer }>(
          'SELECT idx, data FROM entry_bundles WHERE idx >= $1 AND idx < $2 ORDER BY idx DESC LIMIT 1',
          [firstBundle, end],
        );
        if (rows.length === 0) break;
        page = (await this.#bundleRowsEntries(rows, from, to)).reverse();
        end = rows[0]!.idx;
      } catch (err) {
        wrap(err, 'read entries');
      }
      if (page.length > 0) yield page;
    }
  }

  // ---- checkpoints ------------------------------------------------------------------------

  async *checkpointPages(): AsyncIterable<readonly StoredCheckpoint[]> {
    let after = -1;
    for (;;) {
      let rows: CheckpointRow[];
      try {
        rows = await this.#exec<CheckpointRow>(
          `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size > $1 ORDER BY tree_size LIMIT $2`,
          [after, CHECKPOINT_PAGE],
        );
      } catch (err) {
        wrap(err, 'read checkpoints');
      }
      if (rows.length === 0) return;
      yield rows.map(toCheckpoint);
      after = rows[rows.length - 1]!.tree_size;
    }
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    try {
      // Checkpoints are never changed once written, so the latest one is re-read only when a larger
      // tree size appears (an index-only MAX() costs less than reading the note).
      const size = (await this.#exec<{ m: number | null }>('SELECT MAX(tree_size) AS m FROM checkpoints'))[0]?.m ?? null;
      if (size === null) return undefined;
      if (this.#latestCp?.treeSize === size) return this.#latestCp;
      const r = (await this.#exec<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size DESC LIMIT 1`))[0];
      if (r && r.tree_size > this.#knownSize) this.#knownSize = r.tree_size;
      this.#latestCp = r && toCheckpoint(r);
      return this.#latestCp;
    } catch (err) {
      wrap(err, 'read checkpoint');
    }
  }

  async checkpointAt(treeSize: number): Promise<StoredCheckpoint | undefined> {
    try {
      const r = (await this.#exec<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size = $1`, [treeSize]))[0];
      return r && toCheckpoint(r);
    } catch (err) {
      wrap(err, 'read checkpoint');
    }
  }

  // ---- writes -----------------------------------------------------------------------------

  /** Runs `fn` in a transaction on one pooled client: `begin` (which may hold several statements), `fn`, COMMIT; ROLLBACK on any error. */
  async #transaction<T>(begin: string, fn: (exec: Exec) => Promise<T>): Promise<T> {
    const c = await checkout(this.#pool);
    try {
      await c.exec(begin);
      const result = await fn(c.exec);
      await c.exec('COMMIT');
      return result;
    } catch (err) {
      await rollback(c);
      throw err;
    } finally {
      c.release();
    }
  }

  async appendBatch(batch: AppendBatch): Promise<void> {
    this.#writable('append');
    let end: number;
    try {
      end = await this.#append(batch);
    } catch (err) {
      wrap(err, 'append');
    }
    // Only once committed: a rolled-back batch must not raise the known size.
    if (end > this.#knownSize) this.#knownSize = end;
  }

  async #append(batch: AppendBatch): Promise<number> {
    let c: Checkout | undefined;
    let start: number | undefined;
    const held = this.#held;
    if (held) {
      // This store lost the last race and kept the lock: no batch can have committed since.
      this.#held = undefined;
      clearTimeout(held.timer);
      c = held.c;
      try {
        start = await this.#storedSize(c.exec);
      } catch {
        // The held session is gone (idle_in_transaction_session_timeout, say): start afresh.
        c.release(true);
        c = undefined;
      }
    }
    if (!c) {
      c = await checkout(this.#pool);
      try {
        // The advisory lock serializes the writers of this database, in every process;
        // lock_timeout bounds the wait (55P03, LOG_LOCKED). Taken once per batch, before the size
        // is read.
        await c.exec(`BEGIN; SET LOCAL lock_timeout = ${this.#lockTimeoutMs}; SELECT pg_advisory_xact_lock(${APPEND_LOCK_KEY})`);
        start = await this.#storedSize(c.exec);
      } catch (err) {
        await rollback(c);
        throw err;
      }
    }
    if (start !== batch.expectedSize) {
      this.#hold(c);
      throw new ConflictError('LOG_APPEND_CONFLICT', 'the log grew since this writer last read it', {
        details: { expectedSize: batch.expectedSize, actualSize: start },
      });
    }
    try {
      const end = await this.#write(c.exec, batch, start);
      await c.exec('COMMIT');
      c.release();
      return end;
    } catch (err) {
      await rollback(c);
      throw err;
    }
  }

  /**
   * Keeps a refused batch's transaction, and with it the append lock, for the writer's retry.
   *
   * A writer refused with LOG_APPEND_CONFLICT rereads the log (through other pooled connections)
   * and re-sequences. If it released the lock first, a writer appending back to back would
   * already hold the lock again for its next batch while the first one rereads, so the first one
   * would read a size that is stale by the time it gets the lock, and lose again, every time
   * (measured: with two writers appending groups back to back, one was refused until Log gave
   * up). Holding the lock makes the reread exact and the retry succeed. The lock is released when
   * the retry commits, or after `#retainMs` if no retry comes. Needs a second pooled connection
   * for the reread, so a pool of one never holds.
   */
  #hold(c: Checkout): void {
    if (this.#retainMs <= 0 || this.#closed || this.#held) {
      void rollback(c);
      return;
    }
    const h: { c: Checkout; timer: NodeJS.Timeout } = {
      c,
      timer: setTimeout(() => {
        if (this.#held !== h) return;
        this.#held = undefined;
        void rollback(c);
      }, this.#retainMs),
    };
    h.timer.unref();
    this.#held = h;
  }

  async #storedSize(exec: Exec): Promise<number> {
    // Read committed: this statement's snapshot is taken after the lock was granted, so it sees
    // every batch committed before.
    return sizeOf((await exec<{ t: number | null; b: number | null }>(SIZE_SQL))[0]);
  }

  /** Writes a batch whose expected size was checked under the lock; returns the new size. */
  async #write(exec: Exec, batch: AppendBatch, start: number): Promise<number> {
    const entries = batch.entries;
    const end = start + entries.length;

    // Entries: bundles completed by this batch become one row each; the rest go to the tail.
    const fullEnd = Math.floor(end / TILE_WIDTH) * TILE_WIDTH;
    const bundleIdx: number[] = [];
    const bundleData: Buffer[] = [];
    for (let b = Math.floor(start / TILE_WIDTH) * TILE_WIDTH; b < fullEnd; b += TILE_WIDTH) {
      const parts: Buffer[] = [];
      if (b < start) {
        // Entries of this bundle written by earlier batches: moved out of the tail.
        const rows = await exec<{ idx: number; data: Buffer }>('DELETE FROM entry_tail WHERE idx >= $1 AND idx < $2 RETURNING idx, data', [b, start]);
        rows.sort((x, y) => x.idx - y.idx);
        for (const r of rows) parts.push(r.data);
      }
      for (let i = Math.max(b, start); i < b + TILE_WIDTH; i++) parts.push(entries[i - start]!.bytes);
      bundleIdx.push(b / TILE_WIDTH);
      bundleData.push(encodeEntryBundle(parts));
    }
    if (bundleIdx.length > 0) {
      await exec('INSERT INTO entry_bundles (idx, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])', [bundleIdx, bundleData]);
    }
    const tailIdx: number[] = [];
    const tailData: Buffer[] = [];
    for (let i = Math.max(start, fullEnd); i < end; i++) {
      tailIdx.push(i);
      tailData.push(entries[i - start]!.bytes);
    }
    if (tailIdx.length > 0) {
      await exec('INSERT INTO entry_tail (idx, data) SELECT * FROM unnest($1::bigint[], $2::bytea[])', [tailIdx, tailData]);
    }

    // Nodes: tiles completed by this batch become one fat row each; the rest go to the node tail.
    const complete = new Map<number, StoredNode[]>();
    const tailLevel: number[] = [];
    const tailNodeIdx: number[] = [];
    const tailHash: Buffer[] = [];
    for (const n of batch.nodes) {
      const p = tilePosition(n.level, n.index);
      if (isTileComplete(p.tileLevel, p.tileIndex, end)) {
        const id = tileId(p.tileLevel, p.tileIndex);
        let list = complete.get(id);
        if (!list) complete.set(id, (list = []));
        list.push(n);
      } else {
        tailLevel.push(n.level);
        tailNodeIdx.push(n.index);
        tailHash.push(n.hash);
      }
    }
    if (complete.size > 0) {
      const fats = new Map<number, Buffer>();
      // Only a tile whose first leaf precedes this batch can hold nodes of earlier batches (at
      // most one per tile level): move those out of the node tail, in one statement.
      const rangeLevel: number[] = [];
      const rangeLo: number[] = [];
      const rangeHi: number[] = [];
      for (const [id, nodes] of complete) {
        fats.set(id, Buffer.alloc(FAT_TILE_BYTES));
        const { tileLevel, tileIndex } = tilePosition(nodes[0]!.level, nodes[0]!.index);
        if (tileIndex * TILE_WIDTH ** (tileLevel + 1) >= start) continue;
        for (let row = 0; row < TILE_HEIGHT; row++) {
          const perRow = TILE_WIDTH >> row;
          rangeLevel.push(tileLevel * TILE_HEIGHT + row);
          rangeLo.push(tileIndex * perRow);
          rangeHi.push((tileIndex + 1) * perRow);
        }
      }
      if (rangeLevel.length > 0) {
        const moved = await exec<{ level: number; idx: number; hash: Buffer }>(
          `DELETE FROM node_tail n USING unnest($1::int[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)
           WHERE n.level = r.level AND n.idx >= r.lo AND n.idx < r.hi RETURNING n.level, n.idx, n.hash`,
          [rangeLevel, rangeLo, rangeHi],
        );
        for (const m of moved) {
          const p = tilePosition(m.level, m.idx);
          fats.get(tileId(p.tileLevel, p.tileIndex))?.set(m.hash, fatTileByteOffset(p));
        }
      }
      for (const [id, nodes] of complete) {
        const fat = fats.get(id)!;
        for (const n of nodes) fat.set(n.hash, fatTileByteOffset(tilePosition(n.level, n.index)));
      }
      await exec('INSERT INTO tiles (id, hashes) SELECT * FROM unnest($1::bigint[], $2::bytea[])', [[...fats.keys()], [...fats.values()]]);
    }
    if (tailLevel.length > 0) {
      await exec('INSERT INTO node_tail (level, idx, hash) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])', [tailLevel, tailNodeIdx, tailHash]);
    }

    const cp = batch.checkpoint;
    await exec(`INSERT INTO checkpoints (${CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4)`, [cp.treeSize, cp.rootHash, cp.note, cp.timeMs]);
    if (batch.sidecar) await this.#writeSidecar(exec, batch.sidecar);
    return end;
  }

  async writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): Promise<void> {
    this.#writable('write off-ledger data');
    try {
      await this.#transaction('BEGIN', (exec) => this.#writeSidecar(exec, sidecar));
    } catch (err) {
      wrap(err, 'write off-ledger data');
    }
  }

  async #writeSidecar(exec: Exec, sidecar: NonNullable<AppendBatch['sidecar']>): Promise<void> {
    // One statement per table; duplicates within the batch are dropped first (a statement may
    // not touch a row twice): the first document or opening wins, as ON CONFLICT DO NOTHING
    // would row by row, and the last state value wins, as an upsert would.
    const docs = dedupe(sidecar.documents, (d) => d.hash, false);
    if (docs.length > 0) {
      await exec('INSERT INTO documents (hash, kind, data) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT (hash) DO NOTHING', [
        docs.map((d) => d.hash),
        docs.map((d) => d.kind),
        docs.map((d) => d.bytes),
      ]);
    }
    const cs = dedupe(sidecar.commitments, (c) => c.commitment, false);
    if (cs.length > 0) {
      await exec(
        'INSERT INTO commitments (commitment, kind, value, salt) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) ON CONFLICT (commitment) DO NOTHING',
        [cs.map((c) => c.commitment), cs.map((c) => c.kind), cs.map((c) => c.value), cs.map((c) => c.salt)],
      );
    }
    const st = dedupe(sidecar.state, (s) => JSON.stringify([s.ns, s.key]), true);
    if (st.length > 0) {
      await exec(
        'INSERT INTO state (ns, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value',
        [st.map((s) => s.ns), st.map((s) => s.key), st.map((s) => s.value)],
      );
    }
    // Erasure, after the inserts: in the transaction of the event that records it.
    if (sidecar.erase && sidecar.erase.length > 0) await exec('DELETE FROM commitments WHERE commitment = ANY($1::text[])', [[...sidecar.erase]]);
    if (sidecar.eraseDocuments && sidecar.eraseDocuments.length > 0) await exec('DELETE FROM documents WHERE hash = ANY($1::text[])', [[...sidecar.eraseDocuments]]);
  }

  // ---- misc -------------------------------------------------------------------------------

  async stats(): Promise<StoreStats> {
    try {
      // bytesOnDisk is the size of the whole current database (pg_database_size), which is this
      // log's when the database holds only this log.
      const r = (
        await this.#exec<{ t: number | null; b: number | null; c: number; bytes: number }>(
          `SELECT (SELECT MAX(idx) FROM entry_tail) AS t, (SELECT MAX(idx) FROM entry_bundles) AS b,
                  (SELECT COUNT(*) FROM checkpoints) AS c, pg_database_size(current_database()) AS bytes`,
        )
      )[0];
      const treeSize = sizeOf(r);
      if (treeSize > this.#knownSize) this.#knownSize = treeSize;
      return { treeSize, bytesOnDisk: r?.bytes ?? 0, checkpoints: r?.c ?? 0 };
    } catch (err) {
      wrap(err, 'stats');
    }
  }

  // ---- off-ledger data ----------------------------------------------------------------------

  async getDocument(hash: string): Promise<{ kind: string; bytes: Buffer } | undefined> {
    try {
      const r = (await this.#exec<{ kind: string; data: Buffer }>('SELECT kind, data FROM documents WHERE hash = $1', [hash]))[0];
      return r && { kind: r.kind, bytes: r.data };
    } catch (err) {
      wrap(err, 'read document');
    }
  }

  async *documentPages(): AsyncIterable<readonly SidecarDocument[]> {
    let after = '';
    for (;;) {
      let rows: { hash: string; kind: string; data: Buffer }[];
      try {
        rows = await this.#exec('SELECT hash, kind, data FROM documents WHERE hash > $1 ORDER BY hash LIMIT $2', [after, DOCUMENT_PAGE]);
      } catch (err) {
        wrap(err, 'read documents');
      }
      if (rows.length === 0) return;
      yield rows.map((r) => ({ hash: r.hash, kind: r.kind, bytes: r.data }));
      after = rows[rows.length - 1]!.hash;
    }
  }

  async getCommitment(commitment: string): Promise<SidecarCommitment | undefined> {
    try {
      const r = (await this.#exec<CommitmentRow>('SELECT commitment, kind, value, salt FROM commitments WHERE commitment = $1', [commitment]))[0];
      return r && toCommitment(r);
    } catch (err) {
      wrap(err, 'read commitment');
    }
  }

  async findCommitment(kind: string, value: string): Promise<SidecarCommitment | undefined> {
    try {
      const r = (
        await this.#exec<CommitmentRow>('SELECT commitment, kind, value, salt FROM commitments WHERE kind = $1 AND value = $2 ORDER BY commitment LIMIT 1', [
          kind,
          value,
        ])
      )[0];
      return r && toCommitment(r);
    } catch (err) {
      wrap(err, 'read commitment');
    }
  }

  async *commitmentPages(): AsyncIterable<readonly SidecarCommitment[]> {
    let after = '';
    for (;;) {
      let rows: CommitmentRow[];
      try {
        rows = await this.#exec<CommitmentRow>('SELECT commitment, kind, value, salt FROM commitments WHERE commitment > $1 ORDER BY commitment LIMIT $2', [
          after,
          COMMITMENT_PAGE,
        ]);
      } catch (err) {
        wrap(err, 'read commitments');
      }
      if (rows.length === 0) return;
      yield rows.map(toCommitment);
      after = rows[rows.length - 1]!.commitment;
    }
  }

  async findCommitments(kind: string, value: string): Promise<readonly SidecarCommitment[]> {
    try {
      const rows = await this.#exec<CommitmentRow>('SELECT commitment, kind, value, salt FROM commitments WHERE kind = $1 AND value = $2 ORDER BY commitment', [kind, value]);
      return rows.map(toCommitment);
    } catch (err) {
      wrap(err, 'read commitment');
    }
  }

  async scrub(what: 'commitments' | 'documents' = 'commitments'): Promise<ScrubReport> {
    if (this.#release || this.#closed) return { complete: false, detail: 'not a writable store' };
    // The DELETE committed with the erasure event left dead tuples in the heap and index pages.
    // VACUUM FULL rewrites the table and its indexes into new files and drops the old ones, so no
    // file of the table holds the deleted bytes (plain VACUUM only marks the space reusable). It
    // takes an ACCESS EXCLUSIVE lock on this small table for the rewrite; it cannot run inside a
    // transaction, so it runs after the commit. What it cannot reach: WAL segments (until
    // recycled), base backups, replicas and archived WAL, which the operator must handle.
    // A reader holding the table (an open snapshot) would make VACUUM FULL wait; lock_timeout
    // bounds that wait, on the one session that runs it.
    let c: Checkout | undefined;
    try {
      c = await checkout(this.#pool);
      await c.exec(`SET lock_timeout = ${this.#lockTimeoutMs}`);
      await c.exec(`VACUUM FULL ${what}`);
      await c.exec('RESET lock_timeout');
      c.release();
      c = undefined;
      return { complete: true, detail: `VACUUM FULL ${what}; WAL segments, replicas and backups may still hold the rows until recycled` };
    } catch (err) {
      c?.release(err);
      return { complete: false, detail: `VACUUM FULL ${what} failed (${(err as Error).message}); run it as the table owner` };
    }
  }

  async getState(ns: string, key: string): Promise<string | undefined> {
    try {
      return (await this.#exec<{ value: string }>('SELECT value FROM state WHERE ns = $1 AND key = $2', [ns, key]))[0]?.value;
    } catch (err) {
      wrap(err, 'read state');
    }
  }

  async listState(ns: string): Promise<readonly SidecarState[]> {
    try {
      const rows = await this.#exec<{ ns: string; key: string; value: string }>('SELECT ns, key, value FROM state WHERE ns = $1 ORDER BY key', [ns]);
      return rows.map((r) => ({ ns: r.ns, key: r.key, value: r.value }));
    } catch (err) {
      wrap(err, 'read state');
    }
  }

  async readSnapshot(): Promise<{ readonly store: LogStore; release(): Promise<void> }> {
    // A view is already a snapshot.
    if (this.#release) return { store: this, release: async () => {} };
    let c: Checkout;
    try {
      c = await checkout(this.#pool);
    } catch (err) {
      wrap(err, 'snapshot');
    }
    const conn = c;
    let released = false;
    // Idempotent; a read-only transaction has nothing to lose, so a failed COMMIT only destroys
    // the connection instead of failing whoever is done reading.
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      try {
        await conn.exec('COMMIT');
        conn.release();
      } catch (err) {
        conn.release(err);
      }
    };
    try {
      await conn.exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const view = new PostgresStore(this.#pool, conn.exec, this.#lockTimeoutMs, 0, release);
      await view.#size(); // the first read fixes the snapshot
      return { store: view, release };
    } catch (err) {
      conn.release(err);
      released = true;
      wrap(err, 'snapshot');
    }
  }

  /** Ends the pool (a snapshot view's close releases the snapshot instead). */
  async close(): Promise<void> {
    if (this.#release) return this.#release();
    if (this.#closed) return;
    this.#closed = true;
    const held = this.#held;
    if (held) {
      this.#held = undefined;
      clearTimeout(held.timer);
      await rollback(held.c);
    }
    try {
      await this.#pool.end();
    } catch (err) {
      wrap(err, 'close');
    }
  }
}
