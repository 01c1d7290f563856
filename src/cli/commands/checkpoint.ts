import { NotFoundError } from '../../core/errors.js';
import { toHex } from '../../core/hash.js';
import { withDataDir, type CommandContext } from '../context.js';
import { printJson } from '../output.js';

/** `custos checkpoint`: the latest signed checkpoint, as the exact C2SP signed note. */
export async function checkpoint(ctx: CommandContext): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const cp = await dir.store.latestCheckpoint();
      if (!cp) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint yet (append an entry first)');
      if (ctx.json) return printJson(ctx.io, { origin: dir.origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), note: cp.note });
      ctx.io.stdout.write(cp.note);
    },
    true,
  );
}

/** `custos key`: the verifier key string (`name+keyid+base64`) that checks this log's checkpoints. */
export async function key(ctx: CommandContext): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      if (ctx.json) return printJson(ctx.io, { origin: dir.origin, verifierKey: dir.verifierKey });
      ctx.io.stdout.write(`${dir.verifierKey}\n`);
    },
    true,
  );
}
