import { toHex } from '../../core/hash.js';
import { LogReader } from '../../log/reader.js';
import { withDataDir, type CommandContext } from '../context.js';
import { printJson } from '../output.js';

export interface ListOptions {
  readonly limit: number;
  readonly type?: string;
  readonly sinceMs?: number;
  readonly oldestFirst?: boolean;
}

/** `custos list`: recent entries, newest first, filtered by type and time. */
export async function list(ctx: CommandContext, o: ListOptions): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const rows = await new LogReader(dir.store).listEntries(o);
      const items = rows.map((r) => ({ index: r.index, leafHash: toHex(r.leafHash), time: r.time, type: r.type, payload: r.payload }));
      if (ctx.json) return printJson(ctx.io, items);
      if (items.length === 0) ctx.io.stdout.write('no entries\n');
      for (const it of items) {
        ctx.io.stdout.write(`#${String(it.index).padEnd(8)} ${it.time}  ${it.type.padEnd(20)} ${JSON.stringify(it.payload)}\n`);
      }
    },
    true,
  );
}
