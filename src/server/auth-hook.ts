/**
 * Authentication and rate limiting. Requests are limited per verified identity, never per a
 * credential merely named in a header (token ids are public: naming one must not spend its
 * holder's budget); failed authentications are limited per client address, before any credential
 * is checked. Authentication and the route's permission come before the body is even parsed: a
 * forbidden caller gets 401/403, never 400.
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { AuthError, hasCode } from '../core/errors.js';
import { requirePermission, type Authenticator, type Permission, type Principal } from './auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The route options the authentication hook reads (set on every API route). */
export interface AuthConfig {
  readonly authenticate?: boolean;
  /** The permission needed; null: any authenticated caller. */
  readonly permission?: Permission | null;
}

/** Options of {@link installAuth}. */
export interface AuthHookOptions {
  readonly auth: Authenticator;
  readonly rateLimitPerMinute: number;
  readonly authFailuresPerMinute: number;
  /** Whether the request is for an entry bundle that needs `read` (not published). */
  readonly isEntryTile: (req: FastifyRequest) => boolean;
}

/** The one door to a credential check: the address's failure budget, then the credential. */
export type Authenticate = (req: FastifyRequest) => Promise<Principal>;

/** Installs the rate limiter and the authentication hook; returns the credential check. */
export async function installAuth(app: FastifyInstance, o: AuthHookOptions): Promise<Authenticate> {
  // The limiter's hook is route-level, so it runs after the authentication hook below: an
  // authenticated request is counted against its principal, a public one against its address.
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    max: o.rateLimitPerMinute,
    timeWindow: '1 minute',
    keyGenerator: (req) => req.principal?.key ?? `addr:${req.ip}`,
    errorResponseBuilder: () => {
      const e = new AuthError('RATE_LIMITED', 'too many requests');
      return Object.assign(e, { statusCode: 429 });
    },
  });
  const failures = createWindowCounter(o.authFailuresPerMinute, 60_000);
  const authenticate: Authenticate = async (req) => {
    const address = `addr:${req.ip}`;
    if (failures.exceeded(address)) throw new AuthError('RATE_LIMITED', 'too many failed authentications from this address');
    try {
      return await o.auth.authenticate(req.headers.authorization);
    } catch (err) {
      if (hasCode(err, 'UNAUTHENTICATED')) failures.add(address);
      throw err;
    }
  };
  // Which requests need a credential is decided on the matched route (the router has decoded the
  // path: /%61pi/... is /api/...) or, for unmatched ones, the decoded path. Entry bundles need
  // `read` too, unless the operator published them; the tile handler checks again on the parsed path.
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config as AuthConfig | undefined;
    const entryTile = o.isEntryTile(req);
    if (config?.authenticate !== true && !isProtectedPath(req.url) && !entryTile) return;
    req.principal = await authenticate(req);
    const permission = entryTile ? 'read' : config?.permission;
    if (permission) requirePermission(req.principal, permission);
  });
  return authenticate;
}

// Whether an unmatched request path is under /api or /fhir or is /metrics once decoded (percent-encoding,
// case, repeated slashes), so an unknown API route still answers 401 before 404.
function isProtectedPath(url: string): boolean {
  let path = url.split('?')[0]!;
  try {
    path = decodeURIComponent(path);
  } catch {
    return true;
  }
  path = path.toLowerCase().replace(/\/+/g, '/');
  // /fhir too, except the public CapabilityStatement.
  if ((path === '/fhir' || path.startsWith('/fhir/')) && path !== '/fhir/metadata') return true;
  return path === '/api' || path.startsWith('/api/') || path === '/metrics' || path.startsWith('/metrics/');
}

/** Counts events per key in fixed windows; memory is bounded (oldest keys are dropped first). */
function createWindowCounter(max: number, windowMs: number): { exceeded(key: string): boolean; add(key: string): void } {
  const counts = new Map<string, { n: number; resetAt: number }>();
  const MAX_KEYS = 100_000;
  const current = (key: string, now: number) => {
    const c = counts.get(key);
    if (c && c.resetAt > now) return c;
    if (c) counts.delete(key);
    return undefined;
  };
  return {
    exceeded(key) {
      return (current(key, Date.now())?.n ?? 0) >= max;
    },
    add(key) {
      const now = Date.now();
      const c = current(key, now);
      if (c) {
        c.n++;
        return;
      }
      if (counts.size >= MAX_KEYS) counts.delete(counts.keys().next().value!);
      counts.set(key, { n: 1, resetAt: now + windowMs });
    },
  };
}
