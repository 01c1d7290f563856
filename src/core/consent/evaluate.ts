/**
 * The consent decision: a pure function of the policy in force, the request and the time.
 * @module
 */
import { PROVISION_PATH_RE, type ConsentPolicy, type Provision } from './policy.js';
import { codingKey, DEFAULT_SYSTEMS, systemOfKey, type CodedAttribute, type ConsentRequest } from './request.js';

export { PROVISION_PATH_RE };

/** Why a request was denied (or PERMITTED). Stable codes, listed in docs/governance.md. */
export type DecisionReason = 'PERMITTED' | 'POLICY_NOT_FOUND' | 'POLICY_TAMPERED' | 'REVOKED' | 'NOT_YET_VALID' | 'EXPIRED' | 'PURPOSE_NOT_ALLOWED' | 'ROLE_NOT_ALLOWED' | 'DENIED_BY_PROVISION';

/** The policy a decision is made under, as the service found it. */
export type PolicyLookup =
  | { readonly kind: 'found'; readonly policy: ConsentPolicy; readonly hash: string }
  | { readonly kind: 'unknown'; readonly policyId: string }
  /** The stored version document does not hash to what the log committed. */
  | { readonly kind: 'tampered'; readonly policyId: string; readonly version: number; readonly hash: string };

export type { ConsentRequest } from './request.js';

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

const ms = (t: string | undefined): number | undefined => (t === undefined ? undefined : Date.parse(t));

// Three-valued match of one constraint: the request is inside it, outside it, or the request does
// not state what the constraint needs (an attribute left out, a coding of a system the constraint
// does not use). UNKNOWN fails closed: a deny counts as matching, a permit as not matching.
const NO = 0;
const YES = 1;
const UNKNOWN = 2;
type Match = typeof NO | typeof YES | typeof UNKNOWN;

// A coded constraint, normalised once: the keys 'SYSTEM|CODE', the systems they use, and the codes
// of the attribute's default system (so a bare code in a request is looked up without building a key).
interface CodedSet {
  readonly keys: ReadonlySet<string>;
  readonly systems: ReadonlySet<string>;
  /** The systems as a list, to test a coding's system without slicing it (allocation-free). */
  readonly systemList: readonly string[];
  readonly bare: ReadonlySet<string>;
  readonly defaultSystem: string;
}
interface CompiledActor {
  readonly role: CodedSet | undefined;
  readonly reference: string | undefined;
}
interface CompiledPeriod {
  readonly start: number | undefined;
  readonly end: number | undefined;
}
interface Compiled {
  readonly purposes: CodedSet | undefined;
  readonly roles: CodedSet | undefined;
  readonly actors: readonly CompiledActor[] | undefined;
  readonly actions: CodedSet | undefined;
  readonly securityLabels: CodedSet | undefined;
  readonly classes: CodedSet | undefined;
  readonly codes: CodedSet | undefined;
  readonly period: CompiledPeriod | undefined;
  readonly dataPeriod: CompiledPeriod | undefined;
}

function codedSet(list: readonly string[] | undefined, attribute: CodedAttribute): CodedSet | undefined {
  if (list === undefined) return undefined;
  const keys = new Set<string>();
  const systems = new Set<string>();
  const bare = new Set<string>();
  const defaultSystem = DEFAULT_SYSTEMS[attribute] ?? '';
  for (const c of list) {
    const k = codingKey(c, attribute);
    const system = systemOfKey(k);
    keys.add(k);
    systems.add(system);
    if (system === defaultSystem) bare.add(k.slice(system.length + 1));
  }
  return { keys, systems, systemList: [...systems], bare, defaultSystem };
}

const period = (p: Provision['period']): CompiledPeriod | undefined => (p === undefined ? undefined : { start: ms(p.start), end: ms(p.end) });

// Provisions are immutable documents: each is normalised once, the first time it is consulted,
// and the result is kept as long as the provision object lives (a policy loaded once decides many
// requests without re-parsing a coding).
const COMPILED = new WeakMap<Provision, Compiled>();

