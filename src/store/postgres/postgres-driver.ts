/**
 * The PostgreSQL {@link TiledDriver}: SQL over the tables of store/postgres/schema.ts, on a pool
 * (or, for a read snapshot, on one connection in a REPEATABLE READ transaction).
 *
 * Sequencing happens inside PostgreSQL: every batch is one transaction that first takes a
 * transaction-scoped advisory lock (one fixed key per database), then checks the stored size
 * against the size the batch was sequenced on. Writers in any number of processes therefore
 * serialize on the lock and never fork the log; a writer that waits longer than `lockTimeoutMs`
 * gets LOG_LOCKED. A writer that finds the log grown re-sequences its batch under the lock it holds
 * (the `resequence` hook of LogStore.appendBatch), so back-to-back writers cannot starve one
 * another, and the lock is never kept for a retry that may not come.
 *
 * Round trips: an append is two (BEGIN, lock and size read in one; every insert and the COMMIT in
 * the other, pipelined), three when it completes a bundle or a tile (the tail rows it packs are
 * read first). Every multi-row read or write is one statement (arrays passed as parameters and
 * `unnest`ed); parameterized statements are prepared once per connection; point reads asked for
 * in the same turn of the event loop are one statement ({@link Batched}).
 * @module
 */
import { createHash } from 'node:crypto';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { ConflictError, CustosError, StoreError } from '../../core/errors.js';
import type { NodeId } from '../../core/merkle/node-id.js';
import type { AppendBatch, Resequence, SidecarCommitment, SidecarDocument, SidecarState, StoredCheckpoint } from '../store.js';
import type { BundleRow, TailEntryRow, TiledDriver } from '../tiled/driver.js';
import { planAppend, sizeFromMax, type NodeRow } from '../tiled/layout.js';

/**
 * Advisory lock key (a fixed 64-bit value, "CustosAp") taken by every append. Advisory locks are
 * scoped to the current database: one log per database.
 */
const APPEND_LOCK_KEY = 0x437573746f734170n;

/** Most re-sequencings of one batch under the lock (one suffices: nobody else appends meanwhile). */
const MAX_RESEQUENCES = 2;

/** Runs one SQL text and returns its rows (of the last statement, for a multi-statement text). */
export type Exec = <R extends QueryResultRow>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

interface CheckpointRow {
  readonly tree_size: number;
  readonly root: Buffer;
  readonly note: string;
  readonly time_ms: number;
}

const CHECKPOINTS = 'SELECT tree_size, root, note, time_ms FROM checkpoints';
const COMMITMENTS = 'SELECT commitment, kind, value, salt FROM commitments';
/** Both maxima the tree size is computed from (see sizeFromMax). */
export const MAX_INDEXES_SQL = 'SELECT (SELECT MAX(idx) FROM entry_tail) AS t, (SELECT MAX(idx) FROM entry_bundles) AS b';
// Tail entries with their leaf hashes (level-0 nodes of the node tail). The range is repeated on
// the node tail: without it PostgreSQL scanned every level-0 index entry (the dead ones of nodes
// moved into tiles included) to hash-join them.
const TAIL_ENTRIES_SQL =
  'SELECT e.idx, e.data, n.hash AS "leafHash" FROM entry_tail e LEFT JOIN node_tail n ON n.level = 0 AND n.idx = e.idx AND n.idx >= $1 AND n.idx < $2 WHERE e.idx >= $1 AND e.idx < $2 ORDER BY e.idx';

function toCheckpoint(r: CheckpointRow): StoredCheckpoint {
  return { treeSize: r.tree_size, rootHash: r.root, note: r.note, timeMs: r.time_ms };
}

/** Wraps pg and network errors so PostgreSQL's error shapes never leak above the store. */
export function wrapPgError(err: unknown, what: string): never {
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

// Statement names by SQL text (see execOn).
const statementNames = new Map<string, string>();
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `custos_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`;
    statementNames.set(sql, name);
  }
  return name;
}

export function execOn(q: Pool | PoolClient): Exec {
  return async <R extends QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<R[]> => {
    // Without parameters pg uses the simple query protocol, which accepts several statements and
    // then resolves to one result per statement. With parameters, the statement is prepared once
    // per connection under a name derived from its text (the texts are a fixed set), so
    // PostgreSQL parses and plans it once instead of at every call.
    const res = (await (params === undefined ? q.query(sql) : q.query({ name: statementName(sql), text: sql, values: params as unknown[] }))) as unknown as { rows: R[] } | { rows: R[] }[];
    return Array.isArray(res) ? (res[res.length - 1]?.rows ?? []) : res.rows;
  };
}

