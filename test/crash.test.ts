/**
 * Crash safety with real processes: a writer (test/fixtures/crash-writer.ts) appends continuously
 * and is SIGKILLed at a random moment, again and again on the same log. After every kill the log
 * must verify, every acknowledged append must be stored (and be the entry that was acknowledged),
 * and no signed checkpoint may cover an entry that is not stored.
 *
 * It runs on every backend (test/helpers/backends.ts). On PostgreSQL the kill drops the writer's
 * connection mid-transaction: the server must roll the batch back and release the append lock, so
 * the next writer (the next iteration) can append and nothing half-written is ever visible.
 *
 * Kill delays come from a seeded generator: set CRASH_SEED to replay a sequence.
 */
import { seededRandom } from '../src/core/random.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initDataDir, openDataDir } from '../src/log/data-dir.js';
import { verifyLog } from '../src/log/verify-log.js';
import { BACKENDS, cleanupBackends, type LogPlace } from './helpers/backends.js';
import pg from 'pg';

// On PostgreSQL a SIGKILLed client's backend may still be finishing the COMMIT it was sent: the
// batch then lands a moment after the writer died (committed, never acknowledged, which is allowed).
// Wait until no other client backend is connected to the log's database, so that what is checked
// below is the final state of that run, not a state the dying backend is still changing.
async function settled(place: LogPlace): Promise<void> {
  if (!place.storeUrl) return;
  const client = new pg.Client({ connectionString: place.storeUrl });
  await client.connect();
  try {
    for (const deadline = Date.now() + 15_000; ; ) {
      const r = await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
      if (Number(r.rows[0]!.n) === 0) return;
      if (Date.now() > deadline) throw new Error("a killed writer's PostgreSQL backend is still connected after 15 s");
      await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    await client.end();
  }
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const WRITER = join(REPO_ROOT, 'test', 'fixtures', 'crash-writer.ts');
const ITERATIONS = 25;
const MIN_DELAY_MS = 50;
const MAX_DELAY_MS = 400;
const SEED = Number(process.env['CRASH_SEED'] ?? 0x5eed);

// A seeded PRNG (src/core/random.ts), so a failing kill schedule can be replayed.
const prng = seededRandom;

/** The payload of stored entry bytes (verifyLog has already checked the bytes against the tree). */
function payloadOf(bytes: Buffer): Record<string, unknown> {
  return (JSON.parse(bytes.toString('utf8')) as { payload: Record<string, unknown> }).payload;
}

interface Ack {
  readonly index: number;
  readonly seq: number;
}

interface KillResult {
  readonly pid: number;
  readonly acks: Ack[];
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/**
 * Starts the writer, waits for its first acknowledgements, lets it run `delayMs` more, SIGKILLs it
 * and returns every ACK it printed (all of stdout is read before 'close').
 */
function runAndKill(place: LogPlace, delayMs: number): Promise<KillResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, place.dataDir, ...(place.storeUrl ? [place.storeUrl] : [])], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks: Ack[] = [];
    let stderr = '';
    let buf = '';
    let killed = false;
    let timer: NodeJS.Timeout | undefined;
    // Never hang the suite on a writer that stalls before its first ACK.
    const watchdog = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`writer produced no ACK within 15 s; stderr:\n${stderr}`));
    }, 15_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ACK (\d+) (\d+)$/.exec(line);
        if (m) acks.push({ index: Number(m[1]), seq: Number(m[2]) });
        else if (line !== 'READY') {
          child.kill('SIGKILL');
          reject(new Error(`unexpected writer output: ${line}`));
        }
      }
      if (acks.length > 0 && timer === undefined) {
        clearTimeout(watchdog);
        timer = setTimeout(() => {
          killed = true;
          child.kill('SIGKILL');
        }, delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      if (timer) clearTimeout(timer);
      // A trailing partial line cannot be an ACK: ACKs are written whole, synchronously.
      if (!killed) {
        reject(new Error(`writer exited on its own (code ${code}, signal ${signal}); stderr:\n${stderr}`));
        return;
      }
      resolve({ pid: child.pid!, acks, signal, stderr });
    });
  });
}

after(cleanupBackends);

