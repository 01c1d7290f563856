/**
 * `custos selftest`: the Merkle ledger design's `test` command, on Custos. In a fresh temporary
 * directory (never the user's data directory, which is not opened), it creates a log, appends,
 * verifies, proves (inclusion of every entry and consistency, each checked against the signed
 * checkpoint, and a damaged proof refused), exports (an offline bundle checked with only the
 * verifier key, and the CSV export checked row by row), runs a consent decision round trip, and
 * removes the directory, also when a step fails. One pass/fail line; `--json` gives every step.
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CustosError, VerificationError } from '../../core/errors.js';
import { verifyBundle } from '../../core/bundle.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { hashLeaf, toHex } from '../../core/hash.js';
import { verifyConsistency } from '../../core/merkle/consistency.js';
import { verifyInclusion } from '../../core/merkle/inclusion.js';
import { parseVerifierKey } from '../../core/note.js';
import { initDataDir, openDataDir, openLog } from '../../log/data-dir.js';
import { LogReader } from '../../log/reader.js';
import { verifyLog } from '../../log/verify-log.js';
import { buildBundle } from '../../service/bundle.js';
import { ConsentDeniedError, Governance } from '../../service/governance.js';
import { verifyDocuments } from '../../service/verify-documents.js';
import type { CommandContext } from '../context.js';
import { printJson } from '../output.js';
import { AUDIT_EVENT_TYPE } from './append.js';
import { CSV_HEADER, exportLog } from './export.js';

/** The steps, in order. */
export const SELFTEST_STEPS = ['tempdir', 'init', 'append', 'consent', 'verify', 'prove', 'export', 'cleanup'] as const;
export type SelftestStepName = (typeof SELFTEST_STEPS)[number];

/** One step's result. */
export interface SelftestStep {
  readonly name: SelftestStepName;
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly ms: number;
  /** What was checked (pass), or the error (fail). */
  readonly detail: string;
  /** The error's stable code, when the step failed with one. */
  readonly code?: string;
}

/** The `--json` report. */
export interface SelftestReport {
  readonly ok: boolean;
  readonly ms: number;
  readonly steps: readonly SelftestStep[];
}

