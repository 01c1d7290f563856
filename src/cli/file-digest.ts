/**
 * Digests of artifact files named on the command line (`--input-file`, `--output-file`,
 * `--artifact-file`, `--dataset-file`, an explanation's `file`), computed by streaming the file
 * through SHA-256 in constant memory, as the reference's `sha256_file` does for large images.
 * Every file is hashed before the log is opened: a missing or unreadable file writes nothing.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../core/errors.js';
import { inCwd, type Io } from './output.js';

/** A file's digest, and the `file:` URI it is recorded under unless another URI is given. */
export interface FileDigest {
  /** SHA-256 of the file's bytes, lowercase hex. */
  readonly digest: string;
  /** `file://` URL of the file's absolute path (committed like any URI, never logged). */
  readonly uri: string;
  readonly bytes: number;
}

/**
 * Streams `path` (resolved against the command's working directory) through SHA-256. Reads in
 * 1 MiB chunks; never holds the file in memory.
 * @throws {ValidationError} FILE_UNREADABLE when the file is missing, unreadable or not a regular file
 */
export async function sha256File(io: Io, path: string, what: string): Promise<FileDigest> {
  const full = resolve(inCwd(io, path));
  const unreadable = (detail: string, cause?: unknown) =>
    new ValidationError('FILE_UNREADABLE', `cannot read ${what} file ${path}: ${detail}`, { details: { flag: what }, ...(cause === undefined ? {} : { cause }) });
  try {
    const st = await stat(full);
    // A FIFO or a device would stream forever (or be something else on every read).
    if (!st.isFile()) throw unreadable('not a regular file');
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw unreadable(reasonOf(err), err);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(full, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    throw unreadable(reasonOf(err), err);
  }
  return { digest: hash.digest('hex'), uri: pathToFileURL(full).href, bytes };
}

function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return typeof code === 'string' ? code : 'read error';
}
