/**
 * What every command receives: the resolved data directory, output mode and I/O streams.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { ValidationError } from '../core/errors.js';
import { parseVerifierKey, type NoteVerifier } from '../core/note.js';
import { openDataDir, openLog, VERIFIER_KEY_FILE, type DataDir } from '../log/data-dir.js';
import type { Log } from '../log/log.js';
import { join } from 'node:path';
import { inCwd, type Io } from './output.js';

export interface CommandContext {
  readonly dataDir: string;
  /** A postgres:// URL when the log lives in PostgreSQL (--store or CUSTOS_DATABASE_URL). */
  readonly storeUrl?: string | undefined;
  readonly json: boolean;
  readonly io: Io;
}

/** Runs `fn` with the data directory's store open, closing it afterwards. */
export async function withDataDir<T>(ctx: CommandContext, fn: (dir: DataDir) => Promise<T>, readonly = false): Promise<T> {
  const dir = await openDataDir(ctx.dataDir, { readonly, storeUrl: ctx.storeUrl });
  try {
    return await fn(dir);
  } finally {
    await dir.store.close();
  }
}

/** Runs `fn` with the log open for writing. */
export async function withLog<T>(ctx: CommandContext, fn: (log: Log, dir: DataDir) => Promise<T>): Promise<T> {
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    return await fn(log, dir);
  } finally {
    await log.close();
    await dir.store.close();
  }
}

/**
 * The keys trusted to have signed the log: `--key` (a verifier key string or a file holding one),
 * pinned by the caller; else the data directory's log.pub, else the key recorded in the store at
 * init. Those two come with the log itself, so trusting them is not a check of who signed it: a
 * log forged whole and re-signed under a new key, with that key in log.pub, passes. `pinned` and
 * `trust` say which case applies, for the output to say plainly.
 */
export function trustedVerifiers(ctx: CommandContext, dir: DataDir, keyOption: string | undefined): { verifiers: NoteVerifier[]; source: string; pinned: boolean; trust: string } {
  if (keyOption !== undefined) {
    let text = keyOption;
    const file = inCwd(ctx.io, keyOption);
    if (existsSync(file)) {
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ValidationError('FILE_UNREADABLE', `cannot read key file ${keyOption}`, { cause: err });
      }
    }
    const keys = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    if (keys.length === 0) throw new ValidationError('VALIDATION_FAILED', '--key holds no verifier key');
    return { verifiers: keys.map(parseVerifierKey), source: '--key', pinned: true, trust: 'the key given with --key (pinned)' };
  }
  const unpinned = '(not pinned: a log forged and re-signed under a new key would pass; pass --key with the published key to pin it)';
  const pub = join(dir.dataDir, VERIFIER_KEY_FILE);
  if (existsSync(pub)) return { verifiers: [parseVerifierKey(readFileSync(pub, 'utf8').trim())], source: pub, pinned: false, trust: `trusting the key in ${pub} ${unpinned}` };
  return { verifiers: [dir.verifier], source: 'store metadata', pinned: false, trust: `trusting the key recorded in the store ${unpinned}` };
}
