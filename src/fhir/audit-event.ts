/**
 * Every log entry as a FHIR R4 AuditEvent, following the IHE Basic Audit Log Patterns (BALP):
 * RESTful create/update/delete/read/search for consent changes, tokens, erasures and the audit
 * trail's own reads; the BALP authorization pattern (`IHE.BasicAudit.AuthZconsent`: DICOM 110113
 * Security Alert, subtype AuthZ-Consent, action E, outcome success on permit and failure on deny,
 * the user as information recipient with the purpose of use, Custos as authorization server, the
 * consent as an entity) for consent decisions; DICOM 110113 for security alerts.
 *
 * Privacy: an AuditEvent carries exactly what the entry carries (codes, identifiers, hashes,
 * commitments, numbers, times); a subject is a commitment identifier, never a patient id. The
 * resources do not claim BALP profile conformance in `meta.profile`: they follow the patterns, and
 * are validated against the R4 base definitions (test/fhir-validation.test.ts).
 * @module
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, AuditEventEntityDetail, CodeableConcept, Coding, Extension, Identifier, Period } from '@medplum/fhirtypes';
import { EVENT_TYPE, isRecord, recordField, type EventType, type LoggedEvent } from '../core/events.js';
import { HL7_PURPOSES_OF_USE } from '../core/vocabulary.js';
import { CS, EXT, SID, STD } from './uris.js';

/** One log entry to map: its index, leaf hash (hex) and parsed event. */
export interface AuditSource {
  readonly index: number;
  readonly leafHash: string;
  readonly event: LoggedEvent;
}

/** Where the entry sits: the log's origin line, and optionally its inclusion proof (hex hashes). */
export interface AuditContext {
  readonly origin: string;
  readonly inclusion?: { readonly treeSize: number; readonly hashes: readonly string[] };
}

type Action = 'C' | 'R' | 'U' | 'D' | 'E';
type Outcome = '0' | '4' | '8' | '12';
type Payload = Readonly<Record<string, unknown>>;

/** The fixed part of one event type's AuditEvent (docs/fhir.md renders this table). */
export interface AuditEventKind {
  readonly type: Coding;
  /** BALP subtypes (the Custos event-type coding is always added after them). */
  readonly subtype: readonly Coding[];
  readonly action: Action;
  readonly outcome: Outcome;
  /** The agent type of the actor. */
  readonly actorType: Coding;
  /** Custos's own agent: authorization server (consent decisions) or application. */
  readonly custosType: Coding;
  /** The BALP pattern followed (for the docs). */
  readonly pattern: string;
}

const c = (system: string, code: string, display?: string): Coding => ({ system, code, ...(display ? { display } : {}) });
const REST = c(STD.auditEventType, 'rest', 'Restful Operation');
const SECURITY_ALERT = c(STD.dicom, '110113', 'Security Alert');
const APPLICATION_ACTIVITY = c(STD.dicom, '110100', 'Application Activity');
const AUTHZ_CONSENT = c(STD.balpAuthZ, 'AuthZ-Consent', 'Authorization Decision using Roles and Consent');
const interaction = (code: string) => c(STD.restfulInteraction, code);
const RECIPIENT = c(STD.participationType, 'IRCP', 'information recipient');
const AUTHOR = c(STD.participationType, 'AUT', 'author (originator)');
const APPLICATION = c(STD.dicom, '110150', 'Application');
const AUTH_SERVER = c(STD.extraSecurityRole, 'authserver', 'authorization server');
const DESTINATION = c(STD.dicom, '110152', 'Destination Role ID');

const authz = (outcome: Outcome): AuditEventKind => ({
  type: SECURITY_ALERT,
  subtype: [AUTHZ_CONSENT],
  action: 'E',
  outcome,
  actorType: RECIPIENT,
  custosType: AUTH_SERVER,
  pattern: 'IHE.BasicAudit.AuthZconsent',
});
const rest = (code: string, action: Action, actorType: Coding, pattern: string): AuditEventKind => ({
  type: REST,
  subtype: [interaction(code)],
  action,
  outcome: '0',
  actorType,
  custosType: APPLICATION,
  pattern,
});

/**
 * The AuditEvent of every event type: a `Record<EventType, ...>`, so a new event type does not
 * typecheck until it is mapped here.
 */
