import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { SparseScratch, bind, bindInto, bundle, bundleInto, inversePermute, mask, permute, permuteInto, thin, thinningRank } from './algebra.js';
import { basisVector } from './basis.js';
import { SparseVector } from './sparse.js';
import { RUNS_SCALE, vectorOf } from '../../test/support/vsa-arbitraries.js';


function fromDense(dimension: number, values: Map<number, number> | Int8Array): SparseVector {
  const entries = values instanceof Map ? [...values.entries()] : [...values.entries()].filter((entry) => entry[1] !== 0);
  const sorted = entries.sort((left, right) => left[0] - right[0]);
  return new SparseVector(
    dimension,
    Uint32Array.from(sorted.filter((entry) => entry[1] > 0).map((entry) => entry[0])),
    Uint32Array.from(sorted.filter((entry) => entry[1] < 0).map((entry) => entry[0])),
  );
}

function dense(v: SparseVector): Int8Array {
  const values = new Int8Array(v.dimension);
  for (const index of v.positive) values[index] = 1;
  for (const index of v.negative) values[index] = -1;
  return values;
}

const dimensionArbitrary = fc.integer({ min: 1, max: 200 });
const pairOfVectors = dimensionArbitrary.chain((dimension) => fc.tuple(vectorOf(dimension), vectorOf(dimension)));
const tripleOfVectors = dimensionArbitrary.chain((dimension) => fc.tuple(vectorOf(dimension), vectorOf(dimension), vectorOf(dimension)));

