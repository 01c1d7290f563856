/**
 * Explanation artifacts of an inference (issue 14): checked against the deployment's explanation
 * vocabulary and the inference's outputs, then recorded as one off-ledger explanations document
 * (URI commitments, parameters) that the INFERENCE_EXECUTED event commits by its hash, beside each
 * explanation's method, output and digest.
 * @module
 */
import type * as v from 'valibot';
import { ValidationError, type ValidationIssue } from '../../core/errors.js';
import { EXPLANATIONS_SCHEMA, type EXPLANATION, type ExplanationsDocument } from '../../core/manifest.js';
import type { Commitment } from './commitments.js';
import { DOC, doc, type BuiltDocument } from './documents.js';
import type { GovernanceState } from './state.js';

/** An explanation as the request schema gives it. */
export type ExplanationInput = v.InferOutput<typeof EXPLANATION>;

/**
 * Checks each explanation's method against the explanation vocabulary and its output against the
 * inference's output names (nothing is written when one fails).
 * @throws {ValidationError} VALIDATION_FAILED, every issue listed with its path
 */
export function checkExplanations(s: GovernanceState, explanations: readonly ExplanationInput[], outputNames: readonly string[]): void {
  const issues: ValidationIssue[] = [];
  explanations.forEach((x, i) => {
    if (!s.vocab.explanationMethods.has(x.method)) {
      issues.push({ path: `explanations.${i}.method`, message: `unknown explanation method (one of ${[...s.vocab.explanationMethods].join(', ')}, or a configured one)` });
    }
    if (!outputNames.includes(x.output)) {
      issues.push({ path: `explanations.${i}.output`, message: `not an output of this inference (outputs: ${outputNames.join(', ')})` });
    }
  });
  if (issues.length > 0) throw new ValidationError('VALIDATION_FAILED', `${issues[0]!.path}: ${issues[0]!.message}`, { issues });
}

/** What an inference's explanations put in its receipt, its event and the off-ledger store. */
export interface ExplanationParts {
  readonly document: BuiltDocument;
  /** The event's `explanations`: method, output and digest of each, in order (nothing else). */
  readonly onLog: readonly { readonly method: string; readonly output: string; readonly digest: string }[];
}

/** The explanations document of `explanations`, their URIs given as `uris` (same order). */
export function explanationParts(explanations: readonly ExplanationInput[], uris: readonly Commitment[]): ExplanationParts {
  const value: ExplanationsDocument = {
    schema: EXPLANATIONS_SCHEMA,
    explanations: explanations.map((x, i) => ({ method: x.method, output: x.output, uri: uris[i]!.c.commitment, digest: x.digest, parameters: x.parameters })),
  };
  return { document: doc(DOC.explanations, value), onLog: explanations.map((x) => ({ method: x.method, output: x.output, digest: x.digest })) };
}
