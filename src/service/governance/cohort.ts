/**
 * Consent-governed training cohorts (issue 14; docs/training.md).
 *
 * A training run on identified data may name its cohort: each subject (its pseudonymous id, turned
 * into its existing salted commitment) with the consent policy it is trained under. At the moment
 * the TRAINING_EXECUTED event is sequenced, against the policy heads the log has then (a
 * revocation sequenced earlier in the same batch counts), each subject's inclusion is decided
 * under its policy for the run's training purpose: subjects whose consent permits are included,
 * the others are left out and counted by reason. The run is recorded with the root and size of the
 * sorted Merkle tree over the included commitments (core/merkle/sorted.ts) and the exclusion
 * counts; the cohort document (the sorted commitments) is stored off-ledger, its hash on the event.
 *
 * {@link buildCohortProof} then proves, for one subject, inclusion in a run or absence from it.
 * @module
 */
import { buildCohort, assembleCohortProof, checkCohortDocument, type CohortExclusionReason, type CohortProof } from '../../core/cohort.js';
import { evaluateConsent, type ConsentRequest, type PolicyLookup } from '../../core/consent/evaluate.js';
import { ConflictError, NotFoundError } from '../../core/errors.js';
import { EVENT_TYPE, parseLoggedEvent, recordField, stringField } from '../../core/events.js';
import { sha256, toHex } from '../../core/hash.js';
import { SortedTree } from '../../core/merkle/sorted.js';
import type { AppendResult, Decided, SequencingContext, SidecarDocument } from '../../log/log.js';
import { logView, type LogSource } from '../../log/reader.js';
import type { Commitment } from './commitments.js';
import { DOC, doc } from './documents.js';
import { withPolicyRetry, type Actor, type GovernanceState } from './state.js';

/** One subject of a cohort as the service holds it: its commitment and the policy it is decided under. */
export interface CohortMember {
  readonly subject: Commitment;
  readonly policyId: string;
}

/** What a cohort run recorded: the tree's root and size, the exclusions by reason, and the cohort document's hash. */
export interface CohortSummary {
  readonly root: string;
  readonly size: number;
  readonly excluded: readonly { readonly reason: CohortExclusionReason; readonly count: number }[];
  readonly excludedTotal: number;
  readonly document: string;
}

/**
 * The inclusion decision of every member, at sequencing time (pure but for the policy heads'
 * batch view): included commitments, and exclusions counted by reason, in a stable order.
 */
export function decideCohort(
  s: GovernanceState,
  ctx: SequencingContext,
  members: readonly CohortMember[],
  pre: ReadonlyMap<string, PolicyLookup>,
  asked: ConsentRequest,
): { included: Commitment[]; includedPolicies: string[]; excluded: { reason: CohortExclusionReason; count: number }[] } {
  const included: Commitment[] = [];
  const includedPolicies = new Set<string>();
  const counts = new Map<CohortExclusionReason, number>();
  const resolved = new Map<string, PolicyLookup>();
  for (const m of members) {
    let lookup = resolved.get(m.policyId);
    if (lookup === undefined) {
      lookup = s.heads.resolve(pre.get(m.policyId)!, m.policyId, ctx.batchId);
      resolved.set(m.policyId, lookup);
    }
    // A policy is decided only for its own subject (the subject of a policy never changes).
    let reason: CohortExclusionReason | undefined;
    if (lookup.kind === 'found' && lookup.policy.subject !== m.subject.c.commitment) reason = 'SUBJECT_MISMATCH';
    else {
      const d = evaluateConsent(lookup, asked, ctx.timeMs);
      if (d.effect === 'deny') reason = d.reason as CohortExclusionReason;
    }
    if (reason === undefined) {
      included.push(m.subject);
      includedPolicies.add(m.policyId);
    } else counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  const excluded = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([reason, count]) => ({ reason, count }));
  return { included, includedPolicies: [...includedPolicies], excluded };
}

/**
 * Appends the TRAINING_EXECUTED event of a cohort run: `executed` builds the event from the cohort
 * fields and the cohort document (decisions.ts owns the rest of the payload). Retried afresh when
 * a policy changed between the preload and the decision.
 */
