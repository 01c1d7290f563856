/**
 * Off-ledger documents the overlay writes: their kinds, how one is built (canonical JSON,
 * content-addressed), and the memo of documents built from caller input.
 * @module
 */
import { canonicalJsonBytes } from '../../core/canonical-json.js';
import { sha256, toHex } from '../../core/hash.js';
import { GOVERNANCE_EVENT as EVENT, parseLoggedEvent, stringField } from '../../core/events.js';
import type { SidecarDocument } from '../../log/log.js';
import type { LogReader, SidecarReader } from '../../log/reader.js';

/** Document kinds in the off-ledger store. */
export const DOC = {
  policy: 'consent-policy',
  pipeline: 'pipeline-manifest',
  model: 'model-spec',
  receipt: 'receipt',
  training: 'training-manifest',
  /** The exact bytes of an imported FHIR Consent resource (issue 12). */
  fhirConsent: 'fhir-consent',
  /** An inference's explanation artifacts (issue 14): methods, parameters, URI commitments, digests. */
  explanations: 'explanations',
  // issue 14: import of the reference's ledgers: a ledger line's exact bytes, and the reference's
  // reproducibility manifests and policy files as stored (they name subject ids and URIs in clear).
  legacyLine: 'legacy-line',
  legacyManifest: 'legacy-manifest',
  legacyPolicy: 'legacy-policy',
  /** issue 14: a training run's cohort: the sorted subject commitments of the included subjects. */
  cohort: 'training-cohort',
} as const;

/**
 * Document kinds that erasure may delete: free-form provenance (an explanations document holds
 * free-form parameters). Policies and receipts rebuild decisions and receipts.
 */
export const ERASABLE_DOCS: ReadonlySet<string> = new Set([
  DOC.pipeline,
  DOC.model,
  DOC.training,
  DOC.explanations,
  // issue 14: imported reference ledger lines, manifests and policies (they hold identifiers in clear)
  DOC.legacyLine,
  DOC.legacyManifest,
  DOC.legacyPolicy,
]);

/**
 * The document hashes an ERASURE_PERFORMED payload records as erased: `document` (kind `document`,
 * one provenance document) and `erasedDocuments[]` (kind `subject`: the FHIR Consent resources
 * imported for the subject's policies, issue 12).
 */
export function documentsErasedBy(payload: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  const one = payload['kind'] === 'document' ? stringField(payload, 'document') : undefined;
  if (one !== undefined) out.push(one);
  const many = payload['erasedDocuments'];
  if (Array.isArray(many)) for (const h of many) if (typeof h === 'string') out.push(h);
  return out;
}

/** The state namespace whose row `hash` names the ERASURE_PERFORMED event that erased document `hash`. */
export const ERASED_DOCUMENT_NS = 'erased-document';

/**
 * The index of the ERASURE_PERFORMED event that erased document `hash`, if the log has one: the
 * store's state row names the index, and the log entry itself is read to confirm it (the row alone
 * proves nothing).
 */
export async function erasureOfDocument(sidecar: Pick<SidecarReader, 'getState'>, reader: Pick<LogReader, 'size' | 'getEntry'>, hash: string): Promise<number | undefined> {
  const row = await sidecar.getState(ERASED_DOCUMENT_NS, hash);
  if (row === undefined) return undefined;
  try {
    const index = (JSON.parse(row) as { index?: unknown }).index;
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0 || index >= (await reader.size())) return undefined;
    const e = parseLoggedEvent((await reader.getEntry(index)).bytes);
    return e?.type === EVENT.erasure && documentsErasedBy(e.payload).includes(hash) ? index : undefined;
  } catch {
    return undefined;
  }
}

/** A document ready for the sidecar, with the value it encodes. */
export type BuiltDocument = SidecarDocument & { value: unknown };

/** The document of `value`: its canonical JSON bytes and their SHA-256. */
export function doc(kind: string, value: unknown): BuiltDocument {
  const bytes = canonicalJsonBytes(value);
  return { hash: toHex(sha256(bytes)), kind, bytes, value };
}

const MEMO_SIZE = 256;

/**
 * Documents built from caller input, keyed by the input's JSON text (exact, cheap to compute): a
 * service sends the same pipeline and model with every request, validated and hashed once.
 */
export class DocumentMemo {
  readonly #memo = new Map<string, BuiltDocument>();

  get(input: unknown, build: () => BuiltDocument): BuiltDocument {
    let key: string;
    try {
      key = JSON.stringify(input);
    } catch {
      return build();
    }
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const d = build();
    this.#memo.set(key, d);
    if (this.#memo.size > MEMO_SIZE) this.#memo.delete(this.#memo.keys().next().value!);
    return d;
  }

  /** Drops every memoized copy of document `hash` (erased). */
  forget(hash: string): void {
    for (const [key, d] of this.#memo) if (d.hash === hash) this.#memo.delete(key);
  }
}
