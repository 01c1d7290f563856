/**
 * Import of a verified reference ledger (src/core/reference-ledger.ts) into the log, as legacy
 * events: one LEGACY_EVENT per line, in order, then one LEGACY_IMPORT_COMPLETED.
 *
 * What reaches the log: the line number, the reference event type (one the reference writes, else
 * UNRECOGNIZED), the entry id (a UUID, else left off), time and hashes,
 * salted commitments to the subject id and URIs the line names, and the hashes of the off-ledger
 * documents: the line's exact bytes, and the reproducibility manifest and policy file it vouches
 * for, as stored. Everything else the line says (actor ids, roles, purposes, policy ids) stays in
 * the line's document.
 *
 * A ledger is imported once: an import is refused (LEGACY_ALREADY_IMPORTED) when the log already
 * holds a LEGACY_EVENT for any of its entries (by entry hash) or for its genesis line (by the
 * line's bytes), which also covers an import that stopped part-way and a ledger that shares a
 * prefix with one already imported.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { COMMITMENT_SALT_BYTES, computeCommitment } from '../core/commitment.js';
import { ConflictError, VerificationError } from '../core/errors.js';
import { formatEntryTime, MAX_ENTRY_TIME_MS, entryTypeOf } from '../core/entry.js';
import { LEGACY_ENTRY_ID_RE, LEGACY_EVENT, checkEventPayload, legacyTypeOf, parseLoggedEvent, recordField, stringField } from '../core/events.js';
import { sha256, toHex } from '../core/hash.js';
import {
  legacyIdentifiers,
  verifyReferenceLedger,
  type ReferenceDefect,
  type ReferenceLedgerInput,
  type ReferenceLine,
  type StoreLookup,
  type VerifiedReferenceLedger,
} from '../core/reference-ledger.js';
import { DEFAULT_VOCABULARY, type Vocabulary } from '../core/vocabulary.js';
import type { AppendResult, Log, LogView, SidecarCommitment, SidecarDocument } from '../log/log.js';
import { DOC } from './governance/documents.js';

/** Commitment kinds of the values a legacy line names (the overlay's own kinds). */
const KIND = { subject: 'subject', uri: 'uri' } as const;

/** Where a ledger was imported before. */
export interface PriorImport {
  /** The 0-based ledger line found on the log. */
  readonly line: number;
  /** The log index of its LEGACY_EVENT. */
  readonly index: number;
}

/** What {@link importReferenceLedger} wrote. */
export interface ReferenceImportResult {
  /** Log index of the first LEGACY_EVENT, and of the last. */
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** Log index of LEGACY_IMPORT_COMPLETED. */
  readonly completedIndex: number;
  readonly lines: number;
  readonly entries: number;
  readonly documents: number;
  readonly commitments: number;
}

/** The key a line is recognised by on the log: its entry hash, or (genesis) the hash of its bytes. */
function lineKey(l: ReferenceLine): string {
  return l.entryHash ?? `line:${toHex(sha256(l.bytes))}`;
}

/**
 * The first line of `ledger` that the log already holds as a LEGACY_EVENT, if any (a scan of the
 * log's entries; other types are skipped by their tail without parsing).
 */
export async function findPriorImport(log: LogView, ledger: VerifiedReferenceLedger): Promise<PriorImport | undefined> {
  const wanted = new Map<string, number>();
  for (const l of ledger.lines) wanted.set(lineKey(l), l.line);
  let best: PriorImport | undefined;
  const snap = await log.reader.snapshot();
  try {
    const size = await snap.reader.size();
    for await (const page of snap.reader.entryPages(0, size)) {
      for (const e of page) {
        const type = entryTypeOf(e.bytes);
        if (type !== undefined && type !== LEGACY_EVENT.event) continue;
        const x = parseLoggedEvent(e.bytes);
        if (x?.type !== LEGACY_EVENT.event) continue;
        const entryHash = stringField(x.payload, 'entryHash');
        const lineDoc = stringField(recordField(x.payload, 'documents'), 'line');
        const line = (entryHash !== undefined ? wanted.get(entryHash) : undefined) ?? (lineDoc !== undefined ? wanted.get(`line:${lineDoc}`) : undefined);
        if (line !== undefined && (best === undefined || line < best.line)) best = { line, index: e.index };
      }
    }
  } finally {
    await snap.release();
  }
  return best;
}

/** Options of {@link importReferenceLedger}. */
export interface ReferenceImportOptions {
  /** Random bytes for commitment salts (default: node:crypto). */
  readonly random?: (n: number) => Buffer;
  /**
   * Who imported (an HTTP caller: the credential's actor and role), recorded on
   * LEGACY_IMPORT_COMPLETED. The CLI's operator import records none.
   */
  readonly by?: { readonly actor: string; readonly role: string };
  /** The vocabulary the payloads are checked against (default {@link DEFAULT_VOCABULARY}; the server's, with its roles). */
  readonly vocabulary?: Vocabulary;
}

