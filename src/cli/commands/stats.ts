import { toHex } from '../../core/hash.js';
import { ValidationError } from '../../core/errors.js';
import { OPERATOR_ROLE } from '../../core/vocabulary.js';
import { Governance, type DpBudgetStatus, type DpRelease, type DpReleaseInput } from '../../service/governance.js';
import { withDataDir, withLog, type CommandContext } from '../context.js';
import { loadDpConfig } from '../dp-config.js';
import { printFields, printJson, type Io } from '../output.js';
import { localOperator } from './export-fhir.js';

/** `custos stats`: entries, root, bytes on disk, last update. */
export async function stats(ctx: CommandContext): Promise<void> {
  await withDataDir(
    ctx,
    async (dir) => {
      const s = await dir.store.stats();
      const cp = await dir.store.latestCheckpoint();
      const out = {
        origin: dir.origin,
        dataDir: dir.dataDir,
        backend: dir.store.backend,
        entries: s.treeSize,
        treeSize: cp?.treeSize ?? 0,
        rootHash: cp ? toHex(cp.rootHash) : null,
        checkpoints: s.checkpoints,
        bytesOnDisk: s.bytesOnDisk,
        bytesPerEntry: s.treeSize > 0 ? Math.round(s.bytesOnDisk / s.treeSize) : null,
        lastUpdate: cp ? new Date(cp.timeMs).toISOString() : null,
      };
      if (ctx.json) return printJson(ctx.io, out);
      printFields(ctx.io, {
        'origin': out.origin,
        'data dir': out.dataDir,
        'entries': String(out.entries),
        'signed size': String(out.treeSize),
        'root hash': out.rootHash ?? '-',
        'checkpoints': String(out.checkpoints),
        'bytes on disk': `${out.bytesOnDisk} (${out.bytesPerEntry ?? '-'} per entry)`,
        'last update': out.lastUpdate ?? '-',
      });
    },
    true,
  );
}

// ---- issue 15: statistics released with differential privacy --------------------------------------

/** Options of `custos stats --dp`. */
export interface DpStatsOptions {
  /** The query (compact or JSON form); absent: list the releases. */
  readonly query?: string | undefined;
  readonly epsilon?: string | undefined;
  readonly delta?: string | undefined;
  readonly mechanism?: DpReleaseInput['mechanism'] | undefined;
  readonly consumer?: string | undefined;
  readonly actor?: string | undefined;
  readonly actorRole?: string | undefined;
}

function releaseLines(io: Io, r: DpRelease): void {
  const d = r.document;
  io.stdout.write(
    `entry ${r.index}  ${r.time}  to ${r.consumer}  ${r.mechanism} ε=${r.epsilon} δ=${r.delta}  unit ${r.unit}${d ? `  period ${d.budgetPeriod}  over ${d.treeSize} entries` : '  (document missing)'}\n`,
  );
  if (!d) return;
  io.stdout.write(`  query ${JSON.stringify(d.query)}\n`);
  const cols = Object.keys(d.values[0] ?? { value: 0 });
  io.stdout.write(`  ${cols.join('\t')}\n`);
  for (const row of d.values) io.stdout.write(`  ${cols.map((c) => String((row as Record<string, unknown>)[c])).join('\t')}\n`);
}

/**
 * `custos stats --dp`: with `--query`, releases its answer with differential privacy (a DP_RELEASE
 * event, or the stored release when the same one was made in the period); without, lists the
 * releases on the log (and, with `--consumer`, that consumer's budget).
 */
export async function dpStats(ctx: CommandContext, o: DpStatsOptions): Promise<void> {
  if ((o.actor === undefined) !== (o.actorRole === undefined)) throw new ValidationError('VALIDATION_FAILED', 'give both --actor and --actor-role, or neither (the local operator)');
  if (o.query === undefined && (o.epsilon !== undefined || o.delta !== undefined || o.mechanism !== undefined)) {
    throw new ValidationError('VALIDATION_FAILED', '--epsilon, --delta and --mechanism go with --query', { issues: [{ path: 'query', message: 'required' }] });
  }
  if (o.query !== undefined && o.epsilon === undefined) throw new ValidationError('VALIDATION_FAILED', 'a release needs --epsilon', { issues: [{ path: 'epsilon', message: 'required' }] });
  // Read before the log is opened: a bad dp.json writes nothing.
  const config = loadDpConfig(ctx.dataDir);
  const who = o.actor !== undefined && o.actorRole !== undefined ? { id: o.actor, role: o.actorRole } : { id: localOperator(), role: OPERATOR_ROLE };
  await withLog(ctx, async (log) => {
    const g = await Governance.open({ log, dp: { config } });
    if (o.query === undefined) {
      const r = await g.listReleases(o.consumer === undefined ? {} : { consumer: o.consumer });
      if (ctx.json) return printJson(ctx.io, r);
      if (r.budget) ctx.io.stdout.write(budgetLine(r.budget));
      ctx.io.stdout.write(`${r.releases.length} release(s)\n`);
      for (const x of r.releases) releaseLines(ctx.io, x);
      return;
    }
    const r = await g.releaseStatistics(
      {
        query: o.query,
        epsilon: o.epsilon!,
        ...(o.delta === undefined ? {} : { delta: o.delta }),
        ...(o.mechanism === undefined ? {} : { mechanism: o.mechanism }),
        ...(o.consumer === undefined ? {} : { consumer: o.consumer }),
      },
      who,
    );
    if (ctx.json) {
      const { event, ...rest } = r;
      return printJson(ctx.io, { ...rest, ...(event ? { event: { index: event.index, leafHash: toHex(event.leafHash), treeSize: event.checkpoint.treeSize } } : {}) });
    }
    ctx.io.stdout.write(r.reused ? `the same release was made in this period: entry ${r.release.index}, returned as stored (nothing spent)\n` : `released: DP_RELEASE, entry ${r.release.index}\n`);
    ctx.io.stdout.write(budgetLine(r.budget));
    releaseLines(ctx.io, r.release);
  });
}

function budgetLine(b: DpBudgetStatus): string {
  return (
    `budget of ${b.consumer} for ${b.period}: ε spent ${b.epsilon.spent} of ${b.epsilon.budget} (${b.epsilon.remaining} left), δ spent ${b.delta.spent} of ${b.delta.budget}\n` +
    `total budget (all consumers) for ${b.period}: ε spent ${b.total.epsilon.spent} of ${b.total.epsilon.budget} (${b.total.epsilon.remaining} left), δ spent ${b.total.delta.spent} of ${b.total.delta.budget}\n`
  );
}
