/**
 * `custos simulate --workload` and `custos simulate --ablation`: the reference notebook's
 * `simulate_workload` and `run_ablation` (src/sim/workload.ts), printed.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { ValidationError } from '../../core/errors.js';
import { formatRate } from '../../service/tamper-check.js';
import { runAblation, runWorkload, type WorkloadMetrics } from '../../sim/workload.js';
import type { CommandContext } from '../context.js';
import { inCwd, printFields, printJson } from '../output.js';

/** Options of {@link simulateWorkload}. */
export interface WorkloadCommandOptions {
  readonly ablation: boolean;
  readonly runs: number;
  readonly revokeAt: number;
  readonly seed: number;
  /** Ablation only. */
  readonly tamperRate: number;
  readonly tamperSample: number;
  readonly output?: string;
}

function workloadFields(m: WorkloadMetrics): Record<string, string> {
  return {
    runs: `${m.runs} (policy revoked before step ${m.revoke_at}${m.revoked_at_index === null ? ': never reached' : `, entry ${m.revoked_at_index}`})`,
    executed: String(m.executed),
    blocked: `${m.blocked} (${Object.entries(m.denials_by_reason)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
    'after revocation': `${m.blocked_after_revocation} refused, ${m.executed_after_revocation} executed`,
    'inference events': `${m.total_inference_events} INFERENCE_EXECUTED, ${m.consent_denied_events} CONSENT_DENIED on the log`,
    'receipts': String(m.n_repro_manifests),
    'log entries': `${m.ledger_entries} (expected ${m.events_expected})`,
    'ledger integrity': m.ledger_integrity_ok ? 'ok' : `FAILED: ${m.ledger_integrity_error}`,
  };
}

/**
 * Runs the workload (or the ablation) on a fresh temporary log and prints its report.
 * @throws {ValidationError} VALIDATION_FAILED when `--output` cannot be written
 */
export async function simulateWorkload(ctx: CommandContext, o: WorkloadCommandOptions): Promise<void> {
  const spec = { runs: o.runs, revokeAt: o.revokeAt, seed: o.seed };
  const report = o.ablation ? await runAblation({ ...spec, tamperRate: o.tamperRate, tamperSample: o.tamperSample }) : await runWorkload(spec);
  if (o.output !== undefined) {
    try {
      writeFileSync(inCwd(ctx.io, o.output), `${JSON.stringify(report, null, 2)}\n`);
    } catch (err) {
      throw new ValidationError('FILE_UNREADABLE', `cannot write ${o.output}`, { cause: err });
    }
  }
  if (ctx.json) return printJson(ctx.io, report);
  const out = (s: string) => ctx.io.stdout.write(`${s}\n`);
  if (!('ledger' in report)) {
    out('workload (the reference simulate_workload)');
    printFields(ctx.io, workloadFields(report));
  } else {
    out('ablation (the reference run_ablation): results with no tampering');
    printFields(ctx.io, workloadFields(report.workload));
    const t = report.offLedgerTamper;
    if (t) {
      out('');
      out('off-ledger receipts (the reference batch_offledger_tamper_test, on a copy)');
      printFields(ctx.io, {
        'inference events': String(t.total_inference_events),
        sampled: `${t.sampled}, ${t.baseline_ok_before} ok before tampering`,
        tampered: String(t.tampered),
        detected: `${t.detected}, ${t.missed} missed, ${t.falseAlarms} false alarms`,
        'detection rate': formatRate(t.detectionRate),
        'false-alarm rate': formatRate(t.falseAlarmRate),
      });
    }
    const l = report.ledger;
    const list = (xs: readonly number[]) => (xs.length === 0 ? 'none' : xs.join(', '));
    out('');
    out(`after tampering with ${l.tampered_entries.length} of ${l.ledger_entries} log entries (rate ${o.tamperRate})`);
    printFields(ctx.io, {
      'integrity before': l.ledger_integrity_ok_before ? 'ok' : `FAILED: ${l.ledger_integrity_err_before}`,
      'integrity after': l.ledger_integrity_ok_after ? 'ok' : `FAILED: ${l.ledger_integrity_err_after}`,
      'tampered entries': list(l.tampered_entries),
      'entries found': list(l.found_entries),
      detected: `${l.detected}, ${l.missed} missed, ${l.false_alarms} false alarms`,
      'detection rate': formatRate(l.tamper_detection_rate),
    });
  }
  if (o.output !== undefined) out(`metrics: ${o.output}`);
}
