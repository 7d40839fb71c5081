import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Store } from '../store/api.js';
import { openEngram } from './index.js';
import { READ_CACHE_WINDOW_CHUNKS } from './read-cache.js';
import { pattern } from '../../test/support/seeded-bytes.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-read-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `c-${(counter += 1)}.engram`);

/** Small reads at scattered offsets (enough of them that the cache fetches whole windows). */
function offsets(size: number, count: number, seed: number): number[] {
  let state = seed;
  const result: number[] = [];
  for (let index = 0; index < count; index += 1) {
    state = (state * 1103515245 + 12345) >>> 0;
    result.push(state % size);
  }
  return result;
}

describe('handle read cache', () => {
  it('small handle reads see every commit: own writes, another handle, another connection, truncate', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: 4096 });
    const size = 4096 * READ_CACHE_WINDOW_CHUNKS * 3 + 123;
    const expected = new Uint8Array(pattern(size, 1));
    await engram.writeFile('/f', expected);
    const handle = await engram.open('/f');
    const other = await engram.open('/f');
    const check = async (label: string): Promise<void> => {
      for (const offset of offsets(expected.length + 5000, 40, expected.length)) {
        const { data } = await handle.read(offset, 4096);
        const end = Math.min(expected.length, offset + 4096);
        assert.deepEqual(Buffer.from(data), Buffer.from(expected.subarray(Math.min(offset, end), end)), `${label}: read at ${offset}`);
      }
    };
    await check('fresh');
    const patch = pattern(9000, 2);
    await handle.write(70_000, patch);
    expected.set(patch, 70_000);
    await check('own write');
    const patch2 = pattern(5000, 3);
    await other.write(300_000, patch2);
    expected.set(patch2, 300_000);
    await check('another handle');
    const second = await openEngram(file);
    const patch3 = pattern(4096, 4);
    await second.write('/f', 4096 * 7, patch3);
    expected.set(patch3, 4096 * 7);
    await check('another connection');
    await second.close();
    await other.truncate(200_000);
    const truncated = expected.slice(0, 200_000);
    const { data } = await handle.read(150_000, 100_000);
    assert.deepEqual(Buffer.from(data), Buffer.from(truncated.subarray(150_000)), 'truncate shows up');
    await handle.close();
    await other.close();
    await engram.close();
  });

  it('reads right after a repack moved the cached chunks (compaction writes no commit)', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: 4096 });
    // One transaction: small files share packs, so deleting the larger one leaves the pack
    // mostly dead and compaction repacks the survivor's chunks into a new pack.
    const keep = new Uint8Array(pattern(4096 * 3, 5));
    await engram.transaction(async (tx) => {
      await tx.writeFile('/keep', keep);
      await tx.writeFile('/drop', pattern(4096 * 12, 6));
    });
    await engram.deleteFile('/drop');
    const handle = await engram.open('/keep');
    for (const offset of offsets(keep.length, 20, 7)) await handle.read(offset, 1000);
    // The store's garbage collection alone (compact() commits an index rebuild first, which
    // would invalidate the cache anyway; another connection's compaction can land between that
    // commit and its repack).
    const store = (engram as unknown as { store: Store }).store;
    const head = await engram.currentCommit();
    const report = store.collectGarbage({ pinnedCommits: [], retainAfterCommit: head, stagedGraceAfterNs: 0n });
    assert.ok(report.freedChunks > 0, 'the collection freed the deleted file');
    assert.equal(await engram.currentCommit(), head, 'garbage collection writes no commit');
    for (const offset of offsets(keep.length, 20, 8)) {
      const { data } = await handle.read(offset, 4096);
      assert.deepEqual(Buffer.from(data), Buffer.from(keep.subarray(offset, Math.min(keep.length, offset + 4096))), `read at ${offset} after compaction`);
    }
    await handle.close();
    await engram.close();
  });
});
