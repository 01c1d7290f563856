// issue 14: federated learning, #/fl and #/fl/LINE (docs/federated.md). Read only, with fl:read:
// the registered sites (GET /api/v1/fl/sites) and, per model line (GET /api/v1/fl/lines), its rounds
// and refused rounds (GET /api/v1/fl/lines/:line/rounds) with the DP accountant's running (ε, δ).
// FL events carry sites, digests, codes and figures only: nothing here is patient-linked.
import { api } from './api.js';
import { h, fields, table, time, link, hash } from './dom.js';

/** Lines whose rounds are shown in full on #/fl; past that, a line is one click away (#/fl/LINE). */
const MAX_LINES = 20;

// The aggregation codes of core/federated.ts (FL_AGGREGATIONS), as their papers name them.
const AGGREGATIONS = {
  fedavg: 'FedAvg',
  fedprox: 'FedProx',
  fedadam: 'FedAdam',
  fedyogi: 'FedYogi',
  fedadagrad: 'FedAdagrad',
  scaffold: 'SCAFFOLD',
  'trimmed-mean': 'trimmed mean',
  median: 'coordinate-wise median',
  krum: 'Krum',
};

// Figures as text: ε to 4 significant digits (the exact value in the title and in data-epsilon).
function figure(x) {
  return Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x);
}

const entryLink = (index, testid) => h('a', { href: `#/event/${index}`, testid }, `#${index}`);

function siteRow(s) {
  const retired = s.retiredIndex !== null;
  return h(
    'tr',
    { testid: 'fl-site-row', dataset: { site: s.site, status: s.status } },
    h('td', null, h('code', null, s.site)),
    h('td', null, hash(s.keyHash, { testid: 'fl-site-key' })),
    h('td', null, entryLink(s.registeredIndex, 'fl-site-registered'), ' ', time(s.registeredAt)),
    h(
      'td',
      null,
      retired
        ? h('span', null, h('span', { class: 'badge deny', testid: 'fl-site-status' }, 'retired'), ' ', entryLink(s.retiredIndex), ' ', time(s.retiredAt))
        : h('span', { class: 'badge exec', testid: 'fl-site-status' }, 'active'),
    ),
  );
}

function sitesCard(sites) {
  return h(
    'section',
    { class: 'card', testid: 'fl-sites' },
    h('h2', null, `Sites (${sites.length})`),
    sites.length
      ? table(['Site', 'Key fingerprint (SHA-256)', 'Registered at entry', 'Status'], sites.map(siteRow), { testid: 'fl-sites-table' })
      : h('p', { class: 'muted', testid: 'fl-sites-empty' }, 'No site is registered.'),
    h(
      'p',
      { class: 'small muted' },
      'A site signs each update it contributes with its Ed25519 key; the log holds the public key, and a round naming a site that is unknown or retired, or with a signature that does not verify, is refused. Site ids are never reused.',
    ),
  );
}

function dpCell(dp) {
  if (!dp) return h('span', { class: 'muted' }, 'no DP');
  return h('span', null, `clip ${figure(dp.clipNorm)}, noise ×${figure(dp.noiseMultiplier)}`, h('br'), h('small', { class: 'muted' }, `ρ = ${figure(dp.rho)} this round`));
}

function runningCell(dp) {
  if (!dp) return h('span', { class: 'muted' }, '—');
  return h(
    'span',
    { class: 'fl-epsilon', testid: 'fl-round-epsilon', dataset: { epsilon: dp.epsilon, delta: dp.delta }, title: `ε = ${dp.epsilon}, δ = ${dp.delta}, ρ total = ${dp.rhoTotal} (zCDP)` },
    `ε = ${figure(dp.epsilon)}, δ = ${dp.delta}`,
  );
}

function versionCell(r, registered) {
  if (!r.final) return '';
  if (!r.version) return h('span', { class: 'badge' }, 'final');
  const name = `${r.version.model} ${r.version.version}`;
  // Linked only when the registry holds this version with the round's weights (a version of that
  // name registered by hand with other weights is not the line's).
  const weights = registered.get(r.version.model)?.get(r.version.version);
  const known = weights === r.version.weights;
  return h(
    'span',
    { testid: 'fl-round-version', dataset: { model: r.version.model, version: r.version.version, registered: Boolean(known) } },
    h('span', { class: 'badge' }, 'final'),
    ' ',
    known ? h('a', { href: `#/models/${encodeURIComponent(r.version.model)}`, testid: 'fl-version-link' }, name) : h('code', null, name),
    weights !== undefined && !known ? h('small', { class: 'deny-text' }, ' (registered with other weights)') : null,
  );
}

function roundRow(r, registered) {
  return h(
    'tr',
    { testid: 'fl-round-row', dataset: { line: r.line, round: r.round } },
    h('td', { class: 'num' }, String(r.round)),
    h(
      'td',
      null,
      r.sites.map((x) => h('div', { class: 'fl-site', testid: 'fl-round-site', dataset: { site: x.site } }, h('code', null, x.site), ' ', hash(x.update))),
    ),
    h('td', { testid: 'fl-round-aggregation', dataset: { aggregation: r.aggregation } }, AGGREGATIONS[r.aggregation] ?? r.aggregation),
    h('td', null, dpCell(r.dp)),
    h('td', null, runningCell(r.dp)),
    h('td', null, hash(r.globalModel, { testid: 'fl-round-global' })),
    h('td', null, entryLink(r.index, 'fl-round-entry'), ' ', time(r.time), h('br'), h('small', { class: 'muted' }, `by ${r.actor}`)),
    h('td', null, versionCell(r, registered)),
  );
}

