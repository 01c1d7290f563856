/**
 * The route modules (src/server/routes/): each request schema is declared once and drives
 * validation, OpenAPI and the handler's types; bodies the service also parses use the service's
 * schema objects (src/service/requests.ts); responses match their declared schemas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { pid } from './helpers/policy-ids.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { ACCESS, CONSENT_CHECK, INFERENCE, TRAINING } from '../src/service/requests.js';
import { POLICY_INPUT } from '../src/core/consent/policy.js';
import { API_ROUTES } from '../src/server/routes/index.js';
import { eventTypes } from '../src/server/routes/shared.js';
import { toOpenApiSchema } from '../src/server/openapi.js';

const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } };

interface Operation {
  requestBody?: { content: { 'application/json': { schema: { properties: Record<string, unknown>; required?: string[]; additionalProperties?: boolean } } } };
}

/** The object schema at the start of a schema or pipe. */
function objectOf(s: v.GenericSchema): v.ObjectSchema<v.ObjectEntries, undefined> {
  return ('pipe' in s ? (s as unknown as { pipe: v.GenericSchema[] }).pipe[0] : s) as v.ObjectSchema<v.ObjectEntries, undefined>;
}
const json = (s: v.GenericSchema) => toOpenApiSchema(s);

describe('route modules: one schema per request', () => {
  let env: ServerEnv;
  let openapi: { paths: Record<string, Record<string, Operation>> };

  before(async () => {
    env = await createServerEnv();
    openapi = (await env.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  });
  after(async () => {
    await env.close();
  });

  it('OpenAPI publishes the service’s request schemas, field by field, with only the actor claim in place of the actor', () => {
    const cases: [string, v.GenericSchema][] = [
      ['/api/v1/access', ACCESS],
      ['/api/v1/inferences', INFERENCE],
      ['/api/v1/trainings', TRAINING],
      ['/api/v1/consents', POLICY_INPUT],
      ['/api/v1/consents/{policyId}/check', CONSENT_CHECK],
    ];
    for (const [path, service] of cases) {
      const schema = openapi.paths[path]?.['post']?.requestBody?.content['application/json'].schema;
      assert.ok(schema, `${path} publishes no request body`);
      const entries = objectOf(service).entries;
      for (const [key, field] of Object.entries(entries)) {
        if (key === 'actor') continue;
        assert.deepEqual(schema.properties[key], JSON.parse(JSON.stringify(json(field))), `${path}: ${key}`);
      }
      const serviceRequired = (json(objectOf(service)) as { required?: string[] }).required ?? [];
      assert.deepEqual(new Set(schema.required ?? []), new Set(serviceRequired.filter((k) => k !== 'actor')), `${path}: required`);
      if (path !== '/api/v1/consents/{policyId}/check') assert.ok(schema.properties['actor'], `${path}: the actor claim is documented`);
    }
    // Every reference resolves inside the document (recursive provisions are a named component).
    const refs = JSON.stringify(openapi).match(/"\$ref":"[^"]+"/g) ?? [];
    assert.ok(
      refs.some((r) => r.includes('#/components/schemas/Provision')),
      'provisions refer to the Provision component',
    );
    for (const r of refs) {
      const target = r
        .slice('"$ref":"#/'.length, -1)
        .split('/')
        .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], openapi);
      assert.ok(target, `${r} does not resolve`);
    }
    // Bodies that take nothing else say so.
    assert.equal(openapi.paths['/api/v1/erasures']?.['post']?.requestBody?.content['application/json'].schema.additionalProperties, false);
    assert.equal(openapi.paths['/api/v1/tokens']?.['post']?.requestBody?.content['application/json'].schema.additionalProperties, false);
  });

  it('a body the service would refuse is refused by the route’s one validation, with the service’s issues, before anything is written', async () => {
    const size = env.log.size;
    const send = (url: string, payload: unknown) =>
      env.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${env.tokens.dermatologist}` }, payload: payload as Record<string, unknown> });
    // A policy id that is not one (the old HTTP schema took any string), an uppercase-free output name, a bad URI.
    const bad = { purpose: 'TREAT', policyId: 'not-a-policy-id', artifact: { uri: 'no scheme', digest: D1 } };
    const res = await send('/api/v1/access', bad);
    assert.equal(res.statusCode, 400);
    const body = res.json() as { error: { code: string; details: { issues: { path: string; message: string }[] } } };
    assert.equal(body.error.code, 'VALIDATION_FAILED');
    const paths = body.error.details.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['artifact.uri', 'policyId']);
    // The same issues as the service's own parse of that request.
    const service = v.safeParse(ACCESS, { ...bad, actor: { id: 'dr-derm', role: 'dermatologist' } });
    assert.equal(service.success, false);
    assert.deepEqual(service.issues!.map((i) => i.path!.map((p) => String(p.key)).join('.')).sort(), paths);
    for (const i of body.error.details.issues)
      assert.ok(
        service.issues!.some((s) => s.message === i.message),
        i.message,
      );
    // A training body that breaks a cross-field rule of the service (identified data without policyIds).
    const training = { purpose: 'TREAT', dataset: { uri: 's3://b/d', digest: D1, type: 'identified' }, manifest: { name: 'r' }, modelBefore: MODEL, modelAfter: MODEL, computeBackend: 'gpu-1' };
    const t = await env.app.inject({ method: 'POST', url: '/api/v1/trainings', headers: { authorization: `Bearer ${env.tokens.ml_engineer}` }, payload: training });
    assert.equal(t.statusCode, 400);
    assert.ok((t.json() as { error: { details: { issues: { path: string }[] } } }).error.details.issues.some((i) => i.path === 'policyIds'));
    assert.equal(env.log.size, size, 'nothing written');
  });

  it('every response with a declared schema matches it', async () => {
    const g = env.governance;
    await g.createConsent({ policyId: pid('routes-1'), subject: 'patient-routes', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
    const calls: [string, string, string, unknown?][] = [
      ['dermatologist', 'GET', '/api/v1/me'],
      ['dermatologist', 'POST', '/api/v1/access', { purpose: 'TREAT', policyId: pid('routes-1'), artifact: { uri: 's3://clinic/a.jpg', digest: D1 } }],
      [
        'dermatologist',
        'POST',
        '/api/v1/inferences',
        {
          purpose: 'TREAT',
          policyId: pid('routes-1'),
          input: { uri: 's3://clinic/b.jpg', digest: D1 },
          outputs: [{ name: 'r', uri: 's3://clinic/b.json', digest: D2 }],
          pipeline: PIPELINE,
          model: MODEL,
        },
      ],
      ['dermatologist', 'POST', `/api/v1/consents/${pid('routes-1')}/check`, { purpose: 'TREAT', role: 'dermatologist' }],
      ['privacy_officer', 'POST', '/api/v1/consents', { policyId: pid('routes-2'), subject: 'patient-routes-2', allowedPurposes: ['TREAT'], allowedRoles: ['nurse'] }],
      ['privacy_officer', 'POST', `/api/v1/consents/${pid('routes-2')}/revoke`, {}],
      ['admin', 'GET', '/api/v1/entries/0'],
      ['admin', 'GET', '/api/v1/proofs/inclusion/0'],
      ['admin', 'GET', '/api/v1/proofs/consistency?from=1&to=2'],
      ['admin', 'GET', '/api/v1/checkpoint'],
      ['admin', 'GET', '/api/v1/stats'],
      ['admin', 'GET', '/api/v1/tokens'],
      ['admin', 'POST', '/api/v1/tokens', { name: 'routes-token', role: 'nurse' }],
    ];
    let checked = 0;
    for (const [role, method, url, payload] of calls) {
      const path = url.split('?')[0]!;
      const r = API_ROUTES.find((x) => x.method === method && new RegExp(`^${x.url.replace(/:[A-Za-z]+/g, '[^/]+')}$`).test(path));
      assert.ok(r?.response, `${method} ${url} declares no response schema`);
      const res = await env.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${env.tokens[role as 'admin']}` },
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
      assert.equal(res.statusCode, r.status ?? 200, `${method} ${url}: ${res.body}`);
      const parsed = v.safeParse(r.response, res.json());
      assert.ok(parsed.success, `${method} ${url}: ${JSON.stringify(parsed.issues?.map((i) => [i.path?.map((p) => p.key).join('.'), i.message]))}`);
      checked++;
    }
    assert.equal(checked, calls.length);
  });

  it('event type names in server code are checked against the event registry', () => {
    assert.equal(eventTypes('DATA_ACCESSED', 'CONSENT_DENIED').size, 2);
    assert.throws(() => eventTypes('DATA_ACCESED'), /not an event type of the registry/);
  });
});
