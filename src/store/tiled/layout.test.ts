import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashLeaf } from '../../core/hash.js';
import { Frontier } from '../../core/merkle/tree.js';
import { FAT_TILE_BYTES, decodeEntryBundle, isTileComplete, tilePosition } from '../../core/merkle/tiles.js';
import fc from 'fast-check';
import type { AppendBatch, StoredNode } from '../store.js';
import { planAppend, sizeFromMax, tileId } from './layout.js';

/** A batch of entries [start, end) with every node they create, on a frontier already at `start`. */
function batch(start: number, end: number): AppendBatch {
  const f = Frontier.empty();
  const nodes: StoredNode[] = [];
  const entries = [];
  for (let i = 0; i < end; i++) {
    const bytes = Buffer.from(`entry-${i}`);
    const created = f.append(hashLeaf(bytes));
    if (i >= start) {
      entries.push({ index: i, bytes });
      nodes.push(...created);
    }
  }
  return { expectedSize: start, entries, nodes, checkpoint: { treeSize: end, rootHash: Buffer.alloc(32), note: '', timeMs: 0 } };
}

describe('planAppend', () => {
  it('refuses a batch sequenced on another size with LOG_APPEND_CONFLICT', () => {
    assert.throws(
      () => planAppend(batch(10, 20), 11),
      (err: unknown) => (err as { code?: string }).code === 'LOG_APPEND_CONFLICT',
    );
  });

  it('when the batch stays inside the tail: takes nothing and writes tail rows only', () => {
    const plan = planAppend(batch(10, 20), 10);
    assert.equal(plan.end, 20);
    assert.equal(plan.takeEntries, undefined);
    assert.deepEqual(plan.takeNodes, []);
    const rows = plan.rows([], []);
    assert.deepEqual(rows.tailEntries.idx, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.deepEqual([rows.bundles.idx, rows.tiles.id], [[], []]);
  });

  it('when the batch completes bundle 0: takes the earlier tail entries and nodes and packs them with its own', () => {
    const b = batch(250, 300);
    const plan = planAppend(b, 250);
    assert.deepEqual(plan.takeEntries, { lo: 0, hi: 250 });
    // Tile 0/0's eight rows (levels 0-7).
    assert.deepEqual(
      plan.takeNodes.map((r) => [r.level, r.lo, r.hi]),
      [0, 1, 2, 3, 4, 5, 6, 7].map((l) => [l, 0, 256 >> l]),
    );
    const earlier = batch(0, 250);
    const taken = earlier.entries.map((e) => e.bytes);
    const rows = plan.rows(
      taken,
      earlier.nodes.map((n) => ({ level: n.level, idx: n.index, hash: n.hash })),
    );
    assert.deepEqual(rows.bundles.idx, [0]);
    const packed = decodeEntryBundle(rows.bundles.data[0]!).entries;
    assert.equal(packed.length, 256);
    assert.equal(packed[0]!.toString(), 'entry-0');
    assert.equal(packed[255]!.toString(), 'entry-255');
    assert.deepEqual(
      rows.tailEntries.idx,
      Array.from({ length: 44 }, (_, i) => 256 + i),
    );
    assert.deepEqual(rows.tiles.id, [tileId(0, 0)]);
    const fat = rows.tiles.hashes[0]!;
    assert.equal(fat.length, FAT_TILE_BYTES);
    // Leaf 0 (taken from the tail) and leaf 255 (this batch) sit in row 0 of the fat tile.
    assert.deepEqual(fat.subarray(0, 32), hashLeaf(Buffer.from('entry-0')));
    assert.deepEqual(fat.subarray(255 * 32, 256 * 32), hashLeaf(Buffer.from('entry-255')));
    // Nodes of incomplete tiles stay in the node tail.
    assert.ok(rows.tailNodes.level.length > 0);
    assert.ok(rows.tailNodes.idx.every((idx, k) => rows.tailNodes.level[k]! > 0 || idx >= 256));
  });

  it('when the batch starts on a bundle boundary: takes nothing from the tail', () => {
    const plan = planAppend(batch(256, 600), 256);
    assert.equal(plan.takeEntries, undefined);
    assert.deepEqual(plan.takeNodes, []);
    assert.deepEqual(plan.rows([], []).bundles.idx, [1]);
  });
});

describe('planAppend, for any batch (property)', () => {
  it('writes a fat tile exactly for each complete tile holding a node of the batch, and every other node to the tail', () => {
    fc.assert(
      // Starts near 0 and around the first level-1 tile (65,536 leaves), where two tile levels complete at once.
      fc.property(fc.oneof(fc.nat({ max: 3000 }), fc.integer({ min: 64_500, max: 66_000 })), fc.integer({ min: 1, max: 1500 }), (start, count) => {
        const b = batch(start, start + count);
        const end = start + count;
        // The definition planAppend's arithmetic stands for: the tiles of the batch's nodes, complete at `end`.
        const want = new Set<number>();
        for (const n of b.nodes) {
          const p = tilePosition(n.level, n.index);
          if (isTileComplete(p.tileLevel, p.tileIndex, end)) want.add(tileId(p.tileLevel, p.tileIndex));
        }
        const plan = planAppend(b, start);
        const rows = plan.rows(new Array<Buffer>(plan.takeEntries ? plan.takeEntries.hi - plan.takeEntries.lo : 0).fill(Buffer.from('x')), []);
        assert.deepEqual(new Set(rows.tiles.id), want);
        assert.equal(
          rows.tailNodes.level.length +
            [...b.nodes].filter((n) => {
              const p = tilePosition(n.level, n.index);
              return want.has(tileId(p.tileLevel, p.tileIndex));
            }).length,
          b.nodes.length,
        );
        for (const range of plan.takeNodes) {
          const p = tilePosition(range.level, range.lo);
          assert.ok(want.has(tileId(p.tileLevel, p.tileIndex)) && p.tileIndex * 256 ** (p.tileLevel + 1) < start);
        }
      }),
      { numRuns: 25 },
    );
  });
});

describe('sizeFromMax', () => {
  it('counts the tail when there is one, else the complete bundles', () => {
    assert.deepEqual([sizeFromMax(null, null), sizeFromMax(null, 0), sizeFromMax(300, 0), sizeFromMax(5, null)], [0, 256, 301, 6]);
  });
});
