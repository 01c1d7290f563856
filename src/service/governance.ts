/**
 * The governance overlay: consent, data access, inference receipts and training records on the log.
 *
 * Invariants:
 * - Every attempt (access, inference) leaves exactly one event: executed, or CONSENT_DENIED with its
 *   reason. Invalid input leaves none and writes nothing.
 * - A decision is made when its event is sequenced, against the policy head (the version the log
 *   committed last before it), at the log's time. A revocation acknowledged before is therefore
 *   always seen. Heads are derived from the log's consent events (read once at open, then only new
 *   entries; only entries whose bytes hash to a checkpoint signed by the log's key, else
 *   LOG_INTEGRITY: see log/verified-scan.ts); the head rows in the store are a cache nothing here trusts, and `custos verify`
 *   reports rows that disagree with the log (POLICY_HEAD_MISMATCH).
 * - A decision re-reads the policy document and checks it against the hash on the log; a document
 *   edited in the store is refused (POLICY_TAMPERED) and the refusal is logged.
 * - Identifiers (subjects, artifact URIs) reach the log only as salted commitments; documents are
 *   stored off-ledger, content-addressed, in the same transaction as the event that commits them.
 * @module
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import * as v from 'valibot';
import { canonicalJsonBytes } from '../core/canonical-json.js';
import { ConflictError, ConsentError, NotFoundError, ValidationError, hasCode } from '../core/errors.js';
import { sha256, toHex } from '../core/hash.js';
import { COMMITMENT_SALT_BYTES, computeCommitment } from '../core/commitment.js';
import { formatEntryTime } from '../core/entry.js';
import {
  POLICY_ID,
  POLICY_SCHEMA,
  parsePolicyInput,
  parseStoredPolicy,
  type ConsentPolicy,
  type Provision,
} from '../core/consent/policy.js';
import { evaluateConsent, type Decision, type PolicyLookup } from '../core/consent/evaluate.js';
import {
  RECEIPT_SCHEMA,
  parseModelSpec,
  parsePipelineManifest,
  parseTrainingManifest,
  type Receipt,
} from '../core/manifest.js';
import { parseWith } from '../core/schema/parse.js';
import { checkEventPayload } from '../core/events.js';
import { createVocabulary, policyIdFromBytes, type RoleTable, type Vocabulary } from '../core/vocabulary.js';
import { ACCESS, ACTOR, CONSENT_CHECK, DOCUMENT_HASH, ERASE_KIND, ERASE_VALUE, INFERENCE, MAX_TRAINING_COHORT, TRAINING, type DataAccessInput, type InferenceInput, type TrainingInput } from './requests.js';
import type { AppendResult, Decided, Log, SequencingContext } from '../log/log.js';
import type { LogStore, ScrubReport, SidecarCommitment, SidecarDocument } from '../store/store.js';
import { systemClock, type Clock } from '../log/clock.js';

/** Event types written by the governance overlay. */
export const EVENT = {
  consentCreated: 'CONSENT_CREATED',
  consentRevoked: 'CONSENT_REVOKED',
  consentDenied: 'CONSENT_DENIED',
  dataAccessed: 'DATA_ACCESSED',
  inferenceExecuted: 'INFERENCE_EXECUTED',
  trainingExecuted: 'TRAINING_EXECUTED',
  erasure: 'ERASURE_PERFORMED',
} as const;

/** Document kinds in the off-ledger store. */
export const DOC = {
  policy: 'consent-policy',
  pipeline: 'pipeline-manifest',
  model: 'model-spec',
  receipt: 'receipt',
  training: 'training-manifest',
} as const;

export { TRAINING_DATASET_TYPES, MAX_TRAINING_COHORT } from './requests.js';
export type { DataAccessInput, InferenceInput, TrainingInput } from './requests.js';


/** Who acts. In the library and CLI the caller says; the HTTP server takes it from the token. */
export interface Actor {
  readonly id: string;
  readonly role: string;
}

/** A policy's current version, as committed on the log. */
interface Head {
  readonly version: number;
  readonly hash: string;
  readonly index: number;
}

/** What an event sequenced during an erasure's preparation links (see {@link Governance.erase}). */
interface LinkRecord {
  readonly batchId: number;
  readonly index: number;
  readonly policyId: string;
  /** Set by CONSENT_CREATED: the policy's subject commitment. */
  readonly subject?: string;
  /** URI commitments the event carries. */
  readonly uris: readonly string[];
  committed: boolean;
}

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

/** Options for {@link Governance.open}. */
export interface GovernanceOptions {
  readonly log: Log;
  /** Decisions use this clock through the log's sequencing time; the log must share it. */
  readonly clock?: Clock;
  /** Source of salts and policy ids (tests inject a deterministic one). */
  readonly randomBytes?: (n: number) => Buffer;
  /** Purpose codes added to the HL7 v3 PurposeOfUse codes. */
  readonly purposes?: readonly string[];
  /** The role table (default: DEFAULT_ROLES); roles on events and in policies must be in it. */
  readonly roles?: RoleTable;
  /** Purposes that allow training on identified data (default: HRESCH and its specializations). */
  readonly trainingPurposes?: readonly string[];
}


/** Document kinds that erasure may delete: free-form provenance. Policies and receipts rebuild decisions and receipts. */
const ERASABLE_DOCS: ReadonlySet<string> = new Set([DOC.pipeline, DOC.model, DOC.training]);

const CONSENT_TYPE_MARK = '"type":"CONSENT_';
const HEX64 = /^[0-9a-f]{64}$/;

