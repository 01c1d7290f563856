/**
 * The decision workload of `npm run bench:sim`, alone, for a profiler (not part of npm test):
 * 40,000 governed inferences over 2,000 patients (revocations 5 %), 1,024 in flight, on a fresh
 * log, full verification at the end. Prints decisions/s, p99 and RSS.
 *
 *   npx tsc -p tsconfig.bench.json
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof-sim build/bench/sim.profile.js
 *   node build/bench/top-frames.js /tmp/prof-sim/*.cpuprofile 25
 *
 * Peak RSS: run it under `/usr/bin/time -v`; the progress lines on stderr say when the decisions ended.
 * Environment: SIM_RUNS (default 40,000), SIM_PATIENTS (default 2,000).
 */
import { runScenario } from '../src/sim/simulate.js';

const runs = Number(process.env['SIM_RUNS'] ?? 40_000);
const patients = Number(process.env['SIM_PATIENTS'] ?? 2_000);
const t = performance.now();
// Progress on stderr every 10 % with the RSS then, so that a run shows which phase holds the peak:
// the decisions, or the verification of the log and its documents after the last decision.
const step = Math.max(1, Math.floor(runs / 10));
let next = step;
const m = await runScenario(
  { patients, runs, revokeProb: 0.05, tamperAfter: false, seed: 42 },
  {
    window: 1024,
    onProgress: (done) => {
      if (done < next && done !== runs) return;
      next = (Math.floor(done / step) + 1) * step;
      console.error(`${done} decisions, ${((performance.now() - t) / 1000).toFixed(1)} s, RSS ${Math.round(process.memoryUsage().rss / 1e6)} MB`);
    },
  },
);
const s = (performance.now() - t) / 1000;
console.log(
  JSON.stringify({
    seconds: +s.toFixed(2),
    decisionsPerS: m.throughput_decisions_per_s,
    msPerDecision: m.avg_governance_ms_per_run,
    p99Ms: m.p99_decision_ms,
    rssMB: Math.round(process.memoryUsage().rss / 1e6),
  }),
);
