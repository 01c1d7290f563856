/**
 * The witness (C2SP tlog-witness): checks a log's new checkpoint against the latest one it cosigned
 * for that log and, only when the new one is consistent with it, records it and cosigns it
 * (C2SP tlog-cosignature). It never cosigns a checkpoint that is inconsistent with one it has seen.
 *
 * The checks, in the spec's order, each with its status (src/core/errors.ts):
 * - a malformed body, note or checkpoint, or an old size above the checkpoint's: 400 VALIDATION_FAILED;
 * - an origin that is not a configured log: 404 WITNESS_LOG_UNKNOWN;
 * - no signature by a trusted key of that log (or a bad one): 403 WITNESS_CHECKPOINT_UNTRUSTED;
 * - an old size other than the size it cosigned last (0 if none): 409 WITNESS_OLD_SIZE_MISMATCH,
 *   answered with that size as text/x.tlog.size;
 * - the same size with another root (a fork): 409 WITNESS_FORK_DETECTED, recorded as evidence;
 * - a consistency proof that does not verify (or a non-empty one from size 0): 422 CONSISTENCY_PROOF_INVALID.
 * @module
 */
import { parseCheckpointBody, type Checkpoint } from '../core/checkpoint.js';
import { cosignCheckpoint, formatCosignerVerifierKey, type CosignerSigner } from '../core/cosignature.js';
import { ConflictError, CustosError, NotFoundError, ValidationError, VerificationError, hasCode } from '../core/errors.js';
import { EMPTY_ROOT, bytesEqual, toBase64 } from '../core/hash.js';
import { verifyConsistency } from '../core/merkle/consistency.js';
import { openNote, type NoteVerifier } from '../core/note.js';
import { assertWellFormedInput } from '../core/schema/parse.js';
import { parseAddCheckpointRequest } from '../core/tlog-witness.js';
import type { WitnessState } from './state.js';

/** What a witness needs. */
export interface WitnessOptions {
  /** The witness's cosigning key (type 0x04). */
  readonly signer: CosignerSigner & { readonly publicKey: Uint8Array };
  /** The log keys it trusts; a log's origin is its key's name (several keys may share one). */
  readonly logs: readonly NoteVerifier[];
  readonly state: WitnessState;
  /** Milliseconds since the epoch (default Date.now): the cosignatures' timestamps. */
  readonly now?: () => number;
}

/** A cosigned checkpoint: the response body and what was recorded. */
export interface CosignResult {
  readonly origin: string;
  readonly treeSize: number;
  readonly oldSize: number;
  /** The cosignature line(s), each ending in a newline: the 200 response body. */
  readonly body: string;
}

function bad(message: string, cause?: unknown): never {
  throw new ValidationError('VALIDATION_FAILED', message, { issues: [{ path: 'checkpoint', message }], ...(cause === undefined ? {} : { cause }) });
}

/** A C2SP tlog-witness for a configured set of logs. */
export class Witness {
  readonly #signer: WitnessOptions['signer'];
  readonly #logs: ReadonlyMap<string, readonly NoteVerifier[]>;
  readonly #state: WitnessState;
  readonly #now: () => number;

  constructor(o: WitnessOptions) {
    this.#signer = o.signer;
    const logs = new Map<string, NoteVerifier[]>();
    for (const k of o.logs) logs.set(k.name, [...(logs.get(k.name) ?? []), k]);
    this.#logs = logs;
    this.#state = o.state;
    this.#now = o.now ?? Date.now;
  }

  /** The witness's name. */
  get name(): string {
    return this.#signer.name;
  }

