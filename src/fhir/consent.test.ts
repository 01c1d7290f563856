/**
 * FHIR Consent import against the 12 HL7 R4 examples (../shared/vectors/fhir-consent/r4/) and R5
 * cases written from the R5 specification. Each enforced example decides a table whose expected
 * effects come from its narrative (`text.div`, quoted beside the table); each other example is
 * refused at import with CONSENT_UNENFORCEABLE naming the element and why. Custos never permits what
 * a narrative forbids.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateConsent, type ConsentRequest, type Decision } from '../core/consent/evaluate.js';
import { POLICY_SCHEMA, parseStoredPolicy, type ConsentPolicy } from '../core/consent/policy.js';
import { ValidationError } from '../core/errors.js';
import { VECTORS } from '../../test/helpers/vectors.js';
import { findDuplicateKey, fhirTimeToUtc, importFhirConsent, policyToFhirConsent, type CompiledFhirConsent } from './consent.js';
import { detectFhirVersion, validateFhirResource } from './validate.js';

const R4_DIR = join(VECTORS, 'fhir-consent', 'r4');
const HAVE_R4 = existsSync(R4_DIR);
const skip = HAVE_R4 ? false : `the HL7 R4 Consent examples are not at ${R4_DIR} (../shared/vectors beside the repository)`;

const PRCP = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType|PRCP';
const bytes = (x: unknown) => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x));
const example = (name: string) => readFileSync(join(R4_DIR, `Consent-consent-example-${name}.json`));

/** The compiled consent as a stored native policy (the shape the service keeps). */
function asPolicy(c: CompiledFhirConsent): ConsentPolicy {
  return parseStoredPolicy({
    schema: POLICY_SCHEMA,
    policyId: 'pol_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    version: 1,
    subject: 'cd'.repeat(32),
    revocable: true,
    revoked: c.revokes,
    period: { start: c.period.start ?? '1900-01-01T00:00:00.000Z', ...(c.period.end ? { end: c.period.end } : {}) },
    provision: c.provision,
    previous: null,
    recordedAt: '2016-01-01T00:00:00.000Z',
    recordedBy: { actor: 'po-1', role: 'privacy_officer' },
  });
}

function decide(c: CompiledFhirConsent, req: ConsentRequest, at: string): Decision {
  return evaluateConsent({ kind: 'found', policy: asPolicy(c), hash: 'ab'.repeat(32) }, req, Date.parse(at));
}

interface Row {
  readonly name: string;
  readonly req: ConsentRequest;
  readonly at: string;
  readonly effect: 'permit' | 'deny';
  readonly path?: string;
}

function table(c: CompiledFhirConsent, rows: readonly Row[]): void {
  for (const r of rows) {
    const d = decide(c, r.req, r.at);
    assert.equal(d.effect, r.effect, `${r.name}: ${d.explanation}`);
    if (r.path !== undefined) assert.equal(d.provision, r.path, r.name);
  }
}

function assertRefused(fn: () => unknown, code: string, paths: readonly string[], reason?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.code, code, e.message);
    const got = e.issues.map((i) => i.path);
    for (const p of paths) assert.ok(got.includes(p), `no issue at ${p} among ${got.join(', ')}`);
    if (reason)
      assert.ok(
        e.issues.some((i) => reason.test(i.message)),
        `no issue says ${reason} among ${JSON.stringify(e.issues)}`,
      );
    return true;
  });
}

