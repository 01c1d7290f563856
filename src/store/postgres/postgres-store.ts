/**
 * The PostgreSQL backend: the tiled layout shared with SQLite (store/tiled/), so several Custos
 * processes can serve and append to one log. The SQL and the append lock are in
 * postgres-driver.ts; this file holds what only PostgreSQL knows beyond them: connecting and
 * migrating, stats, read snapshots (one connection in a REPEATABLE READ transaction) and scrubbing
 * (VACUUM FULL).
 *
 * The `pg` driver is loaded with a dynamic import in {@link PostgresStore.connect}, so users of the
 * SQLite backend never load it.
 * @module
 */
import type { CustomTypesConfig, Pool } from 'pg';
import { StoreError } from '../../core/errors.js';
import type { LogStore, ScrubReport, StoreStats } from '../store.js';
import { sizeFromMax } from '../tiled/layout.js';
import { TiledStore } from '../tiled/tiled-store.js';
import { PostgresDriver, checkout, execOn, rollback, wrapPgError, type Checkout, type Exec } from './postgres-driver.js';
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

// PostgreSQL's type OID of int8 (BIGINT), also the type of COUNT(*) and pg_database_size().
const INT8_OID = 20;

/** A {@link LogStore} in a PostgreSQL database. */
export class PostgresStore extends TiledStore {
  readonly backend = 'postgres';
  readonly #pool: Pool;
  readonly #exec: Exec;
  readonly #driver: PostgresDriver;
  readonly #lockTimeoutMs: number;
  // Set on a read-snapshot view: releases its connection. Views refuse writes.
  readonly #release: (() => Promise<void>) | undefined;
  #closed = false;

  private constructor(pool: Pool, exec: Exec, lockTimeoutMs: number, resequence: boolean, release?: () => Promise<void>) {
    const driver = new PostgresDriver(pool, exec, { lockTimeoutMs, resequence, readOnly: release !== undefined });
    super(driver);
    this.#driver = driver;
    this.#pool = pool;
    this.#exec = exec;
    this.#lockTimeoutMs = lockTimeoutMs;
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
      getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : builtin.getTypeParser(oid, format)),
    } as CustomTypesConfig;
    let pool: Pool;
    try {
      // pipeline: a client sends a query without waiting for the answer to the one before, so the
      // statements of one append go out together (see PostgresDriver#write).
      pool = new pg.Pool({ connectionString: url, max: poolSize, types, application_name: 'custos', pipeline: true });
    } catch (err) {
      wrapPgError(err, 'connect');
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
      wrapPgError(err, 'connect');
    }
    // Re-sequencing under the lock rereads through a second connection (see PostgresDriver#append).
    return new PostgresStore(pool, execOn(pool), lockTimeoutMs, poolSize >= 2);
  }

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
      const treeSize = sizeFromMax(r?.t ?? null, r?.b ?? null);
      this.noteSize(treeSize);
      return { treeSize, bytesOnDisk: r?.bytes ?? 0, checkpoints: r?.c ?? 0 };
    } catch (err) {
      wrapPgError(err, 'stats');
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

  async readSnapshot(): Promise<{ readonly store: LogStore; release(): Promise<void> }> {
    // A view is already a snapshot.
    if (this.#release) return { store: this, release: async () => {} };
    let c: Checkout;
    try {
      c = await checkout(this.#pool);
    } catch (err) {
      wrapPgError(err, 'snapshot');
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
      const view = new PostgresStore(this.#pool, conn.exec, this.#lockTimeoutMs, false, release);
      await view.storedSize(); // the first read fixes the snapshot
      return { store: view, release };
    } catch (err) {
      conn.release(err);
      released = true;
      wrapPgError(err, 'snapshot');
    }
  }

  /** Ends the pool (a snapshot view's close releases the snapshot instead). */
  async close(): Promise<void> {
    if (this.#release) return this.#release();
    if (this.#closed) return;
    this.#closed = true;
    await this.#driver.close();
    try {
      await this.#pool.end();
    } catch (err) {
      wrapPgError(err, 'close');
    }
  }
}
