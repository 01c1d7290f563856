/**
 * FHIR Consent (R4 and R5) in and out: the compiler from a Consent resource to the core policy
 * model, and the R4 Consent form of a native policy.
 *
 * The compiler enforces what it can with certainty and refuses the rest (CONSENT_UNENFORCEABLE,
 * naming each element and why): a consent engine that ignores a restriction permits what the
 * patient forbade. docs/consent.md has the conformance table and how each HL7 example is handled.
 * @module
 */
import { findInputProblem } from '../core/schema/parse.js';
import { MAX_PROVISION_DEPTH, type ConsentPolicy, type Provision, type ProvisionActor } from '../core/consent/policy.js';
import { ACTOR_REFERENCE, CONSENT_ACTION, CUSTOS_ROLE_SYSTEM, DEFAULT_SYSTEMS, FHIR_RESOURCE_TYPES, isCodingString, V3_ACT_CODE, V3_ACT_REASON, type CodedAttribute } from '../core/consent/request.js';
import { ValidationError, type ValidationIssue } from '../core/errors.js';
import * as v from 'valibot';
import { detectFhirVersion, validateFhirResource, type FhirVersion } from './validate.js';

export type { FhirVersion } from './validate.js';

/** A FHIR Consent compiled into the core policy model. */
export interface CompiledFhirConsent {
  readonly fhirVersion: FhirVersion;
  /** Consent.id. */
  readonly resourceId: string | undefined;
  /** 'system|value' of the first identifier: the versioning key. */
  readonly identifier: string | undefined;
  /** R4 Consent.patient / R5 Consent.subject reference, e.g. 'Patient/f001' (a salted commitment on the log; never logged). */
  readonly patient: string;
  readonly status: string;
  /** status inactive | rejected | entered-in-error (R5 also not-done): the consent is withdrawn. */
  readonly revokes: boolean;
  /** Validity of the consent itself, RFC 3339 UTC with milliseconds (R5 Consent.period; R4 has none). */
  readonly period: { readonly start?: string; readonly end?: string };
  /** The compiled root, deciding with FHIR element paths. */
  readonly provision: Provision;
}

/**
 * The modifier extension by which Custos writes, in R4, a provision on actor roles alone (R4
 * requires a reference on every actor): `valueCoding` is one role; several extensions are
 * alternatives. A modifier, so that a reader that does not know it must refuse the provision
 * rather than read it as applying to every actor.
 */
export const CUSTOS_ACTOR_ROLE_EXTENSION = 'urn:custos:fhir:extension:actor-role';

const V3_PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';

// The v3 ParticipationType roles that name the party the request comes from (who receives the
// data). Others (CST custodian, AUT author, INF informant...) describe where the data comes from,
// which a request does not carry: a provision on them cannot be enforced.
const RECIPIENT_ROLES = new Set(['PRCP', 'IRCP']);

// An actor reference to the patient or to a person related to the patient (relative or absolute,
// with or without a version): it would be kept in the policy version document, which decisions
// need and erasure never deletes, so it would outlive the subject's erasure.
const PATIENT_LINKED_ACTOR_RE = /(?:^|\/)(?:Patient|RelatedPerson)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

// policyRule codes Custos knows (v3 ActCode). They do not change a decision: Custos's base outside
// the root provision is deny either way (docs/consent.md explains why, with the HL7 examples).
const KNOWN_POLICY_RULES = new Set([`${V3_ACT_CODE}|OPTIN`, `${V3_ACT_CODE}|OPTOUT`]);
const REVOKING = new Set(['inactive', 'rejected', 'entered-in-error', 'not-done']);

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

// --- bytes to JSON ------------------------------------------------------------------------------

