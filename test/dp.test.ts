/**
 * Differential privacy for released statistics (issue 15), end to end on real SQLite logs: the
 * exact clipped counts under the noise, the DP_RELEASE event and its off-ledger document, the
 * budget summed over the log across restarts, the refusal (nothing written), concurrent releases,
 * stored releases re-served identically, the CLI (`custos stats --dp`) and the HTTP routes; the
 * declared consumers (an undeclared one is refused, ids are matched case-insensitively) and the
 * total budget across consumers (the review's reproductions are regression tests here).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DB_FILE } from '../src/log/data-dir.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { join } from 'node:path';
import { ManualClock } from '../src/log/clock.js';
import { decodeEntry } from '../src/core/entry.js';
import { sha256, toHex } from '../src/core/hash.js';
import { canonicalJsonBytes } from '../src/core/canonical-json.js';
import { ConsentError, ValidationError } from '../src/core/errors.js';
import { parseDpConfig } from '../src/core/dp/config.js';
import { seededRandomBytes } from '../src/core/dp/random.js';
import type { Governance } from '../src/service/governance.js';
import type { Log } from '../src/log/log.js';
import { useTempRoot } from './helpers/fixtures.js';
import { pid } from './helpers/policy-ids.js';
import { assertError, callIn, ensureBuilt, okJson, runIn } from './helpers/cli.js';
import { createServerEnv, type ServerEnv, type TestRole } from './helpers/server-env.js';

const T0 = Date.parse('2030-05-10T10:00:00.000Z');
const PO = { id: 'po-1', role: 'privacy_officer' };
const DERM = { id: 'dr-derm', role: 'dermatologist' };
const D1 = 'a1'.repeat(32);
const D2 = 'b2'.repeat(32);
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } };
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' };
// ε = 100 with clip 1: the discrete Laplace scale is 0.01, so P(noise ≠ 0) = 2e^-100/(1+e^-100) ≈ 7e-44.
const EXACT = { epsilon: 100 };
const SITE = { epsilon: 1, delta: 1e-5 };
// Every consumer the tests release to is declared; the total is large enough not to bind here
// (the total has its own test below).
const CONFIG = parseDpConfig({
  period: 'month',
  total: { epsilon: 1000, delta: 1 },
  consumers: { 'public-site': { epsilon: 300 }, public: SITE, 'site-b': SITE, 'site-c': SITE, 'site-d': SITE, 'site-e': SITE, 'research-team': SITE },
});

/** Three patients: A (two policies, 4 inferences), B (1 access, 1 denial), C (nothing used). */
async function populate(gov: Governance, tag: string): Promise<void> {
  const consent = (label: string, subject: string) => gov.createConsent({ policyId: pid(`${tag}-${label}`), subject, allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist', 'nurse'] }, PO);
  await consent('a1', `patient-a-${tag}`);
  await consent('a2', `patient-a-${tag}`);
  await consent('b', `patient-b-${tag}`);
  await consent('c', `patient-c-${tag}`);
  for (const label of ['a1', 'a2', 'a1', 'a2']) {
    await gov.recordInference({
      actor: DERM,
      purpose: 'TREAT',
      policyId: pid(`${tag}-${label}`),
      input: { uri: `s3://x/${label}/in.jpg`, digest: D1 },
      outputs: [{ name: 'report_json', uri: `s3://x/${label}/out.json`, digest: D2 }],
      pipeline: PIPELINE,
      model: MODEL,
    });
  }
  await gov.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: pid(`${tag}-b`), artifact: { uri: 's3://x/b.json', digest: D1 } });
  await gov.recordDataAccess({ actor: DERM, purpose: 'HRESCH', policyId: pid(`${tag}-b`), artifact: { uri: 's3://x/b.json', digest: D1 } }).catch(() => undefined);
}

const Q_OUTCOME = 'unit=patient clip=2 by=outcome from=2030-05-01 to=2030-06-01';

