/**
 * The log side of witnessing (C2SP tlog-witness, https://c2sp.org/tlog-witness): after each signed
 * checkpoint, the collector asks every configured witness to cosign it, with `POST /add-checkpoint`
 * carrying a consistency proof from the size the witness last cosigned.
 *
 * - Appends never wait for witnesses: the log tells the collector of a commit synchronously
 *   ({@link Log.onCommit}); the collector only records the target and works on a later turn.
 * - Per witness, one request at a time, coalesced: a slow witness is sent the latest checkpoint,
 *   not every one. Failures are retried with exponential backoff and full jitter, capped.
 * - A cosignature is kept only if it verifies under the witness's configured key; kept durably
 *   (state rows `ns='cosignature'`, one per witness: its latest cosignature) so a restart serves it.
 * - The latest checkpoint that reached the quorum is kept too (`ns='cosigned-checkpoint'`), with
 *   the cosignature lines of every witness that cosigned it.
 * - A refusal (409 that retrying from the witness's size does not resolve, 400, 403, 404, 422, any
 *   other 4xx) or a cosignature that does not verify is an alarm at once: a WITNESS_ALARM event on
 *   the log, counted, and shown. Network errors and 5xx are retried and counted; they become an
 *   alarm (UNREACHABLE) after `unreachableAfter` consecutive failures. One event per episode: the
 *   alarm is written again only when its reason or status changes, and cleared by a success.
 * @module
 */
import { ACTOR_ID_RE, checkEventPayload, WITNESS_EVENT, type WITNESS_ALARM_REASONS } from '../core/events.js';
import type { Vocabulary } from '../core/vocabulary.js';
import type { Log } from '../log/log.js';
import { systemClock, type Clock } from '../log/clock.js';

type StoredCheckpoint = NonNullable<ReturnType<Log['latestCheckpoint']>>;

/** State namespaces (off-ledger rows). */
export const COSIGNATURE_NS = 'cosignature';
export const QUORUM_NS = 'cosigned-checkpoint';
export const QUORUM_KEY = 'quorum';

/** The C2SP tlog-witness limit on consistency proof lines. */
const MAX_PROOF_LINES = 63;
/** Largest response body read from a witness. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** A witness's cosigning key, as configured (`--witness URL=VKEY`). */
export interface WitnessKey {
  /** The key name (the witness's name: how it is shown and named on the log). */
  readonly name: string;
  /** The verifier key as configured. */
  readonly vkey: string;
  /** Whether `line` (a note signature line, with its newline) is a valid cosignature by this key on the checkpoint `note`. */
  verifies(note: string, line: string): boolean;
}

/** A configured witness: where it listens and its key. */
export interface WitnessEndpoint {
  /** The submission prefix: `POST <url>/add-checkpoint`. */
  readonly url: string;
  readonly key: WitnessKey;
}

/** Retry schedule of {@link WitnessCollector}. */
export interface WitnessRetry {
  /** First backoff in ms (default 1,000). */
  readonly baseMs?: number;
  /** Longest backoff in ms (default 300,000). */
  readonly capMs?: number;
  /** One request's timeout in ms (default 30,000). */
  readonly timeoutMs?: number;
  /** Consecutive network errors (or 5xx) before an UNREACHABLE alarm (default 5). */
  readonly unreachableAfter?: number;
}

/** Options of {@link WitnessCollector}. */
export interface WitnessCollectorOptions {
  readonly log: Log;
  readonly witnesses: readonly WitnessEndpoint[];
  /** Cosignatures a checkpoint needs to count as witnessed (default: all witnesses). */
  readonly quorum?: number;
  /** The deployment's vocabulary (WITNESS_ALARM payloads are checked against the event registry). */
  readonly vocabulary: Vocabulary;
  readonly retry?: WitnessRetry;
  readonly clock?: Clock;
  /** Uniform [0, 1) for the jitter (default Math.random). */
  readonly random?: () => number;
  /** Told of every refusal and every error, for the metrics. */
  readonly onRefusal?: (witness: string) => void;
  readonly onError?: (witness: string) => void;
}

export type WitnessAlarmReason = (typeof WITNESS_ALARM_REASONS)[number];

