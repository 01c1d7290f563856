/**
 * An attacker with write access to the SQLite file, for tamper tests and `custos tamper-check`.
 * Used only on copies: it edits stored bytes without going through the log.
 * @module
 */
import Database from 'better-sqlite3';
import { TILE_WIDTH, decodeEntryBundle, encodeEntryBundle } from '../../core/merkle/tiles.js';

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

/** Edits log entries in a SQLite file in place (bundle or tail), as an attacker would. */
export class SqliteLogTamperer {
  readonly #db: Database.Database;
  constructor(path: string) {
    this.#db = new Database(path, { fileMustExist: true });
  }
  /** Replaces the bytes of entry `index`; its stored hashes are left alone. */
  editEntry(index: number, mutate: (bytes: Buffer) => Buffer): void {
    const tail = this.#db.prepare('SELECT data FROM entry_tail WHERE idx = ?').pluck().get(index) as Buffer | undefined;
    if (tail) {
      this.#db.prepare('UPDATE entry_tail SET data = ? WHERE idx = ?').run(mutate(tail), index);
      return;
    }
    const n = Math.floor(index / TILE_WIDTH);
    const data = this.#db.prepare('SELECT data FROM entry_bundles WHERE idx = ?').pluck().get(n) as Buffer | undefined;
    if (!data) throw new Error(`no entry ${index}`);
    const entries: Buffer[] = decodeEntryBundle(data).entries.map((e) => Buffer.from(e));
    const j = index - n * TILE_WIDTH;
    entries[j] = mutate(entries[j]!);
    this.#db.prepare('UPDATE entry_bundles SET data = ? WHERE idx = ?').run(encodeEntryBundle(entries), n);
  }
  close(): void {
    this.#db.close();
  }
}
