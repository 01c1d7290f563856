/**
 * Copying a log from one store to another (SQLite to PostgreSQL), byte for byte: the same entries,
 * the same signed checkpoints (not re-signed), the same off-ledger documents, commitment openings
 * and state; then both are verified and compared.
 * @module
 */
import { ConflictError, VerificationError } from '../core/errors.js';
import { bytesEqual, hashLeaf, toHex } from '../core/hash.js';
import { Frontier } from '../core/merkle/tree.js';
import type { NoteVerifier } from '../core/note.js';
import type { LogStore, SidecarCommitment, SidecarDocument, StoredNode } from '../store/store.js';
import { verifyLog } from './verify-log.js';

/** What {@link migrateLog} copied and checked. */
export interface MigrationReport {
  readonly entries: number;
  readonly checkpoints: number;
  readonly documents: number;
  readonly commitments: number;
  readonly rootHex: string | undefined;
}

const STATE_NAMESPACES = ['policy', 'token', 'erased-document'];

/**
 * Copies the log in `from` into the empty store `to`, then verifies `to` with `verifiers` and
 * checks that its latest checkpoint and root equal the source's.
 * @throws {ConflictError} DATA_DIR_EXISTS when `to` already holds a log
 * @throws {VerificationError} LOG_VERIFICATION_FAILED when the source does not verify or the copy differs
 */
export async function migrateLog(o: { from: LogStore; to: LogStore; verifiers: readonly NoteVerifier[]; onProgress?: (done: number, total: number) => void }): Promise<MigrationReport> {
  const { from, to } = o;
  if ((await to.treeSize()) !== 0 || (await to.getMeta('origin')) !== undefined) {
    throw new ConflictError('DATA_DIR_EXISTS', 'the target store already holds a log');
  }
  const origin = await from.getMeta('origin');
  const vkey = await from.getMeta('verifier_key');
  if (!origin || !vkey) throw new VerificationError('LOG_VERIFICATION_FAILED', 'the source is not an initialized Custos log');
  // The source must verify before anything is copied: a migration never launders damage.
  const before = await verifyLog({ store: from, verifiers: o.verifiers, origin });
  if (!before.ok) {
    throw new VerificationError('LOG_VERIFICATION_FAILED', `the source log does not verify (first bad entry ${before.firstBadIndex})`);
  }
  await to.initMeta({ origin, verifier_key: vkey, format: (await from.getMeta('format')) ?? 'custos-log/1' });
  const total = before.entries;
  const frontier = Frontier.empty();
  let checkpoints = 0;
  // Replays the source's batches: the entries up to each checkpoint, with that same signed checkpoint.
  const pending: { index: number; bytes: Buffer }[] = [];
  const nodes: StoredNode[] = [];
  const entries = from.entryPages(0, total)[Symbol.asyncIterator]();
  let buffered: { index: number; bytes: Buffer }[] = [];
  let next = 0;
  for await (const page of from.checkpointPages()) {
    for (const cp of page) {
      while (next < cp.treeSize) {
        if (buffered.length === 0) {
          const r = await entries.next();
          if (r.done) throw new VerificationError('LOG_VERIFICATION_FAILED', 'source entries end before its checkpoints');
          buffered = r.value.map((e) => ({ index: e.index, bytes: e.bytes }));
        }
        const e = buffered.shift()!;
        for (const n of frontier.append(hashLeaf(e.bytes))) nodes.push(n);
        pending.push(e);
        next++;
      }
      if (!bytesEqual(frontier.root(), cp.rootHash)) {
        throw new VerificationError('LOG_VERIFICATION_FAILED', `source checkpoint at size ${cp.treeSize} does not match its entries`);
      }
      await to.appendBatch({ expectedSize: cp.treeSize - pending.length, entries: pending.splice(0), nodes: nodes.splice(0), checkpoint: cp });
      checkpoints++;
      o.onProgress?.(next, total);
    }
  }
  let documents = 0;
  for await (const page of from.documentPages()) {
    await to.writeSidecar({ documents: page as SidecarDocument[], commitments: [], state: [] });
    documents += page.length;
  }
  let commitments = 0;
  for await (const page of from.commitmentPages()) {
    await to.writeSidecar({ documents: [], commitments: page as SidecarCommitment[], state: [] });
    commitments += page.length;
  }
  for (const ns of STATE_NAMESPACES) {
    const rows = await from.listState(ns);
    if (rows.length > 0) await to.writeSidecar({ documents: [], commitments: [], state: rows });
  }
  const after = await verifyLog({ store: to, verifiers: o.verifiers, origin });
  const a = await from.latestCheckpoint();
  const b = await to.latestCheckpoint();
  if (!after.ok || a?.note !== b?.note || after.rootHex !== before.rootHex || after.entries !== before.entries) {
    throw new VerificationError('LOG_VERIFICATION_FAILED', 'the copy does not verify to the same root and checkpoint');
  }
  return { entries: after.entries, checkpoints, documents, commitments, rootHex: after.rootHex ?? (b ? toHex(b.rootHash) : undefined) };
}
