import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkFingerprint } from './fingerprint.js';
import { searchIndex, similarFiles } from './search.js';
import { DEFAULT_CACHE_BYTES, SimilarityIndex, type IndexedChunk, type SimilarityIndexOptions } from './similarity-index.js';
import { MemoryIndexStorage } from './storage.js';
import { seededBytes } from '../../test/support/seeded-bytes.js';

/** A deterministic stream of integers (xorshift32). */
function random(seed: number): (below: number) => number {
  let state = seed | 1;
  return (below) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

/** Bytes of one of a few content families, with a few bytes changed: near-duplicates across paths. */
function familyBytes(family: number, length: number, variant: number): Uint8Array {
  const bytes = seededBytes(length, 1000 + family);
  const next = random(variant + 1);
  for (let edit = 0; edit < 4 && length > 0; edit += 1) bytes[next(length)] ^= 0xff;
  return bytes;
}

function chunksOf(bytes: Uint8Array, chunkBytes: number): IndexedChunk[] {
  const chunks: IndexedChunk[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes));
    chunks.push({ fingerprint: chunkFingerprint(chunk), byteLength: chunk.length });
  }
  return chunks;
}

const PATHS = Array.from({ length: 40 }, (_, index) => `/d${index % 4}/f${index}`);
const CHUNK_BYTES = 256;

/** Everything a caller can observe of an index, compared between a bounded and an unbounded one. */
function observe(index: SimilarityIndex, probe: number): unknown {
  const queries = [0, 1, 2].map((family) => familyBytes(family, 3000, probe + family).subarray(500 + (probe % 7) * 100));
  const files = PATHS.map((path) => {
    const file = index.fileByPath(path);
    if (file === undefined) return null;
    return { firstSlot: file.firstSlot, chunkLengths: file.chunkLengths, fingerprints: file.fingerprints.map((vector) => [Array.from(vector.positive), Array.from(vector.negative)]) };
  });
  const livePath = PATHS.find((path, position) => position >= probe % PATHS.length && index.fileByPath(path) !== undefined);
  return {
    liveFiles: index.liveFileCount,
    liveSlots: index.liveSlotCount,
    nextSlot: index.nextSlot,
    roots: ['/', '/d0', '/d1', '/d2', '/d3'].map((directory) => {
      const root = index.root(directory);
      return { vectors: root.vectorCount, counts: Array.from(root.counts) };
    }),
    queries: queries.map((query) => searchIndex(index, query, { k: 8 })),
    prefixed: searchIndex(index, queries[0], { k: 4, pathPrefix: '/d1' }),
    similar: livePath === undefined ? [] : similarFiles(index, livePath, { k: 6 }),
    files,
  };
}

/** The bound cacheStats promises: the budget, unless pinned (dirty) rows alone fill it. */
function assertWithinBudget(index: SimilarityIndex, slack: number, where: string): void {
  const stats = index.cacheStats();
  const clean = stats.bytes - stats.pinnedBytes;
  assert.ok(stats.pinnedBytes <= stats.bytes, `${where}: pinned ${stats.pinnedBytes} <= cached ${stats.bytes}`);
  assert.ok(stats.bytes <= stats.budget || clean <= stats.budget / 8 + slack, `${where}: ${stats.bytes} cached bytes (${clean} clean) over the budget ${stats.budget}`);
}

/**
 * Runs one random script of adds, rewrites, partial writes, removes, flushes, checkpoints,
 * rollbacks and discards against an unbounded index and a bounded one (plus a bounded second
 * connection catching up on the bounded one's log), comparing everything observable.
 */
