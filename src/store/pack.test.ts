import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { seededBytes, wordText as text } from '../../test/support/seeded-bytes.js';
import type { NewChunk, PreparedPack } from './api.js';
import { batchPacks, isRawPack, looksIncompressible, mergeBatches, packCompression, preparePacks, unbatchPacks, unpack } from './pack.js';
import { FINGERPRINT_DIMENSION } from '../query/fingerprint.js';
import { deserializeVector, serializeVector } from '../vsa/serialize.js';
import { SparseVector } from '../vsa/sparse.js';

const CHUNK_BYTES = 4096;


function chunksOf(bytes: Uint8Array): NewChunk[] {
  const chunks: NewChunk[] = [];
  for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
    const payload = bytes.subarray(offset, offset + CHUNK_BYTES);
    chunks.push({
      sha256: new Uint8Array(createHash('sha256').update(payload).digest()),
      byteLength: payload.length,
      payload,
      vectorCorrectBytes: payload.length,
      correctionBytes: 0,
      fingerprint: new Uint8Array(0),
    });
  }
  return chunks;
}

function roundTrips(bytes: Uint8Array): boolean {
  const packs = preparePacks(chunksOf(bytes));
  const back = Buffer.concat(packs.map((pack) => unpack(pack.data, pack.rawBytes)));
  assert.equal(Buffer.compare(back, bytes), 0, 'the packs unpack to the payloads back to back');
  return packs.every(isRawPack);
}

describe('packs', () => {
  it('stores random payloads raw without compressing the whole pack, and they unpack exactly', () => {
    const bytes = seededBytes(128 * 1024, 11);
    assert.equal(looksIncompressible(bytes), true);
    assert.equal(roundTrips(bytes), true);
  });

  it('compresses text payloads (the probes compress)', () => {
    const bytes = text(128 * 1024, 5);
    assert.equal(looksIncompressible(bytes), false);
    assert.equal(roundTrips(bytes), false);
  });

  it('compresses a pack whose end is text even when its start and middle are random', () => {
    const bytes = seededBytes(128 * 1024, 3);
    bytes.set(text(32 * 1024, 9), 96 * 1024);
    assert.equal(looksIncompressible(bytes), false);
    assert.equal(roundTrips(bytes), false);
  });

  it('compresses somewhat compressible packs at the fast level, clearly compressible ones at the best, and both unpack exactly', () => {
    // Random bytes with every 4th byte zero: every probe shrinks, none below 0.6.
    const somewhat = seededBytes(128 * 1024, 7);
    for (let index = 0; index < somewhat.length; index += 4) somewhat[index] = 0;
    assert.equal(packCompression(somewhat), 'fast');
    assert.equal(roundTrips(somewhat), false);
    assert.equal(packCompression(text(128 * 1024, 5)), 'best');
    assert.equal(packCompression(seededBytes(128 * 1024, 11)), 'raw');
    // One clearly compressible probe is enough for the best level.
    const mixed = new Uint8Array(somewhat);
    mixed.set(text(16 * 1024, 3), 60 * 1024);
    assert.equal(packCompression(mixed), 'best');
    assert.equal(roundTrips(mixed), false);
  });

  it('does not probe packs too small to probe: they are compressed when zstd shrinks them', () => {
    assert.equal(looksIncompressible(seededBytes(8 * 1024, 1)), false);
    assert.equal(roundTrips(text(8 * 1024, 2)), false);
    assert.equal(roundTrips(seededBytes(8 * 1024, 4)), true);
  });
});

describe('pack batches (packs with their chunks in columns)', () => {
  function chunksWithFingerprints(bytes: Uint8Array, seed: number): NewChunk[] {
    return chunksOf(bytes).map((chunk, index) => {
      // Distinct fingerprints of distinct lengths, and vectors that match them.
      const positive = Uint32Array.of(index, 1000 + seed);
      const negative = index % 2 === 0 ? Uint32Array.of(2000 + index) : new Uint32Array(0);
      const vector = new SparseVector(FINGERPRINT_DIMENSION, positive, negative);
      return { ...chunk, fingerprint: serializeVector(vector), fingerprintVector: vector, vectorCorrectBytes: index, correctionBytes: 3 * index };
    });
  }

  function plain(packs: PreparedPack[]): unknown {
    return packs.map((pack) => ({
      data: [...pack.data],
      rawBytes: pack.rawBytes,
      chunks: pack.chunks.map((chunk) => ({ ...chunk, sha256: [...chunk.sha256], fingerprint: [...chunk.fingerprint], fingerprintVector: undefined })),
    }));
  }

  it('unbatchPacks gives back the packs batchPacks took, chunk for chunk', () => {
    const packs = preparePacks(chunksWithFingerprints(text(600 * 1024, 4), 1));
    assert.ok(packs.length >= 4, 'several packs');
    const batch = batchPacks(packs, true);
    assert.equal(batch.fingerprintEnds.length, packs.reduce((sum, pack) => sum + pack.chunks.length, 0));
    assert.deepEqual(plain(unbatchPacks(batch)), plain(packs));
  });

  it('carries each fingerprint as indices that equal the parsed serialization', () => {
    const packs = preparePacks(chunksWithFingerprints(seededBytes(300 * 1024, 8), 2));
    const batch = batchPacks(packs, true);
    assert.equal(batch.dimension, FINGERPRINT_DIMENSION);
    let dimAt = 0;
    let index = 0;
    for (const chunk of packs.flatMap((pack) => pack.chunks)) {
      const parsed = deserializeVector(chunk.fingerprint);
      const positive = batch.dimCounts?.[2 * index] ?? -1;
      const negative = batch.dimCounts?.[2 * index + 1] ?? -1;
      assert.deepEqual([...(batch.dims?.subarray(dimAt, dimAt + positive) ?? [])], [...parsed.positive]);
      assert.deepEqual([...(batch.dims?.subarray(dimAt + positive, dimAt + positive + negative) ?? [])], [...parsed.negative]);
      dimAt += positive + negative;
      index += 1;
    }
    assert.equal(dimAt, batch.dims?.length);
    assert.throws(() => batchPacks(preparePacks(chunksOf(seededBytes(8192, 1))), true), /no fingerprint vector/);
  });

  it('mergeBatches equals one batch of all the packs, in order; empty batches merge away', () => {
    const first = preparePacks(chunksWithFingerprints(text(200 * 1024, 6), 3));
    const second = preparePacks(chunksWithFingerprints(seededBytes(150 * 1024, 5), 4));
    const merged = mergeBatches([batchPacks(first, true), batchPacks([], true), batchPacks(second, true)]);
    const whole = batchPacks([...first, ...second], true);
    assert.deepEqual(plain(unbatchPacks(merged)), plain(unbatchPacks(whole)));
    assert.deepEqual([...(merged.dims ?? [])], [...(whole.dims ?? [])]);
    assert.deepEqual([...(merged.dimCounts ?? [])], [...(whole.dimCounts ?? [])]);
    assert.equal(merged.dimension, FINGERPRINT_DIMENSION);
    // Without indices in one batch, the merged batch has none (its vectors are parsed instead).
    const partial = mergeBatches([batchPacks(first, true), batchPacks(second, false)]);
    assert.equal(partial.dims, undefined);
    assert.deepEqual(plain(unbatchPacks(partial)), plain(unbatchPacks(whole)));
  });
});
