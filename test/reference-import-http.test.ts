/**
 * POST /api/v1/imports/reference-ledger end to end (issue 14), on a ledger written by the
 * reference's own code (../shared/seed_py via test/fixtures/reference/make_ledger.py, python3), its
 * files sent in the body as `custos import reference-ledger DIR` reads them from disk:
 * - a dry run answers 200 with the CLI's `--json --dry-run` report (same fields, same values) and
 *   writes nothing;
 * - the import answers 201, the log and every imported document verify, the log holds one
 *   LEGACY_EVENT per line and a LEGACY_IMPORT_COMPLETED naming the caller (actor and role);
 * - a defect (an edited line, an edited policy) is 422 REFERENCE_LEDGER_INVALID at its line, a
 *   re-import 409 LEGACY_ALREADY_IMPORTED, a role without legacy:import 403: nothing written;
 * - a file name that is a path (`../x.json`, `a/b.json`, `..`) or not a store file is 400;
 * - the route takes a body over the server's 256 KiB default (its own limit is 32 MiB); other
 *   routes still refuse it (413).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLoggedEvent } from '../src/core/events.js';
import type { Log } from '../src/log/log.js';
import { verifyDocuments } from '../src/service/verify-documents.js';
import { callIn, ensureBuilt, makeTempDir, okJson, repoRoot } from './helpers/cli.js';
import { assertVerifies, createServerEnv, type ServerEnv } from './helpers/server-env.js';

const SEED_PY = join(repoRoot, '..', 'shared', 'seed_py');
const MAKE_LEDGER = join(repoRoot, 'test', 'fixtures', 'reference', 'make_ledger.py');
const skip = existsSync(join(SEED_PY, 'governance_overlay.py')) ? false : `the reference notebook is absent (${SEED_PY})`;
const ROUTE = '/api/v1/imports/reference-ledger';

type Ev = { index: number; type: string; payload: Record<string, unknown> };

async function events(log: Log): Promise<Ev[]> {
  const out: Ev[] = [];
  for await (const page of log.reader.entryPages(0, await log.reader.size())) {
    for (const e of page) {
      const p = parseLoggedEvent(e.bytes)!;
      out.push({ index: e.index, type: p.type, payload: { ...p.payload } });
    }
  }
  return out;
}
const legacy = async (log: Log) => (await events(log)).filter((e) => e.type.startsWith('LEGACY_'));

interface Body {
  ledger: string;
  policies?: Record<string, string>;
  manifests?: Record<string, string>;
  dryRun?: boolean;
}

/** The files of a ledger directory as the route's body: the ledger's text, the stores by file name. */
function bodyOf(dir: string): Body {
  const store = (sub: string) => Object.fromEntries(readdirSync(join(dir, sub)).map((f) => [f, readFileSync(join(dir, sub, f), 'utf8')]));
  return { ledger: readFileSync(join(dir, 'ledger.jsonl'), 'utf8'), policies: store('policy_store'), manifests: store('manifest_store') };
}

