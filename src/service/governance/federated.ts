/**
 * Federated learning rounds (issue 14), derived from the log and decided at sequencing time.
 *
 * - A site exists because an FL_SITE_REGISTERED event names it with its Ed25519 public key, and is
 *   retired by an FL_SITE_RETIRED event. Site ids are never reused (a retired site stays retired), so
 *   a round on the log always verifies against the one key its sites ever had.
 * - A round is decided when its event is sequenced, against the sites and the line's last round as
 *   the log has them then (committed entries and the batch being sequenced), like a consent decision:
 *   it becomes FL_ROUND, or FL_ROUND_REFUSED with its reason and nothing else of it. A refusal is an
 *   outcome with an event, then an error whose code is the reason ({@link FlRoundRefusedError}).
 * - Malformed input (a bad round file, a role without the permission) is refused before anything is
 *   sequenced and writes nothing.
 * - The state here ({@link FederatedLedger}) is rebuilt from the log's verified scan: only entries a
 *   signed checkpoint covers (log/verified-scan.ts); nothing else holds it.
 *
 * The final round of a line names the model version the line ends in. {@link registerFlModelVersion}
 * is the single place where that version enters the model registry (the hook: see its comment).
 * @module
 */
import { ConflictError, CustosError, NotFoundError, ValidationError, type ErrorCode } from '../../core/errors.js';
import { formatEntryTime } from '../../core/entry.js';
import { FL_EVENT, isRecord, parseLoggedEvent, stringField, type LoggedEvent } from '../../core/events.js';
import {
  FL_ID,
  FL_REFUSAL_REASONS,
  FL_ROUND,
  FL_SITE,
  accountRound,
  deltaAgrees,
  epsilonAgrees,
  verifyFlUpdateSignature,
  type FlAggregation,
  type FlRefusalReason,
  type FlRoundInput,
  type FlSiteInput,
} from '../../core/federated.js';
import { fromBase64Strict, sha256, toBase64, toHex } from '../../core/hash.js';
import { parseVerifierKey, splitPlus } from '../../core/note.js';
import { parseWith } from '../../core/schema/parse.js';
import type { Permission } from '../../core/vocabulary.js';
import type { AppendResult, Log } from '../../log/log.js';
import { ACTOR } from '../requests.js';
import { DOC, doc } from './documents.js';
import type { Actor, GovernanceState } from './state.js';
import { registerFlVersion, type ModelRegistered } from './models.js';

export { FL_ROUND, FL_SITE, type FlRoundInput, type FlSiteInput };

/** A site as the log has it. */
export interface FlSite {
  readonly site: string;
  /** Its Ed25519 public key, 32 bytes in base64. */
  readonly publicKey: string;
  /** SHA-256 of the 32 key bytes, hex. */
  readonly keyHash: string;
  readonly registeredIndex: number;
  readonly registeredAt: string;
  readonly retiredIndex: number | null;
  readonly retiredAt: string | null;
}

/** The DP figures of a recorded round. */
export interface FlRoundDp {
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly delta: number;
  readonly rho: number;
  readonly rhoTotal: number;
  readonly epsilon: number;
}

/** The model version a line ends in (its weights digest is the final round's global model). */
export interface FlModelVersion {
  readonly model: string;
  readonly version: string;
  readonly weights: string;
}

/** A recorded round (an FL_ROUND entry). */
export interface FlRound {
  readonly index: number;
  readonly time: string;
  readonly line: string;
  readonly round: number;
  readonly aggregation: string;
  readonly globalModel: string;
  readonly sites: readonly { readonly site: string; readonly update: string; readonly signature: string }[];
  readonly dp?: FlRoundDp;
  readonly final: boolean;
  readonly version?: FlModelVersion;
  /** Hash of the model spec document of a final round (stored off-ledger). */
  readonly modelSpec?: string;
  readonly actor: string;
  readonly role: string;
}