export const AUDIT_EVENT_KINDS: Readonly<Record<EventType, AuditEventKind>> = Object.freeze({
  [EVENT_TYPE.consentCreated]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.PatientCreate'),
  [EVENT_TYPE.consentRevoked]: rest('update', 'U', AUTHOR, 'IHE.BasicAudit.PatientUpdate'),
  [EVENT_TYPE.consentUpdated]: rest('update', 'U', AUTHOR, 'IHE.BasicAudit.PatientUpdate'),
  // BALP's deny example (ex-auditAuthZconsent-deny) records a consent deny as a serious failure.
  [EVENT_TYPE.consentDenied]: authz('8'),
  [EVENT_TYPE.dataAccessed]: authz('0'),
  [EVENT_TYPE.inferenceExecuted]: authz('0'),
  [EVENT_TYPE.trainingExecuted]: authz('0'),
  [EVENT_TYPE.erasure]: rest('delete', 'D', AUTHOR, 'IHE.BasicAudit.PatientDelete'),
  [EVENT_TYPE.tokenCreated]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  [EVENT_TYPE.tokenRevoked]: rest('delete', 'D', AUTHOR, 'IHE.BasicAudit.Delete'),
  [EVENT_TYPE.auditEvent]: { type: APPLICATION_ACTIVITY, subtype: [], action: 'E', outcome: '0', actorType: AUTHOR, custosType: APPLICATION, pattern: '(DICOM 110100)' },
  [EVENT_TYPE.auditQuery]: rest('search-type', 'E', RECIPIENT, 'IHE.BasicAudit.Query'),
  [EVENT_TYPE.auditRead]: rest('read', 'R', RECIPIENT, 'IHE.BasicAudit.Read'),
  [EVENT_TYPE.patientDataOpened]: rest('read', 'R', RECIPIENT, 'IHE.BasicAudit.PatientRead'),
  [EVENT_TYPE.securityAlert]: { type: SECURITY_ALERT, subtype: [], action: 'E', outcome: '4', actorType: RECIPIENT, custosType: APPLICATION, pattern: '(DICOM 110113)' },
  [EVENT_TYPE.witnessAlarm]: { type: SECURITY_ALERT, subtype: [], action: 'E', outcome: '8', actorType: DESTINATION, custosType: APPLICATION, pattern: '(DICOM 110113)' },
  // Break-glass: an access executed although consent denied it. PCF's consent-decision pattern with
  // a success outcome (the access happened); the purpose (BTG, ETREAT) and the overridden decision
  // (reason, provision) on the consent entity are the flag.
  [EVENT_TYPE.breakGlass]: authz('0'),
  // A privacy officer's verdict on a break-glass entry: an update of that entry's review state.
  [EVENT_TYPE.breakGlassReviewed]: rest('update', 'U', AUTHOR, 'IHE.BasicAudit.Update'),
  // issue 14: the model registry. A version or a plan is created; an approval or retirement updates
  // a version; an inference refused for its model is an authorization refusal like a consent denial.
  [EVENT_TYPE.modelRegistered]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  [EVENT_TYPE.modelApproved]: rest('update', 'U', AUTHOR, 'IHE.BasicAudit.Update'),
  [EVENT_TYPE.modelRetired]: rest('update', 'U', AUTHOR, 'IHE.BasicAudit.Update'),
  [EVENT_TYPE.changePlanCommitted]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  [EVENT_TYPE.inferenceRefused]: authz('8'),
  // issue 14: federated learning. A site registered or retired, a round recorded: creates and
  // deletes; a refused round is an application activity that failed (outcome 8, outcomeDesc the reason).
  [EVENT_TYPE.flSiteRegistered]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  [EVENT_TYPE.flSiteRetired]: rest('delete', 'D', AUTHOR, 'IHE.BasicAudit.Delete'),
  [EVENT_TYPE.flRound]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  [EVENT_TYPE.flRoundRefused]: { type: APPLICATION_ACTIVITY, subtype: [], action: 'E', outcome: '8', actorType: AUTHOR, custosType: APPLICATION, pattern: '(DICOM 110100)' },
  // issue 14: a line imported from a reference ledger (a record created here from a legacy one),
  // and the end of an import.
  [EVENT_TYPE.legacyEvent]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  [EVENT_TYPE.legacyImportCompleted]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  // issue 15: statistics released with differential privacy: the creation of a release document.
  [EVENT_TYPE.dpRelease]: rest('create', 'C', AUTHOR, 'IHE.BasicAudit.Create'),
  // issue 15: the attestation issuer key published (a security resource created), and an attestation
  // issued: a read of one entry's facts, handed out as a credential.
  [EVENT_TYPE.attestationKeyPublished]: { type: APPLICATION_ACTIVITY, subtype: [], action: 'C', outcome: '0', actorType: AUTHOR, custosType: APPLICATION, pattern: '(DICOM 110100)' },
  [EVENT_TYPE.attestationIssued]: rest('read', 'R', RECIPIENT, 'IHE.BasicAudit.PatientRead'),
});

