/**
 * C2SP tlog-cosignature (Ed25519, type 0x04): keys, cosigning, verification and the K-of-N witness
 * policy. Published values from transparency-dev/formats @ 091ce41666c09683aa9350785e572be27f0c026d
 * (note/note_cosigv1_test.go): a native 0x04 vkey, a 0x01 vkey, and a cosignature whose timestamp
 * is known. No published vector signs a known checkpoint with a known witness key (the C2SP spec's
 * example does not give witness.example.com/w1's key), so signatures are checked by round trip.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type CustosError, ValidationError, VerificationError } from './errors.js';
import { toBase64, sha256 } from './hash.js';
import { formatSignerKey, parseSignerKey, signNote, ed25519PrivateKeyFromSeed, ed25519RawPublicKey, parseVerifierKey } from './note.js';
import {
  COSIGNATURE_ALG,
  addCosignatures,
  checkWitnessQuorum,
  cosignCheckpoint,
  cosignatureMessage,
  cosignerLabel,
  formatCosignerSignerKey,
  formatCosignerVerifierKey,
  parseCosignerSignerKey,
  parseCosignerVerifierKey,
  requireWitnessQuorum,
  verifyCosignatures,
  type CosignerVerifier,
} from './cosignature.js';

const ORIGIN = 'custos.test/log';
const LOG_SIGNER = parseSignerKey(formatSignerKey(ORIGIN, Buffer.alloc(32, 1)));
const BODY = `${ORIGIN}\n7\n${toBase64(sha256(Buffer.from('root')))}\n`;
const NOTE = signNote(BODY, [LOG_SIGNER]);
const TS = 1_700_000_000;

function witness(i: number, name = `witness${i}.test/w`): { skey: string; vkey: string } {
  const seed = Buffer.alloc(32, 0x40 + i);
  return { skey: formatCosignerSignerKey(name, seed), vkey: formatCosignerVerifierKey(name, ed25519RawPublicKey(ed25519PrivateKeyFromSeed(seed))) };
}

const W = [witness(1), witness(2), witness(3)];
const SIGNERS = W.map((w) => parseCosignerSignerKey(w.skey));
const VERIFIERS = W.map((w) => parseCosignerVerifierKey(w.vkey));

function throwsCode(fn: () => unknown, cls: new (...a: never[]) => CustosError, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof cls && err.code === code);
}

/** Flips one bit of the base64 payload of the last signature line of a note. */
function flipLastSignatureBit(note: string, byte: number): string {
  const lines = note.split('\n');
  const i = lines.length - 2;
  const line = lines[i]!;
  const sp = line.lastIndexOf(' ');
  const payload = Buffer.from(line.slice(sp + 1), 'base64');
  payload[byte]! ^= 0x01;
  lines[i] = `${line.slice(0, sp + 1)}${payload.toString('base64')}`;
  return lines.join('\n');
}

describe('cosigner keys', () => {
  it('format and parse round trip; the key id is over 0x04 || public key', () => {
    const s = parseCosignerSignerKey(W[0]!.skey);
    const v = parseCosignerVerifierKey(W[0]!.vkey);
    assert.equal(s.keyId, v.keyId);
    assert.deepEqual(s.publicKey, v.publicKey);
    assert.equal(Buffer.from(W[0]!.vkey.split('+')[2]!, 'base64')[0], COSIGNATURE_ALG);
    assert.equal(cosignerLabel(v), W[0]!.vkey.split('+').slice(0, 2).join('+'));
  });

  it('parses a published native 0x04 vkey (transparency-dev/formats)', () => {
    const v = parseCosignerVerifierKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2');
    assert.equal(v.name, 'remora.n621.de');
    assert.equal(v.keyId, 0xda77ade7);
  });

  it('refuses a 0x01 note key as a cosigner, published or ours, and a 0x04 key as a log key', () => {
    throwsCode(() => parseCosignerVerifierKey('TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6'), VerificationError, 'KEY_MALFORMED');
    throwsCode(() => parseCosignerSignerKey(formatSignerKey('w.test', Buffer.alloc(32, 9))), VerificationError, 'KEY_MALFORMED');
    throwsCode(() => parseVerifierKey(W[0]!.vkey), VerificationError, 'KEY_MALFORMED');
  });

  it('refuses a wrong key id, bad base64 and a wrong key length', () => {
    const [name, , b64] = W[0]!.vkey.split('+') as [string, string, string];
    throwsCode(() => parseCosignerVerifierKey(`${name}+00000000+${b64}`), VerificationError, 'KEY_MALFORMED');
    throwsCode(() => parseCosignerVerifierKey(`${name}+12345678+NOT_BASE64!`), VerificationError, 'KEY_MALFORMED');
    throwsCode(() => parseCosignerVerifierKey(`${name}+12345678+BAEC`), VerificationError, 'KEY_MALFORMED');
    throwsCode(() => parseCosignerVerifierKey('no-plus'), VerificationError, 'KEY_MALFORMED');
  });
});

