/**
 * FHIR Consent through the CLI and the HTTP API (issue 12): import (file, stdin, POST /fhir/Consent),
 * export byte for byte (`consent show --format fhir`, GET /fhir/Consent/:id), decisions with the
 * full request model (`consent check`, POST /api/v1/consents/:id/check), versioning by identifier,
 * revocation by status, refusals that write nothing, and tampered bytes that are never served.
 *
 * The R4 examples are read from ../shared/vectors/fhir-consent/r4/ (never copied): the test skips
 * when they are absent. Resources derived from them (an identifier added, the status changed) are
 * written to a temporary directory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { assertError, assertOk, callIn, ensureBuilt, EXIT, makeTempDir, okJson } from './helpers/cli.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { VECTORS } from './helpers/vectors.js';

const R4 = join(VECTORS, 'fhir-consent', 'r4');
const NOT_ORG = join(R4, 'Consent-consent-example-notOrg.json');
const HAVE_VECTORS = existsSync(NOT_ORG);
const SKIP = HAVE_VECTORS ? false : `the R4 Consent examples are not at ${R4}`;

const OFFICER = ['--actor', 'privacy-officer-1', '--actor-role', 'privacy_officer'] as const;
const sha256Hex = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

const V3_PURPOSE = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
/** The request the notOrg example forbids: Good Health Clinic (Organization/f001) accessing P.'s data. */
const FORBIDDEN = {
  purpose: `${V3_PURPOSE}|TREAT`,
  role: `${PARTICIPATION}|PRCP`,
  actorReference: 'Organization/f001',
  action: `${ACTION}|access`,
};
const FORBIDDEN_FLAGS = ['--purpose', FORBIDDEN.purpose, '--role', FORBIDDEN.role, '--actor-reference', FORBIDDEN.actorReference, '--action', FORBIDDEN.action];

interface Imported {
  policyId: string;
  version: number;
  hash: string;
  fhirHash: string;
  fhirVersion: string;
  revoked: boolean;
  unchanged: boolean;
  type: string | null;
  entry: number;
}

interface DecisionJson {
  effect: 'permit' | 'deny';
  reason: string;
  policyId: string;
  policyVersion: number | null;
  provision: string | null;
}

/** A variant of an example: `edit` changes its parsed form; written as JSON text with 2-space indents. */
function variant(dir: string, name: string, edit: (r: Record<string, unknown>) => void): string {
  const r = JSON.parse(readFileSync(NOT_ORG, 'utf8')) as Record<string, unknown>;
  edit(r);
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(r, null, 2));
  return path;
}

