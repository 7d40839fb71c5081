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
 * Pure: no `node:*`, no clock, no randomness; the gear table comes from a fixed seed.
 */
import { majorityBundle } from '../vsa/accumulator.js';
import { SparseVector } from '../vsa/sparse.js';

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

// Scratch state reused across calls (JavaScript runs one call at a time per thread). counts is all
// zero between calls; touched lists the dimensions a call made non-zero so it can reset only those.
const scratchCounts = new Int32Array(FINGERPRINT_DIMENSION);
// A count can return to zero and leave it again; seen keeps such a dimension from being listed twice.
const scratchSeen = new Uint8Array(FINGERPRINT_DIMENSION);
// At most FINGERPRINT_DIMENSION distinct dimensions can be touched, so touched never grows.
const scratchTouched = new Uint32Array(FINGERPRINT_DIMENSION);

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
  if (!(bytes instanceof Uint8Array)) throw new TypeError('contentFingerprint: bytes must be a Uint8Array');
  const maxNonZero = options.maxNonZero ?? Number.POSITIVE_INFINITY;
  if (!(maxNonZero >= 0)) throw new RangeError(`contentFingerprint: maxNonZero must be >= 0, got ${maxNonZero}`);
  const counts = scratchCounts;
  const seen = scratchSeen;
  const touched = scratchTouched;
  const gear = GEAR;
  const anchorShift = 32 - ANCHOR_MASK_BITS;
  const length = bytes.length;
  let touchedCount = 0;
  let hash = 0;
  // The first WINDOW-1 positions hash a partial window (bytes before the input are implicit
  // zeros) and would make features depend on where the input starts: they never anchor.
  const warmUpEnd = Math.min(length, FINGERPRINT_WINDOW_BYTES - 1);
  for (let position = 0; position < warmUpEnd; position += 1) {
    hash = ((hash << 4) + gear[bytes[position]]) | 0;
  }
  for (let position = warmUpEnd; position < length; position += 1) {
    hash = ((hash << 4) + gear[bytes[position]]) | 0;
    if (hash >>> anchorShift !== 0) continue;
    // The murmur3 finalizer, inlined and kept in int32 arithmetic: this is the per-anchor hot path.
    let feature = hash ^ FINGERPRINT_SEED;
    feature ^= feature >>> 16;
    feature = Math.imul(feature, 0x85ebca6b);
    feature ^= feature >>> 13;
    feature = Math.imul(feature, 0xc2b2ae35);
    feature ^= feature >>> 16;
    // Low 31 bits pick the dimension (modulo bias ~ 10^4 / 2^31, negligible); bit 31 the sign.
    const dimension = (feature & 0x7fffffff) % FINGERPRINT_DIMENSION;
    if (seen[dimension] === 0) {
      seen[dimension] = 1;
      touched[touchedCount] = dimension;
      touchedCount += 1;
    }
    counts[dimension] += feature < 0 ? -1 : 1;
  }
  return collectSigns(touchedCount, maxNonZero);
}

/** Turns the scratch counts of the touched dimensions into a sorted ternary vector and resets them. */
function collectSigns(touchedCount: number, maxNonZero: number): SparseVector {
  const counts = scratchCounts;
  const touched = scratchTouched.subarray(0, touchedCount);
  let nonZeroCount = 0;
  for (let index = 0; index < touchedCount; index += 1) {
    if (counts[touched[index]] !== 0) nonZeroCount += 1;
  }
  let kept: Uint32Array = touched;
  if (nonZeroCount > maxNonZero) {
    // Consistent thinning: keep the non-zero dimensions with the lowest seeded priority.
    const candidates = new Float64Array(nonZeroCount);
    let candidateCount = 0;
    for (let index = 0; index < touchedCount; index += 1) {
      const dimension = touched[index];
      if (counts[dimension] !== 0) {
        candidates[candidateCount] = dimensionPriority(dimension) * FINGERPRINT_DIMENSION + dimension;
        candidateCount += 1;
      }
    }
    candidates.sort();
    kept = new Uint32Array(maxNonZero);
    for (let index = 0; index < maxNonZero; index += 1) kept[index] = candidates[index] % FINGERPRINT_DIMENSION;
  }
  let positiveCount = 0;
  let negativeCount = 0;
  for (let index = 0; index < kept.length; index += 1) {
    const count = counts[kept[index]];
    if (count > 0) positiveCount += 1;
    else if (count < 0) negativeCount += 1;
  }
  const positive = new Uint32Array(positiveCount);
  const negative = new Uint32Array(negativeCount);
  positiveCount = 0;
  negativeCount = 0;
  for (let index = 0; index < kept.length; index += 1) {
    const dimension = kept[index];
    const count = counts[dimension];
    if (count > 0) positive[positiveCount++] = dimension;
    else if (count < 0) negative[negativeCount++] = dimension;
  }
  for (let index = 0; index < touchedCount; index += 1) {
    counts[touched[index]] = 0;
    scratchSeen[touched[index]] = 0;
  }
  sortSmall(positive);
  sortSmall(negative);
  return new SparseVector(FINGERPRINT_DIMENSION, positive, negative);
}

/** Sorts ascending in place: insertion sort for the typical few dozen entries, built-in sort beyond. */
function sortSmall(values: Uint32Array): void {
  if (values.length > 64) {
    values.sort();
    return;
  }
  for (let index = 1; index < values.length; index += 1) {
    const value = values[index];
    let hole = index;
    while (hole > 0 && values[hole - 1] > value) {
      values[hole] = values[hole - 1];
      hole -= 1;
    }
    values[hole] = value;
  }
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
