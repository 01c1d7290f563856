/**
 * HTTP load test (not part of npm test): POST /api/v1/inferences over a real socket, driven by
 * autocannon, against a fresh log with one policy permitting TREAT for dermatologists.
 *
 *   npx tsc -p tsconfig.bench.json && node build/bench/http.bench.js
 *
 * The server runs in this process (main thread, as `custos serve` does); autocannon runs in this
 * process too, in worker threads unless HTTP_WORKERS=0. Every request sends the same valid body
 * (same input and output URIs, so after the first request their commitments already exist): this
 * measures the request path (auth, validation, consent decision, receipt, durable group commit),
 * not the cost of new commitments.
 *
 * Afterwards: the log verifies (verifyLog + verifyDocuments), the server's 201 responses each name
 * an INFERENCE_EXECUTED entry of the log (captured as sent, by an onSend hook), their number equals
 * the INFERENCE_EXECUTED entries, and autocannon's 2xx count is at most that (the difference is the
 * requests still in flight when autocannon stopped, which the server completed).
 *
 * Environment: HTTP_CONNECTIONS (default 128), HTTP_DURATION seconds (default 15), HTTP_WORKERS
 * (autocannon worker threads, default 1; 0 = autocannon on the main thread with the server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error -- autocannon ships no type declarations; the shapes used are declared below.
import autocannonUntyped from 'autocannon';
import { setupInferenceBench } from './http-setup.js';
import { verifyLog } from '../src/log/verify-log.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { peekEntry } from '../src/core/entry.js';
import { writeSection } from './results.js';

interface Histogram {
  readonly average: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly total: number;
}
interface AutocannonResult {
  readonly requests: Histogram & { readonly sent: number };
  readonly latency: Histogram;
  readonly throughput: Histogram;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly resets: number;
  readonly mismatches: number;
  readonly duration: number;
  readonly '1xx': number;
  readonly '2xx': number;
  readonly '3xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
}
interface AutocannonOptions {
  readonly url: string;
  readonly method: 'POST';
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly connections: number;
  readonly pipelining: number;
  readonly duration?: number;
  readonly amount?: number;
  readonly timeout?: number;
  readonly workers?: number;
}
const autocannon = autocannonUntyped as (o: AutocannonOptions) => Promise<AutocannonResult>;

const CONNECTIONS = Number(process.env['HTTP_CONNECTIONS'] ?? 128);
const DURATION = Number(process.env['HTTP_DURATION'] ?? 15);
const WORKERS = Number(process.env['HTTP_WORKERS'] ?? 1);
const TARGET = 10_000;

const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}`;
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const lines: string[] = [];
const say = (s: string) => {
  console.log(s);
  lines.push(s);
};

const root = mkdtempSync(join(tmpdir(), 'custos-http-bench-'));
try {
  const { dir, log, app, body, headers, setupEntries } = await setupInferenceBench(root);
  // What the server sent: the event index of every 201 from the inference route.
  const sentIndices: number[] = [];
  let sentOther = 0;
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.routeOptions.url === '/api/v1/inferences') {
      if (reply.statusCode === 201 && typeof payload === 'string') {
        const m = /"event":\{"index":(\d+),/.exec(payload);
        if (m) sentIndices.push(Number(m[1]));
        else sentOther++;
      } else sentOther++;
    }
    return payload;
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  const base = {
    url: `${address}/api/v1/inferences`,
    method: 'POST' as const,
    headers,
    body,
    pipelining: 1,
    timeout: 30,
    ...(WORKERS > 0 ? { workers: WORKERS } : {}),
  };

  // Warm-up (JIT, SQLite page cache), counted in the log checks like any other request.
  const warm = await autocannon({ ...base, connections: Math.min(CONNECTIONS, 32), amount: 2_000 });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({ ...base, connections: CONNECTIONS, duration: DURATION });
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sizeAtStop = log.size;

  await app.close();
  // Fastify's close stops accepting, but a handler still awaiting its append finishes after it: let
  // the log drain and those last responses go through onSend before reading what was sent.
  await log.flush();
  await new Promise((done) => setTimeout(done, 50));
  const finalSize = log.size;

  // ---- checks --------------------------------------------------------------------------------
  const types = new Map<string, number>();
  const inferenceIndices = new Set<number>();
  for await (const page of dir.store.entryPages(0, finalSize)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      types.set(p.type, (types.get(p.type) ?? 0) + 1);
      if (p.type === 'INFERENCE_EXECUTED') inferenceIndices.add(e.index);
    }
  }
  const executed = types.get('INFERENCE_EXECUTED') ?? 0;
  const client2xx = warm['2xx'] + r['2xx'];
  const uniqueSent = new Set(sentIndices);
  const missing = sentIndices.filter((i) => !inferenceIndices.has(i)).length;
  const tVerify = performance.now();
  const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
  const docs = await verifyDocuments({ store: dir.store });
  const verifyS = (performance.now() - tVerify) / 1000;

  const checks: [string, boolean][] = [
    ['log verifies (verifyLog)', report.ok],
    ['off-ledger store verifies (verifyDocuments)', docs.ok],
    [`every 201 the server sent names an INFERENCE_EXECUTED entry (${fmt(sentIndices.length)} sent, ${missing} missing)`, missing === 0],
    ['no event index was sent twice', uniqueSent.size === sentIndices.length],
    [`INFERENCE_EXECUTED entries (${fmt(executed)}) = 201 responses sent (${fmt(sentIndices.length)})`, executed === sentIndices.length],
    [
      `autocannon 2xx (${fmt(client2xx)}) ≤ 201 sent, short by at most the ${CONNECTIONS} connections in flight at the cutoff (${fmt(sentIndices.length - client2xx)})`,
      client2xx <= sentIndices.length && sentIndices.length - client2xx <= CONNECTIONS,
    ],
    [`log size (${fmt(finalSize)}) = setup entries (${setupEntries}) + INFERENCE_EXECUTED, ≥ setup + 2xx`, finalSize === setupEntries + executed && finalSize >= setupEntries + client2xx],
    ['no other event types (no denials, no errors)', types.size === 3 && (types.get('CONSENT_CREATED') ?? 0) === 1 && (types.get('TOKEN_CREATED') ?? 0) === 1],
    ['no non-2xx, errors, timeouts or resets', r.non2xx + r.errors + r.timeouts + r.resets + warm.non2xx + warm.errors + sentOther === 0],
  ];

  const rps = r['2xx'] / r.duration;
  say('## HTTP API load (bench/http.bench.ts)');
  say('');
  say(`Machine: ${machine}`);
  say(`Date: ${new Date().toISOString()}`);
  say(
    `POST /api/v1/inferences with a dermatologist token, ${CONNECTIONS} connections, pipelining 1, ${DURATION} s after a ${fmt(warm['2xx'])}-request warm-up; ` +
      `server and autocannon in one process (server on the main thread, autocannon ${WORKERS > 0 ? `in ${WORKERS} worker thread(s)` : 'on the main thread too'}); ` +
      'compiled JS, logger off, rate limit raised out of the way. Every request sends the same valid body (same URIs: their commitments exist after the first request). ' +
      'Each 201 is a consent decision at sequencing, an INFERENCE_EXECUTED entry with its receipt, durable (SQLite WAL, synchronous=FULL, group commit) and covered by a signed checkpoint before the response.',
  );
  say('');
  say('| measure | result | target |');
  say('| --- | --- | --- |');
  say(`| requests/s (2xx / duration) | ${fmt(rps)} | ≥ ${fmt(TARGET)} |`);
  say(`| requests/s (autocannon mean per second) | ${fmt(r.requests.average)} | |`);
  say(`| latency p50 / p90 / p99 / max (ms) | ${r.latency.p50} / ${r.latency.p90} / ${r.latency.p99} / ${r.latency.max} | |`);
  say(`| responses: 2xx / non-2xx | ${fmt(r['2xx'])} / ${fmt(r.non2xx)} | |`);
  say(`| errors / timeouts / resets | ${r.errors} / ${r.timeouts} / ${r.resets} | 0 |`);
  say(`| process CPU during the run (user + system) | ${((cpu.user + cpu.system) / 1e6 / wallS).toFixed(2)} cores of ${cpus().length} | |`);
  say(`| entries at stop / after drain | ${fmt(sizeAtStop)} / ${fmt(finalSize)} | |`);
  say(`| verification afterwards (${fmt(finalSize)} entries, ${fmt(report.checkpointsChecked)} checkpoints) | ${verifyS.toFixed(1)} s | |`);
  say('');
  say('| check | |');
  say('| --- | --- |');
  for (const [what, ok] of checks) say(`| ${what} | ${ok ? 'yes' : 'NO'} |`);
  say('');
  say(rps >= TARGET ? `Target met: ${fmt(rps)} ≥ ${fmt(TARGET)} requests/s.` : `Target NOT met: ${fmt(rps)} requests/s is ${((rps / TARGET) * 100).toFixed(0)}% of ${fmt(TARGET)}.`);
  const file = writeSection('http', lines);
  console.log(`\nwrote ${file}`);

  await log.close();
  await dir.store.close();
  if (!checks.every(([, ok]) => ok)) process.exitCode = 1;
} finally {
  rmSync(root, { recursive: true, force: true });
}
