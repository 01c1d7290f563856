/**
 * Input well-formedness, before any hook or handler sees a request: JSON bodies only (415
 * otherwise), no lone surrogate anywhere (a value or a key), no nesting over 64, and the same for
 * the path parameters and the query string. Router errors get the one error shape.
 *
 * A route declared with `rawBody` (POST /fhir/Consent, whose exact bytes are stored) also takes
 * `application/fhir+json`, and sees the bytes as received ({@link rawBodyOf}) beside the parsed
 * value; every check above applies to its body all the same. Other routes refuse fhir+json (415).
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ValidationError } from '../core/errors.js';
import { findInputProblem } from '../core/schema/parse.js';
import { errorResponse, toHttpError } from './http-errors.js';
import { withSecurityHeaders } from './security-headers.js';

/** Fastify's `frameworkErrors`: a path that is not valid percent-encoding, or a parameter too long. */
export function frameworkErrors(err: Error, _req: FastifyRequest, reply: FastifyReply): void {
  const code = (err as { code?: string }).code;
  const message = code === 'FST_ERR_BAD_URL' ? 'the request path is not valid percent-encoding' : code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is longer than 100 characters' : undefined;
  const { status, body } = message ? errorResponse('VALIDATION_FAILED', message) : toHttpError(err);
  void withSecurityHeaders(reply).code(status).send(body);
}

/** The route config key of routes that see their body's exact bytes. */
export interface RawBodyConfig {
  readonly rawBody?: boolean;
}

// The exact bytes of the body of a request to a rawBody route (held as long as the request is).
const rawBodies = new WeakMap<FastifyRequest, Buffer>();

/** The body of `req` exactly as received, for a route declared with `rawBody` (else undefined). */
export function rawBodyOf(req: FastifyRequest): Buffer | undefined {
  return rawBodies.get(req);
}

const wantsRaw = (req: FastifyRequest): boolean => (req.routeOptions?.config as RawBodyConfig | undefined)?.rawBody === true;

/** Installs the JSON parser with the well-formedness check, and the check of params and query. */
export function installInputChecks(app: FastifyInstance): void {
  // JSON only: Fastify's default text/plain parser would accept bodies docs/http-api.md refuses (415).
  app.removeContentTypeParser('text/plain');
  // Fastify's own parser still does the parsing and its __proto__/constructor poisoning checks.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // The bytes are read as a Buffer and decoded as UTF-8 exactly as `parseAs: 'string'` would.
  const parser = (fhir: boolean) => (req: FastifyRequest, body: string | Buffer, done: (err: Error | null, value?: unknown) => void) => {
    const raw = wantsRaw(req);
    // Fastify's own error for a media type without a parser: the one 415 UNSUPPORTED_MEDIA_TYPE.
    if (fhir && !raw) return done(Object.assign(new Error('unsupported media type'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), undefined);
    const bytes = body as Buffer;
    parseJson(req, bytes.toString('utf8'), (err: Error | null, value?: unknown) => {
      if (err) return done(err, undefined);
      const problem = findInputProblem(value);
      if (problem) return done(new ValidationError('VALIDATION_FAILED', `invalid request body: ${problem.path}: ${problem.message}`, { issues: [problem] }), undefined);
      if (raw) rawBodies.set(req, bytes);
      done(null, value);
    });
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parser(false));
  app.addContentTypeParser('application/fhir+json', { parseAs: 'buffer' }, parser(true));
  // A callback hook (no promise per request); a request without path parameters or query (most
  // writes) has nothing to walk.
  app.addHook('preValidation', (req, _reply, done) => {
    if (isEmpty(req.params) && isEmpty(req.query)) return done();
    const problem = findInputProblem({ params: req.params, query: req.query });
    if (problem) return done(new ValidationError('VALIDATION_FAILED', `invalid request: ${problem.path}: ${problem.message}`, { issues: [problem] }));
    done();
  });
}

// Nothing findInputProblem would walk: no own enumerable keys (Fastify's params and query when there are none).
function isEmpty(x: unknown): boolean {
  return x === undefined || (typeof x === 'object' && x !== null && Object.keys(x).length === 0);
}
