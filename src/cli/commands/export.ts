import { createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../../core/errors.js';
import { toHex } from '../../core/hash.js';
import { peekEntry } from '../../core/entry.js';
import { EVENT_TYPE, parseLoggedEvent, stringField } from '../../core/events.js';
import { withDataDir, type CommandContext } from '../context.js';
import { inCwd } from '../output.js';
import { loadSigner } from '../../log/data-dir.js';
import { intotoAttestations } from '../../service/bundle.js';

export const EXPORT_FORMATS = ['json', 'csv', 'ndjson', 'intoto', 'fhir'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  readonly format: ExportFormat;
  readonly output?: string;
  /** fhir: write into a non-empty --output directory. */
  readonly force?: boolean;
  /** fhir: who exports (default: the local operator), for the AUDIT_QUERY. */
  readonly actor?: string;
  readonly actorRole?: string;
}

// RFC 4180: quote every field that needs it, doubling quotes.
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The CSV columns: the entry (index, time, type, leaf hash, the entry's JSON), then the generic
 * audit event's fields as their own columns (issue 14, the reference's AUDIT_EVENT: resource,
 * practitioner, content hash), empty on other events. Appended after `entry`, so that the earlier
 * columns keep their positions.
 */
export const CSV_HEADER = 'index,time,type,leaf_hash,entry,resource,practitioner,content_hash';

// The AUDIT_EVENT columns of one entry (three empty fields for any other type).
function auditEventColumns(type: string, text: string): string {
  if (type !== EVENT_TYPE.auditEvent) return ',,';
  const payload = parseLoggedEvent(text)?.payload;
  return [stringField(payload, 'resource'), stringField(payload, 'practitioner'), stringField(payload, 'contentHash')].map((x) => csvField(x ?? '')).join(',');
}

/**
 * `custos export`: streams the log up to its latest signed checkpoint, in bounded memory.
 * With --output the file appears only when the export is complete (written to a temporary name, then renamed).
 */
export async function exportLog(ctx: CommandContext, o: ExportOptions): Promise<void> {
  // FHIR R4 NDJSON (Bulk Data): a directory of one file per resource type (export-fhir.ts).
  if (o.format === 'fhir') {
    const { exportFhir } = await import('./export-fhir.js');
    return exportFhir(ctx, { output: o.output, force: o.force === true, actor: o.actor, actorRole: o.actorRole });
  }
  // Messages name the path as given; the files are opened at `target` (the same unless run in process with a cwd).
  const target = o.output === undefined ? undefined : inCwd(ctx.io, o.output);
  if (o.output !== undefined && target !== undefined) {
    const parent = dirname(o.output);
    if (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory()) {
      throw new ValidationError('FILE_UNREADABLE', `cannot write ${o.output}: no such directory ${parent}`);
    }
    if (existsSync(target) && statSync(target).isDirectory()) {
      throw new ValidationError('FILE_UNREADABLE', `cannot write ${o.output}: it is a directory`);
    }
  }
  await withDataDir(
    ctx,
    async (dir) => {
      const cp = await dir.store.latestCheckpoint();
      const size = cp?.treeSize ?? 0;
      // pid and a random tag: several runs of the CLI may share one process (in-process callers).
      const tmp = target === undefined ? undefined : `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
      const out: NodeJS.WritableStream = tmp === undefined ? ctx.io.stdout : createWriteStream(tmp, { flags: 'wx' });
      const write = async (s: string) => {
        if (!out.write(s)) await once(out, 'drain');
      };
      try {
        if (o.format === 'json') {
          await write(
            `{"origin":${JSON.stringify(dir.origin)},"verifierKey":${JSON.stringify(dir.verifierKey)},"treeSize":${size},"rootHash":${JSON.stringify(cp ? toHex(cp.rootHash) : null)},"checkpoint":${JSON.stringify(cp?.note ?? null)},"entries":[`,
          );
        } else if (o.format === 'csv') {
          await write(`${CSV_HEADER}\r\n`);
        }
        if (o.format === 'intoto') {
          // NDJSON of DSSE envelopes (in-toto statements of the inference and training events), signed by the log key.
          for await (const env of intotoAttestations(dir.store, dir.origin, loadSigner(dir), size)) await write(`${JSON.stringify(env)}\n`);
        }
        let first = true;
        for await (const page of dir.store.entryPages(0, o.format === 'intoto' ? 0 : size)) {
          let chunk = '';
          for (const e of page) {
            const text = e.bytes.toString('utf8');
            const leaf = toHex(e.leafHash);
            if (o.format === 'csv') {
              const p = peekEntry(e.bytes);
              chunk += `${e.index},${p.time},${csvField(p.type)},${leaf},${csvField(text)},${auditEventColumns(p.type, text)}\r\n`;
            } else {
              // The entry is embedded verbatim: its bytes are exactly what the leaf hash commits to.
              chunk += `${o.format === 'json' && !first ? ',' : ''}${o.format === 'json' ? '\n' : ''}{"index":${e.index},"leafHash":"${leaf}","entry":${text}}${o.format === 'ndjson' ? '\n' : ''}`;
            }
            first = false;
          }
          await write(chunk);
        }
        if (o.format === 'json') await write('\n]}\n');
        if (tmp !== undefined) {
          out.end();
          await once(out, 'finish');
          renameSync(tmp, target!);
        }
      } catch (err) {
        if (tmp !== undefined) {
          out.end();
          rmSync(tmp, { force: true });
        }
        throw err;
      }
    },
    true,
  );
}
