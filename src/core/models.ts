/**
 * The model registry and change control (issue 14), pure: the codes a registered model version
 * carries on the log (intended use, risk class), the schemas of a registration, of a change control
 * plan (an FDA-style Predetermined Change Control Plan, PCCP) and of evaluation metrics, the
 * registry's state as a fold over the log's MODEL_* and CHANGE_PLAN_COMMITTED events, the check an
 * inference's model must pass, and the check of a training run's metrics against a plan.
 *
 * Nothing here reads a clock or a store: the service (service/governance/models.ts) folds the
 * entries its verified scan hands it, and decides at sequencing time.
 * @module
 */
import * as v from 'valibot';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import { EVENT_TYPE, isRecord, stringField, type LoggedEvent } from './events.js';
import {
  MODEL_NAME_RE,
  MODEL_VERSION_RE,
  PLAN_ID_RE,
  METRIC_NAME_RE,
  RISK_CLASSES,
  INTENDED_USES,
  MODIFICATION_TYPES,
  APPROVAL_BASES,
  type ApprovalBasis,
  type PlanCheck,
  type ModelRefusal,
  type ModelState,
} from './model-codes.js';

import { SHA256_HEX, WELL_FORMED, parseWith } from './schema/parse.js';

export {
  MODEL_NAME_RE,
  MODEL_VERSION_RE,
  PLAN_ID_RE,
  METRIC_NAME_RE,
  RISK_CLASSES,
  INTENDED_USES,
  MODIFICATION_TYPES,
  RETIRE_REASONS,
  APPROVAL_BASES,
  ORIGIN_KINDS,
  PLAN_CHECKS,
  MODEL_REFUSALS,
  MODEL_STATES,
  type RiskClass,
  type IntendedUse,
  type ModificationType,
  type RetireReason,
  type ApprovalBasis,
  type PlanCheck,
  type ModelRefusal,
  type ModelState,
} from './model-codes.js';

/** Dataset types a plan's data constraints may name (the training run's). */
const PLAN_DATASET_TYPES = ['identified', 'deidentified', 'synthetic'] as const;

/** At most this many characters of canonical JSON in a spec or a plan document. */
export const MAX_MODEL_DOCUMENT = 65_536;
/** At most this many acceptance metrics in a plan, and metrics in an evaluation. */
export const MAX_METRICS = 64;

const re = (r: RegExp, message: string) => v.pipe(v.string(), v.regex(r, message));
export const MODEL_NAME = re(MODEL_NAME_RE, 'expected a model name such as lesion_classifier (letters, digits, . _ -)');
export const MODEL_VERSION = re(MODEL_VERSION_RE, 'expected a model version such as 1.2.0 (letters, digits, . _ + -)');
export const PLAN_ID = re(PLAN_ID_RE, 'expected a plan id such as derm-pccp-1 (lowercase letters, digits, . _ -)');
export const METRIC_NAME = re(METRIC_NAME_RE, 'expected a metric name such as auroc (lowercase letters, digits, . _ -)');
const TEXT = v.pipe(v.string(), v.maxLength(4000), WELL_FORMED);
const FINITE = v.pipe(v.number(), v.finite('expected a finite number'));

/** A JSON object kept as canonical JSON, at most {@link MAX_MODEL_DOCUMENT} characters. */
const JSON_DOCUMENT = v.pipe(
  v.custom<Record<string, unknown>>((x) => isRecord(x), 'expected a JSON object'),
  v.record(v.string(), v.unknown()),
  v.transform((o) => JSON.parse(canonicalJson(o)) as { [k: string]: JsonValue }),
  v.check((o) => canonicalJson(o).length <= MAX_MODEL_DOCUMENT, 'larger than 64 KiB of canonical JSON'),
);

/**
 * Where a version came from: a training run (its TRAINING_EXECUTED entry), or a federated line's
 * final round (rounds count from 1). Set only by the service, from an entry it has just written
 * (change control, the federated line's final round): never part of the public input.
 */
