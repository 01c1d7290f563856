/**
 * findSubjectEntries over a real SQLite log: the two-subject scenario (test/helpers/disclosure-scenario.ts).
 * - A's entries are exactly A's accesses, inference, denial and the shared training run; B's likewise;
 * - the erased URI of A's denial is flagged on its line, and the erasure listed;
 * - C's subject erasure makes C unknown, and A's result counts C's entries as unlinked;
 * - time bounds filter lines and count the rest; an unknown subject finds nothing and says so;
 * - a read (AUDIT_READ) of one of A's entries is A's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../log/clock.js';
import { hashLeaf, toHex } from '../../core/hash.js';
import { EVENT_TYPE } from '../../core/events.js';
import { AuditTrail } from '../audit.js';
import { findSubjectEntries, entryTypeOf } from './disclosures.js';
import { useTempRoot } from '../../../test/helpers/fixtures.js';
import { HOUR, T0, writeScenario } from '../../../test/helpers/disclosure-scenario.js';

const root = useTempRoot('disclosures');

describe('findSubjectEntries', () => {
  it("finds exactly each subject's entries, with the erased link flagged and the unlinked counted", async () => {
    const clock = new ManualClock(T0);
    const { log, gov } = await root.openGovernance({ clock });
    const sc = await writeScenario(gov, clock);
    const a = await findSubjectEntries(log, sc.subjects.a);
    assert.equal(a.known, true);
    assert.deepEqual(
      a.policies.map((p) => p.policyId),
      [sc.policies.a],
    );
    assert.deepEqual(
      a.entries.map((e) => e.index),
      sc.expected.a.map((x) => x.index),
    );
    assert.deepEqual(
      a.entries.map((e) => e.event.type),
      sc.expected.a.map((x) => x.type),
    );
    assert.deepEqual(
      a.entries.map((e) => e.kind),
      ['access', 'inference', 'denial', 'training'],
    );
    for (const e of a.entries) {
      assert.equal(e.leafHash, toHex(hashLeaf(e.bytes)));
      assert.deepEqual(e.via.policyIds, [sc.policies.a]);
    }
    // The denial's URI was erased afterwards: flagged on that line only.
    assert.deepEqual(
      a.entries.map((e) => e.erased.length),
      [0, 0, 1, 0],
    );
    assert.deepEqual(
      a.erasures.map((x) => [x.index, x.kind, x.subjectLinked.length]),
      [
        [sc.erasures.subjectC, 'subject', 0],
        [sc.erasures.uriA, 'uri', 1],
      ],
    );
    // C's policy and its one access (the training run named only A and B).
    assert.deepEqual(a.unlinked, { policies: 1, entries: 1, erasures: [sc.erasures.subjectC] });
    assert.equal(a.range.to, log.size);

    const b = await findSubjectEntries(log, sc.subjects.b);
    assert.deepEqual(
      b.entries.map((e) => e.index),
      sc.expected.b.map((x) => x.index),
    );
    assert.deepEqual(
      b.entries.map((e) => e.erased.length),
      [0, 0, 0, 0],
    );

    // C was erased: no opening, nothing found; an id never seen looks the same.
    for (const s of [sc.subjects.c, 'pt-never-seen']) {
      const r = await findSubjectEntries(log, s);
      assert.equal(r.known, false);
      assert.deepEqual([r.entries.length, r.policies.length], [0, 0]);
      assert.equal(r.unlinked.entries, 1);
    }
  });

  it('since/until bound the lines (entry time, since inclusive, until exclusive); the rest are counted', async () => {
    const clock = new ManualClock(T0);
    const { log, gov } = await root.openGovernance({ clock });
    const sc = await writeScenario(gov, clock, 'period');
    const [first, second, third] = sc.expected.a;
    assert.ok(first && second && third);
    const r = await findSubjectEntries(log, sc.subjects.a, { since: second.time, until: third.time });
    assert.deepEqual(
      r.entries.map((e) => e.index),
      [second.index],
    );
    assert.equal(r.outsidePeriod, sc.expected.a.length - 1);
    const none = await findSubjectEntries(log, sc.subjects.a, { since: new Date(T0 + 1000 * HOUR).toISOString() });
    assert.deepEqual([none.entries.length, none.outsidePeriod], [0, sc.expected.a.length]);
  });

  it("a read of one of A's entries, and an opening naming it, are A's; the bounded range is honoured", async () => {
    const clock = new ManualClock(T0);
    const { log, gov } = await root.openGovernance({ clock });
    const sc = await writeScenario(gov, clock, 'reads');
    const before = log.size;
    const trail = new AuditTrail({ log, vocabulary: gov.vocabulary });
    const target = sc.expected.a[1]!.index;
    const read = await trail.read({ id: 'aud-1', role: 'auditor' }, { route: 'GET /api/v1/entries/:index', permission: 'read', eventIndex: target });
    const otherRead = await trail.read({ id: 'aud-1', role: 'auditor' }, { route: 'GET /api/v1/entries/:index', permission: 'read', eventIndex: sc.expected.b[1]!.index });
    const opened = await trail.opened(
      { id: 'po-1', role: 'privacy_officer' },
      { route: 'GET /api/v1/receipts/:index', permission: 'commitments:open', purpose: 'TREAT', eventIndex: target, commitments: [] },
    );
    const r = await findSubjectEntries(log, sc.subjects.a);
    const [readLine, openLine] = r.entries.slice(-2);
    assert.deepEqual([readLine?.index, readLine?.kind, readLine?.via.entries], [read.index, 'read', [target]]);
    assert.deepEqual([openLine?.index, openLine?.kind, openLine?.via.entries], [opened.index, 'opening', [target]]);
    assert.ok(!r.entries.some((e) => e.index === otherRead.index));
    const bounded = await findSubjectEntries(log, sc.subjects.a, { to: before });
    assert.ok(!bounded.entries.some((e) => e.index >= before));
  });

  it('entryTypeOf reads the top-level type, not a nested one', () => {
    const t = EVENT_TYPE.trainingExecuted;
    assert.equal(entryTypeOf(Buffer.from(`{"index":0,"payload":{"dataset":{"type":"identified"}},"time":"2026-01-01T00:00:00.000Z","type":"${t}","v":1}`)), t);
    assert.equal(entryTypeOf(Buffer.from('{}')), undefined);
  });
});
