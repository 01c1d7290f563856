/**
 * The reference notebook's `simulate_workload` and `run_ablation`, against the real service.
 *
 * The workload: one consent policy (the reference's `consent_001`: subject `patient_sim`, purposes
 * clinical care and research, roles dermatologist and ml_engineer), then `runs` inference attempts by
 * a uniformly drawn role (dermatologist, ml_engineer, guest) for a uniformly drawn purpose; at step
 * `revokeAt` the policy is revoked before that step's attempt, so every attempt from then on is
 * refused (CONSENT_DENIED, reason REVOKED) and the refusal is on the log.
 *
 * The ablation: the workload, verification (must pass), the reference's off-ledger batch tamper test
 * on a copy of the log, then tampering with a fraction of the log's entries in place (the reference's
 * `tamper_ledger_file` edit: a `"tampered": true` flag or a changed purpose) and verification again,
 * which must name exactly the entries that were edited.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '../core/errors.js';
import { peekEntry } from '../core/entry.js';
import { GOVERNANCE_EVENT } from '../core/events.js';
import { randomBytesFrom, randomInt, seededRandom } from '../core/random.js';
import { DEFAULT_ROLES } from '../core/vocabulary.js';
import { ManualClock } from '../log/clock.js';
import { DB_FILE, initDataDir, openDataDir, openLog, type DataDir } from '../log/data-dir.js';
import { verifyLog } from '../log/verify-log.js';
import { ConsentDeniedError, Governance } from '../service/governance.js';
import { rateOrNull, type TamperCheckReport } from '../service/tamper-check.js';
import { verifyDocuments } from '../service/verify-documents.js';
import { SqliteLogTamperer } from '../store/sqlite/tamper.js';
import { tamperCheckDataDir } from './offledger.js';
import { SIM_MS_PER_RUN, SIM_T0_MS } from './simulate.js';

/** Parameters of {@link runWorkload}: the reference's `n_runs` and `revoke_at`, and a seed. */
export interface WorkloadSpec {
  readonly runs: number;
  /** The step (0-based) at which the policy is revoked, before that step's attempt; at or past `runs`: never. */
  readonly revokeAt: number;
  readonly seed: number;
}

/** The reference's defaults: `simulate_workload(overlay, n_runs=200, tamper_rate=0.1, revoke_at=120)`. */
export const REFERENCE_WORKLOAD = Object.freeze({ runs: 200, revokeAt: 120, tamperRate: 0.1 });

/** The reference's roles and purposes (clinical_care and research as HL7 v3 PurposeOfUse codes), drawn uniformly. */
const ROLES = ['dermatologist', 'ml_engineer', 'guest'] as const;
const PURPOSES = ['TREAT', 'HRESCH'] as const;

const PIPELINE = {
  pipelineName: 'simulated_pipeline',
  pipelineVersion: '0.1',
  containerImage: 'registry.example/simulated:0.1',
  codeCommit: 'sim',
  parameters: {},
  dependencies: {},
};
// The reference's DEFAULT_MODEL: simulated_model 0.1 with a weights hash of 64 zeros.
const MODEL = { modelName: 'simulated_model', modelVersion: '0.1', weightsHash: '0'.repeat(64), framework: 'pytorch', extra: { note: 'simulation' } };

/** What {@link runWorkload} reports: the reference's names first, then Custos's additions. */
export interface WorkloadMetrics {
  // -- the reference's `simulate_workload` result
  readonly executed: number;
  readonly blocked: number;
  readonly denied_events: number;
  readonly ledger_integrity_ok: boolean;
  readonly ledger_integrity_error: string | null;
  readonly n_repro_manifests: number;
  // -- additions
  readonly runs: number;
  readonly revoke_at: number;
  readonly seed: number;
  /** INFERENCE_EXECUTED entries counted on the log (not from the tally): the reference's `total_inference_events`. */
  readonly total_inference_events: number;
  /** CONSENT_DENIED entries counted on the log. */
  readonly consent_denied_events: number;
  /** Log index of the revocation, null when the workload ends before `revoke_at`. */
  readonly revoked_at_index: number | null;
  /** Attempts from step `revoke_at` on that executed anyway (must be 0). */
  readonly executed_after_revocation: number;
  /** Attempts from step `revoke_at` on that were refused (must be all of them). */
  readonly blocked_after_revocation: number;
  readonly denials_by_reason: Readonly<Record<string, number>>;
  /** Attempts + the policy's creation + its revocation (if any). */
  readonly events_expected: number;
  readonly ledger_entries: number;
  readonly governance_time_ms: number;
}

/** Options of {@link runWorkload}. */
export interface WorkloadOptions {
  /** Keep the log here instead of in a temporary directory that is deleted. */
  readonly dataDir?: string;
}

