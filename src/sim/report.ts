/**
 * A self-contained HTML report of a simulation: inline SVG charts and tables, no scripts, no
 * network; a reviewer opens it in any browser.
 * @module
 */
import { formatRate, type TamperCheckReport } from '../service/tamper-check.js';
import type { ScenarioMetrics } from './simulate.js';

/** Everything `custos simulate` reports. */
export interface SimulationReport {
  readonly generatedAt: string;
  readonly machine: string;
  readonly scenarios: readonly ScenarioMetrics[];
  readonly offLedgerTamper: TamperCheckReport | null;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Governance time per decision (y) against log size (x, log scale), one line per scenario. */
function costChart(scenarios: readonly ScenarioMetrics[]): string {
  const W = 720;
  const H = 320;
  const m = { l: 60, r: 180, t: 20, b: 40 };
  const pts = scenarios.flatMap((s) => s.cost_curve.filter((c) => c.log_size > 0));
  if (pts.length === 0) return '<p>No data.</p>';
  const xs = pts.map((p) => Math.log10(p.log_size));
  const x0 = Math.floor(Math.min(...xs));
  const x1 = Math.max(x0 + 1, Math.ceil(Math.max(...xs)));
  const yMax = Math.max(...pts.map((p) => p.ms_per_decision)) * 1.15 || 1;
  const px = (v: number) => m.l + ((Math.log10(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (v: number) => H - m.b - (v / yMax) * (H - m.t - m.b);
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="governance time per decision against log size">`;
  for (let e = x0; e <= x1; e++) {
    const x = px(10 ** e);
    svg += `<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#eee"/><text x="${x}" y="${H - m.b + 16}" font-size="11" text-anchor="middle">10^${e}</text>`;
  }
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg += `<line x1="${m.l}" y1="${py(v)}" x2="${W - m.r}" y2="${py(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${py(v) + 4}" font-size="11" text-anchor="end">${v.toFixed(3)}</text>`;
  }
  svg += `<text x="${(W - m.r + m.l) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">log entries</text>`;
  svg += `<text x="14" y="${H / 2}" font-size="12" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">ms per decision</text>`;
  scenarios.forEach((s, i) => {
    const c = s.cost_curve.filter((p) => p.log_size > 0);
    const color = COLORS[i % COLORS.length]!;
    if (c.length > 0) {
      svg += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${c.map((p) => `${px(p.log_size).toFixed(1)},${py(p.ms_per_decision).toFixed(1)}`).join(' ')}"/>`;
      for (const p of c) svg += `<circle cx="${px(p.log_size).toFixed(1)}" cy="${py(p.ms_per_decision).toFixed(1)}" r="3" fill="${color}"/>`;
    }
    svg += `<rect x="${W - m.r + 12}" y="${m.t + i * 18}" width="10" height="10" fill="${color}"/><text x="${W - m.r + 28}" y="${m.t + i * 18 + 9}" font-size="11">${esc(s.scenario)}</text>`;
  });
  return `${svg}</svg>`;
}

/** Grouped horizontal bars: one group per scenario. */
function barChart(rows: readonly { label: string; values: readonly { name: string; value: number; color: string }[] }[], max: number, fmt: (v: number) => string): string {
  const W = 720;
  const rowH = 14;
  const groupH = rows[0] ? rows[0].values.length * rowH + 10 : 0;
  const H = rows.length * groupH + 30;
  const left = 200;
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">`;
  rows.forEach((r, i) => {
    const y0 = 10 + i * groupH;
    svg += `<text x="${left - 8}" y="${y0 + (r.values.length * rowH) / 2 + 4}" font-size="11" text-anchor="end">${esc(r.label)}</text>`;
    r.values.forEach((v, j) => {
      const w = max > 0 ? (v.value / max) * (W - left - 250) : 0;
      svg += `<rect x="${left}" y="${y0 + j * rowH}" width="${w.toFixed(1)}" height="${rowH - 3}" fill="${v.color}"><title>${esc(v.name)}: ${esc(fmt(v.value))}</title></rect>`;
      svg += `<text x="${left + w + 4}" y="${y0 + j * rowH + 10}" font-size="10">${esc(v.name)} ${esc(fmt(v.value))}</text>`;
    });
  });
  return `${svg}</svg>`;
}

/** Renders the report as one HTML document. */
export function renderHtmlReport(r: SimulationReport): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  const blockRows = r.scenarios.map((s) => ({
    label: s.scenario,
    values: [
      { name: 'unauthorized blocked, by policy in force', value: s.unauthorized_block_rate, color: '#2ca02c' },
      { name: 'unauthorized blocked, by role name', value: s.unauthorized_block_rate_by_role, color: '#98df8a' },
      { name: 'all attempts blocked', value: s.blocked / Math.max(1, s.executed + s.blocked), color: '#ff9896' },
    ],
  }));
  const tamperScenarios = r.scenarios.filter((s) => s.params.tamperAfter);
  const tamperRows = [
    ...tamperScenarios.map((s) => ({
      label: s.scenario,
      values: [
        { name: 'integrity before', value: s.ledger_integrity_ok_before ? 1 : 0, color: '#2ca02c' },
        { name: 'tamper detected after', value: s.ledger_integrity_ok_after ? 0 : 1, color: '#1f77b4' },
      ],
    })),
    ...(r.offLedgerTamper
      ? [
          {
            label: 'off-ledger receipts',
            values: [
              // An undefined rate (nothing tampered, or nothing left untouched) has no bar: it is n/a, not 0% or 100%.
              ...(r.offLedgerTamper.detectionRate === null ? [] : [{ name: 'detection rate', value: r.offLedgerTamper.detectionRate, color: '#1f77b4' }]),
              ...(r.offLedgerTamper.falseAlarmRate === null ? [] : [{ name: 'false-alarm rate', value: r.offLedgerTamper.falseAlarmRate, color: '#d62728' }]),
            ],
          },
        ]
      : []),
  ];
  const cols: [string, (s: ScenarioMetrics) => string][] = [
    ['scenario', (s) => s.scenario],
    ['patients', (s) => String(s.params.patients)],
    ['runs', (s) => String(s.params.runs)],
    ['revoke p', (s) => String(s.params.revokeProb)],
    ['executed', (s) => String(s.executed)],
    ['blocked', (s) => String(s.blocked)],
    ['unauthorized (policy)', (s) => `${s.attempted_unauthorized} / blocked ${s.blocked_unauthorized}`],
    ['unauthorized (role name)', (s) => `${s.attempted_unauthorized_by_role} / blocked ${s.blocked_unauthorized_by_role}`],
    ['post-revoke exec', (s) => String(s.post_revoke_exec)],
    ['events expected / actual', (s) => `${s.events_expected} / ${s.events_actual}`],
    ['ms per decision', (s) => s.avg_governance_ms_per_run.toFixed(3)],
    ['p50 / p99 ms', (s) => `${s.p50_decision_ms.toFixed(1)} / ${s.p99_decision_ms.toFixed(1)}`],
    ['decisions/s', (s) => Math.round(s.throughput_decisions_per_s).toLocaleString('en-US')],
    ['integrity before / after', (s) => `${s.ledger_integrity_ok_before ? 'ok' : 'FAIL'} / ${s.ledger_integrity_ok_after ? 'ok' : esc(s.ledger_integrity_err_after ?? 'FAIL')}`],
  ];
  const table = `<table><thead><tr>${cols.map(([h]) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${r.scenarios
    .map((s) => `<tr>${cols.map(([, f]) => `<td>${esc(f(s))}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  const t = r.offLedgerTamper;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Custos simulation report</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left}th{background:#f5f5f5}
.ok{color:#2a7a2a}.bad{color:#b00}</style></head><body>
<h1>Custos simulation report</h1>
<p>Generated ${esc(r.generatedAt)} on ${esc(r.machine)}. The reference notebook's scenarios, run against the real Custos service
(durable group commit, signed checkpoints), with a seeded RNG and a simulated clock. "Unauthorized" is computed from the policy
in force when each attempt was sequenced; the reference's measure (roles guest and nurse) is shown beside it.</p>
<h2>Governance time per decision against log size</h2>${costChart(r.scenarios)}
<h2>Block rates</h2>${barChart(blockRows, 1, pct)}
<h2>Tamper detection</h2>${tamperRows.length > 0 ? barChart(tamperRows, 1, pct) : '<p>No tamper scenario was run.</p>'}
${t ? `<p>Off-ledger batch test: ${t.total_inference_events} inference events, ${t.sampled} receipts sampled (${t.baseline_ok_before} verified before tampering), ${t.tampered} tampered, <span class="${t.missed === 0 ? 'ok' : 'bad'}">${t.detected} detected, ${t.missed} missed</span>, <span class="${t.falseAlarms === 0 ? 'ok' : 'bad'}">${t.falseAlarms} false alarms</span>; detection rate ${esc(formatRate(t.detectionRate))}, false-alarm rate ${esc(formatRate(t.falseAlarmRate))} (seed ${t.seed}).</p>` : ''}
<h2>Metrics</h2>${table}
</body></html>
`;
}
