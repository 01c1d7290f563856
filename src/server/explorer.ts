/**
 * The web explorer's static files (public): `/` and `/ui/*`, only files inside the web root.
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { NotFoundError } from '../core/errors.js';
import { EXPLORER_CSP } from './security-headers.js';

const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

function serveStatic(reply: FastifyReply, root: string, rel: string): FastifyReply {
  const base = normalize(root.endsWith(sep) ? root : root + sep);
  const path = normalize(join(base, rel));
  // Only files inside the web root (a sibling like web-private/ does not start with "web/").
  if (!path.startsWith(base) || !existsSync(path) || !statSync(path).isFile()) throw new NotFoundError('ROUTE_NOT_FOUND', 'no such file');
  return reply
    .type(MIME[extname(path)] ?? 'application/octet-stream')
    .header('content-security-policy', EXPLORER_CSP)
    .send(readFileSync(path));
}

/** Serves the explorer from `webRoot`. */
export function registerExplorer(app: FastifyInstance, webRoot: string): void {
  app.get('/', async (_req, reply) => serveStatic(reply, webRoot, 'index.html'));
  app.get('/ui/*', async (req, reply) => serveStatic(reply, webRoot, (req.params as { '*': string })['*']));
}
