/**
 * The majority bundle over integer counts: the order-independent, reversible superposition.
 *
 * Each position keeps a signed count: `add(v)` adds v's +1/-1 values, `subtract(v)` takes them
 * away again (exactly: counts are integers, so add then subtract restores the previous counts,
 * which a pairwise fold of bundles cannot). `toVector()` reads the sign of every count. The
 * root vector of an engram is such an accumulator, so deleting a file un-bundles it.
 *
 * Serialized form, format version 1 (docs/design/vsa.md, "Bundle format"):
 * ```
 * u8      format version = 1
 * varint  dimension
 * varint  zigzag(vectorCount)      adds minus subtracts
 * varint  entryCount               number of non-zero counts
 * entryCount x { varint gap, varint zigzag(count) }   gap as in the vector format; count != 0
 * ```
 *
 * @example
 * ```ts
 * const root = new BundleAccumulator(10_000);
 * root.add(fileA); root.add(fileB); root.add(fileA);
 * root.subtract(fileB);                // now exactly 2 x fileA
 * root.toVector().equals(fileA);       // true
 * ```
 */
import { thinningRank } from './algebra.js';
import { DEFAULT_DIMENSION, MAX_DIMENSION, SparseVector } from './sparse.js';
import { VarintReader, varintByteLength, writeVarint, zigzagDecode, zigzagEncode } from './varint.js';

/** Version byte of the bundle serialization. */
export const BUNDLE_FORMAT_VERSION = 1;

const COUNT_MAX = 0x7fff_ffff;
const COUNT_MIN = -0x8000_0000;

/** Signed per-position counts of a majority bundle; see the module comment. */
export class BundleAccumulator {
  readonly dimension: number;
  /** The count at each position (sum of the +1/-1 values added minus those subtracted). */
  readonly counts: Int32Array;
  /** Number of vectors added minus number subtracted. */
  vectorCount = 0;

  /**
   * An empty bundle (all counts 0), or one over `counts` (taken over, not copied).
   *
   * @example
   * ```ts
   * new BundleAccumulator(10_000).toVector().nonZeroCount; // 0
   * ```
   */
  constructor(dimension: number = DEFAULT_DIMENSION, counts?: Int32Array) {
    if (!Number.isInteger(dimension) || dimension < 1 || dimension > MAX_DIMENSION) {
      throw new RangeError(`dimension must be an integer in [1, ${MAX_DIMENSION}], got ${dimension}`);
    }
    if (counts !== undefined && counts.length !== dimension) throw new RangeError(`counts has ${counts.length} entries, dimension is ${dimension}`);
    this.dimension = dimension;
    this.counts = counts ?? new Int32Array(dimension);
  }

  /**
   * Adds `v` (counts += v). Throws RangeError, leaving the counts unchanged, if a count would
   * leave the int32 range.
   *
   * @example
   * ```ts
   * accumulator.add(basisVector('file', 1));
   * ```
   */
  add(v: SparseVector): this {
    this.apply(v, 1);
    this.vectorCount += 1;
    return this;
  }

  /**
   * Subtracts `v` (counts -= v): exactly undoes an earlier `add(v)`.
   *
   * @example
   * ```ts
   * accumulator.add(v).subtract(v); // counts as before
   * ```
   */
  subtract(v: SparseVector): this {
    this.apply(v, -1);
    this.vectorCount -= 1;
    return this;
  }

  /**
   * The majority vector: +1 where the count is positive, -1 where negative, 0 where zero. With
   * `maxNonZeroCount`, keeps only that many non-zeros: the largest |count| first, ties broken by
   * the thinning rank of {@link thin} (so the result is deterministic).
   *
   * @example
   * ```ts
   * accumulator.toVector(2000).nonZeroCount <= 2000; // true
   * ```
   */
  toVector(maxNonZeroCount?: number): SparseVector {
    const counts = this.counts;
    let positiveCount = 0;
    let negativeCount = 0;
    for (let index = 0; index < counts.length; index += 1) {
      if (counts[index] > 0) positiveCount += 1;
      else if (counts[index] < 0) negativeCount += 1;
    }
    if (maxNonZeroCount !== undefined) {
      if (!Number.isInteger(maxNonZeroCount) || maxNonZeroCount < 0) throw new RangeError(`maxNonZeroCount must be a non-negative integer, got ${maxNonZeroCount}`);
      if (positiveCount + negativeCount > maxNonZeroCount) return this.strongest(positiveCount + negativeCount, maxNonZeroCount);
    }
    const positive = new Uint32Array(positiveCount);
    const negative = new Uint32Array(negativeCount);
    let positiveAt = 0;
    let negativeAt = 0;
    for (let index = 0; index < counts.length; index += 1) {
      if (counts[index] > 0) positive[positiveAt++] = index;
      else if (counts[index] < 0) negative[negativeAt++] = index;
    }
    return new SparseVector(this.dimension, positive, negative);
  }

  /**
   * A copy with its own counts.
   *
   * @example
   * ```ts
   * const before = accumulator.clone();
   * ```
   */
  clone(): BundleAccumulator {
    const copy = new BundleAccumulator(this.dimension, this.counts.slice());
    copy.vectorCount = this.vectorCount;
    return copy;
  }

