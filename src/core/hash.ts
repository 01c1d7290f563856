/**
 * SHA-256 and the RFC 9162 §2.1.1 leaf/node hashing with domain separation.
 * @module
 */
import { sha256, sha256Latin1 } from './crypto.js';
import { ValidationError } from './errors.js';

/** RFC 9162 §2.1.1: leaf hashes are SHA-256(0x00 || data). */
export const RFC6962_LEAF_PREFIX = 0x00;
/** RFC 9162 §2.1.1: interior node hashes are SHA-256(0x01 || left || right). */
export const RFC6962_NODE_PREFIX = 0x01;
/** Every hash in the log is exactly this many bytes. */
export const HASH_SIZE = 32;

/** SHA-256 of `data` (node:crypto in Node, @noble/hashes in the explorer's bundle). */
export { sha256 } from './crypto.js';

/**
 * Encodes entry text as UTF-8 and hashes it as a leaf in one allocation.
 * Returns the entry bytes (a view) and SHA-256(0x00 || bytes).
 */
export function encodeLeaf(text: string): { bytes: Buffer; leafHash: Buffer } {
  const buf = Buffer.from(`\u0000${text}`, 'utf8');
  return { bytes: buf.subarray(1), leafHash: sha256(buf) };
}

/**
 * Encodes entry texts as UTF-8 one after another into shared chunks and hashes each as a leaf in
 * place (the byte before each entry is the 0x00 leaf prefix): no buffer, prefix string or copy per
 * entry. The views it returns share their chunk; the log engine makes one per batch, sized to it.
 */
export class LeafEncoder {
  #buf: Buffer = Buffer.alloc(0);
  #used = 0;
  #leafHash: Buffer = Buffer.alloc(0);
  readonly #chunk: number;

  /** `chunkBytes`: the size of each chunk (a larger entry gets a chunk of its own size). */
  constructor(chunkBytes = 64 * 1024) {
    this.#chunk = chunkBytes;
  }

  /** Encodes `text` and hashes it; returns the entry bytes (see {@link lastLeafHash}). */
  encode(text: string): Buffer {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: count the bytes only when that bound does not fit.
    if (this.#used + 1 + 3 * text.length > this.#buf.length) {
      const need = 1 + Buffer.byteLength(text, 'utf8');
      if (this.#used + need > this.#buf.length) {
        this.#buf = Buffer.allocUnsafe(Math.max(this.#chunk, need));
        this.#used = 0;
      }
    }
    const at = this.#used;
    this.#buf[at] = RFC6962_LEAF_PREFIX;
    const end = at + 1 + this.#buf.write(text, at + 1, 'utf8');
    this.#leafHash = sha256(this.#buf.subarray(at, end));
    this.#used = end;
    return this.#buf.subarray(at + 1, end);
  }

  /** SHA-256(0x00 || bytes) of the entry last encoded. */
  get lastLeafHash(): Buffer {
    return this.#leafHash;
  }
}

/** RFC 9162 leaf hash: SHA-256(0x00 || entry). */
export function hashLeaf(entry: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(entry.length + 1);
  buf[0] = RFC6962_LEAF_PREFIX;
  buf.set(entry, 1);
  return sha256(buf);
}

// Scratch buffer for node hashing: safe because hashing is synchronous.
const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = RFC6962_NODE_PREFIX;

/** RFC 9162 interior node hash: SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    // Not a tree node of this log, but still hash exactly what was given (RFC 6962 test vectors do).
    return sha256(Buffer.concat([Buffer.from([RFC6962_NODE_PREFIX]), left, right]));
  }
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

// Hot-path checks for bulk tile verification. They compare a fresh hash with stored bytes without
// allocating: the digest comes back as a latin1 string (one char per byte) and is compared with the
// stored tile, also held as a latin1 string, in place (String.prototype.startsWith at an offset).
let leafScratch = Buffer.alloc(1 + 4096);

/** True if SHA-256(0x00 || entry) equals the 32 bytes of `stored` (latin1) at byte `at`. */
export function leafHashMatches(entry: Uint8Array, stored: string, at: number): boolean {
  if (leafScratch.length < entry.length + 1) leafScratch = Buffer.alloc(entry.length + 1);
  leafScratch[0] = RFC6962_LEAF_PREFIX;
  leafScratch.set(entry, 1);
  return stored.startsWith(sha256Latin1(leafScratch.subarray(0, entry.length + 1)), at);
}

/**
 * True if SHA-256(0x01 || the 64 bytes of `children` at `childAt`) equals the 32 bytes of `stored`
 * (latin1) at byte `at`: a node checked against its two adjacent stored children.
 */
export function nodeHashMatches(children: Buffer, childAt: number, stored: string, at: number): boolean {
  children.copy(nodeScratch, 1, childAt, childAt + 2 * HASH_SIZE);
  return stored.startsWith(sha256Latin1(nodeScratch), at);
}

/** The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Buffer = sha256(new Uint8Array(0));

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * Parses a 64-character lowercase or uppercase hex SHA-256 digest.
 * @throws {ValidationError} HASH_MALFORMED
 */
export function parseHashHex(input: string, field = 'hash'): Buffer {
  const s = input.toLowerCase();
  if (!HEX_HASH.test(s)) {
    throw new ValidationError('HASH_MALFORMED', `${field} must be 64 hex characters (a SHA-256 digest)`, {
      issues: [{ path: field, message: 'expected 64 hex characters' }],
    });
  }
  return Buffer.from(s, 'hex');
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Standard base64 (with padding) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard base64 decoding as Go's base64.StdEncoding: the alphabet and padding are checked,
 * non-zero padding bits are tolerated. Returns undefined on malformed input.
 */
export function fromBase64(s: string): Buffer | undefined {
  return B64.test(s) ? Buffer.from(s, 'base64') : undefined;
}

/** Strict standard base64 decoding (canonical encodings only); returns undefined on any malformed input. */
export function fromBase64Strict(s: string): Buffer | undefined {
  if (!B64.test(s)) return undefined;
  const out = Buffer.from(s, 'base64');
  // Reject non-canonical encodings (non-zero padding bits).
  if (out.toString('base64') !== s) return undefined;
  return out;
}

/** Constant-time-insensitive equality of two byte arrays (hashes are public values). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.compare(a, b) === 0;
}
