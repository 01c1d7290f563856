/**
 * Monitors and pinned history (issue 11): `custos monitor` against real servers on loopback,
 * `custos checkpoint --save` and `custos verify --trusted-checkpoint` on copies of a data
 * directory, and the empty tree's checkpoint signed at `custos init`.
 *
 * Rollback and fork are made the way an operator would: a copy of the data directory taken at
 * some size is served (or verified) after the monitor has seen the original grow; a fork is a copy
 * that receives other appends after the copy point, signed with the same key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openCheckpoint } from '../src/core/checkpoint.js';
import { EMPTY_ROOT, hashChildren, hashLeaf, toHex } from '../src/core/hash.js';
import { verifyConsistency } from '../src/core/merkle/consistency.js';
import { computeRoot } from '../src/core/merkle/tree.js';
import { TileNodeSource, tilePath } from '../src/core/merkle/tile-proof.js';
import { parseVerifierKey } from '../src/core/note.js';
import { cosignCheckpoint, formatCosignerSignerKey, formatCosignerVerifierKey, parseCosignerSignerKey } from '../src/core/cosignature.js';
import { initDataDir, openLog, DB_FILE } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import { Governance } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp } from '../src/server/app.js';
import type { FastifyInstance } from 'fastify';
import { cleanupBackends, freshPgDatabase, PG_URL } from './helpers/backends.js';
import { assertError, assertOk, callCli, callIn, ensureBuilt, EXIT, okJson, parseJson } from './helpers/cli.js';

const EXIT_ROLLBACK = 10;
const EXIT_FORK = 11;
const EXIT_STALE = 12;
const EXIT_TILES = 13;

let root: string;
before(() => {
  ensureBuilt();
  root = mkdtempSync(join(tmpdir(), 'custos-monitor-'));
});
after(async () => {
  rmSync(root, { recursive: true, force: true });
  await cleanupBackends();
});

let counter = 0;
const path = (name: string): string => join(root, `${name}-${counter++}`);

/** A running server over a data directory. */
interface Served {
  readonly url: string;
  readonly log: Log;
  readonly app: FastifyInstance;
  /** A token with the `read` permission (created on the log the first time). */
  readonly token: string;
  close(): Promise<void>;
}

const tokens = new Map<string, string>();

async function serve(dataDir: string, options: { publicEntries?: boolean } = {}): Promise<Served> {
  const { dir, log } = await openLog(dataDir);
  const governance = await Governance.open({ log });
  const auth = new Authenticator({ log });
  let token = tokens.get(dataDir);
  if (!token) {
    token = (await auth.createToken(`aud-${counter++}`, 'auditor', { actor: 'test-setup', role: 'operator' })).token;
    tokens.set(dataDir, token);
  }
  const app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, ...(options.publicEntries ? { publicEntries: true } : {}) });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: address,
    log,
    app,
    token,
    close: async () => {
      await app.close();
      await log.close();
      await dir.store.close();
    },
  };
}

async function newLog(origin = `monitor.test/log-${counter++}`): Promise<{ dataDir: string; vkey: string }> {
  const dataDir = path('log');
  const r = await initDataDir(dataDir, { origin });
  return { dataDir, vkey: r.verifierKey };
}

/** Appends `n` events in one group commit; `tag` makes the entries of a fork differ. */
async function grow(log: Log, n: number, tag = 'a'): Promise<number> {
  await Promise.all(Array.from({ length: n }, (_, i) => log.append('AUDIT_EVENT', { resource: `r-${tag}-${i}`, note: tag })));
  return log.size;
}

/** Copies a closed data directory (keys and SQLite file). */
function copyDir(from: string): string {
  const to = path('copy');
  cpSync(from, to, { recursive: true });
  const token = tokens.get(from);
  if (token) tokens.set(to, token);
  return to;
}

