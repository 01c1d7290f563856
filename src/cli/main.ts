/**
 * The `custos` command line: thin wiring from arguments to command functions, and the one place
 * where errors become exit codes and a single line on stderr.
 * @module
 */
import { Command, CommanderError, Option } from 'commander';
import { ConflictError, CustosError, InternalError, NotFoundError, StoreError, ValidationError, VerificationError } from '../core/errors.js';
import { resolveDataDir } from '../log/data-dir.js';
import type { CommandContext } from './context.js';
import { processIo, type Io } from './output.js';
import { parseChoice, parseCount, parseLimit, parseSince } from './parse.js';
import { init } from './commands/init.js';
import { append } from './commands/append.js';
import { verify } from './commands/verify.js';
import { proofConsistency, proofInclusion } from './commands/proof.js';
import { checkpoint, key } from './commands/checkpoint.js';
import { list } from './commands/list.js';
import { stats } from './commands/stats.js';
import { EXPORT_FORMATS, exportLog } from './commands/export.js';
import { demo } from './commands/demo.js';

/** Exit codes by error class; documented in docs/errors.md. */
export const EXIT = {
  ok: 0,
  validation: 2,
  notFound: 3,
  verification: 4,
  conflict: 5,
  store: 6,
  internal: 70,
} as const;

/** Maps an error to its exit code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ValidationError) return EXIT.validation;
  if (err instanceof NotFoundError) return EXIT.notFound;
  if (err instanceof VerificationError) return EXIT.verification;
  if (err instanceof ConflictError) return EXIT.conflict;
  if (err instanceof StoreError) return EXIT.store;
  return EXIT.internal;
}

function buildProgram(io: Io, env: NodeJS.ProcessEnv): Command {
  const program = new Command();
  const ctx = (cmd: Command): CommandContext => {
    const o = cmd.optsWithGlobals<{ dataDir?: string; json?: boolean }>();
    return { dataDir: resolveDataDir(o.dataDir, env), json: o.json === true, io };
  };
  program
    .name('custos')
    .description('Verifiable governance for clinical AI: an append-only, signed Merkle audit log.')
    .option('-d, --data-dir <dir>', 'data directory (default: $CUSTOS_DATA_DIR or ./custos-data)')
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // One line, always: commander's suggestions ("Did you mean ...?") are joined onto it.
      outputError: (s, write) => write(`custos: VALIDATION_FAILED: ${s.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`),
    });

  program
    .command('init')
    .description('create a new log: data directory, signing key (mode 0600) and store')
    .option('--origin <name>', 'the log origin written on every checkpoint (default: custos.local/log-<random>)')
    .action((o: { origin?: string }, cmd: Command) => init(ctx(cmd), o));

  program
    .command('append')
    .description('append an event; returns once it is durable and covered by a signed checkpoint')
    .option('--resource <id>', 'generic audit event: the resource id')
    .option('--practitioner <id>', 'generic audit event: the practitioner id')
    .option('--hash <sha256>', 'generic audit event: SHA-256 (hex) of the action payload')
    .option('--type <type>', 'event type (for --payload-file; default AUDIT_EVENT for the generic event)')
    .option('--payload-file <file>', 'JSON object payload ("-" for stdin)')
    .action((o, cmd: Command) => append(ctx(cmd), o));

  program
    .command('verify')
    .description('verify the whole log, or one entry with --entry')
    .option('--entry <index>', 'verify one entry and print it with its inclusion proof')
    .option('--key <vkey|file>', 'trusted verifier key (default: the data directory log.pub)')
    .option('--no-progress', 'no progress bar')
    .action((o: { entry?: string; key?: string; progress?: boolean }, cmd: Command) =>
      verify(ctx(cmd), {
        ...(o.entry === undefined ? {} : { entry: parseCount(o.entry, 'entry') }),
        ...(o.key === undefined ? {} : { key: o.key }),
        progress: o.progress !== false,
      }),
    );

  const proof = program.command('proof').description('print verified RFC 9162 proofs');
  proof
    .command('inclusion <index>')
    .description('inclusion proof of entry <index> (against the latest checkpoint, or --size)')
    .option('--size <treeSize>', 'tree size to prove against')
    .action((index: string, o: { size?: string }, cmd: Command) =>
      proofInclusion(ctx(cmd), parseCount(index, 'index'), o.size === undefined ? undefined : parseCount(o.size, 'size')),
    );
  proof
    .command('consistency <oldSize> <newSize>')
    .description('consistency proof between two tree sizes')
    .action((m: string, n: string, _o: unknown, cmd: Command) => proofConsistency(ctx(cmd), parseCount(m, 'oldSize'), parseCount(n, 'newSize')));

  program
    .command('checkpoint')
    .description('print the latest signed checkpoint (C2SP signed note)')
    .action((_o: unknown, cmd: Command) => checkpoint(ctx(cmd)));

  program
    .command('key')
    .description("print the log's verifier key (name+keyid+base64)")
    .action((_o: unknown, cmd: Command) => key(ctx(cmd)));

  program
    .command('list')
    .description('list entries, newest first')
    .option('--limit <n>', 'most entries to show', '20')
    .option('--type <type>', 'only this event type')
    .option('--since <time>', 'only entries at or after an RFC 3339 time or an age (30m, 2h, 7d)')
    .option('--oldest-first', 'oldest first')
    .action((o: { limit: string; type?: string; since?: string; oldestFirst?: boolean }, cmd: Command) =>
      list(ctx(cmd), {
        limit: parseLimit(o.limit, 'limit', 100_000),
        ...(o.type === undefined ? {} : { type: o.type }),
        ...(o.since === undefined ? {} : { sinceMs: parseSince(o.since, Date.now()) }),
        oldestFirst: o.oldestFirst === true,
      }),
    );

  program
    .command('stats')
    .description('entries, root, bytes on disk, last update')
    .action((_o: unknown, cmd: Command) => stats(ctx(cmd)));

  program
    .command('export')
    .description('stream the log (up to the latest checkpoint) as json, csv or ndjson')
    .addOption(new Option('--format <format>', 'output format').default('json'))
    .option('-o, --output <file>', 'write to a file (created only when complete) instead of stdout')
    .action((o: { format: string; output?: string }, cmd: Command) =>
      exportLog(ctx(cmd), { format: parseChoice(o.format, 'format', EXPORT_FORMATS), ...(o.output === undefined ? {} : { output: o.output }) }),
    );

  program
    .command('demo')
    .description('run the log demo in a temporary directory: init, append, verify, proofs')
    .option('--keep', 'keep the temporary data directory')
    .action((o: { keep?: boolean }, cmd: Command) => demo(ctx(cmd), o));

  return program;
}

/**
 * Runs the CLI with `argv` (without node and script). Returns the exit code; never throws.
 */
export async function run(argv: readonly string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = buildProgram(io, env);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by outputError.
      return err.exitCode === 0 ? EXIT.ok : EXIT.validation;
    }
    if (err instanceof CustosError && !(err instanceof InternalError)) {
      io.stderr.write(`custos: ${err.code}: ${err.message}\n`);
      return exitCodeFor(err);
    }
    io.stderr.write(`custos: INTERNAL: ${(err as Error)?.message ?? String(err)}\n`);
    io.stderr.write('custos: this is a bug in Custos; please report it with the command you ran.\n');
    if (env['CUSTOS_DEBUG']) io.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return EXIT.internal;
  }
}
