// The per-commit directory cache of operations.ts (CommitCache): path resolution inside a commit
// reads directory rows and entries from it, and a directory touched by many creates in one commit
// is written once. These tests check that a transaction of many ops leaves exactly the tree the
// same ops leave when each commits alone (renames of directories, rmdir + mkdir of one name,
// chmod/utimes between creates, hard links, symlinks), that reads inside a transaction see its
// own directory changes, and that directory versions and times follow the commit.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as fc from 'fast-check';
import { isEmbrError } from '../errors.js';
import type { Engram, Stat, Transaction } from './api.js';
import { openEngram, openEngramOnStore } from './index.js';
import { createMemoryStore } from '../store/memory-store.js';
import { type Maker, using } from '../../test/support/engram-cases.js';

const root = mkdtempSync(join(tmpdir(), 'embrfs-commit-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

const makers: Array<[string, Maker]> = [
  ['sqlite', () => openEngram(join(root, `e-${(counter += 1)}.engram`), { create: true, chunkBytes: 256 })],
  ['memory', async () => openEngramOnStore('memory', createMemoryStore({ profile: 'positional', chunkBytes: 256 }))],
];


async function expectCode(code: string, promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isEmbrError(error), `expected EmbrError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

const join2 = (parent: string, name: string): string => (parent === '/' ? `/${name}` : `${parent}/${name}`);

/**
 * Everything about a tree except times and versions (which differ between one commit and many):
 * per path its type, mode, owner, link count, size, bytes or target, and which paths share an inode.
 */
async function describeTree(engram: Engram): Promise<string[]> {
  const lines: string[] = [];
  const inodeNames = new Map<number, string>();
  const visit = async (path: string): Promise<void> => {
    const stat = await engram.stat(path);
    let line = `${path} ${stat.type} ${stat.mode.toString(8)} ${stat.uid}:${stat.gid} nlink=${stat.nlink} size=${stat.size}`;
    const first = inodeNames.get(stat.ino);
    if (first !== undefined) line += ` same-inode-as=${first}`;
    else inodeNames.set(stat.ino, path);
    if (stat.type === 'file') line += ` data=${JSON.stringify(decode((await engram.readFile(path)).data))}`;
    if (stat.type === 'symlink') line += ` target=${await engram.readlink(path)}`;
    lines.push(line);
    if (stat.type === 'directory') for (const entry of await engram.readdir(path)) await visit(join2(path, entry.name));
  };
  await visit('/');
  return lines;
}

// ---- random op sequences: one transaction against one commit per op ----

type TreeOp =
  | { kind: 'mkdir'; path: string }
  | { kind: 'mkdirp'; path: string }
  | { kind: 'rmdir'; path: string }
  | { kind: 'write'; path: string; data: string }
  | { kind: 'delete'; path: string }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'link'; from: string; to: string }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'utimes'; path: string; mtimeNs: bigint }
  | { kind: 'stat'; path: string }
  | { kind: 'readdir'; path: string };

const pathArbitrary = fc
  .array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 })
  .map((components) => '/' + components.join('/'));

const opArbitrary: fc.Arbitrary<TreeOp> = fc.oneof(
  { weight: 3, arbitrary: pathArbitrary.map((path) => ({ kind: 'mkdir' as const, path })) },
  { weight: 1, arbitrary: pathArbitrary.map((path) => ({ kind: 'mkdirp' as const, path })) },
  { weight: 1, arbitrary: pathArbitrary.map((path) => ({ kind: 'rmdir' as const, path })) },
  { weight: 4, arbitrary: fc.tuple(pathArbitrary, fc.string({ maxLength: 8 })).map(([path, data]) => ({ kind: 'write' as const, path, data })) },
  { weight: 1, arbitrary: pathArbitrary.map((path) => ({ kind: 'delete' as const, path })) },
  { weight: 3, arbitrary: fc.tuple(pathArbitrary, pathArbitrary).map(([from, to]) => ({ kind: 'rename' as const, from, to })) },
  { weight: 1, arbitrary: fc.tuple(pathArbitrary, pathArbitrary).map(([from, to]) => ({ kind: 'link' as const, from, to })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', '../y'), pathArbitrary).map(([target, path]) => ({ kind: 'symlink' as const, target, path })) },
  { weight: 2, arbitrary: fc.tuple(pathArbitrary, fc.constantFrom(0o700, 0o755, 0o500)).map(([path, mode]) => ({ kind: 'chmod' as const, path, mode })) },
  { weight: 1, arbitrary: fc.tuple(pathArbitrary, fc.bigInt({ min: 1n, max: 10n ** 18n })).map(([path, mtimeNs]) => ({ kind: 'utimes' as const, path, mtimeNs })) },
  { weight: 1, arbitrary: pathArbitrary.map((path) => ({ kind: 'stat' as const, path })) },
  { weight: 1, arbitrary: pathArbitrary.map((path) => ({ kind: 'readdir' as const, path })) },
);

/** Applies one op; a read answers a short description of what it saw. */
async function apply(target: Engram | Transaction, op: TreeOp): Promise<string | undefined> {
  switch (op.kind) {
    case 'mkdir':
      await target.mkdir(op.path);
      return undefined;
    case 'mkdirp':
      await target.mkdir(op.path, { parents: true });
      return undefined;
    case 'rmdir':
      await target.rmdir(op.path);
      return undefined;
    case 'write':
      await target.writeFile(op.path, text(op.data));
      return undefined;
    case 'delete':
      await target.deleteFile(op.path);
      return undefined;
    case 'rename':
      await target.rename(op.from, op.to);
      return undefined;
    case 'link':
      await target.link(op.from, op.to);
      return undefined;
    case 'symlink':
      await target.symlink(op.target, op.path);
      return undefined;
    case 'chmod':
      await target.chmod(op.path, op.mode);
      return undefined;
    case 'utimes':
      await target.utimes(op.path, null, op.mtimeNs);
      return undefined;
    case 'stat': {
      const stat = await target.stat(op.path);
      return `${stat.type} ${stat.mode.toString(8)} nlink=${stat.nlink} size=${stat.size}`;
    }
    case 'readdir':
      return (await target.readdir(op.path)).map((entry) => `${entry.name}:${entry.type}`).join(',');
  }
}

function isWrite(op: TreeOp): boolean {
  return op.kind !== 'stat' && op.kind !== 'readdir';
}

/**
 * Runs `ops` one commit each on `alone` (ops that fail are dropped: a transaction's failing op
 * fails the whole transaction), then the surviving ones in one transaction on `together`, and
 * compares the trees, the reads made between the writes, and the transaction's directory times.
 */
async function compareOneCommitWithMany(alone: Engram, together: Engram, ops: TreeOp[]): Promise<void> {
  const kept: Array<{ op: TreeOp; seen: string | undefined }> = [];
  for (const op of ops) {
    try {
      kept.push({ op, seen: await apply(alone, op) });
    } catch (error) {
      if (!isEmbrError(error)) throw error;
    }
  }
  const before = await together.currentCommit();
  await together.transaction(async (tx) => {
    for (const { op, seen } of kept) assert.equal(await apply(tx, op), seen, `${JSON.stringify(op, (_, value) => (typeof value === 'bigint' ? `${value}n` : value))} inside the transaction`);
  });
  assert.deepEqual(await describeTree(together), await describeTree(alone));
  const verified = await together.verify();
  assert.equal(verified.ok, true, verified.problems.join('; '));
  if (!kept.some(({ op }) => isWrite(op))) return;
  const commit = await together.currentCommit();
  assert.equal(commit, before + 1);
  // Every directory the transaction changed carries its commit as version, and its ctime is the commit's time.
  const changed: Stat[] = [];
  const visit = async (path: string): Promise<void> => {
    const stat = await together.stat(path);
    if (stat.type !== 'directory') return;
    if (stat.version === commit) changed.push(stat);
    assert.ok(stat.version <= commit);
    for (const entry of await together.readdir(path)) await visit(join2(path, entry.name));
  };
  await visit('/');
  assert.equal(new Set(changed.map((stat) => stat.ctimeNs)).size <= 1, true, 'one commit, one ctime');
}

for (const [storeName, make] of makers) {
  describe(`the commit's directory cache on the ${storeName} store`, () => {
    it('a transaction of random ops leaves the tree that one commit per op leaves', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 40 }), async (ops) => {
          const alone = await make();
          const together = await make();
          try {
            await compareOneCommitWithMany(alone, together, ops);
          } finally {
            await alone.close();
            await together.close();
          }
        }),
        { numRuns: storeName === 'memory' ? 150 : 40 },
      );
    });

    it('a directory renamed in the transaction: creates under the new path land in it, the old path is gone', () =>
      using(make, async (engram) => {
        await engram.mkdir('/old/sub', { parents: true });
        await engram.transaction(async (tx) => {
          await tx.writeFile('/old/sub/before.txt', text('before'));
          await tx.rename('/old', '/new');
          await tx.writeFile('/new/sub/after.txt', text('after'));
          await tx.mkdir('/new/sub/deeper');
          await tx.writeFile('/new/sub/deeper/x', text('x'));
        });
        assert.deepEqual((await engram.readdir('/new/sub')).map((entry) => entry.name), ['after.txt', 'before.txt', 'deeper']);
        assert.equal(await engram.exists('/old'), false);
        assert.equal(decode((await engram.readFile('/new/sub/deeper/x')).data), 'x');
        // A create under the old path in a transaction after the rename fails, and takes the transaction with it.
        await expectCode(
          'NOT_FOUND',
          engram.transaction(async (tx) => {
            await tx.rename('/new', '/old2');
            await tx.writeFile('/new/sub/lost.txt', text('lost'));
          }),
        );
        assert.equal(await engram.exists('/new/sub/after.txt'), true);
        assert.equal(await engram.exists('/old2'), false);
        assert.equal((await engram.verify()).ok, true);
      }));

    it('a directory renamed over an empty one, then written through both names', () =>
      using(make, async (engram) => {
        await engram.mkdir('/a/inner', { parents: true });
        await engram.mkdir('/b');
        const replaced = (await engram.stat('/b')).ino;
        await engram.transaction(async (tx) => {
          await tx.writeFile('/b/gone.txt', text('gone'));
          await tx.deleteFile('/b/gone.txt');
          await tx.rename('/a', '/b');
          await tx.writeFile('/b/inner/f', text('f'));
          await tx.mkdir('/a');
          await tx.writeFile('/a/g', text('g'));
        });
        assert.notEqual((await engram.stat('/b')).ino, replaced);
        assert.deepEqual((await engram.readdir('/b')).map((entry) => entry.name), ['inner']);
        assert.deepEqual((await engram.readdir('/a')).map((entry) => entry.name), ['g']);
        assert.equal((await engram.stat('/')).nlink, 4);
        assert.equal((await engram.verify()).ok, true);
      }));

    it('rmdir and mkdir of the same name in one transaction: files go into the new directory', () =>
      using(make, async (engram) => {
        await engram.mkdir('/p');
        const first = (await engram.stat('/p')).ino;
        await engram.transaction(async (tx) => {
          await tx.writeFile('/p/a', text('a'));
          await tx.deleteFile('/p/a');
          await tx.rmdir('/p');
          await tx.mkdir('/p', { mode: 0o700 });
          await tx.writeFile('/p/b', text('b'));
          assert.deepEqual((await tx.readdir('/p')).map((entry) => entry.name), ['b']);
        });
        const stat = await engram.stat('/p');
        assert.notEqual(stat.ino, first);
        assert.equal(stat.mode, 0o700);
        assert.equal(stat.nlink, 2);
        assert.deepEqual((await engram.readdir('/p')).map((entry) => entry.name), ['b']);
        assert.equal((await engram.stat('/')).nlink, 3);
        assert.equal((await engram.verify()).ok, true);
      }));

    it('chmod, chown and utimes of a directory between creates under it are kept, and the creates still move its times', () =>
      using(make, async (engram) => {
        await engram.mkdir('/d');
        await engram.transaction(async (tx) => {
          await tx.writeFile('/d/one', text('1'));
          await tx.chmod('/d', 0o711);
          await tx.chown('/d', 7, 8);
          await tx.writeFile('/d/two', text('2'));
        });
        const afterChmod = await engram.stat('/d');
        assert.equal(afterChmod.mode, 0o711);
        assert.equal(afterChmod.uid, 7);
        assert.equal(afterChmod.gid, 8);
        assert.equal(afterChmod.mtimeNs, afterChmod.ctimeNs);
        assert.equal(afterChmod.version, await engram.currentCommit());

        // A create after utimes moves the mtime to the commit's time again ...
        await engram.transaction(async (tx) => {
          await tx.utimes('/d', null, 5n);
          await tx.writeFile('/d/three', text('3'));
        });
        const created = await engram.stat('/d');
        assert.equal(created.mtimeNs, created.ctimeNs);
        assert.notEqual(created.mtimeNs, 5n);
        // ... and utimes after the creates of one commit is what stays (the touches are not written late).
        await engram.transaction(async (tx) => {
          await tx.writeFile('/d/four', text('4'));
          await tx.writeFile('/d/five', text('5'));
          await tx.utimes('/d', null, 5n);
          assert.equal((await tx.stat('/d')).mtimeNs, 5n);
        });
        const set = await engram.stat('/d');
        assert.equal(set.mtimeNs, 5n);
        assert.equal(set.version, await engram.currentCommit());
        assert.equal(set.nlink, 2);
        assert.equal((await engram.readdir('/d')).length, 5);
      }));

    it('a subdirectory made and filled in one transaction counts in its parent once, and reads see it', () =>
      using(make, async (engram) => {
        const start = await engram.currentCommit();
        await engram.transaction(async (tx) => {
          await tx.mkdir('/top');
          for (let index = 0; index < 20; index += 1) {
            await tx.mkdir(`/top/s${index}`);
            await tx.writeFile(`/top/s${index}/f`, text(String(index)));
            await tx.writeFile(`/top/f${index}`, text(String(index)));
          }
          const top = await tx.stat('/top');
          assert.equal(top.nlink, 22);
          await tx.deleteFile('/top/s0/f');
          await tx.rmdir('/top/s0');
        });
        const top = await engram.stat('/top');
        assert.equal(top.nlink, 21);
        assert.equal(top.version, start + 1);
        assert.equal(top.mtimeNs, top.ctimeNs);
        assert.equal((await engram.readdir('/top')).length, 39);
        assert.equal((await engram.stat('/')).nlink, 3);
        assert.equal((await engram.verify()).ok, true);
      }));
  });
}

describe('the store rows a transaction of creates writes for their directory', () => {
  it('one row per directory per commit, holding the last touch', async () => {
    const store = createMemoryStore({ profile: 'positional', chunkBytes: 256 });
    const engram = openEngramOnStore('memory', store);
    try {
      await engram.mkdir('/d');
      const ino = (await engram.stat('/d')).ino;
      const before = store.read((reader) => reader.inodeVersions(ino)).length;
      await engram.transaction(async (tx) => {
        for (let index = 0; index < 50; index += 1) await tx.writeFile(`/d/f${index}`, text(String(index)));
      });
      const versions = store.read((reader) => reader.inodeVersions(ino));
      assert.equal(versions.length, before + 1);
      const last = versions[versions.length - 1];
      assert.equal(last.fromCommit, await engram.currentCommit());
      assert.equal(last.toCommit, null);
      assert.equal(last.change, 'metadata');
      assert.equal(last.mtimeNs, last.ctimeNs);
      assert.equal(last.nlink, 2);
    } finally {
      await engram.close();
    }
  });
});