test('bundle equals sign(a + b) position by position when given random vectors', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const denseA = dense(a);
      const denseB = dense(b);
      const expected = denseA.map((value, index) => Math.sign(value + denseB[index]));
      assert.ok(bundle(a, b).equals(fromDense(a.dimension, expected)));
      assert.ok(bundle(a, b).equals(bundle(b, a)));
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('bind equals the element-wise product when given random vectors', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const denseB = dense(b);
      const expected = dense(a).map((value, index) => value * denseB[index]);
      assert.ok(bind(a, b).equals(fromDense(a.dimension, expected)));
      assert.ok(bind(a, b).equals(bind(b, a)));
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('bind is self-inverse on its support: bind(bind(a, b), b) is a restricted to b', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const restored = bind(bind(a, b), b);
      assert.ok(restored.equals(mask(a, b)));
      const denseB = dense(b);
      const expected = dense(a).map((value, index) => (denseB[index] === 0 ? 0 : value));
      assert.ok(mask(a, b).equals(fromDense(a.dimension, expected)));
      // On b's own support nothing is lost.
      assert.ok(bind(bind(b, a), a).equals(mask(b, a)));
      assert.ok(bind(bind(mask(a, b), b), b).equals(mask(a, b)));
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('bind is associative when given three random vectors', () => {
  fc.assert(
    fc.property(tripleOfVectors, ([a, b, c]) => {
      assert.ok(bind(bind(a, b), c).equals(bind(a, bind(b, c))));
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
});

test('permute shifts cyclically and inversePermute undoes it when given any shift', () => {
  fc.assert(
    fc.property(
      dimensionArbitrary.chain((dimension) => fc.tuple(vectorOf(dimension), fc.integer({ min: -1_000_000, max: 1_000_000 }))),
      ([v, shift]) => {
        const shifted = permute(v, shift);
        const denseV = dense(v);
        const expected = new Int8Array(v.dimension);
        for (let index = 0; index < v.dimension; index += 1) {
          expected[(((index + shift) % v.dimension) + v.dimension) % v.dimension] = denseV[index];
        }
        assert.ok(shifted.equals(fromDense(v.dimension, expected)));
        assert.ok(inversePermute(shifted, shift).equals(v));
        assert.ok(permute(shifted, -shift).equals(v));
        assert.ok(permute(v, shift + v.dimension).equals(shifted));
      },
    ),
    { numRuns: 300 * RUNS_SCALE },
  );
  assert.throws(() => permute(SparseVector.empty(8), 0.5), RangeError);
  assert.throws(() => permute(SparseVector.empty(8), Number.MAX_SAFE_INTEGER + 2), RangeError);
});

test('the Into kernels give the same results when one scratch is reused across calls', () => {
  const scratch = new SparseScratch(0);
  fc.assert(
    fc.property(pairOfVectors, fc.integer({ min: -500, max: 500 }), ([a, b], shift) => {
      bindInto(a, b, scratch);
      assert.ok(scratch.toVector(a.dimension).equals(bind(a, b)));
      bundleInto(a, b, scratch);
      assert.ok(scratch.toVector(a.dimension).equals(bundle(a, b)));
      permuteInto(a, shift, scratch);
      assert.ok(scratch.toVector(a.dimension).equals(permute(a, shift)));
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('the kernels throw RangeError when given vectors of different dimensions', () => {
  const a = SparseVector.empty(8);
  const b = SparseVector.empty(9);
  for (const kernel of [bind, bundle, mask]) assert.throws(() => kernel(a, b), RangeError);
});

test('thin keeps the lowest-ranked non-zeros with their signs when given random vectors', () => {
  fc.assert(
    fc.property(
      dimensionArbitrary.chain((dimension) => fc.tuple(vectorOf(dimension, 200), fc.nat(dimension))),
      ([v, target]) => {
        const thinned = thin(v, target);
        assert.equal(thinned.nonZeroCount, Math.min(target, v.nonZeroCount));
        const allIndices = [...v.positive, ...v.negative].sort((left, right) => thinningRank(left) - thinningRank(right));
        const kept = new Set(allIndices.slice(0, target));
        const denseV = dense(v);
        const expected = denseV.map((value, index) => (kept.has(index) ? value : 0));
        assert.ok(thinned.equals(fromDense(v.dimension, expected)));
        assert.ok(thin(v, target).equals(thinned), 'deterministic');
      },
    ),
    { numRuns: 300 * RUNS_SCALE },
  );
  assert.throws(() => thin(SparseVector.empty(8), -1), RangeError);
  assert.throws(() => thin(SparseVector.empty(8), 1.5), RangeError);
});

test('thin gives the golden results of thinning scheme 1 when given the golden inputs', () => {
  const golden = JSON.parse(readFileSync(new URL('../../../testdata/vsa/basis-v1.json', import.meta.url), 'utf8')) as {
    thin: Array<{ source: { seed: string; index: number; dimension: number; nonZeroCount: number }; targetNonZeroCount: number; positive: number[]; negative: number[] }>;
  };
  assert.equal(golden.thin.length, 3);
  for (const testCase of golden.thin) {
    const source = basisVector(testCase.source.seed, testCase.source.index, testCase.source);
    const thinned = thin(source, testCase.targetNonZeroCount);
    assert.deepEqual([...thinned.positive], testCase.positive);
    assert.deepEqual([...thinned.negative], testCase.negative);
  }
});

test('thinningRank is a bijection on a sample, so thinning never meets a tie', () => {
  const seen = new Set<number>();
  for (let index = 0; index < 100_000; index += 1) seen.add(thinningRank(index));
  assert.equal(seen.size, 100_000);
});

test('thinned similar vectors stay similar when given a vector and a perturbed copy', () => {
  const original = basisVector('similar', 0, { nonZeroCount: 4000 });
  const noise = basisVector('similar', 1, { nonZeroCount: 400 });
  const perturbed = bundle(bundle(original, noise), noise); // flips/clears up to 400 positions
  const cosineBefore = dot(original, perturbed) / Math.sqrt(original.nonZeroCount * perturbed.nonZeroCount);
  const cosineAfter = cosineOf(thin(original, 400), thin(perturbed, 400));
  assert.ok(cosineBefore > 0.85, `before ${cosineBefore}`);
  assert.ok(cosineAfter > 0.75, `after ${cosineAfter}`);
});

function dot(a: SparseVector, b: SparseVector): number {
  const denseB = dense(b);
  let total = 0;
  dense(a).forEach((value, index) => {
    total += value * denseB[index];
  });
  return total;
}

function cosineOf(a: SparseVector, b: SparseVector): number {
  return dot(a, b) / Math.sqrt(a.nonZeroCount * b.nonZeroCount);
}

test('SparseScratch grows only when a result needs more room and refuses a bad capacity', () => {
  const scratch = new SparseScratch(4);
  const positiveBuffer = scratch.positive;
  bindInto(new SparseVector(8, Uint32Array.of(1, 2), Uint32Array.of()), new SparseVector(8, Uint32Array.of(1, 2), Uint32Array.of()), scratch);
  assert.equal(scratch.positive, positiveBuffer, 'no reallocation when the result fits');
  assert.deepEqual([...scratch.positive.subarray(0, scratch.positiveLength)], [1, 2]);
  const wide = new SparseVector(100, Uint32Array.from({ length: 50 }, (_, index) => index * 2), Uint32Array.of());
  bundleInto(wide, wide, scratch);
  assert.ok(scratch.positive.length >= 50);
  assert.ok(scratch.toVector(100).equals(wide));
  assert.throws(() => new SparseScratch(-1), RangeError);
  assert.throws(() => new SparseScratch(1.5), RangeError);
});
