// The common payload header and the varint reader of format version 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isEmbrError } from '../errors.js';
import { COMMON_HEADER_BYTES, CORRECTION_KIND, PROFILE_ID, PayloadReader, readHeader, varintBytes, writeHeader, writeVarint } from './format.js';

test('header round-trips profile, length and correction kind in 7 bytes', () => {
  const target = new Uint8Array(COMMON_HEADER_BYTES);
  assert.equal(writeHeader(target, PROFILE_ID.holographic, 0x01020304, CORRECTION_KIND.blockReplace), 7);
  assert.deepEqual(target, Uint8Array.of(1, 2, 4, 3, 2, 1, 2));
  assert.deepEqual(readHeader(target, 0xffffffff), { profileId: 2, byteLength: 0x01020304, correctionKind: 2, bodyOffset: 7 });
});

test('header reader throws CORRUPT on a short header, a foreign version, a long chunk or an unknown correction', () => {
  const good = Uint8Array.of(1, 1, 16, 0, 0, 0, 0);
  for (const bad of [good.subarray(0, 6), Uint8Array.of(2, 1, 16, 0, 0, 0, 0), Uint8Array.of(1, 1, 0, 1, 0, 0, 0), Uint8Array.of(1, 1, 16, 0, 0, 0, 4)]) {
    assert.throws(() => readHeader(bad, 255), (error: unknown) => isEmbrError(error, 'CORRUPT'));
  }
  assert.equal(readHeader(good, 255).byteLength, 16);
});

test('varints round-trip every 32-bit value in their predicted size', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (value) => {
      const target = new Uint8Array(5);
      const end = writeVarint(target, 0, value);
      assert.equal(end, varintBytes(value));
      const reader = new PayloadReader(target.subarray(0, end), 0);
      assert.equal(reader.varint(), value);
      reader.expectEnd();
    }),
    { numRuns: 1000 },
  );
});

test('varint reader refuses over-long forms, values past 32 bits and truncation with CORRUPT', () => {
  for (const bytes of [[0x80, 0x00], [0xff, 0xff, 0xff, 0xff, 0x1f], [0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x80]]) {
    assert.throws(() => new PayloadReader(Uint8Array.from(bytes), 0).varint(), (error: unknown) => isEmbrError(error, 'CORRUPT'), bytes.join(','));
  }
});
