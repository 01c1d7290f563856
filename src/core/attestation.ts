/**
 * Attestations: one fact of the log (a consent policy version, or an inference receipt) issued as
 * an IETF SD-JWT (RFC 9901, Selective Disclosure for JWTs) signed with the log's Ed25519 issuer
 * key, in which every claim about the entry is selectively disclosable, and the entry's index, leaf
 * hash, inclusion proof and checkpoint are always in clear, so a verifier can check that the entry
 * is in the log. docs/attestations.md specifies the format.
 *
 * Pure: the signer and the salts are passed in. Issuing uses `@sd-jwt/core` (packing the claims
 * into disclosures and signing the JWT); presenting and verifying walk the payload here, because
 * the library ignores a disclosure no digest refers to, and RFC 9901 §7.1 says such an SD-JWT
 * MUST be rejected.
 * @module
 */
import { Jwt, SDJwtInstance } from '@sd-jwt/core';
import { canonicalJson } from './canonical-json.js';
import { ed25519Verifier } from './crypto.js';
import { ValidationError, VerificationError } from './errors.js';
import { ATTESTATION_KINDS } from './events.js';
import { HASH_SIZE, bytesEqual, sha256, toHex } from './hash.js';
import { openCheckpoint } from './checkpoint.js';
import { rootFromInclusionProof } from './merkle/inclusion.js';
import { parseVerifierKey, type NoteVerifier } from './note.js';

/** The JOSE header `typ` of a Custos attestation (explicit typing, RFC 8725 §3.11). */
export const ATTESTATION_TYP = 'custos-attestation+sd-jwt';
/** The JWS algorithm: Ed25519 (RFC 8037). */
export const ATTESTATION_ALG = 'EdDSA';
/** The hash of the disclosures (`_sd_alg`). */
export const SD_ALG = 'sha-256';
/** The kinds of fact attested (defined with the event registry, which logs them). */
export { ATTESTATION_KINDS };
/** A kind of attestation. */
export type AttestationKind = (typeof ATTESTATION_KINDS)[number];

// ---- the issuer key (a JWK) ----------------------------------------------------------------------

/** The public issuer key as a JWK (RFC 8037 OKP, Ed25519). */
export interface IssuerJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  /** base64url of the 32-byte public key. */
  readonly x: string;
  /** The RFC 7638 thumbprint (base64url). */
  readonly kid: string;
  readonly alg: typeof ATTESTATION_ALG;
  readonly use: 'sig';
}

const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;
const B64URL_64 = /^[A-Za-z0-9_-]{86}$/;

function b64url32(s: unknown): Buffer | undefined {
  if (typeof s !== 'string' || !B64URL_32.test(s)) return undefined;
  const b = Buffer.from(s, 'base64url');
  // The last character carries 4 unused bits: they must be zero (one encoding per key).
  return b.length === 32 && b.toString('base64url') === s ? b : undefined;
}

/** The RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key. */
export function jwkThumbprint(publicKey: Uint8Array): Buffer {
  // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
  return sha256(Buffer.from(`{"crv":"Ed25519","kty":"OKP","x":"${Buffer.from(publicKey).toString('base64url')}"}`, 'utf8'));
}

