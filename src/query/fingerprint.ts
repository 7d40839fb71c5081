/**
 * Content fingerprints for similarity search (issue 6), format version {@link FINGERPRINT_VERSION}.
 *
 * A fingerprint is a sparse ternary vector of dimension {@link FINGERPRINT_DIMENSION} built so
 * that similar byte strings have a high cosine, also when one is shifted by any number of bytes
 * against the other, and unrelated ones have a cosine near 0:
 *
 * 1. A gear rolling hash runs over the bytes: `h = (h << 4) + GEAR[byte]` (32 bits). Shifting by
 *    4 bits per byte makes the top bits of `h` a function of exactly the last
 *    {@link FINGERPRINT_WINDOW_BYTES} bytes, so the hash at a position depends on local content
 *    only, never on where the content sits.
 * 2. A position is an *anchor* when the top {@link ANCHOR_MASK_BITS} bits of `h` are zero (one
 *    position in 64 on average). Anchors are content-defined, so a shift moves them with the
 *    content instead of changing them.
 * 3. Each anchor's window hash is mixed (murmur3 finalizer with a versioned seed) into one feature:
 *    a dimension and a sign. Features are accumulated as signed counts and the sign of each count
 *    is kept. Taking the sign caps every feature at one unit, so a run of boilerplate repeated a
 *    hundred times in a chunk weighs as much as one occurrence (the index adds IDF on top).
 * 4. If more than `maxNonZero` dimensions remain (long inputs), the ones with the lowest seeded
 *    priority are kept: a consistent (bottom-k) sample, so two inputs keep the same dimensions
 *    where they agree and thinning does not destroy their similarity.
 *
 * An 8-byte window keeps 66% of the features of a text with 5% of its bytes edited
 * (0.95^8); anchors every 64 bytes give about 64 non-zeros per 4 KiB chunk, about 128 bytes
 * when stored as 2-byte signed dimensions.
 *
 * Two implementations of one construction: the native kernel (native/fingerprint.c, loaded by
 * ./native.ts when `npm ci` built it; ~1.5x faster per chunk, ~2x for the hash loop alone) and
 * the JavaScript below, which is the reference, the fallback when the addon is missing, and what
 * `EMBRFS_NO_NATIVE=1` forces. At load the native one must reproduce the JavaScript one on fixed
 * inputs (thinning and serialization included) or it is not used.
 *
 * Deterministic: no clock, no randomness; the gear table comes from a fixed seed.
 */
import { majorityBundle } from '../vsa/accumulator.js';
import { serializeVector } from '../vsa/serialize.js';
import { SparseVector } from '../vsa/sparse.js';
import { loadNativeKernels } from './native.js';
import type { NativeKernels } from './native.js';

/** Dimension of every fingerprint vector. Part of the fingerprint format. */
export const FINGERPRINT_DIMENSION = 10_000;

/** Version of the fingerprint construction. Any change to the constants or steps bumps it. */
export const FINGERPRINT_VERSION = 1;

/** Bytes of content that determine one feature (the rolling-hash window). */
export const FINGERPRINT_WINDOW_BYTES = 8;

/** An anchor fires where these many top bits of the rolling hash are zero: one in 2^6 = 64 positions. */
export const ANCHOR_MASK_BITS = 6;

/** Non-zero budget of {@link chunkFingerprint}: a 4 KiB chunk yields about 64, so this only bounds unusual chunk sizes. */
export const CHUNK_FINGERPRINT_MAX_NON_ZERO = 256;

/** Seed of fingerprint format version 1 (ASCII "EFP1"). */
const FINGERPRINT_SEED = 0x45465031;

/** murmur3 32-bit finalizer: a bijection on 32-bit integers with full avalanche. */
function mix32(value: number): number {
  let mixed = value | 0;
  mixed ^= mixed >>> 16;
  mixed = Math.imul(mixed, 0x85ebca6b);
  mixed ^= mixed >>> 13;
  mixed = Math.imul(mixed, 0xc2b2ae35);
  mixed ^= mixed >>> 16;
  return mixed >>> 0;
}

