/**
 * A patient's accounting of disclosures (HIPAA §164.528, GDPR Art. 15): every access, inference,
 * training run, denial, read and opening that touched one subject, each line with its entry, leaf
 * hash and inclusion proof against one signed checkpoint, and what the report cannot show.
 *
 * The query is audited first: an AUDIT_QUERY event (permission `disclosures`) is on the log before
 * anything about the subject is read. It carries `queryHash` = SHA-256 of the canonical JSON of
 * `{subject, since, until, nonce}` with a random nonce: the subject id never reaches the log, the
 * hash cannot be reversed by guessing ids, and the report (which holds the nonce) shows which
 * audit entry recorded it. The report proves against a checkpoint that covers that audit entry.
 *
 * Finding the entries is governance/disclosures.ts ({@link findSubjectEntries}); the HTML form is
 * disclosures-html.ts.
 * @module
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { VerificationError } from '../core/errors.js';
import { bytesEqual, parseHashHex, toHex } from '../core/hash.js';
import { openCheckpoint } from '../core/checkpoint.js';
import { verifyInclusion } from '../core/merkle/inclusion.js';
import { isRecord, stringField } from '../core/events.js';
import { parseWith } from '../core/schema/parse.js';
import type { NoteVerifier } from '../core/note.js';
import type { Log } from '../log/log.js';
import { formatEntryTime } from '../core/entry.js';
import type { Clock } from '../log/clock.js';
import { systemClock } from '../log/clock.js';
import { queryHash, type AuditActor, type AuditTrail } from './audit.js';
import { DISCLOSURES_QUERY, type DisclosuresQuery } from './requests.js';
import { findSubjectEntries, type DisclosureKind, type SubjectEntry } from './governance/disclosures.js';

/** The format name of a report. */
export const DISCLOSURE_REPORT_SCHEMA = 'custos/disclosures/v1';

/** An inclusion proof: the sibling hashes (hex, leaf to root) to the root of a tree of `treeSize`. */
export interface LineProof {
  readonly treeSize: number;
  readonly hashes: readonly string[];
}

/** One line of the report. */
export interface DisclosureLine {
  readonly index: number;
  readonly leafHash: string;
  /** The entry as stored (canonical JSON): SHA-256(0x00 || UTF-8 of this) is `leafHash`. */
  readonly entry: string;
  readonly time: string;
  readonly type: string;
  readonly kind: DisclosureKind;
  readonly actor: string | null;
  readonly role: string | null;
  readonly purpose: string | null;
  /** `executed`, or `denied` with its reason (a decision reason code). */
  readonly outcome: 'executed' | 'denied';
  readonly reason: string | null;
  /** For a denial: the operation refused (data_access, inference, training). */
  readonly operation: string | null;
  /** The consent policies of this subject the entry was decided under, with the version when the entry names it. */
  readonly consent: readonly { readonly policyId: string; readonly version: number | null; readonly provision: string | null }[];
  /** For a read or an opening: the entries of this report it names. */
  readonly refersTo: readonly number[];
  /** Commitments this entry carries whose openings were erased since: what it names can no longer be named. */
  readonly erased: readonly string[];
  readonly proof: LineProof;
}

