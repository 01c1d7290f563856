/**
 * A log on disk: a data directory holding the SQLite file and the log's keys.
 *
 *   custos-data/   mode 0700
 *     custos.db   the SQLite store (entries, tree nodes, checkpoints, metadata), mode 0600 (so are -wal, -shm)
 *     log.key     the checkpoint signing key (mode 0600, never printed; refused if others can read it)
 *     log.pub     the verifier key, for anyone who wants to check the log
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConflictError, NotFoundError, ValidationError, VerificationError } from '../core/errors.js';
import { formatSignerKey, isValidKeyName, parseSignerKey, parseVerifierKey, verifierKeyFromSignerKey, type NoteSigner, type NoteVerifier } from '../core/note.js';
import { toHex } from '../core/hash.js';
import type { LogStore } from '../store/store.js';
import { Log } from './log.js';
import type { Clock } from './clock.js';

/** Where the log lives when neither --data-dir nor CUSTOS_DATA_DIR says otherwise. */
export const DEFAULT_DATA_DIR = './custos-data';
export const DB_FILE = 'custos.db';
export const SIGNER_KEY_FILE = 'log.key';
export const VERIFIER_KEY_FILE = 'log.pub';

/** The data directory to use: the flag, else CUSTOS_DATA_DIR, else ./custos-data; relative to `cwd`. */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return resolve(cwd, flag ?? env['CUSTOS_DATA_DIR'] ?? DEFAULT_DATA_DIR);
}

/** What `initDataDir` created. */
export interface InitResult {
  readonly dataDir: string;
  readonly origin: string;
  readonly verifierKey: string;
}

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
  // Loaded only when a SQLite log is opened: the library root and `custos --help` never load better-sqlite3.
  const { SqliteStore } = await import('../store/sqlite/sqlite-store.js');
  return SqliteStore.open(join(dataDir, DB_FILE), { readonly });
}

/**
 * Creates a new log: the directory (mode 0700, an existing one is made 0700), a fresh Ed25519
 * signing key (mode 0600) and the store (SQLite file mode 0600). Refuses a directory that already
 * holds a log. Atomic: on failure nothing it created is left behind.
 * @throws {ConflictError} DATA_DIR_EXISTS
 * @throws {ValidationError} VALIDATION_FAILED for an unusable origin
 */
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
  // Atomic: the keys are written under temporary names and the store initialized; only when all
  // of that succeeded do the keys get their names. On any failure everything this call created is
  // removed, so a failed init (PostgreSQL unreachable, say) leaves no half-made log behind.
  const created: string[] = [];
  const createdDir = !existsSync(dataDir);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!statSync(dataDir).isDirectory()) throw new Error('not a directory');
    // An existing directory (created by hand, with the default umask) is made private too.
    chmodSync(dataDir, 0o700);
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot create the data directory ${dataDir}`, { cause: err, details: { dataDir } });
  }
  const tag = `.init-${toHex(randomBytes(6))}`;
  const skey = formatSignerKey(origin, randomBytes(32));
  const vkey = verifierKeyFromSignerKey(skey);
  try {
    // 'wx' and mode 0600 from creation: never overwrites, never readable by others.
    const writeNew = (path: string, text: string, mode: number) => {
      const fd = openSync(path, 'wx', mode);
      created.push(path);
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      chmodSync(path, mode);
    };
    writeNew(join(dataDir, SIGNER_KEY_FILE + tag), `${skey}\n`, 0o600);
    writeNew(join(dataDir, VERIFIER_KEY_FILE + tag), `${vkey}\n`, 0o644);
    if (!options.storeUrl) {
      // An empty file is a valid SQLite database; SQLite gives its -wal and -shm files the mode of
      // the database file, so all three are 0600 whatever the umask.
      for (const suffix of ['-wal', '-shm', '-journal']) created.push(join(dataDir, DB_FILE + suffix));
      writeNew(join(dataDir, DB_FILE), '', 0o600);
    }
    const store = await openStore(dataDir, options, false);
    try {
      // A shared store (PostgreSQL) may already hold a log: initMeta refuses to overwrite it.
      await store.initMeta({ origin, verifier_key: vkey, format: 'custos-log/1' });
      // tlog-tiles: a log serves a signed checkpoint from the start, the empty tree's (size 0).
      const log = await Log.open({ store, signer: parseSignerKey(skey), origin });
      await log.signEmptyCheckpoint();
      await log.close();
    } finally {
      await store.close();
    }
    // link, not rename: never replaces a key another init put there meanwhile.
    for (const name of [SIGNER_KEY_FILE, VERIFIER_KEY_FILE]) {
      linkSync(join(dataDir, name + tag), join(dataDir, name));
      created.push(join(dataDir, name));
    }
    for (const name of [SIGNER_KEY_FILE, VERIFIER_KEY_FILE]) unlinkSync(join(dataDir, name + tag));
  } catch (err) {
    for (const path of created.reverse()) rmSync(path, { force: true });
    if (createdDir) {
      try {
        rmdirSync(dataDir);
      } catch {
        // not empty: something else was put there meanwhile
      }
    }
    throw err;
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
  assertKeyPrivate(path);
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

/**
 * Refuses a signing key file that anyone but its owner can read or write: whoever read it can sign
 * checkpoints for this log.
 * @throws {ValidationError} KEY_PERMISSIONS
 */
export function assertKeyPrivate(path: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return; // reading it reports KEY_NOT_FOUND
  }
  if ((mode & 0o077) !== 0) {
    throw new ValidationError(
      'KEY_PERMISSIONS',
      `the signing key ${path} is accessible to others (mode 0${mode.toString(8)}); run chmod 600 ${path} and consider the key compromised if others could read it`,
      {
        details: { path, mode: `0${mode.toString(8)}` },
      },
    );
  }
}

/** Makes a data directory 0700 and its SQLite files 0600 (logs made before this was enforced). */
function tightenModes(dataDir: string): void {
  for (const [path, mode] of [[dataDir, 0o700], ...['', '-wal', '-shm', '-journal'].map((x) => [join(dataDir, DB_FILE + x), 0o600] as const)] as const) {
    try {
      if ((statSync(path).mode & 0o077 & ~(mode & 0o077)) !== 0) chmodSync(path, mode);
    } catch {
      // absent, or not ours: the store open reports what matters
    }
  }
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
  if (!options.storeUrl) tightenModes(dataDir);
  const dir = await openDataDir(dataDir, { storeUrl: options.storeUrl });
  try {
    const signer = loadSigner(dir);
    const log = await Log.open({ store: dir.store, signer, verifier: dir.verifier, origin: dir.origin, ...(options.clock ? { clock: options.clock } : {}) });
    // An empty log made before `init` signed the size-0 checkpoint gets it now, on its first
    // writable open (read-only commands never write; they report it as having no checkpoint).
    await log.signEmptyCheckpoint();
    return { dir, log };
  } catch (err) {
    await dir.store.close();
    throw err;
  }
}
