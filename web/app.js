// The Custos audit explorer: hash routes, one render function per page.
//   #/overview  #/events?type=&actor=&role=&purpose=&outcome=&since=&until=&limit=&before=
//   #/event/N   #/policy/ID   #/receipt/N   #/anomalies?hours=H
import { api, ApiError, clearToken, getToken, setToken, setUnauthorizedHandler } from './api.js';
import { h, hash, mark, fields, table, json, time, typeBadge, link } from './dom.js';
import { barChart, bucketize, timeChart, SERIES } from './charts.js';
import { documentHash, verifyCheckpointNote, verifyEntryProof, verifyWitnessedCheckpoint } from './proofs.js';
import { bundleDropPage } from './bundle-drop.js';
import { reviewsPage } from './reviews.js';
// issue 14: model registry
import { modelsPage } from './models.js';
// issue 15: public statistics (differential privacy)
import { statisticsPage } from './statistics.js';
// issue 14: federated learning
import { flPage } from './fl.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const sessionBox = document.getElementById('session');
const whoami = document.getElementById('whoami');

const EVENT_TYPES = [
  'CONSENT_CREATED',
  'CONSENT_REVOKED',
  'CONSENT_UPDATED',
  'CONSENT_DENIED',
  'DATA_ACCESSED',
  'INFERENCE_EXECUTED',
  'TRAINING_EXECUTED',
  'ERASURE_PERFORMED',
  'TOKEN_CREATED',
  'TOKEN_REVOKED',
  'AUDIT_QUERY',
  'AUDIT_READ',
  'PATIENT_DATA_OPENED',
  'SECURITY_ALERT',
  'WITNESS_ALARM',
  'BREAK_GLASS',
  'BREAK_GLASS_REVIEWED',
  'AUDIT_EVENT',
  // issue 14: model registry and change control
  'MODEL_REGISTERED',
  'MODEL_APPROVED',
  'MODEL_RETIRED',
  'CHANGE_PLAN_COMMITTED',
  'INFERENCE_REFUSED',
  // issue 14: import of the reference's ledgers (docs/import.md)
  'LEGACY_EVENT',
  'LEGACY_IMPORT_COMPLETED',
  // issue 15: differential privacy
  'DP_RELEASE',
  // issue 15: attestations
  'ATTESTATION_KEY_PUBLISHED',
  'ATTESTATION_ISSUED',
];
const EXECUTED = new Set(['DATA_ACCESSED', 'INFERENCE_EXECUTED', 'TRAINING_EXECUTED', 'BREAK_GLASS']);

/** { actor, role, permissions: string[] | null } once a token is accepted. */
let session = null;
let renderSeq = 0;

// ---- session --------------------------------------------------------------------------------

/**
 * Checks a token with GET /api/v1/me. A 401 rejects it. A 403 means the server accepted the
 * token but the role may not call /me (it requires consent:check): the role is in the details.
 * @throws {ApiError}
 */
async function validate(token) {
  try {
    const me = await api('/api/v1/me', { token, silent401: true });
    return { actor: me.actor, role: me.role, permissions: me.permissions };
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      return { actor: null, role: err.details?.role ?? 'unknown role', permissions: null };
    }
    throw err;
  }
}

function can(permission) {
  return session?.permissions ? session.permissions.includes(permission) : true;
}

function showChrome(on) {
  nav.hidden = !on;
  document.getElementById('nav-reviews').hidden = !can('break-glass:review');
  document.getElementById('nav-models').hidden = !can('models:read');
  // issue 14: federated learning
  document.getElementById('nav-fl').hidden = !can('fl:read');
  sessionBox.hidden = !on;
  if (on && session) {
    whoami.replaceChildren(
      session.actor ? h('strong', null, session.actor) : h('span', { class: 'muted', title: 'GET /api/v1/me is not permitted for this role' }, 'token accepted'),
      ' · ',
      h('span', { class: 'role' }, session.role),
    );
    whoami.title = session.permissions ? `permissions: ${session.permissions.join(', ')}` : '';
  } else {
    whoami.replaceChildren();
  }
}

function logout(message) {
  clearToken();
  session = null;
  renderSeq++;
  showChrome(false);
  showLogin(message);
}

setUnauthorizedHandler((err) => logout(`Your session ended: ${err.message} (401 ${err.code}). Log in again.`));

