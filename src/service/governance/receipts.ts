/**
 * Inference under consent, and the receipt it issues: the receipt document (stored off-ledger) is
 * built at sequencing time from the decision, and the INFERENCE_EXECUTED event commits its hash.
 * src/service/receipt.ts rebuilds and re-checks a receipt from the log.
 * @module
 */
import type * as v from 'valibot';
import { formatEntryTime } from '../../core/entry.js';
import type { Decision } from '../../core/consent/evaluate.js';
import { RECEIPT_SCHEMA, parseModelSpec, parsePipelineManifest, type ModelSpec, type Receipt } from '../../core/manifest.js';
import { GOVERNANCE_EVENT as EVENT } from '../../core/events.js';
import type { AppendResult } from '../../log/log.js';
import { INFERENCE, checkedOrParse, type Checked, type InferenceInput } from '../requests.js';
import type { Commitment } from './commitments.js';
import { attributesOf, requestOnLog, underConsent, type Gate } from './decisions.js';
import { ModelRefusedError, checkModelAt, declaredOnLog } from './models.js';
import { DOC, doc, type BuiltDocument } from './documents.js';
import { checkExplanations, explanationParts } from './explanations.js';
import type { GovernanceState } from './state.js';

/** What a recorded inference returns. */
export interface InferenceRecord {
  receipt: Receipt;
  receiptHash: string;
  event: AppendResult;
  decision: Decision;
}

/**
 * Records an inference under consent and returns its receipt (stored off-ledger; the
 * INFERENCE_EXECUTED event commits its hash).
 * @throws {ValidationError} VALIDATION_FAILED (nothing written)
 * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
 */
export async function recordInference(s: GovernanceState, request: InferenceInput | Checked<typeof INFERENCE>): Promise<InferenceRecord> {
  const a = checkedOrParse(INFERENCE, request, 'inference');
  s.checkCodes({ purpose: a.purpose, role: a.actor.role });
  // A service sends the same pipeline and model with every request: validated and hashed once.
  const pipeline = s.memo.get(a.pipeline, () => doc(DOC.pipeline, parsePipelineManifest(a.pipeline, 'pipeline')));
  const model = s.memo.get(a.model, () => doc(DOC.model, parseModelSpec(a.model, 'model')));
  const explanations = a.explanations ?? [];
  checkExplanations(
    s,
    explanations,
    a.outputs.map((o) => o.name),
  );
  const uris = [a.input.uri, ...a.outputs.map((o) => o.uri), ...explanations.map((x) => x.uri)].map((value) => ({ kind: 'uri', value }));
  return s.commitments.with(uris, async ([inUri, ...rest]) => inference(s, a, pipeline, model, inUri!, rest.slice(0, a.outputs.length), rest.slice(a.outputs.length)));
}

async function inference(
  s: GovernanceState,
  a: v.InferOutput<typeof INFERENCE>,
  pipeline: BuiltDocument,
  model: BuiltDocument,
  inUri: Commitment,
  outUris: readonly Commitment[],
  explanationUris: readonly Commitment[],
): Promise<InferenceRecord> {
  const input = { uri: inUri.c.commitment, digest: a.input.digest };
  const outputs = a.outputs.map((o, i) => ({ name: o.name, uri: outUris[i]!.c.commitment, digest: o.digest }));
  // issue 14: explanation artifacts, when given (absent: receipt and event are as before).
  const ex = a.explanations?.length ? explanationParts(a.explanations, explanationUris) : undefined;
  const attempted = { model: model.hash, pipeline: pipeline.hash, input };
  // issue 14: the model registry, checked at sequencing time before consent (docs/models.md).
  const declared = model.value as ModelSpec;
  let registered: { modelName: string; modelVersion: string } | undefined;
  const gate: Gate = (ctx) => {
    const check = checkModelAt(s, declared, ctx.batchId);
    registered = check.kind === 'approved' ? { modelName: check.model, modelVersion: check.version } : undefined;
    if (check.kind !== 'refused') return undefined;
    return {
      type: EVENT.inferenceRefused,
      payload: {
        operation: 'inference',
        reason: check.reason,
        state: check.state,
        actor: a.actor.id,
        role: a.actor.role,
        purpose: a.purpose,
        policyId: a.policyId,
        ...declaredOnLog(declared),
        weightsHash: declared.weightsHash,
        ...(check.registeredWeightsHash ? { registeredWeightsHash: check.registeredWeightsHash } : {}),
        model: model.hash,
        pipeline: pipeline.hash,
        input,
        ...requestOnLog(a),
      },
      error: (event) => new ModelRefusedError(check.reason, check.state, declared, event, check.registeredWeightsHash),
    };
  };
  const r = await underConsent(
    s,
    'inference',
    a.actor,
    attributesOf(a),
    [a.policyId],
    attempted,
    [inUri, ...outUris, ...explanationUris],
    1,
    (ctx, [decision]) => {
      const receipt: Receipt = {
        schema: RECEIPT_SCHEMA,
        event: { index: ctx.index, time: formatEntryTime(ctx.timeMs) },
        actor: a.actor.id,
        role: a.actor.role,
        purpose: a.purpose,
        consent: { policyId: a.policyId, version: decision!.policyVersion!, policyHash: decision!.policyHash! },
        input,
        outputs,
        pipeline: pipeline.hash,
        model: model.hash,
        ...(ex ? { explanations: ex.document.hash } : {}),
      };
      const rd = doc(DOC.receipt, receipt);
      const asRegistered = registered;
      const payload = s.checked(EVENT.inferenceExecuted, {
        actor: a.actor.id,
        role: a.actor.role,
        purpose: a.purpose,
        policyId: a.policyId,
        policyVersion: decision!.policyVersion!,
        provision: decision!.provision!,
        input,
        outputs: outputs.map((o) => ({ name: o.name, digest: o.digest })),
        documents: { receipt: rd.hash, policy: decision!.policyHash!, pipeline: pipeline.hash, model: model.hash, ...(ex ? { explanations: ex.document.hash } : {}) },
        ...requestOnLog(a),
        ...(ex ? { explanations: ex.onLog } : {}),
        ...(asRegistered ?? {}),
      });
      return {
        type: EVENT.inferenceExecuted,
        payload,
        sidecar: { documents: ex ? [pipeline, model, rd, ex.document] : [pipeline, model, rd] },
        result: { receipt, receiptHash: rd.hash },
        // The registry lists the inferences of each version.
        ...(asRegistered ? { onCommitted: () => s.models.apply(ctx.index, { type: EVENT.inferenceExecuted, time: formatEntryTime(ctx.timeMs), payload }) } : {}),
      };
    },
    undefined,
    gate,
  );
  return { ...r.result, event: r.event, decision: r.decisions[0]! };
}
