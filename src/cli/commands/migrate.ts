import { existsSync } from 'node:fs';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { parseVerifierKey } from '../../core/note.js';
import { resolveStoreUrl } from '../../log/data-dir.js';
import { migrateLog } from '../../log/migrate.js';
import { SqliteStore } from '../../store/sqlite/sqlite-store.js';
import type { CommandContext } from '../context.js';
import { createProgress, inCwd, printFields, printJson } from '../output.js';

/**
 * `custos migrate --from <sqlite file> --to postgres://...`: copies a log and its off-ledger data,
 * then verifies that the copy has the same root and checkpoints. The source is only read.
 */
export async function migrate(ctx: CommandContext, o: { from: string; to: string; key?: string }): Promise<void> {
  const url = resolveStoreUrl(o.to, {});
  if (!url) throw new ValidationError('VALIDATION_FAILED', '--to must be a postgres:// URL');
  const fromPath = inCwd(ctx.io, o.from);
  if (!existsSync(fromPath)) throw new NotFoundError('DATA_DIR_NOT_FOUND', `no SQLite log at ${o.from}`);
  const from = SqliteStore.open(fromPath, { readonly: true });
  const { PostgresStore } = await import('../../store/postgres/index.js');
  let to;
  try {
    to = await PostgresStore.connect(url);
  } catch (err) {
    await from.close();
    throw err;
  }
  const progress = createProgress(ctx.io, 'migrating', !ctx.json);
  try {
    const vkey = o.key ?? (await from.getMeta('verifier_key'));
    if (!vkey) throw new NotFoundError('DATA_DIR_NOT_FOUND', `${o.from} is not an initialized Custos log`);
    const r = await migrateLog({ from, to, verifiers: [parseVerifierKey(vkey)], onProgress: (d, t) => progress.update(d, t) });
    progress.stop();
    if (ctx.json) return printJson(ctx.io, r);
    printFields(ctx.io, {
      migrated: `${r.entries} entries, ${r.checkpoints} signed checkpoints, ${r.documents} documents, ${r.commitments} commitment openings`,
      'root hash': r.rootHex ?? '-',
      verified: 'the copy verifies, with the same root and the same latest checkpoint',
    });
  } finally {
    progress.stop();
    await from.close();
    await to.close();
  }
}
