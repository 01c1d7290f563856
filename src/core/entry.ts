/**
 * The log entry format: the RFC 8785 canonical JSON of
 * `{"index": N, "payload": {...}, "time": "<RFC 3339 UTC ms>", "type": "<event type>", "v": 1}`.
 * The entry bytes are what the leaf hash commits to (RFC 9162: SHA-256(0x00 || entry)).
 * @module
 */
import { canonicalJson, MAX_JSON_DEPTH, type JsonValue } from './canonical-json.js';
import { ValidationError } from './errors.js';

/** Version of the entry schema; bumped on any incompatible change. */
export const ENTRY_SCHEMA_VERSION = 1;

/** Event types: a letter, then up to 63 letters, digits, '_', '.', ':' or '-'. */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

/**
 * Largest payload accepted, in bytes of canonical JSON. A whole entry must fit a C2SP entry
 * bundle's uint16 length (65,535 bytes); the rest of an entry is under 200 bytes.
 */
export const MAX_PAYLOAD_BYTES = 60 * 1024;

/** A JSON object payload. */
export type JsonObject = { [key: string]: JsonValue };

/** A decoded log entry. */
export interface LogEntry {
  readonly v: number;
  readonly index: number;
  readonly type: string;
  /** RFC 3339, UTC, millisecond precision: `2026-11-21T18:02:37.123Z`. */
  readonly time: string;
  readonly payload: JsonObject;
}

/** An event ready to be sequenced: its type and canonical payload, validated once up front. */
export interface PreparedEvent {
  readonly type: string;
  readonly payloadJson: string;
}

/**
 * Validates an event and canonicalizes its payload.
 * @throws {ValidationError} VALIDATION_FAILED, CANONICAL_JSON_UNSUPPORTED_VALUE
 */
export function prepareEvent(type: unknown, payload: unknown): PreparedEvent {
  if (!isEventType(type)) {
    throw new ValidationError('VALIDATION_FAILED', 'event type must match [A-Za-z][A-Za-z0-9_.:-]{0,63}', {
      issues: [{ path: 'type', message: 'invalid event type' }],
    });
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new ValidationError('VALIDATION_FAILED', 'payload must be a JSON object', {
      issues: [{ path: 'payload', message: 'expected an object' }],
    });
  }
  // The payload sits one level down in the entry, which must itself stay within MAX_JSON_DEPTH.
  const payloadJson = canonicalJson(payload, { maxDepth: MAX_JSON_DEPTH - 1 });
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most payloads need no byte count.
  if (payloadJson.length * 3 > MAX_PAYLOAD_BYTES && Buffer.byteLength(payloadJson, 'utf8') > MAX_PAYLOAD_BYTES) {
    throw new ValidationError('VALIDATION_FAILED', `payload exceeds ${MAX_PAYLOAD_BYTES} bytes`, {
      issues: [{ path: 'payload', message: 'too large' }],
    });
  }
  lastType = type;
  return { type, payloadJson };
}

// The last event type that passed the pattern: appends come in runs of one type.
let lastType = '';

function isEventType(type: unknown): type is string {
  return (type === lastType && lastType !== '') || (typeof type === 'string' && EVENT_TYPE_PATTERN.test(type));
}

/** Entry times are RFC 3339, which has four-digit years: 0000-01-01T00:00:00.000Z ... */
export const MIN_ENTRY_TIME_MS = -62_167_219_200_000;
/** ... to 9999-12-31T23:59:59.999Z. */
export const MAX_ENTRY_TIME_MS = 253_402_300_799_999;

/**
 * RFC 3339 UTC time with milliseconds, from epoch milliseconds.
 * @throws {ValidationError} VALIDATION_FAILED for a time outside the years 0000-9999 (a broken clock)
 */
