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
import type { DecodeTask, EncodeTask, EncodeTaskResult } from './encode-pool.js';
import { EmbrError } from '../errors.js';

const pipeline = createPipeline(workerData as { profile: 'positional' | 'holographic'; chunkBytes: number });

function decode(task: DecodeTask): Uint8Array {
  const out = new Uint8Array(task.byteLengths.reduce((sum, length) => sum + length, 0));
  let offset = 0;
  for (let position = 0; position < task.offsets.length; position += 1) {
    const start = task.offsets[position];
    const byteLength = task.byteLengths[position];
    // decodeInto refuses (CORRUPT) a chunk whose length is not byteLength, and writes only checked bytes.
    pipeline.codec.decodeInto(
      task.payloads.subarray(start, start + task.lengths[position]),
      task.sha256s.subarray(32 * position, 32 * position + 32),
      out.subarray(offset, offset + byteLength),
    );
    offset += byteLength;
  }
  return out;
}

parentPort?.on('message', (task: EncodeTask | DecodeTask) => {
  try {
    if (task.kind === 'decode') {
      const bytes = decode(task);
      const result: EncodeTaskResult = { id: task.id, bytes };
      parentPort?.postMessage(result, [bytes.buffer as ArrayBuffer]);
      return;
    }
    const fresh: NewChunk[] = [];
    for (let position = 0; position < task.lengths.length; position += 1) {
      const start = task.offsets[position];
      const chunk = task.bytes.subarray(start, start + task.lengths[position]);
      // The main thread hashed every chunk for its dedup lookup: the codec reuses that hash.
      // keepVector false: the commit runs in another thread, which parses the fingerprint it needs.
      fresh.push(encodeChunk(pipeline, chunk, task.sha256s.subarray(32 * position, 32 * position + 32), false));
    }
    const packs = preparePacks(fresh);
    const result: EncodeTaskResult = { id: task.id, packs };
    // Move the pack bodies (≈ the written bytes) instead of copying them into the main thread;
    // only buffers a pack owns whole (a shared one would move its other users' bytes too).
    const transfer = packs
      .map((pack) => pack.data)
      .filter((data) => data.byteOffset === 0 && data.byteLength === data.buffer.byteLength)
      .map((data) => data.buffer as ArrayBuffer);
    parentPort?.postMessage(result, transfer);
  } catch (error) {
    const reply: EncodeTaskResult =
      error instanceof EmbrError
        ? { id: task.id, error: error.message, code: error.code, data: { ...error.data } }
        : { id: task.id, error: error instanceof Error ? error.message : String(error) };
    parentPort?.postMessage(reply);
  }
});
