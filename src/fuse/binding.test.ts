import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeUtimens, nativeMtimeOffsetBytes, toStatArray, utimeSentinelMs } from './binding.js';

const require = createRequire(import.meta.url);
const packageDirectory = dirname(require.resolve('fuse-native/package.json'));

test('the pinned fuse-native still has the internals the workarounds patch', () => {
  const manifest = JSON.parse(readFileSync(join(packageDirectory, 'package.json'), 'utf8')) as { version: string };
  assert.equal(manifest.version, '2.2.6');
  const source = readFileSync(join(packageDirectory, 'fuse-native.c'), 'utf8');
  // The utimens defect we compensate for: atime passed twice, mtime left in the request record.
  assert.match(source, /FUSE_UINT64_TO_INTS_ARGV\(l->atime, 3\)\s*FUSE_UINT64_TO_INTS_ARGV\(l->atime, 5\)/);
  assert.match(source, /l->mtime = timespec_to_uint64\(&tv\[1\]\);/);
  // The record layout our mtime offset is computed from.
  const layout = /napi_ref self;[\s\S]*?uint32_t op;[\s\S]*?void \*op_fn;[\s\S]*?const char \*path;\s*const char \*dest;\s*char \*linkname;\s*struct fuse_file_info \*info;\s*const void \*buf;\s*off_t offset;\s*size_t len;\s*mode_t mode;\s*dev_t dev;\s*uid_t uid;\s*gid_t gid;\s*size_t atime;\s*size_t mtime;/;
  assert.match(source, layout);
  assert.equal(nativeMtimeOffsetBytes, 112);
  const index = readFileSync(join(packageDirectory, 'index.js'), 'utf8');
  for (const name of ['_fuseOptions', '_op_utimens', '_op_getxattr', '_op_listxattr', '_op_fgetattr', '_makeHandlerArray']) {
    assert.ok(index.includes(name), `${name} exists in fuse-native/index.js`);
  }
});

test('decodeUtimens: two real times are set, both sentinels are now, one sentinel is omitted', () => {
  assert.deepEqual(decodeUtimens(1000, 2000), { atime: { kind: 'set', timeMs: 1000 }, mtime: { kind: 'set', timeMs: 2000 } });
  assert.deepEqual(decodeUtimens(utimeSentinelMs, utimeSentinelMs), { atime: { kind: 'now' }, mtime: { kind: 'now' } });
  assert.deepEqual(decodeUtimens(utimeSentinelMs, 5), { atime: { kind: 'omit' }, mtime: { kind: 'set', timeMs: 5 } });
  assert.deepEqual(decodeUtimens(7, utimeSentinelMs), { atime: { kind: 'set', timeMs: 7 }, mtime: { kind: 'omit' } });
});

test('toStatArray lays a stat out as fuse-native.c populate_stat reads it', () => {
  const words = toStatArray({
    ino: 77,
    mode: 0o100644,
    uid: 1,
    gid: 2,
    size: 2 ** 33 + 5,
    nlink: 3,
    blksize: 4096,
    blocks: 16,
    atime: 1_700_000_000_123,
    mtime: 1_600_000_000_456,
    ctime: 1_500_000_000_789,
  });
  assert.equal(words.length, 18);
  const double = (index: number): number => words[index] + words[index + 1] * 2 ** 32;
  assert.deepEqual([words[0], words[1], words[2], double(3), words[6], words[7], words[9], double(10)], [0o100644, 1, 2, 2 ** 33 + 5, 3, 77, 4096, 16]);
  assert.deepEqual([double(12), double(14), double(16)], [1_700_000_000_123, 1_600_000_000_456, 1_500_000_000_789]);
  assert.ok(toStatArray(null).every((word) => word === 0));
});
