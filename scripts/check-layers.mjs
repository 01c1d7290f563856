#!/usr/bin/env node
// The layer rule: imports in src/ only point down, and web/ imports only web/.
//
//   usage: node scripts/check-layers.mjs [root]              (root defaults to the repository)
//          node scripts/check-layers.mjs --imports [root]    (print what it reads, as JSON)
//
// Every import of every file under <root>/src and <root>/web is read (static import and export-from,
// `import type`, side-effect imports, dynamic import() and `typeof import()` types), its relative
// specifier is resolved to a file, and the pair (layer of the importer, layer of the target) is checked
// against LAYERS. Type-only imports count: a type from a higher layer is still a dependency on it.
// Test files (*.test.ts) may import anything. Exit 0 when clean, 1 with one line per violation.
//
// Why a script and not Biome's noRestrictedImports: Biome matches the specifier text, not the file it
// resolves to, so "no import from a higher layer" would have to list every '../' depth per folder, and
// a folder name reached from another depth would slip through. Resolving the path is exact.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// Which layers each layer may import (itself included). Keys are folders under src/, plus 'index'
// (src/index.ts, the library root) and 'web'.
export const LAYERS = {
  core: ['core'],
  store: ['core', 'store'],
  log: ['core', 'store', 'log'],
  fhir: ['core', 'fhir'],
  service: ['core', 'log', 'fhir', 'service'],
  server: ['core', 'log', 'fhir', 'service', 'server'],
  sim: ['core', 'store', 'log', 'service', 'sim'],
  witness: ['core', 'witness'],
  cli: ['core', 'store', 'log', 'fhir', 'service', 'server', 'sim', 'witness', 'cli'],
  index: ['core', 'store', 'log', 'fhir', 'service'],
  web: ['web'],
};

// Allowed only as `import type` (no code is loaded). Empty: the service reaches storage only through
// the log's interfaces (log.reader, log.sidecar), not even by naming the store's types.
export const TYPE_ONLY = {};

// Known violations in the tree, each an exact "importer -> target" pair (paths from the root) that is
// tolerated until the code is fixed. An entry that no longer occurs is itself an error, so the list
// only shrinks.
export const KNOWN = [];

