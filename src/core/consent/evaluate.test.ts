/**
 * The consent decision as a decision table: every reason code, the exact edges of the validity
 * window, the order in which the checks are made, nested provisions (FHIR Consent exceptions),
 * plus validation of policy input and the salted commitments that stand in for identifiers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { PROVISION_PATH_RE, evaluateConsent, type ConsentRequest, type DecisionReason, type PolicyLookup } from './evaluate.js';
import { POLICY_SCHEMA, parsePolicyInput, type ConsentPolicy, type Provision } from './policy.js';
import { computeCommitment, COMMITMENT_SALT_BYTES } from '../commitment.js';
import { ValidationError } from '../errors.js';

const HASH = 'ab'.repeat(32);
const START = '2030-01-01T00:00:00.000Z';
const END = '2030-12-31T23:59:59.999Z';
const START_MS = Date.parse(START);
const END_MS = Date.parse(END);
const MID_MS = Date.parse('2030-06-15T12:00:00.000Z');

const CARE: ConsentRequest = { purpose: 'TREAT', role: 'dermatologist' };
const RESEARCH: ConsentRequest = { purpose: 'HRESCH', role: 'dermatologist' };

/** A version-1 permit policy for TREAT and research, by dermatologists and nurses. */
function policy(over: Partial<ConsentPolicy> = {}): ConsentPolicy {
  return {
    schema: POLICY_SCHEMA,
    policyId: 'consent-001',
    version: 1,
    subject: 'cd'.repeat(32),
    revocable: true,
    revoked: false,
    period: { start: START, end: END },
    provision: { type: 'permit', purposes: ['TREAT', 'HRESCH'], roles: ['dermatologist', 'nurse'] },
    previous: null,
    recordedAt: START,
    recordedBy: { actor: 'po-1', role: 'privacy_officer' },
    ...over,
  };
}

function withProvision(provision: Provision, over: Partial<ConsentPolicy> = {}): ConsentPolicy {
  return policy({ ...over, provision });
}

const found = (p: ConsentPolicy, hash = HASH): PolicyLookup => ({ kind: 'found', policy: p, hash });

function reasonOf(lookup: PolicyLookup, req: ConsentRequest, nowMs = MID_MS): DecisionReason {
  return evaluateConsent(lookup, req, nowMs).reason;
}

function assertValidationIssue(fn: () => unknown, pathPredicate: (path: string) => boolean): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    assert.equal(err.code, 'VALIDATION_FAILED');
    assert.ok(err.issues.length >= 1, 'at least one issue');
    assert.ok(
      err.issues.some((i) => pathPredicate(i.path)),
      `no issue with the expected path among ${JSON.stringify(err.issues.map((i) => i.path))}`,
    );
    return true;
  });
}

describe('evaluateConsent: one row per reason code', () => {
  interface Row {
    readonly name: string;
    readonly lookup: PolicyLookup;
    readonly request: ConsentRequest;
    readonly nowMs: number;
    readonly reason: DecisionReason;
  }
  const rows: Row[] = [
    { name: 'permitted purpose and role inside the window', lookup: found(policy()), request: CARE, nowMs: MID_MS, reason: 'PERMITTED' },
    { name: 'no policy', lookup: { kind: 'unknown', policyId: 'nope' }, request: CARE, nowMs: MID_MS, reason: 'POLICY_NOT_FOUND' },
    {
      name: 'document does not match the logged hash',
      lookup: { kind: 'tampered', policyId: 'consent-001', version: 3, hash: HASH },
      request: CARE,
      nowMs: MID_MS,
      reason: 'POLICY_TAMPERED',
    },
    { name: 'revoked version', lookup: found(policy({ revoked: true, version: 2 })), request: CARE, nowMs: MID_MS, reason: 'REVOKED' },
    { name: 'before the window', lookup: found(policy()), request: CARE, nowMs: START_MS - 86_400_000, reason: 'NOT_YET_VALID' },
    { name: 'after the window', lookup: found(policy()), request: CARE, nowMs: END_MS + 86_400_000, reason: 'EXPIRED' },
    { name: 'purpose not allowed', lookup: found(policy()), request: { purpose: 'marketing', role: 'dermatologist' }, nowMs: MID_MS, reason: 'PURPOSE_NOT_ALLOWED' },
    { name: 'role not allowed', lookup: found(policy()), request: { purpose: 'TREAT', role: 'ml_engineer' }, nowMs: MID_MS, reason: 'ROLE_NOT_ALLOWED' },
    {
      name: 'a nested deny matches',
      lookup: found(withProvision({ type: 'permit', purposes: ['TREAT', 'HRESCH'], provisions: [{ type: 'deny', purposes: ['HRESCH'] }] })),
      request: RESEARCH,
      nowMs: MID_MS,
      reason: 'DENIED_BY_PROVISION',
    },
    {
      name: 'a root deny matches',
      lookup: found(withProvision({ type: 'deny', purposes: ['HRESCH'] })),
      request: RESEARCH,
      nowMs: MID_MS,
      reason: 'DENIED_BY_PROVISION',
    },
  ];
  for (const row of rows) {
    it(`${row.reason}: ${row.name}`, () => {
      const d = evaluateConsent(row.lookup, row.request, row.nowMs);
      assert.equal(d.reason, row.reason);
      assert.equal(d.effect, row.reason === 'PERMITTED' ? 'permit' : 'deny');
      assert.equal(typeof d.explanation, 'string');
      assert.ok(d.explanation.length > 0);
    });
  }

  it('covers every reason code', () => {
    const all: DecisionReason[] = ['PERMITTED', 'POLICY_NOT_FOUND', 'POLICY_TAMPERED', 'REVOKED', 'NOT_YET_VALID', 'EXPIRED', 'PURPOSE_NOT_ALLOWED', 'ROLE_NOT_ALLOWED', 'DENIED_BY_PROVISION'];
    assert.deepEqual(new Set(rows.map((r) => r.reason)), new Set(all));
  });
});

