/**
 * The vocabularies every code on the log is drawn from, and the formats of the identifiers Custos
 * generates. Nothing a caller writes reaches the log as free text: a field is a code from one of
 * these vocabularies, an identifier with a strict pattern, a hash, or a salted commitment
 * (docs/log-format.md lists each field of each event type).
 * @module
 */

/**
 * HL7 v3 PurposeOfUse (http://terminology.hl7.org/ValueSet/v3-PurposeOfUse, the codes of
 * CodeSystem v3-ActReason under the abstract `PurposeOfUse`): the default purposes of use, as
 * bound by FHIR to `Consent.provision.purpose` and `AuditEvent.purposeOfEvent`.
 */
export const HL7_PURPOSES_OF_USE: readonly string[] = Object.freeze([
  'HMARKT',
  'HOPERAT',
  'CAREMGT',
  'DONAT',
  'FRAUD',
  'GOV',
  'HACCRED',
  'HCOMPL',
  'HDECD',
  'HDIRECT',
  'HDM',
  'HLEGAL',
  'HOUTCOMS',
  'HPRGRP',
  'HQUALIMP',
  'HSYSADMIN',
  'LABELING',
  'METAMGT',
  'MEMADMIN',
  'MILCDM',
  'PATADMIN',
  'PATSFTY',
  'PERFMSR',
  'RECORDMGT',
  'SYSDEV',
  'HTEST',
  'TRAIN',
  'HPAYMT',
  'CLMATTCH',
  'COVAUTH',
  'COVERAGE',
  'ELIGDTRM',
  'ELIGVER',
  'ENROLLM',
  'MILDCRG',
  'REMITADV',
  'HRESCH',
  'BIORCH',
  'CLINTRCH',
  'CLINTRCHNPC',
  'CLINTRCHPC',
  'PRECLINTRCH',
  'DSRCH',
  'POARCH',
  'TRANSRCH',
  'PATRQT',
  'FAMRQT',
  'PWATRNY',
  'SUPNWK',
  'PUBHLTH',
  'DISASTER',
  'THREAT',
  'TREAT',
  'CLINTRL',
  'COC',
  'ETREAT',
  'BTG',
  'ERTREAT',
  'POPHLTH',
]);

/**
 * Purposes under which subject-linked data may be used to train a model, by default: healthcare
 * research (HRESCH) and its specializations. Configurable (`trainingPurposes`).
 */
export const DEFAULT_TRAINING_PURPOSES: readonly string[] = Object.freeze(['HRESCH', 'BIORCH', 'CLINTRCH', 'CLINTRCHNPC', 'CLINTRCHPC', 'PRECLINTRCH', 'DSRCH', 'POARCH', 'TRANSRCH']);

/** Every permission a role may grant. */
export const PERMISSIONS = [
  'access',
  'inference',
  'training',
  'consent:write',
  'consent:read',
  'consent:check',
  'receipts',
  'commitments:open',
  'read',
  'verify',
  'export',
  'erase',
  'tokens',
  // A patient's accounting of disclosures (issue 12).
  'disclosures',
  // issue 12: break-glass (ask for an access consent denies; review the queue of such accesses)
  'break-glass',
  'break-glass:review',
  // issue 14: model registry and change control (register a version or a plan; approve, retire,
  // commit a change control plan; read the registry)
  'model:register',
  'model:approve',
  'models:read',
  // issue 14: federated learning (register and retire sites; record rounds; read sites and rounds)
  'fl:sites',
  'fl:coordinate',
  'fl:read',
  // issue 15: differential privacy (release statistics with noise, against a privacy budget)
  'dp:release',
  // issue 14: training cohorts (a subject's proof of inclusion in, or absence from, a training run)
  'training:proof',
  // issue 14: import of the reference's ledgers over HTTP (POST /api/v1/imports/reference-ledger)
  'legacy:import',
] as const;

/** What a credential may do. */
export type Permission = (typeof PERMISSIONS)[number];

/** A role table: role code → permissions. Roles on events and in policies must be keys of it. */
export type RoleTable = Readonly<Record<string, readonly Permission[]>>;

