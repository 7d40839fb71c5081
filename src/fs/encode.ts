/**
 * The write-side pipeline before a commit: cut bytes into chunks, hash them (SHA-256), skip the
 * ones the store already holds, encode the rest with the codec, fingerprint them for the root
 * vector and compress them into packs. All of it is CPU work done outside any transaction.
 *
 * All-zero chunks become *holes*: no chunk reference at all, read back as zeros. So sparse files
 * and truncate-to-extend cost nothing, and verify knows a missing reference means zeros.
 *
 * @example
 * ```ts
 * const pipeline = createPipeline({ profile: 'positional', chunkBytes: 4096 });
 * const content = encodeContent(pipeline, bytes, 0, (shas) => shas.map(() => false));
 * ```
 */
import { hash as oneShotHash } from 'node:crypto';
import { createChunkCodec, positionalPayloadBytes, writePositionalPayload } from '../codec/index.js';
import { isEmbrError } from '../errors.js';
import type { ChunkCodec, CodecProfileName } from '../codec/index.js';
import { FINGERPRINT_DIMENSION, chunkFingerprintIndices, serializedChunkFingerprint } from '../query/fingerprint.js';
import { loadNativeKernels } from '../query/native.js';
import type { NewChunk, PackBatch, PreparedPack } from '../store/api.js';
import { PACK_BATCH_FIELDS } from '../store/api.js';
import { PACK_TARGET_BYTES, concatenate, finishPack, isRawPack, newPack, preparePacks, unbatchPacks, unpack } from '../store/pack.js';
import { deserializeVector, rememberSerialization, serializedIndicesByteLength, writeIndices } from '../vsa/serialize.js';
import { SparseVector } from '../vsa/sparse.js';
import type { EncodePool } from './encode-pool.js';
import { POOL_MIN_BYTES } from './encode-pool.js';

/** The codec and hash functions the pipeline uses. */
export interface Pipeline {
  readonly codec: ChunkCodec;
  readonly chunkBytes: number;
  sha256(bytes: Uint8Array): Uint8Array;
  /**
   * The SHA-256 of every `chunkBytes` piece of `bytes` (the last may be shorter) into
   * `out[32i .. 32i + 32)`: one native call when the addon has OpenSSL's SHA256 (~30 % less CPU
   * than a one-shot hash per 4 KiB chunk), else one `sha256` per piece.
   */
  sha256Chunks(bytes: Uint8Array, chunkBytes: number, out: Uint8Array): void;
  /**
   * `codec.encode(chunk)`, reusing `sha` (the chunk's SHA-256, computed for the dedup lookup)
   * instead of hashing the chunk again.
   */
  encodeKnown(chunk: Uint8Array, sha: Uint8Array | undefined): ReturnType<ChunkCodec['encode']>;
}

/** Chunks of a byte range, encoded and packed, ready for a commit. */
export interface EncodedContent {
  /** Chunk index of the first chunk. */
  firstIndex: number;
  /** Per chunk: its SHA-256, or null for an all-zero chunk (a hole). */
  shas: Array<Uint8Array | null>;
  /** Packs of the chunks the store did not hold at encode time. */
  packs: PreparedPack[];
  /** Total bytes covered. */
  byteLength: number;
}

/**
 * Builds the pipeline for an engram's profile and chunk size.
 *
 * @example
 * ```ts
 * const pipeline = createPipeline({ profile: 'positional', chunkBytes: 4096 });
 * ```
 */