function compiled(p: Provision): Compiled {
  let c = COMPILED.get(p);
  if (c === undefined) {
    c = {
      purposes: codedSet(p.purposes, 'purpose'),
      roles: codedSet(p.roles, 'role'),
      actors: p.actors?.map((a) => ({ role: a.role === undefined ? undefined : codedSet([a.role], 'role'), reference: a.reference })),
      actions: codedSet(p.actions, 'action'),
      securityLabels: codedSet(p.securityLabels, 'securityLabel'),
      classes: codedSet(p.classes, 'class'),
      codes: codedSet(p.codes, 'code'),
      period: period(p.period),
      dataPeriod: period(p.dataPeriod),
    };
    COMPILED.set(p, c);
  }
  return c;
}

// The request as asked (codings as written: bare or SYSTEM|CODE), with its times parsed.
interface Asked {
  readonly purpose: string;
  readonly role: string;
  /** The other codings the actor's role is known by (the deployment's role mapping), or none. */
  readonly roleCodings: readonly string[];
  readonly actorReference: string | undefined;
  readonly action: string | undefined;
  readonly class: string | undefined;
  readonly code: string | undefined;
  readonly securityLabels: readonly string[];
  readonly dataMs: number | undefined;
  readonly nowMs: number;
}

function asked(req: ConsentRequest, nowMs: number): Asked {
  return {
    purpose: req.purpose,
    role: req.role,
    roleCodings: req.roleCodings ?? NONE,
    actorReference: req.actorReference,
    action: req.action,
    class: req.class,
    code: req.code,
    securityLabels: req.securityLabels ?? [],
    dataMs: req.dataTime === undefined ? undefined : Date.parse(req.dataTime),
    nowMs,
  };
}

const NONE: readonly string[] = Object.freeze([]);

// Whether the system of `coding` (its text before `bar`) is one the constraint uses; compared in
// place, without slicing the system out.
function usesSystemOf(set: CodedSet, coding: string, bar: number): boolean {
  const list = set.systemList;
  for (let i = 0; i < list.length; i++) if (list[i]!.length === bar && coding.startsWith(list[i]!)) return true;
  return false;
}

// A coding as asked (bare: the attribute's default system) against a coded constraint.
function coded(set: CodedSet | undefined, asked: string | undefined): Match {
  if (set === undefined) return YES;
  if (asked === undefined) return UNKNOWN;
  const bar = asked.indexOf('|');
  if (bar < 0) return set.bare.has(asked) ? YES : set.systems.has(set.defaultSystem) ? NO : UNKNOWN;
  if (set.keys.has(asked)) return YES;
  // Another system than the constraint's: it may well name the same concept; it cannot be told.
  return usesSystemOf(set, asked, bar) ? NO : UNKNOWN;
}

// The actor's role against a role constraint: the role as asked, or any of the codings the
// deployment maps it to (docs/consent.md, "Roles and FHIR role codings"). One that matches: YES.
// Else one in a system the constraint uses: NO (the role is stated there, and it is not this).
// Else none is in the constraint's systems: UNKNOWN (fail closed).
function codedRole(set: CodedSet | undefined, q: Asked): Match {
  if (set === undefined) return YES;
  let m = coded(set, q.role);
  if (m === YES) return YES;
  const more = q.roleCodings;
  for (let i = 0; i < more.length; i++) {
    const r = coded(set, more[i]);
    if (r === YES) return YES;
    if (r === NO) m = NO;
  }
  return m;
}

function within(p: CompiledPeriod | undefined, t: number | undefined): Match {
  if (p === undefined) return YES;
  if (t === undefined) return UNKNOWN;
  return (p.start === undefined || t >= p.start) && (p.end === undefined || t <= p.end) ? YES : NO;
}

