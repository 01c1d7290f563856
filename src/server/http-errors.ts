/**
 * The one mapping from errors to HTTP: every error body is `{ error: { code, message, details? } }`
 * with the stable codes of docs/errors.md.
 * @module
 */
import {
  AuthError,
  ConflictError,
  ConsentError,
  CustosError,
  NotFoundError,
  StoreError,
  ValidationError,
  VerificationError,
} from '../core/errors.js';

/** The JSON error body. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: unknown };
}

/** HTTP status for a Custos error. */
export function statusOf(err: CustosError): number {
  if (err instanceof ValidationError) return 400;
  if (err instanceof AuthError) return err.code === 'UNAUTHENTICATED' ? 401 : err.code === 'RATE_LIMITED' || err.code === 'OPENING_RATE_LIMITED' ? 429 : 403;
  if (err instanceof ConsentError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return err.code === 'LOG_LOCKED' || err.code === 'SERVER_BUSY' ? 503 : 409;
  if (err instanceof VerificationError) return err.code === 'LOG_INTEGRITY' ? 503 : 422;
  if (err instanceof StoreError) return 503;
  return 500;
}

/** Maps any thrown value to a status and body. Foreign errors never leak their message. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof CustosError) {
    const details = err instanceof ValidationError && err.issues.length > 0 ? { ...err.details, issues: err.issues } : err.details;
    return { status: statusOf(err), body: { error: { code: err.code, message: err.message, ...(details ? { details } : {}) } } };
  }
  const e = err as { code?: string; statusCode?: number; validation?: { instancePath?: string; message?: string }[]; message?: string };
  // Fastify's own errors: body size, media type, malformed JSON, schema validation.
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { error: { code: 'BODY_TOO_LARGE', message: 'request body too large' } } };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send application/json' } } };
  }
  if (e.validation) {
    const issues = e.validation.map((v) => ({ path: (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || '$', message: v.message ?? 'invalid' }));
    return { status: 400, body: { error: { code: 'VALIDATION_FAILED', message: `invalid request: ${issues[0]?.path}: ${issues[0]?.message}`, details: { issues } } } };
  }
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && e.code?.startsWith('FST_'))) {
    return { status: 400, body: { error: { code: 'VALIDATION_FAILED', message: 'malformed JSON body' } } };
  }
  if (e.statusCode === 429) return { status: 429, body: { error: { code: 'RATE_LIMITED', message: 'too many requests' } } };
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } };
}
