import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = join(root, 'scripts', 'check-layers.mjs');
const fixture = join(root, 'test', 'fixtures', 'layers');
const biome = join(root, 'node_modules', '.bin', 'biome');

const checkLayers = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: 'utf8' });

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) filesUnder(p, out);
    else if (/\.(ts|js)$/.test(name)) out.push(p);
  }
  return out;
}

describe('the layer rule (scripts/check-layers.mjs)', () => {
  it('passes on the real tree', () => {
    const r = checkLayers();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /every import points down a layer/);
  });

  it('rejects each upward import in the fixture tree, naming the file and the rule, and nothing else', () => {
    const r = checkLayers(fixture);
    assert.equal(r.status, 1, r.stdout);
    const lines = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim());
    assert.deepEqual(lines.sort(), [
      "src/core/hash.ts: imports '../server/app.js': src/core may import src/core, not src/server",
      "src/log/log.ts: imports '../service/governance.js': src/log may import src/core, src/store, src/log, not src/service",
      "src/server/app.ts: imports '../cli/main.js': nothing imports src/cli",
      "src/service/governance.ts: imports '../store/store.js' (type only): src/service may import src/core, src/log, src/fhir, src/service, not src/store",
      "src/service/governance.ts: imports '../store/store.js': src/service may import src/core, src/log, src/fhir, src/service, not src/store",
      "src/store/store.ts: imports '../log/log.js' (type only): src/store may import src/core, src/store, not src/log",
      "web/app.js: imports '../src/core/hash.js': web/ imports only web/",
    ]);
    // One violation per import the fixture marks `// upward`.
    const marked = filesUnder(fixture).reduce((n, f) => n + (readFileSync(f, 'utf8').match(/\/\/ upward/g) ?? []).length, 0);
    assert.equal(lines.length, marked);
  });

  it('reads every import that esbuild resolves in src/ (the regex scanner misses none)', async () => {
    const r = checkLayers('--imports');
    assert.equal(r.status, 0, r.stderr);
    const scanned = JSON.parse(r.stdout) as Record<string, string[]>;
    const entryPoints = filesUnder(join(root, 'src')).filter((f) => f.endsWith('.ts'));
    const result = await build({
      entryPoints,
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outdir: join(tmpdir(), 'unused'),
      logLevel: 'silent',
    });
    let checked = 0;
    const missed: string[] = [];
    for (const [file, input] of Object.entries(result.metafile.inputs)) {
      if (!file.startsWith('src/')) continue;
      const mine = new Set(scanned[file] ?? []);
      for (const imp of input.imports) {
        const specifier = imp.original ?? imp.path;
        checked++;
        if (!mine.has(specifier)) missed.push(`${file}: ${specifier}`);
      }
    }
    assert.deepEqual(missed, []);
    assert.ok(checked > 100, `only ${checked} imports compared`);
  });
});

describe('the format check (biome check, as npm run lint runs it)', () => {
  it('fails on a misformatted file and passes once it is formatted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-lint-'));
    try {
      copyFileSync(join(root, 'biome.json'), join(dir, 'biome.json'));
      writeFileSync(join(dir, '.gitignore'), 'node_modules\n');
      mkdirSync(join(dir, 'src'));
      const file = join(dir, 'src', 'misformatted.ts');
      writeFileSync(file, 'export const answer = {value:"forty-two"}\n');
      const bad = spawnSync(biome, ['check', '--error-on-warnings'], { cwd: dir, encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stdout + bad.stderr, new RegExp(`src\\${sep}misformatted\\.ts format`));
      writeFileSync(file, "export const answer = { value: 'forty-two' };\n");
      const good = spawnSync(biome, ['check', '--error-on-warnings'], { cwd: dir, encoding: 'utf8' });
      assert.equal(good.status, 0, good.stdout + good.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