const IDENTIFIER = [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:3f0c3a5e-8d6b-4a8e-9b0e-0d6c2b7a1f11' }];

describe('FHIR Consent through the CLI', { skip: SKIP }, () => {
  const tmp = makeTempDir('custos-fhir-consent-');
  const dataDir = join(tmp.path, 'log');
  const size = async () => okJson<{ entries: number }>(await callIn(dataDir, ['--json', 'stats'])).entries;
  const check = async (id: string, flags: readonly string[]) => okJson<DecisionJson>(await callIn(dataDir, ['--json', 'consent', 'check', id, ...flags]));

  before(async () => {
    ensureBuilt();
    okJson(await callIn(dataDir, ['--json', 'init']));
  });
  after(() => tmp.cleanup());

  it('imports an R4 example, decides under it, and gives its exact bytes back (no newline added)', async () => {
    const bytes = readFileSync(NOT_ORG);
    const r = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', NOT_ORG, ...OFFICER]));
    assert.equal(r.version, 1);
    assert.equal(r.fhirVersion, 'R4');
    assert.equal(r.fhirHash, sha256Hex(bytes));
    assert.equal(r.type, 'CONSENT_CREATED');
    assert.equal(r.unchanged, false);

    // The patient's wish: no disclosure to Good Health Clinic.
    const d = await check(r.policyId, FORBIDDEN_FLAGS);
    assert.equal(d.effect, 'deny');
    assert.equal(d.policyVersion, 1);
    assert.ok(d.provision === null || d.provision.startsWith('provision'), String(d.provision));

    const before = await size();
    const shown = await callIn(dataDir, ['consent', 'show', r.policyId, '--format', 'fhir', ...OFFICER]);
    assertOk(shown);
    assert.equal(Buffer.from(shown.stdout, 'utf8').equals(bytes), true, 'the export is the file, byte for byte');
    // The read names the patient: AUDIT_READ is on the log.
    assert.equal(await size(), before + 1);
    const last = okJson<{ type: string; payload: Record<string, unknown> }[]>(await callIn(dataDir, ['--json', 'list', '--limit', '1']));
    assert.equal(last[0]!.type, 'AUDIT_READ');
    assert.equal(last[0]!.payload['policyId'], r.policyId);
    // Without a reader named, nothing is shown.
    assertError(await callIn(dataDir, ['consent', 'show', r.policyId, '--format', 'fhir']), EXIT.validation, 'VALIDATION_FAILED');
    // --format json (the default) is the version history, as before.
    const hist = okJson<{ versions: { version: number; policy: { source?: { format: string; hash: string } } }[] }>(await callIn(dataDir, ['--json', 'consent', 'show', r.policyId]));
    assert.deepEqual(hist.versions[0]!.policy.source, { format: 'fhir-r4', hash: sha256Hex(bytes) });
  });

  it('imports from stdin: the same bytes make the same resource hash', async () => {
    const text = readFileSync(NOT_ORG, 'utf8');
    const r = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', '-', '--fhir-version', 'R4', ...OFFICER], { input: text }));
    assert.equal(r.fhirHash, sha256Hex(Buffer.from(text, 'utf8')));
    // No identifier: a new policy each time.
    assert.equal(r.version, 1);
  });

  it('versions by identifier, is idempotent on the same bytes, and revokes by status', async () => {
    const v1 = variant(tmp.path, 'v1.json', (r) => {
      r['identifier'] = IDENTIFIER;
    });
    const v2 = variant(tmp.path, 'v2.json', (r) => {
      r['identifier'] = IDENTIFIER;
      r['dateTime'] = '2016-01-01';
    });
    const inactive = variant(tmp.path, 'inactive.json', (r) => {
      r['identifier'] = IDENTIFIER;
      r['status'] = 'inactive';
    });
    const a = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', v1, ...OFFICER]));
    assert.equal(a.version, 1);
    const n = await size();
    const same = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', v1, ...OFFICER]));
    assert.equal(same.unchanged, true);
    assert.equal(same.policyId, a.policyId);
    assert.equal(same.version, 1);
    assert.equal(same.entry, a.entry);
    assert.equal(await size(), n, 'the same bytes again write nothing');

    const b = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', v2, ...OFFICER]));
    assert.equal(b.policyId, a.policyId);
    assert.equal(b.version, 2);
    assert.equal(b.type, 'CONSENT_UPDATED');
    const shown = await callIn(dataDir, ['consent', 'show', a.policyId, '--format', 'fhir', ...OFFICER]);
    assert.equal(shown.stdout, readFileSync(v2, 'utf8'));

    const c = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', inactive, ...OFFICER]));
    assert.equal(c.policyId, a.policyId);
    assert.equal(c.version, 3);
    assert.equal(c.revoked, true);
    assert.equal(c.type, 'CONSENT_REVOKED');
    const d = await check(a.policyId, ['--purpose', 'TREAT', '--role', 'nurse']);
    assert.equal(d.effect, 'deny');
    assert.equal(d.reason, 'REVOKED');
    // Revocation is final: a later active resource under the same identifier is refused.
    const m = await size();
    assertError(await callIn(dataDir, ['consent', 'import', v1, ...OFFICER]), 7, 'CONSENT_ALREADY_REVOKED');
    assert.equal(await size(), m);
    // Another patient under the same identifier is refused (nothing written).
    const other = variant(tmp.path, 'other.json', (r) => {
      r['identifier'] = IDENTIFIER;
      r['patient'] = { reference: 'Patient/someone-else' };
    });
    assertError(await callIn(dataDir, ['consent', 'import', other, ...OFFICER]), EXIT.conflict, 'CONSENT_PATIENT_MISMATCH');
    assert.equal(await size(), m);
  });

  it('refuses an invalid resource (FHIR_INVALID) and an unenforceable one (CONSENT_UNENFORCEABLE), writing nothing', async () => {
    const n = await size();
    const invalid = variant(tmp.path, 'invalid.json', (r) => {
      r['status'] = 42;
    });
    const r1 = await callIn(dataDir, ['consent', 'import', invalid, ...OFFICER]);
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /^custos: FHIR_INVALID: /);
    const notJson = join(tmp.path, 'not.json');
    writeFileSync(notJson, '{"resourceType":"Consent",');
    // Bytes that are not JSON at all are refused before FHIR is consulted.
    assert.match((await callIn(dataDir, ['consent', 'import', notJson, ...OFFICER])).stderr, /^custos: VALIDATION_FAILED: /);
    // provision.data references a resource Custos cannot see.
    const unenforceable = join(R4, 'Consent-consent-example-notThis.json');
    const r2 = await callIn(dataDir, ['consent', 'import', unenforceable, ...OFFICER]);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /^custos: CONSENT_UNENFORCEABLE: /);
    assert.equal(await size(), n, 'nothing written');
  });

  it('keeps the bare-code check of a native policy as before', async () => {
    const created = okJson<{ policy: { policyId: string } }>(
      await callIn(dataDir, ['--json', 'consent', 'create', '--subject', 'patient-x', '--purposes', 'TREAT', '--roles', 'dermatologist', ...OFFICER]),
    );
    const id = created.policy.policyId;
    assert.equal((await check(id, ['--purpose', 'TREAT', '--role', 'dermatologist'])).effect, 'permit');
    const d = await check(id, ['--purpose', 'HRESCH', '--role', 'dermatologist']);
    assert.deepEqual([d.effect, d.reason, d.provision], ['deny', 'PURPOSE_NOT_ALLOWED', 'provision']);
    assertError(await callIn(dataDir, ['consent', 'check', id, '--purpose', 'NOPE', '--role', 'dermatologist']), EXIT.validation, 'VALIDATION_FAILED');
    // A native policy's FHIR form: JSON of a Consent.
    const shown = await callIn(dataDir, ['consent', 'show', id, '--format', 'fhir', ...OFFICER]);
    assertOk(shown);
    assert.equal((JSON.parse(shown.stdout) as { resourceType: string }).resourceType, 'Consent');
  });

  it('refuses to serve tampered bytes, and custos verify finds them', async () => {
    const r = okJson<Imported>(await callIn(dataDir, ['--json', 'consent', 'import', NOT_ORG, ...OFFICER]));
    const db = new Database(join(dataDir, 'custos.db'));
    try {
      const stored = db.prepare('SELECT data FROM documents WHERE hash = ?').pluck().get(r.fhirHash) as Buffer;
      const edited = Buffer.from(stored.toString('utf8').replace('Organization/f001', 'Organization/f002'));
      assert.equal(db.prepare('UPDATE documents SET data = ? WHERE hash = ?').run(edited, r.fhirHash).changes, 1);
    } finally {
      db.close();
    }
    const shown = await callIn(dataDir, ['consent', 'show', r.policyId, '--format', 'fhir', ...OFFICER]);
    assertError(shown, 7, 'POLICY_TAMPERED');
    const v = await callIn(dataDir, ['--json', 'verify']);
    assert.notEqual(v.code, 0);
    const report = JSON.parse(v.stdout) as { documents: { findings: { kind: string; ref: string }[] } };
    assert.ok(
      report.documents.findings.some((f) => f.kind === 'DOCUMENT_EDITED' && f.ref === r.fhirHash),
      JSON.stringify(report.documents.findings),
    );
  });
});

