/**
 * Import speed of `custos import reference-ledger` (npm run bench:import): a ledger of about 20,000
 * lines written by the reference's own code (test/fixtures/reference/make_ledger.py --fast, 1,000
 * patients, 18,000 runs), verified (--dry-run) and then imported into a fresh SQLite log, in
 * process. Prints lines/s for each; docs/import.md quotes the figures.
 * Environment: IMPORT_BENCH_RUNS (default 18000), IMPORT_BENCH_PATIENTS (default 1000).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run } from '../src/cli/main.js';

// Run from the repository root (npm run bench:import).
const root = process.cwd();
const runs = process.env['IMPORT_BENCH_RUNS'] ?? '18000';
const patients = process.env['IMPORT_BENCH_PATIENTS'] ?? '1000';
const tmp = mkdtempSync(join(tmpdir(), 'custos-import-bench-'));

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Runs the CLI in process: wall time and this process's CPU time (the machine may be shared). */
async function cli(args: string[]): Promise<{ ms: number; cpuMs: number; out: string }> {
  const out = sink();
  const err = sink();
  const t = performance.now();
  const cpu = process.cpuUsage();
  const code = await run(args, { stdout: out.stream, stderr: err.stream, stdin: '' }, {});
  const ms = performance.now() - t;
  const c = process.cpuUsage(cpu);
  if (code !== 0) throw new Error(`custos ${args.join(' ')} exited ${code}: ${err.text()}`);
  return { ms, cpuMs: (c.user + c.system) / 1000, out: out.text() };
}

const rate = (lines: number, r: { ms: number; cpuMs: number }) =>
  `${(r.ms / 1000).toFixed(2)} s wall (${Math.round(lines / (r.ms / 1000))} lines/s), ${(r.cpuMs / 1000).toFixed(2)} s CPU (${Math.round(lines / (r.cpuMs / 1000))} lines/CPU-s)`;

try {
  const ledgerDir = join(tmp, 'ref');
  const t0 = performance.now();
  const g = spawnSync('python3', [join(root, 'test/fixtures/reference/make_ledger.py'), join(root, '..', 'shared', 'seed_py'), ledgerDir, patients, runs, '7', '--fast'], { encoding: 'utf8' });
  if (g.status !== 0) throw new Error(g.stderr);
  const lines = readFileSync(join(ledgerDir, 'ledger.jsonl'), 'utf8').split('\n').length - 1;
  console.log(`reference ledger: ${lines} lines written by the reference in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const data = join(tmp, 'data');
  await cli(['--data-dir', data, 'init']);
  const dry = await cli(['--data-dir', data, '--json', 'import', 'reference-ledger', ledgerDir, '--dry-run']);
  console.log(`verify only (--dry-run): ${rate(lines, dry)}`);
  const imp = await cli(['--data-dir', data, '--json', 'import', 'reference-ledger', ledgerDir]);
  console.log(`verify + import: ${rate(lines, imp)}`);
  const ver = await cli(['--data-dir', data, '--json', 'verify', '--no-progress']);
  const v = JSON.parse(ver.out) as { ok: boolean; entries: number };
  console.log(`custos verify after the import: ok=${v.ok}, ${v.entries} entries, ${(ver.ms / 1000).toFixed(2)} s`);
  console.log(`load average (1 min) at the end: ${loadavg()[0]!.toFixed(1)}`);
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${platform()} ${release()}, Node ${process.version}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
