/**
 * Custos: a verifiable audit log for clinical AI governance.
 *
 * The public library API. Every export is named here; internals are not reachable.
 * @module
 */

// Errors
export {
  CustosError,
  ValidationError,
  VerificationError,
  NotFoundError,
  ConflictError,
  StoreError,
  InternalError,
  type ErrorCode,
  type ValidationIssue,
} from './core/errors.js';

// Pure core: formats and verification
export { canonicalJson, canonicalJsonBytes, isCanonicalizable, type JsonValue } from './core/canonical-json.js';
export { sha256, hashLeaf, hashChildren, EMPTY_ROOT, HASH_SIZE, parseHashHex, toHex } from './core/hash.js';
export { decodeEntry, ENTRY_SCHEMA_VERSION, type LogEntry } from './core/entry.js';
export { verifyInclusion, rootFromInclusionProof } from './core/merkle/inclusion.js';
export { verifyConsistency } from './core/merkle/consistency.js';
export { computeRoot } from './core/merkle/tree.js';
export {
  parseVerifierKey,
  parseSignerKey,
  formatVerifierKey,
  openNote,
  signNote,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
} from './core/note.js';
export { openCheckpoint, parseCheckpointBody, formatCheckpointBody, type Checkpoint, type SignedCheckpoint } from './core/checkpoint.js';
export {
  COSIGNATURE_ALG,
  addCosignatures,
  checkWitnessQuorum,
  cosignCheckpoint,
  cosignerLabel,
  formatCosignerSignerKey,
  formatCosignerVerifierKey,
  parseCosignerSignerKey,
  parseCosignerVerifierKey,
  requireWitnessQuorum,
  verifyCosignatures,
  type CosignatureOptions,
  type CosignatureReport,
  type CosignerSigner,
  type CosignerVerifier,
  type InvalidCosignature,
  type VerifiedCosignature,
  type WitnessPolicy,
  type WitnessQuorumResult,
} from './core/cosignature.js';
export {
  ADD_CHECKPOINT_PATH,
  TLOG_SIZE_CONTENT_TYPE,
  formatAddCheckpointRequest,
  parseAddCheckpointRequest,
  parseTlogSize,
  type AddCheckpointRequest,
} from './core/tlog-witness.js';

// Storage
export type { LogStore, StoredEntry, StoredCheckpoint, StoreStats, AppendBatch } from './store/store.js';

// The log
export { Log, type LogOptions, type AppendResult, type InclusionProof, type ConsistencyProof } from './log/log.js';
export { LogReader } from './log/reader.js';
export { verifyLog, type VerifyReport, type VerifyLogOptions, type Finding, type FindingKind } from './log/verify-log.js';
export { initDataDir, openDataDir, openLog, loadSigner, resolveDataDir, DEFAULT_DATA_DIR, type DataDir, type InitResult } from './log/data-dir.js';
export { systemClock, ManualClock, type Clock } from './log/clock.js';

