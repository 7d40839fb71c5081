// Properties of the whole codec, both profiles: round trips on every kind of chunk, SHA-256
// verification, and CORRUPT (never a crash, never wrong bytes) on any damaged payload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { EmbrError, isEmbrError } from '../errors.js';
import { createChunkCodec } from './codec.js';
import type { ChunkCodec, CodecProfileName } from './api.js';

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());
const CHUNK_BYTES = 4096;
// EMBRFS_SLOW=1: 20x the property runs, and every bit of a full-size payload flipped.
const SLOW = process.env.EMBRFS_SLOW === '1';
const RUN_SCALE = SLOW ? 20 : 1;
const PROFILES: CodecProfileName[] = ['positional', 'holographic'];
const codecs = new Map<CodecProfileName, ChunkCodec>(PROFILES.map((profile) => [profile, createChunkCodec({ profile, sha256, chunkBytes: CHUNK_BYTES })]));
const codecOf = (profile: CodecProfileName): ChunkCodec => codecs.get(profile) as ChunkCodec;

const sampleText =
  '/* SPDX-License-Identifier: MIT */\n#include <stdio.h>\n\nint main(int argc, char **argv) {\n  for (int index = 0; index < argc; index += 1) printf("%s\\n", argv[index]);\n  return 0;\n}\n' +
  'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.\n';

function textChunk(byteLength: number): Uint8Array {
  const bytes = new Uint8Array(byteLength);
  for (let index = 0; index < byteLength; index += 1) bytes[index] = sampleText.charCodeAt(index % sampleText.length);
  return bytes;
}