describe('evaluateConsent: the decision names the policy version it was made under', () => {
  it('a permit carries policyId, policyVersion and policyHash', () => {
    const d = evaluateConsent(found(policy({ version: 4 }), 'ef'.repeat(32)), CARE, MID_MS);
    assert.deepEqual(
      { effect: d.effect, policyId: d.policyId, policyVersion: d.policyVersion, policyHash: d.policyHash },
      { effect: 'permit', policyId: 'consent-001', policyVersion: 4, policyHash: 'ef'.repeat(32) },
    );
  });

  it('a denial under a found policy carries its version and hash too', () => {
    for (const [p, req, now] of [
      [policy({ version: 2, revoked: true }), CARE, MID_MS],
      [policy({ version: 2 }), CARE, END_MS + 1],
      [policy({ version: 2 }), { purpose: 'marketing', role: 'nurse' }, MID_MS],
    ] as const) {
      const d = evaluateConsent(found(p, '12'.repeat(32)), req, now);
      assert.equal(d.effect, 'deny');
      assert.equal(d.policyVersion, 2);
      assert.equal(d.policyHash, '12'.repeat(32));
    }
  });

  it('a tampered lookup carries the version and hash the log committed', () => {
    const d = evaluateConsent({ kind: 'tampered', policyId: 'p-9', version: 7, hash: '34'.repeat(32) }, CARE, MID_MS);
    assert.deepEqual([d.effect, d.policyId, d.policyVersion, d.policyHash], ['deny', 'p-9', 7, '34'.repeat(32)]);
  });

  it('an unknown policy has no version and no hash', () => {
    const d = evaluateConsent({ kind: 'unknown', policyId: 'p-0' }, CARE, MID_MS);
    assert.deepEqual([d.effect, d.policyId, d.policyVersion, d.policyHash], ['deny', 'p-0', undefined, undefined]);
  });
});

