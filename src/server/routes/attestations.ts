/**
 * issue 15: attestations (docs/attestations.md). Issuing one hands out facts of a patient-linked
 * entry, so it needs the permission that reads receipts (`receipts`); a consent attestation hands out
 * a policy's purposes and roles, so it needs `consent:read` as well (as GET /api/v1/consents/:id); it is logged
 * (ATTESTATION_ISSUED) before the credential is returned; the issuer key is public to any
 * authenticated caller.
 * @module
 */
import * as v from 'valibot';
import { ATTESTATION_KINDS } from '../../core/attestation.js';
import { POLICY_ID } from '../../core/consent/policy.js';
import { NotFoundError } from '../../core/errors.js';
import { ATTESTATION_PERMISSION, CONSENT_ATTESTATION_PERMISSION, type Attestations } from '../../service/attestations.js';
import { requirePermission } from '../auth.js';
import { routeOf, type ServerContext } from '../context.js';
import { route } from '../route.js';

const ENTRY_INDEX = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));

/** The body of POST /api/v1/attestations: a receipt by its entry index, or a consent policy (at an entry). */
export const ATTESTATION_REQUEST = v.pipe(
  v.strictObject({
    kind: v.picklist(ATTESTATION_KINDS, 'kind must be receipt or consent'),
    /** receipt: the INFERENCE_EXECUTED entry. */
    index: v.optional(ENTRY_INDEX),
    /** consent: the policy. */
    policyId: v.optional(POLICY_ID),
    /** consent: the version in force at this entry (default: the latest). */
    at: v.optional(ENTRY_INDEX),
  }),
  v.check(
    (o) => (o.kind === 'receipt' ? o.index !== undefined && o.policyId === undefined && o.at === undefined : o.policyId !== undefined && o.index === undefined),
    'a receipt takes index; a consent takes policyId (and at)',
  ),
);

const ISSUER_JWK = v.object({ kty: v.literal('OKP'), crv: v.literal('Ed25519'), x: v.string(), kid: v.string(), alg: v.literal('EdDSA'), use: v.literal('sig') });

export const ATTESTATION_RESPONSE = v.object({
  kind: v.picklist(ATTESTATION_KINDS),
  /** The compact SD-JWT (every claim disclosed; `custos present` removes what the holder will not show). */
  credential: v.string(),
  eventIndex: v.number(),
  keyId: v.string(),
  keyEvent: v.number(),
  issuedEvent: v.number(),
  disclosable: v.array(v.string()),
});

export const ISSUER_KEY_RESPONSE = v.object({ jwk: ISSUER_JWK, keyId: v.string(), publishedAt: v.nullable(v.number()) });

function attestationsOf(ctx: ServerContext): Attestations {
  if (!ctx.attestations) throw new NotFoundError('ATTESTATION_KEY_NOT_FOUND', 'this server has no attestation issuer key');
  return ctx.attestations;
}

export const attestationRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/attestations',
    summary:
      'Issue an attestation (SD-JWT, every claim selectively disclosable) of an inference receipt {kind:"receipt", index} or of a consent policy version {kind:"consent", policyId, at?} (which needs consent:read as well, else 403 FORBIDDEN); logged: ATTESTATION_ISSUED (and ATTESTATION_KEY_PUBLISHED before the key is first used)',
    permission: ATTESTATION_PERMISSION,
    status: 201,
    body: ATTESTATION_REQUEST,
    response: ATTESTATION_RESPONSE,
    handler: async ({ body, principal: p, req }, ctx) => {
      // A consent attestation carries the policy's purposes and roles: it needs what reading the
      // policy needs (checked before anything is read or written).
      if (body.kind === 'consent') requirePermission(p, CONSENT_ATTESTATION_PERMISSION);
      const a = attestationsOf(ctx);
      const who = { actor: p.actor, role: p.role, route: routeOf(req) };
      const r = body.kind === 'receipt' ? await a.receipt(body.index!, who) : await a.consent(body.policyId!, body.at, who);
      return { ...r, disclosable: [...r.disclosable] };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/attestations/issuer-key',
    summary: 'The attestation issuer public key (JWK; keyId: its RFC 7638 thumbprint in hex) and the ATTESTATION_KEY_PUBLISHED entry that committed it (null before its first use)',
    permission: null,
    response: ISSUER_KEY_RESPONSE,
    handler: async (_call, ctx) => {
      const k = await attestationsOf(ctx).issuerKey();
      return { jwk: { ...k.jwk }, keyId: k.keyId, publishedAt: k.publishedAt ?? null };
    },
  }),
];