describe('POST /api/v1/imports/reference-ledger', { skip }, () => {
  const tmp = makeTempDir('custos-refimport-http-');
  const clean = join(tmp.path, 'clean');
  let env: ServerEnv;
  let base: string;
  let body: Body;
  const post = async (b: unknown, token: string = env.tokens.admin, url = ROUTE) => {
    const res = await fetch(`${base}${url}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: typeof b === 'string' ? b : JSON.stringify(b),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> & { error?: { code: string; details?: Record<string, unknown> } } };
  };

  before(async () => {
    ensureBuilt();
    const r = spawnSync('python3', [MAKE_LEDGER, SEED_PY, clean, '8', '40', '3', '--extras'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok', 'the reference verifies its own ledger');
    body = bodyOf(clean);
    env = await createServerEnv();
    base = await env.app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await env?.close();
    tmp.cleanup();
  });

  it('a dry run: 200, the CLI --json --dry-run report, nothing written', async () => {
    const before = env.log.size;
    const { status, json } = await post({ ...body, dryRun: true });
    assert.equal(status, 200, JSON.stringify(json));
    const cli = okJson<Record<string, unknown>>(await callIn(join(tmp.path, 'no-log'), ['--json', 'import', 'reference-ledger', clean, '--dry-run']));
    const strip = ({ ledger: _l, ms: _m, linesPerSecond: _s, ...rest }: Record<string, unknown>) => rest;
    assert.deepEqual(strip(json), strip(cli), 'the same report as the CLI, but for the ledger name and the timings');
    assert.equal(json['ok'], true);
    assert.equal(json['dryRun'], true);
    assert.equal(json['ledger'], 'request body');
    assert.equal(json['imported'], null);
    assert.equal(json['lines'], body.ledger.split('\n').length - 1);
    assert.equal(env.log.size, before, 'a dry run writes nothing');
  });

  it('an edited line: 422 REFERENCE_LEDGER_INVALID at its line, an edited policy at the line of its last hash; nothing written', async () => {
    const before = env.log.size;
    const lines = body.ledger.split('\n');
    const at = lines.findIndex((l, i) => i > 5 && l.includes('"purpose": "'));
    assert.ok(at > 0);
    const edited = [...lines];
    edited[at] = edited[at]!.replace(/"purpose": "[^"]*"/, '"purpose": "MARKETING"');
    const bad = await post({ ...body, ledger: edited.join('\n') });
    assert.equal(bad.status, 422, JSON.stringify(bad.json));
    assert.equal(bad.json.error?.code, 'REFERENCE_LEDGER_INVALID');
    assert.deepEqual([bad.json.error?.details?.['defect'], bad.json.error?.details?.['line']], ['HASH_MISMATCH', at]);

    const policies = { ...body.policies };
    const policy = JSON.parse(policies['consent_0002.json']!) as Record<string, unknown>;
    policies['consent_0002.json'] = JSON.stringify({ ...policy, allowed_roles: [...(policy['allowed_roles'] as string[]), 'janitor'] });
    const pol = await post({ ...body, policies });
    assert.equal(pol.status, 422, JSON.stringify(pol.json));
    assert.deepEqual([pol.json.error?.details?.['defect'], pol.json.error?.details?.['ref']], ['POLICY_MISMATCH', 'consent_0002']);
    assert.equal(typeof pol.json.error?.details?.['line'], 'number');
    // A manifest left out: MANIFEST_MISSING.
    const [first] = Object.keys(body.manifests!);
    const { [first!]: _gone, ...manifests } = body.manifests!;
    const miss = await post({ ...body, manifests, dryRun: true });
    assert.equal(miss.status, 422);
    assert.equal(miss.json.error?.details?.['defect'], 'MANIFEST_MISSING');
    assert.equal(env.log.size, before, 'nothing written');
    assert.deepEqual(await legacy(env.log), []);
  });

  it('a role without legacy:import is 403 and nothing is imported', async () => {
    for (const role of ['auditor', 'privacy_officer', 'ml_engineer', 'nurse'] as const) {
      const { status, json } = await post(body, env.tokens[role]);
      assert.equal(status, 403, role);
      assert.deepEqual([json.error?.code, json.error?.details?.['permission']], ['FORBIDDEN', 'legacy:import']);
    }
    assert.deepEqual(await legacy(env.log), []);
  });

  it('a file name that is a path, or not a store file, is 400; so is a value that is not a string; nothing written', async () => {
    const before = env.log.size;
    const [name, text] = Object.entries(body.policies!)[0]!;
    const bodies: unknown[] = [
      { ...body, policies: { ...body.policies, '../x.json': text } },
      { ...body, policies: { [`../policy_store/${name}`]: text } },
      { ...body, manifests: { ...body.manifests, 'a/b.json': text } },
      { ...body, manifests: { ...body.manifests, 'a\\b.json': text } },
      { ...body, policies: { '..': text } },
      { ...body, policies: { '.json': text } },
      { ...body, policies: { '..json': text } },
      { ...body, policies: { 'x..y.json': text } },
      { ...body, policies: { 'consent_0001.txt': text } },
      { ...body, policies: { 'a\u0001.json': text } },
      { ...body, policies: { [name]: 42 } },
      { ...body, ledger: 42 },
      { policies: body.policies },
      { ...body, dryRun: 'yes' },
      { ...body, extra: true },
    ];
    for (const b of bodies) {
      const { status, json } = await post(b);
      assert.equal(status, 400, `${JSON.stringify(b).slice(0, 200)} -> ${JSON.stringify(json)}`);
      assert.equal(json.error?.code, 'VALIDATION_FAILED');
    }
    assert.equal(env.log.size, before);
  });

  it('the import: 201, one LEGACY_EVENT per line and a LEGACY_IMPORT_COMPLETED naming the caller; the log and documents verify', async () => {
    const { status, json } = await post(body);
    assert.equal(status, 201, JSON.stringify(json));
    const lines = body.ledger.split('\n').slice(0, -1);
    const imported = json['imported'] as { firstIndex: number; lastIndex: number; completedIndex: number };
    assert.equal(imported.lastIndex - imported.firstIndex + 1, lines.length);
    const logged = await legacy(env.log);
    const ev = logged.filter((e) => e.type === 'LEGACY_EVENT');
    assert.deepEqual(
      ev.map((e) => e.payload['line']),
      lines.map((_, i) => i),
    );
    assert.deepEqual(
      ev.map((e) => e.payload['entryHash'] ?? null),
      lines.map((l) => (JSON.parse(l) as { entry_hash?: string }).entry_hash ?? null),
    );
    const done = logged.filter((e) => e.type === 'LEGACY_IMPORT_COMPLETED');
    assert.equal(done.length, 1);
    assert.equal(done[0]!.index, imported.completedIndex);
    assert.equal(done[0]!.payload['head'], json['head']);
    assert.deepEqual([done[0]!.payload['actor'], done[0]!.payload['role']], ['admin-1', 'admin']);
    // What `custos verify` checks: the log (signed checkpoints, the tree) and every off-ledger
    // document, the imported lines, manifests and policies included.
    await assertVerifies(env);
    const docs = await verifyDocuments({ store: env.dir.store });
    assert.ok(docs.documentsChecked >= lines.length + (json['manifests'] as number) + (json['policies'] as number), JSON.stringify(docs).slice(0, 300));
  });

  it('a re-import: 409 LEGACY_ALREADY_IMPORTED, nothing written; a dry run reports the earlier import', async () => {
    const before = env.log.size;
    const { status, json } = await post(body);
    assert.equal(status, 409, JSON.stringify(json));
    assert.equal(json.error?.code, 'LEGACY_ALREADY_IMPORTED');
    assert.equal(json.error?.details?.['line'], 0);
    const dry = await post({ ...body, dryRun: true });
    assert.equal(dry.status, 200);
    assert.equal((dry.json['alreadyImported'] as { line: number }).line, 0);
    assert.equal(env.log.size, before);
  });

  it('takes a body over the server default of 256 KiB (its own limit is 32 MiB); other routes still answer 413', async () => {
    // Blank lines are skipped, as the reference skips them: a valid ledger of 300 KiB.
    const padded = `{"genesis": true, "created_at_ms": 1700000000123}\n${' \n'.repeat(150 * 1024)}`;
    const { status, json } = await post({ ledger: padded, dryRun: true });
    assert.equal(status, 200, JSON.stringify(json));
    assert.deepEqual([json['lines'], json['blankLines']], [1, 150 * 1024]);
    const other = await post({ name: 'x'.repeat(300 * 1024), role: 'auditor' }, env.tokens.admin, '/api/v1/tokens');
    assert.equal(other.status, 413);
    const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, Record<string, unknown>>> };
    const op = openapi.paths[ROUTE]!['post']!;
    assert.deepEqual([op['x-custos-permission'], op['x-custos-body-limit']], ['legacy:import', 32 * 1024 * 1024]);
  });
});
