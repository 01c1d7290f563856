/**
 * Statistics released with differential privacy (issue 15; docs/privacy.md).
 *
 * A release computes the exact, clipped counts of a query over the log (core/dp/query.ts), adds
 * noise from an exact discrete mechanism driven by a cryptographic RNG (core/dp/sample.ts), and
 * appends one DP_RELEASE event: consumer, query hash, unit, mechanism, ε, δ, actor and role, and the
 * hash of the release document (query, noise parameters, the released values), stored off-ledger
 * in the same transaction.
 *
 * Consumers are declared (dp.json; without one, the one consumer `public`): ids are lowercased and
 * must be declared, so only operator-chosen ids reach the log (DP_CONSUMER_UNKNOWN otherwise). Each
 * release must fit its consumer's budget and the total budget of all consumers for the period (the
 * releases are public, so the total is the real bound).
 *
 * The budget is the log's: the ε and δ a consumer has spent in a period is the sum over the
 * DP_RELEASE events of that consumer in that period (and the total's, over all of them), read from the log's verified scan (only
 * entries a signed checkpoint covers). No table holds it, so neither a restart nor an edited row
 * resets it. The check is made at sequencing time (like a consent decision), against the log and
 * the batch being sequenced, so two concurrent releases cannot both squeeze under the budget.
 *
 * Asking again for the same release (consumer, query, mechanism, ε, δ) in the same period returns
 * the stored document, identically, and spends nothing: noise is drawn once per release, so it
 * cannot be averaged away by asking many times.
 * @module
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { ConflictError, ConsentError, ValidationError } from '../../core/errors.js';
import { canonicalJsonBytes } from '../../core/canonical-json.js';
import { sha256, toHex } from '../../core/hash.js';
import { formatEntryTime } from '../../core/entry.js';
import { DP_EVENT, parseLoggedEvent, recordField, stringField, type LoggedEvent } from '../../core/events.js';
import { OPERATOR_ROLE } from '../../core/vocabulary.js';
import { parseWith } from '../../core/schema/parse.js';
import {
  DEFAULT_CONSUMER,
  DEFAULT_DP_CONFIG,
  DELTA_SCALE,
  EPSILON_SCALE,
  budgetOf,
  composeBasic,
  fromUnits,
  normalizeConsumer,
  parsePrivacyParams,
  periodOf,
  toUnits,
  withinBudget,
  type DpBudgetConfig,
  type DpMechanism,
  type PeriodSpan,
  type PrivacyUnits,
} from '../../core/dp/accountant.js';
import { DpAggregator, dpBins, dpQueryJson, parseDpQuery, parseDpQuerySpec, type DpQuery } from '../../core/dp/query.js';
import { addNoise, dpReleaseDocument, type DpReleaseDocument } from '../../core/dp/release.js';
import { randomSourceFrom, type RandomBytes, type RandomSource } from '../../core/dp/random.js';
import type { AppendResult, Log } from '../../log/log.js';
import { ACTOR, DP_RELEASE_REQUEST, type DpReleaseInput } from '../requests.js';
import { doc } from './documents.js';
import type { Actor, GovernanceState } from './state.js';

export type { DpBudgetConfig } from '../../core/dp/accountant.js';

/** The off-ledger document kind of a release. */
export const DP_RELEASE_DOC = 'dp-release';

/** Options of the differential-privacy releases ({@link GovernanceOptions.dp}). */
export interface DpOptions {
  /** Consumers, budgets and period (default {@link DEFAULT_DP_CONFIG}: the one consumer `public`, ε = 1, δ = 10⁻⁵ a month, which is also the total). */
  readonly config?: DpBudgetConfig;
  /** The source of the noise's randomness (default node:crypto randomBytes; tests seed one). */
  readonly randomBytes?: RandomBytes;
}

const MARK = `"type":"${DP_EVENT.release}"`;

/** One DP_RELEASE event as the ledger keeps it. */
export interface DpReleaseRecord {
  readonly index: number;
  readonly time: string;
  readonly timeMs: number;
  readonly consumer: string;
  readonly queryHash: string;
  readonly unit: string;
  readonly mechanism: DpMechanism;
  readonly epsilon: number;
  readonly delta: number;
  readonly cost: PrivacyUnits;
  readonly actor: string;
  readonly role: string;
  /** The hash of the release document. */
  readonly document: string;
}