export function createPipeline(options: { profile: CodecProfileName; chunkBytes: number }): Pipeline {
  // The one-shot form: a 10 MB file is 2,441 chunk hashes per read and per write, and a Hash
  // object per chunk cost about as much as hashing the chunk itself.
  const sha256 = (bytes: Uint8Array): Uint8Array => oneShotHash('sha256', bytes, 'buffer');
  // The hash handed to encodeKnown for the chunk it encodes (the codec asks for it once). A slot,
  // not a WeakMap keyed by chunk: tens of thousands of ephemerons per ingest batch cost the GC
  // more than they saved.
  let knownChunk: Uint8Array | undefined;
  let knownSha: Uint8Array | undefined;
  const codecSha256 = (bytes: Uint8Array): Uint8Array => (bytes === knownChunk && knownSha !== undefined ? knownSha : sha256(bytes));
  const codec = createChunkCodec({ profile: options.profile, chunkBytes: options.chunkBytes, sha256: codecSha256 });
  const nativeChunks = nativeSha256Chunks();
  return {
    codec,
    chunkBytes: options.chunkBytes,
    sha256,
    sha256Chunks:
      nativeChunks !== undefined
        ? (bytes, chunkBytes, out) => nativeChunks(bytes, chunkBytes, out)
        : (bytes, chunkBytes, out) => {
            for (let start = 0, position = 0; start < bytes.length; start += chunkBytes, position += 32) {
              out.set(sha256(bytes.subarray(start, Math.min(bytes.length, start + chunkBytes))), position);
            }
          },
    encodeKnown: (chunk, sha) => {
      knownChunk = chunk;
      knownSha = sha;
      try {
        return codec.encode(chunk);
      } finally {
        knownChunk = undefined;
        knownSha = undefined;
      }
    },
  };
}

let nativeChunksChecked = false;
let nativeChunksFunction: ((bytes: Uint8Array, chunkBytes: number, out: Uint8Array) => number) | undefined;

/**
 * The addon's `sha256Chunks`, if it loaded and hashes a fixed sample exactly as node:crypto does
 * (checked once per thread); undefined otherwise (`EMBRFS_NO_NATIVE=1`, no build, no OpenSSL).
 */
function nativeSha256Chunks(): ((bytes: Uint8Array, chunkBytes: number, out: Uint8Array) => number) | undefined {
  if (nativeChunksChecked) return nativeChunksFunction;
  nativeChunksChecked = true;
  const candidate = loadNativeKernels().kernels?.sha256Chunks;
  if (candidate === undefined) return undefined;
  const sample = new Uint8Array(10_000).map((_, index) => (index * 131 + (index >> 7)) & 255);
  const out = new Uint8Array(32 * 3);
  if (candidate(sample, 4096, out) !== 3) return undefined;
  for (let position = 0; position < 3; position += 1) {
    const expected = oneShotHash('sha256', sample.subarray(4096 * position, Math.min(sample.length, 4096 * (position + 1))), 'buffer');
    if (Buffer.compare(expected, out.subarray(32 * position, 32 * position + 32)) !== 0) return undefined;
  }
  nativeChunksFunction = candidate;
  return candidate;
}

/**
 * Which batched chunk hash this thread uses: the addon's (OpenSSL's SHA256 in one call per run of
 * chunks) or node:crypto per chunk.
 *
 * @example
 * ```ts
 * sha256ChunksImplementation(); // 'native' after a successful npm ci
 * ```
 */
export function sha256ChunksImplementation(): 'native' | 'js' {
  return nativeSha256Chunks() === undefined ? 'js' : 'native';
}

const ZEROS = new Uint8Array(1 << 20);

/**
 * True when every byte of `bytes` is zero (native compare against a zero buffer).
 *
 * @example
 * ```ts
 * isAllZero(new Uint8Array(10)); // true
 * ```
 */
export function isAllZero(bytes: Uint8Array): boolean {
  for (let offset = 0; offset < bytes.length; offset += ZEROS.length) {
    const piece = bytes.subarray(offset, Math.min(bytes.length, offset + ZEROS.length));
    if (Buffer.compare(piece, ZEROS.subarray(0, piece.length)) !== 0) return false;
  }
  return true;
}

/** Hex of a SHA-256, the key of a chunk in maps. */
export function shaKey(sha: Uint8Array): string {
  return Buffer.from(sha.buffer, sha.byteOffset, sha.byteLength).toString('hex');
}

