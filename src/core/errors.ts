/**
 * Error classes with stable codes, and the one registry of what each code means at the edges: its
 * HTTP status and its CLI exit code ({@link ERRORS}). A code is public API: it is never renamed or
 * reused. Every code is listed in docs/errors.md with the same status and exit code (a test checks).
 * @module
 */

export type ValidationCode =
  | 'VALIDATION_FAILED'
  | 'CANONICAL_JSON_UNSUPPORTED_VALUE'
  | 'HASH_MALFORMED'
  | 'INDEX_OUT_OF_RANGE'
  | 'FILE_UNREADABLE'
  | 'KEY_PERMISSIONS'
  // issue 12: FHIR Consent import
  | 'FHIR_INVALID'
  | 'CONSENT_UNENFORCEABLE'
  // issue 14: model registry and change control
  | 'CHANGE_PLAN_REQUIRED'
  | 'CHANGE_PLAN_MISMATCH';

export type VerificationCode =
  | 'INCLUSION_PROOF_INVALID'
  | 'CONSISTENCY_PROOF_INVALID'
  | 'NOTE_MALFORMED'
  | 'NOTE_NO_VERIFIABLE_SIGNATURE'
  | 'NOTE_SIGNATURE_INVALID'
  | 'KEY_MALFORMED'
  | 'CHECKPOINT_MALFORMED'
  | 'LOG_VERIFICATION_FAILED'
  | 'LOG_INTEGRITY'
  | 'RECEIPT_INVALID'
  | 'WITNESS_QUORUM_NOT_MET'
  | 'WITNESS_CHECKPOINT_UNTRUSTED'
  // issue 11: offline evidence
  | 'BUNDLE_MALFORMED'
  | 'DSSE_SIGNATURE_INVALID'
  | 'STATEMENT_MISMATCH'
  | 'DOCUMENT_HASH_MISMATCH'
  | 'OPENING_MISMATCH'
  | 'LEAF_HASH_MISMATCH'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  // issue 11: monitors and pinned history
  | 'LOG_ROLLBACK'
  | 'LOG_FORK'
  | 'LOG_STALE'
  | 'LOG_TILES_INVALID'
  | 'LOG_UNREACHABLE'
  // issue 14: parity with the reference (custos selftest)
  | 'SELFTEST_FAILED'
  // issue 14: federated learning rounds
  | 'FL_SIGNATURE_INVALID'
  | 'FL_DP_ACCOUNTING_MISMATCH'
  // issue 14: import of the reference's ledgers
  | 'REFERENCE_LEDGER_INVALID'
  // issue 15: selective disclosure (attestations as SD-JWT)
  | 'ATTESTATION_MALFORMED'
  | 'ATTESTATION_SIGNATURE_INVALID'
  | 'DISCLOSURE_INVALID'
  | 'ATTESTATION_CHECKPOINT_MISMATCH'
  // issue 14: training cohorts
  | 'COHORT_PROOF_INVALID'
  | 'COHORT_PROOF_MALFORMED';

export type NotFoundCode =
  | 'DATA_DIR_NOT_FOUND'
  | 'ENTRY_NOT_FOUND'
  | 'CHECKPOINT_NOT_FOUND'
  | 'KEY_NOT_FOUND'
  | 'POLICY_NOT_FOUND'
  | 'RECEIPT_NOT_FOUND'
  | 'TOKEN_NOT_FOUND'
  | 'ROUTE_NOT_FOUND'
  | 'WITNESS_LOG_UNKNOWN'
  // issue 12: break-glass
  | 'REVIEW_NOT_FOUND'
  // issue 12: erasure of imported FHIR Consents (consent-followup)
  | 'DOCUMENT_ERASED'
  // issue 14: model registry and change control
  | 'MODEL_NOT_FOUND'
  | 'CHANGE_PLAN_NOT_FOUND'
  // issue 14: federated learning rounds
  | 'FL_SITE_UNKNOWN'
  // issue 15: selective disclosure (attestations as SD-JWT)
  | 'ATTESTATION_KEY_NOT_FOUND'
  // issue 14: training cohorts
  | 'COHORT_NOT_FOUND'
  | 'SUBJECT_NOT_FOUND';

