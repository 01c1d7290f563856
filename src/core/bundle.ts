/**
 * Offline evidence bundles: everything needed to check one inference event with nothing but the
 * log's verifier key (docs/bundle-format.md specifies every field and check).
 *
 * The event is an in-toto Statement v1 in a DSSE envelope signed by the log key; the transparency
 * evidence (entry bytes, inclusion proof, signed checkpoint) sits beside it, as a Sigstore bundle
 * carries its tlog entry beside its envelope. Pure: no I/O, no clock; the browser runs it too.
 * @module
 */
import { canonicalJson } from './canonical-json.js';
import { computeCommitment } from './commitment.js';
import { INTOTO_PAYLOAD_TYPE, INTOTO_STATEMENT_V1, signDsse, verifyDsse, type DsseEnvelope, type IntotoStatement, type IntotoSubject } from './dsse.js';
import { entryClaimsIndex } from './entry.js';
import { VerificationError, type VerificationCode } from './errors.js';
import { HASH_SIZE, bytesEqual, fromBase64Strict, hashLeaf, sha256, toBase64, toHex } from './hash.js';
import { verifyInclusion } from './merkle/inclusion.js';
import { openCheckpoint, parseCheckpointBody } from './checkpoint.js';
import type { NoteVerifier } from './note.js';
import { checkWitnessQuorum, type CosignerVerifier } from './cosignature.js';

/** Media type of a Custos bundle, version 1. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.custos.bundle.v1+json';
/** predicateType of an inference attestation: the predicate is the receipt document. */
export const INFERENCE_PREDICATE_TYPE = 'https://custos.dev/attestation/inference/v1';
/** predicateType of a training attestation (custos export --format intoto). */
export const TRAINING_PREDICATE_TYPE = 'https://custos.dev/attestation/training/v1';

/**
 * The receipt documents a bundle carries, by their key in the entry's `payload.documents`.
 * `explanations` (issue 14) only for an inference with explanation artifacts.
 */
export const BUNDLE_DOCUMENTS = ['receipt', 'pipeline', 'model', 'policy', 'explanations'] as const;
export type BundleDocumentName = (typeof BUNDLE_DOCUMENTS)[number];

/** One commitment opened: the value and its salt (base64). */
export interface BundleOpening {
  readonly commitment: string;
  readonly value: string;
  readonly salt: string;
}

/** A Custos bundle (JSON). */
export interface Bundle {
  readonly mediaType: typeof BUNDLE_MEDIA_TYPE;
  /** The in-toto statement of the event, signed by the log key. */
  readonly dsseEnvelope: DsseEnvelope;
  readonly verificationMaterial: {
    readonly tlogEntry: {
      readonly logIndex: number;
      /** The entry bytes, base64: what the leaf hash commits to. */
      readonly canonicalizedBody: string;
      /** hex SHA-256(0x00 || entry bytes). */
      readonly leafHash: string;
      readonly inclusionProof: {
        readonly logIndex: number;
        readonly treeSize: number;
        /** hex, RFC 9162 audit path, leaf to root. */
        readonly hashes: readonly string[];
        /** The signed checkpoint note (C2SP signed-note, with any witness cosignatures). */
        readonly checkpoint: { readonly envelope: string };
      };
    };
    /** Receipt documents as their stored canonical JSON text; an erased one is absent. */
    readonly documents: { readonly [K in BundleDocumentName]?: string };
    /** True when the openings were left out on purpose. */
    readonly redacted: boolean;
    /** Openings of the receipt's artifact URI commitments (absent when redacted; an erased one is absent). */
    readonly openings?: readonly BundleOpening[];
  };
}

/** Named checks, in the order {@link verifyBundle} runs them. */
export type BundleCheckName =
  | 'dsse-signature'
  | 'statement'
  | `document:${BundleDocumentName}`
  | `opening:${string}`
  | 'openings'
  | 'leaf-hash'
  | 'inclusion-proof'
  | 'checkpoint-signature'
  | 'witness-quorum';

