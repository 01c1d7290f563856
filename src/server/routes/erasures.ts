/**
 * Erasure of a subject's or URI's openings, or of a provenance document by hash.
 * @module
 */
import * as v from 'valibot';
import { DOCUMENT_HASH, ERASE_KIND, ERASE_VALUE } from '../../service/requests.js';
import { route } from '../route.js';
import { ACTOR_CLAIM, EVENT, actorFrom, eventJson } from './shared.js';

/** Body of POST /erasures: what to erase (a document by its hash), and the actor claim. Nothing else. */
export const ERASE_BODY = v.pipe(
  v.strictObject({ kind: ERASE_KIND, value: ERASE_VALUE, actor: v.optional(ACTOR_CLAIM) }),
  v.forward(
    v.check((b) => b.kind !== 'document' || v.is(DOCUMENT_HASH, b.value), 'expected a document hash: SHA-256, 64 lowercase hex'),
    ['value'],
  ),
);

export const erasureRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/erasures',
    summary:
      "Erase a subject's or URI's openings (a subject's linked URIs too, and the exact bytes of its imported FHIR Consents: `documents`), or a provenance document by hash; logs ERASURE_PERFORMED in the same transaction",
    permission: 'erase',
    status: 201,
    body: ERASE_BODY,
    response: v.object({ erased: v.array(v.string()), document: v.optional(v.string()), documents: v.optional(v.array(v.string())), event: v.nullable(EVENT), scrub: v.optional(v.unknown()) }),
    handler: async ({ body, principal, reply }, { governance }) => {
      const r = await governance.erase(body.kind, body.value, actorFrom(principal, body));
      // Nothing held an opening of that value: nothing was written.
      if (!r.event) {
        reply.status(200);
        return { erased: [], event: null };
      }
      return {
        erased: r.commitments,
        ...(r.document === undefined ? {} : { document: r.document }),
        ...(r.documents === undefined ? {} : { documents: r.documents }),
        event: eventJson(r.event),
        scrub: r.scrub ?? null,
      };
    },
  }),
];
