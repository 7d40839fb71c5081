// The positional layout: one non-zero per position block, a bijection with the bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SparseVector, dot } from '../vsa/sparse.js';
import { POSITIONAL_BLOCK_DIMENSIONS, blockEntryOfByte, byteOfBlockEntry, bytesOfPositionalVector, positionalVector } from './positional.js';

test('block entry and byte are inverse bijections over all 256 byte values', () => {
  const seen = new Set<string>();
  for (let byte = 0; byte < 256; byte += 1) {
    const entry = blockEntryOfByte(byte);
    assert.ok(entry.offset >= 0 && entry.offset < POSITIONAL_BLOCK_DIMENSIONS);
    assert.equal(byteOfBlockEntry(entry.offset, entry.negative), byte);
    seen.add(`${entry.offset}/${entry.negative}`);
  }
  assert.equal(seen.size, 256);
});

test('positional vector has exactly one non-zero in each block of the chunk and none after', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (chunk) => {
      const vector = positionalVector(chunk, 300);
      assert.equal(vector.dimension, 300 * POSITIONAL_BLOCK_DIMENSIONS);
      assert.equal(vector.nonZeroCount, chunk.length);
      for (let block = 0; block < chunk.length; block += 1) {
        const value = vector.valueAt(block * POSITIONAL_BLOCK_DIMENSIONS + (chunk[block] & 0x7f));
        assert.equal(value, chunk[block] < 0x80 ? 1 : -1);
      }
      assert.deepEqual(bytesOfPositionalVector(vector, chunk.length), chunk);
    }),
    { numRuns: 200 },
  );
});

test('positional vectors of chunks differing in k bytes have dot product length - k (no two bytes collide)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.uint8Array({ minLength: 200, maxLength: 200 }), (chunk, other) => {
      const changed = chunk.map((byte, index) => (index % 3 === 0 ? other[index] : byte));
      let differing = 0;
      for (let index = 0; index < chunk.length; index += 1) if (chunk[index] !== changed[index]) differing += 1;
      let opposite = 0;
      for (let index = 0; index < chunk.length; index += 1) if ((chunk[index] ^ changed[index]) === 0x80) opposite += 1;
      // A byte differing only in bit 7 sits on the same index with the opposite sign.
      assert.equal(dot(positionalVector(chunk, 200), positionalVector(changed, 200)), chunk.length - differing - opposite);
    }),
    { numRuns: 200 },
  );
});

test('decoding a vector that is not in the positional layout throws RangeError', () => {
  assert.throws(() => bytesOfPositionalVector(new SparseVector(256, Uint32Array.of(1, 2), new Uint32Array(0)), 2), RangeError);
  assert.throws(() => bytesOfPositionalVector(new SparseVector(256, Uint32Array.of(1), new Uint32Array(0)), 2), RangeError);
});
