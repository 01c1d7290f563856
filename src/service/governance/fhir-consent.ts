/**
 * FHIR Consent in and out (issue 12): importing a Consent resource as a policy version, and giving
 * it back byte for byte (or the FHIR form of a native policy).
 *
 * An import compiles the resource (src/fhir/consent.ts: validation against the FHIR definitions,
 * then the provisions Custos enforces; anything it cannot enforce is refused), then writes, in one
 * transaction with its event:
 * - the resource's exact bytes, off-ledger (document kind `fhir-consent`, by their SHA-256);
 * - the policy version document (the canonical ConsentPolicy, with `source: {format, hash}`
 *   naming those bytes and the compiled provision), whose hash goes on the log.
 * The patient reference becomes the policy's salted subject commitment and the resource's
 * identifier (`system|value`) its salted `external_ref` commitment: neither is ever on the log.
 *
 * Versioning, decided at sequencing time against the head (as revocation is):
 * - no policy imported under the identifier (or no identifier): version 1 (CONSENT_CREATED);
 * - a policy imported under the identifier: a new version of it (CONSENT_UPDATED), or, when the
 *   resource's status is inactive, rejected or entered-in-error, a revocation (CONSENT_REVOKED);
 * - the same bytes as the head's: nothing is written, the head is returned (`unchanged: true`);
 * - a revoked policy stays revoked (CONSENT_ALREADY_REVOKED), as with native policies;
 * - a resource for another patient than the policy's (same identifier): CONSENT_PATIENT_MISMATCH,
 *   nothing written. Only imported policies are found by identifier: a native policy created with
 *   the same external reference is never versioned by an import.
 * @module
 */
import { ConflictError, ConsentError, NotFoundError, ValidationError } from '../../core/errors.js';
import { formatEntryTime } from '../../core/entry.js';
import { sha256, toHex } from '../../core/hash.js';
import { POLICY_ID, POLICY_SCHEMA, type ConsentPolicy, type PolicySource } from '../../core/consent/policy.js';
import { parseWith, TIME } from '../../core/schema/parse.js';
import { GOVERNANCE_EVENT as EVENT } from '../../core/events.js';
import { policyIdFromBytes } from '../../core/vocabulary.js';
import { importFhirConsent as compileFhirConsent, policyToFhirConsent, type CompiledFhirConsent } from '../../fhir/consent.js';
import type { FhirVersion } from '../../fhir/validate.js';
import type { AppendResult, Decided, SequencingContext } from '../../log/log.js';
import { ACTOR } from '../requests.js';
import type { Commitment } from './commitments.js';
import { DOC, doc, erasureOfDocument, type BuiltDocument } from './documents.js';
import type { Head } from './policy-heads.js';
import { withPolicyRetry, type Actor, type GovernanceState } from './state.js';
import type { PolicyLookup } from '../../core/consent/evaluate.js';

/** Largest FHIR Consent resource accepted (bytes). */
export const MAX_FHIR_CONSENT_BYTES = 1024 * 1024;

/** What an import did. */
export interface FhirConsentImport {
  readonly policy: ConsentPolicy;
  /** The policy version document's hash (on the log). */
  readonly hash: string;
  /** The SHA-256 of the resource's exact bytes (stored off-ledger, committed by the event). */
  readonly fhirHash: string;
  readonly fhirVersion: FhirVersion;
  /** The event written; undefined when the bytes were already the head's (`unchanged`). */
  readonly event: AppendResult | undefined;
  /** The index of the event that committed the returned version. */
  readonly index: number;
  /** CONSENT_CREATED, CONSENT_UPDATED or CONSENT_REVOKED. */
  readonly type: string;
  /** True when nothing was written: the same bytes are already the policy's current version. */
  readonly unchanged: boolean;
}

/** An import as JSON: the one projection the CLI's `--json` and `POST /fhir/Consent` print, the event as the caller renders it. */
export function fhirConsentImportToJson<E>(r: FhirConsentImport, event: (e: AppendResult) => E) {
  return {
    policyId: r.policy.policyId,
    version: r.policy.version,
    hash: r.hash,
    fhirHash: r.fhirHash,
    fhirVersion: r.fhirVersion,
    revoked: r.policy.revoked,
    unchanged: r.unchanged,
    type: r.unchanged ? null : r.type,
    entry: r.index,
    event: r.event ? event(r.event) : null,
  };
}

/** A policy in FHIR form. */
export interface FhirConsentExport {
  readonly policyId: string;
  readonly version: number;
  /** `stored`: the exact bytes imported; `converted`: the R4 form of a native policy (JSON text). */
  readonly kind: 'stored' | 'converted';
  readonly bytes: Buffer;
  /** The hash of the policy version document the bytes belong to (checked against the log). */
  readonly policyHash: string;
  /** The index of the event that committed that version. */
  readonly index: number;
  /** The commitments the bytes open (the subject, and the identifier if any): a read of them is patient-linked. */
  readonly commitments: readonly string[];
}

