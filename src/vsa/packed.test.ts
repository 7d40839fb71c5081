import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bind, bundle } from './algebra.js';
import { basisVector } from './basis.js';
import { PackedVector, packInto, packedBindInto, packedBundleInto, packedCosine, packedDot, packedWordCount, popcount32 } from './packed.js';
import { SparseVector, cosine, dot } from './sparse.js';
import { RUNS_SCALE, vectorOf } from '../../test/support/vsa-arbitraries.js';


// Dimensions around word boundaries (31, 32, 33, 64...) matter most for the tail-bit invariant.
const dimensionArbitrary = fc.oneof(fc.integer({ min: 1, max: 130 }), fc.constantFrom(31, 32, 33, 63, 64, 65, 10_000));
const pairOfVectors = dimensionArbitrary.chain((dimension) => fc.tuple(vectorOf(dimension, 300), vectorOf(dimension, 300)));

test('popcount32 counts the set bits when given any 32-bit word', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (word) => {
      let expected = 0;
      for (let bit = 0; bit < 32; bit += 1) expected += (word >>> bit) & 1;
      assert.equal(popcount32(word), expected);
      assert.equal(popcount32(word | 0), expected);
    }),
    { numRuns: 1000 * RUNS_SCALE },
  );
  assert.equal(popcount32(0xffff_ffff), 32);
  assert.equal(popcount32(0), 0);
});

test('fromSparse then toSparse gives the same vector and the documented bit layout', () => {
  fc.assert(
    fc.property(dimensionArbitrary.chain((dimension) => vectorOf(dimension, 300)), (v) => {
      const packed = PackedVector.fromSparse(v);
      assert.equal(packed.positive.length, packedWordCount(v.dimension));
      assert.ok(packed.toSparse().equals(v));
      assert.equal(packed.nonZeroCount, v.nonZeroCount);
      for (const index of v.positive) assert.equal((packed.positive[index >>> 5] >>> (index & 31)) & 1, 1);
      for (const index of v.negative) assert.equal((packed.negative[index >>> 5] >>> (index & 31)) & 1, 1);
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('packedDot and packedCosine equal the sparse dot and cosine when given random vectors', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const packedA = PackedVector.fromSparse(a);
      const packedB = PackedVector.fromSparse(b);
      assert.equal(packedDot(packedA, packedB), dot(a, b));
      assert.equal(packedCosine(packedA, packedB), cosine(a, b));
      assert.equal(packedDot(packedA, packedA), a.nonZeroCount);
    }),
    { numRuns: 400 * RUNS_SCALE },
  );
});

test('packed bind and bundle equal the sparse kernels, also when the output aliases an input', () => {
  fc.assert(
    fc.property(pairOfVectors, ([a, b]) => {
      const packedA = PackedVector.fromSparse(a);
      const packedB = PackedVector.fromSparse(b);
      const out = PackedVector.zero(a.dimension);
      packedBindInto(packedA, packedB, out);
      assert.ok(out.toSparse().equals(bind(a, b)));
      packedBundleInto(packedA, packedB, out);
      assert.ok(out.toSparse().equals(bundle(a, b)));
      // Re-asserting the invariants on the output planes proves they were kept.
      assert.doesNotThrow(() => new PackedVector(out.dimension, out.positive, out.negative));
      packedBindInto(packedA, packedB, packedA);
      assert.ok(packedA.toSparse().equals(bind(a, b)));
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('packInto overwrites every earlier bit of the output when reused', () => {
  const out = PackedVector.zero(10_000);
  for (let index = 0; index < 5; index += 1) {
    const v = basisVector('pack', index);
    packInto(v, out);
    assert.ok(out.toSparse().equals(v));
  }
  assert.throws(() => packInto(SparseVector.empty(9), out), RangeError);
});

test('PackedVector refuses overlapping planes, bits beyond the dimension and wrong word counts', () => {
  assert.throws(() => new PackedVector(40, Uint32Array.of(1, 0), Uint32Array.of(1, 0)), /overlap/);
  assert.throws(() => new PackedVector(40, Uint32Array.of(0, 1 << 8), Uint32Array.of(0, 0)), /beyond the dimension/);
  assert.throws(() => new PackedVector(33, Uint32Array.of(0, 0), Uint32Array.of(0, 0x8000_0000)), /beyond the dimension/);
  assert.throws(() => new PackedVector(40, Uint32Array.of(0), Uint32Array.of(0)), /words/);
  assert.doesNotThrow(() => new PackedVector(32, Uint32Array.of(0xffff_ffff), Uint32Array.of(0)));
  assert.doesNotThrow(() => new PackedVector(40, Uint32Array.of(0, 0xff), Uint32Array.of(0, 0)));
  assert.throws(() => packedDot(PackedVector.zero(32), PackedVector.zero(33)), RangeError);
  assert.equal(packedCosine(PackedVector.zero(32), PackedVector.zero(32)), 0);
});
