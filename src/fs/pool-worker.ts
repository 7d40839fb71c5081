/**
 * What the library's worker pools (encode, read) share: a worker with its count of requests in
 * flight, and the rule for choosing one.
 */
import type { Worker } from 'node:worker_threads';

/** A pool's worker and the number of its requests not answered yet. */
export interface PoolWorker {
  worker: Worker;
  busy: number;
}

/**
 * An idle worker, else a new one while the pool is below `size`, else the least busy.
 *
 * @example
 * ```ts
 * const owner = pickWorker(this.workers, this.size, () => this.spawn());
 * ```
 */
export function pickWorker<T extends PoolWorker>(workers: readonly T[], size: number, spawn: () => T): T {
  const idle = workers.find((entry) => entry.busy === 0);
  if (idle !== undefined) return idle;
  if (workers.length < size) return spawn();
  return workers.reduce((least, entry) => (entry.busy < least.busy ? entry : least));
}