/** Runs the reference's workload on a fresh log and returns its metrics. */
export async function runWorkload(spec: WorkloadSpec, options: WorkloadOptions = {}): Promise<WorkloadMetrics> {
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'custos-workload-'));
  try {
    await initDataDir(dir, { origin: `sim.custos.local/workload-${spec.seed}` });
    const rnd = seededRandom(spec.seed);
    const saltRnd = seededRandom(spec.seed ^ 0x5eed);
    const clock = new ManualClock(SIM_T0_MS);
    const { dir: dd, log } = await openLog(dir, { clock });
    try {
      // The reference's 'guest' is a role without permissions: in the role table, in no policy.
      const g = await Governance.open({ log, clock, randomBytes: (n) => randomBytesFrom(saltRnd, n), roles: { ...DEFAULT_ROLES, guest: [] } });
      const admin = { id: 'admin', role: 'privacy_officer' };
      const created = await g.createConsent(
        {
          subject: 'patient_sim',
          externalRef: 'consent_001',
          allowedPurposes: [...PURPOSES],
          allowedRoles: ['dermatologist', 'ml_engineer'],
          validFrom: new Date(SIM_T0_MS - 1000).toISOString(),
          revocable: true,
        },
        admin,
      );
      const policyId = created.policy.policyId;
      let executed = 0;
      let blocked = 0;
      let receipts = 0;
      let executedAfter = 0;
      let blockedAfter = 0;
      let revokedAt: number | null = null;
      const reasons: Record<string, number> = {};
      const started = performance.now();
      for (let i = 0; i < spec.runs; i++) {
        clock.advance(SIM_MS_PER_RUN);
        if (i === spec.revokeAt) {
          try {
            revokedAt = (await g.revokeConsent(policyId, admin)).event.index;
          } catch (err) {
            // As the reference (which ignores any error here): the policy stays as it is.
            if (!hasCode(err, 'CONSENT_ALREADY_REVOKED') && !hasCode(err, 'CONSENT_NOT_REVOCABLE')) throw err;
          }
        }
        const role = ROLES[randomInt(rnd, 0, ROLES.length - 1)]!;
        const purpose = PURPOSES[randomInt(rnd, 0, PURPOSES.length - 1)]!;
        const after = i >= spec.revokeAt;
        try {
          await g.recordInference({
            actor: { id: `user_${i}`, role },
            purpose,
            policyId,
            // The reference's simulated hashes: f"{i:064x}" and f"{(i+1):064x}".
            input: { uri: `s3://bucket/patient/visit${i}/img.jpg`, digest: i.toString(16).padStart(64, '0') },
            outputs: [{ name: 'report_json', uri: `s3://bucket/patient/visit${i}/report.json`, digest: (i + 1).toString(16).padStart(64, '0') }],
            pipeline: PIPELINE,
            model: MODEL,
          });
          executed++;
          receipts++;
          if (after) executedAfter++;
        } catch (err) {
          if (!(err instanceof ConsentDeniedError)) throw err;
          blocked++;
          if (after) blockedAfter++;
          reasons[err.decision.reason] = (reasons[err.decision.reason] ?? 0) + 1;
        }
      }
      const governanceMs = performance.now() - started;
      const integrity = await checkIntegrity(dd);
      const counts = await countEvents(dd);
      return {
        executed,
        blocked,
        denied_events: blocked,
        ledger_integrity_ok: integrity.ok,
        ledger_integrity_error: integrity.err,
        n_repro_manifests: receipts,
        runs: spec.runs,
        revoke_at: spec.revokeAt,
        seed: spec.seed,
        total_inference_events: counts.inferences,
        consent_denied_events: counts.denials,
        revoked_at_index: revokedAt,
        executed_after_revocation: executedAfter,
        blocked_after_revocation: blockedAfter,
        denials_by_reason: reasons,
        events_expected: spec.runs + 1 + (revokedAt === null ? 0 : 1),
        ledger_entries: counts.entries,
        governance_time_ms: governanceMs,
      };
    } finally {
      await log.close();
      await dd.store.close();
    }
  } finally {
    if (options.dataDir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** Verification of the log and of its off-ledger store, as the reference's `(ok, err)`. */
async function checkIntegrity(dd: DataDir, maxFindings?: number): Promise<{ ok: boolean; err: string | null; leafMismatches: number[] }> {
  const r = await verifyLog({ store: dd.store, verifiers: [dd.verifier], origin: dd.origin, ...(maxFindings === undefined ? {} : { maxFindings }) });
  const leafMismatches = [...new Set(r.findings.filter((f) => f.kind === 'LEAF_HASH_MISMATCH').map((f) => f.index))].sort((a, b) => a - b);
  if (!r.ok) {
    const f = r.findings.find((x) => x.index === r.firstBadIndex) ?? r.findings[0]!;
    return { ok: false, err: `first bad entry ${r.firstBadIndex}: ${f.kind}`, leafMismatches };
  }
  const d = await verifyDocuments({ store: dd.store });
  return d.ok ? { ok: true, err: null, leafMismatches } : { ok: false, err: `${d.findings[0]!.kind} ${d.findings[0]!.ref}`, leafMismatches };
}

async function countEvents(dd: DataDir): Promise<{ entries: number; inferences: number; denials: number }> {
  const size = await dd.store.treeSize();
  let inferences = 0;
  let denials = 0;
  for await (const page of dd.store.entryPages(0, size)) {
    for (const e of page) {
      const t = peekEntry(e.bytes).type;
      if (t === GOVERNANCE_EVENT.inferenceExecuted) inferences++;
      else if (t === GOVERNANCE_EVENT.consentDenied) denials++;
    }
  }
  return { entries: size, inferences, denials };
}

/** Parameters of {@link runAblation}: the workload's, and the fraction of entries (and receipts) to tamper with. */
export interface AblationSpec extends WorkloadSpec {
  /** Fraction of the log's entries edited in place (at least one when above 0), and of the sampled receipts in the off-ledger test. */
  readonly tamperRate: number;
  /** Receipts sampled by the off-ledger test (the reference's `sample_size`, 200). */
  readonly tamperSample: number;
}

/** The log part of the ablation: what was edited and what verification found. */
export interface LedgerTamperReport {
  readonly ledger_entries: number;
  readonly ledger_integrity_ok_before: boolean;
  readonly ledger_integrity_err_before: string | null;
  readonly ledger_integrity_ok_after: boolean;
  readonly ledger_integrity_err_after: string | null;
  /** Indices of the entries edited, ascending. */
  readonly tampered_entries: readonly number[];
  /** Indices of the entries verification reported (LEAF_HASH_MISMATCH), ascending. */
  readonly found_entries: readonly number[];
  readonly detected: number;
  readonly missed: number;
  readonly false_alarms: number;
  /** detected / tampered; null when nothing was tampered (undefined, never 100%). */
  readonly tamper_detection_rate: number | null;
}

/** What {@link runAblation} reports. */
export interface AblationReport {
  readonly params: AblationSpec;
  /** The workload's metrics (the reference's "Ablation results (no tampering)"). */
  readonly workload: WorkloadMetrics;
  /** The reference's batch test of the off-ledger receipts, on a copy of the log. */
  readonly offLedgerTamper: TamperCheckReport | null;
  /** The reference's "After tampering", with the entries named. */
  readonly ledger: LedgerTamperReport;
}

/** Runs the reference's ablation on a fresh temporary log (deleted afterwards). */
export async function runAblation(spec: AblationSpec): Promise<AblationReport> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-ablation-'));
  try {
    const logDir = join(dir, 'log');
    const workload = await runWorkload(spec, { dataDir: logDir });
    const offLedgerTamper = spec.tamperSample > 0 && workload.n_repro_manifests > 0 ? await tamperCheckDataDir(logDir, { sample: spec.tamperSample, rate: spec.tamperRate, seed: spec.seed }) : null;
    // The log in place: verify, edit entries as tamper_ledger_file does, verify again.
    const before = await withDir(logDir, (dd) => checkIntegrity(dd));
    const size = workload.ledger_entries;
    const rnd = seededRandom(spec.seed ^ 0x7a3e);
    const n = spec.tamperRate <= 0 ? 0 : Math.min(size, Math.max(1, Math.floor(size * spec.tamperRate)));
    const indices = Array.from({ length: size }, (_, i) => i);
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(rnd() * (size - i));
      [indices[i], indices[j]] = [indices[j]!, indices[i]!];
    }
    const tampered = indices.slice(0, n).sort((a, b) => a - b);
    if (tampered.length > 0) {
      const tamperer = new SqliteLogTamperer(join(logDir, DB_FILE));
      try {
        for (const idx of tampered) {
          const flag = rnd() < 0.2;
          tamperer.editEntry(idx, (bytes) => {
            const e = JSON.parse(bytes.toString('utf8')) as { payload: Record<string, unknown> };
            if (flag) e.payload['tampered'] = true;
            else e.payload['purpose'] = 'tampered_purpose';
            return Buffer.from(JSON.stringify(e));
          });
        }
      } finally {
        tamperer.close();
      }
    }
    const after = await withDir(logDir, (dd) => checkIntegrity(dd, size + 16));
    const found = after.leafMismatches;
    const tamperedSet = new Set(tampered);
    const detected = found.filter((i) => tamperedSet.has(i)).length;
    return {
      params: spec,
      workload,
      offLedgerTamper,
      ledger: {
        ledger_entries: size,
        ledger_integrity_ok_before: before.ok,
        ledger_integrity_err_before: before.err,
        ledger_integrity_ok_after: after.ok,
        ledger_integrity_err_after: after.err,
        tampered_entries: tampered,
        found_entries: found,
        detected,
        missed: tampered.length - detected,
        false_alarms: found.length - detected,
        tamper_detection_rate: rateOrNull(detected, tampered.length),
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function withDir<T>(dataDir: string, fn: (dd: DataDir) => Promise<T>): Promise<T> {
  const dd = await openDataDir(dataDir, { readonly: true });
  try {
    return await fn(dd);
  } finally {
    await dd.store.close();
  }
}
