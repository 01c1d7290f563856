/**
 * The OpenAPI 3.0 document and the readable docs page, built from the route declarations: each
 * route's permission, and its parameter, body and response schemas (converted from valibot).
 * @module
 */
import type { FastifyInstance } from 'fastify';
import { toJsonSchema } from '@valibot/to-json-schema';
import type * as v from 'valibot';
import { PROVISION } from '../core/consent/policy.js';
import type { Route } from './route.js';
import { DOCS_CSP } from './security-headers.js';

type JsonSchema = Record<string, unknown>;

// Validation the JSON Schema cannot express (checks across fields, transforms) is left out of
// the document; the server still applies it. Named schemas (recursive ones must be) go to
// components.schemas, since OpenAPI 3.0 has no $defs.
const NAMED: Record<string, v.GenericSchema> = { Provision: PROVISION as v.GenericSchema };

/** A valibot schema as OpenAPI 3.0 JSON Schema; its definitions are added to `components`. */
function jsonSchema(s: v.GenericSchema, components: Record<string, unknown>): JsonSchema {
  const { $defs, ...schema } = toJsonSchema(s, { target: 'openapi-3.0', errorMode: 'ignore', definitions: NAMED }) as JsonSchema & { $defs?: Record<string, unknown> };
  for (const [name, def] of Object.entries($defs ?? {})) components[name] ??= forOpenApi(def);
  return forOpenApi(schema) as JsonSchema;
}

// References into components, and no empty `required` list (OpenAPI 3.0 wants at least one name).
function forOpenApi(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(forOpenApi);
  if (typeof x === 'string') return x.startsWith('#/$defs/') ? `#/components/schemas/${x.slice('#/$defs/'.length)}` : x;
  if (x === null || typeof x !== 'object') return x;
  return Object.fromEntries(
    Object.entries(x)
      .filter(([k, val]) => !(k === 'required' && Array.isArray(val) && val.length === 0))
      .map(([k, val]) => [k, forOpenApi(val)]),
  );
}

/** A valibot schema as it appears in the OpenAPI document (references into components). */
export function toOpenApiSchema(s: v.GenericSchema): JsonSchema {
  return jsonSchema(s, {});
}

/** The entries of an object schema (path parameters and query strings are objects). */
function entriesOf(s: v.GenericSchema | undefined): [string, v.GenericSchema][] {
  const entries = (s as { entries?: Record<string, v.GenericSchema> } | undefined)?.entries;
  return entries ? Object.entries(entries) : [];
}

/** Builds the OpenAPI document of `routes` and the public endpoints. */
export function buildOpenApi(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, unknown> = {};
  const err = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const declared = new Map(entriesOf(r.params));
    const params = [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => {
      const schema = declared.get(m[1]!);
      return { name: m[1], in: 'path', required: true, schema: schema ? jsonSchema(schema, schemas) : { type: 'string' } };
    });
    const query = entriesOf(r.query).map(([name, schema]) => ({ name, in: 'query', required: schema.type !== 'optional', schema: jsonSchema(schema, schemas) }));
    const status = String(r.status ?? 200);
    const body = r.body ?? r.serviceBody;
    const content = r.response ? { content: { 'application/json': { schema: jsonSchema(r.response, schemas) } } } : r.produces ? { content: { [r.produces]: {} } } : {};
    (paths[url] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      security: [{ bearer: [] }],
      'x-custos-permission': r.permission ?? 'any authenticated caller',
      ...(r.bodyLimit ? { 'x-custos-body-limit': r.bodyLimit } : {}),
      ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
      ...(body ? { requestBody: { required: true, content: Object.fromEntries((r.consumes ?? ['application/json']).map((t) => [t, { schema: jsonSchema(body, schemas) }])) } } : {}),
      responses: { [status]: { description: 'success', ...content }, '400': err, '401': err, '403': err, '404': err, '409': err, '413': err, '429': err },
    };
  }
  paths['/fhir/metadata'] = {
    get: { summary: 'FHIR R4 CapabilityStatement (public, application/fhir+json)', responses: { '200': { description: 'CapabilityStatement', content: { 'application/fhir+json': {} } } } },
  };
  paths['/healthz'] = { get: { summary: 'Liveness (public)', responses: { '200': { description: 'ok' } } } };
  paths['/log.pub'] = { get: { summary: 'The verifier key (public): name+keyid+base64', responses: { '200': { description: 'verifier key' } } } };
  paths['/checkpoint'] = { get: { summary: 'C2SP tlog-tiles checkpoint (public, text/plain signed note)', responses: { '200': { description: 'signed note' } } } };
  paths['/tile/{path}'] = {
    get: {
      summary: 'C2SP tlog-tiles: hash tiles tile/<L>/<N>[.p/<W>] (public); entry bundles tile/entries/<N>[.p/<W>] (need read, logged as AUDIT_QUERY, unless the server runs with --public-entries)',
      parameters: [{ name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
      responses: { '200': { description: 'tile bytes' }, '404': err },
    },
  };
  return {
    openapi: '3.0.3',
    info: { title: 'Custos API', version: '1', description: 'Verifiable governance for clinical AI. Every /api route needs a bearer token; the actor and role on every event come from it.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        ...schemas,
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } } },
        },
      },
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
<tr><td>GET</td><td><code>/fhir/metadata</code></td><td>public</td><td>FHIR R4 CapabilityStatement</td></tr>
<tr><td>GET</td><td><code>/checkpoint</code>, <code>/log.pub</code>, <code>/tile/&lt;L&gt;/&lt;N&gt;[.p/&lt;W&gt;]</code></td><td>public</td><td>C2SP tlog-tiles checkpoint and hash tiles: witnesses and monitors check the log with standard tooling</td></tr>
<tr><td>GET</td><td><code>/tile/entries/&lt;N&gt;[.p/&lt;W&gt;]</code></td><td>read (public with --public-entries)</td><td>C2SP tlog-tiles entry bundles (logged: AUDIT_QUERY)</td></tr>
</table></body></html>`;
}

/** Serves `/openapi.json` and `/docs` (public). */
export function registerOpenApi(app: FastifyInstance, routes: readonly Route[]): void {
  const openapi = buildOpenApi(routes);
  const page = docsPage(routes);
  app.get('/openapi.json', async () => openapi);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', DOCS_CSP).send(page));
}
