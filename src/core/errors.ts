/**
 * Error classes with stable codes. A code is public API: it is never renamed or reused.
 * Every code is listed in docs/errors.md with its meaning, CLI exit code and HTTP status.
 * @module
 */

export type ValidationCode =
  | 'VALIDATION_FAILED'
  | 'CANONICAL_JSON_UNSUPPORTED_VALUE'
  | 'HASH_MALFORMED'
  | 'INDEX_OUT_OF_RANGE'
  | 'FILE_UNREADABLE'
  | 'KEY_PERMISSIONS';

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
  | 'RECEIPT_INVALID';

export type NotFoundCode = 'DATA_DIR_NOT_FOUND' | 'ENTRY_NOT_FOUND' | 'CHECKPOINT_NOT_FOUND' | 'KEY_NOT_FOUND' | 'POLICY_NOT_FOUND' | 'RECEIPT_NOT_FOUND' | 'TOKEN_NOT_FOUND' | 'ROUTE_NOT_FOUND';

export type ConflictCode = 'DATA_DIR_EXISTS' | 'LOG_APPEND_CONFLICT' | 'LOG_LOCKED' | 'LOG_CLOSED' | 'POLICY_EXISTS' | 'POLICY_CHANGED' | 'SERVER_BUSY';

export type ConsentCode = 'CONSENT_DENIED' | 'CONSENT_NOT_REVOCABLE' | 'CONSENT_ALREADY_REVOKED' | 'POLICY_TAMPERED';

export type StoreCode = 'STORE_FAILURE' | 'STORE_CORRUPT' | 'STORE_SCHEMA_UNSUPPORTED';

export type AuthCode = 'UNAUTHENTICATED' | 'FORBIDDEN' | 'ACTOR_MISMATCH' | 'RATE_LIMITED' | 'OPENING_RATE_LIMITED';

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
  constructor(
    code: ValidationCode,
    message: string,
    options?: { issues?: ValidationIssue[]; details?: Record<string, unknown>; cause?: unknown },
  ) {
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
