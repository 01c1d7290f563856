/**
 * The audit trail as FHIR R4 (application/fhir+json): AuditEvent and Provenance searches (Bundle
 * searchset, paging by entry index) and reads by entry index, and the CapabilityStatement at
 * /fhir/metadata (public, like /openapi.json: it names only what the server supports). Errors
 * under /fhir are OperationOutcomes carrying the stable code (error-handler.ts).
 *
 * Searches need `read` (as GET /api/v1/entries); `patient` needs `commitments:open` as well (the
 * privacy officer's), since it resolves a subject id to its commitments. Every search and read is
 * on the log before the answer: AUDIT_QUERY (with the subject's commitments for `patient`, the
 * subject id left out of the query hash), AUDIT_READ.
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as v from 'valibot';
import { buildCapabilityStatement } from '../../fhir/capability.js';
import { toSearchBundle } from '../../fhir/bundle.js';
import { parseAuditSearch, type RawQuery } from '../../fhir/search.js';
import { queryHash } from '../../service/audit.js';
import { readFhirResource, searchFhir, subjectCommitments, type AuditResourceType } from '../../service/fhir-audit.js';
import { requirePermission } from '../auth.js';
import { routeOf } from '../context.js';
import { route, type Route } from '../route.js';
import { INDEX } from './shared.js';

/** The media type of every FHIR answer. */
export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** Whether a request path (undecoded or decoded, any case) is under /fhir. */
export function isFhirPath(url: string): boolean {
  let path = url.split('?')[0]!;
  try {
    path = decodeURIComponent(path);
  } catch {
    // an undecodable path is judged as it is
  }
  path = path.toLowerCase().replace(/\/+/g, '/');
  return path === '/fhir' || path.startsWith('/fhir/');
}

const LIST = v.union([v.string(), v.array(v.string())]);

/** The search query: unknown parameters are refused by parseAuditSearch (a 400 OperationOutcome). */
export const FHIR_SEARCH = v.looseObject({
  date: v.optional(LIST),
  agent: v.optional(LIST),
  entity: v.optional(LIST),
  patient: v.optional(LIST),
  _count: v.optional(LIST),
  _after: v.optional(LIST),
  _before: v.optional(LIST),
});

// The absolute base of the FHIR endpoint as the caller addressed it (Bundle fullUrl and links are
// absolute in R4). The Host header is the caller's: only a plain host[:port] is echoed.
function baseOf(req: FastifyRequest): string {
  const host = req.headers.host ?? '';
  const safe = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/.test(host) ? host : 'localhost';
  return `${req.protocol === 'https' ? 'https' : 'http'}://${safe}/fhir`;
}

function queryString(params: Readonly<Record<string, string | readonly string[] | undefined>>): string {
  const parts: string[] = [];
  for (const [k, val] of Object.entries(params)) {
    if (val === undefined) continue;
    for (const x of typeof val === 'string' ? [val] : val) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(x)}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

function fhirSend(reply: FastifyReply, body: unknown): FastifyReply {
  return reply.type(FHIR_JSON).send(body);
}

function searchRoute(type: AuditResourceType): Route {
  return route({
    method: 'GET',
    url: `/fhir/${type}`,
    summary: `Search ${type} resources (Bundle searchset): date, agent, entity, patient (needs commitments:open too), _count (1-1000, default 50), _after/_before (paging by entry index) (logged: AUDIT_QUERY)`,
    permission: 'read',
    heavy: true,
    query: FHIR_SEARCH,
    produces: 'application/fhir+json',
    handler: async ({ query, principal, req, reply }, { log, audit, origin }) => {
      const raw = query as RawQuery;
      const search = parseAuditSearch(raw);
      let subject: string[] | undefined;
      if (search.patient !== undefined) {
        requirePermission(principal, 'commitments:open');
        subject = await subjectCommitments(log.sidecar, search.patient);
      }
      const result = await searchFhir(log.reader, origin, type, search, subject);
      const indices = result.resources.map((r) => Number(r.id));
      const { patient: _p, ...hashed } = raw;
      void _p;
      // On the log before the answer. A patient search names the subject's commitments (never
      // the id, which is left out of the hash: a hash of an id is guessable).
      await audit.query(
        { id: principal.actor, role: principal.role },
        {
          route: routeOf(req),
          permission: 'read',
          count: indices.length,
          queryHash: queryHash(hashed as Record<string, unknown>),
          ...(indices.length > 0 ? { range: { from: indices[0]!, to: indices[indices.length - 1]! + 1 } } : {}),
          ...(subject ? { commitments: subject } : {}),
        },
      );
      const base = baseOf(req);
      const { _after: _a, _before: _b, ...rest } = raw;
      void _a;
      void _b;
      const link = (cursor: Record<string, string>) => `${base}/${type}${queryString({ ...rest, ...cursor })}`;
      const selfCursor: Record<string, string> = search.before !== undefined ? { _before: String(search.before) } : search.after !== undefined ? { _after: String(search.after) } : {};
      const bundle = toSearchBundle({
        base,
        resources: result.resources,
        total: result.total,
        links: {
          self: link(selfCursor),
          ...(result.hasNext ? { next: link({ _after: String(result.last ?? search.before! - 1) }) } : {}),
          ...(result.hasPrevious ? { previous: link({ _before: String(result.first ?? (search.after ?? -1) + 1) }) } : {}),
        },
      });
      return fhirSend(reply, bundle);
    },
  });
}

function readRoute(type: AuditResourceType): Route {
  return route({
    method: 'GET',
    url: `/fhir/${type}/:id`,
    summary: `Read one ${type} by its id, the entry index${type === 'Provenance' ? ' (inference receipts only)' : ''}, with its inclusion proof (logged: AUDIT_READ)`,
    permission: 'read',
    params: v.object({ id: INDEX }),
    produces: 'application/fhir+json',
    handler: async ({ params: { id }, principal, req, reply }, { log, audit, origin }) => {
      const r = await readFhirResource(log.reader, origin, type, id);
      await audit.read({ id: principal.actor, role: principal.role }, { route: routeOf(req), permission: 'read', eventIndex: id });
      return fhirSend(reply, r);
    },
  });
}

/** The FHIR routes of the route table (authenticated). */
export const fhirRoutes: readonly Route[] = [searchRoute('AuditEvent'), readRoute('AuditEvent'), searchRoute('Provenance'), readRoute('Provenance')];

/** The public path of the CapabilityStatement. */
export const FHIR_METADATA_PATH = '/fhir/metadata';

/**
 * Serves GET /fhir/metadata (public): the CapabilityStatement of the FHIR routes among `routes`,
 * made once (its date is when the server started).
 */
export function registerFhirMetadata(app: FastifyInstance, routes: readonly Route[], o: { date: string; softwareVersion: string }): void {
  const statement = buildCapabilityStatement(
    routes.filter((r) => isFhirPath(r.url)),
    o,
  );
  app.get(FHIR_METADATA_PATH, async (_req, reply) => fhirSend(reply, statement));
}
