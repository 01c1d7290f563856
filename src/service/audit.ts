/**
 * Audit of the operations on the log itself (HIPAA §164.312(b), IHE BALP): reads, queries,
 * exports, verifications, openings of patient-linked commitments, and refused requests.
 *
 * Every event type written here is in {@link AUDIT_EVENT}. Payloads carry only codes, identifiers,
 * hashes, indices, counts and times: never request text, never an opened value.
 *
 * - AUDIT_QUERY: a bulk read (entry listing, export, entry bundle, verification): BALP Query.
 * - AUDIT_READ: a read of one patient-linked item (an entry, a hash-only receipt, a policy): BALP Read.
 * - PATIENT_DATA_OPENED: commitments opened to their values (BALP PatientRead), written before the
 *   values are returned.
 * - SECURITY_ALERT: refused requests (401, 403, 429), aggregated per caller and per window
 *   (DICOM 110113 Security Alert): the first refusal of a window is written at once, the rest are
 *   counted and written as one event when the window ends (or the server closes). Immediate writes
 *   are capped across all callers (a token bucket of `alertsPerWindow` per window): a caller
 *   refused when the bucket is empty is counted in one shared overflow window instead, so a flood
 *   from rotating addresses writes at most `4 * alertsPerWindow + 2` alerts per window length.
 * @module
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { canonicalJsonBytes } from '../core/canonical-json.js';
import { AuthError } from '../core/errors.js';
import { sha256, toHex } from '../core/hash.js';
import { formatEntryTime } from '../core/entry.js';
import type { AppendResult, Log } from '../log/log.js';
import { systemClock, type Clock } from '../log/clock.js';
import { AUDIT_TRAIL_EVENT, checkEventPayload } from '../core/events.js';
import type { Vocabulary } from '../core/vocabulary.js';

/** Event types written by the audit trail (reserved: `custos append` refuses them). */
export const AUDIT_EVENT = AUDIT_TRAIL_EVENT;

/**
 * IHE BALP / DICOM codes recorded in each payload's `balp` field: type and subtype as in BALP
 * (`rest` = http://terminology.hl7.org/CodeSystem/audit-event-type, subtypes from
 * http://hl7.org/fhir/restful-interaction; `DCM#110113` = DICOM "Security Alert"), action
 * (E execute, R read), outcome (4 = minor failure: the request was refused).
 */
export const BALP = Object.freeze({
  query: Object.freeze({ type: 'rest', subtype: 'search', action: 'E' }),
  read: Object.freeze({ type: 'rest', subtype: 'read', action: 'R' }),
  securityAlert: Object.freeze({ type: 'DCM#110113', action: 'E', outcome: '4' }),
});

/** Who did it: the credential's actor and role. */
export interface AuditActor {
  readonly id: string;
  readonly role: string;
}

/** Who was refused: an authenticated principal, or (before authentication) a keyed hash of the client address. */
export type AuditCaller = { readonly actor: string; readonly role: string } | { readonly client: string };

/** One refused request. */
export interface Refusal {
  /** The error code (FORBIDDEN, ACTOR_MISMATCH, UNAUTHENTICATED, RATE_LIMITED, ...). */
  readonly code: string;
  /** "METHOD /route/template" (never the concrete URL). */
  readonly route: string;
  /** The permission the route needs, if any. */
  readonly permission?: string;
}

/** Options of {@link AuditTrail}. */
export interface AuditTrailOptions {
  readonly log: Log;
  readonly clock?: Clock;
  /** Length of a refusal window per caller (default 60 s). */
  readonly windowMs?: number;
  /** Callers tracked at once; refusals from more are counted under one overflow caller (default 10,000). */
  readonly maxCallers?: number;
  /**
   * Immediate alert writes across all callers: a token bucket holding this many, refilled at this
   * many per window (default 60). A new caller's window is opened only with a token; without one,
   * its refusal is counted in the overflow window.
   */
  readonly alertsPerWindow?: number;
  /** Source of the nonces of patient-linked reads (tests inject a deterministic one). */
  readonly randomBytes?: (n: number) => Buffer;
  /**
   * The deployment's vocabularies: when given, every AUDIT_QUERY, AUDIT_READ and
   * PATIENT_DATA_OPENED payload is checked against the event registry before it is appended.
   */
  readonly vocabulary?: Vocabulary;
}

/** Bytes of the random nonce in AUDIT_READ and PATIENT_DATA_OPENED payloads. */
export const AUDIT_NONCE_BYTES = 16;

/** The hash of a query's parameters: canonical JSON of the sorted, defined parameters. */
export function queryHash(params: Readonly<Record<string, unknown>>): string | undefined {
  const defined = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  if (Object.keys(defined).length === 0) return undefined;
  return toHex(sha256(canonicalJsonBytes(defined)));
}

