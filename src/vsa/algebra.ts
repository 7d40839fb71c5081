/**
 * The sparse vector algebra: pairwise bundle, bind, permute and thinning.
 *
 * Each kernel has two forms: `bind(a, b)` returns a fresh SparseVector, and `bindInto(a, b,
 * scratch)` writes into a reusable {@link SparseScratch} so hot loops (the codec's per-byte
 * work) do not allocate. All kernels are linear merges of the sorted index lists.
 *
 * @example
 * ```ts
 * const a = basisVector('demo', 0);
 * const b = basisVector('demo', 1);
 * const scratch = new SparseScratch();
 * bindInto(a, b, scratch);            // no allocation once the scratch is large enough
 * const bound = scratch.toVector(a.dimension);
 * bind(bound, b).equals(mask(a, b));   // self-inverse on b's support
 * ```
 */
import { assertSameDimension, SparseVector } from './sparse.js';

/**
 * Growable output buffers for the `...Into` kernels. After a kernel call, the result is
 * `positive[0..positiveLength)` and `negative[0..negativeLength)`; the next call overwrites it.
 *
 * @example
 * ```ts
 * const scratch = new SparseScratch(512);
 * bundleInto(a, b, scratch);
 * scratch.positiveLength + scratch.negativeLength; // non-zeros of the bundle
 * ```
 */
export class SparseScratch {
  positive: Uint32Array;
  negative: Uint32Array;
  positiveLength = 0;
  negativeLength = 0;

  constructor(capacity = 256) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`scratch capacity must be a non-negative integer, got ${capacity}`);
    this.positive = new Uint32Array(capacity);
    this.negative = new Uint32Array(capacity);
  }

  /** Makes room for `count` indices in each list (allocates only when growing). */
  ensureCapacity(count: number): void {
    if (this.positive.length < count) this.positive = new Uint32Array(Math.max(count, this.positive.length * 2));
    if (this.negative.length < count) this.negative = new Uint32Array(Math.max(count, this.negative.length * 2));
  }

  /** Copies the current result into a new SparseVector (its constructor re-checks the invariants). */
  toVector(dimension: number): SparseVector {
    return new SparseVector(dimension, this.positive.slice(0, this.positiveLength), this.negative.slice(0, this.negativeLength));
  }
}

/**
 * Pairwise conflict-cancelling bundle: at each position, sign(a + b). Where a and b agree or one
 * is zero the non-zero survives; where they conflict (+1 against -1) the result is 0.
 * Commutative; not associative (use {@link BundleAccumulator} for bundles of many vectors).
 *
 * @example
 * ```ts
 * const a = new SparseVector(8, Uint32Array.of(1, 2), Uint32Array.of());
 * const b = new SparseVector(8, Uint32Array.of(3), Uint32Array.of(2));
 * bundle(a, b); // +1 at 1 and 3; 2 cancelled
 * ```
 */
export function bundle(a: SparseVector, b: SparseVector): SparseVector {
  const scratch = new SparseScratch(0);
  bundleInto(a, b, scratch);
  return scratch.toVector(a.dimension);
}

/**
 * {@link bundle} into a reusable scratch (allocates only when the scratch must grow).
 *
 * @example
 * ```ts
 * bundleInto(a, b, scratch);
 * const result = scratch.toVector(a.dimension);
 * ```
 */
export function bundleInto(a: SparseVector, b: SparseVector, scratch: SparseScratch): void {
  assertSameDimension(a, b);
  scratch.ensureCapacity(a.nonZeroCount + b.nonZeroCount);
  // +1 survives where one side is +1 and the other is not -1 (and symmetrically for -1).
  scratch.positiveLength = unionMinus(a.positive, b.positive, a.negative, b.negative, scratch.positive);
  scratch.negativeLength = unionMinus(a.negative, b.negative, a.positive, b.positive, scratch.negative);
}

/**
 * Bind: the element-wise product. Non-zero only where both are non-zero: +1 where the signs
 * agree, -1 where they differ. Commutative and associative; self-inverse on its support:
 * bind(bind(a, b), b) is a restricted to the positions where b is non-zero.
 *
 * @example
 * ```ts
 * const a = new SparseVector(8, Uint32Array.of(1, 2), Uint32Array.of(5));
 * const b = new SparseVector(8, Uint32Array.of(2), Uint32Array.of(1, 6));
 * bind(a, b); // -1 at 1, +1 at 2
 * ```
 */
export function bind(a: SparseVector, b: SparseVector): SparseVector {
  const scratch = new SparseScratch(0);
  bindInto(a, b, scratch);
  return scratch.toVector(a.dimension);
}

/**
 * {@link bind} into a reusable scratch (allocates only when the scratch must grow).
 *
 * @example
 * ```ts
 * bindInto(a, b, scratch);
 * scratch.positiveLength; // positions where a and b agree
 * ```
 */
