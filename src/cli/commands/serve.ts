import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { ValidationError } from '../../core/errors.js';
import { VOCABULARY_CODE_RE } from '../../core/vocabulary.js';
import { DB_FILE, SIGNER_KEY_FILE, initDataDir, openLog } from '../../log/data-dir.js';
import { Governance } from '../../service/governance.js';
import { Authenticator, type OidcOptions } from '../../server/auth.js';
import { createApp } from '../../server/app.js';
import { loadAttestationKey } from '../../log/attestation-key.js';
import { checkWitnessConfig, type WitnessEndpoint } from '../../server/witnesses.js';
import { witnessKeyFromVkey } from '../../server/witness-key.js';
import { trustedVerifiers, withLog, type CommandContext } from '../context.js';
import { printFields, printJson } from '../output.js';
import { loadRoleConfig } from '../roles-file.js';
import { loadDpConfig } from '../dp-config.js';

export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  readonly rolesFile?: string;
  /** Purpose codes added to the HL7 v3 PurposeOfUse codes. */
  readonly purposes?: readonly string[];
  readonly oidc?: OidcOptions;
  readonly rateLimitPerMinute?: number;
  readonly authFailuresPerMinute?: number;
  readonly bodyLimit?: number;
  /** Publish entry bundles without a credential (see docs/http-api.md: what that exposes). */
  readonly publicEntries?: boolean;
  /** Witnesses to collect cosignatures from, and the quorum (see {@link parseWitnessOptions}). */
  readonly witnesses?: { readonly endpoints: readonly WitnessEndpoint[]; readonly quorum: number };
  /** Break-glass reviews open longer than this are overdue (default 72 hours). */
  readonly reviewDeadlineMs?: number;
}

const usage = (path: string, message: string): never => {
  throw new ValidationError('VALIDATION_FAILED', `--${path.split('.')[0]}: ${message}`, { issues: [{ path, message }] });
};

/**
 * Parses `--witness URL=VKEY` (repeatable; split at the first '=') and `--witness-quorum K`
 * (1..N, default N). URLs are http(s) submission prefixes without query or fragment; keys are
 * cosignature/v1 verifier keys; witness names are unique identifiers.
 * @throws {ValidationError} VALIDATION_FAILED naming the option
 */
export function parseWitnessOptions(args: readonly string[], quorum: string | undefined): { endpoints: WitnessEndpoint[]; quorum: number } | undefined {
  if (args.length === 0) {
    if (quorum !== undefined) usage('witness-quorum', 'needs at least one --witness');
    return undefined;
  }
  const endpoints = args.map((arg, i): WitnessEndpoint => {
    const eq = arg.indexOf('=');
    if (eq < 0) return usage(`witness.${i}`, 'expected URL=VKEY');
    const url = arg.slice(0, eq);
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      // reported below
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '')
      usage(`witness.${i}`, `${JSON.stringify(url.slice(0, 100))} is not an http(s) URL without query, fragment or credentials`);
    let key: WitnessEndpoint['key'];
    try {
      key = witnessKeyFromVkey(arg.slice(eq + 1));
    } catch (err) {
      return usage(`witness.${i}`, (err as Error).message);
    }
    return { url, key };
  });
  let k = endpoints.length;
  if (quorum !== undefined) {
    if (!/^[1-9][0-9]{0,5}$/.test(quorum) || Number(quorum) > endpoints.length) usage('witness-quorum', `must be an integer from 1 to the number of witnesses (${endpoints.length})`);
    k = Number(quorum);
  }
  try {
    checkWitnessConfig(endpoints, k);
  } catch (err) {
    usage('witness', (err as Error).message);
  }
  return { endpoints, quorum: k };
}

/**
 * `custos serve`: the HTTP API and the audit explorer. Creates the data directory and key on first
 * start. Runs until SIGINT or SIGTERM, then closes cleanly (pending appends are committed).
 */