async function entries(log: Log, from: number): Promise<{ type: string; payload: Record<string, unknown> }[]> {
  const out = [];
  for (let i = from; i < log.size; i++) {
    const e = decodeEntry((await log.reader.getEntry(i)).bytes.toString('utf8'));
    out.push({ type: e.type, payload: e.payload as Record<string, unknown> });
  }
  return out;
}

describe('differential privacy: the service', () => {
  const root = useTempRoot('dp');
  const clock = new ManualClock(T0);
  const open = (dataDir?: string, seed = 'dp-seed') => root.openGovernance({ clock, ...(dataDir ? { dataDir } : {}), governance: { dp: { config: CONFIG, randomBytes: seededRandomBytes(seed) } } });

  it('releases the exact clipped counts under the noise, as a DP_RELEASE event with its document off-ledger', async () => {
    const f = await open();
    await populate(f.gov, 's1');
    const size = f.log.size;
    const r = await f.gov.releaseStatistics({ query: Q_OUTCOME, ...EXACT, consumer: 'public-site' }, PO);
    assert.equal(r.reused, false);
    const d = r.release.document!;
    // Patient A: 4 inferences clipped to 2; patient B: 1 access (permitted) + 1 denial.
    assert.deepEqual(
      d.values.map((x) => [x.outcome, x.value]),
      [
        ['permitted', 3],
        ['denied', 1],
        ['break_glass', 0],
      ],
    );
    assert.equal(d.treeSize, size);
    assert.equal(d.budgetPeriod, '2030-05-01/P1M');
    assert.deepEqual(d.noise, { mechanism: 'discrete_laplace', sensitivity: 2, scale: { exact: '1/50', value: 2 / 100 } } as never);
    // One event: codes, identifiers and hashes only; the document's hash on the log.
    const [e] = await entries(f.log, size);
    assert.equal(f.log.size, size + 1);
    assert.equal(e!.type, 'DP_RELEASE');
    assert.deepEqual(Object.keys(e!.payload).sort(), ['actor', 'consumer', 'delta', 'documents', 'epsilon', 'mechanism', 'queryHash', 'role', 'unit']);
    assert.deepEqual([e!.payload['consumer'], e!.payload['epsilon'], e!.payload['delta'], e!.payload['unit']], ['public-site', 100, 0, 'patient']);
    const docHash = (e!.payload['documents'] as { release: string }).release;
    assert.equal(docHash, toHex(sha256(canonicalJsonBytes(d))));
    assert.equal(e!.payload['queryHash'], toHex(sha256(canonicalJsonBytes(d.query))));
    const stored = await f.log.sidecar.getDocument(docHash);
    assert.equal(stored?.kind, 'dp-release');
    // No patient id and no URI anywhere in the entry.
    const text = JSON.stringify(e);
    assert.ok(!text.includes('patient-') && !text.includes('s3://'));
    await f.close();
  });

  it('counts per event and per actor too, and filters', async () => {
    const f = await open();
    await populate(f.gov, 's2');
    const ev = await f.gov.releaseStatistics({ query: 'unit=event by=outcome from=2030-05-01 to=2030-06-01', ...EXACT, consumer: 'public-site' }, PO);
    assert.deepEqual(
      ev.release.document!.values.map((x) => x.value),
      [5, 1, 0],
    );
    const actor = await f.gov.releaseStatistics({ query: 'unit=actor clip=3 from=2030-05-01 to=2030-06-01 type=INFERENCE_EXECUTED,DATA_ACCESSED', ...EXACT, consumer: 'public-site' }, PO);
    assert.deepEqual(
      actor.release.document!.values.map((x) => x.value),
      [3],
    );
    await f.close();
  });

  it('re-serves the same release identically and spends nothing; the budget survives a restart', async () => {
    const f = await open();
    await populate(f.gov, 's3');
    const ask = (g: Governance, epsilon: number, query = Q_OUTCOME) => g.releaseStatistics({ query, epsilon, consumer: 'site-b' }, PO);
    const first = await ask(f.gov, 0.6);
    assert.equal(first.budget.epsilon.spent, 0.6);
    const size = f.log.size;
    const again = await ask(f.gov, 0.6);
    assert.equal(again.reused, true);
    assert.deepEqual(again.release, first.release);
    assert.equal(again.budget.epsilon.spent, 0.6);
    assert.equal(f.log.size, size, 'asking again writes nothing');
    // Past the budget (ε = 1 for site-b): refused, nothing written.
    await assert.rejects(
      () => ask(f.gov, 0.5, 'unit=event from=2030-05-01 to=2030-06-01'),
      (err: unknown) => err instanceof ConsentError && err.code === 'DP_BUDGET_EXHAUSTED',
    );
    assert.equal(f.log.size, size);
    const dataDir = f.dataDir;
    await f.close();

    // A new process (a fresh overlay on the same data directory, another noise seed): the budget is
    // the log's, the stored release is served as it was.
    const g = await open(dataDir, 'another-seed');
    await assert.rejects(
      () => ask(g.gov, 0.5, 'unit=event from=2030-05-01 to=2030-06-01'),
      (err: unknown) => err instanceof ConsentError && err.code === 'DP_BUDGET_EXHAUSTED',
    );
    const after = await ask(g.gov, 0.6);
    assert.equal(after.reused, true);
    assert.deepEqual(after.release, first.release);
    const listed = await g.gov.listReleases({ consumer: 'site-b' });
    assert.equal(listed.releases.length, 1);
    assert.deepEqual(listed.budget?.epsilon, { budget: 1, spent: 0.6, remaining: 0.4 });
    // 0.4 is left exactly (0.6 + 0.4 = 1 in exact arithmetic).
    const last = await ask(g.gov, 0.4, 'unit=event from=2030-05-01 to=2030-06-01');
    assert.equal(last.budget.epsilon.remaining, 0);
    // The next period has a fresh budget; the same query there is a new release.
    clock.set(Date.parse('2030-06-02T00:00:00.000Z'));
    const june = await ask(g.gov, 0.6);
    assert.equal(june.reused, false);
    assert.equal(june.release.document!.budgetPeriod, '2030-06-01/P1M');
    clock.set(T0);
    await g.close();
  });

  it('verification checks the release document; an edited one is reported and never served, and the budget stands', async () => {
    const f = await open();
    await populate(f.gov, 's6');
    const r = await f.gov.releaseStatistics({ query: Q_OUTCOME, epsilon: 0.9, consumer: 'site-d' }, PO);
    const clean = await verifyDocuments({ log: f.log });
    assert.equal(clean.ok, true, JSON.stringify(clean.findings));
    const db = new Database(join(f.dataDir, DB_FILE));
    try {
      const edited = { ...r.release.document!, values: r.release.document!.values.map((v) => ({ ...v, value: 0 })) };
      assert.equal(db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(Buffer.from(JSON.stringify(edited)), r.release.documentHash).changes, 1);
    } finally {
      db.close();
    }
    const report = await verifyDocuments({ log: f.log });
    assert.deepEqual(
      report.findings.map((x) => [x.kind, x.ref]),
      [['DOCUMENT_EDITED', r.release.documentHash]],
    );
    const listed = await f.gov.listReleases({ consumer: 'site-d' });
    assert.equal(listed.releases[0]!.document, null);
    // The budget is the log's: nothing in the store changes what was spent.
    assert.equal(listed.budget?.epsilon.spent, 0.9);
    await assert.rejects(
      () => f.gov.releaseStatistics({ query: 'unit=event from=2030-05-01 to=2030-06-01', epsilon: 0.2, consumer: 'site-d' }, PO),
      (err: unknown) => err instanceof ConsentError && err.code === 'DP_BUDGET_EXHAUSTED',
    );
    await f.close();
  });

  it('lets only one of two concurrent releases through when both do not fit', async () => {
    const f = await open();
    await populate(f.gov, 's4');
    const results = await Promise.allSettled([
      f.gov.releaseStatistics({ query: 'unit=event from=2030-05-01 to=2030-06-01', epsilon: 0.6, consumer: 'site-c' }, PO),
      f.gov.releaseStatistics({ query: 'unit=event per=day from=2030-05-01 to=2030-06-01', epsilon: 0.6, consumer: 'site-c' }, PO),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as ConsentError).code, 'DP_BUDGET_EXHAUSTED');
    assert.equal((await f.gov.listReleases({ consumer: 'site-c' })).budget?.epsilon.spent, 0.6);
    await f.close();
  });

  it('two writers on one log (two opens of the data directory) cannot both spend the last of a budget', async () => {
    const f = await open();
    await populate(f.gov, 's7');
    const g = await open(f.dataDir, 'second-writer');
    const results = await Promise.allSettled([
      f.gov.releaseStatistics({ query: 'unit=event from=2030-05-01 to=2030-06-01', epsilon: 0.6, consumer: 'site-e' }, PO),
      g.gov.releaseStatistics({ query: 'unit=event per=day from=2030-05-01 to=2030-06-01', epsilon: 0.6, consumer: 'site-e' }, PO),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected'], JSON.stringify(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))));
    assert.equal(((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as ConsentError).code, 'DP_BUDGET_EXHAUSTED');
    assert.equal((await g.gov.listReleases({ consumer: 'site-e' })).budget?.epsilon.spent, 0.6);
    assert.equal((await f.gov.listReleases({ consumer: 'site-e' })).budget?.epsilon.spent, 0.6);
    await g.close();
    await f.close();
  });

  it('refuses a role without dp:release, a bad query, δ with Laplace and no δ with the Gaussian: nothing written', async () => {
    const f = await open();
    await populate(f.gov, 's5');
    const size = f.log.size;
    const bad = async (input: Record<string, unknown>, actor = PO) =>
      assert.rejects(
        () => f.gov.releaseStatistics(input as never, actor),
        (err: unknown) => err instanceof ValidationError && err.code === 'VALIDATION_FAILED',
      );
    await bad({ query: Q_OUTCOME, epsilon: 0.1 }, { id: 'n-1', role: 'nurse' });
    await bad({ query: 'unit=patient from=2030-05-01', epsilon: 0.1 });
    await bad({ query: Q_OUTCOME, epsilon: 0.1, delta: 1e-6, mechanism: 'discrete_laplace' });
    await bad({ query: Q_OUTCOME, epsilon: 0.1, mechanism: 'discrete_gaussian' });
    await bad({ query: Q_OUTCOME, epsilon: 0 });
    await bad({ query: Q_OUTCOME, epsilon: 0.1, consumer: 'has spaces' });
    assert.equal(f.log.size, size);
    // The Gaussian, with δ: its σ² is published with the release.
    const g = await f.gov.releaseStatistics({ query: Q_OUTCOME, epsilon: 0.5, delta: 1e-6 }, PO);
    assert.equal(g.release.mechanism, 'discrete_gaussian');
    assert.ok((g.release.document!.noise.sigma2?.value ?? 0) > 1);
    assert.equal(g.budget.delta.spent, 1e-6);
    await f.close();
  });
});

describe('differential privacy: custos stats --dp', () => {
  const root = useTempRoot('dp-cli');
  let dataDir = '';
  before(async () => {
    ensureBuilt();
    const f = await root.openGovernance();
    await populate(f.gov, 'cli');
    dataDir = f.dataDir;
    await f.close();
    writeFileSync(join(dataDir, 'dp.json'), JSON.stringify({ period: 'year', consumers: { web: { epsilon: 1 } }, total: { epsilon: 1 } }));
  });

  const Q = 'unit=patient clip=2 by=outcome from=2021-01-01 to=2031-01-01';

  it('releases, re-serves the stored release, refuses past the budget (exit 7), and lists', async () => {
    const first = okJson<{ reused: boolean; release: { index: number; document: { values: { value: number }[] } }; budget: { epsilon: { spent: number } } }>(
      await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.7', '--query', Q, '--consumer', 'web', '--json']),
    );
    assert.equal(first.reused, false);
    assert.equal(first.budget.epsilon.spent, 0.7);
    assert.equal(first.release.document.values.length, 3);
    const again = okJson<typeof first>(await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.7', '--query', Q, '--consumer', 'web', '--json']));
    assert.equal(again.reused, true);
    assert.deepEqual(again.release, first.release);
    // A new process (the real bin): the budget spent above is on the log.
    const refused = await runIn(dataDir, ['stats', '--dp', '--epsilon', '0.5', '--query', 'unit=event from=2021-01-01 to=2031-01-01', '--consumer', 'web']);
    assertError(refused, 7, 'DP_BUDGET_EXHAUSTED');
    const list = okJson<{ releases: { index: number }[]; budget: { epsilon: { remaining: number } } }>(await callIn(dataDir, ['stats', '--dp', '--consumer', 'web', '--json']));
    assert.deepEqual(
      list.releases.map((r) => r.index),
      [first.release.index],
    );
    assert.equal(list.budget.epsilon.remaining, 0.3);
    const text = await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.7', '--query', Q, '--consumer', 'web']);
    assert.match(text.stdout, /returned as stored \(nothing spent\)/);
  });

  it('refuses bad flags with VALIDATION_FAILED (exit 2)', async () => {
    assertError(await callIn(dataDir, ['stats', '--dp', '--query', Q]), 2, 'VALIDATION_FAILED');
    assertError(await callIn(dataDir, ['stats', '--epsilon', '1']), 2, 'VALIDATION_FAILED');
    assertError(await callIn(dataDir, ['stats', '--dp', '--epsilon', '1', '--query', 'unit=nobody from=2000-01-01 to=2001-01-01']), 2, 'VALIDATION_FAILED');
    writeFileSync(join(dataDir, 'dp.json'), '{"period": "fortnight"}');
    assertError(await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.1', '--query', Q]), 2, 'VALIDATION_FAILED');
    writeFileSync(join(dataDir, 'dp.json'), JSON.stringify({ period: 'year', default: { epsilon: 1 } }));
    assertError(await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.1', '--query', Q, '--consumer', 'web']), 2, 'VALIDATION_FAILED');
    writeFileSync(join(dataDir, 'dp.json'), JSON.stringify({ period: 'year', consumers: { web: { epsilon: 1 } }, total: { epsilon: 1 } }));
  });

  it('refuses an undeclared consumer (exit 7, nothing written) and maps a case variant to the declared one', async () => {
    const before = okJson<{ releases: unknown[] }>(await callIn(dataDir, ['stats', '--dp', '--json'])).releases.length;
    assertError(await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.1', '--query', Q, '--consumer', 'somebody-else']), 7, 'DP_CONSUMER_UNKNOWN');
    // No --consumer: the default consumer, public, which this dp.json does not declare.
    assertError(await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.1', '--query', Q]), 7, 'DP_CONSUMER_UNKNOWN');
    assertError(await callIn(dataDir, ['stats', '--dp', '--consumer', 'somebody-else']), 7, 'DP_CONSUMER_UNKNOWN');
    assert.equal(okJson<{ releases: unknown[] }>(await callIn(dataDir, ['stats', '--dp', '--json'])).releases.length, before);
    // WEB is web: the same budget, listed under the same (lowercase) id.
    const list = okJson<{ releases: { consumer: string }[]; budget: { consumer: string; epsilon: { spent: number }; total: { epsilon: { spent: number; budget: number } } } }>(
      await callIn(dataDir, ['stats', '--dp', '--consumer', 'WEB', '--json']),
    );
    assert.deepEqual([list.budget.consumer, list.budget.epsilon.spent, list.budget.total.epsilon.spent, list.budget.total.epsilon.budget], ['web', 0.7, 0.7, 1]);
    assert.ok(list.releases.length > 0 && list.releases.every((r) => r.consumer === 'web'));
    assertError(await callIn(dataDir, ['stats', '--dp', '--epsilon', '0.5', '--query', 'unit=event from=2021-01-01 to=2030-01-01', '--consumer', 'Web']), 7, 'DP_BUDGET_EXHAUSTED');
    const text = await callIn(dataDir, ['stats', '--dp', '--consumer', 'web']);
    assert.match(text.stdout, /total budget \(all consumers\) for \d{4}-01-01\/P1Y: ε spent 0\.7 of 1 \(0\.3 left\)/);
  });
});

describe('differential privacy over HTTP', () => {
  let env: ServerEnv;
  const clock = new ManualClock(T0);
  before(async () => {
    env = await createServerEnv({}, { clock, governance: { dp: { config: CONFIG, randomBytes: seededRandomBytes('http') } } });
    await populate(env.governance, 'http');
  });
  after(async () => {
    await env?.close();
  });
  const call = (who: TestRole, method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
    env.app.inject({ method, url, headers: { authorization: `Bearer ${env.tokens[who]}` }, ...(payload ? { payload } : {}) });

  it('POST /api/v1/dp/releases: 201, then 200 with the stored release, 429 past the budget, 403 without dp:release', async () => {
    const body = { query: { unit: 'patient', clip: 2, by: ['outcome'], from: '2030-05-01', to: '2030-06-01' }, epsilon: 0.8 };
    const res = await call('privacy_officer', 'POST', '/api/v1/dp/releases', body);
    assert.equal(res.statusCode, 201, res.body);
    const first = res.json() as { reused: boolean; release: { index: number; consumer: string }; event: { index: number } };
    // No consumer named: the default consumer, public.
    assert.deepEqual([first.reused, first.release.consumer, first.event.index], [false, 'public', first.release.index]);
    const again = await call('privacy_officer', 'POST', '/api/v1/dp/releases', body);
    assert.equal(again.statusCode, 200);
    assert.deepEqual((again.json() as typeof first).release, first.release);
    const size = env.log.size;
    const over = await call('privacy_officer', 'POST', '/api/v1/dp/releases', { ...body, query: 'unit=event from=2030-05-01 to=2030-06-01' });
    assert.equal(over.statusCode, 429);
    assert.equal((over.json() as { error: { code: string } }).error.code, 'DP_BUDGET_EXHAUSTED');
    const nurse = await call('nurse', 'POST', '/api/v1/dp/releases', body);
    assert.equal(nurse.statusCode, 403);
    const malformed = await call('privacy_officer', 'POST', '/api/v1/dp/releases', { ...body, epsilon: 'lots' });
    assert.equal(malformed.statusCode, 400);
    // The 403 is a security event (SECURITY_ALERT, as every authorization refusal); no release is written.
    for (let i = size; i < env.log.size; i++) assert.notEqual(decodeEntry((await env.log.reader.getEntry(i)).bytes.toString('utf8')).type, 'DP_RELEASE');
    assert.equal((await call('nurse', 'GET', '/api/v1/dp/releases')).json().releases.length, 1);
  });

  it('GET /api/v1/dp/releases: the released figures, to any authenticated caller', async () => {
    for (const role of ['nurse', 'auditor', 'ml_engineer'] as const) {
      const res = await call(role, 'GET', '/api/v1/dp/releases');
      assert.equal(res.statusCode, 200, `${role}: ${res.body}`);
      const r = res.json() as { releases: { epsilon: number; mechanism: string; document: { budgetPeriod: string; values: unknown[] } }[] };
      assert.equal(r.releases.length, 1);
      assert.deepEqual([r.releases[0]!.epsilon, r.releases[0]!.mechanism, r.releases[0]!.document.budgetPeriod], [0.8, 'discrete_laplace', '2030-05-01/P1M']);
    }
    const withBudget = (await call('nurse', 'GET', '/api/v1/dp/releases?consumer=Public')).json() as {
      budget: { consumer: string; epsilon: { spent: number }; total: { epsilon: { spent: number } } };
    };
    assert.deepEqual([withBudget.budget.consumer, withBudget.budget.epsilon.spent, withBudget.budget.total.epsilon.spent], ['public', 0.8, 0.8]);
    const unknown = await call('nurse', 'GET', '/api/v1/dp/releases?consumer=po-1');
    assert.equal(unknown.statusCode, 403);
    assert.equal((unknown.json() as { error: { code: string } }).error.code, 'DP_CONSUMER_UNKNOWN');
    assert.equal((await call('nurse', 'GET', '/api/v1/dp/releases?consumer=bad%20id')).statusCode, 400);
    assert.equal((await env.app.inject({ method: 'GET', url: '/api/v1/dp/releases' })).statusCode, 401);
  });

  // Regression (security review): the consumer came from the body, any identifier, and went on the
  // log in clear; now it must be a consumer dp.json declares, so only operator-chosen ids reach the log.
  it('refuses a free-text consumer (403 DP_CONSUMER_UNKNOWN): nothing written, nothing on the log', async () => {
    const size = env.log.size;
    const res = await call('privacy_officer', 'POST', '/api/v1/dp/releases', {
      query: 'unit=event clip=1 by=outcome per=week from=2030-05-04 to=2030-05-18',
      epsilon: 0.1,
      consumer: 'MRN00012345-John-Smith-DOB-1970-01-01',
    });
    assert.equal(res.statusCode, 403, res.body);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'DP_CONSUMER_UNKNOWN');
    for (let i = size; i < env.log.size; i++) {
      const text = (await env.log.reader.getEntry(i)).bytes.toString('utf8');
      assert.notEqual(decodeEntry(text).type, 'DP_RELEASE');
      assert.ok(!text.toLowerCase().includes('mrn00012345'), `entry ${i} holds the consumer`);
    }
  });

  // Regression (security review): `Research-Team` after `research-team` had spent its budget got a
  // fresh budget (201); ids are now matched case-insensitively, so it is the same budget.
  it('charges a case variant of a consumer to the same budget (429 past it), and logs the lowercase id', async () => {
    const q = 'unit=event clip=1 by=outcome per=week from=2030-05-04 to=2030-05-18';
    const rel = (consumer: string, epsilon: number) => call('privacy_officer', 'POST', '/api/v1/dp/releases', { query: q, epsilon, consumer });
    const a = await rel('research-team', 1);
    assert.equal(a.statusCode, 201, a.body);
    assert.equal((await rel('research-team', 1)).statusCode, 200);
    assert.equal((await rel('research-team', 0.5)).statusCode, 429);
    const size = env.log.size;
    const d = await rel('Research-Team', 0.5);
    assert.equal(d.statusCode, 429, d.body);
    const err = (d.json() as { error: { code: string; details: { exhausted: string; consumer: string } } }).error;
    assert.deepEqual([err.code, err.details.exhausted, err.details.consumer], ['DP_BUDGET_EXHAUSTED', 'consumer', 'research-team']);
    // The same release asked in another case is the stored one.
    const same = await rel('RESEARCH-TEAM', 1);
    assert.equal(same.statusCode, 200);
    const index = (a.json() as { release: { index: number } }).release.index;
    assert.equal((same.json() as { release: { index: number } }).release.index, index);
    assert.equal(env.log.size, size);
    const e = decodeEntry((await env.log.reader.getEntry(index)).bytes.toString('utf8'));
    assert.equal((e.payload as { consumer: string }).consumer, 'research-team');
  });
});

describe('differential privacy: declared consumers and the total budget', () => {
  const root = useTempRoot('dp-total');
  const clock = new ManualClock(T0);
  const Q = 'unit=event from=2030-05-01 to=2030-06-01';

  it('refuses a release that fits its consumer but not the total across consumers: nothing written', async () => {
    const config = parseDpConfig({ consumers: { alpha: { epsilon: 1 }, beta: { epsilon: 1 } }, total: { epsilon: 1.5 } });
    const f = await root.openGovernance({ clock, governance: { dp: { config, randomBytes: seededRandomBytes('total') } } });
    await populate(f.gov, 't1');
    await f.gov.releaseStatistics({ query: Q, epsilon: 1, consumer: 'alpha' }, PO);
    const b = await f.gov.releaseStatistics({ query: Q, epsilon: 0.4, consumer: 'beta' }, PO);
    assert.deepEqual([b.budget.epsilon.spent, b.budget.total.epsilon.spent, b.budget.total.epsilon.remaining], [0.4, 1.4, 0.1]);
    const size = f.log.size;
    await assert.rejects(
      () => f.gov.releaseStatistics({ query: 'unit=event per=day from=2030-05-01 to=2030-06-01', epsilon: 0.2, consumer: 'beta' }, PO),
      (err: unknown) => {
        assert.ok(err instanceof ConsentError && err.code === 'DP_BUDGET_EXHAUSTED', String(err));
        const d = err.details as { exhausted: string; consumer: string; epsilon: { remaining: number }; total: { epsilon: { spent: number; budget: number } } };
        // beta had 0.6 left of its own; the total (1.5) had 0.1.
        assert.deepEqual([d.exhausted, d.consumer, d.epsilon.remaining, d.total.epsilon.spent, d.total.epsilon.budget], ['total', 'beta', 0.6, 1.4, 1.5]);
        return true;
      },
    );
    assert.equal(f.log.size, size);
    // Within both: 0.1 is exactly what the total has left.
    const last = await f.gov.releaseStatistics({ query: 'unit=event per=day from=2030-05-01 to=2030-06-01', epsilon: 0.1, consumer: 'beta' }, PO);
    assert.equal(last.budget.total.epsilon.remaining, 0);
    await f.close();
  });

  it('without dp.json: the one consumer public (the default), ε = 1 in all; any other is refused with nothing written', async () => {
    const f = await root.openGovernance({ clock, governance: { dp: { randomBytes: seededRandomBytes('default') } } });
    await populate(f.gov, 't2');
    const r = await f.gov.releaseStatistics({ query: Q, epsilon: 0.5 }, PO);
    assert.equal(r.release.consumer, 'public');
    assert.deepEqual([r.budget.epsilon.budget, r.budget.delta.budget, r.budget.total.epsilon.budget, r.budget.total.delta.budget], [1, 1e-5, 1, 1e-5]);
    const size = f.log.size;
    for (const consumer of ['research-team', 'po-1', 'MRN00012345-John-Smith-DOB-1970-01-01']) {
      await assert.rejects(
        () => f.gov.releaseStatistics({ query: Q, epsilon: 0.1, consumer }, PO),
        (err: unknown) => err instanceof ConsentError && err.code === 'DP_CONSUMER_UNKNOWN',
      );
    }
    await assert.rejects(
      () => f.gov.listReleases({ consumer: 'research-team' }),
      (err: unknown) => err instanceof ConsentError && err.code === 'DP_CONSUMER_UNKNOWN',
    );
    assert.equal(f.log.size, size);
    assert.equal((await f.gov.listReleases({ consumer: 'PUBLIC' })).budget?.epsilon.spent, 0.5);
    await f.close();
  });
});
