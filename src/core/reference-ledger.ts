/**
 * Verification of a ledger written by the reference notebook (`LocalLedger` in
 * ../shared/seed_py/governance_overlay.py), as a correct verifier would do it, hashing exactly as
 * the reference does:
 *
 * - the file is JSON Lines; line 0 is the genesis `{"genesis": true, "created_at_ms": <int>}`
 *   (not hashed by the reference; a ledger without it is a defect the reference misses);
 * - every other line is an entry `{entry_id, timestamp_ms, event_type, payload, prev_hash,
 *   entry_hash}` with `prev_hash` the previous entry's `entry_hash` (64 zeros for the first) and
 *   `entry_hash = sha256(prev_hash + stable_json_dumps({entry_id, timestamp_ms, event_type,
 *   payload, prev_hash}))`, where `stable_json_dumps` is Python's `json.dumps(sort_keys=True,
 *   separators=(",", ":"), ensure_ascii=False)` of the parsed value (src/core/python-json.ts): a
 *   line reformatted without changing its parsed value still verifies;
 * - every `INFERENCE_EXECUTED` names a reproducibility manifest `manifest_store/repro_<event_id>.json`
 *   whose hash (of its parsed value, the same way) is the entry's `repro_manifest_hash`;
 * - every policy in `policy_store/<policy_id>.json` hashes to the LAST hash the ledger records for it
 *   (`CONSENT_CREATED.policy_hash`, then each `CONSENT_REVOKED.new_policy_hash`): the reference
 *   never checks this.
 *
 * The ledger is checked first, line by line, and its first defect is reported; the off-ledger
 * stores are checked only against an intact ledger, and their defect with the lowest line is
 * reported. Pure: the stores are read through the callbacks the caller passes.
 * @module
 */
import { sha256, toHex } from './hash.js';
import { PyDict, PyInt, PythonJsonError, asDict, asStr, parsePythonJson, pythonStableBytes, type PyValue } from './python-json.js';

/** The kinds of defect, in `details.defect` of REFERENCE_LEDGER_INVALID (docs/import.md). */
export const REFERENCE_DEFECTS = [
  'MALFORMED_LINE',
  'MISSING_GENESIS',
  'MISPLACED_GENESIS',
  'BROKEN_LINK',
  'HASH_MISMATCH',
  'POLICY_MISSING',
  'POLICY_MISMATCH',
  'MANIFEST_MISSING',
  'MANIFEST_MISMATCH',
] as const;
export type ReferenceDefectKind = (typeof REFERENCE_DEFECTS)[number];

/** One defect: its kind, its 0-based line in the ledger file, and what it is about. */
export interface ReferenceDefect {
  readonly defect: ReferenceDefectKind;
  readonly line: number;
  readonly message: string;
  /** The entry id, policy id or manifest name concerned, when there is one. */
  readonly ref?: string;
  /** The hash the ledger expects and the one computed, for mismatches. */
  readonly expected?: string;
  readonly actual?: string;
}

/** A file of an off-ledger store, read by the caller: its bytes, or undefined when it is absent. */
export type StoreLookup = (name: string) => Uint8Array | undefined;

/** What {@link verifyReferenceLedger} reads. */
export interface ReferenceLedgerInput {
  /** The ledger file's bytes. */
  readonly ledger: Uint8Array;
  /** `policy_store/<policy_id>.json` by policy id. */
  readonly policy: StoreLookup;
  /** `manifest_store/<name>.json` by name (`repro_<event_id>`). */
  readonly manifest: StoreLookup;
}

/** One line of a verified ledger. */
export interface ReferenceLine {
  readonly line: number;
  /** The line's exact bytes, without its newline. */
  readonly bytes: Buffer;
  readonly kind: 'genesis' | 'entry';
  /** Genesis: `created_at_ms`; entry: `timestamp_ms`. */
  readonly timeMs: bigint;
  readonly entryId?: string;
  readonly eventType?: string;
  readonly prevHash?: string;
  readonly entryHash?: string;
  readonly payload?: PyDict;
  /** INFERENCE_EXECUTED: its reproducibility manifest, as stored. */
  readonly manifest?: { readonly name: string; readonly bytes: Buffer };
  /** The line that records a policy's last hash: the policy file, as stored. */
  readonly policy?: { readonly policyId: string; readonly bytes: Buffer };
}

