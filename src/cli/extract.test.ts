import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DirectoryEntry, Engram, EngramStats, ReadOptions, Stat } from '../fs/api.js';
import { EmbrError } from '../errors.js';
import { extract, unsafeNameReason } from './extract.js';

interface FakeNode {
  stat: Stat;
  /** Directory listing exactly as a crafted engram would return it (names may be hostile or repeated). */
  entries?: DirectoryEntry[];
  data?: Uint8Array;
  target?: string;
}

const timeNs = 1_700_000_000_123_456_789n;

function fakeStat(ino: number, type: Stat['type'], size: number, mode: number, nlink = 1): Stat {
  return { ino, type, mode, uid: 0, gid: 0, size, nlink, version: 1, atimeNs: timeNs, mtimeNs: timeNs, ctimeNs: timeNs, birthtimeNs: timeNs };
}

/**
 * A crafted engram: the library refuses hostile names on the way in, so the only way to hand
 * extract a hostile tree without depending on the store schema is an object with the read API.
 */
function fakeEngram(nodes: Map<string, FakeNode>): Engram {
  const find = (path: string): FakeNode => {
    const node = nodes.get(path);
    if (node === undefined) throw new EmbrError('NOT_FOUND', `no ${path}`, { path });
    return node;
  };
  const partial = {
    file: 'crafted.engram',
    readOnly: true,
    async stat(path: string, _options?: ReadOptions) {
      return find(path).stat;
    },
    async readdir(path: string, _options?: ReadOptions) {
      return find(path).entries ?? [];
    },
    async readlink(path: string, _options?: ReadOptions) {
      return find(path).target ?? '';
    },
    async readFile(path: string, _options?: ReadOptions) {
      return { data: find(path).data ?? new Uint8Array(), version: 1 };
    },
    async *createReadStream(path: string, _options?: ReadOptions) {
      const data = find(path).data ?? new Uint8Array();
      for (let offset = 0; offset < data.length; offset += 4096) yield data.subarray(offset, offset + 4096);
    },
    async stats(): Promise<Partial<EngramStats>> {
      return { files: 2, logicalBytes: 10 };
    },
    async close() {},
  };
  // Only the read methods extract uses exist; anything else would throw a TypeError at once.
  return partial as unknown as Engram;
}

test('unsafeNameReason refuses dot names, slashes, NUL, empty and over-long names when checking engram names', () => {
  assert.equal(unsafeNameReason('a.txt'), undefined);
  assert.equal(unsafeNameReason('x'.repeat(255)), undefined);
  for (const name of ['', '.', '..', 'a/b', '../x', '/etc', 'a\0b', 'x'.repeat(256), 'é'.repeat(128)]) {
    assert.notEqual(unsafeNameReason(name), undefined, `should refuse ${JSON.stringify(name)}`);
  }
});

test('extract writes nothing outside its directory when the engram holds hostile names and links', async () => {
  const base = await mkdtemp(join(tmpdir(), 'embrfs-extract-hostile-'));
  try {
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep.txt'), 'untouched');
    const outDir = join(base, 'out');
    const okData = new TextEncoder().encode('fine content\n');
    const nodes = new Map<string, FakeNode>();
    nodes.set('/', {
      stat: fakeStat(1, 'directory', 0, 0o755),
      entries: [
        { name: '..', type: 'file', ino: 2 },
        { name: '../escape.txt', type: 'file', ino: 2 },
        { name: '/abs.txt', type: 'file', ino: 2 },
        { name: '.', type: 'directory', ino: 1 },
        { name: '', type: 'file', ino: 2 },
        { name: 'a\0b', type: 'file', ino: 2 },
        { name: 'ok.txt', type: 'file', ino: 2 },
        // A link pointing out, then a file and a directory with the same name as links: the
        // later entries must never be written through the link.
        { name: 'out-link', type: 'symlink', ino: 3 },
        { name: 'dup', type: 'symlink', ino: 4 },
        { name: 'dup', type: 'directory', ino: 5 },
        { name: 'dir', type: 'directory', ino: 6 },
        { name: 'dir', type: 'symlink', ino: 4 },
      ],
    });
    for (const hostile of ['/..', '/../escape.txt', '//abs.txt', '/.', '/', '/a\0b']) {
      if (hostile === '/') continue;
      nodes.set(hostile, { stat: fakeStat(2, 'file', okData.length, 0o644), data: okData });
    }
    nodes.set('/ok.txt', { stat: fakeStat(2, 'file', okData.length, 0o640), data: okData });
    nodes.set('/out-link', { stat: fakeStat(3, 'symlink', outside.length, 0o777), target: outside });
    nodes.set('/dup', { stat: fakeStat(4, 'symlink', outside.length, 0o777), target: outside });
    nodes.set('/dir', { stat: fakeStat(6, 'directory', 0, 0o755), entries: [{ name: 'keep.txt', type: 'file', ino: 7 }] });
    nodes.set('/dir/keep.txt', { stat: fakeStat(7, 'file', 4, 0o644), data: new TextEncoder().encode('evil') });

    const summary = await extract({ engramFile: 'crafted.engram', outDir, quiet: true, engram: fakeEngram(nodes) });

    assert.deepEqual(await readdir(base).then((names) => names.sort()), ['out', 'outside']);
    assert.deepEqual(await readdir(outside), ['keep.txt']);
    assert.equal(await readFile(join(outside, 'keep.txt'), 'utf8'), 'untouched');
    assert.deepEqual((await readdir(outDir)).sort(), ['dir', 'dup', 'ok.txt', 'out-link']);
    assert.deepEqual(await readFile(join(outDir, 'ok.txt')), Buffer.from(okData));
    assert.equal((await lstat(join(outDir, 'ok.txt'))).mode & 0o7777, 0o640);
    assert.equal((await lstat(join(outDir, 'ok.txt'), { bigint: true })).mtimeNs, timeNs);
    assert.ok((await lstat(join(outDir, 'out-link'))).isSymbolicLink());
    assert.equal(await readlink(join(outDir, 'out-link')), outside);
    // The first 'dup' (a symlink) wins; the directory of the same name is refused.
    assert.ok((await lstat(join(outDir, 'dup'))).isSymbolicLink());
    assert.ok((await lstat(join(outDir, 'dir'))).isDirectory());
    assert.equal(await readFile(join(outDir, 'dir', 'keep.txt'), 'utf8'), 'evil');
    const refused = summary.refusedEntries.join('\n');
    for (const reason of ["'..' as a name", 'slash in a name', "'.' as a name", 'empty name', 'NUL in a name', 'duplicate name']) {
      assert.ok(refused.includes(reason), `refusedEntries should mention ${reason}: ${refused}`);
    }
    assert.equal(summary.refusedEntries.length, 8);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('extract refuses a non-empty output directory before writing anything', async () => {
  const base = await mkdtemp(join(tmpdir(), 'embrfs-extract-nonempty-'));
  try {
    await writeFile(join(base, 'existing'), 'x');
    const nodes = new Map<string, FakeNode>([['/', { stat: fakeStat(1, 'directory', 0, 0o755), entries: [] }]]);
    await assert.rejects(extract({ engramFile: 'crafted.engram', outDir: base, quiet: true, engram: fakeEngram(nodes) }), /not empty/);
    assert.deepEqual(await readdir(base), ['existing']);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
