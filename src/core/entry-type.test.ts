import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeEntry, entryTypeOf, prepareEvent, EVENT_TYPE_PATTERN } from './entry.js';

const enc = (type: string, payload: Record<string, unknown>) => Buffer.from(encodeEntry(7, prepareEvent(type, payload), '2026-12-02T21:38:04.948Z'), 'utf8');

test('entryTypeOf reads the type of any entry as encoded, whatever its payload holds', () => {
  const type = fc.stringMatching(EVENT_TYPE_PATTERN);
  // Payloads that themselves hold "type" keys and entry-like tails must not fool it.
  const payload = fc.dictionary(fc.constantFrom('type', 'v', 'x', 'documents'), fc.oneof(fc.string(), fc.constant(',"type":"EVIL","v":1}'), fc.integer()));
  fc.assert(
    fc.property(type, payload, (t, p) => {
      assert.equal(entryTypeOf(enc(t, p)), t);
    }),
  );
});

test('entryTypeOf gives undefined for bytes whose tail is not an entry tail (the caller then parses)', () => {
  const good = enc('AUDIT_EVENT', { a: 1 });
  assert.equal(entryTypeOf(good), 'AUDIT_EVENT');
  for (const bad of [
    good.subarray(0, good.length - 1), // truncated
    Buffer.from(good.toString().replace('"v":1}', '"v":2}')),
    Buffer.from(good.toString().replace(',"type":"AUDIT_EVENT"', ',"typ":"AUDIT_EVENT"')),
    Buffer.from(good.toString().replace('"AUDIT_EVENT"', '"AUDIT EVENT"')),
    Buffer.from(good.toString().replace('"AUDIT_EVENT"', '""')),
    Buffer.from('"v":1}'),
    Buffer.alloc(0),
  ]) {
    assert.equal(entryTypeOf(bad), undefined, bad.toString());
  }
});