function highEntropyChunk(byteLength: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(byteLength);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < byteLength; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

function assertCorrupt(action: () => unknown, message: string): void {
  assert.throws(action, (error: unknown) => isEmbrError(error, 'CORRUPT'), message);
}

function roundTrip(codec: ChunkCodec, chunk: Uint8Array): void {
  const encoded = codec.encode(chunk);
  assert.equal(encoded.byteLength, chunk.length);
  assert.deepEqual(encoded.sha256, sha256(chunk));
  const decoded = codec.decode(encoded.payload, encoded.sha256);
  assert.deepEqual(decoded, chunk);
  // decodeInto writes the same bytes into its target and nothing around it.
  const framed = new Uint8Array(chunk.length + 2).fill(0xa5);
  codec.decodeInto(encoded.payload, encoded.sha256, framed.subarray(1, 1 + chunk.length));
  assert.deepEqual(framed.subarray(1, 1 + chunk.length), chunk);
  assert.equal(framed[0], 0xa5);
  assert.equal(framed[chunk.length + 1], 0xa5);
  // decodeIntoUnverified gives the same bytes for positional payloads and refuses holographic ones.
  const unverified = new Uint8Array(chunk.length + 2).fill(0xa5);
  if (codec.profile === 'positional') {
    codec.decodeIntoUnverified(encoded.payload, unverified.subarray(1, 1 + chunk.length));
    assert.deepEqual(unverified, framed);
  } else {
    assertCorrupt(() => codec.decodeIntoUnverified(encoded.payload, unverified.subarray(1, 1 + chunk.length)), 'holographic payload decoded unverified');
  }
  assert.ok(encoded.vectorCorrectBytes >= 0 && encoded.vectorCorrectBytes <= chunk.length);
  const headerBytes = codec.profile === 'positional' ? 7 : 10;
  assert.equal(encoded.payload.length, headerBytes + encoded.vectorBytes + encoded.correctionBytes);
  // Deterministic bytes: the same chunk always gives the same payload.
  assert.deepEqual(codec.encode(chunk).payload, encoded.payload);
}

for (const profile of PROFILES) {
  test(`${profile}: round-trips fixed edge chunks (empty, 1 byte, chunk size - 1, chunk size, zeros, 0xFF, text, high entropy)`, () => {
    const codec = codecOf(profile);
    const chunks = [
      new Uint8Array(0),
      Uint8Array.of(0),
      Uint8Array.of(0xff),
      Uint8Array.of(0x80),
      new Uint8Array(CHUNK_BYTES),
      new Uint8Array(CHUNK_BYTES).fill(0xff),
      new Uint8Array(CHUNK_BYTES - 1).fill(0x20),
      textChunk(CHUNK_BYTES - 1),
      textChunk(CHUNK_BYTES),
      textChunk(7),
      highEntropyChunk(CHUNK_BYTES, 1),
      highEntropyChunk(CHUNK_BYTES - 1, 2),
      highEntropyChunk(13, 3),
    ];
    for (const chunk of chunks) roundTrip(codec, chunk);
  });

  test(`${profile}: round-trips random chunks of every length up to the chunk size`, () => {
    const codec = codecOf(profile);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: CHUNK_BYTES }), (chunk) => {
        roundTrip(codec, chunk);
      }),
      { numRuns: (profile === 'holographic' ? 60 : 200) * RUN_SCALE },
    );
  });

  test(`${profile}: round-trips chunks drawn from a small alphabet (many repeated bytes)`, () => {
    const codec = codecOf(profile);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0x20, 0x65, 0x74, 0x0a, 0x00, 0xff), { minLength: 1, maxLength: 512 }), (values) => {
        roundTrip(codec, Uint8Array.from(values));
      }),
      { numRuns: 100 * RUN_SCALE },
    );
  });

  test(`${profile}: refuses a chunk one byte over the chunk size with RangeError`, () => {
    assert.throws(() => codecOf(profile).encode(new Uint8Array(CHUNK_BYTES + 1)), RangeError);
    assert.throws(() => codecOf(profile).encode([1, 2, 3] as unknown as Uint8Array), TypeError);
  });

  test(`${profile}: throws CORRUPT with both hashes when the expected SHA-256 differs`, () => {
    const codec = codecOf(profile);
    const chunk = textChunk(100);
    const encoded = codec.encode(chunk);
    const wrongHash = encoded.sha256.slice();
    wrongHash[31] ^= 1;
    try {
      codec.decode(encoded.payload, wrongHash);
      assert.fail('decode accepted a wrong hash');
    } catch (error) {
      assert.ok(error instanceof EmbrError);
      assert.equal(error.code, 'CORRUPT');
      assert.equal(error.data.expectedSha256, Buffer.from(wrongHash).toString('hex'));
      assert.equal(error.data.actualSha256, Buffer.from(encoded.sha256).toString('hex'));
    }
    assert.throws(() => codec.decode(encoded.payload, encoded.sha256.subarray(0, 31)), TypeError);
  });

  test(`${profile}: throws CORRUPT when any single bit of a payload is flipped (every bit of small chunks)`, () => {
    const codec = codecOf(profile);
    for (const chunk of [textChunk(1), textChunk(37), highEntropyChunk(64, 9), new Uint8Array(24)]) {
      const encoded = codec.encode(chunk);
      for (let bit = 0; bit < encoded.payload.length * 8; bit += 1) {
        const damaged = encoded.payload.slice();
        damaged[bit >>> 3] ^= 1 << (bit & 7);
        assertCorrupt(() => codec.decode(damaged, encoded.sha256), `bit ${bit} of a ${chunk.length}-byte chunk`);
        const target = new Uint8Array(chunk.length).fill(0xa5);
        assertCorrupt(() => codec.decodeInto(damaged, encoded.sha256, target), `decodeInto: bit ${bit} of a ${chunk.length}-byte chunk`);
        assert.ok(target.every((byte) => byte === 0xa5), `decodeInto wrote unchecked bytes (bit ${bit})`);
      }
    }
  });

  test(`${profile}: decodeInto throws CORRUPT when the target length differs from the chunk length`, () => {
    const codec = codecOf(profile);
    const encoded = codec.encode(textChunk(100));
    for (const targetBytes of [0, 99, 101]) {
      const target = new Uint8Array(targetBytes).fill(0xa5);
      assertCorrupt(() => codec.decodeInto(encoded.payload, encoded.sha256, target), `target of ${targetBytes} bytes`);
      assertCorrupt(() => codec.decodeIntoUnverified(encoded.payload, target), `unverified into a target of ${targetBytes} bytes`);
      assert.ok(target.every((byte) => byte === 0xa5));
    }
    assert.throws(() => codec.decodeInto(encoded.payload, encoded.sha256, [] as unknown as Uint8Array), TypeError);
  });

  test(`${profile}: throws CORRUPT when a bit of a full-size payload is flipped (every bit with EMBRFS_SLOW=1)`, () => {
    const codec = codecOf(profile);
    const encoded = codec.encode(textChunk(CHUNK_BYTES));
    const flipAndCheck = (bit: number): void => {
      const damaged = encoded.payload.slice();
      damaged[bit >>> 3] ^= 1 << (bit & 7);
      assertCorrupt(() => codec.decode(damaged, encoded.sha256), `bit ${bit}`);
    };
    if (SLOW) {
      for (let bit = 0; bit < encoded.payload.length * 8; bit += 1) flipAndCheck(bit);
      return;
    }
    fc.assert(
      fc.property(fc.nat({ max: encoded.payload.length * 8 - 1 }), flipAndCheck),
      { numRuns: 300 },
    );
  });

  test(`${profile}: throws CORRUPT for every truncation and for a trailing byte`, () => {
    const codec = codecOf(profile);
    const encoded = codec.encode(textChunk(200));
    for (let length = 0; length < encoded.payload.length; length += 1) {
      assertCorrupt(() => codec.decode(encoded.payload.subarray(0, length), encoded.sha256), `prefix of ${length} bytes`);
    }
    const longer = new Uint8Array(encoded.payload.length + 1);
    longer.set(encoded.payload);
    assertCorrupt(() => codec.decode(longer, encoded.sha256), 'one trailing byte');
  });

  test(`${profile}: throws CORRUPT (never another error) on arbitrary bytes given as a payload`, () => {
    const codec = codecOf(profile);
    const hash = sha256(Uint8Array.of(0x78)); // not the hash of any chunk a random payload could decode to
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.constantFrom(1, 2), (bytes, profileId) => {
        const payload = bytes.slice();
        // Make most inputs get past the first header checks so the body parsers are exercised.
        if (payload.length > 6) {
          payload[0] = 1;
          payload[1] = profileId;
          payload[5] = 0;
          payload[4] = 0;
          payload[6] &= 3;
        }
        assertCorrupt(() => codec.decode(payload, hash), 'random payload');
        try {
          codec.vectorOf(payload);
        } catch (error) {
          assert.ok(isEmbrError(error, 'CORRUPT'), `vectorOf threw ${String(error)}`);
        }
      }),
      { numRuns: 500 * RUN_SCALE },
    );
  });

  test(`${profile}: vectorOf gives a vector of the codec's dimension with non-zeros for every byte`, () => {
    const codec = codecOf(profile);
    const chunk = textChunk(300);
    const vector = codec.vectorOf(codec.encode(chunk).payload);
    assert.equal(vector.dimension, codec.dimension);
    if (profile === 'positional') assert.equal(vector.nonZeroCount, chunk.length);
    else assert.ok(vector.nonZeroCount >= Math.ceil(chunk.length / 8) * 16, `only ${vector.nonZeroCount} non-zeros`);
  });
}