describe('the 12 HL7 R4 Consent examples', { skip }, () => {
  it('all 12 are valid R4 (medplum, full profile validation) and detected as R4', () => {
    for (const n of ['basic', 'Emergency', 'grantor', 'notAuthor', 'notOrg', 'notThem', 'notThis', 'notTime', 'Out', 'pkb', 'signature', 'smartonfhir']) {
      const r = JSON.parse(example(n).toString('utf8'));
      assert.equal(detectFhirVersion(r), 'R4', n);
      validateFhirResource(r, 'R4');
    }
  });

  describe('enforced', () => {
    it('notOrg: a deny of access and correction to Good Health Clinic', () => {
      const c = importFhirConsent(example('notOrg'));
      assert.deepEqual([c.fhirVersion, c.resourceId, c.patient, c.status, c.revokes], ['R4', 'consent-example-notOrg', 'Patient/f001', 'active', false]);
      // "P. decides that he would like to withdraw/withhold consent to disclose any instance of his
      // health information to Good Health Clinic."
      const org = { purpose: 'TREAT', role: PRCP, actorReference: 'Organization/f001' };
      table(c, [
        { name: 'Good Health Clinic accesses for treatment', req: { ...org, action: 'access' }, at: '2016-01-01T00:00:00Z', effect: 'deny', path: 'provision' },
        { name: 'Good Health Clinic corrects', req: { ...org, action: 'correct' }, at: '2016-01-01T00:00:00Z', effect: 'deny', path: 'provision' },
        { name: 'Good Health Clinic, action not stated (fail closed)', req: org, at: '2016-01-01T00:00:00Z', effect: 'deny', path: 'provision' },
        { name: 'an actor not named (fail closed)', req: { purpose: 'TREAT', role: PRCP, action: 'access' }, at: '2016-01-01T00:00:00Z', effect: 'deny' },
        // Outside the root deny, Custos's base is deny: it never permits more than the consent says.
        { name: 'another organization: nothing permits it', req: { ...org, actorReference: 'Organization/f002', action: 'access' }, at: '2016-01-01T00:00:00Z', effect: 'deny', path: 'provision' },
      ]);
    });

    it('smartonfhir: access to MedicationRequest for the 30 minutes of the grant', () => {
      const c = importFhirConsent(example('smartonfhir'));
      // "provision period: 23/06/2016 5:02:33 PM --> 23/06/2016 5:32:33 PM ... Provisions" (the
      // generated narrative: a nested permit of access to MedicationRequest, within that period).
      const ok = { purpose: 'TREAT', role: 'clinician', action: 'access', class: 'MedicationRequest', dataTime: '2016-06-23T17:10:00+10:00' };
      table(c, [
        { name: 'access to a MedicationRequest within the period', req: ok, at: '2016-06-23T07:10:00Z', effect: 'permit', path: 'provision.provision[0]' },
        { name: 'at the first instant of the period', req: ok, at: '2016-06-23T07:02:33Z', effect: 'permit' },
        { name: 'at the last instant of the period', req: ok, at: '2016-06-23T07:32:33Z', effect: 'permit' },
        { name: 'after the period', req: ok, at: '2016-06-23T07:32:34Z', effect: 'deny' },
        { name: 'before the period', req: ok, at: '2016-06-23T07:02:32Z', effect: 'deny' },
        { name: 'an Observation', req: { ...ok, class: 'Observation' }, at: '2016-06-23T07:10:00Z', effect: 'deny' },
        { name: 'disclosure rather than access', req: { ...ok, action: 'disclose' }, at: '2016-06-23T07:10:00Z', effect: 'deny' },
        { name: 'no action stated (fail closed)', req: { ...ok, action: undefined }, at: '2016-06-23T07:10:00Z', effect: 'deny' },
        { name: 'no class stated (fail closed)', req: { ...ok, class: undefined }, at: '2016-06-23T07:10:00Z', effect: 'deny' },
        // The untyped root's period bounds the data too (docs/consent.md): data from outside it is not permitted.
        { name: 'no data time stated (fail closed)', req: { ...ok, dataTime: undefined }, at: '2016-06-23T07:10:00Z', effect: 'deny' },
        { name: 'data from before the period', req: { ...ok, dataTime: '2015-01-01T00:00:00Z' }, at: '2016-06-23T07:10:00Z', effect: 'deny' },
      ]);
    });
  });

  describe('refused at import (CONSENT_UNENFORCEABLE), each with the element and the reason', () => {
    const UNTYPED = /no type/;
    const cases: [string, string[], RegExp, string][] = [
      // "wishes to have all of the PHI collected at the Good Health Psychiatric Hospital available for
      // normal treatment use": the root has no type and only a period, which names neither the
      // hospital nor treatment, and whose sense (the rule or the data) cannot be told.
      ['basic', ['provision.type', 'provision.period'], UNTYPED, 'no type, and a period that may bound the rule or the data'],
      // "wishes to have no data at the Good Health Psychiatric Hospital available for normal treatment
      // use": the root has no type (OPTOUT does not set it: grantor uses OPTOUT for a permit), and its
      // actor is the custodian of the data, which a request does not carry.
      ['Out', ['provision.type', 'provision.actor[0].role'], UNTYPED, 'no type; CST is the data’s custodian'],
      // "An overall Deny consent Directive, with an exception "Permit" of purposeOfUse "ETREAT"": the
      // actors are the custodian (CST), not the requester.
      ['Emergency', ['provision.actor[0].role', 'provision.provision[0].actor[0].role'], /custodian/, 'CST actors'],
      // "wishes to provide XXX with read-only access": the root has no type, one actor is the custodian.
      ['grantor', ['provision.type', 'provision.actor[0].role'], UNTYPED, 'no type; CST'],
      // "PHI collected at the Good Health Psychiatric Hospital restricted from disclosure to every
      // provider": who collected the data is not in a request.
      ['notAuthor', ['provision.type', 'provision.actor[0].role'], /custodian/, 'no type; CST'],
      // "does not want her ex-spouse to have any access": the root that names him has no type
      // (OPTIN does not set it: basic uses OPTIN for a permit).
      ['notThem', ['provision.type'], UNTYPED, 'no type'],
      // "withhold consent to disclose the order and all results associated with that specific order":
      // provision.data references a Task Custos cannot see.
      ['notThis', ['provision.type', 'provision.data'], /cannot see/, 'data reference'],
      // "withhold disclosure of all data from a timeframe": the provision gives a period (the rule's
      // validity), not a dataPeriod, and no type.
      ['notTime', ['provision.type', 'provision.period'], /bounds the rule or the data/, 'period vs data'],
      // The narrative is a screenshot; the nested provisions have no type.
      ['pkb', ['provision.provision[0].type', 'provision.provision[10].type'], /without a type/, 'untyped nested provisions'],
      // The nested permit's actor is the author (AUT) of the documents: a property of the data.
      ['signature', ['provision.provision[0].actor[0].role'], /author/, 'AUT actor'],
    ];
    for (const [name, paths, reason, why] of cases) {
      it(`${name}: ${why}`, () => assertRefused(() => importFhirConsent(example(name)), 'CONSENT_UNENFORCEABLE', paths, reason));
    }
  });
});

