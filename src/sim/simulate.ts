/**
 * The reference notebook's scenario simulator, run against the real service: a fresh log per
 * scenario, the same scenario parameters, policy mix and actor weights, a seeded RNG and a
 * simulated clock. "Unauthorized" is computed from the policy actually in force when each attempt
 * was sequenced (an independent model, not the service's own evaluation), and also by the
 * reference's role names, and both are reported.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytesFrom, randomInt, seededRandom, weightedChoice } from '../core/random.js';
import { DEFAULT_ROLES } from '../core/vocabulary.js';
import { hasCode } from '../core/errors.js';
import { initDataDir, openLog, DB_FILE } from '../log/data-dir.js';
import { ManualClock } from '../log/clock.js';
import { verifyLog } from '../log/verify-log.js';
import { ConsentDeniedError, Governance } from '../service/governance.js';
import { verifyDocuments } from '../service/verify-documents.js';
import { SqliteLogTamperer } from '../store/sqlite/tamper.js';

/** One scenario: the reference's parameters. */
export interface ScenarioSpec {
  readonly patients: number;
  readonly runs: number;
  readonly revokeProb: number;
  readonly tamperAfter: boolean;
  readonly seed: number;
}

/** The reference's nine scenarios, in its order. */
export const REFERENCE_SCENARIOS: readonly (ScenarioSpec & { readonly name: string })[] = [
  { name: 'small steady state', patients: 50, runs: 500, revokeProb: 0.0, tamperAfter: false, seed: 1 },
  { name: 'medium steady state', patients: 200, runs: 2000, revokeProb: 0.02, tamperAfter: false, seed: 2 },
  { name: 'large steady state', patients: 500, runs: 5000, revokeProb: 0.05, tamperAfter: false, seed: 3 },
  { name: 'consent stress', patients: 200, runs: 2000, revokeProb: 0.2, tamperAfter: false, seed: 5 },
  { name: 'heavy revocation', patients: 500, runs: 5000, revokeProb: 0.3, tamperAfter: false, seed: 6 },
  { name: 'scale', patients: 1000, runs: 20000, revokeProb: 0.05, tamperAfter: false, seed: 7 },
  { name: 'tamper 1', patients: 200, runs: 2000, revokeProb: 0.02, tamperAfter: true, seed: 4 },
  { name: 'tamper 2', patients: 200, runs: 2000, revokeProb: 0.02, tamperAfter: true, seed: 8 },
  { name: 'tamper 3', patients: 500, runs: 5000, revokeProb: 0.05, tamperAfter: true, seed: 9 },
];

/** The reference's policy mix. */
const POLICY_KINDS = ['clinical_only', 'clinical_research', 'expires_fast', 'non_revocable'] as const;
const POLICY_WEIGHTS = [0.45, 0.35, 0.15, 0.05];
/** The reference's actor roles and purposes, with their weights. */
const ROLES = ['dermatologist', 'ml_engineer', 'guest', 'nurse', 'admin'] as const;
const ROLE_WEIGHTS = [0.55, 0.18, 0.12, 0.1, 0.05];
const PURPOSES = ['TREAT', 'HRESCH'] as const;
const PURPOSE_WEIGHTS = [0.75, 0.25];
/** Roles the reference assumed no policy allows. */
const REFERENCE_UNAUTHORIZED_ROLES = new Set(['guest', 'nurse']);

/** Simulated start time and the simulated time each run takes. */
export const SIM_T0_MS = Date.UTC(2026, 0, 1);
export const SIM_MS_PER_RUN = 100;

const PIPELINE = {
  pipelineName: 'derm-preprocess',
  pipelineVersion: '1.2.0',
  containerImage: 'registry.example/derm:1.2.0',
  codeCommit: 'a1b2c3d',
  parameters: { resize: 224 },
  dependencies: { torch: '2.4.0' },
};
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: '0cdab167e8a42f210da84c0963f80928624db9cce89a7c026aa081806a3ee427', framework: 'pytorch' };