/** The first key that occurs twice in one object of valid JSON `text`, or undefined. */
export function findDuplicateKey(text: string): string | undefined {
  const frames: { keys: Set<string> | undefined; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = frames[frames.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (ch === '{') frames.push({ keys: new Set(), expectKey: true });
    else if (ch === '[') frames.push({ keys: undefined, expectKey: false });
    else if (ch === '}' || ch === ']') frames.pop();
    else if (ch === ',') {
      const top = frames[frames.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
  return undefined;
}

function parseJsonBytes(bytes: Uint8Array): unknown {
  const invalid = (message: string): never => {
    throw new ValidationError('VALIDATION_FAILED', `invalid FHIR JSON: ${message}`, { issues: [{ path: '$', message }] });
  };
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) invalid('starts with a byte order mark');
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    invalid('not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    invalid('not JSON');
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) invalid(`the key ${JSON.stringify(dup)} occurs twice in one object`);
  const problem = findInputProblem(value);
  if (problem) invalid(`${problem.path}: ${problem.message}`);
  return value;
}

// --- FHIR times to RFC 3339 -----------------------------------------------------------------------

/**
 * A FHIR date or dateTime as an RFC 3339 UTC time with milliseconds. A partial date stands for its
 * whole span (a year, a month, a day, read in UTC): its first instant as a start, its last as an end.
 */
export function fhirTimeToUtc(value: string, edge: 'start' | 'end'): string | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(T.+)?)?)?$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, rest] = m;
  if (rest !== undefined) {
    const t = Date.parse(`${y}-${mo}-${d}${rest}`);
    return Number.isFinite(t) && /(Z|[+-]\d{2}:\d{2})$/.test(rest) ? new Date(t).toISOString() : undefined;
  }
  const year = Number(y);
  const month = mo === undefined ? (edge === 'start' ? 0 : 11) : Number(mo) - 1;
  const date = new Date(0);
  if (d !== undefined) {
    date.setUTCFullYear(year, month, Number(d));
    if (date.getUTCMonth() !== month) return undefined;
  } else date.setUTCFullYear(year, edge === 'start' ? month : month + 1, edge === 'start' ? 1 : 0);
  date.setUTCHours(edge === 'start' ? 0 : 23, edge === 'start' ? 0 : 59, edge === 'start' ? 0 : 59, edge === 'start' ? 0 : 999);
  return date.toISOString();
}

// --- the compiler ---------------------------------------------------------------------------------

class Compiler {
  readonly refusals: ValidationIssue[] = [];
  constructor(readonly version: FhirVersion) {}

  refuse(path: string, message: string): void {
    this.refusals.push({ path, message });
  }

  coding(c: unknown, path: string, attribute: CodedAttribute): string | undefined {
    if (!isObject(c) || typeof c.system !== 'string' || typeof c.code !== 'string') {
      this.refuse(path, 'a coding without a system and a code cannot be compared with a request');
      return undefined;
    }
    const s = `${c.system}|${c.code}`;
    if (!isCodingString(s)) {
      this.refuse(path, 'a coding Custos cannot represent (system over 256 or code over 64 characters, or spaces)');
      return undefined;
    }
    void attribute;
    return s;
  }

  codings(list: unknown, path: string, attribute: CodedAttribute): string[] | undefined {
    if (list === undefined) return undefined;
    const out: string[] = [];
    (list as unknown[]).forEach((c, i) => {
      const s = this.coding(c, `${path}[${i}]`, attribute);
      if (s !== undefined) out.push(s);
    });
    return out;
  }

  concepts(list: unknown, path: string, attribute: CodedAttribute): string[] | undefined {
    if (list === undefined) return undefined;
    const out: string[] = [];
    (list as unknown[]).forEach((cc, i) => {
      const codings = isObject(cc) ? cc.coding : undefined;
      if (!Array.isArray(codings) || codings.length === 0) {
        this.refuse(`${path}[${i}]`, 'a concept given as text only cannot be compared with a request');
        return;
      }
      codings.forEach((c, j) => {
        const s = this.coding(c, `${path}[${i}].coding[${j}]`, attribute);
        if (s !== undefined) out.push(s);
      });
    });
    return out;
  }

