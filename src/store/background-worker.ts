/**
 * Worker side of a SQLite store's background connection (see `SqliteStore.holdCheckpoints` and
 * `SqliteStore.stageInBackground`): a connection of its own to the engram that
 *
 * - runs `wal_checkpoint(PASSIVE)` on request, so copying a large write's WAL frames into the
 *   database file and that file's fsync happen beside the next operations instead of inside a
 *   commit of the main thread (PASSIVE never waits for readers or writers, and the main connection
 *   keeps committing while it runs: SQLite's WAL design);
 * - stores a large write's packs in `stage` commits (`durable: false`), so the SQLite work of
 *   inserting megabytes of pack rows leaves the thread that encodes, checks and commits;
 * - looks up which SHA-256s of a large write's next batch are stored (`lookup`): its page cache
 *   holds the index pages its stage commits wrote (see `Store.lookupInBackground`).
 *
 * Requests carry an id and are answered in order, except lookups, which are answered as soon as
 * they arrive (see `queue`); `close` closes the connection, then sets the shared flag to 1 and
 * wakes the store, which waits for it at its own close.
 *
 * @example
 * ```ts
 * new Worker(new URL('./background-worker.js', import.meta.url), { workerData: { file, closed } });
 * ```
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EmbrError } from '../errors.js';
import type { PackBatch, Store } from './api.js';
import { unbatchPacks } from './pack.js';
import { openSqliteStore } from './sqlite-store.js';

/** A request to the background connection. */
export type BackgroundRequest =
  | { kind: 'checkpoint'; id: number }
  | { kind: 'stage'; id: number; timeNs: bigint; batch: PackBatch; shas: Uint8Array; holes: Uint8Array }
  | { kind: 'lookup'; id: number; shas: Uint8Array }
  | { kind: 'close'; id: number }
  | { kind: 'ping'; id: number };

/**
 * Its answer: for a stage, the chunk id of each SHA-256 asked about (null for a hole, undefined:
 * neither in the packs nor stored) and of each chunk of the batch; nothing for a checkpoint.
 */
export type BackgroundReply =
  | { id: number; ids?: Array<number | null | undefined>; chunkIds?: number[]; stageCommit?: number; found?: Uint8Array }
  | { id: number; error: string; code?: string; data?: Record<string, unknown> };

const { file, closed } = workerData as { file: string; closed: Int32Array };
let store: Store | undefined;

function opened(): Store {
  // No automatic checkpoints: this connection checkpoints when asked to.
  store ??= openSqliteStore(file, { autoCheckpoint: false });
  return store;
}

function stage(request: Extract<BackgroundRequest, { kind: 'stage' }>): { ids: Array<number | null | undefined>; chunkIds: number[]; stageCommit: number } {
  return opened().write({ kind: 'stage', timeNs: request.timeNs, durable: false }, (writer) => {
    const byKey = new Map<string, number>();
    const chunkIds: number[] = [];
    for (const pack of unbatchPacks(request.batch)) {
      const ids = writer.putPack(pack);
      pack.chunks.forEach((chunk, position) => byKey.set(Buffer.from(chunk.sha256).toString('hex'), ids[position]));
      chunkIds.push(...ids);
    }
    const ids: Array<number | null | undefined> = [];
    for (let position = 0; position < request.holes.length; position += 1) {
      if (request.holes[position] === 1) {
        ids.push(null);
        continue;
      }
      const sha = request.shas.subarray(32 * position, 32 * position + 32);
      ids.push(byKey.get(Buffer.from(sha).toString('hex')) ?? writer.chunkIdBySha256(sha));
    }
    return { ids, chunkIds, stageCommit: writer.commit };
  });
}

/** found[i] = 1 when the SHA-256 at shas[32i, 32i + 32) is a stored chunk. */
function lookup(shas: Uint8Array): Uint8Array {
  const found = new Uint8Array(shas.length / 32);
  opened().read((reader) => {
    for (let position = 0; position < found.length; position += 1) {
      if (reader.chunkIdBySha256(shas.subarray(32 * position, 32 * position + 32)) !== undefined) found[position] = 1;
    }
  });
  return found;
}

function errorReply(id: number, error: unknown): BackgroundReply {
  return error instanceof EmbrError
    ? { id, error: error.message, code: error.code, data: { ...error.data } }
    : { id, error: error instanceof Error ? error.message : String(error) };
}

function handle(request: Exclude<BackgroundRequest, { kind: 'lookup' }>): void {
  if (request.kind === 'close') {
    try {
      store?.close();
    } finally {
      store = undefined;
      Atomics.store(closed, 0, 1);
      Atomics.notify(closed, 0);
      parentPort?.close();
    }
    return;
  }
  if (request.kind === 'ping') {
    parentPort?.postMessage({ id: request.id } satisfies BackgroundReply);
    return;
  }
  if (request.kind === 'checkpoint') {
    try {
      opened().checkpoint();
    } catch {
      // BUSY (another checkpoint runs), or the disk refused: a later checkpoint copies the rest.
    }
    parentPort?.postMessage({ id: request.id } satisfies BackgroundReply);
    return;
  }
  let reply: BackgroundReply;
  try {
    reply = { id: request.id, ...stage(request) };
  } catch (error) {
    reply = errorReply(request.id, error);
  }
  parentPort?.postMessage(reply);
}

/**
 * Requests other than lookups, handled in order, one per turn of the event loop: a lookup that
 * arrives while stage commits are queued is answered at the next turn instead of after all of
 * them (a large write's next batch waits for its lookup before it is encoded, so a lookup behind
 * four queued stage commits held the encode workers up ~10 ms per four batches).
 */
const queue: Array<Exclude<BackgroundRequest, { kind: 'lookup' }>> = [];
let draining = false;

function drainOne(): void {
  const request = queue.shift();
  if (request !== undefined) handle(request);
  if (queue.length > 0 && request?.kind !== 'close') setImmediate(drainOne);
  else draining = false;
}

parentPort?.on('message', (request: BackgroundRequest) => {
  if (request.kind === 'lookup') {
    let reply: BackgroundReply;
    try {
      reply = { id: request.id, found: lookup(request.shas) };
    } catch (error) {
      reply = errorReply(request.id, error);
    }
    parentPort?.postMessage(reply);
    return;
  }
  queue.push(request);
  if (!draining) {
    draining = true;
    setImmediate(drainOne);
  }
});
