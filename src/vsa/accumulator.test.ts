import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { isEmbrError } from '../errors.js';
import { BundleAccumulator, majorityBundle } from './accumulator.js';
import { thinningRank } from './algebra.js';
import { SparseVector } from './sparse.js';
import { RUNS_SCALE, vectorOf } from '../../test/support/vsa-arbitraries.js';


const dimensionArbitrary = fc.integer({ min: 1, max: 150 });
const vectorList = dimensionArbitrary.chain((dimension) => fc.array(vectorOf(dimension), { maxLength: 12 }).map((vectors) => ({ dimension, vectors })));

function denseSum(dimension: number, vectors: SparseVector[]): Int32Array {
  const sums = new Int32Array(dimension);
  for (const v of vectors) {
    for (const index of v.positive) sums[index] += 1;
    for (const index of v.negative) sums[index] -= 1;
  }
  return sums;
}

function isCorrupt(error: unknown): boolean {
  return isEmbrError(error, 'CORRUPT');
}

test('the majority bundle of k copies is the vector when given any vector and k', () => {
  fc.assert(
    fc.property(dimensionArbitrary.chain((dimension) => vectorOf(dimension)), fc.integer({ min: 1, max: 25 }), (v, copies) => {
      const accumulator = new BundleAccumulator(v.dimension);
      for (let copy = 0; copy < copies; copy += 1) accumulator.add(v);
      assert.ok(accumulator.toVector().equals(v));
      assert.ok(majorityBundle(Array.from({ length: copies }, () => v)).equals(v));
      assert.equal(accumulator.vectorCount, copies);
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
});

test('counts equal the dense sum and toVector its sign, in any order of adds', () => {
  fc.assert(
    fc.property(vectorList, fc.integer(), ({ dimension, vectors }, shuffleSeed) => {
      const accumulator = new BundleAccumulator(dimension);
      for (const v of vectors) accumulator.add(v);
      const sums = denseSum(dimension, vectors);
      assert.deepEqual(accumulator.counts, sums);
      const signs = accumulator.toVector();
      for (let index = 0; index < dimension; index += 1) assert.equal(signs.valueAt(index), Math.sign(sums[index]));
      // Order independence: a rotated order gives the same counts.
      const rotation = vectors.length === 0 ? 0 : Math.abs(shuffleSeed) % vectors.length;
      const reordered = new BundleAccumulator(dimension);
      for (const v of [...vectors.slice(rotation), ...vectors.slice(0, rotation)].reverse()) reordered.add(v);
      assert.deepEqual(reordered.counts, accumulator.counts);
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
});

test('subtract restores the previous counts exactly when it undoes an add', () => {
  fc.assert(
    fc.property(vectorList, fc.nat(), ({ dimension, vectors }, pick) => {
      const accumulator = new BundleAccumulator(dimension);
      for (const v of vectors) accumulator.add(v);
      const before = accumulator.counts.slice();
      const beforeVectorCount = accumulator.vectorCount;
      const extra = vectors.length > 0 ? vectors[pick % vectors.length] : SparseVector.empty(dimension);
      accumulator.add(extra).subtract(extra);
      assert.deepEqual(accumulator.counts, before);
      assert.equal(accumulator.vectorCount, beforeVectorCount);
      // Un-bundling everything, in another order, leaves all counts at zero.
      for (const v of [...vectors].reverse()) accumulator.subtract(v);
      assert.ok(accumulator.counts.every((count) => count === 0));
      assert.equal(accumulator.vectorCount, 0);
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
});

test('toVector(max) keeps the largest counts, ties by thinning rank, when over the limit', () => {
  fc.assert(
    fc.property(vectorList, fc.nat(40), ({ dimension, vectors }, limit) => {
      const accumulator = new BundleAccumulator(dimension);
      for (const v of vectors) accumulator.add(v);
      const full = accumulator.toVector();
      const limited = accumulator.toVector(limit);
      assert.equal(limited.nonZeroCount, Math.min(limit, full.nonZeroCount));
      const counts = accumulator.counts;
      const order = [...full.positive, ...full.negative].sort(
        (left, right) => Math.abs(counts[right]) - Math.abs(counts[left]) || thinningRank(left) - thinningRank(right),
      );
      const kept = new Set(order.slice(0, limit));
      for (let index = 0; index < dimension; index += 1) {
        assert.equal(limited.valueAt(index), kept.has(index) ? Math.sign(counts[index]) : 0);
      }
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
  assert.throws(() => new BundleAccumulator(8).toVector(-1), RangeError);
});

test('add throws RangeError and leaves the counts unchanged when a count would overflow int32', () => {
  const counts = new Int32Array(4);
  counts[1] = 0x7fff_ffff;
  counts[2] = -0x8000_0000;
  const accumulator = new BundleAccumulator(4, counts);
  const before = counts.slice();
  assert.throws(() => accumulator.add(new SparseVector(4, Uint32Array.of(0, 1), Uint32Array.of())), RangeError);
  assert.throws(() => accumulator.add(new SparseVector(4, Uint32Array.of(0), Uint32Array.of(2))), RangeError);
  assert.throws(() => accumulator.subtract(new SparseVector(4, Uint32Array.of(0, 2), Uint32Array.of())), RangeError);
  assert.deepEqual(accumulator.counts, before);
  assert.equal(accumulator.vectorCount, 0);
  assert.throws(() => accumulator.add(SparseVector.empty(5)), RangeError);
  assert.throws(() => new BundleAccumulator(4, new Int32Array(3)), RangeError);
  assert.throws(() => new BundleAccumulator(0), RangeError);
});

test('clone copies the counts so changes to one leave the other alone', () => {
  const accumulator = new BundleAccumulator(8).add(new SparseVector(8, Uint32Array.of(1), Uint32Array.of(2)));
  const copy = accumulator.clone();
  copy.add(new SparseVector(8, Uint32Array.of(1), Uint32Array.of()));
  assert.deepEqual([...accumulator.counts], [0, 1, -1, 0, 0, 0, 0, 0]);
  assert.deepEqual([...copy.counts], [0, 2, -1, 0, 0, 0, 0, 0]);
  assert.equal(copy.vectorCount, 2);
});

test('serialize then deserialize gives the same counts when given random bundles', () => {
  fc.assert(
    fc.property(vectorList, fc.array(fc.boolean(), { maxLength: 12 }), ({ dimension, vectors }, signs) => {
      const accumulator = new BundleAccumulator(dimension);
      vectors.forEach((v, at) => (signs[at] ? accumulator.subtract(v) : accumulator.add(v)));
      const restored = BundleAccumulator.deserialize(accumulator.serialize());
      assert.equal(restored.dimension, dimension);
      assert.deepEqual(restored.counts, accumulator.counts);
      assert.equal(restored.vectorCount, accumulator.vectorCount);
      assert.deepEqual(restored.serialize(), accumulator.serialize());
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
});

test('bundle serialization matches the golden bytes of format version 1', () => {
  const golden = JSON.parse(readFileSync(new URL('../../../testdata/vsa/serialization-v1.json', import.meta.url), 'utf8')) as {
    bundleFormat: number;
    bundles: Array<{ name: string; dimension: number; counts: number[]; vectorCount: number; hex: string }>;
  };
  assert.equal(golden.bundleFormat, 1);
  assert.equal(golden.bundles.length, 2);
  for (const testCase of golden.bundles) {
    const accumulator = new BundleAccumulator(testCase.dimension, Int32Array.from(testCase.counts));
    accumulator.vectorCount = testCase.vectorCount;
    assert.equal(Buffer.from(accumulator.serialize()).toString('hex'), testCase.hex, testCase.name);
    const restored = BundleAccumulator.deserialize(Buffer.from(testCase.hex, 'hex'));
    assert.deepEqual([...restored.counts], testCase.counts, testCase.name);
    assert.equal(restored.vectorCount, testCase.vectorCount);
  }
});

test('deserialize throws CORRUPT or gives different counts when any single bit is flipped', () => {
  const accumulator = new BundleAccumulator(300);
  for (let index = 0; index < 300; index += 7) {
    accumulator.add(new SparseVector(300, Uint32Array.of(index), Uint32Array.of((index + 3) % 300)));
  }
  accumulator.subtract(new SparseVector(300, Uint32Array.of(), Uint32Array.of(5, 6, 299)));
  const bytes = accumulator.serialize();
  let corruptCount = 0;
  for (let bit = 0; bit < bytes.length * 8; bit += 1) {
    const damaged = bytes.slice();
    damaged[bit >> 3] ^= 1 << (bit & 7);
    try {
      const restored = BundleAccumulator.deserialize(damaged);
      const same = restored.dimension === accumulator.dimension && restored.vectorCount === accumulator.vectorCount &&
        restored.counts.every((count, index) => count === accumulator.counts[index]);
      assert.ok(!same, `bit ${bit} decoded to the original bundle`);
    } catch (error) {
      assert.ok(isCorrupt(error), `bit ${bit}: ${String(error)}`);
      corruptCount += 1;
    }
  }
  assert.ok(corruptCount > 0);
  for (let length = 0; length < bytes.length; length += 1) {
    assert.throws(() => BundleAccumulator.deserialize(bytes.subarray(0, length)), isCorrupt, `truncated to ${length}`);
  }
  assert.throws(() => BundleAccumulator.deserialize(Uint8Array.from([...bytes, 0])), isCorrupt);
});

test('deserialize throws CORRUPT when given a bad version, a zero count or a huge entry count', () => {
  assert.throws(() => BundleAccumulator.deserialize(Uint8Array.of(2, 8, 0, 0)), isCorrupt);
  assert.throws(() => BundleAccumulator.deserialize(Uint8Array.of(1, 8, 0, 1, 0, 0)), isCorrupt);
  assert.throws(() => BundleAccumulator.deserialize(Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0x07, 0, 0xff, 0xff, 0xff, 0xff, 0x07)), isCorrupt);
  assert.throws(() => BundleAccumulator.deserialize(Uint8Array.of(1, 0, 0, 0)), isCorrupt);
  assert.throws(() => BundleAccumulator.deserialize(Uint8Array.of(1, 4, 0, 1, 4, 2)), isCorrupt);
});
