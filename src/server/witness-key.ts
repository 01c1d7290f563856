/**
 * Witness keys as `serve --witness URL=VKEY` configures them: a cosignature/v1 verifier key
 * (C2SP tlog-cosignature: `name+hexkeyid+base64(0x04 || Ed25519 public key)`), turned into the
 * {@link WitnessKey} the collector checks every cosignature with.
 * @module
 */
import { ValidationError } from '../core/errors.js';
import { computeKeyId, isValidKeyName } from '../core/note.js';
import { ed25519Verifier } from '../core/crypto.js';
import type { WitnessKey } from './witnesses.js';

/** The cosignature/v1 signature type byte. */
const ALG_COSIGNATURE_V1 = 0x04;

const bad = (message: string): never => {
  throw new ValidationError('VALIDATION_FAILED', `malformed witness key: ${message}`, { issues: [{ path: 'witness', message }] });
};

// The signed message of a cosignature/v1 over a checkpoint body (the note text before the blank line).
function cosignedMessage(note: string, time: bigint): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${time}\n${note.slice(0, note.indexOf('\n\n') + 1)}`, 'utf8');
}

/**
 * Parses a cosignature/v1 verifier key.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function witnessKeyFromVkey(vkey: string): WitnessKey {
  const i = vkey.indexOf('+');
  const j = vkey.indexOf('+', i + 1);
  if (i < 0 || j < 0) bad('expected name+keyid+key');
  const name = vkey.slice(0, i);
  const idHex = vkey.slice(i + 1, j);
  const b64 = vkey.slice(j + 1);
  if (!isValidKeyName(name)) bad('invalid key name');
  if (!/^[0-9a-f]{8}$/i.test(idHex)) bad('key id must be 8 hex digits');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) bad('key is not base64');
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ALG_COSIGNATURE_V1) bad('not a cosignature/v1 (type 0x04) Ed25519 key');
  const keyId = Number.parseInt(idHex, 16);
  if (computeKeyId(name, raw) !== keyId) bad('key id does not match the key');
  const ed = ed25519Verifier(raw.subarray(1));
  return Object.freeze({
    name,
    vkey,
    verifies(note: string, line: string): boolean {
      const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)\n$/.exec(line);
      if (!m || m[1] !== name) return false;
      const sig = Buffer.from(m[2]!, 'base64');
      if (sig.length !== 4 + 8 + 64 || sig.readUInt32BE(0) !== keyId) return false;
      return ed.verify(cosignedMessage(note, sig.readBigUInt64BE(4)), sig.subarray(12));
    },
  });
}
