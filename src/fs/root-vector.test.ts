import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoreWriter } from '../store/api.js';
import { FINGERPRINT_DIMENSION, chunkFingerprint } from '../query/fingerprint.js';
import { BundleAccumulator } from '../vsa/accumulator.js';
import { serializeVector } from '../vsa/serialize.js';
import { RootDelta, forgetDecodedFingerprints, loadRoot } from './root-vector.js';

/** The three StoreWriter members RootDelta uses, over a chunk table, counting fingerprint reads. */
function fakeWriter(chunks: Map<number, Uint8Array>): { writer: StoreWriter; reads: () => number } {
  let stored: Uint8Array | undefined;
  let reads = 0;
  const writer = {
    rootCounts: () => stored,
    setRootCounts: (counts: Uint8Array) => {
      stored = counts;
    },
    chunkFingerprint: (chunkId: number) => {
      reads += 1;
      return chunks.get(chunkId);
    },
  };
  return { writer: writer as unknown as StoreWriter, reads: () => reads };
}

function fingerprintOf(seed: number): Uint8Array {
  return serializeVector(chunkFingerprint(new TextEncoder().encode(`chunk ${seed}`)));
}

function commit(writer: StoreWriter, changes: Array<[chunkId: number, times: number, known?: Uint8Array]>): void {
  const delta = new RootDelta();
  for (const [chunkId, times, known] of changes) {
    delta.add(chunkId, times);
    if (known !== undefined) delta.knownFingerprints.set(chunkId, known);
  }
  delta.flush(writer);
}

test('what it does when a rewrite un-bundles the chunks the previous commit bundled: no reads, exact counts', () => {
  const chunks = new Map([1, 2, 3, 4].map((id) => [id, fingerprintOf(id)] as [number, Uint8Array]));
  const { writer, reads } = fakeWriter(chunks);
  commit(writer, [[1, 1, chunks.get(1)], [2, 2, chunks.get(2)]]);
  commit(writer, [[1, -1], [2, -2], [3, 1, chunks.get(3)], [4, 1, chunks.get(4)]]);
  assert.equal(reads(), 0);
  const expected = new BundleAccumulator(FINGERPRINT_DIMENSION);
  for (const id of [3, 4]) expected.add(chunkFingerprint(new TextEncoder().encode(`chunk ${id}`)));
  assert.deepEqual(loadRoot(writer).counts, expected.counts);
});

test('what it does when a chunk id is handed out again after a rollback: the new chunk is bundled, not the cached one', () => {
  const chunks = new Map<number, Uint8Array>();
  const { writer } = fakeWriter(chunks);
  const rolledBack = fingerprintOf(10);
  commit(writer, [[9, 1, rolledBack]]);
  // The transaction rolled back: the root counts revert and the id will name another chunk.
  writer.setRootCounts(new BundleAccumulator(FINGERPRINT_DIMENSION).serialize());
  forgetDecodedFingerprints();
  const reused = fingerprintOf(11);
  chunks.set(9, reused);
  commit(writer, [[9, 1, reused]]);
  const expected = new BundleAccumulator(FINGERPRINT_DIMENSION).add(chunkFingerprint(new TextEncoder().encode('chunk 11')));
  assert.deepEqual(loadRoot(writer).counts, expected.counts);
  commit(writer, [[9, -1]]);
  assert.ok(loadRoot(writer).counts.every((count) => count === 0));
});

test('what it does when a chunk is neither known nor stored: CORRUPT', () => {
  const { writer } = fakeWriter(new Map());
  assert.throws(() => commit(writer, [[77, -1]]), (error: unknown) => error instanceof Error && 'code' in error && error.code === 'CORRUPT');
});
