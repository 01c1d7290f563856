/**
 * Registration of `custos witness init|serve` (issue 11: witnesses). Light: the command's module
 * (Fastify, better-sqlite3) is imported inside the actions.
 * @module
 */
import type { Command } from 'commander';
import { ValidationError } from '../../core/errors.js';
import type { CommandContext } from '../context.js';
import { parseLimit } from '../parse.js';

// The witness has its own directory: never the log's default ($CUSTOS_DATA_DIR or ./custos-data).
function witnessDir(cmd: Command): string {
  const dir = cmd.optsWithGlobals<{ dataDir?: string }>().dataDir;
  if (dir === undefined) throw new ValidationError('VALIDATION_FAILED', 'say where the witness lives: --data-dir DIR');
  return dir;
}

/** Registers `custos witness init` and `custos witness serve`. */
export function registerWitness(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const witness = program.command('witness').description('a C2SP tlog-witness: cosigns checkpoints of the logs it trusts, never two inconsistent ones');
  witness
    .command('init')
    .description('create a witness in --data-dir (a new or empty directory): its Ed25519 key, and print its cosigner key (type 0x04)')
    .requiredOption('--name <name>', 'the witness name, a schema-less URL (e.g. witness.example.org/w1)')
    .action(async (o: { name: string }, cmd: Command) => (await import('../commands/witness.js')).witnessInit(await ctx(cmd), { dataDir: witnessDir(cmd), name: o.name }));
  witness
    .command('serve')
    .description('serve POST /add-checkpoint (C2SP tlog-witness) for the logs given with --log')
    .requiredOption('--log <vkey...>', "a log's verifier key, or a file of them (one or more; the key name is the log's origin)")
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0: any free port)', '8081')
    .option('--rate-limit <n>', 'add-checkpoint requests per minute per log', '600')
    .option('--body-limit <bytes>', 'largest request body', '65536')
    .action(async (o: { log: string[]; host: string; port: string; rateLimit: string; bodyLimit: string }, cmd: Command) =>
      (await import('../commands/witness.js')).witnessServe(await ctx(cmd), {
        dataDir: witnessDir(cmd),
        logs: o.log,
        host: o.host,
        port: o.port === '0' ? 0 : parseLimit(o.port, 'port', 65535),
        rateLimitPerMinute: parseLimit(o.rateLimit, 'rate-limit', 100_000_000),
        bodyLimit: parseLimit(o.bodyLimit, 'body-limit', 16 * 1024 * 1024),
      }),
    );
}
