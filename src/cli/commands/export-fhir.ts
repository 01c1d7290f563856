/**
 * `custos export --format fhir --output DIR`: the audit trail as FHIR R4 NDJSON in the Bulk Data
 * format, one file per resource type (`AuditEvent.ndjson`, `Provenance.ndjson`), one resource per
 * line, every resource with its inclusion proof against the latest signed checkpoint.
 *
 * The export is on the log before the first byte (AUDIT_QUERY, permission `export`, route
 * `GET /cli/export`, by `--actor`/`--actor-role` or the local operator) and covers that record.
 * It streams page by page (memory does not grow with the log). Each file is written under a
 * temporary name and renamed when complete; DIR must be empty or absent unless `--force`.
 * @module
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { ConflictError, ValidationError } from '../../core/errors.js';
import { OPERATOR_ROLE } from '../../core/vocabulary.js';
import { AuditTrail } from '../../service/audit.js';
import { fhirPages, latestAnchor } from '../../service/fhir-audit.js';
import { Governance } from '../../service/governance.js';
import { withLog, type CommandContext } from '../context.js';
import { inCwd, printFields, printJson } from '../output.js';

/** The route an audit event names for a CLI export. */
export const CLI_EXPORT_ROUTE = 'GET /cli/export';

/** Options of {@link exportFhir}. */
export interface FhirExportOptions {
  readonly output: string | undefined;
  readonly force?: boolean;
  readonly actor?: string | undefined;
  readonly actorRole?: string | undefined;
}

/** The local operator as an actor id (`local:USER`), for events the CLI writes without --actor. */
export function localOperator(): string {
  let name = 'operator';
  try {
    name = userInfo().username || name;
  } catch {
    // no user database
  }
  return `local:${name}`.replace(/[^A-Za-z0-9._:@/-]/g, '_');
}

/**
 * Writes the FHIR NDJSON files.
 * @throws {ValidationError} VALIDATION_FAILED (no --output), FILE_UNREADABLE (DIR is a file or its parent is missing)
 * @throws {ConflictError} EXPORT_DIR_NOT_EMPTY (DIR holds files and --force is not given)
 */
export async function exportFhir(ctx: CommandContext, o: FhirExportOptions): Promise<void> {
  if (o.output === undefined) throw new ValidationError('VALIDATION_FAILED', '--format fhir writes a directory: give --output DIR', { issues: [{ path: 'output', message: 'required' }] });
  if ((o.actor === undefined) !== (o.actorRole === undefined)) throw new ValidationError('VALIDATION_FAILED', 'give both --actor and --actor-role, or neither (the local operator)');
  const dir = inCwd(ctx.io, o.output);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new ValidationError('FILE_UNREADABLE', `cannot write into ${o.output}: it is not a directory`);
    if (readdirSync(dir).length > 0 && !o.force) throw new ConflictError('EXPORT_DIR_NOT_EMPTY', `${o.output} is not empty (pass --force to write into it)`, { details: { output: o.output } });
  }
  const who = o.actor !== undefined && o.actorRole !== undefined ? { id: o.actor, role: o.actorRole } : { id: localOperator(), role: OPERATOR_ROLE };
  await withLog(ctx, async (log, dataDir) => {
    // On the log first (checked against the registry with the log's vocabularies).
    const gov = await Governance.open({ log });
    await new AuditTrail({ log, vocabulary: gov.vocabulary }).query(who, { route: CLI_EXPORT_ROUTE, permission: 'export' });
    const anchor = await latestAnchor(log.reader);
    mkdirSync(dir, { recursive: true });
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const files = { AuditEvent: join(dir, 'AuditEvent.ndjson'), Provenance: join(dir, 'Provenance.ndjson') };
    const tmp = { AuditEvent: `${files.AuditEvent}.partial-${tag}`, Provenance: `${files.Provenance}.partial-${tag}` };
    const out: Record<keyof typeof files, WriteStream> = {
      AuditEvent: createWriteStream(tmp.AuditEvent, { flags: 'wx' }),
      Provenance: createWriteStream(tmp.Provenance, { flags: 'wx' }),
    };
    const write = async (s: WriteStream, text: string) => {
      if (text !== '' && !s.write(text)) await once(s, 'drain');
    };
    const counts = { AuditEvent: 0, Provenance: 0 };
    try {
      for await (const page of fhirPages(log.reader, dataDir.origin, anchor)) {
        await write(out.AuditEvent, page.auditEvents.map((r) => `${JSON.stringify(r)}\n`).join(''));
        await write(out.Provenance, page.provenances.map((r) => `${JSON.stringify(r)}\n`).join(''));
        counts.AuditEvent += page.auditEvents.length;
        counts.Provenance += page.provenances.length;
      }
      for (const s of Object.values(out)) {
        s.end();
        await once(s, 'finish');
      }
      renameSync(tmp.AuditEvent, files.AuditEvent);
      renameSync(tmp.Provenance, files.Provenance);
    } catch (err) {
      for (const s of Object.values(out)) s.destroy();
      for (const t of Object.values(tmp)) rmSync(t, { force: true });
      throw err;
    }
    const summary = { output: o.output, treeSize: anchor.treeSize, auditEvents: counts.AuditEvent, provenances: counts.Provenance, files: ['AuditEvent.ndjson', 'Provenance.ndjson'] };
    if (ctx.json) printJson(ctx.io, summary);
    else printFields(ctx.io, { output: o.output, 'tree size': anchor.treeSize, AuditEvent: `${counts.AuditEvent} (AuditEvent.ndjson)`, Provenance: `${counts.Provenance} (Provenance.ndjson)` });
  });
}
