/**
 * The role mapping end to end: a FHIR Consent (R5, written here) that denies by default and permits
 * treatment by dermatologists, named by their SNOMED CT code, and research by the hospital's data
 * scientists, named by a code of the hospital's own system.
 * - Without a mapping every recorded decision under it is denied (fail closed; the explanation says
 *   which role and system); the Custos role cannot satisfy a permit on a FHIR role.
 * - With the mapping (dermatologist → SNOMED 18803008, ml_engineer → the hospital's code), a
 *   dermatologist's access and inference and an ML engineer's training are permitted, a nurse's access
 *   is denied, and break-glass is decided with the mapping too.
 * - The mapping comes only from configuration: a request body, a library call or a CLI flag that
 *   carries `roleCodings` is refused, and nothing is written.
 * - A bad mapping (library option, roles file) is VALIDATION_FAILED naming the role and coding.
 * Through the library, HTTP (createServerEnv with the mapping) and the CLI (`--roles FILE`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../src/core/errors.js';
import { ConsentDeniedError, Governance, type GovernanceOptions } from '../src/service/governance.js';
import { assertError, assertOk, callIn, ensureBuilt, EXIT, makeTempDir, okJson } from './helpers/cli.js';
import { useTempRoot, type GovernanceFixture } from './helpers/fixtures.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';

const SCT = 'http://snomed.info/sct';
const SCT_DERMATOLOGIST = `${SCT}|18803008`;
const HOSPITAL_ROLES = 'https://hospital.example.org/fhir/CodeSystem/staff-roles';
const DATA_SCIENTIST = `${HOSPITAL_ROLES}|data-scientist`;
const V3_ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const EXIT_CONSENT = 7;

/** The deployment's mapping: which FHIR codings its roles are known by. */
const ROLE_CODINGS = { dermatologist: [SCT_DERMATOLOGIST], ml_engineer: [DATA_SCIENTIST] };

/** R5: deny by default; permit treatment (and emergency treatment) by dermatologists, research by data scientists. */
function consentBytes(value: string): Buffer {
  const coding = (c: string) => ({ system: c.slice(0, c.indexOf('|')), code: c.slice(c.indexOf('|') + 1) });
  const r5 = {
    resourceType: 'Consent',
    id: value,
    identifier: [{ system: 'urn:example:consents', value }],
    status: 'active',
    subject: { reference: 'Patient/p1' },
    date: '2024-01-01',
    decision: 'deny',
    provision: [
      {
        purpose: [
          { system: V3_ACT_REASON, code: 'TREAT' },
          { system: V3_ACT_REASON, code: 'ETREAT' },
        ],
        actor: [{ role: { coding: [coding(SCT_DERMATOLOGIST)] } }],
      },
      { purpose: [{ system: V3_ACT_REASON, code: 'HRESCH' }], actor: [{ role: { coding: [coding(DATA_SCIENTIST)] } }] },
    ],
  };
  return Buffer.from(JSON.stringify(r5, null, 2), 'utf8');
}

const D1 = createHash('sha256').update('image').digest('hex');
const D2 = createHash('sha256').update('report').digest('hex');
const OFFICER = { id: 'po-1', role: 'privacy_officer' };
const DERM = { id: 'dr-derm', role: 'dermatologist' };
const NURSE = { id: 'nurse-1', role: 'nurse' };
const ENGINEER = { id: 'eng-7', role: 'ml_engineer' };
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'a'.repeat(64), framework: 'pytorch' };

const access = (policyId: string, actor = DERM, over: Record<string, unknown> = {}) => ({ actor, purpose: 'TREAT', policyId, artifact: { uri: 's3://ehr/p1/img.png', digest: D1 }, ...over });
const inference = (policyId: string) => ({
  actor: DERM,
  purpose: 'TREAT',
  policyId,
  input: { uri: 's3://ehr/p1/img.png', digest: D1 },
  outputs: [{ name: 'report_json', uri: 's3://ehr/p1/report.json', digest: D2 }],
  pipeline: { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' },
  model: MODEL,
});
const training = (policyId: string) => ({
  actor: ENGINEER,
  purpose: 'HRESCH',
  dataset: { uri: 's3://research/cohort.parquet', digest: D1, type: 'identified' as const },
  policyIds: [policyId],
  manifest: { name: 'finetune-1', seed: 7 },
  modelBefore: MODEL,
  modelAfter: { ...MODEL, modelVersion: '0.9.4', weightsHash: 'b'.repeat(64) },
  computeBackend: 'cpu',
});

async function denied(p: Promise<unknown>): Promise<ConsentDeniedError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConsentDeniedError, String(err));
    return err;
  }
  return assert.fail('expected CONSENT_DENIED');
}

