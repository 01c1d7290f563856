/**
 * C2SP tlog-tiles (https://c2sp.org/tlog-tiles), public: `/checkpoint`, `/log.pub`, hash tiles
 * `tile/<L>/<N>[.p/<W>]` and entry bundles `tile/entries/<N>[.p/<W>]` (these need `read` unless
 * published), where N is written in groups of three digits, each but the last prefixed with "x"
 * (1234067 is x001/x234/067).
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError } from '../core/errors.js';
import { encodeEntryBundle, TILE_HEIGHT, TILE_WIDTH } from '../core/merkle/tiles.js';
import { nodeSeq } from '../core/merkle/node-id.js';
import type { Log } from '../log/log.js';
import type { AuditTrail } from '../service/audit.js';
import { requirePermission } from './auth.js';
import type { Authenticate } from './auth-hook.js';
import { routeOf } from './context.js';
import type { WitnessCollector } from './witnesses.js';

/** Formats a tile index as tlog-tiles path elements. */
export function formatTileIndex(n: number): string {
  const s = String(n);
  const padded = s.padStart(Math.ceil(s.length / 3) * 3, '0');
  const groups = padded.match(/.{3}/g)!;
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** A parsed tile path, or undefined if it is not one. */
export interface TilePath {
  readonly level: number | 'entries';
  readonly index: number;
  /** Partial width (1..255), or undefined for a full tile. */
  readonly width: number | undefined;
}

/** Parses the part of a tile URL after `tile/`. Attacker-controlled: strict. */
export function parseTilePath(path: string): TilePath | undefined {
  const m = /^(entries|[0-9]|[1-9][0-9])\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([0-9]{1,3}))?$/.exec(path);
  if (!m) return undefined;
  const digits = m[2]!.replace(/x|\//g, '');
  if (digits.length > 15) return undefined;
  // Canonical form only: no leading "x000" groups.
  if (m[2]!.startsWith('x000')) return undefined;
  const index = Number(digits);
  const width = m[3] === undefined ? undefined : Number(m[3]);
  if (width !== undefined && (width < 1 || width >= TILE_WIDTH || m[3] !== String(width))) return undefined;
  return { level: m[1] === 'entries' ? 'entries' : Number(m[1]), index, width };
}

function sendTile(reply: FastifyReply, body: Buffer, full: boolean, restricted = false): FastifyReply {
  // Full tiles never change; partial ones are replaced by longer ones. Restricted ones (entry
  // bundles behind a credential) must not sit in a shared cache.
  return reply
    .type('application/octet-stream')
    .header('cache-control', restricted ? 'private, no-store' : full ? 'public, max-age=31536000, immutable' : 'no-store')
    .send(body);
}

/** Options of {@link registerTlog}. */
export interface TlogOptions {
  readonly log: Log;
  readonly audit: AuditTrail;
  readonly authenticate: Authenticate;
  /** Serve entry bundles without a credential. */
  readonly publicEntries: boolean;
  /** Witness cosignatures to append to the checkpoint, when witnesses are configured. */
  readonly witnesses?: WitnessCollector;
}

/** Serves the checkpoint, the verifier key and the tiles. */
export function registerTlog(app: FastifyInstance, o: TlogOptions): void {
  const { log, audit } = o;
  app.get('/checkpoint', async (_req, reply) => {
    const cp = await log.reader.latestCheckpoint();
    if (!cp) throw new NotFoundError('CHECKPOINT_NOT_FOUND', 'the log has no checkpoint yet');
    // With witnesses: the cosignatures collected for this checkpoint, as extra signature lines (C2SP tlog-cosignature).
    return reply
      .type('text/plain; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(o.witnesses ? o.witnesses.cosigned(cp) : cp.note);
  });

  // The verifier key is public (anyone may check the log with it); fetch it once and pin it.
  app.get('/log.pub', async (_req, reply) => reply.type('text/plain; charset=utf-8').send(`${(await log.reader.meta('verifier_key')) ?? ''}\n`));

  app.get('/tile/*', async (req: FastifyRequest, reply) => {
    const t = parseTilePath((req.params as { '*': string })['*']);
    if (!t) throw new NotFoundError('ROUTE_NOT_FOUND', 'not a tile path');
    const size = (await log.reader.latestCheckpoint())?.treeSize ?? 0;
    const width = t.width ?? TILE_WIDTH;
    if (t.level === 'entries') {
      // Decided on the parsed path (the onRequest hook sees the raw URL, which an encoded or
      // doubled path would get past): entry bundles need `read` unless published.
      if (!o.publicEntries) {
        req.principal ??= await o.authenticate(req);
        requirePermission(req.principal, 'read');
      }
      const start = t.index * TILE_WIDTH;
      if (start + width > size) throw new NotFoundError('ENTRY_NOT_FOUND', 'no such entry bundle');
      const entries: Buffer[] = [];
      for await (const page of log.reader.entryPages(start, start + width)) for (const e of page) entries.push(e.bytes);
      if (entries.length !== width) throw new NotFoundError('ENTRY_NOT_FOUND', 'entry bundle incomplete in the store');
      if (req.principal) {
        // Not published: a bulk read by an authenticated caller, on the log before it is served.
        await audit.query({ id: req.principal.actor, role: req.principal.role }, { route: routeOf(req), permission: 'read', range: { from: start, to: start + width } });
        return sendTile(reply, encodeEntryBundle(entries), t.width === undefined, true);
      }
      return sendTile(reply, encodeEntryBundle(entries), t.width === undefined);
    }
    // Tile L/N holds the hashes of tree level 8L, indices 256N ... 256N+width-1.
    const level = t.level * TILE_HEIGHT;
    const first = t.index * TILE_WIDTH;
    const complete = Math.floor(size / 2 ** level);
    if (first + width > complete) throw new NotFoundError('ENTRY_NOT_FOUND', 'no such tile');
    const ids = Array.from({ length: width }, (_, i) => ({ level, index: first + i }));
    const nodes = await log.reader.getNodes(ids);
    const out = Buffer.alloc(width * 32);
    ids.forEach((id, i) => {
      const h = nodes.get(nodeSeq(id.level, id.index));
      if (!h) throw new NotFoundError('ENTRY_NOT_FOUND', 'tile incomplete in the store');
      h.copy(out, i * 32);
    });
    return sendTile(reply, out, t.width === undefined);
  });
}