/**
 * The default role table. Clinical roles used in consent policies act as clinicians.
 * `commitments:open` (opening a receipt's URI commitments to the URIs, logged as
 * PATIENT_DATA_OPENED) is held by the roles that may see patient identifiers: the treating
 * clinical roles, and the privacy officer (subject requests, erasure, investigations). Not by
 * ml_engineer, auditor or admin: they see commitments only (minimum necessary).
 * `break-glass` (an access that consent denies, executed and flagged for review) is held by the
 * clinical roles that treat (clinician, dermatologist, radiologist, physician), not by nurse: a
 * deployment that wants it adds it in its role table. `break-glass:review` (closing a break-glass
 * review) is held by the privacy officer only. `model:approve` (approve or retire a model version,
 * commit a change control plan) is held by the clinical safety officer only (issue 14).
 * review) is held by the privacy officer only. issue 15: `dp:release` (publishing statistics with
 * differential privacy, which spends a privacy budget) is held by the privacy officer only: deciding
 * what may be published about patients is that role's job; anyone authenticated may read what was released.
 */
export const DEFAULT_ROLES: RoleTable = Object.freeze({
  clinician: ['access', 'inference', 'consent:check', 'receipts', 'commitments:open', 'break-glass'],
  dermatologist: ['access', 'inference', 'consent:check', 'receipts', 'commitments:open', 'break-glass'],
  radiologist: ['access', 'inference', 'consent:check', 'receipts', 'commitments:open', 'break-glass'],
  physician: ['access', 'inference', 'consent:check', 'receipts', 'commitments:open', 'break-glass'],
  nurse: ['access', 'consent:check'],
  ml_engineer: ['training', 'inference', 'consent:check', 'receipts', 'fl:read', 'model:register', 'models:read'],
  privacy_officer: ['consent:write', 'consent:read', 'consent:check', 'erase', 'read', 'receipts', 'commitments:open', 'disclosures', 'break-glass:review', 'dp:release', 'training:proof'],
  auditor: ['read', 'verify', 'export', 'consent:read', 'receipts', 'fl:read', 'models:read'],
  // issue 14: legacy:import (the reference's ledgers over HTTP) is the admin's only, an operator action as on the CLI.
  admin: ['tokens', 'read', 'verify', 'export', 'consent:read', 'receipts', 'legacy:import'],
  // issue 14: federated learning. The coordinator registers sites and records rounds; the ML
  // engineer and the auditor read them.
  fl_coordinator: ['fl:sites', 'fl:coordinate', 'fl:read'],
  // issue 14: model registry. The clinical safety officer approves and retires model versions and
  // commits change control plans (`model:approve`); ml_engineer registers versions, auditor reads.
  clinical_safety_officer: ['model:register', 'model:approve', 'models:read', 'receipts'],
});

/** The role of the local operator on events the CLI writes (token management): always a role. */
export const OPERATOR_ROLE = 'operator';

