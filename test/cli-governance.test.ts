/**
 * End-to-end tests of the governance commands of the `custos` command line: consent create, check,
 * revoke and show, access, infer, receipt, train, erase, tamper-check and demo. Every run is the
 * built CLI, run in this process (`callCli`, the `run()` that bin/custos.js calls), against a data
 * directory in a fresh temporary directory.
 *
 * Besides exit codes, JSON shapes and the one-line `custos: <CODE>: ...` errors, the tests check the
 * overlay's invariants from the outside: every attempt under consent leaves exactly one event
 * (executed or CONSENT_DENIED), invalid input writes nothing (entries, documents, commitments and
 * state rows unchanged), and no subject id or artifact URI ever reaches the log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pid } from './helpers/policy-ids.js';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '../src/core/canonical-json.js';
import { assertError, assertOk, ensureBuilt, EXIT, makeTempDir, okJson, parseJson, registerSecret, callCli, callIn, type CliResult } from './helpers/cli.js';

// ---------------------------------------------------------------------------------------------
// Fixtures and small helpers

/** ConsentError exit code (not in the shared helper's table). */
const EXIT_CONSENT = 7;

const sha256Hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const HEX64 = /^[0-9a-f]{64}$/;

const OFFICER = ['--actor', 'privacy-officer-1', '--actor-role', 'privacy_officer'] as const;
const DERM = ['--actor', 'user_42', '--actor-role', 'dermatologist'] as const;
const NURSE = ['--actor', 'nurse-9', '--actor-role', 'nurse'] as const;
const ENGINEER = ['--actor', 'eng-7', '--actor-role', 'ml_engineer'] as const;
/** `custos receipt N` is sealed; these open its URIs (and log PATIENT_DATA_OPENED). */
const OPEN = ['--open', '--purpose', 'TREAT', ...OFFICER] as const;

// Identifiers that must never appear on the log.
const SUBJECT = 'patient-pseudo-7f3a9c';
const SUBJECT_FILE = 'patient-pseudo-b81e22';
const SUBJECT_OTHER = 'patient-pseudo-0c4d51';
const ACCESS_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit1/image1.jpg';
const DENIED_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit1/image2.jpg';
const INPUT_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit1/dermoscopy.png';
const REPORT_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit1/report.json';
const MASK_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit1/mask@v2.png'; // an '@' inside the URI
const DENIED_INPUT_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit2/dermoscopy.png';
const DENIED_OUTPUT_URI = 's3://clinic-bucket/patient-pseudo-7f3a9c/visit2/report.json';
const DATASET_URI = 's3://clinic-bucket/synthetic/lesions-v1.parquet';
const BAD_DATASET_URI = 's3://clinic-bucket/identified/patients-raw.parquet';
const ALL_IDENTIFIERS = [SUBJECT, SUBJECT_FILE, SUBJECT_OTHER, ACCESS_URI, DENIED_URI, INPUT_URI, REPORT_URI, MASK_URI, DENIED_INPUT_URI, DENIED_OUTPUT_URI, DATASET_URI, BAD_DATASET_URI];

const D_IMAGE = sha256Hex('image1 bytes');
const D_INPUT = sha256Hex('dermoscopy bytes');
const D_REPORT = sha256Hex('report bytes');
const D_MASK = sha256Hex('mask bytes');
const D_DATASET = sha256Hex('synthetic dataset bytes');

const MODEL = { modelName: 'lesion_classifier', modelVersion: '0.9.3', weightsHash: sha256Hex('weights 0.9.3'), framework: 'pytorch' };
const MODEL_AFTER = { ...MODEL, modelVersion: '0.9.4', weightsHash: sha256Hex('weights 0.9.4') };
const PIPELINE = { pipelineName: 'derm-preprocess', pipelineVersion: '1.2.0', parameters: { resize: 224 }, dependencies: { torch: '2.4.0' } };
const TRAINING_MANIFEST = { name: 'finetune-lesion-0.9.4', learningRate: 0.0001, epochs: 3, seed: 7 };

interface EventJson {
  index: number;
  leafHash: string;
  treeSize: number;
  rootHash: string;
}
interface DecisionJson {
  effect: 'permit' | 'deny';
  reason: string;
  policyId: string;
  policyVersion: number | null;
  policyHash: string | null;
  explanation: string;
}
interface PolicyJson {
  schema: string;
  policyId: string;
  version: number;
  subject: string;
  revocable: boolean;
  revoked: boolean;
  period: { start: string; end?: string };
  provision: { type: string; purposes?: string[]; roles?: string[]; provisions?: unknown[] };
  previous: string | null;
  recordedAt: string;
  recordedBy: { actor: string; role: string };
}
interface CreateJson {
  policy: PolicyJson;
  hash: string;
  event: EventJson;
}
interface ReceiptDoc {
  schema: string;
  event: { index: number; time: string };
  actor: string;
  role: string;
  purpose: string;
  consent: { policyId: string; version: number; policyHash: string };
  input: { uri: string; digest: string };
  outputs: { name: string; uri: string; digest: string }[];
  pipeline: string;
  model: string;
}
interface InferJson {
  receipt: ReceiptDoc;
  receiptHash: string;
  decision: DecisionJson;
  event: EventJson;
}
interface RebuiltJson {
  ok: boolean;
  eventIndex: number;
  receipt: ReceiptDoc;
  pipeline: Record<string, unknown>;
  model: Record<string, unknown>;
  policy: PolicyJson;
  artifacts: { role: string; commitment: string; uri: string | null; digest: string; state: string }[];
  checks: { what: string; ref: string; ok: boolean; detail?: string }[];
  proof: { treeSize: number; rootHash: string; leafHash: string; path: string[]; checkpoint: string };
}
interface DeniedJson {
  denied: true;
  decision: DecisionJson;
  event: EventJson;
}
interface LogEntry {
  index: number;
  leafHash: string;
  entry: { index: number; type: string; time: string; payload: Record<string, unknown>; v: number };
}
interface TamperReport {
  total_inference_events: number;
  baseline_ok_before: number;
  sampled: number;
  tampered: number;
  detected: number;
  missed: number;
  falseAlarms: number;
  detectionRate: number | null;
  falseAlarmRate: number | null;
  seed: number;
}

const tmp = makeTempDir('custos-gov-test-');
let counter = 0;
const fresh = (name: string): string => join(tmp.path, `${name}-${++counter}`);

/** Writes a JSON fixture file under the suite's temporary directory and returns its path. */
function fixture(name: string, value: unknown): string {
  const p = join(tmp.path, 'fixtures', name);
  mkdirSync(join(tmp.path, 'fixtures'), { recursive: true });
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
}

async function initLog(dataDir: string): Promise<void> {
  okJson(await callIn(dataDir, ['--json', 'init']));
  registerSecret(readFileSync(join(dataDir, 'log.key'), 'utf8'));
}

/** The number of entries, from `custos stats --json`. */
async function entryCount(dataDir: string): Promise<number> {
  return okJson<{ entries: number }>(await callIn(dataDir, ['stats', '--json'])).entries;
}

/** Row counts of the off-ledger tables, read through a separate read-only connection. */
function sidecarCounts(dataDir: string): { documents: number; commitments: number; state: string } {
  const db = new Database(join(dataDir, 'custos.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      documents: db.prepare('SELECT count(*) FROM documents').pluck().get() as number,
      commitments: db.prepare('SELECT count(*) FROM commitments').pluck().get() as number,
      // The policy heads in full: "nothing written" includes no head moved.
      state: JSON.stringify(db.prepare('SELECT ns, key, value FROM state ORDER BY ns, key').all()),
    };
  } finally {
    db.close();
  }
}

interface Snapshot {
  entries: number;
  documents: number;
  commitments: number;
  state: string;
}

async function snapshot(dataDir: string): Promise<Snapshot> {
  return { entries: await entryCount(dataDir), ...sidecarCounts(dataDir) };
}

/** Asserts that nothing was written since `before`: no entry, document, commitment or state change. */
async function assertNothingWritten(dataDir: string, before: Snapshot, what: string): Promise<void> {
  assert.deepEqual(await snapshot(dataDir), before, `${what}: nothing may be written`);
}

/** Every entry of the log, from `custos export --format ndjson` (also returns the raw text). */
async function exportNdjson(dataDir: string): Promise<{ text: string; entries: LogEntry[] }> {
  const r = await callIn(dataDir, ['export', '--format', 'ndjson']);
  assertOk(r);
  const entries = r.stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as LogEntry);
  return { text: r.stdout, entries };
}

