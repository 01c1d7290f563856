/**
 * Prometheus metrics: HTTP requests and durations per route, consent decisions, the log's size.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Log } from '../log/log.js';

/** The metrics the routes update. */
export interface Metrics {
  readonly registry: Registry;
  /** Consent decisions by operation, effect and reason. */
  readonly decisions: Counter<'operation' | 'effect' | 'reason'>;
}

/** Creates the registry and counts every response. */
export function installMetrics(app: FastifyInstance, log: Log): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'custos_' });
  const httpRequests = new Counter({ name: 'custos_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const httpDuration = new Histogram({
    name: 'custos_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const decisions = new Counter({ name: 'custos_decisions_total', help: 'Consent decisions by effect and reason', labelNames: ['operation', 'effect', 'reason'] as const, registers: [registry] });
  new Gauge({
    name: 'custos_log_entries',
    help: 'Entries in the log',
    registers: [registry],
    collect() {
      this.set(log.size);
    },
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions?.url ?? 'unknown';
    httpRequests.inc({ method: req.method, route, status: reply.statusCode });
    httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  return { registry, decisions };
}
