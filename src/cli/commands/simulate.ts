import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { ValidationError } from '../../core/errors.js';
import { REFERENCE_SCENARIOS, runScenario, type ScenarioMetrics, type ScenarioSpec } from '../../sim/simulate.js';
import { tamperCheckDataDir } from '../../sim/offledger.js';
import { formatRate } from '../../service/tamper-check.js';
import { renderHtmlReport, type SimulationReport } from '../../sim/report.js';
import type { CommandContext } from '../context.js';
import { inCwd, printJson } from '../output.js';

export interface SimulateOptions {
  /** A custom scenario instead of the reference suite. */
  readonly custom?: ScenarioSpec;
  /** Only these reference scenarios (1-based), default all. */
  readonly only?: readonly number[];
  readonly window: number;
  readonly output?: string;
  readonly html?: string;
  readonly tamperSample: number;
  readonly tamperRate: number;
  readonly progress: boolean;
}

/**
 * `custos simulate`: the reference's scenario suite (or a custom scenario) against the real service,
 * a fresh log each, then the off-ledger batch tamper test; JSON metrics and a self-contained HTML report.
 */
export async function simulate(ctx: CommandContext, o: SimulateOptions): Promise<void> {
  const specs: (ScenarioSpec & { name: string })[] = o.custom
    ? [{ ...o.custom, name: `custom: ${o.custom.patients} patients, ${o.custom.runs} runs, revoke ${o.custom.revokeProb}, seed ${o.custom.seed}` }]
    : REFERENCE_SCENARIOS.filter((_, i) => !o.only || o.only.includes(i + 1));
  if (specs.length === 0) throw new ValidationError('VALIDATION_FAILED', 'no scenario selected');
  const showBars = o.progress && !ctx.json && ctx.io.stderr.isTTY === true;
  const bars = showBars
    ? new cliProgress.MultiBar(
        { format: '{name} [{bar}] {percentage}% | {value}/{total} runs | {eta_formatted}', stream: ctx.io.stderr, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  // The off-ledger tamper test needs receipts: the largest steady-state scenario's log is kept for it.
  let keepFor = 0;
  specs.forEach((s, i) => {
    if (!s.tamperAfter && (specs[keepFor]!.tamperAfter || s.runs > specs[keepFor]!.runs)) keepFor = i;
  });
  const kept = mkdtempSync(join(tmpdir(), 'custos-sim-kept-'));
  const results: ScenarioMetrics[] = [];
  let offLedger = null;
  try {
    for (const [i, s] of specs.entries()) {
      const bar = bars?.create(s.runs, 0, { name: s.name.padEnd(20).slice(0, 20) });
      const m = await runScenario(s, {
        window: o.window,
        ...(i === keepFor ? { dataDir: join(kept, 'log') } : {}),
        onProgress: (done) => bar?.update(done),
      });
      results.push(m);
      if (!bars && !ctx.json) {
        ctx.io.stderr.write(`${s.name}: ${m.executed} executed, ${m.blocked} blocked, ${m.post_revoke_exec} after revocation, ${m.avg_governance_ms_per_run.toFixed(3)} ms/decision\n`);
      }
    }
    bars?.stop();
    if (o.tamperSample > 0) offLedger = await tamperCheckDataDir(join(kept, 'log'), { sample: o.tamperSample, rate: o.tamperRate, seed: specs[keepFor]!.seed });
  } finally {
    bars?.stop();
    rmSync(kept, { recursive: true, force: true });
  }
  const report: SimulationReport = {
    generatedAt: new Date().toISOString(),
    machine: `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`,
    scenarios: results,
    offLedgerTamper: offLedger,
  };
  if (o.output) writeFileSync(inCwd(ctx.io, o.output), `${JSON.stringify(report, null, 2)}\n`);
  if (o.html) writeFileSync(inCwd(ctx.io, o.html), renderHtmlReport(report));
  if (ctx.json) return printJson(ctx.io, report);
  const out = (s: string) => ctx.io.stdout.write(`${s}\n`);
  out('scenario                 executed blocked unauth(policy) blocked unauth(role) blocked post-rev  events exp/act   ms/dec   p99 ms  integrity before/after');
  for (const m of results) {
    out(
      `${m.scenario.padEnd(24).slice(0, 24)} ${String(m.executed).padStart(8)} ${String(m.blocked).padStart(7)} ${String(m.attempted_unauthorized).padStart(14)} ${String(m.blocked_unauthorized).padStart(7)} ${String(m.attempted_unauthorized_by_role).padStart(12)} ${String(m.blocked_unauthorized_by_role).padStart(7)} ${String(m.post_revoke_exec).padStart(8)} ${`${m.events_expected}/${m.events_actual}`.padStart(15)} ${m.avg_governance_ms_per_run.toFixed(3).padStart(8)} ${m.p99_decision_ms.toFixed(1).padStart(8)}  ${m.ledger_integrity_ok_before ? 'ok' : 'FAIL'}/${m.ledger_integrity_ok_after ? 'ok' : 'tamper detected'}`,
    );
  }
  if (offLedger) {
    out(
      `off-ledger tamper test: ${offLedger.total_inference_events} inference events, ${offLedger.sampled} sampled, ${offLedger.baseline_ok_before} ok before, ${offLedger.tampered} tampered, ${offLedger.detected} detected, ${offLedger.missed} missed, ${offLedger.falseAlarms} false alarms (detection ${formatRate(offLedger.detectionRate)}, false alarms ${formatRate(offLedger.falseAlarmRate)})`,
    );
  }
  if (o.output) out(`metrics: ${o.output}`);
  if (o.html) out(`report: ${o.html}`);
}