/** A report. */
export interface DisclosureReport {
  readonly schema: typeof DISCLOSURE_REPORT_SCHEMA;
  /** The pseudonymous subject id the report was asked for (it is in the report, never on the log). */
  readonly subject: string;
  /** False: the log has no opening of this subject (never recorded, or erased): nothing can be listed. */
  readonly subjectKnown: boolean;
  readonly period: { readonly since: string | null; readonly until: string | null };
  readonly generatedAt: string;
  readonly generatedBy: { readonly actor: string; readonly role: string };
  readonly log: {
    readonly origin: string;
    /** The signed checkpoint every proof is against (C2SP signed note). */
    readonly checkpoint: string;
    readonly treeSize: number;
    readonly rootHash: string;
    /** The verifier key the log names for itself; obtain it independently before trusting it. */
    readonly verifierKey: string | null;
  };
  /** The AUDIT_QUERY entry that recorded this query, and how to recognise it. */
  readonly query: { readonly index: number; readonly leafHash: string; readonly entry: string; readonly nonce: string; readonly queryHash: string; readonly proof: LineProof };
  readonly policies: readonly { readonly policyId: string; readonly index: number }[];
  readonly lines: readonly DisclosureLine[];
  readonly cannotShow: {
    readonly unknownSubject: boolean;
    /** Lines of the subject outside the period (not listed). */
    readonly outsidePeriod: number;
    /** Erasures that removed links of this subject's entries, and subject erasures (one may have been this subject's). */
    readonly erasures: readonly { readonly index: number; readonly time: string; readonly kind: string; readonly linkedToSubject: number }[];
    /** Entries no subject can be tied to any more (their policy's subject opening was erased). */
    readonly unlinked: { readonly policies: number; readonly entries: number; readonly erasures: readonly number[] };
    /** Entries stored after the checkpoint (not covered by it, so not searched). */
    readonly afterCheckpoint: number;
    /** What the log never ties to a subject (plain statements). */
    readonly notRecorded: readonly string[];
  };
}

/** What a report never shows, whatever the log holds. */
export const NOT_RECORDED = Object.freeze([
  'Uses of the data outside the systems that record to this log.',
  'Bulk reads that name no single patient (entry listings, exports, verifications): they are logged, but not tied to a patient.',
  "Requests refused before a decision (invalid input, or a caller without the permission): they never name the patient's policy.",
  'Other accountings of disclosures: each is logged with a hash of its query that only the report it produced can match.',
]);

/** Options of {@link buildDisclosureReport}. */
export interface BuildDisclosureReportOptions {
  /** Who asks (a privacy officer): the credential's actor and role. */
  readonly actor: AuditActor;
  /** The route the audit event names (`GET /api/v1/disclosures`, or the CLI's). */
  readonly route: string;
  readonly audit: AuditTrail;
  /** The log's key: the checkpoint is opened with it before anything is proved against it. */
  readonly verifier: NoteVerifier;
  readonly clock?: Clock;
  readonly randomBytes?: (n: number) => Buffer;
}

const num = (x: unknown): number | null => (Number.isSafeInteger(x) ? (x as number) : null);

function integrity(message: string, details: Record<string, unknown>): VerificationError {
  return new VerificationError('LOG_INTEGRITY', `${message}; run custos verify`, { details });
}

/**
 * The accounting of disclosures of `query.subject`: audited first (AUDIT_QUERY), then every line
 * found and proved against a signed checkpoint covering the audit entry.
 * @throws {ValidationError} VALIDATION_FAILED for a malformed query (nothing written)
 * @throws {VerificationError} LOG_INTEGRITY when the checkpoint or a line does not verify
 */
