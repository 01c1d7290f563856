/**
 * The explorer's break-glass review queue (#/reviews) in headless Chromium, against a real server
 * with an injected clock: a privacy officer sees the open items with the decision each overrode,
 * sees them turn overdue after the deadline, closes one through the page (a BREAK_GLASS_REVIEWED
 * event on the log), and is refused on their own break-glass; other roles do not get the page.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ManualClock } from '../src/log/clock.js';
import { decodeEntry } from '../src/core/entry.js';
import { createServerEnv, SETUP_ACTOR, type ServerEnv } from './helpers/server-env.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';
import { pid } from './helpers/policy-ids.js';

const T0 = Date.parse('2030-06-01T09:00:00.000Z');
const H = 3_600_000;
const D1 = 'a1'.repeat(32);

describe('explorer: the break-glass review queue', { skip }, () => {
  const clock = new ManualClock(T0);
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  let context: BrowserContext | undefined;
  let selfToken = '';
  const indices: number[] = [];
  const pageErrors: string[] = [];
  const text = async (selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? '').trim();

  // A new context per login: a fresh sessionStorage (the explorer keeps the token there).
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
    env = await createServerEnv({ clock }, { clock });
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
    await env.governance.createConsent({ policyId: pid('bg-web'), subject: 'patient-w', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
    for (const actor of ['dr-derm', 'dr-derm-2']) {
      const r = await env.governance.recordDataAccess({
        actor: { id: actor, role: 'dermatologist' },
        purpose: 'BTG',
        policyId: pid('bg-web'),
        artifact: { uri: `s3://ehr/${actor}`, digest: D1 },
        justification: 'PATIENT_INCAPACITATED',
      });
      indices.push(r.event.index);
    }
    selfToken = (await env.auth.createToken('dr-derm', 'privacy_officer', SETUP_ACTOR)).token;
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await env?.close();
  });

  it('is not offered to a role without break-glass:review', async () => {
    await login(env.tokens.dermatologist);
    assert.equal(await page.locator('[data-testid="nav-reviews"]').isVisible(), false);
    await page.goto(`${base}/#/reviews`);
    await page.locator('[data-testid="error"]', { hasText: /break-glass:review/ }).waitFor();
    assert.deepEqual(pageErrors, []);
  });

  it('shows the open items with the decision each overrode, then overdue after the deadline', async () => {
    await login(env.tokens.privacy_officer);
    await page.click('[data-testid="nav-reviews"]');
    await page.locator('[data-testid="page-reviews"]').waitFor();
    assert.equal(await text('[data-testid="reviews-open"]'), '2');
    assert.equal(await text('[data-testid="reviews-overdue"]'), '0');
    const row = `[data-testid="review-row"][data-index="${indices[0]}"]`;
    assert.match(await text(row), /dr-derm.*dermatologist.*BTG.*PATIENT_INCAPACITATED.*PURPOSE_NOT_ALLOWED/);
    assert.equal(await page.locator(`${row} [data-testid="review-state"]`).getAttribute('data-state'), 'open');
    clock.set(T0 + 72 * H + 1);
    await page.click('[data-testid="reviews-tab-overdue"]');
    await page.locator('[data-testid="reviews-overdue"]', { hasText: '2' }).waitFor();
    assert.equal(await page.locator('[data-testid="review-row"][data-overdue="true"]').count(), 2);
    assert.equal(await page.locator(`${row} [data-testid="review-state"]`).getAttribute('data-state'), 'overdue');
    assert.deepEqual(pageErrors, []);
  });

  it('closes a review through the page: a BREAK_GLASS_REVIEWED entry, and the queue shrinks', async () => {
    await page.goto(`${base}/#/reviews`);
    const row = `[data-testid="review-row"][data-index="${indices[0]}"]`;
    await page.locator(row).waitFor();
    await page.selectOption(`${row} [data-testid="review-outcome"]`, 'not_justified');
    await page.selectOption(`${row} [data-testid="review-reason"]`, 'NO_TREATING_RELATIONSHIP');
    const size = env.log.size;
    await page.click(`${row} [data-testid="review-close"]`);
    await page.locator('[data-testid="reviews-open"]', { hasText: '1' }).waitFor();
    assert.equal(await page.locator(row).count(), 0);
    const entries = [];
    for (let i = size; i < env.log.size; i++) entries.push(decodeEntry((await env.log.reader.getEntry(i)).bytes.toString('utf8')));
    const review = entries.find((e) => e.type === 'BREAK_GLASS_REVIEWED');
    assert.ok(review, 'a BREAK_GLASS_REVIEWED entry was written');
    assert.deepEqual(
      [(review.payload as Record<string, unknown>)['breakGlass'], (review.payload as Record<string, unknown>)['outcome'], (review.payload as Record<string, unknown>)['actor']],
      [indices[0], 'not_justified', 'po-1'],
    );
    await page.click('[data-testid="reviews-tab-all"]');
    await page.locator(`${row} [data-testid="review-state"][data-state="closed"]`).waitFor();
    assert.deepEqual(pageErrors, []);
  });

  it("refuses the reviewer's own break-glass, with the code on the page", async () => {
    await login(selfToken);
    await page.goto(`${base}/#/reviews`);
    const row = `[data-testid="review-row"][data-index="${indices[1]}"]`;
    const own = `[data-testid="review-row"][data-index="${indices[0]}"]`;
    await page.locator(row).waitFor();
    assert.equal(await page.locator(own).count(), 0, 'the closed item is not in the open queue');
    // dr-derm's own first access is closed already: a new one of theirs is open, and theirs to leave alone.
    const mine = await env.governance.recordDataAccess({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'BTG',
      policyId: pid('bg-web'),
      artifact: { uri: 's3://ehr/again', digest: D1 },
      justification: 'URGENT_TREATMENT',
    });
    await page.reload();
    const mineRow = `[data-testid="review-row"][data-index="${mine.event.index}"]`;
    await page.locator(mineRow).waitFor();
    const size = await env.dir.store.treeSize();
    await page.click(`${mineRow} [data-testid="review-close"]`);
    await page.locator(`${mineRow} [data-testid="review-error"]`, { hasText: 'REVIEW_SEPARATION_OF_DUTIES' }).waitFor();
    for (let i = size; i < (await env.dir.store.treeSize()); i++) assert.equal(decodeEntry((await env.log.reader.getEntry(i)).bytes.toString('utf8')).type, 'SECURITY_ALERT');
    assert.deepEqual(pageErrors, []);
  });
});
