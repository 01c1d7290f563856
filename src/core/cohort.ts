/**
 * Training cohorts (issue 14): the cohort document (the sorted subject commitments of a training
 * run, off-ledger, its hash on the TRAINING_EXECUTED entry) and the patient-held cohort proof: that a
 * subject was in run R (inclusion), or was not (non-inclusion), checked offline with only the log's
 * verifier key. docs/training.md describes both formats.
 *
 * A proof verifies in six steps, each a named check ({@link verifyCohortProof}):
 * 1. `opening`: each opening (value = the subject id, salt) recomputes its commitment;
 * 2. `subject-binding`: each commitment is the `subject` of a CONSENT_CREATED entry the opening
 *    carries (its bytes hash to its leaf hash, it claims its index, it precedes the training entry,
 *    and it is in the log under the same signed checkpoint): the commitment is the one the log uses
 *    for the subject, not one made afresh with a new salt (which would "prove" any subject absent);
 * 3. `entry`: the entry bytes hash to the leaf hash, claim their index, and are a TRAINING_EXECUTED
 *    event whose `cohort.root` and `cohort.size` are the proof's;
 * 4. `cohort-proof`: each commitment's sorted-tree proof (inclusion, or the bracketing adjacent
 *    leaves of non-inclusion) leads to that root;
 * 5. `inclusion-proof`: the entry's leaf is in the log, under the checkpoint's root (RFC 9162);
 * 6. `checkpoint-signature`: the checkpoint is signed by the log key.
 * @module
 */
import { computeCommitment } from './commitment.js';
import { openCheckpoint, parseCheckpointBody } from './checkpoint.js';
import { entryClaimsIndex } from './entry.js';
import { VerificationError } from './errors.js';
import { bytesEqual, fromBase64Strict, hashLeaf, toBase64 } from './hash.js';
import { verifyInclusion } from './merkle/inclusion.js';
import { SortedTree, checkSortedSet, verifySortedInclusion, verifySortedNonInclusion, type SortedInclusionProof, type SortedNonInclusionProof } from './merkle/sorted.js';
import type { NoteVerifier } from './note.js';

/** The schema name of a cohort document. */
export const COHORT_DOCUMENT_SCHEMA = 'custos.training-cohort/v1';
/** The media type of a cohort proof file. */
export const COHORT_PROOF_MEDIA_TYPE = 'application/vnd.custos.cohort-proof.v1+json';
/** The event type a cohort proof is about (as in core/events.ts; not imported, to keep this module small for the browser). */
const TRAINING_EXECUTED = 'TRAINING_EXECUTED';
/** The consent event whose `subject` field is a subject's commitment (as in core/events.ts). */
const CONSENT_CREATED = 'CONSENT_CREATED';

/**
 * Why a subject of a cohort was left out: a consent decision's reason (docs/governance.md), or
 * SUBJECT_MISMATCH when the policy named for the subject is not the subject's own (its subject
 * commitment is another, or the subject's opening was erased).
 */
export const COHORT_EXCLUSION_REASONS = [
  'POLICY_NOT_FOUND',
  'POLICY_TAMPERED',
  'REVOKED',
  'NOT_YET_VALID',
  'EXPIRED',
  'PURPOSE_NOT_ALLOWED',
  'ROLE_NOT_ALLOWED',
  'DENIED_BY_PROVISION',
  'SUBJECT_MISMATCH',
] as const;
export type CohortExclusionReason = (typeof COHORT_EXCLUSION_REASONS)[number];

/** The cohort document: the included subject commitments, sorted by their bytes, and their tree's root. */
export interface CohortDocument {
  readonly schema: typeof COHORT_DOCUMENT_SCHEMA;
  readonly root: string;
  readonly size: number;
  readonly commitments: readonly string[];
}

/** The cohort document and tree of a set of subject commitments. */
export function buildCohort(commitments: Iterable<string>): { document: CohortDocument; tree: SortedTree } {
  const tree = new SortedTree(commitments);
  return { tree, document: { schema: COHORT_DOCUMENT_SCHEMA, root: tree.root.toString('hex'), size: tree.size, commitments: tree.values } };
}

/**
 * Why `value` (a parsed cohort document) is not the cohort the entry records (`root`, `size`):
 * undefined when it is.
 */
export function checkCohortDocument(value: unknown, root: string, size: number): string | undefined {
  if (!isObj(value) || value['schema'] !== COHORT_DOCUMENT_SCHEMA || !Array.isArray(value['commitments'])) return `not a ${COHORT_DOCUMENT_SCHEMA} document`;
  if (value['root'] !== root || value['size'] !== size) return 'its root or size is not the one the entry records';
  return checkSortedSet(value['commitments'], size, root);
}

