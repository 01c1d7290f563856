/**
 * Tamper tests of the off-ledger store: the documents, commitment openings and policy heads that
 * live beside the log in custos.db. A small governed log (policies, accesses, inferences, a
 * training run, a revocation, a refusal) is built once through the library; every test copies
 * it, edits the copy's SQLite file through a separate better-sqlite3 connection, as an attacker
 * with write access to the file would, and checks that `verifyDocuments` names the defect with the
 * right kind, reference and event, that `rebuildReceipt` names the failing check, and that the
 * service refuses to decide under an edited policy (and logs the refusal).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJsonBytes } from '../src/core/canonical-json.js';
import { hasCode } from '../src/core/errors.js';
import { DB_FILE, initDataDir, openDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import { ConsentDeniedError, DOC, Governance, type Actor } from '../src/service/governance.js';
import { verifyDocuments, type DocumentFinding, type DocumentReport } from '../src/service/verify-documents.js';
import { rebuildReceipt } from '../src/service/receipt.js';
import { assertError, assertOk, ensureBuilt, makeTempDir, okJson, parseJson, registerSecret, callIn } from './helpers/cli.js';

const sha256Hex = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

const OFFICER: Actor = { id: 'privacy-officer-1', role: 'privacy_officer' };
const DERM: Actor = { id: 'user_42', role: 'dermatologist' };
const ENGINEER: Actor = { id: 'eng-7', role: 'ml_engineer' };
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: sha256Hex('weights 0.9.3'), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { resize: 224 } };

/** What the fixture log holds, by entry index and document hash. */
interface Fixture {
  readonly dir: string;
  readonly size: number;
  readonly main: { index: number; hash: string; subject: string };
  readonly rev: { index: number; hash: string; headV1: string; revokeIndex: number; v2hash: string };
  readonly access: number;
  readonly inf1: { index: number; receiptHash: string; inputUri: string; pipeline: string; model: string };
  readonly inf2: { index: number; receiptHash: string };
  readonly training: { index: number; manifestHash: string };
  readonly denied: number;
}

const tmp = makeTempDir('custos-doc-tamper-');
let counter = 0;
const fresh = (name: string): string => join(tmp.path, `${name}-${++counter}`);
let fx: Fixture;

async function buildFixture(dir: string): Promise<Fixture> {
  await initDataDir(dir, { origin: 'tamper.test/documents' });
  registerSecret(readFileSync(join(dir, 'log.key'), 'utf8'));
  const { dir: dd, log } = await openLog(dir);
  try {
    const g = await Governance.open({ log });
    const main = await g.createConsent({ policyId: pid('consent-main'), subject: 'patient-a', allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist', 'ml_engineer'] }, OFFICER);
    const rev = await g.createConsent({ policyId: pid('consent-rev'), subject: 'patient-b', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
    // The head row as the store holds it before the revocation: what a rollback would restore.
    const headV1 = (await dd.store.getState('policy', pid('consent-rev')))!;
    const access = await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid('consent-main'), artifact: { uri: 's3://b/patient-a/img1.jpg', digest: sha256Hex('img1') } });
    const inf1 = await g.recordInference({
      actor: DERM,
      purpose: 'TREAT',
      policyId: pid('consent-main'),
      input: { uri: 's3://b/patient-a/img1.jpg', digest: sha256Hex('img1') },
      outputs: [{ name: 'report_json', uri: 's3://b/patient-a/report1.json', digest: sha256Hex('report1') }],
      pipeline: PIPELINE,
      model: MODEL,
    });
    await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid('consent-rev'), artifact: { uri: 's3://b/patient-b/img.jpg', digest: sha256Hex('imgb') } });
    const inf2 = await g.recordInference({
      actor: DERM,
      purpose: 'TREAT',
      policyId: pid('consent-rev'),
      input: { uri: 's3://b/patient-b/img.jpg', digest: sha256Hex('imgb') },
      outputs: [{ name: 'report_json', uri: 's3://b/patient-b/report.json', digest: sha256Hex('reportb') }],
      pipeline: PIPELINE,
      model: MODEL,
    });
    const training = await g.recordTraining({
      actor: ENGINEER,
      purpose: 'HRESCH',
      dataset: { uri: 's3://b/synthetic/v1.parquet', digest: sha256Hex('synthetic'), type: 'synthetic' },
      manifest: { name: 'finetune-0.9.4', epochs: 3 },
      modelBefore: MODEL,
      modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: sha256Hex('weights 0.9.4') },
      attestation: { method: 'synthetic-generator' },
      computeBackend: 'cpu',
    });
    const revoked = await g.revokeConsent(pid('consent-rev'), OFFICER);
    const denied = await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid('consent-rev'), artifact: { uri: 's3://b/patient-b/img2.jpg', digest: sha256Hex('imgb2') } }).then(
      () => assert.fail('access after revocation was permitted'),
      (err: unknown) => {
        assert.ok(err instanceof ConsentDeniedError);
        assert.equal(err.decision.reason, 'REVOKED');
        return err.event.index;
      },
    );
    return {
      dir,
      size: log.size,
      main: { index: main.event.index, hash: main.hash, subject: main.policy.subject },
      rev: { index: rev.event.index, hash: rev.hash, headV1, revokeIndex: revoked.event.index, v2hash: revoked.hash },
      access: access.event.index,
      inf1: { index: inf1.event.index, receiptHash: inf1.receiptHash, inputUri: inf1.receipt.input.uri, pipeline: inf1.receipt.pipeline, model: inf1.receipt.model },
      inf2: { index: inf2.event.index, receiptHash: inf2.receiptHash },
      training: { index: training.event.index, manifestHash: training.manifestHash },
      denied,
    };
  } finally {
    await log.close();
    await dd.store.close();
  }
}

