/**
 * State derived from the log (tokens, policy heads) built only from entries a signed checkpoint
 * covers. One scan feeds every subscriber: it reads the entries from its position up to the latest
 * stored checkpoint's size, hashes each (RFC 9162 leaf hash) into its own {@link Frontier}, opens
 * that checkpoint with the log's own verifier and compares roots, and only then hands the entries
 * it buffered to the subscribers. Entry rows beyond the latest checkpoint are ignored; entry bytes
 * that do not hash to the signed root are refused (LOG_INTEGRITY), whatever the store says.
 *
 * Cost: the first sync reads and hashes the whole log once; later ones read only the entries
 * appended since (O(new + log n)) and check one signature.
 * @module
 */
import { NotFoundError, VerificationError } from '../core/errors.js';
import { RFC6962_LEAF_PREFIX, bytesEqual, sha256 } from '../core/hash.js';
import { Frontier } from '../core/merkle/tree.js';
import { openCheckpoint } from '../core/checkpoint.js';
import type { NoteVerifier } from '../core/note.js';
import type { LogStore } from '../store/store.js';

/** A consumer of verified entries. */
export interface ScanSubscriber {
  /** Whether this entry concerns the subscriber (cheap: a byte search). */
  matches(bytes: Buffer): boolean;
  /** Applies a matching entry, once a signed checkpoint covering it has been checked; in index order. */
  apply(index: number, bytes: Buffer): void;
}

function integrity(message: string, details?: Record<string, unknown>): VerificationError {
  return new VerificationError('LOG_INTEGRITY', `${message}; run custos verify`, details ? { details } : undefined);
}

/** The verified scan of one log (see the module comment). */
export class VerifiedScan {
  readonly #store: LogStore;
  readonly #verifiers: readonly NoteVerifier[];
  readonly #origin: string;
  #frontier = Frontier.empty();
  #subs: ScanSubscriber[] = [];
  #late: ScanSubscriber[] = [];
  #note: string | undefined;
  #failed: VerificationError | undefined;
  #queue: Promise<void> = Promise.resolve();
  // The sync queued behind the running one and not yet started (see sync).
  #next: Promise<void> | undefined;

  constructor(store: LogStore, verifier: NoteVerifier, origin: string) {
    this.#store = store;
    this.#verifiers = [verifier];
    this.#origin = origin;
  }

  /** Entries below this index are verified and applied. */
  get position(): number {
    return this.#frontier.size;
  }

  /** Adds a subscriber; if the scan is already past 0 it is caught up (and checked) at the next sync. */
  subscribe(sub: ScanSubscriber): void {
    if (this.#frontier.size === 0) this.#subs.push(sub);
    else this.#late.push(sub);
  }

  /**
   * Verifies and applies the entries up to the latest signed checkpoint.
   * @throws {VerificationError} LOG_INTEGRITY when the stored entries or checkpoint do not match the signed log (sticky)
   * @throws {NotFoundError} ENTRY_NOT_FOUND when an entry the checkpoint covers is missing
   */
  sync(): Promise<void> {
    // Callers that arrive while a sync waits to start share it: it has not read the store yet, so
    // it sees everything committed before each of them called. (Without this, every concurrent
    // request made its own read of the latest checkpoint, one after another: a round trip each on
    // PostgreSQL.)
    if (this.#next) return this.#next;
    const run = this.#queue.then(() => {
      this.#next = undefined;
      return this.#sync();
    });
    this.#next = run;
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #sync(): Promise<void> {
    if (this.#failed) throw this.#failed;
    try {
      if (this.#late.length > 0) {
        const late = this.#late;
        const f = Frontier.empty();
        await this.#read(f, this.#frontier.size, late, this.#frontier.root());
        this.#late = [];
        this.#subs.push(...late);
      }
      const stored = await this.#store.latestCheckpoint();
      if (!stored || stored.note === this.#note) return;
      let cp;
      try {
        cp = openCheckpoint(stored.note, this.#verifiers, this.#origin);
      } catch (err) {
        throw integrity(`the latest stored checkpoint does not verify under the log's key (${(err as Error).message})`);
      }
      if (cp.treeSize < this.#frontier.size) {
        throw integrity(`the latest stored checkpoint (size ${cp.treeSize}) is older than one already verified (${this.#frontier.size})`);
      }
      const f = this.#frontier.clone();
      await this.#read(f, cp.treeSize, this.#subs, cp.rootHash);
      this.#frontier = f;
      this.#note = stored.note;
    } catch (err) {
      if (err instanceof VerificationError && err.code === 'LOG_INTEGRITY') this.#failed = err;
      throw err;
    }
  }

  // RFC 9162 leaf hash in a reused buffer (the scan hashes every entry of the log once).
  #scratch = Buffer.alloc(4096);
  #leafHash(bytes: Buffer): Buffer {
    if (bytes.length + 1 > this.#scratch.length) this.#scratch = Buffer.alloc(2 * (bytes.length + 1));
    this.#scratch[0] = RFC6962_LEAF_PREFIX;
    bytes.copy(this.#scratch, 1);
    return sha256(this.#scratch.subarray(0, bytes.length + 1));
  }

  // Advances `f` to `to`, buffering matching entries; applies them only if the root is `root`.
  async #read(f: Frontier, to: number, subs: readonly ScanSubscriber[], root: Buffer): Promise<void> {
    const from = f.size;
    const pending: { sub: ScanSubscriber; index: number; bytes: Buffer }[] = [];
    let next = from;
    if (to > from) {
      for await (const page of this.#store.entryPages(from, to)) {
        for (const e of page) {
          if (e.index !== next) throw new NotFoundError('ENTRY_NOT_FOUND', `entry ${next} is missing from the store; run custos verify`);
          f.push(this.#leafHash(e.bytes));
          for (const sub of subs) if (sub.matches(e.bytes)) pending.push({ sub, index: e.index, bytes: Buffer.from(e.bytes) });
          next++;
        }
      }
    }
    if (next !== to) throw new NotFoundError('ENTRY_NOT_FOUND', `entry ${next} is missing from the store; run custos verify`);
    if (!bytesEqual(f.root(), root)) {
      throw integrity(`entries ${from}..${to - 1} in the store do not match the signed checkpoint`, { from, treeSize: to });
    }
    for (const p of pending) p.sub.apply(p.index, p.bytes);
  }
}