function showLogin(error) {
  showChrome(false);
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'custos_…', testid: 'token-input', required: true });
  const err = h('p', { class: 'error', testid: 'login-error', role: 'alert', hidden: !error }, error ?? '');
  const button = h('button', { type: 'submit', testid: 'login-button' }, 'Log in');
  const form = h(
    'form',
    { class: 'card login', testid: 'login-form', autocomplete: 'off' },
    h('h1', null, 'Log in'),
    h(
      'p',
      { class: 'muted' },
      'Paste an API token (create one with ',
      h('code', null, 'custos token create --name NAME --role auditor'),
      '). It is kept in this tab only (sessionStorage) and sent as ',
      h('code', null, 'Authorization: Bearer'),
      '.',
    ),
    h('label', { for: 'token' }, 'Token'),
    input,
    button,
    err,
    h('p', { class: 'small muted' }, 'No token? ', link('#/verify-bundle', 'Verify an evidence bundle'), ' with the log’s key only.'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    err.hidden = true;
    try {
      session = await validate(token);
      setToken(token);
      if (!location.hash || location.hash === '#' || location.hash.startsWith('#/login')) location.hash = '#/overview';
      await render();
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? `Token rejected: ${e.message} (401 ${e.code}).` : `Could not log in: ${e instanceof Error ? e.message : e}`;
      err.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

document.getElementById('logout').addEventListener('click', () => logout());
document.getElementById('jump').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = document.getElementById('jump-input');
  const v = input.value.trim().replace(/^#/, '');
  if (!v) return;
  location.hash = /^\d+$/.test(v) ? `#/event/${v}` : `#/policy/${encodeURIComponent(v)}`;
  input.value = '';
});

// ---- routing --------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { route: parts[0] ?? 'overview', arg: parts[1], params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

const ROUTES = {
  overview: overviewPage,
  events: eventsPage,
  event: eventPage,
  policy: policyPage,
  receipt: receiptPage,
  anomalies: anomaliesPage,
  reviews: reviewsPage,
  'verify-bundle': bundleDropPage,
  // issue 14: model registry
  models: modelsPage,
  // issue 15: public statistics (differential privacy)
  statistics: statisticsPage,
  // issue 14: federated learning
  fl: flPage,
};
// Pages that need no token: verifying a bundle uses only the file and a key (web/bundle-drop.js).
const PUBLIC_ROUTES = new Set(['verify-bundle']);

async function render() {
  const seq = ++renderSeq;
  const { route, arg, params } = parseHash();
  if (!session && !PUBLIC_ROUTES.has(route)) return showLogin();
  showChrome(Boolean(session));
  for (const a of nav.querySelectorAll('a[data-route]')) a.classList.toggle('active', a.dataset.route === route || (route === 'event' && a.dataset.route === 'events'));
  const page = ROUTES[route];
  main.replaceChildren(h('p', { class: 'muted loading', testid: 'loading' }, 'Loading…'));
  try {
    const node = page
      ? await page(arg, params, { loggedIn: Boolean(session), can })
      : h('section', { class: 'card' }, h('h1', null, 'No such page'), h('p', null, link('#/overview', 'Back to the overview')));
    if (seq === renderSeq) main.replaceChildren(node);
  } catch (err) {
    if (seq === renderSeq && session) main.replaceChildren(errorBox(err));
  }
  if (seq === renderSeq) document.title = `Custos · ${route}${arg !== undefined ? ` ${arg}` : ''}`;
}

function errorBox(err) {
  let title = 'Something went wrong';
  let text = err instanceof Error ? err.message : String(err);
  if (err instanceof ApiError) {
    if (err.status === 403) {
      title = 'Not permitted';
      text = err.details?.permission ? `Your role (${err.details.role ?? session?.role}) does not have the “${err.details.permission}” permission needed here.` : err.message;
    } else if (err.status === 404) title = 'Not found';
    else if (err.status === 422) title = 'Verification failed on the server';
    else if (err.status === 400) title = 'Bad request';
    text = `${text} (${err.status || 'network'} ${err.code})`;
  }
  return h('section', { class: 'card error-box', testid: 'error', role: 'alert' }, h('h1', null, title), h('p', null, text));
}

function pageHead(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', null, title), ...extra);
}

function hrefWith(base, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${base}?${s}` : base;
}

// ---- overview -------------------------------------------------------------------------------

async function overviewPage() {
  const [o, cp, w] = await Promise.all([api('/api/v1/overview'), api('/api/v1/checkpoint').catch(() => null), api('/api/v1/witnesses').catch(() => null)]);
  const c = o.checkpoint;
  const sigStatus = h('span', { class: 'muted', testid: 'overview-signature' }, c ? 'checking signature…' : '—');
  if (c && cp) {
    const r = verifyCheckpointNote(c.note, trustedKey(cp).key, cp.origin);
    sigStatus.replaceChildren(mark(r.ok), ' ', r.ok ? 'signature verified in this browser' : r.detail);
  }
  const cards = h(
    'div',
    { class: 'cards' },
    stat('Entries', o.entries, 'stat-entries'),
    stat('Checkpoint tree size', c ? c.treeSize : '—', 'stat-tree-size'),
    stat('Denials', h('a', { href: '#/events?outcome=denied' }, String(o.denials)), 'stat-denials', o.scanned < o.entries ? `in the latest ${o.scanned} entries` : 'CONSENT_DENIED events'),
    stat('Checkpoint time', c ? time(c.time) : '—', 'stat-checkpoint-time'),
  );
  const checkpoint = h(
    'section',
    { class: 'card', testid: 'overview-checkpoint' },
    h('h2', null, 'Latest signed checkpoint'),
    c
      ? fields([
          ['Tree size', String(c.treeSize)],
          ['Root hash', hash(c.rootHash, { chars: 16, testid: 'overview-root' })],
          ['Signed at', time(c.time)],
          ['Signature', sigStatus],
          ['Note', h('pre', { class: 'note' }, c.note)],
        ])
      : h('p', { class: 'muted' }, 'The log has no checkpoint yet.'),
  );

  const types = Object.entries(o.eventsByType).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const total = types.reduce((n, [, v]) => n + v, 0);
  const typeSection = h(
    'section',
    { class: 'card' },
    h('h2', null, 'Events per type', o.scanned < o.entries ? h('small', { class: 'muted' }, ` (latest ${o.scanned} entries)`) : null),
    types.length === 0
      ? h('p', { class: 'muted' }, 'No events yet.')
      : h(
          'div',
          { class: 'split' },
          table(
            ['Type', ['Events', 'num'], ['Share', 'num']],
            types.map(([t, n]) =>
              h(
                'tr',
                { testid: 'type-row', dataset: { type: t } },
                h('td', null, h('a', { href: hrefWith('#/events', { type: t }) }, typeBadge(t))),
                h('td', { class: 'num' }, String(n)),
                h('td', { class: 'num' }, `${((100 * n) / Math.max(1, total)).toFixed(1)}%`),
              ),
            ),
            { class: 'compact', testid: 'types-table' },
          ),
          barChart(
            types.map(([t, n]) => ({ label: t, value: n, cls: t === 'CONSENT_DENIED' ? 'c-deny' : EXECUTED.has(t) ? 'c-exec' : 'c-other' })),
            { testid: 'types-chart' },
          ),
        ),
  );
  const hourSection = h(
    'section',
    { class: 'card' },
    h('h2', null, 'Events over time', h('small', { class: 'muted' }, o.eventsByHour.length ? ` (per ${bucketize(o.eventsByHour).unit}, UTC)` : '')),
    o.eventsByHour.length === 0 ? h('p', { class: 'muted' }, 'No events yet.') : [timeChart(o.eventsByHour, { testid: 'hours-chart' }), legend()],
  );
  return h(
    'div',
    { class: 'page', testid: 'page-overview' },
    pageHead('Overview', h('span', { class: 'muted' }, `origin ${cp?.origin ?? '—'}`)),
    cards,
    h('div', { class: 'grid2' }, checkpoint, verificationCard(o.lastVerification)),
    w && w.witnesses.length > 0 ? witnessCard(w, cp) : null,
    typeSection,
    hourSection,
  );
}

// ---- witnesses --------------------------------------------------------------------------------

/**
 * The log's witnesses (GET /api/v1/witnesses): each one's cosigned size, lag, last success, errors,
 * refusals and alarm; and the latest checkpoint that reached the quorum, its log signature and its
 * cosignatures verified in this browser with the witnesses' keys.
 */
function witnessCard(w, cp) {
  const rows = w.witnesses.map((x) =>
    h(
      'tr',
      { testid: 'witness-row', dataset: { witness: x.name }, class: x.alarm ? 'alarm' : null },
      h('td', null, h('code', null, x.name)),
      h('td', { class: 'num', testid: 'witness-cosigned' }, x.cosignedSize === null ? '—' : String(x.cosignedSize)),
      h('td', { class: 'num', testid: 'witness-lag' }, String(x.lagEntries)),
      h('td', { class: 'num' }, x.lagEntries === 0 ? '0 s' : `${Math.round(x.lagSeconds)} s`),
      h('td', null, x.lastSuccess ? time(x.lastSuccess) : '—'),
      h('td', { class: 'num' }, String(x.errors)),
      h('td', { class: 'num', testid: 'witness-refusals' }, String(x.refusals)),
      h(
        'td',
        { testid: 'witness-alarm' },
        x.alarm
          ? h(
              'span',
              { class: 'status bad', title: x.lastError ? x.lastError.message : '' },
              `${x.alarm.reason} (${x.alarm.status || 'no answer'})`,
              x.alarm.eventIndex === null ? null : [' ', h('a', { href: `#/event/${x.alarm.eventIndex}` }, `event ${x.alarm.eventIndex}`)],
            )
          : h('span', { class: 'muted' }, 'ok'),
      ),
    ),
  );
  const q = w.quorumCheckpoint;
  const status = h('span', { class: 'muted', testid: 'witness-quorum-status' }, q ? 'checking cosignatures…' : '—');
  if (q && cp) {
    const r = verifyWitnessedCheckpoint(q.note, trustedKey(cp).key, cp.origin, w.witnesses, w.quorum);
    status.replaceChildren(mark(r.ok), ' ', r.detail);
  }
  return h(
    'section',
    { class: 'card', testid: 'witness-panel' },
    h('h2', null, 'Witnesses', h('small', { class: 'muted' }, ` (quorum ${w.quorum} of ${w.witnesses.length})`)),
    table(['Witness', ['Cosigned size', 'num'], ['Lag (entries)', 'num'], ['Lag', 'num'], 'Last cosignature', ['Errors', 'num'], ['Refusals', 'num'], 'Alarm'], rows, {
      class: 'compact',
      testid: 'witness-table',
    }),
    h('h3', null, 'Latest checkpoint that reached the quorum'),
    q
      ? fields([
          ['Tree size', h('span', { testid: 'witness-quorum-size' }, String(q.treeSize))],
          ['Cosigned by', q.witnesses.join(', ')],
          ['Verification', status],
          ['Note', h('pre', { class: 'note' }, q.note)],
        ])
      : h('p', { class: 'muted', testid: 'witness-quorum-none' }, 'No checkpoint has reached the quorum yet.'),
  );
}

