/**
 * For the explorer and auditors: the log's stats, an overview of recent events, actors with
 * unusual volume or denial rate, and a whole-log verification.
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../../core/errors.js';
import { peekEntry } from '../../core/entry.js';
import { toHex } from '../../core/hash.js';
import type { Log } from '../../log/log.js';
import { queryHash } from '../../service/audit.js';
import { routeOf, type LastVerification } from '../context.js';
import { route } from '../route.js';
import { DENIED, EXECUTED } from './shared.js';

async function overview(log: Log, last: LastVerification | null): Promise<unknown> {
  const cp = await log.reader.latestCheckpoint();
  // Event types are caller-chosen ("constructor" is one): counted in objects without a prototype.
  const byType: Record<string, number> = Object.create(null) as Record<string, number>;
  const byHour = new Map<string, Record<string, number>>();
  let denials = 0;
  let scanned = 0;
  // The most recent 20,000 entries (the explorer's window).
  for await (const page of log.reader.entryPagesDescending(Math.max(0, log.size - 20_000), log.size)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      scanned++;
      byType[p.type] = (byType[p.type] ?? 0) + 1;
      if (DENIED.has(p.type)) denials++;
      const hour = p.time.slice(0, 13);
      const h = byHour.get(hour) ?? (Object.create(null) as Record<string, number>);
      h[p.type] = (h[p.type] ?? 0) + 1;
      byHour.set(hour, h);
    }
  }
  return {
    entries: log.size,
    checkpoint: cp ? { treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), note: cp.note, time: new Date(cp.timeMs).toISOString() } : null,
    lastVerification: last,
    scanned,
    eventsByType: byType,
    eventsByHour: [...byHour.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([hour, counts]) => ({ hour, counts })),
    denials,
  };
}

async function anomalies(log: Log, hours: number): Promise<unknown> {
  const cp = await log.reader.latestCheckpoint();
  const now = cp?.timeMs ?? 0;
  const since = now - hours * 3_600_000;
  const actors = new Map<string, { actor: string; role: string; attempts: number; denials: number }>();
  outer: for await (const page of log.reader.entryPagesDescending(0, log.size)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      if (p.timeMs < since) break outer;
      if (!EXECUTED.has(p.type) && !DENIED.has(p.type)) continue;
      const payload = p.payload as { actor?: string; role?: string };
      const key = `${payload.actor}\u0000${payload.role}`;
      const a = actors.get(key) ?? { actor: String(payload.actor), role: String(payload.role), attempts: 0, denials: 0 };
      a.attempts++;
      if (DENIED.has(p.type)) a.denials++;
      actors.set(key, a);
    }
  }
  const list = [...actors.values()];
  const mean = list.reduce((s, a) => s + a.attempts, 0) / Math.max(1, list.length);
  const sd = Math.sqrt(list.reduce((s, a) => s + (a.attempts - mean) ** 2, 0) / Math.max(1, list.length));
  const flagged = list
    .map((a) => {
      const reasons: string[] = [];
      if (list.length >= 3 && a.attempts > mean + 3 * sd && a.attempts >= 10) reasons.push('volume');
      if (a.attempts >= 5 && a.denials / a.attempts >= 0.5) reasons.push('denial rate');
      return { ...a, denialRate: a.denials / a.attempts, reasons };
    })
    .filter((a) => a.reasons.length > 0)
    .sort((x, y) => y.attempts - x.attempts);
  return { windowHours: hours, actors: list.length, meanAttempts: mean, sdAttempts: sd, flagged };
}

export const overviewRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/verify',
    summary: 'Verify the whole log and the off-ledger store (logged: AUDIT_QUERY)',
    permission: 'verify',
    heavy: true,
    handler: async ({ principal: p, req }, ctx) => {
      await ctx.audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'verify' });
      const t = performance.now();
      const { log: report, documents } = await ctx.verify();
      ctx.state.lastVerification = { ok: report.ok && documents.ok, at: new Date().toISOString(), entries: report.entries, firstBadIndex: report.firstBadIndex ?? null };
      return { ok: report.ok && documents.ok, log: report, documents, seconds: (performance.now() - t) / 1000 };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/stats',
    summary: 'Entries, root, checkpoints, bytes on disk',
    permission: 'read',
    response: v.object({
      origin: v.string(),
      entries: v.number(),
      treeSize: v.number(),
      rootHash: v.nullable(v.string()),
      checkpoints: v.number(),
      bytesOnDisk: v.number(),
      lastUpdate: v.nullable(v.string()),
    }),
    handler: async (_call, { log, origin }) => {
      const s = await log.reader.stats();
      const cp = await log.reader.latestCheckpoint();
      return {
        origin,
        entries: s.treeSize,
        treeSize: cp?.treeSize ?? 0,
        rootHash: cp ? toHex(cp.rootHash) : null,
        checkpoints: s.checkpoints,
        bytesOnDisk: s.bytesOnDisk,
        lastUpdate: cp ? new Date(cp.timeMs).toISOString() : null,
      };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/overview',
    summary: 'For the explorer: size, checkpoint, last verification, events per type and hour, denials',
    permission: 'read',
    heavy: true,
    handler: async (_call, { log, state }) => overview(log, state.lastVerification),
  }),
  route({
    method: 'GET',
    url: '/api/v1/anomalies',
    summary: 'Actors with unusual volume or denial rate over a window (query: hours; logged: AUDIT_QUERY)',
    permission: 'read',
    heavy: true,
    query: v.object({ hours: v.optional(v.pipe(v.string(), v.regex(/^[0-9]+(\.[0-9]+)?$/))) }),
    handler: async ({ query, principal: p, req }, { log, audit }) => {
      const h = Number(query.hours ?? 24);
      if (!(h >= 0.01 && h <= 8760)) throw new ValidationError('VALIDATION_FAILED', 'hours must be between 0.01 and 8760');
      // Staff activity: a bulk read, on the log before it is returned.
      await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'read', queryHash: queryHash({ hours: h }) });
      return anomalies(log, h);
    },
  }),
];