/** The failure code of each kind of check. */
export type BundleCheckCode =
  | Extract<
      VerificationCode,
      'DSSE_SIGNATURE_INVALID' | 'STATEMENT_MISMATCH' | 'DOCUMENT_HASH_MISMATCH' | 'OPENING_MISMATCH' | 'LEAF_HASH_MISMATCH' | 'INCLUSION_PROOF_INVALID' | 'CHECKPOINT_SIGNATURE_INVALID'
    >
  | 'WITNESS_QUORUM_NOT_MET';

/** One check's outcome. A failed check carries its code; a skipped one says why. */
export interface BundleCheck {
  readonly name: BundleCheckName;
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly code?: BundleCheckCode;
  readonly detail?: string;
}

/** The result of {@link verifyBundle}: `ok` when no check failed. */
export interface BundleVerification {
  readonly ok: boolean;
  readonly logIndex: number;
  readonly treeSize: number;
  readonly checks: readonly BundleCheck[];
  /** The first failed check, if any (its code is the CLI's error code). */
  readonly failed?: BundleCheck;
}

/** The witness side of {@link verifyBundle}: checks the checkpoint note's cosignatures. */
export type BundleWitnessCheck = (note: string) => { readonly ok: boolean; readonly detail: string };

/** Options of {@link verifyBundle}. */
export interface VerifyBundleOptions {
  /** The log's verifier key. */
  readonly logKey: NoteVerifier;
  /** Trusted witness keys (C2SP tlog-cosignature); none: the witness check is skipped. */
  readonly witnesses?: readonly CosignerVerifier[];
  /** Cosignatures required from `witnesses` (default: all of them). */
  readonly quorum?: number;
}

/** The DSSE keyid of a log key: `<key name>+<8 hex digits of the note key id>` (its vkey's first two fields). */
export function dsseKeyId(key: { readonly name: string; readonly keyId: number }): string {
  return `${key.name}+${(key.keyId >>> 0).toString(16).padStart(8, '0')}`;
}

function malformed(path: string, message: string): never {
  throw new VerificationError('BUNDLE_MALFORMED', `malformed bundle: ${path}: ${message}`, { details: { path } });
}

const HEX64 = /^[0-9a-f]{64}$/;
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function only(o: Record<string, unknown>, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) malformed(`${path}.${k}`, 'unknown member');
}

/**
 * Checks the shape of a parsed bundle (every member, type and encoding); values are not trusted yet.
 * @throws {VerificationError} BUNDLE_MALFORMED
 */
