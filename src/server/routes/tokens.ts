/**
 * API tokens: create (the secret is shown once), list, revoke; and the caller's own identity.
 * @module
 */
import * as v from 'valibot';
import { CODE } from '../../core/schema/parse.js';
import { TOKEN_NAME } from '../auth.js';
import { route } from '../route.js';

/** Body of POST /tokens: the token's name (its actor id) and role; nothing else. */
export const CREATE_TOKEN = v.strictObject({ name: TOKEN_NAME, role: CODE });
const TOKEN = v.object({ id: v.string(), name: v.string(), role: v.string(), createdAt: v.string(), revokedAt: v.nullable(v.string()) });

export const meRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/me',
    summary: 'The authenticated caller: actor, role, permissions (any valid credential)',
    permission: null,
    response: v.object({ actor: v.string(), role: v.string(), permissions: v.array(v.string()) }),
    handler: async ({ principal: p }) => ({ actor: p.actor, role: p.role, permissions: [...p.permissions] }),
  }),
];

export const tokenRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/tokens',
    summary: 'Create a token (shown once)',
    permission: 'tokens',
    status: 201,
    body: CREATE_TOKEN,
    response: v.object({ token: v.string(), ...TOKEN.entries }),
    handler: async ({ body, principal: p }, { auth }) => {
      const r = await auth.createToken(body.name, body.role, { actor: p.actor, role: p.role });
      const { hash: _h, ...record } = r.record;
      void _h;
      return { token: r.token, ...record };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/tokens',
    summary: 'List tokens (never their secrets)',
    permission: 'tokens',
    response: v.array(TOKEN),
    handler: async (_call, { auth }) => auth.listTokens(),
  }),
  route({
    method: 'DELETE',
    url: '/api/v1/tokens/:id',
    summary: 'Revoke a token',
    permission: 'tokens',
    status: 204,
    params: v.object({ id: v.string() }),
    handler: async ({ params, principal: p, reply }, { auth }) => {
      await auth.revokeToken(params.id, { actor: p.actor, role: p.role });
      return reply.status(204).send();
    },
  }),
];

export const metricsRoutes = [
  route({
    method: 'GET',
    url: '/metrics',
    summary: 'Prometheus metrics',
    permission: 'read',
    produces: 'text/plain',
    handler: async ({ reply }, { metrics }) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  }),
];