/** The public JWK of a 32-byte Ed25519 public key. */
export function issuerJwk(publicKey: Uint8Array): IssuerJwk {
  if (publicKey.length !== 32) throw new ValidationError('VALIDATION_FAILED', 'an Ed25519 public key is 32 bytes');
  return Object.freeze({ kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url'), kid: jwkThumbprint(publicKey).toString('base64url'), alg: ATTESTATION_ALG, use: 'sig' });
}

/** The key id the log records (ATTESTATION_KEY_PUBLISHED `keyId`): the RFC 7638 thumbprint in hex. */
export function issuerKeyIdHex(jwk: IssuerJwk): string {
  return toHex(Buffer.from(jwk.kid, 'base64url'));
}

/**
 * Parses an issuer key: a public Ed25519 JWK (JSON text or object). `kid`, when present, must be
 * its RFC 7638 thumbprint; a private member (`d`) is refused, so a private key is never taken for
 * a public one by mistake.
 * @throws {VerificationError} KEY_MALFORMED
 */
export function parseIssuerJwk(input: unknown): IssuerJwk {
  let o = input;
  if (typeof o === 'string') {
    try {
      o = JSON.parse(o) as unknown;
    } catch {
      throw new VerificationError('KEY_MALFORMED', 'the issuer key is not a JWK (JSON)');
    }
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new VerificationError('KEY_MALFORMED', 'the issuer key is not a JWK (JSON object)');
  const k = o as Record<string, unknown>;
  if ('d' in k) throw new VerificationError('KEY_MALFORMED', 'the issuer key holds a private key (d): give the public key');
  if (k['kty'] !== 'OKP' || k['crv'] !== 'Ed25519') throw new VerificationError('KEY_MALFORMED', 'the issuer key is not an Ed25519 JWK (kty OKP, crv Ed25519)');
  const x = b64url32(k['x']);
  if (!x) throw new VerificationError('KEY_MALFORMED', 'the issuer key x is not base64url of 32 bytes');
  const jwk = issuerJwk(x);
  if (k['kid'] !== undefined && k['kid'] !== jwk.kid) throw new VerificationError('KEY_MALFORMED', 'the issuer key kid is not its RFC 7638 thumbprint');
  if (k['alg'] !== undefined && k['alg'] !== ATTESTATION_ALG) throw new VerificationError('KEY_MALFORMED', `the issuer key alg is not ${ATTESTATION_ALG}`);
  return jwk;
}

// ---- the claims -----------------------------------------------------------------------------------

/** The facts of an INFERENCE_EXECUTED entry an attestation may disclose (all from the log entry). */
export interface ReceiptFacts {
  readonly purpose: string;
  readonly role: string;
  readonly policyId: string;
  readonly policyVersion: number;
  /** The consent decision the inference ran under (always PERMITTED: a denied one is not executed). */
  readonly decision: string;
  /** The entry's time (RFC 3339). */
  readonly time: string;
  /** SHA-256 of the model spec document. */
  readonly modelDigest: string;
  /** SHA-256 of the pipeline manifest document. */
  readonly pipelineDigest: string;
  /** Output name → SHA-256 of the output's bytes. */
  readonly outputs: Readonly<Record<string, string>>;
}

/** The facts of a consent policy version an attestation may disclose. */
export interface ConsentFacts {
  readonly policyId: string;
  readonly policyVersion: number;
  /** SHA-256 of the policy version document. */
  readonly policyHash: string;
  /** The root provision's purposes of use and roles (codes or SYSTEM|CODE codings). */
  readonly purposes: readonly string[];
  readonly roles: readonly string[];
  /** The root provision's type: permit or deny. */
  readonly decision: 'permit' | 'deny';
  /** Nested provisions (exceptions to the root), counted at every depth. */
  readonly exceptions: number;
  readonly revoked: boolean;
  readonly validFrom: string;
  readonly validUntil?: string | undefined;
  /** The time of the entry that recorded this version. */
  readonly time: string;
}

/** Where the attested entry sits in the log: always in clear. */
export interface EntryInclusion {
  /** The log's origin (also `iss`). */
  readonly origin: string;
  readonly entryIndex: number;
  /** RFC 9162 leaf hash of the entry, hex. */
  readonly leafHash: string;
  readonly treeSize: number;
  /** The root of the checkpoint, hex. */
  readonly rootHash: string;
  /** The inclusion proof, hex hashes. */
  readonly proof: readonly string[];
  /** The signed checkpoint (C2SP signed note) the proof is against. */
  readonly checkpoint: string;
  /** The log's verifier key (C2SP note key) that signs its checkpoints. */
  readonly logKey: string;
}

/** Claim names that are always in clear (docs/attestations.md). */
export const PLAIN_CLAIMS = ['iss', 'iat', 'custos_attestation', 'entry_index', 'leaf_hash', 'inclusion'] as const;

/** The selectively disclosable claims of each kind, in order (docs/attestations.md). */
export const DISCLOSABLE_CLAIMS: Readonly<Record<AttestationKind, readonly string[]>> = Object.freeze({
  receipt: ['purpose', 'role', 'policy_id', 'policy_version', 'decision', 'time', 'model_digest', 'pipeline_digest', 'outputs'],
  consent: ['policy_id', 'policy_version', 'policy_hash', 'purposes', 'roles', 'decision', 'exceptions', 'revoked', 'valid_from', 'valid_until', 'time'],
});

type Claims = Record<string, unknown>;
type Frame = Record<string, unknown>;

function receiptClaims(f: ReceiptFacts): { claims: Claims; frame: Frame } {
  const claims: Claims = {
    purpose: f.purpose,
    role: f.role,
    policy_id: f.policyId,
    policy_version: f.policyVersion,
    decision: f.decision,
    time: f.time,
    model_digest: f.modelDigest,
    pipeline_digest: f.pipelineDigest,
    outputs: { ...f.outputs },
  };
  // Each output's digest is disclosable on its own (outputs.NAME), inside the disclosable `outputs`.
  return { claims, frame: { _sd: [...DISCLOSABLE_CLAIMS.receipt], outputs: { _sd: Object.keys(f.outputs) } } };
}

function consentClaims(f: ConsentFacts): { claims: Claims; frame: Frame } {
  const claims: Claims = {
    policy_id: f.policyId,
    policy_version: f.policyVersion,
    policy_hash: f.policyHash,
    purposes: [...f.purposes],
    roles: [...f.roles],
    decision: f.decision,
    exceptions: f.exceptions,
    revoked: f.revoked,
    valid_from: f.validFrom,
    ...(f.validUntil === undefined ? {} : { valid_until: f.validUntil }),
    time: f.time,
  };
  // Each purpose and role is an array element disclosable on its own (purposes.TREAT).
  return {
    claims,
    frame: {
      _sd: DISCLOSABLE_CLAIMS.consent.filter((k) => k in claims),
      purposes: { _sd: f.purposes.map((_, i) => i) },
      roles: { _sd: f.roles.map((_, i) => i) },
    },
  };
}

/** What {@link issueAttestation} needs. */
export interface IssueAttestationInput {
  readonly kind: AttestationKind;
  readonly facts: ReceiptFacts | ConsentFacts;
  readonly inclusion: EntryInclusion;
  readonly jwk: IssuerJwk;
  /** Signs the JWS signing input (ASCII) with the issuer's Ed25519 key: the raw 64-byte signature. */
  readonly sign: (data: Uint8Array) => Uint8Array;
  /** `iat`, seconds since the epoch. */
  readonly issuedAt: number;
  /** 16 random bytes per call (a disclosure's salt). */
  readonly randomBytes: (n: number) => Uint8Array;
}

function sdHasher(data: string | ArrayBuffer, alg: string): Uint8Array {
  if (alg.toLowerCase() !== SD_ALG) throw new VerificationError('ATTESTATION_MALFORMED', `unsupported _sd_alg ${alg}`);
  return sha256(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data));
}

function b64urlSha256(s: string): string {
  return sha256(Buffer.from(s, 'ascii')).toString('base64url');
}

/**
 * Issues an attestation: the compact SD-JWT, `<JWT>~<disclosure>~...~` (no key-binding JWT).
 * @example
 * const sdJwt = await issueAttestation({ kind: 'receipt', facts, inclusion, jwk, sign, issuedAt, randomBytes });
 */
export async function issueAttestation(i: IssueAttestationInput): Promise<string> {
  const { claims, frame } = i.kind === 'receipt' ? receiptClaims(i.facts as ReceiptFacts) : consentClaims(i.facts as ConsentFacts);
  const inc = i.inclusion;
  const payload: Claims = {
    iss: inc.origin,
    iat: i.issuedAt,
    custos_attestation: i.kind,
    entry_index: inc.entryIndex,
    leaf_hash: inc.leafHash,
    inclusion: { tree_size: inc.treeSize, root_hash: inc.rootHash, proof: [...inc.proof], checkpoint: inc.checkpoint, log_key: inc.logKey },
    ...claims,
  };
  // Fails here, not in a verifier: every value must be representable as (canonical) JSON.
  canonicalJson(payload as never);
  const sd = new SDJwtInstance<Claims>({
    signer: (data: string) => Buffer.from(i.sign(Buffer.from(data, 'ascii'))).toString('base64url'),
    signAlg: ATTESTATION_ALG,
    hasher: sdHasher,
    hashAlg: SD_ALG,
    saltGenerator: () => Buffer.from(i.randomBytes(16)).toString('base64url'),
  });
  return sd.issue(payload, frame as never, { header: { typ: ATTESTATION_TYP, kid: i.jwk.kid } });
}

// ---- decoding, presenting, verifying -----------------------------------------------------------------

/** One disclosure of an SD-JWT, with the claim path it discloses. */
export interface DecodedDisclosure {
  /** As it appears in the SD-JWT (base64url). */
  readonly encoded: string;
  /** base64url SHA-256 of `encoded`: the digest the payload refers to it by. */
  readonly digest: string;
  /** `purpose`, `outputs.report_json`, `purposes.TREAT` (an array element is named by its value). */
  readonly path: string;
  /** The path of the disclosure that contains it, if nested. */
  readonly parent: string | undefined;
  readonly value: unknown;
}

/** A compact SD-JWT taken apart, every disclosure matched to exactly one digest of the payload. */
export interface DecodedAttestation {
  readonly jwt: string;
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly disclosures: readonly DecodedDisclosure[];
  /** The claims as disclosed: the payload with the disclosures put in (nested), `_sd` removed. */
  readonly claims: Record<string, unknown>;
  /** Paths of disclosable claims that this presentation hides (known only when the parent is disclosed). */
  readonly hidden: number;
}

function malformed(message: string): never {
  throw new VerificationError('ATTESTATION_MALFORMED', message);
}
function badDisclosure(message: string, details?: Record<string, unknown>): never {
  throw new VerificationError('DISCLOSURE_INVALID', message, details ? { details } : undefined);
}

function b64urlJson(part: string, what: string, fail: (m: string) => never): unknown {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) fail(`${what} is not base64url`);
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
  } catch {
    return fail(`${what} is not base64url-encoded JSON`);
  }
}

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

