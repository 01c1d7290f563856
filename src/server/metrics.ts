/**
 * Prometheus metrics: HTTP requests and durations per route, consent decisions, the log's size.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Log } from '../log/log.js';
import type { Governance } from '../service/governance.js';
import type { WitnessCollector } from './witnesses.js';

/** The metrics the routes update. */
export interface Metrics {
  readonly registry: Registry;
  /** Consent decisions by operation, effect and reason. */
  readonly decisions: Counter<'operation' | 'effect' | 'reason'>;
}

/** What the witness collector reports to the metrics. */
export interface WitnessMetrics {
  readonly refusals: Counter<'witness'>;
  readonly errors: Counter<'witness'>;
}

/**
 * Per-witness gauges (lag in entries and seconds, last success, cosigned size, alarm) read from the
 * collector at scrape time, the refusal and error counters, and the latest quorum checkpoint's size.
 */
export function installWitnessMetrics(metrics: Metrics, witnesses: () => WitnessCollector | undefined): WitnessMetrics {
  const registers = [metrics.registry];
  const labelNames = ['witness'] as const;
  const perWitness = (name: string, help: string, pick: (s: ReturnType<WitnessCollector['status']>[number]) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const s of witnesses()?.status() ?? []) {
          const v = pick(s);
          if (v !== null) this.set({ witness: s.name }, v);
        }
      },
    });
  perWitness('custos_witness_lag_entries', 'Entries of the latest checkpoint not yet cosigned by the witness', (s) => s.lagEntries);
  perWitness('custos_witness_lag_seconds', 'Seconds since the oldest checkpoint the witness has not cosigned was signed', (s) => s.lagSeconds);
  perWitness('custos_witness_cosigned_size', 'Latest tree size the witness cosigned', (s) => s.cosignedSize);
  perWitness('custos_witness_last_success_timestamp_seconds', 'When the witness last returned a valid cosignature', (s) => (s.lastSuccessMs === null ? null : s.lastSuccessMs / 1000));
  perWitness('custos_witness_alarm', 'Whether the witness is in alarm (refused, unreachable or a bad cosignature)', (s) => (s.alarm ? 1 : 0));
  new Gauge({
    name: 'custos_witness_quorum_checkpoint_size',
    help: 'Tree size of the latest checkpoint that reached the witness quorum (0: none)',
    registers,
    collect() {
      this.set(witnesses()?.quorumCheckpoint()?.treeSize ?? 0);
    },
  });
  return {
    refusals: new Counter({ name: 'custos_witness_refusals_total', help: 'Witness refusals (4xx, unresolved 409, bad cosignature): each is an alarm', labelNames, registers }),
    errors: new Counter({ name: 'custos_witness_errors_total', help: 'Witness requests that failed on the network or with a 5xx (retried)', labelNames, registers }),
  };
}

/**
 * The break-glass review queue as gauges, read at scrape time from the queue the log determines
 * (the scan is brought up to date first, so reviews another process wrote count too).
 */
export function installReviewMetrics(metrics: Metrics, governance: Governance): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'custos_break_glass_reviews_open',
    help: 'Break-glass accesses whose review is open',
    registers,
    async collect() {
      this.set((await governance.listReviews({ status: 'open' })).open);
    },
  });
  new Gauge({
    name: 'custos_break_glass_reviews_overdue',
    help: 'Break-glass reviews open past the review deadline',
    registers,
    async collect() {
      this.set((await governance.listReviews({ overdue: true })).overdue);
    },
  });
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
  // A callback hook: no promise per request.
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions?.url ?? 'unknown';
    httpRequests.inc({ method: req.method, route, status: reply.statusCode });
    httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    done();
  });
  return { registry, decisions };
}
