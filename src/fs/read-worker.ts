/**
 * Worker side of the read pool (see read-pool.ts): large reads of an open file, served from a
 * read-only SQLite connection of its own, so the chunk lookups, pack reads, zstd, decoding and
 * SHA-256 checks of sequential reads run beside the main thread instead of on it.
 *
 * @example
 * ```ts
 * new Worker(new URL('./read-worker.js', import.meta.url), { workerData: { file: 'a.engram', profile: 'positional', chunkBytes: 4096 } });
 * ```
 */
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { EmbrError } from '../errors.js';
import { LIVE } from '../store/api.js';
import type { Store } from '../store/api.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { createPipeline } from './encode.js';
import { readRange } from './operations.js';
import type { ReadTask, ReadTaskResult } from './read-pool.js';

const { file, identity, profile, chunkBytes, mmapBytes } = workerData as {
  file: string;
  identity: string;
  profile: 'positional' | 'holographic';
  chunkBytes: number;
  mmapBytes: number;
};
const pipeline = createPipeline({ profile, chunkBytes });
let store: Store | undefined;

/** Thrown when this worker cannot serve at all: the pool stops using workers, the main thread reads. */
class Unusable extends Error {}

/** Device and inode of the file now at `path`. */
function fileIdentity(path: string): string {
  const stat = statSync(path, { bigint: true });
  return `${stat.dev}:${stat.ino}`;
}

function openStore(): Store {
  // The main thread opened and checked this file already: a second, read-only connection, to the
  // same file (not whatever was renamed over its path since).
  try {
    if (fileIdentity(file) !== identity) throw new Unusable(`${file} is no longer the file the engram was opened from`);
    const opened = openSqliteStore(file, { readOnly: true, checkOnOpen: false, mmapBytes });
    if (fileIdentity(file) !== identity) {
      opened.close();
      throw new Unusable(`${file} is no longer the file the engram was opened from`);
    }
    return opened;
  } catch (error) {
    throw error instanceof Unusable ? error : new Unusable(`cannot open ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function read(task: ReadTask): { id: number; data: Uint8Array; version: number } {
  store ??= openStore();
  return store.read((reader) => {
    // One read transaction: a snapshot at least as new as every commit made before the request.
    const row = reader.inode(task.ino, LIVE);
    if (row === undefined) throw new EmbrError('NOT_FOUND', `${task.path}: the file was removed by another process`, { path: task.path });
    const into = task.spare === undefined ? undefined : new Uint8Array(task.spare);
    return { id: task.id, data: readRange(reader, pipeline, LIVE, task.ino, row.size, task.offset, task.length, undefined, into), version: row.fromCommit };
  });
}

parentPort?.on('message', (task: ReadTask | { kind: 'close'; id: number }) => {
  if (task.kind === 'close') {
    store?.close();
    store = undefined;
    parentPort?.postMessage({ id: task.id, closed: true });
    return;
  }
  try {
    const result = read(task);
    parentPort?.postMessage(result, [result.data.buffer as ArrayBuffer]);
  } catch (error) {
    const reply: ReadTaskResult =
      error instanceof EmbrError
        ? { id: task.id, error: error.message, code: error.code, data: { ...error.data } }
        : { id: task.id, error: error instanceof Error ? error.message : String(error), unusable: error instanceof Unusable };
    parentPort?.postMessage(reply);
  }
});
