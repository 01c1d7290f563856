// TEMPORARY STUB (consent-wiring): replaced by the consent-engine branch's module. Do not merge.
import { ValidationError } from '../core/errors.js';

export type FhirVersion = 'R4' | 'R5';

export function validateFhirResource(resource: unknown, _version: FhirVersion): void {
  if (resource === null || typeof resource !== 'object' || (resource as { resourceType?: unknown }).resourceType !== 'Consent') {
    throw new ValidationError('VALIDATION_FAILED', 'FHIR_INVALID stub: not a Consent');
  }
}

export function detectFhirVersion(resource: unknown): FhirVersion {
  return (resource as { decision?: unknown }).decision !== undefined ? 'R5' : 'R4';
}
