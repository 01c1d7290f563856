/**
 * Input well-formedness, before any hook or handler sees a request: JSON bodies only (415
 * otherwise), no lone surrogate anywhere (a value or a key), no nesting over 64, and the same for
 * the path parameters and the query string. Router errors get the one error shape.
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

/** Installs the JSON parser with the well-formedness check, and the check of params and query. */
export function installInputChecks(app: FastifyInstance): void {
  // JSON only: Fastify's default text/plain parser would accept bodies docs/http-api.md refuses (415).
  app.removeContentTypeParser('text/plain');
  // Fastify's own parser still does the parsing and its __proto__/constructor poisoning checks.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    parseJson(req, body as string, (err: Error | null, value?: unknown) => {
      if (err) return done(err, undefined);
      const problem = findInputProblem(value);
      if (problem) return done(new ValidationError('VALIDATION_FAILED', `invalid request body: ${problem.path}: ${problem.message}`, { issues: [problem] }), undefined);
      done(null, value);
    });
  });
  app.addHook('preValidation', async (req) => {
    const problem = findInputProblem({ params: req.params, query: req.query });
    if (problem) throw new ValidationError('VALIDATION_FAILED', `invalid request: ${problem.path}: ${problem.message}`, { issues: [problem] });
  });
}
