/**
 * The explorer's Models page (#/models, issue 14) in headless Chromium against a real server: an
 * auditor (models:read) sees each line's versions with their status, approval (by hand or under a
 * plan), retirement and change control outcome, the line's plans, and loads the inferences of a
 * version (each a link to its receipt); a role without models:read does not get the page in the nav.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';
import { pid } from './helpers/policy-ids.js';

const D1 = 'a1'.repeat(32);
const W1 = 'c3'.repeat(32);
const W2 = 'd4'.repeat(32);

describe('explorer: the Models page', { skip }, () => {
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let inference = -1;
  const pageErrors: string[] = [];

  async function login(token: string): Promise<void> {
    await context?.close();
    context = await browser!.newContext();
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${base}/#/overview`);
    await page.fill('[data-testid="token-input"]', token);
    await page.click('[data-testid="login-button"]');
    await page.locator('[data-testid="whoami"]').waitFor();
  }

  before(async () => {
    currentCoreBundle();
    env = await createServerEnv();
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
    const g = env.governance;
    const eng = { id: 'eng-7', role: 'ml_engineer' };
    const cso = { id: 'cso-1', role: 'clinical_safety_officer' };
    await g.createConsent({ policyId: pid('models-web'), subject: 'patient-m', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
    await g.registerModel({ model: 'lesion_triage', version: '1.0.0', weightsHash: W1, intendedUse: 'triage', riskClass: 'eu_mdr_iia' }, eng);
    await g.approveModel('lesion_triage', '1.0.0', cso);
    await g.registerModel({ model: 'lesion_triage', version: '1.1.0', weightsHash: W2, intendedUse: 'triage', riskClass: 'eu_mdr_iia' }, eng);
    await g.commitChangePlan({ planId: 'triage-pccp', model: 'lesion_triage', modifications: ['retrain'], acceptance: [{ metric: 'auroc', min: 0.9 }] }, cso);
    const r = await g.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: pid('models-web'),
      input: { uri: 's3://ehr/m-1.png', digest: D1 },
      outputs: [{ name: 'triage_json', uri: 's3://ehr/m-1.json', digest: D1 }],
      pipeline: { pipelineName: 'p', pipelineVersion: '1' },
      model: { modelName: 'lesion_triage', modelVersion: '1.0.0', weightsHash: W1, framework: 'onnx' },
    });
    inference = r.event.index;
    browser = await launchChromium();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await env.close();
  });

  it('lists versions with their status and plans, and loads the inferences of a version', async () => {
    await login(env.tokens.auditor);
    assert.equal(await page.locator('[data-testid="nav-models"]').isVisible(), true);
    await page.click('[data-testid="nav-models"]');
    await page.locator('[data-testid="page-models"]').waitFor();
    const rows = page.locator('[data-testid="model-version-row"]');
    assert.equal(await rows.count(), 2);
    assert.equal(await rows.nth(0).getAttribute('data-status'), 'approved');
    assert.equal(await rows.nth(1).getAttribute('data-status'), 'registered');
    assert.equal(await page.locator('[data-testid="model-plan-row"]').getAttribute('data-plan'), 'triage-pccp');
    await rows.nth(0).locator('[data-testid="model-inferences-load"]').click();
    const link = rows.nth(0).locator('[data-testid="model-inference-link"]');
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), `#/receipt/${inference}`);
    assert.deepEqual(pageErrors, []);
  });

  it('a role without models:read has no Models link', async () => {
    await login(env.tokens.nurse);
    assert.equal(await page.locator('[data-testid="nav-models"]').isVisible(), false);
  });
});