/**
 * Appends every line of a verified ledger as a LEGACY_EVENT, in order, then LEGACY_IMPORT_COMPLETED.
 * Resolves once all are durable and covered by a signed checkpoint.
 * @throws {ConflictError} LEGACY_ALREADY_IMPORTED when the log already holds a line of this ledger
 */
export async function importReferenceLedger(log: Log, ledger: VerifiedReferenceLedger, options: ReferenceImportOptions = {}): Promise<ReferenceImportResult> {
  const prior = await findPriorImport(log, ledger);
  if (prior) {
    throw new ConflictError('LEGACY_ALREADY_IMPORTED', `this ledger was already imported: its line ${prior.line} is log entry ${prior.index}`, { details: { line: prior.line, index: prior.index } });
  }
  const random = options.random ?? randomBytes;
  const vocabulary = options.vocabulary ?? DEFAULT_VOCABULARY;
  // Checked before anything is appended: a bad actor or role writes nothing.
  if (options.by)
    checkEventPayload(LEGACY_EVENT.completed, { head: ledger.head, fileDigest: ledger.fileDigest, lines: 0, entries: 0, firstIndex: 0, manifests: 0, policies: 0, ...options.by }, vocabulary);
  // One commitment per (kind, value): an existing one is reused (the overlay's rule), a new one
  // carries its opening with the first event that names it.
  const commitments = new Map<string, { c: SidecarCommitment; carried: boolean }>();
  const commit = async (kind: string, value: string): Promise<{ c: SidecarCommitment; carried: boolean }> => {
    const key = `${kind}\u0000${value}`;
    let x = commitments.get(key);
    if (!x) {
      const existing = await log.sidecar.reusableCommitment(kind, value);
      if (existing) x = { c: existing, carried: true };
      else {
        const salt = random(COMMITMENT_SALT_BYTES);
        x = { c: { commitment: computeCommitment(salt, value), kind, value, salt }, carried: false };
      }
      commitments.set(key, x);
    }
    return x;
  };
  const docOf = (kind: string, bytes: Buffer): SidecarDocument => ({ hash: toHex(sha256(bytes)), kind, bytes });

  const pending: Promise<AppendResult>[] = [];
  let documents = 0;
  let opened = 0;
  for (const l of ledger.lines) {
    const ids = legacyIdentifiers(l);
    const openings: SidecarCommitment[] = [];
    const take = async (kind: string, value: string): Promise<string> => {
      const x = await commit(kind, value);
      if (!x.carried) {
        x.carried = true;
        openings.push(x.c);
      }
      return x.c.commitment;
    };
    const subject = ids.subject === undefined ? undefined : await take(KIND.subject, ids.subject);
    const uris: string[] = [];
    for (const u of ids.uris) uris.push(await take(KIND.uri, u));
    const docs = [docOf(DOC.legacyLine, l.bytes)];
    if (l.manifest) docs.push(docOf(DOC.legacyManifest, l.manifest.bytes));
    if (l.policy) docs.push(docOf(DOC.legacyPolicy, l.policy.bytes));
    documents += docs.length;
    opened += openings.length;
    // Only codes of the reference's own vocabulary and UUIDs reach the log: a type or entry_id the
    // file makes up (it could spell a name or a diagnosis) stays in the line's bytes, off-ledger.
    const legacyType = l.kind === 'genesis' ? 'GENESIS' : legacyTypeOf(l.eventType!);
    const timeMs = l.timeMs <= BigInt(MAX_ENTRY_TIME_MS) ? Number(l.timeMs) : undefined;
    const payload = {
      line: l.line,
      legacyType,
      ...(l.entryId !== undefined && LEGACY_ENTRY_ID_RE.test(l.entryId) ? { entryId: l.entryId } : {}),
      ...(timeMs === undefined ? {} : { legacyTime: formatEntryTime(timeMs) }),
      ...(l.prevHash === undefined ? {} : { prevHash: l.prevHash }),
      ...(l.entryHash === undefined ? {} : { entryHash: l.entryHash }),
      ...(subject === undefined ? {} : { subject }),
      uris,
      documents: {
        line: docs[0]!.hash,
        ...(l.manifest ? { manifest: docs[1]!.hash } : {}),
        ...(l.policy ? { policy: docs[docs.length - 1]!.hash } : {}),
      },
    };
    checkEventPayload(LEGACY_EVENT.event, payload, vocabulary);
    pending.push(log.appendDecided(() => ({ type: LEGACY_EVENT.event, payload, sidecar: { documents: docs, commitments: openings } })));
  }
  const results = await Promise.all(pending);
  const firstIndex = results[0]!.index;
  const completed = {
    head: ledger.head,
    fileDigest: ledger.fileDigest,
    lines: ledger.lines.length,
    entries: ledger.entries,
    firstIndex,
    manifests: ledger.manifests,
    policies: ledger.policies,
    ...(options.by ? { actor: options.by.actor, role: options.by.role } : {}),
  };
  checkEventPayload(LEGACY_EVENT.completed, completed, vocabulary);
  const done = await log.append(LEGACY_EVENT.completed, completed);
  return {
    firstIndex,
    lastIndex: results[results.length - 1]!.index,
    completedIndex: done.index,
    lines: ledger.lines.length,
    entries: ledger.entries,
    documents,
    commitments: opened,
  };
}

