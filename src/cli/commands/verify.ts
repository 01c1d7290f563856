import { CustosError, ValidationError, VerificationError, type VerificationCode } from '../../core/errors.js';
import { readFileSync } from 'node:fs';
import { EMPTY_ROOT } from '../../core/hash.js';
import { foldRight } from '../../core/merkle/tree.js';
import { frontierNodes, nodeSeq } from '../../core/merkle/node-id.js';
import { verifyConsistency } from '../../core/merkle/consistency.js';
import type { VerifyReport } from '../../log/verify-log.js';
import { toHex } from '../../core/hash.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { verifyInclusion } from '../../core/merkle/inclusion.js';
import { hashLeaf, bytesEqual } from '../../core/hash.js';
import { decodeEntry } from '../../core/entry.js';
import { LogReader } from '../../log/reader.js';
import { verifyLog } from '../../log/verify-log.js';
import { verifyDocuments } from '../../service/verify-documents.js';
import { trustedVerifiers, withDataDir, type CommandContext } from '../context.js';
import { witnessPolicyArgs } from '../keys.js';
import { checkWitnessQuorum, type WitnessPolicy } from '../../core/cosignature.js';
import { QUORUM_KEY, QUORUM_NS, type QuorumCheckpoint } from '../../server/witnesses.js';
import { createProgress, inCwd, printFields, printJson } from '../output.js';
import type { DataDir } from '../../log/data-dir.js';
import type { NoteVerifier } from '../../core/note.js';

export interface VerifyOptions {
  readonly entry?: number;
  readonly key?: string;
  readonly progress?: boolean;
  /** Checkpoint files saved earlier (`custos checkpoint --save`): the log must still contain each. */
  readonly trustedCheckpoints?: readonly string[];
  /** Witness cosigner keys (type 0x04): every trusted checkpoint, and the log's latest quorum checkpoint, must carry the quorum. */
  readonly witnesses?: readonly string[];
  /** Cosignatures required from `witnesses` (default: all of them). */
  readonly quorum?: number;
  /** Worker threads for full verification (default: verifyLog's, one per core for large logs). */
  readonly workers?: number;
}

