/**
 * The consent policy model.
 *
 * A policy has the reference's fields (policy id, pseudonymous subject, allowed purposes and roles,
 * validity window, revocable, revoked, version) in a shape that maps onto FHIR Consent: a root
 * `provision` (permit or deny) with purpose-of-use codes, actor roles and a period, and nested
 * provisions that make exceptions to it. Every change makes a new immutable version document;
 * a policy's history is its versions in order, each linked to the one before by hash.
 * @module
 */
import * as v from 'valibot';
import { CODE, ID, OPAQUE_ID, TIME, parseWith } from '../schema/parse.js';
import { ACTOR_REFERENCE, CODING, CUSTOS_ROLE_SYSTEM, V3_ACT_REASON } from './request.js';
import { ValidationError, type ValidationIssue } from '../errors.js';
import { DEFAULT_VOCABULARY, POLICY_ID_RE, type Vocabulary } from '../vocabulary.js';

/** A policy id: opaque, `pol_` + 26 base32 characters (see {@link POLICY_ID_RE}). */
export const POLICY_ID = v.pipe(v.string(), v.regex(POLICY_ID_RE, 'expected an opaque policy id (pol_ + 26 base32 characters, as Custos generates); put your own reference in externalRef'));

/** Schema name written in every policy version document. */
export const POLICY_SCHEMA = 'custos/consent-policy/v1';

/**
 * The pattern of a decision's provision path: `provision`, `provision.provisions[1]`... for native
 * policies; for policies compiled from FHIR, the FHIR element: `provision`, `provision.provision[1]`
 * (R4), `provision[0].provision[1]` (R5, where the root provision repeats), and `decision` (R5 Consent.decision, the base outside the root provision).
 */
export const PROVISION_PATH_RE = /^(?:decision|provision(?:\.provisions\[(?:0|[1-9][0-9]?)\]){0,16}|provision(?:\[(?:0|[1-9][0-9]?)\])?(?:\.provision\[(?:0|[1-9][0-9]?)\]){0,16})$/;

/** One actor of a provision: a role, a reference, or both (both must match). */
export interface ProvisionActor {
  /** A coding 'SYSTEM|CODE' (bare = a Custos role code). */
  readonly role?: string;
  /** A literal reference, e.g. 'Practitioner/f204'. */
  readonly reference?: string;
}

/**
 * A rule of a policy (FHIR Consent.provision). Unset constraints match anything; a set constraint
 * on an attribute the request does not state cannot be evaluated and fails closed (docs/consent.md).
 * Codings are 'SYSTEM|CODE' strings, or bare codes of the attribute's default system.
 */
export interface Provision {
  readonly type: 'permit' | 'deny';
  /** Purposes of use this provision applies to (bare = HL7 v3 ActReason). */
  readonly purposes?: readonly string[];
  /** Actor roles this provision applies to (bare = Custos role codes). */
  readonly roles?: readonly string[];
  /** Actors this provision applies to: any of them (each: its role and its reference). */
  readonly actors?: readonly ProvisionActor[];
  /** Actions (bare = FHIR consentaction). */
  readonly actions?: readonly string[];
  /** Security labels of the data: any of them (bare = v3 ActCode). */
  readonly securityLabels?: readonly string[];
  /** Classes or resource types of the data (bare = FHIR resource types). */
  readonly classes?: readonly string[];
  /** Codes of the data (SYSTEM|CODE). */
  readonly codes?: readonly string[];
  /** When this provision applies (RFC 3339, inclusive). */
  readonly period?: { readonly start?: string; readonly end?: string };
  /** The time of the data this provision applies to (RFC 3339, inclusive). */
  readonly dataPeriod?: { readonly start?: string; readonly end?: string };
  /** Exceptions, applied in order; the deepest matching provision decides. */
  readonly provisions?: readonly Provision[];
  /**
   * The path a decision names when this provision decides, for provisions compiled from FHIR
   * (the FHIR element, e.g. `provision.provision[1]`); native provisions leave it unset and are
   * named by their position (`provision.provisions[1]`).
   */
  readonly path?: string;
}

