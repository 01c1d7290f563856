/**
 * Tamper tests on the real SQLite file: every defect is made with a separate better-sqlite3
 * connection, exactly as an attacker (or a broken disk) with write access to custos.db would,
 * and `verifyLog` must name it with the right finding and the right first bad entry index.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { DB_FILE, initDataDir, openDataDir, openLog } from '../src/log/data-dir.js';
import { verifyLog, type FindingKind, type VerifyReport } from '../src/log/verify-log.js';
import { LogReader } from '../src/log/reader.js';
import { nodeSeq } from '../src/core/merkle/node-id.js';
import { Frontier } from '../src/core/merkle/tree.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { hashLeaf } from '../src/core/hash.js';
import { formatCheckpointBody, openCheckpoint } from '../src/core/checkpoint.js';
import { formatSignerKey, parseSignerKey, signNote } from '../src/core/note.js';
import { hasCode } from '../src/core/errors.js';
import { run } from '../src/cli/main.js';

/**
 * Batch sizes of the fixture log: single appends commit alone, `Promise.all` groups of 5 commit
 * together (group commit), so every batch end is a signed checkpoint.
 */
const BATCHES = [1, 1, 5, 5, 1, 5, 5, 1, 5, 5, 1, 5] as const;
const TOTAL = BATCHES.reduce((a, b) => a + b, 0);
const CHECKPOINT_SIZES = BATCHES.reduce<number[]>((acc, b) => [...acc, (acc.at(-1) ?? 0) + b], []);

let root: string;
let counter = 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'custos-tamper-'));
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Creates a fresh data dir holding the fixture log, closed. Returns its directory. */
async function buildLog(): Promise<string> {
  const dataDir = join(root, `log-${counter++}`);
  await initDataDir(dataDir, { origin: 'tamper.test/log' });
  const { dir, log } = await openLog(dataDir);
  try {
    let next = 0;
    for (const size of BATCHES) {
      const results = await Promise.all(
        Array.from({ length: size }, () => {
          const i = next++;
          return log.append('AUDIT_EVENT', { note: `entry-${i}`, resource: `res-${i}`, pad: 'x'.repeat(16 + (i % 7)) });
        }),
      );
      assert.deepEqual(
        results.map((r) => r.index),
        Array.from({ length: size }, (_, k) => next - size + k),
      );
    }
    await log.close();
  } finally {
    await dir.store.close();
  }
  // The fixture really has one checkpoint per batch (the tamper cases below rely on it).
  withDb(dataDir, (db) => {
    const sizes = db.prepare('SELECT tree_size FROM checkpoints ORDER BY tree_size').pluck().all();
    assert.deepEqual(sizes, CHECKPOINT_SIZES);
    assert.equal(db.prepare('SELECT COUNT(*) FROM entries').pluck().get(), TOTAL);
  });
  return dataDir;
}