/** A fresh copy of the fixture's data directory, edited through a separate connection. */
function tamperedCopy(edit: (db: Database.Database) => void): string {
  const copy = fresh('copy');
  cpSync(fx.dir, copy, { recursive: true });
  const db = new Database(join(copy, DB_FILE), { fileMustExist: true });
  try {
    edit(db);
  } finally {
    db.close();
  }
  return copy;
}

/** Runs `fn` with the store of `dataDir` open (read-only), closing it afterwards. */
async function withStore<T>(dataDir: string, fn: (dir: DataDir) => Promise<T>): Promise<T> {
  const dir = await openDataDir(dataDir, { readonly: true });
  try {
    return await fn(dir);
  } finally {
    await dir.store.close();
  }
}

async function verifyCopy(dataDir: string): Promise<DocumentReport> {
  return withStore(dataDir, (dir) => verifyDocuments({ store: dir.store }));
}

type Shape = { kind: string; ref: string; eventIndex: number | undefined };
const sorted = (xs: Shape[]): Shape[] => [...xs].sort((a, b) => (a.kind + a.ref).localeCompare(b.kind + b.ref));
/** The findings as comparable records, without the messages, in a stable order. */
const shape = (r: DocumentReport): Shape[] => sorted(r.findings.map((f: DocumentFinding) => ({ kind: f.kind, ref: f.ref, eventIndex: f.eventIndex })));

/** The first top-level JSON document printed by `printJson` (2-space indented, closing brace on its own line). */
function leadingJson(stdout: string): string {
  const end = stdout.indexOf('\n}\n');
  assert.ok(stdout.startsWith('{') && end > 0, `stdout does not start with a JSON object:\n${stdout.slice(0, 500)}`);
  return stdout.slice(0, end + 3);
}

function readDoc(db: Database.Database, hash: string): Buffer {
  const b = db.prepare('SELECT data FROM documents WHERE hash = ?').pluck().get(hash) as Buffer | undefined;
  assert.ok(b, `no document ${hash}`);
  return b;
}

/** Rewrites a stored JSON document (keeping its hash key, as an attacker editing the file would). */
function editJsonDoc(db: Database.Database, hash: string, mutate: (o: Record<string, unknown>) => unknown): void {
  const o = JSON.parse(readDoc(db, hash).toString('utf8')) as Record<string, unknown>;
  const changes = db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(Buffer.from(JSON.stringify(mutate(o))), hash).changes;
  assert.equal(changes, 1);
}

before(async () => {
  fx = await buildFixture(fresh('fixture'));
  // Sanity of the fixture's layout, which the expectations below rely on.
  assert.deepEqual([fx.main.index, fx.rev.index, fx.access, fx.inf1.index, fx.inf2.index, fx.training.index, fx.rev.revokeIndex, fx.denied, fx.size], [0, 1, 2, 3, 5, 6, 7, 8, 9]);
});

after(() => {
  tmp.cleanup();
});

