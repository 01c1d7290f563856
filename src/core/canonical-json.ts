/**
 * RFC 8785 JSON Canonicalization Scheme (JCS), strict.
 *
 * Serialization is done by the maintained `canonicalize` package. Before it runs,
 * the value is checked against the I-JSON subset (RFC 7493) that RFC 8785 builds on:
 * values JSON cannot represent are refused, never coerced the way JSON.stringify
 * turns NaN into null or drops `undefined`.
 * @module
 */
import canonicalizeModule from 'canonicalize';
import { ValidationError } from './errors.js';

// canonicalize is CommonJS (module.exports = fn); its d.ts declares a default export, which NodeNext
// types as the module object. At run time the default import is the function itself.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** A JSON value that canonicalizes without loss. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deeper nesting is refused (guards the recursive serializer against stack exhaustion). */
export const MAX_JSON_DEPTH = 64;

// A lone surrogate: a high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// The engine's String.prototype.isWellFormed (ES2024) where there is one: the same answer as
// the expression, several times faster.
const nativeWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
const wellFormed: (s: string) => boolean = nativeWellFormed ? (s) => nativeWellFormed.call(s) : (s) => !LONE_SURROGATE.test(s);

/** True if `s` is well-formed UTF-16 (has no lone surrogate), so it has a UTF-8 encoding. */
export function isWellFormedString(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

function unsupported(path: string, message: string): never {
  throw new ValidationError('CANONICAL_JSON_UNSUPPORTED_VALUE', `cannot canonicalize ${path}: ${message}`, {
    issues: [{ path, message }],
  });
}

function check(value: unknown, path: string, depth: number, maxDepth = MAX_JSON_DEPTH): void {
  if (depth > maxDepth) unsupported(path, `nesting deeper than ${maxDepth}`);
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) unsupported(path, 'string contains a lone surrogate');
      return;
    case 'number':
      if (!Number.isFinite(value)) unsupported(path, `${String(value)} is not a JSON number`);
      return;
    case 'boolean':
      return;
    case 'object': {
      if (value === null) return;
      if (Array.isArray(value)) {
        // Extra own properties (a toJSON, a named member) would be dropped or obeyed silently.
        if (Object.keys(value).length !== value.length || Object.getOwnPropertySymbols(value).length > 0) {
          unsupported(path, 'array with properties other than its elements');
        }
        for (let i = 0; i < value.length; i++) {
          // Holes in sparse arrays are undefined.
          if (!(i in value)) unsupported(`${path}[${i}]`, 'array hole');
          check(value[i], `${path}[${i}]`, depth + 1, maxDepth);
        }
        return;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) unsupported(path, 'not a plain object');
      if (Object.getOwnPropertySymbols(value).length > 0) unsupported(path, 'symbol keys');
      for (const key of Object.keys(value)) {
        const child = `${path}.${key}`;
        if (LONE_SURROGATE.test(key)) unsupported(child, 'key contains a lone surrogate');
        check((value as Record<string, unknown>)[key], child, depth + 1, maxDepth);
      }
      return;
    }
    default:
      // undefined, bigint, function, symbol
      unsupported(path, `${typeof value} is not a JSON value`);
  }
}

// Sorts `keys` in place by UTF-16 code units (what `Array.prototype.sort` does with no comparator,
// and what `<` compares): insertion sort, no allocation, for the few keys of a payload's objects.
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/**
 * A string as a JSON string literal, or undefined if it has a lone surrogate. A string with nothing
 * to escape (no control character, quote, backslash or surrogate: the common case) is quoted as it
 * is, which is what JSON.stringify returns for it, without the call.
 */
function quote(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return wellFormed(s) ? JSON.stringify(s) : undefined;
  }
  return `"${s}"`;
}

/**
 * One pass over `value` that checks and serializes at once (every canonicalization of every
 * decision goes through it): the RFC 8785 text, or undefined at the first value outside the
 * subset {@link check} accepts, without building a path or an error. Agrees with `canonicalize`
 * on every value {@link check} accepts (JCS: keys sorted by UTF-16 code units, which is
 * `Array.prototype.sort`; strings and numbers as `JSON.stringify` writes them).
 */
function serialize(value: unknown, depth: number, maxDepth: number): string | undefined {
  if (depth > maxDepth) return undefined;
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        if (Object.keys(value).length !== value.length || Object.getOwnPropertySymbols(value).length > 0) return undefined;
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) return undefined;
          const v = serialize(value[i], depth + 1, maxDepth);
          if (v === undefined) return undefined;
          out += i === 0 ? v : `,${v}`;
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(value).length > 0) return undefined;
      const keys = sortKeys(Object.keys(value));
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = quote(keys[i]!);
        if (key === undefined) return undefined;
        const v = serialize((value as Record<string, unknown>)[keys[i]!], depth + 1, maxDepth);
        if (v === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${key}:${v}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

/** Type guard: true if `value` canonicalizes without loss. */
export function isCanonicalizable(value: unknown): value is JsonValue {
  try {
    check(value, '$', 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the RFC 8785 canonical JSON text of `value`.
 * @throws {ValidationError} CANONICAL_JSON_UNSUPPORTED_VALUE for NaN, ±Infinity, undefined,
 *   bigint, functions, symbols, lone surrogates, non-plain objects, sparse arrays, or nesting over 64.
 * @example
 * canonicalJson({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown, options?: { readonly maxDepth?: number }): string {
  const maxDepth = options?.maxDepth ?? MAX_JSON_DEPTH;
  const fast = serialize(value, 0, maxDepth);
  if (fast !== undefined) return fast;
  // Outside the subset somewhere: the checked walk names where (and throws).
  check(value, '$', 0, maxDepth);
  const out = canonicalize(value);
  if (out === undefined) unsupported('$', 'value has no JSON form');
  return out;
}

/** UTF-8 bytes of the canonical JSON of `value`. */
export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

/**
 * Parses `text` as JSON and returns it only if `text` is already in canonical form.
 * Used to check that stored entry bytes are exactly what Custos wrote.
 * @throws {ValidationError} VALIDATION_FAILED when the text is not JSON or not canonical;
 *   CANONICAL_JSON_UNSUPPORTED_VALUE when it is JSON that has no canonical form (a lone surrogate,
 *   a number out of range, nesting over 64)
 */
export function parseCanonicalJson(text: string): JsonValue {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', 'not valid JSON', { cause: err });
  }
  if (canonicalJson(value) !== text) {
    throw new ValidationError('VALIDATION_FAILED', 'JSON is not in RFC 8785 canonical form');
  }
  return value as JsonValue;
}
