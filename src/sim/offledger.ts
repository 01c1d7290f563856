/**
 * The off-ledger batch tamper test on a data directory: run on a copy, never on the original.
 * @module
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../core/errors.js';
import { DB_FILE, openDataDir } from '../log/data-dir.js';
import { DOC } from '../service/governance.js';
import { runTamperCheck, type TamperCheckReport } from '../service/tamper-check.js';
import { verifyDocuments } from '../service/verify-documents.js';
import { SqliteDocumentTamperer } from '../store/sqlite/tamper.js';

/**
 * Copies `dataDir`, samples receipts in the copy, edits `rate` of them the way the reference did
 * (the recorded purpose), verifies the copy's off-ledger store and scores detection.
 * @throws {ValidationError} VALIDATION_FAILED when there is no receipt to sample
 */
export async function tamperCheckDataDir(dataDir: string, o: { sample: number; rate: number; seed: number }): Promise<TamperCheckReport> {
  // Opening first makes sure it is a log (and lets SQLite settle its WAL) before copying.
  const dir = await openDataDir(dataDir, { readonly: true });
  await dir.store.close();
  const copy = mkdtempSync(join(tmpdir(), 'custos-tamper-'));
  try {
    cpSync(dataDir, copy, { recursive: true });
    const path = join(copy, DB_FILE);
    const lister = new SqliteDocumentTamperer(path);
    let receipts: string[];
    try {
      receipts = lister.documentsOfKind(DOC.receipt);
    } finally {
      lister.close();
    }
    if (receipts.length === 0) throw new ValidationError('VALIDATION_FAILED', 'the log has no inference receipts to sample');
    // Opened for the edits, closed before each verification (which opens the copy read-only).
    let tamperer: SqliteDocumentTamperer | undefined;
    try {
      return await runTamperCheck({
        receipts,
        sample: o.sample,
        rate: o.rate,
        seed: o.seed,
        tamper: (hash) => {
          tamperer ??= new SqliteDocumentTamperer(path);
          tamperer.rewrite(hash, (bytes) => {
            const r = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
            return Buffer.from(JSON.stringify({ ...r, purpose: 'tampered_purpose' }));
          });
        },
        flagged: async () => {
          tamperer?.close();
          tamperer = undefined;
          const d = await openDataDir(copy, { readonly: true });
          try {
            const rep = await verifyDocuments({ store: d.store, maxFindings: Number.MAX_SAFE_INTEGER });
            return new Set(rep.findings.filter((f) => f.kind === 'DOCUMENT_EDITED' || f.kind === 'DOCUMENT_MISSING').map((f) => f.ref));
          } finally {
            await d.store.close();
          }
        },
      });
    } finally {
      tamperer?.close();
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
