/**
 * The witness's HTTP server (C2SP tlog-witness): one route, `POST /add-checkpoint`, a small Fastify
 * app of its own (the log's server is src/server).
 *
 * - The body is read as bytes whatever its content type, up to `bodyLimit`, and must be UTF-8.
 * - 200: the cosignature line(s), text/plain. 409 WITNESS_OLD_SIZE_MISMATCH: the size cosigned
 *   last and a newline, as `text/x.tlog.size`, as the spec requires. Every other refusal carries
 *   the house error body `{ error: { code, message, details? } }` with the registry's status.
 * - Rate limit per log: requests naming a configured origin count against that log (so no log can
 *   make the witness sign and write without bound); anything else counts against its address.
 * @module
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { CustosError, ValidationError, httpStatusOf, type AnyErrorCode } from '../core/errors.js';
import { ADD_CHECKPOINT_PATH, TLOG_SIZE_CONTENT_TYPE } from '../core/tlog-witness.js';
import type { Witness } from './witness.js';

/** Options of {@link createWitnessApp}. */
export interface WitnessAppOptions {
  readonly witness: Witness;
  /** Largest request body in bytes (default 64 KiB: 63 proof lines and a note with 100 signatures fit well within). */
  readonly bodyLimit?: number;
  /** add-checkpoint requests per minute per log (default 600). */
  readonly rateLimitPerMinute?: number;
  /** Fastify's logger (default: on, info; false in tests). Bodies and addresses are never logged. */
  readonly logger?: boolean;
}

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

function errorBody(code: AnyErrorCode, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: { code, message, ...(details ? { details } : {}) } };
}

// Fastify's own refusals in the registry's terms.
function frameworkError(err: unknown): { code: AnyErrorCode; message: string } {
  const e = err as { code?: string; statusCode?: number };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { code: 'BODY_TOO_LARGE', message: 'request body too large' };
  if (e.statusCode === 429) return { code: 'RATE_LIMITED', message: 'too many requests for this log' };
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return { code: 'VALIDATION_FAILED', message: 'malformed request' };
  return { code: 'INTERNAL', message: 'internal error' };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Builds the witness's Fastify app (not listening). */
export async function createWitnessApp(o: WitnessAppOptions): Promise<FastifyInstance> {
  const { witness } = o;
  const app = Fastify({
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    logger:
      o.logger === false
        ? false
        : {
            level: 'info',
            serializers: {
              req: (req: { method: string; routeOptions?: { url?: string } }) => ({ method: req.method, route: req.routeOptions?.url }),
              res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
            },
          },
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
  });
  // The protocol's body is text with no prescribed content type: take the bytes whatever it says.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // The limiter runs after the body is read (preHandler), so it can key by the log the body names.
  const keyOf = (req: FastifyRequest): string => {
    const origin = Buffer.isBuffer(req.body) ? witness.knownOrigin(req.body.toString('latin1')) : undefined;
    return origin === undefined ? `addr:${req.ip}` : `log:${origin}`;
  };
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    errorResponseBuilder: () => Object.assign(new Error('rate limited'), { statusCode: 429 }),
  });

  app.setErrorHandler(async (err, req, reply) => {
    if (err instanceof CustosError) {
      if (err.code === 'WITNESS_OLD_SIZE_MISMATCH') {
        return reply
          .status(409)
          .type(TLOG_SIZE_CONTENT_TYPE)
          .send(`${Number(err.details?.['treeSize'] ?? 0)}\n`);
      }
      const status = httpStatusOf(err.code);
      // A refusal by a log's key (fork, bad proof) is an alarm for that log's operators: log it.
      const origin = err.details?.['origin'];
      if (status !== 400) req.log.warn({ code: err.code, ...(typeof origin === 'string' ? { origin } : {}) }, 'add-checkpoint refused');
      const details = err instanceof ValidationError && err.issues.length > 0 ? { ...err.details, issues: err.issues } : err.details;
      return reply.status(status).send(errorBody(err.code, err.message, details));
    }
    const { code, message } = frameworkError(err);
    if (code === 'INTERNAL') req.log.error({ err: (err as Error)?.name }, 'request failed');
    return reply.status(httpStatusOf(code)).send(errorBody(code, message));
  });
  app.setNotFoundHandler(async (_req, reply) => reply.status(404).send(errorBody('ROUTE_NOT_FOUND', 'no such route')));

  app.post(ADD_CHECKPOINT_PATH, { config: { rateLimit: { max: o.rateLimitPerMinute ?? 600, timeWindow: '1 minute', keyGenerator: keyOf } } }, async (req, reply) => {
    if (!Buffer.isBuffer(req.body)) throw new ValidationError('VALIDATION_FAILED', 'malformed add-checkpoint request: empty body', { issues: [{ path: 'body', message: 'empty' }] });
    let text: string;
    try {
      text = utf8.decode(req.body);
    } catch {
      throw new ValidationError('VALIDATION_FAILED', 'malformed add-checkpoint request: the body is not UTF-8', { issues: [{ path: 'body', message: 'not UTF-8' }] });
    }
    const r = witness.addCheckpoint(text);
    req.log.info({ origin: r.origin, oldSize: r.oldSize, treeSize: r.treeSize }, 'cosigned');
    return reply.status(200).type('text/plain; charset=utf-8').send(r.body);
  });
  return app;
}
