/**
 * Attestations as SD-JWT (RFC 9901), pure: issuing, presenting and verifying, with fixed keys and
 * seeded salts. Each failure mode has its own code (docs/attestations.md, docs/errors.md).
 */
import { describe, it } from 'node:test';
import { SDJwtInstance } from '@sd-jwt/core';
import { ed25519Verifier } from './crypto.js';
import assert from 'node:assert/strict';
import { VerificationError, ValidationError, type CustosError } from './errors.js';
import { hashChildren, hashLeaf, sha256, toBase64, toHex } from './hash.js';
import { formatSignerKey, formatVerifierKey, parseSignerKey, signNote, ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from './note.js';
import { ed25519Sign } from './crypto.js';
import { randomBytesFrom, seededRandom } from './random.js';
import {
  ATTESTATION_TYP,
  decodeAttestation,
  issueAttestation,
  issuerJwk,
  jwkThumbprint,
  parseIssuerJwk,
  presentAttestation,
  verifyAttestation,
  type EntryInclusion,
  type ReceiptFacts,
} from './attestation.js';

const ORIGIN = 'custos.test/log';
const LOG_SEED = Buffer.alloc(32, 7);
const LOG_SIGNER = parseSignerKey(formatSignerKey(ORIGIN, LOG_SEED));
const LOG_VKEY = formatVerifierKey(ORIGIN, ed25519RawPublicKey(ed25519PrivateKeyFromSeed(LOG_SEED)));
const ISSUER = ed25519PrivateKeyFromSeed(Buffer.alloc(32, 9));
const JWK = issuerJwk(ed25519RawPublicKey(ISSUER));
const OTHER_JWK = issuerJwk(ed25519RawPublicKey(ed25519PrivateKeyFromSeed(Buffer.alloc(32, 10))));

// A tree of three entries; the attested one is the last.
const ENTRIES = ['{"a":0}', '{"a":1}', '{"type":"INFERENCE_EXECUTED"}'].map((s) => hashLeaf(Buffer.from(s)));
const LEFT = hashChildren(ENTRIES[0]!, ENTRIES[1]!);
const ROOT = hashChildren(LEFT, ENTRIES[2]!);
const checkpointOf = (size: number, root: Buffer, signer = LOG_SIGNER, origin = ORIGIN) => signNote(`${origin}\n${size}\n${toBase64(root)}\n`, [signer]);
const CHECKPOINT = checkpointOf(3, ROOT);

const INCLUSION: EntryInclusion = { origin: ORIGIN, entryIndex: 2, leafHash: toHex(ENTRIES[2]!), treeSize: 3, rootHash: toHex(ROOT), proof: [toHex(LEFT)], checkpoint: CHECKPOINT, logKey: LOG_VKEY };
const FACTS: ReceiptFacts = {
  purpose: 'TREAT',
  role: 'dermatologist',
  policyId: 'pol_aaaaaaaaaaaaaaaaaaaaaaaaaa',
  policyVersion: 1,
  decision: 'PERMITTED',
  time: '2030-01-01T00:00:00.000Z',
  modelDigest: 'c3'.repeat(32),
  pipelineDigest: 'd4'.repeat(32),
  outputs: { report_json: 'b2'.repeat(32), mask_png: 'e5'.repeat(32) },
};

async function issue(seed = 1): Promise<string> {
  const rnd = seededRandom(seed);
  return issueAttestation({ kind: 'receipt', facts: FACTS, inclusion: INCLUSION, jwk: JWK, sign: (d) => ed25519Sign(ISSUER, d), issuedAt: 1_893_456_000, randomBytes: (n) => randomBytesFrom(rnd, n) });
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof VerificationError, `expected a VerificationError, got ${String(err)}`);
    assert.equal((err as CustosError).code, code);
    return true;
  });
}

function b64json(x: unknown): string {
  return Buffer.from(JSON.stringify(x)).toString('base64url');
}

describe('issuer keys', () => {
  it('the kid is the RFC 7638 thumbprint of the JWK', () => {
    const expected = sha256(Buffer.from(`{"crv":"Ed25519","kty":"OKP","x":"${JWK.x}"}`)).toString('base64url');
    assert.equal(JWK.kid, expected);
    assert.equal(jwkThumbprint(Buffer.from(JWK.x, 'base64url')).toString('base64url'), expected);
  });
  it('parses a public JWK and refuses a private one, another curve, or a wrong kid (KEY_MALFORMED)', () => {
    assert.deepEqual(parseIssuerJwk(JSON.stringify(JWK)), JWK);
    for (const bad of [{ ...JWK, d: 'x' }, { ...JWK, crv: 'P-256' }, { ...JWK, kid: OTHER_JWK.kid }, { ...JWK, x: 'short' }, 'not json', [1]]) {
      assert.throws(
        () => parseIssuerJwk(typeof bad === 'string' ? bad : JSON.stringify(bad)),
        (e: unknown) => e instanceof VerificationError && e.code === 'KEY_MALFORMED',
      );
    }
  });
});

