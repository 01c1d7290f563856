/**
 * Operations under consent: each attempt is decided at the moment its event is sequenced, against
 * the policy heads the log has then, at the log's time, and leaves exactly one event: executed, or
 * CONSENT_DENIED with its reason. Data access and training are here; inference (which issues a
 * receipt) is in receipts.ts.
 * @module
 */
import type * as v from 'valibot';
import { ConsentError, ValidationError } from '../../core/errors.js';
import { evaluateConsent, type Decision } from '../../core/consent/evaluate.js';
import { parseModelSpec, parseTrainingManifest } from '../../core/manifest.js';
import { parseWith } from '../../core/schema/parse.js';
import { GOVERNANCE_EVENT as EVENT } from '../../core/events.js';
import type { AppendResult, Decided, SequencingContext, SidecarDocument } from '../../log/log.js';
import { ACCESS, TRAINING, type DataAccessInput, type TrainingInput } from '../requests.js';
import type { Commitment } from './commitments.js';
import { DOC, doc } from './documents.js';
import { withPolicyRetry, type Actor, type GovernanceState } from './state.js';

/** Refusal by consent. The CONSENT_DENIED event is already on the log when this is thrown. */
export class ConsentDeniedError extends ConsentError {
  readonly decision: Decision;
  readonly event: AppendResult;
  constructor(decision: Decision, event: AppendResult) {
    super('CONSENT_DENIED', `consent denied (${decision.reason}): ${decision.explanation}`, {
      details: { reason: decision.reason, policyId: decision.policyId, policyVersion: decision.policyVersion, provision: decision.provision, eventIndex: event.index },
    });
    this.decision = decision;
    this.event = event;
  }
}

/** A decision's request as the service makes it: the purpose (a vocabulary code) and the optional attributes. */
export interface DecisionRequest {
  readonly purpose: string;
  readonly actorReference?: string | undefined;
  readonly action?: string | undefined;
  readonly class?: string | undefined;
  readonly code?: string | undefined;
  readonly securityLabels?: readonly string[] | undefined;
  readonly dataTime?: string | undefined;
}

/** The attributes of `a` that a decision takes, without the undefined ones. */
export function attributesOf(a: DecisionRequest): DecisionRequest {
  return {
    purpose: a.purpose,
    ...(a.actorReference === undefined ? {} : { actorReference: a.actorReference }),
    ...(a.action === undefined ? {} : { action: a.action }),
    ...(a.class === undefined ? {} : { class: a.class }),
    ...(a.code === undefined ? {} : { code: a.code }),
    ...(a.securityLabels === undefined ? {} : { securityLabels: a.securityLabels }),
    ...(a.dataTime === undefined ? {} : { dataTime: a.dataTime }),
  };
}

/**
 * What of a request goes on the log, beside purpose and role: its codings (action, class, code,
 * security labels) and the data's time, under `request`. Never the actor reference (a reference
 * to a person or organization; the decision names the provision that matched it).
 */
export function requestOnLog(a: DecisionRequest): { request?: Record<string, unknown> } {
  const dataTime = a.dataTime === undefined ? undefined : Date.parse(a.dataTime);
  const r = {
    ...(a.action === undefined ? {} : { action: a.action }),
    ...(a.class === undefined ? {} : { class: a.class }),
    ...(a.code === undefined ? {} : { code: a.code }),
    ...(a.securityLabels === undefined || a.securityLabels.length === 0 ? {} : { securityLabels: [...a.securityLabels] }),
    ...(dataTime === undefined || !Number.isFinite(dataTime) ? {} : { dataTime: new Date(dataTime).toISOString() }),
  };
  return Object.keys(r).length === 0 ? {} : { request: r };
}

/** The operations a consent decision is made for. */
export type Operation = 'data_access' | 'inference' | 'training';

/**
 * Appends the executed event if consent permits at sequencing time, CONSENT_DENIED otherwise.
 * With several policies (a training cohort) every one must permit; the first refusal is logged.
 * @throws {ConsentDeniedError} CONSENT_DENIED (after the CONSENT_DENIED event is committed)
 */
