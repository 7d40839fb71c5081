// Reads of many chunks copy positional chunks unchecked and then hash them in one batched call
// (readRange + pipeline.sha256Chunks): these tests hold that path to the same promise as the
// checked one: every byte returned is checked, and a damaged chunk is CORRUPT.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isEmbrError } from '../errors.js';
import { createPipeline, sha256ChunksImplementation } from './encode.js';
import { openEngram } from './index.js';
import { seededBytes } from '../../test/support/seeded-bytes.js';

const directory = mkdtempSync(join(tmpdir(), 'embrfs-read-verify-'));
after(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
const freshFile = (): string => join(directory, `e${(files += 1)}.engram`);
const CHUNK = 4096;

describe('batched chunk hashing', () => {
  it('hashes every piece exactly as node:crypto does, for any length and chunk size', () => {
    for (const chunkBytes of [4096, 1000, 65536]) {
      const pipeline = createPipeline({ profile: 'positional', chunkBytes });
      for (const length of [0, 1, 999, 1000, 1001, 4095, 4096, 4097, 3 * 4096, 70_001]) {
        const bytes = seededBytes(length, length + chunkBytes);
        const pieces = Math.ceil(length / chunkBytes);
        const out = new Uint8Array(32 * pieces);
        pipeline.sha256Chunks(bytes, chunkBytes, out);
        for (let piece = 0; piece < pieces; piece += 1) {
          const expected = createHash('sha256').update(bytes.subarray(piece * chunkBytes, Math.min(length, (piece + 1) * chunkBytes))).digest();
          assert.deepEqual(Buffer.from(out.subarray(32 * piece, 32 * piece + 32)), expected, `chunkBytes ${chunkBytes}, length ${length}, piece ${piece}`);
        }
      }
    }
  });

  it('is the native one when the environment expects it (EMBRFS_EXPECT_NATIVE=1, set by .ci/run)', () => {
    const implementation = sha256ChunksImplementation();
    if (process.env.EMBRFS_NO_NATIVE === '1') assert.equal(implementation, 'js');
    else if (process.env.EMBRFS_EXPECT_NATIVE === '1') assert.equal(implementation, 'native', 'npm ci builds native/build/Release/embrfs_native.node with sha256Chunks');
    else assert.ok(implementation === 'native' || implementation === 'js');
  });
});

describe('reads of many chunks', () => {
  it('refuse a chunk whose stored bytes were changed (CORRUPT), and read every range around it', async () => {
    const file = freshFile();
    const writer = await openEngram(file, { create: true, chunkBytes: CHUNK });
    // Incompressible bytes: the packs stay raw, so a flipped byte reaches the copy unnoticed by
    // any decompressor and only the SHA-256 check can catch it.
    const data = seededBytes(64 * CHUNK, 91);
    await writer.writeFile('/f', data);
    await writer.close();

    const db = new Database(file);
    const chunk = db
      // Chunk 10 inside the run of references that covers it (schema 3: a row is a run).
      .prepare(
        `SELECT c.pack_id AS packId, c.pack_offset AS packOffset, c.payload_bytes AS payloadBytes FROM file_chunks f
         JOIN chunks c ON c.chunk_id = f.chunk_id + (10 - f.chunk_index) WHERE f.chunk_index <= 10 AND f.chunk_index + f.run_count > 10`,
      )
      .get() as { packId: number; packOffset: number; payloadBytes: number };
    const stored = db.prepare('SELECT data FROM packs WHERE pack_id = ?').pluck().get(chunk.packId) as Buffer;
    assert.equal(stored[0], 0, 'the pack is stored raw');
    // The last byte of chunk 10's payload: its data, not its header.
    stored[1 + chunk.packOffset + chunk.payloadBytes - 1] ^= 0x01;
    db.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(stored, chunk.packId);
    db.close();

    const engram = await openEngram(file);
    try {
      const handle = await engram.open('/f');
      for (const [offset, length] of [[0, 64 * CHUNK], [0, 11 * CHUNK], [8 * CHUNK + 100, 5 * CHUNK], [10 * CHUNK, CHUNK]]) {
        await assert.rejects(handle.read(offset, length), (error: unknown) => isEmbrError(error, 'CORRUPT') && /SHA-256/.test((error as Error).message), `read ${offset}+${length}`);
      }
      for (const [offset, length] of [[0, 10 * CHUNK], [11 * CHUNK, 53 * CHUNK], [3 * CHUNK + 7, 7 * CHUNK - 7], [20 * CHUNK + 1, 30 * CHUNK]]) {
        assert.deepEqual(Buffer.from((await handle.read(offset, length)).data), Buffer.from(data.subarray(offset, offset + length)), `read ${offset}+${length}`);
      }
      await handle.close();
      await assert.rejects(engram.read('/f', 0, 64 * CHUNK), (error: unknown) => isEmbrError(error, 'CORRUPT'));
      const report = await engram.verify();
      assert.equal(report.ok, false);
      assert.ok(report.damagedPaths.includes("/f"), JSON.stringify(report.damagedPaths));
    } finally {
      await engram.close();
    }
  });

  it('read holes as zeros between the chunks they check', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
    try {
      const head = seededBytes(5 * CHUNK + 300, 5);
      const tail = seededBytes(3 * CHUNK - 17, 6);
      const handle = await engram.open('/sparse', { create: true });
      await handle.write(0, head);
      await handle.write(40 * CHUNK + 17, tail);
      const expected = new Uint8Array(43 * CHUNK);
      expected.set(head, 0);
      expected.set(tail, 40 * CHUNK + 17);
      for (const [offset, length] of [[0, 43 * CHUNK], [CHUNK, 41 * CHUNK], [5 * CHUNK + 1, 36 * CHUNK]]) {
        assert.deepEqual(Buffer.from((await handle.read(offset, length)).data), Buffer.from(expected.subarray(offset, offset + length)), `read ${offset}+${length}`);
      }
      await handle.close();
      assert.deepEqual(Buffer.from((await engram.readFile('/sparse')).data), Buffer.from(expected));
    } finally {
      await engram.close();
    }
  });
});