/** Largest attestation accepted (characters of the compact form). */
export const MAX_ATTESTATION_CHARS = 256 * 1024;

/**
 * Takes a compact SD-JWT apart and matches every disclosure to the one digest that refers to it
 * (RFC 9901 §7.1 steps 3-5): a disclosure no digest refers to, a digest that appears twice, a
 * disclosure given twice, or one whose claim name is already in clear is refused. Does not check
 * the signature ({@link verifyAttestation} does).
 * @throws {VerificationError} ATTESTATION_MALFORMED, DISCLOSURE_INVALID
 */
export function decodeAttestation(compact: string): DecodedAttestation {
  const text = compact.trim();
  if (text.length > MAX_ATTESTATION_CHARS) malformed('the attestation is too large');
  const parts = text.split('~');
  if (parts.length < 2) malformed('not a compact SD-JWT (JWT~disclosures~)');
  if (parts[parts.length - 1] !== '') malformed('a key-binding JWT is attached: Custos attestations have no holder binding');
  const jwt = parts[0]!;
  const encoded = parts.slice(1, -1);
  const segs = jwt.split('.');
  if (segs.length !== 3) malformed('the issuer-signed JWT has not three segments');
  const header = b64urlJson(segs[0]!, 'the JWT header', malformed);
  const payload = b64urlJson(segs[1]!, 'the JWT payload', malformed);
  if (!isObject(header) || !isObject(payload)) malformed('the JWT header and payload must be JSON objects');
  if (header['typ'] !== ATTESTATION_TYP) malformed(`the JWT typ is not ${ATTESTATION_TYP}`);
  if (header['alg'] !== ATTESTATION_ALG) malformed(`the JWT alg is not ${ATTESTATION_ALG}`);
  if (payload['_sd_alg'] !== SD_ALG) malformed(`_sd_alg is not ${SD_ALG}`);

  const byDigest = new Map<string, { encoded: string; arr: unknown[] }>();
  for (const e of encoded) {
    if (e === '') badDisclosure('an empty disclosure');
    const arr = b64urlJson(e, 'a disclosure', (m) => badDisclosure(m));
    if (!Array.isArray(arr) || (arr.length !== 2 && arr.length !== 3) || typeof arr[0] !== 'string') badDisclosure('a disclosure is not [salt, name, value] or [salt, value]');
    const digest = b64urlSha256(e);
    if (byDigest.has(digest)) badDisclosure('a disclosure is given twice');
    byDigest.set(digest, { encoded: e, arr: arr as unknown[] });
  }
  const used = new Set<string>();
  const seenDigests = new Set<string>();
  const disclosures: DecodedDisclosure[] = [];
  let hidden = 0;
  const take = (digest: unknown): { encoded: string; arr: unknown[] } | undefined => {
    if (typeof digest !== 'string') badDisclosure('a digest is not a string');
    if (seenDigests.has(digest)) badDisclosure('a digest appears twice in the payload');
    seenDigests.add(digest);
    const d = byDigest.get(digest);
    if (d) used.add(digest);
    else hidden++;
    return d;
  };
  // Unpacks `value` (recursively); `path` names it for the disclosures inside.
  const unpack = (value: unknown, path: string, parent: string | undefined, depth: number): unknown => {
    if (depth > 32) malformed('claims nested too deep');
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      for (const el of value) {
        if (isObject(el) && '...' in el) {
          if (Object.keys(el).length !== 1) badDisclosure('an array element digest object has other members');
          const d = take(el['...']);
          if (!d) continue;
          if (d.arr.length !== 2) badDisclosure('an array element disclosure names a claim', { path });
          const v = d.arr[1];
          const at = `${path}.${typeof v === 'string' || typeof v === 'number' ? String(v) : out.length}`;
          disclosures.push({ encoded: d.encoded, digest: b64urlSha256(d.encoded), path: at, parent, value: v });
          out.push(unpack(v, at, at, depth + 1));
        } else out.push(unpack(el, `${path}.${out.length}`, parent, depth + 1));
      }
      return out;
    }
    if (!isObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '_sd' || (k === '_sd_alg' && depth === 0)) continue;
      out[k] = unpack(v, path ? `${path}.${k}` : k, parent, depth + 1);
    }
    const sd = value['_sd'];
    if (sd !== undefined) {
      if (!Array.isArray(sd)) badDisclosure('_sd is not an array');
      for (const digest of sd) {
        const d = take(digest);
        if (!d) continue;
        if (d.arr.length !== 3 || typeof d.arr[1] !== 'string') badDisclosure('an object disclosure does not name its claim', { path });
        const name = d.arr[1];
        if (name === '_sd' || name === '...' || name === '_sd_alg') badDisclosure(`a disclosure names the reserved claim ${name}`);
        if (Object.hasOwn(out, name)) badDisclosure(`a disclosure names a claim already present: ${name}`);
        const at = path ? `${path}.${name}` : name;
        disclosures.push({ encoded: d.encoded, digest: b64urlSha256(d.encoded), path: at, parent, value: d.arr[2] });
        out[name] = unpack(d.arr[2], at, at, depth + 1);
      }
    }
    return out;
  };
  const claims = unpack(payload, '', undefined, 0) as Record<string, unknown>;
  for (const digest of byDigest.keys()) if (!used.has(digest)) badDisclosure('a disclosure is not referenced by any digest of the signed payload (edited, or from another attestation)');
  return { jwt, header, payload, disclosures, claims, hidden };
}