describe('cosignCheckpoint and verifyCosignatures', () => {
  it('round trip: the line verifies with the signer’s timestamp; the log signature is ignored', () => {
    const line = cosignCheckpoint(NOTE, SIGNERS[0]!, TS);
    assert.match(line, /^\u2014 witness1\.test\/w [A-Za-z0-9+/]+=*\n$/);
    assert.equal(Buffer.from(line.trim().split(' ')[2]!, 'base64').length, 76);
    const cosigned = addCosignatures(NOTE, line);
    const r = verifyCosignatures(cosigned, VERIFIERS);
    assert.deepEqual(r, { verified: [{ name: SIGNERS[0]!.name, keyId: SIGNERS[0]!.keyId, timestamp: TS }], invalid: [] });
    // The body alone signs the same message (Ed25519 is deterministic).
    assert.equal(cosignCheckpoint(BODY, SIGNERS[0]!, TS), line);
  });

  it('signs exactly "cosignature/v1\\ntime <ts>\\n" + body', () => {
    assert.equal(cosignatureMessage(BODY, 42).toString('utf8'), `cosignature/v1\ntime 42\n${BODY}`);
    const line = cosignCheckpoint(BODY, SIGNERS[0]!, 42);
    const payload = Buffer.from(line.trim().split(' ')[2]!, 'base64');
    assert.equal(payload.readUInt32BE(0), SIGNERS[0]!.keyId);
    assert.equal(payload.readBigUInt64BE(4), 42n);
    assert.ok(VERIFIERS[0]!.verify(Buffer.from(`cosignature/v1\ntime 42\n${BODY}`), payload.subarray(12)));
  });

  it('a flipped bit in the signature is reported invalid', () => {
    const cosigned = addCosignatures(NOTE, cosignCheckpoint(NOTE, SIGNERS[0]!, TS));
    const r = verifyCosignatures(flipLastSignatureBit(cosigned, 40), VERIFIERS);
    assert.deepEqual(r.verified, []);
    assert.deepEqual(r.invalid, [{ name: SIGNERS[0]!.name, keyId: SIGNERS[0]!.keyId, reason: 'signature' }]);
  });

  it('a changed timestamp is reported invalid (the timestamp is signed)', () => {
    const cosigned = addCosignatures(NOTE, cosignCheckpoint(NOTE, SIGNERS[0]!, TS));
    const r = verifyCosignatures(flipLastSignatureBit(cosigned, 11), VERIFIERS);
    assert.deepEqual(r.invalid, [{ name: SIGNERS[0]!.name, keyId: SIGNERS[0]!.keyId, reason: 'signature' }]);
  });

  it('a cosignature on another checkpoint body does not verify on this one', () => {
    const other = `${ORIGIN}\n8\n${toBase64(sha256(Buffer.from('other')))}\n`;
    const r = verifyCosignatures(addCosignatures(NOTE, cosignCheckpoint(other, SIGNERS[0]!, TS)), VERIFIERS);
    assert.equal(r.invalid[0]?.reason, 'signature');
  });

  it('a timestamp after notAfter is refused; at notAfter it passes', () => {
    const cosigned = addCosignatures(NOTE, cosignCheckpoint(NOTE, SIGNERS[0]!, TS));
    assert.equal(verifyCosignatures(cosigned, VERIFIERS, { notAfter: TS - 1 }).invalid[0]?.reason, 'timestamp');
    assert.equal(verifyCosignatures(cosigned, VERIFIERS, { notAfter: TS }).verified.length, 1);
  });

  it('the log’s own 0x01 signature by the same seed and name is not a cosignature', () => {
    const seed = Buffer.alloc(32, 0x41);
    const asLog = parseSignerKey(formatSignerKey(SIGNERS[0]!.name, seed));
    const note = signNote(BODY, [LOG_SIGNER, asLog]);
    assert.notEqual(asLog.keyId, SIGNERS[0]!.keyId);
    assert.deepEqual(verifyCosignatures(note, VERIFIERS), { verified: [], invalid: [] });
  });

  it('reads the timestamp of a published cosignature (transparency-dev/formats: 1727964367)', () => {
    const payload = Buffer.from('ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==', 'base64');
    // A stand-in verifier for the published key ID: only the layout is under test here.
    const seen: Uint8Array[] = [];
    const v: CosignerVerifier = {
      name: 'w.example',
      keyId: payload.readUInt32BE(0),
      verify: (m) => {
        seen.push(m);
        return true;
      },
    };
    const note = `${BODY}\n\u2014 w.example ${payload.toString('base64')}\n`;
    assert.deepEqual(verifyCosignatures(note, [v]).verified, [{ name: 'w.example', keyId: 0x646846b9, timestamp: 1727964367 }]);
    assert.equal(Buffer.from(seen[0]!).toString('utf8'), `cosignature/v1\ntime 1727964367\n${BODY}`);
    // The published "wrong type of signature": a 68-byte note signature is no cosignature.
    const wrong = Buffer.from('eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=', 'base64');
    const v2: CosignerVerifier = { name: 'w.example', keyId: wrong.readUInt32BE(0), verify: () => true };
    assert.deepEqual(verifyCosignatures(`${BODY}\n\u2014 w.example ${wrong.toString('base64')}\n`, [v2]).invalid, [{ name: 'w.example', keyId: v2.keyId, reason: 'malformed' }]);
  });

  it('refuses to cosign a non-checkpoint, and a timestamp out of range', () => {
    throwsCode(() => cosignCheckpoint('not a checkpoint\n', SIGNERS[0]!, TS), VerificationError, 'CHECKPOINT_MALFORMED');
    throwsCode(() => cosignCheckpoint(NOTE, SIGNERS[0]!, -1), ValidationError, 'VALIDATION_FAILED');
    throwsCode(() => cosignCheckpoint(NOTE, SIGNERS[0]!, 1.5), ValidationError, 'VALIDATION_FAILED');
  });

  it('a malformed note is NOTE_MALFORMED', () => {
    throwsCode(() => verifyCosignatures(BODY, VERIFIERS), VerificationError, 'NOTE_MALFORMED');
    throwsCode(() => verifyCosignatures(`${BODY}\nnot a signature\n`, VERIFIERS), VerificationError, 'NOTE_MALFORMED');
  });
});

