/**
 * Sparse ternary vectors: the value at each of `dimension` positions is -1, 0 or +1, and only
 * the positions of the non-zeros are stored, as two sorted index lists.
 *
 * Layout invariants (asserted by the constructor, so no SparseVector can break them):
 * - `positive` and `negative` are strictly increasing (sorted, no duplicates);
 * - every index is an integer in `[0, dimension)`;
 * - `positive` and `negative` are disjoint (a position is +1, -1 or 0, never both).
 *
 * The arrays are owned by the vector once constructed: callers must not mutate them.
 *
 * @example
 * ```ts
 * const a = new SparseVector(16, Uint32Array.of(1, 5), Uint32Array.of(7));
 * const b = new SparseVector(16, Uint32Array.of(5), Uint32Array.of(2, 7));
 * dot(a, b);    // 2  (+1*+1 at 5, -1*-1 at 7)
 * cosine(a, b); // 2 / sqrt(3 * 3)
 * ```
 */
import { invariant } from '../errors.js';

/** The default number of positions of a vector (the reference project's 10,000). */
export const DEFAULT_DIMENSION = 10_000;

/** Largest supported dimension: indices are stored in Uint32Array and packed planes in 32-bit words. */
export const MAX_DIMENSION = 0x7fff_ffff;

/** A sparse ternary vector; see the module comment for its invariants. */
export class SparseVector {
  readonly dimension: number;
  /** Positions holding +1, strictly increasing, each < dimension. */
  readonly positive: Uint32Array;
  /** Positions holding -1, strictly increasing, each < dimension, disjoint from `positive`. */
  readonly negative: Uint32Array;
  /**
   * The bytes `serializeVector(this)` gives, once some caller made or parsed them (see
   * `rememberSerialization` in serialize.ts). A cache: the vector itself never changes.
   */
  knownSerialization: Uint8Array | undefined;

  /**
   * Builds a vector and asserts every layout invariant (O(nonZeroCount)).
   *
   * @example
   * ```ts
   * const v = new SparseVector(10_000, Uint32Array.of(3, 9), Uint32Array.of(4));
   * v.nonZeroCount; // 3
   * ```
   */
  constructor(dimension: number, positive: Uint32Array, negative: Uint32Array) {
    invariant(Number.isInteger(dimension) && dimension >= 1 && dimension <= MAX_DIMENSION, `dimension ${dimension} out of range`);
    invariant(positive instanceof Uint32Array && negative instanceof Uint32Array, 'indices must be Uint32Array');
    assertStrictlyIncreasingBelow(positive, dimension, 'positive');
    assertStrictlyIncreasingBelow(negative, dimension, 'negative');
    invariant(intersectionCount(positive, negative) === 0, 'positive and negative indices overlap');
    this.dimension = dimension;
    this.positive = positive;
    this.negative = negative;
    this.knownSerialization = undefined;
  }

  /**
   * A vector from indices its caller has already proven valid (strictly increasing, below
   * `dimension`, disjoint), without checking them again: the deserializer builds them that way
   * (gaps, a bound check per index, an overlap check), and re-checking every decoded fingerprint
   * cost ~7 ms per 10 MB written. Everyone else uses the checking constructor.
   *
   * @example
   * ```ts
   * SparseVector.fromCheckedIndices(8, Uint32Array.of(2), Uint32Array.of(3)).nonZeroCount; // 2
   * ```
   */
  static fromCheckedIndices(dimension: number, positive: Uint32Array, negative: Uint32Array): SparseVector {
    const vector = Object.create(SparseVector.prototype) as { dimension: number; positive: Uint32Array; negative: Uint32Array; knownSerialization: Uint8Array | undefined };
    // Fields in the constructor's order: one object shape for every vector.
    vector.dimension = dimension;
    vector.positive = positive;
    vector.negative = negative;
    vector.knownSerialization = undefined;
    return vector as SparseVector;
  }

  /**
   * The all-zero vector.
   *
   * @example
   * ```ts
   * SparseVector.empty().nonZeroCount; // 0
   * ```
   */
  static empty(dimension: number = DEFAULT_DIMENSION): SparseVector {
    return new SparseVector(dimension, new Uint32Array(0), new Uint32Array(0));
  }

  /** Number of non-zero positions (+1 and -1). */
  get nonZeroCount(): number {
    return this.positive.length + this.negative.length;
  }

  /**
   * The value (-1, 0 or +1) at `index`, by binary search (O(log nonZeroCount)).
   *
   * @example
   * ```ts
   * new SparseVector(8, Uint32Array.of(2), Uint32Array.of(3)).valueAt(3); // -1
   * ```
   */
  valueAt(index: number): -1 | 0 | 1 {
    if (sortedContains(this.positive, index)) return 1;
    if (sortedContains(this.negative, index)) return -1;
    return 0;
  }

  /**
   * True when both vectors have the same dimension and the same non-zeros.
   *
   * @example
   * ```ts
   * SparseVector.empty(8).equals(SparseVector.empty(8)); // true
   * ```
   */
  equals(other: SparseVector): boolean {
    return (
      this.dimension === other.dimension &&
      sameIndices(this.positive, other.positive) &&
      sameIndices(this.negative, other.negative)
    );
  }
}

