/**
 * A minimal C2SP tlog-witness for tests (https://c2sp.org/tlog-witness), cosigning with
 * src/core/cosignature.ts, used until the real witness (src/witness/) is in main. State (the latest cosigned
 * size and root per origin) is a JSON file in `dataDir`, so a witness restarted on the same
 * directory remembers it. Mode `hang` makes it never answer.
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { cosignCheckpoint, formatCosignerSignerKey, formatCosignerVerifierKey, parseCosignerSignerKey, type CosignerSigner } from '../../src/core/cosignature.js';
import { verifyConsistency } from '../../src/core/merkle/consistency.js';
import type { NoteVerifier } from '../../src/core/note.js';
import type { WitnessKey } from '../../src/server/witnesses.js';
import { witnessKeyFromVkey } from '../../src/server/witness-key.js';

/** A cosigning key: its vkey, its signer and a {@link WitnessKey} for the collector. */
export interface DevWitnessIdentity {
  readonly name: string;
  readonly vkey: string;
  readonly signer: CosignerSigner;
  readonly key: WitnessKey;
}

export function devWitnessIdentity(name: string, seed: Buffer = randomBytes(32)): DevWitnessIdentity {
  const signer = parseCosignerSignerKey(formatCosignerSignerKey(name, seed));
  const vkey = formatCosignerVerifierKey(name, signer.publicKey);
  return { name, vkey, signer, key: witnessKeyFromVkey(vkey) };
}

/** A cosignature line by `id` on the checkpoint note `note`. */
export function devCosign(id: DevWitnessIdentity, note: string, timeSec: number): string {
  return cosignCheckpoint(note, id.signer, timeSec);
}

export type DevWitnessMode = 'ok' | 'hang';

/** A running dev witness. */
export interface DevWitness {
  readonly url: string;
  readonly port: number;
  readonly identity: DevWitnessIdentity;
  readonly dataDir: string;
  mode: DevWitnessMode;
  /** Requests received (any outcome). */
  requests: number;
  /** The size it last cosigned for `origin`, or 0. */
  size(origin: string): number;
  close(): Promise<void>;
}

interface OriginState {
  size: number;
  root: string;
}

/** Starts a dev witness trusting `logs` (origin → verifier), on `port` (0: any). */
export async function startDevWitness(o: { dataDir: string; identity: DevWitnessIdentity; logs: ReadonlyMap<string, NoteVerifier>; port?: number }): Promise<DevWitness> {
  const file = join(o.dataDir, 'witness-state.json');
  const state: Record<string, OriginState> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const hanging: ServerResponse[] = [];
  const w: DevWitness = {
    url: '',
    port: 0,
    identity: o.identity,
    dataDir: o.dataDir,
    mode: 'ok',
    requests: 0,
    size: (origin) => state[origin]?.size ?? 0,
    close: async () => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };
  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    w.requests++;
    if (req.method !== 'POST' || req.url !== '/add-checkpoint') return send(res, 404, 'not found\n');
    if (w.mode === 'hang') return void hanging.push(res);
    const blank = text.indexOf('\n\n');
    if (blank < 0) return send(res, 400, 'malformed\n');
    const head = text.slice(0, blank).split('\n');
    const note = text.slice(blank + 2);
    const m = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? '');
    if (!m) return send(res, 400, 'bad old line\n');
    const old = Number(m[1]);
    const proof = head.slice(1).map((l) => Buffer.from(l, 'base64'));
    const origin = note.slice(0, note.indexOf('\n'));
    const verifier = o.logs.get(origin);
    if (!verifier) return send(res, 404, 'unknown origin\n');
    let cp: ReturnType<typeof openCheckpoint>;
    try {
      cp = openCheckpoint(note, [verifier], origin);
    } catch {
      return send(res, 403, 'no trusted signature\n');
    }
    if (old > cp.treeSize) return send(res, 400, 'old size beyond checkpoint\n');
    const st = state[origin];
    if ((st?.size ?? 0) !== old) return send(res, 409, `${st?.size ?? 0}\n`, 'text/x.tlog.size');
    if (st && old === cp.treeSize) {
      if (st.root !== cp.rootHash.toString('hex')) return send(res, 409, `${st.size}\n`, 'text/x.tlog.size');
    } else if (st && old > 0) {
      try {
        verifyConsistency(old, cp.treeSize, proof, Buffer.from(st.root, 'hex'), cp.rootHash);
      } catch {
        return send(res, 422, 'consistency proof does not verify\n');
      }
    } else if (proof.length > 0) return send(res, 422, 'proof must be empty from size 0\n');
    state[origin] = { size: cp.treeSize, root: cp.rootHash.toString('hex') };
    writeFileSync(file, JSON.stringify(state));
    send(res, 200, devCosign(o.identity, note, Math.floor(Date.now() / 1000)));
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(w, { port, url: `http://127.0.0.1:${port}` });
  return w;
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
 * Starts a witness named `name` with its state in `dataDir` (created on first start; a restart on
 * the same directory keeps its key and state), trusting the logs `logs`, on `port` (0: any).
 */
export async function startTestWitness(o: { dataDir: string; name: string; logs: readonly NoteVerifier[]; port?: number }): Promise<TestWitness> {
  const seedFile = join(o.dataDir, 'dev-witness.seed');
  if (!existsSync(seedFile)) writeFileSync(seedFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const identity = devWitnessIdentity(o.name, Buffer.from(readFileSync(seedFile, 'utf8'), 'hex'));
  const w = await startDevWitness({ dataDir: o.dataDir, identity, logs: new Map(o.logs.map((v) => [v.name, v])), ...(o.port === undefined ? {} : { port: o.port }) });
  return { name: o.name, url: w.url, port: w.port, dataDir: o.dataDir, vkey: identity.vkey, key: identity.key, close: () => w.close() };
}
