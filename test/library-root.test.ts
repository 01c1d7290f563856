/**
 * The library root (`import ... from 'custos'`, dist/index.js) is usable by a verifier that never
 * opens a log: importing it loads neither the native SQLite module (better-sqlite3) nor the HTTP
 * stack (fastify) nor the PostgreSQL client (pg). Each check runs in a fresh `node` process with a
 * module hook that refuses to resolve those packages, and then also looks in the CommonJS cache.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, repoRoot } from './helpers/cli.js';

const FORBIDDEN = ['better-sqlite3', 'fastify', 'pg'] as const;

// Resolve hook (runs on the loader thread): refuses the forbidden packages, by name or by path.
const HOOKS = `
const forbidden = ${JSON.stringify(FORBIDDEN)};
const hit = (s) => forbidden.find((p) => s === p || s.startsWith(p + '/') || s.includes('/node_modules/' + p + '/'));
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const p = hit(specifier) ?? hit(r.url);
  if (p) throw new Error('FORBIDDEN_MODULE ' + p + ' <- ' + context.parentURL);
  return r;
}
`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

// The child: imports the module given as argv[1], runs `check` on it, and reports what it loaded.
function inChild(modulePath: string, check: string): { status: number | null; stdout: string; stderr: string } {
  const script = `
    import { createRequire } from 'node:module';
    const lib = await import(process.argv[1]);
    ${check}
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    const forbidden = ${JSON.stringify(FORBIDDEN)};
    const found = forbidden.filter((p) => loaded.some((f) => f.includes('/node_modules/' + p + '/')));
    process.stdout.write(JSON.stringify({ found }));
  `;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, '--input-type=module', '-e', script, modulePath], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  ensureBuilt();
});

describe('the library root (dist/index.js)', () => {
  it('loads without better-sqlite3, fastify or pg, and verifyInclusion works from it', () => {
    // A three-leaf tree: root = H(H(l0, l1), l2); the proof of leaf 0 is [l1, l2] (RFC 9162 §2.1.3).
    const check = `
      const leaves = ['a', 'b', 'c'].map((s) => lib.hashLeaf(Buffer.from(s)));
      const root = lib.computeRoot(leaves);
      lib.verifyInclusion(0, 3, leaves[0], [leaves[1], leaves[2]], root);
      let refused = false;
      try { lib.verifyInclusion(0, 3, leaves[0], [leaves[2], leaves[1]], root); } catch (e) { refused = e.code === 'INCLUSION_PROOF_INVALID'; }
      if (!refused) throw new Error('a wrong proof was accepted');
    `;
    const r = inChild(join(repoRoot, 'dist', 'index.js'), check);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { found: [] });
  });

  it('still opens a log on demand: openLog and initDataDir load SQLite when called', () => {
    // The data-dir functions stay on the root; SQLite is imported when a log is opened.
    const check = `
      const { mkdtempSync, rmSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      const base = mkdtempSync(join(tmpdir(), 'custos-root-'));
      try {
        await lib.initDataDir(join(base, 'log'), { origin: 'root.test/log' });
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    `;
    const r = inChild(join(repoRoot, 'dist', 'index.js'), check);
    assert.notEqual(r.status, 0, 'the hook must refuse better-sqlite3 once a log is opened');
    assert.match(r.stderr, /FORBIDDEN_MODULE better-sqlite3/);
  });

  it('the check itself sees a forbidden module (control: the SQLite store subpath)', () => {
    const r = inChild(join(repoRoot, 'dist', 'store', 'sqlite', 'index.js'), '');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /FORBIDDEN_MODULE better-sqlite3/);
  });
});
