import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngramFuseOperations } from './operations.js';
import { createMemoryEngram } from '../../test/fuse/memory-engram.js';
import { EmbrError } from '../errors.js';
import { Errno, errnoOf } from './errno.js';

const O_RDWR = 0o2;
const O_TRUNC = 0o1000;

function setup(writeBufferBytes = 1 << 20) {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: '/tmp/unused.engram', writeBufferBytes });
  return { engram, operations };
}

async function readAll(operations: EngramFuseOperations, fileHandle: number, length: number, offset = 0): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const bytesRead = await operations.read('/', fileHandle, buffer, length, offset);
  return buffer.subarray(0, bytesRead);
}

test('sequential writes coalesce into one engram write when the handle is flushed', async () => {
  const { engram, operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  for (let index = 0; index < 10; index += 1) {
    const chunk = Buffer.alloc(4096, index);
    assert.equal(await operations.write('/f', fileHandle, chunk, chunk.length, index * 4096), 4096);
  }
  assert.equal(engram.counters.writes, 0, 'nothing written before flush');
  assert.equal((await operations.getattr('/f')).size, 40960, 'getattr counts the pending bytes');
  await operations.flush('/f', fileHandle);
  assert.equal(engram.counters.writes, 1);
  assert.equal(engram.counters.writtenBytes, 40960);
  const { data } = await engram.readFile('/f');
  for (let index = 0; index < 10; index += 1) assert.ok(data.subarray(index * 4096, (index + 1) * 4096).every((byte) => byte === index));
  await operations.release('/f', fileHandle);
  assert.equal(operations.openFileCount, 0);
});

test('writes elsewhere start new runs, written in order in one transaction', async () => {
  const { engram, operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  await operations.write('/f', fileHandle, Buffer.from('aaaa'), 4, 0);
  await operations.write('/f', fileHandle, Buffer.from('bb'), 2, 1);
  await operations.write('/f', fileHandle, Buffer.from('c'), 1, 9);
  assert.equal(engram.counters.writes, 0, 'all three pending');
  assert.equal((await operations.getattr('/f')).size, 10);
  await operations.release('/f', fileHandle);
  assert.equal(engram.counters.transactions, 1);
  assert.equal(Buffer.from((await engram.readFile('/f')).data).toString('latin1'), 'abba\0\0\0\0\0c');
});

test('runs of a renamed file are still written in one transaction under its new path', async () => {
  const { engram, operations } = setup();
  const fileHandle = await operations.create('/old', 0o100644);
  await operations.write('/old', fileHandle, Buffer.from('xy'), 2, 0);
  await operations.write('/old', fileHandle, Buffer.from('z'), 1, 5);
  await operations.rename('/old', '/new');
  await operations.flush('/new', fileHandle);
  assert.equal(engram.counters.transactions, 1);
  assert.equal(Buffer.from((await engram.readFile('/new')).data).toString('latin1'), 'xy\0\0\0z');
  await operations.release('/new', fileHandle);
});

test('sequential reads are served from one larger read-ahead fetch and writes drop it', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', readAheadBytes: 64 * 1024 });
  const content = Buffer.alloc(200 * 1024);
  for (let index = 0; index < content.length; index += 1) content[index] = (index * 31) & 0xff;
  await engram.writeFile('/f', content);
  const fileHandle = await operations.open('/f', 0);
  let fetches = 0;
  const file = (operations as unknown as { files: Map<number, { handle: { read: (o: number, l: number) => Promise<unknown> } }> }).files.get(fileHandle);
  assert.ok(file);
  const originalRead = file.handle.read.bind(file.handle);
  file.handle.read = (offset: number, length: number) => {
    fetches += 1;
    return originalRead(offset, length);
  };
  const collected: Buffer[] = [];
  for (let offset = 0; offset < content.length; offset += 4096) collected.push(await readAll(operations, fileHandle, 4096, offset));
  assert.ok(Buffer.concat(collected).equals(content));
  assert.ok(fetches <= 6, `few fetches for 50 sequential reads (${fetches})`);
  await operations.write('/f', fileHandle, Buffer.from('NEW'), 3, 8192);
  assert.equal((await readAll(operations, fileHandle, 3, 8192)).toString(), 'NEW');
  await operations.release('/f', fileHandle);
});

test('a read overlapping the pending run sees the written bytes', async () => {
  const { operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  await operations.write('/f', fileHandle, Buffer.from('hello world'), 11, 0);
  assert.equal((await readAll(operations, fileHandle, 5, 6)).toString(), 'world');
  await operations.release('/f', fileHandle);
});

test('a read before a run that extends the file past a hole sees the zeros', async () => {
  const { operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  await operations.write('/f', fileHandle, Buffer.from('abc'), 3, 0);
  await operations.flush('/f', fileHandle);
  await operations.write('/f', fileHandle, Buffer.from('z'), 1, 100);
  const bytes = await readAll(operations, fileHandle, 10, 50);
  assert.deepEqual([...bytes], new Array(10).fill(0));
  await operations.release('/f', fileHandle);
});

test('runs reaching writeBufferBytes are written without waiting for flush', async () => {
  const { engram, operations } = setup(8192);
  const fileHandle = await operations.create('/f', 0o100644);
  for (let index = 0; index < 4; index += 1) await operations.write('/f', fileHandle, Buffer.alloc(4096, 1), 4096, index * 4096);
  assert.equal(engram.counters.writes, 2, 'two full 8 KiB runs');
  assert.equal(engram.counters.writtenBytes, 16384);
  await operations.release('/f', fileHandle);
  assert.equal(engram.counters.writes, 2, 'nothing left to write');
});

test('scattered runs are written in one transaction once they reach 8x writeBufferBytes', async () => {
  const { engram, operations } = setup(8192);
  const fileHandle = await operations.create('/f', 0o100644);
  // 2 KiB runs with gaps between them: a scattered writer (no run continues the one before).
  for (let index = 0; index < 31; index += 1) await operations.write('/f', fileHandle, Buffer.alloc(2048, index + 1), 2048, index * 4096);
  assert.equal(engram.counters.transactions, 0, '62 KiB of scattered runs stay buffered (the sequential limit is 8 KiB)');
  assert.equal(engram.counters.writtenBytes, 0);
  await operations.write('/f', fileHandle, Buffer.alloc(2048, 32), 2048, 31 * 4096);
  await operations.flush('/f', fileHandle);
  assert.equal(engram.counters.transactions, 1, 'the 64 KiB of runs went in one transaction');
  assert.equal(engram.counters.writtenBytes, 32 * 2048);
  const data = await readAll(operations, fileHandle, 32 * 4096, 0);
  for (let index = 0; index < 32; index += 1) {
    assert.ok(data.subarray(index * 4096, index * 4096 + 2048).every((byte) => byte === index + 1), `run ${index}`);
    if (index < 31) assert.ok(data.subarray(index * 4096 + 2048, (index + 1) * 4096).every((byte) => byte === 0), `hole after run ${index}`);
  }
  await operations.release('/f', fileHandle);
});

test('the write buffer is copied, so libfuse may reuse its memory at once', async () => {
  const { engram, operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  const reused = Buffer.from('first');
  await operations.write('/f', fileHandle, reused, 5, 0);
  reused.write('XXXXX');
  await operations.release('/f', fileHandle);
  assert.equal(Buffer.from((await engram.readFile('/f')).data).toString(), 'first');
});

test('open with O_TRUNC empties the file after writing what another handle had pending', async () => {
  const { engram, operations } = setup();
  const first = await operations.create('/f', 0o100644);
  await operations.write('/f', first, Buffer.from('pending'), 7, 0);
  const second = await operations.open('/f', O_RDWR | O_TRUNC);
  assert.equal((await operations.getattr('/f')).size, 0);
  await operations.release('/f', first);
  await operations.release('/f', second);
  assert.equal((await engram.stat('/f')).size, 0);
});

test('the hiding rename of an open file unlinks it and keeps it usable through the handle', async () => {
  const { engram, operations } = setup();
  await engram.mkdir('/d');
  const fileHandle = await operations.create('/d/f', 0o100644);
  await operations.write('/d/f', fileHandle, Buffer.from('still here'), 10, 0);
  const hiddenName = '/d/.fuse_hidden0000000100000002';
  await assert.rejects(operations.getattr(hiddenName), (error: unknown) => error instanceof EmbrError && error.code === 'NOT_FOUND');
  await operations.rename('/d/f', hiddenName);
  assert.equal(await engram.exists('/d/f'), false);
  assert.deepEqual(await engram.readdir('/d'), [], 'no hidden file in the engram');
  assert.equal((await operations.getattr(hiddenName)).size, 10);
  assert.equal((await readAll(operations, fileHandle, 10)).toString(), 'still here');
  await operations.rmdir('/d');
  await operations.release(hiddenName, fileHandle);
  await operations.unlink(hiddenName);
  await assert.rejects(operations.getattr(hiddenName));
});

test('utimens writes pending bytes first so the times set last win', async () => {
  const { engram, operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  await operations.write('/f', fileHandle, Buffer.from('data'), 4, 0);
  await operations.utimens('/f', { kind: 'set', timeNs: 1_000_000n * 1_000_000n + 7n }, { kind: 'set', timeNs: 2_000_000n * 1_000_000n + 9n });
  await operations.release('/f', fileHandle);
  const stat = await engram.stat('/f');
  assert.equal(stat.mtimeNs, 2_000_000n * 1_000_000n + 9n);
  assert.equal(stat.atimeNs, 1_000_000n * 1_000_000n + 7n);
  assert.equal(stat.size, 4);
});

test('utimens with omit leaves that time alone and now uses the injected clock', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: '/tmp/unused.engram', nowNs: () => 42_000_000n });
  await engram.writeFile('/f', new Uint8Array(1));
  const before = await engram.stat('/f');
  await operations.utimens('/f', { kind: 'omit' }, { kind: 'now' });
  const after = await engram.stat('/f');
  assert.equal(after.atimeNs, before.atimeNs);
  assert.equal(after.mtimeNs, 42_000_000n);
});

test('chown with -1 keeps that id', async () => {
  const { engram, operations } = setup();
  await engram.writeFile('/f', new Uint8Array(1));
  await operations.chown('/f', 1000, 0xffffffff);
  await operations.chown('/f', 0xffffffff, 2000);
  const stat = await engram.stat('/f');
  assert.deepEqual([stat.uid, stat.gid], [1000, 2000]);
});

test('a minimal ACL xattr becomes a chmod and is never listed', async () => {
  const { engram, operations } = setup();
  await engram.writeFile('/f', new Uint8Array(1), { mode: 0o4600 });
  const acl = Buffer.from([2, 0, 0, 0, 1, 0, 7, 0, 255, 255, 255, 255, 4, 0, 5, 0, 255, 255, 255, 255, 0x20, 0, 1, 0, 255, 255, 255, 255]);
  await operations.setxattr('/f', 'system.posix_acl_access', acl, 0);
  assert.equal((await engram.stat('/f')).mode, 0o4751);
  assert.deepEqual(await operations.listxattr('/f'), []);
  await assert.rejects(operations.getxattr('/f', 'system.posix_acl_access'), (error: unknown) => error instanceof EmbrError && error.code === 'NO_ATTRIBUTE');
});

test('mknod makes regular files and refuses special files', async () => {
  const { engram, operations } = setup();
  await operations.mknod('/regular', 0o100640, 0);
  assert.equal((await engram.stat('/regular')).mode, 0o640);
  await assert.rejects(operations.mknod('/fifo', 0o010644, 0), (error: unknown) => error instanceof EmbrError && error.code === 'NOT_SUPPORTED');
});

test('readdir lists dot entries and every name with its inode number', async () => {
  const { engram, operations } = setup();
  await engram.mkdir('/d');
  await engram.writeFile('/d/a', new Uint8Array(1));
  await engram.symlink('a', '/d/l');
  const listing = await operations.readdir('/d');
  assert.deepEqual(listing.names, ['.', '..', 'a', 'l']);
  assert.equal(listing.stats[2].ino, (await engram.stat('/d/a')).ino);
  assert.equal(listing.stats[3].mode & 0o170000, 0o120000);
});

test('flushAll and closeAll write every pending run and release every handle', async () => {
  const { engram, operations } = setup();
  const first = await operations.create('/a', 0o100644);
  const second = await operations.create('/b', 0o100644);
  await operations.write('/a', first, Buffer.from('A'), 1, 0);
  await operations.write('/b', second, Buffer.from('B'), 1, 0);
  await operations.closeAll();
  assert.equal(operations.openFileCount, 0);
  assert.equal(Buffer.from((await engram.readFile('/a')).data).toString(), 'A');
  assert.equal(Buffer.from((await engram.readFile('/b')).data).toString(), 'B');
});

test('a bad writeBufferBytes is refused at construction', () => {
  assert.throws(() => new EngramFuseOperations({ engram: createMemoryEngram(), engramFile: 'x', writeBufferBytes: 0 }), RangeError);
});

test('a failed write-behind is reported by the next flush, once', async () => {
  const engram = createMemoryEngram();
  const originalOpen = engram.open.bind(engram);
  engram.open = async (path, options) => {
    const handle = await originalOpen(path, options);
    let failures = 1;
    const originalWrite = handle.write.bind(handle);
    handle.write = async (offset, data) => {
      if (failures > 0) {
        failures -= 1;
        throw new EmbrError('NO_SPACE', 'disk full (simulated)', { file: 'x' });
      }
      return originalWrite(offset, data);
    };
    return handle;
  };
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', writeBufferBytes: 4096 });
  const fileHandle = await operations.create('/f', 0o100644);
  assert.equal(await operations.write('/f', fileHandle, Buffer.alloc(4096, 1), 4096, 0), 4096, 'acknowledged: written behind');
  await assert.rejects(operations.flush('/f', fileHandle), (error: unknown) => error instanceof EmbrError && error.code === 'NO_SPACE');
  await operations.flush('/f', fileHandle);
  await operations.write('/f', fileHandle, Buffer.from('ok'), 2, 0);
  await operations.release('/f', fileHandle);
  assert.equal(Buffer.from((await engram.readFile('/f')).data).toString(), 'ok');
});

test('getattr counts runs that are being written behind', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', writeBufferBytes: 4096 });
  const fileHandle = await operations.create('/f', 0o100644);
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const files = (operations as unknown as { files: Map<number, { handle: { write: (o: number, d: Uint8Array) => Promise<number> } }> }).files;
  const handle = files.get(fileHandle)?.handle;
  assert.ok(handle);
  const originalWrite = handle.write.bind(handle);
  handle.write = async (offset, data) => {
    await gate;
    return originalWrite(offset, data);
  };
  await operations.write('/f', fileHandle, Buffer.alloc(8192, 2), 8192, 0);
  assert.equal((await operations.getattr('/f')).size, 8192, 'in-flight bytes counted');
  assert.equal((await engram.stat('/f')).size, 0, 'not committed yet');
  release();
  await operations.release('/f', fileHandle);
  assert.equal((await engram.stat('/f')).size, 8192);
});

test('durability points: fsync, fsyncdir and the release of a written handle sync; nothing else does', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', syncOnDurabilityPoints: true });
  const writer = await operations.create('/f', 0o100644);
  await operations.write('/f', writer, Buffer.from('data'), 4, 0);
  await operations.flush('/f', writer);
  assert.equal(engram.counters.writes, 1, 'close commits');
  assert.equal(engram.counters.syncs, 0, 'close alone does not sync');
  await operations.fsync('/f', false, writer);
  assert.equal(engram.counters.syncs, 1, 'fsync syncs');
  await operations.fsync('/f', true, writer);
  assert.equal(engram.counters.syncs, 2, 'fdatasync syncs');
  await operations.release('/f', writer);
  assert.equal(engram.counters.syncs, 2, 'the release is answered before its (group) sync');
  await operations.closeAll();
  assert.equal(engram.counters.syncs, 3, 'the release of a handle that wrote syncs');
  const reader = await operations.open('/f', 0);
  await readAll(operations, reader, 4);
  await operations.flush('/f', reader);
  await operations.release('/f', reader);
  assert.equal(engram.counters.syncs, 3, 'a handle that only read does not sync');
  await operations.mkdir('/d', 0o755);
  await operations.unlink('/f');
  assert.equal(engram.counters.syncs, 3, 'namespace changes are committed, not synced, when answered');
  await operations.fsyncdir('/d', false);
  assert.equal(engram.counters.syncs, 4, 'fsyncdir syncs');
});

