/**
 * The SQLite {@link TiledDriver}: prepared better-sqlite3 statements over the tables of
 * store/sqlite/schema.ts. Synchronous: every method answers directly, and an append is one
 * `BEGIN IMMEDIATE` transaction (SQLite's write lock) with multi-row inserts of CHUNK rows.
 * @module
 */
import type Database from 'better-sqlite3';
import { ConflictError, CustosError, StoreError } from '../../core/errors.js';
import type { NodeId } from '../../core/merkle/node-id.js';
import type { AppendBatch, SidecarCommitment, StoredCheckpoint } from '../store.js';
import type { BundleRow, TailEntryRow, TiledDriver } from '../tiled/driver.js';
import { planAppend, sizeFromMax, type NodeRow, type TakenNodeRow } from '../tiled/layout.js';

// Rows per multi-row INSERT.
const CHUNK = 64;

type CheckpointTuple = [number, Buffer, string, number];
type CommitmentTuple = [string, string, string, Buffer];

function toCheckpoint(r: CheckpointTuple): StoredCheckpoint {
  return { treeSize: r[0], rootHash: r[1], note: r[2], timeMs: r[3] };
}

function toCommitment(r: CommitmentTuple): SidecarCommitment {
  return { commitment: r[0], kind: r[1], value: r[2], salt: r[3] };
}

/** Wraps better-sqlite3 errors so SQLite's error shapes never leak above the store. */
export function wrapSqliteError(err: unknown, what: string): never {
  if (err instanceof CustosError) throw err;
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    throw new ConflictError('LOG_LOCKED', 'the log is locked by another writer', { cause: err });
  }
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') {
    throw new StoreError('STORE_CORRUPT', `database file is corrupt (${what})`, { cause: err });
  }
  throw new StoreError('STORE_FAILURE', `storage failure (${what})`, { cause: err });
}