test('positional: the vector decodes every byte right and the payload is header + the chunk', () => {
  const codec = codecOf('positional');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: CHUNK_BYTES }), (chunk) => {
      const encoded = codec.encode(chunk);
      assert.equal(encoded.vectorCorrectBytes, chunk.length);
      assert.equal(encoded.correctionBytes, 0);
      assert.equal(encoded.payload.length, 7 + chunk.length);
      assert.deepEqual(encoded.payload.subarray(7), chunk);
    }),
    { numRuns: 100 },
  );
});

test('holographic: most bytes of text come right from the vector alone', () => {
  const codec = codecOf('holographic');
  const encoded = codec.encode(textChunk(CHUNK_BYTES));
  assert.ok(encoded.vectorCorrectBytes / CHUNK_BYTES >= 0.95, `fraction ${encoded.vectorCorrectBytes / CHUNK_BYTES}`);
  const randomEncoded = codec.encode(highEntropyChunk(CHUNK_BYTES, 5));
  assert.ok(randomEncoded.vectorCorrectBytes / CHUNK_BYTES >= 0.99, `fraction ${randomEncoded.vectorCorrectBytes / CHUNK_BYTES}`);
});

test('holographic: decodes payloads written with other group and stripe parameters', () => {
  const reader = codecOf('holographic');
  for (const [groupBytes, stripeCount] of [
    [1, 1],
    [4, 8],
    [16, 32],
    [3, 17],
  ]) {
    const writer = createChunkCodec({ profile: 'holographic', sha256, groupBytes, stripeCount });
    const chunk = textChunk(1000);
    const encoded = writer.encode(chunk);
    assert.deepEqual(reader.decode(encoded.payload, encoded.sha256), chunk, `G=${groupBytes} K=${stripeCount}`);
  }
});

test('createChunkCodec refuses bad options: unknown profile is INVALID_ARGUMENT, bad numbers are RangeError', () => {
  assert.throws(
    () => createChunkCodec({ profile: 'legacy' as CodecProfileName, sha256 }),
    (error: unknown) => isEmbrError(error, 'INVALID_ARGUMENT'),
  );
  assert.throws(() => createChunkCodec({ profile: 'positional', sha256, chunkBytes: 0 }), RangeError);
  assert.throws(() => createChunkCodec({ profile: 'positional', sha256, chunkBytes: 1.5 }), RangeError);
  assert.throws(() => createChunkCodec({ profile: 'positional', sha256, chunkBytes: 1 << 24 }), RangeError);
  assert.throws(() => createChunkCodec({ profile: 'holographic', sha256, groupBytes: 17 }), RangeError);
  assert.throws(() => createChunkCodec({ profile: 'holographic', sha256, stripeCount: 33 }), RangeError);
  assert.throws(() => createChunkCodec({ profile: 'positional' } as unknown as Parameters<typeof createChunkCodec>[0]), TypeError);
});

test('a codec refuses payloads whose chunk length exceeds its chunk size', () => {
  const large = createChunkCodec({ profile: 'positional', sha256, chunkBytes: 64 });
  const small = createChunkCodec({ profile: 'positional', sha256, chunkBytes: 32 });
  const encoded = large.encode(textChunk(64));
  assertCorrupt(() => small.decode(encoded.payload, encoded.sha256), 'chunk longer than the chunk size');
});
