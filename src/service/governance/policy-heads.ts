/**
 * Policy heads: the version of each consent policy the log committed last, derived from the log's
 * consent events through its verified scan (only entries a signed checkpoint covers; see
 * log/verified-scan.ts). The head rows in the store are a cache nothing here trusts.
 *
 * A decision sees the committed heads plus the changes sequenced earlier in its own batch (the
 * overlay, dropped if the batch is retried), and re-reads the policy document, checking it
 * against the hash on the log.
 * @module
 */
import { ConflictError } from '../../core/errors.js';
import { sha256, toHex } from '../../core/hash.js';
import { parseStoredPolicy, type ConsentPolicy } from '../../core/consent/policy.js';
import type { PolicyLookup } from '../../core/consent/evaluate.js';
import { GOVERNANCE_EVENT } from '../../core/events.js';
import type { Log } from '../../log/log.js';

/** A policy's current version, as committed on the log. */
export interface Head {
  readonly version: number;
  readonly hash: string;
  readonly index: number;
}

const CONSENT_TYPE_MARK = '"type":"CONSENT_';
/** The events that set a policy's version: created, revoked, updated (a FHIR re-import). */
export const CONSENT_CHANGES: ReadonlySet<string> = new Set([GOVERNANCE_EVENT.consentCreated, GOVERNANCE_EVENT.consentRevoked, GOVERNANCE_EVENT.consentUpdated]);
const HEX64 = /^[0-9a-f]{64}$/;
const RECENT_DOCS = 4096;

/**
 * The head a consent change entry sets (pure; the bytes as stored), or undefined for any other
 * entry. A byte search skips every other entry without parsing it (this runs over the whole log).
 */
export function consentHeadOf(bytes: Buffer, index: number): { policyId: string; head: Head; fhirRef?: string } | undefined {
  if (bytes.indexOf(CONSENT_TYPE_MARK) < 0) return undefined;
  let e: { type?: unknown; payload?: { policyId?: unknown; version?: unknown; documents?: { policy?: unknown }; source?: unknown; externalRef?: unknown } };
  try {
    e = JSON.parse(bytes.toString('utf8')) as typeof e;
  } catch {
    return undefined; // a malformed entry is the log verifier's finding
  }
  if (!CONSENT_CHANGES.has(e.type as string)) return undefined;
  const p = e.payload ?? {};
  const hash = p.documents?.policy;
  if (typeof p.policyId !== 'string' || !Number.isSafeInteger(p.version) || typeof hash !== 'string' || !HEX64.test(hash)) return undefined;
  // A policy imported from FHIR is found again by its identifier's commitment (the external reference).
  const fhirRef = e.type === GOVERNANCE_EVENT.consentCreated && typeof p.source === 'string' && typeof p.externalRef === 'string' && HEX64.test(p.externalRef) ? p.externalRef : undefined;
  return { policyId: p.policyId, head: { version: p.version as number, hash, index }, ...(fhirRef ? { fhirRef } : {}) };
}

/** The policy heads of one log, as this process knows them. */
export class PolicyHeads {
  readonly #log: Log;
  /** Committed policy heads. */
  readonly #heads = new Map<string, Head>();
  /** Heads changed by the batch being sequenced (dropped if that batch is retried). */
  readonly #overlay = new Map<string, Head>();
  #overlayBatch = -1;
  /** Policies imported from FHIR, by the commitment to their identifier (the first one created wins). */
  readonly #fhirRefs = new Map<string, string>();
  readonly #fhirRefOverlay = new Map<string, string>();
  /** Policy versions this process wrote, by hash: trustworthy without a store read. */
  readonly #recent = new Map<string, ConsentPolicy>();
  /**
   * Stored bytes already checked against a hash (and parsed): the store hands back the same
   * Buffer while nobody else has written to it, so a decision hashes and parses a policy document
   * once, not once per decision; bytes read anew are checked anew.
   */
  readonly #checked = new WeakMap<Buffer, { readonly hash: string; readonly policy: ConsentPolicy | undefined }>();

