/**
 * Authentication and authorization for the HTTP API.
 *
 * - Bearer tokens `custos_<id>_<secret>`: created by `custos token create` (or the admin API),
 *   shown once, stored as SHA-256 of the secret, revocable. Creation and revocation are events on
 *   the log (TOKEN_CREATED, TOKEN_REVOKED: id, name, role; never the secret).
 * - Optionally OIDC JWTs (issuer, audience, JWKS URL; one claim names the role).
 * - A role table maps roles to permissions. The actor and role on every event come from the
 *   credential, never from the request body.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as v from 'valibot';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AuthError, NotFoundError, ValidationError } from '../core/errors.js';
import { CODE, ID, parseWith } from '../core/schema/parse.js';
import type { Log } from '../log/log.js';
import type { LogStore } from '../store/store.js';
import { DEFAULT_ROLES, createVocabulary, type Permission } from '../core/vocabulary.js';
import { checkEventPayload } from '../core/events.js';

// The role table lives in core: the library, the CLI and the server check roles against one list.
export { DEFAULT_ROLES, type Permission } from '../core/vocabulary.js';

/** An authenticated caller. */
export interface Principal {
  /** The actor id written on events (the token's name, or the JWT subject). */
  readonly actor: string;
  readonly role: string;
  readonly permissions: ReadonlySet<Permission>;
  /** Stable key for rate limiting and logs (never the secret). */
  readonly key: string;
}

/** A stored token record (state namespace "token"). */
export interface TokenRecord {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly hash: string;
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

/** OIDC settings. */
export interface OidcOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksUrl: string;
  /** The claim holding the role (default "role"). */
  readonly roleClaim?: string;
}

const TOKEN_RE = /^custos_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Authenticates requests and manages tokens. */
export class Authenticator {
  readonly #store: LogStore;
  readonly #log: Log;
  readonly #roles: Readonly<Record<string, readonly Permission[]>>;
  readonly #vocabulary: ReturnType<typeof createVocabulary>;
  readonly #oidc: (OidcOptions & { jwks: JWTVerifyGetKey }) | undefined;

  constructor(o: { log: Log; roles?: Readonly<Record<string, readonly Permission[]>>; oidc?: OidcOptions }) {
    this.#log = o.log;
    this.#store = o.log.store;
    this.#roles = o.roles ?? DEFAULT_ROLES;
    this.#vocabulary = createVocabulary({ roles: this.#roles });
    this.#oidc = o.oidc ? { ...o.oidc, jwks: createRemoteJWKSet(new URL(o.oidc.jwksUrl)) } : undefined;
  }

