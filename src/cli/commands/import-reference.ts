/**
 * `custos import reference-ledger DIR`: verifies a ledger written by the reference notebook, with its
 * `policy_store/` and `manifest_store/`, exactly as the reference hashes (src/core/reference-ledger.ts),
 * and imports it as legacy events (src/service/reference-import.ts). The first defect is reported
 * (REFERENCE_LEDGER_INVALID, `details.defect` and `details.line`) and nothing is written;
 * `--dry-run` verifies and reports what would be imported, and writes nothing either way.
 * @module
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValidationError, VerificationError } from '../../core/errors.js';
import { verifyReferenceLedger, type ReferenceDefect, type VerifiedReferenceLedger } from '../../core/reference-ledger.js';
import { findPriorImport, importReferenceLedger, type PriorImport, type ReferenceImportResult } from '../../service/reference-import.js';
import { DB_FILE } from '../../log/data-dir.js';
import { logView } from '../../log/reader.js';
import { withDataDir, withLog, type CommandContext } from '../context.js';
import { inCwd, printJson } from '../output.js';

/** Options of {@link importReference}. */
export interface ImportReferenceOptions {
  /** The ledger file (default: DIR/ledger.jsonl, else the one *.jsonl in DIR/ledger/). */
  readonly ledger?: string;
  readonly dryRun?: boolean;
}

/** The `--json` report. */
export interface ImportReferenceReport {
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly ledger: string;
  /** The first defect (null when the ledger verified). */
  readonly defect: ReferenceDefect | null;
  /** Lines read before the defect, or every line. */
  readonly linesRead: number;
  readonly lines?: number;
  readonly entries?: number;
  readonly blankLines?: number;
  readonly head?: string;
  readonly fileDigest?: string;
  readonly manifests?: number;
  readonly policies?: number;
  readonly eventTypes?: Readonly<Record<string, number>>;
  /** The log already holds this ledger (a dry run reports it; an import is refused). */
  readonly alreadyImported: PriorImport | null;
  /** What the import wrote (null on a dry run). */
  readonly imported: ReferenceImportResult | null;
  readonly ms: number;
  readonly linesPerSecond?: number;
}

/** Ledger files are read whole; larger ones are refused. */
export const MAX_LEDGER_BYTES = 1024 * 1024 * 1024;
// A policy id or manifest name is read as a file name in its store, never as a path: no separator,
// no NUL, not a dot name, at most 200 characters (a name outside these counts as missing).
const UNSAFE_NAME_RE = /[/\\\u0000]|^\.{1,2}$/;

function readOptional(dir: string, name: string): Uint8Array | undefined {
  if (name.length === 0 || name.length > 200 || UNSAFE_NAME_RE.test(name)) return undefined;
  const p = join(dir, `${name}.json`);
  try {
    return readFileSync(p);
  } catch {
    return undefined;
  }
}

function ledgerPath(ctx: CommandContext, dir: string, option: string | undefined): string {
  if (option !== undefined) return inCwd(ctx.io, option);
  const direct = join(dir, 'ledger.jsonl');
  if (existsSync(direct)) return direct;
  const sub = join(dir, 'ledger');
  try {
    const files = (statSync(sub).isDirectory() ? readdirSync(sub).sort() : []).filter((f) => f.endsWith('.jsonl'));
    if (files.length === 1) return join(sub, files[0]!);
    if (files.length > 1) throw new ValidationError('VALIDATION_FAILED', `${sub} holds ${files.length} ledgers: choose one with --ledger FILE`, { details: { ledgers: files } });
  } catch (err) {
    if (err instanceof ValidationError) throw err;
  }
  throw new ValidationError('FILE_UNREADABLE', `no ledger in ${dir}: expected ledger.jsonl (or pass --ledger FILE)`);
}

