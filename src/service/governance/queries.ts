/**
 * Read-only questions about consent: what a request would get now (nothing recorded), and a
 * policy's version history, each version checked against the log.
 * @module
 */
import type * as v from 'valibot';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { sha256, toHex } from '../../core/hash.js';
import { POLICY_ID, parseStoredPolicy, type ConsentPolicy } from '../../core/consent/policy.js';
import { evaluateConsent, type Decision } from '../../core/consent/evaluate.js';
import { parseWith } from '../../core/schema/parse.js';
import { parseLoggedEvent, recordField } from '../../core/events.js';
import { CONSENT_CHECK } from '../requests.js';
import { CONSENT_CHANGES } from './policy-heads.js';
import type { GovernanceState } from './state.js';

/** One version of a policy as {@link showConsent} lists it. */
export interface PolicyVersion {
  version: number;
  hash: string;
  index: number;
  documentOk: boolean;
  policy: ConsentPolicy | undefined;
  type: string;
  time: string;
}

/** A consent check's request: purpose and role (CODE or SYSTEM|CODE), and the optional attributes. */
export type ConsentCheckRequest = v.InferInput<typeof CONSENT_CHECK>;

/**
 * Decides a request now, without recording anything: what would happen, and why.
 * The answer is the one a recorded operation would get at this moment. A bare purpose or role
 * (no `SYSTEM|`) must be in the deployment's vocabularies, as before, and a bare role is decided
 * with the codings the role mapping gives it; a coding with a system is matched against the
 * policy's codings as given.
 */
export async function checkConsent(s: GovernanceState, policyId: string, request: ConsentCheckRequest): Promise<Decision> {
  const id = parseWith(POLICY_ID, policyId, 'policy id');
  const req = parseWith(CONSENT_CHECK, request, 'consent request');
  if (!req.purpose.includes('|')) s.checkCodes({ purpose: req.purpose });
  if (!req.role.includes('|') && !s.vocab.roles.has(req.role)) {
    throw new ValidationError('VALIDATION_FAILED', 'role: unknown role (not in the role table)', { issues: [{ path: 'role', message: 'unknown role' }] });
  }
  // A bare role is a Custos role: the codings the deployment maps it to apply, as they do to a
  // recorded decision. A role given as SYSTEM|CODE is decided as given.
  const roleCodings = req.role.includes('|') ? undefined : s.roleCodingsOf(req.role);
  return evaluateConsent(await s.heads.preload(id, true), roleCodings === undefined ? req : { ...req, roleCodings }, s.clock.now());
}

/** A policy's versions in order, each with its document, its check against the log, and its event. */
export async function showConsent(s: GovernanceState, policyId: string): Promise<{ policyId: string; versions: PolicyVersion[] }> {
  const id = parseWith(POLICY_ID, policyId, 'policy id');
  const head = await s.heads.fresh(id);
  if (!head) throw new NotFoundError('POLICY_NOT_FOUND', `no policy ${id}`);
  const out: PolicyVersion[] = [];
  // Walk back from the head through the version chain; each version's event is found by index.
  let hash: string | null = head.hash;
  let index = head.index;
  const seen = new Set<string>();
  while (hash && !seen.has(hash)) {
    seen.add(hash);
    const stored = await s.log.sidecar.getDocument(hash);
    const ok = stored !== undefined && toHex(sha256(stored.bytes)) === hash;
    let policy: ConsentPolicy | undefined;
    try {
      policy = stored ? parseStoredPolicy(JSON.parse(stored.bytes.toString('utf8'))) : undefined;
    } catch {
      policy = undefined;
    }
    const entry = await s.log.reader.getEntry(index);
    // The head came from a verified consent event, so the entry parses and carries its version.
    const e = JSON.parse(entry.bytes.toString('utf8')) as { type: string; time: string; payload: { version: number } };
    out.push({ version: e.payload.version, hash, index, documentOk: ok, policy, type: e.type, time: e.time });
    hash = policy?.previous ?? null;
    if (hash) index = await findPolicyEvent(s, id, hash, index);
  }
  return { policyId: id, versions: out.reverse() };
}

/** The index of the consent event that committed version `hash` of a policy, searching back from `before`. */
export async function findPolicyEvent(s: GovernanceState, policyId: string, hash: string, before: number): Promise<number> {
  for await (const page of s.log.reader.entryPagesDescending(0, before)) {
    for (const e of page) {
      const text = e.bytes.toString('utf8');
      if (!text.includes(hash)) continue;
      const p = parseLoggedEvent(text);
      if (!p) continue;
      const isChange = CONSENT_CHANGES.has(p.type);
      if (isChange && p.payload['policyId'] === policyId && recordField(p.payload, 'documents')?.['policy'] === hash) return e.index;
    }
  }
  throw new NotFoundError('ENTRY_NOT_FOUND', `no event commits version ${hash} of ${policyId}`);
}
