/**
 * Runs verification cases against one build of src/core and returns a verdict per case: `ok`
 * (with what was computed, where there is something to compare) or the error's stable code.
 *
 * The same function runs in Node over src/core and in Chromium over web/dist/custos-core.js
 * (test/browser-core.test.ts), so both builds are asked exactly the same way. It must stay
 * self-contained: the browser gets this file alone, compiled by esbuild.
 */
import type * as Core from '../../src/core/browser.js';

/** Values that JSON text cannot carry, built where the case runs. */
export type SpecialValue =
  | 'NaN'
  | 'Infinity'
  | 'undefined member'
  | 'lone surrogate string'
  | 'lone surrogate key'
  | 'sparse array'
  | 'array with a property'
  | 'nesting 65 deep'
  | 'nesting 64 deep'
  | 'Date'
  | 'bigint';

/** One question to a build of src/core. Bytes are standard base64, as in the published vectors. */
export type Case =
  | { kind: 'inclusion'; leafIdx: number; treeSize: number; leafHash: string; proof: string[] | null; root: string }
  | { kind: 'consistency'; size1: number; size2: number; root1: string; root2: string; proof: string[] | null }
  | { kind: 'verifierKey'; vkey: string }
  | { kind: 'openNote'; note: string; trusted: string[] }
  | { kind: 'openCheckpoint'; note: string; trusted: string[]; origin?: string }
  | { kind: 'canonicalJson'; json?: string; special?: SpecialValue }
  | { kind: 'parseCanonicalJson'; text: string }
  | { kind: 'decodeEntry'; text: string }
  | { kind: 'hashes'; text: string };

function bytes(core: typeof Core, b64: string): Uint8Array {
  const b = core.fromBase64(b64);
  if (!b) throw new Error(`not base64 in the case: ${b64}`);
  return b;
}

function special(name: SpecialValue): unknown {
  switch (name) {
    case 'NaN':
      return { a: Number.NaN };
    case 'Infinity':
      return [Number.POSITIVE_INFINITY];
    case 'undefined member':
      return { a: 1, b: undefined };
    case 'lone surrogate string':
      return { a: '\ud800' };
    case 'lone surrogate key':
      return { '\udc00': 1 };
    case 'sparse array': {
      const a = [1, 2, 3];
      delete a[1];
      return a;
    }
    case 'array with a property':
      return Object.assign([1, 2], { extra: true });
    case 'nesting 65 deep':
    case 'nesting 64 deep': {
      let v: unknown = 0;
      for (let i = name === 'nesting 65 deep' ? 65 : 64; i > 0; i--) v = [v];
      return v;
    }
    case 'Date':
      return { at: new Date(0) };
    case 'bigint':
      return { n: BigInt(1) };
  }
}

function run(core: typeof Core, c: Case): string {
  const names = (list: readonly { name: string }[]): string => list.map((s) => s.name).join(',');
  switch (c.kind) {
    case 'inclusion':
      core.verifyInclusion(
        c.leafIdx,
        c.treeSize,
        bytes(core, c.leafHash),
        (c.proof ?? []).map((p) => bytes(core, p)),
        bytes(core, c.root),
      );
      return 'ok';
    case 'consistency':
      core.verifyConsistency(
        c.size1,
        c.size2,
        (c.proof ?? []).map((p) => bytes(core, p)),
        bytes(core, c.root1),
        bytes(core, c.root2),
      );
      return 'ok';
    case 'verifierKey': {
      const k = core.parseVerifierKey(c.vkey);
      return `ok:${k.name}+${k.keyId.toString(16).padStart(8, '0')}`;
    }
    case 'openNote': {
      const opened = core.openNote(
        c.note,
        c.trusted.map((k) => core.parseVerifierKey(k)),
      );
      return `ok:verified=${names(opened.verified)};unverified=${names(opened.unverified)};text=${JSON.stringify(opened.text)}`;
    }
    case 'openCheckpoint': {
      const cp = core.openCheckpoint(
        c.note,
        c.trusted.map((k) => core.parseVerifierKey(k)),
        c.origin,
      );
      return `ok:${cp.origin};${cp.treeSize};${core.toHex(cp.rootHash)};${cp.extensions.join('|')}`;
    }
    case 'canonicalJson':
      return `ok:${core.canonicalJson(c.special ? special(c.special) : JSON.parse(c.json ?? 'null'))}`;
    case 'parseCanonicalJson':
      return `ok:${JSON.stringify(core.parseCanonicalJson(c.text))}`;
    case 'decodeEntry': {
      const e = core.decodeEntry(c.text);
      return `ok:${e.index};${e.type};${e.time}`;
    }
    case 'hashes': {
      const { bytes: b, leafHash } = core.encodeLeaf(c.text);
      const node = core.hashChildren(leafHash, core.hashLeaf(b));
      return `ok:${core.toHex(leafHash)};${core.toHex(node)};${core.toBase64(core.sha256(b))};${core.toHex(core.EMPTY_ROOT)}`;
    }
  }
}

/** The verdict of each case: `ok[:computed]`, or the code of the error it threw. */
export function verdicts(core: typeof Core, cases: readonly Case[]): string[] {
  return cases.map((c) => {
    try {
      return run(core, c);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      return typeof code === 'string' ? code : `threw ${String(err)}`;
    }
  });
}
