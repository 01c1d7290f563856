/**
 * The reference (the user's notebook code, ../shared/seed_py/governance_overlay.py, standard-library
 * Python 3) run one scenario row at a time, for bench/sim.bench.ts. Each row is a fresh `python3`
 * process with a fresh SEED_OUT directory, running the driver below (passed with -c), under a
 * timeout; the driver prints one JSON line with the reference's own metrics and timings.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** One scenario row: the reference's parameters. */
export interface Row {
  readonly runs: number;
  readonly patients: number;
  readonly revokeProb: number;
  readonly seed: number;
}

/** The reference's own scenario rows (its notebook, and ../shared/seed_py/README.md). */
export const REFERENCE_ROWS: readonly Row[] = [
  { runs: 500, patients: 50, revokeProb: 0.0, seed: 1 },
  { runs: 2_000, patients: 200, revokeProb: 0.02, seed: 2 },
  { runs: 5_000, patients: 500, revokeProb: 0.05, seed: 3 },
  { runs: 20_000, patients: 1_000, revokeProb: 0.05, seed: 7 },
];

/** What the driver reports for one row. */
export interface ReferenceResult {
  /** Wall time of the run_scenario call (policies, runs, entry count, integrity check), seconds. */
  readonly total_s: number;
  /** The reference's own measure: the sum of its record_inference times, ms. */
  readonly governance_time_ms: number;
  readonly avg_governance_ms_per_run: number;
  /** Latency of one record_inference call (the reference runs them one at a time), ms. */
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly executed: number;
  readonly blocked: number;
  readonly attempted_unauthorized: number;
  readonly blocked_unauthorized: number;
  readonly post_revoke_exec: number;
  readonly ledger_entries: number;
  readonly ledger_integrity_ok: boolean;
  /** Peak RSS of the Python process, bytes. */
  readonly max_rss_bytes: number;
  readonly python: string;
}

/**
 * The driver. argv: seed_py directory, patients, runs, revoke probability, seed. SEED_OUT is set by
 * the caller (before the import, as the reference's README requires). It wraps the overlay's
 * record_inference to time each call (two perf_counter reads, against milliseconds per call), and
 * otherwise calls run_scenario exactly as the README shows.
 */
export const DRIVER = `
import json, os, resource, sys, time
seed_dir, patients, runs, revoke, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, seed_dir)
import governance_overlay as g
out = os.environ["SEED_OUT"]
os.makedirs(os.path.join(out, "ledger"), exist_ok=True)
ledger = g.LocalLedger(os.path.join(out, "ledger", "s.jsonl"))
overlay = g.GovernanceOverlay(ledger)
lat = []
inner = overlay.record_inference
def timed(*a, **k):
    t = time.perf_counter()
    try:
        return inner(*a, **k)
    finally:
        lat.append((time.perf_counter() - t) * 1000)
overlay.record_inference = timed
t0 = time.perf_counter()
res = g.run_scenario(overlay, n_patients=patients, n_runs=runs, revoke_prob=revoke, seed=seed)
total = time.perf_counter() - t0
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else 0.0
keys = ["governance_time_ms", "avg_governance_ms_per_run", "executed", "blocked", "attempted_unauthorized", "blocked_unauthorized", "post_revoke_exec", "ledger_entries"]
r = {k: res[k] for k in keys}
r.update(total_s=total, p50_ms=pct(50), p99_ms=pct(99), ledger_integrity_ok=bool(res["ledger_integrity_ok_before"]),
         max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, python=sys.version.split()[0])
print("CUSTOS_REFERENCE " + json.dumps(r), flush=True)
`;

/** Where the reference is (../shared/seed_py from the repository root), or why it cannot run. */
export function locateReference(root: string = process.cwd()): { dir: string } | { skip: string } {
  const dir = resolve(root, '..', 'shared', 'seed_py');
  if (!existsSync(join(dir, 'governance_overlay.py'))) return { skip: `the reference is absent (${join(dir, 'governance_overlay.py')} not found)` };
  const v = spawnSync('python3', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (v.error !== undefined || v.status !== 0) return { skip: `python3 is not available (${v.error?.message ?? `exit ${v.status}`})` };
  return { dir };
}

/** Runs one row of the reference in a fresh python3 process; throws on failure or timeout. */
export function runReferenceRow(dir: string, row: Row, timeoutMs: number): ReferenceResult {
  const out = mkdtempSync(join(tmpdir(), 'custos-ref-'));
  try {
    const p = spawnSync('python3', ['-c', DRIVER, dir, String(row.patients), String(row.runs), String(row.revokeProb), String(row.seed)], {
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      env: { ...process.env, SEED_OUT: out, PYTHONDONTWRITEBYTECODE: '1' },
      maxBuffer: 64 * 2 ** 20,
    });
    if (p.error !== undefined) {
      const timedOut = (p.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
      throw new Error(timedOut ? `the reference's ${row.runs}-run row passed its ${Math.round(timeoutMs / 1000)} s timeout` : `python3 failed: ${p.error.message}`);
    }
    const line = p.stdout.split('\n').find((l) => l.startsWith('CUSTOS_REFERENCE '));
    if (p.status !== 0 || line === undefined) throw new Error(`the reference's ${row.runs}-run row exited ${p.status ?? p.signal}: ${p.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    return JSON.parse(line.slice('CUSTOS_REFERENCE '.length)) as ReferenceResult;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