/**
 * The presentation of an attestation that discloses only `paths` (and the claims that contain
 * them: `outputs.report_json` keeps `outputs`). A path names a claim (`purpose`), an output
 * (`outputs.report_json`), a purpose or role of a consent (`purposes.TREAT`), or a whole
 * container (`outputs`: every output). The always-disclosed claims stay.
 * @throws {ValidationError} VALIDATION_FAILED for a path the attestation does not disclose
 * @throws {VerificationError} ATTESTATION_MALFORMED, DISCLOSURE_INVALID
 */
export function presentAttestation(compact: string, paths: readonly string[]): string {
  const a = decodeAttestation(compact);
  const known = new Map(a.disclosures.map((d) => [d.path, d]));
  const keep = new Set<string>();
  const unknown = paths.filter((p) => !known.has(p) && !a.disclosures.some((d) => d.path.startsWith(`${p}.`)));
  if (unknown.length > 0) {
    throw new ValidationError('VALIDATION_FAILED', `--disclose: ${unknown.join(', ')} not in this attestation (it discloses: ${[...known.keys()].join(', ')})`, {
      issues: unknown.map((p) => ({ path: 'disclose', message: `unknown claim ${p}` })),
    });
  }
  for (const p of paths) {
    for (const d of a.disclosures) {
      // The claim itself, everything inside it, and every disclosure that contains it.
      if (d.path === p || d.path.startsWith(`${p}.`)) {
        keep.add(d.path);
        for (let q = d.parent; q !== undefined; q = known.get(q)?.parent) keep.add(q);
      }
    }
  }
  return `${[a.jwt, ...a.disclosures.filter((d) => keep.has(d.path)).map((d) => d.encoded)].join('~')}~`;
}

