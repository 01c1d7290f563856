/**
 * Break-glass through the built CLI (in process, `callCli`), end to end on a fresh data directory:
 * `custos access --purpose BTG --justification CODE` overrides a denial, `custos reviews list
 * [--overdue] [--json]` shows the queue, `custos reviews close INDEX --outcome --reason` closes it;
 * refusals exit with their codes and write nothing. Each command is a new process over the data
 * directory, so the queue is read back from the log every time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pid } from './helpers/policy-ids.js';
import { initDataDir, openLog } from '../src/log/data-dir.js';
import { ManualClock } from '../src/log/clock.js';
import { Governance } from '../src/service/governance.js';
import { assertError, assertOk, callIn, ensureBuilt, EXIT, makeTempDir, okJson, parseJson } from './helpers/cli.js';

const EXIT_CONSENT = 7;
const OFFICER = ['--actor', 'po-1', '--actor-role', 'privacy_officer'];
const DERM = ['--actor', 'dr-derm', '--actor-role', 'dermatologist'];
const NURSE = ['--actor', 'nurse-9', '--actor-role', 'nurse'];
const DIGEST = createHash('sha256').update('allergy list').digest('hex');

interface Queue {
  open: number;
  overdue: number;
  deadlineHours: number;
  items: { index: number; status: string; overdue: boolean; actor: string; justification: string; overridden: { reason: string }; review?: { outcome: string } }[];
}

describe('custos access --justification, custos reviews', () => {
  let tmp: { path: string; cleanup(): void };
  let dir = '';
  const size = async (): Promise<number> => okJson<{ entries: number }>(await callIn(dir, ['--json', 'stats'])).entries;
  const access = (actor: readonly string[], ...extra: string[]) =>
    callIn(dir, ['--json', 'access', '--policy', pid('cli-bg'), '--uri', 's3://ehr/p-1/allergies.json', '--digest', DIGEST, ...actor, ...extra]);

  before(async () => {
    ensureBuilt();
    tmp = makeTempDir('custos-cli-bg-');
    dir = join(tmp.path, 'log');
    okJson(await callIn(dir, ['--json', 'init']));
    okJson(await callIn(dir, ['--json', 'consent', 'create', '--policy-id', pid('cli-bg'), '--subject', 'patient-1', '--purposes', 'TREAT', '--roles', 'dermatologist,nurse', ...OFFICER]));
  });
  after(() => tmp?.cleanup());

  it('overrides a denial as BREAK_GLASS and lists it as an open review', async () => {
    const r = okJson<{ decision: { effect: string; reason: string }; event: { index: number }; breakGlass: { justification: string } }>(
      await access(DERM, '--purpose', 'BTG', '--justification', 'LIFE_THREATENING_EMERGENCY'),
    );
    assert.equal(r.decision.effect, 'deny');
    assert.equal(r.decision.reason, 'PURPOSE_NOT_ALLOWED');
    assert.equal(r.breakGlass.justification, 'LIFE_THREATENING_EMERGENCY');
    const human = await callIn(dir, [
      'access',
      '--policy',
      pid('cli-bg'),
      '--uri',
      's3://ehr/p-1/meds.json',
      '--digest',
      DIGEST,
      ...DERM,
      '--purpose',
      'ETREAT',
      '--justification',
      'PATIENT_INCAPACITATED',
    ]);
    assertOk(human);
    assert.match(human.stdout, /break-glass: +consent denied \(PURPOSE_NOT_ALLOWED/);
    assert.match(human.stdout, /logged as: +BREAK_GLASS, entry \d+ \(flagged; review due /);
    const q = okJson<Queue>(await callIn(dir, ['--json', 'reviews', 'list']));
    assert.deepEqual([q.open, q.overdue, q.deadlineHours], [2, 0, 72]);
    assert.equal(q.items[0]!.index, r.event.index);
    assert.deepEqual([q.items[0]!.actor, q.items[0]!.status, q.items[0]!.overridden.reason], ['dr-derm', 'open', 'PURPOSE_NOT_ALLOWED']);
    const text = await callIn(dir, ['reviews', 'list']);
    assertOk(text);
    assert.match(text.stdout, /^2 open, 0 overdue \(deadline 72 h/);
    assert.match(text.stdout, new RegExp(`entry ${r.event.index} .* dr-derm \\(dermatologist\\) +BTG LIFE_THREATENING_EMERGENCY +overrode PURPOSE_NOT_ALLOWED`));
  });

  it('refuses as usual without the permission or a justification (exit 7, logged), and an unknown code (exit 2, nothing written)', async () => {
    for (const [actor, extra, refusal] of [
      [NURSE, ['--purpose', 'BTG', '--justification', 'URGENT_TREATMENT'], 'ROLE_NOT_PERMITTED'],
      [DERM, ['--purpose', 'BTG'], 'JUSTIFICATION_MISSING'],
      [DERM, ['--purpose', 'HMARKT', '--justification', 'URGENT_TREATMENT'], 'PURPOSE_NOT_BREAK_GLASS'],
    ] as const) {
      const before = await size();
      const r = await access(actor, ...extra);
      assertError(r, EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
      assert.equal(parseJson<{ breakGlassRefusal: string }>(r).breakGlassRefusal, refusal);
      assert.equal(await size(), before + 1);
    }
    const before = await size();
    assertError(await access(DERM, '--purpose', 'BTG', '--justification', 'BECAUSE'), EXIT.validation, 'VALIDATION_FAILED');
    assert.equal(await size(), before);
  });

  it('--overdue uses the deadline: with --review-deadline 1 nothing is overdue yet, by the clock of this run', async () => {
    // The entries were written a moment ago by the system clock: not overdue under 1 hour.
    const q = okJson<Queue>(await callIn(dir, ['--json', 'reviews', 'list', '--overdue', '--review-deadline', '1']));
    assert.deepEqual([q.deadlineHours, q.overdue, q.items.length], [1, 0, 0]);
    assertError(await callIn(dir, ['reviews', 'list', '--review-deadline', '0']), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('--overdue lists an access older than the deadline (written by the service with a clock in 2020)', async () => {
    const old = join(tmp.path, 'old');
    await initDataDir(old, { origin: 'cli-bg.test/old' });
    const { dir: d, log } = await openLog(old, { clock: new ManualClock(Date.parse('2020-01-01T00:00:00.000Z')) });
    try {
      const g = await Governance.open({ log });
      await g.createConsent({ policyId: pid('cli-bg-old'), subject: 'patient-2', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'po-1', role: 'privacy_officer' });
      await g.recordDataAccess({
        actor: { id: 'dr-derm', role: 'dermatologist' },
        purpose: 'BTG',
        policyId: pid('cli-bg-old'),
        artifact: { uri: 's3://ehr/p-2/x', digest: DIGEST },
        justification: 'URGENT_TREATMENT',
      });
    } finally {
      await log.close();
      await d.store.close();
    }
    const q = okJson<Queue>(await callIn(old, ['--json', 'reviews', 'list', '--overdue']));
    assert.deepEqual([q.open, q.overdue, q.items.length, q.items[0]!.overdue], [1, 1, 1, true]);
    assert.match((await callIn(old, ['reviews', 'list'])).stdout, /OVERDUE since 2020-01-04T00:00:00\.000Z/);
  });

  it('closes a review once; refuses self-review, a second close, a non-break-glass entry, with stable codes and nothing written', async () => {
    const q = okJson<Queue>(await callIn(dir, ['--json', 'reviews', 'list']));
    const i = String(q.items[0]!.index);
    const close = (index: string, actor: readonly string[], outcome = 'justified', reason = 'EMERGENCY_CONFIRMED') =>
      callIn(dir, ['--json', 'reviews', 'close', index, '--outcome', outcome, '--reason', reason, ...actor]);
    const refused = async (r: Promise<import('./helpers/cli.js').CliResult>, exit: number, code: string) => {
      const before = await size();
      assertError(await r, exit, code);
      assert.equal(await size(), before, `${code}: nothing written`);
    };
    await refused(close(i, ['--actor', 'dr-derm', '--actor-role', 'privacy_officer']), EXIT_CONSENT, 'REVIEW_SEPARATION_OF_DUTIES');
    await refused(close('0', OFFICER), EXIT.notFound, 'REVIEW_NOT_FOUND');
    await refused(close(i, OFFICER, 'justified', 'NO_EMERGENCY'), EXIT.validation, 'VALIDATION_FAILED');
    await refused(close(i, OFFICER, 'perhaps'), EXIT.validation, 'VALIDATION_FAILED');
    await refused(close(i, ['--actor', 'aud-1', '--actor-role', 'auditor']), EXIT.validation, 'VALIDATION_FAILED');
    await refused(callIn(dir, ['reviews', 'close', i, '--outcome', 'justified', '--reason', 'EMERGENCY_CONFIRMED']), EXIT.validation, 'VALIDATION_FAILED');
    const r = okJson<{ review: { status: string; review: { outcome: string; actor: string } }; event: { index: number } }>(await close(i, OFFICER));
    assert.deepEqual([r.review.status, r.review.review.outcome, r.review.review.actor], ['closed', 'justified', 'po-1']);
    await refused(close(i, ['--actor', 'po-2', '--actor-role', 'privacy_officer']), EXIT.conflict, 'REVIEW_CLOSED');
    const after = okJson<Queue>(await callIn(dir, ['--json', 'reviews', 'list', '--all']));
    assert.equal(after.open, 1);
    assert.deepEqual(
      after.items.map((x) => [x.status, x.review?.outcome ?? null]),
      [
        ['closed', 'justified'],
        ['open', null],
      ],
    );
    // The log, with the reviews on it, verifies.
    assertOk(await callIn(dir, ['verify']));
  });
});
