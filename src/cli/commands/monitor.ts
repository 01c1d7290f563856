/**
 * `custos monitor URL --key VKEY --state FILE`: watches a Custos log from outside, for cron, using
 * only its public C2SP tlog-tiles endpoints. Each run:
 * 1. fetches `/checkpoint` and verifies its signature with the pinned key (and the origin, which is
 *    the key's name), then the witness quorum when witnesses are given;
 * 2. recomputes the checkpoint's root from the hash tiles (a server whose tiles disagree with its
 *    own checkpoint is LOG_TILES_INVALID);
 * 3. compares with the state recorded by the last run: a smaller tree is LOG_ROLLBACK; another root
 *    at the same size, or a consistency proof (built from the tiles) that does not verify, is
 *    LOG_FORK; the same size for longer than `--max-age` is LOG_STALE;
 * 4. with `--token`, fetches the entry bundles of the new range, recomputes each leaf hash and
 *    checks that the new entries, appended to the previous tree, give the signed root;
 * 5. records the new state atomically (temporary file, then rename; mode 0600).
 * A first run with no state file trusts what it sees (trust on first use) and says so.
 * @module
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CustosError, ValidationError, VerificationError } from '../../core/errors.js';
import { EMPTY_ROOT, bytesEqual, hashLeaf, toHex } from '../../core/hash.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { parseVerifierKey } from '../../core/note.js';
import { verifyConsistency } from '../../core/merkle/consistency.js';
import { Frontier } from '../../core/merkle/tree.js';
import { nodeSeq } from '../../core/merkle/node-id.js';
import { TileNodeSource, tilePath, tileWidth } from '../../core/merkle/tile-proof.js';
import { decodeEntryBundle, TILE_WIDTH } from '../../core/merkle/tiles.js';
import { checkWitnessQuorum, parseCosignerVerifierKey, requireWitnessQuorum, type WitnessQuorumResult } from '../../core/cosignature.js';
import type { CommandContext } from '../context.js';
import { inCwd, printFields, printJson } from '../output.js';
import { TlogClient } from '../tlog-client.js';
import { readKeyArg } from '../keys.js';

/** The state file's format tag. */
export const MONITOR_STATE_FORMAT = 'custos-monitor-state/1';

/** What a monitor records between runs (a JSON file, mode 0600). */
export interface MonitorState {
  readonly format: typeof MONITOR_STATE_FORMAT;
  readonly url: string;
  readonly origin: string;
  readonly treeSize: number;
  /** Hex. */
  readonly rootHash: string;
  /** The signed checkpoint note (with any cosignatures), as served. */
  readonly checkpoint: string;
  /** When this tree size was first seen (RFC 3339). */
  readonly sizeSeenAt: string;
  /** When the log was last checked (RFC 3339). */
  readonly checkedAt: string;
}

export interface MonitorOptions {
  readonly url: string;
  readonly key: string;
  readonly state: string;
  readonly witnesses: readonly string[];
  readonly quorum?: number;
  readonly token?: string;
  /** Fetch entry bundles and recompute leaves (implied by `token`; without one, the server must publish entries). */
  readonly entries?: boolean;
  /** The longest the log may stay at one size, in ms (0: never stale). */
  readonly maxAgeMs: number;
  readonly timeoutMs: number;
}

/** Parses a duration: `90s`, `30m`, `24h`, `7d`, or `0` (off). */
export function parseDuration(s: string, name: string): number {
  const m = /^(0|[1-9][0-9]{0,8})(s|m|h|d)?$/.exec(s);
  if (!m || (m[2] === undefined && m[1] !== '0')) {
    throw new ValidationError('VALIDATION_FAILED', `--${name} must be a duration such as 90s, 30m, 24h or 7d (0: off)`, { issues: [{ path: name, message: 'not a duration' }] });
  }
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
  return Number(m[1]) * unit;
}

function stateInvalid(path: string, why: string): never {
  throw new ValidationError('FILE_UNREADABLE', `the monitor state ${path} is not a state file this command wrote (${why}); move it away to start over (trust on first use)`);
}

