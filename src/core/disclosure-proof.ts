/**
 * The offline check of an accounting of disclosures (service/disclosures.ts), with only the log's
 * key: the checkpoint is a signed note of that key for the report's origin; each line's entry
 * hashes (RFC 9162 leaf: SHA-256(0x00 || entry)) to its leaf hash; its inclusion proof leads from
 * that hash to the checkpoint's root; and the fields the line shows (time, type, actor, role,
 * purpose) are the entry's. The audit entry of the query is checked the same way.
 *
 * Pure: the report is read from `unknown` (an attacker may have written it), numbers defensively.
 * @module
 */
import * as v from 'valibot';
import { ValidationError, VerificationError } from './errors.js';
import { bytesEqual, hashLeaf, parseHashHex } from './hash.js';
import { openCheckpoint } from './checkpoint.js';
import { verifyInclusion } from './merkle/inclusion.js';
import type { NoteVerifier } from './note.js';

const HEX64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const INDEX = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const PROOF = v.object({ treeSize: v.pipe(v.number(), v.safeInteger(), v.minValue(1)), hashes: v.pipe(v.array(HEX64), v.maxLength(64)) });
const PROVED = { index: INDEX, leafHash: HEX64, entry: v.pipe(v.string(), v.maxLength(70_000)), proof: PROOF };
const SHOWN = v.nullable(v.string());
const REPORT = v.object({
  schema: v.literal('custos/disclosures/v1'),
  log: v.object({ origin: v.string(), checkpoint: v.pipe(v.string(), v.maxLength(65_536)) }),
  query: v.object(PROVED),
  lines: v.array(v.object({ ...PROVED, time: v.string(), type: v.string(), actor: SHOWN, role: SHOWN, purpose: SHOWN })),
});

/** What {@link verifyDisclosureReport} checked. */
export interface DisclosureReportCheck {
  readonly origin: string;
  readonly treeSize: number;
  readonly lines: number;
}

/**
 * Checks a report (parsed JSON) against the log's key; returns what it checked, or throws at the
 * first failure naming the line.
 * @throws {ValidationError} VALIDATION_FAILED when it is not a report
 * @throws {VerificationError} CHECKPOINT_SIGNATURE_INVALID, LEAF_HASH_MISMATCH, INCLUSION_PROOF_INVALID, STATEMENT_MISMATCH
 */
export function verifyDisclosureReport(report: unknown, verifiers: readonly NoteVerifier[]): DisclosureReportCheck {
  const parsed = v.safeParse(REPORT, report);
  if (!parsed.success) {
    const issues = parsed.issues.map((i) => ({ path: v.getDotPath(i) ?? '$', message: i.message }));
    throw new ValidationError('VALIDATION_FAILED', `not an accounting of disclosures: ${issues[0]?.path}: ${issues[0]?.message}`, { issues });
  }
  const r = parsed.output;
  let cp;
  try {
    cp = openCheckpoint(r.log.checkpoint, verifiers, r.log.origin);
  } catch (err) {
    throw new VerificationError('CHECKPOINT_SIGNATURE_INVALID', `the report's checkpoint does not verify under the given key for ${r.log.origin} (${(err as Error).message})`, { cause: err });
  }
  const check = (x: v.InferOutput<typeof REPORT>['query'], what: string) => {
    const leaf = hashLeaf(Buffer.from(x.entry, 'utf8'));
    if (!bytesEqual(leaf, parseHashHex(x.leafHash))) throw new VerificationError('LEAF_HASH_MISMATCH', `${what}: the entry does not hash to its leaf hash`, { details: { index: x.index } });
    if (x.proof.treeSize !== cp.treeSize)
      throw new VerificationError('INCLUSION_PROOF_INVALID', `${what}: proved against size ${x.proof.treeSize}, the checkpoint is ${cp.treeSize}`, { details: { index: x.index } });
    try {
      verifyInclusion(
        x.index,
        cp.treeSize,
        leaf,
        x.proof.hashes.map((h) => parseHashHex(h)),
        cp.rootHash,
      );
    } catch (err) {
      throw new VerificationError('INCLUSION_PROOF_INVALID', `${what}: the inclusion proof does not lead to the checkpoint's root`, { details: { index: x.index }, cause: err });
    }
  };
  check(r.query, `the query's audit entry ${r.query.index}`);
  for (const l of r.lines) {
    check(l, `line ${l.index}`);
    // What the line shows is what the entry says.
    let e: { time?: unknown; type?: unknown; payload?: Record<string, unknown> };
    try {
      e = JSON.parse(l.entry) as typeof e;
    } catch {
      throw new VerificationError('STATEMENT_MISMATCH', `line ${l.index}: the entry is not JSON`, { details: { index: l.index } });
    }
    const p = e.payload ?? {};
    const str = (x: unknown) => (typeof x === 'string' ? x : null);
    const shown: [string, unknown, unknown][] = [
      ['time', l.time, e.time],
      ['type', l.type, e.type],
      ['actor', l.actor, str(p['actor'])],
      ['role', l.role, str(p['role'])],
      ['purpose', l.purpose, str(p['purpose'])],
    ];
    for (const [field, a, b] of shown) {
      if (a !== b) throw new VerificationError('STATEMENT_MISMATCH', `line ${l.index}: ${field} is not the entry's`, { details: { index: l.index, field } });
    }
  }
  return { origin: r.log.origin, treeSize: cp.treeSize, lines: r.lines.length };
}