interface MonitorJson {
  ok: boolean;
  status?: string;
  trust?: string;
  treeSize?: number;
  rootHash?: string;
  previous?: { treeSize: number; rootHash: string } | null;
  tilesFetched?: number;
  entriesChecked?: number;
  consistencyProof?: string[];
  witnesses?: { ok: boolean; cosigned: string[]; missing: string[] };
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

const monitorArgs = (s: Served | string, vkey: string, state: string, extra: string[] = []) => ['--json', 'monitor', typeof s === 'string' ? s : s.url, '--key', vkey, '--state', state, ...extra];

function readState(file: string): { treeSize: number; rootHash: string; checkpoint: string; sizeSeenAt: string; checkedAt: string; origin: string } {
  return JSON.parse(readFileSync(file, 'utf8'));
}

describe('proofs from tiles (pure)', () => {
  // A reference tree: every complete node of every level, from the leaves.
  const N = 65_536 + 700;
  const leaves = Array.from({ length: N }, (_, i) => hashLeaf(Buffer.from(`leaf-${i}`)));
  const levels: Buffer[][] = [leaves];
  while (levels.at(-1)!.length > 1) {
    const prev = levels.at(-1)!;
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < prev.length; i += 2) next.push(hashChildren(prev[i]!, prev[i + 1]!));
    levels.push(next);
  }
  const source = (size: number) => {
    const fetched: string[] = [];
    const src = new TileNodeSource(size, async (t) => {
      fetched.push(tilePath(t.level, t.index, t.width));
      return Buffer.concat(levels[8 * t.level]!.slice(t.index * 256, t.index * 256 + t.width));
    });
    return { src, fetched };
  };

  it('the root and RFC 9162 consistency proofs, computed from full and partial hash tiles, verify', async () => {
    const sizes = [1, 2, 3, 255, 256, 257, 511, 512, 513, 700, 65_535, 65_536, 65_537, N];
    for (const n of sizes) {
      const { src } = source(n);
      const root = computeRoot(leaves.slice(0, n));
      assert.deepEqual(await src.root(), root, `root at ${n}`);
      for (const m of sizes.filter((x) => x < n)) {
        const proof = await src.consistencyProof(m);
        verifyConsistency(m, n, proof, computeRoot(leaves.slice(0, m)), root);
      }
    }
    assert.deepEqual(await source(0).src.root(), EMPTY_ROOT);
  });

  it('fetches only a few tiles per proof, partial ones by their width', async () => {
    const { src, fetched } = source(N);
    await src.consistencyProof(300);
    await src.root();
    assert.ok(fetched.length <= 8, fetched.join(' '));
    assert.ok(
      fetched.some((f) => f.includes('.p/')),
      fetched.join(' '),
    );
    assert.ok(fetched.includes('tile/2/000.p/1'), fetched.join(' '));
  });
});

