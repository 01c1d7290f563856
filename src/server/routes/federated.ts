/**
 * Federated learning rounds (issue 14): sites and their keys, rounds of a model line. The bodies are
 * the service's own schemas (core/federated.ts); the actor is the credential's. A refused round
 * answers with its code (FL_SITE_UNKNOWN, FL_SIGNATURE_INVALID, FL_ROUND_OUT_OF_ORDER, ...) and the
 * FL_ROUND_REFUSED entry's index in the error's details. Sites and rounds hold no patient data, so
 * reading them is not an audited read.
 * @module
 */
import * as v from 'valibot';
import { FL_ID } from '../../core/federated.js';
import { FL_ROUND, FL_SITE, type FlLine, type FlRound, type FlSite } from '../../service/governance.js';
import { route } from '../route.js';
import { EVENT, eventJson } from './shared.js';

const SITE = v.object({
  site: v.string(),
  publicKey: v.string(),
  keyHash: v.string(),
  registeredIndex: v.number(),
  registeredAt: v.string(),
  retiredIndex: v.nullable(v.number()),
  retiredAt: v.nullable(v.string()),
  status: v.picklist(['active', 'retired']),
});
const DP = v.object({ clipNorm: v.number(), noiseMultiplier: v.number(), delta: v.number(), rho: v.number(), rhoTotal: v.number(), epsilon: v.number() });
const VERSION = v.object({ model: v.string(), version: v.string(), weights: v.string() });
const ROUND = v.object({
  index: v.number(),
  time: v.string(),
  line: v.string(),
  round: v.number(),
  aggregation: v.string(),
  globalModel: v.string(),
  sites: v.array(v.object({ site: v.string(), update: v.string(), signature: v.string() })),
  dp: v.optional(DP),
  final: v.boolean(),
  version: v.optional(VERSION),
  modelSpec: v.optional(v.string()),
  actor: v.string(),
  role: v.string(),
});
const REFUSAL = v.object({ index: v.number(), time: v.string(), line: v.string(), round: v.number(), reason: v.string(), site: v.optional(v.string()), actor: v.string(), role: v.string() });

const LINE_SUMMARY = v.object({ line: v.string(), rounds: v.number(), refusals: v.number(), lastRound: v.number(), closed: v.boolean() });

export const FL_LINES_RESPONSE = v.object({ lines: v.array(LINE_SUMMARY) });
export const FL_SITES_RESPONSE = v.object({ sites: v.array(SITE) });
export const FL_SITE_RESPONSE = v.object({ site: SITE, event: EVENT });
export const FL_ROUND_RESPONSE = v.object({ round: ROUND, event: EVENT });
export const FL_ROUNDS_RESPONSE = v.object({
  line: v.string(),
  rounds: v.array(ROUND),
  refusals: v.array(REFUSAL),
  lastRound: v.number(),
  dp: v.optional(v.boolean()),
  rhoTotal: v.number(),
  epsilon: v.optional(v.number()),
  version: v.optional(VERSION),
});

const siteJson = (s: FlSite) => ({ ...s, status: s.retiredIndex === null ? ('active' as const) : ('retired' as const) });
const roundJson = (r: FlRound) => ({ ...r, sites: r.sites.map((x) => ({ ...x })) });
const lineJson = (l: FlLine) => {
  const { dp, epsilon, version, ...rest } = l;
  return {
    ...rest,
    rounds: l.rounds.map(roundJson),
    refusals: l.refusals.map((x) => ({ ...x })),
    ...(dp === undefined ? {} : { dp }),
    ...(epsilon === undefined ? {} : { epsilon }),
    ...(version === undefined ? {} : { version }),
  };
};

export const federatedRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/fl/sites',
    summary: 'The federated learning sites the log has registered (retired ones too), with their public keys',
    permission: 'fl:read',
    response: FL_SITES_RESPONSE,
    handler: async (_call, { governance }) => ({ sites: (await governance.listFlSites()).map(siteJson) }),
  }),
  route({
    method: 'POST',
    url: '/api/v1/fl/sites',
    summary: 'Register a site with its verifier key (site+keyid+base64): an FL_SITE_REGISTERED event (409 FL_SITE_EXISTS: ids are never reused)',
    permission: 'fl:sites',
    status: 201,
    body: FL_SITE,
    response: FL_SITE_RESPONSE,
    handler: async ({ body, principal: p }, { governance }) => {
      const r = await governance.registerFlSite(body, { id: p.actor, role: p.role });
      return { site: siteJson(r.site), event: eventJson(r.event) };
    },
  }),
  route({
    method: 'POST',
    url: '/api/v1/fl/sites/:site/retire',
    summary: 'Retire a site: an FL_SITE_RETIRED event; later rounds naming it are refused (404 FL_SITE_UNKNOWN, 409 FL_SITE_INACTIVE)',
    permission: 'fl:sites',
    status: 201,
    params: v.object({ site: FL_ID }),
    response: FL_SITE_RESPONSE,
    handler: async ({ params, principal: p }, { governance }) => {
      const r = await governance.retireFlSite(params.site, { id: p.actor, role: p.role });
      return { site: siteJson(r.site), event: eventJson(r.event) };
    },
  }),
  route({
    method: 'POST',
    url: '/api/v1/fl/rounds',
    summary:
      'Record a round of a model line (the round file): FL_ROUND; or FL_ROUND_REFUSED and its code (FL_SITE_UNKNOWN, FL_SITE_INACTIVE, FL_SIGNATURE_INVALID, FL_ROUND_OUT_OF_ORDER, FL_LINE_CLOSED, FL_DP_MISMATCH, FL_DP_ACCOUNTING_MISMATCH)',
    permission: 'fl:coordinate',
    status: 201,
    body: FL_ROUND,
    response: FL_ROUND_RESPONSE,
    handler: async ({ body, principal: p }, { governance }) => {
      const r = await governance.recordFlRound(body, { id: p.actor, role: p.role });
      return { round: roundJson(r.round), event: eventJson(r.event) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/fl/lines',
    summary: 'The model lines the log has a round or refused round of, by name, with their counts (the explorer lists them)',
    permission: 'fl:read',
    response: FL_LINES_RESPONSE,
    handler: async (_call, { governance }) => ({ lines: (await governance.listFlLines()).map((l) => ({ ...l })) }),
  }),
  route({
    method: 'GET',
    url: '/api/v1/fl/lines/:line/rounds',
    summary: "A model line's rounds and refused rounds, with the DP accountant's running total (empty for a line never seen)",
    permission: 'fl:read',
    params: v.object({ line: FL_ID }),
    response: FL_ROUNDS_RESPONSE,
    handler: async ({ params }, { governance }) => lineJson(await governance.listFlRounds(params.line)),
  }),
];
