/**
 * Parallel writes for `ingest`: worker threads that each open the engram and apply batches of
 * tree ops (directories, removals, symlinks, files), one transaction per batch.
 *
 * Why: the library encodes chunks (SHA-256, codec, fingerprint, compression) on the thread that
 * calls `writeFile`, inside the transaction body, so one thread keeps one core busy. Each worker
 * has its own `Engram` on the same file. Workers encode their batches in parallel; the commits
 * then land in the order the batches were handed out ({@link CommitOrder}), so a batch can carry
 * the directories its files need and the main thread commits nothing while the workers run.
 *
 * Workers open the engram with `durability: 'normal'` (no fsync per commit); the caller makes
 * the whole ingest durable with one `sync()` at the end.
 */
import { Worker } from 'node:worker_threads';
import { EmbrError, type ErrorCode } from '../errors.js';
import { CommitOrder } from './commit-order.js';
import type { TreeOp } from './tree-ops.js';

export type { FileWriteJob } from './tree-ops.js';

/** Messages between the pool and its workers. `ticket`: the batch's place in the commit order. */
export type WorkerRequest = { kind: 'batch'; id: number; ticket: number; ops: TreeOp[] } | { kind: 'close' };
export type WorkerReply =
  | { kind: 'ready' }
  | { kind: 'done'; id: number }
  | { kind: 'failed'; id: number; code?: ErrorCode; message: string; data?: Record<string, unknown>; nodeCode?: string; path?: string; aborted?: boolean }
  | { kind: 'closed' };

/** What a worker is started with. */
export interface WorkerSetup {
  engramFile: string;
  /** The shared state of {@link CommitOrder}. */
  order: SharedArrayBuffer;
}

interface Slot {
  worker: Worker;
  /** Its batches not answered yet (at most {@link batchesPerWorker}). */
  busy: Set<Promise<void>>;
  /** The ticket of the last batch it was given (-1: none yet). */
  lastTicket: number;
}

/**
 * Batches a worker holds at once: one waiting for its commit turn (or committing), the next one
 * encoding meanwhile. With one, a worker that has encoded sits idle until the other worker's
 * commit is done (bench:peers corpus: ~0.5-1.9 s of idle worker time in a 4.7 s ingest).
 */
const batchesPerWorker = 2;

/** Files and bytes a batch writes (for progress). */
function batchSize(ops: TreeOp[]): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const op of ops) {
    if (op.kind !== 'write') continue;
    files += 1;
    bytes += op.job.sizeBytes;
  }
  return { files, bytes };
}

/**
 * The ArrayBuffers of the file bytes that can be moved to the worker instead of copied: a
 * buffer that is whole (not a slice of Node's shared pool) and listed once.
 */
function transferables(ops: TreeOp[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const op of ops) {
    const data = op.kind === 'write' ? op.job.data : undefined;
    if (data === undefined || !(data.buffer instanceof ArrayBuffer)) continue;
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) continue;
    buffers.add(data.buffer);
  }
  return [...buffers];
}

/**
 * A fixed set of worker threads applying op batches in commit order.
 *
 * @example
 * ```ts
 * const pool = await FileWritePool.start('data.engram', 2, (files, bytes) => progress.advance(files, bytes));
 * await pool.submit([{ kind: 'mkdir', path: '/a', mode: 0o755, mtimeNs: 0n }]);
 * await pool.close();
 * ```
 */
export class FileWritePool {
  readonly #slots: Slot[];
  readonly #onDone: (files: number, bytes: number) => void;
  readonly #order: CommitOrder;
  #nextId = 1;
  #nextTicket = 0;
  #failure: unknown;
  /** A batch stopped because an earlier one failed: reported only when the cause is unknown. */
  #aborted: unknown;
  #commits = 0;

  private constructor(slots: Slot[], order: CommitOrder, onDone: (files: number, bytes: number) => void) {
    this.#slots = slots;
    this.#order = order;
    this.#onDone = onDone;
  }

