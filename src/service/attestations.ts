/**
 * Attestations (issue 15, docs/attestations.md): one fact of the log issued as an SD-JWT signed
 * with the data directory's issuer key, in which the holder discloses only what they choose.
 *
 * - The issuer key is published and committed on the log (ATTESTATION_KEY_PUBLISHED: its RFC 7638
 *   thumbprint and the public key) before its first attestation. Whether it is, is derived from the
 *   log (its verified scan), never from a file.
 * - `receipt INDEX`: the INFERENCE_EXECUTED entry at INDEX, its receipt rebuilt and every hash
 *   re-checked first (an attestation never vouches for a tampered receipt); the claims come from the
 *   entry itself.
 * - `consent POLICY [at INDEX]`: the version of the policy in force at entry INDEX (default: now),
 *   its document checked against the hash on the log.
 * - Each issuance is an ATTESTATION_ISSUED event (codes, indices and hashes only), appended before
 *   the credential is returned.
 * @module
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { DISCLOSABLE_CLAIMS, issueAttestation, type AttestationKind, type ConsentFacts, type EntryInclusion, type IssuerJwk, type ReceiptFacts } from '../core/attestation.js';
import { openCheckpoint } from '../core/checkpoint.js';
import type { Provision } from '../core/consent/policy.js';
import { NotFoundError, ValidationError, VerificationError } from '../core/errors.js';
import { ATTESTATION_EVENT, asLoggedEvent, checkEventPayload, isRecord, recordField, stringField } from '../core/events.js';
import { hashLeaf, sha256, toHex } from '../core/hash.js';
import { verifyInclusion } from '../core/merkle/inclusion.js';
import { parseVerifierKey, type NoteVerifier } from '../core/note.js';
import type { Vocabulary } from '../core/vocabulary.js';
import type { AttestationKey } from '../log/attestation-key.js';
import { systemClock, type Clock } from '../log/clock.js';
import type { Log } from '../log/log.js';
import type { Governance } from './governance.js';
import { rebuildReceipt } from './receipt.js';

/**
 * The permission of the route that issues attestations: whoever may read receipts (the permission
 * table). A receipt attestation needs it alone; a consent attestation needs
 * {@link CONSENT_ATTESTATION_PERMISSION} as well (it hands out the policy's purposes and roles).
 */
export const ATTESTATION_PERMISSION = 'receipts';

/** The permission a consent attestation also needs: the one that reads consent policies (GET /api/v1/consents/:id). */
export const CONSENT_ATTESTATION_PERMISSION = 'consent:read';

/** The permission an attestation of `kind` is issued under (named on its ATTESTATION_ISSUED event). */
export function attestationPermission(kind: AttestationKind): 'receipts' | 'consent:read' {
  return kind === 'consent' ? CONSENT_ATTESTATION_PERMISSION : ATTESTATION_PERMISSION;
}

/** Who asks, and through which route (named on the ATTESTATION_ISSUED event). */
export interface AttestationRequester {
  readonly actor: string;
  readonly role: string;
  /** `METHOD /route/template` (the CLI names its own, `POST /cli/attest`). */
  readonly route: string;
}

/** An attestation as issued. */
export interface IssuedAttestation {
  readonly kind: AttestationKind;
  /** The compact SD-JWT, every claim disclosed (the holder removes what they will not show). */
  readonly credential: string;
  readonly eventIndex: number;
  readonly keyId: string;
  /** The ATTESTATION_KEY_PUBLISHED entry of the key. */
  readonly keyEvent: number;
  /** The ATTESTATION_ISSUED entry. */
  readonly issuedEvent: number;
  /** The claims it holds (names for `custos present --disclose`). */
  readonly disclosable: readonly string[];
}

/** Options of {@link Attestations}. */
export interface AttestationsOptions {
  readonly log: Log;
  readonly governance: Governance;
  readonly key: AttestationKey;
  /** The trusted log keys (checkpoints are checked before a proof is made against them). */
  readonly verifiers: readonly NoteVerifier[];
  readonly origin: string;
  /** Vocabulary the ATTESTATION_ISSUED payload is checked against (default the governance's). */
  readonly vocabulary?: Vocabulary;
  readonly clock?: Clock;
  readonly randomBytes?: (n: number) => Buffer;
}

const PUBLISHED_MARK = `"type":"${ATTESTATION_EVENT.keyPublished}"`;

/** Issues attestations of one log. */
export class Attestations {
  readonly #o: AttestationsOptions;
  readonly #vocab: Vocabulary;
  /** keyId (hex) → the ATTESTATION_KEY_PUBLISHED entry, from the verified scan. */
  readonly #published = new Map<string, number>();
  #publishing: Promise<number> | undefined;

