import { closeSync, openSync, renameSync, rmSync, writeSync, fsyncSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { toHex } from '../../core/hash.js';
import { withDataDir, type CommandContext } from '../context.js';
import { inCwd, printFields, printJson } from '../output.js';

export interface CheckpointOptions {
  /** Write the note to this file (an auditor keeps it for `verify --trusted-checkpoint`). */
  readonly save?: string;
  /** Overwrite an existing file. */
  readonly force?: boolean;
}

/** `custos checkpoint`: the latest signed checkpoint, as the exact C2SP signed note (or `--save FILE`). */
export async function checkpoint(ctx: CommandContext, options: CheckpointOptions = {}): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const cp = await dir.store.latestCheckpoint();
      if (!cp) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint yet (append an entry first)');
      if (options.save !== undefined) {
        const path = inCwd(ctx.io, options.save);
        saveNote(path, cp.note, options.force === true, options.save);
        if (ctx.json) return printJson(ctx.io, { saved: options.save, origin: dir.origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash) });
        return printFields(ctx.io, {
          'saved': options.save,
          'tree size': String(cp.treeSize),
          'root hash': toHex(cp.rootHash),
          'check later': `custos verify --trusted-checkpoint ${options.save} --key <the log's published key>`,
        });
      }
      if (ctx.json) return printJson(ctx.io, { origin: dir.origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), note: cp.note });
      ctx.io.stdout.write(cp.note);
    },
    true,
  );
}

// Public data (mode 0644). Without --force an existing file is never replaced: 'wx' refuses it;
// with --force the new file is written beside it and renamed over it.
function saveNote(path: string, note: string, force: boolean, shown: string): void {
  const tmp = force ? join(dirname(path), `.${basename(path)}.${toHex(randomBytes(6))}.tmp`) : path;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ValidationError('FILE_UNREADABLE', `${shown} already exists (pass --force to overwrite it)`, { details: { path: shown } });
    }
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${shown}`, { cause: err });
  }
  try {
    writeSync(fd, note);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (force) renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${shown}`, { cause: err });
  }
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
