// In-browser verification of Custos proofs with WebCrypto: leaf hashes and RFC 9162 inclusion
// proofs (SHA-256), C2SP signed-note checkpoints (Ed25519) and the verifier key format.
// Everything here treats its inputs as untrusted: the server is the party being checked.

const enc = new TextEncoder();
const HASH_SIZE = 32;
const NOTE_SIG_PREFIX = '\u2014 ';
const ALG_ED25519 = 0x01;

/** crypto.subtle exists only in secure contexts (https, or http on localhost). */
export function subtleAvailable() {
  return typeof crypto !== 'undefined' && crypto.subtle !== undefined;
}

function subtle() {
  if (!subtleAvailable()) throw new Error('WebCrypto is unavailable: this page is not a secure context (serve it over HTTPS or from localhost)');
  return crypto.subtle;
}

export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error('not a hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(b) {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Strict standard base64 (with padding), as Go's note package requires. */
export function b64ToBytes(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error('not standard base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest('SHA-256', bytes));
}

/** RFC 9162 §2.1.1: leaf hash = SHA-256(0x00 || entry bytes). */
export async function hashLeaf(entryText) {
  return sha256(concat(new Uint8Array([0x00]), enc.encode(entryText)));
}

/** RFC 9162 §2.1.1: node hash = SHA-256(0x01 || left || right). */
export async function hashChildren(left, right) {
  return sha256(concat(new Uint8Array([0x01]), left, right));
}

/**
 * RFC 9162 §2.1.3.2: the root implied by an inclusion proof (a port of
 * src/core/merkle/inclusion.ts). Throws on malformed input or a proof of the wrong length.
 */
export async function rootFromInclusionProof(leafIndex, treeSize, leafHash, proof) {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0 || treeSize < 0) {
    throw new Error('leaf index and tree size must be non-negative integers');
  }
  if (leafIndex >= treeSize) throw new Error(`leaf index ${leafIndex} is not below tree size ${treeSize}`);
  if (leafHash.length !== HASH_SIZE) throw new Error('leaf hash must be 32 bytes');
  for (const p of proof) if (p.length !== HASH_SIZE) throw new Error('proof hashes must be 32 bytes');
  // fn and sn may exceed 32 bits: arithmetic, not bit shifts.
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw new Error('proof is longer than expected');
    if (fn % 2 === 1 || fn === sn) {
      r = await hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn /= 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('proof is shorter than expected');
  return r;
}

/** Key ID: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). */
export async function computeKeyId(name, algAndKey) {
  return (await sha256(concat(enc.encode(name), new Uint8Array([0x0a]), algAndKey))).slice(0, 4);
}

function validKeyName(name) {
  return name.length > 0 && !/[\s+\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/.test(name);
}

/**
 * Parses a verifier key `name+hexkeyid+base64(0x01 || 32-byte public key)` (split on the first two
 * '+' only: base64 may contain '+') and checks that the key id matches the key.
 */
export async function parseVerifierKey(vkey) {
  if (typeof vkey !== 'string') throw new Error('no verifier key');
  const i = vkey.indexOf('+');
  const j = i < 0 ? -1 : vkey.indexOf('+', i + 1);
  if (i < 0 || j < 0) throw new Error('verifier key must be name+keyid+key');
  const name = vkey.slice(0, i);
  const idHex = vkey.slice(i + 1, j);
  const raw = b64ToBytes(vkey.slice(j + 1));
  if (!validKeyName(name)) throw new Error('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw new Error('key id must be 8 hex digits');
  if (raw.length !== 33 || raw[0] !== ALG_ED25519) throw new Error('not an Ed25519 key (expected 0x01 || 32 bytes)');
  const keyId = hexToBytes(idHex.toLowerCase());
  const computed = await computeKeyId(name, raw);
  return { name, keyId, keyIdHex: idHex.toLowerCase(), publicKey: raw.slice(1), keyIdOk: bytesEqual(keyId, computed), computedKeyIdHex: bytesToHex(computed) };
}

/** Splits a signed note into its body (ending in a newline) and signature lines. */
export function parseNote(note) {
  if (typeof note !== 'string') throw new Error('no checkpoint note');
  if (/[\x00-\x09\x0b-\x1f]/.test(note)) throw new Error('note has control characters');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('note has no signature block');
  const body = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw new Error('signature block must end with a newline');
  const signatures = block
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      if (!line.startsWith(NOTE_SIG_PREFIX)) throw new Error('expected a signature line');
      const rest = line.slice(NOTE_SIG_PREFIX.length);
      const sp = rest.indexOf(' ');
      if (sp < 0) throw new Error('bad signature line');
      const bytes = b64ToBytes(rest.slice(sp + 1));
      if (bytes.length < 5) throw new Error('bad signature line');
      return { name: rest.slice(0, sp), keyId: bytes.slice(0, 4), signature: bytes.slice(4) };
    });
  if (signatures.length > 100) throw new Error('too many signatures');
  return { body, signatures };
}

/** Parses a C2SP tlog-checkpoint body: origin, decimal size, base64 root, optional extension lines. */
export function parseCheckpointBody(body) {
  const lines = body.slice(0, -1).split('\n');
  if (!body.endsWith('\n') || lines.length < 3) throw new Error('checkpoint body must be origin, size and root lines');
  const [origin, sizeStr, rootB64] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeStr)) throw new Error('tree size is not a decimal number');
  const treeSize = Number(sizeStr);
  if (!Number.isSafeInteger(treeSize)) throw new Error('tree size too large');
  const rootHash = b64ToBytes(rootB64);
  if (rootHash.length !== HASH_SIZE) throw new Error('root hash must be 32 bytes');
  return { origin, treeSize, rootHash };
}

