/**
 * `custos fl ...` (issue 14): federated learning sites and rounds, and the two tools a site runs on
 * its own machine (`fl site keygen`, `fl sign`), which never open a log.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { ValidationError } from '../../core/errors.js';
import { FL_ID_RE, flUpdateMessage, isFlOrigin } from '../../core/federated.js';
import { toBase64, toHex } from '../../core/hash.js';
import { formatSignerKey, parseSignerKey, verifierKeyFromSignerKey } from '../../core/note.js';
import { openDataDir, openLog } from '../../log/data-dir.js';
import { Governance, type Actor, type FlLine, type FlRound, type FlSite } from '../../service/governance.js';
import type { AppendResult } from '../../log/log.js';
import type { CommandContext } from '../context.js';
import { sha256File } from '../file-digest.js';
import { inCwd, printFields, printJson } from '../output.js';
import { readJsonFile } from './governance.js';

async function withGovernance<T>(ctx: CommandContext, fn: (g: Governance) => Promise<T>): Promise<T> {
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    return await fn(await Governance.open({ log }));
  } finally {
    await log.close();
    await dir.store.close();
  }
}

const eventJson = (e: AppendResult) => ({ index: e.index, leafHash: toHex(e.leafHash), treeSize: e.checkpoint.treeSize, rootHash: toHex(e.checkpoint.rootHash) });

function checkSiteId(site: string): void {
  if (!FL_ID_RE.test(site))
    throw new ValidationError('VALIDATION_FAILED', 'a site id is a lowercase identifier (a-z, 0-9, . _ -; at most 64)', { issues: [{ path: 'site', message: 'expected a lowercase identifier' }] });
}

/**
 * `custos fl site keygen --site S --out FILE`: a new Ed25519 key for a site, its private half
 * written to FILE (mode 0600, never overwritten, never printed), its verifier key printed (what the
 * coordinator registers).
 */
export function flSiteKeygen(ctx: CommandContext, o: { site: string; out: string }): void {
  checkSiteId(o.site);
  const skey = formatSignerKey(o.site, randomBytes(32));
  const file = inCwd(ctx.io, o.out);
  try {
    writeFileSync(file, `${skey}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot write the key file ${o.out} (it must not exist yet)`, { cause: err });
  }
  const key = verifierKeyFromSignerKey(skey);
  if (ctx.json) printJson(ctx.io, { site: o.site, key, keyFile: o.out });
  else printFields(ctx.io, { site: o.site, 'verifier key': key, 'private key': `${o.out} (keep it at the site; register the verifier key)` });
}

/** Reads a site's private key file (never a key on the command line: argv is visible to other users). */
function readSiteKey(ctx: CommandContext, path: string): string {
  const file = inCwd(ctx.io, path);
  let text: string;
  try {
    if (!statSync(file).isFile()) throw new Error('not a regular file');
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read the site key file ${path}`, { cause: err });
  }
  return text;
}

/**
 * The log origin a site signs for: `--log ORIGIN` when given, else the origin of the data directory
 * (`--data-dir`, $CUSTOS_DATA_DIR or ./custos-data), opened read-only.
 * @throws {ValidationError} VALIDATION_FAILED: an origin with a newline, or neither `--log` nor a data directory
 */
async function signingOrigin(ctx: CommandContext, log: string | undefined): Promise<string> {
  if (log !== undefined) {
    if (!isFlOrigin(log))
      throw new ValidationError('VALIDATION_FAILED', '--log must be the log origin: one non-empty line (no newline), at most 255 characters', {
        issues: [{ path: 'log', message: 'expected a log origin' }],
      });
    return log;
  }
  let dir: Awaited<ReturnType<typeof openDataDir>>;
  try {
    dir = await openDataDir(ctx.dataDir, { readonly: true, storeUrl: ctx.storeUrl });
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `give --log ORIGIN (the origin line of the coordinator's log, as in its checkpoints), or --data-dir of that log (no log in ${ctx.dataDir})`, {
      issues: [{ path: 'log', message: 'the log origin is required' }],
      cause: err,
    });
  }
  await dir.store.close();
  return dir.origin;
}

/**
 * `custos fl sign --site-key FILE (--log ORIGIN | --data-dir DIR) --line L --round N (--update-digest D | --update-file F)`:
 * the site's signature over the signed update message (docs/federated.md, v2: it names the log), as
 * the round file's entry.
 */
