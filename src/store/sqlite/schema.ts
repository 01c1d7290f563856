/**
 * SQLite schema migrations, applied in order at open. Never edit a released migration; add one.
 * @module
 */
import { LOG_TABLES, SIDECAR_TABLES, createTablesSql, type DdlDialect } from '../tiled/tables.js';

/** The schema version this code reads and writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 2;

/** SQLite's spelling of the shared tables (store/tiled/tables.ts). */
const SQLITE: DdlDialect = {
  types: { int: 'INTEGER', index: 'INTEGER', blob: 'BLOB', text: 'TEXT', key: 'TEXT' },
  smallTable: ' WITHOUT ROWID',
};

/** MIGRATIONS[v] upgrades a database from version v to v + 1. */
export const MIGRATIONS: readonly string[] = [createTablesSql(LOG_TABLES, SQLITE), createTablesSql(SIDECAR_TABLES, SQLITE)];
