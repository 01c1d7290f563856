/**
 * Operations under consent: a data access, an inference (with its receipt), a training run. Each
 * body is the service's request schema (src/service/requests.ts) with the actor taken from the
 * credential; a refusal is 403 CONSENT_DENIED, and is on the log.
 * @module
 */
import * as v from 'valibot';
import { ACCESS, INFERENCE, TRAINING } from '../../service/requests.js';
import { route } from '../route.js';
import { DECISION, EVENT, decisionJson, eventJson, serviceRequest, withActorClaim } from './shared.js';

export const ACCESS_BODY = withActorClaim(ACCESS);
export const INFERENCE_BODY = withActorClaim(INFERENCE);
export const TRAINING_BODY = withActorClaim(TRAINING);

/** `breakGlass`: set when consent denied and the access was executed under break-glass (`decision` is the denial it overrode). */
export const ACCESS_RESPONSE = v.object({ decision: DECISION, event: EVENT, breakGlass: v.optional(v.object({ justification: v.string(), reviewDue: v.string() })) });
export const INFERENCE_RESPONSE = v.object({ receipt: v.unknown(), receiptHash: v.string(), decision: DECISION, event: EVENT });
/** issue 14: `cohort` for a run that named its cohort: root, size (included), exclusions by reason, the cohort document's hash. */
export const COHORT_SUMMARY = v.object({
  root: v.string(),
  size: v.number(),
  excluded: v.array(v.object({ reason: v.string(), count: v.number() })),
  excludedTotal: v.number(),
  document: v.string(),
});
export const TRAINING_RESPONSE = v.object({ manifestHash: v.string(), decisions: v.array(DECISION), event: EVENT, cohort: v.optional(COHORT_SUMMARY) });
/** Response types for clients (the server builds each response as one of these). */
export type AccessResponse = v.InferOutput<typeof ACCESS_RESPONSE>;
export type InferenceResponse = v.InferOutput<typeof INFERENCE_RESPONSE>;
export type TrainingResponse = v.InferOutput<typeof TRAINING_RESPONSE>;

export const accessRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/access',
    summary:
      'Record an access to patient data, after the consent check (403 CONSENT_DENIED is logged); with purpose BTG or ETREAT and a justification code, a denial is overridden as BREAK_GLASS (201, under review)',
    permission: 'access',
    status: 201,
    serviceBody: ACCESS_BODY,
    response: ACCESS_RESPONSE,
    handler: async ({ req, principal }, { governance, metrics }) => {
      const r = await governance.recordDataAccess(serviceRequest(ACCESS, req, principal));
      metrics.decisions.inc({ operation: 'access', effect: r.breakGlass ? 'break_glass' : 'permit', reason: r.decision.reason });
      return { decision: decisionJson(r.decision), event: eventJson(r.event), ...(r.breakGlass ? { breakGlass: r.breakGlass } : {}) };
    },
  }),
];

export const inferenceRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/inferences',
    summary: 'Record an inference under consent; returns its receipt (403 CONSENT_DENIED is logged)',
    permission: 'inference',
    status: 201,
    serviceBody: INFERENCE_BODY,
    response: INFERENCE_RESPONSE,
    handler: async ({ req, principal }, { governance, metrics }) => {
      const r = await governance.recordInference(serviceRequest(INFERENCE, req, principal));
      metrics.decisions.inc({ operation: 'inference', effect: 'permit', reason: 'PERMITTED' });
      return { receipt: r.receipt, receiptHash: r.receiptHash, decision: decisionJson(r.decision), event: eventJson(r.event) };
    },
  }),
];

export const trainingRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/trainings',
    summary:
      "Record a training run: identified data under every subject's consent (policyIds; 403 CONSENT_DENIED is logged) or with a cohort (each subject's inclusion decided under its consent; those without are left out and counted), de-identified or synthetic data with an attestation",
    permission: 'training',
    status: 201,
    serviceBody: TRAINING_BODY,
    response: TRAINING_RESPONSE,
    handler: async ({ req, principal }, { governance, metrics }) => {
      const r = await governance.recordTraining(serviceRequest(TRAINING, req, principal));
      metrics.decisions.inc({ operation: 'training', effect: 'permit', reason: 'PERMITTED' });
      return {
        manifestHash: r.manifestHash,
        decisions: r.decisions.map(decisionJson),
        event: eventJson(r.event),
        ...(r.cohort ? { cohort: { ...r.cohort, excluded: r.cohort.excluded.map((x) => ({ ...x })) } } : {}),
      };
    },
  }),
];
