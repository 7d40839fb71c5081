import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { seededBytes } from '../../test/support/seeded-bytes.js';
import type { NewChunk } from './api.js';
import { isRawPack, looksIncompressible, packCompression, preparePacks, unpack } from './pack.js';

const CHUNK_BYTES = 4096;

function text(length: number, seed: number): Uint8Array {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'engram', 'chunk', 'vector', 'commit', 'snapshot'];
  let state = seed;
  let out = '';
  while (out.length < length) {
    state = (state * 1103515245 + 12345) >>> 0;
    out += `${words[state % words.length]} `;
  }
  return new TextEncoder().encode(out.slice(0, length));
}

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
