/**
 * Rebuilding an inference receipt from the store, re-checking every hash, with the inclusion proof
 * of its event against the latest signed checkpoint.
 * @module
 */
import { NotFoundError } from '../core/errors.js';
import { sha256, hashLeaf, bytesEqual, toHex } from '../core/hash.js';
import { computeCommitment } from '../core/commitment.js';
import { openCheckpoint } from '../core/checkpoint.js';
import { verifyInclusion } from '../core/merkle/inclusion.js';
import type { NoteVerifier } from '../core/note.js';
import { parseExplanationsDocument, parseReceipt, type ExplanationsDocument, type Receipt } from '../core/manifest.js';
import { logView, type LogReader, type LogSource, type SidecarReader } from '../log/reader.js';
import { GOVERNANCE_EVENT as EVENT, asLoggedEvent, recordField, stringField } from '../core/events.js';
import { erasureOfDocument } from './governance/documents.js';

/** One hash re-checked while rebuilding a receipt. */
export interface ReceiptCheck {
  readonly what: string;
  readonly ref: string;
  readonly ok: boolean;
  readonly detail?: string;
}

/** One artifact of a receipt. */
export interface ReceiptArtifact {
  readonly role: string;
  readonly commitment: string;
  /** The URI, only when opened. */
  readonly uri: string | null;
  readonly digest: string;
  readonly state: 'opened' | 'sealed' | 'erased';
}

/** Options of {@link rebuildReceipt}. */
export interface RebuildReceiptOptions {
  /**
   * Open the URI commitments to their values (default true: a library or CLI caller holds the
   * store, openings included). The HTTP API opens only for a permitted, logged request.
   */
  readonly open?: boolean;
}

/** A receipt rebuilt in full. */
export interface RebuiltReceipt {
  /** True when every check passed. */
  readonly ok: boolean;
  readonly eventIndex: number;
  readonly event: unknown;
  readonly receipt: Receipt | undefined;
  readonly pipeline: unknown;
  readonly model: unknown;
  readonly policy: unknown;
  /**
   * issue 14: the explanations document (method, parameters, output explained, URI commitment and
   * digest of each explanation artifact), as stored; undefined when the inference has none, or
   * when it was erased (then it is in `erased`).
   */
  readonly explanations: unknown;
  /**
   * The artifacts: their URI commitments, and the URIs themselves only when opened (`state`
   * 'opened'); 'sealed' when not asked to open, 'erased' when the opening was deleted.
   */
  readonly artifacts: readonly ReceiptArtifact[];
  /** The pipeline manifest or model spec when erased (then `pipeline` / `model` is undefined; the hash stays). */
  readonly erased: readonly ErasedDocument[];
  readonly checks: readonly ReceiptCheck[];
  readonly proof: { readonly treeSize: number; readonly rootHash: string; readonly leafHash: string; readonly path: readonly string[]; readonly checkpoint: string };
}

/** A document of the receipt erased by an ERASURE_PERFORMED event (its hash stays on the log). */
export interface ErasedDocument {
  readonly what: string;
  readonly hash: string;
  /** The ERASURE_PERFORMED event that erased it. */
  readonly erasureIndex: number;
}