/** The gear table: 256 seeded 32-bit values, one per byte value. */
const GEAR = new Int32Array(256);
for (let byteValue = 0; byteValue < 256; byteValue += 1) {
  GEAR[byteValue] = mix32(mix32(FINGERPRINT_SEED ^ Math.imul(byteValue + 1, 0x9e3779b9)) + byteValue) | 0;
}

/** Seeded priority of a dimension for consistent thinning (lower is kept first). */
function dimensionPriority(dimension: number): number {
  return mix32(dimension ^ Math.imul(FINGERPRINT_SEED, 0x27d4eb2d));
}

// Scratch state reused across calls (JavaScript runs one call at a time per thread), all zero
// between calls. counts holds the signed feature count per dimension; occupied has one bit per
// dimension a call touched, so collecting reads the dimensions in increasing order (no sort) and
// resets only what was used.
const scratchCounts = new Int32Array(FINGERPRINT_DIMENSION);
const OCCUPIED_WORDS = Math.ceil(FINGERPRINT_DIMENSION / 32);
const scratchOccupied = new Int32Array(OCCUPIED_WORDS);
// Output staging: at most FINGERPRINT_DIMENSION non-zeros of each sign.
const scratchPositive = new Uint32Array(FINGERPRINT_DIMENSION);
const scratchNegative = new Uint32Array(FINGERPRINT_DIMENSION);

/** Options of {@link contentFingerprint}. */
export interface ContentFingerprintOptions {
  /** Keep at most this many non-zeros (consistent bottom-k thinning); default: no limit. */
  maxNonZero?: number;
}

/**
 * Fingerprint of a byte string of any length, with an optional non-zero budget. Chunks use
 * {@link chunkFingerprint}; queries use this without a budget so every feature of the query counts.
 *
 * @example
 * ```ts
 * const query = contentFingerprint(new TextEncoder().encode('some excerpt of a file'));
 * ```
 */
export function contentFingerprint(bytes: Uint8Array, options: ContentFingerprintOptions = {}): SparseVector {
  const maxNonZero = checkedArguments(bytes, options);
  return native === undefined ? fingerprintJs(bytes, maxNonZero) : fingerprintNative(native, bytes, maxNonZero);
}

/**
 * The JavaScript construction, whatever {@link fingerprintImplementation} says: the reference the
 * native kernel is tested against, and the one benchmarks compare it with.
 *
 * @example
 * ```ts
 * contentFingerprintJs(bytes, { maxNonZero: 256 }).equals(chunkFingerprint(bytes)); // true
 * ```
 */
export function contentFingerprintJs(bytes: Uint8Array, options: ContentFingerprintOptions = {}): SparseVector {
  return fingerprintJs(bytes, checkedArguments(bytes, options));
}

/** Validates the arguments of the public functions; returns maxNonZero (Infinity: no limit). */
function checkedArguments(bytes: Uint8Array, options: ContentFingerprintOptions): number {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('contentFingerprint: bytes must be a Uint8Array');
  const maxNonZero = options.maxNonZero ?? Number.POSITIVE_INFINITY;
  if (!(maxNonZero >= 0)) throw new RangeError(`contentFingerprint: maxNonZero must be >= 0, got ${maxNonZero}`);
  return maxNonZero;
}

