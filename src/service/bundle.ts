/**
 * Building offline evidence from the log: the bundle of one inference event (src/core/bundle.ts
 * is the format and its verifier), and the in-toto attestations of `custos export --format intoto`.
 *
 * The DSSE envelopes are signed with the log's own key (the signer is passed in: the CLI loads it
 * from the data directory, the server has the open log's). Openings are patient-linked: the caller
 * passes `audit`, which is awaited with the commitments about to be opened before any value is
 * put in the bundle (a PATIENT_DATA_OPENED event); a redacted bundle opens nothing.
 * @module
 */
import { canonicalJson } from '../core/canonical-json.js';
import { INTOTO_PAYLOAD_TYPE, INTOTO_STATEMENT_V1, signDsse, type DsseEnvelope, type IntotoStatement } from '../core/dsse.js';
import { BUNDLE_DOCUMENTS, TRAINING_PREDICATE_TYPE, assembleBundle, dsseKeyId, inferenceStatement, type Bundle, type BundleDocumentName } from '../core/bundle.js';
import { NotFoundError } from '../core/errors.js';
import { hashLeaf, toHex } from '../core/hash.js';
import { GOVERNANCE_EVENT as EVENT, asLoggedEvent, recordField } from '../core/events.js';
import type { NoteSigner } from '../core/note.js';
import { logView, type LogSource } from '../log/reader.js';

/** Options of {@link buildBundle}. */
export interface BuildBundleOptions {
  /** Leave every opening out (nothing patient-linked is read). */
  readonly redact: boolean;
  /**
   * Called with the commitments about to be opened, before their values are read into the bundle:
   * the caller writes its PATIENT_DATA_OPENED event here. Required unless `redact`.
   */
  readonly audit?: (commitments: readonly string[]) => Promise<void>;
}

/** A built bundle, and the commitments it opened. */
export interface BuiltBundle {
  readonly bundle: Bundle;
  readonly opened: readonly string[];
}

/**
 * The bundle of the INFERENCE_EXECUTED event at `index`, proved against the latest checkpoint.
 * @throws {NotFoundError} RECEIPT_NOT_FOUND when the entry is not an inference event; CHECKPOINT_NOT_FOUND
 * @throws {ValidationError} INDEX_OUT_OF_RANGE
 */
export async function buildBundle(source: LogSource, signer: NoteSigner, index: number, options: BuildBundleOptions): Promise<BuiltBundle> {
  const { reader, sidecar } = logView(source);
  const latest = await reader.latestCheckpoint();
  if (!latest) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint');
  const entry = await reader.getEntry(index);
  const logged = asLoggedEvent(JSON.parse(entry.bytes.toString('utf8')) as unknown);
  if (logged?.type !== EVENT.inferenceExecuted) {
    throw new NotFoundError('RECEIPT_NOT_FOUND', `entry ${index} is a ${logged?.type} event, not ${EVENT.inferenceExecuted}`, { details: { eventIndex: index, type: logged?.type } });
  }
  if (index >= latest.treeSize) throw new NotFoundError('CHECKPOINT_NOT_FOUND', `entry ${index} is not covered by a signed checkpoint yet`);
  const committed = recordField(logged.payload, 'documents') ?? {};
  const documents: { [K in BundleDocumentName]?: Buffer } = {};
  for (const k of BUNDLE_DOCUMENTS) {
    const hash = committed[k];
    const d = typeof hash === 'string' ? await sidecar.getDocument(hash) : undefined;
    if (d) documents[k] = d.bytes;
  }
  let openings: { commitment: string; value: string; salt: Buffer }[] | undefined;
  let opened: string[] = [];
  if (!options.redact) {
    const receipt = documents.receipt ? (JSON.parse(documents.receipt.toString('utf8')) as { input?: { uri?: unknown }; outputs?: { uri?: unknown }[] }) : {};
    // issue 14: the explanation artifacts' URI commitments are in the explanations document.
    // (An edited, unparsable document opens nothing: the bundle's check names it.)
    let explained: { explanations?: { uri?: unknown }[] } = {};
    try {
      if (documents.explanations) explained = JSON.parse(documents.explanations.toString('utf8')) as typeof explained;
    } catch {
      explained = {};
    }
    const refs = [
      receipt.input?.uri,
      ...(Array.isArray(receipt.outputs) ? receipt.outputs.map((o) => o.uri) : []),
      ...(Array.isArray(explained.explanations) ? explained.explanations.map((x) => x.uri) : []),
    ].filter((u): u is string => typeof u === 'string');
    const unique = [...new Set(refs)];
    // Which openings still exist is itself read first; the values are read only after the audit event.
    const present: string[] = [];
    for (const c of unique) if (await sidecar.getCommitment(c)) present.push(c);
    if (options.audit === undefined) throw new Error('buildBundle: an unredacted bundle needs an audit callback');
    await options.audit(present);
    openings = [];
    for (const c of present) {
      const o = await sidecar.getCommitment(c);
      if (o) openings.push({ commitment: c, value: o.value, salt: o.salt });
    }
    opened = openings.map((o) => o.commitment);
  }
  const proof = await reader.inclusionProof(index, latest.treeSize);
  const bundle = assembleBundle({ logIndex: index, entryBytes: entry.bytes, documents, openings, treeSize: latest.treeSize, proof: proof.proof, checkpointNote: latest.note }, signer);
  return { bundle, opened };
}