  /**
   * Serializes the counts in bundle format version 1 (see the module comment).
   *
   * @example
   * ```ts
   * BundleAccumulator.deserialize(accumulator.serialize()).counts; // equal to accumulator.counts
   * ```
   */
  serialize(): Uint8Array {
    const counts = this.counts;
    let entryCount = 0;
    let byteLength = 0;
    let previous = -1;
    for (let index = 0; index < counts.length; index += 1) {
      if (counts[index] === 0) continue;
      entryCount += 1;
      byteLength += varintByteLength(index - previous - 1) + varintByteLength(zigzagEncode(counts[index]));
      previous = index;
    }
    const vectorCountEncoded = zigzagEncode(this.vectorCount);
    byteLength += 1 + varintByteLength(this.dimension) + varintByteLength(vectorCountEncoded) + varintByteLength(entryCount);
    const out = new Uint8Array(byteLength);
    out[0] = BUNDLE_FORMAT_VERSION;
    let offset = writeVarint(out, 1, this.dimension);
    offset = writeVarint(out, offset, vectorCountEncoded);
    offset = writeVarint(out, offset, entryCount);
    previous = -1;
    for (let index = 0; index < counts.length; index += 1) {
      if (counts[index] === 0) continue;
      offset = writeVarint(out, offset, index - previous - 1);
      offset = writeVarint(out, offset, zigzagEncode(counts[index]));
      previous = index;
    }
    if (offset !== out.length) throw new Error(`invariant failed: bundle serialization wrote ${offset} of ${out.length} bytes`);
    return out;
  }

  /**
   * Reads a bundle serialized by {@link BundleAccumulator.serialize}. Malformed input throws
   * EmbrError('CORRUPT'), never returns a damaged accumulator.
   *
   * @example
   * ```ts
   * const root = BundleAccumulator.deserialize(storedBytes);
   * ```
   */
  static deserialize(bytes: Uint8Array): BundleAccumulator {
    const reader = new VarintReader(bytes, 'bundle');
    const version = reader.readByte();
    if (version !== BUNDLE_FORMAT_VERSION) reader.corrupt(`unknown bundle format version ${version}`);
    const dimension = reader.readVarint();
    if (dimension < 1 || dimension > MAX_DIMENSION) reader.corrupt(`dimension ${dimension} out of range`);
    const vectorCountEncoded = reader.readVarint();
    const entryCount = reader.readVarint();
    if (entryCount > dimension) reader.corrupt('more entries than the dimension');
    // Two bytes at least per entry: refuse before allocating `dimension` counts for nothing.
    if (entryCount * 2 > bytes.length - reader.offset) reader.corrupt('truncated entries');
    const counts = new Int32Array(dimension);
    let previous = -1;
    for (let entry = 0; entry < entryCount; entry += 1) {
      const index = previous + 1 + reader.readVarint();
      if (index >= dimension) reader.corrupt(`index ${index} not below dimension ${dimension}`);
      const count = zigzagDecode(reader.readVarint());
      if (count === 0) reader.corrupt('zero count stored');
      counts[index] = count;
      previous = index;
    }
    reader.expectEnd();
    const accumulator = new BundleAccumulator(dimension, counts);
    accumulator.vectorCount = zigzagDecode(vectorCountEncoded);
    return accumulator;
  }

  private apply(v: SparseVector, sign: 1 | -1): void {
    if (v.dimension !== this.dimension) throw new RangeError(`vector dimension ${v.dimension} differs from bundle dimension ${this.dimension}`);
    const counts = this.counts;
    const up = sign === 1 ? v.positive : v.negative;
    const down = sign === 1 ? v.negative : v.positive;
    // Check first so a refused add leaves the counts untouched (no half-applied vector).
    // Indexed loops, not for-of: this is the root-update hot path and V8 keeps them tighter.
    for (let at = 0; at < up.length; at += 1) if (counts[up[at]] === COUNT_MAX) throw new RangeError(`bundle count overflow at position ${up[at]}`);
    for (let at = 0; at < down.length; at += 1) if (counts[down[at]] === COUNT_MIN) throw new RangeError(`bundle count underflow at position ${down[at]}`);
    for (let at = 0; at < up.length; at += 1) counts[up[at]] += 1;
    for (let at = 0; at < down.length; at += 1) counts[down[at]] -= 1;
  }

  private strongest(nonZeroCount: number, keepCount: number): SparseVector {
    const counts = this.counts;
    const candidates = new Uint32Array(nonZeroCount);
    let at = 0;
    for (let index = 0; index < counts.length; index += 1) if (counts[index] !== 0) candidates[at++] = index;
    const ordered = Array.from(candidates).sort(
      (left, right) => Math.abs(counts[right]) - Math.abs(counts[left]) || thinningRank(left) - thinningRank(right),
    );
    const kept = ordered.slice(0, keepCount).sort((left, right) => left - right);
    const positive = Uint32Array.from(kept.filter((index) => counts[index] > 0));
    const negative = Uint32Array.from(kept.filter((index) => counts[index] < 0));
    return new SparseVector(this.dimension, positive, negative);
  }
}

/**
 * Majority bundle of several vectors (order-independent): the sign of the summed values.
 *
 * @example
 * ```ts
 * majorityBundle([v, v, w]); // v wherever v is non-zero (2 votes beat 1), w elsewhere
 * ```
 */
export function majorityBundle(vectors: readonly SparseVector[], dimension: number = vectors[0]?.dimension ?? DEFAULT_DIMENSION): SparseVector {
  const accumulator = new BundleAccumulator(dimension);
  for (const v of vectors) accumulator.add(v);
  return accumulator.toVector();
}
