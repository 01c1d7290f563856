/**
 * The FHIR endpoint on a real app (in-process requests, real SQLite log with every event type):
 * searches (date prefixes, agent, entity, patient), paging by entry index that stays stable while
 * the log grows, reads by id, 400/403/404 as OperationOutcomes with the stable code, the public
 * CapabilityStatement, and the audit of every search and read (AUDIT_QUERY / AUDIT_READ, a
 * patient search by the subject's commitments, never the id).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditEvent, Bundle, CapabilityStatement, OperationOutcome, Provenance } from '@medplum/fhirtypes';
import { EVENT_TYPE } from '../src/core/events.js';
import { CS, SID } from '../src/fhir/uris.js';
import { createServerEnv, type ServerEnv } from './helpers/server-env.js';
import { D1, OTHER_SUBJECT, SUBJECT, writeEveryEventType, type Trail } from './helpers/fhir-trail.js';

type Json = Record<string, unknown>;

describe('FHIR endpoint: /fhir/AuditEvent, /fhir/Provenance, /fhir/metadata', () => {
  let env: ServerEnv;
  let trail: Trail;

  before(async () => {
    env = await createServerEnv();
    trail = await writeEveryEventType(env.log, env.governance, env.auth);
  });
  after(async () => {
    await env.close();
  });

  async function get(url: string, role: keyof ServerEnv['tokens'] | null = 'auditor') {
    const res = await env.app.inject({ method: 'GET', url, headers: role ? { authorization: `Bearer ${env.tokens[role]}` } : {} });
    return { status: res.statusCode, type: String(res.headers['content-type']), body: res.json() as Json };
  }
  async function lastEntry(): Promise<{ type: string; payload: Json }> {
    const e = await env.log.reader.getEntry(env.log.size - 1);
    return JSON.parse(e.bytes.toString('utf8')) as { type: string; payload: Json };
  }
  const ids = (b: Json) => ((b as unknown as Bundle).entry ?? []).map((e) => Number(e.resource!.id));

  it('serves a searchset Bundle of AuditEvents, oldest first, with total, fullUrl, search.mode and a next link', async () => {
    const r = await get('/fhir/AuditEvent?_count=5');
    assert.equal(r.status, 200);
    assert.match(r.type, /^application\/fhir\+json/);
    const b = r.body as unknown as Bundle<AuditEvent>;
    assert.equal(b.type, 'searchset');
    assert.ok(b.total! >= 20);
    assert.deepEqual(ids(r.body), [0, 1, 2, 3, 4]);
    assert.equal(b.entry![0]!.fullUrl, 'http://localhost:80/fhir/AuditEvent/0');
    assert.equal(b.entry![0]!.search?.mode, 'match');
    const next = b.link!.find((l) => l.relation === 'next')!.url;
    assert.match(next, /_after=4/);
    assert.equal(
      b.link!.find((l) => l.relation === 'previous'),
      undefined,
    );
    // The search is on the log.
    const e = await lastEntry();
    assert.equal(e.type, EVENT_TYPE.auditQuery);
    assert.equal(e.payload['route'], 'GET /fhir/AuditEvent');
    assert.deepEqual(e.payload['range'], { from: 0, to: 5 });
  });

  it('pages by entry index: the next page is the same after the log grew, and previous leads back', async () => {
    const first = await get('/fhir/AuditEvent?_count=2&agent=dr-derm');
    const b = first.body as unknown as Bundle;
    const next = new URL(b.link!.find((l) => l.relation === 'next')!.url);
    const page2 = await get(`${next.pathname}${next.search}`);
    // The log grows (a new access by the same actor) between two reads of page 2.
    await env.governance.recordDataAccess({ actor: { id: 'dr-derm', role: 'dermatologist' }, purpose: 'TREAT', policyId: trail.policy, artifact: { uri: 's3://clinic/new.jpg', digest: D1 } });
    const again = await get(`${next.pathname}${next.search}`);
    // A full page does not move; new entries come after it.
    assert.equal(ids(page2.body).length, 2);
    assert.deepEqual(ids(again.body), ids(page2.body));
    assert.ok(Math.min(...ids(page2.body)) > Math.max(...ids(first.body)));
    const prev = new URL((page2.body as unknown as Bundle).link!.find((l) => l.relation === 'previous')!.url);
    assert.deepEqual(ids((await get(`${prev.pathname}${prev.search}`)).body), ids(first.body));
    // Every resource found names the agent.
    for (const en of (again.body as unknown as Bundle<AuditEvent>).entry ?? []) assert.ok(en.resource!.agent.some((a) => a.who?.identifier?.value === 'dr-derm'));
  });

  it('filters by date with prefixes (ge, le, gt, lt, eq) on recorded', async () => {
    const all = (await get('/fhir/AuditEvent?_count=1000')).body as unknown as Bundle<AuditEvent>;
    const times = all.entry!.map((e) => e.resource!.recorded);
    const mid = times[Math.floor(times.length / 2)]!;
    const count = async (q: string) => ((await get(`/fhir/AuditEvent?_count=1000&${q}`)).body as unknown as Bundle).total!;
    const ge = await count(`date=ge${encodeURIComponent(mid)}`);
    const lt = await count(`date=lt${encodeURIComponent(mid)}`);
    assert.equal(ge + lt, all.total! + 1 /* the AUDIT_QUERY of the first search */);
    assert.equal(await count(`date=gt2999-01-01`), 0);
    assert.ok((await count(`date=le2999`)) > 0);
    assert.equal(await count(`date=ge${mid.slice(0, 4)}&date=lt${mid.slice(0, 4)}`), 0);
    assert.ok((await count(`date=eq${mid.slice(0, 10)}`)) > 0);
  });

  it('filters by entity: a digest, a policy id, an entry index', async () => {
    const byPolicy = (await get(`/fhir/AuditEvent?_count=1000&entity=${encodeURIComponent(`${SID.policy}|${trail.policy}`)}`)).body as unknown as Bundle<AuditEvent>;
    assert.ok(byPolicy.total! >= 4);
    for (const e of byPolicy.entry!) assert.ok(e.resource!.entity!.some((x) => x.what?.identifier?.value === trail.policy));
    const byDigest = (await get(`/fhir/AuditEvent?_count=1000&entity=${D1}`)).body as unknown as Bundle;
    assert.ok(byDigest.total! >= 2);
    const byIndex = (await get(`/fhir/AuditEvent?entity=${encodeURIComponent(`${SID.logEntry}|${trail.inference}`)}`)).body as unknown as Bundle;
    // The entry itself, and the reads that name it (AUDIT_READ, PATIENT_DATA_OPENED).
    assert.ok(ids(byIndex as unknown as Json).includes(trail.inference));
    assert.ok(byIndex.total! >= 3);
  });

  it('searches Provenance (inference receipts only) and reads one by id', async () => {
    const b = (await get('/fhir/Provenance')).body as unknown as Bundle<Provenance>;
    assert.equal(b.total, 1);
    assert.equal(b.entry![0]!.resource!.id, String(trail.inference));
    const one = await get(`/fhir/Provenance/${trail.inference}`);
    assert.equal(one.status, 200);
    assert.equal((one.body as unknown as Provenance).resourceType, 'Provenance');
    const ae = await get(`/fhir/AuditEvent/${trail.inference}`);
    assert.equal((ae.body as unknown as AuditEvent).id, String(trail.inference));
    const e = await lastEntry();
    assert.equal(e.type, EVENT_TYPE.auditRead);
    assert.equal(e.payload['eventIndex'], trail.inference);
    const notReceipt = await get('/fhir/Provenance/0');
    assert.equal(notReceipt.status, 404);
    assert.equal((notReceipt.body as unknown as OperationOutcome).issue[0]!.details?.coding?.[0]?.code, 'RECEIPT_NOT_FOUND');
    assert.equal((await get('/fhir/AuditEvent/99999')).status, 404);
  });

  it('patient: the privacy officer gets the subject-linked entries; the query names commitments, never the id', async () => {
    const r = await get(`/fhir/AuditEvent?_count=1000&patient=${SUBJECT}`, 'privacy_officer');
    assert.equal(r.status, 200);
    const b = r.body as unknown as Bundle<AuditEvent>;
    const types = new Set(b.entry!.map((e) => e.resource!.subtype!.find((s) => s.system === CS.eventType)!.code));
    for (const t of [EVENT_TYPE.consentCreated, EVENT_TYPE.consentRevoked, EVENT_TYPE.dataAccessed, EVENT_TYPE.inferenceExecuted, EVENT_TYPE.consentDenied, EVENT_TYPE.trainingExecuted]) {
      assert.ok(types.has(t), `no ${t} for the subject`);
    }
    // Nothing of the other subject's policy.
    for (const e of b.entry!) assert.ok(!e.resource!.entity!.some((x) => x.what?.identifier?.value === trail.otherPolicy));
    const e = await lastEntry();
    assert.equal(e.type, EVENT_TYPE.auditQuery);
    assert.ok(Array.isArray(e.payload['commitments']) && (e.payload['commitments'] as unknown[]).length === 1);
    assert.ok(!JSON.stringify(e).includes(SUBJECT));
    // The erased subject has no commitments left: nothing is found.
    const erased = (await get(`/fhir/AuditEvent?patient=${OTHER_SUBJECT}`, 'privacy_officer')).body as unknown as Bundle;
    assert.equal(erased.total, 0);
  });

  it('patient is refused (403 OperationOutcome naming commitments:open) to a role without commitments:open', async () => {
    const r = await get(`/fhir/AuditEvent?patient=${SUBJECT}`, 'auditor');
    assert.equal(r.status, 403);
    const oo = r.body as unknown as OperationOutcome;
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.equal(oo.issue[0]!.code, 'forbidden');
    assert.deepEqual(
      oo.issue[0]!.details?.coding?.map((c) => c.code),
      ['FORBIDDEN', 'commitments:open'],
    );
  });

  it('invalid parameters: 400 OperationOutcome with VALIDATION_FAILED, one issue per parameter', async () => {
    for (const q of ['date=tomorrow', 'date=ge2026-02-30', '_count=0', '_count=1001', '_count=abc', 'unknown=1', '_after=1&_before=5', 'entity=|', `patient=a&patient=b`]) {
      const r = await get(`/fhir/AuditEvent?${q}`, 'privacy_officer');
      assert.equal(r.status, 400, q);
      const oo = r.body as unknown as OperationOutcome;
      assert.equal(oo.resourceType, 'OperationOutcome', q);
      assert.equal(oo.issue[0]!.code, 'invalid');
      assert.equal(oo.issue[0]!.details?.coding?.[0]?.code, 'VALIDATION_FAILED');
    }
  });

  it('401 and unknown routes under /fhir are OperationOutcomes too', async () => {
    const anon = await get('/fhir/AuditEvent', null);
    assert.equal(anon.status, 401);
    assert.equal((anon.body as unknown as OperationOutcome).issue[0]!.details?.coding?.[0]?.code, 'UNAUTHENTICATED');
    const unknownAnon = await get('/fhir/Patient', null);
    assert.equal(unknownAnon.status, 401);
    const unknown = await get('/fhir/Patient');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body as unknown as OperationOutcome).issue[0]!.details?.coding?.[0]?.code, 'ROUTE_NOT_FOUND');
  });

  it('serves the CapabilityStatement without a credential: R4, the resources, interactions and search parameters served', async () => {
    const r = await get('/fhir/metadata', null);
    assert.equal(r.status, 200);
    const cs = r.body as unknown as CapabilityStatement;
    assert.equal(cs.fhirVersion, '4.0.1');
    const ae = cs.rest![0]!.resource!.find((x) => x.type === 'AuditEvent')!;
    assert.deepEqual(ae.interaction!.map((i) => i.code).sort(), ['read', 'search-type']);
    assert.deepEqual(ae.searchParam!.map((p) => p.name).sort(), ['agent', 'date', 'entity', 'patient']);
    assert.ok(cs.rest![0]!.resource!.some((x) => x.type === 'Provenance'));
  });
});
