/**
 * The extended request model: codings, the CONSENT_REQUEST schema, and the evaluation of the new
 * provision attributes: fail closed on what the request does not state, deny overrides whatever
 * the sibling order, bare codes equal SYSTEM|CODE of the default system.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import fc from 'fast-check';
import { evaluateConsent, PROVISION_PATH_RE, type ConsentRequest, type PolicyLookup } from './evaluate.js';
import { POLICY_SCHEMA, parseStoredPolicy, type ConsentPolicy, type Provision } from './policy.js';
import { CONSENT_ACTION, CONSENT_REQUEST, CUSTOS_ROLE_SYSTEM, FHIR_RESOURCE_TYPES, parseCoding, V3_ACT_CODE, V3_ACT_REASON } from './request.js';
import { ValidationError } from '../errors.js';

const NOW = Date.parse('2030-06-15T12:00:00.000Z');

function lookup(provision: Provision): PolicyLookup {
  const policy: ConsentPolicy = {
    schema: POLICY_SCHEMA,
    policyId: 'pol_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    version: 1,
    subject: 'cd'.repeat(32),
    revocable: true,
    revoked: false,
    period: { start: '2030-01-01T00:00:00.000Z' },
    provision,
    previous: null,
    recordedAt: '2030-01-01T00:00:00.000Z',
    recordedBy: { actor: 'po-1', role: 'privacy_officer' },
  };
  return { kind: 'found', policy, hash: 'ab'.repeat(32) };
}
const effect = (p: Provision, r: ConsentRequest, now = NOW) => evaluateConsent(lookup(p), r, now).effect;

describe('parseCoding and CONSENT_REQUEST', () => {
  it('gives a bare code its attribute’s default system', () => {
    assert.deepEqual(parseCoding('TREAT', 'purpose'), { system: V3_ACT_REASON, code: 'TREAT' });
    assert.deepEqual(parseCoding('nurse', 'role'), { system: CUSTOS_ROLE_SYSTEM, code: 'nurse' });
    assert.deepEqual(parseCoding('access', 'action'), { system: CONSENT_ACTION, code: 'access' });
    assert.deepEqual(parseCoding('Observation', 'class'), { system: FHIR_RESOURCE_TYPES, code: 'Observation' });
    assert.deepEqual(parseCoding('PSY', 'securityLabel'), { system: V3_ACT_CODE, code: 'PSY' });
    assert.deepEqual(parseCoding('http://loinc.org|34133-9', 'code'), { system: 'http://loinc.org', code: '34133-9' });
  });

  it('refuses a bare code of the data (it has no default system), and malformed codings', () => {
    for (const [value, attr] of [
      ['34133-9', 'code'],
      ['not a uri|X', 'purpose'],
      ['http://x|', 'purpose'],
      ['http://x|a  b', 'purpose'],
      ['', 'role'],
      ['a b', 'role'],
      [`http://x/${'a'.repeat(260)}|X`, 'purpose'],
      [`http://x|${'c'.repeat(65)}`, 'purpose'],
    ] as const) {
      assert.throws(
        () => parseCoding(value, attr),
        (e: unknown) => e instanceof ValidationError && e.code === 'VALIDATION_FAILED',
        value,
      );
    }
  });

  it('accepts a full request and normalises its data time; refuses unknown shapes', () => {
    const r = v.parse(CONSENT_REQUEST, {
      purpose: 'TREAT',
      role: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType|PRCP',
      actorReference: 'Practitioner/f204',
      action: 'access',
      class: 'Observation',
      code: 'http://loinc.org|34133-9',
      securityLabels: ['PSY', 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R'],
      dataTime: '2016-01-01T02:00:00+02:00',
    });
    assert.equal(r.dataTime, '2016-01-01T00:00:00.000Z');
    for (const bad of [
      { purpose: 'TREAT' },
      { purpose: 'TREAT', role: 'nurse', code: '34133-9' },
      { purpose: 'TREAT', role: 'nurse', actorReference: 'a b' },
      { purpose: 'TREAT', role: 'nurse', dataTime: '2016' },
    ]) {
      assert.equal(v.safeParse(CONSENT_REQUEST, bad).success, false, JSON.stringify(bad));
    }
  });

  it('PROVISION_PATH_RE accepts native and FHIR paths, and nothing else', () => {
    for (const p of ['provision', 'provision.provisions[1]', 'provision.provisions[0].provisions[12]', 'provision.provision[1]', 'provision[0]', 'provision[2].provision[0].provision[1]', 'decision'])
      assert.ok(PROVISION_PATH_RE.test(p), p);
    for (const p of ['', 'provisions[0]', 'provision.provision[01]', 'provision.provisions[0].provision[1]', 'decision.provision[0]', 'provision[0].provisions[0]', 'Consent.provision'])
      assert.ok(!PROVISION_PATH_RE.test(p), p);
  });

  it('the stored-policy schema accepts the new provision attributes and refuses a bad path or coding', () => {
    const good = (
      lookup({ type: 'deny', path: 'provision', actors: [{ role: 'PRCP', reference: 'Organization/f001' }], codes: ['http://loinc.org|1-8'], dataPeriod: { start: '2015-01-01T00:00:00Z' } }) as {
        policy: ConsentPolicy;
      }
    ).policy;
    assert.equal(parseStoredPolicy(good).provision.dataPeriod?.start, '2015-01-01T00:00:00.000Z');
    for (const provision of [
      { type: 'deny', path: 'provision.x' },
      { type: 'deny', codes: ['1-8'] },
      { type: 'deny', actors: [{}] },
      { type: 'deny', classes: ['a b'] },
    ]) {
      assert.throws(() => parseStoredPolicy({ ...good, provision }), ValidationError, JSON.stringify(provision));
    }
  });
});

describe('evaluateConsent: bare codes and SYSTEM|CODE of the default system are the same coding', () => {
  const provisions: Provision[] = [
    { type: 'permit', purposes: ['TREAT'], roles: ['nurse'], actions: ['access'], classes: ['Observation'], provisions: [{ type: 'deny', securityLabels: ['PSY'] }] },
    {
      type: 'permit',
      purposes: [`${V3_ACT_REASON}|TREAT`],
      roles: [`${CUSTOS_ROLE_SYSTEM}|nurse`],
      actions: [`${CONSENT_ACTION}|access`],
      classes: [`${FHIR_RESOURCE_TYPES}|Observation`],
      provisions: [{ type: 'deny', securityLabels: [`${V3_ACT_CODE}|PSY`] }],
    },
  ];
  const requests: [ConsentRequest, 'permit' | 'deny'][] = [
    [{ purpose: 'TREAT', role: 'nurse', action: 'access', class: 'Observation' }, 'permit'],
    [{ purpose: `${V3_ACT_REASON}|TREAT`, role: `${CUSTOS_ROLE_SYSTEM}|nurse`, action: `${CONSENT_ACTION}|access`, class: `${FHIR_RESOURCE_TYPES}|Observation` }, 'permit'],
    [{ purpose: 'TREAT', role: 'nurse', action: 'access', class: 'Observation', securityLabels: ['PSY'] }, 'deny'],
    [{ purpose: 'TREAT', role: 'nurse', action: 'access', class: 'Observation', securityLabels: [`${V3_ACT_CODE}|PSY`] }, 'deny'],
    [{ purpose: 'HRESCH', role: 'nurse', action: 'access', class: 'Observation' }, 'deny'],
  ];
  for (const [i, p] of provisions.entries()) {
    for (const [req, want] of requests) it(`policy ${i}: ${JSON.stringify(req)} -> ${want}`, () => assert.equal(effect(p, req), want));
  }
});

describe('evaluateConsent: fail closed on what the request does not state', () => {
  const base = { purpose: 'TREAT', role: 'nurse' };
  const cases: [string, Omit<Provision, 'type'>, ConsentRequest][] = [
    ['an actor reference', { actors: [{ reference: 'Practitioner/f204' }] }, base],
    ['an action', { actions: ['access'] }, base],
    ['a class', { classes: ['Observation'] }, base],
    ['a code', { codes: ['http://loinc.org|34133-9'] }, base],
    ['a data time', { dataPeriod: { start: '2015-01-01T00:00:00.000Z' } }, base],
    ['a role of another system', { roles: ['http://terminology.hl7.org/CodeSystem/v3-ParticipationType|PRCP'] }, base],
    ['a purpose of another system', { purposes: ['urn:example:purposes|care'] }, base],
    ['a class of another system', { classes: ['urn:ietf:bcp:13|application/hl7-cda+xml'] }, { ...base, class: 'Observation' }],
    ['an actor role of another system', { actors: [{ role: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType|PRCP' }] }, base],
  ];
  for (const [what, constraint, req] of cases) {
    it(`${what}: a nested deny on it denies, a nested permit on it does not permit`, () => {
      const denyInside: Provision = { type: 'permit', provisions: [{ type: 'deny', ...constraint }] };
      const d = evaluateConsent(lookup(denyInside), req, NOW);
      assert.equal(d.effect, 'deny');
      assert.equal(d.provision, 'provision.provisions[0]');
      assert.match(d.explanation, /fail closed/);
      const permitInside: Provision = { type: 'deny', provisions: [{ type: 'permit', ...constraint }] };
      assert.equal(effect(permitInside, req), 'deny');
    });
    it(`${what}: a root permit on it does not permit; a root deny on it denies even with an exception`, () => {
      assert.equal(effect({ type: 'permit', ...constraint }, req), 'deny');
      assert.equal(effect({ type: 'deny', ...constraint, provisions: [{ type: 'permit' }] }, req), 'deny');
    });
  }

  it('a deny that matches only for want of an attribute decides by itself: its exceptions are not consulted', () => {
    const p: Provision = { type: 'permit', provisions: [{ type: 'deny', classes: ['Observation'], provisions: [{ type: 'permit', purposes: ['TREAT'] }] }] };
    assert.equal(effect(p, { ...base, class: 'Observation' }), 'permit', 'the exception applies when the class is stated');
    assert.equal(effect(p, base), 'deny', 'without the class the deny may apply and its exception may not');
  });

  it('absent security labels mean none: a deny on PSY does not apply to unlabelled data', () => {
    const p: Provision = { type: 'permit', provisions: [{ type: 'deny', securityLabels: ['PSY', 'HIV'] }] };
    assert.equal(effect(p, base), 'permit');
    assert.equal(effect(p, { ...base, securityLabels: ['http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N', 'HIV'] }), 'deny');
  });

  it('a stated attribute of the provision’s system that differs does not match (a definite no, not an unknown)', () => {
    const p: Provision = { type: 'permit', provisions: [{ type: 'deny', classes: ['Observation'] }] };
    assert.equal(effect(p, { ...base, class: 'MedicationRequest' }), 'permit');
    assert.equal(effect(p, { ...base, class: 'Observation' }), 'deny');
  });

  it('actors: any actor matches; an actor’s role and reference must both match', () => {
    const p: Provision = {
      type: 'permit',
      provisions: [{ type: 'deny', actors: [{ role: 'nurse', reference: 'Practitioner/f204' }, { reference: 'Organization/f001' }] }],
    };
    assert.equal(effect(p, { ...base, actorReference: 'Practitioner/f204' }), 'deny');
    assert.equal(effect(p, { ...base, role: 'dermatologist', actorReference: 'Practitioner/f204' }), 'permit');
    assert.equal(effect(p, { ...base, role: 'dermatologist', actorReference: 'Organization/f001' }), 'deny');
    assert.equal(effect(p, { ...base, actorReference: 'Practitioner/other' }), 'permit');
  });

  it('dataPeriod bounds the time of the data, inclusive at both ends', () => {
    const p: Provision = { type: 'permit', provisions: [{ type: 'deny', dataPeriod: { start: '2015-01-01T00:00:00.000Z', end: '2015-02-01T00:00:00.000Z' } }] };
    assert.equal(effect(p, { ...base, dataTime: '2014-12-31T23:59:59.999Z' }), 'permit');
    assert.equal(effect(p, { ...base, dataTime: '2015-01-01T00:00:00.000Z' }), 'deny');
    assert.equal(effect(p, { ...base, dataTime: '2015-02-01T00:00:00.000Z' }), 'deny');
    assert.equal(effect(p, { ...base, dataTime: '2015-02-01T00:00:00.001Z' }), 'permit');
  });
});

describe('evaluateConsent: deny overrides among matching siblings, whatever their order (property, new attributes)', () => {
  const LABELS = ['PSY', 'HIV', 'ETH', 'SUD'];
  const CLASSES = ['Observation', 'MedicationRequest'];
  const leaf = fc.record(
    {
      type: fc.constantFrom<'permit' | 'deny'>('permit', 'deny'),
      securityLabels: fc.subarray(LABELS, { minLength: 1 }),
      classes: fc.subarray(CLASSES, { minLength: 1 }),
      actors: fc.subarray([{ reference: 'Practitioner/a' }, { reference: 'Practitioner/b' }, { role: 'nurse' }], { minLength: 1 }),
    },
    { requiredKeys: ['type'] },
  );
  const request = fc.record(
    {
      purpose: fc.constant('TREAT'),
      role: fc.constantFrom('nurse', 'dermatologist'),
      actorReference: fc.constantFrom('Practitioner/a', 'Practitioner/b'),
      class: fc.constantFrom(...CLASSES),
      securityLabels: fc.subarray(LABELS),
    },
    { requiredKeys: ['purpose', 'role'] },
  );
  it('the effect is the same for every order of the siblings, and a matching deny always wins', () => {
    fc.assert(
      fc.property(fc.constantFrom<'permit' | 'deny'>('permit', 'deny'), fc.array(leaf, { minLength: 1, maxLength: 5 }), request, (rootType, children, req) => {
        const a = evaluateConsent(lookup({ type: rootType, provisions: children as Provision[] }), req, NOW);
        const b = evaluateConsent(lookup({ type: rootType, provisions: [...children].reverse() as Provision[] }), req, NOW);
        assert.equal(a.effect, b.effect);
        assert.equal(a.reason, b.reason);
        if (a.effect === 'permit') assert.ok(PROVISION_PATH_RE.test(a.provision!));
      }),
      { seed: 12, numRuns: 500 },
    );
  });
});
