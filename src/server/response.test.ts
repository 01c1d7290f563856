/**
 * Response bodies are checked against the route's schema before they are sent: a wrong type, a
 * missing field or a field the schema does not declare is a server error (500 INTERNAL), never a
 * body coerced or trimmed by the serializer. A matching body is sent as declared.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import * as v from 'valibot';
import { DEFAULT_ROLES, type Principal } from './auth.js';
import type { ServerContext } from './context.js';
import { registerRoutes, route } from './route.js';
import { responseCodec } from './response.js';
import { toHttpError } from './http-errors.js';
import { DECISION, EVENT } from './routes/shared.js';

const RESPONSE = v.object({ receipt: v.unknown(), decision: DECISION, event: EVENT, note: v.optional(v.string()), items: v.array(v.object({ n: v.number() })) });
const good = () => ({
  receipt: { anything: ['goes', 1, null] },
  decision: { effect: 'permit', reason: 'PERMITTED', policyId: 'p', policyVersion: 1, policyHash: null, provision: null, explanation: 'ok' },
  event: { index: 3, leafHash: 'a'.repeat(64), treeSize: 4, rootHash: 'b'.repeat(64), checkpoint: 'note' },
  items: [{ n: 1 }],
});

describe('responseCodec', () => {
  const codec = responseCodec(RESPONSE, 'GET /x');
  it('accepts a matching body (unknown parts take anything; nullable fields take null)', () => {
    codec.check(good());
    codec.check({ ...good(), note: 'n' });
  });
  it('refuses a wrong type, a missing field, a pattern mismatch, and an undeclared field at any depth', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...good(), event: { ...good().event, index: '3' } }, /event\.index/],
      [{ ...good(), decision: undefined }, /decision/],
      [{ ...good(), event: { ...good().event, leafHash: 'xyz' } }, /event\.leafHash/],
      [{ ...good(), extra: 1 }, /extra: a field the schema does not declare/],
      [{ ...good(), event: { ...good().event, secret: 's' } }, /event\.secret: a field/],
      [{ ...good(), items: [{ n: 1 }, { n: 2, m: 3 }] }, /items\.1\.m: a field/],
    ];
    for (const [body, message] of cases) assert.throws(() => codec.check(body), message);
  });
});

describe('a route with a response schema', () => {
  const principal: Principal = { actor: 'a', role: 'auditor', permissions: new Set(DEFAULT_ROLES['auditor']), key: 'token:a' };
  const bodies: Record<string, unknown> = {
    good: good(),
    extra: { ...good(), internal: 'not for the client' },
    wrong: { ...good(), event: { ...good().event, treeSize: 'four' } },
  };
  const app = Fastify({ logger: false });
  // The server's mapping of errors to responses (error-handler.ts uses the same).
  app.setErrorHandler(async (err, _req, reply) => {
    const { status, body } = toHttpError(err);
    return reply.status(status).send(body);
  });
  app.addHook('onRequest', async (req) => {
    req.principal = principal;
  });
  registerRoutes(
    app,
    [route({ method: 'GET', url: '/r/:which', summary: 'test', permission: null, response: RESPONSE, handler: async ({ req }) => bodies[(req.params as { which: string }).which] as never })],
    {} as ServerContext,
    () => () => undefined,
  );

  it('sends a matching body as declared (the serializer compiled from the schema)', async () => {
    const res = await app.inject({ method: 'GET', url: '/r/good' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(JSON.parse(res.body), good());
  });
  it('answers 500 for a body with an undeclared field or a wrong type, and sends none of it', async () => {
    for (const which of ['extra', 'wrong']) {
      const res = await app.inject({ method: 'GET', url: `/r/${which}` });
      assert.equal(res.statusCode, 500, which);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'INTERNAL');
      assert.ok(!res.body.includes('not for the client') && !res.body.includes('four') && !res.body.includes('a'.repeat(64)), which);
    }
  });
});
