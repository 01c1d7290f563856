/**
 * What events sequenced while an erasure is being prepared link (a policy, the subject or URI
 * commitments they carry, and the FHIR Consent documents they store), so that the erasure sees events its scan of the stored log missed.
 * @module
 */
import type { SequencingContext } from '../../log/log.js';

/** What an event sequenced during an erasure's preparation links (see erasure.ts). */
export interface LinkRecord {
  readonly batchId: number;
  readonly index: number;
  readonly policyId: string;
  /** Set by CONSENT_CREATED: the policy's subject commitment. */
  readonly subject?: string;
  /** URI commitments the event carries. */
  readonly uris: readonly string[];
  /** Hashes of FHIR Consent documents the event stores for the policy (issue 12: erased with its subject). */
  readonly documents: readonly string[];
  committed: boolean;
}

const KEEP = 1024;

/** The links of recently sequenced events, and the number of erasures being prepared. */
export class LinkLog {
  #erasures = 0;
  #records: LinkRecord[] = [];

  /** The records kept (every event sequenced while an erasure is prepared is among them). */
  get records(): readonly LinkRecord[] {
    return this.#records;
  }

  /**
   * Records what the event being sequenced links, for an erasure whose scan of the stored log
   * ended before this event was committed; returns the mark for onCommitted. Records of entries
   * already committed (below `logSize`) are dropped while no erasure is being prepared (an
   * erasure started later scans them in the store).
   */
  note(ctx: SequencingContext, logSize: () => number, policyId: string, subject: string | undefined, uris: readonly string[], documents: readonly string[] = []): () => void {
    if (this.#erasures === 0 && this.#records.length >= KEEP) {
      const size = logSize();
      this.#records = this.#records.filter((x) => x.index >= size && !x.committed);
    }
    const r: LinkRecord = { batchId: ctx.batchId, index: ctx.index, policyId, ...(subject === undefined ? {} : { subject }), uris, documents, committed: false };
    this.#records.push(r);
    return () => {
      r.committed = true;
    };
  }

  /** Runs an erasure's preparation: records are kept until it ends. */
  async preparing<T>(fn: () => Promise<T>): Promise<T> {
    this.#erasures++;
    try {
      return await fn();
    } finally {
      this.#erasures--;
    }
  }
}
