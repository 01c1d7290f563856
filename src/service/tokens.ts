/**
 * API tokens as the log has them. A token exists because a TOKEN_CREATED event is on the log (with
 * its id, name, role and a digest of its secret) and is revoked because a TOKEN_REVOKED event
 * is. The `token` rows of the store are a cache written with those events (for listing and for
 * older tools); nothing trusts them: {@link TokenLedger} derives the state from the log (only from
 * entries a signed checkpoint covers, see log/verified-scan.ts), and `verifyDocuments` reports rows
 * that disagree with it.
 * @module
 */
import { sha256, toHex } from '../core/hash.js';
import type { VerifiedScan } from '../log/verified-scan.js';

import { TOKEN_EVENT } from '../core/events.js';

/** The event types of token creation and revocation (reserved: the generic append refuses them). */
export { TOKEN_EVENT };

/** A token as the log has it. */
export interface LoggedToken {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  /**
   * {@link tokenSecretDigest} of the secret's hash, from the TOKEN_CREATED event. Null for a token
   * created before the digest was logged: it cannot be checked against the log and is refused.
   */
  readonly secretDigest: string | null;
  readonly createdIndex: number;
  readonly createdAt: string;
  readonly revokedIndex: number | null;
  readonly revokedAt: string | null;
}

/**
 * What TOKEN_CREATED logs about a secret: SHA-256 over a label and the hex SHA-256 of the secret
 * (the hash the token row keeps). The server checks a presented secret with it, and
 * `verifyDocuments` checks a row's hash with it; neither the secret nor the row's hash is on the
 * (public) log. Secrets are 256 random bits, so the digest admits no offline guessing.
 */
export function tokenSecretDigest(secretHashHex: string): string {
  return toHex(sha256(Buffer.from(`custos-token-secret-v1:${secretHashHex}`, 'utf8')));
}

const TOKEN_TYPE_MARK = '"type":"TOKEN_';
const HEX16 = /^[0-9a-f]{16}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Applies one entry to a token map if it is a token event (pure; bytes are the entry as stored).
 * A byte search skips every other entry without parsing it. Returns whether the map changed.
 */
export function applyTokenEvent(tokens: Map<string, LoggedToken>, index: number, bytes: Buffer): boolean {
  if (bytes.indexOf(TOKEN_TYPE_MARK) < 0) return false;
  let e: { type?: unknown; time?: unknown; payload?: Record<string, unknown> };
  try {
    e = JSON.parse(bytes.toString('utf8')) as typeof e;
  } catch {
    return false; // a malformed entry is the log verifier's finding
  }
  const p = e.payload ?? {};
  const id = p['tokenId'];
  if (typeof id !== 'string' || !HEX16.test(id) || typeof e.time !== 'string') return false;
  if (e.type === TOKEN_EVENT.created) {
    if (tokens.has(id) || typeof p['tokenName'] !== 'string' || typeof p['tokenRole'] !== 'string') return false;
    const secretDigest = typeof p['secretDigest'] === 'string' && HEX64.test(p['secretDigest']) ? p['secretDigest'] : null;
    tokens.set(id, { id, name: p['tokenName'], role: p['tokenRole'], secretDigest, createdIndex: index, createdAt: e.time, revokedIndex: null, revokedAt: null });
    return true;
  }
  if (e.type === TOKEN_EVENT.revoked) {
    const t = tokens.get(id);
    if (!t || t.revokedIndex !== null) return false;
    tokens.set(id, { ...t, revokedIndex: index, revokedAt: e.time });
    return true;
  }
  return false;
}

/**
 * The tokens of one log, derived from its entries that a signed checkpoint covers (through the
 * log's shared {@link VerifiedScan}: entry rows the checkpoint does not cover, or bytes that do not
 * hash to its root, never make or unmake a token), kept current by reading only new entries.
 */
export class TokenLedger {
  readonly #scan: VerifiedScan;
  readonly #tokens = new Map<string, LoggedToken>();

  constructor(scan: VerifiedScan) {
    this.#scan = scan;
    scan.subscribe({ matches: (bytes) => bytes.indexOf(TOKEN_TYPE_MARK) >= 0, apply: (index, bytes) => void applyTokenEvent(this.#tokens, index, bytes) });
  }

  /**
   * Reads the entries the log's latest signed checkpoint covers that were not read yet.
   * @throws {VerificationError} LOG_INTEGRITY when the stored entries do not match the signed checkpoint
   * @throws {NotFoundError} ENTRY_NOT_FOUND when an entry below the checkpoint's size is missing from the store
   */
  sync(): Promise<void> {
    return this.#scan.sync();
  }

  /** The token with this id as the log has it (after {@link sync}). */
  get(id: string): LoggedToken | undefined {
    return this.#tokens.get(id);
  }

  /** Every token the log has created, in creation order (after {@link sync}). */
  all(): LoggedToken[] {
    return [...this.#tokens.values()].sort((a, b) => a.createdIndex - b.createdIndex);
  }
}
