/**
 * One log, several writers: concurrent appenders (separate connections, separate processes) must
 * never fork the log. A writer that loses the race waits on SQLite's write lock and, when the log
 * grew under it, re-sequences its batch (LOG_APPEND_CONFLICT is handled inside Log).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initDataDir, openDataDir, openLog } from '../src/log/data-dir.js';
import { verifyLog } from '../src/log/verify-log.js';
import { decodeEntry } from '../src/core/entry.js';
import type { LogStore } from '../src/store/store.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const WRITER = join(REPO_ROOT, 'test', 'fixtures', 'group-writer.ts');
const CONTINUOUS_WRITER = join(REPO_ROOT, 'test', 'fixtures', 'crash-writer.ts');
const PER_WRITER = 500;
const GROUP = 10;

let root: string;
let counter = 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'custos-writers-'));
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

async function freshDataDir(): Promise<string> {
  const d = join(root, `log-${counter++}`);
  await initDataDir(d, { origin: 'writers.test/log' });
  return d;
}

interface WriterRun {
  readonly tag: string;
  readonly code: number | null;
  readonly acks: { index: number; seq: number }[];
  readonly done: boolean;
  readonly errors: string[];
  readonly stderr: string;
}

/** A started writer process: resolves `ready` on READY and `finished` on exit. */
function startWriter(dataDir: string, tag: string): { child: ChildProcessWithoutNullStreams; ready: Promise<void>; finished: Promise<WriterRun> } {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dataDir, tag, String(PER_WRITER), String(GROUP)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const acks: { index: number; seq: number }[] = [];
  const errors: string[] = [];
  let done = false;
  let stderr = '';
  let buf = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
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
      else if (line === 'READY') onReady();
      else if (line === 'DONE') done = true;
      else errors.push(line);
    }
  });
  const finished = new Promise<WriterRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      onReady(); // never leave the barrier waiting on a writer that died early
      resolve({ tag, code, acks, done, errors, stderr });
    });
  });
  return { child, ready, finished };
}

/** Runs two writer processes that start appending at the same moment; returns both runs. */
async function runTwoWriters(dataDir: string): Promise<WriterRun[]> {
  const writers = [startWriter(dataDir, 'A'), startWriter(dataDir, 'B')];
  const timeout = setTimeout(() => writers.forEach((w) => w.child.kill('SIGKILL')), 60_000);
  try {
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin.end('GO\n');
    return await Promise.all(writers.map((w) => w.finished));
  } finally {
    clearTimeout(timeout);
  }
}

/** Everything a forked or re-ordered log would break: verification, contiguity, checkpoint coverage, time order. */
async function checkLog(store: LogStore, verifiers: Parameters<typeof verifyLog>[0]['verifiers'], origin: string) {
  const report = await verifyLog({ store, verifiers, origin });
  assert.equal(report.ok, true, JSON.stringify(report.findings.slice(0, 5)));
  const size = await store.treeSize();
  const latest = await store.latestCheckpoint();
  assert.equal(latest?.treeSize, size, 'the latest checkpoint covers the whole log');
  const entries: { index: number; writer: string; seq: number; timeMs: number }[] = [];
  for await (const page of store.entryPages(0, size)) {
    for (const e of page) {
      const d = decodeEntry(e.bytes.toString('utf8'));
      assert.equal(d.index, e.index);
      entries.push({ index: e.index, writer: String(d.payload['writer']), seq: Number(d.payload['seq']), timeMs: Date.parse(d.time) });
    }
  }
  // Contiguous: exactly the indices 0..size-1, in order.
  assert.deepEqual(
    entries.map((e) => e.index),
    Array.from({ length: size }, (_, i) => i),
  );
  // Entry times never decrease with the index, even across writers.
  for (let i = 1; i < entries.length; i++) {
    assert.ok(entries[i]!.timeMs >= entries[i - 1]!.timeMs, `entry ${i} is older than entry ${i - 1}`);
  }
  return { size, entries };
}

