/**
 * The HTTP API: `createApp(options)` assembles a Fastify instance over a log, its governance
 * overlay and an authenticator. Each job is a module: security headers, input well-formedness,
 * metrics, errors, authentication and rate limiting, tlog-tiles, the explorer, the heavy-read
 * limit, OpenAPI; and each API resource is a module under routes/ declaring its routes once.
 * @module
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { NoteVerifier } from '../core/note.js';
import { createVocabulary } from '../core/vocabulary.js';
import type { Log } from '../log/log.js';
import { systemClock, type Clock } from '../log/clock.js';
import type { Governance } from '../service/governance.js';
import { AuditTrail, OpeningLimiter } from '../service/audit.js';
import { rebuildReceipt } from '../service/receipt.js';
import { Attestations } from '../service/attestations.js';
import type { AttestationKey } from '../log/attestation-key.js';
import { verifyDocuments } from '../service/verify-documents.js';
import type { Authenticator } from './auth.js';
import { installAuth } from './auth-hook.js';
import type { ServerContext } from './context.js';
import { installErrorHandler } from './error-handler.js';
import { registerExplorer } from './explorer.js';
import { installHeavyLimiter } from './heavy.js';
import { frameworkErrors, installInputChecks } from './input.js';
import { installMetrics, installReviewMetrics, installWitnessMetrics } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import { registerRoutes } from './route.js';
import { API_ROUTES } from './routes/index.js';
import { registerFhirMetadata } from './routes/fhir.js';
import { installSecurityHeaders } from './security-headers.js';
import { registerTlog } from './tiles.js';
import { WitnessCollector, type WitnessEndpoint, type WitnessRetry } from './witnesses.js';

// The package's package.json: two levels up from dist/server/ (and src/server/ under tsx), three
// from the benchmark build's build/src/server/.
const PACKAGE_VERSION = ((): string => {
  for (const rel of ['../../package.json', '../../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  }
  return '0.0.0';
})();

/** Options of {@link createApp}. */
export interface AppOptions {
  readonly log: Log;
  readonly governance: Governance;
  readonly auth: Authenticator;
  readonly verifiers: readonly NoteVerifier[];
  readonly origin: string;
  /** Largest request body in bytes (default 256 KiB). */
  readonly bodyLimit?: number;
  /** Requests per minute per authenticated caller, or per client address on public routes (default 60,000). */
  readonly rateLimitPerMinute?: number;
  /** Failed authentications per minute per client address before it gets 429 (default 300). */
  readonly authFailuresPerMinute?: number;
  /** Fastify logger: false, or pino options (default: info, with no headers or bodies). */
  readonly logger?: boolean | Record<string, unknown>;
  /** Directory of the web explorer (default: ../../web from this file). */
  readonly webRoot?: string;
  /**
   * Heavy reads (routes that scan the log: verify, export, entries, overview, anomalies, a
   * policy's history) allowed at once; more are answered 503 SERVER_BUSY (default 2).
   */
  readonly heavyConcurrency?: number;
  /**
   * Serve entry bundles (`/tile/entries/...`) without a credential (default false: they need
   * `read`). Opting in publishes per-policy pseudonymous linkage: policy ids, actor ids, roles.
   */
  readonly publicEntries?: boolean;
  /** Openings of patient-linked commitments per caller per minute (default 30). */
  readonly openingsPerMinute?: number;
  /** Window over which a caller's refused requests are aggregated into one SECURITY_ALERT (default 60 s). */
  readonly alertWindowMs?: number;
  /** Immediate SECURITY_ALERT writes across all callers per window (default 60; see AuditTrail). */
  readonly alertsPerWindow?: number;
  /** Time for the audit windows and the openings limit (default the system clock). */
  readonly clock?: Clock;
  /**
   * Witnesses to collect cosignatures from after each checkpoint (C2SP tlog-witness), the quorum
   * (default: all of them) and the retry schedule. The collector starts with the app and stops when it closes.
   */
  readonly witnesses?: { readonly endpoints: readonly WitnessEndpoint[]; readonly quorum?: number; readonly retry?: WitnessRetry };
  /**
   * issue 15: the attestation issuer key (log/attestation-key.ts; `custos serve` loads it from the
   * data directory, creating it on first start). Without it the attestation routes answer 404
   * ATTESTATION_KEY_NOT_FOUND.
   */
  readonly attestationKey?: AttestationKey;
}