/** The paths an attestation discloses (to choose from with `present --disclose`). */
export function disclosedPaths(compact: string): string[] {
  return decodeAttestation(compact).disclosures.map((d) => d.path);
}

/** Options of {@link verifyAttestation}. */
export interface VerifyAttestationOptions {
  readonly issuerKey: IssuerJwk;
  /**
   * A checkpoint the verifier trusts (C2SP signed note), to check inclusion against instead of the
   * one in the attestation: it must be for the same log and tree size.
   */
  readonly checkpoint?: string;
  /** The log's verifier key, pinned (default: the `log_key` the issuer signed into the attestation). */
  readonly logKey?: NoteVerifier;
  /**
   * The verifier's time, seconds since the epoch: an attestation issued later (`iat`) is refused
   * (60 s of skew allowed). Core reads no clock: without it, `iat` is not checked.
   */
  readonly now?: number;
}

/** What a verified presentation establishes. */
export interface VerifiedAttestation {
  readonly kind: AttestationKind;
  /** The issuer (`iss`: the log's origin). */
  readonly issuer: string;
  readonly issuedAt: number;
  /** The issuer key's RFC 7638 thumbprint, hex (as ATTESTATION_KEY_PUBLISHED records it). */
  readonly keyId: string;
  /** The same thumbprint, base64url (the JWT header `kid`). */
  readonly kid: string;
  readonly entryIndex: number;
  readonly leafHash: string;
  /** The disclosed claims (the always-disclosed ones excluded). */
  readonly disclosed: Record<string, unknown>;
  /** Each disclosure checked against its digest. */
  readonly disclosures: number;
  /** Digests whose disclosures this presentation withholds. */
  readonly withheld: number;
  readonly checkpoint: { readonly origin: string; readonly treeSize: number; readonly rootHash: string; readonly source: 'attestation' | 'given'; readonly signedBy: string };
}

