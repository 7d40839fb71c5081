import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EmbrError } from '../errors.js';
import { SparseVector } from '../vsa/sparse.js';
import { FINGERPRINT_DIMENSION, chunkFingerprint } from './fingerprint.js';
import { SLOTS_PER_POSTING_BLOCK, SimilarityIndex, type IndexedChunk } from './similarity-index.js';
import { MemoryIndexStorage } from './storage.js';
import { seededBytes } from '../../test/support/seeded-bytes.js';


/** Every (dimension, slot, sign) posted in the index, as sorted strings. */
function allPostings(index: SimilarityIndex): string[] {
  const postings: string[] = [];
  for (let dimension = 0; dimension < FINGERPRINT_DIMENSION; dimension += 1) {
    for (let block = 0; block < index.postingBlockCount; block += 1) {
      for (const entry of index.postings(dimension, block)) {
        postings.push(`${dimension}:${block * SLOTS_PER_POSTING_BLOCK + (entry >>> 1)}:${entry & 1 ? '-' : '+'}`);
      }
    }
  }
  return postings.sort();
}

/** The postings a set of live files must produce. */
function expectedPostings(index: SimilarityIndex): string[] {
  const postings: string[] = [];
  index.forEachFile((file) => {
    file.fingerprints.forEach((fingerprint, chunkIndex) => {
      for (const dimension of fingerprint.positive) postings.push(`${dimension}:${file.firstSlot + chunkIndex}:+`);
      for (const dimension of fingerprint.negative) postings.push(`${dimension}:${file.firstSlot + chunkIndex}:-`);
    });
  });
  return postings.sort();
}

test('addFile indexes every chunk fingerprint under its slot and in the root bundle', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  const bytes = seededBytes(10_000, 1);
  index.addFileBytes('/dir/a.bin', bytes, 4096);
  const file = index.fileByPath('/dir/a.bin');
  assert.ok(file !== undefined);
  assert.deepEqual(file.chunkLengths, [4096, 4096, 1808]);
  assert.deepEqual(file.chunkOffsets, [0, 4096, 8192]);
  assert.equal(file.byteLength, 10_000);
  assert.ok(file.fingerprints[0].equals(chunkFingerprint(bytes.subarray(0, 4096))));
  assert.equal(index.liveSlotCount, 3);
  assert.equal(index.liveFileCount, 1);
  assert.deepEqual(allPostings(index), expectedPostings(index));
  const root = index.root('/');
  assert.equal(root.vectorCount, 3);
  const sum = new Int32Array(FINGERPRINT_DIMENSION);
  for (const fingerprint of file.fingerprints) {
    for (const dimension of fingerprint.positive) sum[dimension] += 1;
    for (const dimension of fingerprint.negative) sum[dimension] -= 1;
  }
  assert.deepEqual(root.counts, sum);
  assert.deepEqual(index.root('/dir').counts, sum);
});

test('removeFile removes its postings, slots and root share, and returns false for an unknown path', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  index.addFileBytes('/a', seededBytes(9000, 2));
  const before = index.root('/').counts.slice();
  const postingsBefore = allPostings(index);
  index.addFileBytes('/b', seededBytes(5000, 3));
  assert.equal(index.removeFile('/b'), true);
  assert.equal(index.removeFile('/b'), false);
  assert.equal(index.fileByPath('/b'), undefined);
  assert.deepEqual(index.root('/').counts, before);
  assert.deepEqual(allPostings(index).map((posting) => posting), postingsBefore);
  assert.equal(index.liveFileCount, 1);
  assert.equal(index.liveSlotCount, 3);
});

test('adding then removing everything leaves an all-zero root and only the meta row', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage, { rootDepth: 2 });
  const paths = ['/a/b/one', '/a/two', '/three', '/a/b/c/four'];
  paths.forEach((path, position) => index.addFileBytes(path, seededBytes(3000 + position * 5000, position + 10)));
  index.checkpoint();
  assert.ok(storage.keys().includes('root:/a/b'));
  for (const path of [...paths].reverse()) assert.equal(index.removeFile(path), true);
  index.flush();
  assert.ok(storage.keys().some((key) => key.startsWith('log:')), 'a flush writes a log row');
  index.checkpoint();
  assert.deepEqual(storage.keys(), ['meta']);
  for (const directory of ['/', '/a', '/a/b']) {
    const root = index.root(directory);
    assert.equal(root.vectorCount, 0);
    assert.ok(root.counts.every((count) => count === 0), `root ${directory} is all zero`);
  }
  const reopened = new SimilarityIndex(storage);
  assert.equal(reopened.liveSlotCount, 0);
  assert.ok(reopened.root('/').counts.every((count) => count === 0));
});