// better-sqlite3 is synchronous: a scan over an async iterator of its pages would otherwise run
// as one long task (promise continuations never reach the event loop), and a server would answer
// nothing else until it ends. The store waits for the next turn of the event loop after each page.
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function prepare(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  const chunked = (head: string, tuple: string, tail = '') => p(`${head} VALUES ${Array(CHUNK).fill(tuple).join(', ')}${tail}`);
  const cp = 'SELECT tree_size, root, note, time_ms FROM checkpoints';
  const commit = 'SELECT commitment, kind, value, salt FROM commitments';
  return {
    getMeta: p('SELECT value FROM meta WHERE key = ?').pluck(),
    putMeta: p('INSERT INTO meta(key, value) VALUES (?, ?)'),
    maxTail: p('SELECT MAX(idx) FROM entry_tail').pluck(),
    maxBundle: p('SELECT MAX(idx) FROM entry_bundles').pluck(),
    bundle: p('SELECT data FROM entry_bundles WHERE idx = ?').pluck(),
    bundlePage: p('SELECT idx, data FROM entry_bundles WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?').raw(),
    bundlePageDesc: p('SELECT idx, data FROM entry_bundles WHERE idx >= ? AND idx < ? ORDER BY idx DESC LIMIT ?').raw(),
    tailEntry: p('SELECT data FROM entry_tail WHERE idx = ?').pluck(),
    tailRange: p('SELECT idx, data FROM entry_tail WHERE idx >= ? AND idx < ? ORDER BY idx').raw(),
    tailRangeDesc: p('SELECT idx, data FROM entry_tail WHERE idx >= ? AND idx < ? ORDER BY idx DESC').raw(),
    delTail: p('DELETE FROM entry_tail WHERE idx >= ? AND idx < ?'),
    insTail: p('INSERT INTO entry_tail(idx, data) VALUES (?, ?)'),
    insTailChunk: chunked('INSERT INTO entry_tail(idx, data)', '(?, ?)'),
    insBundle: p('INSERT INTO entry_bundles(idx, data) VALUES (?, ?)'),
    tile: p('SELECT hashes FROM tiles WHERE id = ?').pluck(),
    tileRange: p('SELECT id, hashes FROM tiles WHERE id >= ? AND id < ? ORDER BY id').raw(),
    insTile: p('INSERT INTO tiles(id, hashes) VALUES (?, ?)'),
    node: p('SELECT hash FROM node_tail WHERE level = ? AND idx = ?').pluck(),
    nodeRange: p('SELECT idx, hash FROM node_tail WHERE level = ? AND idx >= ? AND idx < ?').raw(),
    // Nodes moved into a fat tile are read as hex: a string per row instead of a buffer per row.
    nodeRangeHex: p('SELECT idx, hex(hash) FROM node_tail WHERE level = ? AND idx >= ? AND idx < ?').raw(),
    delNodes: p('DELETE FROM node_tail WHERE level = ? AND idx >= ? AND idx < ?'),
    insNode: p('INSERT INTO node_tail(level, idx, hash) VALUES (?, ?, ?)'),
    insNodeChunk: chunked('INSERT INTO node_tail(level, idx, hash)', '(?, ?, ?)'),
    cpPage: p(`${cp} WHERE tree_size > ? ORDER BY tree_size LIMIT ?`).raw(),
    cpLatest: p(`${cp} ORDER BY tree_size DESC LIMIT 1`).raw(),
    cpAt: p(`${cp} WHERE tree_size = ?`).raw(),
    cpCount: p('SELECT COUNT(*) FROM checkpoints').pluck(),
    cpMax: p('SELECT MAX(tree_size) FROM checkpoints').pluck(),
    insCp: p('INSERT INTO checkpoints(tree_size, root, note, time_ms) VALUES (?, ?, ?, ?)'),
    getDoc: p('SELECT kind, data FROM documents WHERE hash = ?').raw(),
    docPage: p('SELECT hash, kind, data FROM documents WHERE hash > ? ORDER BY hash LIMIT ?').raw(),
    insDoc: p('INSERT INTO documents(hash, kind, data) VALUES (?, ?, ?) ON CONFLICT(hash) DO NOTHING'),
    insDocChunk: chunked('INSERT INTO documents(hash, kind, data)', '(?, ?, ?)', ' ON CONFLICT(hash) DO NOTHING'),
    getCommit: p(`${commit} WHERE commitment = ?`).raw(),
    findCommits: p(`${commit} WHERE kind = ? AND value = ? ORDER BY commitment LIMIT ?`).raw(),
    commitPage: p(`${commit} WHERE commitment > ? ORDER BY commitment LIMIT ?`).raw(),
    insCommit: p('INSERT INTO commitments(commitment, kind, value, salt) VALUES (?, ?, ?, ?) ON CONFLICT(commitment) DO NOTHING'),
    insCommitChunk: chunked('INSERT INTO commitments(commitment, kind, value, salt)', '(?, ?, ?, ?)', ' ON CONFLICT(commitment) DO NOTHING'),
    eraseCommit: p('DELETE FROM commitments WHERE commitment = ?'),
    eraseDoc: p('DELETE FROM documents WHERE hash = ?'),
    dataVersion: p('PRAGMA data_version').pluck(),
    commitKeys: p('SELECT rowid, kind, value FROM commitments WHERE rowid > ? ORDER BY rowid LIMIT ?').raw(),
    getState: p('SELECT value FROM state WHERE ns = ? AND key = ?').pluck(),
    listState: p('SELECT ns, key, value FROM state WHERE ns = ? ORDER BY key').raw(),
    putState: p('INSERT INTO state(ns, key, value) VALUES (?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value'),
  };
}

/** Inserts rows given as columns: CHUNK rows per statement, then one by one. */
function insertColumns(cols: readonly (readonly unknown[])[], one: Database.Statement, chunk: Database.Statement): void {
  const rows = cols[0]?.length ?? 0;
  const width = cols.length;
  const args = new Array<unknown>(CHUNK * width);
  let r = 0;
  for (; r + CHUNK <= rows; r += CHUNK) {
    for (let k = 0; k < CHUNK; k++) for (let c = 0; c < width; c++) args[k * width + c] = cols[c]![r + k];
    chunk.run(args);
  }
  for (; r < rows; r++) one.run(cols.map((c) => c[r]));
}

/** The SQLite driver of one connection. */
export class SqliteDriver implements TiledDriver {
  readonly db: Database.Database;
  readonly #s: ReturnType<typeof prepare>;
  readonly #appendTx: Database.Transaction<(batch: AppendBatch) => number>;

  constructor(db: Database.Database) {
    this.db = db;
    this.#s = prepare(db);
    this.#appendTx = db.transaction((batch: AppendBatch) => this.#write(batch));
  }

  fail(err: unknown, what: string): never {
    wrapSqliteError(err, what);
  }

  pageBreak(): Promise<void> {
    return nextTurn();
  }

