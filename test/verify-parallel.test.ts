/**
 * Parallel verification (worker threads hashing complete tiles) must report exactly what the
 * sequential pass reports: the same findings, same kinds, same first bad index, same counts, on a
 * clean log and on every kind of tampered log, on every backend. The log here has five complete
 * bundles (so the workers have tiles to check) and checkpoints inside tiles, between tiles and in
 * the tail. Each case tampers through a raw connection, then verifies with `workers: 0` and
 * `workers: 2` and compares the whole reports.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initDataDir, openDataDir, openLog } from '../src/log/data-dir.js';
import { verifyLog, type VerifyReport } from '../src/log/verify-log.js';
import { TilePool } from '../src/log/tile-pool.js';
import { checkBundleTile } from '../src/core/merkle/bundle-check.js';
import { Frontier } from '../src/core/merkle/tree.js';
import { hashLeaf } from '../src/core/hash.js';
import { formatCheckpointBody } from '../src/core/checkpoint.js';
import { formatSignerKey, parseSignerKey, signNote } from '../src/core/note.js';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BACKENDS, cleanupBackends, type Backend, type LogPlace, type RawDb } from './helpers/backends.js';

const W = 256;
const HASH = 32;
// Group commits: checkpoints at 1, 2, 7, 107 (inside tile 0), 407, 414 (inside tile 1), 914, 1024
// (a tile boundary), 1300 (in the tail).
const BATCHES = [1, 1, 5, 100, 300, 7, 500, 110, 276];
const TOTAL = BATCHES.reduce((a, b) => a + b, 0);

after(cleanupBackends);

async function buildLog(backend: Backend): Promise<LogPlace> {
  const place = await backend.newPlace();
  await initDataDir(place.dataDir, { origin: 'parallel.test/log', storeUrl: place.storeUrl });
  const { dir, log } = await openLog(place.dataDir, { storeUrl: place.storeUrl });
  try {
    let next = 0;
    for (const size of BATCHES) {
      await Promise.all(
        Array.from({ length: size }, () => {
          const i = next++;
          return log.append('AUDIT_EVENT', { note: `entry-${i}`, resource: `res-${i}`, pad: 'x'.repeat(i % 11) });
        }),
      );
    }
    await log.close();
  } finally {
    await dir.store.close();
  }
  return place;
}

async function verifyBoth(place: LogPlace): Promise<{ seq: VerifyReport; par: VerifyReport }> {
  const dir = await openDataDir(place.dataDir, { storeUrl: place.storeUrl });
  try {
    const opts = { store: dir.store, verifiers: [dir.verifier], origin: dir.origin };
    return { seq: await verifyLog({ ...opts, workers: 0 }), par: await verifyLog({ ...opts, workers: 2 }) };
  } finally {
    await dir.store.close();
  }
}

// ---- raw edits of the tiled layout (see test/tamper.test.ts for the layout) ----------------------

async function bundle(db: RawDb, n: number): Promise<Buffer[]> {
  const row = await db.get<{ data: Buffer }>('SELECT data FROM entry_bundles WHERE idx = ?', n);
  assert.ok(row);
  const out: Buffer[] = [];
  for (let off = 0; off + 2 <= row.data.length; off += 2 + row.data.readUInt16BE(off)) out.push(Buffer.from(row.data.subarray(off + 2, off + 2 + row.data.readUInt16BE(off))));
  return out;
}

async function writeBundle(db: RawDb, n: number, entries: readonly Buffer[], extra = Buffer.alloc(0)): Promise<void> {
  const data = Buffer.concat([...entries.flatMap((e) => [Buffer.from([e.length >> 8, e.length & 0xff]), e]), extra]);
  assert.equal(await db.run('UPDATE entry_bundles SET data = ? WHERE idx = ?', data, n), 1);
}

/** Writes node (level, index): into its complete level-0 tile when there is one, else its tail row. */
async function setNode(db: RawDb, level: number, index: number, hash: Buffer): Promise<void> {
  if (level < 8) {
    const tileIndex = Math.floor(index / (W >> level));
    const row = await db.get<{ hashes: Buffer }>('SELECT hashes FROM tiles WHERE id = ?', tileIndex);
    if (row) {
      const copy = Buffer.from(row.hashes);
      hash.copy(copy, (2 * W - ((2 * W) >> level) + (index - tileIndex * (W >> level))) * HASH);
      assert.equal(await db.run('UPDATE tiles SET hashes = ? WHERE id = ?', copy, tileIndex), 1);
      return;
    }
  }
  await db.run('UPDATE node_tail SET hash = ? WHERE level = ? AND idx = ?', hash, level, index);
}

