/**
 * One worker thread that serves large reads of open files (`FileHandle.read` of at least
 * {@link POOL_HANDLE_READ_MIN_BYTES}) from its own read-only connection to the engram file, so a
 * sequential reader (the FUSE mount's read-ahead) has its next megabyte looked up, decompressed,
 * decoded and SHA-256-checked on a second core while the main thread answers requests.
 *
 * Used only by engrams opened with `readWorker: true` (the FUSE mount).
 *
 * Consistency: the worker reads in its own read transaction, started after the request was
 * posted, so it sees every commit this process made before the read (commits are synchronous) and
 * any newer one; that is the same "some moment between call and answer" a main-thread read gives.
 * Every chunk is decoded and checked against its SHA-256 exactly as on the main thread (the same
 * `readRange`). The worker opens the file the engram was opened from (same device and inode, or
 * it refuses and the pool turns itself off), read-only, without the open-time integrity check the
 * main connection already made. Failures of the pool itself (a worker that cannot start, open or
 * crashes) are plain Errors, after which the caller reads on its own thread; codec and store
 * verdicts (CORRUPT, NOT_FOUND, ...) arrive as the same EmbrError the main thread would throw.
 *
 * @example
 * ```ts
 * const pool = readPool('a.engram', 'positional', 4096);
 * const { data } = await pool!.read(ino, '/a', 0, 1 << 20);
 * ```
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread } from 'node:worker_threads';
import type { CodecProfileName } from '../codec/api.js';
import { EmbrError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { pickWorker, type PoolWorker } from './pool-worker.js';

/**
 * Answer buffers given back ({@link ReadPool.release}) and kept for the next reads: touching fresh
 * pages costs about 11 us per 4 KiB page on the machines we measure on (a VM), more than copying
 * and hashing them, and a sequential reader needs a new 1 MiB buffer per read otherwise.
 */
export const READ_SPARE_BUFFERS = 4;

/** Handle reads at least this large go to the worker (smaller ones: a round trip costs more than the read). */
export const POOL_HANDLE_READ_MIN_BYTES = 256 * 1024;

/**
 * The worker's memory map of the engram file (`PRAGMA mmap_size`): pack blobs span 30-odd
 * overflow pages each, which a map reads without a read(2) per page (a pack read costs half).
 */
export const READ_WORKER_MMAP_BYTES = 0x7fff0000;

/**
 * Read workers per engram. One: a second worker (two read-ahead buffers decoded at once) measured
 * no better on this 2-core machine, where the main thread, the reader and the kernel share the
 * other core (docs/design/fuse.md, reads).
 */
export const READ_WORKERS = 1;

/** One read for the worker. */
export interface ReadTask {
  kind: 'read';
  id: number;
  ino: number;
  /** For error messages only. */
  path: string;
  offset: number;
  length: number;
  /** Memory of an earlier answer, given back to decode into (moved, never shared). */
  spare?: ArrayBuffer;
}

export type ReadTaskResult =
  | { id: number; data: Uint8Array; version: number }
  | { id: number; error: string; code?: string; data?: Record<string, unknown>; unusable?: boolean };

interface Waiter {
  resolve: (value: { data: Uint8Array; version: number }) => void;
  reject: (error: Error) => void;
  owner: PoolWorker;
}

/** The read workers of one engram file (spawned on first use, each with its own connection). */
export class ReadPool {
  private readonly workers: PoolWorker[] = [];
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;
  private closed = false;
  /** Reads the workers answered with bytes (for tests and diagnostics). */
  served = 0;
  /** Reads sent with a given-back buffer to decode into (for tests and diagnostics). */
  reused = 0;
  /** Set when a worker could not open the engram file or died: every read stays on the caller's thread. */
  private disabled = false;
  /** Answer buffers given back, oldest first; moved to the worker with the next reads. */
  private readonly spares: ArrayBuffer[] = [];
  /** The answers this pool handed out, so {@link release} takes back only those (weakly held). */
  private readonly answers = new WeakSet<ArrayBuffer>();

  constructor(
    private readonly file: string,
    /** Device and inode of the file the engram was opened from (the worker opens the same). */
    private readonly identity: string,
    private readonly profile: CodecProfileName,
    private readonly chunkBytes: number,
    private readonly size: number,
  ) {}