/** The record of a DP_RELEASE event (pure; undefined for a malformed one, the verifier's finding). */
export function dpReleaseRecordOf(index: number, e: LoggedEvent): DpReleaseRecord | undefined {
  const p = e.payload;
  const [consumer, queryHash, unit, mechanism, actor, role] = ['consumer', 'queryHash', 'unit', 'mechanism', 'actor', 'role'].map((k) => stringField(p, k));
  const document = stringField(recordField(p, 'documents'), 'release');
  const timeMs = Date.parse(e.time);
  const epsilon = p['epsilon'];
  const delta = p['delta'];
  if (!consumer || !queryHash || !unit || !actor || !role || !document || typeof epsilon !== 'number' || typeof delta !== 'number' || !Number.isFinite(timeMs)) return undefined;
  if (mechanism !== 'discrete_laplace' && mechanism !== 'discrete_gaussian') return undefined;
  const eu = toUnits(epsilon, EPSILON_SCALE);
  const du = toUnits(delta, DELTA_SCALE);
  if (eu === undefined || du === undefined) return undefined;
  return { index, time: e.time, timeMs, consumer, queryHash, unit, mechanism, epsilon, delta, cost: { epsilon: eu, delta: du }, actor, role, document };
}

// What makes two releases "the same": asked again in the same period, the stored one is returned.
const releaseKey = (r: { consumer: string; queryHash: string; mechanism: string; cost: PrivacyUnits }): string =>
  `${normalizeConsumer(r.consumer)}\u0000${r.queryHash}\u0000${r.mechanism}\u0000${r.cost.epsilon}\u0000${r.cost.delta}`;

/** The releases of one log, derived from its DP_RELEASE events (verified scan), and the batch being sequenced. */
export class DpLedger {
  readonly #log: Log;
  readonly #records = new Map<number, DpReleaseRecord>();
  #staged: DpReleaseRecord[] = [];
  #stagedBatch = -1;

  constructor(log: Log) {
    this.#log = log;
    log.scan.subscribe({ matches: (bytes) => bytes.indexOf(MARK) >= 0, apply: (index, bytes) => this.apply(index, parseLoggedEvent(bytes)) });
  }

  /** Applies a DP_RELEASE entry (idempotent: the scan may replay what this process committed). */
  apply(index: number, e: LoggedEvent | undefined): void {
    if (e?.type !== DP_EVENT.release || this.#records.has(index)) return;
    const r = dpReleaseRecordOf(index, e);
    if (r) this.#records.set(index, r);
  }

  /** Reads what the log gained since the last look (releases by other processes). */
  sync(): Promise<void> {
    return this.#log.scan.sync();
  }

  // Releases staged by the batch `batchId` (dropped when another batch starts: a retried batch).
  #stagedOf(batchId: number | undefined): DpReleaseRecord[] {
    if (batchId === undefined) return [];
    if (batchId !== this.#stagedBatch) {
      this.#staged = [];
      this.#stagedBatch = batchId;
    }
    return this.#staged;
  }

  stage(r: DpReleaseRecord, batchId: number): void {
    this.#stagedOf(batchId).push(r);
  }

  // The releases of the period, of one consumer (matched case-insensitively) or, undefined, of all.
  #inPeriod(consumer: string | undefined, span: PeriodSpan, batchId?: number): DpReleaseRecord[] {
    const all = [...this.#records.values(), ...this.#stagedOf(batchId)];
    const c = consumer === undefined ? undefined : normalizeConsumer(consumer);
    return all.filter((r) => (c === undefined || normalizeConsumer(r.consumer) === c) && r.timeMs >= span.startMs && r.timeMs < span.endMs);
  }