function refused(path: string, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.code, 'VALIDATION_FAILED');
    assert.ok(
      e.issues.some((i) => i.path === path || i.path.endsWith(`.${path}`)),
      JSON.stringify(e.issues),
    );
    assert.match(e.message, message);
    return true;
  };
}

async function entryType(f: GovernanceFixture, index: number): Promise<{ type: string; payload: Record<string, unknown> }> {
  return JSON.parse((await f.log.reader.getEntry(index)).bytes.toString('utf8')) as { type: string; payload: Record<string, unknown> };
}

describe('role mapping: the library', () => {
  const root = useTempRoot('role-codings');

  async function openWith(governance: Omit<GovernanceOptions, 'log'> = {}): Promise<{ f: GovernanceFixture; policyId: string }> {
    const f = await root.openGovernance({ governance });
    const r = await f.gov.importFhirConsent(consentBytes('c-lib'), OFFICER);
    return { f, policyId: r.policy.policyId };
  }

  it('without a mapping, every recorded decision under a permit on FHIR roles is denied, fail closed, saying which role and system', async () => {
    const { f, policyId } = await openWith();
    const a = await denied(f.gov.recordDataAccess(access(policyId)));
    assert.equal(a.decision.reason, 'DENIED_BY_PROVISION');
    assert.equal(a.decision.provision, 'decision');
    assert.match(a.decision.explanation, /provision\[0\] does not apply: .*\(fail closed\): the role dermatologist has no coding in http:\/\/snomed\.info\/sct/);
    assert.equal((await entryType(f, a.event.index)).type, 'CONSENT_DENIED');
    await denied(f.gov.recordInference(inference(policyId)));
    const t = await denied(f.gov.recordTraining(training(policyId)));
    assert.match(t.decision.explanation, /the role ml_engineer has no coding in https:\/\/hospital\.example\.org/);
    // consent check: a bare role is denied the same way; the FHIR coding given as such is permitted.
    assert.equal((await f.gov.checkConsent(policyId, { purpose: 'TREAT', role: 'dermatologist' })).effect, 'deny');
    assert.equal((await f.gov.checkConsent(policyId, { purpose: 'TREAT', role: SCT_DERMATOLOGIST })).effect, 'permit');
  });

  it('with the mapping: a dermatologist’s access and inference and an engineer’s training are permitted, a nurse’s access denied', async () => {
    const { f, policyId } = await openWith({ roleCodings: ROLE_CODINGS });
    const a = await f.gov.recordDataAccess(access(policyId));
    assert.deepEqual([a.decision.effect, a.decision.provision], ['permit', 'provision[0]']);
    const e = await entryType(f, a.event.index);
    // The log names the Custos role as before: nothing new.
    assert.deepEqual([e.type, e.payload['role'], e.payload['provision']], ['DATA_ACCESSED', 'dermatologist', 'provision[0]']);
    assert.equal(Object.hasOwn(e.payload, 'roleCodings'), false);
    assert.equal((await f.gov.recordInference(inference(policyId))).decision.effect, 'permit');
    assert.deepEqual(
      (await f.gov.recordTraining(training(policyId))).decisions.map((d) => d.provision),
      ['provision[1]'],
    );
    const n = await denied(f.gov.recordDataAccess(access(policyId, NURSE)));
    assert.equal(n.decision.reason, 'DENIED_BY_PROVISION');
    // The engineer is mapped, but to the research permit only.
    await denied(f.gov.recordDataAccess(access(policyId, { id: 'eng-7', role: 'ml_engineer' })));
    // consent check: a bare role takes its mapping; a SYSTEM|CODE role is decided as given.
    assert.equal((await f.gov.checkConsent(policyId, { purpose: 'TREAT', role: 'dermatologist' })).effect, 'permit');
    assert.equal((await f.gov.checkConsent(policyId, { purpose: 'TREAT', role: 'nurse' })).effect, 'deny');
    assert.equal((await f.gov.checkConsent(policyId, { purpose: 'TREAT', role: `urn:custos:role|dermatologist` })).effect, 'deny');
  });

  it('break-glass is decided with the mapping: ETREAT by a mapped dermatologist is permitted outright, unmapped it overrides a denial', async () => {
    const bg = { purpose: 'ETREAT', justification: 'URGENT_TREATMENT' };
    const mapped = await openWith({ roleCodings: ROLE_CODINGS });
    const ok = await mapped.f.gov.recordDataAccess(access(mapped.policyId, DERM, bg));
    assert.equal(ok.breakGlass, undefined);
    assert.equal((await entryType(mapped.f, ok.event.index)).type, 'DATA_ACCESSED');
    const plain = await openWith();
    const over = await plain.f.gov.recordDataAccess(access(plain.policyId, DERM, bg));
    assert.equal(over.breakGlass?.justification, 'URGENT_TREATMENT');
    assert.equal((await entryType(plain.f, over.event.index)).type, 'BREAK_GLASS');
  });

  it('a caller cannot give roleCodings: access, inference, training and check refuse them, and nothing is written', async () => {
    const { f, policyId } = await openWith();
    const size = f.log.size;
    const inject = { roleCodings: [SCT_DERMATOLOGIST] } as never;
    await assert.rejects(f.gov.recordDataAccess({ ...access(policyId), ...(inject as object) }), refused('roleCodings', /role table/));
    await assert.rejects(f.gov.recordInference({ ...inference(policyId), ...(inject as object) }), refused('roleCodings', /role table/));
    await assert.rejects(f.gov.recordTraining({ ...training(policyId), ...(inject as object) }), refused('roleCodings', /role table/));
    await assert.rejects(f.gov.checkConsent(policyId, { purpose: 'TREAT', role: 'nurse', ...(inject as object) }), refused('roleCodings', /role table/));
    assert.equal(f.log.size, size);
  });

  it('a bad mapping is refused at open with VALIDATION_FAILED naming the role and coding', async () => {
    const f = await root.openLog();
    const open = (roleCodings: unknown) => Governance.open({ log: f.log, roleCodings: roleCodings as never });
    await assert.rejects(open({ surgeon: [SCT_DERMATOLOGIST] }), refused('roleCodings.surgeon', /"surgeon" is not a role of the role table/));
    await assert.rejects(open({ nurse: ['224535009'] }), refused('roleCodings.nurse.0', /role nurse: "224535009" is not a coding SYSTEM\|CODE/));
    await assert.rejects(open({ nurse: ['urn:custos:role|dermatologist'] }), refused('roleCodings.nurse.0', /is a Custos role/));
    // Against the deployment's own table: a role it defines may be mapped.
    const g = await Governance.open({ log: f.log, roles: { surgeon: ['access'] }, roleCodings: { surgeon: [`${SCT}|304292004`] } });
    assert.ok(g.vocabulary.roles.has('surgeon'));
  });
});

