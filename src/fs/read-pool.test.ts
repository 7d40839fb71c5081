import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isEmbrError } from '../errors.js';
import type { Engram } from './api.js';
import { openEngram } from './index.js';
import type { ReadPool } from './read-pool.js';
import { POOL_HANDLE_READ_MIN_BYTES } from './read-pool.js';
import { pattern } from '../../test/support/seeded-bytes.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-read-pool-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `r-${(counter += 1)}.engram`);


function poolOf(engram: Engram): ReadPool {
  const pool = (engram as unknown as { readPool: ReadPool | undefined }).readPool;
  assert.ok(pool !== undefined, 'an engram opened with readWorker on a multi-core machine has a read pool');
  return pool;
}

describe('read worker (readWorker: true)', { skip: process.env.EMBRFS_READ_THREADS === '0' ? 'EMBRFS_READ_THREADS=0 turns the read worker off' : false }, () => {
  it('serves large handle reads with the same bytes as the main thread: chunk edges, holes, the end of the file, fresh writes', async () => {
    const file = freshFile();
    const writer = await openEngram(file, { create: true, chunkBytes: 4096 });
    const content = pattern((3 << 20) + 777, 1);
    await writer.writeFile('/f', content);
    await writer.close();

    const engram = await openEngram(file, { readWorker: true, mmapBytes: 1 << 30 });
    const plain = await openEngram(file, { readOnly: true });
    const handle = await engram.open('/f');
    const plainHandle = await plain.open('/f');
    const expected = new Uint8Array(content);
    const check = async (offset: number, length: number): Promise<void> => {
      const [ours, theirs] = await Promise.all([handle.read(offset, length), plainHandle.read(offset, length)]);
      const end = Math.min(expected.length, offset + length);
      assert.deepEqual(Buffer.from(ours.data), Buffer.from(expected.subarray(Math.min(offset, end), end)), `read(${offset}, ${length})`);
      assert.deepEqual(Buffer.from(ours.data), Buffer.from(theirs.data));
      assert.equal(ours.version, theirs.version);
    };
    const servedBefore = poolOf(engram).served;
    await check(0, 1 << 20);
    await check(4095, POOL_HANDLE_READ_MIN_BYTES + 2);
    await check((3 << 20) - 100, 1 << 20); // runs past the end: a short read
    await check((4 << 20) + 5, 1 << 20); // wholly past the end: empty
    // A write through the handle, then a large read at once: the worker sees the commit.
    const patch = pattern(10_000, 2);
    await handle.write(1_000_000, patch);
    expected.set(patch, 1_000_000);
    await check(900_000, 1 << 20);
    // A hole: writing past the end leaves zeros, which read as zeros.
    const tail = pattern(5000, 3);
    await handle.write(expected.length + 300_000, tail);
    const grown = new Uint8Array(expected.length + 300_000 + tail.length);
    grown.set(expected);
    grown.set(tail, expected.length + 300_000);
    const read = await handle.read(expected.length - 1000, 400_000);
    assert.deepEqual(Buffer.from(read.data), Buffer.from(grown.subarray(expected.length - 1000, expected.length - 1000 + 400_000)));
    assert.ok(poolOf(engram).served >= servedBefore + 6, `the worker served the large reads (${poolOf(engram).served - servedBefore})`);
    // Small reads stay on the main thread.
    const servedNow = poolOf(engram).served;
    assert.deepEqual(Buffer.from((await handle.read(10, 100)).data), Buffer.from(grown.subarray(10, 110)));
    assert.equal(poolOf(engram).served, servedNow);
    await handle.close();
    await plainHandle.close();
    await plain.close();
    await engram.close();
    // The worker's connection closed before the main one, which removed the write-ahead log.
    assert.equal(existsSync(`${file}-wal`), false);
  });

  it('decodes into buffers given back, with holes zeroed and other handles and foreign buffers left alone', async () => {
    const file = freshFile();
    const writer = await openEngram(file, { create: true, chunkBytes: 4096 });
    const full = pattern(2 << 20, 21);
    await writer.writeFile('/full', full);
    // A sparse file: data, then a hole of 200 chunks, then data.
    const sparse = await writer.open('/sparse', { create: true });
    const head = pattern(50_000, 22);
    const tail = pattern(70_000, 23);
    await sparse.write(0, head);
    await sparse.write(900_000, tail);
    await sparse.close();
    await writer.close();
    const expectedSparse = new Uint8Array(970_000);
    expectedSparse.set(head, 0);
    expectedSparse.set(tail, 900_000);

    const engram = await openEngram(file, { readWorker: true });
    const pool = poolOf(engram);
    const fullHandle = await engram.open('/full');
    const sparseHandle = await engram.open('/sparse');
    const first = await fullHandle.read(0, 1 << 20);
    assert.deepEqual(Buffer.from(first.data), Buffer.from(full.subarray(0, 1 << 20)));
    // Given back: the next large read (of another file, with holes) decodes into that memory.
    fullHandle.releaseReadBuffer(first.data);
    assert.equal(first.data.length, 1 << 20, 'released memory moves with the next read, not before');
    const reusedBefore = pool.reused;
    const holes = await sparseHandle.read(0, 1 << 20);
    assert.equal(pool.reused, reusedBefore + 1);
    assert.equal(first.data.length, 0, 'the given-back buffer moved to the worker');
    assert.deepEqual(Buffer.from(holes.data), Buffer.from(expectedSparse), 'holes read as zeros in reused memory');
    // Buffers not answered by the pool, and answers given back twice, are ignored.
    sparseHandle.releaseReadBuffer(new Uint8Array(1 << 20));
    sparseHandle.releaseReadBuffer(holes.data);
    sparseHandle.releaseReadBuffer(holes.data);
    const second = await fullHandle.read(1 << 20, 1 << 20);
    const third = await fullHandle.read(0, 1 << 20);
    assert.equal(pool.reused, reusedBefore + 2, 'one given-back answer, used once');
    assert.deepEqual(Buffer.from(second.data), Buffer.from(full.subarray(1 << 20)));
    assert.deepEqual(Buffer.from(third.data), Buffer.from(full.subarray(0, 1 << 20)));
    await fullHandle.close();
    await sparseHandle.close();
    await engram.close();
  });

  it('answers a damaged pack with CORRUPT, as the main thread does', async () => {
    const file = freshFile();
    const writer = await openEngram(file, { create: true, chunkBytes: 4096 });
    await writer.writeFile('/f', pattern(2 << 20, 4));
    await writer.close();
    const db = new Database(file);
    const packId = db.prepare('SELECT pack_id FROM chunks ORDER BY chunk_id LIMIT 1 OFFSET 100').pluck().get() as number;
    const stored = db.prepare('SELECT data FROM packs WHERE pack_id = ?').pluck().get(packId) as Buffer;
    stored[stored.length >> 1] ^= 0x10;
    db.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(stored, packId);
    db.close();

    const engram = await openEngram(file, { readWorker: true });
    const handle = await engram.open('/f');
    await assert.rejects(handle.read(0, 1 << 20), (error: unknown) => isEmbrError(error, 'CORRUPT'));
    assert.equal(poolOf(engram).served, 0);
    // The undamaged second half still reads, through the worker.
    assert.deepEqual(Buffer.from((await handle.read(1 << 20, 1 << 20)).data), Buffer.from(pattern(2 << 20, 4).subarray(1 << 20)));
    assert.equal(poolOf(engram).served, 1);
    await handle.close();
    await engram.close();
  });

  it('never reads another file renamed over the engram path: the worker refuses, the main thread reads', async () => {
    const file = freshFile();
    const other = freshFile();
    const content = pattern(1 << 20, 5);
    for (const [path, bytes] of [
      [file, content],
      [other, pattern(1 << 20, 6)],
    ] as const) {
      const writer = await openEngram(path, { create: true, chunkBytes: 4096 });
      await writer.writeFile('/f', bytes);
      await writer.close();
    }
    const engram = await openEngram(file, { readWorker: true });
    const handle = await engram.open('/f');
    renameSync(other, file);
    assert.deepEqual(Buffer.from((await handle.read(0, 1 << 20)).data), Buffer.from(content));
    assert.deepEqual(Buffer.from((await handle.read(0, 1 << 20)).data), Buffer.from(content));
    assert.equal(poolOf(engram).served, 0);
    await handle.close();
    await engram.close();
  });

  it('falls back to the main thread for good when its worker dies', async () => {
    const file = freshFile();
    const content = pattern(1 << 20, 7);
    const writer = await openEngram(file, { create: true, chunkBytes: 4096 });
    await writer.writeFile('/f', content);
    await writer.close();
    const engram = await openEngram(file, { readWorker: true });
    const handle = await engram.open('/f');
    assert.deepEqual(Buffer.from((await handle.read(0, 1 << 20)).data), Buffer.from(content));
    assert.equal(poolOf(engram).served, 1);
    const { workers } = poolOf(engram) as unknown as { workers: Array<{ worker: { terminate(): Promise<number> } }> };
    assert.equal(workers.length, 1);
    await workers[0].worker.terminate();
    for (let round = 0; round < 3; round += 1) assert.deepEqual(Buffer.from((await handle.read(0, 1 << 20)).data), Buffer.from(content));
    assert.equal(poolOf(engram).served, 1);
    assert.equal(workers.length, 0, 'no worker was started again');
    await handle.close();
    await engram.close();
  });

  it('is off unless asked for', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true });
    assert.equal((engram as unknown as { readPool: ReadPool | undefined }).readPool, undefined);
    await engram.close();
  });
});
