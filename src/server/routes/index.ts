/**
 * Every API route, in the order of the OpenAPI document and the docs page.
 * @module
 */
import type { Route } from '../route.js';
import { consentRoutes } from './consents.js';
import { fhirConsentRoutes } from './fhir-consents.js';
import { accessRoutes, inferenceRoutes, trainingRoutes } from './decisions.js';
import { disclosureRoutes } from './disclosures.js';
import { entryRoutes } from './entries.js';
import { erasureRoutes } from './erasures.js';
import { exportRoutes } from './export.js';
import { fhirRoutes } from './fhir.js';
import { overviewRoutes } from './overview.js';
import { receiptRoutes } from './receipts.js';
import { bundleRoutes } from './bundles.js';
import { meRoutes, metricsRoutes, tokenRoutes } from './tokens.js';
import { witnessRoutes } from './witnesses.js';
import { reviewRoutes } from './reviews.js';
// issue 14: model registry and change control
import { modelRoutes } from './models.js';
import { federatedRoutes } from './federated.js';
// issue 15: differential privacy
import { dpRoutes } from './dp.js';
// issue 15: selective disclosure (attestations)
import { attestationRoutes } from './attestations.js';
// issue 14: training cohorts
import { trainingProofRoutes } from './training.js';
// issue 14: import of the reference's ledgers
import { importRoutes } from './imports.js';

export const API_ROUTES: readonly Route[] = [
  ...meRoutes,
  ...consentRoutes,
  ...fhirConsentRoutes,
  ...accessRoutes,
  ...inferenceRoutes,
  ...trainingRoutes,
  ...reviewRoutes,
  ...erasureRoutes,
  ...disclosureRoutes,
  ...receiptRoutes,
  ...bundleRoutes,
  ...entryRoutes,
  ...overviewRoutes,
  ...exportRoutes,
  ...fhirRoutes,
  ...witnessRoutes,
  ...tokenRoutes,
  ...metricsRoutes,
  // issue 14: model registry and change control
  ...modelRoutes,
  // issue 14: federated learning rounds
  ...federatedRoutes,
  // issue 15: differential privacy
  ...dpRoutes,
  // issue 15: selective disclosure (attestations)
  ...attestationRoutes,
  // issue 14: training cohorts
  ...trainingProofRoutes,
  // issue 14: import of the reference's ledgers
  ...importRoutes,
];
