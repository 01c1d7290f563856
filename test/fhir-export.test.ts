/**
 * `custos export --format fhir --output DIR` (the built CLI, in process) on a log holding every
 * event type: one NDJSON file per resource type (Bulk Data), one resource per line, every entry
 * of the log up to the export's own AUDIT_QUERY, no temporary file left; a non-empty DIR is
 * refused without --force (EXPORT_DIR_NOT_EMPTY, exit 5); --output is required.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, Provenance } from '@medplum/fhirtypes';
import { EVENT_TYPE } from '../src/core/events.js';
import { CS } from '../src/fhir/uris.js';
import { useTempRoot } from './helpers/fixtures.js';
import { assertError, callIn, ensureBuilt, EXIT, makeTempDir } from './helpers/cli.js';
import { writeEveryEventType, type Trail } from './helpers/fhir-trail.js';

const root = useTempRoot('fhir-export');

describe('custos export --format fhir', () => {
  let dataDir: string;
  let trail: Trail;
  let size: number;
  const out = makeTempDir('custos-fhir-export-');

  before(async () => {
    ensureBuilt();
    const s = await root.openServices();
    dataDir = s.dataDir;
    trail = await writeEveryEventType(s.log, s.gov, s.auth);
    size = s.log.size;
    await s.close();
  });
  after(() => out.cleanup());

  const lines = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as AuditEvent | Provenance);

  it('writes AuditEvent.ndjson and Provenance.ndjson, one resource per line, the export itself included', async () => {
    const dir = join(out.path, 'fhir');
    const r = await callIn(dataDir, ['--json', 'export', '--format', 'fhir', '--output', dir, '--actor', 'aud-1', '--actor-role', 'auditor']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { treeSize: number; auditEvents: number; provenances: number };
    assert.deepEqual(readdirSync(dir).sort(), ['AuditEvent.ndjson', 'Provenance.ndjson']);
    const aes = lines(join(dir, 'AuditEvent.ndjson')) as AuditEvent[];
    // Every entry, and the export's own record (written first) as the last one.
    assert.equal(aes.length, size + 1);
    assert.equal(summary.auditEvents, size + 1);
    assert.deepEqual(
      aes.map((a) => a.id),
      aes.map((_a, i) => String(i)),
    );
    const last = aes.at(-1)!;
    assert.equal(last.subtype?.find((s) => s.system === CS.eventType)?.code, EVENT_TYPE.auditQuery);
    assert.ok(last.agent.some((a) => a.who?.identifier?.value === 'aud-1'));
    assert.ok(last.entity?.some((e) => e.what?.identifier?.value === 'GET /cli/export'));
    const provs = lines(join(dir, 'Provenance.ndjson')) as Provenance[];
    assert.deepEqual(
      provs.map((p) => p.id),
      [String(trail.inference)],
    );
    assert.equal(summary.provenances, 1);
    assert.ok(provs[0]!.signature?.[0]?.data);
  });

  it('refuses a non-empty directory without --force (EXPORT_DIR_NOT_EMPTY), writes into it with --force', async () => {
    const dir = join(out.path, 'busy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'x');
    assertError(await callIn(dataDir, ['export', '--format', 'fhir', '--output', dir]), EXIT.conflict, 'EXPORT_DIR_NOT_EMPTY');
    assert.deepEqual(readdirSync(dir), ['keep.txt']);
    const r = await callIn(dataDir, ['export', '--format', 'fhir', '--output', dir, '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(dir).sort(), ['AuditEvent.ndjson', 'Provenance.ndjson', 'keep.txt']);
    // The local operator exported this time.
    const last = lines(join(dir, 'AuditEvent.ndjson')).at(-1) as AuditEvent;
    assert.ok(last.agent.some((a) => a.role?.[0]?.coding?.[0]?.code === 'operator'));
  });

  it('needs --output, and both or neither of --actor and --actor-role', async () => {
    assertError(await callIn(dataDir, ['export', '--format', 'fhir']), EXIT.validation, 'VALIDATION_FAILED');
    assertError(await callIn(dataDir, ['export', '--format', 'fhir', '--output', join(out.path, 'x'), '--actor', 'a']), EXIT.validation, 'VALIDATION_FAILED');
  });
});
