/**
 * The governance overlay: consent, data access, inference receipts and training records on the log.
 *
 * Invariants:
 * - Every attempt (access, inference) leaves exactly one event: executed, or CONSENT_DENIED with its
 *   reason. Invalid input leaves none and writes nothing.
 * - A decision is made when its event is sequenced, against the policy head (the version the log
 *   committed last before it), at the log's time. A revocation acknowledged before is therefore
 *   always seen. Heads are derived from the log's consent events (read once at open, then only new
 *   entries; only entries whose bytes hash to a checkpoint signed by the log's key, else
 *   LOG_INTEGRITY: see log/verified-scan.ts); the head rows in the store are a cache nothing here
 *   trusts, and `custos verify` reports rows that disagree with the log (POLICY_HEAD_MISMATCH).
 * - A decision re-reads the policy document and checks it against the hash on the log; a document
 *   edited in the store is refused (POLICY_TAMPERED) and the refusal is logged.
 * - Identifiers (subjects, artifact URIs) reach the log only as salted commitments; documents are
 *   stored off-ledger, content-addressed, in the same transaction as the event that commits them.
 * - The overlay reaches storage only through the log: `log.appendDecided`, `log.reader` (entries)
 *   and `log.sidecar` (documents, commitments, scrub).
 *
 * {@link Governance} is a facade over one {@link GovernanceState} and the modules that act on it:
 * consent.ts (create, revoke), decisions.ts (data access, training, the decision under consent),
 * receipts.ts (inference and its receipt), erasure.ts, queries.ts (check, show), fhir-consent.ts
 * (FHIR Consent import and export); policy-heads.ts,
 * commitments.ts, documents.ts and links.ts hold the shared state.
 * @module
 */
import type { Decision } from '../../core/consent/evaluate.js';
import type { Receipt } from '../../core/manifest.js';
import type { Permission, Vocabulary } from '../../core/vocabulary.js';
import type { AppendResult, Log } from '../../log/log.js';
import type { ACCESS, Checked, DataAccessInput, INFERENCE, InferenceInput, ReviewInput, TRAINING, TrainingInput } from '../requests.js';
import { createConsent, revokeConsent, type PolicyChange } from './consent.js';
import { recordDataAccess, recordTraining, type DataAccessResult, type TrainingResult } from './decisions.js';
import {
  approveModel,
  commitChangePlan,
  listChangePlans,
  listModels,
  registerModel,
  retireModel,
  showChangePlan,
  showModel,
  type ModelLineView,
  type ModelRegistered,
  type ModelVersionView,
  type RegisterModelInput,
} from './models.js';
import type { ChangePlan, ChangePlanState, ModelVersionState } from '../../core/models.js';
import { closeReview, listReviews, type ReviewFilter, type ReviewQueue } from './reviews.js';
import type { ReviewStatus } from '../../core/break-glass.js';
import { erase, type ErasureResult } from './erasure.js';
import { checkConsent, showConsent, type ConsentCheckRequest, type PolicyVersion } from './queries.js';
import { exportFhirConsent, importFhirConsent, type FhirConsentExport, type FhirConsentImport } from './fhir-consent.js';
import type { FhirVersion } from '../../fhir/validate.js';
import { recordInference } from './receipts.js';
import { GovernanceState, type Actor, type GovernanceOptions } from './state.js';
import { listLines, listRounds, listSites, recordRound, registerSite, retireSite, type FlLine, type FlLineSummary, type FlRoundResult, type FlSite } from './federated.js';
import { listReleases, releaseStatistics, type DpBudgetStatus, type DpRelease, type DpReleaseFilter, type DpReleaseResult } from './dp.js';
import type { DpReleaseInput } from '../requests.js';

