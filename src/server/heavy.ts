/**
 * Heavy reads (routes that scan the log): at most `limit` at once, so that scans cannot crowd out
 * everything else (each also yields to the event loop between pages of the store). A slot is held
 * until the response is sent (a streamed export: until its end) or the connection closes; more
 * are answered 503 SERVER_BUSY.
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError } from '../core/errors.js';

/** Takes a slot for a request, or throws SERVER_BUSY; returns its release (idempotent). */
export type TakeHeavySlot = (req: FastifyRequest, reply: FastifyReply) => () => void;

/** Installs the release of slots at the end of a response; returns the slot taker. */
export function installHeavyLimiter(app: FastifyInstance, limit: number): TakeHeavySlot {
  let running = 0;
  const slots = new WeakMap<FastifyRequest, () => void>();
  app.addHook('onResponse', (req, _reply, done) => {
    slots.get(req)?.();
    done();
  });
  return (req, reply) => {
    if (running >= limit) {
      throw new ConflictError('SERVER_BUSY', 'too many heavy reads at once; retry shortly', { details: { retryAfterSeconds: 1, limit } });
    }
    running++;
    let held = true;
    const release = () => {
      if (held) {
        held = false;
        running--;
      }
    };
    slots.set(req, release);
    reply.raw.once('close', release);
    return release;
  };
}
