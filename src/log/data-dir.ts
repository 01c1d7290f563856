/**
 * A log on disk: a data directory holding the SQLite file and the log's keys.
 *
 *   custos-data/
 *     custos.db   the SQLite store (entries, tree nodes, checkpoints, metadata)
 *     log.key     the checkpoint signing key (mode 0600, never printed)
 *     log.pub     the verifier key, for anyone who wants to check the log
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConflictError, NotFoundError, ValidationError, VerificationError } from '../core/errors.js';
import { formatSignerKey, isValidKeyName, parseSignerKey, parseVerifierKey, verifierKeyFromSignerKey, type NoteSigner, type NoteVerifier } from '../core/note.js';
import { toHex } from '../core/hash.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { LogStore } from '../store/store.js';
import { Log } from './log.js';
import type { Clock } from './clock.js';

/** Where the log lives when neither --data-dir nor CUSTOS_DATA_DIR says otherwise. */
export const DEFAULT_DATA_DIR = './custos-data';
export const DB_FILE = 'custos.db';
export const SIGNER_KEY_FILE = 'log.key';
export const VERIFIER_KEY_FILE = 'log.pub';

/** The data directory to use: the flag, else CUSTOS_DATA_DIR, else ./custos-data. */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env['CUSTOS_DATA_DIR'] ?? DEFAULT_DATA_DIR);
}

/** What `initDataDir` created. */
export interface InitResult {
  readonly dataDir: string;
  readonly origin: string;
  readonly verifierKey: string;
}

/**
 * Creates a new log: the directory (mode 0700), a fresh Ed25519 signing key (mode 0600) and the
 * SQLite store. Refuses a directory that already holds a log.
 * @throws {ConflictError} DATA_DIR_EXISTS
 * @throws {ValidationError} VALIDATION_FAILED for an unusable origin
 */
/** Where the store of a data directory lives: the embedded SQLite file (default) or a PostgreSQL URL. */
export interface StoreLocation {
  /** `postgres://...`: the log lives in PostgreSQL; the data directory keeps the keys. */
  readonly storeUrl?: string | undefined;
}

/** The store URL to use: the flag, else CUSTOS_DATABASE_URL, else undefined (SQLite). */
export function resolveStoreUrl(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = flag ?? env['CUSTOS_DATABASE_URL'];
  if (url === undefined || url === '') return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new ValidationError('VALIDATION_FAILED', '--store must be a postgres:// URL (the default store is the SQLite file in the data directory)', {
      issues: [{ path: 'store', message: 'expected postgres://' }],
    });
  }
  return url;
}

async function openStore(dataDir: string, loc: StoreLocation, readonly: boolean): Promise<LogStore> {
  if (loc.storeUrl) {
    // Loaded only when PostgreSQL is used: SQLite users never load pg.
    const { PostgresStore } = await import('../store/postgres/index.js');
    return PostgresStore.connect(loc.storeUrl);
  }
  return SqliteStore.open(join(dataDir, DB_FILE), { readonly });
}

