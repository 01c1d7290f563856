/**
 * Consent changes: creating a policy (version 1) and revoking it (a new version), each decided at
 * the moment its event is sequenced against the policy head the log has then.
 * @module
 */
import { ConflictError, ConsentError, NotFoundError, ValidationError } from '../../core/errors.js';
import { formatEntryTime } from '../../core/entry.js';
import { POLICY_ID, POLICY_SCHEMA, parsePolicyInput, type ConsentPolicy, type Provision } from '../../core/consent/policy.js';
import { parseWith } from '../../core/schema/parse.js';
import { GOVERNANCE_EVENT as EVENT } from '../../core/events.js';
import { policyIdFromBytes } from '../../core/vocabulary.js';
import type { AppendResult, Decided, SequencingContext } from '../../log/log.js';
import { ACTOR } from '../requests.js';
import type { Commitment } from './commitments.js';
import { DOC, doc } from './documents.js';
import type { Head } from './policy-heads.js';
import { withPolicyRetry, type Actor, type GovernanceState } from './state.js';

/** A policy version as written: the policy, its document hash and its event. */
export interface PolicyChange {
  policy: ConsentPolicy;
  hash: string;
  event: AppendResult;
}

/**
 * Creates version 1 of a consent policy. Custos generates the policy id (opaque: it never
 * carries a name); the caller's own reference may be given as `externalRef`, which is logged
 * only as a salted commitment.
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConflictError} POLICY_EXISTS (nothing written)
 */
export async function createConsent(s: GovernanceState, input: unknown, actor: Actor): Promise<PolicyChange> {
  const parsed = parsePolicyInput(input, s.vocab);
  const who = parseWith(ACTOR, actor, 'actor');
  s.checkCodes({ role: who.role });
  const p = { ...parsed, policyId: parsed.policyId ?? policyIdFromBytes(s.random(16)) };
  const values = [{ kind: 'subject', value: p.subject }, ...(p.externalRef === undefined ? [] : [{ kind: 'external_ref', value: p.externalRef }])];
  return s.commitments.with(values, async ([subject, externalRef]) => create(s, p, who, subject!, externalRef));
}

async function create(
  s: GovernanceState,
  p: ReturnType<typeof parsePolicyInput> & { policyId: string },
  who: { id: string; role: string },
  subject: Commitment,
  externalRef: Commitment | undefined,
): Promise<PolicyChange> {
  let created: { policy: ConsentPolicy; hash: string } | undefined;
  const event = await s.log.appendDecided((ctx: SequencingContext): Decided => {
    if (s.heads.at(p.policyId, ctx.batchId)) {
      throw new ConflictError('POLICY_EXISTS', `policy ${p.policyId} already exists`);
    }
    const time = formatEntryTime(ctx.timeMs);
    if (p.validUntil !== undefined && p.validFrom === undefined && p.validUntil < time) {
      throw new ValidationError('VALIDATION_FAILED', 'validUntil is before now (the default validFrom)', {
        issues: [{ path: 'validUntil', message: 'before validFrom' }],
      });
    }
    const provision: Provision = {
      type: 'permit',
      purposes: p.allowedPurposes,
      roles: p.allowedRoles,
      ...(p.provisions ? { provisions: p.provisions } : {}),
    };
    const policy: ConsentPolicy = {
      schema: POLICY_SCHEMA,
      policyId: p.policyId,
      version: 1,
      subject: subject.c.commitment,
      ...(externalRef ? { externalRef: externalRef.c.commitment } : {}),
      revocable: p.revocable,
      revoked: false,
      period: { start: p.validFrom ?? time, ...(p.validUntil ? { end: p.validUntil } : {}) },
      provision,
      previous: null,
      recordedAt: time,
      recordedBy: { actor: who.id, role: who.role },
    };
    const d = doc(DOC.policy, policy);
    const head: Head = { version: 1, hash: d.hash, index: ctx.index };
    s.heads.stage(p.policyId, head);
    created = { policy, hash: d.hash };
    const linked = s.links.note(ctx, () => s.log.size, p.policyId, subject.c.commitment, externalRef ? [externalRef.c.commitment] : []);
    return {
      type: EVENT.consentCreated,
      payload: s.checked(EVENT.consentCreated, {
        policyId: p.policyId,
        version: 1,
        subject: subject.c.commitment,
        ...(externalRef ? { externalRef: externalRef.c.commitment } : {}),
        purposes: [...p.allowedPurposes],
        roles: [...p.allowedRoles],
        validFrom: policy.period.start,
        ...(policy.period.end ? { validUntil: policy.period.end } : {}),
        revocable: p.revocable,
        actor: who.id,
        role: who.role,
        documents: { policy: d.hash },
      }),
      sidecar: {
        documents: [d],
        commitments: s.commitments.openings(subject, ...(externalRef ? [externalRef] : [])),
        state: [{ ns: 'policy', key: p.policyId, value: JSON.stringify(head) }],
      },
      onCommitted: () => {
        s.heads.committedByUs(p.policyId, head, policy);
        linked();
      },
    };
  });
  return { ...created!, event };
}

