/**
 * The event registry: for every event type Custos writes, every payload field and its class.
 *
 * A field is one of: a `code` from a configured vocabulary or a fixed list, an `identifier` with a
 * strict pattern, a `hash` (SHA-256 of an off-ledger document or artifact), a salted `commitment`
 * (the value and its salt stay off-ledger and can be erased), a `number`, a `time` or a `boolean`.
 * Nothing else may reach the log: {@link checkEventPayload} refuses an unknown field and a value
 * that is not of its field's class, so free text is refused wherever a caller tries to put it.
 * docs/log-format.md renders this table; a test keeps the two in step.
 * @module
 */
import { ValidationError, type ValidationIssue } from './errors.js';
import * as v from 'valibot';
import { PROVISION_PATH_RE } from './consent/evaluate.js';
import { POLICY_SOURCE_FORMATS } from './consent/policy.js';
import { CODING } from './consent/request.js';
import { PERMISSIONS, POLICY_ID_RE, REVIEW_OUTCOMES, type Vocabulary } from './vocabulary.js';
import { BREAK_GLASS_REFUSALS } from './break-glass.js';
import {
  APPROVAL_BASES,
  INTENDED_USES,
  METRIC_NAME_RE,
  MODEL_NAME_RE,
  MODEL_REFUSALS,
  MODEL_STATES,
  MODEL_VERSION_RE,
  MODIFICATION_TYPES,
  ORIGIN_KINDS,
  PLAN_CHECKS,
  PLAN_ID_RE,
  RETIRE_REASONS,
  RISK_CLASSES,
} from './model-codes.js';
import { FL_AGGREGATIONS, FL_ID_RE, FL_MODEL_NAME_RE, FL_MODEL_VERSION_RE, FL_PUBLIC_KEY_RE, FL_REFUSAL_REASONS, FL_SIGNATURE_RE } from './federated.js';
import { DELTA_SCALE, DP_MECHANISMS, EPSILON_SCALE, MAX_DELTA, MAX_EPSILON, toUnits } from './dp/accountant.js';
import { COHORT_EXCLUSION_REASONS } from './cohort.js';

/** The class of a payload field. */
export type FieldClass = 'code' | 'identifier' | 'hash' | 'commitment' | 'number' | 'time' | 'boolean';

