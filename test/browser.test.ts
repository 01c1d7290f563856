/**
 * End to end: the web audit explorer (web/) in a real headless Chromium, against the real server
 * (createApp) over a real SQLite log built through the governance overlay.
 *
 * The browser logs in with an auditor token, filters the timeline down to the denied inference,
 * verifies its inclusion proof and checkpoint signature with the browser bundle of src/core, opens
 * the receipt of an executed inference and verifies it, and catches an entry the server tampered with.
 *
 * Needs Debian's /usr/bin/chromium (CI: apt-get install chromium); skipped without it. Driven by
 * playwright-core (no bundled browsers). Screenshots go to test-artifacts/browser/ (git-ignored).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { initDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import { ManualClock } from '../src/log/clock.js';
import type { Log } from '../src/log/log.js';
import { ConsentDeniedError, Governance, type Actor, type InferenceInput } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp } from '../src/server/app.js';
import { pid } from './helpers/policy-ids.js';
import { WEB_ROOT, currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHOTS = join(ROOT, 'test-artifacts', 'browser');

const T0 = Date.parse('2030-03-01T08:00:00.000Z');
const HOUR = 3_600_000;
const PO: Actor = { id: 'po-1', role: 'privacy_officer' };
const DERM: Actor = { id: 'user-42', role: 'dermatologist' };
const NURSE: Actor = { id: 'nurse-7', role: 'nurse' };
const OPERATOR = { actor: 'test-operator', role: 'operator' };
const POLICY = pid('derm-1');
const WEIGHTS = 'c3'.repeat(32);
const uri = (name: string) => `s3://clinic-bucket/patient-7781/${name}`;

function inference(n: number): InferenceInput {
  return {
    actor: DERM,
    purpose: 'TREAT',
    policyId: POLICY,
    input: { uri: uri(`image${n}.jpg`), digest: 'a1'.repeat(32) },
    outputs: [{ name: 'report_json', uri: uri(`report${n}.json`), digest: 'b2'.repeat(32) }],
    pipeline: { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', containerImage: `registry.example/derm@sha256:${'e5'.repeat(32)}`, parameters: { size: 224, normalize: true } },
    model: { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: WEIGHTS, framework: 'pytorch' },
    // issue 14: the second inference carries an explanation artifact.
    ...(n === 1 ? { explanations: [{ method: 'grad_cam', parameters: { layer: 'layer4' }, output: 'report_json', uri: uri('gradcam1.png'), digest: 'f6'.repeat(32) }] } : {}),
  };
}

describe('web audit explorer in headless Chromium', { skip }, () => {
  let tmp = '';
  let dir: DataDir | undefined;
  let log: Log | undefined;
  let app: FastifyInstance | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let base = '';
  let auditorToken = '';
  let deniedInference = -1;
  const inferences: number[] = [];
  const pageErrors: string[] = [];

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  async function text(testid: string): Promise<string> {
    return ((await page.locator(`[data-testid="${testid}"]`).first().textContent()) ?? '').trim();
  }

  /** One attribute of every element matching `selector`, in document order. */
  async function attrs(selector: string, name: string): Promise<(string | null)[]> {
    return Promise.all((await page.locator(selector).all()).map((l) => l.getAttribute(name)));
  }

  /** Waits until the element's text is exactly `value` (verification runs asynchronously). */
  async function waitText(testid: string, value: string | RegExp): Promise<void> {
    const re = typeof value === 'string' ? new RegExp(`^\\s*${value}\\s*$`) : value;
    await page.locator(`[data-testid="${testid}"]`, { hasText: re }).first().waitFor();
  }

  before(async () => {
    // The explorer verifies with web/dist/custos-core.js: it must be built from src/core as it is now.
    currentCoreBundle();
    mkdirSync(SHOTS, { recursive: true });
    tmp = mkdtempSync(join(tmpdir(), 'custos-browser-'));
    await initDataDir(join(tmp, 'data'), { origin: 'browser-test.custos.local/log' });
    const clock = new ManualClock(T0);
    const opened = await openLog(join(tmp, 'data'), { clock });
    dir = opened.dir;
    log = opened.log;
    const g = await Governance.open({ log, clock });
    const auth = new Authenticator({ log });

    await g.createConsent({ policyId: POLICY, subject: 'patient-pseudo-7781', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, PO);
    for (let n = 0; n < 3; n++) {
      clock.advance(HOUR);
      await g.recordDataAccess({ actor: DERM, purpose: 'TREAT', policyId: POLICY, artifact: { uri: uri(`image${n}.jpg`), digest: 'a1'.repeat(32) } });
      inferences.push((await g.recordInference(inference(n))).event.index);
      // A nurse keeps trying: every attempt is refused and logged (and flagged as an anomaly).
      for (let k = 0; k < 2; k++) {
        await assert.rejects(g.recordDataAccess({ actor: NURSE, purpose: 'TREAT', policyId: POLICY, artifact: { uri: uri('chart.pdf'), digest: 'd4'.repeat(32) } }), ConsentDeniedError);
      }
    }
    // Erasure of the first image's URI: its receipt must show "(erased)" and still verify.
    await g.erase('uri', uri('image0.jpg'), PO);
    clock.advance(HOUR / 2);
    await g.revokeConsent(POLICY, PO);
    await assert.rejects(g.recordInference(inference(9)), (err: unknown) => {
      assert.ok(err instanceof ConsentDeniedError);
      assert.equal(err.decision.reason, 'REVOKED');
      deniedInference = err.event.index;
      return true;
    });
    auditorToken = (await auth.createToken('auditor-1', 'auditor', OPERATOR)).token;

    app = await createApp({ log, governance: g, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, webRoot: WEB_ROOT });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    base = address.replace(/\/$/, '');

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await app?.close();
    await log?.close();
    await dir?.store.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('shows only the login without a token, and a clear error for a bad one', async () => {
    await page.goto(`${base}/#/events`);
    await page.locator('[data-testid="login-form"]').waitFor();
    assert.equal(await page.locator('[data-testid="nav"]').isVisible(), false, 'no navigation before login');
    assert.equal(await page.locator('[data-testid="logout"]').isVisible(), false);
    assert.equal(await page.locator('[data-testid="page-events"], [data-testid="page-overview"], table').count(), 0, 'no data before login');
    await shot('01-login');

    await page.fill('[data-testid="token-input"]', `custos_0000000000000000_${'x'.repeat(43)}`);
    await page.click('[data-testid="login-button"]');
    await waitText('login-error', /rejected/);
    assert.match(await text('login-error'), /401 UNAUTHENTICATED/);
    assert.equal(await page.locator('[data-testid="nav"]').isVisible(), false);
    await shot('02-login-error');
  });

  it('logs in with an auditor token and shows the overview', async () => {
    await page.fill('[data-testid="token-input"]', auditorToken);
    await page.click('[data-testid="login-button"]');
    // The link asked for before logging in (#/events) is kept.
    await page.locator('[data-testid="page-events"]').waitFor();
    assert.equal(await page.locator('[data-testid="nav"]').isVisible(), true);
    await page.click('[data-testid="nav-overview"]');
    await page.locator('[data-testid="page-overview"]').waitFor();
    assert.match(await text('whoami'), /auditor/);
    assert.equal(await text('stat-entries'), String(log!.size));
    assert.equal(await text('stat-denials'), '7');
    await page.locator('[data-testid="types-chart"]').waitFor();
    await page.locator('[data-testid="hours-chart"]').waitFor();
    await waitText('overview-signature', /signature verified in this browser/);
    // The auditor may verify the whole log.
    await page.click('[data-testid="verify-now"]');
    await waitText('verify-result', /Verified in/);
    await shot('03-overview');
  });

  it('filters the timeline to denials and verifies the denied inference in the browser', async () => {
    await page.click('[data-testid="nav-events"]');
    await page.locator('[data-testid="page-events"]').waitFor();
    await page.selectOption('[data-testid="filter-outcome"]', 'denied');
    await page.waitForFunction('location.hash.includes("outcome=denied")');
    await page.locator('[data-testid="events-table"]').waitFor();
    const types = await attrs('[data-testid="event-row"]', 'data-type');
    assert.equal(types.length, 7);
    assert.ok(
      types.every((t) => t === 'CONSENT_DENIED'),
      `only denials: ${types.join(', ')}`,
    );
    const row = page.locator('[data-testid="event-row"][data-operation="inference"]');
    assert.equal(await row.count(), 1);
    assert.equal(await row.getAttribute('data-index'), String(deniedInference));
    await shot('04-timeline-denied');

    await row.locator('[data-testid="event-link"]').click();
    await page.locator('[data-testid="page-event"]').waitFor();
    await waitText('proof-status', 'verified');
    for (const id of ['index', 'leaf', 'inclusion', 'keyid', 'signature', 'root']) {
      assert.equal(await page.locator(`[data-testid="check-${id}"]`).getAttribute('data-ok'), 'true', `check ${id}`);
    }
    assert.match(await text('event-outcome'), /denied: REVOKED/);
    assert.equal(await page.locator('[data-testid="receipt-link"]').count(), 0, 'a denied inference has no receipt');
    assert.equal(await page.locator('[data-testid="policy-link"]').count(), 1);
    await shot('05-denied-inference');
  });

  it('opens the receipt of an executed inference and verifies it', async () => {
    const first = inferences[0]!;
    await page.goto(`${base}/#/event/${first}`);
    await waitText('proof-status', 'verified');
    await page.click('[data-testid="receipt-link"]');
    await page.locator('[data-testid="page-receipt"]').waitFor();
    await waitText('receipt-status', 'verified');
    assert.equal(await text('proof-status'), 'verified');
    assert.equal(await text('receipt-actor'), DERM.id);
    assert.equal(await page.locator('[data-testid="model-weights"]').getAttribute('title'), WEIGHTS);
    const uris = await page.locator('[data-testid="artifact-uri"]').allTextContents();
    // The auditor sees commitments only: opening needs commitments:open (not an auditor's).
    assert.deepEqual(uris, ['(erased)', '(sealed)']);
    assert.equal(await page.locator('[data-testid="open-form"]').count(), 0);
    const checks = await attrs('[data-testid="receipt-check"]', 'data-ok');
    assert.ok(checks.length >= 8 && checks.every((ok) => ok === 'true'), `receipt checks: ${checks.join(',')}`);
    const docs = await attrs('[data-testid="document-check"]', 'data-ok');
    assert.deepEqual(docs, ['true', 'true', 'true', 'true', 'true', 'true']);
    await shot('06-receipt');
  });

  it('shows the explanations of an inference in its receipt, their document checked in the browser', async () => {
    await page.goto(`${base}/#/receipt/${inferences[1]!}`);
    await page.locator('[data-testid="page-receipt"]').waitFor();
    await waitText('receipt-status', 'verified');
    assert.equal(await page.locator('[data-testid="explanation-row"]').count(), 1);
    assert.equal(await text('explanation-method'), 'grad_cam');
    assert.equal(await text('explanation-output'), 'report_json');
    await waitText('explanations-document', 'matches the log');
    const docs = await attrs('[data-testid="document-check"]', 'data-ok');
    assert.deepEqual(docs, ['true', 'true', 'true', 'true', 'true', 'true', 'true']);
    const roles = await page.locator('[data-testid="artifact-row"] td:first-child').allTextContents();
    assert.deepEqual(roles, ['input', 'output report_json', 'explanation 1 (grad_cam of report_json)']);
    await shot('06b-receipt-explanations');
    // Back where the next test expects to start: the first receipt.
    await page.goto(`${base}/#/receipt/${inferences[0]!}`);
    await page.locator('[data-testid="page-receipt"]').waitFor();
  });

  it('shows the policy with its versions, decisions and revocation', async () => {
    await page.click('[data-testid="policy-link"]');
    await page.locator('[data-testid="page-policy"]').waitFor();
    assert.equal(await text('policy-status'), 'revoked');
    assert.equal(await page.locator('[data-testid="policy-version"]').count(), 2);
    assert.equal(await page.locator('[data-testid="policy-decisions-v1"] [data-testid="policy-decision"]').count(), 12);
    assert.equal(await page.locator('[data-testid="policy-decisions-v2"] [data-testid="policy-decision"]').count(), 1);
    await shot('07-policy');
  });

  it('flags the actor with a high denial rate', async () => {
    await page.click('[data-testid="nav-anomalies"]');
    await page.locator('[data-testid="page-anomalies"]').waitFor();
    const flagged = page.locator('[data-testid="anomaly-row"]');
    assert.equal(await flagged.count(), 1);
    assert.equal(await flagged.getAttribute('data-actor'), NURSE.id);
    await page.selectOption('[data-testid="anomaly-hours"]', '1');
    await page.waitForFunction('location.hash === "#/anomalies?hours=1"');
    await page.locator('[data-testid="anomalies-empty"]').waitFor();
    await page.selectOption('[data-testid="anomaly-hours"]', '24');
    await page.locator('[data-testid="anomaly-row"]').waitFor();
    await shot('08-anomalies');
  });

  it('fails the proof of an entry the server tampered with', async () => {
    const target = inferences[1]!;
    await page.route(`**/api/v1/entries/${target}`, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { entryText: string };
      body.entryText = body.entryText.replace('"purpose":"TREAT"', '"purpose":"HRESCH"');
      await route.fulfill({ response, json: body });
    });
    await page.goto(`${base}/#/event/${target}`);
    await waitText('proof-status', 'failed');
    assert.equal(await page.locator('[data-testid="check-leaf"]').getAttribute('data-ok'), 'false');
    assert.equal(await page.locator('[data-testid="check-signature"]').getAttribute('data-ok'), 'true');
    await shot('09-tampered-entry');
    await page.unroute(`**/api/v1/entries/${target}`);
  });

  it('logs out', async () => {
    await page.click('[data-testid="logout"]');
    await page.locator('[data-testid="login-form"]').waitFor();
    assert.equal(await page.evaluate('sessionStorage.getItem("custos.token")'), null);
    assert.equal(await page.locator('[data-testid="nav"]').isVisible(), false);
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
