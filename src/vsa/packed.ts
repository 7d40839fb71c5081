/**
 * The packed bit-plane form of a ternary vector, for dense vectors (roots, fingerprints) where
 * index lists lose to word-parallel arithmetic.
 *
 * Layout invariants (asserted by the constructor):
 * - `positive` and `negative` each hold wordCount = ceil(dimension / 32) uint32 words;
 * - position i is bit (i & 31) of word (i >>> 5) (little-endian bit order within a word);
 * - a position is set in at most one plane (+1 in `positive`, -1 in `negative`);
 * - bits at positions >= dimension in the last word are 0.
 *
 * The `packed...Into` kernels write into a caller-owned output vector and allocate nothing;
 * with disjoint, in-range inputs their outputs keep the invariants by construction.
 * Equality with the sparse kernels is proved by the fast-check properties in packed.test.ts.
 *
 * @example
 * ```ts
 * const a = PackedVector.fromSparse(basisVector('demo', 0));
 * const b = PackedVector.fromSparse(basisVector('demo', 1));
 * packedDot(a, b) === dot(a.toSparse(), b.toSparse()); // true
 * ```
 */
import { invariant } from '../errors.js';
import { MAX_DIMENSION, SparseVector } from './sparse.js';

/** A ternary vector as two bit planes; see the module comment. */
export class PackedVector {
  readonly dimension: number;
  /** Bit plane of the +1 positions. */
  readonly positive: Uint32Array;
  /** Bit plane of the -1 positions, disjoint from `positive`. */
  readonly negative: Uint32Array;

  /**
   * Wraps two bit planes (taken over, not copied) and asserts the layout invariants.
   *
   * @example
   * ```ts
   * new PackedVector(40, Uint32Array.of(0b101, 0), Uint32Array.of(0b10, 0)); // +1 at 0 and 2, -1 at 1
   * ```
   */
  constructor(dimension: number, positive: Uint32Array, negative: Uint32Array) {
    invariant(Number.isInteger(dimension) && dimension >= 1 && dimension <= MAX_DIMENSION, `dimension ${dimension} out of range`);
    const wordCount = packedWordCount(dimension);
    invariant(positive.length === wordCount && negative.length === wordCount, `bit planes must have ${wordCount} words`);
    for (let word = 0; word < wordCount; word += 1) {
      invariant((positive[word] & negative[word]) === 0, `positive and negative planes overlap in word ${word}`);
    }
    const tailMask = unusedBitsMask(dimension);
    invariant(((positive[wordCount - 1] | negative[wordCount - 1]) & tailMask) === 0, 'bits set beyond the dimension');
    this.dimension = dimension;
    this.positive = positive;
    this.negative = negative;
  }

  /**
   * The all-zero vector: also the output buffer for the `packed...Into` kernels.
   *
   * @example
   * ```ts
   * const out = PackedVector.zero(10_000);
   * ```
   */
  static zero(dimension: number): PackedVector {
    const wordCount = packedWordCount(dimension);
    return new PackedVector(dimension, new Uint32Array(wordCount), new Uint32Array(wordCount));
  }

  /**
   * The packed form of a sparse vector.
   *
   * @example
   * ```ts
   * PackedVector.fromSparse(v).toSparse().equals(v); // true
   * ```
   */
  static fromSparse(v: SparseVector): PackedVector {
    const packed = PackedVector.zero(v.dimension);
    packInto(v, packed);
    return packed;
  }

  /**
   * The sparse form (index lists in increasing order).
   *
   * @example
   * ```ts
   * PackedVector.zero(64).toSparse().nonZeroCount; // 0
   * ```
   */
  toSparse(): SparseVector {
    return new SparseVector(this.dimension, planeIndices(this.positive), planeIndices(this.negative));
  }

  /** Number of non-zero positions (a popcount over both planes). */
  get nonZeroCount(): number {
    let count = 0;
    for (let word = 0; word < this.positive.length; word += 1) count += popcount32(this.positive[word] | this.negative[word]);
    return count;
  }
}

/**
 * Number of uint32 words of one bit plane for `dimension` positions.
 *
 * @example
 * ```ts
 * packedWordCount(10_000); // 313
 * ```
 */
export function packedWordCount(dimension: number): number {
  return Math.ceil(dimension / 32);
}

/**
 * Overwrites `out` with the packed form of `v` (no allocation).
 *
 * @example
 * ```ts
 * const out = PackedVector.zero(v.dimension);
 * packInto(v, out);
 * ```
 */
export function packInto(v: SparseVector, out: PackedVector): void {
  if (v.dimension !== out.dimension) throw new RangeError(`vector dimensions differ: ${v.dimension} and ${out.dimension}`);
  out.positive.fill(0);
  out.negative.fill(0);
  for (const index of v.positive) out.positive[index >>> 5] |= 1 << (index & 31);
  for (const index of v.negative) out.negative[index >>> 5] |= 1 << (index & 31);
}