  period(p: unknown, path: string): { start?: string; end?: string } | undefined {
    if (!isObject(p)) return undefined;
    const out: { start?: string; end?: string } = {};
    for (const edge of ['start', 'end'] as const) {
      const x = p[edge];
      if (x === undefined) continue;
      const t = typeof x === 'string' ? fhirTimeToUtc(x, edge) : undefined;
      if (t === undefined) this.refuse(`${path}.${edge}`, 'a time Custos cannot place (a dateTime with a time needs an offset)');
      else out[edge] = t;
    }
    for (const k of Object.keys(p)) if (k !== 'start' && k !== 'end' && k !== 'id' && k !== 'extension') this.refuse(`${path}.${k}`, 'an element of the period Custos does not read');
    return out;
  }

  actors(list: unknown, path: string): ProvisionActor[] | undefined {
    if (list === undefined) return undefined;
    const out: ProvisionActor[] = [];
    (list as unknown[]).forEach((a, i) => {
      const at = `${path}[${i}]`;
      if (!isObject(a)) return;
      for (const k of Object.keys(a)) {
        if (k === 'modifierExtension') this.refuse(`${at}.modifierExtension`, 'a modifier extension Custos does not know changes the meaning of the actor');
        else if (k !== 'role' && k !== 'reference' && k !== 'id' && k !== 'extension') this.refuse(`${at}.${k}`, 'an element of the actor Custos does not read');
      }
      let reference: string | undefined;
      if (a.reference !== undefined) {
        const r = isObject(a.reference) ? a.reference.reference : undefined;
        if (typeof r !== 'string' || !v.is(ACTOR_REFERENCE, r)) {
          this.refuse(`${at}.reference`, 'an actor without a literal reference (Type/id) cannot be compared with a request');
          return;
        }
        if (PATIENT_LINKED_ACTOR_RE.test(r)) {
          this.refuse(
            `${at}.reference`,
            'an actor that is the patient or a person related to the patient would be kept in the policy document, which the subject’s erasure cannot delete; name the actor by its role',
          );
          return;
        }
        reference = r;
      }
      let roles: (string | undefined)[] = [undefined];
      if (a.role !== undefined) {
        const codings = this.concepts([a.role], `${at}.role`, 'role')?.map((s) => {
          const bar = s.indexOf('|');
          if (s.slice(0, bar) === V3_PARTICIPATION_TYPE && !RECIPIENT_ROLES.has(s.slice(bar + 1))) {
            this.refuse(
              `${at}.role`,
              `role ${s.slice(bar + 1)} describes where the data comes from (e.g. its custodian or author), which a request does not carry; only the recipient roles PRCP and IRCP can be enforced`,
            );
          }
          return s;
        });
        if (!codings || codings.length === 0) return;
        roles = codings;
      }
      for (const role of roles) out.push({ ...(role !== undefined ? { role } : {}), ...(reference !== undefined ? { reference } : {}) });
    });
    return out;
  }

