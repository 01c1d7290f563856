/**
 * Several `custos serve` processes, one PostgreSQL log: concurrent clients on three servers, one
 * server killed mid-load. The log must end with no gaps, no duplicate or forked entries, every
 * acknowledged entry present, every checkpoint consistent, and revocations honoured across servers.
 * Runs when PG_URL is set (npm test starts a throwaway cluster when PostgreSQL is installed).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const PG_URL = process.env['PG_URL'];
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'custos.js');
const DIGEST = 'ab'.repeat(32);

describe('three servers on one PostgreSQL log', { skip: PG_URL ? false : 'PG_URL not set: PostgreSQL suite skipped' }, () => {
  let dataDir: string;
  let dbUrl: string;
  let dbName: string;
  const servers: { proc: ChildProcess; url: string }[] = [];
  let officer: string;
  let clinician: string;

  async function admin<T>(fn: (c: import('pg').Client) => Promise<T>): Promise<T> {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  }

  function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, '--data-dir', dataDir, '--store', dbUrl, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c) => (stdout += c));
      p.stderr.on('data', (c) => (stderr += c));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  function startServer(): Promise<{ proc: ChildProcess; url: string }> {
    return new Promise((resolve, reject) => {
      const proc = spawn(process.execPath, [BIN, '--data-dir', dataDir, '--store', dbUrl, 'serve', '--port', '0', '--rate-limit', '10000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 20_000);
      proc.stdout!.on('data', (c) => {
        out += c;
        const m = /audit explorer\s+(http:\/\/[^/\s]+)\//.exec(out);
        if (m) {
          clearTimeout(t);
          resolve({ proc, url: m[1]! });
        }
      });
      proc.stderr!.on('data', (c) => (out += c));
      proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });
  }

  before(async () => {
    dbName = `custos_multi_${randomBytes(4).toString('hex')}`;
    await admin((c) => c.query(`CREATE DATABASE ${dbName}`));
    const u = new URL(PG_URL!);
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
    dataDir = mkdtempSync(join(tmpdir(), 'custos-multi-'));
    const init = await cli(['init', '--origin', 'multi.custos.local/log']);
    assert.equal(init.code, 0, init.stderr);
    officer = JSON.parse((await cli(['--json', 'token', 'create', '--name', 'po-1', '--role', 'privacy_officer'])).stdout).token;
    clinician = JSON.parse((await cli(['--json', 'token', 'create', '--name', 'user_42', '--role', 'dermatologist'])).stdout).token;
    for (let i = 0; i < 3; i++) servers.push(await startServer());
  });

  after(async () => {
    for (const s of servers) s.proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)).catch(() => undefined);
  });

  const post = async (base: string, path: string, token: string, body: unknown) => {
    const r = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };

  it('appends concurrently on three servers, survives one killed mid-load, and verifies', async () => {
    const created = await post(servers[0]!.url, '/api/v1/consents', officer, { policyId: pid('p-multi'), subject: 'subject-1', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const acked: number[] = [];
    let failed = 0;
    const N = 600;
    const work: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      const s = servers[i % 3]!;
      if (i === N / 2) setTimeout(() => servers[1]!.proc.kill('SIGKILL'), 0);
      work.push(
        post(s.url, '/api/v1/access', clinician, { purpose: 'TREAT', policyId: pid('p-multi'), artifact: { uri: `s3://b/${i}.jpg`, digest: DIGEST } }).then(
          (r) => {
            if (r.status === 201) acked.push(r.body['event'].index);
            else failed++;
          },
          () => {
            failed++;
          },
        ),
      );
    }
    await Promise.all(work);
    assert.ok(acked.length >= (N * 2) / 3 - 5, `acked ${acked.length}, failed ${failed}`);
    assert.equal(new Set(acked).size, acked.length, 'no two acknowledgements share an index');
    // Verify through a surviving server and locally with the CLI.
    const v = await cli(['--json', 'verify']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const report = JSON.parse(v.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.firstBadIndex ?? null, null);
    // Every acknowledged entry is present, once, as the access it acknowledged.
    const exported = (await cli(['export', '--format', 'ndjson'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const byIndex = new Map(exported.map((e) => [e.index, e.entry]));
    exported.forEach((e, i) => assert.equal(e.index, i, 'no gaps'));
    for (const idx of acked) assert.equal(byIndex.get(idx)?.type, 'DATA_ACCESSED');
  });

  it('a revocation on one server is honoured by the others at once', async () => {
    const live = [servers[0]!, servers[2]!];
    await post(live[0]!.url, '/api/v1/consents', officer, { policyId: pid('p-revoke'), subject: 'subject-2', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] });
    const ok = await post(live[1]!.url, '/api/v1/access', clinician, { purpose: 'TREAT', policyId: pid('p-revoke'), artifact: { uri: 's3://b/r1.jpg', digest: DIGEST } });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const revoked = await post(live[0]!.url, `/api/v1/consents/${pid('p-revoke')}/revoke`, officer, {});
    assert.equal(revoked.status, 201, JSON.stringify(revoked.body));
    const denied = await post(live[1]!.url, '/api/v1/access', clinician, { purpose: 'TREAT', policyId: pid('p-revoke'), artifact: { uri: 's3://b/r2.jpg', digest: DIGEST } });
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(denied.body['decision'].reason, 'REVOKED');
    assert.ok(denied.body['event'].index > revoked.body['event'].index);
  });
});
