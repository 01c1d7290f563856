/**
 * Log benchmark (npm run bench). Not part of npm test: speed targets are checked here, never by
 * timed assertions in tests. Writes bench/RESULTS.md with the machine line.
 *
 * Environment: BENCH_SIZE (default 1000000) = the largest log size measured.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir, platform, release } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initDataDir, openLog, openDataDir } from '../src/log/data-dir.js';
import { LogReader } from '../src/log/reader.js';
import { verifyLog } from '../src/log/verify-log.js';
import type { Log } from '../src/log/log.js';

const MAX = Number(process.env['BENCH_SIZE'] ?? 1_000_000);
// Concurrent append() calls in flight per group commit. 1,000 gave the best throughput and the
// least memory here; 100 and 10,000 are measured too.
const BATCH = 1_000;
const WINDOW = 20_000;

const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${platform()} ${release()}, Node ${process.version}`;
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
const lines: string[] = [];
const say = (s: string) => {
  console.log(s);
  lines.push(s);
};

// Content hashes come from a pre-generated pool: calling randomBytes per event cost more than
// the append itself (35% of a profile), which would measure the harness, not Custos.
const HASH_POOL = Array.from({ length: 65_536 }, () => randomBytes(32).toString('hex'));

function event(i: number): { type: string; payload: Record<string, string> } {
  return {
    type: 'AUDIT_EVENT',
    payload: { resource: `report/rad-${i}`, practitioner: `practitioner/dr-${i % 97}`, contentHash: HASH_POOL[i & 0xffff]! },
  };
}

/** Appends `n` entries as concurrent append() calls, `batch` at a time (one group commit each). */
async function appendMany(log: Log, n: number, batch: number): Promise<number> {
  const t0 = performance.now();
  for (let done = 0; done < n; ) {
    const k = Math.min(batch, n - done);
    const ps: Promise<unknown>[] = new Array(k);
    for (let i = 0; i < k; i++) {
      const e = event(done + i);
      ps[i] = log.append(e.type, e.payload);
    }
    await Promise.all(ps);
    done += k;
  }
  return (performance.now() - t0) / 1000;
}

const rss: number[] = [];
const sampleRss = () => rss.push(process.memoryUsage().rss);
const timer = setInterval(sampleRss, 50);

