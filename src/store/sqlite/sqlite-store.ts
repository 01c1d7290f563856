/**
 * The embedded default backend: one SQLite file (better-sqlite3, WAL, synchronous=FULL), in the
 * tiled layout shared with PostgreSQL (store/tiled/): complete entry bundles and complete "fat"
 * tiles are single rows; only the right edge of the tree is kept row by row.
 *
 * Why tiles: one row per entry and per node cost 2-4 us per row to read back with better-sqlite3
 * on this machine, which capped verification near 100k entries/s; a 256-entry row is read in about
 * the time of one small row. The tiles are also exactly what a tlog-tiles HTTP endpoint serves.
 *
 * This file holds what only SQLite knows: opening and migrating the file, stats, read snapshots
 * (a second connection in a WAL read transaction) and scrubbing (WAL checkpoint). The SQL is in
 * sqlite-driver.ts.
 * @module
 */
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreError } from '../../core/errors.js';
import type { LogStore, ScrubReport, StoreStats } from '../store.js';
import { TiledStore } from '../tiled/tiled-store.js';
import { tileId } from '../tiled/layout.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { SqliteDriver, wrapSqliteError } from './sqlite-driver.js';

/** Row key of tile (level, index) in the tiles table (kept here for existing importers). */
export { tileId };

/** Options for {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** How long a writer waits for another process's write lock before LOG_LOCKED (ms). */
  readonly busyTimeoutMs?: number;
  /** Open without write access (verification of a copied file, say). */
  readonly readonly?: boolean;
}

/** A {@link LogStore} in one SQLite file. */
export class SqliteStore extends TiledStore {
  readonly backend = 'sqlite';
  readonly #driver: SqliteDriver;
  readonly #db: Database.Database;
  readonly #path: string;

  private constructor(db: Database.Database, path: string) {
    const driver = new SqliteDriver(db);
    super(driver);
    this.#driver = driver;
    this.#db = db;
    this.#path = path;
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
      wrapSqliteError(err, 'open');
    }
  }

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
      return { treeSize: await this.storedSize(), bytesOnDisk: bytes, checkpoints: this.#driver.checkpointCount() };
    } catch (err) {
      wrapSqliteError(err, 'stats');
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

  async readSnapshot(): Promise<{ readonly store: LogStore; release(): Promise<void> }> {
    // A second read-only connection inside one read transaction: WAL gives it a stable snapshot
    // while this connection (or another process) keeps writing. An in-memory database cannot be
    // opened twice; it has no other writer, so it is its own snapshot.
    if (this.#path === ':memory:' || this.#path === '') return { store: this, release: async () => {} };
    const snap = SqliteStore.open(this.#path, { readonly: true });
    try {
      snap.#db.exec('BEGIN');
      await snap.storedSize(); // the first read fixes the snapshot
    } catch (err) {
      await snap.close();
      wrapSqliteError(err, 'snapshot');
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