describe('R5 Consent (cases written from the R5 specification)', () => {
  const SUD42 = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
  const r5 = (over: Record<string, unknown>) => ({
    resourceType: 'Consent',
    id: 'r5-case',
    identifier: [{ system: 'urn:example:consents', value: 'c-1' }],
    status: 'active',
    subject: { reference: 'Patient/p1' },
    date: '2024-01-01',
    period: { start: '2024-01-01', end: '2025-12-31' },
    ...over,
  });
  const AT = '2024-06-01T00:00:00Z';

  it('decision deny, a permit exception for treatment by one practitioner, and a nested deny of sensitive data (42 CFR Part 2 SUD, PSY, HIV, ETH)', () => {
    const c = importFhirConsent(
      bytes(
        r5({
          decision: 'deny',
          provision: [
            {
              purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
              actor: [{ reference: { reference: 'Practitioner/p1' } }],
              action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'access' }] }],
              provision: [{ securityLabel: ['SUD', 'PSY', 'HIV', 'ETH'].map((code) => ({ system: SUD42, code })) }],
            },
          ],
        }),
      ),
    );
    assert.deepEqual([c.fhirVersion, c.identifier, c.patient, c.period], ['R5', 'urn:example:consents|c-1', 'Patient/p1', { start: '2024-01-01T00:00:00.000Z', end: '2025-12-31T23:59:59.999Z' }]);
    const ok = { purpose: 'TREAT', role: 'clinician', actorReference: 'Practitioner/p1', action: 'access' };
    table(c, [
      { name: 'treatment access by p1', req: ok, at: AT, effect: 'permit', path: 'provision[0]' },
      { name: 'by p1, data labelled SUD (42 CFR Part 2)', req: { ...ok, securityLabels: ['SUD'] }, at: AT, effect: 'deny', path: 'provision[0].provision[0]' },
      { name: 'by p1, data labelled PSY', req: { ...ok, securityLabels: ['PSY'] }, at: AT, effect: 'deny', path: 'provision[0].provision[0]' },
      { name: 'by p1, data labelled HIV among others', req: { ...ok, securityLabels: ['http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R', 'HIV'] }, at: AT, effect: 'deny' },
      { name: 'by p1, data labelled ETH', req: { ...ok, securityLabels: [`${SUD42}|ETH`] }, at: AT, effect: 'deny' },
      { name: 'by another practitioner', req: { ...ok, actorReference: 'Practitioner/p2' }, at: AT, effect: 'deny', path: 'decision' },
      { name: 'research by p1', req: { ...ok, purpose: 'HRESCH' }, at: AT, effect: 'deny', path: 'decision' },
      { name: 'no actor reference (fail closed)', req: { ...ok, actorReference: undefined }, at: AT, effect: 'deny' },
    ]);
    // Consent.period is the validity of the consent itself.
    assert.equal(decide(c, ok, '2026-01-01T00:00:00Z').reason, 'EXPIRED');
  });

  it('decision permit, deny exceptions: deny overrides a nested permit whatever the order of the siblings; dataPeriod bounds the data', () => {
    const research = {
      purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HRESCH' }],
      provision: [{ resourceType: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }],
    };
    const old = { dataPeriod: { end: '2019-12-31' } };
    for (const [provision, oldIndex] of [
      [[research, old], 1],
      [[old, research], 0],
    ] as const) {
      const c = importFhirConsent(bytes(r5({ decision: 'permit', provision })));
      const obs = { purpose: 'HRESCH', role: 'researcher', class: 'Observation', dataTime: '2021-03-01T00:00:00Z' };
      table(c, [
        { name: 'research on a recent Observation: the nested permit', req: obs, at: AT, effect: 'permit', path: `provision[${1 - oldIndex}].provision[0]` },
        { name: 'research on a recent Condition: the deny', req: { ...obs, class: 'Condition' }, at: AT, effect: 'deny', path: `provision[${1 - oldIndex}]` },
        { name: 'research on an Observation from 2019: the data-period deny overrides', req: { ...obs, dataTime: '2019-06-01T00:00:00Z' }, at: AT, effect: 'deny', path: `provision[${oldIndex}]` },
        { name: 'treatment on recent data: the base', req: { ...obs, purpose: 'TREAT' }, at: AT, effect: 'permit', path: 'decision' },
        {
          name: 'treatment, no data time (fail closed: the data-period deny may apply)',
          req: { ...obs, purpose: 'TREAT', dataTime: undefined },
          at: AT,
          effect: 'deny',
          path: `provision[${oldIndex}]`,
        },
        { name: 'last instant of 2019 is inside the data period', req: { ...obs, purpose: 'TREAT', dataTime: '2019-12-31T23:59:59.999Z' }, at: AT, effect: 'deny' },
      ]);
    }
  });

  it('a withdrawal (inactive) revokes, whatever its provisions say', () => {
    const c = importFhirConsent(bytes(r5({ status: 'inactive', decision: 'permit', provision: [{ expression: { language: 'text/fhirpath', expression: 'true' } }] })));
    assert.equal(c.revokes, true);
    assert.equal(decide(c, { purpose: 'TREAT', role: 'nurse' }, AT).reason, 'REVOKED');
  });

  const refusals: [string, Record<string, unknown>, string, RegExp][] = [
    ['provision.expression', { decision: 'deny', provision: [{ expression: { language: 'text/fhirpath', expression: "securityLabel.code = 'R'" } }] }, 'provision[0].expression', /expression/],
    ['provision.data', { decision: 'permit', provision: [{ data: [{ meaning: 'instance', reference: { reference: 'Observation/o1' } }] }] }, 'provision[0].data', /cannot see/],
    ['policyBasis', { decision: 'permit', policyBasis: { url: 'http://example.org/policy' } }, 'policyBasis', /policy basis/],
    ['regulatoryBasis', { decision: 'permit', regulatoryBasis: [{ coding: [{ system: 'http://example.org', code: 'X' }] }] }, 'regulatoryBasis', /regulatory/],
    ['no decision', { provision: [{ purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] }] }, 'decision', /base/],
    ['a modifier extension', { decision: 'permit', provision: [{ modifierExtension: [{ url: 'http://example.org/x', valueBoolean: true }] }] }, 'provision[0].modifierExtension[0]', /modifier/],
    [
      'an actor with a custodian role',
      { decision: 'deny', provision: [{ actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'CST' }] } }] }] },
      'provision[0].actor[0].role',
      /custodian/,
    ],
    ['a draft consent', { status: 'draft', decision: 'permit' }, 'status', /not in force/],
    // The compiled provisions live in the policy document, which the subject's erasure keeps.
    ['an actor that is the patient', { decision: 'permit', provision: [{ actor: [{ reference: { reference: 'Patient/p1' } }] }] }, 'provision[0].actor[0].reference', /erasure/],
    [
      'an actor that is a person related to the patient (absolute, versioned)',
      { decision: 'deny', provision: [{ actor: [{ reference: { reference: 'https://fhir.example.org/r5/RelatedPerson/mother-1/_history/2' } }] }] },
      'provision[0].actor[0].reference',
      /erasure/,
    ],
  ];
  for (const [name, over, path, reason] of refusals) {
    it(`refuses ${name}`, () => assertRefused(() => importFhirConsent(bytes(r5(over)), { fhirVersion: 'R5' }), 'CONSENT_UNENFORCEABLE', [path], reason));
  }

  it('structural validation from the R5 element model: unknown elements, single vs repeating, primitive forms, status', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ decision: 'permit', provision: [{ bogus: true }] }, 'Consent.provision[0].bogus'],
      [{ decision: 'permit', provision: { purpose: [] } }, 'Consent.provision'],
      [{ decision: 'permit', status: undefined }, 'Consent.status'],
      [{ decision: 'permit', date: '2024-13-01' }, 'Consent.date'],
      [{ decision: 'permit', subject: [{ reference: 'Patient/p1' }] }, 'Consent.subject'],
      [{ decision: 'permit', provision: [{ securityLabel: [{ system: 'not a uri', code: 'R' }] }] }, 'Consent.provision[0].securityLabel[0].system'],
      [{ decision: 'permit', provision: [{ provision: [{ dataPeriod: { start: 'yesterday' } }] }] }, 'Consent.provision[0].provision[0].dataPeriod.start'],
      [{ decision: 'permit', extension: [{ valueString: 'x' }] }, 'Consent.extension[0].url'],
    ];
    for (const [over, path] of cases) {
      const r = r5(over);
      if ('status' in over && over.status === undefined) delete (r as Record<string, unknown>).status;
      assertRefused(() => validateFhirResource(r, 'R5'), 'FHIR_INVALID', [path]);
    }
    validateFhirResource(
      r5({ decision: 'permit', extension: [{ url: 'http://example.org/x', valueString: 'x' }], _status: { extension: [{ url: 'http://example.org/y', valueBoolean: true }] } }),
      'R5',
    );
  });
});

