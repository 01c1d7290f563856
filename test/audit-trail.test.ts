/**
 * The audit trail's refusal aggregation and the openings limit, on a real SQLite log with a manual
 * clock: bounded events per caller and window, counts that add up, bounded memory under many
 * callers, and a log that still verifies.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DataDir } from '../src/log/data-dir.js';
import { useTempRoot } from './helpers/fixtures.js';
import type { Log } from '../src/log/log.js';
import { ManualClock } from '../src/log/clock.js';
import { verifyLog } from '../src/log/verify-log.js';
import { AuditTrail, OpeningLimiter, type AuditCaller } from '../src/service/audit.js';
import { hasCode } from '../src/core/errors.js';
import { createVocabulary } from '../src/core/vocabulary.js';
import { createHash } from 'node:crypto';

const T0 = Date.parse('2026-03-01T08:00:00.000Z');
const root = useTempRoot('audit-trail');

async function fresh(clock: ManualClock): Promise<{ log: Log; dir: DataDir }> {
  const { log, dir } = await root.openLog({ origin: 'audit-trail.test/log', clock });
  return { log, dir };
}

async function alerts(log: Log): Promise<{ payload: Record<string, unknown> }[]> {
  const out: { payload: Record<string, unknown> }[] = [];
  for await (const page of log.reader.entryPages(0, log.size)) {
    for (const e of page) {
      const j = JSON.parse(e.bytes.toString('utf8')) as { type: string; payload: Record<string, unknown> };
      if (j.type === 'SECURITY_ALERT') out.push(j);
    }
  }
  return out;
}

const key = (p: Record<string, unknown>) => (p['actor'] === undefined ? `c:${String(p['client'])}` : `a:${String(p['actor'])}`);

describe('SECURITY_ALERT aggregation', () => {
  it('for any sequence of refusals and clock steps: at most 2 events per caller per window, counts sum to the refusals', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ caller: fc.integer({ min: 0, max: 3 }), code: fc.constantFrom('FORBIDDEN', 'UNAUTHENTICATED', 'ACTOR_MISMATCH'), stepMs: fc.integer({ min: 0, max: 40_000 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        async (steps) => {
          const clock = new ManualClock(T0);
          const { log, dir } = await fresh(clock);
          const trail = new AuditTrail({ log, clock, windowMs: 60_000 });
          const expected = new Map<string, number>();
          for (const s of steps) {
            clock.advance(s.stepMs);
            const caller: AuditCaller = s.caller === 3 ? { client: 'ab'.repeat(16) } : { actor: `u${s.caller}`, role: 'nurse' };
            await trail.refused(caller, { code: s.code, route: 'GET /api/v1/export', permission: 'export' });
            const k = 'actor' in caller ? `a:${caller.actor}` : `c:${caller.client}`;
            expected.set(k, (expected.get(k) ?? 0) + 1);
          }
          await trail.flush();
          const got = new Map<string, number>();
          const events = new Map<string, number>();
          for (const a of await alerts(log)) {
            got.set(key(a.payload), (got.get(key(a.payload)) ?? 0) + Number(a.payload['count']));
            events.set(key(a.payload), (events.get(key(a.payload)) ?? 0) + 1);
            const byRefusal = (a.payload['refusals'] as { count: number }[]).reduce((x, r) => x + r.count, 0);
            assert.equal(byRefusal, a.payload['count'], 'refusals add up to the count');
          }
          assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries([...expected].sort()));
          // Windows per caller are at most (elapsed / window) + 1; each gives at most 2 events.
          const elapsed = steps.reduce((x, s) => x + s.stepMs, 0);
          for (const [k, e] of events) assert.ok(e <= 2 * (Math.floor(elapsed / 60_000) + 1), `${k}: ${e} events over ${elapsed} ms`);
          const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
          assert.equal(report.ok, true);
        },
      ),
      { seed: 9, numRuns: 15 },
    );
  });

  it('tracks at most maxCallers windows; further callers share one overflow window', async () => {
    const clock = new ManualClock(T0);
    const { log } = await fresh(clock);
    const trail = new AuditTrail({ log, clock, maxCallers: 3 });
    for (let i = 0; i < 50; i++) await trail.refused({ client: i.toString(16).padStart(32, '0') }, { code: 'UNAUTHENTICATED', route: 'GET /api/v1/export' });
    await trail.flush();
    const all = await alerts(log);
    // Three tracked callers (one event each) and the overflow window (counted, written at its end; it names no caller).
    assert.equal(all.length, 4);
    assert.equal(
      all.reduce((x, a) => x + Number(a.payload['count']), 0),
      50,
    );
    const overflow = all.filter((a) => a.payload['client'] === undefined && a.payload['actor'] === undefined);
    assert.deepEqual(
      overflow.map((a) => a.payload['count']),
      [47],
    );
  });

  // Each new caller window costs one token of the global bucket; the rest go to the overflow window.
  // In any window length: at most 2N immediate writes (a full bucket plus its refill), at most one
  // end-of-window event per window opened in the previous window length (2N), and the overflow
  // window's two: 4N + 2 (242 with the default N = 60).
  const bound = (n: number) => 4 * n + 2;

  it('5,000 distinct anonymous callers refused once in one window: at most 4N + 2 alerts, counts sum to 5,000', async () => {
    const clock = new ManualClock(T0);
    const { log, dir } = await fresh(clock);
    const trail = new AuditTrail({ log, clock, vocabulary: createVocabulary() });
    for (let i = 0; i < 5_000; i++) {
      clock.advance(i % 500 === 0 ? 1 : 0);
      await trail.refused({ client: createHash('sha256').update(String(i)).digest('hex').slice(0, 32) }, { code: 'UNAUTHENTICATED', route: 'GET /api/v1/export' });
    }
    await trail.flush();
    const all = await alerts(log);
    assert.ok(all.length <= bound(60), `${all.length} events`);
    assert.equal(all.length, 61, 'the first 60 callers at once, the other 4,940 in one overflow event');
    assert.equal(
      all.reduce((x, a) => x + Number(a.payload['count']), 0),
      5_000,
    );
    const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
    assert.equal(report.ok, true);
  });

  it('for any flood of callers over several windows: events per window length stay within 4N + 2 and counts add up', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.record({ caller: fc.integer({ min: 0, max: 400 }), stepMs: fc.integer({ min: 0, max: 3_000 }) }), { minLength: 1, maxLength: 300 }),
        async (n, steps) => {
          const clock = new ManualClock(T0);
          const { log } = await fresh(clock);
          const trail = new AuditTrail({ log, clock, windowMs: 60_000, alertsPerWindow: n, vocabulary: createVocabulary() });
          for (const s of steps) {
            clock.advance(s.stepMs);
            await trail.refused({ client: s.caller.toString(16).padStart(32, '0') }, { code: 'UNAUTHENTICATED', route: 'GET /api/v1/stats' });
          }
          // Shutdown one window later: what is still open is written on its own.
          clock.advance(60_000);
          await trail.flush();
          const all = await alerts(log);
          assert.equal(
            all.reduce((x, a) => x + Number(a.payload['count']), 0),
            steps.length,
          );
          // An alert is written at its window's end (windowEnd; the first refusal's alert: windowStart = windowEnd).
          const times = all.map((a) => Date.parse(String(a.payload['windowEnd'])));
          for (const t of times) {
            const inWindow = times.filter((u) => u >= t && u < t + 60_000).length;
            assert.ok(inWindow <= bound(n), `${inWindow} events in one window with N = ${n}`);
          }
        },
      ),
      { seed: 14, numRuns: 20 },
    );
  });
});

describe('OpeningLimiter', () => {
  it('allows max per sliding window per key, then OPENING_RATE_LIMITED; other keys are not limited', () => {
    const clock = new ManualClock(T0);
    const lim = new OpeningLimiter({ max: 2, windowMs: 60_000, clock });
    lim.take('a');
    clock.advance(30_000);
    lim.take('a');
    assert.throws(
      () => lim.take('a'),
      (e: unknown) => hasCode(e, 'OPENING_RATE_LIMITED'),
    );
    lim.take('b');
    clock.advance(30_001);
    lim.take('a');
    assert.throws(
      () => lim.take('a'),
      (e: unknown) => hasCode(e, 'OPENING_RATE_LIMITED'),
    );
  });
});
