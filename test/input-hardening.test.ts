/**
 * Security issue #9, defects 1 and 8: untrusted input at every door (HTTP, CLI, library).
 *
 * - Strings that are not well-formed Unicode (lone surrogates) are refused with VALIDATION_FAILED
 *   before anything is written, so every hash and commitment is over the bytes that are stored.
 * - Inputs that used to crash the server (a null actor, provisions nested thousands deep, a role
 *   named like an Object.prototype member) get a 4xx with a stable code.
 * - Refused operations leave no salt behind in memory.
 * - Heavy reads (verify, scans) are bounded and yield to the event loop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { ValidationError, hasCode } from '../src/core/errors.js';
import { computeCommitment } from '../src/core/commitment.js';
import { Authenticator } from '../src/server/auth.js';
import { ConsentDeniedError } from '../src/service/governance.js';
import { run } from '../src/cli/main.js';
import { assertThrowsCode } from './helpers/assert-code.js';
import { assertVerifies, createServerEnv, SETUP_ACTOR, type ServerEnv } from './helpers/server-env.js';

const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const W1 = 'c3'.repeat(32);
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: W1, framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' };

function policyBody(policyId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { policyId: pid(policyId), subject: 'patient-1', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist', 'nurse'], ...over };
}

type Method = 'GET' | 'POST' | 'DELETE';

/** Sends `body` as the exact JSON text given (a string) or JSON.stringify of it. */
function call(env: ServerEnv, method: Method, url: string, token: string | undefined, body?: unknown): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const o: InjectOptions = { method, url, headers };
  if (body !== undefined) {
    o.payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  return env.app.inject(o);
}

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(res.statusCode, status, `expected ${status} ${code}, got ${res.statusCode}: ${res.body.slice(0, 500)}`);
  assert.equal((res.json() as { error: { code: string } }).error.code, code);
}

function isValidationFailed(err: unknown): boolean {
  return err instanceof ValidationError && err.code === 'VALIDATION_FAILED';
}

/** Runs the CLI in process (the argv door, which a shell cannot reach with a lone surrogate). */
async function runInProcess(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) =>
    new Writable({
      write: (c: Buffer | string, _e, cb) => {
        f(String(c));
        cb();
      },
    });
  const io = { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) } as unknown as Parameters<typeof run>[1];
  // run() reports process.exitCode when it is set; the test runner sets it once any test fails.
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await run(argv, io, {});
    return { code, stdout, stderr };
  } finally {
    process.exitCode = saved;
  }
}

let env: ServerEnv;
before(async () => {
  env = await createServerEnv();
});
after(async () => {
  await env.close();
});

// ---- defect 1: lone surrogates ----------------------------------------------------------------