describe('custos init signs the empty tree at once', () => {
  it('GET /checkpoint on a new log answers 200 with a verifiable checkpoint of size 0 and the empty root', async () => {
    const { dataDir, vkey } = await newLog();
    const s = await serve(dataDir);
    try {
      // Only the token's event is on it: look at the checkpoint of size 0 through the store too.
      const res = await fetch(`${s.url}/checkpoint`);
      assert.equal(res.status, 200);
      const cp = openCheckpoint(await res.text(), [parseVerifierKey(vkey)], parseVerifierKey(vkey).name);
      assert.equal(cp.treeSize, s.log.size);
    } finally {
      await s.close();
    }
    // A log that nobody wrote to: the CLI's init, then the server, with no append at all.
    const dir2 = path('cli-init');
    assertOk(await callIn(dir2, ['init', '--origin', 'monitor.test/empty']));
    const { dir, log } = await openLog(dir2);
    const app = await createApp({ log, governance: await Governance.open({ log }), auth: new Authenticator({ log }), verifiers: [dir.verifier], origin: dir.origin, logger: false });
    try {
      const r = await app.inject({ method: 'GET', url: '/checkpoint' });
      assert.equal(r.statusCode, 200, r.body);
      const cp = openCheckpoint(r.body, [dir.verifier], 'monitor.test/empty');
      assert.equal(cp.treeSize, 0);
      assert.equal(toHex(cp.rootHash), toHex(EMPTY_ROOT));
      assert.equal(toHex(cp.rootHash), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    } finally {
      await app.close();
      await log.close();
      await dir.store.close();
    }
    // And the log verifies (its one checkpoint is the empty tree's).
    const v = okJson<{ ok: boolean; checkpointsChecked: number; checkpointSize: number }>(await callIn(dir2, ['--json', 'verify']));
    assert.equal(v.ok, true);
    assert.equal(v.checkpointSize, 0);
    assert.equal(v.checkpointsChecked, 1);
  });

  it('on PostgreSQL too: init signs the checkpoint of size 0', { skip: PG_URL ? false : 'PG_URL not set' }, async () => {
    const url = await freshPgDatabase('custos_monitor');
    const dataDir = path('pg-log');
    assertOk(await callIn(dataDir, ['--store', url, 'init', '--origin', 'monitor.test/pg']));
    const cp = okJson<{ treeSize: number; rootHash: string; note: string }>(await callIn(dataDir, ['--store', url, '--json', 'checkpoint']));
    assert.equal(cp.treeSize, 0);
    assert.equal(cp.rootHash, toHex(EMPTY_ROOT));
    const vkey = readFileSync(join(dataDir, 'log.pub'), 'utf8').trim();
    assert.equal(openCheckpoint(cp.note, [parseVerifierKey(vkey)], 'monitor.test/pg').treeSize, 0);
  });

  it('an empty log made without the size-0 checkpoint gets one on its first writable open', async () => {
    const { dataDir } = await newLog();
    const db = new Database(join(dataDir, DB_FILE));
    db.prepare('DELETE FROM checkpoints').run();
    db.close();
    assertError(await callIn(dataDir, ['checkpoint']), EXIT.notFound, 'CHECKPOINT_NOT_FOUND');
    const { dir, log } = await openLog(dataDir);
    await log.close();
    await dir.store.close();
    const cp = okJson<{ treeSize: number; rootHash: string }>(await callIn(dataDir, ['--json', 'checkpoint']));
    assert.equal(cp.treeSize, 0);
    assert.equal(cp.rootHash, toHex(EMPTY_ROOT));
  });
});

describe('custos monitor', () => {
  it('follows a growing log across runs, with proofs from full and partial tiles past 256 and 512 entries', async () => {
    const { dataDir, vkey } = await newLog();
    const s = await serve(dataDir);
    const state = path('state.json');
    try {
      // First run: trust on first use.
      const first = okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state)));
      assert.equal(first.status, 'first-run');
      assert.match(first.trust!, /trust on first use/);
      assert.equal(first.treeSize, s.log.size);
      assert.equal(statSync(state).mode & 0o777, 0o600);
      let recorded = readState(state);
      assert.equal(recorded.treeSize, s.log.size);
      assert.equal(recorded.origin, parseVerifierKey(vkey).name);
      // Growth across tile boundaries: 1 -> 101 -> 301 (past 256) -> 601 (past 512) -> 700.
      for (const n of [100, 200, 300, 99]) {
        const before = recorded.treeSize;
        const size = await grow(s.log, n);
        const r = okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state)));
        assert.equal(r.status, 'grew');
        assert.equal(r.treeSize, size);
        assert.equal(r.previous?.treeSize, before);
        assert.ok((r.consistencyProof ?? []).length > 0, 'a consistency proof was built from the tiles');
        recorded = readState(state);
        assert.equal(recorded.treeSize, size);
        assert.equal(recorded.rootHash, toHex(s.log.latestCheckpoint()!.rootHash));
      }
      // With a read token: the new entries are fetched and every leaf recomputed.
      const size = await grow(s.log, 20);
      const withToken = okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state, ['--token', s.token])));
      assert.equal(withToken.status, 'grew');
      assert.equal(withToken.entriesChecked, 20);
      assert.equal(withToken.treeSize, size);
      // Reading entry bundles with a token is itself logged (AUDIT_QUERY events): one more run
      // takes those in; then nothing is new: unchanged, and the time the size was first seen is kept.
      assert.equal(okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state))).status, 'grew');
      const seen = readState(state).sizeSeenAt;
      const same = okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state)));
      assert.equal(same.status, 'unchanged');
      assert.equal(readState(state).sizeSeenAt, seen);
      // Human output names the status.
      const human = await callCli(['monitor', s.url, '--key', vkey, '--state', state]);
      assertOk(human);
      assert.match(human.stdout, /unchanged since/);
      // A first run with a token over the whole log (a fresh state): all entries recomputed.
      const whole = okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, path('state-whole.json'), ['--token', s.token])));
      assert.equal(whole.entriesChecked, whole.treeSize);
      assert.ok(whole.treeSize! > size);
    } finally {
      await s.close();
    }
  });

  it('detects a rollback: an older copy of the data directory served after the monitor saw the log grow', async () => {
    const { dataDir, vkey } = await newLog();
    let s = await serve(dataDir);
    await grow(s.log, 300);
    await s.close();
    const old = copyDir(dataDir);
    s = await serve(dataDir);
    const newer = await grow(s.log, 40);
    const state = path('state.json');
    okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state)));
    await s.close();
    const before = readFileSync(state, 'utf8');
    const rolled = await serve(old);
    try {
      const r = await callCli(monitorArgs(rolled, vkey, state));
      assertError(r, EXIT_ROLLBACK, 'LOG_ROLLBACK', { stdoutAllowed: true, message: new RegExp(`size ${rolled.log.size}\\b.*recorded size ${newer}\\b`) });
      const j = parseJson<MonitorJson>(r);
      assert.equal(j.ok, false);
      assert.equal(j.error?.code, 'LOG_ROLLBACK');
      assert.equal(j.error?.details?.['recordedSize'], newer);
      // The pinned history is kept: the state is not overwritten by what a rolled-back log shows.
      assert.equal(readFileSync(state, 'utf8'), before);
    } finally {
      await rolled.close();
    }
  });

  it('detects a fork: another history signed with the same key, at the same size and at a larger size', async () => {
    const { dataDir, vkey } = await newLog();
    let s = await serve(dataDir);
    await grow(s.log, 270);
    await s.close();
    const fork = copyDir(dataDir);
    // The original and the fork each get other entries after the copy point.
    s = await serve(dataDir);
    const size = await grow(s.log, 10, 'original');
    const state = path('state.json');
    okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state)));
    await s.close();
    const f = await serve(fork);
    try {
      assert.equal(await grow(f.log, 10, 'forked'), size);
      const same = await callCli(monitorArgs(f, vkey, state));
      assertError(same, EXIT_FORK, 'LOG_FORK', { stdoutAllowed: true, message: new RegExp(`at size ${size}`) });
      // Larger than the recorded size: the consistency proof from the tiles does not verify.
      await grow(f.log, 30, 'forked-more');
      const larger = await callCli(monitorArgs(f, vkey, state));
      assertError(larger, EXIT_FORK, 'LOG_FORK', { stdoutAllowed: true, message: /not consistent with the tree this monitor recorded \(size \d+/ });
      assert.equal(parseJson<MonitorJson>(larger).error?.details?.['recordedSize'], size);
    } finally {
      await f.close();
    }
  });

  it('detects a log that has stopped moving (LOG_STALE), unless --max-age 0', async () => {
    const { dataDir, vkey } = await newLog();
    const s = await serve(dataDir);
    const state = path('state.json');
    try {
      await grow(s.log, 3);
      okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state)));
      // The state says this size was first seen two days ago.
      const st = readState(state);
      writeFileSync(state, JSON.stringify({ ...st, sizeSeenAt: new Date(Date.parse(st.sizeSeenAt) - 2 * 86_400_000).toISOString() }));
      const r = await callCli(monitorArgs(s, vkey, state));
      assertError(r, EXIT_STALE, 'LOG_STALE', { stdoutAllowed: true, message: new RegExp(`stayed at size ${s.log.size} since`) });
      okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state, ['--max-age', '3d'])));
      okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state, ['--max-age', '0'])));
      // Growth clears it.
      await grow(s.log, 1);
      assert.equal(okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state))).status, 'grew');
    } finally {
      await s.close();
    }
  });

  it('refuses a checkpoint under another key, a wrong origin, a non-http URL and an unreachable server', async () => {
    const { dataDir } = await newLog('monitor.test/pinned');
    const other = await newLog('monitor.test/pinned');
    const s = await serve(dataDir);
    try {
      // Same origin name, another key: no signature verifies.
      assertError(await callCli(monitorArgs(s, other.vkey, path('state.json'))), EXIT.verification, 'NOTE_NO_VERIFIABLE_SIGNATURE', { stdoutAllowed: true });
      const wrong = await newLog('monitor.test/other-origin');
      assertError(await callCli(monitorArgs(s, wrong.vkey, path('state.json'))), EXIT.verification, 'NOTE_NO_VERIFIABLE_SIGNATURE', { stdoutAllowed: true });
      assertError(await callCli(['monitor', 'file:///etc/passwd', '--key', other.vkey, '--state', path('s.json')]), EXIT.validation, 'VALIDATION_FAILED');
    } finally {
      await s.close();
    }
    assertError(await callCli(monitorArgs(s.url, other.vkey, path('state.json'))), 14, 'LOG_UNREACHABLE', { stdoutAllowed: true });
  });

  it('checks the witness quorum on cosigned checkpoints', async () => {
    const { dataDir, vkey } = await newLog();
    let s = await serve(dataDir);
    await grow(s.log, 5);
    await s.close();
    // Two witnesses; only the first cosigns the latest checkpoint (stored with its cosignature,
    // as /checkpoint serves it).
    const w = [1, 2].map((i) => {
      const skey = formatCosignerSignerKey(`witness-${i}.test`, randomBytes(32));
      const signer = parseCosignerSignerKey(skey);
      return { signer, vkey: formatCosignerVerifierKey(signer.name, signer.publicKey) };
    });
    const db = new Database(join(dataDir, DB_FILE));
    const row = db.prepare('SELECT tree_size, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1').get() as { tree_size: number; note: string };
    const line = cosignCheckpoint(row.note, w[0]!.signer, Math.floor(Date.now() / 1000));
    db.prepare('UPDATE checkpoints SET note = ? WHERE tree_size = ?').run(`${row.note}${line}`, row.tree_size);
    db.close();
    s = await serve(dataDir);
    try {
      const witnessArgs = ['--witness', w[0]!.vkey, '--witness', w[1]!.vkey];
      const met = okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, path('state.json'), [...witnessArgs, '--quorum', '1'])));
      assert.equal(met.witnesses?.ok, true);
      assert.equal(met.witnesses?.cosigned.length, 1);
      const unmetState = path('state.json');
      const unmet = await callCli(monitorArgs(s, vkey, unmetState, [...witnessArgs, '--quorum', '2']));
      assertError(unmet, EXIT.verification, 'WITNESS_QUORUM_NOT_MET', { stdoutAllowed: true });
      assert.equal(existsSync(unmetState), false, 'a checkpoint without its quorum is not recorded');
      // Default quorum: all the witnesses given.
      assertError(await callCli(monitorArgs(s, vkey, path('state.json'), witnessArgs)), EXIT.verification, 'WITNESS_QUORUM_NOT_MET', { stdoutAllowed: true });
    } finally {
      await s.close();
    }
  });

  it('with entry bundles, detects an entry that does not match the tiles (an entry edited in the store)', async () => {
    const { dataDir, vkey } = await newLog();
    // Entries are published here: with a token, reading them is itself logged, and a log whose
    // entries no longer verify refuses to log anything more (503), so the edit would show only as that.
    const s = await serve(dataDir, { publicEntries: true });
    const state = path('state.json');
    okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, state, ['--entries'])));
    await grow(s.log, 300);
    // Entry 280 is in the tail rows (bundle 1 is partial): edit one byte of its payload, under
    // the running server (which would refuse to start on a log whose entries do not verify).
    const db = new Database(join(dataDir, DB_FILE));
    const row = db.prepare('SELECT data FROM entry_tail WHERE idx = ?').get(280) as { data: Buffer } | undefined;
    assert.ok(row, 'entry 280 is a tail row');
    const edited = Buffer.from(row.data.toString('utf8').replace('"note":"a"', '"note":"b"'));
    assert.notDeepEqual(edited, row.data);
    db.prepare('UPDATE entry_tail SET data = ? WHERE idx = ?').run(edited, 280);
    db.close();
    try {
      // Without the entries the tiles alone are consistent: the edit is not visible.
      okJson<MonitorJson>(await callCli(monitorArgs(s, vkey, path('state-tiles-only.json'))));
      const r = await callCli(monitorArgs(s, vkey, state, ['--entries']));
      assertError(r, EXIT_TILES, 'LOG_TILES_INVALID', { stdoutAllowed: true, message: /entry 280\b/ });
      // The state still holds the last good tree.
      assert.equal(readState(state).treeSize, 1);
    } finally {
      await s.close();
    }
  });
});