async function tileRow(db: RawDb, n: number): Promise<Buffer> {
  const row = await db.get<{ hashes: Buffer }>('SELECT hashes FROM tiles WHERE id = ?', n);
  assert.ok(row);
  return Buffer.from(row.hashes);
}

function editPayload(e: Buffer, i: number): Buffer {
  const copy = Buffer.from(e);
  const at = copy.indexOf(`entry-${i}"`);
  assert.ok(at > 0);
  copy[at] = 'E'.charCodeAt(0);
  return copy;
}

const CASES: readonly { name: string; edit?: (db: RawDb) => Promise<void> }[] = [
  { name: 'a clean log' },
  {
    name: 'an edited entry (leaf) in bundle 2',
    edit: async (db) => {
      const b = await bundle(db, 2);
      b[600 - 512] = editPayload(b[600 - 512]!, 600);
      await writeBundle(db, 2, b);
    },
  },
  {
    name: 'an edited stored leaf hash in tile 0/1',
    edit: async (db) => {
      const t = await tileRow(db, 1);
      t[5 * HASH]! ^= 0xff;
      assert.equal(await db.run('UPDATE tiles SET hashes = ? WHERE id = 1', t), 1);
    },
  },
  {
    name: 'an edited interior node (level 3) in tile 0/3',
    edit: async (db) => {
      const t = await tileRow(db, 3);
      t[(2 * W - ((2 * W) >> 3) + 4) * HASH + 7]! ^= 0x01;
      assert.equal(await db.run('UPDATE tiles SET hashes = ? WHERE id = 3', t), 1);
    },
  },
  {
    name: 'an edited upper node (level 9)',
    edit: async (db) => assert.equal(await db.run('UPDATE node_tail SET hash = ? WHERE level = 9 AND idx = 0', Buffer.alloc(HASH, 7)), 1),
  },
  { name: 'a missing tile row (tile 0/1)', edit: async (db) => assert.equal(await db.run('DELETE FROM tiles WHERE id = 1'), 1) },
  {
    name: 'an entry removed from bundle 1',
    edit: async (db) => {
      const b = await bundle(db, 1);
      b.splice(40, 1);
      await writeBundle(db, 1, b);
    },
  },
  { name: 'a missing bundle row (bundle 2)', edit: async (db) => assert.equal(await db.run('DELETE FROM entry_bundles WHERE idx = 2'), 1) },
  { name: 'a missing last bundle row (bundle 4)', edit: async (db) => assert.equal(await db.run('DELETE FROM entry_bundles WHERE idx = 4'), 1) },
  { name: 'bytes after the 256th entry of bundle 3', edit: async (db) => writeBundle(db, 3, await bundle(db, 3), Buffer.from([0, 3, 0x7b, 0x7d, 0x20])) },
  {
    name: 'entries 300 and 301 swapped',
    edit: async (db) => {
      const b = await bundle(db, 1);
      [b[44], b[45]] = [b[45]!, b[44]!];
      await writeBundle(db, 1, b);
    },
  },
  {
    name: 'a consistent rewrite of entry 700 (entry and every node recomputed): checkpoint root mismatch',
    edit: async (db) => {
      const b = await bundle(db, 2);
      b[700 - 512] = editPayload(b[700 - 512]!, 700);
      await writeBundle(db, 2, b);
      const entries: Buffer[] = [];
      for (let n = 0; n < 5; n++) entries.push(...(await bundle(db, n)));
      for (const r of await db.all<{ data: Buffer }>('SELECT data FROM entry_tail ORDER BY idx')) entries.push(r.data);
      const f = Frontier.empty();
      for (const e of entries) for (const c of f.append(hashLeaf(e))) await setNode(db, c.level, c.index, c.hash);
    },
  },
  {
    name: 'a checkpoint inside tile 1 with a broken signature',
    edit: async (db) => {
      const cp = await db.get<{ note: string }>('SELECT note FROM checkpoints WHERE tree_size = 407');
      assert.ok(cp);
      const sig = cp.note.lastIndexOf(' ') + 5;
      const note = cp.note.slice(0, sig) + (cp.note[sig] === 'A' ? 'B' : 'A') + cp.note.slice(sig + 1);
      assert.equal(await db.run('UPDATE checkpoints SET note = ? WHERE tree_size = 407', note), 1);
    },
  },
  {
    name: 'a checkpoint signed by another key, with another root',
    edit: async (db) => {
      const attacker = parseSignerKey(formatSignerKey('parallel.test/log', randomBytes(32)));
      const note = signNote(formatCheckpointBody({ origin: 'parallel.test/log', treeSize: 914, rootHash: Buffer.alloc(HASH, 1) }), [attacker]);
      assert.equal(await db.run('UPDATE checkpoints SET note = ?, root = ? WHERE tree_size = 914', note, Buffer.alloc(HASH, 1)), 1);
    },
  },
  {
    name: 'an edited root column of a checkpoint at a tile boundary',
    edit: async (db) => assert.equal(await db.run('UPDATE checkpoints SET root = ? WHERE tree_size = 1024', Buffer.alloc(HASH, 9)), 1),
  },
];