/** One immutable version of a consent policy, as stored off-ledger (canonical JSON). */
export interface ConsentPolicy {
  readonly schema: typeof POLICY_SCHEMA;
  readonly policyId: string;
  readonly version: number;
  /** Salted commitment to the pseudonymous subject id (never the id itself). */
  readonly subject: string;
  /** Salted commitment to the caller's own reference (e.g. a FHIR Consent id), if given. */
  readonly externalRef?: string;
  readonly revocable: boolean;
  readonly revoked: boolean;
  /** Validity window (valid from, valid until), RFC 3339 UTC; `end` inclusive. */
  readonly period: { readonly start: string; readonly end?: string };
  readonly provision: Provision;
  /** Hash of the previous version, null for version 1. */
  readonly previous: string | null;
  /** When and by whom this version was recorded (the log's time). */
  readonly recordedAt: string;
  readonly recordedBy: { readonly actor: string; readonly role: string };
  /**
   * Set when this version was imported from a FHIR Consent resource: its format and the SHA-256
   * of its exact bytes (stored off-ledger beside this document, committed by the same event).
   */
  readonly source?: PolicySource;
}

/** The FHIR resource a policy version was imported from (see {@link ConsentPolicy.source}). */
export interface PolicySource {
  readonly format: 'fhir-r4' | 'fhir-r5';
  readonly hash: string;
}

/** The formats a policy version can be imported from. */
export const POLICY_SOURCE_FORMATS = ['fhir-r4', 'fhir-r5'] as const;

/**
 * Nested provisions deeper than this are refused (a provision at depth 16 is still well inside the
 * canonical-JSON depth limit of its policy document). Checked without recursion before anything
 * recurses over provisions.
 */
export const MAX_PROVISION_DEPTH = 16;

// The depth of the deepest provision under `provisions` (1 for a flat list), iteratively.
function provisionDepth(provisions: readonly Provision[] | undefined): number {
  let deepest = 0;
  const stack: [readonly Provision[] | undefined, number][] = [[provisions, 1]];
  while (stack.length > 0) {
    const [list, depth] = stack.pop()!;
    if (!list || list.length === 0) continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_PROVISION_DEPTH) return deepest;
    for (const p of list) stack.push([p.provisions, depth + 1]);
  }
  return deepest;
}

const PERIOD = v.object({ start: v.optional(TIME), end: v.optional(TIME) });
const CODINGS = v.pipe(v.array(CODING), v.minLength(1), v.maxLength(64));

/** One provision of a policy (nested provisions are exceptions to it). */
export const PROVISION: v.GenericSchema<Provision> = v.object({
  type: v.picklist(['permit', 'deny']),
  purposes: v.optional(CODINGS),
  roles: v.optional(CODINGS),
  actors: v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.object({ role: v.optional(CODING), reference: v.optional(ACTOR_REFERENCE) }),
          v.check((a) => a.role !== undefined || a.reference !== undefined, 'an actor needs a role or a reference'),
        ),
      ),
      v.minLength(1),
      v.maxLength(64),
    ),
  ),
  actions: v.optional(CODINGS),
  securityLabels: v.optional(CODINGS),
  classes: v.optional(CODINGS),
  codes: v.optional(v.pipe(v.array(v.pipe(CODING, v.includes('|', 'the code of the data needs its system: SYSTEM|CODE'))), v.minLength(1), v.maxLength(64))),
  period: v.optional(PERIOD),
  dataPeriod: v.optional(PERIOD),
  provisions: v.optional(v.pipe(v.array(v.lazy(() => PROVISION)), v.maxLength(64))),
  path: v.optional(v.pipe(v.string(), v.regex(PROVISION_PATH_RE, 'expected a provision path'))),
});

/** What a caller gives to create a policy. */
export interface PolicyInput {
  /** Optional: Custos generates one. A supplied id must have the opaque form Custos generates. */
  readonly policyId?: string;
  /** The caller's own reference (FHIR Consent id, a registry number): only its salted commitment is logged. */
  readonly externalRef?: string;
  /** The pseudonymous subject id; only its salted commitment goes anywhere near the log. */
  readonly subject: string;
  readonly allowedPurposes?: readonly string[];
  readonly allowedRoles?: readonly string[];
  readonly validFrom?: string;
  readonly validUntil?: string;
  readonly revocable?: boolean;
  /** Exceptions to the allowed purposes/roles (FHIR nested provisions). */
  readonly provisions?: readonly Provision[];
}