/** A ledger that verified. */
export interface VerifiedReferenceLedger {
  readonly lines: readonly ReferenceLine[];
  /** The last entry's hash (64 zeros when the ledger has only its genesis). */
  readonly head: string;
  /** Entries (lines other than the genesis). */
  readonly entries: number;
  /** Whitespace-only lines, skipped as the reference skips them. */
  readonly blankLines: number;
  /** SHA-256 of the whole file. */
  readonly fileDigest: string;
  readonly manifests: number;
  readonly policies: number;
  /** Entries per event type. */
  readonly eventTypes: Readonly<Record<string, number>>;
}

/** The result of {@link verifyReferenceLedger}: the verified ledger, or its first defect. */
export type ReferenceLedgerResult = { readonly ok: true; readonly ledger: VerifiedReferenceLedger } | { readonly ok: false; readonly defect: ReferenceDefect; readonly linesRead: number };

export const ZERO_HASH = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;
const ENTRY_KEYS = ['entry_id', 'timestamp_ms', 'event_type', 'payload', 'prev_hash', 'entry_hash'] as const;
const BODY_KEYS = ['entry_id', 'timestamp_ms', 'event_type', 'payload', 'prev_hash'] as const;
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Defect extends Error {
  constructor(readonly d: ReferenceDefect) {
    super(d.message);
  }
}
const defect = (d: ReferenceDefect): never => {
  throw new Defect(d);
};

/** The reference's hash of a parsed JSON text (`sha256_text(stable_json_dumps(json.loads(text)))`), or undefined if it has none. */
export function referenceHashOf(bytes: Uint8Array): string | undefined {
  try {
    return toHex(sha256(pythonStableBytes(parsePythonJson(decoder.decode(bytes), { duplicateKeys: 'error' }))));
  } catch {
    return undefined;
  }
}

// A line of spaces, tabs, CR, FF, VT only (the reference skips lines whose strip() is empty).
function isBlank(b: Buffer): boolean {
  for (let k = 0; k < b.length; k++) {
    const c = b[k]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0c && c !== 0x0b) return false;
  }
  return true;
}

/** Splits the file into lines at `\n` (the last one may lack it). */
function splitLines(bytes: Uint8Array): { bytes: Buffer; terminated: boolean }[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: { bytes: Buffer; terminated: boolean }[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) {
      if (start < buf.length) out.push({ bytes: buf.subarray(start), terminated: false });
      return out;
    }
    out.push({ bytes: buf.subarray(start, nl), terminated: true });
    start = nl + 1;
  }
}

function parseLine(line: number, bytes: Buffer, terminated: boolean): PyDict {
  const malformed = (reason: string): never =>
    defect({
      defect: 'MALFORMED_LINE',
      line,
      message: terminated ? `line ${line} is malformed: ${reason}` : `line ${line} is truncated (the last line has no newline and is not complete JSON): ${reason}`,
    });
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return malformed('not UTF-8');
  }
  let v: PyValue;
  try {
    v = parsePythonJson(text, { duplicateKeys: 'error' });
  } catch (err) {
    return malformed(err instanceof PythonJsonError ? err.message : 'not JSON');
  }
  const d = asDict(v);
  if (!d) return malformed('not a JSON object');
  return d;
}

/**
 * Verifies a reference ledger and its stores. Reports the first defect, or returns every line
 * with what the import needs.
 */