export async function underConsent<T>(
  s: GovernanceState,
  operation: Operation,
  actor: Actor,
  request: DecisionRequest,
  policyIds: readonly string[],
  denied: Record<string, unknown>,
  commitments: readonly Commitment[],
  deniedCarries: number,
  permitted: (ctx: SequencingContext, decisions: readonly Decision[]) => Decided & { result: T },
): Promise<{ result: T; event: AppendResult; decisions: readonly Decision[] }> {
  // Whichever event is written carries the openings of the commitments it (or its receipt)
  // holds, and only those: every commitment on the log can be opened (until erased), and no
  // opening is kept that nothing on the log refers to (a denial records the first
  // `deniedCarries` commitments: an inference's input, not its outputs).
  const openings = s.commitments.openings(...commitments);
  const deniedOpenings = s.commitments.openings(...commitments.slice(0, deniedCarries));
  const uris = commitments.map((x) => x.c.commitment);
  return withPolicyRetry(async () => {
    const pre = await Promise.all(policyIds.map((id) => s.heads.preload(id)));
    let decisions: Decision[] = [];
    let refusal: Decision | undefined;
    let result: T | undefined;
    const event = await s.log.appendDecided((ctx): Decided => {
      decisions = policyIds.map((id, i) => evaluateConsent(s.heads.resolve(pre[i]!, id, ctx.batchId), { ...request, role: actor.role }, ctx.timeMs));
      refusal = decisions.find((d) => d.effect === 'deny');
      const carried = refusal ? uris.slice(0, deniedCarries) : uris;
      const marks = policyIds.map((id) => s.links.note(ctx, () => s.log.size, id, undefined, carried));
      const linked = () => {
        for (const m of marks) m();
      };
      if (refusal) {
        const d = refusal;
        return {
          type: EVENT.consentDenied,
          payload: s.checked(EVENT.consentDenied, {
            operation,
            reason: d.reason,
            policyId: d.policyId,
            ...(d.policyVersion === undefined ? {} : { policyVersion: d.policyVersion, policyHash: d.policyHash }),
            ...(d.provision === undefined ? {} : { provision: d.provision }),
            actor: actor.id,
            role: actor.role,
            purpose: request.purpose,
            ...denied,
            ...requestOnLog(request),
          }),
          sidecar: { commitments: deniedOpenings },
          onCommitted: linked,
        };
      }
      const d = permitted(ctx, decisions);
      result = d.result;
      return { ...d, sidecar: { ...d.sidecar, commitments: openings }, onCommitted: linked };
    });
    if (refusal) throw new ConsentDeniedError(refusal, event);
    return { result: result as T, event, decisions };
  });
}

/**
 * Records an access to patient data, after checking consent (the reference logged without one).
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
 */
export async function recordDataAccess(s: GovernanceState, input: DataAccessInput): Promise<{ event: AppendResult; decision: Decision }> {
  const a = parseWith(ACCESS, input, 'data access');
  s.checkCodes({ purpose: a.purpose, role: a.actor.role });
  return s.commitments.with([{ kind: 'uri', value: a.artifact.uri }], async ([uri]) => dataAccess(s, a, uri!));
}

async function dataAccess(s: GovernanceState, a: v.InferOutput<typeof ACCESS>, uri: Commitment): Promise<{ event: AppendResult; decision: Decision }> {
  const artifact = { uri: uri.c.commitment, digest: a.artifact.digest };
  const r = await underConsent(s, 'data_access', a.actor, attributesOf(a), [a.policyId], { artifact }, [uri], 1, (_ctx, [decision]) => ({
    type: EVENT.dataAccessed,
    payload: s.checked(EVENT.dataAccessed, {
      actor: a.actor.id,
      role: a.actor.role,
      purpose: a.purpose,
      policyId: a.policyId,
      policyVersion: decision!.policyVersion!,
      policyHash: decision!.policyHash!,
      provision: decision!.provision!,
      artifact,
      documents: { policy: decision!.policyHash! },
      ...requestOnLog(a),
    }),
    result: undefined,
  }));
  return { event: r.event, decision: r.decisions[0]! };
}

