/**
 * Verification of the off-ledger store against the log: every document an event commits must be
 * present and hash to what the log says; every stored document must be committed by some event;
 * every commitment opening must open its commitment; the policy heads must be the last versions
 * the log committed; every token row must be a token the log created, as the log has it (name,
 * role, secret hash, revoked or not). Findings about documents, policy heads and tokens name the
 * event involved.
 *
 * A document that an ERASURE_PERFORMED event erased (kind `document`: one provenance document;
 * kind `subject`: the FHIR Consent resources of its policies, `erasedDocuments`), anywhere on the
 * log, may be absent: it is counted as erased, not a finding. Anywhere, not only after its references: an
 * event sequenced after the erasure may commit the same document again (stored again if it
 * carried the bytes, or erased with it when in the erasure's own batch). If present, it is checked
 * like any other.
 * @module
 */
import { sha256, toHex } from '../core/hash.js';
import { computeCommitment } from '../core/commitment.js';
import { DP_EVENT, GOVERNANCE_EVENT as EVENT, LEGACY_EVENT, TOKEN_EVENT, parseLoggedEvent, recordField, stringField } from '../core/events.js';
import { entryTypeOf } from '../core/entry.js';
import { logView, type LogSource, type LogView } from '../log/reader.js';
import { applyTokenEvent, tokenSecretDigest, type LoggedToken } from './tokens.js';
import { documentsErasedBy } from './governance/documents.js';
import { checkCohortDocument } from '../core/cohort.js';

const GOVERNANCE_EVENTS: ReadonlySet<string> = new Set(Object.values(EVENT));
// The events whose `documents` commit off-ledger documents: the governance events, (issue 14) the
// lines imported from a reference ledger, and (issue 15) a DP_RELEASE's release document.
const DOCUMENT_EVENTS: ReadonlySet<string> = new Set([...GOVERNANCE_EVENTS, LEGACY_EVENT.event, ...Object.values(DP_EVENT)]);
// The erasure type as it appears in an entry's canonical JSON (a byte search before parsing).
const ERASURE_MARK = `"${EVENT.erasure}"`;
// The types this scan reads: the governance events (documents, policy heads, erasures) and tokens.
const DOCUMENT_SCAN_TYPES: ReadonlySet<string> = new Set([...DOCUMENT_EVENTS, ...Object.values(TOKEN_EVENT)]);

/** What kind of off-ledger defect a finding reports. */
export type DocumentFindingKind =
  | 'DOCUMENT_EDITED'
  | 'DOCUMENT_MISSING'
  | 'DOCUMENT_UNREFERENCED'
  | 'COMMITMENT_MISMATCH'
  | 'POLICY_HEAD_MISMATCH'
  | 'TOKEN_NOT_ON_LOG'
  | 'TOKEN_REVOKED_ON_LOG'
  | 'TOKEN_ROW_MISMATCH'
  // issue 14: a cohort document that hashes right but is not the cohort its entry records
  | 'COHORT_MISMATCH';

/** One off-ledger defect. */
export interface DocumentFinding {
  readonly kind: DocumentFindingKind;
  /** The document hash or commitment concerned. */
  readonly ref: string;
  /** The first event that commits it (absent for unreferenced documents). */
  readonly eventIndex?: number;
  readonly message: string;
}

/** The result of {@link verifyDocuments}. */
export interface DocumentReport {
  readonly ok: boolean;
  readonly documentsReferenced: number;
  readonly documentsChecked: number;
  readonly commitmentsChecked: number;
  /** Documents the log references that are absent because an erasure on the log erased them (not a defect). */
  readonly documentsErased: number;
  readonly findings: readonly DocumentFinding[];
}

/**
 * Options of {@link verifyDocuments}: the log to check (an open {@link Log}, any {@link LogView}, or
 * a store to read it from), as `log` or, as before, `store`.
 */
export type VerifyDocumentsOptions = ({ readonly log: LogSource } | { readonly store: LogSource }) & { readonly maxFindings?: number };

/**
 * Checks the off-ledger store against the log, up to the log's current size, in a read snapshot.
 * Memory is proportional to the number of documents, not entries.
 */
export async function verifyDocuments(options: VerifyDocumentsOptions): Promise<DocumentReport> {
  const snap = await logView('log' in options ? options.log : options.store).reader.snapshot();
  try {
    return await check(snap, options.maxFindings ?? 100);
  } finally {
    await snap.release();
  }
}

