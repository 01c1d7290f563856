/**
 * Validation at the boundary: `parseWith` turns unknown input into a typed value with a valibot
 * schema, or throws one ValidationError listing every problem with its dot path.
 * @module
 */
import * as v from 'valibot';
import { isWellFormedString, MAX_JSON_DEPTH } from '../canonical-json.js';
import { ValidationError, type ValidationIssue } from '../errors.js';

/** Where an input breaks the rules every input obeys, and how. */
export interface InputProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * Finds the first string (value or key) that is not well-formed UTF-16 (a lone surrogate has no
 * UTF-8 encoding, so it would be hashed as one byte string and stored as another), or the first
 * value nested deeper than `maxDepth` (nothing deeper canonicalizes). Iterative: a hostile depth
 * cannot exhaust the stack, and a cyclic object stops at `maxDepth`. Only arrays and plain objects
 * are walked; anything else is left to the schema.
 */
export function findInputProblem(input: unknown, maxDepth = MAX_JSON_DEPTH): InputProblem | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: input, path: '', depth: 0 }];
  const at = (base: string, key: string | number) => (base ? `${base}.${key}` : String(key));
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (!isWellFormedString(value)) return { path: path || '$', message: 'not well-formed Unicode (lone surrogate)' };
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    const isArray = Array.isArray(value);
    const proto = isArray ? Array.prototype : (Object.getPrototypeOf(value) as unknown);
    if (proto !== Array.prototype && proto !== Object.prototype && proto !== null) continue;
    if (depth >= maxDepth) return { path: path || '$', message: `nested deeper than ${maxDepth}` };
    if (isArray) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: (value as unknown[])[i], path: at(path, i), depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      if (!isWellFormedString(key)) return { path: at(path, key), message: 'key is not well-formed Unicode (lone surrogate)' };
      stack.push({ value: (value as Record<string, unknown>)[key], path: at(path, key), depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * Refuses input with a lone surrogate anywhere, or nested deeper than `maxDepth`: the one check
 * every door (HTTP body, query and path, CLI arguments and files, library calls) runs first.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function assertWellFormedInput(input: unknown, what: string, maxDepth = MAX_JSON_DEPTH): void {
  const problem = findInputProblem(input, maxDepth);
  if (problem) throw new ValidationError('VALIDATION_FAILED', `invalid ${what}: ${problem.path}: ${problem.message}`, { issues: [problem] });
}

/**
 * Parses `input` with `schema`; every issue is reported with its dot path. The input is first
 * checked with {@link assertWellFormedInput}, so no schema ever sees a lone surrogate.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseWith<S extends v.GenericSchema>(schema: S, input: unknown, what: string, prefix?: string): v.InferOutput<S> {
  const problem = findInputProblem(input);
  if (problem) {
    const path = prefix ? (problem.path === '$' ? prefix : `${prefix}.${problem.path}`) : problem.path;
    throw new ValidationError('VALIDATION_FAILED', `invalid ${what}: ${path}: ${problem.message}`, { issues: [{ path, message: problem.message }] });
  }
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issues: ValidationIssue[] = r.issues.map((i) => {
    const path = (i.path ?? []).map((p) => String(p.key)).join('.');
    return { path: prefix ? (path ? `${prefix}.${path}` : prefix) : path || '$', message: i.message };
  });
  const first = issues[0];
  throw new ValidationError('VALIDATION_FAILED', `invalid ${what}${first ? `: ${first.path}: ${first.message}` : ''}`, { issues });
}

/** Codes (purposes, roles, dataset types): a letter, then letters, digits, '_', '.', ':' or '-'. */
export const CODE = v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/, 'expected a code like TREAT'));
/** Identifiers of policies, actors, models: no spaces, at most 128 characters. */
export const ID = v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/, 'expected an identifier (letters, digits, . _ : @ / -)'));
/** A SHA-256 digest in hex. */
export const SHA256_HEX = v.pipe(
  v.string(),
  v.regex(/^[0-9a-fA-F]{64}$/, 'expected a SHA-256 digest (64 hex characters)'),
  v.transform((s) => s.toLowerCase()),
);
// Date.parse rolls impossible dates over (2030-02-30 becomes March 2, 24:00 the next day);
// RFC 3339 does not: check each field against the calendar.
function isRealTime(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})/.exec(s);
  if (!m || !Number.isFinite(Date.parse(s))) return false;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d); // not Date.UTC, which maps years 0-99 to 1900-1999
  return day.getUTCFullYear() === y && day.getUTCMonth() === mo - 1 && day.getUTCDate() === d && h <= 23 && mi <= 59 && se <= 59;
}

/** An RFC 3339 time with an offset or Z; normalized to UTC milliseconds. */
export const TIME = v.pipe(
  v.string(),
  v.regex(/^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/, 'expected an RFC 3339 time such as 2026-01-01T00:00:00Z'),
  v.check(isRealTime, 'not a real calendar time'),
  v.transform((s) => new Date(Date.parse(s)).toISOString()),
);
/** A string that is well-formed Unicode (no lone surrogate): it has exactly one UTF-8 encoding. */
export const WELL_FORMED = v.check<string, string>(isWellFormedString, 'not well-formed Unicode (lone surrogate)');

// No C0/C1 control characters (U+0000 cannot even be stored in a PostgreSQL text column).
const NO_CONTROLS = v.regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'contains a control character');

/**
 * A URI (any scheme): kept off-ledger, only its salted commitment is logged. No whitespace, no
 * control characters, no lone surrogates: the commitment is over the exact UTF-8 that is stored.
 */
export const URI = v.pipe(v.string(), v.minLength(1), v.maxLength(2048), WELL_FORMED, v.regex(/^[A-Za-z][A-Za-z0-9+.-]*:[^\s\u0000-\u001f\u007f-\u009f]+$/, 'expected a URI such as s3://bucket/key'));
/** An opaque identifier kept off-ledger (a pseudonymous subject id): 1-256 characters, no controls. */
export const OPAQUE_ID = v.pipe(v.string(), v.minLength(1), v.maxLength(256), WELL_FORMED, NO_CONTROLS);
