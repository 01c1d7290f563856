/**
 * A witness's data directory:
 *
 *   DIR/            mode 0700
 *     witness.key   the cosigning key, PRIVATE+KEY+name+keyid+base64(0x04 || seed), mode 0600
 *     witness.pub   the cosigner verifier key (type 0x04) that logs and clients configure
 *     witness.db    the state (src/witness/state.ts), mode 0600 (so are -wal and -shm)
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { formatCosignerSignerKey, formatCosignerVerifierKey, parseCosignerSignerKey } from '../core/cosignature.js';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.js';
import { isValidKeyName, type NoteVerifier } from '../core/note.js';
import { WitnessState } from './state.js';
import { Witness } from './witness.js';

export const WITNESS_KEY_FILE = 'witness.key';
export const WITNESS_PUB_FILE = 'witness.pub';
export const WITNESS_DB_FILE = 'witness.db';

/**
 * Creates a witness: the directory (mode 0700), a fresh cosigning key (0600) and its verifier key.
 * Refuses a directory that exists and is not empty. Returns the verifier key.
 * @throws {ConflictError} DATA_DIR_EXISTS
 * @throws {ValidationError} VALIDATION_FAILED for a bad name, FILE_UNREADABLE when the directory cannot be made
 */
export function initWitnessDir(dir: string, name: string): { dataDir: string; name: string; verifierKey: string } {
  if (!isValidKeyName(name) || name.length > 200) {
    throw new ValidationError('VALIDATION_FAILED', 'the witness name must be non-empty, at most 200 characters, without spaces or "+" (a schema-less URL, e.g. witness.example.org/w1)', {
      issues: [{ path: 'name', message: 'invalid witness name' }],
    });
  }
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new ConflictError('DATA_DIR_EXISTS', `${dir} already exists and is not an empty directory`, { details: { dataDir: dir } });
  }
  const createdDir = !existsSync(dir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot create the witness directory ${dir}`, { cause: err, details: { dataDir: dir } });
  }
  const seed = randomBytes(32);
  const skey = formatCosignerSignerKey(name, seed);
  const signer = parseCosignerSignerKey(skey);
  const vkey = formatCosignerVerifierKey(name, signer.publicKey);
  const created: string[] = [];
  try {
    for (const [file, text, mode] of [
      [WITNESS_KEY_FILE, `${skey}\n`, 0o600],
      [WITNESS_PUB_FILE, `${vkey}\n`, 0o644],
    ] as const) {
      // 'wx' with the mode from creation: never overwrites, never readable by others meanwhile.
      const path = join(dir, file);
      const fd = openSync(path, 'wx', mode);
      created.push(path);
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      chmodSync(path, mode);
    }
    WitnessState.open(join(dir, WITNESS_DB_FILE)).close();
  } catch (err) {
    for (const p of [...created, ...['', '-wal', '-shm'].map((s) => join(dir, WITNESS_DB_FILE + s))]) rmSync(p, { force: true });
    if (createdDir) rmdirSync(dir);
    throw err;
  }
  return { dataDir: dir, name, verifierKey: vkey };
}

/** An open witness: the protocol logic over its state. */
export interface OpenWitness {
  readonly witness: Witness;
  readonly state: WitnessState;
  close(): void;
}

/**
 * Opens a witness directory for the given log keys.
 * @throws {NotFoundError} DATA_DIR_NOT_FOUND, KEY_NOT_FOUND
 * @throws {ValidationError} KEY_PERMISSIONS when the key file is readable by others
 * @throws {VerificationError} KEY_MALFORMED
 */
export function openWitnessDir(dir: string, logs: readonly NoteVerifier[], options: { now?: () => number } = {}): OpenWitness {
  const keyPath = join(dir, WITNESS_KEY_FILE);
  if (!existsSync(keyPath)) throw new NotFoundError('DATA_DIR_NOT_FOUND', `no witness in ${dir} (run custos witness init)`, { details: { dataDir: dir } });
  const mode = statSync(keyPath).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ValidationError(
      'KEY_PERMISSIONS',
      `the witness key ${keyPath} is accessible to others (mode 0${mode.toString(8)}); run chmod 600 ${keyPath} and consider the key compromised if others could read it`,
      {
        details: { path: keyPath, mode: `0${mode.toString(8)}` },
      },
    );
  }
  let text: string;
  try {
    text = readFileSync(keyPath, 'utf8').trim();
  } catch (err) {
    throw new NotFoundError('KEY_NOT_FOUND', `cannot read the witness key ${keyPath}`, { cause: err });
  }
  const signer = parseCosignerSignerKey(text);
  const state = WitnessState.open(join(dir, WITNESS_DB_FILE));
  const witness = new Witness({ signer, logs, state, ...(options.now ? { now: options.now } : {}) });
  return { witness, state, close: () => state.close() };
}
