/**
 * The HTTP API: `createApp(options)` builds a Fastify instance over a log, its governance overlay
 * and an authenticator. Routes are declared once in a table that drives both registration and the
 * OpenAPI document.
 * @module
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';
import { AuthError, ConflictError, NotFoundError, ValidationError, hasCode } from '../core/errors.js';
import { findInputProblem } from '../core/schema/parse.js';
import { toHex } from '../core/hash.js';
import { encodeEntryBundle, TILE_WIDTH, TILE_HEIGHT } from '../core/merkle/tiles.js';
import { nodeSeq } from '../core/merkle/node-id.js';
import { peekEntry } from '../core/entry.js';
import type { NoteVerifier } from '../core/note.js';
import type { Log, AppendResult } from '../log/log.js';
import { verifyLog } from '../log/verify-log.js';
import { ConsentDeniedError, type Governance } from '../service/governance.js';
import { rebuildReceipt } from '../service/receipt.js';
import { AuditTrail, OpeningLimiter, queryHash, type AuditCaller } from '../service/audit.js';
import { systemClock, type Clock } from '../log/clock.js';
import { CODE as CODE_SCHEMA, parseWith } from '../core/schema/parse.js';
import { verifyDocuments } from '../service/verify-documents.js';
import type { Decision } from '../core/consent/evaluate.js';
import { requirePermission, type Authenticator, type Permission, type Principal } from './auth.js';
import { toHttpError } from './http-errors.js';
import { createVocabulary } from '../core/vocabulary.js';
import { parseTilePath } from './tiles.js';

/** Options of {@link createApp}. */
export interface AppOptions {
  readonly log: Log;
  readonly governance: Governance;
  readonly auth: Authenticator;
  readonly verifiers: readonly NoteVerifier[];
  readonly origin: string;
  /** Largest request body in bytes (default 256 KiB). */
  readonly bodyLimit?: number;
  /** Requests per minute per authenticated caller, or per client address on public routes (default 60,000). */
  readonly rateLimitPerMinute?: number;
  /** Failed authentications per minute per client address before it gets 429 (default 300). */
  readonly authFailuresPerMinute?: number;
  /** Fastify logger: false, or pino options (default: info, with no headers or bodies). */
  readonly logger?: boolean | Record<string, unknown>;
  /** Directory of the web explorer (default: ../../web from this file). */
  readonly webRoot?: string;
  /**
   * Heavy reads (routes that scan the log: verify, export, entries, overview, anomalies, a
   * policy's history) allowed at once; more are answered 503 SERVER_BUSY (default 2).
   */
  readonly heavyConcurrency?: number;
  /**
   * Serve entry bundles (`/tile/entries/...`) without a credential (default false: they need
   * `read`). Opting in publishes per-policy pseudonymous linkage: policy ids, actor ids, roles.
   */
  readonly publicEntries?: boolean;
  /** Openings of patient-linked commitments per caller per minute (default 30). */
  readonly openingsPerMinute?: number;
  /** Window over which a caller's refused requests are aggregated into one SECURITY_ALERT (default 60 s). */
  readonly alertWindowMs?: number;
  /** Immediate SECURITY_ALERT writes across all callers per window (default 60; see AuditTrail). */
  readonly alertsPerWindow?: number;
  /** Time for the audit windows and the openings limit (default the system clock). */
  readonly clock?: Clock;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

type Handler = (req: FastifyRequest, reply: FastifyReply, p: Principal) => Promise<unknown>;

/** One API route: drives registration, authorization and the OpenAPI document. */
interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly url: string;
  readonly summary: string;
  /** The permission needed; null: any authenticated caller. */
  readonly permission: Permission | null;
  readonly body?: Record<string, unknown>;
  readonly query?: Record<string, unknown>;
  readonly status?: number;
  /** Scans the log: counted against `heavyConcurrency`. */
  readonly heavy?: true;
  readonly handler: Handler;
}

const HEX64 = { type: 'string', pattern: '^[0-9a-fA-F]{64}$' };
const ARTIFACT = { type: 'object', required: ['uri', 'digest'], additionalProperties: false, properties: { uri: { type: 'string', maxLength: 2048 }, digest: HEX64 } };
const ACTOR = { type: 'object', properties: { id: { type: 'string' }, role: { type: 'string' } } };
const CODE = { type: 'string', maxLength: 64 };

function eventJson(e: AppendResult): Record<string, unknown> {
  return { index: e.index, leafHash: toHex(e.leafHash), treeSize: e.checkpoint.treeSize, rootHash: toHex(e.checkpoint.rootHash), checkpoint: e.checkpoint.note };
}

function decisionJson(d: Decision): Record<string, unknown> {
  return { effect: d.effect, reason: d.reason, policyId: d.policyId, policyVersion: d.policyVersion ?? null, policyHash: d.policyHash ?? null, provision: d.provision ?? null, explanation: d.explanation };
}

// The actor and role come from the credential. A body may repeat them, but not claim another.
// The claim is untrusted: a string (the actor id) or { id: string, role?: string }, nothing else.
function actorFrom(p: Principal, body: unknown): { id: string; role: string } {
  const claimed = typeof body === 'object' && body !== null ? (body as { actor?: unknown }).actor : undefined;
  if (claimed !== undefined) {
    const c: { id?: unknown; role?: unknown } =
      typeof claimed === 'string' ? { id: claimed } : typeof claimed === 'object' && claimed !== null && !Array.isArray(claimed) ? claimed : {};
    if (typeof c.id !== 'string' || (c.role !== undefined && typeof c.role !== 'string')) {
      throw new ValidationError('VALIDATION_FAILED', 'actor must be the credential’s actor id, or { id, role } with strings', { issues: [{ path: 'actor', message: 'expected a string or { id: string, role?: string }' }] });
    }
    if (c.id !== p.actor || (c.role !== undefined && c.role !== p.role)) {
      throw new AuthError('ACTOR_MISMATCH', 'the request claims an actor or role other than the credential’s', { details: { credentialActor: p.actor, credentialRole: p.role } });
    }
  }
  return { id: p.actor, role: p.role };
}

