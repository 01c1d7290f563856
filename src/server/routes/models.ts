/**
 * The model registry and change control (issue 14; docs/models.md): model lines and their versions,
 * registration, approval and retirement, change control plans, and the inferences of a version.
 * Every write is an event; the actor and role come from the credential. The list of a version's
 * inferences names entries of patient-linked events, so reading it is logged (AUDIT_QUERY) first.
 * @module
 */
import * as v from 'valibot';
import { CHANGE_PLAN, MODEL_NAME, MODEL_REGISTRATION, MODEL_VERSION, PLAN_ID, RETIRE_REASONS } from '../../core/models.js';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { queryHash } from '../../service/audit.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { EVENT, eventJson } from './shared.js';

const ENTRY_REF = { index: v.number(), time: v.string(), actor: v.string(), role: v.string() };
const VERSION = v.object({
  model: v.string(),
  version: v.string(),
  weightsHash: v.string(),
  intendedUse: v.string(),
  riskClass: v.string(),
  /** SHA-256 of the spec document. */
  spec: v.string(),
  registered: v.object(ENTRY_REF),
  origin: v.optional(v.object({ kind: v.string(), run: v.optional(v.number()), line: v.optional(v.string()), round: v.optional(v.number()) })),
  changeControl: v.optional(v.object({ plan: v.string(), evaluation: v.string(), outcome: v.string(), modification: v.string() })),
  approval: v.optional(v.object({ ...ENTRY_REF, basis: v.string(), plan: v.optional(v.string()), planHash: v.optional(v.string()) })),
  retirement: v.optional(v.object({ ...ENTRY_REF, reason: v.optional(v.string()) })),
  status: v.picklist(['registered', 'approved', 'retired', 'unregistered']),
  inferenceCount: v.number(),
});
const PLAN = v.object({ ...ENTRY_REF, planId: v.string(), model: v.string(), hash: v.string(), modifications: v.array(v.string()), metrics: v.array(v.string()) });
const LINE = v.object({ model: v.string(), versions: v.array(VERSION), plans: v.array(PLAN) });

export const MODELS_RESPONSE = v.object({ models: v.array(LINE) });
export const MODEL_LINE_RESPONSE = LINE;
export const MODEL_VERSION_RESPONSE = VERSION;
export const MODEL_REGISTERED_RESPONSE = v.object({ model: v.string(), version: v.string(), specHash: v.string(), event: EVENT });
export const MODEL_CHANGE_RESPONSE = v.object({ version: VERSION, event: EVENT });
export const RETIRE_BODY = v.object({ reason: v.optional(v.picklist(RETIRE_REASONS, `reason must be one of ${RETIRE_REASONS.join(', ')}`)) });
export const PLANS_RESPONSE = v.object({ plans: v.array(PLAN) });
export const PLAN_COMMITTED_RESPONSE = v.object({ planId: v.string(), model: v.string(), hash: v.string(), event: EVENT });
export const PLAN_RESPONSE = v.object({ state: PLAN, documentOk: v.boolean(), plan: v.optional(v.unknown()) });
export const INFERENCES_QUERY = v.object({
  from: v.optional(v.pipe(v.string(), v.regex(/^(0|[1-9][0-9]{0,15})$/, 'from must be a non-negative integer'), v.transform(Number))),
  limit: v.optional(v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,4}$/, 'limit must be 1 to 10000'), v.transform(Number), v.maxValue(10_000, 'limit must be 1 to 10000'))),
});
export const INFERENCES_RESPONSE = v.object({ model: v.string(), version: v.string(), total: v.number(), inferences: v.array(v.number()), next: v.optional(v.number()) });
export type ModelsResponse = v.InferOutput<typeof MODELS_RESPONSE>;

const LINE_PARAMS = v.object({ model: MODEL_NAME });
const VERSION_PARAMS = v.object({ model: MODEL_NAME, version: MODEL_VERSION });

// The service's views, as plain JSON (no undefined fields, arrays copied).
const versionJson = (x: unknown) => JSON.parse(JSON.stringify(x)) as v.InferInput<typeof VERSION>;
const lineJson = (l: unknown) => JSON.parse(JSON.stringify(l)) as v.InferInput<typeof LINE>;
const asVersion = (r: unknown) => {
  const { inferences: _i, ...x } = r as Record<string, unknown>;
  return versionJson(x);
};

