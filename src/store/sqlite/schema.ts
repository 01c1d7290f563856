/**
 * SQLite schema migrations, applied in order at open. Never edit a released migration; add one.
 * @module
 */

/** The schema version this code reads and writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 1;

/** MIGRATIONS[v] upgrades a database from version v to v + 1. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  -- data: the exact canonical JSON bytes the leaf hash commits to; leaf_hash: SHA-256(0x00 || data).
  -- type and time_ms duplicate fields of data for queries; verification never trusts them.
  CREATE TABLE entries (
    idx       INTEGER PRIMARY KEY,
    data      BLOB    NOT NULL,
    leaf_hash BLOB    NOT NULL,
    type      TEXT    NOT NULL,
    time_ms   INTEGER NOT NULL
  );

  -- Every complete interior subtree hash (level >= 1), keyed by creation order
  -- (see core/merkle/node-id.ts nodeSeq), so appends write in key order and verification streams them.
  CREATE TABLE nodes (
    seq  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
  );

  -- One signed checkpoint per committed batch. note is the C2SP signed note (the authority).
  CREATE TABLE checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root      BLOB    NOT NULL,
    note      TEXT    NOT NULL,
    time_ms   INTEGER NOT NULL
  );
  `,
];