for (const backend of BACKENDS) {
  describe(`crash safety on ${backend.title}: SIGKILL during continuous appends`, { skip: backend.skip }, () => {
    let place: LogPlace;

    before(async () => {
      place = await backend.newPlace();
      await initDataDir(place.dataDir, { origin: 'crash.test/log', storeUrl: place.storeUrl });
    });

    it(`keeps every acknowledged append across ${ITERATIONS} kills (seed ${SEED})`, { timeout: 240_000 }, async (t) => {
      const random = prng(SEED);
      const allAcked = new Map<number, { pid: number; seq: number }>();
      let previousSize = 0;
      let verifyMs = 0;
      // Entries committed by a killed writer that never got to print their ACK: evidence that kills
      // land between a commit and its acknowledgement, i.e. in the middle of the append path.
      let committedUnacked = 0;
      for (let it = 0; it < ITERATIONS; it++) {
        const delayMs = MIN_DELAY_MS + Math.floor(random() * (MAX_DELAY_MS - MIN_DELAY_MS + 1));
        const { pid, acks, signal } = await runAndKill(place, delayMs);
        const ctx = `iteration ${it}, delay ${delayMs} ms, seed ${SEED}`;
        assert.equal(signal, 'SIGKILL', ctx);
        assert.ok(acks.length > 0, ctx);
        for (const a of acks) {
          assert.ok(!allAcked.has(a.index), `${ctx}: index ${a.index} acknowledged twice`);
          allAcked.set(a.index, { pid, seq: a.seq });
        }

        await settled(place);
        const dir = await openDataDir(place.dataDir, { storeUrl: place.storeUrl });
        try {
          const started = performance.now();
          const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
          verifyMs += performance.now() - started;
          assert.equal(report.ok, true, `${ctx}: ${JSON.stringify(report.findings.slice(0, 5))}`);
          assert.equal(report.firstBadIndex, undefined);

          const size = await dir.store.treeSize();
          const latest = await dir.store.latestCheckpoint();
          assert.ok(latest, ctx);
          // The checkpoint never covers an entry that is not stored (entries are contiguous: verifyLog
          // reports gaps), and since entries and their checkpoint commit together, it covers them all.
          assert.ok(latest.treeSize <= size, `${ctx}: checkpoint ${latest.treeSize} > stored ${size}`);
          assert.equal(latest.treeSize, size, `${ctx}: entries committed without their checkpoint`);
          assert.equal((await dir.store.stats()).treeSize, size);
          assert.equal(report.entries, size);
          assert.ok(size >= previousSize + acks.length, `${ctx}: the log has fewer entries than were acknowledged`);
          committedUnacked += size - previousSize - acks.length;
          previousSize = size;

          // Every ACK of this run names a stored entry, covered by the latest checkpoint, holding
          // exactly the payload that was acknowledged. Read in pages; getEntry on a sample.
          const bySeq = new Map(acks.map((a) => [a.index, a.seq]));
          const lo = Math.min(...bySeq.keys());
          const hi = Math.max(...bySeq.keys()) + 1;
          assert.ok(hi <= latest.treeSize, `${ctx}: ACKed index ${hi - 1} not covered by checkpoint ${latest.treeSize}`);
          let found = 0;
          for await (const page of dir.store.entryPages(lo, hi)) {
            for (const e of page) {
              const seq = bySeq.get(e.index);
              if (seq === undefined) continue; // committed, but killed before its ACK was printed
              found++;
              const payload = payloadOf(e.bytes);
              assert.equal(payload['pid'], pid, `${ctx}: entry ${e.index} was written by another process`);
              assert.equal(payload['s'], seq, `${ctx}: entry ${e.index} is not the acknowledged append`);
            }
          }
          assert.equal(found, bySeq.size, `${ctx}: ${bySeq.size - found} acknowledged entries are missing`);
          for (const a of acks.filter((_, k) => k % 50 === 0 || k === acks.length - 1)) {
            const e = await dir.store.getEntry(a.index);
            assert.ok(e, `${ctx}: ACKed index ${a.index} is missing`);
            assert.equal(payloadOf(e.bytes)['s'], a.seq);
          }
        } finally {
          await dir.store.close();
        }
      }

      // And all acknowledged entries of all runs are still there at the end.
      const dir = await openDataDir(place.dataDir, { readonly: true, storeUrl: place.storeUrl });
      try {
        const size = await dir.store.treeSize();
        const stats = await dir.store.stats();
        t.diagnostic(
          `${ITERATIONS} kills: ${size} entries, ${stats.checkpoints} checkpoints, ${allAcked.size} acknowledged, ${committedUnacked} committed but not acknowledged; verification took ${Math.round(verifyMs)} ms in all`,
        );
        assert.ok(allAcked.size > ITERATIONS);
        let found = 0;
        for await (const page of dir.store.entryPages(0, size)) {
          for (const e of page) {
            const want = allAcked.get(e.index);
            if (!want) continue;
            found++;
            const payload = payloadOf(e.bytes);
            assert.deepEqual([payload['pid'], payload['s']], [want.pid, want.seq], `entry ${e.index} changed`);
          }
        }
        assert.equal(found, allAcked.size, 'acknowledged entries were lost');
      } finally {
        await dir.store.close();
      }
    });
  });
}
