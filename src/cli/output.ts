/**
 * Terminal output: human-readable by default, JSON with --json, progress bars only on a TTY.
 * @module
 */
import cliProgress from 'cli-progress';

/** Where a command writes. Injected so tests can capture output. */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

/** Writes one line of JSON. */
export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes aligned `key: value` lines. */
export function printFields(io: Io, fields: Readonly<Record<string, unknown>>): void {
  const width = Math.max(...Object.keys(fields).map((k) => k.length));
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    io.stdout.write(`${`${k}:`.padEnd(width + 2)}${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
  }
}

/** A progress reporter: a bar on an interactive stderr, nothing otherwise. */
export function createProgress(io: Io, label: string, enabled: boolean): { update(done: number, total: number): void; stop(): void } {
  if (!enabled || !io.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} entries | {eta_formatted} left`, stream: io.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
