/**
 * End-to-end tests of the `custos` command line: every test runs the built CLI against a data
 * directory in a fresh temporary directory, and checks the exit code, the JSON on stdout and the
 * one-line `custos: <CODE>: ...` error on stderr. The CLI runs in this process (`callCli`, the
 * `run()` that bin/custos.js calls), except where the process is the point: the bin itself (help,
 * exit status), appends from several processes at once, and the demo's TMPDIR.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { verifyConsistency } from '../src/core/merkle/consistency.js';
import { computeRoot } from '../src/core/merkle/tree.js';
import { openCheckpoint } from '../src/core/checkpoint.js';
import { parseVerifierKey } from '../src/core/note.js';
import { canonicalJson } from '../src/core/canonical-json.js';
import { assertError, assertNoSecrets, assertOk, ensureBuilt, EXIT, makeTempDir, okJson, parseCsv, parseJson, registerSecret, callCli, callIn, runCli, runIn, type CliResult } from './helpers/cli.js';

// ---------------------------------------------------------------------------------------------
// Small helpers

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const HEX64 = /^[0-9a-f]{64}$/;
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** RFC 9162 leaf hash of an entry object, computed independently: SHA-256(0x00 || canonical JSON). */
function leafHashOf(entry: unknown): string {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from([0]), Buffer.from(canonicalJson(entry), 'utf8')]))
    .digest('hex');
}

interface AppendJson {
  index: number;
  leafHash: string;
  treeSize: number;
  rootHash: string;
  checkpoint: string;
}

interface StatsJson {
  origin: string;
  dataDir: string;
  backend: string;
  entries: number;
  treeSize: number;
  rootHash: string | null;
  checkpoints: number;
  bytesOnDisk: number;
  bytesPerEntry: number | null;
  lastUpdate: string | null;
}

interface ListItem {
  index: number;
  leafHash: string;
  time: string;
  type: string;
  payload: Record<string, unknown>;
}

interface ExportEntry {
  index: number;
  leafHash: string;
  entry: { index: number; payload: Record<string, unknown>; time: string; type: string; v: number };
}

interface ExportJson {
  origin: string;
  verifierKey: string;
  treeSize: number;
  rootHash: string | null;
  checkpoint: string | null;
  entries: ExportEntry[];
}

async function stats(dataDir: string): Promise<StatsJson> {
  return okJson<StatsJson>(await callIn(dataDir, ['stats', '--json']));
}

async function initLog(dataDir: string, origin?: string): Promise<{ origin: string; verifierKey: string }> {
  const r = okJson<{ dataDir: string; origin: string; verifierKey: string }>(await callIn(dataDir, ['--json', 'init', ...(origin === undefined ? [] : ['--origin', origin])]));
  registerSecret(readFileSync(join(dataDir, 'log.key'), 'utf8'));
  return r;
}

async function appendGeneric(dataDir: string, resource: string, practitioner: string, hash: string): Promise<AppendJson> {
  return okJson<AppendJson>(await callIn(dataDir, ['--json', 'append', '--resource', resource, '--practitioner', practitioner, '--hash', hash]));
}

function assertAppendJson(a: AppendJson, index: number): void {
  assert.deepEqual(Object.keys(a).sort(), ['checkpoint', 'index', 'leafHash', 'rootHash', 'treeSize']);
  assert.equal(a.index, index);
  assert.equal(a.treeSize, index + 1, 'the returned checkpoint covers the new entry');
  assert.match(a.leafHash, HEX64);
  assert.match(a.rootHash, HEX64);
  assert.equal(typeof a.checkpoint, 'string');
  const lines = a.checkpoint.split('\n');
  assert.equal(lines[1], String(a.treeSize), 'checkpoint body names the tree size');
  assert.equal(Buffer.from(lines[2]!, 'base64').toString('hex'), a.rootHash, 'checkpoint body holds the root hash');
}

/**
 * Alters the stored bytes of entry `index` in a Custos SQLite file, replacing `from` with `to`
 * (same length, so length-prefixed layouts stay well formed) and leaving every hash untouched.
 * Handles the row-per-entry schema (`entries.data`) and the tiled one (`entry_tail.data`).
 * Returns how many rows were changed.
 */