describe('verifyDocuments on the untampered store', () => {
  it('(g) a clean store: ok, no findings, every document and opening checked', async () => {
    const r = await verifyCopy(tamperedCopy(() => {}));
    const db = new Database(join(fx.dir, DB_FILE), { readonly: true, fileMustExist: true });
    let docs: number;
    let commitments: number;
    try {
      docs = db.prepare('SELECT count(*) FROM documents').pluck().get() as number;
      commitments = db.prepare('SELECT count(*) FROM commitments').pluck().get() as number;
    } finally {
      db.close();
    }
    assert.equal(r.ok, true);
    assert.deepEqual(r.findings, []);
    // 2 policies + 1 revocation, pipeline, model (shared), 2 receipts, training manifest, model after.
    assert.equal(docs, 9);
    assert.equal(r.documentsChecked, docs);
    assert.equal(r.documentsReferenced, docs, 'every stored document is committed by some event');
    assert.equal(r.commitmentsChecked, commitments);
    assert.ok(commitments >= 8, `expected the subject and URI openings, got ${commitments}`);
  });
});

describe('verifyDocuments names each off-ledger defect', () => {
  it('(a) an edited receipt -> DOCUMENT_EDITED at its INFERENCE_EXECUTED event; rebuildReceipt fails the receipt check', async () => {
    const copy = tamperedCopy((db) => editJsonDoc(db, fx.inf1.receiptHash, (r) => ({ ...r, purpose: 'HPAYMT' })));
    const r = await verifyCopy(copy);
    assert.equal(r.ok, false);
    assert.deepEqual(shape(r), [{ kind: 'DOCUMENT_EDITED', ref: fx.inf1.receiptHash, eventIndex: fx.inf1.index }]);

    await withStore(copy, async (dir) => {
      const rb = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, fx.inf1.index);
      assert.equal(rb.ok, false);
      assert.deepEqual(
        rb.checks.filter((c) => !c.ok).map((c) => c.what),
        ['receipt'],
      );
      assert.equal(rb.checks.find((c) => c.what === 'receipt')!.ref, fx.inf1.receiptHash);
      // The other inference is untouched.
      assert.equal((await rebuildReceipt(dir.store, [dir.verifier], dir.origin, fx.inf2.index)).ok, true);
    });
  });

  it('(a) a receipt edited to disagree with its event also fails "receipt matches its event"', async () => {
    const copy = tamperedCopy((db) => editJsonDoc(db, fx.inf1.receiptHash, (r) => ({ ...r, consent: { ...(r['consent'] as object), policyHash: fx.rev.hash } })));
    assert.deepEqual(shape(await verifyCopy(copy)), [{ kind: 'DOCUMENT_EDITED', ref: fx.inf1.receiptHash, eventIndex: fx.inf1.index }]);
    await withStore(copy, async (dir) => {
      const rb = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, fx.inf1.index);
      assert.equal(rb.ok, false);
      assert.deepEqual(
        rb.checks.filter((c) => !c.ok).map((c) => c.what),
        ['receipt', 'receipt matches its event'],
      );
    });
  });

  it('(a) an edited document shared by several events is named with the first event that commits it', async () => {
    // The model spec is committed by both inferences and, as modelBefore, by the training run.
    const copy = tamperedCopy((db) => editJsonDoc(db, fx.inf1.model, (m) => ({ ...m, weightsHash: sha256Hex('other weights') })));
    assert.deepEqual(shape(await verifyCopy(copy)), [{ kind: 'DOCUMENT_EDITED', ref: fx.inf1.model, eventIndex: fx.inf1.index }]);
    await withStore(copy, async (dir) => {
      for (const index of [fx.inf1.index, fx.inf2.index]) {
        const rb = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, index);
        assert.deepEqual(
          rb.checks.filter((c) => !c.ok).map((c) => c.what),
          ['model spec'],
        );
      }
    });
  });

  it('(b) a deleted document -> DOCUMENT_MISSING with the event that commits it', async () => {
    const copy = tamperedCopy((db) => {
      for (const h of [fx.training.manifestHash, fx.inf2.receiptHash]) {
        assert.equal(db.prepare('DELETE FROM documents WHERE hash = ?').run(h).changes, 1);
      }
    });
    const r = await verifyCopy(copy);
    assert.equal(r.ok, false);
    assert.deepEqual(
      shape(r),
      sorted([
        { kind: 'DOCUMENT_MISSING', ref: fx.training.manifestHash, eventIndex: fx.training.index },
        { kind: 'DOCUMENT_MISSING', ref: fx.inf2.receiptHash, eventIndex: fx.inf2.index },
      ]),
    );
    await withStore(copy, async (dir) => {
      const rb = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, fx.inf2.index);
      assert.equal(rb.ok, false);
      assert.equal(rb.receipt, undefined);
      const failed = rb.checks.filter((c) => !c.ok);
      assert.deepEqual(
        failed.map((c) => c.what),
        ['receipt'],
      );
      assert.match(failed[0]!.detail ?? '', /missing/);
    });
  });

  it('(c) an extra document, hashed correctly but committed by no event -> DOCUMENT_UNREFERENCED', async () => {
    const bytes = canonicalJsonBytes({ schema: 'custos/receipt/v1', forged: true, purpose: 'TREAT' });
    const hash = sha256Hex(bytes);
    const copy = tamperedCopy((db) => {
      db.prepare('INSERT INTO documents (hash, kind, data) VALUES (?, ?, ?)').run(hash, DOC.receipt, bytes);
    });
    const r = await verifyCopy(copy);
    assert.equal(r.ok, false);
    assert.deepEqual(shape(r), [{ kind: 'DOCUMENT_UNREFERENCED', ref: hash, eventIndex: undefined }]);
    assert.equal(r.documentsChecked, 10);
  });

  it('(d) an edited commitment salt or value -> COMMITMENT_MISMATCH; the receipt names the URI check', async () => {
    const copy = tamperedCopy((db) => {
      // The subject's salt, and the value behind the inference's input URI commitment.
      assert.equal(db.prepare('UPDATE commitments SET salt = ? WHERE commitment = ?').run(Buffer.alloc(32, 7), fx.main.subject).changes, 1);
      assert.equal(db.prepare('UPDATE commitments SET value = ? WHERE commitment = ?').run('s3://b/patient-z/other.jpg', fx.inf1.inputUri).changes, 1);
    });
    const r = await verifyCopy(copy);
    assert.equal(r.ok, false);
    // An opening is not tied to one event (the same value is committed by many), so none is named.
    assert.deepEqual(
      shape(r),
      sorted([
        { kind: 'COMMITMENT_MISMATCH', ref: fx.main.subject, eventIndex: undefined },
        { kind: 'COMMITMENT_MISMATCH', ref: fx.inf1.inputUri, eventIndex: undefined },
      ]),
    );
    await withStore(copy, async (dir) => {
      const rb = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, fx.inf1.index);
      assert.equal(rb.ok, false);
      assert.deepEqual(
        rb.checks.filter((c) => !c.ok).map((c) => c.what),
        ['input URI commitment'],
      );
    });
  });

  it('(e) a policy head rolled back to version 1 after the revocation -> POLICY_HEAD_MISMATCH at the revocation', async () => {
    const copy = tamperedCopy((db) => {
      assert.equal(db.prepare("UPDATE state SET value = ? WHERE ns = 'policy' AND key = ?").run(fx.rev.headV1, pid('consent-rev')).changes, 1);
    });
    const r = await verifyCopy(copy);
    assert.equal(r.ok, false);
    assert.deepEqual(shape(r), [{ kind: 'POLICY_HEAD_MISMATCH', ref: pid('consent-rev'), eventIndex: fx.rev.revokeIndex }]);
  });

  it('(e) a deleted head, and a head with no consent event on the log -> POLICY_HEAD_MISMATCH', async () => {
    const copy = tamperedCopy((db) => {
      db.prepare("DELETE FROM state WHERE ns = 'policy' AND key = ?").run(pid('consent-main'));
      db.prepare("INSERT INTO state (ns, key, value) VALUES ('policy', ?, ?)").run(pid('consent-ghost'), JSON.stringify({ version: 1, hash: fx.main.hash, index: 0 }));
    });
    assert.deepEqual(
      shape(await verifyCopy(copy)),
      sorted([
        { kind: 'POLICY_HEAD_MISMATCH', ref: pid('consent-ghost'), eventIndex: undefined },
        { kind: 'POLICY_HEAD_MISMATCH', ref: pid('consent-main'), eventIndex: fx.main.index },
      ]),
    );
  });
});

