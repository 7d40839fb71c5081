// The holographic profile is the reference algebra: its vectors equal the majority bundle of
// byte vectors bound to position vectors (built with src/vsa), and its fast decoder picks what
// unbinding plus a dot product with each of the 256 byte vectors picks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { SparseVector, dot } from '../vsa/sparse.js';
import { bind } from '../vsa/algebra.js';
import { majorityBundle } from '../vsa/accumulator.js';
import { createChunkCodec } from './codec.js';
import { HolographicCore, STRIPE_DIMENSIONS, createHolographicBasis, popcount32, type HolographicBasis } from './holographic.js';

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());

function byteVector(basis: HolographicBasis, byte: number): SparseVector {
  const entries: Array<[number, boolean]> = [];
  for (let stripe = 0; stripe < basis.stripeCount; stripe += 1) {
    const index = stripe * STRIPE_DIMENSIONS + basis.permutation[stripe * STRIPE_DIMENSIONS + byte];
    entries.push([index, ((basis.byteNegativeBits[byte] >>> stripe) & 1) === 1]);
  }
  entries.sort((left, right) => left[0] - right[0]);
  return new SparseVector(
    basis.groupDimension,
    Uint32Array.from(entries.filter(([, negative]) => !negative).map(([index]) => index)),
    Uint32Array.from(entries.filter(([, negative]) => negative).map(([index]) => index)),
  );
}

function positionVector(basis: HolographicBasis, position: number): SparseVector {
  const positive: number[] = [];
  const negative: number[] = [];
  for (let stripe = 0; stripe < basis.stripeCount; stripe += 1) {
    for (let offset = 0; offset < STRIPE_DIMENSIONS; offset += 1) {
      const patternByte = basis.positionPatterns[(position * basis.stripeCount + stripe) * 32 + (offset >>> 3)];
      ((patternByte >>> (offset & 7)) & 1 ? negative : positive).push(stripe * STRIPE_DIMENSIONS + offset);
    }
  }
  return new SparseVector(basis.groupDimension, Uint32Array.from(positive), Uint32Array.from(negative));
}

test('basis: every stripe is a permutation of the 256 byte values and owner is its inverse', () => {
  const basis = createHolographicBasis(sha256, 8, 32);
  for (let stripe = 0; stripe < 32; stripe += 1) {
    const offsets = new Set<number>();
    for (let byte = 0; byte < 256; byte += 1) {
      const offset = basis.permutation[stripe * 256 + byte];
      offsets.add(offset);
      assert.equal(basis.owner[stripe * 256 + offset], byte);
    }
    assert.equal(offsets.size, 256);
  }
});

test('basis: the same parameters give the same tables, pinned by their SHA-256', () => {
  const first = createHolographicBasis(sha256, 8, 32);
  const second = createHolographicBasis(sha256, 8, 32);
  const digest = (basis: HolographicBasis): string =>
    createHash('sha256')
      .update(basis.permutation)
      .update(new Uint8Array(basis.byteNegativeBits.buffer))
      .update(basis.positionPatterns)
      .digest('hex');
  assert.equal(digest(first), digest(second));
  // Pinned: a change here is a basis change and needs a new HOLOGRAPHIC_BASIS_VERSION.
  assert.equal(digest(first), HOLOGRAPHIC_BASIS_V1_G8_K32_DIGEST);
  assert.notEqual(digest(createHolographicBasis(sha256, 9, 32)), digest(first), 'G is part of the seed');
});
const HOLOGRAPHIC_BASIS_V1_G8_K32_DIGEST = 'f9f15a4589e311835f682a7a73aa4b93ab98a35dee4a4fc13a85add1aae8d7a2';

test('basis: position patterns are balanced and byte signs are balanced (seeded, not degenerate)', () => {
  const basis = createHolographicBasis(sha256, 8, 32);
  let negativeSigns = 0;
  for (let byte = 0; byte < 256; byte += 1) negativeSigns += popcount32(basis.byteNegativeBits[byte]);
  assert.ok(Math.abs(negativeSigns - 4096) < 300, `byte signs: ${negativeSigns} of 8192 negative`);
  let negativePositions = 0;
  for (const patternByte of basis.positionPatterns) negativePositions += popcount32(patternByte);
  assert.ok(Math.abs(negativePositions - 32768) < 1000, `positions: ${negativePositions} of 65536 negative`);
});

