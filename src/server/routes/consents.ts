/**
 * Consent policies: create, revoke, check, and a policy's history with the decisions made under it.
 * @module
 */
import * as v from 'valibot';
import { POLICY_INPUT } from '../../core/consent/policy.js';
import { CONSENT_CHECK } from '../../service/requests.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { DECISION, EVENT, POLICY_DECISIONS, actorFrom, decisionJson, eventJson, withActorClaim } from './shared.js';

const POLICY_PARAMS = v.object({ policyId: v.string() });
/** Body of POST /consents: the policy input, and the actor claim. */
export const CREATE_CONSENT = withActorClaim(POLICY_INPUT);
/** A policy version written: the document, its hash and its event. */
export const CONSENT_WRITTEN = v.object({ policy: v.unknown(), hash: v.string(), event: EVENT });
export type ConsentWritten = v.InferOutput<typeof CONSENT_WRITTEN>;

export const consentRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/consents',
    summary: 'Create version 1 of a consent policy',
    permission: 'consent:write',
    status: 201,
    body: CREATE_CONSENT,
    response: CONSENT_WRITTEN,
    handler: async ({ body, principal }, { governance }) => {
      const { actor: _claim, ...input } = body;
      void _claim;
      const r = await governance.createConsent(input, actorFrom(principal, body));
      return { policy: r.policy, hash: r.hash, event: eventJson(r.event) };
    },
  }),
  route({
    method: 'POST',
    url: '/api/v1/consents/:policyId/revoke',
    summary: 'Revoke a consent policy (a new version)',
    permission: 'consent:write',
    status: 201,
    params: POLICY_PARAMS,
    response: CONSENT_WRITTEN,
    // The body is optional: at most an actor claim, checked by actorFrom.
    handler: async ({ params, req, principal }, { governance }) => {
      const r = await governance.revokeConsent(params.policyId, actorFrom(principal, req.body));
      return { policy: r.policy, hash: r.hash, event: eventJson(r.event) };
    },
  }),
  route({
    method: 'POST',
    url: '/api/v1/consents/:policyId/check',
    summary: 'The decision a request would get now, with its reason (writes no decision; logged: AUDIT_READ)',
    permission: 'consent:check',
    params: POLICY_PARAMS,
    body: CONSENT_CHECK,
    response: DECISION,
    handler: async ({ params, body, principal, req }, { governance, audit }) => {
      const d = await governance.checkConsent(params.policyId, body);
      // A read of a patient's policy (its decision and explanation): on the log before it is returned.
      await audit.read({ id: principal.actor, role: principal.role }, { route: routeOf(req), permission: 'consent:check', policyId: d.policyId });
      return decisionJson(d);
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/consents/:policyId',
    summary: "A policy's versions, each with its log entry and the decisions made under it (logged: AUDIT_READ)",
    permission: 'consent:read',
    heavy: true,
    params: POLICY_PARAMS,
    handler: async ({ params, principal, req }, { governance, audit, log }) => {
      const id = params.policyId;
      const show = await governance.showConsent(id);
      const byVersion = new Map<number, { index: number; type: string; time: string; actor: unknown; role: unknown; purpose: unknown; reason: string }[]>();
      for await (const page of log.reader.entryPages(0, log.size)) {
        for (const e of page) {
          if (e.bytes.indexOf(`"policyId":${JSON.stringify(id)}`) < 0) continue;
          const ent = JSON.parse(e.bytes.toString('utf8')) as { type: string; time: string; payload: Record<string, unknown> };
          if (!POLICY_DECISIONS.has(ent.type)) continue;
          const version = Number(ent.payload['policyVersion'] ?? 0);
          const list = byVersion.get(version) ?? [];
          list.push({
            index: e.index,
            type: ent.type,
            time: ent.time,
            actor: ent.payload['actor'],
            role: ent.payload['role'],
            purpose: ent.payload['purpose'],
            reason: String(ent.payload['reason'] ?? 'PERMITTED'),
          });
          byVersion.set(version, list);
        }
      }
      await audit.read({ id: principal.actor, role: principal.role }, { route: routeOf(req), permission: 'consent:read', policyId: show.policyId });
      return { ...show, decisions: Object.fromEntries([...byVersion.entries()].map(([n, l]) => [String(n), l])) };
    },
  }),
];
