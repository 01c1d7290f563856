/**
 * The state the overlay's operations share (one per {@link Governance}): the log, the clock, the
 * vocabularies, the policy heads, the commitments in flight, the document memo and the link log.
 * The operation modules (consent, decisions, receipts, erasure, queries) are functions of it.
 * @module
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { ValidationError, hasCode } from '../../core/errors.js';
import { checkEventPayload } from '../../core/events.js';
import { DEFAULT_ROLES, createVocabulary, type Permission, type ReviewOutcome, type RoleTable, type Vocabulary } from '../../core/vocabulary.js';
import { DEFAULT_REVIEW_DEADLINE_MS } from '../../core/break-glass.js';
import { compileRoleCodings, type RoleCodings } from '../../core/role-codings.js';
import type { Log } from '../../log/log.js';
import { systemClock, type Clock } from '../../log/clock.js';
import { CommitmentPool } from './commitments.js';
import { DocumentMemo } from './documents.js';
import { LinkLog } from './links.js';
import { PolicyHeads } from './policy-heads.js';
import { ReviewLedger } from './reviews.js';
import { FederatedLedger } from './federated.js';
import { DpState, type DpOptions } from './dp.js';

/** Who acts. In the library and CLI the caller says; the HTTP server takes it from the token. */
export interface Actor {
  readonly id: string;
  readonly role: string;
}

/** Options for {@link Governance.open}. */
export interface GovernanceOptions {
  readonly log: Log;
  /** Decisions use this clock through the log's sequencing time; the log must share it. */
  readonly clock?: Clock;
  /** Source of salts and policy ids (tests inject a deterministic one). */
  readonly randomBytes?: (n: number) => Buffer;
  /** Purpose codes added to the HL7 v3 PurposeOfUse codes. */
  readonly purposes?: readonly string[];
  /** The role table (default: DEFAULT_ROLES); roles on events and in policies must be in it. */
  readonly roles?: RoleTable;
  /**
   * The role mapping: for a role of the table, the other codings (`SYSTEM|CODE`, e.g. a v3
   * RoleCode or SNOMED CT code) it is known by in consent policies. Every decision of an actor in
   * that role is made with them (docs/consent.md, "Roles and FHIR role codings"). Default: none.
   */
  readonly roleCodings?: RoleCodings;
  /** Purposes that allow training on identified data (default: HRESCH and its specializations). */
  readonly trainingPurposes?: readonly string[];
  /** Break-glass (docs/governance.md): its vocabularies, and the review deadline. */
  readonly breakGlass?: BreakGlassOptions;
  /** issue 14: explanation methods added to the default list (EXPLANATION_METHODS). */
  readonly explanationMethods?: readonly string[];
  /** issue 15: releases with differential privacy: budgets and period, and the noise's randomness. */
  readonly dp?: DpOptions;
}

/** Break-glass options of {@link GovernanceOptions}. */
export interface BreakGlassOptions {
  /** Purposes a break-glass access may be asked for under (default BTG, ETREAT). */
  readonly purposes?: readonly string[];
  /** Justification codes (default DEFAULT_BREAK_GLASS_JUSTIFICATIONS). */
  readonly justifications?: readonly string[];
  /** Review reason codes per outcome (default DEFAULT_REVIEW_REASONS). */
  readonly reviewReasons?: Partial<Readonly<Record<ReviewOutcome, readonly string[]>>>;
  /** Open reviews older than this are overdue (default 72 hours). */
  readonly reviewDeadlineMs?: number;
}

/** Retries of an operation whose policy (or log) changed while it was prepared. */
export const MAX_POLICY_RETRIES = 8;