export type ConflictCode =
  | 'DATA_DIR_EXISTS'
  | 'LOG_APPEND_CONFLICT'
  | 'LOG_LOCKED'
  | 'LOG_CLOSED'
  | 'POLICY_EXISTS'
  | 'POLICY_CHANGED'
  | 'SERVER_BUSY'
  | 'WITNESS_OLD_SIZE_MISMATCH'
  | 'WITNESS_FORK_DETECTED'
  // issue 12: FHIR Consent import (consent-wiring)
  | 'CONSENT_PATIENT_MISMATCH'
  // issue 12: break-glass
  | 'REVIEW_CLOSED'
  // issue 12: the audit trail as FHIR (custos export --format fhir)
  | 'EXPORT_DIR_NOT_EMPTY'
  // issue 14: model registry and change control
  | 'MODEL_EXISTS'
  | 'MODEL_ALREADY_APPROVED'
  | 'MODEL_VERSION_RETIRED'
  | 'CHANGE_PLAN_EXISTS'
  // issue 14: federated learning rounds
  | 'FL_SITE_EXISTS'
  | 'FL_SITE_INACTIVE'
  | 'FL_ROUND_OUT_OF_ORDER'
  | 'FL_LINE_CLOSED'
  | 'FL_DP_MISMATCH'
  // issue 14: import of the reference's ledgers
  | 'LEGACY_ALREADY_IMPORTED'
  // issue 14: training cohorts
  | 'COHORT_SUBJECT_PRESENT'
  | 'COHORT_SUBJECT_ABSENT';

export type ConsentCode =
  | 'CONSENT_DENIED'
  | 'CONSENT_NOT_REVOCABLE'
  | 'CONSENT_ALREADY_REVOKED'
  | 'POLICY_TAMPERED'
  // issue 14: an inference refused for its model (the INFERENCE_REFUSED event is on the log)
  | 'MODEL_NOT_APPROVED'
  | 'MODEL_DIGEST_MISMATCH'
  // issue 15: differential privacy
  | 'DP_BUDGET_EXHAUSTED'
  // issue 15 (review): a release to a consumer dp.json does not declare
  | 'DP_CONSUMER_UNKNOWN';

export type StoreCode = 'STORE_FAILURE' | 'STORE_CORRUPT' | 'STORE_SCHEMA_UNSUPPORTED';

export type AuthCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'ACTOR_MISMATCH'
  | 'RATE_LIMITED'
  | 'OPENING_RATE_LIMITED'
  // issue 12: break-glass
  | 'REVIEW_SEPARATION_OF_DUTIES';

export type InternalCode = 'INTERNAL';

export type ErrorCode = ValidationCode | VerificationCode | NotFoundCode | ConflictCode | ConsentCode | AuthCode | StoreCode | InternalCode;

/** Base class: every error Custos throws on purpose carries a stable `code`. */
export class CustosError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: C, message: string, options?: { details?: Record<string, unknown>; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details === undefined ? undefined : Object.freeze({ ...options.details });
    this.name = new.target.name;
  }
}

/** One problem found in an input, with a dot path to the offending field. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

/** Input that cannot be accepted. Nothing was written. */
export class ValidationError extends CustosError<ValidationCode> {
  readonly issues: readonly ValidationIssue[];
  constructor(code: ValidationCode, message: string, options?: { issues?: ValidationIssue[]; details?: Record<string, unknown>; cause?: unknown }) {
    super(code, message, options);
    this.issues = Object.freeze([...(options?.issues ?? [])]);
  }
}

/** A proof, signature, note or log that does not verify. */
export class VerificationError extends CustosError<VerificationCode> {}

/** Something that was asked for does not exist. */
export class NotFoundError extends CustosError<NotFoundCode> {}

/** The request conflicts with the current state (an existing log, another writer). */
export class ConflictError extends CustosError<ConflictCode> {}

