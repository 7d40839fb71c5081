/**
 * Mount lifecycle: SIGTERM flushes pending writes, external `fusermount -u` ends the server,
 * a stale mount left by SIGKILL is cleaned by the next mount, read-only and snapshot mounts
 * refuse writes, other writers' commits show up, inode numbers survive a remount, a full disk
 * answers ENOSPC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fuseUnavailableReason, startMount, teardown, type TestMount } from './harness.js';
import { isMounted } from '../../src/fuse/index.js';

async function openLibrary(file: string, readOnly = false) {
  const { openEngram } = await import('../../src/fs/index.js');
  return openEngram(file, { readOnly });
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('SIGTERM writes pending data, unmounts and exits 0', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  t.after(() => teardown(mount));
  mount = await startMount();
  const descriptor = fs.openSync(join(mount.mountpoint, 'pending.bin'), 'w');
  const bytes = Buffer.alloc(300_000, 7);
  fs.writeSync(descriptor, bytes);
  // No close and no fsync: the bytes sit in the adapter's write run.
  assert.equal(await mount.stop(), 0);
  try {
    fs.closeSync(descriptor);
  } catch {
    // The mount is gone; closing the orphaned descriptor may fail, which is fine.
  }
  assert.equal(isMounted(mount.mountpoint), false);
  const engram = await openLibrary(mount.engramFile, true);
  try {
    const { data } = await engram.readFile('/pending.bin');
    assert.ok(Buffer.from(data).equals(bytes));
  } finally {
    await engram.close();
  }
});

test('an external fusermount -u ends the mount process cleanly', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  t.after(() => teardown(mount));
  mount = await startMount();
  fs.writeFileSync(join(mount.mountpoint, 'a'), 'a');
  execFileSync('fusermount', ['-u', mount.mountpoint]);
  const child = mount.child;
  await waitFor(() => child.exitCode !== null, 10_000, 'the mount process to exit');
  assert.equal(child.exitCode, 0);
});

test('a stale mount left by SIGKILL is cleaned up by the next mount', { skip: fuseUnavailableReason() }, async (t) => {
  let first: TestMount | undefined;
  let second: TestMount | undefined;
  t.after(async () => {
    await teardown(second);
    await teardown(first);
  });
  first = await startMount();
  fs.writeFileSync(join(first.mountpoint, 'kept'), 'kept');
  first.child.kill('SIGKILL');
  await waitFor(() => first?.child.exitCode !== null || first?.child.signalCode !== null, 10_000, 'the kill');
  assert.throws(() => fs.statSync(first?.mountpoint ?? ''), (error: NodeJS.ErrnoException) => error.code === 'ENOTCONN');
  second = await startMount({ directory: first.directory });
  assert.equal(fs.readFileSync(join(second.mountpoint, 'kept'), 'utf8'), 'kept');
});

test('inode numbers are stable across a remount and other writers show up within the attribute timeout', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  let remount: TestMount | undefined;
  t.after(async () => {
    await teardown(remount);
    await teardown(mount);
  });
  mount = await startMount();
  fs.mkdirSync(join(mount.mountpoint, 'd'));
  fs.writeFileSync(join(mount.mountpoint, 'd/f'), 'f');
  const inodes = [fs.statSync(join(mount.mountpoint, 'd')).ino, fs.statSync(join(mount.mountpoint, 'd/f')).ino];
  const engram = await openLibrary(mount.engramFile);
  try {
    assert.equal((await engram.stat('/d/f')).ino, inodes[1], 'the mount shows the engram inode number');
    await engram.writeFile('/d/external.txt', Buffer.from('from the library'));
    await engram.writeFile('/d/f', Buffer.from('changed by the library'));
  } finally {
    await engram.close();
  }
  await sleep(1200);
  assert.equal(fs.readFileSync(join(mount.mountpoint, 'd/external.txt'), 'utf8'), 'from the library');
  assert.equal(fs.readFileSync(join(mount.mountpoint, 'd/f'), 'utf8'), 'changed by the library');
  await mount.stop();
  remount = await startMount({ directory: mount.directory });
  assert.deepEqual([fs.statSync(join(remount.mountpoint, 'd')).ino, fs.statSync(join(remount.mountpoint, 'd/f')).ino], inodes);
});

test('read-only and snapshot mounts serve reads and refuse writes with EROFS', { skip: fuseUnavailableReason() }, async (t) => {
  let live: TestMount | undefined;
  let readOnly: TestMount | undefined;
  let snapshot: TestMount | undefined;
  t.after(async () => {
    await teardown(snapshot);
    await teardown(readOnly);
    await teardown(live);
  });
  live = await startMount();
  fs.writeFileSync(join(live.mountpoint, 'f'), 'version one');
  await live.stop();
  const engram = await openLibrary(live.engramFile);
  try {
    await engram.createSnapshot('v1');
    await engram.writeFile('/f', Buffer.from('version two'));
  } finally {
    await engram.close();
  }
  readOnly = await startMount({ directory: live.directory, readOnly: true });
  assert.equal(fs.readFileSync(join(readOnly.mountpoint, 'f'), 'utf8'), 'version two');
  assert.throws(() => fs.writeFileSync(join(readOnly?.mountpoint ?? '', 'f'), 'x'), (error: NodeJS.ErrnoException) => error.code === 'EROFS');
  assert.throws(() => fs.mkdirSync(join(readOnly?.mountpoint ?? '', 'd')), (error: NodeJS.ErrnoException) => error.code === 'EROFS');
  await readOnly.stop();

  snapshot = await startMount({ directory: live.directory, snapshot: 'v1' });
  assert.equal(fs.readFileSync(join(snapshot.mountpoint, 'f'), 'utf8'), 'version one');
  assert.deepEqual(fs.readdirSync(snapshot.mountpoint), ['f']);
  assert.throws(() => fs.writeFileSync(join(snapshot?.mountpoint ?? '', 'f'), 'x'), (error: NodeJS.ErrnoException) => error.code === 'EROFS');
  assert.throws(() => fs.unlinkSync(join(snapshot?.mountpoint ?? '', 'f')), (error: NodeJS.ErrnoException) => error.code === 'EROFS');
  await snapshot.stop();

  await assert.rejects(startMount({ directory: live.directory, snapshot: 'missing' }), /snapshot 'missing' does not exist/);
});

test('a full disk answers ENOSPC (never EIO) and the engram stays usable and verifies', { skip: fuseUnavailableReason() }, async (t) => {
  const base = fs.mkdtempSync(join(tmpdir(), 'embrfs-full-'));
  const small = join(base, 'small');
  fs.mkdirSync(small);
  let mount: TestMount | undefined;
  let tmpfsMounted = false;
  t.after(async () => {
    await teardown(mount);
    if (tmpfsMounted) spawnSync('umount', ['-l', small]);
    fs.rmSync(base, { recursive: true, force: true });
  });
  // A 3 MiB tmpfs holds the engram: the disk fills long before an 8 MB file is written.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', small]);
  tmpfsMounted = true;
  mount = await startMount({ directory: join(small, 'engram') });
  // Incompressible bytes, so the store cannot squeeze them into the space left.
  const big = randomBytes(8_000_000);
  assert.throws(
    () => {
      const descriptor = fs.openSync(join(mount?.mountpoint ?? '', 'big'), 'w');
      try {
        fs.writeSync(descriptor, big);
      } finally {
        fs.closeSync(descriptor);
      }
    },
    (error: NodeJS.ErrnoException) => error.code === 'ENOSPC',
  );
  fs.writeFileSync(join(mount.mountpoint, 'small.txt'), 'still writable');
  assert.equal(fs.readFileSync(join(mount.mountpoint, 'small.txt'), 'utf8'), 'still writable');
  assert.equal(await mount.stop(), 0);
  const engram = await openLibrary(mount.engramFile, true);
  try {
    const report = await engram.verify();
    assert.equal(report.ok, true, report.problems.join('\n'));
  } finally {
    await engram.close();
  }
});

test('two mounts of one engram see each other\'s changes within the attribute timeout', { skip: fuseUnavailableReason() }, async (t) => {
  let first: TestMount | undefined;
  let second: TestMount | undefined;
  t.after(async () => {
    await teardown(second);
    await teardown(first);
  });
  first = await startMount();
  // The second mount serves the first one's engram file from its own mountpoint.
  second = await startMount({ engramFile: first.engramFile });
  fs.writeFileSync(join(first.mountpoint, 'shared.txt'), 'written by the first mount');
  await sleep(1200);
  assert.equal(fs.readFileSync(join(second.mountpoint, 'shared.txt'), 'utf8'), 'written by the first mount');
  // Same size, new content: the second mount's page cache must not hide the change.
  fs.writeFileSync(join(first.mountpoint, 'shared.txt'), 'WRITTEN BY THE FIRST MOUNT');
  fs.writeFileSync(join(second.mountpoint, 'other.txt'), 'from the second');
  await sleep(1200);
  assert.equal(fs.readFileSync(join(second.mountpoint, 'shared.txt'), 'utf8'), 'WRITTEN BY THE FIRST MOUNT');
  assert.equal(fs.readFileSync(join(first.mountpoint, 'other.txt'), 'utf8'), 'from the second');
  assert.deepEqual(fs.readdirSync(first.mountpoint).sort(), ['other.txt', 'shared.txt']);
});

/** The in-memory engram's counters, as the mount child prints them when it exits. */
function memoryCounters(stderrText: string): { writes: number; syncs: number } {
  const match = /memory-engram counters: (\{.*\})/.exec(stderrText);
  assert.ok(match, `the mount child printed its counters; stderr: ${stderrText}`);
  return JSON.parse(match[1]) as { writes: number; syncs: number };
}

