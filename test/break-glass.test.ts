/**
 * Break-glass at the service level (issue 12), on real SQLite logs with an injected clock:
 * - consent permits: an ordinary DATA_ACCESSED (the justification recorded), no review;
 * - consent denies: BREAK_GLASS, executed, carrying the decision it overrode, and a review item;
 * - no permission, no justification, a purpose that is not BTG/ETREAT: CONSENT_DENIED as usual,
 *   with the reason break-glass did not apply; an unknown justification code writes nothing;
 * - reviews: closed once, by a privacy officer who is not the actor; double, unknown, non-break-glass
 *   and self reviews refused with stable codes and nothing written; overdue by the service clock;
 * - the queue is derived from the log: the same after reopening the data directory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/log/clock.js';
import { decodeEntry } from '../src/core/entry.js';
import { hashLeaf, toHex } from '../src/core/hash.js';
import { CustosError, type ErrorCode } from '../src/core/errors.js';
import { DEFAULT_REVIEW_DEADLINE_MS } from '../src/core/break-glass.js';
import { ConsentDeniedError, type Actor, type Governance } from '../src/service/governance.js';
import { findSubjectEntries } from '../src/service/governance/disclosures.js';
import { useTempRoot, type GovernanceFixture } from './helpers/fixtures.js';

const T0 = Date.parse('2030-03-01T08:00:00.000Z');
const OFFICER: Actor = { id: 'po-1', role: 'privacy_officer' };
const OFFICER2: Actor = { id: 'po-2', role: 'privacy_officer' };
const DERM: Actor = { id: 'dr-derm', role: 'dermatologist' };
const NURSE: Actor = { id: 'nurse-1', role: 'nurse' };
const D1 = 'a1'.repeat(32);
const H = 3_600_000;

const root = useTempRoot('breakglass');

interface Env extends GovernanceFixture {
  readonly clock: ManualClock;
  /** BTG denied by a nested provision; TREAT and ETREAT permitted. */
  readonly nested: string;
  /** TREAT only. */
  readonly treatOnly: string;
}

async function env(o: { dataDir?: string; clock?: ManualClock; reviewDeadlineMs?: number } = {}): Promise<Env> {
  const clock = o.clock ?? new ManualClock(T0);
  const f = await root.openGovernance({ clock, ...(o.dataDir ? { dataDir: o.dataDir } : {}), governance: o.reviewDeadlineMs ? { breakGlass: { reviewDeadlineMs: o.reviewDeadlineMs } } : {} });
  if (o.dataDir) return { ...f, clock, nested: '', treatOnly: '' };
  const roles = ['dermatologist', 'nurse', 'physician'];
  const nested = (await f.gov.createConsent({ subject: 'patient-n', allowedPurposes: ['TREAT', 'ETREAT', 'BTG'], allowedRoles: roles, provisions: [{ type: 'deny', purposes: ['BTG'] }] }, OFFICER))
    .policy.policyId;
  const treatOnly = (await f.gov.createConsent({ subject: 'patient-t', allowedPurposes: ['TREAT'], allowedRoles: roles }, OFFICER)).policy.policyId;
  return { ...f, clock, nested, treatOnly };
}

const access = (policyId: string, over: Record<string, unknown> = {}) => ({
  actor: DERM,
  purpose: 'BTG',
  policyId,
  artifact: { uri: 's3://ehr/allergies.json', digest: D1 },
  justification: 'LIFE_THREATENING_EMERGENCY',
  ...over,
});

