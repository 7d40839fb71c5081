import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { BASIS_SCHEME_VERSION, DEFAULT_BASIS_NON_ZERO_COUNT, basisVector } from './basis.js';
import { DEFAULT_DIMENSION, cosine } from './sparse.js';

/** EMBRFS_SLOW=1 runs every property 20 times as many cases (the default run stays fast). */
const RUNS_SCALE = process.env.EMBRFS_SLOW === '1' ? 20 : 1;

/**
 * Basis scheme 1 written a second time, straight from its description in basis.ts and with
 * node:crypto's SHA-256, so the pure implementation is checked against the documented scheme
 * rather than against itself.
 */
function referenceBasis(seed: string, index: number, dimension: number, nonZeroCount: number): { positive: number[]; negative: number[] } {
  const seedBytes = Buffer.from(seed, 'utf8');
  const header = Buffer.alloc(4);
  const fields = Buffer.alloc(12);
  header.writeUInt32BE(seedBytes.length);
  fields.writeUInt32BE(index, 0);
  fields.writeUInt32BE(dimension, 4);
  fields.writeUInt32BE(nonZeroCount, 8);
  const chosen: number[] = [];
  const limit = 2 ** 32 - (2 ** 32 % dimension);
  for (let counter = 0; chosen.length < nonZeroCount; counter += 1) {
    const counterBytes = Buffer.alloc(4);
    counterBytes.writeUInt32BE(counter);
    const digest = createHash('sha256').update(Buffer.concat([Buffer.from('embrfs-basis-v1', 'ascii'), header, seedBytes, fields, counterBytes])).digest();
    for (let word = 0; word < 8 && chosen.length < nonZeroCount; word += 1) {
      const draw = digest.readUInt32BE(word * 4);
      if (draw >= limit) continue;
      const position = draw % dimension;
      if (!chosen.includes(position)) chosen.push(position);
    }
  }
  const positiveCount = Math.ceil(nonZeroCount / 2);
  return {
    positive: chosen.slice(0, positiveCount).sort((left, right) => left - right),
    negative: chosen.slice(positiveCount).sort((left, right) => left - right),
  };
}

test('basisVector follows the documented scheme 1 when compared with a node:crypto re-implementation', () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 80, unit: 'grapheme' }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
      fc.integer({ min: 1, max: 20_000 }).chain((dimension) => fc.tuple(fc.constant(dimension), fc.nat(Math.min(dimension, 120)))),
      (seed, index, [dimension, nonZeroCount]) => {
        const v = basisVector(seed, index, { dimension, nonZeroCount });
        const expected = referenceBasis(seed, index, dimension, nonZeroCount);
        assert.deepEqual([...v.positive], expected.positive);
        assert.deepEqual([...v.negative], expected.negative);
      },
    ),
    { numRuns: 150 * RUNS_SCALE },
  );
});

test('basisVector gives the golden vectors of scheme 1 when given the golden inputs', () => {
  const golden = JSON.parse(readFileSync(new URL('../../../testdata/vsa/basis-v1.json', import.meta.url), 'utf8')) as {
    scheme: number;
    basis: Array<{ seed: string; index: number; dimension: number; nonZeroCount: number; positive: number[]; negative: number[] }>;
  };
  assert.equal(golden.scheme, BASIS_SCHEME_VERSION);
  assert.equal(BASIS_SCHEME_VERSION, 1);
  assert.equal(golden.basis.length, 6);
  for (const testCase of golden.basis) {
    const v = basisVector(testCase.seed, testCase.index, testCase);
    assert.equal(v.dimension, testCase.dimension);
    assert.deepEqual([...v.positive], testCase.positive, `${testCase.seed}/${testCase.index}`);
    assert.deepEqual([...v.negative], testCase.negative, `${testCase.seed}/${testCase.index}`);
  }
});

test('basisVector defaults to dimension 10,000 with 100 +1 and 100 -1 when given no options', () => {
  const v = basisVector('defaults', 3);
  assert.equal(v.dimension, DEFAULT_DIMENSION);
  assert.equal(DEFAULT_BASIS_NON_ZERO_COUNT, 200);
  assert.equal(v.positive.length, 100);
  assert.equal(v.negative.length, 100);
  assert.ok(basisVector('defaults', 3).equals(v));
});

test('basis vectors of different indices or seeds are distinct and nearly orthogonal', () => {
  const vectors = [];
  for (let index = 0; index < 64; index += 1) vectors.push(basisVector('orthogonal', index));
  vectors.push(basisVector('orthogonal-other', 0));
  let largest = 0;
  for (let left = 0; left < vectors.length; left += 1) {
    for (let right = left + 1; right < vectors.length; right += 1) {
      assert.ok(!vectors[left].equals(vectors[right]));
      largest = Math.max(largest, Math.abs(cosine(vectors[left], vectors[right])));
    }
  }
  // Expected overlap of two 200-of-10,000 supports is 4 positions: |cosine| stays near 0.02.
  assert.ok(largest < 0.1, `largest |cosine| ${largest}`);
});

test('basisVector fills every position when nonZeroCount equals the dimension', () => {
  const v = basisVector('full', 9, { dimension: 257, nonZeroCount: 257 });
  assert.equal(v.nonZeroCount, 257);
  assert.equal(v.positive.length, 129);
  assert.equal(basisVector('none', 0, { dimension: 5, nonZeroCount: 0 }).nonZeroCount, 0);
});

test('basisVector throws RangeError or TypeError when given bad arguments', () => {
  assert.throws(() => basisVector('x', -1), RangeError);
  assert.throws(() => basisVector('x', 2 ** 32), RangeError);
  assert.throws(() => basisVector('x', 0.5), RangeError);
  assert.throws(() => basisVector('x', 0, { dimension: 0 }), RangeError);
  assert.throws(() => basisVector('x', 0, { dimension: 10, nonZeroCount: 11 }), RangeError);
  assert.throws(() => basisVector('x', 0, { nonZeroCount: -2 }), RangeError);
  assert.throws(() => basisVector(7 as unknown as string, 0), TypeError);
});
