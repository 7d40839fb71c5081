/**
 * The benchmark contract. Every `*.bench.ts` beside the code exports
 * `run(context: BenchContext): Promise<void>` and calls `context.emit` once per result line.
 * `scripts/run-bench.mjs` runs them (`npm run bench -- --json`), and `src/benchmark.test.ts`
 * runs each at `size: 'small'` under `npm test` so they never rot.
 *
 * Machines here are shared and noisy: every throughput figure is a median of several runs, and
 * every bench emits a yardstick measured on the same bytes in the same run (SHA-256, `cp`) so
 * ratios are comparable across machines.
 *
 * @example
 * ```ts
 * export async function run(context: BenchContext): Promise<void> {
 *   const bytes = new Uint8Array(context.size === 'small' ? 1 << 16 : 32 << 20);
 *   const seconds = medianSeconds(5, () => { work(bytes); });
 *   context.emit({ bench: 'example', inputBytes: bytes.length, MBps: megabytesPerSecond(bytes.length, seconds) });
 * }
 * ```
 */
import { createHash } from 'node:crypto';

export interface BenchContext {
  /** 'small' under `npm test` (seconds), 'real' for measurement. */
  size: 'small' | 'real';
  /** Emits one machine-readable result line. Include a `bench` field naming the benchmark. */
  emit(record: Record<string, unknown>): void;
  /** A scratch directory, removed after the bench. */
  tmpDir: string;
}

/** Median wall-clock seconds of `runs` executions of `body` (after one warm-up). */
export async function medianSeconds(runs: number, body: () => unknown | Promise<unknown>): Promise<number> {
  await body();
  const samples: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const start = process.hrtime.bigint();
    await body();
    samples.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(samples);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Megabytes (10^6 bytes) per second, rounded to 0.1. */
export function megabytesPerSecond(bytes: number, seconds: number): number {
  return Math.round((bytes / 1e6 / seconds) * 10) / 10;
}

/** SHA-256 throughput over `buffers` in MB/s: the yardstick every bench reports beside its own figures. */
export async function sha256MegabytesPerSecond(buffers: Uint8Array[], runs = 5): Promise<number> {
  const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
  const seconds = await medianSeconds(runs, () => {
    for (const buffer of buffers) createHash('sha256').update(buffer).digest();
  });
  return megabytesPerSecond(total, seconds);
}
