/**
 * Off-ledger documents the overlay writes: their kinds, how one is built (canonical JSON,
 * content-addressed), and the memo of documents built from caller input.
 * @module
 */
import { canonicalJsonBytes } from '../../core/canonical-json.js';
import { sha256, toHex } from '../../core/hash.js';
import type { SidecarDocument } from '../../log/log.js';

/** Document kinds in the off-ledger store. */
export const DOC = {
  policy: 'consent-policy',
  pipeline: 'pipeline-manifest',
  model: 'model-spec',
  receipt: 'receipt',
  training: 'training-manifest',
  /** The exact bytes of an imported FHIR Consent resource (issue 12). */
  fhirConsent: 'fhir-consent',
} as const;

/** Document kinds that erasure may delete: free-form provenance. Policies and receipts rebuild decisions and receipts. */
export const ERASABLE_DOCS: ReadonlySet<string> = new Set([DOC.pipeline, DOC.model, DOC.training]);

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