/** A consent rule refused the operation (for CONSENT_DENIED, the refusal itself is on the log). */
export class ConsentError extends CustosError<ConsentCode> {}

/** The storage backend failed; the foreign error is kept as `cause`, never shown raw. */
export class StoreError extends CustosError<StoreCode> {}

/** Who is calling is unknown (401) or not allowed to do this (403). */
export class AuthError extends CustosError<AuthCode> {}

/** A bug in Custos. */
export class InternalError extends CustosError<InternalCode> {}

/** True if `err` is a CustosError with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof CustosError && err.code === code;
}

/** Codes that only the HTTP layer raises (the framework's refusals of a request before any handler). */
export type HttpOnlyCode = 'BODY_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE';

/** Every stable code. */
export type AnyErrorCode = ErrorCode | HttpOnlyCode;

/** What a code means at the edges. */
export interface ErrorSpec {
  /** The HTTP status of a response carrying this code. */
  readonly http: number;
  /** The CLI exit code, or null when the CLI never raises it (it would exit as INTERNAL). */
  readonly exit: number | null;
}

/** CLI exit codes, one per error class (docs/errors.md). */
export const EXIT = {
  ok: 0,
  validation: 2,
  notFound: 3,
  verification: 4,
  conflict: 5,
  store: 6,
  consent: 7,
  internal: 70,
} as const;

const validation = { http: 400, exit: EXIT.validation } as const;
const notFound = { http: 404, exit: EXIT.notFound } as const;
const verification = { http: 422, exit: EXIT.verification } as const;
const conflict = { http: 409, exit: EXIT.conflict } as const;
const store = { http: 503, exit: EXIT.store } as const;
const consent = { http: 403, exit: EXIT.consent } as const;

/**
 * The error registry: each code's HTTP status and CLI exit code. The exit code follows the class;
 * the status mostly does too, with the exceptions spelled out here: conditions that pass if the
 * caller retries later are 503 (LOG_LOCKED, SERVER_BUSY, LOG_INTEGRITY), and authentication
 * splits into 401, 403 and 429.
 */
