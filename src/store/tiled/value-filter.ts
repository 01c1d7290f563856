/**
 * A scalable Bloom filter over strings: "certainly never added" or "maybe added". The store keeps
 * one over the (kind, value) pairs of the commitments table, so that looking up a value that was
 * never committed (every new URI of every decision) costs no read. A false positive costs the
 * read it saves otherwise; there are no false negatives, so an answer "absent" is exact for what
 * was added.
 *
 * Scalable (Almeida et al., "Scalable Bloom Filters", 2007): when the newest filter holds its
 * capacity, a new one of twice the capacity is added, so nothing is ever rebuilt; a lookup checks
 * every filter (O(log n) of them). Each filter has a false-positive rate of about 0.1% at
 * capacity (14.4 bits and 10 probes per value).
 * @module
 */

const BITS_PER_VALUE = 14.4;
const PROBES = 10;
const FIRST_CAPACITY = 1 << 16;

// Two independent 32-bit string hashes (FNV-1a and a multiplicative one), combined by double
// hashing (Kirsch and Mitzenmacher) into the probe positions. Written to H1 and H2 (no allocation).
let H1 = 0;
let H2 = 0;
function hashes(s: string): void {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // Odd step: every probe lands on a different bit of a power-of-two table.
  H1 = a >>> 0;
  H2 = (b | 1) >>> 0;
}

class Bloom {
  readonly bits: Uint32Array;
  readonly mask: number;
  readonly capacity: number;
  count = 0;

  constructor(capacity: number) {
    // A power of two of bits, at least capacity * BITS_PER_VALUE.
    let size = 32;
    while (size < capacity * BITS_PER_VALUE) size *= 2;
    this.bits = new Uint32Array(size / 32);
    this.mask = size - 1;
    this.capacity = capacity;
  }

  add(h1: number, h2: number): void {
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.count++;
  }

  has(h1: number, h2: number): boolean {
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** A set of strings that answers "certainly absent" or "maybe present", growing without rebuilds. */
export class ValueFilter {
  readonly #filters: Bloom[] = [new Bloom(FIRST_CAPACITY)];

  add(value: string): void {
    let last = this.#filters[this.#filters.length - 1]!;
    if (last.count >= last.capacity) {
      last = new Bloom(last.capacity * 2);
      this.#filters.push(last);
    }
    hashes(value);
    last.add(H1, H2);
  }

  /** False: `value` was certainly never added. True: it may have been. */
  mayHave(value: string): boolean {
    hashes(value);
    for (const f of this.#filters) if (f.has(H1, H2)) return true;
    return false;
  }

  /** Bytes held by the filter's bit arrays. */
  get bytes(): number {
    let n = 0;
    for (const f of this.#filters) n += f.bits.byteLength;
    return n;
  }
}

/** The filter key of a commitment's (kind, value). */
export function valueKey(kind: string, value: string): string {
  return `${kind}\u0000${value}`;
}