export async function serve(ctx: CommandContext, o: ServeOptions): Promise<void> {
  const purposes = o.purposes ?? [];
  for (const [i, c] of purposes.entries()) {
    if (!VOCABULARY_CODE_RE.test(c))
      throw new ValidationError('VALIDATION_FAILED', `--purposes: ${JSON.stringify(c.slice(0, 64))} is not a code`, {
        issues: [{ path: `purposes.${i}`, message: 'expected a code (letters, digits, _)' }],
      });
  }
  // Read before anything is created: a bad role table or mapping leaves no data directory behind.
  const { roles, roleCodings } = loadRoleConfig(ctx.io, o.rolesFile);
  // First start: a new log (keys in the data directory, the store where --store says).
  // Joining a shared PostgreSQL log instead needs that log's key copied into the data directory.
  if (!existsSync(join(ctx.dataDir, SIGNER_KEY_FILE)) && (ctx.storeUrl || !existsSync(join(ctx.dataDir, DB_FILE)))) {
    const r = await initDataDir(ctx.dataDir, { storeUrl: ctx.storeUrl });
    ctx.io.stderr.write(`created a new log in ${ctx.storeUrl ? 'PostgreSQL' : r.dataDir} (origin ${r.origin}); keys in ${r.dataDir}\n`);
  }
  // issue 15: the differential-privacy budgets (dp.json in the data directory), read before the log is opened.
  const dpConfig = loadDpConfig(ctx.dataDir);
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  // One role table for the credentials and for the roles that consent policies and events may name;
  // the role mapping (roleCodings) for the decisions. The authenticator first: tokens and policy
  // heads then share the one verified scan of the log.
  const auth = new Authenticator({ log, roles, ...(o.oidc ? { oidc: o.oidc } : {}) });
  const governance = await Governance.open({
    log,
    roles,
    ...(roleCodings ? { roleCodings } : {}),
    purposes,
    ...(o.reviewDeadlineMs === undefined ? {} : { breakGlass: { reviewDeadlineMs: o.reviewDeadlineMs } }),
    dp: { config: dpConfig },
  });
  await auth.load();
  const app = await createApp({
    log,
    governance,
    auth,
    verifiers: trustedVerifiers(ctx, dir, undefined).verifiers,
    origin: dir.origin,
    ...(o.rateLimitPerMinute ? { rateLimitPerMinute: o.rateLimitPerMinute } : {}),
    ...(o.authFailuresPerMinute ? { authFailuresPerMinute: o.authFailuresPerMinute } : {}),
    ...(o.bodyLimit ? { bodyLimit: o.bodyLimit } : {}),
    ...(o.publicEntries ? { publicEntries: true } : {}),
    ...(o.witnesses ? { witnesses: o.witnesses } : {}),
    // issue 15: the attestation issuer key, beside the log key (created on first start, mode 0600).
    attestationKey: loadAttestationKey(ctx.dataDir, { create: true }),
  });
  const address = await app.listen({ host: o.host, port: o.port });
  const base = address.replace('[::1]', 'localhost');
  ctx.io.stdout.write(
    [
      `Custos is serving the log ${dir.origin} (${log.size} entries) from ${ctx.dataDir}`,
      `  audit explorer   ${base}/`,
      `  API docs         ${base}/docs  (OpenAPI: ${base}/openapi.json)`,
      `  tlog-tiles       ${base}/checkpoint, ${base}/tile/... (entry bundles ${o.publicEntries ? 'PUBLIC: --public-entries' : 'need a read token'})`,
      ...(o.witnesses
        ? [`  witnesses        ${o.witnesses.endpoints.map((w) => w.key.name).join(', ')} (quorum ${o.witnesses.quorum} of ${o.witnesses.endpoints.length}; ${base}/api/v1/witnesses)`]
        : []),
      `  first admin token:  npx custos --data-dir ${ctx.dataDir} token create --name admin --role admin   (shown once)`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  await log.close();
  await dir.store.close();
}

function operator(): { actor: string; role: string } {
  let name = 'operator';
  try {
    name = userInfo().username || name;
  } catch {
    // no user database
  }
  return { actor: `local:${name}`.replace(/[^A-Za-z0-9._:@/-]/g, '_'), role: 'operator' };
}

/** `custos token create`: a bearer token for the HTTP API, shown once. */
export async function tokenCreate(ctx: CommandContext, name: string, role: string, rolesFile?: string): Promise<void> {
  const r = await withLog(ctx, (log) => new Authenticator({ log, roles: loadRoleConfig(ctx.io, rolesFile).roles }).createToken(name, role, operator()));
  if (ctx.json) return printJson(ctx.io, { token: r.token, id: r.record.id, name: r.record.name, role: r.record.role, createdAt: r.record.createdAt });
  printFields(ctx.io, { token: r.token, id: r.record.id, name: r.record.name, role: r.record.role });
  ctx.io.stderr.write('store this token now: it is shown once and kept only as a hash\n');
}

/** `custos token list`. */
export async function tokenList(ctx: CommandContext): Promise<void> {
  const tokens = await withLog(ctx, (log) => new Authenticator({ log }).listTokens());
  if (ctx.json) return printJson(ctx.io, tokens);
  for (const t of tokens) ctx.io.stdout.write(`${t.id}  ${t.name}  ${t.role}  created ${t.createdAt}${t.revokedAt ? `  REVOKED ${t.revokedAt}` : ''}\n`);
}

/** `custos token revoke ID`. */
export async function tokenRevoke(ctx: CommandContext, id: string): Promise<void> {
  await withLog(ctx, (log) => new Authenticator({ log }).revokeToken(id, operator()));
  if (ctx.json) return printJson(ctx.io, { revoked: id });
  ctx.io.stdout.write(`revoked ${id}\n`);
}