describe('evaluateConsent: the validity window is inclusive at both ends', () => {
  const lookup = found(policy());
  const cases: [string, number, DecisionReason][] = [
    ['start - 1 ms', START_MS - 1, 'NOT_YET_VALID'],
    ['start', START_MS, 'PERMITTED'],
    ['start + 1 ms', START_MS + 1, 'PERMITTED'],
    ['end - 1 ms', END_MS - 1, 'PERMITTED'],
    ['end (inclusive)', END_MS, 'PERMITTED'],
    ['end + 1 ms', END_MS + 1, 'EXPIRED'],
  ];
  for (const [name, now, reason] of cases) {
    it(`${name} -> ${reason}`, () => assert.equal(reasonOf(lookup, CARE, now), reason));
  }

  it('without an end the policy never expires', () => {
    const p = policy({ period: { start: START } });
    assert.equal(reasonOf(found(p), CARE, Date.parse('9999-12-31T23:59:59.999Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), CARE, START_MS - 1), 'NOT_YET_VALID');
  });

  it('a window of a single millisecond permits at exactly that millisecond', () => {
    const p = policy({ period: { start: START, end: START } });
    assert.equal(reasonOf(found(p), CARE, START_MS - 1), 'NOT_YET_VALID');
    assert.equal(reasonOf(found(p), CARE, START_MS), 'PERMITTED');
    assert.equal(reasonOf(found(p), CARE, START_MS + 1), 'EXPIRED');
  });

  it('a nested provision period is inclusive at both ends too', () => {
    const s = '2030-03-01T00:00:00.000Z';
    const e = '2030-03-31T23:59:59.999Z';
    const p = withProvision({
      type: 'permit',
      purposes: ['TREAT', 'HRESCH'],
      provisions: [{ type: 'deny', purposes: ['HRESCH'], period: { start: s, end: e } }],
    });
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse(s) - 1), 'PERMITTED');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse(s)), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse(e)), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse(e) + 1), 'PERMITTED');
  });
});

describe('evaluateConsent: precedence of the checks', () => {
  // Order in code: unknown, tampered, revoked, not yet valid, expired, purpose, role, provisions.
  const wrongBoth: ConsentRequest = { purpose: 'marketing', role: 'ml_engineer' };
  const denyResearch = withProvision({ type: 'permit', purposes: ['TREAT', 'HRESCH'], roles: ['dermatologist'], provisions: [{ type: 'deny', purposes: ['HRESCH'] }] });

  it('a tampered lookup is refused whatever the request (there is no policy to consult)', () => {
    const t: PolicyLookup = { kind: 'tampered', policyId: 'x', version: 1, hash: HASH };
    assert.equal(reasonOf(t, wrongBoth, START_MS - 1), 'POLICY_TAMPERED');
  });
  it('revoked beats expired', () => {
    assert.equal(reasonOf(found(policy({ revoked: true })), CARE, END_MS + 1), 'REVOKED');
  });
  it('revoked beats not yet valid', () => {
    assert.equal(reasonOf(found(policy({ revoked: true })), CARE, START_MS - 1), 'REVOKED');
  });
  it('revoked beats a wrong purpose and role', () => {
    assert.equal(reasonOf(found(policy({ revoked: true })), wrongBoth, MID_MS), 'REVOKED');
  });
  it('not yet valid beats a wrong purpose and role', () => {
    assert.equal(reasonOf(found(policy()), wrongBoth, START_MS - 1), 'NOT_YET_VALID');
  });
  it('expired beats a wrong purpose and role', () => {
    assert.equal(reasonOf(found(policy()), wrongBoth, END_MS + 1), 'EXPIRED');
  });
  it('a wrong purpose is reported before a wrong role', () => {
    assert.equal(reasonOf(found(policy()), wrongBoth, MID_MS), 'PURPOSE_NOT_ALLOWED');
  });
  it('a wrong role is reported before a nested deny', () => {
    assert.equal(reasonOf(found(denyResearch), { purpose: 'HRESCH', role: 'nurse' }, MID_MS), 'ROLE_NOT_ALLOWED');
  });
  it('a nested deny is reached only when purpose and role are allowed', () => {
    assert.equal(reasonOf(found(denyResearch), RESEARCH, MID_MS), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(denyResearch), CARE, MID_MS), 'PERMITTED');
  });
  it('expired beats a nested deny', () => {
    assert.equal(reasonOf(found(denyResearch), RESEARCH, END_MS + 1), 'EXPIRED');
  });
  it('a root permit without purposes or roles allows any purpose and role', () => {
    const p = withProvision({ type: 'permit' });
    assert.equal(reasonOf(found(p), wrongBoth, MID_MS), 'PERMITTED');
  });
  it('a root permit with its own period denies outside it (DENIED_BY_PROVISION), inside the policy window', () => {
    const p = withProvision({ type: 'permit', period: { start: '2030-02-01T00:00:00.000Z', end: '2030-02-28T23:59:59.999Z' } });
    assert.equal(reasonOf(found(p), CARE, Date.parse('2030-01-31T23:59:59.999Z')), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), CARE, Date.parse('2030-02-01T00:00:00.000Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), CARE, Date.parse('2030-02-28T23:59:59.999Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), CARE, Date.parse('2030-03-01T00:00:00.000Z')), 'DENIED_BY_PROVISION');
  });
});