export function formatEntryTime(timeMs: number): string {
  if (!Number.isSafeInteger(timeMs) || timeMs < MIN_ENTRY_TIME_MS || timeMs > MAX_ENTRY_TIME_MS) {
    throw new ValidationError('VALIDATION_FAILED', 'entry time must be within the years 0000-9999 (check the clock)', {
      issues: [{ path: 'time', message: 'out of range' }],
    });
  }
  return new Date(timeMs).toISOString();
}

// A time that names a real instant round-trips through Date (2026-13-45T99:99:99.999Z does not).
function isRealInstant(time: string): boolean {
  const t = Date.parse(time);
  return Number.isFinite(t) && new Date(t).toISOString() === time;
}

const ENTRY_KEYS = new Set(['v', 'index', 'type', 'time', 'payload']);
const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Encodes a sequenced entry. The keys are emitted in RFC 8785 order (index, payload, time, type, v)
 * around the already-canonical payload, so the result equals `canonicalJson(entry)` without
 * re-serializing the payload (a test checks this equality). `time` comes from {@link formatEntryTime}.
 */
export function encodeEntry(index: number, event: PreparedEvent, time: string): string {
  return `{"index":${index},"payload":${event.payloadJson},"time":"${time}","type":${JSON.stringify(event.type)},"v":${ENTRY_SCHEMA_VERSION}}`;
}

/**
 * {@link encodeEntry} for the entries of one batch, which share `time`: the text after the payload
 * is built once per event type instead of once per entry. Same output as encodeEntry.
 */
export function entryEncoder(time: string): (index: number, event: PreparedEvent) => string {
  let type: string | undefined;
  let suffix = '';
  return (index, event) => {
    if (event.type !== type) {
      type = event.type;
      suffix = `,"time":"${time}","type":${JSON.stringify(type)},"v":${ENTRY_SCHEMA_VERSION}}`;
    }
    return `{"index":${index},"payload":${event.payloadJson}${suffix}`;
  };
}

const INDEX_PREFIX = Buffer.from('{"index":');
const PAYLOAD_KEY = Buffer.from(',"payload":');
const VERSION_SUFFIX = Buffer.from(`,"v":${ENTRY_SCHEMA_VERSION}}`);

const TYPE_KEY = Buffer.from(',"type":"');
// The characters of EVENT_TYPE_PATTERN: none needs escaping in JSON.
function isTypeByte(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2e || c === 0x3a || c === 0x2d);
}

/**
 * The event type of an entry as stored, read from its tail without parsing: canonical key order
 * puts `,"type":"<TYPE>","v":1}` last. Undefined when the tail is not of that form (the caller then
 * parses the entry; a malformed entry is the log verifier's finding). For scans that look at a
 * few types among many entries: a search of the whole entry costs more than the entry's tail.
 */
export function entryTypeOf(bytes: Uint8Array): string | undefined {
  const end = bytes.length - VERSION_SUFFIX.length;
  if (end < TYPE_KEY.length + 2) return undefined;
  for (let i = 0; i < VERSION_SUFFIX.length; i++) if (bytes[end + i] !== VERSION_SUFFIX[i]) return undefined;
  if (bytes[end - 1] !== 0x22) return undefined;
  let p = end - 2;
  const stop = end - 2 - 64;
  while (p > stop && isTypeByte(bytes[p])) p--;
  if (p === end - 2 || bytes[p] !== 0x22) return undefined;
  const keyStart = p - TYPE_KEY.length + 1;
  if (keyStart < 0) return undefined;
  for (let i = 0; i < TYPE_KEY.length; i++) if (bytes[keyStart + i] !== TYPE_KEY[i]) return undefined;
  const type = Buffer.from(bytes.buffer, bytes.byteOffset + p + 1, end - 2 - p).toString('latin1');
  return EVENT_TYPE_PATTERN.test(type) ? type : undefined;
}

/**
 * Cheap structural check used by verification: the entry bytes start with
 * `{"index":<index>,"payload":` and end with `,"v":1}` (canonical key order puts index first and
 * v last), so they claim to be entry `index`. A plain byte loop: it runs once per entry, and each
 * Buffer.compare call would cost more than the ~35 bytes it compares.
 */