function runScript(seed: number, operations: number, bounded: SimilarityIndexOptions): { evictions: number } {
  const next = random(seed);
  const unboundedStorage = new MemoryIndexStorage();
  const boundedStorage = new MemoryIndexStorage();
  const common = { checkpointEveryChunks: bounded.checkpointEveryChunks, checkpointEveryCommits: bounded.checkpointEveryCommits };
  const reference = new SimilarityIndex(unboundedStorage, { ...common, cacheBytes: Infinity });
  const index = new SimilarityIndex(boundedStorage, bounded);
  const reader = new SimilarityIndex(boundedStorage, bounded);
  // The row a sweep spares (just read, its caller may change it) can be a whole 256-chunk
  // segment: ~175 KB of fingerprints here. Allow one such row above the budget's eighth.
  const slack = 192 * 1024;
  const both = (step: (target: SimilarityIndex) => void): void => {
    step(reference);
    step(index);
  };
  for (let operation = 0; operation < operations; operation += 1) {
    const path = PATHS[next(PATHS.length)];
    const action = next(20);
    if (action < 8) {
      // Whole-file (re)write: some files span two segments (> 256 chunks).
      const bytes = familyBytes(next(4), next(8) === 0 ? 70_000 + next(20_000) : next(12_000), next(1e6));
      const chunks = chunksOf(bytes, CHUNK_BYTES);
      both((target) => target.addFile(path, chunks));
    } else if (action < 11) {
      // Partial write: replace a few chunks, maybe append or truncate.
      const count = reference.chunkCountOf(path);
      const from = next(count + 1);
      const replaced = chunksOf(familyBytes(next(4), (1 + next(4)) * CHUNK_BYTES, next(1e6)), CHUNK_BYTES);
      const chunkCount = Math.max(from + replaced.length, next(2) === 0 ? count : from + replaced.length);
      both((target) => target.replaceChunks(path, from, replaced, chunkCount));
    } else if (action < 14) {
      const removed = reference.removeFile(path);
      assert.equal(index.removeFile(path), removed);
    } else if (action < 17) {
      both((target) => target.flush());
      if (!reader.catchUp()) reader.discardCache();
    } else if (action === 17) {
      both((target) => target.checkpoint());
      const stats = index.cacheStats();
      assert.equal(stats.pinnedBytes, 0, 'a checkpoint leaves nothing pinned');
      assert.ok(stats.bytes <= stats.budget, `after a checkpoint ${stats.bytes} <= ${stats.budget}`);
    } else if (action === 18) {
      // A rolled-back commit: both forget their unflushed changes.
      both((target) => target.discardCache());
    } else {
      both((target) => target.flush());
      both((target) => target.discardCache());
    }
    assertWithinBudget(index, slack, `operation ${operation}`);
    if (operation % 4 === 3) {
      assert.deepEqual(observe(index, operation), observe(reference, operation), `bounded index differs after operation ${operation}`);
      assertWithinBudget(index, slack, `queries after operation ${operation}`);
    }
    if (operation % 10 === 9) {
      // The second connection sees what the first flushed.
      both((target) => target.flush());
      if (!reader.catchUp()) reader.discardCache();
      assert.deepEqual(observe(reader, operation), observe(reference, operation), `catching-up connection differs after operation ${operation}`);
      assertWithinBudget(reader, slack, `reader after operation ${operation}`);
    }
  }
  both((target) => target.flush());
  assert.deepEqual(observe(index, -1), observe(reference, -1));
  // Storage holds the same index: a fresh bounded connection reads it back equal.
  assert.deepEqual(observe(new SimilarityIndex(boundedStorage, bounded), 5), observe(reference, 5));
  assert.equal(reference.cacheStats().evictions, 0, 'the unbounded index evicts nothing');
  return { evictions: index.cacheStats().evictions + reader.cacheStats().evictions };
}

test('a bounded cache answers every query, similar and root exactly like an unbounded one', () => {
  const { evictions } = runScript(7, 160, { cacheBytes: 512 * 1024, checkpointEveryChunks: 600 });
  assert.ok(evictions > 100, `the budget forced evictions (${evictions})`);
});

test('a zero budget (every clean row evicted at once) still answers exactly like an unbounded one, across default checkpoints', () => {
  const { evictions } = runScript(23, 120, { cacheBytes: 0 });
  assert.ok(evictions > 100, `the budget forced evictions (${evictions})`);
});

