// "Verify a bundle" (#/verify-bundle): an offline evidence bundle (docs/bundle-format.md), dropped
// onto the page or chosen with the file input, is checked here in the browser by verifyBundle of
// src/core (./dist/custos-core.js), the code `custos verify-bundle` runs, with the same checks and
// codes. No token is needed and the verification makes no request: the only one is GET /log.pub, to
// pre-fill the key field, which an auditor replaces with (and pins) a key obtained out of band.
// The bundle is untrusted input: everything taken from it is set as text (dom.js h(), textContent).
import { COHORT_PROOF_MEDIA_TYPE, parseCosignerVerifierKey, parseVerifierKey, verifyBundle, verifyCohortProof } from './dist/custos-core.js';
import { h, mark } from './dom.js';

/** The largest bundle this page reads (a bundle is a few KiB; the CLI has no such limit). */
export const MAX_BUNDLE_BYTES = 5 * 1024 * 1024;
const PIN = 'custos.bundle.pinnedKey';

const SOURCES = {
  pinned: 'pinned in this browser',
  server: 'served by this server at /log.pub: it comes from the operator, so paste and pin a key you obtained out of band to check the operator',
  entered: 'entered by you',
  none: 'none yet: paste the log’s verifier key (name+keyid+base64)',
};

function errText(err) {
  return err instanceof Error ? err.message : String(err);
}

function readPin() {
  try {
    return localStorage.getItem(PIN) ?? '';
  } catch {
    return '';
  }
}

function writePin(value) {
  try {
    if (value) localStorage.setItem(PIN, value);
    else localStorage.removeItem(PIN);
  } catch {
    // Storage disabled: the key field still works for this page.
  }
}

/** The page's one drop target: a file dropped anywhere on the page while it is shown goes to it. */
let activeDrop = null;
for (const type of ['dragover', 'drop']) {
  window.addEventListener(type, (ev) => {
    if (!activeDrop?.isConnected || !ev.dataTransfer?.types?.includes('Files')) return;
    ev.preventDefault();
    if (type === 'dragover') ev.dataTransfer.dropEffect = 'copy';
    else activeDrop.dispatchEvent(new CustomEvent('bundle-file', { detail: ev.dataTransfer.files }));
  });
}

/**
 * Reads the verifier options from the form: { logKey, witnesses, quorum } or throws an Error whose
 * message says which field is wrong (as `custos verify-bundle` refuses bad flags: VALIDATION_FAILED).
 */
function optionsFrom(keyText, witnessText, quorumText) {
  const fieldError = (message) => Object.assign(new Error(message), { code: 'VALIDATION_FAILED' });
  if (!keyText) throw fieldError('no verifier key: paste the log’s key (name+keyid+base64)');
  let logKey;
  try {
    logKey = parseVerifierKey(keyText);
  } catch (err) {
    throw fieldError(`the verifier key is not a note verifier key (name+keyid+base64): ${errText(err)}`);
  }
  const lines = witnessText
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const witnesses = lines.map((l, i) => {
    try {
      return parseCosignerVerifierKey(l);
    } catch (err) {
      throw fieldError(`witness key ${i + 1} is not a cosigner verifier key (type 0x04): ${errText(err)}`);
    }
  });
  if (witnesses.length === 0) {
    if (quorumText) throw fieldError('a quorum needs witness keys');
    return { logKey };
  }
  const quorum = quorumText ? Number(quorumText) : witnesses.length;
  if (!Number.isInteger(quorum) || quorum < 1 || quorum > witnesses.length) throw fieldError(`the quorum must be between 1 and the ${witnesses.length} witness keys`);
  return { logKey, witnesses, quorum };
}

const STATUS_MARK = {
  pass: () => mark(true),
  fail: () => mark(false),
  skipped: () => h('span', { class: 'skip', 'aria-label': 'skipped' }, '–'),
};