const FORMAT: Record<FhirVersion, PolicySource['format']> = { R4: 'fhir-r4', R5: 'fhir-r5' };

// Thrown from a decide step when the bytes are already the head's: nothing is appended.
class Unchanged extends Error {
  constructor(
    readonly policy: ConsentPolicy,
    readonly hash: string,
    readonly index: number,
  ) {
    super('unchanged');
  }
}

// A FHIR date, dateTime or instant as the policy's RFC 3339 UTC time: a partial date (YYYY,
// YYYY-MM, YYYY-MM-DD) is read in UTC, from its first millisecond (start) or to its last (end).
function fhirTime(value: string, edge: 'start' | 'end', path: string): string {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(value);
  if (m) {
    const [y, mo, d] = [Number(m[1]), m[2] === undefined ? undefined : Number(m[2]) - 1, m[3] === undefined ? undefined : Number(m[3])];
    const first = new Date(0);
    first.setUTCFullYear(y, mo ?? 0, d ?? 1);
    if (edge === 'start') return first.toISOString();
    const next = new Date(first.getTime());
    if (d !== undefined) next.setUTCDate(d + 1);
    else if (mo !== undefined) next.setUTCMonth(mo + 1);
    else next.setUTCFullYear(y + 1);
    return new Date(next.getTime() - 1).toISOString();
  }
  return parseWith(TIME, value, path);
}

function compile(bytes: Uint8Array, fhirVersion: FhirVersion | undefined): { compiled: CompiledFhirConsent; period: { start?: string; end?: string } } {
  if (bytes.byteLength > MAX_FHIR_CONSENT_BYTES) {
    throw new ValidationError('VALIDATION_FAILED', `the resource is larger than ${MAX_FHIR_CONSENT_BYTES} bytes`, { issues: [{ path: '$', message: 'too large' }] });
  }
  const compiled = compileFhirConsent(bytes, fhirVersion === undefined ? {} : { fhirVersion });
  const period = {
    ...(compiled.period.start === undefined ? {} : { start: fhirTime(compiled.period.start, 'start', 'period.start') }),
    ...(compiled.period.end === undefined ? {} : { end: fhirTime(compiled.period.end, 'end', 'period.end') }),
  };
  return { compiled, period };
}

/**
 * Imports a FHIR Consent resource (R4 or R5 JSON, the version detected unless given).
 * @throws {ValidationError} FHIR_INVALID, VALIDATION_FAILED (nothing written)
 * @throws {ConsentError} CONSENT_UNENFORCEABLE, CONSENT_ALREADY_REVOKED, POLICY_TAMPERED (nothing written)
 * @throws {ConflictError} CONSENT_PATIENT_MISMATCH (nothing written)
 */
export async function importFhirConsent(s: GovernanceState, bytes: Uint8Array, actor: Actor, opts: { fhirVersion?: FhirVersion } = {}): Promise<FhirConsentImport> {
  const who = parseWith(ACTOR, actor, 'actor');
  s.checkCodes({ role: who.role });
  const { compiled, period } = compile(bytes, opts.fhirVersion);
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fhirDoc: BuiltDocument = { hash: toHex(sha256(raw)), kind: DOC.fhirConsent, bytes: Buffer.from(raw), value: undefined };
  const values = [{ kind: 'subject', value: compiled.patient }, ...(compiled.identifier === undefined ? [] : [{ kind: 'external_ref', value: compiled.identifier }])];
  return s.commitments.with(values, async ([subject, ref]) => {
    try {
      return await withPolicyRetry(() => importOnce(s, compiled, period, fhirDoc, who, subject!, ref));
    } catch (err) {
      if (err instanceof Unchanged) {
        return { policy: err.policy, hash: err.hash, fhirHash: fhirDoc.hash, fhirVersion: compiled.fhirVersion, event: undefined, index: err.index, type: 'unchanged', unchanged: true };
      }
      throw err;
    }
  });
}