/**
 * Dot product of two vectors of the same dimension: (#agreeing non-zeros) - (#opposing non-zeros).
 * A linear merge of the sorted index lists, O(nonZeroCount(a) + nonZeroCount(b)), no allocation.
 *
 * @example
 * ```ts
 * const v = new SparseVector(8, Uint32Array.of(1), Uint32Array.of(2));
 * dot(v, v); // 2
 * ```
 */
export function dot(a: SparseVector, b: SparseVector): number {
  assertSameDimension(a, b);
  return (
    intersectionCount(a.positive, b.positive) +
    intersectionCount(a.negative, b.negative) -
    intersectionCount(a.positive, b.negative) -
    intersectionCount(a.negative, b.positive)
  );
}

/**
 * Cosine similarity in [-1, 1]: dot / (|a| |b|), where |v| = sqrt(nonZeroCount). Defined as 0
 * when either vector is empty (no direction to compare), never NaN.
 *
 * @example
 * ```ts
 * const v = new SparseVector(8, Uint32Array.of(1, 4), Uint32Array.of(2));
 * cosine(v, v); // 1
 * ```
 */
export function cosine(a: SparseVector, b: SparseVector): number {
  const normProduct = a.nonZeroCount * b.nonZeroCount;
  if (normProduct === 0) {
    assertSameDimension(a, b);
    return 0;
  }
  const similarity = dot(a, b) / Math.sqrt(normProduct);
  // Rounding of sqrt can push |similarity| a hair above 1 for identical vectors; clamp so the
  // documented range holds exactly.
  return similarity > 1 ? 1 : similarity < -1 ? -1 : similarity;
}

/**
 * Throws RangeError when two vectors of different dimensions are combined (caller misuse).
 *
 * @example
 * ```ts
 * assertSameDimension(SparseVector.empty(8), SparseVector.empty(9)); // throws RangeError
 * ```
 */
export function assertSameDimension(a: SparseVector, b: SparseVector): void {
  if (a.dimension !== b.dimension) {
    throw new RangeError(`vector dimensions differ: ${a.dimension} and ${b.dimension}`);
  }
}

/**
 * Number of values present in both strictly increasing lists. A linear merge when the lengths
 * are comparable; when one list is far longer (a query against a dense root), each value of the
 * short list is found in the long one by galloping search, O(short * log(long / short)).
 *
 * @example
 * ```ts
 * intersectionCount(Uint32Array.of(1, 3, 5), Uint32Array.of(3, 4, 5)); // 2
 * ```
 */
export function intersectionCount(left: Uint32Array, right: Uint32Array): number {
  if (left.length * GALLOP_RATIO < right.length) return gallopingIntersectionCount(left, right);
  if (right.length * GALLOP_RATIO < left.length) return gallopingIntersectionCount(right, left);
  let count = 0;
  let leftIndex = 0;
  let rightIndex = 0;
  const leftLength = left.length;
  const rightLength = right.length;
  while (leftIndex < leftLength && rightIndex < rightLength) {
    const leftValue = left[leftIndex];
    const rightValue = right[rightIndex];
    if (leftValue === rightValue) {
      count += 1;
      leftIndex += 1;
      rightIndex += 1;
    } else if (leftValue < rightValue) {
      leftIndex += 1;
    } else {
      rightIndex += 1;
    }
  }
  return count;
}

/** Length ratio above which {@link intersectionCount} gallops instead of merging (measured crossover region: 8-32). */
const GALLOP_RATIO = 16;

function gallopingIntersectionCount(short: Uint32Array, long: Uint32Array): number {
  let count = 0;
  let low = 0;
  const longLength = long.length;
  for (let shortIndex = 0; shortIndex < short.length && low < longLength; shortIndex += 1) {
    const value = short[shortIndex];
    // Gallop: double the step until long[low + step] >= value, then binary search that window.
    let step = 1;
    while (low + step < longLength && long[low + step] < value) step *= 2;
    let high = Math.min(low + step, longLength - 1);
    low += step >> 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (long[middle] < value) low = middle + 1;
      else high = middle;
    }
    if (long[low] === value) {
      count += 1;
      low += 1;
    } else if (long[low] < value) {
      low += 1;
    }
  }
  return count;
}

function assertStrictlyIncreasingBelow(indices: Uint32Array, dimension: number, name: string): void {
  let previous = -1;
  for (let position = 0; position < indices.length; position += 1) {
    const index = indices[position];
    invariant(index > previous, `${name} indices not strictly increasing at position ${position}`);
    previous = index;
  }
  invariant(previous < dimension, `${name} index ${previous} not below dimension ${dimension}`);
}

function sortedContains(indices: Uint32Array, index: number): boolean {
  let low = 0;
  let high = indices.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const value = indices[middle];
    if (value === index) return true;
    if (value < index) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}

function sameIndices(left: Uint32Array, right: Uint32Array): boolean {
  if (left.length !== right.length) return false;
  for (let position = 0; position < left.length; position += 1) {
    if (left[position] !== right[position]) return false;
  }
  return true;
}