describe('role mapping: HTTP', () => {
  let mapped: ServerEnv;
  let plain: ServerEnv;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const importConsent = async (env: ServerEnv, value: string): Promise<string> => {
    const res = await env.app.inject({
      method: 'POST',
      url: '/fhir/Consent',
      headers: { ...bearer(env.tokens.privacy_officer), 'content-type': 'application/fhir+json' },
      payload: consentBytes(value),
    });
    assert.equal(res.statusCode, 201, res.body);
    return (res.json() as { policyId: string }).policyId;
  };
  const post = (env: ServerEnv, token: string, url: string, payload: unknown) => env.app.inject({ method: 'POST', url, headers: bearer(token), payload: payload as Record<string, unknown> });
  const body = (policyId: string, over: Record<string, unknown> = {}) => ({ purpose: 'TREAT', policyId, artifact: { uri: 's3://ehr/p1/img.png', digest: D1 }, ...over });

  before(async () => {
    mapped = await createServerEnv({}, { governance: { roleCodings: ROLE_CODINGS } });
    plain = await createServerEnv();
  });
  after(async () => {
    await mapped?.close();
    await plain?.close();
  });

  it('with the mapping: a dermatologist’s access is 201, a nurse’s 403 CONSENT_DENIED; without it, the dermatologist’s is 403 (fail closed)', async () => {
    const id = await importConsent(mapped, 'c-http');
    const ok = await post(mapped, mapped.tokens.dermatologist, '/api/v1/access', body(id));
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal((ok.json() as { decision: { provision: string } }).decision.provision, 'provision[0]');
    const nurse = await post(mapped, mapped.tokens.nurse, '/api/v1/access', body(id));
    assert.equal(nurse.statusCode, 403);
    assert.equal((nurse.json() as { error: { code: string } }).error.code, 'CONSENT_DENIED');

    const other = await importConsent(plain, 'c-http');
    const no = await post(plain, plain.tokens.dermatologist, '/api/v1/access', body(other));
    assert.equal(no.statusCode, 403);
    assert.match((no.json() as { error: { message: string } }).error.message, /fail closed.*the role dermatologist has no coding in http:\/\/snomed\.info\/sct/);
  });

  it('POST /api/v1/consents/:id/check: a bare role takes the mapping; a body cannot carry roleCodings (400, nothing written)', async () => {
    const id = await importConsent(mapped, 'c-check');
    const check = async (payload: Record<string, unknown>) => post(mapped, mapped.tokens.privacy_officer, `/api/v1/consents/${id}/check`, payload);
    assert.equal(((await check({ purpose: 'TREAT', role: 'dermatologist' })).json() as { effect: string }).effect, 'permit');
    assert.equal(((await check({ purpose: 'TREAT', role: 'nurse' })).json() as { effect: string }).effect, 'deny');
    const size = mapped.log.size;
    const res = await check({ purpose: 'TREAT', role: 'nurse', roleCodings: [SCT_DERMATOLOGIST] });
    assert.equal(res.statusCode, 400);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'VALIDATION_FAILED');
    const inject = await post(mapped, mapped.tokens.nurse, '/api/v1/access', body(id, { roleCodings: [SCT_DERMATOLOGIST] }));
    assert.equal(inject.statusCode, 400, inject.body);
    assert.match((inject.json() as { error: { message: string } }).error.message, /roleCodings/);
    assert.equal(mapped.log.size, size, 'a refused body writes nothing');
  });

  it('/openapi.json says roleCodings is never accepted in a body', async () => {
    const doc = (await mapped.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>>;
    };
    for (const path of ['/api/v1/access', '/api/v1/inferences', '/api/v1/trainings', '/api/v1/consents/{policyId}/check']) {
      assert.deepEqual(doc.paths[path]?.['post']?.requestBody?.content['application/json']?.schema.properties['roleCodings'], { not: {} }, path);
    }
  });
});