describe('evaluateConsent: nested provisions (deepest match wins)', () => {
  it('a nested deny for research inside a permit denies research only', () => {
    const p = withProvision({ type: 'permit', purposes: ['TREAT', 'HRESCH'], provisions: [{ type: 'deny', purposes: ['HRESCH'] }] });
    assert.equal(reasonOf(found(p), RESEARCH), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), CARE), 'PERMITTED');
    assert.equal(reasonOf(found(p), { purpose: 'HRESCH', role: 'nurse' }), 'DENIED_BY_PROVISION');
  });

  it('a nested deny scoped to a role denies only that role', () => {
    const p = withProvision({ type: 'permit', purposes: ['TREAT'], provisions: [{ type: 'deny', roles: ['nurse'] }] });
    assert.equal(reasonOf(found(p), { purpose: 'TREAT', role: 'nurse' }), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), CARE), 'PERMITTED');
  });

  it('a nested deny with a period denies only within the period', () => {
    const p = withProvision({
      type: 'permit',
      purposes: ['TREAT', 'HRESCH'],
      provisions: [{ type: 'deny', purposes: ['HRESCH'], period: { start: '2030-06-01T00:00:00.000Z', end: '2030-06-30T23:59:59.999Z' } }],
    });
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-06-15T00:00:00.000Z')), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-05-31T23:59:59.999Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-07-01T00:00:00.000Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), CARE, Date.parse('2030-06-15T00:00:00.000Z')), 'PERMITTED');
  });

  it('a nested deny with an open-ended period (start only) denies from its start on', () => {
    const p = withProvision({
      type: 'permit',
      provisions: [{ type: 'deny', purposes: ['HRESCH'], period: { start: '2030-06-01T00:00:00.000Z' } }],
    });
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-06-01T00:00:00.000Z') - 1), 'PERMITTED');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-06-01T00:00:00.000Z')), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH, END_MS), 'DENIED_BY_PROVISION');
  });

  it('a nested permit inside a nested deny: the deepest matching provision decides', () => {
    const p = withProvision({
      type: 'permit',
      purposes: ['TREAT', 'HRESCH'],
      roles: ['dermatologist', 'researcher'],
      provisions: [
        {
          type: 'deny',
          purposes: ['HRESCH'],
          provisions: [{ type: 'permit', roles: ['researcher'] }],
        },
      ],
    });
    // Matches deny and its nested permit: permit (deepest).
    assert.equal(reasonOf(found(p), { purpose: 'HRESCH', role: 'researcher' }), 'PERMITTED');
    // Matches the deny but not the nested permit: deny.
    assert.equal(reasonOf(found(p), { purpose: 'HRESCH', role: 'dermatologist' }), 'DENIED_BY_PROVISION');
    // Matches neither: the root permit.
    assert.equal(reasonOf(found(p), { purpose: 'TREAT', role: 'researcher' }), 'PERMITTED');
  });

  it('three levels deep: permit > deny > permit > deny', () => {
    const p = withProvision({
      type: 'permit',
      provisions: [
        {
          type: 'deny',
          purposes: ['HRESCH'],
          provisions: [{ type: 'permit', roles: ['researcher'], provisions: [{ type: 'deny', period: { start: '2030-09-01T00:00:00.000Z' } }] }],
        },
      ],
    });
    const req = { purpose: 'HRESCH', role: 'researcher' };
    assert.equal(reasonOf(found(p), req, Date.parse('2030-08-31T23:59:59.999Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), req, Date.parse('2030-09-01T00:00:00.000Z')), 'DENIED_BY_PROVISION');
  });

  it('a nested permit that does not match leaves the enclosing deny in force', () => {
    const p = withProvision({
      type: 'permit',
      provisions: [{ type: 'deny', purposes: ['HRESCH'], provisions: [{ type: 'permit', period: { end: '2030-01-31T23:59:59.999Z' } }] }],
    });
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-01-31T23:59:59.999Z')), 'PERMITTED');
    assert.equal(reasonOf(found(p), RESEARCH, Date.parse('2030-02-01T00:00:00.000Z')), 'DENIED_BY_PROVISION');
  });

  it('among matching siblings, deny overrides permit whatever their order (FHIR Consent, IHE PCF)', () => {
    const deny = { type: 'deny', purposes: ['HRESCH'] } as const;
    const permit = { type: 'permit', purposes: ['HRESCH'], roles: ['ml_engineer'] } as const;
    for (const provisions of [
      [deny, permit],
      [permit, deny],
    ]) {
      const p = withProvision({ type: 'permit', provisions });
      const d = evaluateConsent(found(p), { purpose: 'HRESCH', role: 'ml_engineer' }, MID_MS);
      assert.equal(d.reason, 'DENIED_BY_PROVISION');
      assert.equal(d.provision, `provision.provisions[${provisions.indexOf(deny)}]`, 'the decision names the deny that decided');
      assert.equal(reasonOf(found(p), { purpose: 'HRESCH', role: 'dermatologist' }), 'DENIED_BY_PROVISION');
    }
  });

  it('a permit sibling decides only when no matching sibling denies', () => {
    const p = withProvision({
      type: 'deny',
      provisions: [
        { type: 'permit', purposes: ['HRESCH'] },
        { type: 'deny', roles: ['nurse'] },
      ],
    });
    const d = evaluateConsent(found(p), RESEARCH, MID_MS);
    assert.equal(d.reason, 'PERMITTED');
    assert.equal(d.provision, 'provision.provisions[0]');
    assert.equal(reasonOf(found(p), { purpose: 'HRESCH', role: 'nurse' }), 'DENIED_BY_PROVISION');
  });

  it('a sibling whose own exception permits does not count as a deny', () => {
    const p = withProvision({
      type: 'permit',
      provisions: [{ type: 'deny', purposes: ['HRESCH'], provisions: [{ type: 'permit', roles: ['dermatologist'] }] }],
    });
    const d = evaluateConsent(found(p), RESEARCH, MID_MS);
    assert.equal(d.reason, 'PERMITTED');
    assert.equal(d.provision, 'provision.provisions[0].provisions[0]');
  });

  it('names the root when it decides, and nothing when no provision was consulted', () => {
    assert.equal(evaluateConsent(found(policy()), CARE, MID_MS).provision, 'provision');
    assert.equal(evaluateConsent(found(policy()), { purpose: 'marketing', role: 'dermatologist' }, MID_MS).provision, 'provision');
    assert.equal(evaluateConsent(found(policy({ revoked: true })), CARE, MID_MS).provision, undefined);
    assert.equal(evaluateConsent({ kind: 'unknown', policyId: 'x' }, CARE, MID_MS).provision, undefined);
  });

  it('root deny scoped to research, with a nested permit exception for researchers', () => {
    const p = withProvision({ type: 'deny', purposes: ['HRESCH'], provisions: [{ type: 'permit', roles: ['researcher'] }] });
    // Inside the deny's scope, the matching exception permits.
    assert.equal(reasonOf(found(p), { purpose: 'HRESCH', role: 'researcher' }), 'PERMITTED');
    // Inside the deny's scope, no exception matches: denied.
    assert.equal(reasonOf(found(p), RESEARCH), 'DENIED_BY_PROVISION');
    // Outside the deny's scope: exceptions apply only within their parent's scope, so nothing permits.
    assert.equal(reasonOf(found(p), { purpose: 'TREAT', role: 'researcher' }), 'DENIED_BY_PROVISION');
  });

  it('a root deny with no nested permit never permits', () => {
    const p = withProvision({ type: 'deny', purposes: ['HRESCH'] });
    assert.equal(reasonOf(found(p), CARE), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH), 'DENIED_BY_PROVISION');
  });

  it('a root deny with a period: its nested permit applies only within that period', () => {
    const p = withProvision({
      type: 'deny',
      period: { start: '2030-06-01T00:00:00.000Z' },
      provisions: [{ type: 'permit', purposes: ['TREAT'] }],
    });
    const before = Date.parse('2030-05-31T23:59:59.999Z');
    const inside = Date.parse('2030-06-01T00:00:00.000Z');
    assert.equal(reasonOf(found(p), CARE, before), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH, before), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), CARE, inside), 'PERMITTED');
    assert.equal(reasonOf(found(p), RESEARCH, inside), 'DENIED_BY_PROVISION');
  });

  it('an unconstrained root deny with a nested permit exception permits what the exception matches (deepest match wins)', () => {
    const p = withProvision({ type: 'deny', provisions: [{ type: 'permit', purposes: ['TREAT'] }] });
    assert.equal(reasonOf(found(p), CARE), 'PERMITTED');
    assert.equal(reasonOf(found(p), RESEARCH), 'DENIED_BY_PROVISION');
    assert.equal(evaluateConsent(found(p), CARE, MID_MS).policyHash, HASH);
  });

  it('a root deny > nested permit > nested deny: the deepest match wins at every level', () => {
    const p = withProvision({
      type: 'deny',
      provisions: [{ type: 'permit', purposes: ['TREAT'], provisions: [{ type: 'deny', roles: ['nurse'] }] }],
    });
    assert.equal(reasonOf(found(p), CARE), 'PERMITTED');
    assert.equal(reasonOf(found(p), { purpose: 'TREAT', role: 'nurse' }), 'DENIED_BY_PROVISION');
    assert.equal(reasonOf(found(p), RESEARCH), 'DENIED_BY_PROVISION');
  });
});

