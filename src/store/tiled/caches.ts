/**
 * Caches of immutable stored hashes. A complete tile never changes, and a node's hash never
 * changes once written (it may only move from the node tail into a tile), so neither cache needs
 * invalidation: only a bound.
 * @module
 */

/** A bounded map that drops its oldest key (insertion order) when full; `lru` refreshes a key on a hit. */
export class BoundedCache<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;
  readonly #lru: boolean;

  constructor(max: number, options: { lru?: boolean } = {}) {
    this.#max = max;
    this.#lru = options.lru ?? false;
  }

  get(key: K): V | undefined {
    const hit = this.#map.get(key);
    if (hit !== undefined && this.#lru) {
      // Refresh the LRU position.
      this.#map.delete(key);
      this.#map.set(key, hit);
    }
    return hit;
  }

  set(key: K, value: V): void {
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }
}

/**
 * Documents read from the store, kept while no other connection has written to it (see
 * TiledStore.getDocument): policy versions are read by every decision. Each one cached also keeps
 * its parsed policy alive (PolicyHeads), several KiB in all: 8,192 of them cost about 45 MB of RSS
 * at 10^5 decisions over 10,000 policies; with 2,048 the RSS is that of no cache (272 against 285 MB)
 * at the same speed.
 */
export const DOCUMENT_CACHE_SIZE = 2048;

/** Complete fat tiles cached (LRU): 256 x 16,320 bytes, about 4 MiB. */
export const TILE_CACHE_SIZE = 256;
/** Tail nodes cached by seq (FIFO): 16,384 x 32 bytes. */
export const NODE_CACHE_SIZE = 16_384;