for (const [groupBytes, stripeCount] of [
  [8, 32],
  [5, 12],
]) {
  test(`vector of a group equals majorityBundle(bind(byte_i, position_i)) and decoding equals the 256-way argmax (G=${groupBytes}, K=${stripeCount})`, () => {
    const basis = createHolographicBasis(sha256, groupBytes, stripeCount);
    const core = new HolographicCore(basis);
    const codec = createChunkCodec({ profile: 'holographic', sha256, groupBytes, stripeCount, chunkBytes: groupBytes });
    const byteVectors = Array.from({ length: 256 }, (_, byte) => byteVector(basis, byte));
    const positionVectors = Array.from({ length: groupBytes }, (_, position) => positionVector(basis, position));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }).map((value) => (value < 128 ? value & 7 : value)), { minLength: 1, maxLength: groupBytes }), (values) => {
        const group = Uint8Array.from(values);
        const reference = majorityBundle(
          values.map((byte, position) => bind(byteVectors[byte], positionVectors[position])),
          basis.groupDimension,
        );
        const vector = codec.vectorOf(codec.encode(group).payload);
        assert.ok(vector.equals(reference), 'vector differs from the reference algebra');

        const decoded = new Uint8Array(group.length);
        core.encodeVector(group, new Uint8Array(core.maxVectorBytes(group.length)), 0, decoded);
        for (let position = 0; position < group.length; position += 1) {
          const unbound = bind(reference, positionVectors[position]);
          let bestByte = 0;
          let bestScore = -Infinity;
          for (let byte = 0; byte < 256; byte += 1) {
            const score = dot(unbound, byteVectors[byte]);
            // Bytes absent from the group have no support in the vector: only present ones compete.
            if (score > bestScore && dot(reference, reference) > 0 && hasSupport(reference, byteVectors[byte])) {
              bestScore = score;
              bestByte = byte;
            }
          }
          assert.equal(decoded[position], bestByte, `position ${position} of ${values.join(',')}`);
        }
      }),
      { numRuns: 150 },
    );
  });
}

test('chunk vector is the concatenation of its group vectors, group g at [g*D, (g+1)*D)', () => {
  const groupBytes = 4;
  const basis = createHolographicBasis(sha256, groupBytes, 32);
  const codec = createChunkCodec({ profile: 'holographic', sha256, groupBytes, chunkBytes: 3 * groupBytes });
  const byteVectors = Array.from({ length: 256 }, (_, byte) => byteVector(basis, byte));
  const positionVectors = Array.from({ length: groupBytes }, (_, position) => positionVector(basis, position));
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 3 * groupBytes }), (chunk) => {
      const positive: number[] = [];
      const negative: number[] = [];
      for (let group = 0; group * groupBytes < chunk.length; group += 1) {
        const members = Array.from(chunk.subarray(group * groupBytes, (group + 1) * groupBytes));
        const reference = majorityBundle(
          members.map((byte, position) => bind(byteVectors[byte], positionVectors[position])),
          basis.groupDimension,
        );
        for (const index of reference.positive) positive.push(group * basis.groupDimension + index);
        for (const index of reference.negative) negative.push(group * basis.groupDimension + index);
      }
      const vector = codec.vectorOf(codec.encode(chunk).payload);
      assert.equal(vector.dimension, 3 * basis.groupDimension);
      assert.deepEqual(Array.from(vector.positive), positive);
      assert.deepEqual(Array.from(vector.negative), negative);
    }),
    { numRuns: 100 },
  );
});

function hasSupport(vector: SparseVector, byteVectorOfByte: SparseVector): boolean {
  for (const index of byteVectorOfByte.positive) if (vector.valueAt(index) !== 0) return true;
  for (const index of byteVectorOfByte.negative) if (vector.valueAt(index) !== 0) return true;
  return false;
}

test('popcount32 counts the set bits of any 32-bit value', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (value) => {
      let expected = 0;
      for (let bit = 0; bit < 32; bit += 1) expected += (value >>> bit) & 1;
      assert.equal(popcount32(value), expected);
    }),
  );
});
