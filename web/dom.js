// Small DOM helpers. Text from the log is always set as text (never parsed as HTML).

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * h('div', { class: 'x', dataset: { testid: 'y' }, onclick: fn }, child, 'text', [more])
 * Attribute names starting with "on" add listeners; "testid" sets data-testid.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A hash shortened for display; the full value is in the title and copied on click. */
export function hash(value, { chars = 12, testid } = {}) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
  const v = String(value);
  const short = v.length > chars + 4 ? `${v.slice(0, chars)}…` : v;
  return h('code', { class: 'hash', title: v, testid, 'data-full': v }, short);
}

/** ✓ or ✗ */
export function mark(ok) {
  return h('span', { class: ok ? 'ok' : 'bad', 'aria-label': ok ? 'passed' : 'failed' }, ok ? '✓' : '✗');
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}

/** A definition list from [label, value] pairs (pairs with value undefined are skipped). */
export function fields(pairs, attrs) {
  const dl = h('dl', { class: 'fields', ...attrs });
  for (const [label, value] of pairs) {
    if (value === undefined) continue;
    dl.append(h('dt', null, label), h('dd', null, value === null ? h('span', { class: 'muted' }, '—') : value));
  }
  return dl;
}

/** head: column titles, or [title, class] pairs (e.g. ['Events', 'num']). */
export function table(head, rows, attrs) {
  return h(
    'table',
    attrs,
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        head.map((c) => (Array.isArray(c) ? h('th', { class: c[1] }, c[0]) : h('th', null, c))),
      ),
    ),
    h('tbody', null, rows),
  );
}

export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

/** Times are shown in UTC, as the log records them. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const t = String(iso)
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
  return h('time', { datetime: iso, title: iso }, t);
}

const TYPE_CLASS = {
  CONSENT_DENIED: 'deny',
  DATA_ACCESSED: 'exec',
  INFERENCE_EXECUTED: 'exec',
  TRAINING_EXECUTED: 'exec',
  CONSENT_CREATED: 'consent',
  CONSENT_REVOKED: 'consent',
  CONSENT_UPDATED: 'consent',
  ERASURE_PERFORMED: 'erase',
  PATIENT_DATA_OPENED: 'erase',
  SECURITY_ALERT: 'deny',
  BREAK_GLASS: 'deny',
  BREAK_GLASS_REVIEWED: 'consent',
  // issue 15: attestations (an issuance reads an entry's facts)
  ATTESTATION_ISSUED: 'erase',
  // issue 14: model registry
  MODEL_REGISTERED: 'consent',
  MODEL_APPROVED: 'consent',
  MODEL_RETIRED: 'erase',
  CHANGE_PLAN_COMMITTED: 'consent',
  INFERENCE_REFUSED: 'deny',
  // issue 14: federated learning
  FL_SITE_REGISTERED: 'consent',
  FL_SITE_RETIRED: 'erase',
  FL_ROUND: 'exec',
  FL_ROUND_REFUSED: 'deny',
};

export function typeBadge(type) {
  return h('span', { class: `badge ${TYPE_CLASS[type] ?? 'other'}` }, type);
}