test('with every commit durable (durability full) no durability point syncs', async () => {
  const { engram, operations } = setup();
  const fileHandle = await operations.create('/f', 0o100644);
  await operations.write('/f', fileHandle, Buffer.from('data'), 4, 0);
  await operations.fsync('/f', false, fileHandle);
  await operations.release('/f', fileHandle);
  await operations.fsyncdir('/', false);
  assert.equal(engram.counters.writes, 1);
  assert.equal(engram.counters.syncs, 0);
});

test('a missing security.capability is remembered for the cache time and forgotten by setxattr and rename', async () => {
  const engram = createMemoryEngram();
  let lookups = 0;
  const originalGetxattr = engram.getxattr.bind(engram);
  engram.getxattr = (path, name, options) => {
    lookups += 1;
    return originalGetxattr(path, name, options);
  };
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', capabilityCacheMs: 60_000 });
  await engram.writeFile('/f', Buffer.from('x'));
  const isNoData = (error: unknown): boolean => errnoOf(error) === -Errno.ENODATA;
  await assert.rejects(operations.getxattr('/f', 'security.capability'), isNoData);
  await assert.rejects(operations.getxattr('/f', 'security.capability'), isNoData);
  assert.equal(lookups, 1, 'the second answer came from the cache');
  await operations.setxattr('/f', 'security.capability', Buffer.from('cap'), 0);
  assert.equal(Buffer.from(await operations.getxattr('/f', 'security.capability')).toString(), 'cap', 'setxattr through the mount drops the cache');
  await engram.writeFile('/g', Buffer.from('y'));
  await assert.rejects(operations.getxattr('/g', 'security.capability'), isNoData);
  await operations.rename('/f', '/g');
  assert.equal(Buffer.from(await operations.getxattr('/g', 'security.capability')).toString(), 'cap', 'rename over a cached path drops the cache');
  await assert.rejects(operations.getxattr('/g', 'user.other'), (error: unknown) => errnoOf(error) === -Errno.ENODATA);
  await assert.rejects(operations.getxattr('/g', 'user.other'), (error: unknown) => errnoOf(error) === -Errno.ENODATA);
  const before = lookups;
  await assert.rejects(operations.getxattr('/g', 'user.other'));
  assert.equal(lookups, before + 1, 'other names are never cached');
  const created = await operations.create('/new', 0o100644);
  const afterCreate = lookups;
  await assert.rejects(operations.getxattr('/new', 'security.capability'), isNoData);
  assert.equal(lookups, afterCreate, 'a file created through the mount is known to have none');
  await operations.release('/new', created);
});