try {
  await initDataDir(dir, { origin: 'bench.custos.local/log' });
  let { dir: dd, log } = await openLog(dir);
  say(`# Custos log benchmark`);
  say('');
  say(`Machine: ${machine}`);
  say(`Date: ${new Date().toISOString()}`);
  say(`Entries: generic AUDIT_EVENT (resource, practitioner, 64-hex content hash), about ${Buffer.byteLength(JSON.stringify(event(123456)))} bytes of JSON each.`);
  say('SQLite: WAL, synchronous=FULL (every acknowledged batch is fsynced).');
  say('');

  // 1. Single durable appends (one transaction + fsync + signature each).
  const singles = 500;
  let t0 = performance.now();
  for (let i = 0; i < singles; i++) {
    const e = event(i);
    await log.append(e.type, e.payload);
  }
  const singleRate = singles / ((performance.now() - t0) / 1000);

  // 2. Append cost as the log grows: time a window of WINDOW appends at each size.
  const sizes = [10_000, 100_000, 1_000_000].filter((s) => s <= MAX);
  const costAt: { size: number; usPerAppend: number; rate: number }[] = [];
  for (const target of sizes) {
    const fill = target - log.size;
    if (fill > 0) await appendMany(log, fill, BATCH);
    const secs = await appendMany(log, WINDOW, BATCH);
    costAt.push({ size: target, usPerAppend: (secs / WINDOW) * 1e6, rate: WINDOW / secs });
  }
  const batchedRate = costAt.length > 0 ? Math.max(...costAt.map((c) => c.rate)) : 0;
  const otherBatches: { batch: number; rate: number }[] = [];
  for (const b of [100, 10_000]) otherBatches.push({ batch: b, rate: WINDOW / (await appendMany(log, WINDOW, b)) });

  await log.close();
  await dd.store.close();
  const size = (await (async () => {
    const d = await openDataDir(dir);
    const s = await d.store.stats();
    await d.store.close();
    return s;
  })());

  // 3. Proofs at the final size, random indices, from a fresh process state (cold frontier).
  const d2 = await openDataDir(dir);
  const reader = new LogReader(d2.store);
  const n = (await d2.store.latestCheckpoint())!.treeSize;
  const P = 20_000;
  for (let i = 0; i < 1000; i++) await reader.inclusionProof(Math.floor(Math.random() * n));
  t0 = performance.now();
  for (let i = 0; i < P; i++) await reader.inclusionProof(Math.floor(Math.random() * n));
  const inclusionUs = ((performance.now() - t0) / P) * 1000;
  t0 = performance.now();
  for (let i = 0; i < P; i++) {
    const m = 1 + Math.floor(Math.random() * (n - 1));
    await reader.consistencyProof(m, n);
  }
  const consistencyUs = ((performance.now() - t0) / P) * 1000;

  // 4. Full verification.
  t0 = performance.now();
  const report = await verifyLog({ store: d2.store, verifiers: [d2.verifier], origin: d2.origin });
  const verifySecs = (performance.now() - t0) / 1000;
  await d2.store.close();
  clearInterval(timer);
  sampleRss();
  const peakRss = Math.max(...rss, process.resourceUsage().maxRSS * 1024);

  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  say('| measure | result | target |');
  say('| --- | --- | --- |');
  say(`| durable appends/s, group commit (${fmt(BATCH)} concurrent appends per batch) | ${fmt(batchedRate)} | ≥ 100,000 |`);
  for (const o of otherBatches) say(`| durable appends/s, ${fmt(o.batch)} concurrent appends per batch | ${fmt(o.rate)} | |`);
  say(`| durable appends/s, one append per transaction | ${fmt(singleRate)} | (fsync-bound) |`);
  for (const c of costAt) say(`| append cost at ${fmt(c.size)} entries | ${c.usPerAppend.toFixed(2)} µs (${fmt(c.rate)}/s) | flat |`);
  if (costAt.length >= 2) {
    const ratio = costAt[costAt.length - 1]!.usPerAppend / costAt[0]!.usPerAppend;
    say(`| append cost ratio ${fmt(costAt[costAt.length - 1]!.size)} / ${fmt(costAt[0]!.size)} | ${ratio.toFixed(2)}x | ≤ 1.25x |`);
  }
  say(`| inclusion proof at ${fmt(n)} entries (random leaf, verified before return) | ${inclusionUs.toFixed(1)} µs | < 100 µs |`);
  say(`| consistency proof at ${fmt(n)} entries (random old size, verified before return) | ${consistencyUs.toFixed(1)} µs | < 100 µs |`);
  say(`| full verification (${report.ok ? 'ok' : 'FAILED'}, ${fmt(report.entries)} entries, ${fmt(report.checkpointsChecked)} signatures) | ${fmt(report.entries / verifySecs)} entries/s | ≥ 500,000 |`);
  say(`| database bytes per entry | ${fmt(size.bytesOnDisk / size.treeSize)} B (${(size.bytesOnDisk / 2 ** 20).toFixed(0)} MiB for ${fmt(size.treeSize)}) | |`);
  say(`| peak RSS | ${(peakRss / 2 ** 20).toFixed(0)} MB | < 200 MB |`);
  say('');
  if (!report.ok) process.exitCode = 1;
  if (MAX >= 1_000_000) writeFileSync(new URL('./RESULTS.md', import.meta.url), `${lines.join('\n')}\n`);
  else console.log(`(BENCH_SIZE=${MAX} < 1000000: bench/RESULTS.md not written)`);
} finally {
  clearInterval(timer);
  rmSync(dir, { recursive: true, force: true });
}
