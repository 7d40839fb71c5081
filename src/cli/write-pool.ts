/**
 * Parallel file writes for `ingest`: worker threads that each open the engram and write batches
 * of files, one transaction per batch.
 *
 * Why: the library encodes chunks (SHA-256, codec, fingerprint, compression) on the thread that
 * calls `writeFile`, so one thread keeps one core busy. Each worker has its own `Engram` on the
 * same file (the library supports several openers: encoding runs outside the SQLite write
 * lock, commits serialize on it). The main thread keeps the walk and every structural change
 * (mkdir, remove, symlink, link, directory times) and drains those before it hands a batch of
 * files to a worker, so a file is never written before its directory exists.
 */
import { Worker } from 'node:worker_threads';
import { EmbrError, type ErrorCode } from '../errors.js';

/** One file for a worker to write (source bytes are read by the worker). */
export interface FileWriteJob {
  engramPath: string;
  sourcePath: string;
  sizeBytes: number;
  mode: number;
  mtimeNs: bigint;
  uid?: number;
  gid?: number;
  /** The bytes when the main thread already read them (small files); else the worker reads `sourcePath`. */
  data?: Uint8Array;
  /** The path existed as a file: mode/owner are not taken from write options, so set them after. */
  fixMetadata?: { mode?: number; uid?: number; gid?: number };
}

/** Messages between the pool and its workers. */
export type WorkerRequest = { kind: 'batch'; id: number; files: FileWriteJob[] } | { kind: 'close' };
export type WorkerReply =
  | { kind: 'ready' }
  | { kind: 'done'; id: number }
  | { kind: 'failed'; id: number; code?: ErrorCode; message: string; data?: Record<string, unknown>; nodeCode?: string; path?: string }
  | { kind: 'closed' };

interface Slot {
  worker: Worker;
  busy: Promise<void> | undefined;
}

/**
 * A fixed set of worker threads writing file batches.
 *
 * @example
 * ```ts
 * const pool = await FileWritePool.start('data.engram', 2, (files, bytes) => progress.advance(files, bytes));
 * await pool.submit([{ engramPath: '/a', sourcePath: './a', sizeBytes: 1, mode: 0o644, mtimeNs: 0n }]);
 * await pool.close();
 * ```
 */
export class FileWritePool {
  readonly #slots: Slot[];
  readonly #onDone: (files: number, bytes: number) => void;
  #nextId = 1;
  #failure: unknown;
  #commits = 0;

  private constructor(slots: Slot[], onDone: (files: number, bytes: number) => void) {
    this.#slots = slots;
    this.#onDone = onDone;
  }

  /** Starts `workerCount` workers, each opening `engramFile` (which must exist). */
  static async start(engramFile: string, workerCount: number, onDone: (files: number, bytes: number) => void): Promise<FileWritePool> {
    const slots: Slot[] = [];
    for (let index = 0; index < workerCount; index += 1) {
      const worker = new Worker(new URL('./ingest-worker.js', import.meta.url), { workerData: { engramFile } });
      await new Promise<void>((resolve, reject) => {
        const onMessage = (reply: WorkerReply) => {
          if (reply.kind === 'ready') {
            worker.off('error', reject);
            worker.off('message', onMessage);
            resolve();
          } else if (reply.kind === 'failed') {
            reject(toError(reply));
          }
        };
        worker.on('message', onMessage);
        worker.once('error', reject);
      });
      slots.push({ worker, busy: undefined });
    }
    return new FileWritePool(slots, onDone);
  }

  /** Transactions committed by the workers. */
  get commits(): number {
    return this.#commits;
  }

  #rethrow(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Hands a batch to the first free worker, waiting while all are busy. */
  async submit(files: FileWriteJob[]): Promise<void> {
    this.#rethrow();
    let slot = this.#slots.find((candidate) => candidate.busy === undefined);
    while (slot === undefined) {
      await Promise.race(this.#slots.map((candidate) => candidate.busy));
      this.#rethrow();
      slot = this.#slots.find((candidate) => candidate.busy === undefined);
    }
    const id = this.#nextId;
    this.#nextId += 1;
    const chosen = slot;
    const bytes = files.reduce((sum, file) => sum + file.sizeBytes, 0);
    chosen.busy = new Promise<void>((resolve) => {
      const onMessage = (reply: WorkerReply) => {
        if ((reply.kind === 'done' || reply.kind === 'failed') && reply.id === id) {
          chosen.worker.off('message', onMessage);
          chosen.worker.off('error', onError);
          chosen.busy = undefined;
          if (reply.kind === 'done') {
            this.#commits += 1;
            this.#onDone(files.length, bytes);
          } else {
            this.#failure ??= toError(reply);
          }
          resolve();
        }
      };
      const onError = (error: Error) => {
        chosen.worker.off('message', onMessage);
        chosen.busy = undefined;
        this.#failure ??= error;
        resolve();
      };
      chosen.worker.on('message', onMessage);
      chosen.worker.once('error', onError);
    });
    const request: WorkerRequest = { kind: 'batch', id, files };
    chosen.worker.postMessage(request);
  }

  /** Waits for every batch in flight; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.#slots.map((slot) => slot.busy));
    this.#rethrow();
  }

  /** Waits for the batches in flight, closes the workers' engrams and stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.#slots.map((slot) => slot.busy));
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
