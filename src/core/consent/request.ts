/**
 * The consent request model: what is asked, as codings (`SYSTEM|CODE`, or a bare code that means
 * what it meant before codings: a code of the attribute's default system).
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../errors.js';
import { TIME } from '../schema/parse.js';

/** HL7 v3 ActReason: the purposes of use (PurposeOfUse), the default system of `purpose`. */
export const V3_ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
/** The Custos role codes (the deployment's role table), the default system of `role`. */
export const CUSTOS_ROLE_SYSTEM = 'urn:custos:role';
/** FHIR consent actions (access, collect, use, disclose, correct), the default system of `action`. */
export const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
/** FHIR resource types, the default system of `class`. */
export const FHIR_RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
/** HL7 v3 ActCode (ETH, HIV, PSY, SUD...), the default system of `securityLabel`. */
export const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** The attributes of a request that carry codings. */
export type CodedAttribute = 'purpose' | 'role' | 'action' | 'class' | 'code' | 'securityLabel';

/**
 * The default system of each coded attribute. `code` has none: the code of the data means nothing
 * without its system (LOINC, SNOMED CT...), so a bare one is refused.
 */
export const DEFAULT_SYSTEMS: { readonly [A in CodedAttribute]: string | undefined } = Object.freeze({
  purpose: V3_ACT_REASON,
  role: CUSTOS_ROLE_SYSTEM,
  action: CONSENT_ACTION,
  class: FHIR_RESOURCE_TYPES,
  code: undefined,
  securityLabel: V3_ACT_CODE,
});

// A FHIR code: no leading or trailing whitespace, single spaces inside, at most 64 characters.
const FHIR_CODE_RE = /^[^\s|]+( [^\s|]+)*$/;
// A bare code: a FHIR code without spaces (a bare code is also a command-line word).
const BARE_CODE_RE = /^[^\s|\u0000-\u001f\u007f-\u009f]{1,64}$/;
// An absolute URI without whitespace or '|' (urn:oid:..., http://...), at most 256 characters.
const SYSTEM_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s|\u0000-\u001f\u007f-\u009f]+$/;

/** True if `s` is a valid coding string: `SYSTEM|CODE`, or a bare code. */
export function isCodingString(s: string): boolean {
  const bar = s.indexOf('|');
  if (bar < 0) return BARE_CODE_RE.test(s);
  const system = s.slice(0, bar);
  const code = s.slice(bar + 1);
  return system.length <= 256 && SYSTEM_RE.test(system) && code.length >= 1 && code.length <= 64 && FHIR_CODE_RE.test(code) && !/[\u0000-\u001f\u007f-\u009f]/.test(code);
}

/**
 * A coding as one string: `SYSTEM|CODE` (system an absolute URI without spaces, at most 256
 * characters; code a FHIR code, at most 64), or a bare code (no spaces, at most 64).
 */
export const CODING = v.pipe(v.string(), v.check(isCodingString, 'expected a coding SYSTEM|CODE (an absolute URI, then a code) or a bare code'));

/** A coding with a system: what {@link parseCoding} returns. */
export interface Coding {
  readonly system: string;
  readonly code: string;
}

/**
 * Splits a coding string and gives a bare code its attribute's default system.
 * @throws {ValidationError} VALIDATION_FAILED: not a coding, or a bare `code` (it has no default system)
 */
export function parseCoding(value: string, attribute: CodedAttribute): Coding {
  if (!isCodingString(value)) {
    throw new ValidationError('VALIDATION_FAILED', `invalid ${attribute}: expected SYSTEM|CODE or a bare code`, { issues: [{ path: attribute, message: 'expected SYSTEM|CODE or a bare code' }] });
  }
  const bar = value.indexOf('|');
  if (bar >= 0) return { system: value.slice(0, bar), code: value.slice(bar + 1) };
  const system = DEFAULT_SYSTEMS[attribute];
  if (system === undefined) {
    throw new ValidationError('VALIDATION_FAILED', `invalid ${attribute}: a bare code has no system here; write SYSTEM|CODE`, { issues: [{ path: attribute, message: 'needs SYSTEM|CODE' }] });
  }
  return { system, code: value };
}

