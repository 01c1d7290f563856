/**
 * Prints the top self-time frames of a V8 CPU profile (not part of npm test). With Node's own
 * profiler on any benchmark or command:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof build/bench/sim.profile.js
 *   node build/bench/top-frames.js /tmp/prof/*.cpuprofile [TOP]
 *
 * Shares are of all samples of the profiled thread, idle included (shown as `(idle)`).
 */
import { readFileSync } from 'node:fs';

interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const args = process.argv.slice(2);
const top = /^\d+$/.test(args.at(-1) ?? '') ? Number(args.pop()) : 30;
for (const file of args) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anon)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
  for (const [k, t] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}