/** Builds the HTTP application. */
export async function createApp(o: AppOptions): Promise<FastifyInstance> {
  const { log, governance, auth } = o;
  const clock = o.clock ?? systemClock;
  // Audit events are checked against the event registry with the deployment's roles and purposes.
  const vocabulary = createVocabulary({ roles: auth.roles, purposes: [...governance.vocabulary.purposes] });
  const audit = new AuditTrail({ log, clock, vocabulary, ...(o.alertWindowMs ? { windowMs: o.alertWindowMs } : {}), ...(o.alertsPerWindow ? { alertsPerWindow: o.alertsPerWindow } : {}) });
  const openings = new OpeningLimiter({ max: o.openingsPerMinute ?? 30, windowMs: 60_000, clock });
  // Refusals before authentication name the caller by a keyed hash of its address (the key lives
  // in this process only): alerts from one address group together, the address is not on the log.
  const clientKey = randomBytes(32);
  const clientOf = (req: FastifyRequest): string => createHmac('sha256', clientKey).update(req.ip).digest('hex').slice(0, 32);
  // The fast path (authentication before anything else); the tile handler decides on the parsed path.
  const isEntryTile = (req: FastifyRequest): boolean => !o.publicEntries && req.url.startsWith('/tile/entries/');
  const app = Fastify({
    bodyLimit: o.bodyLimit ?? 256 * 1024,
    logger:
      o.logger === false
        ? false
        : {
            level: 'info',
            // No headers (tokens), no bodies (patient data): method, route and status only.
            serializers: {
              req: (req: { method: string; routeOptions?: { url?: string } }) => ({ method: req.method, route: req.routeOptions?.url }),
              res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
            },
            ...(typeof o.logger === 'object' ? o.logger : {}),
          },
    // Router errors (a path that is not valid percent-encoding) in the one error shape.
    frameworkErrors,
  });
  installSecurityHeaders(app);
  // Well-formedness first: every JSON body, path parameter and query string, before any hook or handler.
  installInputChecks(app);
  const metrics = installMetrics(app, log);
  installReviewMetrics(metrics, governance);
  let witnesses: WitnessCollector | undefined;
  if (o.witnesses && o.witnesses.endpoints.length > 0) {
    const wm = installWitnessMetrics(metrics, () => witnesses);
    witnesses = new WitnessCollector({
      log,
      witnesses: o.witnesses.endpoints,
      ...(o.witnesses.quorum === undefined ? {} : { quorum: o.witnesses.quorum }),
      ...(o.witnesses.retry ? { retry: o.witnesses.retry } : {}),
      vocabulary,
      clock,
      onRefusal: (w) => wm.refusals.inc({ witness: w }),
      onError: (w) => wm.errors.inc({ witness: w }),
    });
  }
  installErrorHandler(app, { audit, metrics, clientOf, isEntryTile });
  const authenticate = await installAuth(app, { auth, rateLimitPerMinute: o.rateLimitPerMinute ?? 60_000, authFailuresPerMinute: o.authFailuresPerMinute ?? 300, isEntryTile });
  // Refusals still counted are written when the server closes (before the log is closed); the
  // witness collector stops first (its requests are aborted, its state writes settle).
  app.addHook('onClose', async () => {
    await witnesses?.close();
    await audit.flush();
  });

  // Public: health, tlog-tiles, the explorer, OpenAPI.
  app.get('/healthz', async () => ({ ok: true, entries: log.size }));
  registerTlog(app, { log, audit, authenticate, publicEntries: o.publicEntries === true, ...(witnesses ? { witnesses } : {}) });
  registerExplorer(app, o.webRoot ?? fileURLToPath(new URL('../../web/', import.meta.url)));

  // The API.
  // Receipts and verification read through the log (its reader, sidecar and snapshots).
  const ctx: ServerContext = {
    log,
    governance,
    auth,
    verifiers: o.verifiers,
    origin: o.origin,
    audit,
    openings,
    metrics,
    state: { lastVerification: null },
    witnesses,
    rebuildReceipt: (index, open) => rebuildReceipt(log, o.verifiers, o.origin, index, { open }),
    verify: async () => ({ log: await log.verify({ verifiers: o.verifiers, origin: o.origin }), documents: await verifyDocuments({ log }) }),
    attestations: o.attestationKey ? new Attestations({ log, governance, key: o.attestationKey, verifiers: o.verifiers, origin: o.origin, vocabulary, clock }) : undefined,
  };
  registerRoutes(app, API_ROUTES, ctx, installHeavyLimiter(app, o.heavyConcurrency ?? 2));
  registerOpenApi(app, API_ROUTES);
  // Public, like /openapi.json: the FHIR CapabilityStatement of the routes above.
  registerFhirMetadata(app, API_ROUTES, { date: new Date(clock.now()).toISOString(), softwareVersion: PACKAGE_VERSION });
  await witnesses?.start();
  return app;
}