/** The shared state of one overlay. */
export class GovernanceState {
  readonly log: Log;
  readonly clock: Clock;
  readonly random: (n: number) => Buffer;
  readonly vocab: Vocabulary;
  readonly heads: PolicyHeads;
  readonly commitments: CommitmentPool;
  readonly memo = new DocumentMemo();
  readonly links = new LinkLog();
  /** The break-glass accesses and their reviews, derived from the log. */
  readonly reviews: ReviewLedger;
  readonly reviewDeadlineMs: number;
  /** issue 14: federated learning sites and rounds, derived from the log. */
  readonly fl: FederatedLedger;
  /** issue 15: the differential-privacy releases (derived from the log) and their configuration. */
  readonly dp: DpState;
  readonly #roles: ReadonlyMap<string, ReadonlySet<Permission>>;
  readonly #roleCodings: ReadonlyMap<string, readonly string[]>;
  /** Times the log was reread because another writer grew it. */
  reloads = 0;

  constructor(o: GovernanceOptions) {
    this.log = o.log;
    this.clock = o.clock ?? systemClock;
    this.random = o.randomBytes ?? nodeRandomBytes;
    this.vocab = createVocabulary({
      ...(o.purposes ? { purposes: o.purposes } : {}),
      ...(o.roles ? { roles: o.roles } : {}),
      ...(o.trainingPurposes ? { trainingPurposes: o.trainingPurposes } : {}),
      ...(o.breakGlass?.purposes ? { breakGlassPurposes: o.breakGlass.purposes } : {}),
      ...(o.breakGlass?.justifications ? { justifications: o.breakGlass.justifications } : {}),
      ...(o.breakGlass?.reviewReasons ? { reviewReasons: o.breakGlass.reviewReasons } : {}),
      ...(o.explanationMethods ? { explanationMethods: o.explanationMethods } : {}),
    });
    const deadline = o.breakGlass?.reviewDeadlineMs ?? DEFAULT_REVIEW_DEADLINE_MS;
    if (!Number.isSafeInteger(deadline) || deadline <= 0) throw new TypeError('the review deadline must be a positive whole number of milliseconds');
    this.reviewDeadlineMs = deadline;
    // Role names are looked up in a Map (never by indexing an object: "constructor" is a string too).
    this.#roles = new Map(Object.entries(o.roles ?? DEFAULT_ROLES).map(([role, perms]) => [role, new Set(perms)]));
    // Validated and frozen once: a decision passes a role's list as it is.
    this.#roleCodings = compileRoleCodings(o.roleCodings, this.#roles.keys(), 'roleCodings option', 'roleCodings');
    this.reviews = new ReviewLedger(o.log);
    this.fl = new FederatedLedger(o.log);
    this.dp = new DpState(o.log, o.dp);
    this.commitments = new CommitmentPool(o.log.sidecar, this.random);
    this.heads = new PolicyHeads(o.log);
  }

  /** Whether `role` holds `permission` in this overlay's role table. */
  may(role: string, permission: Permission): boolean {
    return this.#roles.get(role)?.has(permission) === true;
  }

  /**
   * The codings `role` is known by besides itself (the role mapping), or undefined. Only the
   * configuration sets them, as only the credential sets the role.
   */
  roleCodingsOf(role: string): readonly string[] | undefined {
    return this.#roleCodings.get(role);
  }

  // Purposes and roles are codes from the configured vocabularies, never free text.
  checkCodes(codes: { purpose?: string; role?: string }, prefix = ''): void {
    const issues: { path: string; message: string }[] = [];
    if (codes.purpose !== undefined && !this.vocab.purposes.has(codes.purpose)) {
      issues.push({ path: `${prefix}purpose`, message: 'unknown purpose (HL7 v3 PurposeOfUse, or a configured purpose)' });
    }
    if (codes.role !== undefined && !this.vocab.roles.has(codes.role)) issues.push({ path: `${prefix}actor.role`, message: 'unknown role (not in the role table)' });
    if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', `${issues[0]!.path}: ${issues[0]!.message}`, { issues });
  }

  // Every event this overlay writes is checked against the registry: no field holds free text.
  checked(type: string, payload: Record<string, unknown>): Record<string, unknown> {
    checkEventPayload(type, payload, this.vocab);
    return payload;
  }
}

/** Runs an operation whose decide step may find the policy changed under it; retried afresh. */
export async function withPolicyRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!hasCode(err, 'POLICY_CHANGED') || i >= MAX_POLICY_RETRIES) throw err;
    }
  }
}