const HEX64 = /^[0-9a-f]{64}$/;

function inclusionOf(payload: Record<string, unknown>): { entryIndex: number; leafHash: Buffer; treeSize: number; rootHash: Buffer; proof: Buffer[]; checkpoint: string; logKey: string; iss: string } {
  const iss = payload['iss'];
  const idx = payload['entry_index'];
  const leaf = payload['leaf_hash'];
  const inc = payload['inclusion'];
  if (typeof iss !== 'string' || iss.length === 0) malformed('iss is missing');
  if (!Number.isSafeInteger(idx) || (idx as number) < 0) malformed('entry_index is not an index');
  if (typeof leaf !== 'string' || !HEX64.test(leaf)) malformed('leaf_hash is not 64 lowercase hex');
  if (!isObject(inc)) malformed('inclusion is missing');
  const { tree_size: size, root_hash: root, proof, checkpoint, log_key: logKey } = inc;
  if (!Number.isSafeInteger(size) || (size as number) < 1) malformed('inclusion.tree_size is not a tree size');
  if (typeof root !== 'string' || !HEX64.test(root)) malformed('inclusion.root_hash is not 64 lowercase hex');
  if (!Array.isArray(proof) || proof.length > 64 || !proof.every((p) => typeof p === 'string' && HEX64.test(p))) malformed('inclusion.proof is not a list of hex hashes');
  if (typeof checkpoint !== 'string' || typeof logKey !== 'string') malformed('inclusion.checkpoint or inclusion.log_key is missing');
  return {
    iss,
    entryIndex: idx as number,
    leafHash: Buffer.from(leaf, 'hex'),
    treeSize: size as number,
    rootHash: Buffer.from(root, 'hex'),
    proof: (proof as string[]).map((p) => Buffer.from(p, 'hex')),
    checkpoint,
    logKey,
  };
}

/**
 * Verifies a presentation offline: the issuer's signature (EdDSA under `issuerKey`), each
 * disclosure against its digest (every one referenced exactly once), the inclusion of the entry's
 * leaf hash at its index by the proof, against the checkpoint (the one given, or the one in the
 * attestation), and that checkpoint's signature by the log key.
 * @throws {VerificationError} ATTESTATION_MALFORMED, ATTESTATION_SIGNATURE_INVALID, DISCLOSURE_INVALID,
 *   INCLUSION_PROOF_INVALID, ATTESTATION_CHECKPOINT_MISMATCH, CHECKPOINT_SIGNATURE_INVALID
 */