/** The pattern of a code a deployment adds to a vocabulary (purposes, roles). */
export const VOCABULARY_CODE_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * Purposes under which a break-glass access may be asked for: HL7 v3 PurposeOfUse BTG ("break the
 * glass") and ETREAT (emergency treatment). Configurable (`breakGlass.purposes`).
 */
export const DEFAULT_BREAK_GLASS_PURPOSES: readonly string[] = Object.freeze(['BTG', 'ETREAT']);

/**
 * Why a clinician breaks the glass: the default justification codes (configurable,
 * `breakGlass.justifications`). Codes, never free text: the story behind one belongs in the
 * clinical record, where it can be corrected and erased; the log holds only the claim.
 * - `LIFE_THREATENING_EMERGENCY`: an immediate threat to life, limb or organ.
 * - `PATIENT_INCAPACITATED`: the patient cannot give or refuse consent now (unconscious, sedated,
 *   lacking capacity) and no representative can be reached in time.
 * - `URGENT_TREATMENT`: treatment that cannot wait needs this data (allergies, medication,
 *   prior results), and it is available no other way.
 * - `PATIENT_VERBAL_AUTHORIZATION`: the patient, present, authorizes the access, and the recorded
 *   consent has not been updated yet.
 */
export const DEFAULT_BREAK_GLASS_JUSTIFICATIONS: readonly string[] = Object.freeze(['LIFE_THREATENING_EMERGENCY', 'PATIENT_INCAPACITATED', 'URGENT_TREATMENT', 'PATIENT_VERBAL_AUTHORIZATION']);

/** The outcomes of a break-glass review. */
export const REVIEW_OUTCOMES = ['justified', 'not_justified'] as const;
/** A break-glass review's outcome. */
export type ReviewOutcome = (typeof REVIEW_OUTCOMES)[number];

/**
 * The reason codes a reviewer gives, per outcome (configurable, `breakGlass.reviewReasons`).
 * - justified: `EMERGENCY_CONFIRMED` (the record shows the emergency), `PATIENT_AUTHORIZATION_CONFIRMED`
 *   (the patient confirms), `TREATING_RELATIONSHIP_CONFIRMED` (the actor was treating the patient
 *   and the access was needed for it).
 * - not_justified: `NO_EMERGENCY`, `NO_TREATING_RELATIONSHIP`, `EXCESSIVE_ACCESS` (more than the
 *   emergency needed), `JUSTIFICATION_UNSUPPORTED` (the record does not support the code given).
 */
export const DEFAULT_REVIEW_REASONS: Readonly<Record<ReviewOutcome, readonly string[]>> = Object.freeze({
  justified: Object.freeze(['EMERGENCY_CONFIRMED', 'PATIENT_AUTHORIZATION_CONFIRMED', 'TREATING_RELATIONSHIP_CONFIRMED']),
  not_justified: Object.freeze(['NO_EMERGENCY', 'NO_TREATING_RELATIONSHIP', 'EXCESSIVE_ACCESS', 'JUSTIFICATION_UNSUPPORTED']),
});

// ---- issue 14: explanations in receipts --------------------------------------------------------

/** The form of an explanation method code: lowercase letters, digits and `_`, starting with a letter. */
export const EXPLANATION_METHOD_RE = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The explanation methods an inference's explanation artifacts may name, by default (a deployment
 * adds its own with `explanationMethods`). Codes, never free text; docs/governance.md describes each.
 */
export const EXPLANATION_METHODS: readonly string[] = Object.freeze([
  'shap',
  'kernel_shap',
  'tree_shap',
  'deep_shap',
  'lime',
  'integrated_gradients',
  'saliency',
  'smoothgrad',
  'grad_cam',
  'grad_cam_pp',
  'occlusion',
  'attention',
  'counterfactual',
  'anchors',
  'permutation_importance',
  'partial_dependence',
]);

/** The vocabularies one deployment uses. */
export interface Vocabulary {
  readonly purposes: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
  readonly trainingPurposes: ReadonlySet<string>;
  /** Purposes a break-glass access may be asked for under (default BTG, ETREAT). */
  readonly breakGlassPurposes: ReadonlySet<string>;
  /** Break-glass justification codes. */
  readonly justifications: ReadonlySet<string>;
  /** Review reason codes, per outcome. */
  readonly reviewReasons: Readonly<Record<ReviewOutcome, ReadonlySet<string>>>;
  // issue 14 (explanations in receipts)
  /** Methods an inference's explanation artifacts may name ({@link EXPLANATION_METHODS} + configured). */
  readonly explanationMethods: ReadonlySet<string>;
}

