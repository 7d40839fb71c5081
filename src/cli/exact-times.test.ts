import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needsExactTime, secondsOf, setExactTimes } from './exact-times.js';

test('needsExactTime is true only when nanoseconds are not a multiple of 1000', () => {
  assert.equal(needsExactTime(1_700_000_000_000_000_000n), false);
  assert.equal(needsExactTime(1_700_000_000_123_456_000n), false);
  assert.equal(needsExactTime(1_700_000_000_123_456_789n), true);
});

test('secondsOf keeps microseconds exactly when converting nanoseconds to a double', () => {
  assert.equal(Math.floor(secondsOf(1_700_000_000_000_000_000n)), 1_700_000_000);
  assert.equal(Math.floor((secondsOf(1_700_000_000_123_456_000n) % 1) * 1e6), 123_456);
  assert.equal(Math.floor(secondsOf(0n) * 1e6), 0);
});

test('lutimes with secondsOf sets every microsecond-aligned time exactly (libuv truncates to microseconds)', async () => {
  const { lutimes } = await import('node:fs/promises');
  const directory = await mkdtemp(join(tmpdir(), 'embrfs-seconds-of-'));
  try {
    const file = join(directory, 'f');
    await writeFile(file, 'x');
    // Seeded microsecond times around 2026 and 2100: without the nudge about half came back early.
    let state = 12345;
    const wrong: string[] = [];
    for (let trial = 0; trial < 500; trial += 1) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      const base = trial % 2 === 0 ? 1_795_497_993n : 4_102_444_800n;
      const timeNs = base * 1_000_000_000n + BigInt(state % 1_000_000) * 1000n;
      await lutimes(file, secondsOf(timeNs), secondsOf(timeNs));
      const actual = (await lstat(file, { bigint: true })).mtimeNs;
      if (actual !== timeNs) wrong.push(`${timeNs} -> ${actual}`);
    }
    assert.deepEqual(wrong.slice(0, 5), []);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test('setExactTimes sets nanosecond mtimes and does not follow symlinks when given files and links', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'embrfs-exact-times-'));
  try {
    const file = join(directory, 'a file');
    const target = join(directory, 'target');
    const link = join(directory, 'link');
    await writeFile(file, 'x');
    await writeFile(target, 'y');
    await symlink(target, link);
    const targetBefore = (await lstat(target, { bigint: true })).mtimeNs;
    const fileTimeNs = 1_700_000_000_123_456_789n;
    const linkTimeNs = 1_600_000_000_987_654_321n;
    assert.equal(
      await setExactTimes([
        { path: file, atimeNs: fileTimeNs, mtimeNs: fileTimeNs },
        { path: link, atimeNs: linkTimeNs, mtimeNs: linkTimeNs },
      ]),
      true,
    );
    assert.equal((await lstat(file, { bigint: true })).mtimeNs, fileTimeNs);
    assert.equal((await lstat(link, { bigint: true })).mtimeNs, linkTimeNs);
    assert.equal((await lstat(target, { bigint: true })).mtimeNs, targetBefore);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
