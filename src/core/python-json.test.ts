/**
 * Python's json as the reference hashes with it: fixed vectors, then random texts compared with
 * what the real python3 writes for them (one python3 process per batch).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { PyDict, PyFloat, PyInt, PythonJsonError, compareCodePoints, parsePythonJson, pyFloatRepr, pythonStableBytes, pythonStableDumps } from './python-json.js';

const PY_DUMPS = `
import json, sys
texts = json.loads(sys.stdin.read())
out = []
for t in texts:
    try:
        s = json.dumps(json.loads(t), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        s.encode("utf-8")
        out.append(s)
    except Exception as e:
        out.append(None)
sys.stdout.write(json.dumps(out, ensure_ascii=True))
`;

/** What python3 writes for each text (null where Python raises). */
function python(texts: readonly string[]): (string | null)[] {
  const r = spawnSync('python3', ['-c', PY_DUMPS], { input: JSON.stringify(texts), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as (string | null)[];
}

function ours(t: string): string | null {
  try {
    const v = parsePythonJson(t);
    pythonStableBytes(v);
    return pythonStableDumps(v);
  } catch (err) {
    if (err instanceof PythonJsonError) return null;
    throw err;
  }
}

describe('pyFloatRepr', () => {
  it('lays out floats as Python repr does', () => {
    const cases: [number, string][] = [
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [0.1, '0.1'],
      [1, '1.0'],
      [-0, '-0.0'],
      [0, '0.0'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [123456789012345680, '1.2345678901234568e+17'],
      [1.5e300, '1.5e+300'],
      [5e-324, '5e-324'],
      [0.35, '0.35'],
      [1e-4, '0.0001'],
      [2.5e-7, '2.5e-07'],
      [Number.NaN, 'NaN'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
      [Number.NEGATIVE_INFINITY, '-Infinity'],
      [-1234.5, '-1234.5'],
    ];
    for (const [x, s] of cases) assert.equal(pyFloatRepr(x), s, String(x));
  });

  it('agrees with python3 on random doubles', () => {
    const xs = fc.sample(fc.oneof(fc.double(), fc.double({ min: -1e20, max: 1e20 }), fc.double({ min: -1e-3, max: 1e-3 })), 2000);
    const texts = xs.map((x) => (Number.isFinite(x) ? `[${x === 0 ? (Object.is(x, -0) ? '-0.0' : '0.0') : x.toExponential()}]` : `[${pyFloatRepr(x)}]`));
    const py = python(texts);
    texts.forEach((t, k) => assert.equal(ours(t), py[k], t));
  });
});

describe('parsePythonJson and pythonStableDumps', () => {
  it('keeps ints and floats apart, ints exact at any size', () => {
    assert.equal(pythonStableDumps(parsePythonJson('[1, 1.0, 1e0, 10E-6, -0, 12345678901234567890123]')), '[1,1.0,1.0,1e-05,0,12345678901234567890123]');
    const v = parsePythonJson('{"a": 2}');
    assert.ok(v instanceof PyDict && v.get('a') instanceof PyInt);
    assert.ok(parsePythonJson('2.0') instanceof PyFloat);
  });

  it('sorts keys by code point, escapes only what Python escapes', () => {
    // U+FF01 sorts before U+1F600 by code point (after it in UTF-16 order).
    assert.equal(pythonStableDumps(parsePythonJson('{"\\ud83d\\ude00": 1, "\\uff01": 2, "b": 3, "a": 4}')), '{"a":4,"b":3,"！":2,"😀":1}');
    assert.ok(compareCodePoints('\uff01', '\u{1f600}') < 0);
    assert.equal(pythonStableDumps(parsePythonJson('"\\u0001\\t\\n\\u007f\\u2028é\\/\\""')), '"\\u0001\\t\\n\u007f\u2028é/\\""');
  });

  it('refuses what Python refuses', () => {
    for (const t of ['', '{', '{"a":1', '[1,]', '{"a" 1}', '01', '1.', '.5', '"\u0001"', "'a'", '{"a":1}x', '\ufeff{}', 'nan', '+1', '"\\x"']) {
      assert.throws(() => parsePythonJson(t), PythonJsonError, JSON.stringify(t));
    }
    assert.throws(() => parsePythonJson(`[${'9'.repeat(4301)}]`), PythonJsonError);
    assert.equal(pythonStableDumps(parsePythonJson(`${'9'.repeat(4300)}`)), '9'.repeat(4300));
  });

  it('repeated keys: the last value (Python), or refused on request', () => {
    assert.equal(pythonStableDumps(parsePythonJson('{"a":1,"a":2}')), '{"a":2}');
    assert.throws(() => parsePythonJson('{"a":1,"a":2}', { duplicateKeys: 'error' }), PythonJsonError);
  });

  it('a lone surrogate parses but has no UTF-8 bytes to hash', () => {
    const v = parsePythonJson('"\\ud800"');
    assert.throws(() => pythonStableBytes(v), PythonJsonError);
  });

  it('agrees with python3 on random JSON texts (reformatted, floats, non-ASCII, big ints)', () => {
    const num = fc.oneof(
      fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map((b) => b.toString()),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Number.isInteger(d) && Math.abs(d) < 1e21 ? `${d}.0` : d.toExponential())),
      fc.constantFrom('1e-05', '1E5', '1e+16', '0.1', '-0.0', '1e400', '-1e400', '2.5e-7', 'NaN', 'Infinity', '-Infinity', '100000000000000000000.0'),
    );
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 4 }), fc.constantFrom('a', 'é', '\uff01', '😀', 'A', '_'));
    const scalarText = fc.oneof(
      num,
      fc.string({ unit: 'grapheme', maxLength: 8 }).map((s) => JSON.stringify(s)),
      fc.constantFrom('true', 'false', 'null', '"\\u00e9\\ud83d\\ude00"'),
    );
    const { tree } = fc.letrec<{ tree: string }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small' },
        scalarText,
        fc.array(tie('tree'), { maxLength: 4 }).map((xs) => `[ ${xs.join(' ,\n')} ]`),
        fc.array(fc.tuple(key, tie('tree')), { maxLength: 4 }).map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)} :${v}`).join(', ')}}`),
      ),
    }));
    const texts = fc.sample(tree, 1500);
    const py = python(texts);
    // Most texts are valid: the comparison is of real output, not of two refusals.
    assert.ok(py.filter((x) => x !== null).length > texts.length * 0.9);
    texts.forEach((t, k) => assert.equal(ours(t), py[k], t));
  });
});
