/**
 * C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), the Ed25519 type (0x04): a witness's
 * timestamped statement that a checkpoint is the largest consistent tree head it has seen for the
 * log, and the K-of-N witness policy a client checks over those statements.
 *
 * A cosignature is a signed-note signature line `— <name> base64(keyID || u64 timestamp || sig)`:
 * - key ID = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4];
 * - timestamp = POSIX seconds, big-endian, at most 2^63 - 1;
 * - sig = Ed25519 over "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint body.
 * The signed message does not commit to the cosigner's name, so one key serves one name only.
 * @module
 */
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey, ed25519Sign, ed25519Verifier } from './crypto.js';
import { fromBase64, fromBase64Strict, toBase64 } from './hash.js';
import { ValidationError, VerificationError } from './errors.js';
import { NOTE_MAX_SIGNATURES, NOTE_SIG_PREFIX, computeKeyId, isValidKeyName, splitPlus } from './note.js';
import { parseCheckpointBody } from './checkpoint.js';
import { isWellFormedString } from './canonical-json.js';

/** Signature type byte of Ed25519 cosignature/v1 keys (C2SP tlog-cosignature). */
export const COSIGNATURE_ALG = 0x04;
/** The header line of the cosignature/v1 signed message (domain separation). */
export const COSIGNATURE_V1_HEADER = 'cosignature/v1';
/** Bytes of a cosignature line's payload: key ID (4), timestamp (8), Ed25519 signature (64). */
export const COSIGNATURE_SIZE = 4 + 8 + 64;
// tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1. JavaScript numbers are exact to 2^53 - 1,
// which is some 285 million years of seconds: a larger timestamp is refused as invalid.
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;

/** A witness key that checks cosignatures (the public half, from a type 0x04 vkey). */
export interface CosignerVerifier {
  readonly name: string;
  /** Key ID as an unsigned 32-bit integer. */
  readonly keyId: number;
  /** Checks an Ed25519 signature over a cosignature/v1 message. */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** A witness key that makes cosignatures. */
export interface CosignerSigner {
  readonly name: string;
  readonly keyId: number;
  sign(message: Uint8Array): Buffer;
}

/** A valid cosignature by a known witness key. */
export interface VerifiedCosignature {
  readonly name: string;
  readonly keyId: number;
  /** When the witness cosigned, in POSIX seconds. */
  readonly timestamp: number;
}

/** A cosignature line by a known witness key that does not verify. */
export interface InvalidCosignature {
  readonly name: string;
  readonly keyId: number;
  readonly reason: 'malformed' | 'timestamp' | 'signature';
}

/** What {@link verifyCosignatures} found on a note. Lines by unknown keys are not reported. */
export interface CosignatureReport {
  readonly verified: readonly VerifiedCosignature[];
  readonly invalid: readonly InvalidCosignature[];
}

/** Options of cosignature checks. */
export interface CosignatureOptions {
  /** Cosignatures timestamped after this (POSIX seconds) are invalid: verifiers MAY refuse the future. */
  readonly notAfter?: number;
}

/** K of N: the witnesses a client trusts and how many of them must have cosigned a checkpoint. */
export interface WitnessPolicy {
  readonly witnesses: readonly CosignerVerifier[];
  readonly quorum: number;
}

/** The verdict of {@link checkWitnessQuorum}; witnesses are named `name+keyidhex`. */
export interface WitnessQuorumResult {
  readonly ok: boolean;
  readonly quorum: number;
  readonly cosigned: readonly string[];
  readonly missing: readonly string[];
  readonly invalid: readonly string[];
}

function badKey(message: string): never {
  throw new VerificationError('KEY_MALFORMED', `malformed cosigner key: ${message}`);
}

function malformed(message: string): never {
  throw new VerificationError('NOTE_MALFORMED', `malformed note: ${message}`);
}

function keyIdHex(id: number): string {
  return id.toString(16).padStart(8, '0');
}

/** `name+keyidhex`: how a witness is named in reports. */
export function cosignerLabel(c: { readonly name: string; readonly keyId: number }): string {
  return `${c.name}+${keyIdHex(c.keyId)}`;
}

function algKey(publicKey: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([COSIGNATURE_ALG]), publicKey]);
}