/** What a caller gives to create a policy (structure only; {@link parsePolicyInput} adds the vocabularies). */
export const POLICY_INPUT = v.pipe(
  v.object({
    policyId: v.optional(POLICY_ID),
    externalRef: v.optional(OPAQUE_ID),
    subject: OPAQUE_ID,
    allowedPurposes: v.pipe(v.array(CODE), v.minLength(1), v.maxLength(64)),
    allowedRoles: v.pipe(v.array(CODE), v.minLength(1), v.maxLength(64)),
    validFrom: v.optional(TIME),
    validUntil: v.optional(TIME),
    revocable: v.optional(v.boolean(), true),
    provisions: v.optional(
      v.pipe(
        v.array(PROVISION),
        v.maxLength(64),
        v.check((ps) => provisionDepth(ps) <= MAX_PROVISION_DEPTH, `provisions nested deeper than ${MAX_PROVISION_DEPTH}`),
      ),
    ),
  }),
  v.forward(
    v.partialCheck([['validFrom'], ['validUntil']], (p) => p.validFrom === undefined || p.validUntil === undefined || p.validFrom <= p.validUntil, 'validUntil is before validFrom'),
    ['validUntil'],
  ),
);

/** A validated policy input. */
export type ParsedPolicyInput = v.InferOutput<typeof POLICY_INPUT>;

/**
 * Validates what a caller gives to create a policy.
 * @throws {ValidationError} VALIDATION_FAILED, listing every problem
 */
export function parsePolicyInput(input: unknown, vocab: Vocabulary = DEFAULT_VOCABULARY): ParsedPolicyInput {
  const p = parseWith(POLICY_INPUT, input, 'consent policy');
  // Every purpose and role must come from the deployment's vocabularies (codes, never free text).
  const issues: ValidationIssue[] = [];
  // A bare code (or one of the default system) must be in the vocabulary; a coding of another
  // system is the caller's own terminology and is compared as written.
  const codes = (list: readonly string[] | undefined, set: ReadonlySet<string>, path: string, what: string, defaultSystem: string) =>
    list?.forEach((c, i) => {
      const bar = c.indexOf('|');
      if (bar >= 0 && c.slice(0, bar) !== defaultSystem) return;
      const code = bar >= 0 ? c.slice(bar + 1) : c;
      if (!set.has(code)) issues.push({ path: `${path}.${i}`, message: `unknown ${what} ${code}` });
    });
  codes(p.allowedPurposes, vocab.purposes, 'allowedPurposes', 'purpose', V3_ACT_REASON);
  codes(p.allowedRoles, vocab.roles, 'allowedRoles', 'role', CUSTOS_ROLE_SYSTEM);
  const walk = (ps: readonly Provision[] | undefined, path: string): void =>
    ps?.forEach((x, i) => {
      codes(x.purposes, vocab.purposes, `${path}.${i}.purposes`, 'purpose', V3_ACT_REASON);
      codes(x.roles, vocab.roles, `${path}.${i}.roles`, 'role', CUSTOS_ROLE_SYSTEM);
      walk(x.provisions, `${path}.${i}.provisions`);
    });
  walk(p.provisions, 'provisions');
  if (issues.length > 0) {
    throw new ValidationError('VALIDATION_FAILED', `invalid consent policy: ${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  }
  return p;
}

const STORED_POLICY = v.object({
  schema: v.literal(POLICY_SCHEMA),
  policyId: POLICY_ID,
  version: v.pipe(v.number(), v.integer(), v.minValue(1)),
  subject: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  externalRef: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))),
  revocable: v.boolean(),
  revoked: v.boolean(),
  period: v.object({ start: TIME, end: v.optional(TIME) }),
  provision: PROVISION,
  previous: v.nullable(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))),
  recordedAt: TIME,
  recordedBy: v.object({ actor: ID, role: CODE }),
  source: v.optional(v.object({ format: v.picklist(POLICY_SOURCE_FORMATS), hash: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)) })),
});

/**
 * Parses a stored policy version document.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseStoredPolicy(input: unknown): ConsentPolicy {
  return parseWith(STORED_POLICY, input, 'stored consent policy') as ConsentPolicy;
}
