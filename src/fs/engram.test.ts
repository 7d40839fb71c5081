import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isEmbrError } from '../errors.js';
import { openEngram, openEngramOnStore } from './index.js';
import { createMemoryStore } from '../store/memory-store.js';
import { type Maker, using } from '../../test/support/engram-cases.js';
import { pattern } from '../../test/support/seeded-bytes.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-engram-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `e-${(counter += 1)}.engram`);
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const CHUNK = 256;

/**
 * Rewrites every run of chunk references (schema 3) as runs of one, which the store reads the
 * same: the damage below is done to one reference at a time.
 */
function explodeRuns(db: Database.Database): void {
  const runs = db.prepare('SELECT ino, chunk_index, from_commit, to_commit, chunk_id, run_count FROM file_chunks WHERE run_count > 1').all() as Array<Record<string, number | null>>;
  const remove = db.prepare('DELETE FROM file_chunks WHERE ino = ? AND chunk_index = ? AND from_commit = ?');
  const insert = db.prepare('INSERT INTO file_chunks(ino, chunk_index, from_commit, to_commit, chunk_id, run_count) VALUES (?, ?, ?, ?, ?, 1)');
  db.transaction(() => {
    for (const run of runs) {
      remove.run(run.ino, run.chunk_index, run.from_commit);
      for (let offset = 0; offset < Number(run.run_count); offset += 1) insert.run(run.ino, Number(run.chunk_index) + offset, run.from_commit, run.to_commit, Number(run.chunk_id) + offset);
    }
  })();
}


