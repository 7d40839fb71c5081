/**
 * Commit order across ingest's worker threads: a ticket lock in shared memory.
 *
 * Each batch gets a ticket when the main thread hands it out. Workers encode their batches in
 * parallel (the library encodes inside the transaction body, before the commit), then wait at
 * the end of the body until every earlier ticket has committed. So:
 * - commits land in walk order: a batch may carry the directories its own files (and later
 *   batches' files) need, and the main thread never commits while workers run;
 * - a finished commit hands the write lock on at once (`Atomics.notify`) instead of leaving the
 *   next writer asleep in SQLite's busy handler, whose back-off sleeps reach 100 ms.
 * SQLite's own write lock still guarantees correctness; the ticket only orders and wakes.
 */

/** `Atomics.waitAsync` (Node 16+; not in the ES2022 lib typings this project compiles against). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** Thrown to a batch waiting for its turn after an earlier batch failed (the earlier error is the one to report). */
export class OrderAbortedError extends Error {
  constructor() {
    super('an earlier batch of this ingest failed');
    this.name = 'OrderAbortedError';
  }
}

/** Slots of the shared Int32Array. */
const NEXT = 0;
const ABORTED = 1;

/**
 * The shared state: create it in the main thread, pass `buffer` to the workers.
 *
 * @example
 * ```ts
 * const order = new CommitOrder();
 * await order.waitFor(0); // in a worker, at the end of the transaction body
 * order.done(0);          // after the transaction settled
 * ```
 */
export class CommitOrder {
  readonly buffer: SharedArrayBuffer;
  readonly #state: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.buffer = buffer;
    this.#state = new Int32Array(buffer);
  }

  /** Resolves when `ticket` is next to commit; rejects when an earlier batch failed. */
  async waitFor(ticket: number): Promise<void> {
    for (;;) {
      if (Atomics.load(this.#state, ABORTED) !== 0) throw new OrderAbortedError();
      const next = Atomics.load(this.#state, NEXT);
      if (next === ticket) return;
      if (next > ticket) throw new Error(`internal: ticket ${ticket} waited after ${next} was next`);
      const wait = waitAsync(this.#state, NEXT, next);
      if (!wait.async) continue;
      // A pending waitAsync does not keep Node's event loop alive: this timer does, until woken.
      const keepAlive = setInterval(() => {}, 60_000);
      try {
        await wait.value;
      } finally {
        clearInterval(keepAlive);
      }
    }
  }

  /** The ticket that commits next (all below it have committed). */
  get next(): number {
    return Atomics.load(this.#state, NEXT);
  }

  /** Marks `ticket` committed: the next one may go. */
  done(ticket: number): void {
    Atomics.compareExchange(this.#state, NEXT, ticket, ticket + 1);
    Atomics.notify(this.#state, NEXT);
  }

  /** Stops every waiter: a batch failed, so later ones (which may depend on it) must not commit. */
  abort(): void {
    Atomics.store(this.#state, ABORTED, 1);
    // Wakes the waiters on NEXT whatever its value: they check ABORTED first.
    Atomics.notify(this.#state, NEXT);
  }
}
