/**
 * A patient's accounting of disclosures as FHIR R4: a `collection` Bundle of one AuditEvent (IHE
 * BALP, src/fhir/audit-event.ts) per line of the report, each with its entry's inclusion proof
 * against the report's checkpoint (the Bundle's signature: the signed note, base64), and an
 * OperationOutcome saying what the report cannot show.
 * @module
 */
import type { AuditEvent, Bundle, OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { ValidationError } from '../core/errors.js';
import { parseLoggedEvent } from '../core/events.js';
import { logReference, toAuditEvent } from '../fhir/audit-event.js';
import { LOG_SIGNATURE_TYPE } from '../fhir/provenance.js';
import { CS, SID } from '../fhir/uris.js';
import type { DisclosureReport } from './disclosures.js';

/** The FHIR Bundle of a report: AuditEvents in the report's order, then the limits of the report. */
export function disclosureReportToFhir(report: DisclosureReport): Bundle<AuditEvent | OperationOutcome> {
  const events = report.lines.map((line) => {
    const event = parseLoggedEvent(line.entry);
    if (!event) throw new ValidationError('VALIDATION_FAILED', `entry ${line.index} of the report is not an event`);
    return toAuditEvent({ index: line.index, leafHash: line.leafHash, event }, { origin: report.log.origin, inclusion: line.proof });
  });
  const c = report.cannotShow;
  const issues: OperationOutcomeIssue[] = [];
  const info = (code: string, text: string) => issues.push({ severity: 'information', code: 'informational', details: { coding: [{ system: CS.disclosureLimit, code }], text } });
  if (c.unknownSubject) info('unknown-subject', 'The log has no record of this subject (never recorded, or erased): an empty list does not mean that no one used the data.');
  if (c.outsidePeriod > 0) info('outside-period', `${c.outsidePeriod} entries of this subject fall outside the period asked for and are not listed.`);
  for (const e of c.erasures) info('erasure', `Erasure at entry ${e.index} (${e.kind}, ${e.time}) removed links of ${e.linkedToSubject} entries listed here; what they named can no longer be named.`);
  if (c.unlinked.entries > 0) info('unlinked', `${c.unlinked.entries} entries under ${c.unlinked.policies} policies can no longer be tied to any subject (their subject's opening was erased).`);
  if (c.afterCheckpoint > 0) info('after-checkpoint', `${c.afterCheckpoint} entries were stored after the checkpoint and are not covered by this report.`);
  const outcome: OperationOutcome = {
    resourceType: 'OperationOutcome',
    id: 'limits',
    issue: issues.length > 0 ? issues : [{ severity: 'information', code: 'informational', details: { text: 'No known limit applies to this report beyond those of docs/disclosures.md.' } }],
  };
  return {
    resourceType: 'Bundle',
    type: 'collection',
    identifier: { system: SID.logEntry, value: String(report.query.index) },
    timestamp: report.generatedAt,
    signature: {
      type: [LOG_SIGNATURE_TYPE],
      when: report.generatedAt,
      who: logReference(report.log.origin),
      sigFormat: 'text/plain',
      data: Buffer.from(report.log.checkpoint, 'utf8').toString('base64'),
    },
    entry: [...events.map((resource) => ({ fullUrl: `urn:custos:log-entry:${resource.id}`, resource })), { fullUrl: 'urn:custos:disclosures:limits', resource: outcome }],
  };
}