/**
 * The log entry that binds a commitment to the log: a CONSENT_CREATED entry whose `subject` is the
 * commitment, with its index, leaf hash, exact bytes (base64) and its inclusion proof under the
 * proof's signed checkpoint (`log.treeSize`).
 */
export interface CohortProofConsent {
  readonly index: number;
  readonly leafHash: string;
  readonly body: string;
  readonly hashes: readonly string[];
}

/** One opening of the subject in a proof, with its commitment's proof in the cohort tree and the consent entry that commits it. */
export interface CohortProofOpening {
  readonly commitment: string;
  /** The salt, standard base64. */
  readonly salt: string;
  readonly proof: SortedInclusionProof | SortedNonInclusionProof;
  readonly consent: CohortProofConsent;
}

/** A cohort proof file (docs/training.md, "Proof format"). */
export interface CohortProof {
  readonly mediaType: typeof COHORT_PROOF_MEDIA_TYPE;
  readonly kind: 'inclusion' | 'non-inclusion';
  /** The subject id and its openings: patient-linked, the file is the patient's. */
  readonly subject: { readonly value: string; readonly openings: readonly CohortProofOpening[] };
  readonly cohort: { readonly root: string; readonly size: number };
  /** The TRAINING_EXECUTED entry: its index, leaf hash and exact bytes (base64). */
  readonly entry: { readonly index: number; readonly leafHash: string; readonly body: string };
  /** The entry's inclusion in the log, under a signed checkpoint. */
  readonly log: { readonly treeSize: number; readonly hashes: readonly string[]; readonly checkpoint: string };
}

/** What {@link assembleCohortProof} takes. */
export interface CohortProofParts {
  readonly kind: 'inclusion' | 'non-inclusion';
  readonly subject: string;
  /** Each with the CONSENT_CREATED entry whose `subject` is the commitment, and its inclusion proof under the checkpoint. */
  readonly openings: readonly {
    readonly commitment: string;
    readonly salt: Uint8Array;
    readonly consent: { readonly index: number; readonly bytes: Uint8Array; readonly proof: readonly Uint8Array[] };
  }[];
  readonly tree: SortedTree;
  readonly entryIndex: number;
  readonly entryBytes: Uint8Array;
  readonly logTreeSize: number;
  readonly logProof: readonly Uint8Array[];
  readonly checkpointNote: string;
}

/**
 * Assembles a cohort proof from its parts (the tree rebuilt from the cohort document).
 * @throws {VerificationError} COHORT_PROOF_INVALID when an opening is not of the asked kind (a bug in the caller)
 */
export function assembleCohortProof(p: CohortProofParts): CohortProof {
  const openings = p.openings.map((o) => {
    const proof = p.kind === 'inclusion' ? p.tree.proveInclusion(o.commitment) : p.tree.proveNonInclusion(o.commitment);
    if (proof === undefined) throw new VerificationError('COHORT_PROOF_INVALID', `commitment ${o.commitment.slice(0, 16)}… has no ${p.kind} proof in this cohort`);
    const consent = {
      index: o.consent.index,
      leafHash: hashLeaf(o.consent.bytes).toString('hex'),
      body: toBase64(o.consent.bytes),
      hashes: o.consent.proof.map((h) => Buffer.from(h).toString('hex')),
    };
    return { commitment: o.commitment, salt: toBase64(o.salt), proof, consent };
  });
  return {
    mediaType: COHORT_PROOF_MEDIA_TYPE,
    kind: p.kind,
    subject: { value: p.subject, openings },
    cohort: { root: p.tree.root.toString('hex'), size: p.tree.size },
    entry: { index: p.entryIndex, leafHash: hashLeaf(p.entryBytes).toString('hex'), body: toBase64(p.entryBytes) },
    log: { treeSize: p.logTreeSize, hashes: p.logProof.map((h) => Buffer.from(h).toString('hex')), checkpoint: p.checkpointNote },
  };
}

// ---- parsing (the file is attacker-controlled) ----------------------------------------------------

const HEX64 = /^[0-9a-f]{64}$/;
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const MAX_SUBJECT_CHARS = 2048;
const MAX_PATH = 64;

