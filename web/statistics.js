// issue 15: public statistics, #/statistics. The figures released with differential privacy
// (GET /api/v1/dp/releases, open to every authenticated caller): each release with its ε and δ,
// its mechanism, its unit of privacy and budget period, and the released (noisy) values.
import { api } from './api.js';
import { h, fields, table, time, link, mark } from './dom.js';
import { documentHash } from './proofs.js';

const MECHANISMS = { discrete_laplace: 'discrete Laplace', discrete_gaussian: 'discrete Gaussian' };
const UNITS = { patient: 'a patient', actor: 'an actor (clinician or service)', event: 'an event' };
const DIMENSIONS = ['type', 'purpose', 'role', 'model', 'outcome'];

function queryText(q) {
  const parts = [`${q.from} to ${q.to} (exclusive)`, q.per === 'all' ? 'whole range' : `per ${q.per}`];
  if (q.by.length) parts.push(`by ${q.by.join(', ')}`);
  for (const [k, list] of Object.entries(q.where ?? {})) parts.push(`${k} in ${list.map((x) => (k === 'model' ? `${x.slice(0, 12)}…` : x)).join(', ')}`);
  return parts.join(' · ');
}

function noiseText(n) {
  if (n.scale) return `scale ${n.scale.value} (Δ₁ = ${n.sensitivity}, P(x) ∝ exp(−|x|/scale))`;
  if (n.sigma2) return `σ² = ${n.sigma2.value} (Δ₂ = ${n.sensitivity}, P(x) ∝ exp(−x²/2σ²))`;
  return '';
}

// Checked here, in the browser: the document shown hashes (RFC 8785 + SHA-256) to the hash its
// DP_RELEASE entry commits (#/event/N proves that entry against the signed checkpoint).
function documentCheck(d, committed) {
  let ok = false;
  try {
    ok = documentHash(d) === committed;
  } catch {
    ok = false;
  }
  return h('span', { testid: 'release-document-check', dataset: { ok } }, mark(ok), ok ? ' hashes to the entry’s documents.release' : ' does NOT hash to the entry’s documents.release');
}

function releaseCard(r) {
  const d = r.document;
  const head = h(
    'div',
    { class: 'page-head' },
    h('h2', null, 'Release ', link(`#/event/${r.index}`, `#${r.index}`)),
    h('span', { class: 'badge', testid: 'release-epsilon' }, `ε = ${r.epsilon}`),
    ' ',
    r.delta > 0 ? h('span', { class: 'badge', testid: 'release-delta' }, `δ = ${r.delta}`) : null,
  );
  if (!d)
    return h(
      'section',
      { class: 'card', testid: 'release', dataset: { index: r.index } },
      head,
      h('p', { class: 'error' }, 'The release document is missing from the store, or does not match the hash on the log.'),
    );
  const cols = ['period', ...DIMENSIONS.filter((k) => d.query.by.includes(k))];
  const rows = d.values.map((v) =>
    h(
      'tr',
      { testid: 'release-value' },
      ...cols.map((c) => h('td', null, c === 'model' ? h('code', { title: v[c] }, `${String(v[c]).slice(0, 12)}…`) : String(v[c]))),
      h('td', { class: 'num' }, String(v.value)),
    ),
  );
  return h(
    'section',
    { class: 'card', testid: 'release', dataset: { index: r.index } },
    head,
    fields([
      ['Released', time(r.time)],
      ['To', r.consumer],
      ['Mechanism', h('span', { testid: 'release-mechanism' }, MECHANISMS[r.mechanism] ?? r.mechanism)],
      ['Noise', noiseText(d.noise)],
      ['Unit of privacy', `${UNITS[r.unit] ?? r.unit}, at most ${d.query.clip} event${d.query.clip === 1 ? '' : 's'} each`],
      ['Query', queryText(d.query)],
      ['Budget period', h('span', { testid: 'release-period' }, d.budgetPeriod)],
      ['Computed over', `entries 0 to ${d.treeSize - 1}`],
      ['Document', documentCheck(d, r.documentHash)],
    ]),
    table([...cols, ['value', 'num']], rows, { testid: 'release-values' }),
  );
}

export async function statisticsPage() {
  const q = await api('/api/v1/dp/releases');
  const releases = [...q.releases].reverse();
  return h(
    'div',
    { class: 'page', testid: 'page-statistics' },
    h('div', { class: 'page-head' }, h('h1', null, 'Public statistics')),
    h(
      'section',
      { class: 'card' },
      h(
        'p',
        { class: 'small muted' },
        'Counts released with differential privacy: each figure carries random noise from an exact discrete mechanism, so that no single patient, clinician or event can be singled out from it. ε (and δ) say how much one unit can change what is published: smaller is more private and noisier. Each release is a DP_RELEASE entry on the log; the budget of each consumer, and the total budget of all consumers together, is the sum of the releases on the log. Values can be negative: the noise is left as drawn.',
      ),
    ),
    ...(releases.length ? releases.map(releaseCard) : [h('section', { class: 'card' }, h('p', { class: 'muted', testid: 'statistics-empty' }, 'Nothing has been released yet.'))]),
  );
}
