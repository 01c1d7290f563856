/**
 * Offline evidence bundles of inference events (docs/bundle-format.md), under the permissions of
 * receipts: redacted (no openings) for `receipts`; with open=true&purpose=CODE and commitments:open,
 * the openings too (PATIENT_DATA_OPENED written before they are read, rate-limited).
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../../core/errors.js';
import { CODE, parseWith } from '../../core/schema/parse.js';
import { buildBundle } from '../../service/bundle.js';
import { requirePermission } from '../auth.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { RECEIPT_QUERY } from './receipts.js';
import { INDEX } from './shared.js';

export const bundleRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/bundles/:index',
    summary:
      'The offline evidence bundle of an inference event (DSSE-signed in-toto statement, documents, inclusion proof, checkpoint), redacted (AUDIT_READ). With open=true&purpose=CODE and commitments:open: with the openings (PATIENT_DATA_OPENED, rate-limited)',
    permission: 'receipts',
    params: v.object({ index: INDEX }),
    query: RECEIPT_QUERY,
    handler: async ({ params, query, principal: p, req }, { log, governance, audit, openings }) => {
      const index = params.index;
      const who = { id: p.actor, role: p.role };
      if (query.open !== 'true') {
        const r = await buildBundle(log, log.signer, index, { redact: true });
        await audit.read(who, { route: routeOf(req), permission: 'receipts', eventIndex: index });
        return r.bundle;
      }
      // As the receipts route: a permission, a purpose of use, a rate limit, and an event on the log
      // naming the commitments before any value is read.
      requirePermission(p, 'commitments:open');
      if (query.purpose === undefined)
        throw new ValidationError('VALIDATION_FAILED', 'opening commitments needs a purpose of use (purpose=CODE)', { issues: [{ path: 'purpose', message: 'required with open=true' }] });
      const purpose = parseWith(CODE, query.purpose, 'purpose');
      if (!governance.vocabulary.purposes.has(purpose))
        throw new ValidationError('VALIDATION_FAILED', `unknown purpose ${purpose}`, { issues: [{ path: 'purpose', message: 'not in the purpose vocabulary' }] });
      openings.take(p.key);
      const r = await buildBundle(log, log.signer, index, {
        redact: false,
        audit: async (commitments) => {
          await audit.opened(who, { route: routeOf(req), permission: 'commitments:open', purpose, eventIndex: index, commitments });
        },
      });
      return r.bundle;
    },
  }),
];
