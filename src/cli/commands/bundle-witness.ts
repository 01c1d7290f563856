/**
 * The witness policy of `custos verify-bundle`: K of the given witness keys must have cosigned the
 * bundle's checkpoint (C2SP tlog-cosignature, src/core/cosignature.ts).
 * @module
 */
import { ValidationError } from '../../core/errors.js';
import type { BundleWitnessCheck } from '../../core/bundle.js';

/** A check that `quorum` of the witness keys `vkeys` cosigned a checkpoint note. */
export function cosignedBy(_vkeys: readonly string[], _quorum: number): BundleWitnessCheck {
  throw new ValidationError('VALIDATION_FAILED', 'witness cosignatures are not supported yet (src/core/cosignature.ts)');
}
