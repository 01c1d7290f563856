/**
 * Witness keys as `serve --witness URL=VKEY` configures them: a cosignature/v1 verifier key
 * (C2SP tlog-cosignature: `name+hexkeyid+base64(0x04 || Ed25519 public key)`, parsed by
 * src/core/cosignature.ts), turned into the {@link WitnessKey} the collector checks every
 * cosignature with.
 * @module
 */
import { addCosignatures, parseCosignerVerifierKey, verifyCosignatures, type CosignerVerifier } from '../core/cosignature.js';
import { ValidationError } from '../core/errors.js';
import type { WitnessKey } from './witnesses.js';

/**
 * Parses a cosignature/v1 verifier key (a log's note key, type 0x01, is refused).
 * @throws {ValidationError} VALIDATION_FAILED (a configuration error, with the core's reason)
 */
export function witnessKeyFromVkey(vkey: string): WitnessKey & { readonly verifier: CosignerVerifier } {
  let verifier: CosignerVerifier;
  try {
    verifier = parseCosignerVerifierKey(vkey);
  } catch (err) {
    const message = (err as Error).message;
    throw new ValidationError('VALIDATION_FAILED', `malformed witness key: ${message}`, { issues: [{ path: 'witness', message }] });
  }
  return Object.freeze({
    name: verifier.name,
    vkey,
    verifier,
    verifies(note: string, line: string): boolean {
      try {
        // The line on the checkpoint, checked as any verifier checks it: one valid cosignature by this key.
        const r = verifyCosignatures(addCosignatures(note, line), [verifier]);
        return r.verified.length === 1 && r.invalid.length === 0;
      } catch {
        return false;
      }
    },
  });
}
