/**
 * PostgreSQL schema migrations, applied in order at connect. Never edit a released migration; add one.
 *
 * The tables are described once, for both backends, in store/tiled/tables.ts; here they are spelt
 * in PostgreSQL types: BIGINT for indices and ids, BYTEA for blobs, TEXT for text. Text keys use the "C" collation so that
 * keyset pagination (`WHERE hash > $1 ORDER BY hash`) orders by bytes, as SQLite's BINARY does,
 * whatever the database's locale.
 *
 * The applied version is the one row of `custos_schema`. Migrations run inside one transaction that
 * first takes a transaction-scoped advisory lock, so several processes connecting at once to a new
 * database apply them exactly once (the others wait, then find the schema up to date).
 * @module
 */
import { StoreError } from '../../core/errors.js';
import { LOG_TABLES, SIDECAR_TABLES, createTablesSql, type DdlDialect } from '../tiled/tables.js';

/** The schema version this code reads and writes (`custos_schema.version`). */
export const SCHEMA_VERSION = 1;

/**
 * Advisory lock key (a fixed 64-bit value, "CustosMg") held while migrating. Advisory locks are
 * scoped to the current database, so logs in different databases never contend for it.
 */
export const MIGRATION_LOCK_KEY = 0x437573746f734d67n;

/**
 * PostgreSQL's spelling of the shared tables (store/tiled/tables.ts). Hashes do not compress:
 * tiles are stored out of line without trying to.
 */
const POSTGRES: DdlDialect = {
  types: { int: 'INTEGER', index: 'BIGINT', blob: 'BYTEA', text: 'TEXT', key: 'TEXT COLLATE "C"' },
  smallTable: '',
  incompressible: (table, column) => `ALTER TABLE ${table} ALTER COLUMN ${column} SET STORAGE EXTERNAL`,
};

/** MIGRATIONS[v] upgrades a database from version v to v + 1. */
export const MIGRATIONS: readonly string[] = [createTablesSql([...LOG_TABLES, ...SIDECAR_TABLES], POSTGRES)];

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
    await exec('INSERT INTO custos_schema (singleton, version) VALUES (TRUE, $1) ON CONFLICT (singleton) DO UPDATE SET version = excluded.version', [SCHEMA_VERSION]);
  }
  await exec('COMMIT');
}
