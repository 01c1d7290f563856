/**
 * The CLI on PostgreSQL: --store / CUSTOS_DATABASE_URL, and `custos migrate` from SQLite.
 * Runs when PG_URL is set.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { callCli, ensureBuilt } from './helpers/cli.js';

const PG_URL = process.env['PG_URL'];
const H = 'cd'.repeat(32);

/** Runs the CLI in this process (see test/helpers/cli.ts). */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await callCli(args, { env });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('the CLI on PostgreSQL', { skip: PG_URL ? false : 'PG_URL not set: PostgreSQL suite skipped' }, () => {
  let tmp: string;
  const dbs: string[] = [];
  const freshDb = async (): Promise<string> => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    const name = `custos_cli_${randomBytes(4).toString('hex')}`;
    await c.query(`CREATE DATABASE ${name}`);
    await c.end();
    dbs.push(name);
    const u = new URL(PG_URL!);
    u.pathname = `/${name}`;
    return u.toString();
  };

  before(() => {
    ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), 'custos-pgcli-'));
  });
  after(async () => {
    rmSync(tmp, { recursive: true, force: true });
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    for (const d of dbs) await c.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`);
    await c.end();
  });

  it('init, append, verify and export with --store and with CUSTOS_DATABASE_URL', async () => {
    const url = await freshDb();
    const dir = join(tmp, 'a');
    assert.equal((await run(['--data-dir', dir, '--store', url, 'init'])).code, 0);
    const a = await run(['--data-dir', dir, '--json', 'append', '--resource', 'r-1', '--practitioner', 'p-1', '--hash', H], { CUSTOS_DATABASE_URL: url });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(JSON.parse(a.stdout).index, 0);
    const v = await run(['--data-dir', dir, '--store', url, '--json', 'verify']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(JSON.parse(v.stdout).entries, 1);
    // A second init against the same database is refused, and writes no keys.
    const again = await run(['--data-dir', join(tmp, 'b'), '--store', url, 'init']);
    assert.equal(again.code, 5, again.stderr);
    assert.match(again.stderr, /^custos: DATA_DIR_EXISTS: /);
    // A bad URL is a clean validation error.
    const bad = await run(['--data-dir', dir, '--store', 'mysql://x', 'stats']);
    assert.equal(bad.code, 2);
  });

  it('migrate copies a SQLite log and its documents, and the copy verifies to the same root', async () => {
    const src = join(tmp, 'src');
    assert.equal((await run(['--data-dir', src, 'init', '--origin', 'migrate.test/log'])).code, 0);
    const actor = ['--actor', 'po-1', '--actor-role', 'privacy_officer'];
    assert.equal((await run(['--data-dir', src, 'consent', 'create', '--policy-id', pid('c1'), '--subject', 'pt-1', '--purposes', 'TREAT', '--roles', 'dermatologist', ...actor])).code, 0);
    writeFileSync(join(tmp, 'pipeline.json'), JSON.stringify({ pipelineName: 'p', pipelineVersion: '1' }));
    writeFileSync(join(tmp, 'model.json'), JSON.stringify({ modelName: 'm', modelVersion: '1', weightsHash: H, framework: 'onnx' }));
    for (let i = 0; i < 5; i++) {
      const r = await run([
        '--data-dir',
        src,
        'infer',
        '--policy',
        pid('c1'),
        '--purpose',
        'TREAT',
        '--input-uri',
        `s3://b/${i}.jpg`,
        '--input-digest',
        H,
        '--output',
        `report=s3://b/${i}.json@${H}`,
        '--pipeline',
        join(tmp, 'pipeline.json'),
        '--model',
        join(tmp, 'model.json'),
        '--actor',
        'u-1',
        '--actor-role',
        'dermatologist',
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    for (let i = 0; i < 300; i++) await run(['--data-dir', src, 'append', '--resource', `r-${i}`, '--practitioner', 'p', '--hash', H]);
    const url = await freshDb();
    const m = await run(['--json', 'migrate', '--from', join(src, 'custos.db'), '--to', url]);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    const rep = JSON.parse(m.stdout);
    assert.equal(rep.entries, 306);
    const srcStats = JSON.parse((await run(['--data-dir', src, '--json', 'stats'])).stdout);
    const dstStats = JSON.parse((await run(['--data-dir', src, '--store', url, '--json', 'stats'])).stdout);
    assert.equal(dstStats.rootHash, srcStats.rootHash);
    assert.equal(dstStats.checkpoints, srcStats.checkpoints);
    const v = await run(['--data-dir', src, '--store', url, '--json', 'verify']);
    assert.equal(v.code, 0, v.stdout);
    assert.equal(JSON.parse(v.stdout).documents.ok, true);
    const receipt = await run(['--data-dir', src, '--store', url, '--json', 'receipt', '1']);
    assert.equal(receipt.code, 0, receipt.stderr);
    assert.equal(JSON.parse(receipt.stdout).ok, true);
    // Migrating into a non-empty database is refused.
    const again = await run(['migrate', '--from', join(src, 'custos.db'), '--to', url]);
    assert.equal(again.code, 5);
  });
});
