/**
 * What touched a subject: the log entries a patient's accounting of disclosures lists (HIPAA
 * §164.528, GDPR Art. 15), found although the log holds only salted commitments.
 *
 * The path from a subject id to its entries:
 * 1. the id → its subject commitment(s), through the sidecar's openings (`findCommitments`; one as
 *    a rule, two when writers raced on a new value);
 * 2. → the policies whose CONSENT_CREATED carries one of those commitments;
 * 3. → every entry of a type in {@link SUBJECT_EVENT_TYPES} that names one of those policies
 *    (DATA_ACCESSED, INFERENCE_EXECUTED, CONSENT_DENIED, TRAINING_EXECUTED through
 *    `consents[].policyId`, AUDIT_READ of the policy), that carries one of the subject's
 *    commitments or a URI commitment already linked to it by an earlier entry, or that names
 *    (`eventIndex`) an entry already found (AUDIT_READ, PATIENT_DATA_OPENED).
 *
 * One pass over `log.reader.entryPages` in index order, in bounded memory: an entry is parsed only
 * when a byte search of its type and of the policy ids and commitments it carries says it may
 * concern the subject (the sidecar has no index by subject; the openings are the only one).
 * Memory grows with what is found, not with the log. Since a policy's events follow its creation
 * and a URI's links follow its first use, one forward pass sees every link. A second pass runs only
 * when the log records subject erasures, to count the entries they made unlinkable.
 *
 * What it cannot find, and says: the entries of a subject whose openings were erased (no opening,
 * no path: {@link SubjectEntries.unlinked} counts the entries under policies whose subject
 * commitment was erased, which may or may not be this subject's), and commitments of this subject's
 * entries that were erased since (each {@link SubjectEntry.erased}).
 * @module
 */
import { hashLeaf, sha256, toHex } from '../../core/hash.js';
import { EVENT_TYPE, isRecord, parseLoggedEvent, recordField, stringField, type LoggedEvent } from '../../core/events.js';
import { logView, type LogSource } from '../../log/reader.js';

/** What an entry did to the subject's data, as a report names it. */
export type DisclosureKind = 'access' | 'inference' | 'training' | 'denial' | 'break-glass' | 'read' | 'opening';