/**
 * Encodes `bytes` as consecutive chunks starting at chunk index `firstIndex` (each chunk is
 * `chunkBytes` long except possibly the last). `lookupStored(shas)` says which chunks the store
 * already holds (they are neither encoded nor packed); it is called once, with every non-hole SHA-256.
 *
 * @example
 * ```ts
 * const content = encodeContent(pipeline, bytes, 0, (shas) => shas.map(() => false));
 * ```
 */
export function encodeContent(
  pipeline: Pipeline,
  bytes: Uint8Array,
  firstIndex: number,
  lookupStored: (shas: Uint8Array[]) => boolean[],
  options: EncodeOptions = {},
): EncodedContent {
  const { shas, fresh, freshShas } = splitContent(pipeline, bytes, lookupStored);
  const rawBelowBytes = options.deferSmallPackCompression === true ? COALESCE_BELOW_BYTES : 0;
  return { firstIndex, shas, packs: preparePacks(fresh.map((chunk, position) => encodeChunk(pipeline, chunk, freshShas[position])), undefined, { rawBelowBytes }), byteLength: bytes.length };
}

/** Options of {@link encodeContent} and {@link encodeContentAsync}. */
export interface EncodeOptions {
  /**
   * Leave packs smaller than {@link COALESCE_BELOW_BYTES} uncompressed: the caller merges them
   * with {@link coalescePacks}, which compresses them once (a transaction's writes).
   */
  deferSmallPackCompression?: boolean;
}

/**
 * Like {@link encodeContent}, but encodes the fresh chunks of a large write in the worker pool.
 *
 * @example
 * ```ts
 * const content = await encodeContentAsync(pipeline, bytes, 0, lookup, encodePool(options));
 * ```
 */
export async function encodeContentAsync(
  pipeline: Pipeline,
  bytes: Uint8Array,
  firstIndex: number,
  lookupStored: (shas: Uint8Array[]) => boolean[],
  pool: EncodePool | undefined,
  options: EncodeOptions = {},
): Promise<EncodedContent> {
  // The pool compresses every pack (its tail pack, when small, is merged and recompressed).
  if (pool === undefined || bytes.length < POOL_MIN_BYTES) return encodeContent(pipeline, bytes, firstIndex, lookupStored, options);
  // The workers hash the chunks too (this thread only looks them up): a write through the FUSE
  // mount spent ~1.2 s of its main thread per GiB hashing here.
  try {
    const { shas, batches } = await pool.hashAndEncode(bytes, pipeline.chunkBytes, (shas) => pickFresh(shas, lookupStored, new Set<string>()));
    return { firstIndex, shas, packs: batches.flatMap((batch) => unbatchPacks(batch, batchVectors(batch))), byteLength: bytes.length };
  } catch (error) {
    // A codec or store verdict stands; a worker that cannot start or crashed must not fail the
    // write: encode here instead.
    if (isEmbrError(error)) throw error;
    return encodeContent(pipeline, bytes, firstIndex, lookupStored, options);
  }
}

/**
 * Which of `shas` (null: a hole) to encode: those the store does not hold (`lookupStored`, asked
 * once with every non-hole hash) and not yet picked (`seen`, hex keys, updated: a chunk repeated
 * within one write, or across the batches sharing `seen`, is encoded once).
 *
 * @example
 * ```ts
 * pickFresh([sha, null, sha], (shas) => shas.map(() => false), new Set()); // [true, false, false]
 * ```
 */
export function pickFresh(shas: Array<Uint8Array | null>, lookupStored: (shas: Uint8Array[]) => boolean[], seen: Set<string>): boolean[] {
  const stored = lookupStored(shas.filter((sha): sha is Uint8Array => sha !== null));
  let position = 0;
  return shas.map((sha) => {
    if (sha === null) return false;
    const key = shaKey(sha);
    const fresh = !stored[position] && !seen.has(key);
    position += 1;
    if (fresh) seen.add(key);
    return fresh;
  });
}

