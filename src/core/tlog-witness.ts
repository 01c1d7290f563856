/**
 * The wire format of C2SP tlog-witness (https://c2sp.org/tlog-witness) `add-checkpoint`, for both
 * sides: the request body a log sends, and the size a witness answers a conflict with.
 *
 * Request body: `old <size>\n`, zero to 63 consistency proof lines (one base64 hash each), an empty
 * line, then the checkpoint note. A 409 Conflict answers with `<size>\n` as `text/x.tlog.size`.
 * @module
 */
import { HASH_SIZE, fromBase64Strict, toBase64 } from './hash.js';
import { ValidationError } from './errors.js';

/** The path of the call, after the witness's submission prefix. */
export const ADD_CHECKPOINT_PATH = '/add-checkpoint';
/** The content type of a 409 Conflict body: the witness's latest cosigned size. */
export const TLOG_SIZE_CONTENT_TYPE = 'text/x.tlog.size';
/** tlog-witness: the client MUST NOT send more than 63 consistency proof lines. */
export const MAX_PROOF_LINES = 63;

/** A parsed add-checkpoint request. */
export interface AddCheckpointRequest {
  readonly oldSize: number;
  readonly proof: readonly Buffer[];
  /** The checkpoint note, as sent (signatures not checked here). */
  readonly note: string;
}

function bad(message: string, path = 'body'): never {
  throw new ValidationError('VALIDATION_FAILED', `malformed add-checkpoint request: ${message}`, { issues: [{ path, message }] });
}

// ASCII decimal, no leading zeros, no sign; safe integers only (sizes are attacker-controlled).
function parseSize(s: string, path: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(s)) bad('size is not a decimal number without leading zeros', path);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) bad('size too large', path);
  return n;
}

/** Formats an add-checkpoint request body. */
export function formatAddCheckpointRequest(oldSize: number, proof: readonly Uint8Array[], note: string): string {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) bad('old size must be a non-negative integer', 'oldSize');
  if (proof.length > MAX_PROOF_LINES) bad(`more than ${MAX_PROOF_LINES} proof lines`, 'proof');
  for (const p of proof) if (p.length !== HASH_SIZE) bad('proof hashes must be 32 bytes', 'proof');
  return `old ${oldSize}\n${proof.map((p) => `${toBase64(p)}\n`).join('')}\n${note}`;
}

/**
 * Parses an add-checkpoint request body (attacker-controlled): the old size line, at most 63
 * proof lines of exactly one 32-byte hash each in canonical base64, the empty line, and a
 * non-empty rest (the note, checked by the caller).
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseAddCheckpointRequest(text: string): AddCheckpointRequest {
  let nl = text.indexOf('\n');
  if (nl < 0) bad('no old size line');
  const first = text.slice(0, nl);
  if (!first.startsWith('old ')) bad('the first line must be "old <size>"', 'old');
  const oldSize = parseSize(first.slice(4), 'old');
  const proof: Buffer[] = [];
  let at = nl + 1;
  for (;;) {
    nl = text.indexOf('\n', at);
    if (nl < 0) bad('no empty line before the checkpoint');
    const line = text.slice(at, nl);
    at = nl + 1;
    if (line === '') break;
    if (proof.length === MAX_PROOF_LINES) bad(`more than ${MAX_PROOF_LINES} proof lines`, 'proof');
    const hash = fromBase64Strict(line);
    if (hash?.length !== HASH_SIZE) bad('a proof line is not the base64 of a 32-byte hash', `proof.${proof.length}`);
    proof.push(hash);
  }
  const note = text.slice(at);
  if (note.length === 0) bad('no checkpoint', 'checkpoint');
  return { oldSize, proof, note };
}

/**
 * Parses a `text/x.tlog.size` body: one decimal size and a newline.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseTlogSize(text: string): number {
  if (!text.endsWith('\n')) bad('a size body ends with a newline', 'size');
  return parseSize(text.slice(0, -1), 'size');
}