// The head a consent change entry sets (pure; the bytes as stored), or undefined for any other entry.
function consentHeadOf(bytes: Buffer, index: number): { policyId: string; head: Head } | undefined {
  if (bytes.indexOf(CONSENT_TYPE_MARK) < 0) return undefined;
  let e: { type?: unknown; payload?: { policyId?: unknown; version?: unknown; documents?: { policy?: unknown } } };
  try {
    e = JSON.parse(bytes.toString('utf8')) as typeof e;
  } catch {
    return undefined; // a malformed entry is the log verifier's finding
  }
  if (e.type !== EVENT.consentCreated && e.type !== EVENT.consentRevoked) return undefined;
  const p = e.payload ?? {};
  const hash = p.documents?.policy;
  if (typeof p.policyId !== 'string' || !Number.isSafeInteger(p.version) || typeof hash !== 'string' || !HEX64.test(hash)) return undefined;
  return { policyId: p.policyId, head: { version: p.version as number, hash, index } };
}

/** A commitment an operation holds: new ones carry their opening in the operation's sidecar. */
interface Commitment {
  readonly c: SidecarCommitment;
  readonly isNew: boolean;
}

function doc(kind: string, value: unknown): SidecarDocument & { value: unknown } {
  const bytes = canonicalJsonBytes(value);
  return { hash: toHex(sha256(bytes)), kind, bytes, value };
}

const MAX_POLICY_RETRIES = 8;
const RECENT_DOCS = 4096;

/** The governance overlay over one log. */
export class Governance {
  readonly #log: Log;
  readonly #store: LogStore;
  readonly #clock: Clock;
  readonly #random: (n: number) => Buffer;
  readonly #vocab: Vocabulary;
  /** Committed policy heads. */
  #heads = new Map<string, Head>();
  /** Heads changed by the batch being sequenced (dropped if that batch is retried). */
  #overlay = new Map<string, Head>();
  #overlayBatch = -1;
  /** Policy versions this process wrote, by hash: trustworthy without a store read. */
  readonly #recent = new Map<string, ConsentPolicy>();
  /** Salts chosen for values whose commitment is not committed yet (one salt per value), with
   * the number of operations in flight that hold each. */
  readonly #pendingSalts = new Map<string, { c: SidecarCommitment; holders: number }>();
  readonly #docMemo = new Map<string, SidecarDocument & { value: unknown }>();
  /** Erasures being prepared, and the links of recently sequenced events (see #noteLink). */
  #erasures = 0;
  #links: LinkRecord[] = [];
  /** Times the log was reread because another writer grew it. */
  #reloads = 0;

