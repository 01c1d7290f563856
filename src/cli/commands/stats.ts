import { toHex } from '../../core/hash.js';
import { withDataDir, type CommandContext } from '../context.js';
import { printFields, printJson } from '../output.js';

/** `custos stats`: entries, root, bytes on disk, last update. */
export async function stats(ctx: CommandContext): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const s = await dir.store.stats();
      const cp = await dir.store.latestCheckpoint();
      const out = {
        origin: dir.origin,
        dataDir: dir.dataDir,
        backend: dir.store.backend,
        entries: s.treeSize,
        treeSize: cp?.treeSize ?? 0,
        rootHash: cp ? toHex(cp.rootHash) : null,
        checkpoints: s.checkpoints,
        bytesOnDisk: s.bytesOnDisk,
        bytesPerEntry: s.treeSize > 0 ? Math.round(s.bytesOnDisk / s.treeSize) : null,
        lastUpdate: cp ? new Date(cp.timeMs).toISOString() : null,
      };
      if (ctx.json) return printJson(ctx.io, out);
      printFields(ctx.io, {
        'origin': out.origin,
        'data dir': out.dataDir,
        'entries': String(out.entries),
        'signed size': String(out.treeSize),
        'root hash': out.rootHash ?? '-',
        'checkpoints': String(out.checkpoints),
        'bytes on disk': `${out.bytesOnDisk} (${out.bytesPerEntry ?? '-'} per entry)`,
        'last update': out.lastUpdate ?? '-',
      });
    },
    true,
  );
}