export function bindInto(a: SparseVector, b: SparseVector, scratch: SparseScratch): void {
  assertSameDimension(a, b);
  const capacity = Math.min(a.nonZeroCount, b.nonZeroCount);
  scratch.ensureCapacity(capacity);
  // Agreeing signs give +1; the two "agree" intersections are disjoint, so a merge of two
  // intersections stays strictly increasing.
  scratch.positiveLength = mergedIntersections(a.positive, b.positive, a.negative, b.negative, scratch.positive);
  scratch.negativeLength = mergedIntersections(a.positive, b.negative, a.negative, b.positive, scratch.negative);
}

/**
 * Cyclic shift: the value at position i moves to (i + shift) mod dimension. `shift` may be any
 * safe integer, negative too. permute(permute(v, s), -s) is v.
 *
 * @example
 * ```ts
 * const v = new SparseVector(8, Uint32Array.of(6), Uint32Array.of(1));
 * permute(v, 3); // +1 at 1 (6+3 wraps), -1 at 4
 * ```
 */
export function permute(v: SparseVector, shift: number): SparseVector {
  const scratch = new SparseScratch(0);
  permuteInto(v, shift, scratch);
  return scratch.toVector(v.dimension);
}

/**
 * The inverse of {@link permute}: inversePermute(permute(v, s), s) is v.
 *
 * @example
 * ```ts
 * inversePermute(permute(v, 5), 5).equals(v); // true
 * ```
 */
export function inversePermute(v: SparseVector, shift: number): SparseVector {
  return permute(v, -shift);
}

/**
 * {@link permute} into a reusable scratch (allocates only when the scratch must grow).
 *
 * @example
 * ```ts
 * permuteInto(v, 3, scratch);
 * scratch.toVector(v.dimension).equals(permute(v, 3)); // true
 * ```
 */
export function permuteInto(v: SparseVector, shift: number, scratch: SparseScratch): void {
  if (!Number.isSafeInteger(shift)) throw new RangeError(`shift must be a safe integer, got ${shift}`);
  const dimension = v.dimension;
  const normalized = ((shift % dimension) + dimension) % dimension;
  scratch.ensureCapacity(Math.max(v.positive.length, v.negative.length));
  scratch.positiveLength = rotateSorted(v.positive, normalized, dimension, scratch.positive);
  scratch.negativeLength = rotateSorted(v.negative, normalized, dimension, scratch.negative);
}

/**
 * Deterministic thinning to at most `targetNonZeroCount` non-zeros (thinning scheme 1). The
 * survivors are the non-zeros whose position has the smallest rank, rank(i) = fmix32(i XOR
 * 0x9e3779b9) (MurmurHash3's finalizer, a bijection on uint32, so ranks never tie). The rank
 * depends on the position only, so similar vectors keep similar positions and cosine between
 * thinned vectors tracks cosine between the originals. A vector already thin enough is returned
 * as it is.
 *
 * @example
 * ```ts
 * const dense = basisVector('demo', 0, { nonZeroCount: 2000 });
 * thin(dense, 200).nonZeroCount; // 200
 * ```
 */
export function thin(v: SparseVector, targetNonZeroCount: number): SparseVector {
  if (!Number.isInteger(targetNonZeroCount) || targetNonZeroCount < 0) {
    throw new RangeError(`targetNonZeroCount must be a non-negative integer, got ${targetNonZeroCount}`);
  }
  if (v.nonZeroCount <= targetNonZeroCount) return v;
  if (targetNonZeroCount === 0) return SparseVector.empty(v.dimension);
  const ranks = new Uint32Array(v.nonZeroCount);
  let at = 0;
  for (const index of v.positive) ranks[at++] = thinningRank(index);
  for (const index of v.negative) ranks[at++] = thinningRank(index);
  const sortedRanks = ranks.slice().sort();
  // Ranks are distinct (fmix32 is a bijection), so exactly targetNonZeroCount ranks are <= this.
  const highestKeptRank = sortedRanks[targetNonZeroCount - 1];
  return new SparseVector(
    v.dimension,
    v.positive.filter((index) => thinningRank(index) <= highestKeptRank),
    v.negative.filter((index) => thinningRank(index) <= highestKeptRank),
  );
}

/**
 * Rank of a position in {@link thin} (thinning scheme 1): fmix32(index XOR 0x9e3779b9), a
 * bijection on uint32. Lower ranks survive thinning.
 *
 * @example
 * ```ts
 * thinningRank(5) !== thinningRank(6); // true for any two distinct positions
 * ```
 */