export const MODEL_ORIGIN = v.variant('kind', [
  v.object({ kind: v.literal('training'), run: v.pipe(v.number(), v.integer(), v.minValue(0)) }),
  v.object({ kind: v.literal('fl'), line: MODEL_NAME, round: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
]);
export type ModelOrigin = v.InferOutput<typeof MODEL_ORIGIN>;

/**
 * A model version to register: its line and version, the SHA-256 of its weights, its intended use
 * and risk class (codes, logged), and its spec (any JSON object: indications, contraindications,
 * training data summary, performance claims; stored off-ledger only). Strict: any other field is
 * refused, `origin` among them (a caller cannot name a training run or a federated round as the
 * version's origin; only the service does, from the entry it wrote).
 */
export const MODEL_REGISTRATION = v.strictObject({
  model: MODEL_NAME,
  version: MODEL_VERSION,
  weightsHash: SHA256_HEX,
  intendedUse: v.picklist(INTENDED_USES, `intendedUse must be one of ${INTENDED_USES.join(', ')}`),
  riskClass: v.picklist(RISK_CLASSES, `riskClass must be one of ${RISK_CLASSES.join(', ')}`),
  spec: v.optional(JSON_DOCUMENT, {}),
});
/** A registration as the service records it: the public input, and the origin the service sets. */
export type ModelRegistration = v.InferOutput<typeof MODEL_REGISTRATION> & { readonly origin?: ModelOrigin };

/** Schema names of the off-ledger documents. */
export const MODEL_SPEC_SCHEMA = 'custos/model-version/v1';
export const CHANGE_PLAN_SCHEMA = 'custos/change-plan/v1';
export const EVALUATION_SCHEMA = 'custos/model-evaluation/v1';

/** One acceptance criterion: a metric and its bounds (inclusive; at least one). */
const ACCEPTANCE = v.pipe(
  v.object({ metric: METRIC_NAME, min: v.optional(FINITE), max: v.optional(FINITE) }),
  v.check((a) => a.min !== undefined || a.max !== undefined, 'an acceptance metric needs min, max or both'),
  v.check((a) => a.min === undefined || a.max === undefined || a.min <= a.max, 'min must not exceed max'),
);

/**
 * A change control plan (PCCP) for one model line: the modification types it allows, the data
 * constraints a training run under it must meet, and the acceptance metrics with their bounds.
 */
export const CHANGE_PLAN = v.object({
  planId: PLAN_ID,
  model: MODEL_NAME,
  modifications: v.pipe(
    v.array(v.picklist(MODIFICATION_TYPES, `a modification is one of ${MODIFICATION_TYPES.join(', ')}`)),
    v.minLength(1),
    v.check((xs) => new Set(xs).size === xs.length, 'a modification is listed twice'),
  ),
  dataConstraints: v.optional(
    v.object({
      /** The dataset types a run under the plan may train on. */
      datasetTypes: v.optional(v.pipe(v.array(v.picklist(PLAN_DATASET_TYPES)), v.minLength(1))),
      /** The purposes of use a run under the plan may train under. */
      purposes: v.optional(v.pipe(v.array(re(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'expected a purpose code such as HRESCH')), v.minLength(1))),
      /** In words (off-ledger only). */
      description: v.optional(TEXT),
    }),
    {},
  ),
  acceptance: v.pipe(
    v.array(ACCEPTANCE),
    v.minLength(1),
    v.maxLength(MAX_METRICS),
    v.check((xs) => new Set(xs.map((a) => a.metric)).size === xs.length, 'a metric is listed twice'),
  ),
  description: v.optional(TEXT),
});
export type ChangePlan = v.InferOutput<typeof CHANGE_PLAN>;

/** Evaluation metrics of a training run: metric name → finite number. */
export const METRICS = v.pipe(
  v.custom<Record<string, unknown>>((x) => isRecord(x), 'expected a JSON object of metrics, e.g. {"auroc": 0.93}'),
  v.record(METRIC_NAME, FINITE),
  v.check((m) => Object.keys(m).length <= MAX_METRICS, `at most ${MAX_METRICS} metrics`),
);

/** What a training run under a plan declares (the `changeControl` of a training request). */
export const CHANGE_CONTROL = v.object({
  plan: PLAN_ID,
  modification: v.picklist(MODIFICATION_TYPES, `modification must be one of ${MODIFICATION_TYPES.join(', ')}`),
  metrics: METRICS,
});
export type ChangeControl = v.InferOutput<typeof CHANGE_CONTROL>;

/** @throws {ValidationError} VALIDATION_FAILED */
export function parseModelRegistration(input: unknown, origin?: ModelOrigin): ModelRegistration {
  const r = parseWith(MODEL_REGISTRATION, input, 'model registration');
  return origin === undefined ? r : { ...r, origin: parseWith(MODEL_ORIGIN, origin, 'model origin', 'origin') };
}
/** @throws {ValidationError} VALIDATION_FAILED */
export function parseChangePlan(input: unknown): ChangePlan {
  return parseWith(CHANGE_PLAN, input, 'change control plan');
}

/** One metric that failed its plan's bounds (or is missing). */
export interface MetricFailure {
  readonly metric: string;
  readonly value?: number;
  readonly min?: number;
  readonly max?: number;
}

/** The result of checking a training run against a plan. */
export interface PlanEvaluation {
  readonly outcome: PlanCheck;
  readonly failures: readonly MetricFailure[];
}

/**
 * Checks a training run against its plan, in this order: the modification type is allowed, the
 * data meets the constraints, every acceptance metric is reported and within its bounds
 * (inclusive). Metrics the plan does not name are recorded but not judged.
 */
export function evaluateChangePlan(plan: ChangePlan, run: { modification: string; metrics: Readonly<Record<string, number>>; datasetType?: string; purpose?: string }): PlanEvaluation {
  if (!(plan.modifications as readonly string[]).includes(run.modification)) return { outcome: 'MODIFICATION_NOT_ALLOWED', failures: [] };
  const dc = plan.dataConstraints;
  if (
    (dc.datasetTypes && (run.datasetType === undefined || !(dc.datasetTypes as readonly string[]).includes(run.datasetType))) ||
    (dc.purposes && (run.purpose === undefined || !dc.purposes.includes(run.purpose)))
  ) {
    return { outcome: 'DATA_CONSTRAINT_NOT_MET', failures: [] };
  }
  const missing: MetricFailure[] = [];
  const out: MetricFailure[] = [];
  for (const a of plan.acceptance) {
    const value = Object.hasOwn(run.metrics, a.metric) ? run.metrics[a.metric] : undefined;
    const bounds = { ...(a.min === undefined ? {} : { min: a.min }), ...(a.max === undefined ? {} : { max: a.max }) };
    if (value === undefined) missing.push({ metric: a.metric, ...bounds });
    else if ((a.min !== undefined && value < a.min) || (a.max !== undefined && value > a.max)) out.push({ metric: a.metric, value, ...bounds });
  }
  if (missing.length > 0) return { outcome: 'METRIC_MISSING', failures: missing };
  if (out.length > 0) return { outcome: 'METRIC_OUT_OF_BOUNDS', failures: out };
  return { outcome: 'WITHIN_BOUNDS', failures: [] };
}

// ---- the registry, folded from the log ----------------------------------------------------------

/** Who wrote an entry, and where it is. */
export interface EntryRef {
  readonly index: number;
  readonly time: string;
  readonly actor: string;
  readonly role: string;
}

/** One registered version, as the log has it. */
export interface ModelVersionState {
  readonly model: string;
  readonly version: string;
  readonly weightsHash: string;
  readonly intendedUse: string;
  readonly riskClass: string;
  /** SHA-256 of the spec document (off-ledger). */
  readonly spec: string;
  readonly registered: EntryRef;
  readonly origin?: { readonly kind: string; readonly run?: number; readonly line?: string; readonly round?: number };
  /** Under a change control plan: its id, the evaluation document, the check's outcome, the modification. */
  readonly changeControl?: { readonly plan: string; readonly evaluation: string; readonly outcome: string; readonly modification: string };
  readonly approval?: EntryRef & { readonly basis: ApprovalBasis; readonly plan?: string; readonly planHash?: string };
  readonly retirement?: EntryRef & { readonly reason?: string };
  /** Indexes of the INFERENCE_EXECUTED entries made with this version, ascending. */
  readonly inferences: number[];
}

/** A committed change control plan. */
export interface ChangePlanState extends EntryRef {
  readonly planId: string;
  readonly model: string;
  /** SHA-256 of the plan document (off-ledger). */
  readonly hash: string;
  readonly modifications: readonly string[];
  readonly metrics: readonly string[];
}

/** A model line: its versions (in registration order) and its plans. */
export interface ModelLine {
  readonly model: string;
  readonly versions: Map<string, ModelVersionState>;
  readonly plans: Map<string, ChangePlanState>;
}

/** The registry: model lines by name, and every plan by id. */
export interface ModelRegistryState {
  readonly lines: Map<string, ModelLine>;
  readonly plans: Map<string, ChangePlanState>;
}

/** An empty registry. */
export function createModelRegistryState(): ModelRegistryState {
  return { lines: new Map(), plans: new Map() };
}

/** The event types the registry folds. */
export const MODEL_EVENT_TYPES = {
  registered: EVENT_TYPE.modelRegistered,
  approved: EVENT_TYPE.modelApproved,
  retired: EVENT_TYPE.modelRetired,
  plan: EVENT_TYPE.changePlanCommitted,
  refused: EVENT_TYPE.inferenceRefused,
} as const;

/** The status of a version: retired wins over approved. */
export function versionStatus(x: ModelVersionState | undefined): ModelState {
  if (!x) return 'unregistered';
  if (x.retirement) return 'retired';
  return x.approval ? 'approved' : 'registered';
}

const num = (p: Readonly<Record<string, unknown>>, k: string): number | undefined => (Number.isSafeInteger(p[k]) ? (p[k] as number) : undefined);

function lineOf(reg: ModelRegistryState, model: string): ModelLine {
  let line = reg.lines.get(model);
  if (!line) {
    line = { model, versions: new Map(), plans: new Map() };
    reg.lines.set(model, line);
  }
  return line;
}

/**
 * Applies one entry to the registry (in log order). Idempotent per entry: an entry applied twice
 * (the verified scan replays what this process committed) changes nothing the second time.
 * A malformed entry, or one that contradicts the registry (approving an unknown version), is
 * skipped: the service never writes one, and the log verifier reports malformed entries.
 */
export function applyModelEvent(reg: ModelRegistryState, index: number, e: LoggedEvent): void {
  const p = e.payload;
  const actor = stringField(p, 'actor');
  const role = stringField(p, 'role');
  if (e.type === EVENT_TYPE.inferenceExecuted) {
    const model = stringField(p, 'modelName');
    const version = stringField(p, 'modelVersion');
    const x = model === undefined || version === undefined ? undefined : reg.lines.get(model)?.versions.get(version);
    if (x) insertSorted(x.inferences, index);
    return;
  }
  if (actor === undefined || role === undefined) return;
  const ref: EntryRef = { index, time: e.time, actor, role };
  if (e.type === MODEL_EVENT_TYPES.plan) {
    const planId = stringField(p, 'planId');
    const model = stringField(p, 'model');
    const hash = stringField(isRecord(p['documents']) ? p['documents'] : undefined, 'plan');
    if (planId === undefined || model === undefined || hash === undefined || reg.plans.has(planId)) return;
    const strings = (k: string): string[] => (Array.isArray(p[k]) ? (p[k] as unknown[]).filter((x): x is string => typeof x === 'string') : []);
    const plan: ChangePlanState = { ...ref, planId, model, hash, modifications: strings('modifications'), metrics: strings('metrics') };
    reg.plans.set(planId, plan);
    lineOf(reg, model).plans.set(planId, plan);
    return;
  }
  const model = stringField(p, 'model');
  const version = stringField(p, 'version');
  if (model === undefined || version === undefined) return;
  if (e.type === MODEL_EVENT_TYPES.registered) {
    const line = lineOf(reg, model);
    if (line.versions.has(version)) return;
    const [weightsHash, intendedUse, riskClass] = ['weightsHash', 'intendedUse', 'riskClass'].map((k) => stringField(p, k));
    const spec = stringField(isRecord(p['documents']) ? p['documents'] : undefined, 'spec');
    if (!weightsHash || !intendedUse || !riskClass || !spec) return;
    const o = isRecord(p['origin']) ? p['origin'] : undefined;
    const originKind = stringField(o, 'kind');
    const cc = isRecord(p['changeControl']) ? p['changeControl'] : undefined;
    const [plan, outcome, modification] = ['plan', 'outcome', 'modification'].map((k) => stringField(cc, k));
    const evaluation = stringField(isRecord(p['documents']) ? p['documents'] : undefined, 'evaluation');
    line.versions.set(version, {
      model,
      version,
      weightsHash,
      intendedUse,
      riskClass,
      spec,
      registered: ref,
      ...(o && originKind
        ? {
            origin: {
              kind: originKind,
              ...(num(o, 'run') === undefined ? {} : { run: num(o, 'run')! }),
              ...(stringField(o, 'line') === undefined ? {} : { line: stringField(o, 'line')! }),
              ...(num(o, 'round') === undefined ? {} : { round: num(o, 'round')! }),
            },
          }
        : {}),
      ...(plan && outcome && modification && evaluation ? { changeControl: { plan, outcome, modification, evaluation } } : {}),
      inferences: [],
    });
    return;
  }
  const line = reg.lines.get(model);
  const x = line?.versions.get(version);
  if (!line || !x) return;
  if (e.type === MODEL_EVENT_TYPES.approved) {
    const basis = stringField(p, 'basis') as ApprovalBasis | undefined;
    if (x.approval || x.retirement || !basis || !APPROVAL_BASES.includes(basis)) return;
    const plan = stringField(p, 'plan');
    const planHash = stringField(isRecord(p['documents']) ? p['documents'] : undefined, 'plan');
    line.versions.set(version, { ...x, approval: { ...ref, basis, ...(plan === undefined ? {} : { plan }), ...(planHash === undefined ? {} : { planHash }) } });
  } else if (e.type === MODEL_EVENT_TYPES.retired) {
    if (x.retirement) return;
    const reason = stringField(p, 'reason');
    line.versions.set(version, { ...x, retirement: { ...ref, ...(reason === undefined ? {} : { reason }) } });
  }
}

function insertSorted(xs: number[], i: number): void {
  if (xs.length === 0 || xs[xs.length - 1]! < i) {
    xs.push(i);
    return;
  }
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < i) lo = mid + 1;
    else hi = mid;
  }
  if (xs[lo] !== i) xs.splice(lo, 0, i);
}