test('a cached missing security.capability expires after capabilityCacheMs', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', capabilityCacheMs: 20 });
  await engram.writeFile('/f', Buffer.from('x'));
  await assert.rejects(operations.getxattr('/f', 'security.capability'));
  // Another writer (not this mount) adds the attribute: seen once the cached answer expires.
  await engram.setxattr('/f', 'security.capability', Buffer.from('cap'));
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.equal(Buffer.from(await operations.getxattr('/f', 'security.capability')).toString(), 'cap');
});

test('releases of written files within releaseSyncDelayMs share one sync; fsync does not wait for the delay', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', syncOnDurabilityPoints: true, releaseSyncDelayMs: 30 });
  const handles: number[] = [];
  for (const name of ['/a', '/b', '/c']) {
    const fileHandle = await operations.create(name, 0o100644);
    await operations.write(name, fileHandle, Buffer.from(name), name.length, 0);
    handles.push(fileHandle);
  }
  await Promise.all(handles.map((fileHandle) => operations.release('/', fileHandle)));
  assert.equal(engram.counters.writes, 3, 'each file committed');
  assert.equal(engram.counters.syncs, 0, 'releases are answered before their sync');
  await operations.closeAll();
  assert.equal(engram.counters.syncs, 1, 'one sync for the three releases');
  const slow = new EngramFuseOperations({ engram, engramFile: 'x', syncOnDurabilityPoints: true, releaseSyncDelayMs: 60_000 });
  const fileHandle = await slow.create('/d', 0o100644);
  await slow.write('/d', fileHandle, Buffer.from('d'), 1, 0);
  const started = Date.now();
  await slow.fsync('/d', false, fileHandle);
  assert.equal(engram.counters.syncs, 2);
  await slow.release('/d', fileHandle);
  assert.equal(engram.counters.syncs, 2, 'the release is answered at once; its sync waits for the delay');
  await slow.fsync('/d', false, (await slow.open('/d', 0)));
  assert.ok(Date.now() - started < 10_000, 'fsync did not wait for the one-minute delay');
  assert.equal(engram.counters.syncs, 3);
  await slow.closeAll();
  assert.equal(engram.counters.syncs, 3, 'the fsync covered the release waiting for its group sync');
});