describe('role mapping: the CLI (--roles FILE)', () => {
  const tmp = makeTempDir('custos-role-codings-');
  const dir = join(tmp.path, 'log');
  const rolesFile = join(tmp.path, 'roles.json');
  const plainFile = join(tmp.path, 'roles-plain.json');
  const consentFile = join(tmp.path, 'consent.json');
  let policyId = '';
  const size = async () => okJson<{ entries: number }>(await callIn(dir, ['--json', 'stats'])).entries;
  const access = (actor: string, role: string, ...extra: string[]) =>
    callIn(dir, ['--json', 'access', '--policy', policyId, '--purpose', 'TREAT', '--uri', 's3://ehr/p1/img.png', '--digest', D1, '--actor', actor, '--actor-role', role, ...extra]);
  const check = (...args: string[]) => callIn(dir, ['--json', 'consent', 'check', policyId, '--purpose', 'TREAT', ...args]);

  before(async () => {
    ensureBuilt();
    writeFileSync(consentFile, consentBytes('c-cli'));
    writeFileSync(rolesFile, JSON.stringify({ roleCodings: ROLE_CODINGS }));
    writeFileSync(plainFile, JSON.stringify({ dermatologist: ['access', 'consent:check'], nurse: ['access'] }));
    okJson(await callIn(dir, ['--json', 'init']));
    policyId = okJson<{ policyId: string }>(await callIn(dir, ['--json', 'consent', 'import', consentFile, '--actor', 'po-1', '--actor-role', 'privacy_officer'])).policyId;
  });
  after(() => tmp.cleanup());

  it('access: denied without the mapping (fail closed), permitted with --roles, a nurse denied', async () => {
    const no = await access('dr-derm', 'dermatologist');
    assertError(no, EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true, message: /fail closed.*the role dermatologist has no coding in http:\/\/snomed\.info\/sct/ });
    // A plain role table, as before: no mapping.
    assertError(await access('dr-derm', 'dermatologist', '--roles', plainFile), EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
    const ok = okJson<{ decision: { effect: string; provision: string } }>(await access('dr-derm', 'dermatologist', '--roles', rolesFile));
    assert.deepEqual([ok.decision.effect, ok.decision.provision], ['permit', 'provision[0]']);
    assertError(await access('nurse-1', 'nurse', '--roles', rolesFile), EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
  });

  it('consent check: a bare role takes the mapping of --roles; --role SYSTEM|CODE is used as given', async () => {
    assert.equal(okJson<{ effect: string }>(await check('--role', 'dermatologist')).effect, 'deny');
    assert.equal(okJson<{ effect: string }>(await check('--role', 'dermatologist', '--roles', rolesFile)).effect, 'permit');
    assert.equal(okJson<{ effect: string }>(await check('--role', 'nurse', '--roles', rolesFile)).effect, 'deny');
    assert.equal(okJson<{ effect: string }>(await check('--role', SCT_DERMATOLOGIST)).effect, 'permit');
  });

  it('train and infer take --roles too', async () => {
    const model = join(tmp.path, 'model.json');
    const after = join(tmp.path, 'model-after.json');
    const manifest = join(tmp.path, 'manifest.json');
    const pipeline = join(tmp.path, 'pipeline.json');
    writeFileSync(model, JSON.stringify(MODEL));
    writeFileSync(after, JSON.stringify({ ...MODEL, modelVersion: '0.9.4', weightsHash: 'b'.repeat(64) }));
    writeFileSync(manifest, JSON.stringify({ name: 'finetune-1' }));
    writeFileSync(pipeline, JSON.stringify({ pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' }));
    const train = (...extra: string[]) =>
      callIn(dir, [
        '--json',
        'train',
        '--purpose',
        'HRESCH',
        '--policy',
        policyId,
        '--dataset-uri',
        's3://research/cohort.parquet',
        '--dataset-digest',
        D1,
        '--dataset-type',
        'identified',
        '--manifest',
        manifest,
        '--model-before',
        model,
        '--model-after',
        after,
        '--compute',
        'cpu',
        '--actor',
        'eng-7',
        '--actor-role',
        'ml_engineer',
        ...extra,
      ]);
    assertError(await train(), EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
    assert.equal(okJson<{ decisions: { provision: string }[] }>(await train('--roles', rolesFile)).decisions[0]!.provision, 'provision[1]');
    const infer = (...extra: string[]) =>
      callIn(dir, [
        '--json',
        'infer',
        '--purpose',
        'TREAT',
        '--policy',
        policyId,
        '--input-uri',
        's3://ehr/p1/img.png',
        '--input-digest',
        D1,
        '--output',
        `report_json=s3://ehr/p1/report.json@${D2}`,
        '--pipeline',
        pipeline,
        '--model',
        model,
        '--actor',
        'dr-derm',
        '--actor-role',
        'dermatologist',
        ...extra,
      ]);
    assertError(await infer(), EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
    assert.equal(okJson<{ decision: { effect: string } }>(await infer('--roles', rolesFile)).decision.effect, 'permit');
  });

  it('a bad roles file is refused with VALIDATION_FAILED naming the role and coding, and nothing is written; no flag carries codings', async () => {
    const before = await size();
    const cases: [unknown, RegExp][] = [
      [{ roleCodings: { surgeon: [SCT_DERMATOLOGIST] } }, /roleCodings\.surgeon: "surgeon" is not a role of the role table/],
      [{ roleCodings: { dermatologist: ['18803008'] } }, /roleCodings\.dermatologist\.0: role dermatologist: "18803008" is not a coding SYSTEM\|CODE/],
      [{ roles: { dermatologist: ['access'] }, roleCodings: { dermatologist: [SCT_DERMATOLOGIST] }, extra: true }, /unknown key "extra"/],
    ];
    for (const [i, [json, message]] of cases.entries()) {
      const file = join(tmp.path, `bad-${i}.json`);
      writeFileSync(file, JSON.stringify(json));
      assertError(await access('dr-derm', 'dermatologist', '--roles', file), EXIT.validation, 'VALIDATION_FAILED', { message });
      assertError(await check('--role', 'dermatologist', '--roles', file), EXIT.validation, 'VALIDATION_FAILED', { message });
    }
    const notJson = join(tmp.path, 'not-json.json');
    writeFileSync(notJson, '{"roleCodings": ');
    assertError(await access('dr-derm', 'dermatologist', '--roles', notJson), EXIT.validation, 'VALIDATION_FAILED', { message: /is not valid JSON/ });
    // No command-line flag sets the codings of a role.
    const flag = await access('nurse-1', 'nurse', '--role-codings', SCT_DERMATOLOGIST);
    assert.notEqual(flag.code, 0);
    assert.equal(await size(), before, 'nothing was written');
  });

  it('serve --roles refuses a bad mapping before creating anything', async () => {
    const fresh = join(tmp.path, 'never-created');
    const file = join(tmp.path, 'bad-serve.json');
    writeFileSync(file, JSON.stringify({ roleCodings: { nurse: ['urn:custos:role|dermatologist'] } }));
    const r = await callIn(fresh, ['serve', '--port', '0', '--roles', file]);
    assertError(r, EXIT.validation, 'VALIDATION_FAILED', { message: /roleCodings\.nurse\.0: role nurse: "urn:custos:role\|dermatologist" is a Custos role/ });
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(fresh), false);
    assertOk(await callIn(dir, ['stats']));
  });
});
