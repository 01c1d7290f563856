/**
 * Full verification of a stored log, in one streaming pass with O(log n) memory.
 *
 * It recomputes every leaf hash from the stored entry bytes and the tree from those leaves (never
 * trusting stored hashes), compares each stored hash with the recomputed one, checks the root at
 * every stored checkpoint and the signature of every checkpoint against the trusted keys. Since each
 * checkpoint's root must equal the recomputed root at its size, all stored checkpoints are proven
 * consistent with each other. Findings name the first bad entry index.
 * @module
 */
import { bytesEqual, hashLeaf, toHex } from '../core/hash.js';
import { CustosError } from '../core/errors.js';
import { ENTRY_SCHEMA_VERSION } from '../core/entry.js';
import { Frontier, type CreatedNode } from '../core/merkle/tree.js';
import { openCheckpoint } from '../core/checkpoint.js';
import type { NoteVerifier } from '../core/note.js';
import type { LogStore, StoredCheckpoint } from '../store/store.js';

/** What kind of defect a finding reports. Stable strings, listed in docs/log-format.md. */
export type FindingKind =
  | 'ENTRY_MISSING'
  | 'ENTRY_INDEX_MISMATCH'
  | 'LEAF_HASH_MISMATCH'
  | 'NODE_HASH_MISMATCH'
  | 'NODE_MISSING'
  | 'NO_CHECKPOINT'
  | 'CHECKPOINT_INVALID'
  | 'CHECKPOINT_MISMATCH'
  | 'CHECKPOINT_ROOT_MISMATCH'
  | 'CHECKPOINT_BEYOND_LOG'
  | 'ENTRY_NOT_COVERED'
  | 'BUNDLE_MALFORMED';

/** One defect found by verification. */
export interface Finding {
  readonly kind: FindingKind;
  /** The first entry index the defect affects. */
  readonly index: number;
  /** For checkpoint findings: the checkpoint's tree size. */
  readonly treeSize?: number;
  readonly message: string;
}

/** The result of {@link verifyLog}. */
export interface VerifyReport {
  readonly ok: boolean;
  /** Entries stored. */
  readonly entries: number;
  /** Tree size of the latest signed checkpoint (0 if none). */
  readonly checkpointSize: number;
  /** Recomputed root at the latest checkpoint's size, hex. */
  readonly rootHex: string | undefined;
  readonly checkpointsChecked: number;
  readonly nodesChecked: number;
  /** The first bad entry index, when verification failed. */
  readonly firstBadIndex: number | undefined;
  /** Findings, in the order found (at most `maxFindings`). */
  readonly findings: readonly Finding[];
  readonly truncatedFindings: boolean;
}

/** Options for {@link verifyLog}. */
export interface VerifyLogOptions {
  readonly store: LogStore;
  /** Keys trusted to sign this log's checkpoints. */
  readonly verifiers: readonly NoteVerifier[];
  /** The log's origin; checkpoints with another origin are findings. */
  readonly origin?: string;
  /** Called after each page of entries with (entries verified, total). */
  readonly onProgress?: (done: number, total: number) => void;
  readonly maxFindings?: number;
}

/** Pulls items one at a time from an async iterable of pages. */
class PagedReader<T> {
  #it: AsyncIterator<readonly T[]>;
  #page: readonly T[] = [];
  #pos = 0;
  #done = false;
  constructor(pages: AsyncIterable<readonly T[]>) {
    this.#it = pages[Symbol.asyncIterator]();
  }
  async peek(): Promise<T | undefined> {
    while (this.#pos >= this.#page.length) {
      if (this.#done) return undefined;
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        return undefined;
      }
      this.#page = r.value;
      this.#pos = 0;
    }
    return this.#page[this.#pos];
  }
  /** Synchronous peek within the current page; undefined means "ask peek()". */
  peekSync(): T | undefined {
    return this.#pos < this.#page.length ? this.#page[this.#pos] : undefined;
  }
  skip(): void {
    this.#pos++;
  }
}

/**
 * Verifies the whole stored log. Never throws for a defect in the data: defects are findings.
 * @throws {StoreError} when the store cannot be read at all
 */