const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/** Builds the HTTP application. */
export async function createApp(o: AppOptions): Promise<FastifyInstance> {
  const { log, governance: g, auth } = o;
  const store = log.store;
  const clock = o.clock ?? systemClock;
  // Audit events are checked against the event registry with the deployment's roles and purposes.
  const vocabulary = createVocabulary({ roles: auth.roles, purposes: [...g.vocabulary.purposes] });
  const audit = new AuditTrail({ log, clock, vocabulary, ...(o.alertWindowMs ? { windowMs: o.alertWindowMs } : {}), ...(o.alertsPerWindow ? { alertsPerWindow: o.alertsPerWindow } : {}) });
  const openings = new OpeningLimiter({ max: o.openingsPerMinute ?? 30, windowMs: 60_000, clock });
  // Refusals before authentication name the caller by a keyed hash of its address (the key lives
  // in this process only): alerts from one address group together, the address is not on the log.
  const clientKey = randomBytes(32);
  const clientOf = (req: FastifyRequest): string => createHmac('sha256', clientKey).update(req.ip).digest('hex').slice(0, 32);
  const routeOf = (req: FastifyRequest): string => `${req.method} ${req.routeOptions?.url ?? 'UNMATCHED'}`;
  // The fast path (authentication before anything else); the tile handler decides on the parsed path.
  const isEntryTile = (req: FastifyRequest): boolean => !o.publicEntries && req.url.startsWith('/tile/entries/');
  const app = Fastify({
    bodyLimit: o.bodyLimit ?? 256 * 1024,
    logger:
      o.logger === false
        ? false
        : {
            level: 'info',
            // No headers (tokens), no bodies (patient data): method, route and status only.
            serializers: {
              req: (req: { method: string; routeOptions?: { url?: string } }) => ({ method: req.method, route: req.routeOptions?.url }),
              res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
            },
            ...(typeof o.logger === 'object' ? o.logger : {}),
          },
    // No coercion: null must not become false, nor 7 become "7". Query numbers are parsed explicitly.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    // Router errors (a path that is not valid percent-encoding) in the one error shape.
    frameworkErrors: (err, _req, reply) => {
      const code = (err as { code?: string }).code;
      const message =
        code === 'FST_ERR_BAD_URL' ? 'the request path is not valid percent-encoding'
        : code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is longer than 100 characters'
        : undefined;
      const { status, body } = message ? { status: 400, body: { error: { code: 'VALIDATION_FAILED', message } } } : toHttpError(err);
      void withSecurityHeaders(reply).code(status).send(body);
    },
  });
  // JSON only: Fastify's default text/plain parser would accept bodies docs/http-api.md refuses (415).
  app.removeContentTypeParser('text/plain');
  // Every response, API, static, public or error, carries the security headers.
  app.addHook('onSend', async (_req, reply, payload) => {
    withSecurityHeaders(reply);
    return payload;
  });

  // ---- input well-formedness --------------------------------------------------------------
  // Every JSON body is checked before any hook or handler sees it: a lone surrogate anywhere (a
  // value or a key) or nesting over 64 is refused with 400 VALIDATION_FAILED. Fastify's own parser
  // still does the parsing and its __proto__/constructor poisoning checks.
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
  // The path parameters and the query string, likewise, before validation and the handler.
  app.addHook('preValidation', async (req) => {
    const problem = findInputProblem({ params: req.params, query: req.query });
    if (problem) throw new ValidationError('VALIDATION_FAILED', `invalid request: ${problem.path}: ${problem.message}`, { issues: [problem] });
  });

  // ---- metrics --------------------------------------------------------------------------
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'custos_' });
  const httpRequests = new Counter({ name: 'custos_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const httpDuration = new Histogram({ name: 'custos_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const decisions = new Counter({ name: 'custos_decisions_total', help: 'Consent decisions by effect and reason', labelNames: ['operation', 'effect', 'reason'], registers: [registry] });
  new Gauge({ name: 'custos_log_entries', help: 'Entries in the log', registers: [registry], collect() { this.set(log.size); } });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions?.url ?? 'unknown';
    httpRequests.inc({ method: req.method, route, status: reply.statusCode });
    httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  // ---- errors -----------------------------------------------------------------------------
  app.setErrorHandler(async (err, req, reply) => {
    if (err instanceof ConsentDeniedError) {
      decisions.inc({ operation: String(req.routeOptions?.url), effect: 'deny', reason: err.decision.reason });
      return reply.status(403).send({ error: { code: err.code, message: err.message, details: err.details }, decision: decisionJson(err.decision), event: eventJson(err.event) });
    }
    if (hasCode(err, 'SERVER_BUSY')) reply.header('retry-after', '1');
    if (err instanceof AuthError) {
      // A refused request is a security event: aggregated per caller and window (service/audit.ts).
      const p = req.principal;
      const caller: AuditCaller = p ? { actor: p.actor, role: p.role } : { client: clientOf(req) };
      const routePermission = (req.routeOptions?.config as { permission?: Permission | null } | undefined)?.permission ?? (isEntryTile(req) ? 'read' : undefined);
      const detail = err.details?.['permission'];
      const permission = typeof detail === 'string' ? detail : routePermission ?? undefined;
      await audit.refused(caller, { code: err.code, route: routeOf(req), ...(permission ? { permission } : {}) });
    }
    const { status, body } = toHttpError(err);
    if (status >= 500) req.log.error({ code: body.error.code, err: (err as Error)?.name }, 'request failed');
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler(async (_req, reply) => reply.status(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: 'no such route' } }));

  // ---- authentication and rate limiting ---------------------------------------------------
  // Requests are limited per verified identity, never per a credential merely named in a header
  // (token ids are public: naming one must not spend its holder's budget). The limiter's hook is
  // route-level, so it runs after the authentication hook below: an authenticated request is
  // counted against its principal, a public one against its client address.
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    max: o.rateLimitPerMinute ?? 60_000,
    timeWindow: '1 minute',
    keyGenerator: (req) => req.principal?.key ?? `addr:${req.ip}`,
    errorResponseBuilder: () => {
      const e = new AuthError('RATE_LIMITED', 'too many requests');
      return Object.assign(e, { statusCode: 429 });
    },
  });
  // Failed authentications are limited per client address, before any credential is checked.
  const failures = createWindowCounter(o.authFailuresPerMinute ?? 300, 60_000);
  // The one door to a credential check (the hook and the tile handler): the address's failure
  // budget first, then the credential, and every failure counted.
  const authenticate = async (req: FastifyRequest): Promise<Principal> => {
    const address = `addr:${req.ip}`;
    if (failures.exceeded(address)) throw new AuthError('RATE_LIMITED', 'too many failed authentications from this address');
    try {
      return await auth.authenticate(req.headers.authorization);
    } catch (err) {
      if (hasCode(err, 'UNAUTHENTICATED')) failures.add(address);
      throw err;
    }
  };

  // Authentication, then the route's permission, before the body is even parsed: a forbidden
  // caller gets 401/403, never 400. Which requests need it is decided on the matched route (the
  // router has decoded the path: /%61pi/... is /api/...) or, for unmatched ones, the decoded path.
  // Entry bundles need `read` too, unless the operator published them (publicEntries); the tile
  // handler checks again on the parsed tile path.
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config as { authenticate?: boolean; permission?: Permission | null } | undefined;
    const entryTile = isEntryTile(req);
    if (config?.authenticate !== true && !isProtectedPath(req.url) && !entryTile) return;
    req.principal = await authenticate(req);
    const permission = entryTile ? 'read' : config?.permission;
    if (permission) requirePermission(req.principal, permission);
  });
  // Refusals still counted are written when the server closes (before the log is closed).
  app.addHook('onClose', async () => audit.flush());

  // ---- public: health, tlog-tiles, OpenAPI, the explorer ------------------------------------
  app.get('/healthz', async () => ({ ok: true, entries: log.size }));

  app.get('/checkpoint', async (_req, reply) => {
    const cp = await store.latestCheckpoint();
    if (!cp) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint yet');
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(cp.note);
  });

  // The verifier key is public (anyone may check the log with it); fetch it once and pin it.
  app.get('/log.pub', async (_req, reply) => reply.type('text/plain; charset=utf-8').send(`${(await store.getMeta('verifier_key')) ?? ''}\n`));

  app.get('/tile/*', async (req, reply) => {
    const t = parseTilePath((req.params as { '*': string })['*']);
    if (!t) throw new NotFoundError('ROUTE_NOT_FOUND', 'not a tile path');
    const size = (await store.latestCheckpoint())?.treeSize ?? 0;
    const width = t.width ?? TILE_WIDTH;
    if (t.level === 'entries') {
      // Decided on the parsed path (the onRequest hook sees the raw URL, which an encoded or
      // doubled path would get past): entry bundles need `read` unless published.
      if (!o.publicEntries) {
        req.principal ??= await authenticate(req);
        requirePermission(req.principal, 'read');
      }
      const start = t.index * TILE_WIDTH;
      if (start + width > size) throw new NotFoundError('ENTRY_NOT_FOUND', 'no such entry bundle');
      const entries: Buffer[] = [];
      for await (const page of store.entryPages(start, start + width)) for (const e of page) entries.push(e.bytes);
      if (entries.length !== width) throw new NotFoundError('ENTRY_NOT_FOUND', 'entry bundle incomplete in the store');
      if (req.principal) {
        // Not published: a bulk read by an authenticated caller, on the log before it is served.
        await audit.query({ id: req.principal.actor, role: req.principal.role }, { route: routeOf(req), permission: 'read', range: { from: start, to: start + width } });
        return sendTile(reply, encodeEntryBundle(entries), t.width === undefined, true);
      }
      return sendTile(reply, encodeEntryBundle(entries), t.width === undefined);
    }
    // Tile L/N holds the hashes of tree level 8L, indices 256N ... 256N+width-1.
    const level = t.level * TILE_HEIGHT;
    const first = t.index * TILE_WIDTH;
    const complete = Math.floor(size / 2 ** level);
    if (first + width > complete) throw new NotFoundError('ENTRY_NOT_FOUND', 'no such tile');
    const ids = Array.from({ length: width }, (_, i) => ({ level, index: first + i }));
    const nodes = await store.getNodes(ids);
    const out = Buffer.alloc(width * 32);
    ids.forEach((id, i) => {
      const h = nodes.get(nodeSeq(id.level, id.index));
      if (!h) throw new NotFoundError('ENTRY_NOT_FOUND', 'tile incomplete in the store');
      h.copy(out, i * 32);
    });
    return sendTile(reply, out, t.width === undefined);
  });

  const webRoot = o.webRoot ?? fileURLToPath(new URL('../../web/', import.meta.url));
  app.get('/', async (_req, reply) => serveStatic(reply, webRoot, 'index.html'));
  app.get('/ui/*', async (req, reply) => serveStatic(reply, webRoot, (req.params as { '*': string })['*']));

  // ---- the API ----------------------------------------------------------------------------
  const created = async <T>(reply: FastifyReply, value: T) => reply.status(201).send(value);
  const routes: Route[] = [
    {
      method: 'GET', url: '/api/v1/me', summary: 'The authenticated caller: actor, role, permissions (any valid credential)', permission: null,
      handler: async (_req, _reply, p) => ({ actor: p.actor, role: p.role, permissions: [...p.permissions] }),
    },
    {
      method: 'POST', url: '/api/v1/consents', summary: 'Create version 1 of a consent policy', permission: 'consent:write', status: 201,
      body: { type: 'object', required: ['subject', 'allowedPurposes', 'allowedRoles'], properties: { policyId: { type: 'string', pattern: '^pol_[a-z2-7]{25}[aeimquy4]$' }, externalRef: { type: 'string', maxLength: 256 }, subject: { type: 'string' }, allowedPurposes: { type: 'array', items: CODE }, allowedRoles: { type: 'array', items: CODE }, validFrom: { type: 'string' }, validUntil: { type: 'string' }, revocable: { type: 'boolean' }, provisions: { type: 'array' }, actor: ACTOR } },
      handler: async (req, reply, p) => {
        const { actor: _a, ...input } = req.body as Record<string, unknown>;
        void _a;
        const r = await g.createConsent(input, actorFrom(p, req.body));
        return created(reply, { policy: r.policy, hash: r.hash, event: eventJson(r.event) });
      },
    },
    {
      method: 'POST', url: '/api/v1/consents/:policyId/revoke', summary: 'Revoke a consent policy (a new version)', permission: 'consent:write', status: 201,
      handler: async (req, reply, p) => {
        const r = await g.revokeConsent((req.params as { policyId: string }).policyId, actorFrom(p, req.body));
        return created(reply, { policy: r.policy, hash: r.hash, event: eventJson(r.event) });
      },
    },
    {
      method: 'POST', url: '/api/v1/consents/:policyId/check', summary: 'The decision a request would get now, with its reason (writes no decision; logged: AUDIT_READ)', permission: 'consent:check',
      body: { type: 'object', required: ['purpose', 'role'], properties: { purpose: CODE, role: CODE } },
      handler: async (req, _reply, who) => {
        const d = await g.checkConsent((req.params as { policyId: string }).policyId, req.body as { purpose: string; role: string });
        // A read of a patient's policy (its decision and explanation): on the log before it is returned.
        await audit.read({ id: who.actor, role: who.role }, { route: routeOf(req), permission: 'consent:check', policyId: d.policyId });
        return decisionJson(d);
      },
    },
    {
      method: 'GET', url: '/api/v1/consents/:policyId', summary: "A policy's versions, each with its log entry and the decisions made under it (logged: AUDIT_READ)", permission: 'consent:read', heavy: true,
      handler: async (req, _reply, who) => {
        const id = (req.params as { policyId: string }).policyId;
        const show = await g.showConsent(id);
        const byVersion = new Map<number, { index: number; type: string; time: string; actor: unknown; role: unknown; purpose: unknown; reason: string }[]>();
        const size = log.size;
        for await (const page of store.entryPages(0, size)) {
          for (const e of page) {
            if (e.bytes.indexOf(`"policyId":${JSON.stringify(id)}`) < 0) continue;
            const ent = JSON.parse(e.bytes.toString('utf8')) as { type: string; time: string; payload: Record<string, unknown> };
            if (!['DATA_ACCESSED', 'INFERENCE_EXECUTED', 'CONSENT_DENIED'].includes(ent.type)) continue;
            const v = Number(ent.payload['policyVersion'] ?? 0);
            const list = byVersion.get(v) ?? [];
            list.push({ index: e.index, type: ent.type, time: ent.time, actor: ent.payload['actor'], role: ent.payload['role'], purpose: ent.payload['purpose'], reason: String(ent.payload['reason'] ?? 'PERMITTED') });
            byVersion.set(v, list);
          }
        }
        await audit.read({ id: who.actor, role: who.role }, { route: routeOf(req), permission: 'consent:read', policyId: show.policyId });
        return { ...show, decisions: Object.fromEntries([...byVersion.entries()].map(([v, l]) => [String(v), l])) };
      },
    },
    {
      method: 'POST', url: '/api/v1/access', summary: 'Record an access to patient data, after the consent check (403 CONSENT_DENIED is logged)', permission: 'access', status: 201,
      body: { type: 'object', required: ['purpose', 'policyId', 'artifact'], properties: { purpose: CODE, policyId: { type: 'string' }, artifact: ARTIFACT, actor: ACTOR } },
      handler: async (req, reply, p) => {
        const b = req.body as { purpose: string; policyId: string; artifact: { uri: string; digest: string } };
        const r = await g.recordDataAccess({ actor: actorFrom(p, req.body), purpose: b.purpose, policyId: b.policyId, artifact: b.artifact });
        decisions.inc({ operation: 'access', effect: 'permit', reason: 'PERMITTED' });
        return created(reply, { decision: decisionJson(r.decision), event: eventJson(r.event) });
      },
    },
    {
      method: 'POST', url: '/api/v1/inferences', summary: 'Record an inference under consent; returns its receipt (403 CONSENT_DENIED is logged)', permission: 'inference', status: 201,
      body: { type: 'object', required: ['purpose', 'policyId', 'input', 'outputs', 'pipeline', 'model'], properties: { purpose: CODE, policyId: { type: 'string' }, input: ARTIFACT, outputs: { type: 'array', items: { type: 'object', required: ['name', 'uri', 'digest'], properties: { name: CODE, uri: { type: 'string' }, digest: HEX64 } } }, pipeline: { type: 'object' }, model: { type: 'object' }, actor: ACTOR } },
      handler: async (req, reply, p) => {
        const b = req.body as Record<string, unknown>;
        const r = await g.recordInference({ actor: actorFrom(p, b), purpose: b['purpose'] as string, policyId: b['policyId'] as string, input: b['input'] as never, outputs: b['outputs'] as never, pipeline: b['pipeline'], model: b['model'] });
        decisions.inc({ operation: 'inference', effect: 'permit', reason: 'PERMITTED' });
        return created(reply, { receipt: r.receipt, receiptHash: r.receiptHash, decision: decisionJson(r.decision), event: eventJson(r.event) });
      },
    },
    {
      method: 'POST', url: '/api/v1/trainings', summary: 'Record a training run: identified data under every subject\'s consent (policyIds; 403 CONSENT_DENIED is logged), de-identified or synthetic data with an attestation', permission: 'training', status: 201,
      body: { type: 'object', required: ['purpose', 'dataset', 'manifest', 'modelBefore', 'modelAfter', 'computeBackend'], properties: { purpose: CODE, dataset: { type: 'object' }, policyIds: { type: 'array', items: { type: 'string' } }, attestation: { type: 'object', properties: { method: CODE, document: HEX64 } }, manifest: { type: 'object' }, modelBefore: { type: 'object' }, modelAfter: { type: 'object' }, computeBackend: { type: 'string' }, actor: ACTOR } },
      handler: async (req, reply, p) => {
        const b = req.body as Record<string, unknown>;
        const r = await g.recordTraining({ actor: actorFrom(p, b), purpose: b['purpose'] as string, dataset: b['dataset'] as never, ...(b['policyIds'] === undefined ? {} : { policyIds: b['policyIds'] as string[] }), ...(b['attestation'] === undefined ? {} : { attestation: b['attestation'] as never }), manifest: b['manifest'], modelBefore: b['modelBefore'], modelAfter: b['modelAfter'], computeBackend: b['computeBackend'] as string });
        decisions.inc({ operation: 'training', effect: 'permit', reason: 'PERMITTED' });
        return created(reply, { manifestHash: r.manifestHash, decisions: r.decisions.map(decisionJson), event: eventJson(r.event) });
      },
    },
    {
      method: 'POST', url: '/api/v1/erasures', summary: "Erase a subject's or URI's openings (a subject's linked URIs too), or a provenance document by hash; logs ERASURE_PERFORMED in the same transaction", permission: 'erase', status: 201,
      body: { type: 'object', required: ['kind', 'value'], additionalProperties: false, properties: { kind: { type: 'string', enum: ['subject', 'uri', 'external_ref', 'document'] }, value: { type: 'string', minLength: 1, maxLength: 2048 }, actor: ACTOR } },
      handler: async (req, reply, p) => {
        const b = req.body as { kind: 'subject' | 'uri' | 'external_ref' | 'document'; value: string };
        const r = await g.erase(b.kind, b.value, actorFrom(p, req.body));
        // Nothing held an opening of that value: nothing was written.
        if (!r.event) return { erased: [], event: null };
        return created(reply, { erased: r.commitments, ...(r.document === undefined ? {} : { document: r.document }), event: eventJson(r.event), scrub: r.scrub ?? null });
      },
    },
    {
      method: 'GET', url: '/api/v1/receipts/:index',
      summary: 'Rebuild the receipt of an inference event, every hash re-checked, with its inclusion proof; URI commitments only (AUDIT_READ). With open=true&purpose=CODE and commitments:open: the URIs too (PATIENT_DATA_OPENED, rate-limited)',
      permission: 'receipts',
      query: { type: 'object', properties: { open: { type: 'string', enum: ['true', 'false'] }, purpose: { type: 'string', maxLength: 64 } } },
      handler: async (req, _reply, p) => {
        const index = parseIndex((req.params as { index: string }).index);
        const q = req.query as { open?: string; purpose?: string };
        const who = { id: p.actor, role: p.role };
        if (q.open !== 'true') {
          const r = await rebuildReceipt(store, o.verifiers, o.origin, index, { open: false });
          await audit.read(who, { route: routeOf(req), permission: 'receipts', eventIndex: index });
          return r;
        }
        // Opening patient-linked commitments: a permission, a purpose of use, a rate limit, and an
        // event on the log naming the commitments before any value is returned.
        requirePermission(p, 'commitments:open');
        if (q.purpose === undefined) throw new ValidationError('VALIDATION_FAILED', 'opening commitments needs a purpose of use (purpose=CODE)', { issues: [{ path: 'purpose', message: 'required with open=true' }] });
        const purpose = parseWith(CODE_SCHEMA, q.purpose, 'purpose');
        // A code from the purpose vocabulary (HL7 v3 PurposeOfUse + configured), never free text.
        if (!g.vocabulary.purposes.has(purpose)) throw new ValidationError('VALIDATION_FAILED', `unknown purpose ${purpose}`, { issues: [{ path: 'purpose', message: 'not in the purpose vocabulary' }] });
        openings.take(p.key);
        const r = await rebuildReceipt(store, o.verifiers, o.origin, index, { open: true });
        const commitments = r.artifacts.filter((a) => a.state === 'opened').map((a) => a.commitment);
        await audit.opened(who, { route: routeOf(req), permission: 'commitments:open', purpose, eventIndex: index, commitments });
        return r;
      },
    },
    {
      method: 'GET', url: '/api/v1/entries', summary: 'Entries, newest first, filtered by type, actor, role, purpose, outcome and time (logged: AUDIT_QUERY)', permission: 'read', heavy: true,
      query: { type: 'object', properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' }, before: { type: 'string', pattern: '^[0-9]{1,16}$' }, type: { type: 'string' }, actor: { type: 'string' }, role: { type: 'string' }, purpose: { type: 'string' }, outcome: { type: 'string', enum: ['executed', 'denied'] }, since: { type: 'string' }, until: { type: 'string' } } },
      handler: async (req) => {
        const q = req.query as Record<string, string | undefined>;
        const limit = q['limit'] === undefined ? undefined : Number(q['limit']);
        if (limit !== undefined && limit > 500) throw new ValidationError('VALIDATION_FAILED', 'limit must be at most 500');
        for (const k of ['since', 'until'] as const) {
          if (q[k] !== undefined && !Number.isFinite(Date.parse(q[k]!))) throw new ValidationError('VALIDATION_FAILED', `${k} must be an RFC 3339 time`, { issues: [{ path: k, message: 'not a time' }] });
        }
        const result = await listEntries(log, { ...(q as object), ...(limit === undefined ? {} : { limit }), ...(q['before'] === undefined ? {} : { before: Number(q['before']) }) } as ListQuery);
        const indices = result.items.map((i) => (i as { index: number }).index);
        // The filter is recorded as a hash (it may name actors or purposes); the range as numbers.
        await audit.query(
          { id: req.principal!.actor, role: req.principal!.role },
          { route: routeOf(req), permission: 'read', count: indices.length, queryHash: queryHash(q), ...(indices.length > 0 ? { range: { from: Math.min(...indices), to: Math.max(...indices) + 1 } } : {}) },
        );
        return result;
      },
    },
    {
      method: 'GET', url: '/api/v1/entries/:index', summary: 'One entry with its inclusion proof against the latest signed checkpoint (logged: AUDIT_READ)', permission: 'read',
      handler: async (req, _reply, who) => {
        const index = parseIndex((req.params as { index: string }).index);
        const entry = await log.reader.getEntry(index);
        const p = await log.reader.inclusionProof(index);
        await audit.read({ id: who.actor, role: who.role }, { route: routeOf(req), permission: 'read', eventIndex: index });
        return { index, entry: JSON.parse(entry.bytes.toString('utf8')), entryText: entry.bytes.toString('utf8'), leafHash: toHex(p.leafHash), treeSize: p.treeSize, rootHash: toHex(p.rootHash), proof: p.proof.map(toHex), checkpoint: p.checkpoint?.note ?? null };
      },
    },
    {
      method: 'GET', url: '/api/v1/proofs/inclusion/:index', summary: 'RFC 9162 inclusion proof (query: size)', permission: 'read',
      query: { type: 'object', properties: { size: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } } },
      handler: async (req) => {
        const size = (req.query as { size?: string }).size;
        const p = await log.reader.inclusionProof(parseIndex((req.params as { index: string }).index), size === undefined ? undefined : Number(size));
        return { leafIndex: p.leafIndex, treeSize: p.treeSize, leafHash: toHex(p.leafHash), rootHash: toHex(p.rootHash), proof: p.proof.map(toHex), checkpoint: p.checkpoint?.note ?? null };
      },
    },
    {
      method: 'GET', url: '/api/v1/proofs/consistency', summary: 'RFC 9162 consistency proof (query: from, to)', permission: 'read',
      query: { type: 'object', required: ['from', 'to'], properties: { from: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' }, to: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } } },
      handler: async (req) => {
        const q = req.query as { from: string; to: string };
        const p = await log.reader.consistencyProof(Number(q.from), Number(q.to));
        return { oldSize: p.oldSize, newSize: p.newSize, oldRoot: toHex(p.oldRoot), newRoot: toHex(p.newRoot), proof: p.proof.map(toHex) };
      },
    },
    {
      method: 'GET', url: '/api/v1/checkpoint', summary: 'The latest signed checkpoint, with the verifier key', permission: 'read',
      handler: async () => {
        const cp = await store.latestCheckpoint();
        if (!cp) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint yet');
        return { origin: o.origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), note: cp.note, verifierKey: (await store.getMeta('verifier_key')) ?? null };
      },
    },
    {
      method: 'POST', url: '/api/v1/verify', summary: 'Verify the whole log and the off-ledger store (logged: AUDIT_QUERY)', permission: 'verify', heavy: true,
      handler: async (req, _reply, p) => {
        await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'verify' });
        const t = performance.now();
        const report = await verifyLog({ store, verifiers: o.verifiers, origin: o.origin });
        const documents = await verifyDocuments({ store });
        lastVerification = { ok: report.ok && documents.ok, at: new Date().toISOString(), entries: report.entries, firstBadIndex: report.firstBadIndex ?? null };
        return { ok: report.ok && documents.ok, log: report, documents, seconds: (performance.now() - t) / 1000 };
      },
    },
    {
      method: 'GET', url: '/api/v1/stats', summary: 'Entries, root, checkpoints, bytes on disk', permission: 'read',
      handler: async () => {
        const s = await store.stats();
        const cp = await store.latestCheckpoint();
        return { origin: o.origin, entries: s.treeSize, treeSize: cp?.treeSize ?? 0, rootHash: cp ? toHex(cp.rootHash) : null, checkpoints: s.checkpoints, bytesOnDisk: s.bytesOnDisk, lastUpdate: cp ? new Date(cp.timeMs).toISOString() : null };
      },
    },
    {
      method: 'GET', url: '/api/v1/overview', summary: 'For the explorer: size, checkpoint, last verification, events per type and hour, denials', permission: 'read', heavy: true,
      handler: async () => overview(log, lastVerification),
    },
    {
      method: 'GET', url: '/api/v1/anomalies', summary: 'Actors with unusual volume or denial rate over a window (query: hours; logged: AUDIT_QUERY)', permission: 'read', heavy: true,
      query: { type: 'object', properties: { hours: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?$' } } },
      handler: async (req, _reply, p) => {
        const h = Number((req.query as { hours?: string }).hours ?? 24);
        if (!(h >= 0.01 && h <= 8760)) throw new ValidationError('VALIDATION_FAILED', 'hours must be between 0.01 and 8760');
        // Staff activity: a bulk read, on the log before it is returned.
        await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'read', queryHash: queryHash({ hours: h }) });
        return anomalies(log, h);
      },
    },
    {
      method: 'GET', url: '/api/v1/export', summary: 'Stream the log as NDJSON (up to the latest checkpoint; logged first: AUDIT_QUERY)', permission: 'export', heavy: true,
      handler: async (req, reply, p) => {
        // On the log before the first byte: the export carries its own record.
        await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'export' });
        const size = (await store.latestCheckpoint())?.treeSize ?? 0;
        async function* lines() {
          for await (const page of store.entryPages(0, size)) {
            let chunk = '';
            for (const e of page) chunk += `{"index":${e.index},"leafHash":"${toHex(e.leafHash)}","entry":${e.bytes.toString('utf8')}}\n`;
            yield chunk;
          }
        }
        return reply.type('application/x-ndjson').send(Readable.from(lines()));
      },
    },
    {
      method: 'POST', url: '/api/v1/tokens', summary: 'Create a token (shown once)', permission: 'tokens', status: 201,
      body: { type: 'object', required: ['name', 'role'], additionalProperties: false, properties: { name: { type: 'string' }, role: CODE } },
      handler: async (req, reply, p) => {
        const b = req.body as { name: string; role: string };
        const r = await auth.createToken(b.name, b.role, { actor: p.actor, role: p.role });
        const { hash: _h, ...record } = r.record;
        void _h;
        return created(reply, { token: r.token, ...record });
      },
    },
    { method: 'GET', url: '/api/v1/tokens', summary: 'List tokens (never their secrets)', permission: 'tokens', handler: async () => auth.listTokens() },
    {
      method: 'DELETE', url: '/api/v1/tokens/:id', summary: 'Revoke a token', permission: 'tokens',
      handler: async (req, reply, p) => {
        await auth.revokeToken((req.params as { id: string }).id, { actor: p.actor, role: p.role });
        return reply.status(204).send();
      },
    },
    {
      method: 'GET', url: '/metrics', summary: 'Prometheus metrics', permission: 'read',
      handler: async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    },
  ];
  let lastVerification: { ok: boolean; at: string; entries: number; firstBadIndex: number | null } | null = null;

  // Heavy reads: at most `heavyConcurrency` at once, so that scans cannot crowd out everything
  // else (each also yields to the event loop between pages of the store). A slot is held until
  // the response is sent (a streamed export: until its end) or the connection closes.
  const heavyLimit = o.heavyConcurrency ?? 2;
  let heavyRunning = 0;
  const heavySlots = new WeakMap<FastifyRequest, () => void>();
  app.addHook('onResponse', async (req) => heavySlots.get(req)?.());
  const takeHeavySlot = (req: FastifyRequest, reply: FastifyReply): (() => void) => {
    if (heavyRunning >= heavyLimit) {
      throw new ConflictError('SERVER_BUSY', 'too many heavy reads at once; retry shortly', { details: { retryAfterSeconds: 1, limit: heavyLimit } });
    }
    heavyRunning++;
    let held = true;
    const release = () => {
      if (held) {
        held = false;
        heavyRunning--;
      }
    };
    heavySlots.set(req, release);
    reply.raw.once('close', release);
    return release;
  };

  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      schema: { ...(r.body ? { body: r.body } : {}), ...(r.query ? { querystring: r.query } : {}) },
      config: { authenticate: true, permission: r.permission },
      handler: async (req, reply) => {
        // The onRequest hook has authenticated and authorized; this guards against a route added without it.
        if (!req.principal) throw new AuthError('UNAUTHENTICATED', 'a bearer token is required');
        if (r.permission) requirePermission(req.principal, r.permission);
        if (!r.heavy) return r.handler(req, reply, req.principal);
        const release = takeHeavySlot(req, reply);
        try {
          return await r.handler(req, reply, req.principal);
        } catch (err) {
          release();
          throw err;
        }
      },
    });
  }

  const openapi = buildOpenApi(routes);
  app.get('/openapi.json', async () => openapi);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CSP).send(docsPage(routes)));
  return app;
}