describe('strings that are not well-formed Unicode (lone surrogates)', () => {
  describe('over HTTP', () => {
    it('refuses an access whose artifact URI holds a lone surrogate (400 VALIDATION_FAILED), even when consent would be denied; nothing is written', async () => {
      const size = env.log.size;
      for (const uri of ['s3://bucket/\udfff', 's3://bucket/\ud800x', 's3://\udc00\ud800/k']) {
        const res = await call(env, 'POST', '/api/v1/access', env.tokens.nurse, { purpose: 'TREAT', policyId: 'no-such-policy', artifact: { uri, digest: D1 } });
        expectError(res, 400, 'VALIDATION_FAILED');
      }
      assert.equal(env.log.size, size);
      await assertVerifies(env);
    });

    it('refuses a consent whose subject holds a lone surrogate (400 VALIDATION_FAILED)', async () => {
      const size = env.log.size;
      expectError(await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody('ls-1', { subject: 'patient-\udfff' })), 400, 'VALIDATION_FAILED');
      // Written as a raw JSON escape, too.
      const raw = JSON.stringify(policyBody('ls-2')).replace('"patient-1"', '"patient-\\ud800"');
      expectError(await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, raw), 400, 'VALIDATION_FAILED');
      assert.equal(env.log.size, size);
      await assertVerifies(env);
    });

    it('refuses a lone surrogate anywhere in a body: a key, a nested document, an inference output URI', async () => {
      const size = env.log.size;
      const bodies: [string, unknown][] = [
        ['/api/v1/consents', { ...policyBody('ls-3'), '\udfff': 1 }],
        [
          '/api/v1/inferences',
          { purpose: 'TREAT', policyId: 'x', input: { uri: 's3://a/b', digest: D1 }, outputs: [{ name: 'r', uri: 's3://a/\ud800', digest: D2 }], pipeline: PIPELINE, model: MODEL },
        ],
        [
          '/api/v1/inferences',
          {
            purpose: 'TREAT',
            policyId: 'x',
            input: { uri: 's3://a/b', digest: D1 },
            outputs: [{ name: 'r', uri: 's3://a/c', digest: D2 }],
            pipeline: { ...PIPELINE, parameters: { deep: ['\udfff'] } },
            model: MODEL,
          },
        ],
        ['/api/v1/consents/x/check', { purpose: 'TREAT', role: 'nurse\udfff' }],
      ];
      const tokens: Record<string, string> = { '/api/v1/consents': env.tokens.privacy_officer, '/api/v1/inferences': env.tokens.dermatologist, '/api/v1/consents/x/check': env.tokens.nurse };
      for (const [url, body] of bodies) expectError(await call(env, 'POST', url, tokens[url], body), 400, 'VALIDATION_FAILED');
      assert.equal(env.log.size, size);
    });
  });

  describe('through the library', () => {
    it('computeCommitment refuses a value with a lone surrogate (VALIDATION_FAILED)', () => {
      assertThrowsCode(() => computeCommitment(Buffer.alloc(32), 'x\udfff'), ValidationError, 'VALIDATION_FAILED');
      assert.match(computeCommitment(Buffer.alloc(32), 'x\u{1F600}'), /^[0-9a-f]{64}$/);
    });

    it('createConsent, recordDataAccess, recordInference and erase refuse lone surrogates; nothing is written', async () => {
      const g = env.governance;
      const size = env.log.size;
      const actor = { id: 'po-1', role: 'privacy_officer' };
      await assert.rejects(g.createConsent(policyBody('lib-1', { subject: '\ud800' }), actor), isValidationFailed);
      await assert.rejects(g.recordDataAccess({ actor: { id: 'n', role: 'nurse' }, purpose: 'TREAT', policyId: 'none', artifact: { uri: 's3://b/\udfff', digest: D1 } }), isValidationFailed);
      await assert.rejects(
        g.recordInference({
          actor: { id: 'd', role: 'dermatologist' },
          purpose: 'TREAT',
          policyId: 'none',
          input: { uri: 's3://b/\udfff', digest: D1 },
          outputs: [{ name: 'r', uri: 's3://b/c', digest: D2 }],
          pipeline: PIPELINE,
          model: MODEL,
        }),
        isValidationFailed,
      );
      await assert.rejects(g.erase('subject', 'p\udfff', actor), isValidationFailed);
      assert.equal(env.log.size, size);
      await assertVerifies(env);
    });

    it('property: any string as a subject or URI is either refused with VALIDATION_FAILED, or verification passes afterwards', async () => {
      // Strings of arbitrary UTF-16 code units: lone surrogates, pairs, controls, ASCII.
      const unit = fc.oneof(
        fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
        fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
        fc.constantFrom('a', '/', ':', '\u{1F600}', 'é'),
      );
      const g = env.governance;
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.string({ unit, minLength: 1, maxLength: 12 }), async (s) => {
          const id = `prop-${n++}`;
          try {
            await g.createConsent(policyBody(id, { subject: s }), { id: 'po-1', role: 'privacy_officer' });
          } catch (err) {
            assert.ok(isValidationFailed(err), `unexpected ${String(err)}`);
          }
          try {
            await g.recordDataAccess({ actor: { id: 'nurse-1', role: 'nurse' }, purpose: 'TREAT', policyId: pid(id), artifact: { uri: `s3://b/${s}`, digest: D1 } });
          } catch (err) {
            assert.ok(isValidationFailed(err) || err instanceof ConsentDeniedError, `unexpected ${String(err)}`);
          }
          await assertVerifies(env);
        }),
        { seed: 9001, numRuns: 60 },
      );
    });
  });

  describe('on the command line', () => {
    it('refuses a policy file with a lone surrogate (exit 2, VALIDATION_FAILED) and an argument with one; the log still verifies', async () => {
      const dataDir = join(env.root, 'cli-log');
      assert.equal((await runInProcess(['--data-dir', dataDir, 'init', '--origin', 'cli.test/log'])).code, 0);
      const file = join(env.root, 'policy.json');
      writeFileSync(file, JSON.stringify(policyBody('cli-1')).replace('"patient-1"', '"p\\udfff"'));
      const actor = ['--actor', 'po-1', '--actor-role', 'privacy_officer'];
      const r1 = await runInProcess(['--data-dir', dataDir, 'consent', 'create', '--file', file, ...actor]);
      assert.equal(r1.code, 2, r1.stderr);
      assert.match(r1.stderr, /^custos: VALIDATION_FAILED: /);
      const r2 = await runInProcess(['--data-dir', dataDir, 'consent', 'create', '--policy-id', 'cli-2', '--subject', 'p\ud800', '--purposes', 'TREAT', '--roles', 'nurse', ...actor]);
      assert.equal(r2.code, 2, r2.stderr);
      assert.match(r2.stderr, /^custos: VALIDATION_FAILED: /);
      const v = await runInProcess(['--data-dir', dataDir, 'verify', '--no-progress', '--json']);
      assert.equal(v.code, 0, v.stderr + v.stdout);
    });
  });
});

