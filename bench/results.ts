/**
 * bench/RESULTS.md holds one section per benchmark, between <!-- name:start --> and <!-- name:end -->;
 * each benchmark rewrites only its own section.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeSection(name: string, lines: readonly string[]): string {
  const file = join(process.cwd(), 'bench', 'RESULTS.md');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${lines.join('\n')}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Custos benchmark results\n';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  text = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
  return file;
}