/** A refused round (an FL_ROUND_REFUSED entry). */
export interface FlRefusal {
  readonly index: number;
  readonly time: string;
  readonly line: string;
  readonly round: number;
  readonly reason: FlRefusalReason;
  readonly site?: string;
  readonly actor: string;
  readonly role: string;
}

/** A model line: its rounds and refusals in log order, and where its accountant stands. */
export interface FlLine {
  readonly line: string;
  readonly rounds: readonly FlRound[];
  readonly refusals: readonly FlRefusal[];
  /** The last recorded round number (0 before the first). */
  readonly lastRound: number;
  /** Whether the line's rounds are differentially private (undefined before the first round). */
  readonly dp: boolean | undefined;
  /** The accountant's running ρ over the line's rounds (0 without DP). */
  readonly rhoTotal: number;
  /** The running ε at the line's δ (undefined without DP). */
  readonly epsilon: number | undefined;
  /** Set by the final round: the version the line ended in. */
  readonly version: FlModelVersion | undefined;
}

/** A model line in brief: what {@link listLines} lists. */
export interface FlLineSummary {
  readonly line: string;
  /** Recorded rounds (FL_ROUND entries). */
  readonly rounds: number;
  /** Refused rounds (FL_ROUND_REFUSED entries). */
  readonly refusals: number;
  /** The last recorded round number (0 before the first). */
  readonly lastRound: number;
  /** Whether a final round ended the line. */
  readonly closed: boolean;
}

/** Where a line stands for the next decision. */
interface Tip {
  readonly lastRound: number;
  readonly dp: boolean | undefined;
  readonly rhoTotal: number;
  /** The line's δ: that of its first DP round (undefined before it); every later round states it. */
  readonly delta: number | undefined;
  readonly closed: boolean;
}

const MARK = '"type":"FL_';
const num = (p: Readonly<Record<string, unknown>>, k: string): number | undefined => (typeof p[k] === 'number' && Number.isFinite(p[k]) ? (p[k] as number) : undefined);

/** The sites and lines of one log, derived from its FL events (idempotent: the scan replays what this process committed). */
export class FederatedLedger {
  readonly #log: Log;
  readonly #sites = new Map<string, FlSite>();
  readonly #lines = new Map<string, { rounds: FlRound[]; refusals: FlRefusal[]; tip: Tip }>();
  readonly #applied = new Set<number>();
  // What the batch being sequenced already did (dropped when that batch is retried).
  #stagedBatch = -1;
  readonly #stagedSites = new Map<string, FlSite>();
  readonly #stagedTips = new Map<string, Tip>();

  constructor(log: Log) {
    this.#log = log;
    log.scan.subscribe({ matches: (bytes) => bytes.indexOf(MARK) >= 0, apply: (index, bytes) => this.apply(index, parseLoggedEvent(bytes)) });
  }

  /** Reads what the log gained since the last look. */
  sync(): Promise<void> {
    return this.#log.scan.sync();
  }