/**
 * Records a training run.
 * - `identified` (subject-linked) data: decided at sequencing time under the consent of every
 *   subject (`policyIds`, at most MAX_TRAINING_COHORT), for a training purpose (by default
 *   HRESCH or one of its specializations). One refusal refuses the run; CONSENT_DENIED is logged.
 * - `deidentified` / `synthetic` data: no consent applies, so the caller attests how the data was
 *   made non-identifying (`attestation.method`, optionally the attestation document's digest); the
 *   attestor is the acting actor. The attestation is recorded on the event.
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
 */
export async function recordTraining(s: GovernanceState, input: TrainingInput): Promise<{ event: AppendResult; manifestHash: string; decisions: readonly Decision[] }> {
  const a = parseWith(TRAINING, input, 'training run');
  s.checkCodes({ purpose: a.purpose, role: a.actor.role });
  if (a.dataset.type === 'identified' && !s.vocab.trainingPurposes.has(a.purpose)) {
    throw new ValidationError('VALIDATION_FAILED', `purpose ${a.purpose} is not a training purpose (${[...s.vocab.trainingPurposes].join(', ')})`, {
      issues: [{ path: 'purpose', message: 'not a training purpose' }],
    });
  }
  const manifest = doc(DOC.training, parseTrainingManifest(a.manifest, 'manifest'));
  const before = doc(DOC.model, parseModelSpec(a.modelBefore, 'modelBefore'));
  const after = doc(DOC.model, parseModelSpec(a.modelAfter, 'modelAfter'));
  return s.commitments.with([{ kind: 'uri', value: a.dataset.uri }], async ([uri]) => training(s, a, manifest, before, after, uri!));
}

async function training(
  s: GovernanceState,
  a: v.InferOutput<typeof TRAINING>,
  manifest: SidecarDocument,
  before: SidecarDocument,
  after: SidecarDocument,
  uri: Commitment,
): Promise<{ event: AppendResult; manifestHash: string; decisions: readonly Decision[] }> {
  const dataset = { uri: uri.c.commitment, digest: a.dataset.digest, type: a.dataset.type };
  const documents = { training: manifest.hash, modelBefore: before.hash, modelAfter: after.hash };
  const executed = (decisions: readonly Decision[]): Decided => ({
    type: EVENT.trainingExecuted,
    payload: s.checked(EVENT.trainingExecuted, {
      actor: a.actor.id,
      role: a.actor.role,
      purpose: a.purpose,
      dataset,
      ...(a.dataset.type === 'identified'
        ? { consents: decisions.map((d) => ({ policyId: d.policyId, policyVersion: d.policyVersion!, policyHash: d.policyHash!, provision: d.provision! })) }
        : { attestation: { method: a.attestation!.method, attestor: a.actor.id, ...(a.attestation!.document ? { document: a.attestation!.document } : {}) } }),
      computeBackend: a.computeBackend,
      documents,
    }),
    sidecar: { documents: [manifest, before, after] },
  });
  if (a.dataset.type === 'identified') {
    const policyIds = [...new Set(a.policyIds!)];
    const r = await underConsent(s, 'training', a.actor, { purpose: a.purpose }, policyIds, { dataset, training: manifest.hash }, [uri], 1, (_ctx, decisions) => ({
      ...executed(decisions),
      result: undefined,
    }));
    return { event: r.event, manifestHash: manifest.hash, decisions: r.decisions };
  }
  const event = await s.log.appendDecided(() => {
    const d = executed([]);
    return { ...d, sidecar: { ...d.sidecar, commitments: s.commitments.openings(uri) } };
  });
  return { event, manifestHash: manifest.hash, decisions: [] };
}
