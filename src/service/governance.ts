/**
 * The governance overlay (the stable import path): see ./governance/index.ts for the facade and
 * ./governance/ for its modules (consent, decisions, receipts, erasure, queries, shared state).
 * @module
 */
export {
  ConsentDeniedError,
  DOC,
  EVENT,
  Governance,
  MAX_TRAINING_COHORT,
  TRAINING_DATASET_TYPES,
  MAX_FHIR_CONSENT_BYTES,
  fhirConsentImportToJson,
  type Actor,
  type BreakGlassOptions,
  type ConsentCheckRequest,
  type DataAccessInput,
  type DataAccessResult,
  type FhirConsentExport,
  type FhirConsentImport,
  type GovernanceOptions,
  type InferenceInput,
  type ReviewFilter,
  type ReviewInput,
  type ReviewQueue,
  type TrainingInput,
  // issue 14: federated learning rounds
  FL_ROUND,
  FL_SITE,
  FlRoundRefusedError,
  registerFlModelVersion,
  type FlLine,
  type FlModelVersion,
  type FlRefusal,
  type FlRound,
  type FlRoundDp,
  type FlRoundInput,
  type FlRoundResult,
  type FlSite,
  type FlSiteInput,
  type FlVersionRegistration,
  // issue 15: differential privacy
  type DpBudgetStatus,
  type DpOptions,
  type DpRelease,
  type DpReleaseFilter,
  type DpReleaseInput,
  type DpReleaseResult,
  // issue 14: training cohorts
  type TrainingResult,
  type CohortSummary,
} from './governance/index.js';