  /** Subscribes to the log's verified scan (call once, before the first {@link PolicyHeads.sync}). */
  constructor(log: Log) {
    this.#log = log;
    log.scan.subscribe({
      matches: (bytes) => bytes.indexOf(CONSENT_TYPE_MARK) >= 0,
      apply: (index, bytes) => {
        const head = consentHeadOf(bytes, index);
        // Never move a head back: this process may already hold a later one it committed itself.
        if (head && (this.#heads.get(head.policyId)?.index ?? -1) < index) this.#heads.set(head.policyId, head.head);
        if (head?.fhirRef && !this.#fhirRefs.has(head.fhirRef)) this.#fhirRefs.set(head.fhirRef, head.policyId);
      },
    });
  }

  // On open and after the log reloads (another writer appended): read the consent events the log
  // gained since the last look, through the log's verified scan (entries covered by a signed
  // checkpoint whose root they hash to; see log/verified-scan.ts). The first call reads the whole
  // log once; later calls read only new entries.
  async sync(): Promise<void> {
    await this.#log.scan.sync();
    this.#overlay.clear();
    this.#fhirRefOverlay.clear();
    this.#overlayBatch = -1;
  }

  /** The committed head of a policy, as last loaded. */
  committed(policyId: string): Head | undefined {
    return this.#heads.get(policyId);
  }

  // The head as the log has it now: read-only queries must see changes another process committed
  // (decisions get them by the reload on conflict), so the entries appended since are read first.
  async fresh(policyId: string): Promise<Head | undefined> {
    await this.#log.scan.sync();
    return this.#heads.get(policyId);
  }

  /** The head of a policy as seen by the entry being sequenced in batch `batchId`. */
  at(policyId: string, batchId: number): Head | undefined {
    this.#enterBatch(batchId);
    return this.#overlay.get(policyId) ?? this.#heads.get(policyId);
  }

  #enterBatch(batchId: number): void {
    if (batchId !== this.#overlayBatch) {
      this.#overlay.clear();
      this.#fhirRefOverlay.clear();
      this.#overlayBatch = batchId;
    }
  }

  /** The policy imported from FHIR under identifier commitment `ref`, as committed (read the log's new entries first). */
  async fhirPolicy(ref: string): Promise<string | undefined> {
    await this.#log.scan.sync();
    return this.#fhirRefs.get(ref);
  }

  /** The policy imported from FHIR under identifier commitment `ref`, as seen by the entry being sequenced in batch `batchId`. */
  fhirPolicyAt(ref: string, batchId: number): string | undefined {
    this.#enterBatch(batchId);
    return this.#fhirRefOverlay.get(ref) ?? this.#fhirRefs.get(ref);
  }

  /** Sets the policy of an identifier for the rest of the batch being sequenced (call from a decide callback). */
  stageFhirPolicy(ref: string, policyId: string): void {
    this.#fhirRefOverlay.set(ref, policyId);
  }

  /** Records a FHIR policy this process committed under identifier commitment `ref`. */
  committedFhirPolicy(ref: string, policyId: string): void {
    if (!this.#fhirRefs.has(ref)) this.#fhirRefs.set(ref, policyId);
  }

  /** Sets a head for the rest of the batch being sequenced (call from a decide callback). */
  stage(policyId: string, head: Head): void {
    this.#overlay.set(policyId, head);
  }

  /** Records a head this process committed, and the policy version it points at. */
  committedByUs(policyId: string, head: Head, policy: ConsentPolicy): void {
    this.#heads.set(policyId, head);
    this.#recent.set(head.hash, policy);
    if (this.#recent.size > RECENT_DOCS) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /**
   * Reads the committed current version of a policy and checks its document against the hash
   * on the log. Done before sequencing (it reads the store); the decision re-checks the head.
   */
  async preload(policyId: string, fresh = false): Promise<PolicyLookup> {
    const head = fresh ? await this.fresh(policyId) : this.#heads.get(policyId);
    if (!head) return { kind: 'unknown', policyId };
    const stored = await this.#log.sidecar.getDocument(head.hash);
    if (!stored) return { kind: 'tampered', policyId, version: head.version, hash: head.hash };
    let checked = this.#checked.get(stored.bytes);
    if (checked?.hash !== head.hash) {
      checked = { hash: toHex(sha256(stored.bytes)), policy: undefined };
      if (checked.hash === head.hash) {
        let policy = this.#recent.get(head.hash);
        try {
          policy ??= parseStoredPolicy(JSON.parse(stored.bytes.toString('utf8')));
        } catch {
          policy = undefined;
        }
        checked = { hash: head.hash, policy };
      }
      this.#checked.set(stored.bytes, checked);
    }
    if (checked.hash !== head.hash || !checked.policy) return { kind: 'tampered', policyId, version: head.version, hash: head.hash };
    return { kind: 'found', policy: checked.policy, hash: head.hash };
  }

  // At sequencing time: the lookup for the head the log has now. If the head moved since the
  // preload (a change sequenced in between), the new version is one this process wrote and holds
  // in memory; otherwise the operation is retried with a fresh preload.
  resolve(pre: PolicyLookup, policyId: string, batchId: number): PolicyLookup {
    const head = this.at(policyId, batchId);
    if (!head) return { kind: 'unknown', policyId };
    if (pre.kind !== 'unknown' && pre.hash === head.hash) return pre;
    const recent = this.#recent.get(head.hash);
    if (recent) return { kind: 'found', policy: recent, hash: head.hash };
    throw new ConflictError('POLICY_CHANGED', `policy ${policyId} changed while the request was prepared`);
  }
}
