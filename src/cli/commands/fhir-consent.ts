/**
 * CLI commands of FHIR Consent (issue 12): `custos consent import`, `consent show --format fhir`
 * and `consent check` with the full request model.
 * @module
 */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../../core/errors.js';
import { toHex } from '../../core/hash.js';
import { decisionToJson } from '../../core/consent/evaluate.js';
import { openLog } from '../../log/data-dir.js';
import { AuditTrail } from '../../service/audit.js';
import { Governance, fhirConsentImportToJson, type ConsentCheckRequest } from '../../service/governance.js';
import type { FhirVersion } from '../../fhir/validate.js';
import type { CommandContext } from '../context.js';
import { inCwd, printFields, printJson, readStdinBytes } from '../output.js';
import { governanceRoleOptions } from '../roles-file.js';

/** The route AUDIT_READ names for `custos consent show --format fhir` (a CLI read, not an HTTP one). */
export const CLI_CONSENT_FHIR_ROUTE = 'GET /cli/consent/:policyId';

async function withGovernance<T>(ctx: CommandContext, fn: (g: Governance, log: Awaited<ReturnType<typeof openLog>>['log']) => Promise<T>, rolesFile?: string): Promise<T> {
  const roleOptions = governanceRoleOptions(ctx.io, rolesFile);
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    return await fn(await Governance.open({ log, ...roleOptions }), log);
  } finally {
    await log.close();
    await dir.store.close();
  }
}

function actorOf(o: { actor?: string | undefined; actorRole?: string | undefined }, what: string): { id: string; role: string } {
  if (o.actor === undefined || o.actorRole === undefined) throw new ValidationError('VALIDATION_FAILED', `${what} needs --actor ID --actor-role ROLE`);
  return { id: o.actor, role: o.actorRole };
}

/** The exact bytes of a file given on the command line (`-`: standard input). Never re-encoded. */
function readBytes(ctx: CommandContext, path: string): Buffer {
  try {
    return path === '-' ? readStdinBytes(ctx.io) : readFileSync(inCwd(ctx.io, path));
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read FHIR Consent file ${path}`, { cause: err });
  }
}

/** `custos consent import FILE|-`: prints the policy id, version, hashes and entry index. */
export async function consentImport(ctx: CommandContext, file: string, o: { fhirVersion?: FhirVersion; actor?: string | undefined; actorRole?: string | undefined }): Promise<void> {
  const actor = actorOf(o, 'consent import');
  const bytes = readBytes(ctx, file);
  const r = await withGovernance(ctx, (g) => g.importFhirConsent(bytes, actor, o.fhirVersion === undefined ? {} : { fhirVersion: o.fhirVersion }));
  const out = fhirConsentImportToJson(r, (e) => ({ index: e.index, leafHash: toHex(e.leafHash), treeSize: e.checkpoint.treeSize, rootHash: toHex(e.checkpoint.rootHash) }));
  if (ctx.json) return printJson(ctx.io, out);
  printFields(ctx.io, {
    [r.unchanged ? 'unchanged' : 'imported']: `${r.policy.policyId} version ${r.policy.version}${r.policy.revoked ? ' (revoked)' : ''}`,
    'policy id': r.policy.policyId,
    'policy hash': r.hash,
    'resource hash': `${r.fhirHash} (FHIR ${r.fhirVersion}, exact bytes, off-ledger)`,
    'logged as': r.unchanged ? `nothing new: entry ${r.index} already holds these bytes` : `${r.type}, entry ${r.index}`,
  });
}

/**
 * `custos consent show ID --format fhir`: the current version as FHIR, written to stdout exactly
 * (the imported bytes; no newline is added). AUDIT_READ is on the log before any byte is written.
 */
export async function consentShowFhir(ctx: CommandContext, policyId: string, o: { actor?: string | undefined; actorRole?: string | undefined }): Promise<void> {
  const reader = actorOf(o, 'consent show --format fhir (the resource names the patient: the read is logged)');
  await withGovernance(ctx, async (g, log) => {
    const x = await g.exportFhirConsent(policyId);
    const trail = new AuditTrail({ log, vocabulary: g.vocabulary });
    await trail.read(reader, { route: CLI_CONSENT_FHIR_ROUTE, permission: 'consent:read', policyId: x.policyId, ...(x.index >= 0 ? { eventIndex: x.index } : {}) });
    ctx.io.stdout.write(x.bytes);
  });
}

/**
 * `custos consent check`: the decision a request would get now, and why. Writes nothing. With
 * `rolesFile` (`--roles FILE`), a bare role is decided with the codings its role mapping gives it.
 */
export async function consentCheck(ctx: CommandContext, policyId: string, request: ConsentCheckRequest, rolesFile?: string): Promise<void> {
  const d = await withGovernance(ctx, (g) => g.checkConsent(policyId, request), rolesFile);
  if (ctx.json) return printJson(ctx.io, decisionToJson(d));
  printFields(ctx.io, {
    decision: d.effect,
    reason: d.reason,
    provision: d.provision ?? '-',
    policy: d.policyVersion === undefined ? d.policyId : `${d.policyId} version ${d.policyVersion}`,
    'policy hash': d.policyHash ?? '-',
    why: d.explanation,
  });
}
