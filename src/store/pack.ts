/**
 * Packs: the compression unit of the store, larger than one chunk.
 *
 * The payloads of the new chunks of one commit are concatenated into packs of at most
 * {@link PACK_TARGET_BYTES} and compressed as one zstd frame (level 3), so small and similar
 * chunks compress together. Stored pack bytes start with one format byte:
 * - `0`: the rest is the concatenated payloads, uncompressed (used when zstd does not shrink it);
 * - `1`: the rest is one zstd frame of the concatenated payloads.
 * The format byte leaves room for a per-engram dictionary (a later format `2`).
 *
 * Preparing a pack is pure CPU work done before the write transaction (and off the event loop
 * when the fs layer uses its worker pool).
 *
 * @example
 * ```ts
 * const [pack] = preparePacks([chunk]);
 * unpack(pack.data).subarray(pack.chunks[0].offset, pack.chunks[0].offset + pack.chunks[0].payloadBytes);
 * ```
 */
import { createRequire } from 'node:module';
import { Compressor, decompress } from 'zstd-napi';
import { EmbrError } from '../errors.js';
import type { NewChunk, PackBatch, PreparedPack } from './api.js';
import { PACK_BATCH_FIELDS } from './api.js';
import type { SparseVector } from '../vsa/sparse.js';

/** Upper bound of the decompressed size of one pack (a single payload may exceed it alone). */
export const PACK_TARGET_BYTES = 128 * 1024;

const FORMAT_RAW = 0;
const FORMAT_ZSTD = 1;
const ZSTD_LEVEL = 3;
/**
 * The level for packs the probes find only somewhat compressible (no probe below
 * {@link PROBE_GOOD_RATIO}). On such data level 3 searched hard for little: fio's write buffers
 * compressed to 0.897 at 101 MB/s with level 3 and to 0.898 at 282 MB/s with level 1; the
 * somewhat-compressible packs of shared libraries and of the node binary (4-9 % of their packs)
 * to 0.504-0.574 with level 3 and 0.542-0.604 with level 1 (about +0.3 % of those files' stored
 * bytes). Packs with any clearly compressible probe (text, most binaries) keep level 3.
 */
const ZSTD_FAST_LEVEL = 1;

/**
 * Groups `chunks` (in order) into packs of at most {@link PACK_TARGET_BYTES} and compresses each.
 *
 * @example
 * ```ts
 * const packs = preparePacks(encodedChunks);
 * ```
 */
export function preparePacks(chunks: NewChunk[], targetBytes: number = PACK_TARGET_BYTES, options: PreparePackOptions = {}): PreparedPack[] {
  const rawBelow = options.rawBelowBytes ?? 0;
  const packs: PreparedPack[] = [];
  let group: NewChunk[] = [];
  let groupBytes = 0;
  for (const chunk of chunks) {
    if (group.length > 0 && groupBytes + chunk.payload.length > targetBytes) {
      packs.push(packGroup(group, groupBytes, groupBytes >= rawBelow));
      group = [];
      groupBytes = 0;
    }
    group.push(chunk);
    groupBytes += chunk.payload.length;
  }
  if (group.length > 0) packs.push(packGroup(group, groupBytes, groupBytes >= rawBelow));
  return packs;
}

/**
 * `packs` in columns ({@link PackBatch}). With `withDims`, each chunk's `fingerprintVector` (which
 * must then be present) is written as indices too. The pack bodies are kept (not copied).
 *
 * @example
 * ```ts
 * const batch = batchPacks(preparePacks(chunks), true);
 * ```
 */
