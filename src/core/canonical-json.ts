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
  // The fast path serializes and checks in one walk; anything it does not handle plainly (and
  // every value that is refused) goes the slow way, which throws the precise error.
  const fast = serialize(value, 0, maxDepth);
  if (fast !== undefined) return fast;
  check(value, '$', 0, maxDepth);
  const out = canonicalize(value);
  if (out === undefined) unsupported('$', 'value has no JSON form');
  return out;
}

// String.prototype.isWellFormed (ES2024, Node 20) answers without a regular expression.
const wellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function' ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed() : isWellFormedString;

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
 * Sorts object keys in place by UTF-16 code units (what Array.prototype.sort does with no
 * comparator, and what RFC 8785 §3.2.3 asks), by insertion when there are few: objects have a
 * handful of keys, and the default sort costs several times more on them.
 */
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
 * RFC 8785 serialization of a value that passes {@link check}, in one walk; undefined for anything
 * else (or anything unusual: a toJSON method, symbol keys, extra array members), which the caller
 * then checks and serializes the slow way. Equal to `canonicalize(value)` wherever it answers
 * (canonical-json.test.ts compares the two on generated values): JSON.stringify for strings and
 * numbers (RFC 8785 §3.2.2 is ECMAScript's serialization), keys sorted by UTF-16 code units.
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
      if ((value as { toJSON?: unknown }).toJSON !== undefined) return undefined;
      if (Array.isArray(value)) {
        const n = value.length;
        if (Object.keys(value).length !== n || Object.getOwnPropertySymbols(value).length > 0) return undefined;
        let out = '[';
        for (let i = 0; i < n; i++) {
          if (!(i in value)) return undefined;
          const v = serialize(value[i], depth + 1, maxDepth);
          if (v === undefined) return undefined;
          out += i === 0 ? v : `,${v}`;
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return undefined;
      if (Object.getOwnPropertySymbols(value).length > 0) return undefined;
      const keys = sortKeys(Object.keys(value));
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const qk = quote(k);
        if (qk === undefined) return undefined;
        const v = serialize((value as Record<string, unknown>)[k], depth + 1, maxDepth);
        if (v === undefined) return undefined;
        out += i === 0 ? `${qk}:${v}` : `,${qk}:${v}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
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