  permissionsOf(role: string): ReadonlySet<Permission> {
    return new Set(this.#roles[role] ?? []);
  }

  get roles(): Readonly<Record<string, readonly Permission[]>> {
    return this.#roles;
  }

  /**
   * Authenticates an Authorization header.
   * @throws {AuthError} UNAUTHENTICATED
   */
  async authenticate(header: string | undefined): Promise<Principal> {
    const m = /^Bearer (\S+)$/i.exec(header ?? '');
    if (!m) throw new AuthError('UNAUTHENTICATED', 'a bearer token is required');
    const credential = m[1]!;
    const t = TOKEN_RE.exec(credential);
    if (t) {
      const row = await this.#store.getState('token', t[1]!);
      const rec = row === undefined ? undefined : (JSON.parse(row) as TokenRecord);
      const given = Buffer.from(sha(t[2]!), 'hex');
      const ok = rec !== undefined && rec.revokedAt === null && timingSafeEqual(given, Buffer.from(rec.hash, 'hex'));
      if (!ok || !rec) throw new AuthError('UNAUTHENTICATED', 'unknown or revoked token');
      return { actor: rec.name, role: rec.role, permissions: this.permissionsOf(rec.role), key: `token:${rec.id}` };
    }
    if (this.#oidc && credential.split('.').length === 3) {
      try {
        const { payload } = await jwtVerify(credential, this.#oidc.jwks, { issuer: this.#oidc.issuer, audience: this.#oidc.audience });
        const role = payload[this.#oidc.roleClaim ?? 'role'];
        if (typeof payload.sub !== 'string' || typeof role !== 'string') throw new Error('missing sub or role claim');
        const actor = parseWith(ID, payload.sub, 'JWT subject');
        const r = parseWith(CODE, role, 'JWT role');
        return { actor, role: r, permissions: this.permissionsOf(r), key: `jwt:${actor}` };
      } catch {
        throw new AuthError('UNAUTHENTICATED', 'invalid token');
      }
    }
    throw new AuthError('UNAUTHENTICATED', 'invalid token');
  }

  /**
   * Creates a token; the secret is returned once and never stored.
   * @throws {ValidationError} VALIDATION_FAILED for a bad name or an unknown role
   */
  async createToken(name: string, role: string, by: { actor: string; role: string }): Promise<{ token: string; record: TokenRecord }> {
    const n = parseWith(ID, name, 'token name');
    const r = parseWith(CODE, role, 'token role');
    if (!this.#roles[r]) {
      throw new ValidationError('VALIDATION_FAILED', `unknown role ${r}; roles: ${Object.keys(this.#roles).join(', ')}`, { issues: [{ path: 'role', message: 'unknown role' }] });
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    let record: TokenRecord | undefined;
    await this.#log.appendDecided((ctx) => {
      record = { id, name: n, role: r, hash: sha(secret), createdAt: new Date(ctx.timeMs).toISOString(), revokedAt: null };
      // actor/role are who created it, as on every event; the token's own identity is tokenName/tokenRole.
      const payload = { tokenId: id, tokenName: n, tokenRole: r, actor: by.actor, role: by.role };
      checkEventPayload('TOKEN_CREATED', payload, this.#vocabulary);
      return {
        type: 'TOKEN_CREATED',
        payload,
        sidecar: { state: [{ ns: 'token', key: id, value: JSON.stringify(record) }] },
      };
    });
    return { token: `custos_${id}_${secret}`, record: record! };
  }

  /** All tokens (without secrets; hashes omitted too). */
  async listTokens(): Promise<Omit<TokenRecord, 'hash'>[]> {
    return (await this.#store.listState('token')).map((r) => {
      const { hash: _hash, ...rest } = JSON.parse(r.value) as TokenRecord;
      void _hash;
      return rest;
    });
  }

  /**
   * Revokes a token: it stops working at once.
   * @throws {NotFoundError} TOKEN_NOT_FOUND
   */
  async revokeToken(id: string, by: { actor: string; role: string }): Promise<void> {
    const key = parseWith(v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/, 'expected a token id')), id, 'token id');
    const row = await this.#store.getState('token', key);
    if (!row) throw new NotFoundError('TOKEN_NOT_FOUND', `no token ${key}`);
    const rec = JSON.parse(row) as TokenRecord;
    if (rec.revokedAt !== null) return;
    const payload = { tokenId: key, tokenName: rec.name, tokenRole: rec.role, actor: by.actor, role: by.role };
    checkEventPayload('TOKEN_REVOKED', payload, this.#vocabulary);
    await this.#log.appendDecided((ctx) => ({
      type: 'TOKEN_REVOKED',
      payload,
      sidecar: { state: [{ ns: 'token', key, value: JSON.stringify({ ...rec, revokedAt: new Date(ctx.timeMs).toISOString() }) }] },
    }));
  }
}

/**
 * Checks a permission.
 * @throws {AuthError} FORBIDDEN
 */
export function requirePermission(p: Principal, permission: Permission): void {
  if (!p.permissions.has(permission)) {
    throw new AuthError('FORBIDDEN', `role ${p.role} may not ${permission}`, { details: { role: p.role, permission } });
  }
}
