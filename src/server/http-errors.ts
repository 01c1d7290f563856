/**
 * The one mapping from errors to HTTP: every error body is `{ error: { code, message, details? } }`
 * with the stable codes of docs/errors.md, and every status comes from the error registry
 * (`ERRORS` in src/core/errors.ts).
 * @module
 */
import { CustosError, ValidationError, httpStatusOf, type AnyErrorCode } from '../core/errors.js';

/** The JSON error body. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: unknown };
}

/** An error response: the registry's status for `code`, and the body. */
export function errorResponse(code: AnyErrorCode, message: string, details?: Record<string, unknown>): { status: number; body: ErrorBody } {
  return { status: httpStatusOf(code), body: { error: { code, message, ...(details ? { details } : {}) } } };
}

/** HTTP status for a Custos error. */
export function statusOf(err: CustosError): number {
  return httpStatusOf(err.code);
}

/** Maps any thrown value to a status and body. Foreign errors never leak their message. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof CustosError) {
    const details = err instanceof ValidationError && err.issues.length > 0 ? { ...err.details, issues: err.issues } : err.details;
    return { status: statusOf(err), body: { error: { code: err.code, message: err.message, ...(details ? { details } : {}) } } };
  }
  const e = err as { code?: string; statusCode?: number };
  // Fastify's own errors: body size, media type, malformed JSON. (Schemas are validated by the
  // routes themselves, with valibot: see route.ts.)
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return errorResponse('BODY_TOO_LARGE', 'request body too large');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errorResponse('UNSUPPORTED_MEDIA_TYPE', 'send application/json');
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && e.code?.startsWith('FST_'))) {
    return errorResponse('VALIDATION_FAILED', 'malformed JSON body');
  }
  if (e.statusCode === 429) return errorResponse('RATE_LIMITED', 'too many requests');
  return errorResponse('INTERNAL', 'internal error');
}
