/**
 * Federated learning rounds (issue 14), end to end on fresh SQLite logs:
 * - through the built CLI (in process, `callIn`): site keys (`fl site keygen`, the private key only in
 *   its file), registration and retirement, signatures made at the site (`fl sign`), rounds from a
 *   round file (`fl round`), each refusal (unregistered site, bad signature, out of order, retired
 *   site, wrong ε, a round after the final one) exiting with its code and leaving exactly one
 *   FL_ROUND_REFUSED entry and nothing else, the DP running total, the final round's version and its
 *   model spec document (`custos verify` passes), `fl rounds`, `simulate --fl`;
 * - over HTTP (the real server in process): the same routes with the credential's actor, the
 *   refusals with their statuses, and the permissions (fl:sites, fl:coordinate, fl:read).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { accountRound, flUpdateMessage } from '../src/core/federated.js';
import { decodeEntry } from '../src/core/entry.js';
import { toBase64 } from '../src/core/hash.js';
import { formatSignerKey, parseSignerKey, verifierKeyFromSignerKey } from '../src/core/note.js';
import { DEFAULT_ROLES } from '../src/core/vocabulary.js';
import { assertError, callCli, callIn, ensureBuilt, EXIT, makeTempDir, okJson } from './helpers/cli.js';
import { createServerEnv, SETUP_ACTOR, type ServerEnv } from './helpers/server-env.js';
import { useTempRoot } from './helpers/fixtures.js';
import { FlRoundRefusedError } from '../src/service/governance.js';
import { hasCode } from '../src/core/errors.js';

const COORD = ['--actor', 'coord-1', '--actor-role', 'fl_coordinator'];
const ENGINEER = ['--actor', 'eng-7', '--actor-role', 'ml_engineer'];
const hex = (c: string) => c.repeat(64);
const DP = { clipNorm: 1, noiseMultiplier: 1.1, delta: 1e-5 };

interface Entry {
  index: number;
  type: string;
  payload: Record<string, unknown>;
}
interface SignedUpdate {
  site: string;
  update: string;
  signature: string;
}

describe('custos fl (CLI)', () => {
  let tmp: { path: string; cleanup(): void };
  let dir = '';
  let origin = '';
  const file = (name: string) => join(tmp.path, name);
  const cli = (args: readonly string[]) => callIn(dir, args, { cwd: tmp.path });
  const size = async (): Promise<number> => okJson<{ entries: number }>(await cli(['--json', 'stats'])).entries;
  const entriesFrom = async (from: number): Promise<Entry[]> => okJson<Entry[]>(await cli(['--json', 'list', '--oldest-first', '--limit', '1000'])).filter((e) => e.index >= from);
  const sign = async (key: string, round: number, update: string, line = 'derm-line'): Promise<SignedUpdate> => {
    const r = okJson<SignedUpdate & { log: string; line: string; round: number }>(
      await cli(['--json', 'fl', 'sign', '--site-key', key, '--line', line, '--round', String(round), '--update-digest', update]),
    );
    // Without --log, the origin of the data directory.
    assert.deepEqual([r.log, r.line, r.round], [origin, line, round]);
    return { site: r.site, update: r.update, signature: r.signature };
  };
  const round = async (name: string, body: Record<string, unknown>, actor = COORD) => {
    writeFileSync(file(name), JSON.stringify(body));
    return cli(['--json', 'fl', 'round', name, ...actor]);
  };
  // A refusal: the exit code and error code, and exactly one new entry, FL_ROUND_REFUSED with that reason.
  const refused = async (name: string, body: Record<string, unknown>, exit: number, code: string, site?: string) => {
    const before = await size();
    const r = await round(name, body);
    assertError(r, exit, code, { message: /FL_ROUND_REFUSED, entry \d+/ });
    const added = await entriesFrom(before);
    assert.equal(added.length, 1, `${code}: one entry`);
    assert.equal(added[0]!.type, 'FL_ROUND_REFUSED');
    assert.deepEqual(added[0]!.payload, { line: body['line'], round: body['round'], reason: code, ...(site ? { site } : {}), actor: 'coord-1', role: 'fl_coordinator' });
  };

  before(async () => {
    ensureBuilt();
    tmp = makeTempDir('custos-cli-fl-');
    dir = join(tmp.path, 'log');
    origin = okJson<{ origin: string }>(await cli(['--json', 'init'])).origin;
  });
  after(() => tmp?.cleanup());

  let keyA = '';
  let keyB = '';
  it('fl site keygen: the private key goes to its file (0600), only the verifier key is printed; an existing file is never overwritten', async () => {
    for (const s of ['site-a', 'site-b', 'site-c']) {
      const r = okJson<{ site: string; key: string; keyFile: string }>(await cli(['--json', 'fl', 'site', 'keygen', '--site', s, '--out', `${s}.key`]));
      assert.match(r.key, new RegExp(`^${s}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}$`));
      const skey = readFileSync(file(`${s}.key`), 'utf8').trim();
      assert.match(skey, /^PRIVATE\+KEY\+/);
      assert.equal(verifierKeyFromSignerKey(skey), r.key);
      assert.equal(statSync(file(`${s}.key`)).mode & 0o777, 0o600);
      if (s === 'site-a') keyA = r.key;
      if (s === 'site-b') keyB = r.key;
    }
    assertError(await cli(['fl', 'site', 'keygen', '--site', 'site-a', '--out', 'site-a.key']), EXIT.validation, 'FILE_UNREADABLE');
    assertError(await cli(['fl', 'site', 'keygen', '--site', 'Site A', '--out', 'x.key']), EXIT.validation, 'VALIDATION_FAILED');
  });

  it('fl site register: FL_SITE_REGISTERED with the public key; refusals write nothing', async () => {
    const a = okJson<{ site: { site: string; keyHash: string; status: string }; event: { index: number } }>(
      await cli(['--json', 'fl', 'site', 'register', '--site', 'site-a', '--key', keyA, ...COORD]),
    );
    assert.deepEqual([a.site.site, a.site.status], ['site-a', 'active']);
    // The key may also be given as a file holding it.
    writeFileSync(file('site-b.pub'), `${keyB}\n`);
    okJson(await cli(['--json', 'fl', 'site', 'register', '--site', 'site-b', '--key', 'site-b.pub', ...COORD]));
    const n = await size();
    assertError(await cli(['fl', 'site', 'register', '--site', 'site-a', '--key', keyA, ...COORD]), EXIT.conflict, 'FL_SITE_EXISTS');
    assertError(await cli(['fl', 'site', 'register', '--site', 'site-z', '--key', keyA, ...COORD]), EXIT.validation, 'VALIDATION_FAILED', { message: /named site-a/ });
    assertError(await cli(['fl', 'site', 'register', '--site', 'site-c', '--key', 'site-c+00000000+AAAA', ...COORD]), EXIT.validation, 'VALIDATION_FAILED');
    // Permission: the ML engineer may read sites, not register them.
    assertError(await cli(['fl', 'site', 'register', '--site', 'site-c', '--key', keyA, ...ENGINEER]), EXIT.validation, 'VALIDATION_FAILED', { message: /lacks fl:sites/ });
    assert.equal(await size(), n);
    const e = (await entriesFrom(a.event.index))[0]!;
    assert.equal(e.type, 'FL_SITE_REGISTERED');
    assert.deepEqual(Object.keys(e.payload).sort(), ['actor', 'keyHash', 'publicKey', 'role', 'site']);
    const list = okJson<{ sites: { site: string; status: string }[] }>(await cli(['--json', 'fl', 'site', 'list']));
    assert.deepEqual(
      list.sites.map((s) => s.site),
      ['site-a', 'site-b'],
    );
  });

  const U = { a1: hex('a'), b1: hex('b'), a2: hex('c'), b2: hex('d'), c2: hex('e'), a3: hex('f') };
  let epsilon1 = 0;

  it('fl round: a good round with DP is recorded as FL_ROUND with the accountant\u2019s figures', async () => {
    const sites = [await sign('site-a.key', 1, U.a1), await sign('site-b.key', 1, U.b1)];
    const r = okJson<{ round: { round: number; dp: { rho: number; rhoTotal: number; epsilon: number } }; event: { index: number } }>(
      await round('r1.json', { line: 'derm-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1'), dp: DP }),
    );
    const expected = accountRound(0, DP);
    assert.deepEqual(r.round.dp, { ...DP, ...expected });
    epsilon1 = expected.epsilon;
    const e = (await entriesFrom(r.event.index))[0]!;
    assert.equal(e.type, 'FL_ROUND');
    assert.deepEqual(e.payload['sites'], sites);
    assert.equal(e.payload['aggregation'], 'fedavg');
    assert.equal(e.payload['globalModel'], hex('1'));
  });

  it('fl sign --update-file: the digest of the file, streamed', async () => {
    writeFileSync(file('update.bin'), 'weights delta');
    const r = okJson<SignedUpdate>(await cli(['--json', 'fl', 'sign', '--site-key', 'site-a.key', '--line', 'derm-line', '--round', '2', '--update-file', 'update.bin']));
    assert.equal(r.update, createHash('sha256').update('weights delta').digest('hex'));
    assert.equal(r.signature, (await sign('site-a.key', 2, r.update)).signature);
    assertError(await cli(['fl', 'sign', '--site-key', 'site-a.key', '--line', 'derm-line', '--round', '2']), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await cli(['fl', 'sign', '--site-key', 'nope.key', '--line', 'derm-line', '--round', '2', '--update-digest', U.a2]), EXIT.validation, 'FILE_UNREADABLE');
  });

  it('refuses a round naming an unregistered site: FL_SITE_UNKNOWN (exit 3), one FL_ROUND_REFUSED and nothing else', async () => {
    const sites = [await sign('site-a.key', 2, U.a2), await sign('site-c.key', 2, U.c2)];
    await refused('r2-unknown.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites, globalModel: hex('2'), dp: DP }, EXIT.notFound, 'FL_SITE_UNKNOWN', 'site-c');
  });

  it('refuses a signature that does not verify: FL_SIGNATURE_INVALID (exit 4), one FL_ROUND_REFUSED and nothing else', async () => {
    // site-b's update signed with site-c's key, and site-b's signature over another digest.
    const forged = { ...(await sign('site-c.key', 2, U.b2)), site: 'site-b' };
    await refused(
      'r2-forged.json',
      { line: 'derm-line', round: 2, aggregation: 'fedavg', sites: [await sign('site-a.key', 2, U.a2), forged], globalModel: hex('2'), dp: DP },
      EXIT.verification,
      'FL_SIGNATURE_INVALID',
      'site-b',
    );
    const swapped = { ...(await sign('site-b.key', 2, U.b2)), update: hex('9') };
    await refused('r2-swapped.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites: [swapped], globalModel: hex('2'), dp: DP }, EXIT.verification, 'FL_SIGNATURE_INVALID', 'site-b');
    // A signature for round 1 replayed in round 2.
    const replay = await sign('site-b.key', 1, U.b2);
    await refused('r2-replay.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites: [replay], globalModel: hex('2'), dp: DP }, EXIT.verification, 'FL_SIGNATURE_INVALID', 'site-b');
  });

  it('refuses a signature made for another log (same site key, line, round and update): FL_SIGNATURE_INVALID, one FL_ROUND_REFUSED', async () => {
    // site-b enrolled with a second deployment that also runs a line named derm-line: its signature
    // there names that log's origin, so it cannot be replayed into this log's round.
    const args = (log: string) => ['--json', 'fl', 'sign', '--site-key', 'site-b.key', '--log', log, '--line', 'derm-line', '--round', '2', '--update-digest', U.b2];
    const elsewhere = okJson<SignedUpdate & { log: string }>(await cli(args('other.example/custos-log')));
    assert.equal(elsewhere.log, 'other.example/custos-log');
    const replayed = { site: elsewhere.site, update: elsewhere.update, signature: elsewhere.signature };
    await refused('r2-other-log.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites: [replayed], globalModel: hex('2'), dp: DP }, EXIT.verification, 'FL_SIGNATURE_INVALID', 'site-b');
    // --log with this log's origin signs exactly what the data directory's origin gives, with no data directory at all.
    const here = okJson<SignedUpdate>(await callCli(args(origin), { cwd: tmp.path }));
    assert.equal(here.signature, (await sign('site-b.key', 2, U.b2)).signature);
    assert.notEqual(here.signature, elsewhere.signature);
  });

  it("fl sign: --log must be one line; without --log it needs the log's data directory (nothing signed)", async () => {
    const base = ['fl', 'sign', '--site-key', 'site-a.key', '--line', 'derm-line', '--round', '2', '--update-digest', U.a2];
    assertError(await cli([...base, '--log', `${origin}\nline=x`]), EXIT.validation, 'VALIDATION_FAILED', { message: /--log/ });
    assertError(await cli([...base, '--log', '']), EXIT.validation, 'VALIDATION_FAILED', { message: /--log/ });
    assertError(await callCli(['--data-dir', join(tmp.path, 'no-such-log'), ...base], { cwd: tmp.path }), EXIT.validation, 'VALIDATION_FAILED', { message: /--log ORIGIN/ });
  });

  it('refuses a round number not above the line\u2019s last: FL_ROUND_OUT_OF_ORDER (exit 5)', async () => {
    const sites = [await sign('site-a.key', 1, U.a1)];
    await refused('r1-again.json', { line: 'derm-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1'), dp: DP }, EXIT.conflict, 'FL_ROUND_OUT_OF_ORDER');
  });

  it('refuses a stated ε that is not the accountant\u2019s, and a round without DP on a DP line', async () => {
    const sites = [await sign('site-a.key', 2, U.a2), await sign('site-b.key', 2, U.b2)];
    await refused(
      'r2-eps.json',
      { line: 'derm-line', round: 2, aggregation: 'fedavg', sites, globalModel: hex('2'), dp: { ...DP, epsilon: epsilon1 } },
      EXIT.verification,
      'FL_DP_ACCOUNTING_MISMATCH',
    );
    await refused('r2-nodp.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites, globalModel: hex('2') }, EXIT.conflict, 'FL_DP_MISMATCH');
    // The line's δ is fixed by its first DP round: a later round cannot state another (a larger δ
    // would report a smaller running ε for the same ρ), even with the accountant's ε at that δ.
    const at = (delta: number) => ({ ...DP, delta, epsilon: accountRound(accountRound(0, DP).rhoTotal, { ...DP, delta }).epsilon });
    await refused('r2-delta.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites, globalModel: hex('2'), dp: at(0.01) }, EXIT.conflict, 'FL_DP_MISMATCH');
    await refused('r2-delta-small.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites, globalModel: hex('2'), dp: at(1e-9) }, EXIT.conflict, 'FL_DP_MISMATCH');
  });

  it('records round 2 with the running total (stated ε checked), then refuses a retired site', async () => {
    const sites = [await sign('site-a.key', 2, U.a2), await sign('site-b.key', 2, U.b2)];
    const stated = accountRound(accountRound(0, DP).rhoTotal, DP).epsilon;
    const r = okJson<{ round: { dp: { rhoTotal: number; epsilon: number } } }>(
      await round('r2.json', { line: 'derm-line', round: 2, aggregation: 'fedavg', sites, globalModel: hex('2'), dp: { ...DP, epsilon: stated } }),
    );
    assert.equal(r.round.dp.rhoTotal, 2 * accountRound(0, DP).rho);
    assert.equal(r.round.dp.epsilon, stated);
    assert.ok(r.round.dp.epsilon > epsilon1);
    const retired = okJson<{ site: { status: string }; event: { index: number } }>(await cli(['--json', 'fl', 'site', 'retire', 'site-b', ...COORD]));
    assert.equal(retired.site.status, 'retired');
    assertError(await cli(['fl', 'site', 'retire', 'site-b', ...COORD]), EXIT.conflict, 'FL_SITE_INACTIVE');
    assertError(await cli(['fl', 'site', 'retire', 'site-q', ...COORD]), EXIT.notFound, 'FL_SITE_UNKNOWN');
    const late = [await sign('site-a.key', 3, U.a3), await sign('site-b.key', 3, U.b2)];
    await refused('r3-retired.json', { line: 'derm-line', round: 3, aggregation: 'fedavg', sites: late, globalModel: hex('3'), dp: DP }, EXIT.conflict, 'FL_SITE_INACTIVE', 'site-b');
  });

  it('a final round names the line\u2019s version (weights = the global model) and commits its model spec; the line is then closed', async () => {
    const sites = [await sign('site-a.key', 5, U.a3)];
    const body = {
      line: 'derm-line',
      round: 5,
      aggregation: 'fedavg',
      sites,
      globalModel: hex('5'),
      dp: DP,
      final: true,
      version: { model: 'derm-fl', version: '2.0.0', spec: { framework: 'pytorch', classes: 7 } },
    };
    const r = okJson<{ round: { final: boolean; version: { model: string; version: string; weights: string }; modelSpec: string }; event: { index: number } }>(await round('r5.json', body));
    assert.equal(r.round.final, true);
    assert.deepEqual(r.round.version, { model: 'derm-fl', version: '2.0.0', weights: hex('5') });
    const e = (await entriesFrom(r.event.index))[0]!;
    assert.deepEqual(e.payload['version'], { model: 'derm-fl', version: '2.0.0', weights: hex('5') });
    assert.equal((e.payload['documents'] as Record<string, string>)['modelSpec'], r.round.modelSpec);
    await refused('r6.json', { line: 'derm-line', round: 6, aggregation: 'fedavg', sites: [await sign('site-a.key', 6, U.a3)], globalModel: hex('6'), dp: DP }, EXIT.conflict, 'FL_LINE_CLOSED');
    // The off-ledger model spec document is checked like every other document.
    const v = okJson<{ ok: boolean; documents: { ok: boolean } }>(await cli(['--json', 'verify']));
    assert.equal(v.ok, true);
  });

  it('a malformed round file or a role without fl:coordinate writes nothing', async () => {
    const n = await size();
    const sites = [await sign('site-a.key', 1, U.a1, 'other-line')];
    for (const [name, body] of [
      ['bad-1.json', { line: 'other-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1'), note: 'free text' }],
      ['bad-2.json', { line: 'other-line', round: 1, aggregation: 'fedavg', sites: [...sites, ...sites], globalModel: hex('1') }],
      ['bad-3.json', { line: 'other-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1'), final: true }],
      // δ is capped at 0.01: a larger one would make the reported ε small and the guarantee void.
      ['bad-5.json', { line: 'other-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1'), dp: { ...DP, delta: 0.5 } }],
      ['bad-6.json', { line: 'other-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1'), dp: { ...DP, delta: 0.0100001 } }],
    ] as const) {
      assertError(await round(name, body), EXIT.validation, 'VALIDATION_FAILED');
    }
    assertError(await round('bad-4.json', { line: 'other-line', round: 1, aggregation: 'fedavg', sites, globalModel: hex('1') }, ENGINEER), EXIT.validation, 'VALIDATION_FAILED', {
      message: /lacks fl:coordinate/,
    });
    assert.equal(await size(), n);
  });

  it('custos append refuses the FL event types (only the service writes them)', async () => {
    const n = await size();
    writeFileSync(file('fake.json'), JSON.stringify({ line: 'derm-line', round: 99, reason: 'FL_SITE_UNKNOWN', actor: 'x', role: 'fl_coordinator' }));
    for (const type of ['FL_SITE_REGISTERED', 'FL_SITE_RETIRED', 'FL_ROUND', 'FL_ROUND_REFUSED']) {
      assertError(await cli(['append', '--type', type, '--payload-file', 'fake.json']), EXIT.validation, 'VALIDATION_FAILED', { message: /reserved/ });
    }
    assert.equal(await size(), n);
  });

  it('fl rounds LINE: the rounds, the refusals and the running ε', async () => {
    const l = okJson<{ rounds: { round: number }[]; refusals: { reason: string; site?: string }[]; lastRound: number; epsilon: number; version: { version: string } }>(
      await cli(['--json', 'fl', 'rounds', 'derm-line']),
    );
    assert.deepEqual(
      l.rounds.map((r) => r.round),
      [1, 2, 5],
    );
    assert.deepEqual(
      l.refusals.map((r) => r.reason),
      [
        'FL_SITE_UNKNOWN',
        'FL_SIGNATURE_INVALID',
        'FL_SIGNATURE_INVALID',
        'FL_SIGNATURE_INVALID',
        // the signature made for another log
        'FL_SIGNATURE_INVALID',
        'FL_ROUND_OUT_OF_ORDER',
        'FL_DP_ACCOUNTING_MISMATCH',
        'FL_DP_MISMATCH',
        'FL_DP_MISMATCH',
        'FL_DP_MISMATCH',
        'FL_SITE_INACTIVE',
        'FL_LINE_CLOSED',
      ],
    );
    assert.equal(l.lastRound, 5);
    assert.equal(l.epsilon, accountRound(accountRound(accountRound(0, DP).rhoTotal, DP).rhoTotal, DP).epsilon);
    assert.equal(l.version.version, '2.0.0');
    const text = await cli(['fl', 'rounds', 'derm-line']);
    assert.match(text.stdout, /^line derm-line: 3 rounds, 12 refused, last round 5, .*ended in derm-fl 2\.0\.0/);
    const lines = okJson<{ lines: { line: string; rounds: number; refusals: number; lastRound: number; closed: boolean }[] }>(await cli(['--json', 'fl', 'lines']));
    assert.deepEqual(
      lines.lines.find((x) => x.line === 'derm-line'),
      { line: 'derm-line', rounds: 3, refusals: 12, lastRound: 5, closed: true },
    );
    assert.match((await cli(['fl', 'lines'])).stdout, /^derm-line {2}3 rounds {2}12 refused {2}last round 5 {2}closed$/m);
    assert.match(text.stdout, /refused round 2 +entry \d+ +FL_SIGNATURE_INVALID \(site site-b\)/);
  });

  it('simulate --fl: sites, rounds, a dropout, a forged update refused, the final version; the log verifies', async () => {
    const r = okJson<{
      dropout: { site: string; fromRound: number };
      forged: { refused: boolean; reason: string; round: number };
      recorded: { round: number; participants: number; epsilon: number }[];
      final: { model: string; version: string; weights: string };
      events: Record<string, number>;
      log: { verified: boolean; documentsVerified: boolean };
    }>(await cli(['--json', 'simulate', '--fl', '--sites', '4', '--rounds', '5']));
    assert.deepEqual(r.dropout, { site: 'site-4', fromRound: 3 });
    assert.deepEqual([r.forged.refused, r.forged.reason, r.forged.round], [true, 'FL_SIGNATURE_INVALID', 2]);
    assert.deepEqual(
      r.recorded.map((x) => x.participants),
      [4, 4, 3, 3, 3],
    );
    assert.ok(r.recorded.every((x, i) => i === 0 || x.epsilon > r.recorded[i - 1]!.epsilon));
    assert.deepEqual(r.events, { FL_SITE_REGISTERED: 4, FL_ROUND_REFUSED: 1, FL_ROUND: 5 });
    assert.deepEqual(r.log, { entries: 10, verified: true, documentsVerified: true });
    const text = await cli(['simulate', '--fl', '--sites', '3', '--rounds', '2']);
    assert.match(text.stdout, /forged update: +round 1, site site-1: REFUSED FL_SIGNATURE_INVALID \(FL_ROUND_REFUSED, entry \d+\)/);
    assertError(await cli(['simulate', '--fl', '--sites', '1']), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await cli(['simulate', '--sites', '3']), EXIT.validation, 'VALIDATION_FAILED');
  });
});

describe('/api/v1/fl (HTTP)', () => {
  let env: ServerEnv;
  let coordinator = '';
  const skeys = new Map<string, string>();
  const call = (token: string, method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
    env.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  const signed = (site: string, round: number, update: string, line = 'http-line') => ({
    site,
    update,
    signature: toBase64(parseSignerKey(skeys.get(site)!).sign(flUpdateMessage(env.governance.log.origin, line, round, site, update))),
  });

  before(async () => {
    env = await createServerEnv();
    coordinator = (await env.auth.createToken('coord-h', 'fl_coordinator', SETUP_ACTOR)).token;
    for (const [i, s] of ['site-h1', 'site-h2', 'site-h3'].entries()) skeys.set(s, formatSignerKey(s, Buffer.alloc(32, i + 1)));
  });
  after(async () => {
    await env?.close();
  });

  it('registers sites (201, FL_SITE_REGISTERED by the credential\u2019s actor) and lists them', async () => {
    for (const s of ['site-h1', 'site-h2']) {
      const res = await call(coordinator, 'POST', '/api/v1/fl/sites', { site: s, key: verifierKeyFromSignerKey(skeys.get(s)!) });
      assert.equal(res.statusCode, 201, res.body);
      const body = res.json() as { site: { site: string; status: string }; event: { index: number } };
      assert.deepEqual([body.site.site, body.site.status], [s, 'active']);
      const e = decodeEntry((await env.log.reader.getEntry(body.event.index)).bytes.toString('utf8'));
      assert.equal(e.type, 'FL_SITE_REGISTERED');
      assert.equal((e.payload as Record<string, unknown>)['actor'], 'coord-h');
    }
    const again = await call(coordinator, 'POST', '/api/v1/fl/sites', { site: 'site-h1', key: verifierKeyFromSignerKey(skeys.get('site-h1')!) });
    assert.equal(again.statusCode, 409);
    assert.equal((again.json() as { error: { code: string } }).error.code, 'FL_SITE_EXISTS');
    const list = await call(env.tokens.ml_engineer, 'GET', '/api/v1/fl/sites');
    assert.equal(list.statusCode, 200);
    assert.deepEqual(
      (list.json() as { sites: { site: string }[] }).sites.map((s) => s.site),
      ['site-h1', 'site-h2'],
    );
  });

  it('records a round (201) and refuses an unregistered site (404), a bad signature (422), an out-of-order round (409): each one FL_ROUND_REFUSED', async () => {
    const good = await call(coordinator, 'POST', '/api/v1/fl/rounds', {
      line: 'http-line',
      round: 1,
      aggregation: 'fedprox',
      sites: [signed('site-h1', 1, hex('a')), signed('site-h2', 1, hex('b'))],
      globalModel: hex('1'),
    });
    assert.equal(good.statusCode, 201, good.body);
    assert.equal((good.json() as { round: { round: number; final: boolean } }).round.final, false);
    const cases: [Record<string, unknown>, number, string][] = [
      [{ round: 2, sites: [signed('site-h3', 2, hex('c'))] }, 404, 'FL_SITE_UNKNOWN'],
      [{ round: 2, sites: [{ ...signed('site-h1', 2, hex('c')), update: hex('d') }] }, 422, 'FL_SIGNATURE_INVALID'],
      [{ round: 1, sites: [signed('site-h1', 1, hex('c'))] }, 409, 'FL_ROUND_OUT_OF_ORDER'],
    ];
    for (const [over, status, code] of cases) {
      const n = env.log.size;
      const res = await call(coordinator, 'POST', '/api/v1/fl/rounds', { line: 'http-line', aggregation: 'fedavg', globalModel: hex('2'), ...over });
      assert.equal(res.statusCode, status, `${code}: ${res.body}`);
      const err = (res.json() as { error: { code: string; details: { eventIndex: number; reason: string } } }).error;
      assert.deepEqual([err.code, err.details.reason, err.details.eventIndex], [code, code, n]);
      assert.equal(env.log.size, n + 1);
      const e = decodeEntry((await env.log.reader.getEntry(n)).bytes.toString('utf8'));
      assert.equal(e.type, 'FL_ROUND_REFUSED');
      assert.equal((e.payload as Record<string, unknown>)['reason'], code);
    }
    const lines = await call(env.tokens.auditor, 'GET', '/api/v1/fl/lines/http-line/rounds');
    assert.equal(lines.statusCode, 200);
    const l = lines.json() as { rounds: unknown[]; refusals: { reason: string }[]; lastRound: number };
    assert.deepEqual([l.rounds.length, l.refusals.length, l.lastRound], [1, 3, 1]);
    const unseen = await call(env.tokens.auditor, 'GET', '/api/v1/fl/lines/never-seen/rounds');
    assert.deepEqual(unseen.json(), { line: 'never-seen', rounds: [], refusals: [], lastRound: 0, rhoTotal: 0 });
    // The lines, listed with their counts (a line of refusals only is listed too); a read writes nothing.
    const empty = await call(env.tokens.ml_engineer, 'GET', '/api/v1/fl/lines');
    assert.equal(empty.statusCode, 200);
    assert.deepEqual(empty.json(), { lines: [{ line: 'http-line', rounds: 1, refusals: 3, lastRound: 1, closed: false }] });
    const refusedOnly = await call(coordinator, 'POST', '/api/v1/fl/rounds', {
      line: 'a-refused-line',
      round: 1,
      aggregation: 'fedavg',
      sites: [signed('site-h3', 1, hex('c'), 'a-refused-line')],
      globalModel: hex('2'),
    });
    assert.equal(refusedOnly.statusCode, 404);
    const n = env.log.size;
    const listed = await call(env.tokens.auditor, 'GET', '/api/v1/fl/lines');
    assert.deepEqual(listed.json(), {
      lines: [
        { line: 'a-refused-line', rounds: 0, refusals: 1, lastRound: 0, closed: false },
        { line: 'http-line', rounds: 1, refusals: 3, lastRound: 1, closed: false },
      ],
    });
    assert.equal(env.log.size, n);
    assert.equal((await call(env.tokens.nurse, 'GET', '/api/v1/fl/lines')).statusCode, 403);
  });

  it('retires a site (201), then 409 FL_SITE_INACTIVE; a malformed body is 400 and writes nothing', async () => {
    const res = await call(coordinator, 'POST', '/api/v1/fl/sites/site-h2/retire');
    assert.equal(res.statusCode, 201, res.body);
    const again = await call(coordinator, 'POST', '/api/v1/fl/sites/site-h2/retire');
    assert.equal(again.statusCode, 409);
    assert.equal((await call(coordinator, 'POST', '/api/v1/fl/sites/nobody/retire')).statusCode, 404);
    const n = env.log.size;
    const bad = await call(coordinator, 'POST', '/api/v1/fl/rounds', { line: 'http-line', round: 3, aggregation: 'fedavg', sites: [], globalModel: hex('3') });
    assert.equal(bad.statusCode, 400);
    assert.equal(env.log.size, n);
  });

  it('permissions: fl:sites and fl:coordinate for the coordinator only, fl:read for it, the ML engineer and the auditor', async () => {
    assert.deepEqual(DEFAULT_ROLES['fl_coordinator'], ['fl:sites', 'fl:coordinate', 'fl:read']);
    for (const [role, token] of Object.entries(env.tokens)) {
      const read = await call(token, 'GET', '/api/v1/fl/sites');
      assert.equal(read.statusCode, DEFAULT_ROLES[role]!.includes('fl:read') ? 200 : 403, `${role} GET sites`);
      const write = await call(token, 'POST', '/api/v1/fl/rounds', { line: 'http-line', round: 9, aggregation: 'fedavg', sites: [signed('site-h1', 9, hex('e'))], globalModel: hex('9') });
      assert.equal(write.statusCode, 403, `${role} POST rounds`);
      const err = (write.json() as { error: { code: string; details: { permission: string } } }).error;
      assert.deepEqual([err.code, err.details.permission], ['FORBIDDEN', 'fl:coordinate']);
      assert.equal((await call(token, 'POST', '/api/v1/fl/sites', { site: 'site-h3', key: verifierKeyFromSignerKey(skeys.get('site-h3')!) })).statusCode, 403, `${role} POST sites`);
    }
  });
});

describe('FL decisions at sequencing time (the service on a real SQLite log)', () => {
  const root = useTempRoot('fl-sequencing');
  const COORDINATOR = { id: 'coord-s', role: 'fl_coordinator' };
  const skey = formatSignerKey('site-s', Buffer.alloc(32, 9));
  // Every log of this root has the origin `fl-sequencing.test/log` (useTempRoot's default).
  const entry = (round: number, update: string) => ({
    site: 'site-s',
    update,
    signature: toBase64(parseSignerKey(skey).sign(flUpdateMessage('fl-sequencing.test/log', 'seq-line', round, 'site-s', update))),
  });
  const body = (round: number, update: string) => ({ line: 'seq-line', round, aggregation: 'fedavg', sites: [entry(round, update)], globalModel: hex('0') });

  it('two registrations of one site in flight: one FL_SITE_REGISTERED, the other FL_SITE_EXISTS (nothing written)', async () => {
    const { gov, log } = await root.openGovernance();
    const key = verifierKeyFromSignerKey(skey);
    const results = await Promise.allSettled([gov.registerFlSite({ site: 'site-s', key }, COORDINATOR), gov.registerFlSite({ site: 'site-s', key }, COORDINATOR)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    assert.ok(hasCode((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason, 'FL_SITE_EXISTS'));
    assert.equal(log.size, 1);
  });

  it('two rounds with one number in flight: one FL_ROUND, the other FL_ROUND_REFUSED (FL_ROUND_OUT_OF_ORDER); a reopened service derives the same line', async () => {
    const l = await root.openGovernance();
    await l.gov.registerFlSite({ site: 'site-s', key: verifierKeyFromSignerKey(skey) }, COORDINATOR);
    const results = await Promise.allSettled([l.gov.recordFlRound(body(1, hex('a')), COORDINATOR), l.gov.recordFlRound(body(1, hex('b')), COORDINATOR)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refusal = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as unknown;
    assert.ok(refusal instanceof FlRoundRefusedError);
    assert.equal(refusal.code, 'FL_ROUND_OUT_OF_ORDER');
    const before = await l.gov.listFlRounds('seq-line');
    const sites = await l.gov.listFlSites();
    assert.deepEqual([before.rounds.length, before.refusals.length, before.lastRound], [1, 1, 1]);
    await l.close();
    const again = await root.openGovernance({ dataDir: l.dataDir });
    assert.deepEqual(await again.gov.listFlRounds('seq-line'), before);
    assert.deepEqual(await again.gov.listFlSites(), sites);
  });

  it('a DP line keeps the δ of its first DP round, also for a service reopened on the log: another δ is FL_DP_MISMATCH (one FL_ROUND_REFUSED)', async () => {
    const l = await root.openGovernance();
    await l.gov.registerFlSite({ site: 'site-s', key: verifierKeyFromSignerKey(skey) }, COORDINATOR);
    const dp = { clipNorm: 1, noiseMultiplier: 1.1, delta: 1e-5 };
    await l.gov.recordFlRound({ ...body(1, hex('a')), dp }, COORDINATOR);
    await l.close();
    const again = await root.openGovernance({ dataDir: l.dataDir });
    const n = again.log.size;
    await assert.rejects(again.gov.recordFlRound({ ...body(2, hex('b')), dp: { ...dp, delta: 1e-3 } }, COORDINATOR), (e: unknown) => e instanceof FlRoundRefusedError && e.code === 'FL_DP_MISMATCH');
    assert.equal(again.log.size, n + 1);
    const ok = await again.gov.recordFlRound({ ...body(2, hex('b')), dp }, COORDINATOR);
    assert.equal(ok.round.dp?.epsilon, accountRound(accountRound(0, dp).rhoTotal, dp).epsilon);
    const line = await again.gov.listFlRounds('seq-line');
    assert.deepEqual([line.rounds.length, line.refusals.map((r) => r.reason)], [2, ['FL_DP_MISMATCH']]);
    await again.close();
  });
});
