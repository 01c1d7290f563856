/**
 * Log entry encoding: encodeEntry's hand-built text must equal the RFC 8785 canonical JSON of the
 * entry object, decodeEntry must round-trip it, and prepareEvent must refuse bad events.
 */
import { assertThrowsCode } from '../../test/helpers/assert-code.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ValidationError, type ValidationCode } from './errors.js';
import { MAX_JSON_DEPTH, canonicalJson } from './canonical-json.js';
import { ENTRY_SCHEMA_VERSION, MAX_PAYLOAD_BYTES, decodeEntry, encodeEntry, entryClaimsIndex, entryEncoder, formatEntryTime, prepareEvent } from './entry.js';

function assertValidationError(fn: () => unknown, code: ValidationCode): void {
  assertThrowsCode(fn, ValidationError, code);
}

/** Any Unicode scalar value, weighted towards ASCII (controls, quotes, backslash) and astral planes. */
const scalar = fc
  .oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0xffff }), fc.integer({ min: 0x10000, max: 0x10ffff }))
  .map((c) => String.fromCodePoint(c));

const eventType = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/);
const payload = fc.dictionary(fc.string({ unit: scalar, maxLength: 12 }), fc.jsonValue({ stringUnit: scalar, maxDepth: 4 }), {
  maxKeys: 8,
});
const entryIndex = fc.oneof(fc.nat({ max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
/** Epoch milliseconds whose ISO form has a 4-digit year: 0000-01-01 .. 9999-12-31. */
const timeMs = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });

describe('entryEncoder', () => {
  it('equals encodeEntry for a run of events of changing types at one time', () => {
    fc.assert(
      fc.property(timeMs, fc.array(fc.tuple(entryIndex, eventType, payload), { maxLength: 12 }), (ms, events) => {
        const time = formatEntryTime(ms);
        const encode = entryEncoder(time);
        for (const [index, type, p] of events) {
          const ev = prepareEvent(type, p);
          assert.equal(encode(index, ev), encodeEntry(index, ev, time));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('prepareEvent', () => {
  it('refuses a bad type after a good one (the remembered type is only a shortcut for itself)', () => {
    prepareEvent('AUDIT_EVENT', {});
    for (const bad of ['', 'AUDIT EVENT', 'AUDIT_EVENT\n', undefined, 1]) {
      assertValidationError(() => prepareEvent(bad, {}), 'VALIDATION_FAILED');
    }
    assert.equal(prepareEvent('AUDIT_EVENT', { a: 1 }).type, 'AUDIT_EVENT');
  });

  it('refuses a payload over MAX_PAYLOAD_BYTES counted in UTF-8 bytes, not UTF-16 units', () => {
    const units = Math.floor(MAX_PAYLOAD_BYTES / 3);
    // Three UTF-8 bytes per unit: about MAX_PAYLOAD_BYTES bytes in a third as many units.
    assertValidationError(() => prepareEvent('AUDIT_EVENT', { s: '\u20ac'.repeat(units + 10) }), 'VALIDATION_FAILED');
    assert.ok(prepareEvent('AUDIT_EVENT', { s: '\u20ac'.repeat(units - 10) }).payloadJson.length > 0);
  });
});

describe('encodeEntry', () => {
  describe('for random events (property)', () => {
    it('equals canonicalJson({v: 1, index, type, time, payload})', () => {
      fc.assert(
        fc.property(entryIndex, eventType, payload, timeMs, (index, type, p, ms) => {
          const time = formatEntryTime(ms);
          const text = encodeEntry(index, prepareEvent(type, p), time);
          assert.equal(text, canonicalJson({ v: ENTRY_SCHEMA_VERSION, index, type, time, payload: p }));
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('for a fixed event', () => {
    it('writes the keys in RFC 8785 order', () => {
      const text = encodeEntry(3, prepareEvent('AUDIT_EVENT', { b: 1, a: 'x' }), formatEntryTime(0));
      assert.equal(text, '{"index":3,"payload":{"a":"x","b":1},"time":"1970-01-01T00:00:00.000Z","type":"AUDIT_EVENT","v":1}');
    });
  });
});

describe('decodeEntry', () => {
  describe('for what encodeEntry writes (property)', () => {
    it('returns the entry that was encoded', () => {
      fc.assert(
        fc.property(entryIndex, eventType, payload, timeMs, (index, type, p, ms) => {
          const time = formatEntryTime(ms);
          const event = prepareEvent(type, p);
          const entry = decodeEntry(encodeEntry(index, event, time));
          // Compare with the payload as JSON gives it back (-0 becomes 0).
          assert.deepEqual(entry, { index, payload: JSON.parse(event.payloadJson) as unknown, time, type, v: 1 });
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('when the text is not a valid entry', () => {
    const good = encodeEntry(0, prepareEvent('t', { a: 1 }), formatEntryTime(0));
    const cases: [string, string][] = [
      ['text that is not JSON', '{"index":0'],
      ['an array', '[1]'],
      ['null', 'null'],
      ['a string', '"entry"'],
      ['schema version 2', good.replace('"v":1}', '"v":2}')],
      ['a missing version', good.replace(',"v":1}', '}')],
      ['a negative index', good.replace('"index":0', '"index":-1')],
      ['a fractional index', good.replace('"index":0', '"index":0.5')],
      ['an unsafe index', good.replace('"index":0', '"index":9007199254740992')],
      ['a string index', good.replace('"index":0', '"index":"0"')],
      ['a bad type', good.replace('"type":"t"', '"type":"1t"')],
      ['a time without milliseconds', good.replace('00:00:00.000Z', '00:00:00Z')],
      ['a time with an offset', good.replace('00:00:00.000Z', '00:00:00.000+00:00')],
      ['an array payload', good.replace('{"a":1}', '[1]')],
      ['a null payload', good.replace('{"a":1}', 'null')],
      ['keys out of order', '{"payload":{"a":1},"index":0,"time":"1970-01-01T00:00:00.000Z","type":"t","v":1}'],
      ['whitespace', good.replace('"index":0', '"index": 0')],
      ['a non-canonical payload', good.replace('{"a":1}', '{"a":1.0}')],
    ];
    for (const [what, text] of cases) {
      it(`throws VALIDATION_FAILED for ${what}`, () => {
        assert.notEqual(text, good, 'the case must change the entry');
        assertValidationError(() => decodeEntry(text), 'VALIDATION_FAILED');
      });
    }
  });

  describe('when the entry has a member the schema does not define', () => {
    it('throws VALIDATION_FAILED', () => {
      const text = encodeEntry(0, prepareEvent('t', {}), formatEntryTime(0)).replace(',"v":1}', ',"v":1,"x":1}');
      assertValidationError(() => decodeEntry(text), 'VALIDATION_FAILED');
    });
  });

  describe('when the time matches the pattern but is not a real instant', () => {
    it('throws VALIDATION_FAILED', () => {
      const text = encodeEntry(0, prepareEvent('t', {}), '2026-13-45T99:99:99.999Z');
      assertValidationError(() => decodeEntry(text), 'VALIDATION_FAILED');
    });
  });

  describe('for payloads at the nesting limit', () => {
    it(`accepts a payload nested ${MAX_JSON_DEPTH - 1} deep and decodes the entry it makes`, () => {
      let p: Record<string, unknown> = {};
      for (let i = 0; i < MAX_JSON_DEPTH - 1; i++) p = { a: p };
      const text = encodeEntry(0, prepareEvent('t', p), formatEntryTime(0));
      assert.doesNotThrow(() => decodeEntry(text));
    });
    it(`refuses a payload nested ${MAX_JSON_DEPTH} deep (the entry would exceed the limit)`, () => {
      let p: Record<string, unknown> = {};
      for (let i = 0; i < MAX_JSON_DEPTH; i++) p = { a: p };
      assertValidationError(() => prepareEvent('t', p), 'CANONICAL_JSON_UNSUPPORTED_VALUE');
    });
  });
});

describe('formatEntryTime', () => {
  describe('for epoch milliseconds', () => {
    it('writes RFC 3339 UTC with milliseconds', () => {
      assert.equal(formatEntryTime(0), '1970-01-01T00:00:00.000Z');
      assert.equal(formatEntryTime(1_795_284_157_123), '2026-11-21T18:02:37.123Z');
    });
  });

  describe('for a time after the year 9999', () => {
    it('writes a time decodeEntry accepts, or refuses it', () => {
      let time: string;
      try {
        time = formatEntryTime(253_402_300_800_000);
      } catch (err) {
        assert.ok(err instanceof ValidationError);
        return;
      }
      assert.doesNotThrow(() => decodeEntry(encodeEntry(0, prepareEvent('t', {}), time)));
    });
  });
});

describe('entryClaimsIndex', () => {
  describe('for an encoded entry', () => {
    it('is true for its own index only', () => {
      const text = encodeEntry(12, prepareEvent('t', { a: 1 }), formatEntryTime(0));
      assert.equal(entryClaimsIndex(Buffer.from(text), 12), true);
      assert.equal(entryClaimsIndex(Buffer.from(text), 1), false);
      assert.equal(entryClaimsIndex(Buffer.from(text), 120), false);
    });
  });
});

describe('prepareEvent', () => {
  describe('for a valid type and object payload', () => {
    it('keeps the type and canonicalizes the payload', () => {
      assert.deepEqual(prepareEvent('consent.granted:v2-x_1', { b: [1, 2], a: null }), {
        type: 'consent.granted:v2-x_1',
        payloadJson: '{"a":null,"b":[1,2]}',
      });
      assert.equal(prepareEvent('A', {}).type, 'A');
      assert.equal(prepareEvent('a'.repeat(64), {}).type, 'a'.repeat(64));
    });
  });

  describe('when the type is not a valid event type', () => {
    for (const [what, type] of [
      ['empty', ''],
      ['starting with a digit', '1event'],
      ['starting with an underscore', '_event'],
      ['longer than 64 characters', 'a'.repeat(65)],
      ['containing a space', 'audit event'],
      ['with a leading space', ' audit'],
      ['with a trailing newline', 'audit\n'],
      ['containing a slash', 'audit/event'],
      ['with a non-ASCII letter', '\u00e9v\u00e9nement'],
      ['a number', 42],
      ['null', null],
      ['undefined', undefined],
    ] as [string, unknown][]) {
      it(`throws VALIDATION_FAILED for a type that is ${what}`, () => {
        assertValidationError(() => prepareEvent(type, {}), 'VALIDATION_FAILED');
      });
    }

    it('throws VALIDATION_FAILED for any string outside the pattern (property)', () => {
      fc.assert(
        fc.property(fc.string({ unit: scalar, maxLength: 70 }), (type) => {
          fc.pre(!/^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/.test(type));
          assertValidationError(() => prepareEvent(type, {}), 'VALIDATION_FAILED');
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('when the payload is not a JSON object', () => {
    for (const [what, p] of [
      ['null', null],
      ['undefined', undefined],
      ['an array', [1, 2]],
      ['a string', '{}'],
      ['a number', 1],
      ['a boolean', true],
    ] as [string, unknown][]) {
      it(`throws VALIDATION_FAILED for ${what}`, () => {
        assertValidationError(() => prepareEvent('t', p), 'VALIDATION_FAILED');
      });
    }
  });

  describe('when the payload holds a value JSON cannot represent', () => {
    it('throws CANONICAL_JSON_UNSUPPORTED_VALUE', () => {
      assertValidationError(() => prepareEvent('t', { n: Number.NaN }), 'CANONICAL_JSON_UNSUPPORTED_VALUE');
      assertValidationError(() => prepareEvent('t', { d: new Date(0) }), 'CANONICAL_JSON_UNSUPPORTED_VALUE');
    });
  });

  describe(`when the canonical payload is larger than ${MAX_PAYLOAD_BYTES} bytes`, () => {
    const overhead = '{"s":""}'.length;
    it('accepts exactly 64 KiB', () => {
      const p = { s: 'x'.repeat(MAX_PAYLOAD_BYTES - overhead) };
      assert.equal(Buffer.byteLength(prepareEvent('t', p).payloadJson, 'utf8'), MAX_PAYLOAD_BYTES);
    });

    it('throws VALIDATION_FAILED for one byte more', () => {
      assertValidationError(() => prepareEvent('t', { s: 'x'.repeat(MAX_PAYLOAD_BYTES - overhead + 1) }), 'VALIDATION_FAILED');
    });

    it('throws VALIDATION_FAILED for a payload over 64 KiB', () => {
      assertValidationError(() => prepareEvent('t', { s: 'x'.repeat(64 * 1024) }), 'VALIDATION_FAILED');
    });

    it('keeps the largest possible entry within a C2SP entry bundle (65,535 bytes)', () => {
      const event = prepareEvent('T'.repeat(64), { s: 'x'.repeat(MAX_PAYLOAD_BYTES - overhead) });
      const text = encodeEntry(Number.MAX_SAFE_INTEGER, event, formatEntryTime(253_402_300_799_999));
      assert.ok(Buffer.byteLength(text, 'utf8') <= 0xffff, `entry of ${Buffer.byteLength(text, 'utf8')} bytes`);
    });

    it('counts UTF-8 bytes, not UTF-16 code units', () => {
      // 32765 two-byte characters: 32773 code units but 65538 bytes.
      const s = '\u00e9'.repeat((MAX_PAYLOAD_BYTES - overhead) / 2 + 1);
      assert.ok(`{"s":"${s}"}`.length < MAX_PAYLOAD_BYTES);
      assertValidationError(() => prepareEvent('t', { s }), 'VALIDATION_FAILED');
    });

    it('counts escapes as written: control characters take 6 bytes each', () => {
      const s = '\u0001'.repeat(Math.ceil((MAX_PAYLOAD_BYTES - overhead) / 6) + 1);
      assert.ok(s.length < MAX_PAYLOAD_BYTES);
      assertValidationError(() => prepareEvent('t', { s }), 'VALIDATION_FAILED');
    });
  });
});