/**
 * Dot product with popcounts: popcount(agreeing bits) - popcount(opposing bits), per word.
 *
 * @example
 * ```ts
 * packedDot(PackedVector.fromSparse(v), PackedVector.fromSparse(v)) === v.nonZeroCount; // true
 * ```
 */
export function packedDot(a: PackedVector, b: PackedVector): number {
  assertSamePackedDimension(a, b);
  const ap = a.positive;
  const an = a.negative;
  const bp = b.positive;
  const bn = b.negative;
  let total = 0;
  for (let word = 0; word < ap.length; word += 1) {
    const agree = (ap[word] & bp[word]) | (an[word] & bn[word]);
    const oppose = (ap[word] & bn[word]) | (an[word] & bp[word]);
    total += popcount32(agree) - popcount32(oppose);
  }
  return total;
}

/**
 * Cosine similarity in [-1, 1] in one pass over the planes; 0 when either vector is empty.
 * Equal to {@link cosine} on the sparse forms.
 *
 * @example
 * ```ts
 * packedCosine(a, a); // 1 unless a is empty
 * ```
 */
export function packedCosine(a: PackedVector, b: PackedVector): number {
  assertSamePackedDimension(a, b);
  const ap = a.positive;
  const an = a.negative;
  const bp = b.positive;
  const bn = b.negative;
  let dotTotal = 0;
  let aCount = 0;
  let bCount = 0;
  for (let word = 0; word < ap.length; word += 1) {
    const agree = (ap[word] & bp[word]) | (an[word] & bn[word]);
    const oppose = (ap[word] & bn[word]) | (an[word] & bp[word]);
    dotTotal += popcount32(agree) - popcount32(oppose);
    aCount += popcount32(ap[word] | an[word]);
    bCount += popcount32(bp[word] | bn[word]);
  }
  const normProduct = aCount * bCount;
  if (normProduct === 0) return 0;
  const similarity = dotTotal / Math.sqrt(normProduct);
  return similarity > 1 ? 1 : similarity < -1 ? -1 : similarity;
}

/**
 * Bind (element-wise product) into `out`, which may be `a` or `b` (no allocation).
 *
 * @example
 * ```ts
 * packedBindInto(a, b, out); // out.toSparse() equals bind(a.toSparse(), b.toSparse())
 * ```
 */
export function packedBindInto(a: PackedVector, b: PackedVector, out: PackedVector): void {
  assertSamePackedDimension(a, b);
  assertSamePackedDimension(a, out);
  for (let word = 0; word < a.positive.length; word += 1) {
    const ap = a.positive[word];
    const an = a.negative[word];
    const bp = b.positive[word];
    const bn = b.negative[word];
    out.positive[word] = (ap & bp) | (an & bn);
    out.negative[word] = (ap & bn) | (an & bp);
  }
}

/**
 * Pairwise conflict-cancelling bundle, sign(a + b), into `out`, which may be `a` or `b`.
 *
 * @example
 * ```ts
 * packedBundleInto(a, b, out); // out.toSparse() equals bundle(a.toSparse(), b.toSparse())
 * ```
 */
export function packedBundleInto(a: PackedVector, b: PackedVector, out: PackedVector): void {
  assertSamePackedDimension(a, b);
  assertSamePackedDimension(a, out);
  for (let word = 0; word < a.positive.length; word += 1) {
    const ap = a.positive[word];
    const an = a.negative[word];
    const bp = b.positive[word];
    const bn = b.negative[word];
    out.positive[word] = (ap & ~bn) | (bp & ~an);
    out.negative[word] = (an & ~bp) | (bn & ~ap);
  }
}

/**
 * Number of set bits of a 32-bit word (SWAR: no table, no loop).
 *
 * @example
 * ```ts
 * popcount32(0xff00ff00); // 16
 * ```
 */
export function popcount32(word: number): number {
  let bits = word - ((word >>> 1) & 0x55555555);
  bits = (bits & 0x33333333) + ((bits >>> 2) & 0x33333333);
  bits = (bits + (bits >>> 4)) & 0x0f0f0f0f;
  return Math.imul(bits, 0x01010101) >>> 24;
}

function assertSamePackedDimension(a: PackedVector, b: PackedVector): void {
  if (a.dimension !== b.dimension) throw new RangeError(`vector dimensions differ: ${a.dimension} and ${b.dimension}`);
}

/** Mask of the bits of the last word that lie at or beyond `dimension`. */
function unusedBitsMask(dimension: number): number {
  const usedBits = dimension & 31;
  return usedBits === 0 ? 0 : ~((1 << usedBits) - 1) | 0;
}

function planeIndices(plane: Uint32Array): Uint32Array {
  let count = 0;
  for (let word = 0; word < plane.length; word += 1) count += popcount32(plane[word]);
  const indices = new Uint32Array(count);
  let at = 0;
  for (let word = 0; word < plane.length; word += 1) {
    let bits = plane[word];
    while (bits !== 0) {
      const lowest = bits & -bits;
      indices[at++] = word * 32 + (31 - Math.clz32(lowest));
      bits ^= lowest;
    }
  }
  return indices;
}