  maxIndexes(): { tail: number | null; bundle: number | null } {
    return { tail: this.#s.maxTail.get() as number | null, bundle: this.#s.maxBundle.get() as number | null };
  }

  checkpointCount(): number {
    return this.#s.cpCount.get() as number;
  }

  tiles(ids: readonly number[]): { id: number; hashes: Buffer }[] {
    const out: { id: number; hashes: Buffer }[] = [];
    for (const id of ids) {
      const hashes = this.#s.tile.get(id) as Buffer | undefined;
      if (hashes) out.push({ id, hashes });
    }
    return out;
  }

  tailNodes(ids: readonly NodeId[]): NodeRow[] {
    const out: NodeRow[] = [];
    for (const { level, index } of ids) {
      const hash = this.#s.node.get(level, index) as Buffer | undefined;
      if (hash) out.push({ level, idx: index, hash });
    }
    return out;
  }

  tailLeaves(lo: number, hi: number): NodeRow[] {
    return (this.#s.nodeRange.all(0, lo, hi) as [number, Buffer][]).map(([idx, hash]) => ({ level: 0, idx, hash }));
  }

  bundles(lo: number, hi: number, limit: number, descending: boolean): BundleRow[] {
    return ((descending ? this.#s.bundlePageDesc : this.#s.bundlePage).all(lo, hi, limit) as [number, Buffer][]).map(([idx, data]) => ({ idx, data }));
  }

  bundlesWithTiles(lo: number, hi: number, limit: number): (BundleRow & { tile: Buffer | null })[] {
    const rows = this.bundles(lo, hi, limit, false);
    if (rows.length === 0) return [];
    // tileId(0, n) = n: the level-0 tiles of these bundles in one range read.
    const tiles = new Map(this.#s.tileRange.all(rows[0]!.idx, rows[rows.length - 1]!.idx + 1) as [number, Buffer][]);
    return rows.map((r) => ({ ...r, tile: tiles.get(r.idx) ?? null }));
  }

  tailEntries(lo: number, hi: number, descending: boolean): TailEntryRow[] {
    const rows = (descending ? this.#s.tailRangeDesc : this.#s.tailRange).all(lo, hi) as [number, Buffer][];
    if (rows.length === 0) return [];
    const a = rows[0]![0];
    const b = rows[rows.length - 1]![0];
    const hashes = new Map(this.#s.nodeRange.all(0, Math.min(a, b), Math.max(a, b) + 1) as [number, Buffer][]);
    return rows.map(([idx, data]) => ({ idx, data, leafHash: hashes.get(idx) ?? null }));
  }

  entry(index: number, bundle: number): { tail: TailEntryRow } | { bundle: BundleRow } | undefined {
    const tail = this.#s.tailEntry.get(index) as Buffer | undefined;
    if (tail) return { tail: { idx: index, data: tail, leafHash: (this.#s.node.get(0, index) as Buffer | undefined) ?? null } };
    const data = this.#s.bundle.get(bundle) as Buffer | undefined;
    return data && { bundle: { idx: bundle, data } };
  }

  checkpoints(after: number, limit: number): StoredCheckpoint[] {
    return (this.#s.cpPage.all(after, limit) as CheckpointTuple[]).map(toCheckpoint);
  }

  maxCheckpointSize(): number | null {
    return this.#s.cpMax.get() as number | null;
  }

  latestCheckpoint(): StoredCheckpoint | undefined {
    const r = this.#s.cpLatest.get() as CheckpointTuple | undefined;
    return r && toCheckpoint(r);
  }

  checkpointAt(treeSize: number): StoredCheckpoint | undefined {
    const r = this.#s.cpAt.get(treeSize) as CheckpointTuple | undefined;
    return r && toCheckpoint(r);
  }

  meta(key: string): string | undefined {
    return this.#s.getMeta.get(key) as string | undefined;
  }

  document(hash: string): { kind: string; bytes: Buffer } | undefined {
    const r = this.#s.getDoc.get(hash) as [string, Buffer] | undefined;
    return r && { kind: r[0], bytes: r[1] };
  }

  documents(after: string, limit: number): { hash: string; kind: string; bytes: Buffer }[] {
    return (this.#s.docPage.all(after, limit) as [string, string, Buffer][]).map(([hash, kind, bytes]) => ({ hash, kind, bytes }));
  }

  commitment(commitment: string): SidecarCommitment | undefined {
    const r = this.#s.getCommit.get(commitment) as CommitmentTuple | undefined;
    return r && toCommitment(r);
  }

  commitmentsOf(kind: string, value: string, limit = -1): SidecarCommitment[] {
    // LIMIT -1: no limit.
    return (this.#s.findCommits.all(kind, value, limit) as CommitmentTuple[]).map(toCommitment);
  }

  commitments(after: string, limit: number): SidecarCommitment[] {
    return (this.#s.commitPage.all(after, limit) as CommitmentTuple[]).map(toCommitment);
  }

  externalVersion(): number {
    return this.#s.dataVersion.get() as number;
  }

  commitmentKeys(after: number, limit: number): { seq: number; kind: string; value: string }[] {
    return (this.#s.commitKeys.all(after, limit) as [number, string, string][]).map(([seq, kind, value]) => ({ seq, kind, value }));
  }

  state(ns: string, key: string): string | undefined {
    return this.#s.getState.get(ns, key) as string | undefined;
  }

  states(ns: string): { ns: string; key: string; value: string }[] {
    return (this.#s.listState.all(ns) as [string, string, string][]).map(([n, key, value]) => ({ ns: n, key, value }));
  }

  initMeta(values: Readonly<Record<string, string>>): void {
    const s = this.#s;
    this.db
      .transaction(() => {
        for (const [k, v] of Object.entries(values)) {
          const cur = s.getMeta.get(k) as string | undefined;
          if (cur === undefined) s.putMeta.run(k, v);
          else if (cur !== v) throw new ConflictError('DATA_DIR_EXISTS', `log already has a different ${k}`);
        }
      })
      .immediate();
  }

  async append(batch: AppendBatch): Promise<number> {
    // BEGIN IMMEDIATE takes SQLite's write lock up front; other processes wait busy_timeout.
    return this.#appendTx.immediate(batch);
  }

  #write(batch: AppendBatch): number {
    const s = this.#s;
    const m = this.maxIndexes();
    const plan = planAppend(batch, sizeFromMax(m.tail, m.bundle));
    const takenEntries: Buffer[] = [];
    if (plan.takeEntries) {
      const { lo, hi } = plan.takeEntries;
      for (const [, data] of s.tailRange.all(lo, hi) as [number, Buffer][]) takenEntries.push(data);
      s.delTail.run(lo, hi);
    }
    const takenNodes: TakenNodeRow[] = [];
    for (const { level, lo, hi } of plan.takeNodes) {
      for (const [idx, hash] of s.nodeRangeHex.all(level, lo, hi) as [number, string][]) takenNodes.push({ level, idx, hash });
      s.delNodes.run(level, lo, hi);
    }
    const rows = plan.rows(takenEntries, takenNodes);
    rows.bundles.idx.forEach((idx, i) => s.insBundle.run(idx, rows.bundles.data[i]));
    insertColumns([rows.tailEntries.idx, rows.tailEntries.data], s.insTail, s.insTailChunk);
    rows.tiles.id.forEach((id, i) => s.insTile.run(id, rows.tiles.hashes[i]));
    insertColumns([rows.tailNodes.level, rows.tailNodes.idx, rows.tailNodes.hash], s.insNode, s.insNodeChunk);
    const cp = batch.checkpoint;
    s.insCp.run(cp.treeSize, cp.rootHash, cp.note, cp.timeMs);
    if (batch.sidecar) this.#writeSidecar(batch.sidecar);
    return plan.end;
  }

  writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): void {
    this.db.transaction(() => this.#writeSidecar(sidecar)).immediate();
  }

  #writeSidecar(sidecar: NonNullable<AppendBatch['sidecar']>): void {
    const s = this.#s;
    const docs = sidecar.documents;
    insertColumns([docs.map((d) => d.hash), docs.map((d) => d.kind), docs.map((d) => d.bytes)], s.insDoc, s.insDocChunk);
    const cs = sidecar.commitments;
    insertColumns([cs.map((c) => c.commitment), cs.map((c) => c.kind), cs.map((c) => c.value), cs.map((c) => c.salt)], s.insCommit, s.insCommitChunk);
    for (const st of sidecar.state) s.putState.run(st.ns, st.key, st.value);
    for (const c of sidecar.erase ?? []) s.eraseCommit.run(c);
    for (const h of sidecar.eraseDocuments ?? []) s.eraseDoc.run(h);
  }
}
