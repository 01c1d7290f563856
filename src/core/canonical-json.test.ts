/**
 * RFC 8785 (JCS) canonical JSON: the RFC's own examples, idempotence, and strict refusal of
 * values JSON cannot represent.
 */
import { assertThrowsCode } from '../../test/helpers/assert-code.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ValidationError, type ValidationCode } from './errors.js';
import { MAX_JSON_DEPTH, canonicalJson, canonicalJsonBytes, isCanonicalizable, isWellFormedString, parseCanonicalJson } from './canonical-json.js';

function assertValidationError(fn: () => unknown, code: ValidationCode): void {
  assertThrowsCode(fn, ValidationError, code);
}

/** Any Unicode scalar value, weighted towards ASCII (controls, quotes, backslash) and astral planes. */
const scalar = fc
  .oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0xffff }), fc.integer({ min: 0x10000, max: 0x10ffff }))
  .map((c) => String.fromCodePoint(c));

/** `depth` arrays around `leaf`: the leaf sits at nesting depth `depth`. */
function nestArrays(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function nestObjects(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { k: v };
  return v;
}

describe('canonicalJson', () => {
  describe('with the RFC 8785 §3.2.3 sorting example', () => {
    it('orders keys by UTF-16 code units', () => {
      const input = {
        '\u20ac': 'Euro Sign',
        '\r': 'Carriage Return',
        '\ufb33': 'Hebrew Letter Dalet With Dagesh',
        '1': 'One',
        '\ud83d\ude00': 'Emoji: Grinning Face',
        '\u0080': 'Control',
        '\u00f6': 'Latin Small Letter O With Diaeresis',
      };
      assert.equal(
        canonicalJson(input),
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
          '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
      );
    });

    it('puts a surrogate pair (U+1F600) before U+FB33, unlike code point order', () => {
      assert.equal(canonicalJson({ '\ufb33': 1, '\ud83d\ude00': 2 }), '{"\ud83d\ude00":2,"\ufb33":1}');
    });
  });

  describe('with the RFC 8785 §3.2.2 example', () => {
    it('serializes numbers, string escapes and literals as the RFC shows', () => {
      const input = String.raw`{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
      }`;
      assert.equal(canonicalJson(JSON.parse(input)), String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
    });
  });

  describe('for numbers', () => {
    const examples: [number, string][] = [
      [1e21, '1e+21'],
      [1e-7, '1e-7'],
      [-0, '0'],
      [0, '0'],
      [0.000001, '0.000001'],
      // biome-ignore lint/correctness/noPrecisionLoss: the vector (from RFC 8785) is written with more digits than a double holds, on purpose
      [333333333.33333329, '333333333.3333333'],
      [1e20, '100000000000000000000'],
      [4.5, '4.5'],
      [-1.5e-10, '-1.5e-10'],
    ];
    for (const [n, want] of examples) {
      it(`writes ${String(Object.is(n, -0) ? '-0' : n)} as ${want}`, () => {
        assert.equal(canonicalJson(n), want);
      });
    }

    // RFC 8785 Appendix B: IEEE 754 bit patterns and their serializations.
    const appendixB: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    it('matches every finite example of RFC 8785 Appendix B', () => {
      for (const [bits, want] of appendixB) {
        assert.equal(canonicalJson(Buffer.from(bits, 'hex').readDoubleBE(0)), want, bits);
      }
    });
  });

  describe('for strings', () => {
    it('escapes only what RFC 8785 requires, with lowercase \\u escapes', () => {
      assert.equal(canonicalJson('\u0000\u001f\b\t\n\f\r"\\/\u007f\u00e9'), '"\\u0000\\u001f\\b\\t\\n\\f\\r\\"\\\\/\u007f\u00e9"');
    });
  });

  describe('for objects and arrays', () => {
    it('sorts nested keys and keeps array order, with no whitespace', () => {
      assert.equal(canonicalJson({ b: [3, { z: 1, a: 2 }], a: {} }), '{"a":{},"b":[3,{"a":2,"z":1}]}');
    });

    it('accepts objects without a prototype', () => {
      const o = Object.create(null) as Record<string, unknown>;
      o['b'] = 1;
      o['a'] = 2;
      assert.equal(canonicalJson(o), '{"a":2,"b":1}');
    });

    it(`accepts nesting of exactly ${MAX_JSON_DEPTH}`, () => {
      assert.equal(canonicalJson(nestArrays(MAX_JSON_DEPTH, 0)), `${'['.repeat(MAX_JSON_DEPTH)}0${']'.repeat(MAX_JSON_DEPTH)}`);
      assert.doesNotThrow(() => canonicalJson(nestObjects(MAX_JSON_DEPTH, 0)));
    });
  });

  describe('for any JSON value (property)', () => {
    it('is idempotent: canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x)', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: scalar }), (x) => {
          const c = canonicalJson(x);
          assert.equal(canonicalJson(JSON.parse(c)), c);
        }),
        { numRuns: 300 },
      );
    });

    it('does not depend on key insertion order', () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string({ unit: scalar }), fc.jsonValue({ maxDepth: 2 })), (o) => {
          const reversed = Object.fromEntries(Object.entries(o).reverse());
          assert.equal(canonicalJson(reversed), canonicalJson(o));
        }),
        { numRuns: 200 },
      );
    });

    it('is accepted by parseCanonicalJson and parses back to an equal value', () => {
      fc.assert(
        fc.property(fc.jsonValue({ stringUnit: scalar }), (x) => {
          const c = canonicalJson(x);
          assert.deepEqual(parseCanonicalJson(c), JSON.parse(c));
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('when the value cannot be represented in JSON', () => {
    const sparse: unknown[] = [1, 2, 3];
    delete sparse[1];
    const cases: [string, () => unknown][] = [
      ['NaN', () => Number.NaN],
      ['Infinity', () => Number.POSITIVE_INFINITY],
      ['-Infinity', () => Number.NEGATIVE_INFINITY],
      ['NaN inside an array inside an object', () => ({ a: [1, { b: Number.NaN }] })],
      ['undefined at the top level', () => undefined],
      ['undefined as an object member', () => ({ a: undefined })],
      ['undefined as an array element', () => [1, undefined]],
      ['a BigInt', () => 10n],
      ['a BigInt member', () => ({ n: 1n })],
      ['a function', () => () => 1],
      ['a function member', () => ({ f() {} })],
      ['a toJSON member', () => ({ toJSON: () => 'x' })],
      ['a Symbol', () => Symbol('s')],
      ['a Symbol member', () => ({ s: Symbol('s') })],
      ['a Symbol key', () => ({ [Symbol('s')]: 1 })],
      ['a lone high surrogate in a value', () => 'a\ud800b'],
      ['a lone low surrogate in a value', () => ['\udc00']],
      ['reversed surrogates in a value', () => '\udc00\ud800'],
      ['a lone surrogate in a key', () => ({ '\ud83d': 1 })],
      ['a lone surrogate in a nested key', () => ({ a: { 'x\udfff': 1 } })],
      ['a Date', () => new Date(0)],
      ['a Date member', () => ({ at: new Date(0) })],
      ['a Map', () => new Map([['a', 1]])],
      ['a Set', () => new Set([1])],
      ['a boxed number', () => Object(1) as unknown],
      [
        'a class instance',
        () =>
          new (class Point {
            x = 1;
          })(),
      ],
      ['a Buffer', () => Buffer.from('x')],
      ['a sparse array', () => sparse],
      ['an array with a trailing hole', () => new Array(2)],
      [`arrays nested ${MAX_JSON_DEPTH + 1} deep`, () => nestArrays(MAX_JSON_DEPTH + 1, 0)],
      [`objects nested ${MAX_JSON_DEPTH + 1} deep`, () => nestObjects(MAX_JSON_DEPTH + 1, 0)],
      ['arrays nested 100000 deep', () => nestArrays(100_000, 0)],
    ];
    for (const [what, make] of cases) {
      it(`throws CANONICAL_JSON_UNSUPPORTED_VALUE for ${what}`, () => {
        const value = make();
        assertValidationError(() => canonicalJson(value), 'CANONICAL_JSON_UNSUPPORTED_VALUE');
        assertValidationError(() => canonicalJsonBytes(value), 'CANONICAL_JSON_UNSUPPORTED_VALUE');
        assert.equal(isCanonicalizable(value), false);
      });
    }
  });
});

describe('canonicalJsonBytes', () => {
  describe('for non-ASCII text', () => {
    it('returns the UTF-8 bytes of the canonical text', () => {
      const bytes = canonicalJsonBytes({ '\u00e9': '\ud83d\ude00' });
      assert.deepEqual(bytes, Buffer.from('{"\u00e9":"\ud83d\ude00"}', 'utf8'));
      assert.equal(bytes.length, 7 + 2 + 4); // 7 ASCII bytes, a 2-byte U+00E9 and a 4-byte U+1F600
    });
  });
});

describe('isWellFormedString', () => {
  describe('for strings with and without lone surrogates', () => {
    it('is true only when every surrogate is paired', () => {
      assert.equal(isWellFormedString('plain \ud83d\ude00 text'), true);
      assert.equal(isWellFormedString(''), true);
      for (const s of ['\ud800', '\udc00', 'x\ud83dy', '\ude00\ud83d', '\ud83d\ud83d\ude00\ude00']) {
        assert.equal(isWellFormedString(s), false, JSON.stringify(s));
      }
    });
  });
});

describe('parseCanonicalJson', () => {
  describe('for canonical text', () => {
    for (const [text, value] of [
      ['{"a":1,"b":[true,null]}', { a: 1, b: [true, null] }],
      ['"x"', 'x'],
      ['1e+21', 1e21],
      ['[]', []],
      ['{"\u00e9":"\\n"}', { '\u00e9': '\n' }],
    ] as [string, unknown][]) {
      it(`accepts ${text}`, () => {
        assert.deepEqual(parseCanonicalJson(text), value);
      });
    }
  });

  describe('for text that is not canonical', () => {
    for (const text of [
      '{"b":1,"a":2}', // key order
      '{ "a":1}', // whitespace
      '{"a":1}\n', // trailing newline
      '[1, 2]',
      '1.0', // number form
      '1E21',
      '1e21',
      '0.1e1',
      '-0',
      '"\\u0041"', // unnecessary escape
      '"\\u00e9"',
      '"\\/"',
      '"\\u001F"', // uppercase hex escape
      '{"a":1,"a":1}', // duplicate keys
    ]) {
      it(`throws VALIDATION_FAILED for ${JSON.stringify(text)}`, () => {
        assertValidationError(() => parseCanonicalJson(text), 'VALIDATION_FAILED');
      });
    }
  });

  describe('for text that is not JSON', () => {
    for (const text of ['', 'nope', '{"a":1', "{'a':1}", 'NaN', 'undefined']) {
      it(`throws VALIDATION_FAILED for ${JSON.stringify(text)}`, () => {
        assertValidationError(() => parseCanonicalJson(text), 'VALIDATION_FAILED');
      });
    }
  });

  describe('for JSON text whose value cannot be canonicalized', () => {
    for (const text of ['"\\ud800"', '1e400', `${'['.repeat(MAX_JSON_DEPTH + 1)}0${']'.repeat(MAX_JSON_DEPTH + 1)}`]) {
      it(`throws CANONICAL_JSON_UNSUPPORTED_VALUE for ${text.length > 20 ? `${text.slice(0, 10)}...` : text}, as documented`, () => {
        assertValidationError(() => parseCanonicalJson(text), 'CANONICAL_JSON_UNSUPPORTED_VALUE');
      });
    }
  });
});

describe('canonicalJson: the one-pass serializer agrees with the canonicalize package', () => {
  // The package is the reference serializer (it was the only one before); canonicalJson now
  // checks and serializes in one pass and falls back to it only outside the subset.
  const text = fc.array(scalar, { maxLength: 8 }).map((cs) => cs.join(''));
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(),
      text,
      fc.array(tie('value'), { maxLength: 5 }),
      fc.dictionary(text, tie('value'), { maxKeys: 6 }),
    ),
  })).value;

  it('gives the same text for any JSON value (numbers, -0, exponents, astral keys)', async () => {
    const { default: reference } = (await import('canonicalize')) as unknown as { default: (v: unknown) => string };
    fc.assert(
      fc.property(json, (v) => {
        assert.equal(canonicalJson(v), reference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('still refuses, with the path, what is outside the subset', () => {
    assert.throws(
      () => canonicalJson({ a: [1, { b: Number.NaN }] }),
      (e: unknown) => e instanceof ValidationError && e.code === 'CANONICAL_JSON_UNSUPPORTED_VALUE' && e.message.includes('$.a[1].b'),
    );
    assert.throws(
      () => canonicalJson({ k: '\ud800' }),
      (e: unknown) => e instanceof ValidationError && e.message.includes('$.k'),
    );
  });
});