/** Runs the import (or, with `dryRun`, only the verification). */
export async function importReference(ctx: CommandContext, dirArg: string, o: ImportReferenceOptions): Promise<void> {
  const started = performance.now();
  const dir = resolve(inCwd(ctx.io, dirArg));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ValidationError('FILE_UNREADABLE', `${dirArg} is not a directory`);
  const file = ledgerPath(ctx, dir, o.ledger);
  let bytes: Buffer;
  try {
    if (statSync(file).size > MAX_LEDGER_BYTES) throw new ValidationError('VALIDATION_FAILED', `the ledger is larger than ${MAX_LEDGER_BYTES} bytes`);
    bytes = readFileSync(file);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError('FILE_UNREADABLE', `cannot read the ledger ${file}`, { cause: err });
  }
  const result = verifyReferenceLedger({
    ledger: bytes,
    policy: (id) => readOptional(join(dir, 'policy_store'), id),
    manifest: (name) => readOptional(join(dir, 'manifest_store'), name),
  });
  const dryRun = o.dryRun === true;
  const base = { dryRun, ledger: file };
  if (!result.ok) {
    const d = result.defect;
    const ms = performance.now() - started;
    if (ctx.json) printJson(ctx.io, { ok: false, ...base, defect: d, linesRead: result.linesRead, alreadyImported: null, imported: null, ms: round(ms) } satisfies ImportReferenceReport);
    throw new VerificationError('REFERENCE_LEDGER_INVALID', `${d.defect} at line ${d.line}: ${d.message}`, {
      details: { defect: d.defect, line: d.line, ...(d.ref === undefined ? {} : { ref: d.ref }), ...(d.expected === undefined ? {} : { expected: d.expected, actual: d.actual }) },
    });
  }
  const ledger = result.ledger;
  let prior: PriorImport | undefined;
  let imported: ReferenceImportResult | null = null;
  if (dryRun) {
    // Read-only: the log is consulted only if there is one.
    if (ctx.storeUrl !== undefined || existsSync(join(ctx.dataDir, DB_FILE))) prior = await withDataDir(ctx, (d) => findPriorImport(logView(d.store), ledger), true);
  } else {
    imported = await withLog(ctx, (log) => importReferenceLedger(log, ledger));
  }
  const ms = performance.now() - started;
  const report: ImportReferenceReport = {
    ok: true,
    ...base,
    defect: null,
    linesRead: ledger.lines.length + ledger.blankLines,
    ...summary(ledger),
    alreadyImported: prior ?? null,
    imported,
    ms: round(ms),
    linesPerSecond: Math.round(ledger.lines.length / (ms / 1000)),
  };
  if (ctx.json) return printJson(ctx.io, report);
  const types = Object.entries(ledger.eventTypes)
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
  ctx.io.stdout.write(
    `reference ledger ${file}: verified, ${ledger.lines.length} lines (genesis + ${ledger.entries} entries${types ? `: ${types}` : ''}), ${ledger.manifests} manifests, ${ledger.policies} policies; head ${ledger.head}\n`,
  );
  if (imported) {
    ctx.io.stdout.write(
      `imported as log entries ${imported.firstIndex}..${imported.lastIndex} (LEGACY_EVENT) and ${imported.completedIndex} (LEGACY_IMPORT_COMPLETED): ${imported.documents} documents off-ledger, ${imported.commitments} new commitments\n`,
    );
  } else if (prior) {
    ctx.io.stdout.write(`dry run: already imported (line ${prior.line} is log entry ${prior.index}); an import would be refused with LEGACY_ALREADY_IMPORTED\n`);
  } else {
    ctx.io.stdout.write(`dry run: nothing written; an import would append ${ledger.lines.length + 1} entries\n`);
  }
}

function summary(l: VerifiedReferenceLedger) {
  return { lines: l.lines.length, entries: l.entries, blankLines: l.blankLines, head: l.head, fileDigest: l.fileDigest, manifests: l.manifests, policies: l.policies, eventTypes: l.eventTypes };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
