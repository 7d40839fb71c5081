import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openEngram } from './index.js';
import { isEmbrError } from '../errors.js';

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

  it('is read as it is by a read-only open, and brought to schema v3 (index_rows a rowid table, runs of chunk references) by a writable one', async () => {
    const file = join(directory, 'v1-migrate.engram');
    copyFileSync(golden, file);
    const layout = (): { version: number; withoutRowid: boolean } => {
      const db = new Database(file, { readonly: true });
      try {
        const sql = String(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'index_rows'").pluck().get());
        return { version: Number(db.pragma('user_version', { simple: true })), withoutRowid: /WITHOUT ROWID/i.test(sql) };
      } finally {
        db.close();
      }
    };
    assert.deepEqual(layout(), { version: 1, withoutRowid: true });
    const readOnly = await openEngram(file, { readOnly: true });
    try {
      assert.equal(text((await readOnly.readFile('/docs/readme.txt')).data), 'changed after the snapshot\n');
    } finally {
      await readOnly.close();
    }
    assert.deepEqual(layout(), { version: 1, withoutRowid: true });
    // Held open read-only across the upgrade below: it reads every reference row as a run of one.
    const stale = await openEngram(file, { readOnly: true });
    const writable = await openEngram(file);
    try {
      assert.deepEqual(layout(), { version: 3, withoutRowid: false });
      const expected = (await writable.readFile('/data.bin')).data;
      assert.equal((await writable.query(expected.subarray(0, 256), { k: 1 })).matches[0].path, '/data.bin');
      assert.equal((await writable.verify()).ok, true);
    } finally {
      await writable.close();
    }
    // A second writable open finds nothing to migrate.
    const again = await openEngram(file);
    await again.close();
    assert.deepEqual(layout(), { version: 3, withoutRowid: false });
    // The migrated file's references (runs of one) and new runs work side by side.
    const migrated = await openEngram(file);
    try {
      const before = (await migrated.readFile('/data.bin')).data;
      await migrated.write('/data.bin', 10, Uint8Array.of(9, 9, 9));
      const fresh = new Uint8Array(300_000).map((_, index) => (index * 13 + 1) & 0xff);
      await migrated.writeFile('/fresh.bin', fresh);
      const expected = before.slice();
      expected.set([9, 9, 9], 10);
      assert.deepEqual((await migrated.readFile('/data.bin')).data, expected);
      assert.deepEqual((await migrated.readFile('/fresh.bin')).data, fresh);
      assert.equal((await migrated.verify()).ok, true);
      // The handle opened before the upgrade refuses to read runs it cannot see, never holes.
      await assert.rejects(stale.readFile('/fresh.bin'), (error: unknown) => isEmbrError(error, 'BUSY') && /upgraded/.test((error as Error).message));
    } finally {
      await migrated.close();
      await stale.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      assert.ok(Number(db.prepare('SELECT max(run_count) FROM file_chunks').pluck().get()) > 1, 'a new whole-file write is stored as runs');
    } finally {
      db.close();
    }
  });
});