/**
 * Runs independent CLI invocations a few at a time (they share this process; the suite runs on
 * small machines), keeping the order of the results.
 */
async function inParallel<T>(jobs: readonly (() => Promise<T>)[], width = 3): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return out;
}

/** Asserts a consent refusal: exit 7, one stderr line `custos: CONSENT_DENIED: ...`, and the decision on stdout. */
function assertDenied(r: CliResult, reason: string): DeniedJson {
  assertError(r, EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
  const out = parseJson<DeniedJson>(r);
  assert.deepEqual(Object.keys(out).sort(), ['decision', 'denied', 'event']);
  assert.equal(out.denied, true);
  assert.equal(out.decision.effect, 'deny');
  assert.equal(out.decision.reason, reason);
  assert.equal(out.event.treeSize, out.event.index + 1, 'the returned checkpoint covers the refusal');
  return out;
}

const createArgs = (policyId: string, extra: readonly string[] = []): string[] => [
  'consent',
  'create',
  '--policy-id',
  policyId,
  '--subject',
  SUBJECT,
  '--purposes',
  'TREAT,HRESCH',
  '--roles',
  'dermatologist,ml_engineer',
  ...extra,
];

const accessArgs = (policy: string, purpose: string, actor: readonly string[], uri = ACCESS_URI, digest = D_IMAGE): string[] => [
  'access',
  '--purpose',
  purpose,
  '--policy',
  policy,
  '--uri',
  uri,
  '--digest',
  digest,
  ...actor,
];

// ---------------------------------------------------------------------------------------------

let pipelineFile: string;
let modelFile: string;
let modelAfterFile: string;
let modelNoWeightsFile: string;
let manifestFile: string;

before(() => {
  ensureBuilt();
  pipelineFile = fixture('pipeline.json', PIPELINE);
  modelFile = fixture('model.json', MODEL);
  modelAfterFile = fixture('model-after.json', MODEL_AFTER);
  const { weightsHash: _w, ...noWeights } = MODEL;
  modelNoWeightsFile = fixture('model-no-weights.json', noWeights);
  manifestFile = fixture('training.json', TRAINING_MANIFEST);
});

after(() => {
  tmp.cleanup();
});

const inferArgs = (policy: string, actor: readonly string[], o: { input?: string; outputs?: readonly string[]; model?: string; pipeline?: string; purpose?: string } = {}): string[] => [
  'infer',
  '--purpose',
  o.purpose ?? 'TREAT',
  '--policy',
  policy,
  '--input-uri',
  o.input ?? INPUT_URI,
  '--input-digest',
  D_INPUT,
  ...(o.outputs ?? [`report_json=${REPORT_URI}@${D_REPORT}`, `mask=${MASK_URI}@${D_MASK}`]).flatMap((x) => ['--output', x]),
  '--pipeline',
  o.pipeline ?? pipelineFile,
  '--model',
  o.model ?? modelFile,
  ...actor,
];

describe('governance on one log, command by command', () => {
  let dir: string;
  // Filled in as the log grows.
  let main: CreateJson;
  let fromFile: CreateJson;
  let accessIndex: number;
  let inference: InferJson;
  let trainingIndex: number;
  let revokeIndex: number;

  before(async () => {
    dir = fresh('gov');
    await initLog(dir);
  });

  describe('consent create', () => {
    it('creates version 1 from flags; --json prints {policy, hash, event}; only the subject commitment is logged', async () => {
      const r = await callIn(dir, ['--json', ...createArgs(pid('consent-main')), ...OFFICER]);
      main = okJson<CreateJson>(r);
      assert.deepEqual(Object.keys(main).sort(), ['event', 'hash', 'policy']);
      assert.deepEqual(Object.keys(main.event).sort(), ['index', 'leafHash', 'rootHash', 'treeSize']);
      assert.equal(main.event.index, 0);
      assert.equal(main.event.treeSize, 1);
      assert.match(main.event.leafHash, HEX64);
      const p = main.policy;
      assert.equal(p.schema, 'custos/consent-policy/v1');
      assert.equal(p.policyId, pid('consent-main'));
      assert.equal(p.version, 1);
      assert.equal(p.revocable, true);
      assert.equal(p.revoked, false);
      assert.equal(p.previous, null);
      assert.deepEqual(p.provision, { type: 'permit', purposes: ['TREAT', 'HRESCH'], roles: ['dermatologist', 'ml_engineer'] });
      assert.deepEqual(p.recordedBy, { actor: 'privacy-officer-1', role: 'privacy_officer' });
      assert.equal(p.period.start, p.recordedAt, 'valid from defaults to the log time of the change');
      assert.equal(p.period.end, undefined);
      // The hash is the SHA-256 of the policy's canonical JSON (computed here independently).
      assert.equal(main.hash, sha256Hex(canonicalJson(p)));
      // The subject is a salted commitment: SHA-256(salt || subject), salt kept off-ledger.
      assert.match(p.subject, HEX64);
      assert.notEqual(p.subject, sha256Hex(SUBJECT), 'the commitment is salted');
      const db = new Database(join(dir, 'custos.db'), { readonly: true, fileMustExist: true });
      try {
        const row = db.prepare("SELECT commitment, salt FROM commitments WHERE kind = 'subject' AND value = ?").get(SUBJECT) as { commitment: string; salt: Buffer };
        assert.equal(row.commitment, p.subject);
        assert.equal(sha256Hex(Buffer.concat([row.salt, Buffer.from(SUBJECT, 'utf8')])), p.subject);
      } finally {
        db.close();
      }
      // The event on the log.
      const { entries } = await exportNdjson(dir);
      const e = entries[0]!.entry;
      assert.equal(e.type, 'CONSENT_CREATED');
      assert.equal(e.payload['policyId'], pid('consent-main'));
      assert.equal(e.payload['subject'], p.subject);
      assert.deepEqual(e.payload['documents'], { policy: main.hash });
    });

    it('creates from --file with nested provisions; flags override the file', async () => {
      const file = fixture('policy.json', {
        policyId: pid('consent-file'),
        subject: SUBJECT_FILE,
        allowedPurposes: ['TREAT', 'HRESCH'],
        allowedRoles: ['nurse'],
        validUntil: '2999-12-31T23:59:59Z',
        provisions: [{ type: 'deny', purposes: ['HRESCH'], provisions: [{ type: 'permit', roles: ['ml_engineer'] }] }],
      });
      const r = await callIn(dir, ['--json', 'consent', 'create', '--file', file, '--roles', 'dermatologist,ml_engineer', ...OFFICER]);
      fromFile = okJson<CreateJson>(r);
      assert.equal(fromFile.event.index, 1);
      assert.equal(fromFile.policy.policyId, pid('consent-file'));
      assert.deepEqual(fromFile.policy.provision.roles, ['dermatologist', 'ml_engineer'], '--roles overrides allowedRoles of the file');
      assert.deepEqual(fromFile.policy.provision.purposes, ['TREAT', 'HRESCH']);
      assert.deepEqual(fromFile.policy.provision.provisions, [{ type: 'deny', purposes: ['HRESCH'], provisions: [{ type: 'permit', roles: ['ml_engineer'] }] }]);
      assert.equal(fromFile.policy.period.end, '2999-12-31T23:59:59.000Z', 'times are normalized to UTC milliseconds');
      assert.equal(fromFile.hash, sha256Hex(canonicalJson(fromFile.policy)));

      // The nested deny applies to research, except for the nested permit of ml_engineer.
      const check = (purpose: string, role: string) => () => callIn(dir, ['--json', 'consent', 'check', pid('consent-file'), '--purpose', purpose, '--role', role]);
      const [care, research, engineer] = (await inParallel([check('TREAT', 'dermatologist'), check('HRESCH', 'dermatologist'), check('HRESCH', 'ml_engineer')])).map((r) => okJson<DecisionJson>(r));
      assert.equal(care!.reason, 'PERMITTED');
      assert.equal(research!.effect, 'deny');
      assert.equal(research!.reason, 'DENIED_BY_PROVISION');
      assert.equal(engineer!.reason, 'PERMITTED');
    });

    it('prints a human summary without --json', async () => {
      const r = await callIn(dir, [
        'consent',
        'create',
        '--policy-id',
        pid('consent-nonrevocable'),
        '--subject',
        SUBJECT_OTHER,
        '--purposes',
        'TREAT',
        '--roles',
        'nurse',
        '--non-revocable',
        ...OFFICER,
      ]);
      assertOk(r);
      assert.match(r.stdout, new RegExp(`^created: +${pid('consent-nonrevocable')} version 1$`, 'm'));
      assert.match(r.stdout, /^revocable: +false$/m);
      assert.match(r.stdout, /^logged as: +CONSENT_CREATED, entry 2$/m);
      assert.ok(!r.stdout.includes(SUBJECT_OTHER), 'the subject id is not echoed');
    });

    it('without --actor or --actor-role: exit 2 VALIDATION_FAILED, nothing written', async () => {
      const before = await snapshot(dir);
      const runs = await inParallel([
        () => callIn(dir, [...createArgs(pid('consent-noactor')), '--actor-role', 'privacy_officer']),
        () => callIn(dir, ['--json', ...createArgs(pid('consent-noactor')), '--actor', 'privacy-officer-1']),
        () => callIn(dir, createArgs(pid('consent-noactor'))),
      ]);
      for (const r of runs) assertError(r, EXIT.validation, 'VALIDATION_FAILED');
      await assertNothingWritten(dir, before, 'create without an actor');
    });

    it('a duplicate policy id: exit 5 POLICY_EXISTS, nothing written', async () => {
      const before = await snapshot(dir);
      const runs = await inParallel([
        () => callIn(dir, ['--json', ...createArgs(pid('consent-main')), ...OFFICER]),
        // Another subject does not make it a different policy.
        () => callIn(dir, ['consent', 'create', '--policy-id', pid('consent-file'), '--subject', 'someone-else', '--purposes', 'TREAT', '--roles', 'nurse', ...OFFICER]),
      ]);
      for (const r of runs) assertError(r, EXIT.conflict, 'POLICY_EXISTS');
      await assertNothingWritten(dir, before, 'duplicate create');
    });

    it('bad input: exit 2, nothing written', async () => {
      const before = await snapshot(dir);
      const cases: [string[], string][] = [
        [[...createArgs(pid('consent-bad')), '--purposes', '1nvalid code'], 'VALIDATION_FAILED'],
        [[...createArgs(pid('consent-bad')), '--roles', ''], 'VALIDATION_FAILED'],
        [[...createArgs('consent bad id')], 'VALIDATION_FAILED'],
        [[...createArgs(pid('consent-bad')), '--valid-from', '2027-01-01T00:00:00Z', '--valid-until', '2026-01-01T00:00:00Z'], 'VALIDATION_FAILED'],
        [[...createArgs(pid('consent-bad')), '--valid-from', 'tomorrow'], 'VALIDATION_FAILED'],
        [['consent', 'create', '--file', join(tmp.path, 'no-such-policy.json')], 'FILE_UNREADABLE'],
        [['consent', 'create', '--file', fixture('not-json.json', '{"policyId": ')], 'VALIDATION_FAILED'],
        [
          ['consent', 'create', '--file', fixture('nested-bad.json', { policyId: pid('consent-bad'), subject: 'x', allowedPurposes: ['a'], allowedRoles: ['b'], provisions: [{ type: 'maybe' }] })],
          'VALIDATION_FAILED',
        ],
      ];
      const runs = await inParallel(
        cases.map(
          ([args]) =>
            () =>
              callIn(dir, [...args, ...OFFICER]),
        ),
      );
      cases.forEach(([, code], i) => assertError(runs[i]!, EXIT.validation, code));
      await assertNothingWritten(dir, before, 'invalid create');
    });
  });

  describe('consent check (writes nothing)', () => {
    before(async () => {
      // Policies for the time-window reasons, and one revoked for REVOKED.
      // (Three writers at once: the log sequences them; their order does not matter here.)
      const created = await inParallel([
        () => callIn(dir, ['--json', ...createArgs(pid('consent-future'), ['--valid-from', '2999-01-01T00:00:00Z']), ...OFFICER]),
        () => callIn(dir, ['--json', ...createArgs(pid('consent-past'), ['--valid-from', '2020-01-01T00:00:00Z', '--valid-until', '2020-12-31T23:59:59Z']), ...OFFICER]),
        () => callIn(dir, ['--json', ...createArgs(pid('consent-short')), ...OFFICER]),
      ]);
      for (const r of created) okJson(r);
      okJson(await callIn(dir, ['--json', 'consent', 'revoke', pid('consent-short'), ...OFFICER]));
    });

    it('reports PERMITTED and every deny reason, with exit 0 and nothing written', async () => {
      const before = await snapshot(dir);
      const cases: [string, string, string, string][] = [
        [pid('consent-main'), 'TREAT', 'dermatologist', 'PERMITTED'],
        [pid('consent-main'), 'HPAYMT', 'dermatologist', 'PURPOSE_NOT_ALLOWED'],
        [pid('consent-main'), 'TREAT', 'radiologist', 'ROLE_NOT_ALLOWED'],
        [pid('consent-nowhere'), 'TREAT', 'dermatologist', 'POLICY_NOT_FOUND'],
        [pid('consent-short'), 'TREAT', 'dermatologist', 'REVOKED'],
        [pid('consent-future'), 'TREAT', 'dermatologist', 'NOT_YET_VALID'],
        [pid('consent-past'), 'TREAT', 'dermatologist', 'EXPIRED'],
        [pid('consent-file'), 'HRESCH', 'dermatologist', 'DENIED_BY_PROVISION'],
      ];
      const runs = await inParallel(
        cases.map(
          ([policy, purpose, role]) =>
            () =>
              callIn(dir, ['--json', 'consent', 'check', policy, '--purpose', purpose, '--role', role]),
        ),
      );
      for (const [i, [policy, purpose, role, reason]] of cases.entries()) {
        const d = okJson<DecisionJson>(runs[i]!);
        assert.deepEqual(Object.keys(d).sort(), ['effect', 'explanation', 'policyHash', 'policyId', 'policyVersion', 'provision', 'reason']);
        assert.equal(d.reason, reason, `${policy} ${purpose} ${role}`);
        assert.equal(d.effect, reason === 'PERMITTED' ? 'permit' : 'deny');
        assert.equal(d.policyId, policy);
        if (reason === 'POLICY_NOT_FOUND') {
          assert.equal(d.policyVersion, null);
          assert.equal(d.policyHash, null);
        } else {
          assert.match(d.policyHash ?? '', HEX64);
          assert.equal(d.policyVersion, policy === pid('consent-short') ? 2 : 1);
        }
      }
      assert.equal(okJson<DecisionJson>(runs[0]!).policyHash, main.hash, 'the decision names the hash of the version on the log');
      // The human form prints the decision too, still with exit 0.
      const h = await callIn(dir, ['consent', 'check', pid('consent-future'), '--purpose', 'TREAT', '--role', 'dermatologist']);
      assertOk(h);
      assert.match(h.stdout, /^decision: +deny$/m);
      assert.match(h.stdout, /^reason: +NOT_YET_VALID$/m);
      assert.match(h.stdout, new RegExp(`^policy: +${pid('consent-future')} version 1$`, 'm'));
      await assertNothingWritten(dir, before, 'consent check');
    });

    it('rejects a malformed request with exit 2', async () => {
      assertError(await callIn(dir, ['consent', 'check', pid('consent-main'), '--purpose', 'not a code', '--role', 'dermatologist']), EXIT.validation, 'VALIDATION_FAILED');
      assertError(await callIn(dir, ['consent', 'check', pid('consent-main'), '--purpose', 'TREAT']), EXIT.validation, 'VALIDATION_FAILED');
    });
  });

  describe('access', () => {
    it('permitted: exit 0, one DATA_ACCESSED event naming the policy version', async () => {
      const n = await entryCount(dir);
      const r = okJson<{ decision: DecisionJson; event: EventJson }>(await callIn(dir, ['--json', ...accessArgs(pid('consent-main'), 'TREAT', DERM)]));
      assert.deepEqual(Object.keys(r).sort(), ['decision', 'event']);
      assert.equal(r.decision.effect, 'permit');
      assert.equal(r.decision.reason, 'PERMITTED');
      assert.equal(r.decision.policyVersion, 1);
      assert.equal(r.decision.policyHash, main.hash);
      assert.equal(r.event.index, n);
      accessIndex = r.event.index;
      const [count, exported] = await Promise.all([entryCount(dir), exportNdjson(dir)]);
      assert.equal(count, n + 1);
      const e = exported.entries[accessIndex]!.entry;
      assert.equal(e.type, 'DATA_ACCESSED');
      assert.equal(e.payload['actor'], 'user_42');
      assert.equal(e.payload['role'], 'dermatologist');
      assert.equal(e.payload['purpose'], 'TREAT');
      assert.equal(e.payload['policyHash'], main.hash);
      const artifact = e.payload['artifact'] as { uri: string; digest: string };
      assert.match(artifact.uri, HEX64, 'the URI is logged as a commitment');
      assert.equal(artifact.digest, D_IMAGE);

      const h = await callIn(dir, accessArgs(pid('consent-main'), 'HRESCH', ENGINEER));
      assertOk(h);
      assert.match(h.stdout, new RegExp(`^logged as: +DATA_ACCESSED, entry ${n + 1}$`, 'm'));
    });

    it('denied: exit 7 CONSENT_DENIED (one stderr line), the decision and event on stdout, exactly one event', async () => {
      const attempts = [
        [accessArgs(pid('consent-main'), 'HPAYMT', DERM, DENIED_URI), 'PURPOSE_NOT_ALLOWED'],
        [accessArgs(pid('consent-main'), 'TREAT', NURSE, DENIED_URI), 'ROLE_NOT_ALLOWED'],
        [accessArgs(pid('consent-nowhere'), 'TREAT', DERM, DENIED_URI), 'POLICY_NOT_FOUND'],
        [accessArgs(pid('consent-future'), 'TREAT', DERM, DENIED_URI), 'NOT_YET_VALID'],
      ] as const;
      const first = await entryCount(dir);
      for (const [i, [args, reason]] of attempts.entries()) {
        const out = assertDenied(await callIn(dir, ['--json', ...args]), reason);
        assert.equal(out.event.index, first + i, 'the refusal is the next entry');
      }
      const { entries } = await exportNdjson(dir);
      assert.equal(entries.length, first + attempts.length, 'exactly one event per refused attempt');
      for (const [i, [args, reason]] of attempts.entries()) {
        const e = entries[first + i]!.entry;
        assert.equal(e.type, 'CONSENT_DENIED');
        assert.equal(e.payload['operation'], 'data_access');
        assert.equal(e.payload['reason'], reason);
        assert.equal(e.payload['policyId'], args[4]);
        assert.equal(e.payload['actor'], args[args.length - 3]);
      }
      // The human form: the refusal on stdout, the error line on stderr.
      const n = await entryCount(dir);
      const h = await callIn(dir, accessArgs(pid('consent-main'), 'HPAYMT', DERM, DENIED_URI));
      assertError(h, EXIT_CONSENT, 'CONSENT_DENIED', { stdoutAllowed: true });
      assert.match(h.stdout, /^denied: +PURPOSE_NOT_ALLOWED: /m);
      assert.match(h.stdout, new RegExp(`^logged as: +CONSENT_DENIED, entry ${n}$`, 'm'));
      assert.equal(await entryCount(dir), n + 1);
    });

    it('invalid input: exit 2, nothing written', async () => {
      const before = await snapshot(dir);
      const runs = await inParallel([
        () => callIn(dir, accessArgs(pid('consent-main'), 'TREAT', DERM, ACCESS_URI, 'not-a-digest')),
        () => callIn(dir, accessArgs(pid('consent-main'), 'TREAT', DERM, 'no scheme here')),
        () => callIn(dir, accessArgs(pid('consent-main'), 'TREAT', ['--actor', 'user_42'])),
        () => callIn(dir, accessArgs(pid('consent-main'), 'TREAT', ['--actor', 'user_42', '--actor-role', 'no spaces allowed'])),
      ]);
      for (const r of runs) assertError(r, EXIT.validation, 'VALIDATION_FAILED');
      await assertNothingWritten(dir, before, 'invalid access');
    });
  });

  describe('infer and receipt', () => {
    it('records an inference with repeatable --output and prints its receipt', async () => {
      const n = await entryCount(dir);
      inference = okJson<InferJson>(await callIn(dir, ['--json', ...inferArgs(pid('consent-main'), DERM)]));
      assert.deepEqual(Object.keys(inference).sort(), ['decision', 'event', 'receipt', 'receiptHash']);
      assert.equal(inference.event.index, n);
      const [count, exported] = await Promise.all([entryCount(dir), exportNdjson(dir)]);
      assert.equal(count, n + 1);
      const rc = inference.receipt;
      assert.equal(rc.schema, 'custos/receipt/v1');
      assert.equal(rc.event.index, n);
      assert.equal(rc.actor, 'user_42');
      assert.equal(rc.role, 'dermatologist');
      assert.equal(rc.purpose, 'TREAT');
      assert.deepEqual(rc.consent, { policyId: pid('consent-main'), version: 1, policyHash: main.hash });
      assert.equal(rc.input.digest, D_INPUT);
      assert.match(rc.input.uri, HEX64);
      assert.deepEqual(
        rc.outputs.map((o) => [o.name, o.digest]),
        [
          ['report_json', D_REPORT],
          ['mask', D_MASK],
        ],
      );
      for (const o of rc.outputs) assert.match(o.uri, HEX64);
      assert.equal(inference.receiptHash, sha256Hex(canonicalJson(rc)));
      const e = exported.entries[n]!.entry;
      assert.equal(e.type, 'INFERENCE_EXECUTED');
      assert.deepEqual(e.payload['documents'], { receipt: inference.receiptHash, policy: main.hash, pipeline: rc.pipeline, model: rc.model });
    });

    it('receipt N --json rebuilds it: ok, every check ok, URIs opened, inclusion proved', async () => {
      // The URIs are patient-linked: they are printed only with --open and an opener (each run
      // logs PATIENT_DATA_OPENED; one after the other, as both write).
      const json = await callIn(dir, ['--json', 'receipt', String(inference.event.index), ...OPEN]);
      const h = await callIn(dir, ['receipt', String(inference.event.index), ...OPEN]);
      const r = okJson<RebuiltJson>(json);
      assert.equal(r.ok, true);
      assert.equal(r.eventIndex, inference.event.index);
      assert.deepEqual(r.receipt, inference.receipt);
      assert.ok(r.checks.length >= 10, `expected every hash re-checked, got ${r.checks.map((c) => c.what).join(', ')}`);
      for (const c of r.checks) assert.equal(c.ok, true, `check ${c.what} failed`);
      const whats = r.checks.map((c) => c.what);
      for (const w of ['receipt', 'pipeline manifest', 'model spec', 'consent policy version', 'receipt matches its event', 'event leaf hash', 'inclusion proof against the signed checkpoint']) {
        assert.ok(whats.includes(w), `missing check ${w}`);
      }
      // Each artifact names the commitment it opens (the receipt's uri field).
      assert.deepEqual(
        r.artifacts.map((a) => a.commitment),
        [r.receipt.input.uri, ...r.receipt.outputs.map((x) => x.uri)],
      );
      assert.deepEqual(
        r.artifacts.map(({ commitment: _c, ...rest }) => rest),
        [
          { role: 'input', uri: INPUT_URI, digest: D_INPUT, state: 'opened' },
          { role: 'output report_json', uri: REPORT_URI, digest: D_REPORT, state: 'opened' },
          { role: 'output mask', uri: MASK_URI, digest: D_MASK, state: 'opened' },
        ],
      );
      assert.equal(r.model['weightsHash'], MODEL.weightsHash);
      assert.equal(r.pipeline['pipelineName'], PIPELINE.pipelineName);
      assert.equal(r.policy.policyId, pid('consent-main'));
      assert.equal(r.proof.leafHash, inference.event.leafHash);

      assertOk(h);
      assert.match(h.stdout, new RegExp(`^event: +entry ${inference.event.index} \\(INFERENCE_EXECUTED\\)$`, 'm'));
      assert.ok(h.stdout.includes(`output report_json: ${REPORT_URI}  sha256 ${D_REPORT}`));
      assert.doesNotMatch(h.stdout, /^FAIL/m);
      assert.match(h.stdout, /: verified$/m);
    });

    it('receipt N is sealed by default: commitments only, every opening still checked, nothing written', async () => {
      const before = await snapshot(dir);
      const [json, h] = await inParallel([() => callIn(dir, ['--json', 'receipt', String(inference.event.index)]), () => callIn(dir, ['receipt', String(inference.event.index)])]);
      const r = okJson<RebuiltJson>(json!);
      assert.equal(r.ok, true);
      const commitments = [inference.receipt.input.uri, ...inference.receipt.outputs.map((x) => x.uri)];
      assert.deepEqual(
        r.artifacts.map((a) => [a.commitment, a.uri, a.state]),
        commitments.map((c) => [c, null, 'sealed']),
      );
      // Each stored opening is checked against its commitment all the same.
      for (const role of ['input', 'output report_json', 'output mask']) assert.equal(r.checks.find((c) => c.what === `${role} URI commitment`)?.ok, true, role);
      assertOk(h!);
      assert.ok(h!.stdout.includes(`output report_json: (sealed) commitment ${commitments[1]}  sha256 ${D_REPORT}`), h!.stdout);
      for (const out of [json!.stdout, h!.stdout]) {
        for (const uri of [INPUT_URI, REPORT_URI, MASK_URI]) assert.ok(!out.includes(uri), `a sealed receipt printed ${uri}`);
        assert.ok(!out.includes('s3://'));
      }
      await assertNothingWritten(dir, before, 'a sealed receipt');
    });

    it('receipt N --open: exactly one PATIENT_DATA_OPENED (the commitments, never the URIs) on the log', async () => {
      const before = await snapshot(dir);
      const r = okJson<RebuiltJson>(await callIn(dir, ['--json', 'receipt', String(inference.event.index), ...OPEN]));
      assert.deepEqual(
        r.artifacts.map((a) => [a.uri, a.state]),
        [
          [INPUT_URI, 'opened'],
          [REPORT_URI, 'opened'],
          [MASK_URI, 'opened'],
        ],
      );
      const after = await snapshot(dir);
      assert.deepEqual(after, { ...before, entries: before.entries + 1 }, 'one entry and nothing else written');
      const { text, entries } = await exportNdjson(dir);
      const e = entries[before.entries]!.entry;
      assert.equal(e.type, 'PATIENT_DATA_OPENED');
      const { nonce, balp: _balp, ...payload } = e.payload;
      assert.match(String(nonce), /^[0-9a-f]{32}$/);
      assert.deepEqual(payload, {
        actor: 'privacy-officer-1',
        role: 'privacy_officer',
        purpose: 'TREAT',
        route: 'GET /cli/receipt/:index',
        permission: 'commitments:open',
        eventIndex: inference.event.index,
        commitments: r.artifacts.map((a) => a.commitment),
      });
      assert.ok(!text.includes('s3://'), 'the opened URIs stay off the log');
    });

    it('receipt N --open without its opener, or one the log refuses: exit 2, no URI printed, nothing written', async () => {
      const before = await snapshot(dir);
      const i = String(inference.event.index);
      const cases: [string[], RegExp][] = [
        [['receipt', i, '--open'], /--purpose CODE --actor ID --actor-role ROLE/],
        [['receipt', i, '--open', '--purpose', 'TREAT', '--actor', 'privacy-officer-1'], /--actor-role/],
        [['--json', 'receipt', i, '--open', '--actor', 'privacy-officer-1', '--actor-role', 'privacy_officer'], /--purpose/],
        // An opener without --open would get no URI: refused rather than ignored.
        [['receipt', i, '--purpose', 'TREAT', ...OFFICER], /go with --open/],
        // Refused by the vocabulary: the purpose before anything is read, the role by the event
        // registry when PATIENT_DATA_OPENED is appended; either way nothing is printed.
        [['receipt', i, '--open', '--purpose', 'NOT_A_PURPOSE', ...OFFICER], /unknown purpose/],
        [['receipt', i, '--open', '--purpose', 'TREAT', '--actor', 'privacy-officer-1', '--actor-role', 'not a role'], /PATIENT_DATA_OPENED/],
      ];
      const runs = await inParallel(
        cases.map(
          ([args]) =>
            () =>
              callIn(dir, args),
        ),
      );
      cases.forEach(([, message], k) => assertError(runs[k]!, EXIT.validation, 'VALIDATION_FAILED', { message }));
      await assertNothingWritten(dir, before, 'a refused opening');
    });

    it('receipt of a non-inference entry: exit 3 RECEIPT_NOT_FOUND; out of range: exit 2', async () => {
      const [a, b, c] = await inParallel([
        () => callIn(dir, ['receipt', String(accessIndex)]),
        () => callIn(dir, ['--json', 'receipt', String(main.event.index)]),
        () => callIn(dir, ['receipt', '100000']),
      ]);
      assertError(a!, EXIT.notFound, 'RECEIPT_NOT_FOUND');
      assertError(b!, EXIT.notFound, 'RECEIPT_NOT_FOUND');
      assertError(c!, EXIT.validation, 'INDEX_OUT_OF_RANGE');
    });

    it('invalid input: exit 2, nothing written', async () => {
      const before = await snapshot(dir);
      const cases: [string[], string][] = [
        [inferArgs(pid('consent-main'), DERM, { outputs: ['report_json'] }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { outputs: [`report_json=${REPORT_URI}@${D_REPORT.slice(1)}`] }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { outputs: [`=${REPORT_URI}@${D_REPORT}`] }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { outputs: [`report_json=${REPORT_URI}@${D_REPORT}`, 'mask=nope'] }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { outputs: [] }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { model: modelNoWeightsFile }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { model: fixture('model-bad-weights.json', { ...MODEL, weightsHash: 'abc' }) }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { pipeline: fixture('pipeline-bad.json', { pipelineVersion: '1' }) }), 'VALIDATION_FAILED'],
        [inferArgs(pid('consent-main'), DERM, { pipeline: join(tmp.path, 'no-such-pipeline.json') }), 'FILE_UNREADABLE'],
        // Invalid input is refused even when consent would also refuse: no CONSENT_DENIED is written.
        [inferArgs(pid('consent-nowhere'), DERM, { model: modelNoWeightsFile }), 'VALIDATION_FAILED'],
      ];
      const runs = await inParallel(
        cases.map(
          ([args]) =>
            () =>
              callIn(dir, args),
        ),
      );
      cases.forEach(([, code], i) => assertError(runs[i]!, EXIT.validation, code));
      await assertNothingWritten(dir, before, 'invalid infer');
    });

    it('denied: exit 7 with one CONSENT_DENIED event and no receipt stored', async () => {
      const before = await snapshot(dir);
      const out = assertDenied(
        await callIn(dir, ['--json', ...inferArgs(pid('consent-main'), NURSE, { input: DENIED_INPUT_URI, outputs: [`report_json=${DENIED_OUTPUT_URI}@${D_REPORT}`] })]),
        'ROLE_NOT_ALLOWED',
      );
      assert.equal(out.event.index, before.entries);
      const after = await snapshot(dir);
      assert.equal(after.entries, before.entries + 1);
      assert.equal(after.documents, before.documents, 'a refused inference stores no documents');
      const e = (await exportNdjson(dir)).entries[out.event.index]!.entry;
      assert.equal(e.type, 'CONSENT_DENIED');
      assert.equal(e.payload['operation'], 'inference');
      assertError(await callIn(dir, ['receipt', String(out.event.index)]), EXIT.notFound, 'RECEIPT_NOT_FOUND');
    });
  });

  describe('train', () => {
    const trainArgs = (type: string, uri: string, extra: readonly string[] = type === 'synthetic' ? ['--attestation', 'synthetic-generator'] : []): string[] => [
      'train',
      '--purpose',
      'HRESCH',
      '--dataset-uri',
      uri,
      '--dataset-digest',
      D_DATASET,
      '--dataset-type',
      type,
      '--manifest',
      manifestFile,
      '--model-before',
      modelFile,
      '--model-after',
      modelAfterFile,
      '--compute',
      'cpu',
      ...extra,
      ...ENGINEER,
    ];

    it('synthetic data: exit 0, one TRAINING_EXECUTED event with the dataset type and documents', async () => {
      const n = await entryCount(dir);
      const r = okJson<{ manifestHash: string; event: EventJson }>(await callIn(dir, ['--json', ...trainArgs('synthetic', DATASET_URI)]));
      assert.deepEqual(Object.keys(r).sort(), ['decisions', 'event', 'manifestHash']);
      assert.equal(r.event.index, n);
      assert.equal(r.manifestHash, sha256Hex(canonicalJson(TRAINING_MANIFEST)));
      trainingIndex = r.event.index;
      const e = (await exportNdjson(dir)).entries[n]!.entry;
      assert.equal(e.type, 'TRAINING_EXECUTED');
      const dataset = e.payload['dataset'] as { uri: string; digest: string; type: string };
      assert.equal(dataset.type, 'synthetic');
      assert.equal(dataset.digest, D_DATASET);
      assert.match(dataset.uri, HEX64);
      const docs = e.payload['documents'] as Record<string, string>;
      assert.equal(docs['training'], r.manifestHash);
      assert.equal(docs['modelBefore'], inference.receipt.model, 'the same model spec has the same document');
      assert.notEqual(docs['modelAfter'], docs['modelBefore']);
    });

    it('identified data without --policy, synthetic without --attestation, a free-text backend: exit 2 VALIDATION_FAILED, nothing written', async () => {
      const before = await snapshot(dir);
      const runs = await inParallel([
        () => callIn(dir, trainArgs('identified', BAD_DATASET_URI)),
        () => callIn(dir, ['--json', ...trainArgs('identified', BAD_DATASET_URI)]),
        () => callIn(dir, trainArgs('real_world', BAD_DATASET_URI)),
        () => callIn(dir, trainArgs('synthetic', BAD_DATASET_URI, [])),
        () => callIn(dir, [...trainArgs('synthetic', BAD_DATASET_URI).filter((a) => a !== 'cpu'), 'patient John Smith DOB 1970-01-01']),
      ]);
      for (const r of runs) assertError(r, EXIT.validation, 'VALIDATION_FAILED');
      await assertNothingWritten(dir, before, 'training on identified data');
    });

    it('identified data under consent (--policy): exit 0 with the decision; a policy without a training purpose: exit 7, CONSENT_DENIED logged', async () => {
      const n = await entryCount(dir);
      const r = okJson<{ decisions: DecisionJson[]; event: EventJson }>(await callIn(dir, ['--json', ...trainArgs('identified', DATASET_URI, ['--policy', pid('consent-main')])]));
      assert.deepEqual(
        r.decisions.map((d) => [d.policyId, d.reason]),
        [[pid('consent-main'), 'PERMITTED']],
      );
      const e = (await exportNdjson(dir)).entries[n]!.entry;
      assert.equal(e.type, 'TRAINING_EXECUTED');
      assert.deepEqual(
        (e.payload['consents'] as { policyId: string }[]).map((c) => c.policyId),
        [pid('consent-main')],
      );
      const denied = await callIn(dir, ['--json', ...trainArgs('identified', DATASET_URI, ['--policy', pid('consent-nowhere')])]);
      assert.equal(denied.code, 7);
      const d = (await exportNdjson(dir)).entries[n + 1]!.entry;
      assert.equal(d.type, 'CONSENT_DENIED');
      assert.equal(d.payload['operation'], 'training');
      assert.equal(d.payload['reason'], 'POLICY_NOT_FOUND');
    });
  });

  describe('consent revoke and show', () => {
    it('revoke makes version 2; then access and infer are refused with REVOKED', async () => {
      const n = await entryCount(dir);
      const r = okJson<CreateJson>(await callIn(dir, ['--json', 'consent', 'revoke', pid('consent-main'), ...OFFICER]));
      revokeIndex = r.event.index;
      assert.equal(revokeIndex, n);
      assert.equal(r.policy.version, 2);
      assert.equal(r.policy.revoked, true);
      assert.equal(r.policy.previous, main.hash);
      assert.equal(r.policy.subject, main.policy.subject);
      assert.equal(r.hash, sha256Hex(canonicalJson(r.policy)));
      const e = (await exportNdjson(dir)).entries[revokeIndex]!.entry;
      assert.equal(e.type, 'CONSENT_REVOKED');
      assert.deepEqual(e.payload['documents'], { policy: r.hash });

      const denied = assertDenied(await callIn(dir, ['--json', ...accessArgs(pid('consent-main'), 'TREAT', DERM, DENIED_URI)]), 'REVOKED');
      assert.equal(denied.event.index, revokeIndex + 1);
      assert.equal(denied.decision.policyVersion, 2);
      assert.equal(denied.decision.policyHash, r.hash);
      assertDenied(await callIn(dir, ['--json', ...inferArgs(pid('consent-main'), DERM, { input: DENIED_INPUT_URI, outputs: [`report_json=${DENIED_OUTPUT_URI}@${D_REPORT}`] })]), 'REVOKED');
      assert.equal(await entryCount(dir), revokeIndex + 3);
    });

    it('revoking a --non-revocable policy: exit 7 CONSENT_NOT_REVOCABLE, nothing written', async () => {
      const before = await snapshot(dir);
      const [a, b, c, d] = await inParallel([
        () => callIn(dir, ['consent', 'revoke', pid('consent-nonrevocable'), ...OFFICER]),
        () => callIn(dir, ['--json', 'consent', 'revoke', pid('consent-main'), ...OFFICER]),
        () => callIn(dir, ['consent', 'revoke', pid('consent-nowhere'), ...OFFICER]),
        () => callIn(dir, ['consent', 'revoke', pid('consent-file')]),
      ]);
      assertError(a!, EXIT_CONSENT, 'CONSENT_NOT_REVOCABLE');
      assertError(b!, EXIT_CONSENT, 'CONSENT_ALREADY_REVOKED');
      assertError(c!, EXIT.notFound, 'POLICY_NOT_FOUND');
      assertError(d!, EXIT.validation, 'VALIDATION_FAILED');
      await assertNothingWritten(dir, before, 'refused revocations');
      const still = okJson<DecisionJson>(await callIn(dir, ['--json', 'consent', 'check', pid('consent-nonrevocable'), '--purpose', 'TREAT', '--role', 'nurse']));
      assert.equal(still.reason, 'PERMITTED', 'the non-revocable policy is still in force');
    });

    it('consent show --json lists the versions in order with their entry indices', async () => {
      const [json, h, unknown] = await inParallel([
        () => callIn(dir, ['--json', 'consent', 'show', pid('consent-main')]),
        () => callIn(dir, ['consent', 'show', pid('consent-main')]),
        () => callIn(dir, ['consent', 'show', pid('consent-nowhere')]),
      ]);
      const r = okJson<{ policyId: string; versions: { version: number; hash: string; index: number; documentOk: boolean; type: string; time: string; policy: PolicyJson }[] }>(json!);
      assert.equal(r.policyId, pid('consent-main'));
      assert.deepEqual(
        r.versions.map((v) => ({ version: v.version, index: v.index, type: v.type, documentOk: v.documentOk, hash: v.hash })),
        [
          { version: 1, index: main.event.index, type: 'CONSENT_CREATED', documentOk: true, hash: main.hash },
          { version: 2, index: revokeIndex, type: 'CONSENT_REVOKED', documentOk: true, hash: r.versions[1]!.hash },
        ],
      );
      assert.equal(r.versions[1]!.policy.previous, main.hash);
      assert.equal(r.versions[1]!.policy.revoked, true);

      assertOk(h!);
      assert.match(h!.stdout, new RegExp(`^version 1  entry ${main.event.index} .* CONSENT_CREATED  document ok  ${main.hash}$`, 'm'));
      assert.match(h!.stdout, new RegExp(`^version 2  entry ${revokeIndex} .* CONSENT_REVOKED  document ok `, 'm'));
      assertError(unknown!, EXIT.notFound, 'POLICY_NOT_FOUND');
    });
  });

  describe('privacy', () => {
    it('the exported log holds neither subject ids nor artifact URIs (only their commitments)', async () => {
      const [{ text, entries }, json, csv] = await Promise.all([exportNdjson(dir), callIn(dir, ['export', '--format', 'json']), callIn(dir, ['export', '--format', 'csv'])]);
      assert.ok(entries.length >= 20, `expected a busy log, got ${entries.length} entries`);
      for (const id of ALL_IDENTIFIERS) assert.ok(!text.includes(id), `the log contains ${id}`);
      assert.ok(!text.includes('s3://'), 'no URI of any kind is on the log');
      assert.ok(!text.includes('patient-pseudo'), 'no part of a subject id is on the log');
      // Sanity: the commitments are there instead.
      assert.ok(text.includes(main.policy.subject));
      assert.ok(text.includes(inference.receipt.input.uri));
      // The other formats embed the same bytes.
      for (const [format, r] of [
        ['json', json],
        ['csv', csv],
      ] as const) {
        assertOk(r);
        for (const id of ALL_IDENTIFIERS) assert.ok(!r.stdout.includes(id), `${format} export contains ${id}`);
      }
    });
  });

  describe('erase', () => {
    it('erase --uri: the receipt still checks and shows that URI as erased, the others opened', async () => {
      const n = await entryCount(dir);
      const r = okJson<{ erased: string[]; event: EventJson | null }>(await callIn(dir, ['--json', 'erase', '--uri', REPORT_URI, ...OFFICER]));
      const reportCommitment = inference.receipt.outputs.find((o) => o.name === 'report_json')!.uri;
      assert.deepEqual(r.erased, [reportCommitment]);
      assert.equal(r.event?.index, n);
      // --open: the URIs not erased are shown (each run logs PATIENT_DATA_OPENED, after the erasure).
      const json = await callIn(dir, ['--json', 'receipt', String(inference.event.index), ...OPEN]);
      const h = await callIn(dir, ['receipt', String(inference.event.index), ...OPEN]);
      const exported = await exportNdjson(dir);
      const e = exported.entries[n]!.entry;
      assert.equal(e.type, 'ERASURE_PERFORMED');
      assert.equal(e.payload['kind'], 'uri');

      const rc = okJson<RebuiltJson>(json);
      assert.equal(rc.ok, true, 'an erased opening is not a defect');
      assert.deepEqual(
        rc.artifacts.map(({ commitment: _c, ...rest }) => rest),
        [
          { role: 'input', uri: INPUT_URI, digest: D_INPUT, state: 'opened' },
          { role: 'output report_json', uri: null, digest: D_REPORT, state: 'erased' },
          { role: 'output mask', uri: MASK_URI, digest: D_MASK, state: 'opened' },
        ],
      );
      const check = rc.checks.find((c) => c.what === 'output report_json URI commitment')!;
      assert.equal(check.ok, true);
      assert.match(check.detail ?? '', /erased/);

      assertOk(h);
      assert.ok(h.stdout.includes(`output report_json: (erased)  sha256 ${D_REPORT}`), h.stdout);
      assert.ok(h.stdout.includes(`output mask: ${MASK_URI}`));
      assert.ok(!h.stdout.includes(REPORT_URI));
    });

    it('erase --subject: exit 0, ERASURE_PERFORMED logged with the subject and its linked URIs; receipts still check', async () => {
      const n = await entryCount(dir);
      const r = okJson<{ erased: string[]; event: EventJson | null }>(await callIn(dir, ['--json', 'erase', '--subject', SUBJECT, ...OFFICER]));
      // The subject's commitment and the URIs of the events under its policies (the report URI
      // was erased already): the inference's input and its other output.
      const inputC = inference.receipt.input.uri;
      const maskC = inference.receipt.outputs.find((o) => o.name === 'mask')!.uri;
      for (const c of [main.policy.subject, inputC, maskC]) assert.ok(r.erased.includes(c), `erased ${c}`);
      assert.deepEqual(r.erased, [...r.erased].sort());
      assert.equal(r.event?.index, n);
      const [count, { text, entries }, receiptRun] = await Promise.all([entryCount(dir), exportNdjson(dir), callIn(dir, ['--json', 'receipt', String(inference.event.index)])]);
      assert.equal(count, n + 1);
      const e = entries[n]!.entry;
      assert.equal(e.type, 'ERASURE_PERFORMED');
      assert.deepEqual(e.payload, { kind: 'subject', commitments: r.erased, actor: 'privacy-officer-1', role: 'privacy_officer' });
      assert.ok(!text.includes(SUBJECT));
      const db = new Database(join(dir, 'custos.db'), { readonly: true, fileMustExist: true });
      try {
        for (const c of r.erased) assert.equal(db.prepare('SELECT count(*) FROM commitments WHERE commitment = ?').pluck().get(c), 0, 'the opening is deleted');
      } finally {
        db.close();
      }

      const rc = okJson<RebuiltJson>(receiptRun);
      assert.equal(rc.ok, true);
      assert.deepEqual(
        rc.artifacts.map((a) => [a.uri, a.state]),
        [
          [null, 'erased'],
          [null, 'erased'],
          [null, 'erased'],
        ],
        'every URI of the subject was erased',
      );

      // Erasing it again finds nothing and writes nothing.
      const before = await snapshot(dir);
      const again = okJson<{ erased: string[]; event: EventJson | null }>(await callIn(dir, ['--json', 'erase', '--subject', SUBJECT, ...OFFICER]));
      assert.deepEqual(again, { erased: [], event: null });
      await assertNothingWritten(dir, before, 'a second erasure');
    });

    it('erase --document: the pipeline manifest is deleted with its ERASURE_PERFORMED event; the receipt rebuilds with it erased; a policy is refused', async () => {
      const n = await entryCount(dir);
      const pipelineHash = inference.receipt.pipeline;
      const before = await snapshot(dir);
      assertError(await callIn(dir, ['erase', '--document', inference.receipt.consent.policyHash, ...OFFICER]), EXIT.validation, 'VALIDATION_FAILED');
      await assertNothingWritten(dir, before, 'erasing a consent policy');
      const r = okJson<{ erased: string[]; document: string; event: EventJson | null }>(await callIn(dir, ['--json', 'erase', '--document', pipelineHash, ...OFFICER]));
      assert.equal(r.document, pipelineHash);
      assert.equal(r.event?.index, n);
      const e = (await exportNdjson(dir)).entries[n]!.entry;
      assert.deepEqual(e.payload, { kind: 'document', commitments: [], document: pipelineHash, actor: 'privacy-officer-1', role: 'privacy_officer' });
      const db = new Database(join(dir, 'custos.db'), { readonly: true, fileMustExist: true });
      try {
        assert.equal(db.prepare('SELECT count(*) FROM documents WHERE hash = ?').pluck().get(pipelineHash), 0, 'the document is deleted');
      } finally {
        db.close();
      }
      const rc = okJson<RebuiltJson & { erased: { what: string; hash: string }[] }>(await callIn(dir, ['--json', 'receipt', String(inference.event.index)]));
      assert.equal(rc.ok, true);
      assert.deepEqual(
        rc.erased.map((x) => [x.what, x.hash]),
        [['pipeline manifest', pipelineHash]],
      );
      const h = await callIn(dir, ['receipt', String(inference.event.index)]);
      assertOk(h);
      assert.ok(h.stdout.includes(`(erased by entry ${n})  sha256 ${pipelineHash}`), h.stdout);
    });

    it('after erasure the log and the off-ledger store still verify (exit 0)', async () => {
      const [json, human] = await Promise.all([callIn(dir, ['--json', 'verify']), callIn(dir, ['verify'])]);
      const r = okJson<{ ok: boolean; log: { ok: boolean }; documents: { ok: boolean; findings: unknown[] } }>(json);
      assert.equal(r.ok, true);
      assert.equal(r.log.ok, true);
      assert.equal(r.documents.ok, true);
      assert.deepEqual(r.documents.findings, []);
      assertOk(human);
    });

    it('usage: exactly one of --subject or --uri, and an actor; an unknown value erases nothing', async () => {
      const before = await snapshot(dir);
      const [a, b, c, r] = await inParallel([
        () => callIn(dir, ['erase', ...OFFICER]),
        () => callIn(dir, ['erase', '--subject', SUBJECT_FILE, '--uri', INPUT_URI, ...OFFICER]),
        () => callIn(dir, ['erase', '--subject', SUBJECT_FILE]),
        () => callIn(dir, ['erase', '--uri', 's3://clinic-bucket/never-seen', ...OFFICER]),
      ]);
      for (const x of [a, b, c]) assertError(x!, EXIT.validation, 'VALIDATION_FAILED');
      assertOk(r!);
      assert.match(r!.stdout, /^nothing to erase/);
      await assertNothingWritten(dir, before, 'erase usage errors');
    });
  });

  it('the whole session verifies, with the expected event types in order', async () => {
    const types = (await exportNdjson(dir)).entries.map((e) => e.entry.type);
    assert.equal(types[accessIndex], 'DATA_ACCESSED');
    assert.equal(types[inference.event.index], 'INFERENCE_EXECUTED');
    assert.equal(types[trainingIndex], 'TRAINING_EXECUTED');
    assert.equal(types[revokeIndex], 'CONSENT_REVOKED');
    assert.equal(types.at(-1), 'ERASURE_PERFORMED');
    // PATIENT_DATA_OPENED: every `receipt --open` above.
    const allowed = new Set(['CONSENT_CREATED', 'CONSENT_REVOKED', 'CONSENT_DENIED', 'DATA_ACCESSED', 'INFERENCE_EXECUTED', 'TRAINING_EXECUTED', 'ERASURE_PERFORMED', 'PATIENT_DATA_OPENED']);
    for (const t of types) assert.ok(allowed.has(t), `unexpected event type ${t}`);
  });
});

const TAMPER_INFERENCES = 21;

/**
 * The tamper-check fixtures: a log with a policy and TAMPER_INFERENCES inferences, and a log with
 * no inference. Built in the background while the first suite runs (two writers in parallel on
 * the same log, which the store supports), to keep the file fast.
 */
async function buildTamperFixtures(): Promise<{ dir: string; empty: string }> {
  const dir = fresh('tamper');
  const empty = fresh('tamper-empty');
  await Promise.all([initLog(dir), initLog(empty)]);
  await Promise.all([
    callIn(dir, ['--json', ...createArgs(pid('consent-tc')), ...OFFICER]).then((r) => okJson(r)),
    callIn(empty, ['--json', ...createArgs(pid('consent-none')), ...OFFICER]).then((r) => okJson(r)),
  ]);
  const infer = async (i: number) =>
    okJson(
      await callIn(dir, [
        '--json',
        ...inferArgs(pid('consent-tc'), DERM, {
          input: `s3://clinic-bucket/tc/in-${i}.png`,
          outputs: [`report_json=s3://clinic-bucket/tc/out-${i}.json@${sha256Hex(`out ${i}`)}`],
        }),
      ]),
    );
  await inParallel(
    Array.from({ length: TAMPER_INFERENCES }, (_, i) => () => infer(i)),
    2,
  );
  return { dir, empty };
}
let tamperFixtures: Promise<{ dir: string; empty: string }>;

before(() => {
  tamperFixtures = buildTamperFixtures();
  tamperFixtures.catch(() => {}); // awaited (and reported) by the tamper-check suite
});

describe('tamper-check', () => {
  let dir: string;
  let empty: string;

  before(async () => {
    ({ dir, empty } = await tamperFixtures);
  });

  const fileHash = (p: string) => sha256Hex(readFileSync(p));
  const tamperDirs = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('custos-tamper-')));

  it(`--sample 20 --rate 0.25 --seed 3 on ${TAMPER_INFERENCES} inferences: all 5 edits detected, no false alarm; the real log is untouched`, async () => {
    const dbBefore = fileHash(join(dir, 'custos.db'));
    const statsBefore = okJson(await callIn(dir, ['stats', '--json']));
    const tempBefore = tamperDirs();

    const r = okJson<TamperReport>(await callIn(dir, ['tamper-check', '--sample', '20', '--rate', '0.25', '--seed', '3', '--json']));
    assert.deepEqual(r, {
      total_inference_events: TAMPER_INFERENCES,
      baseline_ok_before: 20,
      sampled: 20,
      tampered: 5,
      detected: 5,
      missed: 0,
      falseAlarms: 0,
      detectionRate: 1,
      falseAlarmRate: 0,
      seed: 3,
    });

    assert.equal(fileHash(join(dir, 'custos.db')), dbBefore, 'custos.db is byte for byte unchanged');
    assert.deepEqual(okJson(await callIn(dir, ['stats', '--json'])), statsBefore);
    const v = okJson<{ ok: boolean; documents: { ok: boolean; documentsChecked: number } }>(await callIn(dir, ['--json', 'verify']));
    assert.equal(v.ok, true);
    assert.equal(v.documents.ok, true, 'no receipt of the real store was edited');
    const leftover = [...tamperDirs()].filter((n) => !tempBefore.has(n));
    assert.deepEqual(leftover, [], 'the working copy is removed');

    // The same seed gives the same report.
    const again = okJson<TamperReport>(await callIn(dir, ['--json', 'tamper-check', '--sample', '20', '--rate', '0.25', '--seed', '3']));
    assert.deepEqual(again, r);
  });

  it('the human form prints the rates', async () => {
    const r = await callIn(dir, ['tamper-check', '--sample', '8', '--rate', '0.5', '--seed', '11']);
    assertOk(r);
    assert.match(r.stdout, /^sampled: +8$/m);
    assert.match(r.stdout, /^tampered: +4$/m);
    assert.match(r.stdout, /^detection rate: +100\.0%$/m);
    assert.match(r.stdout, /^false-alarm rate: +0\.0%$/m);
    assert.match(r.stdout, new RegExp(`^inference events: +${TAMPER_INFERENCES}$`, 'm'));
    assert.match(r.stdout, /^ok before: +8$/m);
  });

  it('--rate 0: nothing tampered, so the detection rate is undefined (null, "n/a"), never 100%', async () => {
    const r = okJson<TamperReport>(await callIn(dir, ['--json', 'tamper-check', '--sample', '10', '--rate', '0', '--seed', '5']));
    assert.equal(r.tampered, 0);
    assert.equal(r.detected, 0);
    assert.equal(r.detectionRate, null);
    assert.equal(r.falseAlarmRate, 0);
    assert.equal(r.baseline_ok_before, 10);
    const h = await callIn(dir, ['tamper-check', '--sample', '10', '--rate', '0', '--seed', '5']);
    assertOk(h);
    assert.match(h.stdout, /^detection rate: +n\/a$/m);
    // Everything sampled was tampered with: no untouched receipt, so the false-alarm rate is undefined.
    const all = okJson<TamperReport>(await callIn(dir, ['--json', 'tamper-check', '--sample', '4', '--rate', '1', '--seed', '5']));
    assert.equal(all.tampered, 4);
    assert.equal(all.detectionRate, 1);
    assert.equal(all.falseAlarmRate, null);
  });

  it('a log without inferences: exit 2; a bad --rate: exit 2', async () => {
    const runs = await inParallel([
      () => callIn(empty, ['tamper-check', '--sample', '20', '--rate', '0.25', '--seed', '3', '--json']),
      () => callIn(dir, ['tamper-check', '--rate', '1.5']),
      () => callIn(dir, ['tamper-check', '--rate', 'abc']),
    ]);
    for (const r of runs) assertError(r, EXIT.validation, 'VALIDATION_FAILED');
  });
});