/** `custos verify`: full verification, or `--entry N` for one entry with its inclusion proof. */
export async function verify(ctx: CommandContext, options: VerifyOptions): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const { verifiers, source, pinned, trust } = trustedVerifiers(ctx, dir, options.key);
      const trustJson = { pinned, source, note: trust };
      if (options.entry !== undefined) {
        if (options.trustedCheckpoints?.length) throw new ValidationError('VALIDATION_FAILED', '--trusted-checkpoint checks the whole log: leave out --entry');
        if (options.witnesses?.length) throw new ValidationError('VALIDATION_FAILED', '--witness checks the whole log: leave out --entry');
        return verifyEntry(ctx, dir, verifiers, options.entry, trustJson);
      }
      const started = performance.now();
      const progress = createProgress(ctx.io, 'verifying', !ctx.json && options.progress !== false);
      let report;
      try {
        report = await verifyLog({
          store: dir.store,
          verifiers,
          origin: dir.origin,
          onProgress: (d, t) => progress.update(d, t),
          ...(options.workers === undefined ? {} : { workers: options.workers }),
        });
      } finally {
        progress.stop();
      }
      // The off-ledger store, checked against what the log commits.
      const docs = await verifyDocuments({ store: dir.store });
      // Checkpoints an auditor saved earlier: the log must still contain each of them.
      const policy = witnessPolicyArgs(ctx, options.witnesses ?? [], options.quorum);
      const trusted = [];
      for (const file of options.trustedCheckpoints ?? []) trusted.push(await checkTrustedCheckpoint(dir, verifiers, file, readTrustedFile(ctx, file), report, policy));
      // With a witness policy: the latest checkpoint that `serve --witness` saw reach its quorum must
      // meet this policy and be contained in the log (cosignatures verify themselves: the state row
      // that holds them is not trusted).
      if (policy) {
        const row = await dir.store.getState(QUORUM_NS, QUORUM_KEY);
        let note: string | undefined;
        try {
          note = row === undefined ? undefined : (JSON.parse(row) as Partial<QuorumCheckpoint>).note;
        } catch {
          note = undefined;
        }
        if (typeof note !== 'string') {
          trusted.push({ file: '(witness quorum)', ok: false, code: 'WITNESS_QUORUM_NOT_MET', message: 'no checkpoint of this log has been cosigned by the witnesses (run custos serve --witness)' });
        } else trusted.push(await checkTrustedCheckpoint(dir, verifiers, '(witness quorum)', note, report, policy));
      }
      const trustedFailure = trusted.find((t) => !t.ok);
      const seconds = (performance.now() - started) / 1000;
      if (ctx.json) {
        printJson(ctx.io, {
          ...report,
          ok: report.ok && docs.ok && !trustedFailure,
          log: { ok: report.ok },
          documents: docs,
          ...(options.trustedCheckpoints || policy ? { trustedCheckpoints: trusted } : {}),
          trustedKeys: source,
          trust: trustJson,
          seconds: Number(seconds.toFixed(3)),
        });
      } else if (report.ok && docs.ok && trustedFailure) {
        ctx.io.stdout.write(`${trust}\n`);
        for (const t of trusted) ctx.io.stdout.write(`trusted checkpoint ${t.file}: ${t.ok ? 'contained in the log' : `${t.code}: ${t.message}`}\n`);
      } else if (report.ok && docs.ok) {
        printFields(ctx.io, {
          'verified': report.entries === 0 ? 'empty log' : `${report.entries} entries, ${report.checkpointsChecked} signed checkpoints, ${report.nodesChecked} tree nodes`,
          'tree size': String(report.checkpointSize),
          'root hash': report.rootHex ?? '-',
          'documents': `${docs.documentsChecked} off-ledger documents and ${docs.commitmentsChecked} commitment openings checked against the log${docs.documentsErased > 0 ? `; ${docs.documentsErased} erased by the log's erasures` : ''}`,
          'trusted key': trust,
          'saved checkpoints': trusted.length === 0 ? undefined : trusted.map((t) => `${t.file}: size ${t.treeSize} contained in the log`).join('\n                   '),
          'took': `${seconds.toFixed(2)} s (${Math.round(report.entries / Math.max(seconds, 1e-9)).toLocaleString('en-US')} entries/s)`,
        });
      } else if (!report.ok) {
        ctx.io.stdout.write(`${trust}\n`);
        for (const f of report.findings) ctx.io.stdout.write(`${f.kind} at entry ${f.index}: ${f.message}\n`);
      }
      if (report.ok && !docs.ok) {
        if (!ctx.json) {
          ctx.io.stdout.write(`${trust}\n`);
          ctx.io.stdout.write(`log: ${report.entries} entries verified; the off-ledger store does not match it:\n`);
          for (const f of docs.findings) ctx.io.stdout.write(`${f.kind}${f.eventIndex === undefined ? '' : ` (event ${f.eventIndex})`}: ${f.message}\n`);
        }
        const f = docs.findings[0]!;
        throw new VerificationError('LOG_VERIFICATION_FAILED', `off-ledger store: ${f.message}`, {
          details: { documentFindings: docs.findings.length, eventIndex: f.eventIndex },
        });
      }
      if (report.ok && docs.ok && trustedFailure) {
        throw new VerificationError(trustedFailure.code as VerificationCode, `${trustedFailure.file}: ${trustedFailure.message}`, {
          details: { file: trustedFailure.file, ...trustedFailure.details },
        });
      }
      if (!report.ok) {
        const first = report.findings.find((f) => f.index === report.firstBadIndex) ?? report.findings[0]!;
        throw new VerificationError('LOG_VERIFICATION_FAILED', `first bad entry ${report.firstBadIndex}: ${first.message}`, {
          details: { firstBadIndex: report.firstBadIndex, findings: report.findings.length },
        });
      }
    },
    true,
  );
}

async function verifyEntry(ctx: CommandContext, dir: DataDir, verifiers: NoteVerifier[], index: number, trust: { pinned: boolean; source: string; note: string }): Promise<void> {
  const latest = await dir.store.latestCheckpoint();
  if (!latest) {
    if ((await dir.store.treeSize()) === 0) {
      throw new ValidationError('INDEX_OUT_OF_RANGE', `entry index ${index} is out of range (the log is empty)`);
    }
    throw new VerificationError('LOG_VERIFICATION_FAILED', 'the log has no signed checkpoint');
  }
  // The signed checkpoint is the anchor: check its signature before anything is compared with it.
  const cp = openCheckpoint(latest.note, verifiers, dir.origin);
  const reader = new LogReader(dir.store);
  const p = await reader.inclusionProof(index, cp.treeSize);
  const stored = await reader.getEntry(index);
  // The leaf is recomputed from the entry bytes: the stored leaf hash is only compared.
  const leafHash = hashLeaf(stored.bytes);
  if (!bytesEqual(leafHash, p.leafHash)) {
    throw new VerificationError('LOG_VERIFICATION_FAILED', `entry ${index}: stored leaf hash differs from the hash of its bytes`);
  }
  verifyInclusion(index, cp.treeSize, leafHash, p.proof, cp.rootHash);
  const entry = decodeEntry(stored.bytes.toString('utf8'));
  const out = {
    verified: true,
    index,
    entry,
    leafHash: toHex(leafHash),
    treeSize: cp.treeSize,
    rootHash: toHex(cp.rootHash),
    proof: p.proof.map(toHex),
    checkpoint: latest.note,
    trust,
  };
  if (ctx.json) {
    printJson(ctx.io, out);
    return;
  }
  printFields(ctx.io, {
    'verified': `entry ${index} is included in the signed tree of size ${cp.treeSize}`,
    'type': entry.type,
    'time': entry.time,
    'payload': entry.payload,
    'leaf hash': out.leafHash,
    'root hash': out.rootHash,
    'proof': out.proof.length === 0 ? '(empty: single-entry tree)' : out.proof.join('\n       '),
    'trusted key': trust.note,
  });
  ctx.io.stdout.write(`\n${latest.note}`);
}