async function expectCode(code: string, promise: Promise<unknown>, data?: Record<string, unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isEmbrError(error), `expected EmbrError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (data !== undefined) for (const [key, value] of Object.entries(data)) assert.deepEqual(error.data[key], value);
    return true;
  });
}

const makers: Array<[string, Maker]> = [
  ['sqlite', () => openEngram(freshFile(), { create: true, chunkBytes: CHUNK })],
  ['memory', async () => openEngramOnStore('memory', createMemoryStore({ profile: 'positional', chunkBytes: CHUNK }))],
];


for (const [storeName, make] of makers) {
  describe(`engram API on the ${storeName} store`, () => {
    it('reads back what writeFile wrote, with the commit number as version', () =>
      using(make, async (engram) => {
        const data = pattern(1000, 1);
        const version = await engram.writeFile('/a.bin', data);
        assert.equal(version, await engram.currentCommit());
        const read = await engram.readFile('/a.bin');
        assert.deepEqual(read.data, data);
        assert.equal(read.version, version);
        const stat = await engram.stat('/a.bin');
        assert.equal(stat.type, 'file');
        assert.equal(stat.size, 1000);
        assert.equal(stat.nlink, 1);
        assert.equal(stat.mode, 0o644);
        assert.equal(stat.version, version);
        assert.equal(typeof stat.mtimeNs, 'bigint');
        const second = await engram.writeFile('/a.bin', text('short'));
        assert.ok(second > version);
        assert.equal(decode((await engram.readFile('/a.bin')).data), 'short');
        await engram.writeFile('/empty', new Uint8Array(0));
        assert.deepEqual((await engram.readFile('/empty')).data, new Uint8Array(0));
      }));

    it('refuses a create-only write of an existing path with EXISTS, and never conflicts across paths', () =>
      using(make, async (engram) => {
        await engram.writeFile('/x', text('1'), { exclusive: true });
        await expectCode('EXISTS', engram.writeFile('/x', text('2'), { exclusive: true }), { path: '/x' });
        const versions = await Promise.all(Array.from({ length: 20 }, (_, index) => engram.writeFile(`/c${index}`, text(String(index)), { exclusive: true })));
        assert.equal(new Set(versions).size, 20);
        for (let index = 0; index < 20; index += 1) assert.equal(decode((await engram.readFile(`/c${index}`)).data), String(index));
      }));

    it('refuses a stale expectedVersion with VERSION_MISMATCH carrying expected and actual', () =>
      using(make, async (engram) => {
        const v1 = await engram.writeFile('/v', text('a'));
        const v2 = await engram.writeFile('/v', text('b'), { expectedVersion: v1 });
        await expectCode('VERSION_MISMATCH', engram.writeFile('/v', text('c'), { expectedVersion: v1 }), { path: '/v', expected: v1, actual: v2 });
        await expectCode('VERSION_MISMATCH', engram.writeFile('/new', text('c'), { expectedVersion: 5 }), { expected: 5, actual: 0 });
        await expectCode('VERSION_MISMATCH', engram.write('/v', 0, text('z'), { expectedVersion: v1 }));
        await expectCode('VERSION_MISMATCH', engram.truncate('/v', 0, { expectedVersion: v1 }));
        await expectCode('VERSION_MISMATCH', engram.deleteFile('/v', { expectedVersion: v1 }));
        assert.equal(decode((await engram.readFile('/v')).data), 'b');
      }));

    it('writes at offsets like pwrite: inside, across chunks, past the end with a zero gap', () =>
      using(make, async (engram) => {
        let model = pattern(CHUNK * 5 + 17, 2);
        await engram.writeFile('/p', model);
        const edits: Array<[number, number]> = [
          [3, 10],
          [CHUNK - 5, 10],
          [CHUNK * 2, CHUNK * 2],
          [CHUNK + 1, CHUNK * 3],
          [model.length - 3, 40],
          [CHUNK * 9 + 100, 5],
          [0, 1],
        ];
        for (const [offset, length] of edits) {
          const data = pattern(length, offset + 7);
          await engram.write('/p', offset, data);
          const next = new Uint8Array(Math.max(model.length, offset + length));
          next.set(model);
          next.set(data, offset);
          model = next;
          assert.deepEqual((await engram.readFile('/p')).data, model, `after write at ${offset}+${length}`);
        }
        assert.equal((await engram.stat('/p')).size, model.length);
        assert.deepEqual((await engram.read('/p', CHUNK - 3, 10)).data, model.subarray(CHUNK - 3, CHUNK + 7));
        assert.deepEqual((await engram.read('/p', model.length - 2, 100)).data, model.subarray(model.length - 2));
        assert.deepEqual((await engram.read('/p', model.length + 5, 100)).data, new Uint8Array(0));
      }));

    it('re-encodes only the chunks a partial write touches', () =>
      using(make, async (engram) => {
        await engram.writeFile('/big', pattern(CHUNK * 100, 3));
        const before = (await engram.stats()).chunks;
        await engram.write('/big', CHUNK * 50 + 3, Uint8Array.of(1, 2, 3));
        assert.equal((await engram.stats()).chunks, before + 1);
        await engram.write('/big', CHUNK * 10 - 1, Uint8Array.of(9, 9));
        assert.equal((await engram.stats()).chunks, before + 3);
      }));

    it('truncates down and up, reading zeros past the old end', () =>
      using(make, async (engram) => {
        const data = pattern(CHUNK * 3 + 50, 4);
        await engram.writeFile('/t', data);
        await engram.truncate('/t', CHUNK + 10);
        assert.deepEqual((await engram.readFile('/t')).data, data.subarray(0, CHUNK + 10));
        await engram.truncate('/t', CHUNK * 4);
        const expected = new Uint8Array(CHUNK * 4);
        expected.set(data.subarray(0, CHUNK + 10));
        assert.deepEqual((await engram.readFile('/t')).data, expected);
        await engram.truncate('/t', 0);
        assert.equal((await engram.stat('/t')).size, 0);
        await expectCode('NOT_FOUND', engram.truncate('/none', 0));
      }));

    it('deletes files and reports NOT_FOUND and IS_DIRECTORY', () =>
      using(make, async (engram) => {
        await engram.writeFile('/d', text('x'));
        await engram.deleteFile('/d');
        assert.equal(await engram.exists('/d'), false);
        await expectCode('NOT_FOUND', engram.readFile('/d'));
        await expectCode('NOT_FOUND', engram.deleteFile('/d'));
        await engram.mkdir('/dir');
        await expectCode('IS_DIRECTORY', engram.deleteFile('/dir'));
        await expectCode('IS_DIRECTORY', engram.readFile('/dir'));
        await expectCode('IS_DIRECTORY', engram.writeFile('/dir', text('x')));
        await expectCode('NOT_FOUND', engram.writeFile('/nodir/x', text('x')));
      }));

    it('makes and removes directories with EXISTS, NOT_EMPTY, NOT_DIRECTORY and parents', () =>
      using(make, async (engram) => {
        const v = await engram.mkdir('/a', { mode: 0o700 });
        assert.equal((await engram.stat('/a')).mode, 0o700);
        assert.equal((await engram.stat('/a')).version, v);
        await expectCode('EXISTS', engram.mkdir('/a'));
        await engram.mkdir('/a/b/c', { parents: true });
        await engram.mkdir('/a/b/c', { parents: true });
        assert.equal((await engram.stat('/a')).nlink, 3);
        await expectCode('NOT_EMPTY', engram.rmdir('/a'));
        await engram.writeFile('/f', text('x'));
        await expectCode('NOT_DIRECTORY', engram.rmdir('/f'));
        await expectCode('NOT_DIRECTORY', engram.mkdir('/f/g'));
        await expectCode('NOT_DIRECTORY', engram.stat('/f/g'));
        await expectCode('NOT_FOUND', engram.rmdir('/zzz'));
        await engram.rmdir('/a/b/c');
        await engram.rmdir('/a/b');
        assert.equal((await engram.stat('/a')).nlink, 2);
        await expectCode('NOT_SUPPORTED', engram.rmdir('/'));
      }));

    it('lists directories sorted with entry types, and bumps a directory version on change', () =>
      using(make, async (engram) => {
        await engram.writeFile('/b', text('x'));
        await engram.mkdir('/a');
        await engram.symlink('b', '/c');
        const listed = await engram.readdir('/');
        assert.deepEqual(
          listed.map((entry) => [entry.name, entry.type]),
          [
            ['a', 'directory'],
            ['b', 'file'],
            ['c', 'symlink'],
          ],
        );
        const before = (await engram.stat('/')).version;
        await engram.writeFile('/a/new', text('x'));
        assert.ok((await engram.stat('/a')).version > before);
        await expectCode('NOT_DIRECTORY', engram.readdir('/b'));
      }));

    it('renames atomically, also over an existing file, and refuses what POSIX refuses', () =>
      using(make, async (engram) => {
        await engram.writeFile('/src', text('source'));
        await engram.writeFile('/dst', text('target'));
        const ino = (await engram.stat('/src')).ino;
        await engram.rename('/src', '/dst');
        assert.equal(await engram.exists('/src'), false);
        assert.equal(decode((await engram.readFile('/dst')).data), 'source');
        assert.equal((await engram.stat('/dst')).ino, ino);
        await engram.writeFile('/other', text('o'));
        await expectCode('EXISTS', engram.rename('/other', '/dst', { noReplace: true }));
        await engram.mkdir('/d1/d2', { parents: true });
        await expectCode('INVALID_ARGUMENT', engram.rename('/d1', '/d1/d2/d3'));
        await engram.mkdir('/full');
        await engram.writeFile('/full/x', text('x'));
        await expectCode('NOT_EMPTY', engram.rename('/d1', '/full'));
        await expectCode('IS_DIRECTORY', engram.rename('/other', '/full'));
        await expectCode('NOT_DIRECTORY', engram.rename('/d1', '/other'));
        await expectCode('NOT_FOUND', engram.rename('/missing', '/m2'));
        await engram.rename('/d1', '/full/d1');
        assert.equal((await engram.stat('/full')).nlink, 3);
        assert.deepEqual(
          (await engram.readdir('/full/d1')).map((entry) => entry.name),
          ['d2'],
        );
        await engram.rename('/other', '/other');
        assert.equal(decode((await engram.readFile('/other')).data), 'o');
      }));

    it('stores symlinks without following them', () =>
      using(make, async (engram) => {
        await engram.writeFile('/target', text('t'));
        await engram.symlink('../outside/é', '/link');
        assert.equal(await engram.readlink('/link'), '../outside/é');
        const stat = await engram.stat('/link');
        assert.equal(stat.type, 'symlink');
        assert.equal(stat.size, Buffer.byteLength('../outside/é'));
        await expectCode('INVALID_ARGUMENT', engram.readlink('/target'));
        await expectCode('EXISTS', engram.symlink('x', '/target'));
        await expectCode('NOT_SUPPORTED', engram.readFile('/link'));
        await expectCode('INVALID_PATH', engram.symlink('', '/l2'));
      }));

    it('shares one inode and version between hard links', () =>
      using(make, async (engram) => {
        await engram.writeFile('/one', text('shared'));
        const version = await engram.link('/one', '/two');
        const [one, two] = [await engram.stat('/one'), await engram.stat('/two')];
        assert.equal(one.ino, two.ino);
        assert.equal(one.nlink, 2);
        assert.equal(one.version, version);
        await engram.write('/two', 0, text('S'));
        assert.equal(decode((await engram.readFile('/one')).data), 'Shared');
        await engram.deleteFile('/one');
        assert.equal((await engram.stat('/two')).nlink, 1);
        assert.equal(decode((await engram.readFile('/two')).data), 'Shared');
        await engram.mkdir('/dir');
        await expectCode('NOT_SUPPORTED', engram.link('/dir', '/dirlink'));
        await expectCode('EXISTS', engram.link('/two', '/two'));
      }));

    it('changes mode, owner and times with a new version each', () =>
      using(make, async (engram) => {
        const v0 = await engram.writeFile('/m', text('x'));
        const v1 = await engram.chmod('/m', 0o4755);
        const v2 = await engram.chown('/m', 1000, 2000);
        const v3 = await engram.utimes('/m', 1_000_000_000_123_456_789n, null);
        assert.ok(v0 < v1 && v1 < v2 && v2 < v3);
        const stat = await engram.stat('/m');
        assert.equal(stat.mode, 0o4755);
        assert.equal(stat.uid, 1000);
        assert.equal(stat.gid, 2000);
        assert.equal(stat.atimeNs, 1_000_000_000_123_456_789n);
        const mtime = stat.mtimeNs;
        await engram.utimes('/m', null, 5n);
        assert.equal((await engram.stat('/m')).mtimeNs, 5n);
        assert.notEqual(mtime, 5n);
        await assert.rejects(engram.chmod('/m', 0o170000), RangeError);
        await expectCode('NOT_FOUND', engram.chmod('/none', 0o644));
      }));

    it('keeps extended attributes with create and replace flags', () =>
      using(make, async (engram) => {
        await engram.writeFile('/x', text('x'));
        await engram.setxattr('/x', 'user.b', Uint8Array.of(2));
        await engram.setxattr('/x', 'user.a', Uint8Array.of(1), { flag: 'create' });
        assert.deepEqual(await engram.listxattr('/x'), ['user.a', 'user.b']);
        assert.deepEqual(await engram.getxattr('/x', 'user.a'), Uint8Array.of(1));
        await expectCode('EXISTS', engram.setxattr('/x', 'user.a', Uint8Array.of(3), { flag: 'create' }));
        await expectCode('NO_ATTRIBUTE', engram.setxattr('/x', 'user.c', Uint8Array.of(3), { flag: 'replace' }));
        await engram.setxattr('/x', 'user.a', Uint8Array.of(4), { flag: 'replace' });
        assert.deepEqual(await engram.getxattr('/x', 'user.a'), Uint8Array.of(4));
        await engram.removexattr('/x', 'user.b');
        await expectCode('NO_ATTRIBUTE', engram.getxattr('/x', 'user.b'), { path: '/x', name: 'user.b' });
        await expectCode('NO_ATTRIBUTE', engram.removexattr('/x', 'user.b'));
        await expectCode('INVALID_ARGUMENT', engram.setxattr('/x', '', Uint8Array.of(1)));
      }));

    it('applies a transaction atomically, with its own writes visible inside', () =>
      using(make, async (engram) => {
        await engram.writeFile('/acct-a', text('100'));
        await engram.writeFile('/acct-b', text('0'));
        await engram.transaction(async (tx) => {
          const a = Number(decode((await tx.readFile('/acct-a')).data));
          await tx.writeFile('/acct-a', text(String(a - 30)));
          await tx.writeFile('/acct-b', text('30'));
          assert.equal(decode((await tx.readFile('/acct-a')).data), '70');
          assert.deepEqual((await tx.readdir('/')).map((entry) => entry.name), ['acct-a', 'acct-b']);
        });
        assert.equal(decode((await engram.readFile('/acct-a')).data), '70');
        assert.equal(decode((await engram.readFile('/acct-b')).data), '30');
        // A failing body applies nothing.
        await assert.rejects(
          engram.transaction(async (tx) => {
            await tx.writeFile('/acct-a', text('0'));
            throw new Error('abort');
          }),
          /abort/,
        );
        assert.equal(decode((await engram.readFile('/acct-a')).data), '70');
      }));

    it('runs beforeCommit after the body, before the commit, on every attempt; its failure applies nothing', () =>
      using(make, async (engram) => {
        await engram.writeFile('/n', text('0'));
        const events: string[] = [];
        let attempt = 0;
        await engram.transaction(
          async (tx) => {
            attempt += 1;
            events.push(`body ${attempt}`);
            await tx.readFile('/n');
            await tx.writeFile('/m', text(`attempt ${attempt}`));
          },
          {
            retries: 1,
            beforeCommit: async () => {
              events.push(`before ${attempt}`);
              // Not committed yet: the body's write is invisible outside the transaction.
              assert.equal(await engram.exists('/m'), false);
              // A commit in between makes the first attempt's read stale: it is retried.
              if (attempt === 1) await engram.writeFile('/n', text('1'));
            },
          },
        );
        assert.deepEqual(events, ['body 1', 'before 1', 'body 2', 'before 2']);
        assert.equal(decode((await engram.readFile('/m')).data), 'attempt 2');
        // Called when nothing was written, too (the ingest's commit order relies on it).
        let called = 0;
        await engram.transaction(async () => undefined, {
          beforeCommit: async () => {
            called += 1;
          },
        });
        assert.equal(called, 1);
        await assert.rejects(
          engram.transaction(async (tx) => tx.writeFile('/never', text('x')), {
            beforeCommit: async () => {
              throw new Error('not your turn');
            },
          }),
          /not your turn/,
        );
        assert.equal(await engram.exists('/never'), false);
      }));

    it('shows a transaction its own write to a hard-linked file through the other name', () =>
      using(make, async (engram) => {
        await engram.writeFile('/first', text('old'));
        await engram.link('/first', '/second');
        await engram.transaction(async (tx) => {
          await tx.writeFile('/first', text('new!'));
          assert.equal(decode((await tx.readFile('/second')).data), 'new!');
          assert.equal((await tx.stat('/second')).size, 4);
          await tx.write('/second', 0, text('N'));
          assert.equal(decode((await tx.readFile('/first')).data), 'New!');
        });
        assert.equal(decode((await engram.readFile('/second')).data), 'New!');
      }));

    it('shows a transaction its own renames, mkdirs and deletes before it commits', () =>
      using(make, async (engram) => {
        await engram.mkdir('/src');
        await engram.writeFile('/src/x', text('moved'));
        await engram.transaction(async (tx) => {
          await tx.rename('/src', '/dst');
          assert.equal(decode((await tx.readFile('/dst/x')).data), 'moved');
          assert.equal(await tx.exists('/src/x'), false);
          await tx.mkdir('/new');
          await tx.writeFile('/new/y', text('y'));
          assert.deepEqual((await tx.readdir('/new')).map((entry) => entry.name), ['y']);
          await tx.deleteFile('/new/y');
          assert.equal(await tx.exists('/new/y'), false);
          // Untouched paths are read live, and other writers' commits stay invisible to nothing.
          assert.equal(await tx.exists('/unrelated'), false);
        });
        assert.equal(decode((await engram.readFile('/dst/x')).data), 'moved');
        assert.deepEqual((await engram.readdir('/new')).map((entry) => entry.name), []);
        assert.equal(await engram.exists('/src'), false);
      }));

    it('refuses a transaction whose reads changed, applying none of its writes', () =>
      using(make, async (engram) => {
        await engram.writeFile('/r', text('1'));
        await expectCode(
          'VERSION_MISMATCH',
          engram.transaction(async (tx) => {
            await tx.readFile('/r');
            await engram.writeFile('/r', text('2'));
            await tx.writeFile('/w', text('never'));
          }),
          { path: '/r' },
        );
        assert.equal(await engram.exists('/w'), false);
        await expectCode(
          'VERSION_MISMATCH',
          engram.transaction(async (tx) => {
            assert.equal(await tx.exists('/appears'), false);
            await engram.writeFile('/appears', text('x'));
            await tx.writeFile('/w', text('never'));
          }),
        );
        assert.equal(await engram.exists('/w'), false);
      }));

    it('counts to exactly N with concurrent retrying transactions', () =>
      using(make, async (engram) => {
        await engram.writeFile('/counter', text('0'));
        const workers = 8;
        const perWorker = 5;
        await Promise.all(
          Array.from({ length: workers }, async () => {
            for (let step = 0; step < perWorker; step += 1) {
              await engram.transaction(
                async (tx) => {
                  const value = Number(decode((await tx.readFile('/counter')).data));
                  await new Promise((resolve) => setImmediate(resolve));
                  await tx.writeFile('/counter', text(String(value + 1)));
                },
                { retries: 200 },
              );
            }
          }),
        );
        assert.equal(decode((await engram.readFile('/counter')).data), String(workers * perWorker));
      }));

    it('reads any path as of a snapshot, restores it as a new commit, and deletes it', () =>
      using(make, async (engram) => {
        await engram.writeFile('/keep', text('v1'));
        await engram.mkdir('/dir');
        await engram.writeFile('/dir/inner', text('inner'));
        await engram.setxattr('/keep', 'user.k', Uint8Array.of(1));
        const snapshot = await engram.createSnapshot('s1');
        assert.equal(snapshot.name, 's1');
        await expectCode('EXISTS', engram.createSnapshot('s1'));
        await expectCode('INVALID_ARGUMENT', engram.createSnapshot('a/b'));
        await engram.writeFile('/keep', text('v2'));
        await engram.removexattr('/keep', 'user.k');
        await engram.deleteFile('/dir/inner');
        await engram.writeFile('/added', text('new'));
        assert.equal(decode((await engram.readFile('/keep', { snapshot: 's1' })).data), 'v1');
        assert.deepEqual((await engram.readdir('/dir', { snapshot: 's1' })).map((entry) => entry.name), ['inner']);
        assert.equal(await engram.exists('/added', { snapshot: 's1' }), false);
        await expectCode('NOT_FOUND', engram.readFile('/keep', { snapshot: 'nope' }), { snapshot: 'nope' });
        assert.deepEqual((await engram.listSnapshots()).map((info) => [info.name, info.commit]), [['s1', snapshot.commit]]);
        const restored = await engram.restoreSnapshot('s1');
        assert.equal(restored, await engram.currentCommit());
        assert.equal(decode((await engram.readFile('/keep')).data), 'v1');
        assert.equal(decode((await engram.readFile('/dir/inner')).data), 'inner');
        assert.deepEqual(await engram.getxattr('/keep', 'user.k'), Uint8Array.of(1));
        assert.equal(await engram.exists('/added'), false);
        assert.ok((await engram.stat('/keep')).version === restored);
        assert.equal((await engram.verify()).ok, true);
        await engram.deleteSnapshot('s1');
        await expectCode('NOT_FOUND', engram.deleteSnapshot('s1'));
        await expectCode('NOT_FOUND', engram.restoreSnapshot('s1'));
        assert.deepEqual(await engram.listSnapshots(), []);
      }));

    it('restores a snapshot across renames, moved files, removed directories and hard links', () =>
      using(make, async (engram) => {
        await engram.mkdir('/a/b', { parents: true });
        await engram.writeFile('/a/b/f', pattern(CHUNK * 3, 700));
        await engram.link('/a/b/f', '/a/hard');
        await engram.mkdir('/gone');
        await engram.writeFile('/gone/g', text('g'));
        await engram.createSnapshot('s');
        const before = await engram.readdir('/a');
        await engram.rename('/a/b', '/moved');
        await engram.rename('/moved/f', '/f2');
        await engram.write('/f2', 5, text('XYZ'));
        await engram.deleteFile('/gone/g');
        await engram.rmdir('/gone');
        await engram.mkdir('/a/b');
        await engram.writeFile('/a/b/new', text('new'));
        await engram.restoreSnapshot('s');
        assert.deepEqual(await engram.readdir('/a'), before);
        assert.deepEqual((await engram.readdir('/')).map((entry) => entry.name), ['a', 'gone']);
        assert.deepEqual((await engram.readFile('/a/b/f')).data, pattern(CHUNK * 3, 700));
        assert.deepEqual((await engram.readdir('/a/b')).map((entry) => entry.name), ['f']);
        assert.equal(decode((await engram.readFile('/gone/g')).data), 'g');
        assert.equal((await engram.stat('/a/hard')).ino, (await engram.stat('/a/b/f')).ino);
        assert.equal((await engram.stat('/a/hard')).nlink, 2);
        assert.equal((await engram.stat('/a')).nlink, 3);
        const report = await engram.verify();
        assert.deepEqual(report.problems, []);
      }));

    it('tells the history of a path with kinds, sizes and content hashes', () =>
      using(make, async (engram) => {
        const v1 = await engram.writeFile('/h', text('one'));
        const v2 = await engram.writeFile('/h', text('three'));
        await engram.write('/h', 0, text('T'));
        await engram.chmod('/h', 0o600);
        await engram.rename('/h', '/h2');
        const entries = await engram.history('/h');
        assert.deepEqual(
          entries.map((entry) => entry.kind),
          ['write', 'write', 'write', 'metadata', 'rename-out'],
        );
        assert.equal(entries[0].commit, v1);
        assert.equal(entries[1].version, v2);
        assert.equal(entries[0].sha256, createHash('sha256').update('one').digest('hex'));
        assert.equal(entries[2].sha256, createHash('sha256').update('Three').digest('hex'));
        assert.equal(entries[2].size, 5);
        assert.equal(entries[4].sha256, null);
        assert.deepEqual((await engram.history('/h2')).map((entry) => entry.kind), ['rename-in']);
        await engram.deleteFile('/h2');
        assert.deepEqual((await engram.history('/h2')).map((entry) => entry.kind), ['rename-in', 'delete']);
        await expectCode('NOT_FOUND', engram.history('/never'));
      }));

    it('compacts to exactly the chunks that live files and snapshots reach', () =>
      using(make, async (engram) => {
        for (let round = 0; round < 5; round += 1) {
          await engram.writeFile('/churn', pattern(CHUNK * 8, 100 + round));
          await engram.write('/churn', CHUNK * 2, pattern(CHUNK, 200 + round));
        }
        await engram.writeFile('/gone', pattern(CHUNK * 4, 300));
        await engram.deleteFile('/gone');
        await engram.writeFile('/pinned', pattern(CHUNK * 3, 400));
        await engram.createSnapshot('pin');
        await engram.writeFile('/pinned', pattern(CHUNK * 3, 401));
        const report = await engram.compact({ retainCommits: 0 });
        assert.ok(report.freedChunks > 0);
        assert.ok(report.freedVersions > 0);
        // Reachable: /churn (8 distinct chunks), /pinned now (3), /pinned in the snapshot (3).
        assert.equal((await engram.stats()).chunks, 8 + 3 + 3);
        assert.deepEqual((await engram.readFile('/pinned', { snapshot: 'pin' })).data, pattern(CHUNK * 3, 400));
        await engram.deleteSnapshot('pin');
        await engram.compact({ retainCommits: 0 });
        assert.equal((await engram.stats()).chunks, 8 + 3);
        assert.equal((await engram.verify()).ok, true);
        // Default retention keeps recent history.
        await engram.writeFile('/churn', text('x'));
        await engram.compact();
        assert.equal((await engram.history('/churn')).some((entry) => entry.size === CHUNK * 8), true);
      }));

    it('verifies a clean engram and reports its stats', () =>
      using(make, async (engram) => {
        await engram.writeFile('/a', pattern(CHUNK * 3, 5));
        await engram.writeFile('/b', pattern(CHUNK * 3, 5));
        await engram.mkdir('/d');
        await engram.symlink('/a', '/d/s');
        const progress: number[] = [];
        const report = await engram.verify({ onProgress: (bytes) => progress.push(bytes) });
        assert.deepEqual(report.problems, []);
        assert.equal(report.ok, true);
        assert.equal(report.checkedChunks, 3);
        assert.equal(report.checkedFiles, 2);
        assert.equal(report.checkedBytes, CHUNK * 3);
        assert.equal(progress.at(-1), CHUNK * 3);
        const stats = await engram.stats();
        assert.equal(stats.files, 2);
        assert.equal(stats.directories, 2);
        assert.equal(stats.symlinks, 1);
        assert.equal(stats.logicalBytes, CHUNK * 6);
        assert.equal(stats.uniqueChunkBytes, CHUNK * 3);
        assert.equal(stats.dedupRatio, 2);
        assert.equal(stats.chunkBytes, CHUNK);
        assert.equal(stats.profile, 'positional');
        assert.ok(stats.rootVector.nonZeroCount > 0);
        assert.ok(stats.vectorByteFraction >= 0 && stats.vectorByteFraction <= 1);
      }));

    it('un-bundles deleted content from the root vector exactly', () =>
      using(make, async (engram) => {
        await engram.writeFile('/a', pattern(CHUNK * 4, 8));
        const withA = (await engram.stats()).rootVector;
        await engram.writeFile('/b', pattern(CHUNK * 4, 9));
        await engram.write('/b', 10, pattern(CHUNK, 10));
        await engram.deleteFile('/b');
        assert.deepEqual((await engram.stats()).rootVector, withA);
        await engram.deleteFile('/a');
        assert.equal((await engram.stats()).rootVector.nonZeroCount, 0);
        assert.equal((await engram.verify()).ok, true);
      }));

    it('streams a file out and in with chunk-sized pieces', () =>
      using(make, async (engram) => {
        const data = pattern(CHUNK * 40 + 7, 11);
        async function* pieces(): AsyncGenerator<Uint8Array> {
          for (let offset = 0; offset < data.length; offset += 999) yield data.subarray(offset, offset + 999);
        }
        const version = await engram.writeFileFrom('/s', pieces());
        assert.equal((await engram.stat('/s')).version, version);
        assert.deepEqual((await engram.readFile('/s')).data, data);
        const out: Uint8Array[] = [];
        for await (const piece of engram.createReadStream('/s')) out.push(piece);
        assert.deepEqual(new Uint8Array(Buffer.concat(out)), data);
        const ranged: Uint8Array[] = [];
        for await (const piece of engram.createReadStream('/s', { start: 100, end: 199 })) ranged.push(piece);
        assert.deepEqual(new Uint8Array(Buffer.concat(ranged)), data.subarray(100, 200));
        await expectCode('EXISTS', engram.writeFileFrom('/s', pieces(), { exclusive: true }));
        assert.equal((await engram.history('/s')).find((entry) => entry.kind === 'write')?.sha256, createHash('sha256').update(data).digest('hex'));
        assert.equal((await engram.verify()).ok, true);
      }));

    it('frees a streamed file\'s chunks once it is deleted and compacted', () =>
      using(make, async (engram) => {
        async function* pieces(): AsyncGenerator<Uint8Array> {
          for (let index = 0; index < 10; index += 1) yield pattern(CHUNK * 3, 500 + index);
        }
        await engram.writeFileFrom('/streamed', pieces());
        assert.equal((await engram.stats()).chunks, 30);
        await engram.deleteFile('/streamed');
        const report = await engram.compact({ retainCommits: 0 });
        assert.equal(report.freedChunks, 30);
        assert.equal((await engram.stats()).chunks, 0);
      }));

    it('re-encodes a write whose deduplicated chunks were compacted away before it committed', () =>
      using(make, async (engram) => {
        const shared = pattern(CHUNK * 64, 600);
        await engram.writeFile('/old', shared);
        // Half the new file repeats /old (dedup hits), half is new (encoded off-thread, so the
        // delete and compaction below get to run between the lookup and the commit).
        const data = new Uint8Array(CHUNK * 2048);
        data.set(shared);
        data.set(pattern(data.length - shared.length, 601), shared.length);
        const writing = engram.writeFile('/new', data);
        await engram.deleteFile('/old');
        await engram.compact({ retainCommits: 0 });
        await writing;
        assert.deepEqual((await engram.readFile('/new')).data, data);
        assert.equal((await engram.verify()).ok, true);
      }));

    it('keeps an unlinked file readable and writable through an open handle until it closes', () =>
      using(make, async (engram) => {
        const handle = await engram.open('/h', { create: true, mode: 0o600 });
        await handle.write(0, text('hello'));
        await handle.write(10, text('X'));
        assert.deepEqual((await handle.read(0, 11)).data, new Uint8Array([...text('hello'), 0, 0, 0, 0, 0, ...text('X')]));
        await engram.deleteFile('/h');
        assert.equal(await engram.exists('/h'), false);
        await handle.write(0, text('J'));
        assert.equal(decode((await handle.read(0, 5)).data), 'Jello');
        assert.equal((await handle.stat()).nlink, 0);
        await handle.truncate(2);
        assert.equal((await handle.stat()).size, 2);
        await handle.close();
        await expectCode('CLOSED', handle.read(0, 1));
        assert.equal((await engram.stats()).files, 0);
        assert.equal((await engram.verify()).ok, true);
        await expectCode('NOT_FOUND', engram.open('/nope'));
        await engram.writeFile('/e', text('abc'));
        await expectCode('EXISTS', engram.open('/e', { create: true, exclusive: true }));
        const truncating = await engram.open('/e', { truncate: true });
        assert.equal((await truncating.stat()).size, 0);
        await truncating.close();
      }));

    it('changes the metadata of an open file through its handle, also after its name was unlinked', () =>
      using(make, async (engram) => {
        const handle = await engram.open('/m', { create: true, mode: 0o644 });
        await handle.write(0, text('meta'));
        const version = await handle.chmod(0o600);
        assert.equal((await engram.stat('/m')).mode, 0o600, 'a live file: the path sees the handle change');
        await engram.deleteFile('/m');
        assert.ok((await handle.chown(4242, 4343)) > version, 'each change makes a new version');
        await handle.utimes(1_000_000_000_000_000_001n, null);
        await handle.utimes(null, 2_000_000_000_000_000_002n);
        await handle.setxattr('user.k', text('v'));
        await expectCode('EXISTS', handle.setxattr('user.k', text('w'), { flag: 'create' }));
        await expectCode('NO_ATTRIBUTE', handle.removexattr('user.none'));
        assert.equal(decode(await handle.getxattr('user.k')), 'v');
        assert.deepEqual(await handle.listxattr(), ['user.k']);
        const stat = await handle.stat();
        assert.deepEqual([stat.mode, stat.uid, stat.gid, stat.atimeNs, stat.mtimeNs, stat.nlink], [0o600, 4242, 4343, 1_000_000_000_000_000_001n, 2_000_000_000_000_000_002n, 0]);
        await handle.removexattr('user.k');
        assert.deepEqual(await handle.listxattr(), []);
        await assert.rejects(handle.chmod(0o7777 + 1), RangeError);
        await handle.close();
        await expectCode('CLOSED', handle.chmod(0o644));
        assert.equal((await engram.stats()).files, 0);
        assert.equal((await engram.verify()).ok, true);
      }));

    it('refuses hostile paths on every entry point', () =>
      using(make, async (engram) => {
        await expectCode('INVALID_PATH', engram.writeFile('/../etc/passwd', text('x')));
        await expectCode('INVALID_PATH', engram.readFile('relative'));
        await expectCode('INVALID_PATH', engram.mkdir('/a\0b'));
        await expectCode('NAME_TOO_LONG', engram.writeFile('/' + 'n'.repeat(300), text('x')));
        await expectCode('INVALID_PATH', engram.rename('/a', '/b/../../c'));
        await expectCode('INVALID_PATH', engram.stat('/a//b'));
      }));

    it('fails with CLOSED after close', async () => {
      const engram = await make();
      await engram.close();
      await expectCode('CLOSED', engram.readFile('/a'));
      await expectCode('CLOSED', engram.writeFile('/a', text('x')));
    });
  });
}

describe('engram files', () => {
  it('keeps content and versions across close and reopen', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK, profile: 'positional' });
    const version = await engram.writeFile('/p', pattern(5000, 12));
    await engram.createSnapshot('s');
    await engram.close();
    const again = await openEngram(file);
    assert.deepEqual(await again.readFile('/p'), { data: pattern(5000, 12), version });
    assert.equal((await again.stats()).chunkBytes, CHUNK);
    assert.equal((await again.listSnapshots()).length, 1);
    await again.close();
  });

  it('shrinks the engram file when compaction frees data', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true });
    await engram.writeFile('/big', pattern(4 << 20, 17));
    await engram.writeFile('/small', text('stays'));
    await engram.deleteFile('/big');
    const before = (await engram.stats()).storedBytes;
    const report = await engram.compact({ retainCommits: 0 });
    assert.equal(report.bytesBefore, before);
    assert.ok(report.bytesAfter < before / 4, `${report.bytesAfter} should be far below ${before}`);
    assert.equal((await engram.stats()).storedBytes, report.bytesAfter);
    assert.equal(decode((await engram.readFile('/small')).data), 'stays');
    await engram.close();
  });

  it('commits and reopens with the opt-in normal durability', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, durability: 'normal' });
    const version = await engram.writeFile('/n', text('normal'));
    await engram.close();
    const again = await openEngram(file, { durability: 'full' });
    assert.deepEqual(await again.readFile('/n'), { data: text('normal'), version });
    await again.close();
    await expectCode('INVALID_ARGUMENT', openEngram(file, { durability: 'off' as 'full' }));
  });

  it('opens read-only: reads work, every mutation is READ_ONLY', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true });
    await engram.writeFile('/a', text('a'));
    await engram.close();
    const readOnly = await openEngram(file, { readOnly: true });
    assert.equal(readOnly.readOnly, true);
    assert.equal(decode((await readOnly.readFile('/a')).data), 'a');
    await expectCode('READ_ONLY', readOnly.writeFile('/b', text('b')));
    await expectCode('READ_ONLY', readOnly.mkdir('/d'));
    await expectCode('READ_ONLY', readOnly.createSnapshot('s'));
    await expectCode('READ_ONLY', readOnly.compact());
    await readOnly.close();
  });

  it('refuses a missing file, a bad profile and a foreign file', async () => {
    await expectCode('NOT_FOUND', openEngram(join(root, 'absent.engram')));
    await expectCode('INVALID_ARGUMENT', openEngram(freshFile(), { create: true, profile: 'bogus' as 'positional' }));
    await expectCode('INVALID_ARGUMENT', openEngram(freshFile(), { create: true, chunkBytes: 3 }));
    const foreign = freshFile();
    const db = new Database(foreign);
    db.exec('CREATE TABLE t(x)');
    db.close();
    await expectCode('NOT_ENGRAM', openEngram(foreign));
  });

  it('cleans inodes left unlinked-but-open by a process that ended', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
    const handle = await engram.open('/orphan', { create: true });
    await handle.write(0, pattern(CHUNK * 2, 13));
    await engram.deleteFile('/orphan');
    // Another instance opening meanwhile must leave the orphan alone: its holder is still open.
    const other = await openEngram(file);
    await other.close();
    assert.deepEqual((await handle.read(0, CHUNK * 2)).data, pattern(CHUNK * 2, 13));
    // Closing the engram without closing the handle is what a crashed process leaves behind.
    await engram.close();
    const again = await openEngram(file);
    assert.equal((await again.verify()).ok, true);
    await again.compact({ retainCommits: 0 });
    assert.equal((await again.stats()).chunks, 0);
    await again.close();
  });

  it('reads a large file checked by its content hash and refuses a damaged chunk with CORRUPT', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: 4096 });
    const data = pattern((3 << 20) + 123, 16);
    await engram.writeFile('/large', data);
    assert.deepEqual((await engram.readFile('/large')).data, data);
    await engram.close();
    const db = new Database(file);
    const packId = db.prepare('SELECT pack_id FROM chunks ORDER BY chunk_id LIMIT 1 OFFSET 400').pluck().get() as number;
    const stored = db.prepare('SELECT data FROM packs WHERE pack_id = ?').pluck().get(packId) as Buffer;
    stored[stored.length >> 1] ^= 0x10;
    db.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(stored, packId);
    db.close();
    const damaged = await openEngram(file);
    await expectCode('CORRUPT', damaged.readFile('/large'));
    assert.deepEqual((await damaged.read('/large', 0, 4096)).data, data.subarray(0, 4096));
    await damaged.close();
  });

  it('refuses a file whose chunk reference points at another sound chunk of the same length', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
    const data = pattern(CHUNK * 6, 19);
    await engram.writeFile('/swapped', data);
    // A second file's chunks pass the decode check against their own hashes when read whole.
    await engram.writeFile('/large', pattern((1 << 20) + CHUNK * 3, 20));
    await engram.write('/large', 5, Uint8Array.of(1, 2, 3));
    await engram.close();
    const db = new Database(file);
    explodeRuns(db);
    const ino = db.prepare("SELECT child_ino FROM dentries WHERE name = 'swapped'").pluck().get() as number;
    const other = db.prepare('SELECT chunk_id FROM file_chunks WHERE ino = ? AND chunk_index = 1').pluck().get(ino) as number;
    db.prepare('UPDATE file_chunks SET chunk_id = ? WHERE ino = ? AND chunk_index = 4').run(other, ino);
    const largeIno = db.prepare("SELECT child_ino FROM dentries WHERE name = 'large'").pluck().get() as number;
    const packId = db.prepare('SELECT c.pack_id FROM file_chunks f JOIN chunks c USING (chunk_id) WHERE f.ino = ? AND f.chunk_index = 100 AND f.to_commit IS NULL').pluck().get(largeIno) as number;
    const stored = db.prepare('SELECT data FROM packs WHERE pack_id = ?').pluck().get(packId) as Buffer;
    stored[stored.length >> 1] ^= 0x10;
    db.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(stored, packId);
    db.close();
    const damaged = await openEngram(file);
    await assert.rejects(damaged.readFile('/swapped'), (error: unknown) => isEmbrError(error, 'CORRUPT') && /recorded SHA-256/.test((error as Error).message));
    // The range covering only sound references still reads.
    assert.deepEqual((await damaged.read('/swapped', 0, CHUNK * 4)).data, data.subarray(0, CHUNK * 4));
    // A file changed by a partial write has no content hash: its chunks are checked one by one.
    await expectCode('CORRUPT', damaged.readFile('/large'));
    await damaged.close();
  });

  it('refuses a file whose chunk reference was lost instead of reading a hole of zeros', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
    await engram.writeFile('/whole', pattern(CHUNK * 4, 18));
    await engram.close();
    const db = new Database(file);
    explodeRuns(db);
    db.prepare('DELETE FROM file_chunks WHERE chunk_index = 2').run();
    db.close();
    const damaged = await openEngram(file);
    await expectCode('CORRUPT', damaged.readFile('/whole'));
    const pieces: Uint8Array[] = [];
    await assert.rejects(
      (async () => {
        for await (const piece of damaged.createReadStream('/whole')) pieces.push(piece);
      })(),
      (error: unknown) => isEmbrError(error, 'CORRUPT'),
    );
    const report = await damaged.verify();
    assert.deepEqual(report.damagedPaths, ['/whole']);
    await damaged.close();
  });

  it('names the damaged path when a stored pack is corrupted', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
    await engram.writeFile('/good', pattern(CHUNK * 2, 14));
    await engram.writeFile('/bad', pattern(CHUNK * 2, 15));
    await engram.createSnapshot('snap');
    await engram.close();
    const db = new Database(file);
    const packId = db.prepare("SELECT c.pack_id FROM chunks c ORDER BY c.chunk_id DESC LIMIT 1").pluck().get() as number;
    const data = db.prepare('SELECT data FROM packs WHERE pack_id = ?').pluck().get(packId) as Buffer;
    data[data.length - 3] ^= 0xff;
    db.prepare('UPDATE packs SET data = ? WHERE pack_id = ?').run(data, packId);
    db.close();
    const damaged = await openEngram(file);
    const report = await damaged.verify();
    assert.equal(report.ok, false);
    assert.deepEqual(report.damagedPaths, ['/bad', 'snap:/bad']);
    await expectCode('CORRUPT', damaged.readFile('/bad'));
    assert.deepEqual((await damaged.readFile('/good')).data, pattern(CHUNK * 2, 14));
    await damaged.close();
  });
});

describe('packs shared by the writes of one transaction', () => {
  it('packs small files written together into shared packs, storing a chunk copied among them once', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: 4096 });
    // Text-like small files (1-6 KiB), every fifth one a copy of an earlier one.
    const contents = new Map<string, Uint8Array>();
    for (let index = 0; index < 60; index += 1) {
      const body = index % 5 === 4 ? (contents.get(`/small/f${index - 3}`) as Uint8Array) : text(`file ${index}: ${'lorem ipsum dolor sit amet '.repeat(40 + index * 3)}`);
      contents.set(`/small/f${index}`, body);
    }
    // One large file keeps its own full packs.
    contents.set('/small/large', pattern(600_000, 31));
    await engram.mkdir('/small');
    await engram.transaction(async (tx) => {
      for (const [path, data] of contents) await tx.writeFile(path, data);
    });
    for (const [path, data] of contents) assert.deepEqual((await engram.readFile(path)).data, data, path);
    assert.equal((await engram.verify()).ok, true);
    await engram.close();
    const db = new Database(file, { readonly: true });
    try {
      const packs = db.prepare('SELECT count(*) FROM packs').pluck().get() as number;
      const packedBytes = db.prepare('SELECT sum(raw_bytes) FROM packs').pluck().get() as number;
      const chunkBytes = db.prepare('SELECT sum(payload_bytes) FROM chunks').pluck().get() as number;
      // Every packed byte belongs to exactly one chunk row: the copies added nothing.
      assert.equal(packedBytes, chunkBytes);
      // The 48 distinct small files share a handful of packs instead of one each (+ the large file's).
      const largePacks = Math.ceil(600_000 / (128 * 1024)) + 1;
      assert.ok(packs <= largePacks + 3, `${packs} packs`);
    } finally {
      db.close();
    }
  });
});

describe('packs of a transaction, compressed once', () => {
  it('compresses the pack of a lone small write and of a partial write in a transaction', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: 4096 });
    await engram.transaction(async (tx) => {
      await tx.writeFile('/one', text('compressible text, '.repeat(300)));
    });
    await engram.transaction(async (tx) => {
      await tx.write('/one', 4096, text('another compressible run, '.repeat(400)));
    });
    assert.equal(decode((await engram.readFile('/one')).data).slice(4096, 4096 + 26), 'another compressible run, ');
    await engram.close();
    const db = new Database(file, { readonly: true });
    try {
      // Format byte 1 = zstd: nothing a transaction deferred was left uncompressed.
      const formats = db.prepare('SELECT substr(data, 1, 1) FROM packs').pluck().all() as Buffer[];
      assert.ok(formats.length >= 2);
      for (const format of formats) assert.equal(format[0], 1);
    } finally {
      db.close();
    }
  });
});

describe('integrity check in verify', () => {
  it('opens an engram with a damaged pack page but verify reports the database check and the file', async () => {
    const file = freshFile();
    const engram = await openEngram(file, { create: true, chunkBytes: CHUNK });
    const data = pattern(3 << 20, 11);
    await engram.writeFile('/big.bin', data);
    await engram.close();
    const { openSync, writeSync, closeSync, readFileSync } = await import('node:fs');
    // A page of pack payload: these bytes do not compress, so zstd stores them as they are and a
    // slice of the page is found in the data (a b-tree page of another table would not be).
    const pageBytes = 4096;
    const image = readFileSync(file);
    const haystack = Buffer.from(data);
    let page = Math.floor(image.length / pageBytes / 2);
    while (haystack.indexOf(image.subarray(page * pageBytes + 64, page * pageBytes + 128)) < 0) page += 1;
    const descriptor = openSync(file, 'r+');
    try {
      writeSync(descriptor, new Uint8Array(pageBytes), 0, pageBytes, page * pageBytes);
    } finally {
      closeSync(descriptor);
    }
    const reopened = await openEngram(file);
    try {
      const report = await reopened.verify();
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((problem) => problem.startsWith('database integrity check')), report.problems.join(' | '));
      assert.deepEqual(report.damagedPaths, ['/big.bin']);
      await expectCode('CORRUPT', reopened.readFile('/big.bin'));
    } finally {
      await reopened.close();
    }
  });
});
