/**
 * The explorer verifies an offline evidence bundle dropped onto the page (web/bundle-drop.js), in a
 * real headless Chromium against a real server, with no token:
 * - a bundle fetched from GET /api/v1/bundles/:index, chosen with the file input, passes every check;
 * - the same bundle with one byte changed in a document, and in the entry, dropped onto the page (a
 *   real drop event with a DataTransfer), fails that check with its code;
 * - a redacted bundle passes with the openings skipped;
 * - a wrong pinned key fails the DSSE signature; a witness policy the bundle does not meet fails the quorum;
 * - what the page shows (each check's name, status and code, and the verdict) equals what
 *   verifyBundle returns in Node for the same file;
 * - the verification makes no request, bundle text is never parsed as HTML, and a file that is not
 *   JSON or too large is refused clearly.
 * Needs Debian's /usr/bin/chromium; skipped without it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { verifyBundle, type Bundle } from '../src/core/bundle.js';
import { parseVerifierKey, formatVerifierKey } from '../src/core/note.js';
import { formatCosignerVerifierKey, parseCosignerVerifierKey } from '../src/core/cosignature.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey } from '../src/core/crypto.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { pid } from './helpers/policy-ids.js';
import { WEB_ROOT, currentCoreBundle, launchChromium, skipWithoutChromium as skip } from './helpers/browser.js';

const SHOTS = join(WEB_ROOT, '..', 'test-artifacts', 'browser');
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'd4'.repeat(32), framework: 'pytorch' };

interface Shown {
  verdict: string;
  code: string;
  checks: { name: string; status: string; code: string }[];
}

describe('explorer: verify a bundle dropped onto the page', { skip }, () => {
  let env: ServerEnv;
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  let vkey = '';
  let full: Bundle;
  let redacted: Bundle;
  let explained: Bundle;
  const pageErrors: string[] = [];
  const requests: string[] = [];

  async function getBundle(query: string, token: string): Promise<Bundle> {
    const res = await fetch(`${base}/api/v1/bundles/${query}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as Bundle;
  }

  /** What the page shows once a verdict is in (not "pending"). */
  async function shown(): Promise<Shown> {
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

  /** The same, from verifyBundle in Node. */
  function inNode(b: unknown, key = vkey, witnesses?: string[]): Shown {
    const w = witnesses?.map(parseCosignerVerifierKey);
    const r = verifyBundle(b, { logKey: parseVerifierKey(key), ...(w ? { witnesses: w } : {}) });
    return { verdict: r.ok ? 'ok' : 'failed', code: r.failed?.code ?? '', checks: r.checks.map((c) => ({ name: c.name, status: c.status, code: c.code ?? '' })) };
  }

  async function reset(): Promise<void> {
    // A fresh page between files, so that no verdict of the previous one is read.
    await page.locator('[data-testid="bundle-verdict"]').evaluate('(v) => { v.dataset.verdict = "none"; }');
  }

  /** Chooses a file with the file input (keyboard and mouse users' path). */
  async function choose(name: string, text: string): Promise<Shown> {
    await reset();
    await page.setInputFiles('[data-testid="bundle-file"]', { name, mimeType: 'application/json', buffer: Buffer.from(text) });
    return shown();
  }

  /** Drops a file onto the drop zone: a real drop event carrying a DataTransfer with the file. */
  async function drop(name: string, text: string): Promise<Shown> {
    await reset();
    // (A string: the test is compiled without the DOM library.)
    const dataTransfer = await page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([${JSON.stringify(text)}], ${JSON.stringify(name)}, { type: 'application/json' }));
      return dt;
    })()`);
    await page.dispatchEvent('[data-testid="bundle-drop"]', 'dragenter', { dataTransfer });
    await page.dispatchEvent('[data-testid="bundle-drop"]', 'dragover', { dataTransfer });
    await page.dispatchEvent('[data-testid="bundle-drop"]', 'drop', { dataTransfer });
    return shown();
  }

  async function setKey(value: string): Promise<void> {
    await page.fill('[data-testid="bundle-key"]', value);
  }

  before(async () => {
    currentCoreBundle();
    mkdirSync(SHOTS, { recursive: true });
    env = await createServerEnv({ webRoot: WEB_ROOT });
    base = (await env.app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
    vkey = env.dir.verifierKey;
    const g = env.governance;
    await g.createConsent({ policyId: pid('drop'), subject: 'patient-drop', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
    const inf = await g.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: pid('drop'),
      input: { uri: 's3://clinic/drop/input.jpg', digest: 'a1'.repeat(32) },
      outputs: [
        { name: 'report_json', uri: 's3://clinic/drop/report.json', digest: 'b2'.repeat(32) },
        { name: 'mask', uri: 's3://clinic/drop/mask.png', digest: 'c3'.repeat(32) },
      ],
      pipeline: { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } },
      model: MODEL,
    });
    const index = inf.event.index;
    // As an operator would hand them over: from the API, redacted (auditor) and opened (dermatologist, with a purpose).
    redacted = await getBundle(String(index), env.tokens.auditor);
    full = await getBundle(`${index}?open=true&purpose=TREAT`, env.tokens.dermatologist);
    assert.equal(redacted.verificationMaterial.redacted, true);
    assert.equal(full.verificationMaterial.redacted, false);
    // issue 14: an inference with explanation artifacts.
    const ex = await g.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: pid('drop'),
      input: { uri: 's3://clinic/drop/input2.jpg', digest: 'a2'.repeat(32) },
      outputs: [{ name: 'report_json', uri: 's3://clinic/drop/report2.json', digest: 'b3'.repeat(32) }],
      pipeline: { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224 } },
      model: MODEL,
      explanations: [{ method: 'kernel_shap', parameters: { nsamples: 500 }, output: 'report_json', uri: 's3://clinic/drop/shap.png', digest: 'e4'.repeat(32) }],
    });
    explained = await getBundle(`${ex.event.index}?open=true&purpose=TREAT`, env.tokens.dermatologist);

    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await env?.close();
  });

  it('needs no token: the page opens from the login and pre-fills the key from /log.pub, saying so', async () => {
    await page.goto(`${base}/`);
    await page.locator('[data-testid="login-form"]').waitFor();
    await page.click('[data-testid="login-form"] a[href="#/verify-bundle"]');
    await page.locator('[data-testid="page-verify-bundle"]').waitFor();
    await page.locator('[data-testid="bundle-key-source"][data-source="server"]').waitFor();
    assert.equal(await page.inputValue('[data-testid="bundle-key"]'), vkey);
    assert.match((await page.textContent('[data-testid="bundle-key-source"]')) ?? '', /served by this server at \/log\.pub/);
    assert.equal(await page.locator('[data-testid="nav"]').isVisible(), false, 'no navigation without a session');
    assert.ok(requests.includes('/log.pub'));
    assert.ok(!requests.some((p) => p.startsWith('/api/')), `no API call: ${requests.join(', ')}`);
  });

  it('a good bundle chosen with the file input: every check passes, verdict ok, as in Node', async () => {
    const before = requests.length;
    const s = await choose('evidence.json', JSON.stringify(full, null, 2));
    assert.deepEqual(s, inNode(full));
    assert.equal(s.verdict, 'ok');
    assert.deepEqual(
      s.checks.filter((c) => c.status !== 'pass').map((c) => c.name),
      ['witness-quorum'],
    );
    assert.ok(s.checks.some((c) => c.name === 'opening:output mask'));
    await page.screenshot({ path: join(SHOTS, 'bundle-01-good.png'), fullPage: true });
    // Dropped instead of chosen: the same verdict.
    assert.deepEqual(await drop('evidence.json', JSON.stringify(full)), s);
    assert.deepEqual(requests.slice(before), [], 'verifying made no request');
  });

  it('a tampered bundle dropped onto the page: the changed document, then the changed entry, fails with its code', async () => {
    const doc = clone(full) as { verificationMaterial: { documents: { model: string } } };
    doc.verificationMaterial.documents.model = doc.verificationMaterial.documents.model.replace('0.9.3', '0.9.4');
    let s = await drop('tampered-document.json', JSON.stringify(doc));
    assert.deepEqual(s, inNode(doc));
    assert.equal(s.verdict, 'failed');
    assert.equal(s.code, 'DOCUMENT_HASH_MISMATCH');
    assert.deepEqual(
      s.checks.filter((c) => c.status === 'fail'),
      [{ name: 'document:model', status: 'fail', code: 'DOCUMENT_HASH_MISMATCH' }],
    );
    assert.match((await page.textContent('[data-testid="bundle-verdict"]')) ?? '', /FAILED: check document:model failed with DOCUMENT_HASH_MISMATCH/);
    await page.screenshot({ path: join(SHOTS, 'bundle-02-tampered.png'), fullPage: true });

    // One byte of the entry (a digit of its time): the leaf hash no longer matches.
    const entry = clone(full) as { verificationMaterial: { tlogEntry: { canonicalizedBody: string } } };
    const bytes = Buffer.from(entry.verificationMaterial.tlogEntry.canonicalizedBody, 'base64');
    const at = bytes.indexOf('"time":"') + 8;
    bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
    entry.verificationMaterial.tlogEntry.canonicalizedBody = bytes.toString('base64');
    s = await drop('tampered-entry.json', JSON.stringify(entry));
    assert.deepEqual(s, inNode(entry));
    assert.equal(s.verdict, 'failed');
    assert.equal(s.checks.find((c) => c.name === 'leaf-hash')?.code, 'LEAF_HASH_MISMATCH');
  });

  it('a bundle with explanations: the explanations document and its opening checked as in Node; an edited one fails', async () => {
    let s = await choose('explained.json', JSON.stringify(explained));
    assert.deepEqual(s, inNode(explained));
    assert.equal(s.verdict, 'ok');
    assert.deepEqual(
      s.checks.filter((c) => c.name === 'document:explanations' || c.name.startsWith('opening:explanation')),
      [
        { name: 'document:explanations', status: 'pass', code: '' },
        { name: 'opening:explanation 1 (kernel_shap of report_json)', status: 'pass', code: '' },
      ],
    );
    const edited = clone(explained) as { verificationMaterial: { documents: { explanations: string } } };
    edited.verificationMaterial.documents.explanations = edited.verificationMaterial.documents.explanations.replace('500', '50');
    s = await drop('explained-edited.json', JSON.stringify(edited));
    assert.deepEqual(s, inNode(edited));
    assert.equal(s.code, 'DOCUMENT_HASH_MISMATCH');
    assert.deepEqual(
      s.checks.filter((c) => c.status === 'fail').map((c) => c.name),
      ['document:explanations'],
    );
  });

  it('a redacted bundle: openings skipped, verdict ok', async () => {
    const s = await choose('redacted.json', JSON.stringify(redacted));
    assert.deepEqual(s, inNode(redacted));
    assert.equal(s.verdict, 'ok');
    assert.deepEqual(
      s.checks.find((c) => c.name === 'openings'),
      { name: 'openings', status: 'skipped', code: '' },
    );
    assert.ok(!s.checks.some((c) => c.name.startsWith('opening:')));
  });

  it('a wrong pinned key fails the DSSE signature; pinning is remembered; a witness policy not met fails the quorum', async () => {
    const other = formatVerifierKey(env.dir.origin, ed25519RawPublicKey(ed25519PrivateKeyFromSeed(Buffer.alloc(32, 7))));
    await setKey(other);
    await page.locator('[data-testid="bundle-key-source"][data-source="entered"]').waitFor();
    await page.click('[data-testid="bundle-pin"]');
    await page.locator('[data-testid="bundle-key-source"][data-source="pinned"]').waitFor();
    let s = await choose('evidence.json', JSON.stringify(full));
    assert.deepEqual(s, inNode(full, other));
    assert.equal(s.verdict, 'failed');
    assert.equal(s.code, 'DSSE_SIGNATURE_INVALID');
    assert.equal(s.checks.find((c) => c.name === 'checkpoint-signature')?.code, 'CHECKPOINT_SIGNATURE_INVALID');

    // The pin outlives a reload and wins over the server's key.
    await page.reload();
    await page.locator('[data-testid="bundle-key-source"][data-source="pinned"]').waitFor();
    assert.equal(await page.inputValue('[data-testid="bundle-key"]'), other);
    await page.click('[data-testid="bundle-pin"]'); // unpin
    await setKey(vkey);

    const witness = formatCosignerVerifierKey('witness.example', ed25519RawPublicKey(ed25519PrivateKeyFromSeed(Buffer.alloc(32, 9))));
    await page.fill('[data-testid="bundle-witnesses"]', witness);
    s = await choose('evidence.json', JSON.stringify(full));
    assert.deepEqual(s, inNode(full, vkey, [witness]));
    assert.equal(s.code, 'WITNESS_QUORUM_NOT_MET');
    await page.fill('[data-testid="bundle-witnesses"]', '');
  });

  it('refuses clearly what is not a bundle, and never parses bundle text as HTML', async () => {
    let s = await choose('notes.txt', '{"mediaType": ');
    assert.equal(s.verdict, 'error');
    assert.equal(s.code, 'BUNDLE_MALFORMED');
    assert.match((await page.textContent('[data-testid="bundle-verdict"]')) ?? '', /notes\.txt is not JSON/);
    s = await choose('other.json', JSON.stringify({ ...full, extra: 1 }));
    assert.equal(s.code, 'BUNDLE_MALFORMED');
    assert.match((await page.textContent('[data-testid="bundle-verdict"]')) ?? '', /extra: unknown member/);
    s = await choose('huge.json', ' '.repeat(5 * 1024 * 1024 + 1));
    assert.equal(s.verdict, 'error');
    assert.match((await page.textContent('[data-testid="bundle-verdict"]')) ?? '', /at most 5242880 bytes/);

    // Markup in the receipt (an output name) is shown as text: the check names carry it, no element is made.
    const xss = clone(full) as { verificationMaterial: { documents: { receipt: string } } };
    const markup = '<img src=x data-xss=1>';
    xss.verificationMaterial.documents.receipt = xss.verificationMaterial.documents.receipt.replace('"name":"mask"', `"name":${JSON.stringify(markup)}`);
    s = await choose('xss.json', JSON.stringify(xss));
    assert.deepEqual(s, inNode(xss));
    assert.ok(s.checks.some((c) => c.name === `opening:output ${markup}`));
    assert.equal(await page.locator('[data-xss]').count(), 0);
    assert.deepEqual(pageErrors, []);
  });
});
