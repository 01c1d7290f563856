/**
 * The data directory's files and the verifier's trust (security issue #9, defects 9 and 13), with
 * the real CLI (bin/custos.js over dist/) and the library:
 * - init makes the directory 0700 (an existing 0755 one too) and custos.db, -wal, -shm, log.key 0600;
 * - a signing key others can read is refused with KEY_PERMISSIONS, and nothing is written;
 * - a failed init (PostgreSQL unreachable) leaves nothing behind: a later init succeeds;
 * - verify without --key says it trusts the directory's own key (not pinned); --key pins it and a
 *   log forged under another key fails.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { EXIT, assertError, okJson, parseJson, registerSecret, callIn } from './helpers/cli.js';
import { initDataDir, openLog } from '../src/log/data-dir.js';
import { ValidationError } from '../src/core/errors.js';

let root: string;
let previousUmask: number;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'custos-dirsec-'));
  // The usual default: files 0644 and directories 0755 unless Custos says otherwise.
  previousUmask = process.umask(0o022);
});
after(() => {
  process.umask(previousUmask);
  rmSync(root, { recursive: true, force: true });
});

const mode = (p: string) => statSync(p).mode & 0o777;
let n = 0;
const fresh = () => join(root, `d-${n++}`);

/** An unused loopback port: nothing listens there, so connecting is refused at once. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('data directory modes', () => {
  it('init into an existing 0755 directory makes it 0700; custos.db, its WAL files and log.key are 0600', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o755 });
    assert.equal(mode(dir), 0o755);
    const r = okJson<{ dataDir: string }>(await callIn(dir, ['--json', 'init']));
    assert.equal(r.dataDir, dir);
    registerSecret(readFileSync(join(dir, 'log.key'), 'utf8'));
    // Appends create the WAL and shared-memory files, with the database file's mode.
    okJson(await callIn(dir, ['--json', 'append', '--resource', 'r-1', '--practitioner', 'p-1', '--hash', 'ab'.repeat(32)]));
    const { dir: dd, log } = await openLog(dir);
    await log.append('E', { i: 1 });
    assert.equal(mode(dir), 0o700, 'data directory');
    assert.equal(mode(join(dir, 'log.key')), 0o600, 'log.key');
    for (const f of ['custos.db', 'custos.db-wal', 'custos.db-shm']) {
      assert.ok(existsSync(join(dir, f)), `${f} exists while the log is open`);
      assert.equal(mode(join(dir, f)), 0o600, f);
    }
    await log.close();
    await dd.store.close();
    // No temporary file of init is left.
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.init-')),
      [],
    );
  });

  it('a log made before modes were enforced (0755 directory, 0644 database) is made private when opened for writing', async () => {
    const dir = fresh();
    await initDataDir(dir, { origin: 'dirsec.test/old' });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'custos.db'), 0o644);
    const { dir: dd, log } = await openLog(dir);
    await log.append('E', {});
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(join(dir, 'custos.db')), 0o600);
    await log.close();
    await dd.store.close();
  });
});

describe('signing key readable by others', () => {
  let dir: string;
  before(async () => {
    dir = fresh();
    okJson(await callIn(dir, ['--json', 'init']));
    registerSecret(readFileSync(join(dir, 'log.key'), 'utf8'));
  });

  for (const m of [0o644, 0o640, 0o604, 0o660]) {
    it(`log.key mode 0${m.toString(8)}: append (and every command that signs) refuses with KEY_PERMISSIONS (exit 2), nothing written`, async () => {
      chmodSync(join(dir, 'log.key'), m);
      try {
        const before = okJson<{ treeSize: number }>(await callIn(dir, ['stats', '--json'])).treeSize;
        const r = await callIn(dir, ['append', '--resource', 'r-1', '--practitioner', 'p-1', '--hash', 'ab'.repeat(32)]);
        assertError(r, EXIT.validation, 'KEY_PERMISSIONS', { message: /log\.key.*chmod 600/ });
        assert.equal(okJson<{ treeSize: number }>(await callIn(dir, ['stats', '--json'])).treeSize, before);
        // serve, demo and every writing command open the log through openLog.
        await assert.rejects(openLog(dir), (err: unknown) => err instanceof ValidationError && err.code === 'KEY_PERMISSIONS');
      } finally {
        chmodSync(join(dir, 'log.key'), 0o600);
      }
    });
  }

  it('mode 0600 is accepted', async () => {
    okJson(await callIn(dir, ['--json', 'append', '--resource', 'r-1', '--practitioner', 'p-1', '--hash', 'ab'.repeat(32)]));
  });
});

describe('atomic init', () => {
  it('init with an unreachable PostgreSQL leaves no key behind; serve and init then agree, and a later init succeeds', async () => {
    const url = `postgres://custos@127.0.0.1:${await closedPort()}/custos`;
    for (const existing of [false, true]) {
      const dir = fresh();
      if (existing) mkdirSync(dir, { mode: 0o700 });
      const r = await callIn(dir, ['init', '--store', url]);
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /^custos: STORE_FAILURE: /);
      assert.equal(existsSync(dir), existing, existing ? 'the existing directory stays' : 'the directory it made is removed');
      if (existing) assert.deepEqual(readdirSync(dir), [], 'nothing left in it');
      // Before the fix, the keys stayed: init said DATA_DIR_EXISTS while serve said DATA_DIR_NOT_FOUND.
      const again = okJson<{ dataDir: string }>(await callIn(dir, ['--json', 'init']));
      registerSecret(readFileSync(join(dir, 'log.key'), 'utf8'));
      assert.equal(again.dataDir, dir);
      assert.equal(okJson<{ ok: boolean }>(await callIn(dir, ['--json', 'verify'])).ok, true);
    }
  });
});

describe('verify: which key is trusted', () => {
  let dir: string;
  let forged: string;
  let key: string;
  before(async () => {
    dir = fresh();
    const r = okJson<{ verifierKey: string; origin: string }>(await callIn(dir, ['--json', 'init', '--origin', 'dirsec.test/trust']));
    key = r.verifierKey;
    registerSecret(readFileSync(join(dir, 'log.key'), 'utf8'));
    okJson(await callIn(dir, ['--json', 'append', '--resource', 'r-1', '--practitioner', 'p-1', '--hash', 'ab'.repeat(32)]));
    // A forgery: another log with the same origin, signed by another key, shipped with its log.pub.
    forged = fresh();
    okJson(await callIn(forged, ['--json', 'init', '--origin', 'dirsec.test/trust']));
    registerSecret(readFileSync(join(forged, 'log.key'), 'utf8'));
    okJson(await callIn(forged, ['--json', 'append', '--resource', 'r-FORGED', '--practitioner', 'p-1', '--hash', 'cd'.repeat(32)]));
    cpSync(join(dir, 'log.pub'), join(root, 'pinned.pub'));
  });

  it('without --key it says plainly that it trusts the directory’s own key (human and --json)', async () => {
    const human = await callIn(forged, ['verify', '--no-progress']);
    assert.equal(human.code, 0, human.stderr);
    assert.ok(human.stdout.includes(`trusting the key in ${join(forged, 'log.pub')} (not pinned`), human.stdout);
    const v = okJson<{ ok: boolean; trust: { pinned: boolean; source: string; note: string } }>(await callIn(forged, ['--json', 'verify']));
    assert.equal(v.ok, true, 'a forgery re-signed under its own key passes when that key is trusted');
    assert.equal(v.trust.pinned, false);
    assert.equal(v.trust.source, join(forged, 'log.pub'));
    const e = okJson<{ trust: { pinned: boolean } }>(await callIn(forged, ['--json', 'verify', '--entry', '0']));
    assert.equal(e.trust.pinned, false);
  });

  it('with --key (the published key, as a string or a file) it is strict: the forgery fails, the real log passes', async () => {
    for (const k of [key, join(root, 'pinned.pub')]) {
      const bad = await callIn(forged, ['--json', 'verify', '--key', k]);
      assertError(bad, EXIT.verification, 'LOG_VERIFICATION_FAILED', { stdoutAllowed: true });
      assert.equal(parseJson<{ trust: { pinned: boolean } }>(bad).trust.pinned, true);
      const good = okJson<{ ok: boolean; trust: { pinned: boolean; source: string } }>(await callIn(dir, ['--json', 'verify', '--key', k]));
      assert.equal(good.ok, true);
      assert.deepEqual([good.trust.pinned, good.trust.source], [true, '--key']);
    }
    const human = await callIn(dir, ['verify', '--no-progress', '--key', key]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /trusted key: +the key given with --key \(pinned\)/);
    assert.ok(!human.stdout.includes('not pinned'));
  });
});