export { GOVERNANCE_EVENT as EVENT } from '../../core/events.js';
export { DOC } from './documents.js';
export { ConsentDeniedError } from './decisions.js';
export type { Actor, BreakGlassOptions, GovernanceOptions } from './state.js';
export type { DataAccessResult, TrainingResult } from './decisions.js';
export type { CohortSummary } from './cohort.js';
// issue 14: model registry and change control
export { ModelRefusedError } from './models.js';
export type { ChangeControlResult, ModelLineView, ModelRegistered, ModelVersionView, RegisterModelInput } from './models.js';
export type { ReviewFilter, ReviewQueue } from './reviews.js';
export type { FhirConsentExport, FhirConsentImport } from './fhir-consent.js';
export { MAX_FHIR_CONSENT_BYTES, fhirConsentImportToJson } from './fhir-consent.js';
export type { ConsentCheckRequest } from './queries.js';
export { TRAINING_DATASET_TYPES, MAX_TRAINING_COHORT } from '../requests.js';
export type { DataAccessInput, InferenceInput, ReviewInput, TrainingInput } from '../requests.js';
// issue 14: federated learning rounds
export { FL_ROUND, FL_SITE, FlRoundRefusedError, registerFlModelVersion } from './federated.js';
export type { FlLine, FlLineSummary, FlModelVersion, FlRefusal, FlRound, FlRoundDp, FlRoundInput, FlRoundResult, FlSite, FlSiteInput, FlVersionRegistration } from './federated.js';
// issue 15: differential privacy
export type { DpBudgetStatus, DpOptions, DpRelease, DpReleaseFilter, DpReleaseResult } from './dp.js';
export type { DpReleaseInput } from '../requests.js';

/** The governance overlay over one log. */
export class Governance {
  readonly #s: GovernanceState;

  private constructor(s: GovernanceState) {
    this.#s = s;
  }

  /** Opens the overlay on a log, loading the policy heads from the log's verified scan. */
  static async open(options: GovernanceOptions): Promise<Governance> {
    // Heads come from the log's verified scan: only entries a signed checkpoint covers.
    const s = new GovernanceState(options);
    await s.heads.sync();
    options.log.onReload(async () => {
      s.reloads++;
      await s.heads.sync();
    });
    return new Governance(s);
  }

  /** Whether `role` holds `permission` in this overlay's role table. */
  may(role: string, permission: Permission): boolean {
    return this.#s.may(role, permission);
  }

  /** The vocabularies this overlay checks codes against. */
  get vocabulary(): Vocabulary {
    return this.#s.vocab;
  }

  get log(): Log {
    return this.#s.log;
  }

  /** Salts chosen for values not yet committed, held by operations in flight (0 when idle). */
  get pendingCommitments(): number {
    return this.#s.commitments.pending;
  }