/** Ed25519 verification with WebCrypto. */
export async function ed25519Verify(publicKey, signature, message) {
  if (signature.length !== 64) return false;
  const key = await subtle().importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
  return subtle().verify({ name: 'Ed25519' }, key, signature, message);
}

/**
 * Opens a signed note with one verifier key, as Go's note.Open: signatures by other keys are
 * ignored, a bad signature by the key rejects the note, and the key must have signed.
 * Returns { ok, detail, body, signatures, checked }.
 */
export async function verifyNote(note, key) {
  const parsed = parseNote(note);
  const mine = parsed.signatures.filter((s) => s.name === key.name && bytesEqual(s.keyId, key.keyId));
  if (mine.length === 0) return { ok: false, detail: `no signature by ${key.name}+${key.keyIdHex} (the note has ${parsed.signatures.length} signature(s))`, ...parsed, checked: 0 };
  const message = enc.encode(parsed.body);
  for (const s of mine) {
    if (!(await ed25519Verify(key.publicKey, s.signature, message))) {
      return { ok: false, detail: `invalid Ed25519 signature for key ${key.name}+${key.keyIdHex}`, ...parsed, checked: mine.length };
    }
  }
  return { ok: true, detail: `Ed25519 signature by ${key.name}+${key.keyIdHex} verifies over the ${message.length}-byte body`, ...parsed, checked: mine.length };
}

