/**
 * The role mapping (a role's FHIR codings): the role table file's two forms and their validation,
 * and the engine's matching of a role constraint through the role or any coding it is mapped to,
 * failing closed only when none of them is in a system the constraint uses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as v from 'valibot';
import { ValidationError } from './errors.js';
import { DEFAULT_ROLES } from './vocabulary.js';
import { compileRoleCodings, MAX_ROLE_CODINGS, parseRoleConfig } from './role-codings.js';
import { evaluateConsent, type ConsentRequest, type PolicyLookup } from './consent/evaluate.js';
import { POLICY_SCHEMA, type ConsentPolicy, type Provision } from './consent/policy.js';
import { CONSENT_REQUEST } from './consent/request.js';

const SCT = 'http://snomed.info/sct';
const DERMATOLOGIST = `${SCT}|18803008`;
const GP = `${SCT}|446050000`;
const ROLE_CODE = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
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
const decide = (p: Provision, r: ConsentRequest) => evaluateConsent(lookup(p), r, NOW);

const refusedWith = (path: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof ValidationError, String(e));
  assert.equal(e.code, 'VALIDATION_FAILED');
  assert.equal(e.issues[0]?.path, path);
  assert.match(e.message, message);
  return true;
};

describe('parseRoleConfig: the role table file', () => {
  it('reads the plain form as before, with no mapping', () => {
    const table = { dermatologist: ['access', 'inference'], nurse: ['access'] };
    assert.deepEqual(parseRoleConfig(table), { roles: table });
    // A role may even be called "roles" in the plain form: its value is a list.
    assert.deepEqual(parseRoleConfig({ roles: ['access'] }), { roles: { roles: ['access'] } });
  });

  it('reads the form with a mapping; roles may be left out (the default table)', () => {
    const c = parseRoleConfig({ roles: { dermatologist: ['access'], nurse: ['access'] }, roleCodings: { dermatologist: [DERMATOLOGIST, `${ROLE_CODE}|DERM`] } });
    assert.deepEqual(c.roles, { dermatologist: ['access'], nurse: ['access'] });
    assert.deepEqual(c.roleCodings, { dermatologist: [DERMATOLOGIST, `${ROLE_CODE}|DERM`] });
    assert.ok(Object.isFrozen(c.roleCodings!['dermatologist']));
    assert.equal(parseRoleConfig({ roleCodings: { physician: [GP] } }).roles, DEFAULT_ROLES);
    assert.deepEqual(parseRoleConfig({ roles: { nurse: ['access'] } }), { roles: { nurse: ['access'] } });
  });

  const bad: [string, unknown, string, RegExp][] = [
    ['not an object', [], '$', /expected an object/],
    ['an unknown permission (plain form)', { nurse: ['fly'] }, 'nurse', /role nurse: expected a list of permissions/],
    ['an unknown key beside roles', { roles: { nurse: ['access'] }, roleCoding: {} }, 'roleCoding', /unknown key "roleCoding"/],
    ['roles not an object', { roles: 'nurse', roleCodings: {} }, 'roles', /expected an object/],
    ['an unknown permission (mapping form)', { roles: { nurse: ['fly'] }, roleCodings: {} }, 'roles.nurse', /role nurse: expected a list of permissions/],
    [
      'a mapped role not in the table',
      { roles: { nurse: ['access'] }, roleCodings: { dermatologist: [DERMATOLOGIST] } },
      'roleCodings.dermatologist',
      /"dermatologist" is not a role of the role table/,
    ],
    ['the operator role (not in the table)', { roleCodings: { operator: [GP] } }, 'roleCodings.operator', /not a role of the role table/],
    ['a bare code', { roleCodings: { dermatologist: ['18803008'] } }, 'roleCodings.dermatologist.0', /role dermatologist: "18803008" is not a coding SYSTEM\|CODE/],
    ['a malformed coding', { roleCodings: { nurse: [`${SCT}|a  b`] } }, 'roleCodings.nurse.0', /role nurse: "http:\/\/snomed.info\/sct\|a {2}b" is not a coding/],
    ['a system that is not a URI', { roleCodings: { nurse: ['snomed|224535009'] } }, 'roleCodings.nurse.0', /is not a coding/],
    ['a number', { roleCodings: { nurse: [224535009] } }, 'roleCodings.nurse.0', /role nurse: number is not a coding/],
    ['a Custos role (privilege by alias)', { roleCodings: { nurse: ['urn:custos:role|dermatologist'] } }, 'roleCodings.nurse.0', /is a Custos role/],
    ['a coding twice', { roleCodings: { dermatologist: [DERMATOLOGIST, DERMATOLOGIST] } }, 'roleCodings.dermatologist.1', /listed twice/],
    ['an empty list', { roleCodings: { dermatologist: [] } }, 'roleCodings.dermatologist', /non-empty list/],
    ['a list that is not one', { roleCodings: { dermatologist: DERMATOLOGIST } }, 'roleCodings.dermatologist', /non-empty list/],
    ['too many codings', { roleCodings: { nurse: Array.from({ length: MAX_ROLE_CODINGS + 1 }, (_, i) => `${SCT}|${i}`) } }, 'roleCodings.nurse', /at most 64/],
    ['roleCodings not an object', { roles: { nurse: ['access'] }, roleCodings: [GP] }, 'roleCodings', /expected an object/],
  ];
  for (const [what, json, path, message] of bad) {
    it(`refuses ${what} with VALIDATION_FAILED naming ${path}`, () => {
      assert.throws(() => parseRoleConfig(json, 'roles file r.json'), refusedWith(path, message));
      assert.throws(() => parseRoleConfig(json, 'roles file r.json'), /^ValidationError: roles file r\.json: /);
    });
  }

  it('compileRoleCodings: nothing to map is an empty mapping; a prototype name is not a role', () => {
    assert.equal(compileRoleCodings(undefined, ['nurse']).size, 0);
    assert.throws(() => compileRoleCodings(JSON.parse('{"__proto__": ["http://snomed.info/sct|1"]}'), ['nurse']), refusedWith('roleCodings.__proto__', /not a role/));
    assert.throws(() => compileRoleCodings({ constructor: [GP] }, ['nurse']), refusedWith('roleCodings.constructor', /not a role/));
  });
});

describe('the request schema refuses roleCodings', () => {
  it('CONSENT_REQUEST: a caller cannot say which codings its role is known by', () => {
    const r = v.safeParse(CONSENT_REQUEST, { purpose: 'TREAT', role: 'nurse', roleCodings: [DERMATOLOGIST] });
    assert.equal(r.success, false);
    assert.match(r.issues![0]!.message, /role table/);
    assert.equal(v.safeParse(CONSENT_REQUEST, { purpose: 'TREAT', role: 'nurse' }).success, true);
  });
});

describe('evaluateConsent with roleCodings', () => {
  // Deny by default; permit treatment by dermatologists (SNOMED CT), as a FHIR Consent names them.
  const permitDerm: Provision = { type: 'deny', provisions: [{ type: 'permit', purposes: ['TREAT'], actors: [{ role: DERMATOLOGIST }] }] };
  const derm = { purpose: 'TREAT', role: 'dermatologist' };

  it('without a mapping, a Custos role never satisfies a permit on a SNOMED role: denied, fail closed, and the explanation says which system', () => {
    const d = decide(permitDerm, derm);
    assert.equal(d.effect, 'deny');
    assert.equal(d.provision, 'provision');
    // The root deny decides: its exception does not apply, for want of the role in SNOMED CT.
    assert.equal(d.reason, 'DENIED_BY_PROVISION');
    assert.match(d.explanation, /provision\.provisions\[0\] does not apply: .*\(fail closed\): the role dermatologist has no coding in http:\/\/snomed\.info\/sct/);
  });

  it('with the role mapped to the SNOMED code, the permit applies; a role mapped elsewhere is denied (a plain no)', () => {
    const d = decide(permitDerm, { ...derm, roleCodings: [`${ROLE_CODE}|DERM`, DERMATOLOGIST] });
    assert.equal(d.effect, 'permit');
    assert.equal(d.provision, 'provision.provisions[0]');
    assert.equal(decide(permitDerm, { ...derm, roleCodings: [GP] }).effect, 'deny');
    // An empty mapping is no mapping.
    assert.equal(decide(permitDerm, { ...derm, roleCodings: [] }).effect, 'deny');
  });

  it('a root permit on a FHIR role: ROLE_NOT_ALLOWED, fail closed, naming the system, until the role is mapped', () => {
    const p: Provision = { type: 'permit', purposes: ['TREAT'], roles: [DERMATOLOGIST] };
    const d = decide(p, derm);
    assert.equal(d.reason, 'ROLE_NOT_ALLOWED');
    assert.match(d.explanation, /fail closed: the role dermatologist has no coding in http:\/\/snomed\.info\/sct/);
    assert.equal(decide(p, { ...derm, roleCodings: [DERMATOLOGIST] }).effect, 'permit');
    const other = decide(p, { ...derm, roleCodings: [GP] });
    assert.equal(other.reason, 'ROLE_NOT_ALLOWED');
    assert.doesNotMatch(other.explanation, /fail closed/, 'a coding of the constraint’s system that differs is a plain no');
  });

  it('a deny on a FHIR role: applies when unmapped (fail closed) and when mapped to it; not when mapped to another code of its system', () => {
    const p: Provision = { type: 'permit', purposes: ['TREAT'], provisions: [{ type: 'deny', roles: [GP] }] };
    const unmapped = decide(p, derm);
    assert.equal(unmapped.effect, 'deny');
    assert.match(unmapped.explanation, /fail closed.*the role dermatologist has no coding in http:\/\/snomed\.info\/sct/);
    assert.equal(decide(p, { ...derm, roleCodings: [GP] }).effect, 'deny');
    assert.equal(decide(p, { ...derm, roleCodings: [DERMATOLOGIST] }).effect, 'permit');
    // A mapping only into another system still leaves the deny's system unstated.
    const elsewhere = decide(p, { ...derm, roleCodings: [`${ROLE_CODE}|DERM`] });
    assert.equal(elsewhere.effect, 'deny');
    assert.match(elsewhere.explanation, /the role dermatologist and the codings it is mapped to have no coding in http:\/\/snomed\.info\/sct/);
  });

  it('a constraint on Custos roles and FHIR roles: either matches; the Custos role is stated for it', () => {
    const p: Provision = { type: 'deny', provisions: [{ type: 'permit', actors: [{ role: 'nurse' }, { role: GP }] }] };
    assert.equal(decide(p, { purpose: 'TREAT', role: 'nurse' }).effect, 'permit');
    assert.equal(decide(p, { purpose: 'TREAT', role: 'physician', roleCodings: [GP] }).effect, 'permit');
    assert.equal(decide(p, { purpose: 'TREAT', role: 'dermatologist', roleCodings: [DERMATOLOGIST] }).effect, 'deny');
    const deny: Provision = { type: 'permit', provisions: [{ type: 'deny', roles: ['nurse', GP] }] };
    // The Custos system is one the deny uses, so the role is stated: a plain no, not fail closed.
    assert.equal(decide(deny, { purpose: 'TREAT', role: 'dermatologist' }).effect, 'permit');
  });

  it('an actor with a role and a reference needs both: the mapping does not stand in for the reference', () => {
    const p: Provision = { type: 'deny', provisions: [{ type: 'permit', actors: [{ role: DERMATOLOGIST, reference: 'Practitioner/p1' }] }] };
    const mapped = { ...derm, roleCodings: [DERMATOLOGIST] };
    assert.equal(decide(p, { ...mapped, actorReference: 'Practitioner/p1' }).effect, 'permit');
    assert.equal(decide(p, mapped).effect, 'deny');
    assert.equal(decide(p, { ...mapped, actorReference: 'Practitioner/p2' }).effect, 'deny');
  });

  it('leaves decisions without a mapping as they were (every request of a small table)', () => {
    const provisions: Provision[] = [
      permitDerm,
      { type: 'permit', purposes: ['TREAT'], roles: ['dermatologist'] },
      { type: 'permit', purposes: ['TREAT'], provisions: [{ type: 'deny', actors: [{ role: GP }] }] },
    ];
    for (const p of provisions) {
      for (const role of ['dermatologist', 'nurse', DERMATOLOGIST, GP]) {
        const r = { purpose: 'TREAT', role };
        assert.deepEqual(decide(p, { ...r, roleCodings: [] }), decide(p, r));
      }
    }
    // A SYSTEM|CODE role as given decides as its mapped twin does.
    assert.equal(decide(permitDerm, { purpose: 'TREAT', role: DERMATOLOGIST }).effect, 'permit');
  });
});
