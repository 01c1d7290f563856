/**
 * issue 15, selective disclosure of consent and receipts, end to end on a real SQLite log:
 * - `custos attest receipt|consent` issue an SD-JWT with the data directory's issuer key (created
 *   0600 on first use), published on the log (ATTESTATION_KEY_PUBLISHED) before its first use; each
 *   issuance is ATTESTATION_ISSUED with codes, indices and hashes only;
 * - a presentation that hides a claim does not contain its value anywhere, whatever the encoding
 *   (the raw text, every base64url segment and disclosure decoded, their JSON);
 * - a tampered disclosure, another issuer key, and another checkpoint fail with their codes;
 * - `custos verify-presentation` verifies in a fresh directory holding only the files (no data
 *   directory is opened or created);
 * - HTTP: POST /api/v1/attestations for a role with `receipts`, 403 for one without (nothing
 *   issued), the issuer key route; the credential verifies under the key the server publishes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAttestation, issuerJwk, verifyAttestation, type IssuerJwk } from '../src/core/attestation.js';
import { parseLoggedEvent } from '../src/core/events.js';
import { toBase64 } from '../src/core/hash.js';
import { ed25519PrivateKeyFromSeed, ed25519RawPublicKey, parseSignerKey, signNote } from '../src/core/note.js';
import type { Log } from '../src/log/log.js';
import { openDataDir } from '../src/log/data-dir.js';
import { pid } from './helpers/policy-ids.js';
import { useTempRoot } from './helpers/fixtures.js';
import { EXIT, assertError, callCli, callIn, ensureBuilt, okJson, runCli } from './helpers/cli.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';

const D1 = 'a1'.repeat(32);
const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0' };
const OUT_DIGEST = '7e'.repeat(32);
const ISSUER_ACTOR = ['--actor', 'po-1', '--actor-role', 'privacy_officer'];

const root = useTempRoot('attest-e2e');

type Ev = { index: number; type: string; payload: Record<string, unknown> };

async function events(log: Log): Promise<Ev[]> {
  const out: Ev[] = [];
  for await (const page of log.reader.entryPages(0, await log.reader.size())) {
    for (const e of page) {
      const p = parseLoggedEvent(e.bytes)!;
      out.push({ index: e.index, type: p.type, payload: { ...p.payload } });
    }
  }
  return out;
}

/** The events of a data directory the CLI writes to, read through a fresh read-only store. */
async function eventsIn(dataDir: string): Promise<Ev[]> {
  const dir = await openDataDir(dataDir, { readonly: true });
  try {
    const out: Ev[] = [];
    for await (const page of dir.store.entryPages(0, await dir.store.treeSize())) {
      for (const e of page) {
        const p = parseLoggedEvent(e.bytes)!;
        out.push({ index: e.index, type: p.type, payload: { ...p.payload } });
      }
    }
    return out;
  } finally {
    await dir.store.close();
  }
}

async function latestNote(dataDir: string): Promise<string> {
  const dir = await openDataDir(dataDir, { readonly: true });
  try {
    return (await dir.store.latestCheckpoint())!.note;
  } finally {
    await dir.store.close();
  }
}

/** Every text a value could hide in: the raw string, each segment and disclosure decoded from base64url, and their JSON re-serialized. */
function decodedViews(sdJwt: string): string[] {
  const views = [sdJwt];
  for (const part of sdJwt.split('~')) {
    for (const seg of part.split('.')) {
      if (seg === '') continue;
      const text = Buffer.from(seg, 'base64url').toString('utf8');
      views.push(text, Buffer.from(seg, 'base64url').toString('latin1'));
      try {
        views.push(JSON.stringify(JSON.parse(text)));
      } catch {
        // a signature: binary
      }
    }
  }
  return views;
}

/** The encodings of a value to search for: itself, as JSON, as hex, and base64/base64url at each of the three byte alignments. */
function encodings(value: string): string[] {
  const out = [value, JSON.stringify(value), Buffer.from(value).toString('hex')];
  for (let shift = 0; shift < 3; shift++) {
    const b = Buffer.concat([Buffer.alloc(shift), Buffer.from(value)]);
    // Only the characters whose six bits all come from the value, whatever surrounds it.
    const from = Math.ceil((shift * 8) / 6);
    const to = Math.floor((b.length * 8) / 6);
    for (const enc of [b.toString('base64url'), b.toString('base64')]) out.push(enc.slice(from, to));
  }
  return out.filter((e) => e.length >= 4);
}