/** An alarm raised by a witness (cleared by its next success). */
export interface WitnessAlarm {
  readonly reason: WitnessAlarmReason;
  /** HTTP status, 0 when none was received. */
  readonly status: number;
  readonly checkpointSize: number;
  readonly witnessSize: number | null;
  readonly at: number;
  /** Index of the WITNESS_ALARM event on the log, once written. */
  eventIndex: number | null;
}

/** A kept cosignature: the latest a witness gave. */
export interface KeptCosignature {
  readonly treeSize: number;
  /** The note signature line, with its newline. */
  readonly line: string;
  /** When it was received (epoch ms). */
  readonly receivedMs: number;
}

/** What the API, the metrics and the explorer show of one witness. */
export interface WitnessStatus {
  readonly name: string;
  readonly url: string;
  readonly vkey: string;
  /** The latest tree size this witness cosigned (a verified cosignature is kept), or null. */
  readonly cosignedSize: number | null;
  /** Entries of the latest checkpoint not yet cosigned by this witness. */
  readonly lagEntries: number;
  /** Seconds since the oldest checkpoint this witness has not cosigned was signed (0 when it is up to date). */
  readonly lagSeconds: number;
  /** When the latest cosignature arrived (epoch ms), or null. */
  readonly lastSuccessMs: number | null;
  /** The latest failure, or null. */
  readonly lastError: { readonly status: number; readonly message: string; readonly at: number } | null;
  readonly refusals: number;
  readonly errors: number;
  readonly alarm: WitnessAlarm | null;
}

/** The latest checkpoint that reached the quorum, with its cosignatures. */
export interface QuorumCheckpoint {
  readonly treeSize: number;
  /** The checkpoint note with the cosignature lines appended. */
  readonly note: string;
  /** The witnesses whose cosignatures it carries. */
  readonly witnesses: readonly string[];
}

type Outcome = 'done' | 'refused' | 'error';

