/**
 * Differential-privacy queries over the log: the query (counts and histograms by event type,
 * purpose, role, model and outcome, per day, per week or over the whole range, with filters), its
 * canonical form and hash, the fixed list of bins it answers, and the exact, clipped aggregate.
 *
 * The unit of privacy is stated by the query:
 * - `patient`: the person a consent policy names, through the subject commitment of the policy's
 *   CONSENT_CREATED (the same subject has the same commitment under every policy). An event counts
 *   for the patient of the policy it was decided under; an event linked to no patient, or to several
 *   (a training run over many consents), is not counted.
 * - `actor`: the clinician or service that acted (the event's `actor`).
 * - `event`: each event on its own.
 *
 * Clipping bounds each unit's influence: only the first `clip` events of a unit (in log order) that
 * the query selects are counted, whatever bins they fall in; the rest are dropped. Adding or removing
 * one unit's events therefore moves the vector of counts by at most `clip` in L1 norm, and by at most
 * `clip` in L2 norm: that is the sensitivity the noise is calibrated to. The bins are fixed by the
 * query and the vocabularies, never by the data: a bin that exists only when some event does would
 * itself reveal that event.
 * @module
 */
import * as v from 'valibot';
import { ValidationError, type ValidationIssue } from '../errors.js';
import { EVENT_REGISTRY, EVENT_TYPE, isRecord, recordField, stringField, type LoggedEvent } from '../events.js';
import { parseWith } from '../schema/parse.js';

/** Units of privacy. */
export const DP_UNITS = ['patient', 'actor', 'event'] as const;
export type DpUnit = (typeof DP_UNITS)[number];
/** What a histogram may be broken down by. */
export const DP_DIMENSIONS = ['type', 'purpose', 'role', 'model', 'outcome'] as const;
export type DpDimension = (typeof DP_DIMENSIONS)[number];
/** Time bins. */
export const DP_INTERVALS = ['day', 'week', 'all'] as const;
export type DpInterval = (typeof DP_INTERVALS)[number];
/** The outcome of a decision event. */
export const DP_OUTCOMES = ['permitted', 'denied', 'break_glass'] as const;

/** The most bins one release may have. */
export const MAX_DP_BINS = 10_000;
/** The longest time range of a query, in days. */
export const MAX_DP_DAYS = 3_660;
/** The largest clip bound. */
export const MAX_DP_CLIP = 1_000;

const OUTCOME_OF: Readonly<Record<string, (typeof DP_OUTCOMES)[number]>> = Object.freeze({
  [EVENT_TYPE.dataAccessed]: 'permitted',
  [EVENT_TYPE.inferenceExecuted]: 'permitted',
  [EVENT_TYPE.trainingExecuted]: 'permitted',
  [EVENT_TYPE.consentDenied]: 'denied',
  [EVENT_TYPE.breakGlass]: 'break_glass',
});

const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const CODE = v.pipe(v.string(), v.maxLength(128));
const LIST = v.pipe(v.array(CODE), v.maxLength(256));

/** The query as it is sent (HTTP body `query`, or the JSON form of `--query`). */
export const DP_QUERY = v.strictObject({
  unit: v.picklist(DP_UNITS, `unit must be one of ${DP_UNITS.join(', ')}`),
  clip: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_DP_CLIP))),
  by: v.optional(v.pipe(v.array(v.picklist(DP_DIMENSIONS, `by: each one of ${DP_DIMENSIONS.join(', ')}`)), v.maxLength(3))),
  per: v.optional(v.picklist(DP_INTERVALS, `per must be one of ${DP_INTERVALS.join(', ')}`)),
  from: v.pipe(v.string(), v.regex(DATE_RE, 'from: a date, YYYY-MM-DD')),
  to: v.pipe(v.string(), v.regex(DATE_RE, 'to: a date, YYYY-MM-DD (exclusive)')),
  where: v.optional(
    v.strictObject({
      type: v.optional(LIST),
      purpose: v.optional(LIST),
      role: v.optional(LIST),
      model: v.optional(LIST),
      outcome: v.optional(LIST),
    }),
  ),
});

