/**
 * The witness (C2SP tlog-witness) over real HTTP on 127.0.0.1, fed by a real Custos log: it cosigns
 * what is consistent with what it cosigned before, answers everything else with the spec's status
 * codes, keeps its state across restarts, and never cosigns a fork. Then the CLI: `witness init`
 * in-process, `witness serve` as the real bin (the process and its signals are the point there).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { formatCheckpointBody } from '../src/core/checkpoint.js';
import { parseCosignerVerifierKey, verifyCosignatures, addCosignatures, type CosignerVerifier } from '../src/core/cosignature.js';
import { EMPTY_ROOT, sha256 } from '../src/core/hash.js';
import { CustosError } from '../src/core/errors.js';
import fc from 'fast-check';
import { formatSignerKey, parseSignerKey, parseVerifierKey, signNote, verifierKeyFromSignerKey, type NoteSigner, type NoteVerifier } from '../src/core/note.js';
import { TLOG_SIZE_CONTENT_TYPE, formatAddCheckpointRequest, parseAddCheckpointRequest, parseTlogSize } from '../src/core/tlog-witness.js';
import { loadSigner } from '../src/log/data-dir.js';
import { WITNESS_DB_FILE, WITNESS_KEY_FILE, initWitnessDir, openWitnessDir, type OpenWitness } from '../src/witness/data-dir.js';
import { createWitnessApp } from '../src/witness/server.js';
import { WitnessState } from '../src/witness/state.js';
import { BIN, EXIT, assertError, callCli, ensureBuilt, registerSecret } from './helpers/cli.js';
import { useTempRoot, type LogFixture } from './helpers/fixtures.js';

const root = useTempRoot('witness');
const ORIGIN = 'witness.test/log';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

interface Served {
  readonly url: string;
  readonly open: OpenWitness;
  readonly verifier: CosignerVerifier;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Opens the witness in `dir` for `logs` and serves it on 127.0.0.1, port 0. */
async function serveWitness(dir: string, logs: readonly NoteVerifier[], o: { rateLimitPerMinute?: number; bodyLimit?: number } = {}): Promise<Served> {
  const open = openWitnessDir(dir, logs);
  const app = await createWitnessApp({ witness: open.witness, logger: false, ...o });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
    open.close();
  };
  root.defer(close);
  return { url: `${address}/add-checkpoint`, open, verifier: parseCosignerVerifierKey(open.witness.verifierKey), app, close };
}

async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'text/plain' }): Promise<{ status: number; type: string; text: string }> {
  const r = await fetch(url, { method: 'POST', body, headers });
  return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() };
}

