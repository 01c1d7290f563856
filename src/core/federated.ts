/**
 * Federated learning rounds (issue 14), the pure part: the identifiers of sites and model lines, the
 * message a site signs over its update, the check of that signature, the round file's schema, and
 * the differential-privacy accountant of a line.
 *
 * A site holds its own Ed25519 key (a C2SP signed-note key named after the site, see note.ts). For
 * each round it signs {@link flUpdateMessage}: a domain-separated text naming the log (its checkpoint
 * origin), the model line, the round, the site and the SHA-256 digest of its update, so a signature
 * can never be replayed in another log, another round, another line, for another site, or as any
 * other Custos signature.
 *
 * The accountant is zero-concentrated DP (Bun & Steinke 2016): a round that clips each site's update
 * to L2 norm C and adds Gaussian noise of standard deviation σ·C to the sum is ρ-zCDP with
 * ρ = 1/(2σ²) (Prop. 1.6: sensitivity C, one site added or removed); rounds compose by adding ρ
 * (Lemma 1.7); and ρ-zCDP gives (ε, δ)-DP for every δ > 0 with ε = ρ + 2·√(ρ·ln(1/δ)) (Prop. 1.3).
 * No amplification by sampling is claimed, so the bound is conservative. docs/federated.md.
 * @module
 */
import * as v from 'valibot';
import { canonicalJson } from './canonical-json.js';
import { ed25519Verifier } from './crypto.js';
import { fromBase64Strict } from './hash.js';
import { SHA256_HEX } from './schema/parse.js';

/** A site id and a model line: lowercase identifiers (a site id is also its key's name). */
export const FL_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The name and version of the model a line ends in, as they go on the log. */
export const FL_MODEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const FL_MODEL_VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/;
/** An Ed25519 public key on the log: 32 bytes, standard base64 with padding. */
export const FL_PUBLIC_KEY_RE = /^[A-Za-z0-9+/]{43}=$/;
/** An Ed25519 signature on the log: 64 bytes, standard base64 with padding. */
export const FL_SIGNATURE_RE = /^[A-Za-z0-9+/]{86}==$/;

