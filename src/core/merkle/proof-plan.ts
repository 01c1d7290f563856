/**
 * Proof plans: which stored nodes a proof needs, computed without any I/O.
 *
 * Each proof element is the hash of a leaf range that RFC 9162 §2.1.3.1/§2.1.4.1 name as
 * MTH(D[a:b]). Every such range is a concatenation of O(log n) complete subtrees, so a proof
 * needs O(log n) node reads. The planner lists them; `resolveProof` hashes them together.
 * @module
 */
import { HASH_SIZE } from '../hash.js';
import { InternalError } from '../errors.js';
import { foldRight } from './tree.js';
import { largestPow2Below, nodeSeq, rangeNodes, type NodeId } from './node-id.js';

/** One proof element: the complete subtrees (largest first) whose fold is the element's hash. */
export type ProofElementPlan = readonly NodeId[];

/** An ordered list of proof elements, as they appear in the proof (bottom-up). */
export type ProofPlan = readonly ProofElementPlan[];

/** RFC 9162 §2.1.3.1 PATH(m, D[n]), as a plan. Requires 0 <= m < n. */
export function planInclusion(leafIndex: number, treeSize: number): ProofPlan {
  const out: NodeId[][] = [];
  // Walk down from the root, collecting siblings; reverse at the end to get bottom-up order.
  let m = leafIndex;
  let start = 0;
  let n = treeSize;
  while (n > 1) {
    const k = largestPow2Below(n);
    if (m < k) {
      out.push(rangeNodes(start + k, n - k));
      n = k;
    } else {
      out.push(rangeNodes(start, k));
      m -= k;
      start += k;
      n -= k;
    }
  }
  return out.reverse();
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]), as a plan. Requires 0 < m < n. */
export function planConsistency(oldSize: number, newSize: number): ProofPlan {
  const out: NodeId[][] = [];
  let m = oldSize;
  let start = 0;
  let n = newSize;
  let b = true;
  // SUBPROOF(m, D[start:start+n], b), iteratively; elements are collected top-down.
  while (m !== n) {
    const k = largestPow2Below(n);
    if (m <= k) {
      out.push(rangeNodes(start + k, n - k));
      n = k;
    } else {
      out.push(rangeNodes(start, k));
      m -= k;
      start += k;
      n -= k;
      b = false;
    }
  }
  if (!b) out.push(rangeNodes(start, n));
  return out.reverse();
}

/** The nodes a plan needs, each once. */
export function planNodes(plan: ProofPlan): NodeId[] {
  const seen = new Set<number>();
  const out: NodeId[] = [];
  for (const el of plan) {
    for (const n of el) {
      const s = nodeSeq(n.level, n.index);
      if (!seen.has(s)) {
        seen.add(s);
        out.push(n);
      }
    }
  }
  return out;
}

/** Turns a plan and the fetched node hashes (keyed by `nodeSeq`) into the proof's hashes. */
export function resolveProof(plan: ProofPlan, nodes: ReadonlyMap<number, Uint8Array>): Buffer[] {
  return plan.map((el) =>
    foldRight(
      el.map((n) => {
        const h = nodes.get(nodeSeq(n.level, n.index));
        if (!h || h.length !== HASH_SIZE) {
          throw new InternalError('INTERNAL', `node ${n.level}/${n.index} missing for proof`);
        }
        return h;
      }),
    ),
  );
}