  /** The witness's cosigner verifier key (type 0x04), what logs and clients configure. */
  get verifierKey(): string {
    return formatCosignerVerifierKey(this.#signer.name, this.#signer.publicKey);
  }

  /** The origins of the configured logs. */
  get origins(): string[] {
    return [...this.#logs.keys()];
  }

  /** The origin a request body names, when it names a configured log (the rate limiter's key). */
  knownOrigin(text: string): string | undefined {
    const at = text.indexOf('\n\n');
    if (at < 0) return undefined;
    const end = text.indexOf('\n', at + 2);
    const origin = text.slice(at + 2, end < 0 ? undefined : end);
    return this.#logs.has(origin) ? origin : undefined;
  }

  /** The latest checkpoint cosigned for `origin`, if any. */
  latest(origin: string): { treeSize: number; rootHash: Buffer; note: string } | undefined {
    return this.#state.get(origin);
  }

  /**
   * Handles one add-checkpoint request body (attacker-controlled text).
   * @throws {ValidationError} VALIDATION_FAILED
   * @throws {NotFoundError} WITNESS_LOG_UNKNOWN
   * @throws {VerificationError} WITNESS_CHECKPOINT_UNTRUSTED, CONSISTENCY_PROOF_INVALID
   * @throws {ConflictError} WITNESS_OLD_SIZE_MISMATCH (details.treeSize: the size cosigned last), WITNESS_FORK_DETECTED
   */
  addCheckpoint(text: string): CosignResult {
    assertWellFormedInput(text, 'add-checkpoint body');
    const req = parseAddCheckpointRequest(text);
    // The note's form first (signed-note rules: characters, signature lines), before its origin
    // picks the keys: with no keys, a well-formed note fails only for want of a verifiable signature.
    try {
      openNote(req.note, []);
    } catch (err) {
      if (!hasCode(err, 'NOTE_NO_VERIFIABLE_SIGNATURE')) bad('malformed checkpoint note', err);
    }
    const split = req.note.lastIndexOf('\n\n');
    if (split < 0) bad('the checkpoint is not a signed note');
    let cp: Checkpoint;
    try {
      cp = parseCheckpointBody(req.note.slice(0, split + 1));
    } catch (err) {
      bad('malformed checkpoint', err);
    }
    const trusted = this.#logs.get(cp.origin);
    if (!trusted) throw new NotFoundError('WITNESS_LOG_UNKNOWN', 'this witness does not know the log of that origin', { details: { origin: cp.origin } });
    try {
      openNote(req.note, trusted);
    } catch (err) {
      if (hasCode(err, 'NOTE_MALFORMED')) bad('malformed checkpoint note', err);
      if (err instanceof CustosError) {
        throw new VerificationError('WITNESS_CHECKPOINT_UNTRUSTED', 'no valid signature by a trusted key of this log', { details: { origin: cp.origin }, cause: err });
      }
      throw err;
    }
    if (req.oldSize > cp.treeSize) bad('the old size is larger than the checkpoint size');

    const stored = this.#state.get(cp.origin);
    // Never cosigned: as if the empty tree had been (tlog-witness: old size zero).
    const prev = stored ?? { treeSize: 0, rootHash: EMPTY_ROOT };
    if (req.oldSize !== prev.treeSize) throw this.#sizeMismatch(prev.treeSize);
    if (cp.treeSize === prev.treeSize) {
      if (!bytesEqual(cp.rootHash, prev.rootHash)) {
        this.#state.recordFork({ origin: cp.origin, treeSize: cp.treeSize, cosignedRoot: prev.rootHash, note: req.note, seenAtMs: this.#now() });
        throw new ConflictError('WITNESS_FORK_DETECTED', 'a checkpoint of the size cosigned last with another root hash: the log forked', {
          details: { origin: cp.origin, treeSize: cp.treeSize, cosignedRoot: toBase64(prev.rootHash), root: toBase64(cp.rootHash) },
        });
      }
      if (req.proof.length !== 0) throw new VerificationError('CONSISTENCY_PROOF_INVALID', 'a proof between equal sizes must be empty');
    } else if (req.oldSize === 0) {
      if (req.proof.length !== 0) throw new VerificationError('CONSISTENCY_PROOF_INVALID', 'the proof from size 0 must be empty');
    } else {
      verifyConsistency(prev.treeSize, cp.treeSize, req.proof, prev.rootHash, cp.rootHash);
    }

    const nowMs = this.#now();
    // Compare-and-swap on what was checked: another process may have advanced meanwhile.
    if (!this.#state.advance(cp.origin, stored && { treeSize: stored.treeSize, rootHash: stored.rootHash }, { treeSize: cp.treeSize, rootHash: cp.rootHash, note: req.note }, nowMs)) {
      throw this.#sizeMismatch(this.#state.get(cp.origin)?.treeSize ?? 0);
    }
    const body = cosignCheckpoint(req.note, this.#signer, Math.floor(nowMs / 1000));
    return { origin: cp.origin, treeSize: cp.treeSize, oldSize: req.oldSize, body };
  }

  #sizeMismatch(treeSize: number): ConflictError {
    return new ConflictError('WITNESS_OLD_SIZE_MISMATCH', `the old size does not match the latest cosigned size ${treeSize}`, { details: { treeSize } });
  }
}