/**
 * Cuts bytes into chunks, hashes them and picks the distinct ones the store does not hold. `seen`
 * (hex SHA-256s) carries the chunks earlier calls already picked, for a write split in batches.
 *
 * @example
 * ```ts
 * const { shas, fresh, freshShas } = splitContent(pipeline, bytes, (shas) => shas.map(() => false));
 * ```
 */
export function splitContent(
  pipeline: Pipeline,
  bytes: Uint8Array,
  lookupStored: (shas: Uint8Array[]) => boolean[],
  seen = new Set<string>(),
): { shas: Array<Uint8Array | null>; fresh: Uint8Array[]; freshShas: Uint8Array[] } {
  const chunkBytes = pipeline.chunkBytes;
  const shas: Array<Uint8Array | null> = [];
  const pieces: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes));
    if (isAllZero(chunk)) {
      shas.push(null);
      continue;
    }
    const sha = pipeline.sha256(chunk);
    shas.push(sha);
    pieces.push(chunk);
  }
  const present = shas.filter((sha): sha is Uint8Array => sha !== null);
  const stored = lookupStored(present);
  const fresh: Uint8Array[] = [];
  const freshShas: Uint8Array[] = [];
  for (let position = 0; position < present.length; position += 1) {
    if (stored[position]) continue;
    const key = shaKey(present[position]);
    if (seen.has(key)) continue;
    seen.add(key);
    fresh.push(pieces[position]);
    freshShas.push(present[position]);
  }
  return { shas, fresh, freshShas };
}

/** Packs below this many raw bytes are merged across the whole-file writes of one transaction. */
export const COALESCE_BELOW_BYTES = 64 * 1024;

/**
 * Moves the small packs of several contents (the whole-file writes of one transaction) into
 * shared packs of up to 128 KiB, each chunk once: many small files then compress together (zstd
 * sees more context than one small file gives it) and copies of a chunk within the transaction
 * are stored once instead of once per copy. The shared packs go to the first content that gave
 * any: its op applies first and inserts them, and the later ops find their chunks by SHA-256 in
 * the same commit. Returns the number of small packs rebuilt.
 *
 * @example
 * ```ts
 * coalescePacks(ops.map((op) => op.content).filter((content) => content !== undefined));
 * ```
 */
export function coalescePacks(contents: readonly EncodedContent[]): number {
  const small: Array<{ content: EncodedContent; pack: PreparedPack }> = [];
  for (const content of contents) {
    for (const pack of content.packs) if (pack.rawBytes < COALESCE_BELOW_BYTES) small.push({ content, pack });
  }
  // One small pack is rebuilt only when left raw by a deferred compression (it is compressed here).
  if (small.length === 0 || (small.length === 1 && !isRawPack(small[0].pack))) return 0;
  const chunks = new Map<string, NewChunk>();
  for (const { pack } of small) {
    const raw = unpack(pack.data, pack.rawBytes);
    for (const chunk of pack.chunks) {
      const key = shaKey(chunk.sha256);
      if (chunks.has(key)) continue;
      chunks.set(key, {
        sha256: chunk.sha256,
        byteLength: chunk.byteLength,
        payload: raw.subarray(chunk.offset, chunk.offset + chunk.payloadBytes),
        vectorCorrectBytes: chunk.vectorCorrectBytes,
        correctionBytes: chunk.correctionBytes,
        fingerprint: chunk.fingerprint,
      });
    }
  }
  const merged = new Set(small.map((entry) => entry.pack));
  for (const content of contents) content.packs = content.packs.filter((pack) => !merged.has(pack));
  const receiver = small[0].content;
  receiver.packs = [...preparePacks([...chunks.values()]), ...receiver.packs];
  return merged.size;
}

