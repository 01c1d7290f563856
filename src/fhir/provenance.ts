/**
 * An inference receipt (INFERENCE_EXECUTED) as a FHIR R4 Provenance: the outputs (by digest) are
 * the targets; the input, model, pipeline and consent are the entities; the actor is the agent;
 * the log's signed checkpoint is the signature.
 * @module
 */
import type { Provenance, ProvenanceEntity, Reference } from '@medplum/fhirtypes';
import { EVENT_TYPE, isRecord, recordField } from '../core/events.js';
import { inclusionExtension, logReference, purposeConcept, roleConcept, typedIdentifier, type AuditContext, type AuditSource } from './audit-event.js';
import { SID, STD } from './uris.js';

/** ISO/ASTM E1762 "Verification Signature": the log attests the entry, it did not author it. */
export const LOG_SIGNATURE_TYPE = Object.freeze({ system: STD.signatureType, code: '1.2.840.10065.1.12.1.5', display: 'Verification Signature' });

const digestRef = (kind: string, hex: string, display?: string): Reference => ({ identifier: typedIdentifier(kind, SID.sha256, hex), ...(display ? { display } : {}) });

/**
 * The Provenance of an INFERENCE_EXECUTED entry (undefined for any other type). Its id is the entry
 * index. `checkpoint` is the signed note (C2SP signed-note text) of the tree the inclusion proof
 * is against; it becomes the signature (base64 in `data`, `sigFormat` text/plain).
 */
export function toProvenance(src: AuditSource, ctx: AuditContext & { readonly checkpoint?: string }): Provenance | undefined {
  const { type, time, payload: p } = src.event;
  if (type !== EVENT_TYPE.inferenceExecuted) return undefined;
  const docs = recordField(p, 'documents');
  const input = recordField(p, 'input');
  const outputs = (Array.isArray(p['outputs']) ? p['outputs'] : []).filter(isRecord).filter((o) => typeof o['digest'] === 'string');
  const receipt = typeof docs?.['receipt'] === 'string' ? docs['receipt'] : undefined;
  // Target is 1..*: the outputs, or (an inference without outputs) the receipt itself.
  const target: Reference[] =
    outputs.length > 0 ? outputs.map((o) => digestRef('output', o['digest'] as string, typeof o['name'] === 'string' ? o['name'] : undefined)) : receipt ? [digestRef('receipt', receipt)] : [];
  const entity: ProvenanceEntity[] = [];
  const add = (role: ProvenanceEntity['role'], what: Reference | undefined) => {
    if (what) entity.push({ role, what });
  };
  add('source', typeof input?.['digest'] === 'string' ? digestRef('input', input['digest']) : undefined);
  add('source', typeof input?.['uri'] === 'string' ? { identifier: typedIdentifier('input-uri', SID.commitment, input['uri']) } : undefined);
  add('derivation', typeof docs?.['model'] === 'string' ? digestRef('model', docs['model']) : undefined);
  add('derivation', typeof docs?.['pipeline'] === 'string' ? digestRef('pipeline', docs['pipeline']) : undefined);
  add('source', typeof p['policyId'] === 'string' ? { identifier: { system: SID.policy, value: p['policyId'] } } : undefined);
  add('source', typeof docs?.['policy'] === 'string' ? digestRef('policy', docs['policy']) : undefined);
  add('source', receipt && outputs.length > 0 ? digestRef('receipt', receipt) : undefined);
  const actor = typeof p['actor'] === 'string' ? p['actor'] : undefined;
  const role = typeof p['role'] === 'string' ? p['role'] : undefined;
  const purpose = typeof p['purpose'] === 'string' ? p['purpose'] : undefined;
  return {
    resourceType: 'Provenance',
    id: String(src.index),
    extension: [inclusionExtension(src, ctx)],
    target,
    occurredDateTime: time,
    recorded: time,
    ...(purpose ? { reason: [purposeConcept(purpose)] } : {}),
    activity: { coding: [{ system: STD.dataOperation, code: 'EXECUTE', display: 'execute' }] },
    agent: [
      {
        type: { coding: [{ system: STD.provenanceParticipant, code: 'performer', display: 'Performer' }] },
        ...(role ? { role: [roleConcept(role)] } : {}),
        who: actor ? { identifier: { system: SID.actor, value: actor } } : logReference(ctx.origin),
      },
    ],
    ...(entity.length > 0 ? { entity } : {}),
    ...(ctx.checkpoint
      ? { signature: [{ type: [LOG_SIGNATURE_TYPE], when: time, who: logReference(ctx.origin), sigFormat: 'text/plain', data: Buffer.from(ctx.checkpoint, 'utf8').toString('base64') }] }
      : {}),
  };
}