/** The in-toto statement of a TRAINING_EXECUTED entry: subject the model-after weights. */
function trainingStatement(origin: string, index: number, leafHash: string, payload: Record<string, unknown>, modelAfter: unknown): IntotoStatement {
  const docs = recordField(payload, 'documents') ?? {};
  const spec = (modelAfter ?? {}) as { modelName?: unknown; modelVersion?: unknown; weightsHash?: unknown };
  const subject =
    typeof spec.weightsHash === 'string'
      ? { name: `${String(spec.modelName)}@${String(spec.modelVersion)}`, digest: { sha256: spec.weightsHash } }
      : // The model spec was erased: the subject is the spec document by its committed hash.
        { name: 'model-after-spec', digest: { sha256: String(docs['modelAfter']) } };
  return {
    _type: INTOTO_STATEMENT_V1,
    subject: [subject],
    predicateType: TRAINING_PREDICATE_TYPE,
    predicate: { log: { origin, index, leafHash }, event: payload, modelAfter: modelAfter ?? null },
  };
}

/**
 * DSSE envelopes of in-toto statements, one per INFERENCE_EXECUTED and TRAINING_EXECUTED event up
 * to `size`, oldest first. An inference whose receipt document is missing is skipped.
 */
export async function* intotoAttestations(source: LogSource, origin: string, signer: NoteSigner, size: number): AsyncGenerator<DsseEnvelope> {
  const { reader, sidecar } = logView(source);
  const keyid = dsseKeyId(signer);
  const sign = (st: IntotoStatement) => signDsse(INTOTO_PAYLOAD_TYPE, Buffer.from(canonicalJson(st), 'utf8'), keyid, (m) => signer.sign(m));
  const docOf = async (hash: unknown): Promise<unknown> => {
    if (typeof hash !== 'string') return undefined;
    const d = await sidecar.getDocument(hash);
    return d ? (JSON.parse(d.bytes.toString('utf8')) as unknown) : undefined;
  };
  for await (const page of reader.entryPages(0, size)) {
    for (const e of page) {
      const logged = asLoggedEvent(JSON.parse(e.bytes.toString('utf8')) as unknown);
      if (logged?.type === EVENT.inferenceExecuted) {
        const receipt = await docOf(recordField(logged.payload, 'documents')?.['receipt']);
        if (receipt !== undefined) yield sign(inferenceStatement(receipt));
      } else if (logged?.type === EVENT.trainingExecuted) {
        const after = await docOf(recordField(logged.payload, 'documents')?.['modelAfter']);
        yield sign(trainingStatement(origin, e.index, toHex(hashLeaf(e.bytes)), logged.payload, after));
      }
    }
  }
}
