// The explorer's in-browser checks, made of src/core itself: ./dist/custos-core.js is src/core
// bundled for the browser by scripts/build-web.mjs (`npm run build`), the very code `custos verify`
// runs. This file only arranges its verdicts into the list of checks the pages show.
// Everything here treats its inputs as untrusted: the server is the party being checked.
import {
  bytesEqual,
  canonicalJsonBytes,
  checkWitnessQuorum,
  decodeEntry,
  encodeLeaf,
  openCheckpoint,
  openNote,
  parseCheckpointBody,
  parseCosignerVerifierKey,
  parseHashHex,
  parseVerifierKey,
  rootFromInclusionProof,
  sha256,
  toHex,
} from './dist/custos-core.js';

function errText(err) {
  return err instanceof Error ? err.message : String(err);
}

const keyIdHex = (key) => key.keyId.toString(16).padStart(8, '0');

/**
 * Opens a signed checkpoint note with the verifier key string `verifierKey` for the log `origin`.
 * Returns { ok, detail }.
 */
export function verifyCheckpointNote(note, verifierKey, origin) {
  try {
    const key = parseVerifierKey(verifierKey);
    const cp = openCheckpoint(note, [key], origin);
    return { ok: true, detail: `Ed25519 signature by ${key.name}+${keyIdHex(key)}: ${cp.origin}, size ${cp.treeSize}` };
  } catch (err) {
    return { ok: false, detail: errText(err) };
  }
}

/**
 * Checks a cosigned checkpoint in the browser: the log's signature with `verifierKey`, then the
 * witness quorum: at least `quorum` valid cosignatures by the keys of `witnesses` ([{ name, vkey }]).
 * Returns { ok, detail }.
 */
export function verifyWitnessedCheckpoint(note, verifierKey, origin, witnesses, quorum) {
  try {
    const key = parseVerifierKey(verifierKey);
    const cp = openCheckpoint(note, [key], origin);
    const r = checkWitnessQuorum(note, { witnesses: witnesses.map((w) => parseCosignerVerifierKey(w.vkey)), quorum });
    if (!r.ok)
      return {
        ok: false,
        detail: `size ${cp.treeSize}: ${r.cosigned.length} of ${quorum} cosignatures verify (missing: ${r.missing.join(', ') || 'none'}; invalid: ${r.invalid.join(', ') || 'none'})`,
      };
    return { ok: true, detail: `log signature and ${r.cosigned.length} of ${witnesses.length} cosignatures (quorum ${quorum}) verified in this browser: size ${cp.treeSize}` };
  } catch (err) {
    return { ok: false, detail: errText(err) };
  }
}

/**
 * Verifies one entry of the log end to end, in the browser.
 * @param {object} e GET /api/v1/entries/N: { index, entryText, leafHash, treeSize, rootHash, proof, checkpoint }
 * @param {object} k { verifierKey, origin, keySource }
 * Returns { ok, checks: [{ id, label, ok, detail }], computedRoot, checkpoint }.
 */