/** The cosignature/v1 signed message: header line, time line, then the checkpoint body. */
export function cosignatureMessage(body: string, timestampSec: number): Buffer {
  return Buffer.from(`${COSIGNATURE_V1_HEADER}\ntime ${timestampSec}\n${body}`, 'utf8');
}

/**
 * Parses a cosigner verifier key `name+hexkeyid+base64(0x04 || publicKey)`. A key of another type
 * (a 0x01 note key included) is refused: a log key is not a witness key.
 * @throws {VerificationError} KEY_MALFORMED
 */
export function parseCosignerVerifierKey(vkey: string): CosignerVerifier & { readonly publicKey: Buffer } {
  const parts = splitPlus(vkey, 2);
  if (!parts) badKey('expected name+keyid+key');
  const [name, idHex, b64] = parts as [string, string, string];
  if (!isValidKeyName(name)) badKey('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) badKey('key id must be 8 hex digits');
  const raw = fromBase64(b64);
  if (!raw || raw.length === 0) badKey('key is not base64');
  if (raw[0] !== COSIGNATURE_ALG) badKey(`signature type 0x${(raw[0] ?? 0).toString(16).padStart(2, '0')} is not cosignature/v1 (0x04)`);
  if (raw.length !== 33) badKey('Ed25519 key must be 32 bytes');
  const keyId = Number.parseInt(idHex, 16);
  if (computeKeyId(name, raw) !== keyId) badKey('key id does not match key');
  const publicKey = Buffer.from(raw.subarray(1));
  let verify: (message: Uint8Array, signature: Uint8Array) => boolean;
  try {
    verify = ed25519Verifier(publicKey).verify;
  } catch {
    badKey('not an Ed25519 public key');
  }
  return Object.freeze({ name, keyId, publicKey, verify });
}

/**
 * Parses a cosigner signer key `PRIVATE+KEY+name+hexkeyid+base64(0x04 || seed)` (Go's note layout,
 * with the cosignature type byte).
 * @throws {VerificationError} KEY_MALFORMED
 */
export function parseCosignerSignerKey(skey: string): CosignerSigner & { readonly publicKey: Buffer } {
  const parts = splitPlus(skey, 4);
  if (parts?.[0] !== 'PRIVATE' || parts[1] !== 'KEY') badKey('expected PRIVATE+KEY+name+keyid+key');
  const [, , name, idHex, b64] = parts as [string, string, string, string, string];
  if (!isValidKeyName(name)) badKey('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) badKey('key id must be 8 hex digits');
  const raw = fromBase64Strict(b64);
  if (raw?.length !== 33 || raw[0] !== COSIGNATURE_ALG) badKey('expected a cosignature/v1 (0x04) Ed25519 seed');
  const priv = ed25519PrivateKeyFromSeed(raw.subarray(1));
  const publicKey = ed25519RawPublicKey(priv);
  const keyId = computeKeyId(name, algKey(publicKey));
  if (keyId !== Number.parseInt(idHex, 16)) badKey('key id does not match key');
  return Object.freeze({ name, keyId, publicKey, sign: (message: Uint8Array) => ed25519Sign(priv, message) });
}

/** Formats the cosigner verifier key `name+hexkeyid+base64(0x04 || publicKey)`. */
export function formatCosignerVerifierKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) badKey('invalid key name');
  if (publicKey.length !== 32) badKey('Ed25519 key must be 32 bytes');
  const k = algKey(publicKey);
  return `${name}+${keyIdHex(computeKeyId(name, k))}+${toBase64(k)}`;
}

/** Formats the cosigner signer key `PRIVATE+KEY+name+hexkeyid+base64(0x04 || seed)` from a 32-byte seed. */
export function formatCosignerSignerKey(name: string, seed: Uint8Array): string {
  if (!isValidKeyName(name)) badKey('invalid key name');
  if (seed.length !== 32) badKey('Ed25519 seed must be 32 bytes');
  const publicKey = ed25519RawPublicKey(ed25519PrivateKeyFromSeed(seed));
  const keyId = computeKeyId(name, algKey(publicKey));
  return `PRIVATE+KEY+${name}+${keyIdHex(keyId)}+${toBase64(Buffer.concat([Buffer.from([COSIGNATURE_ALG]), seed]))}`;
}