describe('demo', () => {
  it('exits 0 and prints "Demo OK"', async () => {
    const r = await callCli(['demo']);
    assertOk(r);
    assert.match(r.stdout, /^Demo OK\.?$/m);
    assert.doesNotMatch(r.stdout, /UNEXPECTED|FAILED|MISMATCH/);
  });
});

describe('fixed defects (regression tests)', () => {
  it('a generic event whose payload happens to have a "documents" key does not fail `verify` on an untampered log', async () => {
    const dir = fresh('generic-documents');
    await initLog(dir);
    const payload = fixture('generic-payload.json', { note: 'second-opinion-requested', documents: { scan: sha256Hex('a scan stored elsewhere') } });
    okJson(await callIn(dir, ['--json', 'append', '--type', 'CLINICAL_NOTE', '--payload-file', payload]));
    assertOk(await callIn(dir, ['verify']));
  });
  it('the generic append refuses governance event types (they are written only through consent checks)', async () => {
    const dir = fresh('reserved-type');
    await initLog(dir);
    const payload = fixture('forged-consent.json', { policyId: 'zz', version: 1, documents: { policy: sha256Hex('x') } });
    const r = await callIn(dir, ['append', '--type', 'CONSENT_CREATED', '--payload-file', payload]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^custos: VALIDATION_FAILED: [^\n]*reserved[^\n]*\n$/);
    // Audit events are written only by the server's audit trail: none can be forged either.
    for (const type of ['AUDIT_QUERY', 'PATIENT_DATA_OPENED', 'SECURITY_ALERT']) {
      const a = await callIn(dir, ['append', '--type', type, '--payload-file', payload]);
      assert.equal(a.code, 2, a.stderr);
      assert.match(a.stderr, /reserved/);
    }
    assertOk(await callIn(dir, ['verify']));
  });
});
