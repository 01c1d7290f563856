/**
 * Operations under consent: each attempt is decided at the moment its event is sequenced, against
 * the policy heads the log has then, at the log's time, and leaves exactly one event: executed, or
 * CONSENT_DENIED with its reason. Data access and training are here; inference (which issues a
 * receipt) is in receipts.ts.
 * @module
 */
import type * as v from 'valibot';
import { ConsentError, ValidationError } from '../../core/errors.js';
import { evaluateConsent, type ConsentRequest, type Decision } from '../../core/consent/evaluate.js';
import { parseModelSpec, parseTrainingManifest, type ModelSpec } from '../../core/manifest.js';
import { formatEntryTime } from '../../core/entry.js';
import { GOVERNANCE_EVENT as EVENT, asLoggedEvent } from '../../core/events.js';
import { classifyBreakGlass, type BreakGlassRefusal } from '../../core/break-glass.js';
import type { AppendResult, Decided, SequencingContext, SidecarDocument } from '../../log/log.js';
import { ACCESS, TRAINING, checkedOrParse, type Checked, type DataAccessInput, type TrainingInput } from '../requests.js';
import type { Commitment } from './commitments.js';
import { DOC, doc } from './documents.js';
import { withPolicyRetry, type Actor, type GovernanceState } from './state.js';
import { prepareChangeControl, withChangeControl, type ChangeControlResult } from './models.js';
import { appendCohortTraining, type CohortSummary } from './cohort.js';

/** Refusal by consent. The CONSENT_DENIED event is already on the log when this is thrown. */
export class ConsentDeniedError extends ConsentError {
  readonly decision: Decision;
  readonly event: AppendResult;
  /** Why a break-glass request could not override the denial (also on the event), if it was one. */
  readonly breakGlassRefusal: BreakGlassRefusal | undefined;
  constructor(decision: Decision, event: AppendResult, breakGlassRefusal?: BreakGlassRefusal) {
    // A denial is an outcome, not a fault: no stack is captured (a measurable cost per denial).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super('CONSENT_DENIED', `consent denied (${decision.reason}): ${decision.explanation}${breakGlassRefusal ? `; break-glass refused (${breakGlassRefusal})` : ''}`, {
      details: {
        reason: decision.reason,
        policyId: decision.policyId,
        policyVersion: decision.policyVersion,
        provision: decision.provision,
        eventIndex: event.index,
        ...(breakGlassRefusal ? { breakGlassRefusal } : {}),
      },
    });
    Error.stackTraceLimit = stackTraceLimit;
    this.decision = decision;
    this.event = event;
    this.breakGlassRefusal = breakGlassRefusal;
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
 * A check made at sequencing time before consent is decided (issue 14: an inference's model against
 * the registry). A refusal is logged instead of the consent decision, carrying the same
 * commitments a denial carries, and `error` (given the appended event) is thrown.
 */
export type Gate = (ctx: SequencingContext) => { readonly type: string; readonly payload: Record<string, unknown>; readonly error: (event: AppendResult) => Error } | undefined;

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
  // Break-glass: the event that replaces CONSENT_DENIED when the refusal is overridden (it carries every commitment).
  overridden?: (ctx: SequencingContext, refusal: Decision) => Decided & { result: T },
  gate?: Gate,
): Promise<{ result: T; event: AppendResult; decisions: readonly Decision[]; overridden?: Decision }> {
  // Whichever event is written carries the openings of the commitments it (or its receipt)
  // holds, and only those: every commitment on the log can be opened (until erased), and no
  // opening is kept that nothing on the log refers to (a denial records the first
  // `deniedCarries` commitments: an inference's input, not its outputs).
  const openings = s.commitments.openings(...commitments);
  const deniedOpenings = s.commitments.openings(...commitments.slice(0, deniedCarries));
  const uris = commitments.map((x) => x.c.commitment);
  // The role comes from the actor (the credential), the codings it is known by from the
  // configuration: never from the request.
  const roleCodings = s.roleCodingsOf(actor.role);
  const asked: ConsentRequest = { ...request, role: actor.role, ...(roleCodings === undefined ? {} : { roleCodings }) };
  return withPolicyRetry(async () => {
    const pre = await Promise.all(policyIds.map((id) => s.heads.preload(id)));
    let decisions: Decision[] = [];
    let refusal: Decision | undefined;
    let override: Decision | undefined;
    let result: T | undefined;
    let gated: ReturnType<Gate>;
    const event = await s.log.appendDecided((ctx): Decided => {
      gated = gate?.(ctx);
      if (gated) {
        // Refused before consent is decided: like a denial, it carries only the denied commitments.
        const carried = uris.slice(0, deniedCarries);
        const marks = policyIds.map((id) => s.links.note(ctx, () => s.log.size, id, undefined, carried));
        decisions = [];
        return {
          type: gated.type,
          payload: s.checked(gated.type, gated.payload),
          sidecar: { commitments: deniedOpenings },
          onCommitted: () => {
            for (const m of marks) m();
          },
        };
      }
      decisions = policyIds.map((id, i) => evaluateConsent(s.heads.resolve(pre[i]!, id, ctx.batchId), asked, ctx.timeMs));
      refusal = decisions.find((d) => d.effect === 'deny');
      override = refusal && overridden ? refusal : undefined;
      const carried = refusal && !override ? uris.slice(0, deniedCarries) : uris;
      const marks = policyIds.map((id) => s.links.note(ctx, () => s.log.size, id, undefined, carried));
      const linked = () => {
        for (const m of marks) m();
      };
      if (override) {
        const o = overridden!(ctx, override);
        result = o.result;
        return {
          ...o,
          sidecar: { ...o.sidecar, commitments: openings },
          onCommitted: () => {
            linked();
            o.onCommitted?.();
          },
        };
      }
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
      return {
        ...d,
        sidecar: { ...d.sidecar, commitments: openings },
        onCommitted: () => {
          linked();
          d.onCommitted?.();
        },
      };
    });
    if (gated) throw gated.error(event);
    if (override) return { result: result as T, event, decisions, overridden: override };
    if (refusal) throw new ConsentDeniedError(refusal, event);
    return { result: result as T, event, decisions };
  });
}

