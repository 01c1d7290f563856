/**
 * DSSE (Dead Simple Signing Envelope, https://github.com/secure-systems-lab/dsse, protocol v1.0.2)
 * and in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md).
 *
 * The signature is over PAE(payloadType, payload), never over the payload alone:
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 * where SP is one space (0x20), LEN is the byte length as ASCII decimal without leading zeros, and
 * type is UTF-8. Pure: the caller signs and verifies with its own keys.
 * @module
 */
import { fromBase64Strict, toBase64 } from './hash.js';

/** The payload type of in-toto statements in a DSSE envelope. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** The `_type` of an in-toto Statement v1. */
export const INTOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

/** One DSSE signature: base64 `sig`, and a `keyid` hint (not trusted; see docs/bundle-format.md). */
export interface DsseSignature {
  readonly keyid: string;
  readonly sig: string;
}

/** A DSSE envelope in its JSON form: the payload is standard base64. */
export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: string;
  readonly signatures: readonly DsseSignature[];
}

/** An in-toto resource descriptor, as Custos uses it: a name and a SHA-256 digest. */
export interface IntotoSubject {
  readonly name: string;
  readonly digest: { readonly sha256: string };
}

/** An in-toto Statement v1. */
export interface IntotoStatement<P = unknown> {
  readonly _type: typeof INTOTO_STATEMENT_V1;
  readonly subject: readonly IntotoSubject[];
  readonly predicateType: string;
  readonly predicate: P;
}

/** DSSE v1 pre-authentication encoding: the exact bytes that are signed. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type, Buffer.from(` ${payload.length} `, 'utf8'), payload]);
}

/** Signs `payload` into a DSSE envelope with one key (`sign` is raw Ed25519 over the PAE bytes). */
export function signDsse(payloadType: string, payload: Uint8Array, keyid: string, sign: (message: Uint8Array) => Uint8Array): DsseEnvelope {
  return { payloadType, payload: toBase64(payload), signatures: [{ keyid, sig: toBase64(sign(pae(payloadType, payload))) }] };
}

/** The outcome of {@link verifyDsse}. */
export interface DsseVerification {
  readonly ok: boolean;
  /** The decoded payload when the base64 is well formed. */
  readonly payload: Buffer | undefined;
  readonly detail?: string;
}

/**
 * Verifies a DSSE envelope with one key: some signature whose `keyid` is `keyid` (or empty) must
 * verify over the PAE. Signatures by other key ids are ignored (as in the DSSE spec's verifier).
 */
export function verifyDsse(env: DsseEnvelope, keyid: string, verify: (message: Uint8Array, signature: Uint8Array) => boolean): DsseVerification {
  const payload = fromBase64Strict(env.payload);
  if (payload === undefined) return { ok: false, payload, detail: 'payload is not canonical base64' };
  const message = pae(env.payloadType, payload);
  const mine = env.signatures.filter((s) => s.keyid === keyid || s.keyid === '');
  if (mine.length === 0) return { ok: false, payload, detail: `no signature with keyid ${keyid}` };
  for (const s of mine) {
    const sig = fromBase64Strict(s.sig);
    if (sig !== undefined && verify(message, sig)) return { ok: true, payload };
  }
  return { ok: false, payload, detail: 'no signature verifies over PAE(payloadType, payload)' };
}