function stat(label, value, testid, sub) {
  return h(
    'div',
    { class: 'card stat' },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value', testid }, value instanceof Node ? value : String(value)),
    sub ? h('div', { class: 'muted small' }, sub) : null,
  );
}

function legend() {
  return h(
    'div',
    { class: 'legend' },
    SERIES.map((s) => h('span', null, h('i', { class: `swatch ${s.cls}` }), s.label)),
  );
}

function lastVerificationView(v) {
  if (!v) return h('p', { class: 'muted', testid: 'last-verification' }, 'Not run since the server started.');
  return h(
    'div',
    { testid: 'last-verification' },
    fields([
      ['Result', h('span', null, mark(v.ok), ' ', v.ok ? 'log and documents verified' : 'verification FAILED')],
      ['At', time(v.at)],
      ['Entries checked', String(v.entries)],
      ['First bad entry', v.firstBadIndex === null || v.firstBadIndex === undefined ? null : link(`#/event/${v.firstBadIndex}`, `#${v.firstBadIndex}`)],
    ]),
  );
}

function verificationCard(last) {
  const body = h('div', null, lastVerificationView(last));
  const result = h('div', { testid: 'verify-result', class: 'verify-result' });
  const button = h('button', { type: 'button', testid: 'verify-now' }, 'Verify now');
  if (!can('verify')) {
    button.disabled = true;
    button.title = `role ${session?.role} does not have the verify permission`;
  }
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.replaceChildren(h('span', { class: 'muted' }, 'Verifying the whole log and the off-ledger documents…'));
    try {
      const r = await api('/api/v1/verify', { method: 'POST' });
      const findings = [...(r.log?.findings ?? []), ...(r.documents?.findings ?? [])];
      body.replaceChildren(lastVerificationView({ ok: r.ok, at: new Date().toISOString(), entries: r.log?.entries, firstBadIndex: r.log?.firstBadIndex ?? null }));
      result.replaceChildren(
        h(
          'p',
          null,
          mark(r.ok),
          ' ',
          r.ok ? 'Verified' : 'FAILED',
          ` in ${Number(r.seconds).toFixed(3)} s: ${r.log?.entries ?? '?'} entries, ${r.log?.checkpointsChecked ?? '?'} checkpoints, ${r.documents?.documentsChecked ?? '?'} documents, ${r.documents?.commitmentsChecked ?? '?'} commitments.`,
        ),
        findings.length
          ? table(
              ['Finding', 'Entry', 'Detail'],
              findings.slice(0, 20).map((f) => {
                const at = f.index ?? f.eventIndex;
                return h(
                  'tr',
                  { testid: 'verify-finding' },
                  h('td', null, h('code', null, String(f.kind ?? ''))),
                  h('td', null, at === undefined ? '' : link(`#/event/${at}`, `#${at}`)),
                  h('td', null, String(f.message ?? '')),
                );
              }),
              { class: 'compact' },
            )
          : '',
        findings.length > 20 ? h('p', { class: 'muted small' }, `and ${findings.length - 20} more findings`) : '',
      );
    } catch (err) {
      result.replaceChildren(
        h(
          'p',
          { class: 'error' },
          err instanceof ApiError && err.status === 403
            ? `Your role (${session?.role}) does not have the verify permission: ask an auditor or an admin.`
            : `Verification request failed: ${err.message}`,
        ),
      );
    } finally {
      button.disabled = !can('verify');
    }
  });
  return h(
    'section',
    { class: 'card', testid: 'overview-verification' },
    h('h2', null, 'Last verification'),
    body,
    h('div', { class: 'actions' }, button, can('verify') ? null : h('span', { class: 'muted small' }, ' needs the verify permission')),
    result,
  );
}

// ---- timeline -------------------------------------------------------------------------------

function isoToInput(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : new Date(t).toISOString().slice(0, 19);
}

function inputToIso(v) {
  if (!v) return '';
  const t = Date.parse(`${v}Z`);
  return Number.isNaN(t) ? '' : new Date(t).toISOString();
}

// TOKEN_CREATED / TOKEN_REVOKED payloads: actor and role did it (as on every event); tokenName and tokenRole are the token's.
function isTokenEvent(type) {
  return type === 'TOKEN_CREATED' || type === 'TOKEN_REVOKED';
}

function outcomeCell(e) {
  if (e.type === 'CONSENT_DENIED') return h('span', { class: 'deny-text' }, 'denied', e.payload?.reason ? h('small', null, ` ${e.payload.reason}`) : null);
  // issue 14: an inference refused for its model
  if (e.type === 'INFERENCE_REFUSED') return h('span', { class: 'deny-text' }, 'refused', e.payload?.reason ? h('small', null, ` ${e.payload.reason}`) : null);
  if (e.type === 'BREAK_GLASS') return h('span', { class: 'deny-text' }, 'break-glass', e.payload?.reason ? h('small', null, ` overrode ${e.payload.reason}`) : null);
  if (EXECUTED.has(e.type)) return h('span', { class: 'ok-text' }, 'executed');
  return h('span', { class: 'muted' }, '—');
}

