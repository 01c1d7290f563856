/**
 * Errors as FHIR R4 OperationOutcome: the same stable code and message as the JSON error body
 * (`{ error: { code, message, details } }`), for the routes under /fhir.
 * @module
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { CS } from './uris.js';

type IssueType = OperationOutcomeIssue['code'];

// The FHIR issue type of an HTTP status (http://hl7.org/fhir/issue-type, a required binding).
function issueType(status: number): IssueType {
  if (status === 400) return 'invalid';
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  // 410 Gone (DOCUMENT_ERASED: the bytes of an imported Consent were erased with its subject).
  if (status === 410) return 'deleted';
  if (status === 413) return 'too-costly';
  if (status === 429) return 'throttled';
  if (status === 503) return 'transient';
  if (status >= 500) return 'exception';
  return 'processing';
}

/** The error body as an OperationOutcome. */
export interface ErrorLike {
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}

/**
 * An OperationOutcome of an error: one issue per validation issue (or one for the error), each
 * carrying the stable code in `details.coding` (Custos error system) and, for a 403, the permission
 * the caller lacks as a second coding.
 */
export function toOperationOutcome(status: number, err: ErrorLike): OperationOutcome {
  const d = err.details !== null && typeof err.details === 'object' ? (err.details as Record<string, unknown>) : {};
  const permission = typeof d['permission'] === 'string' ? d['permission'] : undefined;
  const coding = [{ system: CS.error, code: err.code }, ...(permission ? [{ system: CS.permission, code: permission }] : [])];
  const issues = Array.isArray(d['issues']) ? (d['issues'] as unknown[]) : [];
  const one = (diagnostics: string, expression?: string): OperationOutcomeIssue => ({
    severity: status >= 500 ? 'fatal' : 'error',
    code: issueType(status),
    details: { coding, text: err.message },
    diagnostics,
    ...(expression ? { expression: [expression] } : {}),
  });
  const list = issues.flatMap((i) => {
    const x = i as { path?: unknown; message?: unknown };
    return typeof x.path === 'string' && typeof x.message === 'string' ? [one(`${x.path}: ${x.message}`, /^[A-Za-z_][A-Za-z0-9_.[\]]*$/.test(x.path) ? x.path : undefined)] : [];
  });
  return { resourceType: 'OperationOutcome', issue: list.length > 0 ? list : [one(err.message)] };
}
