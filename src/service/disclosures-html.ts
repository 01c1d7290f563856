/**
 * The printable form of an accounting of disclosures: one self-contained HTML page (inline CSS with
 * a print stylesheet, no script, no external resource) that a privacy officer can hand to a
 * patient. Every value from the report is escaped; the page states who it is for (the
 * pseudonymous id asked for), the period, when and against which checkpoint it was made, what each
 * line means, what the report cannot show, and how to check a line.
 * @module
 */
import type { DisclosureLine, DisclosureReport } from './disclosures.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text escaped for HTML element content and quoted attribute values. */
export function escapeHtml(x: unknown): string {
  return String(x).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const KIND_TEXT: Record<DisclosureLine['kind'], string> = {
  access: 'Your record was accessed',
  inference: 'An AI model was run on your data',
  training: 'Your data was used to train an AI model',
  denial: 'An attempt to use your data was refused',
  'break-glass': 'Emergency access overriding your consent',
  read: 'Someone viewed a record of the above',
  opening: 'Someone looked up which records the above concerned',
};

// Plain words for the HL7 v3 PurposeOfUse codes most used; any other code is shown as is.
const PURPOSE_TEXT: Record<string, string> = {
  TREAT: 'treatment',
  ETREAT: 'emergency treatment',
  BTG: 'break the glass (emergency)',
  HPAYMT: 'payment',
  HOPERAT: 'healthcare operations',
  HRESCH: 'research',
  HMARKT: 'marketing',
  PUBHLTH: 'public health',
  HLEGAL: 'legal',
  PATRQT: 'your own request',
};

const REASON_TEXT: Record<string, string> = {
  PURPOSE_NOT_ALLOWED: 'your consent does not allow this purpose',
  ROLE_NOT_ALLOWED: 'your consent does not allow this role',
  REVOKED: 'you had withdrawn your consent',
  EXPIRED: 'your consent had expired',
  NOT_YET_VALID: 'your consent was not yet in effect',
  DENIED_BY_PROVISION: 'a rule in your consent forbids it',
  POLICY_NOT_FOUND: 'no consent was found',
  POLICY_TAMPERED: 'the consent record failed its integrity check',
};

const e = escapeHtml;
const or = (x: string | null, dash = '—') => (x === null ? dash : e(x));
const date = (t: string) => e(t.replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC'));

function line(l: DisclosureLine): string {
  const purpose = l.purpose === null ? '—' : `${e(PURPOSE_TEXT[l.purpose] ?? l.purpose)} <span class="code">(${e(l.purpose)})</span>`;
  const outcome =
    l.outcome === 'denied'
      ? `<strong class="denied">Refused</strong>${l.reason ? `: ${e(REASON_TEXT[l.reason] ?? l.reason)} <span class="code">(${e(l.reason)})</span>` : ''}`
      : '<span class="executed">Carried out</span>';
  const consent = l.consent.length === 0 ? '—' : l.consent.map((c) => `<span class="code">${e(c.policyId)}</span>${c.version === null ? '' : ` v${e(c.version)}`}`).join('<br>');
  const notes = [...(l.refersTo.length > 0 ? [`concerns entry ${l.refersTo.map((i) => e(i)).join(', ')}`] : []), ...(l.erased.length > 0 ? ['the record it names was erased since'] : [])];
  return `<tr data-index="${e(l.index)}" data-kind="${e(l.kind)}">
<td>${date(l.time)}</td>
<td>${e(KIND_TEXT[l.kind])}${notes.length > 0 ? `<div class="note">${notes.join('; ')}</div>` : ''}</td>
<td>${or(l.actor)}<div class="note">${or(l.role, '')}</div></td>
<td>${purpose}</td>
<td>${outcome}</td>
<td>${consent}</td>
<td class="proof"><span class="code">#${e(l.index)}</span><div class="hash">${e(l.leafHash)}</div></td>
</tr>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; margin: 2rem auto; max-width: 72rem; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #234; padding-bottom: .2rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 1rem 0; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.code, .hash { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85em; }
.hash { color: #555; overflow-wrap: anywhere; font-size: .72em; }
.note { color: #555; font-size: .85em; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #bbb; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #e8edf3; }
tbody tr:nth-child(even) { background: #f7f9fb; }
td.proof { max-width: 14rem; }
.denied { color: #8a1c1c; }
.warning { border-left: 4px solid #b26a00; background: #fff7e6; padding: .6rem .9rem; margin: 1rem 0; }
.empty { font-style: italic; }
pre.checkpoint { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f4f4; padding: .5rem; font-size: .75em; }
ol li, ul li { margin: .2rem 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; }
  tr, .warning { break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: #e8edf3 !important; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
  @page { margin: 14mm; }
}`;

/** The report as a self-contained, printable HTML page. */
export function renderDisclosureHtml(r: DisclosureReport): string {
  const period = `${r.period.since === null ? 'the start of the log' : date(r.period.since)} to ${r.period.until === null ? date(r.generatedAt) : date(r.period.until)}`;
  const c = r.cannotShow;
  const cannot: string[] = [];
  if (c.unknownSubject) {
    cannot.push(
      `<p class="warning" id="unknown-subject"><strong>This identifier is not known to the log.</strong> Either no consent was ever recorded for it, or its records were erased at the patient's request (erasure removes the only link between the identifier and the log's entries). This report therefore cannot list anything for it: an empty list here does <em>not</em> mean that no one used the data.</p>`,
    );
  }
  if (c.outsidePeriod > 0) cannot.push(`<li>${e(c.outsidePeriod)} entr${c.outsidePeriod === 1 ? 'y' : 'ies'} about you fall outside the period of this report and are not listed.</li>`);
  const linked = c.erasures.filter((x) => x.linkedToSubject > 0);
  if (linked.length > 0) {
    cannot.push(
      `<li>Some records named by the entries above were erased (entr${linked.length === 1 ? 'y' : 'ies'} ${linked.map((x) => `#${e(x.index)} on ${date(x.time)}`).join(', ')}). The entries remain, but which record they concerned can no longer be shown.</li>`,
    );
  }
  if (c.unlinked.entries > 0 || c.unlinked.policies > 0) {
    cannot.push(
      `<li>${e(c.unlinked.entries)} entr${c.unlinked.entries === 1 ? 'y' : 'ies'} under ${e(c.unlinked.policies)} consent record(s) can no longer be tied to any patient, because the patient's identifier was erased (erasure entr${c.unlinked.erasures.length === 1 ? 'y' : 'ies'} ${c.unlinked.erasures.map((i) => `#${e(i)}`).join(', ')}). If you were ever erased and enrolled again under the same identifier, some of them may be yours.</li>`,
    );
  }
  if (c.afterCheckpoint > 0) cannot.push(`<li>${e(c.afterCheckpoint)} entr${c.afterCheckpoint === 1 ? 'y was' : 'ies were'} recorded after this report's checkpoint and not searched.</li>`);
  for (const s of c.notRecorded) cannot.push(`<li>${e(s)}</li>`);
  const warning = cannot.filter((x) => x.startsWith('<p'));
  const items = cannot.filter((x) => x.startsWith('<li'));
  const rows = r.lines.map(line).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Accounting of disclosures for ${e(r.subject)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>Accounting of disclosures</h1>
<p>A record of every recorded use of your health data, from a tamper-evident log.</p>
<dl class="meta">
<dt>Prepared for</dt><dd id="subject"><span class="code">${e(r.subject)}</span> (the pseudonymous identifier under which your consent is recorded)</dd>
<dt>Period covered</dt><dd id="period">${period}</dd>
<dt>Generated</dt><dd>${date(r.generatedAt)} by ${e(r.generatedBy.actor)} (${e(r.generatedBy.role)})</dd>
<dt>Log</dt><dd><span class="code">${e(r.log.origin)}</span>, checkpoint of ${e(r.log.treeSize)} entries, root <span class="hash">${e(r.log.rootHash)}</span></dd>
<dt>This request</dt><dd>recorded on the log as entry <span class="code">#${e(r.query.index)}</span> before this report was made</dd>
</dl>
</header>
<main>
<h2>What this report is</h2>
<p>Each row below is one event recorded on the log that concerns you: when it happened, who did it and in which role, for what purpose, whether it was carried out or refused, and under which version of your consent it was decided. “Refused” means the request was blocked by your consent and no data was used. The last column identifies the log entry, which anyone can check (see the last section).</p>
${warning.join('\n')}
<h2>Disclosures (${e(r.lines.length)})</h2>
${
  r.lines.length === 0
    ? `<p class="empty" id="no-lines">${c.unknownSubject ? 'Nothing can be listed for this identifier (see above).' : 'No recorded use of your data in this period.'}</p>`
    : `<table id="disclosures">
<thead><tr><th>When</th><th>What happened</th><th>Who</th><th>Purpose</th><th>Outcome</th><th>Consent (version)</th><th>Log entry</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
}
<h2>What this report cannot show</h2>
<ul id="cannot-show">
${items.join('\n')}
</ul>
<h2>How to check this report</h2>
<ol id="verify">
<li>Get the log's public key from the organisation independently of this report (the log names it as <span class="code">${or(r.log.verifierKey)}</span>; do not trust that copy alone).</li>
<li>Check the checkpoint below is signed by that key (any C2SP signed-note verifier, or <span class="code">custos verify-disclosures</span> on the JSON form of this report).</li>
<li>For each row, ask for the JSON form of this report: it holds each entry's exact bytes and its inclusion proof. The SHA-256 of a zero byte followed by the entry's bytes must be the row's leaf hash, and the proof must lead from that hash to the checkpoint's root (RFC 9162 §2.1.3).</li>
<li>Entries are canonical JSON holding only codes, identifiers, hashes and salted commitments: your identifier never appears in them.</li>
</ol>
<pre class="checkpoint" id="checkpoint">${e(r.log.checkpoint)}</pre>
</main>
</body>
</html>
`;
}