function tamperEntryBytes(dbPath: string, index: number, from: string, to: string): number {
  assert.equal(Buffer.byteLength(from), Buffer.byteLength(to));
  const db = new Database(dbPath);
  try {
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
    const table = tables.has('entries') ? 'entries' : tables.has('entry_tail') ? 'entry_tail' : undefined;
    assert.ok(table, `no entry table in ${[...tables].join(', ')}`);
    const data = db.prepare(`SELECT data FROM ${table} WHERE idx = ?`).pluck().get(index) as Buffer | string | undefined;
    assert.ok(data !== undefined, `entry ${index} not found in ${table}`);
    const bytes = Buffer.from(data);
    const at = bytes.indexOf(from);
    assert.ok(at >= 0, `entry ${index} does not contain ${from}`);
    Buffer.from(to).copy(bytes, at);
    return db.prepare(`UPDATE ${table} SET data = ? WHERE idx = ?`).run(bytes, index).changes;
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------

const tmp = makeTempDir();
/** A fresh, not-yet-existing path under the suite's temporary directory. */
let counter = 0;
const fresh = (name: string): string => join(tmp.path, `${name}-${++counter}`);

before(() => {
  ensureBuilt();
});

after(() => {
  tmp.cleanup();
});

describe('custos init', () => {
  it('creates the data directory, a 0600 signing key and the store, and never prints the key', async () => {
    const dir = fresh('init');
    const r = await callIn(dir, ['--json', 'init', '--origin', 'example.org/audit-log']);
    const out = okJson<{ dataDir: string; origin: string; verifierKey: string }>(r);
    assert.deepEqual(Object.keys(out).sort(), ['dataDir', 'origin', 'verifierKey']);
    assert.equal(out.dataDir, dir);
    assert.equal(out.origin, 'example.org/audit-log');
    assert.ok(out.verifierKey.startsWith('example.org/audit-log+'), out.verifierKey);
    parseVerifierKey(out.verifierKey); // well formed

    assert.ok(statSync(dir).isDirectory());
    assert.equal(statSync(dir).mode & 0o777, 0o700, 'data directory is private');
    assert.ok(existsSync(join(dir, 'custos.db')));
    const keyPath = join(dir, 'log.key');
    assert.equal(statSync(keyPath).mode & 0o777, 0o600, 'log.key has mode 0600');
    const keyText = readFileSync(keyPath, 'utf8');
    assert.ok(keyText.startsWith('PRIVATE+KEY+example.org/audit-log+'), 'log.key holds a note signer key');
    registerSecret(keyText);
    assert.equal(readFileSync(join(dir, 'log.pub'), 'utf8').trim(), out.verifierKey);
    assertNoSecrets(r.stdout + r.stderr, 'init output');

    // The human-readable form does not print it either (callCli and runCli also check every run of every test for PRIVATE+KEY).
    const human = await callIn(fresh('init-human'), ['init']);
    assertOk(human);
    assert.match(human.stdout, /^initialized: /m);
    assert.match(human.stdout, /log\.key \(mode 0600/);
    const k = await callIn(dir, ['key']);
    assertOk(k);
    assert.equal(k.stdout, `${out.verifierKey}\n`);
    assertNoSecrets(k.stdout, 'key output');
  });

  it('uses CUSTOS_DATA_DIR when --data-dir is not given', async () => {
    const dir = fresh('env');
    const out = okJson<{ dataDir: string }>(await callCli(['--json', 'init'], { env: { CUSTOS_DATA_DIR: dir } }));
    assert.equal(out.dataDir, dir);
    registerSecret(readFileSync(join(dir, 'log.key'), 'utf8'));
    const s = okJson<StatsJson>(await callCli(['stats', '--json'], { env: { CUSTOS_DATA_DIR: dir } }));
    assert.equal(s.dataDir, dir);
    assert.equal(s.entries, 0);
    // --data-dir wins over the environment.
    const missing = fresh('missing');
    const r = await callCli(['--data-dir', missing, 'stats'], { env: { CUSTOS_DATA_DIR: dir } });
    assertError(r, EXIT.notFound, 'DATA_DIR_NOT_FOUND');
  });

  it('refuses to initialize twice (exit 5, DATA_DIR_EXISTS) and keeps the original key', async () => {
    const dir = fresh('twice');
    await initLog(dir);
    const keyBefore = readFileSync(join(dir, 'log.key'), 'utf8');
    const pubBefore = readFileSync(join(dir, 'log.pub'), 'utf8');
    const r = await callIn(dir, ['init']);
    assertError(r, EXIT.conflict, 'DATA_DIR_EXISTS');
    const r2 = await callIn(dir, ['--json', 'init', '--origin', 'other.example/log']);
    assertError(r2, EXIT.conflict, 'DATA_DIR_EXISTS');
    assert.equal(readFileSync(join(dir, 'log.key'), 'utf8'), keyBefore);
    assert.equal(readFileSync(join(dir, 'log.pub'), 'utf8'), pubBefore);
  });

  it('initializes an existing empty directory', async () => {
    const dir = fresh('empty');
    mkdirSync(dir);
    await initLog(dir);
    assert.ok(existsSync(join(dir, 'custos.db')));
  });

  for (const bad of ['has space', 'a+b', '', 'x'.repeat(201)]) {
    it(`rejects --origin ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 8)}...(${bad.length})` : bad)} with exit 2 and creates nothing`, async () => {
      const dir = fresh('bad-origin');
      const r = await callIn(dir, ['init', '--origin', bad]);
      assertError(r, EXIT.validation, 'VALIDATION_FAILED');
      assert.equal(existsSync(dir), false, 'no data directory was created');
    });
  }

  it('init on a path that is a regular file fails with a clean error (not INTERNAL)', async () => {
    const file = fresh('a-file');
    writeFileSync(file, 'not a directory');
    const r = await callIn(file, ['init']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^custos: FILE_UNREADABLE: [^\n]*\n$/);
  });
});

describe('custos append', () => {
  let dir: string;
  const H = sha256Hex('Report Finalized');

  before(async () => {
    dir = fresh('append');
    await initLog(dir, 'append.test/log');
  });

  it('appends a generic audit event and returns index, leaf hash, tree size, root and signed checkpoint', async () => {
    const a0 = await appendGeneric(dir, 'report/rad-2026-0001', 'practitioner/dr-okafor', H);
    assertAppendJson(a0, 0);
    assert.equal(a0.rootHash, a0.leafHash, 'a one-entry tree has the leaf as root');
    const a1 = await appendGeneric(dir, 'claim/clm-88812', 'practitioner/dr-okafor', sha256Hex('Claim Submitted').toUpperCase());
    assertAppendJson(a1, 1);
    assert.notEqual(a1.rootHash, a0.rootHash);
    const v = parseVerifierKey(readFileSync(join(dir, 'log.pub'), 'utf8').trim());
    const cp = openCheckpoint(a1.checkpoint, [v], 'append.test/log');
    assert.equal(cp.treeSize, 2);
    assert.equal(Buffer.from(cp.rootHash).toString('hex'), a1.rootHash);

    const items = okJson<ListItem[]>(await callIn(dir, ['--json', 'list', '--oldest-first']));
    assert.equal(items.length, 2);
    assert.equal(items[0]!.type, 'AUDIT_EVENT');
    assert.deepEqual(items[0]!.payload, { contentHash: H, practitioner: 'practitioner/dr-okafor', resource: 'report/rad-2026-0001' });
    assert.equal(items[1]!.payload['contentHash'], sha256Hex('Claim Submitted'), 'the content hash is stored in lowercase');
    assert.equal(items[0]!.leafHash, a0.leafHash);
    assert.equal(items[1]!.leafHash, a1.leafHash);
  });

  it('appends --type with --payload-file from a file and from stdin ("-"), indices increasing', async () => {
    const before = (await stats(dir)).entries;
    const file = join(tmp.path, 'consent.json');
    writeFileSync(file, JSON.stringify({ patient: 'patient/p-1', scope: ['imaging', 'billing'], granted: true }));
    const a = okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'CONSENT_GRANTED', '--payload-file', file]));
    assertAppendJson(a, before);
    const b = okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'consent.revoked', '--payload-file', '-'], { input: '{"patient":"patient/p-1","reason":"request"}\n' }));
    assertAppendJson(b, before + 1);
    // The human-readable form.
    const c = await callIn(dir, ['append', '--type', 'Note', '--payload-file', '-'], { input: '{"z":1,"a":{"y":[1,2,3]}}' });
    assertOk(c);
    assert.match(c.stdout, new RegExp(`^appended: +entry ${before + 2}$`, 'm'));

    const items = okJson<ListItem[]>(await callIn(dir, ['--json', 'list', '--limit', '3']));
    assert.deepEqual(
      items.map((i) => [i.index, i.type]),
      [
        [before + 2, 'Note'],
        [before + 1, 'consent.revoked'],
        [before, 'CONSENT_GRANTED'],
      ],
    );
    assert.deepEqual(items[2]!.payload, { patient: 'patient/p-1', scope: ['imaging', 'billing'], granted: true });
    assert.deepEqual(items[1]!.payload, { patient: 'patient/p-1', reason: 'request' });
    assert.equal((await stats(dir)).entries, before + 3);
  });

  it('appends the README examples: an operator-defined type of identifiers and codes, and AUDIT_EVENT from a payload file', async () => {
    const before = (await stats(dir)).entries;
    const a = okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'TRIAGE_DECISION', '--payload-file', '-'], { input: '{"model":"triage-v3","decision":"refer"}\n' }));
    assertAppendJson(a, before);
    const file = join(tmp.path, 'audit-event.json');
    writeFileSync(file, JSON.stringify({ resource: 'report/rad-0001', practitioner: 'dr-okafor', contentHash: H }));
    assertAppendJson(okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'AUDIT_EVENT', '--payload-file', file])), before + 1);
    // A generic event under an operator-defined type.
    assertAppendJson(okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'REPORT_SIGNED', '--resource', 'report/rad-0001', '--practitioner', 'dr-okafor', '--hash', H])), before + 2);
  });

  describe('rejects bad input with nothing written', { concurrency: true }, () => {
    let baseline: StatsJson;
    let files: Record<string, string>;

    before(async () => {
      baseline = await stats(dir);
      assert.ok(baseline.entries > 0);
      const p = (name: string, text: string) => {
        const f = join(tmp.path, name);
        writeFileSync(f, text);
        return f;
      };
      files = {
        good: p('good.json', '{"a":1}'),
        invalid: p('invalid.json', '{"a":1'),
        array: p('array.json', '[{"a":1}]'),
        nul: p('null.json', 'null'),
        // Over 64 KiB of identifiers (free text is refused before its size matters).
        big: p('big.json', JSON.stringify(Object.fromEntries(Array.from({ length: 700 }, (_, i) => [`k${i}`, 'x'.repeat(100)])))),
        freeText: p('free-text.json', JSON.stringify({ patient: 'patient John Smith DOB 1970-01-01 MRN 00012345' })),
        nestedFreeText: p('nested-free-text.json', JSON.stringify({ a: { b: ['ok', 'John Smith'] } })),
        freeKey: p('free-key.json', JSON.stringify({ 'MRN 00012345 John Smith': 1 })),
        nullValue: p('null-value.json', '{"a":null}'),
        auditEventExtra: p('audit-event-extra.json', JSON.stringify({ resource: 'r', practitioner: 'p', contentHash: H, note: 'x' })),
        surrogate: p('surrogate.json', '{"a":"\\ud800"}'),
        infinity: p('infinity.json', '{"a":1e400}'),
        dir: tmp.path,
      };
    });

    const cases: { name: string; args: () => string[]; code: string; input?: string; exit?: number }[] = [
      { name: 'a hash of 63 hex digits', args: () => ['append', '--resource', 'r', '--practitioner', 'p', '--hash', 'a'.repeat(63)], code: 'HASH_MALFORMED' },
      { name: 'a non-hex hash', args: () => ['append', '--resource', 'r', '--practitioner', 'p', '--hash', 'g'.repeat(64)], code: 'HASH_MALFORMED' },
      { name: 'missing --practitioner', args: () => ['append', '--resource', 'r', '--hash', H], code: 'VALIDATION_FAILED' },
      { name: 'missing --hash', args: () => ['append', '--resource', 'r', '--practitioner', 'p'], code: 'VALIDATION_FAILED' },
      { name: 'an invalid --resource id', args: () => ['append', '--resource', 'bad id', '--practitioner', 'p', '--hash', H], code: 'VALIDATION_FAILED' },
      {
        name: 'generic options together with --payload-file',
        args: () => ['append', '--resource', 'r', '--practitioner', 'p', '--hash', H, '--payload-file', files['good']!],
        code: 'VALIDATION_FAILED',
      },
      { name: 'no event at all', args: () => ['append'], code: 'VALIDATION_FAILED' },
      { name: '--type without --payload-file', args: () => ['append', '--type', 'X'], code: 'VALIDATION_FAILED' },
      { name: '--payload-file without --type', args: () => ['append', '--payload-file', files['good']!], code: 'VALIDATION_FAILED' },
      { name: 'an unreadable (missing) payload file', args: () => ['append', '--type', 'X', '--payload-file', join(tmp.path, 'does-not-exist.json')], code: 'FILE_UNREADABLE' },
      { name: 'a payload file that is a directory', args: () => ['append', '--type', 'X', '--payload-file', files['dir']!], code: 'FILE_UNREADABLE' },
      { name: 'invalid JSON in the payload file', args: () => ['append', '--type', 'X', '--payload-file', files['invalid']!], code: 'VALIDATION_FAILED' },
      { name: 'invalid JSON on stdin', args: () => ['append', '--type', 'X', '--payload-file', '-'], input: '{"a":', code: 'VALIDATION_FAILED' },
      { name: 'an empty stdin', args: () => ['append', '--type', 'X', '--payload-file', '-'], input: '', code: 'VALIDATION_FAILED' },
      { name: 'a payload that is an array', args: () => ['append', '--type', 'X', '--payload-file', files['array']!], code: 'VALIDATION_FAILED' },
      { name: 'a payload that is null', args: () => ['append', '--type', 'X', '--payload-file', files['nul']!], code: 'VALIDATION_FAILED' },
      { name: 'a payload over 64 KiB', args: () => ['append', '--type', 'X', '--payload-file', files['big']!], code: 'VALIDATION_FAILED' },
      { name: 'a payload with a lone surrogate', args: () => ['append', '--type', 'X', '--payload-file', files['surrogate']!], code: 'CANONICAL_JSON_UNSUPPORTED_VALUE' },
      { name: 'a payload with a number that overflows to Infinity', args: () => ['append', '--type', 'X', '--payload-file', files['infinity']!], code: 'CANONICAL_JSON_UNSUPPORTED_VALUE' },
      { name: 'a --type starting with a digit', args: () => ['append', '--type', '1bad', '--payload-file', files['good']!], code: 'VALIDATION_FAILED' },
      { name: 'a --type with a space', args: () => ['append', '--type', 'bad type', '--payload-file', files['good']!], code: 'VALIDATION_FAILED' },
      { name: 'a --type longer than 64 characters', args: () => ['append', '--type', `T${'x'.repeat(64)}`, '--payload-file', files['good']!], code: 'VALIDATION_FAILED' },
      { name: 'a bad --type on a generic event', args: () => ['append', '--type', 'no/slash', '--resource', 'r', '--practitioner', 'p', '--hash', H], code: 'VALIDATION_FAILED' },
      { name: 'an unknown option', args: () => ['append', '--resource', 'r', '--practitioner', 'p', '--hash', H, '--frobnicate'], code: 'VALIDATION_FAILED' },
      // #9.3: reserved types on the generic form too, and no free text anywhere in a payload.
      {
        name: 'a reserved --type on a generic event (TOKEN_REVOKED)',
        args: () => ['append', '--type', 'TOKEN_REVOKED', '--resource', 'r', '--practitioner', 'p', '--hash', H],
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'a reserved --type on a generic event (CONSENT_CREATED)',
        args: () => ['append', '--type', 'CONSENT_CREATED', '--resource', 'r', '--practitioner', 'p', '--hash', H],
        code: 'VALIDATION_FAILED',
      },
      { name: 'a reserved --type with a payload file (SECURITY_ALERT)', args: () => ['append', '--type', 'SECURITY_ALERT', '--payload-file', files['good']!], code: 'VALIDATION_FAILED' },
      { name: 'free text in an operator-defined payload', args: () => ['append', '--type', 'X', '--payload-file', files['freeText']!], code: 'VALIDATION_FAILED' },
      { name: 'free text nested in an array', args: () => ['append', '--type', 'X', '--payload-file', files['nestedFreeText']!], code: 'VALIDATION_FAILED' },
      { name: 'free text in a key', args: () => ['append', '--type', 'X', '--payload-file', files['freeKey']!], code: 'VALIDATION_FAILED' },
      { name: 'a null value', args: () => ['append', '--type', 'X', '--payload-file', files['nullValue']!], code: 'VALIDATION_FAILED' },
      { name: 'free text on stdin', args: () => ['append', '--type', 'X', '--payload-file', '-'], input: '{"note":"seen by Dr Smith"}', code: 'VALIDATION_FAILED' },
      {
        name: 'an AUDIT_EVENT payload with a field the registry does not declare',
        args: () => ['append', '--type', 'AUDIT_EVENT', '--payload-file', files['auditEventExtra']!],
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'a registered type on the generic form whose fields do not fit it (TRAINING_EXECUTED is reserved)',
        args: () => ['append', '--type', 'TRAINING_EXECUTED', '--resource', 'r', '--practitioner', 'p', '--hash', H],
        code: 'VALIDATION_FAILED',
      },
    ];

    for (const c of cases) {
      it(`${c.name} -> exit ${c.exit ?? EXIT.validation} ${c.code}`, async () => {
        const r = await callIn(dir, c.args(), c.input === undefined ? {} : { input: c.input });
        assertError(r, c.exit ?? EXIT.validation, c.code);
        const s = await stats(dir);
        assert.equal(s.entries, baseline.entries, 'entry count unchanged');
        assert.equal(s.checkpoints, baseline.checkpoints, 'no checkpoint was signed');
        assert.equal(s.rootHash, baseline.rootHash);
      });
    }
  });

  it('fails with exit 3 DATA_DIR_NOT_FOUND on a missing data directory, and does not create it', async () => {
    const missing = fresh('no-such-log');
    const r = await callIn(missing, ['--json', 'append', '--resource', 'r', '--practitioner', 'p', '--hash', H]);
    assertError(r, EXIT.notFound, 'DATA_DIR_NOT_FOUND');
    assert.equal(existsSync(missing), false);
    const r2 = await callCli(['--json', 'append', '--type', 'X', '--payload-file', '-'], { env: { CUSTOS_DATA_DIR: missing }, input: '{"a":1}' });
    assertError(r2, EXIT.notFound, 'DATA_DIR_NOT_FOUND');
    assert.equal(existsSync(missing), false);
  });

  it("refuses to append without the signing key (exit 3 KEY_NOT_FOUND) or with another log's key (exit 4)", async () => {
    const d = fresh('keyless');
    await initLog(d);
    const other = fresh('other-key');
    await initLog(other);
    rmSync(join(d, 'log.key'));
    assertError(await callIn(d, ['append', '--resource', 'r', '--practitioner', 'p', '--hash', H]), EXIT.notFound, 'KEY_NOT_FOUND');
    cpSync(join(other, 'log.key'), join(d, 'log.key'));
    assertError(await callIn(d, ['append', '--resource', 'r', '--practitioner', 'p', '--hash', H]), EXIT.verification, 'KEY_MALFORMED');
    assert.equal((await stats(d)).entries, 0);
  });

  it('serializes concurrent appends from several processes into distinct indices', async () => {
    const d = fresh('concurrent');
    await initLog(d);
    // Child processes: the point is SQLite's locking between processes.
    const results = await Promise.all([0, 1, 2, 3].map((i) => runIn(d, ['--json', 'append', '--resource', `r-${i}`, '--practitioner', 'p', '--hash', sha256Hex(String(i))])));
    const indices = results.map((r) => okJson<AppendJson>(r).index).sort();
    assert.deepEqual(indices, [0, 1, 2, 3]);
    const v = okJson<{ ok: boolean; entries: number }>(await callIn(d, ['--json', 'verify']));
    assert.equal(v.ok, true);
    assert.equal(v.entries, 4);
  });
});

// ---------------------------------------------------------------------------------------------
// Read-only commands share one five-entry log (and a second, unrelated log for key mismatches).

describe('read-only commands on a five-entry log', () => {
  let dir: string;
  let otherDir: string;
  let origin: string;
  let verifierKey: string;
  let otherKey: string;
  let tamperedDir: string;
  const appended: AppendJson[] = [];
  // Operator-defined payloads hold identifiers, codes, numbers and booleans only (#9.3: no free text).
  const consent1 = { patient: 'patient/p-1', scope: ['imaging'], note: 'code:v2/a.b_c-d@e', granted: true, priority: 3 };
  const consent2 = { patient: 'patient/p-2', label: 'urn:oid:2.16.840.1.113883', nested: { level: [1, 2.5, -3] } };

  before(async () => {
    dir = fresh('log5');
    otherDir = fresh('other');
    const [init, other] = await Promise.all([initLog(dir, 'read.test/log'), initLog(otherDir, 'other.test/log')]);
    origin = init.origin;
    verifierKey = init.verifierKey;
    otherKey = other.verifierKey;
    const otherAppend = callIn(otherDir, ['append', '--resource', 'r', '--practitioner', 'p', '--hash', sha256Hex('other')]);
    const file = join(tmp.path, 'consent1.json');
    writeFileSync(file, JSON.stringify(consent1));
    appended.push(await appendGeneric(dir, 'report/rad-1', 'practitioner/dr-a', sha256Hex('a')));
    appended.push(await appendGeneric(dir, 'report/rad-2', 'practitioner/dr-b', sha256Hex('b')));
    appended.push(okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'CONSENT_GRANTED', '--payload-file', file])));
    appended.push(await appendGeneric(dir, 'claim/clm-1', 'practitioner/dr-a', sha256Hex('c')));
    appended.push(okJson<AppendJson>(await callIn(dir, ['--json', 'append', '--type', 'CONSENT_GRANTED', '--payload-file', '-'], { input: JSON.stringify(consent2) })));
    assertOk(await otherAppend);
    appended.forEach((a, i) => assertAppendJson(a, i));
    // A copy to tamper with, taken while no process has the log open.
    tamperedDir = fresh('tampered');
    cpSync(dir, tamperedDir, { recursive: true });
  });

  describe('verify', { concurrency: true }, () => {
    it('verifies the whole log: --json ok:true, exit 0', async () => {
      const v = okJson<Record<string, unknown>>(await callIn(dir, ['--json', 'verify']));
      assert.equal(v['ok'], true);
      assert.equal(v['entries'], 5);
      assert.equal(v['checkpointSize'], 5);
      // Issue 11: init signs the empty tree's checkpoint (size 0), then one per append.
      assert.equal(v['checkpointsChecked'], 6);
      assert.equal(v['rootHex'], appended[4]!.rootHash);
      assert.deepEqual(v['findings'], []);
      assert.equal(v['firstBadIndex'], undefined);
      const human = await callIn(dir, ['verify', '--no-progress']);
      assertOk(human);
      assert.match(human.stdout, /^verified: +5 entries/m);
    });

    it('verifies with a trusted --key given as a string or as a file', async () => {
      assert.equal(okJson<{ ok: boolean }>(await callIn(dir, ['--json', 'verify', '--key', verifierKey])).ok, true);
      const v = okJson<{ ok: boolean; trustedKeys: string }>(await callIn(dir, ['--json', 'verify', '--key', join(dir, 'log.pub')]));
      assert.equal(v.ok, true);
      assert.equal(v.trustedKeys, '--key');
    });

    it("fails with exit 4 when --key is another log's key (string or file)", async () => {
      const r = await callIn(dir, ['--json', 'verify', '--key', otherKey]);
      assertError(r, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
      const v = parseJson<{ ok: boolean; findings: unknown[] }>(r);
      assert.equal(v.ok, false);
      assert.ok(v.findings.length > 0);
      const r2 = await callIn(dir, ['verify', '--key', join(otherDir, 'log.pub')]);
      assertError(r2, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
      const r3 = await callIn(dir, ['verify', '--entry', '0', '--key', otherKey]);
      assert.equal(r3.code, EXIT.verification, r3.stderr);
      assert.equal(r3.stderr.split('\n').length, 2, r3.stderr);
      assert.match(r3.stderr, /^custos: NOTE_NO_VERIFIABLE_SIGNATURE: /);
    });

    it('rejects a malformed --key with exit 4 KEY_MALFORMED', async () => {
      assertError(await callIn(dir, ['verify', '--key', 'not+a+key']), EXIT.verification, 'KEY_MALFORMED');
    });

    it('verify --entry N prints the entry, its inclusion proof and verified:true', async () => {
      const r = await callIn(dir, ['--json', 'verify', '--entry', '2']);
      const v = okJson<{
        verified: boolean;
        index: number;
        entry: ExportEntry['entry'];
        leafHash: string;
        treeSize: number;
        rootHash: string;
        proof: string[];
        checkpoint: string;
      }>(r);
      assert.equal(v.verified, true);
      assert.equal(v.index, 2);
      assert.equal(v.entry.index, 2);
      assert.equal(v.entry.type, 'CONSENT_GRANTED');
      assert.equal(v.entry.v, 1);
      assert.deepEqual(v.entry.payload, consent1);
      assert.equal(v.leafHash, appended[2]!.leafHash);
      assert.equal(leafHashOf(v.entry), v.leafHash, 'the leaf hash commits to the printed entry');
      assert.equal(v.treeSize, 5);
      assert.equal(v.rootHash, appended[4]!.rootHash);
      // Check the proof independently against the signed checkpoint.
      const cp = openCheckpoint(v.checkpoint, [parseVerifierKey(verifierKey)], origin);
      assert.equal(cp.treeSize, 5);
      verifyInclusion(2, 5, hex(v.leafHash), v.proof.map(hex), cp.rootHash);

      const human = await callIn(dir, ['verify', '--entry', '0']);
      assertOk(human);
      assert.match(human.stdout, /^verified: +entry 0 is included in the signed tree of size 5$/m);
      assert.ok(human.stdout.includes(`${origin}\n5\n`), 'prints the signed checkpoint');
    });

    for (const [arg, code] of [
      ['5', 'INDEX_OUT_OF_RANGE'],
      ['999999', 'INDEX_OUT_OF_RANGE'],
      ['-1', 'VALIDATION_FAILED'],
      ['abc', 'VALIDATION_FAILED'],
      ['1.5', 'VALIDATION_FAILED'],
    ] as const) {
      it(`verify --entry ${arg} -> exit 2 ${code}`, async () => {
        assertError(await callIn(dir, ['verify', '--entry', arg]), EXIT.validation, code);
      });
    }

    describe('after tampering with entry 2 in the SQLite file', () => {
      let bad: string;
      before(() => {
        bad = tamperedDir;
        assert.equal(tamperEntryBytes(join(bad, 'custos.db'), 2, 'patient/p-1', 'patient/p-9'), 1, 'exactly one stored entry was altered');
      });

      it('verify exits 4 with ok:false, firstBadIndex 2 and LOG_VERIFICATION_FAILED on stderr', async () => {
        const r = await callIn(bad, ['--json', 'verify']);
        assertError(r, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true, message: /first bad entry 2/ });
        const v = parseJson<{ ok: boolean; firstBadIndex: number; findings: { kind: string; index: number }[] }>(r);
        assert.equal(v.ok, false);
        assert.equal(v.firstBadIndex, 2);
        assert.ok(v.findings.length > 0);
        assert.ok(
          v.findings.every((f) => f.index >= 2),
          JSON.stringify(v.findings),
        );
        assert.ok(v.findings.some((f) => f.index === 2));

        const human = await callIn(bad, ['verify']);
        assertError(human, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
        assert.match(human.stdout, /at entry 2: /);
      });

      it('verify --entry 2 exits 4; an untouched entry still verifies', async () => {
        const r = await callIn(bad, ['--json', 'verify', '--entry', '2']);
        assert.equal(r.code, EXIT.verification, r.stderr);
        assert.match(r.stderr, /^custos: (LOG_VERIFICATION_FAILED|INCLUSION_PROOF_INVALID): [^\n]*\n$/);
        assert.equal(r.stdout, '');
        assert.equal(okJson<{ verified: boolean }>(await callIn(bad, ['--json', 'verify', '--entry', '1'])).verified, true);
      });

      it('the original log is unaffected', async () => {
        assert.equal(okJson<{ ok: boolean }>(await callIn(dir, ['--json', 'verify'])).ok, true);
      });
    });
  });

  describe('proof', { concurrency: true }, () => {
    interface InclusionJson {
      leafIndex: number;
      treeSize: number;
      leafHash: string;
      rootHash: string;
      proof: string[];
      checkpoint: string | null;
    }
    interface ConsistencyJson {
      oldSize: number;
      newSize: number;
      oldRoot: string;
      newRoot: string;
      proof: string[];
      oldCheckpoint: string | null;
      newCheckpoint: string | null;
    }

    for (const [index, size] of [
      [0, undefined],
      [3, undefined],
      [4, undefined],
      [1, 3],
      [0, 1],
    ] as const) {
      it(`proof inclusion ${index}${size === undefined ? '' : ` --size ${size}`} verifies independently`, async () => {
        const r = await callIn(dir, ['--json', 'proof', 'inclusion', String(index), ...(size === undefined ? [] : ['--size', String(size)])]);
        const p = okJson<InclusionJson>(r);
        const treeSize = size ?? 5;
        assert.equal(p.leafIndex, index);
        assert.equal(p.treeSize, treeSize);
        assert.equal(p.leafHash, appended[index]!.leafHash);
        assert.equal(p.rootHash, appended[treeSize - 1]!.rootHash, 'root of the tree of that size');
        assert.ok(p.checkpoint !== null);
        const cp = openCheckpoint(p.checkpoint, [parseVerifierKey(verifierKey)], origin);
        assert.equal(cp.treeSize, treeSize);
        assert.equal(Buffer.from(cp.rootHash).toString('hex'), p.rootHash);
        verifyInclusion(index, treeSize, hex(p.leafHash), p.proof.map(hex), hex(p.rootHash));
        // The check is not vacuous: a wrong leaf does not verify.
        assert.throws(() => verifyInclusion(index, treeSize, hex(sha256Hex('forged')), p.proof.map(hex), hex(p.rootHash)));
      });
    }

    for (const [m, n] of [
      [1, 5],
      [2, 5],
      [3, 4],
      [5, 5],
    ] as const) {
      it(`proof consistency ${m} ${n} verifies independently`, async () => {
        const p = okJson<ConsistencyJson>(await callIn(dir, ['--json', 'proof', 'consistency', String(m), String(n)]));
        assert.equal(p.oldSize, m);
        assert.equal(p.newSize, n);
        assert.equal(p.oldRoot, appended[m - 1]!.rootHash);
        assert.equal(p.newRoot, appended[n - 1]!.rootHash);
        if (m === n) assert.deepEqual(p.proof, []);
        verifyConsistency(m, n, p.proof.map(hex), hex(p.oldRoot), hex(p.newRoot));
        const v = parseVerifierKey(verifierKey);
        assert.ok(p.oldCheckpoint !== null && p.newCheckpoint !== null);
        assert.equal(Buffer.from(openCheckpoint(p.oldCheckpoint, [v], origin).rootHash).toString('hex'), p.oldRoot);
        assert.equal(Buffer.from(openCheckpoint(p.newCheckpoint, [v], origin).rootHash).toString('hex'), p.newRoot);
        if (m !== n) {
          assert.throws(() => verifyConsistency(m, n, p.proof.map(hex), hex(sha256Hex('forged')), hex(p.newRoot)));
        }
      });
    }

    it('prints a human-readable inclusion proof', async () => {
      const r = await callIn(dir, ['proof', 'inclusion', '2']);
      assertOk(r);
      assert.match(r.stdout, /^leaf index: +2$/m);
      assert.match(r.stdout, /\(signed checkpoint\)/);
    });

    for (const args of [
      ['inclusion', '5'],
      ['inclusion', '0', '--size', '6'],
      ['inclusion', '3', '--size', '3'],
      ['inclusion', '0', '--size', '0'],
      ['consistency', '3', '6'],
      ['consistency', '4', '3'],
      ['consistency', '0', '3'],
    ]) {
      it(`proof ${args.join(' ')} -> exit 2 INDEX_OUT_OF_RANGE`, async () => {
        assertError(await callIn(dir, ['--json', 'proof', ...args]), EXIT.validation, 'INDEX_OUT_OF_RANGE');
      });
    }

    for (const args of [
      ['inclusion', 'abc'],
      ['inclusion', '1.5'],
      ['inclusion', '01'],
      ['inclusion', '1', '--size', 'x'],
      ['consistency', '1', 'two'],
      ['consistency', '1e1', '5'],
    ]) {
      it(`proof ${args.join(' ')} -> exit 2 VALIDATION_FAILED`, async () => {
        assertError(await callIn(dir, ['proof', ...args]), EXIT.validation, 'VALIDATION_FAILED');
      });
    }

    it('proof with a missing argument -> exit 2 VALIDATION_FAILED', async () => {
      assertError(await callIn(dir, ['proof', 'consistency', '1']), EXIT.validation, 'VALIDATION_FAILED');
    });
  });

  describe('checkpoint and key', () => {
    it('prints a signed note that opens with the key printed by `custos key`', async () => {
      const [k, c, cj, s] = await Promise.all([callIn(dir, ['key']), callIn(dir, ['checkpoint']), callIn(dir, ['--json', 'checkpoint']), callIn(dir, ['--json', 'stats'])]);
      assertOk(k);
      assertOk(c);
      const keyText = k.stdout.trim();
      assert.equal(keyText, verifierKey);
      const cp = openCheckpoint(c.stdout, [parseVerifierKey(keyText)], origin);
      assert.equal(cp.origin, origin);
      assert.equal(cp.treeSize, 5);
      assert.equal(Buffer.from(cp.rootHash).toString('hex'), appended[4]!.rootHash);
      assert.equal(Buffer.from(cp.rootHash).toString('hex'), okJson<StatsJson>(s).rootHash);
      assert.equal(c.stdout, appended[4]!.checkpoint, 'the latest checkpoint is the one the last append returned');
      const j = okJson<{ origin: string; treeSize: number; rootHash: string; note: string }>(cj);
      assert.deepEqual(j, { origin, treeSize: 5, rootHash: appended[4]!.rootHash, note: c.stdout });
      // It does not open with another log's key.
      assert.throws(() => openCheckpoint(c.stdout, [parseVerifierKey(otherKey)], origin));
      const kj = okJson<{ origin: string; verifierKey: string }>(await callIn(dir, ['--json', 'key']));
      assert.deepEqual(kj, { origin, verifierKey });
    });

    // Issue 11 changed this: init signs the empty tree's checkpoint (tlog-tiles serves one from the start).
    it('checkpoint on an empty log -> the signed checkpoint of size 0; on a missing log -> exit 3 DATA_DIR_NOT_FOUND', async () => {
      const empty = fresh('empty-log');
      await initLog(empty);
      const cp = okJson<{ treeSize: number; rootHash: string; note: string }>(await callIn(empty, ['--json', 'checkpoint']));
      assert.equal(cp.treeSize, 0);
      assert.equal(cp.rootHash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      assert.match(cp.note, /\n0\n47DEQpj8HBSa\+\/TImW\+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u2014 /);
      assertError(await callIn(fresh('nothing'), ['checkpoint']), EXIT.notFound, 'DATA_DIR_NOT_FOUND');
    });
  });

  describe('list', { concurrency: true }, () => {
    let all: ListItem[];
    before(async () => {
      all = okJson<ListItem[]>(await callIn(dir, ['--json', 'list']));
    });

    it('lists newest first with --json by default', () => {
      assert.deepEqual(
        all.map((i) => i.index),
        [4, 3, 2, 1, 0],
      );
      all.forEach((it) => {
        assert.deepEqual(Object.keys(it).sort(), ['index', 'leafHash', 'payload', 'time', 'type']);
        assert.equal(it.leafHash, appended[it.index]!.leafHash);
        assert.match(it.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      });
      assert.deepEqual(all[0]!.payload, consent2);
      assert.deepEqual(all[2]!.payload, consent1);
      const times = all.map((i) => Date.parse(i.time)).reverse();
      for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!, 'times never decrease with the index');
    });

    it('--limit and --oldest-first', async () => {
      const [a, b] = await Promise.all([callIn(dir, ['--json', 'list', '--limit', '2']), callIn(dir, ['--json', 'list', '--limit', '2', '--oldest-first'])]);
      assert.deepEqual(
        okJson<ListItem[]>(a).map((i) => i.index),
        [4, 3],
      );
      assert.deepEqual(
        okJson<ListItem[]>(b).map((i) => i.index),
        [0, 1],
      );
    });

    it('--type filters by event type', async () => {
      const [a, b, c] = await Promise.all([
        callIn(dir, ['--json', 'list', '--type', 'CONSENT_GRANTED']),
        callIn(dir, ['--json', 'list', '--type', 'AUDIT_EVENT', '--limit', '2']),
        callIn(dir, ['--json', 'list', '--type', 'NO_SUCH_TYPE']),
      ]);
      assert.deepEqual(
        okJson<ListItem[]>(a).map((i) => i.index),
        [4, 2],
      );
      assert.deepEqual(
        okJson<ListItem[]>(b).map((i) => [i.index, i.type]),
        [
          [3, 'AUDIT_EVENT'],
          [1, 'AUDIT_EVENT'],
        ],
      );
      assert.deepEqual(okJson<ListItem[]>(c), []);
    });

    it('--since accepts an age and an RFC 3339 time (inclusive); a future time gives nothing', async () => {
      const t2 = all.find((i) => i.index === 2)!.time;
      const expectedSince2 = all.filter((i) => Date.parse(i.time) >= Date.parse(t2)).map((i) => i.index);
      const [age, future, at2, human] = await Promise.all([
        callIn(dir, ['--json', 'list', '--since', '1h']),
        callIn(dir, ['--json', 'list', '--since', '2999-01-01T00:00:00Z']),
        callIn(dir, ['--json', 'list', '--since', t2]),
        callIn(dir, ['list', '--since', '2999-01-01T00:00:00+02:00']),
      ]);
      assert.deepEqual(
        okJson<ListItem[]>(age).map((i) => i.index),
        [4, 3, 2, 1, 0],
      );
      assert.deepEqual(okJson<ListItem[]>(future), []);
      const since2 = okJson<ListItem[]>(at2).map((i) => i.index);
      assert.deepEqual(since2, expectedSince2);
      assert.ok(since2.includes(2) && !since2.includes(0), JSON.stringify(since2));
      assertOk(human);
      assert.equal(human.stdout, 'no entries\n');
    });

    it('prints one line per entry without --json', async () => {
      const r = await callIn(dir, ['list', '--limit', '3']);
      assertOk(r);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, /^#4 +\S+ +CONSENT_GRANTED +\{/);
    });

    for (const args of [
      ['--since', 'yesterday'],
      ['--since', '1w'],
      ['--since', '2026-13-45T99:00:00Z'],
      ['--limit', '0'],
      ['--limit', 'ten'],
      ['--limit', '100001'],
    ]) {
      it(`list ${args.join(' ')} -> exit 2 VALIDATION_FAILED`, async () => {
        assertError(await callIn(dir, ['--json', 'list', ...args]), EXIT.validation, 'VALIDATION_FAILED');
      });
    }
  });

  describe('stats', () => {
    it('--json reports entries, treeSize, rootHash, bytesOnDisk and lastUpdate', async () => {
      const [s, l] = await Promise.all([stats(dir), callIn(dir, ['--json', 'list', '--limit', '1'])]);
      assert.equal(s.origin, origin);
      assert.equal(s.dataDir, dir);
      assert.equal(s.backend, 'sqlite');
      assert.equal(s.entries, 5);
      assert.equal(s.treeSize, 5);
      assert.equal(s.rootHash, appended[4]!.rootHash);
      assert.equal(s.checkpoints, 6); // issue 11: with the empty tree's checkpoint signed at init
      assert.ok(Number.isSafeInteger(s.bytesOnDisk) && s.bytesOnDisk > 0, String(s.bytesOnDisk));
      assert.equal(s.bytesPerEntry, Math.round(s.bytesOnDisk / 5));
      assert.equal(s.lastUpdate, okJson<ListItem[]>(l)[0]!.time);
      const human = await callIn(dir, ['stats']);
      assertOk(human);
      assert.match(human.stdout, /^entries: +5$/m);
    });

    // Issue 11: an empty log has the empty tree's checkpoint (signed at init), so its root is
    // SHA-256 of the empty string and its last update is the init.
    it('on an empty log: zero entries, the empty root, last update at init; on a missing log: exit 3', async () => {
      const empty = fresh('empty-stats');
      await initLog(empty);
      const s = await stats(empty);
      assert.equal(s.entries, 0);
      assert.equal(s.treeSize, 0);
      assert.equal(s.rootHash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      assert.ok(s.lastUpdate !== null && Number.isFinite(Date.parse(s.lastUpdate)), String(s.lastUpdate));
      assert.equal(s.bytesPerEntry, null);
      assertError(await callIn(fresh('nothing'), ['--json', 'stats']), EXIT.notFound, 'DATA_DIR_NOT_FOUND');
    });
  });

  describe('export', () => {
    let jsonText: string;

    before(async () => {
      const r = await callIn(dir, ['export']);
      assertOk(r);
      jsonText = r.stdout;
    });

    it('--format json (the default) parses; entries re-hash to their leaf hashes and fold to the signed root', () => {
      const e = JSON.parse(jsonText) as ExportJson;
      assert.equal(e.origin, origin);
      assert.equal(e.verifierKey, verifierKey);
      assert.equal(e.treeSize, 5);
      assert.equal(e.rootHash, appended[4]!.rootHash);
      assert.deepEqual(
        e.entries.map((x) => x.index),
        [0, 1, 2, 3, 4],
      );
      for (const x of e.entries) {
        assert.equal(x.entry.index, x.index);
        assert.equal(leafHashOf(x.entry), x.leafHash, `entry ${x.index} re-hashes to its leaf hash`);
        assert.equal(x.leafHash, appended[x.index]!.leafHash);
      }
      assert.deepEqual(e.entries[2]!.entry.payload, consent1);
      assert.deepEqual(e.entries[4]!.entry.payload, consent2);
      const root = computeRoot(e.entries.map((x) => hex(x.leafHash))).toString('hex');
      assert.equal(root, e.rootHash);
      // An auditor needs nothing but the export: the checkpoint opens with the exported key and names that root.
      assert.ok(e.checkpoint !== null);
      const cp = openCheckpoint(e.checkpoint, [parseVerifierKey(e.verifierKey)], e.origin);
      assert.equal(cp.treeSize, e.entries.length);
      assert.equal(Buffer.from(cp.rootHash).toString('hex'), root);
    });

    it('explicit --format json equals the default', async () => {
      const r = await callIn(dir, ['export', '--format', 'json']);
      assertOk(r);
      assert.equal(r.stdout, jsonText);
    });

    it('--format ndjson: one entry per line, same entries as json', async () => {
      const r = await callIn(dir, ['export', '--format', 'ndjson']);
      assertOk(r);
      assert.ok(r.stdout.endsWith('\n'));
      const lines = r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as ExportEntry);
      assert.deepEqual(lines, (JSON.parse(jsonText) as ExportJson).entries);
      for (const x of lines) assert.equal(leafHashOf(x.entry), x.leafHash);
    });

    it('--format csv: RFC 4180 with a header, the entry column re-hashes to leaf_hash; AUDIT_EVENT fields in their own columns', async () => {
      const r = await callIn(dir, ['export', '--format', 'csv']);
      assertOk(r);
      assert.ok(r.stdout.startsWith('index,time,type,leaf_hash,entry,resource,practitioner,content_hash\r\n'));
      const rows = parseCsv(r.stdout);
      assert.deepEqual(rows[0], ['index', 'time', 'type', 'leaf_hash', 'entry', 'resource', 'practitioner', 'content_hash']);
      const body = rows.slice(1);
      assert.equal(body.length, 5);
      const entries = (JSON.parse(jsonText) as ExportJson).entries;
      // issue 14: the generic audit event's fields (resource, practitioner, content hash) as columns,
      // empty on every other event.
      assert.deepEqual(body[0]!.slice(5), ['report/rad-1', 'practitioner/dr-a', sha256Hex('a')]);
      assert.deepEqual(body[1]!.slice(5), ['report/rad-2', 'practitioner/dr-b', sha256Hex('b')]);
      assert.deepEqual(body[2]!.slice(5), ['', '', '']);
      assert.deepEqual(body[3]!.slice(5), ['claim/clm-1', 'practitioner/dr-a', sha256Hex('c')]);
      body.forEach((row, i) => {
        assert.equal(row.length, 8);
        const [index, time, type, leafHash, entryText] = row as [string, string, string, string, string];
        assert.equal(Number(index), i);
        assert.equal(leafHash, appended[i]!.leafHash);
        const entry = JSON.parse(entryText) as ExportEntry['entry'];
        assert.deepEqual(entry, entries[i]!.entry);
        assert.equal(type, entry.type);
        assert.equal(time, entry.time);
        // The CSV field is the exact committed text.
        assert.equal(
          createHash('sha256')
            .update(Buffer.concat([Buffer.from([0]), Buffer.from(entryText, 'utf8')]))
            .digest('hex'),
          leafHash,
        );
      });
    });

    it('--output writes the same bytes to a file (stdout empty, no partial file left)', async () => {
      const outDir = fresh('export-out');
      mkdirSync(outDir);
      const [j, c, n] = await Promise.all([
        callIn(dir, ['export', '--output', join(outDir, 'log.json')]),
        callIn(dir, ['export', '--format', 'csv', '-o', join(outDir, 'log.csv')]),
        callIn(dir, ['export', '--format', 'ndjson', '--output', 'log.ndjson'], { cwd: outDir }),
      ]);
      for (const r of [j, c, n]) {
        assertOk(r);
        assert.equal(r.stdout, '');
      }
      assert.equal(readFileSync(join(outDir, 'log.json'), 'utf8'), jsonText);
      assert.ok(readFileSync(join(outDir, 'log.csv'), 'utf8').startsWith('index,time,type,leaf_hash,entry,resource,practitioner,content_hash\r\n'));
      assert.equal(readFileSync(join(outDir, 'log.ndjson'), 'utf8').trimEnd().split('\n').length, 5);
      assert.deepEqual(readdirSync(outDir).sort(), ['log.csv', 'log.json', 'log.ndjson']);
    });

    it('a bad --format -> exit 2 and no file is created', async () => {
      const outDir = fresh('export-bad');
      mkdirSync(outDir);
      const out = join(outDir, 'log.xml');
      assertError(await callIn(dir, ['export', '--format', 'xml', '--output', out]), EXIT.validation, 'VALIDATION_FAILED');
      assertError(await callIn(dir, ['export', '--format', 'JSON']), EXIT.validation, 'VALIDATION_FAILED');
      assert.deepEqual(readdirSync(outDir), []);
    });

    it('--output into a missing directory or onto a directory -> exit 2 FILE_UNREADABLE', async () => {
      const missingParent = join(fresh('no-dir'), 'log.json');
      assertError(await callIn(dir, ['export', '--output', missingParent]), EXIT.validation, 'FILE_UNREADABLE');
      assert.equal(existsSync(missingParent), false);
      const isDir = fresh('is-dir');
      mkdirSync(isDir);
      assertError(await callIn(dir, ['export', '--output', isDir]), EXIT.validation, 'FILE_UNREADABLE');
      assert.deepEqual(readdirSync(isDir), []);
    });

    it('export of a missing log -> exit 3 and no file', async () => {
      const outDir = fresh('export-missing');
      mkdirSync(outDir);
      assertError(await callIn(fresh('nothing'), ['export', '--output', join(outDir, 'x.json')]), EXIT.notFound, 'DATA_DIR_NOT_FOUND');
      assert.deepEqual(readdirSync(outDir), []);
    });

    it('export of an empty log is valid JSON with no entries', async () => {
      const empty = fresh('empty-export');
      await initLog(empty);
      const r = await callIn(empty, ['export']);
      assertOk(r);
      const e = JSON.parse(r.stdout) as ExportJson;
      assert.equal(e.treeSize, 0);
      // Issue 11: the empty tree's checkpoint, signed at init.
      assert.equal(e.rootHash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      assert.match(String(e.checkpoint), /\n0\n/);
      assert.deepEqual(e.entries, []);
    });
  });
});

describe('custos demo', () => {
  it('exits 0, prints OK and cleans up its temporary directory', async () => {
    const t = fresh('demo-tmp');
    mkdirSync(t);
    // A child process: os.tmpdir() reads the process's own TMPDIR.
    const r = await runCli(['demo'], { env: { TMPDIR: t } });
    assertOk(r);
    assert.match(r.stdout, /\bOK\b/);
    assert.match(r.stdout, /^ {3}log: OK, 11 entries/m);
    // issue 14: the demo shows a model approval and a refused unapproved model.
    assert.match(r.stdout, /refused: MODEL_NOT_APPROVED/);
    assert.match(r.stdout, /MODEL_APPROVED, entry \d+/);
    assert.doesNotMatch(r.stdout, /FAILED/);
    assert.deepEqual(readdirSync(t), [], 'the demo data directory was removed');
  });
});

describe('usage errors', () => {
  const oneLine = (r: CliResult) => assert.equal(r.stderr.split('\n').length, 2, `stderr must be one line:\n${r.stderr}`);

  it('an unknown command -> exit 2 VALIDATION_FAILED', async () => {
    // The real bin in a child process: the exit status of the process itself.
    const r = await runCli(['frobnicate']);
    assertError(r, EXIT.validation, 'VALIDATION_FAILED', { message: /unknown command 'frobnicate'/ });
  });

  it('an unknown global option -> exit 2 VALIDATION_FAILED', async () => {
    assertError(await callCli(['--frobnicate', 'stats']), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('extra arguments -> exit 2 VALIDATION_FAILED', async () => {
    assertError(await callCli(['--data-dir', fresh('x'), 'stats', 'extra']), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('--help exits 0 and prints usage on stdout', async () => {
    // The real bin in a child process (bin/custos.js, the package's entry point).
    const r = await runCli(['--help']);
    assertOk(r);
    assert.match(r.stdout, /^Usage: custos /);
  });

  it('a misspelt command gets a one-line error', async () => {
    const r = await callCli(['appnd']);
    assert.equal(r.code, EXIT.validation);
    oneLine(r);
  });

  it('a misspelt option gets a one-line error', async () => {
    const r = await callCli(['--data-dir', fresh('x'), 'list', '--limt', '3']);
    assert.equal(r.code, EXIT.validation);
    oneLine(r);
  });
});