describe('custos checkpoint --save and verify --trusted-checkpoint', () => {
  it('a good log passes; a restored older copy is LOG_ROLLBACK naming both sizes; a forked copy is LOG_FORK', async () => {
    const { dataDir, vkey } = await newLog();
    let s = await serve(dataDir);
    await grow(s.log, 30);
    await s.close();
    const old = copyDir(dataDir);
    s = await serve(dataDir);
    const saved = await grow(s.log, 10, 'original');
    await s.close();
    const file = path('cp.note');
    const out = okJson<{ saved: string; treeSize: number }>(await callIn(dataDir, ['--json', 'checkpoint', '--save', file]));
    assert.equal(out.treeSize, saved);
    assert.equal(statSync(file).mode & 0o777, 0o644);
    // Never overwritten without --force.
    assertError(await callIn(dataDir, ['checkpoint', '--save', file]), EXIT.validation, 'FILE_UNREADABLE', { message: /--force/ });
    assertOk(await callIn(dataDir, ['checkpoint', '--save', file, '--force']));

    // The log itself, and the log grown further, contain it.
    const good = okJson<{ ok: boolean; trustedCheckpoints: { ok: boolean; treeSize: number }[] }>(await callIn(dataDir, ['--json', 'verify', '--key', vkey, '--trusted-checkpoint', file]));
    assert.deepEqual(
      good.trustedCheckpoints.map((t) => [t.ok, t.treeSize]),
      [[true, saved]],
    );
    s = await serve(dataDir);
    await grow(s.log, 5);
    await s.close();
    okJson(await callIn(dataDir, ['--json', 'verify', '--trusted-checkpoint', file]));

    // Rollback: the older copy verifies by itself, but not against the saved checkpoint.
    okJson(await callIn(old, ['--json', 'verify']));
    const rolled = await callIn(old, ['verify', '--key', vkey, '--trusted-checkpoint', file]);
    assertError(rolled, EXIT_ROLLBACK, 'LOG_ROLLBACK', { stdoutAllowed: true, message: new RegExp(`has 3[0-9] entries .* covers ${saved}\\b`) });
    const rolledJson = parseJson<{ ok: boolean; trustedCheckpoints: { ok: boolean; code: string; treeSize: number; localSize: number }[] }>(
      await callIn(old, ['--json', 'verify', '--trusted-checkpoint', file]),
    );
    assert.equal(rolledJson.ok, false);
    assert.equal(rolledJson.trustedCheckpoints[0]!.code, 'LOG_ROLLBACK');
    assert.equal(rolledJson.trustedCheckpoints[0]!.treeSize, saved);

    // Fork: the older copy given other entries up to (and past) the saved size.
    const fork = copyDir(old);
    s = await serve(fork);
    await grow(s.log, saved - s.log.size, 'forked');
    assert.equal(s.log.size, saved);
    await s.close();
    assertError(await callIn(fork, ['verify', '--trusted-checkpoint', file]), EXIT_FORK, 'LOG_FORK', { stdoutAllowed: true, message: new RegExp(`root at size ${saved} is`) });
    s = await serve(fork);
    await grow(s.log, 7, 'forked-more');
    await s.close();
    assertError(await callIn(fork, ['verify', '--trusted-checkpoint', file]), EXIT_FORK, 'LOG_FORK', { stdoutAllowed: true });

    // A saved checkpoint under another key does not verify.
    const other = await newLog();
    const otherFile = path('other.note');
    assertOk(await callIn(other.dataDir, ['checkpoint', '--save', otherFile]));
    assertError(await callIn(dataDir, ['verify', '--trusted-checkpoint', otherFile]), EXIT.verification, 'NOTE_NO_VERIFIABLE_SIGNATURE', { stdoutAllowed: true });
  });
});
