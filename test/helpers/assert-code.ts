import assert from 'node:assert/strict';
import type { CustosError, ErrorCode } from '../../src/core/errors.js';

/** Asserts that `fn` throws an error of class `cls` with stable code `code` (never the message). */
export function assertThrowsCode(fn: () => unknown, cls: abstract new (...args: never[]) => CustosError, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected a ${cls.name}, got ${String(err)}`);
    assert.equal((err as CustosError).code, code);
    return true;
  });
}