function malformed(path: string, message: string): never {
  throw new VerificationError('COHORT_PROOF_MALFORMED', `${path}: ${message}`, { details: { path } });
}
function only(o: Record<string, unknown>, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) malformed(`${path}.${k}`, 'unknown field');
}
function hex64(x: unknown, path: string): string {
  if (typeof x !== 'string' || !HEX64.test(x)) malformed(path, 'expected 64 lowercase hex characters');
  return x;
}
function path(x: unknown, at: string): string[] {
  if (!Array.isArray(x) || x.length > MAX_PATH) malformed(at, `expected an array of at most ${MAX_PATH} hashes`);
  return x.map((h, i) => hex64(h, `${at}[${i}]`));
}
function inclusionOf(x: unknown, at: string): SortedInclusionProof {
  if (!isObj(x)) malformed(at, 'expected an object');
  only(x, at, ['leafIndex', 'path']);
  if (!isIndex(x['leafIndex'])) malformed(`${at}.leafIndex`, 'expected a non-negative integer');
  return { leafIndex: x['leafIndex'], path: path(x['path'], `${at}.path`) };
}
function neighbourOf(x: unknown, at: string) {
  if (!isObj(x)) malformed(at, 'expected an object');
  only(x, at, ['value', 'leafIndex', 'path']);
  const { value: _v, ...rest } = x;
  void _v;
  return { value: hex64(x['value'], `${at}.value`), ...inclusionOf(rest, at) };
}
function consentOf(x: unknown, at: string): CohortProofConsent {
  if (!isObj(x)) malformed(at, 'expected an object');
  only(x, at, ['index', 'leafHash', 'body', 'hashes']);
  if (!isIndex(x['index'])) malformed(`${at}.index`, 'expected a non-negative integer');
  if (typeof x['body'] !== 'string' || x['body'].length > 256 * 1024 || fromBase64Strict(x['body']) === undefined) malformed(`${at}.body`, 'expected standard base64');
  return { index: x['index'], leafHash: hex64(x['leafHash'], `${at}.leafHash`), body: x['body'], hashes: path(x['hashes'], `${at}.hashes`) };
}
function nonInclusionOf(x: unknown, at: string): SortedNonInclusionProof {
  if (!isObj(x)) malformed(at, 'expected an object');
  only(x, at, ['left', 'right']);
  return {
    ...(x['left'] === undefined ? {} : { left: neighbourOf(x['left'], `${at}.left`) }),
    ...(x['right'] === undefined ? {} : { right: neighbourOf(x['right'], `${at}.right`) }),
  };
}

/**
 * Parses a cohort proof file's JSON value.
 * @throws {VerificationError} COHORT_PROOF_MALFORMED (`details.path` names the field)
 */
export function parseCohortProof(input: unknown): CohortProof {
  if (!isObj(input)) malformed('$', 'expected an object');
  only(input, '$', ['mediaType', 'kind', 'subject', 'cohort', 'entry', 'log']);
  if (input['mediaType'] !== COHORT_PROOF_MEDIA_TYPE) malformed('mediaType', `expected ${COHORT_PROOF_MEDIA_TYPE}`);
  const kind = input['kind'];
  if (kind !== 'inclusion' && kind !== 'non-inclusion') malformed('kind', 'expected inclusion or non-inclusion');
  const s = input['subject'];
  if (!isObj(s)) malformed('subject', 'expected an object');
  only(s, 'subject', ['value', 'openings']);
  if (typeof s['value'] !== 'string' || s['value'].length === 0 || s['value'].length > MAX_SUBJECT_CHARS) malformed('subject.value', 'expected the subject id');
  const os = s['openings'];
  if (!Array.isArray(os) || os.length === 0 || os.length > 16 || (kind === 'inclusion' && os.length !== 1)) {
    malformed('subject.openings', kind === 'inclusion' ? 'expected one opening' : 'expected 1 to 16 openings');
  }
  const openings = os.map((o, i): CohortProofOpening => {
    const at = `subject.openings[${i}]`;
    if (!isObj(o)) malformed(at, 'expected an object');
    only(o, at, ['commitment', 'salt', 'proof', 'consent']);
    if (typeof o['salt'] !== 'string' || fromBase64Strict(o['salt']) === undefined) malformed(`${at}.salt`, 'expected standard base64');
    return {
      commitment: hex64(o['commitment'], `${at}.commitment`),
      salt: o['salt'],
      proof: kind === 'inclusion' ? inclusionOf(o['proof'], `${at}.proof`) : nonInclusionOf(o['proof'], `${at}.proof`),
      consent: consentOf(o['consent'], `${at}.consent`),
    };
  });
  const c = input['cohort'];
  if (!isObj(c)) malformed('cohort', 'expected an object');
  only(c, 'cohort', ['root', 'size']);
  if (!isIndex(c['size'])) malformed('cohort.size', 'expected a non-negative integer');
  const e = input['entry'];
  if (!isObj(e)) malformed('entry', 'expected an object');
  only(e, 'entry', ['index', 'leafHash', 'body']);
  if (!isIndex(e['index'])) malformed('entry.index', 'expected a non-negative integer');
  if (typeof e['body'] !== 'string' || fromBase64Strict(e['body']) === undefined) malformed('entry.body', 'expected standard base64');
  const l = input['log'];
  if (!isObj(l)) malformed('log', 'expected an object');
  only(l, 'log', ['treeSize', 'hashes', 'checkpoint']);
  if (!isIndex(l['treeSize'])) malformed('log.treeSize', 'expected a non-negative integer');
  if (typeof l['checkpoint'] !== 'string' || l['checkpoint'].length > 64 * 1024) malformed('log.checkpoint', 'expected a signed note');
  return {
    mediaType: COHORT_PROOF_MEDIA_TYPE,
    kind,
    subject: { value: s['value'], openings },
    cohort: { root: hex64(c['root'], 'cohort.root'), size: c['size'] },
    entry: { index: e['index'], leafHash: hex64(e['leafHash'], 'entry.leafHash'), body: e['body'] },
    log: { treeSize: l['treeSize'], hashes: path(l['hashes'], 'log.hashes'), checkpoint: l['checkpoint'] },
  };
}

