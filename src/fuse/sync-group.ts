/**
 * Group sync for durability 'normal': callers that need "durable soon" (the release of a written
 * file) share one `engram.sync()` run a few milliseconds later, callers that need "durable now"
 * (fsync) get a sync at once, which also answers everyone already waiting. A sync makes every
 * commit so far durable, so one that starts after a caller's commit covers that caller.
 */
export class SyncGroup {
  private waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private timer: NodeJS.Timeout | null = null;
  /** The last round (settled or not): rounds run one after another. */
  private tail: Promise<void> = Promise.resolve();

  /**
   * @param sync makes every commit so far durable
   * @param delayMs how long a "soon" caller may wait for others to join its sync
   *
   * @example
   * ```ts
   * const group = new SyncGroup(() => engram.sync(), 10);
   * await group.soon(); // durable, with whoever else released a file in the next 10 ms
   * ```
   */
  constructor(
    private readonly sync: () => Promise<void>,
    private readonly delayMs: number,
  ) {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`delayMs must be a finite number >= 0, got ${delayMs}`);
  }

  /** Resolves once a sync that started after this call has finished (within about `delayMs`). */
  soon(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.waiters.length > 0) this.round().catch(() => undefined);
      }, this.delayMs);
    }
    return done;
  }

  /** Syncs at once (after a round already running), answering every caller of {@link soon} so far. */
  now(): Promise<void> {
    return this.round();
  }

  /** Waits for the rounds under way and syncs for anyone still waiting (before closing the engram). */
  async settle(): Promise<void> {
    if (this.waiters.length > 0) await this.round();
    else await this.tail;
  }

  private round(): Promise<void> {
    const result = this.tail.then(async () => {
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      const waiters = this.waiters;
      this.waiters = [];
      try {
        await this.sync();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
        throw error;
      }
      for (const waiter of waiters) waiter.resolve();
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}