export function entryClaimsIndex(bytes: Uint8Array, index: number): boolean {
  const len = bytes.length;
  let p = 0;
  for (let i = 0; i < INDEX_PREFIX.length; i++) if (bytes[p++] !== INDEX_PREFIX[i]) return false;
  const d = String(index);
  for (let i = 0; i < d.length; i++) if (bytes[p++] !== d.charCodeAt(i)) return false;
  for (let i = 0; i < PAYLOAD_KEY.length; i++) if (bytes[p++] !== PAYLOAD_KEY[i]) return false;
  if (len < p + VERSION_SUFFIX.length) return false;
  for (let i = 0, q = len - VERSION_SUFFIX.length; i < VERSION_SUFFIX.length; i++, q++) if (bytes[q] !== VERSION_SUFFIX[i]) return false;
  return true;
}

/**
 * {@link entryClaimsIndex} of the `len` bytes of `buf` at `off`, without making a view of them
 * (bulk verification checks entries in place inside an entry bundle).
 */
export function entryClaimsIndexAt(buf: Uint8Array, off: number, len: number, index: number): boolean {
  const d = String(index);
  // Bytes past `len` belong to the next entry: a shorter entry fails where the loop above reads undefined.
  if (len < INDEX_PREFIX.length + d.length + PAYLOAD_KEY.length + VERSION_SUFFIX.length) return false;
  let p = off;
  for (let i = 0; i < INDEX_PREFIX.length; i++) if (buf[p++] !== INDEX_PREFIX[i]) return false;
  for (let i = 0; i < d.length; i++) if (buf[p++] !== d.charCodeAt(i)) return false;
  for (let i = 0; i < PAYLOAD_KEY.length; i++) if (buf[p++] !== PAYLOAD_KEY[i]) return false;
  for (let i = 0, q = off + len - VERSION_SUFFIX.length; i < VERSION_SUFFIX.length; i++, q++) if (buf[q] !== VERSION_SUFFIX[i]) return false;
  return true;
}

/** The type and time of stored entry bytes, without full validation (for listings). */
export function peekEntry(bytes: Uint8Array): { type: string; time: string; timeMs: number; payload: unknown } {
  const e = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Partial<LogEntry>;
  const time = typeof e.time === 'string' ? e.time : '';
  return { type: typeof e.type === 'string' ? e.type : '', time, timeMs: Date.parse(time), payload: e.payload };
}

/**
 * Decodes and validates stored entry text.
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function decodeEntry(text: string): LogEntry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', 'entry is not valid JSON', { cause: err });
  }
  const e = raw as Partial<LogEntry> | null;
  const issues: { path: string; message: string }[] = [];
  if (typeof e !== 'object' || e === null || Array.isArray(e)) {
    throw new ValidationError('VALIDATION_FAILED', 'entry is not a JSON object');
  }
  if (e.v !== ENTRY_SCHEMA_VERSION) issues.push({ path: 'v', message: 'unsupported schema version' });
  if (!Number.isSafeInteger(e.index) || (e.index as number) < 0) issues.push({ path: 'index', message: 'invalid' });
  if (typeof e.type !== 'string' || !EVENT_TYPE_PATTERN.test(e.type)) issues.push({ path: 'type', message: 'invalid' });
  if (typeof e.time !== 'string' || !TIME_PATTERN.test(e.time) || !isRealInstant(e.time)) {
    issues.push({ path: 'time', message: 'invalid' });
  }
  for (const key of Object.keys(e)) {
    if (!ENTRY_KEYS.has(key)) issues.push({ path: key, message: 'not a member of the entry schema' });
  }
  if (typeof e.payload !== 'object' || e.payload === null || Array.isArray(e.payload)) {
    issues.push({ path: 'payload', message: 'invalid' });
  }
  if (issues.length === 0 && canonicalJson(e) !== text) issues.push({ path: '$', message: 'not canonical JSON' });
  if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', 'malformed log entry', { issues });
  return e as LogEntry;
}