  /** See {@link createConsent}. */
  createConsent(input: unknown, actor: Actor): Promise<{ policy: PolicyChange['policy']; hash: string; event: AppendResult }> {
    return createConsent(this.#s, input, actor);
  }

  /** See {@link revokeConsent}. */
  revokeConsent(policyId: string, actor: Actor): Promise<{ policy: PolicyChange['policy']; hash: string; event: AppendResult }> {
    return revokeConsent(this.#s, policyId, actor);
  }

  /** See {@link checkConsent}. */
  checkConsent(policyId: string, request: ConsentCheckRequest): Promise<Decision> {
    return checkConsent(this.#s, policyId, request);
  }

  /** See {@link importFhirConsent}. */
  importFhirConsent(bytes: Uint8Array, actor: Actor, opts: { fhirVersion?: FhirVersion } = {}): Promise<FhirConsentImport> {
    return importFhirConsent(this.#s, bytes, actor, opts);
  }

  /** See {@link exportFhirConsent}. */
  exportFhirConsent(policyId: string): Promise<FhirConsentExport> {
    return exportFhirConsent(this.#s, policyId);
  }

  /** See {@link showConsent}. */
  showConsent(policyId: string): Promise<{ policyId: string; versions: PolicyVersion[] }> {
    return showConsent(this.#s, policyId);
  }

  /** See {@link recordDataAccess}. */
  recordDataAccess(input: DataAccessInput | Checked<typeof ACCESS>): Promise<DataAccessResult> {
    return recordDataAccess(this.#s, input);
  }

  /** Open break-glass reviews older than this are overdue (ms). */
  get reviewDeadlineMs(): number {
    return this.#s.reviewDeadlineMs;
  }

  /** See {@link listReviews}. */
  listReviews(filter?: ReviewFilter): Promise<ReviewQueue> {
    return listReviews(this.#s, filter);
  }

  /** See {@link closeReview}. */
  closeReview(index: number | string, input: ReviewInput, actor: Actor): Promise<{ review: ReviewStatus; event: AppendResult }> {
    return closeReview(this.#s, index, input, actor);
  }

  /** See {@link recordInference}. */
  recordInference(request: InferenceInput | Checked<typeof INFERENCE>): Promise<{ receipt: Receipt; receiptHash: string; event: AppendResult; decision: Decision }> {
    return recordInference(this.#s, request);
  }

  /** See {@link recordTraining}. */
  recordTraining(input: TrainingInput | Checked<typeof TRAINING>): Promise<TrainingResult> {
    return recordTraining(this.#s, input);
  }

  // ---- issue 14: model registry and change control (docs/models.md) ----

  /** Whether inferences under models of unregistered lines are refused too. */
  get requireRegisteredModels(): boolean {
    return this.#s.requireRegisteredModels;
  }

  /**
   * Registers a model version (MODEL_REGISTERED; the spec stored off-ledger). The federated-learning
   * line calls it for the version its final round makes, with `origin: { kind: 'fl', line, round }`.
   * See {@link registerModel}.
   */
  registerModel(input: RegisterModelInput, actor: Actor): Promise<ModelRegistered> {
    return registerModel(this.#s, input, actor);
  }

  /** See {@link approveModel}. */
  approveModel(model: string, version: string, actor: Actor): Promise<{ version: ModelVersionState; event: AppendResult }> {
    return approveModel(this.#s, model, version, actor);
  }

  /** See {@link retireModel}. */
  retireModel(model: string, version: string, actor: Actor, reason?: string): Promise<{ version: ModelVersionState; event: AppendResult }> {
    return retireModel(this.#s, model, version, actor, reason);
  }

  /** See {@link commitChangePlan}. */
  commitChangePlan(plan: unknown, actor: Actor): Promise<{ plan: ChangePlan; hash: string; event: AppendResult }> {
    return commitChangePlan(this.#s, plan, actor);
  }

  /** See {@link showChangePlan}. */
  showChangePlan(planId: string): Promise<{ state: ChangePlanState; plan: ChangePlan | undefined; documentOk: boolean }> {
    return showChangePlan(this.#s, planId);
  }

  /** See {@link listChangePlans}. */
  listChangePlans(model?: string): Promise<ChangePlanState[]> {
    return listChangePlans(this.#s, model);
  }

  /** See {@link listModels}. */
  listModels(): Promise<ModelLineView[]> {
    return listModels(this.#s);
  }

  /** See {@link showModel}. */
  showModel(model: string, version?: string): Promise<ModelLineView | (ModelVersionView & { readonly inferences: readonly number[] })> {
    return showModel(this.#s, model, version);
  }

  // issue 14: federated learning rounds (federated.ts)

  /** See {@link registerSite}. */
  registerFlSite(input: unknown, actor: Actor): Promise<{ site: FlSite; event: AppendResult }> {
    return registerSite(this.#s, input, actor);
  }

  /** See {@link retireSite}. */
  retireFlSite(site: string, actor: Actor): Promise<{ site: FlSite; event: AppendResult }> {
    return retireSite(this.#s, site, actor);
  }

  /** See {@link listSites}. */
  listFlSites(): Promise<FlSite[]> {
    return listSites(this.#s);
  }

  /** See {@link recordRound}. */
  recordFlRound(input: unknown, actor: Actor): Promise<FlRoundResult> {
    return recordRound(this.#s, input, actor);
  }

  /** See {@link listRounds}. */
  listFlRounds(line: string): Promise<FlLine> {
    return listRounds(this.#s, line);
  }

  /** See {@link listLines}. */
  listFlLines(): Promise<FlLineSummary[]> {
    return listLines(this.#s);
  }

  /** See {@link releaseStatistics} (issue 15). */
  releaseStatistics(input: DpReleaseInput, actor: Actor): Promise<DpReleaseResult> {
    return releaseStatistics(this.#s, input, actor);
  }

  /** See {@link listReleases} (issue 15). */
  listReleases(filter?: DpReleaseFilter): Promise<{ releases: DpRelease[]; budget?: DpBudgetStatus }> {
    return listReleases(this.#s, filter);
  }

  /** See {@link erase}. */
  erase(kind: 'subject' | 'uri' | 'external_ref' | 'document', value: string, actor: Actor): Promise<ErasureResult> {
    return erase(this.#s, kind, value, actor);
  }
}
