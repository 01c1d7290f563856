/**
 * The verifier of src/core for the web audit explorer: the entry of the browser bundle that
 * scripts/build-web.mjs writes to web/dist/custos-core.js (crypto.ts swapped for crypto.browser.ts).
 * Only what checks a log goes in: checkpoints and signed notes, inclusion and consistency proofs,
 * RFC 9162 hashing, canonical JSON and log entries, witness cosignatures and the K-of-N witness policy,
 * and offline evidence bundles (verifyBundle).
 * Nothing here signs.
 * @module
 */
export { CustosError, ValidationError, VerificationError } from './errors.js';
export { canonicalJson, canonicalJsonBytes, isCanonicalizable, parseCanonicalJson } from './canonical-json.js';
export {
  EMPTY_ROOT,
  HASH_SIZE,
  bytesEqual,
  encodeLeaf,
  fromBase64,
  fromBase64Strict,
  hashChildren,
  hashLeaf,
  parseHashHex,
  sha256,
  toBase64,
  toHex,
} from './hash.js';
export { decodeEntry, entryClaimsIndex, ENTRY_SCHEMA_VERSION } from './entry.js';
export { rootFromInclusionProof, verifyInclusion } from './merkle/inclusion.js';
export { verifyConsistency } from './merkle/consistency.js';
export { NOTE_SIG_PREFIX, computeKeyId, formatVerifierKey, isValidKeyName, openNote, parseVerifierKey } from './note.js';
export { openCheckpoint, parseCheckpointBody } from './checkpoint.js';
export {
  COSIGNATURE_ALG,
  checkWitnessQuorum,
  cosignerLabel,
  formatCosignerVerifierKey,
  parseCosignerVerifierKey,
  requireWitnessQuorum,
  verifyCosignatures,
  type CosignatureReport,
  type CosignerVerifier,
  type VerifiedCosignature,
  type InvalidCosignature,
  type WitnessPolicy,
  type WitnessQuorumResult,
} from './cosignature.js';
export { BUNDLE_MEDIA_TYPE, parseBundle, verifyBundle } from './bundle.js';
export { pae, verifyDsse } from './dsse.js';
// issue 14: training cohort proofs, checked in the explorer as `custos training verify-proof` does.
export { COHORT_PROOF_MEDIA_TYPE, verifyCohortProof } from './cohort.js';
