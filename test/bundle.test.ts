/**
 * Offline evidence bundles (docs/bundle-format.md), end to end on a real log and a real server:
 * - `custos bundle` writes a bundle that `custos verify-bundle` checks in an empty directory with
 *   only the vkey (no data directory, no network), every check named;
 * - each field of the bundle changed in turn fails with its own code (the first failed check's);
 * - a redacted bundle verifies, says the openings were skipped, and holds no opened value or salt;
 * - an unredacted bundle writes PATIENT_DATA_OPENED, a redacted one writes nothing;
 * - GET /api/v1/bundles/:index serves the same bytes as the CLI, under the receipts permissions;
 * - `custos export --format intoto` lines are DSSE envelopes that verify with the log key;
 * - PAE matches the DSSE specification's example.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INTOTO_PAYLOAD_TYPE, pae, signDsse, verifyDsse, type DsseEnvelope } from '../src/core/dsse.js';
import { BUNDLE_MEDIA_TYPE, INFERENCE_PREDICATE_TYPE, TRAINING_PREDICATE_TYPE, dsseKeyId, verifyBundle, type Bundle, type BundleVerification } from '../src/core/bundle.js';
import { canonicalJson } from '../src/core/canonical-json.js';
import { parseVerifierKey } from '../src/core/note.js';
import { addCosignatures, cosignCheckpoint, formatCosignerSignerKey, formatCosignerVerifierKey, parseCosignerSignerKey } from '../src/core/cosignature.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from '../src/core/crypto.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { pid } from './helpers/policy-ids.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium } from './helpers/browser.js';
import { EXIT, assertError, callCli, callIn, ensureBuilt, makeTempDir, okJson } from './helpers/cli.js';

const D_IN = 'a1'.repeat(32);
const D_OUT1 = 'b2'.repeat(32);
const D_OUT2 = 'c3'.repeat(32);
const URI_IN = 's3://clinic/bundle-patient/input.jpg';
const URI_OUT1 = 's3://clinic/bundle-patient/report.json';
const URI_OUT2 = 's3://clinic/bundle-patient/mask.png';
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'd4'.repeat(32), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } };
const OPENER = ['--purpose', 'TREAT', '--actor', 'po-1', '--actor-role', 'privacy_officer'];

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

describe('offline evidence bundles', () => {
  let env: ServerEnv;
  let address: string;
  let dataDir: string;
  let vkey: string;
  let index: number;
  let trainingIndex: number;
  let full: Bundle;
  let fullText: string;
  let out: { path: string; cleanup(): void };

  const entryTypes = async (): Promise<string[]> => {
    const types: string[] = [];
    for await (const page of env.log.reader.entryPages(0, await env.log.reader.size())) for (const e of page) types.push((JSON.parse(e.bytes.toString('utf8')) as { type: string }).type);
    return types;
  };

  before(async () => {
    ensureBuilt();
    env = await createServerEnv();
    address = await env.app.listen({ host: '127.0.0.1', port: 0 });
    dataDir = join(env.root, 'log');
    vkey = env.dir.verifierKey;
    out = makeTempDir('custos-bundle-out-');
    const g = env.governance;
    const po = { id: 'po-1', role: 'privacy_officer' };
    await g.createConsent({ policyId: pid('bundle'), subject: 'patient-bundle', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, po);
    const inf = await g.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: pid('bundle'),
      input: { uri: URI_IN, digest: D_IN },
      outputs: [
        { name: 'report_json', uri: URI_OUT1, digest: D_OUT1 },
        { name: 'mask', uri: URI_OUT2, digest: D_OUT2 },
      ],
      pipeline: PIPELINE,
      model: MODEL,
    });
    index = inf.event.index;
    const trained = await g.recordTraining({
      actor: { id: 'eng-7', role: 'ml_engineer' },
      purpose: 'HRESCH',
      dataset: { uri: 's3://clinic/synthetic.parquet', digest: 'e5'.repeat(32), type: 'synthetic' },
      manifest: { name: 'finetune', epochs: 1 },
      modelBefore: MODEL,
      modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: 'f6'.repeat(32) },
      attestation: { method: 'synthetic-generator' },
      computeBackend: 'cpu',
    });
    trainingIndex = trained.event.index;
    const file = join(out.path, 'full.json');
    const before = (await entryTypes()).length;
    const r = okJson<{ opened: string[]; redacted: boolean }>(await callIn(dataDir, ['--json', 'bundle', String(index), '-o', file, ...OPENER]));
    assert.equal(r.redacted, false);
    assert.equal(r.opened.length, 3);
    // The opening was logged before the values were read: one PATIENT_DATA_OPENED naming the three commitments.
    const types = await entryTypes();
    assert.deepEqual(types.slice(before), ['PATIENT_DATA_OPENED']);
    fullText = readFileSync(file, 'utf8');
    full = JSON.parse(fullText) as Bundle;
  });

  after(async () => {
    await env.close();
    out.cleanup();
  });

  it('verifies in an empty directory with only the vkey, every check named, openings checked', async () => {
    const empty = makeTempDir('custos-bundle-empty-');
    try {
      writeFileSync(join(empty.path, 'b.json'), fullText);
      const json = okJson<BundleVerification>(await callCli(['--json', 'verify-bundle', 'b.json', '--key', vkey], { cwd: empty.path }));
      assert.equal(json.ok, true);
      assert.equal(json.logIndex, index);
      const names = json.checks.map((c) => c.name);
      assert.deepEqual(names, [
        'dsse-signature',
        'document:receipt',
        'document:pipeline',
        'document:model',
        'document:policy',
        'statement',
        'opening:input',
        'opening:output report_json',
        'opening:output mask',
        'leaf-hash',
        'inclusion-proof',
        'checkpoint-signature',
        'witness-quorum',
      ]);
      for (const c of json.checks) assert.equal(c.status, c.name === 'witness-quorum' ? 'skipped' : 'pass', `${c.name}: ${c.detail}`);
      const text = await callCli(['verify-bundle', 'b.json', '--key', vkey], { cwd: empty.path });
      assert.equal(text.code, 0, text.stderr);
      for (const n of names) assert.match(text.stdout, new RegExp(` ${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`));
      // Nothing was created: no data directory, no lock, no state.
      assert.deepEqual(readdirSync(empty.path), ['b.json']);
    } finally {
      empty.cleanup();
    }
    assert.equal(full.mediaType, BUNDLE_MEDIA_TYPE);
    const st = JSON.parse(Buffer.from(full.dsseEnvelope.payload, 'base64').toString('utf8')) as { subject: unknown; predicateType: string };
    assert.equal(st.predicateType, INFERENCE_PREDICATE_TYPE);
    assert.deepEqual(st.subject, [
      { name: 'report_json', digest: { sha256: D_OUT1 } },
      { name: 'mask', digest: { sha256: D_OUT2 } },
    ]);
    assert.deepEqual(full.verificationMaterial.openings?.map((o) => o.value).sort(), [URI_IN, URI_OUT1, URI_OUT2].sort());
  });

  describe('each field changed in turn fails with its own code', () => {
    const signer = () => env.log.signer;
    const resignPayload = (b: Bundle, statement: unknown) => {
      const s = signer();
      (b as { dsseEnvelope: DsseEnvelope }).dsseEnvelope = signDsse(INTOTO_PAYLOAD_TYPE, Buffer.from(canonicalJson(statement), 'utf8'), dsseKeyId(s), (m) => s.sign(m));
    };
    const statementOf = (b: Bundle) => JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8')) as { subject: { name: string; digest: { sha256: string } }[] };
    type M = { -readonly [K in keyof Bundle]: any };
    const cases: [string, (b: M) => void, string, string][] = [
      [
        'entry bytes (the time, one millisecond later)',
        (b) => {
          const e = Buffer.from(b.verificationMaterial.tlogEntry.canonicalizedBody, 'base64').toString('utf8');
          b.verificationMaterial.tlogEntry.canonicalizedBody = b64(e.replace(/(\d)Z"/, (_m, d: string) => `${(Number(d) + 1) % 10}Z"`));
        },
        'leaf-hash',
        'LEAF_HASH_MISMATCH',
      ],
      ['the leaf hash', (b) => (b.verificationMaterial.tlogEntry.leafHash = '00'.repeat(32)), 'leaf-hash', 'LEAF_HASH_MISMATCH'],
      [
        'the receipt document',
        (b) => (b.verificationMaterial.documents.receipt = b.verificationMaterial.documents.receipt.replace('"TREAT"', '"HRESCH"')),
        'document:receipt',
        'DOCUMENT_HASH_MISMATCH',
      ],
      ['the pipeline manifest', (b) => (b.verificationMaterial.documents.pipeline = b.verificationMaterial.documents.pipeline.replace('224', '225')), 'document:pipeline', 'DOCUMENT_HASH_MISMATCH'],
      ['the model spec', (b) => (b.verificationMaterial.documents.model = b.verificationMaterial.documents.model.replace('0.9.3', '0.9.2')), 'document:model', 'DOCUMENT_HASH_MISMATCH'],
      ['the consent policy version', (b) => (b.verificationMaterial.documents.policy = `${b.verificationMaterial.documents.policy} `), 'document:policy', 'DOCUMENT_HASH_MISMATCH'],
      ['the input opening value', (b) => (openingOf(b, URI_IN).value = `${URI_IN}x`), 'opening:input', 'OPENING_MISMATCH'],
      ['the report opening salt', (b) => (openingOf(b, URI_OUT1).salt = b64(Buffer.alloc(32, 7))), 'opening:output report_json', 'OPENING_MISMATCH'],
      ['the mask opening value', (b) => (openingOf(b, URI_OUT2).value = URI_OUT1), 'opening:output mask', 'OPENING_MISMATCH'],
      ['a proof hash', (b) => (b.verificationMaterial.tlogEntry.inclusionProof.hashes[0] = 'ab'.repeat(32)), 'inclusion-proof', 'INCLUSION_PROOF_INVALID'],
      ['the proof index', (b) => (b.verificationMaterial.tlogEntry.inclusionProof.logIndex += 1), 'inclusion-proof', 'INCLUSION_PROOF_INVALID'],
      ['the proof tree size', (b) => (b.verificationMaterial.tlogEntry.inclusionProof.treeSize -= 1), 'inclusion-proof', 'INCLUSION_PROOF_INVALID'],
      [
        'the checkpoint note (its origin line)',
        (b) =>
          (b.verificationMaterial.tlogEntry.inclusionProof.checkpoint.envelope = b.verificationMaterial.tlogEntry.inclusionProof.checkpoint.envelope.replace('test.local/log\n', 'test.local/other\n')),
        'checkpoint-signature',
        'CHECKPOINT_SIGNATURE_INVALID',
      ],
      [
        'the checkpoint signature',
        (b) => {
          const note: string = b.verificationMaterial.tlogEntry.inclusionProof.checkpoint.envelope;
          const [body, sig] = note.split('\n\n') as [string, string];
          const line = sig.trimEnd();
          const raw = Buffer.from(line.slice(line.lastIndexOf(' ') + 1), 'base64');
          raw[10]! ^= 1;
          b.verificationMaterial.tlogEntry.inclusionProof.checkpoint.envelope = `${body}\n\n${line.slice(0, line.lastIndexOf(' ') + 1)}${raw.toString('base64')}\n`;
        },
        'checkpoint-signature',
        'CHECKPOINT_SIGNATURE_INVALID',
      ],
      [
        'the envelope payload',
        (b) => (b.dsseEnvelope.payload = b64(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8').replace('mask', 'mass'))),
        'dsse-signature',
        'DSSE_SIGNATURE_INVALID',
      ],
      [
        'the envelope signature',
        (b) => {
          const raw = Buffer.from(b.dsseEnvelope.signatures[0].sig, 'base64');
          raw[0]! ^= 1;
          b.dsseEnvelope.signatures[0].sig = raw.toString('base64');
        },
        'dsse-signature',
        'DSSE_SIGNATURE_INVALID',
      ],
      [
        'a statement subject (re-signed with the log key: a signed statement the log does not back)',
        (b) => {
          const st = statementOf(b);
          st.subject[0]!.digest.sha256 = '99'.repeat(32);
          resignPayload(b, st);
        },
        'statement',
        'STATEMENT_MISMATCH',
      ],
    ];
    function openingOf(b: M, value: string): { value: string; salt: string } {
      return (b.verificationMaterial.openings as { value: string; salt: string }[]).find((o) => o.value === value)!;
    }

    for (const [what, mutate, check, code] of cases) {
      it(`${what}: ${code} (check ${check})`, async () => {
        const b = clone(full) as M;
        mutate(b);
        const r = verifyBundle(b, { logKey: parseVerifierKey(vkey) });
        assert.equal(r.ok, false);
        assert.equal(r.failed?.name, check, JSON.stringify(r.checks));
        assert.equal(r.failed?.code, code);
        // And the command line, in an empty directory: exit 4 with the check's code, the check named.
        const empty = makeTempDir('custos-bundle-tamper-');
        try {
          writeFileSync(join(empty.path, 'b.json'), JSON.stringify(b));
          const res = await callCli(['verify-bundle', 'b.json', '--key', vkey], { cwd: empty.path });
          assertError(res, EXIT.verification, code, { stdoutAllowed: true, message: new RegExp(`check ${check.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} failed`) });
          assert.match(res.stdout, new RegExp(`FAIL ${check.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        } finally {
          empty.cleanup();
        }
      });
    }

    it('a file that is not a bundle: BUNDLE_MALFORMED', async () => {
      const b = clone(full) as M;
      b.mediaType = 'application/json';
      assert.throws(() => verifyBundle(b, { logKey: parseVerifierKey(vkey) }), { code: 'BUNDLE_MALFORMED' });
      const empty = makeTempDir('custos-bundle-bad-');
      try {
        writeFileSync(join(empty.path, 'b.json'), JSON.stringify(b));
        assertError(await callCli(['verify-bundle', 'b.json', '--key', vkey], { cwd: empty.path }), EXIT.verification, 'BUNDLE_MALFORMED');
        writeFileSync(join(empty.path, 'c.json'), '{"mediaType":');
        assertError(await callCli(['verify-bundle', 'c.json', '--key', vkey], { cwd: empty.path }), EXIT.verification, 'BUNDLE_MALFORMED');
      } finally {
        empty.cleanup();
      }
    });

    it('another log key: DSSE_SIGNATURE_INVALID first, and the checkpoint fails too', async () => {
      const other = await createServerEnv();
      try {
        const r = verifyBundle(full, { logKey: parseVerifierKey(other.dir.verifierKey) });
        assert.equal(r.failed?.code, 'DSSE_SIGNATURE_INVALID');
        assert.equal(r.checks.find((c) => c.name === 'checkpoint-signature')?.code, 'CHECKPOINT_SIGNATURE_INVALID');
      } finally {
        await other.close();
      }
    });
  });

  it('a redacted bundle verifies, reports the openings skipped, holds none of them, and logs no opening', async () => {
    const file = join(out.path, 'redacted.json');
    const before = (await entryTypes()).length;
    okJson(await callIn(dataDir, ['--json', 'bundle', String(index), '-o', file, '--redact']));
    assert.equal((await entryTypes()).length, before, 'a redacted bundle writes nothing on the log');
    const text = readFileSync(file, 'utf8');
    const b = JSON.parse(text) as Bundle;
    assert.equal(b.verificationMaterial.redacted, true);
    assert.equal('openings' in b.verificationMaterial, false);
    for (const o of full.verificationMaterial.openings ?? []) {
      assert.ok(!text.includes(o.value), `the redacted bundle contains ${o.value}`);
      assert.ok(!text.includes(o.salt), 'the redacted bundle contains a salt');
      assert.ok(!text.includes(Buffer.from(o.salt, 'base64').toString('hex')), 'the redacted bundle contains a salt (hex)');
    }
    const r = verifyBundle(b, { logKey: parseVerifierKey(vkey) });
    assert.equal(r.ok, true, JSON.stringify(r.checks));
    assert.deepEqual(
      r.checks.filter((c) => c.name.startsWith('opening')),
      [{ name: 'openings', status: 'skipped', detail: 'redacted' }],
    );
    // Unredacted without saying who opens and why: refused, nothing written.
    assertError(await callIn(dataDir, ['bundle', String(index), '-o', join(out.path, 'x.json')]), EXIT.validation, 'VALIDATION_FAILED');
    // Not an inference event.
    assertError(await callIn(dataDir, ['bundle', String(trainingIndex), '-o', join(out.path, 'x.json'), '--redact']), EXIT.notFound, 'RECEIPT_NOT_FOUND');
  });

  it('GET /api/v1/bundles/:index serves the same bundle as the CLI, under the receipts permissions', async () => {
    const file = join(out.path, 'cli-redacted.json');
    okJson(await callIn(dataDir, ['--json', 'bundle', String(index), '-o', file, '--redact']));
    const cli = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
    const get = (token: string | undefined, query = '') => fetch(`${address}/api/v1/bundles/${index}${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const res = await get(env.tokens.auditor);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), cli);
    // Refused without a credential, and without the receipts permission.
    assert.equal((await get(undefined)).status, 401);
    const nurse = await get(env.tokens.nurse);
    assert.equal(nurse.status, 403);
    assert.equal(((await nurse.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
    // Opening needs commitments:open (the auditor lacks it) and a purpose, as the receipts route.
    assert.equal((await get(env.tokens.auditor, '?open=true&purpose=TREAT')).status, 403);
    assert.equal((await get(env.tokens.dermatologist, '?open=true')).status, 400);
    const types = (await entryTypes()).length;
    const opened = await get(env.tokens.dermatologist, '?open=true&purpose=TREAT');
    assert.equal(opened.status, 200);
    const ob = (await opened.json()) as Bundle;
    assert.deepEqual(ob.verificationMaterial.openings?.map((o) => o.value).sort(), [URI_IN, URI_OUT1, URI_OUT2].sort());
    assert.equal(verifyBundle(ob, { logKey: parseVerifierKey(vkey) }).ok, true);
    assert.ok((await entryTypes()).slice(types).includes('PATIENT_DATA_OPENED'));
  });

  it('export --format intoto: one DSSE envelope per inference and training event, each verifying with the log key', async () => {
    const r = await callIn(dataDir, ['export', '--format', 'intoto']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const key = parseVerifierKey(vkey);
    const types = await entryTypes();
    assert.equal(lines.length, types.filter((t) => t === 'INFERENCE_EXECUTED' || t === 'TRAINING_EXECUTED').length);
    const predicateTypes: string[] = [];
    for (const line of lines) {
      const env2 = JSON.parse(line) as DsseEnvelope;
      assert.equal(env2.payloadType, INTOTO_PAYLOAD_TYPE);
      const v = verifyDsse(env2, dsseKeyId(key), (m, s) => key.verify(m, s));
      assert.equal(v.ok, true, v.detail);
      const st = JSON.parse(v.payload!.toString('utf8')) as { _type: string; predicateType: string; subject: { name: string; digest: { sha256: string } }[] };
      assert.equal(st._type, 'https://in-toto.io/Statement/v1');
      predicateTypes.push(st.predicateType);
      if (st.predicateType === TRAINING_PREDICATE_TYPE) assert.deepEqual(st.subject, [{ name: 'lesion_classifier@0.9.4', digest: { sha256: 'f6'.repeat(32) } }]);
    }
    assert.deepEqual(predicateTypes, [INFERENCE_PREDICATE_TYPE, TRAINING_PREDICATE_TYPE]);
    // The inference's envelope is the bundle's (Ed25519 is deterministic).
    assert.deepEqual(JSON.parse(lines[0]!), full.dsseEnvelope);
  });

  it('the witness quorum: --witness keys and --quorum K, checked on the checkpoint note the bundle carries', async () => {
    const witness = (name: string, fill: number) => {
      const seed = Buffer.alloc(32, fill);
      return { signer: parseCosignerSignerKey(formatCosignerSignerKey(name, seed)), vkey: formatCosignerVerifierKey(name, ed25519RawPublicKey(ed25519PrivateKeyFromSeed(seed))) };
    };
    const w1 = witness('witness-one.example', 1);
    const w2 = witness('witness-two.example', 2);
    const b = clone(full) as { verificationMaterial: { tlogEntry: { inclusionProof: { checkpoint: { envelope: string } } } } };
    const cp = b.verificationMaterial.tlogEntry.inclusionProof.checkpoint;
    cp.envelope = addCosignatures(cp.envelope, cosignCheckpoint(cp.envelope, w1.signer, 1_790_000_000));
    const empty = makeTempDir('custos-bundle-witness-');
    try {
      writeFileSync(join(empty.path, 'b.json'), JSON.stringify(b));
      const run = (...extra: string[]) => callCli(['--json', 'verify-bundle', 'b.json', '--key', vkey, ...extra], { cwd: empty.path });
      const one = okJson<BundleVerification>(await run('--witness', w1.vkey, '--witness', w2.vkey, '--quorum', '1'));
      assert.equal(one.checks.find((c) => c.name === 'witness-quorum')?.status, 'pass');
      const two = await run('--witness', w1.vkey, '--witness', w2.vkey);
      assertError(two, EXIT.verification, 'WITNESS_QUORUM_NOT_MET', { stdoutAllowed: true, message: /check witness-quorum failed/ });
      assert.match(two.stdout, /missing witness-two\.example\+[0-9a-f]{8}/);
      // The unwitnessed bundle fails a policy of one witness; the cosigned one passes it.
      writeFileSync(join(empty.path, 'plain.json'), fullText);
      assertError(await callCli(['verify-bundle', 'plain.json', '--key', vkey, '--witness', w1.vkey], { cwd: empty.path }), EXIT.verification, 'WITNESS_QUORUM_NOT_MET', { stdoutAllowed: true });
      okJson(await run('--witness', w1.vkey));
      assertError(await run('--quorum', '1'), EXIT.validation, 'VALIDATION_FAILED');
      assertError(await run('--witness', vkey), EXIT.validation, 'VALIDATION_FAILED');
    } finally {
      empty.cleanup();
    }
  });

  it("the explorer's bundle of src/core (web/dist/custos-core.js) gives the same verdicts in Chromium", { skip: skipWithoutChromium }, async () => {
    const core = currentCoreBundle();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.route('http://custos.test/**', async (route) => {
        const path = new URL(route.request().url()).pathname;
        if (path === '/custos-core.js') return route.fulfill({ contentType: 'text/javascript', body: core });
        if (path === '/') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>bundle</title>' });
        return route.fulfill({ status: 404, body: '' });
      });
      await page.goto('http://custos.test/');
      const tampered = clone(full) as { verificationMaterial: { documents: { model: string } } };
      tampered.verificationMaterial.documents.model = tampered.verificationMaterial.documents.model.replace('0.9.3', '0.9.2');
      const run = `(async ([bundles, vkey]) => { const c = await import('/custos-core.js'); const key = c.parseVerifierKey(vkey); return bundles.map((b) => { const r = c.verifyBundle(b, { logKey: key }); return [r.ok, r.failed ? r.failed.code : null, r.checks.map((x) => x.name + ':' + x.status).join(',')]; }); })(${JSON.stringify([[full, tampered], vkey])})`;
      const inBrowser = (await page.evaluate(run)) as [boolean, string | null, string][];
      const inNode = [full, tampered].map((b) => {
        const r = verifyBundle(b, { logKey: parseVerifierKey(vkey) });
        return [r.ok, r.failed ? r.failed.code! : null, r.checks.map((x) => `${x.name}:${x.status}`).join(',')];
      });
      assert.deepEqual(inBrowser, inNode);
      assert.equal(inBrowser[0]![0], true);
      assert.equal(inBrowser[1]![1], 'DOCUMENT_HASH_MISMATCH');
    } finally {
      await browser.close();
    }
  });

  it('hostile bundles: a mutated field gives a verdict or BUNDLE_MALFORMED, never another exception', () => {
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const hostile = ['', '\ud800', '__proto__', 'x'.repeat(5000), -1, Number.POSITIVE_INFINITY, 0.5, null, true, [], {}, [1, 2], { a: 1 }, '00'.repeat(32), 'AAAA', '=', '{"index":1}', 2 ** 53];
    const key = parseVerifierKey(vkey);
    let verdicts = 0;
    let malformed = 0;
    for (let n = 0; n < 3000; n++) {
      const b = clone(full) as unknown as Record<string, unknown>;
      // Walk to a random node and replace it (or a random key inside it).
      let node: Record<string, unknown> | unknown[] = b;
      for (let depth = 0; depth < 6; depth++) {
        const keys = Object.keys(node);
        if (keys.length === 0) break;
        const k = keys[Math.floor(rnd() * keys.length)]!;
        const child = (node as Record<string, unknown>)[k];
        if (typeof child === 'object' && child !== null && rnd() < 0.7) node = child as Record<string, unknown>;
        else {
          (node as Record<string, unknown>)[rnd() < 0.9 ? k : `extra${n}`] = hostile[Math.floor(rnd() * hostile.length)];
          break;
        }
      }
      try {
        verifyBundle(b, { logKey: key });
        verdicts++;
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'BUNDLE_MALFORMED', `mutation ${n} threw ${String(err)}`);
        malformed++;
      }
    }
    assert.ok(verdicts > 100 && malformed > 100, `verdicts ${verdicts}, malformed ${malformed}`);
    // A signed statement holding a lone surrogate (valid JSON text, no canonical form): a failed check, not an exception.
    const st = JSON.parse(Buffer.from(full.dsseEnvelope.payload, 'base64').toString('utf8')) as { subject: { name: string }[] };
    st.subject[0]!.name = '\ud800';
    const b = clone(full) as { dsseEnvelope: DsseEnvelope };
    b.dsseEnvelope = signDsse(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(st), 'utf8'), dsseKeyId(env.log.signer), (m) => env.log.signer.sign(m));
    const r = verifyBundle(b, { logKey: key });
    assert.equal(r.failed?.code, 'STATEMENT_MISMATCH');
  });

  it('PAE matches the DSSE specification example, and counts bytes', () => {
    assert.equal(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString('utf8'), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    assert.deepEqual(pae('t', Buffer.from('é', 'utf8')), Buffer.from('DSSEv1 1 t 2 é', 'utf8'));
  });
});