/** An event type not in the registry (appended by an operator): an application activity. */
export const OPERATOR_EVENT_KIND: AuditEventKind = AUDIT_EVENT_KINDS[EVENT_TYPE.auditEvent];

const HL7_PURPOSES = new Set(HL7_PURPOSES_OF_USE);

/** A purpose code as a CodeableConcept: HL7 v3 ActReason when it is one of PurposeOfUse, else Custos's. */
export function purposeConcept(code: string): CodeableConcept {
  return { coding: [c(HL7_PURPOSES.has(code) ? STD.actReason : CS.purpose, code)] };
}

/** A role code of the role table as a CodeableConcept. */
export function roleConcept(code: string): CodeableConcept {
  return { coding: [c(CS.role, code)] };
}

/** An identifier whose `type` says what it names (input, output, model, ...). */
export function typedIdentifier(kind: string, system: string, value: string): Identifier {
  return { type: { coding: [c(CS.identifierType, kind)] }, system, value };
}

/** The agent of an actor id (and role). */
export function actorAgent(type: Coding, actor: string, role: string | undefined, purpose: string | undefined, requestor = true): AuditEventAgent {
  return {
    type: { coding: [type] },
    ...(role ? { role: [roleConcept(role)] } : {}),
    who: { identifier: { system: SID.actor, value: actor } },
    requestor,
    ...(purpose ? { purposeOfUse: [purposeConcept(purpose)] } : {}),
  };
}

/** The log as a reference (Custos's agent, the source's observer, a signer). */
export function logReference(origin: string): { identifier: Identifier; display: string } {
  return { identifier: { system: SID.log, value: origin }, display: `Custos log ${origin}` };
}

const SYSTEM_OBJECT = c(STD.auditEntityType, '2', 'System Object');
const PERSON = c(STD.auditEntityType, '1', 'Person');

const detail = (type: string, value: unknown): AuditEventEntityDetail[] =>
  value === undefined || value === null ? [] : [{ type, valueString: typeof value === 'string' ? value : JSON.stringify(value) }];

function entity(what: Identifier, type: Coding, role?: Coding, details: AuditEventEntityDetail[] = []): AuditEventEntity {
  return { what: { identifier: what }, type, ...(role ? { role } : {}), ...(details.length > 0 ? { detail: details } : {}) };
}

/** Data, an artifact or a document by its SHA-256 digest. */
function digest(kind: string, hex: unknown, details: AuditEventEntityDetail[] = []): AuditEventEntity[] {
  return typeof hex === 'string' ? [entity(typedIdentifier(kind, SID.sha256, hex), SYSTEM_OBJECT, undefined, details)] : [];
}

/** A salted commitment (to a URI, an external reference, or an opened value). */
function commitment(kind: string, hex: unknown): AuditEventEntity[] {
  return typeof hex === 'string' ? [entity(typedIdentifier(kind, SID.commitment, hex), SYSTEM_OBJECT)] : [];
}

/** The subject of a consent, as its commitment: BALP's patient entity, without a patient id. */
function subject(hex: unknown): AuditEventEntity[] {
  return typeof hex === 'string' ? [entity({ system: SID.subjectCommitment, value: hex }, PERSON, c(STD.objectRole, '1', 'Patient'))] : [];
}

/** A consent policy (and version, hash and deciding provision), the consent entity of BALP's AuthZ pattern. */
function consent(policyId: unknown, version: unknown, details: AuditEventEntityDetail[] = []): AuditEventEntity[] {
  if (typeof policyId !== 'string') return [];
  return [entity({ system: SID.policy, value: policyId }, c(STD.resourceTypes, 'Consent', 'Consent'), c(STD.objectRole, '4', 'Domain Resource'), [...detail('policyVersion', version), ...details])];
}

