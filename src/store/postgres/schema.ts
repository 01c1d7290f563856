/**
 * PostgreSQL schema migrations, applied in order at connect. Never edit a released migration; add one.
 *
 * The tables are those of the SQLite backend (store/sqlite/schema.ts), in PostgreSQL types: BIGINT
 * for indices and ids, BYTEA for blobs, TEXT for text. Text keys use the "C" collation so that
 * keyset pagination (`WHERE hash > $1 ORDER BY hash`) orders by bytes, as SQLite's BINARY does,
 * whatever the database's locale.
 *
 * The applied version is the one row of `custos_schema`. Migrations run inside one transaction that
 * first takes a transaction-scoped advisory lock, so several processes connecting at once to a new
 * database apply them exactly once (the others wait, then find the schema up to date).
 * @module
 */
import { StoreError } from '../../core/errors.js';

/** The schema version this code reads and writes (`custos_schema.version`). */
export const SCHEMA_VERSION = 1;

/**
 * Advisory lock key (a fixed 64-bit value, "CustosMg") held while migrating. Advisory locks are
 * scoped to the current database, so logs in different databases never contend for it.
 */
export const MIGRATION_LOCK_KEY = 0x437573746f734d67n;

/** MIGRATIONS[v] upgrades a database from version v to v + 1. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
  );

  -- The log is stored in the C2SP tlog-tiles layout (see core/merkle/tiles.ts).
  -- Complete entry bundles: 256 entries each, every entry prefixed by its uint16 big-endian length.
  CREATE TABLE entry_bundles (
    idx  BIGINT PRIMARY KEY,
    data BYTEA  NOT NULL
  );
  -- Entries after the last complete bundle (at most 255 rows), moved into a bundle when it fills.
  CREATE TABLE entry_tail (
    idx  BIGINT PRIMARY KEY,
    data BYTEA  NOT NULL
  );
  -- Complete tiles, "fat": the 256-hash C2SP tile (tree level 8*level) then its interior rows.
  -- id = level * 2^40 + index.
  CREATE TABLE tiles (
    id     BIGINT PRIMARY KEY,
    hashes BYTEA  NOT NULL
  );
  -- Hashes do not compress: store tiles out of line without trying to.
  ALTER TABLE tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;
  -- Node hashes (leaves included) of tiles not yet complete: the right edge of the tree.
  CREATE TABLE node_tail (
    level INTEGER NOT NULL,
    idx   BIGINT  NOT NULL,
    hash  BYTEA   NOT NULL,
    PRIMARY KEY (level, idx)
  );

  -- One signed checkpoint per committed batch. note is the C2SP signed note (the authority).
  CREATE TABLE checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root      BYTEA  NOT NULL,
    note      TEXT   NOT NULL,
    time_ms   BIGINT NOT NULL
  );

  -- Off-ledger documents (policy versions, manifests, receipts), content-addressed: hash is the
  -- SHA-256 (hex) of data, which is canonical JSON. The log commits to the hash.
  CREATE TABLE documents (
    hash TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT  NOT NULL,
    data BYTEA NOT NULL
  );
  -- Openings of the salted commitments on the log: SHA-256(salt || value) = commitment.
  -- One salt per (kind, value) as a rule; two writers racing on a new value may each commit with
  -- their own salt, so (kind, value) is not unique: every commitment on the log keeps its opening.
  -- Deleting a value's rows erases the link between the log and the value.
  CREATE TABLE commitments (
    commitment TEXT COLLATE "C" PRIMARY KEY,
    kind       TEXT  NOT NULL,
    value      TEXT  NOT NULL,
    salt       BYTEA NOT NULL
  );
  CREATE INDEX commitments_by_value ON commitments (kind, value);
  -- State derived from the log and written with the event it derives from (e.g. policy heads).
  CREATE TABLE state (
    ns    TEXT COLLATE "C" NOT NULL,
    key   TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, key)
  );
  `,
];

/**
 * Runs one SQL text on the migrating connection and returns its rows. Without `params` the text may
 * hold several statements (PostgreSQL's simple query protocol).
 */
export type MigrationExec = <R extends Record<string, unknown>>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

/**
 * Brings the database to {@link SCHEMA_VERSION}, in one transaction under an advisory lock.
 * The caller owns the client and rolls back / releases it on error.
 * @throws {StoreError} STORE_SCHEMA_UNSUPPORTED when the database was written by a newer Custos
 */
export async function migrate(exec: MigrationExec, lockTimeoutMs: number): Promise<void> {
  await exec(`BEGIN; SET LOCAL lock_timeout = ${Math.max(0, Math.floor(lockTimeoutMs))}; SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
  // Read under the lock: another process may have migrated while this one waited.
  const found = await exec<{ present: boolean }>(`SELECT to_regclass('custos_schema') IS NOT NULL AS present`);
  let version = 0;
  if (found[0]?.present) {
    const r = await exec<{ version: number }>('SELECT version FROM custos_schema');
    version = r[0]?.version ?? 0;
  }
  if (version > SCHEMA_VERSION) {
    throw new StoreError('STORE_SCHEMA_UNSUPPORTED', `database schema v${version} is newer than this Custos (v${SCHEMA_VERSION})`, {
      details: { version, supported: SCHEMA_VERSION },
    });
  }
  if (version < SCHEMA_VERSION) {
    if (!found[0]?.present) {
      await exec(`CREATE TABLE custos_schema (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        version   INTEGER NOT NULL
      )`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) await exec(MIGRATIONS[v]!);
    await exec(
      'INSERT INTO custos_schema (singleton, version) VALUES (TRUE, $1) ON CONFLICT (singleton) DO UPDATE SET version = excluded.version',
      [SCHEMA_VERSION],
    );
  }
  await exec('COMMIT');
}
