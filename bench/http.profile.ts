/**
 * CPU profile of the HTTP server under the load of bench/http.bench.ts (not part of npm test):
 * the same setup (fresh log, one policy, a dermatologist token, the same body, 128 connections,
 * autocannon in a worker thread), with the main thread's profiler on for the measured run only.
 *
 *   npx tsc -p tsconfig.bench.json && node build/bench/http.profile.js [out.cpuprofile]
 *
 * Prints the top self-time frames, and the server's CPU split by where a sample's stack runs:
 * the governance path (any frame of src/service, src/log or src/store: the decision, the log
 * write, the store) versus the HTTP layer (everything else: Fastify, node:http, the server's
 * hooks and routes), with garbage collection and idle apart, as shares and as main-thread time
 * per request (steadier than requests/s on a shared machine).
 *
 * Environment: HTTP_CONNECTIONS (default 128), HTTP_DURATION seconds (default 10).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error -- autocannon ships no type declarations.
import autocannonUntyped from 'autocannon';
import { setupInferenceBench } from './http-setup.js';

interface CpuNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly CpuNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}
const autocannon = autocannonUntyped as (o: Record<string, unknown>) => Promise<{ '2xx': number; non2xx: number; errors: number; duration: number; latency: { p50: number; p99: number } }>;

const CONNECTIONS = Number(process.env['HTTP_CONNECTIONS'] ?? 128);
const DURATION = Number(process.env['HTTP_DURATION'] ?? 10);
const out = process.argv[2];

const root = mkdtempSync(join(tmpdir(), 'custos-http-profile-'));
try {
  const { dir, log, app, body, headers } = await setupInferenceBench(root);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const base = { url: `${address}/api/v1/inferences`, method: 'POST', headers, body, pipelining: 1, timeout: 30, workers: 1 };
  await autocannon({ ...base, connections: Math.min(CONNECTIONS, 32), amount: 2_000 });

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({ ...base, connections: CONNECTIONS, duration: DURATION });
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
  session.disconnect();
  await app.close();
  await log.close();
  await dir.store.close();
  if (out) writeFileSync(out, JSON.stringify(profile));

  console.log(
    `${Math.round(r['2xx'] / r.duration)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}; ` +
      `process CPU ${((cpu.user + cpu.system) / 1e6 / wallS).toFixed(2)} cores (server main thread + autocannon worker)`,
  );
  report(profile, r['2xx']);
} finally {
  rmSync(root, { recursive: true, force: true });
}

function report(p: CpuProfile, requests: number): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const GOV = /\/src\/(service|log|store)\//;
  const kindOf = new Map<number, string>();
  const kind = (id: number): string => {
    const known = kindOf.get(id);
    if (known) return known;
    const name = byId.get(id)!.callFrame.functionName;
    let k: string;
    if (name === '(idle)') k = 'idle';
    else if (name === '(garbage collector)') k = 'gc';
    else if (name === '(program)') k = 'program';
    else {
      k = 'http';
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        if (GOV.test(byId.get(at)!.callFrame.url)) {
          k = 'governance';
          break;
        }
      }
    }
    kindOf.set(id, k);
    return k;
  };
  const self = new Map<string, number>();
  const kinds = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anon)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    kinds.set(kind(id), (kinds.get(kind(id)) ?? 0) + dt);
  });
  const pct = (t: number, of = total) => `${((100 * t) / of).toFixed(1).padStart(5)}%`;
  const busy = total - (kinds.get('idle') ?? 0);
  console.log(`\nmain thread, ${(total / 1e6).toFixed(1)} s sampled; busy ${pct(busy)}`);
  const us = (t: number) => `${(t / requests).toFixed(0).padStart(4)} µs/request`;
  for (const k of ['governance', 'http', 'gc', 'program', 'idle'])
    console.log(`  ${k.padEnd(11)} ${pct(kinds.get(k) ?? 0)} of samples, ${pct(kinds.get(k) ?? 0, busy)} of busy, ${us(kinds.get(k) ?? 0)}`);
  console.log('\ntop self-time frames (% of samples):');
  for (const [k, t] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env['TOP'] ?? 40))) console.log(`${pct(t)}  ${k}`);
}
