/**
 * The reference ledger verifier on ledgers built in TypeScript (test/helpers/reference-ledger.ts):
 * every defect kind at its line, what it accepts (blank lines, CRLF, reformatting), and a
 * cross-check that the reference's own verify_integrity (python3) accepts the ledgers built here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { buildLedger, float, sampleLedger, type BuiltLedger, type Plain } from '../../test/helpers/reference-ledger.js';
import { legacyIdentifiers, verifyReferenceLedger, type ReferenceLedgerResult } from './reference-ledger.js';

const SEED_PY = new URL('../../../shared/seed_py', import.meta.url).pathname;

function verify(l: BuiltLedger, text = l.text, stores: { policies?: Map<string, Buffer>; manifests?: Map<string, Buffer> } = {}): ReferenceLedgerResult {
  const policies = stores.policies ?? l.policies;
  const manifests = stores.manifests ?? l.manifests;
  return verifyReferenceLedger({ ledger: Buffer.from(text, 'utf8'), policy: (id) => policies.get(id), manifest: (n) => manifests.get(n) });
}

function defectOf(r: ReferenceLedgerResult): [string, number] {
  assert.equal(r.ok, false, 'expected a defect');
  return r.ok ? ['', -1] : [r.defect.defect, r.defect.line];
}

describe('verifyReferenceLedger', () => {
  it('verifies a ledger: every line, the head, manifests and policies', () => {
    const l = sampleLedger();
    const r = verify(l);
    assert.ok(r.ok);
    assert.equal(r.ledger.lines.length, 6);
    assert.equal(r.ledger.entries, 5);
    assert.equal(r.ledger.head, l.head);
    assert.equal(r.ledger.manifests, 1);
    assert.equal(r.ledger.policies, 1);
    assert.deepEqual(r.ledger.eventTypes, { CONSENT_CREATED: 1, DATA_ACCESSED: 1, INFERENCE_EXECUTED: 1, CALIBRATION_RECORDED: 1, CONSENT_REVOKED: 1 });
    // The policy file is attached to the line of its LAST hash (the revocation), the manifest to its inference.
    assert.equal(r.ledger.lines[5]!.policy?.policyId, 'consent_001');
    assert.equal(r.ledger.lines[1]!.policy, undefined);
    assert.equal(r.ledger.lines[3]!.manifest?.name, 'repro_ev-1');
    assert.deepEqual(legacyIdentifiers(r.ledger.lines[1]!), { subject: 'patient_Zoë_😀', uris: [] });
    assert.deepEqual(legacyIdentifiers(r.ledger.lines[3]!), { uris: ['s3://b/patient_Zoë_😀/img.jpg', 's3://b/r.json'] });
  });

  it('accepts blank lines, CRLF line ends, and a line reformatted to the same parsed value', () => {
    const l = sampleLedger();
    const blank = verify(l, l.text.replace('\n', '\n\n  \n'));
    assert.ok(blank.ok && blank.ledger.blankLines === 2 && blank.ledger.lines[1]!.line === 3);
    assert.ok(verify(l, l.text.replaceAll('\n', '\r\n')).ok);
    const lines = [...l.lines];
    lines[4] = lines[4]!.replace('"lr": 1e-05', '"lr":0.00001').replace('"scale": 1.0', '"scale"  :  1.00').replace(', ', ',\t');
    assert.ok(verify(l, `${lines.join('\n')}\n`).ok);
  });

  it('reports each defect at its 0-based line', () => {
    const l = sampleLedger();
    const withLines = (edit: (lines: string[]) => string[], final = '\n') => `${edit([...l.lines]).join('\n')}${final}`;
    const at = (i: number, f: (s: string) => string) => withLines((x) => x.map((s, k) => (k === i ? f(s) : s)));
    const cases: [string, string, number][] = [
      [at(2, (s) => s.replace('clinical_care', 'research')), 'HASH_MISMATCH', 2],
      [at(4, (s) => s.replace('1e-05', '1e-06')), 'HASH_MISMATCH', 4],
      [at(4, (s) => s.replace('"scale": 1.0', '"scale": 1')), 'HASH_MISMATCH', 4],
      [withLines((x) => [...x.slice(0, 2), ...x.slice(3)]), 'BROKEN_LINK', 2],
      [withLines((x) => x.slice(1)), 'MISSING_GENESIS', 0],
      ['', 'MISSING_GENESIS', 0],
      [withLines((x) => [...x.slice(0, 3), '{"genesis": true, "created_at_ms": 2}', ...x.slice(3)]), 'MISPLACED_GENESIS', 3],
      [l.text.slice(0, -30), 'MALFORMED_LINE', 5],
      [at(0, () => '{"genesis": true}'), 'MALFORMED_LINE', 0],
      [at(1, (s) => s.replace(/}$/, ', "extra": 1}')), 'MALFORMED_LINE', 1],
      [at(1, (s) => s.replace('{"entry_id"', '{"event_type": "X", "entry_id"')), 'MALFORMED_LINE', 1],
      [at(2, () => '[1, 2]'), 'MALFORMED_LINE', 2],
      [at(2, (s) => s.replace('"timestamp_ms": ', '"timestamp_ms": -')), 'MALFORMED_LINE', 2],
    ];
    for (const [text, kind, line] of cases) assert.deepEqual(defectOf(verify(l, text)), [kind, line], `${kind} ${line}`);
    // Invalid UTF-8, and a lone surrogate (no UTF-8 bytes to hash: Python cannot hash it either).
    const bad = Buffer.concat([Buffer.from(`${l.lines.slice(0, 2).join('\n')}\n`), Buffer.from([0xff, 0xfe, 0x0a])]);
    assert.deepEqual(defectOf(verifyReferenceLedger({ ledger: bad, policy: () => undefined, manifest: () => undefined })), ['MALFORMED_LINE', 2]);
    const lone = buildLedger([{ type: 'X', payload: { s: 'ok' } }]);
    assert.deepEqual(defectOf(verify(lone, lone.text.replace('"ok"', '"\\ud800"'))), ['MALFORMED_LINE', 1]);
  });

  it('checks the stores only against an intact ledger, and reports the off-ledger defect with the lowest line', () => {
    const l = sampleLedger();
    const staleVersion = new Map([['consent_001', Buffer.from(buildLedger([]).lines[0]!)]]);
    assert.deepEqual(defectOf(verify(l, l.text, { policies: staleVersion })), ['POLICY_MISMATCH', 5]);
    assert.deepEqual(defectOf(verify(l, l.text, { policies: new Map() })), ['POLICY_MISSING', 5]);
    assert.deepEqual(defectOf(verify(l, l.text, { manifests: new Map() })), ['MANIFEST_MISSING', 3]);
    assert.deepEqual(defectOf(verify(l, l.text, { manifests: new Map([['repro_ev-1', Buffer.from('{"event_id": "ev-2"}')]]) })), ['MANIFEST_MISMATCH', 3]);
    // Both stores broken: the manifest (line 3) comes before the policy (line 5).
    assert.deepEqual(defectOf(verify(l, l.text, { manifests: new Map(), policies: new Map() })), ['MANIFEST_MISSING', 3]);
    // A ledger defect comes first, whatever the stores hold.
    assert.deepEqual(defectOf(verify(l, l.text.replace('user_42', 'user_43'), { manifests: new Map() })), ['HASH_MISMATCH', 2]);
    // A reformatted store file is the same parsed value: no alarm.
    const pretty = new Map([['consent_001', Buffer.from(JSON.stringify(JSON.parse(l.policies.get('consent_001')!.toString()), null, 2))]]);
    assert.ok(verify(l, l.text, { policies: pretty }).ok);
  });

  const skip = existsSync(join(SEED_PY, 'governance_overlay.py')) ? false : `the reference notebook is absent (${SEED_PY})`;
  it("ledgers built here pass the reference's own verify_integrity (python3), random payloads included", { skip }, () => {
    const plain: fc.Arbitrary<Plain> = fc.letrec<{ v: Plain }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        fc.integer(),
        fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map(float),
        fc.constantFrom(null, true, false, float(1e-5), float(1e16), float(0.1)),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 5 }), tie('v'), { maxKeys: 3 }),
      ),
    })).v;
    const payloads = fc.sample(fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 6 }), plain, { maxKeys: 4 }), 150);
    const l = buildLedger(payloads.map((p) => ({ type: 'RANDOM_EVENT', payload: p })));
    assert.ok(verify(l).ok);
    const dir = mkdtempSync(join(tmpdir(), 'custos-refledger-'));
    try {
      writeFileSync(join(dir, 'l.jsonl'), l.text);
      const code = `import os, sys\nos.environ["SEED_OUT"] = ${JSON.stringify(dir)}\nsys.path.insert(0, ${JSON.stringify(SEED_PY)})\nimport governance_overlay as g\nl = g.LocalLedger(${JSON.stringify(join(dir, 'l.jsonl'))})\nprint(l.verify_integrity()[0], l.last_hash())`;
      const r = spawnSync('python3', ['-c', code], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `True ${l.head}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