test('sequential write-behinds run two at a time; an overlapping one waits for the one it overlaps', async () => {
  const engram = createMemoryEngram();
  const operations = new EngramFuseOperations({ engram, engramFile: 'x', writeBufferBytes: 4096 });
  const fileHandle = await operations.create('/f', 0o100644);
  const gates: Array<() => void> = [];
  const started: number[] = [];
  const files = (operations as unknown as { files: Map<number, { handle: { write: (o: number, d: Uint8Array) => Promise<number> } }> }).files;
  const handle = files.get(fileHandle)?.handle;
  assert.ok(handle);
  const originalWrite = handle.write.bind(handle);
  handle.write = async (offset, data) => {
    started.push(offset);
    await new Promise<void>((resolve) => gates.push(resolve));
    return originalWrite(offset, data);
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 10));
  await operations.write('/f', fileHandle, Buffer.alloc(4096, 1), 4096, 0);
  await operations.write('/f', fileHandle, Buffer.alloc(4096, 2), 4096, 4096);
  await settle();
  assert.deepEqual(started, [0, 4096], 'two disjoint write-behinds in flight together');
  let thirdAnswered = false;
  const third = operations.write('/f', fileHandle, Buffer.alloc(4096, 3), 4096, 8192).then(() => {
    thirdAnswered = true;
  });
  await settle();
  assert.equal(thirdAnswered, false, 'a third waits: at most two in flight');
  assert.equal((await operations.getattr('/f')).size, 12288, 'getattr counts bytes in flight and waiting');
  gates.shift()?.();
  await third;
  await settle();
  assert.deepEqual(started, [0, 4096, 8192]);
  // Rewriting the range of a write-behind still in flight waits for it, so the later bytes win.
  let overlapAnswered = false;
  const overlap = operations.write('/f', fileHandle, Buffer.alloc(4096, 9), 4096, 4096).then(() => {
    overlapAnswered = true;
  });
  await settle();
  assert.equal(overlapAnswered, false);
  assert.deepEqual(started, [0, 4096, 8192], 'the overlapping buffer is not written yet');
  while (gates.length > 0 || !overlapAnswered) {
    gates.shift()?.();
    await settle();
  }
  await overlap;
  const releasing = operations.release('/f', fileHandle);
  while (gates.length > 0) gates.shift()?.();
  await settle();
  while (gates.length > 0) gates.shift()?.();
  await releasing;
  const { data } = await engram.readFile('/f');
  assert.equal(data.length, 12288);
  assert.ok(data.subarray(0, 4096).every((byte) => byte === 1));
  assert.ok(data.subarray(4096, 8192).every((byte) => byte === 9), 'the later write of the middle block won');
  assert.ok(data.subarray(8192).every((byte) => byte === 3));
});

test('a bad writeBehindDepth is refused at construction', () => {
  assert.throws(() => new EngramFuseOperations({ engram: createMemoryEngram(), engramFile: 'x', writeBehindDepth: 0 }), RangeError);
});
