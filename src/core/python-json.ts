/**
 * Python's `json` module, as the reference notebook uses it to hash its ledger: `json.loads` and
 * `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, byte for byte.
 *
 * This is NOT RFC 8785 (src/core/canonical-json.ts). Python keeps the distinction between an
 * integer and a float that JavaScript loses: a number token with a `.` or an exponent is a float
 * and is written back as `repr(float)` (`1e-05`, `0.1`, `1.0`, `1e+16`); any other number is an int
 * of arbitrary size, written back exactly. Keys sort by code point (Python's `str` order, not
 * UTF-16 order); strings escape only `"`, `\` and the C0 controls (`\n`, `\u001f`...); `NaN`,
 * `Infinity` and `-Infinity` are read and written as Python does.
 *
 * Pure: no I/O. The parsed value keeps ints as {@link PyInt} and floats as {@link PyFloat}; objects
 * are {@link PyDict} (insertion order kept, as Python's dict).
 * @module
 */

/** A Python int (arbitrary size). */
export class PyInt {
  constructor(readonly value: bigint) {}
}

/** A Python float (an IEEE double). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A Python dict parsed from a JSON object: keys in insertion order. */
export class PyDict {
  constructor(readonly entries: Map<string, PyValue>) {}
  get(key: string): PyValue | undefined {
    return this.entries.get(key);
  }
}

/** A value as Python's `json.loads` returns it. */
export type PyValue = null | boolean | string | PyInt | PyFloat | PyValue[] | PyDict;

/** Why a text is not JSON Python would read (or would read but could not hash). */
export class PythonJsonError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'PythonJsonError';
  }
}

/** Options of {@link parsePythonJson}. */
export interface ParseOptions {
  /**
   * What to do with a key repeated in one object: `last` keeps the last value (Python's
   * behaviour), `error` refuses the text (an ambiguous line: two readers may see two values).
   */
  readonly duplicateKeys?: 'last' | 'error';
  /** Deeper nesting is refused (Python's own limit is its recursion limit, about 1,000). */
  readonly maxDepth?: number;
}

/** Python 3.11+ refuses to read an int of more than 4,300 digits (sys.int_info.default_max_str_digits). */
export const PYTHON_MAX_INT_DIGITS = 4300;