/** A federated learning site (issue 14). */
function flSite(site: unknown, details: AuditEventEntityDetail[] = []): AuditEventEntity {
  return entity({ system: SID.flSite, value: String(site) }, SYSTEM_OBJECT, undefined, details);
}

/** A read log entry (AUDIT_READ, PATIENT_DATA_OPENED). */
function entryRef(index: unknown): AuditEventEntity[] {
  return typeof index === 'number' ? [entity({ system: SID.logEntry, value: String(index) }, SYSTEM_OBJECT, c(STD.objectRole, '13', 'Security Resource'))] : [];
}

/** The audited request (route and permission): a query entity for searches. */
function request(p: Payload, query: boolean): AuditEventEntity {
  const range = recordField(p, 'range');
  return entity(typedIdentifier('route', SID.route, String(p['route'])), SYSTEM_OBJECT, query ? c(STD.objectRole, '24', 'Query') : undefined, [
    ...detail('permission', p['permission']),
    ...detail('queryHash', p['queryHash']),
    ...detail('rangeFrom', range?.['from']),
    ...detail('rangeTo', range?.['to']),
    ...detail('count', p['count']),
  ]);
}

const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

/** The request attributes of a decision beyond purpose and role (codings `SYSTEM|CODE` or codes, the data's time). */
function requestDetails(p: Payload): AuditEventEntityDetail[] {
  const r = recordField(p, 'request');
  return [
    ...detail('requestAction', r?.['action']),
    ...detail('requestClass', r?.['class']),
    ...detail('requestCode', r?.['code']),
    ...list(r?.['securityLabels']).flatMap((x) => detail('securityLabel', x)),
    ...detail('dataTime', r?.['dataTime']),
  ];
}
const list = (x: unknown): readonly unknown[] => (Array.isArray(x) ? x : []);
const docs = (p: Payload, ...kinds: string[]): AuditEventEntity[] => kinds.flatMap((k) => digest(k, recordField(p, 'documents')?.[k]));
const sub = (p: Payload, key: string) => recordField(p, key);

