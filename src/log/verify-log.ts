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
import { HASH_SIZE, bytesEqual, hashChildren, hashLeaf, leafHashMatches, nodeHashMatches, toHex } from '../core/hash.js';
import { CustosError } from '../core/errors.js';
import { entryClaimsIndex } from '../core/entry.js';
import { Frontier, foldRight, type CreatedNode } from '../core/merkle/tree.js';
import { nodeSeq, rangeNodes } from '../core/merkle/node-id.js';
import { TILE_HEIGHT, TILE_WIDTH, rowOffset } from '../core/merkle/tiles.js';
import { openCheckpoint, openCheckpointAsync, parseCheckpointBody, type Checkpoint } from '../core/checkpoint.js';
import type { NoteVerifier } from '../core/note.js';
import type { BundleTile, LogStore, RawBundle, StoredCheckpoint, StoredEntry } from '../store/store.js';
import { checkBundleTile } from '../core/merkle/bundle-check.js';
import { availableParallelism } from 'node:os';
import { TilePool } from './tile-pool.js';
import type { TileResult } from './verify-worker.js';

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
  /**
   * Worker threads that hash complete tiles while this thread reads and combines them (at most 16).
   * Default: one per core (at most {@link MAX_WORKERS}) for a log of {@link PARALLEL_MIN_ENTRIES}
   * entries or more on a machine with two cores or more, else 0 (this thread alone). The findings
   * are the same either way; the store must offer `rawBundlePages` (both backends do).
   */
  readonly workers?: number;
}

/** Below this many stored entries, verification stays on one thread: starting two workers costs 40-60 ms, what one thread takes for about 50,000 entries. */
export const PARALLEL_MIN_ENTRIES = 100_000;
/** The most worker threads verification starts by default. */
export const MAX_WORKERS = 4;
/** The most worker threads verification starts when asked for more. */
const MAX_FORCED_WORKERS = 16;
// Pages of bundles (16 bundles each) in flight per worker: enough to keep it busy while this thread
// reads, few enough to bound memory (about 1 MB per page, twice: the store's rows and the copy).
const PAGES_PER_WORKER = 3;

/** The number of workers {@link verifyLog} starts for a log of `stored` entries. */
export function defaultWorkers(stored: number): number {
  const cores = availableParallelism();
  return stored >= PARALLEL_MIN_ENTRIES && cores >= 2 ? Math.min(cores, MAX_WORKERS) : 0;
}

const MAX_PENDING_SIGNATURES = 256;

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

