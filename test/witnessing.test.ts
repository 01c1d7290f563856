/**
 * The log side of witnessing (issue 11), end to end on loopback: one Custos server and two
 * witnesses speaking C2SP tlog-witness over real HTTP.
 * - cosignatures arrive, verify under the configured keys, reach the quorum (2 of 2), and
 *   /checkpoint carries them;
 * - a witness stopped mid-run catches up when restarted on the same data directory (lag back to 0);
 * - a witness that refuses raises the alarm: a WITNESS_ALARM event on the log, the metric, the API field;
 * - a witness that never answers does not delay appends;
 * - `serve --witness` and `--witness-quorum` are validated (usage errors with stable codes).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../src/core/checkpoint.js';
import { formatVerifierKey, parseVerifierKey, type NoteVerifier } from '../src/core/note.js';
import { witnessKeyFromVkey } from '../src/server/witness-key.js';
import { checkWitnessQuorum, parseCosignerVerifierKey } from '../src/core/cosignature.js';
import { cpSync, existsSync } from 'node:fs';
import { createVocabulary } from '../src/core/vocabulary.js';
import { initDataDir, openLog } from '../src/log/data-dir.js';
import { WitnessCollector } from '../src/server/witnesses.js';
import { assertError, callIn, EXIT } from './helpers/cli.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { cosignerIdentity, startHangingWitness, startTestWitness, type TestWitness } from './helpers/witnesses.js';

const RETRY = { baseMs: 10, capMs: 100, timeoutMs: 5000, unreachableAfter: 3 };

interface WitnessesJson {
  treeSize: number;
  quorum: number;
  witnesses: {
    name: string;
    cosignedSize: number | null;
    lagEntries: number;
    refusals: number;
    errors: number;
    alarm: { reason: string; status: number; eventIndex: number | null } | null;
  }[];
  quorumCheckpoint: { treeSize: number; note: string; witnesses: string[] } | null;
}

/** Polls `probe` until it returns a value (not undefined); fails naming `what` after many tries. */
async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 1500; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    last = v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what} (${JSON.stringify(last)})`);
}

async function appendSome(env: ServerEnv, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await env.log.append('AUDIT_EVENT', { resource: `r-${i}`, practitioner: 'p-1', contentHash: 'ab'.repeat(32) });
}

/** Cosignature lines of a note (those after the log's own signature), split per line with newlines. */
function signatureLines(note: string): string[] {
  return note
    .slice(note.indexOf('\n\n') + 2)
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => `${l}\n`);
}

describe('witnessing: one log, two witnesses on loopback', () => {
  let root: string;
  let env: ServerEnv;
  let base: string;
  const witnesses: TestWitness[] = [];
  /** Restarts witness `i` on its directory and port, trusting `logs`. */
  const restart = async (i: number, logs: readonly NoteVerifier[]) => {
    const w = witnesses[i]!;
    await w.close();
    witnesses[i] = await startTestWitness({ dataDir: w.dataDir, name: w.name, logs, port: w.port });
  };

  const api = async (): Promise<WitnessesJson> => {
    const res = await fetch(`${base}/api/v1/witnesses`, { headers: { authorization: `Bearer ${env.tokens.auditor}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as WitnessesJson;
  };
  const witnessNamed = async (name: string) => (await api()).witnesses.find((w) => w.name === name)!;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'custos-witnessing-'));
    // The witnesses trust the log's key, so they start once the log exists, before the app.
    env = await createServerEnv(
      {},
      {
        witnesses: async (dir) => {
          for (const name of ['witness.test/w1', 'witness.test/w2']) witnesses.push(await startTestWitness({ dataDir: mkdtempSync(join(root, 'w-')), name, logs: [dir.verifier] }));
          return { endpoints: witnesses.map((w) => ({ url: w.url, key: witnessKeyFromVkey(w.vkey) })), quorum: 2, retry: RETRY };
        },
      },
    );
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await env?.close();
    for (const w of witnesses) await w.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('collects cosignatures from both witnesses, verified, and the checkpoint reaches the quorum (2 of 2)', async () => {
    await appendSome(env, 5);
    const size = env.log.size;
    const j = await until('both witnesses to cosign the latest checkpoint', async () => {
      const s = await api();
      return s.quorumCheckpoint?.treeSize === env.log.size && s.witnesses.every((w) => w.lagEntries === 0) ? s : undefined;
    });
    assert.equal(j.quorum, 2);
    assert.ok(j.quorumCheckpoint!.treeSize >= size);
    for (const w of j.witnesses) {
      assert.equal(w.cosignedSize, env.log.size);
      assert.equal(w.alarm, null);
    }
    // The quorum checkpoint verifies under the log's key, and carries one valid cosignature per witness.
    const note = j.quorumCheckpoint!.note;
    assert.equal(openCheckpoint(note, [env.dir.verifier], env.dir.origin).treeSize, j.quorumCheckpoint!.treeSize);
    for (const id of witnesses)
      assert.ok(
        signatureLines(note).some((l) => id.key.verifies(note, l)),
        `a valid cosignature by ${id.name}`,
      );
    // As any verifier checks it: the K-of-N policy of src/core.
    const verdict = checkWitnessQuorum(note, { witnesses: witnesses.map((id) => parseCosignerVerifierKey(id.vkey)), quorum: 2 });
    assert.ok(verdict.ok);
    assert.equal(verdict.cosigned.length, 2);
    assert.deepEqual(verdict.invalid, []);
    // A cosignature by a key not configured does not count (a third, unknown witness).
    const stranger = cosignerIdentity('witness.test/w1');
    assert.ok(!signatureLines(note).some((l) => stranger.key.verifies(note, l)));
  });

  it('custos verify --witness: the quorum checkpoint and every saved checkpoint must carry the quorum', async () => {
    await appendSome(env, 3);
    await until('the quorum checkpoint to catch up', async () => ((await api()).quorumCheckpoint?.treeSize === env.log.size ? true : undefined));
    const dd = env.dir.dataDir;
    const keys = witnesses.flatMap((w) => ['--witness', w.vkey]);
    // The log's latest quorum checkpoint meets the 2-of-2 policy and is contained in the log.
    const ok = await callIn(dd, ['--json', 'verify', '--no-progress', ...keys]);
    assert.equal(ok.code, 0, ok.stderr);
    const okJson = JSON.parse(ok.stdout) as { ok: boolean; trustedCheckpoints: { file: string; ok: boolean }[] };
    assert.equal(okJson.ok, true);
    assert.deepEqual(
      okJson.trustedCheckpoints.map((t) => [t.file, t.ok]),
      [['(witness quorum)', true]],
    );
    // A witness that never cosigned: 3 of 3 cannot be met; the policy names what is missing.
    const stranger = cosignerIdentity('witness.test/w3');
    const short = await callIn(dd, ['--json', 'verify', '--no-progress', ...keys, '--witness', stranger.vkey]);
    assertError(short, EXIT.verification, 'WITNESS_QUORUM_NOT_MET', { stdoutAllowed: true });
    assert.match(short.stderr, /witness\.test\/w3/);
    // 2 of the 3 is met.
    assert.equal((await callIn(dd, ['verify', '--no-progress', ...keys, '--witness', stranger.vkey, '--quorum', '2'])).code, 0);
    // A saved checkpoint from `custos checkpoint` (the bare log signature, no cosignatures) does not
    // carry the quorum; the cosigned /checkpoint does.
    const bare = join(root, 'bare.note');
    assert.equal((await callIn(dd, ['checkpoint', '--save', bare])).code, 0);
    assertError(await callIn(dd, ['verify', '--no-progress', '--trusted-checkpoint', bare, ...keys]), EXIT.verification, 'WITNESS_QUORUM_NOT_MET', { stdoutAllowed: true });
    const cosigned = join(root, 'cosigned.note');
    writeFileSync(cosigned, await (await fetch(`${base}/checkpoint`)).text());
    const both = await callIn(dd, ['--json', 'verify', '--no-progress', '--trusted-checkpoint', cosigned, ...keys]);
    assert.equal(both.code, 0, both.stderr);
    // Usage: a quorum out of range, a log key given as a witness key, --witness with --entry.
    assertError(await callIn(dd, ['verify', ...keys, '--quorum', '3']), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callIn(dd, ['verify', '--witness', env.dir.verifierKey]), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callIn(dd, ['verify', '--entry', '0', ...keys]), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('/checkpoint serves the latest checkpoint with the cosignatures collected for it', async () => {
    const res = await fetch(`${base}/checkpoint`);
    assert.equal(res.status, 200);
    const note = await res.text();
    const cp = openCheckpoint(note, [env.dir.verifier], env.dir.origin);
    assert.equal(cp.treeSize, env.log.size);
    const lines = signatureLines(note);
    for (const id of witnesses)
      assert.ok(
        lines.some((l) => id.key.verifies(note, l)),
        `/checkpoint carries ${id.name}'s cosignature`,
      );
  });

  it('a witness stopped mid-run catches up when restarted on the same data directory', async () => {
    await witnesses[1]!.close();
    await appendSome(env, 3);
    // w1 keeps cosigning; w2 fails (counted, retried): the quorum checkpoint stays behind.
    const behind = await until('w2 to fail and w1 to cosign', async () => {
      const s = await api();
      const [a, b] = [s.witnesses[0]!, s.witnesses[1]!];
      return a.lagEntries === 0 && b.errors > 0 && b.lagEntries > 0 ? s : undefined;
    });
    assert.ok(behind.quorumCheckpoint!.treeSize < env.log.size, 'no quorum while w2 is down');
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${env.tokens.admin}` } })).text();
    assert.match(metrics, /custos_witness_errors_total\{witness="witness\.test\/w2"\} [1-9]/);
    assert.match(metrics, /custos_witness_lag_entries\{witness="witness\.test\/w2"\} [1-9]/);
    // Restarted on the same directory and port: it remembers its size and is sent a proof from it.
    await restart(1, [env.dir.verifier]);
    const caught = await until('w2 to catch up', async () => {
      const s = await api();
      return s.witnesses.every((w) => w.lagEntries === 0) && s.quorumCheckpoint?.treeSize === env.log.size ? s : undefined;
    });
    assert.equal(caught.witnesses[1]!.cosignedSize, env.log.size);
  });

  it('a witness that refuses raises the alarm: an event on the log, the metric and the API field; a success clears it', async () => {
    // w1 restarted with another key for this log's origin: no signature verifies, 403.
    await restart(0, [parseVerifierKey(formatVerifierKey(env.dir.origin, Buffer.alloc(32, 9)))]);
    await appendSome(env, 1);
    const refused = await until('the alarm on w1', async () => {
      const w = await witnessNamed('witness.test/w1');
      return w.alarm?.eventIndex != null ? w : undefined;
    });
    assert.equal(refused.alarm!.reason, 'REFUSED');
    assert.equal(refused.alarm!.status, 403);
    assert.ok(refused.refusals >= 1);
    // The event on the log: classified fields only (the witness's key name, codes and sizes).
    const entry = JSON.parse((await env.log.reader.getEntry(refused.alarm!.eventIndex!)).bytes.toString('utf8'));
    assert.equal(entry.type, 'WITNESS_ALARM');
    assert.deepEqual(Object.keys(entry.payload).sort(), ['attempts', 'checkpointSize', 'reason', 'status', 'witness', 'witnessSize']);
    assert.equal(entry.payload.witnessSize, refused.cosignedSize);
    assert.equal(entry.payload.witness, 'witness.test/w1');
    assert.equal(entry.payload.reason, 'REFUSED');
    assert.equal(entry.payload.status, 403);
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${env.tokens.admin}` } })).text();
    assert.match(metrics, /custos_witness_refusals_total\{witness="witness\.test\/w1"\} [1-9]/);
    assert.match(metrics, /custos_witness_alarm\{witness="witness\.test\/w1"\} 1/);
    // One event per episode: retries that are refused the same way write no more alarms.
    const more = await until('another refusal', async () => {
      const w = await witnessNamed('witness.test/w1');
      return w.refusals > refused.refusals ? w : undefined;
    });
    assert.equal(more.alarm!.eventIndex, refused.alarm!.eventIndex);
    // The witness comes back: the next cosignature clears the alarm.
    await restart(0, [env.dir.verifier]);
    await appendSome(env, 1);
    await until('w1 to recover', async () => {
      const w = await witnessNamed('witness.test/w1');
      return w.alarm === null && w.lagEntries === 0 ? w : undefined;
    });
    const after = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${env.tokens.admin}` } })).text();
    assert.match(after, /custos_witness_alarm\{witness="witness\.test\/w1"\} 0/);
  });
});

describe('witnessing: appends never wait for witnesses', () => {
  it('a witness that never answers does not delay appends', async () => {
    const id = cosignerIdentity('witness.test/hang');
    const w = await startHangingWitness();
    const env = await createServerEnv({ witnesses: { endpoints: [{ url: w.url, key: id.key }], retry: { ...RETRY, timeoutMs: 600_000 } } });
    try {
      // The collector's request is in flight and will not be answered...
      await until('the hanging request', async () => (w.requests >= 1 ? true : undefined));
      // ...and 50 appends, one after another, all complete meanwhile.
      const before = env.log.size;
      await appendSome(env, 50);
      assert.equal(env.log.size, before + 50);
      // Coalescing: still the one request (the witness will be sent the latest checkpoint, not every one).
      assert.equal(w.requests, 1);
      const res = await env.app.inject({ method: 'GET', url: '/api/v1/witnesses', headers: { authorization: `Bearer ${env.tokens.auditor}` } });
      const j = res.json() as WitnessesJson;
      assert.equal(j.witnesses[0]!.lagEntries, env.log.size);
      assert.equal(j.quorumCheckpoint, null);
    } finally {
      await env.close();
      await w.close();
    }
  });
});

describe('witnessing: a forked log is refused, and the refusal is an alarm', () => {
  it('another root at the same size: 409 after retrying from the witness size; a longer fork: 422; each an alarm on the log', async () => {
    const root = mkdtempSync(join(tmpdir(), 'custos-witness-fork-'));
    const dirA = join(root, 'a');
    const dirB = join(root, 'b');
    await initDataDir(dirA, { origin: 'fork.test/log' });
    const seed = await openLog(dirA);
    await appendSome({ log: seed.log } as ServerEnv, 3);
    await seed.log.close();
    await seed.dir.store.close();
    // The fork: a copy of the store (same key, same origin), then different entries on each side.
    cpSync(dirA, dirB, { recursive: true });
    const a = await openLog(dirA);
    const b = await openLog(dirB);
    const w = await startTestWitness({ dataDir: join(root, 'w'), name: 'witness.test/fork', logs: [a.dir.verifier] });
    const endpoints = [{ url: w.url, key: w.key }];
    const vocabulary = createVocabulary();
    const collectors: WitnessCollector[] = [];
    try {
      await a.log.append('AUDIT_EVENT', { resource: 'side-a', practitioner: 'p-1', contentHash: 'aa'.repeat(32) });
      await b.log.append('AUDIT_EVENT', { resource: 'side-b', practitioner: 'p-1', contentHash: 'bb'.repeat(32) });
      assert.equal(a.log.size, b.log.size);
      const ca = new WitnessCollector({ log: a.log, witnesses: endpoints, vocabulary, retry: RETRY });
      collectors.push(ca);
      await ca.start();
      await until('the witness to cosign log A', async () => (ca.status()[0]!.cosignedSize === a.log.size ? true : undefined));
      await ca.close();
      // Log B at the same size: 409 (the witness's size), retried from it, 409 again: another root.
      const cb = new WitnessCollector({ log: b.log, witnesses: endpoints, vocabulary, retry: RETRY });
      collectors.push(cb);
      await cb.start();
      // The alarm's own entry grows B, so after the 409 a consistency proof from the witness's size
      // cannot verify (422). The collector can move from one to the other between two polls, so
      // the alarms are read from the log itself, in order.
      const mismatch = await until('the 422 alarm', async () => {
        const al = cb.status()[0]!.alarm;
        return al?.status === 422 && al.eventIndex != null ? al : undefined;
      });
      assert.equal(mismatch.reason, 'REFUSED');
      const alarms: { index: number; payload: Record<string, unknown> }[] = [];
      for (let i = 0; i < b.log.size; i++) {
        const e = JSON.parse((await b.log.reader.getEntry(i)).bytes.toString('utf8')) as { type: string; payload: Record<string, unknown> };
        if (e.type === 'WITNESS_ALARM') alarms.push({ index: i, payload: e.payload });
      }
      const conflict = alarms.find((x) => x.payload['status'] === 409);
      assert.ok(conflict, 'a 409 alarm (another root at the witness size) is on log B');
      assert.deepEqual([conflict.payload['reason'], conflict.payload['witnessSize'], conflict.payload['witness']], ['REFUSED', a.log.size, 'witness.test/fork']);
      const refused = alarms.find((x) => x.index === mismatch.eventIndex);
      assert.ok(refused && refused.index > conflict.index, 'the 422 alarm comes after the 409 one');
      assert.equal(refused.payload['witness'], 'witness.test/fork');
      assert.equal(cb.status()[0]!.cosignedSize, null, 'nothing of log B was cosigned');
    } finally {
      for (const c of collectors) await c.close();
      await w.close();
      for (const x of [a, b]) {
        await x.log.close();
        await x.dir.store.close();
      }
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('serve --witness and --witness-quorum: validated before anything starts', () => {
  it('bad URL, bad key, quorum out of range, quorum without witnesses, duplicate names: exit 2 VALIDATION_FAILED naming the option', async () => {
    const root = mkdtempSync(join(tmpdir(), 'custos-witness-cli-'));
    const dir = join(root, 'log');
    const a = cosignerIdentity('witness.test/a').vkey;
    const b = cosignerIdentity('witness.test/b').vkey;
    // A log's note key (type 0x01) is not a cosignature key (type 0x04).
    const noteKey = formatVerifierKey('example.com/log', Buffer.alloc(32, 7));
    const cases: [string[], RegExp][] = [
      [['--witness', `ftp://127.0.0.1:1=${a}`], /--witness: .*not an http\(s\) URL/],
      [['--witness', `http://127.0.0.1:1/?q=1=${a}`], /--witness: /],
      [['--witness', `not a url=${a}`], /--witness: .*not an http\(s\) URL/],
      [['--witness', 'http://127.0.0.1:1'], /--witness: expected URL=VKEY/],
      [['--witness', 'http://127.0.0.1:1=garbage'], /--witness: malformed witness key/],
      [['--witness', `http://127.0.0.1:1=${noteKey}`], /--witness: malformed witness key: .*is not cosignature\/v1 \(0x04\)/],
      [['--witness', `http://127.0.0.1:1=${a.slice(0, -4)}AAA=`], /--witness: malformed witness key/],
      [['--witness', `http://127.0.0.1:1=${a}`, '--witness', `http://127.0.0.1:2=${b}`, '--witness-quorum', '3'], /--witness-quorum: must be an integer from 1 to the number of witnesses \(2\)/],
      [['--witness', `http://127.0.0.1:1=${a}`, '--witness-quorum', '0'], /--witness-quorum: /],
      [['--witness', `http://127.0.0.1:1=${a}`, '--witness-quorum', 'two'], /--witness-quorum: /],
      [['--witness-quorum', '1'], /--witness-quorum: needs at least one --witness/],
      [['--witness', `http://127.0.0.1:1=${a}`, '--witness', `http://127.0.0.1:2=${a}`], /--witness: two witnesses are named witness\.test\/a/],
    ];
    try {
      for (const [args, message] of cases) {
        const r = await callIn(dir, ['serve', '--port', '0', ...args]);
        assertError(r, EXIT.validation, 'VALIDATION_FAILED', { message });
      }
      assert.ok(!existsSync(dir), 'nothing is created when the options are refused');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