interface Window {
  readonly caller: WindowCaller;
  readonly startMs: number;
  /** Refusals after the first one, not written yet, by code/route/permission. */
  readonly pending: Map<string, { refusal: Refusal; count: number }>;
  pendingCount: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The shared window of callers refused past the caps: its alerts name no caller. */
type WindowCaller = AuditCaller | { readonly overflow: true };
const OVERFLOW: WindowCaller = { overflow: true };
const OVERFLOW_KEY = 'o';

function callerKey(c: AuditCaller): string {
  return 'actor' in c ? `a\u0000${c.actor}\u0000${c.role}` : `c\u0000${c.client}`;
}

function refusalKey(r: Refusal): string {
  return `${r.code}\u0000${r.route}\u0000${r.permission ?? ''}`;
}

function refusalJson(r: Refusal, count: number): Record<string, unknown> {
  return { code: r.code, route: r.route, ...(r.permission ? { permission: r.permission } : {}), count };
}

/** Writes the audit events of one server. */
export class AuditTrail {
  readonly #log: Log;
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #maxCallers: number;
  readonly #alertsPerWindow: number;
  // The token bucket of immediate writes: tokens left, as of #bucketAt.
  #tokens: number;
  #bucketAt: number;
  readonly #windows = new Map<string, Window>();
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #random: (n: number) => Buffer;
  readonly #vocabulary: Vocabulary | undefined;

  constructor(o: AuditTrailOptions) {
    this.#vocabulary = o.vocabulary;
    this.#random = o.randomBytes ?? nodeRandomBytes;
    this.#log = o.log;
    this.#clock = o.clock ?? systemClock;
    this.#windowMs = o.windowMs ?? 60_000;
    this.#maxCallers = o.maxCallers ?? 10_000;
    this.#alertsPerWindow = o.alertsPerWindow ?? 60;
    this.#tokens = this.#alertsPerWindow;
    this.#bucketAt = this.#clock.now();
  }

  // Takes one immediate write from the bucket (refilled continuously, alertsPerWindow per window).
  #takeToken(now: number): boolean {
    const refill = (Math.max(0, now - this.#bucketAt) * this.#alertsPerWindow) / this.#windowMs;
    this.#tokens = Math.min(this.#alertsPerWindow, this.#tokens + refill);
    this.#bucketAt = Math.max(this.#bucketAt, now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  // No free text on the log: the payload is checked against the event registry (core/events.ts).
  #append(type: string, payload: Record<string, unknown>): Promise<AppendResult> {
    if (this.#vocabulary) {
      try {
        checkEventPayload(type, payload, this.#vocabulary);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#log.append(type, payload);
  }

  /** A bulk read: written before the data is returned. */
  query(
    actor: AuditActor,
    what: { route: string; permission: string; range?: { from: number; to: number }; count?: number; queryHash?: string | undefined; commitments?: readonly string[] },
  ): Promise<AppendResult> {
    return this.#append(AUDIT_EVENT.query, {
      actor: actor.id,
      role: actor.role,
      route: what.route,
      permission: what.permission,
      balp: BALP.query,
      ...(what.range ? { range: what.range } : {}),
      ...(what.count === undefined ? {} : { count: what.count }),
      ...(what.queryHash ? { queryHash: what.queryHash } : {}),
      // A search about one subject: its commitments (never the id), so the query is linked to it and erasable with it.
      ...(what.commitments && what.commitments.length > 0 ? { commitments: [...what.commitments] } : {}),
    });
  }

  // A patient-linked read names an entry index or a policy: without a secret in the entry, its
  // public leaf hash could be found by guessing (actor, role, index, time). The nonce prevents it.
  #nonce(): string {
    return this.#random(AUDIT_NONCE_BYTES).toString('hex');
  }

  /** A read of one patient-linked item (an entry, a hash-only receipt, a policy). */
  read(actor: AuditActor, what: { route: string; permission: string; eventIndex?: number; policyId?: string }): Promise<AppendResult> {
    return this.#append(AUDIT_EVENT.read, {
      actor: actor.id,
      role: actor.role,
      route: what.route,
      permission: what.permission,
      balp: BALP.read,
      ...(what.eventIndex === undefined ? {} : { eventIndex: what.eventIndex }),
      ...(what.policyId === undefined ? {} : { policyId: what.policyId }),
      nonce: this.#nonce(),
    });
  }