export function parseBundle(input: unknown): Bundle {
  if (!isObj(input)) malformed('$', 'expected an object');
  only(input, '$', ['mediaType', 'dsseEnvelope', 'verificationMaterial']);
  if (input['mediaType'] !== BUNDLE_MEDIA_TYPE) malformed('mediaType', `expected ${BUNDLE_MEDIA_TYPE}`);
  const env = input['dsseEnvelope'];
  if (!isObj(env)) malformed('dsseEnvelope', 'expected an object');
  only(env, 'dsseEnvelope', ['payloadType', 'payload', 'signatures']);
  if (typeof env['payloadType'] !== 'string') malformed('dsseEnvelope.payloadType', 'expected a string');
  if (typeof env['payload'] !== 'string') malformed('dsseEnvelope.payload', 'expected a string');
  const sigs = env['signatures'];
  if (!Array.isArray(sigs) || sigs.length === 0 || sigs.length > 16) malformed('dsseEnvelope.signatures', 'expected 1 to 16 signatures');
  sigs.forEach((s: unknown, i) => {
    if (!isObj(s) || typeof s['keyid'] !== 'string' || typeof s['sig'] !== 'string') malformed(`dsseEnvelope.signatures[${i}]`, 'expected {keyid, sig}');
    only(s, `dsseEnvelope.signatures[${i}]`, ['keyid', 'sig']);
  });
  const vm = input['verificationMaterial'];
  if (!isObj(vm)) malformed('verificationMaterial', 'expected an object');
  only(vm, 'verificationMaterial', ['tlogEntry', 'documents', 'redacted', 'openings']);
  const t = vm['tlogEntry'];
  if (!isObj(t)) malformed('verificationMaterial.tlogEntry', 'expected an object');
  only(t, 'verificationMaterial.tlogEntry', ['logIndex', 'canonicalizedBody', 'leafHash', 'inclusionProof']);
  if (!isIndex(t['logIndex'])) malformed('verificationMaterial.tlogEntry.logIndex', 'expected a non-negative integer');
  if (typeof t['canonicalizedBody'] !== 'string' || fromBase64Strict(t['canonicalizedBody']) === undefined) malformed('verificationMaterial.tlogEntry.canonicalizedBody', 'expected base64');
  if (typeof t['leafHash'] !== 'string' || !HEX64.test(t['leafHash'])) malformed('verificationMaterial.tlogEntry.leafHash', 'expected 64 lowercase hex digits');
  const p = t['inclusionProof'];
  const pp = 'verificationMaterial.tlogEntry.inclusionProof';
  if (!isObj(p)) malformed(pp, 'expected an object');
  only(p, pp, ['logIndex', 'treeSize', 'hashes', 'checkpoint']);
  if (!isIndex(p['logIndex'])) malformed(`${pp}.logIndex`, 'expected a non-negative integer');
  if (!isIndex(p['treeSize'])) malformed(`${pp}.treeSize`, 'expected a non-negative integer');
  const hashes = p['hashes'];
  if (!Array.isArray(hashes) || hashes.length > 64) malformed(`${pp}.hashes`, 'expected at most 64 hashes');
  hashes.forEach((h: unknown, i) => {
    if (typeof h !== 'string' || !HEX64.test(h)) malformed(`${pp}.hashes[${i}]`, 'expected 64 lowercase hex digits');
  });
  const cp = p['checkpoint'];
  if (!isObj(cp) || typeof cp['envelope'] !== 'string') malformed(`${pp}.checkpoint`, 'expected {envelope}');
  only(cp, `${pp}.checkpoint`, ['envelope']);
  const docs = vm['documents'];
  if (!isObj(docs)) malformed('verificationMaterial.documents', 'expected an object');
  for (const [k, d] of Object.entries(docs)) {
    if (!(BUNDLE_DOCUMENTS as readonly string[]).includes(k)) malformed(`verificationMaterial.documents.${k}`, 'unknown document');
    if (typeof d !== 'string') malformed(`verificationMaterial.documents.${k}`, 'expected the document text');
  }
  if (typeof vm['redacted'] !== 'boolean') malformed('verificationMaterial.redacted', 'expected a boolean');
  const ops = vm['openings'];
  if (vm['redacted'] === true && ops !== undefined) malformed('verificationMaterial.openings', 'a redacted bundle carries no openings');
  if (vm['redacted'] === false) {
    if (!Array.isArray(ops) || ops.length > 1024) malformed('verificationMaterial.openings', 'expected an array');
    ops.forEach((o: unknown, i) => {
      const at = `verificationMaterial.openings[${i}]`;
      if (!isObj(o)) malformed(at, 'expected {commitment, value, salt}');
      only(o, at, ['commitment', 'value', 'salt']);
      if (typeof o['commitment'] !== 'string' || !HEX64.test(o['commitment'])) malformed(`${at}.commitment`, 'expected 64 lowercase hex digits');
      if (typeof o['value'] !== 'string') malformed(`${at}.value`, 'expected a string');
      if (typeof o['salt'] !== 'string' || fromBase64Strict(o['salt']) === undefined) malformed(`${at}.salt`, 'expected base64');
    });
  }
  return input as unknown as Bundle;
}

// --- the statement -------------------------------------------------------------------------------

interface ReceiptShape {
  readonly event?: { readonly index?: unknown };
  readonly input?: { readonly uri?: unknown; readonly digest?: unknown };
  readonly outputs?: readonly { readonly name?: unknown; readonly uri?: unknown; readonly digest?: unknown }[];
  readonly pipeline?: unknown;
  readonly model?: unknown;
  readonly consent?: { readonly policyHash?: unknown };
  readonly explanations?: unknown;
}

/** The parts of an explanations document (issue 14) a bundle check reads. */
interface ExplanationsShape {
  readonly explanations?: readonly { readonly method?: unknown; readonly output?: unknown; readonly uri?: unknown; readonly digest?: unknown }[];
}

/**
 * The subjects of an inference statement: the receipt's outputs, by name and SHA-256 digest (the
 * input when the inference had no outputs, since a statement needs at least one subject).
 */
