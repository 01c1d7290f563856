/**
 * The model registry and change control (issue 14; docs/models.md), end to end: through the CLI (the
 * built `run()`, in this process, on a fresh data directory) and through the HTTP API (a real app
 * over a real SQLite log). Registration, approval (and its permission), inference under an approved
 * version, refusals logged as INFERENCE_REFUSED (unapproved, retired, weights digest mismatch), a
 * change control plan approving a trained version within its bounds and leaving one out of bounds
 * to a human, and the backward-compatible default (a model of an unregistered line is not checked,
 * unless --require-registered-models).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pid } from './helpers/policy-ids.js';
import { assertError, assertOk, ensureBuilt, EXIT, makeTempDir, okJson, parseJson, callIn } from './helpers/cli.js';
import { assertVerifies, createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { parseLoggedEvent } from '../src/core/events.js';
import { findSubjectEntries } from '../src/service/governance/disclosures.js';
import { Governance, ModelRefusedError } from '../src/service/governance.js';
import { formatSignerKey, parseSignerKey, verifierKeyFromSignerKey } from '../src/core/note.js';
import { flUpdateMessage } from '../src/core/federated.js';
import { parseModelRegistration } from '../src/core/models.js';
import { toBase64 } from '../src/core/hash.js';
import { initDataDir, openLog } from '../src/log/data-dir.js';

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');
const EXIT_MODEL_NOT_APPROVED = 20;
const EXIT_MODEL_DIGEST_MISMATCH = 21;

const OFFICER = ['--actor', 'po-1', '--actor-role', 'privacy_officer'] as const;
const DERM = ['--actor', 'user_42', '--actor-role', 'dermatologist'] as const;
const ENGINEER = ['--actor', 'eng-7', '--actor-role', 'ml_engineer'] as const;
const CSO = ['--actor', 'cso-1', '--actor-role', 'clinical_safety_officer'] as const;

const W = (v: string) => sha256Hex(`weights ${v}`);
const spec = (version: string, weights = W(version), name = 'lesion_classifier') => ({ modelName: name, modelVersion: version, weightsHash: weights, framework: 'pytorch' });
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' };
const PLAN = {
  planId: 'derm-pccp-1',
  model: 'lesion_classifier',
  modifications: ['retrain', 'threshold_change'],
  dataConstraints: { datasetTypes: ['deidentified', 'synthetic'], description: 'retraining on de-identified images from the same sites' },
  acceptance: [
    { metric: 'auroc', min: 0.9 },
    { metric: 'sensitivity', min: 0.85, max: 1 },
  ],
  description: 'periodic retraining of the lesion classifier',
};

interface EventJson {
  index: number;
}

describe('model registry and change control through the CLI', () => {
  const tmp = makeTempDir('custos-models-');
  const dir = join(tmp.path, 'data');
  const file = (name: string, value: unknown) => {
    const p = join(tmp.path, name);
    writeFileSync(p, JSON.stringify(value));
    return p;
  };
  const policy = pid('models-cli');
  let n = 0;
  const infer = (model: string, extra: readonly string[] = []) =>
    callIn(dir, [
      '--json',
      'infer',
      '--purpose',
      'TREAT',
      '--policy',
      policy,
      '--input-uri',
      `s3://bucket/patient-7/img-${n++}.png`,
      '--input-digest',
      sha256Hex(`img ${n}`),
      '--output',
      `report_json=s3://bucket/patient-7/report-${n}.json@${sha256Hex(`report ${n}`)}`,
      '--pipeline',
      file('pipeline.json', PIPELINE),
      '--model',
      model,
      ...extra,
      ...DERM,
    ]);
  const train = (before: string, after: string, extra: readonly string[]) =>
    callIn(dir, [
      '--json',
      'train',
      '--purpose',
      'HRESCH',
      '--dataset-uri',
      's3://bucket/synthetic/lesions.parquet',
      '--dataset-digest',
      sha256Hex('dataset'),
      '--dataset-type',
      'synthetic',
      '--attestation',
      'synthetic-generator',
      '--manifest',
      file('manifest.json', { name: 'retrain' }),
      '--model-before',
      before,
      '--model-after',
      after,
      '--compute',
      'cpu',
      ...extra,
      ...ENGINEER,
    ]);
  const entries = async (type: string) => {
    return okJson<{ index: number; type: string; payload: Record<string, unknown> }[]>(await callIn(dir, ['--json', 'list', '--type', type, '--limit', '1000', '--oldest-first']));
  };
  const size = async () => okJson<{ entries: number }>(await callIn(dir, ['--json', 'stats'])).entries;

  before(async () => {
    ensureBuilt();
    assertOk(await callIn(dir, ['init']));
    assertOk(await callIn(dir, ['consent', 'create', '--policy-id', policy, '--subject', 'patient-7', '--purposes', 'TREAT', '--roles', 'dermatologist', ...OFFICER]));
  });
  after(() => tmp.cleanup());

  it('an unregistered line is not checked (backward compatible), unless --require-registered-models', async () => {
    okJson(await infer(file('legacy.json', spec('0.9.3', W('0.9.3'), 'legacy_model'))));
    const r = await infer(file('legacy.json', spec('0.9.3', W('0.9.3'), 'legacy_model')), ['--require-registered-models']);
    assertError(r, EXIT_MODEL_NOT_APPROVED, 'MODEL_NOT_APPROVED', { stdoutAllowed: true });
    const refused = parseJson<{ refused: boolean; reason: string; state: string; event: EventJson }>(r);
    assert.equal(refused.reason, 'MODEL_NOT_APPROVED');
    assert.equal(refused.state, 'unregistered');
  });

  it('register: a version is not usable until approved; the refusal is logged as INFERENCE_REFUSED', async () => {
    const reg = okJson<{ model: string; version: string; specHash: string; event: EventJson }>(
      await callIn(dir, [
        '--json',
        'model',
        'register',
        'lesion_classifier@1.0.0',
        '--weights-hash',
        W('1.0.0'),
        '--intended-use',
        'diagnosis_aid',
        '--risk-class',
        'eu_mdr_iia',
        '--spec',
        file('spec.json', { indications: 'pigmented skin lesions in adults', limitations: 'not for children' }),
        ...ENGINEER,
      ]),
    );
    assert.equal(reg.version, '1.0.0');
    // custos model register has no way to name an origin (only training under a plan and FL do).
    const atRegister = await size();
    assertError(
      await callIn(dir, [
        'model',
        'register',
        'lesion_classifier@1.0.1',
        '--weights-hash',
        W('1.0.1'),
        '--intended-use',
        'diagnosis_aid',
        '--risk-class',
        'eu_mdr_iia',
        '--origin',
        '{"kind":"training","run":0}',
        ...ENGINEER,
      ]),
      EXIT.validation,
      'VALIDATION_FAILED',
    );
    assert.equal(await size(), atRegister);
    const before = await size();
    const r = await infer(file('m100.json', spec('1.0.0')));
    assertError(r, EXIT_MODEL_NOT_APPROVED, 'MODEL_NOT_APPROVED', { stdoutAllowed: true });
    assert.equal(parseJson<{ state: string }>(r).state, 'registered');
    assert.equal(await size(), before + 1, 'exactly one event: the refusal');
    const refusals = await entries('INFERENCE_REFUSED');
    assert.equal(refusals.length, 2);
    // Another version of a registered line (never registered) is refused too.
    assertError(await infer(file('m099.json', spec('0.9.9'))), EXIT_MODEL_NOT_APPROVED, 'MODEL_NOT_APPROVED', { stdoutAllowed: true });
  });

  it('approve: refused for a role without model:approve (nothing written), done by the clinical safety officer', async () => {
    const before = await size();
    assertError(await callIn(dir, ['model', 'approve', 'lesion_classifier@1.0.0', ...ENGINEER]), EXIT.validation, 'VALIDATION_FAILED', { message: /model:approve/ });
    assert.equal(await size(), before);
    const a = okJson<{ event: EventJson }>(await callIn(dir, ['--json', 'model', 'approve', 'lesion_classifier@1.0.0', ...CSO]));
    assert.equal(a.event.index, before);
    assertError(await callIn(dir, ['model', 'approve', 'lesion_classifier@1.0.0', ...CSO]), EXIT.conflict, 'MODEL_ALREADY_APPROVED');
    assertError(await callIn(dir, ['model', 'approve', 'lesion_classifier@7.0.0', ...CSO]), EXIT.notFound, 'MODEL_NOT_FOUND');
  });

  it('an approved version runs; model show lists its inferences; a different weights digest is MODEL_DIGEST_MISMATCH', async () => {
    const ok = okJson<{ event: EventJson }>(await infer(file('m100.json', spec('1.0.0'))));
    const show = okJson<{ status: string; inferences: number[] }>(await callIn(dir, ['--json', 'model', 'show', 'lesion_classifier@1.0.0']));
    assert.equal(show.status, 'approved');
    assert.deepEqual(show.inferences, [ok.event.index]);
    const r = await infer(file('forged.json', spec('1.0.0', W('tampered'))));
    assertError(r, EXIT_MODEL_DIGEST_MISMATCH, 'MODEL_DIGEST_MISMATCH', { stdoutAllowed: true });
    const last = (await entries('INFERENCE_REFUSED')).at(-1)!;
    assert.equal(last.payload['reason'], 'MODEL_DIGEST_MISMATCH');
    assert.equal(last.payload['registeredWeightsHash'], W('1.0.0'));
    assert.equal(last.payload['weightsHash'], W('tampered'));
  });

  it('a change control plan approves a trained version within its bounds; out of bounds waits for a human', async () => {
    assertError(await callIn(dir, ['model', 'plan', 'commit', '--file', file('plan.json', PLAN), ...ENGINEER]), EXIT.validation, 'VALIDATION_FAILED');
    const p = okJson<{ hash: string; event: EventJson }>(await callIn(dir, ['--json', 'model', 'plan', 'commit', '--file', file('plan.json', PLAN), ...CSO]));
    assertError(await callIn(dir, ['model', 'plan', 'commit', '--file', file('plan.json', PLAN), ...CSO]), EXIT.conflict, 'CHANGE_PLAN_EXISTS');
    const shown = okJson<{ documentOk: boolean; state: { hash: string; metrics: string[] }; plan: { acceptance: unknown[] } }>(await callIn(dir, ['--json', 'model', 'plan', 'show', 'derm-pccp-1']));
    assert.equal(shown.documentOk, true);
    assert.equal(shown.state.hash, p.hash);
    assert.deepEqual(shown.state.metrics, ['auroc', 'sensitivity']);
    assert.deepEqual(shown.plan.acceptance, PLAN.acceptance);
    const listed = okJson<{ plans: { planId: string }[] }>(await callIn(dir, ['--json', 'model', 'plan', 'list', '--model', 'lesion_classifier']));
    assert.deepEqual(
      listed.plans.map((x) => x.planId),
      ['derm-pccp-1'],
    );
    const good = okJson<{ model: { status: string; outcome: string; approved?: EventJson; registered: EventJson } }>(
      await train(file('m100.json', spec('1.0.0')), file('m110.json', spec('1.1.0')), [
        '--change-control',
        'derm-pccp-1',
        '--metrics',
        file('good.json', { auroc: 0.93, sensitivity: 0.9, specificity: 0.8 }),
      ]),
    );
    assert.equal(good.model.outcome, 'WITHIN_BOUNDS');
    assert.equal(good.model.status, 'approved');
    const v110 = okJson<{ status: string; approval: { basis: string; plan: string; planHash: string }; origin: { kind: string } }>(
      await callIn(dir, ['--json', 'model', 'show', 'lesion_classifier@1.1.0']),
    );
    assert.equal(v110.status, 'approved');
    assert.deepEqual([v110.approval.basis, v110.approval.plan, v110.approval.planHash, v110.origin.kind], ['plan', 'derm-pccp-1', p.hash, 'training']);
    okJson(await infer(file('m110.json', spec('1.1.0'))));

    const bad = okJson<{ model: { status: string; outcome: string; failures: { metric: string }[]; approved?: EventJson } }>(
      await train(file('m110.json', spec('1.1.0')), file('m120.json', spec('1.2.0')), ['--change-control', 'derm-pccp-1', '--metrics', file('bad.json', { auroc: 0.85, sensitivity: 0.9 })]),
    );
    assert.equal(bad.model.outcome, 'METRIC_OUT_OF_BOUNDS');
    assert.deepEqual(
      bad.model.failures.map((f) => f.metric),
      ['auroc'],
    );
    assert.equal(bad.model.status, 'registered');
    assert.equal(bad.model.approved, undefined);
    assertError(await infer(file('m120.json', spec('1.2.0'))), EXIT_MODEL_NOT_APPROVED, 'MODEL_NOT_APPROVED', { stdoutAllowed: true });
    okJson(await callIn(dir, ['--json', 'model', 'approve', 'lesion_classifier@1.2.0', ...CSO]));
    okJson(await infer(file('m120.json', spec('1.2.0'))));
  });

  it('a new version of an approved model must name its plan; an unknown plan is CHANGE_PLAN_NOT_FOUND (nothing written)', async () => {
    const before = await size();
    assertError(await train(file('m120.json', spec('1.2.0')), file('m130.json', spec('1.3.0')), []), EXIT.validation, 'CHANGE_PLAN_REQUIRED');
    assertError(
      await train(file('m120.json', spec('1.2.0')), file('m130.json', spec('1.3.0')), ['--change-control', 'no-such-plan', '--metrics', file('good.json', { auroc: 0.93, sensitivity: 0.9 })]),
      EXIT.notFound,
      'CHANGE_PLAN_NOT_FOUND',
    );
    assertError(await train(file('m120.json', spec('1.2.0')), file('m130.json', spec('1.3.0')), ['--metrics', file('good.json', {})]), EXIT.validation, 'VALIDATION_FAILED');
    assert.equal(await size(), before);
  });

  it('retire: inferences under a retired version are refused', async () => {
    // A deployment's own role table (--roles): a safety board holds model:approve there.
    const roles = file('roles.json', { roles: { dermatologist: ['inference'], safety_board: ['model:approve', 'models:read'] } });
    const board = ['--actor', 'board-1', '--actor-role', 'safety_board', '--roles', roles];
    assertError(await callIn(dir, ['model', 'retire', 'lesion_classifier@1.0.0', '--actor', 'board-1', '--actor-role', 'safety_board']), EXIT.validation, 'VALIDATION_FAILED');
    okJson(await callIn(dir, ['--json', 'model', 'retire', 'lesion_classifier@1.0.0', '--reason', 'superseded', ...board]));
    const r = await infer(file('m100.json', spec('1.0.0')));
    assertError(r, EXIT_MODEL_NOT_APPROVED, 'MODEL_NOT_APPROVED', { stdoutAllowed: true });
    assert.equal(parseJson<{ state: string }>(r).state, 'retired');
    assertError(await callIn(dir, ['model', 'retire', 'lesion_classifier@1.0.0', ...CSO]), EXIT.conflict, 'MODEL_VERSION_RETIRED');
    assert.equal(okJson<{ retirement: { actor: string; role: string } }>(await callIn(dir, ['--json', 'model', 'show', 'lesion_classifier@1.0.0'])).retirement.role, 'safety_board');
    assertError(await callIn(dir, ['model', 'approve', 'lesion_classifier@1.0.0', ...CSO]), EXIT.conflict, 'MODEL_VERSION_RETIRED');
    const list = okJson<{ models: { model: string; versions: { version: string; status: string }[]; plans: { planId: string }[] }[] }>(await callIn(dir, ['--json', 'model', 'list']));
    const line = list.models.find((m) => m.model === 'lesion_classifier')!;
    assert.deepEqual(
      line.versions.map((x) => `${x.version}:${x.status}`),
      ['1.0.0:retired', '1.1.0:approved', '1.2.0:approved'],
    );
    assert.deepEqual(
      line.plans.map((x) => x.planId),
      ['derm-pccp-1'],
    );
  });

  it('the log and its documents verify', async () => {
    assertOk(await callIn(dir, ['verify', '--no-progress']));
  });
});

describe('model registry and change control over HTTP', () => {
  let env: ServerEnv;
  let cso: string;
  const policyId = pid('models-http');
  const call = (method: 'GET' | 'POST', url: string, token: string, payload?: unknown) =>
    env.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
  let k = 0;
  const inference = (model: unknown) => ({
    purpose: 'TREAT',
    policyId,
    input: { uri: `s3://bucket/p9/img-${++k}.png`, digest: sha256Hex(`img ${k}`) },
    outputs: [{ name: 'report_json', uri: `s3://bucket/p9/r-${k}.json`, digest: sha256Hex(`r ${k}`) }],
    pipeline: PIPELINE,
    model,
  });

  before(async () => {
    env = await createServerEnv();
    cso = (await env.auth.createToken('cso-1', 'clinical_safety_officer', { actor: 'test-setup', role: 'operator' })).token;
    await env.governance.createConsent({ policyId, subject: 'patient-9', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
  });
  after(async () => env.close());

  it('register (201), approve: 403 FORBIDDEN without model:approve, 201 for the clinical safety officer; infer OK; the inferences of a version', async () => {
    const body = { model: 'chest_xray', version: '2.0.0', weightsHash: W('cx 2.0.0'), intendedUse: 'triage', riskClass: 'eu_mdr_iib', spec: { indications: 'adult chest radiographs' } };
    const reg = await call('POST', '/api/v1/models', env.tokens.ml_engineer, body);
    assert.equal(reg.statusCode, 201, reg.body);
    assert.equal((await call('POST', '/api/v1/models', env.tokens.ml_engineer, body)).json().error.code, 'MODEL_EXISTS');
    assert.equal((await call('POST', '/api/v1/models', env.tokens.dermatologist, body)).statusCode, 403);
    const xspec = { modelName: 'chest_xray', modelVersion: '2.0.0', weightsHash: W('cx 2.0.0'), framework: 'onnx' };
    const refused = await call('POST', '/api/v1/inferences', env.tokens.dermatologist, inference(xspec));
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().error.code, 'MODEL_NOT_APPROVED');
    const refusedAt = refused.json().event.index as number;
    assert.equal(parseLoggedEvent((await env.log.reader.getEntry(refusedAt)).bytes)!.type, 'INFERENCE_REFUSED');
    const denied = await call('POST', '/api/v1/models/chest_xray/versions/2.0.0/approval', env.tokens.ml_engineer);
    assert.equal(denied.statusCode, 403);
    assert.equal(denied.json().error.code, 'FORBIDDEN');
    const approved = await call('POST', '/api/v1/models/chest_xray/versions/2.0.0/approval', cso);
    assert.equal(approved.statusCode, 201, approved.body);
    assert.equal(approved.json().version.status, 'approved');
    const ok = await call('POST', '/api/v1/inferences', env.tokens.dermatologist, inference(xspec));
    assert.equal(ok.statusCode, 201, ok.body);
    const mismatch = await call('POST', '/api/v1/inferences', env.tokens.dermatologist, inference({ ...xspec, weightsHash: W('other') }));
    assert.equal(mismatch.json().error.code, 'MODEL_DIGEST_MISMATCH');
    const inf = await call('GET', '/api/v1/models/chest_xray/versions/2.0.0/inferences', env.tokens.auditor);
    assert.equal(inf.statusCode, 200, inf.body);
    assert.deepEqual(inf.json().inferences, [ok.json().event.index]);
    // The read of a version's inferences is on the log before it is answered.
    const last = parseLoggedEvent((await env.log.reader.getEntry(env.log.size - 1)).bytes)!;
    assert.equal(last.type, 'AUDIT_QUERY');
    assert.equal(last.payload['route'], 'GET /api/v1/models/:model/versions/:version/inferences');
    const line = await call('GET', '/api/v1/models/chest_xray', env.tokens.auditor);
    assert.equal(line.json().versions[0].inferenceCount, 1);
    assert.equal((await call('GET', '/api/v1/models/nope', env.tokens.auditor)).json().error.code, 'MODEL_NOT_FOUND');
  });

  it('a caller cannot name an origin: POST /api/v1/models with origin is 400 VALIDATION_FAILED, nothing written; nor through the library', async () => {
    const body = { model: 'chest_xray', version: '9.9.9', weightsHash: W('forged'), intendedUse: 'diagnosis', riskClass: 'fda_ii' };
    const size = await env.log.reader.size();
    for (const origin of [
      { kind: 'training', run: 0 },
      { kind: 'fl', line: 'no-such-line', round: 0 },
      { kind: 'fl', line: 'no-such-line', round: 3 },
    ]) {
      const r = await call('POST', '/api/v1/models', env.tokens.ml_engineer, { ...body, origin });
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(r.json().error.code, 'VALIDATION_FAILED');
      await assert.rejects(env.governance.registerModel({ ...body, origin } as never, { id: 'eng-7', role: 'ml_engineer' }), (e: Error & { code?: string }) => e.code === 'VALIDATION_FAILED');
    }
    assert.equal(await env.log.reader.size(), size);
    assert.equal((await call('GET', '/api/v1/models/chest_xray/versions/9.9.9', env.tokens.ml_engineer)).statusCode, 404);
    // Without it, the same body registers, with no origin.
    const ok = await call('POST', '/api/v1/models', env.tokens.ml_engineer, body);
    assert.equal(ok.statusCode, 201, ok.body);
    const shown = await call('GET', '/api/v1/models/chest_xray/versions/9.9.9', env.tokens.ml_engineer);
    assert.equal(shown.json().origin, undefined);
    // An FL origin counts rounds from 1 (the service-internal path checks it too).
    assert.throws(
      () => parseModelRegistration(body, { kind: 'fl', line: 'fz-line', round: 0 }),
      (e: Error & { code?: string }) => e.code === 'VALIDATION_FAILED',
    );
    assert.deepEqual(parseModelRegistration(body, { kind: 'fl', line: 'fz-line', round: 1 }).origin, { kind: 'fl', line: 'fz-line', round: 1 });
  });

  it('plans over HTTP; a training run under the plan is approved within bounds; retirement refuses later inferences', async () => {
    const plan = { ...PLAN, planId: 'cx-pccp-1', model: 'chest_xray' };
    assert.equal((await call('POST', '/api/v1/models/chest_xray/plans', env.tokens.ml_engineer, plan)).statusCode, 403);
    const c = await call('POST', '/api/v1/models/chest_xray/plans', cso, plan);
    assert.equal(c.statusCode, 201, c.body);
    const shown = await call('GET', '/api/v1/models/chest_xray/plans/cx-pccp-1', env.tokens.auditor);
    assert.equal(shown.json().documentOk, true);
    const t = await call('POST', '/api/v1/trainings', env.tokens.ml_engineer, {
      purpose: 'HRESCH',
      dataset: { uri: 's3://bucket/deid/cx.parquet', digest: sha256Hex('cx data'), type: 'deidentified' },
      attestation: { method: 'safe-harbor' },
      manifest: { name: 'cx-retrain' },
      modelBefore: { modelName: 'chest_xray', modelVersion: '2.0.0', weightsHash: W('cx 2.0.0'), framework: 'onnx' },
      modelAfter: { modelName: 'chest_xray', modelVersion: '2.1.0', weightsHash: W('cx 2.1.0'), framework: 'onnx' },
      computeBackend: 'gpu-1',
      changeControl: { plan: 'cx-pccp-1', modification: 'retrain', metrics: { auroc: 0.95, sensitivity: 0.92 } },
    });
    assert.equal(t.statusCode, 201, t.body);
    const v = await call('GET', '/api/v1/models/chest_xray/versions/2.1.0', env.tokens.auditor);
    assert.equal(v.json().status, 'approved');
    assert.equal(v.json().approval.basis, 'plan');
    const r = await call('POST', '/api/v1/models/chest_xray/versions/2.0.0/retirement', cso, { reason: 'superseded' });
    assert.equal(r.statusCode, 201, r.body);
    const refused = await call('POST', '/api/v1/inferences', env.tokens.dermatologist, inference({ modelName: 'chest_xray', modelVersion: '2.0.0', weightsHash: W('cx 2.0.0'), framework: 'onnx' }));
    assert.equal(refused.json().error.code, 'MODEL_NOT_APPROVED');
    assert.equal(refused.json().error.details.state, 'retired');
    await assertVerifies(env);
  });

  it("a refused inference is the subject's like a denial: the erasure of the subject erases its input URI's opening, and the accounting lists it", async () => {
    const g = env.governance;
    const subjectPolicy = pid('models-erase');
    await g.createConsent({ policyId: subjectPolicy, subject: 'patient-erase', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
    const spec = { modelName: 'chest_xray', modelVersion: '9.9.9', weightsHash: W('cx 9.9.9'), framework: 'onnx' };
    const refusal = await g.recordInference({ actor: { id: 'dr-derm', role: 'dermatologist' }, ...inference(spec), policyId: subjectPolicy }).then(
      () => assert.fail('expected a refusal'),
      (err: unknown) => err as ModelRefusedError,
    );
    assert.ok(refusal instanceof ModelRefusedError);
    const entry = parseLoggedEvent((await env.log.reader.getEntry(refusal.event.index)).bytes)!;
    const commitment = (entry.payload['input'] as { uri: string }).uri;
    assert.ok(await env.dir.store.getCommitment(commitment), 'the opening is kept while the subject is not erased');
    const found = await findSubjectEntries(env.log, 'patient-erase');
    assert.ok(
      found.entries.some((e) => e.index === refusal.event.index && e.kind === 'denial'),
      'the accounting of disclosures lists the refusal',
    );
    const report = await g.erase('subject', 'patient-erase', { id: 'po-1', role: 'privacy_officer' });
    assert.ok(report.commitments.includes(commitment), 'the erasure names the refusal input commitment');
    assert.equal(await env.dir.store.getCommitment(commitment), undefined);
  });

  it('decided at sequencing time: two approvals at once write one; inferences racing a retirement run only if sequenced before it', async () => {
    const g = env.governance;
    const csoActor = { id: 'cso-1', role: 'clinical_safety_officer' };
    await g.registerModel({ model: 'race_model', version: '1.0.0', weightsHash: W('race'), intendedUse: 'triage', riskClass: 'imdrf_ii' }, { id: 'eng-7', role: 'ml_engineer' });
    const approvals = await Promise.allSettled([g.approveModel('race_model', '1.0.0', csoActor), g.approveModel('race_model', '1.0.0', csoActor)]);
    assert.equal(approvals.filter((x) => x.status === 'fulfilled').length, 1);
    const lost = approvals.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    assert.equal((lost.reason as { code?: string }).code, 'MODEL_ALREADY_APPROVED');
    const spec = { modelName: 'race_model', modelVersion: '1.0.0', weightsHash: W('race'), framework: 'onnx' };
    const attempt = () =>
      g.recordInference({ actor: { id: 'dr-derm', role: 'dermatologist' }, ...inference(spec) }).then(
        (r) => ({ ran: r.event.index }),
        (err: unknown) => {
          if (err instanceof ModelRefusedError) return { refused: err.event.index, state: err.state };
          throw err;
        },
      );
    const before = Array.from({ length: 12 }, attempt);
    const retired = g.retireModel('race_model', '1.0.0', csoActor, 'safety');
    // Attempts keep starting, one per turn of the event loop, while the retirement is in flight
    // (some share its batch); whichever way each falls, the invariant below must hold.
    let settled = false;
    void retired.finally(() => {
      settled = true;
    });
    const during: Promise<Awaited<ReturnType<typeof attempt>>>[] = [];
    while (!settled && during.length < 500) {
      during.push(attempt());
      await new Promise((resolve) => setImmediate(resolve));
    }
    const outcomes = await Promise.all([...before, ...during]);
    const at = (await retired).event.index;
    for (const o of outcomes) {
      if ('ran' in o) assert.ok(o.ran < at, `inference at ${o.ran} ran after the retirement at ${at}`);
      else {
        assert.ok(o.refused > at, `refusal at ${o.refused} before the retirement at ${at}`);
        assert.equal(o.state, 'retired');
      }
    }
    assert.ok('refused' in (await attempt()), 'an inference after the retirement is refused');
    await assertVerifies(env);
  });
});

describe('model registry with two writers on one log', () => {
  it('a retirement written by another process is seen by the next inference here (no stale approval)', async () => {
    const tmp = makeTempDir('custos-models-2w-');
    const d = join(tmp.path, 'log');
    await initDataDir(d, { origin: 'test.local/models-2w' });
    const a = await openLog(d);
    const b = await openLog(d);
    try {
      const ga = await Governance.open({ log: a.log });
      const gb = await Governance.open({ log: b.log });
      const policyId = pid('models-2w');
      await ga.createConsent({ policyId, subject: 'p-2w', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
      await ga.registerModel({ model: 'two_writers', version: '1', weightsHash: W('2w'), intendedUse: 'triage', riskClass: 'imdrf_ii' }, { id: 'eng-7', role: 'ml_engineer' });
      await ga.approveModel('two_writers', '1', { id: 'cso-1', role: 'clinical_safety_officer' });
      const spec = { modelName: 'two_writers', modelVersion: '1', weightsHash: W('2w'), framework: 'onnx' };
      const infer = (g: Governance, i: number) =>
        g.recordInference({
          actor: { id: 'dr-derm', role: 'dermatologist' },
          purpose: 'TREAT',
          policyId,
          input: { uri: `s3://b/2w-${i}`, digest: sha256Hex(`2w ${i}`) },
          outputs: [{ name: 'r', uri: `s3://b/2w-${i}.json`, digest: sha256Hex(`2w out ${i}`) }],
          pipeline: PIPELINE,
          model: spec,
        });
      // b approves nothing itself: it learns the approval from the log, and runs.
      await infer(gb, 1);
      // b retires; a, which saw the approval, must not run on its stale view.
      await gb.retireModel('two_writers', '1', { id: 'cso-1', role: 'clinical_safety_officer' });
      await assert.rejects(infer(ga, 2), (err: unknown) => err instanceof ModelRefusedError && err.state === 'retired');
    } finally {
      await a.log.close();
      await b.log.close();
      await a.dir.store.close();
      await b.dir.store.close();
      tmp.cleanup();
    }
  });
});

describe('a federated line ends in a registered version', () => {
  it('the final round registers its version (origin fl); it runs only once approved', async () => {
    const env = await createServerEnv();
    try {
      const g = env.governance;
      const coord = { id: 'coord-1', role: 'fl_coordinator' };
      const key = formatSignerKey('site-1', Buffer.alloc(32, 3));
      await g.registerFlSite({ site: 'site-1', key: verifierKeyFromSignerKey(key) }, coord);
      const signed = (round: number, update: string) => ({ site: 'site-1', update, signature: toBase64(parseSignerKey(key).sign(flUpdateMessage(g.log.origin, 'fl-line', round, 'site-1', update))) });
      await g.recordFlRound({ line: 'fl-line', round: 1, aggregation: 'fedavg', sites: [signed(1, 'a1'.repeat(32))], globalModel: W('fl 1') }, coord);
      const last = await g.recordFlRound(
        {
          line: 'fl-line',
          round: 2,
          aggregation: 'fedavg',
          sites: [signed(2, 'a2'.repeat(32))],
          globalModel: W('fl 2'),
          final: true,
          version: { model: 'fl_model', version: '1.0.0', spec: { framework: 'pytorch', intendedUse: 'screening', riskClass: 'imdrf_ii' } },
        },
        coord,
      );
      assert.ok(last.registered, 'the final version was registered');
      const v = (await g.showModel('fl_model', '1.0.0')) as { status: string; weightsHash: string; origin: { kind: string; line: string; round: number }; registered: { actor: string } };
      assert.deepEqual([v.status, v.weightsHash, v.origin, v.registered.actor], ['registered', W('fl 2'), { kind: 'fl', line: 'fl-line', round: 2 }, 'coord-1']);
      await g.approveModel('fl_model', '1.0.0', { id: 'cso-1', role: 'clinical_safety_officer' });
      assert.equal(((await g.showModel('fl_model', '1.0.0')) as { status: string }).status, 'approved');
      await assertVerifies(env);
    } finally {
      await env.close();
    }
  });
});
