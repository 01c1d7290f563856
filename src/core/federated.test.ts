/**
 * Federated learning, the pure part: the exact bytes of the signed update message, signatures made
 * by a second Ed25519 implementation (@noble/curves) with the RFC 8032 §7.1 TEST 1 key checked by
 * ours, every field of the message bound, and the zCDP accountant against figures worked by hand.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import * as v from 'valibot';
import {
  FL_MAX_DELTA,
  FL_MAX_ORIGIN_LENGTH,
  FL_ROUND,
  FL_UPDATE_DOMAIN,
  accountRound,
  deltaAgrees,
  epsilonAgrees,
  epsilonOfRho,
  flUpdateMessage,
  isFlOrigin,
  roundRho,
  verifyFlUpdateSignature,
} from './federated.js';

// RFC 8032 §7.1, TEST 1.
const SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const PUB = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
const D = 'ab'.repeat(32);

const O = 'hospital.example/custos-log';

describe('flUpdateMessage', () => {
  it('is six newline-terminated lines: the domain, log origin, line, round, site and update', () => {
    assert.equal(flUpdateMessage(O, 'derm-line', 12, 'site-a', D).toString('utf8'), `custos-fl-update-v2\nlog=${O}\nline=derm-line\nround=12\nsite=site-a\nupdate=${D}\n`);
    assert.equal(FL_UPDATE_DOMAIN, 'custos-fl-update-v2');
  });
  it('refuses fields that could break the framing', () => {
    assert.throws(() => flUpdateMessage(O, 'a\nb', 1, 'site-a', D), TypeError);
    assert.throws(() => flUpdateMessage(O, 'line', 0, 'site-a', D), TypeError);
    assert.throws(() => flUpdateMessage(O, 'line', 1.5, 'site-a', D), TypeError);
    assert.throws(() => flUpdateMessage(O, 'line', 1, 'Site=A', D), TypeError);
    assert.throws(() => flUpdateMessage(O, 'line', 1, 'site-a', D.toUpperCase()), TypeError);
    assert.throws(() => flUpdateMessage(`${O}\nline=x`, 'line', 1, 'site-a', D), TypeError);
    assert.throws(() => flUpdateMessage('', 'line', 1, 'site-a', D), TypeError);
    assert.throws(() => flUpdateMessage('o'.repeat(FL_MAX_ORIGIN_LENGTH + 1), 'line', 1, 'site-a', D), TypeError);
  });
  it('isFlOrigin: one non-empty line of at most 255 characters', () => {
    assert.equal(isFlOrigin(O), true);
    assert.equal(isFlOrigin('o'.repeat(FL_MAX_ORIGIN_LENGTH)), true);
    assert.equal(isFlOrigin(''), false);
    assert.equal(isFlOrigin('a\n'), false);
  });
});

describe('verifyFlUpdateSignature', () => {
  const key = PUB.toString('base64');
  // Signed by @noble/curves over the message written out by hand (not through flUpdateMessage).
  const text = `custos-fl-update-v2\nlog=${O}\nline=derm-line\nround=3\nsite=site-a\nupdate=${D}\n`;
  const sig = Buffer.from(ed25519.sign(Buffer.from(text, 'utf8'), SEED)).toString('base64');

  it('the RFC 8032 TEST 1 key pair is what @noble/curves derives', () => {
    assert.deepEqual(Buffer.from(ed25519.getPublicKey(SEED)), PUB);
  });
  it('accepts the signature of another implementation', () => {
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-a', D, sig), true);
  });
  it('binds the log, the line, the round, the site and the update', () => {
    assert.equal(verifyFlUpdateSignature(key, 'other.example/custos-log', 'derm-line', 3, 'site-a', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, O, 'other-line', 3, 'site-a', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 4, 'site-a', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-b', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-a', 'cd'.repeat(32), sig), false);
  });
  it("refuses a signature over another log's origin (a replay from another deployment)", () => {
    const other = `custos-fl-update-v2\nlog=other.example/custos-log\nline=derm-line\nround=3\nsite=site-a\nupdate=${D}\n`;
    const replay = Buffer.from(ed25519.sign(Buffer.from(other, 'utf8'), SEED)).toString('base64');
    assert.equal(verifyFlUpdateSignature(key, 'other.example/custos-log', 'derm-line', 3, 'site-a', D, replay), true);
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-a', D, replay), false);
  });
  it('refuses a v1 signature (the message without the log) over the same fields', () => {
    const v1 = `custos-fl-update-v1\nline=derm-line\nround=3\nsite=site-a\nupdate=${D}\n`;
    const old = Buffer.from(ed25519.sign(Buffer.from(v1, 'utf8'), SEED)).toString('base64');
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-a', D, old), false);
  });
  it('is domain-separated: the same fields without the domain line do not verify', () => {
    const bare = Buffer.from(ed25519.sign(Buffer.from(text.slice(FL_UPDATE_DOMAIN.length + 1), 'utf8'), SEED)).toString('base64');
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-a', D, bare), false);
  });
  it('never throws on a malformed key, signature or origin', () => {
    assert.equal(verifyFlUpdateSignature('not base64', O, 'derm-line', 3, 'site-a', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, O, 'derm-line', 3, 'site-a', D, 'AAAA'), false);
    assert.equal(verifyFlUpdateSignature(Buffer.alloc(32).toString('base64'), O, 'derm-line', 3, 'site-a', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, O, 'BAD LINE', 3, 'site-a', D, sig), false);
    assert.equal(verifyFlUpdateSignature(key, `${O}\n`, 'derm-line', 3, 'site-a', D, sig), false);
  });
});

describe('the zCDP accountant', () => {
  it('ρ = 1/(2σ²) per round; ε = ρ + 2√(ρ ln(1/δ))', () => {
    assert.equal(roundRho(1), 0.5);
    assert.equal(roundRho(2), 0.125);
    // ρ = 0.5, δ = e^-2: ε = 0.5 + 2·√(0.5·2) = 2.5
    assert.ok(Math.abs(epsilonOfRho(0.5, Math.exp(-2)) - 2.5) < 1e-12);
  });
  it('composes rounds by adding ρ: four rounds at σ = 2 are one round at σ = 1', () => {
    let rho = 0;
    let last = { rho: 0, rhoTotal: 0, epsilon: 0 };
    for (let i = 0; i < 4; i++) {
      last = accountRound(rho, { clipNorm: 1, noiseMultiplier: 2, delta: 1e-5 });
      rho = last.rhoTotal;
    }
    assert.equal(last.rho, 0.125);
    assert.equal(last.rhoTotal, 0.5);
    assert.equal(last.epsilon, accountRound(0, { clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 }).epsilon);
  });
  it('a stated ε agrees within floating-point noise only', () => {
    const e = accountRound(0, { clipNorm: 1, noiseMultiplier: 1.1, delta: 1e-5 }).epsilon;
    assert.equal(epsilonAgrees(e, e), true);
    assert.equal(epsilonAgrees(e * (1 + 1e-12), e), true);
    assert.equal(epsilonAgrees(e * 0.999, e), false);
  });
});

describe('the line\u2019s δ', () => {
  it('is capped at FL_MAX_DELTA = 0.01 (the round file schema accepts it, not above)', () => {
    assert.equal(FL_MAX_DELTA, 0.01);
    const ok = { line: 'l', round: 1, aggregation: 'fedavg', sites: [{ site: 'a', update: D, signature: `${'A'.repeat(86)}==` }], globalModel: D };
    assert.equal(v.safeParse(FL_ROUND, { ...ok, dp: { clipNorm: 1, noiseMultiplier: 1, delta: 0.01 } }).success, true);
    assert.equal(v.safeParse(FL_ROUND, { ...ok, dp: { clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 } }).success, true);
  });
  it('is fixed by the first DP round: any other δ disagrees; before it, any does', () => {
    assert.equal(deltaAgrees(undefined, 0.01), true);
    assert.equal(deltaAgrees(1e-5, 1e-5), true);
    assert.equal(deltaAgrees(1e-5, 1e-3), false);
    assert.equal(deltaAgrees(1e-5, 1e-9), false);
    // Why: at one ρ, a larger δ reports a smaller ε.
    assert.ok(epsilonOfRho(1, 1e-2) < epsilonOfRho(1, 1e-5));
  });
});

describe('FL_ROUND (the round file schema)', () => {
  const ok = { line: 'l', round: 1, aggregation: 'fedavg', sites: [{ site: 'a', update: D, signature: `${'A'.repeat(86)}==` }], globalModel: D };
  it('accepts a minimal round', () => assert.equal(v.safeParse(FL_ROUND, ok).success, true));
  it('refuses a site twice, a final round without a version, a version without final, an unknown aggregation, a field it does not know', () => {
    for (const bad of [
      { ...ok, sites: [ok.sites[0], ok.sites[0]] },
      { ...ok, final: true },
      { ...ok, version: { model: 'm', version: '1' } },
      { ...ok, aggregation: 'magic' },
      { ...ok, note: 'free text' },
      { ...ok, dp: { clipNorm: 1, noiseMultiplier: 1, delta: 1 } },
      { ...ok, dp: { clipNorm: 1, noiseMultiplier: 1, delta: 0.5 } },
      { ...ok, dp: { clipNorm: 1, noiseMultiplier: 1, delta: 0.010001 } },
      { ...ok, dp: { clipNorm: 1, noiseMultiplier: 1, delta: 0 } },
      { ...ok, round: 0 },
    ]) {
      assert.equal(v.safeParse(FL_ROUND, bad).success, false, JSON.stringify(bad));
    }
  });
});