export function inferenceSubjects(receipt: ReceiptShape): IntotoSubject[] {
  const outs = Array.isArray(receipt.outputs) ? receipt.outputs : [];
  if (outs.length === 0) return [{ name: 'input', digest: { sha256: String(receipt.input?.digest) } }];
  return outs.map((o) => ({ name: String(o.name), digest: { sha256: String(o.digest) } }));
}

/** The in-toto statement of an inference: subjects the outputs, predicate the receipt document. */
export function inferenceStatement(receipt: unknown): IntotoStatement {
  return { _type: INTOTO_STATEMENT_V1, subject: inferenceSubjects(receipt as ReceiptShape), predicateType: INFERENCE_PREDICATE_TYPE, predicate: receipt };
}

/** Signs a statement into a DSSE envelope; the payload is the statement's canonical JSON (RFC 8785). */
export function signStatement(statement: IntotoStatement, key: { readonly name: string; readonly keyId: number; sign(message: Uint8Array): Uint8Array }): DsseEnvelope {
  return signDsse(INTOTO_PAYLOAD_TYPE, Buffer.from(canonicalJson(statement), 'utf8'), dsseKeyId(key), (m) => key.sign(m));
}

/** What the service reads from the log to build a bundle. */
export interface BundleParts {
  readonly logIndex: number;
  readonly entryBytes: Uint8Array;
  readonly documents: { readonly [K in BundleDocumentName]?: Uint8Array };
  /** undefined: redacted. */
  readonly openings: readonly { readonly commitment: string; readonly value: string; readonly salt: Uint8Array }[] | undefined;
  readonly treeSize: number;
  readonly proof: readonly Uint8Array[];
  readonly checkpointNote: string;
}

/**
 * Assembles a bundle from what the log holds: the statement is built from the receipt document
 * and signed with `key` (the log's signer).
 * @throws {VerificationError} BUNDLE_MALFORMED when the receipt document is missing or not JSON
 */
export function assembleBundle(parts: BundleParts, key: { readonly name: string; readonly keyId: number; sign(message: Uint8Array): Uint8Array }): Bundle {
  const receiptBytes = parts.documents.receipt;
  if (receiptBytes === undefined) malformed('verificationMaterial.documents.receipt', 'the receipt document is missing from the store');
  let receipt: unknown;
  try {
    receipt = JSON.parse(Buffer.from(receiptBytes).toString('utf8'));
  } catch {
    malformed('verificationMaterial.documents.receipt', 'the stored receipt is not JSON');
  }
  const documents: { [K in BundleDocumentName]?: string } = {};
  for (const k of BUNDLE_DOCUMENTS) {
    const d = parts.documents[k];
    if (d !== undefined) documents[k] = Buffer.from(d).toString('utf8');
  }
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    dsseEnvelope: signStatement(inferenceStatement(receipt), key),
    verificationMaterial: {
      tlogEntry: {
        logIndex: parts.logIndex,
        canonicalizedBody: toBase64(parts.entryBytes),
        leafHash: toHex(hashLeaf(parts.entryBytes)),
        inclusionProof: { logIndex: parts.logIndex, treeSize: parts.treeSize, hashes: parts.proof.map(toHex), checkpoint: { envelope: parts.checkpointNote } },
      },
      documents,
      ...(parts.openings === undefined ? { redacted: true } : { redacted: false, openings: parts.openings.map((o) => ({ commitment: o.commitment, value: o.value, salt: toBase64(o.salt) })) }),
    },
  };
}

// --- verification --------------------------------------------------------------------------------

function pass(name: BundleCheckName, detail?: string): BundleCheck {
  return detail === undefined ? { name, status: 'pass' } : { name, status: 'pass', detail };
}
function fail(name: BundleCheckName, code: BundleCheckCode, detail: string): BundleCheck {
  return { name, status: 'fail', code, detail };
}
function skip(name: BundleCheckName, detail: string): BundleCheck {
  return { name, status: 'skipped', detail };
}