/** The entities of each event type's payload (exhaustive, like {@link AUDIT_EVENT_KINDS}). */
const ENTITIES: Readonly<Record<EventType, (p: Payload) => AuditEventEntity[]>> = {
  [EVENT_TYPE.consentCreated]: (p) => [
    ...consent(p['policyId'], p['version'], [
      ...list(p['purposes']).flatMap((x) => detail('purpose', x)),
      ...list(p['roles']).flatMap((x) => detail('role', x)),
      ...detail('validFrom', p['validFrom']),
      ...detail('validUntil', p['validUntil']),
      ...detail('revocable', p['revocable']),
      ...detail('source', p['source']),
    ]),
    ...subject(p['subject']),
    ...commitment('external-ref', p['externalRef']),
    ...docs(p, 'policy', 'fhir'),
  ],
  [EVENT_TYPE.consentRevoked]: (p) => [...consent(p['policyId'], p['version'], [...detail('previous', p['previous']), ...detail('source', p['source'])]), ...docs(p, 'policy', 'fhir')],
  [EVENT_TYPE.consentUpdated]: (p) => [
    ...consent(p['policyId'], p['version'], [...detail('previous', p['previous']), ...detail('validFrom', p['validFrom']), ...detail('validUntil', p['validUntil']), ...detail('source', p['source'])]),
    ...docs(p, 'policy', 'fhir'),
  ],
  [EVENT_TYPE.consentDenied]: (p) => [
    ...consent(p['policyId'], p['policyVersion'], [
      ...detail('policyHash', p['policyHash']),
      ...detail('provision', p['provision']),
      ...detail('operation', p['operation']),
      ...detail('reason', p['reason']),
      ...requestDetails(p),
    ]),
    ...digest('artifact', sub(p, 'artifact')?.['digest']),
    ...commitment('artifact-uri', sub(p, 'artifact')?.['uri']),
    ...digest('input', sub(p, 'input')?.['digest']),
    ...commitment('input-uri', sub(p, 'input')?.['uri']),
    ...digest('dataset', sub(p, 'dataset')?.['digest'], detail('datasetType', sub(p, 'dataset')?.['type'])),
    ...commitment('dataset-uri', sub(p, 'dataset')?.['uri']),
    ...digest('model', p['model']),
    ...digest('pipeline', p['pipeline']),
    ...digest('training', p['training']),
  ],
  [EVENT_TYPE.dataAccessed]: (p) => [
    ...consent(p['policyId'], p['policyVersion'], [...detail('policyHash', p['policyHash']), ...detail('provision', p['provision']), ...requestDetails(p)]),
    ...digest('artifact', sub(p, 'artifact')?.['digest']),
    ...commitment('artifact-uri', sub(p, 'artifact')?.['uri']),
    ...docs(p, 'policy'),
  ],
  [EVENT_TYPE.inferenceExecuted]: (p) => [
    ...consent(p['policyId'], p['policyVersion'], [...detail('provision', p['provision']), ...requestDetails(p)]),
    ...digest('input', sub(p, 'input')?.['digest']),
    ...commitment('input-uri', sub(p, 'input')?.['uri']),
    ...list(p['outputs']).flatMap((o) => (isRecord(o) ? digest('output', o['digest'], detail('name', o['name'])) : [])),
    ...docs(p, 'receipt', 'policy', 'pipeline', 'model'),
  ],
  [EVENT_TYPE.trainingExecuted]: (p) => [
    ...list(p['consents']).flatMap((x) => (isRecord(x) ? consent(x['policyId'], x['policyVersion'], [...detail('policyHash', x['policyHash']), ...detail('provision', x['provision'])]) : [])),
    ...digest('dataset', sub(p, 'dataset')?.['digest'], detail('datasetType', sub(p, 'dataset')?.['type'])),
    ...commitment('dataset-uri', sub(p, 'dataset')?.['uri']),
    ...digest('attestation', sub(p, 'attestation')?.['document'], [...detail('method', sub(p, 'attestation')?.['method']), ...detail('attestor', sub(p, 'attestation')?.['attestor'])]),
    ...digest('training', recordField(p, 'documents')?.['training'], detail('computeBackend', p['computeBackend'])),
    ...docs(p, 'modelBefore', 'modelAfter'),
    // issue 14: a cohort run's cohort document, with the tree's root, its size and the exclusions by reason.
    ...digest('cohort', recordField(p, 'documents')?.['cohort'], [
      ...detail('cohortRoot', sub(p, 'cohort')?.['root']),
      ...detail('cohortSize', sub(p, 'cohort')?.['size']),
      ...list(sub(p, 'cohort')?.['excluded']).flatMap((x) => (isRecord(x) ? detail(`excluded-${String(x['reason'])}`, x['count']) : [])),
    ]),
  ],
  [EVENT_TYPE.erasure]: (p) => [...list(p['commitments']).flatMap((x) => commitment(`erased-${String(p['kind'])}`, x)), ...digest('erased-document', p['document'])],
  [EVENT_TYPE.tokenCreated]: (p) => [
    entity(typedIdentifier('token', SID.token, String(p['tokenId'])), SYSTEM_OBJECT, c(STD.objectRole, '11', 'Security User Entity'), [
      ...detail('tokenName', p['tokenName']),
      ...detail('tokenRole', p['tokenRole']),
      ...detail('secretDigest', p['secretDigest']),
    ]),
  ],
  [EVENT_TYPE.tokenRevoked]: (p) => [
    entity(typedIdentifier('token', SID.token, String(p['tokenId'])), SYSTEM_OBJECT, c(STD.objectRole, '11', 'Security User Entity'), [
      ...detail('tokenName', p['tokenName']),
      ...detail('tokenRole', p['tokenRole']),
    ]),
  ],
  [EVENT_TYPE.auditEvent]: (p) => [...(typeof p['resource'] === 'string' ? [entity({ system: SID.resource, value: p['resource'] }, SYSTEM_OBJECT)] : []), ...digest('content', p['contentHash'])],
  [EVENT_TYPE.auditQuery]: (p) => [request(p, true), ...list(p['commitments']).flatMap((x) => commitment('queried-subject', x))],
  [EVENT_TYPE.auditRead]: (p) => [request(p, false), ...entryRef(p['eventIndex']), ...consent(p['policyId'], undefined)],
  [EVENT_TYPE.patientDataOpened]: (p) => [request(p, false), ...entryRef(p['eventIndex']), ...list(p['commitments']).flatMap((x) => commitment('opened', x))],
  [EVENT_TYPE.securityAlert]: (p) =>
    list(p['refusals']).flatMap((r) =>
      isRecord(r)
        ? [
            entity(typedIdentifier('route', SID.route, String(r['route'])), SYSTEM_OBJECT, undefined, [
              ...detail('code', r['code']),
              ...detail('permission', r['permission']),
              ...detail('count', r['count']),
            ]),
          ]
        : [],
    ),
  [EVENT_TYPE.breakGlass]: (p) => [
    ...consent(p['policyId'], p['policyVersion'], [
      ...detail('breakGlass', true),
      ...detail('overriddenReason', p['reason']),
      ...detail('policyHash', p['policyHash']),
      ...detail('provision', p['provision']),
      ...detail('operation', p['operation']),
      ...detail('justification', p['justification']),
      ...requestDetails(p),
    ]),
    ...digest('artifact', sub(p, 'artifact')?.['digest']),
    ...commitment('artifact-uri', sub(p, 'artifact')?.['uri']),
  ],
  [EVENT_TYPE.breakGlassReviewed]: (p) =>
    entryRef(p['breakGlass']).map((e) => ({ ...e, detail: [...detail('breakGlassLeaf', p['breakGlassLeaf']), ...detail('reviewOutcome', p['outcome']), ...detail('reviewReason', p['reason'])] })),
  // issue 14: the model registry. A version is named by its spec document's digest, with its line,
  // version and codes as details; a plan by its document's digest.
  [EVENT_TYPE.modelRegistered]: (p) => [
    ...digest('model-spec', recordField(p, 'documents')?.['spec'], [
      ...detail('model', p['model']),
      ...detail('version', p['version']),
      ...detail('intendedUse', p['intendedUse']),
      ...detail('riskClass', p['riskClass']),
      ...detail('changeControlPlan', sub(p, 'changeControl')?.['plan']),
      ...detail('changeControlOutcome', sub(p, 'changeControl')?.['outcome']),
    ]),
    ...digest('weights', p['weightsHash']),
    ...docs(p, 'evaluation'),
  ],
  [EVENT_TYPE.modelApproved]: (p) => [
    ...digest('weights', p['weightsHash'], [...detail('model', p['model']), ...detail('version', p['version']), ...detail('basis', p['basis']), ...detail('plan', p['plan'])]),
    ...entryRef(p['registered']),
    ...docs(p, 'plan'),
  ],
  [EVENT_TYPE.modelRetired]: (p) => [
    ...entryRef(p['registered']).map((e) => ({ ...e, detail: [...detail('model', p['model']), ...detail('version', p['version']), ...detail('reason', p['reason'])] })),
  ],
  [EVENT_TYPE.changePlanCommitted]: (p) => [
    ...digest('change-plan', recordField(p, 'documents')?.['plan'], [
      ...detail('planId', p['planId']),
      ...detail('model', p['model']),
      ...list(p['modifications']).flatMap((x) => detail('modification', x)),
      ...list(p['metrics']).flatMap((x) => detail('metric', x)),
    ]),
  ],
  [EVENT_TYPE.inferenceRefused]: (p) => [
    ...consent(p['policyId'], undefined, [...detail('operation', p['operation']), ...detail('reason', p['reason']), ...detail('modelState', p['state']), ...requestDetails(p)]),
    ...digest('input', sub(p, 'input')?.['digest']),
    ...commitment('input-uri', sub(p, 'input')?.['uri']),
    ...digest('model', p['model'], [...detail('model', p['modelName']), ...detail('version', p['modelVersion'])]),
    ...digest('weights', p['weightsHash']),
    ...digest('registered-weights', p['registeredWeightsHash']),
    ...digest('pipeline', p['pipeline']),
  ],
  // issue 14: federated learning
  [EVENT_TYPE.flSiteRegistered]: (p) => [flSite(p['site'], [...detail('publicKey', p['publicKey']), ...detail('keyHash', p['keyHash'])])],
  [EVENT_TYPE.flSiteRetired]: (p) => [flSite(p['site'])],
  [EVENT_TYPE.flRound]: (p) => {
    const dp = sub(p, 'dp');
    const v = sub(p, 'version');
    return [
      entity({ system: SID.flLine, value: String(p['line']) }, SYSTEM_OBJECT, undefined, [
        ...detail('round', p['round']),
        ...detail('aggregation', p['aggregation']),
        ...['clipNorm', 'noiseMultiplier', 'delta', 'rho', 'rhoTotal', 'epsilon'].flatMap((k) => detail(`dp.${k}`, dp?.[k])),
        ...detail('final', p['final']),
        ...detail('model', v?.['model']),
        ...detail('version', v?.['version']),
      ]),
      ...list(p['sites']).flatMap((x) => (isRecord(x) ? digest('fl-update', x['update'], [...detail('site', x['site']), ...detail('signature', x['signature'])]) : [])),
      ...digest('global-model', p['globalModel']),
      ...docs(p, 'modelSpec'),
    ];
  },
  [EVENT_TYPE.flRoundRefused]: (p) => [
    entity({ system: SID.flLine, value: String(p['line']) }, SYSTEM_OBJECT, undefined, [...detail('round', p['round']), ...detail('reason', p['reason'])]),
    ...(typeof p['site'] === 'string' ? [flSite(p['site'])] : []),
  ],
  [EVENT_TYPE.witnessAlarm]: (p) => [
    entity(typedIdentifier('checkpoint', SID.checkpoint, String(p['checkpointSize'])), SYSTEM_OBJECT, undefined, [
      ...detail('witnessSize', p['witnessSize']),
      ...detail('httpStatus', p['status']),
      ...detail('attempts', p['attempts']),
    ]),
  ],
  // issue 14: import of the reference's ledgers
  [EVENT_TYPE.legacyEvent]: (p) => [
    ...digest('legacy-entry', p['entryHash'], [...detail('line', p['line']), ...detail('legacyType', p['legacyType']), ...detail('prevHash', p['prevHash']), ...detail('entryId', p['entryId'])]),
    ...subject(p['subject']),
    ...list(p['uris']).flatMap((x) => commitment('legacy-uri', x)),
    ...docs(p, 'line', 'manifest', 'policy'),
  ],
  [EVENT_TYPE.legacyImportCompleted]: (p) => [
    ...digest('legacy-head', p['head'], [...detail('lines', p['lines']), ...detail('entries', p['entries']), ...detail('firstIndex', p['firstIndex'])]),
    ...digest('legacy-file', p['fileDigest']),
  ],
  // issue 15: the release document (query, values), with what it spent and for whom.
  [EVENT_TYPE.dpRelease]: (p) =>
    digest('dp-release', recordField(p, 'documents')?.['release'], [
      ...detail('consumer', p['consumer']),
      ...detail('queryHash', p['queryHash']),
      ...detail('unit', p['unit']),
      ...detail('mechanism', p['mechanism']),
      ...detail('epsilon', p['epsilon']),
      ...detail('delta', p['delta']),
    ]),
  // issue 15: attestations (docs/attestations.md)
  [EVENT_TYPE.attestationKeyPublished]: (p) => [...digest('attestation-key', p['keyId'], [...detail('alg', p['alg']), ...detail('publicKey', p['publicKey'])])],
  [EVENT_TYPE.attestationIssued]: (p) => [
    request(p, false),
    ...entryRef(p['eventIndex']),
    ...digest('attestation', p['credential'], [...detail('attestationKind', p['kind']), ...detail('keyId', p['keyId']), ...detail('keyEvent', p['keyEvent'])]),
  ],
};