function assertHidden(sdJwt: string, value: string, what: string): void {
  const views = decodedViews(sdJwt);
  for (const enc of encodings(value)) for (const v of views) assert.ok(!v.includes(enc), `${what} (${value}) appears as ${enc} in the presentation`);
}

describe('the hidden-value search', () => {
  it('finds a value in a disclosure at every byte alignment, as text or as base64url', () => {
    for (const prefix of ['["s","p",', '["sa","p",', '["sab","p",']) {
      const disclosure = Buffer.from(`${prefix}"TREAT"]`).toString('base64url');
      assert.ok(
        encodings('TREAT').some((e) => disclosure.includes(e)),
        `base64url at ${prefix.length % 3}`,
      );
      assert.throws(() => assertHidden(`header.payload.sig~${disclosure}~`, 'TREAT', 'purpose'), assert.AssertionError);
    }
  });
});

describe('attestations: CLI', () => {
  let dataDir: string;
  let policy: string;
  let receiptIndex: number;
  let work: string;
  const f = (name: string) => join(work, name);

  before(async () => {
    ensureBuilt();
    const g = await root.openGovernance({ origin: 'attest.test/log' });
    dataDir = g.dir.dataDir;
    const po = { id: 'po-1', role: 'privacy_officer' };
    policy = pid('attest-open');
    await g.gov.createConsent({ policyId: policy, subject: 'patient-attest', allowedPurposes: ['TREAT', 'HRESCH'], allowedRoles: ['dermatologist'] }, po);
    const inf = await g.gov.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: policy,
      input: { uri: 's3://clinic/p.jpg', digest: D1 },
      outputs: [
        { name: 'report_json', uri: 's3://clinic/p.json', digest: OUT_DIGEST },
        { name: 'mask_png', uri: 's3://clinic/m.png', digest: 'e5'.repeat(32) },
      ],
      pipeline: PIPELINE,
      model: MODEL,
    });
    receiptIndex = inf.event.index;
    await g.close();
    work = mkdtempSync(join(tmpdir(), 'custos-attest-work-'));
    root.defer(async () => rmSync(work, { recursive: true, force: true }));
  });

  it('attest receipt: the issuer key is created 0600, published once before first use, and each issuance is logged without a claim value', async () => {
    const before = (await eventsIn(dataDir)).length;
    const r = okJson<{ kind: string; eventIndex: number; keyId: string; keyEvent: number; issuedEvent: number; file: string; disclosable: string[] }>(
      await callIn(dataDir, ['--json', 'attest', 'receipt', String(receiptIndex), '--out', f('receipt.sdjwt'), ...ISSUER_ACTOR], { cwd: work }),
    );
    assert.equal(r.kind, 'receipt');
    assert.deepEqual(r.disclosable, ['purpose', 'role', 'policy_id', 'policy_version', 'decision', 'time', 'model_digest', 'pipeline_digest', 'outputs.report_json', 'outputs.mask_png']);
    assert.equal(statSync(join(dataDir, 'attestation.key')).mode & 0o777, 0o600);
    assert.equal(statSync(f('receipt.sdjwt')).mode & 0o777, 0o600);
    const jwk = JSON.parse(readFileSync(join(dataDir, 'attestation.jwk'), 'utf8')) as IssuerJwk;
    assert.equal((jwk as IssuerJwk & { d?: string }).d, undefined);
    // The private key never leaves its file: not in the credential, not in the public key file.
    const d = (JSON.parse(readFileSync(join(dataDir, 'attestation.key'), 'utf8')) as { d: string }).d;
    assert.ok(!readFileSync(f('receipt.sdjwt'), 'utf8').includes(d));
    assert.ok(!readFileSync(join(dataDir, 'attestation.jwk'), 'utf8').includes(d));
    const all = await eventsIn(dataDir);
    assert.equal(all.length, before + 2);
    const [pub, issued] = all.slice(before);
    assert.equal(pub!.type, 'ATTESTATION_KEY_PUBLISHED');
    assert.equal(pub!.index, r.keyEvent);
    assert.deepEqual(pub!.payload, { keyId: r.keyId, publicKey: jwk.x, alg: 'EdDSA' });
    assert.equal(issued!.type, 'ATTESTATION_ISSUED');
    assert.deepEqual(Object.keys(issued!.payload).sort(), ['actor', 'credential', 'eventIndex', 'keyEvent', 'keyId', 'kind', 'permission', 'role', 'route']);
    const text = JSON.stringify(issued!.payload);
    for (const claim of ['TREAT', 'dermatologist', policy, OUT_DIGEST, MODEL.modelName]) assert.ok(!text.includes(claim), `ATTESTATION_ISSUED carries ${claim}`);
    // A second attestation reuses the published key.
    const again = okJson<{ keyEvent: number }>(await callIn(dataDir, ['--json', 'attest', 'receipt', String(receiptIndex), ...ISSUER_ACTOR], { cwd: work }));
    assert.equal(again.keyEvent, r.keyEvent);
    assert.equal((await eventsIn(dataDir)).filter((e) => e.type === 'ATTESTATION_KEY_PUBLISHED').length, 1);
  });

  it('a private key file readable by others is refused (KEY_PERMISSIONS), nothing written', async () => {
    const key = join(dataDir, 'attestation.key');
    const size = (await eventsIn(dataDir)).length;
    chmodSync(key, 0o644);
    try {
      assertError(await callIn(dataDir, ['attest', 'receipt', String(receiptIndex), ...ISSUER_ACTOR], { cwd: work }), EXIT.validation, 'KEY_PERMISSIONS');
    } finally {
      chmodSync(key, 0o600);
    }
    assert.equal((await eventsIn(dataDir)).length, size);
  });

  it('present hides every claim not chosen: not in the raw text, its base64url segments or disclosures decoded, or their JSON', async () => {
    okJson(await callCli(['--json', 'present', 'receipt.sdjwt', '--disclose', 'decision,outputs.report_json', '--out', 'shown.sdjwt'], { cwd: work }));
    const shown = readFileSync(f('shown.sdjwt'), 'utf8').trim();
    const full = readFileSync(f('receipt.sdjwt'), 'utf8').trim();
    const claims = decodeAttestation(full).claims;
    // Each hidden value is present in the full credential (so the search can find it) ...
    const hidden: [string, string][] = [
      ['purpose', 'TREAT'],
      ['role', 'dermatologist'],
      ['policy_id', policy],
      ['time', String(claims['time'])],
      ['model_digest', String(claims['model_digest'])],
      ['pipeline_digest', String(claims['pipeline_digest'])],
      ['outputs.mask_png', 'e5'.repeat(32)],
      ['outputs.mask_png (its name)', 'mask_png'],
    ];
    for (const [what, value] of hidden)
      assert.ok(
        decodedViews(full).some((v) => v.includes(value)),
        `${what} is in the full credential`,
      );
    // ... and in no encoding in the presentation.
    for (const [what, value] of hidden) assertHidden(shown, value, what);
    // The disclosed ones are there.
    assert.deepEqual(decodeAttestation(shown).claims['outputs'], { report_json: OUT_DIGEST });
    assert.equal(decodeAttestation(shown).claims['decision'], 'PERMITTED');
  });

  it('verify-presentation runs in a fresh directory with only the files: no data directory is opened or created', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'custos-verify-only-'));
    try {
      writeFileSync(join(fresh, 'shown.sdjwt'), readFileSync(f('shown.sdjwt')));
      writeFileSync(join(fresh, 'issuer.jwk'), readFileSync(join(dataDir, 'attestation.jwk')));
      // The real bin, in a child process whose cwd holds nothing else (and no CUSTOS_DATA_DIR).
      const r = await runCli(['--json', 'verify-presentation', 'shown.sdjwt', '--issuer-key', 'issuer.jwk'], { cwd: fresh });
      const v = okJson<{ ok: boolean; kind: string; entryIndex: number; disclosed: Record<string, unknown>; withheld: number; checkpoint: { source: string } }>(r);
      assert.equal(v.ok, true);
      assert.equal(v.entryIndex, receiptIndex);
      assert.deepEqual(v.disclosed, { decision: 'PERMITTED', outputs: { report_json: OUT_DIGEST } });
      assert.equal(v.checkpoint.source, 'attestation');
      assert.deepEqual(readdirSync(fresh).sort(), ['issuer.jwk', 'shown.sdjwt']);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('a tampered disclosure fails (DISCLOSURE_INVALID, exit 4)', async () => {
    const shown = readFileSync(f('shown.sdjwt'), 'utf8').trim();
    const parts = shown.split('~');
    const i = parts.findIndex((d, k) => k > 0 && Buffer.from(d, 'base64url').toString().includes('"decision"'));
    const [salt] = JSON.parse(Buffer.from(parts[i]!, 'base64url').toString()) as [string];
    parts[i] = Buffer.from(JSON.stringify([salt, 'decision', 'DENIED'])).toString('base64url');
    writeFileSync(f('tampered.sdjwt'), parts.join('~'));
    assertError(await callCli(['verify-presentation', 'tampered.sdjwt', '--issuer-key', join(dataDir, 'attestation.jwk')], { cwd: work }), EXIT.verification, 'DISCLOSURE_INVALID');
  });

  it('another issuer key fails (ATTESTATION_SIGNATURE_INVALID); the private key is refused as an issuer key (KEY_MALFORMED)', async () => {
    const other = issuerJwk(ed25519RawPublicKey(ed25519PrivateKeyFromSeed(Buffer.alloc(32, 3))));
    writeFileSync(f('other.jwk'), JSON.stringify(other));
    assertError(await callCli(['verify-presentation', 'shown.sdjwt', '--issuer-key', 'other.jwk'], { cwd: work }), EXIT.verification, 'ATTESTATION_SIGNATURE_INVALID');
    assertError(await callCli(['verify-presentation', 'shown.sdjwt', '--issuer-key', join(dataDir, 'attestation.key')], { cwd: work }), EXIT.verification, 'KEY_MALFORMED');
  });

  it('inclusion against a wrong checkpoint fails: a later one (ATTESTATION_CHECKPOINT_MISMATCH), a forged root at the same size (INCLUSION_PROOF_INVALID), another log key (CHECKPOINT_SIGNATURE_INVALID)', async () => {
    const key = join(dataDir, 'attestation.jwk');
    const a = decodeAttestation(readFileSync(f('shown.sdjwt'), 'utf8'));
    const inc = a.payload['inclusion'] as { tree_size: number; checkpoint: string };
    // The checkpoint it was issued against, given as a file: verifies.
    writeFileSync(f('same.note'), inc.checkpoint);
    assert.equal(
      okJson<{ checkpoint: { source: string } }>(await callCli(['--json', 'verify-presentation', 'shown.sdjwt', '--issuer-key', key, '--checkpoint', 'same.note'], { cwd: work })).checkpoint.source,
      'given',
    );
    // The log's latest checkpoint has grown since (the issuance events).
    writeFileSync(f('later.note'), await latestNote(dataDir));
    assertError(await callCli(['verify-presentation', 'shown.sdjwt', '--issuer-key', key, '--checkpoint', 'later.note'], { cwd: work }), EXIT.verification, 'ATTESTATION_CHECKPOINT_MISMATCH');
    // A checkpoint at the proof's size with another root, signed by the real log key (a forked log).
    const signer = parseSignerKey(readFileSync(join(dataDir, 'log.key'), 'utf8').trim());
    writeFileSync(f('forked.note'), signNote(`attest.test/log\n${inc.tree_size}\n${toBase64(Buffer.alloc(32, 9))}\n`, [signer]));
    assertError(await callCli(['verify-presentation', 'shown.sdjwt', '--issuer-key', key, '--checkpoint', 'forked.note'], { cwd: work }), EXIT.verification, 'INCLUSION_PROOF_INVALID');
    // The right checkpoint, but the verifier pins another log key.
    const otherLog = await root.openLog({ origin: 'attest.test/log' });
    writeFileSync(f('other.pub'), `${otherLog.dir.verifierKey}\n`);
    await otherLog.close();
    assertError(
      await callCli(['verify-presentation', 'shown.sdjwt', '--issuer-key', key, '--checkpoint', 'same.note', '--log-key', 'other.pub'], { cwd: work }),
      EXIT.verification,
      'CHECKPOINT_SIGNATURE_INVALID',
    );
  });

  it('attest consent: a purpose shown alone hides the others; --at picks the version in force then; POLICY_NOT_FOUND writes nothing', async () => {
    const r = okJson<{ eventIndex: number; disclosable: string[] }>(await callIn(dataDir, ['--json', 'attest', 'consent', policy, '--out', f('consent.sdjwt'), ...ISSUER_ACTOR], { cwd: work }));
    assert.equal(r.eventIndex, 0);
    assert.ok(r.disclosable.includes('purposes.TREAT') && r.disclosable.includes('purposes.HRESCH'));
    okJson(await callCli(['--json', 'present', 'consent.sdjwt', '--disclose', 'purposes.TREAT,decision,revoked', '--out', 'consent-shown.sdjwt'], { cwd: work }));
    const shown = readFileSync(f('consent-shown.sdjwt'), 'utf8').trim();
    assertHidden(shown, 'HRESCH', 'the other purpose');
    assertHidden(shown, 'dermatologist', 'the role');
    assertHidden(shown, policy, 'the policy id');
    const v = await verifyAttestation(shown, { issuerKey: JSON.parse(readFileSync(join(dataDir, 'attestation.jwk'), 'utf8')) as IssuerJwk });
    assert.deepEqual(v.disclosed, { purposes: ['TREAT'], decision: 'permit', revoked: false });
    // Revoked now; the version in force at entry 0 was not.
    okJson(await callIn(dataDir, ['--json', 'consent', 'revoke', policy, ...ISSUER_ACTOR], { cwd: work }));
    const now = okJson<{ credential: string }>(await callIn(dataDir, ['--json', 'attest', 'consent', policy, ...ISSUER_ACTOR], { cwd: work }));
    assert.equal(decodeAttestation(now.credential).claims['revoked'], true);
    const then = okJson<{ credential: string; eventIndex: number }>(await callIn(dataDir, ['--json', 'attest', 'consent', policy, '--at', '0', ...ISSUER_ACTOR], { cwd: work }));
    assert.equal(then.eventIndex, 0);
    assert.equal(decodeAttestation(then.credential).claims['revoked'], false);
    const size = (await eventsIn(dataDir)).length;
    assertError(await callIn(dataDir, ['attest', 'consent', pid('attest-none'), ...ISSUER_ACTOR], { cwd: work }), EXIT.notFound, 'POLICY_NOT_FOUND');
    assertError(await callIn(dataDir, ['attest', 'receipt', '0', ...ISSUER_ACTOR], { cwd: work }), EXIT.notFound, 'RECEIPT_NOT_FOUND');
    assertError(await callIn(dataDir, ['attest', 'receipt', String(receiptIndex), '--actor', 'x', '--actor-role', 'no_such_role'], { cwd: work }), EXIT.validation, 'VALIDATION_FAILED');
    assert.equal((await eventsIn(dataDir)).length, size);
  });

  it('attest consent needs consent:read: a role with receipts only (dermatologist, ml_engineer) is refused (VALIDATION_FAILED), nothing written; receipts stay open to it', async () => {
    const size = (await eventsIn(dataDir)).length;
    for (const role of ['dermatologist', 'ml_engineer']) {
      const r = await callIn(dataDir, ['attest', 'consent', policy, '--actor', 'x-1', '--actor-role', role], { cwd: work });
      assertError(r, EXIT.validation, 'VALIDATION_FAILED');
      assert.match(r.stderr, /consent:read/);
    }
    assert.equal((await eventsIn(dataDir)).length, size);
    const rec = okJson<{ issuedEvent: number }>(await callIn(dataDir, ['--json', 'attest', 'receipt', String(receiptIndex), '--actor', 'dr-derm', '--actor-role', 'dermatologist'], { cwd: work }));
    const all = await eventsIn(dataDir);
    assert.equal(all.length, size + 1);
    assert.equal(all.at(-1)!.payload['permission'], 'receipts');
    assert.equal(all.at(-1)!.index, rec.issuedEvent);
  });

  it('present refuses a claim the attestation does not hold (VALIDATION_FAILED)', async () => {
    assertError(await callCli(['present', 'receipt.sdjwt', '--disclose', 'subject'], { cwd: work }), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callCli(['present', 'no-such-file', '--disclose', 'purpose'], { cwd: work }), EXIT.validation, 'FILE_UNREADABLE');
  });
});

