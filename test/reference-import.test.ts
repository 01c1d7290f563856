/**
 * `custos import reference-ledger` end to end, on ledgers written by the reference's own code
 * (../shared/seed_py/governance_overlay.py via test/fixtures/reference/make_ledger.py, python3):
 * a clean ledger (with non-ASCII ids and floats such as 1e-05) imported and verified; one ledger
 * per defect, each reported at its 0-based line with nothing written; a reformatted line, policy
 * and manifest (benign: same parsed value) accepted; a re-import refused; a stored legacy line
 * edited after the import caught by `custos verify`. Where the reference itself misses a defect
 * (a removed genesis, an edited policy) or crashes (a truncated line), the test shows that too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { ValidationError } from '../src/core/errors.js';
import { checkEventPayload } from '../src/core/events.js';
import { pythonStableDumps } from '../src/core/python-json.js';
import { DEFAULT_VOCABULARY } from '../src/core/vocabulary.js';
import { pyDumpsDefault, toPy } from './helpers/reference-ledger.js';
import { assertError, callIn, ensureBuilt, EXIT, makeTempDir, okJson, parseJson, repoRoot } from './helpers/cli.js';

const SEED_PY = join(repoRoot, '..', 'shared', 'seed_py');
const MAKE_LEDGER = join(repoRoot, 'test', 'fixtures', 'reference', 'make_ledger.py');
// The reference is read from ../shared/seed_py (never copied), as the published vectors are.
const skip = existsSync(join(SEED_PY, 'governance_overlay.py')) ? false : `the reference notebook is absent (${SEED_PY})`;

function python(args: readonly string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('python3', args, { encoding: 'utf8', input: input ?? '', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs python code with the reference imported as `g` (SEED_OUT set to `out`). */
function withReference(out: string, code: string): { status: number | null; stdout: string; stderr: string } {
  return python([
    '-c',
    `import os, sys\nos.environ["SEED_OUT"] = ${JSON.stringify(out)}\nsys.path.insert(0, ${JSON.stringify(SEED_PY)})\nimport governance_overlay as g\nimport random, json\n${code}`,
  ]);
}

/** The reference's own verdict on a ledger file: "True", "False" or a crash. */
function referenceVerdict(dir: string): string {
  const r = withReference(dir, `ok, err = g.LocalLedger(${JSON.stringify(join(dir, 'ledger.jsonl'))}).verify_integrity()\nprint(ok)`);
  return r.status === 0 ? r.stdout.trim() : 'CRASH';
}

const ledgerLines = (dir: string) => readFileSync(join(dir, 'ledger.jsonl'), 'utf8').split('\n').slice(0, -1);
const writeLines = (dir: string, lines: readonly string[], finalNewline = true) => writeFileSync(join(dir, 'ledger.jsonl'), lines.join('\n') + (finalNewline ? '\n' : ''));

interface Report {
  ok: boolean;
  dryRun: boolean;
  defect: { defect: string; line: number; ref?: string; message: string } | null;
  lines: number;
  entries: number;
  head: string;
  manifests: number;
  policies: number;
  eventTypes: Record<string, number>;
  alreadyImported: { line: number; index: number } | null;
  imported: { firstIndex: number; lastIndex: number; completedIndex: number; documents: number } | null;
}

interface Listed {
  index: number;
  type: string;
  payload: Record<string, unknown>;
}