/** The Custos inclusion-proof extension of an entry: its index and leaf hash, and the proof when given. */
export function inclusionExtension(src: Pick<AuditSource, 'index' | 'leafHash'>, ctx: AuditContext): Extension {
  return {
    url: EXT.inclusionProof,
    extension: [
      { url: 'leafIndex', valueUnsignedInt: src.index },
      { url: 'leafHash', valueString: src.leafHash },
      ...(ctx.inclusion ? [{ url: 'treeSize', valueUnsignedInt: ctx.inclusion.treeSize }, ...ctx.inclusion.hashes.map((h) => ({ url: 'hash', valueString: h }))] : []),
    ],
  };
}

/** The log entry itself: index and leaf hash, with the inclusion proof in the Custos extension. */
function logEntry(src: AuditSource, ctx: AuditContext): AuditEventEntity {
  return {
    ...entity({ system: SID.logEntry, value: String(src.index) }, SYSTEM_OBJECT, c(STD.objectRole, '13', 'Security Resource'), [...detail('leafHash', src.leafHash), ...detail('origin', ctx.origin)]),
    extension: [inclusionExtension(src, ctx)],
  };
}

function isEventType(t: string): t is EventType {
  return Object.hasOwn(AUDIT_EVENT_KINDS, t);
}

/** The AuditEvent kind of an entry's type (an operator-defined type maps to {@link OPERATOR_EVENT_KIND}). */
export function auditEventKind(type: string): AuditEventKind {
  return isEventType(type) ? AUDIT_EVENT_KINDS[type] : OPERATOR_EVENT_KIND;
}