async function importOnce(
  s: GovernanceState,
  compiled: CompiledFhirConsent,
  period: { start?: string; end?: string },
  fhirDoc: BuiltDocument,
  who: { id: string; role: string },
  subject: Commitment,
  ref: Commitment | undefined,
): Promise<FhirConsentImport> {
  // Before sequencing: the policy the identifier names now, and its current version (a store read).
  const known = ref ? await s.heads.fhirPolicy(ref.c.commitment) : undefined;
  const pre: PolicyLookup | undefined = known === undefined ? undefined : await s.heads.preload(known, true);
  const policyIdOfNew = policyIdFromBytes(s.random(16));
  const source: PolicySource = { format: FORMAT[compiled.fhirVersion], hash: fhirDoc.hash };
  let written: { policy: ConsentPolicy; hash: string; type: string } | undefined;
  const event = await s.log.appendDecided((ctx: SequencingContext): Decided => {
    const time = formatEntryTime(ctx.timeMs);
    const existing = ref ? s.heads.fhirPolicyAt(ref.c.commitment, ctx.batchId) : undefined;
    if (existing === undefined) {
      const d = create(s, ctx, compiled, period, source, fhirDoc, who, subject, ref, policyIdOfNew, time);
      written = { policy: d.policy, hash: d.hash, type: EVENT.consentCreated };
      return d.decided;
    }
    const current = s.heads.resolve(pre !== undefined && known === existing ? pre : { kind: 'unknown', policyId: existing }, existing, ctx.batchId);
    if (current.kind === 'unknown') throw new NotFoundError('POLICY_NOT_FOUND', `no policy ${existing}`);
    if (current.kind === 'tampered') throw new ConsentError('POLICY_TAMPERED', `the stored document of ${existing} version ${current.version} does not match the log`);
    const prev = current.policy;
    const head = s.heads.at(existing, ctx.batchId)!;
    if (prev.source?.hash === fhirDoc.hash) throw new Unchanged(prev, current.hash, head.index);
    if (prev.subject !== subject.c.commitment) {
      throw new ConflictError('CONSENT_PATIENT_MISMATCH', `the resource names another patient than version ${prev.version} of ${existing} (same identifier)`);
    }
    if (prev.revoked) throw new ConsentError('CONSENT_ALREADY_REVOKED', `policy ${existing} is already revoked`);
    const d = update(s, ctx, compiled, period, source, fhirDoc, who, prev, current.hash, time);
    written = { policy: d.policy, hash: d.hash, type: d.type };
    return d.decided;
  });
  const w = written!;
  return { policy: w.policy, hash: w.hash, fhirHash: fhirDoc.hash, fhirVersion: compiled.fhirVersion, event, index: event.index, type: w.type, unchanged: false };
}

function create(
  s: GovernanceState,
  ctx: SequencingContext,
  compiled: CompiledFhirConsent,
  period: { start?: string; end?: string },
  source: PolicySource,
  fhirDoc: BuiltDocument,
  who: { id: string; role: string },
  subject: Commitment,
  ref: Commitment | undefined,
  policyId: string,
  time: string,
): { policy: ConsentPolicy; hash: string; decided: Decided } {
  if (s.heads.at(policyId, ctx.batchId)) throw new ConflictError('POLICY_EXISTS', `policy ${policyId} already exists`);
  const policy: ConsentPolicy = {
    schema: POLICY_SCHEMA,
    policyId,
    version: 1,
    subject: subject.c.commitment,
    ...(ref ? { externalRef: ref.c.commitment } : {}),
    revocable: true,
    // A resource that is already inactive, rejected or entered-in-error records a refusal: nothing is permitted under it.
    revoked: compiled.revokes,
    period: { start: period.start ?? time, ...(period.end ? { end: period.end } : {}) },
    provision: compiled.provision,
    previous: null,
    recordedAt: time,
    recordedBy: { actor: who.id, role: who.role },
    source,
  };
  const d = doc(DOC.policy, policy);
  const head: Head = { version: 1, hash: d.hash, index: ctx.index };
  s.heads.stage(policyId, head);
  if (ref) s.heads.stageFhirPolicy(ref.c.commitment, policyId);
  const linked = s.links.note(ctx, () => s.log.size, policyId, subject.c.commitment, ref ? [ref.c.commitment] : [], [fhirDoc.hash]);
  return {
    policy,
    hash: d.hash,
    decided: {
      type: EVENT.consentCreated,
      // Purposes and roles of a FHIR policy are codings: the policy document (its hash on the log) commits them.
      payload: s.checked(EVENT.consentCreated, {
        policyId,
        version: 1,
        subject: subject.c.commitment,
        ...(ref ? { externalRef: ref.c.commitment } : {}),
        validFrom: policy.period.start,
        ...(policy.period.end ? { validUntil: policy.period.end } : {}),
        revocable: true,
        actor: who.id,
        role: who.role,
        documents: { policy: d.hash, fhir: fhirDoc.hash },
        source: source.format,
      }),
      sidecar: {
        documents: [fhirDoc, d],
        commitments: s.commitments.openings(subject, ...(ref ? [ref] : [])),
        state: [{ ns: 'policy', key: policyId, value: JSON.stringify(head) }],
      },
      onCommitted: () => {
        s.heads.committedByUs(policyId, head, policy);
        if (ref) s.heads.committedFhirPolicy(ref.c.commitment, policyId);
        linked();
      },
    },
  };
}