export async function flSign(ctx: CommandContext, o: { siteKey: string; log?: string; line: string; round: number; updateDigest?: string; updateFile?: string }): Promise<void> {
  if ((o.updateDigest === undefined) === (o.updateFile === undefined)) throw new ValidationError('VALIDATION_FAILED', 'give the update as --update-digest HEX or --update-file FILE (one of them)');
  // A digest in either case, as the round file accepts it; the signed message spells it lowercase.
  const update = (o.updateDigest ?? (await sha256File(ctx.io, o.updateFile!, 'update-file')).digest).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(update))
    throw new ValidationError('HASH_MALFORMED', '--update-digest must be a SHA-256 digest, 64 hex characters', { issues: [{ path: 'update-digest', message: 'expected 64 hex characters' }] });
  if (!FL_ID_RE.test(o.line))
    throw new ValidationError('VALIDATION_FAILED', 'a line is a lowercase identifier (a-z, 0-9, . _ -; at most 64)', { issues: [{ path: 'line', message: 'expected a lowercase identifier' }] });
  if (o.round < 1) throw new ValidationError('VALIDATION_FAILED', '--round must be at least 1');
  const origin = await signingOrigin(ctx, o.log);
  const signer = parseSignerKey(readSiteKey(ctx, o.siteKey));
  checkSiteId(signer.name);
  const signature = toBase64(signer.sign(flUpdateMessage(origin, o.line, o.round, signer.name, update)));
  const entry = { site: signer.name, update, signature };
  if (ctx.json) return printJson(ctx.io, { log: origin, line: o.line, round: o.round, ...entry });
  ctx.io.stdout.write(`${JSON.stringify(entry)}\n`);
}

const siteJson = (s: FlSite) => ({ ...s, status: s.retiredIndex === null ? 'active' : 'retired' });

/** `custos fl site register --site S --key VKEY|FILE`. */
export async function flSiteRegister(ctx: CommandContext, o: { site: string; key: string }, actor: Actor): Promise<void> {
  const r = await withGovernance(ctx, (g) => g.registerFlSite({ site: o.site, key: o.key }, actor));
  if (ctx.json) return printJson(ctx.io, { site: siteJson(r.site), event: eventJson(r.event) });
  printFields(ctx.io, { site: r.site.site, 'key hash': r.site.keyHash, 'logged as': `FL_SITE_REGISTERED, entry ${r.event.index}` });
}

/** `custos fl site retire SITE`. */
export async function flSiteRetire(ctx: CommandContext, site: string, actor: Actor): Promise<void> {
  const r = await withGovernance(ctx, (g) => g.retireFlSite(site, actor));
  if (ctx.json) return printJson(ctx.io, { site: siteJson(r.site), event: eventJson(r.event) });
  printFields(ctx.io, { site: r.site.site, 'logged as': `FL_SITE_RETIRED, entry ${r.event.index}` });
}

/** `custos fl site list`. */
export async function flSiteList(ctx: CommandContext): Promise<void> {
  const sites = await withGovernance(ctx, (g) => g.listFlSites());
  if (ctx.json) return printJson(ctx.io, { sites: sites.map(siteJson) });
  if (sites.length === 0) ctx.io.stdout.write('no sites registered\n');
  for (const s of sites) {
    const state = s.retiredIndex === null ? 'active' : `retired (entry ${s.retiredIndex})`;
    ctx.io.stdout.write(`${s.site}  key ${s.keyHash.slice(0, 16)}  registered entry ${s.registeredIndex}  ${state}\n`);
  }
}

function roundLine(r: FlRound): string {
  const dp = r.dp ? `  dp σ=${r.dp.noiseMultiplier} C=${r.dp.clipNorm} ε=${r.dp.epsilon.toFixed(4)} (δ=${r.dp.delta})` : '';
  const fin = r.version ? `  FINAL -> ${r.version.model} ${r.version.version}` : '';
  return `round ${r.round}  entry ${r.index}  ${r.aggregation}  ${r.sites.length} sites (${r.sites.map((x) => x.site).join(', ')})  global ${r.globalModel.slice(0, 16)}${dp}${fin}\n`;
}

/** `custos fl round FILE`: records a round; a refusal prints its entry, then fails with its code. */
export async function flRound(ctx: CommandContext, file: string, actor: Actor): Promise<void> {
  const input = readJsonFile(ctx.io, file, 'round');
  const r = await withGovernance(ctx, (g) => g.recordFlRound(input, actor));
  const registered = r.registered ? { model: r.registered.model, version: r.registered.version, specHash: r.registered.specHash, event: eventJson(r.registered.event) } : undefined;
  if (ctx.json) return printJson(ctx.io, { round: r.round, event: eventJson(r.event), ...(registered ? { registered } : {}) });
  printFields(ctx.io, {
    round: `${r.round.round} of ${r.round.line} (${r.round.sites.length} sites, ${r.round.aggregation})`,
    ...(r.round.dp ? { 'dp (running)': `ε=${r.round.dp.epsilon} at δ=${r.round.dp.delta} (ρ=${r.round.dp.rhoTotal})` } : {}),
    ...(r.round.version ? { 'model version': `${r.round.version.model} ${r.round.version.version} (weights ${r.round.version.weights})` } : {}),
    'logged as': `FL_ROUND, entry ${r.event.index}`,
    // issue 14 (models): the final version enters the model registry (approve it before inference).
    ...(r.round.version
      ? {
          registry: registered
            ? `MODEL_REGISTERED, entry ${registered.event.index} (approve it: custos model approve ${registered.model}@${registered.version})`
            : 'not registered (no intendedUse and riskClass in the round spec or on the line; custos model register)',
        }
      : {}),
  });
}

