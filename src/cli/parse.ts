/**
 * Parsing of CLI arguments: everything from the command line is untrusted text until parsed here.
 * @module
 */
import { ValidationError } from '../core/errors.js';
import { isWellFormedString } from '../core/canonical-json.js';

/**
 * Refuses a command line with an argument that is not well-formed Unicode (a lone surrogate),
 * before any command runs. (A shell cannot pass one, but `run()` is also called in process.)
 * Checks the strings directly rather than through the schema module, which `custos --help`
 * should not have to load.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function assertWellFormedArgs(argv: readonly string[]): void {
  const i = argv.findIndex((arg) => !isWellFormedString(arg));
  if (i >= 0) {
    throw new ValidationError('VALIDATION_FAILED', `argument ${i + 1} is not well-formed Unicode (lone surrogate)`, {
      issues: [{ path: `argv.${i}`, message: 'not well-formed Unicode (lone surrogate)' }],
    });
  }
}

/** A non-negative decimal integer (an index or a tree size). */
export function parseCount(input: string, field: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(input) || !Number.isSafeInteger(Number(input))) {
    throw new ValidationError('VALIDATION_FAILED', `${field} must be a non-negative integer, got ${JSON.stringify(input.slice(0, 40))}`, {
      issues: [{ path: field, message: 'expected a non-negative integer' }],
    });
  }
  return Number(input);
}

/** A positive integer limit. */
export function parseLimit(input: string, field: string, max: number): number {
  const n = parseCount(input, field);
  if (n < 1 || n > max) {
    throw new ValidationError('VALIDATION_FAILED', `${field} must be between 1 and ${max}`, { issues: [{ path: field, message: 'out of range' }] });
  }
  return n;
}

/** An RFC 3339 / ISO 8601 time, or a relative age like 15m, 2h, 7d. Returns epoch ms. */
export function parseSince(input: string, nowMs: number): number {
  const rel = /^(\d{1,6})([smhd])$/.exec(input);
  if (rel) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return nowMs - Number(rel[1]) * unit;
  }
  // A date alone is midnight UTC; a date-time must say its offset (RFC 3339), never local time.
  if (/^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2}))?$/.test(input)) {
    const t = Date.parse(input);
    if (Number.isFinite(t)) return t;
  }
  throw new ValidationError('VALIDATION_FAILED', '--since must be an RFC 3339 time (2026-11-21T10:00:00Z) or an age (30m, 2h, 7d)', {
    issues: [{ path: 'since', message: 'invalid time' }],
  });
}

/** One of a fixed set of choices. */
export function parseChoice<T extends string>(input: string, field: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(input)) {
    throw new ValidationError('VALIDATION_FAILED', `${field} must be one of ${choices.join(', ')}`, { issues: [{ path: field, message: 'invalid choice' }] });
  }
  return input as T;
}