/** Options of {@link createVocabulary}. */
export interface VocabularyOptions {
  /** Purposes added to the HL7 v3 PurposeOfUse codes. */
  readonly purposes?: readonly string[];
  /** The role table (default {@link DEFAULT_ROLES}); only its keys matter here. */
  readonly roles?: RoleTable | readonly string[];
  /** Purposes that allow training on subject-linked data (default {@link DEFAULT_TRAINING_PURPOSES}). */
  readonly trainingPurposes?: readonly string[];
  /** Purposes of a break-glass access (default {@link DEFAULT_BREAK_GLASS_PURPOSES}); each must be a purpose. */
  readonly breakGlassPurposes?: readonly string[];
  /** Break-glass justification codes (default {@link DEFAULT_BREAK_GLASS_JUSTIFICATIONS}). */
  readonly justifications?: readonly string[];
  /** Review reason codes per outcome (default {@link DEFAULT_REVIEW_REASONS}). */
  readonly reviewReasons?: Partial<Readonly<Record<ReviewOutcome, readonly string[]>>>;
  // issue 14 (explanations in receipts)
  /** Explanation methods added to {@link EXPLANATION_METHODS} (lowercase codes, {@link EXPLANATION_METHOD_RE}). */
  readonly explanationMethods?: readonly string[];
}

/**
 * Builds a deployment's vocabulary. Pure; a bad code is a programming or configuration error.
 * @throws {TypeError} for a code that does not match {@link VOCABULARY_CODE_RE}, or a training
 *   purpose that is not a purpose
 */
export function createVocabulary(o: VocabularyOptions = {}): Vocabulary {
  const check = (what: string, codes: readonly string[]): readonly string[] => {
    for (const c of codes) if (typeof c !== 'string' || !VOCABULARY_CODE_RE.test(c)) throw new TypeError(`invalid ${what} code ${JSON.stringify(c)}`);
    return codes;
  };
  const purposes = new Set([...HL7_PURPOSES_OF_USE, ...check('purpose', o.purposes ?? [])]);
  const roleList = Array.isArray(o.roles) ? (o.roles as readonly string[]) : Object.keys((o.roles as RoleTable | undefined) ?? DEFAULT_ROLES);
  const roles = new Set([...check('role', roleList), OPERATOR_ROLE]);
  const trainingPurposes = new Set(check('training purpose', o.trainingPurposes ?? DEFAULT_TRAINING_PURPOSES));
  for (const t of trainingPurposes) if (!purposes.has(t)) throw new TypeError(`training purpose ${t} is not a purpose`);
  const breakGlassPurposes = new Set(check('break-glass purpose', o.breakGlassPurposes ?? DEFAULT_BREAK_GLASS_PURPOSES));
  for (const t of breakGlassPurposes) if (!purposes.has(t)) throw new TypeError(`break-glass purpose ${t} is not a purpose`);
  const justifications = new Set(check('justification', o.justifications ?? DEFAULT_BREAK_GLASS_JUSTIFICATIONS));
  const reviewReasons = Object.freeze({
    justified: new Set(check('review reason', o.reviewReasons?.justified ?? DEFAULT_REVIEW_REASONS.justified)),
    not_justified: new Set(check('review reason', o.reviewReasons?.not_justified ?? DEFAULT_REVIEW_REASONS.not_justified)),
  });
  const explanationMethods = new Set([...EXPLANATION_METHODS, ...check('explanation method', o.explanationMethods ?? [])]);
  for (const m of explanationMethods) if (!EXPLANATION_METHOD_RE.test(m)) throw new TypeError(`invalid explanation method code ${JSON.stringify(m)} (lowercase letters, digits, _)`);
  return Object.freeze({ purposes, roles, trainingPurposes, breakGlassPurposes, justifications, reviewReasons, explanationMethods });
}

/** The default vocabulary: HL7 v3 PurposeOfUse and the default role table. */
export const DEFAULT_VOCABULARY: Vocabulary = createVocabulary();

/**
 * Policy ids are opaque: `pol_` then 26 characters of lowercase RFC 4648 base32 of 128 random
 * bits (the last character carries 3 bits, so it is one of a e i m q u y 4). Custos generates
 * them; a caller may only supply one of exactly this form, so a policy id never carries a name.
 */
export const POLICY_ID_RE = /^pol_[a-z2-7]{25}[aeimquy4]$/;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Lowercase RFC 4648 base32 without padding. */
export function toBase32(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

/** The policy id made from 16 random bytes (the caller supplies the randomness). */
export function policyIdFromBytes(random16: Uint8Array): string {
  if (random16.length !== 16) throw new TypeError('a policy id needs 16 random bytes');
  return `pol_${toBase32(random16)}`;
}
