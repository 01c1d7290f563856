/**
 * Signed-note tests against golang.org/x/mod/sumdb/note and C2SP vectors, and checkpoint
 * (C2SP tlog-checkpoint) formatting, parsing, signing and opening.
 */
import { VECTORS } from '../../test/helpers/vectors.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { VerificationError, type VerificationCode } from './errors.js';
import { fromBase64Strict, hashLeaf, toBase64 } from './hash.js';
import {
  NOTE_MAX_SIGNATURES,
  computeKeyId,
  ed25519PrivateKeyFromSeed,
  ed25519RawPublicKey,
  formatSignerKey,
  formatVerifierKey,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierKeyFromSignerKey,
  type NoteVerifier,
} from './note.js';
import { formatCheckpointBody, openCheckpoint, parseCheckpointBody, signCheckpoint, type Checkpoint } from './checkpoint.js';

// ---------------------------------------------------------------------------------------------
// Vectors location: ../shared/vectors relative to the repository root (the folder with package.json).

const NOTE_VECTORS = join(VECTORS, 'signed-note');
const SKIP_VECTORS: string | false = existsSync(NOTE_VECTORS) ? false : `published test vectors not found at ${NOTE_VECTORS} (../shared/vectors is absent)`;

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function assertVerificationError(fn: () => unknown, code: VerificationCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VerificationError, `expected a VerificationError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** The base64 key part of a verifier or signer key string (after the last two '+'-separated fields). */
function keyBytes(keyString: string, plusesBefore: number): Buffer {
  let rest = keyString;
  for (let i = 0; i < plusesBefore; i++) rest = rest.slice(rest.indexOf('+') + 1);
  const raw = fromBase64Strict(rest);
  assert.ok(raw, `key part of ${keyString} is not base64`);
  return raw;
}

// ---------------------------------------------------------------------------------------------
// golang.org/x/mod/sumdb/note vectors

interface GoNoteVectors {
  keys: Record<string, { vkey: string; skey_TEST_ONLY?: string; keyId: string }>;
  text: string;
  signatureLines: Record<string, string>;
  cases: {
    desc: string;
    signWith?: string;
    expectedNote?: string;
    note?: string;
    noteTemplate?: string;
    trusted?: string[];
    expect?: string;
    verifiedSigs?: string[];
    unverifiedSigs?: string[];
  }[];
  badVerifierKeys: { vkey: string; why: string }[];
}

/** Maps the Go error text the vectors expect to Custos error codes. */
function expectedCode(expect: string): VerificationCode {
  if (expect.startsWith('error: malformed note')) return 'NOTE_MALFORMED';
  if (expect.startsWith('error: note has no verifiable signatures')) return 'NOTE_NO_VERIFIABLE_SIGNATURE';
  if (expect.startsWith('error: invalid signature for key')) return 'NOTE_SIGNATURE_INVALID';
  throw new Error(`vector expects an error this test does not know: ${expect}`);
}

describe('signed notes (golang.org/x/mod/sumdb/note vectors)', { skip: SKIP_VECTORS }, () => {
  const v: GoNoteVectors | undefined = SKIP_VECTORS === false ? readJson<GoNoteVectors>(join(NOTE_VECTORS, 'go-sumdb-note.json')) : undefined;
  if (!v) return;

  const key = (name: string): { vkey: string; skey_TEST_ONLY?: string; keyId: string } => {
    const k = v.keys[name];
    assert.ok(k, `no key ${name} in the vectors`);
    return k;
  };
  const verifier = (name: string): NoteVerifier => parseVerifierKey(key(name).vkey);
  const peterSkey = (): string => {
    const s = key('PeterNeumann').skey_TEST_ONLY;
    assert.ok(s, 'no PeterNeumann signing key in the vectors');
    return s;
  };
  const peterSigLine = (): string => {
    const line = v.signatureLines['PeterNeumann'];
    assert.ok(line);
    return line;
  };

  describe('parseVerifierKey', () => {
    for (const name of Object.keys(v.keys)) {
      it(`parses ${name}'s key with its name and key ID`, () => {
        const k = key(name);
        const parsed = parseVerifierKey(k.vkey);
        assert.equal(parsed.name, name);
        assert.equal(parsed.keyId, Number.parseInt(k.keyId, 16));
        assert.equal(computeKeyId(name, keyBytes(k.vkey, 2)), parsed.keyId);
      });
    }

    describe('with the bad verifier keys', () => {
      for (const bad of v.badVerifierKeys) {
        it(`throws KEY_MALFORMED (${bad.why})`, () => {
          assertVerificationError(() => parseVerifierKey(bad.vkey), 'KEY_MALFORMED');
        });
      }
    });
  });

  describe('parseSignerKey', () => {
    it("parses the test signing key with Peter's name and key ID", () => {
      const s = parseSignerKey(peterSkey());
      assert.equal(s.name, 'PeterNeumann');
      assert.equal(s.keyId, Number.parseInt(key('PeterNeumann').keyId, 16));
    });
  });

  describe('formatVerifierKey', () => {
    for (const name of Object.keys(v.keys)) {
      it(`rebuilds ${name}'s verifier key string from the name and public key`, () => {
        const k = key(name);
        assert.equal(formatVerifierKey(name, keyBytes(k.vkey, 2).subarray(1)), k.vkey);
      });
    }
  });

  describe('verifierKeyFromSignerKey', () => {
    it("returns Peter's verifier key for the test signing key", () => {
      assert.equal(verifierKeyFromSignerKey(peterSkey()), key('PeterNeumann').vkey);
    });
  });

  describe('formatSignerKey', () => {
    it('rebuilds the test signing key string from the name and seed', () => {
      const seed = keyBytes(peterSkey(), 4).subarray(1);
      assert.equal(formatSignerKey('PeterNeumann', seed), peterSkey());
      assert.equal(formatVerifierKey('PeterNeumann', ed25519RawPublicKey(ed25519PrivateKeyFromSeed(seed))), key('PeterNeumann').vkey);
    });
  });

  describe('signNote', () => {
    for (const c of v.cases.filter((x) => x.signWith !== undefined)) {
      it(`${c.desc}`, () => {
        assert.equal(c.signWith, 'PeterNeumann', 'only Peter has a signing key in the vectors');
        assert.equal(signNote(v.text, [parseSignerKey(peterSkey())]), c.expectedNote);
        assert.equal(c.expectedNote, `${v.text}\n${peterSigLine()}`);
      });
    }
  });

  describe('openNote', () => {
    for (const c of v.cases.filter((x) => x.signWith === undefined)) {
      const trusted = (): NoteVerifier[] => (c.trusted ?? []).map(verifier);
      const note = (): string => {
        if (c.note !== undefined) return c.note;
        assert.equal(c.noteTemplate, 'text + "\\n" + peterSig x101', 'unknown note template');
        return `${v.text}\n${peterSigLine().repeat(101)}`;
      };
      const expect = c.expect ?? '';
      if (expect === 'ok') {
        it(`${c.desc}: opens, verifying ${(c.verifiedSigs ?? []).join(', ')}`, () => {
          const opened = openNote(note(), trusted());
          assert.equal(opened.text, v.text);
          assert.deepEqual(
            opened.verified.map((s) => s.name),
            c.verifiedSigs ?? [],
          );
          assert.deepEqual(
            opened.unverified.map((s) => s.name),
            c.unverifiedSigs ?? [],
          );
          for (const s of [...opened.verified, ...opened.unverified]) {
            assert.equal(s.keyId, Number.parseInt(key(s.name).keyId, 16));
          }
        });
      } else {
        const code = expectedCode(expect);
        it(`${c.desc}: throws ${code}`, () => {
          assertVerificationError(() => openNote(note(), trusted()), code);
        });
      }
    }

    describe(`with exactly ${NOTE_MAX_SIGNATURES} signatures`, () => {
      it('opens (duplicates by a known key are verified once)', () => {
        const opened = openNote(`${v.text}\n${peterSigLine().repeat(NOTE_MAX_SIGNATURES)}`, [verifier('PeterNeumann')]);
        assert.deepEqual(
          opened.verified.map((s) => s.name),
          ['PeterNeumann'],
        );
      });
    });

    describe('when a signature by an unknown key is repeated', () => {
      it('lists it once among the unverified signatures', () => {
        const enoch = v.signatureLines['EnochRoot'];
        assert.ok(enoch);
        const opened = openNote(`${v.text}\n${peterSigLine()}${enoch}${enoch}`, [verifier('PeterNeumann')]);
        assert.deepEqual(
          opened.unverified.map((s) => s.name),
          ['EnochRoot'],
        );
      });
    });

    describe('when a known signature is valid but a second one by the same key is corrupt', () => {
      it('ignores the repeat (Go drops repeated signatures by one verifier before checking them)', () => {
        const corrupt = v.cases.find((c) => c.desc.startsWith('corrupted known signature'))?.note;
        assert.ok(corrupt);
        const corruptLine = corrupt.slice(corrupt.lastIndexOf('\n\n') + 2);
        const opened = openNote(`${v.text}\n${peterSigLine()}${corruptLine}`, [verifier('PeterNeumann')]);
        assert.equal(opened.verified.length, 1);
      });
    });

    describe('when the signed text is altered', () => {
      it('throws NOTE_SIGNATURE_INVALID', () => {
        const altered = `${v.text.replace('cryptography', 'Cryptography')}\n${peterSigLine()}`;
        assertVerificationError(() => openNote(altered, [verifier('PeterNeumann')]), 'NOTE_SIGNATURE_INVALID');
      });
    });

    describe('when the key ID in a signature does not match the trusted key', () => {
      it('treats it as an unknown key: NOTE_NO_VERIFIABLE_SIGNATURE', () => {
        const line = peterSigLine();
        const sig = fromBase64Strict(line.slice('\u2014 PeterNeumann '.length, -1));
        assert.ok(sig);
        sig[0] = (sig[0] ?? 0) ^ 0xff;
        const forged = `${v.text}\n\u2014 PeterNeumann ${toBase64(sig)}\n`;
        assertVerificationError(() => openNote(forged, [verifier('PeterNeumann')]), 'NOTE_NO_VERIFIABLE_SIGNATURE');
      });
    });
  });
});