  private spawn(): PoolWorker {
    const worker = new Worker(new URL('./read-worker.js', import.meta.url), {
      workerData: { file: this.file, identity: this.identity, profile: this.profile, chunkBytes: this.chunkBytes, mmapBytes: READ_WORKER_MMAP_BYTES },
      // `--input-type` (node -e) and similar entry flags make a file-based worker fail to start.
      execArgv: process.execArgv.filter((flag) => !flag.startsWith('--input-type') && !flag.startsWith('--eval') && flag !== '-e'),
    });
    const entry: PoolWorker = { worker, busy: 0 };
    worker.on('message', (result: ReadTaskResult | { id: number; closed: true }) => {
      const waiter = this.waiting.get(result.id);
      if (waiter === undefined) return;
      this.waiting.delete(result.id);
      entry.busy -= 1;
      if (entry.busy === 0) worker.unref();
      if ('closed' in result) waiter.resolve({ data: new Uint8Array(0), version: 0 });
      else if ('error' in result) {
        // The worker cannot reach the file (renamed over, unreadable): stop asking workers.
        if (result.unusable === true) this.disabled = true;
        waiter.reject(result.code === undefined ? new Error(`read worker failed: ${result.error}`) : new EmbrError(result.code as ErrorCode, result.error, result.data ?? {}));
      } else {
        this.served += 1;
        this.answers.add(result.data.buffer as ArrayBuffer);
        waiter.resolve({ data: result.data, version: result.version });
      }
    });
    const fail = (error: Error): void => {
      // A crashed worker fails its reads (the callers read on their own thread) and turns the
      // pool off: a worker that cannot start would otherwise be spawned again for every read.
      if (!this.closed) this.disabled = true;
      const index = this.workers.indexOf(entry);
      if (index >= 0) this.workers.splice(index, 1);
      for (const [id, waiter] of this.waiting) {
        if (waiter.owner !== entry) continue;
        this.waiting.delete(id);
        waiter.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`read worker exited with code ${code}`)));
    worker.unref();
    this.workers.push(entry);
    return entry;
  }

  private pick(): PoolWorker {
    return pickWorker(this.workers, this.size, () => this.spawn());
  }

  private post(owner: PoolWorker, message: ReadTask | { kind: 'close'; id: number }): Promise<{ data: Uint8Array; version: number }> {
    owner.busy += 1;
    owner.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(message.id, { resolve, reject, owner });
      if (message.kind === 'read' && message.spare !== undefined) owner.worker.postMessage(message, [message.spare]);
      else owner.worker.postMessage(message);
    });
  }

  /**
   * Takes back the memory of an answer of this pool that its reader is done with (see
   * FileHandle.releaseReadBuffer); anything else, or a detached buffer, is ignored.
   */
  release(data: Uint8Array): void {
    const buffer = data.buffer as ArrayBuffer;
    if (!this.answers.has(buffer) || buffer.byteLength === 0 || this.closed) return;
    this.answers.delete(buffer);
    if (this.spares.length >= READ_SPARE_BUFFERS) this.spares.shift();
    this.spares.push(buffer);
  }

  /** A spare of at least `length` bytes, if one was given back. */
  private spareFor(length: number): ArrayBuffer | undefined {
    const index = this.spares.findIndex((spare) => spare.byteLength >= length);
    return index < 0 ? undefined : this.spares.splice(index, 1)[0];
  }

  /** Reads `length` bytes at `offset` of the live inode `ino` (`path` names it in errors). */
  read(ino: number, path: string, offset: number, length: number): Promise<{ data: Uint8Array; version: number }> {
    if (this.closed || this.disabled) return Promise.reject(new Error('read pool is closed or disabled'));
    const id = this.nextId;
    this.nextId += 1;
    const spare = this.spareFor(length);
    if (spare !== undefined) this.reused += 1;
    return this.post(this.pick(), { kind: 'read', id, ino, path, offset, length, spare });
  }

  /** Closes each worker's connection, then the worker. Reads still waiting are answered first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.workers.slice().map(async (owner) => {
        const id = this.nextId;
        this.nextId += 1;
        try {
          await this.post(owner, { kind: 'close', id });
        } catch {
          // The worker died already: nothing left to close.
        }
        await owner.worker.terminate();
      }),
    );
  }
}

/**
 * A read pool for an engram file, or undefined off the main thread, on a single core, or with
 * `EMBRFS_READ_THREADS=0`.
 *
 * @example
 * ```ts
 * const pool = readPool('a.engram', 'positional', 4096);
 * ```
 */
export function readPool(file: string, profile: CodecProfileName, chunkBytes: number): ReadPool | undefined {
  if (!isMainThread || availableParallelism() < 2 || process.env.EMBRFS_READ_THREADS === '0') return undefined;
  let identity: string;
  try {
    const stat = statSync(file, { bigint: true });
    identity = `${stat.dev}:${stat.ino}`;
  } catch {
    return undefined;
  }
  return new ReadPool(file, identity, profile, chunkBytes, Math.min(READ_WORKERS, availableParallelism()));
}