  private constructor(o: GovernanceOptions) {
    this.#log = o.log;
    this.#store = o.log.store;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.randomBytes ?? nodeRandomBytes;
    this.#vocab = createVocabulary({
      ...(o.purposes ? { purposes: o.purposes } : {}),
      ...(o.roles ? { roles: o.roles } : {}),
      ...(o.trainingPurposes ? { trainingPurposes: o.trainingPurposes } : {}),
    });
  }

  /** The vocabularies this overlay checks codes against. */
  get vocabulary(): Vocabulary {
    return this.#vocab;
  }

  // Purposes and roles are codes from the configured vocabularies, never free text.
  #checkCodes(codes: { purpose?: string; role?: string }, prefix = ''): void {
    const issues: { path: string; message: string }[] = [];
    if (codes.purpose !== undefined && !this.#vocab.purposes.has(codes.purpose)) {
      issues.push({ path: `${prefix}purpose`, message: 'unknown purpose (HL7 v3 PurposeOfUse, or a configured purpose)' });
    }
    if (codes.role !== undefined && !this.#vocab.roles.has(codes.role)) issues.push({ path: `${prefix}actor.role`, message: 'unknown role (not in the role table)' });
    if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', `${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  }

  // Every event this overlay writes is checked against the registry: no field holds free text.
  #checked(type: string, payload: Record<string, unknown>): Record<string, unknown> {
    checkEventPayload(type, payload, this.#vocab);
    return payload;
  }

  /** Opens the overlay on a log, loading the policy heads. */
  static async open(options: GovernanceOptions): Promise<Governance> {
    const g = new Governance(options);
    // Heads come from the log's verified scan: only entries a signed checkpoint covers.
    options.log.scan.subscribe({
      matches: (bytes) => bytes.indexOf(CONSENT_TYPE_MARK) >= 0,
      apply: (index, bytes) => {
        const head = consentHeadOf(bytes, index);
        // Never move a head back: this process may already hold a later one it committed itself.
        if (head && (g.#heads.get(head.policyId)?.index ?? -1) < index) g.#heads.set(head.policyId, head.head);
      },
    });
    await g.#loadHeads();
    options.log.onReload(async () => {
      g.#reloads++;
      await g.#loadHeads();
    });
    return g;
  }

  get log(): Log {
    return this.#log;
  }

  // On open and after the log reloads (another writer appended): read the consent events the log
  // gained since the last look, through the log's verified scan (entries covered by a signed
  // checkpoint whose root they hash to; see log/verified-scan.ts). The first call reads the whole
  // log once; later calls read only new entries.
  async #loadHeads(): Promise<void> {
    await this.#log.scan.sync();
    this.#overlay.clear();
    this.#overlayBatch = -1;
  }

  // The head of a policy as seen by the entry being sequenced in batch `batchId`.
  #head(policyId: string, batchId: number): Head | undefined {
    if (batchId !== this.#overlayBatch) {
      this.#overlay.clear();
      this.#overlayBatch = batchId;
    }
    return this.#overlay.get(policyId) ?? this.#heads.get(policyId);
  }

  #remember(hash: string, policy: ConsentPolicy): void {
    this.#recent.set(hash, policy);
    if (this.#recent.size > RECENT_DOCS) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /**
   * The commitment to a value (its salt is reused per value), and whether it is new. A new salt
   * is remembered only while an operation holding it is in flight: every caller must pass what
   * it got to {@link Governance.#release} when its append has settled, committed or refused.
   */
  async #commit(kind: string, value: string): Promise<Commitment> {
    const key = `${kind}\u0000${value}`;
    const pending = this.#pendingSalts.get(key);
    if (pending) {
      pending.holders++;
      return { c: pending.c, isNew: true };
    }
    const existing = await this.#store.findCommitment(kind, value);
    if (existing) return { c: existing, isNew: false };
    const again = this.#pendingSalts.get(key);
    if (again) {
      again.holders++;
      return { c: again.c, isNew: true };
    }
    const salt = this.#random(COMMITMENT_SALT_BYTES);
    const c: SidecarCommitment = { commitment: computeCommitment(salt, value), kind, value, salt };
    this.#pendingSalts.set(key, { c, holders: 1 });
    return { c, isNew: true };
  }

  // Drops one hold on each new commitment; the salt is forgotten with the last one. By then the
  // opening is in the store (and found there) if any append that carried it committed.
  #release(cs: readonly Commitment[]): void {
    for (const x of cs) {
      if (!x.isNew) continue;
      const key = `${x.c.kind}\u0000${x.c.value}`;
      const p = this.#pendingSalts.get(key);
      if (p && p.c === x.c && --p.holders <= 0) this.#pendingSalts.delete(key);
    }
  }

  // Takes commitments to `values` (in order), runs `fn` with them, and releases them however it ends.
  async #withCommitments<T>(values: readonly { kind: string; value: string }[], fn: (cs: Commitment[]) => Promise<T>): Promise<T> {
    const cs: Commitment[] = [];
    try {
      for (const x of values) cs.push(await this.#commit(x.kind, x.value));
      return await fn(cs);
    } finally {
      this.#release(cs);
    }
  }

  /** Salts chosen for values not yet committed, held by operations in flight (0 when idle). */
  get pendingCommitments(): number {
    return this.#pendingSalts.size;
  }

  /**
   * Reads the committed current version of a policy and checks its document against the hash
   * on the log. Done before sequencing (it reads the store); the decision re-checks the head.
   */
  async #preload(policyId: string, fresh = false): Promise<PolicyLookup> {
    const head = fresh ? await this.#freshHead(policyId) : this.#heads.get(policyId);
    if (!head) return { kind: 'unknown', policyId };
    const recent = this.#recent.get(head.hash);
    const stored = await this.#store.getDocument(head.hash);
    if (!stored || toHex(sha256(stored.bytes)) !== head.hash) {
      return { kind: 'tampered', policyId, version: head.version, hash: head.hash };
    }
    if (recent) return { kind: 'found', policy: recent, hash: head.hash };
    try {
      return { kind: 'found', policy: parseStoredPolicy(JSON.parse(stored.bytes.toString('utf8'))), hash: head.hash };
    } catch {
      return { kind: 'tampered', policyId, version: head.version, hash: head.hash };
    }
  }

  // The head as the log has it now: read-only queries must see changes another process committed
  // (decisions get them by the reload on conflict), so the entries appended since are read first.
  async #freshHead(policyId: string): Promise<Head | undefined> {
    await this.#log.scan.sync();
    return this.#heads.get(policyId);
  }

  // At sequencing time: the lookup for the head the log has now. If the head moved since the
  // preload (a change sequenced in between), the new version is one this process wrote and holds
  // in memory; otherwise the operation is retried with a fresh preload.
  #resolve(pre: PolicyLookup, policyId: string, batchId: number): PolicyLookup {
    const head = this.#head(policyId, batchId);
    if (!head) return { kind: 'unknown', policyId };
    if (pre.kind !== 'unknown' && pre.hash === head.hash) return pre;
    const recent = this.#recent.get(head.hash);
    if (recent) return { kind: 'found', policy: recent, hash: head.hash };
    throw new ConflictError('POLICY_CHANGED', `policy ${policyId} changed while the request was prepared`);
  }

  // Runs an operation whose decide step may find the policy changed under it; retried afresh.
  async #withPolicyRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!hasCode(err, 'POLICY_CHANGED') || i >= MAX_POLICY_RETRIES) throw err;
      }
    }
  }

  // Documents built from caller input, keyed by the input's JSON text (exact, cheap to compute).
  #memo(input: unknown, build: () => SidecarDocument & { value: unknown }): SidecarDocument & { value: unknown } {
    let key: string;
    try {
      key = JSON.stringify(input);
    } catch {
      return build();
    }
    const hit = this.#docMemo.get(key);
    if (hit) return hit;
    const d = build();
    this.#docMemo.set(key, d);
    if (this.#docMemo.size > 256) this.#docMemo.delete(this.#docMemo.keys().next().value!);
    return d;
  }

  #commitments(...cs: Commitment[]): SidecarCommitment[] {
    return cs.filter((x) => x.isNew).map((x) => x.c);
  }

  // Records what the event being sequenced links (its policy, and the subject or URI commitments
  // it carries), for an erasure whose scan of the stored log ended before this event was
  // committed; returns the mark for onCommitted. Records of entries already committed are dropped
  // while no erasure is being prepared (an erasure started later scans them in the store).
  #noteLink(ctx: SequencingContext, policyId: string, subject: string | undefined, uris: readonly string[]): () => void {
    if (this.#erasures === 0 && this.#links.length >= 1024) {
      const size = this.#log.size;
      this.#links = this.#links.filter((x) => x.index >= size && !x.committed);
    }
    const r: LinkRecord = { batchId: ctx.batchId, index: ctx.index, policyId, ...(subject === undefined ? {} : { subject }), uris, committed: false };
    this.#links.push(r);
    return () => {
      r.committed = true;
    };
  }

  // ---- consent ----------------------------------------------------------------------------

  /**
   * Creates version 1 of a consent policy. Custos generates the policy id (opaque: it never
   * carries a name); the caller's own reference may be given as `externalRef`, which is logged
   * only as a salted commitment.
   * @throws {ValidationError} VALIDATION_FAILED (nothing written)
   * @throws {ConflictError} POLICY_EXISTS (nothing written)
   */
  async createConsent(input: unknown, actor: Actor): Promise<{ policy: ConsentPolicy; hash: string; event: AppendResult }> {
    const parsed = parsePolicyInput(input, this.#vocab);
    const who = parseWith(ACTOR, actor, 'actor');
    this.#checkCodes({ role: who.role });
    const p = { ...parsed, policyId: parsed.policyId ?? policyIdFromBytes(this.#random(16)) };
    const values = [{ kind: 'subject', value: p.subject }, ...(p.externalRef === undefined ? [] : [{ kind: 'external_ref', value: p.externalRef }])];
    return this.#withCommitments(values, async ([subject, externalRef]) => this.#createConsent(p, who, subject!, externalRef));
  }

  async #createConsent(
    p: ReturnType<typeof parsePolicyInput> & { policyId: string },
    who: { id: string; role: string },
    subject: Commitment,
    externalRef: Commitment | undefined,
  ): Promise<{ policy: ConsentPolicy; hash: string; event: AppendResult }> {
    let created: { policy: ConsentPolicy; hash: string } | undefined;
    const event = await this.#log.appendDecided((ctx: SequencingContext): Decided => {
      if (this.#head(p.policyId, ctx.batchId)) {
        throw new ConflictError('POLICY_EXISTS', `policy ${p.policyId} already exists`);
      }
      const time = formatEntryTime(ctx.timeMs);
      if (p.validUntil !== undefined && p.validFrom === undefined && p.validUntil < time) {
        throw new ValidationError('VALIDATION_FAILED', 'validUntil is before now (the default validFrom)', {
          issues: [{ path: 'validUntil', message: 'before validFrom' }],
        });
      }
      const provision: Provision = {
        type: 'permit',
        purposes: p.allowedPurposes,
        roles: p.allowedRoles,
        ...(p.provisions ? { provisions: p.provisions } : {}),
      };
      const policy: ConsentPolicy = {
        schema: POLICY_SCHEMA,
        policyId: p.policyId,
        version: 1,
        subject: subject.c.commitment,
        ...(externalRef ? { externalRef: externalRef.c.commitment } : {}),
        revocable: p.revocable,
        revoked: false,
        period: { start: p.validFrom ?? time, ...(p.validUntil ? { end: p.validUntil } : {}) },
        provision,
        previous: null,
        recordedAt: time,
        recordedBy: { actor: who.id, role: who.role },
      };
      const d = doc(DOC.policy, policy);
      const head: Head = { version: 1, hash: d.hash, index: ctx.index };
      this.#overlay.set(p.policyId, head);
      created = { policy, hash: d.hash };
      const linked = this.#noteLink(ctx, p.policyId, subject.c.commitment, externalRef ? [externalRef.c.commitment] : []);
      return {
        type: EVENT.consentCreated,
        payload: this.#checked(EVENT.consentCreated, {
          policyId: p.policyId,
          version: 1,
          subject: subject.c.commitment,
          ...(externalRef ? { externalRef: externalRef.c.commitment } : {}),
          purposes: [...p.allowedPurposes],
          roles: [...p.allowedRoles],
          validFrom: policy.period.start,
          ...(policy.period.end ? { validUntil: policy.period.end } : {}),
          revocable: p.revocable,
          actor: who.id,
          role: who.role,
          documents: { policy: d.hash },
        }),
        sidecar: {
          documents: [d],
          commitments: this.#commitments(subject, ...(externalRef ? [externalRef] : [])),
          state: [{ ns: 'policy', key: p.policyId, value: JSON.stringify(head) }],
        },
        onCommitted: () => {
          this.#heads.set(p.policyId, head);
          this.#remember(d.hash, policy);
          linked();
        },
      };
    });
    return { ...created!, event };
  }

  /**
   * Revokes a policy: a new version with `revoked: true`. From its acknowledgement on, no access or
   * inference on the policy is permitted.
   * @throws {NotFoundError} POLICY_NOT_FOUND
   * @throws {ConsentError} CONSENT_NOT_REVOCABLE, CONSENT_ALREADY_REVOKED, POLICY_TAMPERED (nothing written)
   */
  async revokeConsent(policyId: string, actor: Actor): Promise<{ policy: ConsentPolicy; hash: string; event: AppendResult }> {
    const id = parseWith(POLICY_ID, policyId, 'policy id');
    const who = parseWith(ACTOR, actor, 'actor');
    this.#checkCodes({ role: who.role });
    return this.#withPolicyRetry(async () => {
      const pre = await this.#preload(id);
      let revoked: { policy: ConsentPolicy; hash: string } | undefined;
      const event = await this.#log.appendDecided((ctx): Decided => {
        const current = this.#resolve(pre, id, ctx.batchId);
        if (current.kind === 'unknown') throw new NotFoundError('POLICY_NOT_FOUND', `no policy ${id}`);
        if (current.kind === 'tampered') {
          throw new ConsentError('POLICY_TAMPERED', `the stored document of ${id} version ${current.version} does not match the log`);
        }
        const prev = current.policy;
        if (!prev.revocable) throw new ConsentError('CONSENT_NOT_REVOCABLE', `policy ${id} is not revocable`);
        if (prev.revoked) throw new ConsentError('CONSENT_ALREADY_REVOKED', `policy ${id} is already revoked`);
        const policy: ConsentPolicy = {
          ...prev,
          version: prev.version + 1,
          revoked: true,
          previous: current.hash,
          recordedAt: formatEntryTime(ctx.timeMs),
          recordedBy: { actor: who.id, role: who.role },
        };
        const d = doc(DOC.policy, policy);
        const head: Head = { version: policy.version, hash: d.hash, index: ctx.index };
        this.#overlay.set(id, head);
        revoked = { policy, hash: d.hash };
        return {
          type: EVENT.consentRevoked,
          payload: this.#checked(EVENT.consentRevoked, { policyId: id, version: policy.version, previous: current.hash, actor: who.id, role: who.role, documents: { policy: d.hash } }),
          sidecar: { documents: [d], state: [{ ns: 'policy', key: id, value: JSON.stringify(head) }] },
          onCommitted: () => {
            this.#heads.set(id, head);
            this.#remember(d.hash, policy);
          },
        };
      });
      return { ...revoked!, event };
    });
  }

  /**
   * Decides a request now, without recording anything: what would happen, and why.
   * The answer is the one a recorded operation would get at this moment.
   */
  async checkConsent(policyId: string, request: { purpose: string; role: string }): Promise<Decision> {
    const id = parseWith(POLICY_ID, policyId, 'policy id');
    const req = parseWith(CONSENT_CHECK, request, 'consent request');
    this.#checkCodes({ purpose: req.purpose });
    if (!this.#vocab.roles.has(req.role)) throw new ValidationError('VALIDATION_FAILED', 'role: unknown role (not in the role table)', { issues: [{ path: 'role', message: 'unknown role' }] });
    return evaluateConsent(await this.#preload(id, true), req, this.#clock.now());
  }

  /** A policy's versions in order, each with its document, its check against the log, and its event. */
  async showConsent(policyId: string): Promise<{
    policyId: string;
    versions: { version: number; hash: string; index: number; documentOk: boolean; policy: ConsentPolicy | undefined; type: string; time: string }[];
  }> {
    const id = parseWith(POLICY_ID, policyId, 'policy id');
    const head = await this.#freshHead(id);
    if (!head) throw new NotFoundError('POLICY_NOT_FOUND', `no policy ${id}`);
    const out: { version: number; hash: string; index: number; documentOk: boolean; policy: ConsentPolicy | undefined; type: string; time: string }[] = [];
    // Walk back from the head through the version chain; each version's event is found by index.
    let hash: string | null = head.hash;
    let index = head.index;
    const seen = new Set<string>();
    while (hash && !seen.has(hash)) {
      seen.add(hash);
      const stored = await this.#store.getDocument(hash);
      const ok = stored !== undefined && toHex(sha256(stored.bytes)) === hash;
      let policy: ConsentPolicy | undefined;
      try {
        policy = stored ? parseStoredPolicy(JSON.parse(stored.bytes.toString('utf8'))) : undefined;
      } catch {
        policy = undefined;
      }
      const entry = await this.#log.reader.getEntry(index);
      const e = JSON.parse(entry.bytes.toString('utf8')) as { type: string; time: string; payload: { version: number } };
      out.push({ version: e.payload.version, hash, index, documentOk: ok, policy, type: e.type, time: e.time });
      hash = policy?.previous ?? null;
      if (hash) index = await this.#findPolicyEvent(id, hash, index);
    }
    return { policyId: id, versions: out.reverse() };
  }

  // The index of the consent event that committed `hash`, searching back from `before`.
  async #findPolicyEvent(policyId: string, hash: string, before: number): Promise<number> {
    for await (const page of this.#store.entryPagesDescending(0, before)) {
      for (const e of page) {
        const text = e.bytes.toString('utf8');
        if (!text.includes(hash)) continue;
        const p = JSON.parse(text) as { type: string; payload: { policyId?: string; documents?: { policy?: string } } };
        const isChange = p.type === EVENT.consentCreated || p.type === EVENT.consentRevoked;
        if (isChange && p.payload.policyId === policyId && p.payload.documents?.policy === hash) return e.index;
      }
    }
    throw new NotFoundError('ENTRY_NOT_FOUND', `no event commits version ${hash} of ${policyId}`);
  }

  // ---- operations under consent -------------------------------------------------------------

  // Appends the executed event if consent permits at sequencing time, CONSENT_DENIED otherwise.
  // With several policies (a training cohort) every one must permit; the first refusal is logged.
  async #underConsent<T>(
    operation: 'data_access' | 'inference' | 'training',
    actor: Actor,
    purpose: string,
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
    const openings = this.#commitments(...commitments);
    const deniedOpenings = this.#commitments(...commitments.slice(0, deniedCarries));
    const uris = commitments.map((x) => x.c.commitment);
    return this.#withPolicyRetry(async () => {
      const pre = await Promise.all(policyIds.map((id) => this.#preload(id)));
      let decisions: Decision[] = [];
      let refusal: Decision | undefined;
      let result: T | undefined;
      const event = await this.#log.appendDecided((ctx): Decided => {
        decisions = policyIds.map((id, i) => evaluateConsent(this.#resolve(pre[i]!, id, ctx.batchId), { purpose, role: actor.role }, ctx.timeMs));
        refusal = decisions.find((d) => d.effect === 'deny');
        const carried = refusal ? uris.slice(0, deniedCarries) : uris;
        const marks = policyIds.map((id) => this.#noteLink(ctx, id, undefined, carried));
        const linked = () => {
          for (const m of marks) m();
        };
        if (refusal) {
          const d = refusal;
          return {
            type: EVENT.consentDenied,
            payload: this.#checked(EVENT.consentDenied, {
              operation,
              reason: d.reason,
              policyId: d.policyId,
              ...(d.policyVersion === undefined ? {} : { policyVersion: d.policyVersion, policyHash: d.policyHash }),
              ...(d.provision === undefined ? {} : { provision: d.provision }),
              actor: actor.id,
              role: actor.role,
              purpose,
              ...denied,
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
  async recordDataAccess(input: DataAccessInput): Promise<{ event: AppendResult; decision: Decision }> {
    const a = parseWith(ACCESS, input, 'data access');
    this.#checkCodes({ purpose: a.purpose, role: a.actor.role });
    return this.#withCommitments([{ kind: 'uri', value: a.artifact.uri }], async ([uri]) => this.#recordDataAccess(a, uri!));
  }

  async #recordDataAccess(a: v.InferOutput<typeof ACCESS>, uri: Commitment): Promise<{ event: AppendResult; decision: Decision }> {
    const artifact = { uri: uri.c.commitment, digest: a.artifact.digest };
    const r = await this.#underConsent('data_access', a.actor, a.purpose, [a.policyId], { artifact }, [uri], 1, (_ctx, [decision]) => ({
      type: EVENT.dataAccessed,
      payload: this.#checked(EVENT.dataAccessed, {
        actor: a.actor.id,
        role: a.actor.role,
        purpose: a.purpose,
        policyId: a.policyId,
        policyVersion: decision!.policyVersion!,
        policyHash: decision!.policyHash!,
        provision: decision!.provision!,
        artifact,
        documents: { policy: decision!.policyHash! },
      }),
      result: undefined,
    }));
    return { event: r.event, decision: r.decisions[0]! };
  }

  /**
   * Records an inference under consent and returns its receipt (stored off-ledger; the
   * INFERENCE_EXECUTED event commits its hash).
   * @throws {ValidationError} VALIDATION_FAILED (nothing written)
   * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
   */
  async recordInference(request: InferenceInput): Promise<{ receipt: Receipt; receiptHash: string; event: AppendResult; decision: Decision }> {
    const a = parseWith(INFERENCE, request, 'inference');
    this.#checkCodes({ purpose: a.purpose, role: a.actor.role });
    // A service sends the same pipeline and model with every request: validated and hashed once.
    const pipeline = this.#memo(a.pipeline, () => doc(DOC.pipeline, parsePipelineManifest(a.pipeline, 'pipeline')));
    const model = this.#memo(a.model, () => doc(DOC.model, parseModelSpec(a.model, 'model')));
    const uris = [a.input.uri, ...a.outputs.map((o) => o.uri)].map((value) => ({ kind: 'uri', value }));
    return this.#withCommitments(uris, async ([inUri, ...outUris]) => this.#recordInference(a, pipeline, model, inUri!, outUris));
  }

  async #recordInference(
    a: v.InferOutput<typeof INFERENCE>,
    pipeline: SidecarDocument & { value: unknown },
    model: SidecarDocument & { value: unknown },
    inUri: Commitment,
    outUris: readonly Commitment[],
  ): Promise<{ receipt: Receipt; receiptHash: string; event: AppendResult; decision: Decision }> {
    const input = { uri: inUri.c.commitment, digest: a.input.digest };
    const outputs = a.outputs.map((o, i) => ({ name: o.name, uri: outUris[i]!.c.commitment, digest: o.digest }));
    const attempted = { model: model.hash, pipeline: pipeline.hash, input };
    const r = await this.#underConsent('inference', a.actor, a.purpose, [a.policyId], attempted, [inUri, ...outUris], 1, (ctx, [decision]) => {
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
      };
      const rd = doc(DOC.receipt, receipt);
      return {
        type: EVENT.inferenceExecuted,
        payload: this.#checked(EVENT.inferenceExecuted, {
          actor: a.actor.id,
          role: a.actor.role,
          purpose: a.purpose,
          policyId: a.policyId,
          policyVersion: decision!.policyVersion!,
          provision: decision!.provision!,
          input,
          outputs: outputs.map((o) => ({ name: o.name, digest: o.digest })),
          documents: { receipt: rd.hash, policy: decision!.policyHash!, pipeline: pipeline.hash, model: model.hash },
        }),
        sidecar: { documents: [pipeline, model, rd] },
        result: { receipt, receiptHash: rd.hash },
      };
    });
    return { ...r.result, event: r.event, decision: r.decisions[0]! };
  }

  /**
   * Records a training run.
   * - `identified` (subject-linked) data: decided at sequencing time under the consent of every
   *   subject (`policyIds`, at most {@link MAX_TRAINING_COHORT}), for a training purpose (by default
   *   HRESCH or one of its specializations). One refusal refuses the run; CONSENT_DENIED is logged.
   * - `deidentified` / `synthetic` data: no consent applies, so the caller attests how the data was
   *   made non-identifying (`attestation.method`, optionally the attestation document's digest); the
   *   attestor is the acting actor. The attestation is recorded on the event.
   * @throws {ValidationError} VALIDATION_FAILED (nothing written)
   * @throws {ConsentDeniedError} CONSENT_DENIED (a CONSENT_DENIED event was written)
   */
  async recordTraining(input: TrainingInput): Promise<{ event: AppendResult; manifestHash: string; decisions: readonly Decision[] }> {
    const a = parseWith(TRAINING, input, 'training run');
    this.#checkCodes({ purpose: a.purpose, role: a.actor.role });
    if (a.dataset.type === 'identified' && !this.#vocab.trainingPurposes.has(a.purpose)) {
      throw new ValidationError('VALIDATION_FAILED', `purpose ${a.purpose} is not a training purpose (${[...this.#vocab.trainingPurposes].join(', ')})`, {
        issues: [{ path: 'purpose', message: 'not a training purpose' }],
      });
    }
    const manifest = doc(DOC.training, parseTrainingManifest(a.manifest, 'manifest'));
    const before = doc(DOC.model, parseModelSpec(a.modelBefore, 'modelBefore'));
    const after = doc(DOC.model, parseModelSpec(a.modelAfter, 'modelAfter'));
    return this.#withCommitments([{ kind: 'uri', value: a.dataset.uri }], async ([uri]) => this.#recordTraining(a, manifest, before, after, uri!));
  }

  async #recordTraining(
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
      payload: this.#checked(EVENT.trainingExecuted, {
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
      const r = await this.#underConsent('training', a.actor, a.purpose, policyIds, { dataset, training: manifest.hash }, [uri], 1, (_ctx, decisions) => ({
        ...executed(decisions),
        result: undefined,
      }));
      return { event: r.event, manifestHash: manifest.hash, decisions: r.decisions };
    }
    const event = await this.#log.appendDecided(() => {
      const d = executed([]);
      return { ...d, sidecar: { ...d.sidecar, commitments: this.#commitments(uri) } };
    });
    return { event, manifestHash: manifest.hash, decisions: [] };
  }

  /**
   * Erasure: deletes the off-ledger openings of a value's commitments, so every log entry that
   * carries them becomes unlinkable to it. The tree is untouched; an ERASURE_PERFORMED event records
   * which commitments were erased (never the value), in the same transaction as the deletion.
   *
   * Erasing a subject erases every opening linked to it: its subject commitment(s), and every URI
   * commitment carried by an event recorded under a policy whose subject it is (data accesses,
   * inference inputs, inference outputs through the receipt, and denied attempts), up to and
   * including the events sequenced just before the erasure. A URI linked to several subjects is
   * erased with any of them. Events recorded later under the same policy create new openings:
   * revoke the subject's policies first.
   *
   * Kind `document` erases one off-ledger provenance document (a pipeline manifest, model spec or
   * training manifest) by its hash: the event records the hash (`document`), the row is deleted in
   * its transaction. The log keeps the hash; a later event that commits the same document stores
   * it again. Consent policies and receipts are never erased (VALIDATION_FAILED).
   *
   * Afterwards the store scrubs old copies of the deleted rows from its files ({@link LogStore.scrub}).
   * @throws {ValidationError} VALIDATION_FAILED (nothing written)
   */
  async erase(kind: 'subject' | 'uri' | 'external_ref' | 'document', value: string, actor: Actor): Promise<{ commitments: string[]; event: AppendResult | undefined; scrub?: ScrubReport; document?: string }> {
    const who = parseWith(ACTOR, actor, 'actor');
    const k = parseWith(ERASE_KIND, kind, 'erasure kind');
    const val = parseWith(ERASE_VALUE, value, 'erased value');
    if (k === 'document') return this.#eraseDocument(val, who);
    const own = await this.#store.findCommitments(k, val);
    if (own.length === 0) return { commitments: [], event: undefined };
    this.#checkCodes({ role: who.role });
    this.#erasures++;
    try {
      // The subject's policies and the URI commitments of their events, as committed up to
      // `scanned`; events sequenced after that are seen through #noteLink at sequencing time.
      const subjects = new Set(own.map((c) => c.commitment));
      const policies = new Set<string>();
      const linked = new Set<string>();
      let scanned = 0;
      for (let attempt = 0; ; attempt++) {
        const reloads = this.#reloads;
        const size = this.#log.size;
        if (k === 'subject') await this.#scanLinks(scanned, size, subjects, policies, linked);
        scanned = size;
        const found: string[] = [];
        for (const c of linked) if (await this.#store.getCommitment(c)) found.push(c);
        const base = [...subjects, ...found];
        let erased: string[] = [];
        try {
          const event = await this.#log.appendDecided((ctx): Decided => {
            // Another writer appended since the scan: its events were not seen; scan them first.
            if (this.#reloads !== reloads) throw new ConflictError('LOG_APPEND_CONFLICT', 'the log grew while the erasure was prepared');
            const all = new Set(base);
            if (k === 'subject') {
              const seen = (r: LinkRecord) => r.index >= scanned && (r.committed || (r.batchId === ctx.batchId && r.index < ctx.index));
              const pols = new Set(policies);
              for (const r of this.#links) if (seen(r) && r.subject !== undefined && subjects.has(r.subject)) pols.add(r.policyId);
              for (const r of this.#links) if (seen(r) && pols.has(r.policyId)) for (const u of r.uris) all.add(u);
            }
            erased = [...all].sort();
            return {
              type: EVENT.erasure,
              payload: this.#checked(EVENT.erasure, { kind: k, commitments: erased, actor: who.id, role: who.role }),
              sidecar: { erase: erased },
              onCommitted: () => {
                // No salt or value of an erased commitment stays in this process's caches.
                for (const [key, p] of this.#pendingSalts) if (all.has(p.c.commitment)) this.#pendingSalts.delete(key);
              },
            };
          });
          const scrub = await this.#store.scrub();
          return { commitments: erased, event, scrub };
        } catch (err) {
          if (!hasCode(err, 'LOG_APPEND_CONFLICT') || attempt >= MAX_POLICY_RETRIES) throw err;
        }
      }
    } finally {
      this.#erasures--;
    }
  }

  async #eraseDocument(hash: string, who: { id: string; role: string }): Promise<{ commitments: string[]; event: AppendResult | undefined; scrub?: ScrubReport; document?: string }> {
    parseWith(DOCUMENT_HASH, hash, 'erased document');
    const stored = await this.#store.getDocument(hash);
    if (!stored) return { commitments: [], event: undefined };
    if (!ERASABLE_DOCS.has(stored.kind)) {
      throw new ValidationError('VALIDATION_FAILED', `a ${stored.kind} document cannot be erased: only ${[...ERASABLE_DOCS].join(', ')} documents can`, { issues: [{ path: 'value', message: `a ${stored.kind} document cannot be erased` }], details: { kind: stored.kind } });
    }
    this.#checkCodes({ role: who.role });
    const event = await this.#log.appendDecided((ctx): Decided => ({
      type: EVENT.erasure,
      payload: this.#checked(EVENT.erasure, { kind: 'document', commitments: [], document: hash, actor: who.id, role: who.role }),
      // The state row points at this event, so a receipt can say `erased` after checking the log.
      sidecar: { eraseDocuments: [hash], state: [{ ns: 'erased-document', key: hash, value: JSON.stringify({ index: ctx.index }) }] },
      onCommitted: () => {
        // No copy of the erased document stays in this process's caches.
        for (const [key, d] of this.#docMemo) if (d.hash === hash) this.#docMemo.delete(key);
      },
    }));
    const scrub = await this.#store.scrub('documents');
    return { commitments: [], event, scrub, document: hash };
  }

  // Adds to `policies` the policies created in [from, to) whose subject is in `subjects`, and to
  // `uris` the URI commitments carried by events in [from, to) under one of `policies`.
  async #scanLinks(from: number, to: number, subjects: ReadonlySet<string>, policies: Set<string>, uris: Set<string>): Promise<void> {
    const HEX = /^[0-9a-f]{64}$/;
    const add = (x: unknown) => {
      const u = (x as { uri?: unknown } | undefined)?.uri;
      if (typeof u === 'string' && HEX.test(u)) uris.add(u);
    };
    for await (const page of this.#store.entryPages(from, to)) {
      for (const e of page) {
        // Canonical JSON: cheap byte filters before parsing.
        if (e.bytes.indexOf('"policyId"') < 0) continue; // consents[] of a training run hold "policyId" too
        let ent: { type: string; payload: Record<string, unknown> };
        try {
          ent = JSON.parse(e.bytes.toString('utf8')) as typeof ent;
        } catch {
          continue;
        }
        const p = ent.payload;
        if (ent.type === EVENT.trainingExecuted) {
          // Training on identified data, under the consents of a cohort.
          const consents = p['consents'];
          if (Array.isArray(consents) && consents.some((c) => policies.has(String((c as { policyId?: unknown }).policyId)))) add(p['dataset']);
          continue;
        }
        const policyId = p['policyId'];
        if (typeof policyId !== 'string') continue;
        if (ent.type === EVENT.consentCreated) {
          if (typeof p['subject'] === 'string' && subjects.has(p['subject'])) {
            policies.add(policyId);
            // The caller's own reference of the subject's consent.
            if (typeof p['externalRef'] === 'string' && HEX.test(p['externalRef'])) uris.add(p['externalRef']);
          }
          continue;
        }
        if (!policies.has(policyId)) continue;
        if (ent.type === EVENT.dataAccessed || ent.type === EVENT.consentDenied) {
          add(p['artifact']);
          add(p['input']);
          add(p['dataset']);
        } else if (ent.type === EVENT.inferenceExecuted) {
          add(p['input']);
          // The outputs' URI commitments are in the receipt the event commits.
          const receiptHash = (p['documents'] as { receipt?: unknown } | undefined)?.receipt;
          const stored = typeof receiptHash === 'string' ? await this.#store.getDocument(receiptHash) : undefined;
          if (stored) {
            try {
              const receipt = JSON.parse(stored.bytes.toString('utf8')) as { outputs?: unknown };
              if (Array.isArray(receipt.outputs)) for (const o of receipt.outputs) add(o);
            } catch {
              // an unreadable receipt is reported by custos verify
            }
          }
        }
      }
    }
  }
}
