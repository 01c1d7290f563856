/**
 * The FHIR search over the audit trail, pure: parsing the search parameters (`date`, `agent`,
 * `entity`, `patient`, `_count` and the paging cursors), matching a resource against them, and
 * following a subject's links through the log (commitment → consent policies → their events).
 * The I/O (scanning the log, resolving a subject id to its commitments) is in service/fhir-audit.ts.
 * @module
 */
import type { AuditEvent, Provenance } from '@medplum/fhirtypes';
import { ValidationError, type ValidationIssue } from '../core/errors.js';
import { EVENT_TYPE, isRecord, stringField, type LoggedEvent } from '../core/events.js';
import { agentIds, entityIdentifiers } from './audit-event.js';
import { SID } from './uris.js';

/** Default and largest page size (`_count`). */
export const DEFAULT_COUNT = 50;
export const MAX_COUNT = 1000;

/** One `date` comparison on `recorded` (epoch ms bounds of the given precision). */
export interface DateFilter {
  readonly prefix: 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le';
  /** The first millisecond the value covers, and the first after it (FHIR: a date is a range). */
  readonly startMs: number;
  readonly endMs: number;
}

/** A token: `system|value`, `|value` (no system), or `value` (any system). */
export interface TokenFilter {
  readonly system?: string | undefined;
  readonly value: string;
}

/** A parsed search. Repeated parameters are ANDed; a comma inside one is an OR (FHIR). */
export interface AuditSearch {
  readonly dates: readonly DateFilter[];
  readonly agents: readonly (readonly string[])[];
  readonly entities: readonly (readonly TokenFilter[])[];
  readonly patient?: string | undefined;
  readonly count: number;
  /** Paging: entries with index > after (ascending), or the last page of those with index < before. */
  readonly after?: number | undefined;
  readonly before?: number | undefined;
}

/** The raw query as a server receives it (a repeated key is an array). */
export type RawQuery = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The search parameters Custos supports, per resource type (CapabilityStatement and docs). */
export const SEARCH_PARAMS = Object.freeze([
  { name: 'date', type: 'date', documentation: 'AuditEvent.recorded (Provenance.recorded): eq, ne, gt, lt, ge, le prefixes; a partial date is a range; repeat to AND' },
  { name: 'agent', type: 'token', documentation: `the actor id (${SID.actor}); comma-separated ids are ORed` },
  {
    name: 'entity',
    type: 'token',
    documentation: `an entity identifier: a digest (${SID.sha256}|hex), a policy id (${SID.policy}|pol_...), an entry index (${SID.logEntry}|N), a commitment; [system|]value`,
  },
  { name: 'patient', type: 'token', documentation: 'a subject id (privacy officer only: needs read and commitments:open): the entries linked to its commitments' },
] as const);

