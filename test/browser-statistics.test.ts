/**
 * The explorer's public statistics page (#/statistics, issue 15) in headless Chromium against a
 * real server: a nurse (any authenticated role) sees each release with its ε and δ, mechanism,
 * budget period and released values, newest first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { ManualClock } from '../src/log/clock.js';
import { seededRandomBytes } from '../src/core/dp/random.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';
import { pid } from './helpers/policy-ids.js';

const T0 = Date.parse('2030-07-15T09:00:00.000Z');
const PO = { id: 'po-1', role: 'privacy_officer' };
const D1 = 'a1'.repeat(32);

describe('explorer: public statistics', { skip }, () => {
  const clock = new ManualClock(T0);
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];
  let releaseIndex = -1;

  before(async () => {
    currentCoreBundle();
    env = await createServerEnv({}, { clock, governance: { dp: { randomBytes: seededRandomBytes('browser') } } });
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
    await env.governance.createConsent({ policyId: pid('dp-web'), subject: 'patient-w', allowedPurposes: ['TREAT'], allowedRoles: ['nurse'] }, PO);
    await env.governance.recordDataAccess({ actor: { id: 'n-1', role: 'nurse' }, purpose: 'TREAT', policyId: pid('dp-web'), artifact: { uri: 's3://ehr/w', digest: D1 } });
    await env.governance.releaseStatistics({ query: 'unit=patient by=outcome from=2030-07-01 to=2030-08-01', epsilon: 0.5 }, PO);
    releaseIndex = (await env.governance.releaseStatistics({ query: 'unit=event per=week from=2030-07-06 to=2030-07-20', epsilon: 0.25, delta: 1e-6 }, PO)).release.index;
    browser = await launchChromium();
    const context = await browser.newContext();
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await env?.close();
  });

  it('shows every release with its ε, δ, mechanism, period and values', async () => {
    await page.goto(`${base}/#/overview`);
    await page.fill('[data-testid="token-input"]', env.tokens.nurse);
    await page.click('[data-testid="login-button"]');
    await page.locator('[data-testid="whoami"]').waitFor();
    await page.click('[data-testid="nav-statistics"]');
    await page.locator('[data-testid="page-statistics"]').waitFor();
    const cards = page.locator('[data-testid="release"]');
    assert.equal(await cards.count(), 2);
    // Newest first: the Gaussian release with δ, two weekly bins.
    const first = cards.nth(0);
    assert.equal((await first.locator('[data-testid="release-epsilon"]').textContent())?.trim(), 'ε = 0.25');
    assert.equal((await first.locator('[data-testid="release-delta"]').textContent())?.trim(), 'δ = 0.000001');
    assert.equal((await first.locator('[data-testid="release-mechanism"]').textContent())?.trim(), 'discrete Gaussian');
    assert.equal(await first.locator('[data-testid="release-value"]').count(), 2);
    const second = cards.nth(1);
    assert.equal((await second.locator('[data-testid="release-epsilon"]').textContent())?.trim(), 'ε = 0.5');
    assert.equal(await second.locator('[data-testid="release-delta"]').count(), 0);
    assert.equal((await second.locator('[data-testid="release-mechanism"]').textContent())?.trim(), 'discrete Laplace');
    assert.equal((await second.locator('[data-testid="release-period"]').textContent())?.trim(), '2030-07-01/P1M');
    assert.equal(await second.locator('[data-testid="release-value"]').count(), 3);
    // Each document is checked in the browser against the hash its DP_RELEASE entry commits.
    for (const card of [first, second]) assert.equal(await card.locator('[data-testid="release-document-check"]').getAttribute('data-ok'), 'true');
    assert.deepEqual(pageErrors, []);
  });

  it("links a DP_RELEASE entry's page to the statistics (for a role that reads entries)", async () => {
    const context = await browser!.newContext();
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${base}/#/event/${releaseIndex}`);
    await page.fill('[data-testid="token-input"]', env.tokens.auditor);
    await page.click('[data-testid="login-button"]');
    await page.click('[data-testid="statistics-link"]');
    await page.locator('[data-testid="page-statistics"]').waitFor();
    assert.deepEqual(pageErrors, []);
  });
});
