// The model registry (issue 14; docs/models.md): #/models, #/models/NAME
// Every model line with its versions (status, approval, retirement, change control), its change
// control plans, and per version the entries of the inferences made with it. Read only: registering,
// approving and retiring are done with the CLI or the API (they are events on the log).
import { api } from './api.js';
import { h, fields, table, time, link, hash } from './dom.js';

const STATUS_CLASS = { approved: 'exec', registered: '', retired: 'deny' };

function statusBadge(x) {
  return h('span', { class: `badge ${STATUS_CLASS[x.status] ?? ''}`, testid: 'model-status', dataset: { status: x.status } }, x.status);
}

function approvalCell(x) {
  if (!x.approval) return h('span', { class: 'muted' }, 'waiting for approval');
  const a = x.approval;
  return h(
    'span',
    { testid: 'model-approval', dataset: { basis: a.basis } },
    a.basis === 'plan' ? `under plan ${a.plan}` : `by ${a.actor} (${a.role})`,
    ' ',
    link(`#/event/${a.index}`, `#${a.index}`),
  );
}

function planCell(x) {
  if (!x.changeControl) return x.origin?.kind === 'fl' ? `federated line ${x.origin.line}, round ${x.origin.round}` : '';
  const c = x.changeControl;
  return h('span', null, `${c.plan} (${c.modification}): `, h('span', { class: `badge ${c.outcome === 'WITHIN_BOUNDS' ? 'exec' : 'deny'}` }, c.outcome));
}

// The inferences of one version, loaded on demand (the read is logged as AUDIT_QUERY).
function inferencesCell(model, x) {
  const box = h('span', { testid: 'model-inferences' });
  if (x.inferenceCount === 0) {
    box.append(h('span', { class: 'muted' }, 'none'));
    return box;
  }
  const button = h('button', { type: 'button', class: 'secondary small', testid: 'model-inferences-load' }, `${x.inferenceCount} inference${x.inferenceCount === 1 ? '' : 's'}`);
  button.addEventListener('click', async () => {
    button.disabled = true;
    const r = await api(`/api/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(x.version)}/inferences`, { query: { limit: '200' } });
    box.replaceChildren(
      ...r.inferences.flatMap((i, k) => [k > 0 ? ', ' : '', h('a', { href: `#/receipt/${i}`, testid: 'model-inference-link' }, `#${i}`)]),
      r.next !== undefined ? h('span', { class: 'muted' }, ` … ${r.total} in all`) : '',
    );
  });
  box.append(button);
  return box;
}

function lineSection(l) {
  const rows = l.versions.map((x) =>
    h(
      'tr',
      { testid: 'model-version-row', dataset: { model: l.model, version: x.version, status: x.status } },
      h('td', null, h('code', null, x.version)),
      h('td', null, statusBadge(x)),
      h('td', null, x.intendedUse, h('br'), h('small', { class: 'muted' }, x.riskClass)),
      h('td', null, hash(x.weightsHash)),
      h('td', null, link(`#/event/${x.registered.index}`, `#${x.registered.index}`), ' ', h('small', { class: 'muted' }, `by ${x.registered.actor}`)),
      h('td', null, approvalCell(x)),
      h('td', null, x.retirement ? h('span', null, x.retirement.reason ?? 'retired', ' ', link(`#/event/${x.retirement.index}`, `#${x.retirement.index}`)) : ''),
      h('td', null, planCell(x)),
      h('td', null, inferencesCell(l.model, x)),
    ),
  );
  const plans = l.plans.map((p) =>
    h(
      'tr',
      { testid: 'model-plan-row', dataset: { plan: p.planId } },
      h('td', null, h('code', null, p.planId)),
      h('td', null, p.modifications.join(', ')),
      h('td', null, p.metrics.join(', ')),
      h('td', null, link(`#/event/${p.index}`, `#${p.index}`), ' ', time(p.time)),
      h('td', null, hash(p.hash)),
    ),
  );
  return h(
    'section',
    { class: 'card', testid: 'model-line', dataset: { model: l.model } },
    h('h2', null, link(`#/models/${encodeURIComponent(l.model)}`, l.model)),
    table(['Version', 'Status', 'Intended use / risk class', 'Weights', 'Registered', 'Approval', 'Retired', 'Change control', 'Inferences'], rows, { testid: 'model-versions' }),
    plans.length ? h('h3', null, 'Change control plans') : null,
    plans.length ? table(['Plan', 'Allowed modifications', 'Bounded metrics', 'Committed', 'Plan document'], plans, { testid: 'model-plans' }) : null,
  );
}

export async function modelsPage(arg) {
  const lines = arg ? [await api(`/api/v1/models/${encodeURIComponent(arg)}`)] : (await api('/api/v1/models')).models;
  return h(
    'div',
    { class: 'page', testid: 'page-models' },
    h('div', { class: 'page-head' }, h('h1', null, arg ? `Model ${arg}` : 'Models'), arg ? link('#/models', 'All models') : null),
    h(
      'section',
      { class: 'card' },
      fields([
        ['Lines', h('strong', { testid: 'models-lines' }, String(lines.length))],
        ['Versions', h('strong', null, String(lines.reduce((n, l) => n + l.versions.length, 0)))],
      ]),
      h(
        'p',
        { class: 'small muted' },
        'A version is usable only once a role with model:approve approves it (MODEL_APPROVED), by hand or under a change control plan when every metric of its training run is within the plan’s bounds. An inference under an unapproved, retired or altered version is refused and the refusal is on the log (INFERENCE_REFUSED). The registry is read from the log.',
      ),
    ),
    lines.length ? lines.map(lineSection) : h('section', { class: 'card' }, h('p', { class: 'muted', testid: 'models-empty' }, 'No model is registered.')),
  );
}