async function eventsPage(_arg, params) {
  const f = {
    type: params.get('type') ?? '',
    actor: params.get('actor') ?? '',
    role: params.get('role') ?? '',
    purpose: params.get('purpose') ?? '',
    outcome: params.get('outcome') ?? '',
    since: params.get('since') ?? '',
    until: params.get('until') ?? '',
    limit: params.get('limit') ?? '50',
  };
  const before = params.get('before') ?? '';
  const trail = (params.get('trail') ?? '').split(',').filter((x) => x !== '');
  const data = await api('/api/v1/entries', { query: { ...f, before } });

  const types = EVENT_TYPES.includes(f.type) || !f.type ? EVENT_TYPES : [f.type, ...EVENT_TYPES];
  const el = {
    type: h(
      'select',
      { name: 'type', testid: 'filter-type' },
      h('option', { value: '' }, 'any type'),
      types.map((t) => h('option', { value: t, selected: t === f.type }, t)),
    ),
    actor: h('input', { name: 'actor', value: f.actor, placeholder: 'e.g. user-42', testid: 'filter-actor' }),
    role: h('input', { name: 'role', value: f.role, placeholder: 'e.g. dermatologist', testid: 'filter-role' }),
    purpose: h('input', { name: 'purpose', value: f.purpose, placeholder: 'e.g. TREAT', testid: 'filter-purpose' }),
    outcome: h(
      'select',
      { name: 'outcome', testid: 'filter-outcome' },
      [
        ['', 'any outcome'],
        ['executed', 'executed'],
        ['denied', 'denied'],
      ].map(([v, l]) => h('option', { value: v, selected: v === f.outcome }, l)),
    ),
    since: h('input', { name: 'since', type: 'datetime-local', step: '1', value: isoToInput(f.since), testid: 'filter-since' }),
    until: h('input', { name: 'until', type: 'datetime-local', step: '1', value: isoToInput(f.until), testid: 'filter-until' }),
    limit: h(
      'select',
      { name: 'limit', testid: 'filter-limit' },
      ['25', '50', '100', '200', '500'].map((v) => h('option', { value: v, selected: v === f.limit }, `${v} per page`)),
    ),
  };
  const form = h(
    'form',
    { class: 'card filters', testid: 'filters', autocomplete: 'off' },
    label('Type', el.type),
    label('Outcome', el.outcome),
    label('Actor', el.actor),
    label('Role', el.role),
    label('Purpose', el.purpose),
    label('Since (UTC)', el.since),
    label('Until (UTC)', el.until),
    label('Page size', el.limit),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply'), h('a', { href: '#/events', class: 'button secondary', testid: 'filter-reset' }, 'Reset')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = hrefWith('#/events', {
      type: el.type.value,
      outcome: el.outcome.value,
      actor: el.actor.value.trim(),
      role: el.role.value.trim(),
      purpose: el.purpose.value.trim(),
      since: inputToIso(el.since.value),
      until: inputToIso(el.until.value),
      limit: el.limit.value === '50' ? '' : el.limit.value,
    });
  });
  // Changing a select applies at once.
  for (const sel of [el.type, el.outcome, el.limit]) sel.addEventListener('change', () => form.requestSubmit());

  const rows = data.items.map((e) => {
    const p = e.payload ?? {};
    const tr = h(
      'tr',
      { testid: 'event-row', class: 'clickable', dataset: { index: e.index, type: e.type, operation: p.operation ?? '' } },
      h('td', { class: 'num' }, h('a', { href: `#/event/${e.index}`, testid: 'event-link' }, `#${e.index}`)),
      h('td', null, time(e.time)),
      h(
        'td',
        null,
        typeBadge(e.type),
        p.operation ? h('small', { class: 'muted' }, ` ${p.operation}`) : null,
        isTokenEvent(e.type) ? h('small', { class: 'muted' }, ` ${p.tokenName} (${p.tokenRole})`) : null,
      ),
      h('td', null, p.actor ?? ''),
      h('td', null, p.role ?? ''),
      h('td', null, p.purpose ?? ''),
      h('td', null, outcomeCell(e)),
      h(
        'td',
        null,
        p.policyId ? h('a', { href: `#/policy/${encodeURIComponent(p.policyId)}` }, p.policyId, p.policyVersion !== undefined ? h('small', { class: 'muted' }, ` v${p.policyVersion}`) : null) : '',
      ),
      h('td', null, hash(e.leafHash, { chars: 10 })),
    );
    tr.addEventListener('click', (ev) => {
      if (ev.target instanceof Element && ev.target.closest('a')) return;
      location.hash = `#/event/${e.index}`;
    });
    return tr;
  });

  const base = { ...f, limit: f.limit === '50' ? '' : f.limit };
  const pager = h(
    'div',
    { class: 'pager', testid: 'pager' },
    before ? h('a', { href: hrefWith('#/events', base), class: 'button secondary', testid: 'page-newest' }, '⇤ Newest') : null,
    before ? h('a', { href: hrefWith('#/events', { ...base, before: trail.at(-1) ?? '', trail: trail.slice(0, -1).join(',') }), class: 'button secondary', testid: 'page-newer' }, '← Newer') : null,
    h('span', { class: 'muted' }, `${data.items.length} event${data.items.length === 1 ? '' : 's'}${before ? ` before #${before}` : ''}`),
    data.next !== null && data.next > 0
      ? h('a', { href: hrefWith('#/events', { ...base, before: data.next, trail: [...trail, before].join(',') }), class: 'button secondary', testid: 'page-older' }, 'Older →')
      : null,
  );
  return h(
    'div',
    { class: 'page', testid: 'page-events' },
    pageHead('Event timeline', h('span', { class: 'muted' }, 'newest first')),
    form,
    h(
      'section',
      { class: 'card' },
      rows.length === 0
        ? h('p', { class: 'muted', testid: 'events-empty' }, 'No events match these filters.')
        : table([['#', 'num'], 'Time (UTC)', 'Type', 'Actor', 'Role', 'Purpose', 'Outcome', 'Policy', 'Leaf hash'], rows, { testid: 'events-table', class: 'events' }),
      pager,
    ),
  );
}

function label(text, control) {
  return h('label', { class: 'field' }, h('span', null, text), control);
}

// ---- proofs ---------------------------------------------------------------------------------

function pinKey(origin) {
  return `custos.pinnedKey.${origin}`;
}

/** The verifier key to trust: one pinned in this browser, else the server's. */
function trustedKey(cp) {
  let pinned = null;
  try {
    pinned = localStorage.getItem(pinKey(cp.origin));
  } catch {
    pinned = null;
  }
  return pinned ? { key: pinned, source: 'pinned', differs: pinned !== cp.verifierKey } : { key: cp.verifierKey, source: 'server', differs: false };
}

/**
 * The in-browser verification of one entry (GET /api/v1/entries/N) against the signed checkpoint.
 * Calls onDone(result) when finished.
 */
