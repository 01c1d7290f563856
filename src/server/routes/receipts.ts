/**
 * Receipts of inference events, rebuilt with every hash re-checked; opening their patient-linked
 * commitments needs a permission, a purpose of use, a rate limit and an event on the log.
 * @module
 */
import * as v from 'valibot';
import { ValidationError } from '../../core/errors.js';
import { CODE, parseWith } from '../../core/schema/parse.js';
import { requirePermission } from '../auth.js';
import { routeOf } from '../context.js';
import { route } from '../route.js';
import { INDEX } from './shared.js';

export const RECEIPT_QUERY = v.object({
  open: v.optional(v.picklist(['true', 'false'])),
  purpose: v.optional(v.pipe(v.string(), v.maxLength(64))),
});

export const receiptRoutes = [
  route({
    method: 'GET',
    url: '/api/v1/receipts/:index',
    summary:
      'Rebuild the receipt of an inference event, every hash re-checked, with its inclusion proof; URI commitments only (AUDIT_READ). With open=true&purpose=CODE and commitments:open: the URIs too (PATIENT_DATA_OPENED, rate-limited)',
    permission: 'receipts',
    params: v.object({ index: INDEX }),
    query: RECEIPT_QUERY,
    handler: async ({ params, query, principal: p, req }, { governance, audit, openings, rebuildReceipt }) => {
      const index = params.index;
      const who = { id: p.actor, role: p.role };
      if (query.open !== 'true') {
        const r = await rebuildReceipt(index, false);
        await audit.read(who, { route: routeOf(req), permission: 'receipts', eventIndex: index });
        return r;
      }
      // Opening patient-linked commitments: a permission, a purpose of use, a rate limit, and an
      // event on the log naming the commitments before any value is returned.
      requirePermission(p, 'commitments:open');
      if (query.purpose === undefined)
        throw new ValidationError('VALIDATION_FAILED', 'opening commitments needs a purpose of use (purpose=CODE)', { issues: [{ path: 'purpose', message: 'required with open=true' }] });
      const purpose = parseWith(CODE, query.purpose, 'purpose');
      // A code from the purpose vocabulary (HL7 v3 PurposeOfUse + configured), never free text.
      if (!governance.vocabulary.purposes.has(purpose))
        throw new ValidationError('VALIDATION_FAILED', `unknown purpose ${purpose}`, { issues: [{ path: 'purpose', message: 'not in the purpose vocabulary' }] });
      openings.take(p.key);
      const r = await rebuildReceipt(index, true);
      const commitments = r.artifacts.filter((a) => a.state === 'opened').map((a) => a.commitment);
      await audit.opened(who, { route: routeOf(req), permission: 'commitments:open', purpose, eventIndex: index, commitments });
      return r;
    },
  }),
];
