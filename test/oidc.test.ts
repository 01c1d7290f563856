import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { initDataDir, openLog, type DataDir } from '../src/log/data-dir.js';
import type { Log } from '../src/log/log.js';
import { Governance } from '../src/service/governance.js';
import { Authenticator } from '../src/server/auth.js';
import { createApp } from '../src/server/app.js';
import type { FastifyInstance } from 'fastify';

// An OIDC issuer on loopback: a JWKS endpoint, and JWTs signed with its key.
describe('OIDC JWTs (optional authentication)', () => {
  let dir: string;
  let dd: DataDir;
  let log: Log;
  let app: FastifyInstance;
  let jwks: Server;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  let sign: (claims: Record<string, unknown>, opts?: { issuer?: string; audience?: string; expires?: string }) => Promise<string>;
  const issuer = 'https://idp.hospital.example';
  const audience = 'custos';

  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const publicKey = pair.publicKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    sign = (claims, o = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(o.issuer ?? issuer)
        .setAudience(o.audience ?? audience)
        .setIssuedAt()
        .setExpirationTime(o.expires ?? '5m')
        .sign(privateKey);
    dir = mkdtempSync(join(tmpdir(), 'custos-oidc-'));
    await initDataDir(dir, { origin: 'oidc.test/log' });
    ({ dir: dd, log } = await openLog(dir));
    const governance = await Governance.open({ log });
    const auth = new Authenticator({ log, oidc: { issuer, audience, jwksUrl: url, roleClaim: 'custos_role' } });
    app = await createApp({ log, governance, auth, verifiers: [dd.verifier], origin: dd.origin, logger: false });
  });

  after(async () => {
    await app.close();
    await log.close();
    await dd.store.close();
    await new Promise<void>((r) => jwks.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a JWT from the configured issuer: the actor is oidc:<issuer host>:<subject>, the claim is the role', async () => {
    const jwt = await sign({ sub: 'dr-okafor', custos_role: 'privacy_officer' });
    const me = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(me.statusCode, 200, me.body);
    assert.equal(me.json().actor, 'oidc:idp.hospital.example:dr-okafor');
    assert.equal(me.json().role, 'privacy_officer');
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/consents',
      headers: { authorization: `Bearer ${jwt}` },
      payload: { subject: 's1', allowedPurposes: ['TREAT'], allowedRoles: ['dermatologist'] },
    });
    assert.equal(created.statusCode, 201, created.body);
    const entry = await log.reader.getEntry(created.json().event.index);
    const payload = JSON.parse(entry.bytes.toString('utf8')).payload;
    assert.equal(payload.actor, 'oidc:idp.hospital.example:dr-okafor');
    assert.equal(payload.role, 'privacy_officer');
  });

  for (const [name, make] of [
    ['another issuer', () => sign({ sub: 'x', custos_role: 'auditor' }, { issuer: 'https://evil.example' })],
    ['another audience', () => sign({ sub: 'x', custos_role: 'auditor' }, { audience: 'someone-else' })],
    ['an expired token', () => sign({ sub: 'x', custos_role: 'auditor' }, { expires: '-1m' })],
    ['no role claim', () => sign({ sub: 'x' })],
  ] as const) {
    it(`refuses ${name} with 401 UNAUTHENTICATED`, async () => {
      const r = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${await make()}` } });
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().error.code, 'UNAUTHENTICATED');
    });
  }

  // Signed by the issuer's own key, with exactly the claims given (no defaults added).
  const raw = (claims: Record<string, unknown>) => new SignJWT({ iss: issuer, aud: audience, ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
  const nowS = () => Math.floor(Date.now() / 1000);

  it('refuses a JWT without exp (it would never expire): 401', async () => {
    const jwt = await raw({ sub: 'x', custos_role: 'auditor', iat: nowS() });
    const r = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(r.statusCode, 401, r.body);
    assert.equal(r.json().error.code, 'UNAUTHENTICATED');
  });

  it('refuses a JWT issued in the future beyond the clock skew: 401; accepts one within it', async () => {
    const future = await raw({ sub: 'x', custos_role: 'auditor', iat: nowS() + 3600, exp: nowS() + 7200 });
    const r = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${future}` } });
    assert.equal(r.statusCode, 401, r.body);
    const skewed = await raw({ sub: 'x', custos_role: 'auditor', iat: nowS() + 5, exp: nowS() + 600 });
    const ok = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${skewed}` } });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  it('keeps JWT subjects apart from token names: a subject equal to a token name is another actor', async () => {
    const auth = new Authenticator({ log });
    const t = await auth.createToken('admin-1', 'auditor', { actor: 'setup', role: 'operator' });
    const viaToken = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${t.token}` } });
    const viaJwt = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${await sign({ sub: 'admin-1', custos_role: 'auditor' })}` } });
    assert.equal(viaToken.json().actor, 'admin-1');
    assert.equal(viaJwt.json().actor, 'oidc:idp.hospital.example:admin-1');
    // A token name cannot take the OIDC form (it cannot contain ':').
    await assert.rejects(auth.createToken('oidc:idp.hospital.example:admin-1', 'auditor', { actor: 'setup', role: 'operator' }), (e: unknown) => (e as { code?: string }).code === 'VALIDATION_FAILED');
  });

  it('refuses a JWT signed by another key', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'x', custos_role: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .sign(privateKey);
    const r = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${forged}` } });
    assert.equal(r.statusCode, 401);
  });

  it('applies the role table to the JWT role', async () => {
    const jwt = await sign({ sub: 'nurse-1', custos_role: 'nurse' });
    const r = await app.inject({ method: 'POST', url: '/api/v1/consents', headers: { authorization: `Bearer ${jwt}` }, payload: {} });
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.code, 'FORBIDDEN');
  });
});