describe('evaluateConsent: the decision is invariant under any permutation of siblings (property)', () => {
  const PURPOSES = ['TREAT', 'HRESCH', 'marketing'];
  const ROLES = ['dermatologist', 'nurse', 'ml_engineer'];
  const T = [START_MS, MID_MS, END_MS];
  const times = fc.constantFrom(...T.map((t) => new Date(t).toISOString()));
  const leaf = {
    type: fc.constantFrom<'permit' | 'deny'>('permit', 'deny'),
    purposes: fc.option(fc.subarray(PURPOSES, { minLength: 1 }), { nil: undefined }),
    roles: fc.option(fc.subarray(ROLES, { minLength: 1 }), { nil: undefined }),
    period: fc.option(fc.record({ start: fc.option(times, { nil: undefined }), end: fc.option(times, { nil: undefined }) }, { requiredKeys: [] }), { nil: undefined }),
  };
  const strip = (o: Record<string, unknown>): Provision => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as Provision;
  const tree: fc.Arbitrary<Provision> = fc.letrec<{ node: Provision }>((tie) => ({
    node: fc.record({ ...leaf, provisions: fc.option(fc.array(tie('node'), { maxLength: 3 }), { nil: undefined, depthSize: 'small' }) }).map(strip),
  })).node;

  // Every sibling list shuffled by a seeded permutation, recursively.
  function shuffle(p: Provision, rnd: () => number): Provision {
    if (!p.provisions) return p;
    const children = p.provisions.map((c) => shuffle(c, rnd));
    for (let i = children.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [children[i], children[j]] = [children[j]!, children[i]!];
    }
    return { ...p, provisions: children };
  }
  function at(root: Provision, path: string): Provision {
    let p = root;
    for (const m of path.matchAll(/\[(\d+)\]/g)) p = p.provisions![Number(m[1])]!;
    return p;
  }

  it('effect and reason never depend on sibling order; the named provision exists and has the effect', () => {
    fc.assert(
      fc.property(tree, fc.constantFrom(...PURPOSES), fc.constantFrom(...ROLES), fc.constantFrom(...T), fc.integer(), (root, purpose, role, now, seed) => {
        let s = seed >>> 0;
        const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
        const req = { purpose, role };
        const a = evaluateConsent(found(withProvision(root)), req, now);
        const shuffled = shuffle(root, rnd);
        const b = evaluateConsent(found(withProvision(shuffled)), req, now);
        assert.equal(b.effect, a.effect);
        assert.equal(b.reason, a.reason);
        for (const [r, d] of [
          [root, a],
          [shuffled, b],
        ] as const) {
          assert.ok(d.provision !== undefined);
          assert.ok(PROVISION_PATH_RE.test(d.provision), d.provision);
          // A nested provision named decided with its own effect (the root may also be named when
          // a permit root does not apply, which denies).
          if (d.provision !== 'provision' || d.effect === 'permit') assert.equal(at(r, d.provision).type, d.effect);
        }
      }),
      { seed: 9, numRuns: 400 },
    );
  });
});