describe('issueAttestation', () => {
  it('is a compact SD-JWT with typ, alg and kid, _sd_alg, and only the always-disclosed claims in clear', async () => {
    const sdJwt = await issue();
    assert.ok(sdJwt.endsWith('~'));
    const a = decodeAttestation(sdJwt);
    assert.deepEqual(a.header, { typ: ATTESTATION_TYP, kid: JWK.kid, alg: 'EdDSA' });
    assert.deepEqual(Object.keys(a.payload).sort(), ['_sd', '_sd_alg', 'custos_attestation', 'entry_index', 'iat', 'inclusion', 'iss', 'leaf_hash'].sort());
    assert.equal(a.payload['_sd_alg'], 'sha-256');
    assert.equal((a.payload['_sd'] as unknown[]).length, 9);
    // Every claim is disclosed in the credential as issued, nested outputs included.
    assert.deepEqual(a.claims['outputs'], FACTS.outputs);
    assert.equal(a.claims['purpose'], 'TREAT');
    assert.deepEqual(a.disclosures.map((d) => d.path).sort(), [
      'decision',
      'model_digest',
      'outputs',
      'outputs.mask_png',
      'outputs.report_json',
      'pipeline_digest',
      'policy_id',
      'policy_version',
      'purpose',
      'role',
      'time',
    ]);
  });
});

describe('interoperability', () => {
  it("a generic SD-JWT verifier (@sd-jwt/core's own verify, with only the JWK) accepts a presentation and sees exactly the disclosed claims", async () => {
    const p = presentAttestation(await issue(), ['purpose', 'outputs.report_json']);
    const ed = ed25519Verifier(Buffer.from(JWK.x, 'base64url'));
    const generic = new SDJwtInstance({
      verifier: (data: string, sig: string) => ed.verify(Buffer.from(data), Buffer.from(sig, 'base64url')),
      hasher: (data: string | ArrayBuffer) => sha256(typeof data === 'string' ? Buffer.from(data) : Buffer.from(data)),
    });
    const { payload, header } = await generic.verify(p, { currentDate: 1_893_456_000 });
    assert.equal(header?.['typ'], ATTESTATION_TYP);
    const claims = payload as Record<string, unknown>;
    assert.equal(claims['purpose'], 'TREAT');
    assert.deepEqual(claims['outputs'], { report_json: 'b2'.repeat(32) });
    for (const hidden of ['role', 'policy_id', 'decision', 'model_digest']) assert.equal(claims[hidden], undefined, hidden);
  });
});

