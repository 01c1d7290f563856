/**
 * FHIR Consent (issue 12): `POST /fhir/Consent` imports a resource (its exact bytes are stored,
 * its policy version goes on the log), `GET /fhir/Consent/:policyId` gives it back byte for byte
 * (or the FHIR R4 form of a native policy). The FHIR id of an imported Consent is its policy id.
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../../core/errors.js';
import type { FhirVersion } from '../../fhir/validate.js';
import { routeOf } from '../context.js';
import { fhirConsentImportToJson } from '../../service/governance.js';
import { route } from '../route.js';
import { EVENT, eventJson } from './shared.js';

const POLICY_PARAMS = v.object({ policyId: v.string() });

/** The media type of FHIR JSON. */
export const FHIR_JSON = 'application/fhir+json';

/** The body of POST /fhir/Consent: a FHIR Consent resource (validated against the FHIR definitions by the import). */
export const FHIR_RESOURCE = v.looseObject({ resourceType: v.string() });

/** What an import answers. */
export const FHIR_CONSENT_IMPORTED = v.object({
  policyId: v.string(),
  version: v.number(),
  hash: v.string(),
  fhirHash: v.string(),
  fhirVersion: v.picklist(['R4', 'R5']),
  revoked: v.boolean(),
  unchanged: v.boolean(),
  type: v.nullable(v.string()),
  entry: v.number(),
  event: v.nullable(EVENT),
});

// `Content-Type: application/fhir+json; fhirVersion=4.0` (FHIR's media type parameter) names the version.
function fhirVersionOf(contentType: string | undefined): FhirVersion | undefined {
  const m = /;\s*fhirVersion\s*=\s*"?([0-9.]+)"?/i.exec(contentType ?? '');
  if (!m) return undefined;
  if (/^4\.0(\.\d+)?$/.test(m[1]!)) return 'R4';
  if (/^5\.0(\.\d+)?$/.test(m[1]!)) return 'R5';
  throw new ValidationError('VALIDATION_FAILED', 'fhirVersion must be 4.0 (R4) or 5.0 (R5)', { issues: [{ path: 'content-type', message: 'unsupported fhirVersion' }] });
}

export const fhirConsentRoutes = [
  route({
    method: 'POST',
    url: '/fhir/Consent',
    summary:
      'Import a FHIR Consent (R4 or R5 JSON; version detected, or fhirVersion=4.0|5.0 in the content type): its exact bytes off-ledger, its policy version on the log. A later resource with the same identifier makes a new version; status inactive, rejected or entered-in-error revokes. 201 with Location; 200 when the bytes are already the current version',
    permission: 'consent:write',
    status: 201,
    body: FHIR_RESOURCE,
    consumes: [FHIR_JSON, 'application/json'],
    rawBody: true,
    response: FHIR_CONSENT_IMPORTED,
    handler: async ({ rawBody, principal, req, reply }, { governance }) => {
      if (!rawBody) throw new ValidationError('VALIDATION_FAILED', 'send the FHIR Consent as application/fhir+json or application/json');
      const version = fhirVersionOf(req.headers['content-type']);
      const r = await governance.importFhirConsent(rawBody, { id: principal.actor, role: principal.role }, version ? { fhirVersion: version } : {});
      reply.header('location', `/fhir/Consent/${r.policy.policyId}`);
      if (r.unchanged) reply.status(200);
      return fhirConsentImportToJson(r, eventJson);
    },
  }),
  route({
    method: 'GET',
    url: '/fhir/Consent/:policyId',
    summary:
      "A policy's current version as FHIR: the exact bytes imported (checked against the policy document and the log; a mismatch is refused, POLICY_TAMPERED), or the R4 form of a native policy (logged: AUDIT_READ)",
    permission: 'consent:read',
    params: POLICY_PARAMS,
    produces: FHIR_JSON,
    handler: async ({ params, principal, req, reply }, { governance, audit }) => {
      const x = await governance.exportFhirConsent(params.policyId);
      // The resource names the patient: the read is on the log before any byte is sent.
      await audit.read({ id: principal.actor, role: principal.role }, { route: routeOf(req), permission: 'consent:read', policyId: x.policyId, ...(x.index >= 0 ? { eventIndex: x.index } : {}) });
      return reply.type(FHIR_JSON).header('etag', `W/"${x.version}"`).send(x.bytes);
    },
  }),
];