/** Reads a state file, or undefined when there is none. */
export function readMonitorState(path: string): MonitorState | undefined {
  if (!existsSync(path)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    stateInvalid(path, 'not JSON');
  }
  const s = v as Partial<MonitorState>;
  if (typeof s !== 'object' || s === null || s.format !== MONITOR_STATE_FORMAT) stateInvalid(path, 'unknown format');
  if (!Number.isSafeInteger(s.treeSize) || (s.treeSize as number) < 0) stateInvalid(path, 'tree size');
  if (typeof s.rootHash !== 'string' || !/^[0-9a-f]{64}$/.test(s.rootHash)) stateInvalid(path, 'root hash');
  for (const k of ['url', 'origin', 'checkpoint', 'sizeSeenAt', 'checkedAt'] as const) if (typeof s[k] !== 'string') stateInvalid(path, k);
  if (!Number.isFinite(Date.parse(s.sizeSeenAt!))) stateInvalid(path, 'sizeSeenAt');
  return s as MonitorState;
}

/** Writes the state atomically: a temporary file beside it (mode 0600), fsync, then rename. */
export function writeMonitorState(path: string, state: MonitorState): void {
  const tmp = join(dirname(path), `.${basename(path)}.${toHex(randomBytes(6))}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o600);
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new ValidationError('FILE_UNREADABLE', `cannot write the monitor state ${path}`, { cause: err });
  }
}

const short = (hex: string): string => `${hex.slice(0, 16)}…`;

/** Runs one monitor check. */
export async function monitor(ctx: CommandContext, o: MonitorOptions): Promise<void> {
  const statePath = inCwd(ctx.io, o.state);
  const now = new Date();
  const report: Record<string, unknown> = { ok: false, url: o.url, state: o.state };
  try {
    await check(ctx, o, statePath, now, report);
  } catch (err) {
    if (ctx.json) {
      const e = err instanceof CustosError ? err : undefined;
      printJson(ctx.io, { ...report, ok: false, error: { code: e?.code ?? 'INTERNAL', message: (err as Error).message, ...(e?.details ? { details: e.details } : {}) } });
    }
    throw err;
  }
}

async function check(ctx: CommandContext, o: MonitorOptions, statePath: string, now: Date, report: Record<string, unknown>): Promise<void> {
  const verifier = parseVerifierKey(readKeyArg(ctx, o.key, 'key'));
  const witnesses = o.witnesses.map((w) => parseCosignerVerifierKey(readKeyArg(ctx, w, 'witness key')));
  const quorum = o.quorum ?? witnesses.length;
  if (o.quorum !== undefined && witnesses.length === 0 && o.quorum > 0) throw new ValidationError('VALIDATION_FAILED', '--quorum needs --witness keys');
  const previous = readMonitorState(statePath);
  // In Custos the origin is the log key's name; a state file pins it further.
  const origin = previous?.origin ?? verifier.name;
  const client = new TlogClient(o.url, { timeoutMs: o.timeoutMs, ...(o.token === undefined ? {} : { token: o.token }) });

  // 1. The checkpoint, under the pinned key and origin, and the witness quorum.
  const note = await client.checkpoint();
  const cp = openCheckpoint(note, [verifier], origin);
  const rootHex = toHex(cp.rootHash);
  Object.assign(report, {
    origin,
    treeSize: cp.treeSize,
    rootHash: rootHex,
    previous: previous ? { treeSize: previous.treeSize, rootHash: previous.rootHash, sizeSeenAt: previous.sizeSeenAt } : null,
  });
  let witnessResult: WitnessQuorumResult | undefined;
  if (witnesses.length > 0) {
    witnessResult = checkWitnessQuorum(note, { witnesses, quorum });
    report['witnesses'] = witnessResult;
    // Throws WITNESS_QUORUM_NOT_MET (details: quorum, cosigned, missing, invalid).
    if (!witnessResult.ok) requireWitnessQuorum(note, { witnesses, quorum });
  }

  // 2. Rollback and same-size fork need no tiles.
  if (previous && cp.treeSize < previous.treeSize) {
    throw new VerificationError(
      'LOG_ROLLBACK',
      `the log at ${o.url} shows a tree of size ${cp.treeSize} (root ${short(rootHex)}) but this monitor recorded size ${previous.treeSize} (root ${short(previous.rootHash)}) at ${previous.sizeSeenAt}: entries were removed`,
      { details: { recordedSize: previous.treeSize, recordedRoot: previous.rootHash, servedSize: cp.treeSize, servedRoot: rootHex } },
    );
  }
  if (previous && cp.treeSize === previous.treeSize && previous.rootHash !== rootHex) {
    throw new VerificationError(
      'LOG_FORK',
      `the log at ${o.url} shows root ${rootHex} at size ${cp.treeSize}, but this monitor recorded root ${previous.rootHash} at the same size: two histories signed by one key`,
      {
        details: { size: cp.treeSize, recordedRoot: previous.rootHash, servedRoot: rootHex },
      },
    );
  }

  // 3. The tiles must give the signed root.
  const tiles = new TileNodeSource(cp.treeSize, (t) => client.tile(t));
  const tileRoot = await tilesCall(() => tiles.root());
  if (!bytesEqual(tileRoot, cp.rootHash)) {
    throw new VerificationError('LOG_TILES_INVALID', `the hash tiles of ${o.url} give root ${toHex(tileRoot)} at size ${cp.treeSize}, not the signed root ${rootHex}`, {
      details: { size: cp.treeSize, tileRoot: toHex(tileRoot), signedRoot: rootHex },
    });
  }

  // 4. Consistency with the recorded tree, proved from the tiles.
  const from = previous?.treeSize ?? 0;
  if (previous && from > 0 && cp.treeSize > from) {
    const proof = await tilesCall(() => tiles.consistencyProof(from));
    try {
      verifyConsistency(from, cp.treeSize, proof, Buffer.from(previous.rootHash, 'hex'), cp.rootHash);
    } catch (err) {
      throw new VerificationError(
        'LOG_FORK',
        `the log at ${o.url} (size ${cp.treeSize}, root ${short(rootHex)}) is not consistent with the tree this monitor recorded (size ${from}, root ${short(previous.rootHash)}): its history was rewritten (${(err as Error).message})`,
        { details: { recordedSize: from, recordedRoot: previous.rootHash, servedSize: cp.treeSize, servedRoot: rootHex } },
      );
    }
    report['consistencyProof'] = proof.map(toHex);
  }
  if (previous && from === 0 && previous.rootHash !== toHex(EMPTY_ROOT)) stateInvalid(statePath, 'size 0 with a non-empty root');

  // 5. With a token: the entries of the new range, recomputed, must extend the recorded tree to the signed root.
  let entriesChecked = 0;
  const checkLeaves = o.token !== undefined || o.entries === true;
  if (checkLeaves && cp.treeSize > from) {
    entriesChecked = await checkEntries(client, tiles, from, cp.treeSize, cp.rootHash, o.url);
  }

  // 6. Stale: the same size for longer than --max-age.
  const sameSize = previous !== undefined && previous.treeSize === cp.treeSize;
  const sizeSeenAt = sameSize ? previous.sizeSeenAt : now.toISOString();
  const state: MonitorState = { format: MONITOR_STATE_FORMAT, url: o.url, origin, treeSize: cp.treeSize, rootHash: rootHex, checkpoint: note, sizeSeenAt, checkedAt: now.toISOString() };
  writeMonitorState(statePath, state);
  const status = previous === undefined ? 'first-run' : sameSize ? 'unchanged' : 'grew';
  const trust =
    previous === undefined
      ? `trust on first use: no state in ${o.state}; recorded size ${cp.treeSize} without comparing it with anything (later runs are checked against it)`
      : sameSize
        ? `unchanged since ${previous.sizeSeenAt}`
        : `consistent with the recorded tree of size ${from}${from > 0 ? ' (consistency proof from the tiles verified)' : ''}`;
  Object.assign(report, { status, trust, tilesFetched: tiles.fetched, entriesChecked, sizeSeenAt, checkedAt: state.checkedAt });
  const ageMs = now.getTime() - Date.parse(sizeSeenAt);
  if (sameSize && o.maxAgeMs > 0 && ageMs > o.maxAgeMs) {
    throw new VerificationError('LOG_STALE', `the log at ${o.url} has stayed at size ${cp.treeSize} since ${sizeSeenAt} (${Math.round(ageMs / 60_000)} min), longer than --max-age`, {
      details: { size: cp.treeSize, sizeSeenAt, maxAgeMs: o.maxAgeMs },
    });
  }
  report['ok'] = true;
  if (ctx.json) return printJson(ctx.io, report);
  printFields(ctx.io, {
    'log': `${o.url} (${origin})`,
    'tree size': String(cp.treeSize),
    'root hash': rootHex,
    'status': trust,
    'witnesses': witnessResult ? `${witnessResult.cosigned.length} of ${witnesses.length} cosigned (quorum ${quorum})` : undefined,
    'entries': !checkLeaves ? undefined : `${entriesChecked} new entries recomputed from the entry bundles`,
    'tiles': `${tiles.fetched} hash tiles fetched`,
    'state': `${o.state} (written)`,
  });
}

// Malformed tiles (wrong length, missing) are the server's fault, not a fork.
async function tilesCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof VerificationError && err.code === 'CONSISTENCY_PROOF_INVALID') {
      throw new VerificationError('LOG_TILES_INVALID', err.message, err.details ? { details: { ...err.details } } : undefined);
    }
    throw err;
  }
}

async function checkEntries(client: TlogClient, tiles: TileNodeSource, from: number, to: number, root: Buffer, url: string): Promise<number> {
  // The recorded tree's right edge, from the tiles (its nodes are complete in the new tree too).
  const ids = Frontier.nodesFor(from);
  const nodes = await tilesCall(() => tiles.nodes(ids));
  const frontier = Frontier.fromNodes(
    from,
    ids.map((id) => nodes.get(nodeSeq(id.level, id.index))!),
  );
  const tileLeaves = await tilesCall(() => tiles.leafHashes(from, to));
  let firstMismatch: number | undefined;
  for (let b = Math.floor(from / TILE_WIDTH); b * TILE_WIDTH < to; b++) {
    const width = tileWidth(0, b, to);
    const bundle = await client.entryBundle(b, width);
    const { entries, trailingBytes } = decodeEntryBundle(bundle);
    if (entries.length !== width || trailingBytes !== 0) {
      throw new VerificationError('LOG_TILES_INVALID', `entry bundle ${tilePath('entries', b, width)} of ${url} holds ${entries.length} entries (${trailingBytes} stray bytes), expected ${width}`, {
        details: { bundle: tilePath('entries', b, width) },
      });
    }
    for (let i = Math.max(from, b * TILE_WIDTH); i < b * TILE_WIDTH + width; i++) {
      const leaf = hashLeaf(entries[i - b * TILE_WIDTH]!);
      if (firstMismatch === undefined && !bytesEqual(leaf, tileLeaves[i - from]!)) firstMismatch = i;
      frontier.append(leaf);
    }
  }
  if (firstMismatch !== undefined || !bytesEqual(frontier.root(), root)) {
    throw new VerificationError(
      'LOG_TILES_INVALID',
      firstMismatch !== undefined
        ? `entry ${firstMismatch} served by ${url} does not hash to its leaf in the tiles: the entry bundles do not match the signed tree of size ${to}`
        : `the entries [${from}, ${to}) served by ${url} do not give the signed root at size ${to}`,
      { details: { from, to, ...(firstMismatch === undefined ? {} : { firstBadIndex: firstMismatch }) } },
    );
  }
  return to - from;
}
