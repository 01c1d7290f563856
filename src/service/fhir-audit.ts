/**
 * The audit trail as FHIR, over a log: the AuditEvent (and Provenance) of every entry, streamed in
 * pages for the Bulk Data export; one resource by entry index; and the search (date, agent,
 * entity, patient) with paging by entry index, which stays stable while the log grows.
 *
 * Everything is read up to one signed checkpoint, so every resource carries an inclusion proof
 * against it, and every Provenance that checkpoint as its signature.
 * @module
 */
import type { AuditEvent, Provenance } from '@medplum/fhirtypes';
import { NotFoundError } from '../core/errors.js';
import { EVENT_TYPE, parseLoggedEvent, type LoggedEvent } from '../core/events.js';
import { toHex } from '../core/hash.js';
import { toAuditEvent, type AuditContext, type AuditSource } from '../fhir/audit-event.js';
import { toProvenance } from '../fhir/provenance.js';
import { dateBounds, matchesSearch, SubjectLinker, type AuditSearch } from '../fhir/search.js';
import type { SidecarReader } from '../log/log.js';
import type { LogReader } from '../log/reader.js';

/** The two resource types of the audit trail. */
export type AuditResourceType = 'AuditEvent' | 'Provenance';

/** The checkpoint everything is read against: its size and signed note (none for an empty log). */
export interface Anchor {
  readonly treeSize: number;
  readonly note: string | undefined;
}

/** The latest signed checkpoint of the log. */
export async function latestAnchor(reader: LogReader): Promise<Anchor> {
  const cp = await reader.latestCheckpoint();
  return { treeSize: cp?.treeSize ?? 0, note: cp?.note };
}

function sourceOf(index: number, leafHash: Buffer, bytes: Buffer): AuditSource {
  // A stored entry that does not parse is the verifier's finding; it still gets an AuditEvent.
  const event: LoggedEvent = parseLoggedEvent(bytes) ?? { type: 'UNPARSEABLE', time: '', payload: {} };
  return { index, leafHash: toHex(leafHash), event };
}

async function contextFor(reader: LogReader, origin: string, index: number, anchor: Anchor): Promise<AuditContext> {
  const p = await reader.inclusionProof(index, anchor.treeSize);
  return { origin, inclusion: { treeSize: p.treeSize, hashes: p.proof.map(toHex) } };
}

/** The resource of `type` for one source, with its inclusion proof (undefined: no Provenance for this entry). */
async function resourceOf(reader: LogReader, origin: string, anchor: Anchor, type: AuditResourceType, src: AuditSource): Promise<AuditEvent | Provenance | undefined> {
  const ctx = await contextFor(reader, origin, src.index, anchor);
  return type === 'AuditEvent' ? toAuditEvent(src, ctx) : toProvenance(src, { ...ctx, ...(anchor.note ? { checkpoint: anchor.note } : {}) });
}

/**
 * Pages of the AuditEvents and Provenances of entries `[0, anchor.treeSize)`, oldest first, each
 * with its inclusion proof against the anchor (memory: one page of the store at a time).
 */
export async function* fhirPages(reader: LogReader, origin: string, anchor: Anchor): AsyncIterable<{ auditEvents: AuditEvent[]; provenances: Provenance[] }> {
  for await (const page of reader.entryPages(0, anchor.treeSize)) {
    const auditEvents: AuditEvent[] = [];
    const provenances: Provenance[] = [];
    for (const e of page) {
      const src = sourceOf(e.index, e.leafHash, e.bytes);
      const ctx = await contextFor(reader, origin, e.index, anchor);
      auditEvents.push(toAuditEvent(src, ctx));
      const prov = toProvenance(src, { ...ctx, ...(anchor.note ? { checkpoint: anchor.note } : {}) });
      if (prov) provenances.push(prov);
    }
    yield { auditEvents, provenances };
  }
}

/**
 * One resource by entry index (its FHIR id).
 * @throws {NotFoundError} ENTRY_NOT_FOUND (no such entry under the latest checkpoint), RECEIPT_NOT_FOUND (a Provenance of an entry that is not an inference)
 */