/** A query in canonical form: defaults filled in, filter lists sorted and without duplicates. */
export interface DpQuery {
  readonly unit: DpUnit;
  readonly clip: number;
  readonly by: readonly DpDimension[];
  readonly per: DpInterval;
  readonly from: string;
  readonly to: string;
  readonly where: Readonly<Partial<Record<DpDimension, readonly string[]>>>;
}

/** The codes a query's purposes and roles are checked against (the deployment's vocabularies). */
export interface DpDomains {
  readonly purposes: ReadonlySet<string> | readonly string[];
  readonly roles: ReadonlySet<string> | readonly string[];
}

const DAY_MS = 86_400_000;

function dateMs(s: string): number | undefined {
  const ms = Date.parse(`${s}T00:00:00.000Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === s ? ms : undefined;
}

/**
 * Parses the compact text form of a query (the CLI's `--query`), or its JSON form when the text
 * starts with `{`. The compact form is `key=value` pairs separated by spaces or `;`, lists
 * comma-separated: `unit=patient clip=3 by=purpose,outcome per=week from=2026-01-05 to=2026-03-02
 * type=INFERENCE_EXECUTED,CONSENT_DENIED`. Keys: unit, clip, by, per, from, to, and the filters
 * type, purpose, role, model, outcome.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseDpQuerySpec(text: string, domains: DpDomains): DpQuery {
  const t = text.trim();
  if (t.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(t);
    } catch {
      throw new ValidationError('VALIDATION_FAILED', 'the query is not valid JSON', { issues: [{ path: 'query', message: 'invalid JSON' }] });
    }
    return parseDpQuery(json, domains);
  }
  const out: Record<string, unknown> = {};
  const where: Record<string, string[]> = {};
  for (const pair of t.split(/[\s;]+/).filter((x) => x.length > 0)) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    const value = pair.slice(eq + 1);
    const list = value.split(',').filter((x) => x.length > 0);
    const bad = (message: string) => new ValidationError('VALIDATION_FAILED', `query: ${message}`, { issues: [{ path: `query.${key || pair.slice(0, 32)}`, message }] });
    if (!key) throw bad('expected key=value');
    if (key in out || key in where) throw bad(`${key} is given twice`);
    if (key === 'unit' || key === 'per' || key === 'from' || key === 'to') out[key] = value;
    else if (key === 'clip') out[key] = /^[0-9]{1,7}$/.test(value) ? Number(value) : value;
    else if (key === 'by') out[key] = list;
    else if ((DP_DIMENSIONS as readonly string[]).includes(key)) where[key] = list;
    else throw bad(`unknown key (expected unit, clip, by, per, from, to, ${DP_DIMENSIONS.join(', ')})`);
  }
  return parseDpQuery(Object.keys(where).length > 0 ? { ...out, where } : out, domains);
}

/**
 * Parses a query (JSON form) into its canonical form, checking every code against the
 * vocabularies and the size of the answer.
 * @throws {ValidationError} VALIDATION_FAILED: a malformed query, an unknown code, `to` not after
 *   `from`, a range over {@link MAX_DP_DAYS} days, more than {@link MAX_DP_BINS} bins, a breakdown by
 *   model without the list of models, a clip other than 1 for unit event
 */
export function parseDpQuery(input: unknown, domains: DpDomains): DpQuery {
  const q = parseWith(DP_QUERY, input, 'query', 'query');
  const issues: ValidationIssue[] = [];
  const fromMs = dateMs(q.from);
  const toMs = dateMs(q.to);
  if (fromMs === undefined) issues.push({ path: 'query.from', message: 'not a calendar date' });
  if (toMs === undefined) issues.push({ path: 'query.to', message: 'not a calendar date' });
  if (fromMs !== undefined && toMs !== undefined) {
    if (toMs <= fromMs) issues.push({ path: 'query.to', message: 'must be after from' });
    else if ((toMs - fromMs) / DAY_MS > MAX_DP_DAYS) issues.push({ path: 'query.to', message: `the range is at most ${MAX_DP_DAYS} days` });
  }
  const by = q.by ?? [];
  if (new Set(by).size !== by.length) issues.push({ path: 'query.by', message: 'a dimension is listed twice' });
  const purposes = new Set(domains.purposes);
  const roles = new Set(domains.roles);
  const checks: Record<DpDimension, (x: string) => boolean> = {
    type: (x) => Object.hasOwn(EVENT_REGISTRY, x),
    purpose: (x) => purposes.has(x),
    role: (x) => roles.has(x),
    model: (x) => HEX64_RE.test(x),
    outcome: (x) => (DP_OUTCOMES as readonly string[]).includes(x),
  };
  const where: Partial<Record<DpDimension, string[]>> = {};
  for (const dim of DP_DIMENSIONS) {
    const list = q.where?.[dim];
    if (list === undefined) continue;
    if (list.length === 0) issues.push({ path: `query.where.${dim}`, message: 'an empty filter selects nothing' });
    for (const [i, x] of list.entries()) if (!checks[dim](x)) issues.push({ path: `query.where.${dim}.${i}`, message: `unknown ${dim}` });
    where[dim] = [...new Set(list)].sort();
  }
  if (by.includes('model') && where.model === undefined)
    issues.push({ path: 'query.where.model', message: 'a breakdown by model lists the models (their digests): the bins must not depend on the data' });
  const unit = q.unit;
  const clip = q.clip ?? 1;
  if (unit === 'event' && clip !== 1) issues.push({ path: 'query.clip', message: 'an event contributes one count: clip is 1 for unit event' });
  if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', `${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  const query: DpQuery = Object.freeze({ unit, clip, by: Object.freeze([...by]), per: q.per ?? 'all', from: q.from, to: q.to, where: Object.freeze(where) });
  const n = binCount(query, domains);
  if (n > MAX_DP_BINS)
    throw new ValidationError('VALIDATION_FAILED', `the query has ${n} bins (at most ${MAX_DP_BINS}): narrow it with filters or a coarser interval`, {
      issues: [{ path: 'query', message: 'too many bins' }],
    });
  return query;
}

/** The canonical JSON value of a query (what its hash is taken over). */
export function dpQueryJson(q: DpQuery): Record<string, unknown> {
  return { unit: q.unit, clip: q.clip, by: [...q.by], per: q.per, from: q.from, to: q.to, where: Object.fromEntries(Object.entries(q.where).map(([k, l]) => [k, [...l]])) };
}

// The values a dimension's bins take: the filter's, else the whole vocabulary.
function domainOf(q: DpQuery, dim: DpDimension, domains: DpDomains): readonly string[] {
  const w = q.where[dim];
  if (w) return w;
  if (dim === 'type') return Object.keys(EVENT_REGISTRY).sort();
  if (dim === 'purpose') return [...domains.purposes].sort();
  if (dim === 'role') return [...domains.roles].sort();
  if (dim === 'outcome') return DP_OUTCOMES;
  return [];
}

// The starts of the time bins (epoch ms), and the end of the range.
function periods(q: DpQuery): { starts: number[]; endMs: number } {
  const from = dateMs(q.from)!;
  const endMs = dateMs(q.to)!;
  if (q.per === 'all') return { starts: [from], endMs };
  const step = q.per === 'day' ? DAY_MS : 7 * DAY_MS;
  const starts: number[] = [];
  for (let t = from; t < endMs; t += step) starts.push(t);
  return { starts, endMs };
}

function binCount(q: DpQuery, domains: DpDomains): number {
  let n = periods(q).starts.length;
  for (const dim of q.by) n *= domainOf(q, dim, domains).length;
  return n;
}

/** One bin: its period (the start date) and its value in each dimension of the breakdown. */
export type DpBin = Readonly<{ period: string } & Partial<Record<DpDimension, string>>>;

/** The bins of a query, in a fixed order: by period, then by each dimension in the order of `by`. */
export function dpBins(q: DpQuery, domains: DpDomains): DpBin[] {
  let bins: Record<string, string>[] = periods(q).starts.map((t) => ({ period: new Date(t).toISOString().slice(0, 10) }));
  for (const dim of q.by) {
    const values = domainOf(q, dim, domains);
    bins = bins.flatMap((b) => values.map((x) => ({ ...b, [dim]: x })));
  }
  return bins as DpBin[];
}

/** The value of a dimension for one event, or undefined when the event has none. */
export function dimensionOf(e: LoggedEvent, dim: DpDimension): string | undefined {
  switch (dim) {
    case 'type':
      return e.type;
    case 'purpose':
      return stringField(e.payload, 'purpose');
    case 'role':
      return stringField(e.payload, 'role');
    case 'outcome':
      return Object.hasOwn(OUTCOME_OF, e.type) ? OUTCOME_OF[e.type] : undefined;
    case 'model':
      if (e.type === EVENT_TYPE.inferenceExecuted) return stringField(recordField(e.payload, 'documents'), 'model');
      if (e.type === EVENT_TYPE.consentDenied) return stringField(e.payload, 'model');
      if (e.type === EVENT_TYPE.trainingExecuted) return stringField(recordField(e.payload, 'documents'), 'modelAfter');
      return undefined;
  }
}

/**
 * The exact, clipped counts of one query, fed the log's events in index order (pure: the service
 * reads the log). See the module comment for the units and the clipping.
 */
export class DpAggregator {
  readonly #q: DpQuery;
  readonly #bins: number;
  readonly #starts: number[];
  readonly #fromMs: number;
  readonly #endMs: number;
  readonly #step: number;
  /** Per dimension of the breakdown: value → position. */
  readonly #index: ReadonlyMap<string, number>[];
  readonly #where: [DpDimension, ReadonlySet<string>][];
  readonly #counts: number[];
  /** Events counted per unit (for clipping). */
  readonly #used = new Map<string, number>();
  /** policyId → subject commitment (from CONSENT_CREATED). */
  readonly #subjects = new Map<string, string>();

  constructor(q: DpQuery, domains: DpDomains) {
    this.#q = q;
    const p = periods(q);
    this.#starts = p.starts;
    this.#fromMs = p.starts[0]!;
    this.#endMs = p.endMs;
    this.#step = q.per === 'day' ? DAY_MS : q.per === 'week' ? 7 * DAY_MS : p.endMs - p.starts[0]!;
    this.#index = q.by.map((dim) => new Map(domainOf(q, dim, domains).map((x, i) => [x, i])));
    this.#where = Object.entries(q.where).map(([dim, l]) => [dim as DpDimension, new Set(l)]);
    this.#bins = binCount(q, domains);
    this.#counts = new Array<number>(this.#bins).fill(0);
  }

  /** The unit an event belongs to, or undefined when it belongs to none (not counted). */
  #unitOf(index: number, e: LoggedEvent): string | undefined {
    if (this.#q.unit === 'event') return `e${index}`;
    if (this.#q.unit === 'actor') return stringField(e.payload, 'actor');
    const policyId = stringField(e.payload, 'policyId');
    if (policyId !== undefined) return this.#subjects.get(policyId);
    const consents = e.payload['consents'];
    if (!Array.isArray(consents) || consents.length === 0) return undefined;
    const subjects = new Set(consents.map((c) => (isRecord(c) ? this.#subjects.get(String(c['policyId'])) : undefined)));
    return subjects.size === 1 ? [...subjects][0] : undefined;
  }

  /** Feeds the event at `index` (every event, in index order: consent events map policies to patients). */
  add(index: number, e: LoggedEvent): void {
    if (e.type === EVENT_TYPE.consentCreated) {
      const policyId = stringField(e.payload, 'policyId');
      const subject = stringField(e.payload, 'subject');
      if (policyId !== undefined && subject !== undefined && !this.#subjects.has(policyId)) this.#subjects.set(policyId, subject);
    }
    const t = Date.parse(e.time);
    if (!(t >= this.#fromMs && t < this.#endMs)) return;
    for (const [dim, allowed] of this.#where) {
      const x = dimensionOf(e, dim);
      if (x === undefined || !allowed.has(x)) return;
    }
    let bin = Math.min(Math.floor((t - this.#fromMs) / this.#step), this.#starts.length - 1);
    for (let i = 0; i < this.#q.by.length; i++) {
      const x = dimensionOf(e, this.#q.by[i]!);
      const at = x === undefined ? undefined : this.#index[i]!.get(x);
      if (at === undefined) return;
      bin = bin * this.#index[i]!.size + at;
    }
    const unit = this.#unitOf(index, e);
    if (unit === undefined) return;
    const used = this.#used.get(unit) ?? 0;
    if (used >= this.#q.clip) return;
    this.#used.set(unit, used + 1);
    this.#counts[bin]!++;
  }

  /** The clipped counts, one per bin of {@link dpBins}. */
  counts(): number[] {
    return [...this.#counts];
  }
}
