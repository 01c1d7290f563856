// Profiling helper (not part of npm run bench): N appends through Log.append, BATCH concurrent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initDataDir, openLog } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import Database from 'better-sqlite3';
import { SqliteDriver } from '../src/store/sqlite/sqlite-driver.js';

// Measurement hooks: SYNC overrides the synchronous pragma; time spent in the driver's append.
const SYNC = process.env['SYNC'];
const EXTRA = process.env['PRAGMAS']?.split(';').filter((x) => x) ?? [];
{
  const orig = Database.prototype.pragma;
  Database.prototype.pragma = function (this: Database.Database, src: string, o?: Database.PragmaOptions) {
    if (src.startsWith('journal_mode')) for (const x of EXTRA) orig.call(this, x);
    return orig.call(this, SYNC && src.startsWith('synchronous') ? `synchronous = ${SYNC}` : src, o);
  } as typeof orig;
}
let inAppend = 0;
const calls: number[] = [];
const origAppend = SqliteDriver.prototype.append;
SqliteDriver.prototype.append = function (this: SqliteDriver, b) {
  const t = performance.now();
  const r = origAppend.call(this, b);
  inAppend += performance.now() - t;
  calls.push(performance.now() - t);
  return r;
};

const N = Number(process.env['N'] ?? 300_000);
const BATCH = Number(process.env['BATCH'] ?? 1000);
const HASH_POOL = Array.from({ length: 65_536 }, () => randomBytes(32).toString('hex'));
function event(i: number) {
  return { type: 'AUDIT_EVENT', payload: { resource: `report/rad-${i}`, practitioner: `practitioner/dr-${i % 97}`, contentHash: HASH_POOL[i & 0xffff]! } };
}
async function appendMany(log: Log, n: number, batch: number): Promise<number> {
  const t0 = performance.now();
  for (let done = 0; done < n; ) {
    const k = Math.min(batch, n - done);
    const ps: Promise<unknown>[] = new Array(k);
    for (let i = 0; i < k; i++) {
      const e = event(log.size + i);
      ps[i] = log.append(e.type, e.payload);
    }
    await Promise.all(ps);
    done += k;
  }
  return (performance.now() - t0) / 1000;
}
const dir = mkdtempSync(join(tmpdir(), 'custos-prof-'));
try {
  await initDataDir(dir, { origin: 'bench.custos.local/log' });
  const { dd, log } = await openLog(dir).then((r) => ({ dd: r.dir, log: r.log }));
  await appendMany(log, 20_000, BATCH);
  const rates: number[] = [];
  inAppend = 0;
  const tAll = performance.now();
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < N / 10_000; r++) rates.push(10_000 / (await appendMany(log, 10_000, BATCH)));
  const all = performance.now() - tAll;
  const cpu = process.cpuUsage(cpu0);
  console.log(`cpu ${((cpu.user + cpu.system) / N).toFixed(2)} us/entry (user ${(cpu.user / N).toFixed(2)}, sys ${(cpu.system / N).toFixed(2)}), wall ${((all * 1000) / N).toFixed(2)} us/entry`);
  console.log(`driver append ${((100 * inAppend) / all).toFixed(1)}% of ${all.toFixed(0)} ms`);
  const cs = calls.slice(-N / 1000).sort((a, b) => a - b);
  const q = (x: number) => cs[Math.floor(x * (cs.length - 1))]!.toFixed(2);
  console.log(
    `driver append per batch ms: p10 ${q(0.1)} p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} max ${q(1)}; sum over 8 ms ${cs
      .filter((c) => c > 8)
      .reduce((a, b) => a + b, 0)
      .toFixed(0)} ms`,
  );
  rates.sort((a, b) => a - b);
  console.log(`median ${Math.round(rates[Math.floor(rates.length / 2)]!)}/s  min ${Math.round(rates[0]!)} max ${Math.round(rates[rates.length - 1]!)}`);
  await log.close();
  await dd.store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
