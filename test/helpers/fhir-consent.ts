/**
 * FHIR Consent resources for tests, derived from the HL7 R4 example `consent-example-notOrg` (read
 * from ../shared/vectors, never copied): the patient, its display name, the identifier and the
 * provision replaced as a test needs. {@link HAVE_R4_VECTORS} tells whether the examples are there.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VECTORS } from './vectors.js';

export const R4_DIR = join(VECTORS, 'fhir-consent', 'r4');
export const NOT_ORG = join(R4_DIR, 'Consent-consent-example-notOrg.json');
export const HAVE_R4_VECTORS = existsSync(NOT_ORG);
/** The `skip` option of a suite that needs the examples. */
export const R4_SKIP: string | false = HAVE_R4_VECTORS ? false : `the R4 Consent examples are not at ${R4_DIR}`;

export const V3_ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
export const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';

/**
 * A root permit of treatment access, with one exception: data labelled PSY (psychiatry, v3 ActCode)
 * is denied (`provision.provision[0]`).
 */
export const PERMIT_TREAT_DENY_PSY = {
  type: 'permit',
  purpose: [{ system: V3_ACT_REASON, code: 'TREAT' }],
  provision: [{ type: 'deny', securityLabel: [{ system: V3_ACT_CODE, code: 'PSY' }] }],
};

/** What to change in the notOrg example. */
export interface R4ConsentVariant {
  /** The patient reference (default: the example's, Patient/f001). */
  readonly patient?: string;
  /** The patient's display name, which only the resource's bytes hold. */
  readonly display?: string;
  /** A business identifier (versions are made under it). */
  readonly identifier?: { readonly system: string; readonly value: string };
  readonly provision?: unknown;
  readonly dateTime?: string;
}

/** The notOrg example with `v` applied, as JSON text (2-space indents). */
export function r4Consent(v: R4ConsentVariant = {}): Buffer {
  const r = JSON.parse(readFileSync(NOT_ORG, 'utf8')) as Record<string, unknown>;
  const patient = r['patient'] as { reference: string; display?: string };
  if (v.patient !== undefined) patient.reference = v.patient;
  if (v.display !== undefined) patient.display = v.display;
  if (v.identifier !== undefined) r['identifier'] = [v.identifier];
  if (v.provision !== undefined) r['provision'] = v.provision;
  if (v.dateTime !== undefined) r['dateTime'] = v.dateTime;
  return Buffer.from(JSON.stringify(r, null, 2), 'utf8');
}
