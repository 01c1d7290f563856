import { readFileSync } from 'node:fs';
import { ValidationError } from '../../core/errors.js';
import { parseHashHex, toHex } from '../../core/hash.js';
import { canonicalJsonBytes } from '../../core/canonical-json.js';
import { ATTESTATION_EVENT, checkAppendPayload, DP_EVENT, LEGACY_EVENT, WITNESS_EVENT } from '../../core/events.js';
import { createVocabulary } from '../../core/vocabulary.js';
import type { AppendResult } from '../../log/log.js';
import { EVENT } from '../../service/governance.js';
import { AUDIT_EVENT } from '../../service/audit.js';
import { TOKEN_EVENT } from '../../service/tokens.js';
import { withLog, type CommandContext } from '../context.js';
import { inCwd, printFields, printJson, readStdin } from '../output.js';

/** The event type of the generic audit event of the Merkle ledger design. */
export const AUDIT_EVENT_TYPE = 'AUDIT_EVENT';

export interface AppendOptions {
  readonly resource?: string;
  readonly practitioner?: string;
  readonly hash?: string;
  readonly type?: string;
  readonly payloadFile?: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

function checkId(value: string, field: string): string {
  if (!ID_PATTERN.test(value)) {
    throw new ValidationError('VALIDATION_FAILED', `--${field} must be an identifier (letters, digits, . _ : @ / -; at most 128)`, {
      issues: [{ path: field, message: 'invalid identifier' }],
    });
  }
  return value;
}

function checkNotReserved(type: string | undefined): void {
  if (type !== undefined && RESERVED_TYPES.has(type)) {
    throw new ValidationError('VALIDATION_FAILED', `event type ${type} is reserved to the governance commands (consent, access, infer, train, erase) and the server's audit trail`, {
      issues: [{ path: 'type', message: 'reserved event type' }],
    });
  }
}

/**
 * Builds the event from the options, validating everything before the log is opened: a reserved
 * type is refused on both forms; a registered type's payload is checked against the event registry,
 * an operator-defined type's must hold only identifiers, codes, hashes, numbers and booleans.
 */
export function eventFromOptions(o: AppendOptions, readStdin: () => string, readFile: (path: string) => string = (path) => readFileSync(path, 'utf8')): { type: string; payload: unknown } {
  const ev = buildEvent(o, readStdin, readFile);
  // Unsupported values (NaN, Infinity, lone surrogates, too deep) keep their own error code.
  canonicalJsonBytes(ev.payload);
  checkAppendPayload(ev.type, ev.payload, createVocabulary());
  return ev;
}

function buildEvent(o: AppendOptions, readStdin: () => string, readFile: (path: string) => string): { type: string; payload: unknown } {
  checkNotReserved(o.type);
  const generic = o.resource !== undefined || o.practitioner !== undefined || o.hash !== undefined;
  if (generic) {
    if (o.payloadFile !== undefined) {
      throw new ValidationError('VALIDATION_FAILED', 'use either --resource/--practitioner/--hash or --payload-file, not both');
    }
    if (o.resource === undefined || o.practitioner === undefined || o.hash === undefined) {
      throw new ValidationError('VALIDATION_FAILED', 'a generic audit event needs --resource, --practitioner and --hash');
    }
    return {
      type: o.type ?? AUDIT_EVENT_TYPE,
      payload: {
        resource: checkId(o.resource, 'resource'),
        practitioner: checkId(o.practitioner, 'practitioner'),
        contentHash: toHex(parseHashHex(o.hash, 'hash')),
      },
    };
  }
  if (o.payloadFile === undefined || o.type === undefined) {
    throw new ValidationError('VALIDATION_FAILED', 'give --resource, --practitioner and --hash, or --type with --payload-file');
  }
  let text: string;
  try {
    text = o.payloadFile === '-' ? readStdin() : readFile(o.payloadFile);
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read payload file ${o.payloadFile}`, { cause: err });
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `payload file ${o.payloadFile} is not valid JSON`, { cause: err });
  }
  return { type: o.type, payload };
}

// Governance events are written only by the overlay, which checks consent and stores their documents;
// audit events only by the server's audit trail; token events only by the token service.
const RESERVED_TYPES: ReadonlySet<string> = new Set([
  ...Object.values(EVENT),
  ...Object.values(AUDIT_EVENT),
  ...Object.values(TOKEN_EVENT),
  ...Object.values(WITNESS_EVENT),
  ...Object.values(LEGACY_EVENT),
  // issue 15: differential privacy (a release is written only with its document, against the budget)
  ...Object.values(DP_EVENT),
  ...Object.values(ATTESTATION_EVENT),
]);

/** JSON shape of an append result. */
export function appendResultJson(r: AppendResult): Record<string, unknown> {
  return {
    index: r.index,
    leafHash: toHex(r.leafHash),
    treeSize: r.checkpoint.treeSize,
    rootHash: toHex(r.checkpoint.rootHash),
    checkpoint: r.checkpoint.note,
  };
}

/** `custos append`: appends one event and waits until it is durable and covered by a signed checkpoint. */
export async function append(ctx: CommandContext, options: AppendOptions): Promise<void> {
  const ev = eventFromOptions(
    options,
    () => readStdin(ctx.io),
    (path) => readFileSync(inCwd(ctx.io, path), 'utf8'),
  );
  const r = await withLog(ctx, (log) => log.append(ev.type, ev.payload));
  if (ctx.json) {
    printJson(ctx.io, appendResultJson(r));
    return;
  }
  printFields(ctx.io, {
    'appended': `entry ${r.index}`,
    'leaf hash': toHex(r.leafHash),
    'tree size': String(r.checkpoint.treeSize),
    'root hash': toHex(r.checkpoint.rootHash),
  });
}