/** The JavaScript construction (arguments already checked). */
function fingerprintJs(bytes: Uint8Array, maxNonZero: number): SparseVector {
  const counts = scratchCounts;
  const occupied = scratchOccupied;
  const gear = GEAR;
  const anchorShift = 32 - ANCHOR_MASK_BITS;
  const length = bytes.length;
  let hash = 0;
  // The first WINDOW-1 positions hash a partial window (bytes before the input are implicit
  // zeros) and would make features depend on where the input starts: they never anchor.
  const warmUpEnd = Math.min(length, FINGERPRINT_WINDOW_BYTES - 1);
  for (let position = 0; position < warmUpEnd; position += 1) {
    hash = ((hash << 4) + gear[bytes[position]]) | 0;
  }
  // Unrolled by four: the rolling hash is most of a write's CPU after SHA-256, and the loop
  // overhead was a third of it. Anchors are counted in the same order, so the result is identical.
  let position = warmUpEnd;
  for (const unrolledEnd = length - 3; position < unrolledEnd; position += 4) {
    hash = ((hash << 4) + gear[bytes[position]]) | 0;
    if (hash >>> anchorShift === 0) countFeature(hash, counts, occupied);
    hash = ((hash << 4) + gear[bytes[position + 1]]) | 0;
    if (hash >>> anchorShift === 0) countFeature(hash, counts, occupied);
    hash = ((hash << 4) + gear[bytes[position + 2]]) | 0;
    if (hash >>> anchorShift === 0) countFeature(hash, counts, occupied);
    hash = ((hash << 4) + gear[bytes[position + 3]]) | 0;
    if (hash >>> anchorShift === 0) countFeature(hash, counts, occupied);
  }
  for (; position < length; position += 1) {
    hash = ((hash << 4) + gear[bytes[position]]) | 0;
    if (hash >>> anchorShift === 0) countFeature(hash, counts, occupied);
  }
  return collectSigns(maxNonZero);
}

/** Counts the feature of one anchor's window hash (small enough for the JIT to inline). */
function countFeature(hash: number, counts: Int32Array, occupied: Int32Array): void {
  // The murmur3 finalizer, kept in int32 arithmetic.
  let feature = hash ^ FINGERPRINT_SEED;
  feature ^= feature >>> 16;
  feature = Math.imul(feature, 0x85ebca6b);
  feature ^= feature >>> 13;
  feature = Math.imul(feature, 0xc2b2ae35);
  feature ^= feature >>> 16;
  // Low 31 bits pick the dimension (modulo bias ~ 10^4 / 2^31, negligible); bit 31 the sign.
  const dimension = (feature & 0x7fffffff) % FINGERPRINT_DIMENSION;
  occupied[dimension >>> 5] |= 1 << (dimension & 31);
  counts[dimension] += feature < 0 ? -1 : 1;
}

/** Turns the scratch counts into a sorted ternary vector (thinned to maxNonZero) and resets the scratch state. */
function collectSigns(maxNonZero: number): SparseVector {
  const counts = scratchCounts;
  const occupied = scratchOccupied;
  const positiveOut = scratchPositive;
  const negativeOut = scratchNegative;
  let positiveCount = 0;
  let negativeCount = 0;
  for (let word = 0; word < OCCUPIED_WORDS; word += 1) {
    let bits = occupied[word];
    if (bits === 0) continue;
    occupied[word] = 0;
    while (bits !== 0) {
      const lowest = bits & -bits;
      const dimension = (word << 5) + 31 - Math.clz32(lowest);
      bits ^= lowest;
      const count = counts[dimension];
      counts[dimension] = 0;
      if (count > 0) positiveOut[positiveCount++] = dimension;
      else if (count < 0) negativeOut[negativeCount++] = dimension;
    }
  }
  if (positiveCount + negativeCount <= maxNonZero) {
    return new SparseVector(FINGERPRINT_DIMENSION, positiveOut.slice(0, positiveCount), negativeOut.slice(0, negativeCount));
  }
  // Consistent thinning: keep the non-zero dimensions with the lowest seeded priority. A
  // candidate packs (priority, dimension, sign) into one float so a single numeric sort ranks them.
  const candidates = new Float64Array(positiveCount + negativeCount);
  for (let index = 0; index < positiveCount; index += 1) candidates[index] = (dimensionPriority(positiveOut[index]) * FINGERPRINT_DIMENSION + positiveOut[index]) * 2;
  for (let index = 0; index < negativeCount; index += 1) candidates[positiveCount + index] = (dimensionPriority(negativeOut[index]) * FINGERPRINT_DIMENSION + negativeOut[index]) * 2 + 1;
  candidates.sort();
  const kept = candidates.subarray(0, maxNonZero);
  let keptPositive = 0;
  for (let index = 0; index < kept.length; index += 1) if (kept[index] % 2 === 0) keptPositive += 1;
  const positive = new Uint32Array(keptPositive);
  const negative = new Uint32Array(kept.length - keptPositive);
  keptPositive = 0;
  let keptNegative = 0;
  for (let index = 0; index < kept.length; index += 1) {
    const dimension = Math.floor(kept[index] / 2) % FINGERPRINT_DIMENSION;
    if (kept[index] % 2 === 0) positive[keptPositive++] = dimension;
    else negative[keptNegative++] = dimension;
  }
  positive.sort();
  negative.sort();
  return new SparseVector(FINGERPRINT_DIMENSION, positive, negative);
}

