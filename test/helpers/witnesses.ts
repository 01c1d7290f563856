/**
 * Witnesses for the tests: {@link startTestWitness} runs the real one (src/witness, as `custos
 * witness init` and `witness serve` make it, in process); {@link startHangingWitness} is what the
 * real one never is, a server that takes requests and never answers; {@link cosignerIdentity}
 * makes a cosignature/v1 key without a witness.
 * @module
 */
import { existsSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { formatCosignerSignerKey, formatCosignerVerifierKey, parseCosignerSignerKey } from '../../src/core/cosignature.js';
import type { NoteVerifier } from '../../src/core/note.js';
import type { WitnessKey } from '../../src/server/witnesses.js';
import { witnessKeyFromVkey } from '../../src/server/witness-key.js';
import { initWitnessDir, openWitnessDir, WITNESS_KEY_FILE } from '../../src/witness/data-dir.js';
import { createWitnessApp } from '../../src/witness/server.js';

/** A cosignature/v1 verifier key named `name` and its {@link WitnessKey} (no witness behind it). */
export function cosignerIdentity(name: string, seed: Buffer = randomBytes(32)): { readonly name: string; readonly vkey: string; readonly key: WitnessKey } {
  const vkey = formatCosignerVerifierKey(name, parseCosignerSignerKey(formatCosignerSignerKey(name, seed)).publicKey);
  return { name, vkey, key: witnessKeyFromVkey(vkey) };
}

/** A witness for the tests: where it listens, its key, and how to stop it. */
export interface TestWitness {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly vkey: string;
  readonly key: WitnessKey;
  close(): Promise<void>;
}

/**
 * Starts the real witness named `name` with its state in `dataDir` (initialized on first start; a
 * restart on the same directory keeps its key and its SQLite state), trusting the logs `logs`, on
 * 127.0.0.1:`port` (0: any).
 */
export async function startTestWitness(o: { dataDir: string; name: string; logs: readonly NoteVerifier[]; port?: number }): Promise<TestWitness> {
  if (!existsSync(join(o.dataDir, WITNESS_KEY_FILE))) initWitnessDir(o.dataDir, o.name);
  const open = openWitnessDir(o.dataDir, o.logs);
  const app = await createWitnessApp({ witness: open.witness, logger: false, rateLimitPerMinute: 100_000 });
  const address = await app.listen({ host: '127.0.0.1', port: o.port ?? 0 });
  const vkey = open.witness.verifierKey;
  return {
    name: o.name,
    url: address,
    port: Number(new URL(address).port),
    dataDir: o.dataDir,
    vkey,
    key: witnessKeyFromVkey(vkey),
    close: async () => {
      await app.close();
      open.close();
    },
  };
}

/** A server at a witness's address that reads every request and never answers it. */
export interface HangingWitness {
  readonly url: string;
  /** Requests received. */
  readonly requests: number;
  close(): Promise<void>;
}

export async function startHangingWitness(): Promise<HangingWitness> {
  const held: ServerResponse[] = [];
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close: async () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
