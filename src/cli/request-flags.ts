/**
 * The command-line form of the consent request model (issue 12): the attributes of a decision beyond
 * purpose and role, as flags. One definition for every command that asks for a decision
 * (`consent check`, `access`, `infer`), so that they take the same flags and pass the same fields;
 * the service validates the values (service/requests.ts, core/consent/request.ts).
 * @module
 */
import type { Command } from 'commander';

/** The flags' values as commander parses them. */
export interface RequestFlagValues {
  readonly actorReference?: string | undefined;
  readonly action?: string | undefined;
  readonly class?: string | undefined;
  readonly code?: string | undefined;
  readonly securityLabel?: readonly string[] | undefined;
  readonly dataTime?: string | undefined;
}

/** The request attributes the flags give, as the service takes them (absent flags are absent). */
export interface RequestFields {
  readonly actorReference?: string;
  readonly action?: string;
  readonly class?: string;
  readonly code?: string;
  readonly securityLabels?: string[];
  readonly dataTime?: string;
}

/**
 * The help of `--roles <file>` (serve, token create, and the commands that decide: access, infer,
 * train, consent check). The file is read by roles-file.ts, when the command runs.
 */
export const ROLES_FILE_HELP =
  'JSON role table: {"role": ["permission", ...]}, or {"roles": {...}, "roleCodings": {"role": ["SYSTEM|CODE", ...]}} (the FHIR codings each role is known by; docs/consent.md)';

const repeat = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Adds `--actor-reference --action --class --code --security-label (repeatable) --data-time` to `cmd`. */
export function requestFlags(cmd: Command): Command {
  return cmd
    .option('--actor-reference <ref>', 'the requesting actor, e.g. Practitioner/123 or Organization/f001 (decides; never logged)')
    .option('--action <coding>', 'the action: CODE (FHIR consentaction, e.g. access) or SYSTEM|CODE')
    .option('--class <coding>', 'the class or resource type of the data: CODE (FHIR resource type) or SYSTEM|CODE')
    .option('--code <coding>', 'the code of the data: SYSTEM|CODE')
    .option('--security-label <coding>', 'a security label of the data: CODE (v3 ActCode, e.g. PSY) or SYSTEM|CODE (repeatable)', repeat)
    .option('--data-time <time>', 'the time of the data (RFC 3339)');
}

/** The request attributes of parsed flags. */
export function requestFields(o: RequestFlagValues): RequestFields {
  return {
    ...(o.actorReference === undefined ? {} : { actorReference: o.actorReference }),
    ...(o.action === undefined ? {} : { action: o.action }),
    ...(o.class === undefined ? {} : { class: o.class }),
    ...(o.code === undefined ? {} : { code: o.code }),
    ...(o.securityLabel === undefined ? {} : { securityLabels: [...o.securityLabel] }),
    ...(o.dataTime === undefined ? {} : { dataTime: o.dataTime }),
  };
}
