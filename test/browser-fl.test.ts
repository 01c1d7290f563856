/**
 * The explorer's federated learning page (#/fl, issue 14) in headless Chromium against a real
 * server: two sites (one retired later), a line with two private rounds (the second final, its
 * version registered) and a refused round between them. An auditor (fl:read, models:read) sees
 * the sites with their key fingerprints and registration entries, each round with its sites'
 * update digests and the accountant's running ε, the refusal with its reason and entry, and a link
 * from the final round to the Models page; a coordinator (no models:read) sees the version without
 * the link (and the page does not ask the registry for it); a nurse (no fl:read) gets the permission message, not a crash.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { flUpdateMessage } from '../src/core/federated.js';
import { toBase64 } from '../src/core/hash.js';
import { formatSignerKey, parseSignerKey, verifierKeyFromSignerKey } from '../src/core/note.js';
import { FlRoundRefusedError } from '../src/service/governance.js';
import { createServerEnv, SETUP_ACTOR, type ServerEnv } from './helpers/server-env.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';
import { FL_COORDINATOR } from './helpers/federated.js';

const LINE = 'derm-fl';
const hex = (c: string) => c.repeat(64);
const shown = (x: number) => String(Number(x.toPrecision(4)));

describe('explorer: the federated learning page', { skip }, () => {
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let coordinator = '';
  const pageErrors: string[] = [];
  const epsilons: number[] = [];
  const entries: number[] = [];
  let refusal = -1;
  let keyHash = '';

  async function login(token: string, at = '#/overview'): Promise<void> {
    await context?.close();
    context = await browser!.newContext();
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${base}/${at}`);
    await page.fill('[data-testid="token-input"]', token);
    await page.click('[data-testid="login-button"]');
    await page.locator('[data-testid="whoami"]').waitFor();
  }

  before(async () => {
    currentCoreBundle();
    env = await createServerEnv();
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
    coordinator = (await env.auth.createToken('coord-w', 'fl_coordinator', SETUP_ACTOR)).token;
    const g = env.governance;
    const keys = new Map(['site-a', 'site-b'].map((s, i) => [s, formatSignerKey(s, Buffer.alloc(32, i + 3))] as const));
    for (const [s, k] of keys) {
      const r = await g.registerFlSite({ site: s, key: verifierKeyFromSignerKey(k) }, FL_COORDINATOR);
      if (s === 'site-a') keyHash = r.site.keyHash;
    }
    const signed = (site: string, round: number, update: string) => ({
      site,
      update,
      signature: toBase64(parseSignerKey(keys.get(site)!).sign(flUpdateMessage(g.log.origin, LINE, round, site, update))),
    });
    const dp = { clipNorm: 1, noiseMultiplier: 1.1, delta: 1e-5 };
    const r1 = await g.recordFlRound({ line: LINE, round: 1, aggregation: 'fedavg', sites: [signed('site-a', 1, hex('a')), signed('site-b', 1, hex('b'))], globalModel: hex('1'), dp }, FL_COORDINATOR);
    // A forged update: site-b's signature over another digest.
    try {
      await g.recordFlRound({ line: LINE, round: 2, aggregation: 'fedavg', sites: [{ ...signed('site-b', 2, hex('c')), update: hex('d') }], globalModel: hex('2'), dp }, FL_COORDINATOR);
      assert.fail('the forged round was recorded');
    } catch (err) {
      assert.ok(err instanceof FlRoundRefusedError);
      refusal = err.event.index;
    }
    const r2 = await g.recordFlRound(
      {
        line: LINE,
        round: 2,
        aggregation: 'fedavg',
        sites: [signed('site-a', 2, hex('e')), signed('site-b', 2, hex('f'))],
        globalModel: hex('3'),
        dp,
        final: true,
        version: { model: 'derm-fl-model', version: '1.0.0', spec: { framework: 'pytorch', intendedUse: 'triage', riskClass: 'eu_mdr_iia' } },
      },
      FL_COORDINATOR,
    );
    assert.ok(r2.registered, 'the final version was not registered');
    await g.retireFlSite('site-b', FL_COORDINATOR);
    for (const r of [r1, r2]) {
      epsilons.push(r.round.dp!.epsilon);
      entries.push(r.event.index);
    }
    browser = await launchChromium();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await env.close();
  });

  it('lists the sites, the rounds with their running ε, and the refusal with its reason', async () => {
    await login(env.tokens.auditor);
    assert.equal(await page.locator('[data-testid="nav-fl"]').isVisible(), true);
    await page.click('[data-testid="nav-fl"]');
    await page.locator('[data-testid="page-fl"]').waitFor();

    const sites = page.locator('[data-testid="fl-site-row"]');
    assert.equal(await sites.count(), 2);
    assert.deepEqual([await sites.nth(0).getAttribute('data-site'), await sites.nth(0).getAttribute('data-status')], ['site-a', 'active']);
    assert.deepEqual([await sites.nth(1).getAttribute('data-site'), await sites.nth(1).getAttribute('data-status')], ['site-b', 'retired']);
    assert.equal(await sites.nth(0).locator('[data-testid="fl-site-key"]').getAttribute('data-full'), keyHash);
    assert.match((await sites.nth(0).locator('[data-testid="fl-site-registered"]').getAttribute('href')) ?? '', /^#\/event\/\d+$/);

    assert.equal(await page.locator('[data-testid="fl-line"]').getAttribute('data-line'), LINE);
    assert.equal(await page.locator('[data-testid="fl-line-state"]').getAttribute('data-closed'), 'true');
    assert.equal(await page.locator('[data-testid="fl-line-epsilon"]').getAttribute('data-epsilon'), String(epsilons[1]));
    const rounds = page.locator('[data-testid="fl-round-row"]');
    assert.equal(await rounds.count(), 2);
    for (const k of [0, 1]) {
      const row = rounds.nth(k);
      assert.equal(await row.getAttribute('data-round'), String(k + 1));
      assert.deepEqual(await row.locator('[data-testid="fl-round-site"]').evaluateAll((xs) => xs.map((x) => x.getAttribute('data-site'))), ['site-a', 'site-b']);
      const eps = row.locator('[data-testid="fl-round-epsilon"]');
      assert.equal(await eps.getAttribute('data-epsilon'), String(epsilons[k]));
      assert.equal((await eps.textContent())?.trim(), `ε = ${shown(epsilons[k]!)}, δ = 0.00001`);
      assert.equal(await row.locator('[data-testid="fl-round-entry"]').getAttribute('href'), `#/event/${entries[k]}`);
    }
    // The running total grows: round 2's ε is above round 1's.
    assert.ok(epsilons[1]! > epsilons[0]!);
    assert.equal(await rounds.nth(0).locator('[data-testid="fl-round-global"]').getAttribute('data-full'), hex('1'));
    assert.equal(await rounds.nth(0).locator('[data-testid="fl-round-version"]').count(), 0);
    const version = rounds.nth(1).locator('[data-testid="fl-round-version"]');
    assert.equal(await version.getAttribute('data-registered'), 'true');
    assert.equal(await version.locator('[data-testid="fl-version-link"]').getAttribute('href'), '#/models/derm-fl-model');

    const refused = page.locator('[data-testid="fl-refusal-row"]');
    assert.equal(await refused.count(), 1);
    assert.equal(await refused.getAttribute('data-round'), '2');
    assert.equal((await refused.locator('[data-testid="fl-refusal-reason"]').textContent())?.trim(), 'FL_SIGNATURE_INVALID');
    assert.equal(await refused.locator('[data-testid="fl-refusal-entry"]').getAttribute('href'), `#/event/${refusal}`);

    // The refusal's entry page links back to its line.
    await refused.locator('[data-testid="fl-refusal-entry"]').click();
    await page.locator('[data-testid="fl-line-link"]').click();
    await page.locator('[data-testid="page-fl"]').waitFor();
    assert.equal(await page.locator('[data-testid="fl-round-row"]').count(), 2);
    // The version link opens the model on the Models page.
    await page.locator('[data-testid="fl-version-link"]').click();
    await page.locator('[data-testid="page-models"]').waitFor();
    assert.equal(await page.locator('[data-testid="model-version-row"]').getAttribute('data-version'), '1.0.0');
    assert.deepEqual(pageErrors, []);
  });

  it('a coordinator (no models:read) sees the final version without a link', async () => {
    const size = env.log.size;
    await login(coordinator, '#/fl');
    await page.locator('[data-testid="page-fl"]').waitFor();
    // The page did not ask the registry (a refused request would be audited: a SECURITY_ALERT).
    assert.equal(env.log.size, size);
    const version = page.locator('[data-testid="fl-round-version"]');
    assert.equal(await version.getAttribute('data-registered'), 'false');
    assert.equal(await version.locator('[data-testid="fl-version-link"]').count(), 0);
    assert.equal(await page.locator('[data-testid="nav-models"]').isVisible(), false);
    assert.deepEqual(pageErrors, []);
  });

  it('a role without fl:read has no link, and the page shows the permission message', async () => {
    await login(env.tokens.nurse);
    assert.equal(await page.locator('[data-testid="nav-fl"]').isVisible(), false);
    await page.goto(`${base}/#/fl`);
    const error = page.locator('[data-testid="error"]');
    await error.waitFor();
    assert.match((await error.textContent()) ?? '', /Not permitted.*does not have the “fl:read” permission/s);
    assert.deepEqual(pageErrors, []);
  });
});