export async function verifyAttestation(compact: string, o: VerifyAttestationOptions): Promise<VerifiedAttestation> {
  const a = decodeAttestation(compact);
  // 1. The signature: the kid must name the key given, and the JWS verify under it.
  if (a.header['kid'] !== undefined && a.header['kid'] !== o.issuerKey.kid) {
    throw new VerificationError('ATTESTATION_SIGNATURE_INVALID', 'the attestation names another issuer key (kid)', { details: { kid: a.header['kid'], issuerKey: o.issuerKey.kid } });
  }
  const ed = ed25519Verifier(Buffer.from(o.issuerKey.x, 'base64url'));
  try {
    const iat = a.payload['iat'];
    await Jwt.fromEncode(a.jwt).verify((data: string, sig: string) => B64URL_64.test(sig) && ed.verify(Buffer.from(data, 'ascii'), Buffer.from(sig, 'base64url')), {
      currentDate: o.now ?? (typeof iat === 'number' ? iat : 0),
      skewSeconds: 60,
    });
  } catch (err) {
    throw new VerificationError('ATTESTATION_SIGNATURE_INVALID', 'the issuer signature does not verify under the issuer key', { cause: err });
  }
  const p = a.payload;
  const kind = p['custos_attestation'];
  if (kind !== 'receipt' && kind !== 'consent') malformed('custos_attestation is not receipt or consent');
  if (!Number.isSafeInteger(p['iat'])) malformed('iat is missing');
  // 2. Inclusion: the proof takes the leaf to the root of the checkpoint.
  const inc = inclusionOf(p);
  let logKey = o.logKey;
  if (!logKey) {
    try {
      logKey = parseVerifierKey(inc.logKey);
    } catch (err) {
      throw new VerificationError('ATTESTATION_MALFORMED', 'inclusion.log_key is not a verifier key', { cause: err });
    }
  }
  const note = o.checkpoint ?? inc.checkpoint;
  let cp: { origin: string; treeSize: number; rootHash: Buffer };
  try {
    cp = openCheckpoint(note, [logKey]);
  } catch (err) {
    throw new VerificationError('CHECKPOINT_SIGNATURE_INVALID', `the ${o.checkpoint === undefined ? "attestation's" : 'given'} checkpoint is malformed or not signed by the log key ${logKey.name}`, {
      cause: err,
    });
  }
  if (cp.origin !== inc.iss) throw new VerificationError('ATTESTATION_CHECKPOINT_MISMATCH', `the checkpoint is of log ${cp.origin}, the attestation of ${inc.iss}`);
  if (cp.treeSize !== inc.treeSize) {
    throw new VerificationError('ATTESTATION_CHECKPOINT_MISMATCH', `the checkpoint is at size ${cp.treeSize}, the inclusion proof at size ${inc.treeSize}`, {
      details: { checkpointSize: cp.treeSize, proofSize: inc.treeSize },
    });
  }
  const root = rootFromInclusionProof(inc.entryIndex, inc.treeSize, inc.leafHash, inc.proof);
  if (!bytesEqual(root, cp.rootHash) || cp.rootHash.length !== HASH_SIZE) {
    throw new VerificationError('INCLUSION_PROOF_INVALID', "the entry's leaf hash is not at its index in the checkpoint's tree", { details: { entryIndex: inc.entryIndex, treeSize: inc.treeSize } });
  }
  if (!bytesEqual(inc.rootHash, cp.rootHash)) throw new VerificationError('INCLUSION_PROOF_INVALID', 'inclusion.root_hash is not the root of the checkpoint');
  const disclosed = Object.fromEntries(Object.entries(a.claims).filter(([k]) => !(PLAIN_CLAIMS as readonly string[]).includes(k)));
  return {
    kind,
    issuer: inc.iss,
    issuedAt: p['iat'] as number,
    keyId: issuerKeyIdHex(o.issuerKey),
    kid: o.issuerKey.kid,
    entryIndex: inc.entryIndex,
    leafHash: toHex(inc.leafHash),
    disclosed,
    disclosures: a.disclosures.length,
    withheld: a.hidden,
    checkpoint: { origin: cp.origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), source: o.checkpoint === undefined ? 'attestation' : 'given', signedBy: logKey.name },
  };
}
