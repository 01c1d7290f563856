/**
 * The explorer's witness panel in headless Chromium: one log, two witnesses on loopback. The
 * overview shows each witness's cosigned size and lag, and the latest checkpoint that reached the
 * quorum, its log signature and cosignatures verified in the browser by src/core
 * (checkWitnessQuorum in web/dist/custos-core.js); a refusing witness shows its alarm.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';
import { startTestWitness, type TestWitness } from './helpers/witnesses.js';
import { formatVerifierKey, parseVerifierKey } from '../src/core/note.js';
import { witnessKeyFromVkey } from '../src/server/witness-key.js';

interface WitnessesJson {
  witnesses: { name: string; lagEntries: number; alarm: unknown }[];
  quorumCheckpoint: { treeSize: number } | null;
}

describe('explorer: the witness panel', { skip }, () => {
  let root = '';
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  const witnesses: TestWitness[] = [];
  const pageErrors: string[] = [];

  const state = async (): Promise<WitnessesJson> => (await fetch(`${base}/api/v1/witnesses`, { headers: { authorization: `Bearer ${env.tokens.auditor}` } })).json() as Promise<WitnessesJson>;
  async function until(what: string, ok: (s: WitnessesJson) => boolean): Promise<void> {
    for (let i = 0; i < 1500; i++) {
      if (ok(await state())) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  const text = async (selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? '').trim();

  before(async () => {
    currentCoreBundle();
    root = mkdtempSync(join(tmpdir(), 'custos-browser-witness-'));
    env = await createServerEnv(
      {},
      {
        witnesses: async (dir) => {
          for (const name of ['witness.test/alpha', 'witness.test/beta']) witnesses.push(await startTestWitness({ dataDir: mkdtempSync(join(root, 'w-')), name, logs: [dir.verifier] }));
          return { endpoints: witnesses.map((w) => ({ url: w.url, key: witnessKeyFromVkey(w.vkey) })), quorum: 2, retry: { baseMs: 10, capMs: 100 } };
        },
      },
    );
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
    await env.log.append('AUDIT_EVENT', { resource: 'r-1', practitioner: 'p-1', contentHash: 'ab'.repeat(32) });
    await until('both witnesses to cosign', (s) => s.quorumCheckpoint?.treeSize === env.log.size && s.witnesses.every((w) => w.lagEntries === 0));
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await env?.close();
    for (const w of witnesses) await w.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('shows each witness cosigned at the latest size, and the quorum checkpoint verified in the browser', async () => {
    await page.goto(`${base}/#/overview`);
    await page.fill('[data-testid="token-input"]', env.tokens.auditor);
    await page.click('[data-testid="login-button"]');
    await page.locator('[data-testid="witness-panel"]').waitFor();
    const size = String(env.log.size);
    for (const name of ['witness.test/alpha', 'witness.test/beta']) {
      const row = `[data-testid="witness-row"][data-witness="${name}"]`;
      assert.equal(await text(`${row} [data-testid="witness-cosigned"]`), size);
      assert.equal(await text(`${row} [data-testid="witness-lag"]`), '0');
      assert.equal(await text(`${row} [data-testid="witness-alarm"]`), 'ok');
    }
    assert.equal(await text('[data-testid="witness-quorum-size"]'), size);
    await page.locator('[data-testid="witness-quorum-status"]', { hasText: /2 of 2 cosignatures \(quorum 2\) verified in this browser/ }).waitFor();
    assert.deepEqual(pageErrors, []);
  });

  it('shows a refusing witness in alarm, with its refusals and the event on the log', async () => {
    // beta restarted with another key for this log's origin: it refuses (403).
    const beta = witnesses[1]!;
    await beta.close();
    witnesses[1] = await startTestWitness({ dataDir: beta.dataDir, name: beta.name, logs: [parseVerifierKey(formatVerifierKey(env.dir.origin, Buffer.alloc(32, 9)))], port: beta.port });
    await env.log.append('AUDIT_EVENT', { resource: 'r-2', practitioner: 'p-1', contentHash: 'ab'.repeat(32) });
    await until('the alarm', (s) => s.witnesses.some((w) => w.alarm !== null));
    await page.reload();
    await page.locator('[data-testid="witness-panel"]').waitFor();
    const row = '[data-testid="witness-row"][data-witness="witness.test/beta"]';
    assert.match(await text(`${row} [data-testid="witness-alarm"]`), /^REFUSED \(403\) event \d+$/);
    assert.notEqual(await text(`${row} [data-testid="witness-refusals"]`), '0');
    assert.notEqual(await text(`${row} [data-testid="witness-lag"]`), '0');
    assert.deepEqual(pageErrors, []);
  });
});