/** The verdict on one saved checkpoint. */
interface TrustedResult {
  readonly file: string;
  readonly ok: boolean;
  readonly treeSize?: number;
  readonly rootHash?: string;
  readonly localSize?: number;
  readonly code?: string;
  readonly message?: string;
  readonly details?: Record<string, unknown>;
}

/**
 * Checks one saved checkpoint against the local log: its signature under the trusted keys and the
 * log's origin; then the local tree's root at its size (folded from the stored nodes, which the
 * full verification has just recomputed from the entries) must be its root, and the latest local
 * checkpoint must be consistent with it. A smaller local log is LOG_ROLLBACK; another root is LOG_FORK.
 */
function readTrustedFile(ctx: CommandContext, file: string): string {
  try {
    return readFileSync(inCwd(ctx.io, file), 'utf8');
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read the trusted checkpoint ${file}`, { cause: err });
  }
}

async function checkTrustedCheckpoint(dir: DataDir, verifiers: NoteVerifier[], file: string, note: string, report: VerifyReport, policy: WitnessPolicy | undefined): Promise<TrustedResult> {
  let saved;
  try {
    saved = openCheckpoint(note, verifiers, dir.origin);
  } catch (err) {
    if (err instanceof CustosError) return { file, ok: false, code: err.code, message: `the saved checkpoint does not verify under the trusted key: ${err.message}` };
    throw err;
  }
  if (policy) {
    const q = checkWitnessQuorum(note, policy);
    if (!q.ok) {
      return {
        file,
        ok: false,
        code: 'WITNESS_QUORUM_NOT_MET',
        message: `the checkpoint of size ${saved.treeSize} carries ${q.cosigned.length} valid cosignature(s) of the ${q.quorum} required (missing: ${q.missing.join(', ') || 'none'}${q.invalid.length ? `; invalid: ${q.invalid.join(', ')}` : ''})`,
        details: { treeSize: saved.treeSize, quorum: q.quorum, cosigned: q.cosigned, missing: q.missing, invalid: q.invalid },
      };
    }
  }
  const savedRoot = toHex(saved.rootHash);
  const localSize = report.checkpointSize;
  const base = { file, treeSize: saved.treeSize, rootHash: savedRoot, localSize };
  if (saved.treeSize > localSize) {
    return {
      ...base,
      ok: false,
      code: 'LOG_ROLLBACK',
      message: `the log has ${localSize} entries under its latest signed checkpoint, but this saved checkpoint covers ${saved.treeSize} (root ${savedRoot}): the log was rolled back`,
      details: { savedSize: saved.treeSize, localSize, savedRoot },
    };
  }
  let localRoot: Buffer = EMPTY_ROOT;
  if (saved.treeSize > 0) {
    const ids = frontierNodes(saved.treeSize);
    const nodes = await dir.store.getNodes(ids);
    const hashes = ids.map((id) => nodes.get(nodeSeq(id.level, id.index)));
    if (hashes.some((h) => h === undefined)) {
      return { ...base, ok: false, code: 'LOG_FORK', message: `the log has no tree nodes for size ${saved.treeSize}`, details: { savedSize: saved.treeSize, localSize } };
    }
    localRoot = foldRight(hashes as Buffer[]);
  }
  const fork = (why: string): TrustedResult => ({
    ...base,
    ok: false,
    code: 'LOG_FORK',
    message: `${why}: two histories signed by one key`,
    details: { savedSize: saved.treeSize, savedRoot, localSize, localRootAtSavedSize: toHex(localRoot) },
  });
  if (!bytesEqual(localRoot, saved.rootHash)) {
    return fork(`the log's root at size ${saved.treeSize} is ${toHex(localRoot)}, but the saved checkpoint of that size has root ${savedRoot}`);
  }
  if (saved.treeSize > 0 && saved.treeSize < localSize && report.rootHex) {
    const p = await new LogReader(dir.store).consistencyProof(saved.treeSize, localSize);
    try {
      verifyConsistency(saved.treeSize, localSize, p.proof, saved.rootHash, Buffer.from(report.rootHex, 'hex'));
    } catch (err) {
      return fork(`the log (size ${localSize}) is not consistent with the saved checkpoint of size ${saved.treeSize} (${(err as Error).message})`);
    }
  }
  return { ...base, ok: true };
}
