/**
 * The model registry and change control (issue 14; docs/models.md): model versions registered,
 * approved and retired as events, change control plans (PCCP) committed for a model line, the
 * check of an inference's model at sequencing time, and the registration of a version a training
 * run makes under a plan (approved automatically when every metric is within the plan's bounds).
 *
 * Like the break-glass review queue, the registry is derived from the log only: every MODEL_* and
 * CHANGE_PLAN_COMMITTED entry the verified scan hands it (entries a signed checkpoint covers), and
 * the ones this process commits. Nothing else holds registry state. A change is decided at
 * sequencing time against the registry the log has then, plus the changes sequenced earlier in the
 * same batch (the overlay, dropped if the batch is retried): an inference sequenced after a
 * retirement is refused, exactly as one sequenced after a consent revocation is.
 * @module
 */
import { ConflictError, ConsentError, NotFoundError, ValidationError } from '../../core/errors.js';
import { formatEntryTime } from '../../core/entry.js';
import { sha256, toHex } from '../../core/hash.js';
import { EVENT_TYPE, parseLoggedEvent, type LoggedEvent } from '../../core/events.js';
import type { ModelSpec } from '../../core/manifest.js';
import {
  CHANGE_PLAN_SCHEMA,
  EVALUATION_SCHEMA,
  MODEL_NAME_RE,
  MODEL_SPEC_SCHEMA,
  MODEL_VERSION,
  MODEL_NAME,
  MODEL_VERSION_RE,
  PLAN_ID,
  RETIRE_REASONS,
  applyModelEvent,
  checkInferenceModel,
  copyLine,
  createModelRegistryState,
  evaluateChangePlan,
  parseChangePlan,
  parseModelRegistration,
  versionStatus,
  type ChangeControl,
  type ChangePlan,
  type ChangePlanState,
  type ModelCheck,
  type ModelLine,
  type ModelRefusal,
  type ModelRegistration,
  type ModelState,
  type ModelVersionState,
  type PlanEvaluation,
  type RetireReason,
} from '../../core/models.js';
import type { Permission } from '../../core/vocabulary.js';
import { parseWith } from '../../core/schema/parse.js';
import * as v from 'valibot';
import type { AppendResult, Log, SequencingContext } from '../../log/log.js';
import { ACTOR } from '../requests.js';
import { doc } from './documents.js';
import type { Actor, GovernanceState } from './state.js';

/** Document kinds of the registry (off-ledger, content-addressed). */
export const MODEL_DOC = { spec: 'model-version-spec', plan: 'change-plan', evaluation: 'model-evaluation' } as const;

const MARKS = ['"type":"MODEL_', `"type":"${EVENT_TYPE.changePlanCommitted}"`];
const INFERENCE_MARK = `"type":"${EVENT_TYPE.inferenceExecuted}"`;

/** The registry of one log, as this process knows it. */
export class ModelRegistry {
  readonly #log: Log;
  readonly #state = createModelRegistryState();
  /** Indexes of the registry entries applied (the scan replays what this process committed). */
  readonly #seen = new Set<number>();
  /** Registry entries sequenced in the batch being sequenced (dropped if that batch is retried). */
  #staged: { index: number; e: LoggedEvent }[] = [];
  #stagedBatch = -1;

  /** Subscribes to the log's verified scan. */
  constructor(log: Log) {
    this.#log = log;
    log.scan.subscribe({
      matches: (bytes) => MARKS.some((m) => bytes.indexOf(m) >= 0) || (bytes.indexOf('"modelVersion":') >= 0 && bytes.indexOf(INFERENCE_MARK) >= 0),
      apply: (index, bytes) => this.apply(index, parseLoggedEvent(bytes)),
    });
  }

