/**
 * Authentication and authorization for the HTTP API.
 *
 * - Bearer tokens `custos_<id>_<secret>`: created by `custos token create` (or the admin API),
 *   shown once, revocable. Creation and revocation are events on the log (TOKEN_CREATED,
 *   TOKEN_REVOKED: id, name, role, and on creation a digest binding the secret; never the secret).
 *   A token works only if the log holds its creation and no revocation: the state rows written
 *   beside those events are a cache nothing here trusts (see service/tokens.ts).
 * - Optionally OIDC JWTs (issuer, audience, JWKS URL; one claim names the role; `exp` required).
 *   Their actors live in their own namespace, `oidc:<issuer host>:<sub>`; token names cannot
 *   contain ':', so a JWT subject can never pose as a token's actor.
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
import { TOKEN_EVENT, TokenLedger, tokenSecretDigest, type LoggedToken } from '../service/tokens.js';
import { DEFAULT_ROLES, PERMISSIONS, createVocabulary, type Permission, type Vocabulary } from '../core/vocabulary.js';
import { checkEventPayload } from '../core/events.js';

// The role table lives in core: the library, the CLI and the server check roles against one list.
export { DEFAULT_ROLES, PERMISSIONS, type Permission } from '../core/vocabulary.js';

// Role names are untrusted (token bodies, JWT claims, role files): they are looked up in a Map,
// never by indexing a plain object, where "constructor" or "__proto__" would find Object.prototype.
function toRoleMap(roles: Readonly<Record<string, readonly Permission[]>>): ReadonlyMap<string, ReadonlySet<Permission>> {
  const table = new Map<string, ReadonlySet<Permission>>();
  const known: ReadonlySet<string> = new Set(PERMISSIONS);
  for (const [role, perms] of Object.entries(roles)) {
    parseWith(CODE, role, 'role name');
    if (!Array.isArray(perms) || !perms.every((x) => typeof x === 'string' && known.has(x))) {
      throw new ValidationError('VALIDATION_FAILED', `role ${role}: expected a list of permissions (${PERMISSIONS.join(', ')})`, { issues: [{ path: role, message: 'unknown permission' }] });
    }
    table.set(role, new Set(perms));
  }
  return table;
}

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
  /**
   * Prefix of the actor id of a JWT caller (default `oidc:<issuer host>:`); the actor is the prefix
   * followed by the subject. It must contain ':', which token names cannot, so the namespaces of
   * JWT subjects and token names never meet.
   */
  readonly actorPrefix?: string;
  /** Allowed clock skew in seconds for `exp`, `nbf` and `iat` (default 60). */
  readonly clockToleranceSeconds?: number;
}

/** Token names: actor ids without ':' (reserved for other namespaces such as `oidc:`). */
export const TOKEN_NAME = v.pipe(ID, v.regex(/^[^:]*$/, "a token name cannot contain ':' (reserved for oidc: and other actor namespaces)"));

const NO_PERMISSIONS: ReadonlySet<Permission> = new Set();
const TOKEN_RE = /^custos_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Authenticates requests and manages tokens. */
export class Authenticator {
  readonly #log: Log;
  readonly #roles: Readonly<Record<string, readonly Permission[]>>;
  readonly #vocabulary: Vocabulary;
  readonly #roleTable: ReadonlyMap<string, ReadonlySet<Permission>>;
  readonly #oidc: (OidcOptions & { jwks: JWTVerifyGetKey; prefix: string; tolerance: number }) | undefined;
  readonly #tokens: TokenLedger;
  // Tokens whose secret was checked against the log's digest: per ledger record (a revocation
  // replaces the record), the SHA-256 of the secret that matched and the principal it authenticates.
  readonly #verified = new WeakMap<LoggedToken, { readonly hash: Buffer; readonly principal: Principal }>();

  constructor(o: { log: Log; roles?: Readonly<Record<string, readonly Permission[]>>; oidc?: OidcOptions }) {
    this.#log = o.log;
    this.#roles = o.roles ?? DEFAULT_ROLES;
    this.#vocabulary = createVocabulary({ roles: this.#roles });
    this.#roleTable = toRoleMap(this.#roles);
    this.#tokens = new TokenLedger(o.log.scan);
    if (o.oidc) {
      const prefix = o.oidc.actorPrefix ?? `oidc:${new URL(o.oidc.issuer).host}:`;
      if (!prefix.includes(':')) {
        throw new ValidationError('VALIDATION_FAILED', "the OIDC actor prefix must contain ':' (token names cannot), e.g. oidc:idp:", {
          issues: [{ path: 'oidc.actorPrefix', message: "must contain ':'" }],
        });
      }
      const tolerance = o.oidc.clockToleranceSeconds ?? 60;
      this.#oidc = { ...o.oidc, jwks: createRemoteJWKSet(new URL(o.oidc.jwksUrl)), prefix, tolerance };
    } else {
      this.#oidc = undefined;
    }
  }

  /**
   * Reads the log's token events (the whole log the first time; a server calls this before it
   * listens, so the first request does not wait for it).
   * @throws {NotFoundError} ENTRY_NOT_FOUND when the store has lost an entry
   * @throws {VerificationError} LOG_INTEGRITY when the stored entries do not match the signed checkpoint
   */
  async load(): Promise<void> {
    await this.#tokens.sync();
  }

  // Token events are checked against the event registry like every other event (docs/log-format.md).
  #checked(type: string, payload: Record<string, unknown>): Record<string, unknown> {
    checkEventPayload(type, payload, this.#vocabulary);
    return payload;
  }