describe('parsePolicyInput', () => {
  const good = {
    policyId: 'pol_aaaaaaaaaaaaaaaaaaaaaaaaaa',
    subject: 'patient_pseudo_123',
    allowedPurposes: ['TREAT', 'HRESCH'],
    allowedRoles: ['dermatologist'],
    validFrom: '2030-01-01T00:00:00Z',
    validUntil: '2030-12-31T23:59:59.999Z',
  };

  it('accepts a good input, defaults revocable to true and normalizes times to UTC milliseconds', () => {
    const p = parsePolicyInput({ ...good, validFrom: '2030-01-01T02:00:00+02:00' });
    assert.equal(p.revocable, true);
    assert.equal(p.validFrom, '2030-01-01T00:00:00.000Z');
    assert.equal(p.validUntil, '2030-12-31T23:59:59.999Z');
    assert.deepEqual(p.allowedPurposes, ['TREAT', 'HRESCH']);
  });

  it('accepts validFrom equal to validUntil (a one-instant window)', () => {
    const p = parsePolicyInput({ ...good, validFrom: '2030-01-01T00:00:00Z', validUntil: '2030-01-01T00:00:00.000Z' });
    assert.equal(p.validFrom, p.validUntil);
  });

  it('accepts nested provisions', () => {
    const p = parsePolicyInput({ ...good, provisions: [{ type: 'deny', purposes: ['HRESCH'], provisions: [{ type: 'permit', roles: ['ml_engineer'] }] }] });
    assert.equal(p.provisions?.[0]?.type, 'deny');
  });

  const bad: [string, Record<string, unknown>, (path: string) => boolean][] = [
    ['a policyId with a space', { policyId: 'consent 001' }, (p) => p === 'policyId'],
    ['an empty policyId', { policyId: '' }, (p) => p === 'policyId'],
    ['a readable policyId (it could carry a name)', { policyId: 'MRN00012345-John-Smith' }, (p) => p === 'policyId'],
    ['a pol_ id with uppercase base32', { policyId: 'pol_AAAAAAAAAAAAAAAAAAAAAAAAAA' }, (p) => p === 'policyId'],
    ['a pol_ id one character short', { policyId: 'pol_aaaaaaaaaaaaaaaaaaaaaaaaa' }, (p) => p === 'policyId'],
    ['a policyId that is not a string', { policyId: 42 }, (p) => p === 'policyId'],
    ['a purpose outside the vocabulary', { allowedPurposes: ['TREAT', 'research'] }, (p) => p === 'allowedPurposes.1'],
    ['a role outside the role table', { allowedRoles: ['janitor'] }, (p) => p === 'allowedRoles.0'],
    ['a purpose outside the vocabulary in a nested provision', { provisions: [{ type: 'deny', purposes: ['marketing'] }] }, (p) => p === 'provisions.0.purposes.0'],
    ['an empty subject', { subject: '' }, (p) => p === 'subject'],
    ['empty allowedPurposes', { allowedPurposes: [] }, (p) => p === 'allowedPurposes'],
    ['empty allowedRoles', { allowedRoles: [] }, (p) => p === 'allowedRoles'],
    ['missing allowedPurposes', { allowedPurposes: undefined }, (p) => p === 'allowedPurposes'],
    ['a purpose code with a space', { allowedPurposes: ['TREAT', 'clinical care'] }, (p) => p === 'allowedPurposes.1'],
    ['a role code starting with a digit', { allowedRoles: ['1derm'] }, (p) => p === 'allowedRoles.0'],
    ['a purpose code of 65 characters', { allowedPurposes: ['a'.repeat(65)] }, (p) => p === 'allowedPurposes.0'],
    ['a bad code in a nested provision', { provisions: [{ type: 'deny', purposes: ['re search'] }] }, (p) => p === 'provisions.0.purposes.0'],
    ['a bad nested provision type', { provisions: [{ type: 'maybe' }] }, (p) => p === 'provisions.0.type'],
    ['a non-boolean revocable', { revocable: 'yes' }, (p) => p === 'revocable'],
    ['a date without a time', { validFrom: '2030-01-01' }, (p) => p === 'validFrom'],
    ['a time without an offset', { validFrom: '2030-01-01T00:00:00' }, (p) => p === 'validFrom'],
    ['a space instead of T', { validUntil: '2030-12-31 23:59:59Z' }, (p) => p === 'validUntil'],
    ['a month 13', { validUntil: '2030-13-01T00:00:00Z' }, (p) => p === 'validUntil'],
    ['a leap second', { validUntil: '2030-12-31T23:59:60Z' }, (p) => p === 'validUntil'],
    ['an epoch number', { validFrom: 1_893_456_000_000 }, (p) => p === 'validFrom'],
    ['a bad time in a nested provision period', { provisions: [{ type: 'deny', period: { start: 'tomorrow' } }] }, (p) => p === 'provisions.0.period.start'],
    // The cross-field check has no single field to point at; it is reported at the root or on validUntil.
    ['validUntil before validFrom', { validFrom: '2030-06-01T00:00:00Z', validUntil: '2030-05-31T23:59:59.999Z' }, (p) => p === '$' || p === 'validUntil'],
    ['validUntil before validFrom once offsets are applied', { validFrom: '2030-06-01T00:00:00Z', validUntil: '2030-06-01T01:00:00+02:00' }, (p) => p === '$' || p === 'validUntil'],
  ];
  for (const [name, patch, path] of bad) {
    it(`refuses ${name} (VALIDATION_FAILED with its path)`, () => {
      assertValidationIssue(() => parsePolicyInput({ ...good, ...patch }), path);
    });
  }

  it('lists every problem, each with its own path', () => {
    assert.throws(
      () => parsePolicyInput({ ...good, policyId: 'bad id', allowedPurposes: [], allowedRoles: ['nurse', 'not ok'], validFrom: 'soon' }),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.equal(err.code, 'VALIDATION_FAILED');
        const paths = new Set(err.issues.map((i) => i.path));
        for (const p of ['policyId', 'allowedPurposes', 'allowedRoles.1', 'validFrom']) assert.ok(paths.has(p), `missing ${p} in ${[...paths].join(', ')}`);
        return true;
      },
    );
  });

  it('refuses a non-object input', () => {
    for (const input of [null, undefined, 'consent', 42, []]) {
      assertValidationIssue(
        () => parsePolicyInput(input),
        () => true,
      );
    }
  });

  it('refuses calendar dates that do not exist (Feb 30, Apr 31, Feb 29 of a common year) and hour 24', () => {
    // Date.parse would roll these over (2030-02-30 to March 2): they must be refused, not moved.
    for (const t of ['2030-02-30T00:00:00Z', '2030-04-31T00:00:00Z', '2030-02-29T00:00:00Z', '2030-01-01T24:00:00Z', '2030-01-01T23:60:00Z']) {
      assertValidationIssue(
        () => parsePolicyInput({ ...good, validUntil: t }),
        (p) => p === 'validUntil',
      );
    }
  });

  it('accepts Feb 29 of a leap year and the last millisecond of a day', () => {
    assert.equal(parsePolicyInput({ ...good, validUntil: '2032-02-29T23:59:59.999Z' }).validUntil, '2032-02-29T23:59:59.999Z');
  });

  it('accepts RFC 3339 times in the years 0000-0099', () => {
    const p = parsePolicyInput({ ...good, validFrom: '0030-01-01T00:00:00Z', validUntil: '0099-12-31T23:59:59Z' });
    assert.equal(p.validFrom, '0030-01-01T00:00:00.000Z');
  });
});

