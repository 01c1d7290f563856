/**
 * bench/fit.ts: the least-squares fit that bench:sim uses to extrapolate the reference's quadratic
 * growth to rows it does not run (reported as fitted).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fitPolynomial } from '../bench/fit.js';

const close = (a: number, b: number, rel = 1e-9) => assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${a} ≉ ${b}`);

describe('fitPolynomial', () => {
  it('passes through three points with a quadratic, at the scale of the reference rows', () => {
    // The reference README's totals: 1.8 s at 500 runs, 15.5 s at 2,000, 115 s at 5,000.
    const pts = [
      { x: 500, y: 1.8 },
      { x: 2000, y: 15.5 },
      { x: 5000, y: 115 },
    ];
    const f = fitPolynomial(pts, 2);
    for (const p of pts) close(f.at(p.x), p.y);
    const [c, b, a] = f.coefficients as [number, number, number];
    for (const p of pts) close(c + b * p.x + a * p.x * p.x, p.y, 1e-7);
    // a > 0: the growth is quadratic. Lagrange interpolation through the three points, in exact
    // fractions, gives 2,054.5 s at 20,000 runs (the README's "about 1,960 s" came from unrounded times).
    assert.ok(a > 0);
    close(f.at(20_000), 2054.5, 1e-9);
  });

  it('recovers a noise-free quadratic from more points than it needs', () => {
    const q = (x: number) => 4.5e-6 * x * x + 0.0011 * x + 0.3;
    const f = fitPolynomial(
      [100, 700, 2500, 9000, 20000].map((x) => ({ x, y: q(x) })),
      2,
    );
    close(f.coefficients[2]!, 4.5e-6, 1e-6);
    close(f.coefficients[1]!, 0.0011, 1e-6);
    close(f.at(100_000), q(100_000), 1e-9);
  });

  it('minimizes squared error when the points do not lie on the curve', () => {
    // y = 0, 1, 3 at x = 0, 1, 2: least-squares line y = 1.5x − 1/6.
    const f = fitPolynomial(
      [
        { x: 0, y: 0 },
        { x: 1, y: 1 },
        { x: 2, y: 3 },
      ],
      1,
    );
    close(f.coefficients[1]!, 1.5);
    close(f.coefficients[0]!, -1 / 6);
    close(f.at(4), 6 - 1 / 6);
  });

  it('refuses too few points, too few distinct x, and non-finite input', () => {
    assert.throws(
      () =>
        fitPolynomial(
          [
            { x: 1, y: 1 },
            { x: 2, y: 2 },
          ],
          2,
        ),
      RangeError,
    );
    assert.throws(
      () =>
        fitPolynomial(
          [
            { x: 1, y: 1 },
            { x: 1, y: 2 },
            { x: 2, y: 2 },
          ],
          2,
        ),
      RangeError,
    );
    assert.throws(
      () =>
        fitPolynomial(
          [
            { x: 1, y: Number.NaN },
            { x: 2, y: 2 },
          ],
          1,
        ),
      RangeError,
    );
    assert.throws(() => fitPolynomial([{ x: 1, y: 1 }], -1), RangeError);
  });
});