/**
 * Records an access to patient data, after checking consent (the reference logged without one).
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
 */
export async function recordDataAccess(s: GovernanceState, input: DataAccessInput | Checked<typeof ACCESS>): Promise<DataAccessResult> {
  const a = checkedOrParse(ACCESS, input, 'data access');
  s.checkCodes({ purpose: a.purpose, role: a.actor.role });
  checkJustification(s, a.justification);
  return s.commitments.with([{ kind: 'uri', value: a.artifact.uri }], async ([uri]) => dataAccess(s, a, uri!));
}

/** What {@link recordDataAccess} returns: the event, the consent decision, and for a break-glass access the decision it overrode. */
export interface DataAccessResult {
  readonly event: AppendResult;
  /** The consent decision (a denial when the access was executed under break-glass). */
  readonly decision: Decision;
  /** Set when the access was a break-glass access (a BREAK_GLASS event, under review). */
  readonly breakGlass?: { readonly justification: string; readonly reviewDue: string };
}

async function dataAccess(s: GovernanceState, a: v.InferOutput<typeof ACCESS>, uri: Commitment): Promise<DataAccessResult> {
  const artifact = { uri: uri.c.commitment, digest: a.artifact.digest };
  // Break-glass (docs/governance.md): whether this request may override a denial, or why not, is
  // known before sequencing; whether consent denies is decided at sequencing time, as always.
  const bg = classifyBreakGlass({ purpose: a.purpose, justification: a.justification, permitted: s.may(a.actor.role, 'break-glass') }, s.vocab);
  const justification = a.justification === undefined ? {} : { justification: a.justification };
  const denied = { artifact, ...justification, ...(bg && !bg.override ? { breakGlassRefusal: bg.refusal } : {}) };
  let bgTimeMs = 0;
  const breakGlass = bg?.override
    ? (ctx: SequencingContext, d: Decision): Decided & { result: undefined } => {
        bgTimeMs = ctx.timeMs;
        const payload = s.checked(EVENT.breakGlass, {
          operation: 'data_access',
          actor: a.actor.id,
          role: a.actor.role,
          purpose: a.purpose,
          justification: a.justification!,
          reason: d.reason,
          policyId: d.policyId,
          ...(d.policyVersion === undefined ? {} : { policyVersion: d.policyVersion, policyHash: d.policyHash }),
          ...(d.provision === undefined ? {} : { provision: d.provision }),
          artifact,
          ...requestOnLog(a),
        });
        // The review queue sees the new item at once (the verified scan would, at its next sync).
        const onCommitted = () => s.reviews.apply(ctx.index, asLoggedEvent({ type: EVENT.breakGlass, time: formatEntryTime(ctx.timeMs), payload }));
        return { type: EVENT.breakGlass, payload, onCommitted, result: undefined };
      }
    : undefined;
  let r: Awaited<ReturnType<typeof underConsent<undefined>>>;
  try {
    r = await underConsent(
      s,
      'data_access',
      a.actor,
      attributesOf(a),
      [a.policyId],
      denied,
      [uri],
      1,
      (_ctx, [decision]) => ({
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
          ...justification,
        }),
        result: undefined,
      }),
      breakGlass,
    );
  } catch (err) {
    if (err instanceof ConsentDeniedError && bg && !bg.override) throw new ConsentDeniedError(err.decision, err.event, bg.refusal);
    throw err;
  }
  if (r.overridden) {
    return { event: r.event, decision: r.overridden, breakGlass: { justification: a.justification!, reviewDue: new Date(bgTimeMs + s.reviewDeadlineMs).toISOString() } };
  }
  return { event: r.event, decision: r.decisions[0]! };
}

// A justification is a code of the configured vocabulary: an unknown one is refused before anything is written.
function checkJustification(s: GovernanceState, justification: string | undefined): void {
  if (justification === undefined || s.vocab.justifications.has(justification)) return;
  throw new ValidationError('VALIDATION_FAILED', `justification ${justification} is not a break-glass justification code (${[...s.vocab.justifications].join(', ')})`, {
    issues: [{ path: 'justification', message: 'unknown justification code' }],
  });
}

