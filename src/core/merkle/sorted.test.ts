/**
 * The sorted Merkle tree of training cohorts: its root is the RFC 9162 MTH of the sorted leaves;
 * property tests over random sets: every member proves inclusion, every non-member proves
 * absence, and forged proofs (non-adjacent neighbours, a member claimed absent, a wrong root, a
 * flipped path byte, a neighbour that does not bracket the value) fail with COHORT_PROOF_INVALID.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EMPTY_ROOT, hashLeaf } from '../hash.js';
import { VerificationError } from '../errors.js';
import { computeRoot } from './tree.js';
import { SortedTree, checkSortedSet, verifySortedInclusion, verifySortedNonInclusion, type SortedNonInclusionProof } from './sorted.js';

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const set = fc.uniqueArray(hex32, { maxLength: 40 });

function invalid(fn: () => void): void {
  assert.throws(fn, (err: unknown) => err instanceof VerificationError && err.code === 'COHORT_PROOF_INVALID');
}

describe('SortedTree', () => {
  it('is the RFC 9162 tree over the sorted values, leaf = SHA-256(0x00 || value bytes)', () => {
    fc.assert(
      fc.property(set, (values) => {
        const t = new SortedTree(values);
        const sorted = [...values].sort((a, b) => Buffer.compare(Buffer.from(a, 'hex'), Buffer.from(b, 'hex')));
        assert.deepEqual(t.values, sorted);
        assert.deepEqual(t.root, computeRoot(sorted.map((v) => hashLeaf(Buffer.from(v, 'hex')))));
      }),
    );
  });

  it('of no values has the empty root, and the empty proof of absence verifies', () => {
    const t = new SortedTree([]);
    assert.deepEqual(t.root, EMPTY_ROOT);
    const p = t.proveNonInclusion('ab'.repeat(32))!;
    assert.deepEqual(p, {});
    verifySortedNonInclusion('ab'.repeat(32), p, 0, t.root.toString('hex'));
    invalid(() => verifySortedNonInclusion('ab'.repeat(32), p, 1, t.root.toString('hex')));
  });

  it('drops duplicates', () => {
    const a = 'aa'.repeat(32);
    assert.equal(new SortedTree([a, a]).size, 1);
  });
});

describe('inclusion', () => {
  it('every member proves into the root, and not into another root or at another index', () => {
    fc.assert(
      fc.property(
        set.filter((s) => s.length > 0),
        fc.nat(),
        hex32,
        (values, pick, other) => {
          const t = new SortedTree(values);
          const v = values[pick % values.length]!;
          const p = t.proveInclusion(v)!;
          const root = t.root.toString('hex');
          verifySortedInclusion(v, p, t.size, root);
          assert.equal(t.proveNonInclusion(v), undefined);
          fc.pre(other !== root);
          invalid(() => verifySortedInclusion(v, p, t.size, other));
          if (t.size > 1) invalid(() => verifySortedInclusion(v, { ...p, leafIndex: (p.leafIndex + 1) % t.size }, t.size, root));
          if (p.path.length > 0) {
            const flipped = [...p.path];
            flipped[0] = flipped[0]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
            invalid(() => verifySortedInclusion(v, { ...p, path: flipped }, t.size, root));
          }
        },
      ),
    );
  });
});

describe('non-inclusion', () => {
  it('every non-member proves its absence; the proof fails for a member and under another root', () => {
    fc.assert(
      fc.property(set, hex32, hex32, (values, absent, other) => {
        fc.pre(!values.includes(absent));
        const t = new SortedTree(values);
        const root = t.root.toString('hex');
        const p = t.proveNonInclusion(absent)!;
        verifySortedNonInclusion(absent, p, t.size, root);
        assert.equal(t.proveInclusion(absent), undefined);
        fc.pre(other !== root);
        invalid(() => verifySortedNonInclusion(absent, p, t.size, other));
        // The same neighbours do not prove a member absent (it is one of them, or outside their bracket).
        for (const m of values) {
          if ((p.left && m === p.left.value) || (p.right && m === p.right.value)) invalid(() => verifySortedNonInclusion(m, p, t.size, root));
        }
      }),
    );
  });

  it('refuses neighbours that are not adjacent (a member hidden between them)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(hex32, { minLength: 3, maxLength: 40 }), fc.nat(), (values, pick) => {
        const t = new SortedTree(values);
        const root = t.root.toString('hex');
        // Leaves i and i + 2 bracket leaf i + 1: claim it absent with the outer two.
        const i = pick % (t.size - 2);
        const hidden = t.values[i + 1]!;
        const left = { value: t.values[i]!, ...t.proveInclusion(t.values[i]!)! };
        const right = { value: t.values[i + 2]!, ...t.proveInclusion(t.values[i + 2]!)! };
        invalid(() => verifySortedNonInclusion(hidden, { left, right }, t.size, root));
        // Nor a one-sided proof whose neighbour is not at the edge.
        invalid(() => verifySortedNonInclusion(hidden, { left }, t.size, root));
        invalid(() => verifySortedNonInclusion(hidden, { right }, t.size, root));
      }),
    );
  });

  it('refuses a forged adjacency: indexes claimed adjacent whose proofs do not lead to the root', () => {
    const t = new SortedTree(['11', '33', '55', '77'].map((x) => x.repeat(32)));
    const root = t.root.toString('hex');
    const l = { value: '11'.repeat(32), ...t.proveInclusion('11'.repeat(32))! };
    const r = { value: '55'.repeat(32), ...t.proveInclusion('55'.repeat(32))! };
    // 55 is leaf 2; claim it is leaf 1 to look adjacent to 11 (and hide 33).
    const forged: SortedNonInclusionProof = { left: l, right: { ...r, leafIndex: 1 } };
    invalid(() => verifySortedNonInclusion('33'.repeat(32), forged, t.size, root));
    invalid(() => verifySortedNonInclusion('22'.repeat(32), forged, t.size, root));
    // The honest proof of 22 verifies.
    verifySortedNonInclusion('22'.repeat(32), t.proveNonInclusion('22'.repeat(32))!, t.size, root);
    // A neighbour that does not bracket: 44 is not between 11 and 33.
    invalid(() => verifySortedNonInclusion('44'.repeat(32), t.proveNonInclusion('22'.repeat(32))!, t.size, root));
    // Below the first and above the last leaf.
    verifySortedNonInclusion('00'.repeat(32), t.proveNonInclusion('00'.repeat(32))!, t.size, root);
    verifySortedNonInclusion('ff'.repeat(32), t.proveNonInclusion('ff'.repeat(32))!, t.size, root);
    invalid(() => verifySortedNonInclusion('ff'.repeat(32), {}, t.size, root));
  });

  it('survives malformed, attacker-shaped input with COHORT_PROOF_INVALID, never another error', () => {
    const t = new SortedTree(['11', '33'].map((x) => x.repeat(32)));
    const root = t.root.toString('hex');
    const v = '22'.repeat(32);
    const shapes: unknown[] = [
      { left: { value: 'zz', leafIndex: 0, path: [] } },
      { left: { value: '11'.repeat(32), leafIndex: -1, path: [] } },
      { left: { value: '11'.repeat(32), leafIndex: 0, path: 'x' } },
      { left: { value: '11'.repeat(32), leafIndex: 0, path: ['00'] } },
      { left: { value: '11'.repeat(32), leafIndex: 1e300, path: [] } },
      { right: { value: '33'.repeat(32), leafIndex: 0.5, path: [] } },
    ];
    for (const s of shapes) invalid(() => verifySortedNonInclusion(v, s as SortedNonInclusionProof, t.size, root));
    invalid(() => verifySortedNonInclusion(v, t.proveNonInclusion(v)!, t.size, 'not hex'));
  });
});

describe('checkSortedSet', () => {
  it('accepts the sorted set of its root, and names an unsorted, short or foreign one', () => {
    const t = new SortedTree(['33', '11', '22'].map((x) => x.repeat(32)));
    const root = t.root.toString('hex');
    assert.equal(checkSortedSet(t.values, 3, root), undefined);
    assert.match(checkSortedSet([...t.values].reverse(), 3, root)!, /sorted/);
    assert.match(checkSortedSet(t.values.slice(1), 3, root)!, /2 values/);
    assert.match(checkSortedSet(t.values, 3, '00'.repeat(32))!, /root/);
  });
});