describe('attestations: HTTP', () => {
  let env: ServerEnv;
  let index: number;
  const post = (role: keyof ServerEnv['tokens'], body: unknown) =>
    env.app.inject({ method: 'POST', url: '/api/v1/attestations', headers: { authorization: `Bearer ${env.tokens[role]}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });

  before(async () => {
    env = await createServerEnv();
    const po = { id: 'po-1', role: 'privacy_officer' };
    await env.governance.createConsent({ policyId: pid('http-attest'), subject: 'patient-h', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, po);
    const inf = await env.governance.recordInference({
      actor: { id: 'dr-derm', role: 'dermatologist' },
      purpose: 'TREAT',
      policyId: pid('http-attest'),
      input: { uri: 's3://clinic/h.jpg', digest: D1 },
      outputs: [{ name: 'report_json', uri: 's3://clinic/h.json', digest: OUT_DIGEST }],
      pipeline: PIPELINE,
      model: MODEL,
    });
    index = inf.event.index;
  });

  after(async () => {
    await env.close();
  });

  it('a role with receipts gets a credential that verifies under the published issuer key; the issuance is logged', async () => {
    const keyBefore = await env.app.inject({ method: 'GET', url: '/api/v1/attestations/issuer-key', headers: { authorization: `Bearer ${env.tokens.auditor}` } });
    assert.equal(keyBefore.statusCode, 200);
    assert.equal((keyBefore.json() as { publishedAt: number | null }).publishedAt, null);
    const res = await post('dermatologist', { kind: 'receipt', index });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { credential: string; issuedEvent: number; keyEvent: number };
    const key = (await env.app.inject({ method: 'GET', url: '/api/v1/attestations/issuer-key', headers: { authorization: `Bearer ${env.tokens.nurse}` } })).json() as {
      jwk: IssuerJwk;
      publishedAt: number;
    };
    assert.equal(key.publishedAt, body.keyEvent);
    const v = await verifyAttestation(body.credential, { issuerKey: key.jwk });
    assert.equal(v.entryIndex, index);
    assert.equal(v.disclosed['purpose'], 'TREAT');
    const issued = (await events(env.log)).find((e) => e.index === body.issuedEvent)!;
    assert.equal(issued.type, 'ATTESTATION_ISSUED');
    assert.equal(issued.payload['actor'], 'dr-derm');
    assert.equal(issued.payload['route'], 'POST /api/v1/attestations');
    assert.equal(issued.payload['permission'], 'receipts');
    // A consent attestation too (the privacy officer holds receipts and consent:read), logged under consent:read.
    const c = await post('privacy_officer', { kind: 'consent', policyId: pid('http-attest') });
    assert.equal(c.statusCode, 201, c.body);
    const ci = (await events(env.log)).find((e) => e.index === (c.json() as { issuedEvent: number }).issuedEvent)!;
    assert.equal(ci.payload['permission'], 'consent:read');
  });

  it('a consent attestation needs consent:read: roles with receipts only get 403 FORBIDDEN, as on GET /api/v1/consents/:id, and nothing is issued', async () => {
    const issuedBefore = (await events(env.log)).filter((e) => e.type === 'ATTESTATION_ISSUED').length;
    for (const role of ['dermatologist', 'ml_engineer'] as const) {
      const read = await env.app.inject({ method: 'GET', url: `/api/v1/consents/${pid('http-attest')}`, headers: { authorization: `Bearer ${env.tokens[role]}` } });
      assert.equal(read.statusCode, 403, read.body);
      const res = await post(role, { kind: 'consent', policyId: pid('http-attest') });
      assert.equal(res.statusCode, 403, res.body);
      const err = (res.json() as { error: { code: string; details?: { permission?: string } } }).error;
      assert.equal(err.code, 'FORBIDDEN');
      assert.equal(err.details?.permission, 'consent:read');
      assert.ok(!res.body.includes('TREAT'), res.body);
    }
    assert.equal((await events(env.log)).filter((e) => e.type === 'ATTESTATION_ISSUED').length, issuedBefore);
    // The auditor (consent:read and receipts) may.
    assert.equal((await post('auditor', { kind: 'consent', policyId: pid('http-attest') })).statusCode, 201);
  });

  it('a role without receipts (nurse) is refused 403 FORBIDDEN and nothing is issued', async () => {
    const before = (await events(env.log)).filter((e) => e.type === 'ATTESTATION_ISSUED').length;
    const res = await post('nurse', { kind: 'receipt', index });
    assert.equal(res.statusCode, 403);
    assert.equal((res.json() as { error: { code: string } }).error.code, 'FORBIDDEN');
    assert.equal((await events(env.log)).filter((e) => e.type === 'ATTESTATION_ISSUED').length, before);
  });

  it('bad bodies are 400 VALIDATION_FAILED; an entry that is not an inference 404 RECEIPT_NOT_FOUND; nothing written', async () => {
    const size = await env.log.reader.size();
    for (const body of [
      { kind: 'receipt' },
      { kind: 'receipt', index, policyId: pid('http-attest') },
      { kind: 'consent', index },
      { kind: 'other', index },
      { kind: 'receipt', index: -1 },
      { kind: 'consent', policyId: 'free text' },
    ]) {
      const res = await post('dermatologist', body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.equal((res.json() as { error: { code: string } }).error.code, 'VALIDATION_FAILED');
    }
    const nf = await post('dermatologist', { kind: 'receipt', index: 0 });
    assert.equal(nf.statusCode, 404);
    assert.equal((nf.json() as { error: { code: string } }).error.code, 'RECEIPT_NOT_FOUND');
    assert.equal(await env.log.reader.size(), size);
  });
});