/**
 * The normalised key of a coding string (`SYSTEM|CODE`, bare codes given the default system; a bare
 * code without a default keeps an empty system, which matches nothing). No validation: the string
 * was validated where it entered.
 */
export function codingKey(value: string, attribute: CodedAttribute): string {
  if (value.includes('|')) return value;
  return `${DEFAULT_SYSTEMS[attribute] ?? ''}|${value}`;
}

/** The system part of a normalised coding key. */
export function systemOfKey(key: string): string {
  return key.slice(0, key.indexOf('|'));
}

/**
 * What is asked. Every attribute but `purpose` and `role` is optional; an attribute the request
 * does not state cannot satisfy a provision that constrains it (docs/consent.md: fail closed).
 */
export interface ConsentRequest {
  /** 'CODE' or 'SYSTEM|CODE'; bare = HL7 v3 ActReason. */
  readonly purpose: string;
  /** 'CODE' or 'SYSTEM|CODE'; bare = a Custos role code. */
  readonly role: string;
  /**
   * The other codings (`SYSTEM|CODE`) the actor's role is known by: the deployment's role mapping
   * (docs/consent.md, "Roles and FHIR role codings"). A role constraint matches when the role or
   * any of these matches. Set by the service from its configuration, never by a caller:
   * {@link CONSENT_REQUEST} refuses it.
   */
  readonly roleCodings?: readonly string[];
  /** The actor, e.g. 'Practitioner/f204', 'Organization/f001'. */
  readonly actorReference?: string;
  /** Bare = FHIR consentaction (access, collect, use, disclose, correct). */
  readonly action?: string;
  /** The class or resource type of the data; bare = FHIR resource types. */
  readonly class?: string;
  /** The code of the data, SYSTEM|CODE (e.g. 'http://loinc.org|34133-9'). */
  readonly code?: string;
  /** The security labels of the data; bare = v3 ActCode (ETH, HIV, PSY, SUD...); absent = none. */
  readonly securityLabels?: readonly string[];
  /** The time of the data, RFC 3339. */
  readonly dataTime?: string;
}

/** A FHIR-style literal reference: `Type/id` (or an absolute URL), no spaces, at most 256. */
export const ACTOR_REFERENCE = v.pipe(
  v.string(),
  v.maxLength(256),
  v.regex(/^(?:[A-Z][A-Za-z]{1,63}\/[A-Za-z0-9\-.]{1,64}|[A-Za-z][A-Za-z0-9+.-]*:[^\s|\u0000-\u001f\u007f-\u009f]+)$/, 'expected a reference such as Practitioner/f204'),
);

/**
 * The entry that refuses `roleCodings` in what a caller sends: the codings a role is known by come
 * from the deployment's configuration, as the role itself comes from the credential.
 */
export const NO_ROLE_CODINGS = v.optional(v.never("roleCodings cannot be given: the codings a role is known by come from the deployment's role table (roleCodings)"));

/**
 * The schema of a {@link ConsentRequest} as a caller sends it (times normalised to UTC
 * milliseconds): `roleCodings` is refused.
 */
export const CONSENT_REQUEST = v.object({
  purpose: CODING,
  role: CODING,
  roleCodings: NO_ROLE_CODINGS,
  actorReference: v.optional(ACTOR_REFERENCE),
  action: v.optional(CODING),
  class: v.optional(CODING),
  code: v.optional(v.pipe(CODING, v.includes('|', 'the code of the data needs its system: SYSTEM|CODE'))),
  securityLabels: v.optional(v.pipe(v.array(CODING), v.maxLength(64))),
  dataTime: v.optional(TIME),
});