// ---- verification ---------------------------------------------------------------------------------

/** The checks of a cohort proof, in order. */
export type CohortProofCheckName = 'opening' | 'subject-binding' | 'entry' | 'cohort-proof' | 'inclusion-proof' | 'checkpoint-signature';

/** One check's outcome. */
export interface CohortProofCheck {
  readonly name: CohortProofCheckName;
  readonly ok: boolean;
  readonly detail: string;
}

/** The outcome of {@link verifyCohortProof}. */
export interface CohortProofVerification {
  readonly ok: boolean;
  readonly kind: 'inclusion' | 'non-inclusion';
  readonly entryIndex: number;
  readonly cohortSize: number;
  readonly treeSize: number;
  readonly checks: readonly CohortProofCheck[];
  readonly failed?: CohortProofCheck;
}

function attempt(name: CohortProofCheckName, fn: () => string): CohortProofCheck {
  try {
    return { name, ok: true, detail: fn() };
  } catch (err) {
    return { name, ok: false, detail: err instanceof Error ? err.message : 'does not verify' };
  }
}
function refuse(message: string): never {
  throw new VerificationError('COHORT_PROOF_INVALID', message);
}

/**
 * Verifies a cohort proof offline: every check runs and is reported by name.
 * @throws {VerificationError} COHORT_PROOF_MALFORMED when `input` is not a cohort proof (the checks need its shape)
 * @example
 * const r = verifyCohortProof(JSON.parse(text), { logKey });
 * if (!r.ok) console.log(r.failed.name, r.failed.detail);
 */