describe('(f) an edited policy document', () => {
  const widen = (db: Database.Database) => editJsonDoc(db, fx.main.hash, (p) => ({ ...p, provision: { ...(p['provision'] as object), purposes: ['TREAT', 'HRESCH', 'HMARKT'] } }));

  it('is DOCUMENT_EDITED at its CONSENT_CREATED event', async () => {
    const r = await verifyCopy(tamperedCopy(widen));
    assert.deepEqual(shape(r), [{ kind: 'DOCUMENT_EDITED', ref: fx.main.hash, eventIndex: fx.main.index }]);
  });

  it('makes the next access and inference on that policy be refused with POLICY_TAMPERED, and the refusal is logged', async () => {
    const copy = tamperedCopy(widen);
    const { dir, log } = await openLog(copy);
    try {
      const g = await Governance.open({ log });
      assert.equal((await g.checkConsent(pid('consent-main'), { purpose: 'HMARKT', role: 'dermatologist' })).reason, 'POLICY_TAMPERED');

      const n = log.size;
      const err = await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid('consent-main'), artifact: { uri: 's3://b/patient-a/img9.jpg', digest: sha256Hex('img9') } }).then(
        () => assert.fail('an access under an edited policy was permitted'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ConsentDeniedError, String(err));
      assert.ok(hasCode(err, 'CONSENT_DENIED'));
      assert.equal(err.decision.effect, 'deny');
      assert.equal(err.decision.reason, 'POLICY_TAMPERED');
      assert.equal(err.decision.policyHash, fx.main.hash, 'the refusal names the hash the log committed');
      assert.equal(err.event.index, n);
      assert.equal(log.size, n + 1, 'exactly one event: the refusal');
      const e = JSON.parse((await log.reader.getEntry(n)).bytes.toString('utf8')) as { type: string; payload: Record<string, unknown> };
      assert.equal(e.type, 'CONSENT_DENIED');
      assert.equal(e.payload['reason'], 'POLICY_TAMPERED');
      assert.equal(e.payload['operation'], 'data_access');
      assert.equal(e.payload['policyId'], pid('consent-main'));

      const inf = await g
        .recordInference({
          actor: DERM,
          purpose: 'TREAT',
          policyId: pid('consent-main'),
          input: { uri: 's3://b/patient-a/img9.jpg', digest: sha256Hex('img9') },
          outputs: [{ name: 'report_json', uri: 's3://b/patient-a/report9.json', digest: sha256Hex('report9') }],
          pipeline: PIPELINE,
          model: MODEL,
        })
        .then(
          () => assert.fail('an inference under an edited policy was permitted'),
          (x: unknown) => x,
        );
      assert.ok(inf instanceof ConsentDeniedError);
      assert.equal(inf.decision.reason, 'POLICY_TAMPERED');
      assert.equal(log.size, n + 2);

      // A revocation of the edited policy is refused and writes nothing.
      await assert.rejects(g.revokeConsent(pid('consent-main'), OFFICER), (x: unknown) => hasCode(x, 'POLICY_TAMPERED'));
      assert.equal(log.size, n + 2);

      // Other policies are unaffected.
      assert.equal((await g.checkConsent(pid('consent-rev'), { purpose: 'TREAT', role: 'dermatologist' })).reason, 'REVOKED');
    } finally {
      await log.close();
      await dir.store.close();
    }
  });

  it('is refused by a long-running service that wrote the policy itself (no trust in its memory)', async () => {
    const dataDir = fresh('live');
    await initDataDir(dataDir, { origin: 'tamper.test/live' });
    registerSecret(readFileSync(join(dataDir, 'log.key'), 'utf8'));
    const { dir, log } = await openLog(dataDir);
    try {
      const g = await Governance.open({ log });
      const p = await g.createConsent({ policyId: pid('consent-live'), subject: 'patient-c', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER);
      const access = { actor: DERM, purpose: 'TREAT', policyId: pid('consent-live'), artifact: { uri: 's3://b/patient-c/img.jpg', digest: sha256Hex('imgc') } };
      assert.equal((await g.recordDataAccess(access)).decision.reason, 'PERMITTED');

      // An attacker edits the file under the running service.
      const db = new Database(join(dataDir, DB_FILE), { fileMustExist: true });
      try {
        editJsonDoc(db, p.hash, (doc) => ({ ...doc, revocable: false }));
      } finally {
        db.close();
      }

      const n = log.size;
      await assert.rejects(g.recordDataAccess(access), (e: unknown) => e instanceof ConsentDeniedError && e.decision.reason === 'POLICY_TAMPERED' && e.event.index === n);
      assert.equal(log.size, n + 1);
      const report = await verifyDocuments({ store: dir.store });
      assert.deepEqual(shape(report), [{ kind: 'DOCUMENT_EDITED', ref: p.hash, eventIndex: p.event.index }]);
    } finally {
      await log.close();
      await dir.store.close();
    }
  });
});