async function check({ reader, sidecar }: LogView, maxFindings: number): Promise<DocumentReport> {
  const findings: DocumentFinding[] = [];
  const add = (f: DocumentFinding) => {
    if (findings.length < maxFindings) findings.push(f);
  };
  // hash -> first event index that commits it
  const refs = new Map<string, number>();
  // policyId -> { version, hash, index } of its last consent change on the log
  const heads = new Map<string, { version: number; hash: string; index: number }>();
  const tokens = new Map<string, LoggedToken>();
  // documents erased by an ERASURE_PERFORMED event
  const erased = new Set<string>();
  // issue 14: the cohorts of training runs: root and size on the entry, the document's hash
  const cohorts: { index: number; root: string; size: unknown; hash: string }[] = [];
  const size = await reader.size();
  for await (const page of reader.entryPages(0, size)) {
    for (const e of page) {
      // The type from the entry's tail (no search of the whole entry); other entries are skipped.
      const type = entryTypeOf(e.bytes);
      if (type !== undefined && !DOCUMENT_SCAN_TYPES.has(type)) continue;
      if (type === undefined || type.startsWith('TOKEN_')) applyTokenEvent(tokens, e.index, e.bytes);
      if (type === undefined ? e.bytes.indexOf(ERASURE_MARK) >= 0 : type === EVENT.erasure) {
        // (a malformed entry is the log verifier's finding)
        const x = parseLoggedEvent(e.bytes);
        if (x?.type === EVENT.erasure) for (const h of documentsErasedBy(x.payload)) erased.add(h);
        continue;
      }
      // Only governance events carry documents; a byte search skips the rest without parsing.
      if (e.bytes.indexOf('"documents":') < 0) continue;
      const entry = parseLoggedEvent(e.bytes);
      if (!entry) continue; // a malformed entry is the log verifier's finding
      // Only the governance overlay's events commit documents; a generic event's payload may hold
      // a "documents" key of its own that means nothing to the store.
      if (!DOCUMENT_EVENTS.has(entry.type)) continue;
      const documents = recordField(entry.payload, 'documents');
      for (const h of Object.values(documents ?? {})) {
        if (typeof h === 'string' && !refs.has(h)) refs.set(h, e.index);
      }
      // issue 14: a training run's cohort, checked against its document below.
      const cohort = entry.type === EVENT.trainingExecuted ? recordField(entry.payload, 'cohort') : undefined;
      const cohortDoc = stringField(documents, 'cohort');
      if (cohort !== undefined && cohortDoc !== undefined) cohorts.push({ index: e.index, root: stringField(cohort, 'root') ?? '', size: cohort['size'], hash: cohortDoc });
      const policyId = stringField(entry.payload, 'policyId');
      if ((entry.type === EVENT.consentCreated || entry.type === EVENT.consentRevoked || entry.type === EVENT.consentUpdated) && policyId !== undefined) {
        const hash = stringField(documents, 'policy');
        if (hash !== undefined) heads.set(policyId, { version: Number(entry.payload['version']), hash, index: e.index });
      }
    }
  }
  // Each stored document found is taken out of refs: what is left at the end is missing (or erased).
  // (No second set of every hash: at 10^6 decisions that set alone was ~100 MB.)
  let documentsChecked = 0;
  const documentsReferenced = refs.size;
  for await (const page of sidecar.documentPages()) {
    for (const d of page) {
      documentsChecked++;
      const event = refs.get(d.hash);
      refs.delete(d.hash);
      if (toHex(sha256(d.bytes)) !== d.hash) {
        add({
          kind: 'DOCUMENT_EDITED',
          ref: d.hash,
          ...(event === undefined ? {} : { eventIndex: event }),
          message: `${d.kind} document ${d.hash.slice(0, 16)}… was edited: its bytes no longer hash to the hash the log committed${event === undefined ? '' : ` (event ${event})`}`,
        });
      } else if (event === undefined) {
        add({ kind: 'DOCUMENT_UNREFERENCED', ref: d.hash, message: `${d.kind} document ${d.hash.slice(0, 16)}… is committed by no event on the log` });
      }
    }
  }
  let documentsErased = 0;
  for (const [hash, event] of refs) {
    if (erased.has(hash)) documentsErased++;
    else add({ kind: 'DOCUMENT_MISSING', ref: hash, eventIndex: event, message: `document ${hash.slice(0, 16)}… committed by event ${event} is missing from the store` });
  }
  await checkCohorts(sidecar, cohorts, add);
  let commitmentsChecked = 0;
  for await (const page of sidecar.commitmentPages()) {
    for (const c of page) {
      commitmentsChecked++;
      if (computeCommitment(c.salt, c.value) !== c.commitment) {
        add({ kind: 'COMMITMENT_MISMATCH', ref: c.commitment, message: `the stored opening of commitment ${c.commitment.slice(0, 16)}… does not open it (salt or value edited)` });
      }
    }
  }
  const stored = new Map((await sidecar.listState('policy')).map((r) => [r.key, r.value]));
  for (const [policyId, head] of heads) {
    let row: { version?: unknown; hash?: unknown; index?: unknown } | undefined;
    try {
      row = stored.has(policyId) ? (JSON.parse(stored.get(policyId)!) as typeof row) : undefined;
    } catch {
      row = undefined;
    }
    if (!row || row.hash !== head.hash || row.index !== head.index || row.version !== head.version) {
      add({
        kind: 'POLICY_HEAD_MISMATCH',
        ref: policyId,
        eventIndex: head.index,
        message: `policy ${policyId}: the store's current version is not the last one the log committed (event ${head.index}, version ${head.version})`,
      });
    }
    stored.delete(policyId);
  }
  for (const policyId of stored.keys()) {
    add({ kind: 'POLICY_HEAD_MISMATCH', ref: policyId, message: `policy ${policyId} has a current version in the store but no consent event on the log` });
  }
  checkTokens(tokens, await sidecar.listState('token'), add);
  return { ok: findings.length === 0, documentsReferenced, documentsChecked, commitmentsChecked, documentsErased, findings };
}

