/**
 * issue 14 (parity with the reference): a training manifest in the reference's shape. The
 * reference records a training run's configuration as a `PipelineManifest` dataclass, written out
 * with `dataclasses.asdict`: `pipeline_name`, `pipeline_version`, `container_image`, `code_commit`,
 * `parameters`, `dependencies` (snake_case; the two optional ones may be null). Custos' training
 * manifest is a `name` plus what the engineer records, so such a manifest is mapped onto it: name
 * and version, the image and commit when set, parameters and dependencies as they are, and
 * `format: "reference-pipeline-manifest"` to say where it came from. Custos' own camelCase pipeline
 * manifest (`pipelineName`, ...) is mapped the same way.
 * @module
 */
import * as v from 'valibot';
import { parseWith } from './schema/parse.js';

const NAME = v.pipe(v.string(), v.minLength(1), v.maxLength(200));
const OPTIONAL_TEXT = (max: number) => v.optional(v.nullable(v.pipe(v.string(), v.maxLength(max))));
const PARAMETERS = v.optional(v.record(v.string(), v.unknown()), {});
const DEPENDENCIES = v.optional(v.record(v.string(), v.pipe(v.string(), v.maxLength(200))), {});

/** The reference's PipelineManifest as `asdict` writes it (every field; unknown ones refused). */
export const REFERENCE_PIPELINE_MANIFEST = v.strictObject({
  pipeline_name: NAME,
  pipeline_version: NAME,
  container_image: OPTIONAL_TEXT(500),
  code_commit: OPTIONAL_TEXT(200),
  parameters: PARAMETERS,
  dependencies: DEPENDENCIES,
});

/** Custos' pipeline manifest (camelCase), accepted as a training manifest too. */
const CUSTOS_PIPELINE_MANIFEST = v.strictObject({
  pipelineName: NAME,
  pipelineVersion: NAME,
  containerImage: OPTIONAL_TEXT(500),
  codeCommit: OPTIONAL_TEXT(200),
  parameters: PARAMETERS,
  dependencies: DEPENDENCIES,
});

/** The `format` a mapped manifest records. */
export const REFERENCE_MANIFEST_FORMAT = 'reference-pipeline-manifest';

/** Whether `input` is a pipeline manifest (the reference's or Custos' shape) rather than a Custos training manifest. */
export function isPipelineManifestShape(input: unknown): boolean {
  if (input === null || typeof input !== 'object' || Array.isArray(input) || Object.hasOwn(input, 'name')) return false;
  return Object.hasOwn(input, 'pipeline_name') || Object.hasOwn(input, 'pipelineName');
}

/**
 * Maps a pipeline manifest (the reference's snake_case or Custos' camelCase shape) to the fields of
 * a Custos training manifest.
 * @throws {ValidationError} VALIDATION_FAILED (the issues name the manifest's own fields)
 */
export function trainingManifestFromPipeline(input: unknown, path?: string): Record<string, unknown> {
  const snake = input !== null && typeof input === 'object' && Object.hasOwn(input, 'pipeline_name');
  const m = snake
    ? parseWith(REFERENCE_PIPELINE_MANIFEST, input, 'training manifest (PipelineManifest)', path)
    : (() => {
        const c = parseWith(CUSTOS_PIPELINE_MANIFEST, input, 'training manifest (pipeline manifest)', path);
        return {
          pipeline_name: c.pipelineName,
          pipeline_version: c.pipelineVersion,
          container_image: c.containerImage,
          code_commit: c.codeCommit,
          parameters: c.parameters,
          dependencies: c.dependencies,
        };
      })();
  return {
    name: m.pipeline_name,
    version: m.pipeline_version,
    ...(m.container_image == null ? {} : { containerImage: m.container_image }),
    ...(m.code_commit == null ? {} : { codeCommit: m.code_commit }),
    parameters: m.parameters,
    dependencies: m.dependencies,
    format: REFERENCE_MANIFEST_FORMAT,
  };
}