export async function verifyLog(options: VerifyLogOptions): Promise<VerifyReport> {
  // One consistent read snapshot: a writer appending (and repacking tiles) meanwhile is invisible.
  const snapshot = await options.store.readSnapshot();
  try {
    return await verifySnapshot(snapshot.store, options);
  } finally {
    await snapshot.release();
  }
}

async function verifySnapshot(store: LogStore, options: VerifyLogOptions): Promise<VerifyReport> {
  const { verifiers, origin } = options;
  const maxFindings = options.maxFindings ?? 100;
  const findings: Finding[] = [];
  let truncated = false;
  const add = (f: Finding) => {
    if (findings.length < maxFindings) findings.push(f);
    else truncated = true;
  };

  const stored = await store.treeSize();
  const latest = await store.latestCheckpoint();
  const total = Math.max(stored, latest?.treeSize ?? 0);
  if (!latest && stored > 0) add({ kind: 'NO_CHECKPOINT', index: 0, message: 'the log has entries but no signed checkpoint' });

  const checkpoints = new PagedReader<StoredCheckpoint>(store.checkpointPages());
  // Indices of entries found defective (ascending). Node and root mismatches above a defective
  // entry are its consequences: they are attributed to it, so the first bad index is the entry's.
  const entryDefects: number[] = [];
  const defectIn = (lo: number, hi: number): number | undefined => {
    let a = 0;
    let b = entryDefects.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (entryDefects[m]! < lo) a = m + 1;
      else b = m;
    }
    const d = entryDefects[a];
    return d !== undefined && d < hi ? d : undefined;
  };
  const entryDefect = (f: Finding) => {
    if (entryDefects[entryDefects.length - 1] !== f.index) entryDefects.push(f.index);
    add(f);
  };
  const frontier = Frontier.empty();
  let checkpointsChecked = 0;
  let nodesChecked = 0;
  let lastGoodCheckpoint = 0;
  // Once an entry is missing, recomputed roots can no longer match; stop comparing them.
  let treeBroken = false;
  let rootAtLatest: Buffer | undefined;

  const checkCheckpoint = (cp: StoredCheckpoint, root: Buffer | undefined): void => {
    checkpointsChecked++;
    try {
      const opened = openCheckpoint(cp.note, verifiers, origin);
      if (opened.treeSize !== cp.treeSize || !bytesEqual(opened.rootHash, cp.rootHash)) {
        add({ kind: 'CHECKPOINT_MISMATCH', index: Math.min(opened.treeSize, cp.treeSize), treeSize: cp.treeSize, message: 'stored size or root differs from the signed note' });
      }
      if (root && !treeBroken && !bytesEqual(root, opened.rootHash)) {
        const cause = defectIn(lastGoodCheckpoint, cp.treeSize);
        add({
          kind: 'CHECKPOINT_ROOT_MISMATCH',
          index: cause ?? lastGoodCheckpoint,
          treeSize: cp.treeSize,
          message:
            cause === undefined
              ? `root recomputed from entries differs from the signed root at size ${cp.treeSize}: an entry in [${lastGoodCheckpoint}, ${cp.treeSize}) was rewritten together with its stored hashes`
              : `root recomputed from entries differs from the signed root at size ${cp.treeSize}, because of entry ${cause}`,
        });
        treeBroken = true;
      } else if (root && !treeBroken) {
        lastGoodCheckpoint = cp.treeSize;
      }
    } catch (err) {
      const code = err instanceof CustosError ? err.code : 'INTERNAL';
      add({ kind: 'CHECKPOINT_INVALID', index: Math.max(0, lastGoodCheckpoint), treeSize: cp.treeSize, message: `checkpoint at size ${cp.treeSize} does not verify (${code}): ${(err as Error).message}` });
    }
  };

  // Stored interior hashes are compared a page at a time: one getNodes call per page of entries.
  const compareNodes = async (created: readonly CreatedNode[]): Promise<void> => {
    if (created.length === 0) return;
    const stored = await store.getNodes(created);
    for (const n of created) {
      nodesChecked++;
      const firstLeaf = n.index * 2 ** n.level;
      const h = stored.get(n.seq);
      // A mismatch above a defective entry is that entry's consequence, already reported.
      if ((!h || !bytesEqual(h, n.hash)) && defectIn(firstLeaf, firstLeaf + 2 ** n.level) !== undefined) continue;
      if (!h) {
        add({ kind: 'NODE_MISSING', index: firstLeaf, message: `stored hash of the subtree starting at entry ${firstLeaf} (level ${n.level}) is missing` });
      } else if (!bytesEqual(h, n.hash)) {
        add({ kind: 'NODE_HASH_MISMATCH', index: firstLeaf, message: `stored hash of the subtree starting at entry ${firstLeaf} (level ${n.level}) differs from the recomputed one` });
      }
    }
  };

  let expected = 0;
  const suffix = `,"v":${ENTRY_SCHEMA_VERSION}}`;
  for await (const page of store.entryPages(0, stored)) {
    const interior: CreatedNode[] = [];
    for (const e of page) {
      while (expected < e.index) {
        entryDefect({ kind: 'ENTRY_MISSING', index: expected, message: `entry ${expected} is missing` });
        treeBroken = true;
        expected = e.index;
      }
      expected = e.index + 1;
      // The entry must say which index it is: catches swapped or moved entries.
      const prefix = `{"index":${e.index},"payload":`;
      if (
        e.bytes.length < prefix.length + suffix.length ||
        e.bytes.toString('latin1', 0, prefix.length) !== prefix ||
        e.bytes.toString('latin1', e.bytes.length - suffix.length) !== suffix
      ) {
        entryDefect({ kind: 'ENTRY_INDEX_MISMATCH', index: e.index, message: `entry ${e.index} is not a well-formed entry for index ${e.index} (moved, swapped or truncated)` });
      }
      if (e.anomaly !== undefined) {
        entryDefect({ kind: 'BUNDLE_MALFORMED', index: e.index, message: e.anomaly });
      }
      const leaf = hashLeaf(e.bytes);
      if (!bytesEqual(leaf, e.leafHash)) {
        entryDefect({ kind: 'LEAF_HASH_MISMATCH', index: e.index, message: `stored leaf hash of entry ${e.index} differs from the hash of its bytes` });
      }
      if (!treeBroken) {
        const created = frontier.append(leaf);
        for (let j = 1; j < created.length; j++) interior.push(created[j]!);
      }
      // Checkpoints at this size (and any orphaned ones below it).
      let cp = checkpoints.peekSync() ?? (await checkpoints.peek());
      while (cp && cp.treeSize <= e.index + 1) {
        const root = !treeBroken && cp.treeSize === frontier.size ? frontier.root() : undefined;
        checkCheckpoint(cp, root);
        if (cp === latest || cp.treeSize === latest?.treeSize) rootAtLatest = root;
        checkpoints.skip();
        cp = checkpoints.peekSync() ?? (await checkpoints.peek());
      }
    }
    await compareNodes(interior);
    options.onProgress?.(expected, total);
  }
  // Checkpoints that claim more entries than are stored: the log was truncated.
  for (let cp = await checkpoints.peek(); cp; checkpoints.skip(), cp = await checkpoints.peek()) {
    checkCheckpoint(cp, undefined);
    if (expected < cp.treeSize) {
      add({ kind: 'CHECKPOINT_BEYOND_LOG', index: expected, treeSize: cp.treeSize, message: `checkpoint covers ${cp.treeSize} entries but only ${expected} are stored: entry ${expected} onwards is missing` });
      expected = cp.treeSize;
    }
  }
  if (latest && stored > latest.treeSize) {
    add({ kind: 'ENTRY_NOT_COVERED', index: latest.treeSize, message: `entries from ${latest.treeSize} are not covered by any signed checkpoint` });
  }
  options.onProgress?.(total, total);

  const firstBadIndex = findings.length === 0 ? undefined : Math.min(...findings.map((f) => f.index));
  return {
    ok: findings.length === 0,
    entries: stored,
    checkpointSize: latest?.treeSize ?? 0,
    rootHex: rootAtLatest ? toHex(rootAtLatest) : undefined,
    checkpointsChecked,
    nodesChecked,
    firstBadIndex,
    findings,
    truncatedFindings: truncated,
  };
}
