/**
 * The federated learning scenario (issue 14): N sites, each with its own Ed25519 key, train a model
 * line over R rounds against the real service on a fresh log.
 *
 * - Every site is registered (FL_SITE_REGISTERED) by the coordinator.
 * - Each round, every participating site signs the digest of its update for that round; the
 *   coordinator records the round (FL_ROUND) with FedAvg, Gaussian DP (σ, C, δ fixed) and the
 *   digest of the aggregated model; the accountant's running ε grows with every round.
 * - One site drops out from round ⌊R/2⌋+1 on: it sends no more updates, and the rounds go on without it.
 * - At round max(1, ⌊R/2⌋) an attacker forges the update of one site (its digest signed with a key
 *   that is not the site's): the round is refused (FL_ROUND_REFUSED, FL_SIGNATURE_INVALID) and
 *   nothing of it is recorded; the coordinator then records the round with the genuine updates.
 * - The last round is final: it names the version the line ends in (weights = its global model),
 *   and goes through the registry hook (service/governance/federated.ts, registerFlModelVersion).
 * - Then the log and the off-ledger documents are verified, and the FL events are counted on the log.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLoggedEvent } from '../core/events.js';
import { flUpdateMessage } from '../core/federated.js';
import { sha256, toBase64, toHex } from '../core/hash.js';
import { formatSignerKey, parseSignerKey, verifierKeyFromSignerKey, type NoteSigner } from '../core/note.js';
import { randomBytesFrom, seededRandom } from '../core/random.js';
import { ManualClock } from '../log/clock.js';
import { initDataDir, openLog } from '../log/data-dir.js';
import { verifyLog } from '../log/verify-log.js';
import { FlRoundRefusedError, Governance } from '../service/governance.js';
import { verifyDocuments } from '../service/verify-documents.js';
import { SIM_MS_PER_RUN, SIM_T0_MS } from './simulate.js';

/** Parameters of {@link runFederated}. */
export interface FederatedSpec {
  /** Sites (at least 2: one drops out). */
  readonly sites: number;
  /** Rounds (at least 2: the dropout happens mid-way). */
  readonly rounds: number;
  readonly seed: number;
}

/** The DP parameters every round of the scenario states. */
export const FL_SIM_DP = Object.freeze({ clipNorm: 1.0, noiseMultiplier: 1.1, delta: 1e-5 });
/** The line and the version it ends in. */
export const FL_SIM_LINE = 'sim-line';
export const FL_SIM_VERSION = Object.freeze({ model: 'sim-fl-model', version: '1.0.0' });

/** What {@link runFederated} reports. */
export interface FederatedReport {
  readonly sites: number;
  readonly rounds: number;
  readonly seed: number;
  readonly line: string;
  readonly dp: typeof FL_SIM_DP;
  readonly dropout: { readonly site: string; readonly fromRound: number };
  readonly forged: { readonly round: number; readonly site: string; readonly refused: boolean; readonly reason: string | null; readonly eventIndex: number | null };
  /** Each recorded round: its entry, its participants and the running ε after it. */
  readonly recorded: readonly { readonly round: number; readonly index: number; readonly participants: number; readonly epsilon: number }[];
  readonly final: { readonly model: string; readonly version: string; readonly weights: string; readonly index: number; readonly registered: boolean };
  /** FL events counted on the log afterwards (by type). */
  readonly events: Readonly<Record<string, number>>;
  readonly log: { readonly entries: number; readonly verified: boolean; readonly documentsVerified: boolean };
}

const digestOf = (text: string): string => toHex(sha256(Buffer.from(text, 'utf8')));

