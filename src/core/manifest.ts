/**
 * Provenance documents: pipeline manifests, model specs, training manifests and inference receipts.
 * All are stored off-ledger as canonical JSON and committed on the log by their SHA-256.
 * @module
 */
import * as v from 'valibot';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import { CODE, ID, SHA256_HEX, URI, parseWith } from './schema/parse.js';
import { isPipelineManifestShape, trainingManifestFromPipeline } from './pipeline-manifest.js';

const JSON_OBJECT = v.pipe(
  v.record(v.string(), v.unknown()),
  v.transform((o) => JSON.parse(canonicalJson(o)) as { [k: string]: JsonValue }),
);
const NAME = v.pipe(v.string(), v.minLength(1), v.maxLength(200));

const PIPELINE = v.object({
  pipelineName: NAME,
  pipelineVersion: NAME,
  containerImage: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(500)))),
  codeCommit: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(200)))),
  parameters: v.optional(JSON_OBJECT, {}),
  dependencies: v.optional(v.record(v.string(), v.string()), {}),
});
/** The computational pipeline that processed the data (the reference's PipelineManifest). */
export type PipelineManifest = v.InferOutput<typeof PIPELINE>;

const MODEL = v.object({
  modelName: NAME,
  modelVersion: NAME,
  /** SHA-256 of the weights file: proves exactly which weights ran. */
  weightsHash: SHA256_HEX,
  framework: NAME,
  extra: v.optional(JSON_OBJECT, {}),
});
/** Which model, with the digest of its weights (the reference's ModelSpec). */
export type ModelSpec = v.InferOutput<typeof MODEL>;

const TRAINING = v.looseObject({ name: NAME });
/** A training run's manifest: a name plus whatever the ML engineer records (hyperparameters, seeds...). */
export type TrainingManifest = v.InferOutput<typeof TRAINING>;

/** @throws {ValidationError} VALIDATION_FAILED */
export function parsePipelineManifest(input: unknown, path?: string): PipelineManifest {
  return parseWith(PIPELINE, input, 'pipeline manifest', path);
}
/** @throws {ValidationError} VALIDATION_FAILED */
export function parseModelSpec(input: unknown, path?: string): ModelSpec {
  return parseWith(MODEL, input, 'model spec', path);
}
/** @throws {ValidationError} VALIDATION_FAILED, CANONICAL_JSON_UNSUPPORTED_VALUE */
export function parseTrainingManifest(input: unknown, path?: string): TrainingManifest {
  // issue 14: a manifest in the reference's shape (a PipelineManifest) is mapped first.
  const mapped = isPipelineManifestShape(input) ? trainingManifestFromPipeline(input, path) : input;
  const m = parseWith(TRAINING, mapped, 'training manifest', path);
  canonicalJson(m);
  return m;
}

/** Schema name of inference receipts. */
export const RECEIPT_SCHEMA = 'custos/receipt/v1';

/** An artifact as a receipt records it: a salted commitment to its URI and the digest of its bytes. */
export interface ArtifactRef {
  readonly uri: string;
  readonly digest: string;
}

/**
 * The reproducibility manifest of one inference: everything needed to reconstruct the decision.
 * Stored off-ledger; the INFERENCE_EXECUTED event commits its hash.
 */
export interface Receipt {
  readonly schema: typeof RECEIPT_SCHEMA;
  /** The log entry that committed this receipt, and its time. */
  readonly event: { readonly index: number; readonly time: string };
  readonly actor: string;
  readonly role: string;
  readonly purpose: string;
  readonly consent: { readonly policyId: string; readonly version: number; readonly policyHash: string };
  readonly input: ArtifactRef;
  readonly outputs: readonly (ArtifactRef & { readonly name: string })[];
  /** SHA-256 of the pipeline manifest document. */
  readonly pipeline: string;
  /** SHA-256 of the model spec document. */
  readonly model: string;
  /**
   * SHA-256 of the explanations document ({@link ExplanationsDocument}), when the inference carries
   * explanation artifacts (issue 14). Absent otherwise: a receipt without explanations is
   * byte-for-byte what it was before the field existed.
   */
  readonly explanations?: string;
}