function parseJsonObject(bytes: Uint8Array | string | undefined): Record<string, unknown> | undefined {
  if (bytes === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

// The statement must be the one the entry and the receipt determine, exactly.
function statementCheck(payload: Buffer | undefined, entry: Record<string, unknown> | undefined, receiptText: string | undefined, logIndex: number, explanationsText: string | undefined): BundleCheck {
  const name = 'statement';
  if (payload === undefined) return fail(name, 'STATEMENT_MISMATCH', 'no payload');
  const st = parseJsonObject(payload);
  if (st === undefined) return fail(name, 'STATEMENT_MISMATCH', 'the payload is not a JSON object');
  if (st['_type'] !== INTOTO_STATEMENT_V1) return fail(name, 'STATEMENT_MISMATCH', `_type is not ${INTOTO_STATEMENT_V1}`);
  if (st['predicateType'] !== INFERENCE_PREDICATE_TYPE) return fail(name, 'STATEMENT_MISMATCH', `predicateType is not ${INFERENCE_PREDICATE_TYPE}`);
  if (entry === undefined || entry['type'] !== 'INFERENCE_EXECUTED' || entry['index'] !== logIndex || !isObj(entry['payload'])) {
    return fail(name, 'STATEMENT_MISMATCH', `the entry is not the INFERENCE_EXECUTED event at index ${logIndex}`);
  }
  const receipt = parseJsonObject(receiptText);
  if (receiptText === undefined || receipt === undefined) return fail(name, 'STATEMENT_MISMATCH', 'the bundle has no receipt document');
  let predicate: string;
  try {
    predicate = canonicalJson(st['predicate']);
  } catch {
    return fail(name, 'STATEMENT_MISMATCH', 'the predicate is not canonicalizable JSON');
  }
  if (predicate !== receiptText) return fail(name, 'STATEMENT_MISMATCH', 'the predicate is not the receipt document');
  const r = receipt as ReceiptShape;
  const docs = isObj(entry['payload']['documents']) ? entry['payload']['documents'] : {};
  const input = isObj(entry['payload']['input']) ? entry['payload']['input'] : {};
  const outputs = Array.isArray(entry['payload']['outputs']) ? (entry['payload']['outputs'] as unknown[]) : [];
  const agrees =
    r.event?.index === logIndex &&
    r.pipeline === docs['pipeline'] &&
    r.model === docs['model'] &&
    r.consent?.policyHash === docs['policy'] &&
    r.input?.uri === input['uri'] &&
    r.input?.digest === input['digest'] &&
    Array.isArray(r.outputs) &&
    r.outputs.length === outputs.length &&
    r.outputs.every((o, i) => isObj(outputs[i]) && (outputs[i] as Record<string, unknown>)['name'] === o.name && (outputs[i] as Record<string, unknown>)['digest'] === o.digest);
  if (!agrees || r.explanations !== docs['explanations']) return fail(name, 'STATEMENT_MISMATCH', 'the receipt does not match its event');
  // issue 14: the explanations document lists the event's explanations (method, output, digest), in order.
  if (explanationsText !== undefined) {
    const x = (parseJsonObject(explanationsText) ?? {}) as ExplanationsShape;
    const logged = Array.isArray(entry['payload']['explanations']) ? (entry['payload']['explanations'] as unknown[]) : [];
    const listed = Array.isArray(x.explanations) ? x.explanations : [];
    const same =
      listed.length === logged.length &&
      listed.every((e, i) => {
        const l = logged[i];
        return isObj(e) && isObj(l) && l['method'] === e.method && l['output'] === e.output && l['digest'] === e.digest;
      });
    if (!same) return fail(name, 'STATEMENT_MISMATCH', 'the explanations document does not match its event');
  }
  if (canonicalJson(st['subject'] ?? null) !== canonicalJson(inferenceSubjects(r))) return fail(name, 'STATEMENT_MISMATCH', "the subjects are not the receipt's outputs");
  const extra = Object.keys(st).filter((k) => !['_type', 'subject', 'predicateType', 'predicate'].includes(k));
  if (extra.length > 0) return fail(name, 'STATEMENT_MISMATCH', `unknown statement members: ${extra.join(', ')}`);
  return pass(name);
}

/**
 * Verifies a bundle offline. Every check runs and is reported by name, in a fixed order (see
 * docs/bundle-format.md); a failed check is a result, not an exception.
 * @throws {VerificationError} BUNDLE_MALFORMED when the input is not a bundle at all
 */
export function verifyBundle(input: unknown, options: VerifyBundleOptions): BundleVerification {
  const b = parseBundle(input);
  const vm = b.verificationMaterial;
  const t = vm.tlogEntry;
  const checks: BundleCheck[] = [];
  const keyid = dsseKeyId(options.logKey);

  // 1. The envelope is signed by the log key, over PAE(payloadType, payload).
  const env = b.dsseEnvelope;
  const dsse =
    env.payloadType !== INTOTO_PAYLOAD_TYPE
      ? { ok: false, payload: fromBase64Strict(env.payload), detail: `payloadType is not ${INTOTO_PAYLOAD_TYPE}` }
      : verifyDsse(env, keyid, (m, s) => options.logKey.verify(m, s));
  checks.push(dsse.ok ? pass('dsse-signature', `keyid ${keyid}`) : fail('dsse-signature', 'DSSE_SIGNATURE_INVALID', dsse.detail ?? 'invalid'));

  // 2. Each document hashes to the hash the entry commits.
  const entryBytes = fromBase64Strict(t.canonicalizedBody)!;
  const entry = parseJsonObject(entryBytes);
  const committed = entry && isObj(entry['payload']) && isObj(entry['payload']['documents']) ? entry['payload']['documents'] : {};
  for (const k of BUNDLE_DOCUMENTS) {
    const d = vm.documents[k];
    const want = committed[k];
    // An inference without explanations has no such document, and no check for it.
    if (k === 'explanations' && d === undefined && want === undefined) continue;
    if (d === undefined) {
      checks.push(k === 'receipt' || k === 'policy' ? fail(`document:${k}`, 'DOCUMENT_HASH_MISMATCH', 'missing from the bundle') : skip(`document:${k}`, 'not in the bundle (erased)'));
      continue;
    }
    const got = toHex(sha256(Buffer.from(d, 'utf8')));
    checks.push(got === want ? pass(`document:${k}`, got) : fail(`document:${k}`, 'DOCUMENT_HASH_MISMATCH', `hashes to ${got}, the entry commits ${String(want)}`));
  }

  // 3. The statement is the one the entry and its receipt determine.
  try {
    checks.push(statementCheck(dsse.payload, entry, vm.documents.receipt, t.logIndex, vm.documents.explanations));
  } catch (err) {
    // A value JSON can carry but canonical JSON cannot (a lone surrogate): not the statement the log signed.
    checks.push(fail('statement', 'STATEMENT_MISMATCH', err instanceof Error ? err.message : 'not canonicalizable'));
  }

  // 4. Each opening opens a commitment of the receipt.
  if (vm.redacted) checks.push(skip('openings', 'redacted'));
  else {
    const receipt = (parseJsonObject(vm.documents.receipt) ?? {}) as ReceiptShape;
    const explained = (parseJsonObject(vm.documents.explanations) ?? {}) as ExplanationsShape;
    const refs = [
      { role: 'input', uri: receipt.input?.uri },
      ...(Array.isArray(receipt.outputs) ? receipt.outputs.map((o) => ({ role: `output ${String(o.name)}`, uri: o.uri })) : []),
      // issue 14: explanation artifacts, named as `custos receipt` names them.
      ...(Array.isArray(explained.explanations) ? explained.explanations.map((x, i) => ({ role: `explanation ${i + 1} (${String(x.method)} of ${String(x.output)})`, uri: x.uri })) : []),
    ];
    const byCommitment = new Map((vm.openings ?? []).map((o) => [o.commitment, o]));
    for (const o of vm.openings ?? []) {
      if (!refs.some((r) => r.uri === o.commitment)) checks.push(fail(`opening:${o.commitment}`, 'OPENING_MISMATCH', 'opens no commitment of the receipt'));
    }
    for (const r of refs) {
      const name: BundleCheckName = `opening:${r.role}`;
      const o = typeof r.uri === 'string' ? byCommitment.get(r.uri) : undefined;
      if (o === undefined) {
        checks.push(skip(name, 'not in the bundle (erased)'));
        continue;
      }
      let got: string | undefined;
      try {
        got = computeCommitment(fromBase64Strict(o.salt)!, o.value);
      } catch {
        got = undefined;
      }
      checks.push(got === o.commitment ? pass(name, o.commitment) : fail(name, 'OPENING_MISMATCH', `value and salt do not open ${o.commitment}`));
    }
  }

  // 5. The leaf hash is SHA-256(0x00 || entry bytes), and the entry claims its index.
  const leafHash = Buffer.from(t.leafHash, 'hex');
  const leafOk = bytesEqual(hashLeaf(entryBytes), leafHash) && entryClaimsIndex(entryBytes, t.logIndex);
  checks.push(leafOk ? pass('leaf-hash', t.leafHash) : fail('leaf-hash', 'LEAF_HASH_MISMATCH', 'the entry bytes do not hash to the leaf hash at this index'));

  // 6. The inclusion proof leads from the leaf hash to the checkpoint's root.
  const p = t.inclusionProof;
  let root: Buffer | undefined;
  let cpSize = -1;
  try {
    const split = p.checkpoint.envelope.indexOf('\n\n');
    const body = parseCheckpointBody(split < 0 ? p.checkpoint.envelope : p.checkpoint.envelope.slice(0, split + 1));
    root = body.rootHash;
    cpSize = body.treeSize;
  } catch {
    root = undefined;
  }
  if (root === undefined) checks.push(fail('inclusion-proof', 'INCLUSION_PROOF_INVALID', 'the checkpoint has no readable root'));
  else if (p.logIndex !== t.logIndex || p.treeSize !== cpSize)
    checks.push(fail('inclusion-proof', 'INCLUSION_PROOF_INVALID', `proof for index ${p.logIndex} in size ${p.treeSize}; entry ${t.logIndex}, checkpoint size ${cpSize}`));
  else {
    try {
      verifyInclusion(
        p.logIndex,
        p.treeSize,
        leafHash,
        p.hashes.map((h) => Buffer.from(h, 'hex')),
        root,
      );
      checks.push(pass('inclusion-proof', `index ${p.logIndex} in tree size ${p.treeSize}`));
    } catch (err) {
      checks.push(fail('inclusion-proof', 'INCLUSION_PROOF_INVALID', err instanceof Error ? err.message : 'does not verify'));
    }
  }

  // 7. The checkpoint is signed by the log key.
  try {
    const cp = openCheckpoint(p.checkpoint.envelope, [options.logKey]);
    checks.push(cp.rootHash.length === HASH_SIZE ? pass('checkpoint-signature', `${cp.origin} size ${cp.treeSize}`) : fail('checkpoint-signature', 'CHECKPOINT_SIGNATURE_INVALID', 'bad root'));
  } catch (err) {
    checks.push(fail('checkpoint-signature', 'CHECKPOINT_SIGNATURE_INVALID', err instanceof Error ? err.message : 'does not verify'));
  }

  // 8. The witness quorum, when a policy is given.
  if (options.witnesses === undefined || options.witnesses.length === 0) checks.push(skip('witness-quorum', 'no witness policy given'));
  else {
    const policy = { witnesses: options.witnesses, quorum: options.quorum ?? options.witnesses.length };
    let w: ReturnType<typeof checkWitnessQuorum> | undefined;
    try {
      w = checkWitnessQuorum(p.checkpoint.envelope, policy);
    } catch (err) {
      // A malformed note fails the check; a malformed policy is the caller's error.
      if (!(err instanceof VerificationError)) throw err;
    }
    if (w === undefined) checks.push(fail('witness-quorum', 'WITNESS_QUORUM_NOT_MET', 'the checkpoint note is malformed'));
    else {
      const detail = `${w.cosigned.length} of ${w.quorum} required cosigned${w.cosigned.length ? ` (${w.cosigned.join(', ')})` : ''}${w.missing.length ? `; missing ${w.missing.join(', ')}` : ''}${w.invalid.length ? `; invalid ${w.invalid.join(', ')}` : ''}`;
      checks.push(w.ok ? pass('witness-quorum', detail) : fail('witness-quorum', 'WITNESS_QUORUM_NOT_MET', detail));
    }
  }

  const failed = checks.find((c) => c.status === 'fail');
  return { ok: failed === undefined, logIndex: t.logIndex, treeSize: p.treeSize, checks, ...(failed ? { failed } : {}) };
}
