/**
 * An attacker with write access to the SQLite file, for tamper tests and `custos tamper-check`.
 * Used only on copies: it edits stored bytes without going through the log.
 * @module
 */
import Database from 'better-sqlite3';

/** Edits stored off-ledger documents in a SQLite file. */
export class SqliteDocumentTamperer {
  readonly #db: Database.Database;
  constructor(path: string) {
    this.#db = new Database(path, { fileMustExist: true });
  }
  /** Hashes of documents of a kind. */
  documentsOfKind(kind: string): string[] {
    return this.#db.prepare('SELECT hash FROM documents WHERE kind = ? ORDER BY hash').pluck().all(kind) as string[];
  }
  /** Replaces a document's bytes (keeping its hash, as an attacker editing the store would). */
  rewrite(hash: string, mutate: (bytes: Buffer) => Buffer): void {
    const cur = this.#db.prepare('SELECT data FROM documents WHERE hash = ?').pluck().get(hash) as Buffer | undefined;
    if (!cur) throw new Error(`no document ${hash}`);
    this.#db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(mutate(cur), hash);
  }
  close(): void {
    this.#db.close();
  }
}
