import { toHex } from '../../core/hash.js';
import { LogReader } from '../../log/reader.js';
import { withDataDir, type CommandContext } from '../context.js';
import { printFields, printJson } from '../output.js';

/** `custos proof inclusion N [--size M]`: RFC 9162 inclusion proof, verified before it is printed. */
export async function proofInclusion(ctx: CommandContext, index: number, size: number | undefined): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const p = await new LogReader(dir.store).inclusionProof(index, size);
      const out = {
        leafIndex: p.leafIndex,
        treeSize: p.treeSize,
        leafHash: toHex(p.leafHash),
        rootHash: toHex(p.rootHash),
        proof: p.proof.map(toHex),
        checkpoint: p.checkpoint?.note ?? null,
      };
      if (ctx.json) return printJson(ctx.io, out);
      printFields(ctx.io, {
        'leaf index': String(out.leafIndex),
        'tree size': String(out.treeSize),
        'leaf hash': out.leafHash,
        'root hash': `${out.rootHash}${p.checkpoint ? ' (signed checkpoint)' : ' (no checkpoint was signed at this size)'}`,
        'proof': out.proof.length === 0 ? '(empty)' : out.proof.join('\n       '),
      });
    },
    true,
  );
}

/** `custos proof consistency M N`: RFC 9162 consistency proof between two tree sizes, verified before it is printed. */
export async function proofConsistency(ctx: CommandContext, oldSize: number, newSize: number): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const p = await new LogReader(dir.store).consistencyProof(oldSize, newSize);
      const out = {
        oldSize: p.oldSize,
        newSize: p.newSize,
        oldRoot: toHex(p.oldRoot),
        newRoot: toHex(p.newRoot),
        proof: p.proof.map(toHex),
        oldCheckpoint: p.oldCheckpoint?.note ?? null,
        newCheckpoint: p.newCheckpoint?.note ?? null,
      };
      if (ctx.json) return printJson(ctx.io, out);
      printFields(ctx.io, {
        'old size': String(out.oldSize),
        'old root': out.oldRoot,
        'new size': String(out.newSize),
        'new root': out.newRoot,
        'proof': out.proof.length === 0 ? '(empty)' : out.proof.join('\n       '),
      });
    },
    true,
  );
}
