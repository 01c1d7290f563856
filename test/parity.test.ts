/**
 * Parity with the reference (issue 14), through the CLI in process: `custos selftest` (the ledger
 * design's `test` command), `custos simulate --workload` and `--ablation` (the notebook's
 * simulate_workload and run_ablation), and the tamper metrics under the reference's names, with an
 * undefined detection rate (null) when nothing was tampered.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertError, assertOk, callCli, callIn, ensureBuilt, makeTempDir, okJson, parseJson } from './helpers/cli.js';

interface Step {
  name: string;
  status: 'pass' | 'fail' | 'skipped';
  ms: number;
  detail: string;
  code?: string;
}
interface SelftestReport {
  ok: boolean;
  ms: number;
  steps: Step[];
}
interface Workload {
  executed: number;
  blocked: number;
  denied_events: number;
  ledger_integrity_ok: boolean;
  ledger_integrity_error: string | null;
  n_repro_manifests: number;
  runs: number;
  revoke_at: number;
  total_inference_events: number;
  consent_denied_events: number;
  revoked_at_index: number | null;
  executed_after_revocation: number;
  blocked_after_revocation: number;
  denials_by_reason: Record<string, number>;
  events_expected: number;
  ledger_entries: number;
}
interface Ablation {
  workload: Workload;
  offLedgerTamper: {
    total_inference_events: number;
    baseline_ok_before: number;
    sampled: number;
    tampered: number;
    detected: number;
    detectionRate: number | null;
  } | null;
  ledger: {
    ledger_entries: number;
    ledger_integrity_ok_before: boolean;
    ledger_integrity_ok_after: boolean;
    ledger_integrity_err_after: string | null;
    tampered_entries: number[];
    found_entries: number[];
    detected: number;
    missed: number;
    false_alarms: number;
    tamper_detection_rate: number | null;
  };
}

const STEPS = ['tempdir', 'init', 'append', 'consent', 'verify', 'prove', 'export', 'cleanup'];

describe('custos selftest', () => {
  before(() => ensureBuilt());

  it('passes in a temporary directory under $TMPDIR, removes it, and never touches the data directory', async () => {
    const base = makeTempDir('custos-selftest-base-');
    const data = makeTempDir('custos-selftest-data-');
    try {
      // A real log as the user's data directory: byte for byte unchanged afterwards.
      assertOk(await callIn(join(data.path, 'log'), ['init']));
      const db = join(data.path, 'log', 'custos.db');
      const hash = () => createHash('sha256').update(readFileSync(db)).digest('hex');
      const before = hash();
      const missing = join(data.path, 'nothing-here');

      const r = await callIn(missing, ['selftest'], { env: { TMPDIR: base.path, CUSTOS_DATA_DIR: join(data.path, 'log') } });
      assertOk(r);
      assert.match(r.stdout, /^selftest: PASS, 8 steps in \d+ ms \(tempdir, init, append, consent, verify, prove, export, cleanup\); temporary directory removed\n$/);
      assert.deepEqual(readdirSync(base.path), [], 'the temporary directory is removed');
      assert.equal(existsSync(missing), false, '--data-dir is not created');

      const j = okJson<SelftestReport>(await callCli(['--json', 'selftest'], { env: { TMPDIR: base.path, CUSTOS_DATA_DIR: join(data.path, 'log') } }));
      assert.equal(j.ok, true);
      assert.deepEqual(
        j.steps.map((s) => [s.name, s.status]),
        STEPS.map((n) => [n, 'pass']),
      );
      for (const s of j.steps) assert.ok(typeof s.ms === 'number' && s.ms >= 0 && s.detail.length > 0, JSON.stringify(s));
      assert.ok(j.ms >= j.steps.reduce((a, s) => a + s.ms, 0) - 1);
      assert.match(j.steps.find((s) => s.name === 'prove')!.detail, /inclusion of all 7 entries and consistency 1 → 7 verify.*a damaged proof is refused/);
      assert.match(j.steps.find((s) => s.name === 'consent')!.detail, /PERMITTED.*REVOKED.*CONSENT_DENIED/);
      assert.match(j.steps.find((s) => s.name === 'export')!.detail, /bundle of entry 4 verifies offline.*CSV export has 7 rows/);
      assert.deepEqual(readdirSync(base.path), []);
      assert.equal(hash(), before, "the user's log is untouched");
    } finally {
      base.cleanup();
      data.cleanup();
    }
  });

  it('reports a failing step: $TMPDIR that is not a directory fails at tempdir, exit 15 SELFTEST_FAILED, the rest skipped', async () => {
    const base = makeTempDir('custos-selftest-file-');
    try {
      const notADir = join(base.path, 'a-file');
      writeFileSync(notADir, 'not a directory');
      const r = await callCli(['selftest'], { env: { TMPDIR: notADir } });
      assertError(r, 15, 'SELFTEST_FAILED', { message: /at step tempdir: ENOTDIR: not a directory.*\(1 of 8 steps passed\)/ });

      const j = await callCli(['selftest', '--json'], { env: { TMPDIR: notADir } });
      assertError(j, 15, 'SELFTEST_FAILED', { stdoutAllowed: true });
      const rep = parseJson<SelftestReport>(j);
      assert.equal(rep.ok, false);
      assert.deepEqual(
        rep.steps.map((s) => s.status),
        ['fail', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped', 'pass'],
      );
      assert.equal(rep.steps[0]!.code, 'ENOTDIR');
      assert.equal(rep.steps[7]!.detail, 'nothing to remove');
      assert.deepEqual(readdirSync(base.path), ['a-file']);
    } finally {
      base.cleanup();
    }
  });

  it('a step failing after the temporary directory exists (the OS refuses a path over PATH_MAX): reported at init, and the directory is still removed', async () => {
    const root = makeTempDir('custos-selftest-long-');
    try {
      // $TMPDIR 4071 characters long: the temporary directory (+23) fits in PATH_MAX (4096 with
      // its NUL), the log directory inside it (+4) does not.
      let base = root.path;
      while (base.length < 4071 - 201) base = join(base, 'd'.repeat(200));
      base = join(base, 'e'.repeat(4071 - base.length - 1));
      assert.equal(base.length, 4071);
      mkdirSync(base, { recursive: true });
      const r = await callCli(['--json', 'selftest'], { env: { TMPDIR: base } });
      assertError(r, 15, 'SELFTEST_FAILED', { stdoutAllowed: true, message: /at step init: FILE_UNREADABLE: cannot create the data directory .*\(2 of 8 steps passed\)/ });
      const rep = parseJson<SelftestReport>(r);
      assert.deepEqual(
        rep.steps.map((s) => [s.name, s.status]),
        STEPS.map((n, i) => [n, i === 0 || n === 'cleanup' ? 'pass' : i === 1 ? 'fail' : 'skipped']),
      );
      assert.equal(rep.steps[7]!.detail, 'temporary directory removed');
      assert.deepEqual(readdirSync(base), [], 'the temporary directory is removed after the failure');
    } finally {
      root.cleanup();
    }
  });
});

describe('custos simulate --workload (the reference simulate_workload)', () => {
  before(() => ensureBuilt());

  it('one policy, revoked at step 120 of 200: every attempt from then on is refused with CONSENT_DENIED (REVOKED), every refusal on the log', async () => {
    const w = okJson<Workload>(await callCli(['--json', 'simulate', '--workload', '--seed', '3']));
    assert.equal(w.runs, 200);
    assert.equal(w.revoke_at, 120);
    assert.equal(w.executed + w.blocked, 200);
    assert.equal(w.denied_events, w.blocked);
    assert.equal(w.executed_after_revocation, 0);
    assert.equal(w.blocked_after_revocation, 80);
    assert.equal(w.denials_by_reason['REVOKED'], 80);
    // Before the revocation the guest (a role in no policy) is refused, the others are not.
    assert.equal(w.blocked - 80, w.denials_by_reason['ROLE_NOT_ALLOWED']);
    assert.ok(w.executed > 0 && (w.denials_by_reason['ROLE_NOT_ALLOWED'] ?? 0) > 0);
    // Counted on the log, not from the tally: policy, 120 attempts, revocation, 80 attempts.
    assert.equal(w.revoked_at_index, 121);
    assert.equal(w.total_inference_events, w.executed);
    assert.equal(w.n_repro_manifests, w.executed);
    assert.equal(w.consent_denied_events, w.blocked);
    assert.equal(w.ledger_entries, 202);
    assert.equal(w.events_expected, 202);
    assert.equal(w.ledger_integrity_ok, true);
    assert.equal(w.ledger_integrity_error, null);
    // Deterministic for a seed.
    const again = okJson<Workload>(await callCli(['--json', 'simulate', '--workload', '--seed', '3']));
    assert.deepEqual({ ...again, governance_time_ms: 0 }, { ...w, governance_time_ms: 0 });
  });

  it('--runs and --revoke-at: a revocation past the end never happens; the human form and --output', async () => {
    const tmp = makeTempDir('custos-workload-');
    try {
      const w = okJson<Workload>(await callCli(['--json', 'simulate', '--workload', '--runs', '30', '--revoke-at', '30', '--seed', '4']));
      assert.equal(w.revoked_at_index, null);
      assert.equal(w.blocked_after_revocation, 0);
      assert.equal(w.denials_by_reason['REVOKED'], undefined);
      assert.equal(w.ledger_entries, 31);
      const first = okJson<Workload>(await callCli(['--json', 'simulate', '--workload', '--runs', '10', '--revoke-at', '0', '--seed', '4']));
      assert.equal(first.executed, 0);
      assert.equal(first.denials_by_reason['REVOKED'], 10);

      const h = await callCli(['simulate', '--workload', '--runs', '20', '--revoke-at', '5', '--output', 'w.json'], { cwd: tmp.path });
      assertOk(h);
      assert.match(h.stdout, /^after revocation: +15 refused, 0 executed$/m);
      assert.match(h.stdout, /^ledger integrity: +ok$/m);
      assert.equal(JSON.parse(readFileSync(join(tmp.path, 'w.json'), 'utf8')).runs, 20);
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses options that do not apply', async () => {
    assertError(await callCli(['simulate', '--workload', '--tamper-rate', '0.2']), 2, 'VALIDATION_FAILED', { message: /--tamper-rate applies to --ablation/ });
    assertError(await callCli(['simulate', '--workload', '--patients', '5']), 2, 'VALIDATION_FAILED');
    assertError(await callCli(['simulate', '--ablation', '--html', 'x.html']), 2, 'VALIDATION_FAILED');
    assertError(await callCli(['simulate', '--revoke-at', '3', '--scenario', '1']), 2, 'VALIDATION_FAILED', { message: /--revoke-at applies to --workload/ });
    assertError(await callCli(['simulate', '--workload', '--revoke-at', '-1']), 2, 'VALIDATION_FAILED');
  });
});

describe('custos simulate (the scenario suite): the tamper report under the reference names', () => {
  before(() => ensureBuilt());

  it('a custom scenario: total_inference_events and baseline_ok_before; --tamper-rate keeps its 0.25 default; rate 0 gives a null detection rate', async () => {
    type Report = {
      scenarios: { executed: number }[];
      offLedgerTamper: { total_inference_events: number; baseline_ok_before: number; sampled: number; tampered: number; detected: number; detectionRate: number | null };
    };
    const args = ['--json', 'simulate', '--patients', '10', '--runs', '80', '--revoke-prob', '0', '--seed', '3', '--tamper-sample', '20', '--no-progress'];
    const r = okJson<Report>(await callCli(args));
    const t = r.offLedgerTamper;
    assert.equal(t.total_inference_events, r.scenarios[0]!.executed);
    assert.equal(t.sampled, 20);
    assert.equal(t.baseline_ok_before, 20);
    assert.equal(t.tampered, 5);
    assert.equal(t.detectionRate, 1);
    const none = okJson<Report>(await callCli([...args, '--tamper-rate', '0']));
    assert.equal(none.offLedgerTamper.tampered, 0);
    assert.equal(none.offLedgerTamper.detectionRate, null);
    const h = await callCli([...args.slice(1), '--tamper-rate', '0']);
    // (Without a terminal, the human form reports each scenario on stderr as it ends.)
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /off-ledger tamper test: \d+ inference events, 20 sampled, 20 ok before, 0 tampered, .*\(detection n\/a, false alarms 0\.0%\)/);
  });
});

describe('custos simulate --ablation (the reference run_ablation)', () => {
  before(() => ensureBuilt());

  it('simulate, verify, tamper, verify again: verification names exactly the tampered entries', async () => {
    const a = okJson<Ablation>(await callCli(['--json', 'simulate', '--ablation', '--seed', '5']));
    assert.equal(a.workload.runs, 200);
    assert.equal(a.workload.executed_after_revocation, 0);
    const l = a.ledger;
    assert.equal(l.ledger_integrity_ok_before, true);
    assert.equal(l.ledger_integrity_ok_after, false);
    // --tamper-rate defaults to the reference's 0.1: 20 of 202 entries.
    assert.equal(l.tampered_entries.length, 20);
    assert.deepEqual(l.found_entries, l.tampered_entries);
    assert.equal(l.detected, 20);
    assert.equal(l.missed, 0);
    assert.equal(l.false_alarms, 0);
    assert.equal(l.tamper_detection_rate, 1);
    assert.match(l.ledger_integrity_err_after ?? '', new RegExp(`^first bad entry ${l.tampered_entries[0]}: LEAF_HASH_MISMATCH$`));
    // The off-ledger batch test, with the reference's metric names.
    const t = a.offLedgerTamper!;
    assert.equal(t.total_inference_events, a.workload.total_inference_events);
    assert.equal(t.baseline_ok_before, t.sampled);
    assert.equal(t.tampered, Math.floor(t.sampled * 0.1));
    assert.equal(t.detected, t.tampered);
  });

  it('--tamper-rate 0: nothing tampered, verification still passes, and both detection rates are null (n/a), never 100%', async () => {
    const a = okJson<Ablation>(await callCli(['--json', 'simulate', '--ablation', '--runs', '40', '--revoke-at', '10', '--tamper-rate', '0', '--seed', '6']));
    assert.deepEqual(a.ledger.tampered_entries, []);
    assert.deepEqual(a.ledger.found_entries, []);
    assert.equal(a.ledger.ledger_integrity_ok_after, true);
    assert.equal(a.ledger.tamper_detection_rate, null);
    assert.equal(a.offLedgerTamper!.tampered, 0);
    assert.equal(a.offLedgerTamper!.detectionRate, null);

    const h = await callCli(['simulate', '--ablation', '--runs', '40', '--revoke-at', '10', '--tamper-rate', '0', '--seed', '6']);
    assertOk(h);
    assert.equal((h.stdout.match(/^detection rate: +n\/a$/gm) ?? []).length, 2, h.stdout);
    assert.match(h.stdout, /^tampered entries: +none$/m);
    assert.doesNotMatch(h.stdout, /100\.0%/);
  });

  it('the human form names the tampered entries and those found', async () => {
    const h = await callCli(['simulate', '--ablation', '--runs', '30', '--revoke-at', '10', '--tamper-rate', '0.1', '--seed', '7']);
    assertOk(h);
    const tampered = /^tampered entries: +(.+)$/m.exec(h.stdout)?.[1];
    const found = /^entries found: +(.+)$/m.exec(h.stdout)?.[1];
    assert.ok(tampered && /^\d+(, \d+)*$/.test(tampered), h.stdout);
    assert.equal(found, tampered);
    assert.match(h.stdout, /^after tampering with 3 of 32 log entries \(rate 0\.1\)$/m);
    assert.match(h.stdout, /^integrity after: +FAILED: first bad entry \d+: LEAF_HASH_MISMATCH$/m);
  });
});
