/**
 * Tamper tests on the real stores, on every backend (test/helpers/backends.ts): every defect is
 * made through a separate raw connection (better-sqlite3 on custos.db, pg on the log's database),
 * as an attacker (or a broken disk) with write access to the store would, then the log is reopened
 * and `verifyLog` (and `custos verify`) must name the defect with the right finding kind and the
 * right first bad entry index.
 *
 * The store keeps the C2SP tlog-tiles layout: complete 256-entry bundles and complete "fat" tiles
 * are single rows; the right edge lives row by row in entry_tail and node_tail. Every case runs on
 * two fixtures: a 40-entry log (everything in the tails) and a 300-entry log where the tampered
 * entries sit in bundle 0 and tile 0/0. The raw layer below reads and writes that layout on its
 * own (it does not use the store's code), so the tests do not trust what they test.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { initDataDir, openDataDir, openLog } from '../src/log/data-dir.js';
import { verifyLog, type Finding, type FindingKind, type VerifyReport } from '../src/log/verify-log.js';
import { LogReader } from '../src/log/reader.js';
import { Frontier } from '../src/core/merkle/tree.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { hashLeaf } from '../src/core/hash.js';
import { formatCheckpointBody, openCheckpoint } from '../src/core/checkpoint.js';
import { formatSignerKey, parseSignerKey, signNote } from '../src/core/note.js';
import { hasCode } from '../src/core/errors.js';
import { run } from '../src/cli/main.js';
import { BACKENDS, cleanupBackends, type Backend, type LogPlace, type RawDb } from './helpers/backends.js';

// ---- raw access to the stored layout ----------------------------------------------------------

const TILE_WIDTH = 256;
const TILE_HEIGHT = 8;
const HASH = 32;

/** Direct reads and writes of the log's tables, bypassing the store. Nodes at level 0 are leaf hashes. */
class RawLog {
  constructor(readonly db: RawDb) {}

