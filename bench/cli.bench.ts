/**
 * Start-up benchmark (npm run bench:cli): how long a fresh Node process takes to print
 * `custos --help`, `custos verify --help` and to import the library root, against a bare
 * `node -e 0`. Needs a built dist/ (npm run build). Writes its section of bench/RESULTS.md.
 * Environment: CLI_BENCH_RUNS (default 30) = spawns per case.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem, platform, release } from 'node:os';
import { writeSection } from './results.js';

const RUNS = Number(process.env['CLI_BENCH_RUNS'] ?? 30);
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}`;

const cases: { label: string; args: string[] }[] = [
  { label: '`node -e 0` (baseline)', args: ['-e', '0'] },
  { label: '`custos --help`', args: ['bin/custos.js', '--help'] },
  { label: '`custos verify --help`', args: ['bin/custos.js', 'verify', '--help'] },
  { label: "`import('custos')` (dist/index.js)", args: ['-e', 'import("./dist/index.js")'] },
];

/** Wall time of one spawn, in ms; fails loudly if the command fails. */
function once(args: readonly string[]): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: process.cwd(), stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

function quantile(sorted: readonly number[], q: number): number {
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

// Interleave the cases so that a burst of load elsewhere on the machine hits all of them alike.
const samples = new Map(cases.map((c) => [c.label, [] as number[]]));
for (const c of cases) once(c.args); // warm the file system cache
for (let i = 0; i < RUNS; i++) for (const c of cases) samples.get(c.label)!.push(once(c.args));

const lines: string[] = [];
const say = (s: string) => {
  console.log(s);
  lines.push(s);
};
say('## CLI and library start-up (npm run bench:cli)');
say('');
say(`Machine: ${machine}`);
say(`Date: ${new Date().toISOString()}`);
say(`Wall time of a fresh \`node\` process, ${RUNS} spawns per case, interleaved. Target: \`custos --help\` under 300 ms.`);
say('');
say('| case | median (ms) | p95 (ms) | min (ms) |');
say('| --- | --- | --- | --- |');
for (const c of cases) {
  const s = [...samples.get(c.label)!].sort((a, b) => a - b);
  say(`| ${c.label} | ${quantile(s, 0.5).toFixed(0)} | ${quantile(s, 0.95).toFixed(0)} | ${s[0]!.toFixed(0)} |`);
}
writeSection('cli', lines);
