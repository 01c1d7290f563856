/**
 * The deployment's role configuration: the role table (role → permissions) and the role mapping
 * (role → the FHIR codings the role is known by), as a role table file gives them. Pure: the CLI
 * reads the file, this validates what it holds.
 *
 * A recorded decision carries the actor's Custos role (`urn:custos:role|dermatologist`, from the
 * credential). An imported FHIR Consent names actor roles as FHIR codings (v3 RoleCode, v3
 * ParticipationType, SNOMED CT...). Codings of different systems never match, so without a mapping
 * a permit naming a FHIR role can never be satisfied by a recorded access (docs/consent.md, "Roles
 * and FHIR role codings"). There is no default mapping: which FHIR code a hospital's role
 * corresponds to is the hospital's decision, and a mapping invented here would grant what a
 * patient's consent gave to someone else.
 * @module
 */
import { ValidationError, type ValidationIssue } from './errors.js';
import { CUSTOS_ROLE_SYSTEM, isCodingString } from './consent/request.js';
import { DEFAULT_ROLES, PERMISSIONS, type RoleTable } from './vocabulary.js';

/** The role mapping: role code → the codings (`SYSTEM|CODE`) the role is also known by. */
export type RoleCodings = Readonly<Record<string, readonly string[]>>;

/** At most this many codings per role. */
export const MAX_ROLE_CODINGS = 64;

/** A deployment's role configuration, as {@link parseRoleConfig} gives it. */
export interface RoleConfig {
  readonly roles: RoleTable;
  /** Absent: no mapping (roles are known by their Custos role code only). */
  readonly roleCodings?: RoleCodings;
}

// Role names as the authenticator takes them (server/auth.ts): a code.
const ROLE_NAME_RE = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function refuse(source: string, issues: ValidationIssue[]): never {
  throw new ValidationError('VALIDATION_FAILED', `${source}: ${issues[0]!.path}: ${issues[0]!.message}`, { issues });
}

/**
 * Validates a role mapping against the role table's roles and gives it as a map whose lists are
 * frozen (a decision passes them as they are, without copying). Each coding must be `SYSTEM|CODE`
 * (core's CODING schema, with a system): a bare code would be a Custos role code, and so would
 * any coding of `urn:custos:role` (mapping a role to another Custos role would give it that role's
 * consents); neither is allowed. A coding may be listed for several roles, not twice for one.
 * @throws {ValidationError} VALIDATION_FAILED, naming the role and the coding
 */
export function compileRoleCodings(roleCodings: unknown, roles: Iterable<string>, source = 'role table', prefix = 'roleCodings'): ReadonlyMap<string, readonly string[]> {
  const known = new Set(roles);
  const out = new Map<string, readonly string[]>();
  if (roleCodings === undefined) return out;
  if (!isObject(roleCodings)) refuse(source, [{ path: prefix, message: 'expected an object: {"role": ["SYSTEM|CODE", ...]}' }]);
  for (const [role, list] of Object.entries(roleCodings)) {
    const path = `${prefix}.${role}`;
    if (!known.has(role)) refuse(source, [{ path, message: `${JSON.stringify(role.slice(0, 64))} is not a role of the role table` }]);
    if (!Array.isArray(list) || list.length === 0) refuse(source, [{ path, message: `role ${role}: expected a non-empty list of codings SYSTEM|CODE` }]);
    if (list.length > MAX_ROLE_CODINGS) refuse(source, [{ path, message: `role ${role}: at most ${MAX_ROLE_CODINGS} codings` }]);
    const seen = new Set<string>();
    for (const [i, c] of list.entries()) {
      const at = `${path}.${i}`;
      const shown = typeof c === 'string' ? JSON.stringify(c.slice(0, 300)) : typeof c;
      if (typeof c !== 'string' || !isCodingString(c) || !c.includes('|')) refuse(source, [{ path: at, message: `role ${role}: ${shown} is not a coding SYSTEM|CODE (an absolute URI, then a code)` }]);
      if (c.startsWith(`${CUSTOS_ROLE_SYSTEM}|`)) refuse(source, [{ path: at, message: `role ${role}: ${shown} is a Custos role; a role may be mapped to codings of other systems only` }]);
      if (seen.has(c)) refuse(source, [{ path: at, message: `role ${role}: ${shown} is listed twice` }]);
      seen.add(c);
    }
    out.set(role, Object.freeze([...(list as string[])]));
  }
  return out;
}

function checkRoleTable(table: Record<string, unknown>, source: string, prefix: string): RoleTable {
  const known: ReadonlySet<string> = new Set(PERMISSIONS);
  for (const [role, perms] of Object.entries(table)) {
    const path = prefix === '' ? role : `${prefix}.${role}`;
    if (!ROLE_NAME_RE.test(role)) refuse(source, [{ path, message: `${JSON.stringify(role.slice(0, 64))} is not a role code (a letter, then letters, digits, _ . : -)` }]);
    if (!Array.isArray(perms) || !perms.every((x) => typeof x === 'string' && known.has(x))) {
      refuse(source, [{ path, message: `role ${role}: expected a list of permissions (${PERMISSIONS.join(', ')})` }]);
    }
  }
  return table as RoleTable;
}

/**
 * Reads a role table file's JSON. Two forms:
 * - plain (as before): `{"role": ["permission", ...], ...}`;
 * - with a role mapping: `{"roles": {"role": ["permission", ...]}, "roleCodings": {"role":
 *   ["SYSTEM|CODE", ...]}}`. `roles` may be left out (the default role table); no other key is
 *   allowed.
 *
 * The second form is recognised by a `roles` or `roleCodings` key holding an object (in the plain
 * form every value is a list).
 * @throws {ValidationError} VALIDATION_FAILED, naming the role, permission or coding
 */
export function parseRoleConfig(json: unknown, source = 'role table'): RoleConfig {
  if (!isObject(json)) refuse(source, [{ path: '$', message: 'expected an object: {"role": ["permission", ...]} or {"roles": {...}, "roleCodings": {...}}' }]);
  if (!isObject(json['roles']) && !isObject(json['roleCodings'])) return { roles: checkRoleTable(json, source, '') };
  for (const key of Object.keys(json)) {
    if (key !== 'roles' && key !== 'roleCodings') refuse(source, [{ path: key, message: `unknown key ${JSON.stringify(key.slice(0, 64))}: expected roles and roleCodings` }]);
  }
  if (json['roles'] !== undefined && !isObject(json['roles'])) refuse(source, [{ path: 'roles', message: 'expected an object: {"role": ["permission", ...]}' }]);
  const roles = json['roles'] === undefined ? DEFAULT_ROLES : checkRoleTable(json['roles'] as Record<string, unknown>, source, 'roles');
  if (json['roleCodings'] === undefined) return { roles };
  const compiled = compileRoleCodings(json['roleCodings'], Object.keys(roles), source);
  return { roles, roleCodings: Object.freeze(Object.fromEntries(compiled)) };
}