// Content-Security-Policy. The explorer loads only its own files (one module script, one
// stylesheet; no inline script, no eval); 'unsafe-inline' styles stay for the element.style
// settings of its charts. API responses are data and may load nothing. No page may be framed.
const EXPLORER_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function withSecurityHeaders(reply: FastifyReply): FastifyReply {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  reply.header('referrer-policy', 'no-referrer');
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
  return reply;
}

// Whether an unmatched request path is under /api or is /metrics once decoded (percent-encoding,
// case, repeated slashes), so an unknown API route still answers 401 before 404.
function isProtectedPath(url: string): boolean {
  let path = url.split('?')[0]!;
  try {
    path = decodeURIComponent(path);
  } catch {
    return true;
  }
  path = path.toLowerCase().replace(/\/+/g, '/');
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

function sendTile(reply: FastifyReply, body: Buffer, full: boolean, restricted = false): FastifyReply {
  // Full tiles never change; partial ones are replaced by longer ones. Restricted ones (entry
  // bundles behind a credential) must not sit in a shared cache.
  return reply
    .type('application/octet-stream')
    .header('cache-control', restricted ? 'private, no-store' : full ? 'public, max-age=31536000, immutable' : 'no-store')
    .send(body);
}

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

function parseIndex(s: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(s)) throw new ValidationError('VALIDATION_FAILED', 'index must be a non-negative integer');
  return Number(s);
}