export function batchPacks(packs: PreparedPack[], withDims = false): PackBatch {
  let count = 0;
  let fingerprintBytes = 0;
  let dimTotal = 0;
  let dimension: number | undefined;
  for (const pack of packs) {
    count += pack.chunks.length;
    for (const chunk of pack.chunks) {
      fingerprintBytes += chunk.fingerprint.byteLength;
      if (!withDims) continue;
      const vector = vectorOf(chunk.fingerprintVector);
      dimTotal += vector.nonZeroCount;
      dimension ??= vector.dimension;
      if (vector.dimension !== dimension) throw new Error(`batchPacks: fingerprints of dimensions ${dimension} and ${vector.dimension}`);
    }
  }
  const sha256s = new Uint8Array(32 * count);
  const fields = new Uint32Array(PACK_BATCH_FIELDS * count);
  const fingerprints = new Uint8Array(fingerprintBytes);
  const fingerprintEnds = new Uint32Array(count);
  const dims = withDims ? new Uint32Array(dimTotal) : undefined;
  const dimCounts = withDims ? new Uint32Array(2 * count) : undefined;
  let index = 0;
  let fingerprintAt = 0;
  let dimAt = 0;
  for (const pack of packs) {
    for (const chunk of pack.chunks) {
      sha256s.set(chunk.sha256, 32 * index);
      const at = PACK_BATCH_FIELDS * index;
      fields[at] = chunk.byteLength;
      fields[at + 1] = chunk.offset;
      fields[at + 2] = chunk.payloadBytes;
      fields[at + 3] = chunk.vectorCorrectBytes;
      fields[at + 4] = chunk.correctionBytes;
      fingerprints.set(chunk.fingerprint, fingerprintAt);
      fingerprintAt += chunk.fingerprint.byteLength;
      fingerprintEnds[index] = fingerprintAt;
      if (dims !== undefined && dimCounts !== undefined) {
        const vector = vectorOf(chunk.fingerprintVector);
        dims.set(vector.positive, dimAt);
        dims.set(vector.negative, dimAt + vector.positive.length);
        dimAt += vector.positive.length + vector.negative.length;
        dimCounts[2 * index] = vector.positive.length;
        dimCounts[2 * index + 1] = vector.negative.length;
      }
      index += 1;
    }
  }
  const batch: PackBatch = { packs: packs.map((pack) => ({ data: pack.data, rawBytes: pack.rawBytes, chunkCount: pack.chunks.length })), sha256s, fields, fingerprints, fingerprintEnds };
  if (dims !== undefined && dimCounts !== undefined) {
    batch.dims = dims;
    batch.dimCounts = dimCounts;
    batch.dimension = dimension ?? 1;
  }
  return batch;
}

/**
 * `parts` back to back in one new array made by `make(total length)`.
 *
 * @example
 * ```ts
 * concatenate([Uint32Array.of(1), Uint32Array.of(2, 3)], (length) => new Uint32Array(length)); // [1, 2, 3]
 * ```
 */
