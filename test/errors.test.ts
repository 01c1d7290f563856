/**
 * The error registry (`ERRORS` in src/core/errors.ts) against docs/errors.md, and against the two
 * edges that use it: every code is documented with the registry's exit code and HTTP status,
 * nothing is documented that does not exist, and the server and the CLI map errors through it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AuthError, ConflictError, ConsentError, ERRORS, EXIT, InternalError, NotFoundError, StoreError, ValidationError, VerificationError, type AnyErrorCode } from '../src/core/errors.js';
import { toHttpError } from '../src/server/http-errors.js';
import { exitCodeFor } from '../src/cli/main.js';

/** The rows of the code table of docs/errors.md: code → { exit, http }. */
function documented(): Map<string, { exit: string; http: string; cls: string }> {
  const text = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, { exit: string; http: string; cls: string }>();
  let inTable = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('| code | class | exit | HTTP |')) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (!line.startsWith('|')) break;
    const m = /^\| `([A-Z_]+)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \|/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(m[1]!), `${m[1]} documented twice`);
    rows.set(m[1]!, { cls: m[2]!.trim(), exit: m[3]!.trim(), http: m[4]!.trim() });
  }
  return rows;
}

const CLASS_OF: Record<string, new (code: never, message: string) => Error> = {
  ValidationError,
  NotFoundError,
  VerificationError,
  ConflictError,
  StoreError,
  ConsentError,
  AuthError,
  InternalError,
};

describe('error registry', () => {
  it('docs/errors.md lists every code with the registry’s exit code and HTTP status, and no other code', () => {
    const docs = documented();
    assert.ok(docs.size > 0, 'the code table of docs/errors.md was not found');
    for (const [code, spec] of Object.entries(ERRORS)) {
      const row = docs.get(code);
      assert.ok(row, `${code} is not documented in docs/errors.md`);
      assert.equal(row.http, String(spec.http), `${code}: HTTP status`);
      assert.equal(row.exit, spec.exit === null ? '-' : String(spec.exit), `${code}: exit code`);
    }
    for (const code of docs.keys()) assert.ok(Object.hasOwn(ERRORS, code), `docs/errors.md documents ${code}, which does not exist`);
  });

  it('the documented class of each code is the class that carries it: the server and the CLI map an error of it through the registry', () => {
    for (const [code, row] of documented()) {
      const spec = ERRORS[code as AnyErrorCode];
      if (row.cls === '-') {
        // Raised by the HTTP framework only: the server still answers with the registry's status.
        continue;
      }
      const Cls = CLASS_OF[row.cls];
      assert.ok(Cls, `${code}: unknown class ${row.cls}`);
      const err = new Cls(code as never, 'm');
      const http = toHttpError(err);
      assert.equal(http.status, spec.http, `${code}: server status`);
      assert.equal(http.body.error.code, code);
      assert.equal(exitCodeFor(err), spec.exit ?? EXIT.internal, `${code}: CLI exit code`);
    }
  });

  it('the framework’s own refusals carry the registry’s status; anything foreign is 500 INTERNAL and exit 70', () => {
    assert.deepEqual(toHttpError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })).status, ERRORS.BODY_TOO_LARGE.http);
    assert.deepEqual(toHttpError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })).status, ERRORS.UNSUPPORTED_MEDIA_TYPE.http);
    const foreign = toHttpError(new Error('secret detail'));
    assert.deepEqual(foreign, { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } });
    assert.equal(exitCodeFor(new Error('x')), EXIT.internal);
  });

  it('LOG_LOCKED is 503 (a retry can succeed), as the server has always answered', () => {
    assert.equal(toHttpError(new ConflictError('LOG_LOCKED', 'locked')).status, 503);
    assert.equal(exitCodeFor(new ConflictError('LOG_LOCKED', 'locked')), EXIT.conflict);
  });
});