interface ListQuery {
  limit?: number;
  before?: number;
  type?: string;
  actor?: string;
  role?: string;
  purpose?: string;
  outcome?: 'executed' | 'denied';
  since?: string;
  until?: string;
}

const EXECUTED = new Set(['DATA_ACCESSED', 'INFERENCE_EXECUTED', 'TRAINING_EXECUTED']);

async function listEntries(log: Log, q: ListQuery): Promise<{ items: unknown[]; next: number | null }> {
  const limit = q.limit ?? 50;
  const end = Math.min(log.size, q.before ?? log.size);
  const since = q.since ? Date.parse(q.since) : undefined;
  const until = q.until ? Date.parse(q.until) : undefined;
  const items: unknown[] = [];
  for await (const page of log.store.entryPagesDescending(0, end)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      if (since !== undefined && p.timeMs < since) return { items, next: null };
      if (until !== undefined && p.timeMs > until) continue;
      if (q.type && p.type !== q.type) continue;
      const payload = (p.payload ?? {}) as Record<string, unknown>;
      if (q.actor && payload['actor'] !== q.actor) continue;
      if (q.role && payload['role'] !== q.role) continue;
      if (q.purpose && payload['purpose'] !== q.purpose) continue;
      if (q.outcome === 'denied' && p.type !== 'CONSENT_DENIED') continue;
      if (q.outcome === 'executed' && !EXECUTED.has(p.type)) continue;
      items.push({ index: e.index, time: p.time, type: p.type, payload, leafHash: toHex(e.leafHash) });
      if (items.length >= limit) return { items, next: e.index };
    }
  }
  return { items, next: null };
}

