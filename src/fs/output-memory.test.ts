/**
 * Large read outputs come from the native addon's huge-page mappings (src/fs/output-memory.ts):
 * they must behave as plain zero-filled memory, including when a mapping is reused after V8
 * collected the buffer that had it, and reads through them must return the file's bytes (holes
 * as zeros).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { seededBytes } from '../../test/support/seeded-bytes.js';
import { openEngram } from './index.js';
import { LARGE_OUTPUT_MIN_BYTES, allocateOutput, largeOutputImplementation } from './output-memory.js';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
const root = mkdtempSync(join(tmpdir(), 'embrfs-output-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Lets V8 collect unreachable buffers and run their finalizers (Node runs them on a later turn). */
async function collectGarbage(): Promise<void> {
  for (let round = 0; round < 3; round += 1) {
    collect();
    await turn();
  }
}

describe('large read outputs', () => {
  it('uses the addon where it is built (EMBRFS_EXPECT_NATIVE=1 in CI)', () => {
    if (process.env.EMBRFS_EXPECT_NATIVE === '1') assert.equal(largeOutputImplementation(), 'huge-pages');
    else assert.ok(['huge-pages', 'plain'].includes(largeOutputImplementation()));
  });

  it('is zero-filled at every size, also when the memory of a dirtied, collected output is reused', async () => {
    for (const size of [1, 4095, LARGE_OUTPUT_MIN_BYTES - 1, LARGE_OUTPUT_MIN_BYTES, LARGE_OUTPUT_MIN_BYTES + 12_345, 3 * LARGE_OUTPUT_MIN_BYTES]) {
      for (let round = 0; round < 3; round += 1) {
        let out: Uint8Array | undefined = allocateOutput(size);
        assert.equal(out.length, size);
        assert.equal(out.findIndex((byte) => byte !== 0), -1, `${size} bytes, round ${round}: zero-filled`);
        out.fill(0xa5);
        out = undefined;
        await collectGarbage();
      }
    }
  });

  it('clones like any Uint8Array; a transfer copies it and leaves the sender its bytes', async () => {
    const out = allocateOutput(LARGE_OUTPUT_MIN_BYTES + 1);
    const length = out.length;
    out[0] = 7;
    out[out.length - 1] = 9;
    const clone = structuredClone(out);
    assert.deepEqual([clone[0], clone[clone.length - 1], clone.length], [7, 9, out.length]);
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
    port1.postMessage(out, [out.buffer as ArrayBuffer]);
    const got = await received;
    port1.close();
    port2.close();
    assert.deepEqual([got[0], got[got.length - 1], got.length], [7, 9, length]);
    // External memory is copied, not moved; a plain buffer is moved (detached here).
    assert.equal(out.length, largeOutputImplementation() === 'huge-pages' ? length : 0);
  });

  it('serves whole-file and ranged reads of large sparse files exactly, read after read', async () => {
    const engram = await openEngram(join(root, 'sparse.engram'), { create: true });
    try {
      const size = 2 * LARGE_OUTPUT_MIN_BYTES + 777;
      const data = seededBytes(size, 3);
      data.fill(0, 4096, 4096 * 40); // holes
      data.fill(0, size - 5000); // a hole at the end
      await engram.writeFile('/f', data);
      // A partial write drops the file's whole-content hash: its reads take the checked path.
      await engram.writeFile('/g', data);
      await engram.write('/g', LARGE_OUTPUT_MIN_BYTES, Uint8Array.of(1, 2, 3));
      const changed = Uint8Array.from(data);
      changed.set([1, 2, 3], LARGE_OUTPUT_MIN_BYTES);
      for (let round = 0; round < 4; round += 1) {
        assert.equal(Buffer.compare((await engram.readFile('/f')).data, data), 0, `round ${round}: /f`);
        assert.equal(Buffer.compare((await engram.readFile('/g')).data, changed), 0, `round ${round}: /g`);
        const { data: range } = await engram.read('/f', 1000, LARGE_OUTPUT_MIN_BYTES + 5000);
        assert.equal(Buffer.compare(range, data.subarray(1000, 1000 + LARGE_OUTPUT_MIN_BYTES + 5000)), 0, `round ${round}: range`);
        await collectGarbage();
      }
    } finally {
      await engram.close();
    }
  });
});
