/**
 * Explanations in receipts (issue 14), end to end:
 * - the service stores an inference's explanation artifacts in one off-ledger explanations document
 *   (method, canonical parameters, output explained, URI commitment, digest); the log gets only the
 *   methods, outputs and digests, and the document's hash; a URI and the parameters never reach it;
 * - a method outside the vocabulary, or an output the inference does not have, is refused with
 *   nothing written; a deployment adds methods of its own;
 * - an edited explanations document is found by verifyDocuments and `custos verify` with the
 *   inference's entry named, and by `custos receipt`; an erased one is reported as erased;
 * - the CLI (`--explanation`, `--input-file`, `--output-file`, `--artifact-file`, `--dataset-file`)
 *   streams digests that equal `sha256sum`'s, on a file of several MB; a missing file writes nothing;
 * - `custos bundle` carries the document and its openings, and `verify-bundle` checks them;
 * - HTTP: POST /api/v1/inferences takes explanations, refuses a bad output (400, nothing written),
 *   and the receipt route returns the document.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, openSync, closeSync, writeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { canonicalJson } from '../src/core/canonical-json.js';
import { verifyBundle, type Bundle, type BundleVerification } from '../src/core/bundle.js';
import { ValidationError } from '../src/core/errors.js';
import { EXPLANATIONS_SCHEMA, parseReceipt } from '../src/core/manifest.js';
import { parseVerifierKey } from '../src/core/note.js';
import { DB_FILE, initDataDir, openLog } from '../src/log/data-dir.js';
import { ConsentDeniedError, Governance, type Actor } from '../src/service/governance.js';
import { rebuildReceipt } from '../src/service/receipt.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { useTempRoot } from './helpers/fixtures.js';
import { EXIT, assertError, callCli, callIn, ensureBuilt, makeTempDir, okJson, registerSecret } from './helpers/cli.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { pid } from './helpers/policy-ids.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const OFFICER: Actor = { id: 'po-1', role: 'privacy_officer' };
const DERM: Actor = { id: 'dr-derm', role: 'dermatologist' };
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: sha('weights'), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' };
const URI_IN = 's3://clinic/patient-x/input.jpg';
const URI_SHAP = 's3://clinic/patient-x/shap.png';
const URI_CAM = 's3://clinic/patient-x/gradcam.png';
const SHAP_PARAMS = { nsamples: 500, background: 'kmeans-50', link: 'logit' };

function inference(policyId: string, explanations: unknown[] | undefined) {
  return {
    actor: DERM,
    purpose: 'TREAT',
    policyId,
    input: { uri: URI_IN, digest: sha('input') },
    outputs: [
      { name: 'report_json', uri: 's3://clinic/patient-x/report.json', digest: sha('report') },
      { name: 'mask', uri: 's3://clinic/patient-x/mask.png', digest: sha('mask') },
    ],
    pipeline: PIPELINE,
    model: MODEL,
    ...(explanations === undefined ? {} : { explanations: explanations as never }),
  };
}

const TWO = [
  { method: 'kernel_shap', parameters: SHAP_PARAMS, output: 'report_json', uri: URI_SHAP, digest: sha('shap') },
  { method: 'grad_cam', output: 'mask', uri: URI_CAM, digest: sha('cam').toUpperCase() },
];

function editDocument(dataDir: string, hash: string, edit: (o: Record<string, unknown>) => unknown): void {
  const db = new Database(join(dataDir, DB_FILE));
  try {
    const b = db.prepare('SELECT data FROM documents WHERE hash = ?').pluck().get(hash) as Buffer;
    const o = JSON.parse(b.toString('utf8')) as Record<string, unknown>;
    assert.equal(db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(Buffer.from(JSON.stringify(edit(o))), hash).changes, 1);
  } finally {
    db.close();
  }
}

describe('explanations in receipts: the service', () => {
  const root = useTempRoot('explanations');

  it('stores the explanations off-ledger; the log has methods, outputs, digests and the document hash only', async () => {
    const { gov, log, dir } = await root.openGovernance();
    await gov.createConsent({ policyId: pid('ex-a'), subject: 'patient-x', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
    const r = await gov.recordInference(inference(pid('ex-a'), TWO));
    const entry = await log.reader.getEntry(r.event.index);
    const text = entry.bytes.toString('utf8');
    const payload = (JSON.parse(text) as { payload: Record<string, unknown> }).payload;
    assert.deepEqual(payload['explanations'], [
      { method: 'kernel_shap', output: 'report_json', digest: sha('shap') },
      { method: 'grad_cam', output: 'mask', digest: sha('cam') },
    ]);
    const docs = payload['documents'] as Record<string, string>;
    assert.equal(r.receipt.explanations, docs['explanations']);
    // No URI, no parameter reaches the log.
    for (const secret of [URI_SHAP, URI_CAM, 'kmeans-50', 'nsamples', 'logit']) assert.ok(!text.includes(secret), `${secret} on the log`);
    // The document: canonical JSON, URIs as commitments, parameters as given (canonical).
    const stored = await log.sidecar.getDocument(docs['explanations']!);
    assert.ok(stored);
    assert.equal(stored.kind, 'explanations');
    assert.equal(sha(stored.bytes), docs['explanations']);
    const d = JSON.parse(stored.bytes.toString('utf8')) as { schema: string; explanations: { method: string; output: string; uri: string; digest: string; parameters: unknown }[] };
    assert.equal(stored.bytes.toString('utf8'), canonicalJson(d));
    assert.equal(d.schema, EXPLANATIONS_SCHEMA);
    assert.deepEqual(d.explanations[0]!.parameters, SHAP_PARAMS);
    assert.deepEqual(d.explanations[1]!.parameters, {});
    for (const x of d.explanations) assert.match(x.uri, /^[0-9a-f]{64}$/);
    assert.equal((await log.sidecar.getCommitment(d.explanations[0]!.uri))?.value, URI_SHAP);

    // The rebuilt receipt: every check passes, the document is returned, the artifacts opened.
    const rb = await rebuildReceipt(log, [dir.verifier], dir.origin, r.event.index);
    assert.equal(rb.ok, true, JSON.stringify(rb.checks.filter((c) => !c.ok)));
    assert.deepEqual(rb.explanations, d);
    assert.ok(rb.checks.some((c) => c.what === 'explanations document' && c.ok));
    assert.ok(rb.checks.some((c) => c.what === 'explanations match their event' && c.ok));
    assert.deepEqual(
      rb.artifacts.slice(3).map((a) => [a.role, a.uri, a.digest]),
      [
        ['explanation 1 (kernel_shap of report_json)', URI_SHAP, sha('shap')],
        ['explanation 2 (grad_cam of mask)', URI_CAM, sha('cam')],
      ],
    );

    // Without explanations: no field on the event, none in the receipt (a v1 receipt as before).
    const plain = await gov.recordInference(inference(pid('ex-a'), undefined));
    const plainEntry = (await log.reader.getEntry(plain.event.index)).bytes.toString('utf8');
    assert.ok(!plainEntry.includes('explanations'));
    assert.equal('explanations' in plain.receipt, false);
    assert.deepEqual(parseReceipt(plain.receipt), plain.receipt);
    const rbPlain = await rebuildReceipt(log, [dir.verifier], dir.origin, plain.event.index);
    assert.equal(rbPlain.ok, true);
    assert.equal(rbPlain.explanations, undefined);
  });

  it('refuses an unknown method or an output the inference does not have, with nothing written; a deployment adds methods', async () => {
    const { gov, log } = await root.openGovernance();
    await gov.createConsent({ policyId: pid('ex-b'), subject: 'patient-y', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
    const size = await log.reader.size();
    const refused = async (explanations: unknown[], path: string) => {
      await assert.rejects(
        () => gov.recordInference(inference(pid('ex-b'), explanations)),
        (err: unknown) => err instanceof ValidationError && err.code === 'VALIDATION_FAILED' && err.issues.some((i) => i.path === path),
      );
      assert.equal(await log.reader.size(), size, 'nothing written');
    };
    await refused([{ ...TWO[0], output: 'heatmap' }], 'explanations.0.output');
    await refused([TWO[0], { ...TWO[1], method: 'tcav' }], 'explanations.1.method');
    await refused([{ ...TWO[0], method: 'Kernel SHAP' }], 'explanations.0.method');
    await refused([{ ...TWO[0], parameters: [1, 2] }], 'explanations.0.parameters');
    await refused([{ ...TWO[0], digest: 'abc' }], 'explanations.0.digest');

    // A denied inference: CONSENT_DENIED names the input only; no explanation field, no opening of an explanation URI kept.
    await assert.rejects(() => gov.recordInference({ ...inference(pid('ex-b'), TWO), purpose: 'HRESCH' }), ConsentDeniedError);
    const denied = (await log.reader.getEntry(size)).bytes.toString('utf8');
    assert.match(denied, /"type":"CONSENT_DENIED"/);
    assert.ok(!denied.includes('explanations'));
    assert.deepEqual(await log.sidecar.findCommitments('uri', URI_SHAP), []);
    assert.equal((await log.sidecar.findCommitments('uri', URI_IN)).length, 1);

    const ext = await root.openGovernance({ governance: { explanationMethods: ['tcav'] } });
    await ext.gov.createConsent({ policyId: pid('ex-c'), subject: 'patient-z', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
    const r = await ext.gov.recordInference(inference(pid('ex-c'), [{ ...TWO[0], method: 'tcav' }]));
    const payload = JSON.parse((await ext.log.reader.getEntry(r.event.index)).bytes.toString('utf8')) as { payload: { explanations: { method: string }[] } };
    assert.equal(payload.payload.explanations[0]!.method, 'tcav');
  });

  it('an edited explanations document: verifyDocuments and rebuildReceipt name the inference; an erased one is erased, not a defect', async () => {
    const { gov, dataDir, close } = await root.openGovernance();
    await gov.createConsent({ policyId: pid('ex-d'), subject: 'patient-w', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
    await gov.recordInference(inference(pid('ex-d'), undefined));
    const r = await gov.recordInference(inference(pid('ex-d'), TWO));
    const hash = r.receipt.explanations!;
    await close();

    const edited = root.next('edited');
    cpSync(dataDir, edited, { recursive: true });
    editDocument(edited, hash, (o) => {
      const x = o['explanations'] as { parameters: Record<string, unknown> }[];
      x[0]!.parameters['nsamples'] = 5;
      return o;
    });
    const l = await root.openLog({ dataDir: edited });
    const report = await verifyDocuments({ log: l.log });
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.ref, f.eventIndex]),
      [['DOCUMENT_EDITED', hash, r.event.index]],
    );
    const rb = await rebuildReceipt(l.log, [l.dir.verifier], l.dir.origin, r.event.index);
    assert.equal(rb.ok, false);
    assert.deepEqual(
      rb.checks.filter((c) => !c.ok).map((c) => [c.what, c.detail]),
      [['explanations document', 'edited: does not hash to the committed hash']],
    );
    await l.close();

    // Erasure of the document (free-form parameters): the hash stays, the receipt says erased.
    const erased = root.next('erased');
    cpSync(dataDir, erased, { recursive: true });
    const g = await root.openGovernance({ dataDir: erased });
    const er = await g.gov.erase('document', hash, OFFICER);
    assert.ok(er.event);
    const rbErased = await rebuildReceipt(g.log, [g.dir.verifier], g.dir.origin, r.event.index);
    assert.equal(rbErased.ok, true, JSON.stringify(rbErased.checks.filter((c) => !c.ok)));
    assert.deepEqual(
      rbErased.erased.map((d) => [d.what, d.hash, d.erasureIndex]),
      [['explanations document', hash, er.event.index]],
    );
    const afterErasure = await verifyDocuments({ log: g.log });
    assert.equal(afterErasure.ok, true, JSON.stringify(afterErasure.findings));
    assert.equal(afterErasure.documentsErased, 1);
  });
});

describe('explanations and streamed digests: the CLI', () => {
  const tmp = makeTempDir('custos-explain-cli-');
  const dataDir = join(tmp.path, 'log');
  const policy = pid('ex-cli');
  let big: string;
  let bigDigest: string;
  let vkey: string;

  const size = async (): Promise<number> => okJson<{ entries: number }>(await callIn(dataDir, ['--json', 'stats'])).entries;
  const INFER = ['infer', '--purpose', 'TREAT', '--policy', policy, '--actor', 'dr-derm', '--actor-role', 'dermatologist', '--pipeline', 'pipeline.json', '--model', 'model.json'];

  before(async () => {
    ensureBuilt();
    await initDataDir(dataDir, { origin: 'explain.test/cli' });
    vkey = (await import('node:fs')).readFileSync(join(dataDir, 'log.pub'), 'utf8').trim();
    registerSecret((await import('node:fs')).readFileSync(join(dataDir, 'log.key'), 'utf8'));
    const { dir, log } = await openLog(dataDir);
    try {
      const g = await Governance.open({ log });
      await g.createConsent({ policyId: policy, subject: 'patient-cli', allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist', 'ml_engineer'] }, OFFICER);
    } finally {
      await log.close();
      await dir.store.close();
    }
    writeFileSync(join(tmp.path, 'pipeline.json'), JSON.stringify(PIPELINE));
    writeFileSync(join(tmp.path, 'model.json'), JSON.stringify(MODEL));
    // 12 MiB of varied bytes, written in chunks: larger than any single read.
    big = join(tmp.path, 'scan.dcm');
    const fd = openSync(big, 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 12; i++) {
      for (let j = 0; j < chunk.length; j += 32) createHash('sha256').update(`${i}:${j}`).digest().copy(chunk, j);
      writeSync(fd, chunk);
    }
    writeSync(fd, Buffer.from('tail that is not a whole chunk'));
    closeSync(fd);
    const s = spawnSync('sha256sum', [big], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stderr);
    bigDigest = s.stdout.split(' ')[0]!;
    writeFileSync(join(tmp.path, 'report.json'), '{"finding":"benign"}');
    writeFileSync(join(tmp.path, 'shap.png'), Buffer.alloc(4096, 7));
    writeFileSync(join(tmp.path, 'ex-shap.json'), JSON.stringify({ method: 'kernel_shap', output: 'report_json', parameters: SHAP_PARAMS, file: 'shap.png', uri: URI_SHAP }));
    writeFileSync(join(tmp.path, 'ex-cam.json'), JSON.stringify([{ method: 'grad_cam', output: 'report_json', uri: URI_CAM, digest: sha('cam') }]));
    writeFileSync(join(tmp.path, 'ex-bad.json'), JSON.stringify({ method: 'grad_cam', output: 'heatmap', uri: URI_CAM, digest: sha('cam') }));
  });

  after(() => tmp.cleanup());

  it('infer --input-file (12 MiB) --output-file --explanation: digests streamed equal sha256sum; receipt and bundle carry the explanations', async () => {
    const r = okJson<{ receipt: { input: { digest: string }; outputs: { name: string; digest: string }[]; explanations: string }; event: { index: number } }>(
      await callIn(dataDir, ['--json', ...INFER, '--input-file', 'scan.dcm', '--output-file', 'report_json=report.json', '--explanation', 'ex-shap.json', '--explanation', 'ex-cam.json'], {
        cwd: tmp.path,
      }),
    );
    assert.equal(r.receipt.input.digest, bigDigest);
    assert.deepEqual(
      r.receipt.outputs.map((o) => [o.name, o.digest]),
      [['report_json', sha('{"finding":"benign"}')]],
    );
    assert.match(r.receipt.explanations, /^[0-9a-f]{64}$/);
    const index = r.event.index;

    // The receipt: both explanations, the file's digest, the URIs (the input by its file: URI).
    const rc = okJson<{ ok: boolean; explanations: { explanations: { method: string; digest: string; parameters: unknown }[] }; artifacts: { role: string; uri: string | null; digest: string }[] }>(
      await callIn(dataDir, ['--json', 'receipt', String(index), '--open', '--purpose', 'TREAT', '--actor', 'po-1', '--actor-role', 'privacy_officer']),
    );
    assert.equal(rc.ok, true);
    assert.deepEqual(
      rc.explanations.explanations.map((x) => [x.method, x.digest, x.parameters]),
      [
        ['kernel_shap', sha(Buffer.alloc(4096, 7)), SHAP_PARAMS],
        ['grad_cam', sha('cam'), {}],
      ],
    );
    assert.deepEqual(
      rc.artifacts.map((a) => [a.role, a.uri]),
      [
        ['input', pathToFileURL(big).href],
        ['output report_json', pathToFileURL(join(tmp.path, 'report.json')).href],
        ['explanation 1 (kernel_shap of report_json)', URI_SHAP],
        ['explanation 2 (grad_cam of report_json)', URI_CAM],
      ],
    );
    const human = await callIn(dataDir, ['receipt', String(index)]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^explanation 1: kernel_shap of output report_json, parameters \{"background":"kmeans-50","link":"logit","nsamples":500\}$/m);
    assert.match(human.stdout, /^explanation 2 \(grad_cam of report_json\): \(sealed\) commitment [0-9a-f]{64} {2}sha256 /m);
    assert.match(human.stdout, /^ok {3}explanations match their event$/m);

    // The bundle: the explanations document and the openings of its URIs, checked offline.
    const out = join(tmp.path, 'b.json');
    const b = okJson<{ opened: string[] }>(await callIn(dataDir, ['--json', 'bundle', String(index), '-o', out, '--purpose', 'TREAT', '--actor', 'po-1', '--actor-role', 'privacy_officer']));
    assert.equal(b.opened.length, 4);
    const v = okJson<BundleVerification>(await callCli(['--json', 'verify-bundle', out, '--key', vkey]));
    assert.equal(v.ok, true);
    const names = v.checks.map((c) => c.name);
    assert.ok(names.includes('document:explanations'));
    assert.ok(names.includes('opening:explanation 1 (kernel_shap of report_json)'));
    const bundle = JSON.parse((await import('node:fs')).readFileSync(out, 'utf8')) as Bundle;
    const key = parseVerifierKey(vkey);
    // An edited explanations document in the bundle fails its own check.
    const edited = JSON.parse(JSON.stringify(bundle)) as { verificationMaterial: { documents: Record<string, string> } };
    edited.verificationMaterial.documents['explanations'] = edited.verificationMaterial.documents['explanations']!.replace('kernel_shap', 'lime');
    const ve = verifyBundle(edited, { logKey: key });
    assert.deepEqual([ve.failed?.name, ve.failed?.code], ['document:explanations', 'DOCUMENT_HASH_MISMATCH']);
    // Left out (as an erasure would): skipped, not failed; and an opening of its URIs no longer opens a commitment of the receipt.
    const dropped = JSON.parse(JSON.stringify(bundle)) as { verificationMaterial: { documents: Record<string, string> } };
    delete dropped.verificationMaterial.documents['explanations'];
    const vd = verifyBundle(dropped, { logKey: key });
    assert.equal(vd.checks.find((c) => c.name === 'document:explanations')?.status, 'skipped');
    assert.equal(vd.failed?.code, 'OPENING_MISMATCH');
    const redacted = okJson<{ redacted: boolean }>(await callIn(dataDir, ['--json', 'bundle', String(index), '-o', join(tmp.path, 'r.json'), '--redact']));
    assert.equal(redacted.redacted, true);
    const vr = okJson<BundleVerification>(await callCli(['--json', 'verify-bundle', join(tmp.path, 'r.json'), '--key', vkey]));
    assert.equal(vr.ok, true);
  });

  it('an edited explanations document: custos verify exits 4 naming the entry; custos receipt fails', async () => {
    const r = okJson<{ receipt: { explanations: string }; event: { index: number } }>(
      await callIn(dataDir, ['--json', ...INFER, '--input-uri', URI_IN, '--input-digest', sha('in'), '--output', `report_json=s3://x/r.json@${sha('r')}`, '--explanation', 'ex-cam.json'], {
        cwd: tmp.path,
      }),
    );
    const copy = join(tmp.path, `copy-${r.event.index}`);
    cpSync(dataDir, copy, { recursive: true });
    editDocument(copy, r.receipt.explanations, (o) => ({ ...o, explanations: (o['explanations'] as object[]).map((x) => ({ ...x, method: 'lime' })) }));
    const v = await callIn(copy, ['verify']);
    assertError(v, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
    assert.match(v.stdout, new RegExp(`^DOCUMENT_EDITED \\(event ${r.event.index}\\): explanations document ${r.receipt.explanations.slice(0, 16)}`, 'm'));
    const rc = await callIn(copy, ['receipt', String(r.event.index)]);
    assertError(rc, EXIT.verification, 'RECEIPT_INVALID', { stdoutAllowed: true });
    assert.match(rc.stdout, /^FAIL explanations document \(edited/m);
  });

  it('a missing or unreadable file, a digest beside a file, an output not among the outputs: refused, nothing written', async () => {
    const before = await size();
    const cases: [string[], number, string][] = [
      [[...INFER, '--input-file', 'nope.dcm', '--output', `report_json=s3://x/r.json@${sha('r')}`], EXIT.validation, 'FILE_UNREADABLE'],
      [[...INFER, '--input-file', '.', '--output', `report_json=s3://x/r.json@${sha('r')}`], EXIT.validation, 'FILE_UNREADABLE'],
      [[...INFER, '--input-file', 'scan.dcm', '--output-file', 'report_json=missing.json'], EXIT.validation, 'FILE_UNREADABLE'],
      [[...INFER, '--input-file', 'scan.dcm', '--input-digest', sha('x'), '--output', `report_json=s3://x/r.json@${sha('r')}`], EXIT.validation, 'VALIDATION_FAILED'],
      [[...INFER, '--input-uri', URI_IN, '--output', `report_json=s3://x/r.json@${sha('r')}`], EXIT.validation, 'VALIDATION_FAILED'],
      [[...INFER, '--input-file', 'scan.dcm', '--output', `report_json=s3://x/r.json@${sha('r')}`, '--explanation', 'ex-bad.json'], EXIT.validation, 'VALIDATION_FAILED'],
      [[...INFER, '--input-file', 'scan.dcm', '--output', `report_json=s3://x/r.json@${sha('r')}`, '--explanation', 'no-such.json'], EXIT.validation, 'FILE_UNREADABLE'],
      [['access', '--purpose', 'TREAT', '--policy', policy, '--actor', 'dr-derm', '--actor-role', 'dermatologist', '--artifact-file', 'gone.jpg'], EXIT.validation, 'FILE_UNREADABLE'],
    ];
    for (const [args, exit, code] of cases) assertError(await callIn(dataDir, ['--json', ...args], { cwd: tmp.path }), exit, code);
    assert.equal(await size(), before, 'nothing written');
  });

  it('access --artifact-file and train --dataset-file stream the digest too', async () => {
    const a = await callIn(dataDir, ['--json', 'access', '--purpose', 'TREAT', '--policy', policy, '--actor', 'dr-derm', '--actor-role', 'dermatologist', '--artifact-file', 'scan.dcm'], {
      cwd: tmp.path,
    });
    const ai = okJson<{ event: { index: number } }>(a).event.index;
    const { dir, log } = await openLog(dataDir);
    try {
      const e = JSON.parse((await log.reader.getEntry(ai)).bytes.toString('utf8')) as { payload: { artifact: { digest: string } } };
      assert.equal(e.payload.artifact.digest, bigDigest);
    } finally {
      await log.close();
      await dir.store.close();
    }
    writeFileSync(join(tmp.path, 'manifest.json'), JSON.stringify({ name: 'finetune' }));
    const t = okJson<{ event: { index: number } }>(
      await callIn(
        dataDir,
        [
          '--json',
          'train',
          '--purpose',
          'HRESCH',
          '--actor',
          'eng-7',
          '--actor-role',
          'ml_engineer',
          '--dataset-file',
          'scan.dcm',
          '--dataset-uri',
          's3://clinic/cohort.parquet',
          '--dataset-type',
          'synthetic',
          '--attestation',
          'synthetic-generator',
          '--manifest',
          'manifest.json',
          '--model-before',
          'model.json',
          '--model-after',
          'model.json',
          '--compute',
          'cpu',
        ],
        { cwd: tmp.path },
      ),
    );
    const { dir: d2, log: l2 } = await openLog(dataDir);
    try {
      const e = JSON.parse((await l2.reader.getEntry(t.event.index)).bytes.toString('utf8')) as { payload: { dataset: { digest: string; uri: string } } };
      assert.equal(e.payload.dataset.digest, bigDigest);
      assert.equal((await l2.sidecar.getCommitment(e.payload.dataset.uri))?.value, 's3://clinic/cohort.parquet');
    } finally {
      await l2.close();
      await d2.store.close();
    }
  });
});

describe('explanations over HTTP', () => {
  let env: ServerEnv;
  const call = (who: 'dermatologist' | 'auditor', method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
    env.app.inject({ method, url, headers: { authorization: `Bearer ${env.tokens[who]}` }, ...(payload ? { payload } : {}) });
  const body = (explanations: unknown[]) => {
    const { actor: _actor, ...rest } = inference(pid('ex-http'), explanations);
    void _actor;
    return rest as unknown as Record<string, unknown>;
  };

  before(async () => {
    env = await createServerEnv();
    await env.governance.createConsent({ policyId: pid('ex-http'), subject: 'patient-h', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
  });
  after(async () => env.close());

  it('POST /api/v1/inferences takes explanations; a bad output is 400 with nothing written; the receipt route returns them', async () => {
    const size = await env.log.reader.size();
    const bad = await call('dermatologist', 'POST', '/api/v1/inferences', body([{ ...TWO[0], output: 'heatmap' }]));
    assert.equal(bad.statusCode, 400, bad.body);
    assert.equal((bad.json() as { error: { code: string } }).error.code, 'VALIDATION_FAILED');
    assert.match(bad.body, /explanations\.0\.output/);
    const badMethod = await call('dermatologist', 'POST', '/api/v1/inferences', body([{ ...TWO[0], method: 'astrology' }]));
    assert.equal(badMethod.statusCode, 400, badMethod.body);
    assert.equal(await env.log.reader.size(), size, 'nothing written');

    const ok = await call('dermatologist', 'POST', '/api/v1/inferences', body(TWO));
    assert.equal(ok.statusCode, 201, ok.body);
    const r = ok.json() as { receipt: { explanations: string }; event: { index: number } };
    assert.match(r.receipt.explanations, /^[0-9a-f]{64}$/);
    const rc = await call('auditor', 'GET', `/api/v1/receipts/${r.event.index}`);
    assert.equal(rc.statusCode, 200, rc.body);
    const rb = rc.json() as { ok: boolean; explanations: { explanations: { method: string; output: string }[] }; artifacts: { role: string; uri: string | null; state: string }[] };
    assert.equal(rb.ok, true);
    assert.deepEqual(
      rb.explanations.explanations.map((x) => [x.method, x.output]),
      [
        ['kernel_shap', 'report_json'],
        ['grad_cam', 'mask'],
      ],
    );
    // Sealed for the auditor: commitments only.
    assert.ok(rb.artifacts.filter((a) => a.role.startsWith('explanation')).every((a) => a.uri === null && a.state === 'sealed'));
    const bundle = await call('auditor', 'GET', `/api/v1/bundles/${r.event.index}`);
    assert.equal(bundle.statusCode, 200, bundle.body);
    const v = verifyBundle(bundle.json(), { logKey: env.dir.verifier });
    assert.equal(v.ok, true, JSON.stringify(v.failed));
    assert.equal(v.checks.find((c) => c.name === 'document:explanations')?.status, 'pass');
  });
});