  async #value<T>(sql: string, ...params: unknown[]): Promise<T | undefined> {
    const row = await this.db.get<Record<string, T>>(sql, ...params);
    return row && Object.values(row)[0];
  }

  // Entries: complete bundles (uint16 big-endian length, then the bytes, 256 times), then the tail.
  async #bundle(n: number): Promise<Buffer[] | undefined> {
    const data = await this.#value<Buffer>('SELECT data FROM entry_bundles WHERE idx = ?', n);
    if (!data) return undefined;
    const out: Buffer[] = [];
    for (let off = 0; off + 2 <= data.length; ) {
      const len = data.readUInt16BE(off);
      out.push(Buffer.from(data.subarray(off + 2, off + 2 + len)));
      off += 2 + len;
    }
    return out;
  }

  async #writeBundle(n: number, entries: readonly Buffer[]): Promise<void> {
    const data = Buffer.concat(entries.flatMap((e) => [Buffer.from([e.length >> 8, e.length & 0xff]), e]));
    assert.equal(await this.db.run('UPDATE entry_bundles SET data = ? WHERE idx = ?', data, n), 1);
  }

  /** The stored bytes of bundle 0's row. */
  bundleData(n: number): Promise<Buffer | undefined> {
    return this.#value<Buffer>('SELECT data FROM entry_bundles WHERE idx = ?', n);
  }

  async setBundleData(n: number, data: Buffer): Promise<void> {
    assert.equal(await this.db.run('UPDATE entry_bundles SET data = ? WHERE idx = ?', data, n), 1);
  }

  /** True when entry `i` is stored inside a complete bundle (not in the tail). */
  async inBundle(i: number): Promise<boolean> {
    return (await this.#bundle(Math.floor(i / TILE_WIDTH))) !== undefined;
  }

  async entry(i: number): Promise<Buffer> {
    const tail = await this.#value<Buffer>('SELECT data FROM entry_tail WHERE idx = ?', i);
    if (tail) return tail;
    const e = (await this.#bundle(Math.floor(i / TILE_WIDTH)))?.[i % TILE_WIDTH];
    assert.ok(e, `no stored entry ${i}`);
    return e;
  }

  async setEntry(i: number, bytes: Buffer): Promise<void> {
    if ((await this.db.run('UPDATE entry_tail SET data = ? WHERE idx = ?', bytes, i)) === 1) return;
    const n = Math.floor(i / TILE_WIDTH);
    const b = await this.#bundle(n);
    assert.ok(b?.[i % TILE_WIDTH], `no stored entry ${i}`);
    b[i % TILE_WIDTH] = bytes;
    await this.#writeBundle(n, b);
  }

  /** Deletes entry `i`: its tail row, or its record inside its bundle (later records move up). */
  async deleteEntry(i: number): Promise<void> {
    if ((await this.db.run('DELETE FROM entry_tail WHERE idx = ?', i)) === 1) return;
    const n = Math.floor(i / TILE_WIDTH);
    const b = await this.#bundle(n);
    assert.ok(b?.[i % TILE_WIDTH], `no stored entry ${i}`);
    b.splice(i % TILE_WIDTH, 1);
    await this.#writeBundle(n, b);
  }

  /** Every stored entry's bytes in index order (bundles, then the tail). */
  async allEntries(): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const r of await this.db.all<{ idx: number }>('SELECT idx FROM entry_bundles ORDER BY idx')) out.push(...(await this.#bundle(r.idx))!);
    for (const r of await this.db.all<{ data: Buffer }>('SELECT data FROM entry_tail ORDER BY idx')) out.push(r.data);
    return out;
  }

  // Nodes: complete tiles (row key level * 2^40 + index) hold row 0 (256 hashes of tree level 8L)
  // then rows 1..7 (128, 64, ..., 2 hashes); nodes of incomplete tiles are node_tail rows.
  #tileSlot(level: number, index: number): { id: number; offset: number } {
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const row = level - tileLevel * TILE_HEIGHT;
    const perRow = TILE_WIDTH >> row;
    const tileIndex = Math.floor(index / perRow);
    const rowStart = 2 * TILE_WIDTH - ((2 * TILE_WIDTH) >> row);
    return { id: tileLevel * 2 ** 40 + tileIndex, offset: (rowStart + (index - tileIndex * perRow)) * HASH };
  }

  async #tile(level: number, index: number): Promise<{ id: number; offset: number; hashes: Buffer } | undefined> {
    const slot = this.#tileSlot(level, index);
    const hashes = await this.#value<Buffer>('SELECT hashes FROM tiles WHERE id = ?', slot.id);
    return hashes && { ...slot, hashes };
  }

  /** True when node (level, index) is stored in a complete tile. */
  async inTile(level: number, index: number): Promise<boolean> {
    return (await this.#tile(level, index)) !== undefined;
  }

  async node(level: number, index: number): Promise<Buffer> {
    const t = await this.#tile(level, index);
    if (t) return Buffer.from(t.hashes.subarray(t.offset, t.offset + HASH));
    const h = await this.#value<Buffer>('SELECT hash FROM node_tail WHERE level = ? AND idx = ?', level, index);
    assert.ok(h, `no stored node ${level}/${index}`);
    return h;
  }

  async setNode(level: number, index: number, hash: Buffer): Promise<void> {
    assert.equal(hash.length, HASH);
    const t = await this.#tile(level, index);
    if (t) {
      const copy = Buffer.from(t.hashes);
      hash.copy(copy, t.offset);
      assert.equal(await this.db.run('UPDATE tiles SET hashes = ? WHERE id = ?', copy, t.id), 1);
      return;
    }
    assert.equal(await this.db.run('UPDATE node_tail SET hash = ? WHERE level = ? AND idx = ?', hash, level, index), 1);
  }

  async deleteTailNode(level: number, index: number): Promise<void> {
    assert.equal(await this.db.run('DELETE FROM node_tail WHERE level = ? AND idx = ?', level, index), 1);
  }

  leafHash(i: number): Promise<Buffer> {
    return this.node(0, i);
  }

  setLeafHash(i: number, hash: Buffer): Promise<void> {
    return this.setNode(0, i, hash);
  }

  checkpointSizes(): Promise<number[]> {
    return this.db.all<{ tree_size: number }>('SELECT tree_size FROM checkpoints ORDER BY tree_size').then((rs) => rs.map((r) => r.tree_size));
  }

  checkpoint(treeSize: number): Promise<{ root: Buffer; note: string } | undefined> {
    return this.db.get('SELECT root, note FROM checkpoints WHERE tree_size = ?', treeSize);
  }

  async setCheckpoint(treeSize: number, root: Buffer, note: string): Promise<void> {
    assert.equal(await this.db.run('UPDATE checkpoints SET root = ?, note = ? WHERE tree_size = ?', root, note, treeSize), 1);
  }

  origin(): Promise<string | undefined> {
    return this.#value<string>("SELECT value FROM meta WHERE key = 'origin'");
  }
}