// issue 14: each cohort document that is present and hashes right must be the sorted set whose
// tree root and size the entry records (a missing or edited one is already a finding above).
async function checkCohorts(sidecar: LogView['sidecar'], cohorts: readonly { index: number; root: string; size: unknown; hash: string }[], add: (f: DocumentFinding) => void): Promise<void> {
  for (const c of cohorts) {
    const d = await sidecar.getDocument(c.hash);
    if (!d || toHex(sha256(d.bytes)) !== c.hash) continue;
    let why: string | undefined;
    try {
      why = typeof c.size === 'number' ? checkCohortDocument(JSON.parse(d.bytes.toString('utf8')), c.root, c.size) : 'the entry records no cohort size';
    } catch {
      why = 'not JSON';
    }
    if (why !== undefined) add({ kind: 'COHORT_MISMATCH', ref: c.hash, eventIndex: c.index, message: `the cohort document of the training run at entry ${c.index} is not its cohort: ${why}` });
  }
}

// The token rows against the tokens the log created and revoked. Authentication reads the log, not
// these rows; a row that disagrees is evidence of an edit to the store.
function checkTokens(tokens: ReadonlyMap<string, LoggedToken>, rows: readonly { key: string; value: string }[], add: (f: DocumentFinding) => void): void {
  const seen = new Set<string>();
  for (const { key, value } of rows) {
    seen.add(key);
    const logged = tokens.get(key);
    if (!logged) {
      add({ kind: 'TOKEN_NOT_ON_LOG', ref: key, message: `token ${key} has a row in the store but no TOKEN_CREATED event on the log` });
      continue;
    }
    let row: { id?: unknown; name?: unknown; role?: unknown; hash?: unknown; revokedAt?: unknown } | undefined;
    try {
      row = JSON.parse(value) as typeof row;
    } catch {
      row = undefined;
    }
    if (logged.revokedIndex !== null && (row === undefined || row.revokedAt === null || row.revokedAt === undefined)) {
      add({ kind: 'TOKEN_REVOKED_ON_LOG', ref: key, eventIndex: logged.revokedIndex, message: `token ${key} was revoked on the log (event ${logged.revokedIndex}) but its row shows it active` });
      continue;
    }
    const differs =
      row === undefined ||
      row.id !== key ||
      row.name !== logged.name ||
      row.role !== logged.role ||
      (logged.secretDigest !== null && (typeof row.hash !== 'string' || tokenSecretDigest(row.hash) !== logged.secretDigest)) ||
      (logged.revokedIndex === null && row.revokedAt !== null);
    if (differs) {
      add({ kind: 'TOKEN_ROW_MISMATCH', ref: key, eventIndex: logged.createdIndex, message: `token ${key}: its row differs from what the log says (event ${logged.createdIndex})` });
    }
  }
  for (const t of tokens.values()) {
    if (!seen.has(t.id)) add({ kind: 'TOKEN_ROW_MISMATCH', ref: t.id, eventIndex: t.createdIndex, message: `token ${t.id} created on the log (event ${t.createdIndex}) has no row in the store` });
  }
}
