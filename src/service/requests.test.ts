/**
 * Requests checked once: a value the service parsed (checkRequest) is taken as is, frozen so it
 * cannot change after the check; anything else (a library caller's plain object, a copy of a
 * checked value, a value checked with another schema) is parsed again.
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
  it('a checked request is taken as is (the same object, not parsed again), and is deeply frozen', () => {
    const c = checkRequest(INFERENCE, body(), 'request body');
    assert.equal(c.input.digest, 'a1'.repeat(32), 'parsed with the service schema (digests lowercased)');
    assert.equal(checkedOrParse(INFERENCE, c, 'inference'), c);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.input) && Object.isFrozen(c.outputs) && Object.isFrozen(c.outputs[0]) && Object.isFrozen(c.pipeline));
    assert.throws(() => {
      (c.input as { uri: string }).uri = 'not a uri';
    }, TypeError);
  });

  it('refuses an invalid request like parseWith (VALIDATION_FAILED with paths)', () => {
    assert.throws(
      () => checkRequest(INFERENCE, { ...body(), outputs: [] }, 'request body'),
      (e: unknown) => e instanceof ValidationError && e.message.startsWith('invalid request body: outputs:'),
    );
  });

  it('parses anything it did not check: a plain object, a copy of a checked value, a value checked with another schema', () => {
    const bad = { ...body(), input: { uri: 'no scheme', digest: 'x' } };
    assert.throws(() => checkedOrParse(INFERENCE, bad, 'inference'), ValidationError);
    const c = checkRequest(INFERENCE, body(), 'request body');
    const copy = { ...c, input: { uri: 'no scheme', digest: 'x' } };
    assert.throws(() => checkedOrParse(INFERENCE, copy, 'inference'), ValidationError);
    // Checked as an inference: as a data access it is parsed (and fails: no artifact).
    assert.throws(() => checkedOrParse(ACCESS, c, 'data access'), ValidationError);
    // A valid plain object is parsed into a new value.
    const plain = body();
    assert.notEqual(checkedOrParse(INFERENCE, plain, 'inference'), plain);
  });
});