// Agents beside the actor: the witness of a witness alarm, the practitioner of a generic event,
// the unauthenticated client of a security alert.
function otherAgents(type: string, p: Payload, kind: AuditEventKind): AuditEventAgent[] {
  if (type === EVENT_TYPE.witnessAlarm && typeof p['witness'] === 'string') {
    return [{ type: { coding: [kind.actorType] }, who: { identifier: { system: SID.witness, value: p['witness'] } }, requestor: false }];
  }
  if (type === EVENT_TYPE.auditEvent && typeof p['practitioner'] === 'string') return [actorAgent(kind.actorType, p['practitioner'], undefined, undefined)];
  if (type === EVENT_TYPE.securityAlert && typeof p['client'] === 'string') {
    return [{ type: { coding: [kind.actorType] }, who: { identifier: { system: SID.client, value: p['client'] } }, requestor: true }];
  }
  return [];
}

/**
 * The AuditEvent of one log entry. Its id is the entry index. Codes, identifiers, hashes and
 * commitments are carried as they are on the log; nothing else is added but fixed codes.
 */
export function toAuditEvent(src: AuditSource, ctx: AuditContext): AuditEvent {
  const { type, time, payload: p } = src.event;
  const kind = auditEventKind(type);
  const actor = str(p['actor']);
  const purpose = str(p['purpose']);
  const registered = isEventType(type);
  const period: Period | undefined =
    type === EVENT_TYPE.securityAlert && typeof p['windowStart'] === 'string' && typeof p['windowEnd'] === 'string' ? { start: p['windowStart'], end: p['windowEnd'] } : undefined;
  const outcomeDesc = type === EVENT_TYPE.consentDenied ? str(p['reason']) : type === EVENT_TYPE.witnessAlarm || type === EVENT_TYPE.flRoundRefused ? str(p['reason']) : undefined;
  return {
    resourceType: 'AuditEvent',
    id: String(src.index),
    type: kind.type,
    subtype: [...kind.subtype, c(CS.eventType, type)],
    action: kind.action,
    ...(period ? { period } : {}),
    recorded: time,
    outcome: kind.outcome,
    ...(outcomeDesc ? { outcomeDesc } : {}),
    ...(purpose ? { purposeOfEvent: [purposeConcept(purpose)] } : {}),
    agent: [
      ...(actor ? [actorAgent(kind.actorType, actor, str(p['role']), purpose)] : []),
      ...otherAgents(type, p, kind),
      { type: { coding: [kind.custosType] }, who: logReference(ctx.origin), requestor: false },
    ],
    source: { site: ctx.origin, observer: logReference(ctx.origin), type: [c(STD.securitySourceType, '4', 'Application Server')] },
    entity: [...(registered ? ENTITIES[type](p) : []), logEntry(src, ctx)],
  };
}

/** Every identifier an AuditEvent's entities carry, with the detail values that name a hash or policy (search by `entity`). */
export function entityIdentifiers(ae: { entity?: readonly AuditEventEntity[] | undefined }): Identifier[] {
  const out: Identifier[] = [];
  for (const e of ae.entity ?? []) {
    if (e.what?.identifier) out.push(e.what.identifier);
    for (const d of e.detail ?? []) if (d.type === 'policyHash' || d.type === 'queryHash') out.push({ system: SID.sha256, value: d.valueString ?? '' });
  }
  return out;
}

/** Every actor id an AuditEvent's agents name (search by `agent`). */
export function agentIds(ae: { agent?: readonly AuditEventAgent[] | undefined }): string[] {
  return (ae.agent ?? []).flatMap((a) => (a.who?.identifier?.system === SID.actor && a.who.identifier.value ? [a.who.identifier.value] : []));
}