test('a reopened index reads back exactly what was flushed', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  for (let file = 0; file < 12; file += 1) index.addFileBytes(`/d${file % 3}/f${file}`, seededBytes(1000 + file * 3000, file + 20));
  index.removeFile('/d1/f4');
  index.flush();
  const reopened = new SimilarityIndex(storage);
  assert.equal(reopened.liveSlotCount, index.liveSlotCount);
  assert.equal(reopened.liveFileCount, 11);
  assert.equal(reopened.nextSlot, index.nextSlot);
  assert.deepEqual(allPostings(reopened), allPostings(index));
  assert.deepEqual(reopened.root('/').counts, index.root('/').counts);
  assert.deepEqual(reopened.root('/d2').counts, index.root('/d2').counts);
  const original = index.fileByPath('/d2/f11');
  const read = reopened.fileByPath('/d2/f11');
  assert.ok(original !== undefined && read !== undefined);
  assert.deepEqual(read.chunkLengths, original.chunkLengths);
  assert.ok(read.fingerprints.every((fingerprint, position) => fingerprint.equals(original.fingerprints[position])));
  assert.equal(reopened.fileByPath('/d1/f4'), undefined);
});

test('addFile over an indexed path replaces the old content', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  index.addFileBytes('/f', seededBytes(8192, 30));
  index.addFileBytes('/f', seededBytes(4096, 31));
  assert.equal(index.liveFileCount, 1);
  assert.equal(index.liveSlotCount, 1);
  assert.deepEqual(allPostings(index), expectedPostings(index));
  assert.equal(index.root('/').vectorCount, 1);
});

test('discardCache drops changes that were not flushed (a rolled-back transaction)', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  index.addFileBytes('/kept', seededBytes(5000, 40));
  index.flush();
  const keysBefore = storage.keys();
  index.addFileBytes('/dropped', seededBytes(5000, 41));
  index.removeFile('/kept');
  index.discardCache();
  assert.deepEqual(storage.keys(), keysBefore);
  assert.ok(index.fileByPath('/kept') !== undefined);
  assert.equal(index.fileByPath('/dropped'), undefined);
  assert.equal(index.liveFileCount, 1);
  assert.deepEqual(allPostings(index), expectedPostings(index));
});

test('random adds and removes keep postings and roots equal to a model of the live files', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ remove: fc.boolean(), file: fc.integer({ min: 0, max: 5 }), length: fc.integer({ min: 0, max: 12_000 }), seed: fc.integer({ min: 1, max: 1e6 }) }), { maxLength: 25 }),
      fc.boolean(),
      (operations, flushEach) => {
        const storage = new MemoryIndexStorage();
        let index = new SimilarityIndex(storage);
        const live = new Map<string, Uint8Array>();
        for (const operation of operations) {
          const path = `/dir${operation.file % 2}/file${operation.file}`;
          if (operation.remove) {
            assert.equal(index.removeFile(path), live.delete(path));
          } else {
            const bytes = seededBytes(operation.length, operation.seed);
            index.addFileBytes(path, bytes, 2048);
            live.set(path, bytes);
          }
          if (flushEach) {
            index.flush();
            index = new SimilarityIndex(storage);
          }
        }
        assert.equal(index.liveFileCount, live.size);
        assert.deepEqual(allPostings(index), expectedPostings(index));
        const model = new Int32Array(FINGERPRINT_DIMENSION);
        let chunkCount = 0;
        for (const bytes of live.values()) {
          for (let offset = 0; offset < bytes.length; offset += 2048) {
            const fingerprint = chunkFingerprint(bytes.subarray(offset, offset + 2048));
            chunkCount += 1;
            for (const dimension of fingerprint.positive) model[dimension] += 1;
            for (const dimension of fingerprint.negative) model[dimension] -= 1;
          }
        }
        assert.equal(index.liveSlotCount, chunkCount);
        assert.deepEqual(index.root('/').counts, model);
      },
    ),
    { numRuns: 30, seed: 6 },
  );
});

test('the index refuses bad paths and bad chunks with TypeError and RangeError', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  for (const path of ['relative', '', '/trailing/', '/nul\0byte']) assert.throws(() => index.addFileBytes(path, new Uint8Array(1)), TypeError);
  const wrongDimension: IndexedChunk = { fingerprint: SparseVector.empty(16), byteLength: 1 };
  assert.throws(() => index.addFile('/x', [wrongDimension]), RangeError);
  assert.throws(() => index.addFile('/x', [{ fingerprint: SparseVector.empty(FINGERPRINT_DIMENSION), byteLength: -1 }]), RangeError);
  assert.throws(() => index.addFileBytes('/x', new Uint8Array(1), 0), RangeError);
  assert.throws(() => new SimilarityIndex(new MemoryIndexStorage(), { rootDepth: -1 }), RangeError);
});