  /** Commitments opened to their values: the commitments, never the values. */
  opened(actor: AuditActor, what: { route: string; permission: string; purpose: string; eventIndex: number; commitments: readonly string[] }): Promise<AppendResult> {
    return this.#append(AUDIT_EVENT.opened, {
      actor: actor.id,
      role: actor.role,
      purpose: what.purpose,
      route: what.route,
      permission: what.permission,
      balp: BALP.read,
      eventIndex: what.eventIndex,
      commitments: [...what.commitments],
      nonce: this.#nonce(),
    });
  }

  /**
   * Counts a refused request. The first refusal of a caller's window is written at once (the
   * returned promise resolves when it is on the log); later ones in the window are counted and
   * written as one event at the window's end, or by {@link flush}.
   */
  refused(caller: AuditCaller, refusal: Refusal): Promise<void> {
    const now = this.#clock.now();
    // Windows are kept in the order they opened: every ended one is written now, oldest first
    // (the wall-clock timer does the same when no refusal comes).
    for (const [k, open] of this.#windows) {
      if (now < open.startMs + this.#windowMs) break;
      this.#flushWindow(k, open, now);
    }
    const key = callerKey(caller);
    const w = this.#current(key, now);
    if (w) return this.#count(w, refusal);
    // A new window: written at once only within the global budget, and while fewer than
    // maxCallers windows are tracked (memory and alerts stay bounded whatever the addresses).
    if (this.#windows.size < this.#maxCallers && this.#takeToken(now)) {
      this.#open(key, caller, now);
      return this.#write(caller, now, now, 1, [refusalJson(refusal, 1)]);
    }
    return this.#count(this.#current(OVERFLOW_KEY, now) ?? this.#open(OVERFLOW_KEY, OVERFLOW, now), refusal);
  }

  // The caller's open window, if any; an ended one is flushed first.
  #current(key: string, now: number): Window | undefined {
    const w = this.#windows.get(key);
    if (w && now >= w.startMs + this.#windowMs) {
      this.#flushWindow(key, w, now);
      return undefined;
    }
    return w;
  }

  #open(key: string, caller: WindowCaller, now: number): Window {
    const fresh: Window = { caller, startMs: now, pending: new Map(), pendingCount: 0, timer: undefined };
    this.#windows.set(key, fresh);
    // The window's end, on the wall clock: its remainder is written even if no refusal follows.
    fresh.timer = setTimeout(() => {
      if (this.#windows.get(key) === fresh) this.#flushWindow(key, fresh, this.#clock.now());
    }, this.#windowMs);
    fresh.timer.unref?.();
    return fresh;
  }

  #count(w: Window, refusal: Refusal): Promise<void> {
    const rk = refusalKey(refusal);
    const p = w.pending.get(rk) ?? { refusal, count: 0 };
    p.count++;
    w.pending.set(rk, p);
    w.pendingCount++;
    return Promise.resolve();
  }

  /** Writes every window's counted refusals now (on shutdown), and waits for pending writes. */
  async flush(): Promise<void> {
    const now = this.#clock.now();
    for (const [key, w] of [...this.#windows]) this.#flushWindow(key, w, now);
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  #flushWindow(key: string, w: Window, now: number): void {
    this.#windows.delete(key);
    if (w.timer) clearTimeout(w.timer);
    if (w.pendingCount === 0) return;
    const refusals = [...w.pending.values()].sort((a, b) => refusalKey(a.refusal).localeCompare(refusalKey(b.refusal))).map((p) => refusalJson(p.refusal, p.count));
    void this.#write(w.caller, w.startMs, now, w.pendingCount, refusals);
  }

  #write(caller: WindowCaller, startMs: number, endMs: number, count: number, refusals: Record<string, unknown>[]): Promise<void> {
    const who = 'actor' in caller ? { actor: caller.actor, role: caller.role } : 'client' in caller ? { client: caller.client } : {};
    // Checked against the event registry like every other audit event.
    const p = this.#append(AUDIT_EVENT.securityAlert, {
      ...who,
      balp: BALP.securityAlert,
      windowStart: formatEntryTime(startMs),
      windowEnd: formatEntryTime(Math.max(startMs, endMs)),
      count,
      refusals,
    }).then(
      () => undefined,
      // A closed or failing log cannot take the alert; the refusal itself still stands.
      () => undefined,
    );
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
    return p;
  }
}

/**
 * A per-caller limit on openings: at most `max` in any `windowMs` (sliding). Refuses with
 * OPENING_RATE_LIMITED (429).
 */
export class OpeningLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #recent = new Map<string, number[]>();

  constructor(o: { max: number; windowMs?: number; clock?: Clock }) {
    this.#max = o.max;
    this.#windowMs = o.windowMs ?? 60_000;
    this.#clock = o.clock ?? systemClock;
  }

  /**
   * Takes one opening for `key`.
   * @throws {AuthError} OPENING_RATE_LIMITED
   */
  take(key: string): void {
    const now = this.#clock.now();
    const times = (this.#recent.get(key) ?? []).filter((t) => t > now - this.#windowMs);
    if (times.length >= this.#max) {
      this.#recent.set(key, times);
      throw new AuthError('OPENING_RATE_LIMITED', `at most ${this.#max} openings per ${this.#windowMs / 1000} s for this caller`, {
        details: { max: this.#max, windowSeconds: this.#windowMs / 1000 },
      });
    }
    times.push(now);
    this.#recent.set(key, times);
    if (this.#recent.size > 10_000) {
      for (const [k, ts] of this.#recent) if (ts.every((t) => t <= now - this.#windowMs)) this.#recent.delete(k);
    }
  }
}
