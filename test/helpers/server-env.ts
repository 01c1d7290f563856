/**
 * A real Custos server for tests: a fresh SQLite log in a temporary directory, the governance
 * overlay, one token per role, and the app either in process (`inject`) or on a loopback port.
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { initDataDir, openLog, type DataDir } from '../../src/log/data-dir.js';
import type { Log } from '../../src/log/log.js';
import { verifyLog } from '../../src/log/verify-log.js';
import { Governance, type GovernanceOptions } from '../../src/service/governance.js';
import type { Clock } from '../../src/log/clock.js';
import { verifyDocuments } from '../../src/service/verify-documents.js';
import { Authenticator } from '../../src/server/auth.js';
import { createApp, type AppOptions } from '../../src/server/app.js';
import { attestationKeyFromSeed } from '../../src/log/attestation-key.js';

/** Token names by role (the name is the actor written on events). */
export const TOKEN_NAMES = {
  admin: 'admin-1',
  privacy_officer: 'po-1',
  auditor: 'aud-1',
  dermatologist: 'dr-derm',
  nurse: 'nurse-1',
  ml_engineer: 'eng-7',
} as const;
export type TestRole = keyof typeof TOKEN_NAMES;

export const SETUP_ACTOR = { actor: 'test-setup', role: 'operator' };

export interface ServerEnv {
  readonly root: string;
  readonly app: FastifyInstance;
  readonly log: Log;
  readonly dir: DataDir;
  readonly auth: Authenticator;
  readonly governance: Governance;
  readonly tokens: Record<TestRole, string>;
  /** Closes the app and the log, removes the directory. */
  close(): Promise<void>;
}

/** Options of the environment itself (beside the app's). */
export interface ServerEnvOptions {
  /**
   * Witnesses for the app, made once the log exists (a witness must know the log's key and origin
   * before the app's collector asks it to cosign): e.g. start witnesses trusting `dir.verifier`.
   */
  readonly witnesses?: (dir: DataDir) => Promise<NonNullable<AppOptions['witnesses']>>;
  /** The clock of the log and the governance overlay (default the system clock). */
  readonly clock?: Clock;
  /** Options of the governance overlay (break-glass vocabularies, review deadline). */
  readonly governance?: Omit<GovernanceOptions, 'log' | 'clock'>;
}

/** A fresh log with one token per role and an app over it (not listening). */
export async function createServerEnv(appOptions: Partial<AppOptions> = {}, envOptions: ServerEnvOptions = {}): Promise<ServerEnv> {
  const root = mkdtempSync(join(tmpdir(), 'custos-env-'));
  const dataDir = join(root, 'log');
  await initDataDir(dataDir, { origin: 'test.local/log' });
  const { dir, log } = await openLog(dataDir, envOptions.clock ? { clock: envOptions.clock } : {});
  const governance = await Governance.open({ log, ...(envOptions.clock ? { clock: envOptions.clock } : {}), ...envOptions.governance });
  const auth = new Authenticator({ log });
  const tokens = {} as Record<TestRole, string>;
  for (const role of Object.keys(TOKEN_NAMES) as TestRole[]) tokens[role] = (await auth.createToken(TOKEN_NAMES[role], role, SETUP_ACTOR)).token;
  const witnesses = envOptions.witnesses ? { witnesses: await envOptions.witnesses(dir) } : {};
  // issue 15: an attestation issuer key, as `custos serve` has one (in memory here).
  const attestationKey = attestationKeyFromSeed(randomBytes(32));
  const app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, attestationKey, ...witnesses, ...appOptions });
  return {
    root,
    app,
    log,
    dir,
    auth,
    governance,
    tokens,
    close: async () => {
      await app.close();
      await log.close();
      await dir.store.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Asserts that the log and the off-ledger store verify, with the findings in the message. */
export async function assertVerifies(env: ServerEnv): Promise<void> {
  const report = await verifyLog({ store: env.dir.store, verifiers: [env.dir.verifier], origin: env.dir.origin });
  assert.ok(report.ok, `log verification failed: ${JSON.stringify(report).slice(0, 2000)}`);
  const docs = await verifyDocuments({ store: env.dir.store });
  assert.ok(docs.ok, `document verification failed: ${JSON.stringify(docs.findings).slice(0, 2000)}`);
}