/** A pooled client with an error listener while it is checked out (an unhandled 'error' would crash the process). */
export interface Checkout {
  readonly client: PoolClient;
  readonly exec: Exec;
  release(destroy?: unknown): void;
}

export async function checkout(pool: Pool): Promise<Checkout> {
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

/** Rolls back and releases; a failed ROLLBACK means the connection is unusable, so it is destroyed. */
export async function rollback(c: Checkout): Promise<void> {
  try {
    await c.exec('ROLLBACK');
    c.release();
  } catch (err) {
    c.release(err);
  }
}

/**
 * Waits for every promise (statements pipelined on one connection are all answered before the
 * connection is used again), then rejects with the first failure, if any.
 */
async function settled<T extends readonly Promise<unknown>[]>(ps: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

/**
 * Point reads by key, gathered for one turn of the event loop and made as one statement: the
 * requests a server handles concurrently reach the same reads together (a policy version, a URI's
 * commitment), and on PostgreSQL each read is a round trip. Every read is made after it was asked
 * for, so it sees everything committed before.
 */
class Batched<V> {
  readonly #fetch: (keys: string[]) => Promise<Map<string, V>>;
  #waiting = new Map<string, { resolve: (v: V | undefined) => void; reject: (err: unknown) => void }[]>();

  constructor(fetch: (keys: string[]) => Promise<Map<string, V>>) {
    this.#fetch = fetch;
  }

  load(key: string): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.size === 0) setImmediate(() => void this.#flush());
      const list = this.#waiting.get(key);
      if (list) list.push({ resolve, reject });
      else this.#waiting.set(key, [{ resolve, reject }]);
    });
  }

  async #flush(): Promise<void> {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    try {
      const found = await this.#fetch([...waiting.keys()]);
      for (const [k, list] of waiting) for (const w of list) w.resolve(found.get(k));
    } catch (err) {
      for (const list of waiting.values()) for (const w of list) w.reject(err);
    }
  }
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

/** Driver settings. */
export interface PostgresDriverOptions {
  readonly lockTimeoutMs: number;
  /**
   * Whether a refused batch is re-sequenced under the lock (LogStore.appendBatch's `resequence`):
   * its rereads need a second pooled connection, so not with a pool of one.
   */
  readonly resequence: boolean;
  /** Set on a read-snapshot view: the view refuses writes. */
  readonly readOnly: boolean;
}

/** The PostgreSQL driver of one pool (or one snapshot connection). */
export class PostgresDriver implements TiledDriver {
  readonly #pool: Pool;
  readonly #exec: Exec;
  readonly #o: PostgresDriverOptions;
  #closed = false;