  /** Compiles one provision element into a core provision of effect `type`. */
  provision(node: unknown, path: string, type: 'permit' | 'deny', depth: number): Provision {
    const out: { -readonly [K in keyof Provision]: Provision[K] } = { type, path };
    if (!isObject(node)) return out;
    if (depth > MAX_PROVISION_DEPTH - 1) {
      this.refuse(path, `provisions nested deeper than ${MAX_PROVISION_DEPTH - 1}`);
      return out;
    }
    for (const key of Object.keys(node)) {
      const at = `${path}.${key}`;
      const value = node[key];
      switch (key) {
        case 'id':
        case 'extension':
        case 'type':
        case 'provision':
          break;
        case 'modifierExtension':
          (value as unknown[]).forEach((x, i) => {
            if (isObject(x) && x.url === CUSTOS_ACTOR_ROLE_EXTENSION && x.valueCoding !== undefined) {
              const role = this.coding(x.valueCoding, `${at}[${i}].valueCoding`, 'role');
              if (role !== undefined) out.roles = [...(out.roles ?? []), role];
            } else this.refuse(`${at}[${i}]`, 'a modifier extension Custos does not know changes the meaning of the provision');
          });
          break;
        case 'period':
          out.period = this.period(value, at);
          break;
        case 'dataPeriod':
          out.dataPeriod = this.period(value, at);
          break;
        case 'actor':
          out.actors = this.actors(value, at);
          break;
        case 'action':
          out.actions = this.concepts(value, at, 'action');
          break;
        case 'securityLabel':
          out.securityLabels = this.codings(value, at, 'securityLabel');
          break;
        case 'purpose':
          out.purposes = this.codings(value, at, 'purpose');
          break;
        case 'class':
          if (this.version === 'R4') out.classes = this.codings(value, at, 'class');
          else this.refuse(at, 'not an R5 element');
          break;
        case 'resourceType':
          if (this.version === 'R5') out.classes = [...(out.classes ?? []), ...(this.codings(value, at, 'class') ?? [])];
          else this.refuse(at, 'not an R4 element');
          break;
        case 'documentType':
          if (this.version === 'R5') out.codes = [...(out.codes ?? []), ...(this.codings(value, at, 'code') ?? [])];
          else this.refuse(at, 'not an R4 element');
          break;
        case 'code':
          out.codes = [...(out.codes ?? []), ...(this.concepts(value, at, 'code') ?? [])];
          break;
        case 'data':
          this.refuse(at, 'references resources Custos cannot see: whether a request touches them cannot be decided');
          break;
        case 'expression':
          this.refuse(at, 'a computable expression Custos does not evaluate');
          break;
        default:
          this.refuse(at, 'an element Custos does not enforce');
      }
    }
    for (const k of ['purposes', 'actors', 'actions', 'securityLabels', 'classes', 'codes'] as const) if (out[k] !== undefined && out[k]!.length === 0) delete out[k];
    if (out.period && Object.keys(out.period).length === 0) delete out.period;
    if (out.dataPeriod && Object.keys(out.dataPeriod).length === 0) delete out.dataPeriod;
    const children = node.provision;
    if (Array.isArray(children) && children.length > 0) {
      out.provisions = children.map((child, i) => {
        const cp = `${path}.provision[${i}]`;
        let t: 'permit' | 'deny';
        if (this.version === 'R5') t = type === 'permit' ? 'deny' : 'permit';
        else {
          const ct = isObject(child) ? child.type : undefined;
          if (ct !== 'permit' && ct !== 'deny') {
            this.refuse(`${cp}.type`, ct === undefined ? 'a nested provision without a type: it has no decision' : 'not permit or deny');
            t = 'deny';
          } else t = ct;
        }
        return this.provision(child, cp, t, depth + 1);
      });
    }
    return out;
  }
}

function firstIdentifier(resource: Record<string, unknown>): string | undefined {
  const ids = resource.identifier;
  const first = Array.isArray(ids) ? ids[0] : undefined;
  if (!isObject(first) || typeof first.value !== 'string') return undefined;
  return typeof first.system === 'string' ? `${first.system}|${first.value}` : first.value;
}

const R4_TOP = new Set([
  'resourceType',
  'id',
  'meta',
  'language',
  'text',
  'contained',
  'extension',
  'identifier',
  'status',
  'scope',
  'category',
  'patient',
  'dateTime',
  'performer',
  'organization',
  'sourceAttachment',
  'sourceReference',
  'verification',
  'policyRule',
  'policy',
  'provision',
  'modifierExtension',
  'implicitRules',
]);
const R5_TOP = new Set([
  'resourceType',
  'id',
  'meta',
  'language',
  'text',
  'contained',
  'extension',
  'identifier',
  'status',
  'category',
  'subject',
  'date',
  'period',
  'grantor',
  'grantee',
  'manager',
  'controller',
  'sourceAttachment',
  'sourceReference',
  'regulatoryBasis',
  'policyBasis',
  'policyText',
  'verification',
  'decision',
  'provision',
  'modifierExtension',
  'implicitRules',
]);

