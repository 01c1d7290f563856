/**
 * `--roles FILE`: the deployment's role table, and its role mapping, read from a JSON file. One
 * reader for every command that takes it (`serve`, `token create`, and the commands that decide
 * under consent: `access`, `infer`, `train`, `consent check`).
 * @module
 */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../core/errors.js';
import { parseRoleConfig, type RoleConfig } from '../core/role-codings.js';
import { DEFAULT_ROLES } from '../core/vocabulary.js';
import { inCwd, type Io } from './output.js';

/**
 * Reads and validates a role table file (see {@link parseRoleConfig} for its two forms); without a
 * file, the default role table and no role mapping.
 * @throws {ValidationError} FILE_UNREADABLE; VALIDATION_FAILED (not JSON, or an invalid table or mapping)
 */
export function loadRoleConfig(io: Io, file: string | undefined): RoleConfig {
  if (file === undefined) return { roles: DEFAULT_ROLES };
  let text: string;
  try {
    text = readFileSync(inCwd(io, file), 'utf8');
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read roles file ${file}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `roles file ${file} is not valid JSON`, { cause: err });
  }
  return parseRoleConfig(json, `roles file ${file}`);
}

/** The {@link GovernanceOptions} a role table file gives (nothing without a file). */
export function governanceRoleOptions(io: Io, file: string | undefined): { roles?: RoleConfig['roles']; roleCodings?: NonNullable<RoleConfig['roleCodings']> } {
  if (file === undefined) return {};
  const c = loadRoleConfig(io, file);
  return { roles: c.roles, ...(c.roleCodings ? { roleCodings: c.roleCodings } : {}) };
}