async function entry(e: GovernanceFixture, index: number): Promise<{ type: string; time: string; payload: Record<string, unknown> }> {
  const x = decodeEntry((await e.log.reader.getEntry(index)).bytes.toString('utf8'));
  return { type: x.type, time: x.time, payload: x.payload as Record<string, unknown> };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

/** The promise fails with `code`, and the log does not grow. */
async function refusedWith(e: GovernanceFixture, code: ErrorCode, p: () => Promise<unknown>): Promise<CustosError> {
  const size = await e.dir.store.treeSize();
  const err = await rejection(p());
  assert.ok(err instanceof CustosError, `expected a CustosError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(await e.dir.store.treeSize(), size, 'nothing written');
  return err;
}

/** A break-glass access on a fresh env; returns its entry index. */
async function breakGlass(e: Env, actor: Actor = DERM): Promise<number> {
  const r = await e.gov.recordDataAccess(access(e.treatOnly, { actor }));
  assert.ok(r.breakGlass);
  return r.event.index;
}

const queue = (g: Governance, filter?: Parameters<Governance['listReviews']>[0]) => g.listReviews(filter);

describe('break-glass access', () => {
  it('consent permits: an ordinary DATA_ACCESSED with the justification recorded, and no review', async () => {
    const e = await env();
    const r = await e.gov.recordDataAccess(access(e.nested, { purpose: 'ETREAT' }));
    assert.equal(r.decision.effect, 'permit');
    assert.equal(r.breakGlass, undefined);
    const x = await entry(e, r.event.index);
    assert.equal(x.type, 'DATA_ACCESSED');
    assert.equal(x.payload['justification'], 'LIFE_THREATENING_EMERGENCY');
    assert.equal((await queue(e.gov, { status: 'all' })).items.length, 0);
  });

  it('consent denies (a nested deny provision): BREAK_GLASS, executed, with the overridden decision, and an open review', async () => {
    const e = await env();
    const r = await e.gov.recordDataAccess(access(e.nested));
    assert.equal(r.decision.effect, 'deny');
    assert.equal(r.decision.reason, 'DENIED_BY_PROVISION');
    assert.equal(r.decision.provision, 'provision.provisions[0]');
    assert.deepEqual(r.breakGlass, { justification: 'LIFE_THREATENING_EMERGENCY', reviewDue: new Date(T0 + DEFAULT_REVIEW_DEADLINE_MS).toISOString() });
    const x = await entry(e, r.event.index);
    assert.equal(x.type, 'BREAK_GLASS');
    assert.deepEqual(
      { ...x.payload, artifact: { digest: (x.payload['artifact'] as { digest: string }).digest } },
      {
        operation: 'data_access',
        actor: DERM.id,
        role: DERM.role,
        purpose: 'BTG',
        justification: 'LIFE_THREATENING_EMERGENCY',
        reason: 'DENIED_BY_PROVISION',
        policyId: e.nested,
        policyVersion: 1,
        policyHash: r.decision.policyHash,
        provision: 'provision.provisions[0]',
        artifact: { digest: D1 },
      },
    );
    // The URI is only committed, and its opening is kept (the access happened).
    const uri = (x.payload['artifact'] as { uri: string }).uri;
    assert.match(uri, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(x).includes('s3://'));
    assert.ok(await e.log.sidecar.getCommitment(uri));
    const q = await queue(e.gov);
    assert.equal(q.open, 1);
    assert.equal(q.overdue, 0);
    assert.equal(q.items[0]!.index, r.event.index);
    assert.equal(q.items[0]!.status, 'open');
    assert.deepEqual(q.items[0]!.overridden, { reason: 'DENIED_BY_PROVISION', policyId: e.nested, policyVersion: 1, provision: 'provision.provisions[0]' });
  });

  it('overrides any denial decided at sequencing time: purpose not allowed, a revoked policy, an unknown policy', async () => {
    const e = await env();
    const a = await e.gov.recordDataAccess(access(e.treatOnly, { purpose: 'ETREAT', justification: 'PATIENT_INCAPACITATED' }));
    assert.equal((await entry(e, a.event.index)).payload['reason'], 'PURPOSE_NOT_ALLOWED');
    const rev = await e.gov.revokeConsent(e.treatOnly, OFFICER);
    const b = await e.gov.recordDataAccess(access(e.treatOnly));
    const bx = await entry(e, b.event.index);
    assert.equal(bx.type, 'BREAK_GLASS');
    assert.equal(bx.payload['reason'], 'REVOKED');
    assert.equal(bx.payload['policyVersion'], rev.policy.version);
    const unknown = 'pol_aaaaaaaaaaaaaaaaaaaaaaaaaa';
    const c = await e.gov.recordDataAccess(access(unknown));
    const cx = await entry(e, c.event.index);
    assert.equal(cx.payload['reason'], 'POLICY_NOT_FOUND');
    assert.equal(cx.payload['policyVersion'], undefined);
    assert.equal((await queue(e.gov)).open, 3);
  });

  it('refuses as usual, logged as CONSENT_DENIED with the reason break-glass did not apply: no permission, no justification, another purpose', async () => {
    const e = await env();
    const cases: [Record<string, unknown>, string][] = [
      [{ actor: NURSE }, 'ROLE_NOT_PERMITTED'],
      [{ justification: undefined }, 'JUSTIFICATION_MISSING'],
      [{ purpose: 'HMARKT' }, 'PURPOSE_NOT_BREAK_GLASS'],
    ];
    for (const [over, refusal] of cases) {
      const size = e.log.size;
      const err = await rejection(e.gov.recordDataAccess(access(e.treatOnly, over)));
      assert.ok(err instanceof ConsentDeniedError, String(err));
      assert.equal(err.code, 'CONSENT_DENIED');
      assert.equal(err.breakGlassRefusal, refusal);
      assert.equal(err.details?.['breakGlassRefusal'], refusal);
      assert.equal(err.event.index, size, 'one event: the denial');
      const x = await entry(e, err.event.index);
      assert.equal(x.type, 'CONSENT_DENIED');
      assert.equal(x.payload['breakGlassRefusal'], refusal);
      assert.equal(x.payload['reason'], 'PURPOSE_NOT_ALLOWED');
      assert.equal(x.payload['justification'], over['justification'] === undefined && 'justification' in over ? undefined : 'LIFE_THREATENING_EMERGENCY');
    }
    // An ordinary denial (no justification, no break-glass purpose) is unchanged.
    const plain = await rejection(e.gov.recordDataAccess(access(e.treatOnly, { purpose: 'HMARKT', justification: undefined })));
    assert.ok(plain instanceof ConsentDeniedError);
    assert.equal(plain.breakGlassRefusal, undefined);
    assert.equal((await entry(e, plain.event.index)).payload['breakGlassRefusal'], undefined);
    assert.equal((await queue(e.gov, { status: 'all' })).items.length, 0);
  });

  it('refuses an unknown justification code, or free text, with VALIDATION_FAILED and writes nothing', async () => {
    const e = await env();
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.recordDataAccess(access(e.treatOnly, { justification: 'BECAUSE' })));
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.recordDataAccess(access(e.treatOnly, { justification: 'patient is crashing, need meds' })));
  });

  it('uses the configured justification vocabulary', async () => {
    const clock = new ManualClock(T0);
    const f = await root.openGovernance({ clock, governance: { breakGlass: { justifications: ['MASS_CASUALTY'] } } });
    const p = (await f.gov.createConsent({ subject: 'patient-c', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, OFFICER)).policy.policyId;
    await refusedWith(f, 'VALIDATION_FAILED', () => f.gov.recordDataAccess(access(p)));
    assert.ok((await f.gov.recordDataAccess(access(p, { justification: 'MASS_CASUALTY' }))).breakGlass);
  });
});

describe('break-glass reviews', () => {
  it('a privacy officer closes a review: BREAK_GLASS_REVIEWED naming the entry by index and leaf hash', async () => {
    const e = await env();
    const i = await breakGlass(e);
    e.clock.advance(5 * H);
    const r = await e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER);
    const x = await entry(e, r.event.index);
    assert.equal(x.type, 'BREAK_GLASS_REVIEWED');
    assert.deepEqual(x.payload, {
      breakGlass: i,
      breakGlassLeaf: toHex(hashLeaf((await e.log.reader.getEntry(i)).bytes)),
      outcome: 'justified',
      reason: 'EMERGENCY_CONFIRMED',
      actor: OFFICER.id,
      role: OFFICER.role,
    });
    assert.equal(r.review.status, 'closed');
    assert.deepEqual(r.review.review, { index: r.event.index, time: x.time, actor: OFFICER.id, role: OFFICER.role, outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' });
    const q = await queue(e.gov);
    assert.equal(q.open, 0);
    assert.equal(q.items.length, 0);
    assert.equal((await queue(e.gov, { status: 'closed' })).items[0]!.review!.outcome, 'justified');
  });

  it('refuses a second close, an unknown index, a non-break-glass entry and a self-review with stable codes, writing nothing', async () => {
    const e = await env();
    const i = await breakGlass(e);
    const plain = (await e.gov.recordDataAccess(access(e.treatOnly, { purpose: 'TREAT', justification: undefined }))).event.index;
    await refusedWith(e, 'REVIEW_NOT_FOUND', () => e.gov.closeReview(e.log.size + 10, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER));
    await refusedWith(e, 'REVIEW_NOT_FOUND', () => e.gov.closeReview(plain, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER));
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.closeReview('-1', { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER));
    // The dermatologist, holding a privacy-officer credential under the same actor id, reviews their own access.
    await refusedWith(e, 'REVIEW_SEPARATION_OF_DUTIES', () => e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, { id: DERM.id, role: 'privacy_officer' }));
    // Codes: a reason of the other outcome, an unknown one, free text; a role without break-glass:review.
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.closeReview(i, { outcome: 'justified', reason: 'NO_EMERGENCY' }, OFFICER));
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.closeReview(i, { outcome: 'justified', reason: 'LOOKS_FINE' }, OFFICER));
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.closeReview(i, { outcome: 'maybe' as 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER));
    await refusedWith(e, 'VALIDATION_FAILED', () => e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, { id: 'aud-1', role: 'auditor' }));
    await e.gov.closeReview(i, { outcome: 'not_justified', reason: 'NO_EMERGENCY' }, OFFICER);
    await refusedWith(e, 'REVIEW_CLOSED', () => e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER2));
  });

  it('two reviewers closing the same item at once: one review is written, the other is REVIEW_CLOSED', async () => {
    const e = await env();
    const i = await breakGlass(e);
    const size = e.log.size;
    const results = await Promise.allSettled([
      e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER),
      e.gov.closeReview(i, { outcome: 'not_justified', reason: 'NO_EMERGENCY' }, OFFICER2),
    ]);
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1);
    const rejected = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    assert.equal((rejected.reason as CustosError).code, 'REVIEW_CLOSED');
    assert.equal(e.log.size, size + 1);
  });

  it('an open review is overdue strictly after the deadline, by the service clock (default 72 h, or configured)', async () => {
    const e = await env();
    const i = await breakGlass(e);
    e.clock.set(T0 + 72 * H);
    let q = await queue(e.gov);
    assert.equal(q.items[0]!.overdue, false);
    assert.equal(q.items[0]!.dueAt, new Date(T0 + 72 * H).toISOString());
    assert.equal((await queue(e.gov, { overdue: true })).items.length, 0);
    e.clock.advance(1);
    q = await queue(e.gov);
    assert.deepEqual([q.open, q.overdue, q.items[0]!.overdue], [1, 1, true]);
    assert.deepEqual(
      (await queue(e.gov, { overdue: true })).items.map((x) => x.index),
      [i],
    );
    // Closed late is closed: not overdue any more.
    await e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER);
    q = await queue(e.gov, { status: 'all' });
    assert.deepEqual([q.open, q.overdue, q.items[0]!.overdue], [0, 0, false]);

    const short = await env({ reviewDeadlineMs: 2 * H });
    await breakGlass(short);
    short.clock.advance(2 * H + 1);
    assert.equal((await queue(short.gov)).overdue, 1);
  });

  it('the queue is derived from the log: reopening the data directory gives the same items and refuses the same closes', async () => {
    const e = await env();
    const a = await breakGlass(e);
    const b = await breakGlass(e);
    await e.gov.closeReview(a, { outcome: 'not_justified', reason: 'EXCESSIVE_ACCESS' }, OFFICER);
    const before = await queue(e.gov, { status: 'all' });
    await e.close();
    const clock = new ManualClock(T0 + 100 * H);
    const again = await env({ dataDir: e.dataDir, clock });
    const after = await queue(again.gov, { status: 'all' });
    assert.deepEqual(
      after.items.map((x) => ({ ...x, overdue: undefined })),
      before.items.map((x) => ({ ...x, overdue: undefined })),
    );
    assert.deepEqual([after.open, after.overdue], [1, 1]);
    await refusedWith(again, 'REVIEW_CLOSED', () => again.gov.closeReview(a, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER2));
    await again.gov.closeReview(b, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER2);
    // A second process over the same data directory sees the review the first wrote.
    const third = await env({ dataDir: e.dataDir, clock });
    assert.equal((await queue(third.gov)).open, 0);
  });

  it('a review written by another process is seen before a close is decided', async () => {
    const e = await env();
    const i = await breakGlass(e);
    const other = await env({ dataDir: e.dataDir, clock: e.clock });
    await other.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER2);
    await refusedWith(e, 'REVIEW_CLOSED', () => e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER));
  });

  it("a break-glass access is in the subject's accounting of disclosures (kind break-glass); its review is not a disclosure", async () => {
    const e = await env();
    const i = await breakGlass(e);
    await e.gov.closeReview(i, { outcome: 'justified', reason: 'EMERGENCY_CONFIRMED' }, OFFICER);
    const found = await findSubjectEntries(e.log, 'patient-t');
    assert.deepEqual(
      found.entries.filter((x) => x.kind === 'break-glass').map((x) => x.index),
      [i],
    );
    assert.ok(!found.entries.some((x) => x.event.type === 'BREAK_GLASS_REVIEWED'));
    assert.equal((await findSubjectEntries(e.log, 'patient-n')).entries.filter((x) => x.kind === 'break-glass').length, 0);
  });

  it("erasing the subject erases the opening of a break-glass access's URI", async () => {
    const e = await env();
    const r = await e.gov.recordDataAccess(access(e.treatOnly));
    const uri = ((await entry(e, r.event.index)).payload['artifact'] as { uri: string }).uri;
    const erased = await e.gov.erase('subject', 'patient-t', OFFICER);
    assert.ok(erased.commitments.includes(uri));
    assert.equal(await e.log.sidecar.getCommitment(uri), undefined);
  });
});
