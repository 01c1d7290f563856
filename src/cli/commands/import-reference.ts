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
import { ValidationError } from '../../core/errors.js';
import type { StoreLookup } from '../../core/reference-ledger.js';
import { findPriorImport, importReferenceLedger, isStoreName, runReferenceImport, type ReferenceImportReport } from '../../service/reference-import.js';
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

/** The `--json` report (the service's; the HTTP route answers the same). */
export type ImportReferenceReport = ReferenceImportReport;

/** Ledger files are read whole; larger ones are refused. */
export const MAX_LEDGER_BYTES = 1024 * 1024 * 1024;

/** A store directory, read on demand: `<name>.json` for a safe name (service/reference-import.ts), else missing. */
function dirStore(dir: string): StoreLookup {
  return (name) => {
    if (!isStoreName(name)) return undefined;
    try {
      return readFileSync(join(dir, `${name}.json`));
    } catch {
      return undefined;
    }
  };
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
  const dryRun = o.dryRun === true;
  const run = await runReferenceImport(
    { ledger: bytes, policy: dirStore(join(dir, 'policy_store')), manifest: dirStore(join(dir, 'manifest_store')) },
    {
      dryRun,
      ledger: file,
      started,
      target: {
        // Read-only: the log is consulted only if there is one.
        findPrior: async (ledger) => (ctx.storeUrl !== undefined || existsSync(join(ctx.dataDir, DB_FILE)) ? withDataDir(ctx, (d) => findPriorImport(logView(d.store), ledger), true) : undefined),
        importLedger: (ledger) => withLog(ctx, (log) => importReferenceLedger(log, ledger)),
      },
    },
  );
  if (!run.ok) {
    if (ctx.json) printJson(ctx.io, run.report);
    throw run.error;
  }
  const { report, ledger } = run;
  const imported = report.imported;
  const prior = report.alreadyImported;
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