const SOURCE = /\.(?:ts|mts|js|mjs)$/;

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// The specifiers a file imports, with whether each is type-only. Lines that open a comment are
// skipped, so an import written in a comment or a doc example is not counted.
export function importsOf(text) {
  const code = text
    .split('\n')
    .map((line) => (/^\s*(?:\/\/|\/\*|\*)/.test(line) ? '' : line))
    .join('\n');
  const found = [];
  // import ... from '...', export ... from '...', import '...': a statement starts a line, and the
  // part before `from` holds no quote or semicolon, so a match cannot run into the next statement.
  const statement = /^[ \t]*(import|export)\s+(type\s+)?(?:([^'";]*?)\s*from\s*)?(['"])([^'"\n]+)\4/gm;
  for (const m of code.matchAll(statement)) {
    if (m[1] === 'export' && m[3] === undefined) continue; // `export 'x'` is not a statement
    const names = m[3] ?? '';
    // `import { type A, type B } from` is type-only too: every name inside the braces is marked.
    const inline = /^\{([^}]*)\}$/.exec(names.trim());
    const listed = inline?.[1].split(',').filter((s) => s.trim() !== '') ?? [];
    const allInlineTypes = listed.length > 0 && listed.every((s) => /^\s*type\s/.test(s));
    found.push({ specifier: m[5], typeOnly: m[2] !== undefined || allInlineTypes });
  }
  // import('...') as an expression or in a type (typeof import('...')).
  for (const m of code.matchAll(/(typeof\s+)?\bimport\s*\(\s*(['"])([^'"\n]+)\2\s*\)/g)) {
    found.push({ specifier: m[3], typeOnly: m[1] !== undefined });
  }
  return found;
}

// The file a relative specifier names: TypeScript's NodeNext style writes './x.js' for './x.ts'.
function resolveRelative(from, specifier) {
  const base = resolve(dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, `${base}.js`, join(base, 'index.ts'), join(base, 'index.js')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? base;
}

// The layer of a path under root, or undefined outside src/ and web/.
function layerOf(root, file) {
  const parts = relative(root, file).split(sep);
  if (parts[0] === 'web') return 'web';
  if (parts[0] !== 'src') return undefined;
  if (parts.length === 2) return parts[1] === 'index.ts' || parts[1] === 'index.js' ? 'index' : `src/${parts[1]}`;
  return parts[1];
}

function sourceFiles(root) {
  return [...walk(join(root, 'src'), []), ...walk(join(root, 'web'), [])].sort();
}

export function checkLayers(root) {
  const files = sourceFiles(root);
  const violations = [];
  const seen = new Set();
  const rel = (p) => relative(root, p).split(sep).join('/');
  for (const file of files) {
    if (/\.test\.[cm]?[jt]s$/.test(file)) continue;
    const from = layerOf(root, file);
    const allowed = LAYERS[from];
    for (const { specifier, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
      let target;
      let to;
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        target = specifier.startsWith('/') && from === 'web' ? join(root, 'web', specifier) : resolveRelative(file, specifier);
        to = layerOf(root, target);
      } else if (specifier === 'custos' || specifier.startsWith('custos/')) {
        // The package importing itself by name reaches the library root.
        target = join(root, 'src', 'index.ts');
        to = 'index';
      } else if (from === 'web') {
        // The browser has no package resolution: a bare specifier in web/ is a mistake.
        to = undefined;
        target = specifier;
      } else {
        continue; // node: builtins and npm packages
      }
      let rule;
      if (allowed === undefined) rule = `${rel(file)} is in no layer (add its folder to LAYERS in scripts/check-layers.mjs)`;
      else if (to !== undefined && allowed.includes(to)) continue;
      else if (to !== undefined && typeOnly && (TYPE_ONLY[from] ?? []).includes(to)) continue;
      else if (to === 'cli') rule = 'nothing imports src/cli';
      else if (from === 'web') rule = 'web/ imports only web/';
      else if (to === undefined) rule = `src/${from} imports only src/ (${allowed.join(', ')})`;
      else {
        const typeNote = (TYPE_ONLY[from] ?? []).length > 0 ? ` (and types from ${TYPE_ONLY[from].map((l) => `src/${l}`).join(', ')})` : '';
        rule = `src/${from} may import ${allowed.map((l) => (l === 'index' ? 'src/index.ts' : `src/${l}`)).join(', ')}${typeNote}, not ${to === 'index' ? 'src/index.ts' : `src/${to}`}`;
      }
      const pair = `${rel(file)} -> ${typeof target === 'string' && target.startsWith(root) ? rel(target) : target}`;
      if (KNOWN.includes(pair)) {
        seen.add(pair);
        continue;
      }
      violations.push(`${rel(file)}: imports '${specifier}'${typeOnly ? ' (type only)' : ''}: ${rule}`);
    }
  }
  for (const pair of KNOWN) {
    if (!seen.has(pair)) {
      violations.push(`${pair}: listed in KNOWN in scripts/check-layers.mjs but no longer imported: remove the entry`);
    }
  }
  return { files: files.length, violations };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const list = args[0] === '--imports';
  const root = resolve((list ? args[1] : args[0]) ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
  if (list) {
    // What the scanner reads, as JSON { "src/x.ts": ["../y.js", ...] }: the test compares it with esbuild's graph.
    const out = {};
    for (const file of sourceFiles(root)) out[relative(root, file).split(sep).join('/')] = importsOf(readFileSync(file, 'utf8')).map((i) => i.specifier);
    console.log(JSON.stringify(out));
    process.exit(0);
  }
  const { files, violations } = checkLayers(root);
  if (violations.length > 0) {
    console.error(`check-layers: ${violations.length} import(s) break the layer rule (docs/lint.md):`);
    for (const v of violations) console.error(`  ${v}`);
    process.exit(1);
  }
  console.log(`check-layers: ${files} files, every import points down a layer`);
}