function actor(a: CompiledActor, q: Asked): Match {
  const m = codedRole(a.role, q);
  if (m === NO) return NO;
  if (a.reference !== undefined) {
    if (q.actorReference === undefined) return UNKNOWN;
    if (q.actorReference !== a.reference) return NO;
  }
  return m;
}

function labels(set: CodedSet | undefined, q: Asked): Match {
  if (set === undefined) return YES;
  // The data's labels are stated (absent = none): the provision applies if the data carries any.
  for (const l of q.securityLabels) if (l.includes('|') ? set.keys.has(l) : set.bare.has(l)) return YES;
  return NO;
}

const and = (a: Match, b: Match): Match => (a === NO || b === NO ? NO : a === UNKNOWN || b === UNKNOWN ? UNKNOWN : YES);

function matchActors(actors: readonly CompiledActor[] | undefined, q: Asked): Match {
  if (actors === undefined) return YES;
  let best: Match = NO;
  for (const a of actors) {
    const m = actor(a, q);
    if (m === YES) return YES;
    if (m === UNKNOWN) best = UNKNOWN;
  }
  return best;
}

// Every constraint but purpose and role (the root permit reports those with their own reasons).
function matchRest(c: Compiled, q: Asked): Match {
  let m = matchActors(c.actors, q);
  if (m === NO) return NO;
  m = and(m, coded(c.actions, q.action));
  if (m === NO) return NO;
  m = and(m, labels(c.securityLabels, q));
  if (m === NO) return NO;
  m = and(m, coded(c.classes, q.class));
  if (m === NO) return NO;
  m = and(m, coded(c.codes, q.code));
  if (m === NO) return NO;
  m = and(m, within(c.period, q.nowMs));
  if (m === NO) return NO;
  return and(m, within(c.dataPeriod, q.dataMs));
}

function match(p: Provision, q: Asked): Match {
  const c = compiled(p);
  const m = and(coded(c.purposes, q.purpose), codedRole(c.roles, q));
  return m === NO ? NO : and(m, matchRest(c, q));
}

// What a provision constrains that the request does not state, for the explanation of a
// fail-closed denial (computed only then, off the hot path).
function unstated(p: Provision, q: Asked): string {
  const c = compiled(p);
  const out = new Set<string>();
  const role = (set: CodedSet | undefined) => {
    if (codedRole(set, q) === UNKNOWN) out.add(`the role ${q.role}${q.roleCodings.length > 0 ? ' and the codings it is mapped to have' : ' has'} no coding in ${set!.systemList.join(' or ')}`);
  };
  if (coded(c.purposes, q.purpose) === UNKNOWN) out.add(`the purpose has no coding in ${c.purposes!.systemList.join(' or ')}`);
  role(c.roles);
  for (const a of c.actors ?? []) {
    if (a.reference !== undefined && q.actorReference === undefined) out.add('no actor reference');
    role(a.role);
  }
  const attr = (set: CodedSet | undefined, asked: string | undefined, name: string) => {
    if (coded(set, asked) === UNKNOWN) out.add(asked === undefined ? `no ${name}` : `the ${name} has no coding in ${set!.systemList.join(' or ')}`);
  };
  attr(c.actions, q.action, 'action');
  attr(c.classes, q.class, 'class');
  attr(c.codes, q.code, 'code');
  if (within(c.dataPeriod, q.dataMs) === UNKNOWN) out.add('no data time');
  return out.size === 0 ? '' : `: ${[...out].join('; ')}`;
}

interface Decided {
  readonly provision: Provision;
  readonly path: string;
  /** The provision decided on an attribute the request did not state (a fail-closed deny). */
  readonly unknown: boolean;
}

const childPath = (child: Provision, parent: string, i: number): string => child.path ?? `${parent}.provisions[${i}]`;

