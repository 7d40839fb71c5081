import assert from 'node:assert/strict';
import test from 'node:test';
import { ContentDelta } from './content-delta.js';

test('recordClosed forgets exactly the refs in [firstIndex, endIndex), for short and long ranges', () => {
  const delta = new ContentDelta();
  delta.recordInserted(7, 0, [10, 11, 12, 13, 14, 15, 16, 17]);
  delta.recordInserted(8, 0, [20, 21]);
  delta.recordClosed(7, 2, 4); // shorter than the recorded refs: walks the range
  assert.deepEqual([...delta.insertedRefs.get(7)!.entries()], [[0, 10], [1, 11], [4, 14], [5, 15], [6, 16], [7, 17]]);
  delta.recordClosed(7, 6, Number.MAX_SAFE_INTEGER); // a truncate: walks the refs
  assert.deepEqual([...delta.insertedRefs.get(7)!.entries()], [[0, 10], [1, 11], [4, 14], [5, 15]]);
  delta.recordClosed(7, 5, 5); // empty range
  assert.equal(delta.insertedRefs.get(7)!.size, 4);
  delta.recordClosed(7, 0, 1_000_000);
  assert.equal(delta.insertedRefs.get(7)!.size, 0);
  assert.deepEqual([...delta.insertedRefs.get(8)!.entries()], [[0, 20], [1, 21]], 'other inodes untouched');
  delta.recordClosed(9, 0, 10); // nothing recorded for this inode
  assert.equal(delta.insertedRefs.has(9), false);
});

test('scattered single-chunk writes and closes keep the refs that are still live', () => {
  const delta = new ContentDelta();
  const live = new Map<number, number>();
  let chunkId = 1;
  let seed = 12345;
  for (let step = 0; step < 5000; step += 1) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const index = seed % 2000;
    delta.recordClosed(1, index, index + 1);
    live.delete(index);
    delta.recordInserted(1, index, [chunkId]);
    live.set(index, chunkId);
    chunkId += 1;
  }
  assert.deepEqual(new Map([...delta.insertedRefs.get(1)!.entries()].sort((a, b) => a[0] - b[0])), new Map([...live.entries()].sort((a, b) => a[0] - b[0])));
});