describe('verifyAttestation', () => {
  it('verifies the credential and a presentation; the presentation holds only the chosen claims', async () => {
    const sdJwt = await issue();
    const full = await verifyAttestation(sdJwt, { issuerKey: JWK });
    assert.equal(full.disclosures, 11);
    assert.equal(full.entryIndex, 2);
    const p = presentAttestation(sdJwt, ['decision', 'outputs.report_json']);
    const r = await verifyAttestation(p, { issuerKey: JWK });
    assert.deepEqual(r.disclosed, { decision: 'PERMITTED', outputs: { report_json: 'b2'.repeat(32) } });
    assert.equal(r.withheld, 7 + 1); // seven top-level claims and one output
    assert.ok(!p.includes(Buffer.from('"TREAT"').toString('base64url').slice(2, -2)));
  });

  it('when the JWT is signed by another key: ATTESTATION_SIGNATURE_INVALID', async () => {
    const sdJwt = await issue();
    await rejects(verifyAttestation(sdJwt, { issuerKey: OTHER_JWK }), 'ATTESTATION_SIGNATURE_INVALID');
    // The same, with the kid edited to match: the signature still fails.
    await rejects(verifyAttestation(sdJwt, { issuerKey: { ...OTHER_JWK, kid: JWK.kid } }), 'ATTESTATION_SIGNATURE_INVALID');
  });

  it('when the signed payload is edited: ATTESTATION_SIGNATURE_INVALID', async () => {
    const sdJwt = await issue();
    const [h, p, s] = sdJwt.split('~')[0]!.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const edited = `${h}.${b64json({ ...payload, entry_index: 1 })}.${s}~${sdJwt.split('~').slice(1).join('~')}`;
    await rejects(verifyAttestation(edited, { issuerKey: JWK }), 'ATTESTATION_SIGNATURE_INVALID');
  });

  it('when a disclosure is edited, foreign or repeated: DISCLOSURE_INVALID', async () => {
    const sdJwt = await issue();
    const parts = sdJwt.split('~');
    const i = parts.findIndex((d, k) => k > 0 && Buffer.from(d, 'base64url').toString().includes('"purpose"'));
    const [salt] = JSON.parse(Buffer.from(parts[i]!, 'base64url').toString()) as [string];
    const tampered = [...parts];
    tampered[i] = b64json([salt, 'purpose', 'HRESCH']);
    await rejects(verifyAttestation(tampered.join('~'), { issuerKey: JWK }), 'DISCLOSURE_INVALID');
    // From another issuance of the same facts (other salts): referenced by no digest here.
    const other = (await issue(2)).split('~')[1]!;
    await rejects(verifyAttestation(`${parts.slice(0, -1).join('~')}~${other}~`, { issuerKey: JWK }), 'DISCLOSURE_INVALID');
    await rejects(verifyAttestation(`${parts.slice(0, -1).join('~')}~${parts[1]}~`, { issuerKey: JWK }), 'DISCLOSURE_INVALID');
    assert.throws(
      () => decodeAttestation(`${parts[0]}~not base64!~`),
      (e: unknown) => e instanceof VerificationError && e.code === 'DISCLOSURE_INVALID',
    );
  });

  it('when it is not a Custos SD-JWT (no trailing ~, key-binding JWT, alg none, wrong typ): ATTESTATION_MALFORMED', async () => {
    const sdJwt = await issue();
    const [h, p, s] = sdJwt.split('~')[0]!.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    for (const bad of ['x', `${sdJwt}${h}.${p}.${s}`, `${b64json({ ...header, alg: 'none' })}.${p}.~`, `${b64json({ ...header, typ: 'JWT' })}.${p}.${s}~`, `${h}.${p}~`]) {
      await rejects(verifyAttestation(bad, { issuerKey: JWK }), 'ATTESTATION_MALFORMED');
    }
  });

  it('checks inclusion against the checkpoint given: another size is ATTESTATION_CHECKPOINT_MISMATCH, another root INCLUSION_PROOF_INVALID, another signer CHECKPOINT_SIGNATURE_INVALID', async () => {
    const sdJwt = await issue();
    const given = await verifyAttestation(sdJwt, { issuerKey: JWK, checkpoint: CHECKPOINT });
    assert.equal(given.checkpoint.source, 'given');
    await rejects(verifyAttestation(sdJwt, { issuerKey: JWK, checkpoint: checkpointOf(4, ROOT) }), 'ATTESTATION_CHECKPOINT_MISMATCH');
    await rejects(verifyAttestation(sdJwt, { issuerKey: JWK, checkpoint: checkpointOf(3, ROOT, LOG_SIGNER, 'other.test/log') }), 'ATTESTATION_CHECKPOINT_MISMATCH');
    await rejects(verifyAttestation(sdJwt, { issuerKey: JWK, checkpoint: checkpointOf(3, sha256(Buffer.from('another tree'))) }), 'INCLUSION_PROOF_INVALID');
    const stranger = parseSignerKey(formatSignerKey(ORIGIN, Buffer.alloc(32, 8)));
    await rejects(verifyAttestation(sdJwt, { issuerKey: JWK, checkpoint: checkpointOf(3, ROOT, stranger) }), 'CHECKPOINT_SIGNATURE_INVALID');
  });
});

describe('presentAttestation', () => {
  it('refuses a claim the attestation does not have (VALIDATION_FAILED)', async () => {
    const sdJwt = await issue();
    assert.throws(
      () => presentAttestation(sdJwt, ['purpose', 'subject']),
      (e: unknown) => e instanceof ValidationError && e.code === 'VALIDATION_FAILED',
    );
  });
  it('keeps the container of a nested claim, and every element of a container', async () => {
    const sdJwt = await issue();
    assert.deepEqual(
      decodeAttestation(presentAttestation(sdJwt, ['outputs.mask_png']))
        .disclosures.map((d) => d.path)
        .sort(),
      ['outputs', 'outputs.mask_png'],
    );
    assert.deepEqual(
      decodeAttestation(presentAttestation(sdJwt, ['outputs']))
        .disclosures.map((d) => d.path)
        .sort(),
      ['outputs', 'outputs.mask_png', 'outputs.report_json'],
    );
    // Presenting a presentation again can only remove claims.
    const once = presentAttestation(sdJwt, ['purpose', 'role']);
    assert.deepEqual(decodeAttestation(presentAttestation(once, ['role'])).claims['role'], 'dermatologist');
  });
});