// ---- defect 8: crashes ------------------------------------------------------------------------

describe('inputs that used to crash the server', () => {
  it('refuses an actor that is null, a number, an array or an object without a string id (400), on every write route', async () => {
    await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody('crash-1')).then((r) => assert.equal(r.statusCode, 201, r.body));
    const size = env.log.size;
    const bad = [null, 5, true, [], ['po-1'], {}, { id: null }, { id: 5 }, { id: 'po-1', role: 5 }, { id: 'po-1', role: null }];
    for (const actor of bad) {
      expectError(await call(env, 'POST', `/api/v1/consents/${pid('crash-1')}/revoke`, env.tokens.privacy_officer, { actor }), 400, 'VALIDATION_FAILED');
      expectError(await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, { ...policyBody('crash-2'), actor }), 400, 'VALIDATION_FAILED');
      expectError(
        await call(env, 'POST', '/api/v1/access', env.tokens.nurse, { purpose: 'TREAT', policyId: pid('crash-1'), artifact: { uri: 's3://a/b', digest: D1 }, actor }),
        400,
        'VALIDATION_FAILED',
      );
    }
    assert.equal(env.log.size, size);
    // The credential's own actor is still accepted, as a string or an object.
    const ok = await call(env, 'POST', `/api/v1/consents/${pid('crash-1')}/revoke`, env.tokens.privacy_officer, { actor: { id: 'po-1', role: 'privacy_officer' } });
    assert.equal(ok.statusCode, 201, ok.body);
  });

  it('refuses provisions nested 3,000 deep, and anything deeper than 16 (400 VALIDATION_FAILED); 16 is accepted and decided', async () => {
    // Built as text: JSON.stringify itself recurses, and would overflow first.
    const nestText = (depth: number): string => {
      let p = '{"type":"deny","purposes":["HRESCH"]}';
      for (let i = 1; i < depth; i++) p = `{"type":"${i % 2 === 0 ? 'deny' : 'permit'}","provisions":[${p}]}`;
      return `[${p}]`;
    };
    const nest = (depth: number): unknown[] => {
      let p: Record<string, unknown> = { type: 'deny', purposes: ['HRESCH'] };
      for (let i = 1; i < depth; i++) p = { type: i % 2 === 0 ? 'deny' : 'permit', provisions: [p] };
      return [p];
    };
    const bodyText = (id: string, depth: number) => JSON.stringify(policyBody(id, { provisions: 'PROVISIONS' })).replace('"PROVISIONS"', nestText(depth));
    const size = env.log.size;
    expectError(await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, bodyText('deep-1', 3000)), 400, 'VALIDATION_FAILED');
    expectError(await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, bodyText('deep-2', 17)), 400, 'VALIDATION_FAILED');
    await assert.rejects(env.governance.createConsent(policyBody('deep-3', { provisions: nest(100_000) }), { id: 'po-1', role: 'privacy_officer' }), isValidationFailed);
    await assert.rejects(env.governance.createConsent(policyBody('deep-5', { provisions: nest(17) }), { id: 'po-1', role: 'privacy_officer' }), isValidationFailed);
    assert.equal(env.log.size, size);
    const res = await call(env, 'POST', '/api/v1/consents', env.tokens.privacy_officer, policyBody('deep-4', { provisions: nest(16) }));
    assert.equal(res.statusCode, 201, res.body);
    const check = await call(env, 'POST', `/api/v1/consents/${pid('deep-4')}/check`, env.tokens.nurse, { purpose: 'TREAT', role: 'nurse' });
    assert.equal(check.statusCode, 200, check.body);
    await assertVerifies(env);
  });

  it('refuses a token role named after an Object.prototype member (400 VALIDATION_FAILED)', async () => {
    const size = env.log.size;
    for (const role of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      expectError(await call(env, 'POST', '/api/v1/tokens', env.tokens.admin, { name: `t-${role.replace(/_/g, '')}`, role }), 400, 'VALIDATION_FAILED');
      await assert.rejects(env.auth.createToken('lib', role, SETUP_ACTOR), isValidationFailed);
    }
    assert.equal(env.log.size, size);
  });

  it('gives a credential whose role is not in the table no permission (403, never 500)', async () => {
    // A token record written with such a role (by an older version, or a custom role table since changed).
    const auth = new Authenticator({ log: env.log, roles: { constructor_role: ['read'] } });
    for (const role of ['constructor', '__proto__', 'toString']) assert.equal(auth.permissionsOf(role).size, 0);
    const legacy = await auth.createToken('legacy-1', 'constructor_role', SETUP_ACTOR);
    const record = JSON.parse((await env.dir.store.getState('token', legacy.record.id))!) as Record<string, unknown>;
    await env.dir.store.writeSidecar({ documents: [], commitments: [], state: [{ ns: 'token', key: legacy.record.id, value: JSON.stringify({ ...record, role: 'constructor' }) }] });
    const me = await call(env, 'GET', '/api/v1/me', legacy.token);
    assert.equal(me.statusCode, 200, me.body);
    assert.deepEqual((me.json() as { permissions: string[] }).permissions, []);
    expectError(await call(env, 'GET', '/api/v1/stats', legacy.token), 403, 'FORBIDDEN');
    // The edited row disagrees with the log (a verification finding); put the row back.
    await env.dir.store.writeSidecar({ documents: [], commitments: [], state: [{ ns: 'token', key: legacy.record.id, value: JSON.stringify(record) }] });
  });

  it('counts an event type named like an Object.prototype member in the overview', async () => {
    const before = (await call(env, 'GET', '/api/v1/overview', env.tokens.auditor)).json() as { eventsByType: Record<string, unknown> };
    const had = Object.hasOwn(before.eventsByType, 'constructor') ? Number(before.eventsByType['constructor']) : 0;
    await env.log.append('constructor', { note: 'a generic event type' });
    const res = await call(env, 'GET', '/api/v1/overview', env.tokens.auditor);
    assert.equal(res.statusCode, 200, res.body);
    const o = res.json() as { eventsByType: Record<string, unknown>; eventsByHour: { counts: Record<string, unknown> }[] };
    assert.equal(o.eventsByType['constructor'], had + 1);
    assert.ok(o.eventsByHour.some((h) => typeof h.counts['constructor'] === 'number'));
  });
});