function errorCode(r: { text: string }): string | undefined {
  try {
    return (JSON.parse(r.text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** Appends `n` events and returns the checkpoint note covering them. */
async function grow(l: LogFixture, n: number): Promise<string> {
  let note = '';
  for (let i = 0; i < n; i++) note = (await l.log.append('AUDIT_EVENT', { resource: `r-${l.log.size}` })).checkpoint.note;
  return note;
}

async function proofBetween(l: LogFixture, oldSize: number, newSize: number): Promise<Buffer[]> {
  if (oldSize === 0 || oldSize === newSize) return [];
  return [...(await l.log.reader.consistencyProof(oldSize, newSize)).proof];
}

/** A checkpoint of another tree (its root), signed by `signer`: what a forked log shows. */
function forkedNote(signer: NoteSigner, treeSize: number, seed: string): string {
  return signNote(formatCheckpointBody({ origin: ORIGIN, treeSize, rootHash: sha256(Buffer.from(seed)) }), [signer]);
}

describe('the witness over HTTP, fed by a real Custos log', () => {
  let l: LogFixture;
  let logKey: NoteVerifier;
  let logSigner: NoteSigner;
  let dir: string;
  let w: Served;

  before(async () => {
    l = await root.openLog({ origin: ORIGIN });
    logKey = parseVerifierKey(l.dir.verifierKey);
    logSigner = loadSigner(l.dir);
    dir = root.next('witness');
    initWitnessDir(dir, 'witness.test/w1');
    w = await serveWitness(dir, [logKey]);
  });

  it('cosigns the first checkpoint (old 0, empty proof); the cosignature verifies', async () => {
    const note = await grow(l, 3);
    const r = await post(w.url, formatAddCheckpointRequest(0, [], note));
    assert.equal(r.status, 200, r.text);
    assert.match(r.type, /^text\/plain/);
    const report = verifyCosignatures(addCosignatures(note, r.text), [w.verifier]);
    assert.equal(report.verified.length, 1);
    assert.deepEqual(report.invalid, []);
    assert.ok(Math.abs(report.verified[0]!.timestamp - Date.now() / 1000) < 3600);
    assert.equal(w.open.witness.latest(ORIGIN)?.treeSize, 3);
  });

  it('cosigns a later checkpoint with a correct consistency proof, and the same one again', async () => {
    const note = await grow(l, 5);
    const r = await post(w.url, formatAddCheckpointRequest(3, await proofBetween(l, 3, 8), note));
    assert.equal(r.status, 200, r.text);
    assert.equal(verifyCosignatures(addCosignatures(note, r.text), [w.verifier]).verified.length, 1);
    const again = await post(w.url, formatAddCheckpointRequest(8, [], note));
    assert.equal(again.status, 200, again.text);
  });

  it('a stale old size: 409 with the size cosigned last, as text/x.tlog.size', async () => {
    const note = await grow(l, 1);
    for (const old of [0, 3, 9]) {
      const r = await post(w.url, formatAddCheckpointRequest(old, await proofBetween(l, old, 9), note));
      assert.equal(r.status, 409, `old ${old}: ${r.text}`);
      assert.equal(r.type, TLOG_SIZE_CONTENT_TYPE);
      assert.equal(r.text, '8\n');
      assert.equal(parseTlogSize(r.text), 8);
    }
    assert.equal(w.open.witness.latest(ORIGIN)?.treeSize, 8);
  });

  it('an unknown log key for a known origin: 403; an unknown origin: 404; never cosigned', async () => {
    const impostor = parseSignerKey(formatSignerKey(ORIGIN, Buffer.alloc(32, 0x66)));
    const forged = signNote(formatCheckpointBody({ origin: ORIGIN, treeSize: 9, rootHash: sha256(Buffer.from('x')) }), [impostor]);
    const r403 = await post(w.url, formatAddCheckpointRequest(8, [sha256(Buffer.from('p'))], forged));
    assert.equal(r403.status, 403, r403.text);
    assert.equal(errorCode(r403), 'WITNESS_CHECKPOINT_UNTRUSTED');
    // A note whose trusted signature was tampered with is no better.
    const real = (await l.log.reader.latestCheckpoint())!.note;
    const tampered = real.replace(/ (\S)(\S*)\n$/, (_m, c: string, rest: string) => ` ${c === 'A' ? 'B' : 'A'}${rest}\n`);
    assert.equal((await post(w.url, formatAddCheckpointRequest(8, [], tampered))).status, 403);
    const other = parseSignerKey(formatSignerKey('other.test/log', Buffer.alloc(32, 0x67)));
    const r404 = await post(w.url, formatAddCheckpointRequest(0, [], signNote(formatCheckpointBody({ origin: 'other.test/log', treeSize: 1, rootHash: sha256(Buffer.from('y')) }), [other])));
    assert.equal(r404.status, 404, r404.text);
    assert.equal(errorCode(r404), 'WITNESS_LOG_UNKNOWN');
    assert.equal(w.open.witness.latest(ORIGIN)?.treeSize, 8);
  });

  it('a consistency proof that does not verify: 422, not cosigned', async () => {
    const proof = await proofBetween(l, 8, 9);
    const bad = proof.map((p, i) => (i === 0 ? Buffer.from(p.map((b, j) => (j === 0 ? b ^ 1 : b))) : p));
    const note = (await l.log.reader.latestCheckpoint())!.note;
    const r = await post(w.url, formatAddCheckpointRequest(8, bad, note));
    assert.equal(r.status, 422, r.text);
    assert.equal(errorCode(r), 'CONSISTENCY_PROOF_INVALID');
    // A truncated proof, and a proof where none may be (between equal sizes), are no better.
    assert.equal((await post(w.url, formatAddCheckpointRequest(8, proof.slice(1), note))).status, 422);
    const at8 = (await l.log.reader.consistencyProof(3, 8)).newCheckpoint!.note;
    assert.equal((await post(w.url, formatAddCheckpointRequest(8, [sha256(Buffer.from('z'))], at8))).status, 422);
    assert.equal(w.open.witness.latest(ORIGIN)?.treeSize, 8);
  });

  it('a fork signed by the real log key: 409 at the same size (recorded), 422 beyond it; never cosigned', async () => {
    const sameSize = forkedNote(logSigner, 8, 'fork-8');
    const r = await post(w.url, formatAddCheckpointRequest(8, [], sameSize));
    assert.equal(r.status, 409, r.text);
    assert.equal(errorCode(r), 'WITNESS_FORK_DETECTED');
    assert.notEqual(r.type, TLOG_SIZE_CONTENT_TYPE);
    const forks = w.open.state.forks(ORIGIN);
    assert.equal(forks.length, 1);
    assert.equal(forks[0]!.note, sameSize);
    // Beyond the cosigned size: the real log's proof cannot join the forked root to it.
    const beyond = forkedNote(logSigner, 9, 'fork-9');
    const r2 = await post(w.url, formatAddCheckpointRequest(8, await proofBetween(l, 8, 9), beyond));
    assert.equal(r2.status, 422, r2.text);
    const latest = w.open.witness.latest(ORIGIN)!;
    assert.equal(latest.treeSize, 8);
    assert.equal(latest.note, (await l.log.reader.consistencyProof(3, 8)).newCheckpoint!.note);
    // The honest next checkpoint still goes through.
    const next = (await l.log.reader.latestCheckpoint())!.note;
    assert.equal((await post(w.url, formatAddCheckpointRequest(8, await proofBetween(l, 8, 9), next))).status, 200);
  });

  it('malformed bodies: 400 VALIDATION_FAILED', async () => {
    const note = (await l.log.reader.latestCheckpoint())!.note;
    const h = sha256(Buffer.from('h')).toString('base64');
    const cases: [string, string | Uint8Array][] = [
      ['empty', ''],
      ['no old line', note],
      ['old without size', `old\n\n${note}`],
      ['leading zero', `old 09\n\n${note}`],
      ['negative', `old -1\n\n${note}`],
      ['huge size', `old 99999999999999999\n\n${note}`],
      ['proof line not base64', `old 9\nnot base64!\n\n${note}`],
      ['proof hash of 31 bytes', `old 9\n${Buffer.alloc(31).toString('base64')}\n\n${note}`],
      // The last character of a 32-byte hash carries 2 padding bits: setting one is a non-canonical text of the same hash.
      ['non-canonical base64', `old 9\n${h.slice(0, 42)}${B64[B64.indexOf(h[42]!) ^ 1]}=\n\n${note}`],
      ['64 proof lines', `old 9\n${`${h}\n`.repeat(64)}\n${note}`],
      ['no empty line', `old 9\n${h}\n`],
      ['no checkpoint', 'old 9\n\n'],
      ['not a signed note', 'old 9\n\nwitness.test/log\n9\n'],
      ['malformed checkpoint body', `old 9\n\n${signNote('witness.test/log\nnine\nroot\n', [logSigner])}`],
      ['control character', `old 9\n\n${note.replace('\n', '\t\n')}`],
      ['old size above the checkpoint size', `old 10\n\n${note}`],
      ['invalid UTF-8', Buffer.concat([Buffer.from(`old 9\n\n${note.slice(0, 5)}`), Buffer.from([0xff, 0xfe]), Buffer.from(note.slice(5))])],
    ];
    for (const [what, body] of cases) {
      const r = await post(w.url, body);
      assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
      assert.equal(errorCode(r), 'VALIDATION_FAILED', what);
    }
    // No content type at all is accepted (the protocol prescribes none); an oversized body is 413.
    const r = await post(w.url, formatAddCheckpointRequest(9, [], note), {});
    assert.equal(r.status, 200, r.text);
    const big = await post(w.url, `old 9\n\n${note}${'x'.repeat(70_000)}`);
    assert.equal(big.status, 413);
    assert.equal(errorCode(big), 'BODY_TOO_LARGE');
    assert.equal((await fetch(w.url)).status, 404);
  });

  it('keeps its state across a restart', async () => {
    await w.close();
    w = await serveWitness(dir, [logKey]);
    const note = await grow(l, 2);
    const stale = await post(w.url, formatAddCheckpointRequest(0, [], note));
    assert.equal(stale.status, 409);
    assert.equal(stale.text, '9\n');
    const r = await post(w.url, formatAddCheckpointRequest(9, await proofBetween(l, 9, 11), note));
    assert.equal(r.status, 200, r.text);
    assert.equal(verifyCosignatures(addCosignatures(note, r.text), [w.verifier]).verified.length, 1);
    assert.equal(w.open.state.forks(ORIGIN).length, 1, 'the fork evidence survives too');
  });

  it('rate limit per log: the log’s budget spent gives 429; requests naming no known log count against the address', async () => {
    const d = root.next('witness-limited');
    initWitnessDir(d, 'witness.test/limited');
    const limited = await serveWitness(d, [logKey], { rateLimitPerMinute: 2 });
    const note = (await l.log.reader.latestCheckpoint())!.note;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(limited.url, formatAddCheckpointRequest(0, [], note))).status);
    assert.deepEqual(statuses, [200, 409, 429]);
    const r = await post(limited.url, formatAddCheckpointRequest(0, [], note));
    assert.equal(errorCode(r), 'RATE_LIMITED');
    // Another bucket: a body naming no configured log is still answered.
    assert.equal((await post(limited.url, 'old 0\n\nunknown.test/log\n1\n')).status, 400);
  });
});

describe('the witness without HTTP', () => {
  it('an empty log: size 0 with the empty root is cosigned, then size 0 with another root is a fork', async () => {
    const signer = parseSignerKey(formatSignerKey(ORIGIN, Buffer.alloc(32, 0x21)));
    const d = root.next('witness-empty');
    initWitnessDir(d, 'witness.test/empty');
    const w = openWitnessDir(d, [parseVerifierKey(verifierKeyFromSignerKey(formatSignerKey(ORIGIN, Buffer.alloc(32, 0x21))))]);
    try {
      const empty = signNote(formatCheckpointBody({ origin: ORIGIN, treeSize: 0, rootHash: EMPTY_ROOT }), [signer]);
      assert.match(w.witness.addCheckpoint(formatAddCheckpointRequest(0, [], empty)).body, /^\u2014 witness\.test\/empty /);
      assert.equal(w.witness.latest(ORIGIN)?.treeSize, 0);
      assert.throws(
        () => w.witness.addCheckpoint(formatAddCheckpointRequest(0, [], forkedNote(signer, 0, 'not empty'))),
        (e: unknown) => e instanceof CustosError && e.code === 'WITNESS_FORK_DETECTED',
      );
      // From size 0 any first tree is consistent, with an empty proof only.
      const one = signNote(formatCheckpointBody({ origin: ORIGIN, treeSize: 1, rootHash: sha256(Buffer.from('leaf')) }), [signer]);
      assert.throws(
        () => w.witness.addCheckpoint(formatAddCheckpointRequest(0, [sha256(Buffer.from('p'))], one)),
        (e: unknown) => e instanceof CustosError && e.code === 'CONSISTENCY_PROOF_INVALID',
      );
      w.witness.addCheckpoint(formatAddCheckpointRequest(0, [], one));
      assert.equal(w.witness.latest(ORIGIN)?.treeSize, 1);
    } finally {
      w.close();
    }
  });

  it('fuzz: a mutated request is refused with a stable code, or cosigns only a checkpoint the log signed consistently', async () => {
    const l = await root.openLog({ origin: ORIGIN });
    const notes = [await grow(l, 3), await grow(l, 4)];
    const d = root.next('witness-fuzz');
    initWitnessDir(d, 'witness.test/fuzz');
    const w = openWitnessDir(d, [parseVerifierKey(l.dir.verifierKey)]);
    try {
      w.witness.addCheckpoint(formatAddCheckpointRequest(0, [], notes[0]!));
      const valid = formatAddCheckpointRequest(3, await proofBetween(l, 3, 7), notes[1]!);
      const codes = new Set(['VALIDATION_FAILED', 'WITNESS_LOG_UNKNOWN', 'WITNESS_CHECKPOINT_UNTRUSTED', 'WITNESS_OLD_SIZE_MISMATCH', 'WITNESS_FORK_DETECTED', 'CONSISTENCY_PROOF_INVALID']);
      const roots = new Map([
        [3, (await l.log.reader.consistencyProof(3, 7)).oldRoot.toString('hex')],
        [7, (await l.log.reader.consistencyProof(3, 7)).newRoot.toString('hex')],
      ]);
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.nat(valid.length - 1), fc.constantFrom('delete', 'insert', 'replace'), fc.string({ maxLength: 3, unit: 'binary' })), { minLength: 1, maxLength: 4 }),
          (edits) => {
            let body = valid;
            for (const [at, op, text] of edits) {
              const i = Math.min(at, body.length);
              body = op === 'delete' ? body.slice(0, i) + body.slice(i + 1) : op === 'insert' ? body.slice(0, i) + text + body.slice(i) : body.slice(0, i) + text + body.slice(i + 1);
            }
            try {
              w.witness.addCheckpoint(body);
            } catch (e) {
              assert.ok(e instanceof CustosError && codes.has(e.code), `unexpected ${String(e)}`);
            }
            const latest = w.witness.latest(ORIGIN)!;
            assert.equal(latest.rootHash.toString('hex'), roots.get(latest.treeSize), 'the cosigned state is always a checkpoint of the real log');
          },
        ),
        { numRuns: 400, seed: 11 },
      );
    } finally {
      w.close();
    }
  });
});

