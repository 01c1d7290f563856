/**
 * The attestation issuer key of a data directory (issue 15, docs/attestations.md): an Ed25519 key
 * that signs the SD-JWT attestations, beside the log's checkpoint key and kept like it.
 *
 *   custos-data/
 *     attestation.key   the private key, a JWK with `d` (mode 0600, never printed; refused if others can read it)
 *     attestation.jwk   the public key, a JWK (kty OKP, crv Ed25519, kid = RFC 7638 thumbprint), for verifiers
 *
 * Created on first use (`custos attest`, `custos serve`), atomically: written under temporary
 * names with mode 0600 from creation, then linked into place, so two processes racing both end
 * up with the one key that won. The log publishes and commits the key (ATTESTATION_KEY_PUBLISHED)
 * before its first attestation: service/attestations.ts.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError, ValidationError, VerificationError } from '../core/errors.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey, ed25519Sign } from '../core/crypto.js';
import { issuerJwk, issuerKeyIdHex, type IssuerJwk } from '../core/attestation.js';
import { toHex } from '../core/hash.js';
import { assertKeyPrivate } from './data-dir.js';

export const ATTESTATION_KEY_FILE = 'attestation.key';
export const ATTESTATION_JWK_FILE = 'attestation.jwk';

/** An issuer key, loaded: its public JWK, its key id as the log records it, and a signer. */
export interface AttestationKey {
  readonly jwk: IssuerJwk;
  /** The RFC 7638 thumbprint in hex (ATTESTATION_KEY_PUBLISHED `keyId`). */
  readonly keyIdHex: string;
  /** The raw Ed25519 signature of `data`. */
  sign(data: Uint8Array): Uint8Array;
}

function keyFromSeed(seed: Uint8Array): AttestationKey {
  const priv = ed25519PrivateKeyFromSeed(seed);
  const jwk = issuerJwk(ed25519RawPublicKey(priv));
  return Object.freeze({ jwk, keyIdHex: issuerKeyIdHex(jwk), sign: (data: Uint8Array) => ed25519Sign(priv, data) });
}

/** An issuer key held in memory only (tests, and libraries that keep keys elsewhere). */
export function attestationKeyFromSeed(seed: Uint8Array): AttestationKey {
  if (seed.length !== 32) throw new ValidationError('VALIDATION_FAILED', 'an Ed25519 seed is 32 bytes');
  return keyFromSeed(seed);
}

function writeNew(path: string, text: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode);
}

/**
 * Loads the issuer key of a data directory, creating it when `create` and it does not exist yet.
 * @throws {ValidationError} KEY_PERMISSIONS when the private key file is accessible to others
 * @throws {NotFoundError} ATTESTATION_KEY_NOT_FOUND when absent and not `create`
 * @throws {VerificationError} KEY_MALFORMED when a key file is damaged, or the public key file is not the private key's
 */
export function loadAttestationKey(dataDir: string, options: { create?: boolean } = {}): AttestationKey {
  const keyPath = join(dataDir, ATTESTATION_KEY_FILE);
  const pubPath = join(dataDir, ATTESTATION_JWK_FILE);
  if (!existsSync(keyPath)) {
    if (!options.create) throw new NotFoundError('ATTESTATION_KEY_NOT_FOUND', `no attestation issuer key in ${dataDir}`, { details: { dataDir } });
    createKey(dataDir);
  }
  assertKeyPrivate(keyPath);
  let priv: unknown;
  try {
    priv = JSON.parse(readFileSync(keyPath, 'utf8')) as unknown;
  } catch (err) {
    throw new VerificationError('KEY_MALFORMED', `cannot read the attestation key ${keyPath} as a JWK`, { cause: err });
  }
  const d = (priv as { d?: unknown } | null)?.d;
  const seed = typeof d === 'string' && /^[A-Za-z0-9_-]{43}$/.test(d) ? Buffer.from(d, 'base64url') : undefined;
  if (seed?.length !== 32) throw new VerificationError('KEY_MALFORMED', `the attestation key ${keyPath} is not an Ed25519 private JWK`);
  const key = keyFromSeed(seed);
  if ((priv as { x?: unknown }).x !== key.jwk.x) throw new VerificationError('KEY_MALFORMED', `the attestation key ${keyPath}: x is not the public key of d`);
  // The public file is for verifiers; it must be this key's (a stale copy would mislead them).
  if (existsSync(pubPath)) {
    let pub: { x?: unknown } | null;
    try {
      pub = JSON.parse(readFileSync(pubPath, 'utf8')) as { x?: unknown } | null;
    } catch (err) {
      throw new VerificationError('KEY_MALFORMED', `cannot read ${pubPath} as a JWK`, { cause: err });
    }
    if (pub?.x !== key.jwk.x) throw new VerificationError('KEY_MALFORMED', `${pubPath} is not the public key of ${keyPath}`);
  }
  return key;
}

function createKey(dataDir: string): void {
  const seed = randomBytes(32);
  const key = keyFromSeed(seed);
  const tag = `.new-${toHex(randomBytes(6))}`;
  const made: string[] = [];
  try {
    const privJwk = { kty: 'OKP', crv: 'Ed25519', x: key.jwk.x, d: seed.toString('base64url'), kid: key.jwk.kid, alg: key.jwk.alg, use: key.jwk.use };
    writeNew(join(dataDir, ATTESTATION_KEY_FILE + tag), `${JSON.stringify(privJwk)}\n`, 0o600);
    made.push(join(dataDir, ATTESTATION_KEY_FILE + tag));
    writeNew(join(dataDir, ATTESTATION_JWK_FILE + tag), `${JSON.stringify(key.jwk)}\n`, 0o644);
    made.push(join(dataDir, ATTESTATION_JWK_FILE + tag));
    // link, not rename: never replaces a key another process put there meanwhile (then theirs is used).
    try {
      linkSync(join(dataDir, ATTESTATION_KEY_FILE + tag), join(dataDir, ATTESTATION_KEY_FILE));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw err;
    }
    try {
      linkSync(join(dataDir, ATTESTATION_JWK_FILE + tag), join(dataDir, ATTESTATION_JWK_FILE));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot create the attestation key in ${dataDir}`, { cause: err, details: { dataDir } });
  } finally {
    for (const p of made) rmSync(p, { force: true });
  }
}