/**
 * What {@link recordTraining} returns; `cohort` for a run that named its cohort, `model` when the run
 * made a version of a registered line under a change control plan (issue 14).
 */
export interface TrainingResult {
  readonly event: AppendResult;
  readonly manifestHash: string;
  readonly decisions: readonly Decision[];
  readonly cohort?: CohortSummary;
  readonly model?: ChangeControlResult;
}

/**
 * Records a training run.
 * - `identified` (subject-linked) data: decided at sequencing time under the consent of every
 *   subject (`policyIds`, at most MAX_TRAINING_COHORT), for a training purpose (by default
 *   HRESCH or one of its specializations). One refusal refuses the run; CONSENT_DENIED is logged.
 * - `identified` data with a `cohort` (issue 14, cohort.ts): each subject's inclusion is decided
 *   at sequencing time under its policy; subjects without consent are left out and counted, and
 *   the event records the root of the sorted Merkle tree over the included commitments.
 * - `deidentified` / `synthetic` data: no consent applies, so the caller attests how the data was
 *   made non-identifying (`attestation.method`, optionally the attestation document's digest); the
 *   attestor is the acting actor. The attestation is recorded on the event.
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
 */
export async function recordTraining(s: GovernanceState, input: TrainingInput | Checked<typeof TRAINING>): Promise<TrainingResult> {
  const a = checkedOrParse(TRAINING, input, 'training run');
  s.checkCodes({ purpose: a.purpose, role: a.actor.role });
  if (a.dataset.type === 'identified' && !s.vocab.trainingPurposes.has(a.purpose)) {
    throw new ValidationError('VALIDATION_FAILED', `purpose ${a.purpose} is not a training purpose (${[...s.vocab.trainingPurposes].join(', ')})`, {
      issues: [{ path: 'purpose', message: 'not a training purpose' }],
    });
  }
  const manifest = doc(DOC.training, parseTrainingManifest(a.manifest, 'manifest'));
  const before = doc(DOC.model, parseModelSpec(a.modelBefore, 'modelBefore'));
  const after = doc(DOC.model, parseModelSpec(a.modelAfter, 'modelAfter'));
  // issue 14: a new version of a registered model line, under its change control plan (nothing written if refused).
  const cc = await prepareChangeControl(s, { before: before.value as ModelSpec, after: after.value as ModelSpec, changeControl: a.changeControl, datasetType: a.dataset.type, purpose: a.purpose });
  // issue 14: the subjects of a cohort, as their salted commitments (existing ones are reused).
  const subjects = (a.cohort ?? []).map((m) => ({ kind: 'subject', value: m.subject }));
  const r = await s.commitments.with([{ kind: 'uri', value: a.dataset.uri }, ...subjects], async ([uri, ...committed]) => training(s, a, manifest, before, after, uri!, committed));
  return cc ? { ...r, model: await withChangeControl(s, cc, r.event, a.actor) } : r;
}

async function training(
  s: GovernanceState,
  a: v.InferOutput<typeof TRAINING>,
  manifest: SidecarDocument,
  before: SidecarDocument,
  after: SidecarDocument,
  uri: Commitment,
  subjects: readonly Commitment[],
): Promise<TrainingResult> {
  const dataset = { uri: uri.c.commitment, digest: a.dataset.digest, type: a.dataset.type };
  const documents = { training: manifest.hash, modelBefore: before.hash, modelAfter: after.hash };
  // issue 14: a cohort run's basis is its cohort (root, size, exclusions) and the cohort document.
  const executed = (decisions: readonly Decision[], cohort?: { fields: Record<string, unknown>; document: SidecarDocument }): Decided => ({
    type: EVENT.trainingExecuted,
    payload: s.checked(EVENT.trainingExecuted, {
      actor: a.actor.id,
      role: a.actor.role,
      purpose: a.purpose,
      dataset,
      ...(cohort
        ? { cohort: cohort.fields }
        : a.dataset.type === 'identified'
          ? { consents: decisions.map((d) => ({ policyId: d.policyId, policyVersion: d.policyVersion!, policyHash: d.policyHash!, provision: d.provision! })) }
          : { attestation: { method: a.attestation!.method, attestor: a.actor.id, ...(a.attestation!.document ? { document: a.attestation!.document } : {}) } }),
      computeBackend: a.computeBackend,
      documents: cohort ? { ...documents, cohort: cohort.document.hash } : documents,
    }),
    sidecar: { documents: cohort ? [manifest, before, after, cohort.document] : [manifest, before, after] },
  });
  if (a.cohort !== undefined) {
    const members = a.cohort.map((m, i) => ({ subject: subjects[i]!, policyId: m.policyId }));
    const r = await appendCohortTraining(s, a.actor, a.purpose, members, [uri], (fields, document) => executed([], { fields, document }));
    return { event: r.event, manifestHash: manifest.hash, decisions: [], cohort: r.cohort };
  }
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