describe('import: bytes, version and validation', () => {
  it('refuses a byte order mark, invalid UTF-8, a duplicate key, and what is not a Consent', () => {
    const good = JSON.stringify({ resourceType: 'Consent', status: 'active', decision: 'permit', subject: { reference: 'Patient/p' } });
    assertRefused(() => importFhirConsent(new Uint8Array([0xef, 0xbb, 0xbf, ...bytes(good)])), 'VALIDATION_FAILED', ['$'], /byte order mark/);
    assertRefused(() => importFhirConsent(new Uint8Array([0x7b, 0xff, 0x7d])), 'VALIDATION_FAILED', ['$'], /UTF-8/);
    assertRefused(() => importFhirConsent(bytes('{"resourceType":"Consent","status":"active","status":"inactive"}')), 'VALIDATION_FAILED', ['$'], /twice/);
    assertRefused(() => importFhirConsent(bytes({ resourceType: 'Patient' })), 'FHIR_INVALID', ['resourceType']);
    assertRefused(() => importFhirConsent(bytes('[1]')), 'FHIR_INVALID', ['resourceType']);
  });

  it('findDuplicateKey sees escaped duplicates and ignores keys in different objects', () => {
    assert.equal(findDuplicateKey('{"a":1,"\\u0061":2}'), 'a');
    assert.equal(findDuplicateKey('{"a":{"a":1},"b":[{"a":1},{"a":2}]}'), undefined);
    assert.equal(findDuplicateKey('{"x":"a\\"b","y":{"k":1,"k":2}}'), 'k');
  });

  it('R4 validation (medplum): an R4 Consent that breaks the definitions is FHIR_INVALID with FHIR paths', () => {
    const bad = { resourceType: 'Consent', status: 'active', provision: { type: 'deny', foo: 1 } };
    assertRefused(() => importFhirConsent(bytes(bad), { fhirVersion: 'R4' }), 'FHIR_INVALID', ['Consent.scope', 'Consent.category', 'Consent.provision.foo']);
  });

  it('detects R5 by R5-only elements, R4 by R4-only ones, and refuses a mix', () => {
    assert.equal(detectFhirVersion({ resourceType: 'Consent', decision: 'permit' }), 'R5');
    assert.equal(detectFhirVersion({ resourceType: 'Consent', patient: { reference: 'Patient/p' } }), 'R4');
    assert.equal(detectFhirVersion({ resourceType: 'Consent', provision: { provision: [{ type: 'deny' }] } }), 'R4');
    assertRefused(() => detectFhirVersion({ resourceType: 'Consent', decision: 'permit', policyRule: {} }), 'FHIR_INVALID', ['Consent']);
  });

  it('FHIR times: a partial date stands for its whole span in UTC', () => {
    assert.equal(fhirTimeToUtc('2016', 'start'), '2016-01-01T00:00:00.000Z');
    assert.equal(fhirTimeToUtc('2016', 'end'), '2016-12-31T23:59:59.999Z');
    assert.equal(fhirTimeToUtc('2016-02', 'end'), '2016-02-29T23:59:59.999Z');
    assert.equal(fhirTimeToUtc('2016-06-23T17:02:33+10:00', 'start'), '2016-06-23T07:02:33.000Z');
    assert.equal(fhirTimeToUtc('2016-06-23T17:02:33', 'start'), undefined);
    assert.equal(fhirTimeToUtc('2016-02-30', 'start'), undefined);
  });
});