  // Point reads made by concurrent requests, one statement per turn of the event loop (see Batched).
  readonly #documents = new Batched<{ kind: string; bytes: Buffer }>(async (hashes) => {
    const rows = await this.#exec<{ hash: string; kind: string; bytes: Buffer }>('SELECT hash, kind, data AS bytes FROM documents WHERE hash = ANY($1::text[])', [hashes]);
    return new Map(rows.map((r) => [r.hash, { kind: r.kind, bytes: r.bytes }]));
  });
  readonly #firstOpenings = new Batched<SidecarCommitment>(async (keys) => {
    const pairs = keys.map((k) => JSON.parse(k) as [string, string]);
    // Per (kind, value): its opening with the smallest commitment, as ORDER BY commitment LIMIT 1 gives.
    const rows = await this.#exec<SidecarCommitment>(
      `SELECT DISTINCT ON (c.kind, c.value) c.commitment, c.kind, c.value, c.salt
       FROM unnest($1::text[], $2::text[]) AS r(kind, value) JOIN commitments c ON c.kind = r.kind AND c.value = r.value
       ORDER BY c.kind, c.value, c.commitment`,
      [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    );
    return new Map(rows.map((r) => [JSON.stringify([r.kind, r.value]), r]));
  });

  constructor(pool: Pool, exec: Exec, options: PostgresDriverOptions) {
    this.#pool = pool;
    this.#exec = exec;
    this.#o = options;
  }

  fail(err: unknown, what: string): never {
    wrapPgError(err, what);
  }

  #writable(what: string): void {
    if (this.#o.readOnly) throw new StoreError('STORE_FAILURE', `a read snapshot is read-only (${what})`);
  }

  async #one<R extends QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<R | undefined> {
    return (await this.#exec<R>(sql, params))[0];
  }

  async maxIndexes(): Promise<{ tail: number | null; bundle: number | null }> {
    const r = await this.#one<{ t: number | null; b: number | null }>(MAX_INDEXES_SQL);
    return { tail: r?.t ?? null, bundle: r?.b ?? null };
  }

  tiles(ids: readonly number[]): Promise<{ id: number; hashes: Buffer }[]> {
    return this.#exec('SELECT id, hashes FROM tiles WHERE id = ANY($1::bigint[])', [ids]);
  }

  tailNodes(ids: readonly NodeId[]): Promise<NodeRow[]> {
    return this.#exec('SELECT n.level, n.idx, n.hash FROM node_tail n JOIN unnest($1::int[], $2::bigint[]) AS r(level, idx) ON n.level = r.level AND n.idx = r.idx', [
      ids.map((n) => n.level),
      ids.map((n) => n.index),
    ]);
  }

  tailLeaves(lo: number, hi: number): Promise<NodeRow[]> {
    return this.#exec('SELECT level, idx, hash FROM node_tail WHERE level = 0 AND idx >= $1 AND idx < $2', [lo, hi]);
  }

  bundles(lo: number, hi: number, limit: number, descending: boolean): Promise<BundleRow[]> {
    return this.#exec(`SELECT idx, data FROM entry_bundles WHERE idx >= $1 AND idx < $2 ORDER BY idx ${descending ? 'DESC' : 'ASC'} LIMIT $3`, [lo, hi, limit]);
  }

  bundlesWithTiles(lo: number, hi: number, limit: number): Promise<(BundleRow & { tile: Buffer | null })[]> {
    // tileId(0, idx) = idx: each bundle's level-0 tile in the same row.
    return this.#exec('SELECT b.idx, b.data, t.hashes AS tile FROM entry_bundles b LEFT JOIN tiles t ON t.id = b.idx WHERE b.idx >= $1 AND b.idx < $2 ORDER BY b.idx LIMIT $3', [lo, hi, limit]);
  }

  tailEntries(lo: number, hi: number, descending: boolean): Promise<TailEntryRow[]> {
    return this.#exec(descending ? `${TAIL_ENTRIES_SQL} DESC` : TAIL_ENTRIES_SQL, [lo, hi]);
  }

  async entry(index: number, bundle: number): Promise<{ tail: TailEntryRow } | { bundle: BundleRow } | undefined> {
    const rows = await this.#exec<{ tail: boolean; data: Buffer; hash: Buffer | null }>(
      `SELECT TRUE AS tail, e.data, n.hash FROM entry_tail e LEFT JOIN node_tail n ON n.level = 0 AND n.idx = e.idx WHERE e.idx = $1
       UNION ALL SELECT FALSE, data, NULL FROM entry_bundles WHERE idx = $2`,
      [index, bundle],
    );
    const tail = rows.find((r) => r.tail);
    if (tail) return { tail: { idx: index, data: tail.data, leafHash: tail.hash } };
    const b = rows.find((r) => !r.tail);
    return b && { bundle: { idx: bundle, data: b.data } };
  }

  async checkpoints(after: number, limit: number): Promise<StoredCheckpoint[]> {
    return (await this.#exec<CheckpointRow>(`${CHECKPOINTS} WHERE tree_size > $1 ORDER BY tree_size LIMIT $2`, [after, limit])).map(toCheckpoint);
  }

  async maxCheckpointSize(): Promise<number | null> {
    return (await this.#one<{ m: number | null }>('SELECT MAX(tree_size) AS m FROM checkpoints'))?.m ?? null;
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const r = await this.#one<CheckpointRow>(`${CHECKPOINTS} ORDER BY tree_size DESC LIMIT 1`);
    return r && toCheckpoint(r);
  }

  async checkpointAt(treeSize: number): Promise<StoredCheckpoint | undefined> {
    const r = await this.#one<CheckpointRow>(`${CHECKPOINTS} WHERE tree_size = $1`, [treeSize]);
    return r && toCheckpoint(r);
  }

  async meta(key: string): Promise<string | undefined> {
    return (await this.#one<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]))?.value;
  }

  document(hash: string): Promise<{ kind: string; bytes: Buffer } | undefined> {
    return this.#documents.load(hash);
  }

  documents(after: string, limit: number): Promise<SidecarDocument[]> {
    return this.#exec('SELECT hash, kind, data AS bytes FROM documents WHERE hash > $1 ORDER BY hash LIMIT $2', [after, limit]);
  }

  commitment(commitment: string): Promise<SidecarCommitment | undefined> {
    return this.#one(`${COMMITMENTS} WHERE commitment = $1`, [commitment]);
  }

  async commitmentsOf(kind: string, value: string, limit?: number): Promise<SidecarCommitment[]> {
    // The first opening of a value (findCommitment: every decision's URIs), batched.
    if (limit === 1) {
      const c = await this.#firstOpenings.load(JSON.stringify([kind, value]));
      return c ? [c] : [];
    }
    // LIMIT NULL: no limit.
    return this.#exec(`${COMMITMENTS} WHERE kind = $1 AND value = $2 ORDER BY commitment LIMIT $3`, [kind, value, limit ?? null]);
  }

  commitments(after: string, limit: number): Promise<SidecarCommitment[]> {
    return this.#exec(`${COMMITMENTS} WHERE commitment > $1 ORDER BY commitment LIMIT $2`, [after, limit]);
  }

  async state(ns: string, key: string): Promise<string | undefined> {
    return (await this.#one<{ value: string }>('SELECT value FROM state WHERE ns = $1 AND key = $2', [ns, key]))?.value;
  }

  states(ns: string): Promise<SidecarState[]> {
    return this.#exec('SELECT ns, key, value FROM state WHERE ns = $1 ORDER BY key', [ns]);
  }

  // ---- writes -------------------------------------------------------------------------------

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

  async initMeta(values: Readonly<Record<string, string>>): Promise<void> {
    this.#writable('write meta');
    const keys = Object.keys(values);
    if (keys.length === 0) return;
    await this.#transaction('BEGIN', async (exec) => {
      // Inserting first makes a concurrent initMeta wait for this one (or this one for it).
      await exec('INSERT INTO meta (key, value) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING', [keys, keys.map((k) => values[k]!)]);
      const rows = await exec<{ key: string; value: string }>('SELECT key, value FROM meta WHERE key = ANY($1::text[])', [keys]);
      const cur = new Map(rows.map((r) => [r.key, r.value]));
      for (const k of keys) {
        if (cur.get(k) !== values[k]) throw new ConflictError('DATA_DIR_EXISTS', `log already has a different ${k}`);
      }
    });
  }

  async append(batch: AppendBatch, resequence?: Resequence): Promise<number> {
    this.#writable('append');
    if (this.#closed) throw new StoreError('STORE_FAILURE', 'the store is closed (append)');
    const c = await checkout(this.#pool);
    try {
      // One round trip: the advisory lock serializes the writers of this database, in every
      // process (lock_timeout bounds the wait: 55P03, LOG_LOCKED), and the size is read after it
      // was granted (read committed: that statement's snapshot sees every batch committed before).
      const r = (
        await c.exec<{ t: number | null; b: number | null }>(`BEGIN; SET LOCAL lock_timeout = ${this.#o.lockTimeoutMs}; SELECT pg_advisory_xact_lock(${APPEND_LOCK_KEY}); ${MAX_INDEXES_SQL}`)
      )[0];
      const start = sizeFromMax(r?.t ?? null, r?.b ?? null);
      let b: AppendBatch | undefined = batch;
      // Another writer appended since this one sequenced: it sequences again here, under the lock,
      // against the size just read (nobody can append meanwhile), instead of rereading after a
      // rollback and racing for the lock again. The rereads go through other pooled connections.
      for (let n = 0; b.expectedSize !== start && resequence && this.#o.resequence && n < MAX_RESEQUENCES; n++) {
        b = await resequence(start);
        if (!b) {
          await rollback(c);
          return start;
        }
      }
      const plan = planAppend(b, start);
      await this.#write(c.exec, b, plan);
      c.release();
      return plan.end;
    } catch (err) {
      await rollback(c);
      throw err;
    }
  }

  /** Refuses appends from now on. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * Writes a planned batch (its expected size was checked under the lock) and commits. The pool's
   * clients pipeline (PostgresStore.connect), so the statements are sent together and answered in
   * order: one round trip for the moves out of the tail (only when the batch completes a bundle or
   * a tile), and one for every insert and the COMMIT. A failed statement aborts the transaction, so
   * the ones after it fail and the COMMIT rolls back; the caller rolls back anyway.
   */
  async #write(exec: Exec, batch: AppendBatch, plan: ReturnType<typeof planAppend>): Promise<void> {
    let takenEntries: Buffer[] = [];
    let takenNodes: NodeRow[] = [];
    if (plan.takeEntries || plan.takeNodes.length > 0) {
      const te = plan.takeEntries;
      const r = plan.takeNodes;
      const [moved, nodes] = await settled([
        // Entries of the bundle this batch completes written by earlier batches: moved out of the tail.
        te ? exec<{ idx: number; data: Buffer }>('DELETE FROM entry_tail WHERE idx >= $1 AND idx < $2 RETURNING idx, data', [te.lo, te.hi]) : Promise.resolve([]),
        // Nodes of the tiles this batch completes written by earlier batches, in one statement.
        r.length > 0
          ? exec<NodeRow>(
              `DELETE FROM node_tail n USING unnest($1::int[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi)
               WHERE n.level = r.level AND n.idx >= r.lo AND n.idx < r.hi RETURNING n.level, n.idx, n.hash`,
              [r.map((x) => x.level), r.map((x) => x.lo), r.map((x) => x.hi)],
            )
          : Promise.resolve([]),
      ]);
      takenEntries = (moved as { idx: number; data: Buffer }[]).sort((x, y) => x.idx - y.idx).map((row) => row.data);
      takenNodes = nodes as NodeRow[];
    }
    const rows = plan.rows(takenEntries, takenNodes);
    const sent: Promise<unknown>[] = [];
    const insert = (table: string, types: string, cols: readonly (readonly unknown[])[]) => {
      if (cols[0]!.length === 0) return;
      const params = types.split(',').map((t, i) => `$${i + 1}::${t}[]`);
      sent.push(exec(`INSERT INTO ${table} SELECT * FROM unnest(${params.join(', ')})`, cols));
    };
    insert('entry_bundles (idx, data)', 'bigint,bytea', [rows.bundles.idx, rows.bundles.data]);
    insert('entry_tail (idx, data)', 'bigint,bytea', [rows.tailEntries.idx, rows.tailEntries.data]);
    insert('tiles (id, hashes)', 'bigint,bytea', [rows.tiles.id, rows.tiles.hashes]);
    insert('node_tail (level, idx, hash)', 'int,bigint,bytea', [rows.tailNodes.level, rows.tailNodes.idx, rows.tailNodes.hash]);
    const cp = batch.checkpoint;
    sent.push(exec('INSERT INTO checkpoints (tree_size, root, note, time_ms) VALUES ($1, $2, $3, $4)', [cp.treeSize, cp.rootHash, cp.note, cp.timeMs]));
    if (batch.sidecar) sent.push(...this.#sidecarStatements(exec, batch.sidecar));
    // COMMIT of a transaction a statement above aborted answers ROLLBACK, without an error: the
    // failed statement's own rejection reports it.
    sent.push(exec('COMMIT'));
    await settled(sent);
  }

  async writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): Promise<void> {
    this.#writable('write off-ledger data');
    await this.#transaction('BEGIN', (exec) => settled(this.#sidecarStatements(exec, sidecar)));
  }

  /** Sends the statements that write `sidecar` (pipelined: see #write), in order; returns their results. */
  #sidecarStatements(exec: Exec, sidecar: NonNullable<AppendBatch['sidecar']>): Promise<unknown>[] {
    const sent: Promise<unknown>[] = [];
    // One statement per table; duplicates within the batch are dropped first (a statement may
    // not touch a row twice): the first document or opening wins, as ON CONFLICT DO NOTHING
    // would row by row, and the last state value wins, as an upsert would.
    const docs = dedupe(sidecar.documents, (d) => d.hash, false);
    if (docs.length > 0) {
      sent.push(
        exec('INSERT INTO documents (hash, kind, data) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT (hash) DO NOTHING', [
          docs.map((d) => d.hash),
          docs.map((d) => d.kind),
          docs.map((d) => d.bytes),
        ]),
      );
    }
    const cs = dedupe(sidecar.commitments, (c) => c.commitment, false);
    if (cs.length > 0) {
      sent.push(
        exec('INSERT INTO commitments (commitment, kind, value, salt) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) ON CONFLICT (commitment) DO NOTHING', [
          cs.map((c) => c.commitment),
          cs.map((c) => c.kind),
          cs.map((c) => c.value),
          cs.map((c) => c.salt),
        ]),
      );
    }
    const st = dedupe(sidecar.state, (s) => JSON.stringify([s.ns, s.key]), true);
    if (st.length > 0) {
      sent.push(
        exec('INSERT INTO state (ns, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value', [
          st.map((s) => s.ns),
          st.map((s) => s.key),
          st.map((s) => s.value),
        ]),
      );
    }
    // Erasure, after the inserts: in the transaction of the event that records it.
    if (sidecar.erase && sidecar.erase.length > 0) sent.push(exec('DELETE FROM commitments WHERE commitment = ANY($1::text[])', [[...sidecar.erase]]));
    if (sidecar.eraseDocuments && sidecar.eraseDocuments.length > 0) sent.push(exec('DELETE FROM documents WHERE hash = ANY($1::text[])', [[...sidecar.eraseDocuments]]));
    return sent;
  }
}
