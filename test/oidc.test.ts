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
  let sign: (claims: Record<string, unknown>, opts?: { issuer?: string; audience?: string; expires?: string }) => Promise<string>;
  const issuer = 'https://idp.hospital.example';
  const audience = 'custos';

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
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

  it('accepts a JWT from the configured issuer: the subject is the actor, the claim is the role', async () => {
    const jwt = await sign({ sub: 'dr-okafor', custos_role: 'privacy_officer' });
    const me = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(me.statusCode, 200, me.body);
    assert.equal(me.json().actor, 'dr-okafor');
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
    assert.equal(payload.actor, 'dr-okafor');
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

  it('refuses a JWT signed by another key', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'x', custos_role: 'admin' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(issuer).setAudience(audience).setExpirationTime('5m').sign(privateKey);
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