export function verifyEntryProof(e, k) {
  const checks = [];
  const add = (id, label, ok, detail) => checks.push({ id, label, ok: ok === true, detail });
  let computedLeaf;
  let computedRoot;
  let cp;

  // The entry is a well-formed log entry (canonical JSON) that states its own index, so an entry
  // moved to another position no longer matches.
  try {
    const entry = decodeEntry(e.entryText);
    const ok = entry.index === e.index;
    add('index', `entry states its own index (${e.index})`, ok, ok ? `the signed bytes say "index":${entry.index}` : `the entry says index ${entry.index}`);
  } catch (err) {
    add('index', 'entry states its own index', false, errText(err));
  }

  // (a) leaf hash
  try {
    computedLeaf = encodeLeaf(e.entryText).leafHash;
    const ok = bytesEqual(computedLeaf, parseHashHex(e.leafHash, 'leafHash'));
    add('leaf', 'leaf hash = SHA-256(0x00 ‖ entry bytes)', ok, ok ? `computed ${toHex(computedLeaf)}` : `computed ${toHex(computedLeaf)}, server says ${e.leafHash}`);
  } catch (err) {
    add('leaf', 'leaf hash = SHA-256(0x00 ‖ entry bytes)', false, errText(err));
  }

  // (b) inclusion proof (from the leaf computed here, not the one the server gave)
  try {
    if (!computedLeaf) throw new Error('no leaf hash');
    if (!Array.isArray(e.proof)) throw new Error('no proof');
    computedRoot = rootFromInclusionProof(
      e.index,
      e.treeSize,
      computedLeaf,
      e.proof.map((p) => parseHashHex(p, 'proof')),
    );
    const ok = bytesEqual(computedRoot, parseHashHex(e.rootHash, 'rootHash'));
    add(
      'inclusion',
      `inclusion proof (RFC 9162 §2.1.3.2, ${e.proof.length} hashes, tree size ${e.treeSize})`,
      ok,
      ok ? `yields root ${toHex(computedRoot)}` : `yields ${toHex(computedRoot)}, server says ${e.rootHash}`,
    );
  } catch (err) {
    add('inclusion', 'inclusion proof (RFC 9162 §2.1.3.2)', false, errText(err));
  }

  // (c) the checkpoint's signature, with the verifier key
  try {
    let key;
    try {
      key = parseVerifierKey(k.verifierKey);
      add('keyid', 'verifier key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[0:4]', true, `${keyIdHex(key)} (${k.keySource ?? 'server'} key)`);
    } catch (err) {
      add('keyid', 'verifier key id', false, errText(err));
      throw err;
    }
    if (k.origin && key.name !== k.origin) throw new Error(`the key is named ${key.name}, not the log's origin ${k.origin}`);
    const opened = openNote(e.checkpoint, [key]);
    add(
      'signature',
      'checkpoint note signature (Ed25519, C2SP signed note)',
      true,
      `Ed25519 signature by ${key.name}+${keyIdHex(key)} verifies over the ${new TextEncoder().encode(opened.text).length}-byte body`,
    );
    cp = parseCheckpointBody(opened.text);
  } catch (err) {
    if (!checks.some((c) => c.id === 'signature')) add('signature', 'checkpoint note signature (Ed25519, C2SP signed note)', false, errText(err));
  }

  // (d) the signed root is the root the proof yields
  try {
    if (!cp) throw new Error('no verified checkpoint');
    if (!computedRoot) throw new Error('no root from the proof');
    const problems = [];
    if (k.origin && cp.origin !== k.origin) problems.push(`origin ${cp.origin} is not ${k.origin}`);
    if (cp.treeSize !== e.treeSize) problems.push(`signed size ${cp.treeSize} ≠ proof size ${e.treeSize}`);
    if (!bytesEqual(cp.rootHash, computedRoot)) problems.push(`signed root ${toHex(cp.rootHash)} ≠ proof root ${toHex(computedRoot)}`);
    add('root', 'signed checkpoint root = proof root', problems.length === 0, problems.length === 0 ? `${cp.origin}, size ${cp.treeSize}, root ${toHex(cp.rootHash)}` : problems.join('; '));
  } catch (err) {
    add('root', 'signed checkpoint root = proof root', false, errText(err));
  }

  return {
    ok: checks.every((c) => c.ok),
    checks,
    computedRoot: computedRoot ? toHex(computedRoot) : null,
    checkpoint: cp ? { origin: cp.origin, treeSize: cp.treeSize, rootHash: toHex(cp.rootHash) } : null,
  };
}

/** SHA-256 (hex) of a document's RFC 8785 canonical JSON: what the log commits for off-ledger documents. */
export function documentHash(value) {
  return toHex(sha256(canonicalJsonBytes(value)));
}
