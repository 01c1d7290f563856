// The break-glass review queue (issue 12): #/reviews?status=open|closed|all&overdue=true
// Accesses that consent denied and break-glass overrode, until a privacy officer reviews them.
// Holders of break-glass:review may close an open item here (POST /api/v1/reviews/:index).
import { api, ApiError } from './api.js';
import { h, fields, table, time, link } from './dom.js';

function hrefWith(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `#/reviews?${s}` : '#/reviews';
}

function stateCell(x) {
  if (x.review) {
    const r = x.review;
    return h(
      'span',
      { testid: 'review-state', dataset: { state: 'closed' } },
      h('span', { class: `badge ${r.outcome === 'justified' ? 'exec' : 'deny'}` }, r.outcome),
      ` ${r.reason} by ${r.actor} `,
      link(`#/event/${r.index}`, `#${r.index}`),
    );
  }
  if (x.overdue) return h('span', { testid: 'review-state', dataset: { state: 'overdue' } }, h('span', { class: 'badge deny' }, 'overdue'), ' since ', time(x.dueAt));
  return h('span', { testid: 'review-state', dataset: { state: 'open' } }, h('span', { class: 'badge' }, 'open'), ' due ', time(x.dueAt));
}

// Outcome and reason for one open item; the reasons offered are those of the chosen outcome.
function closeForm(x, reasons) {
  const outcome = h(
    'select',
    { testid: 'review-outcome', 'aria-label': 'outcome' },
    ['justified', 'not_justified'].map((o) => h('option', { value: o }, o)),
  );
  const reason = h('select', { testid: 'review-reason', 'aria-label': 'reason' });
  const fill = () => reason.replaceChildren(...(reasons[outcome.value] ?? []).map((r) => h('option', { value: r }, r)));
  fill();
  outcome.addEventListener('change', fill);
  const error = h('span', { class: 'error small', testid: 'review-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'secondary', testid: 'review-close' }, 'Close review');
  const form = h('form', { class: 'inline', testid: 'review-form' }, outcome, ' ', reason, ' ', button, ' ', error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      await api(`/api/v1/reviews/${x.index}`, { method: 'POST', body: { outcome: outcome.value, reason: reason.value } });
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    } catch (err) {
      error.textContent = err instanceof ApiError ? `${err.code}: ${err.message}` : String(err);
      button.disabled = false;
    }
  });
  return form;
}

export async function reviewsPage(_arg, params) {
  const status = ['open', 'closed', 'all'].includes(params.get('status')) ? params.get('status') : 'open';
  const overdue = params.get('overdue') === 'true';
  const q = await api('/api/v1/reviews', { query: { status, overdue: overdue ? 'true' : undefined } });
  const tab = (label, p, testid) => {
    const active = (p.status ?? 'open') === status && Boolean(p.overdue) === overdue;
    return h('a', { href: hrefWith(p), class: `button ${active ? '' : 'secondary'}`, testid }, label);
  };
  const rows = q.items.map((x) =>
    h(
      'tr',
      { testid: 'review-row', dataset: { index: x.index, overdue: x.overdue, status: x.status } },
      h('td', { class: 'num' }, link(`#/event/${x.index}`, `#${x.index}`)),
      h('td', null, time(x.time)),
      h('td', null, x.actor),
      h('td', null, x.role),
      h('td', null, x.purpose),
      h('td', null, h('code', null, x.justification)),
      h(
        'td',
        null,
        h('span', { class: 'badge deny' }, x.overridden.reason),
        ' ',
        link(`#/policy/${encodeURIComponent(x.overridden.policyId)}`, x.overridden.policyId),
        x.overridden.policyVersion !== undefined ? h('small', { class: 'muted' }, ` v${x.overridden.policyVersion}`) : null,
      ),
      h('td', null, stateCell(x)),
      h('td', null, x.review ? '' : closeForm(x, q.reasons)),
    ),
  );
  return h(
    'div',
    { class: 'page', testid: 'page-reviews' },
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Break-glass reviews'),
      h('div', { class: 'inline' }, tab('Open', {}, 'reviews-tab-open'), ' ', tab('Overdue', { overdue: 'true' }, 'reviews-tab-overdue'), ' ', tab('All', { status: 'all' }, 'reviews-tab-all')),
    ),
    h(
      'section',
      { class: 'card' },
      fields([
        ['Open', h('strong', { testid: 'reviews-open' }, String(q.open))],
        ['Overdue', h('strong', { testid: 'reviews-overdue', class: q.overdue > 0 ? 'deny-text' : '' }, String(q.overdue))],
        ['Deadline', `${q.deadlineHours} hours after the access (as of ${q.now.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')}, the server's clock)`],
      ]),
      h(
        'p',
        { class: 'small muted' },
        'Each BREAK_GLASS entry is an access that consent denied and a clinician overrode with a justification code. A review is a BREAK_GLASS_REVIEWED entry on the log: the queue is read from the log, nobody can edit it, and nobody reviews their own access.',
      ),
    ),
    h(
      'section',
      { class: 'card' },
      rows.length
        ? table([['#', 'num'], 'Time (UTC)', 'Actor', 'Role', 'Purpose', 'Justification', 'Overrode', 'Review', ''], rows, { testid: 'reviews-table' })
        : h('p', { class: 'muted', testid: 'reviews-empty' }, overdue ? 'No review is overdue.' : status === 'closed' ? 'No review is closed yet.' : 'No break-glass access is waiting for review.'),
    ),
  );
}
