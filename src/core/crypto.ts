/**
 * The platform primitives of src/core: SHA-256 and Ed25519, here from node:crypto.
 *
 * The explorer's browser bundle (scripts/build-web.mjs) swaps this module for crypto.browser.ts,
 * which has the same exports over @noble/hashes and @noble/curves. Nothing else in src/core
 * imports node:crypto.
 * @module
 */
import { hash as nodeHashFn, createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

// crypto.hash (Node >= 20.12) is faster than createHash for small inputs, and asking it for a
// latin1 string then copying that into a Buffer is faster still than its 'buffer' output
// (0.4 us against 0.85 us for a 65-byte node on this machine; bench/RESULTS.md). latin1 maps
// each byte to one char, so the round trip is exact.
const oneShot: ((data: Uint8Array) => Buffer) | undefined =
  typeof nodeHashFn === 'function' ? (data) => Buffer.from((nodeHashFn as (a: string, d: Uint8Array, e: string) => string)('sha256', data, 'latin1'), 'latin1') : undefined;

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Buffer {
  if (oneShot) return oneShot(data);
  return createHash('sha256').update(data).digest();
}

/** SHA-256 of `data` as a latin1 string (one char per byte): the allocation-free form for bulk checks. */
export const sha256Latin1: (data: Uint8Array) => string =
  typeof nodeHashFn === 'function'
    ? (data) => (nodeHashFn as (a: string, d: Uint8Array, e: string) => string)('sha256', data, 'latin1')
    : (data) => createHash('sha256').update(data).digest().toString('latin1');

/** Checks Ed25519 signatures by one public key. */
export interface Ed25519Verifier {
  verify(message: Uint8Array, signature: Uint8Array): boolean;
  /** The same check, run off the main thread. */
  verifyAsync?(message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Ed25519 public key object from its 32 raw bytes. */
export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Ed25519 private key object from its 32-byte seed. */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** Raw 32-byte Ed25519 public key of a private or public key object. */
export function ed25519RawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

/** Ed25519 signature of `message` by a private key object. */
export function ed25519Sign(key: KeyObject, message: Uint8Array): Buffer {
  return sign(null, message, key);
}

/**
 * A verifier for the 32-byte Ed25519 public key `raw`.
 * @throws {Error} when `raw` is not an Ed25519 public key
 */
export function ed25519Verifier(raw: Uint8Array): Ed25519Verifier {
  const pub = ed25519PublicKeyFromRaw(raw);
  return {
    verify: (message, signature) => signature.length === 64 && verify(null, message, pub, signature),
    verifyAsync: (message, signature) =>
      signature.length !== 64 ? Promise.resolve(false) : new Promise<boolean>((resolve, reject) => verify(null, message, pub, signature, (err, ok) => (err ? reject(err) : resolve(ok)))),
  };
}