test('durability normal (the default): the last close of a written file syncs', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  t.after(() => teardown(mount));
  // A sync interval longer than the test: every sync counted comes from a release.
  mount = await startMount({ memory: true, syncIntervalMs: 600_000 });
  fs.mkdirSync(join(mount.mountpoint, 'd'));
  fs.writeFileSync(join(mount.mountpoint, 'd', 'f'), 'x');
  fs.readFileSync(join(mount.mountpoint, 'd', 'f'));
  // close(2) returns before the kernel sends the release: give it time to arrive.
  await sleep(300);
  assert.equal(await mount.stop(), 0);
  const counters = memoryCounters(mount.stderr());
  assert.equal(counters.writes, 1);
  assert.equal(counters.syncs, 1, 'one sync: the release of the written handle (not the mkdir, not the reader)');
});

test('durability normal: namespace changes are synced within the sync interval', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  t.after(() => teardown(mount));
  mount = await startMount({ memory: true, syncIntervalMs: 200 });
  fs.mkdirSync(join(mount.mountpoint, 'd'));
  fs.renameSync(join(mount.mountpoint, 'd'), join(mount.mountpoint, 'e'));
  // No file written, no fsync: only the background sync makes these durable.
  await sleep(1000);
  assert.equal(await mount.stop(), 0);
  assert.ok(memoryCounters(mount.stderr()).syncs >= 1);
});