/** Options of {@link selftest}. */
export interface SelftestOptions {
  /** The directory the temporary directory is made in ($TMPDIR, else the system's). */
  readonly tmpBase: string;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function fail(message: string): never {
  throw new VerificationError('SELFTEST_FAILED', message);
}

function check(cond: boolean, message: string): void {
  if (!cond) fail(message);
}

/**
 * Runs the self-test. Prints one line (`selftest: PASS ...`) or, with --json, the report.
 * @throws {VerificationError} SELFTEST_FAILED naming the step that failed (exit 15); with --json the report is printed first
 */
export async function selftest(ctx: CommandContext, o: SelftestOptions): Promise<void> {
  const t0 = performance.now();
  const steps: SelftestStep[] = [];
  let failed: SelftestStep | undefined;
  // A step after a failed one is skipped, except `always` (the cleanup).
  const run = async (name: SelftestStepName, fn: () => Promise<string> | string, always = false): Promise<void> => {
    if (failed && !always) {
      steps.push({ name, status: 'skipped', ms: 0, detail: `not run: step ${failed.name} failed` });
      return;
    }
    const t = performance.now();
    try {
      const detail = await fn();
      steps.push({ name, status: 'pass', ms: performance.now() - t, detail });
    } catch (err) {
      const code = err instanceof CustosError ? err.code : undefined;
      const nodeCode = (err as { code?: unknown }).code;
      const message = err instanceof Error ? err.message : String(err);
      const step: SelftestStep = { name, status: 'fail', ms: performance.now() - t, detail: message, ...(code ? { code } : typeof nodeCode === 'string' ? { code: nodeCode } : {}) };
      failed ??= step;
      steps.push(step);
    }
  };

  let tmp: string | undefined;
  // Shared between the steps.
  let verifierKey = '';
  let origin = '';
  let logDir = '';
  let firstSize = 0;
  let inferenceIndex = -1;
  let expectedEntries = 0;
  try {
    await run('tempdir', () => {
      tmp = mkdtempSync(join(o.tmpBase, 'custos-selftest-'));
      logDir = join(tmp, 'log');
      return `made a fresh directory in ${o.tmpBase}`;
    });
    await run('init', async () => {
      const init = await initDataDir(logDir, { origin: 'selftest.custos.local/log' });
      verifierKey = init.verifierKey;
      origin = init.origin;
      return `log ${origin}, signing key created`;
    });
    let opened: Awaited<ReturnType<typeof openLog>> | undefined;
    try {
      await run('append', async () => {
        opened = await openLog(logDir);
        // The ledger design's test: three audit events (resource, practitioner, content hash).
        const events = [
          { resource: 'patient-001', practitioner: 'doc-456', contentHash: sha('report 1') },
          { resource: 'patient-002', practitioner: 'doc-456', contentHash: sha('report 2') },
          { resource: 'patient-001', practitioner: 'doc-789', contentHash: sha('report 3') },
        ];
        for (const [i, payload] of events.entries()) {
          const r = await opened!.log.append(AUDIT_EVENT_TYPE, payload);
          check(r.index === i, `append ${i} got index ${r.index}`);
          check(r.checkpoint.treeSize === i + 1, `append ${i}: signed checkpoint of size ${r.checkpoint.treeSize}, expected ${i + 1}`);
          check(r.leafHash.equals(hashLeaf(Buffer.from(r.entry, 'utf8'))), `append ${i}: leaf hash is not the hash of the entry`);
          if (i === 0) firstSize = r.checkpoint.treeSize;
        }
        expectedEntries = events.length;
        return `${events.length} audit events appended, each covered by a signed checkpoint`;
      });
      await run('consent', async () => {
        const g = await Governance.open({ log: opened!.log });
        const officer = { id: 'selftest-officer', role: 'privacy_officer' };
        const derm = { id: 'selftest-derm', role: 'dermatologist' };
        const created = await g.createConsent({ subject: 'selftest-patient', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, officer);
        const policyId = created.policy.policyId;
        const allowed = await g.checkConsent(policyId, { purpose: 'TREAT', role: 'dermatologist' });
        check(allowed.reason === 'PERMITTED', `consent check before revocation: ${allowed.reason}, expected PERMITTED`);
        const wrongRole = await g.checkConsent(policyId, { purpose: 'TREAT', role: 'nurse' });
        check(wrongRole.reason === 'ROLE_NOT_ALLOWED', `consent check for another role: ${wrongRole.reason}, expected ROLE_NOT_ALLOWED`);
        const inference = {
          actor: derm,
          purpose: 'TREAT',
          policyId,
          input: { uri: 's3://selftest/visit1/img.jpg', digest: sha('image') },
          outputs: [{ name: 'report_json', uri: 's3://selftest/visit1/report.json', digest: sha('report') }],
          pipeline: { pipelineName: 'selftest', pipelineVersion: '1', containerImage: 'selftest:1', codeCommit: 'selftest', parameters: {}, dependencies: {} },
          model: { modelName: 'selftest', modelVersion: '1', weightsHash: sha('weights'), framework: 'none' },
        };
        const inf = await g.recordInference(inference);
        check(inf.decision.reason === 'PERMITTED', 'the inference was not permitted');
        inferenceIndex = inf.event.index;
        await g.revokeConsent(policyId, officer);
        const revoked = await g.checkConsent(policyId, { purpose: 'TREAT', role: 'dermatologist' });
        check(revoked.reason === 'REVOKED', `consent check after revocation: ${revoked.reason}, expected REVOKED`);
        let deniedAt = -1;
        try {
          await g.recordInference({ ...inference, input: { uri: 's3://selftest/visit2/img.jpg', digest: sha('image 2') } });
        } catch (err) {
          if (!(err instanceof ConsentDeniedError)) throw err;
          check(err.decision.reason === 'REVOKED', `the refusal's reason is ${err.decision.reason}, expected REVOKED`);
          deniedAt = err.event.index;
        }
        check(deniedAt >= 0, 'an inference ran after its consent was revoked');
        expectedEntries += 4; // creation, inference, revocation, refusal
        return `policy created, checked (PERMITTED, ROLE_NOT_ALLOWED), inference executed (entry ${inferenceIndex}), revoked, checked (REVOKED), inference refused with CONSENT_DENIED (entry ${deniedAt})`;
      });
    } finally {
      await opened?.log.close();
      await opened?.dir.store.close();
    }
    await run('verify', async () => {
      const dd = await openDataDir(logDir, { readonly: true });
      try {
        const r = await verifyLog({ store: dd.store, verifiers: [parseVerifierKey(verifierKey)], origin });
        check(r.ok, `log verification failed: ${r.findings[0]?.message ?? 'no finding'}`);
        check(r.entries === expectedEntries && r.checkpointSize === expectedEntries, `the log has ${r.entries} entries (signed size ${r.checkpointSize}), expected ${expectedEntries}`);
        const d = await verifyDocuments({ store: dd.store });
        check(d.ok, `off-ledger store: ${d.findings[0]?.kind ?? 'failed'}`);
        return `${r.entries} entries and ${r.checkpointsChecked} signed checkpoints verify; ${d.documentsChecked} off-ledger documents match the log`;
      } finally {
        await dd.store.close();
      }
    });
    await run('prove', async () => {
      const dd = await openDataDir(logDir, { readonly: true });
      try {
        const key = parseVerifierKey(verifierKey);
        const reader = new LogReader(dd.store);
        const latest = await reader.latestCheckpoint();
        check(latest !== undefined, 'no signed checkpoint');
        // Checked the way an outside auditor would: the signed note, with the verifier key alone.
        const cp = openCheckpoint(latest!.note, [key], origin);
        for (let i = 0; i < cp.treeSize; i++) {
          const p = await reader.inclusionProof(i, cp.treeSize);
          verifyInclusion(i, cp.treeSize, p.leafHash, p.proof, cp.rootHash);
        }
        const c = await reader.consistencyProof(firstSize, cp.treeSize);
        check(c.oldCheckpoint !== undefined, `no signed checkpoint at size ${firstSize}`);
        const old = openCheckpoint(c.oldCheckpoint!.note, [key], origin);
        verifyConsistency(firstSize, cp.treeSize, c.proof, old.rootHash, cp.rootHash);
        // A proof with one bit flipped must be refused: the checks above can fail.
        const bad = (await reader.inclusionProof(0, cp.treeSize)).proof.map((h) => Buffer.from(h));
        const first = bad[0]!;
        first[0] = first[0]! ^ 1;
        let refused = false;
        try {
          verifyInclusion(0, cp.treeSize, (await reader.inclusionProof(0, cp.treeSize)).leafHash, bad, cp.rootHash);
        } catch (err) {
          refused = err instanceof CustosError && err.code === 'INCLUSION_PROOF_INVALID';
        }
        check(refused, 'a damaged inclusion proof was accepted');
        return `inclusion of all ${cp.treeSize} entries and consistency ${firstSize} → ${cp.treeSize} verify against signed checkpoints; a damaged proof is refused`;
      } finally {
        await dd.store.close();
      }
    });
    await run('export', async () => {
      // The offline bundle of the inference, checked with nothing but the verifier key.
      const { dir, log } = await openLog(logDir);
      let bundleJson: string;
      try {
        const built = await buildBundle(log, log.signer, inferenceIndex, { redact: true });
        bundleJson = JSON.stringify(built.bundle);
      } finally {
        await log.close();
        await dir.store.close();
      }
      const v = verifyBundle(JSON.parse(bundleJson), { logKey: parseVerifierKey(verifierKey) });
      check(v.ok, `the bundle does not verify: ${v.failed?.name ?? ''} ${v.failed?.detail ?? ''}`);
      // The CSV export, through the export command itself: one row per entry, each leaf hash the hash of its entry.
      const csv = join(tmp!, 'export.csv');
      const discard = new Writable({ write: (_c, _e, cb) => cb() });
      await exportLog({ ...ctx, dataDir: logDir, storeUrl: undefined, json: false, io: { stdout: discard, stderr: discard } }, { format: 'csv', output: csv });
      const rows = readFileSync(csv, 'utf8')
        .split('\r\n')
        .filter((l) => l.length > 0);
      check(rows[0] === CSV_HEADER, `CSV header ${rows[0]}`);
      check(rows.length === expectedEntries + 1, `CSV has ${rows.length - 1} rows, expected ${expectedEntries}`);
      for (const [i, row] of rows.slice(1).entries()) {
        // (then the AUDIT_EVENT columns: resource, practitioner, content hash; identifiers and hashes, never quoted)
        const m = /^(\d+),[^,]*,[^,]*,([0-9a-f]{64}),"(.*)",[^,"]*,[^,"]*,[^,"]*$/.exec(row);
        check(m !== null && Number(m[1]) === i, `CSV row ${i} is malformed`);
        const entry = m![3]!.replace(/""/g, '"');
        check(toHex(hashLeaf(Buffer.from(entry, 'utf8'))) === m![2], `CSV row ${i}: the leaf hash is not the hash of the entry`);
      }
      return `bundle of entry ${inferenceIndex} verifies offline (${v.checks.filter((c) => c.status === 'pass').length} checks); CSV export has ${expectedEntries} rows, each leaf hash matching its entry`;
    });
  } finally {
    // Always, also after a failure.
    await run(
      'cleanup',
      () => {
        if (tmp === undefined) return 'nothing to remove';
        rmSync(tmp, { recursive: true, force: true });
        check(!existsSync(tmp), `${tmp} is still there`);
        return 'temporary directory removed';
      },
      true,
    );
  }
  const ms = performance.now() - t0;
  const report: SelftestReport = { ok: failed === undefined, ms, steps };
  if (ctx.json) printJson(ctx.io, report);
  if (failed) {
    throw new VerificationError(
      'SELFTEST_FAILED',
      `selftest FAILED at step ${failed.name}: ${failed.code && !failed.detail.startsWith(failed.code) ? `${failed.code}: ` : ''}${failed.detail} (${steps.filter((s) => s.status === 'pass').length} of ${SELFTEST_STEPS.length} steps passed)`,
      {
        details: { step: failed.name },
      },
    );
  }
  if (!ctx.json) ctx.io.stdout.write(`selftest: PASS, ${steps.length} steps in ${Math.round(ms)} ms (${steps.map((s) => s.name).join(', ')}); temporary directory removed\n`);
}
