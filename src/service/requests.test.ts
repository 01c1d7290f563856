/**
 * Requests checked once: a value the service parsed (checkRequest) is taken as is; its value is
 * private (nothing outside the service reads or changes it), and nothing else passes for one: a
 * library caller's plain object, an object made from its prototype, one made with its constructor,
 * or a request checked with another schema is parsed (and refused if invalid).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../core/errors.js';
import { ACCESS, INFERENCE, checkRequest, checkedOrParse } from './requests.js';
import { pid } from '../../test/helpers/policy-ids.js';

const body = () => ({
  actor: { id: 'derm-1', role: 'dermatologist' },
  purpose: 'TREAT',
  policyId: pid('p-1'),
  input: { uri: 's3://b/i.jpg', digest: 'A1'.repeat(32) },
  outputs: [{ name: 'report', uri: 's3://b/r.json', digest: 'b2'.repeat(32) }],
  pipeline: { pipelineName: 'p', pipelineVersion: '1' },
  model: { modelName: 'm', modelVersion: '1' },
});

describe('checkRequest / checkedOrParse', () => {
  it('a checked request is taken as is (the very value parsed once), and its value is not reachable from outside', () => {
    const c = checkRequest(INFERENCE, body(), 'request body');
    const a = checkedOrParse(INFERENCE, c, 'inference');
    assert.equal(a.input.digest, 'a1'.repeat(32), 'parsed with the service schema (digests lowercased)');
    assert.equal(checkedOrParse(INFERENCE, c, 'inference'), a, 'the same object each time: not parsed again');
    assert.deepEqual(Object.keys(c), []);
    assert.equal(JSON.stringify(c), '{}');
  });

  it('refuses an invalid request like parseWith (VALIDATION_FAILED with paths)', () => {
    assert.throws(
      () => checkRequest(INFERENCE, { ...body(), outputs: [] }, 'request body'),
      (e: unknown) => e instanceof ValidationError && e.message.startsWith('invalid request body: outputs:'),
    );
  });

  it('parses anything it did not check: a plain object, a forged or constructed look-alike, a value checked with another schema', () => {
    const bad = { ...body(), input: { uri: 'no scheme', digest: 'x' } };
    assert.throws(() => checkedOrParse(INFERENCE, bad, 'inference'), ValidationError);
    const c = checkRequest(INFERENCE, body(), 'request body');
    // An object inheriting the prototype has no private value: it is parsed, and refused.
    const forged = Object.assign(Object.create(Object.getPrototypeOf(c) as object) as object, bad);
    assert.throws(() => checkedOrParse(INFERENCE, forged, 'inference'), ValidationError);
    // The constructor, reached through an instance, refuses to make one.
    const Ctor = (c as object).constructor as new (...args: unknown[]) => unknown;
    assert.throws(() => new Ctor(Symbol('checked request'), INFERENCE, bad), TypeError);
    // Checked as an inference: as a data access it is parsed (and fails: it is not an object with an artifact).
    assert.throws(() => checkedOrParse(ACCESS, c, 'data access'), ValidationError);
    // A valid plain object is parsed into a new value.
    const plain = body();
    assert.notEqual(checkedOrParse(INFERENCE, plain, 'inference'), plain);
  });
});
