import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { toHex } from '../../core/hash.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { parseVerifierKey } from '../../core/note.js';
import { verifyInclusion } from '../../core/merkle/inclusion.js';
import { verifyConsistency } from '../../core/merkle/consistency.js';
import { initDataDir, openLog } from '../../log/data-dir.js';
import { verifyLog } from '../../log/verify-log.js';
import type { CommandContext } from '../context.js';
import { AUDIT_EVENT_TYPE } from './append.js';

export interface DemoOptions {
  /** Keep the demo's data directory instead of deleting it. */
  readonly keep?: boolean;
}

const SAMPLE = [
  ['report/rad-2026-0001', 'practitioner/dr-okafor', 'Report Finalized'],
  ['claim/clm-88812', 'practitioner/dr-okafor', 'Claim Submitted'],
  ['report/rad-2026-0002', 'practitioner/dr-lindqvist', 'Report Finalized'],
  ['dataset/ct-chest-2026q3', 'service/triage-model', 'Patient Data Accessed'],
  ['report/rad-2026-0003', 'practitioner/dr-haddad', 'Report Finalized'],
  ['claim/clm-88813', 'practitioner/dr-haddad', 'Claim Submitted'],
] as const;

/**
 * `custos demo`: the main job until the server exists. In a fresh temporary data directory it
 * initializes a log, appends sample audit events (concurrently, so they share group commits),
 * verifies the whole log, and prints an inclusion and a consistency proof checked the way an
 * outside auditor would, with nothing but the verifier key.
 */
export async function demo(ctx: CommandContext, options: DemoOptions): Promise<void> {
  const out = (s = '') => ctx.io.stdout.write(`${s}\n`);
  const dataDir = mkdtempSync(join(tmpdir(), 'custos-demo-'));
  try {
    out('Custos demo: a verifiable audit log');
    out(`1. custos init       -> ${dataDir}`);
    const init = await initDataDir(dataDir, { origin: 'demo.custos.local/log' });
    out(`   origin             ${init.origin}`);
    out(`   verifier key       ${init.verifierKey}`);
    const { dir, log } = await openLog(dataDir);
    try {
      out('2. custos append     (only hashes and ids go on the log)');
      const first = await log.append(AUDIT_EVENT_TYPE, {
        resource: SAMPLE[0][0],
        practitioner: SAMPLE[0][1],
        contentHash: createHash('sha256').update(SAMPLE[0][2]).digest('hex'),
      });
      const rest = await Promise.all(
        SAMPLE.slice(1).map(([resource, practitioner, action], i) =>
          log.append(AUDIT_EVENT_TYPE, { resource, practitioner, contentHash: createHash('sha256').update(`${action} ${i}`).digest('hex') }),
        ),
      );
      for (const r of [first, ...rest]) {
        out(`   entry ${r.index}  leaf ${toHex(r.leafHash).slice(0, 16)}...  covered by checkpoint of size ${r.checkpoint.treeSize}`);
      }
      out(`   ${rest.length} concurrent appends were group-committed under one signed checkpoint`);
      const latest = log.latestCheckpoint()!;
      out('3. custos checkpoint (C2SP signed note)');
      for (const line of latest.note.trimEnd().split('\n')) out(`   | ${line}`);

      out('4. custos verify');
      const report = await verifyLog({ store: dir.store, verifiers: [dir.verifier], origin: dir.origin });
      out(`   ${report.ok ? 'OK' : 'FAILED'}: ${report.entries} entries, ${report.checkpointsChecked} checkpoints, root ${report.rootHex ?? '-'}`);

      out('5. custos proof inclusion 3   (checked with only the verifier key)');
      const verifier = parseVerifierKey(init.verifierKey);
      const cp = openCheckpoint(latest.note, [verifier], init.origin);
      const inc = await log.reader.inclusionProof(3, cp.treeSize);
      verifyInclusion(3, cp.treeSize, inc.leafHash, inc.proof, cp.rootHash);
      out(`   leaf ${toHex(inc.leafHash)}`);
      for (const h of inc.proof) out(`   path ${toHex(h)}`);
      out(`   verified against the signed root of size ${cp.treeSize}`);

      out(`6. custos proof consistency 1 ${cp.treeSize}`);
      const con = await log.reader.consistencyProof(1, cp.treeSize);
      verifyConsistency(1, cp.treeSize, con.proof, first.checkpoint.rootHash, cp.rootHash);
      out(`   the tree of size 1 is a prefix of the tree of size ${cp.treeSize} (${con.proof.length} hashes)`);
      if (!report.ok) process.exitCode = 4;
    } finally {
      await log.close();
      await dir.store.close();
    }
    out();
    out(options.keep ? `Data kept in ${dataDir}; try: custos --data-dir ${dataDir} list` : 'Next: custos init, then custos append --help (see README).');
  } finally {
    if (!options.keep) rmSync(dataDir, { recursive: true, force: true });
  }
}
