/**
 * The request schemas of the service layer, defined once: the service parses every input with them,
 * and the HTTP routes validate bodies and publish OpenAPI from the same definitions.
 * @module
 */
import * as v from 'valibot';
import { ARTIFACT, EXPLANATION, MAX_EXPLANATIONS, OUTPUT_ARTIFACT } from '../core/manifest.js';
import { POLICY_ID } from '../core/consent/policy.js';
import { CONSENT_REQUEST, NO_ROLE_CODINGS } from '../core/consent/request.js';
import { CODE, ID, OPAQUE_ID, SHA256_HEX, TIME, WELL_FORMED, parseWith } from '../core/schema/parse.js';
import { ATTESTATION_METHODS, LOWER_ID_RE } from '../core/events.js';
import { REVIEW_OUTCOMES } from '../core/vocabulary.js';
import { CHANGE_CONTROL } from '../core/models.js';
import { DP_MECHANISMS } from '../core/dp/accountant.js';
import { DP_QUERY } from '../core/dp/query.js';

/**
 * The dataset types of a training run: `identified` (subject-linked: trained under the consent
 * of every subject, for a training purpose), or `deidentified` / `synthetic` (with an attestation
 * of how the data was made non-identifying).
 */
export const TRAINING_DATASET_TYPES = ['identified', 'deidentified', 'synthetic'] as const;

/** At most this many policies (subjects) decide one training run; their decisions are on the log. */
export const MAX_TRAINING_COHORT = 200;

/**
 * issue 14: at most this many subjects in one training cohort (`cohort`). Their decisions are not
 * listed on the log (the cohort's root, size and exclusion counts are), so a cohort may be larger
 * than {@link MAX_TRAINING_COHORT}; over HTTP the body limit also applies.
 */
export const MAX_COHORT_SUBJECTS = 10_000;
/** issue 14: one subject of a training cohort: its pseudonymous id and the consent policy it is trained under. */
export const COHORT_MEMBER = v.object({ subject: OPAQUE_ID, policyId: POLICY_ID });
/** issue 14: a training cohort: each subject once. */
export const COHORT = v.pipe(
  v.array(COHORT_MEMBER),
  v.minLength(1, 'a cohort names at least one subject'),
  v.maxLength(MAX_COHORT_SUBJECTS, `a cohort names at most ${MAX_COHORT_SUBJECTS} subjects`),
  v.check((c) => new Set(c.map((m) => m.subject)).size === c.length, 'a subject is named twice in the cohort'),
);

/** Who acts: an identifier and a role code (the server fills it from the credential). */
export const ACTOR = v.object({ id: ID, role: CODE });
/** What an erasure names. */
export const ERASE_KIND = v.picklist(['subject', 'uri', 'external_ref', 'document'], 'expected subject, uri, external_ref or document');
/**
 * The attributes of a consent request beyond purpose and role (issue 12: the actor reference, the
 * action, the class, code and security labels of the data, the data's time): optional on every
 * decision (check, access, inference), so that one request model decides them all.
 */
export const REQUEST_ATTRIBUTES = (() => {
  const { purpose: _purpose, role: _role, ...entries } = CONSENT_REQUEST.entries;
  void _purpose;
  void _role;
  return entries;
})();
/**
 * Body of a data access ({@link Governance.recordDataAccess}). `justification` (a code of the
 * break-glass vocabulary) with a break-glass purpose asks to override a consent denial.
 */
