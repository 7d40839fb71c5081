/**
 * Groups many small mutations into one engram transaction, so ingesting thousands of small
 * files costs a few hundred commits (and fsyncs) instead of one per file. One batch commits
 * while the next one fills: at most two batches are held in memory.
 */
import type { Engram, Transaction } from '../fs/api.js';
import { isEmbrError } from '../errors.js';

/** Attempts of a commit that meets BUSY (another writer held the lock past the busy timeout). */
const busyAttempts = 20;

/**
 * Runs `commit` again while it fails with BUSY. Ingest has several writers on one engram (its
 * worker threads and the main thread); on a loaded machine one of them can wait longer than
 * SQLite's busy timeout. A failed transaction applied nothing, so running it again is safe.
 *
 * @example
 * ```ts
 * await retryWhileBusy(() => engram.transaction(async (tx) => { await tx.mkdir('/a'); }));
 * ```
 */
export async function retryWhileBusy<T>(commit: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await commit();
    } catch (error) {
      if (!isEmbrError(error, 'BUSY') || attempt >= busyAttempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * attempt)));
    }
  }
}

/** One queued mutation, applied inside the batch's transaction. */
export type BatchOperation = (tx: Transaction) => Promise<void>;

/** Limits of one batch (see docs/design/cli.md for why these values). */
export interface BatchLimits {
  maxOperations: number;
  maxBytes: number;
}

/** The default limits: 512 operations or 64 MiB of file data per commit. */
export const defaultBatchLimits: BatchLimits = { maxOperations: 512, maxBytes: 64 * 1024 * 1024 };

/**
 * A write-behind queue of transaction operations.
 *
 * @example
 * ```ts
 * const batch = new TransactionBatch(engram);
 * await batch.add(async (tx) => { await tx.writeFile('/a', data); }, data.length);
 * await batch.drain();
 * ```
 */
export class TransactionBatch {
  readonly #engram: Engram;
  readonly #limits: BatchLimits;
  #operations: BatchOperation[] = [];
  #bytes = 0;
  #inFlight: Promise<void> | undefined;
  #onCommitted: ((operations: number, bytes: number) => void) | undefined;
  #commits = 0;

  constructor(engram: Engram, limits: BatchLimits = defaultBatchLimits, onCommitted?: (operations: number, bytes: number) => void) {
    this.#engram = engram;
    this.#limits = limits;
    this.#onCommitted = onCommitted;
  }

  /** Number of transactions committed so far. */
  get commits(): number {
    return this.#commits;
  }

  /** Queues an operation carrying `bytes` of data; starts a commit when the batch is full. */
  async add(operation: BatchOperation, bytes: number): Promise<void> {
    this.#operations.push(operation);
    this.#bytes += bytes;
    if (this.#operations.length >= this.#limits.maxOperations || this.#bytes >= this.#limits.maxBytes) {
      await this.flush();
    }
  }

  /** Starts committing what is queued (waiting for the previous commit first). */
  async flush(): Promise<void> {
    if (this.#inFlight !== undefined) {
      const previous = this.#inFlight;
      this.#inFlight = undefined;
      await previous;
    }
    if (this.#operations.length === 0) return;
    const operations = this.#operations;
    const bytes = this.#bytes;
    this.#operations = [];
    this.#bytes = 0;
    const commit = retryWhileBusy(() =>
      this.#engram.transaction(async (tx) => {
        for (const operation of operations) await operation(tx);
      }),
    ).then(() => {
        this.#commits += 1;
        this.#onCommitted?.(operations.length, bytes);
      });
    // The rejection is observed by the next flush/drain; this keeps Node from reporting it as unhandled meanwhile.
    commit.catch(() => {});
    this.#inFlight = commit;
  }

  /** Drops what is queued and waits for a commit in flight, ignoring its failure (used after an error). */
  async abandon(): Promise<void> {
    this.#operations = [];
    this.#bytes = 0;
    const last = this.#inFlight;
    this.#inFlight = undefined;
    if (last !== undefined) await last.catch(() => {});
  }

  /** Commits everything queued and waits until it is durable. */
  async drain(): Promise<void> {
    await this.flush();
    if (this.#inFlight !== undefined) {
      const last = this.#inFlight;
      this.#inFlight = undefined;
      await last;
    }
  }
}
