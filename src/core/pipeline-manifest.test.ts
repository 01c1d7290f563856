/**
 * issue 14 (parity): a training manifest in the reference's shape (its PipelineManifest, as
 * dataclasses.asdict writes it) is mapped onto Custos' training manifest; a Custos manifest is
 * left as it is; a malformed one is refused with the field named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from './errors.js';
import { parseTrainingManifest } from './manifest.js';

// The reference's own demo training manifest (seed_py/governance_overlay.py, `train_pipeline`).
const REFERENCE = {
  pipeline_name: 'train_lesion_classifier',
  pipeline_version: '0.1.0',
  container_image: 'registry/noetiv/train:0.1.0',
  code_commit: 'train789',
  parameters: { epochs: 10, lr: 0.0001, batch_size: 16 },
  dependencies: { python: '3.11', torch: '2.4.0' },
};

describe('parseTrainingManifest with a PipelineManifest', () => {
  it("maps the reference's fields onto a training manifest", () => {
    assert.deepEqual(parseTrainingManifest(REFERENCE), {
      name: 'train_lesion_classifier',
      version: '0.1.0',
      containerImage: 'registry/noetiv/train:0.1.0',
      codeCommit: 'train789',
      parameters: { epochs: 10, lr: 0.0001, batch_size: 16 },
      dependencies: { python: '3.11', torch: '2.4.0' },
      format: 'reference-pipeline-manifest',
    });
  });

  it('leaves out the optional fields when null (Optional[str] = None), and defaults the dicts', () => {
    const m = parseTrainingManifest({ pipeline_name: 'p', pipeline_version: '1', container_image: null, code_commit: null });
    assert.deepEqual(m, { name: 'p', version: '1', parameters: {}, dependencies: {}, format: 'reference-pipeline-manifest' });
  });

  it("maps Custos' camelCase pipeline manifest the same way", () => {
    const m = parseTrainingManifest({ pipelineName: 'p', pipelineVersion: '2', codeCommit: 'abc' });
    assert.deepEqual(m, { name: 'p', version: '2', codeCommit: 'abc', parameters: {}, dependencies: {}, format: 'reference-pipeline-manifest' });
  });

  it('keeps a Custos training manifest as it is', () => {
    assert.deepEqual(parseTrainingManifest({ name: 'finetune', seed: 7 }), { name: 'finetune', seed: 7 });
  });

  for (const [what, input, path] of [
    ['a misspelt field', { ...REFERENCE, pipeline_nmae: 'x' }, 'pipeline_nmae'],
    ['a missing version', { pipeline_name: 'p' }, 'pipeline_version'],
    ['an empty name', { ...REFERENCE, pipeline_name: '' }, 'pipeline_name'],
    ['a non-string dependency', { ...REFERENCE, dependencies: { torch: 2 } }, 'dependencies.torch'],
  ] as const) {
    it(`refuses ${what} with VALIDATION_FAILED naming ${path}`, () => {
      assert.throws(
        () => parseTrainingManifest(input, 'manifest'),
        (e: unknown) => e instanceof ValidationError && e.code === 'VALIDATION_FAILED' && e.issues.some((i) => i.path.endsWith(path)),
      );
    });
  }
});
