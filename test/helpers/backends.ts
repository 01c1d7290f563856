/**
 * The storage backends the store suites (conformance, tamper, crash) run against, as kysely loops
 * over its dialects. SQLite always runs; PostgreSQL runs when PG_URL is set (scripts/run-tests.mjs
 * starts a throwaway cluster when PostgreSQL is installed). STORES=sqlite,postgres narrows the list.
 *
 * Every fixture is fresh: a temporary directory and, for PostgreSQL, a database of its own, all
 * removed by {@link cleanupBackends} (call it from the suite's `after`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../src/log/data-dir.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { LogStore } from '../../src/store/store.js';

export const PG_URL = process.env['PG_URL'];
const wanted = (process.env['STORES'] ?? 'sqlite,postgres').split(',');
const cleanups: (() => Promise<void>)[] = [];

/** Removes every directory and database the fixtures of this process made. */
export async function cleanupBackends(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

/** A fresh temporary directory, removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Where a log lives: its data directory (keys, and the SQLite file) and, for PostgreSQL, its database. */
export interface LogPlace {
  readonly dataDir: string;
  readonly storeUrl?: string;
}

/**
 * A separate raw connection to a log's tables, bypassing the store, as an attacker (or a broken
 * disk) with write access would have. SQL uses `?` placeholders on both backends. Rows come back
 * as objects, BIGINT columns as numbers.
 */
export interface RawDb {
  all<R>(sql: string, ...params: unknown[]): Promise<R[]>;
  get<R>(sql: string, ...params: unknown[]): Promise<R | undefined>;
  /** Runs a write; returns the number of rows changed. */
  run(sql: string, ...params: unknown[]): Promise<number>;
}

export interface Backend {
  readonly name: 'sqlite' | 'postgres';
  /** What the log is stored in, for test titles. */
  readonly title: string;
  readonly skip: string | false;
  /** A fresh, empty store; `reopen` gives a second connection to the same store. */
  openStore(): Promise<{ store: LogStore; reopen: () => Promise<LogStore> }>;
  /** A fresh place for a new data directory (not created yet) and its store. */
  newPlace(): Promise<LogPlace>;
  /** Runs `fn` in one transaction on a separate raw connection to the place's store. */
  tamper<T>(place: LogPlace, fn: (db: RawDb) => Promise<T>): Promise<T>;
}

// ---- PostgreSQL ---------------------------------------------------------------------------------

// int8 (BIGINT, COUNT(*)) as a number: indices and sizes stay below 2^53.
const INT8_OID = 20;

async function pgClient(url: string) {
  const { default: pg } = await import('pg');
  const builtin = pg.types;
  const types = {
    getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : builtin.getTypeParser(oid, format)),
  } as import('pg').CustomTypesConfig;
  const c = new pg.Client({ connectionString: url, types });
  await c.connect();
  return c;
}

/** A fresh database on the PG_URL server, dropped at cleanup; returns its URL. */
export async function freshPgDatabase(prefix: string): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = await pgClient(PG_URL!);
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  cleanups.push(async () => {
    const c = await pgClient(PG_URL!);
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  const u = new URL(PG_URL!);
  u.pathname = `/${name}`;
  return u.toString();
}

/** `?` placeholders to PostgreSQL's `$n` (the test SQL holds no `?` in literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

// ---- the list -----------------------------------------------------------------------------------

export const BACKENDS: readonly Backend[] = [
  {
    name: 'sqlite',
    title: 'the SQLite file',
    skip: wanted.includes('sqlite') ? false : 'not in STORES',
    async openStore() {
      const path = join(tempDir('custos-conf-'), 'custos.db');
      const store = SqliteStore.open(path);
      return { store, reopen: async () => SqliteStore.open(path) };
    },
    async newPlace() {
      return { dataDir: join(tempDir('custos-store-'), 'data') };
    },
    async tamper(place, fn) {
      const db = new Database(join(place.dataDir, DB_FILE), { fileMustExist: true });
      const raw: RawDb = {
        all: async <R>(sql: string, ...params: unknown[]) => db.prepare(sql).all(...params) as R[],
        get: async <R>(sql: string, ...params: unknown[]) => db.prepare(sql).get(...params) as R | undefined,
        run: async (sql, ...params) => db.prepare(sql).run(...params).changes,
      };
      try {
        db.exec('BEGIN IMMEDIATE');
        const out = await fn(raw);
        db.exec('COMMIT');
        return out;
      } finally {
        if (db.inTransaction) db.exec('ROLLBACK');
        db.close();
      }
    },
  },
  {
    name: 'postgres',
    title: 'PostgreSQL',
    skip: !wanted.includes('postgres') ? 'not in STORES' : PG_URL ? false : 'PG_URL not set: PostgreSQL suite skipped',
    async openStore() {
      const { PostgresStore } = await import('../../src/store/postgres/index.js');
      const url = await freshPgDatabase('custos_conf');
      return { store: await PostgresStore.connect(url), reopen: () => PostgresStore.connect(url) };
    },
    async newPlace() {
      return { dataDir: join(tempDir('custos-store-'), 'data'), storeUrl: await freshPgDatabase('custos_log') };
    },
    async tamper(place, fn) {
      const c = await pgClient(place.storeUrl!);
      const raw: RawDb = {
        all: async <R>(sql: string, ...params: unknown[]) => (await c.query(numbered(sql), params)).rows as R[],
        get: async <R>(sql: string, ...params: unknown[]) => (await c.query(numbered(sql), params)).rows[0] as R | undefined,
        run: async (sql, ...params) => (await c.query(numbered(sql), params)).rowCount ?? 0,
      };
      try {
        await c.query('BEGIN');
        const out = await fn(raw);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK');
        throw err;
      } finally {
        await c.end();
      }
    },
  },
];
