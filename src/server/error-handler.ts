/**
 * The one error handler: every error becomes `{ error: { code, message, details? } }` with the
 * registry's status (http-errors.ts). A consent refusal also carries its decision and its event;
 * an authentication or authorization refusal is a security event, aggregated per caller and window.
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuthError, hasCode } from '../core/errors.js';
import { ConsentDeniedError, ModelRefusedError } from '../service/governance.js';
import type { AuditCaller, AuditTrail } from '../service/audit.js';
import type { Permission } from './auth.js';
import type { AuthConfig } from './auth-hook.js';
import { routeOf } from './context.js';
import { errorResponse, toHttpError } from './http-errors.js';
import type { Metrics } from './metrics.js';
import { decisionJson, eventJson } from './routes/shared.js';
import { FHIR_JSON, isFhirPath } from './routes/fhir.js';
import { toOperationOutcome } from '../fhir/outcome.js';

/** Options of {@link installErrorHandler}. */
export interface ErrorHandlerOptions {
  readonly audit: AuditTrail;
  readonly metrics: Metrics;
  /** The keyed hash naming an unauthenticated caller (its address never goes on the log). */
  readonly clientOf: (req: FastifyRequest) => string;
  readonly isEntryTile: (req: FastifyRequest) => boolean;
}

/** Installs the error handler and the 404 handler. */
export function installErrorHandler(app: FastifyInstance, o: ErrorHandlerOptions): void {
  app.setErrorHandler(async (err, req, reply) => {
    if (err instanceof ConsentDeniedError) {
      o.metrics.decisions.inc({ operation: String(req.routeOptions?.url), effect: 'deny', reason: err.decision.reason });
      const { status, body } = toHttpError(err);
      return reply.status(status).send({ ...body, decision: decisionJson(err.decision), event: eventJson(err.event) });
    }
    // issue 14: an inference refused for its model (INFERENCE_REFUSED is on the log): counted, and its event returned.
    if (err instanceof ModelRefusedError) {
      o.metrics.decisions.inc({ operation: String(req.routeOptions?.url), effect: 'deny', reason: err.reason });
      const { status, body } = toHttpError(err);
      return reply.status(status).send({ ...body, event: eventJson(err.event) });
    }
    if (hasCode(err, 'SERVER_BUSY')) reply.header('retry-after', '1');
    if (err instanceof AuthError) {
      const p = req.principal;
      const caller: AuditCaller = p ? { actor: p.actor, role: p.role } : { client: o.clientOf(req) };
      const routePermission = (req.routeOptions?.config as AuthConfig | undefined)?.permission ?? (o.isEntryTile(req) ? 'read' : undefined);
      const detail = err.details?.['permission'];
      const permission: Permission | string | undefined = typeof detail === 'string' ? detail : (routePermission ?? undefined);
      await o.audit.refused(caller, { code: err.code, route: routeOf(req), ...(permission ? { permission } : {}) });
    }
    const { status, body } = toHttpError(err);
    if (status >= 500) req.log.error({ code: body.error.code, err: (err as Error)?.name }, 'request failed');
    // Under /fhir the same code and message, as an OperationOutcome.
    if (isFhirPath(req.routeOptions?.url ?? req.url)) return reply.status(status).type(FHIR_JSON).send(toOperationOutcome(status, body.error));
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler(async (req, reply) => {
    const { status, body } = errorResponse('ROUTE_NOT_FOUND', 'no such route');
    if (isFhirPath(req.url)) return reply.status(status).type(FHIR_JSON).send(toOperationOutcome(status, body.error));
    return reply.status(status).send(body);
  });
}
