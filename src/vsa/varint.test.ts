import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isEmbrError } from '../errors.js';
import { VarintReader, varintByteLength, writeVarint, zigzagDecode, zigzagEncode } from './varint.js';

/** EMBRFS_SLOW=1 runs every property 20 times as many cases (the default run stays fast). */
const RUNS_SCALE = process.env.EMBRFS_SLOW === '1' ? 20 : 1;

test('varints round-trip and use the predicted length when given any uint32', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (value) => {
      const out = new Uint8Array(6);
      const end = writeVarint(out, 1, value);
      assert.equal(end - 1, varintByteLength(value));
      const reader = new VarintReader(out.subarray(0, end), 'test', 1);
      assert.equal(reader.readVarint(), value);
      reader.expectEnd();
    }),
    { numRuns: 500 * RUNS_SCALE },
  );
  for (const [value, length] of [[0, 1], [127, 1], [128, 2], [16_383, 2], [16_384, 3], [0xffff_ffff, 5]]) {
    assert.equal(varintByteLength(value), length);
  }
});

test('VarintReader throws CORRUPT when given overlong, oversized or truncated varints', () => {
  const cases: Array<[number[], RegExp]> = [
    [[0x80, 0x00], /overlong/],
    [[0xff, 0xff, 0xff, 0xff, 0x10], /above 2\^32/],
    [[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], /longer than 5/],
    [[0x80], /truncated/],
    [[], /truncated/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => new VarintReader(Uint8Array.from(bytes), 'test').readVarint(), (error: unknown) => isEmbrError(error, 'CORRUPT') && message.test(error.message));
  }
  assert.throws(() => new VarintReader(Uint8Array.of(1, 2), 'test').expectEnd(), (error: unknown) => isEmbrError(error, 'CORRUPT'));
});

test('writeVarint throws RangeError when given a value that is not a uint32', () => {
  for (const value of [-1, 0x1_0000_0000, 1.5, Number.NaN]) assert.throws(() => writeVarint(new Uint8Array(8), 0, value), RangeError);
});

test('zigzag maps int32 to uint32 and back when given any int32', () => {
  fc.assert(
    fc.property(fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }), (value) => {
      const encoded = zigzagEncode(value);
      assert.ok(encoded >= 0 && encoded <= 0xffff_ffff);
      assert.equal(zigzagDecode(encoded), value);
    }),
    { numRuns: 500 * RUNS_SCALE },
  );
  assert.deepEqual([0, -1, 1, -2, 2].map(zigzagEncode), [0, 1, 2, 3, 4]);
});