describe('witness state', () => {
  it('compare-and-swap: of two writers on one file, the one checking stale state does not advance', () => {
    const path = join(root.next('state'), WITNESS_DB_FILE);
    mkdirSync(join(path, '..'));
    const a = WitnessState.open(path);
    const b = WitnessState.open(path);
    try {
      const r1 = sha256(Buffer.from('1'));
      const r2 = sha256(Buffer.from('2'));
      assert.equal(a.advance(ORIGIN, undefined, { treeSize: 1, rootHash: r1, note: 'n1' }, 1), true);
      assert.equal(b.advance(ORIGIN, undefined, { treeSize: 5, rootHash: r2, note: 'n5' }, 2), false, 'a second first write loses');
      const seen = b.get(ORIGIN)!;
      assert.equal(a.advance(ORIGIN, seen, { treeSize: 3, rootHash: r2, note: 'n3' }, 3), true);
      assert.equal(b.advance(ORIGIN, seen, { treeSize: 5, rootHash: r2, note: 'n5' }, 4), false, 'checked against size 1, which is gone');
      assert.equal(b.get(ORIGIN)!.treeSize, 3);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('custos witness (CLI)', () => {
  before(() => ensureBuilt());

  it('init creates the key (0600, dir 0700) and prints a type 0x04 cosigner key; refuses a non-empty directory', async () => {
    const d = root.next('cli-witness');
    const r = await callCli(['witness', 'init', '--data-dir', d, '--name', 'witness.example.org/w1']);
    assert.equal(r.code, 0, r.stderr);
    registerSecret(readFileSync(join(d, WITNESS_KEY_FILE), 'utf8'));
    const v = parseCosignerVerifierKey(r.stdout.trim());
    assert.equal(v.name, 'witness.example.org/w1');
    assert.equal(readFileSync(join(d, 'witness.pub'), 'utf8').trim(), r.stdout.trim());
    assert.equal(statSync(d).mode & 0o777, 0o700);
    assert.equal(statSync(join(d, WITNESS_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(join(d, WITNESS_DB_FILE)).mode & 0o777, 0o600);
    assertError(await callCli(['witness', 'init', '--data-dir', d, '--name', 'witness.example.org/w1']), EXIT.conflict, 'DATA_DIR_EXISTS');
    assertError(await callCli(['witness', 'init', '--data-dir', root.next('cli-bad'), '--name', 'has space']), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callCli(['witness', 'init', '--name', 'w.test/w']), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('serve refuses a cosigner key as a log key and a witness key readable by others', async () => {
    const d = root.next('cli-witness');
    const init = await callCli(['witness', 'init', '--data-dir', d, '--name', 'witness.example.org/w2']);
    assertError(await callCli(['witness', 'serve', '--data-dir', d, '--port', '0', '--log', init.stdout.trim()]), EXIT.verification, 'KEY_MALFORMED');
    const logKey = verifierKeyFromSignerKey(formatSignerKey(ORIGIN, Buffer.alloc(32, 3)));
    writeFileSync(join(d, 'keys.txt'), `${logKey}\n`);
    const { chmodSync } = await import('node:fs');
    chmodSync(join(d, WITNESS_KEY_FILE), 0o644);
    assertError(await callCli(['witness', 'serve', '--data-dir', d, '--port', '0', '--log', join(d, 'keys.txt')]), EXIT.validation, 'KEY_PERMISSIONS');
  });

  it('serve (the real bin): cosigns over HTTP, stops on SIGTERM with exit 0, and the state is on disk', async () => {
    const l = await root.openLog({ origin: ORIGIN });
    const note = await grow(l, 2);
    const d = root.next('cli-witness');
    const init = await callCli(['witness', 'init', '--data-dir', d, '--name', 'witness.example.org/w3']);
    const verifier = parseCosignerVerifierKey(init.stdout.trim());
    const child = spawn(process.execPath, [BIN, 'witness', 'serve', '--data-dir', d, '--port', '0', '--log', l.dir.verifierKey], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString('utf8');
        const m = /add-checkpoint:\s+(\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`witness serve exited early: ${out}`)));
    });
    try {
      assert.match(out, new RegExp(`verifier key:\\s+${init.stdout.trim().replace(/[+/]/g, '\\$&')}`));
      const r = await post(url, formatAddCheckpointRequest(0, [], note));
      assert.equal(r.status, 200, r.text);
      assert.equal(verifyCosignatures(addCosignatures(note, r.text), [verifier]).verified.length, 1);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    const state = WitnessState.open(join(d, WITNESS_DB_FILE));
    try {
      assert.equal(state.get(ORIGIN)?.treeSize, 2);
    } finally {
      state.close();
    }
  });
});

describe('tlog-witness request format', () => {
  it('format and parse round trip', () => {
    const proof = [sha256(Buffer.from('a')), sha256(Buffer.from('b'))];
    const body = formatAddCheckpointRequest(5, proof, 'o\n9\nr\n\n\u2014 o sig\n');
    assert.equal(body, `old 5\n${proof[0]!.toString('base64')}\n${proof[1]!.toString('base64')}\n\no\n9\nr\n\n\u2014 o sig\n`);
    const r = parseAddCheckpointRequest(body);
    assert.equal(r.oldSize, 5);
    assert.deepEqual(r.proof, proof);
    assert.equal(r.note, 'o\n9\nr\n\n\u2014 o sig\n');
  });
});
