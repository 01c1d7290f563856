/**
 * SQLite schema migrations, applied in order at open. Never edit a released migration; add one.
 * @module
 */

/** The schema version this code reads and writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 2;

/** MIGRATIONS[v] upgrades a database from version v to v + 1. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  -- The log is stored in the C2SP tlog-tiles layout (see core/merkle/tiles.ts).
  -- Complete entry bundles: 256 entries each, every entry prefixed by its uint16 big-endian length.
  CREATE TABLE entry_bundles (
    idx  INTEGER PRIMARY KEY,
    data BLOB NOT NULL
  );
  -- Entries after the last complete bundle (at most 255 rows), moved into a bundle when it fills.
  CREATE TABLE entry_tail (
    idx  INTEGER PRIMARY KEY,
    data BLOB NOT NULL
  );
  -- Complete tiles, "fat": the 256-hash C2SP tile (tree level 8*level) then its interior rows.
  -- id = level * 2^40 + index: a rowid key, because rows of 16 KiB belong in a rowid table
  -- (WITHOUT ROWID tables are for small rows; reads were several times slower).
  CREATE TABLE tiles (
    id     INTEGER PRIMARY KEY,
    hashes BLOB    NOT NULL
  );
  -- Node hashes (leaves included) of tiles not yet complete: the right edge of the tree.
  CREATE TABLE node_tail (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
  ) WITHOUT ROWID;

  -- One signed checkpoint per committed batch. note is the C2SP signed note (the authority).
  CREATE TABLE checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root      BLOB    NOT NULL,
    note      TEXT    NOT NULL,
    time_ms   INTEGER NOT NULL
  );
  `,
  `
  -- Off-ledger documents (policy versions, manifests, receipts), content-addressed: hash is the
  -- SHA-256 (hex) of data, which is canonical JSON. The log commits to the hash.
  CREATE TABLE documents (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    data BLOB NOT NULL
  );
  -- Openings of the salted commitments on the log: SHA-256(salt || value) = commitment.
  -- One salt per (kind, value) as a rule; two writers racing on a new value may each commit with
  -- their own salt, so (kind, value) is not unique: every commitment on the log keeps its opening.
  -- Deleting a value's rows erases the link between the log and the value.
  CREATE TABLE commitments (
    commitment TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    salt       BLOB NOT NULL
  );
  CREATE INDEX commitments_by_value ON commitments (kind, value);
  -- State derived from the log and written with the event it derives from (e.g. policy heads).
  CREATE TABLE state (
    ns    TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, key)
  ) WITHOUT ROWID;
  `,
];