export async function initDataDir(dataDir: string, options: { origin?: string } & StoreLocation = {}): Promise<InitResult> {
  const origin = options.origin ?? `custos.local/log-${toHex(randomBytes(4))}`;
  // The origin doubles as the signing key's name, so it must be a valid note key name.
  if (!isValidKeyName(origin) || origin.length > 200) {
    throw new ValidationError('VALIDATION_FAILED', 'origin must be non-empty, at most 200 characters, without spaces or "+"', {
      issues: [{ path: 'origin', message: 'invalid origin' }],
    });
  }
  if ((!options.storeUrl && existsSync(join(dataDir, DB_FILE))) || existsSync(join(dataDir, SIGNER_KEY_FILE))) {
    throw new ConflictError('DATA_DIR_EXISTS', `a log already exists in ${dataDir}`, { details: { dataDir } });
  }
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!statSync(dataDir).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot create the data directory ${dataDir}`, { cause: err, details: { dataDir } });
  }
  const skey = formatSignerKey(origin, randomBytes(32));
  const vkey = verifierKeyFromSignerKey(skey);
  // 'wx': never overwrite a key; mode 0600 from creation, so the key is never readable by others.
  const fd = openSync(join(dataDir, SIGNER_KEY_FILE), 'wx', 0o600);
  try {
    writeSync(fd, `${skey}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(join(dataDir, SIGNER_KEY_FILE), 0o600);
  writeFileSync(join(dataDir, VERIFIER_KEY_FILE), `${vkey}\n`, { mode: 0o644 });
  const store = await openStore(dataDir, options, false);
  try {
    // A shared store (PostgreSQL) may already hold a log: initMeta refuses to overwrite it.
    await store.initMeta({ origin, verifier_key: vkey, format: 'custos-log/1' });
  } catch (err) {
    rmSync(join(dataDir, SIGNER_KEY_FILE), { force: true });
    rmSync(join(dataDir, VERIFIER_KEY_FILE), { force: true });
    throw err;
  } finally {
    await store.close();
  }
  return { dataDir, origin, verifierKey: vkey };
}

/** An opened data directory. */
export interface DataDir {
  readonly dataDir: string;
  readonly store: LogStore;
  readonly origin: string;
  /** The verifier key recorded in the store at init. */
  readonly verifierKey: string;
  readonly verifier: NoteVerifier;
}

/**
 * Opens the store of an existing data directory.
 * @throws {NotFoundError} DATA_DIR_NOT_FOUND
 */
export async function openDataDir(dataDir: string, options: { readonly?: boolean } & StoreLocation = {}): Promise<DataDir> {
  const dbPath = options.storeUrl ? 'the PostgreSQL store' : join(dataDir, DB_FILE);
  if (!options.storeUrl && !existsSync(dbPath)) {
    throw new NotFoundError('DATA_DIR_NOT_FOUND', `no Custos log in ${dataDir} (run custos init, or pass --data-dir)`, {
      details: { dataDir },
    });
  }
  const store = await openStore(dataDir, options, options.readonly ?? false);
  try {
    const origin = await store.getMeta('origin');
    const verifierKey = await store.getMeta('verifier_key');
    if (!origin || !verifierKey) {
      throw new NotFoundError('DATA_DIR_NOT_FOUND', `${dbPath} is not an initialized Custos log`, { details: { dataDir } });
    }
    return { dataDir, store, origin, verifierKey, verifier: parseVerifierKey(verifierKey) };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * Loads the signing key of a data directory and checks that it is the key the log was created with.
 * @throws {NotFoundError} KEY_NOT_FOUND
 * @throws {VerificationError} KEY_MALFORMED when the key file is damaged or is not this log's key
 */
export function loadSigner(dir: DataDir): NoteSigner {
  const path = join(dir.dataDir, SIGNER_KEY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new NotFoundError('KEY_NOT_FOUND', `cannot read the signing key ${path}`, { cause: err });
  }
  const signer = parseSignerKey(text);
  if (verifierKeyFromSignerKey(text) !== dir.verifierKey) {
    throw new VerificationError('KEY_MALFORMED', 'the signing key does not belong to this log');
  }
  return signer;
}

/** Mode bits of the signing key file (for warnings when it is readable by others). */
export function signerKeyMode(dataDir: string): number | undefined {
  try {
    return statSync(join(dataDir, SIGNER_KEY_FILE)).mode & 0o777;
  } catch {
    return undefined;
  }
}

/** Opens a data directory for writing: store, signing key and log engine. */
export async function openLog(dataDir: string, options: { clock?: Clock } & StoreLocation = {}): Promise<{ dir: DataDir; log: Log }> {
  const dir = await openDataDir(dataDir, { storeUrl: options.storeUrl });
  try {
    const signer = loadSigner(dir);
    const log = await Log.open({ store: dir.store, signer, origin: dir.origin, ...(options.clock ? { clock: options.clock } : {}) });
    return { dir, log };
  } catch (err) {
    await dir.store.close();
    throw err;
  }
}