async function loadDoc(sidecar: SidecarReader, what: string, hash: unknown, checks: ReceiptCheck[], erasable?: { reader: LogReader; erased: ErasedDocument[] }): Promise<unknown> {
  if (typeof hash !== 'string') {
    checks.push({ what, ref: String(hash), ok: false, detail: 'the event commits no such document' });
    return undefined;
  }
  const d = await sidecar.getDocument(hash);
  if (!d) {
    const at = erasable ? await erasureOfDocument(sidecar, erasable.reader, hash) : undefined;
    if (at !== undefined) {
      erasable!.erased.push({ what, hash, erasureIndex: at });
      checks.push({ what, ref: hash, ok: true, detail: `erased (by event ${at})` });
    } else {
      checks.push({ what, ref: hash, ok: false, detail: 'missing from the store' });
    }
    return undefined;
  }
  const ok = toHex(sha256(d.bytes)) === hash;
  checks.push({ what, ref: hash, ok, ...(ok ? {} : { detail: 'edited: does not hash to the committed hash' }) });
  try {
    return JSON.parse(d.bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Rebuilds the receipt of the INFERENCE_EXECUTED event at `eventIndex`: the event, the receipt,
 * pipeline, model and consent version documents, the artifact URI commitments (opened to the
 * URIs unless `options.open` is false), every hash re-checked, and the event's inclusion proof against the latest
 * checkpoint, verified with `verifiers`. `source` is an open {@link Log} (or any {@link LogView}), or a
 * store to read it from.
 * @throws {NotFoundError} RECEIPT_NOT_FOUND when the entry is not an inference event
 * @throws {VerificationError} when the checkpoint or the inclusion proof does not verify
 */
export async function rebuildReceipt(source: LogSource, verifiers: readonly NoteVerifier[], origin: string, eventIndex: number, options: RebuildReceiptOptions = {}): Promise<RebuiltReceipt> {
  const open = options.open ?? true;
  const { reader, sidecar } = logView(source);
  const entry = await reader.getEntry(eventIndex);
  const event: unknown = JSON.parse(entry.bytes.toString('utf8'));
  const logged = asLoggedEvent(event);
  if (logged?.type !== EVENT.inferenceExecuted) {
    const type = logged?.type;
    throw new NotFoundError('RECEIPT_NOT_FOUND', `entry ${eventIndex} is a ${type} event, not ${EVENT.inferenceExecuted}`, { details: { eventIndex, type } });
  }
  const checks: ReceiptCheck[] = [];
  const docs = recordField(logged.payload, 'documents') ?? {};
  const eventInput = recordField(logged.payload, 'input');
  const rawReceipt = await loadDoc(sidecar, 'receipt', docs['receipt'], checks);
  let receipt: Receipt | undefined;
  if (rawReceipt !== undefined) {
    try {
      receipt = parseReceipt(rawReceipt);
    } catch {
      checks.push({ what: 'receipt is well formed', ref: String(docs['receipt']), ok: false, detail: 'not a receipt document' });
    }
  }
  const erased: ErasedDocument[] = [];
  const pipeline = await loadDoc(sidecar, 'pipeline manifest', docs['pipeline'], checks, { reader, erased });
  const model = await loadDoc(sidecar, 'model spec', docs['model'], checks, { reader, erased });
  const policy = await loadDoc(sidecar, 'consent policy version', docs['policy'], checks);
  const explained = docs['explanations'] === undefined ? undefined : await loadExplanations(sidecar, docs['explanations'], logged.payload['explanations'], checks, { reader, erased });
  if (receipt) {
    // The receipt must agree with the event and the documents the event commits.
    const agrees =
      receipt.event?.index === eventIndex &&
      receipt.pipeline === docs['pipeline'] &&
      receipt.model === docs['model'] &&
      receipt.consent?.policyHash === docs['policy'] &&
      receipt.input?.uri === stringField(eventInput, 'uri') &&
      receipt.input?.digest === stringField(eventInput, 'digest') &&
      receipt.explanations === docs['explanations'];
    checks.push({ what: 'receipt matches its event', ref: String(docs['receipt']), ok: agrees });
  }
  const artifacts: ReceiptArtifact[] = [];
  const refs = receipt
    ? [
        { role: 'input', ...receipt.input },
        ...receipt.outputs.map((o) => ({ role: `output ${o.name}`, uri: o.uri, digest: o.digest })),
        ...(explained?.parsed?.explanations ?? []).map((x, i) => ({ role: explanationRole(i, x), uri: x.uri, digest: x.digest })),
      ]
    : [];
  for (const a of refs) {
    const opening = await sidecar.getCommitment(a.uri);
    if (!opening) {
      artifacts.push({ role: a.role, commitment: a.uri, uri: null, digest: a.digest, state: 'erased' });
      checks.push({ what: `${a.role} URI commitment`, ref: a.uri, ok: true, detail: 'erased (the opening was deleted)' });
      continue;
    }
    const ok = computeCommitment(opening.salt, opening.value) === a.uri;
    // The opening is checked either way; its value leaves only when asked to open.
    artifacts.push({ role: a.role, commitment: a.uri, uri: open ? opening.value : null, digest: a.digest, state: open ? 'opened' : 'sealed' });
    checks.push({ what: `${a.role} URI commitment`, ref: a.uri, ok, ...(ok ? {} : { detail: 'the stored opening does not open it' }) });
  }
  const leafOk = bytesEqual(hashLeaf(entry.bytes), entry.leafHash);
  checks.push({ what: 'event leaf hash', ref: toHex(entry.leafHash), ok: leafOk });
  const latest = await reader.latestCheckpoint();
  if (!latest) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint');
  const cp = openCheckpoint(latest.note, verifiers, origin);
  const p = await reader.inclusionProof(eventIndex, cp.treeSize);
  const leafHash = hashLeaf(entry.bytes);
  verifyInclusion(eventIndex, cp.treeSize, leafHash, p.proof, cp.rootHash);
  checks.push({ what: 'inclusion proof against the signed checkpoint', ref: `${cp.treeSize}`, ok: true });
  return {
    ok: checks.every((c) => c.ok),
    eventIndex,
    event,
    receipt,
    pipeline,
    model,
    policy,
    explanations: explained?.raw,
    artifacts,
    erased,
    checks,
    proof: { treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), leafHash: toHex(leafHash), path: p.proof.map(toHex), checkpoint: latest.note },
  };
}

/** The artifact role of explanation `i` (0-based): `explanation 1 (kernel_shap of report_json)`. */
export function explanationRole(i: number, x: { readonly method: string; readonly output: string }): string {
  return `explanation ${i + 1} (${x.method} of ${x.output})`;
}

// issue 14: the explanations document the event commits: present and unedited (or erased), well
// formed, and in agreement with the event's own list (method, output, digest of each, in order).
async function loadExplanations(
  sidecar: SidecarReader,
  hash: unknown,
  onLog: unknown,
  checks: ReceiptCheck[],
  erasable: { reader: LogReader; erased: ErasedDocument[] },
): Promise<{ raw: unknown; parsed: ExplanationsDocument | undefined }> {
  const raw = await loadDoc(sidecar, 'explanations document', hash, checks, erasable);
  if (raw === undefined) return { raw, parsed: undefined };
  let parsed: ExplanationsDocument | undefined;
  try {
    parsed = parseExplanationsDocument(raw);
  } catch {
    checks.push({ what: 'explanations document is well formed', ref: String(hash), ok: false, detail: 'not an explanations document' });
    return { raw, parsed: undefined };
  }
  const logged = Array.isArray(onLog) ? (onLog as unknown[]) : [];
  const agrees =
    logged.length === parsed.explanations.length &&
    parsed.explanations.every((x, i) => {
      const e = logged[i] as Record<string, unknown> | null;
      return e !== null && typeof e === 'object' && e['method'] === x.method && e['output'] === x.output && e['digest'] === x.digest;
    });
  checks.push({ what: 'explanations match their event', ref: String(hash), ok: agrees, ...(agrees ? {} : { detail: 'the methods, outputs or digests differ from the event' }) });
  return { raw, parsed };
}