function proofPanel(e, cp, { onDone } = {}) {
  const status = h('span', { class: 'status pending', testid: 'proof-status' }, 'verifying…');
  const list = h('ul', { class: 'checks', testid: 'proof-checks' }, h('li', { class: 'muted' }, 'Checking…'));
  const k = trustedKey(cp);
  const keyLine = h(
    'p',
    { class: 'small muted' },
    `Verifier key (${k.source === 'pinned' ? 'pinned in this browser' : 'as served by this server'}): `,
    h('code', { class: 'wrap' }, k.key ?? '—'),
    ' ',
    k.source === 'pinned'
      ? h(
          'button',
          {
            type: 'button',
            class: 'link',
            onclick: () => {
              localStorage.removeItem(pinKey(cp.origin));
              render();
            },
          },
          'unpin',
        )
      : h(
          'button',
          {
            type: 'button',
            class: 'link',
            title: 'Trust this key from now on: later pages verify with it, not with whatever the server sends',
            onclick: () => {
              localStorage.setItem(pinKey(cp.origin), cp.verifierKey);
              render();
            },
          },
          'pin this key',
        ),
    k.differs ? h('strong', { class: 'deny-text' }, ' The server now serves a different key!') : null,
  );
  const panel = h('section', { class: 'card verify', testid: 'proof-panel' }, h('h2', null, 'Inclusion proof, verified in this browser ', status), list, keyLine);
  (async () => {
    const r = verifyEntryProof(e, { verifierKey: k.key, origin: cp.origin, keySource: k.source });
    list.replaceChildren(
      ...r.checks.map((c) =>
        h(
          'li',
          { class: c.ok ? 'pass' : 'fail', testid: `check-${c.id}`, dataset: { ok: c.ok } },
          mark(c.ok),
          ' ',
          h('span', { class: 'check-label' }, c.label),
          h('div', { class: 'detail' }, c.detail),
        ),
      ),
    );
    status.textContent = r.ok ? 'verified' : 'failed';
    status.className = `status ${r.ok ? 'good' : 'bad'}`;
    return r;
  })().then(
    (r) => onDone?.(r),
    (err) => {
      list.replaceChildren(h('li', { class: 'fail' }, mark(false), ' ', err instanceof Error ? err.message : String(err)));
      status.textContent = 'failed';
      status.className = 'status bad';
      onDone?.({ ok: false, checks: [] });
    },
  );
  return panel;
}

function proofDetails(e, cp) {
  return h(
    'details',
    { class: 'card', testid: 'proof-details' },
    h('summary', null, 'Proof data'),
    fields([
      ['Tree size', String(e.treeSize)],
      ['Root hash', h('code', { class: 'wrap' }, e.rootHash)],
      ['Leaf hash', h('code', { class: 'wrap' }, e.leafHash)],
      [
        'Audit path',
        e.proof.length
          ? h(
              'ol',
              { class: 'path', start: '0' },
              e.proof.map((p) => h('li', null, h('code', null, p))),
            )
          : h('span', { class: 'muted' }, '(empty: the tree has one entry)'),
      ],
      ['Checkpoint note', h('pre', { class: 'note' }, e.checkpoint ?? '—')],
      ['Log origin', cp.origin],
    ]),
  );
}

// ---- event detail ---------------------------------------------------------------------------

function parseIndexArg(arg) {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(arg ?? '')) throw new Error(`“${arg ?? ''}” is not an entry index`);
  return Number(arg);
}

async function eventPage(arg) {
  const n = parseIndexArg(arg);
  const [e, cp] = await Promise.all([api(`/api/v1/entries/${n}`), api('/api/v1/checkpoint')]);
  const entry = e.entry ?? {};
  const p = entry.payload ?? {};
  const links = h('div', { class: 'links' });
  if (entry.type === 'INFERENCE_EXECUTED') links.append(h('a', { href: `#/receipt/${n}`, class: 'button', testid: 'receipt-link' }, 'Inference receipt →'));
  // issue 15: a release of statistics with differential privacy is shown on the public statistics page.
  if (entry.type === 'DP_RELEASE') links.append(h('a', { href: '#/statistics', class: 'button', testid: 'statistics-link' }, 'Public statistics →'));
  // issue 14: a federated round, refused or not, is shown with its line on the federated learning page.
  if ((entry.type === 'FL_ROUND' || entry.type === 'FL_ROUND_REFUSED') && typeof p.line === 'string')
    links.append(h('a', { href: `#/fl/${encodeURIComponent(p.line)}`, class: 'button', testid: 'fl-line-link' }, `Federated line ${p.line} →`));
  if (p.policyId) links.append(h('a', { href: `#/policy/${encodeURIComponent(p.policyId)}`, class: 'button secondary', testid: 'policy-link' }, `Consent policy ${p.policyId} →`));
  const summary = h(
    'section',
    { class: 'card', testid: 'event-summary' },
    fields([
      ['Index', String(n)],
      ['Type', typeBadge(entry.type)],
      ['Time', time(entry.time)],
      ['Operation', p.operation],
      [
        'Outcome',
        entry.type === 'CONSENT_DENIED'
          ? h('span', { class: 'deny-text', testid: 'event-outcome' }, `denied: ${p.reason}`)
          : EXECUTED.has(entry.type)
            ? h('span', { class: 'ok-text', testid: 'event-outcome' }, 'executed')
            : undefined,
      ],
      ['Actor', p.actor],
      ['Role', p.role],
      ['Token', isTokenEvent(entry.type) ? `${p.tokenName} (role ${p.tokenRole}, id ${p.tokenId})` : undefined],
      ['Purpose', p.purpose],
      ['Policy', p.policyId ? h('span', null, link(`#/policy/${encodeURIComponent(p.policyId)}`, p.policyId), p.policyVersion !== undefined ? ` version ${p.policyVersion}` : '') : undefined],
      ['Leaf hash', hash(e.leafHash, { chars: 16 })],
    ]),
    links,
  );
  return h(
    'div',
    { class: 'page', testid: 'page-event' },
    pageHead(
      `Entry #${n}`,
      typeBadge(entry.type),
      h('span', { class: 'spacer' }),
      n > 0 ? h('a', { href: `#/event/${n - 1}`, class: 'button secondary', testid: 'prev-entry' }, `← #${n - 1}`) : null,
      n + 1 < e.treeSize ? h('a', { href: `#/event/${n + 1}`, class: 'button secondary', testid: 'next-entry' }, `#${n + 1} →`) : null,
    ),
    h('div', { class: 'grid2' }, summary, proofPanel(e, cp)),
    h('section', { class: 'card' }, h('h2', null, 'Payload'), json(p)),
    h('details', { class: 'card' }, h('summary', null, 'Entry bytes (RFC 8785 canonical JSON, as hashed)'), h('pre', { class: 'note', testid: 'entry-text' }, e.entryText)),
    proofDetails(e, cp),
  );
}

// ---- policy ---------------------------------------------------------------------------------