/** Runs the FL scenario on a fresh log (deleted afterwards unless `dataDir` is given). */
export async function runFederated(spec: FederatedSpec, options: { dataDir?: string } = {}): Promise<FederatedReport> {
  if (!Number.isSafeInteger(spec.sites) || spec.sites < 2) throw new RangeError('the FL scenario needs at least 2 sites');
  if (!Number.isSafeInteger(spec.rounds) || spec.rounds < 2) throw new RangeError('the FL scenario needs at least 2 rounds');
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'custos-fl-sim-'));
  try {
    await initDataDir(dir, { origin: `sim.custos.local/fl-${spec.seed}` });
    const rnd = seededRandom(spec.seed);
    const clock = new ManualClock(SIM_T0_MS);
    const { dir: dd, log } = await openLog(dir, { clock });
    try {
      const g = await Governance.open({ log, clock, randomBytes: (n) => randomBytesFrom(rnd, n) });
      const coordinator = { id: 'fl-coordinator', role: 'fl_coordinator' };
      const width = String(spec.sites).length;
      const ids = Array.from({ length: spec.sites }, (_, i) => `site-${String(i + 1).padStart(width, '0')}`);
      const signers = new Map<string, NoteSigner>();
      for (const id of ids) {
        const skey = formatSignerKey(id, randomBytesFrom(rnd, 32));
        signers.set(id, parseSignerKey(skey));
        clock.advance(SIM_MS_PER_RUN);
        await g.registerFlSite({ site: id, key: verifierKeyFromSignerKey(skey) }, coordinator);
      }
      // The attacker's key: named after the victim site, but not its key.
      const forger = parseSignerKey(formatSignerKey(ids[0]!, randomBytesFrom(rnd, 32)));
      const dropped = ids[ids.length - 1]!;
      const dropFrom = Math.floor(spec.rounds / 2) + 1;
      const forgedRound = Math.max(1, Math.floor(spec.rounds / 2));
      const forgedSite = ids[0]!;
      const sign = (signer: NoteSigner, round: number, site: string, update: string) => toBase64(signer.sign(flUpdateMessage(log.origin, FL_SIM_LINE, round, site, update)));
      let forged: FederatedReport['forged'] = { round: forgedRound, site: forgedSite, refused: false, reason: null, eventIndex: null };
      const recorded: { round: number; index: number; participants: number; epsilon: number }[] = [];
      let final: FederatedReport['final'] | undefined;
      for (let round = 1; round <= spec.rounds; round++) {
        const participants = ids.filter((id) => id !== dropped || round < dropFrom);
        const updates = participants.map((site) => ({ site, update: digestOf(`update/${spec.seed}/${site}/${round}`) }));
        const globalModel = digestOf(`global/${spec.seed}/${round}/${updates.map((u) => u.update).join(',')}`);
        const isFinal = round === spec.rounds;
        const body = (sites: { site: string; update: string; signature: string }[]) => ({
          line: FL_SIM_LINE,
          round,
          aggregation: 'fedavg',
          sites,
          globalModel,
          dp: { ...FL_SIM_DP },
          ...(isFinal ? { final: true, version: { ...FL_SIM_VERSION, spec: { framework: 'pytorch', sites: participants.length, rounds: spec.rounds } } } : {}),
        });
        const genuine = updates.map((u) => ({ ...u, signature: sign(signers.get(u.site)!, round, u.site, u.update) }));
        if (round === forgedRound) {
          // The forged update replaces the victim's: another digest, signed with the attacker's key.
          const fake = digestOf(`poisoned/${spec.seed}/${round}`);
          const sites = genuine.map((x) => (x.site === forgedSite ? { site: forgedSite, update: fake, signature: sign(forger, round, forgedSite, fake) } : x));
          clock.advance(SIM_MS_PER_RUN);
          try {
            await g.recordFlRound(body(sites), coordinator);
          } catch (err) {
            if (!(err instanceof FlRoundRefusedError)) throw err;
            forged = { round, site: forgedSite, refused: true, reason: err.reason, eventIndex: err.event.index };
          }
        }
        clock.advance(SIM_MS_PER_RUN);
        const r = await g.recordFlRound(body(genuine), coordinator);
        recorded.push({ round, index: r.event.index, participants: participants.length, epsilon: r.round.dp!.epsilon });
        if (isFinal) final = { ...r.round.version!, index: r.event.index, registered: r.registered !== undefined };
      }
      const events: Record<string, number> = {};
      const size = log.size;
      for (let i = 0; i < size; i++) {
        const e = parseLoggedEvent((await log.reader.getEntry(i)).bytes);
        if (e?.type.startsWith('FL_')) events[e.type] = (events[e.type] ?? 0) + 1;
      }
      const verified = await verifyLog({ store: dd.store, verifiers: [dd.verifier], origin: dd.origin });
      const documents = await verifyDocuments({ log });
      return {
        sites: spec.sites,
        rounds: spec.rounds,
        seed: spec.seed,
        line: FL_SIM_LINE,
        dp: FL_SIM_DP,
        dropout: { site: dropped, fromRound: dropFrom },
        forged,
        recorded,
        final: final!,
        events,
        log: { entries: size, verified: verified.ok, documentsVerified: documents.ok },
      };
    } finally {
      await log.close();
      await dd.store.close();
    }
  } finally {
    if (options.dataDir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}