/** `custos fl lines`: the lines the log has a round or refused round of, with their counts. */
export async function flLines(ctx: CommandContext): Promise<void> {
  const lines = await withGovernance(ctx, (g) => g.listFlLines());
  if (ctx.json) return printJson(ctx.io, { lines });
  if (lines.length === 0) ctx.io.stdout.write('no rounds recorded or refused\n');
  for (const l of lines) ctx.io.stdout.write(`${l.line}  ${l.rounds} rounds  ${l.refusals} refused  last round ${l.lastRound}  ${l.closed ? 'closed' : 'open'}\n`);
}

/** `custos fl rounds LINE`. */
export async function flRounds(ctx: CommandContext, line: string): Promise<void> {
  const l: FlLine = await withGovernance(ctx, (g) => g.listFlRounds(line));
  if (ctx.json) return printJson(ctx.io, l);
  ctx.io.stdout.write(
    `line ${l.line}: ${l.rounds.length} rounds, ${l.refusals.length} refused, last round ${l.lastRound}${l.epsilon === undefined ? '' : `, ε=${l.epsilon}`}${l.version ? `, ended in ${l.version.model} ${l.version.version}` : ''}\n`,
  );
  for (const r of l.rounds) ctx.io.stdout.write(roundLine(r));
  for (const x of l.refusals) ctx.io.stdout.write(`refused round ${x.round}  entry ${x.index}  ${x.reason}${x.site ? ` (site ${x.site})` : ''}\n`);
}

/** `custos simulate --fl [--sites N] [--rounds R]`: the FL scenario (src/sim/federated.ts) on a fresh log. */
export async function simulateFl(ctx: CommandContext, o: { sites: number; rounds: number; seed: number; output?: string }): Promise<void> {
  if (o.sites < 2 || o.rounds < 2) throw new ValidationError('VALIDATION_FAILED', 'the FL scenario needs at least 2 sites and 2 rounds (one site drops out mid-way)');
  const { runFederated } = await import('../../sim/federated.js');
  const report = await runFederated({ sites: o.sites, rounds: o.rounds, seed: o.seed });
  if (o.output) writeFileSync(inCwd(ctx.io, o.output), `${JSON.stringify(report, null, 2)}\n`);
  if (ctx.json) return printJson(ctx.io, report);
  const last = report.recorded.at(-1)!;
  printFields(ctx.io, {
    scenario: `${report.sites} sites, ${report.rounds} rounds of line ${report.line} (fedavg, DP σ=${report.dp.noiseMultiplier} C=${report.dp.clipNorm} δ=${report.dp.delta}), seed ${report.seed}`,
    dropout: `${report.dropout.site} sends no update from round ${report.dropout.fromRound} on`,
    'forged update': report.forged.refused
      ? `round ${report.forged.round}, site ${report.forged.site}: REFUSED ${report.forged.reason} (FL_ROUND_REFUSED, entry ${report.forged.eventIndex}); the round was then recorded with the genuine updates`
      : `round ${report.forged.round}, site ${report.forged.site}: NOT REFUSED`,
    rounds: report.recorded.map((r) => `${r.round}:${r.participants} sites`).join(' '),
    'dp (running)': `ε=${last.epsilon.toFixed(4)} after ${report.recorded.length} rounds (zCDP accountant, δ=${report.dp.delta})`,
    'final version': `${report.final.model} ${report.final.version}, weights ${report.final.weights} (FL_ROUND, entry ${report.final.index}; registry: ${report.final.registered ? 'registered (MODEL_REGISTERED)' : 'not registered: no intendedUse and riskClass'})`,
    'events on the log': Object.entries(report.events)
      .map(([k, n]) => `${n} ${k}`)
      .join(', '),
    verification: `log ${report.log.verified ? 'ok' : 'FAILED'}, documents ${report.log.documentsVerified ? 'ok' : 'FAILED'} (${report.log.entries} entries)`,
  });
}
