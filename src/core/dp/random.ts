/**
 * The randomness the differential-privacy samplers draw from: uniform integers below a bound, from
 * a source of random bytes. The core draws nothing itself: the service passes node:crypto's
 * `randomBytes` (service/governance/dp.ts), tests pass {@link seededRandomSource} so a
 * statistical test is reproducible.
 * @module
 */
import { sha256 } from '../crypto.js';

/** A source of uniformly random bytes. In production: a cryptographic RNG (node:crypto randomBytes). */
export type RandomBytes = (n: number) => Uint8Array;

/** What the samplers use: uniform integers in [0, n). */
export interface RandomSource {
  /** A uniform integer in [0, n), n ≥ 1. */
  below(n: bigint): bigint;
}

/**
 * A {@link RandomSource} over a byte source, by rejection: draw as many bits as `n - 1` has, retry
 * when the draw is ≥ n (at most half the draws are rejected). Exact: no modulo bias, no floats.
 * Bytes are read in blocks of 256 to keep the calls to the byte source few.
 */
export function randomSourceFrom(bytes: RandomBytes): RandomSource {
  let pool: Uint8Array = new Uint8Array(0);
  let at = 0;
  const take = (k: number): Uint8Array => {
    if (at + k > pool.length) {
      pool = bytes(Math.max(256, k));
      at = 0;
    }
    const out = pool.subarray(at, at + k);
    at += k;
    return out;
  };
  return {
    below(n: bigint): bigint {
      if (n < 1n) throw new RangeError('below(n) needs n >= 1');
      if (n === 1n) return 0n;
      const bits = (n - 1n).toString(2).length;
      const nBytes = Math.ceil(bits / 8);
      const topMask = (1 << (bits - (nBytes - 1) * 8)) - 1;
      for (;;) {
        const b = take(nBytes);
        let x = BigInt(b[0]! & topMask);
        for (let i = 1; i < nBytes; i++) x = (x << 8n) | BigInt(b[i]!);
        if (x < n) return x;
      }
    },
  };
}

/**
 * A deterministic byte source for tests: SHA-256 in counter mode over `seed`. Not for production
 * releases (the seed would be the noise).
 */
export function seededRandomBytes(seed: string): RandomBytes {
  const key = Buffer.from(seed, 'utf8');
  let counter = 0;
  return (n: number) => {
    const out = Buffer.alloc(n);
    for (let off = 0; off < n; off += 32) {
      const block = Buffer.alloc(key.length + 8);
      key.copy(block);
      block.writeBigUInt64BE(BigInt(counter++), key.length);
      sha256(block).copy(out, off, 0, Math.min(32, n - off));
    }
    return out;
  };
}

/** {@link randomSourceFrom} over {@link seededRandomBytes}: reproducible, for tests only. */
export function seededRandomSource(seed: string): RandomSource {
  return randomSourceFrom(seededRandomBytes(seed));
}
