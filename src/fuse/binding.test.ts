import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeTimespec, decodeUtimens, fusePatchLevel, nativeMtimeOffsetBytes, toStatArray, utimeSentinelMs } from './binding.js';

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
  for (const name of ['_fuseOptions', '_op_utimens', '_op_getxattr', '_op_listxattr', '_op_fgetattr', '_op_getattr', '_op_readdir', '_op_create', '_op_mkdir', '_op_mknod', '_op_symlink', '_makeHandlerArray']) {
    assert.ok(index.includes(name), `${name} exists in fuse-native/index.js`);
  }
});

test('the patched C side is in use when the install built it (EMBRFS_EXPECT_NATIVE=1 in CI requires it)', async () => {
  const { patchFuseNative, PATCH_LEVEL } = (await import(new URL('../../../native/fuse/patch.mjs', import.meta.url).href)) as {
    patchFuseNative(source: string): string;
    PATCH_LEVEL: number;
  };
  const source = readFileSync(join(packageDirectory, 'fuse-native.c'), 'utf8');
  const patched = patchFuseNative(source);
  assert.match(patched, /ops\.flag_utime_omit_ok = 1;/);
  assert.match(patched, /FUSE_METHOD\(create, 4, 1,/);
  assert.match(patched, /napi_create_uint32\(env, l->mtime_nsec, &\(argv\[6\]\)\);/);
  // A source that moved under us is refused, never half patched.
  assert.throws(() => patchFuseNative(source.replace('FUSE_METHOD_VOID(mkdir, 2, 0,', 'FUSE_METHOD_VOID(mkdir, 3, 0,')), /mkdir/);
  if (process.env.EMBRFS_EXPECT_NATIVE === '1') assert.equal(fusePatchLevel, PATCH_LEVEL, 'npm ci built native/fuse (see its log)');
  else assert.ok(fusePatchLevel === 0 || fusePatchLevel === PATCH_LEVEL);
});

test('decodeUtimens: two real times are set, both sentinels are now, one sentinel is omitted', () => {
  assert.deepEqual(decodeUtimens(1000, 2000), { atime: { kind: 'set', timeNs: 1_000_000_000n }, mtime: { kind: 'set', timeNs: 2_000_000_000n } });
  assert.deepEqual(decodeUtimens(utimeSentinelMs, utimeSentinelMs), { atime: { kind: 'now' }, mtime: { kind: 'now' } });
  assert.deepEqual(decodeUtimens(utimeSentinelMs, 5), { atime: { kind: 'omit' }, mtime: { kind: 'set', timeNs: 5_000_000n } });
  assert.deepEqual(decodeUtimens(7, utimeSentinelMs), { atime: { kind: 'set', timeNs: 7_000_000n }, mtime: { kind: 'omit' } });
});

test('decodeTimespec tells UTIME_NOW, UTIME_OMIT and a time with nanoseconds apart (patched binding)', () => {
  assert.deepEqual(decodeTimespec(0, (1 << 30) - 1), { kind: 'now' });
  assert.deepEqual(decodeTimespec(0, (1 << 30) - 2), { kind: 'omit' });
  assert.deepEqual(decodeTimespec(1_700_000_000, 123_456_789), { kind: 'set', timeNs: 1_700_000_000_123_456_789n });
  assert.deepEqual(decodeTimespec(0, 0), { kind: 'set', timeNs: 0n });
});

const sampleStat = {
  ino: 77,
  mode: 0o100644,
  uid: 1,
  gid: 2,
  size: 2 ** 33 + 5,
  nlink: 3,
  blksize: 4096,
  blocks: 16,
  atimeNs: 1_700_000_000_123_456_789n,
  mtimeNs: 1_600_000_000_456_000_001n,
  ctimeNs: 1_500_000_000_789_999_999n,
};

test('toStatArray lays a stat out as the patched populate_stat reads it: times as seconds and nanoseconds', () => {
  const words = toStatArray(sampleStat, 1);
  assert.equal(words.length, 18);
  const double = (index: number): number => words[index] + words[index + 1] * 2 ** 32;
  assert.deepEqual([words[0], words[1], words[2], double(3), words[6], words[7], words[9], double(10)], [0o100644, 1, 2, 2 ** 33 + 5, 3, 77, 4096, 16]);
  assert.deepEqual([...words.subarray(12, 18)], [1_700_000_000, 123_456_789, 1_600_000_000, 456_000_001, 1_500_000_000, 789_999_999]);
  assert.deepEqual([...toStatArray({ ...sampleStat, atimeNs: -5n }, 1).subarray(12, 14)], [0, 0]);
});

test('toStatArray lays a stat out as the stock populate_stat reads it: times as 64-bit milliseconds', () => {
  const words = toStatArray(sampleStat, 0);
  assert.equal(words.length, 18);
  const double = (index: number): number => words[index] + words[index + 1] * 2 ** 32;
  assert.deepEqual([words[0], words[1], words[2], double(3), words[6], words[7], words[9], double(10)], [0o100644, 1, 2, 2 ** 33 + 5, 3, 77, 4096, 16]);
  assert.deepEqual([double(12), double(14), double(16)], [1_700_000_000_123, 1_600_000_000_456, 1_500_000_000_789]);
  assert.ok(toStatArray(null).every((word) => word === 0));
});