export const ERRORS: { readonly [C in AnyErrorCode]: ErrorSpec } = {
  VALIDATION_FAILED: validation,
  CANONICAL_JSON_UNSUPPORTED_VALUE: validation,
  HASH_MALFORMED: validation,
  INDEX_OUT_OF_RANGE: validation,
  FILE_UNREADABLE: validation,
  KEY_PERMISSIONS: validation,
  INCLUSION_PROOF_INVALID: verification,
  CONSISTENCY_PROOF_INVALID: verification,
  NOTE_MALFORMED: verification,
  NOTE_NO_VERIFIABLE_SIGNATURE: verification,
  NOTE_SIGNATURE_INVALID: verification,
  KEY_MALFORMED: verification,
  CHECKPOINT_MALFORMED: verification,
  LOG_VERIFICATION_FAILED: verification,
  // The stored entries do not match the signed checkpoint: nothing is decided until it is repaired.
  LOG_INTEGRITY: { http: 503, exit: EXIT.verification },
  RECEIPT_INVALID: verification,
  DATA_DIR_NOT_FOUND: notFound,
  ENTRY_NOT_FOUND: notFound,
  CHECKPOINT_NOT_FOUND: notFound,
  KEY_NOT_FOUND: notFound,
  POLICY_NOT_FOUND: notFound,
  RECEIPT_NOT_FOUND: notFound,
  TOKEN_NOT_FOUND: notFound,
  ROUTE_NOT_FOUND: notFound,
  DATA_DIR_EXISTS: conflict,
  LOG_APPEND_CONFLICT: conflict,
  // Another writer held the lock past the busy timeout: the same request succeeds later.
  LOG_LOCKED: { http: 503, exit: EXIT.conflict },
  LOG_CLOSED: conflict,
  POLICY_EXISTS: conflict,
  POLICY_CHANGED: conflict,
  SERVER_BUSY: { http: 503, exit: EXIT.conflict },
  CONSENT_DENIED: consent,
  CONSENT_NOT_REVOCABLE: consent,
  CONSENT_ALREADY_REVOKED: consent,
  POLICY_TAMPERED: consent,
  STORE_FAILURE: store,
  STORE_CORRUPT: store,
  STORE_SCHEMA_UNSUPPORTED: store,
  UNAUTHENTICATED: { http: 401, exit: null },
  FORBIDDEN: { http: 403, exit: null },
  ACTOR_MISMATCH: { http: 403, exit: null },
  RATE_LIMITED: { http: 429, exit: null },
  OPENING_RATE_LIMITED: { http: 429, exit: null },
  INTERNAL: { http: 500, exit: EXIT.internal },
  BODY_TOO_LARGE: { http: 413, exit: null },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, exit: null },
  // issue 11: witness (C2SP tlog-cosignature, tlog-witness). The witness's refusals keep the
  // statuses tlog-witness gives them: 403 untrusted signature, 404 unknown origin, 409 conflicts.
  WITNESS_QUORUM_NOT_MET: verification,
  WITNESS_CHECKPOINT_UNTRUSTED: { http: 403, exit: EXIT.verification },
  WITNESS_LOG_UNKNOWN: notFound,
  WITNESS_OLD_SIZE_MISMATCH: conflict,
  WITNESS_FORK_DETECTED: conflict,
  // issue 11: offline evidence
  BUNDLE_MALFORMED: verification,
  DSSE_SIGNATURE_INVALID: verification,
  STATEMENT_MISMATCH: verification,
  DOCUMENT_HASH_MISMATCH: verification,
  OPENING_MISMATCH: verification,
  LEAF_HASH_MISMATCH: verification,
  CHECKPOINT_SIGNATURE_INVALID: verification,
  // issue 11: monitors and pinned history (each its own exit code, for cron: `custos monitor`, `verify --trusted-checkpoint`)
  LOG_ROLLBACK: { http: 422, exit: 10 },
  LOG_FORK: { http: 422, exit: 11 },
  LOG_STALE: { http: 422, exit: 12 },
  LOG_TILES_INVALID: { http: 422, exit: 13 },
  LOG_UNREACHABLE: { http: 502, exit: 14 },
  // issue 12: FHIR Consent import (the consent engine). 422 as a FHIR server answers a resource that
  // is JSON but breaks the FHIR definitions, or that it cannot process; the CLI exits as validation.
  FHIR_INVALID: { http: 422, exit: EXIT.validation },
  CONSENT_UNENFORCEABLE: { http: 422, exit: EXIT.validation },
  // issue 12: FHIR Consent import (consent-wiring): a resource with the identifier of an imported
  // policy names another patient.
  CONSENT_PATIENT_MISMATCH: conflict,
  // issue 12: break-glass reviews. Nothing is written for any of them. A reviewer closing their own
  // break-glass is refused like a permission the caller lacks (403; over HTTP it is counted in a
  // SECURITY_ALERT); the CLI, which has no permission refusals of its own, exits 7 (a governance rule refused it).
  REVIEW_NOT_FOUND: notFound,
  REVIEW_CLOSED: conflict,
  REVIEW_SEPARATION_OF_DUTIES: { http: 403, exit: EXIT.consent },
  // issue 12: the audit trail as FHIR (custos export --format fhir)
  EXPORT_DIR_NOT_EMPTY: conflict,
  // issue 12: erasure of imported FHIR Consents (consent-followup): the exact bytes of an imported
  // resource were deleted by an ERASURE_PERFORMED event (the subject's erasure). 410 Gone, as FHIR
  // answers a read of a deleted resource; the CLI exits as not found.
  DOCUMENT_ERASED: { http: 410, exit: EXIT.notFound },
  // issue 14: parity with the reference. `custos selftest` failed a step: its own exit code (15),
  // for scripts that check an installation; the server never raises it (500 if it did).
  SELFTEST_FAILED: { http: 500, exit: 15 },
  // issue 14: model registry and change control. An inference refused for its model is 403 like a
  // consent denial, and like it is on the log (INFERENCE_REFUSED); the CLI gives each its own exit
  // code (20, 21) so a script tells a model refusal from a consent denial (7). Nothing is written
  // for the others.
  MODEL_NOT_APPROVED: { http: 403, exit: 20 },
  MODEL_DIGEST_MISMATCH: { http: 403, exit: 21 },
  MODEL_NOT_FOUND: notFound,
  MODEL_EXISTS: conflict,
  MODEL_ALREADY_APPROVED: conflict,
  MODEL_VERSION_RETIRED: conflict,
  CHANGE_PLAN_NOT_FOUND: notFound,
  CHANGE_PLAN_EXISTS: conflict,
  CHANGE_PLAN_REQUIRED: validation,
  CHANGE_PLAN_MISMATCH: validation,
  // issue 14: federated learning rounds (docs/federated.md). A refused round is logged as
  // FL_ROUND_REFUSED with the code as its reason (the error's details name the entry); a site
  // registration or retirement refused with FL_SITE_EXISTS, FL_SITE_UNKNOWN or FL_SITE_INACTIVE
  // writes nothing.
  FL_SITE_UNKNOWN: notFound,
  FL_SITE_EXISTS: conflict,
  FL_SITE_INACTIVE: conflict,
  FL_ROUND_OUT_OF_ORDER: conflict,
  FL_LINE_CLOSED: conflict,
  FL_DP_MISMATCH: conflict,
  FL_SIGNATURE_INVALID: verification,
  FL_DP_ACCOUNTING_MISMATCH: verification,
  // issue 14: import of the reference's ledgers (CLI only: `custos import reference-ledger`). A
  // defect in the ledger or its stores (details.defect, details.line); the ledger was imported
  // before. Nothing is written for either.
  REFERENCE_LEDGER_INVALID: verification,
  LEGACY_ALREADY_IMPORTED: conflict,
  // issue 15: differential privacy. A release would take a consumer past its privacy budget for the
  // period: 429 (the same request succeeds in a later period), nothing written; the CLI exits 7 (a
  // governance rule refused it).
  DP_BUDGET_EXHAUSTED: { http: 429, exit: EXIT.consent },
  // issue 15 (review): a release to a consumer that dp.json does not declare (consumers are
  // declared; ids are matched case-insensitively): refused like a governance rule, 403 / exit 7,
  // nothing written.
  DP_CONSUMER_UNKNOWN: consent,
  // issue 15: selective disclosure (attestations as SD-JWT; custos verify-presentation, docs/attestations.md)
  ATTESTATION_MALFORMED: verification,
  ATTESTATION_SIGNATURE_INVALID: verification,
  DISCLOSURE_INVALID: verification,
  ATTESTATION_CHECKPOINT_MISMATCH: verification,
  ATTESTATION_KEY_NOT_FOUND: notFound,
  // issue 14: training cohorts. A proof that does not verify, or a file that is not a proof; a run
  // that is not a training run with a cohort; a subject with no opening (unknown, or erased); and a
  // proof of the wrong kind asked for (inclusion of an absent subject, absence of an included one).
  COHORT_PROOF_INVALID: verification,
  COHORT_PROOF_MALFORMED: verification,
  COHORT_NOT_FOUND: notFound,
  SUBJECT_NOT_FOUND: notFound,
  COHORT_SUBJECT_PRESENT: conflict,
  COHORT_SUBJECT_ABSENT: conflict,
};

/** The HTTP status of a code (500 for anything not in the registry). */
export function httpStatusOf(code: string): number {
  return Object.hasOwn(ERRORS, code) ? ERRORS[code as AnyErrorCode].http : 500;
}

/** The CLI exit code of an error: its code's, or INTERNAL's for anything else. */
export function exitCodeOf(err: unknown): number {
  if (!(err instanceof CustosError) || !Object.hasOwn(ERRORS, err.code)) return EXIT.internal;
  return ERRORS[err.code as AnyErrorCode].exit ?? EXIT.internal;
}
