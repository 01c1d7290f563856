/**
 * One verifier for the server and the browser: src/core, bundled for the explorer by
 * scripts/build-web.mjs (web/dist/custos-core.js), gives in headless Chromium the very verdicts
 * that src/core gives in Node, on the published vectors and on the inputs the old hand port of the
 * explorer (web/verify.js) got wrong.
 *
 * The bundle must be current: a missing or stale web/dist/custos-core.js fails the suite. Each case
 * runs through test/helpers/core-verdicts.ts on both sides. Last, the build's guard: nothing from
 * outside src/core (and its few browser-safe packages) may enter the bundle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { transform } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import * as nodeCore from '../src/core/browser.js';
import { computeKeyId, ed25519PrivateKeyFromSeed, ed25519RawPublicKey, formatSignerKey, parseSignerKey, signNote, verifierKeyFromSignerKey } from '../src/core/note.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium } from './helpers/browser.js';
import { verdicts, type Case } from './helpers/core-verdicts.js';
import { REPO_ROOT, VECTORS } from './helpers/vectors.js';

type Named = [name: string, c: Case][];

const MERKLE = join(VECTORS, 'rfc6962-merkle');
const NOTES = join(VECTORS, 'signed-note');
const skipVectors = existsSync(MERKLE) && existsSync(NOTES) ? false : `published test vectors not found at ${VECTORS} (../shared/vectors is absent)`;

/** Every *.json file under `dir`, as paths relative to it, sorted. */
const listJson = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .sort();

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

// ---- cases built here with a test key (no vectors needed) -------------------------------------

const ORIGIN = 'custos.test/log';
const SEED = Buffer.alloc(32, 7);
const SKEY = formatSignerKey(ORIGIN, SEED);
const VKEY = verifierKeyFromSignerKey(SKEY);
const SIGNER = parseSignerKey(SKEY);
const ALG_KEY = Buffer.concat([Buffer.from([1]), ed25519RawPublicKey(ed25519PrivateKeyFromSeed(SEED))]);

/** A verifier key string for any name, with a matching key id (formatVerifierKey refuses bad names). */
function vkeyNamed(name: string): string {
  return `${name}+${computeKeyId(name, ALG_KEY).toString(16).padStart(8, '0')}+${ALG_KEY.toString('base64')}`;
}

const ROOT_HASH = nodeCore.sha256(Buffer.from('custos'));
const ROOT_B64 = nodeCore.toBase64(ROOT_HASH);
// 32 bytes are 43 base64 characters and '=': the last character carries 4 bits of the hash and 2
// padding bits. Setting a padding bit gives a non-canonical text that a lax decoder reads as the same hash.
const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ROOT_B64_NONCANONICAL = `${ROOT_B64.slice(0, 42) + B64_ALPHABET[B64_ALPHABET.indexOf(ROOT_B64[42]!) ^ 1]}=`;
const checkpoint = (root: string, size = '7'): string => signNote(`${ORIGIN}\n${size}\n${root}\n`, [SIGNER]);

