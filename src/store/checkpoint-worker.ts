/**
 * Worker side of a store's background WAL checkpoint (see `SqliteStore.holdCheckpoints`): one
 * connection of its own to the engram, running `wal_checkpoint(PASSIVE)` on request, so the copy of
 * a large write's WAL frames into the database file and that file's fsync happen beside the next
 * operations instead of inside a commit of the main thread. PASSIVE never waits for readers or
 * writers: the main connection keeps committing while it runs (SQLite's WAL design).
 *
 * Messages: `'checkpoint'` (answered with `'done'`), `'close'` (closes the connection, then sets
 * the shared flag to 1 and wakes the store, which waits for it at its own close).
 *
 * @example
 * ```ts
 * new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { file, synchronous: 'FULL', closed } });
 * ```
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

const { file, synchronous, closed } = workerData as { file: string; synchronous: 'FULL' | 'NORMAL'; closed: Int32Array };
let db: Database.Database | undefined;

parentPort?.on('message', (message: 'checkpoint' | 'close') => {
  if (message === 'close') {
    try {
      db?.close();
    } finally {
      db = undefined;
      Atomics.store(closed, 0, 1);
      Atomics.notify(closed, 0);
      parentPort?.close();
    }
    return;
  }
  try {
    if (db === undefined) {
      // No busy wait: a checkpoint that finds the lock taken is simply skipped (the next one copies more).
      db = new Database(file, { fileMustExist: true, timeout: 0 });
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma('wal_autocheckpoint = 0');
    }
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // BUSY (another checkpoint runs), or the disk refused: the WAL is copied by a later checkpoint.
  }
  parentPort?.postMessage('done');
});