  /** Applies one FL entry (pure on this ledger; malformed entries are the log verifier's finding). */
  apply(index: number, e: LoggedEvent | undefined): void {
    if (!e || this.#applied.has(index)) return;
    const p = e.payload;
    if (e.type === FL_EVENT.siteRegistered) {
      const [site, publicKey, keyHash] = ['site', 'publicKey', 'keyHash'].map((k) => stringField(p, k));
      if (!site || !publicKey || !keyHash || this.#sites.has(site)) return;
      this.#sites.set(site, { site, publicKey, keyHash, registeredIndex: index, registeredAt: e.time, retiredIndex: null, retiredAt: null });
    } else if (e.type === FL_EVENT.siteRetired) {
      const s = this.#sites.get(stringField(p, 'site') ?? '');
      if (!s || s.retiredIndex !== null) return;
      this.#sites.set(s.site, { ...s, retiredIndex: index, retiredAt: e.time });
    } else if (e.type === FL_EVENT.round) {
      const r = roundOf(index, e);
      if (!r) return;
      const l = this.#line(r.line);
      l.rounds.push(r);
      l.tip = { lastRound: Math.max(l.tip.lastRound, r.round), dp: r.dp !== undefined, rhoTotal: r.dp?.rhoTotal ?? 0, delta: l.tip.delta ?? r.dp?.delta, closed: l.tip.closed || r.final };
    } else if (e.type === FL_EVENT.roundRefused) {
      const [line, reason, site, actor, role] = ['line', 'reason', 'site', 'actor', 'role'].map((k) => stringField(p, k));
      const round = num(p, 'round');
      if (!line || !reason || !actor || !role || round === undefined || !(FL_REFUSAL_REASONS as readonly string[]).includes(reason)) return;
      this.#line(line).refusals.push({ index, time: e.time, line, round, reason: reason as FlRefusalReason, ...(site ? { site } : {}), actor, role });
    } else return;
    this.#applied.add(index);
  }

  #line(line: string): { rounds: FlRound[]; refusals: FlRefusal[]; tip: Tip } {
    let l = this.#lines.get(line);
    if (!l) {
      l = { rounds: [], refusals: [], tip: { lastRound: 0, dp: undefined, rhoTotal: 0, delta: undefined, closed: false } };
      this.#lines.set(line, l);
    }
    return l;
  }

  #fresh(batchId: number): void {
    if (batchId !== this.#stagedBatch) {
      this.#stagedSites.clear();
      this.#stagedTips.clear();
      this.#stagedBatch = batchId;
    }
  }

  /** The site as the log has it, with what the batch `batchId` already did. */
  siteAt(site: string, batchId: number): FlSite | undefined {
    this.#fresh(batchId);
    return this.#stagedSites.get(site) ?? this.#sites.get(site);
  }

  stageSite(s: FlSite, batchId: number): void {
    this.#fresh(batchId);
    this.#stagedSites.set(s.site, s);
  }

  /** Where `line` stands, with what the batch `batchId` already did. */
  tipAt(line: string, batchId: number): Tip {
    this.#fresh(batchId);
    return this.#stagedTips.get(line) ?? this.#lines.get(line)?.tip ?? { lastRound: 0, dp: undefined, rhoTotal: 0, delta: undefined, closed: false };
  }

  stageTip(line: string, tip: Tip, batchId: number): void {
    this.#fresh(batchId);
    this.#stagedTips.set(line, tip);
  }