describe('policyToFhirConsent', () => {
  const policy = parseStoredPolicy({
    schema: POLICY_SCHEMA,
    policyId: 'pol_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    version: 2,
    subject: 'cd'.repeat(32),
    revocable: true,
    revoked: false,
    period: { start: '2030-01-01T00:00:00.000Z', end: '2030-12-31T23:59:59.999Z' },
    provision: {
      type: 'permit',
      purposes: ['TREAT', 'HRESCH'],
      roles: ['dermatologist', 'researcher'],
      provisions: [{ type: 'deny', purposes: ['HRESCH'], securityLabels: ['PSY'], provisions: [{ type: 'permit', roles: ['researcher'], classes: ['Observation'] }] }],
    },
    previous: null,
    recordedAt: '2030-01-01T00:00:00.000Z',
    recordedBy: { actor: 'po-1', role: 'privacy_officer' },
  });

  it('is a valid R4 Consent, and importing it back decides as the native policy does', () => {
    const fhir = policyToFhirConsent(policy, { patientReference: 'Patient/p1' });
    validateFhirResource(fhir, 'R4');
    const back = importFhirConsent(bytes(fhir));
    const native = { kind: 'found', policy, hash: 'ab'.repeat(32) } as const;
    const imported = { kind: 'found', policy: { ...policy, provision: back.provision }, hash: 'ab'.repeat(32) } as const;
    const at = Date.parse('2030-06-01T00:00:00Z');
    for (const req of [
      { purpose: 'TREAT', role: 'dermatologist' },
      { purpose: 'HRESCH', role: 'researcher', securityLabels: ['PSY'], class: 'Observation' },
      { purpose: 'HRESCH', role: 'researcher', securityLabels: ['PSY'], class: 'Condition' },
      { purpose: 'HRESCH', role: 'dermatologist' },
      { purpose: 'HRESCH', role: 'dermatologist', securityLabels: ['PSY'] },
      { purpose: 'HMARKT', role: 'dermatologist' },
    ]) {
      assert.equal(evaluateConsent(imported, req, at).effect, evaluateConsent(native, req, at).effect, JSON.stringify(req));
    }
    assert.equal(evaluateConsent(imported, { purpose: 'TREAT', role: 'dermatologist' }, Date.parse('2031-01-01T00:00:00Z')).effect, 'deny', 'the policy window bounds the root');
  });

  it('a revoked policy is an inactive Consent', () => {
    const fhir = policyToFhirConsent({ ...policy, revoked: true });
    assert.equal(fhir.status, 'inactive');
    validateFhirResource(fhir, 'R4');
  });
});
