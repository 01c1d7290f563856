/**
 * Erasure is physical and atomic (security issue #9, defect 2), over a real SQLite data directory:
 * - after `erase`, no file of the data directory (database, WAL, -shm, journal) holds the erased
 *   value or its salt (raw, hex, base64), neither while the log is open nor after a restart;
 * - erasing a subject erases its linked URI openings (inference outputs included);
 * - the ERASURE_PERFORMED event and the deletion are one transaction: a failed deletion leaves no
 *   event, and the opening;
 * - POST /api/v1/erasures: privacy_officer only; bad bodies write nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { DB_FILE, type DataDir } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import type { Governance } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp } from '../src/server/app.js';
import { verifyLog } from '../src/log/verify-log.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { rebuildReceipt } from '../src/service/receipt.js';
import { hasCode } from '../src/core/errors.js';
import type { SidecarCommitment } from '../src/store/store.js';
import { pid } from './helpers/policy-ids.js';
import { useTempRoot } from './helpers/fixtures.js';

const PO = { id: 'po-1', role: 'privacy_officer' };
const DERM = { id: 'dr-1', role: 'dermatologist' };
const D = 'ab'.repeat(32);
const PIPELINE = { pipelineName: 'p', pipelineVersion: '1' };
const MODEL = { modelName: 'm', modelVersion: '1', weightsHash: 'ef'.repeat(32), framework: 'onnx' };

const root = useTempRoot('erasure');

async function open(dataDir?: string): Promise<{ dataDir: string; dir: DataDir; log: Log; g: Governance; close(): Promise<void> }> {
  const f = await root.openGovernance({ origin: 'erasure.test/log', ...(dataDir ? { dataDir } : {}) });
  return { dataDir: f.dataDir, dir: f.dir, log: f.log, g: f.gov, close: f.close };
}

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else out.push(p);
  }
  return out;
}

/** The byte forms an opening could take in a file: the value (UTF-8), the salt raw, hex and base64. */
function needles(o: SidecarCommitment): { what: string; bytes: Buffer }[] {
  return [
    { what: `${o.kind} value ${o.value}`, bytes: Buffer.from(o.value, 'utf8') },
    { what: `salt of ${o.kind} (raw)`, bytes: o.salt },
    { what: `salt of ${o.kind} (hex)`, bytes: Buffer.from(o.salt.toString('hex'), 'latin1') },
    { what: `salt of ${o.kind} (base64)`, bytes: Buffer.from(o.salt.toString('base64'), 'latin1') },
  ];
}

/** Asserts that no file in `dir` contains any needle; returns how many files were searched. */
function assertNowhere(dir: string, openings: readonly SidecarCommitment[], when: string): number {
  const list = files(dir);
  for (const f of list) {
    const bytes = readFileSync(f);
    for (const o of openings) for (const nd of needles(o)) assert.equal(bytes.indexOf(nd.bytes), -1, `${when}: ${f} still holds the ${nd.what}`);
  }
  return list.length;
}

/** A subject with a policy, an inference (input + output), 80 accesses and a denied inference. */
async function populate(g: Governance, tag: string): Promise<{ subject: string; input: string; output: string; denied: string }> {
  const subject = `patient-${tag}-${randomBytes(6).toString('hex')}`;
  const input = `s3://clinic/${tag}/${randomBytes(6).toString('hex')}/in.jpg`;
  const output = `s3://clinic/${tag}/${randomBytes(6).toString('hex')}/report.json`;
  const denied = `s3://clinic/${tag}/${randomBytes(6).toString('hex')}/denied.jpg`;
  await g.createConsent({ policyId: pid(`pol-${tag}`), subject, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, PO);
  await g.recordInference({
    actor: DERM,
    purpose: 'TREAT',
    policyId: pid(`pol-${tag}`),
    input: { uri: input, digest: D },
    outputs: [{ name: 'report', uri: output, digest: D }],
    pipeline: PIPELINE,
    model: MODEL,
  });
  // One batch per access: every commit rewrites the pages around the openings into the WAL.
  for (let i = 0; i < 80; i++) await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid(`pol-${tag}`), artifact: { uri: input, digest: D } });
  await assert.rejects(g.recordDataAccess({ actor: DERM, purpose: 'HRESCH', policyId: pid(`pol-${tag}`), artifact: { uri: denied, digest: D } }), (err: unknown) => hasCode(err, 'CONSENT_DENIED'));
  return { subject, input, output, denied };
}

