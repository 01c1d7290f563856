/**
 * The whole log as NDJSON, streamed up to the latest checkpoint; on the log before the first byte.
 * @module
 */
import { Readable } from 'node:stream';
import { toHex } from '../../core/hash.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';

export const exportRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/export',
    summary: 'Stream the log as NDJSON (up to the latest checkpoint; logged first: AUDIT_QUERY)',
    permission: 'export',
    heavy: true,
    produces: 'application/x-ndjson',
    handler: async ({ principal: p, req, reply }, { log, audit }) => {
      // On the log before the first byte: the export carries its own record.
      await audit.query({ id: p.actor, role: p.role }, { route: routeOf(req), permission: 'export' });
      const size = (await log.reader.latestCheckpoint())?.treeSize ?? 0;
      async function* lines() {
        for await (const page of log.reader.entryPages(0, size)) {
          let chunk = '';
          for (const e of page) chunk += `{"index":${e.index},"leafHash":"${toHex(e.leafHash)}","entry":${e.bytes.toString('utf8')}}\n`;
          yield chunk;
        }
      }
      return reply.type('application/x-ndjson').send(Readable.from(lines()));
    },
  }),
];