async function overview(log: Log, last: unknown): Promise<unknown> {
  const cp = await log.store.latestCheckpoint();
  // Event types are caller-chosen ("constructor" is one): counted in objects without a prototype.
  const byType: Record<string, number> = Object.create(null) as Record<string, number>;
  const byHour = new Map<string, Record<string, number>>();
  let denials = 0;
  let scanned = 0;
  // The most recent 20,000 entries (the explorer's window).
  for await (const page of log.store.entryPagesDescending(Math.max(0, log.size - 20_000), log.size)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      scanned++;
      byType[p.type] = (byType[p.type] ?? 0) + 1;
      if (p.type === 'CONSENT_DENIED') denials++;
      const hour = p.time.slice(0, 13);
      const h = byHour.get(hour) ?? (Object.create(null) as Record<string, number>);
      h[p.type] = (h[p.type] ?? 0) + 1;
      byHour.set(hour, h);
    }
  }
  return {
    entries: log.size,
    checkpoint: cp ? { treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), note: cp.note, time: new Date(cp.timeMs).toISOString() } : null,
    lastVerification: last,
    scanned,
    eventsByType: byType,
    eventsByHour: [...byHour.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([hour, counts]) => ({ hour, counts })),
    denials,
  };
}

async function anomalies(log: Log, hours: number): Promise<unknown> {
  const cp = await log.store.latestCheckpoint();
  const now = cp?.timeMs ?? 0;
  const since = now - hours * 3_600_000;
  const actors = new Map<string, { actor: string; role: string; attempts: number; denials: number }>();
  outer: for await (const page of log.store.entryPagesDescending(0, log.size)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      if (p.timeMs < since) break outer;
      if (!EXECUTED.has(p.type) && p.type !== 'CONSENT_DENIED') continue;
      const payload = p.payload as { actor?: string; role?: string };
      const key = `${payload.actor}\u0000${payload.role}`;
      const a = actors.get(key) ?? { actor: String(payload.actor), role: String(payload.role), attempts: 0, denials: 0 };
      a.attempts++;
      if (p.type === 'CONSENT_DENIED') a.denials++;
      actors.set(key, a);
    }
  }
  const list = [...actors.values()];
  const mean = list.reduce((s, a) => s + a.attempts, 0) / Math.max(1, list.length);
  const sd = Math.sqrt(list.reduce((s, a) => s + (a.attempts - mean) ** 2, 0) / Math.max(1, list.length));
  const flagged = list
    .map((a) => {
      const reasons: string[] = [];
      if (list.length >= 3 && a.attempts > mean + 3 * sd && a.attempts >= 10) reasons.push('volume');
      if (a.attempts >= 5 && a.denials / a.attempts >= 0.5) reasons.push('denial rate');
      return { ...a, denialRate: a.denials / a.attempts, reasons };
    })
    .filter((a) => a.reasons.length > 0)
    .sort((x, y) => y.attempts - x.attempts);
  return { windowHours: hours, actors: list.length, meanAttempts: mean, sdAttempts: sd, flagged };
}