// ---- defect 8: memory -------------------------------------------------------------------------

describe('salts of refused operations', () => {
  it('are forgotten: after refused, denied and successful operations no salt is pending', async () => {
    const g = env.governance;
    const actor = { id: 'po-1', role: 'privacy_officer' };
    await g.createConsent(policyBody('mem-1'), actor);
    // Refused at sequencing time: the policy exists (each with a new subject, so a new salt each).
    for (let i = 0; i < 200; i++) {
      await assert.rejects(g.createConsent(policyBody('mem-1', { subject: `s-${i}` }), actor), (e) => hasCode(e, 'POLICY_EXISTS'));
    }
    // Refused at sequencing time: validUntil is before the log's now.
    await assert.rejects(g.createConsent(policyBody('mem-2', { subject: 'late', validUntil: '2001-01-01T00:00:00Z' }), actor), isValidationFailed);
    assert.equal(g.pendingCommitments, 0);
    // Concurrent refused creations for one subject, and a denied access.
    await Promise.allSettled(Array.from({ length: 20 }, () => g.createConsent(policyBody('mem-1', { subject: 'shared' }), actor)));
    await assert.rejects(
      g.recordDataAccess({ actor: { id: 'n', role: 'nurse' }, purpose: 'TREAT', policyId: pid('none'), artifact: { uri: 's3://m/1', digest: D1 } }),
      (e) => e instanceof ConsentDeniedError,
    );
    assert.equal(g.pendingCommitments, 0);
    await assertVerifies(env);
  });
});