// Governance overlay
export { ConsentError } from './core/errors.js';
export { evaluateConsent, type Decision, type DecisionReason, type PolicyLookup, type ConsentRequest } from './core/consent/evaluate.js';
export { parsePolicyInput, type ConsentPolicy, type Provision, type PolicyInput } from './core/consent/policy.js';
export { computeCommitment } from './core/commitment.js';
export {
  HL7_PURPOSES_OF_USE,
  DEFAULT_TRAINING_PURPOSES,
  DEFAULT_ROLES,
  DEFAULT_VOCABULARY,
  POLICY_ID_RE,
  createVocabulary,
  DEFAULT_BREAK_GLASS_PURPOSES,
  DEFAULT_BREAK_GLASS_JUSTIFICATIONS,
  DEFAULT_REVIEW_REASONS,
  REVIEW_OUTCOMES,
  type ReviewOutcome,
  type Permission,
  type RoleTable,
  type Vocabulary,
  type VocabularyOptions,
} from './core/vocabulary.js';
export { parseRoleConfig, compileRoleCodings, MAX_ROLE_CODINGS, type RoleCodings, type RoleConfig } from './core/role-codings.js';
export {
  BREAK_GLASS_REFUSALS,
  DEFAULT_REVIEW_DEADLINE_MS,
  classifyBreakGlass,
  reviewStatus,
  type BreakGlassRefusal,
  type ReviewItem,
  type ReviewStatus,
} from './core/break-glass.js';
export { EVENT_REGISTRY, checkEventPayload, checkOperatorEventPayload, checkAppendPayload, OPERATOR_VALUE_RE, type FieldClass, type FieldSpec } from './core/events.js';
export type { Receipt, PipelineManifest, ModelSpec, TrainingManifest } from './core/manifest.js';
// issue 14: explanations in receipts.
export { EXPLANATION_METHODS, EXPLANATION_METHOD_RE } from './core/vocabulary.js';
export { EXPLANATIONS_SCHEMA, MAX_EXPLANATIONS, parseExplanationsDocument, type ExplanationRecord, type ExplanationsDocument } from './core/manifest.js';
// issue 14: model registry and change control (docs/models.md).
export {
  INTENDED_USES,
  RISK_CLASSES,
  MODIFICATION_TYPES,
  RETIRE_REASONS,
  PLAN_CHECKS,
  parseChangePlan,
  parseModelRegistration,
  evaluateChangePlan,
  type ChangePlan,
  type ChangeControl,
  type IntendedUse,
  type RiskClass,
  type ModelOrigin,
  type ModelRegistration,
  type PlanEvaluation,
} from './core/models.js';
export { ModelRefusedError, type ModelRegistered, type RegisterModelInput, type ModelLineView, type ModelVersionView, type ChangeControlResult } from './service/governance.js';
// issue 14: import of the reference's ledgers (docs/import.md).
export { parsePythonJson, pythonStableDumps, pyFloatRepr, PyDict, PyFloat, PyInt, PythonJsonError, type PyValue } from './core/python-json.js';
export {
  verifyReferenceLedger,
  REFERENCE_DEFECTS,
  type ReferenceDefect,
  type ReferenceDefectKind,
  type ReferenceLedgerInput,
  type ReferenceLedgerResult,
  type VerifiedReferenceLedger,
} from './core/reference-ledger.js';
export {
  importReferenceLedger,
  findPriorImport,
  runReferenceImport,
  memoryStore,
  type ReferenceImportResult,
  type ReferenceImportReport,
  type ReferenceImportRun,
  type ReferenceImportTarget,
} from './service/reference-import.js';
export {
  Governance,
  ConsentDeniedError,
  EVENT,
  TRAINING_DATASET_TYPES,
  MAX_TRAINING_COHORT,
  type Actor,
  type GovernanceOptions,
  type BreakGlassOptions,
  type DataAccessInput,
  type DataAccessResult,
  type InferenceInput,
  type ReviewFilter,
  type ReviewInput,
  type ReviewQueue,
  type TrainingInput,
} from './service/governance.js';
export { verifyDocuments, type DocumentReport, type DocumentFinding, type DocumentFindingKind } from './service/verify-documents.js';
export { rebuildReceipt, type RebuiltReceipt, type ReceiptCheck } from './service/receipt.js';
export { buildBundle, intotoAttestations, type BuildBundleOptions, type BuiltBundle } from './service/bundle.js';
export {
  BUNDLE_MEDIA_TYPE,
  INFERENCE_PREDICATE_TYPE,
  TRAINING_PREDICATE_TYPE,
  dsseKeyId,
  parseBundle,
  verifyBundle,
  type Bundle,
  type BundleCheck,
  type BundleVerification,
  type VerifyBundleOptions,
} from './core/bundle.js';
export { INTOTO_PAYLOAD_TYPE, INTOTO_STATEMENT_V1, pae, verifyDsse, type DsseEnvelope, type IntotoStatement } from './core/dsse.js';
export { runTamperCheck, type TamperCheckReport } from './service/tamper-check.js';
// issue 14: federated learning rounds (docs/federated.md): the signed update message, its check and
// the zCDP accountant, for checking a line offline; the service's round and site types.
export {
  FL_AGGREGATIONS,
  FL_REFUSAL_REASONS,
  FL_UPDATE_DOMAIN,
  accountRound,
  epsilonOfRho,
  flUpdateMessage,
  isFlOrigin,
  roundRho,
  verifyFlUpdateSignature,
  type FlDpAccount,
  type FlDpParams,
  type FlRefusalReason,
} from './core/federated.js';
export { FlRoundRefusedError, type FlLine, type FlLineSummary, type FlModelVersion, type FlRefusal, type FlRound, type FlRoundResult, type FlSite } from './service/governance.js';
// issue 15: selective disclosure (attestations as SD-JWT, docs/attestations.md)
export {
  ATTESTATION_TYP,
  DISCLOSABLE_CLAIMS,
  decodeAttestation,
  disclosedPaths,
  issuerJwk,
  parseIssuerJwk,
  presentAttestation,
  verifyAttestation,
  type DecodedAttestation,
  type IssuerJwk,
  type VerifiedAttestation,
  type VerifyAttestationOptions,
} from './core/attestation.js';
// issue 14: training cohorts (sorted Merkle tree, cohort proofs verified offline).
export {
  SortedTree,
  verifySortedInclusion,
  verifySortedNonInclusion,
  type SortedInclusionProof,
  type SortedNonInclusionProof,
  type SortedNeighbour,
} from './core/merkle/sorted.js';
export {
  COHORT_DOCUMENT_SCHEMA,
  COHORT_PROOF_MEDIA_TYPE,
  COHORT_EXCLUSION_REASONS,
  parseCohortProof,
  verifyCohortProof,
  type CohortProof,
  type CohortProofVerification,
  type CohortProofCheck,
  type CohortExclusionReason,
} from './core/cohort.js';
export { buildCohortProof, type BuildCohortProofOptions, type CohortSummary } from './service/governance/cohort.js';
export type { TrainingResult } from './service/governance.js';
export { MAX_COHORT_SUBJECTS } from './service/requests.js';
