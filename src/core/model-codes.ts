/**
 * The codes and identifier patterns of the model registry (issue 14): what its events may carry.
 * Kept apart from core/models.ts so that the event registry (core/events.ts) can use them while
 * core/models.ts uses the event registry's names.
 * @module
 */
/** A model line's name: letters, digits, `. _ -` (it is logged as an identifier). */
export const MODEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A model version: letters, digits, `. _ + -` (semantic versions with build metadata fit). */
export const MODEL_VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
/** A change control plan's id, chosen by its author: lowercase letters, digits, `. _ -`. */
export const PLAN_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** An acceptance metric's name: lowercase letters, digits, `. _ -`, starting with a letter. */
export const METRIC_NAME_RE = /^[a-z][a-z0-9._-]{0,63}$/;

/**
 * Risk classes a registered version declares: the IMDRF SaMD categories (I to IV), the EU MDR
 * device classes (I, IIa, IIb, III; an AI system that is such a device is high-risk under the EU AI
 * Act), the FDA device classes, and `non_device` (software that is not a medical device).
 */
export const RISK_CLASSES = ['imdrf_i', 'imdrf_ii', 'imdrf_iii', 'imdrf_iv', 'eu_mdr_i', 'eu_mdr_iia', 'eu_mdr_iib', 'eu_mdr_iii', 'fda_i', 'fda_ii', 'fda_iii', 'non_device'] as const;
export type RiskClass = (typeof RISK_CLASSES)[number];

/** Intended uses a registered version declares (codes; the spec document says the rest in words). */
export const INTENDED_USES = ['diagnosis', 'diagnosis_aid', 'detection', 'screening', 'triage', 'prognosis', 'monitoring', 'treatment_planning', 'workflow', 'research'] as const;
export type IntendedUse = (typeof INTENDED_USES)[number];

/** Modification types a change control plan may allow (FDA PCCP "description of modifications"). */
export const MODIFICATION_TYPES = ['retrain', 'fine_tune', 'threshold_change', 'input_change', 'architecture_change'] as const;
export type ModificationType = (typeof MODIFICATION_TYPES)[number];

/** Why a version was retired. */
export const RETIRE_REASONS = ['superseded', 'safety', 'performance', 'withdrawn'] as const;
export type RetireReason = (typeof RETIRE_REASONS)[number];

/** How a version was approved: by a human with `model:approve`, or under a change control plan. */
export const APPROVAL_BASES = ['human', 'plan'] as const;
export type ApprovalBasis = (typeof APPROVAL_BASES)[number];

/** Where a version came from, when it was not registered by hand. */
export const ORIGIN_KINDS = ['training', 'fl'] as const;

/** The outcome of checking a training run against its change control plan. */
export const PLAN_CHECKS = ['WITHIN_BOUNDS', 'METRIC_OUT_OF_BOUNDS', 'METRIC_MISSING', 'MODIFICATION_NOT_ALLOWED', 'DATA_CONSTRAINT_NOT_MET', 'BASE_NOT_APPROVED'] as const;
export type PlanCheck = (typeof PLAN_CHECKS)[number];

/** Why an inference was refused for its model (the reason code of INFERENCE_REFUSED). */
export const MODEL_REFUSALS = ['MODEL_NOT_APPROVED', 'MODEL_DIGEST_MISMATCH'] as const;
export type ModelRefusal = (typeof MODEL_REFUSALS)[number];

/** The state of a version as an inference sees it. */
export const MODEL_STATES = ['unregistered', 'registered', 'approved', 'retired'] as const;
export type ModelState = (typeof MODEL_STATES)[number];
