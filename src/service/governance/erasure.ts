/**
 * Erasure: deleting the off-ledger openings of a value's commitments (and of the commitments linked
 * to a subject), or one provenance document, in the same transaction as the ERASURE_PERFORMED
 * event that records it; then scrubbing old copies from the store's files.
 * @module
 */
import { ConflictError, ValidationError, hasCode } from '../../core/errors.js';
import { parseWith } from '../../core/schema/parse.js';
import { GOVERNANCE_EVENT as EVENT, isRecord, parseLoggedEvent, recordField, stringField } from '../../core/events.js';
import type { AppendResult, Decided, ScrubReport } from '../../log/log.js';
import { ACTOR, DOCUMENT_HASH, ERASE_KIND, ERASE_VALUE } from '../requests.js';
import { ERASABLE_DOCS, ERASED_DOCUMENT_NS } from './documents.js';
import type { LinkRecord } from './links.js';
import { MAX_POLICY_RETRIES, type Actor, type GovernanceState } from './state.js';

/** What an erasure did. */
export interface ErasureResult {
  commitments: string[];
  event: AppendResult | undefined;
  scrub?: ScrubReport;
  document?: string;
  /** Kind `subject`: the FHIR Consent documents deleted (the exact bytes imported for the subject's policies, every version). */
  documents?: string[];
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Erasure: deletes the off-ledger openings of a value's commitments, so every log entry that
 * carries them becomes unlinkable to it. The tree is untouched; an ERASURE_PERFORMED event records
 * which commitments were erased (never the value), in the same transaction as the deletion.
 *
 * Erasing a subject erases every opening linked to it: its subject commitment(s), and every URI
 * commitment carried by an event recorded under a policy whose subject it is (data accesses,
 * inference inputs, inference outputs through the receipt, and denied attempts), up to and
 * including the events sequenced just before the erasure. A URI linked to several subjects is
 * erased with any of them. Events recorded later under the same policy create new openings:
 * revoke the subject's policies first.
 *
 * Erasing a subject also deletes the exact bytes of every FHIR Consent resource imported for its
 * policies (documents of kind `fhir-consent`, every version: they hold the patient reference and
 * often the patient's name), in the same transaction; the event lists their hashes
 * (`erasedDocuments`) and a state row per document names the event, so an export of such a policy
 * answers DOCUMENT_ERASED. The policy version documents stay: they hold only codes, commitments
 * and hashes, and decisions under the policy keep working.
 *
 * Kind `document` erases one off-ledger provenance document (a pipeline manifest, model spec or
 * training manifest) by its hash: the event records the hash (`document`), the row is deleted in
 * its transaction. The log keeps the hash; a later event that commits the same document stores
 * it again. Consent policies and receipts are never erased (VALIDATION_FAILED).
 *
 * Afterwards the store scrubs old copies of the deleted rows from its files (`SidecarReader.scrub`).
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 */
export async function erase(s: GovernanceState, kind: 'subject' | 'uri' | 'external_ref' | 'document', value: string, actor: Actor): Promise<ErasureResult> {
  const who = parseWith(ACTOR, actor, 'actor');
  const k = parseWith(ERASE_KIND, kind, 'erasure kind');
  const val = parseWith(ERASE_VALUE, value, 'erased value');
  if (k === 'document') return eraseDocument(s, val, who);
  const own = await s.log.sidecar.findCommitments(k, val);
  if (own.length === 0) return { commitments: [], event: undefined };
  s.checkCodes({ role: who.role });
  return s.links.preparing(async () => {
    // The subject's policies and the URI commitments of their events, as committed up to
    // `scanned`; events sequenced after that are seen through the link log at sequencing time.
    const subjects = new Set(own.map((c) => c.commitment));
    const policies = new Set<string>();
    const linked = new Set<string>();
    const fhirDocs = new Set<string>();
    let scanned = 0;
    for (let attempt = 0; ; attempt++) {
      const reloads = s.reloads;
      const size = s.log.size;
      if (k === 'subject') await scanLinks(s, scanned, size, subjects, policies, linked, fhirDocs);
      scanned = size;
      const found: string[] = [];
      for (const c of linked) if (await s.log.sidecar.getCommitment(c)) found.push(c);
      const base = [...subjects, ...found];
      // Documents already gone (erased before) are not listed again.
      const foundDocs: string[] = [];
      for (const h of fhirDocs) if (await s.log.sidecar.getDocument(h)) foundDocs.push(h);
      let erased: string[] = [];
      let erasedDocs: string[] = [];
      try {
        const event = await s.log.appendDecided((ctx): Decided => {
          // Another writer appended since the scan: its events were not seen; scan them first.
          if (s.reloads !== reloads) throw new ConflictError('LOG_APPEND_CONFLICT', 'the log grew while the erasure was prepared');
          const all = new Set(base);
          const docs = new Set(foundDocs);
          if (k === 'subject') {
            const seen = (r: LinkRecord) => r.index >= scanned && (r.committed || (r.batchId === ctx.batchId && r.index < ctx.index));
            const pols = new Set(policies);
            for (const r of s.links.records) if (seen(r) && r.subject !== undefined && subjects.has(r.subject)) pols.add(r.policyId);
            for (const r of s.links.records) {
              if (!seen(r) || !pols.has(r.policyId)) continue;
              for (const u of r.uris) all.add(u);
              for (const h of r.documents) docs.add(h);
            }
          }
          erased = [...all].sort();
          erasedDocs = [...docs].sort();
          const marks = JSON.stringify({ index: ctx.index });
          return {
            type: EVENT.erasure,
            payload: s.checked(EVENT.erasure, { kind: k, commitments: erased, ...(erasedDocs.length > 0 ? { erasedDocuments: erasedDocs } : {}), actor: who.id, role: who.role }),
            // The FHIR bytes are deleted with the openings; a state row per document names this
            // event, so an export can say which entry erased them (checked against the log).
            sidecar: {
              erase: erased,
              ...(erasedDocs.length > 0 ? { eraseDocuments: erasedDocs, state: erasedDocs.map((h) => ({ ns: ERASED_DOCUMENT_NS, key: h, value: marks })) } : {}),
            },
            // No salt or value of an erased commitment stays in this process's caches.
            onCommitted: () => s.commitments.forget(all),
          };
        });
        const scrub = await s.log.sidecar.scrub();
        if (erasedDocs.length === 0) return { commitments: erased, event, scrub };
        const docScrub = await s.log.sidecar.scrub('documents');
        return { commitments: erased, event, scrub: bothScrubs(scrub, docScrub), documents: erasedDocs };
      } catch (err) {
        if (!hasCode(err, 'LOG_APPEND_CONFLICT') || attempt >= MAX_POLICY_RETRIES) throw err;
      }
    }
  });
}

async function eraseDocument(s: GovernanceState, hash: string, who: { id: string; role: string }): Promise<ErasureResult> {
  parseWith(DOCUMENT_HASH, hash, 'erased document');
  const stored = await s.log.sidecar.getDocument(hash);
  if (!stored) return { commitments: [], event: undefined };
  if (!ERASABLE_DOCS.has(stored.kind)) {
    throw new ValidationError('VALIDATION_FAILED', `a ${stored.kind} document cannot be erased: only ${[...ERASABLE_DOCS].join(', ')} documents can`, {
      issues: [{ path: 'value', message: `a ${stored.kind} document cannot be erased` }],
      details: { kind: stored.kind },
    });
  }
  s.checkCodes({ role: who.role });
  const event = await s.log.appendDecided(
    (ctx): Decided => ({
      type: EVENT.erasure,
      payload: s.checked(EVENT.erasure, { kind: 'document', commitments: [], document: hash, actor: who.id, role: who.role }),
      // The state row points at this event, so a receipt can say `erased` after checking the log.
      sidecar: { eraseDocuments: [hash], state: [{ ns: ERASED_DOCUMENT_NS, key: hash, value: JSON.stringify({ index: ctx.index }) }] },
      // No copy of the erased document stays in this process's caches.
      onCommitted: () => s.memo.forget(hash),
    }),
  );
  const scrub = await s.log.sidecar.scrub('documents');
  return { commitments: [], event, scrub, document: hash };
}

// The scrubs of the openings and of the documents, as one report.
function bothScrubs(a: ScrubReport, b: ScrubReport): ScrubReport {
  return { complete: a.complete && b.complete, detail: a.detail === b.detail ? a.detail : `${a.detail}; ${b.detail}` };
}

// Adds to `policies` the policies created in [from, to) whose subject is in `subjects`, to `uris`
// the URI commitments carried by events in [from, to) under one of `policies`, and to `fhirDocs`
// the FHIR Consent documents their consent events stored (`documents.fhir`, every version).
async function scanLinks(s: GovernanceState, from: number, to: number, subjects: ReadonlySet<string>, policies: Set<string>, uris: Set<string>, fhirDocs: Set<string>): Promise<void> {
  const addDoc = (p: Record<string, unknown>) => {
    const h = stringField(recordField(p, 'documents'), 'fhir');
    if (h !== undefined && HEX64.test(h)) fhirDocs.add(h);
  };
  const add = (x: unknown) => {
    const u = isRecord(x) ? x['uri'] : undefined;
    if (typeof u === 'string' && HEX64.test(u)) uris.add(u);
  };
  for await (const page of s.log.reader.entryPages(from, to)) {
    for (const e of page) {
      // Canonical JSON: cheap byte filters before parsing.
      if (e.bytes.indexOf('"policyId"') < 0) continue; // consents[] of a training run hold "policyId" too
      const ent = parseLoggedEvent(e.bytes);
      if (!ent) continue;
      const p = ent.payload;
      if (ent.type === EVENT.trainingExecuted) {
        // Training on identified data, under the consents of a cohort.
        const consents = p['consents'];
        if (Array.isArray(consents) && consents.some((c) => policies.has(String(isRecord(c) ? c['policyId'] : undefined)))) add(p['dataset']);
        continue;
      }
      const policyId = stringField(p, 'policyId');
      if (policyId === undefined) continue;
      if (ent.type === EVENT.consentCreated) {
        const subject = stringField(p, 'subject');
        if (subject !== undefined && subjects.has(subject)) {
          policies.add(policyId);
          // The caller's own reference of the subject's consent.
          const ref = stringField(p, 'externalRef');
          if (ref !== undefined && HEX64.test(ref)) uris.add(ref);
          addDoc(p);
        }
        continue;
      }
      if (!policies.has(policyId)) continue;
      if (ent.type === EVENT.consentUpdated || ent.type === EVENT.consentRevoked) {
        addDoc(p);
        continue;
      }
      if (ent.type === EVENT.dataAccessed || ent.type === EVENT.consentDenied || ent.type === EVENT.breakGlass || ent.type === EVENT.inferenceRefused) {
        add(p['artifact']);
        add(p['input']);
        add(p['dataset']);
      } else if (ent.type === EVENT.inferenceExecuted) {
        add(p['input']);
        // The outputs' URI commitments are in the receipt the event commits.
        const receiptHash = stringField(recordField(p, 'documents'), 'receipt');
        const stored = receiptHash !== undefined ? await s.log.sidecar.getDocument(receiptHash) : undefined;
        if (stored) {
          try {
            const receipt: unknown = JSON.parse(stored.bytes.toString('utf8'));
            const outputs = isRecord(receipt) ? receipt['outputs'] : undefined;
            if (Array.isArray(outputs)) for (const o of outputs) add(o);
          } catch {
            // an unreadable receipt is reported by custos verify
          }
        }
      }
    }
  }
}