export async function readFhirResource(reader: LogReader, origin: string, type: AuditResourceType, index: number): Promise<AuditEvent | Provenance> {
  const anchor = await latestAnchor(reader);
  if (!Number.isSafeInteger(index) || index < 0 || index >= anchor.treeSize) throw new NotFoundError('ENTRY_NOT_FOUND', `no entry ${index} under the latest checkpoint`, { details: { index } });
  const e = await reader.getEntry(index);
  const r = await resourceOf(reader, origin, anchor, type, sourceOf(e.index, e.leafHash, e.bytes));
  if (!r) throw new NotFoundError('RECEIPT_NOT_FOUND', `entry ${index} is not an inference receipt`, { details: { index } });
  return r;
}

/** A page of search results, and what the paging links need. */
export interface SearchResult {
  readonly resources: (AuditEvent | Provenance)[];
  readonly total: number;
  /** The page's first and last entry index (for the previous / next cursors). */
  readonly first: number | undefined;
  readonly last: number | undefined;
  readonly hasPrevious: boolean;
  readonly hasNext: boolean;
}

/**
 * Searches the entries under the latest checkpoint. One ascending pass: entry times never decrease,
 * so the date bounds narrow the range by binary search (except with `patient`, whose links are
 * followed from the first entry); the page holds at most `count` resources.
 * @param subject the subject's commitments, when the search has `patient`
 */
export async function searchFhir(reader: LogReader, origin: string, type: AuditResourceType, s: AuditSearch, subject?: readonly string[]): Promise<SearchResult> {
  const anchor = await latestAnchor(reader);
  const size = anchor.treeSize;
  const { fromMs, toMs } = dateBounds(s.dates);
  const lo = fromMs === Number.NEGATIVE_INFINITY ? 0 : await reader.firstIndexAtOrAfter(fromMs, size);
  const hi = toMs === Number.POSITIVE_INFINITY ? size : await reader.firstIndexAtOrAfter(toMs, size);
  const linker = subject ? new SubjectLinker(subject) : undefined;
  let page: AuditSource[] = [];
  let total = 0;
  let hasPrevious = false;
  let hasNext = false;
  let earlier = 0;
  const after = s.before === undefined ? (s.after ?? -1) : undefined;
  for await (const entries of reader.entryPages(linker ? 0 : lo, Math.max(lo, hi))) {
    for (const e of entries) {
      const src = sourceOf(e.index, e.leafHash, e.bytes);
      const linked = linker?.linked(src.event) ?? true;
      if (e.index < lo || !linked) continue;
      if (type === 'Provenance' && src.event.type !== EVENT_TYPE.inferenceExecuted) continue;
      // Matching on the resource itself: a search finds exactly what the resources say.
      const r = type === 'AuditEvent' ? toAuditEvent(src, { origin }) : toProvenance(src, { origin });
      if (!r || !matchesSearch(r, s)) continue;
      total++;
      if (after !== undefined) {
        if (e.index <= after) hasPrevious = true;
        else if (page.length < s.count) page.push(src);
        else hasNext = true;
      } else if (e.index < s.before!) {
        page.push(src);
        // Keeps the last `count` (trimmed in bulk: amortized O(1) per match).
        if (page.length >= 2 * s.count) page = page.slice(page.length - s.count);
        if (++earlier > s.count) hasPrevious = true;
      } else hasNext = true;
    }
  }
  if (page.length > s.count) page = page.slice(page.length - s.count);
  const resources: (AuditEvent | Provenance)[] = [];
  for (const src of page) {
    const r = await resourceOf(reader, origin, anchor, type, src);
    if (r) resources.push(r);
  }
  return { resources, total, first: page[0]?.index, last: page[page.length - 1]?.index, hasPrevious, hasNext };
}

/** The commitments of a subject id (none when the subject is unknown or erased). */
export async function subjectCommitments(sidecar: SidecarReader, subjectId: string): Promise<string[]> {
  return (await sidecar.findCommitments('subject', subjectId)).map((c) => c.commitment);
}
