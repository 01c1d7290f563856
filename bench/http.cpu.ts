/**
 * CPU time per request of the server's request path, in process (not part of npm test): the setup
 * of bench/http.bench.ts, then POST /api/v1/inferences through Fastify's `inject` (no socket, no
 * load generator in the process), 128 requests in flight, and the process's CPU time (user +
 * system) divided by the requests. CPU time, unlike requests per second, is steady on a shared
 * machine; compare builds back to back with it, and confirm with `npm run bench:http`.
 *
 *   npx tsc -p tsconfig.bench.json && node build/bench/http.cpu.js
 *
 * Environment: HTTP_REQUESTS (default 20,000), HTTP_CONNECTIONS (in flight, default 128).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupInferenceBench } from './http-setup.js';

const REQUESTS = Number(process.env['HTTP_REQUESTS'] ?? 20_000);
const IN_FLIGHT = Number(process.env['HTTP_CONNECTIONS'] ?? 128);
const root = mkdtempSync(join(tmpdir(), 'custos-http-cpu-'));
try {
  const { dir, log, app, body: payload, headers } = await setupInferenceBench(root);
  await app.ready();
  let failed = 0;
  const run = async (n: number) => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        const res = await app.inject({ method: 'POST', url: '/api/v1/inferences', headers, payload });
        if (res.statusCode !== 201) failed++;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  };
  await run(2_000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(REQUESTS);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${REQUESTS} requests: ${((cpu.user + cpu.system) / REQUESTS).toFixed(0)} µs CPU per request (user ${(cpu.user / REQUESTS).toFixed(0)}, system ${(cpu.system / REQUESTS).toFixed(0)}); ${Math.round(REQUESTS / wall)} req/s in process; ${failed} not 201`,
  );
  await app.close();
  await log.close();
  await dir.store.close();
  if (failed > 0) process.exitCode = 1;
} finally {
  rmSync(root, { recursive: true, force: true });
}
