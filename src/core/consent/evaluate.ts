/**
 * The consent decision: a pure function of the policy in force, the request and the time.
 * @module
 */
import type { ConsentPolicy, Provision } from './policy.js';

/** Why a request was denied (or PERMITTED). Stable codes, listed in docs/governance.md. */
export type DecisionReason =
  | 'PERMITTED'
  | 'UNKNOWN_POLICY'
  | 'POLICY_TAMPERED'
  | 'REVOKED'
  | 'NOT_YET_VALID'
  | 'EXPIRED'
  | 'PURPOSE_NOT_ALLOWED'
  | 'ROLE_NOT_ALLOWED'
  | 'DENIED_BY_PROVISION';

/** The policy a decision is made under, as the service found it. */
export type PolicyLookup =
  | { readonly kind: 'found'; readonly policy: ConsentPolicy; readonly hash: string }
  | { readonly kind: 'unknown'; readonly policyId: string }
  /** The stored version document does not hash to what the log committed. */
  | { readonly kind: 'tampered'; readonly policyId: string; readonly version: number; readonly hash: string };

/** What is asked: a purpose-of-use code and the actor's role. */
export interface ConsentRequest {
  readonly purpose: string;
  readonly role: string;
}

/** The outcome, with the reason and the exact policy version it was made under. */
export interface Decision {
  readonly effect: 'permit' | 'deny';
  readonly reason: DecisionReason;
  readonly policyId: string;
  /** The version decided under; undefined when the policy is unknown. */
  readonly policyVersion: number | undefined;
  /** The hash of that version's document, as committed on the log. */
  readonly policyHash: string | undefined;
  /** Human explanation. */
  readonly explanation: string;
}

const ms = (t: string | undefined): number | undefined => (t === undefined ? undefined : Date.parse(t));

function inPeriod(period: Provision['period'], nowMs: number): boolean {
  if (!period) return true;
  const start = ms(period.start);
  const end = ms(period.end);
  return (start === undefined || nowMs >= start) && (end === undefined || nowMs <= end);
}

function matches(p: Provision, req: ConsentRequest, nowMs: number): boolean {
  return (
    (p.purposes === undefined || p.purposes.includes(req.purpose)) &&
    (p.roles === undefined || p.roles.includes(req.role)) &&
    inPeriod(p.period, nowMs)
  );
}

// FHIR Consent semantics: a matching nested provision overrides its parent; the deepest match wins.
function nestedEffect(p: Provision, req: ConsentRequest, nowMs: number): Provision {
  let decided: Provision = p;
  for (const child of p.provisions ?? []) {
    if (matches(child, req, nowMs)) decided = nestedEffect(child, req, nowMs);
  }
  return decided;
}

/**
 * Decides a request under a policy at time `nowMs` (the service's clock, never the caller's).
 * Checks, in order: unknown, tampered, revoked, not yet valid, expired, purpose, role, nested
 * provisions. The validity window is inclusive at both ends.
 * @example
 * evaluateConsent({ kind: 'found', policy, hash }, { purpose: 'clinical_care', role: 'dermatologist' }, Date.now())
 */
export function evaluateConsent(lookup: PolicyLookup, request: ConsentRequest, nowMs: number): Decision {
  if (lookup.kind === 'unknown') {
    return { effect: 'deny', reason: 'UNKNOWN_POLICY', policyId: lookup.policyId, policyVersion: undefined, policyHash: undefined, explanation: `no policy ${lookup.policyId} on the log` };
  }
  if (lookup.kind === 'tampered') {
    return {
      effect: 'deny',
      reason: 'POLICY_TAMPERED',
      policyId: lookup.policyId,
      policyVersion: lookup.version,
      policyHash: lookup.hash,
      explanation: `the stored document of version ${lookup.version} does not match the hash the log committed`,
    };
  }
  const { policy, hash } = lookup;
  const deny = (reason: DecisionReason, explanation: string): Decision => ({
    effect: 'deny',
    reason,
    policyId: policy.policyId,
    policyVersion: policy.version,
    policyHash: hash,
    explanation,
  });
  if (policy.revoked) return deny('REVOKED', `version ${policy.version} revoked consent at ${policy.recordedAt}`);
  const start = Date.parse(policy.period.start);
  if (nowMs < start) return deny('NOT_YET_VALID', `consent is valid from ${policy.period.start}`);
  const end = ms(policy.period.end);
  if (end !== undefined && nowMs > end) return deny('EXPIRED', `consent expired at ${policy.period.end}`);
  const root = policy.provision;
  if (root.type === 'deny' && matches(root, request, nowMs)) {
    // A matching root deny decides, unless a nested permit (an exception) matches more deeply.
    const decided = nestedEffect(root, request, nowMs);
    if (decided.type === 'permit') {
      return { effect: 'permit', reason: 'PERMITTED', policyId: policy.policyId, policyVersion: policy.version, policyHash: hash, explanation: `permitted by a nested provision of version ${policy.version}` };
    }
    return deny('DENIED_BY_PROVISION', 'the policy denies this request');
  }
  if (root.type === 'permit') {
    if (root.purposes !== undefined && !root.purposes.includes(request.purpose)) {
      return deny('PURPOSE_NOT_ALLOWED', `purpose ${request.purpose} is not among ${root.purposes.join(', ')}`);
    }
    if (root.roles !== undefined && !root.roles.includes(request.role)) {
      return deny('ROLE_NOT_ALLOWED', `role ${request.role} is not among ${root.roles.join(', ')}`);
    }
    if (!inPeriod(root.period, nowMs)) return deny('DENIED_BY_PROVISION', 'outside the period of the permit');
    const decided = nestedEffect(root, request, nowMs);
    if (decided.type === 'deny') return deny('DENIED_BY_PROVISION', 'a nested provision denies this request');
    return {
      effect: 'permit',
      reason: 'PERMITTED',
      policyId: policy.policyId,
      policyVersion: policy.version,
      policyHash: hash,
      explanation: `permitted by version ${policy.version}: purpose ${request.purpose}, role ${request.role}`,
    };
  }
  // A root deny that does not match the request: nested provisions are exceptions within the
  // root's scope (FHIR Consent), so none applies, and nothing permits.
  return deny('DENIED_BY_PROVISION', 'no provision permits this request');
}