describe('custos import reference-ledger', { skip }, () => {
  const tmp = makeTempDir('custos-refimport-');
  const clean = join(tmp.path, 'clean');
  let n = 0;
  const copy = (): string => {
    const d = join(tmp.path, `copy-${n++}`);
    cpSync(clean, d, { recursive: true });
    return d;
  };
  const freshLog = async (): Promise<string> => {
    const d = join(tmp.path, `data-${n++}`);
    okJson(await callIn(d, ['--json', 'init']));
    return d;
  };
  const entriesOf = async (data: string): Promise<number> => okJson<{ entries: number }>(await callIn(data, ['--json', 'verify'])).entries;
  const listAll = async (data: string): Promise<Listed[]> => okJson<Listed[]>(await callIn(data, ['--json', 'list', '--limit', '100000']));

  before(() => {
    ensureBuilt();
    const r = python([MAKE_LEDGER, SEED_PY, clean, '8', '40', '3', '--extras']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok', 'the reference verifies its own ledger');
  });
  after(() => tmp.cleanup());

  it('a clean ledger: a dry run writes nothing; the import logs every line in order, and custos verify passes', async () => {
    const data = await freshLog();
    const lines = ledgerLines(clean);
    const dry = okJson<Report>(await callIn(data, ['--json', 'import', 'reference-ledger', clean, '--dry-run']));
    assert.equal(dry.ok, true);
    assert.equal(dry.dryRun, true);
    assert.equal(dry.lines, lines.length);
    assert.equal(dry.entries, lines.length - 1);
    assert.equal(dry.head, (JSON.parse(lines.at(-1)!) as { entry_hash: string }).entry_hash);
    assert.equal(dry.alreadyImported, null);
    assert.equal(dry.imported, null);
    assert.ok(dry.manifests > 0 && dry.policies === 9, JSON.stringify(dry));
    assert.equal(dry.eventTypes['CALIBRATION_RECORDED'], 1);
    assert.equal(await entriesOf(data), 0, 'a dry run writes nothing');

    const rep = okJson<Report>(await callIn(data, ['--json', 'import', 'reference-ledger', clean]));
    assert.deepEqual([rep.imported?.firstIndex, rep.imported?.lastIndex, rep.imported?.completedIndex], [0, lines.length - 1, lines.length]);
    const verified = okJson<{ ok: boolean; entries: number; documents: { documentsChecked: number; findings: unknown[] } }>(await callIn(data, ['--json', 'verify']));
    assert.equal(verified.ok, true);
    assert.equal(verified.entries, lines.length + 1);
    assert.equal(verified.documents.documentsChecked, lines.length + rep.manifests + rep.policies);

    const listed = (await listAll(data)).sort((a, b) => a.index - b.index);
    const legacy = listed.filter((e) => e.type === 'LEGACY_EVENT');
    assert.deepEqual(
      legacy.map((e) => e.payload['line']),
      lines.map((_, i) => i),
    );
    assert.equal(legacy[0]!.payload['legacyType'], 'GENESIS');
    lines.forEach((l, i) => {
      if (i === 0) return;
      const row = JSON.parse(l) as { entry_id: string; event_type: string; entry_hash: string; prev_hash: string };
      assert.equal(legacy[i]!.payload['entryHash'], row.entry_hash);
      assert.equal(legacy[i]!.payload['prevHash'], row.prev_hash);
      // The fixture's CALIBRATION_RECORDED is not a type the reference writes: UNRECOGNIZED.
      assert.equal(legacy[i]!.payload['legacyType'], row.event_type === 'CALIBRATION_RECORDED' ? 'UNRECOGNIZED' : row.event_type);
      assert.equal(legacy[i]!.payload['entryId'], row.entry_id, 'the reference writes uuid4 entry ids: logged');
    });
    const completed = listed.find((e) => e.type === 'LEGACY_IMPORT_COMPLETED')!;
    assert.equal(completed.payload['head'], dry.head);
    assert.equal(completed.payload['lines'], lines.length);

    // Only codes, ids, hashes and commitments on the log: no subject id, URI or policy id in clear.
    const logText = JSON.stringify(listed);
    for (const clear of ['patient_', 's3://', 'Zoë', '東京', 'consent_', 'user_42', 'bücket']) assert.ok(!logText.includes(clear), `${clear} is on the log`);
    // The subject id and URIs became commitments; each line's exact bytes are the stored document.
    const db = new Database(join(data, 'custos.db'), { readonly: true });
    try {
      const doc = (hash: unknown) => (db.prepare('SELECT data FROM documents WHERE hash = ?').get(hash) as { data: Buffer } | undefined)?.data;
      const bytes = readFileSync(join(clean, 'ledger.jsonl'));
      const fileLines = bytes.toString('utf8').split('\n');
      for (const e of legacy) assert.deepEqual(doc((e.payload['documents'] as Record<string, unknown>)['line']), Buffer.from(fileLines[e.payload['line'] as number]!, 'utf8'));
      const zoe = legacy.find((e) => e.payload['subject'] !== undefined && fileLines[e.payload['line'] as number]!.includes('patient_Zoë_東京_😀'))!;
      const opening = db.prepare('SELECT kind, value FROM commitments WHERE commitment = ?').get(zoe.payload['subject']) as { kind: string; value: string };
      assert.deepEqual(opening, { kind: 'subject', value: 'patient_Zoë_東京_😀' });
      const access = legacy.find((e) => e.payload['legacyType'] === 'DATA_ACCESSED')!;
      const uri = db.prepare('SELECT kind, value FROM commitments WHERE commitment = ?').get((access.payload['uris'] as string[])[0]) as { kind: string; value: string };
      assert.deepEqual(uri, { kind: 'uri', value: 's3://bücket/patient_Zoë_東京_😀/visit1/image1.jpg' });
    } finally {
      db.close();
    }
  });

  it('a file-made event type or entry_id never reaches the log: UNRECOGNIZED, and no entryId unless a lowercase UUID', async () => {
    const sha = (x: string) => createHash('sha256').update(x, 'utf8').digest('hex');
    const t0 = 1_700_000_000_000;
    const rows: { entry_id: string; event_type: string }[] = [
      { entry_id: 'MRN00012345-John.Smith-1970-01-01', event_type: 'JOHN_SMITH_DOB_1970_01_01_HIV_POSITIVE' },
      { entry_id: '3F0C3A5E-8D6B-4A8E-9B0E-0D6C2B7A1F10', event_type: 'UNRECOGNIZED' },
      { entry_id: '3f0c3a5e-8d6b-4a8e-9b0e-0d6c2b7a1f11', event_type: 'CONSENT_DENIED' },
    ];
    const lines = [pyDumpsDefault(toPy({ genesis: true, created_at_ms: t0 }))];
    let prev = '0'.repeat(64);
    rows.forEach((r, i) => {
      const body = { entry_id: r.entry_id, timestamp_ms: t0 + i + 1, event_type: r.event_type, payload: { note: 'x' }, prev_hash: prev };
      prev = sha(prev + pythonStableDumps(toPy(body)));
      lines.push(pyDumpsDefault(toPy({ ...body, entry_hash: prev })));
    });
    const dir = join(tmp.path, `hostile-${n++}`);
    mkdirSync(dir);
    writeLines(dir, lines);
    const data = await freshLog();
    okJson(await callIn(data, ['--json', 'import', 'reference-ledger', dir]));
    const legacy = (await listAll(data)).filter((e) => e.type === 'LEGACY_EVENT').sort((a, b) => a.index - b.index);
    assert.deepEqual(
      legacy.map((e) => [e.payload['legacyType'], e.payload['entryId']]),
      [
        ['GENESIS', undefined],
        ['UNRECOGNIZED', undefined],
        ['UNRECOGNIZED', undefined],
        ['CONSENT_DENIED', '3f0c3a5e-8d6b-4a8e-9b0e-0d6c2b7a1f11'],
      ],
    );
    const logText = JSON.stringify(await listAll(data));
    for (const clear of ['MRN00012345', 'John.Smith', 'JOHN_SMITH', 'HIV', '3F0C3A5E']) assert.ok(!logText.includes(clear), `${clear} is on the log`);
    // The registry refuses them too (custos append, any other writer).
    const entry = { line: 1, legacyType: 'GENESIS', uris: [], documents: { line: 'ab'.repeat(32) } };
    assert.throws(() => checkEventPayload('LEGACY_EVENT', { ...entry, legacyType: 'JOHN_SMITH_DOB_1970_01_01_HIV_POSITIVE' }, DEFAULT_VOCABULARY), ValidationError);
    assert.throws(() => checkEventPayload('LEGACY_EVENT', { ...entry, entryId: 'MRN00012345-John.Smith-1970-01-01' }, DEFAULT_VOCABULARY), ValidationError);
    assert.throws(() => checkEventPayload('LEGACY_EVENT', { ...entry, entryId: '3F0C3A5E-8D6B-4A8E-9B0E-0D6C2B7A1F10' }, DEFAULT_VOCABULARY), ValidationError);
    checkEventPayload('LEGACY_EVENT', { ...entry, legacyType: 'TRAINING_EXPERIMENT_EXECUTED', entryId: '3f0c3a5e-8d6b-4a8e-9b0e-0d6c2b7a1f11' }, DEFAULT_VOCABULARY);
  });

  it('floats as Python writes them (1e-05, 0.1, 1.0, 1e+16, 2.5e-07) and a big int verify byte for byte', async () => {
    const line = ledgerLines(clean).find((l) => l.includes('CALIBRATION_RECORDED'))!;
    for (const s of ['"lr": 1e-05', '"threshold": 0.1', '"scale": 1.0', '"max": 1e+16', '"tiny": 2.5e-07', '"count": 12345678901234567890']) assert.ok(line.includes(s), s);
    // The same ledger with the float line's lr written 0.00001 (the same float) still verifies;
    // written 1e-06 (another value) it does not.
    const same = copy();
    writeLines(
      same,
      ledgerLines(same).map((l) => (l === line ? l.replace('"lr": 1e-05', '"lr": 0.00001') : l)),
    );
    okJson(await callIn(await freshLog(), ['--json', 'import', 'reference-ledger', same, '--dry-run']));
    const other = copy();
    const idx = ledgerLines(other).indexOf(line);
    writeLines(
      other,
      ledgerLines(other).map((l) => (l === line ? l.replace('"lr": 1e-05', '"lr": 1e-06') : l)),
    );
    const r = await callIn(await freshLog(), ['--json', 'import', 'reference-ledger', other]);
    assertError(r, EXIT.verification, 'REFERENCE_LEDGER_INVALID', { stdoutAllowed: true });
    assert.deepEqual([parseJson<Report>(r).defect?.defect, parseJson<Report>(r).defect?.line], ['HASH_MISMATCH', idx]);
  });

  /** Imports `dir` into a fresh log, expecting `defect` at `line`; checks that nothing was written. */
  const expectDefect = async (dir: string, defect: string, line: number): Promise<void> => {
    const data = await freshLog();
    const r = await callIn(data, ['--json', 'import', 'reference-ledger', dir]);
    assertError(r, EXIT.verification, 'REFERENCE_LEDGER_INVALID', { stdoutAllowed: true, message: new RegExp(`${defect} at line ${line}:`) });
    const rep = parseJson<Report>(r);
    assert.equal(rep.ok, false);
    assert.equal(rep.defect?.defect, defect);
    assert.equal(rep.defect?.line, line);
    assert.equal(rep.imported, null);
    assert.equal(await entriesOf(data), 0, 'nothing written on a defect');
    // Without --json: the one error line, nothing on stdout.
    assertError(await callIn(data, ['import', 'reference-ledger', dir]), EXIT.verification, 'REFERENCE_LEDGER_INVALID');
    assertError(await callIn(data, ['import', 'reference-ledger', dir, '--dry-run']), EXIT.verification, 'REFERENCE_LEDGER_INVALID');
  };

  it("a line edited by the reference's own tamper_ledger_file: HASH_MISMATCH at that line", async () => {
    const d = copy();
    const before = ledgerLines(d);
    const r = withReference(d, `random.seed(5)\ng.tamper_ledger_file(${JSON.stringify(join(d, 'ledger.jsonl'))})`);
    assert.equal(r.status, 0, r.stderr);
    const after = ledgerLines(d);
    const changed = after.findIndex((l, i) => l !== before[i]);
    assert.ok(changed > 0);
    // The reference says False, or crashes: its tamper helper reads lines with str.splitlines(),
    // which also splits at U+2028, so it breaks the float line (its "note" holds one) in two.
    assert.notEqual(referenceVerdict(d), 'True');
    await expectDefect(d, 'HASH_MISMATCH', changed);
  });

  it('a line removed from the middle: BROKEN_LINK at the line that now follows', async () => {
    const d = copy();
    const lines = ledgerLines(d);
    writeLines(d, [...lines.slice(0, 10), ...lines.slice(11)]);
    await expectDefect(d, 'BROKEN_LINK', 10);
    // Checked before the log is opened: no data directory is created for a defective ledger.
    const nowhere = join(tmp.path, 'no-data-dir');
    assertError(await callIn(nowhere, ['import', 'reference-ledger', d]), EXIT.verification, 'REFERENCE_LEDGER_INVALID');
    assert.equal(existsSync(nowhere), false);
  });

  it('a truncated last line: MALFORMED_LINE at it (the reference crashes)', async () => {
    const d = copy();
    const bytes = readFileSync(join(d, 'ledger.jsonl'));
    writeFileSync(join(d, 'ledger.jsonl'), bytes.subarray(0, bytes.length - 40));
    assert.equal(referenceVerdict(d), 'CRASH');
    await expectDefect(d, 'MALFORMED_LINE', ledgerLines(clean).length - 1);
  });

  it('the genesis line removed: MISSING_GENESIS at line 0 (the reference misses it)', async () => {
    const d = copy();
    writeLines(d, ledgerLines(d).slice(1));
    assert.equal(referenceVerdict(d), 'True');
    await expectDefect(d, 'MISSING_GENESIS', 0);
  });

  it('a policy file edited: POLICY_MISMATCH at the line of its last hash (the reference misses it)', async () => {
    const d = copy();
    const file = join(d, 'policy_store', 'consent_0002.json');
    const policy = JSON.parse(readFileSync(file, 'utf8')) as { allowed_roles: string[] };
    policy.allowed_roles.push('guest');
    writeFileSync(file, JSON.stringify(policy));
    const last = ledgerLines(d).findLastIndex((l) => /"event_type": "CONSENT_(CREATED|REVOKED)"/.test(l) && l.includes('"policy_id": "consent_0002"'));
    assert.ok(last > 0);
    assert.equal(referenceVerdict(d), 'True');
    await expectDefect(d, 'POLICY_MISMATCH', last);
    unlinkSync(file);
    await expectDefect(d, 'POLICY_MISSING', last);
  });

  it("a manifest edited by the reference's tamper_repro_manifest, or deleted: MANIFEST_MISMATCH / MANIFEST_MISSING at its inference", async () => {
    const d = copy();
    const lines = ledgerLines(d);
    const at = lines.findIndex((l) => l.includes('"event_type": "INFERENCE_EXECUTED"'));
    const eventId = (JSON.parse(lines[at]!) as { payload: { event_id: string } }).payload.event_id;
    const r = withReference(d, `g.tamper_repro_manifest(${JSON.stringify(join(d, 'manifest_store'))}, ${JSON.stringify(eventId)})`);
    assert.equal(r.status, 0, r.stderr);
    await expectDefect(d, 'MANIFEST_MISMATCH', at);
    unlinkSync(join(d, 'manifest_store', `repro_${eventId}.json`));
    await expectDefect(d, 'MANIFEST_MISSING', at);
  });

  it('the first defect is reported: a broken link before an edited line', async () => {
    const d = copy();
    const lines = ledgerLines(d);
    lines[30] = lines[30]!.replace(/"purpose": "[a-z_]+"/, '"purpose": "tampered_purpose"');
    writeLines(d, [...lines.slice(0, 12), ...lines.slice(13)]);
    await expectDefect(d, 'BROKEN_LINK', 12);
  });

  it('a second genesis line, or a field outside the entry hash: MISPLACED_GENESIS / MALFORMED_LINE', async () => {
    const d = copy();
    const lines = ledgerLines(d);
    writeLines(d, [...lines.slice(0, 5), '{"genesis": true, "created_at_ms": 1}', ...lines.slice(5)]);
    await expectDefect(d, 'MISPLACED_GENESIS', 5);
    const e = copy();
    const l2 = ledgerLines(e);
    l2[7] = l2[7]!.replace(/}$/, ', "approved_by": "someone"}');
    writeLines(e, l2);
    assert.equal(referenceVerdict(e), 'True', 'the reference does not see a field its hash does not cover');
    await expectDefect(e, 'MALFORMED_LINE', 7);
  });

  it('benign reformatting (keys reordered, whitespace) of a line, a policy and a manifest raises no alarm', async () => {
    const d = copy();
    const lines = ledgerLines(d);
    // Lines 1..8 are CONSENT_CREATED (no floats): JSON.parse keeps their values exactly.
    const reordered = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).reverse());
    const row = JSON.parse(lines[3]!) as Record<string, unknown>;
    lines[3] = `  ${JSON.stringify({ ...reordered(row), payload: reordered(row['payload'] as Record<string, unknown>) }, null, 0)
      .replace(/,/g, ' ,  ')
      .replace(/:/g, ' : ')}\t`;
    writeLines(d, lines);
    const policyFile = join(d, 'policy_store', 'consent_0001.json');
    writeFileSync(policyFile, JSON.stringify(reordered(JSON.parse(readFileSync(policyFile, 'utf8')) as Record<string, unknown>), null, 2));
    const at = lines.findIndex((l) => l.includes('"event_type": "INFERENCE_EXECUTED"'));
    const eventId = (JSON.parse(lines[at]!) as { payload: { event_id: string } }).payload.event_id;
    const manifestFile = join(d, 'manifest_store', `repro_${eventId}.json`);
    writeFileSync(manifestFile, `${JSON.stringify(JSON.parse(readFileSync(manifestFile, 'utf8')), null, 4)}\n`);
    const data = await freshLog();
    const rep = okJson<Report>(await callIn(data, ['--json', 'import', 'reference-ledger', d]));
    assert.equal(rep.head, (JSON.parse(lines.at(-1)!) as { entry_hash: string }).entry_hash);
    assert.equal(okJson<{ ok: boolean }>(await callIn(data, ['--json', 'verify'])).ok, true);
  });

  it('a re-import is refused (LEGACY_ALREADY_IMPORTED, nothing written); a dry run says it was imported', async () => {
    const data = await freshLog();
    okJson(await callIn(data, ['--json', 'import', 'reference-ledger', clean]));
    const size = await entriesOf(data);
    const again = await callIn(data, ['import', 'reference-ledger', clean]);
    assertError(again, EXIT.conflict, 'LEGACY_ALREADY_IMPORTED', { message: /line 0 is log entry 0/ });
    assert.equal(await entriesOf(data), size);
    const dry = okJson<Report>(await callIn(data, ['--json', 'import', 'reference-ledger', clean, '--dry-run']));
    assert.deepEqual(dry.alreadyImported, { line: 0, index: 0 });
    // A ledger that grew after the import shares its lines: refused too.
    const grown = copy();
    const r = withReference(grown, `l = g.LocalLedger(${JSON.stringify(join(grown, 'ledger.jsonl'))})\nl.append("CUSTOM_EVENT", {"k": 1})`);
    assert.equal(r.status, 0, r.stderr);
    assertError(await callIn(data, ['import', 'reference-ledger', grown]), EXIT.conflict, 'LEGACY_ALREADY_IMPORTED');
  });

  it('custos append refuses the legacy types (only the import writes them)', async () => {
    const data = await freshLog();
    const payload = join(tmp.path, 'forged.json');
    writeFileSync(payload, JSON.stringify({ line: 0, legacyType: 'GENESIS', uris: [], documents: { line: 'ab'.repeat(32) } }));
    for (const type of ['LEGACY_EVENT', 'LEGACY_IMPORT_COMPLETED']) {
      const r = await callIn(data, ['append', '--type', type, '--payload-file', payload]);
      assertError(r, EXIT.validation, 'VALIDATION_FAILED', { message: /reserved/ });
    }
    assert.equal(await entriesOf(data), 0);
  });

  it('--ledger picks the file; a missing ledger is FILE_UNREADABLE', async () => {
    const d = copy();
    const data = await freshLog();
    rmSync(join(d, 'ledger.jsonl'));
    assertError(await callIn(data, ['import', 'reference-ledger', d]), EXIT.validation, 'FILE_UNREADABLE');
    const rep = okJson<Report>(await callIn(data, ['--json', 'import', 'reference-ledger', d, '--ledger', join(clean, 'ledger.jsonl'), '--dry-run']));
    assert.equal(rep.ok, true);
    // The layout demo() writes: the one *.jsonl in DIR/ledger/ (two of them: choose with --ledger).
    mkdirSync(join(d, 'ledger'));
    cpSync(join(clean, 'ledger.jsonl'), join(d, 'ledger', 'clinical_governance_ledger.jsonl'));
    assert.equal(okJson<Report>(await callIn(data, ['--json', 'import', 'reference-ledger', d, '--dry-run'])).lines, ledgerLines(clean).length);
    cpSync(join(clean, 'ledger.jsonl'), join(d, 'ledger', 'other.jsonl'));
    assertError(await callIn(data, ['import', 'reference-ledger', d, '--dry-run']), EXIT.validation, 'VALIDATION_FAILED', { message: /choose one with --ledger/ });
  });

  it('a legacy line document can be erased by its hash (it holds identifiers in clear); custos verify still passes', async () => {
    const data = await freshLog();
    okJson(await callIn(data, ['--json', 'import', 'reference-ledger', clean]));
    const legacy = (await listAll(data)).find((e) => e.type === 'LEGACY_EVENT' && e.payload['legacyType'] === 'CONSENT_CREATED')!;
    const hash = (legacy.payload['documents'] as Record<string, string>)['line']!;
    okJson(await callIn(data, ['--json', 'erase', '--document', hash, '--actor', 'privacy-1', '--actor-role', 'privacy_officer']));
    const v = okJson<{ ok: boolean; documents: { documentsErased: number } }>(await callIn(data, ['--json', 'verify']));
    assert.equal(v.ok, true);
    assert.equal(v.documents.documentsErased, 1);
  });

  it('a stored legacy line edited after the import is caught by custos verify (DOCUMENT_EDITED)', async () => {
    const data = await freshLog();
    okJson(await callIn(data, ['--json', 'import', 'reference-ledger', clean]));
    const legacy = (await listAll(data)).find((e) => e.type === 'LEGACY_EVENT' && e.payload['legacyType'] === 'CONSENT_CREATED')!;
    const hash = (legacy.payload['documents'] as Record<string, string>)['line'];
    const db = new Database(join(data, 'custos.db'));
    try {
      const { data: bytes } = db.prepare('SELECT data FROM documents WHERE hash = ?').get(hash) as { data: Buffer };
      const edited = Buffer.from(bytes.toString('utf8').replace('"revocable": true', '"revocable": false'));
      assert.notDeepEqual(edited, bytes);
      assert.equal(db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(edited, hash).changes, 1);
    } finally {
      db.close();
    }
    const r = await callIn(data, ['--json', 'verify']);
    assert.equal(r.code, EXIT.verification, r.stderr);
    const rep = parseJson<{ ok: boolean; documents: { findings: { kind: string; ref: string; eventIndex?: number }[] } }>(r);
    assert.equal(rep.ok, false);
    assert.deepEqual(
      rep.documents.findings.map((f) => [f.kind, f.ref, f.eventIndex]),
      [['DOCUMENT_EDITED', hash, legacy.index]],
    );
  });
});