  /**
   * What `consumer` has spent in the period, or all consumers together when it is undefined (basic
   * composition: the sums of ε and of δ).
   */
  spent(consumer: string | undefined, span: PeriodSpan, batchId?: number): PrivacyUnits {
    return composeBasic(this.#inPeriod(consumer, span, batchId).map((r) => r.cost));
  }

  /** The release with the same key in the period, if any (committed, or staged by the batch `batchId`). */
  find(key: string, consumer: string, span: PeriodSpan, batchId?: number): DpReleaseRecord | undefined {
    return this.#inPeriod(consumer, span, batchId).find((r) => releaseKey(r) === key);
  }

  /** Every release, oldest first. */
  all(): DpReleaseRecord[] {
    return [...this.#records.values()].sort((a, b) => a.index - b.index);
  }
}

/** The state the releases need beside the overlay's: the ledger, the configuration, the noise source. */
export class DpState {
  readonly ledger: DpLedger;
  readonly config: DpBudgetConfig;
  readonly rng: RandomSource;

  constructor(log: Log, o: DpOptions = {}) {
    this.ledger = new DpLedger(log);
    this.config = o.config ?? DEFAULT_DP_CONFIG;
    this.rng = randomSourceFrom(o.randomBytes ?? nodeRandomBytes);
  }
}

/** Budget, spent and remaining, of ε or of δ. */
export interface DpAmount {
  readonly budget: number;
  readonly spent: number;
  readonly remaining: number;
}

/** A consumer's budget in one period, and the total budget of all consumers together. */
export interface DpBudgetStatus {
  readonly consumer: string;
  readonly period: string;
  readonly epsilon: DpAmount;
  readonly delta: DpAmount;
  /** All consumers together (the releases are public: this is the bound on what they reveal). */
  readonly total: { readonly epsilon: DpAmount; readonly delta: DpAmount };
}

function amounts(b: PrivacyUnits, spent: PrivacyUnits): { epsilon: DpAmount; delta: DpAmount } {
  const left = (x: bigint, y: bigint) => (x > y ? x - y : 0n);
  return {
    epsilon: { budget: fromUnits(b.epsilon, EPSILON_SCALE), spent: fromUnits(spent.epsilon, EPSILON_SCALE), remaining: fromUnits(left(b.epsilon, spent.epsilon), EPSILON_SCALE) },
    delta: { budget: fromUnits(b.delta, DELTA_SCALE), spent: fromUnits(spent.delta, DELTA_SCALE), remaining: fromUnits(left(b.delta, spent.delta), DELTA_SCALE) },
  };
}

/**
 * The declared consumer `id` (any case) as it is logged (lowercase), and its budget.
 * @throws {ConsentError} DP_CONSUMER_UNKNOWN: dp.json does not declare it
 */
function declaredConsumer(config: DpBudgetConfig, id: string): { consumer: string; budget: PrivacyUnits } {
  const consumer = normalizeConsumer(id);
  const budget = budgetOf(config, consumer);
  if (!budget) {
    const known = [...config.consumers.keys()].sort();
    throw new ConsentError('DP_CONSUMER_UNKNOWN', `${consumer} is not a consumer declared in dp.json (declared: ${known.length > 0 ? known.join(', ') : 'none'})`, {
      details: { consumer, declared: known },
    });
  }
  return { consumer, budget };
}

function budgetStatus(s: GovernanceState, consumer: string, span: PeriodSpan, batchId?: number): DpBudgetStatus {
  const own = amounts(budgetOf(s.dp.config, consumer) ?? { epsilon: 0n, delta: 0n }, s.dp.ledger.spent(consumer, span, batchId));
  return { consumer, period: span.id, ...own, total: amounts(s.dp.config.total, s.dp.ledger.spent(undefined, span, batchId)) };
}

/** A release as it is returned and listed: the event's facts and the document's values. */
export interface DpRelease {
  readonly index: number;
  readonly time: string;
  readonly consumer: string;
  readonly unit: string;
  readonly mechanism: DpMechanism;
  readonly epsilon: number;
  readonly delta: number;
  readonly queryHash: string;
  readonly documentHash: string;
  /** The document (query, noise parameters, period, values); null when it is missing from the store. */
  readonly document: DpReleaseDocument | null;
}

async function releaseOf(s: GovernanceState, r: DpReleaseRecord): Promise<DpRelease> {
  const stored = await s.log.sidecar.getDocument(r.document);
  let document: DpReleaseDocument | null = null;
  // The stored bytes must hash to the hash on the log: an edited document is not served.
  if (stored && toHex(sha256(stored.bytes)) === r.document) document = JSON.parse(stored.bytes.toString('utf8')) as DpReleaseDocument;
  return {
    index: r.index,
    time: r.time,
    consumer: r.consumer,
    unit: r.unit,
    mechanism: r.mechanism,
    epsilon: r.epsilon,
    delta: r.delta,
    queryHash: r.queryHash,
    documentHash: r.document,
    document,
  };
}

/** What {@link releaseStatistics} returns. */
export interface DpReleaseResult {
  readonly release: DpRelease;
  /** True when the same release was already made in this period: returned as stored, nothing spent. */
  readonly reused: boolean;
  /** The consumer's budget after this release. */
  readonly budget: DpBudgetStatus;
  /** The DP_RELEASE event (a new release only). */
  readonly event?: AppendResult;
}

class SameReleaseStaged extends Error {}

const MAX_RETRIES = 8;

/** The query of a request: its JSON form, or the compact text form. */
export function parseReleaseQuery(s: GovernanceState, query: unknown): DpQuery {
  const domains = { purposes: s.vocab.purposes, roles: s.vocab.roles };
  return typeof query === 'string' ? parseDpQuerySpec(query, domains) : parseDpQuery(query, domains);
}

/**
 * Releases the answer to a query with differential privacy, or returns the same release made
 * earlier in the period (see the module comment). The actor's role must hold `dp:release` (the
 * local operator's role, `operator`, may too: the CLI run by whoever holds the data directory).
 * @throws {ValidationError} VALIDATION_FAILED: a malformed request or query, an unknown code, ε or δ
 *   out of range, δ > 0 with discrete_laplace or δ = 0 with discrete_gaussian, a role without
 *   dp:release (nothing written)
 * @throws {ConsentError} DP_CONSUMER_UNKNOWN: the consumer (default `public`) is not declared in
 *   dp.json (nothing written)
 * @throws {ConsentError} DP_BUDGET_EXHAUSTED: the release would take the consumer past its budget,
 *   or all consumers together past the total budget, for the period (nothing written)
 */
export async function releaseStatistics(s: GovernanceState, input: DpReleaseInput, actor: Actor): Promise<DpReleaseResult> {
  const who = parseWith(ACTOR, actor, 'actor', 'actor.');
  const req = parseWith(DP_RELEASE_REQUEST, input, 'release request');
  s.checkCodes({ role: who.role });
  if (who.role !== OPERATOR_ROLE && !s.may(who.role, 'dp:release')) {
    throw new ValidationError('VALIDATION_FAILED', `role ${who.role} may not release statistics (it lacks dp:release)`, { issues: [{ path: 'actor.role', message: 'lacks dp:release' }] });
  }
  const cost = parsePrivacyParams(req.epsilon, req.delta ?? 0);
  const mechanism: DpMechanism = req.mechanism ?? (cost.delta > 0n ? 'discrete_gaussian' : 'discrete_laplace');
  if (mechanism === 'discrete_laplace' && cost.delta > 0n) {
    throw new ValidationError('VALIDATION_FAILED', 'discrete_laplace is pure ε-DP: it spends no delta (omit delta, or choose discrete_gaussian)', {
      issues: [{ path: 'delta', message: 'must be 0 for discrete_laplace' }],
    });
  }
  if (mechanism === 'discrete_gaussian' && cost.delta === 0n) {
    throw new ValidationError('VALIDATION_FAILED', 'discrete_gaussian needs delta > 0', { issues: [{ path: 'delta', message: 'must be > 0 for discrete_gaussian' }] });
  }
  const query = parseReleaseQuery(s, req.query);
  const queryJson = dpQueryJson(query);
  const queryHash = toHex(sha256(canonicalJsonBytes(queryJson)));
  const { consumer, budget } = declaredConsumer(s.dp.config, req.consumer ?? DEFAULT_CONSUMER);
  const key = releaseKey({ consumer, queryHash, mechanism, cost });
  // Refuses the release if it does not fit the consumer's budget or the total (all consumers) of the period.
  const checkBudgets = (span: PeriodSpan, batchId?: number) => {
    const which = !withinBudget(s.dp.ledger.spent(consumer, span, batchId), cost, budget)
      ? 'consumer'
      : !withinBudget(s.dp.ledger.spent(undefined, span, batchId), cost, s.dp.config.total)
        ? 'total'
        : undefined;
    if (which === undefined) return;
    throw new ConsentError(
      'DP_BUDGET_EXHAUSTED',
      which === 'consumer' ? `the release would exceed the privacy budget of ${consumer} for ${span.id}` : `the release would exceed the total privacy budget of all consumers for ${span.id}`,
      { details: { exhausted: which, ...budgetStatus(s, consumer, span, batchId), requested: { epsilon: fromUnits(cost.epsilon, EPSILON_SCALE), delta: fromUnits(cost.delta, DELTA_SCALE) } } },
    );
  };
  for (let attempt = 0; ; attempt++) {
    await s.dp.ledger.sync();
    const span = periodOf(s.dp.config.period, s.clock.now());
    const stored = s.dp.ledger.find(key, consumer, span);
    if (stored) return { release: await releaseOf(s, stored), reused: true, budget: budgetStatus(s, consumer, span) };
    // Refused before the log is read (checked again at sequencing).
    checkBudgets(span);
    // The exact counts over the log as this writer has it, then the noise (drawn once, here).
    const treeSize = s.log.size;
    const aggregator = new DpAggregator(query, { purposes: s.vocab.purposes, roles: s.vocab.roles });
    for await (const page of s.log.reader.entryPages(0, treeSize)) {
      for (const e of page) {
        const parsed = parseLoggedEvent(e.bytes);
        if (parsed) aggregator.add(e.index, parsed);
      }
    }
    const { values, noise } = addNoise(aggregator.counts(), mechanism, cost, query.clip, s.dp.rng);
    const bins = dpBins(query, { purposes: s.vocab.purposes, roles: s.vocab.roles });
    let made: { record: DpReleaseRecord; document: DpReleaseDocument; span: PeriodSpan } | undefined;
    try {
      const event = await s.log.appendDecided((ctx) => {
        const at = periodOf(s.dp.config.period, ctx.timeMs);
        if (s.dp.ledger.find(key, consumer, at, ctx.batchId)) throw new SameReleaseStaged();
        checkBudgets(at, ctx.batchId);
        const document = dpReleaseDocument({ consumer, query: queryJson, queryHash, cost, noise, budgetPeriod: at.id, treeSize, bins, values });
        const built = doc(DP_RELEASE_DOC, document);
        const payload = s.checked(DP_EVENT.release, {
          consumer,
          queryHash,
          unit: query.unit,
          mechanism,
          epsilon: fromUnits(cost.epsilon, EPSILON_SCALE),
          delta: fromUnits(cost.delta, DELTA_SCALE),
          actor: who.id,
          role: who.role,
          documents: { release: built.hash },
        });
        const time = formatEntryTime(ctx.timeMs);
        const record = dpReleaseRecordOf(ctx.index, { type: DP_EVENT.release, time, payload })!;
        s.dp.ledger.stage(record, ctx.batchId);
        made = { record, document, span: at };
        return {
          type: DP_EVENT.release,
          payload,
          sidecar: { documents: [built] },
          onCommitted: () => s.dp.ledger.apply(ctx.index, { type: DP_EVENT.release, time, payload }),
        };
      });
      const m = made!;
      const release: DpRelease = {
        index: m.record.index,
        time: m.record.time,
        consumer,
        unit: query.unit,
        mechanism,
        epsilon: m.record.epsilon,
        delta: m.record.delta,
        queryHash,
        documentHash: m.record.document,
        document: m.document,
      };
      return { release, reused: false, budget: budgetStatus(s, consumer, m.span), event };
    } catch (err) {
      // The same release is in the batch being committed: once it is, it is returned as stored.
      if (!(err instanceof SameReleaseStaged)) throw err;
      if (attempt >= MAX_RETRIES) throw new ConflictError('LOG_APPEND_CONFLICT', 'the same release is being made concurrently; retry');
    }
  }
}

/** Which releases {@link listReleases} returns. */
export interface DpReleaseFilter {
  readonly consumer?: string;
}

/**
 * Every release on the log (oldest first), with its document; and, for a consumer (any case), its
 * budget now and the total budget's.
 * @throws {ConsentError} DP_CONSUMER_UNKNOWN: the consumer is not declared in dp.json
 */
export async function listReleases(s: GovernanceState, filter: DpReleaseFilter = {}): Promise<{ releases: DpRelease[]; budget?: DpBudgetStatus }> {
  const consumer = filter.consumer === undefined ? undefined : declaredConsumer(s.dp.config, filter.consumer).consumer;
  await s.dp.ledger.sync();
  const records = s.dp.ledger.all().filter((r) => consumer === undefined || normalizeConsumer(r.consumer) === consumer);
  const releases: DpRelease[] = [];
  for (const r of records) releases.push(await releaseOf(s, r));
  if (consumer === undefined) return { releases };
  const span = periodOf(s.dp.config.period, s.clock.now());
  return { releases, budget: budgetStatus(s, consumer, span) };
}