export const modelRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/models',
    summary: 'Every model line with its versions (status, approval, retirement, change control) and plans',
    permission: 'models:read',
    response: MODELS_RESPONSE,
    handler: async (_call, { governance }) => ({ models: (await governance.listModels()).map(lineJson) }),
  }),
  route({
    method: 'POST',
    url: '/api/v1/models',
    summary:
      'Register a model version {model, version, weightsHash, intendedUse, riskClass, spec?} (no other field: origin is set only by training under a plan and a federated final round, 400 VALIDATION_FAILED): MODEL_REGISTERED (the spec stored off-ledger); 409 MODEL_EXISTS',
    permission: 'model:register',
    status: 201,
    body: MODEL_REGISTRATION,
    response: MODEL_REGISTERED_RESPONSE,
    handler: async ({ body, principal: p }, { governance }) => {
      const r = await governance.registerModel(body, { id: p.actor, role: p.role });
      return { model: r.model, version: r.version, specHash: r.specHash, event: eventJson(r.event) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/models/:model',
    summary: 'One model line: its versions and change control plans (404 MODEL_NOT_FOUND)',
    permission: 'models:read',
    params: LINE_PARAMS,
    response: MODEL_LINE_RESPONSE,
    handler: async ({ params }, { governance }) => lineJson(await governance.showModel(params.model)),
  }),
  route({
    method: 'GET',
    url: '/api/v1/models/:model/versions/:version',
    summary: 'One model version: status, approval, retirement, change control, and how many inferences ran under it',
    permission: 'models:read',
    params: VERSION_PARAMS,
    response: MODEL_VERSION_RESPONSE,
    handler: async ({ params }, { governance }) => asVersion(await governance.showModel(params.model, params.version)),
  }),
  route({
    method: 'POST',
    url: '/api/v1/models/:model/versions/:version/approval',
    summary: 'Approve a registered version: MODEL_APPROVED (basis human); 409 MODEL_ALREADY_APPROVED, MODEL_VERSION_RETIRED',
    permission: 'model:approve',
    status: 201,
    params: VERSION_PARAMS,
    response: MODEL_CHANGE_RESPONSE,
    handler: async ({ params, principal: p }, { governance }) => {
      const r = await governance.approveModel(params.model, params.version, { id: p.actor, role: p.role });
      return { version: asVersion({ ...r.version, status: 'approved', inferenceCount: r.version.inferences.length }), event: eventJson(r.event) };
    },
  }),
  route({
    method: 'POST',
    url: '/api/v1/models/:model/versions/:version/retirement',
    summary: 'Retire a version {reason?}: MODEL_RETIRED; inferences under it are refused (MODEL_NOT_APPROVED); 409 MODEL_VERSION_RETIRED',
    permission: 'model:approve',
    status: 201,
    params: VERSION_PARAMS,
    body: RETIRE_BODY,
    response: MODEL_CHANGE_RESPONSE,
    handler: async ({ params, body, principal: p }, { governance }) => {
      const r = await governance.retireModel(params.model, params.version, { id: p.actor, role: p.role }, body.reason);
      return { version: asVersion({ ...r.version, status: 'retired', inferenceCount: r.version.inferences.length }), event: eventJson(r.event) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/models/:model/versions/:version/inferences',
    summary: 'The entry indexes of the INFERENCE_EXECUTED events made with a version, ascending (query: from, limit); logged: AUDIT_QUERY',
    permission: 'models:read',
    params: VERSION_PARAMS,
    query: INFERENCES_QUERY,
    response: INFERENCES_RESPONSE,
    handler: async ({ params, query, principal: p, req }, { governance, audit }) => {
      await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'models:read', queryHash: queryHash({ ...params, ...query }) });
      const r = (await governance.showModel(params.model, params.version)) as { inferences?: readonly number[] };
      const all = r.inferences ?? [];
      const from = query.from ?? 0;
      const limit = query.limit ?? 1000;
      const page = all.filter((i) => i >= from).slice(0, limit + 1);
      return { model: params.model, version: params.version, total: all.length, inferences: page.slice(0, limit), ...(page.length > limit ? { next: page[limit]! } : {}) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/models/:model/plans',
    summary: 'The change control plans committed for a model line',
    permission: 'models:read',
    params: LINE_PARAMS,
    response: PLANS_RESPONSE,
    handler: async ({ params }, { governance }) => ({ plans: JSON.parse(JSON.stringify(await governance.listChangePlans(params.model))) as v.InferInput<typeof PLAN>[] }),
  }),
  route({
    method: 'POST',
    url: '/api/v1/models/:model/plans',
    summary:
      'Commit a change control plan (PCCP) for the line {planId, model, modifications, dataConstraints, acceptance: [{metric, min?, max?}], description}: CHANGE_PLAN_COMMITTED (the plan stored off-ledger); 409 CHANGE_PLAN_EXISTS',
    permission: 'model:approve',
    status: 201,
    params: LINE_PARAMS,
    body: CHANGE_PLAN,
    response: PLAN_COMMITTED_RESPONSE,
    handler: async ({ params, body, principal: p }, { governance }) => {
      if (body.model !== params.model)
        throw new ValidationError('VALIDATION_FAILED', `the plan is for model ${body.model}, not ${params.model}`, { issues: [{ path: 'model', message: 'differs from the path' }] });
      const r = await governance.commitChangePlan(body, { id: p.actor, role: p.role });
      return { planId: r.plan.planId, model: r.plan.model, hash: r.hash, event: eventJson(r.event) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/models/:model/plans/:planId',
    summary: 'One change control plan: its entry, and its document checked against the hash on the log (404 CHANGE_PLAN_NOT_FOUND)',
    permission: 'models:read',
    params: v.object({ model: MODEL_NAME, planId: PLAN_ID }),
    response: PLAN_RESPONSE,
    handler: async ({ params }, { governance }) => {
      const r = await governance.showChangePlan(params.planId);
      if (r.state.model !== params.model) throw new NotFoundError('CHANGE_PLAN_NOT_FOUND', `model ${params.model} has no change control plan ${params.planId}`, { details: { planId: params.planId } });
      return JSON.parse(JSON.stringify(r)) as v.InferInput<typeof PLAN_RESPONSE>;
    },
  }),
];