const KNOWN = new Set(['date', 'agent', 'entity', 'patient', '_count', '_after', '_before']);
const DATE_RE = /^(eq|ne|gt|lt|ge|le)?(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;
const INDEX_RE = /^(0|[1-9][0-9]{0,15})$/;
const TOKEN_RE = /^[\x21-\x7e]{1,256}$/;

function values(q: RawQuery, key: string): readonly string[] {
  const v = q[key];
  return v === undefined ? [] : typeof v === 'string' ? [v] : v;
}

/** Parses one `date` value (FHIR search date: a prefix, then YYYY[-MM[-DD[Thh:mm[:ss[.sss]]TZ]]]). */
export function parseDateFilter(s: string): DateFilter | undefined {
  const m = DATE_RE.exec(s);
  if (!m) return undefined;
  const [, prefix = 'eq', y, mo, d, h, mi, se, frac, tz] = m;
  const num = (x: string | undefined, dflt: number) => (x === undefined ? dflt : Number(x));
  const month = num(mo, 1);
  const day = num(d, 1);
  if (month < 1 || month > 12 || day < 1 || day > 31 || num(h, 0) > 23 || num(mi, 0) > 59 || num(se, 0) > 59) return undefined;
  const offsetMin = tz === undefined || tz === 'Z' ? 0 : (tz.startsWith('-') ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  const start = Date.UTC(Number(y), month - 1, day, num(h, 0), num(mi, 0), num(se, 0), ms) - offsetMin * 60_000;
  // Day 31 of a 30-day month rolls over: refuse it.
  if (new Date(Date.UTC(Number(y), month - 1, day)).getUTCDate() !== day || !Number.isFinite(start)) return undefined;
  let end: number;
  if (frac !== undefined) end = start + 1;
  else if (se !== undefined) end = start + 1000;
  else if (mi !== undefined) end = start + 60_000;
  else if (d !== undefined) end = Date.UTC(Number(y), month - 1, day + 1);
  else if (mo !== undefined) end = Date.UTC(Number(y), month, 1);
  else end = Date.UTC(Number(y) + 1, 0, 1);
  return { prefix: prefix as DateFilter['prefix'], startMs: start, endMs: end };
}

/** Parses a token (`system|value`, `|value` or `value`). */
export function parseToken(s: string): TokenFilter | undefined {
  if (!TOKEN_RE.test(s)) return undefined;
  const bar = s.indexOf('|');
  if (bar < 0) return { value: s };
  const value = s.slice(bar + 1);
  if (value === '') return undefined;
  return { system: s.slice(0, bar), value };
}

/**
 * Parses a search's query. Unknown parameters are refused (a filter a server ignores silently
 * would widen the result), as are malformed values.
 * @throws {ValidationError} VALIDATION_FAILED listing every bad parameter
 */
export function parseAuditSearch(q: RawQuery): AuditSearch {
  const issues: ValidationIssue[] = [];
  for (const k of Object.keys(q)) if (!KNOWN.has(k)) issues.push({ path: k, message: 'unknown search parameter' });
  const dates: DateFilter[] = [];
  for (const s of values(q, 'date')) {
    const d = parseDateFilter(s);
    if (d) dates.push(d);
    else issues.push({ path: 'date', message: 'expected [eq|ne|gt|lt|ge|le]YYYY[-MM[-DD[Thh:mm[:ss[.sss]]Z]]]' });
  }
  const agents: string[][] = [];
  for (const s of values(q, 'agent')) {
    const ids = s.split(',');
    if (ids.every((x) => TOKEN_RE.test(x))) agents.push(ids.map((x) => (x.includes('|') ? x.slice(x.indexOf('|') + 1) : x)));
    else issues.push({ path: 'agent', message: 'expected actor ids' });
  }
  const entities: TokenFilter[][] = [];
  for (const s of values(q, 'entity')) {
    const ts = s.split(',').map(parseToken);
    if (ts.every((t): t is TokenFilter => t !== undefined)) entities.push(ts);
    else issues.push({ path: 'entity', message: 'expected [system|]value tokens' });
  }
  const patients = values(q, 'patient');
  if (patients.length > 1 || (patients.length === 1 && !TOKEN_RE.test(patients[0]!))) issues.push({ path: 'patient', message: 'expected one subject id' });
  const one = (key: string, re: RegExp): number | undefined => {
    const v = values(q, key);
    if (v.length === 0) return undefined;
    if (v.length > 1 || !re.test(v[0]!)) {
      issues.push({ path: key, message: 'expected one non-negative integer' });
      return undefined;
    }
    return Number(v[0]);
  };
  const count = one('_count', INDEX_RE) ?? DEFAULT_COUNT;
  if (count < 1 || count > MAX_COUNT) issues.push({ path: '_count', message: `expected 1 to ${MAX_COUNT}` });
  const after = one('_after', INDEX_RE);
  const before = one('_before', INDEX_RE);
  if (after !== undefined && before !== undefined) issues.push({ path: '_before', message: '_after and _before exclude each other' });
  if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', `invalid search: ${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  return { dates, agents, entities, patient: patients[0], count, after, before };
}

function dateMatches(f: DateFilter, t: number): boolean {
  switch (f.prefix) {
    case 'eq':
      return t >= f.startMs && t < f.endMs;
    case 'ne':
      return t < f.startMs || t >= f.endMs;
    case 'gt':
      return t >= f.endMs;
    case 'lt':
      return t < f.startMs;
    case 'ge':
      return t >= f.startMs;
    case 'le':
      return t < f.endMs;
  }
}

/** The bounds `[fromMs, toMs)` the date filters allow at most (entry times are monotonic, so the scan can skip the rest). */
export function dateBounds(dates: readonly DateFilter[]): { fromMs: number; toMs: number } {
  let fromMs = Number.NEGATIVE_INFINITY;
  let toMs = Number.POSITIVE_INFINITY;
  for (const f of dates) {
    if (f.prefix === 'eq' || f.prefix === 'ge') fromMs = Math.max(fromMs, f.startMs);
    if (f.prefix === 'gt') fromMs = Math.max(fromMs, f.endMs);
    if (f.prefix === 'eq' || f.prefix === 'le') toMs = Math.min(toMs, f.endMs);
    if (f.prefix === 'lt') toMs = Math.min(toMs, f.startMs);
  }
  return { fromMs, toMs };
}

/** Whether an AuditEvent or a Provenance matches the date, agent and entity filters (the patient filter is the linker's). */
export function matchesSearch(r: AuditEvent | Provenance, s: AuditSearch): boolean {
  const t = Date.parse(r.recorded ?? '');
  if (!s.dates.every((f) => dateMatches(f, t))) return false;
  if (s.agents.length > 0) {
    const ids = new Set(
      r.resourceType === 'AuditEvent' ? agentIds(r) : (r.agent ?? []).flatMap((a) => (a.who?.identifier?.system === SID.actor && a.who.identifier.value ? [a.who.identifier.value] : [])),
    );
    if (!s.agents.every((any) => any.some((id) => ids.has(id)))) return false;
  }
  if (s.entities.length > 0) {
    const ids =
      r.resourceType === 'AuditEvent'
        ? entityIdentifiers(r)
        : [...(r.target ?? []), ...(r.entity ?? []).map((e) => e.what)].flatMap((x) => (x?.identifier ? [x.identifier] : [])).concat([{ system: SID.logEntry, value: r.id ?? '' }]);
    const has = (f: TokenFilter) => ids.some((i) => i.value === f.value && (f.system === undefined || (f.system === '' ? i.system === undefined : i.system === f.system)));
    if (!s.entities.every((any) => any.some(has))) return false;
  }
  return true;
}

/**
 * Follows a subject through the log, entry by entry in index order (a policy's creation comes
 * before its use): an entry is linked when it carries one of the subject's commitments (a consent
 * created for the subject, an erasure, an opening, a query about the subject), or names a policy
 * created for the subject (a revocation, a decision, a read of the policy, a training run under it).
 */
export class SubjectLinker {
  readonly #commitments: ReadonlySet<string>;
  readonly #policies = new Set<string>();

  constructor(commitments: Iterable<string>) {
    this.#commitments = new Set(commitments);
  }

  /** Whether the entry is linked to the subject (call for every entry, in index order). */
  linked(e: LoggedEvent): boolean {
    if (this.#commitments.size === 0) return false;
    const p = e.payload;
    if (e.type === EVENT_TYPE.consentCreated) {
      const s = stringField(p, 'subject');
      const id = stringField(p, 'policyId');
      if (s !== undefined && this.#commitments.has(s)) {
        if (id !== undefined) this.#policies.add(id);
        return true;
      }
      return false;
    }
    const cs = p['commitments'];
    if (Array.isArray(cs) && cs.some((x) => typeof x === 'string' && this.#commitments.has(x))) return true;
    const id = stringField(p, 'policyId');
    if (id !== undefined && this.#policies.has(id)) return true;
    const consents = p['consents'];
    return Array.isArray(consents) && consents.some((x) => isRecord(x) && typeof x['policyId'] === 'string' && this.#policies.has(x['policyId']));
  }
}
