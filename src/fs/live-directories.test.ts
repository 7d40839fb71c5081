import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isEmbrError } from '../errors.js';
import { openEngram } from './index.js';
import { LiveDirectories } from './operations.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-live-directories-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `e-${(counter += 1)}.engram`);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);

async function expectCode(code: string, promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isEmbrError(error) && error.code === code);
}

describe('LiveDirectories', () => {
  it('keeps its entries across consecutive own commits that keep directories, and drops them otherwise', () => {
    const directories = new LiveDirectories();
    directories.validate(10);
    directories.set('/a', 5);
    directories.afterOwnCommit(11, true);
    assert.equal(directories.get('/a'), 5, 'a create or write keeps every directory path');
    directories.validate(11);
    assert.equal(directories.get('/a'), 5, 'the head it knows');
    directories.afterOwnCommit(13, true);
    assert.equal(directories.get('/a'), undefined, 'commit 12 was someone else\'s');
    directories.set('/a', 5);
    directories.afterOwnCommit(14, false);
    assert.equal(directories.get('/a'), undefined, 'a rename or rmdir drops everything');
    directories.set('/a', 5);
    directories.validate(15);
    assert.equal(directories.get('/a'), undefined, 'another head: another connection committed');
  });
});

describe('path resolution through the live directory cache', () => {
  it('sees another connection\'s rename and rmdir at once', async () => {
    const file = freshFile();
    const first = await openEngram(file, { create: true });
    const second = await openEngram(file);
    try {
      await first.mkdir('/a/b', { parents: true });
      await first.writeFile('/a/b/f', text('f'));
      const ino = (await first.stat('/a/b/f')).ino;
      assert.equal((await first.stat('/a/b/f')).ino, ino, 'second read: through the cached /a/b');
      await second.rename('/a', '/c');
      await expectCode('NOT_FOUND', first.stat('/a/b/f'));
      assert.equal((await first.stat('/c/b/f')).ino, ino);
      await second.deleteFile('/c/b/f');
      await second.rmdir('/c/b');
      await second.mkdir('/c/b');
      await second.writeFile('/c/b/f', text('g'));
      const fresh = await first.stat('/c/b/f');
      assert.notEqual(fresh.ino, ino, 'the new /c/b, not the cached one');
      assert.equal(new TextDecoder().decode((await first.readFile('/c/b/f')).data), 'g');
    } finally {
      await second.close();
      await first.close();
    }
  });

  it('follows its own renames, rmdirs and restores, and keeps the errors of a walk', async () => {
    const engram = await openEngram(freshFile(), { create: true });
    try {
      await engram.mkdir('/a/b', { parents: true });
      await engram.writeFile('/a/b/f', text('one'));
      await engram.writeFile('/a/file', text('x'));
      await engram.createSnapshot('s');
      const ino = (await engram.stat('/a/b/f')).ino;
      await engram.rename('/a/b', '/a/moved');
      await expectCode('NOT_FOUND', engram.stat('/a/b/f'));
      assert.equal((await engram.stat('/a/moved/f')).ino, ino);
      await engram.deleteFile('/a/moved/f');
      await engram.rmdir('/a/moved');
      await engram.mkdir('/a/moved');
      await expectCode('NOT_FOUND', engram.stat('/a/moved/f'));
      await engram.restoreSnapshot('s');
      assert.equal((await engram.stat('/a/b/f')).size, 3);
      await expectCode('NOT_FOUND', engram.stat('/a/moved'));
      // Through a cached /a: a file in the middle of a path is still NOT_DIRECTORY.
      await engram.stat('/a/b');
      await expectCode('NOT_DIRECTORY', engram.stat('/a/file/x'));
      await expectCode('NOT_DIRECTORY', engram.stat('/a/file/x'));
      assert.equal(await engram.exists('/a/file/x'), false);
    } finally {
      await engram.close();
    }
  });
});