test('a damaged row is reported as CORRUPT, never read as wrong data', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  index.addFileBytes('/f', seededBytes(8000, 50));
  index.checkpoint();
  const postingKey = storage.keys().find((key) => key.startsWith('post:'));
  assert.ok(postingKey !== undefined);
  const posting = storage.get(postingKey) as Uint8Array;
  storage.put(postingKey, posting.subarray(0, posting.length - 1).length === 0 ? Uint8Array.of(5) : posting.subarray(0, posting.length - 1));
  const [dimension, block] = postingKey.split(':').slice(1).map(Number);
  assert.throws(() => new SimilarityIndex(storage).postings(dimension, block), (error: unknown) => error instanceof EmbrError && error.code === 'CORRUPT');
  const fileKey = storage.keys().find((key) => key.startsWith('file:')) as string;
  storage.put(fileKey, Uint8Array.of(9, 9, 9));
  assert.throws(() => new SimilarityIndex(storage).fileByPath('/f'), (error: unknown) => error instanceof EmbrError && error.code === 'CORRUPT');
  storage.put('meta', Uint8Array.of(2));
  assert.throws(() => new SimilarityIndex(storage), (error: unknown) => error instanceof EmbrError && error.code === 'CORRUPT');
});

test('a commit writes one log row, and a checkpoint folds the log into the base rows', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage, { checkpointEveryCommits: 4 });
  let rowsWritten = 0;
  const counting = { get: (key: string) => storage.get(key), put: (key: string, value: Uint8Array) => { rowsWritten += 1; storage.put(key, value); }, delete: (key: string) => storage.delete(key) };
  const logged = new SimilarityIndex(counting, { checkpointEveryCommits: 4 });
  for (let commit = 0; commit < 3; commit += 1) {
    rowsWritten = 0;
    logged.addFileBytes(`/c${commit}`, seededBytes(8192, 60 + commit));
    logged.flush();
    assert.equal(rowsWritten, 2, 'one log row and meta per commit');
  }
  assert.equal(logged.pendingLogRows, 3);
  const replayed = new SimilarityIndex(storage);
  assert.equal(replayed.liveFileCount, 3);
  assert.deepEqual(allPostings(replayed), allPostings(logged));
  assert.deepEqual(replayed.root('/').counts, logged.root('/').counts);
  logged.removeFile('/c1');
  logged.flush();
  assert.equal(logged.pendingLogRows, 0, 'the fourth commit checkpoints');
  assert.ok(storage.keys().every((key) => !key.startsWith('log:')));
  const reopened = new SimilarityIndex(storage);
  assert.equal(reopened.liveFileCount, 2);
  assert.deepEqual(allPostings(reopened), allPostings(logged));
  assert.deepEqual(reopened.root('/').counts, logged.root('/').counts);
  assert.equal(index.liveFileCount, 0, 'an index object sees other writers only after discardCache');
  index.discardCache();
  assert.equal(index.liveFileCount, 2);
});

test('a missing log row is reported as CORRUPT', () => {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  index.addFileBytes('/a', seededBytes(3000, 70));
  index.flush();
  storage.delete('log:0');
  assert.throws(() => new SimilarityIndex(storage), (error: unknown) => error instanceof EmbrError && error.code === 'CORRUPT');
});

function syntheticChunks(count: number, seed: number): IndexedChunk[] {
  const chunks: IndexedChunk[] = [];
  for (let index = 0; index < count; index += 1) chunks.push({ fingerprint: chunkFingerprint(seededBytes(600, seed * 100_000 + index + 1)), byteLength: 4096 });
  return chunks;
}

function segmentIds(index: SimilarityIndex, path: string): number[] {
  const ids: number[] = [];
  index.forEachFile((file) => {
    if (file.path === path) ids[file.segment] = file.fileId;
  });
  return ids;
}