/** [name, case, the verdict src/core gives]: the defects of the old explorer port, and their neighbours. */
const DEFECTS: Record<string, [string, Case, string][]> = {
  'a checkpoint root in non-canonical base64': [
    ['canonical root', { kind: 'openCheckpoint', note: checkpoint(ROOT_B64), trusted: [VKEY], origin: ORIGIN }, `ok:${ORIGIN};7;${nodeCore.toHex(ROOT_HASH)};`],
    ['root with a padding bit set', { kind: 'openCheckpoint', note: checkpoint(ROOT_B64_NONCANONICAL), trusted: [VKEY], origin: ORIGIN }, 'CHECKPOINT_MALFORMED'],
    ['root of 31 bytes', { kind: 'openCheckpoint', note: checkpoint(nodeCore.toBase64(ROOT_HASH.subarray(1))), trusted: [VKEY] }, 'CHECKPOINT_MALFORMED'],
    ['size with a leading zero', { kind: 'openCheckpoint', note: checkpoint(ROOT_B64, '07'), trusted: [VKEY] }, 'CHECKPOINT_MALFORMED'],
    ['another origin', { kind: 'openCheckpoint', note: checkpoint(ROOT_B64), trusted: [VKEY], origin: 'custos.test/other' }, 'CHECKPOINT_MALFORMED'],
  ],
  'key names': [
    ['a plain name', { kind: 'verifierKey', vkey: vkeyNamed('example.com/log') }, `ok:example.com/log+${computeKeyId('example.com/log', ALG_KEY).toString(16).padStart(8, '0')}`],
    ['U+0085 (a space to Go, not to JavaScript)', { kind: 'verifierKey', vkey: vkeyNamed('a\u0085b') }, 'KEY_MALFORMED'],
    ['U+3000 ideographic space', { kind: 'verifierKey', vkey: vkeyNamed('a\u3000b') }, 'KEY_MALFORMED'],
    ['a lone surrogate', { kind: 'verifierKey', vkey: vkeyNamed('a\ud800b') }, 'KEY_MALFORMED'],
    ['an empty name', { kind: 'verifierKey', vkey: vkeyNamed('') }, 'KEY_MALFORMED'],
    ['U+FEFF (a space to JavaScript, not to Go)', { kind: 'verifierKey', vkey: vkeyNamed('a\ufeffb') }, `ok:a\ufeffb+${computeKeyId('a\ufeffb', ALG_KEY).toString(16).padStart(8, '0')}`],
    ['a key id that does not match', { kind: 'verifierKey', vkey: vkeyNamed('x').replace(/^x\+[0-9a-f]{8}/, 'x+00000000') }, 'KEY_MALFORMED'],
  ],
  'signature lines': (() => {
    const note = checkpoint(ROOT_B64);
    const ok = `ok:verified=${ORIGIN};unverified=other;text=${JSON.stringify(`${ORIGIN}\n7\n${ROOT_B64}\n`)}`;
    const line = (extra: string, want: string, name: string): [string, Case, string] => [name, { kind: 'openNote', note: note + extra, trusted: [VKEY] }, want];
    return [
      line('\u2014 other AAAAAAA=\n', ok, 'an unknown key'),
      line('\u2014 other AAAAAAB=\n', ok, 'an unknown key, padding bits set (tolerated, as Go)'),
      line('\u2014 bad+name AAAAAAA=\n', 'NOTE_MALFORMED', "a name with '+'"),
      line('\u2014 a\u0085b AAAAAAA=\n', 'NOTE_MALFORMED', 'a name with U+0085'),
      line('\u2014  AAAAAAA=\n', 'NOTE_MALFORMED', 'an empty name'),
      line('\u2014 other\n', 'NOTE_MALFORMED', 'no signature'),
      line('\u2014 other \n', 'NOTE_MALFORMED', 'an empty signature'),
      line('\u2014 other AAAA\n', 'NOTE_MALFORMED', 'a signature of 3 bytes'),
      line('\u2014 other AAAA*AA=\n', 'NOTE_MALFORMED', 'a signature that is not base64'),
      line('- other AAAAAAA=\n', 'NOTE_MALFORMED', 'no em dash'),
      line('\u2014 a\ufeffb AAAAAAA=\n', `ok:verified=${ORIGIN};unverified=a\ufeffb;text=${JSON.stringify(`${ORIGIN}\n7\n${ROOT_B64}\n`)}`, 'a name with U+FEFF'),
    ];
  })(),
  'Ed25519 signatures': (() => {
    const body = `${ORIGIN}\n7\n${ROOT_B64}\n`;
    const note = checkpoint(ROOT_B64);
    const sig = Buffer.from(note.slice(note.lastIndexOf(' ') + 1, -1), 'base64');
    const withSig = (bytes: Buffer): string => `${body}\n\u2014 ${ORIGIN} ${bytes.toString('base64')}\n`;
    const flipped = Buffer.from(sig);
    flipped[40] = flipped[40]! ^ 1;
    // S + L (the group order) passes the equation but is not canonical: RFC 8032 refuses it.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const s = BigInt(`0x${Buffer.from(sig.subarray(36)).reverse().toString('hex')}`) + L;
    const malleable = Buffer.concat([sig.subarray(0, 36), Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse()]);
    const ok = `ok:verified=${ORIGIN};unverified=;text=${JSON.stringify(body)}`;
    return [
      ['the signature', { kind: 'openNote', note, trusted: [VKEY] }, ok],
      ['a bit flipped in S', { kind: 'openNote', note: withSig(flipped), trusted: [VKEY] }, 'NOTE_SIGNATURE_INVALID'],
      ['S + L', { kind: 'openNote', note: withSig(malleable), trusted: [VKEY] }, 'NOTE_SIGNATURE_INVALID'],
      ['the text altered', { kind: 'openNote', note: note.replace('\n7\n', '\n8\n'), trusted: [VKEY] }, 'NOTE_SIGNATURE_INVALID'],
    ] as [string, Case, string][];
  })(),
  'strict canonical JSON': [
    [
      'numbers, strings and key order (RFC 8785)',
      { kind: 'canonicalJson', json: '{"b":[1e21,0.1,-0,1e-7,123456789012345680000,5e-324],"a":"\\u2028\\u00e9\\u0000\\"","\\u00e9":1,"\\u20ac":2,"z":{},"A":[]}' },
      'ok:{"A":[],"a":"\u2028é\\u0000\\"","b":[1e+21,0.1,0,1e-7,123456789012345680000,5e-324],"z":{},"é":1,"€":2}',
    ],
    ['NaN', { kind: 'canonicalJson', special: 'NaN' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['Infinity', { kind: 'canonicalJson', special: 'Infinity' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['an undefined member', { kind: 'canonicalJson', special: 'undefined member' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['a lone surrogate in a string', { kind: 'canonicalJson', special: 'lone surrogate string' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['a lone surrogate in a key', { kind: 'canonicalJson', special: 'lone surrogate key' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['a sparse array', { kind: 'canonicalJson', special: 'sparse array' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['an array with a property', { kind: 'canonicalJson', special: 'array with a property' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['a Date', { kind: 'canonicalJson', special: 'Date' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['a bigint', { kind: 'canonicalJson', special: 'bigint' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['nesting 65 deep', { kind: 'canonicalJson', special: 'nesting 65 deep' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    ['nesting 64 deep', { kind: 'canonicalJson', special: 'nesting 64 deep' }, `ok:${'['.repeat(64)}0${']'.repeat(64)}`],
    ['parse: canonical', { kind: 'parseCanonicalJson', text: '{"a":[1,"x"],"b":null}' }, 'ok:{"a":[1,"x"],"b":null}'],
    ['parse: keys out of order', { kind: 'parseCanonicalJson', text: '{"b":1,"a":2}' }, 'VALIDATION_FAILED'],
    ['parse: 1.0', { kind: 'parseCanonicalJson', text: '{"a":1.0}' }, 'VALIDATION_FAILED'],
    ['parse: whitespace', { kind: 'parseCanonicalJson', text: '{"a": 1}' }, 'VALIDATION_FAILED'],
    ['parse: an escaped lone surrogate', { kind: 'parseCanonicalJson', text: '{"a":"\\ud800"}' }, 'CANONICAL_JSON_UNSUPPORTED_VALUE'],
    [
      'entry: well formed',
      { kind: 'decodeEntry', text: '{"index":3,"payload":{"a":1},"time":"2030-03-01T08:00:00.000Z","type":"DATA_ACCESSED","v":1}' },
      'ok:3;DATA_ACCESSED;2030-03-01T08:00:00.000Z',
    ],
    ['entry: not canonical', { kind: 'decodeEntry', text: '{"index":3,"payload":{"a":1.50},"time":"2030-03-01T08:00:00.000Z","type":"DATA_ACCESSED","v":1}' }, 'VALIDATION_FAILED'],
    ['entry: an extra member', { kind: 'decodeEntry', text: '{"extra":0,"index":3,"payload":{},"time":"2030-03-01T08:00:00.000Z","type":"DATA_ACCESSED","v":1}' }, 'VALIDATION_FAILED'],
    ['entry: an impossible time', { kind: 'decodeEntry', text: '{"index":3,"payload":{},"time":"2030-02-30T08:00:00.000Z","type":"DATA_ACCESSED","v":1}' }, 'VALIDATION_FAILED'],
  ],
};

const HASH_CASES: Named = ['', 'custos', 'entrée \u2014 \ud83d\ude00', 'a\ud800b', 'x'.repeat(5000)].map((text) => [JSON.stringify(text.slice(0, 24)), { kind: 'hashes', text }]);

// ---- the published vectors ---------------------------------------------------------------------

interface GoNoteVectors {
  keys: Record<string, { vkey: string }>;
  text: string;
  signatureLines: Record<string, string>;
  cases: { desc: string; signWith?: string; expectedNote?: string; note?: string; noteTemplate?: string; trusted?: string[] }[];
  badVerifierKeys: { vkey: string; why: string }[];
}

function merkleCases(kind: 'inclusion' | 'consistency'): Named {
  const dir = join(MERKLE, kind);
  return listJson(dir).map((file) => {
    const v = readJson<Record<string, unknown>>(join(dir, file));
    return [`${kind}/${file}`, { kind, ...v } as Case];
  });
}

function noteCases(): Named {
  const v = readJson<GoNoteVectors>(join(NOTES, 'go-sumdb-note.json'));
  const vkey = (name: string): string => v.keys[name]!.vkey;
  const out: Named = [];
  for (const name of Object.keys(v.keys)) out.push([`key ${name}`, { kind: 'verifierKey', vkey: vkey(name) }]);
  for (const bad of v.badVerifierKeys) out.push([`bad key: ${bad.why}`, { kind: 'verifierKey', vkey: bad.vkey }]);
  for (const c of v.cases) {
    const note = c.signWith !== undefined ? c.expectedNote! : (c.note ?? `${v.text}\n${v.signatureLines['PeterNeumann']!.repeat(101)}`);
    const trusted = c.signWith !== undefined ? [vkey(c.signWith)] : (c.trusted ?? []).map(vkey);
    out.push([`note: ${c.desc}`, { kind: 'openNote', note, trusted }]);
  }
  const ex = readJson<{ vkey: string; note: string }>(join(NOTES, 'c2sp-signed-note-example.json'));
  out.push(['C2SP example', { kind: 'openNote', note: ex.note, trusted: [ex.vkey] }]);
  return out;
}

// ---- the suite ---------------------------------------------------------------------------------

describe('src/core in Chromium (web/dist/custos-core.js) gives the verdicts of src/core in Node', { skip: skipWithoutChromium }, () => {
  let browser: Browser | undefined;
  let page: Page;

  /** Verdicts of the bundle in the page, and of src/core in this process, keyed by case name. */
  async function both(cases: Named): Promise<{ browser: Record<string, string>; node: Record<string, string> }> {
    const list = cases.map(([, c]) => c);
    const run = `(async (cases) => { const [core, r] = await Promise.all([import('/custos-core.js'), import('/core-verdicts.js')]); return r.verdicts(core, cases); })(${JSON.stringify(list)})`;
    const inBrowser = (await page.evaluate(run)) as string[];
    const inNode = verdicts(nodeCore, list);
    const keyed = (v: string[]): Record<string, string> => Object.fromEntries(cases.map(([name], i) => [name, v[i]!]));
    return { browser: keyed(inBrowser), node: keyed(inNode) };
  }

  before(async () => {
    // Fails here when web/dist/custos-core.js is missing or older than src/core.
    const bundle = currentCoreBundle();
    const runner = (await transform(readFileSync(join(REPO_ROOT, 'test', 'helpers', 'core-verdicts.ts'), 'utf8'), { loader: 'ts', format: 'esm' })).code;
    browser = await launchChromium();
    page = await browser.newPage();
    // A page of its own origin that serves the bundle and the runner (no server, no network).
    await page.route('http://custos.test/**', async (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/custos-core.js') return route.fulfill({ contentType: 'text/javascript', body: bundle });
      if (path === '/core-verdicts.js') return route.fulfill({ contentType: 'text/javascript', body: runner });
      if (path === '/') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>src/core</title>' });
      return route.fulfill({ status: 404, body: '' });
    });
    await page.goto('http://custos.test/');
  });

  after(async () => {
    await browser?.close().catch(() => {});
  });

  describe('the published vectors', { skip: skipVectors }, () => {
    for (const kind of ['inclusion', 'consistency'] as const) {
      it(`RFC 6962 ${kind} proofs (transparency-dev probes)`, async () => {
        const cases = merkleCases(kind);
        assert.equal(cases.length, 98);
        const r = await both(cases);
        assert.deepEqual(r.browser, r.node);
        // Not vacuous: Node accepts the good proofs and refuses the bad ones (merkle.test.ts checks each against wantErr).
        const values = Object.values(r.node);
        assert.ok(values.includes('ok') && values.includes(kind === 'inclusion' ? 'INCLUSION_PROOF_INVALID' : 'CONSISTENCY_PROOF_INVALID'));
        assert.ok(
          values.every((v) => v === 'ok' || v.endsWith('_PROOF_INVALID')),
          `only proof verdicts: ${values.filter((v) => v !== 'ok' && !v.endsWith('_PROOF_INVALID')).join(', ')}`,
        );
      });
    }

    it('signed notes and verifier keys (Go sumdb/note and the C2SP example)', async () => {
      const r = await both(noteCases());
      assert.deepEqual(r.browser, r.node);
      const values = Object.values(r.node);
      for (const code of ['NOTE_MALFORMED', 'NOTE_NO_VERIFIABLE_SIGNATURE', 'NOTE_SIGNATURE_INVALID', 'KEY_MALFORMED']) assert.ok(values.includes(code), `some vector gives ${code}`);
      assert.ok(r.node['C2SP example']!.startsWith('ok:verified=example.com/foo;'));
    });
  });

  it('leaf, node and plain SHA-256 hashes', async () => {
    const r = await both(HASH_CASES);
    assert.deepEqual(r.browser, r.node);
    assert.equal(
      r.node['""'],
      `ok:6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d;${nodeCore.toHex(nodeCore.hashChildren(nodeCore.hashLeaf(Buffer.alloc(0)), nodeCore.hashLeaf(Buffer.alloc(0))))};47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855`,
    );
  });

  for (const [what, cases] of Object.entries(DEFECTS)) {
    it(`${what}: refused or accepted exactly as src/core does`, async () => {
      const r = await both(cases.map(([name, c]) => [name, c]));
      const want = Object.fromEntries(cases.map(([name, , v]) => [name, v]));
      assert.deepEqual(r.node, want, 'src/core in Node');
      assert.deepEqual(r.browser, want, 'src/core in Chromium');
    });
  }

  it('the non-canonical root really is the same hash to a lax decoder', () => {
    assert.notEqual(ROOT_B64_NONCANONICAL, ROOT_B64);
    assert.deepEqual(nodeCore.fromBase64(ROOT_B64_NONCANONICAL), ROOT_HASH);
    assert.equal(nodeCore.fromBase64Strict(ROOT_B64_NONCANONICAL), undefined);
  });
});

describe('scripts/build-web.mjs', () => {
  /** Runs buildCore with `entryContents` in a fresh Node; returns its error message, or 'built'. */
  function probe(entryContents: string): string {
    const script = `import { buildCore } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'scripts', 'build-web.mjs')).href)};
      try { await buildCore({ entryContents: ${JSON.stringify(entryContents)} }); console.log('built'); } catch (err) { console.log(err.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  }

  it('refuses a bundle that holds code from outside src/core', () => {
    assert.equal(probe("export { systemClock } from './src/log/clock.js';"), 'build-web: the browser bundle of src/core must not contain src/log/clock.ts');
  });

  it('builds the explorer entry, src/core/browser.ts', () => {
    assert.equal(probe("export * from './src/core/browser.js';"), 'built');
  });
});