// ---- defect 8: heavy reads --------------------------------------------------------------------

describe('heavy reads', () => {
  let big: ServerEnv;
  // Resolved when a heavy read has reached its handler on the server.
  let heavyStarted: () => void = () => {};
  before(async () => {
    big = await createServerEnv({ heavyConcurrency: 1 });
    big.app.addHook('preHandler', async (req) => {
      if (req.routeOptions.url === '/api/v1/overview') heavyStarted();
    });
    await Promise.all(Array.from({ length: 20_000 }, (_, i) => big.log.append('AUDIT_EVENT', { resource: `r-${i}` })));
  });
  after(async () => {
    await big.close();
  });

  it('SQLite page iterators let the event loop run between pages', async () => {
    const store = big.dir.store;
    const scans: [string, AsyncIterable<unknown>][] = [
      ['entryPages', store.entryPages(0, big.log.size)],
      ['entryPagesDescending', store.entryPagesDescending(0, big.log.size)],
    ];
    for (const [name, pages] of scans) {
      let turned = false;
      setImmediate(() => (turned = true));
      let pagesAfterTurn = 0;
      let count = 0;
      for await (const _ of pages) {
        count++;
        if (turned) pagesAfterTurn++;
      }
      assert.ok(count > 2, `${name}: ${count} pages`);
      assert.ok(pagesAfterTurn > 0, `${name}: the event loop did not run during the scan of ${count} pages`);
    }
  });

  it('/healthz is answered while a scan of the whole log runs', async () => {
    const address = await big.app.listen({ host: '127.0.0.1', port: 0 });
    const order: string[] = [];
    const started = new Promise<void>((resolve) => (heavyStarted = resolve));
    const scan = fetch(`${address}/api/v1/overview`, { headers: { authorization: `Bearer ${big.tokens.auditor}` } }).then(async (r) => {
      await r.arrayBuffer();
      order.push(`overview ${r.status}`);
    });
    await started; // the scan is running on the server: now ask for /healthz
    const health = fetch(`${address}/healthz`).then(async (r) => {
      await r.arrayBuffer();
      order.push(`healthz ${r.status}`);
    });
    await Promise.all([scan, health]);
    assert.deepEqual(order, ['healthz 200', 'overview 200']);
  });

  it('beyond the concurrency limit, answer 503 SERVER_BUSY with Retry-After; the slot is released afterwards', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => call(big, 'POST', '/api/v1/verify', big.tokens.auditor)));
    const codes = results.map((r) => r.statusCode).sort();
    assert.ok(codes.includes(200), `statuses ${codes.join(',')}`);
    assert.ok(codes.includes(503), `statuses ${codes.join(',')}`);
    for (const r of results.filter((x) => x.statusCode === 503)) {
      expectError(r, 503, 'SERVER_BUSY');
      assert.ok(Number(r.headers['retry-after']) >= 1);
    }
    const again = await call(big, 'POST', '/api/v1/verify', big.tokens.auditor);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal((again.json() as { ok: boolean }).ok, true);
    // A scan that fails (here a bad query) releases the slot too; so does a streamed export.
    expectError(await call(big, 'GET', '/api/v1/anomalies?hours=0', big.tokens.auditor), 400, 'VALIDATION_FAILED');
    assert.equal((await call(big, 'GET', '/api/v1/export', big.tokens.auditor)).statusCode, 200);
    assert.equal((await call(big, 'GET', '/api/v1/anomalies', big.tokens.auditor)).statusCode, 200);
  });
});
