import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEngram } from '../fs/index.js';
import { isEmbrError } from '../errors.js';
import { FileWritePool } from './write-pool.js';
import type { TreeOp } from './tree-ops.js';

function fileOp(path: string, data: Uint8Array): TreeOp {
  return { kind: 'write', job: { engramPath: path, sourcePath: '/nonexistent', sizeBytes: data.length, mode: 0o640, mtimeNs: 1_700_000_000_000_000_001n, data } };
}

test('worker batches commit in the order they were submitted, so a batch may need the one before', async () => {
  const base = await mkdtemp(join(tmpdir(), 'embrfs-pool-order-'));
  try {
    const file = join(base, 'e.engram');
    await (await openEngram(file, { create: true })).close();
    let doneFiles = 0;
    const pool = await FileWritePool.start(file, 2, (files) => {
      doneFiles += files;
    });
    const batches = 24;
    try {
      for (let index = 0; index < batches; index += 1) {
        const ops: TreeOp[] = [{ kind: 'mkdir', path: `/d${index}`, mode: 0o750, mtimeNs: 1n }];
        // Its file goes into the directory of the batch before: committed out of order, it fails
        // with NOT_FOUND. Even batches carry more bytes, so they take longer to encode.
        if (index > 0) ops.push(fileOp(`/d${index - 1}/f`, randomBytes(index % 2 === 0 ? 512 * 1024 : 100)));
        await pool.submit(ops);
      }
      await pool.drain();
    } finally {
      await pool.close();
    }
    assert.equal(pool.commits, batches);
    assert.equal(doneFiles, batches - 1);
    const engram = await openEngram(file, { readOnly: true });
    try {
      for (let index = 0; index < batches - 1; index += 1) {
        const stats = await engram.stat(`/d${index}/f`);
        assert.equal(stats.mode, 0o640);
        assert.equal(stats.mtimeNs, 1_700_000_000_000_000_001n);
      }
    } finally {
      await engram.close();
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('a failed worker batch stops the later ones and its own error is the one reported', async () => {
  const base = await mkdtemp(join(tmpdir(), 'embrfs-pool-fail-'));
  try {
    const file = join(base, 'e.engram');
    const setup = await openEngram(file, { create: true });
    await setup.mkdir('/taken');
    await setup.close();
    const pool = await FileWritePool.start(file, 2, () => {});
    await pool.submit([{ kind: 'mkdir', path: '/first', mode: 0o755, mtimeNs: 1n }]);
    // Fails at commit: /taken exists. The batches after it must not commit.
    await pool.submit([
      { kind: 'mkdir', path: '/second', mode: 0o755, mtimeNs: 1n },
      { kind: 'mkdir', path: '/taken', mode: 0o755, mtimeNs: 1n },
    ]);
    let failure: unknown;
    try {
      await pool.submit([fileOp('/late', randomBytes(64))]);
      await pool.drain();
    } catch (error) {
      failure = error;
    }
    await pool.close();
    assert.ok(isEmbrError(failure, 'EXISTS'), `expected EXISTS, got ${String(failure)}`);
    const engram = await openEngram(file, { readOnly: true });
    try {
      assert.equal(await engram.exists('/first'), true);
      assert.equal(await engram.exists('/second'), false);
      assert.equal(await engram.exists('/late'), false);
    } finally {
      await engram.close();
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
