/**
 * issue 14: training cohort proofs for the privacy officer (permission `training:proof`). The
 * subject id travels in the body, never in the URL (URLs reach access logs). The proof opens the
 * subject's commitment (it carries the salt, and is meant for the patient), so the read is on the
 * log first: PATIENT_DATA_OPENED with the subject's commitments, never the id; rate-limited like
 * any opening. docs/training.md describes the proof.
 * @module
 */
import * as v from 'valibot';
import { CODE, OPAQUE_ID } from '../../core/schema/parse.js';
import { ValidationError } from '../../core/errors.js';
import { buildCohortProof } from '../../service/governance/cohort.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { INDEX } from './shared.js';

/** Body of POST /api/v1/training/:index/cohort-proof. */
export const COHORT_PROOF_BODY = v.strictObject({
  /** The pseudonymous subject id. */
  subject: OPAQUE_ID,
  /** Ask for the proof of absence (non-inclusion) rather than of inclusion. */
  absent: v.optional(v.boolean()),
  /** The purpose of use of the opening (a code of the purpose vocabulary), e.g. PATRQT. */
  purpose: CODE,
});

export const trainingProofRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/training/:index/cohort-proof',
    summary:
      "The patient-held proof that a subject was (or, with absent=true, was not) in the cohort of the training run at entry index; the subject id in the body, never the URL. Opens the subject's commitment: PATIENT_DATA_OPENED is logged first (rate-limited). 409 COHORT_SUBJECT_PRESENT / COHORT_SUBJECT_ABSENT for the wrong kind",
    permission: 'training:proof',
    params: v.object({ index: INDEX }),
    body: COHORT_PROOF_BODY,
    handler: async ({ params, body, principal: p, req }, { log, governance, audit, openings }) => {
      if (!governance.vocabulary.purposes.has(body.purpose)) {
        throw new ValidationError('VALIDATION_FAILED', `unknown purpose ${body.purpose}`, { issues: [{ path: 'purpose', message: 'not in the purpose vocabulary' }] });
      }
      openings.take(p.key);
      const who = { id: p.actor, role: p.role };
      const r = await buildCohortProof(log, params.index, body.subject, {
        absent: body.absent === true,
        audit: async (commitments) => {
          await audit.opened(who, { route: routeOf(req), permission: 'training:proof', purpose: body.purpose, eventIndex: params.index, commitments });
        },
      });
      return r.proof;
    },
  }),
];
