/**
 * The store's off-ledger read caches (store/tiled/tiled-store.ts): the documents it read and the
 * filter of committed values. They hold only what this connection read or wrote, and give way as
 * soon as another connection writes or an erasure commits: on every backend (PostgreSQL keeps no
 * such cache, SQLite does), a second connection's insert, edit or erasure is seen by the next
 * read, and an erased document or opening is never served again.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { computeCommitment } from '../src/core/commitment.js';
import type { LogStore, SidecarCommitment } from '../src/store/store.js';
import { ValueFilter } from '../src/store/tiled/value-filter.js';
import { BACKENDS, cleanupBackends } from './helpers/backends.js';

after(cleanupBackends);

function opening(kind: string, value: string): SidecarCommitment {
  const salt = randomBytes(32);
  return { commitment: computeCommitment(salt, value), kind, value, salt };
}

const EMPTY = { documents: [], commitments: [], state: [] } as const;

async function put(store: LogStore, sidecar: Partial<Parameters<LogStore['writeSidecar']>[0]>): Promise<void> {
  await store.writeSidecar({ ...EMPTY, ...sidecar });
}

describe('ValueFilter', () => {
  it('never answers absent for a value it holds, across its growth; answers absent for most others', () => {
    const f = new ValueFilter();
    const n = 200_000; // past the first filter's capacity: several filters
    for (let i = 0; i < n; i++) f.add(`uri\u0000s3://b/${i}`);
    for (let i = 0; i < n; i++) assert.equal(f.mayHave(`uri\u0000s3://b/${i}`), true, `value ${i}`);
    let positives = 0;
    for (let i = 0; i < 20_000; i++) if (f.mayHave(`uri\u0000s3://other/${i}`)) positives++;
    // About 0.1% per filter, a handful of filters: far below 5%.
    assert.ok(positives < 1000, `${positives} false positives in 20,000`);
  });
});

for (const backend of BACKENDS) {
  describe(`store caches: ${backend.name}`, { skip: backend.skip }, () => {
    it('a commitment another connection inserts is found by the next lookup, after lookups that found none', async () => {
      const { store, reopen } = await backend.openStore();
      const other = await reopen();
      try {
        const mine = opening('uri', 's3://b/mine.jpg');
        await put(store, { commitments: [mine] });
        // Lookups of absent values (they build the filter on SQLite), then one of ours.
        for (let i = 0; i < 5; i++) assert.equal(await store.findCommitment('uri', `s3://b/absent-${i}.jpg`), undefined);
        await new Promise((r) => setImmediate(r));
        assert.equal((await store.findCommitment('uri', 's3://b/mine.jpg'))?.commitment, mine.commitment);
        assert.equal(await store.findCommitment('uri', 's3://b/theirs.jpg'), undefined);
        const theirs = opening('uri', 's3://b/theirs.jpg');
        await put(other, { commitments: [theirs] });
        assert.equal((await store.findCommitment('uri', 's3://b/theirs.jpg'))?.commitment, theirs.commitment);
        await new Promise((r) => setImmediate(r));
        assert.equal((await store.findCommitment('uri', 's3://b/theirs.jpg'))?.commitment, theirs.commitment);
      } finally {
        await other.close();
        await store.close();
      }
    });

    it('reusableCommitment: a commitment another connection inserts is found from the next turn of the event loop on', async () => {
      const { store, reopen } = await backend.openStore();
      const other = await reopen();
      const nextTurn = () => new Promise((r) => setImmediate(r));
      try {
        for (let i = 0; i < 3; i++) {
          assert.equal(await store.reusableCommitment('uri', `s3://b/absent-${i}.jpg`), undefined);
          await nextTurn();
        }
        const theirs = opening('uri', 's3://b/theirs-later.jpg');
        await put(other, { commitments: [theirs] });
        await nextTurn();
        assert.equal((await store.reusableCommitment('uri', 's3://b/theirs-later.jpg'))?.commitment, theirs.commitment);
        await nextTurn();
        assert.equal((await store.reusableCommitment('uri', 's3://b/theirs-later.jpg'))?.commitment, theirs.commitment);
        // Its own writes, at once.
        const mine = opening('uri', 's3://b/mine-later.jpg');
        await put(store, { commitments: [mine] });
        assert.equal((await store.reusableCommitment('uri', 's3://b/mine-later.jpg'))?.commitment, mine.commitment);
      } finally {
        await other.close();
        await store.close();
      }
    });

    it('an erased opening is not found again, by this connection or after another erases it', async () => {
      const { store, reopen } = await backend.openStore();
      const other = await reopen();
      try {
        const a = opening('subject', 'patient-a');
        const b = opening('subject', 'patient-b');
        await put(store, { commitments: [a, b] });
        assert.equal((await store.findCommitment('subject', 'patient-a'))?.commitment, a.commitment);
        assert.equal((await store.findCommitment('subject', 'patient-b'))?.commitment, b.commitment);
        await put(store, { erase: [a.commitment] });
        assert.equal(await store.findCommitment('subject', 'patient-a'), undefined);
        assert.equal(await store.getCommitment(a.commitment), undefined);
        await put(other, { erase: [b.commitment] });
        assert.equal(await store.findCommitment('subject', 'patient-b'), undefined);
        assert.equal(await store.getCommitment(b.commitment), undefined);
      } finally {
        await other.close();
        await store.close();
      }
    });

    it('a document read is not served again once erased (here or by another connection), and an edit by another connection is read', async () => {
      const { store, reopen } = await backend.openStore();
      const other = await reopen();
      try {
        const docs = ['one', 'two', 'three'].map((x) => ({ hash: randomBytes(32).toString('hex'), kind: 'model-spec', bytes: Buffer.from(`{"x":"${x}"}`) }));
        await put(store, { documents: docs });
        for (const d of docs) assert.deepEqual((await store.getDocument(d.hash))?.bytes, d.bytes);
        // Erased by this connection, in the same transaction as an insert.
        await put(store, { eraseDocuments: [docs[0]!.hash] });
        assert.equal(await store.getDocument(docs[0]!.hash), undefined);
        // Erased by another connection.
        await put(other, { eraseDocuments: [docs[1]!.hash] });
        assert.equal(await store.getDocument(docs[1]!.hash), undefined);
        // Rewritten by another connection (erase, then insert other bytes under the hash).
        await put(other, { eraseDocuments: [docs[2]!.hash] });
        await put(other, { documents: [{ ...docs[2]!, bytes: Buffer.from('{"x":"forged"}') }] });
        assert.equal((await store.getDocument(docs[2]!.hash))?.bytes.toString(), '{"x":"forged"}');
      } finally {
        await other.close();
        await store.close();
      }
    });
  });
}