describe('signed notes (C2SP signed-note spec example)', { skip: SKIP_VECTORS }, () => {
  const ex: { vkey: string; note: string } | undefined = SKIP_VECTORS === false ? readJson(join(NOTE_VECTORS, 'c2sp-signed-note-example.json')) : undefined;
  if (!ex) return;

  describe('openNote', () => {
    it("verifies the spec's example note with the spec's verifier key", () => {
      const vk = parseVerifierKey(ex.vkey);
      assert.equal(vk.name, 'example.com/foo');
      assert.equal(vk.keyId, 0x530d903a);
      const opened = openNote(ex.note, [vk]);
      assert.equal(opened.text, 'This is an example message.\n');
      assert.deepEqual(
        opened.verified.map((s) => s.name),
        ['example.com/foo'],
      );
      assert.deepEqual(opened.unverified, []);
    });
  });

  describe('formatVerifierKey', () => {
    it("rebuilds the spec's verifier key string", () => {
      assert.equal(formatVerifierKey('example.com/foo', keyBytes(ex.vkey, 2).subarray(1)), ex.vkey);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Notes and keys without vectors

const SEED = Buffer.alloc(32, 7);
const SKEY = formatSignerKey('custos.test/log', SEED);
const SIGNER = parseSignerKey(SKEY);
const VERIFIER = parseVerifierKey(verifierKeyFromSignerKey(SKEY));
const OTHER_SKEY = formatSignerKey('custos.test/other', Buffer.alloc(32, 9));
const OTHER_VERIFIER = parseVerifierKey(verifierKeyFromSignerKey(OTHER_SKEY));

describe('signNote', () => {
  describe('with a freshly formatted key', () => {
    it('produces a note that openNote verifies', () => {
      const text = 'hello\nworld\n';
      const note = signNote(text, [SIGNER, parseSignerKey(OTHER_SKEY)]);
      const opened = openNote(note, [VERIFIER, OTHER_VERIFIER]);
      assert.equal(opened.text, text);
      assert.deepEqual(
        opened.verified.map((s) => s.name),
        ['custos.test/log', 'custos.test/other'],
      );
    });
  });

  describe('when the text is empty, lacks a final newline or holds a blank line or control character', () => {
    it('throws NOTE_MALFORMED', () => {
      for (const text of ['', 'no newline', 'a\n\nb\n', 'tab\there\n', 'cr\r\n', 'lone \ud800 surrogate\n']) {
        assertVerificationError(() => signNote(text, [SIGNER]), 'NOTE_MALFORMED');
      }
    });
  });
});

describe('parseVerifierKey', () => {
  describe('when the key string is malformed', () => {
    it('throws KEY_MALFORMED', () => {
      const good = verifierKeyFromSignerKey(SKEY);
      // Split on the first two '+' only: the base64 part may contain '+'.
      const parts = good.split('+');
      const name = parts[0] ?? '';
      const id = parts[1] ?? '';
      const b64 = parts.slice(2).join('+');
      const wrongId = ((Number.parseInt(id, 16) + 1) >>> 0).toString(16).padStart(8, '0');
      for (const bad of [
        '',
        name,
        `${name}+${id}`,
        `${name}+${wrongId}+${b64}`, // key ID does not match
        `other+${id}+${b64}`, // name does not match the key ID
        `+${id}+${b64}`, // empty name
        `${name}+${id.slice(1)}+${b64}`, // short key ID
        `${name}+${id}+${b64.slice(0, -4)}`, // truncated key
        `${name}+${id}+not base64!`,
      ]) {
        assertVerificationError(() => parseVerifierKey(bad), 'KEY_MALFORMED');
      }
    });
  });

  describe('when the key has a matching key ID but is not a 32-byte Ed25519 key', () => {
    it('throws KEY_MALFORMED', () => {
      // Built with canonical base64 and a correct key ID, so only the algorithm or length is wrong.
      const vkeyFor = (name: string, algAndKey: Buffer): string => `${name}+${computeKeyId(name, algAndKey).toString(16).padStart(8, '0')}+${toBase64(algAndKey)}`;
      const pub = ed25519RawPublicKey(ed25519PrivateKeyFromSeed(SEED));
      assert.doesNotThrow(() => parseVerifierKey(vkeyFor('n', Buffer.concat([Buffer.from([0x01]), pub]))));
      for (const algAndKey of [
        Buffer.concat([Buffer.from([0x01]), pub, Buffer.from([0])]), // 33-byte key
        Buffer.concat([Buffer.from([0x01]), pub.subarray(1)]), // 31-byte key
        Buffer.from([0x01]), // no key
        Buffer.concat([Buffer.from([0x02]), pub]), // unknown algorithm
      ]) {
        assertVerificationError(() => parseVerifierKey(vkeyFor('n', algAndKey)), 'KEY_MALFORMED');
      }
    });
  });
});

describe('parseSignerKey', () => {
  describe('when the key string is malformed', () => {
    it('throws KEY_MALFORMED', () => {
      for (const bad of ['', SKEY.replace('PRIVATE+KEY+', ''), SKEY.replace('PRIVATE', 'PUBLIC'), verifierKeyFromSignerKey(SKEY)]) {
        assertVerificationError(() => parseSignerKey(bad), 'KEY_MALFORMED');
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Checkpoints

const ORIGIN = 'custos.test/log';
const ROOT = hashLeaf(Buffer.from('root'));
const ROOT_B64 = ROOT.toString('base64');

describe('formatCheckpointBody', () => {
  describe('for a valid checkpoint', () => {
    it('writes origin, decimal size and base64 root, one per line', () => {
      assert.equal(formatCheckpointBody({ origin: ORIGIN, treeSize: 5, rootHash: ROOT }), `${ORIGIN}\n5\n${ROOT_B64}\n`);
      assert.equal(formatCheckpointBody({ origin: ORIGIN, treeSize: 0, rootHash: ROOT, extensions: ['ext one', 'ext two'] }), `${ORIGIN}\n0\n${ROOT_B64}\next one\next two\n`);
    });
  });

  describe('when a field cannot be written', () => {
    it('throws CHECKPOINT_MALFORMED', () => {
      for (const cp of [
        { origin: '', treeSize: 1, rootHash: ROOT },
        { origin: 'a\nb', treeSize: 1, rootHash: ROOT },
        { origin: ORIGIN, treeSize: -1, rootHash: ROOT },
        { origin: ORIGIN, treeSize: 1.5, rootHash: ROOT },
        { origin: ORIGIN, treeSize: 2 ** 53, rootHash: ROOT },
        { origin: ORIGIN, treeSize: 1, rootHash: ROOT.subarray(1) },
        { origin: ORIGIN, treeSize: 1, rootHash: ROOT, extensions: [''] },
        { origin: ORIGIN, treeSize: 1, rootHash: ROOT, extensions: ['a\nb'] },
      ]) {
        assertVerificationError(() => formatCheckpointBody(cp), 'CHECKPOINT_MALFORMED');
      }
    });
  });
});

describe('parseCheckpointBody', () => {
  describe('for any checkpoint formatCheckpointBody writes', () => {
    it('returns the same checkpoint (round trip)', () => {
      // Any Unicode scalar value (fast-check's 'binary' unit costs ~2 s to initialise, so build it here).
      const scalar = fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff })).map((c) => String.fromCodePoint(c));
      const line = fc.string({ unit: scalar, minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\n'));
      fc.assert(
        fc.property(
          line,
          fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.array(line, { maxLength: 3 }),
          (origin, treeSize, root, extensions) => {
            const cp: Checkpoint = { origin, treeSize, rootHash: Buffer.from(root), extensions };
            const parsed = parseCheckpointBody(formatCheckpointBody(cp));
            assert.deepEqual(parsed, cp);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('when the body is malformed', () => {
    const cases: [string, string][] = [
      ['size with a leading zero', `${ORIGIN}\n05\n${ROOT_B64}\n`],
      ['size 00', `${ORIGIN}\n00\n${ROOT_B64}\n`],
      ['negative size', `${ORIGIN}\n-1\n${ROOT_B64}\n`],
      ['size with a plus sign', `${ORIGIN}\n+5\n${ROOT_B64}\n`],
      ['hexadecimal size', `${ORIGIN}\n0x10\n${ROOT_B64}\n`],
      ['size in exponent notation', `${ORIGIN}\n1e3\n${ROOT_B64}\n`],
      ['fractional size', `${ORIGIN}\n1.0\n${ROOT_B64}\n`],
      ['size in words', `${ORIGIN}\nfive\n${ROOT_B64}\n`],
      ['size with a space', `${ORIGIN}\n 5\n${ROOT_B64}\n`],
      ['empty size', `${ORIGIN}\n\n${ROOT_B64}\n`],
      ['size above 2^53 - 1', `${ORIGIN}\n9007199254740992\n${ROOT_B64}\n`],
      ['size with 17 digits', `${ORIGIN}\n10000000000000000\n${ROOT_B64}\n`],
      ['root of 31 bytes', `${ORIGIN}\n5\n${ROOT.subarray(1).toString('base64')}\n`],
      ['root of 33 bytes', `${ORIGIN}\n5\n${Buffer.concat([ROOT, Buffer.from([0])]).toString('base64')}\n`],
      ['root in hex', `${ORIGIN}\n5\n${ROOT.toString('hex')}\n`],
      ['root in unpadded base64', `${ORIGIN}\n5\n${ROOT_B64.replace(/=+$/, '')}\n`],
      ['empty root', `${ORIGIN}\n5\n\n`],
      ['missing final newline', `${ORIGIN}\n5\n${ROOT_B64}`],
      ['only two lines', `${ORIGIN}\n5\n`],
      ['empty origin', `\n5\n${ROOT_B64}\n`],
      ['empty extension line', `${ORIGIN}\n5\n${ROOT_B64}\n\next\n`],
      ['empty text', ''],
    ];
    for (const [what, body] of cases) {
      it(`throws CHECKPOINT_MALFORMED for a ${what}`, () => {
        assertVerificationError(() => parseCheckpointBody(body), 'CHECKPOINT_MALFORMED');
      });
    }
  });

  describe('for size 0 and the largest safe size', () => {
    it('parses them', () => {
      assert.equal(parseCheckpointBody(`${ORIGIN}\n0\n${ROOT_B64}\n`).treeSize, 0);
      assert.equal(parseCheckpointBody(`${ORIGIN}\n9007199254740991\n${ROOT_B64}\n`).treeSize, Number.MAX_SAFE_INTEGER);
    });
  });
});

describe('signCheckpoint', () => {
  describe('with openCheckpoint', () => {
    it('round-trips origin, size, root, extensions and note', () => {
      const cp: Checkpoint = { origin: ORIGIN, treeSize: 42, rootHash: ROOT, extensions: ['x-ext 1'] };
      const signed = signCheckpoint(cp, SIGNER);
      assert.equal(signed.note, signNote(formatCheckpointBody(cp), [SIGNER]));
      const opened = openCheckpoint(signed.note, [VERIFIER], ORIGIN);
      assert.equal(opened.origin, ORIGIN);
      assert.equal(opened.treeSize, 42);
      assert.deepEqual(opened.rootHash, ROOT);
      assert.deepEqual(opened.extensions, ['x-ext 1']);
      assert.equal(opened.note, signed.note);
      assert.deepEqual(
        opened.opened.verified.map((s) => s.name),
        [ORIGIN],
      );
    });
  });
});

describe('openCheckpoint', () => {
  const signed = signCheckpoint({ origin: ORIGIN, treeSize: 7, rootHash: ROOT, extensions: [] }, SIGNER);

  describe('without an expected origin', () => {
    it('accepts any origin', () => {
      assert.equal(openCheckpoint(signed.note, [VERIFIER]).origin, ORIGIN);
    });
  });

  describe('when the origin is not the expected one', () => {
    it('throws CHECKPOINT_MALFORMED', () => {
      assertVerificationError(() => openCheckpoint(signed.note, [VERIFIER], 'custos.test/other'), 'CHECKPOINT_MALFORMED');
    });
  });

  describe('when no trusted key signed it', () => {
    it('throws NOTE_NO_VERIFIABLE_SIGNATURE', () => {
      assertVerificationError(() => openCheckpoint(signed.note, [OTHER_VERIFIER], ORIGIN), 'NOTE_NO_VERIFIABLE_SIGNATURE');
    });
  });

  describe('when the body was altered after signing', () => {
    it('throws NOTE_SIGNATURE_INVALID', () => {
      const altered = signed.note.replace(`${ORIGIN}\n7\n`, `${ORIGIN}\n8\n`);
      assert.notEqual(altered, signed.note);
      assertVerificationError(() => openCheckpoint(altered, [VERIFIER], ORIGIN), 'NOTE_SIGNATURE_INVALID');
    });
  });

  describe('when a validly signed body is not a checkpoint', () => {
    it('throws CHECKPOINT_MALFORMED', () => {
      for (const body of [`${ORIGIN}\n07\n${ROOT_B64}\n`, `${ORIGIN}\n-7\n${ROOT_B64}\n`, `${ORIGIN}\n7\n`]) {
        assertVerificationError(() => openCheckpoint(signNote(body, [SIGNER]), [VERIFIER], ORIGIN), 'CHECKPOINT_MALFORMED');
      }
    });
  });
});