// The note's text and signature lines, with the checks of note.ts (signed-note layout, no control characters).
function splitNote(note: string): { body: string; lines: string[] } {
  if (!isWellFormedString(note) || /[\x00-\x09\x0b-\x1f]/.test(note)) malformed('invalid characters');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) malformed('no signature block');
  const body = note.slice(0, split + 1);
  const sigs = note.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n')) malformed('signature block must end with a newline');
  const lines = sigs.slice(0, -1).split('\n');
  if (lines.length > NOTE_MAX_SIGNATURES) malformed('too many signatures');
  return { body, lines };
}

// A signature line: name and payload (with the key ID in its first 4 bytes).
function parseSignatureLine(line: string): { name: string; keyId: number; payload: Buffer } {
  if (!line.startsWith(NOTE_SIG_PREFIX)) malformed('expected a signature line');
  const rest = line.slice(NOTE_SIG_PREFIX.length);
  const sp = rest.indexOf(' ');
  const name = sp < 0 ? rest : rest.slice(0, sp);
  const b64 = sp < 0 ? '' : rest.slice(sp + 1);
  const payload = fromBase64(b64);
  if (!payload || !isValidKeyName(name) || b64 === '' || payload.length < 5) malformed('bad signature line');
  return { name, keyId: payload.readUInt32BE(0), payload };
}

/**
 * Cosigns a checkpoint: returns the signature line (ending in a newline) to append to the note.
 * `noteOrBody` is the signed checkpoint note or just its body; only the body is signed.
 * The caller has checked that the checkpoint is consistent with what it saw before: a cosignature
 * states exactly that.
 * @throws {VerificationError} CHECKPOINT_MALFORMED, NOTE_MALFORMED
 * @throws {ValidationError} VALIDATION_FAILED when the timestamp is not a whole number of seconds in range
 */
export function cosignCheckpoint(noteOrBody: string, signer: CosignerSigner, timestampSec: number): string {
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0 || timestampSec > MAX_TIMESTAMP) {
    throw new ValidationError('VALIDATION_FAILED', 'cosignature timestamp must be a non-negative integer of seconds');
  }
  const body = noteOrBody.includes('\n\n') ? splitNote(noteOrBody).body : noteOrBody;
  parseCheckpointBody(body);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestampSec));
  const id = Buffer.alloc(4);
  id.writeUInt32BE(signer.keyId >>> 0);
  const sig = signer.sign(cosignatureMessage(body, timestampSec));
  return `${NOTE_SIG_PREFIX}${signer.name} ${toBase64(Buffer.concat([id, ts, sig]))}\n`;
}

/**
 * Appends cosignature lines to a signed note. A line by a key already on the note replaces that
 * key's line (a note carries one signature per key; verifiers read only the first); an identical
 * line is dropped. `lines` may be one string of several lines (a witness's response body).
 * Nothing is verified here: verify the result with {@link verifyCosignatures}.
 * @throws {VerificationError} NOTE_MALFORMED
 */
export function addCosignatures(note: string, lines: string | readonly string[]): string {
  const { body, lines: existing } = splitNote(note);
  const incoming = (typeof lines === 'string' ? [lines] : lines).flatMap((l) => l.split('\n')).filter((l) => l !== '');
  const out = [...existing];
  const keyOf = (line: string): string => {
    const p = parseSignatureLine(line);
    return `${p.name}+${p.keyId}`;
  };
  for (const l of existing) parseSignatureLine(l);
  for (const line of incoming) {
    if (/[\x00-\x1f]/.test(line) || !isWellFormedString(line)) malformed('invalid characters');
    const key = keyOf(line);
    const at = out.findIndex((l) => keyOf(l) === key);
    if (at < 0) out.push(line);
    else out[at] = line;
  }
  if (out.length > NOTE_MAX_SIGNATURES) malformed('too many signatures');
  return `${body}\n${out.join('\n')}\n`;
}

