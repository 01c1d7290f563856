/**
 * Policy ids in tests. Custos generates opaque policy ids (`pol_` + 26 base32 characters); a caller
 * may supply one only in exactly that form. Suites name their policies with readable labels and
 * pass `pid(label)`: a format-valid id derived from the label, the same in every process (CLI
 * children, servers), so a suite can refer to a policy it created without threading the returned id
 * through every step. A label that was never created is a well-formed id of no policy.
 */
import { createHash } from 'node:crypto';
import { policyIdFromBytes } from '../../src/core/vocabulary.js';

/** The opaque policy id a test uses for `label`. */
export function pid(label: string): string {
  return policyIdFromBytes(createHash('sha256').update(`custos-test-policy:${label}`).digest().subarray(0, 16));
}