test('durability full: commits are durable by themselves, the mount never syncs', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  t.after(() => teardown(mount));
  mount = await startMount({ memory: true, durability: 'full', syncIntervalMs: 200 });
  fs.mkdirSync(join(mount.mountpoint, 'd'));
  const descriptor = fs.openSync(join(mount.mountpoint, 'd', 'f'), 'w');
  fs.writeSync(descriptor, 'x');
  fs.fsyncSync(descriptor);
  fs.closeSync(descriptor);
  await sleep(600);
  assert.equal(await mount.stop(), 0);
  const counters = memoryCounters(mount.stderr());
  assert.ok(counters.writes >= 1);
  assert.equal(counters.syncs, 0);
});

test('parallel sequential readers get every byte through the read-ahead, whose buffers are given back and reused', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  t.after(() => teardown(mount));
  mount = await startMount();
  // Written through the library first: the mount's readers then go through its read worker.
  const engram = await openLibrary(mount.engramFile);
  const expected = new Map<string, string>();
  try {
    for (const name of ['a', 'b', 'c']) {
      // 6 MiB plus a partial chunk, with a hole in the middle of b.
      const bytes = randomBytes((6 << 20) + 1234);
      if (name === 'b') bytes.fill(0, 2 << 20, (3 << 20) + 5000);
      await engram.writeFile(`/${name}.bin`, bytes);
      expected.set(name, createHash('sha256').update(bytes).digest('hex'));
    }
  } finally {
    await engram.close();
  }
  await sleep(1100); // the attribute timeout: the mount sees the files.
  const run = (command: string, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(command, args, { maxBuffer: 1 << 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    });
  const mountpoint = mount.mountpoint;
  for (let round = 0; round < 2; round += 1) {
    const files: string[] = ['a', 'b', 'c'].map((name) => join(mountpoint, `${name}.bin`));
    const outputs: string[] = await Promise.all([
      run('sha256sum', files),
      run('sh', ['-c', `dd if=${files[1]} bs=7777 status=none | sha256sum`]),
      run('sh', ['-c', `dd if=${files[0]} bs=3M status=none | sha256sum`]),
    ]);
    for (const line of outputs[0].trim().split('\n')) {
      const [hash, path] = line.split(/\s+/);
      assert.equal(hash, expected.get(path.slice(path.lastIndexOf('/') + 1, -'.bin'.length)), `round ${round}: ${path}`);
    }
    assert.equal(outputs[1].split(/\s+/)[0], expected.get('b'), `round ${round}: b in 7,777-byte reads`);
    assert.equal(outputs[2].split(/\s+/)[0], expected.get('a'), `round ${round}: a in 3 MiB reads`);
  }
});