describe('through the CLI', () => {
  before(() => {
    ensureBuilt();
  });

  it('verify --json on a tampered store: exit 4, log ok, documents not ok with the finding', async () => {
    const copy = tamperedCopy((db) => editJsonDoc(db, fx.inf1.receiptHash, (r) => ({ ...r, purpose: 'tampered_purpose' })));
    const r = await callIn(copy, ['--json', 'verify']);
    assertError(r, 4, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
    // The report is the leading JSON document of stdout (see the known defect below: lines follow it).
    const out = JSON.parse(leadingJson(r.stdout)) as { ok: boolean; log: { ok: boolean }; documents: { ok: boolean; findings: DocumentFinding[] } };
    assert.equal(out.ok, false);
    assert.equal(out.log.ok, true, 'the tree itself is intact');
    assert.equal(out.documents.ok, false);
    assert.deepEqual(
      out.documents.findings.map((f) => [f.kind, f.ref, f.eventIndex]),
      [['DOCUMENT_EDITED', fx.inf1.receiptHash, fx.inf1.index]],
    );

    // The human form names the finding and its event; receipt N fails with RECEIPT_INVALID.
    const h = await callIn(copy, ['verify']);
    assertError(h, 4, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
    assert.match(h.stdout, new RegExp(`^DOCUMENT_EDITED \\(event ${fx.inf1.index}\\): `, 'm'));
    const rc = await callIn(copy, ['receipt', String(fx.inf1.index)]);
    assertError(rc, 4, 'RECEIPT_INVALID', { stdoutAllowed: true });
    assert.match(rc.stdout, /^FAIL receipt \(edited/m);
  });

  it('verify on the untampered store: exit 0', async () => {
    const copy = tamperedCopy(() => {});
    const out = okJson<{ ok: boolean; documents: { ok: boolean } }>(await callIn(copy, ['--json', 'verify']));
    assert.equal(out.ok, true);
    assert.equal(out.documents.ok, true);
    assertOk(await callIn(copy, ['verify']));
  });
});

describe('fixed defects (regression tests)', () => {
  it('verify --json on a tampered store prints exactly one JSON document on stdout', async () => {
    const copy = tamperedCopy((db) => editJsonDoc(db, fx.inf1.receiptHash, (r) => ({ ...r, purpose: 'tampered_purpose' })));
    const r = await callIn(copy, ['--json', 'verify']);
    assertError(r, 4, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
    const out = parseJson<{ documents: { ok: boolean } }>(r);
    assert.equal(out.documents.ok, false);
  });

  it('`custos receipt N` on a receipt edited into a JSON array exits 4 RECEIPT_INVALID, not 70 INTERNAL', async () => {
    const copy = tamperedCopy((db) => {
      db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(Buffer.from('[]'), fx.inf1.receiptHash);
    });
    assertError(await callIn(copy, ['receipt', String(fx.inf1.index)]), 4, 'RECEIPT_INVALID', { stdoutAllowed: true });
  });

  for (const [what, body] of [
    ['a JSON array', '[]'],
    ['an object without outputs', JSON.stringify({ schema: 'custos/receipt/v1', purpose: 'TREAT' })],
    ['outputs that are not an array', JSON.stringify({ schema: 'custos/receipt/v1', outputs: 'x' })],
  ] as const) {
    it(`rebuildReceipt on a receipt edited into ${what} reports a failed receipt check instead of throwing`, async () => {
      const copy = tamperedCopy((db) => {
        db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(Buffer.from(body), fx.inf1.receiptHash);
      });
      await withStore(copy, async (dir) => {
        const rb = await rebuildReceipt(dir.store, [dir.verifier], dir.origin, fx.inf1.index);
        assert.equal(rb.ok, false);
        assert.ok(rb.checks.some((c) => c.what === 'receipt' && !c.ok));
      });
    });
  }
});
