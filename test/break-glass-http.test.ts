/**
 * Break-glass over HTTP (issue 12), in process on a real SQLite log with an injected clock: the
 * access route's break-glass fields, the review routes and their permissions, the refusals with
 * their codes (nothing written), the audit of reading the queue, and the /metrics gauges.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/log/clock.js';
import { decodeEntry } from '../src/core/entry.js';
import { DEFAULT_ROLES } from '../src/core/vocabulary.js';
import { createServerEnv, SETUP_ACTOR, type ServerEnv, type TestRole } from './helpers/server-env.js';
import { pid } from './helpers/policy-ids.js';

const T0 = Date.parse('2030-05-01T10:00:00.000Z');
const H = 3_600_000;
const D1 = 'a1'.repeat(32);
const PO = { id: 'po-1', role: 'privacy_officer' };

describe('break-glass over HTTP', () => {
  let env: ServerEnv;
  const clock = new ManualClock(T0);
  let selfToken = '';

  before(async () => {
    env = await createServerEnv({ clock }, { clock });
    await env.governance.createConsent({ policyId: pid('bg-http'), subject: 'patient-h', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist', 'nurse'] }, PO);
    // The dermatologist's actor id under a privacy-officer credential (one person, two roles).
    selfToken = (await env.auth.createToken('dr-derm', 'privacy_officer', SETUP_ACTOR)).token;
  });
  after(async () => {
    await env?.close();
  });

  const call = (who: TestRole | string, method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
    env.app.inject({ method, url, headers: { authorization: `Bearer ${(env.tokens as Record<string, string>)[who] ?? who}` }, ...(payload ? { payload } : {}) });
  const access = (over: Record<string, unknown> = {}) => ({
    purpose: 'BTG',
    policyId: pid('bg-http'),
    artifact: { uri: 's3://ehr/p-h/labs.json', digest: D1 },
    justification: 'URGENT_TREATMENT',
    ...over,
  });
  const entryAt = async (i: number) => decodeEntry((await env.log.reader.getEntry(i)).bytes.toString('utf8'));
  const metric = async (name: string): Promise<number> => {
    const text = (await call('auditor', 'GET', '/metrics')).body;
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    assert.ok(m, `${name} not in /metrics`);
    return Number(m[1]);
  };

  it('POST /api/v1/access: a denial overridden as BREAK_GLASS (201), with the decision it overrode', async () => {
    const res = await call('dermatologist', 'POST', '/api/v1/access', access());
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { decision: { effect: string; reason: string }; event: { index: number }; breakGlass: { justification: string; reviewDue: string } };
    assert.equal(body.decision.effect, 'deny');
    assert.equal(body.decision.reason, 'PURPOSE_NOT_ALLOWED');
    assert.deepEqual(body.breakGlass, { justification: 'URGENT_TREATMENT', reviewDue: new Date(T0 + 72 * H).toISOString() });
    const e = await entryAt(body.event.index);
    assert.equal(e.type, 'BREAK_GLASS');
    assert.equal((e.payload as Record<string, unknown>)['actor'], 'dr-derm');
    assert.match(await (await call('auditor', 'GET', '/metrics')).body, /custos_decisions_total\{operation="access",effect="break_glass",reason="PURPOSE_NOT_ALLOWED"\} 1/);
  });

  it('refuses a role without break-glass (403 CONSENT_DENIED, logged), and an unknown justification (400, nothing written)', async () => {
    const res = await call('nurse', 'POST', '/api/v1/access', access());
    assert.equal(res.statusCode, 403);
    const body = res.json() as { error: { code: string; details: Record<string, unknown> }; event: { index: number } };
    assert.equal(body.error.code, 'CONSENT_DENIED');
    assert.equal(body.error.details['breakGlassRefusal'], 'ROLE_NOT_PERMITTED');
    assert.equal((await entryAt(body.event.index)).type, 'CONSENT_DENIED');
    const size = env.log.size;
    const bad = await call('dermatologist', 'POST', '/api/v1/access', access({ justification: 'I_SAID_SO' }));
    assert.equal(bad.statusCode, 400);
    assert.equal((bad.json() as { error: { code: string } }).error.code, 'VALIDATION_FAILED');
    assert.equal(env.log.size, size);
  });

  it('GET /api/v1/reviews: the queue for break-glass:review only, its read logged as AUDIT_QUERY', async () => {
    for (const role of Object.keys(env.tokens) as TestRole[]) {
      const res = await call(role, 'GET', '/api/v1/reviews');
      const allowed = DEFAULT_ROLES[role]!.includes('break-glass:review');
      assert.equal(res.statusCode, allowed ? 200 : 403, `${role}: ${res.body}`);
      if (!allowed)
        assert.deepEqual(
          [(res.json() as { error: { code: string; details: { permission: string } } }).error.code, (res.json() as { error: { details: { permission: string } } }).error.details.permission],
          ['FORBIDDEN', 'break-glass:review'],
        );
    }
    const res = await call('privacy_officer', 'GET', '/api/v1/reviews');
    const q = res.json() as { open: number; overdue: number; deadlineHours: number; items: { index: number; actor: string; overdue: boolean; overridden: { reason: string } }[] };
    assert.deepEqual([q.open, q.overdue, q.deadlineHours, q.items.length], [1, 0, 72, 1]);
    assert.equal(q.items[0]!.actor, 'dr-derm');
    assert.equal(q.items[0]!.overridden.reason, 'PURPOSE_NOT_ALLOWED');
    const last = await entryAt(env.log.size - 1);
    assert.equal(last.type, 'AUDIT_QUERY');
    assert.deepEqual([(last.payload as Record<string, unknown>)['route'], (last.payload as Record<string, unknown>)['permission']], ['GET /api/v1/reviews', 'break-glass:review']);
    assert.equal((await call('privacy_officer', 'GET', '/api/v1/reviews?status=sometimes')).statusCode, 400);
  });

  it('/metrics: open and overdue gauges, overdue only after the deadline by the service clock', async () => {
    assert.equal(await metric('custos_break_glass_reviews_open'), 1);
    assert.equal(await metric('custos_break_glass_reviews_overdue'), 0);
    clock.set(T0 + 72 * H + 1);
    assert.equal(await metric('custos_break_glass_reviews_overdue'), 1);
    const q = (await call('privacy_officer', 'GET', '/api/v1/reviews?overdue=true')).json() as { items: { overdue: boolean }[] };
    assert.deepEqual(
      q.items.map((x) => x.overdue),
      [true],
    );
  });

  it('POST /api/v1/reviews/:index: closes once; refuses self-review, a second close, a non-break-glass entry, a bad body', async () => {
    const index = ((await call('privacy_officer', 'GET', '/api/v1/reviews')).json() as { items: { index: number }[] }).items[0]!.index;
    const ok = { outcome: 'not_justified', reason: 'JUSTIFICATION_UNSUPPORTED' };
    const refused = async (who: string, url: string, payload: Record<string, unknown>, status: number, code: string) => {
      const size = await env.dir.store.treeSize();
      const res = await call(who, 'POST', url, payload);
      assert.equal(res.statusCode, status, res.body);
      assert.equal((res.json() as { error: { code: string } }).error.code, code);
      // Nothing written for the review (a 403 AuthError is counted in a SECURITY_ALERT, written per window).
      const grown = (await env.dir.store.treeSize()) - size;
      for (let i = size; i < size + grown; i++) assert.equal((await entryAt(i)).type, 'SECURITY_ALERT');
    };
    await refused('dermatologist', `/api/v1/reviews/${index}`, ok, 403, 'FORBIDDEN');
    await refused(selfToken, `/api/v1/reviews/${index}`, ok, 403, 'REVIEW_SEPARATION_OF_DUTIES');
    await refused('privacy_officer', `/api/v1/reviews/${index}`, { outcome: 'not_justified', reason: 'EMERGENCY_CONFIRMED' }, 400, 'VALIDATION_FAILED');
    await refused('privacy_officer', `/api/v1/reviews/${index}`, { outcome: 'not_justified' }, 400, 'VALIDATION_FAILED');
    await refused('privacy_officer', '/api/v1/reviews/0', ok, 404, 'REVIEW_NOT_FOUND');
    await refused('privacy_officer', '/api/v1/reviews/999999', ok, 404, 'REVIEW_NOT_FOUND');
    const res = await call('privacy_officer', 'POST', `/api/v1/reviews/${index}`, ok);
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { review: { status: string; review: { outcome: string; actor: string } }; event: { index: number } };
    assert.deepEqual([body.review.status, body.review.review.outcome, body.review.review.actor], ['closed', 'not_justified', 'po-1']);
    assert.equal((await entryAt(body.event.index)).type, 'BREAK_GLASS_REVIEWED');
    await refused('privacy_officer', `/api/v1/reviews/${index}`, ok, 409, 'REVIEW_CLOSED');
    assert.equal(await metric('custos_break_glass_reviews_open'), 0);
    assert.equal(await metric('custos_break_glass_reviews_overdue'), 0);
  });

  it('/openapi.json lists the review routes with their permission', async () => {
    const doc = (await env.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { 'x-custos-permission'?: string }>> };
    assert.equal(doc.paths['/api/v1/reviews']?.['get']?.['x-custos-permission'], 'break-glass:review');
    assert.equal(doc.paths['/api/v1/reviews/{index}']?.['post']?.['x-custos-permission'], 'break-glass:review');
  });
});