describe('erasure is physical (SQLite)', () => {
  it('after erase --subject, no file of the data directory holds the subject, its linked URIs or their salts; nor after a restart', async () => {
    const env = await open();
    const other = await populate(env.g, 'keep');
    const v = await populate(env.g, 'gone');
    const store = env.dir.store;
    const openings: SidecarCommitment[] = [];
    for (const [kind, value] of [
      ['subject', v.subject],
      ['uri', v.input],
      ['uri', v.output],
      ['uri', v.denied],
    ] as const) {
      const o = await store.findCommitment(kind, value);
      assert.ok(o, `${kind} ${value} has an opening before the erasure`);
      openings.push(o);
    }
    // A reader that opened the file meanwhile (as `custos verify` would) does not keep the WAL alive.
    const r = await env.g.erase('subject', v.subject, PO);
    assert.deepEqual(r.commitments, openings.map((o) => o.commitment).sort());
    assert.equal(r.scrub?.complete, true, r.scrub?.detail);
    for (const o of openings) assert.equal(await store.getCommitment(o.commitment), undefined);
    // While the process still has the database open (WAL and -shm present).
    const searched = assertNowhere(env.dataDir, openings, 'after erasure, log open');
    assert.ok(searched >= 3, `searched ${searched} files`);
    // The other subject's openings are untouched, and the log and off-ledger store still verify.
    assert.ok(await store.findCommitment('subject', other.subject));
    assert.ok(await store.findCommitment('uri', other.input));
    assert.equal((await verifyLog({ store, verifiers: [env.dir.verifier], origin: env.dir.origin })).ok, true);
    assert.equal((await verifyDocuments({ store })).ok, true);
    // More appends after the erasure, then a restart.
    await populate(env.g, 'after');
    await env.close();
    assertNowhere(env.dataDir, openings, 'after restart');
    const again = await open(env.dataDir);
    await again.g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid('pol-keep'), artifact: { uri: other.input, digest: D } });
    assertNowhere(env.dataDir, openings, 'after restart, log reopened');
    await again.close();
  });

  it('a crash between the erasure and its scrub: the next writer to open the file truncates the WAL', async () => {
    const env = await open();
    const v = await populate(env.g, 'crash');
    const opening = (await env.dir.store.findCommitment('subject', v.subject))!;
    // A second connection holding a read transaction keeps the erasure's scrub from completing
    // (TRUNCATE must wait for it), as a long `custos verify` would.
    const reader = new Database(join(env.dataDir, DB_FILE), { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT COUNT(*) FROM commitments').get();
    const r = await env.g.erase('subject', v.subject, PO);
    assert.equal(r.scrub?.complete, false, 'a reader on an older snapshot blocks the WAL truncation');
    assert.match(r.scrub?.detail ?? '', /snapshot/);
    reader.exec('COMMIT');
    reader.close();
    // The process dies without closing (the WAL is not checkpointed on the way out).
    const next = await open(env.dataDir);
    assertNowhere(env.dataDir, [opening], 'after the next open');
    await next.close();
    await env.close();
  });
});

describe('what a subject is linked to', () => {
  it('its external reference, and the dataset of a training run on identified data under its consent; not an attested dataset', async () => {
    const env = await open();
    const subject = `patient-train-${randomBytes(6).toString('hex')}`;
    const externalRef = `form-${randomBytes(6).toString('hex')}`;
    const policyId = pid('pol-train');
    await env.g.createConsent({ policyId, subject, externalRef, allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['ml_engineer'] }, PO);
    const base = {
      actor: { id: 'eng-1', role: 'ml_engineer' },
      purpose: 'HRESCH',
      manifest: { name: 'ft', lr: 0.001 },
      modelBefore: MODEL,
      modelAfter: { ...MODEL, modelVersion: '2' },
      computeBackend: 'cpu',
    };
    const cohort = `s3://train/${randomBytes(6).toString('hex')}/cohort.parquet`;
    const synthetic = `s3://train/${randomBytes(6).toString('hex')}/synthetic.parquet`;
    await env.g.recordTraining({ ...base, dataset: { uri: cohort, digest: D, type: 'identified' }, policyIds: [policyId] });
    await env.g.recordTraining({ ...base, dataset: { uri: synthetic, digest: D, type: 'synthetic' }, attestation: { method: 'synthetic-generator' } });
    const store = env.dir.store;
    const expected = [
      (await store.findCommitment('subject', subject))!.commitment,
      (await store.findCommitment('external_ref', externalRef))!.commitment,
      (await store.findCommitment('uri', cohort))!.commitment,
    ].sort();
    const r = await env.g.erase('subject', subject, PO);
    assert.deepEqual(r.commitments, expected);
    assert.ok(await store.findCommitment('uri', synthetic), 'an attested dataset is linked to no subject');
    await env.close();
  });
});