for (const backend of BACKENDS) {
  describe(`parallel verification reports what sequential verification reports, on ${backend.title}`, { skip: backend.skip }, () => {
    for (const c of CASES) {
      it(c.name, async () => {
        const place = await buildLog(backend);
        if (c.edit) await backend.tamper(place, c.edit);
        const { seq, par } = await verifyBoth(place);
        assert.deepEqual(par, seq);
        assert.equal(seq.entries, TOTAL);
        // Every case but the clean log is a finding: the comparison is between two failures.
        assert.equal(seq.ok, c.edit === undefined, JSON.stringify(seq.findings.slice(0, 4)));
      });
    }
  });
}

describe('verification workers', () => {
  it('answer a verdict per bundle that matches the check on this thread', async () => {
    const { SqliteStore } = await import('../src/store/sqlite/sqlite-store.js');
    const backend = BACKENDS.find((b) => b.name === 'sqlite')!;
    const place = await buildLog(backend);
    await backend.tamper(place, async (db) => {
      const b = await bundle(db, 1);
      b[3] = editPayload(b[3]!, 259);
      await writeBundle(db, 1, b);
    });
    const store = SqliteStore.open(`${place.dataDir}/custos.db`, { readonly: true });
    const pool = new TilePool(2);
    try {
      const pages = [];
      for await (const page of store.rawBundlePages!(0, 5)) pages.push(page);
      const results = await Promise.all(pages.map((p) => pool.check(p)));
      const verdicts: boolean[] = [];
      pages.forEach((page, k) => {
        const r = results[k];
        assert.ok(r, 'a worker answered');
        page.forEach((rb, i) => {
          const here = checkBundleTile(rb.data, rb.tile!, rb.index);
          verdicts.push(r.ok[i] === 1);
          assert.equal(r.ok[i] === 1, here !== undefined);
          if (here) assert.deepEqual(Buffer.from(r.roots.subarray(i * HASH, (i + 1) * HASH)), here);
        });
      });
      assert.deepEqual(verdicts, [true, false, true, true, true]);
    } finally {
      await pool.close();
      await store.close();
    }
  });
});

describe('verification workers in the built package (run npm run build first)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  it('dist/log/tile-pool.js starts dist/log/verify-worker.js, and `custos verify --workers 2` (bin/custos.js) verifies with it', async () => {
    assert.ok(existsSync(`${root}dist/log/verify-worker.js`), 'dist/ is missing: run npm run build');
    const backend = BACKENDS.find((b) => b.name === 'sqlite')!;
    const place = await buildLog(backend);
    const { SqliteStore } = await import('../src/store/sqlite/sqlite-store.js');
    const store = SqliteStore.open(`${place.dataDir}/custos.db`, { readonly: true });
    const { TilePool: DistPool } = (await import(`${root}dist/log/tile-pool.js`)) as typeof import('../src/log/tile-pool.js');
    const pool = new DistPool(1);
    try {
      for await (const page of store.rawBundlePages!(0, 5)) assert.deepEqual([...((await pool.check(page))?.ok ?? [])], [1, 1, 1, 1, 1]);
    } finally {
      await pool.close();
      await store.close();
    }
    const r = spawnSync(process.execPath, [`${root}bin/custos.js`, 'verify', '--data-dir', place.dataDir, '--workers', '2', '--json', '--no-progress'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; entries: number };
    assert.deepEqual([report.ok, report.entries], [true, TOTAL]);
  });
});