/**
 * Shift-robust content fingerprint of one chunk (any length >= 0). Deterministic: the same bytes
 * give the same vector in every process and version {@link FINGERPRINT_VERSION}. About 64 non-zeros
 * for a 4 KiB chunk of varied content; an empty or constant chunk may give the zero vector.
 *
 * @example
 * ```ts
 * const a = chunkFingerprint(chunkBytes);
 * const b = chunkFingerprint(chunkBytes.subarray(100)); // shifted content, high cosine with a
 * ```
 */
export function chunkFingerprint(bytes: Uint8Array): SparseVector {
  return contentFingerprint(bytes, { maxNonZero: CHUNK_FINGERPRINT_MAX_NON_ZERO });
}

/** A chunk's fingerprint and its serialization. */
export interface SerializedFingerprint {
  /** `chunkFingerprint(bytes)`. */
  vector: SparseVector;
  /** `serializeVector(vector)`: the vsa vector format version 1 (src/vsa/serialize.ts). */
  serialized: Uint8Array;
}

/**
 * {@link chunkFingerprint} and its serialization together: the native kernel writes both in one
 * call (the write path stores every chunk's fingerprint serialized, and serializing in
 * JavaScript cost about as much as the native fingerprint itself).
 *
 * @example
 * ```ts
 * const { vector, serialized } = serializedChunkFingerprint(chunkBytes);
 * ```
 */
export function serializedChunkFingerprint(bytes: Uint8Array): SerializedFingerprint {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('serializedChunkFingerprint: bytes must be a Uint8Array');
  if (native === undefined) {
    const vector = fingerprintJs(bytes, CHUNK_FINGERPRINT_MAX_NON_ZERO);
    return { vector, serialized: serializeVector(vector) };
  }
  return serializedNative(native, bytes);
}

/** Output staging of the native serialization: at most 7 header bytes + 2 per dimension. */
const nativeSerialized = new Uint8Array(7 + 2 * FINGERPRINT_DIMENSION);

/** The native fingerprint and serialization of one chunk. */
function serializedNative(kernels: NativeKernels, bytes: Uint8Array): SerializedFingerprint {
  const result = kernels.fingerprintSerialized(bytes, CHUNK_FINGERPRINT_MAX_NON_ZERO, nativeOut, nativeSerialized);
  const packed = result % 0x1000_0000;
  const positiveCount = packed >>> 14;
  const negativeCount = packed & 16383;
  return {
    vector: new SparseVector(FINGERPRINT_DIMENSION, nativeOut.slice(0, positiveCount), nativeOut.slice(positiveCount, positiveCount + negativeCount)),
    serialized: nativeSerialized.slice(0, (result - packed) / 0x1000_0000),
  };
}

/**
 * {@link chunkFingerprint} of every `chunkBytes` piece of `bytes` (the last one may be shorter),
 * in one native call when the addon is loaded: for callers holding many chunks of one buffer.
 *
 * @example
 * ```ts
 * const vectors = chunkFingerprints(fileBytes, 4096); // vectors[i] = chunkFingerprint(chunk i)
 * ```
 */