async function policyPage(arg) {
  const id = arg ?? '';
  const p = await api(`/api/v1/consents/${encodeURIComponent(id)}`);
  const versions = p.versions ?? [];
  const head = versions.at(-1);
  const revoked = versions.find((v) => v.type === 'CONSENT_REVOKED' || v.policy?.revoked === true);
  const decisions = p.decisions ?? {};
  const countsOf = (v) => {
    const list = decisions[String(v)] ?? [];
    const denied = list.filter((d) => d.type === 'CONSENT_DENIED').length;
    return { total: list.length, denied, permitted: list.length - denied };
  };
  const current = head?.policy;
  const status = revoked ? h('span', { class: 'status bad', testid: 'policy-status' }, 'revoked') : h('span', { class: 'status good', testid: 'policy-status' }, 'active');
  const summary = h(
    'section',
    { class: 'card', testid: 'policy-summary' },
    fields([
      [
        'Status',
        h(
          'span',
          null,
          status,
          revoked
            ? h(
                'span',
                null,
                ' at version ',
                String(revoked.version),
                ' — ',
                link(`#/event/${revoked.index}`, `entry #${revoked.index}`),
                ', ',
                time(revoked.time),
                revoked.policy?.recordedBy ? ` by ${revoked.policy.recordedBy.actor} (${revoked.policy.recordedBy.role})` : '',
              )
            : null,
        ),
      ],
      ['Current version', head ? String(head.version) : '—'],
      ['Subject', current ? hash(current.subject, { chars: 16 }) : undefined],
      ['Allowed purposes', current ? (current.provision?.purposes ?? []).join(', ') || '—' : undefined],
      ['Allowed roles', current ? (current.provision?.roles ?? []).join(', ') || '—' : undefined],
      ['Valid', current ? h('span', null, time(current.period?.start), ' → ', current.period?.end ? time(current.period.end) : 'open-ended') : undefined],
      ['Revocable', current ? (current.revocable ? 'yes' : 'no') : undefined],
      ['Nested provisions', current?.provision?.provisions?.length ? json(current.provision.provisions) : undefined],
    ]),
    h('p', { class: 'small muted' }, 'The subject is a salted commitment: the log never holds patient identifiers.'),
  );
  const vtable = table(
    [['Version', 'num'], ['Entry', 'num'], 'Time (UTC)', 'Event', 'Document', 'Hash', 'Recorded by', 'Decisions'],
    versions.map((v) => {
      const c = countsOf(v.version);
      return h(
        'tr',
        { testid: 'policy-version', dataset: { version: v.version } },
        h('td', { class: 'num' }, `v${v.version}`),
        h('td', { class: 'num' }, link(`#/event/${v.index}`, `#${v.index}`)),
        h('td', null, time(v.time)),
        h('td', null, typeBadge(v.type)),
        h('td', { testid: 'document-ok' }, mark(v.documentOk), v.documentOk ? ' matches the log' : ' EDITED or missing'),
        h('td', null, hash(v.hash)),
        h('td', null, v.policy?.recordedBy ? `${v.policy.recordedBy.actor} (${v.policy.recordedBy.role})` : '—'),
        h('td', null, `${c.permitted} permitted, `, h('span', { class: c.denied ? 'deny-text' : '' }, `${c.denied} denied`)),
      );
    }),
    { testid: 'policy-versions' },
  );
  const keys = Object.keys(decisions).sort((a, b) => Number(a) - Number(b));
  const decisionSections = keys.map((k) => {
    const list = decisions[k];
    const c = countsOf(k);
    return h(
      'section',
      { class: 'card', testid: `policy-decisions-v${k}` },
      h(
        'h3',
        null,
        k === '0' ? 'Decisions with no policy version (policy unknown at the time)' : `Decisions under version ${k}`,
        h('small', { class: 'muted' }, ` — ${c.total} (${c.permitted} permitted, ${c.denied} denied)`),
      ),
      table(
        [['Entry', 'num'], 'Time (UTC)', 'Event', 'Actor', 'Role', 'Purpose', 'Reason'],
        list.map((d) =>
          h(
            'tr',
            { testid: 'policy-decision' },
            h('td', { class: 'num' }, link(`#/event/${d.index}`, `#${d.index}`)),
            h('td', null, time(d.time)),
            h('td', null, typeBadge(d.type), d.type === 'INFERENCE_EXECUTED' ? h('a', { href: `#/receipt/${d.index}`, class: 'small' }, ' receipt') : null),
            h('td', null, String(d.actor ?? '')),
            h('td', null, String(d.role ?? '')),
            h('td', null, String(d.purpose ?? '')),
            h('td', null, h('span', { class: d.type === 'CONSENT_DENIED' ? 'deny-text' : 'ok-text' }, d.reason)),
          ),
        ),
        { class: 'compact' },
      ),
    );
  });
  return h(
    'div',
    { class: 'page', testid: 'page-policy' },
    pageHead(`Consent policy ${p.policyId ?? id}`, status.cloneNode(true)),
    summary,
    h('section', { class: 'card' }, h('h2', null, 'Versions'), vtable),
    h('h2', { class: 'section-title' }, 'Decisions made under each version'),
    decisionSections.length ? decisionSections : h('p', { class: 'muted card', testid: 'policy-no-decisions' }, 'No access or inference has been decided under this policy.'),
  );
}

// ---- receipt --------------------------------------------------------------------------------

