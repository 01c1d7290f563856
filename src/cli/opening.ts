/**
 * Opening patient-linked commitments from the command line (`custos receipt --open`, `custos
 * bundle` without --redact): who opens them and for what purpose, checked before anything is read,
 * and the PATIENT_DATA_OPENED event, on the log before any opened value leaves the command.
 * @module
 */
import { ValidationError } from '../core/errors.js';
import { CODE, parseWith } from '../core/schema/parse.js';
import type { Log } from '../log/log.js';
import { AuditTrail } from '../service/audit.js';
import { Governance } from '../service/governance.js';

/** The options of a command that may open commitments. */
export interface OpenerOptions {
  readonly purpose?: string | undefined;
  readonly actor?: string | undefined;
  readonly actorRole?: string | undefined;
}

/** Who opens the commitments, and why. */
export interface Opener {
  readonly purpose: string;
  readonly actor: string;
  readonly actorRole: string;
}

/**
 * The opener `o` names. Called before anything is opened or written.
 * @param otherwise how to do without opening, for the message (e.g. `or --redact to leave the openings out`)
 * @throws {ValidationError} VALIDATION_FAILED (exit 2) unless --purpose, --actor and --actor-role are all given
 */
export function requireOpener(o: OpenerOptions, otherwise: string): Opener {
  if (o.purpose === undefined || o.actor === undefined || o.actorRole === undefined) {
    throw new ValidationError('VALIDATION_FAILED', `opening commitments needs --purpose CODE --actor ID --actor-role ROLE (${otherwise})`);
  }
  return { purpose: o.purpose, actor: o.actor, actorRole: o.actorRole };
}

/** Writes the PATIENT_DATA_OPENED event of the commitments about to be opened. */
export type OpeningAudit = (commitments: readonly string[]) => Promise<void>;

/**
 * The audit of one opening on `log`, by `opener`, of commitments of the inference at `eventIndex`.
 * The purpose is checked against the log's purpose vocabulary now (nothing is written when it is
 * not in it); the returned function appends PATIENT_DATA_OPENED (actor, role, purpose, `route`,
 * the index and the commitments, never their values; the event registry checks the payload) and
 * must be awaited before any opened value leaves the command.
 * @throws {ValidationError} VALIDATION_FAILED for a purpose that is not a code of the vocabulary
 */
export async function openingAudit(log: Log, opener: Opener, route: string, eventIndex: number): Promise<OpeningAudit> {
  const gov = await Governance.open({ log });
  const purpose = parseWith(CODE, opener.purpose, 'purpose');
  if (!gov.vocabulary.purposes.has(purpose)) throw new ValidationError('VALIDATION_FAILED', `unknown purpose ${purpose}`, { issues: [{ path: 'purpose', message: 'not in the purpose vocabulary' }] });
  const trail = new AuditTrail({ log, vocabulary: gov.vocabulary });
  return async (commitments) => {
    await trail.opened({ id: opener.actor, role: opener.actorRole }, { route, permission: 'commitments:open', purpose, eventIndex, commitments });
  };
}