export async function appendCohortTraining(
  s: GovernanceState,
  actor: Actor,
  purpose: string,
  members: readonly CohortMember[],
  carried: readonly Commitment[],
  executed: (cohort: Record<string, unknown>, cohortDoc: SidecarDocument) => Decided,
): Promise<{ event: AppendResult; cohort: CohortSummary }> {
  const roleCodings = s.roleCodingsOf(actor.role);
  const asked: ConsentRequest = { purpose, role: actor.role, ...(roleCodings === undefined ? {} : { roleCodings }) };
  const policyIds = [...new Set(members.map((m) => m.policyId))];
  const uris = carried.map((c) => c.c.commitment);
  return withPolicyRetry(async () => {
    const loaded = await Promise.all(policyIds.map((id) => s.heads.preload(id)));
    const pre = new Map(policyIds.map((id, i) => [id, loaded[i]!]));
    let summary: CohortSummary | undefined;
    const event = await s.log.appendDecided((ctx): Decided => {
      const r = decideCohort(s, ctx, members, pre, asked);
      const { document } = buildCohort(r.included.map((c) => c.c.commitment));
      const cohortDoc = doc(DOC.cohort, document);
      const excludedTotal = r.excluded.reduce((n, x) => n + x.count, 0);
      summary = { root: document.root, size: document.size, excluded: r.excluded, excludedTotal, document: cohortDoc.hash };
      // Each included subject's policy links this event (for an erasure prepared meanwhile), as a decision does.
      const marks = r.includedPolicies.map((id) => s.links.note(ctx, () => s.log.size, id, undefined, uris));
      const d = executed({ root: document.root, size: document.size, excluded: r.excluded }, cohortDoc);
      return {
        ...d,
        // The openings of new commitments among those carried (a subject's is never new once its policy exists).
        sidecar: { ...d.sidecar, commitments: s.commitments.openings(...carried, ...r.included) },
        onCommitted: () => {
          for (const m of marks) m();
          d.onCommitted?.();
        },
      };
    });
    return { event, cohort: summary! };
  });
}

// ---- proofs -------------------------------------------------------------------------------------

/** Options of {@link buildCohortProof}. */
export interface BuildCohortProofOptions {
  /** Ask for the proof of absence (non-inclusion) rather than of inclusion. */
  readonly absent: boolean;
  /**
   * Called with the subject's commitments before any salt is read into the proof: the caller
   * writes its audit event here (the proof opens them: it is patient-linked).
   */
  readonly audit: (commitments: readonly string[]) => Promise<void>;
}

/** The cohort of the TRAINING_EXECUTED entry at `index`: its tree, rebuilt from the cohort document and checked against the entry. */
async function cohortAt(source: LogSource, index: number): Promise<{ tree: SortedTree; bytes: Buffer }> {
  const { reader, sidecar } = logView(source);
  const entry = await reader.getEntry(index);
  const e = parseLoggedEvent(entry.bytes);
  const cohort = recordField(e?.payload, 'cohort');
  const hash = stringField(recordField(e?.payload, 'documents'), 'cohort');
  if (e?.type !== EVENT_TYPE.trainingExecuted || cohort === undefined || hash === undefined) {
    throw new NotFoundError('COHORT_NOT_FOUND', `entry ${index} is not a training run with a cohort`, { details: { eventIndex: index, type: e?.type } });
  }
  const stored = await sidecar.getDocument(hash);
  let value: unknown;
  try {
    value = stored && toHex(sha256(stored.bytes)) === hash ? JSON.parse(stored.bytes.toString('utf8')) : undefined;
  } catch {
    value = undefined;
  }
  const root = stringField(cohort, 'root');
  const size = cohort['size'];
  if (value === undefined || root === undefined || typeof size !== 'number' || checkCohortDocument(value, root, size) !== undefined) {
    throw new NotFoundError('COHORT_NOT_FOUND', `the cohort document of entry ${index} is missing or does not match the log (run custos verify)`, { details: { eventIndex: index, document: hash } });
  }
  return { tree: new SortedTree((value as { commitments: string[] }).commitments), bytes: entry.bytes };
}

/**
 * The CONSENT_CREATED entry before `before` whose `subject` is each of `commitments` (the latest
 * one, when a subject has several policies), by a scan of the log newest first: the entry that
 * binds the commitment to the log in a cohort proof (core/cohort.ts, `subject-binding`).
 */
async function consentEntriesOf(source: LogSource, commitments: readonly string[], before: number): Promise<Map<string, { index: number; bytes: Buffer }>> {
  const { reader } = logView(source);
  const found = new Map<string, { index: number; bytes: Buffer }>();
  const wanted = new Set(commitments);
  if (wanted.size === 0) return found;
  const mark = Buffer.from(`"${EVENT_TYPE.consentCreated}"`, 'utf8');
  for await (const page of reader.entryPagesDescending(0, before)) {
    for (const e of page) {
      if (e.bytes.indexOf(mark) < 0) continue;
      const p = parseLoggedEvent(e.bytes);
      const subject = p?.type === EVENT_TYPE.consentCreated ? stringField(p.payload, 'subject') : undefined;
      if (subject === undefined || !wanted.has(subject) || found.has(subject)) continue;
      found.set(subject, { index: e.index, bytes: e.bytes });
      if (found.size === wanted.size) return found;
    }
  }
  return found;
}