/** The model an inference declares (its model spec: name, version, weights digest). */
export interface DeclaredModel {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly weightsHash: string;
}

/** What the registry says about an inference's model. */
export type ModelCheck =
  /** Not governed: the line is not registered and registration is not required. */
  | { readonly kind: 'ungoverned' }
  /** A registered, approved, unretired version whose weights match. */
  | { readonly kind: 'approved'; readonly model: string; readonly version: string }
  | { readonly kind: 'refused'; readonly reason: ModelRefusal; readonly state: ModelState; readonly registeredWeightsHash?: string };

/**
 * Whether an inference may run under the model it declares. A model whose line has no registered
 * version is not governed (backward compatibility) unless `requireRegistered`; a governed model
 * must be a registered version (else MODEL_NOT_APPROVED), with the registered weights digest (else
 * MODEL_DIGEST_MISMATCH), approved and not retired (else MODEL_NOT_APPROVED).
 */
export function checkInferenceModel(line: ModelLine | undefined, declared: DeclaredModel, requireRegistered: boolean): ModelCheck {
  const governed = line !== undefined && line.versions.size > 0;
  if (!governed && !requireRegistered) return { kind: 'ungoverned' };
  const x = line?.versions.get(declared.modelVersion);
  if (!x) return { kind: 'refused', reason: 'MODEL_NOT_APPROVED', state: 'unregistered' };
  if (x.weightsHash !== declared.weightsHash.toLowerCase()) return { kind: 'refused', reason: 'MODEL_DIGEST_MISMATCH', state: versionStatus(x), registeredWeightsHash: x.weightsHash };
  const state = versionStatus(x);
  if (state !== 'approved') return { kind: 'refused', reason: 'MODEL_NOT_APPROVED', state };
  return { kind: 'approved', model: x.model, version: x.version };
}

/** A copy of `line` whose version records can be replaced without touching the original (the batch overlay). */
export function copyLine(line: ModelLine): ModelLine {
  return { model: line.model, versions: new Map(line.versions), plans: new Map(line.plans) };
}
