/**
 * `custos witness init` and `custos witness serve`: a C2SP tlog-witness that another institution
 * runs beside a Custos log (docs/witness.md).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { ValidationError } from '../../core/errors.js';
import { parseVerifierKey, type NoteVerifier } from '../../core/note.js';
import { initWitnessDir, openWitnessDir } from '../../witness/data-dir.js';
import { createWitnessApp } from '../../witness/server.js';
import type { CommandContext } from '../context.js';
import { inCwd, printFields, printJson, type Io } from '../output.js';

/** Options of `custos witness serve`. */
export interface WitnessServeOptions {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  /** Log verifier keys (type 0x01), each a key string or a file of key lines. */
  readonly logs: readonly string[];
  readonly rateLimitPerMinute?: number;
  readonly bodyLimit?: number;
  /** Stops the server when aborted (default: SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
}

/** The log keys of `--log`: each a verifier key string, or a file holding one per line. */
export function loadLogKeys(io: Io, values: readonly string[]): NoteVerifier[] {
  const keys: NoteVerifier[] = [];
  for (const value of values) {
    let text = value;
    const file = inCwd(io, value);
    if (existsSync(file)) {
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ValidationError('FILE_UNREADABLE', `cannot read key file ${value}`, { cause: err });
      }
    }
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    if (lines.length === 0) throw new ValidationError('VALIDATION_FAILED', `--log ${value} holds no verifier key`);
    keys.push(...lines.map(parseVerifierKey));
  }
  if (keys.length === 0) throw new ValidationError('VALIDATION_FAILED', 'give at least one log key with --log');
  return keys;
}

/** `custos witness init --data-dir DIR --name NAME`: creates the key and prints the cosigner vkey. */
export async function witnessInit(ctx: CommandContext, o: { dataDir: string; name: string }): Promise<void> {
  const r = initWitnessDir(inCwd(ctx.io, o.dataDir), o.name);
  if (ctx.json) return printJson(ctx.io, { dataDir: r.dataDir, name: r.name, verifierKey: r.verifierKey });
  ctx.io.stdout.write(`${r.verifierKey}\n`);
  ctx.io.stderr.write(
    `created the witness ${r.name} in ${r.dataDir} (key witness.key, mode 0600); give the verifier key above (type 0x04, cosignature/v1) to the logs you witness and to their clients\n`,
  );
}

/** `custos witness serve`: runs POST /add-checkpoint until SIGINT or SIGTERM (or `signal`). */
export async function witnessServe(ctx: CommandContext, o: WitnessServeOptions): Promise<void> {
  const logs = loadLogKeys(ctx.io, o.logs);
  const w = openWitnessDir(inCwd(ctx.io, o.dataDir), logs);
  try {
    const app = await createWitnessApp({
      witness: w.witness,
      ...(o.rateLimitPerMinute ? { rateLimitPerMinute: o.rateLimitPerMinute } : {}),
      ...(o.bodyLimit ? { bodyLimit: o.bodyLimit } : {}),
      logger: false,
    });
    const address = await app.listen({ host: o.host, port: o.port });
    const url = `${address.replace('[::1]', 'localhost')}/add-checkpoint`;
    if (ctx.json) printJson(ctx.io, { url, name: w.witness.name, verifierKey: w.witness.verifierKey, logs: w.witness.origins });
    else printFields(ctx.io, { witness: w.witness.name, 'verifier key': w.witness.verifierKey, 'add-checkpoint': url, logs: w.witness.origins.join(', ') });
    await new Promise<void>((resolve) => {
      if (o.signal) {
        if (o.signal.aborted) return resolve();
        o.signal.addEventListener('abort', () => resolve(), { once: true });
        return;
      }
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await app.close();
  } finally {
    w.close();
  }
}
