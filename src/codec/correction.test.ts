// Corrections: every kind round-trips, the chosen kind is the smallest, and damaged corrections
// are refused with CORRUPT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isEmbrError } from '../errors.js';
import { applyCorrection, planCorrection, writeCorrection } from './correction.js';
import { CORRECTION_KIND, PayloadReader } from './format.js';

function correct(decoded: Uint8Array, actual: Uint8Array): { kind: number; serialized: Uint8Array; restored: Uint8Array } {
  const scratch = new Uint32Array(actual.length);
  const plan = planCorrection(decoded, actual, scratch);
  const target = new Uint8Array(plan.serializedBytes + 8);
  const end = writeCorrection(target, 3, plan, decoded, actual, scratch);
  assert.equal(end - 3, plan.serializedBytes);
  const serialized = target.slice(3, end);
  const restored = decoded.slice();
  applyCorrection(new PayloadReader(serialized, 0), plan.kind, restored);
  return { kind: plan.kind, serialized, restored };
}

test('correction restores the exact bytes for any pair of equal-length byte strings', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 600 }).chain((length) =>
        fc.tuple(fc.uint8Array({ minLength: length, maxLength: length }), fc.uint8Array({ minLength: length, maxLength: length })),
      ),
      ([decoded, actual]) => {
        const { restored, serialized } = correct(decoded, actual);
        assert.deepEqual(restored, actual);
        assert.ok(serialized.length <= actual.length, 'never larger than verbatim');
      },
    ),
    { numRuns: 300 },
  );
});

test('correction restores the bytes when a few bytes or bits differ', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 4096 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 40 }),
      (actual, edits) => {
        const decoded = actual.slice();
        for (const [position, difference] of edits) decoded[position % decoded.length] ^= difference;
        const { restored } = correct(decoded, actual);
        assert.deepEqual(restored, actual);
      },
    ),
    { numRuns: 200 },
  );
});

test('correction picks none, bit flips, block replace or verbatim when each is smallest', () => {
  const actual = new Uint8Array(100).fill(0x41);
  assert.equal(correct(actual.slice(), actual).kind, CORRECTION_KIND.none);
  assert.equal(correct(actual.slice(), actual).serialized.length, 0);

  const oneBit = actual.slice();
  oneBit[50] ^= 0x04;
  const flipped = correct(oneBit, actual);
  assert.equal(flipped.kind, CORRECTION_KIND.bitFlips);
  assert.deepEqual(flipped.serialized, Uint8Array.of(1, 50 * 8 + 2 - 128 + 128, 3)); // count 1, varint 402 = 0x92 0x03
  const run = actual.slice();
  for (let index = 10; index < 20; index += 1) run[index] = 0xbe;
  const replaced = correct(run, actual);
  assert.equal(replaced.kind, CORRECTION_KIND.blockReplace);
  assert.equal(replaced.serialized.length, 1 + 1 + 1 + 10);

  const everything = new Uint8Array(100).fill(0xbe);
  const verbatim = correct(everything, actual);
  assert.equal(verbatim.kind, CORRECTION_KIND.verbatim);
  assert.deepEqual(verbatim.serialized, actual);
});

test('block replace merges runs separated by at most two equal bytes', () => {
  const actual = new Uint8Array(64);
  const decoded = actual.slice();
  decoded[10] = 0xff; // 8 bit flips each: block replace wins
  decoded[13] = 0xff;
  decoded[40] = 0xff;
  const { kind, serialized } = correct(decoded, actual);
  assert.equal(kind, CORRECTION_KIND.blockReplace);
  // 2 runs: [gap 10, length-1 3, 4 bytes], [gap 26, length-1 0, 1 byte]
  assert.deepEqual(serialized, Uint8Array.of(2, 10, 3, 0, 0, 0, 0, 26, 0, 0));
});

test('applying a damaged correction throws CORRUPT, never writes out of range', () => {
  const bytes = new Uint8Array(16);
  const cases: Array<[number, number[]]> = [
    [CORRECTION_KIND.bitFlips, [0]], // zero flips
    [CORRECTION_KIND.bitFlips, [1, 128]], // bit 128 of a 128-bit chunk
    [CORRECTION_KIND.bitFlips, [2, 5]], // truncated
    [CORRECTION_KIND.blockReplace, [0]],
    [CORRECTION_KIND.blockReplace, [1, 15, 1, 9, 9]], // run past the end
    [CORRECTION_KIND.blockReplace, [1, 0, 0]], // missing byte
    [CORRECTION_KIND.verbatim, Array.from({ length: 15 }, () => 0)],
    [CORRECTION_KIND.none, [0]], // trailing byte
    [CORRECTION_KIND.bitFlips, [1, 0x80, 0x00]], // over-long varint
    [CORRECTION_KIND.bitFlips, [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]], // varint over 5 bytes
  ];
  for (const [kind, serialized] of cases) {
    assert.throws(
      () => applyCorrection(new PayloadReader(Uint8Array.from(serialized), 0), kind as 0 | 1 | 2 | 3, bytes.slice()),
      (error: unknown) => isEmbrError(error, 'CORRUPT'),
      `kind ${kind} bytes ${serialized.join(',')}`,
    );
  }
});
