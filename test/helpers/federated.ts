/**
 * Federated learning events for suites that need one of every event type (issue 14): a site
 * registered with its key, a private final round signed by it, a refused round, the site retired.
 * @module
 */
import { flUpdateMessage } from '../../src/core/federated.js';
import { toBase64 } from '../../src/core/hash.js';
import { formatSignerKey, parseSignerKey, verifierKeyFromSignerKey } from '../../src/core/note.js';
import { FlRoundRefusedError, type Governance } from '../../src/service/governance.js';

export const FL_COORDINATOR = { id: 'coord-1', role: 'fl_coordinator' } as const;

/** Writes FL_SITE_REGISTERED, FL_ROUND (final, with DP), FL_ROUND_REFUSED and FL_SITE_RETIRED through the service. */
export async function writeFlEvents(g: Governance, line = 'vocab-line'): Promise<void> {
  const skey = formatSignerKey('site-v1', Buffer.alloc(32, 42));
  await g.registerFlSite({ site: 'site-v1', key: verifierKeyFromSignerKey(skey) }, FL_COORDINATOR);
  const update = 'ab'.repeat(32);
  const signature = toBase64(parseSignerKey(skey).sign(flUpdateMessage(g.log.origin, line, 1, 'site-v1', update)));
  await g.recordFlRound(
    {
      line,
      round: 1,
      aggregation: 'fedavg',
      sites: [{ site: 'site-v1', update, signature }],
      globalModel: 'cd'.repeat(32),
      dp: { clipNorm: 1, noiseMultiplier: 1.1, delta: 1e-5 },
      final: true,
      version: { model: 'vocab-model', version: '1.0.0', spec: { framework: 'pytorch' } },
    },
    FL_COORDINATOR,
  );
  try {
    await g.recordFlRound({ line, round: 1, aggregation: 'fedavg', sites: [{ site: 'site-v1', update, signature }], globalModel: 'cd'.repeat(32) }, FL_COORDINATOR);
    throw new Error('the second round 1 was not refused');
  } catch (err) {
    if (!(err instanceof FlRoundRefusedError)) throw err;
  }
  await g.retireFlSite('site-v1', FL_COORDINATOR);
}