/** Runs `fn` on a separate, raw connection to the log's SQLite file. */
function withDb<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(join(dataDir, DB_FILE), { fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

interface EntryRow {
  idx: number;
  data: Buffer;
  leaf_hash: Buffer;
  type: string;
  time_ms: number;
}

function getRow(db: Database.Database, idx: number): EntryRow {
  const r = db.prepare('SELECT idx, data, leaf_hash, type, time_ms FROM entries WHERE idx = ?').get(idx) as EntryRow | undefined;
  assert.ok(r, `fixture lacks entry ${idx}`);
  return r;
}

function setData(db: Database.Database, idx: number, data: Buffer): void {
  assert.equal(db.prepare('UPDATE entries SET data = ? WHERE idx = ?').run(data, idx).changes, 1);
}

/** Reopens the data dir and verifies it against the key recorded at init. */
async function verify(dataDir: string): Promise<VerifyReport> {
  const dir = await openDataDir(dataDir);
  try {
    return await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
  } finally {
    await dir.store.close();
  }
}

function kinds(report: VerifyReport): FindingKind[] {
  return report.findings.map((f) => f.kind);
}

function describeReport(report: VerifyReport): string {
  return JSON.stringify({ firstBadIndex: report.firstBadIndex, findings: report.findings.map((f) => [f.kind, f.index, f.treeSize]) });
}

function findingOf(report: VerifyReport, kind: FindingKind) {
  const f = report.findings.find((x) => x.kind === kind);
  assert.ok(f, `expected a ${kind} finding, got ${describeReport(report)}`);
  return f;
}

/** Flips one byte inside the payload (keeps the entry well-formed JSON for its index). */
function editedPayload(data: Buffer, i: number): Buffer {
  const copy = Buffer.from(data);
  const at = copy.indexOf(`entry-${i}`);
  assert.ok(at > 0);
  copy[at] = 'E'.charCodeAt(0);
  return copy;
}

describe('tamper detection on the SQLite file', () => {
  it('a clean log verifies', async () => {
    const d = await buildLog();
    const report = await verify(d);
    assert.equal(report.ok, true, describeReport(report));
    assert.equal(report.firstBadIndex, undefined);
    assert.deepEqual(report.findings, []);
    assert.equal(report.entries, TOTAL);
    assert.equal(report.checkpointSize, TOTAL);
    assert.equal(report.checkpointsChecked, CHECKPOINT_SIZES.length);
    assert.ok(report.rootHex && /^[0-9a-f]{64}$/.test(report.rootHex));
  });

  describe('(a) edited entry', () => {
    it('a changed byte of entries.data at 17 is found at 17', async () => {
      const d = await buildLog();
      withDb(d, (db) => setData(db, 17, editedPayload(getRow(db, 17).data, 17)));
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(findingOf(report, 'LEAF_HASH_MISMATCH').index, 17);
      assert.equal(report.firstBadIndex, 17, describeReport(report));
    });
  });

  describe('(b) deleted entry', () => {
    it('DELETE of entry 17 is ENTRY_MISSING at 17', async () => {
      const d = await buildLog();
      withDb(d, (db) => assert.equal(db.prepare('DELETE FROM entries WHERE idx = 17').run().changes, 1));
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, 17, describeReport(report));
      assert.equal(findingOf(report, 'ENTRY_MISSING').index, 17);
      assert.equal(report.findings[0]?.kind, 'ENTRY_MISSING');
    });
  });

  describe('(c) swapped entries', () => {
    it('rows 12 and 20 swapped (data and leaf hash) are ENTRY_INDEX_MISMATCH at 12', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        const a = getRow(db, 12);
        const b = getRow(db, 20);
        const upd = db.prepare('UPDATE entries SET data = ?, leaf_hash = ?, type = ?, time_ms = ? WHERE idx = ?');
        db.transaction(() => {
          upd.run(b.data, b.leaf_hash, b.type, b.time_ms, 12);
          upd.run(a.data, a.leaf_hash, a.type, a.time_ms, 20);
        })();
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, 12, describeReport(report));
      const mismatches = report.findings.filter((f) => f.kind === 'ENTRY_INDEX_MISMATCH').map((f) => f.index);
      assert.deepEqual(mismatches, [12, 20]);
      // Each row's leaf hash matches its (moved) bytes: only the position is wrong.
      assert.ok(!kinds(report).includes('LEAF_HASH_MISMATCH'), describeReport(report));
    });
  });

  describe('(d) truncation', () => {
    it('entry 17 cut to half its length (torn write) is found at 17', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        const data = getRow(db, 17).data;
        setData(db, 17, Buffer.from(data.subarray(0, Math.floor(data.length / 2))));
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(findingOf(report, 'ENTRY_INDEX_MISMATCH').index, 17);
      assert.equal(findingOf(report, 'LEAF_HASH_MISMATCH').index, 17);
      assert.equal(report.firstBadIndex, 17, describeReport(report));
    });

    it('the last 3 entries deleted is CHECKPOINT_BEYOND_LOG at the first missing index', async () => {
      const d = await buildLog();
      withDb(d, (db) => assert.equal(db.prepare('DELETE FROM entries WHERE idx >= ?').run(TOTAL - 3).changes, 3));
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, TOTAL - 3, describeReport(report));
      const f = findingOf(report, 'CHECKPOINT_BEYOND_LOG');
      assert.equal(f.index, TOTAL - 3);
      assert.equal(f.treeSize, TOTAL);
      assert.deepEqual(kinds(report), ['CHECKPOINT_BEYOND_LOG']);
    });
  });

  describe('(e) edited stored hashes', () => {
    it('a changed leaf_hash of 17 is LEAF_HASH_MISMATCH at 17', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        const h = Buffer.from(getRow(db, 17).leaf_hash);
        h[0]! ^= 0xff;
        assert.equal(db.prepare('UPDATE entries SET leaf_hash = ? WHERE idx = 17').run(h).changes, 1);
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, 17, describeReport(report));
      assert.deepEqual(kinds(report), ['LEAF_HASH_MISMATCH']);
      assert.equal(report.findings[0]?.index, 17);
    });

    it('a changed interior node (level 2, index 4) is NODE_HASH_MISMATCH at its first leaf 16', async () => {
      const d = await buildLog();
      const seq = nodeSeq(2, 4);
      withDb(d, (db) => {
        const h = db.prepare('SELECT hash FROM nodes WHERE seq = ?').pluck().get(seq) as Buffer | undefined;
        assert.ok(h, `fixture lacks node ${seq}`);
        const forged = Buffer.from(h);
        forged[31]! ^= 0x01;
        assert.equal(db.prepare('UPDATE nodes SET hash = ? WHERE seq = ?').run(forged, seq).changes, 1);
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, 16, describeReport(report));
      assert.deepEqual(kinds(report), ['NODE_HASH_MISMATCH']);
      assert.equal(report.findings[0]?.index, 16);
    });

    it('a deleted interior node (level 2, index 4) is NODE_MISSING at 16', async () => {
      const d = await buildLog();
      withDb(d, (db) => assert.equal(db.prepare('DELETE FROM nodes WHERE seq = ?').run(nodeSeq(2, 4)).changes, 1));
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, 16, describeReport(report));
      assert.deepEqual(kinds(report), ['NODE_MISSING']);
    });
  });

  describe('(f) forged checkpoints', () => {
    it('a changed root column of the latest checkpoint is CHECKPOINT_MISMATCH', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        const r = db.prepare('SELECT root FROM checkpoints WHERE tree_size = ?').pluck().get(TOTAL) as Buffer;
        const forged = Buffer.from(r);
        forged[0]! ^= 0xff;
        assert.equal(db.prepare('UPDATE checkpoints SET root = ? WHERE tree_size = ?').run(forged, TOTAL).changes, 1);
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.deepEqual(kinds(report), ['CHECKPOINT_MISMATCH'], describeReport(report));
      assert.equal(report.findings[0]?.treeSize, TOTAL);
    });

    it('a latest checkpoint re-signed with another key is CHECKPOINT_INVALID', async () => {
      const d = await buildLog();
      const forgedRoot = randomBytes(32);
      withDb(d, (db) => {
        const origin = db.prepare("SELECT value FROM meta WHERE key = 'origin'").pluck().get() as string;
        // Same name as the real key (the origin), different key: the verifier must not trust it.
        const attacker = parseSignerKey(formatSignerKey(origin, randomBytes(32)));
        const note = signNote(formatCheckpointBody({ origin, treeSize: TOTAL, rootHash: forgedRoot }), [attacker]);
        const changes = db.prepare('UPDATE checkpoints SET root = ?, note = ? WHERE tree_size = ?').run(forgedRoot, note, TOTAL).changes;
        assert.equal(changes, 1);
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.deepEqual(kinds(report), ['CHECKPOINT_INVALID'], describeReport(report));
      const f = report.findings[0]!;
      assert.equal(f.treeSize, TOTAL);
      // It names the entries since the last checkpoint that did verify.
      assert.equal(f.index, CHECKPOINT_SIZES.at(-2), describeReport(report));
    });

    it('a latest checkpoint whose body was edited under the genuine signature is CHECKPOINT_INVALID', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        const note = db.prepare('SELECT note FROM checkpoints WHERE tree_size = ?').pluck().get(TOTAL) as string;
        const [origin, , , ...rest] = note.split('\n');
        const forged = [origin, String(TOTAL), randomBytes(32).toString('base64'), ...rest].join('\n');
        assert.notEqual(forged, note);
        assert.equal(db.prepare('UPDATE checkpoints SET note = ? WHERE tree_size = ?').run(forged, TOTAL).changes, 1);
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.deepEqual(kinds(report), ['CHECKPOINT_INVALID'], describeReport(report));
      assert.equal(report.findings[0]?.treeSize, TOTAL);
    });
  });

  describe('(g) consistent rewrite without the signing key', () => {
    it('entry 17 edited with its leaf hash and every stored node recomputed is CHECKPOINT_ROOT_MISMATCH covering 17', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        db.transaction(() => {
          const row = getRow(db, 17);
          const data = editedPayload(row.data, 17);
          db.prepare('UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 17').run(data, hashLeaf(data));
          const leaves = db.prepare('SELECT leaf_hash FROM entries ORDER BY idx').pluck().all() as Buffer[];
          const f = Frontier.empty();
          const upd = db.prepare('UPDATE nodes SET hash = ? WHERE seq = ?');
          let rewritten = 0;
          for (const leaf of leaves) {
            const created = f.append(leaf);
            for (const n of created.slice(1)) {
              assert.equal(upd.run(n.hash, n.seq).changes, 1);
              rewritten++;
            }
          }
          assert.ok(rewritten > 0);
        })();
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      // Nothing but the signed root can tell: leaf and node hashes are all self-consistent.
      assert.deepEqual(kinds(report), ['CHECKPOINT_ROOT_MISMATCH'], describeReport(report));
      const f = report.findings[0]!;
      assert.ok(f.treeSize !== undefined);
      assert.ok(f.index <= 17 && 17 < f.treeSize, describeReport(report));
      assert.ok(report.firstBadIndex !== undefined && report.firstBadIndex <= 17);
    });
  });

  describe('entries added without the key', () => {
    it('an entry inserted after the latest checkpoint is ENTRY_NOT_COVERED', async () => {
      const d = await buildLog();
      withDb(d, (db) => {
        const last = getRow(db, TOTAL - 1);
        const text = last.data.toString('utf8').replace(`{"index":${TOTAL - 1},`, `{"index":${TOTAL},`);
        const data = Buffer.from(text, 'utf8');
        db.prepare('INSERT INTO entries(idx, data, leaf_hash, type, time_ms) VALUES (?, ?, ?, ?, ?)').run(TOTAL, data, hashLeaf(data), last.type, last.time_ms);
      });
      const report = await verify(d);
      assert.equal(report.ok, false);
      assert.equal(report.firstBadIndex, TOTAL, describeReport(report));
      assert.deepEqual(kinds(report), ['ENTRY_NOT_COVERED']);
    });
  });
});

