/**
 * The consent decision: a pure function of the policy in force, the request and the time.
 * @module
 */
import type { ConsentPolicy, Provision } from './policy.js';

/** Why a request was denied (or PERMITTED). Stable codes, listed in docs/governance.md. */
export type DecisionReason = 'PERMITTED' | 'POLICY_NOT_FOUND' | 'POLICY_TAMPERED' | 'REVOKED' | 'NOT_YET_VALID' | 'EXPIRED' | 'PURPOSE_NOT_ALLOWED' | 'ROLE_NOT_ALLOWED' | 'DENIED_BY_PROVISION';

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
  /**
   * The provision that decided, as a path from the policy document's root: `provision`,
   * `provision.provisions[1]`, `provision.provisions[1].provisions[0]`. Undefined when no
   * provision was consulted (unknown, tampered, revoked, not yet valid, expired).
   */
  readonly provision: string | undefined;
  /** Human explanation. */
  readonly explanation: string;
}

/** The pattern of {@link Decision.provision}. */
export const PROVISION_PATH_RE = /^provision(\.provisions\[(0|[1-9][0-9]?)\]){0,16}$/;

const ms = (t: string | undefined): number | undefined => (t === undefined ? undefined : Date.parse(t));

function inPeriod(period: Provision['period'], nowMs: number): boolean {
  if (!period) return true;
  const start = ms(period.start);
  const end = ms(period.end);
  return (start === undefined || nowMs >= start) && (end === undefined || nowMs <= end);
}

function matches(p: Provision, req: ConsentRequest, nowMs: number): boolean {
  return (p.purposes === undefined || p.purposes.includes(req.purpose)) && (p.roles === undefined || p.roles.includes(req.role)) && inPeriod(p.period, nowMs);
}

interface Decided {
  readonly provision: Provision;
  readonly path: string;
}

// FHIR Consent semantics: nested provisions are exceptions to their parent, applied only where
// the parent matches. Among the matching siblings, deny overrides permit (FHIR Consent, IHE PCF):
// the decision never depends on the order the siblings were written in. A matching child decides
// for its parent through its own subtree (the deepest match); if no child matches, the parent
// decides. Of several deciding siblings with the same effect, the first is named.
function decideWithin(p: Provision, path: string, req: ConsentRequest, nowMs: number): Decided {
  let permit: Decided | undefined;
  const children = p.provisions ?? [];
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    if (!matches(child, req, nowMs)) continue;
    const d = decideWithin(child, `${path}.provisions[${i}]`, req, nowMs);
    if (d.provision.type === 'deny') return d;
    permit ??= d;
  }
  return permit ?? { provision: p, path };
}

/**
 * Decides a request under a policy at time `nowMs` (the service's clock, never the caller's).
 * Checks, in order: unknown, tampered, revoked, not yet valid, expired, purpose, role, nested
 * provisions. The validity window is inclusive at both ends.
 * @example
 * evaluateConsent({ kind: 'found', policy, hash }, { purpose: 'TREAT', role: 'dermatologist' }, Date.now())
 */
export function evaluateConsent(lookup: PolicyLookup, request: ConsentRequest, nowMs: number): Decision {
  if (lookup.kind === 'unknown') {
    return {
      effect: 'deny',
      reason: 'POLICY_NOT_FOUND',
      policyId: lookup.policyId,
      policyVersion: undefined,
      policyHash: undefined,
      provision: undefined,
      explanation: `no policy ${lookup.policyId} on the log`,
    };
  }
  if (lookup.kind === 'tampered') {
    return {
      effect: 'deny',
      reason: 'POLICY_TAMPERED',
      policyId: lookup.policyId,
      policyVersion: lookup.version,
      policyHash: lookup.hash,
      provision: undefined,
      explanation: `the stored document of version ${lookup.version} does not match the hash the log committed`,
    };
  }
  const { policy, hash } = lookup;
  const deny = (reason: DecisionReason, explanation: string, provision?: string): Decision => ({
    effect: 'deny',
    reason,
    policyId: policy.policyId,
    policyVersion: policy.version,
    policyHash: hash,
    provision,
    explanation,
  });
  const permit = (provision: string, explanation: string): Decision => ({
    effect: 'permit',
    reason: 'PERMITTED',
    policyId: policy.policyId,
    policyVersion: policy.version,
    policyHash: hash,
    provision,
    explanation,
  });
  if (policy.revoked) return deny('REVOKED', `version ${policy.version} revoked consent at ${policy.recordedAt}`);
  const start = Date.parse(policy.period.start);
  if (nowMs < start) return deny('NOT_YET_VALID', `consent is valid from ${policy.period.start}`);
  const end = ms(policy.period.end);
  if (end !== undefined && nowMs > end) return deny('EXPIRED', `consent expired at ${policy.period.end}`);
  const root = policy.provision;
  if (root.type === 'deny' && matches(root, request, nowMs)) {
    // A matching root deny decides, unless an exception (a nested permit) matches and no matching
    // sibling of it denies.
    const d = decideWithin(root, 'provision', request, nowMs);
    if (d.provision.type === 'permit') return permit(d.path, `permitted by ${d.path} of version ${policy.version}`);
    return deny('DENIED_BY_PROVISION', `${d.path} denies this request`, d.path);
  }
  if (root.type === 'permit') {
    if (root.purposes !== undefined && !root.purposes.includes(request.purpose)) {
      return deny('PURPOSE_NOT_ALLOWED', `purpose ${request.purpose} is not among ${root.purposes.join(', ')}`, 'provision');
    }
    if (root.roles !== undefined && !root.roles.includes(request.role)) {
      return deny('ROLE_NOT_ALLOWED', `role ${request.role} is not among ${root.roles.join(', ')}`, 'provision');
    }
    if (!inPeriod(root.period, nowMs)) return deny('DENIED_BY_PROVISION', 'outside the period of the permit', 'provision');
    const d = decideWithin(root, 'provision', request, nowMs);
    if (d.provision.type === 'deny') return deny('DENIED_BY_PROVISION', `${d.path} denies this request`, d.path);
    return permit(d.path, `permitted by ${d.path} of version ${policy.version}: purpose ${request.purpose}, role ${request.role}`);
  }
  // A root deny that does not match the request: nested provisions are exceptions within the
  // root's scope (FHIR Consent), so none applies, and nothing permits.
  return deny('DENIED_BY_PROVISION', 'no provision permits this request', 'provision');
}

/** A decision as JSON (undefined fields as null): the shape the CLI's `--json` and the HTTP API print. */
export function decisionToJson(d: Decision): {
  effect: 'permit' | 'deny';
  reason: DecisionReason;
  policyId: string;
  policyVersion: number | null;
  policyHash: string | null;
  provision: string | null;
  explanation: string;
} {
  return {
    effect: d.effect,
    reason: d.reason,
    policyId: d.policyId,
    policyVersion: d.policyVersion ?? null,
    policyHash: d.policyHash ?? null,
    provision: d.provision ?? null,
    explanation: d.explanation,
  };
}
