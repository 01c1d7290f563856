/**
 * C2SP tlog-tiles paths (https://c2sp.org/tlog-tiles): `tile/<L>/<N>[.p/<W>]` and
 * `tile/entries/<N>[.p/<W>]`, where N is written in groups of three digits, each but the last
 * prefixed with "x" (1234067 is x001/x234/067).
 * @module
 */
import { TILE_WIDTH } from '../core/merkle/tiles.js';

/** Formats a tile index as tlog-tiles path elements. */
export function formatTileIndex(n: number): string {
  const s = String(n);
  const padded = s.padStart(Math.ceil(s.length / 3) * 3, '0');
  const groups = padded.match(/.{3}/g)!;
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** A parsed tile path, or undefined if it is not one. */
export interface TilePath {
  readonly level: number | 'entries';
  readonly index: number;
  /** Partial width (1..255), or undefined for a full tile. */
  readonly width: number | undefined;
}

/** Parses the part of a tile URL after `tile/`. Attacker-controlled: strict. */
export function parseTilePath(path: string): TilePath | undefined {
  const m = /^(entries|[0-9]|[1-9][0-9])\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([0-9]{1,3}))?$/.exec(path);
  if (!m) return undefined;
  const digits = m[2]!.replace(/x|\//g, '');
  if (digits.length > 15) return undefined;
  // Canonical form only: no leading "x000" groups.
  if (m[2]!.startsWith('x000')) return undefined;
  const index = Number(digits);
  const width = m[3] === undefined ? undefined : Number(m[3]);
  if (width !== undefined && (width < 1 || width >= TILE_WIDTH || m[3] !== String(width))) return undefined;
  return { level: m[1] === 'entries' ? 'entries' : Number(m[1]), index, width };
}
