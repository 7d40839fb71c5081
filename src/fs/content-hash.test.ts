// writeFile records the file's SHA-256 (a file of one chunk takes its chunk's hash, a larger one
// is hashed whole): the recorded hash must equal SHA-256 of the bytes at every size boundary.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { openEngramOnStore } from './index.js';
import { createMemoryStore } from '../store/memory-store.js';
import { LIVE } from '../store/api.js';

const CHUNK = 256;

function bytesOf(size: number, fill: 'zero' | 'pattern'): Uint8Array {
  const bytes = new Uint8Array(size);
  if (fill === 'pattern') for (let index = 0; index < size; index += 1) bytes[index] = (index * 7 + 3) & 0xff;
  return bytes;
}

describe('the content SHA-256 writeFile records', () => {
  for (const inTransaction of [false, true]) {
    it(`equals SHA-256 of the bytes at sizes around one chunk${inTransaction ? ', in a transaction' : ''}`, async () => {
      const store = createMemoryStore({ profile: 'positional', chunkBytes: CHUNK });
      const engram = openEngramOnStore('memory', store);
      try {
        const cases: Array<[string, Uint8Array]> = [];
        for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK]) {
          for (const fill of ['zero', 'pattern'] as const) cases.push([`/f-${size}-${fill}`, bytesOf(size, fill)]);
        }
        if (inTransaction) {
          await engram.transaction(async (tx) => {
            for (const [path, data] of cases) await tx.writeFile(path, data);
          });
        } else {
          for (const [path, data] of cases) await engram.writeFile(path, data);
        }
        for (const [path, data] of cases) {
          const ino = (await engram.stat(path)).ino;
          const recorded = store.read((reader) => reader.inode(ino, LIVE)?.contentSha256);
          assert.ok(recorded !== null && recorded !== undefined, path);
          assert.equal(Buffer.from(recorded).toString('hex'), createHash('sha256').update(data).digest('hex'), path);
          assert.deepEqual((await engram.readFile(path)).data, data);
        }
        assert.equal((await engram.verify()).ok, true);
      } finally {
        await engram.close();
      }
    });
  }
});
