/**
 * Validation at the boundary: `parseWith` turns unknown input into a typed value with a valibot
 * schema, or throws one ValidationError listing every problem with its dot path.
 * @module
 */
import * as v from 'valibot';
import { ValidationError, type ValidationIssue } from '../errors.js';

/** Parses `input` with `schema`; every issue is reported with its dot path. */
export function parseWith<S extends v.GenericSchema>(schema: S, input: unknown, what: string, prefix?: string): v.InferOutput<S> {
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
/** A URI (any scheme): kept off-ledger, only its salted commitment is logged. */
export const URI = v.pipe(v.string(), v.minLength(1), v.maxLength(2048), v.regex(/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/, 'expected a URI such as s3://bucket/key'));