/** The state a fresh index reaches with `chunks` under `path`, compared with `index`. */
function assertSameAsFresh(index: SimilarityIndex, path: string, chunks: IndexedChunk[]): void {
  const fresh = new SimilarityIndex(new MemoryIndexStorage());
  fresh.addFile(path, chunks);
  const merged = index.fileByPath(path);
  assert.ok(merged !== undefined);
  assert.deepEqual(merged.chunkLengths, chunks.map((chunk) => chunk.byteLength));
  assert.ok(merged.fingerprints.every((fingerprint, position) => fingerprint.equals(chunks[position].fingerprint)));
  assert.deepEqual(merged.chunkOffsets, chunks.map((_, position) => position * 4096));
  assert.deepEqual(index.root('/').counts, fresh.root('/').counts);
  assert.equal(index.liveSlotCount, chunks.length);
  assert.equal(index.liveFileCount, 1);
  assert.deepEqual(allPostings(index), expectedPostings(index));
}

test('replaceChunks re-indexes only the segments a partial write touches', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  let chunks = syntheticChunks(600, 1);
  index.addFile('/big', chunks);
  const before = segmentIds(index, '/big');
  assert.equal(before.length, 3); // 256 + 256 + 88 chunks
  // Overwrite two chunks in segment 1.
  const edited = syntheticChunks(2, 2);
  index.replaceChunks('/big', 300, edited, 600);
  chunks = [...chunks.slice(0, 300), ...edited, ...chunks.slice(302)];
  const afterEdit = segmentIds(index, '/big');
  assert.equal(afterEdit[0], before[0]);
  assert.notEqual(afterEdit[1], before[1]);
  assert.equal(afterEdit[2], before[2]);
  assertSameAsFresh(index, '/big', chunks);
  // Append 100 chunks (the old last chunk rewritten too): only the last segment changes.
  const appended = syntheticChunks(101, 3);
  index.replaceChunks('/big', 599, appended, 700);
  chunks = [...chunks.slice(0, 599), ...appended];
  const afterAppend = segmentIds(index, '/big');
  assert.deepEqual(afterAppend.slice(0, 2), afterEdit.slice(0, 2));
  assert.notEqual(afterAppend[2], afterEdit[2]);
  assertSameAsFresh(index, '/big', chunks);
  // Truncate to 200 chunks: segment 0 is rebuilt, segments 1 and 2 go away.
  index.replaceChunks('/big', 200, [], 200);
  chunks = chunks.slice(0, 200);
  assert.equal(segmentIds(index, '/big').length, 1);
  assertSameAsFresh(index, '/big', chunks);
  // Re-adding identical content changes nothing.
  const unchanged = segmentIds(index, '/big');
  index.addFile('/big', chunks);
  assert.deepEqual(segmentIds(index, '/big'), unchanged);
  assert.throws(() => index.replaceChunks('/big', 201, [], 201), RangeError);
  assert.throws(() => index.replaceChunks('/big', 0, [], 300), RangeError);
});

test('random partial writes through replaceChunks match a fresh index of the final chunks', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ from: fc.nat(), count: fc.integer({ min: 0, max: 300 }), newLength: fc.nat(), seed: fc.integer({ min: 10, max: 1e6 }) }), { minLength: 1, maxLength: 6 }),
      (writes) => {
        const storage = new MemoryIndexStorage();
        let index = new SimilarityIndex(storage, { checkpointEveryCommits: 3 });
        let chunks: IndexedChunk[] = [];
        for (const write of writes) {
          const fromChunk = write.from % (chunks.length + 1);
          const replacement = syntheticChunks(write.count, write.seed);
          const end = fromChunk + replacement.length;
          const chunkCount = end + (write.newLength % (Math.max(chunks.length, end) - end + 1));
          index.replaceChunks('/f', fromChunk, replacement, chunkCount);
          const next = [...chunks.slice(0, fromChunk), ...replacement, ...chunks.slice(end)];
          chunks = next.slice(0, chunkCount);
          index.flush();
          index = new SimilarityIndex(storage, { checkpointEveryCommits: 3 });
        }
        if (chunks.length === 0) {
          assert.equal(index.fileByPath('/f')?.chunkLengths.length, 0);
          return;
        }
        assertSameAsFresh(index, '/f', chunks);
      },
    ),
    { numRuns: 15, seed: 6 },
  );
});