  /** Applies an entry (idempotent). */
  apply(index: number, e: LoggedEvent | undefined): void {
    if (!e) return;
    if (e.type !== EVENT_TYPE.inferenceExecuted) {
      if (this.#seen.has(index)) return;
      this.#seen.add(index);
    }
    applyModelEvent(this.#state, index, e);
  }

  /** Reads what the log gained since the last look (other writers' registry entries). */
  sync(): Promise<void> {
    return this.#log.scan.sync();
  }

  /** Every line, as committed. */
  lines(): ModelLine[] {
    return [...this.#state.lines.values()];
  }

  line(model: string): ModelLine | undefined {
    return this.#state.lines.get(model);
  }

  plan(planId: string): ChangePlanState | undefined {
    return this.#state.plans.get(planId);
  }

  plans(): ChangePlanState[] {
    return [...this.#state.plans.values()];
  }

  #enter(batchId: number): void {
    if (batchId !== this.#stagedBatch) {
      this.#staged = [];
      this.#stagedBatch = batchId;
    }
  }

  /** The line as seen by the entry being sequenced in batch `batchId` (committed + staged). */
  lineAt(model: string, batchId: number): ModelLine | undefined {
    this.#enter(batchId);
    const committed = this.#state.lines.get(model);
    const staged = this.#staged.filter((x) => x.e.payload['model'] === model);
    if (staged.length === 0) return committed;
    const temp = { lines: new Map<string, ModelLine>(committed ? [[model, copyLine(committed)]] : []), plans: new Map(this.#state.plans) };
    for (const x of staged) applyModelEvent(temp, x.index, x.e);
    return temp.lines.get(model);
  }

  /** Whether plan `planId` exists as seen in batch `batchId`. */
  hasPlanAt(planId: string, batchId: number): boolean {
    this.#enter(batchId);
    return this.#state.plans.has(planId) || this.#staged.some((x) => x.e.type === EVENT_TYPE.changePlanCommitted && x.e.payload['planId'] === planId);
  }

  /** Stages an entry for the rest of the batch being sequenced (call from a decide callback). */
  stage(batchId: number, index: number, e: LoggedEvent): void {
    this.#enter(batchId);
    this.#staged.push({ index, e });
  }
}

// ---- errors ------------------------------------------------------------------------------------

/** An inference refused for its model. The INFERENCE_REFUSED event is already on the log when this is thrown. */
export class ModelRefusedError extends ConsentError {
  readonly event: AppendResult;
  readonly reason: ModelRefusal;
  readonly state: ModelState;
  constructor(reason: ModelRefusal, state: ModelState, declared: { modelName: string; modelVersion: string }, event: AppendResult, registeredWeightsHash?: string) {
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(
      reason,
      reason === 'MODEL_DIGEST_MISMATCH'
        ? `model ${declared.modelName} ${declared.modelVersion}: the weights digest differs from the registered one`
        : `model ${declared.modelName} ${declared.modelVersion} is not approved (${state})`,
      { details: { reason, state, model: declared.modelName, version: declared.modelVersion, eventIndex: event.index, ...(registeredWeightsHash ? { registeredWeightsHash } : {}) } },
    );
    Error.stackTraceLimit = stackTraceLimit;
    this.event = event;
    this.reason = reason;
    this.state = state;
  }
}

function requirePermission(s: GovernanceState, actor: unknown, permission: Permission): Actor {
  const who = parseWith(ACTOR, actor, 'actor', 'actor');
  s.checkCodes({ role: who.role });
  if (!s.may(who.role, permission)) {
    throw new ValidationError('VALIDATION_FAILED', `role ${who.role} may not do this (it lacks ${permission})`, { issues: [{ path: 'actor.role', message: `lacks ${permission}` }] });
  }
  return who;
}

const notFound = (model: string, version?: string) =>
  new NotFoundError('MODEL_NOT_FOUND', version === undefined ? `no model line ${model} is registered` : `model ${model} has no registered version ${version}`, {
    details: { model, ...(version === undefined ? {} : { version }) },
  });

// ---- registration, approval, retirement --------------------------------------------------------

/** What {@link registerModel} returns. */
export interface ModelRegistered {
  readonly model: string;
  readonly version: string;
  readonly specHash: string;
  readonly event: AppendResult;
}

/** What registration adds when a training run under a plan made the version. */
interface ChangeControlPart {
  readonly plan: string;
  readonly modification: string;
  readonly outcome: string;
  readonly evaluation: ReturnType<typeof doc>;
}

function specDocument(r: ModelRegistration) {
  return doc(MODEL_DOC.spec, {
    schema: MODEL_SPEC_SCHEMA,
    model: r.model,
    version: r.version,
    weightsHash: r.weightsHash,
    intendedUse: r.intendedUse,
    riskClass: r.riskClass,
    spec: r.spec,
    ...(r.origin ? { origin: r.origin } : {}),
  });
}

// The decide step of a registration; `onIndex` learns the index it takes (for an approval in the same batch).
function registrationDecide(s: GovernanceState, r: ModelRegistration, who: Actor, cc: ChangeControlPart | undefined, onIndex?: (index: number) => void) {
  const spec = specDocument(r);
  return {
    spec,
    decide: (ctx: SequencingContext) => {
      if (s.models.lineAt(r.model, ctx.batchId)?.versions.has(r.version)) {
        throw new ConflictError('MODEL_EXISTS', `model ${r.model} version ${r.version} is already registered`, { details: { model: r.model, version: r.version } });
      }
      const payload = s.checked(EVENT_TYPE.modelRegistered, {
        model: r.model,
        version: r.version,
        weightsHash: r.weightsHash,
        intendedUse: r.intendedUse,
        riskClass: r.riskClass,
        ...(r.origin ? { origin: r.origin } : {}),
        ...(cc ? { changeControl: { plan: cc.plan, modification: cc.modification, outcome: cc.outcome } } : {}),
        actor: who.id,
        role: who.role,
        documents: { spec: spec.hash, ...(cc ? { evaluation: cc.evaluation.hash } : {}) },
      });
      return staged(s, ctx, EVENT_TYPE.modelRegistered, payload, { documents: cc ? [spec, cc.evaluation] : [spec] }, () => onIndex?.(ctx.index));
    },
  };
}

// Stages a registry entry for the batch and applies it once committed.
function staged(s: GovernanceState, ctx: SequencingContext, type: string, payload: Record<string, unknown>, sidecar?: { documents: ReturnType<typeof doc>[] }, also?: () => void) {
  const e: LoggedEvent = { type, time: formatEntryTime(ctx.timeMs), payload };
  s.models.stage(ctx.batchId, ctx.index, e);
  also?.();
  return { type, payload, ...(sidecar ? { sidecar } : {}), onCommitted: () => s.models.apply(ctx.index, e) };
}

/**
 * Registers a model version: a MODEL_REGISTERED event naming its line, version, weights digest,
 * intended use and risk class; the spec document (with the free text) is stored off-ledger and its
 * hash is on the event. The input has no `origin` (refused, VALIDATION_FAILED): only change
 * control ({@link withChangeControl}, the training run's entry) and the federated line's final
 * round ({@link registerFlVersion}) name one, from the entry they wrote. The version is not usable until approved.
 * The actor's role must hold `model:register`.
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConflictError} MODEL_EXISTS: the version is registered already (nothing written)
 */
export async function registerModel(s: GovernanceState, input: RegisterModelInput, actor: Actor): Promise<ModelRegistered> {
  const who = requirePermission(s, actor, 'model:register');
  const r = parseModelRegistration(input);
  await s.models.sync();
  const { spec, decide } = registrationDecide(s, r, who, undefined);
  const event = await s.log.appendDecided(decide);
  return { model: r.model, version: r.version, specHash: spec.hash, event };
}

/** Input of {@link registerModel} (the library signature the federated-learning line uses). */
export interface RegisterModelInput {
  readonly model: string;
  readonly version: string;
  readonly weightsHash: string;
  readonly intendedUse: string;
  readonly riskClass: string;
  /** The spec document: any JSON object (stored off-ledger only). */
  readonly spec?: Record<string, unknown>;
}

/**
 * Registers the version a federated line's final round ends in (origin fl, the line and round),
 * called by the federated-learning service once the final FL_ROUND is committed
 * (federated.ts, registerFlModelVersion). The round itself was authorized (`fl:coordinate`), so the
 * coordinator needs no `model:register`. Its intended use and risk class come from the round's spec
 * (`intendedUse`, `riskClass`), else from the line's latest registered version. Returns undefined,
 * registering nothing, when neither gives them, when they are not codes of the lists, or when the
 * version is registered already: the version stays on the FL_ROUND entry, and `custos model
 * register` registers it by hand. The version still needs an approval before inferences run on it.
 */
export async function registerFlVersion(
  s: GovernanceState,
  fl: { model: string; version: string; weightsHash: string; line: string; round: number; spec?: Readonly<Record<string, unknown>> | undefined },
  actor: Actor,
): Promise<ModelRegistered | undefined> {
  const who = parseWith(ACTOR, actor, 'actor', 'actor');
  await s.models.sync();
  const last = [...(s.models.line(fl.model)?.versions.values() ?? [])].at(-1);
  const code = (k: string, inherited: string | undefined) => (typeof fl.spec?.[k] === 'string' ? (fl.spec[k] as string) : inherited);
  let r: ModelRegistration;
  try {
    r = parseModelRegistration(
      {
        model: fl.model,
        version: fl.version,
        weightsHash: fl.weightsHash,
        intendedUse: code('intendedUse', last?.intendedUse),
        riskClass: code('riskClass', last?.riskClass),
        spec: fl.spec ?? {},
      },
      { kind: 'fl', line: fl.line, round: fl.round },
    );
  } catch (err) {
    if (err instanceof ValidationError) return undefined;
    throw err;
  }
  const { spec, decide } = registrationDecide(s, r, who, undefined);
  try {
    const event = await s.log.appendDecided(decide);
    return { model: r.model, version: r.version, specHash: spec.hash, event };
  } catch (err) {
    if (err instanceof ConflictError && err.code === 'MODEL_EXISTS') return undefined;
    throw err;
  }
}

const NAME_AND_VERSION = v.object({ model: MODEL_NAME, version: MODEL_VERSION });

function approvalDecide(
  s: GovernanceState,
  model: string,
  version: string,
  who: Actor,
  basis: { kind: 'human' } | { kind: 'plan'; plan: string; planHash: string; registeredAt: () => number | undefined },
) {
  return (ctx: SequencingContext) => {
    const x = s.models.lineAt(model, ctx.batchId)?.versions.get(version);
    if (!x) throw notFound(model, version);
    // An approval under a plan approves exactly the version its run registered.
    if (basis.kind === 'plan' && x.registered.index !== basis.registeredAt()) throw notFound(model, version);
    if (x.retirement) throw new ConflictError('MODEL_VERSION_RETIRED', `model ${model} version ${version} is retired`, { details: { model, version, retired: x.retirement.index } });
    if (x.approval) throw new ConflictError('MODEL_ALREADY_APPROVED', `model ${model} version ${version} is approved already`, { details: { model, version, approved: x.approval.index } });
    const payload = s.checked(EVENT_TYPE.modelApproved, {
      model,
      version,
      weightsHash: x.weightsHash,
      registered: x.registered.index,
      basis: basis.kind,
      ...(basis.kind === 'plan' ? { plan: basis.plan } : {}),
      actor: who.id,
      role: who.role,
      ...(basis.kind === 'plan' ? { documents: { plan: basis.planHash } } : {}),
    });
    return staged(s, ctx, EVENT_TYPE.modelApproved, payload);
  };
}

/**
 * Approves a registered version (basis human): a MODEL_APPROVED event. From then on inferences may
 * run under it. The actor's role must hold `model:approve`.
 * @throws {ValidationError} VALIDATION_FAILED (a malformed name, a role without model:approve)
 * @throws {NotFoundError} MODEL_NOT_FOUND
 * @throws {ConflictError} MODEL_ALREADY_APPROVED, MODEL_VERSION_RETIRED (nothing written for any of them)
 */
export async function approveModel(s: GovernanceState, model: string, version: string, actor: Actor): Promise<{ version: ModelVersionState; event: AppendResult }> {
  const who = requirePermission(s, actor, 'model:approve');
  parseWith(NAME_AND_VERSION, { model, version }, 'model version');
  await s.models.sync();
  const event = await s.log.appendDecided(approvalDecide(s, model, version, who, { kind: 'human' }));
  return { version: s.models.line(model)!.versions.get(version)!, event };
}

/**
 * Retires a version (a MODEL_RETIRED event, with an optional reason code): inferences under it are
 * refused from the moment it is sequenced. The actor's role must hold `model:approve`.
 * @throws {ValidationError} VALIDATION_FAILED
 * @throws {NotFoundError} MODEL_NOT_FOUND
 * @throws {ConflictError} MODEL_VERSION_RETIRED: retired already (nothing written)
 */
export async function retireModel(s: GovernanceState, model: string, version: string, actor: Actor, reason?: string): Promise<{ version: ModelVersionState; event: AppendResult }> {
  const who = requirePermission(s, actor, 'model:approve');
  parseWith(NAME_AND_VERSION, { model, version }, 'model version');
  if (reason !== undefined && !(RETIRE_REASONS as readonly string[]).includes(reason)) {
    throw new ValidationError('VALIDATION_FAILED', `reason must be one of ${RETIRE_REASONS.join(', ')}`, { issues: [{ path: 'reason', message: 'unknown retirement reason' }] });
  }
  await s.models.sync();
  const event = await s.log.appendDecided((ctx) => {
    const x = s.models.lineAt(model, ctx.batchId)?.versions.get(version);
    if (!x) throw notFound(model, version);
    if (x.retirement) throw new ConflictError('MODEL_VERSION_RETIRED', `model ${model} version ${version} is retired already`, { details: { model, version, retired: x.retirement.index } });
    const payload = s.checked(EVENT_TYPE.modelRetired, { model, version, registered: x.registered.index, ...(reason ? { reason: reason as RetireReason } : {}), actor: who.id, role: who.role });
    return staged(s, ctx, EVENT_TYPE.modelRetired, payload);
  });
  return { version: s.models.line(model)!.versions.get(version)!, event };
}

/**
 * Commits a change control plan for a registered model line: a CHANGE_PLAN_COMMITTED event with the
 * plan's id, line, allowed modifications and bounded metrics; the whole plan (bounds, data
 * constraints, words) is stored off-ledger and its hash is on the event. The actor's role must hold
 * `model:approve` (approving a plan approves in advance every version that meets it).
 * @throws {ValidationError} VALIDATION_FAILED
 * @throws {NotFoundError} MODEL_NOT_FOUND: no version of the line is registered
 * @throws {ConflictError} CHANGE_PLAN_EXISTS: a plan with this id exists (nothing written)
 */
export async function commitChangePlan(s: GovernanceState, input: unknown, actor: Actor): Promise<{ plan: ChangePlan; hash: string; event: AppendResult }> {
  const who = requirePermission(s, actor, 'model:approve');
  const plan = parseChangePlan(input);
  const d = doc(MODEL_DOC.plan, { schema: CHANGE_PLAN_SCHEMA, ...plan });
  await s.models.sync();
  const event = await s.log.appendDecided((ctx) => {
    if (!s.models.lineAt(plan.model, ctx.batchId)?.versions.size) throw notFound(plan.model);
    if (s.models.hasPlanAt(plan.planId, ctx.batchId)) throw new ConflictError('CHANGE_PLAN_EXISTS', `a change control plan ${plan.planId} exists already`, { details: { planId: plan.planId } });
    const payload = s.checked(EVENT_TYPE.changePlanCommitted, {
      planId: plan.planId,
      model: plan.model,
      modifications: [...plan.modifications],
      metrics: plan.acceptance.map((a) => a.metric),
      actor: who.id,
      role: who.role,
      documents: { plan: d.hash },
    });
    return staged(s, ctx, EVENT_TYPE.changePlanCommitted, payload, { documents: [d] });
  });
  return { plan, hash: d.hash, event };
}

/**
 * The plan document of `planId`, read from the off-ledger store and checked against the hash on the
 * log (undefined `plan` when it is missing or does not match: the plan cannot approve anything).
 * @throws {NotFoundError} CHANGE_PLAN_NOT_FOUND
 */
export async function showChangePlan(s: GovernanceState, planId: string): Promise<{ state: ChangePlanState; plan: ChangePlan | undefined; documentOk: boolean }> {
  parseWith(PLAN_ID, planId, 'plan id');
  await s.models.sync();
  const state = s.models.plan(planId);
  if (!state) throw new NotFoundError('CHANGE_PLAN_NOT_FOUND', `no change control plan ${planId}`, { details: { planId } });
  const plan = await readPlan(s, state);
  return { state, plan, documentOk: plan !== undefined };
}

async function readPlan(s: GovernanceState, state: ChangePlanState): Promise<ChangePlan | undefined> {
  const stored = await s.log.sidecar.getDocument(state.hash);
  if (!stored || toHex(sha256(stored.bytes)) !== state.hash) return undefined;
  try {
    const { schema: _schema, ...plan } = JSON.parse(stored.bytes.toString('utf8')) as Record<string, unknown>;
    return parseChangePlan(plan);
  } catch {
    return undefined;
  }
}

// ---- reads -------------------------------------------------------------------------------------

/** A version as the registry reports it. */
export interface ModelVersionView extends Omit<ModelVersionState, 'inferences'> {
  readonly status: ModelState;
  /** How many INFERENCE_EXECUTED entries ran under it. */
  readonly inferenceCount: number;
}

/** A model line as the registry reports it. */
export interface ModelLineView {
  readonly model: string;
  readonly versions: readonly ModelVersionView[];
  readonly plans: readonly ChangePlanState[];
}

const versionView = ({ inferences, ...x }: ModelVersionState): ModelVersionView => ({ ...x, status: versionStatus({ ...x, inferences }), inferenceCount: inferences.length });
const lineView = (l: ModelLine): ModelLineView => ({ model: l.model, versions: [...l.versions.values()].map(versionView), plans: [...l.plans.values()] });

/** Every model line with its versions (registration order) and plans. */
export async function listModels(s: GovernanceState): Promise<ModelLineView[]> {
  await s.models.sync();
  return s.models
    .lines()
    .map(lineView)
    .sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
}

/**
 * One line, or one version of it with the indexes of the inferences made with it.
 * @throws {NotFoundError} MODEL_NOT_FOUND
 */
export async function showModel(s: GovernanceState, model: string, version?: string): Promise<ModelLineView | (ModelVersionView & { readonly inferences: readonly number[] })> {
  parseWith(MODEL_NAME, model, 'model name');
  if (version !== undefined) parseWith(MODEL_VERSION, version, 'model version');
  await s.models.sync();
  const line = s.models.line(model);
  if (!line || line.versions.size === 0) throw notFound(model);
  if (version === undefined) return lineView(line);
  const x = line.versions.get(version);
  if (!x) throw notFound(model, version);
  return { ...versionView(x), inferences: [...x.inferences] };
}

/** Every committed plan (of one line when `model` is given). */
export async function listChangePlans(s: GovernanceState, model?: string): Promise<ChangePlanState[]> {
  if (model !== undefined) parseWith(MODEL_NAME, model, 'model name');
  await s.models.sync();
  return s.models.plans().filter((p) => model === undefined || p.model === model);
}

// ---- inference ---------------------------------------------------------------------------------

/**
 * The model check of an inference, run at sequencing time (service/governance/receipts.ts passes
 * it to underConsent as its gate): what the registry the log has now says about the declared model.
 */
export function checkModelAt(s: GovernanceState, declared: ModelSpec, batchId: number): ModelCheck {
  return checkInferenceModel(s.models.lineAt(declared.modelName, batchId), declared, s.requireRegisteredModels);
}

/** The declared model's name and version when they can go on the log (identifiers). */
export function declaredOnLog(declared: ModelSpec): { modelName?: string; modelVersion?: string } {
  return {
    ...(MODEL_NAME_RE.test(declared.modelName) ? { modelName: declared.modelName } : {}),
    ...(MODEL_VERSION_RE.test(declared.modelVersion) ? { modelVersion: declared.modelVersion } : {}),
  };
}

// ---- training under a change control plan ------------------------------------------------------

/** What {@link prepareChangeControl} found: the version the run makes, and how it fares under its plan. */
export interface PreparedChangeControl {
  readonly registration: ModelRegistration;
  readonly plan: ChangePlanState;
  readonly changeControl: ChangeControl;
  readonly evaluation: PlanEvaluation;
}

/** What a training run under a plan adds to its result. */
export interface ChangeControlResult {
  readonly model: string;
  readonly version: string;
  readonly plan: string;
  readonly outcome: PlanEvaluation['outcome'];
  readonly failures: PlanEvaluation['failures'];
  /** approved (under the plan), or registered (waiting for a human approval). */
  readonly status: 'approved' | 'registered';
  readonly registered: AppendResult;
  readonly approved?: AppendResult;
}

/**
 * Before a training run is recorded: whether it makes a new version of a registered line, and if
 * so, under which plan. A run that names a plan must make a new version of the plan's line; a run
 * from an approved version to a new version of its line must name a plan. Nothing is written.
 * @returns undefined when the registry has nothing to do with the run
 * @throws {ValidationError} CHANGE_PLAN_REQUIRED, CHANGE_PLAN_MISMATCH
 * @throws {NotFoundError} CHANGE_PLAN_NOT_FOUND
 * @throws {ConflictError} MODEL_EXISTS
 */
export async function prepareChangeControl(
  s: GovernanceState,
  run: { before: ModelSpec; after: ModelSpec; changeControl?: ChangeControl | undefined; datasetType: string; purpose: string },
): Promise<PreparedChangeControl | undefined> {
  const { before, after, changeControl: cc } = run;
  await s.models.sync();
  const line = s.models.line(after.modelName);
  const base = before.modelName === after.modelName ? line?.versions.get(before.modelVersion) : undefined;
  if (!cc) {
    if (base && versionStatus(base) === 'approved' && after.modelVersion !== before.modelVersion && !line!.versions.has(after.modelVersion)) {
      throw new ValidationError('CHANGE_PLAN_REQUIRED', `training makes a new version of the approved model ${after.modelName}: name its change control plan`, {
        issues: [{ path: 'changeControl', message: 'required for a new version of an approved model' }],
      });
    }
    return undefined;
  }
  const plan = s.models.plan(cc.plan);
  if (!plan) throw new NotFoundError('CHANGE_PLAN_NOT_FOUND', `no change control plan ${cc.plan}`, { details: { planId: cc.plan } });
  if (plan.model !== after.modelName) {
    throw new ValidationError('CHANGE_PLAN_MISMATCH', `plan ${cc.plan} is for model ${plan.model}, not ${after.modelName}`, {
      issues: [{ path: 'changeControl.plan', message: 'a plan of another model line' }],
    });
  }
  if (line?.versions.has(after.modelVersion)) {
    throw new ConflictError('MODEL_EXISTS', `model ${after.modelName} version ${after.modelVersion} is already registered`, { details: { model: after.modelName, version: after.modelVersion } });
  }
  const registration = parseModelRegistration({
    model: after.modelName,
    version: after.modelVersion,
    weightsHash: after.weightsHash,
    // The new version inherits what it is for from the version it was trained from (or the line's latest).
    intendedUse: (base ?? [...line!.versions.values()].at(-1)!).intendedUse,
    riskClass: (base ?? [...line!.versions.values()].at(-1)!).riskClass,
    spec: { framework: after.framework, extra: after.extra, trainedFrom: before.modelName === after.modelName ? before.modelVersion : null },
  });
  const planDoc = await readPlan(s, plan);
  if (!planDoc) throw new NotFoundError('CHANGE_PLAN_NOT_FOUND', `the document of plan ${cc.plan} is missing or does not match the log`, { details: { planId: cc.plan } });
  const evaluation: PlanEvaluation =
    base && versionStatus(base) === 'approved'
      ? evaluateChangePlan(planDoc, { modification: cc.modification, metrics: cc.metrics, datasetType: run.datasetType, purpose: run.purpose })
      : { outcome: 'BASE_NOT_APPROVED', failures: [] };
  return { registration, plan, changeControl: cc, evaluation };
}

/**
 * After the training run is on the log: registers the version it made (origin: the run's entry),
 * with the plan, the modification, the check's outcome and the evaluation document (the metrics);
 * when every metric is within the plan's bounds (and the modification and data are allowed), also
 * approves it under the plan (MODEL_APPROVED, basis plan, with the plan's hash). Otherwise the
 * version waits for a human approval. The two entries are queued together, so they usually share
 * one batch (one transaction).
 */
export async function withChangeControl(s: GovernanceState, p: PreparedChangeControl, run: AppendResult, actor: Actor): Promise<ChangeControlResult> {
  const registration: ModelRegistration = { ...p.registration, origin: { kind: 'training', run: run.index } };
  const evaluation = doc(MODEL_DOC.evaluation, {
    schema: EVALUATION_SCHEMA,
    plan: p.plan.planId,
    planHash: p.plan.hash,
    training: run.index,
    modification: p.changeControl.modification,
    metrics: p.changeControl.metrics,
    outcome: p.evaluation.outcome,
    failures: p.evaluation.failures,
  });
  let registeredAt: number | undefined;
  const reg = registrationDecide(s, registration, actor, { plan: p.plan.planId, modification: p.changeControl.modification, outcome: p.evaluation.outcome, evaluation }, (i) => {
    registeredAt = i;
  });
  const within = p.evaluation.outcome === 'WITHIN_BOUNDS';
  const registered = s.log.appendDecided(reg.decide);
  const approved = within
    ? s.log.appendDecided(approvalDecide(s, registration.model, registration.version, actor, { kind: 'plan', plan: p.plan.planId, planHash: p.plan.hash, registeredAt: () => registeredAt }))
    : undefined;
  const [r, a] = await Promise.all([registered, approved]);
  return {
    model: registration.model,
    version: registration.version,
    plan: p.plan.planId,
    outcome: p.evaluation.outcome,
    failures: p.evaluation.failures,
    status: a ? 'approved' : 'registered',
    registered: r,
    ...(a ? { approved: a } : {}),
  };
}
