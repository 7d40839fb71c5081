import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { openEngram } from './index.js';

// Compiled to dist/src/fs/golden.test.js; the golden file stays in the source tree.
const golden = fileURLToPath(new URL('../../../src/store/golden/schema-v1.golden', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'embrfs-golden-'));
after(() => rmSync(directory, { recursive: true, force: true }));
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('golden engram, schema v1 (src/store/golden/schema-v1.golden)', () => {
  it('opens and reads back every kind of entry when the format is unchanged', async () => {
    const file = join(directory, 'v1.engram');
    copyFileSync(golden, file);
    const engram = await openEngram(file);
    try {
      const expected = new Uint8Array(1000);
      for (let index = 0; index < expected.length; index += 1) expected[index] = (index * 7 + 3) & 0xff;
      expected.set(new TextEncoder().encode('PATCH'), 300);
      assert.deepEqual((await engram.readFile('/data.bin')).data, expected);
      assert.deepEqual((await engram.readFile('/docs/data-link.bin')).data, expected);
      assert.equal((await engram.stat('/data.bin')).nlink, 2);
      assert.equal(text((await engram.readFile('/docs/readme.txt')).data), 'changed after the snapshot\n');
      assert.equal(text((await engram.readFile('/docs/readme.txt', { snapshot: 'before' })).data), 'EmbrFS golden engram, schema v1\n');
      assert.equal((await engram.stat('/docs/readme.txt', { snapshot: 'before' })).mode, 0o600);
      assert.equal(await engram.readlink('/link'), 'docs/readme.txt');
      assert.equal(text(await engram.getxattr('/data.bin', 'user.origin')), 'golden');
      assert.deepEqual((await engram.readFile('/sparse')).data, new Uint8Array(700));
      assert.deepEqual((await engram.readdir('/')).map((entry) => entry.name), ['data.bin', 'docs', 'link', 'sparse']);
      assert.deepEqual((await engram.history('/docs/readme.txt')).map((entry) => entry.kind), ['write', 'metadata', 'write']);
      const stats = await engram.stats();
      assert.equal(stats.chunkBytes, 256);
      assert.equal(stats.profile, 'positional');
      assert.equal(stats.snapshots, 1);
      // The golden file predates the similarity index: a writable open builds it (and the root).
      assert.ok(stats.rootVector.nonZeroCount > 0);
      assert.equal((await engram.query(expected.subarray(0, 256), { k: 1 })).matches[0].path, '/data.bin');
      const report = await engram.verify();
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
    } finally {
      await engram.close();
    }
  });
});