export const ACCESS = v.object({ actor: ACTOR, purpose: CODE, policyId: POLICY_ID, artifact: ARTIFACT, ...REQUEST_ATTRIBUTES, justification: v.optional(CODE) });
/** Body of an inference ({@link Governance.recordInference}). */
export const INFERENCE = v.object({
  actor: ACTOR,
  purpose: CODE,
  policyId: POLICY_ID,
  input: ARTIFACT,
  outputs: v.pipe(v.array(OUTPUT_ARTIFACT), v.minLength(1), v.maxLength(64)),
  pipeline: v.unknown(),
  model: v.unknown(),
  ...REQUEST_ATTRIBUTES,
  /**
   * issue 14: explanation artifacts (method, parameters, the output explained, URI, digest). Stored
   * off-ledger in the explanations document; the log gets each method, output and digest.
   */
  explanations: v.optional(v.pipe(v.array(EXPLANATION), v.maxLength(MAX_EXPLANATIONS))),
});
/** Body of a training run ({@link Governance.recordTraining}). */
export const TRAINING = v.pipe(
  v.object({
    actor: ACTOR,
    purpose: CODE,
    dataset: v.object({ ...ARTIFACT.entries, type: v.picklist(TRAINING_DATASET_TYPES, 'dataset type must be identified, deidentified or synthetic') }),
    /** identified data: the policy of every subject in the training set (all must permit). */
    policyIds: v.optional(v.pipe(v.array(POLICY_ID), v.minLength(1), v.maxLength(MAX_TRAINING_COHORT))),
    /** issue 14: identified data: the cohort, each subject with its policy (those without consent are left out and counted). */
    cohort: v.optional(COHORT),
    /** deidentified or synthetic data: who attests it, how, and optionally the attestation document's digest. */
    attestation: v.optional(v.object({ method: v.picklist(ATTESTATION_METHODS, `method must be one of ${ATTESTATION_METHODS.join(', ')}`), document: v.optional(SHA256_HEX) })),
    manifest: v.unknown(),
    modelBefore: v.unknown(),
    modelAfter: v.unknown(),
    computeBackend: v.pipe(v.string(), v.regex(LOWER_ID_RE, 'expected a compute backend identifier such as gpu-cluster-1 (lowercase letters, digits, . _ -)')),
    /** Refused: the codings a role is known by come from the deployment's role table. */
    roleCodings: NO_ROLE_CODINGS,
    /** issue 14: the change control plan a new version of a registered model is trained under, the modification and the evaluation metrics. */
    changeControl: v.optional(CHANGE_CONTROL),
  }),
  v.forward(
    v.check(
      (t) => (t.dataset.type === 'identified') === (t.policyIds !== undefined || t.cohort !== undefined),
      'identified data needs policyIds or a cohort (the consent of every subject); deidentified or synthetic data takes neither',
    ),
    ['policyIds'],
  ),
  v.forward(
    v.check((t) => t.policyIds === undefined || t.cohort === undefined, 'give policyIds or a cohort, not both'),
    ['cohort'],
  ),
  v.forward(
    v.check((t) => (t.dataset.type === 'identified') === (t.attestation === undefined), 'deidentified or synthetic data needs an attestation; identified data takes none'),
    ['attestation'],
  ),
);

/** Body of a break-glass review ({@link Governance.closeReview}): the outcome and a reason code. */
export const REVIEW = v.object({
  outcome: v.picklist(REVIEW_OUTCOMES, `outcome must be ${REVIEW_OUTCOMES.join(' or ')}`),
  reason: CODE,
});
/** Input of {@link Governance.closeReview}. */
export type ReviewInput = v.InferInput<typeof REVIEW>;

// ---- issue 15: differential privacy ------------------------------------------------------------

const DP_NUMBER = v.union([v.number(), v.pipe(v.string(), v.maxLength(40))], 'expected a number');
/**
 * Body of a release of statistics with differential privacy ({@link Governance.releaseStatistics}):
 * the query (its JSON form, or the compact text form of `custos stats --dp --query`), ε, δ
 * (default 0), the mechanism (default: discrete_laplace when δ = 0, else discrete_gaussian) and
 * the consumer it is released to (default `public`; it must be declared in dp.json, matched
 * case-insensitively: docs/privacy.md).
 */
export const DP_RELEASE_REQUEST = v.object({
  query: v.union([DP_QUERY, v.pipe(v.string(), v.maxLength(4096))], 'query: a query object or its text form'),
  epsilon: DP_NUMBER,
  delta: v.optional(DP_NUMBER),
  mechanism: v.optional(v.picklist(DP_MECHANISMS, `mechanism must be one of ${DP_MECHANISMS.join(', ')}`)),
  consumer: v.optional(ID),
});
/** Input of {@link Governance.releaseStatistics}. */
export type DpReleaseInput = v.InferInput<typeof DP_RELEASE_REQUEST>;

/** Input of {@link Governance.recordDataAccess}. */
export type DataAccessInput = v.InferInput<typeof ACCESS>;
/** Input of {@link Governance.recordInference}. */
export type InferenceInput = v.InferInput<typeof INFERENCE>;
/** Input of {@link Governance.recordTraining}. */
export type TrainingInput = v.InferInput<typeof TRAINING>;

