/**
 * The log's entries and proofs: a filtered listing, one entry with its inclusion proof, RFC 9162
 * inclusion and consistency proofs, and the latest signed checkpoint.
 * @module
 */
import * as v from 'valibot';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { peekEntry } from '../../core/entry.js';
import { toHex } from '../../core/hash.js';
import type { Log } from '../../log/log.js';
import { queryHash } from '../../service/audit.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { DENIED, EXECUTED, INDEX } from './shared.js';

const SIZE = v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,15}$/));

export const ENTRIES_QUERY = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,2}$/))),
  before: v.optional(v.pipe(v.string(), v.regex(/^[0-9]{1,16}$/))),
  type: v.optional(v.string()),
  actor: v.optional(v.string()),
  role: v.optional(v.string()),
  purpose: v.optional(v.string()),
  outcome: v.optional(v.picklist(['executed', 'denied'])),
  since: v.optional(v.string()),
  until: v.optional(v.string()),
});

interface ListQuery {
  limit?: number;
  before?: number;
  type?: string;
  actor?: string;
  role?: string;
  purpose?: string;
  outcome?: 'executed' | 'denied';
  since?: string;
  until?: string;
}

interface ListedEntry {
  index: number;
  time: string;
  type: string;
  payload: Record<string, unknown>;
  leafHash: string;
}

async function listEntries(log: Log, q: ListQuery): Promise<{ items: ListedEntry[]; next: number | null }> {
  const limit = q.limit ?? 50;
  const end = Math.min(log.size, q.before ?? log.size);
  const since = q.since ? Date.parse(q.since) : undefined;
  const until = q.until ? Date.parse(q.until) : undefined;
  const items: ListedEntry[] = [];
  for await (const page of log.reader.entryPagesDescending(0, end)) {
    for (const e of page) {
      const p = peekEntry(e.bytes);
      if (since !== undefined && p.timeMs < since) return { items, next: null };
      if (until !== undefined && p.timeMs > until) continue;
      if (q.type && p.type !== q.type) continue;
      const payload = (p.payload ?? {}) as Record<string, unknown>;
      if (q.actor && payload['actor'] !== q.actor) continue;
      if (q.role && payload['role'] !== q.role) continue;
      if (q.purpose && payload['purpose'] !== q.purpose) continue;
      if (q.outcome === 'denied' && !DENIED.has(p.type)) continue;
      if (q.outcome === 'executed' && !EXECUTED.has(p.type)) continue;
      items.push({ index: e.index, time: p.time, type: p.type, payload, leafHash: toHex(e.leafHash) });
      if (items.length >= limit) return { items, next: e.index };
    }
  }
  return { items, next: null };
}

const PROOF = v.array(v.string());

export const entryRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/entries',
    summary: 'Entries, newest first, filtered by type, actor, role, purpose, outcome and time (logged: AUDIT_QUERY)',
    permission: 'read',
    heavy: true,
    query: ENTRIES_QUERY,
    handler: async ({ query: q, principal, req }, { log, audit }) => {
      const limit = q.limit === undefined ? undefined : Number(q.limit);
      if (limit !== undefined && limit > 500) throw new ValidationError('VALIDATION_FAILED', 'limit must be at most 500');
      for (const k of ['since', 'until'] as const) {
        if (q[k] !== undefined && !Number.isFinite(Date.parse(q[k]))) throw new ValidationError('VALIDATION_FAILED', `${k} must be an RFC 3339 time`, { issues: [{ path: k, message: 'not a time' }] });
      }
      const { limit: _l, before, ...filters } = q;
      void _l;
      const result = await listEntries(log, { ...filters, ...(limit === undefined ? {} : { limit }), ...(before === undefined ? {} : { before: Number(before) }) });
      const indices = result.items.map((i) => i.index);
      // The filter is recorded as a hash (it may name actors or purposes); the range as numbers.
      await audit.query(
        { id: principal.actor, role: principal.role },
        {
          route: routeOf(req),
          permission: 'read',
          count: indices.length,
          queryHash: queryHash(req.query as Record<string, unknown>),
          ...(indices.length > 0 ? { range: { from: Math.min(...indices), to: Math.max(...indices) + 1 } } : {}),
        },
      );
      return result;
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/entries/:index',
    summary: 'One entry with its inclusion proof against the latest signed checkpoint (logged: AUDIT_READ)',
    permission: 'read',
    params: v.object({ index: INDEX }),
    response: v.object({
      index: v.number(),
      entry: v.unknown(),
      entryText: v.string(),
      leafHash: v.string(),
      treeSize: v.number(),
      rootHash: v.string(),
      proof: PROOF,
      checkpoint: v.nullable(v.string()),
    }),
    handler: async ({ params: { index }, principal, req }, { log, audit }) => {
      const entry = await log.reader.getEntry(index);
      const p = await log.reader.inclusionProof(index);
      await audit.read({ id: principal.actor, role: principal.role }, { route: routeOf(req), permission: 'read', eventIndex: index });
      return {
        index,
        entry: JSON.parse(entry.bytes.toString('utf8')) as unknown,
        entryText: entry.bytes.toString('utf8'),
        leafHash: toHex(p.leafHash),
        treeSize: p.treeSize,
        rootHash: toHex(p.rootHash),
        proof: p.proof.map(toHex),
        checkpoint: p.checkpoint?.note ?? null,
      };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/proofs/inclusion/:index',
    summary: 'RFC 9162 inclusion proof (query: size)',
    permission: 'read',
    params: v.object({ index: INDEX }),
    query: v.object({ size: v.optional(SIZE) }),
    response: v.object({ leafIndex: v.number(), treeSize: v.number(), leafHash: v.string(), rootHash: v.string(), proof: PROOF, checkpoint: v.nullable(v.string()) }),
    handler: async ({ params, query }, { log }) => {
      const p = await log.reader.inclusionProof(params.index, query.size === undefined ? undefined : Number(query.size));
      return { leafIndex: p.leafIndex, treeSize: p.treeSize, leafHash: toHex(p.leafHash), rootHash: toHex(p.rootHash), proof: p.proof.map(toHex), checkpoint: p.checkpoint?.note ?? null };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/proofs/consistency',
    summary: 'RFC 9162 consistency proof (query: from, to)',
    permission: 'read',
    query: v.object({ from: SIZE, to: SIZE }),
    response: v.object({ oldSize: v.number(), newSize: v.number(), oldRoot: v.string(), newRoot: v.string(), proof: PROOF }),
    handler: async ({ query }, { log }) => {
      const p = await log.reader.consistencyProof(Number(query.from), Number(query.to));
      return { oldSize: p.oldSize, newSize: p.newSize, oldRoot: toHex(p.oldRoot), newRoot: toHex(p.newRoot), proof: p.proof.map(toHex) };
    },
  }),
  route({
    method: 'GET',
    url: '/api/v1/checkpoint',
    summary: 'The latest signed checkpoint, with the verifier key',
    permission: 'read',
    response: v.object({ origin: v.string(), treeSize: v.number(), rootHash: v.string(), note: v.string(), verifierKey: v.nullable(v.string()) }),
    handler: async (_call, { log, origin }) => {
      const cp = await log.reader.latestCheckpoint();
      if (!cp) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint yet');
      return { origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash), note: cp.note, verifierKey: (await log.reader.meta('verifier_key')) ?? null };
    },
  }),
];