export async function buildDisclosureReport(log: Log, query: unknown, o: BuildDisclosureReportOptions): Promise<DisclosureReport> {
  const q: DisclosuresQuery = parseWith(DISCLOSURES_QUERY, query, 'disclosures query');
  const random = o.randomBytes ?? nodeRandomBytes;
  const nonce = random(16).toString('hex');
  const hash = queryHash({ subject: q.subject, since: q.since, until: q.until, nonce })!;
  // On the log before anything about the subject is read.
  const recorded = await o.audit.query(o.actor, { route: o.route, permission: 'disclosures', queryHash: hash });

  const stored = await log.reader.latestCheckpoint();
  if (!stored || stored.treeSize <= recorded.index) throw integrity('no signed checkpoint covers the audit entry of this query', { index: recorded.index });
  let cp;
  try {
    cp = openCheckpoint(stored.note, [o.verifier], log.origin);
  } catch (err) {
    throw integrity(`the latest checkpoint does not verify under the log's key (${(err as Error).message})`, { treeSize: stored.treeSize });
  }
  const size = cp.treeSize;
  const prove = async (index: number, leafHash: string): Promise<LineProof> => {
    const p = await log.reader.inclusionProof(index, size);
    const leaf = parseHashHex(leafHash);
    // The leaf is hashed from the entry bytes here; the root is the signed one.
    if (!bytesEqual(p.leafHash, leaf)) throw integrity(`entry ${index} does not hash to its stored leaf`, { index });
    try {
      verifyInclusion(index, size, leaf, p.proof, cp.rootHash);
    } catch {
      throw integrity(`entry ${index} is not included in the signed checkpoint`, { index, treeSize: size });
    }
    return { treeSize: size, hashes: p.proof.map(toHex) };
  };

  const found = await findSubjectEntries(log, q.subject, { to: size, ...(q.since ? { since: q.since } : {}), ...(q.until ? { until: q.until } : {}) });
  const own = new Set(found.policies.map((p) => p.policyId));
  const lines: DisclosureLine[] = [];
  for (const e of found.entries) lines.push({ ...lineOf(e, own), proof: await prove(e.index, e.leafHash) });

  const auditEntry = await log.reader.getEntry(recorded.index);
  const auditLeaf = toHex(recorded.leafHash);
  const storedSize = await log.reader.size();
  return {
    schema: DISCLOSURE_REPORT_SCHEMA,
    subject: q.subject,
    subjectKnown: found.known,
    period: { since: q.since ?? null, until: q.until ?? null },
    generatedAt: formatEntryTime((o.clock ?? systemClock).now()),
    generatedBy: { actor: o.actor.id, role: o.actor.role },
    log: { origin: log.origin, checkpoint: stored.note, treeSize: size, rootHash: toHex(cp.rootHash), verifierKey: (await log.reader.meta('verifier_key')) ?? null },
    query: { index: recorded.index, leafHash: auditLeaf, entry: auditEntry.bytes.toString('utf8'), nonce, queryHash: hash, proof: await prove(recorded.index, auditLeaf) },
    policies: found.policies,
    lines,
    cannotShow: {
      unknownSubject: !found.known,
      outsidePeriod: found.outsidePeriod,
      erasures: found.erasures.map((x) => ({ index: x.index, time: x.time, kind: x.kind, linkedToSubject: x.subjectLinked.length })),
      unlinked: found.unlinked,
      afterCheckpoint: Math.max(0, storedSize - size),
      notRecorded: NOT_RECORDED,
    },
  };
}

// The fields of one line, read from its entry (never through a cast).
function lineOf(e: SubjectEntry, own: ReadonlySet<string>): Omit<DisclosureLine, 'proof'> {
  const p = e.event.payload;
  const denied = e.kind === 'denial';
  let consent: DisclosureLine['consent'];
  if (e.kind === 'training') {
    const cs = Array.isArray(p['consents']) ? p['consents'].filter(isRecord) : [];
    consent = cs
      .filter((c) => typeof c['policyId'] === 'string' && own.has(c['policyId']))
      .map((c) => ({ policyId: c['policyId'] as string, version: num(c['policyVersion']), provision: stringField(c, 'provision') ?? null }));
  } else {
    const id = stringField(p, 'policyId');
    consent = id !== undefined && own.has(id) ? [{ policyId: id, version: num(p['policyVersion']), provision: stringField(p, 'provision') ?? null }] : [];
  }
  return {
    index: e.index,
    leafHash: e.leafHash,
    entry: e.bytes.toString('utf8'),
    time: e.event.time,
    type: e.event.type,
    kind: e.kind,
    actor: stringField(p, 'actor') ?? null,
    role: stringField(p, 'role') ?? null,
    purpose: stringField(p, 'purpose') ?? null,
    outcome: denied ? 'denied' : 'executed',
    reason: denied ? (stringField(p, 'reason') ?? null) : null,
    operation: denied ? (stringField(p, 'operation') ?? null) : null,
    consent,
    refersTo: e.via.entries,
    erased: e.erased,
  };
}
