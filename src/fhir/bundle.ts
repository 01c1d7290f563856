/**
 * A FHIR R4 searchset Bundle: the page's resources (`search.mode` match), the total number of
 * matches, and self / next / previous links.
 * @module
 */
import type { Bundle, BundleLink, Resource } from '@medplum/fhirtypes';

/** A searchset page. `base` is the absolute base URL of the FHIR endpoint (e.g. `https://host/fhir`). */
export interface SearchPage<R extends Resource> {
  readonly base: string;
  readonly resources: readonly R[];
  readonly total: number;
  readonly links: { readonly self: string; readonly next?: string | undefined; readonly previous?: string | undefined };
}

/** The searchset Bundle of a page (fullUrl: base/Type/id). */
export function toSearchBundle<R extends Resource>(page: SearchPage<R>): Bundle<R> {
  const link: BundleLink[] = [{ relation: 'self', url: page.links.self }];
  if (page.links.next) link.push({ relation: 'next', url: page.links.next });
  if (page.links.previous) link.push({ relation: 'previous', url: page.links.previous });
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: page.total,
    link,
    entry: page.resources.map((resource) => ({ fullUrl: `${page.base}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'match' } })),
  };
}
