/**
 * Helpers for the CLI end-to-end tests: run the built CLI, either in this process (`callCli`, the
 * `run()` that bin/custos.js calls) or as the real `bin/custos.js` in a child process (`runCli`, for
 * tests where the process itself is the point), capture exit code, stdout and stderr, and check the
 * error-line contract.
 * @module
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import type { run as RunFn } from '../../src/cli/main.js';

/** The repository root (this file is test/helpers/cli.ts). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(repoRoot, 'bin', 'custos.js');

/** Exit codes of the CLI (docs/errors.md). */
export const EXIT = { ok: 0, validation: 2, notFound: 3, verification: 4, conflict: 5, store: 6, internal: 70 } as const;

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly args: readonly string[];
}

export interface RunOptions {
  /** Working directory of the child, or of the in-process run (default: the repository root). */
  readonly cwd?: string;
  /** Extra environment variables (CUSTOS_* from the parent environment are never inherited). */
  readonly env?: Readonly<Record<string, string>>;
  /** Text written to the child's stdin, or given as the in-process run's stdin (closed either way). */
  readonly input?: string;
}

// Every secret (signing key text) seen by the tests; no command may ever print one of them.
const secrets = new Set<string>();

/** Registers the contents of a log.key file: it must never appear in any command output. */
export function registerSecret(signerKeyText: string): void {
  const text = signerKeyText.trim();
  secrets.add(text);
  // The seed part alone (base64 after the last '+' of PRIVATE+KEY+name+id+seed) is just as secret.
  const parts = text.split('+');
  const seed = parts.slice(4).join('+');
  if (seed.length >= 16) secrets.add(seed);
}

/** Asserts that `text` holds no private key material. */
export function assertNoSecrets(text: string, what: string): void {
  assert.ok(!text.includes('PRIVATE+KEY'), `${what} contains a private key (PRIVATE+KEY)`);
  for (const s of secrets) assert.ok(!text.includes(s), `${what} contains a registered signing key`);
}

function childEnv(extra: Readonly<Record<string, string>> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CUSTOS_') && !k.startsWith('NODE_TEST') && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * Runs `node bin/custos.js ...args`. Never rejects on a non-zero exit; always checks that no
 * private key material was printed.
 */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // the child may exit before reading its stdin
    child.stdin.end(options.input ?? '');
    child.on('close', (code, signal) => {
      const r: CliResult = { code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), args };
      try {
        assertNoSecrets(r.stdout, `stdout of custos ${args.join(' ')}`);
        assertNoSecrets(r.stderr, `stderr of custos ${args.join(' ')}`);
      } catch (e) {
        reject(e);
        return;
      }
      resolve(r);
    });
  });
}

/** Runs the CLI against a data directory (`--data-dir dir` before the command). */
export function runIn(dataDir: string, args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return runCli(['--data-dir', dataDir, ...args], options);
}

let runInProcess: Promise<typeof RunFn> | undefined;

/** A stream that keeps what is written to it. */
function sink(): { stream: Writable; text(): string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * Runs `custos ...args` in this process: the `run()` of the built dist/cli/main.js (the function
 * bin/custos.js calls), with captured stdout and stderr, the same environment a child would get
 * (CUSTOS_* of this process never leak in), `options.cwd` for relative paths and `options.input`
 * as stdin. Same result and the same secret check as {@link runCli}; `signal` is always null.
 * Use runCli where the process itself is under test (the bin, signals, exit status, umask).
 */
export async function callCli(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  runInProcess ??= import(pathToFileURL(join(repoRoot, 'dist', 'cli', 'main.js')).href).then((m: { run: typeof RunFn }) => m.run);
  const run = await runInProcess;
  const out = sink();
  const err = sink();
  const code = await run(args, { stdout: out.stream, stderr: err.stream, stdin: options.input ?? '', cwd: options.cwd ?? repoRoot }, childEnv(options.env));
  const r: CliResult = { code, signal: null, stdout: out.text(), stderr: err.text(), args };
  assertNoSecrets(r.stdout, `stdout of custos ${args.join(' ')}`);
  assertNoSecrets(r.stderr, `stderr of custos ${args.join(' ')}`);
  return r;
}

/** {@link callCli} against a data directory (`--data-dir dir` before the command). */
export function callIn(dataDir: string, args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return callCli(['--data-dir', dataDir, ...args], options);
}

function describeRun(r: CliResult): string {
  return `custos ${r.args.join(' ')}\n  exit: ${r.code}\n  stdout: ${r.stdout.slice(0, 2000)}\n  stderr: ${r.stderr.slice(0, 2000)}`;
}

/** Asserts exit 0 with an empty stderr. */
export function assertOk(r: CliResult): void {
  assert.equal(r.code, 0, `expected exit 0\n${describeRun(r)}`);
  assert.equal(r.stderr, '', `expected an empty stderr\n${describeRun(r)}`);
}

/** Asserts exit 0 and parses stdout as JSON. */
export function okJson<T = Record<string, unknown>>(r: CliResult): T {
  assertOk(r);
  return parseJson<T>(r);
}

/** Parses stdout as JSON, with the run in the failure message. */
export function parseJson<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`stdout is not JSON\n${describeRun(r)}`);
  }
}

/**
 * Asserts a failed run: the exit code, and a stderr of exactly one line `custos: <CODE>: ...`.
 * Unless `stdoutAllowed`, stdout must be empty.
 */
export function assertError(r: CliResult, exit: number, code: string, options: { stdoutAllowed?: boolean; message?: RegExp } = {}): void {
  assert.equal(r.code, exit, `expected exit ${exit}\n${describeRun(r)}`);
  assert.ok(r.stderr.startsWith(`custos: ${code}: `), `expected stderr to start with "custos: ${code}: "\n${describeRun(r)}`);
  assert.ok(r.stderr.endsWith('\n'), `stderr must end with a newline\n${describeRun(r)}`);
  assert.equal(r.stderr.split('\n').length, 2, `stderr must be exactly one line\n${describeRun(r)}`);
  if (!options.stdoutAllowed) assert.equal(r.stdout, '', `expected an empty stdout\n${describeRun(r)}`);
  if (options.message) assert.match(r.stderr, options.message, describeRun(r));
}

/** A fresh temporary directory; `cleanup()` removes it. */
export function makeTempDir(prefix = 'custos-cli-test-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

function newestMtime(dir: string, filter: (name: string) => boolean): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) newest = Math.max(newest, newestMtime(p, filter));
    else if (filter(name)) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** Builds dist/ with `npm run build` when it is missing or older than src/. */
export function ensureBuilt(): void {
  const dist = join(repoRoot, 'dist');
  const distMain = join(dist, 'cli', 'main.js');
  const stale = !existsSync(distMain) || newestMtime(join(repoRoot, 'src'), (n) => n.endsWith('.ts') && !n.endsWith('.test.ts')) > newestMtime(dist, (n) => n.endsWith('.js'));
  if (!stale) return;
  const r = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, encoding: 'utf8', shell: process.platform === 'win32' });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
}

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF records). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field.length === 0) {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 2;
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (field.length > 0 || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
