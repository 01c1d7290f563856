/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) bodies, signed as C2SP signed notes.
 * @module
 */
import { HASH_SIZE, fromBase64Strict, toBase64 } from './hash.js';
import { VerificationError } from './errors.js';
import { openNote, openNoteAsync, signNote, type NoteSigner, type NoteVerifier, type OpenedNote } from './note.js';

/** The parsed body of a checkpoint. */
export interface Checkpoint {
  /** The log's origin line: a unique, schema-less identifier of the log. */
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  /** Optional extension lines after the root hash. */
  readonly extensions: readonly string[];
}

/** A checkpoint with its signed-note text. */
export interface SignedCheckpoint extends Checkpoint {
  readonly note: string;
}

function malformed(message: string): never {
  throw new VerificationError('CHECKPOINT_MALFORMED', `malformed checkpoint: ${message}`);
}

/** Formats the checkpoint body: origin, decimal tree size, base64 root hash, each on its own line. */
export function formatCheckpointBody(cp: Omit<Checkpoint, 'extensions'> & { extensions?: readonly string[] }): string {
  if (cp.origin.length === 0 || /[\n]/.test(cp.origin)) malformed('origin must be one non-empty line');
  if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) malformed('tree size must be a non-negative integer');
  if (cp.rootHash.length !== HASH_SIZE) malformed('root hash must be 32 bytes');
  const ext = cp.extensions ?? [];
  for (const e of ext) if (e.length === 0 || e.includes('\n')) malformed('extension lines must be non-empty');
  return `${[cp.origin, String(cp.treeSize), toBase64(cp.rootHash), ...ext].join('\n')}\n`;
}

/**
 * Parses a checkpoint body (the signed text of the note).
 * @throws {VerificationError} CHECKPOINT_MALFORMED
 */
export function parseCheckpointBody(text: string): Checkpoint {
  if (!text.endsWith('\n')) malformed('body must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) malformed('expected origin, size and root lines');
  const [origin, sizeStr, rootB64, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) malformed('empty origin');
  // Decimal, no sign, no leading zeros (the size is attacker-controlled).
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeStr)) malformed('tree size is not a decimal number');
  const treeSize = Number(sizeStr);
  if (!Number.isSafeInteger(treeSize)) malformed('tree size too large');
  const rootHash = fromBase64Strict(rootB64);
  if (!rootHash || rootHash.length !== HASH_SIZE) malformed('root hash must be base64 of 32 bytes');
  for (const e of extensions) if (e.length === 0) malformed('empty extension line');
  return { origin, treeSize, rootHash, extensions };
}

/** Signs a checkpoint as a signed note. */
export function signCheckpoint(cp: Checkpoint, signer: NoteSigner): SignedCheckpoint {
  const note = signNote(formatCheckpointBody(cp), [signer]);
  return { ...cp, note };
}

/**
 * Opens a signed checkpoint note: verifies its signatures with `verifiers`, parses its body
 * and, when `origin` is given, checks that the checkpoint belongs to that log.
 * @throws {VerificationError} NOTE_MALFORMED, NOTE_SIGNATURE_INVALID, NOTE_NO_VERIFIABLE_SIGNATURE, CHECKPOINT_MALFORMED
 */
export function openCheckpoint(note: string, verifiers: readonly NoteVerifier[], origin?: string): SignedCheckpoint & { readonly opened: OpenedNote } {
  const opened = openNote(note, verifiers);
  const cp = parseCheckpointBody(opened.text);
  if (origin !== undefined && cp.origin !== origin) {
    malformed(`origin ${JSON.stringify(cp.origin)} is not this log's origin`);
  }
  return { ...cp, note, opened };
}

/** {@link openCheckpoint} with signature checks off the main thread. */
export async function openCheckpointAsync(note: string, verifiers: readonly NoteVerifier[], origin?: string): Promise<SignedCheckpoint & { readonly opened: OpenedNote }> {
  const opened = await openNoteAsync(note, verifiers);
  const cp = parseCheckpointBody(opened.text);
  if (origin !== undefined && cp.origin !== origin) {
    malformed(`origin ${JSON.stringify(cp.origin)} is not this log's origin`);
  }
  return { ...cp, note, opened };
}