describe('FHIR Consent through the HTTP API', { skip: SKIP }, () => {
  let env: ServerEnv;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  before(async () => {
    env = await createServerEnv();
  });
  after(async () => env?.close());

  const post = (body: Buffer | string, contentType = 'application/fhir+json', token = env.tokens.privacy_officer) =>
    env.app.inject({ method: 'POST', url: '/fhir/Consent', headers: { ...bearer(token), 'content-type': contentType }, payload: body });

  it('imports with POST /fhir/Consent, checks, and exports the exact bytes with GET /fhir/Consent/:id', async () => {
    const bytes = readFileSync(NOT_ORG);
    const res = await post(bytes);
    assert.equal(res.statusCode, 201, res.body);
    const r = res.json() as Imported;
    assert.equal(res.headers['location'], `/fhir/Consent/${r.policyId}`);
    assert.equal(r.fhirHash, sha256Hex(bytes));
    assert.equal(r.entry, (res.json() as { event: { index: number } }).event.index);

    const check = await env.app.inject({ method: 'POST', url: `/api/v1/consents/${r.policyId}/check`, headers: bearer(env.tokens.privacy_officer), payload: FORBIDDEN });
    assert.equal(check.statusCode, 200, check.body);
    assert.equal((check.json() as DecisionJson).effect, 'deny');

    const n = env.log.size;
    const got = await env.app.inject({ method: 'GET', url: `/fhir/Consent/${r.policyId}`, headers: bearer(env.tokens.privacy_officer) });
    assert.equal(got.statusCode, 200, got.body);
    assert.match(String(got.headers['content-type']), /^application\/fhir\+json/);
    assert.equal(got.rawPayload.equals(bytes), true, 'byte for byte');
    assert.equal(env.log.size, n + 1, 'the read is logged (AUDIT_READ)');

    // application/json is accepted as well; the same bytes again change nothing (200, no event).
    const again = await post(bytes, 'application/json');
    assert.equal(again.statusCode, 201, 'no identifier: a new policy');
  });

  it('answers a bad resource with FHIR_INVALID and writes nothing; refuses fhir+json elsewhere', async () => {
    const n = env.log.size;
    const bad = await post(JSON.stringify({ resourceType: 'Consent', status: 42 }));
    assert.equal(bad.statusCode, 422, bad.body);
    // Under /fhir every error is an OperationOutcome carrying the stable code (docs/fhir.md).
    const oo = bad.json() as { resourceType: string; issue: { details: { coding: { system: string; code: string }[] } }[] };
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.equal(oo.issue[0]!.details.coding[0]!.code, 'FHIR_INVALID');
    const notJson = await post('{"resourceType":');
    assert.equal(notJson.statusCode, 400);
    const lone = await post('{"resourceType":"Consent","id":"\\udfff"}');
    assert.equal(lone.statusCode, 400, 'the well-formedness check still applies');
    assert.equal(env.log.size, n);
    const elsewhere = await env.app.inject({
      method: 'POST',
      url: '/api/v1/consents',
      headers: { ...bearer(env.tokens.privacy_officer), 'content-type': 'application/fhir+json' },
      payload: '{}',
    });
    assert.equal(elsewhere.statusCode, 415);
  });

  it('needs consent:write to import and consent:read to export', async () => {
    const bytes = readFileSync(NOT_ORG);
    assert.equal((await post(bytes, 'application/fhir+json', env.tokens.ml_engineer)).statusCode, 403);
    assert.equal((await env.app.inject({ method: 'POST', url: '/fhir/Consent', payload: bytes, headers: { 'content-type': 'application/fhir+json' } })).statusCode, 401);
  });

  it('lists both routes in /openapi.json with their media types', async () => {
    const doc = (await env.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { 'x-custos-permission': string; requestBody?: { content: Record<string, unknown> } }>>;
    };
    assert.equal(doc.paths['/fhir/Consent']?.['post']?.['x-custos-permission'], 'consent:write');
    assert.deepEqual(Object.keys(doc.paths['/fhir/Consent']!['post']!.requestBody!.content).sort(), ['application/fhir+json', 'application/json']);
    assert.equal(doc.paths['/fhir/Consent/{policyId}']?.['get']?.['x-custos-permission'], 'consent:read');
  });
});