describe('computeCommitment', () => {
  const salt = Buffer.alloc(COMMITMENT_SALT_BYTES, 7);
  const other = Buffer.alloc(COMMITMENT_SALT_BYTES, 8);

  it('is deterministic for the same salt and value', () => {
    assert.equal(computeCommitment(salt, 'patient_pseudo_123'), computeCommitment(Buffer.from(salt), 'patient_pseudo_123'));
  });

  it('differs with the salt, and with the value', () => {
    assert.notEqual(computeCommitment(salt, 'patient_pseudo_123'), computeCommitment(other, 'patient_pseudo_123'));
    assert.notEqual(computeCommitment(salt, 'patient_pseudo_123'), computeCommitment(salt, 'patient_pseudo_124'));
  });

  it('equals hex(SHA-256(salt || UTF-8(value)))', () => {
    for (const value of ['patient_pseudo_123', 's3://bucket/key.jpg', 'Zoë-ß-患者-😀', '']) {
      const expected = createHash('sha256').update(salt).update(Buffer.from(value, 'utf8')).digest('hex');
      const c = computeCommitment(salt, value);
      assert.equal(c, expected);
      assert.match(c, /^[0-9a-f]{64}$/);
    }
  });

  it('accepts a plain Uint8Array salt', () => {
    const u = new Uint8Array(COMMITMENT_SALT_BYTES).fill(7);
    assert.equal(computeCommitment(u, 'x'), computeCommitment(salt, 'x'));
  });

  it('is not the unsalted hash of the value', () => {
    assert.notEqual(computeCommitment(salt, 'patient_pseudo_123'), createHash('sha256').update('patient_pseudo_123').digest('hex'));
  });
});
