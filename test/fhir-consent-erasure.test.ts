/**
 * Erasure reaches the bytes of imported FHIR Consents (issue 12), on every store backend (SQLite;
 * PostgreSQL when PG_URL is set or a throwaway cluster can be started):
 * - erasing a subject deletes the exact bytes of every FHIR Consent imported for its policies (every
 *   version), in the transaction of the ERASURE_PERFORMED event, which lists their hashes;
 * - another subject's bytes stay, and so do the policy version documents (which hold no patient
 *   reference or name): decisions under the erased subject's policy are unchanged;
 * - the export answers DOCUMENT_ERASED naming the erasure's entry, never POLICY_TAMPERED nor a
 *   converted form; `verifyDocuments` counts the bytes as erased, not missing;
 * - on SQLite, no file of the data directory holds the patient's name afterwards.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hasCode, type CustosError } from '../src/core/errors.js';
import { parseLoggedEvent } from '../src/core/events.js';
import { initDataDir, openDataDir, openLog } from '../src/log/data-dir.js';
import { Governance } from '../src/service/governance.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { BACKENDS, cleanupBackends, type LogPlace } from './helpers/backends.js';
import { CONSENT_ACTION, PARTICIPATION, PERMIT_TREAT_DENY_PSY, R4_SKIP, r4Consent, V3_ACT_REASON } from './helpers/fhir-consent.js';

after(cleanupBackends);

const PO = { id: 'po-1', role: 'privacy_officer' };
const DERM = { id: 'dr-1', role: 'dermatologist' };
const D = 'ab'.repeat(32);
const sha256Hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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

async function open(place: LogPlace) {
  const { dir, log } = await openLog(place.dataDir, { storeUrl: place.storeUrl });
  const g = await Governance.open({ log });
  return {
    dir,
    log,
    g,
    close: async () => {
      await log.close();
      await dir.store.close();
    },
  };
}

for (const backend of BACKENDS) {
  describe(`erasing a subject erases its imported FHIR Consents (${backend.title})`, { skip: backend.skip || R4_SKIP }, () => {
    it('deletes every version of the subject’s resources with the event, keeps the rest, and decisions keep working', async () => {
      const place = await backend.newPlace();
      await initDataDir(place.dataDir, { origin: 'fhir-erasure.test/log', storeUrl: place.storeUrl });
      const env = await open(place);
      try {
        const tag = randomBytes(6).toString('hex');
        const patient = `Patient/gone-${tag}`;
        const name = `Erasable Name ${tag}`;
        const identifier = { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${tag}-gone` };
        // Two versions under one identifier (a root permit of treatment, PSY denied), then a second
        // policy of the same patient without identifier (the notOrg example's deny).
        const v1 = r4Consent({ patient, display: name, identifier, provision: PERMIT_TREAT_DENY_PSY, dateTime: '2024-01-01' });
        const v2 = r4Consent({ patient, display: name, identifier, provision: PERMIT_TREAT_DENY_PSY, dateTime: '2024-02-01' });
        const notOrg = r4Consent({ patient, display: name });
        const a1 = await env.g.importFhirConsent(v1, PO);
        const a2 = await env.g.importFhirConsent(v2, PO);
        assert.deepEqual([a2.policy.policyId, a2.policy.version, a2.type], [a1.policy.policyId, 2, 'CONSENT_UPDATED']);
        const b = await env.g.importFhirConsent(notOrg, PO);
        // Another patient: nothing of theirs may go.
        const keepName = `Kept Name ${tag}`;
        const keep = r4Consent({ patient: `Patient/keep-${tag}`, display: keepName, provision: PERMIT_TREAT_DENY_PSY });
        const k = await env.g.importFhirConsent(keep, PO);
        const gone = [sha256Hex(v1), sha256Hex(v2), sha256Hex(notOrg)].sort();

        // The policy version documents hold no patient reference or name (only codes, commitments, hashes).
        for (const h of [a1.hash, a2.hash, b.hash]) {
          const text = (await env.dir.store.getDocument(h))!.bytes.toString('utf8');
          for (const needle of [patient, name, 'van de Heuvel', identifier.value]) assert.equal(text.includes(needle), false, `policy document ${h} holds ${needle}`);
        }

        const access = (policyId: string, extra: Record<string, unknown> = {}) =>
          env.g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId, artifact: { uri: `s3://x/${tag}/a.jpg`, digest: D }, action: 'access', ...extra });
        const before = await access(a1.policy.policyId);
        const forbidden = { purpose: `${V3_ACT_REASON}|TREAT`, role: `${PARTICIPATION}|PRCP`, actorReference: 'Organization/f001', action: `${CONSENT_ACTION}|access` };
        const decidedBefore = await env.g.checkConsent(b.policy.policyId, forbidden);

        const r = await env.g.erase('subject', patient, PO);
        assert.ok(r.event);
        assert.deepEqual(r.documents, gone);
        assert.equal(r.scrub?.complete, true, r.scrub?.detail);
        const ev = parseLoggedEvent(r.event.entry)!;
        assert.equal(ev.type, 'ERASURE_PERFORMED');
        assert.deepEqual(ev.payload['erasedDocuments'], gone);
        // Deleted in the store (seen through a fresh connection), the other patient's bytes kept.
        const fresh = await openDataDir(place.dataDir, { readonly: true, storeUrl: place.storeUrl });
        try {
          for (const h of gone) assert.equal(await fresh.store.getDocument(h), undefined, `${h} still stored`);
          assert.ok((await fresh.store.getDocument(k.fhirHash))?.bytes.equals(keep));
          for (const h of [a1.hash, a2.hash, b.hash, k.hash]) assert.ok(await fresh.store.getDocument(h), `policy document ${h} kept`);
        } finally {
          await fresh.store.close();
        }

        // The export says erased, by which entry; never POLICY_TAMPERED, never a converted form.
        for (const p of [a1.policy.policyId, b.policy.policyId]) {
          await assert.rejects(env.g.exportFhirConsent(p), (err: unknown) => {
            assert.ok(hasCode(err, 'DOCUMENT_ERASED'), String(err));
            const e = err as CustosError;
            assert.equal(e.details?.['erasureIndex'], r.event!.index);
            assert.match(e.message, new RegExp(`erased by entry ${r.event!.index}`));
            return true;
          });
        }
        assert.ok((await env.g.exportFhirConsent(k.policy.policyId)).bytes.equals(keep));

        // Decisions under the erased subject's policies are those of before.
        const after = await access(a1.policy.policyId);
        assert.deepEqual([after.decision.effect, after.decision.provision, after.decision.policyHash], [before.decision.effect, before.decision.provision, before.decision.policyHash]);
        await assert.rejects(
          access(a1.policy.policyId, { securityLabels: ['PSY'] }),
          (err: unknown) => hasCode(err, 'CONSENT_DENIED') && /provision\.provision\[0\]/.test(String((err as CustosError).details?.['provision'])),
        );
        const decidedAfter = await env.g.checkConsent(b.policy.policyId, forbidden);
        assert.deepEqual([decidedAfter.effect, decidedAfter.reason, decidedAfter.provision], [decidedBefore.effect, decidedBefore.reason, decidedBefore.provision]);

        // Document verification counts them as erased (not missing, not edited).
        const report = await verifyDocuments({ log: env.log });
        assert.deepEqual(report.findings, []);
        assert.equal(report.documentsErased, gone.length);

        // The subject is gone: erasing it again finds nothing and writes nothing.
        const n = env.log.size;
        assert.equal((await env.g.erase('subject', patient, PO)).event, undefined);
        assert.equal(env.log.size, n);
      } finally {
        await env.close();
      }
      if (backend.name === 'sqlite') {
        // The deletion is physical: no file of the data directory holds the name (the other's stays).
        const all = files(place.dataDir).map((f) => readFileSync(f));
        for (const bytes of all) assert.equal(bytes.indexOf(Buffer.from('Erasable Name')), -1, 'a file still holds the erased patient name');
        assert.ok(
          all.some((bytes) => bytes.indexOf(Buffer.from('Kept Name')) >= 0),
          'the other patient’s resource is still stored',
        );
      }
    });

    it('a version imported while the erasure is prepared is erased with it (same batch)', async () => {
      const place = await backend.newPlace();
      await initDataDir(place.dataDir, { origin: 'fhir-erasure.test/log', storeUrl: place.storeUrl });
      const env = await open(place);
      try {
        const tag = randomBytes(6).toString('hex');
        const patient = `Patient/race-${tag}`;
        const identifier = { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${tag}-race` };
        const v1 = r4Consent({ patient, identifier, provision: PERMIT_TREAT_DENY_PSY, dateTime: '2024-01-01' });
        const v2 = r4Consent({ patient, identifier, provision: PERMIT_TREAT_DENY_PSY, dateTime: '2024-03-01' });
        await env.g.importFhirConsent(v1, PO);
        // Started together: wherever the import is sequenced (before the erasure's scan, between
        // the scan and the erasure, in its batch or after it), its bytes are erased exactly when it
        // came before the erasure. After it, the import made a new policy (the identifier's and the
        // patient's openings are gone) that keeps the bytes it brought.
        const [imported, erased] = await Promise.all([env.g.importFhirConsent(v2, PO), env.g.erase('subject', patient, PO)]);
        const before = imported.index < erased.event!.index;
        assert.equal((erased.documents ?? []).includes(sha256Hex(v2)), before);
        assert.equal((await env.dir.store.getDocument(sha256Hex(v2))) === undefined, before);
        assert.ok(erased.documents?.includes(sha256Hex(v1)));
        assert.equal(await env.dir.store.getDocument(sha256Hex(v1)), undefined);
        assert.deepEqual((await verifyDocuments({ log: env.log })).findings, []);
      } finally {
        await env.close();
      }
    });
  });
}
