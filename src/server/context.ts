/**
 * What the route handlers are given besides the request: the log, the governance overlay, the
 * authenticator, the audit trail of reads, the metrics, and the server's small mutable state.
 * @module
 */
import type { FastifyRequest } from 'fastify';
import type { NoteVerifier } from '../core/note.js';
import type { Log } from '../log/log.js';
import type { Governance } from '../service/governance.js';
import type { AuditTrail, OpeningLimiter } from '../service/audit.js';
import type { RebuiltReceipt } from '../service/receipt.js';
import type { VerifyReport } from '../log/verify-log.js';
import type { DocumentReport } from '../service/verify-documents.js';
import type { Authenticator } from './auth.js';
import type { Metrics } from './metrics.js';
import type { WitnessCollector } from './witnesses.js';
import type { Attestations } from '../service/attestations.js';

/** The last whole-log verification run through the API (shown by the overview). */
export interface LastVerification {
  readonly ok: boolean;
  readonly at: string;
  readonly entries: number;
  readonly firstBadIndex: number | null;
}

/** The server's services, shared by every route. */
export interface ServerContext {
  readonly log: Log;
  readonly governance: Governance;
  readonly auth: Authenticator;
  readonly verifiers: readonly NoteVerifier[];
  readonly origin: string;
  readonly audit: AuditTrail;
  readonly openings: OpeningLimiter;
  readonly metrics: Metrics;
  readonly state: { lastVerification: LastVerification | null };
  /** The witness collector, when witnesses are configured. */
  readonly witnesses: WitnessCollector | undefined;
  /** Rebuilds the receipt of an inference event (with its openings if `open`). */
  readonly rebuildReceipt: (index: number, open: boolean) => Promise<RebuiltReceipt>;
  /** Verifies the whole log and the off-ledger documents. */
  readonly verify: () => Promise<{ log: VerifyReport; documents: DocumentReport }>;
  /** issue 15: the attestation issuer, when the app was given an issuer key. */
  readonly attestations: Attestations | undefined;
}

/** `METHOD /route/template` of a request (how audit events name a route). */
export function routeOf(req: FastifyRequest): string {
  return `${req.method} ${req.routeOptions?.url ?? 'UNMATCHED'}`;
}
