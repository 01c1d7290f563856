/**
 * PostgreSQL throughput (npm run bench:pg): POST /api/v1/access over HTTP, against `custos serve`
 * processes: SQLite with 1 server, PostgreSQL with 1 server and with 3 servers on one database.
 * Needs PG_URL, or starts a throwaway cluster with scripts/pg-cluster.sh. Afterwards each log verifies.
 * Environment: PG_DURATION seconds per run (default 10), PG_CONNECTIONS per server (default 64).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
// @ts-expect-error -- autocannon ships no type declarations.
import autocannonUntyped from 'autocannon';
import { writeSection } from './results.js';

const autocannon = autocannonUntyped as (
  o: Record<string, unknown>,
) => Promise<{ requests: { average: number }; latency: { p50: number; p99: number }; '2xx': number; non2xx: number; errors: number; duration: number }>;
const ROOT = process.cwd();
const BIN = join(ROOT, 'bin', 'custos.js');
const DURATION = Number(process.env['PG_DURATION'] ?? 10);
const CONNECTIONS = Number(process.env['PG_CONNECTIONS'] ?? 64);
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

function cli(dataDir: string, store: string | undefined, args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, '--data-dir', dataDir, ...(store ? ['--store', store] : []), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`custos ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function startServer(dataDir: string, store: string | undefined): Promise<{ proc: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, '--data-dir', dataDir, ...(store ? ['--store', store] : []), 'serve', '--port', '0', '--rate-limit', '100000000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (c) => {
      out += c;
      const m = /audit explorer\s+(http:\/\/[^/\s]+)\//.exec(out);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.stderr!.on('data', (c) => (out += c));
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}

async function scenario(label: string, store: string | undefined, servers: number): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'custos-pgbench-'));
  try {
    cli(dataDir, store, ['init', '--origin', 'bench.custos.local/pg']);
    const officer = JSON.parse(cli(dataDir, store, ['--json', 'token', 'create', '--name', 'po', '--role', 'privacy_officer'])).token as string;
    const clinician = JSON.parse(cli(dataDir, store, ['--json', 'token', 'create', '--name', 'u', '--role', 'dermatologist'])).token as string;
    const procs = [];
    for (let i = 0; i < servers; i++) procs.push(await startServer(dataDir, store));
    try {
      const created = await fetch(`${procs[0]!.url}/api/v1/consents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${officer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ subject: 's', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }),
      });
      const { policy } = (await created.json()) as { policy: { policyId: string } };
      const body = JSON.stringify({ purpose: 'TREAT', policyId: policy.policyId, artifact: { uri: 's3://bench/img.jpg', digest: 'ab'.repeat(32) } });
      const results = await Promise.all(
        procs.map((p) =>
          autocannon({
            url: `${p.url}/api/v1/access`,
            method: 'POST',
            connections: CONNECTIONS,
            duration: DURATION,
            headers: { authorization: `Bearer ${clinician}`, 'content-type': 'application/json' },
            body,
          }),
        ),
      );
      const total2xx = results.reduce((s, r) => s + r['2xx'], 0);
      const bad = results.reduce((s, r) => s + r.non2xx + r.errors, 0);
      const rps = total2xx / DURATION;
      const p50 = Math.max(...results.map((r) => r.latency.p50));
      const p99 = Math.max(...results.map((r) => r.latency.p99));
      for (const p of procs) p.proc.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      const v = JSON.parse(cli(dataDir, store, ['--json', 'verify']));
      const line = `| ${label} | ${servers} | ${fmt(rps)} | ${p50} / ${p99} | ${fmt(total2xx)} / ${bad} | ${v.ok ? `yes (${fmt(v.entries)} entries)` : 'NO'} |`;
      console.log(line);
      return line;
    } finally {
      for (const p of procs) p.proc.kill('SIGKILL');
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

let pgUrl = process.env['PG_URL'];
let cluster: string | undefined;
if (!pgUrl) {
  cluster = mkdtempSync(join(tmpdir(), 'custos-pgbench-cluster-'));
  const r = spawnSync('bash', [join(ROOT, 'scripts/pg-cluster.sh'), 'start', join(cluster, 'data'), '55999'], { encoding: 'utf8' });
  pgUrl = /DATABASE_URL=(\S+)/.exec(r.stdout)?.[1];
  if (!pgUrl) throw new Error(`no PostgreSQL: ${r.stderr}`);
}
async function freshDb(): Promise<string> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  const name = `custos_bench_${randomBytes(4).toString('hex')}`;
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(pgUrl!);
  u.pathname = `/${name}`;
  return u.toString();
}
try {
  const lines = [
    '## PostgreSQL: one log, several servers (npm run bench:pg)',
    '',
    `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}; PostgreSQL 15 on the same machine (fsync on).`,
    `Date: ${new Date().toISOString()}`,
    `POST /api/v1/access (consent decided at sequencing, durable, signed checkpoint per batch), ${CONNECTIONS} connections per server, ${DURATION} s, the same body each time; servers are \`custos serve\` processes.`,
    '',
    '| store | servers | requests/s (all servers) | p50 / p99 ms (worst server) | 2xx / errors | log verifies afterwards |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  lines.push(await scenario('SQLite', undefined, 1));
  lines.push(await scenario('PostgreSQL', await freshDb(), 1));
  lines.push(await scenario('PostgreSQL', await freshDb(), 3));
  lines.push('', 'All processes share the 2 cores with PostgreSQL and the load generator, so 3 servers measure correctness under contention more than scale-out.');
  writeSection('pg', lines);
} finally {
  if (cluster) {
    spawnSync('bash', [join(ROOT, 'scripts/pg-cluster.sh'), 'stop', join(cluster, 'data')]);
    rmSync(cluster, { recursive: true, force: true });
  }
}