/** The fast check of a bundle against its stored fat tile on this thread: the tile root, or undefined when anything differs. */
function checkTile(bt: BundleTile, tile: Buffer): Buffer | undefined {
  const start = bt.index * TILE_WIDTH;
  const stored = tile.toString('latin1');
  for (let j = 0; j < TILE_WIDTH; j++) {
    const bytes = bt.entries[j]!;
    if (!entryClaimsIndex(bytes, start + j) || !leafHashMatches(bytes, stored, j * HASH_SIZE)) return undefined;
  }
  for (let row = 1; row < TILE_HEIGHT; row++) {
    const below = rowOffset(row - 1) * HASH_SIZE;
    const at = rowOffset(row) * HASH_SIZE;
    for (let k = 0; k < TILE_WIDTH >> row; k++) {
      if (!nodeHashMatches(tile, below + 2 * k * HASH_SIZE, stored, at + k * HASH_SIZE)) return undefined;
    }
  }
  const lastRow = rowOffset(TILE_HEIGHT - 1) * HASH_SIZE;
  return hashChildren(tile.subarray(lastRow, lastRow + HASH_SIZE), tile.subarray(lastRow + HASH_SIZE, lastRow + 2 * HASH_SIZE));
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
  let checkpointsChecked = 0;
  let nodesChecked = 0;
  let lastGoodCheckpoint = 0;
  // Once an entry is missing, recomputed roots can no longer match; stop comparing them.
  let treeBroken = false;
  let rootAtLatest: Buffer | undefined;

  // Signatures are checked on Node's thread pool while this thread goes on hashing; at most
  // MAX_PENDING_SIGNATURES are in flight.
  let pendingSignatures: Promise<void>[] = [];
  const checkSignature = (cp: StoredCheckpoint, index: number): void => {
    pendingSignatures.push(
      openCheckpointAsync(cp.note, verifiers, origin).then(
        () => undefined,
        (err: unknown) => {
          const code = err instanceof CustosError ? err.code : 'INTERNAL';
          add({ kind: 'CHECKPOINT_INVALID', index, treeSize: cp.treeSize, message: `checkpoint at size ${cp.treeSize} does not verify (${code}): ${(err as Error).message}` });
        },
      ),
    );
  };
  const settleSignatures = async (atMost: number): Promise<void> => {
    if (pendingSignatures.length <= atMost) return;
    const all = pendingSignatures;
    pendingSignatures = [];
    await Promise.all(all);
  };

  const invalid = (cp: StoredCheckpoint, err: unknown): void => {
    const code = err instanceof CustosError ? err.code : 'INTERNAL';
    add({
      kind: 'CHECKPOINT_INVALID',
      index: Math.max(0, lastGoodCheckpoint),
      treeSize: cp.treeSize,
      message: `checkpoint at size ${cp.treeSize} does not verify (${code}): ${(err as Error).message}`,
    });
  };

  const checkCheckpoint = (cp: StoredCheckpoint, root: Buffer | undefined): void => {
    checkpointsChecked++;
    let body: Checkpoint | undefined;
    try {
      body = parseCheckpointBody(cp.note.slice(0, cp.note.lastIndexOf('\n\n') + 1));
    } catch {
      body = undefined;
    }
    const columnsOk = body !== undefined && body.treeSize === cp.treeSize && bytesEqual(body.rootHash, cp.rootHash);
    const rootOk = root === undefined || treeBroken || (body !== undefined && bytesEqual(root, body.rootHash));
    if (body && columnsOk && rootOk) {
      // The common case: the signature is checked off-thread; a failure becomes CHECKPOINT_INVALID.
      checkSignature(cp, Math.max(0, lastGoodCheckpoint));
      if (root && !treeBroken) lastGoodCheckpoint = cp.treeSize;
      return;
    }
    // Something differs: decide now whether the checkpoint is even genuine. A forged or malformed
    // note is CHECKPOINT_INVALID and nothing else; a genuine one that disagrees is a finding of its own.
    let opened: Checkpoint;
    try {
      opened = openCheckpoint(cp.note, verifiers, origin);
    } catch (err) {
      invalid(cp, err);
      return;
    }
    if (!columnsOk) {
      add({ kind: 'CHECKPOINT_MISMATCH', index: Math.min(opened.treeSize, cp.treeSize), treeSize: cp.treeSize, message: 'stored size or root differs from the signed note' });
    }
    if (!rootOk) {
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

  // The tree is recomputed in two parts: `local`, the tile of 256 entries being read (its leaves are
  // entries), and `upper`, the tree whose leaves are the roots of complete tiles (tree level 8).
  const upper = Frontier.empty();
  let local = Frontier.empty();
  const rootNow = (): Buffer => (local.size === 0 ? upper.root() : upper.rootWith(local.root()));
  let interior: CreatedNode[] = [];
  // A tile root joins the upper tree; the nodes it creates there are compared like any other.
  const addTileRoot = (tileIndex: number, tileRoot: Buffer): void => {
    for (const c of upper.append(tileRoot)) {
      const level = c.level + TILE_HEIGHT;
      interior.push({ level, index: c.index, seq: nodeSeq(level, c.index), hash: c.hash });
    }
    void tileIndex;
  };
  // Checkpoints up to `size`, with `rootAt(treeSize)` giving the recomputed root at that size.
  const checkCheckpointsUpTo = async (size: number, rootAt: (treeSize: number) => Buffer | undefined): Promise<void> => {
    let cp = checkpoints.peekSync() ?? (await checkpoints.peek());
    while (cp && cp.treeSize <= size) {
      const root = treeBroken ? undefined : rootAt(cp.treeSize);
      checkCheckpoint(cp, root);
      if (cp.treeSize === latest?.treeSize) rootAtLatest = root;
      checkpoints.skip();
      cp = checkpoints.peekSync() ?? (await checkpoints.peek());
    }
  };

  let expected = 0;

  // The general path: one entry at a time, with a finding for every defect.
  const verifyEntries = async (page: readonly StoredEntry[]): Promise<void> => {
    for (const e of page) {
      while (expected < e.index) {
        entryDefect({ kind: 'ENTRY_MISSING', index: expected, message: `entry ${expected} is missing` });
        treeBroken = true;
        expected = e.index;
      }
      expected = e.index + 1;
      // The entry must say which index it is: catches swapped or moved entries.
      if (!entryClaimsIndex(e.bytes, e.index)) {
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
        const tileIndex = Math.floor(e.index / TILE_WIDTH);
        for (const c of local.append(leaf)) {
          if (c.level === 0) continue; // the leaf: compared above
          if (c.level === TILE_HEIGHT) {
            local = Frontier.empty();
            addTileRoot(tileIndex, c.hash);
            continue;
          }
          const index = c.index + tileIndex * (TILE_WIDTH >> c.level);
          interior.push({ level: c.level, index, seq: nodeSeq(c.level, index), hash: c.hash });
        }
      }
      await checkCheckpointsUpTo(e.index + 1, (size) => (size === e.index + 1 ? rootNow() : undefined));
    }
    await compareNodes(interior);
    interior = [];
  };

  // The fast path for a complete, regular tile: every leaf hash is recomputed from its entry and
  // every interior hash from its two children, and each is compared with the stored fat tile in place
  // (children are taken from the stored tile only once they have been checked). Any difference sends
  // the tile through the general path, which names each defect.
  // `checked` is a worker's verdict on this bundle (checkBundleTileInPlace: its tile root, or null
  // when something differs); without one, this thread does the same check.
  const verifyTileFast = async (index: number, tile: Buffer | undefined, check: (tile: Buffer) => Buffer | undefined): Promise<boolean> => {
    const start = index * TILE_WIDTH;
    if (treeBroken || start !== expected || !tile || local.size !== 0) return false;
    const tileRoot = check(tile);
    if (!tileRoot) return false;
    nodesChecked += TILE_WIDTH - 1;
    expected = start + TILE_WIDTH;
    await checkCheckpointsUpTo(start + TILE_WIDTH, (size) => {
      if (size <= start) return undefined;
      if (size === start + TILE_WIDTH) return upper.rootWith(tileRoot);
      // A checkpoint inside this tile: its root folds the tile's complete subtrees up to it.
      const inside = rangeNodes(0, size - start).map((n) => {
        const off = (rowOffset(n.level) + n.index) * HASH_SIZE;
        return tile.subarray(off, off + HASH_SIZE);
      });
      return upper.rootWith(foldRight(inside));
    });
    addTileRoot(index, tileRoot);
    return true;
  };

  // A complete bundle that failed the fast path goes through the general path, entry by entry.
  const verifySlow = async (index: number): Promise<void> => {
    const start = index * TILE_WIDTH;
    for await (const entries of store.entryPages(start, start + TILE_WIDTH)) await verifyEntries(entries);
  };
  const pageDone = async (): Promise<void> => {
    await compareNodes(interior);
    interior = [];
    await settleSignatures(MAX_PENDING_SIGNATURES);
    options.onProgress?.(expected, total);
  };

  const fullTiles = Math.floor(stored / TILE_WIDTH);
  const workers = Math.min(MAX_FORCED_WORKERS, Math.max(0, Math.floor(options.workers ?? defaultWorkers(stored))));
  if (!store.rawBundlePages) {
    // A store that cannot hand out bundles as stored: decoded bundles, on this thread.
    for await (const page of store.bundlePages(0, fullTiles)) {
      for (const bt of page) if (!(await verifyTileFast(bt.index, bt.tile, (tile) => (bt.malformed ? undefined : checkTile(bt, tile))))) await verifySlow(bt.index);
      await pageDone();
    }
  } else {
    // Bundles as stored, page by page. With workers, this thread hands each page to a worker, which
    // only says, per bundle, "every hash matches, and here is the tile root" (checkBundleTileInPlace)
    // or "no"; the verdicts are taken back in order and everything else happens here, on this
    // thread, exactly as without workers. At most PAGES_PER_WORKER pages per worker are in flight:
    // reading waits for the oldest verdict. Without workers (or when one failed), this thread makes
    // the same check itself, on a copy.
    const pool = workers > 0 && fullTiles > 0 ? new TilePool(workers) : undefined;
    const depth = pool ? workers * PAGES_PER_WORKER : 1;
    const verifyPage = async (page: readonly RawBundle[], result: TileResult | undefined): Promise<void> => {
      for (let i = 0; i < page.length; i++) {
        const rb = page[i]!;
        const check = (tile: Buffer): Buffer | undefined =>
          result === undefined ? checkBundleTile(rb.data, tile, rb.index) : result.ok[i] === 1 ? Buffer.from(result.roots.buffer, result.roots.byteOffset + i * HASH_SIZE, HASH_SIZE) : undefined;
        if (!(await verifyTileFast(rb.index, rb.tile, check))) await verifySlow(rb.index);
      }
      await pageDone();
    };
    try {
      const inFlight: { page: readonly RawBundle[]; result: Promise<TileResult | undefined> | undefined }[] = [];
      for await (const page of store.rawBundlePages(0, fullTiles)) {
        inFlight.push({ page, result: pool?.check(page) });
        if (inFlight.length >= depth) {
          const next = inFlight.shift()!;
          await verifyPage(next.page, await next.result);
        }
      }
      for (const next of inFlight.splice(0)) await verifyPage(next.page, await next.result);
    } finally {
      await pool?.close();
    }
  }
  for await (const page of store.entryPages(fullTiles * TILE_WIDTH, stored)) {
    await verifyEntries(page);
    options.onProgress?.(expected, total);
  }
  // Checkpoints that claim more entries than are stored: the log was truncated.
  for (let cp = await checkpoints.peek(); cp; checkpoints.skip(), cp = await checkpoints.peek()) {
    checkCheckpoint(cp, undefined);
    if (expected < cp.treeSize) {
      add({
        kind: 'CHECKPOINT_BEYOND_LOG',
        index: expected,
        treeSize: cp.treeSize,
        message: `checkpoint covers ${cp.treeSize} entries but only ${expected} are stored: entry ${expected} onwards is missing`,
      });
      expected = cp.treeSize;
    }
  }
  await settleSignatures(0);
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