/** How one event type ties to a subject. Add an element to {@link SUBJECT_EVENT_TYPES} to report a new type. */
export interface SubjectEventSpec {
  readonly type: string;
  readonly kind: DisclosureKind;
  /** The policy ids the event names (the subject's policies make it the subject's). */
  readonly policyIds: (p: Readonly<Record<string, unknown>>) => readonly string[];
  /** Subject and URI commitments the event carries. */
  readonly commitments: (p: Readonly<Record<string, unknown>>) => readonly string[];
  /** Entry indices the event names (a read or opening of an entry already found is the subject's). */
  readonly entryRefs?: (p: Readonly<Record<string, unknown>>) => readonly number[];
  /** Whether its commitments link further URIs to the subject (events that use data under a policy). */
  readonly links?: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;

const topPolicy = (p: Readonly<Record<string, unknown>>): string[] => {
  const id = stringField(p, 'policyId');
  return id === undefined ? [] : [id];
};
// The `uri` commitments of the named artifact fields (`artifact`, `input`, `dataset`).
const uris =
  (...keys: string[]) =>
  (p: Readonly<Record<string, unknown>>): string[] => {
    const out: string[] = [];
    for (const k of keys) {
      const x = p[k];
      const u = isRecord(x) ? x['uri'] : undefined;
      if (typeof u === 'string' && HEX64.test(u)) out.push(u);
    }
    return out;
  };
const none = (): string[] => [];
const eventIndex = (p: Readonly<Record<string, unknown>>): number[] => {
  const i = p['eventIndex'];
  return Number.isSafeInteger(i) ? [i as number] : [];
};

/**
 * The event types an accounting of disclosures lists, and how each ties to a subject. The one list:
 * a new type (e.g. BREAK_GLASS, naming `policyId`) is one more element.
 */
export const SUBJECT_EVENT_TYPES: readonly SubjectEventSpec[] = Object.freeze([
  { type: EVENT_TYPE.dataAccessed, kind: 'access', policyIds: topPolicy, commitments: uris('artifact'), links: true },
  { type: EVENT_TYPE.inferenceExecuted, kind: 'inference', policyIds: topPolicy, commitments: uris('input'), links: true },
  {
    type: EVENT_TYPE.trainingExecuted,
    kind: 'training',
    policyIds: (p) => {
      const c = p['consents'];
      return Array.isArray(c) ? c.map((x) => (isRecord(x) ? x['policyId'] : undefined)).filter((x): x is string => typeof x === 'string') : [];
    },
    commitments: uris('dataset'),
    links: true,
  },
  { type: EVENT_TYPE.consentDenied, kind: 'denial', policyIds: topPolicy, commitments: uris('artifact', 'input', 'dataset'), links: true },
  // An access consent denied, executed under break-glass (issue 12): a disclosure like any access.
  { type: EVENT_TYPE.breakGlass, kind: 'break-glass', policyIds: topPolicy, commitments: uris('artifact'), links: true },
  // issue 14: an inference refused for its model (not approved, or its weights digest differs): a refusal like a consent denial.
  { type: EVENT_TYPE.inferenceRefused, kind: 'denial', policyIds: topPolicy, commitments: uris('input'), links: true },
  { type: EVENT_TYPE.auditRead, kind: 'read', policyIds: topPolicy, commitments: none, entryRefs: eventIndex },
  {
    type: EVENT_TYPE.patientDataOpened,
    kind: 'opening',
    policyIds: none,
    commitments: (p) => (Array.isArray(p['commitments']) ? p['commitments'].filter((x): x is string => typeof x === 'string' && HEX64.test(x)) : []),
    entryRefs: eventIndex,
  },
] satisfies SubjectEventSpec[]);

/** One entry that concerns the subject. */
export interface SubjectEntry {
  readonly index: number;
  /** The entry's bytes as stored (the leaf). */
  readonly bytes: Buffer;
  /** RFC 9162 leaf hash of `bytes`, hex (computed here, not read from the store). */
  readonly leafHash: string;
  readonly event: LoggedEvent;
  readonly kind: DisclosureKind;
  /** What ties it to the subject: the subject's policy ids it names, the subject's commitments it carries, the subject's entries it names. */
  readonly via: { readonly policyIds: readonly string[]; readonly commitments: readonly string[]; readonly entries: readonly number[] };
  /** The subject's commitments it carries whose openings were erased later (the data it names can no longer be named). */
  readonly erased: readonly string[];
}

/** A consent policy of the subject, as its CONSENT_CREATED entries name it. */
export interface SubjectPolicy {
  readonly policyId: string;
  /** Index of the first CONSENT_CREATED entry of the policy with the subject's commitment. */
  readonly index: number;
}

/** An ERASURE_PERFORMED entry, with what it erased of this subject. */
export interface SubjectErasure {
  readonly index: number;
  readonly time: string;
  readonly kind: string;
  /** How many commitments it erased in all. */
  readonly count: number;
  /** The commitments linked to this subject among them. */
  readonly subjectLinked: readonly string[];
}

/** What {@link findSubjectEntries} found. */
export interface SubjectEntries {
  /** Whether the subject has an opening: false means unknown, or erased (the two cannot be told apart). */
  readonly known: boolean;
  readonly subjectCommitments: readonly string[];
  readonly policies: readonly SubjectPolicy[];
  /** The subject's entries in `[from, to)` within the time bounds, oldest first. */
  readonly entries: readonly SubjectEntry[];
  /** Entries of the subject outside the time bounds (found, not listed). */
  readonly outsidePeriod: number;
  /** The range scanned. */
  readonly range: { readonly from: number; readonly to: number };
  /** The ERASURE_PERFORMED entries in the range of kind subject, and those that erased a commitment linked to this subject. */
  readonly erasures: readonly SubjectErasure[];
  /**
   * Entries that no subject can be tied to any more: those naming a policy whose subject commitment
   * was erased (with the erasure entries). They may or may not concern this subject.
   */
  readonly unlinked: { readonly policies: number; readonly entries: number; readonly erasures: readonly number[] };
}

/** Options of {@link findSubjectEntries}. */
export interface FindSubjectEntriesOptions {
  /** Scan `[0, to)`; default the latest signed checkpoint's size (entries beyond are not verified). */
  readonly to?: number;
  /** List only entries with time >= since (RFC 3339 UTC with milliseconds, as entries carry). */
  readonly since?: string;
  /** List only entries with time < until. */
  readonly until?: string;
  /** The event types to follow (default {@link SUBJECT_EVENT_TYPES}). */
  readonly types?: readonly SubjectEventSpec[];
}

const TYPE_MARK = Buffer.from('"type":"');

/** The top-level event type of stored entry bytes (`...,"type":"X","v":1}`), without parsing. */
export function entryTypeOf(bytes: Buffer): string | undefined {
  const at = bytes.lastIndexOf(TYPE_MARK);
  if (at < 0) return undefined;
  const start = at + TYPE_MARK.length;
  const end = bytes.indexOf(0x22, start);
  return end < 0 ? undefined : bytes.toString('latin1', start, end);
}

// The string values after every `"key":"` in canonical JSON bytes (ids and hex have no escapes).
function stringsAfter(bytes: Buffer, mark: Buffer): string[] {
  const out: string[] = [];
  for (let at = bytes.indexOf(mark); at >= 0; at = bytes.indexOf(mark, at + mark.length)) {
    const start = at + mark.length;
    const end = bytes.indexOf(0x22, start);
    if (end > start) out.push(bytes.toString('latin1', start, end));
  }
  return out;
}

// Whether the bytes carry a commitment in `set` (64 lowercase hex): a byte search per commitment
// while the set is small, else one pass over the entry's hex strings.
function carriesAny(bytes: Buffer, set: ReadonlySet<string>): boolean {
  if (set.size === 0) return false;
  if (set.size <= 8) {
    for (const c of set) if (bytes.indexOf(c, 0, 'latin1') >= 0) return true;
    return false;
  }
  const text = bytes.toString('latin1');
  for (const m of text.matchAll(/"([0-9a-f]{64})"/g)) if (set.has(m[1]!)) return true;
  return false;
}

const POLICY_MARK = Buffer.from('"policyId":"');
const COHORT_MARK = Buffer.from('"cohort":"');

// issue 14: the subject's commitments among the members of the cohort document a TRAINING_EXECUTED
// entry commits (checked against its hash; a missing or edited document links nothing, and is
// `custos verify`'s finding).
async function cohortMembers(sidecar: ReturnType<typeof logView>['sidecar'], bytes: Buffer, own: ReadonlySet<string>): Promise<string[]> {
  const hash = stringField(recordField(parseLoggedEvent(bytes)?.payload, 'documents'), 'cohort');
  const d = hash === undefined ? undefined : await sidecar.getDocument(hash);
  if (!d || toHex(sha256(d.bytes)) !== hash) return [];
  try {
    const members = (JSON.parse(d.bytes.toString('utf8')) as { commitments?: unknown }).commitments;
    return Array.isArray(members) ? members.filter((c): c is string => typeof c === 'string' && own.has(c)) : [];
  } catch {
    return [];
  }
}
const SUBJECT_MARK = Buffer.from('"subject":"');
const INDEX_MARK = Buffer.from('"eventIndex":');

/**
 * The entries that concern a subject (see the module comment), with what the report must say it
 * cannot show. Reads the sidecar for the subject's openings, then pages through `[0, to)`.
 * @param subject the pseudonymous subject id, as the policies were created with it
 */
export async function findSubjectEntries(source: LogSource, subject: string, options: FindSubjectEntriesOptions = {}): Promise<SubjectEntries> {
  const { reader, sidecar } = logView(source);
  const to = options.to ?? (await reader.latestCheckpoint())?.treeSize ?? 0;
  const specs = new Map((options.types ?? SUBJECT_EVENT_TYPES).map((s) => [s.type, s]));
  const own = await sidecar.findCommitments('subject', subject);
  const subjectCommitments = new Set(own.map((c) => c.commitment));
  const policies = new Map<string, number>();
  // The subject's commitments: its own and the URIs its entries carry (grows as they are found).
  const linked = new Set(subjectCommitments);
  const found = new Set<number>();
  const entries: Omit<SubjectEntry, 'erased'>[] = [];
  const erasures: SubjectErasure[] = [];
  const erasedSubjects = new Set<string>();
  let outsidePeriod = 0;

  for await (const page of reader.entryPages(0, to)) {
    for (const e of page) {
      const type = entryTypeOf(e.bytes);
      if (type === undefined) continue;
      if (type === EVENT_TYPE.consentCreated) {
        if (subjectCommitments.size === 0) continue;
        const sub = stringsAfter(e.bytes, SUBJECT_MARK).find((x) => subjectCommitments.has(x));
        if (sub === undefined) continue;
        const ev = parseLoggedEvent(e.bytes);
        const id = stringField(ev?.payload, 'policyId');
        if (ev?.type === type && id !== undefined && stringField(ev.payload, 'subject') === sub && !policies.has(id)) policies.set(id, e.index);
        continue;
      }
      if (type === EVENT_TYPE.erasure) {
        const ev = parseLoggedEvent(e.bytes);
        const kind = stringField(ev?.payload, 'kind');
        const cs = ev && Array.isArray(ev.payload['commitments']) ? ev.payload['commitments'].filter((x): x is string => typeof x === 'string') : [];
        if (!ev || kind === undefined || kind === 'document') continue;
        if (kind === 'subject') for (const c of cs) erasedSubjects.add(c);
        // Kept: subject erasures (one may have been this subject's) and erasures of its links.
        const subjectLinked = cs.filter((c) => linked.has(c));
        if (kind === 'subject' || subjectLinked.length > 0) erasures.push({ index: e.index, time: ev.time, kind, count: cs.length, subjectLinked });
        continue;
      }
      const spec = specs.get(type);
      if (!spec) continue;
      // Cheap byte tests first: a policy id of the subject, a linked commitment, or a found entry.
      const mayPolicy = policies.size > 0 && stringsAfter(e.bytes, POLICY_MARK).some((id) => policies.has(id));
      const mayRef = spec.entryRefs !== undefined && found.size > 0 && e.bytes.indexOf(INDEX_MARK) >= 0;
      // issue 14: a training run whose cohort (its off-ledger cohort document) holds one of the subject's commitments.
      const inCohort = type === EVENT_TYPE.trainingExecuted && subjectCommitments.size > 0 && e.bytes.indexOf(COHORT_MARK) >= 0 ? await cohortMembers(sidecar, e.bytes, subjectCommitments) : [];
      if (!mayPolicy && !mayRef && inCohort.length === 0 && !carriesAny(e.bytes, linked)) continue;
      const ev = parseLoggedEvent(e.bytes);
      if (!ev || ev.type !== type) continue;
      const viaPolicies = spec.policyIds(ev.payload).filter((id) => policies.has(id));
      const carried = spec.commitments(ev.payload);
      const viaCommitments = [...carried.filter((c) => linked.has(c)), ...inCohort];
      if (spec.links && inCohort.length > 0) for (const c of carried) linked.add(c);
      const viaEntries = (spec.entryRefs?.(ev.payload) ?? []).filter((i) => found.has(i));
      if (viaPolicies.length === 0 && viaCommitments.length === 0 && viaEntries.length === 0) continue;
      // Data used under the subject's policy is the subject's data: its URIs link later entries.
      if (spec.links && viaPolicies.length > 0) for (const c of carried) linked.add(c);
      found.add(e.index);
      if ((options.since !== undefined && ev.time < options.since) || (options.until !== undefined && ev.time >= options.until)) {
        outsidePeriod++;
        continue;
      }
      entries.push({
        index: e.index,
        bytes: Buffer.from(e.bytes),
        leafHash: toHex(hashLeaf(e.bytes)),
        event: ev,
        kind: spec.kind,
        via: { policyIds: viaPolicies, commitments: [...new Set([...viaCommitments, ...carried.filter((c) => subjectCommitments.has(c))])], entries: viaEntries },
      });
    }
  }

  // Commitments of the subject's entries erased after them: the entries stay, what they name is gone.
  const erasedLinked = new Set(erasures.flatMap((x) => x.subjectLinked));
  const withErased: SubjectEntry[] = entries.map((x) => {
    const spec = specs.get(x.event.type);
    const carried = spec ? spec.commitments(x.event.payload) : [];
    return { ...x, erased: carried.filter((c) => erasedLinked.has(c)) };
  });
  const unlinked = erasedSubjects.size > 0 ? await countUnlinked(reader, to, specs, erasedSubjects, erasures) : { policies: 0, entries: 0, erasures: [] };
  return {
    known: subjectCommitments.size > 0,
    subjectCommitments: [...subjectCommitments].sort(),
    policies: [...policies].map(([policyId, index]) => ({ policyId, index })),
    entries: withErased,
    outsidePeriod,
    range: { from: 0, to },
    erasures,
    unlinked,
  };
}

// The second pass: policies whose subject commitment was erased, and the entries naming them.
async function countUnlinked(
  reader: ReturnType<typeof logView>['reader'],
  to: number,
  specs: ReadonlyMap<string, SubjectEventSpec>,
  erasedSubjects: ReadonlySet<string>,
  erasures: readonly SubjectErasure[],
): Promise<SubjectEntries['unlinked']> {
  const orphans = new Set<string>();
  let count = 0;
  for await (const page of reader.entryPages(0, to)) {
    for (const e of page) {
      const type = entryTypeOf(e.bytes);
      if (type === EVENT_TYPE.consentCreated) {
        if (!stringsAfter(e.bytes, SUBJECT_MARK).some((x) => erasedSubjects.has(x))) continue;
        const id = stringField(parseLoggedEvent(e.bytes)?.payload, 'policyId');
        if (id !== undefined) orphans.add(id);
        continue;
      }
      const spec = type === undefined ? undefined : specs.get(type);
      if (!spec || orphans.size === 0 || !stringsAfter(e.bytes, POLICY_MARK).some((id) => orphans.has(id))) continue;
      const ev = parseLoggedEvent(e.bytes);
      if (ev && spec.policyIds(ev.payload).some((id) => orphans.has(id))) count++;
    }
  }
  const subjectErasures = erasures.filter((x) => x.kind === 'subject').map((x) => x.index);
  return { policies: orphans.size, entries: count, erasures: subjectErasures };
}