  /** The permissions of `role`; none for a role not in the table. */
  permissionsOf(role: string): ReadonlySet<Permission> {
    return new Set(this.#roleTable.get(role) ?? []);
  }

  // One shared set per role for principals (a Set per request showed in profiles); the role table
  // is fixed for the authenticator's life and its sets are never handed out to be changed.
  #permissionsOfRole(role: string): ReadonlySet<Permission> {
    return this.#roleTable.get(role) ?? NO_PERMISSIONS;
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
      // The log, not the token row, says whether the token exists, with which secret and role,
      // and whether it was revoked (by this process or any other writer: sync reads new entries).
      await this.#tokens.sync();
      const rec = this.#tokens.get(t[1]!);
      if (rec === undefined || rec.revokedIndex !== null || rec.secretDigest === null) throw new AuthError('UNAUTHENTICATED', 'unknown or revoked token');
      // The secret's SHA-256, compared in constant time with the one verified before for this very
      // record (the ledger replaces a record when it is revoked, so a revoked token never matches
      // a cache entry: the check above refuses it first). Otherwise the full check against the log's
      // digest, and the verified hash is kept for the next request.
      const hash = createHash('sha256').update(t[2]!).digest();
      const known = this.#verified.get(rec);
      if (known !== undefined && timingSafeEqual(hash, known.hash)) return known.principal;
      const given = Buffer.from(tokenSecretDigest(hash.toString('hex')), 'hex');
      if (!timingSafeEqual(given, Buffer.from(rec.secretDigest, 'hex'))) throw new AuthError('UNAUTHENTICATED', 'unknown or revoked token');
      const principal: Principal = Object.freeze({ actor: rec.name, role: rec.role, permissions: this.#permissionsOfRole(rec.role), key: `token:${rec.id}` });
      this.#verified.set(rec, { hash, principal });
      return principal;
    }
    if (this.#oidc && credential.split('.').length === 3) {
      const oidc = this.#oidc;
      try {
        const { payload } = await jwtVerify(credential, oidc.jwks, {
          issuer: oidc.issuer,
          audience: oidc.audience,
          // A JWT without exp would never expire.
          requiredClaims: ['exp', 'sub'],
          clockTolerance: oidc.tolerance,
        });
        // jose checks iat only with maxTokenAge: a token "issued" in the future is refused here.
        if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + oidc.tolerance) throw new Error('iat in the future');
        const role = payload[oidc.roleClaim ?? 'role'];
        if (typeof payload.sub !== 'string' || typeof role !== 'string') throw new Error('missing sub or role claim');
        const actor = parseWith(ID, `${oidc.prefix}${payload.sub}`, 'JWT subject');
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
    const n = parseWith(TOKEN_NAME, name, 'token name');
    const r = parseWith(CODE, role, 'token role');
    if (!this.#roleTable.has(r)) {
      throw new ValidationError('VALIDATION_FAILED', `unknown role ${r}; roles: ${[...this.#roleTable.keys()].join(', ')}`, { issues: [{ path: 'role', message: 'unknown role' }] });
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    let record: TokenRecord | undefined;
    await this.#log.appendDecided((ctx) => {
      record = { id, name: n, role: r, hash: sha(secret), createdAt: new Date(ctx.timeMs).toISOString(), revokedAt: null };
      return {
        type: TOKEN_EVENT.created,
        // actor/role are who created it, as on every event; the token's own identity is tokenName/tokenRole.
        // secretDigest binds the secret (and the row's hash) to the log without putting either there.
        payload: this.#checked(TOKEN_EVENT.created, { tokenId: id, tokenName: n, tokenRole: r, secretDigest: tokenSecretDigest(record.hash), actor: by.actor, role: by.role }),
        sidecar: { state: [{ ns: 'token', key: id, value: JSON.stringify(record) }] },
      };
    });
    return { token: `custos_${id}_${secret}`, record: record! };
  }

  /** All tokens as the log has them (without secrets; hashes omitted too). */
  async listTokens(): Promise<Omit<TokenRecord, 'hash'>[]> {
    await this.#tokens.sync();
    return this.#tokens.all().map((t) => ({ id: t.id, name: t.name, role: t.role, createdAt: t.createdAt, revokedAt: t.revokedAt }));
  }

  /**
   * Revokes a token: it stops working at once.
   * @throws {NotFoundError} TOKEN_NOT_FOUND
   */
  async revokeToken(id: string, by: { actor: string; role: string }): Promise<void> {
    const key = parseWith(v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/, 'expected a token id')), id, 'token id');
    await this.#tokens.sync();
    const rec = this.#tokens.get(key);
    if (!rec) throw new NotFoundError('TOKEN_NOT_FOUND', `no token ${key}`);
    if (rec.revokedIndex !== null) return;
    // The cached row is rewritten from the log's facts (the stored row is not trusted).
    const stored = await this.#log.sidecar.getState('token', key);
    let hash = '';
    try {
      const h = stored === undefined ? undefined : (JSON.parse(stored) as { hash?: unknown }).hash;
      if (typeof h === 'string' && rec.secretDigest !== null && tokenSecretDigest(h) === rec.secretDigest) hash = h;
    } catch {
      // an unreadable row is rewritten without its hash (verify reports it)
    }
    const row = { id: rec.id, name: rec.name, role: rec.role, hash, createdAt: rec.createdAt };
    await this.#log.appendDecided((ctx) => ({
      type: TOKEN_EVENT.revoked,
      payload: this.#checked(TOKEN_EVENT.revoked, { tokenId: key, tokenName: rec.name, tokenRole: rec.role, actor: by.actor, role: by.role }),
      sidecar: { state: [{ ns: 'token', key, value: JSON.stringify({ ...row, revokedAt: new Date(ctx.timeMs).toISOString() }) }] },
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