/**
 * The cohort proof of `subject` for the training run at `index`, proved against the latest signed
 * checkpoint: inclusion (the subject's commitment is a leaf) or, with `absent`, non-inclusion
 * (for every commitment of the subject that a consent entry before the run commits: only those can
 * be in a cohort). Each opening carries that CONSENT_CREATED entry and its inclusion proof under the
 * same checkpoint, which binds the commitment to the log. The subject's commitments are passed to
 * `audit` before their salts are read.
 * @throws {NotFoundError} COHORT_NOT_FOUND, CHECKPOINT_NOT_FOUND; SUBJECT_NOT_FOUND (after the audit; also when no consent entry before the run commits the subject)
 * @throws {ConflictError} COHORT_SUBJECT_PRESENT (absent asked, subject included), COHORT_SUBJECT_ABSENT (the reverse); after the audit
 */
export async function buildCohortProof(source: LogSource, index: number, subject: string, options: BuildCohortProofOptions): Promise<{ proof: CohortProof; commitments: readonly string[] }> {
  const { reader, sidecar } = logView(source);
  const latest = await reader.latestCheckpoint();
  if (!latest || index >= latest.treeSize) throw new NotFoundError('CHECKPOINT_NOT_FOUND', `entry ${index} is not covered by a signed checkpoint yet`);
  const { tree, bytes } = await cohortAt(source, index);
  const found = await sidecar.findCommitments('subject', subject);
  const commitments = [...new Set(found.map((c) => c.commitment))].sort();
  // The read itself is audited (with the commitments, never the id), whatever the outcome: an
  // unknown subject too (no commitment named), since the answer says whether the subject is known.
  await options.audit(commitments);
  if (commitments.length === 0) throw new NotFoundError('SUBJECT_NOT_FOUND', 'the subject has no commitment in the store (unknown, or erased)');
  const present = commitments.filter((c) => tree.indexOf(c) >= 0);
  if (options.absent && present.length > 0) {
    throw new ConflictError('COHORT_SUBJECT_PRESENT', `the subject is in the cohort of entry ${index}: only an inclusion proof exists`, { details: { eventIndex: index } });
  }
  if (!options.absent && present.length === 0) {
    throw new ConflictError('COHORT_SUBJECT_ABSENT', `the subject is not in the cohort of entry ${index}: ask for the proof of absence`, { details: { eventIndex: index } });
  }
  // Every commitment in a cohort is the subject of a policy created before the run; a commitment
  // no CONSENT_CREATED entry before the run commits could not be in it, and nothing ties it to the log.
  const consents = await consentEntriesOf(source, options.absent ? commitments : present, index);
  const bound = (options.absent ? commitments : present).filter((c) => consents.has(c));
  const chosen = options.absent ? bound : bound.slice(0, 1);
  const openings: { commitment: string; salt: Buffer; consent: { index: number; bytes: Buffer; proof: readonly Uint8Array[] } }[] = [];
  for (const c of chosen) {
    const o = await sidecar.getCommitment(c);
    const entry = consents.get(c)!;
    if (o) openings.push({ commitment: c, salt: o.salt, consent: { index: entry.index, bytes: entry.bytes, proof: (await reader.inclusionProof(entry.index, latest.treeSize)).proof } });
  }
  if (openings.length === 0) {
    throw new NotFoundError(
      'SUBJECT_NOT_FOUND',
      commitments.length > 0 && bound.length === 0
        ? `no consent entry before entry ${index} commits the subject: it could not be in that cohort, and no proof can bind its commitment to the log`
        : 'the subject has no commitment in the store (unknown, or erased)',
      { details: { eventIndex: index } },
    );
  }
  const logProof = await reader.inclusionProof(index, latest.treeSize);
  const proof = assembleCohortProof({
    kind: options.absent ? 'non-inclusion' : 'inclusion',
    subject,
    openings,
    tree,
    entryIndex: index,
    entryBytes: bytes,
    logTreeSize: latest.treeSize,
    logProof: logProof.proof,
    checkpointNote: latest.note,
  });
  return { proof, commitments: openings.map((o) => o.commitment) };
}
