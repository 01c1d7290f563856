/**
 * A patient's accounting of disclosures (privacy officer: permission `disclosures`): JSON, or the
 * printable HTML page (`format=html` or `Accept: text/html`). The query is on the log (AUDIT_QUERY,
 * with a hash of the query, never the subject id) before the report is built.
 * @module
 */
import * as v from 'valibot';
import { buildDisclosureReport } from '../../service/disclosures.js';
import { renderDisclosureHtml } from '../../service/disclosures-html.js';
import { disclosureReportToFhir } from '../../service/disclosures-fhir.js';
import { DISCLOSURE_FORMATS, DISCLOSURES_QUERY_FIELDS, periodInOrder } from '../../service/requests.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';

/** Query of GET /api/v1/disclosures: the service's query, and the format. */
export const DISCLOSURES_HTTP_QUERY = v.pipe(
  v.object({ ...DISCLOSURES_QUERY_FIELDS, format: v.optional(v.picklist(DISCLOSURE_FORMATS, `format must be one of ${DISCLOSURE_FORMATS.join(', ')}`)) }),
  periodInOrder(),
);

// The format asked for: the query parameter, else the Accept header (HTML only when preferred to JSON).
function formatOf(format: string | undefined, accept: string | undefined): (typeof DISCLOSURE_FORMATS)[number] {
  if (format !== undefined) return format as (typeof DISCLOSURE_FORMATS)[number];
  const a = (accept ?? '').toLowerCase();
  if (a.includes('application/fhir+json')) return 'fhir';
  if (a.includes('text/html') && !a.startsWith('application/json')) return 'html';
  return 'json';
}

export const disclosureRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/disclosures',
    summary:
      "A patient's accounting of disclosures: every access, inference, training run, denial, read and opening of one subject, each with its inclusion proof (logged first: AUDIT_QUERY); JSON, FHIR (a Bundle of AuditEvents) or HTML (format, or Accept)",
    permission: 'disclosures',
    heavy: true,
    query: DISCLOSURES_HTTP_QUERY,
    produces: 'application/json, application/fhir+json, text/html',
    handler: async ({ query: q, principal, req, reply }, { log, audit, verifiers }) => {
      const format = formatOf(q.format, req.headers.accept);
      const { format: _f, ...query } = q;
      void _f;
      const report = await buildDisclosureReport(log, query, { actor: { id: principal.actor, role: principal.role }, route: routeOf(req), audit, verifier: verifiers[0]! });
      reply.header('cache-control', 'no-store');
      if (format === 'html') return reply.type('text/html; charset=utf-8').send(renderDisclosureHtml(report));
      if (format === 'fhir') return reply.type('application/fhir+json; charset=utf-8').send(disclosureReportToFhir(report));
      return reply.type('application/json; charset=utf-8').send(report);
    },
  }),
];
