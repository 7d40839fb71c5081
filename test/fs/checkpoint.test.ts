/**
 * `bulk: true` and `Engram.checkpoint()`: with it, commits leave their pages in the
 * write-ahead log and only `checkpoint()` (or close) copies them into the database file; the
 * default copies them as the log grows. Checked on the database file alone (copied without its
 * `-wal`), which holds exactly what was checkpointed.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openEngram } from '../../src/index.js';
import { createTempEngram, seededBytes } from './helpers.js';

/** What the database file alone holds at `path`: a copy of it opened as an engram (no WAL beside it). */
async function dataFileHolds(file: string, directory: string, path: string): Promise<Uint8Array | undefined> {
  const copy = join(directory, `copy-${Math.random().toString(36).slice(2)}.engram`);
  copyFileSync(file, copy);
  const engram = await openEngram(copy);
  try {
    return (await engram.readFile(path)).data;
  } catch (error) {
    if ((error as { code?: string }).code === 'NOT_FOUND') return undefined;
    throw error;
  } finally {
    await engram.close();
  }
}

test('with bulk: true, commits stay in the WAL until checkpoint() copies them into the database file', async () => {
  const scratch = await createTempEngram({ durability: 'normal', bulk: true });
  try {
    // 8 MB: far past SQLite's automatic threshold of 1000 pages.
    const bytes = seededBytes(41, 8_000_000);
    await scratch.engram.writeFile('/big.bin', bytes);
    assert.equal(await dataFileHolds(scratch.file, scratch.directory, '/big.bin'), undefined);
    await scratch.engram.checkpoint();
    const copied = await dataFileHolds(scratch.file, scratch.directory, '/big.bin');
    assert.ok(copied !== undefined && Buffer.compare(copied, bytes) === 0, 'the checkpointed file holds every byte');
    // The live engram is unaffected either way.
    assert.equal(Buffer.compare((await scratch.engram.readFile('/big.bin')).data, bytes), 0);
  } finally {
    await scratch.cleanup();
  }
});

test('by default a commit that grows the WAL past the threshold checkpoints on its own', async () => {
  const scratch = await createTempEngram({ durability: 'normal' });
  try {
    // 2 × 2.5 MB: ordinary commits; the second leaves the WAL past 1000 pages and SQLite's
    // automatic checkpoint runs inside it.
    const medium = seededBytes(43, 2_500_000);
    await scratch.engram.writeFile('/medium-1.bin', medium);
    await scratch.engram.writeFile('/medium-2.bin', medium.subarray(1));
    const copiedMedium = await dataFileHolds(scratch.file, scratch.directory, '/medium-2.bin');
    assert.ok(copiedMedium !== undefined && Buffer.compare(copiedMedium, medium.subarray(1)) === 0);
    // 8 MB: a staged write (docs/design/store.md §3.7), whose checkpoint runs on the store's
    // background connection after the write resolved; the database file holds it once that ran.
    const bytes = seededBytes(42, 8_000_000);
    await scratch.engram.writeFile('/big.bin', bytes);
    let copied: Uint8Array | undefined;
    for (let attempt = 0; attempt < 400 && copied === undefined; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      // A copy taken while the checkpoint writes may be torn: that attempt just does not count.
      copied = await dataFileHolds(scratch.file, scratch.directory, '/big.bin').catch(() => undefined);
    }
    assert.ok(copied !== undefined && Buffer.compare(copied, bytes) === 0, 'the background checkpoint copied the write into the database file');
  } finally {
    await scratch.cleanup();
  }
});

/** Log rows of the similarity index in the engram file (read with SQLite directly). */
function indexLogRows(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return Number((db.prepare("SELECT count(*) FROM index_rows WHERE key LIKE 'log:%'").pluck().get() as number | bigint) ?? 0);
  } finally {
    db.close();
  }
}

test('a bulk writer leaves the index log to grow; checkpoint({ index: true }) folds it in a commit of its own and answers queries the same', async () => {
  const scratch = await createTempEngram({ durability: 'normal', bulk: true });
  try {
    // 3 transactions of 40 files of 12 KiB: 360 chunks, far below the bulk fold threshold.
    for (let batch = 0; batch < 3; batch += 1) {
      await scratch.engram.transaction(async (tx) => {
        for (let file = 0; file < 40; file += 1) await tx.writeFile(`/b${batch}-f${file}`, seededBytes(`${batch}:${file}`, 12_288));
      });
    }
    assert.equal(indexLogRows(scratch.file), 3);
    // Below the ordinary fold mark, 'due' leaves the log as it is (no commit).
    const beforeDue = await scratch.engram.currentCommit();
    await scratch.engram.checkpoint({ index: 'due' });
    assert.equal(indexLogRows(scratch.file), 3);
    assert.equal(await scratch.engram.currentCommit(), beforeDue);
    const needle = seededBytes('1:7', 12_288).subarray(4096, 8192);
    const before = await scratch.engram.query(needle, { k: 3 });
    const head = await scratch.engram.currentCommit();
    await scratch.engram.checkpoint({ index: true });
    assert.equal(indexLogRows(scratch.file), 0);
    assert.equal(await scratch.engram.currentCommit(), head + 1, 'the fold is one commit');
    // Nothing left to fold: no empty commit.
    await scratch.engram.checkpoint({ index: true });
    assert.equal(await scratch.engram.currentCommit(), head + 1);
    assert.deepEqual(await scratch.engram.query(needle, { k: 3 }), before);
    assert.equal(before.matches[0]?.path, '/b1-f7');
    await scratch.engram.close();
    const reopened = await openEngram(scratch.file);
    try {
      assert.deepEqual(await reopened.query(needle, { k: 3 }), before);
      assert.equal((await reopened.verify()).ok, true);
    } finally {
      await reopened.close();
    }
  } finally {
    await scratch.cleanup();
  }
});

test("checkpoint({ index: 'due' }) folds a bulk writer's log once it is past the ordinary mark (128 log rows)", async () => {
  const scratch = await createTempEngram({ durability: 'normal', bulk: true });
  try {
    // One log row per content commit; the bulk writer itself folds only at 1,024 of them.
    for (let file = 0; file < 128; file += 1) await scratch.engram.writeFile(`/f${file}`, seededBytes(`due:${file}`, 5000));
    assert.equal(indexLogRows(scratch.file), 128);
    const head = await scratch.engram.currentCommit();
    await scratch.engram.checkpoint({ index: 'due' });
    assert.equal(indexLogRows(scratch.file), 0);
    assert.equal(await scratch.engram.currentCommit(), head + 1, 'the fold is one commit');
    const found = await scratch.engram.query(seededBytes('due:77', 5000).subarray(0, 4096), { k: 1 });
    assert.equal(found.matches[0]?.path, '/f77');
    assert.equal((await scratch.engram.verify()).ok, true);
  } finally {
    await scratch.cleanup();
  }
});
