import { initDataDir } from '../../log/data-dir.js';
import type { CommandContext } from '../context.js';
import { printFields, printJson } from '../output.js';

export interface InitOptions {
  readonly origin?: string;
}

/** `custos init`: creates the data directory, the signing key and the store. Never prints the private key. */
export async function init(ctx: CommandContext, options: InitOptions): Promise<void> {
  const r = await initDataDir(ctx.dataDir, { storeUrl: ctx.storeUrl, ...(options.origin === undefined ? {} : { origin: options.origin }) });
  if (ctx.json) {
    printJson(ctx.io, { dataDir: r.dataDir, origin: r.origin, verifierKey: r.verifierKey });
    return;
  }
  printFields(ctx.io, {
    'initialized': r.dataDir,
    'origin': r.origin,
    'verifier key': r.verifierKey,
    'checkpoint': 'the empty tree (size 0) signed: the log serves a checkpoint from the start',
    'signing key': `${r.dataDir}/log.key (mode 0600; keep it secret, back it up)`,
  });
}