test('what it does when a file straddling a posting block is rewritten many times: postings stay exact and old rows are folded', () => {
  const fingerprints = Array.from({ length: 64 }, (_, seed) => chunkFingerprint(seededBytes(256, seed + 1)));
  const chunksOf = (count: number, shift: number): IndexedChunk[] =>
    Array.from({ length: count }, (_, index) => ({ fingerprint: fingerprints[(index * 7 + shift) % fingerprints.length], byteLength: 256 }));
  const storage = new MemoryIndexStorage();
  let index = new SimilarityIndex(storage, { rootDepth: 0, checkpointEveryChunks: 700 });
  // The filler puts the rewritten file's slots across the boundary of posting block 0 and 1.
  index.addFile('/filler', chunksOf(SLOTS_PER_POSTING_BLOCK - 150, 0));
  index.flush();
  const rowCounts: number[] = [];
  for (let version = 1; version <= 12; version += 1) {
    index.addFile('/f', chunksOf(300, version));
    index.flush();
    if (version % 4 === 0) index = new SimilarityIndex(storage, { rootDepth: 0, checkpointEveryChunks: 700 });
    assert.deepEqual(allPostings(index), expectedPostings(index));
    index.checkpoint();
    rowCounts.push(storage.keys().filter((key) => key.startsWith('post:') || key.startsWith('file:') || key.startsWith('slots:')).length);
  }
  // Removed versions leave no rows behind: every version of '/f' after the first lies in block 1
  // with the same dimensions, so the row count does not grow with the history.
  assert.deepEqual(rowCounts.slice(1), rowCounts.slice(1).map(() => rowCounts[1]), `row counts per version: ${rowCounts.join(',')}`);
  const rebuilt = new SimilarityIndex(new MemoryIndexStorage(), { rootDepth: 0 });
  rebuilt.addFile('/filler', chunksOf(SLOTS_PER_POSTING_BLOCK - 150, 0));
  rebuilt.addFile('/f', chunksOf(300, 12));
  assert.equal(index.liveSlotCount, SLOTS_PER_POSTING_BLOCK - 150 + 300);
  assert.deepEqual(index.root('/').counts, rebuilt.root('/').counts);
});

test('deferred postings: reads, checkpoints and a second connection catching up in any order see exactly the live postings', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          action: fc.constantFrom('add', 'add', 'remove', 'read', 'checkpoint', 'switch'),
          file: fc.integer({ min: 0, max: 4 }),
          length: fc.integer({ min: 0, max: 9_000 }),
          seed: fc.integer({ min: 1, max: 1e6 }),
        }),
        { maxLength: 30 },
      ),
      (operations) => {
        const storage = new MemoryIndexStorage();
        // Two connections on one storage, taking turns like two processes committing.
        const connections = [new SimilarityIndex(storage, { checkpointEveryChunks: 12 }), new SimilarityIndex(storage, { checkpointEveryChunks: 12 })];
        let current = 0;
        const live = new Set<string>();
        for (const operation of operations) {
          const index = connections[current];
          const path = `/f${operation.file}`;
          if (operation.action === 'add') {
            index.addFileBytes(path, seededBytes(operation.length, operation.seed), 2048);
            live.add(path);
          } else if (operation.action === 'remove') {
            assert.equal(index.removeFile(path), live.delete(path));
          } else if (operation.action === 'read') {
            assert.deepEqual(allPostings(index), expectedPostings(index));
          } else if (operation.action === 'checkpoint') {
            index.checkpoint();
          } else {
            index.flush();
            current = 1 - current;
            if (!connections[current].catchUp()) connections[current].discardCache();
          }
        }
        const index = connections[current];
        index.flush();
        assert.equal(index.liveFileCount, live.size);
        assert.deepEqual(allPostings(index), expectedPostings(index));
        // What was written reads back the same in a fresh connection.
        const reopened = new SimilarityIndex(storage);
        assert.deepEqual(allPostings(reopened), expectedPostings(reopened));
        reopened.checkpoint();
        assert.deepEqual(allPostings(new SimilarityIndex(storage)), allPostings(reopened));
      },
    ),
    { numRuns: 60, seed: 11 },
  );
});

test('noteNeverIndexed skips the read of a new path and indexes it exactly as without the note', () => {
  const reads: string[] = [];
  const storage = new MemoryIndexStorage();
  const counting = { get: (key: string) => (reads.push(key), storage.get(key)), put: (key: string, value: Uint8Array) => storage.put(key, value), delete: (key: string) => storage.delete(key) };
  const noted = new SimilarityIndex(counting);
  noted.noteNeverIndexed('/7');
  noted.addFileBytes('/7', seededBytes(9000, 3), 2048);
  assert.ok(!reads.includes('path:/7'), 'no read of the noted path');
  const plain = new SimilarityIndex(new MemoryIndexStorage());
  plain.addFileBytes('/7', seededBytes(9000, 3), 2048);
  assert.deepEqual(allPostings(noted), allPostings(plain));
  assert.deepEqual(noted.fileByPath('/7')?.chunkLengths, plain.fileByPath('/7')?.chunkLengths);
  // A cached path is left alone: the note cannot hide what the index holds.
  noted.noteNeverIndexed('/7');
  assert.equal(noted.chunkCountOf('/7'), 5);
});