/** Artifact input: a URI (kept off-ledger) and the SHA-256 of the artifact's bytes. */
export const ARTIFACT = v.object({ uri: URI, digest: SHA256_HEX });
/** An output's name is a lowercase identifier (it is logged): `report_json`, `mask.png`. */
export const OUTPUT_ARTIFACT = v.object({
  name: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected an output name such as report_json (lowercase letters, digits, . _ -)')),
  ...ARTIFACT.entries,
});
export { CODE, ID };

const HEX64 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
const RECEIPT = v.object({
  schema: v.literal(RECEIPT_SCHEMA),
  event: v.object({ index: v.pipe(v.number(), v.integer(), v.minValue(0)), time: v.string() }),
  actor: ID,
  role: CODE,
  purpose: CODE,
  consent: v.object({ policyId: ID, version: v.pipe(v.number(), v.integer(), v.minValue(1)), policyHash: HEX64 }),
  input: v.object({ uri: HEX64, digest: HEX64 }),
  outputs: v.array(v.object({ name: CODE, uri: HEX64, digest: HEX64 })),
  pipeline: HEX64,
  model: HEX64,
  explanations: v.optional(HEX64),
});

/**
 * Parses a stored receipt document (untrusted: it comes back from the store).
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseReceipt(input: unknown): Receipt {
  return parseWith(RECEIPT, input, 'receipt') as Receipt;
}

// ---- issue 14: explanations in receipts --------------------------------------------------------

/** Schema name of an inference's explanations document. */
export const EXPLANATIONS_SCHEMA = 'custos/explanations/v1';
/** At most this many explanation artifacts per inference. */
export const MAX_EXPLANATIONS = 16;
/** At most this many characters of canonical JSON of one explanation's parameters. */
export const MAX_EXPLANATION_PARAMETERS = 65_536;

/**
 * An explanation artifact as a caller gives it: the method (a code of the deployment's explanation
 * vocabulary, checked by the service), its parameters (any JSON object: stored off-ledger only,
 * canonical), the name of the output it explains (one of the inference's outputs), the artifact's
 * URI (committed, never logged) and the SHA-256 of its bytes.
 */
export const EXPLANATION = v.object({
  method: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]{0,63}$/, 'expected an explanation method code such as kernel_shap (lowercase letters, digits, _)')),
  // A JSON object, kept as canonical JSON. (Not `v.record`: it would turn an array into an object.)
  parameters: v.optional(
    v.pipe(
      v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'expected a JSON object of parameters'),
      v.record(v.string(), v.unknown()),
      v.transform((o) => JSON.parse(canonicalJson(o)) as { [k: string]: JsonValue }),
      v.check((o) => canonicalJson(o).length <= MAX_EXPLANATION_PARAMETERS, 'explanation parameters larger than 64 KiB of canonical JSON'),
    ),
    {},
  ),
  output: OUTPUT_ARTIFACT.entries.name,
  ...ARTIFACT.entries,
});

/** One explanation as the explanations document records it (the URI as its salted commitment). */
export interface ExplanationRecord {
  readonly method: string;
  readonly output: string;
  /** Salted commitment to the artifact's URI (the opening is off-ledger and erasable). */
  readonly uri: string;
  readonly digest: string;
  readonly parameters: { readonly [k: string]: JsonValue };
}

/**
 * The explanations of one inference: an off-ledger document (kind `explanations`), committed by
 * the INFERENCE_EXECUTED event (`documents.explanations`) and named by the receipt
 * (`explanations`). The event also carries each explanation's method, output and digest, in order.
 */
export interface ExplanationsDocument {
  readonly schema: typeof EXPLANATIONS_SCHEMA;
  readonly explanations: readonly ExplanationRecord[];
}

const EXPLANATIONS_DOCUMENT = v.object({
  schema: v.literal(EXPLANATIONS_SCHEMA),
  explanations: v.pipe(
    v.array(
      v.object({
        method: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]{0,63}$/)),
        output: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)),
        uri: HEX64,
        digest: HEX64,
        parameters: v.record(v.string(), v.unknown()),
      }),
    ),
    v.minLength(1),
    v.maxLength(MAX_EXPLANATIONS),
  ),
});

/**
 * Parses a stored explanations document (untrusted: it comes back from the store or a bundle).
 * @throws {ValidationError} VALIDATION_FAILED
 */
export function parseExplanationsDocument(input: unknown): ExplanationsDocument {
  return parseWith(EXPLANATIONS_DOCUMENT, input, 'explanations document') as ExplanationsDocument;
}