function buildOpenApi(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const err = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const params = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const query = r.query ? Object.entries((r.query as { properties: Record<string, unknown> }).properties).map(([name, schema]) => ({ name, in: 'query', required: ((r.query as { required?: string[] }).required ?? []).includes(name), schema })) : [];
    (paths[url] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      security: [{ bearer: [] }],
      'x-custos-permission': r.permission ?? 'any authenticated caller',
      ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      responses: { [String(r.status ?? 200)]: { description: 'success' }, '400': err, '401': err, '403': err, '404': err, '409': err, '413': err, '429': err },
    };
  }
  paths['/healthz'] = { get: { summary: 'Liveness (public)', responses: { '200': { description: 'ok' } } } };
  paths['/log.pub'] = { get: { summary: 'The verifier key (public): name+keyid+base64', responses: { '200': { description: 'verifier key' } } } };
  paths['/checkpoint'] = { get: { summary: 'C2SP tlog-tiles checkpoint (public, text/plain signed note)', responses: { '200': { description: 'signed note' } } } };
  paths['/tile/{path}'] = { get: { summary: 'C2SP tlog-tiles: hash tiles tile/<L>/<N>[.p/<W>] (public); entry bundles tile/entries/<N>[.p/<W>] (need read, logged as AUDIT_QUERY, unless the server runs with --public-entries)', parameters: [{ name: 'path', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'tile bytes' }, '404': err } } };
  return {
    openapi: '3.0.3',
    info: { title: 'Custos API', version: '1', description: 'Verifiable governance for clinical AI. Every /api route needs a bearer token; the actor and role on every event come from it.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } } } } },
    },
    paths,
  };
}

