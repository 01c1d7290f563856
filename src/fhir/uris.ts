/**
 * The URIs of the FHIR resources Custos emits: the standard code systems it uses (HL7, DICOM, IHE
 * BALP) and the ones it mints under `https://custos.dev/fhir/`. Every minted URI is documented in
 * docs/fhir.md (a test keeps the two in step); none is resolvable yet, they are names.
 * @module
 */

/** Standard code systems (FHIR R4 terminology, DICOM, IHE BALP). */
export const STD = Object.freeze({
  auditEventType: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
  restfulInteraction: 'http://hl7.org/fhir/restful-interaction',
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
  balpAuthZ: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType',
  participationType: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
  extraSecurityRole: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type',
  securitySourceType: 'http://terminology.hl7.org/CodeSystem/security-source-type',
  auditEntityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  resourceTypes: 'http://hl7.org/fhir/resource-types',
  actReason: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  dataOperation: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
  provenanceParticipant: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
  signatureType: 'urn:iso-astm:E1762-95:2013',
} as const);

const BASE = 'https://custos.dev/fhir';

/** Identifier systems Custos mints (`Identifier.system`). */
export const SID = Object.freeze({
  /** A log entry by its index (value: the decimal index); the log is named by the source. */
  logEntry: `${BASE}/sid/log-entry`,
  /** The log itself (value: its checkpoint origin line). */
  log: `${BASE}/sid/log`,
  /** An actor: a token name or a JWT subject (value: the actor id on the log). */
  actor: `${BASE}/sid/actor`,
  /** A SHA-256 digest (value: 64 lowercase hex) of data, an artifact or an off-ledger document. */
  sha256: `${BASE}/sid/sha-256`,
  /** A salted commitment to a subject (patient) id (value: 64 hex); never the id. */
  subjectCommitment: `${BASE}/sid/subject-commitment`,
  /** A salted commitment to a URI or an external reference (value: 64 hex). */
  commitment: `${BASE}/sid/commitment`,
  /** A consent policy (value: the opaque policy id, `pol_...`). */
  policy: `${BASE}/sid/policy`,
  /** An API token (value: its 16-hex id). */
  token: `${BASE}/sid/token`,
  /** A witness (value: its key name). */
  witness: `${BASE}/sid/witness`,
  /** An HTTP route of the audited request (value: `METHOD /route/template`). */
  route: `${BASE}/sid/route`,
  /** An unauthenticated caller (value: a keyed, truncated HMAC of its address). */
  client: `${BASE}/sid/client`,
  /** A checkpoint of the log (value: its tree size). */
  checkpoint: `${BASE}/sid/checkpoint`,
  /** The `resource` of a generic AUDIT_EVENT (value: as appended). */
  resource: `${BASE}/sid/resource`,
  // issue 14: federated learning
  /** A federated learning site (value: its site id). */
  flSite: `${BASE}/sid/fl-site`,
  /** A federated learning model line (value: its name). */
  flLine: `${BASE}/sid/fl-line`,
} as const);

/** Code systems Custos mints. */
export const CS = Object.freeze({
  /** Custos event types (EVENT_TYPE, or an operator-defined type): an extra `AuditEvent.subtype`. */
  eventType: `${BASE}/CodeSystem/event-type`,
  /** Roles of the deployment's role table (`agent.role`). */
  role: `${BASE}/CodeSystem/role`,
  /** Purposes of use configured beside HL7 v3 PurposeOfUse. */
  purpose: `${BASE}/CodeSystem/purpose`,
  /** What an identifier names (input, output, artifact, model, ...): `Identifier.type`. */
  identifierType: `${BASE}/CodeSystem/identifier-type`,
  /** Stable error codes (docs/errors.md), in `OperationOutcome.issue.details`. */
  error: `${BASE}/CodeSystem/error`,
  /** Permissions (the role table's), in `OperationOutcome.issue.details` of a 403. */
  permission: `${BASE}/CodeSystem/permission`,
  /** What a patient's accounting of disclosures cannot show (docs/disclosures.md). */
  disclosureLimit: `${BASE}/CodeSystem/disclosure-limit`,
} as const);

/** Extensions Custos defines. */
export const EXT = Object.freeze({
  /**
   * The log entry and its RFC 9162 inclusion proof: `leafIndex` (unsignedInt), `leafHash` (string,
   * hex), `treeSize` (unsignedInt) and `hash` (string, hex, 0..*, the audit path in order).
   */
  inclusionProof: `${BASE}/StructureDefinition/inclusion-proof`,
} as const);

/** Every URI Custos mints (docs/fhir.md lists each). */
export const MINTED_URIS: readonly string[] = Object.freeze([...Object.values(SID), ...Object.values(CS), ...Object.values(EXT)]);