class RefusedError extends Error {
  constructor(
    readonly reason: WitnessAlarmReason,
    readonly status: number,
    readonly witnessSize: number | null,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

async function readLimited(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Checks a witness configuration: names unique, URLs http(s), quorum 1..N. Throws a TypeError naming the problem. */
export function checkWitnessConfig(witnesses: readonly WitnessEndpoint[], quorum: number | undefined): void {
  const names = new Set<string>();
  for (const w of witnesses) {
    const u = new URL(w.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`witness URL ${w.url} is not http(s)`);
    // The name is how the witness is named on the log (WITNESS_ALARM): an identifier.
    if (!ACTOR_ID_RE.test(w.key.name)) throw new TypeError(`witness name ${JSON.stringify(w.key.name.slice(0, 64))} is not an identifier (${ACTOR_ID_RE.source})`);
    if (names.has(w.key.name)) throw new TypeError(`two witnesses are named ${w.key.name}`);
    names.add(w.key.name);
  }
  if (quorum !== undefined && (!Number.isSafeInteger(quorum) || quorum < 1 || quorum > witnesses.length))
    throw new TypeError(`the witness quorum must be between 1 and the number of witnesses (${witnesses.length})`);
}

/** One witness: its target, its request loop and its state. */
class Worker {
  readonly endpoint: WitnessEndpoint;
  readonly #c: WitnessCollector;
  #target: StoredCheckpoint | undefined;
  #busy = false;
  /** The size we believe the witness holds (from a kept cosignature or a 409), or undefined. */
  witnessSize: number | undefined;
  kept: KeptCosignature | undefined;
  /** Sign time of the oldest checkpoint not cosigned, while there is one. */
  pendingSinceMs: number | undefined;
  lastError: WitnessStatus['lastError'] = null;
  refusals = 0;
  errors = 0;
  consecutiveFailures = 0;
  consecutiveNetworkErrors = 0;
  alarm: WitnessAlarm | null = null;

  constructor(endpoint: WitnessEndpoint, c: WitnessCollector) {
    this.endpoint = endpoint;
    this.#c = c;
  }

  get name(): string {
    return this.endpoint.key.name;
  }

  /** Records the newest checkpoint to submit; starts the loop on a later turn if idle. Never blocks. */
  notify(cp: StoredCheckpoint): void {
    if (this.#target && cp.treeSize <= this.#target.treeSize) return;
    this.#target = cp;
    if (this.kept === undefined || this.kept.treeSize < cp.treeSize) this.pendingSinceMs ??= cp.timeMs;
    if (this.#busy) return;
    this.#busy = true;
    // On a later turn: the commit that told us must not do any of this work.
    setImmediate(() => void this.#loop());
  }

  /** Whether the loop is idle with nothing left to submit. */
  get idle(): boolean {
    return !this.#busy;
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#c.closed) {
        const target = this.#target;
        if (!target || (this.kept && this.kept.treeSize >= target.treeSize)) return;
        const outcome = await this.#attempt(target);
        if (outcome === 'done') {
          this.consecutiveFailures = 0;
          continue;
        }
        this.consecutiveFailures++;
        const ceiling = Math.min(this.#c.retry.capMs, this.#c.retry.baseMs * 2 ** Math.min(this.consecutiveFailures - 1, 30));
        await sleep(Math.floor(this.#c.random() * ceiling), this.#c.signal);
      }
    } finally {
      this.#busy = false;
    }
  }

  async #attempt(target: StoredCheckpoint): Promise<Outcome> {
    try {
      await this.#submit(target);
      this.consecutiveNetworkErrors = 0;
      this.alarm = null;
      return 'done';
    } catch (err) {
      if (this.#c.closed) return 'error';
      const at = this.#c.clock.now();
      if (err instanceof RefusedError) {
        this.refusals++;
        this.consecutiveNetworkErrors = 0;
        this.lastError = { status: err.status, message: err.message, at };
        this.#c.onRefusal(this.name);
        await this.#raise(err.reason, err.status, target.treeSize, err.witnessSize);
        return 'refused';
      }
      this.errors++;
      this.consecutiveNetworkErrors++;
      const status = (err as { status?: number }).status ?? 0;
      this.lastError = { status, message: (err as Error).message.slice(0, 200), at };
      this.#c.onError(this.name);
      if (this.consecutiveNetworkErrors >= this.#c.retry.unreachableAfter) await this.#raise('UNREACHABLE', status, target.treeSize, this.witnessSize ?? null);
      return 'error';
    }
  }

  // One alarm event per episode: written when the alarm starts or its reason or status changes.
  async #raise(reason: WitnessAlarmReason, status: number, checkpointSize: number, witnessSize: number | null): Promise<void> {
    if (this.alarm && this.alarm.reason === reason && this.alarm.status === status) return;
    const alarm: WitnessAlarm = { reason, status, checkpointSize, witnessSize, at: this.#c.clock.now(), eventIndex: null };
    this.alarm = alarm;
    alarm.eventIndex = await this.#c.writeAlarm(this.name, alarm, this.consecutiveFailures + 1);
  }

  async #submit(target: StoredCheckpoint): Promise<void> {
    let old = this.witnessSize ?? 0;
    // A 409 names the witness's size; retrying from it resolves a stale view. Twice at most.
    for (let hop = 0; hop < 3; hop++) {
      if (old > target.treeSize) throw new RefusedError('REFUSED', 409, old, `the witness holds size ${old}, beyond this log's ${target.treeSize}`);
      const proof = old === 0 || old === target.treeSize ? [] : (await this.#c.log.reader.consistencyProof(old, target.treeSize)).proof;
      if (proof.length > MAX_PROOF_LINES) throw new Error(`consistency proof of ${proof.length} hashes exceeds the protocol's ${MAX_PROOF_LINES}`);
      const body = `old ${old}\n${proof.map((h) => `${h.toString('base64')}\n`).join('')}\n${target.note}`;
      const res = await this.#c.post(this.endpoint.url, body);
      const text = await readLimited(res);
      if (res.status === 200) {
        const lines = text
          .split('\n')
          .filter((l) => l.startsWith('\u2014 '))
          .map((l) => `${l}\n`);
        const good = lines.find((l) => this.endpoint.key.verifies(target.note, l));
        if (!good) throw new RefusedError('BAD_COSIGNATURE', 200, null, `no cosignature in the response verifies under ${this.name}'s key`);
        await this.#c.keep(this, target, good);
        return;
      }
      if (res.status === 409) {
        const m = /^(0|[1-9][0-9]{0,15})\n?$/.exec(text);
        const isSize = (res.headers.get('content-type') ?? '').startsWith('text/x.tlog.size') && m !== null;
        const size = isSize ? Number(m![1]) : undefined;
        if (size !== undefined && size !== old && size <= target.treeSize) {
          this.witnessSize = size;
          old = size;
          continue;
        }
        // Same size, another root (the spec's 409 for that case need not carry a size): a fork.
        throw new RefusedError(
          'REFUSED',
          409,
          size ?? this.witnessSize ?? null,
          size === undefined ? `conflict (409) at size ${old}: ${text.slice(0, 120).trim()}` : `conflict (409): the witness holds size ${size}`,
        );
      }
      if (res.status >= 400 && res.status < 500) throw new RefusedError('REFUSED', res.status, this.witnessSize ?? null, `refused (${res.status}): ${text.slice(0, 120).trim()}`);
      throw Object.assign(new Error(`witness answered ${res.status}`), { status: res.status });
    }
    throw new RefusedError('REFUSED', 409, old, 'conflict (409) not resolved by retrying from the witness size');
  }

  status(latest: StoredCheckpoint | undefined, now: number): WitnessStatus {
    const size = latest?.treeSize ?? 0;
    const cosigned = this.kept?.treeSize ?? null;
    const lag = Math.max(0, size - (cosigned ?? 0));
    return {
      name: this.name,
      url: this.endpoint.url,
      vkey: this.endpoint.key.vkey,
      cosignedSize: cosigned,
      lagEntries: lag,
      lagSeconds: lag === 0 || this.pendingSinceMs === undefined ? 0 : Math.max(0, (now - this.pendingSinceMs) / 1000),
      lastSuccessMs: this.kept?.receivedMs ?? null,
      lastError: this.lastError,
      refusals: this.refusals,
      errors: this.errors,
      alarm: this.alarm,
    };
  }
}

/**
 * Collects witness cosignatures for a log's checkpoints. {@link WitnessCollector.start} loads the
 * kept cosignatures and subscribes to commits; {@link WitnessCollector.close} stops it.
 */
export class WitnessCollector {
  readonly log: Log;
  readonly quorum: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly retry: Required<WitnessRetry>;
  readonly #workers: Worker[];
  readonly #vocabulary: Vocabulary;
  readonly #abort = new AbortController();
  readonly #onRefusal: (w: string) => void;
  readonly #onError: (w: string) => void;
  #unsubscribe: (() => void) | undefined;
  #quorumCp: QuorumCheckpoint | undefined;
  readonly #writes = new Set<Promise<unknown>>();

  constructor(o: WitnessCollectorOptions) {
    checkWitnessConfig(o.witnesses, o.quorum);
    this.log = o.log;
    this.quorum = o.quorum ?? o.witnesses.length;
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    this.retry = { baseMs: o.retry?.baseMs ?? 1000, capMs: o.retry?.capMs ?? 300_000, timeoutMs: o.retry?.timeoutMs ?? 30_000, unreachableAfter: o.retry?.unreachableAfter ?? 5 };
    this.#vocabulary = o.vocabulary;
    this.#onRefusal = o.onRefusal ?? (() => undefined);
    this.#onError = o.onError ?? (() => undefined);
    this.#workers = o.witnesses.map((w) => new Worker(w, this));
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  onRefusal(w: string): void {
    this.#onRefusal(w);
  }

  onError(w: string): void {
    this.#onError(w);
  }

  /** Loads the kept cosignatures, subscribes to commits and submits the latest checkpoint. */
  async start(): Promise<void> {
    for (const row of await this.log.sidecar.listState(COSIGNATURE_NS)) {
      const w = this.#workers.find((x) => x.name === row.key);
      if (!w) continue;
      try {
        const kept = JSON.parse(row.value) as KeptCosignature;
        w.kept = kept;
        w.witnessSize = kept.treeSize;
      } catch {
        // an unreadable row is ignored: the witness is asked again
      }
    }
    const q = await this.log.sidecar.getState(QUORUM_NS, QUORUM_KEY);
    if (q) {
      try {
        this.#quorumCp = JSON.parse(q) as QuorumCheckpoint;
      } catch {
        // recomputed from the next cosignatures
      }
    }
    this.#unsubscribe = this.log.onCommit((cp) => this.#notify(cp));
    const latest = await this.log.reader.latestCheckpoint();
    if (latest) this.#notify(latest);
  }

  #notify(cp: StoredCheckpoint): void {
    if (this.closed) return;
    for (const w of this.#workers) w.notify(cp);
  }

  /** POSTs an add-checkpoint body with the request timeout (aborted on close). */
  post(url: string, body: string): Promise<Response> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.retry.timeoutMs)]);
    return fetch(`${url.replace(/\/+$/, '')}/add-checkpoint`, { method: 'POST', body, headers: { 'content-type': 'text/plain; charset=utf-8' }, signal });
  }

  // Keeps a verified cosignature durably, then recomputes the quorum checkpoint.
  async keep(w: Worker, target: StoredCheckpoint, line: string): Promise<void> {
    const kept: KeptCosignature = { treeSize: target.treeSize, line, receivedMs: this.clock.now() };
    w.kept = kept;
    w.witnessSize = target.treeSize;
    w.lastError = null;
    // Still behind if a newer checkpoint was signed meanwhile.
    const latest = this.log.latestCheckpoint();
    w.pendingSinceMs = latest && latest.treeSize > target.treeSize ? latest.timeMs : undefined;
    const rows = [{ ns: COSIGNATURE_NS, key: w.name, value: JSON.stringify(kept) }];
    const signers = this.#workers.filter((x) => x.kept?.treeSize === target.treeSize);
    if (
      signers.length >= this.quorum &&
      (!this.#quorumCp || target.treeSize > this.#quorumCp.treeSize || (target.treeSize === this.#quorumCp.treeSize && signers.length > this.#quorumCp.witnesses.length))
    ) {
      this.#quorumCp = { treeSize: target.treeSize, note: target.note + signers.map((x) => x.kept!.line).join(''), witnesses: signers.map((x) => x.name) };
      rows.push({ ns: QUORUM_NS, key: QUORUM_KEY, value: JSON.stringify(this.#quorumCp) });
    }
    await this.#track(this.log.putState(rows));
  }

  // The alarm event, checked against the registry like every event; returns its index.
  async writeAlarm(witness: string, a: WitnessAlarm, attempts: number): Promise<number | null> {
    const payload = { witness, reason: a.reason, status: a.status, checkpointSize: a.checkpointSize, ...(a.witnessSize === null ? {} : { witnessSize: a.witnessSize }), attempts };
    try {
      checkEventPayload(WITNESS_EVENT.alarm, payload, this.#vocabulary);
      return (await this.#track(this.log.append(WITNESS_EVENT.alarm, payload))).index;
    } catch {
      // The log is closing (or failing): the alarm stays visible in the status and the metrics.
      return null;
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#writes.add(p);
    return p.finally(() => this.#writes.delete(p));
  }

  /** The checkpoint `cp` with the kept cosignatures on it appended (C2SP: extra note signature lines). */
  cosigned(cp: StoredCheckpoint): string {
    const lines = this.#workers.filter((w) => w.kept?.treeSize === cp.treeSize).map((w) => w.kept!.line);
    return cp.note + lines.join('');
  }

  /** The latest checkpoint that reached the quorum, or undefined. */
  quorumCheckpoint(): QuorumCheckpoint | undefined {
    return this.#quorumCp;
  }

  /** Every witness's status against the log's latest checkpoint. */
  status(): WitnessStatus[] {
    const latest = this.log.latestCheckpoint();
    const now = this.clock.now();
    return this.#workers.map((w) => w.status(latest, now));
  }

  /** Whether every witness is idle (nothing in flight or scheduled). For tests and shutdown. */
  get idle(): boolean {
    return this.#workers.every((w) => w.idle);
  }

  /** Stops: aborts requests in flight and backoffs, then waits for state writes to settle. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#abort.abort();
    await Promise.allSettled([...this.#writes]);
  }
}
