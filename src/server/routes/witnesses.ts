/**
 * The log's witnesses: per witness its key, the size it last cosigned, its lag, its last error,
 * its refusals and any alarm; and the latest checkpoint that reached the quorum, with its
 * cosignatures (verifiable with the witnesses' keys). Needs `read`, like /api/v1/checkpoint; it holds
 * no patient data (the cosigned checkpoint itself is public at /checkpoint).
 * @module
 */
import * as v from 'valibot';
import { route } from '../route.js';

const ISO = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

const WITNESS = v.object({
  name: v.string(),
  url: v.string(),
  vkey: v.string(),
  cosignedSize: v.nullable(v.number()),
  lagEntries: v.number(),
  lagSeconds: v.number(),
  lastSuccess: v.nullable(v.string()),
  lastError: v.nullable(v.object({ status: v.number(), message: v.string(), at: v.string() })),
  refusals: v.number(),
  errors: v.number(),
  alarm: v.nullable(v.object({ reason: v.string(), status: v.number(), checkpointSize: v.number(), witnessSize: v.nullable(v.number()), at: v.string(), eventIndex: v.nullable(v.number()) })),
});

export const WITNESSES_RESPONSE = v.object({
  treeSize: v.number(),
  quorum: v.number(),
  witnesses: v.array(WITNESS),
  quorumCheckpoint: v.nullable(v.object({ treeSize: v.number(), note: v.string(), witnesses: v.array(v.string()) })),
});

export const witnessRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/witnesses',
    summary: "The log's witnesses (lag, last cosigned size, errors, refusals, alarms) and the latest checkpoint that reached the witness quorum, with its cosignatures",
    permission: 'read',
    response: WITNESSES_RESPONSE,
    handler: async (_call, { log, witnesses }) => {
      const q = witnesses?.quorumCheckpoint();
      return {
        treeSize: log.size,
        quorum: witnesses?.quorum ?? 0,
        witnesses: (witnesses?.status() ?? []).map((s) => ({
          name: s.name,
          url: s.url,
          vkey: s.vkey,
          cosignedSize: s.cosignedSize,
          lagEntries: s.lagEntries,
          lagSeconds: s.lagSeconds,
          lastSuccess: ISO(s.lastSuccessMs),
          lastError: s.lastError ? { status: s.lastError.status, message: s.lastError.message, at: ISO(s.lastError.at)! } : null,
          refusals: s.refusals,
          errors: s.errors,
          alarm: s.alarm
            ? { reason: s.alarm.reason, status: s.alarm.status, checkpointSize: s.alarm.checkpointSize, witnessSize: s.alarm.witnessSize, at: ISO(s.alarm.at)!, eventIndex: s.alarm.eventIndex }
            : null,
        })),
        quorumCheckpoint: q ? { treeSize: q.treeSize, note: q.note, witnesses: [...q.witnesses] } : null,
      };
    },
  }),
];