/** Metrics of one scenario: the reference's names, then Custos's additions. */
export interface ScenarioMetrics {
  readonly scenario: string;
  readonly params: ScenarioSpec;
  // -- the reference's metrics
  readonly executed: number;
  readonly blocked: number;
  /** Attempts the policy in force at their sequencing did not allow. */
  readonly attempted_unauthorized: number;
  readonly blocked_unauthorized: number;
  readonly post_revoke_exec: number;
  readonly events_expected: number;
  readonly events_actual: number;
  readonly governance_time_ms: number;
  readonly ledger_integrity_ok_before: boolean;
  readonly ledger_integrity_err_before: string | null;
  readonly ledger_integrity_ok_after: boolean;
  readonly ledger_integrity_err_after: string | null;
  readonly unauthorized_block_rate: number;
  readonly avg_governance_ms_per_run: number;
  readonly ledger_entries: number;
  // -- additions
  /** The reference's measure: attempts by guest or nurse, whatever the policy says. */
  readonly attempted_unauthorized_by_role: number;
  readonly blocked_unauthorized_by_role: number;
  readonly unauthorized_block_rate_by_role: number;
  /** Executions the policy in force did not allow (must be 0). */
  readonly executed_unauthorized: number;
  /** Refusals of attempts the policy in force allowed (must be 0). */
  readonly blocked_authorized: number;
  /** Executions sequenced after a revocation of their policy (must be 0). */
  readonly post_revoke_exec_by_log_order: number;
  readonly consent_events: number;
  readonly revocations: number;
  readonly denials_by_reason: Readonly<Record<string, number>>;
  readonly p50_decision_ms: number;
  readonly p99_decision_ms: number;
  readonly throughput_decisions_per_s: number;
  /** Average governance time per decision by log size (for the cost curve). */
  readonly cost_curve: readonly { readonly log_size: number; readonly ms_per_decision: number }[];
}

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Attempts issued concurrently (they share group commits). Default 256. */
  readonly window?: number;
  /** Keep the scenario's data directory here instead of a temporary one that is deleted. */
  readonly dataDir?: string;
  readonly onProgress?: (done: number, total: number) => void;
}

interface Shadow {
  readonly purposes: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
  readonly validFromMs: number;
  readonly validUntilMs: number | undefined;
  readonly revocable: boolean;
  /** Log index of its revocation, once sequenced. */
  revokedAt: number | undefined;
}

interface Attempt {
  readonly policyId: string;
  readonly role: string;
  readonly purpose: string;
  readonly revokedWhenIssued: boolean;
  index: number;
  timeMs: number;
  executed: boolean;
  reason: string;
  latencyMs: number;
}

function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs one scenario on a fresh log and returns its metrics.
 * Attempts are issued in windows (so they share group commits); an attempt on a policy with a
 * revocation in flight waits for that revocation's acknowledgement, so a revocation requested
 * before an attempt is always in force for it, as in the reference's sequential loop.
 */
