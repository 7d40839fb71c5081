import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryStore } from '../store/memory-store.js';
import { SimilarityIndex } from './similarity-index.js';
import { StoreIndexStorage } from './store-storage.js';

const timeNs = 1_700_000_000_000_000_000n;

describe('StoreIndexStorage', () => {
  it('writes index rows only inside a commit and reads them back in a later read', () => {
    const store = createMemoryStore({ profile: 'positional', chunkBytes: 4096 });
    const storage = new StoreIndexStorage();
    assert.throws(() => storage.get('meta'), /outside a store read or commit/);
    store.read((reader) => storage.bind(reader, () => assert.throws(() => storage.put('meta', Uint8Array.of(1)), /outside a commit/)));
    store.write({ kind: 'write', timeNs }, (writer) =>
      storage.bind(
        writer,
        () => {
          const index = new SimilarityIndex(storage);
          index.addFileBytes('/7', new TextEncoder().encode('some text that is long enough to anchor a few features '.repeat(40)));
          index.flush();
        },
        true,
      ),
    );
    const files = store.read((reader) => storage.bind(reader, () => new SimilarityIndex(storage).liveFileCount));
    assert.equal(files, 1);
    assert.ok(store.read((reader) => reader.totals().indexBytes) > 0);
  });

  it('leaves no rows behind when the commit rolls back', () => {
    const store = createMemoryStore({ profile: 'positional', chunkBytes: 4096 });
    const storage = new StoreIndexStorage();
    assert.throws(() =>
      store.write({ kind: 'write', timeNs }, (writer) =>
        storage.bind(
          writer,
          () => {
            const index = new SimilarityIndex(storage);
            index.addFileBytes('/7', new Uint8Array(10_000).map((_, position) => (position * 131) % 251));
            index.flush();
            throw new Error('abort');
          },
          true,
        ),
      ),
    );
    assert.equal(store.read((reader) => reader.indexRow('meta')), undefined);
    assert.equal(store.read((reader) => reader.totals().indexBytes), 0);
  });
});