/** Aggregation methods a round may name (codes; the server does not run them, it records them). */
export const FL_AGGREGATIONS = ['fedavg', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad', 'scaffold', 'trimmed-mean', 'median', 'krum'] as const;
export type FlAggregation = (typeof FL_AGGREGATIONS)[number];

/**
 * Why a round was refused (FL_ROUND_REFUSED `reason`, and the error code the caller gets):
 * - `FL_LINE_CLOSED`: the line already ended in a final round;
 * - `FL_ROUND_OUT_OF_ORDER`: the round number is not above the line's last recorded round;
 * - `FL_SITE_UNKNOWN`: a participating site was never registered;
 * - `FL_SITE_INACTIVE`: a participating site is retired (its FL_SITE_RETIRED event is on the log);
 * - `FL_SIGNATURE_INVALID`: a site's signature over its update does not verify under its key;
 * - `FL_DP_MISMATCH`: the line's rounds are differentially private and this one is not, or the reverse,
 *   or it states another δ than the line's (fixed by its first DP round);
 * - `FL_DP_ACCOUNTING_MISMATCH`: the round states a running ε that is not the accountant's.
 */
export const FL_REFUSAL_REASONS = ['FL_LINE_CLOSED', 'FL_ROUND_OUT_OF_ORDER', 'FL_SITE_UNKNOWN', 'FL_SITE_INACTIVE', 'FL_SIGNATURE_INVALID', 'FL_DP_MISMATCH', 'FL_DP_ACCOUNTING_MISMATCH'] as const;
export type FlRefusalReason = (typeof FL_REFUSAL_REASONS)[number];

/**
 * The first line of every signed update message: the domain separator (and its version). v2 names
 * the log; v1 (`custos-fl-update-v1`, without the `log=` line) is no longer accepted for any round.
 */
export const FL_UPDATE_DOMAIN = 'custos-fl-update-v2';

/** The largest model spec a final round carries (canonical JSON). */
export const FL_MAX_SPEC_BYTES = 65_536;

/** At most this many sites take part in one round. */
export const FL_MAX_SITES = 1000;

/**
 * The exact bytes a site signs for its update in round `round` of `line` on the log whose checkpoint
 * origin is `origin`: six lines, each ending in a newline,
 * ```
 * custos-fl-update-v2
 * log=<origin: the log's checkpoint origin line, exactly as in its checkpoints>
 * line=<line>
 * round=<round, decimal, no leading zeros>
 * site=<site>
 * update=<SHA-256 of the update, 64 lowercase hex>
 * ```
 * The origin cannot hold a newline and the identifiers cannot hold a newline or `=`, so the message
 * parses one way only. Naming the log stops a site enrolled with two Custos deployments under the
 * same line name from having its signature replayed from one log's round into the other's.
 * @throws {TypeError} when an argument breaks its pattern (callers validate first)
 */
export function flUpdateMessage(origin: string, line: string, round: number, site: string, updateDigestHex: string): Buffer {
  if (!isFlOrigin(origin)) throw new TypeError('flUpdateMessage: the log origin must be a non-empty line (no newline) of at most 255 characters');
  if (!FL_ID_RE.test(line) || !FL_ID_RE.test(site) || !Number.isSafeInteger(round) || round < 1 || !/^[0-9a-f]{64}$/.test(updateDigestHex)) {
    throw new TypeError('flUpdateMessage: line and site must be lowercase identifiers, round an integer >= 1, the digest 64 lowercase hex');
  }
  return Buffer.from(`${FL_UPDATE_DOMAIN}\nlog=${origin}\nline=${line}\nround=${round}\nsite=${site}\nupdate=${updateDigestHex}\n`, 'utf8');
}

/** The longest log origin a signed update message names (a checkpoint origin is one short line). */
export const FL_MAX_ORIGIN_LENGTH = 255;

/** Whether `origin` can be the `log=` line of {@link flUpdateMessage}: non-empty, no newline, at most 255 characters. */
export function isFlOrigin(origin: string): boolean {
  return typeof origin === 'string' && origin.length > 0 && origin.length <= FL_MAX_ORIGIN_LENGTH && !origin.includes('\n');
}

/**
 * Whether `signatureB64` is a valid Ed25519 signature of {@link flUpdateMessage} (v2, naming the log
 * `origin`) under the site's public key (32 bytes, base64). Never throws: a malformed key, signature
 * or origin does not verify.
 */
export function verifyFlUpdateSignature(publicKeyB64: string, origin: string, line: string, round: number, site: string, updateDigestHex: string, signatureB64: string): boolean {
  try {
    const key = fromBase64Strict(publicKeyB64);
    const sig = fromBase64Strict(signatureB64);
    if (key?.length !== 32 || sig?.length !== 64) return false;
    return ed25519Verifier(key).verify(flUpdateMessage(origin, line, round, site, updateDigestHex), sig);
  } catch {
    return false;
  }
}

// ---- differential privacy ---------------------------------------------------------------------

/** The DP parameters a round states: clip norm C, noise multiplier σ, δ, and optionally its claimed running ε. */
export interface FlDpParams {
  readonly clipNorm: number;
  readonly noiseMultiplier: number;
  readonly delta: number;
  readonly epsilon?: number | undefined;
}

/** The accountant's figures for a round: its ρ, the line's running ρ, and the running ε at the round's δ. */
export interface FlDpAccount {
  readonly rho: number;
  readonly rhoTotal: number;
  readonly epsilon: number;
}

/** ρ of one Gaussian round with noise multiplier σ: 1/(2σ²) (zCDP). */
export function roundRho(noiseMultiplier: number): number {
  return 1 / (2 * noiseMultiplier * noiseMultiplier);
}

/**
 * The largest δ a round may state. ε is reported at the line's δ; a large δ (say 0.5) makes the
 * reported ε small while the guarantee is void (δ is the probability that it fails outright).
 */
export const FL_MAX_DELTA = 0.01;

/**
 * Whether a round's δ agrees with its line's: the δ of the line's first DP round (undefined before
 * it) fixes the δ at which the running ε is reported, for every later round. Equal as numbers
 * (the round files state them; no arithmetic is involved).
 */
export function deltaAgrees(lineDelta: number | undefined, delta: number): boolean {
  return lineDelta === undefined || lineDelta === delta;
}

/** ε of ρ-zCDP at δ: ρ + 2·√(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3). */
export function epsilonOfRho(rho: number, delta: number): number {
  return rho + 2 * Math.sqrt(rho * Math.log(1 / delta));
}

/**
 * The accountant after one more round: `rhoBefore` is the line's running ρ over its earlier rounds
 * (0 for the first), summed in log order. ε is at `dp.delta`, which the service holds to the
 * line's δ ({@link deltaAgrees}).
 */
export function accountRound(rhoBefore: number, dp: FlDpParams): FlDpAccount {
  const rho = roundRho(dp.noiseMultiplier);
  const rhoTotal = rhoBefore + rho;
  return { rho, rhoTotal, epsilon: epsilonOfRho(rhoTotal, dp.delta) };
}

/** How far a stated ε may be from the accountant's (relative): floating-point noise, not a budget. */
export const FL_EPSILON_TOLERANCE = 1e-9;

/** Whether a stated running ε agrees with the accountant's. */
export function epsilonAgrees(stated: number, computed: number): boolean {
  return Math.abs(stated - computed) <= FL_EPSILON_TOLERANCE * Math.max(1, Math.abs(computed));
}

// ---- schemas ---------------------------------------------------------------------------------

export const FL_ID = v.pipe(v.string(), v.regex(FL_ID_RE, 'expected a lowercase identifier (a-z, 0-9, . _ -; at most 64)'));
const POSITIVE = (what: string) =>
  v.pipe(v.number(`${what} must be a number`), v.finite(`${what} must be finite`), v.gtValue(0, `${what} must be > 0`), v.maxValue(1e6, `${what} must be at most 10^6`));

/** The DP parameters of a round. */
export const FL_DP = v.strictObject({
  clipNorm: POSITIVE('clipNorm'),
  noiseMultiplier: v.pipe(POSITIVE('noiseMultiplier'), v.minValue(0.01, 'noiseMultiplier must be at least 0.01')),
  delta: v.pipe(v.number('delta must be a number'), v.gtValue(0, 'delta must be > 0'), v.maxValue(FL_MAX_DELTA, `delta must be at most ${FL_MAX_DELTA}`)),
  epsilon: v.optional(v.pipe(v.number('epsilon must be a number'), v.finite(), v.minValue(0))),
});

/** One participating site of a round: its id, the digest of its update, its signature. */
export const FL_SITE_UPDATE = v.strictObject({
  site: FL_ID,
  update: SHA256_HEX,
  signature: v.pipe(v.string(), v.regex(FL_SIGNATURE_RE, 'expected an Ed25519 signature, 64 bytes in base64')),
});

/** The model version a final round produces (its weights digest is the round's global model). */
export const FL_VERSION = v.strictObject({
  model: v.pipe(v.string(), v.regex(FL_MODEL_NAME_RE, 'expected a model name (letters, digits, . _ -; at most 64)')),
  version: v.pipe(v.string(), v.regex(FL_MODEL_VERSION_RE, 'expected a version (letters, digits, . + _ -; at most 64)')),
  /** The model spec document (stored off-ledger, its hash on the log): framework, parameters... */
  spec: v.optional(
    v.pipe(
      v.record(v.string(), v.unknown()),
      v.check((o) => canonicalJson(o).length <= FL_MAX_SPEC_BYTES, 'the model spec is larger than 64 KiB of canonical JSON'),
    ),
  ),
});

/** A round file (`custos fl round FILE`, POST /api/v1/fl/rounds). */
export const FL_ROUND = v.pipe(
  v.strictObject({
    line: FL_ID,
    round: v.pipe(v.number('round must be a number'), v.safeInteger('round must be an integer'), v.minValue(1, 'round must be >= 1')),
    aggregation: v.picklist(FL_AGGREGATIONS, `aggregation must be one of ${FL_AGGREGATIONS.join(', ')}`),
    sites: v.pipe(v.array(FL_SITE_UPDATE), v.minLength(1, 'a round needs at least one site'), v.maxLength(FL_MAX_SITES)),
    globalModel: SHA256_HEX,
    dp: v.optional(FL_DP),
    final: v.optional(v.boolean()),
    version: v.optional(FL_VERSION),
  }),
  v.check((r) => new Set(r.sites.map((s) => s.site)).size === r.sites.length, 'a site appears twice in the round'),
  v.check((r) => (r.final === true) === (r.version !== undefined), 'a final round (final: true) names its version, and only a final round does'),
);
export type FlRoundInput = v.InferOutput<typeof FL_ROUND>;

/** A site registration: its id and its verifier key (`site+keyid+base64`, the C2SP note format, named after the site). */
export const FL_SITE = v.strictObject({
  site: FL_ID,
  key: v.pipe(v.string(), v.maxLength(200), v.regex(/^[a-z0-9][a-z0-9._-]{0,63}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/, 'expected a verifier key: site+keyid+base64 (custos fl site keygen)')),
});
export type FlSiteInput = v.InferOutput<typeof FL_SITE>;