/**
 * Encodes one chunk for a pack: codec payload plus serialized fingerprint. `sha` is the chunk's
 * SHA-256 when the caller has it (it is not computed again); `keepVector` hands the fingerprint's
 * vector on with the chunk (to the commit that stores it, when that runs on this thread; false in
 * a worker whose packs another thread commits). It lives as long as the encoded chunk: a global
 * WeakMap by serialized bytes cost the GC more than the parsing it saved, a global Map kept
 * the vectors of chunks no commit took (streams).
 *
 * @example
 * ```ts
 * const chunk = encodeChunk(pipeline, bytes);
 * ```
 */
export function encodeChunk(pipeline: Pipeline, chunk: Uint8Array, sha?: Uint8Array, keepVector = true): NewChunk {
  const encoded = pipeline.encodeKnown(chunk, sha);
  // Fingerprint and its serialization in one call (one native call when the addon is built).
  const { vector, serialized: fingerprint } = serializedChunkFingerprint(chunk);
  if (keepVector) rememberSerialization(vector, fingerprint);
  return {
    sha256: encoded.sha256,
    byteLength: encoded.byteLength,
    payload: encoded.payload,
    vectorCorrectBytes: encoded.vectorCorrectBytes,
    correctionBytes: encoded.correctionBytes,
    fingerprint,
    fingerprintVector: keepVector ? vector : undefined,
  };
}

/**
 * The chunks of `bytes` (cut every `chunkBytes`) whose `select` byte is 1, encoded with the
 * positional profile straight into packs, as one {@link PackBatch} with fingerprint indices: the
 * same columns and pack bytes as `batchPacks(preparePacks(chunks encoded one by one), true)`, but
 * each payload is written once, into its pack, and each fingerprint into the batch's columns
 * (src/fs/encode-pool.test.ts holds the two to each other). `sha256s` holds 32 bytes per chunk of
 * `bytes`. An encode worker's large-write path: it spares ~2,500 payload buffers, vector objects
 * and fingerprint buffers per 10 MB, and the copies between them.
 *
 * @example
 * ```ts
 * const batch = encodePositionalBatch(bytes, 4096, sha256s, select);
 * ```
 */
export function encodePositionalBatch(bytes: Uint8Array, chunkBytes: number, sha256s: Uint8Array, select: Uint8Array): PackBatch {
  const chosen: number[] = [];
  for (let chunk = 0; chunk < select.length; chunk += 1) if (select[chunk] === 1) chosen.push(chunk);
  const count = chosen.length;
  const lengthOf = (chunk: number): number => Math.min(bytes.length, (chunk + 1) * chunkBytes) - chunk * chunkBytes;
  // Fingerprints, one native call per run of consecutive chosen chunks.
  const dimParts: Uint32Array[] = [];
  const dimCounts = new Uint32Array(2 * count);
  for (let at = 0; at < count; ) {
    let end = at + 1;
    while (end < count && chosen[end] === chosen[end - 1] + 1) end += 1;
    const run = bytes.subarray(chosen[at] * chunkBytes, Math.min(bytes.length, (chosen[end - 1] + 1) * chunkBytes));
    const { dims, counts } = chunkFingerprintIndices(run, chunkBytes);
    dimParts.push(dims);
    dimCounts.set(counts, 2 * at);
    at = end;
  }
  const dims = dimParts.length === 1 ? dimParts[0] : concatenate(dimParts, (length) => new Uint32Array(length));
  // Serialized fingerprints, back to back.
  const fingerprintEnds = new Uint32Array(count);
  let fingerprintBytes = 0;
  for (let index = 0, dimAt = 0; index < count; index += 1) {
    const positive = dimCounts[2 * index];
    const negative = dimCounts[2 * index + 1];
    fingerprintBytes += serializedIndicesByteLength(FINGERPRINT_DIMENSION, dims.subarray(dimAt, dimAt + positive), dims.subarray(dimAt + positive, dimAt + positive + negative));
    fingerprintEnds[index] = fingerprintBytes;
    dimAt += positive + negative;
  }
  const fingerprints = new Uint8Array(fingerprintBytes);
  for (let index = 0, dimAt = 0, at = 0; index < count; index += 1) {
    const positive = dimCounts[2 * index];
    const negative = dimCounts[2 * index + 1];
    at = writeIndices(fingerprints, at, FINGERPRINT_DIMENSION, dims.subarray(dimAt, dimAt + positive), dims.subarray(dimAt + positive, dimAt + positive + negative));
    dimAt += positive + negative;
  }
  // Packs: preparePacks' grouping (a pack is closed before a payload that would take it past
  // PACK_TARGET_BYTES), each payload written straight into its pack.
  const batchSha256s = new Uint8Array(32 * count);
  const fields = new Uint32Array(PACK_BATCH_FIELDS * count);
  const packs: PackBatch['packs'] = [];
  let first = 0;
  while (first < count) {
    let end = first;
    let rawBytes = 0;
    while (end < count) {
      const payloadBytes = positionalPayloadBytes(lengthOf(chosen[end]));
      if (end > first && rawBytes + payloadBytes > PACK_TARGET_BYTES) break;
      rawBytes += payloadBytes;
      end += 1;
    }
    const { stored, raw } = newPack(rawBytes);
    let offset = 0;
    for (let index = first; index < end; index += 1) {
      const chunk = chosen[index];
      const byteLength = lengthOf(chunk);
      const next = writePositionalPayload(bytes.subarray(chunk * chunkBytes, chunk * chunkBytes + byteLength), raw, offset);
      const at = PACK_BATCH_FIELDS * index;
      fields[at] = byteLength;
      fields[at + 1] = offset;
      fields[at + 2] = next - offset;
      fields[at + 3] = byteLength; // positional: every byte comes right from the vector
      fields[at + 4] = 0;
      batchSha256s.set(sha256s.subarray(32 * chunk, 32 * chunk + 32), 32 * index);
      offset = next;
    }
    packs.push({ data: finishPack(stored), rawBytes, chunkCount: end - first });
    first = end;
  }
  return { packs, sha256s: batchSha256s, fields, fingerprints, fingerprintEnds, dims, dimCounts, dimension: FINGERPRINT_DIMENSION };
}

