/**
 * issue 14: the explorer's "Verify a bundle" page also checks a training cohort proof (docs/training.md),
 * in a real headless Chromium against a real server, with no token:
 * - an inclusion proof and a non-inclusion proof (for a withdrawn patient) from the privacy
 *   officer's route pass every check, with the verdict saying what they prove, as in Node;
 * - a proof with another cohort root fails the entry check with COHORT_PROOF_INVALID;
 * - the page never shows the subject id, and verifying makes no request.
 * Needs Debian's /usr/bin/chromium; skipped without it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { verifyCohortProof, type CohortProof } from '../src/core/cohort.js';
import { parseVerifierKey } from '../src/core/note.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { WEB_ROOT, currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';

const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'd4'.repeat(32), framework: 'pytorch' };
const PO = { id: 'po-1', role: 'privacy_officer' };

interface Shown {
  verdict: string;
  code: string;
  checks: { name: string; status: string; code: string }[];
}

describe('explorer: verify a training cohort proof dropped onto the page', { skip }, () => {
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  let included: CohortProof;
  let absent: CohortProof;
  const pageErrors: string[] = [];
  const requests: string[] = [];

  async function getProof(run: number, body: Record<string, unknown>): Promise<CohortProof> {
    const res = await fetch(`${base}/api/v1/training/${run}/cohort-proof`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.tokens.privacy_officer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ purpose: 'PATRQT', ...body }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as CohortProof;
  }

  async function choose(name: string, value: unknown): Promise<Shown> {
    await page.locator('[data-testid="bundle-verdict"]').evaluate('(v) => { v.dataset.verdict = "none"; }');
    await page.setInputFiles('[data-testid="bundle-file"]', { name, mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(value)) });
    await page.locator('[data-testid="bundle-verdict"]:not([data-verdict="pending"]):not([data-verdict="none"])').waitFor();
    const v = page.locator('[data-testid="bundle-verdict"]');
    const checks = await Promise.all(
      (await page.locator('[data-testid="bundle-check"]').all()).map(async (li) => ({
        name: (await li.getAttribute('data-name')) ?? '',
        status: (await li.getAttribute('data-status')) ?? '',
        code: (await li.getAttribute('data-code')) ?? '',
      })),
    );
    return { verdict: (await v.getAttribute('data-verdict')) ?? '', code: (await v.getAttribute('data-code')) ?? '', checks };
  }

  function inNode(p: unknown): Shown {
    const r = verifyCohortProof(p, { logKey: parseVerifierKey(env.dir.verifierKey) });
    return {
      verdict: r.ok ? 'ok' : 'failed',
      code: r.ok ? '' : 'COHORT_PROOF_INVALID',
      checks: r.checks.map((c) => ({ name: c.name, status: c.ok ? 'pass' : 'fail', code: c.ok ? '' : 'COHORT_PROOF_INVALID' })),
    };
  }

  before(async () => {
    currentCoreBundle();
    env = await createServerEnv({ webRoot: WEB_ROOT });
    base = (await env.app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
    const g = env.governance;
    const cohort = [];
    for (const subject of ['pt-web-1', 'pt-web-2', 'pt-web-3']) {
      cohort.push({ subject, policyId: (await g.createConsent({ subject, allowedPurposes: ['HRESCH'], allowedRoles: ['ml_engineer'] }, PO)).policy.policyId });
    }
    await g.revokeConsent(cohort[1]!.policyId, PO);
    const run = await g.recordTraining({
      actor: { id: 'eng-7', role: 'ml_engineer' },
      purpose: 'HRESCH',
      dataset: { uri: 's3://research/web.parquet', digest: 'a1'.repeat(32), type: 'identified' },
      cohort,
      manifest: { name: 'web' },
      modelBefore: MODEL,
      modelAfter: { ...MODEL, modelVersion: '0.9.4' },
      computeBackend: 'cpu',
    });
    included = await getProof(run.event.index, { subject: 'pt-web-1' });
    absent = await getProof(run.event.index, { subject: 'pt-web-2', absent: true });

    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    await page.goto(`${base}/#/verify-bundle`);
    await page.locator('[data-testid="page-verify-bundle"]').waitFor();
    await page.locator('[data-testid="bundle-key-source"][data-source="server"]').waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await env?.close();
  });

  it('an inclusion and a non-inclusion proof pass every check, saying what they prove, as in Node', async () => {
    const before = requests.length;
    const a = await choose('inclusion.json', included);
    assert.deepEqual(a, inNode(included));
    assert.equal(a.verdict, 'ok');
    assert.deepEqual(
      a.checks.map((c) => c.name),
      ['opening', 'subject-binding', 'entry', 'cohort-proof', 'inclusion-proof', 'checkpoint-signature'],
    );
    assert.match((await page.textContent('[data-testid="bundle-verdict"]')) ?? '', /was in the cohort/);
    const b = await choose('absent.json', absent);
    assert.deepEqual(b, inNode(absent));
    assert.equal(b.verdict, 'ok');
    assert.match((await page.textContent('[data-testid="bundle-verdict"]')) ?? '', /was NOT in the cohort/);
    assert.match((await page.textContent('[data-testid="cohort-proof-summary"]')) ?? '', /non-inclusion/);
    assert.deepEqual(requests.slice(before), [], 'verifying made no request');
    // The subject id and salt are in the file, never on the page.
    const html = await page.content();
    for (const secret of ['pt-web-1', 'pt-web-2', absent.subject.openings[0]!.salt]) assert.ok(!html.includes(secret), `the page shows ${secret}`);
  });

  it('a proof with another cohort root fails the entry check with COHORT_PROOF_INVALID', async () => {
    const forged = { ...absent, cohort: { ...absent.cohort, root: '00'.repeat(32) } };
    const s = await choose('forged.json', forged);
    assert.deepEqual(s, inNode(forged));
    assert.equal(s.verdict, 'failed');
    assert.equal(s.code, 'COHORT_PROOF_INVALID');
    assert.equal(s.checks.find((c) => c.status === 'fail')?.name, 'entry');
    assert.deepEqual(pageErrors, []);
  });

  it('a proof whose consent entry is not the one committing its commitment fails the subject-binding check', async () => {
    // The consent entry of the included subject carried by the absent one's proof: another commitment.
    const opening = { ...absent.subject.openings[0]!, consent: included.subject.openings[0]!.consent };
    const forged = { ...absent, subject: { ...absent.subject, openings: [opening] } };
    const s = await choose('unbound.json', forged);
    assert.deepEqual(s, inNode(forged));
    assert.equal(s.verdict, 'failed');
    assert.equal(s.code, 'COHORT_PROOF_INVALID');
    assert.equal(s.checks.find((c) => c.status === 'fail')?.name, 'subject-binding');
    assert.deepEqual(pageErrors, []);
  });
});