  /** Every site, in registration order. */
  sites(): FlSite[] {
    return [...this.#sites.values()].sort((a, b) => a.registeredIndex - b.registeredIndex);
  }

  /** A line's rounds and refusals (empty for a line the log never saw). */
  line(line: string): FlLine {
    const l = this.#lines.get(line);
    const last = l?.rounds.at(-1);
    return {
      line,
      rounds: [...(l?.rounds ?? [])],
      refusals: [...(l?.refusals ?? [])],
      lastRound: l?.tip.lastRound ?? 0,
      dp: l?.tip.dp,
      rhoTotal: l?.tip.rhoTotal ?? 0,
      epsilon: last?.dp?.epsilon,
      version: l?.rounds.find((r) => r.final)?.version,
    };
  }

  /** Every line the log has a round or refusal of, by name. */
  lineNames(): string[] {
    return [...this.#lines.keys()].sort();
  }

  /** Every line the log has a round or refusal of, in brief, by name. */
  lineSummaries(): FlLineSummary[] {
    return this.lineNames().map((line) => {
      const l = this.#lines.get(line)!;
      return { line, rounds: l.rounds.length, refusals: l.refusals.length, lastRound: l.tip.lastRound, closed: l.tip.closed };
    });
  }
}

/** The round an FL_ROUND entry records (undefined for a malformed one). */
export function roundOf(index: number, e: LoggedEvent): FlRound | undefined {
  const p = e.payload;
  const [line, aggregation, globalModel, actor, role] = ['line', 'aggregation', 'globalModel', 'actor', 'role'].map((k) => stringField(p, k));
  const round = num(p, 'round');
  const sites = Array.isArray(p['sites']) ? p['sites'] : undefined;
  if (!line || !aggregation || !globalModel || !actor || !role || round === undefined || !sites) return undefined;
  const list: { site: string; update: string; signature: string }[] = [];
  for (const x of sites) {
    if (!isRecord(x)) return undefined;
    const [site, update, signature] = ['site', 'update', 'signature'].map((k) => stringField(x, k));
    if (!site || !update || !signature) return undefined;
    list.push({ site, update, signature });
  }
  const dpRec = isRecord(p['dp']) ? p['dp'] : undefined;
  let dp: FlRoundDp | undefined;
  if (dpRec) {
    const [clipNorm, noiseMultiplier, delta, rho, rhoTotal, epsilon] = ['clipNorm', 'noiseMultiplier', 'delta', 'rho', 'rhoTotal', 'epsilon'].map((k) => num(dpRec, k));
    if (clipNorm === undefined || noiseMultiplier === undefined || delta === undefined || rho === undefined || rhoTotal === undefined || epsilon === undefined) return undefined;
    dp = { clipNorm, noiseMultiplier, delta, rho, rhoTotal, epsilon };
  }
  const v = isRecord(p['version']) ? p['version'] : undefined;
  const [model, version, weights] = ['model', 'version', 'weights'].map((k) => stringField(v, k));
  const modelSpec = stringField(isRecord(p['documents']) ? p['documents'] : undefined, 'modelSpec');
  return {
    index,
    time: e.time,
    line,
    round,
    aggregation,
    globalModel,
    sites: list,
    ...(dp ? { dp } : {}),
    final: p['final'] === true,
    ...(model && version && weights ? { version: { model, version, weights } } : {}),
    ...(modelSpec ? { modelSpec } : {}),
    actor,
    role,
  };
}

/**
 * A round refused at sequencing time. The FL_ROUND_REFUSED event is already on the log when this is
 * thrown; the code is the refusal's reason, and the details name the entry.
 */
export class FlRoundRefusedError extends CustosError {
  readonly reason: FlRefusalReason;
  readonly event: AppendResult;
  constructor(reason: FlRefusalReason, line: string, round: number, site: string | undefined, event: AppendResult) {
    super(reason as ErrorCode, `round ${round} of line ${line} refused (${reason})${site ? `: site ${site}` : ''}; logged as FL_ROUND_REFUSED, entry ${event.index}`, {
      details: { reason, line, round, ...(site ? { site } : {}), eventIndex: event.index },
    });
    this.reason = reason;
    this.event = event;
  }
}

function requirePermission(s: GovernanceState, actor: Actor, permission: Permission, what: string): Actor {
  const who = parseWith(ACTOR, actor, 'actor', 'actor.');
  s.checkCodes({ role: who.role });
  if (!s.may(who.role, permission)) {
    throw new ValidationError('VALIDATION_FAILED', `role ${who.role} may not ${what} (it lacks ${permission})`, { issues: [{ path: 'actor.role', message: `lacks ${permission}` }] });
  }
  return who;
}

/**
 * Registers a site with its verifier key (`site+keyid+base64`, named after the site): an
 * FL_SITE_REGISTERED event with the site's public key and its SHA-256.
 * @throws {ValidationError} VALIDATION_FAILED: a malformed body, a key not named after the site, a role without `fl:sites` (nothing written)
 * @throws {VerificationError} KEY_MALFORMED: the key does not parse (nothing written)
 * @throws {ConflictError} FL_SITE_EXISTS: the site id was registered before, retired or not (nothing written)
 */
export async function registerSite(s: GovernanceState, input: FlSiteInput | unknown, actor: Actor): Promise<{ site: FlSite; event: AppendResult }> {
  const who = requirePermission(s, actor, 'fl:sites', 'register federated learning sites');
  const body = parseWith(FL_SITE, input, 'site');
  const verifier = parseVerifierKey(body.key);
  if (verifier.name !== body.site) {
    throw new ValidationError('VALIDATION_FAILED', `the key is named ${verifier.name}, not ${body.site}`, { issues: [{ path: 'key', message: 'the key must be named after the site' }] });
  }
  const raw = fromBase64Strict(splitPlus(body.key, 2)![2]!)!.subarray(1);
  const publicKey = toBase64(raw);
  const keyHash = toHex(sha256(raw));
  await s.fl.sync();
  let site: FlSite | undefined;
  const event = await s.log.appendDecided((ctx) => {
    if (s.fl.siteAt(body.site, ctx.batchId)) throw new ConflictError('FL_SITE_EXISTS', `site ${body.site} is already registered (site ids are never reused)`, { details: { site: body.site } });
    const time = formatEntryTime(ctx.timeMs);
    const payload = s.checked(FL_EVENT.siteRegistered, { site: body.site, publicKey, keyHash, actor: who.id, role: who.role });
    site = { site: body.site, publicKey, keyHash, registeredIndex: ctx.index, registeredAt: time, retiredIndex: null, retiredAt: null };
    s.fl.stageSite(site, ctx.batchId);
    return { type: FL_EVENT.siteRegistered, payload, onCommitted: () => s.fl.apply(ctx.index, { type: FL_EVENT.siteRegistered, time, payload }) };
  });
  return { site: site!, event };
}

/**
 * Retires a site: an FL_SITE_RETIRED event. Later rounds naming it are refused (FL_SITE_INACTIVE).
 * @throws {ValidationError} VALIDATION_FAILED: a malformed site id, a role without `fl:sites` (nothing written)
 * @throws {NotFoundError} FL_SITE_UNKNOWN (nothing written)
 * @throws {ConflictError} FL_SITE_INACTIVE: already retired (nothing written)
 */
export async function retireSite(s: GovernanceState, siteId: string, actor: Actor): Promise<{ site: FlSite; event: AppendResult }> {
  const who = requirePermission(s, actor, 'fl:sites', 'retire federated learning sites');
  const id = parseWith(FL_ID, siteId, 'site');
  await s.fl.sync();
  let site: FlSite | undefined;
  const event = await s.log.appendDecided((ctx) => {
    const known = s.fl.siteAt(id, ctx.batchId);
    if (!known) throw new NotFoundError('FL_SITE_UNKNOWN', `site ${id} is not registered`, { details: { site: id } });
    if (known.retiredIndex !== null) throw new ConflictError('FL_SITE_INACTIVE', `site ${id} is already retired`, { details: { site: id, retiredIndex: known.retiredIndex } });
    const time = formatEntryTime(ctx.timeMs);
    const payload = s.checked(FL_EVENT.siteRetired, { site: id, actor: who.id, role: who.role });
    site = { ...known, retiredIndex: ctx.index, retiredAt: time };
    s.fl.stageSite(site, ctx.batchId);
    return { type: FL_EVENT.siteRetired, payload, onCommitted: () => s.fl.apply(ctx.index, { type: FL_EVENT.siteRetired, time, payload }) };
  });
  return { site: site!, event };
}

/** Every site the log has registered (retired ones too), in registration order. */
export async function listSites(s: GovernanceState): Promise<FlSite[]> {
  await s.fl.sync();
  return s.fl.sites();
}

/** Every model line the log has a round or refused round of, by name, with its counts. */
export async function listLines(s: GovernanceState): Promise<FlLineSummary[]> {
  await s.fl.sync();
  return s.fl.lineSummaries();
}

/** A line's rounds and refusals, and its accountant (empty for a line the log has never seen). */
export async function listRounds(s: GovernanceState, line: string): Promise<FlLine> {
  const id = parseWith(FL_ID, line, 'line');
  await s.fl.sync();
  return s.fl.line(id);
}

/** What {@link recordRound} returns for a recorded round. */
export interface FlRoundResult {
  readonly round: FlRound;
  readonly event: AppendResult;
  /** For a final round: the version's registration in the model registry (undefined when none was made; see {@link registerFlModelVersion}). */
  readonly registered?: ModelRegistered;
}

/** The first reason to refuse `r` given where its line stands and the sites as the log has them. */
function refusalOf(origin: string, r: FlRoundInput, tip: Tip, siteAt: (id: string) => FlSite | undefined): { reason: FlRefusalReason; site?: string } | undefined {
  if (tip.closed) return { reason: 'FL_LINE_CLOSED' };
  if (r.round <= tip.lastRound) return { reason: 'FL_ROUND_OUT_OF_ORDER' };
  for (const x of r.sites) {
    const site = siteAt(x.site);
    if (!site) return { reason: 'FL_SITE_UNKNOWN', site: x.site };
    if (site.retiredIndex !== null) return { reason: 'FL_SITE_INACTIVE', site: x.site };
    if (!verifyFlUpdateSignature(site.publicKey, origin, r.line, r.round, x.site, x.update, x.signature)) return { reason: 'FL_SIGNATURE_INVALID', site: x.site };
  }
  if (tip.dp !== undefined && tip.dp !== (r.dp !== undefined)) return { reason: 'FL_DP_MISMATCH' };
  // The running ε is reported at the line's δ: a round cannot move it (a larger δ shrinks ε).
  if (r.dp && !deltaAgrees(tip.delta, r.dp.delta)) return { reason: 'FL_DP_MISMATCH' };
  if (r.dp?.epsilon !== undefined && !epsilonAgrees(r.dp.epsilon, accountRound(tip.rhoTotal, r.dp).epsilon)) return { reason: 'FL_DP_ACCOUNTING_MISMATCH' };
  return undefined;
}

/**
 * Records a round of a model line, decided when its event is sequenced: FL_ROUND if every site is
 * registered and not retired, every signature verifies over the signed message naming this log (docs/federated.md),
 * the round number is above the line's last, the line has not ended, and the DP parameters agree
 * with the line's; FL_ROUND_REFUSED with the first reason otherwise. A final round also stores the
 * model spec document of the version it ends in, and calls {@link registerFlModelVersion}.
 * @throws {ValidationError} VALIDATION_FAILED: a malformed round, a role without `fl:coordinate` (nothing written)
 * @throws {FlRoundRefusedError} FL_LINE_CLOSED, FL_ROUND_OUT_OF_ORDER, FL_SITE_UNKNOWN, FL_SITE_INACTIVE,
 *   FL_SIGNATURE_INVALID, FL_DP_MISMATCH, FL_DP_ACCOUNTING_MISMATCH (after FL_ROUND_REFUSED is committed)
 */
export async function recordRound(s: GovernanceState, input: FlRoundInput | unknown, actor: Actor): Promise<FlRoundResult> {
  const who = requirePermission(s, actor, 'fl:coordinate', 'record federated learning rounds');
  const r = parseWith(FL_ROUND, input, 'round');
  const spec = r.version
    ? doc(DOC.model, {
        schema: 'custos/fl-model-spec/v1',
        model: r.version.model,
        version: r.version.version,
        weights: r.globalModel,
        origin: { kind: 'fl', line: r.line, round: r.round, aggregation: r.aggregation },
        ...(r.version.spec ? { spec: r.version.spec } : {}),
      })
    : undefined;
  await s.fl.sync();
  let recorded: FlRound | undefined;
  let refused: { reason: FlRefusalReason; site?: string } | undefined;
  const event = await s.log.appendDecided((ctx) => {
    const tip = s.fl.tipAt(r.line, ctx.batchId);
    const time = formatEntryTime(ctx.timeMs);
    refused = refusalOf(s.log.origin, r, tip, (id) => s.fl.siteAt(id, ctx.batchId));
    if (refused) {
      const payload = s.checked(FL_EVENT.roundRefused, { line: r.line, round: r.round, reason: refused.reason, ...(refused.site ? { site: refused.site } : {}), actor: who.id, role: who.role });
      return { type: FL_EVENT.roundRefused, payload, onCommitted: () => s.fl.apply(ctx.index, { type: FL_EVENT.roundRefused, time, payload }) };
    }
    const account = r.dp ? accountRound(tip.rhoTotal, r.dp) : undefined;
    const dp = r.dp && account ? { clipNorm: r.dp.clipNorm, noiseMultiplier: r.dp.noiseMultiplier, delta: r.dp.delta, ...account } : undefined;
    const version = r.version ? { model: r.version.model, version: r.version.version, weights: r.globalModel } : undefined;
    const payload = s.checked(FL_EVENT.round, {
      line: r.line,
      round: r.round,
      sites: r.sites.map((x) => ({ site: x.site, update: x.update, signature: x.signature })),
      aggregation: r.aggregation,
      globalModel: r.globalModel,
      ...(dp ? { dp } : {}),
      ...(r.final ? { final: true } : {}),
      ...(version ? { version } : {}),
      ...(spec ? { documents: { modelSpec: spec.hash } } : {}),
      actor: who.id,
      role: who.role,
    });
    s.fl.stageTip(r.line, { lastRound: r.round, dp: dp !== undefined, rhoTotal: dp?.rhoTotal ?? 0, delta: tip.delta ?? dp?.delta, closed: r.final === true }, ctx.batchId);
    recorded = roundOf(ctx.index, { type: FL_EVENT.round, time, payload });
    return {
      type: FL_EVENT.round,
      payload,
      ...(spec ? { sidecar: { documents: [{ hash: spec.hash, kind: spec.kind, bytes: spec.bytes }] } } : {}),
      onCommitted: () => s.fl.apply(ctx.index, { type: FL_EVENT.round, time, payload }),
    };
  });
  if (refused) throw new FlRoundRefusedError(refused.reason, r.line, r.round, refused.site, event);
  const round = recorded!;
  if (!round.final || !round.version) return { round, event };
  const registered = await registerFlModelVersion(s, { ...round.version, line: round.line, round: round.round, spec: r.version?.spec, specDocument: round.modelSpec! }, who);
  return { round, event, ...(registered === undefined ? {} : { registered }) };
}

/** What a final round hands to the model registry. */
export interface FlVersionRegistration extends FlModelVersion {
  readonly line: string;
  readonly round: number;
  /** The `spec` object of the round file, if any (also inside the stored model spec document). */
  readonly spec: Readonly<Record<string, unknown>> | undefined;
  /** Hash of the model spec document the FL_ROUND entry commits (`documents.modelSpec`). */
  readonly specDocument: string;
}

/**
 * THE HOOK between federated rounds and the model registry (issue 14, models): called once, after
 * the final FL_ROUND of a line is committed, with the version it ends in. It registers the version
 * (MODEL_REGISTERED, origin fl, line and round; see registerFlVersion in models.ts for where its
 * intended use and risk class come from) and returns the registration, given to the caller as
 * `registered`; undefined when nothing was registered (the version is on the FL_ROUND entry itself).
 */
export async function registerFlModelVersion(s: GovernanceState, version: FlVersionRegistration, actor: Actor): Promise<ModelRegistered | undefined> {
  // issue 14 (models): wired to the model registry (service/governance/models.ts, registerFlVersion).
  return registerFlVersion(s, { model: version.model, version: version.version, weightsHash: version.weights, line: version.line, round: version.round, spec: version.spec }, actor);
}

/** The aggregation codes a round may name. */
export type { FlAggregation };
