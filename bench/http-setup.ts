/**
 * The setup the HTTP benchmarks share (bench/http.bench.ts, http.profile.ts, http.cpu.ts): a fresh
 * data directory, the governance overlay, one consent, a dermatologist's token, the server (no
 * logger, no effective rate limit) and the POST /api/v1/inferences body every request sends.
 * @module
 */
import { join } from 'node:path';
import { initDataDir, openLog } from '../src/log/data-dir.js';
import { Governance } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp } from '../src/server/app.js';

/** Sets up the inference benchmark under `root`. */
export async function setupInferenceBench(root: string) {
  const dataDir = join(root, 'log');
  await initDataDir(dataDir, { origin: 'bench.custos/http' });
  const { dir, log } = await openLog(dataDir);
  const governance = await Governance.open({ log });
  const auth = new Authenticator({ log });
  const { policy } = await governance.createConsent({ subject: 'bench-patient-0001', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] }, { id: 'bench-po', role: 'privacy_officer' });
  const { token } = await auth.createToken('bench-derm', 'dermatologist', { actor: 'bench-setup', role: 'operator' });
  const setupEntries = log.size;
  const app = await createApp({ log, governance, auth, verifiers: [dir.verifier], origin: dir.origin, logger: false, rateLimitPerMinute: 1_000_000_000 });
  const body = JSON.stringify({
    purpose: 'TREAT',
    policyId: policy.policyId,
    input: { uri: 's3://bench-bucket/bench-patient-0001/visit1/image1.jpg', digest: 'a1'.repeat(32) },
    outputs: [{ name: 'report_json', uri: 's3://bench-bucket/bench-patient-0001/visit1/report.json', digest: 'b2'.repeat(32) }],
    pipeline: { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { size: 224, normalize: true } },
    model: { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: 'c3'.repeat(32), framework: 'pytorch' },
  });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return { dataDir, dir, log, governance, auth, app, body, headers, setupEntries };
}