test('cacheStats: the default budget, Infinity keeps every row, a bad budget is refused', () => {
  const index = new SimilarityIndex(new MemoryIndexStorage());
  assert.equal(index.cacheStats().budget, DEFAULT_CACHE_BYTES);
  assert.equal(DEFAULT_CACHE_BYTES, 512 * 1024 * 1024);
  const unbounded = new SimilarityIndex(new MemoryIndexStorage(), { cacheBytes: Infinity });
  for (let file = 0; file < 50; file += 1) unbounded.addFileBytes(`/f${file}`, seededBytes(5000, file + 1), 512);
  unbounded.checkpoint();
  const stats = unbounded.cacheStats();
  assert.equal(stats.evictions, 0);
  assert.equal(stats.pinnedBytes, 0);
  assert.ok(stats.bytes > 0 && stats.entries.files === 50 && stats.entries.paths === 50);
  assert.throws(() => new SimilarityIndex(new MemoryIndexStorage(), { cacheBytes: -1 }), RangeError);
  assert.throws(() => new SimilarityIndex(new MemoryIndexStorage(), { cacheBytes: Number.NaN }), RangeError);
});

test('many small files under a small budget: the cache stays bounded after every checkpoint, and a fresh read evicts as it goes', () => {
  const budget = 512 * 1024;
  const index = new SimilarityIndex(new MemoryIndexStorage(), { cacheBytes: budget, checkpointEveryChunks: 256 });
  for (let file = 0; file < 1500; file += 1) {
    index.addFileBytes(`/d${file % 3}/f${file}`, seededBytes(600 + (file % 5) * 700, file + 1), 512);
    index.flush();
    const stats = index.cacheStats();
    assert.ok(stats.bytes <= budget || stats.bytes - stats.pinnedBytes <= budget / 8 + 64 * 1024, `file ${file}: ${stats.bytes} bytes`);
  }
  index.checkpoint();
  assert.ok(index.cacheStats().bytes <= budget);
  // Reading every file back (brute force walks them all) keeps the cache within the budget.
  const reopened = new SimilarityIndex(index.storage, { cacheBytes: budget });
  let files = 0;
  reopened.forEachFile(() => {
    files += 1;
  });
  assert.equal(files, 1500);
  assert.ok(reopened.cacheStats().bytes <= budget, `${reopened.cacheStats().bytes} <= ${budget}`);
  assert.ok(reopened.cacheStats().evictions > 0);
});

test('eviction is least recently used: a row read between every other read is never read from storage again', () => {
  const storage = new MemoryIndexStorage();
  const writer = new SimilarityIndex(storage);
  for (let file = 0; file < 400; file += 1) writer.addFileBytes(`/f${file}`, seededBytes(3000, file + 1), 1024);
  writer.checkpoint();
  const reads = new Map<string, number>();
  const counting = {
    get: (key: string) => {
      reads.set(key, (reads.get(key) ?? 0) + 1);
      return storage.get(key);
    },
    put: (key: string, value: Uint8Array) => storage.put(key, value),
    delete: (key: string) => storage.delete(key),
  };
  // Room for a few dozen file rows: reading all 400 evicts most of them.
  const index = new SimilarityIndex(counting, { cacheBytes: 96 * 1024 });
  const hot = index.fileByPath('/f7');
  assert.ok(hot !== undefined);
  for (let file = 0; file < 400; file += 1) {
    assert.ok(index.fileByPath(`/f${file}`) !== undefined);
    assert.equal(index.fileByPath('/f7')?.fileId, hot.fileId);
  }
  assert.ok(index.cacheStats().evictions > 300, `${index.cacheStats().evictions} evictions`);
  assert.equal(reads.get(`file:${hot.fileId}`), 1, 'the hot file row was read once');
  assert.equal(reads.get('path:/f7'), 1, 'the hot path row was read once');
  assert.ok((reads.get(`file:${hot.fileId + 1}`) ?? 0) >= 1);
  // Cold rows were evicted: reading them again goes back to storage.
  index.fileByPath('/f0');
  assert.equal(reads.get('path:/f0'), 2);
});