/**
 * Compiles a validated Consent resource. Pure: no I/O.
 * @throws {ValidationError} CONSENT_UNENFORCEABLE, naming each element Custos cannot enforce and why
 */
export function compileFhirConsent(resource: Record<string, unknown>, version: FhirVersion): CompiledFhirConsent {
  const c = new Compiler(version);
  const top = version === 'R4' ? R4_TOP : R5_TOP;
  for (const k of Object.keys(resource)) if (!top.has(k) && !k.startsWith('_')) c.refuse(k, `not an element of an ${version} Consent`);
  if (resource.modifierExtension !== undefined) c.refuse('modifierExtension', 'a modifier extension Custos does not know changes the meaning of the consent');
  if (resource.implicitRules !== undefined) c.refuse('implicitRules', 'rules Custos does not know govern this resource');

  const status = String(resource.status);
  const revokes = REVOKING.has(status);
  if (!revokes && status !== 'active') c.refuse('status', `a ${status} consent is not in force; import it once it is active`);

  const patientRef = version === 'R4' ? resource.patient : resource.subject;
  const patientPath = version === 'R4' ? 'patient' : 'subject';
  const patient = isObject(patientRef) ? patientRef.reference : undefined;
  if (typeof patient !== 'string' || patient.length === 0 || patient.length > 256) c.refuse(patientPath, 'Custos keeps consent per patient: a literal patient reference is required');

  let period: { start?: string; end?: string } = {};
  let root: Provision;
  if (version === 'R4') {
    const scope = isObject(resource.scope) && Array.isArray(resource.scope.coding) ? (resource.scope.coding as unknown[]) : [];
    const scopes = scope.filter(isObject).map((s) => `${String(s.system)}|${String(s.code)}`);
    if (!scopes.some((s) => s === `${CONSENT_SCOPE}|patient-privacy` || s === `${CONSENT_SCOPE}|research`)) {
      c.refuse('scope', 'only privacy (patient-privacy) and research consents govern the use of data; this scope is another kind of consent');
    }
    if (resource.policy !== undefined) c.refuse('policy', 'a policy (authority, uri) Custos does not know: its terms cannot be enforced');
    if (resource.policyRule !== undefined) {
      const rules = isObject(resource.policyRule) && Array.isArray(resource.policyRule.coding) ? (resource.policyRule.coding as unknown[]) : [];
      if (rules.length === 0) c.refuse('policyRule', 'a policy rule given as text only');
      rules.forEach((r, i) => {
        const s = isObject(r) ? `${String(r.system)}|${String(r.code)}` : '';
        if (!KNOWN_POLICY_RULES.has(s)) c.refuse(`policyRule.coding[${i}]`, `a policy rule Custos does not know (${s}): its terms cannot be enforced`);
      });
    }
    const p = resource.provision;
    if (!isObject(p)) {
      c.refuse('provision', 'no provision: the consent states no rule');
      root = { type: 'deny', path: 'provision' };
    } else if (p.type === 'permit' || p.type === 'deny') {
      root = c.provision(p, 'provision', p.type, 0);
    } else if (p.type !== undefined) {
      c.refuse('provision.type', 'not permit or deny');
      root = { type: 'deny', path: 'provision' };
    } else if (Array.isArray(p.provision) && p.provision.length > 0) {
      // A root without type that only scopes typed nested provisions: it is read as a deny, so
      // that only its nested permits permit (never more than either reading of the root would),
      // and its own period bounds both the time of the request and the time of the data (the
      // HL7 examples use a root period for both; requiring both only narrows the permits).
      const compiled = c.provision(p, 'provision', 'deny', 0);
      root = compiled.period ? { ...compiled, dataPeriod: compiled.dataPeriod ?? compiled.period } : compiled;
      if (compiled.period && compiled.dataPeriod) c.refuse('provision.period', 'a root without type with both a period and a dataPeriod');
    } else {
      c.refuse(
        'provision.type',
        'the root provision has no type and no typed nested provision, so whether it permits or denies cannot be determined: policyRule does not tell (the HL7 R4 examples use OPTIN for roots meaning permit and deny, and OPTOUT too)',
      );
      if (p.period !== undefined) c.refuse('provision.period', 'a period on a root without type: whether it bounds the rule or the data cannot be told');
      // Compiled only to name every other element Custos cannot enforce.
      c.provision({ ...p, period: undefined }, 'provision', 'deny', 0);
      root = { type: 'deny', path: 'provision' };
    }
  } else {
    if (resource.policyBasis !== undefined) c.refuse('policyBasis', 'a policy basis Custos does not know: its terms cannot be enforced');
    if (resource.regulatoryBasis !== undefined) c.refuse('regulatoryBasis', 'a regulatory basis Custos does not know: the base it sets cannot be enforced');
    if (resource.grantee !== undefined) c.refuse('grantee', 'who the rights are granted to: Custos enforces actors only as provision.actor');
    period = c.period(resource.period, 'period') ?? {};
    const decision = resource.decision;
    if (decision !== 'permit' && decision !== 'deny') {
      c.refuse('decision', decision === undefined ? 'no decision: the base of the consent cannot be determined' : 'not permit or deny');
      root = { type: 'deny', path: 'decision' };
    } else {
      const list = Array.isArray(resource.provision) ? resource.provision : [];
      const exception = decision === 'permit' ? 'deny' : 'permit';
      root = { type: decision, path: 'decision', ...(list.length > 0 ? { provisions: list.map((p, i) => c.provision(p, `provision[${i}]`, exception, 1)) } : {}) };
    }
  }

  // A withdrawal is always safe to record: whatever its provisions say, it denies everything.
  if (revokes) {
    const kept = c.refusals.filter((r) => r.path === patientPath);
    if (kept.length > 0) throw unenforceable(kept);
    root = { type: 'deny', path: version === 'R4' ? 'provision' : 'decision' };
  } else if (c.refusals.length > 0) throw unenforceable(c.refusals);

  return {
    fhirVersion: version,
    resourceId: typeof resource.id === 'string' ? resource.id : undefined,
    identifier: firstIdentifier(resource),
    patient: patient as string,
    status,
    revokes,
    period,
    provision: root,
  };
}

