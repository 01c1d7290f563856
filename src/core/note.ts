/**
 * C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 keys (signature type 0x01).
 *
 * Compatible with golang.org/x/mod/sumdb/note: same key strings, key IDs, note layout and
 * verification rules (several signatures; unknown keys ignored; a bad signature from a known key
 * rejects the note).
 * @module
 */
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey, ed25519Sign, ed25519Verifier, type Ed25519Verifier } from './crypto.js';
import { sha256, fromBase64, fromBase64Strict, toBase64 } from './hash.js';
import { VerificationError } from './errors.js';
import { isWellFormedString } from './canonical-json.js';

/** Signature algorithm byte for Ed25519 in signed-note keys. */
export const NOTE_ALG_ED25519 = 0x01;
/** Signature lines start with an em dash and a space. */
export const NOTE_SIG_PREFIX = '\u2014 ';
/** Go's note.Open refuses notes with more signatures than this. */
export const NOTE_MAX_SIGNATURES = 100;

/** A key that can check signatures on notes. */
export interface NoteVerifier {
  readonly name: string;
  /** Key ID as an unsigned 32-bit integer. */
  readonly keyId: number;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
  /** The same check, run off the main thread. */
  verifyAsync?(message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** A key that can sign notes. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(message: Uint8Array): Buffer;
}

/** A signature found on a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signatureB64: string;
}

/** An opened, verified note. */
export interface OpenedNote {
  /** The signed text, ending in a newline. */
  readonly text: string;
  /** Signatures by known keys, all verified. */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the caller does not know: ignored, never trusted. */
  readonly unverified: readonly NoteSignature[];
}

function malformed(message: string): never {
  throw new VerificationError('NOTE_MALFORMED', `malformed note: ${message}`);
}

function badKey(message: string): never {
  throw new VerificationError('KEY_MALFORMED', `malformed key: ${message}`);
}

// Go's unicode.IsSpace (not JavaScript's \s, which differs on U+0085 and U+FEFF), plus '+'.
const GO_SPACE_OR_PLUS = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000+]/;

/** Key names are non-empty, contain no whitespace (as Go's unicode.IsSpace) and no '+'. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !GO_SPACE_OR_PLUS.test(name) && isWellFormedString(name);
}

/** Key ID: the first 4 bytes (big-endian) of SHA-256(name || 0x0A || alg || public key). */
export function computeKeyId(name: string, algAndKey: Uint8Array): number {
  const h = sha256(Buffer.concat([Buffer.from(name, 'utf8'), Buffer.from([0x0a]), algAndKey]));
  return h.readUInt32BE(0);
}

function keyIdHex(id: number): string {
  return id.toString(16).padStart(8, '0');
}

