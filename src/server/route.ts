/**
 * How an API route is declared and served. A route module declares each route once: method, URL,
 * permission, and valibot schemas for its path parameters, query, body and response. The same
 * declaration drives registration, authorization, validation (one pass, 400 VALIDATION_FAILED with
 * `details.issues`), the handler's types and the OpenAPI document (see openapi.ts).
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type * as v from 'valibot';
import { AuthError } from '../core/errors.js';
import { parseWith } from '../core/schema/parse.js';
import { requirePermission, type Permission, type Principal } from './auth.js';
import type { AuthConfig } from './auth-hook.js';
import type { ServerContext } from './context.js';
import type { TakeHeavySlot } from './heavy.js';
import { rawBodyOf, type RawBodyConfig } from './input.js';
import { responseCodec } from './response.js';

type Schema = v.GenericSchema;
type Out<S> = S extends Schema ? v.InferOutput<S> : undefined;
type Json<S> = S extends Schema ? v.InferInput<S> : unknown;

/** A request as a handler sees it: validated and typed parts, the caller, and the raw request. */
export interface RouteCall<B, Q, P> {
  readonly body: Out<B>;
  readonly query: Out<Q>;
  readonly params: Out<P>;
  readonly principal: Principal;
  /** The body exactly as received, on a route declared with `rawBody`. */
  readonly rawBody: Buffer | undefined;
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
}

/** One API route. */
export interface RouteDef<B extends Schema | undefined, Q extends Schema | undefined, P extends Schema | undefined, R extends Schema | undefined> {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Fastify syntax: `/api/v1/receipts/:index`. */
  readonly url: string;
  readonly summary: string;
  /** The permission needed; null: any authenticated caller. */
  readonly permission: Permission | null;
  /** Success status (default 200), set before the handler runs (which may set another). */
  readonly status?: number;
  /** Scans the log: counted against the heavy-read limit. */
  readonly heavy?: true;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  /**
   * The body of a route whose handler hands it to the service: documented (OpenAPI) like `body`,
   * but not parsed here. The handler validates `req.body` once, with the service's own schema
   * ({@link serviceRequest} in routes/shared.ts), and the service takes the checked value as is.
   */
  readonly serviceBody?: Schema;
  /** The success response body (the handler returns it, or sends something else itself). */
  readonly response?: R;
  /** Content type of a non-JSON success response (documented in OpenAPI). */
  readonly produces?: string;
  /** Content types of the body (default application/json; documented in OpenAPI). */
  readonly consumes?: readonly string[];
  /** The handler sees the body's exact bytes (`RouteCall.rawBody`; see input.ts). */
  readonly rawBody?: true;
  /** Largest body in bytes, for this route only (default: the server's, 256 KiB); documented as `x-custos-body-limit`. */
  readonly bodyLimit?: number;
  readonly handler: (call: RouteCall<B, Q, P>, ctx: ServerContext) => Promise<Json<R> | FastifyReply>;
}

/** A declared route, its schema types erased. */
export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly url: string;
  readonly summary: string;
  readonly permission: Permission | null;
  readonly status?: number;
  readonly heavy?: true;
  readonly params?: Schema;
  readonly query?: Schema;
  readonly body?: Schema;
  readonly serviceBody?: Schema;
  readonly response?: Schema;
  readonly produces?: string;
  readonly consumes?: readonly string[];
  readonly rawBody?: true;
  readonly bodyLimit?: number;
  // biome-ignore lint/suspicious/noExplicitAny: erased: each route's own types are checked where it is declared
  readonly handler: (call: RouteCall<any, any, any>, ctx: ServerContext) => Promise<unknown>;
}

/** Declares a route (the generic parameters type its handler from its schemas). */
export function route<B extends Schema | undefined = undefined, Q extends Schema | undefined = undefined, P extends Schema | undefined = undefined, R extends Schema | undefined = undefined>(
  def: RouteDef<B, Q, P, R>,
): Route {
  return def as unknown as Route;
}

/** Registers `routes`: authentication and permission first (also in the onRequest hook), then validation, then the handler. */
export function registerRoutes(app: FastifyInstance, routes: readonly Route[], ctx: ServerContext, takeHeavySlot: TakeHeavySlot): void {
  for (const r of routes) {
    const config: AuthConfig & RawBodyConfig = { authenticate: true, permission: r.permission, ...(r.rawBody ? { rawBody: true } : {}) };
    const status = r.status ?? 200;
    // The success body: checked against the route's response schema, serialized by the
    // fast-json-stringify serializer Fastify compiles from the same schema (response.ts).
    const codec = r.response ? responseCodec(r.response, `${r.method} ${r.url}`) : undefined;
    const checked = async (result: Promise<unknown>, reply: FastifyReply): Promise<unknown> => {
      const body = await result;
      if (codec && body !== reply && reply.statusCode === status) codec.check(body);
      return body;
    };
    app.route({
      method: r.method,
      url: r.url,
      config,
      ...(r.bodyLimit ? { bodyLimit: r.bodyLimit } : {}),
      ...(codec ? { schema: { response: { [status]: codec.json } } } : {}),
      handler: async (req, reply) => {
        // The onRequest hook has authenticated and authorized; this guards against a route added without it.
        if (!req.principal) throw new AuthError('UNAUTHENTICATED', 'a bearer token is required');
        if (r.permission) requirePermission(req.principal, r.permission);
        // biome-ignore lint/suspicious/noExplicitAny: the route's schemas typed its handler where it was declared; here the call is built from them
        const call: RouteCall<any, any, any> = {
          params: r.params ? parseWith(r.params, req.params, 'request path') : req.params,
          query: r.query ? parseWith(r.query, req.query, 'query') : req.query,
          body: r.body ? parseWith(r.body, req.body, 'request body') : req.body,
          principal: req.principal,
          rawBody: r.rawBody ? rawBodyOf(req) : undefined,
          req,
          reply,
        };
        reply.status(status);
        if (!r.heavy) return checked(r.handler(call, ctx), reply);
        const release = takeHeavySlot(req, reply);
        try {
          return await checked(r.handler(call, ctx), reply);
        } catch (err) {
          release();
          throw err;
        }
      },
    });
  }
}