export function thinningRank(index: number): number {
  let hash = (index ^ 0x9e3779b9) >>> 0;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/**
 * a restricted to the positions where `support` is non-zero (what bind(bind(a, b), b) gives).
 *
 * @example
 * ```ts
 * mask(a, b).nonZeroCount <= b.nonZeroCount; // true
 * ```
 */
export function mask(a: SparseVector, support: SparseVector): SparseVector {
  assertSameDimension(a, support);
  const positive = new Uint32Array(Math.min(a.positive.length, support.nonZeroCount));
  const negative = new Uint32Array(Math.min(a.negative.length, support.nonZeroCount));
  const positiveLength = mergedIntersections(a.positive, support.positive, a.positive, support.negative, positive);
  const negativeLength = mergedIntersections(a.negative, support.positive, a.negative, support.negative, negative);
  return new SparseVector(a.dimension, positive.slice(0, positiveLength), negative.slice(0, negativeLength));
}

/** Writes (x ∪ y) \ (blockX ∪ blockY) where x is blocked by blockY and y by blockX, sorted, deduplicated. */
function unionMinus(x: Uint32Array, y: Uint32Array, blockX: Uint32Array, blockY: Uint32Array, out: Uint32Array): number {
  // x's entries are cancelled by blockY (the other vector's opposite sign), y's by blockX.
  let written = 0;
  let xAt = 0;
  let yAt = 0;
  let blockXAt = 0;
  let blockYAt = 0;
  const xLength = x.length;
  const yLength = y.length;
  while (xAt < xLength || yAt < yLength) {
    const xValue = xAt < xLength ? x[xAt] : END_OF_LIST;
    const yValue = yAt < yLength ? y[yAt] : END_OF_LIST;
    if (xValue === yValue) {
      out[written++] = xValue;
      xAt += 1;
      yAt += 1;
    } else if (xValue < yValue) {
      while (blockYAt < blockY.length && blockY[blockYAt] < xValue) blockYAt += 1;
      if (blockYAt >= blockY.length || blockY[blockYAt] !== xValue) out[written++] = xValue;
      xAt += 1;
    } else {
      while (blockXAt < blockX.length && blockX[blockXAt] < yValue) blockXAt += 1;
      if (blockXAt >= blockX.length || blockX[blockXAt] !== yValue) out[written++] = yValue;
      yAt += 1;
    }
  }
  return written;
}

/** Sentinel above every uint32 index: marks an exhausted intersection. */
const END_OF_LIST = 0x1_0000_0000;

/**
 * Cursors of the two intersections walked by {@link mergedIntersections}: [a1, b1, a2, b2].
 * Module-level so the kernel does not allocate per call; safe because kernels are synchronous
 * and never re-enter.
 */
const intersectionCursors = new Uint32Array(4);

/** Writes the sorted union of (a1 ∩ b1) and (a2 ∩ b2), which the callers guarantee are disjoint. */
function mergedIntersections(a1: Uint32Array, b1: Uint32Array, a2: Uint32Array, b2: Uint32Array, out: Uint32Array): number {
  const cursors = intersectionCursors;
  cursors.fill(0);
  let written = 0;
  let next1 = nextCommon(a1, b1, cursors, 0);
  let next2 = nextCommon(a2, b2, cursors, 2);
  while (next1 !== END_OF_LIST || next2 !== END_OF_LIST) {
    if (next1 < next2) {
      out[written++] = next1;
      next1 = nextCommon(a1, b1, cursors, 0);
    } else {
      out[written++] = next2;
      next2 = nextCommon(a2, b2, cursors, 2);
    }
  }
  return written;
}

/** Next value present in both `left` and `right`, advancing cursors[slot] and cursors[slot + 1]. */
function nextCommon(left: Uint32Array, right: Uint32Array, cursors: Uint32Array, slot: number): number {
  let leftAt = cursors[slot];
  let rightAt = cursors[slot + 1];
  let found = END_OF_LIST;
  while (leftAt < left.length && rightAt < right.length) {
    const leftValue = left[leftAt];
    const rightValue = right[rightAt];
    if (leftValue === rightValue) {
      leftAt += 1;
      rightAt += 1;
      found = leftValue;
      break;
    }
    if (leftValue < rightValue) leftAt += 1;
    else rightAt += 1;
  }
  cursors[slot] = leftAt;
  cursors[slot + 1] = rightAt;
  return found;
}

/** Writes (indices + shift) mod dimension, sorted: the wrapped tail first, then the rest. */
function rotateSorted(indices: Uint32Array, shift: number, dimension: number, out: Uint32Array): number {
  const wrapFrom = dimension - shift;
  // First index that wraps around (>= dimension - shift), by binary search.
  let low = 0;
  let high = indices.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (indices[middle] < wrapFrom) low = middle + 1;
    else high = middle;
  }
  let written = 0;
  for (let at = low; at < indices.length; at += 1) out[written++] = indices[at] - wrapFrom;
  for (let at = 0; at < low; at += 1) out[written++] = indices[at] + shift;
  return written;
}