function refusalRow(x) {
  return h(
    'tr',
    { testid: 'fl-refusal-row', dataset: { line: x.line, round: x.round, reason: x.reason } },
    h('td', { class: 'num' }, String(x.round)),
    h('td', null, h('span', { class: 'badge deny', testid: 'fl-refusal-reason' }, x.reason)),
    h('td', null, x.site ? h('code', null, x.site) : h('span', { class: 'muted' }, '—')),
    h('td', null, entryLink(x.index, 'fl-refusal-entry'), ' ', time(x.time), h('br'), h('small', { class: 'muted' }, `by ${x.actor}`)),
  );
}

function lineSection(l, registered) {
  // A final round closes the line; it names the version the line ends in when it has one.
  const closed = l.rounds.some((r) => r.final);
  return h(
    'section',
    { class: 'card', testid: 'fl-line', dataset: { line: l.line } },
    h('h2', null, 'Line ', link(`#/fl/${encodeURIComponent(l.line)}`, l.line)),
    fields([
      ['Rounds', h('strong', null, String(l.rounds.length))],
      ['Last round', String(l.lastRound)],
      ['Differential privacy', l.dp === undefined ? null : l.dp ? 'yes' : 'no'],
      ['Running total', l.epsilon === undefined ? undefined : h('span', { testid: 'fl-line-epsilon', dataset: { epsilon: l.epsilon } }, `ε = ${figure(l.epsilon)} (ρ = ${figure(l.rhoTotal)})`)],
      ['State', h('span', { testid: 'fl-line-state', dataset: { closed } }, closed ? (l.version ? `closed: ended in ${l.version.model} ${l.version.version}` : 'closed by its final round') : 'open')],
    ]),
    l.rounds.length
      ? table(
          [['Round', 'num'], 'Sites and update digests', 'Aggregation', 'DP parameters', 'Running (ε, δ)', 'Global model', 'Entry', 'Model version'],
          l.rounds.map((r) => roundRow(r, registered)),
          { testid: 'fl-rounds' },
        )
      : h('p', { class: 'muted' }, 'No round is recorded.'),
    l.refusals.length ? h('h3', null, `Refused rounds (${l.refusals.length})`) : null,
    l.refusals.length ? table([['Round', 'num'], 'Reason', 'Site', 'Entry'], l.refusals.map(refusalRow), { testid: 'fl-refusals' }) : null,
  );
}

// The weights of the registered versions of the models the lines end in, by model and version.
// Asked only of a role with models:read (the session's permissions): a refused request is itself
// audited (SECURITY_ALERT), so a coordinator's view must not make one. A model not registered (404)
// gets no link either.
async function registeredVersions(lines, mayReadModels) {
  const out = new Map();
  if (!mayReadModels) return out;
  const models = [...new Set(lines.flatMap((l) => (l.version ? [l.version.model] : [])))];
  await Promise.all(
    models.map(async (m) => {
      try {
        const r = await api(`/api/v1/models/${encodeURIComponent(m)}`);
        out.set(m, new Map(r.versions.map((x) => [x.version, x.weightsHash])));
      } catch {
        // 404: no link.
      }
    }),
  );
  return out;
}

export async function flPage(arg, _params, { can = () => true } = {}) {
  const [sites, list] = await Promise.all([api('/api/v1/fl/sites'), arg === undefined ? api('/api/v1/fl/lines') : null]);
  const names = arg === undefined ? list.lines.map((l) => l.line) : [arg];
  const shown = names.slice(0, MAX_LINES);
  const lines = await Promise.all(shown.map((n) => api(`/api/v1/fl/lines/${encodeURIComponent(n)}/rounds`)));
  const registered = await registeredVersions(lines, can('models:read'));
  const rest = arg === undefined ? list.lines.slice(MAX_LINES) : [];
  return h(
    'div',
    { class: 'page', testid: 'page-fl' },
    h('div', { class: 'page-head' }, h('h1', null, arg === undefined ? 'Federated learning' : `Federated line ${arg}`), arg === undefined ? null : link('#/fl', 'All lines')),
    h(
      'section',
      { class: 'card' },
      fields([
        ['Sites', h('strong', { testid: 'fl-site-count' }, String(sites.sites.length))],
        ['Lines', arg === undefined ? h('strong', { testid: 'fl-line-count' }, String(names.length)) : undefined],
      ]),
      h(
        'p',
        { class: 'small muted' },
        'Each round of a model line is an FL_ROUND entry: the sites that took part with the digest of the update each signed, the aggregation, the global model’s digest and, for a private line, the DP parameters and the accountant’s running total (ε at the round’s δ). A round is decided when it is sequenced; a refused one is an FL_ROUND_REFUSED entry with its reason. The final round names the model version the line ends in. No patient data is on these entries.',
      ),
    ),
    arg === undefined ? sitesCard(sites.sites) : null,
    lines.length ? lines.map((l) => lineSection(l, registered)) : h('section', { class: 'card' }, h('p', { class: 'muted', testid: 'fl-lines-empty' }, 'No round has been recorded or refused.')),
    rest.length
      ? h(
          'section',
          { class: 'card', testid: 'fl-more-lines' },
          h('h2', null, `More lines (${rest.length})`),
          table(
            ['Line', ['Rounds', 'num'], ['Refused', 'num'], ['Last round', 'num'], 'State'],
            rest.map((l) =>
              h(
                'tr',
                null,
                h('td', null, link(`#/fl/${encodeURIComponent(l.line)}`, l.line)),
                h('td', { class: 'num' }, String(l.rounds)),
                h('td', { class: 'num' }, String(l.refusals)),
                h('td', { class: 'num' }, String(l.lastRound)),
                h('td', null, l.closed ? 'closed' : 'open'),
              ),
            ),
          ),
        )
      : null,
  );
}
