/**
 * Salted commitments to identifiers (subjects, URIs, external references): one salt per value,
 * found in the sidecar once committed, held in memory only while an operation carrying a new one
 * is in flight.
 * @module
 */
import { COMMITMENT_SALT_BYTES, computeCommitment } from '../../core/commitment.js';
import type { SidecarCommitment, SidecarReader } from '../../log/log.js';

/** A commitment an operation holds: new ones carry their opening in the operation's sidecar. */
export interface Commitment {
  readonly c: SidecarCommitment;
  readonly isNew: boolean;
}

/** The commitments of one overlay: the sidecar's, plus the salts chosen for operations in flight. */
export class CommitmentPool {
  readonly #sidecar: SidecarReader;
  readonly #random: (n: number) => Buffer;
  /** Salts chosen for values whose commitment is not committed yet (one salt per value), with
   * the number of operations in flight that hold each. */
  readonly #pending = new Map<string, { c: SidecarCommitment; holders: number }>();

  constructor(sidecar: SidecarReader, random: (n: number) => Buffer) {
    this.#sidecar = sidecar;
    this.#random = random;
  }

  /**
   * The commitment to a value (its salt is reused per value), and whether it is new. A new salt
   * is remembered only while an operation holding it is in flight: every caller must pass what
   * it got to {@link CommitmentPool.release} when its append has settled, committed or refused.
   */
  async commit(kind: string, value: string): Promise<Commitment> {
    const key = `${kind}\u0000${value}`;
    const pending = this.#pending.get(key);
    if (pending) {
      pending.holders++;
      return { c: pending.c, isNew: true };
    }
    const existing = await this.#sidecar.reusableCommitment(kind, value);
    if (existing) return { c: existing, isNew: false };
    const again = this.#pending.get(key);
    if (again) {
      again.holders++;
      return { c: again.c, isNew: true };
    }
    const salt = this.#random(COMMITMENT_SALT_BYTES);
    const c: SidecarCommitment = { commitment: computeCommitment(salt, value), kind, value, salt };
    this.#pending.set(key, { c, holders: 1 });
    return { c, isNew: true };
  }

  // Drops one hold on each new commitment; the salt is forgotten with the last one. By then the
  // opening is in the store (and found there) if any append that carried it committed.
  release(cs: readonly Commitment[]): void {
    for (const x of cs) {
      if (!x.isNew) continue;
      const key = `${x.c.kind}\u0000${x.c.value}`;
      const p = this.#pending.get(key);
      if (p && p.c === x.c && --p.holders <= 0) this.#pending.delete(key);
    }
  }

  /** Takes commitments to `values` (in order), runs `fn` with them, and releases them however it ends. */
  async with<T>(values: readonly { kind: string; value: string }[], fn: (cs: Commitment[]) => Promise<T>): Promise<T> {
    const cs: Commitment[] = [];
    try {
      for (const x of values) cs.push(await this.commit(x.kind, x.value));
      return await fn(cs);
    } finally {
      this.release(cs);
    }
  }

  /** The openings an event must carry: those of the new commitments among `cs`. */
  openings(...cs: Commitment[]): SidecarCommitment[] {
    return cs.filter((x) => x.isNew).map((x) => x.c);
  }

  /** Salts chosen for values not yet committed, held by operations in flight (0 when idle). */
  get pending(): number {
    return this.#pending.size;
  }

  /** Forgets the salt and value of every pending commitment in `erased`. */
  forget(erased: ReadonlySet<string>): void {
    for (const [key, p] of this.#pending) if (erased.has(p.c.commitment)) this.#pending.delete(key);
  }
}