describe('addCosignatures', () => {
  it('appends new keys, replaces a key’s earlier line, drops duplicates, keeps the log signature first', () => {
    const a1 = cosignCheckpoint(NOTE, SIGNERS[0]!, TS);
    const a2 = cosignCheckpoint(NOTE, SIGNERS[0]!, TS + 5);
    const b = cosignCheckpoint(NOTE, SIGNERS[1]!, TS);
    const n1 = addCosignatures(NOTE, [a1, b]);
    const n2 = addCosignatures(n1, `${a2}${b}`);
    assert.equal(n2, `${NOTE}${a2}${b}`);
    const r = verifyCosignatures(n2, VERIFIERS);
    assert.deepEqual(
      r.verified.map((v) => v.timestamp),
      [TS + 5, TS],
    );
  });

  it('refuses a line that is not a signature line', () => {
    throwsCode(() => addCosignatures(NOTE, 'garbage'), VerificationError, 'NOTE_MALFORMED');
  });
});

describe('witness policy (K of N)', () => {
  const policy = { witnesses: VERIFIERS, quorum: 2 };
  const labels = VERIFIERS.map(cosignerLabel);

  it('2 of 3 met', () => {
    const note = addCosignatures(NOTE, [cosignCheckpoint(NOTE, SIGNERS[0]!, TS), cosignCheckpoint(NOTE, SIGNERS[2]!, TS)]);
    const r = requireWitnessQuorum(note, policy);
    assert.deepEqual(r, { ok: true, quorum: 2, cosigned: [labels[0], labels[2]], missing: [labels[1]], invalid: [] });
  });

  it('2 of 3 not met: one valid, one invalid, one missing; requireWitnessQuorum throws WITNESS_QUORUM_NOT_MET', () => {
    const note = flipLastSignatureBit(addCosignatures(NOTE, [cosignCheckpoint(NOTE, SIGNERS[0]!, TS), cosignCheckpoint(NOTE, SIGNERS[1]!, TS)]), 30);
    assert.deepEqual(checkWitnessQuorum(note, policy), { ok: false, quorum: 2, cosigned: [labels[0]], missing: [labels[2]], invalid: [labels[1]] });
    assert.throws(
      () => requireWitnessQuorum(note, policy),
      (err: unknown) => err instanceof VerificationError && err.code === 'WITNESS_QUORUM_NOT_MET' && (err.details?.cosigned as string[] | undefined)?.length === 1,
    );
  });

  it('cosignatures by keys outside the policy do not count', () => {
    const outsider = parseCosignerSignerKey(witness(9).skey);
    const note = addCosignatures(NOTE, [cosignCheckpoint(NOTE, SIGNERS[0]!, TS), cosignCheckpoint(NOTE, outsider, TS)]);
    assert.equal(checkWitnessQuorum(note, policy).ok, false);
  });

  it('the same witness twice counts once', () => {
    const line = cosignCheckpoint(NOTE, SIGNERS[0]!, TS);
    const note = `${NOTE}${line}${cosignCheckpoint(NOTE, SIGNERS[0]!, TS + 1)}`;
    assert.deepEqual(checkWitnessQuorum(note, policy).cosigned, [labels[0]]);
  });

  it('quorum 0 is met by no cosignature; a quorum above N or a duplicate key is refused', () => {
    assert.equal(checkWitnessQuorum(NOTE, { witnesses: VERIFIERS, quorum: 0 }).ok, true);
    throwsCode(() => checkWitnessQuorum(NOTE, { witnesses: VERIFIERS, quorum: 4 }), ValidationError, 'VALIDATION_FAILED');
    throwsCode(() => checkWitnessQuorum(NOTE, { witnesses: [VERIFIERS[0]!, VERIFIERS[0]!], quorum: 1 }), ValidationError, 'VALIDATION_FAILED');
  });
});
