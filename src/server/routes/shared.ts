/**
 * Pieces shared by the route modules: the JSON of an appended event and of a consent decision,
 * the actor claim a body may carry, path parameters, and event type names checked against the
 * event registry.
 * @module
 */
import * as v from 'valibot';
import { AuthError, ValidationError } from '../../core/errors.js';
import { EVENT_REGISTRY } from '../../core/events.js';
import { toHex } from '../../core/hash.js';
import { decisionToJson, type Decision } from '../../core/consent/evaluate.js';
import type { AppendResult } from '../../log/log.js';
import type { FastifyRequest } from 'fastify';
import { parseWith } from '../../core/schema/parse.js';
import { checkRequest, type Checked } from '../../service/requests.js';
import type { Principal } from '../auth.js';

const HEX64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));

/** An event on the log, as a write returns it. */
export const EVENT = v.object({ index: v.number(), leafHash: HEX64, treeSize: v.number(), rootHash: HEX64, checkpoint: v.string() });
export type EventJson = v.InferOutput<typeof EVENT>;

export function eventJson(e: AppendResult): EventJson {
  return { index: e.index, leafHash: toHex(e.leafHash), treeSize: e.checkpoint.treeSize, rootHash: toHex(e.checkpoint.rootHash), checkpoint: e.checkpoint.note };
}

/** A consent decision with its reason and explanation. */
export const DECISION = v.object({
  effect: v.picklist(['permit', 'deny']),
  reason: v.string(),
  policyId: v.string(),
  policyVersion: v.nullable(v.number()),
  policyHash: v.nullable(v.string()),
  provision: v.nullable(v.string()),
  explanation: v.string(),
});
export type DecisionJson = v.InferOutput<typeof DECISION>;

export function decisionJson(d: Decision): DecisionJson {
  return decisionToJson(d);
}

/**
 * The actor a body may claim: the credential's actor id and, optionally, its role. The server
 * fills the actor from the credential; a claim of another is refused ({@link actorFrom}).
 */
export const ACTOR_CLAIM = v.object({ id: v.optional(v.string()), role: v.optional(v.string()) });

type Claim = { actor?: v.InferOutput<typeof ACTOR_CLAIM> };
/** Input of {@link withActorClaim}'s schema. */
export type ClaimIn<S extends v.GenericSchema> = Omit<v.InferInput<S>, 'actor'> & Claim;
/** Output of {@link withActorClaim}'s schema. */
export type ClaimOut<S extends v.GenericSchema> = Omit<v.InferOutput<S>, 'actor'> & Claim;

/**
 * The HTTP body of a service request: the service's object schema (or a pipe starting with one)
 * with its `actor` (filled from the credential) replaced by an optional claim. The service's own
 * checks after the object are kept, so the server and the service validate with one definition.
 */
export function withActorClaim<S extends v.GenericSchema>(schema: S): v.GenericSchema<ClaimIn<S>, ClaimOut<S>> {
  const piped = 'pipe' in schema ? (schema as unknown as { pipe: readonly unknown[] }).pipe : undefined;
  const object = (piped ? piped[0] : schema) as v.ObjectSchema<v.ObjectEntries, undefined>;
  if (object.type !== 'object') throw new TypeError('withActorClaim takes an object schema or a pipe starting with one');
  const { actor: _service, ...entries } = object.entries;
  void _service;
  const http = v.object({ ...entries, actor: v.optional(ACTOR_CLAIM) });
  const out = piped ? (v.pipe as unknown as (...items: unknown[]) => unknown)(http, ...piped.slice(1)) : http;
  return out as v.GenericSchema<ClaimIn<S>, ClaimOut<S>>;
}

// The actor and role come from the credential. A body may repeat them, but not claim another.
// The claim is untrusted: a string (the actor id) or { id: string, role?: string }, nothing else.
export function actorFrom(p: Principal, body: unknown): { id: string; role: string } {
  const claimed = typeof body === 'object' && body !== null ? (body as { actor?: unknown }).actor : undefined;
  if (claimed !== undefined) {
    const c: { id?: unknown; role?: unknown } = typeof claimed === 'string' ? { id: claimed } : typeof claimed === 'object' && claimed !== null && !Array.isArray(claimed) ? claimed : {};
    if (typeof c.id !== 'string' || (c.role !== undefined && typeof c.role !== 'string')) {
      throw new ValidationError('VALIDATION_FAILED', 'actor must be the credential’s actor id, or { id, role } with strings', {
        issues: [{ path: 'actor', message: 'expected a string or { id: string, role?: string }' }],
      });
    }
    if (c.id !== p.actor || (c.role !== undefined && c.role !== p.role)) {
      throw new AuthError('ACTOR_MISMATCH', 'the request claims an actor or role other than the credential’s', { details: { credentialActor: p.actor, credentialRole: p.role } });
    }
  }
  return { id: p.actor, role: p.role };
}

/** An entry index in a path: a non-negative integer, canonical decimal. */
export const INDEX = v.pipe(v.string(), v.regex(/^(0|[1-9][0-9]{0,15})$/, 'index must be a non-negative integer'), v.transform(Number));

/** Event type names, each checked against the event registry when the module loads. */
export function eventTypes(...names: readonly string[]): ReadonlySet<string> {
  for (const n of names) if (!Object.hasOwn(EVENT_REGISTRY, n)) throw new Error(`${n} is not an event type of the registry`);
  return new Set(names);
}

/** Decisions that went through (the operation was performed). */
export const EXECUTED = eventTypes('DATA_ACCESSED', 'INFERENCE_EXECUTED', 'TRAINING_EXECUTED', 'BREAK_GLASS');
/** A refusal by consent. */
export const DENIED = eventTypes('CONSENT_DENIED');
/** Decisions under a policy, shown in its history. */
export const POLICY_DECISIONS = eventTypes('DATA_ACCESSED', 'INFERENCE_EXECUTED', 'CONSENT_DENIED', 'BREAK_GLASS');

/**
 * The service request of a route declared with `serviceBody`: the body with the credential's
 * actor, parsed once with the service's schema (`checkRequest`: the service takes the result
 * without parsing it again). A claimed actor must be an {@link ACTOR_CLAIM} naming the credential's
 * actor ({@link actorFrom}). Errors are those of the route's HTTP schema (`withActorClaim`): the
 * same fields, the same paths, "invalid request body: ...".
 * @throws {ValidationError} VALIDATION_FAILED
 * @throws {AuthError} ACTOR_MISMATCH
 */
export function serviceRequest<S extends v.GenericSchema>(schema: S, req: FastifyRequest, principal: Principal): Checked<S> {
  const body = req.body;
  const plain = typeof body === 'object' && body !== null && !Array.isArray(body);
  const claim = plain ? (body as { actor?: unknown }).actor : undefined;
  const checked = checkRequest(schema, plain ? { ...body, actor: { id: principal.actor, role: principal.role } } : body, 'request body');
  if (claim !== undefined) parseWith(ACTOR_CLAIM, claim, 'request body', 'actor');
  actorFrom(principal, body);
  return checked;
}
