import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_DIMENSION, SparseVector, cosine, dot, intersectionCount } from './sparse.js';
import { RUNS_SCALE, vectorOf } from '../../test/support/vsa-arbitraries.js';


const pairOfVectors = fc.integer({ min: 1, max: 200 }).chain((dimension) => fc.tuple(vectorOf(dimension), vectorOf(dimension)));

function dense(v: SparseVector): Int8Array {
  const values = new Int8Array(v.dimension);
  for (const index of v.positive) values[index] = 1;
  for (const index of v.negative) values[index] = -1;
  return values;
}

test('SparseVector refuses indices that are unsorted, repeated, out of range or both signs', () => {
  assert.throws(() => new SparseVector(10, Uint32Array.of(3, 2), Uint32Array.of()), /not strictly increasing/);
  assert.throws(() => new SparseVector(10, Uint32Array.of(2, 2), Uint32Array.of()), /not strictly increasing/);
  assert.throws(() => new SparseVector(10, Uint32Array.of(), Uint32Array.of(4, 1)), /not strictly increasing/);
  assert.throws(() => new SparseVector(10, Uint32Array.of(10), Uint32Array.of()), /not below dimension/);
  assert.throws(() => new SparseVector(10, Uint32Array.of(1, 4), Uint32Array.of(4)), /overlap/);
  assert.throws(() => new SparseVector(0, Uint32Array.of(), Uint32Array.of()), /dimension/);
  assert.throws(() => new SparseVector(2.5, Uint32Array.of(), Uint32Array.of()), /dimension/);
  assert.doesNotThrow(() => new SparseVector(10, Uint32Array.of(0, 9), Uint32Array.of(5)));
});

test('SparseVector.empty has no non-zeros and the default dimension when given none', () => {
  const empty = SparseVector.empty();
  assert.equal(empty.dimension, DEFAULT_DIMENSION);
  assert.equal(DEFAULT_DIMENSION, 10_000);
  assert.equal(empty.nonZeroCount, 0);
  assert.equal(SparseVector.empty(7).dimension, 7);
});

test('valueAt and equals agree with the dense form when given random vectors', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const denseA = dense(a);
      for (let index = 0; index < a.dimension; index += 1) assert.equal(a.valueAt(index), denseA[index]);
      const denseB = dense(b);
      assert.equal(a.equals(b), denseA.every((value, index) => value === denseB[index]));
      assert.equal(a.nonZeroCount, denseA.filter((value) => value !== 0).length);
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
});

test('dot equals the dense dot product when given random vectors', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const denseA = dense(a);
      const denseB = dense(b);
      let expected = 0;
      for (let index = 0; index < a.dimension; index += 1) expected += denseA[index] * denseB[index];
      assert.equal(dot(a, b), expected);
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('cosine is symmetric and within [-1, 1], 1 on itself and 0 with an empty vector', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const similarity = cosine(a, b);
      assert.equal(similarity, cosine(b, a));
      assert.ok(similarity >= -1 && similarity <= 1, `cosine ${similarity}`);
      assert.ok(!Number.isNaN(similarity));
      assert.equal(cosine(a, a), a.nonZeroCount === 0 ? 0 : 1);
      assert.equal(cosine(a, SparseVector.empty(a.dimension)), 0);
      if (a.nonZeroCount > 0 && b.nonZeroCount > 0) {
        assert.ok(Math.abs(similarity - dot(a, b) / Math.sqrt(a.nonZeroCount * b.nonZeroCount)) < 1e-12);
      }
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('dot and cosine throw RangeError when given vectors of different dimensions', () => {
  assert.throws(() => dot(SparseVector.empty(4), SparseVector.empty(5)), RangeError);
  assert.throws(() => cosine(SparseVector.empty(4), SparseVector.empty(5)), RangeError);
});

test('intersectionCount equals a set intersection when given lists of very different lengths', () => {
  const sortedUnique = (maxLength: number) =>
    fc.uniqueArray(fc.nat(3000), { maxLength }).map((values) => Uint32Array.from(values.sort((left, right) => left - right)));
  fc.assert(
    fc.property(sortedUnique(8), sortedUnique(1500), (short, long) => {
      const longSet = new Set(long);
      const expected = [...short].filter((value) => longSet.has(value)).length;
      assert.equal(intersectionCount(short, long), expected);
      assert.equal(intersectionCount(long, short), expected);
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
  // Every value of the short list present, and the edges of the long list.
  const long = Uint32Array.from({ length: 1000 }, (_, index) => index * 3);
  assert.equal(intersectionCount(Uint32Array.of(0, 3, 1500, 2997), long), 4);
  assert.equal(intersectionCount(Uint32Array.of(1, 2998, 5000), long), 0);
});

test('dot equals the dense dot product when a sparse vector meets a dense one', () => {
  const dimension = 2000;
  fc.assert(
    fc.property(vectorOf(dimension, 20), vectorOf(dimension, 1800), (a, b) => {
      const denseA = dense(a);
      const denseB = dense(b);
      let expected = 0;
      for (let index = 0; index < dimension; index += 1) expected += denseA[index] * denseB[index];
      assert.equal(dot(a, b), expected);
      assert.equal(dot(b, a), expected);
    }),
    { numRuns: 100 * RUNS_SCALE },
  );
});