// Key objects of node:crypto (Node only: the explorer's bundle never signs).
export { ed25519PublicKeyFromRaw, ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from './crypto.js';

/** Splits "a+b+rest" on the first `count` '+' only (base64 may contain '+'); key strings of every type. */
export function splitPlus(s: string, count: number): string[] | undefined {
  const parts: string[] = [];
  let rest = s;
  for (let i = 0; i < count; i++) {
    const j = rest.indexOf('+');
    if (j < 0) return undefined;
    parts.push(rest.slice(0, j));
    rest = rest.slice(j + 1);
  }
  parts.push(rest);
  return parts;
}

function parseKeyParts(name: string, idHex: string, b64: string): { keyId: number; key: Buffer } {
  if (!isValidKeyName(name)) badKey('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) badKey('key id must be 8 hex digits');
  const raw = fromBase64(b64);
  if (!raw || raw.length === 0) badKey('key is not base64');
  if (raw[0] !== NOTE_ALG_ED25519) badKey('unknown signature algorithm');
  if (raw.length !== 33) badKey('Ed25519 key must be 32 bytes');
  const keyId = Number.parseInt(idHex, 16);
  if (computeKeyId(name, raw) !== keyId) badKey('key id does not match key');
  return { keyId, key: raw.subarray(1) };
}

/**
 * Parses a verifier key string `name+hexkeyid+base64(0x01 || publicKey)`.
 * @throws {VerificationError} KEY_MALFORMED
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const parts = splitPlus(vkey, 2);
  if (!parts) badKey('expected name+keyid+key');
  const [name, idHex, b64] = parts as [string, string, string];
  const { keyId, key } = parseKeyParts(name, idHex, b64);
  let ed: Ed25519Verifier;
  try {
    ed = ed25519Verifier(key);
  } catch {
    badKey('not an Ed25519 public key');
  }
  const { verify, verifyAsync } = ed;
  return Object.freeze(verifyAsync ? { name, keyId, verify, verifyAsync } : { name, keyId, verify });
}

/**
 * Parses a signer key string `PRIVATE+KEY+name+hexkeyid+base64(0x01 || seed)` (Go's note format).
 * @throws {VerificationError} KEY_MALFORMED
 */
export function parseSignerKey(skey: string): NoteSigner {
  const parts = splitPlus(skey, 4);
  if (parts?.[0] !== 'PRIVATE' || parts[1] !== 'KEY') badKey('expected PRIVATE+KEY+name+keyid+key');
  const [, , name, idHex, b64] = parts as [string, string, string, string, string];
  if (!isValidKeyName(name)) badKey('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) badKey('key id must be 8 hex digits');
  const raw = fromBase64Strict(b64);
  if (raw?.length !== 33 || raw[0] !== NOTE_ALG_ED25519) badKey('expected an Ed25519 seed');
  const priv = ed25519PrivateKeyFromSeed(raw.subarray(1));
  const pubRaw = ed25519RawPublicKey(priv);
  const keyId = computeKeyId(name, Buffer.concat([Buffer.from([NOTE_ALG_ED25519]), pubRaw]));
  if (keyId !== Number.parseInt(idHex, 16)) badKey('key id does not match key');
  return Object.freeze({ name, keyId, sign: (message: Uint8Array) => ed25519Sign(priv, message) });
}

/** Formats a signer key string from a name and a 32-byte Ed25519 seed. */
export function formatSignerKey(name: string, seed: Uint8Array): string {
  if (!isValidKeyName(name)) badKey('invalid key name');
  const pubRaw = ed25519RawPublicKey(ed25519PrivateKeyFromSeed(seed));
  const keyId = computeKeyId(name, Buffer.concat([Buffer.from([NOTE_ALG_ED25519]), pubRaw]));
  return `PRIVATE+KEY+${name}+${keyIdHex(keyId)}+${toBase64(Buffer.concat([Buffer.from([NOTE_ALG_ED25519]), seed]))}`;
}

/** Formats the verifier key string `name+hexkeyid+base64(0x01 || publicKey)`. */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) badKey('invalid key name');
  const algKey = Buffer.concat([Buffer.from([NOTE_ALG_ED25519]), publicKey]);
  return `${name}+${keyIdHex(computeKeyId(name, algKey))}+${toBase64(algKey)}`;
}

/** The verifier key string for a signer key string. */
export function verifierKeyFromSignerKey(skey: string): string {
  const parts = splitPlus(skey, 4);
  const signer = parseSignerKey(skey);
  const seed = fromBase64Strict(parts![4]!)!.subarray(1);
  return formatVerifierKey(signer.name, ed25519RawPublicKey(ed25519PrivateKeyFromSeed(seed)));
}

function checkText(text: string): void {
  // Valid UTF-8 (well-formed UTF-16 here) and no ASCII control characters other than newline.
  if (!isWellFormedString(text) || /[\x00-\x09\x0b-\x1f]/.test(text)) malformed('invalid characters');
}

/**
 * Signs `text` (which must end in a newline) with each signer.
 * @throws {VerificationError} NOTE_MALFORMED when the text cannot be a note body
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  if (text.length === 0 || !text.endsWith('\n')) malformed('text must end with a newline');
  if (text.includes('\n\n')) malformed('text must not contain a blank line');
  checkText(text);
  const msg = Buffer.from(text, 'utf8');
  let out = `${text}\n`;
  for (const s of signers) {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(s.keyId >>> 0);
    out += `${NOTE_SIG_PREFIX}${s.name} ${toBase64(Buffer.concat([id, s.sign(msg)]))}\n`;
  }
  return out;
}

// The parsed parts of a note: its text and the signatures to check (known keys, deduplicated).
interface ParsedNote {
  readonly text: string;
  readonly message: Buffer;
  readonly toCheck: readonly { entry: NoteSignature; verifier: NoteVerifier; signature: Buffer }[];
  readonly unverified: readonly NoteSignature[];
}

function parseNote(note: string, verifiers: readonly NoteVerifier[]): ParsedNote {
  checkText(note);
  const split = note.lastIndexOf('\n\n');
  if (split < 0) malformed('no signature block');
  const text = note.slice(0, split + 1);
  let sigs = note.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n')) malformed('signature block must end with a newline');
  const toCheck: { entry: NoteSignature; verifier: NoteVerifier; signature: Buffer }[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  let count = 0;
  while (sigs.length > 0) {
    const nl = sigs.indexOf('\n');
    const line = sigs.slice(0, nl);
    sigs = sigs.slice(nl + 1);
    if (!line.startsWith(NOTE_SIG_PREFIX)) malformed('expected a signature line');
    const rest = line.slice(NOTE_SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    const name = sp < 0 ? rest : rest.slice(0, sp);
    const b64 = sp < 0 ? '' : rest.slice(sp + 1);
    const sig = fromBase64(b64);
    if (!sig || !isValidKeyName(name) || b64 === '' || sig.length < 5) malformed('bad signature line');
    if (++count > NOTE_MAX_SIGNATURES) malformed('too many signatures');
    const keyId = sig.readUInt32BE(0);
    const entry: NoteSignature = { name, keyId, signatureB64: b64 };
    const v = verifiers.find((k) => k.name === name && k.keyId === keyId);
    const dedupe = v ? `${name}+${keyId}` : line;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    if (!v) unverified.push(entry);
    else toCheck.push({ entry, verifier: v, signature: sig.subarray(4) });
  }
  return { text, message: Buffer.from(text, 'utf8'), toCheck, unverified };
}

function badSignature(s: NoteSignature): VerificationError {
  return new VerificationError('NOTE_SIGNATURE_INVALID', `invalid signature for key ${s.name}+${keyIdHex(s.keyId)}`, {
    details: { keyName: s.name, keyId: keyIdHex(s.keyId) },
  });
}

function opened(p: ParsedNote): OpenedNote {
  if (p.toCheck.length === 0) {
    throw new VerificationError('NOTE_NO_VERIFIABLE_SIGNATURE', 'note has no verifiable signatures');
  }
  return { text: p.text, verified: p.toCheck.map((c) => c.entry), unverified: p.unverified };
}

/**
 * Opens a signed note and verifies every signature by a key in `verifiers`.
 * Unknown keys are ignored; a bad signature by a known key rejects the note;
 * at least one known key must have signed.
 * @throws {VerificationError} NOTE_MALFORMED, NOTE_SIGNATURE_INVALID, NOTE_NO_VERIFIABLE_SIGNATURE
 */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const p = parseNote(note, verifiers);
  for (const c of p.toCheck) if (!c.verifier.verify(p.message, c.signature)) throw badSignature(c.entry);
  return opened(p);
}

/**
 * {@link openNote} with the signature checks run off the main thread where the verifier supports it
 * (Node's libuv thread pool), so bulk verification can hash and check signatures at once.
 * @throws {VerificationError} NOTE_MALFORMED, NOTE_SIGNATURE_INVALID, NOTE_NO_VERIFIABLE_SIGNATURE
 */
export async function openNoteAsync(note: string, verifiers: readonly NoteVerifier[]): Promise<OpenedNote> {
  const p = parseNote(note, verifiers);
  const results = await Promise.all(p.toCheck.map((c) => (c.verifier.verifyAsync ? c.verifier.verifyAsync(p.message, c.signature) : Promise.resolve(c.verifier.verify(p.message, c.signature)))));
  results.forEach((ok, i) => {
    if (!ok) throw badSignature(p.toCheck[i]!.entry);
  });
  return opened(p);
}