function errText(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Verifies one entry of the log end to end, in the browser.
 * @param {object} e GET /api/v1/entries/N: { index, entryText, leafHash, treeSize, rootHash, proof, checkpoint }
 * @param {object} k { verifierKey, origin, keySource }
 * Returns { ok, checks: [{ id, label, ok, detail }], computedRoot, note }.
 */
export async function verifyEntryProof(e, k) {
  const checks = [];
  const add = (id, label, ok, detail) => checks.push({ id, label, ok: ok === true, detail });
  let computedLeaf;
  let computedRoot;
  let cp;

  // The entry states its own index, so an entry moved to another position no longer matches.
  try {
    const parsed = JSON.parse(e.entryText);
    add('index', `entry states its own index (${e.index})`, parsed.index === e.index, parsed.index === e.index ? 'the signed bytes say "index":' + parsed.index : `the entry says index ${parsed.index}`);
  } catch (err) {
    add('index', 'entry states its own index', false, `entry text is not JSON: ${errText(err)}`);
  }

  // (a) leaf hash
  try {
    computedLeaf = await hashLeaf(e.entryText);
    const given = hexToBytes(e.leafHash);
    const ok = bytesEqual(computedLeaf, given);
    add('leaf', 'leaf hash = SHA-256(0x00 ‖ entry bytes)', ok, ok ? `computed ${bytesToHex(computedLeaf)}` : `computed ${bytesToHex(computedLeaf)}, server says ${e.leafHash}`);
  } catch (err) {
    add('leaf', 'leaf hash = SHA-256(0x00 ‖ entry bytes)', false, errText(err));
  }

  // (b) inclusion proof (from the leaf computed here, not the one the server gave)
  try {
    if (!computedLeaf) throw new Error('no leaf hash');
    if (!Array.isArray(e.proof)) throw new Error('no proof');
    computedRoot = await rootFromInclusionProof(e.index, e.treeSize, computedLeaf, e.proof.map(hexToBytes));
    const ok = bytesEqual(computedRoot, hexToBytes(e.rootHash));
    add('inclusion', `inclusion proof (RFC 9162 §2.1.3.2, ${e.proof.length} hashes, tree size ${e.treeSize})`, ok, ok ? `yields root ${bytesToHex(computedRoot)}` : `yields ${bytesToHex(computedRoot)}, server says ${e.rootHash}`);
  } catch (err) {
    add('inclusion', 'inclusion proof (RFC 9162 §2.1.3.2)', false, errText(err));
  }

  // (c) the checkpoint's signature, with the verifier key
  try {
    const key = await parseVerifierKey(k.verifierKey);
    add('keyid', 'verifier key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[0:4]', key.keyIdOk, key.keyIdOk ? `${key.keyIdHex} (${k.keySource ?? 'server'} key)` : `key says ${key.keyIdHex}, computed ${key.computedKeyIdHex}`);
    if (k.origin && key.name !== k.origin) throw new Error(`the key is named ${key.name}, not the log's origin ${k.origin}`);
    const v = await verifyNote(e.checkpoint, key);
    add('signature', 'checkpoint note signature (Ed25519, C2SP signed note)', v.ok && key.keyIdOk, v.detail);
    cp = parseCheckpointBody(v.body);
  } catch (err) {
    if (!checks.some((c) => c.id === 'keyid')) add('keyid', 'verifier key id', false, errText(err));
    add('signature', 'checkpoint note signature (Ed25519, C2SP signed note)', false, errText(err));
  }

  // (d) the signed root is the root the proof yields
  try {
    if (!cp) throw new Error('no verified checkpoint');
    if (!computedRoot) throw new Error('no root from the proof');
    const problems = [];
    if (k.origin && cp.origin !== k.origin) problems.push(`origin ${cp.origin} is not ${k.origin}`);
    if (cp.treeSize !== e.treeSize) problems.push(`signed size ${cp.treeSize} ≠ proof size ${e.treeSize}`);
    if (!bytesEqual(cp.rootHash, computedRoot)) problems.push(`signed root ${bytesToHex(cp.rootHash)} ≠ proof root ${bytesToHex(computedRoot)}`);
    add('root', 'signed checkpoint root = proof root', problems.length === 0, problems.length === 0 ? `${cp.origin}, size ${cp.treeSize}, root ${bytesToHex(cp.rootHash)}` : problems.join('; '));
  } catch (err) {
    add('root', 'signed checkpoint root = proof root', false, errText(err));
  }

  return { ok: checks.every((c) => c.ok), checks, computedRoot: computedRoot ? bytesToHex(computedRoot) : null, checkpoint: cp ? { origin: cp.origin, treeSize: cp.treeSize, rootHash: bytesToHex(cp.rootHash) } : null };
}

/**
 * RFC 8785 canonical JSON of plain JSON values: for these, ECMAScript's JSON.stringify already
 * serializes strings and numbers as RFC 8785 requires; keys are sorted by UTF-16 code units.
 */
export function canonicalJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}

/** SHA-256 (hex) of a document's canonical JSON: what the log commits for off-ledger documents. */
export async function documentHash(value) {
  return bytesToHex(await sha256(enc.encode(canonicalJson(value))));
}
