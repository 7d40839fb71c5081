/**
 * fsx-style random tester: seeded random writes, reads, truncates and appends on a few files
 * through the mount, with long-lived descriptors (so the adapter's write runs are exercised
 * between reads), every read checked byte for byte against an in-memory shadow copy. 10,000
 * operations by default, 100,000 with EMBRFS_SLOW=1; the seed is EMBRFS_FSX_SEED or fixed.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fuseUnavailableReason, startMount, teardown, type TestMount } from './harness.js';

const slow = process.env.EMBRFS_SLOW === '1';
const operationCount = slow ? 100_000 : 10_000;
const seed = Number(process.env.EMBRFS_FSX_SEED ?? 20260124);
const fileCount = 4;
const trace = process.env.EMBRFS_FSX_TRACE === '1';
const maxFileBytes = 1 << 20;

/** xorshift32: deterministic and seedable. */
function makeRandom(initial: number): (limit: number) => number {
  let state = initial >>> 0 || 1;
  return (limit: number): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % limit;
  };
}

interface Shadow {
  path: string;
  bytes: Buffer;
  size: number;
  descriptor: number;
}

function resize(shadow: Shadow, size: number): void {
  if (size > shadow.bytes.length) {
    const grown = Buffer.alloc(Math.max(size, shadow.bytes.length * 2));
    shadow.bytes.copy(grown, 0, 0, shadow.size);
    shadow.bytes = grown;
  }
  if (size < shadow.size) shadow.bytes.fill(0, size, shadow.size);
  shadow.size = size;
}

function checkRange(shadow: Shadow, offset: number, actual: Buffer, step: number, seed: number): void {
  const expected = shadow.bytes.subarray(offset, Math.max(offset, Math.min(shadow.size, offset + actual.length)));
  if (!expected.equals(actual)) {
    let first = 0;
    while (first < Math.min(expected.length, actual.length) && expected[first] === actual[first]) first += 1;
    assert.fail(`seed ${seed} op ${step}: ${shadow.path} differs at byte ${offset + first} (read ${actual.length}, expected ${expected.length})`);
  }
}

test(`random reads, writes, truncates and appends agree with a shadow copy (${operationCount} ops)`, { skip: fuseUnavailableReason() }, async (t) => {
  await runFsx(t, { operationCount, seed });
});

test(`the same with a 32 KiB write buffer, so write-behinds are in flight all the time (${operationCount / 2} ops)`, { skip: fuseUnavailableReason() }, async (t) => {
  await runFsx(t, { operationCount: operationCount / 2, seed: seed + 1, writeBufferBytes: 32 * 1024 });
});