/**
 * The fingerprint vectors of a batch's chunks, in batch order, built from its indices
 * (`batch.dims`) without parsing the serialized fingerprints; each remembers its serialization
 * (a view of `batch.fingerprints`), so the index log copies those bytes. Parses the
 * serializations when the batch has no indices.
 *
 * @example
 * ```ts
 * const vectors = batchVectors(batch); // vectors[i] belongs to the batch's chunk i
 * ```
 */
export function batchVectors(batch: PackBatch): SparseVector[] {
  const count = batch.fingerprintEnds.length;
  const vectors: SparseVector[] = new Array<SparseVector>(count);
  let dimAt = 0;
  for (let index = 0; index < count; index += 1) {
    const serialized = batch.fingerprints.subarray(index === 0 ? 0 : batch.fingerprintEnds[index - 1], batch.fingerprintEnds[index]);
    let vector: SparseVector;
    if (batch.dims !== undefined && batch.dimCounts !== undefined && batch.dimension !== undefined) {
      const positive = batch.dimCounts[2 * index];
      const negative = batch.dimCounts[2 * index + 1];
      // The worker took these from vectors it built (valid by construction) and checked none on the way.
      vector = SparseVector.fromCheckedIndices(
        batch.dimension,
        batch.dims.subarray(dimAt, dimAt + positive),
        batch.dims.subarray(dimAt + positive, dimAt + positive + negative),
      );
      dimAt += positive + negative;
    } else {
      vector = deserializeVector(serialized);
    }
    rememberSerialization(vector, serialized);
    vectors[index] = vector;
  }
  return vectors;
}

/**
 * The vector of a serialized fingerprint.
 *
 * @example
 * ```ts
 * index.addFile(path, [{ fingerprint: fingerprintVector(chunk.fingerprint), byteLength }]);
 * ```
 */
export function fingerprintVector(serialized: Uint8Array): SparseVector {
  return deserializeVector(serialized);
}
