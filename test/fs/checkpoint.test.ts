/**
 * `autoCheckpoint: false` and `Engram.checkpoint()`: with it, commits leave their pages in the
 * write-ahead log and only `checkpoint()` (or close) copies them into the database file; the
 * default copies them as the log grows. Checked on the database file alone (copied without its
 * `-wal`), which holds exactly what was checkpointed.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
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

test('with autoCheckpoint false, commits stay in the WAL until checkpoint() copies them into the database file', async () => {
  const scratch = await createTempEngram({ durability: 'normal', autoCheckpoint: false });
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
    const bytes = seededBytes(42, 8_000_000);
    await scratch.engram.writeFile('/big.bin', bytes);
    const copied = await dataFileHolds(scratch.file, scratch.directory, '/big.bin');
    assert.ok(copied !== undefined && Buffer.compare(copied, bytes) === 0);
  } finally {
    await scratch.cleanup();
  }
});