export async function runScenario(spec: ScenarioSpec & { name?: string }, options: RunOptions = {}): Promise<ScenarioMetrics> {
  const window = Math.max(1, options.window ?? 256);
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'custos-sim-'));
  const rnd = seededRandom(spec.seed);
  const saltRnd = seededRandom(spec.seed ^ 0x5eed);
  const clock = new ManualClock(SIM_T0_MS);
  try {
    await initDataDir(dir, { origin: `sim.custos.local/seed-${spec.seed}` });
    const { dir: dd, log } = await openLog(dir, { clock });
    let metrics: ScenarioMetrics;
    try {
      // The reference's 'guest' is a role without permissions: in the role table, in no policy.
      const g = await Governance.open({ log, clock, randomBytes: (n) => randomBytesFrom(saltRnd, n), roles: { ...DEFAULT_ROLES, guest: [] } });
      const officer = { id: 'admin_sim', role: 'privacy_officer' };
      const t0 = clock.now();
      const shadow = new Map<string, Shadow>();
      const policyIds: string[] = [];
      // Policies, created in windows too.
      let consentEvents = 0;
      for (let i = 0; i < spec.patients; i += window) {
        const batch: Promise<unknown>[] = [];
        for (let k = i; k < Math.min(spec.patients, i + window); k++) {
          const kind = weightedChoice(rnd, POLICY_KINDS, POLICY_WEIGHTS);
          const purposes = kind === 'clinical_only' || kind === 'non_revocable' ? ['TREAT'] : ['TREAT', 'HRESCH'];
          const validUntilMs = kind === 'expires_fast' ? t0 + randomInt(rnd, 10_000, 60_000) : undefined;
          const s: Shadow = {
            purposes: new Set(purposes),
            roles: new Set(['dermatologist', 'ml_engineer']),
            validFromMs: t0 - 1000,
            validUntilMs,
            revocable: kind !== 'non_revocable',
            revokedAt: undefined,
          };
          // Custos generates the (opaque) policy id; the scenario uses the one it returns.
          batch.push(
            g
              .createConsent(
                {
                  subject: `patient_${String(k).padStart(4, '0')}`,
                  allowedPurposes: purposes,
                  allowedRoles: ['dermatologist', 'ml_engineer'],
                  validFrom: new Date(t0 - 1000).toISOString(),
                  ...(validUntilMs === undefined ? {} : { validUntil: new Date(validUntilMs).toISOString() }),
                  revocable: s.revocable,
                },
                officer,
              )
              .then((r) => {
                policyIds[k] = r.policy.policyId;
                shadow.set(r.policy.policyId, s);
              }),
          );
        }
        await Promise.all(batch);
        consentEvents += batch.length;
      }

      // Attempts are tallied window by window and dropped (a run of 10^6 keeps no per-attempt
      // record but its latency): a revocation sequenced in a later window has a later index than
      // every attempt of this one, so the tally at the window's end is the tally at the run's end.
      let attempts: Attempt[] = [];
      const latencies = new Float64Array(spec.runs);
      let latencyCount = 0;
      const tally = newTally();
      const revokedAcked = new Set<string>();
      const revocationInFlight = new Map<string, Promise<void>>();
      let revocations = 0;
      const curve: { size: number; ms: number; n: number }[] = [];
      const started = performance.now();
      for (let w = 0; w < spec.runs; w += window) {
        const end = Math.min(spec.runs, w + window);
        const sizeAtStart = log.size;
        const wStart = performance.now();
        const ops: Promise<void>[] = [];
        for (let i = w; i < end; i++) {
          clock.advance(SIM_MS_PER_RUN);
          const policyId = policyIds[Math.floor(rnd() * policyIds.length)]!;
          const role = weightedChoice(rnd, ROLES, ROLE_WEIGHTS);
          const purpose = weightedChoice(rnd, PURPOSES, PURPOSE_WEIGHTS);
          const actorId = `${role}_${randomInt(rnd, 1, 5000)}`;
          if (rnd() < spec.revokeProb) {
            const prior = revocationInFlight.get(policyId) ?? Promise.resolve();
            const p = prior.then(async () => {
              try {
                const r = await g.revokeConsent(policyId, officer);
                shadow.get(policyId)!.revokedAt = r.event.index;
                revocations++;
                consentEvents++;
                revokedAcked.add(policyId);
              } catch (err) {
                // Already revoked: still revoked. Non-revocable: the revocation was refused and
                // the policy stays in force (the reference ignored both).
                if (hasCode(err, 'CONSENT_ALREADY_REVOKED')) revokedAcked.add(policyId);
                else if (!hasCode(err, 'CONSENT_NOT_REVOCABLE')) throw err;
              }
            });
            revocationInFlight.set(policyId, p);
            ops.push(p);
          }
          const attempt: Attempt = { policyId, role, purpose, revokedWhenIssued: false, index: -1, timeMs: 0, executed: false, reason: '', latencyMs: 0 };
          attempts.push(attempt);
          const inputHash = randomBytesFrom(rnd, 32).toString('hex');
          const outHash = randomBytesFrom(rnd, 32).toString('hex');
          const gate = revocationInFlight.get(policyId) ?? Promise.resolve();
          ops.push(
            gate.then(async () => {
              (attempt as { revokedWhenIssued: boolean }).revokedWhenIssued = revokedAcked.has(policyId);
              const t = performance.now();
              try {
                const r = await g.recordInference({
                  actor: { id: actorId, role },
                  purpose,
                  policyId,
                  input: { uri: `s3://bucket/${policyId}/visit${i}/img.jpg`, digest: inputHash },
                  outputs: [{ name: 'report_json', uri: `s3://bucket/${policyId}/visit${i}/report.json`, digest: outHash }],
                  pipeline: PIPELINE,
                  model: MODEL,
                });
                attempt.executed = true;
                attempt.reason = 'PERMITTED';
                attempt.index = r.event.index;
                attempt.timeMs = r.event.checkpoint.timeMs;
              } catch (err) {
                if (!(err instanceof ConsentDeniedError)) throw err;
                attempt.reason = err.decision.reason;
                attempt.index = err.event.index;
                attempt.timeMs = err.event.checkpoint.timeMs;
              }
              attempt.latencyMs = performance.now() - t;
            }),
          );
        }
        await Promise.all(ops);
        revocationInFlight.clear();
        curve.push({ size: sizeAtStart, ms: performance.now() - wStart, n: end - w });
        for (const a of attempts) {
          tallyAttempt(tally, a, shadow.get(a.policyId)!);
          latencies[latencyCount++] = a.latencyMs;
        }
        attempts = [];
        options.onProgress?.(end, spec.runs);
      }
      const governanceMs = performance.now() - started;

      const { executed, blocked, unauthorized, blockedUnauthorized, byRole, blockedByRole, executedUnauthorized, blockedAuthorized, postRevoke, postRevokeByLog, reasons } = tally;
      const lat = latencies.subarray(0, latencyCount).sort();
      const integrity = async (): Promise<{ ok: boolean; err: string | null }> => {
        const r = await verifyLog({ store: dd.store, verifiers: [dd.verifier], origin: dd.origin });
        if (!r.ok) {
          const f = r.findings.find((x) => x.index === r.firstBadIndex) ?? r.findings[0]!;
          return { ok: false, err: `first bad entry ${r.firstBadIndex}: ${f.kind}` };
        }
        const d = await verifyDocuments({ store: dd.store });
        return d.ok ? { ok: true, err: null } : { ok: false, err: `${d.findings[0]!.kind} ${d.findings[0]!.ref}` };
      };
      const before = await integrity();
      let after = before;
      if (spec.tamperAfter) {
        // The reference's tamper: one random entry, a "tampered" flag or a changed purpose.
        const size = log.size;
        await log.close();
        const tamperer = new SqliteLogTamperer(join(dir, DB_FILE));
        const victim = Math.floor(rnd() * size);
        const flag = rnd() < 0.2;
        tamperer.editEntry(victim, (bytes) => {
          const e = JSON.parse(bytes.toString('utf8')) as { payload: Record<string, unknown> };
          if (flag) e.payload['tampered'] = true;
          else e.payload['purpose'] = 'tampered_purpose';
          return Buffer.from(JSON.stringify(e));
        });
        tamperer.close();
        after = await integrity();
      }
      const buckets = new Map<number, { ms: number; n: number }>();
      for (const c of curve) {
        const decade = c.size <= 0 ? 0 : 10 ** Math.floor(Math.log10(c.size));
        const b = buckets.get(decade) ?? { ms: 0, n: 0 };
        b.ms += c.ms;
        b.n += c.n;
        buckets.set(decade, b);
      }
      const entries = await dd.store.treeSize();
      metrics = {
        scenario: spec.name ?? `patients ${spec.patients}, runs ${spec.runs}, revoke ${spec.revokeProb}, seed ${spec.seed}`,
        params: { patients: spec.patients, runs: spec.runs, revokeProb: spec.revokeProb, tamperAfter: spec.tamperAfter, seed: spec.seed },
        executed,
        blocked,
        attempted_unauthorized: unauthorized,
        blocked_unauthorized: blockedUnauthorized,
        post_revoke_exec: postRevoke,
        events_expected: spec.runs + consentEvents,
        events_actual: entries,
        governance_time_ms: governanceMs,
        ledger_integrity_ok_before: before.ok,
        ledger_integrity_err_before: before.err,
        ledger_integrity_ok_after: after.ok,
        ledger_integrity_err_after: after.err,
        unauthorized_block_rate: unauthorized === 0 ? 1 : blockedUnauthorized / unauthorized,
        avg_governance_ms_per_run: governanceMs / Math.max(1, spec.runs),
        ledger_entries: entries,
        attempted_unauthorized_by_role: byRole,
        blocked_unauthorized_by_role: blockedByRole,
        unauthorized_block_rate_by_role: byRole === 0 ? 1 : blockedByRole / byRole,
        executed_unauthorized: executedUnauthorized,
        blocked_authorized: blockedAuthorized,
        post_revoke_exec_by_log_order: postRevokeByLog,
        consent_events: consentEvents,
        revocations,
        denials_by_reason: reasons,
        p50_decision_ms: percentile(lat, 50),
        p99_decision_ms: percentile(lat, 99),
        throughput_decisions_per_s: spec.runs / (governanceMs / 1000),
        cost_curve: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([size, b]) => ({ log_size: size, ms_per_decision: b.ms / b.n })),
      };
    } finally {
      await log.close();
      await dd.store.close();
    }
    return metrics;
  } finally {
    if (options.dataDir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** Counts over the attempts, from the independent model. */
interface Tally {
  executed: number;
  blocked: number;
  unauthorized: number;
  blockedUnauthorized: number;
  byRole: number;
  blockedByRole: number;
  executedUnauthorized: number;
  blockedAuthorized: number;
  postRevoke: number;
  postRevokeByLog: number;
  readonly reasons: Record<string, number>;
}

function newTally(): Tally {
  return {
    executed: 0,
    blocked: 0,
    unauthorized: 0,
    blockedUnauthorized: 0,
    byRole: 0,
    blockedByRole: 0,
    executedUnauthorized: 0,
    blockedAuthorized: 0,
    postRevoke: 0,
    postRevokeByLog: 0,
    reasons: {},
  };
}

// Ground truth from the independent model, at the attempt's sequencing position and time.
function tallyAttempt(t: Tally, a: Attempt, s: Shadow): void {
  const revoked = s.revokedAt !== undefined && s.revokedAt < a.index;
  const allowed = !revoked && a.timeMs >= s.validFromMs && (s.validUntilMs === undefined || a.timeMs <= s.validUntilMs) && s.purposes.has(a.purpose) && s.roles.has(a.role);
  if (a.executed) t.executed++;
  else {
    t.blocked++;
    t.reasons[a.reason] = (t.reasons[a.reason] ?? 0) + 1;
  }
  if (!allowed) {
    t.unauthorized++;
    if (!a.executed) t.blockedUnauthorized++;
    else t.executedUnauthorized++;
  } else if (!a.executed) t.blockedAuthorized++;
  if (REFERENCE_UNAUTHORIZED_ROLES.has(a.role)) {
    t.byRole++;
    if (!a.executed) t.blockedByRole++;
  }
  if (a.executed && a.revokedWhenIssued) t.postRevoke++;
  if (a.executed && revoked) t.postRevokeByLog++;
}

/** The timing fields of a report: excluded when comparing runs for determinism. */
export const TIMING_FIELDS = ['governance_time_ms', 'avg_governance_ms_per_run', 'p50_decision_ms', 'p99_decision_ms', 'throughput_decisions_per_s', 'cost_curve'] as const;