// ---- fixtures ---------------------------------------------------------------------------------

interface Fixture {
  readonly name: string;
  /** Sizes of the group commits: single appends commit alone, a Promise.all group commits together. */
  readonly batches: readonly number[];
  /** Whether index 17 is inside a complete bundle (and its hashes inside complete tiles). */
  readonly bundled: boolean;
}

const SMALL = [1, 1, 5, 5, 1, 5, 5, 1, 5, 5, 1, 5];
const FIXTURES: readonly Fixture[] = [
  { name: '40 entries, all in the tail rows', batches: SMALL, bundled: false },
  { name: '300 entries, index 17 in bundle 0 and tile 0/0', batches: [...SMALL, 260], bundled: true },
];

function checkpointSizes(batches: readonly number[]): number[] {
  const out: number[] = [];
  for (const b of batches) out.push((out.at(-1) ?? 0) + b);
  return out;
}

after(cleanupBackends);

/** Runs `fn` in one transaction on a separate, raw connection to the log's store. */
function tamper<T>(backend: Backend, place: LogPlace, fn: (raw: RawLog) => Promise<T>): Promise<T> {
  return backend.tamper(place, (db) => fn(new RawLog(db)));
}

/** Creates a fresh log on `backend` appended in `batches`, closed. */
async function buildLog(backend: Backend, fx: Fixture): Promise<LogPlace> {
  const place = await backend.newPlace();
  await initDataDir(place.dataDir, { origin: 'tamper.test/log', storeUrl: place.storeUrl });
  const { dir, log } = await openLog(place.dataDir, { storeUrl: place.storeUrl });
  try {
    let next = 0;
    for (const size of fx.batches) {
      const results = await Promise.all(
        Array.from({ length: size }, () => {
          const i = next++;
          return log.append('AUDIT_EVENT', { note: `entry-${i}`, resource: `res-${i}`, pad: 'x'.repeat(16 + (i % 7)) });
        }),
      );
      // One checkpoint per group commit: every result of a group carries the same checkpoint.
      assert.deepEqual(new Set(results.map((r) => r.checkpoint.treeSize)), new Set([next]));
    }
    await log.close();
  } finally {
    await dir.store.close();
  }
  const sizes = checkpointSizes(fx.batches);
  await tamper(backend, place, async (raw) => {
    // Issue 11: init signs the empty tree's checkpoint (size 0) first, then one per group commit.
    assert.deepEqual(await raw.checkpointSizes(), [0, ...sizes]);
    assert.equal((await raw.allEntries()).length, sizes.at(-1));
    // The fixture stores index 17 where this fixture means to test it.
    assert.equal(await raw.inBundle(17), fx.bundled);
    assert.equal(await raw.inTile(0, 17), fx.bundled);
    assert.equal(await raw.inTile(2, 4), fx.bundled);
  });
  return place;
}

// ---- helpers ----------------------------------------------------------------------------------

/** Reopens the log and verifies it against the key recorded at init. */
async function verify(place: LogPlace): Promise<VerifyReport> {
  const dir = await openDataDir(place.dataDir, { storeUrl: place.storeUrl });
  try {
    return await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
  } finally {
    await dir.store.close();
  }
}

function kinds(report: VerifyReport): FindingKind[] {
  return report.findings.map((f) => f.kind);
}

function show(report: VerifyReport): string {
  return JSON.stringify({ firstBadIndex: report.firstBadIndex, findings: report.findings.slice(0, 8).map((f) => [f.kind, f.index, f.treeSize]) });
}

function findingOf(report: VerifyReport, kind: FindingKind): Finding {
  const f = report.findings.find((x) => x.kind === kind);
  assert.ok(f, `expected a ${kind} finding, got ${show(report)}`);
  return f;
}

/** Flips one byte inside the payload; the entry stays well-formed JSON claiming its index. */
function editedPayload(data: Buffer, i: number): Buffer {
  const copy = Buffer.from(data);
  const at = copy.indexOf(`entry-${i}"`);
  assert.ok(at > 0);
  copy[at] = 'E'.charCodeAt(0);
  return copy;
}

