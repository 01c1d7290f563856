/**
 * Builds a ledger in the reference notebook's format in TypeScript (for unit tests that do not
 * spawn python3): lines written like its `json.dumps(obj, ensure_ascii=False)` (`, ` and `: `
 * separators, insertion order), hashes like its `LocalLedger.append`, through src/core/python-json.ts.
 * The end-to-end tests use ledgers written by the reference's own code instead.
 */
import { createHash } from 'node:crypto';
import { PyDict, PyFloat, PyInt, pyFloatRepr, pyStringLiteral, pythonStableDumps, type PyValue } from '../../src/core/python-json.js';

/** A plain value, with integers as bigint or number (integral) and floats marked with {@link float}. */
export type Plain = null | boolean | string | number | bigint | PyFloat | Plain[] | { [k: string]: Plain };

/** A float (Python's), e.g. float(1) is written 1.0. */
export const float = (x: number): PyFloat => new PyFloat(x);

export function toPy(v: Plain): PyValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return new PyInt(v);
  if (typeof v === 'number') return Number.isInteger(v) ? new PyInt(BigInt(v)) : new PyFloat(v);
  if (v instanceof PyFloat) return v;
  if (Array.isArray(v)) return v.map(toPy);
  return new PyDict(new Map(Object.entries(v).map(([k, x]) => [k, toPy(x)])));
}

/** `json.dumps(value, ensure_ascii=False)`: default separators, insertion order. */
export function pyDumpsDefault(v: PyValue): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'string') return pyStringLiteral(v);
  if (v instanceof PyInt) return v.value.toString();
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (Array.isArray(v)) return `[${v.map(pyDumpsDefault).join(', ')}]`;
  return `{${[...v.entries].map(([k, x]) => `${pyStringLiteral(k)}: ${pyDumpsDefault(x)}`).join(', ')}}`;
}

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** The reference's hash of a value (`sha256_text(stable_json_dumps(v))`). */
export const referenceHash = (v: Plain): string => sha(pythonStableDumps(toPy(v)));

export interface BuiltLedger {
  readonly text: string;
  readonly lines: string[];
  readonly policies: Map<string, Buffer>;
  readonly manifests: Map<string, Buffer>;
  readonly head: string;
}

/**
 * A ledger with its genesis, then `events` appended as LocalLedger.append does. A CONSENT_CREATED
 * stores its policy (`policy` in the event, the rest of the payload derived), an INFERENCE_EXECUTED
 * its manifest (`manifest`).
 */
export function buildLedger(
  events: readonly { type: string; payload: Record<string, Plain>; policy?: Record<string, Plain>; manifest?: Record<string, Plain> }[],
  t0 = 1_700_000_000_000,
): BuiltLedger {
  const lines = [pyDumpsDefault(toPy({ genesis: true, created_at_ms: t0 }))];
  const policies = new Map<string, Buffer>();
  const manifests = new Map<string, Buffer>();
  let prev = '0'.repeat(64);
  events.forEach((e, i) => {
    const payload = { ...e.payload };
    if (e.policy) {
      const text = pythonStableDumps(toPy(e.policy));
      policies.set(String(e.policy['policy_id']), Buffer.from(text, 'utf8'));
      payload[e.type === 'CONSENT_REVOKED' ? 'new_policy_hash' : 'policy_hash'] = sha(text);
    }
    if (e.manifest) {
      const text = pythonStableDumps(toPy(e.manifest));
      manifests.set(`repro_${String(e.manifest['event_id'])}`, Buffer.from(text, 'utf8'));
      payload['repro_manifest_hash'] = sha(text);
    }
    const body = { entry_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, timestamp_ms: t0 + i + 1, event_type: e.type, payload, prev_hash: prev };
    const entryHash = sha(prev + pythonStableDumps(toPy(body)));
    lines.push(pyDumpsDefault(toPy({ ...body, entry_hash: entryHash })));
    prev = entryHash;
  });
  return { text: `${lines.join('\n')}\n`, lines, policies, manifests, head: prev };
}

/** A small ledger with one of each event the reference writes, a non-ASCII subject and floats. */
export function sampleLedger(t0?: number): BuiltLedger {
  const policy = {
    policy_id: 'consent_001',
    subject_id: 'patient_Zoë_😀',
    allowed_purposes: ['clinical_care'],
    allowed_roles: ['dermatologist'],
    valid_from_ms: 1,
    valid_until_ms: null,
    revocable: true,
    revoked: false,
    version: 1,
  };
  const manifest = { event_id: 'ev-1', created_at_ms: 5, input_artifact_uri: 's3://b/patient_Zoë_😀/img.jpg', input_artifact_hash: 'a'.repeat(64), purpose: 'clinical_care' };
  return buildLedger(
    [
      { type: 'CONSENT_CREATED', payload: { policy_id: 'consent_001', subject_id: 'patient_Zoë_😀', version: 1, valid_from_ms: 1, valid_until_ms: null, revocable: true }, policy },
      { type: 'DATA_ACCESSED', payload: { actor_id: 'user_42', actor_role: 'dermatologist', purpose: 'clinical_care', artifact_uri: 's3://b/patient_Zoë_😀/img.jpg', artifact_hash: 'a'.repeat(64) } },
      {
        type: 'INFERENCE_EXECUTED',
        payload: {
          event_id: 'ev-1',
          consent_policy_id: 'consent_001',
          input_artifact_uri: 's3://b/patient_Zoë_😀/img.jpg',
          output_artifact_uris: { report_json: 's3://b/r.json' },
          output_artifact_hashes: { report_json: 'b'.repeat(64) },
        },
        manifest,
      },
      { type: 'CALIBRATION_RECORDED', payload: { lr: float(1e-5), scale: float(1), max: float(1e16), count: 12345678901234567890n } },
      { type: 'CONSENT_REVOKED', payload: { policy_id: 'consent_001', actor_id: 'admin' }, policy: { ...policy, revoked: true, version: 2 } },
    ],
    t0,
  );
}
