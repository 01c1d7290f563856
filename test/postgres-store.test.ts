/**
 * The PostgreSQL backend against a real server: migrations, a log crossing bundle and level-1 tile
 * boundaries (checked byte for byte against the SQLite backend), proofs, listings, concurrent
 * writers on two connections, the off-ledger sidecar through the governance overlay, snapshot
 * isolation, and the append conflict check.
 *
 * Runs only when PG_URL names a PostgreSQL server whose user may create databases, e.g.
 *   scripts/pg-cluster.sh start /tmp/pgdev 54331
 *   PG_URL=postgres://postgres@127.0.0.1:54331/postgres node --import tsx --test test/postgres-store.test.ts
 * Each test works in a database of its own, created and dropped around it.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStore } from '../src/store/postgres/index.js';
import { PostgresDriver } from '../src/store/postgres/postgres-driver.js';
import { SqliteStore } from '../src/store/sqlite/index.js';
import type { AppendBatch, LogStore, StoredCheckpoint } from '../src/store/store.js';
import { Log } from '../src/log/log.js';
import { LogReader } from '../src/log/reader.js';
import { ManualClock } from '../src/log/clock.js';
import { verifyLog } from '../src/log/verify-log.js';
import { formatSignerKey, parseSignerKey, parseVerifierKey, verifierKeyFromSignerKey, type NoteSigner, type NoteVerifier } from '../src/core/note.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { verifyConsistency } from '../src/core/merkle/consistency.js';
import { encodeLeaf, sha256, toHex } from '../src/core/hash.js';
import { ConflictError, type CustosError, StoreError } from '../src/core/errors.js';
import { Governance, type Actor } from '../src/service/governance.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { rebuildReceipt } from '../src/service/receipt.js';

const PG_URL = process.env['PG_URL'];
const ORIGIN = 't.log';
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
// The append lock key of PostgresStore ("CustosAp"), to hold the lock from outside in one test.
const APPEND_LOCK_KEY = '4860918316739543408';

// ---- fixtures -------------------------------------------------------------------------------

function newKeys(): { signer: NoteSigner; verifier: NoteVerifier } {
  const skey = formatSignerKey(ORIGIN, randomBytes(32));
  return { signer: parseSignerKey(skey), verifier: parseVerifierKey(verifierKeyFromSignerKey(skey)) };
}

async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, params?: unknown[]): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

const opened: { close(): Promise<void> }[] = [];
let dbName: string | undefined;

/** A fresh empty database for the current test; dropped after it. */
async function freshDb(): Promise<string> {
  const name = `custos_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(PG_URL!, `CREATE DATABASE ${name}`);
  dbName = name;
  const u = new URL(PG_URL!);
  u.pathname = `/${name}`;
  return u.toString();
}

async function connect(url: string, options?: Parameters<typeof PostgresStore.connect>[1]): Promise<PostgresStore> {
  const s = await PostgresStore.connect(url, options);
  opened.push(s);
  return s;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

function assertCode(err: unknown, cls: abstract new (...args: never[]) => CustosError, code: string): void {
  assert.ok(err instanceof cls, `expected a ${cls.name}, got ${String(err)}`);
  assert.equal((err as CustosError).code, code);
}

/** Appends `n` events concurrently (so the log groups them into batches) and returns their indices. */
async function appendMany(log: Log, n: number, tag: string): Promise<number[]> {
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => log.append('AUDIT_EVENT', { tag, i, pad: 'x'.repeat(i % 37) })));
  return rs.map((r) => r.index);
}

async function collect<T>(pages: AsyncIterable<readonly T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const page of pages) out.push(...page);
  return out;
}

async function checkpointsOf(store: LogStore): Promise<StoredCheckpoint[]> {
  return collect(store.checkpointPages());
}

// ---- suite ----------------------------------------------------------------------------------

describe('PostgresStore', PG_URL ? {} : { skip: 'PG_URL not set: PostgreSQL suite skipped' }, () => {
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
    if (dbName) {
      const name = dbName;
      dbName = undefined;
      await adminQuery(PG_URL!, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
  after(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  });

  it('applies migrations at connect: once, idempotently, and from concurrent connects', async () => {
    const url = await freshDb();
    // Three stores connecting at once to an empty database: the advisory lock serializes them.
    const stores = await Promise.all([connect(url), connect(url), connect(url)]);
    for (const s of stores) assert.equal(s.backend, 'postgres');
    const again = await connect(url);
    assert.equal(await again.treeSize(), 0);
    const rows = await adminQuery<{ version: number }>(url, 'SELECT version FROM custos_schema');
    assert.deepEqual(rows, [{ version: 1 }]);
    const tables = await adminQuery<{ t: string }>(url, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    assert.deepEqual(
      tables.map((r) => r.t),
      ['checkpoints', 'commitments', 'custos_schema', 'documents', 'entry_bundles', 'entry_tail', 'meta', 'node_tail', 'state', 'tiles'],
    );
    const idx = await adminQuery<{ indexdef: string }>(url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'commitments_by_value'");
    assert.ok(idx[0] && !/UNIQUE/i.test(idx[0].indexdef), 'commitments (kind, value) index exists and is not unique');

    // A database written by a newer Custos is refused.
    await adminQuery(url, 'UPDATE custos_schema SET version = 99');
    assertCode(await rejection(PostgresStore.connect(url)), StoreError, 'STORE_SCHEMA_UNSUPPORTED');
  });

  it('wraps connection failures in StoreError STORE_FAILURE', async () => {
    const u = new URL(PG_URL!);
    u.pathname = `/custos_test_missing_${randomBytes(4).toString('hex')}`;
    const err = await rejection(PostgresStore.connect(u.toString()));
    assertCode(err, StoreError, 'STORE_FAILURE');
    assert.ok((err as Error).cause !== undefined, 'the driver error is kept as cause');
  });

  it('initMeta writes once and refuses a different value', async () => {
    const store = await connect(await freshDb());
    await store.initMeta({ origin: ORIGIN, format: 'custos-log/1' });
    await store.initMeta({ origin: ORIGIN });
    assert.equal(await store.getMeta('origin'), ORIGIN);
    assert.equal(await store.getMeta('nothing'), undefined);
    assertCode(await rejection(store.initMeta({ origin: 'other.log', extra: 'x' })), ConflictError, 'DATA_DIR_EXISTS');
    assert.equal(await store.getMeta('origin'), ORIGIN);
    assert.equal(await store.getMeta('extra'), undefined, 'a refused initMeta writes nothing');
  });

  it('stores a log across bundle and tile boundaries; it verifies, proves and lists, byte for byte as SQLite', async () => {
    const url = await freshDb();
    const store = await connect(url);
    const { signer, verifier } = newKeys();
    const clock = new ManualClock(T0);
    const log = await Log.open({ store, signer, origin: ORIGIN, clock });
    // The same appends into the SQLite backend, for a byte-for-byte comparison.
    const sqlite = SqliteStore.open(':memory:');
    opened.push(sqlite);
    const sqliteClock = new ManualClock(T0);
    const ref = await Log.open({ store: sqlite, signer, origin: ORIGIN, clock: sqliteClock });

    const sizes = [1, 3, 250, 7, 70_000];
    const batchStart: number[] = [];
    let total = 0;
    for (const [k, n] of sizes.entries()) {
      batchStart.push(total);
      const idx = await appendMany(log, n, `b${k}`);
      assert.deepEqual(
        idx,
        Array.from({ length: n }, (_, i) => total + i),
      );
      await appendMany(ref, n, `b${k}`);
      total += n;
      clock.advance(60_000);
      sqliteClock.advance(60_000);
    }
    assert.equal(total, 70_261);
    assert.equal(await store.treeSize(), total);
    assert.equal(log.size, total);

    const report = await verifyLog({ store, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report.ok, true, JSON.stringify(report.findings.slice(0, 5)));
    assert.equal(report.entries, total);
    assert.equal(report.checkpointSize, total);

    // Same entries, bundles, tiles and signed checkpoints as the SQLite backend.
    const latest = await store.latestCheckpoint();
    assert.equal(latest?.treeSize, total);
    assert.deepEqual(latest, await sqlite.latestCheckpoint());
    assert.deepEqual(await checkpointsOf(store), await checkpointsOf(sqlite));
    const bundles = await collect(store.bundlePages(0, Math.floor(total / 256)));
    assert.equal(bundles.length, Math.floor(total / 256));
    assert.deepEqual(bundles, await collect(sqlite.bundlePages(0, Math.floor(total / 256))));
    for (const b of bundles) {
      assert.equal(b.malformed, false);
      assert.ok(b.tile, `bundle ${b.index} has its fat tile`);
    }
    const entries = await collect(store.entryPages(0, total));
    assert.deepEqual(
      entries.map((e) => e.index),
      Array.from({ length: total }, (_, i) => i),
    );
    const refEntries = await collect(sqlite.entryPages(0, total));
    assert.deepEqual(entries, refEntries);
    for (const e of entries.filter((_, i) => i % 997 === 0 || i >= total - 300)) {
      assert.deepEqual(e.leafHash, encodeLeaf(e.bytes.toString('utf8')).leafHash);
    }
    // Partial ranges, both directions, across the bundle/tail boundary.
    const desc = await collect(store.entryPagesDescending(65_000, total));
    assert.deepEqual(
      desc.map((e) => e.index),
      Array.from({ length: total - 65_000 }, (_, i) => total - 1 - i),
    );
    assert.deepEqual(desc, await collect(sqlite.entryPagesDescending(65_000, total)));
    const mid = await collect(store.entryPages(300, 1000));
    assert.deepEqual(
      mid.map((e) => e.index),
      Array.from({ length: 700 }, (_, i) => 300 + i),
    );
    for (const i of [0, 1, 4, 255, 256, 261, 70_143, 70_144, 70_260]) {
      assert.deepEqual(await store.getEntry(i), await sqlite.getEntry(i), `entry ${i}`);
    }
    assert.equal(await store.getEntry(total), undefined);

    // Nodes: every frontier and proof node agrees with SQLite, from this store and from a cold one.
    const cold = await connect(url);
    for (const size of [1, 4, 254, 257, 261, 65_536, 70_144, total]) {
      for (const i of [0, Math.floor(size / 2), size - 1]) {
        const p = await log.reader.inclusionProof(i, size);
        verifyInclusion(i, size, p.leafHash, p.proof, p.rootHash);
        const pc = await ref.reader.inclusionProof(i, size);
        assert.deepEqual(p.proof, pc.proof);
        assert.deepEqual(p.rootHash, pc.rootHash);
      }
    }
    // Nodes of every level, from level-0 and level-1 tiles and from the node tail, read cold and
    // warm, equal SQLite's; nodes not yet created are absent.
    const ids: { level: number; index: number }[] = [];
    for (let level = 0; level <= 17; level++) {
      const count = Math.floor(total / 2 ** level);
      for (const index of new Set([0, 1, Math.floor(count / 2), count - 2, count - 1, count, count + 1])) if (index >= 0) ids.push({ level, index });
    }
    const expectedNodes = await sqlite.getNodes(ids);
    assert.ok(expectedNodes.size > 50 && expectedNodes.size < ids.length, `${expectedNodes.size} of ${ids.length}`);
    assert.deepEqual(await cold.getNodes(ids), expectedNodes);
    assert.deepEqual(await cold.getNodes(ids), expectedNodes);
    assert.deepEqual(await store.getNodes(ids), expectedNodes);
    const tileRows = await adminQuery<{ id: string }>(url, 'SELECT id::text FROM tiles WHERE id >= $1::bigint', [String(2 ** 40)]);
    assert.deepEqual(
      tileRows.map((r) => r.id),
      [String(2 ** 40)],
      'the level-1 tile 1/0 is one row',
    );
    const coldReader = new LogReader(cold);
    for (const [a, b] of [
      [1, 4],
      [4, 261],
      [261, 70_261],
      [65_536, 70_261],
      [70_144, 70_261],
      [3, 70_261],
    ] as const) {
      const c = await log.reader.consistencyProof(a, b);
      verifyConsistency(a, b, c.proof, c.oldRoot, c.newRoot);
      const c2 = await coldReader.consistencyProof(a, b);
      assert.deepEqual(c2.proof, c.proof);
      assert.deepEqual(c2.newRoot, c.newRoot);
    }
    const inc = await coldReader.inclusionProof(12_345);
    verifyInclusion(12_345, total, inc.leafHash, inc.proof, inc.rootHash);
    assert.equal(inc.checkpoint?.note, latest?.note);

    // Listings: newest first, oldest first, since a time, by type.
    const newest = await log.reader.listEntries({ limit: 5 });
    assert.deepEqual(
      newest.map((e) => e.index),
      [total - 1, total - 2, total - 3, total - 4, total - 5],
    );
    const oldest = await log.reader.listEntries({ limit: 3, oldestFirst: true });
    assert.deepEqual(
      oldest.map((e) => e.index),
      [0, 1, 2],
    );
    // Batch k was appended at T0 + k minutes.
    const since = await log.reader.listEntries({ limit: 1000, oldestFirst: true, sinceMs: T0 + 3 * 60_000 });
    assert.equal(since[0]?.index, batchStart[3]);
    assert.equal(since.length, 1000);
    const sinceDesc = await log.reader.listEntries({ limit: 100_000, sinceMs: T0 + 2 * 60_000 });
    assert.equal(sinceDesc.length, total - batchStart[2]!);
    assert.equal(sinceDesc[sinceDesc.length - 1]?.index, batchStart[2]);
    assert.equal((await log.reader.listEntries({ limit: 10, type: 'NO_SUCH_TYPE' })).length, 0);

    const stats = await store.stats();
    assert.equal(stats.treeSize, total);
    assert.equal(stats.checkpoints, (await checkpointsOf(sqlite)).length);
    assert.ok(stats.bytesOnDisk > 0);
    // A new writer on another connection picks up the frontier and continues the same tree.
    const log2 = await Log.open({ store: cold, signer, origin: ORIGIN, clock });
    const r = await log2.append('AUDIT_EVENT', { after: 'reopen' });
    assert.equal(r.index, total);
    const report2 = await verifyLog({ store: cold, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report2.ok, true, JSON.stringify(report2.findings.slice(0, 5)));
    await log.close();
    await log2.close();
    await ref.close();
  });

  it('two writers on two connections appending concurrently never fork the log', async () => {
    const url = await freshDb();
    const a = await connect(url, { poolSize: 4 });
    const b = await connect(url, { poolSize: 4 });
    const { signer, verifier } = newKeys();
    const logA = await Log.open({ store: a, signer, origin: ORIGIN });
    const logB = await Log.open({ store: b, signer, origin: ORIGIN });
    // Count races lost: back-to-back writers lose them all the time. Each lost race is
    // re-sequenced under the lock, so none is refused, and every append succeeds.
    let conflicts = 0;
    let resequenced = 0;
    for (const s of [a, b]) {
      const append = s.appendBatch.bind(s);
      s.appendBatch = async (batch, resequence) => {
        try {
          await append(
            batch,
            resequence &&
              ((size) => {
                resequenced++;
                return resequence(size);
              }),
          );
        } catch (err) {
          if ((err as CustosError).code === 'LOG_APPEND_CONFLICT') conflicts++;
          throw err;
        }
      };
    }
    // Groups back to back, mostly small (the pattern that starves a writer that loses a race
    // unless the lost race is retried under the lock), some crossing bundle boundaries.
    const per = [10, 10, 1, 10, 40, 10, 256, 3];
    const rounds = 40;
    const indices: number[] = [];
    let expected = 0;
    await Promise.all(
      [logA, logB].map(async (log, w) => {
        for (let r = 0; r < rounds; r++) {
          const n = per[(r + w) % per.length]!;
          expected += n;
          indices.push(...(await appendMany(log, n, `w${w}r${r}`)));
        }
      }),
    );
    assert.ok(resequenced > 0, 'the writers raced');
    assert.equal(conflicts, 0, 'a race lost is re-sequenced under the lock, never refused');
    assert.equal(await a.treeSize(), expected);
    assert.equal(await b.treeSize(), expected);
    assert.deepEqual(
      [...indices].sort((x, y) => x - y),
      Array.from({ length: expected }, (_, i) => i),
    );
    const report = await verifyLog({ store: b, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report.ok, true, JSON.stringify(report.findings.slice(0, 5)));
    assert.equal(report.entries, expected);
    await logA.close();
    await logB.close();
  });

  it('keeps the off-ledger sidecar with the events (governance on PostgreSQL)', async () => {
    const store = await connect(await freshDb());
    const { signer, verifier } = newKeys();
    const clock = new ManualClock(T0);
    const log = await Log.open({ store, signer, origin: ORIGIN, clock });
    const gov = await Governance.open({ log, clock });
    const admin: Actor = { id: 'po-1', role: 'privacy_officer' };
    const derm: Actor = { id: 'user-42', role: 'dermatologist' };
    const subject = 'patient-pseudo-7781';
    const created = await gov.createConsent({ policyId: pid('consent-001'), subject, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, admin);
    clock.advance(1000);
    const inf = await gov.recordInference({
      actor: derm,
      purpose: 'TREAT',
      policyId: pid('consent-001'),
      input: { uri: `s3://bucket/${subject}/image.jpg`, digest: 'a1'.repeat(32) },
      outputs: [{ name: 'report_json', uri: `s3://bucket/${subject}/report.json`, digest: 'b2'.repeat(32) }],
      pipeline: { pipelineName: 'p', pipelineVersion: '1.0.0', parameters: {} },
      model: { modelName: 'm', modelVersion: '0.1.0', weightsHash: 'c3'.repeat(32), framework: 'pytorch' },
    });
    clock.advance(1000);
    const revoked = await gov.revokeConsent(pid('consent-001'), admin);
    assert.equal(revoked.policy.version, 2);

    const doc = await store.getDocument(created.hash);
    assert.ok(doc);
    assert.equal(toHex(sha256(doc.bytes)), created.hash);
    assert.equal(await store.getDocument('00'.repeat(32)), undefined);
    const docs = await collect(store.documentPages());
    assert.ok(docs.length >= 5, `documents stored: ${docs.length}`);
    assert.deepEqual(
      docs.map((d) => d.hash),
      docs.map((d) => d.hash).sort(),
    );
    const opening = await store.findCommitment('subject', subject);
    assert.ok(opening);
    assert.deepEqual(await store.getCommitment(opening.commitment), opening);
    const heads = await store.listState('policy');
    assert.equal(heads.length, 1);
    assert.equal(heads[0]?.key, pid('consent-001'));
    assert.equal(await store.getState('policy', pid('consent-001')), heads[0]?.value);

    const docReport = await verifyDocuments({ store });
    assert.equal(docReport.ok, true, JSON.stringify(docReport.findings));
    const rb = await rebuildReceipt(store, [verifier], ORIGIN, inf.event.index);
    assert.equal(rb.ok, true, JSON.stringify(rb.checks.filter((c) => !c.ok)));
    const report = await verifyLog({ store, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report.ok, true, JSON.stringify(report.findings));

    // Writing the same rows again (documents, openings) changes nothing; state is an upsert.
    const commitmentsBefore = await collect(store.commitmentPages());
    await store.writeSidecar({
      documents: docs.slice(0, 2),
      commitments: commitmentsBefore.slice(0, 1),
      state: [
        { ns: 'test', key: 'k', value: '1' },
        { ns: 'test', key: 'k', value: '2' },
      ],
    });
    assert.deepEqual(await collect(store.documentPages()), docs);
    assert.deepEqual(await collect(store.commitmentPages()), commitmentsBefore);
    assert.equal(await store.getState('test', 'k'), '2');

    // Erasure deletes the openings it lists.
    await store.writeSidecar({ documents: [], commitments: [], state: [], erase: [opening.commitment] });
    assert.equal(await store.getCommitment(opening.commitment), undefined);
    assert.deepEqual(await store.findCommitments('subject', subject), []);
    await log.close();
  });

  it('a read snapshot does not see later appends', async () => {
    const store = await connect(await freshDb());
    const { signer, verifier } = newKeys();
    const log = await Log.open({ store, signer, origin: ORIGIN });
    await appendMany(log, 300, 'before');
    const snap = await store.readSnapshot();
    try {
      // Crossing a bundle boundary repacks the tail rows the snapshot reads.
      await appendMany(log, 300, 'after');
      assert.equal(await store.treeSize(), 600);
      assert.equal(await snap.store.treeSize(), 300);
      assert.equal((await snap.store.latestCheckpoint())?.treeSize, 300);
      const seen = await collect(snap.store.entryPages(0, 600));
      assert.equal(seen.length, 300);
      assert.equal(seen[299]?.index, 299);
      assert.equal((await collect(snap.store.entryPagesDescending(0, 600))).length, 300);
      assert.equal(await snap.store.getEntry(450), undefined);
      const report = await verifyLog({ store: snap.store, verifiers: [verifier], origin: ORIGIN });
      assert.equal(report.ok, true, JSON.stringify(report.findings));
      assert.equal(report.entries, 300);
      // A snapshot is read-only.
      assertCode(await rejection(snap.store.appendBatch({ expectedSize: 300, entries: [], nodes: [], checkpoint: (await snap.store.latestCheckpoint())! })), StoreError, 'STORE_FAILURE');
      assertCode(await rejection(snap.store.initMeta({ a: 'b' })), StoreError, 'STORE_FAILURE');
      assertCode(await rejection(snap.store.writeSidecar({ documents: [], commitments: [], state: [], erase: ['00'.repeat(32)] })), StoreError, 'STORE_FAILURE');
    } finally {
      await snap.release();
      await snap.release(); // idempotent
    }
    const report = await verifyLog({ store, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report.ok, true);
    assert.equal(report.entries, 600);
    await log.close();
  });

  it('refuses a batch sequenced on a stale size (LOG_APPEND_CONFLICT) and writes nothing', async () => {
    const url = await freshDb();
    const store = await connect(url);
    const { signer, verifier } = newKeys();
    const log = await Log.open({ store, signer, origin: ORIGIN });
    await appendMany(log, 10, 'x');
    const before = { size: await store.treeSize(), cps: (await checkpointsOf(store)).length, docs: (await collect(store.documentPages())).length };
    const bytes = Buffer.from('{"stale":true}');
    const batch: AppendBatch = {
      expectedSize: 7,
      entries: [{ index: 7, bytes }],
      nodes: [{ level: 0, index: 7, hash: Buffer.alloc(32, 1) }],
      checkpoint: { treeSize: 8, rootHash: Buffer.alloc(32, 2), note: 'not a note\n', timeMs: T0 },
      sidecar: { documents: [{ hash: 'ab'.repeat(32), kind: 'test', bytes }], commitments: [], state: [{ ns: 'test', key: 'k', value: 'v' }] },
    };
    const err = await rejection(store.appendBatch(batch));
    assertCode(err, ConflictError, 'LOG_APPEND_CONFLICT');
    assert.deepEqual((err as CustosError).details, { expectedSize: 7, actualSize: 10 });
    assert.deepEqual({ size: await store.treeSize(), cps: (await checkpointsOf(store)).length, docs: (await collect(store.documentPages())).length }, before);
    assert.equal(await store.getState('test', 'k'), undefined);
    // The refused store let go of the append lock: another writer that would not wait for it at
    // all (a lock timeout of 1 ms applies only to a wait) gets it.
    const other = await connect(url, { lockTimeoutMs: 1 });
    const otherLog = await Log.open({ store: other, signer, origin: ORIGIN });
    assert.equal((await otherLog.append('AUDIT_EVENT', { from: 'other' })).index, 10);
    // The first writer's log re-sequences after the other writer's append and carries on.
    assert.equal((await log.append('AUDIT_EVENT', { from: 'first' })).index, 11);
    const report = await verifyLog({ store, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    await log.close();
    await otherLog.close();
  });

  it('re-sequences a refused batch under the lock: decisions are made again on the committed log; a batch left empty takes no index and lets go of the lock', async () => {
    const url = await freshDb();
    const a = await connect(url);
    const b = await connect(url);
    const { signer, verifier } = newKeys();
    const logA = await Log.open({ store: a, signer, origin: ORIGIN });
    const logB = await Log.open({ store: b, signer, origin: ORIGIN });
    let resequenced = 0;
    const append = a.appendBatch.bind(a);
    a.appendBatch = (batch, resequence) =>
      append(
        batch,
        resequence &&
          ((size) => {
            resequenced++;
            return resequence(size);
          }),
      );
    // B appends: A's frontier is stale. A's decision is made at index 0, refused under the lock,
    // and made again there at index 3, after A reread the log.
    await appendMany(logB, 3, 'b');
    const seen: number[] = [];
    const r = await logA.appendDecided((ctx) => {
      seen.push(ctx.index);
      return { type: 'AUDIT_EVENT', payload: { decidedAt: ctx.index } };
    });
    assert.deepEqual(seen, [0, 3]);
    assert.equal(r.index, 3);
    assert.equal(resequenced, 1);
    // Stale again; this time the decision made again refuses (as a policy changed meanwhile would):
    // nothing is written, the caller gets the refusal, and the lock is let go at once.
    await appendMany(logB, 2, 'b2');
    let calls = 0;
    const refused = await rejection(
      logA.appendDecided(() => {
        if (++calls > 1) throw new ConflictError('POLICY_CHANGED', 'changed meanwhile');
        return { type: 'AUDIT_EVENT', payload: { n: calls } };
      }),
    );
    assertCode(refused, ConflictError, 'POLICY_CHANGED');
    assert.equal(resequenced, 2);
    assert.equal(await a.treeSize(), 6);
    const eager = await connect(url, { lockTimeoutMs: 1 });
    const logC = await Log.open({ store: eager, signer, origin: ORIGIN });
    assert.equal((await logC.append('AUDIT_EVENT', { from: 'c' })).index, 6);
    const report = await verifyLog({ store: a, verifiers: [verifier], origin: ORIGIN });
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.equal(report.entries, 7);
    await logA.close();
    await logB.close();
    await logC.close();
  });

  it('lists every entry when a writer packs the tail into a bundle between the bundle read and the tail read', async () => {
    const url = await freshDb();
    const reader = await connect(url);
    const writer = await connect(url);
    const { signer } = newKeys();
    const log = await Log.open({ store: writer, signer, origin: ORIGIN });
    await appendMany(log, 250, 'a');
    // The reader's first tail read waits for a batch that completes bundle 0: entries 0..249 leave
    // the tail for the bundle after the reader found no bundle there.
    const tailEntries = PostgresDriver.prototype.tailEntries;
    let armed = true;
    PostgresDriver.prototype.tailEntries = async function (this: PostgresDriver, lo: number, hi: number, descending: boolean) {
      if (armed) {
        armed = false;
        await appendMany(log, 10, 'b');
      }
      return tailEntries.call(this, lo, hi, descending);
    };
    let listed: number[];
    try {
      listed = (await collect(reader.entryPages(0, 250))).map((e) => e.index);
    } finally {
      PostgresDriver.prototype.tailEntries = tailEntries;
    }
    assert.equal(armed, false);
    assert.deepEqual(
      listed,
      Array.from({ length: 250 }, (_, i) => i),
    );
    await log.close();
  });

  it('point reads made together (documents, first openings) are answered each with its own row', async () => {
    const store = await connect(await freshDb());
    const doc = (n: number) => ({ hash: String(n).padStart(64, '0'), kind: `k${n % 2}`, bytes: Buffer.from(`{"n":${n}}`) });
    const opening = (c: string, value: string) => ({ commitment: c.padStart(64, '0'), kind: 'uri', value, salt: Buffer.alloc(16, c.charCodeAt(0)) });
    // Two openings of one value (two writers raced on it): the first by commitment is "the" one.
    await store.writeSidecar({ documents: [doc(1), doc(2), doc(3)], commitments: [opening('b', 'x'), opening('a', 'x'), opening('c', 'y')], state: [] });
    const hashes = [doc(1).hash, doc(9).hash, doc(2).hash, doc(1).hash, doc(3).hash];
    const values = ['x', 'y', 'z', 'x', 'Y'];
    const [docs, firsts] = await Promise.all([Promise.all(hashes.map((h) => store.getDocument(h))), Promise.all(values.map((v) => store.findCommitment('uri', v)))]);
    assert.deepEqual(
      docs.map((d) => d?.bytes.toString()),
      ['{"n":1}', undefined, '{"n":2}', '{"n":1}', '{"n":3}'],
    );
    assert.equal(docs[2]?.kind, 'k0');
    assert.deepEqual(firsts, [opening('a', 'x'), opening('c', 'y'), undefined, opening('a', 'x'), undefined]);
    assert.deepEqual(firsts[0], (await store.findCommitments('uri', 'x'))[0]);
    // A read asked for after a commit sees it.
    await store.writeSidecar({ documents: [doc(9)], commitments: [opening('d', 'z')], state: [] });
    assert.equal((await store.getDocument(doc(9).hash))?.bytes.toString(), '{"n":9}');
    assert.deepEqual(await store.findCommitment('uri', 'z'), opening('d', 'z'));
  });

  it('a writer that cannot get the lock in time gets LOG_LOCKED', async () => {
    const url = await freshDb();
    const store = await connect(url, { lockTimeoutMs: 200 });
    const { signer } = newKeys();
    const log = await Log.open({ store, signer, origin: ORIGIN });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query(`BEGIN; SELECT pg_advisory_xact_lock(${APPEND_LOCK_KEY})`);
      assertCode(await rejection(log.append('AUDIT_EVENT', { locked: true })), ConflictError, 'LOG_LOCKED');
      await holder.query('ROLLBACK');
      assert.equal((await log.append('AUDIT_EVENT', { locked: false })).index, 0);
    } finally {
      await holder.end();
    }
    await log.close();
  });
});
