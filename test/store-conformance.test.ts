/**
 * The storage conformance suite: the same behaviour checked against every backend, as kysely does
 * with its dialects (test/helpers/backends.ts: SQLite always, PostgreSQL when PG_URL is set;
 * STORES=sqlite,postgres narrows the list).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { randomBytes } from 'node:crypto';
import { formatSignerKey, parseSignerKey, parseVerifierKey, verifierKeyFromSignerKey } from '../src/core/note.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { verifyConsistency } from '../src/core/merkle/consistency.js';
import { hashLeaf } from '../src/core/hash.js';
import { hasCode } from '../src/core/errors.js';
import { Log } from '../src/log/log.js';
import { verifyLog } from '../src/log/verify-log.js';
import { Governance } from '../src/service/governance.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { rebuildReceipt } from '../src/service/receipt.js';
import { BACKENDS, cleanupBackends } from './helpers/backends.js';

after(cleanupBackends);

function keys(origin: string) {
  const skey = formatSignerKey(origin, randomBytes(32));
  return { signer: parseSignerKey(skey), verifier: parseVerifierKey(verifierKeyFromSignerKey(skey)), vkey: verifierKeyFromSignerKey(skey) };
}

for (const backend of BACKENDS) {
  describe(`store conformance: ${backend.name}`, { skip: backend.skip }, () => {
    it('appends batches across bundle boundaries; entries, proofs and verification agree', async () => {
      const { store } = await backend.openStore();
      const k = keys('conf.test/a');
      await store.initMeta({ origin: 'conf.test/a', verifier_key: k.vkey });
      const log = await Log.open({ store, signer: k.signer, origin: 'conf.test/a' });
      const leaves: Buffer[] = [];
      for (const n of [1, 2, 300, 5, 1000]) {
        const rs = await Promise.all(Array.from({ length: n }, (_, i) => log.append('E', { n, i })));
        for (const r of rs) leaves[r.index] = r.leafHash;
      }
      const size = leaves.length;
      assert.equal(await store.treeSize(), size);
      const cp = (await store.latestCheckpoint())!;
      assert.equal(cp.treeSize, size);
      for (const i of [0, 1, 255, 256, 257, 511, 512, size - 1]) {
        const e = (await store.getEntry(i))!;
        assert.equal(e.index, i);
        assert.ok(hashLeaf(e.bytes).equals(leaves[i]!));
        const p = await log.reader.inclusionProof(i);
        verifyInclusion(i, size, leaves[i]!, p.proof, cp.rootHash);
      }
      for (const m of [1, 3, 256, 300, size - 1]) {
        const c = await log.reader.consistencyProof(m, size);
        verifyConsistency(m, size, c.proof, c.oldRoot, c.newRoot);
      }
      const desc = await log.reader.listEntries({ limit: 3 });
      assert.deepEqual(
        desc.map((e) => e.index),
        [size - 1, size - 2, size - 3],
      );
      const report = await verifyLog({ store, verifiers: [k.verifier], origin: 'conf.test/a' });
      assert.equal(report.ok, true, JSON.stringify(report.findings));
      assert.equal(report.entries, size);
      await log.close();
      await store.close();
    });

    it('refuses a batch sequenced on a stale size and writes nothing; a second writer re-sequences', async () => {
      const { store, reopen } = await backend.openStore();
      const k = keys('conf.test/b');
      await store.initMeta({ origin: 'conf.test/b', verifier_key: k.vkey });
      const a = await Log.open({ store, signer: k.signer, origin: 'conf.test/b' });
      const other = await reopen();
      const b = await Log.open({ store: other, signer: k.signer, origin: 'conf.test/b' });
      await a.append('E', { from: 'a' });
      // b sequenced on size 0; the store refuses, b rereads and re-sequences transparently.
      const r = await b.append('E', { from: 'b' });
      assert.equal(r.index, 1);
      await assert.rejects(store.appendBatch({ expectedSize: 0, entries: [], nodes: [], checkpoint: (await store.latestCheckpoint())! }), (err: unknown) => hasCode(err, 'LOG_APPEND_CONFLICT'));
      assert.equal(await store.treeSize(), 2);
      const both = await Promise.all([...Array.from({ length: 50 }, (_, i) => a.append('E', { a: i })), ...Array.from({ length: 50 }, (_, i) => b.append('E', { b: i }))]);
      assert.equal(new Set(both.map((x) => x.index)).size, 100);
      assert.equal(await store.treeSize(), 102);
      assert.equal((await verifyLog({ store, verifiers: [k.verifier], origin: 'conf.test/b' })).ok, true);
      await a.close();
      await b.close();
      await other.close();
      await store.close();
    });

    it('keeps documents, commitment openings and state with their events; erasure deletes openings', async () => {
      const { store } = await backend.openStore();
      const k = keys('conf.test/c');
      await store.initMeta({ origin: 'conf.test/c', verifier_key: k.vkey });
      const log = await Log.open({ store, signer: k.signer, origin: 'conf.test/c' });
      const g = await Governance.open({ log });
      await g.createConsent({ policyId: pid('c1'), subject: 'pt-1', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po', role: 'privacy_officer' });
      const inf = await g.recordInference({
        actor: { id: 'u', role: 'dermatologist' },
        purpose: 'TREAT',
        policyId: pid('c1'),
        input: { uri: 's3://b/in.jpg', digest: 'ab'.repeat(32) },
        outputs: [{ name: 'report', uri: 's3://b/out.json', digest: 'cd'.repeat(32) }],
        pipeline: { pipelineName: 'p', pipelineVersion: '1' },
        model: { modelName: 'm', modelVersion: '1', weightsHash: 'ef'.repeat(32), framework: 'onnx' },
      });
      assert.ok(await store.getDocument(inf.receiptHash));
      assert.equal((await store.findCommitment('uri', 's3://b/in.jpg'))?.commitment, inf.receipt.input.uri);
      assert.ok(await store.getState('policy', pid('c1')));
      assert.equal((await verifyDocuments({ store })).ok, true);
      assert.equal((await rebuildReceipt(store, [k.verifier], 'conf.test/c', inf.event.index)).ok, true);
      const erased = await g.erase('uri', 's3://b/in.jpg', { id: 'po', role: 'privacy_officer' });
      assert.deepEqual(erased.commitments, [inf.receipt.input.uri]);
      assert.equal(await store.getCommitment(inf.receipt.input.uri), undefined);
      assert.equal((await verifyLog({ store, verifiers: [k.verifier], origin: 'conf.test/c' })).ok, true);
      await log.close();
      await store.close();
    });

    it('erasure is in the transaction of its event: a refused batch deletes nothing; a committed one deletes the listed openings', async () => {
      const { store } = await backend.openStore();
      const k = keys('conf.test/f');
      await store.initMeta({ origin: 'conf.test/f', verifier_key: k.vkey });
      const log = await Log.open({ store, signer: k.signer, origin: 'conf.test/f' });
      const g = await Governance.open({ log });
      const created = await g.createConsent({ policyId: pid('f1'), subject: 'pt-f', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po', role: 'privacy_officer' });
      const subject = created.policy.subject;
      assert.ok(await store.getCommitment(subject));
      // A batch sequenced on a stale size is refused whole: the erasure it carries too.
      const cp = (await store.latestCheckpoint())!;
      await assert.rejects(store.appendBatch({ expectedSize: 0, entries: [], nodes: [], checkpoint: cp, sidecar: { documents: [], commitments: [], state: [], erase: [subject] } }), (err: unknown) =>
        hasCode(err, 'LOG_APPEND_CONFLICT'),
      );
      assert.ok(await store.getCommitment(subject), 'a refused batch erased nothing');
      // Erasing the subject erases the URI openings linked to it, outputs included; others stay.
      const inf = await g.recordInference({
        actor: { id: 'u', role: 'dermatologist' },
        purpose: 'TREAT',
        policyId: pid('f1'),
        input: { uri: 's3://b/f-in.jpg', digest: 'ab'.repeat(32) },
        outputs: [{ name: 'report', uri: 's3://b/f-out.json', digest: 'cd'.repeat(32) }],
        pipeline: { pipelineName: 'p', pipelineVersion: '1' },
        model: { modelName: 'm', modelVersion: '1', weightsHash: 'ef'.repeat(32), framework: 'onnx' },
      });
      await g.createConsent({ policyId: pid('f2'), subject: 'pt-other', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po', role: 'privacy_officer' });
      await g.recordDataAccess({ actor: { id: 'u', role: 'dermatologist' }, purpose: 'TREAT', policyId: pid('f2'), artifact: { uri: 's3://b/other.jpg', digest: 'ab'.repeat(32) } });
      const r = await g.erase('subject', 'pt-f', { id: 'po', role: 'privacy_officer' });
      const expected = [subject, inf.receipt.input.uri, inf.receipt.outputs[0]!.uri].sort();
      assert.deepEqual(r.commitments, expected);
      assert.equal(r.scrub?.complete, true, r.scrub?.detail);
      for (const c of expected) assert.equal(await store.getCommitment(c), undefined, c);
      assert.ok(await store.findCommitment('uri', 's3://b/other.jpg'), 'an unlinked opening stays');
      const e = JSON.parse(r.event!.entry) as { type: string; payload: { commitments: string[] } };
      assert.equal(e.type, 'ERASURE_PERFORMED');
      assert.deepEqual(e.payload.commitments, expected);
      assert.equal((await verifyLog({ store, verifiers: [k.verifier], origin: 'conf.test/f' })).ok, true);
      assert.equal((await verifyDocuments({ store })).ok, true);
      await log.close();
      await store.close();
    });

    it("erasure of a provenance document: deleted in its event's transaction, scrubbed; verification and the receipt report it erased; stored again by a later event", async () => {
      const { store } = await backend.openStore();
      const k = keys('conf.test/d');
      await store.initMeta({ origin: 'conf.test/d', verifier_key: k.vkey });
      const log = await Log.open({ store, signer: k.signer, origin: 'conf.test/d' });
      const g = await Governance.open({ log });
      const po = { id: 'po', role: 'privacy_officer' };
      await g.createConsent({ policyId: pid('d1'), subject: 'pt-d', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, po);
      const infer = (n: number) =>
        g.recordInference({
          actor: { id: 'u', role: 'dermatologist' },
          purpose: 'TREAT',
          policyId: pid('d1'),
          input: { uri: `s3://b/d-in-${n}.jpg`, digest: 'ab'.repeat(32) },
          outputs: [{ name: 'report', uri: `s3://b/d-out-${n}.json`, digest: 'cd'.repeat(32) }],
          pipeline: { pipelineName: 'p', pipelineVersion: '1', parameters: { note: 'patient Zed Quux MRN 99887766' } },
          model: { modelName: 'm', modelVersion: '1', weightsHash: 'ef'.repeat(32), framework: 'onnx' },
        });
      const inf = await infer(1);
      const hash = inf.receipt.pipeline;
      // A batch sequenced on a stale size is refused whole: the document erasure it carries too.
      const cp = (await store.latestCheckpoint())!;
      await assert.rejects(
        store.appendBatch({ expectedSize: 0, entries: [], nodes: [], checkpoint: cp, sidecar: { documents: [], commitments: [], state: [], eraseDocuments: [hash] } }),
        (err: unknown) => hasCode(err, 'LOG_APPEND_CONFLICT'),
      );
      assert.ok(await store.getDocument(hash), 'a refused batch erased nothing');
      // Consent policies and receipts are never erased.
      const size = log.size;
      for (const h of [inf.receipt.consent.policyHash, inf.receiptHash]) await assert.rejects(g.erase('document', h, po), (err: unknown) => hasCode(err, 'VALIDATION_FAILED'));
      assert.equal(log.size, size);
      const r = await g.erase('document', hash, po);
      assert.equal(r.scrub?.complete, true, r.scrub?.detail);
      assert.equal(await store.getDocument(hash), undefined);
      const e = JSON.parse(r.event!.entry) as { type: string; payload: { kind: string; document: string } };
      assert.deepEqual([e.type, e.payload.kind, e.payload.document], ['ERASURE_PERFORMED', 'document', hash]);
      for await (const page of store.documentPages()) for (const d of page) assert.equal(d.bytes.indexOf('Zed Quux'), -1, `document ${d.hash} holds the marker`);
      assert.equal((await verifyLog({ store, verifiers: [k.verifier], origin: 'conf.test/d' })).ok, true);
      const docs = await verifyDocuments({ store });
      assert.deepEqual([docs.ok, docs.documentsErased], [true, 1]);
      const rb = await rebuildReceipt(store, [k.verifier], 'conf.test/d', inf.event.index);
      assert.equal(rb.ok, true, JSON.stringify(rb.checks));
      assert.deepEqual(
        rb.erased.map((x) => x.hash),
        [hash],
      );
      // A later inference with the same pipeline stores it again.
      await infer(2);
      assert.ok(await store.getDocument(hash));
      assert.deepEqual([(await verifyDocuments({ store })).ok, (await verifyDocuments({ store })).documentsErased], [true, 0]);
      await log.close();
      await store.close();
    });

    it('a read snapshot does not see appends made after it was taken', async () => {
      const { store } = await backend.openStore();
      const k = keys('conf.test/d');
      await store.initMeta({ origin: 'conf.test/d', verifier_key: k.vkey });
      const log = await Log.open({ store, signer: k.signer, origin: 'conf.test/d' });
      await Promise.all(Array.from({ length: 250 }, (_, i) => log.append('E', { i })));
      const snap = await store.readSnapshot();
      try {
        assert.equal(await snap.store.treeSize(), 250);
        // These complete bundle 0: the writer repacks the tail while the snapshot reads.
        await Promise.all(Array.from({ length: 20 }, (_, i) => log.append('E', { j: i })));
        assert.equal(await snap.store.treeSize(), 250);
        let n = 0;
        for await (const page of snap.store.entryPages(0, 250)) n += page.length;
        assert.equal(n, 250);
      } finally {
        await snap.release();
      }
      assert.equal(await store.treeSize(), 270);
      await log.close();
      await store.close();
    });

    it('meta is written once: a different value is refused', async () => {
      const { store } = await backend.openStore();
      await store.initMeta({ origin: 'conf.test/e' });
      await store.initMeta({ origin: 'conf.test/e' });
      await assert.rejects(store.initMeta({ origin: 'other' }), (err: unknown) => hasCode(err, 'DATA_DIR_EXISTS'));
      assert.equal(await store.getMeta('origin'), 'conf.test/e');
      await store.close();
    });
  });
}
