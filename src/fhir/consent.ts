// TEMPORARY STUB (consent-wiring): replaced by the consent-engine branch's module. Do not merge.
import type { ConsentPolicy, Provision } from '../core/consent/policy.js';
import { ValidationError } from '../core/errors.js';
import { detectFhirVersion, validateFhirResource, type FhirVersion } from './validate.js';

export interface CompiledFhirConsent {
  fhirVersion: FhirVersion;
  resourceId?: string;
  identifier?: string;
  patient: string;
  status: string;
  revokes: boolean;
  period: { start?: string; end?: string };
  provision: Provision;
}

export function importFhirConsent(bytes: Uint8Array, opts: { fhirVersion?: FhirVersion } = {}): CompiledFhirConsent {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    throw new ValidationError('VALIDATION_FAILED', 'FHIR_INVALID stub: not JSON');
  }
  const version = opts.fhirVersion ?? detectFhirVersion(r);
  validateFhirResource(r, version);
  const p = r['provision'] as { type?: string; purpose?: { code: string }[] } | undefined;
  if (!p?.type) throw new ValidationError('VALIDATION_FAILED', 'CONSENT_UNENFORCEABLE stub: no root type');
  const ids = r['identifier'] as { system?: string; value?: string }[] | undefined;
  const status = String(r['status']);
  return {
    fhirVersion: version,
    ...(typeof r['id'] === 'string' ? { resourceId: r['id'] } : {}),
    ...(ids?.[0]?.value ? { identifier: `${ids[0].system ?? ''}|${ids[0].value}` } : {}),
    patient: (r['patient'] as { reference: string }).reference,
    status,
    revokes: ['inactive', 'rejected', 'entered-in-error'].includes(status),
    period: {},
    provision: { type: p.type === 'deny' ? 'deny' : 'permit', ...(p.purpose ? { purposes: p.purpose.map((c) => c.code) } : {}) },
  };
}

export function policyToFhirConsent(policy: ConsentPolicy, opts: { patientReference?: string } = {}): Record<string, unknown> {
  return { resourceType: 'Consent', id: policy.policyId, status: policy.revoked ? 'inactive' : 'active', ...(opts.patientReference ? { patient: { reference: opts.patientReference } } : {}) };
}
