/**
 * Security headers on every response (API, static, public or error), and the Content-Security-Policy
 * of each kind of page.
 * @module
 */
import type { FastifyInstance, FastifyReply } from 'fastify';

// The explorer loads only its own files (one module script, one stylesheet; no inline script, no
// eval); 'unsafe-inline' styles stay for the element.style settings of its charts. API responses
// are data and may load nothing. No page may be framed.
export const EXPLORER_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
export const DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Sets the security headers on `reply` (a page's own CSP, if already set, is kept). */
export function withSecurityHeaders(reply: FastifyReply): FastifyReply {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'no-referrer');
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
  return reply;
}

/**
 * Every response carries the security headers: they are set when the request arrives (the first
 * hook, before anything can fail; error and not-found replies keep them), and a page replaces the
 * API's CSP with its own. Requests the router refuses before any hook get them from
 * `frameworkErrors` (input.ts). A plain callback hook: no promise per request.
 */
export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (_req, reply, done) => {
    reply.headers(API_HEADERS);
    done();
  });
}
const API_HEADERS = { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer', 'content-security-policy': API_CSP } as const;
