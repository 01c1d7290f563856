/**
 * The witness's durable state: per log origin, the latest checkpoint it cosigned, in its own SQLite
 * file (better-sqlite3, WAL, synchronous=FULL, mode 0600). tlog-witness: the witness MUST persist
 * the new checkpoint before responding, and the check of the old size and the update MUST be
 * atomic, or two requests could roll the state back. So an update is a compare-and-swap on the
 * (size, root) it was checked against, in one immediate transaction: of two racing requests, at
 * most one advances; the other sees a conflict.
 *
 * Also kept: evidence of forks (a checkpoint signed by the log's key at the size the witness
 * cosigned last, with another root), one row per distinct note.
 * @module
 */
import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreError } from '../core/errors.js';
import { sha256, toHex } from '../core/hash.js';

/** The latest cosigned checkpoint of one log. */
export interface WitnessedCheckpoint {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  /** The checkpoint note as the log sent it. */
  readonly note: string;
  readonly updatedAtMs: number;
}

/** A recorded fork: a signed checkpoint that conflicts with the cosigned one. */
export interface ForkEvidence {
  readonly origin: string;
  readonly treeSize: number;
  /** The root the witness had cosigned at that size. */
  readonly cosignedRoot: Buffer;
  readonly note: string;
  readonly seenAtMs: number;
}

const SCHEMA_VERSION = 1;

function wrap(err: unknown, what: string): never {
  if (err instanceof StoreError) throw err;
  const code = (err as { code?: string })?.code;
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') throw new StoreError('STORE_CORRUPT', `the witness database is damaged (${what})`, { cause: err });
  throw new StoreError('STORE_FAILURE', `the witness database failed (${what})`, { cause: err });
}

/** The witness's SQLite state file. */
export class WitnessState {
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[string], { origin: string; tree_size: number; root_hash: Buffer; note: string; updated_at_ms: number }>;
  readonly #advance: (origin: string, expected: { treeSize: number; rootHash: Buffer } | undefined, next: { treeSize: number; rootHash: Buffer; note: string }, nowMs: number) => boolean;
  readonly #fork: Database.Statement<[string, number, Buffer, string, string, number]>;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#get = db.prepare('SELECT origin, tree_size, root_hash, note, updated_at_ms FROM checkpoints WHERE origin = ?');
    const insert = db.prepare<[string, number, Buffer, string, number]>('INSERT OR IGNORE INTO checkpoints (origin, tree_size, root_hash, note, updated_at_ms) VALUES (?, ?, ?, ?, ?)');
    const update = db.prepare<[number, Buffer, string, number, string, number, Buffer]>(
      'UPDATE checkpoints SET tree_size = ?, root_hash = ?, note = ?, updated_at_ms = ? WHERE origin = ? AND tree_size = ? AND root_hash = ?',
    );
    type Expected = { treeSize: number; rootHash: Buffer } | undefined;
    type Next = { treeSize: number; rootHash: Buffer; note: string };
    // BEGIN IMMEDIATE: the write lock is taken before the compare, so another process's advance
    // cannot slip between the compare and the swap.
    this.#advance = db.transaction((origin: string, expected: Expected, next: Next, nowMs: number): boolean => {
      if (expected === undefined) return insert.run(origin, next.treeSize, next.rootHash, next.note, nowMs).changes === 1;
      return update.run(next.treeSize, next.rootHash, next.note, nowMs, origin, expected.treeSize, expected.rootHash).changes === 1;
    }).immediate;
    this.#fork = db.prepare('INSERT OR IGNORE INTO forks (origin, tree_size, cosigned_root, note, note_sha256, seen_at_ms) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /**
   * Opens (creating when missing) the state file at `path`. A new file is created with mode 0600;
   * SQLite gives its -wal and -shm files the same mode.
   * @throws {StoreError} STORE_FAILURE, STORE_CORRUPT, STORE_SCHEMA_UNSUPPORTED
   */
  static open(path: string): WitnessState {
    let db: Database.Database | undefined;
    try {
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
      }
      db = new Database(path);
      db.pragma('busy_timeout = 10000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new StoreError('STORE_SCHEMA_UNSUPPORTED', `the witness database has schema version ${version}; this Custos knows ${SCHEMA_VERSION}`);
      if (version < SCHEMA_VERSION) {
        const d = db;
        d.transaction(() => {
          d.exec(`
            CREATE TABLE IF NOT EXISTS checkpoints (
              origin TEXT PRIMARY KEY,
              tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
              root_hash BLOB NOT NULL CHECK (length(root_hash) = 32),
              note TEXT NOT NULL,
              updated_at_ms INTEGER NOT NULL
            ) STRICT;
            CREATE TABLE IF NOT EXISTS forks (
              origin TEXT NOT NULL,
              tree_size INTEGER NOT NULL,
              cosigned_root BLOB NOT NULL,
              note TEXT NOT NULL,
              note_sha256 TEXT NOT NULL,
              seen_at_ms INTEGER NOT NULL,
              PRIMARY KEY (origin, note_sha256)
            ) STRICT;
          `);
          d.pragma(`user_version = ${SCHEMA_VERSION}`);
        }).immediate();
      }
      return new WitnessState(db);
    } catch (err) {
      db?.close();
      wrap(err, 'open');
    }
  }

  /** The latest cosigned checkpoint of `origin`, if any. */
  get(origin: string): WitnessedCheckpoint | undefined {
    try {
      const r = this.#get.get(origin);
      return r && { origin: r.origin, treeSize: r.tree_size, rootHash: Buffer.from(r.root_hash), note: r.note, updatedAtMs: r.updated_at_ms };
    } catch (err) {
      wrap(err, 'read');
    }
  }

  /**
   * Compare-and-swap: records `next` as the latest cosigned checkpoint of `origin` only if the
   * stored one is still `expected` (undefined: none stored). Durable when it returns true.
   */
  advance(origin: string, expected: { treeSize: number; rootHash: Buffer } | undefined, next: { treeSize: number; rootHash: Buffer; note: string }, nowMs: number): boolean {
    try {
      return this.#advance(origin, expected, next, nowMs);
    } catch (err) {
      wrap(err, 'write');
    }
  }

  /** Records a fork (once per distinct note). */
  recordFork(e: ForkEvidence): void {
    try {
      this.#fork.run(e.origin, e.treeSize, e.cosignedRoot, e.note, toHex(sha256(Buffer.from(e.note, 'utf8'))), e.seenAtMs);
    } catch (err) {
      wrap(err, 'write');
    }
  }

  /** The recorded forks of `origin`, oldest first. */
  forks(origin: string): ForkEvidence[] {
    try {
      const rows = this.#db.prepare('SELECT origin, tree_size, cosigned_root, note, seen_at_ms FROM forks WHERE origin = ? ORDER BY seen_at_ms, rowid').all(origin) as {
        origin: string;
        tree_size: number;
        cosigned_root: Buffer;
        note: string;
        seen_at_ms: number;
      }[];
      return rows.map((r) => ({ origin: r.origin, treeSize: r.tree_size, cosignedRoot: Buffer.from(r.cosigned_root), note: r.note, seenAtMs: r.seen_at_ms }));
    } catch (err) {
      wrap(err, 'read');
    }
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
