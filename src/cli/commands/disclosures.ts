/**
 * `custos disclosures` (a patient's accounting of disclosures, service/disclosures.ts) and `custos
 * verify-disclosures` (its offline check with only the log key, core/disclosure-proof.ts).
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { ValidationError } from '../../core/errors.js';
import { verifyDisclosureReport } from '../../core/disclosure-proof.js';
import { openLog } from '../../log/data-dir.js';
import { AuditTrail } from '../../service/audit.js';
import { Governance } from '../../service/governance.js';
import { buildDisclosureReport } from '../../service/disclosures.js';
import { renderDisclosureHtml } from '../../service/disclosures-html.js';
import { disclosureReportToFhir } from '../../service/disclosures-fhir.js';
import { DISCLOSURE_FORMATS } from '../../service/requests.js';
import type { CommandContext } from '../context.js';
import { verifierKeyArg } from '../keys.js';
import { inCwd, printJson, writeFileWhole } from '../output.js';

/** The route the CLI's audit event names (audit events name a route; this one is the CLI's). */
export const CLI_DISCLOSURES_ROUTE = 'GET /cli/disclosures';

/** Options of {@link disclosures}. */
export interface DisclosuresOptions {
  readonly subject: string;
  readonly since?: string;
  readonly until?: string;
  readonly format: string;
  readonly output?: string;
  readonly actor: string;
  readonly actorRole: string;
}

/** `custos disclosures --subject ID [--since T] [--until T] [--format json|fhir|html] [-o FILE] --actor ID --actor-role ROLE`. */
export async function disclosures(ctx: CommandContext, o: DisclosuresOptions): Promise<void> {
  const format = o.format;
  if (!(DISCLOSURE_FORMATS as readonly string[]).includes(format))
    throw new ValidationError('VALIDATION_FAILED', `--format must be one of ${DISCLOSURE_FORMATS.join(', ')}`, { issues: [{ path: 'format', message: 'unknown format' }] });
  const target = o.output === undefined ? undefined : inCwd(ctx.io, o.output);
  // Checked before anything is written to the log.
  if (target !== undefined && (!existsSync(dirname(target)) || !statSync(dirname(target)).isDirectory() || (existsSync(target) && statSync(target).isDirectory()))) {
    throw new ValidationError('FILE_UNREADABLE', `cannot write ${o.output}: no such directory, or it is a directory`);
  }
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  let text: string;
  let lines: number;
  let known: boolean;
  try {
    const gov = await Governance.open({ log });
    const actor = { id: o.actor, role: o.actorRole };
    // The audit event is checked against the event registry: the actor's role must be in the role table.
    const audit = new AuditTrail({ log, vocabulary: gov.vocabulary });
    const query = { subject: o.subject, ...(o.since === undefined ? {} : { since: o.since }), ...(o.until === undefined ? {} : { until: o.until }) };
    const report = await buildDisclosureReport(log, query, { actor, route: CLI_DISCLOSURES_ROUTE, audit, verifier: dir.verifier });
    text = format === 'html' ? renderDisclosureHtml(report) : `${JSON.stringify(format === 'fhir' ? disclosureReportToFhir(report) : report, null, 2)}\n`;
    lines = report.lines.length;
    known = report.subjectKnown;
  } finally {
    await log.close();
    await dir.store.close();
  }
  if (target === undefined) {
    ctx.io.stdout.write(text);
    return;
  }
  writeFileWhole(target, o.output ?? target, text, 0o600);
  if (ctx.json) printJson(ctx.io, { file: o.output, format, lines, subjectKnown: known });
  else ctx.io.stdout.write(`wrote ${o.output}: ${lines} line(s)${known ? '' : ' (subject unknown to the log: nothing can be listed)'}; the query is logged as AUDIT_QUERY\n`);
}

/** `custos verify-disclosures FILE --key VKEY`: the checkpoint signature and every line. */
export async function verifyDisclosuresFile(ctx: CommandContext, file: string, o: { key: string }): Promise<void> {
  const key = verifierKeyArg(ctx, o.key, '--key', 'key');
  let report: unknown;
  try {
    report = JSON.parse(readFileSync(inCwd(ctx.io, file), 'utf8')) as unknown;
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read ${file} as JSON`, { cause: err });
  }
  const r = verifyDisclosureReport(report, [key]);
  if (ctx.json) printJson(ctx.io, { ok: true, ...r });
  else ctx.io.stdout.write(`ok: ${r.lines} line(s) and the query's audit entry are in the checkpoint of ${r.origin} at size ${r.treeSize}, signed by ${key.name}\n`);
}