// A run of string characters that need no attention: not a quote, a backslash or a C0 control.
const PLAIN_RUN_RE = /[^"\\\u0000-\u001f]*/y;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;

/**
 * Parses `text` as Python's `json.loads` (strict mode) does.
 * @throws {PythonJsonError} where Python raises JSONDecodeError or ValueError, and for a repeated
 *   key when `duplicateKeys` is `error`
 */
export function parsePythonJson(text: string, options: ParseOptions = {}): PyValue {
  const dupError = options.duplicateKeys === 'error';
  const maxDepth = options.maxDepth ?? 512;
  let i = 0;
  const fail = (msg: string, at = i): never => {
    throw new PythonJsonError(`${msg} at position ${at}`, at);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const str = (): string => {
    // text[i] === '"'
    const start = i;
    i++;
    let out = '';
    let run = i;
    for (;;) {
      PLAIN_RUN_RE.lastIndex = i;
      PLAIN_RUN_RE.test(text);
      i = PLAIN_RUN_RE.lastIndex;
      if (i >= text.length) fail('Unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(run, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('Invalid control character');
      if (c === 0x5c) {
        out += text.slice(run, i);
        const e = text[i + 1];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = text.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('Invalid \\uXXXX escape');
            // Two escapes forming a surrogate pair give one character in Python; in UTF-16 the two
            // code units are that character already. A lone surrogate stays lone (as in Python).
            out += String.fromCharCode(Number.parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            fail('Invalid \\escape');
        }
        i += 2;
        run = i;
        continue;
      }
      i++;
    }
  };
  const value = (depth: number): PyValue => {
    if (depth > maxDepth) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '"') return str();
    if (c === '{') {
      i++;
      const entries = new Map<string, PyValue>();
      ws();
      if (text[i] === '}') {
        i++;
        return new PyDict(entries);
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const keyAt = i;
        const k = str();
        ws();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        const v = value(depth + 1);
        if (entries.has(k)) {
          if (dupError) fail(`Repeated key ${JSON.stringify(k)}`, keyAt);
          // Python: the first position, the last value.
        }
        entries.set(k, v);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return new PyDict(entries);
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (c === '[') {
      i++;
      const items: PyValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return items;
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return items;
        }
        fail("Expecting ',' delimiter");
      }
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('NaN', i)) {
      i += 3;
      return new PyFloat(Number.NaN);
    }
    if (text.startsWith('Infinity', i)) {
      i += 8;
      return new PyFloat(Number.POSITIVE_INFINITY);
    }
    if (text.startsWith('-Infinity', i)) {
      i += 9;
      return new PyFloat(Number.NEGATIVE_INFINITY);
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (!m) return fail('Expecting value');
    i += m[0].length;
    if (m[1] !== undefined || m[2] !== undefined) return new PyFloat(Number(m[0]));
    const digits = m[0].startsWith('-') ? m[0].length - 1 : m[0].length;
    if (digits > PYTHON_MAX_INT_DIGITS) fail(`Exceeds the limit (${PYTHON_MAX_INT_DIGITS} digits) for integer string conversion`, i - m[0].length);
    return new PyInt(BigInt(m[0]));
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('Extra data');
  return v;
}

/**
 * Python's `repr(float)`: the shortest digits that read back to the same double (the same digits
 * as JavaScript's), laid out Python's way: exponent form when the decimal exponent is below -4 or
 * at least 16 (`1e-05`, `1e+16`, `1.5e+300`), else positional with at least one fractional digit
 * (`0.0001`, `1.0`, `1000000000000000.0`).
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Number.POSITIVE_INFINITY) return 'Infinity';
  if (x === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() with no argument gives as many digits as needed to tell the double apart: the
  // shortest round-trip digits, as Python's repr uses.
  const [mant, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mant.replace('.', '');
  const exp = Number(expText); // value = d.ddd × 10^exp; Python's decpt = exp + 1
  const decpt = exp + 1;
  if (decpt <= -4 || decpt > 16) {
    const m = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    const e = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e < 10 ? `0${e}` : e}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

// json.dumps's string escaping with ensure_ascii=False: `"`, `\`, and U+0000..U+001F only.
const ESCAPE_RE = /["\\\u0000-\u001f]/g;
const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };
function escapeChar(c: string): string {
  return ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A JSON string literal as `json.dumps(s, ensure_ascii=False)` writes it. */
export function pyStringLiteral(s: string): string {
  ESCAPE_RE.lastIndex = 0;
  return `"${ESCAPE_RE.test(s) ? s.replace(ESCAPE_RE, escapeChar) : s}"`;
}

// UTF-16 code units ordered as the code points they encode (for well-formed strings): a surrogate
// (U+D800..U+DFFF, an astral character) sorts after U+E000..U+FFFF.
function rank(u: number): number {
  return u >= 0xe000 ? u - 0x800 : u >= 0xd800 ? u + 0x2000 : u;
}

/** Compares two strings by code point, as Python compares `str`. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    const x = a.charCodeAt(k);
    const y = b.charCodeAt(k);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/**
 * `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`: the reference's
 * `stable_json_dumps`. (Python would write a lone surrogate as is and then fail to encode the text
 * as UTF-8; {@link pythonStableBytes} refuses it.)
 */
export function pythonStableDumps(value: PyValue): string {
  const out: string[] = [];
  write(value, out);
  return out.join('');
}

function write(v: PyValue, out: string[]): void {
  if (v === null) out.push('null');
  else if (v === true) out.push('true');
  else if (v === false) out.push('false');
  else if (typeof v === 'string') out.push(pyStringLiteral(v));
  else if (v instanceof PyInt) out.push(v.value.toString());
  else if (v instanceof PyFloat) out.push(pyFloatRepr(v.value));
  else if (Array.isArray(v)) {
    out.push('[');
    for (let k = 0; k < v.length; k++) {
      if (k > 0) out.push(',');
      write(v[k]!, out);
    }
    out.push(']');
  } else {
    const keys = [...v.entries.keys()].sort(compareCodePoints);
    out.push('{');
    for (let k = 0; k < keys.length; k++) {
      if (k > 0) out.push(',');
      out.push(pyStringLiteral(keys[k]!), ':');
      write(v.entries.get(keys[k]!)!, out);
    }
    out.push('}');
  }
}

// A lone surrogate: a high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The UTF-8 bytes of {@link pythonStableDumps}, as the reference's `sha256_text` hashes them.
 * @throws {PythonJsonError} when the text holds a lone surrogate (Python's `.encode("utf-8")` raises)
 */
export function pythonStableBytes(value: PyValue, prefix = ''): Buffer {
  const text = prefix + pythonStableDumps(value);
  if (LONE_SURROGATE.test(text)) throw new PythonJsonError('a string holds a lone surrogate, which has no UTF-8 encoding', 0);
  return Buffer.from(text, 'utf8');
}

/** `v` when it is a dict. */
export function asDict(v: PyValue | undefined): PyDict | undefined {
  return v instanceof PyDict ? v : undefined;
}

/** `v` when it is a str. */
export function asStr(v: PyValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