function unenforceable(issues: ValidationIssue[]): ValidationError {
  const first = issues[0]!;
  return new ValidationError('CONSENT_UNENFORCEABLE', `Custos cannot enforce this consent: ${first.path}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`, {
    issues,
  });
}

/**
 * Parses, validates (against the FHIR definitions of its version) and compiles a FHIR Consent.
 * @throws {ValidationError} VALIDATION_FAILED (not UTF-8 JSON, a BOM, a duplicate key), FHIR_INVALID
 *   (not a Consent, or not valid FHIR), CONSENT_UNENFORCEABLE (an element Custos cannot enforce)
 * @example
 * const compiled = importFhirConsent(readFileSync('consent.json'), { fhirVersion: 'R4' });
 */
export function importFhirConsent(bytes: Uint8Array, opts?: { fhirVersion?: FhirVersion }): CompiledFhirConsent {
  const resource = parseJsonBytes(bytes);
  if (!isObject(resource) || resource.resourceType !== 'Consent') {
    throw new ValidationError('FHIR_INVALID', 'not a FHIR Consent: resourceType must be Consent', { issues: [{ path: 'resourceType', message: 'expected Consent' }] });
  }
  const version = opts?.fhirVersion ?? detectFhirVersion(resource);
  validateFhirResource(resource, version);
  return compileFhirConsent(resource, version);
}

// --- native policy to R4 Consent ----------------------------------------------------------------