  /** Starts `workerCount` workers, each opening `engramFile` (which must exist). */
  static async start(engramFile: string, workerCount: number, onDone: (files: number, bytes: number) => void): Promise<FileWritePool> {
    const order = new CommitOrder();
    const setup: WorkerSetup = { engramFile, order: order.buffer };
    const starting = Array.from({ length: workerCount }, () => {
      const worker = new Worker(new URL('./ingest-worker.js', import.meta.url), { workerData: setup });
      return new Promise<Slot>((resolve, reject) => {
        const onMessage = (reply: WorkerReply) => {
          if (reply.kind === 'ready') {
            worker.off('error', reject);
            worker.off('message', onMessage);
            resolve({ worker, busy: new Set(), lastTicket: -1 });
          } else if (reply.kind === 'failed') {
            reject(toError(reply));
          }
        };
        worker.on('message', onMessage);
        worker.once('error', reject);
      });
    });
    const started = await Promise.allSettled(starting);
    const slots = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
      throw (failed as PromiseRejectedResult).reason;
    }
    return new FileWritePool(slots, order, onDone);
  }

  /** Transactions committed by the workers. */
  get commits(): number {
    return this.#commits;
  }

  /** Throws the first real failure (after every batch in flight answered, so the cause is known). */
  async #rethrow(): Promise<void> {
    if (this.#failure === undefined && this.#aborted === undefined) return;
    await this.#settled();
    throw this.#failure ?? this.#aborted;
  }

  /**
   * Hands a batch to the first free worker, waiting while all are busy. Batches commit in the
   * order they are submitted. The file bytes in `ops` are moved to the worker where possible:
   * the caller must not use them afterwards.
   */
  async submit(ops: TreeOp[]): Promise<void> {
    await this.#rethrow();
    let slot = this.#leastBusy();
    while (slot === undefined) {
      await Promise.race(this.#slots.flatMap((candidate) => [...candidate.busy]));
      await this.#rethrow();
      slot = this.#leastBusy();
    }
    const id = this.#nextId;
    this.#nextId += 1;
    const ticket = this.#nextTicket;
    this.#nextTicket += 1;
    const chosen = slot;
    const { files, bytes } = batchSize(ops);
    const answered = new Promise<void>((resolve) => {
      const onMessage = (reply: WorkerReply) => {
        if ((reply.kind === 'done' || reply.kind === 'failed') && reply.id === id) {
          chosen.worker.off('message', onMessage);
          chosen.worker.off('error', onError);
          chosen.busy.delete(answered);
          if (reply.kind === 'done') {
            this.#commits += 1;
            this.#onDone(files, bytes);
          } else if (reply.aborted === true) {
            this.#aborted ??= toError(reply);
          } else {
            this.#failure ??= toError(reply);
          }
          resolve();
        }
      };
      const onError = (error: Error) => {
        chosen.worker.off('message', onMessage);
        chosen.busy.delete(answered);
        this.#failure ??= error;
        // Later batches may depend on this one: none of them may commit now.
        this.#order.abort();
        resolve();
      };
      chosen.worker.on('message', onMessage);
      chosen.worker.once('error', onError);
    });
    chosen.busy.add(answered);
    chosen.lastTicket = ticket;
    const request: WorkerRequest = { kind: 'batch', id, ticket, ops };
    chosen.worker.postMessage(request, transferables(ops));
  }

  /**
   * The worker holding the fewest batches, if one can take another; between equals, the one given
   * its last batch longest ago: its batches commit first, so it is free first (given the other,
   * the new batch waited behind that worker's commit before it could start encoding, and every
   * later commit waited for that encoding: traced, 0.3 s).
   */
  #leastBusy(): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.#slots) {
      if (slot.busy.size >= batchesPerWorker) continue;
      if (best === undefined || slot.busy.size < best.busy.size || (slot.busy.size === best.busy.size && slot.lastTicket < best.lastTicket)) best = slot;
    }
    return best;
  }

  /** Settles when every batch in flight is answered. */
  async #settled(): Promise<void> {
    await Promise.all(this.#slots.flatMap((slot) => [...slot.busy]));
  }

  /** Waits for every batch in flight; throws the first failure. */
  async drain(): Promise<void> {
    await this.#settled();
    await this.#rethrow();
  }

  /** Waits for the batches in flight, closes the workers' engrams and stops the threads. */
  async close(): Promise<void> {
    await this.#settled();
    await Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              void slot.worker.terminate().then(() => resolve());
            }, 30_000);
            slot.worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            const request: WorkerRequest = { kind: 'close' };
            slot.worker.postMessage(request);
          }),
      ),
    );
  }
}

function toError(reply: Extract<WorkerReply, { kind: 'failed' }>): Error {
  if (reply.code !== undefined) return new EmbrError(reply.code, reply.message, reply.data ?? {});
  // Keep Node's errno code and path so the CLI phrases it like an error of the main thread.
  return Object.assign(new Error(reply.message), reply.nodeCode === undefined ? {} : { code: reply.nodeCode, path: reply.path });
}
