/**
 * Terminal output: human-readable by default, JSON with --json, progress bars only on a TTY.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { SingleBar } from 'cli-progress';
import { ValidationError } from '../core/errors.js';

/** Where a command reads and writes. Injected so that the CLI can run inside another process (tests). */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** All of standard input, for `-` file arguments (default: the process's standard input). */
  readonly stdin?: string | Uint8Array;
  /** The directory that relative paths on the command line are resolved against (default: the process's). */
  readonly cwd?: string;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

/** A path from the command line, resolved against `io.cwd` when one is given (else left to the process). */
export function inCwd(io: Io, path: string): string {
  return io.cwd === undefined ? path : resolve(io.cwd, path);
}

/** Reads all of standard input as UTF-8: the text given in `io.stdin`, else file descriptor 0. */
export function readStdin(io: Io): string {
  if (io.stdin === undefined) return readFileSync(0, 'utf8');
  return typeof io.stdin === 'string' ? io.stdin : Buffer.from(io.stdin).toString('utf8');
}

/** Reads all of standard input as bytes, exactly: `io.stdin` (text as UTF-8), else file descriptor 0. */
export function readStdinBytes(io: Io): Buffer {
  if (io.stdin === undefined) return readFileSync(0);
  return typeof io.stdin === 'string' ? Buffer.from(io.stdin, 'utf8') : Buffer.from(io.stdin);
}

// cli-progress is loaded only when a bar is drawn (an interactive stderr), not by every command.
const require = createRequire(import.meta.url);

/** Writes one line of JSON. */
export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes aligned `key: value` lines. */
export function printFields(io: Io, fields: Readonly<Record<string, unknown>>): void {
  const width = Math.max(...Object.keys(fields).map((k) => k.length));
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    io.stdout.write(`${`${k}:`.padEnd(width + 2)}${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
  }
}

/** A progress reporter: a bar on an interactive stderr, nothing otherwise. */
export function createProgress(io: Io, label: string, enabled: boolean): { update(done: number, total: number): void; stop(): void } {
  if (!enabled || !io.stderr.isTTY) return { update() {}, stop() {} };
  const cliProgress = require('cli-progress') as typeof import('cli-progress');
  const bar: SingleBar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} entries | {eta_formatted} left`, stream: io.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/**
 * Writes a file whole, then renames it into place: a reader never sees half of it, and a file that
 * exists is never overwritten by a partial one. `given` is the path as the user wrote it (for the
 * error); `mode` 0600 for files about a patient (proofs, credentials, reports).
 * @throws {ValidationError} FILE_UNREADABLE
 */
export function writeFileWhole(target: string, given: string, text: string, mode?: number): void {
  const tmp = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, text, { flag: 'wx', ...(mode === undefined ? {} : { mode }) });
    renameSync(tmp, target);
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${given}`, { cause: err });
  }
}