async function receiptPage(arg) {
  const n = parseIndexArg(arg);
  const [r, e, cp] = await Promise.all([api(`/api/v1/receipts/${n}`), api(`/api/v1/entries/${n}`), api('/api/v1/checkpoint')]);
  const rc = r.receipt ?? {};
  // Filled in by the document checks below: does each document shown hash to the entry's commitment?
  const badges = {
    'pipeline manifest': h('span', { testid: 'pipeline-document' }),
    'model spec': h('span', { testid: 'model-document' }),
    explanations: h('span', { testid: 'explanations-document' }),
  };
  const status = h('span', { class: 'status pending', testid: 'receipt-status' }, 'verifying…');
  const serverOk = r.ok === true && Array.isArray(r.checks) && r.checks.every((c) => c.ok === true);

  // Browser-side: the documents shown hash (RFC 8785 + SHA-256) to what the verified entry commits.
  const docList = h('ul', { class: 'checks', testid: 'document-checks' }, h('li', { class: 'muted' }, 'Checking…'));
  const docChecks = (async () => {
    const ev = JSON.parse(e.entryText);
    const docs = ev.payload?.documents ?? {};
    const out = [];
    const add = (label, ok, detail, doc) => out.push({ label, ok, detail, doc });
    for (const [name, value, committed] of [
      ['receipt', r.receipt, docs.receipt],
      ['pipeline manifest', r.pipeline, docs.pipeline],
      ['model spec', r.model, docs.model],
      ['consent policy version', r.policy, docs.policy],
      // issue 14: only an inference with explanation artifacts commits an explanations document.
      ...(docs.explanations === undefined ? [] : [['explanations', r.explanations, docs.explanations]]),
    ]) {
      if (value === undefined || value === null) {
        if (name === 'explanations' && (r.erased ?? []).some((d) => d.what === 'explanations document')) {
          add('explanations document', true, 'erased (its hash stays on the log)', name);
          continue;
        }
        add(`${name} document`, false, 'not returned by the server', name);
        continue;
      }
      const hx = documentHash(value);
      add(`${name} hashes to the entry's commitment`, hx === committed, hx === committed ? hx : `computed ${hx}, the entry commits ${committed}`, name);
    }
    add('receipt names this entry', rc.event?.index === n && rc.event?.time === ev.time, `receipt event #${rc.event?.index} at ${rc.event?.time}`);
    const same =
      rc.actor === ev.payload?.actor &&
      rc.role === ev.payload?.role &&
      rc.purpose === ev.payload?.purpose &&
      rc.consent?.policyId === ev.payload?.policyId &&
      rc.consent?.version === ev.payload?.policyVersion;
    add('actor, role, purpose and consent version agree with the entry', same, `${rc.actor} (${rc.role}), ${rc.purpose}, ${rc.consent?.policyId} v${rc.consent?.version}`);
    for (const c of out) if (c.doc && badges[c.doc]) badges[c.doc].replaceChildren(h('span', { class: `status ${c.ok ? 'good' : 'bad'}` }, c.ok ? 'matches the log' : 'does not match the log'));
    docList.replaceChildren(
      ...out.map((c) =>
        h(
          'li',
          { class: c.ok ? 'pass' : 'fail', testid: 'document-check', dataset: { ok: c.ok } },
          mark(c.ok),
          ' ',
          h('span', { class: 'check-label' }, c.label),
          h('div', { class: 'detail' }, c.detail),
        ),
      ),
    );
    return out.every((c) => c.ok);
  })().catch((err) => {
    docList.replaceChildren(h('li', { class: 'fail' }, mark(false), ' ', err.message));
    return false;
  });
  let resolveProof;
  const proofDone = new Promise((res) => (resolveProof = res));
  const panel = proofPanel(e, cp, { onDone: (res) => resolveProof(res.ok) });
  Promise.all([docChecks, proofDone]).then(([docsOk, proofOk]) => {
    const ok = serverOk && docsOk && proofOk;
    status.textContent = ok ? 'verified' : 'failed';
    status.className = `status ${ok ? 'good' : 'bad'}`;
    status.title = `server checks ${serverOk ? 'passed' : 'FAILED'}; document hashes ${docsOk ? 'match' : 'DO NOT match'}; inclusion proof ${proofOk ? 'verified' : 'FAILED'}`;
  });

  const pipeline = r.pipeline ?? {};
  const model = r.model ?? {};
  const docs0 = e.entry?.payload?.documents ?? {};
  const summary = h(
    'section',
    { class: 'card', testid: 'receipt-summary' },
    h('h2', null, 'Who, why, under which consent'),
    fields([
      ['Event', h('span', null, link(`#/event/${n}`, `entry #${n}`), ' ', typeBadge(r.event?.type))],
      ['Time', time(rc.event?.time)],
      ['Actor', h('span', { testid: 'receipt-actor' }, rc.actor ?? '—')],
      ['Role', rc.role],
      ['Purpose', rc.purpose],
      [
        'Consent',
        rc.consent
          ? h(
              'span',
              null,
              h('a', { href: `#/policy/${encodeURIComponent(rc.consent.policyId)}`, testid: 'policy-link' }, rc.consent.policyId),
              ` version ${rc.consent.version} `,
              hash(rc.consent.policyHash),
            )
          : null,
      ],
      ['Receipt hash', hash(e.entry?.payload?.documents?.receipt, { chars: 16 })],
    ]),
  );
  const pipelineCard = h(
    'section',
    { class: 'card', testid: 'receipt-pipeline' },
    h('h2', null, 'Pipeline ', badges['pipeline manifest']),
    fields([
      ['Name', pipeline.pipelineName],
      ['Version', pipeline.pipelineVersion],
      ['Container image', pipeline.containerImage ?? null],
      ['Code commit', pipeline.codeCommit ? hash(pipeline.codeCommit) : null],
      ['Parameters', pipeline.parameters && Object.keys(pipeline.parameters).length ? json(pipeline.parameters) : null],
      ['Dependencies', pipeline.dependencies && Object.keys(pipeline.dependencies).length ? json(pipeline.dependencies) : null],
      ['Manifest hash', hash(rc.pipeline, { chars: 16 })],
    ]),
  );
  const modelCard = h(
    'section',
    { class: 'card', testid: 'receipt-model' },
    h('h2', null, 'Model ', badges['model spec']),
    fields([
      ['Name', model.modelName],
      ['Version', model.modelVersion],
      ['Framework', model.framework],
      ['Weights hash', hash(model.weightsHash, { chars: 16, testid: 'model-weights' })],
      ['Extra', model.extra && Object.keys(model.extra).length ? json(model.extra) : null],
      ['Spec hash', hash(rc.model, { chars: 16 })],
    ]),
  );
  // issue 14: the explanation artifacts (method, output explained, parameters); their URIs and
  // digests are in the artifacts table below, their document is checked with the others.
  const explained = Array.isArray(r.explanations?.explanations) ? r.explanations.explanations : [];
  const explanationsCard =
    docs0.explanations === undefined
      ? null
      : h(
          'section',
          { class: 'card', testid: 'receipt-explanations' },
          h('h2', null, 'Explanations ', badges.explanations),
          explained.length === 0
            ? h('p', { class: 'muted' }, 'The explanations document was erased: its hash stays on the log.')
            : table(
                ['#', 'Method', 'Output explained', 'Parameters', 'Digest (SHA-256)'],
                explained.map((x, i) =>
                  h(
                    'tr',
                    { testid: 'explanation-row' },
                    h('td', null, String(i + 1)),
                    h('td', { testid: 'explanation-method' }, h('code', null, x.method)),
                    h('td', { testid: 'explanation-output' }, x.output),
                    h('td', null, x.parameters && Object.keys(x.parameters).length ? json(x.parameters) : '—'),
                    h('td', null, hash(x.digest)),
                  ),
                ),
                { class: 'compact' },
              ),
          fields([['Document hash', hash(docs0.explanations, { chars: 16 })]]),
        );
  // URIs are sealed (commitments only) unless opened: opening needs commitments:open and a
  // purpose of use, and the server logs it (PATIENT_DATA_OPENED) before answering.
  const uriCell = (a) => {
    if (a.state === 'erased' || (a.uri === null && a.state === undefined)) {
      return h('span', { class: 'muted', title: 'the commitment opening was deleted (erasure): the log can no longer be linked to this URI' }, '(erased)');
    }
    if (a.uri === null) return h('span', { class: 'muted', title: 'commitment only: opening it needs the commitments:open permission and is logged' }, '(sealed)');
    return h('code', { class: 'wrap' }, a.uri);
  };
  const artifactRows = (list) =>
    list.map((a) =>
      h(
        'tr',
        { testid: 'artifact-row', dataset: { state: a.state ?? '' } },
        h('td', null, a.role),
        h('td', { testid: 'artifact-uri' }, uriCell(a)),
        h('td', null, hash(a.digest)),
        h('td', null, hash(a.commitment)),
      ),
    );
  const artifacts = table(['Artifact', 'URI', 'Digest (SHA-256)', 'URI commitment'], artifactRows(r.artifacts ?? []), { testid: 'receipt-artifacts' });
  let openForm = null;
  if (can('commitments:open') && (r.artifacts ?? []).some((a) => a.state === 'sealed')) {
    // No default: the purpose is the opener's own statement, recorded on the log.
    const purpose = h('input', {
      type: 'text',
      name: 'purpose',
      placeholder: 'e.g. TREAT',
      pattern: '[A-Za-z][A-Za-z0-9_.:-]{0,63}',
      required: true,
      testid: 'open-purpose',
      'aria-label': 'purpose of use',
    });
    const msg = h('span', { class: 'small muted', testid: 'open-status', role: 'status' });
    const button = h('button', { type: 'submit', testid: 'open-uris' }, 'Open URIs');
    openForm = h('form', { class: 'inline', testid: 'open-form' }, 'Purpose of use ', purpose, ' ', button, ' ', msg);
    openForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        const opened = await api(`/api/v1/receipts/${n}`, { query: { open: 'true', purpose: purpose.value.trim() } });
        artifacts.querySelector('tbody')?.replaceChildren(...artifactRows(opened.artifacts ?? []));
        msg.textContent = 'opened; this opening is recorded on the log (PATIENT_DATA_OPENED)';
        openForm.querySelectorAll('input, button').forEach((el) => (el.disabled = true));
      } catch (err) {
        msg.textContent = err instanceof ApiError ? `${err.message} (${err.status} ${err.code})` : String(err);
        button.disabled = false;
      }
    });
  }
  const checks = table(
    ['', 'Check (on the server)', 'Reference', 'Detail'],
    (r.checks ?? []).map((c) =>
      h('tr', { testid: 'receipt-check', dataset: { ok: c.ok } }, h('td', null, mark(c.ok)), h('td', null, c.what), h('td', null, hash(c.ref)), h('td', { class: 'small' }, c.detail ?? '')),
    ),
    { class: 'compact' },
  );
  return h(
    'div',
    { class: 'page', testid: 'page-receipt' },
    pageHead(`Inference receipt #${n}`, status),
    h('div', { class: 'grid2' }, summary, h('div', null, pipelineCard, modelCard)),
    explanationsCard,
    h('section', { class: 'card' }, h('h2', null, 'Artifacts'), openForm, artifacts),
    h(
      'div',
      { class: 'grid2' },
      h('section', { class: 'card' }, h('h2', null, 'Receipt checks ', serverOk ? h('span', { class: 'status good' }, 'all passed') : h('span', { class: 'status bad' }, 'failures')), checks),
      h('section', { class: 'card' }, h('h2', null, 'Documents, checked in this browser'), docList),
    ),
    panel,
    proofDetails(e, cp),
  );
}