/**
 * A consent check: the request model of every decision (core/consent/request.ts): purpose and
 * role (CODE, or SYSTEM|CODE), and the optional attributes of {@link REQUEST_ATTRIBUTES}.
 */
export const CONSENT_CHECK = CONSENT_REQUEST;
/** The value an erasure names (a subject, URI or external reference). */
export const ERASE_VALUE = v.pipe(v.string('expected a string'), v.minLength(1, 'nothing to erase'), v.maxLength(2048), WELL_FORMED);
/** A document named by its hash (erasure of a provenance document). */
export const DOCUMENT_HASH = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a document hash: SHA-256, 64 lowercase hex'));

// ---- accounting of disclosures (issue 12) ------------------------------------------------------

/** The formats of an accounting of disclosures. */
export const DISCLOSURE_FORMATS = ['json', 'fhir', 'html'] as const;
/**
 * An accounting of disclosures ({@link buildDisclosureReport}): the pseudonymous subject id (as
 * the policies were created with it), and the period: entry times with `since <= time < until`.
 */
export const DISCLOSURES_QUERY_FIELDS = { subject: OPAQUE_ID, since: v.optional(TIME), until: v.optional(TIME) };
/** The period's bounds in order (checked after {@link TIME} normalized both to UTC). */
export function periodInOrder<T extends { since?: string | undefined; until?: string | undefined }>() {
  return v.forward<T, v.CheckIssue<T>, ['until']>(
    v.check((q: T) => q.since === undefined || q.until === undefined || q.since < q.until, 'until must be after since'),
    ['until'] as never,
  );
}
/** The query of an accounting of disclosures. */
export const DISCLOSURES_QUERY = v.pipe(v.object(DISCLOSURES_QUERY_FIELDS), periodInOrder());
/** A parsed {@link DISCLOSURES_QUERY}. */
export type DisclosuresQuery = v.InferOutput<typeof DISCLOSURES_QUERY>;

// ---- requests checked once (issue 13) ----------------------------------------------------------

// Only this module constructs a CheckedRequest (the class is not exported; its constructor, even
// reached through an instance, refuses a call without this key).
const KEY = Symbol('checked request');

/**
 * A request parsed with a service schema, held in private fields: nobody outside this module can
 * read or change the value, or make one that was not parsed. No freeze, no lookup table: one
 * small object per request.
 */
class CheckedRequest<S extends v.GenericSchema> {
  readonly #schema: S;
  readonly #value: v.InferOutput<S>;
  constructor(key: symbol, schema: S, value: v.InferOutput<S>) {
    if (key !== KEY) throw new TypeError('a checked request is made by checkRequest only');
    this.#schema = schema;
    this.#value = value;
  }
  // The value of `input` if it is a CheckedRequest made for `schema` (a brand check on the private
  // field: an object merely inheriting this prototype has none).
  static valueOf<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> | undefined {
    if (typeof input !== 'object' || input === null || !(#schema in input)) return undefined;
    const c = input as CheckedRequest<v.GenericSchema>;
    return c.#schema === schema ? (c.#value as v.InferOutput<S>) : undefined;
  }
}

/**
 * A request the service parsed with `S` ({@link checkRequest}). The service takes it without
 * parsing it again; its value cannot be read or changed from outside the service.
 */
export type Checked<S extends v.GenericSchema> = CheckedRequest<S>;

/**
 * Parses `input` with one of this module's request schemas (as the service would) and returns it
 * checked: a door that validates anyway (the HTTP server) validates once, with the service's own
 * schema, and hands the result to the service.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function checkRequest<S extends v.GenericSchema>(schema: S, input: unknown, what: string): Checked<S> {
  return new CheckedRequest(KEY, schema, parseWith(schema, input, what));
}

/** The value of a request checked with `schema`, else `input` parsed with it now (the library path). */
export function checkedOrParse<S extends v.GenericSchema>(schema: S, input: unknown, what: string): v.InferOutput<S> {
  const checked = CheckedRequest.valueOf(schema, input);
  return checked !== undefined ? checked : parseWith(schema, input, what);
}