  constructor(o: AttestationsOptions) {
    this.#o = o;
    this.#vocab = o.vocabulary ?? o.governance.vocabulary;
    o.log.scan.subscribe({
      matches: (bytes) => bytes.indexOf(PUBLISHED_MARK) >= 0,
      apply: (index, bytes) => {
        const e = asLoggedEvent(safeParse(bytes));
        const keyId = e?.type === ATTESTATION_EVENT.keyPublished ? stringField(e.payload, 'keyId') : undefined;
        if (keyId !== undefined && !this.#published.has(keyId)) this.#published.set(keyId, index);
      },
    });
  }

  /** The public issuer key. */
  get jwk(): IssuerJwk {
    return this.#o.key.jwk;
  }

  /** The issuer key and the entry that published it (undefined before the first attestation). */
  async issuerKey(): Promise<{ jwk: IssuerJwk; keyId: string; publishedAt: number | undefined }> {
    await this.#o.log.scan.sync();
    return { jwk: this.#o.key.jwk, keyId: this.#o.key.keyIdHex, publishedAt: this.#published.get(this.#o.key.keyIdHex) };
  }

  /** The ATTESTATION_KEY_PUBLISHED entry of the issuer key, appended first if the log has none. */
  async publish(): Promise<number> {
    // One publication at a time in this process; two processes may both publish (harmless: the
    // first entry is the one named).
    this.#publishing ??= (async () => {
      await this.#o.log.scan.sync();
      const known = this.#published.get(this.#o.key.keyIdHex);
      if (known !== undefined) return known;
      const payload = { keyId: this.#o.key.keyIdHex, publicKey: this.#o.key.jwk.x, alg: this.#o.key.jwk.alg };
      checkEventPayload(ATTESTATION_EVENT.keyPublished, payload, this.#vocab);
      const r = await this.#o.log.append(ATTESTATION_EVENT.keyPublished, payload);
      this.#published.set(this.#o.key.keyIdHex, r.index);
      return r.index;
    })().finally(() => {
      this.#publishing = undefined;
    });
    return this.#publishing;
  }

  /**
   * An attestation of the INFERENCE_EXECUTED entry at `index`.
   * @throws {NotFoundError} RECEIPT_NOT_FOUND, ENTRY_NOT_FOUND
   * @throws {VerificationError} RECEIPT_INVALID when a hash of the receipt does not re-check
   */
  async receipt(index: number, who: AttestationRequester): Promise<IssuedAttestation> {
    const r = await rebuildReceipt(this.#o.log, this.#o.verifiers, this.#o.origin, index, { open: false });
    if (!r.ok) {
      const failed = r.checks.filter((c) => !c.ok).map((c) => c.what);
      throw new VerificationError('RECEIPT_INVALID', `the receipt of entry ${index} does not re-check (${failed.join(', ')}): no attestation is issued for it`, {
        details: { eventIndex: index, failed },
      });
    }
    const e = asLoggedEvent(r.event)!;
    const p = e.payload;
    const docs = recordField(p, 'documents') ?? {};
    const outputs: Record<string, string> = {};
    for (const o of Array.isArray(p['outputs']) ? p['outputs'] : []) if (isRecord(o) && typeof o['name'] === 'string' && typeof o['digest'] === 'string') outputs[o['name']] = o['digest'];
    const facts: ReceiptFacts = {
      purpose: String(p['purpose']),
      role: String(p['role']),
      policyId: String(p['policyId']),
      policyVersion: Number(p['policyVersion']),
      decision: 'PERMITTED',
      time: e.time,
      modelDigest: String(docs['model']),
      pipelineDigest: String(docs['pipeline']),
      outputs,
    };
    const inclusion: EntryInclusion = {
      origin: this.#o.origin,
      entryIndex: index,
      leafHash: r.proof.leafHash,
      treeSize: r.proof.treeSize,
      rootHash: r.proof.rootHash,
      proof: r.proof.path,
      checkpoint: r.proof.checkpoint,
      logKey: await this.#logKey(),
    };
    return this.#issue('receipt', facts, inclusion, who);
  }

  /**
   * An attestation of the version of `policyId` in force at entry `at` (default: the latest).
   * The requester's role must hold `consent:read` (as GET /api/v1/consents/:id does): the
   * credential carries the policy's purposes and roles.
   * @throws {ValidationError} VALIDATION_FAILED when the role lacks `consent:read` (nothing written; over HTTP the route refuses first, 403 FORBIDDEN)
   * @throws {NotFoundError} POLICY_NOT_FOUND (also when the policy has no version at or before `at`)
   * @throws {VerificationError} DOCUMENT_HASH_MISMATCH when the version's document does not match the log
   */
  async consent(policyId: string, at: number | undefined, who: AttestationRequester): Promise<IssuedAttestation> {
    if (!this.#o.governance.may(who.role, CONSENT_ATTESTATION_PERMISSION)) {
      throw new ValidationError('VALIDATION_FAILED', `role ${who.role} may not attest a consent policy (it lacks ${CONSENT_ATTESTATION_PERMISSION})`, {
        issues: [{ path: 'actor.role', message: `lacks ${CONSENT_ATTESTATION_PERMISSION}` }],
      });
    }
    const { versions } = await this.#o.governance.showConsent(policyId);
    const v = versions.filter((x) => at === undefined || x.index <= at).at(-1);
    if (!v) throw new NotFoundError('POLICY_NOT_FOUND', `policy ${policyId} has no version at or before entry ${at}`, { details: { policyId, at } });
    if (!v.documentOk || !v.policy) {
      throw new VerificationError('DOCUMENT_HASH_MISMATCH', `version ${v.version} of ${policyId}: the stored document does not match the hash on the log`, {
        details: { policyId, version: v.version, hash: v.hash },
      });
    }
    const pol = v.policy;
    const any = ['*'];
    const facts: ConsentFacts = {
      policyId: pol.policyId,
      policyVersion: pol.version,
      policyHash: v.hash,
      purposes: pol.provision.purposes ?? any,
      roles: pol.provision.roles ?? any,
      decision: pol.provision.type,
      exceptions: countProvisions(pol.provision.provisions),
      revoked: pol.revoked,
      validFrom: pol.period.start,
      validUntil: pol.period.end,
      time: v.time,
    };
    return this.#issue('consent', facts, await this.#prove(v.index), who);
  }

  // The inclusion of entry `index` against the latest checkpoint, checked before it is handed out.
  async #prove(index: number): Promise<EntryInclusion> {
    const { reader } = this.#o.log;
    const entry = await reader.getEntry(index);
    const latest = await reader.latestCheckpoint();
    if (!latest) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint');
    const cp = openCheckpoint(latest.note, this.#o.verifiers, this.#o.origin);
    const p = await reader.inclusionProof(index, cp.treeSize);
    const leafHash = hashLeaf(entry.bytes);
    verifyInclusion(index, cp.treeSize, leafHash, p.proof, cp.rootHash);
    return {
      origin: this.#o.origin,
      entryIndex: index,
      leafHash: toHex(leafHash),
      treeSize: cp.treeSize,
      rootHash: toHex(cp.rootHash),
      proof: p.proof.map(toHex),
      checkpoint: latest.note,
      logKey: await this.#logKey(),
    };
  }

  // The log's verifier key as text, for verifiers; it must be one of the trusted keys.
  async #logKey(): Promise<string> {
    const text = await this.#o.log.reader.meta('verifier_key');
    const k = text === undefined ? undefined : parseVerifierKey(text);
    if (!k || !this.#o.verifiers.some((v) => v.name === k.name && v.keyId === k.keyId)) {
      throw new VerificationError('KEY_MALFORMED', "the log's recorded verifier key is not a trusted key");
    }
    return text!;
  }

  // Everything is read and checked before anything is written: the key's publication (first use
  // only), then the ATTESTATION_ISSUED event, then the credential is returned.
  async #issue(kind: AttestationKind, facts: ReceiptFacts | ConsentFacts, inclusion: EntryInclusion, who: AttestationRequester): Promise<IssuedAttestation> {
    const clock = this.#o.clock ?? systemClock;
    const random = this.#o.randomBytes ?? nodeRandomBytes;
    const credential = await issueAttestation({ kind, facts, inclusion, jwk: this.#o.key.jwk, sign: (d) => this.#o.key.sign(d), issuedAt: Math.floor(clock.now() / 1000), randomBytes: random });
    // Logged before it is returned: the credential's hash (its salts make it unguessable), never a claim.
    const payload = {
      kind,
      eventIndex: inclusion.entryIndex,
      keyId: this.#o.key.keyIdHex,
      keyEvent: 0,
      credential: toHex(sha256(Buffer.from(credential, 'ascii'))),
      actor: who.actor,
      role: who.role,
      route: who.route,
      permission: attestationPermission(kind),
    };
    // Checked before the key's publication is written (a role outside the table writes nothing).
    checkEventPayload(ATTESTATION_EVENT.issued, payload, this.#vocab);
    const keyEvent = await this.publish();
    payload.keyEvent = keyEvent;
    const r = await this.#o.log.append(ATTESTATION_EVENT.issued, payload);
    const disclosable =
      kind === 'receipt'
        ? [...DISCLOSABLE_CLAIMS.receipt.filter((c) => c !== 'outputs'), ...Object.keys((facts as ReceiptFacts).outputs).map((n) => `outputs.${n}`)]
        : DISCLOSABLE_CLAIMS.consent.flatMap((c) => {
            const f = facts as ConsentFacts;
            if (c === 'purposes' || c === 'roles') return f[c].map((x) => `${c}.${x}`);
            return c !== 'valid_until' || f.validUntil !== undefined ? [c] : [];
          });
    return { kind, credential, eventIndex: inclusion.entryIndex, keyId: this.#o.key.keyIdHex, keyEvent, issuedEvent: r.index, disclosable };
  }
}

function safeParse(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

// Nested provisions at every depth (iteratively: depth is bounded by the policy schema anyway).
function countProvisions(list: readonly Provision[] | undefined): number {
  let n = 0;
  const stack = [...(list ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    n++;
    stack.push(...(p.provisions ?? []));
  }
  return n;
}