function docsPage(routes: readonly Route[]): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Custos API</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:960px}code{background:#f4f4f4;padding:1px 4px}td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left}</style></head><body>
<h1>Custos API</h1><p>The machine-readable document is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3). Send <code>Authorization: Bearer &lt;token&gt;</code>; create tokens with <code>custos token create --name NAME --role ROLE</code>. Errors are <code>{"error":{"code","message","details"}}</code>.</p>
<table><tr><th>method</th><th>path</th><th>permission</th><th>what</th></tr>
${routes.map((r) => `<tr><td>${r.method}</td><td><code>${esc(r.url)}</code></td><td>${r.permission ?? 'any'}</td><td>${esc(r.summary)}</td></tr>`).join('\n')}
<tr><td>GET</td><td><code>/healthz</code></td><td>public</td><td>liveness</td></tr>
<tr><td>GET</td><td><code>/checkpoint</code>, <code>/log.pub</code>, <code>/tile/&lt;L&gt;/&lt;N&gt;[.p/&lt;W&gt;]</code></td><td>public</td><td>C2SP tlog-tiles checkpoint and hash tiles: witnesses and monitors check the log with standard tooling</td></tr>
<tr><td>GET</td><td><code>/tile/entries/&lt;N&gt;[.p/&lt;W&gt;]</code></td><td>read (public with --public-entries)</td><td>C2SP tlog-tiles entry bundles (logged: AUDIT_QUERY)</td></tr>
</table></body></html>`;
}