describe('erasure is one transaction with its event', () => {
  it('a deletion that fails leaves no ERASURE_PERFORMED event, and the opening', async () => {
    const env = await open();
    const v = await populate(env.g, 'tx');
    const opening = (await env.dir.store.findCommitment('subject', v.subject))!;
    const size = env.log.size;
    // Another connection makes every deletion of an opening fail.
    const db = new Database(join(env.dataDir, DB_FILE));
    db.exec("CREATE TRIGGER no_erase BEFORE DELETE ON commitments BEGIN SELECT RAISE(ABORT, 'refused'); END");
    await assert.rejects(env.g.erase('subject', v.subject, PO), (err: unknown) => hasCode(err, 'STORE_FAILURE'));
    assert.equal(await env.dir.store.treeSize(), size, 'no event was committed');
    assert.deepEqual(await env.dir.store.getCommitment(opening.commitment), opening, 'the opening is still there');
    db.exec('DROP TRIGGER no_erase');
    db.close();
    const r = await env.g.erase('subject', v.subject, PO);
    assert.equal(r.event?.index, size);
    assert.equal(await env.dir.store.getCommitment(opening.commitment), undefined);
    await env.close();
  });
});

describe('POST /api/v1/erasures', () => {
  it('privacy_officer erases (201) through the same path as the CLI; other roles get 403; a bad body writes nothing', async () => {
    const env = await open();
    const auth = new Authenticator({ log: env.log });
    const tokens: Record<string, string> = {};
    for (const role of ['privacy_officer', 'admin', 'auditor', 'dermatologist', 'nurse', 'ml_engineer']) {
      tokens[role] = (await auth.createToken(`${role}-1`, role, { actor: 'setup', role: 'operator' })).token;
    }
    const app = await createApp({ log: env.log, governance: env.g, auth, verifiers: [env.dir.verifier], origin: env.dir.origin, logger: false });
    try {
      const v = await populate(env.g, 'http');
      const post = (role: string | undefined, body: unknown) =>
        app.inject({
          method: 'POST',
          url: '/api/v1/erasures',
          headers: { 'content-type': 'application/json', ...(role ? { authorization: `Bearer ${tokens[role]}` } : {}) },
          payload: JSON.stringify(body),
        });
      const size = env.log.size;
      for (const role of ['admin', 'auditor', 'dermatologist', 'nurse', 'ml_engineer']) {
        const res = await post(role, { kind: 'subject', value: v.subject });
        assert.equal(res.statusCode, 403, `${role}: ${res.body}`);
        assert.equal((res.json() as { error: { code: string } }).error.code, 'FORBIDDEN');
      }
      assert.equal((await post(undefined, { kind: 'subject', value: v.subject })).statusCode, 401);
      for (const bad of [{}, { kind: 'patient', value: v.subject }, { kind: 'subject', value: '' }, { kind: 'subject', value: 7 }, { kind: 'subject', value: v.subject, extra: 1 }]) {
        const res = await post('privacy_officer', bad);
        assert.equal(res.statusCode, 400, `${JSON.stringify(bad)}: ${res.body}`);
      }
      // Claiming another actor is refused.
      assert.equal((await post('privacy_officer', { kind: 'subject', value: v.subject, actor: { id: 'someone-else' } })).statusCode, 403);
      // Refusals are audited (SECURITY_ALERT); nothing else was written.
      const onlyAlerts = async (from: number, what: string) => {
        await env.log.flush();
        for (let i = from; i < env.log.size; i++) {
          const t = (JSON.parse((await env.log.reader.getEntry(i)).bytes.toString('utf8')) as { type: string }).type;
          assert.equal(t, 'SECURITY_ALERT', `${what}: entry ${i}`);
        }
      };
      await onlyAlerts(size, 'refused requests');
      assert.ok(await env.dir.store.findCommitment('subject', v.subject));

      const res = await post('privacy_officer', { kind: 'subject', value: v.subject });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json() as { erased: string[]; event: { index: number }; scrub: { complete: boolean } };
      assert.equal(body.erased.length, 4, 'the subject, the input, the output and the denied URI');
      assert.ok(body.event.index >= size);
      assert.equal(body.scrub.complete, true);
      const e = JSON.parse((await env.log.reader.getEntry(body.event.index)).bytes.toString('utf8')) as { type: string; payload: { actor: string; role: string; commitments: string[] } };
      assert.equal(e.type, 'ERASURE_PERFORMED');
      assert.equal(e.payload.actor, 'privacy_officer-1');
      assert.deepEqual(e.payload.commitments, body.erased);
      assert.equal(await env.dir.store.findCommitment('uri', v.output), undefined);
      // Again: nothing left to erase, nothing written.
      const again = await post('privacy_officer', { kind: 'subject', value: v.subject });
      assert.equal(again.statusCode, 200);
      assert.deepEqual(again.json(), { erased: [], event: null });
      await onlyAlerts(body.event.index + 1, 'a second erasure');
      // The route is in the OpenAPI document with its permission.
      const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, Record<string, unknown>>> };
      assert.equal(spec.paths['/api/v1/erasures']?.['post']?.['x-custos-permission'], 'erase');
    } finally {
      await app.close();
      await env.close();
    }
  });
});