describe('one writer per log: concurrent writers never fork it', () => {
  it('a stale in-process writer re-sequences after LOG_APPEND_CONFLICT', async () => {
    const d = await freshDataDir();
    const a = await openLog(d);
    const b = await openLog(d);
    try {
      // Both writers loaded the empty log; A commits first, so B's first batch conflicts.
      const ra = await Promise.all(Array.from({ length: 5 }, (_, i) => a.log.append('WRITER_TEST', { writer: 'A', seq: i })));
      const rb = await Promise.all(Array.from({ length: 5 }, (_, i) => b.log.append('WRITER_TEST', { writer: 'B', seq: i })));
      assert.deepEqual(
        ra.map((r) => r.index),
        [0, 1, 2, 3, 4],
      );
      assert.deepEqual(
        rb.map((r) => r.index),
        [5, 6, 7, 8, 9],
      );
      // And back: A is stale now.
      const ra2 = await Promise.all([a.log.append('WRITER_TEST', { writer: 'A', seq: 5 }), a.log.append('WRITER_TEST', { writer: 'A', seq: 6 })]);
      assert.deepEqual(
        ra2.map((r) => r.index),
        [10, 11],
      );
      // Interleaved concurrent batches from both, many rounds.
      for (let round = 0; round < 20; round++) {
        await Promise.all([
          ...Array.from({ length: 3 }, (_, i) => a.log.append('WRITER_TEST', { writer: 'A', seq: 7 + round * 3 + i })),
          ...Array.from({ length: 3 }, (_, i) => b.log.append('WRITER_TEST', { writer: 'B', seq: 5 + round * 3 + i })),
        ]);
      }
      await a.log.close();
      await b.log.close();
      const { size, entries } = await checkLog(a.dir.store, [a.dir.verifier], a.dir.origin);
      assert.equal(size, 12 + 20 * 6);
      for (const w of ['A', 'B']) {
        const seqs = entries.filter((e) => e.writer === w).map((e) => e.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: seqs.length }, (_, i) => i),
          `writer ${w}'s appends are stored once each, in order`,
        );
      }
    } finally {
      await a.dir.store.close();
      await b.dir.store.close();
    }
  });

  for (const round of [1, 2]) {
    it(`two writer processes appending ${PER_WRITER} entries each in groups of ${GROUP} (round ${round}: ${round === 1 ? 'empty' : 'non-empty'} log)`, { timeout: 90_000 }, async (t) => {
      const d = await freshDataDir();
      let base = 0;
      if (round === 2) {
        // Start from a log that already has entries, so writers load a non-trivial frontier.
        const { dir, log } = await openLog(d);
        await Promise.all(Array.from({ length: 37 }, (_, i) => log.append('WRITER_TEST', { writer: 'P', seq: i })));
        await log.close();
        await dir.store.close();
        base = 37;
      }

      const runs = await runTwoWriters(d);
      for (const r of runs) {
        assert.deepEqual(r.errors, [], `writer ${r.tag} failed: ${r.errors.join(', ')}\n${r.stderr}`);
        assert.equal(r.code, 0, `writer ${r.tag} exited ${r.code}\n${r.stderr}`);
        assert.equal(r.done, true);
        assert.equal(r.acks.length, PER_WRITER, `writer ${r.tag}: every append succeeded`);
      }

      const dir = await openDataDir(d);
      try {
        const { size, entries } = await checkLog(dir.store, [dir.verifier], dir.origin);
        assert.equal(size, base + 2 * PER_WRITER, 'total count equals the sum of both writers');

        const acked = new Map<number, string>();
        for (const r of runs) {
          for (const a of r.acks) {
            assert.ok(!acked.has(a.index), `index ${a.index} acknowledged to both writers`);
            acked.set(a.index, `${r.tag}:${a.seq}`);
          }
        }
        assert.equal(acked.size, 2 * PER_WRITER);
        for (const e of entries.slice(base)) {
          assert.equal(acked.get(e.index), `${e.writer}:${e.seq}`, `entry ${e.index} is what was acknowledged`);
        }
        // Each writer's appends are stored once each and in the order they were made.
        for (const w of ['A', 'B']) {
          const seqs = entries.filter((e) => e.writer === w).map((e) => e.seq);
          assert.deepEqual(
            seqs,
            Array.from({ length: PER_WRITER }, (_, i) => i),
          );
        }
        let switches = 0;
        for (let i = base + 1; i < entries.length; i++) if (entries[i]!.writer !== entries[i - 1]!.writer) switches++;
        const stats = await dir.store.stats();
        t.diagnostic(`${size} entries, ${stats.checkpoints} checkpoints, ${switches} writer switches`);
      } finally {
        await dir.store.close();
      }
    });
  }
  it('a reader verifying the log while a writer process appends sees a consistent log', { timeout: 60_000 }, async () => {
    const d = await freshDataDir();
    // The crash test's writer: appends continuously until killed.
    const child = spawn(process.execPath, ['--import', 'tsx', CONTINUOUS_WRITER, d], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    const closed = once(child, 'close');
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        const onData = (c: string) => {
          out += c;
          if (out.includes('ACK ')) {
            child.stdout.off('data', onData);
            resolve();
          }
        };
        child.stdout.on('data', onData);
        child.once('close', () => reject(new Error(`writer exited early:\n${stderr}`)));
      });
      // Keep draining stdout, or the writer would block on a full pipe and stop appending.
      child.stdout.resume();
      const dir = await openDataDir(d, { readonly: true });
      try {
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 50));
          const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
          assert.ok(report.entries > 0);
          assert.equal(report.ok, true, `verification ${i} of a live log (${report.entries} entries): ${JSON.stringify(report.findings.slice(0, 3).map((f) => [f.kind, f.index, f.treeSize]))}`);
        }
      } finally {
        await dir.store.close();
      }
    } finally {
      child.kill('SIGKILL');
      await closed;
    }
  });
});
