/**
 * issue 14: import of the reference notebook's ledgers over HTTP (permission `legacy:import`, the
 * admin's). The body carries the files `custos import reference-ledger DIR` reads from disk: the
 * ledger's text, and `policy_store/` and `manifest_store/` as maps from file name to text. The
 * route and the CLI call one service function (service/reference-import.ts runReferenceImport), so
 * the same verification runs on the same bytes and the answer is the CLI's `--json` report.
 *
 * The route has its own body limit (32 MiB; the server's default is 256 KiB). A file name is a
 * name, never a path: no `/`, `\`, NUL or control character, no `..`, not starting with `.`,
 * ending in `.json`. The import is recorded with its caller: LEGACY_IMPORT_COMPLETED carries the
 * credential's actor and role. Imports run one at a time per log (the check for an earlier import
 * and the appends are not interleaved with another import's).
 * @module
 */
import * as v from 'valibot';
import { findPriorImport, importReferenceLedger, memoryStore, runReferenceImport } from '../../service/reference-import.js';
import type { Log } from '../../log/log.js';
import { route } from '../route.js';

/** The route's body limit. */
export const REFERENCE_IMPORT_BODY_LIMIT = 32 * 1024 * 1024;
/** Files per store at most. */
export const MAX_STORE_FILES = 100_000;
/** A store file's name: a policy id or manifest name (at most 200 characters) and `.json`. */
const FILE_NAME = v.pipe(
  v.string(),
  v.maxLength(205, 'a file name has at most 205 characters'),
  v.regex(/^(?!\.)(?!.*\.\.)[^/\\\u0000-\u001f\u007f]+\.json$/u, 'a file name, not a path: no "/", "\\", "..", control character or leading ".", ending in .json'),
);
const STORE = v.pipe(
  v.record(FILE_NAME, v.string()),
  v.check((o) => Object.keys(o).length <= MAX_STORE_FILES, `at most ${MAX_STORE_FILES} files per store`),
);

/** Body of POST /api/v1/imports/reference-ledger. */
export const REFERENCE_IMPORT_BODY = v.strictObject({
  /** The ledger file's exact text (ledger.jsonl), sent as UTF-8. */
  ledger: v.string(),
  /** `policy_store/`: file name (`<policy_id>.json`) → its exact text. */
  policies: v.optional(STORE),
  /** `manifest_store/`: file name (`repro_<event_id>.json`) → its exact text. */
  manifests: v.optional(STORE),
  /** Verify and report; write nothing. */
  dryRun: v.optional(v.boolean()),
});

const utf8 = (files: Readonly<Record<string, string>> | undefined): Map<string, Buffer> => new Map(Object.entries(files ?? {}).map(([name, text]) => [name, Buffer.from(text, 'utf8')]));

// One import at a time per log.
const queues = new WeakMap<Log, Promise<unknown>>();
function serialized<T>(log: Log, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(log) ?? Promise.resolve()).then(fn, fn);
  queues.set(
    log,
    run.catch(() => undefined),
  );
  return run;
}

export const importRoutes = [
  route({
    method: 'POST',
    url: '/api/v1/imports/reference-ledger',
    summary:
      "Verify a ledger written by the reference notebook (the ledger's text, policy_store/ and manifest_store/ as file name → text) byte for byte, then import it as LEGACY_EVENTs and a LEGACY_IMPORT_COMPLETED naming the caller; dryRun: verify and report only. The body of `custos import reference-ledger --json`: 201 imported, 200 dry run. 422 REFERENCE_LEDGER_INVALID (details.defect, details.line), 409 LEGACY_ALREADY_IMPORTED; nothing written on either. Body limit 32 MiB",
    permission: 'legacy:import',
    status: 201,
    heavy: true,
    bodyLimit: REFERENCE_IMPORT_BODY_LIMIT,
    body: REFERENCE_IMPORT_BODY,
    handler: async ({ body, principal: p, reply }, { log, governance }) => {
      const dryRun = body.dryRun === true;
      const files = { ledger: Buffer.from(body.ledger, 'utf8'), policy: memoryStore(utf8(body.policies)), manifest: memoryStore(utf8(body.manifests)) };
      const run = await serialized(log, () =>
        runReferenceImport(files, {
          dryRun,
          ledger: 'request body',
          target: {
            findPrior: (ledger) => findPriorImport(log, ledger),
            importLedger: (ledger) => importReferenceLedger(log, ledger, { by: { actor: p.actor, role: p.role }, vocabulary: governance.vocabulary }),
          },
        }),
      );
      if (!run.ok) throw run.error;
      if (dryRun) reply.status(200);
      return run.report;
    },
  }),
];