export function concatenate<T extends Uint8Array | Uint32Array>(parts: readonly T[], make: (length: number) => T): T {
  const out = make(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Several batches as one (columns concatenated in order; pack bodies kept). Indices are kept only
 * when every batch has them (of one dimension).
 *
 * @example
 * ```ts
 * const batch = mergeBatches([first, second]);
 * ```
 */
export function mergeBatches(batches: readonly PackBatch[]): PackBatch {
  if (batches.length === 1) return batches[0];
  const fingerprintEnds: Uint32Array[] = [];
  let fingerprintBase = 0;
  for (const batch of batches) {
    fingerprintEnds.push(batch.fingerprintEnds.map((end) => end + fingerprintBase));
    fingerprintBase += batch.fingerprints.length;
  }
  const merged: PackBatch = {
    packs: batches.flatMap((batch) => batch.packs),
    sha256s: concatenate(batches.map((batch) => batch.sha256s), (length) => new Uint8Array(length)),
    fields: concatenate(batches.map((batch) => batch.fields), (length) => new Uint32Array(length)),
    fingerprints: concatenate(batches.map((batch) => batch.fingerprints), (length) => new Uint8Array(length)),
    fingerprintEnds: concatenate(fingerprintEnds, (length) => new Uint32Array(length)),
  };
  const dimension = batches.find((batch) => batch.fingerprintEnds.length > 0)?.dimension;
  const withDims = batches.every((batch) => batch.fingerprintEnds.length === 0 || (batch.dims !== undefined && batch.dimCounts !== undefined && batch.dimension === dimension));
  if (withDims && dimension !== undefined) {
    merged.dims = concatenate(batches.map((batch) => batch.dims ?? new Uint32Array(0)), (length) => new Uint32Array(length));
    merged.dimCounts = concatenate(batches.map((batch) => batch.dimCounts ?? new Uint32Array(0)), (length) => new Uint32Array(length));
    merged.dimension = dimension;
  }
  return merged;
}

function vectorOf(vector: SparseVector | undefined): SparseVector {
  if (vector === undefined) throw new Error('batchPacks: a chunk has no fingerprint vector');
  return vector;
}

/**
 * The packs of a {@link PackBatch} as {@link PreparedPack}s; each chunk's `sha256` and
 * `fingerprint` are views of the batch's columns. `vectors`, when given, are the chunks'
 * fingerprint vectors in batch order.
 *
 * @example
 * ```ts
 * for (const pack of unbatchPacks(batch)) writer.putPack(pack);
 * ```
 */
export function unbatchPacks(batch: PackBatch, vectors?: readonly SparseVector[]): PreparedPack[] {
  const packs: PreparedPack[] = [];
  let index = 0;
  for (const pack of batch.packs) {
    const chunks: PreparedPack['chunks'] = [];
    for (let end = index + pack.chunkCount; index < end; index += 1) {
      const at = PACK_BATCH_FIELDS * index;
      chunks.push({
        sha256: batch.sha256s.subarray(32 * index, 32 * index + 32),
        byteLength: batch.fields[at],
        vectorCorrectBytes: batch.fields[at + 3],
        correctionBytes: batch.fields[at + 4],
        fingerprint: batch.fingerprints.subarray(index === 0 ? 0 : batch.fingerprintEnds[index - 1], batch.fingerprintEnds[index]),
        fingerprintVector: vectors?.[index],
        offset: batch.fields[at + 1],
        payloadBytes: batch.fields[at + 2],
      });
    }
    packs.push({ data: pack.data, rawBytes: pack.rawBytes, chunks });
  }
  return packs;
}

/** Options of {@link preparePacks}. */
export interface PreparePackOptions {
  /**
   * Packs of fewer raw bytes are left uncompressed (format raw): for a caller that merges small
   * packs before storing them and compresses them then (a transaction's many small files).
   */
  rawBelowBytes?: number;
}

/** True when a prepared pack is stored uncompressed. */
export function isRawPack(pack: PreparedPack): boolean {
  return pack.data[0] === FORMAT_RAW;
}

/**
 * A pack under construction: `raw` (where the payloads go, back to back) lies right behind the
 * raw format byte of `stored`, so a pack that stays raw (zstd does not shrink it, as for random
 * bytes) is stored without another copy. {@link finishPack} decides.
 *
 * @example
 * ```ts
 * const { stored, raw } = newPack(rawBytes); raw.set(payload, 0); const data = finishPack(stored);
 * ```
 */
export function newPack(rawBytes: number): { stored: Uint8Array; raw: Uint8Array } {
  const stored = new Uint8Array(rawBytes + 1);
  stored[0] = FORMAT_RAW;
  return { stored, raw: stored.subarray(1) };
}

/** The stored bytes of a pack from {@link newPack}: compressed when `compressed` and zstd pays (see {@link packCompression}), else raw. */
export function finishPack(stored: Uint8Array, compressed = true): Uint8Array {
  return compressed ? (zstdPackBytes(stored.subarray(1)) ?? stored) : stored;
}

function packGroup(group: NewChunk[], rawBytes: number, compressed: boolean): PreparedPack {
  const { stored, raw } = newPack(rawBytes);
  const chunks: PreparedPack['chunks'] = [];
  let offset = 0;
  for (const chunk of group) {
    raw.set(chunk.payload, offset);
    chunks.push({
      sha256: chunk.sha256,
      byteLength: chunk.byteLength,
      vectorCorrectBytes: chunk.vectorCorrectBytes,
      correctionBytes: chunk.correctionBytes,
      fingerprint: chunk.fingerprint,
      // Always present (possibly undefined): one object shape for every chunk.
      fingerprintVector: chunk.fingerprintVector,
      offset,
      payloadBytes: chunk.payload.length,
    });
    offset += chunk.payload.length;
  }
  return { data: finishPack(stored, compressed), rawBytes, chunks };
}

/**
 * Bytes per probe of {@link looksIncompressible}, and how small a probe's frame must get for the
 * pack to be worth compressing whole.
 */
const PROBE_BYTES = 2048;
const PROBE_COUNT = 8;
const PROBE_WORTH_RATIO = 0.97;

/** A probe under this ratio marks a pack as clearly compressible: it gets {@link ZSTD_LEVEL}. */
const PROBE_GOOD_RATIO = 0.6;

/**
 * One compression context per thread and level, reused: zstd-napi's one-shot `compress` builds
 * (and the allocator zeroes) a fresh context of several hundred KiB for every pack.
 */
const compressors = new Map<number, Compressor>();

function zstdCompress(bytes: Uint8Array, level = ZSTD_LEVEL): Uint8Array {
  let compressor = compressors.get(level);
  if (compressor === undefined) {
    compressor = new Compressor();
    compressor.setParameters({ compressionLevel: level });
    compressors.set(level, compressor);
  }
  return compressor.compress(bytes);
}

/**
 * How a pack is compressed, from {@link PROBE_COUNT} probes spread evenly over it (the first at
 * its start, the last at its end), each compressed alone:
 * - `'raw'` when every probe stays above {@link PROBE_WORTH_RATIO} of its size: random, encrypted
 *   or already compressed payloads, which zstd would not shrink anyway (the pack is then stored
 *   raw, as it would be after a failed attempt). Costs about an eighth of compressing the whole
 *   pack; a pack that only compresses between its probes (or through repeats more than
 *   {@link PROBE_BYTES} apart) is stored raw and loses that (content-addressed chunks make exact
 *   repeats rare inside one pack).
 * - `'best'` (level {@link ZSTD_LEVEL}) as soon as one probe gets under {@link PROBE_GOOD_RATIO}.
 * - `'fast'` (level {@link ZSTD_FAST_LEVEL}) otherwise: somewhat compressible data.
 * Packs too small to probe are `'best'`.
 */
export function packCompression(raw: Uint8Array): 'raw' | 'fast' | 'best' {
  if (raw.length < 2 * PROBE_COUNT * PROBE_BYTES) return 'best';
  const step = Math.floor((raw.length - PROBE_BYTES) / (PROBE_COUNT - 1));
  let shrinks = false;
  for (let probe = 0; probe < PROBE_COUNT; probe += 1) {
    const start = probe * step;
    const compressed = zstdCompress(raw.subarray(start, start + PROBE_BYTES)).length;
    if (compressed < PROBE_GOOD_RATIO * PROBE_BYTES) return 'best';
    if (compressed < PROBE_WORTH_RATIO * PROBE_BYTES) shrinks = true;
  }
  return shrinks ? 'fast' : 'raw';
}

/** True when {@link packCompression} stores the pack raw without compressing it whole. */
export function looksIncompressible(raw: Uint8Array): boolean {
  return packCompression(raw) === 'raw';
}

/** The zstd format of `raw` (format byte + frame), or undefined when zstd does not shrink it. */
function zstdPackBytes(raw: Uint8Array): Uint8Array | undefined {
  const how = packCompression(raw);
  if (how === 'raw') return undefined;
  const compressed = zstdCompress(raw, how === 'fast' ? ZSTD_FAST_LEVEL : ZSTD_LEVEL);
  if (compressed.length >= raw.length) return undefined;
  const data = new Uint8Array(compressed.length + 1);
  data[0] = FORMAT_ZSTD;
  data.set(compressed, 1);
  return data;
}

/** Compresses concatenated payloads into stored pack bytes (format byte + body). */
export function encodePackBytes(raw: Uint8Array): Uint8Array {
  const zstd = zstdPackBytes(raw);
  if (zstd !== undefined) return zstd;
  const data = new Uint8Array(raw.length + 1);
  data[0] = FORMAT_RAW;
  data.set(raw, 1);
  return data;
}

/**
 * Decompresses stored pack bytes; throws EmbrError CORRUPT on an unknown format or a bad frame,
 * or when the result does not have `rawBytes` bytes.
 *
 * @example
 * ```ts
 * const raw = unpack(storedBytes, 4096);
 * ```
 */
export function unpack(data: Uint8Array, rawBytes: number): Uint8Array {
  if (data.length < 1) throw new EmbrError('CORRUPT', 'pack is empty', { what: 'pack' });
  const format = data[0];
  let raw: Uint8Array;
  if (format === FORMAT_RAW) {
    raw = data.subarray(1);
  } else if (format === FORMAT_ZSTD) {
    try {
      raw = decompress(data.subarray(1));
    } catch (error) {
      throw new EmbrError('CORRUPT', 'pack does not decompress', { what: 'pack' }, { cause: error });
    }
  } else {
    throw new EmbrError('CORRUPT', `pack has unknown format ${format}`, { what: 'pack', format });
  }
  if (raw.length !== rawBytes) {
    throw new EmbrError('CORRUPT', `pack holds ${raw.length} bytes, expected ${rawBytes}`, { what: 'pack' });
  }
  return raw;
}

/** The part of zstd-napi's documented low-level API (`zstd-napi/binding`) that {@link PackScratch} uses. */
interface DecompressionContext {
  /** `ZSTD_decompressDCtx`: decompresses `source` (whole frames) into `target`; returns the bytes written. */
  decompress(target: Uint8Array, source: Uint8Array): number;
}

let binding: { DCtx: new () => DecompressionContext } | undefined;

/**
 * One reusable buffer that stored packs are unpacked into, for reads that use a payload at once
 * (decode it) and keep nothing: a random 4 KiB read then allocates no 128 KiB buffer per pack,
 * which on a process with a large heap cost more in garbage collection than the read itself. The
 * result is valid only until the next {@link PackScratch.unpack}; the checks are those of
 * {@link unpack} (format, frame, exact size).
 *
 * @example
 * ```ts
 * const scratch = new PackScratch();
 * const raw = scratch.unpack(storedBytes, rawBytes); // valid until the next unpack
 * ```
 */
export class PackScratch {
  private buffer = new Uint8Array(PACK_TARGET_BYTES);
  private context: DecompressionContext | undefined;

  unpack(data: Uint8Array, rawBytes: number): Uint8Array {
    if (data.length < 1) throw new EmbrError('CORRUPT', 'pack is empty', { what: 'pack' });
    const format = data[0];
    if (format === FORMAT_RAW) {
      if (data.length - 1 !== rawBytes) throw new EmbrError('CORRUPT', `pack holds ${data.length - 1} bytes, expected ${rawBytes}`, { what: 'pack' });
      return data.subarray(1);
    }
    if (format !== FORMAT_ZSTD) throw new EmbrError('CORRUPT', `pack has unknown format ${format}`, { what: 'pack', format });
    if (this.buffer.length < rawBytes) this.buffer = new Uint8Array(rawBytes);
    binding ??= createRequire(import.meta.url)('zstd-napi/binding') as { DCtx: new () => DecompressionContext };
    this.context ??= new binding.DCtx();
    let written: number;
    try {
      // A frame that holds more than rawBytes does not fit the target and fails here.
      written = this.context.decompress(this.buffer.subarray(0, rawBytes), data.subarray(1));
    } catch (error) {
      throw new EmbrError('CORRUPT', 'pack does not decompress', { what: 'pack' }, { cause: error });
    }
    if (written !== rawBytes) throw new EmbrError('CORRUPT', `pack holds ${written} bytes, expected ${rawBytes}`, { what: 'pack' });
    return this.buffer.subarray(0, rawBytes);
  }
}
