/**
 * The platform primitives of src/core for the browser: the exports of crypto.ts over
 * @noble/hashes (SHA-256) and @noble/curves (Ed25519). scripts/build-web.mjs bundles this module in
 * place of crypto.ts; Node never loads it. `Buffer` is the npm `buffer` package, injected by the build.
 *
 * Signing is not needed in the browser: the key functions that make or sign with private keys throw.
 * @module
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import type * as NodeCrypto from './crypto.js';

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Buffer {
  const d = nobleSha256(data);
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** SHA-256 of `data` as a latin1 string (one char per byte). */
export const sha256Latin1 = (data: Uint8Array): string => sha256(data).toString('latin1');

/**
 * A verifier for the 32-byte Ed25519 public key `raw`. RFC 8032 rules (zip215: false), as
 * OpenSSL behind node:crypto: non-canonical encodings of S, R and the key are refused.
 */
export function ed25519Verifier(raw: Uint8Array): NodeCrypto.Ed25519Verifier {
  if (raw.length !== 32) throw new Error('Ed25519 public key must be 32 bytes');
  const key = Uint8Array.from(raw);
  return { verify: (message, signature) => signature.length === 64 && ed25519.verify(signature, message, key, { zip215: false }) };
}

function noKeyObjects(): never {
  throw new Error('Ed25519 key objects and signing are not available in the browser build of src/core');
}

export const ed25519PublicKeyFromRaw: typeof NodeCrypto.ed25519PublicKeyFromRaw = noKeyObjects;
export const ed25519PrivateKeyFromSeed: typeof NodeCrypto.ed25519PrivateKeyFromSeed = noKeyObjects;
export const ed25519RawPublicKey: typeof NodeCrypto.ed25519RawPublicKey = noKeyObjects;
export const ed25519Sign: typeof NodeCrypto.ed25519Sign = noKeyObjects;

// The build swaps crypto.ts for this module: it must export every name crypto.ts exports, typed alike.
void ({ sha256, sha256Latin1, ed25519Verifier, ed25519PublicKeyFromRaw, ed25519PrivateKeyFromSeed, ed25519RawPublicKey, ed25519Sign } satisfies Omit<typeof NodeCrypto, never>);