function flipped(hash: Buffer, at = 0): Buffer {
  const copy = Buffer.from(hash);
  copy[at]! ^= 0xff;
  return copy;
}

// ---- the cases --------------------------------------------------------------------------------

for (const backend of BACKENDS) {
  for (const fx of FIXTURES) {
    const sizes = checkpointSizes(fx.batches);
    const total = sizes.at(-1)!;
    const build = () => buildLog(backend, fx);
    const edit = <T>(place: LogPlace, fn: (raw: RawLog) => Promise<T>) => tamper(backend, place, fn);

    describe(`tamper detection on ${backend.title} (${fx.name})`, { skip: backend.skip }, () => {
      it('a clean log verifies', async () => {
        const d = await build();
        const report = await verify(d);
        assert.equal(report.ok, true, show(report));
        assert.equal(report.firstBadIndex, undefined);
        assert.deepEqual(report.findings, []);
        assert.equal(report.entries, total);
        assert.equal(report.checkpointSize, total);
        assert.equal(report.checkpointsChecked, sizes.length + 1); // and the empty tree's, signed at init (issue 11)
        assert.match(report.rootHex ?? '', /^[0-9a-f]{64}$/);
      });

      it('(a) an edited byte of entry 17 is found at 17', async () => {
        const d = await build();
        await edit(d, async (raw) => raw.setEntry(17, editedPayload(await raw.entry(17), 17)));
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(findingOf(report, 'LEAF_HASH_MISMATCH').index, 17);
        assert.equal(report.firstBadIndex, 17, show(report));
      });

      it('(b) a deleted entry 17 is found at 17', async () => {
        const d = await build();
        await edit(d, (raw) => raw.deleteEntry(17));
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(report.firstBadIndex, 17, show(report));
        // A tail row leaves a gap; inside a bundle the later records move up one slot, so position 17
        // holds entry 18 (and the bundle comes up one entry short at its end).
        assert.equal(report.findings[0]?.kind, fx.bundled ? 'ENTRY_INDEX_MISMATCH' : 'ENTRY_MISSING', show(report));
        assert.equal(report.findings[0]?.index, 17);
      });

      it('(c) entries 12 and 20 swapped (bytes and leaf hashes) are ENTRY_INDEX_MISMATCH at 12', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          const [e12, e20, h12, h20] = [await raw.entry(12), await raw.entry(20), await raw.leafHash(12), await raw.leafHash(20)];
          await raw.setEntry(12, e20);
          await raw.setEntry(20, e12);
          await raw.setLeafHash(12, h20);
          await raw.setLeafHash(20, h12);
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(report.firstBadIndex, 12, show(report));
        assert.deepEqual(
          report.findings.filter((f) => f.kind === 'ENTRY_INDEX_MISMATCH').map((f) => f.index),
          [12, 20],
        );
        // Each moved entry kept its own leaf hash: only the positions are wrong.
        assert.ok(!kinds(report).includes('LEAF_HASH_MISMATCH'), show(report));
      });

      it('(d) entry 17 cut to half its length (torn write) is found at 17', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          const e = await raw.entry(17);
          await raw.setEntry(17, Buffer.from(e.subarray(0, Math.floor(e.length / 2))));
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(findingOf(report, 'ENTRY_INDEX_MISMATCH').index, 17);
        assert.equal(findingOf(report, 'LEAF_HASH_MISMATCH').index, 17);
        assert.equal(report.firstBadIndex, 17, show(report));
      });

      it('(d) the last 3 entries deleted is CHECKPOINT_BEYOND_LOG at the first missing index', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          for (let i = total - 3; i < total; i++) await raw.deleteEntry(i);
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(report.firstBadIndex, total - 3, show(report));
        assert.deepEqual(kinds(report), ['CHECKPOINT_BEYOND_LOG'], show(report));
        assert.equal(report.findings[0]?.index, total - 3);
        assert.equal(report.findings[0]?.treeSize, total);
      });

      if (fx.bundled) {
        it('(d) bundle 0 cut to half its length (torn write) is ENTRY_MISSING at the first lost entry', async () => {
          const d = await build();
          const kept = await edit(d, async (raw) => {
            const data = (await raw.bundleData(0))!;
            const cut = data.subarray(0, Math.floor(data.length / 2));
            await raw.setBundleData(0, Buffer.from(cut));
            // Whole records left in the cut bundle.
            let n = 0;
            for (let off = 0; off + 2 <= cut.length && off + 2 + cut.readUInt16BE(off) <= cut.length; off += 2 + cut.readUInt16BE(off)) n++;
            return n;
          });
          assert.ok(kept > 0 && kept < TILE_WIDTH);
          const report = await verify(d);
          assert.equal(report.ok, false);
          assert.equal(report.firstBadIndex, kept, show(report));
          assert.equal(findingOf(report, 'ENTRY_MISSING').index, kept);
        });

        it('data appended after the 256th entry of bundle 0 is BUNDLE_MALFORMED at entry 255', async () => {
          const d = await build();
          await edit(d, async (raw) => {
            const data = (await raw.bundleData(0))!;
            const extra = Buffer.from('{"index":256,"payload":{},"time":"2026-01-01T00:00:00.000Z","type":"X","v":1}');
            const len = Buffer.alloc(2);
            len.writeUInt16BE(extra.length);
            await raw.setBundleData(0, Buffer.concat([data, len, extra]));
          });
          const report = await verify(d);
          assert.equal(report.ok, false);
          assert.equal(report.firstBadIndex, TILE_WIDTH - 1, show(report));
          assert.deepEqual(kinds(report), ['BUNDLE_MALFORMED'], show(report));
        });

        it('(b) a deleted bundle row is ENTRY_MISSING at its first entry', async () => {
          const d = await build();
          await edit(d, async (raw) => assert.equal(await raw.db.run('DELETE FROM entry_bundles WHERE idx = 0'), 1));
          const report = await verify(d);
          assert.equal(report.ok, false);
          assert.equal(report.firstBadIndex, 0, show(report));
          assert.equal(report.findings[0]?.kind, 'ENTRY_MISSING');
        });
      }

      it('(e) an edited leaf hash of 17 is LEAF_HASH_MISMATCH at 17', async () => {
        const d = await build();
        await edit(d, async (raw) => raw.setLeafHash(17, flipped(await raw.leafHash(17))));
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(report.firstBadIndex, 17, show(report));
        assert.deepEqual(kinds(report), ['LEAF_HASH_MISMATCH'], show(report));
        assert.equal(report.findings[0]?.index, 17);
      });

      it('(e) an edited interior node (level 2, index 4) is NODE_HASH_MISMATCH at its first leaf 16', async () => {
        const d = await build();
        await edit(d, async (raw) => raw.setNode(2, 4, flipped(await raw.node(2, 4), 31)));
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(report.firstBadIndex, 16, show(report));
        assert.deepEqual(kinds(report), ['NODE_HASH_MISMATCH'], show(report));
        assert.equal(report.findings[0]?.index, 16);
      });

      if (!fx.bundled) {
        it('(e) a deleted interior node (level 2, index 4) is NODE_MISSING at 16', async () => {
          const d = await build();
          await edit(d, (raw) => raw.deleteTailNode(2, 4));
          const report = await verify(d);
          assert.equal(report.ok, false);
          assert.equal(report.firstBadIndex, 16, show(report));
          assert.deepEqual(kinds(report), ['NODE_MISSING'], show(report));
        });
      }

      it('(f) an edited root column of the latest checkpoint is CHECKPOINT_MISMATCH', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          const cp = (await raw.checkpoint(total))!;
          await raw.setCheckpoint(total, flipped(cp.root), cp.note);
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.deepEqual(kinds(report), ['CHECKPOINT_MISMATCH'], show(report));
        assert.equal(report.findings[0]?.treeSize, total);
      });

      it('(f) the latest checkpoint re-signed by another key is CHECKPOINT_INVALID', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          const origin = (await raw.origin())!;
          // The attacker's key even carries the log's name; only the trusted key may count.
          const attacker = parseSignerKey(formatSignerKey(origin, randomBytes(32)));
          const forgedRoot = randomBytes(32);
          const note = signNote(formatCheckpointBody({ origin, treeSize: total, rootHash: forgedRoot }), [attacker]);
          await raw.setCheckpoint(total, forgedRoot, note);
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.deepEqual(kinds(report), ['CHECKPOINT_INVALID'], show(report));
        assert.equal(report.findings[0]?.treeSize, total);
        // It names the entries after the last checkpoint that did verify.
        assert.equal(report.findings[0]?.index, sizes.at(-2));
      });

      it('(f) the latest checkpoint body edited under its genuine signature is CHECKPOINT_INVALID', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          const cp = (await raw.checkpoint(total))!;
          const [origin, , , ...rest] = cp.note.split('\n');
          const forged = [origin, String(total), randomBytes(32).toString('base64'), ...rest].join('\n');
          await raw.setCheckpoint(total, cp.root, forged);
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.deepEqual(kinds(report), ['CHECKPOINT_INVALID'], show(report));
        assert.equal(report.findings[0]?.treeSize, total);
      });

      it('(g) a consistent rewrite of entry 17 (entry, leaf and every node recomputed) is CHECKPOINT_ROOT_MISMATCH covering 17', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          await raw.setEntry(17, editedPayload(await raw.entry(17), 17));
          // Recompute the whole stored tree from the entries, as an attacker without the key would.
          const f = Frontier.empty();
          let written = 0;
          for (const bytes of await raw.allEntries()) {
            for (const n of f.append(hashLeaf(bytes))) {
              await raw.setNode(n.level, n.index, n.hash);
              written++;
            }
          }
          assert.ok(written > total);
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        // Leaf and node hashes are all self-consistent: only the signed roots can tell.
        assert.deepEqual(kinds(report), ['CHECKPOINT_ROOT_MISMATCH'], show(report));
        const f = report.findings[0]!;
        assert.ok(f.treeSize !== undefined && f.index <= 17 && 17 < f.treeSize, show(report));
        // The first signed checkpoint at or after 18 entries is the first that can tell.
        assert.equal(
          f.treeSize,
          sizes.find((s) => s > 17),
        );
        assert.ok(report.firstBadIndex !== undefined && report.firstBadIndex <= 17);
      });

      it('an entry added after the latest checkpoint (without the key) is ENTRY_NOT_COVERED', async () => {
        const d = await build();
        await edit(d, async (raw) => {
          const last = (await raw.entry(total - 1)).toString('utf8');
          const data = Buffer.from(last.replace(`{"index":${total - 1},`, `{"index":${total},`), 'utf8');
          await raw.db.run('INSERT INTO entry_tail(idx, data) VALUES (?, ?)', total, data);
          await raw.db.run('INSERT INTO node_tail(level, idx, hash) VALUES (0, ?, ?)', total, hashLeaf(data));
        });
        const report = await verify(d);
        assert.equal(report.ok, false);
        assert.equal(report.firstBadIndex, total, show(report));
        // (The added leaf completes no node, since `total` is even, so no node can be missing.)
        assert.deepEqual(kinds(report), ['ENTRY_NOT_COVERED'], show(report));
      });
    });
  }

  // ---- verify --entry -------------------------------------------------------------------------

  describe(`verify --entry on ${backend.title}: inclusion proofs against the latest signed checkpoint`, { skip: backend.skip }, () => {
    const fx = FIXTURES[1]!;
    const total = checkpointSizes(fx.batches).at(-1)!;
    const build = () => buildLog(backend, fx);
    const open = (place: LogPlace) => openDataDir(place.dataDir, { readonly: true, storeUrl: place.storeUrl });
    const storeArgs = (place: LogPlace) => ['--data-dir', place.dataDir, ...(place.storeUrl ? ['--store', place.storeUrl] : [])];

    it('LogReader.inclusionProof of every entry verifies against the signed root', async () => {
      const d = await build();
      const dir = await open(d);
      try {
        const latest = await dir.store.latestCheckpoint();
        assert.ok(latest);
        const cp = openCheckpoint(latest.note, [dir.verifier], dir.origin);
        assert.equal(cp.treeSize, total);
        const reader = new LogReader(dir.store);
        for (let i = 0; i < total; i++) {
          const p = await reader.inclusionProof(i);
          assert.equal(p.treeSize, cp.treeSize);
          assert.equal(p.checkpoint?.note, latest.note);
          assert.deepEqual(p.rootHash, cp.rootHash);
          // The leaf is recomputed from the entry bytes, never taken from the store.
          const leaf = hashLeaf((await reader.getEntry(i)).bytes);
          assert.deepEqual(p.leafHash, leaf);
          verifyInclusion(i, cp.treeSize, leaf, p.proof, cp.rootHash);
        }
        // Against an older signed checkpoint too.
        const older = await dir.store.checkpointAt(18);
        assert.ok(older);
        const oldCp = openCheckpoint(older.note, [dir.verifier], dir.origin);
        const p = await reader.inclusionProof(17, 18);
        verifyInclusion(17, 18, hashLeaf((await reader.getEntry(17)).bytes), p.proof, oldCp.rootHash);
      } finally {
        await dir.store.close();
      }
    });

    it('an edited entry does not verify against the signed root', async () => {
      const d = await build();
      await tamper(backend, d, async (raw) => raw.setEntry(17, editedPayload(await raw.entry(17), 17)));
      const dir = await open(d);
      try {
        const latest = (await dir.store.latestCheckpoint())!;
        const cp = openCheckpoint(latest.note, [dir.verifier], dir.origin);
        const reader = new LogReader(dir.store);
        const p = await reader.inclusionProof(17);
        const leaf = hashLeaf((await reader.getEntry(17)).bytes);
        assert.throws(
          () => verifyInclusion(17, cp.treeSize, leaf, p.proof, cp.rootHash),
          (err) => hasCode(err, 'INCLUSION_PROOF_INVALID'),
        );
        // Untouched entries still prove.
        const q = await reader.inclusionProof(3);
        verifyInclusion(3, cp.treeSize, hashLeaf((await reader.getEntry(3)).bytes), q.proof, cp.rootHash);
      } finally {
        await dir.store.close();
      }
    });

    it('an edited stored hash on the proof path makes LogReader refuse to serve a proof', async () => {
      const d = await build();
      // Node (1, 9) covers entries 18-19: the sibling of node (1, 8) on entry 17's proof path.
      await tamper(backend, d, async (raw) => raw.setNode(1, 9, flipped(await raw.node(1, 9))));
      const dir = await open(d);
      try {
        await assert.rejects(new LogReader(dir.store).inclusionProof(17), (err) => hasCode(err, 'INCLUSION_PROOF_INVALID'));
      } finally {
        await dir.store.close();
      }
    });

    it('`custos verify --entry 17 --json` succeeds on a clean log and fails on a tampered one', async () => {
      const d = await build();
      const ok = await runCli([...storeArgs(d), '--json', 'verify', '--entry', '17']);
      assert.equal(ok.code, 0, ok.stderr);
      const out = JSON.parse(ok.stdout) as { verified: boolean; index: number; treeSize: number; proof: string[] };
      assert.equal(out.verified, true);
      assert.equal(out.index, 17);
      assert.equal(out.treeSize, total);
      assert.ok(out.proof.length > 0);

      await tamper(backend, d, async (raw) => raw.setEntry(17, editedPayload(await raw.entry(17), 17)));
      const bad = await runCli([...storeArgs(d), '--json', 'verify', '--entry', '17']);
      assert.equal(bad.code, 4, bad.stderr); // the CLI's exit code for verification failures
      assert.match(bad.stderr, /LOG_VERIFICATION_FAILED|INCLUSION_PROOF_INVALID/);
    });

    it('`custos verify --json` names entry 17 as the first bad entry of a tampered log', async () => {
      const d = await build();
      await tamper(backend, d, async (raw) => raw.setEntry(17, editedPayload(await raw.entry(17), 17)));
      const r = await runCli([...storeArgs(d), '--json', 'verify']);
      assert.equal(r.code, 4, r.stderr);
      // The report is the leading JSON document of stdout (lines may follow it).
      const out = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('\n}\n') + 3)) as { log: { ok: boolean }; firstBadIndex?: number; findings: { kind: string; index: number }[] };
      assert.equal(out.log.ok, false);
      assert.equal(out.firstBadIndex, 17, r.stdout);
      assert.deepEqual([out.findings[0]?.kind, out.findings[0]?.index], ['LEAF_HASH_MISMATCH', 17]);
    });
  });
}

async function runCli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  // run() reports process.exitCode when it is set, and node:test sets it to 1 in this process once
  // any test has failed: keep the call independent of that global.
  const saved = process.exitCode;
  process.exitCode = undefined;
  let code: number;
  try {
    code = await run(argv, { stdout, stderr }, {});
  } finally {
    process.exitCode = saved;
  }
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
