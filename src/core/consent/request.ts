// TEMPORARY STUB (consent-wiring): replaced by the consent-engine branch's module. Do not merge.
import * as v from 'valibot';

export const CODING = v.pipe(v.string(), v.regex(/^([A-Za-z][A-Za-z0-9+.-]*:[^\s|]{1,255}\|)?[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'expected CODE or SYSTEM|CODE'));

export const CONSENT_REQUEST = v.object({
  purpose: CODING,
  role: CODING,
  actorReference: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z]+\/[A-Za-z0-9.-]{1,64}$/))),
  action: v.optional(CODING),
  class: v.optional(CODING),
  code: v.optional(CODING),
  securityLabels: v.optional(v.pipe(v.array(CODING), v.maxLength(64))),
  dataTime: v.optional(v.string()),
});

export function parseCoding(value: string, _attribute: string): { system: string; code: string } {
  const i = value.lastIndexOf('|');
  return i < 0 ? { system: '', code: value } : { system: value.slice(0, i), code: value.slice(i + 1) };
}