function update(
  s: GovernanceState,
  ctx: SequencingContext,
  compiled: CompiledFhirConsent,
  period: { start?: string; end?: string },
  source: PolicySource,
  fhirDoc: BuiltDocument,
  who: { id: string; role: string },
  prev: ConsentPolicy,
  prevHash: string,
  time: string,
): { policy: ConsentPolicy; hash: string; type: string; decided: Decided } {
  const id = prev.policyId;
  const policy: ConsentPolicy = {
    ...prev,
    version: prev.version + 1,
    revoked: compiled.revokes,
    period: { start: period.start ?? time, ...(period.end ? { end: period.end } : {}) },
    provision: compiled.provision,
    previous: prevHash,
    recordedAt: time,
    recordedBy: { actor: who.id, role: who.role },
    source,
  };
  const d = doc(DOC.policy, policy);
  const head: Head = { version: policy.version, hash: d.hash, index: ctx.index };
  s.heads.stage(id, head);
  const type = compiled.revokes ? EVENT.consentRevoked : EVENT.consentUpdated;
  // An erasure of the subject being prepared must see these bytes too (erasure.ts).
  const linked = s.links.note(ctx, () => s.log.size, id, undefined, [], [fhirDoc.hash]);
  const common = { policyId: id, version: policy.version, previous: prevHash, actor: who.id, role: who.role, documents: { policy: d.hash, fhir: fhirDoc.hash }, source: source.format };
  const payload = compiled.revokes ? common : { ...common, validFrom: policy.period.start, ...(policy.period.end ? { validUntil: policy.period.end } : {}) };
  return {
    policy,
    hash: d.hash,
    type,
    decided: {
      type,
      payload: s.checked(type, payload),
      sidecar: { documents: [fhirDoc, d], state: [{ ns: 'policy', key: id, value: JSON.stringify(head) }] },
      onCommitted: () => {
        s.heads.committedByUs(id, head, policy);
        linked();
      },
    },
  };
}

/**
 * A policy's current version in FHIR form: the exact bytes imported (their hash re-checked against
 * the policy version document, itself checked against the log), or, for a native policy, its R4
 * form. A mismatch anywhere is refused, never served. Bytes erased with the subject (an
 * ERASURE_PERFORMED event on the log lists them) are DOCUMENT_ERASED, never the converted form.
 * @throws {NotFoundError} POLICY_NOT_FOUND, DOCUMENT_ERASED
 * @throws {ConsentError} POLICY_TAMPERED
 */
export async function exportFhirConsent(s: GovernanceState, policyId: string): Promise<FhirConsentExport> {
  const id = parseWith(POLICY_ID, policyId, 'policy id');
  const lookup = await s.heads.preload(id, true);
  if (lookup.kind === 'unknown') throw new NotFoundError('POLICY_NOT_FOUND', `no policy ${id}`);
  if (lookup.kind === 'tampered') throw new ConsentError('POLICY_TAMPERED', `the stored document of ${id} version ${lookup.version} does not match the log`);
  const head = s.heads.committed(id);
  const index = head?.hash === lookup.hash ? head.index : -1;
  const policy = lookup.policy;
  const commitments = [policy.subject, ...(policy.externalRef ? [policy.externalRef] : [])];
  const base = { policyId: id, version: policy.version, policyHash: lookup.hash, index, commitments };
  if (policy.source) {
    const stored = await s.log.sidecar.getDocument(policy.source.hash);
    if (!stored) {
      // Erased with the subject: say so (and by which entry), never serve the converted form in its place.
      const erasureIndex = await erasureOfDocument(s.log.sidecar, s.log.reader, policy.source.hash);
      if (erasureIndex !== undefined) {
        throw new NotFoundError('DOCUMENT_ERASED', `the FHIR resource of ${id} version ${policy.version} was erased by entry ${erasureIndex} (the subject's erasure); the policy stays in force`, {
          details: { policyId: id, version: policy.version, document: policy.source.hash, erasureIndex },
        });
      }
    }
    if (!stored || toHex(sha256(stored.bytes)) !== policy.source.hash) {
      throw new ConsentError('POLICY_TAMPERED', `the stored FHIR resource of ${id} version ${policy.version} does not match the hash its policy document commits`, {
        details: { policyId: id, version: policy.version, document: policy.source.hash },
      });
    }
    return { ...base, kind: 'stored', bytes: Buffer.from(stored.bytes) };
  }
  return { ...base, kind: 'converted', bytes: Buffer.from(JSON.stringify(policyToFhirConsent(policy))) };
}