/**
 * Revokes a policy: a new version with `revoked: true`. From its acknowledgement on, no access or
 * inference on the policy is permitted.
 * @throws {NotFoundError} POLICY_NOT_FOUND
 * @throws {ConsentError} CONSENT_NOT_REVOCABLE, CONSENT_ALREADY_REVOKED, POLICY_TAMPERED (nothing written)
 */
export async function revokeConsent(s: GovernanceState, policyId: string, actor: Actor): Promise<PolicyChange> {
  const id = parseWith(POLICY_ID, policyId, 'policy id');
  const who = parseWith(ACTOR, actor, 'actor');
  s.checkCodes({ role: who.role });
  return withPolicyRetry(async () => {
    const pre = await s.heads.preload(id);
    let revoked: { policy: ConsentPolicy; hash: string } | undefined;
    const event = await s.log.appendDecided((ctx): Decided => {
      const current = s.heads.resolve(pre, id, ctx.batchId);
      if (current.kind === 'unknown') throw new NotFoundError('POLICY_NOT_FOUND', `no policy ${id}`);
      if (current.kind === 'tampered') {
        throw new ConsentError('POLICY_TAMPERED', `the stored document of ${id} version ${current.version} does not match the log`);
      }
      const prev = current.policy;
      if (!prev.revocable) throw new ConsentError('CONSENT_NOT_REVOCABLE', `policy ${id} is not revocable`);
      if (prev.revoked) throw new ConsentError('CONSENT_ALREADY_REVOKED', `policy ${id} is already revoked`);
      // A revocation is a version of its own: it is no longer the FHIR resource the previous
      // version was imported from (its FHIR form is then the converted one).
      const { source: _source, ...rest } = prev;
      void _source;
      const policy: ConsentPolicy = {
        ...rest,
        version: prev.version + 1,
        revoked: true,
        previous: current.hash,
        recordedAt: formatEntryTime(ctx.timeMs),
        recordedBy: { actor: who.id, role: who.role },
      };
      const d = doc(DOC.policy, policy);
      const head: Head = { version: policy.version, hash: d.hash, index: ctx.index };
      s.heads.stage(id, head);
      revoked = { policy, hash: d.hash };
      return {
        type: EVENT.consentRevoked,
        payload: s.checked(EVENT.consentRevoked, { policyId: id, version: policy.version, previous: current.hash, actor: who.id, role: who.role, documents: { policy: d.hash } }),
        sidecar: { documents: [d], state: [{ ns: 'policy', key: id, value: JSON.stringify(head) }] },
        onCommitted: () => s.heads.committedByUs(id, head, policy),
      };
    });
    return { ...revoked!, event };
  });
}
