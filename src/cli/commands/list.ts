import { toHex } from '../../core/hash.js';
import { withDataDir, type CommandContext } from '../context.js';
import { printJson } from '../output.js';
import type { StoredEntry } from '../../store/store.js';

export interface ListOptions {
  readonly limit: number;
  readonly type?: string;
  readonly sinceMs?: number;
  readonly oldestFirst?: boolean;
}

/** The JSON form of a stored entry: its index, leaf hash and the decoded entry. */
export function entryJson(e: StoredEntry): Record<string, unknown> {
  const entry = JSON.parse(e.bytes.toString('utf8')) as Record<string, unknown>;
  return { index: e.index, leafHash: toHex(e.leafHash), time: entry['time'], type: entry['type'], payload: entry['payload'] };
}

/** `custos list`: recent entries, newest first, filtered by type and time. */
export async function list(ctx: CommandContext, o: ListOptions): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const rows = await dir.store.queryEntries({
        limit: o.limit,
        descending: !o.oldestFirst,
        ...(o.type === undefined ? {} : { type: o.type }),
        ...(o.sinceMs === undefined ? {} : { sinceMs: o.sinceMs }),
      });
      const items = rows.map(entryJson);
      if (ctx.json) return printJson(ctx.io, items);
      if (items.length === 0) ctx.io.stdout.write('no entries\n');
      for (const it of items) {
        ctx.io.stdout.write(`#${String(it['index']).padEnd(8)} ${String(it['time'])}  ${String(it['type']).padEnd(20)} ${JSON.stringify(it['payload'])}\n`);
      }
    },
    true,
  );
}
