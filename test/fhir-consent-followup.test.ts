/**
 * Two gaps the FHIR Consent import left (issue 12), end to end through the CLI and the HTTP API:
 * - erasing a subject (`custos erase --subject`, POST /api/v1/erasures) deletes the bytes of its
 *   imported FHIR Consents; `consent show --format fhir` and GET /fhir/Consent/:id then answer
 *   DOCUMENT_ERASED (exit 3 / 410) naming the erasure's entry, `custos verify` counts the bytes as
 *   erased, and another patient's resource is still served;
 * - `custos access` and `custos infer` take the request model of `consent check`
 *   (--actor-reference --action --class --code --security-label --data-time): a request the
 *   imported consent forbids (the HL7 notOrg example: actor and action; a PSY security label) is
 *   CONSENT_DENIED with the deciding provision path; a permitted one is DATA_ACCESSED /
 *   INFERENCE_EXECUTED with its codings on the log, and the actor reference nowhere on it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertError, assertOk, callIn, ensureBuilt, EXIT, makeTempDir, okJson } from './helpers/cli.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { CONSENT_ACTION, NOT_ORG, PERMIT_TREAT_DENY_PSY, R4_SKIP, r4Consent, V3_ACT_CODE } from './helpers/fhir-consent.js';

const OFFICER = ['--actor', 'privacy-officer-1', '--actor-role', 'privacy_officer'] as const;
const DERM = ['--actor', 'dr-1', '--actor-role', 'dermatologist'] as const;
const EXIT_CONSENT = 7;
const sha256Hex = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');
const D = 'cd'.repeat(32);

interface Imported {
  policyId: string;
  fhirHash: string;
  entry: number;
}
interface LoggedJson {
  index: number;
  type: string;
  payload: Record<string, unknown>;
}

describe('through the CLI', { skip: R4_SKIP }, () => {
  const tmp = makeTempDir('custos-fhir-followup-');
  const dataDir = join(tmp.path, 'log');
  const file = (name: string, bytes: Buffer) => {
    const p = join(tmp.path, name);
    writeFileSync(p, bytes);
    return p;
  };
  const importFile = async (path: string) => okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', path, ...OFFICER]));
  const last = async () => okJson<LoggedJson[]>(await callIn(dataDir, ['--json', 'list', '--limit', '1']))[0]!;
  const wholeLog = async () => {
    const r = await callIn(dataDir, ['export', '--format', 'ndjson']);
    assertOk(r);
    return r.stdout;
  };
  let pipeline: string;
  let model: string;

  before(async () => {
    ensureBuilt();
    okJson(await callIn(dataDir, ['--json', 'init']));
    pipeline = file('pipeline.json', Buffer.from(JSON.stringify({ pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' })));
    model = file('model.json', Buffer.from(JSON.stringify({ modelName: 'lesion', modelVersion: '1', weightsHash: sha256Hex('w'), framework: 'onnx' })));
  });
  after(() => tmp.cleanup());

  it('erase --subject deletes the imported bytes: consent show --format fhir answers DOCUMENT_ERASED with the entry; verify counts them erased', async () => {
    const tag = randomBytes(5).toString('hex');
    const patient = `Patient/cli-${tag}`;
    const gone = await importFile(file(`gone-${tag}.json`, r4Consent({ patient, display: `Name ${tag}` })));
    const keepBytes = r4Consent({ patient: `Patient/other-${tag}` });
    const keep = await importFile(file(`keep-${tag}.json`, keepBytes));

    const erased = okJson<{ erased: string[]; documents: string[]; event: { index: number } }>(await callIn(dataDir, ['--json', 'erase', '--subject', patient, ...OFFICER]));
    assert.deepEqual(erased.documents, [gone.fhirHash]);
    const ev = await last();
    assert.deepEqual([ev.type, ev.index, ev.payload['erasedDocuments']], ['ERASURE_PERFORMED', erased.event.index, [gone.fhirHash]]);

    const n = (await last()).index;
    const shown = await callIn(dataDir, ['consent', 'show', gone.policyId, '--format', 'fhir', ...OFFICER]);
    assertError(shown, EXIT.notFound, 'DOCUMENT_ERASED', { message: new RegExp(`erased by entry ${erased.event.index}\\b`) });
    assert.equal((await last()).index, n, 'nothing patient-linked was read: no AUDIT_READ');
    // The other patient's resource is still served byte for byte.
    const other = await callIn(dataDir, ['consent', 'show', keep.policyId, '--format', 'fhir', ...OFFICER]);
    assertOk(other);
    assert.equal(Buffer.from(other.stdout, 'utf8').equals(keepBytes), true);

    const v = await callIn(dataDir, ['--json', 'verify']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const report = JSON.parse(v.stdout) as { documents: { ok: boolean; documentsErased: number; findings: unknown[] } };
    assert.deepEqual([report.documents.ok, report.documents.findings], [true, []]);
    assert.equal(report.documents.documentsErased, 1);
  });

  it('access with the notOrg example: Good Health Clinic accessing is CONSENT_DENIED by `provision`, with the action on the log', async () => {
    const r = await importFile(NOT_ORG);
    const res = await callIn(dataDir, [
      'access',
      '--purpose',
      'TREAT',
      '--policy',
      r.policyId,
      '--uri',
      's3://clinic/notorg/a.json',
      '--digest',
      D,
      '--actor-reference',
      'Organization/f001',
      '--action',
      `${CONSENT_ACTION}|access`,
      ...DERM,
    ]);
    // The recorded actor's role is a Custos role code, not the example's v3 PRCP: the root deny
    // that names Good Health Clinic decides, failing closed on the role (docs/consent.md).
    assertError(res, EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
    const ev = await last();
    assert.equal(ev.type, 'CONSENT_DENIED');
    assert.deepEqual([ev.payload['reason'], ev.payload['provision'], ev.payload['request']], ['DENIED_BY_PROVISION', 'provision', { action: `${CONSENT_ACTION}|access` }]);
    assert.equal(JSON.stringify(ev).includes('Organization/f001'), false, 'the actor reference is not logged');
  });

  it('access and infer under a security-label deny: PSY is denied by provision.provision[0]; a permitted one logs its codings, never the actor reference', async () => {
    const tag = randomBytes(5).toString('hex');
    const r = await importFile(file(`psy-${tag}.json`, r4Consent({ patient: `Patient/psy-${tag}`, provision: PERMIT_TREAT_DENY_PSY })));
    const actorRef = `Practitioner/ref-${tag}`;
    const accessArgs = (extra: readonly string[]) => ['--json', 'access', '--purpose', 'TREAT', '--policy', r.policyId, '--uri', `s3://clinic/${tag}/a.json`, '--digest', D, ...DERM, ...extra];

    const denied = await callIn(dataDir, accessArgs(['--actor-reference', actorRef, '--security-label', 'PSY', '--security-label', `${V3_ACT_CODE}|ETH`]));
    assertError(denied, EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
    const d = await last();
    assert.equal(d.type, 'CONSENT_DENIED');
    assert.deepEqual([d.payload['provision'], d.payload['request']], ['provision.provision[0]', { securityLabels: ['PSY', `${V3_ACT_CODE}|ETH`] }]);

    const fields = [
      '--actor-reference',
      actorRef,
      '--action',
      'access',
      '--class',
      'Observation',
      '--code',
      'http://loinc.org|1234-5',
      '--security-label',
      'N',
      '--data-time',
      '2024-05-01T10:00:00+02:00',
    ];
    const ok = okJson<{ decision: { effect: string; provision: string }; event: { index: number } }>(await callIn(dataDir, accessArgs(fields)));
    assert.deepEqual([ok.decision.effect, ok.decision.provision], ['permit', 'provision']);
    const a = await last();
    assert.deepEqual([a.type, a.index], ['DATA_ACCESSED', ok.event.index]);
    const request = { action: 'access', class: 'Observation', code: 'http://loinc.org|1234-5', securityLabels: ['N'], dataTime: '2024-05-01T08:00:00.000Z' };
    assert.deepEqual(a.payload['request'], request);

    const infer = (extra: readonly string[]) =>
      callIn(dataDir, [
        '--json',
        'infer',
        '--purpose',
        'TREAT',
        '--policy',
        r.policyId,
        '--input-uri',
        `s3://clinic/${tag}/in.jpg`,
        '--input-digest',
        D,
        '--output',
        `report=s3://clinic/${tag}/out.json@${D}`,
        '--pipeline',
        pipeline,
        '--model',
        model,
        ...DERM,
        ...extra,
      ]);
    assertError(await infer(['--security-label', 'PSY']), EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
    const di = await last();
    assert.deepEqual([di.type, di.payload['operation'], di.payload['provision']], ['CONSENT_DENIED', 'inference', 'provision.provision[0]']);
    const inf = okJson<{ event: { index: number } }>(await infer(fields));
    const ie = await last();
    assert.deepEqual([ie.type, ie.index, ie.payload['request']], ['INFERENCE_EXECUTED', inf.event.index, request]);

    // A flag the model refuses is refused before anything is written.
    const before = (await last()).index;
    assertError(await callIn(dataDir, accessArgs(['--code', 'no-system'])), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callIn(dataDir, accessArgs(['--actor-reference', 'not a reference'])), EXIT.validation, 'VALIDATION_FAILED');
    assert.equal((await last()).index, before);

    assert.equal((await wholeLog()).includes(actorRef), false, 'the actor reference is nowhere on the log');
  });

  it('access and infer list the request flags in their help', async () => {
    for (const cmd of ['access', 'infer']) {
      const help = await callIn(dataDir, [cmd, '--help']);
      for (const flag of ['--actor-reference', '--action', '--class', '--code', '--security-label', '--data-time']) assert.ok(help.stdout.includes(flag), `${cmd} --help lacks ${flag}`);
    }
  });
});

describe('through the HTTP API', { skip: R4_SKIP }, () => {
  let env: ServerEnv;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  before(async () => {
    env = await createServerEnv();
  });
  after(async () => env?.close());

  it('POST /api/v1/erasures of the subject: GET /fhir/Consent/:id is 410 DOCUMENT_ERASED naming the entry; another patient’s is still served', async () => {
    const tag = randomBytes(5).toString('hex');
    const patient = `Patient/http-${tag}`;
    const post = (bytes: Buffer) =>
      env.app.inject({ method: 'POST', url: '/fhir/Consent', headers: { ...bearer(env.tokens.privacy_officer), 'content-type': 'application/fhir+json' }, payload: bytes });
    const goneRes = await post(r4Consent({ patient, display: `Name ${tag}` }));
    assert.equal(goneRes.statusCode, 201, goneRes.body);
    const gone = goneRes.json() as Imported;
    const keepBytes = r4Consent({ patient: `Patient/http-other-${tag}` });
    const keep = (await post(keepBytes)).json() as Imported;

    const er = await env.app.inject({ method: 'POST', url: '/api/v1/erasures', headers: bearer(env.tokens.privacy_officer), payload: { kind: 'subject', value: patient } });
    assert.equal(er.statusCode, 201, er.body);
    const erased = er.json() as { documents: string[]; event: { index: number } };
    assert.deepEqual(erased.documents, [gone.fhirHash]);

    const n = env.log.size;
    const got = await env.app.inject({ method: 'GET', url: `/fhir/Consent/${gone.policyId}`, headers: bearer(env.tokens.privacy_officer) });
    assert.equal(got.statusCode, 410, got.body);
    // Under /fhir, errors are OperationOutcomes carrying the stable code.
    assert.match(String(got.headers['content-type']), /^application\/fhir\+json/);
    const outcome = got.json() as { resourceType: string; issue: { code: string; details: { coding: { code: string }[]; text: string } }[] };
    assert.equal(outcome.resourceType, 'OperationOutcome');
    assert.equal(outcome.issue[0]!.code, 'deleted');
    assert.equal(outcome.issue[0]!.details.coding[0]!.code, 'DOCUMENT_ERASED');
    assert.match(outcome.issue[0]!.details.text, new RegExp(`erased by entry ${erased.event.index}\\b`));
    assert.equal(env.log.size, n, 'no AUDIT_READ: nothing patient-linked was read');

    const kept = await env.app.inject({ method: 'GET', url: `/fhir/Consent/${keep.policyId}`, headers: bearer(env.tokens.privacy_officer) });
    assert.equal(kept.statusCode, 200, kept.body);
    assert.equal(kept.rawPayload.equals(keepBytes), true);

    // The policy still decides: the notOrg deny, by its root provision.
    const check = await env.app.inject({
      method: 'POST',
      url: `/api/v1/consents/${gone.policyId}/check`,
      headers: bearer(env.tokens.privacy_officer),
      payload: { purpose: 'TREAT', role: 'dermatologist', actorReference: 'Organization/f001', action: 'access' },
    });
    assert.equal(check.statusCode, 200, check.body);
    assert.equal((check.json() as { effect: string }).effect, 'deny');
  });
});
