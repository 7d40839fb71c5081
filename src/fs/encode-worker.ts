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
import { batchPacks, preparePacks } from '../store/pack.js';
import { createPipeline, encodeChunk, encodePositionalBatch, isAllZero } from './encode.js';
import type { DecodeTask, EncodeHeldTask, EncodeTask, EncodeTaskResult, HashResult, HashTask } from './encode-pool.js';
import type { PackBatch, PreparedPack } from '../store/api.js';
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

/** Chunks of {@link HashTask}s waiting for their {@link EncodeHeldTask}, by the hash task's id. */
const held = new Map<number, { bytes: Uint8Array; chunkBytes: number; sha256s: Uint8Array }>();

function hashChunks(task: HashTask): HashResult {
  const count = Math.ceil(task.bytes.length / task.chunkBytes);
  const sha256s = new Uint8Array(32 * count);
  const holes = new Uint8Array(count);
  // Holes (all-zero chunks) get no hash; each run of other chunks is hashed in one call.
  let runStart = 0;
  for (let chunk = 0; chunk <= count; chunk += 1) {
    if (chunk < count && !isAllZero(task.bytes.subarray(chunk * task.chunkBytes, Math.min(task.bytes.length, (chunk + 1) * task.chunkBytes)))) continue;
    if (chunk > runStart) {
      pipeline.sha256Chunks(task.bytes.subarray(runStart * task.chunkBytes, Math.min(task.bytes.length, chunk * task.chunkBytes)), task.chunkBytes, sha256s.subarray(32 * runStart, 32 * chunk));
    }
    if (chunk < count) holes[chunk] = 1;
    runStart = chunk + 1;
  }
  held.set(task.id, { bytes: task.bytes, chunkBytes: task.chunkBytes, sha256s });
  return { sha256s: sha256s.slice(), holes };
}

function encodeHeld(task: EncodeHeldTask): PackBatch {
  const part = held.get(task.heldId);
  held.delete(task.heldId);
  if (part === undefined) throw new Error(`no held chunks for task ${task.heldId}`);
  // The positional profile's payloads and fingerprints go straight into the batch's packs and columns.
  if (pipeline.codec.profile === 'positional') return encodePositionalBatch(part.bytes, part.chunkBytes, part.sha256s, task.select);
  const fresh: NewChunk[] = [];
  for (let chunk = 0; chunk < task.select.length; chunk += 1) {
    if (task.select[chunk] !== 1) continue;
    const bytes = part.bytes.subarray(chunk * part.chunkBytes, Math.min(part.bytes.length, (chunk + 1) * part.chunkBytes));
    // The vector is kept: the batch carries its indices, so the committing thread need not parse the fingerprint.
    fresh.push(encodeChunk(pipeline, bytes, part.sha256s.subarray(32 * chunk, 32 * chunk + 32), true));
  }
  return batchPacks(preparePacks(fresh), true);
}

/**
 * Puts every chunk's serialized fingerprint of `packs` into one buffer (each chunk keeps a view of
 * it), so a posted result clones one ArrayBuffer instead of one per chunk: the receiving thread
 * then allocates one backing store per message, not ~250 per MiB written.
 */
function shareFingerprints(packs: PreparedPack[]): void {
  let total = 0;
  for (const pack of packs) for (const chunk of pack.chunks) total += chunk.fingerprint.byteLength;
  const shared = new Uint8Array(total);
  let offset = 0;
  for (const pack of packs) {
    for (const chunk of pack.chunks) {
      const length = chunk.fingerprint.byteLength;
      shared.set(chunk.fingerprint, offset);
      chunk.fingerprint = shared.subarray(offset, offset + length);
      offset += length;
    }
  }
}

/** The buffers of the pack bodies that own them whole (moving a shared buffer would move its other users' bytes too). */
function ownedBodies(packs: ReadonlyArray<{ data: Uint8Array }>): ArrayBuffer[] {
  return packs
    .map((pack) => pack.data)
    .filter((data) => data.byteOffset === 0 && data.byteLength === data.buffer.byteLength)
    .map((data) => data.buffer as ArrayBuffer);
}

/** Posts packs, moving the bodies they own whole. */
function postPacks(id: number, packs: PreparedPack[]): void {
  shareFingerprints(packs);
  const result: EncodeTaskResult = { id, packs };
  parentPort?.postMessage(result, ownedBodies(packs));
}

parentPort?.on('message', (task: EncodeTask | DecodeTask | HashTask | EncodeHeldTask) => {
  try {
    if (task.kind === 'hash') {
      const hashes = hashChunks(task);
      const result: EncodeTaskResult = { id: task.id, hashes };
      parentPort?.postMessage(result, [hashes.sha256s.buffer as ArrayBuffer, hashes.holes.buffer as ArrayBuffer]);
      return;
    }
    if (task.kind === 'encode-held') {
      const batch = encodeHeld(task);
      const result: EncodeTaskResult = { id: task.id, batch };
      parentPort?.postMessage(result, [...ownedBodies(batch.packs), batch.sha256s.buffer, batch.fields.buffer, batch.fingerprints.buffer, batch.fingerprintEnds.buffer, ...(batch.dims === undefined || batch.dimCounts === undefined ? [] : [batch.dims.buffer, batch.dimCounts.buffer])] as ArrayBuffer[]);
      return;
    }
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
      // keepVector false: the commit runs in another thread, which parses the fingerprint it needs.
      fresh.push(encodeChunk(pipeline, chunk, task.sha256s.subarray(32 * position, 32 * position + 32), false));
    }
    // The main thread hashed every chunk for its dedup lookup: the codec reused that hash.
    postPacks(task.id, preparePacks(fresh));
  } catch (error) {
    const reply: EncodeTaskResult =
      error instanceof EmbrError
        ? { id: task.id, error: error.message, code: error.code, data: { ...error.data } }
        : { id: task.id, error: error instanceof Error ? error.message : String(error) };
    parentPort?.postMessage(reply);
  }
});