async function runFsx(t: TestContext, options: { operationCount: number; seed: number; writeBufferBytes?: number }): Promise<void> {
  const { operationCount, seed } = options;
  let mount: TestMount | undefined;
  const shadows: Shadow[] = [];
  t.after(async () => {
    for (const shadow of shadows) {
      try {
        fs.closeSync(shadow.descriptor);
      } catch {
        // Already closed by the test body.
      }
    }
    await teardown(mount);
  });
  mount = await startMount({
    memory: process.env.EMBRFS_FUSE_BACKEND === 'memory',
    ...(options.writeBufferBytes === undefined ? {} : { writeBufferBytes: options.writeBufferBytes }),
  });
  const random = makeRandom(seed);
  for (let index = 0; index < fileCount; index += 1) {
    const path = join(mount.mountpoint, `fsx-${index}`);
    shadows.push({ path, bytes: Buffer.alloc(1 << 16), size: 0, descriptor: fs.openSync(path, 'w+') });
  }
  const counts = { write: 0, read: 0, scan: 0, truncate: 0, append: 0, reopen: 0, fsync: 0 };
  for (let step = 0; step < operationCount; step += 1) {
    const shadow = shadows[random(fileCount)];
    const choice = random(100);
    if (choice < 40) {
      // Mostly sequential-ish writes (to build runs), sometimes anywhere, sometimes past the end.
      const offset = random(4) === 0 ? random(maxFileBytes) : Math.min(shadow.size, maxFileBytes - 1);
      const length = 1 + random(random(8) === 0 ? 65536 : 4096);
      const data = Buffer.alloc(length);
      for (let index = 0; index < length; index += 1) data[index] = random(256);
      if (trace) console.log(step, 'write', shadow.path.slice(-1), offset, length);
      fs.writeSync(shadow.descriptor, data, 0, length, offset);
      if (offset + length > shadow.size) resize(shadow, offset + length);
      data.copy(shadow.bytes, offset);
      counts.write += 1;
    } else if (choice < 44) {
      // A sequential scan (exercises the adapter's read-ahead and prefetch), in 4-128 KiB steps.
      const step = 4096 * (1 + random(32));
      const buffer = Buffer.alloc(step);
      let offset = random(2) === 0 ? 0 : random(shadow.size + 1);
      if (trace) console.log(step, 'scan', shadow.path.slice(-1), offset, step);
      for (;;) {
        const bytesRead = fs.readSync(shadow.descriptor, buffer, 0, step, offset);
        assert.equal(bytesRead, Math.max(0, Math.min(step, shadow.size - offset)), `seed ${seed} op ${step}: scan of ${shadow.path} at ${offset}`);
        checkRange(shadow, offset, buffer.subarray(0, bytesRead), step, seed);
        if (bytesRead === 0) break;
        offset += bytesRead;
      }
      counts.scan += 1;
    } else if (choice < 75) {
      const offset = random(shadow.size + 100);
      const length = 1 + random(65536);
      const buffer = Buffer.alloc(length);
      const bytesRead = fs.readSync(shadow.descriptor, buffer, 0, length, offset);
      if (trace) console.log(step, 'read', shadow.path.slice(-1), offset, length, '->', bytesRead, 'size', shadow.size);
      assert.equal(bytesRead, Math.max(0, Math.min(length, shadow.size - offset)), `seed ${seed} op ${step}: short/long read of ${shadow.path}`);
      checkRange(shadow, offset, buffer.subarray(0, bytesRead), step, seed);
      counts.read += 1;
    } else if (choice < 85) {
      const size = random(4) === 0 ? random(maxFileBytes) : random(shadow.size + 1);
      const viaDescriptor = random(2) === 0;
      if (trace) console.log(step, viaDescriptor ? 'ftruncate' : 'truncate', shadow.path.slice(-1), size);
      if (viaDescriptor) fs.ftruncateSync(shadow.descriptor, size);
      else fs.truncateSync(shadow.path, size);
      resize(shadow, size);
      counts.truncate += 1;
    } else if (choice < 93) {
      const length = 1 + random(8192);
      const data = Buffer.alloc(length, random(256));
      if (trace) console.log(step, 'append', shadow.path.slice(-1), length);
      const appendDescriptor = fs.openSync(shadow.path, 'a');
      try {
        fs.writeSync(appendDescriptor, data);
      } finally {
        fs.closeSync(appendDescriptor);
      }
      const offset = shadow.size;
      resize(shadow, offset + length);
      data.copy(shadow.bytes, offset);
      counts.append += 1;
    } else if (choice < 97) {
      if (trace) console.log(step, 'reopen', shadow.path.slice(-1));
      fs.closeSync(shadow.descriptor);
      shadow.descriptor = fs.openSync(shadow.path, 'r+');
      counts.reopen += 1;
    } else {
      fs.fsyncSync(shadow.descriptor);
      counts.fsync += 1;
    }
    if (shadow.size > maxFileBytes * 2) {
      fs.ftruncateSync(shadow.descriptor, maxFileBytes);
      resize(shadow, maxFileBytes);
    }
  }
  // Final full comparison, through the same descriptors and through fresh opens.
  for (const shadow of shadows) {
    assert.equal(fs.fstatSync(shadow.descriptor).size, shadow.size, `${shadow.path} size`);
    fs.closeSync(shadow.descriptor);
    const content = fs.readFileSync(shadow.path);
    checkRange(shadow, 0, content, operationCount, seed);
    assert.equal(content.length, shadow.size);
  }
  shadows.length = 0;
  for (const [name, count] of Object.entries(counts)) assert.ok(count > 0, `the mix exercised ${name}`);
  assert.equal(mount.stderr().includes('unexpected failure'), false, mount.stderr());
}
