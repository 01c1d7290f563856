#!/usr/bin/env node
// Finds every *.test.ts under src/ and test/ and runs them with node:test through tsx.
// (Node 20's --test does not expand globs itself, and a shell glob cannot recurse portably.)
// Prints the spec report, then one plain closing line "N passed, N failed" read from a TAP copy,
// and how long it took ("npm test took 3 min 5 s" under `npm test`, typecheck and build included).
// Test files run two at a time at least (TEST_CONCURRENCY=n to choose): node's default,
// availableParallelism() - 1, is one file at a time on a 2-core machine, and the files are
// independent (temporary directories, port 0, a PostgreSQL database of their own each).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { availableParallelism, tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';

const started = Date.now();
const root = new URL('..', import.meta.url).pathname;

// Under `npm test` this script is the last step of a shell that npm started for the script, after
// the typecheck and the build: count from that shell's start (Linux /proc; elsewhere from here).
function npmScriptStart() {
  if (process.env.npm_lifecycle_event !== 'test') return undefined;
  try {
    const stat = readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]); // field 22: starttime
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const at = Date.now() - (uptime - startTicks / 100) * 1000; // USER_HZ is 100 on Linux
    return Number.isFinite(at) && at <= started ? at : undefined;
  } catch {
    return undefined;
  }
}
const scriptStart = npmScriptStart();

function duration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
const only = process.argv.slice(2);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

let files = [...walk(join(root, 'src'), []), ...walk(join(root, 'test'), [])].sort();
if (only.length > 0) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
// PostgreSQL: use PG_URL if given; else start a throwaway cluster when PostgreSQL is installed;
// else say clearly that the PostgreSQL suite is skipped.
const env = { ...process.env };
let pgDir;
if (!env.PG_URL) {
  if (existsSync('/usr/lib/postgresql')) {
    pgDir = mkdtempSync(join(tmpdir(), 'custos-pgtest-'));
    const port = String(55000 + Math.floor(Math.random() * 5000));
    const r = spawnSync('bash', [join(root, 'scripts/pg-cluster.sh'), 'start', join(pgDir, 'data'), port], { encoding: 'utf8' });
    const m = /DATABASE_URL=(\S+)/.exec(r.stdout ?? '');
    if (r.status === 0 && m) {
      env.PG_URL = m[1];
      console.log(`run-tests: PostgreSQL suite against a throwaway cluster on 127.0.0.1:${port}`);
    } else {
      console.log(`run-tests: PostgreSQL suite skipped: could not start a throwaway cluster (${(r.stderr ?? '').trim()})`);
    }
  } else {
    console.log('run-tests: PostgreSQL suite skipped: PostgreSQL is not installed (apt-get install postgresql, or set PG_URL)');
  }
}
const stopPg = () => {
  if (pgDir) {
    spawnSync('bash', [join(root, 'scripts/pg-cluster.sh'), 'stop', join(pgDir, 'data')]);
    rmSync(pgDir, { recursive: true, force: true });
    pgDir = undefined;
  }
};
process.on('exit', stopPg);

const tapDir = mkdtempSync(join(tmpdir(), 'custos-tap-'));
const tap = join(tapDir, 'report.tap');
const r = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${env.TEST_CONCURRENCY || Math.max(2, availableParallelism() - 1)}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env },
);
stopPg();
let summary = '';
try {
  const text = readFileSync(tap, 'utf8');
  const count = (k) => Number((new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text) ?? [])[1] ?? 0);
  summary = `${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`;
} catch {
  summary = '';
}
rmSync(tapDir, { recursive: true, force: true });
if (summary) console.log(`\n${summary}`);
console.log(scriptStart === undefined ? `tests took ${duration(Date.now() - started)}` : `npm test took ${duration(Date.now() - scriptStart)} (tests ${duration(Date.now() - started)})`);
process.exit(r.status ?? 1);