describe('verify --entry: inclusion proofs against the latest signed checkpoint', () => {
  it('LogReader.inclusionProof of every entry verifies against the signed root', async () => {
    const d = await buildLog();
    const dir = await openDataDir(d, { readonly: true });
    try {
      const latest = await dir.store.latestCheckpoint();
      assert.ok(latest);
      const cp = openCheckpoint(latest.note, [dir.verifier], dir.origin);
      assert.equal(cp.treeSize, TOTAL);
      const reader = new LogReader(dir.store);
      for (let i = 0; i < TOTAL; i++) {
        const p = await reader.inclusionProof(i);
        assert.equal(p.treeSize, cp.treeSize);
        assert.equal(p.checkpoint?.treeSize, cp.treeSize);
        assert.deepEqual(p.rootHash, cp.rootHash);
        const leaf = hashLeaf(p.entry.bytes);
        assert.deepEqual(leaf, p.entry.leafHash);
        verifyInclusion(i, cp.treeSize, leaf, p.proof, cp.rootHash);
      }
      // Against an older signed checkpoint too.
      const older = await dir.store.checkpointAt(18);
      assert.ok(older);
      const oldCp = openCheckpoint(older.note, [dir.verifier], dir.origin);
      const p = await reader.inclusionProof(17, 18);
      verifyInclusion(17, 18, hashLeaf(p.entry.bytes), p.proof, oldCp.rootHash);
    } finally {
      await dir.store.close();
    }
  });

  it('an edited entry has no valid inclusion proof', async () => {
    const d = await buildLog();
    withDb(d, (db) => setData(db, 17, editedPayload(getRow(db, 17).data, 17)));
    const dir = await openDataDir(d, { readonly: true });
    try {
      await assert.rejects(new LogReader(dir.store).inclusionProof(17), (err) => hasCode(err, 'INCLUSION_PROOF_INVALID'));
      // Untouched entries still prove.
      await new LogReader(dir.store).inclusionProof(3);
    } finally {
      await dir.store.close();
    }
  });

  it('`custos verify --entry 17 --json` succeeds on a clean log and fails on a tampered one', async () => {
    const d = await buildLog();
    const ok = await runCli(['--data-dir', d, '--json', 'verify', '--entry', '17']);
    assert.equal(ok.code, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as { verified: boolean; index: number; treeSize: number; proof: string[] };
    assert.equal(out.verified, true);
    assert.equal(out.index, 17);
    assert.equal(out.treeSize, TOTAL);
    assert.ok(out.proof.length > 0);

    withDb(d, (db) => setData(db, 17, editedPayload(getRow(db, 17).data, 17)));
    const bad = await runCli(['--data-dir', d, '--json', 'verify', '--entry', '17']);
    assert.equal(bad.code, 4, bad.stderr); // EXIT.verification
    assert.match(bad.stderr, /INCLUSION_PROOF_INVALID|LOG_VERIFICATION_FAILED/);
  });
});

async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await run(argv, { stdout, stderr }, {});
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