// ---------------------------------------------------------------------------------------------
// One import, from the files to the report: the CLI (files read from DIR) and the HTTP route
// (files in the request body) both call runReferenceImport.

/**
 * A store file's name, as the reference writes it: `<policy_id>.json` in `policy_store/`,
 * `repro_<event_id>.json` in `manifest_store/`. The id is used only as a file name, never as a
 * path: no separator, no NUL, not a dot name, at most 200 characters; a name outside these counts
 * as missing.
 */
export const MAX_STORE_NAME = 200;
const UNSAFE_NAME_RE = /[/\\\u0000]|^\.{1,2}$/;

/** Whether `name` (a policy id or manifest name, without `.json`) may be looked up in a store. */
export function isStoreName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_STORE_NAME && !UNSAFE_NAME_RE.test(name);
}

/**
 * A store held in memory, by file name (`consent_0002.json`), as a directory listing gives it: the
 * lookup the verifier calls with a policy id or manifest name finds `<name>.json`.
 */
export function memoryStore(files: ReadonlyMap<string, Uint8Array>): StoreLookup {
  return (name) => (isStoreName(name) ? files.get(`${name}.json`) : undefined);
}

/** The report of one import (`custos import reference-ledger --json`, and the HTTP route's body). */
export interface ReferenceImportReport {
  readonly ok: boolean;
  readonly dryRun: boolean;
  /** The ledger: its file (CLI), or `request body` (HTTP). */
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

/** Where a run reads and writes: the log, opened by the caller (the CLI opens it only when needed). */
export interface ReferenceImportTarget {
  /** A dry run: finds an earlier import (undefined when there is no log yet). */
  readonly findPrior: (ledger: VerifiedReferenceLedger) => Promise<PriorImport | undefined>;
  /** An import: appends the ledger (importReferenceLedger on the open log). */
  readonly importLedger: (ledger: VerifiedReferenceLedger) => Promise<ReferenceImportResult>;
}

/** The outcome of {@link runReferenceImport}: the report, and on a defect the error to raise. */
export type ReferenceImportRun =
  | { readonly ok: true; readonly report: ReferenceImportReport; readonly ledger: VerifiedReferenceLedger }
  | { readonly ok: false; readonly report: ReferenceImportReport; readonly error: VerificationError };

/**
 * Verifies a reference ledger (its bytes and its two stores, core/reference-ledger.ts) and, unless
 * `dryRun`, imports it. On a defect nothing is written: the report names it and `error` is the
 * REFERENCE_LEDGER_INVALID to raise (`details.defect`, `details.line`). An import of a ledger
 * already on the log throws LEGACY_ALREADY_IMPORTED (from {@link importReferenceLedger}).
 */
export async function runReferenceImport(
  files: ReferenceLedgerInput,
  o: { readonly dryRun: boolean; readonly ledger: string; readonly target: ReferenceImportTarget; readonly started?: number },
): Promise<ReferenceImportRun> {
  const started = o.started ?? performance.now();
  const result = verifyReferenceLedger(files);
  const base = { dryRun: o.dryRun, ledger: o.ledger };
  if (!result.ok) {
    const d = result.defect;
    const report: ReferenceImportReport = { ok: false, ...base, defect: d, linesRead: result.linesRead, alreadyImported: null, imported: null, ms: round(performance.now() - started) };
    const error = new VerificationError('REFERENCE_LEDGER_INVALID', `${d.defect} at line ${d.line}: ${d.message}`, {
      details: { defect: d.defect, line: d.line, ...(d.ref === undefined ? {} : { ref: d.ref }), ...(d.expected === undefined ? {} : { expected: d.expected, actual: d.actual }) },
    });
    return { ok: false, report, error };
  }
  const ledger = result.ledger;
  let prior: PriorImport | undefined;
  let imported: ReferenceImportResult | null = null;
  if (o.dryRun) prior = await o.target.findPrior(ledger);
  else imported = await o.target.importLedger(ledger);
  const ms = performance.now() - started;
  const report: ReferenceImportReport = {
    ok: true,
    ...base,
    defect: null,
    linesRead: ledger.lines.length + ledger.blankLines,
    lines: ledger.lines.length,
    entries: ledger.entries,
    blankLines: ledger.blankLines,
    head: ledger.head,
    fileDigest: ledger.fileDigest,
    manifests: ledger.manifests,
    policies: ledger.policies,
    eventTypes: ledger.eventTypes,
    alreadyImported: prior ?? null,
    imported,
    ms: round(ms),
    linesPerSecond: Math.round(ledger.lines.length / (ms / 1000)),
  };
  return { ok: true, report, ledger };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