export function chunkFingerprints(bytes: Uint8Array, chunkBytes: number): SparseVector[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('chunkFingerprints: bytes must be a Uint8Array');
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkFingerprints: chunkBytes must be an integer >= 1, got ${chunkBytes}`);
  const chunkCount = Math.ceil(bytes.length / chunkBytes);
  const vectors: SparseVector[] = [];
  if (native === undefined) {
    for (let chunk = 0; chunk < chunkCount; chunk += 1) {
      vectors.push(fingerprintJs(bytes.subarray(chunk * chunkBytes, (chunk + 1) * chunkBytes), CHUNK_FINGERPRINT_MAX_NON_ZERO));
    }
    return vectors;
  }
  // A chunk yields at most min(budget, its length) non-zeros (one anchor per byte at most).
  const counts = new Uint32Array(2 * chunkCount);
  const dims = new Uint32Array(Math.min(bytes.length, chunkCount * CHUNK_FINGERPRINT_MAX_NON_ZERO));
  native.fingerprintChunks(bytes, chunkBytes, CHUNK_FINGERPRINT_MAX_NON_ZERO, dims, counts);
  let offset = 0;
  for (let chunk = 0; chunk < chunkCount; chunk += 1) {
    const positiveEnd = offset + counts[2 * chunk];
    const negativeEnd = positiveEnd + counts[2 * chunk + 1];
    // Views of one buffer: no copy per chunk (the vectors own their slices, nobody writes dims again).
    vectors.push(new SparseVector(FINGERPRINT_DIMENSION, dims.subarray(offset, positiveEnd), dims.subarray(positiveEnd, negativeEnd)));
    offset = negativeEnd;
  }
  return vectors;
}

/**
 * {@link chunkFingerprint} of every `chunkBytes` piece of `bytes` (the last one may be shorter) as
 * indices: chunk i's positive then negative dimensions follow chunk i-1's in `dims`, with
 * `counts[2i]` positives and `counts[2i + 1]` negatives; one native call when the addon is loaded.
 * For writers that keep fingerprints in columns (no vector object per chunk).
 *
 * @example
 * ```ts
 * const { dims, counts } = chunkFingerprintIndices(bytes, 4096);
 * ```
 */
export function chunkFingerprintIndices(bytes: Uint8Array, chunkBytes: number): { dims: Uint32Array; counts: Uint32Array } {
  const chunkCount = Math.ceil(bytes.length / chunkBytes);
  const counts = new Uint32Array(2 * chunkCount);
  if (native === undefined) {
    const vectors = chunkFingerprints(bytes, chunkBytes);
    const dims = new Uint32Array(vectors.reduce((sum, vector) => sum + vector.nonZeroCount, 0));
    let offset = 0;
    vectors.forEach((vector, chunk) => {
      dims.set(vector.positive, offset);
      dims.set(vector.negative, offset + vector.positive.length);
      offset += vector.nonZeroCount;
      counts[2 * chunk] = vector.positive.length;
      counts[2 * chunk + 1] = vector.negative.length;
    });
    return { dims, counts };
  }
  // A chunk yields at most min(budget, its length) non-zeros (one anchor per byte at most).
  const room = new Uint32Array(Math.min(bytes.length, chunkCount * CHUNK_FINGERPRINT_MAX_NON_ZERO));
  const written = native.fingerprintChunks(bytes, chunkBytes, CHUNK_FINGERPRINT_MAX_NON_ZERO, room, counts);
  return { dims: room.subarray(0, written), counts };
}

/** Output staging of the native kernel: positive then negative dimensions. */
const nativeOut = new Uint32Array(FINGERPRINT_DIMENSION);

/** The native construction (arguments already checked). */
function fingerprintNative(kernels: NativeKernels, bytes: Uint8Array, maxNonZero: number): SparseVector {
  const packed = kernels.fingerprint(bytes, maxNonZero >= FINGERPRINT_DIMENSION ? FINGERPRINT_DIMENSION : Math.floor(maxNonZero), nativeOut);
  const positiveCount = packed >>> 14;
  const negativeCount = packed & 16383;
  return new SparseVector(FINGERPRINT_DIMENSION, nativeOut.slice(0, positiveCount), nativeOut.slice(positiveCount, positiveCount + negativeCount));
}

/**
 * Loads the native kernel and keeps it only if it implements this format version and reproduces
 * the JavaScript construction on a fixed input (with and without thinning): a stale or wrong
 * build falls back to JavaScript instead of writing fingerprints of another construction.
 */
function selectImplementation(): { kernels?: NativeKernels; reason: string } {
  const loaded = loadNativeKernels();
  const kernels = loaded.kernels;
  if (kernels === undefined) return loaded;
  if (kernels.version !== FINGERPRINT_VERSION || kernels.dimension !== FINGERPRINT_DIMENSION) {
    return { reason: `native addon implements fingerprint version ${kernels.version} / dimension ${kernels.dimension}, not ${FINGERPRINT_VERSION} / ${FINGERPRINT_DIMENSION} (stale build? run npm ci)` };
  }
  const sample = new Uint8Array(24_576);
  let state = 0x9e3779b9;
  for (let index = 0; index < sample.length; index += 1) {
    state = Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + index;
    sample[index] = state >>> 24;
  }
  for (const [length, budget] of [[4096, CHUNK_FINGERPRINT_MAX_NON_ZERO], [sample.length, 64], [sample.length, Number.POSITIVE_INFINITY]] as const) {
    const bytes = sample.subarray(0, length);
    if (!fingerprintNative(kernels, bytes, budget).equals(fingerprintJs(bytes, budget))) {
      return { reason: 'native addon disagrees with the JavaScript fingerprint (stale build? run npm ci)' };
    }
  }
  for (const length of [0, 4096, sample.length]) {
    const bytes = sample.subarray(0, length);
    const both = serializedNative(kernels, bytes);
    const expected = serializeVector(fingerprintJs(bytes, CHUNK_FINGERPRINT_MAX_NON_ZERO));
    if (!both.vector.equals(fingerprintJs(bytes, CHUNK_FINGERPRINT_MAX_NON_ZERO)) || !equalBytes(both.serialized, expected)) {
      return { reason: 'native addon disagrees with the JavaScript fingerprint serialization (stale build? run npm ci)' };
    }
  }
  return { kernels, reason: 'loaded' };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index += 1) if (a[index] !== b[index]) return false;
  return true;
}

const selected = selectImplementation();
const native = selected.kernels;

/**
 * Which construction {@link contentFingerprint} uses in this thread: 'native' or 'js', and why.
 *
 * @example
 * ```ts
 * fingerprintImplementation(); // { kind: 'native', reason: 'loaded' }
 * ```
 */
export function fingerprintImplementation(): { kind: 'native' | 'js'; reason: string } {
  return { kind: native === undefined ? 'js' : 'native', reason: selected.reason };
}

/**
 * Fingerprint of a whole file: the majority bundle of its chunk fingerprints (the sign of the
 * per-dimension sum). Chunk features rarely collide, so the file vector holds nearly every chunk
 * feature and its cosine with a chunk is about sqrt(chunk non-zeros / file non-zeros).
 *
 * @example
 * ```ts
 * const file = fileFingerprint(chunks.map((chunk) => chunkFingerprint(chunk)));
 * ```
 */
export function fileFingerprint(chunkFingerprints: readonly SparseVector[]): SparseVector {
  for (const fingerprint of chunkFingerprints) {
    if (fingerprint.dimension !== FINGERPRINT_DIMENSION) throw new RangeError(`fileFingerprint: dimension ${fingerprint.dimension} is not ${FINGERPRINT_DIMENSION}`);
  }
  return majorityBundle(chunkFingerprints, FINGERPRINT_DIMENSION);
}
