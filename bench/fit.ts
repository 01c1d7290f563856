/**
 * Least-squares polynomial fit, for extrapolating the reference's quadratic growth in
 * bench/sim.bench.ts (its every append re-reads the whole ledger, so a scenario's total time is
 * about a·n² + b·n + c in its number of runs n). Pure: no I/O.
 */

/** A fitted polynomial: coefficients from the constant term up (c[0] + c[1]·x + c[2]·x² ...). */
export interface PolyFit {
  readonly coefficients: readonly number[];
  /** The fitted value at x. */
  readonly at: (x: number) => number;
}

/**
 * Fits a polynomial of the given degree to the points by least squares. With exactly degree + 1
 * points of distinct x, the fit passes through every point. The x values are scaled to [−1, 1]
 * internally, so large x (runs in the tens of thousands, squared) does not lose precision.
 * Throws on fewer than degree + 1 points, non-finite input, or too few distinct x.
 */
export function fitPolynomial(points: readonly { readonly x: number; readonly y: number }[], degree: number): PolyFit {
  if (!Number.isInteger(degree) || degree < 0) throw new RangeError(`degree must be a non-negative integer, got ${degree}`);
  const m = degree + 1;
  if (points.length < m) throw new RangeError(`a degree-${degree} fit needs at least ${m} points, got ${points.length}`);
  for (const p of points) if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) throw new RangeError('points must be finite');
  if (new Set(points.map((p) => p.x)).size < m) throw new RangeError(`a degree-${degree} fit needs at least ${m} distinct x values`);
  const xs = points.map((p) => p.x);
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const mid = (lo + hi) / 2;
  const half = (hi - lo) / 2 || 1;
  const u = (x: number) => (x - mid) / half;
  // Normal equations A·k = r in the scaled variable, A[i][j] = Σ u^(i+j), r[i] = Σ y·u^i.
  const a: number[][] = Array.from({ length: m }, () => new Array<number>(m + 1).fill(0));
  for (const p of points) {
    const t = u(p.x);
    const pow: number[] = [1];
    for (let i = 1; i < 2 * m; i++) pow.push(pow[i - 1]! * t);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) a[i]![j]! += pow[i + j]!;
      a[i]![m]! += p.y * pow[i]!;
    }
  }
  const k = solve(a);
  // Expand Σ k_i·((x − mid)/half)^i into coefficients of x.
  const coefficients = new Array<number>(m).fill(0);
  for (let i = 0; i < m; i++) {
    // ((x − mid)/half)^i = Σ_j C(i, j) x^j (−mid)^(i−j) / half^i
    for (let j = 0; j <= i; j++) coefficients[j]! += (k[i]! * binomial(i, j) * (-mid) ** (i - j)) / half ** i;
  }
  const at = (x: number) => {
    const t = u(x);
    let y = 0;
    for (let i = m - 1; i >= 0; i--) y = y * t + k[i]!;
    return y;
  };
  return { coefficients, at };
}

/** Gaussian elimination with partial pivoting on an augmented m × (m+1) matrix. */
function solve(a: number[][]): number[] {
  const m = a.length;
  for (let col = 0; col < m; col++) {
    let pivot = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    if (Math.abs(a[pivot]![col]!) < 1e-12) throw new RangeError('the fit is singular (too few distinct x values)');
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    for (let r = 0; r < m; r++) {
      if (r === col) continue;
      const f = a[r]![col]! / a[col]![col]!;
      for (let c = col; c <= m; c++) a[r]![c]! -= f * a[col]![c]!;
    }
  }
  return a.map((row, i) => row[m]! / row[i]!);
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}
