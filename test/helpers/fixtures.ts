/**
 * Shared fixtures for the service suites: a temporary root made before the suite and removed after
 * it (everything opened under it is closed first, newest first), and fresh logs, governance
 * overlays and authenticators over data directories in it.
 *
 * Call {@link useTempRoot} at the top level of a test file (it registers `before` / `after`).
 * @module
 */
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDataDir, openLog, type DataDir } from '../../src/log/data-dir.js';
import type { Clock } from '../../src/log/clock.js';
import type { Log } from '../../src/log/log.js';
import { Governance, type GovernanceOptions } from '../../src/service/governance.js';
import { Authenticator } from '../../src/server/auth.js';

/** An open log over a data directory under the root. `close` closes the log, then the store (once). */
export interface LogFixture {
  readonly dataDir: string;
  readonly dir: DataDir;
  readonly log: Log;
  close(): Promise<void>;
}

/** A log with the governance overlay open on it. */
export interface GovernanceFixture extends LogFixture {
  readonly gov: Governance;
}

/** A log with the governance overlay and the authenticator open on it, sharing one verified scan. */
export interface ServicesFixture extends GovernanceFixture {
  readonly auth: Authenticator;
}

/** How to open a log under the root. */
export interface OpenLogOptions {
  /** An existing data directory to reopen (default: a new one, initialized with `origin`). */
  readonly dataDir?: string;
  /** The origin of a new data directory (default `<prefix>.test/log`). */
  readonly origin?: string;
  readonly clock?: Clock;
}

/** How to open the overlay: the log's options, and the overlay's (the log's clock is passed on). */
export interface OpenGovernanceOptions extends OpenLogOptions {
  readonly governance?: Omit<GovernanceOptions, 'log'>;
}

/** How to open the overlay and the authenticator. */
export interface OpenServicesOptions extends OpenGovernanceOptions {
  readonly auth?: Omit<ConstructorParameters<typeof Authenticator>[0], 'log'>;
}

/** A temporary root for one test file. */
export interface TempRoot {
  /** The root directory (valid once the suite's `before` hook ran). */
  readonly path: string;
  /** A new, unused path under the root (not created). */
  next(name?: string): string;
  /** Runs `close` after the suite, before the root is removed (newest first; failures ignored). */
  defer(close: () => Promise<void>): void;
  /** Opens a log (see {@link OpenLogOptions}); it is closed after the suite unless closed before. */
  openLog(options?: OpenLogOptions): Promise<LogFixture>;
  /** Opens a log and the governance overlay on it. */
  openGovernance(options?: OpenGovernanceOptions): Promise<GovernanceFixture>;
  /**
   * Opens a log, the authenticator and the governance overlay, in the order `custos serve` uses:
   * the authenticator subscribes first, so tokens and policy heads are read in one verified scan.
   */
  openServices(options?: OpenServicesOptions): Promise<ServicesFixture>;
}

/** Registers a temporary root `custos-<prefix>-*` for the current test file (see {@link TempRoot}). */
export function useTempRoot(prefix: string): TempRoot {
  let path: string | undefined;
  let n = 0;
  const closes: (() => Promise<void>)[] = [];
  before(() => {
    path = mkdtempSync(join(tmpdir(), `custos-${prefix}-`));
  });
  after(async () => {
    for (const close of closes.reverse()) await close().catch(() => undefined);
    if (path) rmSync(path, { recursive: true, force: true });
  });
  const root: TempRoot = {
    get path(): string {
      if (path === undefined) throw new Error('the temporary root exists only while the suite runs');
      return path;
    },
    next: (name = 'log') => join(root.path, `${name}-${n++}`),
    defer: (close) => {
      closes.push(close);
    },
    openLog: async (o = {}) => {
      const dataDir = o.dataDir ?? root.next();
      if (o.dataDir === undefined) await initDataDir(dataDir, { origin: o.origin ?? `${prefix}.test/log` });
      const { dir, log } = await openLog(dataDir, o.clock ? { clock: o.clock } : {});
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        try {
          await log.close();
        } finally {
          await dir.store.close();
        }
      };
      closes.push(close);
      return { dataDir, dir, log, close };
    },
    openGovernance: async (o = {}) => {
      const l = await root.openLog(o);
      return closingOnError(l, async () => {
        const gov = await Governance.open({ log: l.log, ...(o.clock ? { clock: o.clock } : {}), ...o.governance });
        return { ...l, gov };
      });
    },
    openServices: async (o = {}) => {
      const l = await root.openLog(o);
      return closingOnError(l, async () => {
        const auth = new Authenticator({ log: l.log, ...o.auth });
        const gov = await Governance.open({ log: l.log, ...(o.clock ? { clock: o.clock } : {}), ...o.governance });
        await auth.load();
        return { ...l, auth, gov };
      });
    },
  };
  return root;
}

// Opening a service over a log fails (a tampered log, say): the log and store are closed at once.
async function closingOnError<T>(l: LogFixture, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    await l.close().catch(() => undefined);
    throw err;
  }
}
