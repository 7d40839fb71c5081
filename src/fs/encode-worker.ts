/**
 * Worker side of the encode pool (see encode-pool.ts): encodes fresh chunks (codec payload and
 * fingerprint) and compresses them into packs, off the main thread.
 *
 * @example
 * ```ts
 * new Worker(new URL('./encode-worker.js', import.meta.url), { workerData: { profile: 'positional', chunkBytes: 4096 } });
 * ```
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { NewChunk } from '../store/api.js';
import { preparePacks } from '../store/pack.js';
import { createPipeline, encodeChunk } from './encode.js';
import type { EncodeTask, EncodeTaskResult } from './encode-pool.js';

const pipeline = createPipeline(workerData as { profile: 'positional' | 'holographic'; chunkBytes: number });

parentPort?.on('message', (task: EncodeTask) => {
  try {
    const fresh: NewChunk[] = [];
    for (let position = 0; position < task.lengths.length; position += 1) {
      const start = task.offsets[position];
      fresh.push(encodeChunk(pipeline, task.bytes.subarray(start, start + task.lengths[position])));
    }
    const result: EncodeTaskResult = { id: task.id, packs: preparePacks(fresh) };
    parentPort?.postMessage(result);
  } catch (error) {
    parentPort?.postMessage({ id: task.id, error: error instanceof Error ? error.message : String(error) });
  }
});