function codingOf(s: string, attribute: CodedAttribute): { system: string; code: string } {
  const bar = s.indexOf('|');
  if (bar >= 0) return { system: s.slice(0, bar), code: s.slice(bar + 1) };
  return { system: DEFAULT_SYSTEMS[attribute] ?? '', code: s };
}

function laterOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}
function earlierOf(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Date.parse(a) <= Date.parse(b) ? a : b;
}

function toFhirProvision(p: Provision, path: string, period: Provision['period']): Record<string, unknown> {
  const out: Record<string, unknown> = { type: p.type };
  if (period && (period.start !== undefined || period.end !== undefined)) out.period = { ...period };
  if (p.roles) out.modifierExtension = p.roles.map((r) => ({ url: CUSTOS_ACTOR_ROLE_EXTENSION, valueCoding: codingOf(r, 'role') }));
  if (p.actors) {
    out.actor = p.actors.map((a, i) => {
      if (a.role === undefined || a.reference === undefined) {
        throw new ValidationError('CONSENT_UNENFORCEABLE', `${path}.actors.${i}: an R4 actor needs a role and a reference`, {
          issues: [{ path: `${path}.actors.${i}`, message: 'an R4 actor needs a role and a reference' }],
        });
      }
      return { role: { coding: [codingOf(a.role, 'role')] }, reference: { reference: a.reference } };
    });
  }
  if (p.actions) out.action = p.actions.map((a) => ({ coding: [codingOf(a, 'action')] }));
  if (p.securityLabels) out.securityLabel = p.securityLabels.map((l) => codingOf(l, 'securityLabel'));
  if (p.purposes) out.purpose = p.purposes.map((x) => codingOf(x, 'purpose'));
  if (p.classes) out.class = p.classes.map((x) => codingOf(x, 'class'));
  if (p.codes) out.code = p.codes.map((x) => ({ coding: [codingOf(x, 'code')] }));
  if (p.dataPeriod) out.dataPeriod = { ...p.dataPeriod };
  if (p.provisions && p.provisions.length > 0) out.provision = p.provisions.map((c, i) => toFhirProvision(c, `${path}.provisions.${i}`, c.period));
  return out;
}

/**
 * The R4 Consent form of a native policy (it passes `validateFhirResource(…, 'R4')`): status active
 * or inactive (revoked), scope patient-privacy, policyRule OPTIN for a permit root and OPTOUT for a
 * deny root, and the root provision bounded by the policy's validity window.
 * Roles alone are written as the modifier extension {@link CUSTOS_ACTOR_ROLE_EXTENSION}.
 * @throws {ValidationError} CONSENT_UNENFORCEABLE for a provision with no R4 form (an actor without a role or a reference)
 */
export function policyToFhirConsent(policy: ConsentPolicy, opts?: { patientReference?: string }): Record<string, unknown> {
  const root = policy.provision;
  const period = { start: laterOf(policy.period.start, root.period?.start), end: earlierOf(policy.period.end, root.period?.end) };
  const cleanPeriod = Object.fromEntries(Object.entries(period).filter(([, x]) => x !== undefined)) as Provision['period'];
  return {
    resourceType: 'Consent',
    status: policy.revoked ? 'inactive' : 'active',
    scope: { coding: [{ system: CONSENT_SCOPE, code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    ...(opts?.patientReference !== undefined ? { patient: { reference: opts.patientReference } } : {}),
    dateTime: policy.recordedAt,
    policyRule: { coding: [{ system: V3_ACT_CODE, code: root.type === 'permit' ? 'OPTIN' : 'OPTOUT' }] },
    provision: toFhirProvision(root, 'provision', cleanPeriod),
  };
}

/** Default systems, re-exported for the docs and tests. */
export const FHIR_DEFAULT_SYSTEMS = { purpose: V3_ACT_REASON, role: CUSTOS_ROLE_SYSTEM, action: CONSENT_ACTION, class: FHIR_RESOURCE_TYPES, securityLabel: V3_ACT_CODE } as const;
