/**
 * A patient's accounting of disclosures, end to end (the two-subject scenario of
 * test/helpers/disclosure-scenario.ts):
 * - the report for A lists exactly A's events with their fields (time, actor, role, purpose,
 *   outcome and reason, consent policy and version), each proved against the signed checkpoint
 *   (core's verifyInclusion, and the offline verifyDisclosureReport with only the log key);
 * - a tampered line fails the offline check;
 * - since/until; the erased link and the unlinked entries are stated; an unknown subject says so;
 * - the query is an AUDIT_QUERY on the log before the report exists (a failing audit write leaves
 *   no report), and the log never holds the subject id;
 * - CLI (callCli: json, html to a file, verify-disclosures) and HTTP (createServerEnv: 403 for
 *   roles without `disclosures`, 400 for bad queries, JSON and HTML);
 * - the HTML page in Chromium: it renders the expected rows, and print media hides nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../src/log/clock.js';
import { hasCode, type ErrorCode } from '../src/core/errors.js';
import { hashLeaf, parseHashHex, toHex } from '../src/core/hash.js';
import { openCheckpoint } from '../src/core/checkpoint.js';
import { verifyInclusion } from '../src/core/merkle/inclusion.js';
import { verifyDisclosureReport } from '../src/core/disclosure-proof.js';
import { sha256 } from '../src/core/hash.js';
import { canonicalJsonBytes } from '../src/core/canonical-json.js';
import { parseLoggedEvent } from '../src/core/events.js';
import { AuditTrail } from '../src/service/audit.js';
import { buildDisclosureReport, type DisclosureReport } from '../src/service/disclosures.js';
import { renderDisclosureHtml } from '../src/service/disclosures-html.js';
import type { Log } from '../src/log/log.js';
import type { NoteVerifier } from '../src/core/note.js';
import { useTempRoot } from './helpers/fixtures.js';
import { HOUR, PO, T0, writeScenario, type Scenario } from './helpers/disclosure-scenario.js';
import { callIn, EXIT, assertError, parseJson } from './helpers/cli.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { launchChromium, skipWithoutChromium } from './helpers/browser.js';
import { validateFhirResource } from '../src/fhir/validate.js';
import type { AuditEvent, Bundle, OperationOutcome } from '@medplum/fhirtypes';

const root = useTempRoot('disclosures-e2e');
const ROUTE = 'GET /api/v1/disclosures';

async function entries(log: Log, from = 0): Promise<{ index: number; text: string }[]> {
  const out: { index: number; text: string }[] = [];
  for await (const page of log.reader.entryPages(from, await log.reader.size())) for (const e of page) out.push({ index: e.index, text: e.bytes.toString('utf8') });
  return out;
}

describe('accounting of disclosures (service)', () => {
  let log: Log;
  let sc: Scenario;
  let verifier: NoteVerifier;
  let audit: AuditTrail;
  const clock = new ManualClock(T0);
  const report = (query: Record<string, unknown>) => buildDisclosureReport(log, query, { actor: PO, route: ROUTE, audit, verifier, clock });

  before(async () => {
    const f = await root.openGovernance({ clock });
    log = f.log;
    verifier = f.dir.verifier;
    sc = await writeScenario(f.gov, clock);
    audit = new AuditTrail({ log, vocabulary: f.gov.vocabulary, clock });
  });

  it("lists exactly A's events with their fields, each proved against the signed checkpoint", async () => {
    const r = await report({ subject: sc.subjects.a });
    assert.equal(r.subjectKnown, true);
    assert.deepEqual(
      r.lines.map((l) => ({ index: l.index, type: l.type, time: l.time, actor: l.actor, role: l.role, purpose: l.purpose, outcome: l.outcome, ...(l.reason ? { reason: l.reason } : {}) })),
      sc.expected.a,
    );
    for (const l of r.lines) {
      assert.deepEqual(
        l.consent.map((c) => [c.policyId, c.version]),
        [[sc.policies.a, 1]],
      );
      // Core's verifier, by hand: the leaf from the entry bytes, the proof to the signed root.
      const cp = openCheckpoint(r.log.checkpoint, [verifier], r.log.origin);
      assert.equal(l.proof.treeSize, cp.treeSize);
      const leaf = hashLeaf(Buffer.from(l.entry, 'utf8'));
      assert.equal(toHex(leaf), l.leafHash);
      verifyInclusion(
        l.index,
        cp.treeSize,
        leaf,
        l.proof.hashes.map((h) => parseHashHex(h)),
        cp.rootHash,
      );
    }
    assert.deepEqual(verifyDisclosureReport(JSON.parse(JSON.stringify(r)), [verifier]), { origin: r.log.origin, treeSize: r.log.treeSize, lines: 4 });
    // The denial's URI was erased since: stated on the line and under "cannot show".
    assert.deepEqual(
      r.lines.map((l) => l.erased.length),
      [0, 0, 1, 0],
    );
    assert.deepEqual(
      r.cannotShow.erasures.map((x) => [x.index, x.linkedToSubject]),
      [
        [sc.erasures.subjectC, 0],
        [sc.erasures.uriA, 1],
      ],
    );
    assert.deepEqual(r.cannotShow.unlinked, { policies: 1, entries: 1, erasures: [sc.erasures.subjectC] });
    const b = await report({ subject: sc.subjects.b });
    assert.deepEqual(
      b.lines.map((l) => l.index),
      sc.expected.b.map((x) => x.index),
    );
  });

  it('the offline check refuses a line whose entry, proof or shown field was changed, and a foreign key', async () => {
    const r = JSON.parse(JSON.stringify(await report({ subject: sc.subjects.a }))) as { lines: Record<string, unknown>[] };
    const cases: [string, (x: typeof r) => void, ErrorCode][] = [
      ['entry', (x) => (x.lines[1]!['entry'] = String(x.lines[1]!['entry']).replace('"TREAT"', '"HRESCH"')), 'LEAF_HASH_MISMATCH'],
      ['proof', (x) => ((x.lines[0]!['proof'] as unknown as { hashes: string[] }).hashes[0] = '00'.repeat(32)), 'INCLUSION_PROOF_INVALID'],
      ['shown actor', (x) => (x.lines[0]!['actor'] = 'someone-else'), 'STATEMENT_MISMATCH'],
      ['shown time', (x) => (x.lines[2]!['time'] = '2020-01-01T00:00:00.000Z'), 'STATEMENT_MISMATCH'],
    ];
    for (const [what, edit, code] of cases) {
      const copy = structuredClone(r);
      edit(copy);
      assert.throws(
        () => verifyDisclosureReport(copy, [verifier]),
        (err: unknown) => hasCode(err, code),
        what,
      );
    }
    const other = await root.openLog();
    assert.throws(
      () => verifyDisclosureReport(r, [other.dir.verifier]),
      (err: unknown) => hasCode(err, 'CHECKPOINT_SIGNATURE_INVALID'),
    );
    assert.throws(
      () => verifyDisclosureReport({ schema: 'x' }, [verifier]),
      (err: unknown) => hasCode(err, 'VALIDATION_FAILED'),
    );
  });

  it('since/until select the lines by entry time; the rest are counted as outside the period', async () => {
    const [, second, third] = sc.expected.a;
    const r = await report({ subject: sc.subjects.a, since: second!.time, until: third!.time });
    assert.deepEqual(
      r.lines.map((l) => l.index),
      [second!.index],
    );
    assert.deepEqual(r.period, { since: second!.time, until: third!.time });
    assert.equal(r.cannotShow.outsidePeriod, 3);
    // Offsets are normalized to UTC.
    const later = await report({ subject: sc.subjects.a, since: new Date(T0 + 6 * HOUR).toISOString().replace('Z', '+00:00') });
    assert.ok(later.lines.every((l) => l.time >= new Date(T0 + 6 * HOUR).toISOString()));
    await assert.rejects(report({ subject: sc.subjects.a, since: third!.time, until: second!.time }), (err: unknown) => hasCode(err, 'VALIDATION_FAILED'));
  });

  it('an unknown (or erased) subject is stated as such, not an empty success', async () => {
    for (const s of ['pt-nobody', sc.subjects.c]) {
      const r = await report({ subject: s });
      assert.equal(r.subjectKnown, false);
      assert.equal(r.cannotShow.unknownSubject, true);
      assert.deepEqual(r.lines, []);
      const html = renderDisclosureHtml(r);
      assert.match(html, /id="unknown-subject"/);
      assert.match(html, /does <em>not<\/em> mean that no one used the data/);
    }
  });

  it('the query is on the log before the report, as a hash: never the subject id', async () => {
    const size = log.size;
    const r = await report({ subject: sc.subjects.a, since: sc.expected.a[0]!.time });
    const rec = parseLoggedEvent(r.query.entry);
    assert.equal(r.query.index, size);
    assert.equal(rec?.type, 'AUDIT_QUERY');
    assert.deepEqual([rec?.payload['actor'], rec?.payload['role'], rec?.payload['permission'], rec?.payload['route']], [PO.id, PO.role, 'disclosures', ROUTE]);
    // The report holds the nonce: the holder can show which audit entry recorded this query.
    const expect = toHex(sha256(canonicalJsonBytes({ nonce: r.query.nonce, since: sc.expected.a[0]!.time, subject: sc.subjects.a })));
    assert.equal(rec?.payload['queryHash'], expect);
    assert.ok(r.log.treeSize > r.query.index);
    for (const e of await entries(log)) assert.ok(!e.text.includes(sc.subjects.a) && !e.text.includes('pt-nobody'), `entry ${e.index} holds a subject id`);
    // No audit, no report: an actor the event registry refuses (role not in the table) gets nothing.
    const before = log.size;
    await assert.rejects(buildDisclosureReport(log, { subject: sc.subjects.a }, { actor: { id: 'x', role: 'not_a_role' }, route: ROUTE, audit, verifier }), (err: unknown) =>
      hasCode(err, 'VALIDATION_FAILED'),
    );
    assert.equal(log.size, before);
    // A malformed query writes nothing either.
    await assert.rejects(report({ subject: '' }), (err: unknown) => hasCode(err, 'VALIDATION_FAILED'));
    await assert.rejects(report({ subject: sc.subjects.a, since: 'yesterday' }), (err: unknown) => hasCode(err, 'VALIDATION_FAILED'));
    assert.equal(log.size, before);
  });

  it('the HTML escapes every value', () => {
    const r = { subject: '<img src=x onerror=alert(1)>&"\'' } as const;
    // A report whose values carry markup (the subject id is caller-given; other fields are codes).
    const html = renderDisclosureHtml({
      schema: 'custos/disclosures/v1',
      subject: r.subject,
      subjectKnown: true,
      period: { since: null, until: null },
      generatedAt: '2026-03-01T00:00:00.000Z',
      generatedBy: { actor: 'po<b>', role: 'privacy_officer' },
      log: { origin: 'o</pre><script>', checkpoint: '</pre><script>x</script>', treeSize: 1, rootHash: 'aa', verifierKey: null },
      query: { index: 0, leafHash: 'aa', entry: '{}', nonce: 'n', queryHash: 'h', proof: { treeSize: 1, hashes: [] } },
      policies: [],
      lines: [
        {
          index: 0,
          leafHash: 'aa',
          entry: '{}',
          time: '2026-03-01T00:00:00.000Z',
          type: 'DATA_ACCESSED',
          kind: 'access',
          actor: '<script>',
          role: '"role"',
          purpose: '<X>',
          outcome: 'denied',
          reason: '<R>',
          operation: null,
          consent: [{ policyId: '<p>', version: 1, provision: null }],
          refersTo: [],
          erased: [],
          proof: { treeSize: 1, hashes: [] },
        },
      ],
      cannotShow: { unknownSubject: false, outsidePeriod: 0, erasures: [], unlinked: { policies: 0, entries: 0, erasures: [] }, afterCheckpoint: 0, notRecorded: ['<li>x'] },
    });
    assert.ok(!/<script|<img|<X>|<R>|<b>|<li>x|<\/pre><script/.test(html), 'markup from a value reached the page');
    assert.match(html, /&lt;p&gt;/);
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;&amp;&quot;&#39;/);
  });
});

describe('accounting of disclosures (CLI)', () => {
  it('custos disclosures: json on stdout, html to a file, verify-disclosures with the log key; the query logged', async () => {
    const clock = new ManualClock(T0);
    const f = await root.openGovernance({ clock });
    const sc = await writeScenario(f.gov, clock, 'cli');
    const dataDir = f.dataDir;
    await f.close();
    const who = ['--actor', 'po-cli', '--actor-role', 'privacy_officer'];
    const json = await callIn(dataDir, ['disclosures', '--subject', sc.subjects.a, ...who]);
    assert.equal(json.code, EXIT.ok, json.stderr);
    const r = parseJson<DisclosureReport>(json);
    assert.deepEqual(
      r.lines.map((l) => l.index),
      sc.expected.a.map((x) => x.index),
    );
    const out = join(root.next('out'));
    mkdirSync(out);
    const file = join(out, 'report.json');
    assert.equal((await callIn(dataDir, ['disclosures', '--subject', sc.subjects.a, '-o', file, ...who])).code, EXIT.ok);
    const ok = await callIn(dataDir, ['--json', 'verify-disclosures', file, '--key', join(dataDir, 'log.pub')]);
    assert.equal(ok.code, EXIT.ok, ok.stderr);
    assert.equal(parseJson<{ lines: number }>(ok).lines, 4);
    const html = join(out, 'report.html');
    const h = await callIn(dataDir, ['disclosures', '--subject', sc.subjects.b, '--since', sc.expected.b[1]!.time, '--format', 'html', '-o', html, ...who]);
    assert.equal(h.code, EXIT.ok, h.stderr);
    assert.equal((readFileSync(html, 'utf8').match(/<tr data-index=/g) ?? []).length, 3);
    assertError(await callIn(dataDir, ['disclosures', '--subject', sc.subjects.a, '--since', 'soon', ...who]), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callIn(dataDir, ['disclosures', '--subject', sc.subjects.a, '--format', 'pdf', ...who]), EXIT.validation, 'VALIDATION_FAILED');
    const fhir = await callIn(dataDir, ['disclosures', '--subject', sc.subjects.a, '--format', 'fhir', ...who]);
    assert.equal(fhir.code, EXIT.ok, fhir.stderr);
    const bundle = parseJson<{ resourceType: string; type: string; entry: { resource: { resourceType: string; id?: string } }[] }>(fhir);
    assert.deepEqual([bundle.resourceType, bundle.type], ['Bundle', 'collection']);
    assert.deepEqual(
      bundle.entry.filter((e) => e.resource.resourceType === 'AuditEvent').map((e) => Number(e.resource.id)),
      sc.expected.a.map((x) => x.index),
    );
    // Each run is an AUDIT_QUERY of the CLI's route.
    const g = await root.openLog({ dataDir });
    const audits = (await entries(g.log)).map((e) => parseLoggedEvent(e.text)).filter((e) => e?.type === 'AUDIT_QUERY' && e.payload['permission'] === 'disclosures');
    assert.equal(audits.length, 4);
    assert.ok(audits.every((a) => a?.payload['route'] === 'GET /cli/disclosures' && a.payload['actor'] === 'po-cli'));
  });
});

describe('accounting of disclosures (HTTP)', () => {
  let env: ServerEnv;
  let sc: Scenario;
  before(async () => {
    env = await createServerEnv();
    sc = await writeScenario(env.governance, new ManualClock(T0), 'http');
  });
  after(async () => env?.close());
  const get = (role: keyof ServerEnv['tokens'], query: string, headers: Record<string, string> = {}) =>
    env.app.inject({ method: 'GET', url: `/api/v1/disclosures?${query}`, headers: { authorization: `Bearer ${env.tokens[role]}`, ...headers } });

  it('privacy officer: JSON by default, HTML by format or Accept; the query logged with the route', async () => {
    const size = env.log.size;
    const res = await get('privacy_officer', `subject=${encodeURIComponent(sc.subjects.a)}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const r = res.json<DisclosureReport>();
    assert.deepEqual(
      r.lines.map((l) => l.index),
      sc.expected.a.map((x) => x.index),
    );
    assert.equal(r.query.index, size);
    assert.equal(parseLoggedEvent(r.query.entry)?.payload['route'], ROUTE);
    assert.deepEqual(verifyDisclosureReport(r, [env.dir.verifier]).lines, 4);
    const html = await get('privacy_officer', `subject=${encodeURIComponent(sc.subjects.b)}&format=html`);
    assert.equal(html.statusCode, 200);
    assert.match(String(html.headers['content-type']), /text\/html/);
    assert.equal((html.body.match(/<tr data-index=/g) ?? []).length, 4);
    const accept = await get('privacy_officer', `subject=${encodeURIComponent(sc.subjects.b)}`, { accept: 'text/html,application/xhtml+xml' });
    assert.match(String(accept.headers['content-type']), /text\/html/);
  });

  it('format fhir: a Bundle of BALP AuditEvents, one per line with its inclusion proof, valid R4, and the limits as an OperationOutcome', async () => {
    const res = await get('privacy_officer', `subject=${encodeURIComponent(sc.subjects.a)}&format=fhir`);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /application\/fhir\+json/);
    const bundle = res.json<Bundle>();
    validateFhirResource(bundle, 'R4');
    const events = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is AuditEvent => r?.resourceType === 'AuditEvent');
    assert.deepEqual(
      events.map((e) => Number(e.id)),
      sc.expected.a.map((x) => x.index),
    );
    for (const e of events) validateFhirResource(e, 'R4');
    // Each line's proof is in the log-entry entity's extension, and verifies against the checkpoint
    // the Bundle carries as its signature.
    const cp = openCheckpoint(Buffer.from(bundle.signature!.data!, 'base64').toString('utf8'), [env.dir.verifier], env.log.origin);
    for (const e of events) {
      const ext = e.entity!.at(-1)!.extension![0]!.extension!;
      const leafHash = ext.find((x) => x.url === 'leafHash')!.valueString!;
      assert.equal(ext.find((x) => x.url === 'treeSize')?.valueUnsignedInt, cp.treeSize);
      verifyInclusion(
        Number(e.id),
        cp.treeSize,
        parseHashHex(leafHash),
        ext.filter((x) => x.url === 'hash').map((x) => parseHashHex(x.valueString!)),
        cp.rootHash,
      );
    }
    const limits = bundle.entry!.at(-1)!.resource as OperationOutcome;
    assert.equal(limits.resourceType, 'OperationOutcome');
    // The subject id itself appears nowhere in the FHIR form.
    assert.equal(res.body.includes(sc.subjects.a), false);
    const unknown = await get('privacy_officer', 'subject=nobody-at-all&format=fhir');
    const u = unknown.json<Bundle>();
    assert.deepEqual(
      (u.entry ?? []).map((e) => e.resource?.resourceType),
      ['OperationOutcome'],
    );
    assert.equal((u.entry![0]!.resource as OperationOutcome).issue[0]!.details?.coding?.[0]?.code, 'unknown-subject');
  });

  it('403 for every role without the permission, 400 for bad queries; neither writes a disclosure query', async () => {
    const size = env.log.size;
    for (const role of ['admin', 'auditor', 'dermatologist', 'nurse', 'ml_engineer'] as const) {
      const res = await get(role, `subject=${encodeURIComponent(sc.subjects.a)}`);
      assert.equal(res.statusCode, 403, role);
    }
    for (const q of ['', 'subject=', `subject=a&since=nope`, `subject=a&format=pdf`, `subject=a&since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z`]) {
      const res = await get('privacy_officer', q);
      assert.equal(res.statusCode, 400, `${q}: ${res.body}`);
    }
    const written = (await entries(env.log, size)).map((e) => parseLoggedEvent(e.text));
    assert.ok(!written.some((e) => e?.type === 'AUDIT_QUERY' && e.payload['permission'] === 'disclosures'));
  });

  it('the page in Chromium: the expected rows, and print media hides nothing', { skip: skipWithoutChromium }, async () => {
    const res = await get('privacy_officer', `subject=${encodeURIComponent(sc.subjects.a)}&format=html`);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.setContent(res.body);
      const rows = await page.$$eval('#disclosures tbody tr', (trs) => trs.map((tr) => [Number(tr.getAttribute('data-index')), tr.getAttribute('data-kind')]));
      assert.deepEqual(
        rows,
        sc.expected.a.map((x, i) => [x.index, ['access', 'inference', 'denial', 'training'][i]]),
      );
      const refused = await page.$eval('#disclosures tbody tr[data-kind="denial"]', (tr) => tr.textContent ?? '');
      assert.match(refused, /Refused: your consent does not allow this purpose/);
      assert.match(await page.$eval('#cannot-show', (x) => x.textContent ?? ''), /can no longer be tied to any patient/);
      if (process.env['DISCLOSURES_SCREENSHOT']) await page.screenshot({ path: process.env['DISCLOSURES_SCREENSHOT'], fullPage: true });
      await page.emulateMedia({ media: 'print' });
      const hidden = await page.$$eval(
        '#subject, #period, #disclosures, #disclosures tbody tr, #cannot-show, #verify, #checkpoint',
        (els) =>
          els.filter((el) => {
            const s = (globalThis as unknown as { getComputedStyle(e: unknown): { display: string; visibility: string } }).getComputedStyle(el);
            const box = el.getBoundingClientRect();
            return s.display === 'none' || s.visibility === 'hidden' || box.width === 0 || box.height === 0;
          }).length,
      );
      assert.equal(hidden, 0);
      if (process.env['DISCLOSURES_SCREENSHOT']) await page.screenshot({ path: process.env['DISCLOSURES_SCREENSHOT'].replace(/\.png$/, '-print.png'), fullPage: true });
      const pdf = await page.pdf({ format: 'A4' });
      assert.ok(pdf.length > 1000);
      // No script and no external resource: nothing to fetch, nothing to run.
      assert.equal(await page.$$eval('script, link, img, iframe', (x) => x.length), 0);
    } finally {
      await browser.close();
    }
  });
});
