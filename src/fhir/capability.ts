/**
 * The CapabilityStatement of the FHIR endpoint, derived from the routes the server actually serves
 * under /fhir: `GET /fhir/T` is search-type, `GET /fhir/T/:id` read, `POST /fhir/T` create.
 * @module
 */
import type { CapabilityStatement, CapabilityStatementRestResource, CapabilityStatementRestResourceSearchParam, ResourceType } from '@medplum/fhirtypes';
import { SEARCH_PARAMS } from './search.js';

/** A served route: method and Fastify URL (`/fhir/AuditEvent/:id`). */
export interface FhirRoute {
  readonly method: string;
  readonly url: string;
}

/** What the statement says about the server. */
export interface CapabilityOptions {
  /** When the statement was made (FHIR dateTime). */
  readonly date: string;
  readonly softwareVersion: string;
}

type Interaction = 'read' | 'search-type' | 'create';

/** Search parameters per resource type (the types whose search Custos serves). */
const SEARCH_BY_TYPE: Readonly<Record<string, readonly CapabilityStatementRestResourceSearchParam[]>> = {
  AuditEvent: SEARCH_PARAMS.map((p) => ({ ...p })),
  Provenance: SEARCH_PARAMS.map((p) => ({ ...p })),
};

/** Builds the CapabilityStatement (R4, fhirVersion 4.0.1) of `routes`. */
export function buildCapabilityStatement(routes: readonly FhirRoute[], o: CapabilityOptions): CapabilityStatement {
  const byType = new Map<string, Set<Interaction>>();
  for (const r of routes) {
    const m = /^\/fhir\/([A-Z][A-Za-z]+)(\/:[A-Za-z]+)?$/.exec(r.url);
    if (!m) continue;
    const interaction: Interaction | undefined = r.method === 'POST' && !m[2] ? 'create' : r.method === 'GET' ? (m[2] ? 'read' : 'search-type') : undefined;
    if (!interaction) continue;
    (byType.get(m[1]!) ?? byType.set(m[1]!, new Set()).get(m[1]!)!).add(interaction);
  }
  const resource: CapabilityStatementRestResource[] = [...byType.keys()].sort().map((type) => {
    const ints = [...byType.get(type)!].sort();
    const search = ints.includes('search-type') ? (SEARCH_BY_TYPE[type] ?? []) : [];
    return {
      type: type as ResourceType,
      interaction: ints.map((code) => ({ code })),
      ...(search.length > 0 ? { searchParam: [...search] } : {}),
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: o.date,
    publisher: 'Custos',
    kind: 'instance',
    software: { name: 'Custos', version: o.softwareVersion },
    implementation: { description: 'Custos: the audit trail of a verifiable governance log as FHIR (AuditEvent, Provenance)' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Every interaction but metadata needs a bearer token (a Custos API token or an OIDC JWT); see docs/fhir.md.',
        security: { cors: false, description: 'Authorization: Bearer <token>; permissions from the role table (read for searches, commitments:open in addition for patient)' },
        resource,
      },
    ],
  };
}