/** One payload field: its class and the rule its value follows. */
export interface FieldSpec {
  readonly class: FieldClass;
  /** For docs: the vocabulary, list or pattern. */
  readonly rule: string;
  readonly optional?: boolean;
  readonly check: (value: unknown, vocab: Vocabulary) => boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** Actor ids (token names, JWT subjects) and other caller identifiers. */
export const ACTOR_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;
/** Compute backends, output names: lowercase identifiers. */
export const LOWER_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Operations a consent decision is made for. */
export const OPERATIONS = ['data_access', 'inference', 'training'] as const;
/** Decision reasons (docs/governance.md). */
export const DECISION_REASONS = ['PERMITTED', 'POLICY_NOT_FOUND', 'POLICY_TAMPERED', 'REVOKED', 'NOT_YET_VALID', 'EXPIRED', 'PURPOSE_NOT_ALLOWED', 'ROLE_NOT_ALLOWED', 'DENIED_BY_PROVISION'] as const;
/** Dataset types of a training run. */
export const DATASET_TYPES = ['identified', 'deidentified', 'synthetic'] as const;
/** How a dataset was made non-identifying (attested by the caller). */
export const ATTESTATION_METHODS = ['safe-harbor', 'expert-determination', 'synthetic-generator'] as const;
/** HTTP routes named in audit events: the method and the route template (never the concrete URL). */
const ROUTE_RE = /^(GET|POST|DELETE|PUT|PATCH|HEAD|OPTIONS) (\/[A-Za-z0-9/_:.*{}-]{0,200}|UNMATCHED)$/;
/** Stable error codes (docs/errors.md). */
const ERROR_CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** IHE BALP / DICOM codes of audit events (service/audit.ts). */
export const BALP_CODES = { type: ['rest', 'DCM#110113'], subtype: ['search', 'read'], action: ['E', 'R'], outcome: ['4'] } as const;

/** What an erasure erased: the openings of a value's commitments, or one provenance document. */
export const ERASURE_KINDS = ['subject', 'uri', 'external_ref', 'document'] as const;

/** issue 15: the kinds of fact an attestation (SD-JWT, core/attestation.ts) is issued for. */
export const ATTESTATION_KINDS = ['receipt', 'consent'] as const;

/** Why a witness raised an alarm (server/witnesses.ts): it refused, it stayed unreachable, or it answered a cosignature that does not verify. */
export const WITNESS_ALARM_REASONS = ['REFUSED', 'UNREACHABLE', 'BAD_COSIGNATURE'] as const;

const re = (r: RegExp, rule = r.source): Omit<FieldSpec, 'class'> => ({ rule, check: (x) => typeof x === 'string' && r.test(x) });
const oneOf = (list: readonly string[]): Omit<FieldSpec, 'class'> => ({ rule: list.join(', '), check: (x) => typeof x === 'string' && list.includes(x) });

const F = {
  purpose: { class: 'code', rule: 'purposes (HL7 v3 PurposeOfUse + configured)', check: (x, v) => typeof x === 'string' && v.purposes.has(x) },
  role: { class: 'code', rule: 'roles (the role table)', check: (x, v) => typeof x === 'string' && v.roles.has(x) },
  actor: { class: 'identifier', ...re(ACTOR_ID_RE) },
  policyId: { class: 'identifier', ...re(POLICY_ID_RE) },
  provision: { class: 'code', ...re(PROVISION_PATH_RE, 'provision path, e.g. provision.provisions[1]') },
  version: { class: 'number', rule: 'integer >= 1', check: (x) => Number.isSafeInteger(x) && (x as number) >= 1 },
  hash: { class: 'hash', ...re(HEX64, 'SHA-256, 64 lowercase hex') },
  commitment: { class: 'commitment', ...re(HEX64, 'SHA-256(salt + value), 64 lowercase hex; opening off-ledger, erasable') },
  time: { class: 'time', ...re(TIME_RE, 'RFC 3339 UTC, milliseconds') },
  boolean: { class: 'boolean', rule: 'true or false', check: (x) => typeof x === 'boolean' },
  lowerId: { class: 'identifier', ...re(LOWER_ID_RE) },
  tokenId: { class: 'identifier', ...re(/^[0-9a-f]{16}$/) },
  count: { class: 'number', rule: 'integer >= 0', check: (x) => Number.isSafeInteger(x) && (x as number) >= 0 },
  route: { class: 'code', ...re(ROUTE_RE, 'method and route template, e.g. GET /api/v1/export') },
  permission: { class: 'code', ...oneOf(PERMISSIONS) },
  errorCode: { class: 'code', ...re(ERROR_CODE_RE, 'error code (docs/errors.md)') },
  nonce: { class: 'identifier', ...re(/^[0-9a-f]{32}$/, '16 random bytes, hex') },
  clientHash: { class: 'hash', ...re(/^[0-9a-f]{32}$/, 'HMAC-SHA-256 of the client address (keyed, truncated), 32 hex') },
  balpType: { class: 'code', ...oneOf(BALP_CODES.type) },
  balpSubtype: { class: 'code', ...oneOf(BALP_CODES.subtype) },
  balpAction: { class: 'code', ...oneOf(BALP_CODES.action) },
  balpOutcome: { class: 'code', ...oneOf(BALP_CODES.outcome) },
  operation: { class: 'code', ...oneOf(OPERATIONS) },
  reason: { class: 'code', ...oneOf(DECISION_REASONS) },
  datasetType: { class: 'code', ...oneOf(DATASET_TYPES) },
  attestationMethod: { class: 'code', ...oneOf(ATTESTATION_METHODS) },
  erasureKind: { class: 'code', ...oneOf(ERASURE_KINDS) },
  witnessAlarmReason: { class: 'code', ...oneOf(WITNESS_ALARM_REASONS) },
  // issue 12 (FHIR Consent): the format a policy version was imported from, and the codings of a
  // decision's request (CODE or SYSTEM|CODE: a URI and a code, never free text).
  policySource: { class: 'code', ...oneOf(POLICY_SOURCE_FORMATS) },
  coding: { class: 'code', rule: 'a code, or a coding: a system URI and a code joined by a vertical bar', check: (x) => typeof x === 'string' && v.is(CODING, x) },
  justification: { class: 'code', rule: 'break-glass justification codes (docs/governance.md + configured)', check: (x, voc) => typeof x === 'string' && voc.justifications.has(x) },
  breakGlassPurpose: { class: 'code', rule: 'break-glass purposes (BTG, ETREAT + configured)', check: (x, voc) => typeof x === 'string' && voc.breakGlassPurposes.has(x) },
  breakGlassRefusal: { class: 'code', ...oneOf(BREAK_GLASS_REFUSALS) },
  reviewOutcome: { class: 'code', ...oneOf(REVIEW_OUTCOMES) },
  reviewReason: {
    class: 'code',
    rule: 'review reason codes (docs/governance.md + configured)',
    check: (x, voc) => typeof x === 'string' && (voc.reviewReasons.justified.has(x) || voc.reviewReasons.not_justified.has(x)),
  },
  // issue 14: the method of an explanation artifact (a code of the deployment's explanation vocabulary).
  explanationMethod: { class: 'code', rule: 'explanation methods (docs/governance.md + configured)', check: (x, voc) => typeof x === 'string' && voc.explanationMethods.has(x) },
  // issue 14: model registry and change control (core/models.ts)
  modelName: { class: 'identifier', ...re(MODEL_NAME_RE) },
  modelVersion: { class: 'identifier', ...re(MODEL_VERSION_RE) },
  planId: { class: 'identifier', ...re(PLAN_ID_RE) },
  metric: { class: 'code', ...re(METRIC_NAME_RE) },
  intendedUse: { class: 'code', ...oneOf(INTENDED_USES) },
  riskClass: { class: 'code', ...oneOf(RISK_CLASSES) },
  modification: { class: 'code', ...oneOf(MODIFICATION_TYPES) },
  retireReason: { class: 'code', ...oneOf(RETIRE_REASONS) },
  approvalBasis: { class: 'code', ...oneOf(APPROVAL_BASES) },
  planCheck: { class: 'code', ...oneOf(PLAN_CHECKS) },
  originKind: { class: 'code', ...oneOf(ORIGIN_KINDS) },
  modelRefusal: { class: 'code', ...oneOf(MODEL_REFUSALS) },
  modelState: { class: 'code', ...oneOf(MODEL_STATES) },
  // issue 14: federated learning rounds (core/federated.ts, docs/federated.md).
  flId: { class: 'identifier', ...re(FL_ID_RE, 'lowercase identifier (site id, model line)') },
  flPublicKey: { class: 'identifier', ...re(FL_PUBLIC_KEY_RE, 'Ed25519 public key, 32 bytes, base64 (public)') },
  flSignature: { class: 'identifier', ...re(FL_SIGNATURE_RE, 'Ed25519 signature, 64 bytes, base64 (docs/federated.md: the signed message)') },
  flAggregation: { class: 'code', ...oneOf(FL_AGGREGATIONS) },
  flRefusal: { class: 'code', ...oneOf(FL_REFUSAL_REASONS) },
  flModelName: { class: 'identifier', ...re(FL_MODEL_NAME_RE) },
  flModelVersion: { class: 'identifier', ...re(FL_MODEL_VERSION_RE) },
  positive: { class: 'number', rule: 'finite number > 0', check: (x) => typeof x === 'number' && Number.isFinite(x) && x > 0 },
  probability: { class: 'number', rule: 'number in (0, 1)', check: (x) => typeof x === 'number' && x > 0 && x < 1 },
  // issue 15: differential privacy. ε and δ as the decimals the caller gave (summed exactly: core/dp/accountant.ts).
  dpMechanism: { class: 'code', ...oneOf(DP_MECHANISMS) },
  dpUnit: { class: 'code', ...oneOf(['patient', 'actor', 'event']) },
  dpEpsilon: {
    class: 'number',
    rule: `ε: a decimal in (0, ${MAX_EPSILON}], at most ${EPSILON_SCALE} decimals`,
    check: (x) => typeof x === 'number' && ((u) => u !== undefined && u > 0n && u <= BigInt(MAX_EPSILON) * 10n ** BigInt(EPSILON_SCALE))(toUnits(x, EPSILON_SCALE)),
  },
  dpDelta: {
    class: 'number',
    rule: `δ: a decimal in [0, ${MAX_DELTA}], at most ${DELTA_SCALE} decimals`,
    check: (x) => typeof x === 'number' && ((u) => u !== undefined && u <= toUnits(MAX_DELTA, DELTA_SCALE)!)(toUnits(x, DELTA_SCALE)),
  },
  // issue 14: why a subject was left out of a training cohort.
  cohortExclusion: { class: 'code', ...oneOf(COHORT_EXCLUSION_REASONS) },
  httpStatus: {
    class: 'number',
    rule: 'HTTP status code (100-599), or 0 when none was received',
    check: (x) => Number.isSafeInteger(x) && ((x as number) === 0 || ((x as number) >= 100 && (x as number) <= 599)),
  },
  // issue 15: selective disclosure (attestations as SD-JWT, docs/attestations.md)
  attestationKind: { class: 'code', ...oneOf(ATTESTATION_KINDS) },
  jwsAlg: { class: 'code', ...oneOf(['EdDSA']) },
  publicKey: { class: 'identifier', ...re(/^[A-Za-z0-9_-]{43}$/, 'an Ed25519 public key, base64url of 32 bytes (public key material)') },
} satisfies Record<string, FieldSpec>;

const opt = (f: FieldSpec): FieldSpec => ({ ...f, optional: true });

const BALP = { 'balp.type': F.balpType, 'balp.subtype': opt(F.balpSubtype), 'balp.action': F.balpAction, 'balp.outcome': opt(F.balpOutcome) };

/**
 * The request attributes of a decision beyond purpose and role (issue 12), as codings; the data's
 * time as a time. The actor reference is never logged (the decision names the provision path).
 */
const REQUEST = {
  'request.action': opt(F.coding),
  'request.class': opt(F.coding),
  'request.code': opt(F.coding),
  'request.securityLabels[]': F.coding,
  'request.dataTime': opt(F.time),
};
/** A policy version imported from FHIR: its format and the hash of the resource's exact bytes. */
const FHIR_SOURCE = { source: opt(F.policySource), 'documents.fhir': opt(F.hash) };

/** Who acted, on every governance and token event. */
const WHO = { actor: F.actor, role: F.role };
const DATASET = { 'dataset.uri': F.commitment, 'dataset.digest': F.hash, 'dataset.type': F.datasetType };
const TRAINING_BASIS = {
  'consents[].policyId': F.policyId,
  'consents[].policyVersion': F.version,
  'consents[].policyHash': F.hash,
  'consents[].provision': F.provision,
  'attestation.method': opt(F.attestationMethod),
  'attestation.attestor': opt(F.actor),
  'attestation.document': opt(F.hash),
};

/** The name of every event type Custos writes: the one list (the keys of {@link EVENT_REGISTRY}). */
export const EVENT_TYPE = Object.freeze({
  consentCreated: 'CONSENT_CREATED',
  consentRevoked: 'CONSENT_REVOKED',
  consentUpdated: 'CONSENT_UPDATED',
  consentDenied: 'CONSENT_DENIED',
  dataAccessed: 'DATA_ACCESSED',
  inferenceExecuted: 'INFERENCE_EXECUTED',
  trainingExecuted: 'TRAINING_EXECUTED',
  erasure: 'ERASURE_PERFORMED',
  tokenCreated: 'TOKEN_CREATED',
  tokenRevoked: 'TOKEN_REVOKED',
  auditEvent: 'AUDIT_EVENT',
  auditQuery: 'AUDIT_QUERY',
  auditRead: 'AUDIT_READ',
  patientDataOpened: 'PATIENT_DATA_OPENED',
  securityAlert: 'SECURITY_ALERT',
  witnessAlarm: 'WITNESS_ALARM',
  breakGlass: 'BREAK_GLASS',
  breakGlassReviewed: 'BREAK_GLASS_REVIEWED',
  // issue 14: model registry and change control
  modelRegistered: 'MODEL_REGISTERED',
  modelApproved: 'MODEL_APPROVED',
  modelRetired: 'MODEL_RETIRED',
  changePlanCommitted: 'CHANGE_PLAN_COMMITTED',
  inferenceRefused: 'INFERENCE_REFUSED',
  // issue 14: federated learning rounds
  flSiteRegistered: 'FL_SITE_REGISTERED',
  flSiteRetired: 'FL_SITE_RETIRED',
  flRound: 'FL_ROUND',
  flRoundRefused: 'FL_ROUND_REFUSED',
  // issue 14: import of the reference's ledgers
  legacyEvent: 'LEGACY_EVENT',
  legacyImportCompleted: 'LEGACY_IMPORT_COMPLETED',
  // issue 15: differential privacy
  dpRelease: 'DP_RELEASE',
  // issue 15: selective disclosure (attestations as SD-JWT)
  attestationKeyPublished: 'ATTESTATION_KEY_PUBLISHED',
  attestationIssued: 'ATTESTATION_ISSUED',
} as const);

/** A registered event type name. */
export type EventType = (typeof EVENT_TYPE)[keyof typeof EVENT_TYPE];

/**
 * The governance overlay's event types (consent, decisions, erasure): the only events whose
 * `documents` commit off-ledger documents.
 */
export const GOVERNANCE_EVENT = Object.freeze({
  consentCreated: EVENT_TYPE.consentCreated,
  consentRevoked: EVENT_TYPE.consentRevoked,
  consentUpdated: EVENT_TYPE.consentUpdated,
  consentDenied: EVENT_TYPE.consentDenied,
  dataAccessed: EVENT_TYPE.dataAccessed,
  inferenceExecuted: EVENT_TYPE.inferenceExecuted,
  trainingExecuted: EVENT_TYPE.trainingExecuted,
  erasure: EVENT_TYPE.erasure,
  breakGlass: EVENT_TYPE.breakGlass,
  breakGlassReviewed: EVENT_TYPE.breakGlassReviewed,
  // issue 14: model registry and change control (their documents: spec, plan, evaluation)
  modelRegistered: EVENT_TYPE.modelRegistered,
  modelApproved: EVENT_TYPE.modelApproved,
  modelRetired: EVENT_TYPE.modelRetired,
  changePlanCommitted: EVENT_TYPE.changePlanCommitted,
  inferenceRefused: EVENT_TYPE.inferenceRefused,
  // issue 14: federated learning (a final round commits its model spec document)
  flSiteRegistered: EVENT_TYPE.flSiteRegistered,
  flSiteRetired: EVENT_TYPE.flSiteRetired,
  flRound: EVENT_TYPE.flRound,
  flRoundRefused: EVENT_TYPE.flRoundRefused,
} as const);

/** Token events (reserved: the generic append refuses them). */
export const TOKEN_EVENT = Object.freeze({ created: EVENT_TYPE.tokenCreated, revoked: EVENT_TYPE.tokenRevoked } as const);

/** Audit trail events written by the service (reserved: `custos append` refuses them). */
export const AUDIT_TRAIL_EVENT = Object.freeze({
  query: EVENT_TYPE.auditQuery,
  read: EVENT_TYPE.auditRead,
  opened: EVENT_TYPE.patientDataOpened,
  securityAlert: EVENT_TYPE.securityAlert,
} as const);

/** issue 15: statistics released with differential privacy (reserved: `custos append` refuses them). */
export const DP_EVENT = Object.freeze({ release: EVENT_TYPE.dpRelease } as const);

/** Witness events written by the log's witness collector (reserved: `custos append` refuses them). */
export const WITNESS_EVENT = Object.freeze({ alarm: EVENT_TYPE.witnessAlarm } as const);

/** issue 14: federated learning events, written by the service (reserved: `custos append` refuses them). */
export const FL_EVENT = Object.freeze({
  siteRegistered: EVENT_TYPE.flSiteRegistered,
  siteRetired: EVENT_TYPE.flSiteRetired,
  round: EVENT_TYPE.flRound,
  roundRefused: EVENT_TYPE.flRoundRefused,
} as const);
/** issue 15: attestation events, written by service/attestations.ts (reserved: `custos append` refuses them). */
export const ATTESTATION_EVENT = Object.freeze({ keyPublished: EVENT_TYPE.attestationKeyPublished, issued: EVENT_TYPE.attestationIssued } as const);

/**
 * issue 14: events written by `custos import reference-ledger` (reserved: `custos append` refuses
 * them). A LEGACY_EVENT's `documents` commit off-ledger documents, checked by `custos verify`.
 */
export const LEGACY_EVENT = Object.freeze({ event: EVENT_TYPE.legacyEvent, completed: EVENT_TYPE.legacyImportCompleted } as const);
/**
 * The codes LEGACY_EVENT.legacyType takes: GENESIS, the event types the reference writes
 * (../shared/seed_py/governance_overlay.py: CONSENT_CREATED, CONSENT_REVOKED, DATA_ACCESSED,
 * CONSENT_DENIED, INFERENCE_EXECUTED, TRAINING_EXPERIMENT_EXECUTED), and UNRECOGNIZED for any other
 * type a file names (a file-controlled string, which could carry anything, never reaches the log).
 */
export const LEGACY_TYPES = Object.freeze([
  'GENESIS',
  'CONSENT_CREATED',
  'CONSENT_REVOKED',
  'DATA_ACCESSED',
  'CONSENT_DENIED',
  'INFERENCE_EXECUTED',
  'TRAINING_EXPERIMENT_EXECUTED',
  'UNRECOGNIZED',
] as const);
/** The legacyType of a reference event type: itself when the reference writes it, else UNRECOGNIZED. */
export function legacyTypeOf(eventType: string): (typeof LEGACY_TYPES)[number] {
  return eventType !== 'UNRECOGNIZED' && (LEGACY_TYPES as readonly string[]).includes(eventType) ? (eventType as (typeof LEGACY_TYPES)[number]) : 'UNRECOGNIZED';
}
/**
 * The reference's entry_id as LEGACY_EVENT.entryId: a UUID in canonical lowercase form (the
 * reference writes `str(uuid.uuid4())`). Any other entry_id is left off the log (the line's bytes,
 * off-ledger, still hold it).
 */
export const LEGACY_ENTRY_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Every event type and its fields. A path names a nested field with `.`, and an array element
 * with `[]`; arrays may be empty.
 */
export const EVENT_REGISTRY: Readonly<Record<string, Readonly<Record<string, FieldSpec>>>> = Object.freeze({
  [EVENT_TYPE.consentCreated]: {
    policyId: F.policyId,
    version: F.version,
    subject: F.commitment,
    externalRef: opt(F.commitment),
    'purposes[]': F.purpose,
    'roles[]': F.role,
    validFrom: F.time,
    validUntil: opt(F.time),
    revocable: F.boolean,
    ...WHO,
    'documents.policy': F.hash,
    ...FHIR_SOURCE,
  },
  [EVENT_TYPE.consentRevoked]: { policyId: F.policyId, version: F.version, previous: F.hash, ...WHO, 'documents.policy': F.hash, ...FHIR_SOURCE },
  // A new version of a policy imported from FHIR (a later resource with the same identifier).
  [EVENT_TYPE.consentUpdated]: {
    policyId: F.policyId,
    version: F.version,
    previous: F.hash,
    validFrom: F.time,
    validUntil: opt(F.time),
    ...WHO,
    'documents.policy': F.hash,
    source: F.policySource,
    'documents.fhir': F.hash,
  },
  [EVENT_TYPE.consentDenied]: {
    operation: F.operation,
    reason: F.reason,
    policyId: F.policyId,
    policyVersion: opt(F.version),
    policyHash: opt(F.hash),
    provision: opt(F.provision),
    ...WHO,
    purpose: F.purpose,
    'artifact.uri': opt(F.commitment),
    'artifact.digest': opt(F.hash),
    model: opt(F.hash),
    pipeline: opt(F.hash),
    'input.uri': opt(F.commitment),
    'input.digest': opt(F.hash),
    'dataset.uri': opt(F.commitment),
    'dataset.digest': opt(F.hash),
    'dataset.type': opt(F.datasetType),
    training: opt(F.hash),
    ...REQUEST,
    // Break-glass: the justification given, and why the request could not override the denial.
    justification: opt(F.justification),
    breakGlassRefusal: opt(F.breakGlassRefusal),
  },
  [EVENT_TYPE.dataAccessed]: {
    ...WHO,
    purpose: F.purpose,
    policyId: F.policyId,
    policyVersion: F.version,
    policyHash: F.hash,
    provision: F.provision,
    'artifact.uri': F.commitment,
    'artifact.digest': F.hash,
    'documents.policy': F.hash,
    ...REQUEST,
    // A break-glass justification given with a request consent permitted anyway.
    justification: opt(F.justification),
  },
  [EVENT_TYPE.inferenceExecuted]: {
    ...WHO,
    purpose: F.purpose,
    policyId: F.policyId,
    policyVersion: F.version,
    provision: F.provision,
    'input.uri': F.commitment,
    'input.digest': F.hash,
    'outputs[].name': F.lowerId,
    'outputs[].digest': F.hash,
    'documents.receipt': F.hash,
    'documents.policy': F.hash,
    'documents.pipeline': F.hash,
    'documents.model': F.hash,
    ...REQUEST,
    // issue 14: explanation artifacts, in order: the method, the output explained, the artifact's
    // digest; the explanations document (URI commitments, parameters) is committed by its hash.
    'explanations[].method': F.explanationMethod,
    'explanations[].output': F.lowerId,
    'explanations[].digest': F.hash,
    'documents.explanations': opt(F.hash),
    // issue 14: the registered version the inference ran under (absent when the model's line is not registered).
    modelName: opt(F.modelName),
    modelVersion: opt(F.modelVersion),
  },
  [EVENT_TYPE.trainingExecuted]: {
    ...WHO,
    purpose: F.purpose,
    ...DATASET,
    ...TRAINING_BASIS,
    computeBackend: F.lowerId,
    'documents.training': F.hash,
    'documents.modelBefore': F.hash,
    'documents.modelAfter': F.hash,
    // issue 14: training cohorts. The root of the sorted Merkle tree over the included subject
    // commitments, their number, the subjects left out counted by reason, and the cohort document
    // (the sorted commitments) by its hash.
    'cohort.root': opt(F.hash),
    'cohort.size': opt(F.count),
    'cohort.excluded[].reason': F.cohortExclusion,
    'cohort.excluded[].count': F.count,
    'documents.cohort': opt(F.hash),
  },
  // `erasedDocuments[]` (issue 12): a subject's erasure also deletes the exact bytes of every FHIR
  // Consent imported for its policies (all versions); their hashes are listed here.
  [EVENT_TYPE.erasure]: { kind: F.erasureKind, 'commitments[]': F.commitment, document: opt(F.hash), 'erasedDocuments[]': F.hash, ...WHO },
  [EVENT_TYPE.tokenCreated]: { tokenId: F.tokenId, tokenName: F.actor, tokenRole: F.role, secretDigest: F.hash, ...WHO },
  [EVENT_TYPE.tokenRevoked]: { tokenId: F.tokenId, tokenName: F.actor, tokenRole: F.role, ...WHO },
  [EVENT_TYPE.auditEvent]: { resource: F.actor, practitioner: F.actor, contentHash: F.hash },
  [EVENT_TYPE.auditQuery]: {
    ...WHO,
    route: F.route,
    permission: F.permission,
    ...BALP,
    'range.from': opt(F.count),
    'range.to': opt(F.count),
    count: opt(F.count),
    queryHash: opt(F.hash),
    // issue 12: a search about one subject (GET /fhir/...?patient=) names its commitments, never the id.
    'commitments[]': F.commitment,
  },
  [EVENT_TYPE.auditRead]: { ...WHO, route: F.route, permission: F.permission, ...BALP, eventIndex: opt(F.count), policyId: opt(F.policyId), nonce: F.nonce },
  [EVENT_TYPE.patientDataOpened]: {
    ...WHO,
    purpose: F.purpose,
    route: F.route,
    permission: F.permission,
    ...BALP,
    eventIndex: F.count,
    'commitments[]': F.commitment,
    nonce: F.nonce,
  },
  [EVENT_TYPE.securityAlert]: {
    actor: opt(F.actor),
    role: opt({ ...F.role, rule: "role code (the credential's; may be outside the table when refused)", check: (x) => typeof x === 'string' && /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/.test(x) }),
    client: opt(F.clientHash),
    ...BALP,
    windowStart: F.time,
    windowEnd: F.time,
    count: F.count,
    'refusals[].code': F.errorCode,
    'refusals[].route': F.route,
    'refusals[].permission': opt(F.permission),
    'refusals[].count': F.count,
  },
  // The witness is named by its key name (public, chosen by its operator); sizes are tree sizes.
  [EVENT_TYPE.witnessAlarm]: {
    witness: F.actor,
    reason: F.witnessAlarmReason,
    status: F.httpStatus,
    checkpointSize: F.count,
    witnessSize: opt(F.count),
    attempts: F.count,
  },
  // An access consent denied, executed under break-glass. `reason` .. `provision` are the decision
  // it overrode (as on CONSENT_DENIED); the event type is the flag, and opens a review.
  [EVENT_TYPE.breakGlass]: {
    operation: F.operation,
    ...WHO,
    purpose: F.breakGlassPurpose,
    justification: F.justification,
    reason: F.reason,
    policyId: F.policyId,
    policyVersion: opt(F.version),
    policyHash: opt(F.hash),
    provision: opt(F.provision),
    'artifact.uri': F.commitment,
    'artifact.digest': F.hash,
    ...REQUEST,
  },
  // The review of the BREAK_GLASS entry at `breakGlass` (its leaf hash binds the exact entry).
  [EVENT_TYPE.breakGlassReviewed]: {
    breakGlass: F.count,
    breakGlassLeaf: { ...F.hash, rule: 'RFC 9162 leaf hash of the BREAK_GLASS entry, 64 lowercase hex' },
    outcome: F.reviewOutcome,
    reason: F.reviewReason,
    ...WHO,
  },
  // ---- issue 14: model registry and change control (docs/models.md) ----
  // A version of a model line: its weights digest, intended use and risk class (codes); the spec
  // document (free text, off-ledger) by its hash. A version made by a training run under a change
  // control plan names the plan, the modification, the outcome of the check and the evaluation
  // document (the metrics); one from a federated line names the line and round.
  [EVENT_TYPE.modelRegistered]: {
    model: F.modelName,
    version: F.modelVersion,
    weightsHash: F.hash,
    intendedUse: F.intendedUse,
    riskClass: F.riskClass,
    'origin.kind': opt(F.originKind),
    'origin.run': opt(F.count),
    'origin.line': opt(F.modelName),
    'origin.round': opt(F.count),
    'changeControl.plan': opt(F.planId),
    'changeControl.modification': opt(F.modification),
    'changeControl.outcome': opt(F.planCheck),
    ...WHO,
    'documents.spec': F.hash,
    'documents.evaluation': opt(F.hash),
  },
  // The approval of the version registered at entry `registered`: by a human (basis human), or
  // automatically under a change control plan (basis plan: the plan's id and document hash).
  [EVENT_TYPE.modelApproved]: {
    model: F.modelName,
    version: F.modelVersion,
    weightsHash: F.hash,
    registered: F.count,
    basis: F.approvalBasis,
    plan: opt(F.planId),
    ...WHO,
    'documents.plan': opt(F.hash),
  },
  [EVENT_TYPE.modelRetired]: { model: F.modelName, version: F.modelVersion, registered: F.count, reason: opt(F.retireReason), ...WHO },
  // A change control plan (PCCP) for a model line: the modification types it allows and the metrics
  // it bounds are on the log; the whole plan (bounds, data constraints, words) by its hash.
  [EVENT_TYPE.changePlanCommitted]: { planId: F.planId, model: F.modelName, 'modifications[]': F.modification, 'metrics[]': F.metric, ...WHO, 'documents.plan': F.hash },
  // An inference refused for its model (like CONSENT_DENIED, decided at sequencing time): the
  // reason, the version's state, the declared model (spec document hash, weights digest, and its
  // name and version when they are identifiers) and the registered digest on a mismatch.
  [EVENT_TYPE.inferenceRefused]: {
    operation: F.operation,
    reason: F.modelRefusal,
    state: F.modelState,
    ...WHO,
    purpose: F.purpose,
    policyId: F.policyId,
    modelName: opt(F.modelName),
    modelVersion: opt(F.modelVersion),
    weightsHash: F.hash,
    registeredWeightsHash: opt(F.hash),
    model: F.hash,
    pipeline: F.hash,
    'input.uri': F.commitment,
    'input.digest': F.hash,
    ...REQUEST,
  },
  // issue 14: federated learning. A site and its Ed25519 public key (public; `keyHash` is its SHA-256).
  [EVENT_TYPE.flSiteRegistered]: { site: F.flId, publicKey: F.flPublicKey, keyHash: F.hash, ...WHO },
  [EVENT_TYPE.flSiteRetired]: { site: F.flId, ...WHO },
  // A round of a model line: each site's update digest and its signature over the signed message
  // (docs/federated.md), the aggregation method, the DP parameters and the accountant's running
  // total, the global model's digest; a final round names the version the line ends in.
  [EVENT_TYPE.flRound]: {
    line: F.flId,
    round: F.version,
    'sites[].site': F.flId,
    'sites[].update': F.hash,
    'sites[].signature': F.flSignature,
    aggregation: F.flAggregation,
    globalModel: F.hash,
    'dp.clipNorm': opt(F.positive),
    'dp.noiseMultiplier': opt(F.positive),
    'dp.delta': opt(F.probability),
    'dp.rho': opt(F.positive),
    'dp.rhoTotal': opt(F.positive),
    'dp.epsilon': opt(F.positive),
    final: opt(F.boolean),
    'version.model': opt(F.flModelName),
    'version.version': opt(F.flModelVersion),
    'version.weights': opt(F.hash),
    'documents.modelSpec': opt(F.hash),
    ...WHO,
  },
  // A round refused: nothing of it is recorded but the line, the number, why, and the site at fault.
  [EVENT_TYPE.flRoundRefused]: { line: F.flId, round: F.version, reason: F.flRefusal, site: opt(F.flId), ...WHO },
  // issue 14: one line of a reference ledger (docs/import.md): its exact bytes off-ledger
  // (`documents.line`), its hashes, and the subject id and URIs it names as commitments.
  [EVENT_TYPE.legacyEvent]: {
    line: F.count,
    legacyType: { class: 'code', ...oneOf(LEGACY_TYPES) },
    entryId: opt({ class: 'identifier', ...re(LEGACY_ENTRY_ID_RE, "the reference's entry_id, a UUID in canonical lowercase form") }),
    legacyTime: opt(F.time),
    prevHash: opt(F.hash),
    entryHash: opt(F.hash),
    subject: opt(F.commitment),
    'uris[]': F.commitment,
    'documents.line': F.hash,
    'documents.manifest': opt(F.hash),
    'documents.policy': opt(F.hash),
  },
  // issue 14: the end of one import: the legacy head hash, the file's digest, what was imported.
  [EVENT_TYPE.legacyImportCompleted]: {
    head: F.hash,
    fileDigest: F.hash,
    lines: F.count,
    entries: F.count,
    firstIndex: F.count,
    manifests: F.count,
    policies: F.count,
    // issue 14: import over HTTP: who imported (the credential's actor and role); absent on a CLI import.
    actor: opt(F.actor),
    role: opt(F.role),
  },
  // issue 15: one release of statistics with differential privacy: who it was released to
  // (consumer) and by whom (actor, role), the hash of the query's canonical JSON, the unit of
  // privacy, the mechanism and the (ε, δ) it spent; the query and the released values are the
  // document `documents.release` (off-ledger). The budget is the sum of these events. The consumer
  // is one declared in dp.json, lowercased (the service refuses any other: DP_CONSUMER_UNKNOWN).
  [EVENT_TYPE.dpRelease]: {
    consumer: F.actor,
    queryHash: F.hash,
    unit: F.dpUnit,
    mechanism: F.dpMechanism,
    epsilon: F.dpEpsilon,
    delta: F.dpDelta,
    ...WHO,
    'documents.release': F.hash,
  },
  // issue 15: the attestation issuer key, published before its first use: its RFC 7638 thumbprint
  // (hex) and the public key itself.
  [EVENT_TYPE.attestationKeyPublished]: {
    keyId: { ...F.hash, rule: 'RFC 7638 JWK thumbprint (SHA-256) of the issuer key, 64 lowercase hex' },
    publicKey: F.publicKey,
    alg: F.jwsAlg,
  },
  // issue 15: an attestation issued (written before it is returned): what entry, under which key
  // (and its publication entry), and the SHA-256 of the SD-JWT as issued; never a claim's value.
  [EVENT_TYPE.attestationIssued]: {
    kind: F.attestationKind,
    eventIndex: F.count,
    keyId: { ...F.hash, rule: 'RFC 7638 JWK thumbprint (SHA-256) of the issuer key, 64 lowercase hex' },
    keyEvent: F.count,
    credential: { ...F.hash, rule: 'SHA-256 of the compact SD-JWT as issued (its salts make it unguessable), 64 lowercase hex' },
    ...WHO,
    route: F.route,
    permission: F.permission,
  },
} satisfies Record<EventType, Record<string, FieldSpec>>);

// Visits the leaves of a payload with their paths, arrays as `[]`; an empty array contributes its
// own path with the value `undefined` so its container is still checked for being declared. (A
// visitor, not a list of pairs: this runs for every event of every decision.)
function leaves(value: unknown, path: string, visit: (path: string, value: unknown) => void): void {
  if (Array.isArray(value)) {
    const p = `${path}[]`;
    for (let i = 0; i < value.length; i++) leaves(value[i], p, visit);
    if (value.length === 0) visit(p, undefined);
  } else if (value !== null && typeof value === 'object') {
    for (const k of Object.keys(value)) leaves((value as Record<string, unknown>)[k], path ? `${path}.${k}` : k, visit);
  } else visit(path, value);
}

// The required fields of each event type's spec outside arrays (array element fields exist only
// when the array is non-empty), computed once per spec.
const requiredOf = new WeakMap<Record<string, FieldSpec>, readonly string[]>();
function required(spec: Record<string, FieldSpec>): readonly string[] {
  let r = requiredOf.get(spec);
  if (!r) {
    r = Object.entries(spec)
      .filter(([path, f]) => !f.optional && !path.includes('[]'))
      .map(([path]) => path);
    requiredOf.set(spec, r);
  }
  return r;
}

/**
 * Checks an event payload against the registry.
 * @throws {ValidationError} VALIDATION_FAILED: an unregistered type, an undeclared field, a value not
 *   of its field's class, or a missing required field (every issue listed with its path)
 */
export function checkEventPayload(type: string, payload: unknown, vocab: Vocabulary): void {
  const spec = Object.hasOwn(EVENT_REGISTRY, type) ? EVENT_REGISTRY[type] : undefined;
  if (!spec) throw new ValidationError('VALIDATION_FAILED', `event type ${type} is not registered`, { issues: [{ path: 'type', message: 'unregistered event type' }] });
  const issues: ValidationIssue[] = [];
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    issues.push({ path: '$', message: 'payload must be an object' });
  } else {
    const seen = new Set<string>();
    leaves(payload, '', (path, value) => {
      const f = Object.hasOwn(spec, path) ? spec[path] : undefined;
      if (value === undefined && path.endsWith('[]')) {
        if (!Object.keys(spec).some((k) => k === path || k.startsWith(`${path}.`))) issues.push({ path, message: 'field not registered for this event type' });
      } else if (!f) issues.push({ path, message: 'field not registered for this event type' });
      else if (!f.check(value, vocab)) issues.push({ path, message: `expected ${f.class}: ${f.rule}` });
      else seen.add(path);
    });
    for (const path of required(spec)) if (!seen.has(path)) issues.push({ path, message: 'required' });
  }
  if (issues.length > 0) {
    throw new ValidationError('VALIDATION_FAILED', `invalid ${type} payload: ${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  }
}

/**
 * The one rule for the values of an operator-defined event type (one not in {@link EVENT_REGISTRY},
 * appended with `custos append --type T --payload-file`): every string, object key included, is an
 * identifier, a code or a hash (letters, digits, `. _ : @ / -`, no spaces, at most 128
 * characters); numbers and booleans are allowed; `null` is not. Free text has no place to go.
 */
export const OPERATOR_VALUE_RE = ACTOR_ID_RE;

/**
 * Checks the payload of an operator-defined event type against {@link OPERATOR_VALUE_RE}, at every
 * depth (keys too). Numbers must be finite.
 * @throws {ValidationError} VALIDATION_FAILED (every issue listed with its path)
 */
export function checkOperatorEventPayload(payload: unknown): void {
  const issues: ValidationIssue[] = [];
  const rule = `expected an identifier, code or hash (${OPERATOR_VALUE_RE.source}), a number or a boolean: free text never goes on the log`;
  const stack: { value: unknown; path: string }[] = [{ value: payload, path: '' }];
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) issues.push({ path: '$', message: 'payload must be an object' });
  while (stack.length > 0 && issues.length < 100) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (!OPERATOR_VALUE_RE.test(value)) issues.push({ path: path || '$', message: rule });
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) issues.push({ path: path || '$', message: 'expected a finite number' });
    } else if (typeof value === 'boolean') {
      // allowed
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
    } else if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        const at = path ? `${path}.${k}` : k;
        if (!OPERATOR_VALUE_RE.test(k)) issues.push({ path: at, message: `key: ${rule}` });
        else stack.push({ value: (value as Record<string, unknown>)[k], path: at });
      }
    } else {
      issues.push({ path: path || '$', message: `${value === null ? 'null' : typeof value} is not allowed: ${rule}` });
    }
  }
  if (issues.length > 0) {
    throw new ValidationError('VALIDATION_FAILED', `invalid operator-defined event payload: ${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  }
}

/**
 * The check for any event appended from outside the services: a registered type's payload against
 * the registry ({@link checkEventPayload}), any other type's against {@link checkOperatorEventPayload}.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function checkAppendPayload(type: string, payload: unknown, vocab: Vocabulary): void {
  if (Object.hasOwn(EVENT_REGISTRY, type)) checkEventPayload(type, payload, vocab);
  else checkOperatorEventPayload(payload);
}

/** An entry as read back from the log: its type and time, and its payload as a plain object. */
export interface LoggedEvent {
  readonly type: string;
  readonly time: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

/**
 * Parses the bytes (or text) of a stored entry into a {@link LoggedEvent}, or undefined when they
 * are not a JSON object with a string `type` (a malformed entry is the log verifier's finding).
 * The payload's fields are then read with the helpers below, never through a cast.
 */
export function parseLoggedEvent(bytes: Buffer | string): LoggedEvent | undefined {
  let e: unknown;
  try {
    e = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  return asLoggedEvent(e);
}

/** The {@link LoggedEvent} view of an already parsed entry, or undefined when it has no string `type`. */
export function asLoggedEvent(e: unknown): LoggedEvent | undefined {
  if (!isRecord(e) || typeof e['type'] !== 'string') return undefined;
  return { type: e['type'], time: typeof e['time'] === 'string' ? e['time'] : '', payload: isRecord(e['payload']) ? e['payload'] : {} };
}

/** A plain object (not an array, not null). */
export function isRecord(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** `payload[key]` when it is a string. */
export function stringField(payload: Readonly<Record<string, unknown>> | undefined, key: string): string | undefined {
  const x = payload?.[key];
  return typeof x === 'string' ? x : undefined;
}

/** `payload[key]` when it is a plain object. */
export function recordField(payload: Readonly<Record<string, unknown>> | undefined, key: string): Readonly<Record<string, unknown>> | undefined {
  const x = payload?.[key];
  return isRecord(x) ? x : undefined;
}