// FHIR Consent semantics: nested provisions are exceptions to their parent, applied only where
// the parent matches. Among the matching siblings, deny overrides permit (FHIR Consent, IHE PCF):
// the decision never depends on the order the siblings were written in. A matching child decides
// for its parent through its own subtree (the deepest match); if no child matches, the parent
// decides. Of several deciding siblings with the same effect, the first is named. A deny that
// matches only because the request leaves an attribute it constrains unstated decides by itself:
// its exceptions were written for requests inside it, and this one may not be.
function decideWithin(p: Provision, path: string, q: Asked): Decided {
  let permit: Decided | undefined;
  const children = p.provisions ?? [];
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    const m = match(child, q);
    if (m === NO) continue;
    const cp = childPath(child, path, i);
    if (child.type === 'deny') {
      if (m === UNKNOWN) return { provision: child, path: cp, unknown: true };
    } else if (m === UNKNOWN) continue;
    const d = decideWithin(child, cp, q);
    if (d.provision.type === 'deny') return d;
    permit ??= d;
  }
  return permit ?? { provision: p, path, unknown: false };
}

// The first exception (a permit) that does not apply only because the request leaves unstated
// what it constrains, for the explanation of a denial by the base (computed only then).
function skippedPermit(p: Provision, path: string, q: Asked): string {
  const children = p.provisions ?? [];
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    const m = match(child, q);
    const cp = childPath(child, path, i);
    if (child.type === 'permit' && m === UNKNOWN) return `; ${cp} does not apply: it constrains an attribute the request does not state (fail closed)${unstated(child, q)}`;
    if (m === YES) {
      const s = skippedPermit(child, cp, q);
      if (s !== '') return s;
    }
  }
  return '';
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
  const rootPath = root.path ?? 'provision';
  const q = asked(request, nowMs);
  const denied = (d: Decided): Decision =>
    deny(
      'DENIED_BY_PROVISION',
      d.unknown
        ? `${d.path} denies this request: it constrains an attribute the request does not state (fail closed)${unstated(d.provision, q)}`
        : `${d.path} denies this request${d.provision === root ? skippedPermit(root, rootPath, q) : ''}`,
      d.path,
    );
  if (root.type === 'deny') {
    const m = match(root, q);
    if (m === UNKNOWN) return denied({ provision: root, path: rootPath, unknown: true });
    if (m === YES) {
      // A matching root deny decides, unless an exception (a nested permit) matches and no matching
      // sibling of it denies.
      const d = decideWithin(root, rootPath, q);
      if (d.provision.type === 'permit') return permit(d.path, `permitted by ${d.path} of version ${policy.version}`);
      return denied(d);
    }
    // A root deny that does not match the request: nested provisions are exceptions within the
    // root's scope (FHIR Consent), so none applies, and nothing permits.
    return deny('DENIED_BY_PROVISION', 'no provision permits this request', rootPath);
  }
  const c = compiled(root);
  if (coded(c.purposes, q.purpose) !== YES) {
    return deny('PURPOSE_NOT_ALLOWED', `purpose ${request.purpose} is not among ${root.purposes!.join(', ')}`, rootPath);
  }
  const role = codedRole(c.roles, q);
  if (role !== YES) return deny('ROLE_NOT_ALLOWED', `role ${request.role} is not among ${root.roles!.join(', ')}${role === UNKNOWN ? ` (fail closed${unstated(root, q)})` : ''}`, rootPath);
  if (within(c.period, nowMs) !== YES) return deny('DENIED_BY_PROVISION', 'outside the period of the permit', rootPath);
  const rest = matchRest(c, q);
  if (rest === UNKNOWN) return deny('DENIED_BY_PROVISION', `${rootPath} constrains an attribute the request does not state (fail closed)${unstated(root, q)}`, rootPath);
  if (rest === NO) return deny('DENIED_BY_PROVISION', `the request is outside ${rootPath}, the only permit`, rootPath);
  const d = decideWithin(root, rootPath, q);
  if (d.provision.type === 'deny') return denied(d);
  return permit(d.path, `permitted by ${d.path} of version ${policy.version}: purpose ${request.purpose}, role ${request.role}`);
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