export function verifyCohortProof(input: unknown, options: { readonly logKey: NoteVerifier }): CohortProofVerification {
  const p = parseCohortProof(input);
  const body = fromBase64Strict(p.entry.body)!;
  const checks: CohortProofCheck[] = [];
  // The checkpoint's root (its signature is the last check); undefined when its body does not parse.
  let checkpointRoot: Buffer | undefined;
  try {
    const split = p.log.checkpoint.indexOf('\n\n');
    const cp = parseCheckpointBody(split < 0 ? p.log.checkpoint : p.log.checkpoint.slice(0, split + 1));
    if (cp.treeSize === p.log.treeSize) checkpointRoot = Buffer.from(cp.rootHash);
  } catch {
    checkpointRoot = undefined;
  }

  checks.push(
    attempt('opening', () => {
      for (const o of p.subject.openings) {
        let got: string | undefined;
        try {
          got = computeCommitment(fromBase64Strict(o.salt)!, p.subject.value);
        } catch {
          got = undefined;
        }
        if (got !== o.commitment) refuse(`the subject id and salt do not open commitment ${o.commitment.slice(0, 16)}…`);
      }
      return `${p.subject.openings.length} commitment(s) opened by the subject id`;
    }),
  );

  checks.push(
    attempt('subject-binding', () => {
      const at: number[] = [];
      for (const o of p.subject.openings) {
        const c = o.consent;
        const bytes = fromBase64Strict(c.body)!;
        const leaf = hashLeaf(bytes);
        if (!bytesEqual(leaf, Buffer.from(c.leafHash, 'hex'))) refuse(`the consent entry bytes of commitment ${o.commitment.slice(0, 16)}… do not hash to their leaf hash`);
        if (!entryClaimsIndex(bytes, c.index)) refuse(`the consent entry does not claim index ${c.index}`);
        let e: unknown;
        try {
          e = JSON.parse(bytes.toString('utf8'));
        } catch {
          refuse('the consent entry is not JSON');
        }
        const payload = isObj(e) ? e['payload'] : undefined;
        if (!isObj(e) || e['type'] !== CONSENT_CREATED || !isObj(payload)) refuse(`the entry at index ${c.index} is not a ${CONSENT_CREATED} event`);
        if (payload['subject'] !== o.commitment) refuse(`the ${CONSENT_CREATED} entry at index ${c.index} commits another subject commitment than ${o.commitment.slice(0, 16)}…`);
        if (c.index >= p.entry.index) refuse(`the ${CONSENT_CREATED} entry at index ${c.index} does not precede the training entry at ${p.entry.index}`);
        if (checkpointRoot === undefined) refuse(`the checkpoint is not for tree size ${p.log.treeSize}`);
        try {
          verifyInclusion(
            c.index,
            p.log.treeSize,
            leaf,
            c.hashes.map((h) => Buffer.from(h, 'hex')),
            checkpointRoot,
          );
        } catch (err) {
          refuse(`the ${CONSENT_CREATED} entry at index ${c.index} is not in the log under the signed checkpoint (${err instanceof Error ? err.message : 'inclusion proof does not verify'})`);
        }
        at.push(c.index);
      }
      return `each commitment is the subject of a ${CONSENT_CREATED} entry in the log before the run (index ${at.join(', ')})`;
    }),
  );

  checks.push(
    attempt('entry', () => {
      if (!bytesEqual(hashLeaf(body), Buffer.from(p.entry.leafHash, 'hex'))) refuse('the entry bytes do not hash to the leaf hash');
      if (!entryClaimsIndex(body, p.entry.index)) refuse(`the entry does not claim index ${p.entry.index}`);
      let e: unknown;
      try {
        e = JSON.parse(body.toString('utf8'));
      } catch {
        refuse('the entry is not JSON');
      }
      const payload = isObj(e) ? e['payload'] : undefined;
      const cohort = isObj(payload) ? payload['cohort'] : undefined;
      if (!isObj(e) || e['type'] !== TRAINING_EXECUTED || !isObj(cohort)) refuse(`the entry is not a ${TRAINING_EXECUTED} event with a cohort`);
      if (cohort['root'] !== p.cohort.root || cohort['size'] !== p.cohort.size) refuse(`the entry records cohort root ${String(cohort['root'])} of size ${String(cohort['size'])}, not the proof's`);
      return `${TRAINING_EXECUTED} at index ${p.entry.index}${typeof e['time'] === 'string' ? ` (${e['time']})` : ''}, cohort of ${p.cohort.size}`;
    }),
  );

  checks.push(
    attempt('cohort-proof', () => {
      for (const o of p.subject.openings) {
        if (p.kind === 'inclusion') verifySortedInclusion(o.commitment, o.proof as SortedInclusionProof, p.cohort.size, p.cohort.root);
        else verifySortedNonInclusion(o.commitment, o.proof as SortedNonInclusionProof, p.cohort.size, p.cohort.root);
      }
      return p.kind === 'inclusion' ? `leaf ${(p.subject.openings[0]!.proof as SortedInclusionProof).leafIndex} of ${p.cohort.size}` : `absent from the ${p.cohort.size} leaves`;
    }),
  );

  checks.push(
    attempt('inclusion-proof', () => {
      const split = p.log.checkpoint.indexOf('\n\n');
      const cp = parseCheckpointBody(split < 0 ? p.log.checkpoint : p.log.checkpoint.slice(0, split + 1));
      if (cp.treeSize !== p.log.treeSize) refuse(`the proof is for tree size ${p.log.treeSize}, the checkpoint's is ${cp.treeSize}`);
      verifyInclusion(
        p.entry.index,
        p.log.treeSize,
        Buffer.from(p.entry.leafHash, 'hex'),
        p.log.hashes.map((h) => Buffer.from(h, 'hex')),
        cp.rootHash,
      );
      return `index ${p.entry.index} in tree size ${p.log.treeSize}`;
    }),
  );

  checks.push(
    attempt('checkpoint-signature', () => {
      const cp = openCheckpoint(p.log.checkpoint, [options.logKey]);
      return `${cp.origin} size ${cp.treeSize}`;
    }),
  );

  const failed = checks.find((c) => !c.ok);
  return { ok: failed === undefined, kind: p.kind, entryIndex: p.entry.index, cohortSize: p.cohort.size, treeSize: p.log.treeSize, checks, ...(failed ? { failed } : {}) };
}