function checkItem(c) {
  return h(
    'li',
    { class: c.status === 'skipped' ? 'skipped' : c.status, testid: 'bundle-check', dataset: { name: c.name, status: c.status, code: c.code ?? '' } },
    (STATUS_MARK[c.status] ?? STATUS_MARK.fail)(),
    ' ',
    h('span', { class: 'check-label' }, c.name),
    ' ',
    h('span', { class: 'muted small' }, c.status),
    c.code ? [' ', h('code', { class: 'deny-text' }, c.code)] : null,
    c.detail ? h('div', { class: 'detail' }, c.detail) : null,
  );
}

/**
 * The "Verify a bundle" page. `loggedIn`: whether a session exists (without one, the page links to
 * the login; it needs no token itself).
 */
export function bundleDropPage(_arg, _params, { loggedIn = true } = {}) {
  let loaded = null; // { name, size, text }
  let source = 'none';

  const input = h('input', { type: 'file', id: 'bundle-file', accept: '.json,application/json', testid: 'bundle-file' });
  const zone = h(
    'div',
    { class: 'drop-zone', testid: 'bundle-drop' },
    h('p', null, h('strong', null, 'Drop a bundle file here'), ' (a JSON file from ', h('code', null, 'custos bundle N -o FILE'), ' or ', h('code', null, 'GET /api/v1/bundles/N'), '), or choose it:'),
    h('label', { for: 'bundle-file', class: 'sr-only' }, 'Bundle file'),
    input,
    h('p', { class: 'small muted' }, `Up to ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB. The file is read in this browser and sent nowhere.`),
    h('p', { class: 'small muted' }, 'A training cohort proof (', h('code', null, 'custos training proof'), ', docs/training.md) is checked here too.'),
  );

  const keyInput = h('input', { type: 'text', id: 'bundle-key', class: 'mono', spellcheck: 'false', autocomplete: 'off', placeholder: 'origin+keyid+base64', testid: 'bundle-key' });
  const keySource = h('p', { class: 'small muted', testid: 'bundle-key-source', dataset: { source } });
  const pinButton = h('button', { type: 'button', class: 'link', testid: 'bundle-pin' });
  const witnessInput = h('textarea', {
    id: 'bundle-witnesses',
    rows: '2',
    class: 'mono',
    spellcheck: 'false',
    placeholder: 'one witness key a line: name+keyid+base64 (type 0x04)',
    testid: 'bundle-witnesses',
  });
  const quorumInput = h('input', { type: 'number', id: 'bundle-quorum', min: '1', step: '1', class: 'narrow', placeholder: 'all', testid: 'bundle-quorum' });
  const verifyButton = h('button', { type: 'button', testid: 'bundle-verify', disabled: true }, 'Verify again');

  const verdict = h('p', { class: 'verdict', testid: 'bundle-verdict', role: 'status', 'aria-live': 'polite', dataset: { verdict: 'none' } }, 'No bundle yet.');
  const summary = h('div', { testid: 'bundle-summary' });
  const list = h('ul', { class: 'checks', testid: 'bundle-checks' });

  function showSource(next) {
    source = next;
    keySource.dataset.source = source;
    keySource.replaceChildren('Verifier key used: ', h('strong', null, SOURCES[source]), '. ');
    const pinned = readPin();
    const value = keyInput.value.trim();
    pinButton.hidden = !value;
    pinButton.textContent = value && value === pinned ? 'unpin' : 'pin this key in this browser';
    keySource.append(pinButton);
  }

  function setVerdict(kind, ...text) {
    verdict.dataset.verdict = kind;
    verdict.className = `verdict ${kind === 'ok' ? 'good' : kind === 'none' ? '' : 'bad'}`;
    verdict.replaceChildren(...text);
  }

  function showError(title, err) {
    list.replaceChildren();
    const code = err && typeof err === 'object' && typeof err.code === 'string' ? err.code : '';
    verdict.dataset.code = code;
    setVerdict('error', mark(false), ' ', h('strong', null, title), ': ', errText(err), code ? [' ', h('code', null, code)] : null);
  }

  function run() {
    if (!loaded) return;
    summary.replaceChildren(h('p', { class: 'small' }, 'File ', h('code', null, loaded.name), ` (${loaded.size} bytes)`));
    let options;
    try {
      options = optionsFrom(keyInput.value.trim(), witnessInput.value, quorumInput.value.trim());
    } catch (err) {
      return showError('Cannot verify', err);
    }
    let parsed;
    try {
      parsed = JSON.parse(loaded.text);
    } catch (err) {
      // As `custos verify-bundle`: a file that is not JSON is BUNDLE_MALFORMED.
      return showError('Not a bundle', Object.assign(new Error(`${loaded.name} is not JSON (${errText(err)})`), { code: 'BUNDLE_MALFORMED' }));
    }
    // issue 14: a training cohort proof (docs/training.md) is checked here too.
    if (parsed !== null && typeof parsed === 'object' && parsed.mediaType === COHORT_PROOF_MEDIA_TYPE) return runCohortProof(parsed, options);
    let r;
    try {
      r = verifyBundle(parsed, options);
    } catch (err) {
      return showError('Not a bundle', err);
    }
    const vm = parsed.verificationMaterial;
    const origin = vm.tlogEntry.inclusionProof.checkpoint.envelope.split('\n', 1)[0];
    summary.append(
      h(
        'p',
        { class: 'small' },
        `Entry ${r.logIndex} of the log `,
        h('code', null, origin),
        `, proved against its signed tree of size ${r.treeSize}; `,
        vm.redacted ? 'redacted (no openings).' : `${(vm.openings ?? []).length} opening(s).`,
        ' Checked with the key ',
        h('code', { class: 'wrap' }, `${options.logKey.name}+${(options.logKey.keyId >>> 0).toString(16).padStart(8, '0')}`),
        ` (${source === 'server' ? 'served by this server' : source === 'pinned' ? 'pinned' : 'entered by you'})`,
        options.witnesses ? `, witness quorum ${options.quorum} of ${options.witnesses.length}.` : ', no witness policy.',
      ),
    );
    list.replaceChildren(...r.checks.map(checkItem));
    verdict.dataset.code = r.failed?.code ?? '';
    if (r.ok) setVerdict('ok', mark(true), ' ', h('strong', null, 'Verified'), `: every check passed or was skipped (${r.checks.length} checks).`);
    else
      setVerdict(
        'failed',
        mark(false),
        ' ',
        h('strong', null, 'FAILED'),
        ': check ',
        h('code', null, r.failed.name),
        ' failed with ',
        h('code', null, r.failed.code ?? ''),
        r.failed.detail ? ` (${r.failed.detail})` : '',
      );
  }

  // issue 14: a training cohort proof, by verifyCohortProof (the code `custos training verify-proof`
  // runs): its six checks (`subject-binding` ties each opened commitment to the consent entry that
  // commits it on the log), and what it proves. Nothing of the file (the subject id, its salt) is shown.
  function runCohortProof(parsed, options) {
    let r;
    try {
      r = verifyCohortProof(parsed, { logKey: options.logKey });
    } catch (err) {
      return showError('Not a cohort proof', err);
    }
    summary.append(
      h(
        'p',
        { class: 'small', testid: 'cohort-proof-summary' },
        `A training cohort proof (${r.kind}) for the training run at entry ${r.entryIndex} (a cohort of ${r.cohortSize}), proved against the signed tree of size ${r.treeSize}. `,
        'It holds the subject’s id and salt: it is the patient’s, keep it private.',
      ),
    );
    list.replaceChildren(...r.checks.map((c) => checkItem({ name: c.name, status: c.ok ? 'pass' : 'fail', code: c.ok ? '' : 'COHORT_PROOF_INVALID', detail: c.detail })));
    verdict.dataset.code = r.ok ? '' : 'COHORT_PROOF_INVALID';
    if (r.ok)
      setVerdict(
        'ok',
        mark(true),
        ' ',
        h('strong', null, 'Verified'),
        r.kind === 'inclusion' ? ': the subject was in the cohort of this training run.' : ': the subject was NOT in the cohort of this training run.',
      );
    else
      setVerdict(
        'failed',
        mark(false),
        ' ',
        h('strong', null, 'FAILED'),
        ': check ',
        h('code', null, r.failed.name),
        ' failed with ',
        h('code', null, 'COHORT_PROOF_INVALID'),
        ` (${r.failed.detail})`,
      );
  }

  async function load(files) {
    const file = files?.[0];
    if (!file) return;
    verifyButton.disabled = true;
    summary.replaceChildren();
    if (file.size > MAX_BUNDLE_BYTES) {
      loaded = null;
      return showError('File too large', new Error(`${file.name} is ${file.size} bytes; a bundle is a few KiB and this page reads at most ${MAX_BUNDLE_BYTES} bytes`));
    }
    setVerdict('pending', 'Reading ', file.name, '…');
    try {
      loaded = { name: file.name, size: file.size, text: await file.text() };
    } catch (err) {
      loaded = null;
      return showError('Cannot read the file', err);
    }
    verifyButton.disabled = false;
    run();
  }

  input.addEventListener('change', () => {
    load(input.files);
    // The same file chosen again is read again.
    input.value = '';
  });
  zone.addEventListener('bundle-file', (ev) => load(ev.detail));
  zone.addEventListener('dragenter', () => zone.classList.add('dragging'));
  zone.addEventListener('dragleave', (ev) => {
    if (!zone.contains(ev.relatedTarget)) zone.classList.remove('dragging');
  });
  zone.addEventListener('drop', () => zone.classList.remove('dragging'));
  activeDrop = zone;

  keyInput.addEventListener('input', () => showSource(keyInput.value.trim() && keyInput.value.trim() === readPin() ? 'pinned' : keyInput.value.trim() ? 'entered' : 'none'));
  for (const el of [keyInput, witnessInput, quorumInput]) el.addEventListener('change', run);
  verifyButton.addEventListener('click', run);
  pinButton.addEventListener('click', () => {
    const value = keyInput.value.trim();
    const pinned = value && value === readPin();
    writePin(pinned ? '' : value);
    showSource(pinned ? 'entered' : 'pinned');
  });

  // The key: one pinned in this browser, else the server's /log.pub (unless the user typed first).
  const pinned = readPin();
  if (pinned) {
    keyInput.value = pinned;
    showSource('pinned');
  } else {
    showSource('none');
    fetch('/log.pub', { credentials: 'omit', cache: 'no-store' })
      .then((res) => (res.ok ? res.text() : ''))
      .then(
        (text) => {
          const served = text.trim();
          if (!served || keyInput.value.trim()) return;
          keyInput.value = served;
          showSource('server');
          run();
        },
        () => {},
      );
  }

  return h(
    'div',
    { class: 'page', testid: 'page-verify-bundle' },
    h('div', { class: 'page-head' }, h('h1', null, 'Verify a bundle'), loggedIn ? null : h('a', { href: '#/login', testid: 'bundle-login' }, 'Log in to browse the log')),
    h(
      'section',
      { class: 'card' },
      h(
        'p',
        { class: 'muted' },
        'Checks one inference offline, in this browser, with the checks and codes of ',
        h('code', null, 'custos verify-bundle'),
        ': the DSSE signature, each document against its hash on the log, the statement, each opening, the leaf hash, the inclusion proof, the checkpoint signature and the witness quorum. No token is needed and nothing is sent.',
      ),
      zone,
      h('label', { class: 'field', for: 'bundle-key' }, h('span', null, 'Log verifier key'), keyInput),
      keySource,
      h(
        'div',
        { class: 'grid2' },
        h('label', { class: 'field', for: 'bundle-witnesses' }, h('span', null, 'Witness keys (optional)'), witnessInput),
        h('label', { class: 'field', for: 'bundle-quorum' }, h('span', null, 'Quorum (default: all)'), quorumInput),
      ),
      h('p', null, verifyButton),
    ),
    h('section', { class: 'card verify', testid: 'bundle-result' }, h('h2', null, 'Result'), verdict, summary, list),
  );
}
