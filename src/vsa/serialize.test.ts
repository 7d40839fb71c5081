import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { isEmbrError } from '../errors.js';
import { basisVector } from './basis.js';
import { deserializeVector, readVector, rememberSerialization, serializeVector, serializedVectorByteLength, writeVector } from './serialize.js';
import { SparseVector } from './sparse.js';
import { RUNS_SCALE, vectorOf } from '../../test/support/vsa-arbitraries.js';


const anyVector = fc
  .oneof(fc.integer({ min: 1, max: 300 }), fc.constantFrom(10_000, 2_147_483_647), fc.integer({ min: 1, max: 2_147_483_647 }))
  .chain((dimension) => vectorOf(dimension, 200));

function isCorrupt(error: unknown): boolean {
  return isEmbrError(error, 'CORRUPT');
}

test('serializeVector then deserializeVector gives the same vector when given random vectors', () => {
  fc.assert(
    fc.property(anyVector, (v) => {
      const bytes = serializeVector(v);
      assert.equal(bytes.length, serializedVectorByteLength(v));
      assert.ok(deserializeVector(bytes).equals(v));
    }),
    { numRuns: 400 * RUNS_SCALE },
  );
});

test('readVector and writeVector place a vector inside a larger payload at an offset', () => {
  fc.assert(
    fc.property(anyVector, fc.uint8Array({ maxLength: 5 }), fc.uint8Array({ maxLength: 5 }), (v, before, after) => {
      const length = serializedVectorByteLength(v);
      const payload = new Uint8Array(before.length + length + after.length);
      payload.set(before, 0);
      payload.set(after, before.length + length);
      assert.equal(writeVector(v, payload, before.length), before.length + length);
      assert.deepEqual(payload.subarray(0, before.length), before);
      assert.deepEqual(payload.subarray(before.length + length), after);
      const { vector, nextOffset } = readVector(payload, before.length);
      assert.ok(vector.equals(v));
      assert.equal(nextOffset, before.length + length);
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
  assert.throws(() => writeVector(SparseVector.empty(8), new Uint8Array(3), 0), RangeError);
  assert.throws(() => readVector(new Uint8Array(4), -1), RangeError);
  assert.throws(() => readVector(new Uint8Array(4), 5), RangeError);
  assert.throws(() => readVector(new Uint8Array(4), 4), isCorrupt, 'an offset at the end is a truncated vector');
});

test('vector serialization matches the golden bytes of format version 1', () => {
  const golden = JSON.parse(readFileSync(new URL('../../../testdata/vsa/serialization-v1.json', import.meta.url), 'utf8')) as {
    vectorFormat: number;
    vectors: Array<{ name: string; dimension: number; positive: number[]; negative: number[]; hex: string }>;
  };
  assert.equal(golden.vectorFormat, 1);
  assert.equal(golden.vectors.length, 5);
  for (const testCase of golden.vectors) {
    const v = new SparseVector(testCase.dimension, Uint32Array.from(testCase.positive), Uint32Array.from(testCase.negative));
    assert.equal(Buffer.from(serializeVector(v)).toString('hex'), testCase.hex, testCase.name);
    assert.ok(deserializeVector(Buffer.from(testCase.hex, 'hex')).equals(v), testCase.name);
  }
  // The golden basis vector also pins that basis scheme 1 and format 1 agree with each other.
  const basisCase = golden.vectors.find((testCase) => testCase.name === 'basis bytes/0');
  assert.equal(Buffer.from(serializeVector(basisVector('bytes', 0))).toString('hex'), basisCase?.hex);
});

test('a flipped bit gives CORRUPT or a different valid vector, never the original', () => {
  const vectors = [
    basisVector('flip', 0, { dimension: 10_000, nonZeroCount: 60 }),
    basisVector('flip', 1, { dimension: 300, nonZeroCount: 100 }),
    new SparseVector(2_147_483_647, Uint32Array.of(0, 1_000_000_000), Uint32Array.of(2_147_483_646)),
    SparseVector.empty(16),
  ];
  for (const original of vectors) {
    const bytes = serializeVector(original);
    let corruptCount = 0;
    for (let bit = 0; bit < bytes.length * 8; bit += 1) {
      const damaged = bytes.slice();
      damaged[bit >> 3] ^= 1 << (bit & 7);
      try {
        const decoded = deserializeVector(damaged);
        assert.ok(!decoded.equals(original), `bit ${bit} decoded to the original vector`);
        // Canonical form: whatever decodes re-encodes to exactly the bytes read.
        assert.deepEqual(serializeVector(decoded), damaged);
      } catch (error) {
        assert.ok(isCorrupt(error), `bit ${bit}: ${String(error)}`);
        corruptCount += 1;
      }
    }
    assert.ok(corruptCount > 0);
  }
});

test('any byte string either throws CORRUPT or decodes canonically when given random bytes', () => {
  const validPrefix = fc.constantFrom(Uint8Array.of(1, 0x90, 0x4e), Uint8Array.of(1, 16), Uint8Array.of(1));
  fc.assert(
    fc.property(validPrefix, fc.uint8Array({ maxLength: 40 }), (prefix, tail) => {
      const bytes = Uint8Array.from([...prefix, ...tail]);
      try {
        const decoded = deserializeVector(bytes);
        assert.deepEqual(serializeVector(decoded), bytes);
      } catch (error) {
        assert.ok(isCorrupt(error), String(error));
      }
    }),
    { numRuns: 2000 * RUNS_SCALE },
  );
});

test('deserializeVector throws CORRUPT when truncated, padded or structurally wrong', () => {
  const bytes = serializeVector(basisVector('truncate', 0, { dimension: 10_000, nonZeroCount: 40 }));
  for (let length = 0; length < bytes.length; length += 1) {
    assert.throws(() => deserializeVector(bytes.subarray(0, length)), isCorrupt, `truncated to ${length}`);
  }
  assert.throws(() => deserializeVector(Uint8Array.from([...bytes, 0])), isCorrupt);
  const cases: Array<[number[], RegExp]> = [
    [[2, 16, 0, 0], /version/],
    [[0, 16, 0, 0], /version/],
    [[1, 0, 0, 0], /dimension 0/],
    [[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0], /dimension/],
    [[1, 4, 3, 2, 0, 0, 0, 0, 0], /more non-zeros/],
    [[1, 16, 1, 0, 16], /not below dimension/],
    [[1, 16, 2, 0, 15, 0], /not below dimension/],
    [[1, 16, 1, 1, 3, 3], /both \+1 and -1/],
    // A huge count must be refused before anything is allocated for it.
    [[1, 0xff, 0xff, 0xff, 0xff, 0x07, 0xff, 0xff, 0xff, 0xff, 0x03, 0], /truncated indices/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => deserializeVector(Uint8Array.from(input)), (error: unknown) => isCorrupt(error) && message.test((error as Error).message), input.join(','));
  }
});

test('a remembered serialization is what writeVector copies, and it equals a fresh one when given random vectors', () => {
  fc.assert(
    fc.property(anyVector, fc.integer({ min: 0, max: 9 }), (vector, offset) => {
      const bytes = serializeVector(vector);
      // A vector parsed from canonical bytes, remembered with them (what the write path does).
      const parsed = deserializeVector(bytes);
      rememberSerialization(parsed, bytes);
      assert.equal(serializedVectorByteLength(parsed), bytes.length);
      const out = new Uint8Array(offset + bytes.length + 3);
      assert.equal(writeVector(parsed, out, offset), offset + bytes.length);
      assert.deepEqual(out.subarray(offset, offset + bytes.length), bytes);
      assert.throws(() => writeVector(parsed, new Uint8Array(bytes.length - 1), 0), RangeError);
    }),
    { numRuns: 200 * RUNS_SCALE },
  );
  // The copy is what is written: a remembered (here deliberately different) form wins.
  const vector = SparseVector.empty(16);
  rememberSerialization(vector, Uint8Array.of(1, 16, 0, 0, 0xee));
  const out = new Uint8Array(5);
  assert.equal(writeVector(vector, out, 0), 5);
  assert.equal(out[4], 0xee);
});