export function verifyReferenceLedger(input: ReferenceLedgerInput): ReferenceLedgerResult {
  const raw = splitLines(input.ledger);
  const lines: ReferenceLine[] = [];
  let blankLines = 0;
  let prev = ZERO_HASH;
  let genesisSeen = false;
  let linesRead = 0;
  const eventTypes: Record<string, number> = {};
  try {
    // 1. The ledger, line by line.
    for (let n = 0; n < raw.length; n++) {
      const { bytes, terminated } = raw[n]!;
      linesRead = n + 1;
      if (isBlank(bytes)) {
        blankLines++;
        continue;
      }
      const row = parseLine(n, bytes, terminated);
      const malformed = (reason: string): never => defect({ defect: 'MALFORMED_LINE', line: n, message: `line ${n} is malformed: ${reason}` });
      if (!genesisSeen) {
        if (!row.entries.has('genesis')) {
          return {
            ok: false,
            linesRead,
            defect: { defect: 'MISSING_GENESIS', line: n, message: `line ${n} should be the genesis line {"genesis": true, "created_at_ms": ...}: the ledger's start was removed or replaced` },
          };
        }
        const at = row.get('created_at_ms');
        if (row.get('genesis') !== true || !(at instanceof PyInt) || at.value < 0n || row.entries.size !== 2) {
          malformed('the genesis line must be exactly {"genesis": true, "created_at_ms": <integer>}');
        }
        genesisSeen = true;
        lines.push({ line: n, bytes, kind: 'genesis', timeMs: (at as PyInt).value });
        continue;
      }
      if (row.entries.has('genesis')) {
        return { ok: false, linesRead, defect: { defect: 'MISPLACED_GENESIS', line: n, message: `line ${n} is a second genesis line (the reference skips it silently; only line 0 may be one)` } };
      }
      for (const k of row.entries.keys()) {
        if (!(ENTRY_KEYS as readonly string[]).includes(k)) malformed(`field ${JSON.stringify(k)} is not part of an entry (the entry hash would not cover it)`);
      }
      for (const k of ENTRY_KEYS) if (!row.entries.has(k)) malformed(`field ${k} is missing`);
      const entryId = asStr(row.get('entry_id'));
      const ts = row.get('timestamp_ms');
      const eventType = asStr(row.get('event_type'));
      const payload = asDict(row.get('payload'));
      const prevHash = asStr(row.get('prev_hash'));
      const entryHash = asStr(row.get('entry_hash'));
      if (entryId === undefined || entryId.length === 0) return malformed('entry_id must be a non-empty string');
      if (!(ts instanceof PyInt) || ts.value < 0n) return malformed('timestamp_ms must be a non-negative integer');
      if (eventType === undefined || eventType.length === 0) return malformed('event_type must be a non-empty string');
      if (!payload) return malformed('payload must be an object');
      if (prevHash === undefined || !HEX64.test(prevHash)) return malformed('prev_hash must be 64 lowercase hex digits');
      if (entryHash === undefined || !HEX64.test(entryHash)) return malformed('entry_hash must be 64 lowercase hex digits');
      if (prevHash !== prev) {
        return {
          ok: false,
          linesRead,
          defect: { defect: 'BROKEN_LINK', line: n, ref: entryId, expected: prev, actual: prevHash, message: `line ${n} (entry ${entryId}): prev_hash is not the previous entry's hash` },
        };
      }
      const body = new PyDict(new Map(BODY_KEYS.map((k) => [k, row.get(k)!])));
      let computed: string;
      try {
        computed = toHex(sha256(pythonStableBytes(body, prev)));
      } catch (err) {
        return malformed(err instanceof PythonJsonError ? err.message : 'cannot be hashed');
      }
      if (computed !== entryHash) {
        return {
          ok: false,
          linesRead,
          defect: {
            defect: 'HASH_MISMATCH',
            line: n,
            ref: entryId,
            expected: entryHash,
            actual: computed,
            message: `line ${n} (entry ${entryId}): the entry does not hash to its entry_hash (edited)`,
          },
        };
      }
      prev = entryHash;
      eventTypes[eventType] = (eventTypes[eventType] ?? 0) + 1;
      lines.push({ line: n, bytes, kind: 'entry', timeMs: ts.value, entryId, eventType, prevHash, entryHash, payload });
    }
    if (!genesisSeen) return { ok: false, linesRead, defect: { defect: 'MISSING_GENESIS', line: 0, message: 'the ledger is empty: it has no genesis line' } };
  } catch (err) {
    if (err instanceof Defect) return { ok: false, linesRead, defect: err.d };
    throw err;
  }

  // 2. The stores, against the intact ledger: the defect with the lowest line.
  const found: ReferenceDefect[] = [];
  const withStores = lines.map((l) => ({ ...l }) as { -readonly [K in keyof ReferenceLine]: ReferenceLine[K] });
  let manifests = 0;
  // policy id -> position in withStores of its last consent event, and the hash it records
  const lastPolicy = new Map<string, { at: number; hash: string }>();
  withStores.forEach((l, at) => {
    const p = l.payload;
    if (!p) return;
    if (l.eventType === 'CONSENT_CREATED' || l.eventType === 'CONSENT_REVOKED') {
      const id = asStr(p.get('policy_id'));
      const hash = asStr(p.get(l.eventType === 'CONSENT_CREATED' ? 'policy_hash' : 'new_policy_hash'));
      if (id !== undefined && hash !== undefined) lastPolicy.set(id, { at, hash });
    }
    if (l.eventType === 'INFERENCE_EXECUTED') {
      const eventId = asStr(p.get('event_id'));
      const expected = asStr(p.get('repro_manifest_hash'));
      if (eventId === undefined || expected === undefined) {
        found.push({ defect: 'MANIFEST_MISSING', line: l.line, ref: l.entryId!, message: `line ${l.line}: INFERENCE_EXECUTED names no event_id or repro_manifest_hash` });
        return;
      }
      const name = `repro_${eventId}`;
      const bytes = input.manifest(name);
      if (bytes === undefined) {
        found.push({ defect: 'MANIFEST_MISSING', line: l.line, ref: name, message: `line ${l.line}: manifest_store/${name}.json is missing` });
        return;
      }
      const actual = referenceHashOf(bytes) ?? 'unreadable';
      if (actual !== expected) {
        found.push({
          defect: 'MANIFEST_MISMATCH',
          line: l.line,
          ref: name,
          expected,
          actual,
          message: `line ${l.line}: manifest_store/${name}.json does not hash to the repro_manifest_hash on the ledger (edited)`,
        });
        return;
      }
      manifests++;
      l.manifest = { name, bytes: Buffer.from(bytes) };
    }
  });
  for (const [policyId, { at, hash }] of lastPolicy) {
    const l = withStores[at]!;
    const bytes = input.policy(policyId);
    if (bytes === undefined) {
      found.push({ defect: 'POLICY_MISSING', line: l.line, ref: policyId, message: `line ${l.line}: policy_store/${policyId}.json is missing` });
      continue;
    }
    const actual = referenceHashOf(bytes) ?? 'unreadable';
    if (actual !== hash) {
      found.push({
        defect: 'POLICY_MISMATCH',
        line: l.line,
        ref: policyId,
        expected: hash,
        actual,
        message: `line ${l.line}: policy_store/${policyId}.json does not hash to the last policy hash the ledger records for it (edited; the reference does not check this)`,
      });
      continue;
    }
    l.policy = { policyId, bytes: Buffer.from(bytes) };
  }
  if (found.length > 0) {
    found.sort((a, b) => a.line - b.line);
    return { ok: false, linesRead, defect: found[0]! };
  }
  return {
    ok: true,
    ledger: {
      lines: withStores,
      head: prev,
      entries: withStores.length - 1,
      blankLines,
      fileDigest: toHex(sha256(input.ledger)),
      manifests,
      policies: lastPolicy.size,
      eventTypes,
    },
  };
}

/**
 * The identifiers a reference entry names in clear, which the import logs only as salted
 * commitments: its subject (`subject_id`, the patient pseudonym of CONSENT_CREATED) and every URI
 * (a string field `*_uri`, or the values of a `*_uris` object or array), in key order.
 */
export function legacyIdentifiers(line: ReferenceLine): { subject?: string; uris: string[] } {
  const p = line.payload;
  const uris: string[] = [];
  if (!p) return { uris };
  const keys = [...p.entries.keys()].sort();
  for (const k of keys) {
    const v = p.get(k);
    if (k.endsWith('_uri') && typeof v === 'string') uris.push(v);
    else if (k.endsWith('_uris')) {
      const values = v instanceof PyDict ? [...v.entries.keys()].sort().map((x) => v.get(x)) : Array.isArray(v) ? v : [];
      for (const u of values) if (typeof u === 'string') uris.push(u);
    }
  }
  const subject = asStr(p.get('subject_id'));
  return subject === undefined ? { uris } : { subject, uris };
}