describe('erasure of a provenance document (kind document)', () => {
  const MARKER = 'patient Zed Quux MRN 99887766';
  /** Asserts that no file under `dir` holds the marker (UTF-8, or JSON-escaped as it would be stored). */
  function assertMarkerNowhere(dir: string, when: string): void {
    for (const f of files(dir)) assert.equal(readFileSync(f).indexOf(Buffer.from(MARKER, 'utf8')), -1, `${when}: ${f} still holds the marker`);
  }
  async function inferWithMarker(g: Governance, tag: string): Promise<{ index: number; pipeline: string; receipt: string; policy: string; model: string }> {
    const policyId = pid(`pol-doc-${tag}`);
    await g.createConsent({ policyId, subject: `patient-${tag}-${randomBytes(6).toString('hex')}`, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, PO);
    const r = await g.recordInference({
      actor: DERM,
      purpose: 'TREAT',
      policyId,
      input: { uri: `s3://clinic/${tag}/${randomBytes(6).toString('hex')}/in.jpg`, digest: D },
      outputs: [{ name: 'report', uri: `s3://clinic/${tag}/${randomBytes(6).toString('hex')}/out.json`, digest: D }],
      pipeline: { ...PIPELINE, parameters: { note: MARKER } },
      model: MODEL,
    });
    const docs = (r.event as unknown as { index: number }).index;
    return { index: docs, pipeline: r.receipt.pipeline, receipt: r.receiptHash, policy: r.receipt.consent.policyHash, model: r.receipt.model };
  }

  it("deletes the pipeline manifest in the erasure event's transaction: no file holds it (open, after restart); the log, documents and receipt still verify", async () => {
    const env = await open();
    const a = await inferWithMarker(env.g, 'doc');
    const store = env.dir.store;
    assert.ok(await store.getDocument(a.pipeline), 'the pipeline manifest is stored before the erasure');
    assert.ok(
      files(env.dataDir).some((f) => readFileSync(f).indexOf(Buffer.from(MARKER, 'utf8')) >= 0),
      'the search finds the marker before the erasure',
    );
    const r = await env.g.erase('document', a.pipeline, PO);
    assert.ok(r.event, 'an ERASURE_PERFORMED event was written');
    assert.equal(r.document, a.pipeline);
    assert.equal(r.scrub?.complete, true, r.scrub?.detail);
    const e = JSON.parse((await env.log.reader.getEntry(r.event.index)).bytes.toString('utf8')) as { type: string; payload: { kind: string; document: string; commitments: string[] } };
    assert.equal(e.type, 'ERASURE_PERFORMED');
    assert.equal(e.payload.kind, 'document');
    assert.equal(e.payload.document, a.pipeline);
    assert.equal(await store.getDocument(a.pipeline), undefined);
    assertMarkerNowhere(env.dataDir, 'after erasure, log open');
    assert.equal((await verifyLog({ store, verifiers: [env.dir.verifier], origin: env.dir.origin })).ok, true);
    const docs = await verifyDocuments({ store });
    assert.deepEqual(docs.findings, []);
    assert.equal(docs.documentsErased, 1);
    // The receipt rebuilds: the pipeline is reported erased (hash kept), every check passes.
    const rb = await rebuildReceipt(store, [env.dir.verifier], env.dir.origin, a.index);
    assert.equal(rb.ok, true, JSON.stringify(rb.checks));
    assert.deepEqual(
      rb.erased.map((x) => [x.what, x.hash, x.erasureIndex]),
      [['pipeline manifest', a.pipeline, r.event.index]],
    );
    assert.equal(rb.pipeline, undefined);
    assert.ok(rb.model, 'the model spec is still there');
    // Again: nothing stored under that hash, nothing written.
    const size = env.log.size;
    assert.deepEqual(await env.g.erase('document', a.pipeline, PO), { commitments: [], event: undefined });
    assert.equal(env.log.size, size);
    await env.close();
    assertMarkerNowhere(env.dataDir, 'after restart');
    const again = await open(env.dataDir);
    assertMarkerNowhere(env.dataDir, 'after restart, log reopened');
    // A later inference with the same pipeline stores the document again: present, verified.
    const b = await inferWithMarker(again.g, 'doc2');
    assert.equal(b.pipeline, a.pipeline);
    assert.ok(await again.dir.store.getDocument(a.pipeline), 'stored again by the later event');
    const docs2 = await verifyDocuments({ store: again.dir.store });
    assert.deepEqual(docs2.findings, []);
    assert.equal(docs2.documentsErased, 0);
    assert.equal((await rebuildReceipt(again.dir.store, [again.dir.verifier], again.dir.origin, a.index)).ok, true);
    await again.close();
  });

  it('a consent policy or a receipt cannot be erased (VALIDATION_FAILED, nothing written), nor a malformed hash; the model spec can', async () => {
    const env = await open();
    const a = await inferWithMarker(env.g, 'refuse');
    const size = env.log.size;
    for (const hash of [a.policy, a.receipt]) {
      await assert.rejects(env.g.erase('document', hash, PO), (err: unknown) => hasCode(err, 'VALIDATION_FAILED'));
      assert.ok(await env.dir.store.getDocument(hash));
    }
    await assert.rejects(env.g.erase('document', 'not-a-hash', PO), (err: unknown) => hasCode(err, 'VALIDATION_FAILED'));
    assert.equal(env.log.size, size, 'nothing written');
    // The model spec, in the same inference, can be.
    const r = await env.g.erase('document', a.model, PO);
    assert.ok(r.event);
    assert.equal(await env.dir.store.getDocument(a.model), undefined);
    const docs = await verifyDocuments({ store: env.dir.store });
    assert.deepEqual(docs.findings, []);
    assert.equal(docs.documentsErased, 1);
    await env.close();
  });

  it('POST /api/v1/erasures {kind: "document"}: privacy_officer 201, other roles 403', async () => {
    const env = await open();
    const auth = new Authenticator({ log: env.log });
    const tokens: Record<string, string> = {};
    for (const role of ['privacy_officer', 'admin', 'dermatologist']) tokens[role] = (await auth.createToken(`${role}-1`, role, { actor: 'setup', role: 'operator' })).token;
    const app = await createApp({ log: env.log, governance: env.g, auth, verifiers: [env.dir.verifier], origin: env.dir.origin, logger: false });
    try {
      const a = await inferWithMarker(env.g, 'http');
      const post = (role: string, body: unknown) =>
        app.inject({ method: 'POST', url: '/api/v1/erasures', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[role]}` }, payload: JSON.stringify(body) });
      for (const role of ['admin', 'dermatologist']) assert.equal((await post(role, { kind: 'document', value: a.pipeline })).statusCode, 403);
      assert.ok(await env.dir.store.getDocument(a.pipeline));
      assert.equal((await post('privacy_officer', { kind: 'document', value: a.policy })).statusCode, 400);
      const res = await post('privacy_officer', { kind: 'document', value: a.pipeline });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json() as { erased: string[]; document: string; event: { index: number } };
      assert.equal(body.document, a.pipeline);
      assert.equal(await env.dir.store.getDocument(a.pipeline), undefined);
      const again = await post('privacy_officer', { kind: 'document', value: a.pipeline });
      assert.equal(again.statusCode, 200);
      assert.deepEqual(again.json(), { erased: [], event: null });
    } finally {
      await app.close();
      await env.close();
    }
  });
});