/**
 * Checks the cosignatures on a note by the given witness keys. Lines by other keys (the log's own
 * signature included) are ignored; a line by a known key that does not verify is reported in
 * `invalid`. Only the first line per key counts, as in signed-note verification.
 * This does not check the log's signature: open the checkpoint with the log key for that.
 * @throws {VerificationError} NOTE_MALFORMED
 */
export function verifyCosignatures(note: string, witnesses: readonly CosignerVerifier[], options: CosignatureOptions = {}): CosignatureReport {
  const { body, lines } = splitNote(note);
  const verified: VerifiedCosignature[] = [];
  const invalid: InvalidCosignature[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const { name, keyId, payload } = parseSignatureLine(line);
    const w = witnesses.find((k) => k.name === name && k.keyId === keyId);
    if (!w) continue;
    const label = cosignerLabel(w);
    if (seen.has(label)) continue;
    seen.add(label);
    if (payload.length !== COSIGNATURE_SIZE) {
      invalid.push({ name, keyId, reason: 'malformed' });
      continue;
    }
    const ts = payload.readBigUInt64BE(4);
    if (ts > BigInt(MAX_TIMESTAMP) || (options.notAfter !== undefined && ts > BigInt(options.notAfter))) {
      invalid.push({ name, keyId, reason: 'timestamp' });
      continue;
    }
    const timestamp = Number(ts);
    if (!w.verify(cosignatureMessage(body, timestamp), payload.subarray(12))) {
      invalid.push({ name, keyId, reason: 'signature' });
      continue;
    }
    verified.push({ name, keyId, timestamp });
  }
  return { verified, invalid };
}

function checkPolicy(policy: WitnessPolicy): void {
  const labels = policy.witnesses.map(cosignerLabel);
  if (new Set(labels).size !== labels.length) {
    throw new ValidationError('VALIDATION_FAILED', 'witness policy lists a witness key twice', { issues: [{ path: 'witnesses', message: 'duplicate witness key' }] });
  }
  if (!Number.isSafeInteger(policy.quorum) || policy.quorum < 0 || policy.quorum > policy.witnesses.length) {
    throw new ValidationError('VALIDATION_FAILED', `witness quorum must be an integer from 0 to ${policy.witnesses.length}`, {
      issues: [{ path: 'quorum', message: 'out of range' }],
    });
  }
}

/**
 * Checks a K-of-N witness policy on a note: which policy witnesses validly cosigned it, which did
 * not, and which signed badly. `ok` when at least `quorum` cosigned.
 * @throws {VerificationError} NOTE_MALFORMED
 * @throws {ValidationError} VALIDATION_FAILED for a policy with a duplicate key or a quorum out of range
 */
export function checkWitnessQuorum(note: string, policy: WitnessPolicy, options: CosignatureOptions = {}): WitnessQuorumResult {
  checkPolicy(policy);
  const report = verifyCosignatures(note, policy.witnesses, options);
  const cosigned = report.verified.map(cosignerLabel);
  const invalid = report.invalid.map(cosignerLabel);
  const missing = policy.witnesses.map(cosignerLabel).filter((l) => !cosigned.includes(l) && !invalid.includes(l));
  return { ok: cosigned.length >= policy.quorum, quorum: policy.quorum, cosigned, missing, invalid };
}

/**
 * {@link checkWitnessQuorum}, throwing when the quorum is not met.
 * @throws {VerificationError} WITNESS_QUORUM_NOT_MET (details: quorum, cosigned, missing, invalid)
 */
export function requireWitnessQuorum(note: string, policy: WitnessPolicy, options: CosignatureOptions = {}): WitnessQuorumResult {
  const r = checkWitnessQuorum(note, policy, options);
  if (!r.ok) {
    throw new VerificationError('WITNESS_QUORUM_NOT_MET', `${r.cosigned.length} of the required ${r.quorum} witnesses cosigned the checkpoint`, {
      details: { quorum: r.quorum, cosigned: r.cosigned, missing: r.missing, invalid: r.invalid },
    });
  }
  return r;
}