// ---- anomalies ------------------------------------------------------------------------------

const WINDOWS = [
  ['1', 'last hour'],
  ['6', 'last 6 hours'],
  ['24', 'last 24 hours'],
  ['72', 'last 3 days'],
  ['168', 'last 7 days'],
  ['720', 'last 30 days'],
  ['8760', 'last year'],
];

async function anomaliesPage(_arg, params) {
  const hours = params.get('hours') ?? '24';
  const a = await api('/api/v1/anomalies', { query: { hours } });
  const options = WINDOWS.some(([v]) => v === hours) ? WINDOWS : [[hours, `last ${hours} hours`], ...WINDOWS];
  const select = h(
    'select',
    { testid: 'anomaly-hours', 'aria-label': 'window' },
    options.map(([v, l]) => h('option', { value: v, selected: v === hours }, l)),
  );
  select.addEventListener('change', () => (location.hash = hrefWith('#/anomalies', { hours: select.value })));
  const custom = h('input', { type: 'number', min: '0.01', max: '8760', step: 'any', placeholder: 'hours', testid: 'anomaly-hours-custom', class: 'narrow' });
  const form = h('form', { class: 'inline' }, h('label', null, 'Window ', select), ' or ', custom, h('button', { type: 'submit', class: 'secondary' }, 'Apply'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (custom.value) location.hash = hrefWith('#/anomalies', { hours: custom.value });
  });
  const rows = a.flagged.map((x) =>
    h(
      'tr',
      { testid: 'anomaly-row', dataset: { actor: x.actor } },
      h('td', null, h('a', { href: hrefWith('#/events', { actor: x.actor }) }, x.actor)),
      h('td', null, x.role),
      h('td', { class: 'num' }, String(x.attempts)),
      h('td', { class: 'num' }, h('a', { href: hrefWith('#/events', { actor: x.actor, outcome: 'denied' }) }, String(x.denials))),
      h(
        'td',
        null,
        h('div', { class: 'meter', title: `${(100 * x.denialRate).toFixed(1)}% denied` }, h('div', { class: 'meter-fill', style: { width: `${Math.min(100, 100 * x.denialRate).toFixed(1)}%` } })),
        h('span', { class: 'num' }, `${(100 * x.denialRate).toFixed(0)}%`),
      ),
      h(
        'td',
        null,
        x.reasons.map((r) => h('span', { class: 'badge deny' }, r)),
      ),
    ),
  );
  return h(
    'div',
    { class: 'page', testid: 'page-anomalies' },
    pageHead('Anomalies', form),
    h(
      'section',
      { class: 'card' },
      fields([
        ['Window', `${a.windowHours} hours, ending at the latest checkpoint`],
        ['Actors seen', String(a.actors)],
        ['Attempts per actor', `mean ${Number(a.meanAttempts).toFixed(1)}, σ ${Number(a.sdAttempts).toFixed(1)}`],
      ]),
      h(
        'p',
        { class: 'small muted' },
        'An actor is flagged for volume when its attempts exceed the mean by 3σ (at least 10 attempts, 3 actors), and for denial rate when at least half of 5 or more attempts were denied.',
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', null, `Flagged actors (${a.flagged.length})`),
      rows.length
        ? table(['Actor', 'Role', ['Attempts', 'num'], ['Denials', 'num'], 'Denial rate', 'Reasons'], rows, { testid: 'anomalies-table' })
        : h('p', { class: 'muted', testid: 'anomalies-empty' }, 'No actor is flagged in this window.'),
    ),
  );
}

// ---- start ----------------------------------------------------------------------------------

window.addEventListener('hashchange', () => render());

async function start() {
  const token = getToken();
  if (!token) return render();
  main.replaceChildren(h('p', { class: 'muted loading' }, 'Checking your token…'));
  try {
    session = await validate(token);
    await render();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) logout(`Your token was rejected: ${err.message} (401 ${err.code}).`);
    else {
      session = null;
      showLogin(`Could not reach the server: ${err instanceof Error ? err.message : err}`);
    }
  }
}

start();
