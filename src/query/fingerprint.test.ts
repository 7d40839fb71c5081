import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { SparseVector, cosine } from '../vsa/sparse.js';
import { Worker } from 'node:worker_threads';
import {
  CHUNK_FINGERPRINT_MAX_NON_ZERO,
  FINGERPRINT_DIMENSION,
  chunkFingerprint,
  chunkFingerprints,
  contentFingerprint,
  contentFingerprintJs,
  fileFingerprint,
  fingerprintImplementation,
  serializedChunkFingerprint,
} from './fingerprint.js';
import { serializeVector } from '../vsa/serialize.js';
import { seededBytes } from '../../test/support/seeded-bytes.js';


/** Seeded pseudo-English: words from a small vocabulary, so texts share common n-grams like real text does. */
function seededText(length: number, seed: number): Uint8Array {
  const vocabulary = ['the', 'of', 'and', 'to', 'in', 'file', 'system', 'vector', 'chunk', 'index', 'search', 'value', 'return', 'struct', 'data', 'error'];
  const noise = seededBytes(length, seed);
  let text = '';
  for (let index = 0; text.length < length; index += 1) {
    const choice = noise[index % length];
    text += choice < 200 ? vocabulary[choice % vocabulary.length] : `w${choice}${noise[(index * 7) % length]}`;
    text += choice % 13 === 0 ? '\n' : ' ';
  }
  return new TextEncoder().encode(text.slice(0, length));
}

test('chunkFingerprint returns the same vector for the same bytes (deterministic, golden)', () => {
  const bytes = seededBytes(4096, 42);
  const first = chunkFingerprint(bytes);
  const second = chunkFingerprint(bytes.slice());
  assert.ok(first.equals(second));
  assert.equal(first.dimension, FINGERPRINT_DIMENSION);
  // Golden value of fingerprint format version 1: a change in the construction must fail here
  // (and bump FINGERPRINT_VERSION, since stored fingerprints would no longer match queries).
  const digest = createHash('sha256').update(first.positive).update(first.negative).digest('hex').slice(0, 16);
  assert.deepEqual({ positive: first.positive.length, negative: first.negative.length, digest }, GOLDEN_4096_SEED_42);
});

const GOLDEN_4096_SEED_42 = { positive: 26, negative: 43, digest: '62811a23a0e08ae6' };

test('contentFingerprint keeps cosine near 1 when content is shifted by any number of bytes', () => {
  const body = seededText(8192, 7);
  const original = contentFingerprint(body);
  assert.ok(original.nonZeroCount > 60, `enough features: ${original.nonZeroCount}`);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), (shiftBytes) => {
      const shifted = new Uint8Array(shiftBytes + body.length);
      shifted.set(seededBytes(shiftBytes, shiftBytes), 0);
      shifted.set(body, shiftBytes);
      const similarity = cosine(original, contentFingerprint(shifted.subarray(shiftBytes - Math.min(shiftBytes, 3))));
      assert.ok(similarity > 0.97, `shift ${shiftBytes}: cosine ${similarity}`);
    }),
    { numRuns: 50, seed: 6 },
  );
});

test('chunkFingerprint gives a high cosine for overlapping chunks at an arbitrary offset', () => {
  const text = seededText(16384, 3);
  for (const shiftBytes of [1, 7, 100, 1000, 2048]) {
    const similarity = cosine(chunkFingerprint(text.subarray(0, 4096)), chunkFingerprint(text.subarray(shiftBytes, shiftBytes + 4096)));
    const overlap = (4096 - shiftBytes) / 4096;
    assert.ok(similarity > overlap - 0.2, `shift ${shiftBytes}: cosine ${similarity}, overlap ${overlap}`);
  }
});

test('chunkFingerprint gives cosine near 0 for unrelated content', () => {
  for (let seed = 1; seed <= 20; seed += 1) {
    const similarity = cosine(chunkFingerprint(seededBytes(4096, seed)), chunkFingerprint(seededBytes(4096, seed + 1000)));
    assert.ok(Math.abs(similarity) < 0.15, `seed ${seed}: cosine ${similarity}`);
  }
});

test('chunkFingerprint keeps a high cosine when 5% of the bytes are edited', () => {
  const text = seededText(4096, 11);
  const edited = text.slice();
  const noise = seededBytes(4096, 12);
  for (let edit = 0; edit < 205; edit += 1) edited[(noise[edit * 2] << 8 | noise[edit * 2 + 1]) % 4096] = noise[edit * 3 + 1000];
  const similarity = cosine(chunkFingerprint(text), chunkFingerprint(edited));
  assert.ok(similarity > 0.5, `cosine ${similarity}`);
});

test('chunkFingerprint returns the zero vector for empty and shorter-than-window input', () => {
  assert.equal(chunkFingerprint(new Uint8Array(0)).nonZeroCount, 0);
  assert.equal(chunkFingerprint(seededBytes(7, 1)).nonZeroCount, 0);
});

test('chunkFingerprint stays within its non-zero budget and thins consistently', () => {
  const large = seededBytes(1 << 20, 5);
  const full = contentFingerprint(large);
  assert.ok(full.nonZeroCount > CHUNK_FINGERPRINT_MAX_NON_ZERO);
  const thinned = chunkFingerprint(large);
  assert.equal(thinned.nonZeroCount, CHUNK_FINGERPRINT_MAX_NON_ZERO);
  // Thinning keeps a subset of the full vector's non-zeros with their signs.
  for (const dimension of thinned.positive) assert.equal(full.valueAt(dimension), 1);
  for (const dimension of thinned.negative) assert.equal(full.valueAt(dimension), -1);
  // Consistent: the same dimensions survive in a larger input that contains this one.
  const larger = new Uint8Array(large.length + 4096);
  larger.set(large);
  larger.set(seededBytes(4096, 99), large.length);
  const thinnedLarger = contentFingerprint(larger, { maxNonZero: 2 * CHUNK_FINGERPRINT_MAX_NON_ZERO });
  assert.ok(cosine(thinned, thinnedLarger) > 0.5);
});

test('contentFingerprint refuses misuse with TypeError and RangeError', () => {
  assert.throws(() => contentFingerprint('text' as unknown as Uint8Array), TypeError);
  assert.throws(() => contentFingerprint(new Uint8Array(1), { maxNonZero: -1 }), RangeError);
});

test('fileFingerprint is the sign of the sum of its chunk fingerprints', () => {
  const a = new SparseVector(FINGERPRINT_DIMENSION, Uint32Array.of(1, 2, 3), Uint32Array.of(4));
  const b = new SparseVector(FINGERPRINT_DIMENSION, Uint32Array.of(1, 5), Uint32Array.of(2, 4));
  const c = new SparseVector(FINGERPRINT_DIMENSION, Uint32Array.of(2), Uint32Array.of(9));
  const bundle = fileFingerprint([a, b, c]);
  // sums: 1:+2, 2:+1, 3:+1, 4:-2, 5:+1, 9:-1
  assert.deepEqual([...bundle.positive], [1, 2, 3, 5]);
  assert.deepEqual([...bundle.negative], [4, 9]);
  assert.equal(fileFingerprint([]).nonZeroCount, 0);
  assert.throws(() => fileFingerprint([new SparseVector(16, Uint32Array.of(1), new Uint32Array(0))]), RangeError);
});

// --- The native kernel (native/fingerprint.c) against the JavaScript reference ---------------

const implementation = fingerprintImplementation();
const nativeSkipReason = implementation.kind === 'native' ? false : `native fingerprint not in use: ${implementation.reason}`;

test('the native fingerprint is loaded when the environment expects it (EMBRFS_EXPECT_NATIVE=1, set by .ci/run)', () => {
  if (process.env.EMBRFS_NO_NATIVE === '1') {
    assert.deepEqual(implementation, { kind: 'js', reason: 'disabled by EMBRFS_NO_NATIVE=1' });
  } else if (process.env.EMBRFS_EXPECT_NATIVE === '1') {
    assert.equal(implementation.kind, 'native', `npm ci should have built native/build/Release/embrfs_native.node: ${implementation.reason}`);
  } else {
    // Either is valid without an expectation, but the reason must explain a fallback.
    assert.ok(implementation.kind === 'native' ? implementation.reason === 'loaded' : implementation.reason.length > 0, implementation.reason);
  }
});

/** Seeded input of one of several shapes: random, text-like, small alphabets (features cancel), constant, zero. */
function shapedBytes(length: number, seed: number): Uint8Array {
  const noise = seededBytes(length, seed);
  switch (seed % 6) {
    case 0: return noise;
    case 1: return seededText(length, seed);
    case 2: return noise.map((byte) => byte & 1);
    case 3: return noise.map((byte) => 'ACGT'.charCodeAt(byte & 3));
    case 4: return new Uint8Array(length).fill(seed & 0xff);
    default: return new Uint8Array(length);
  }
}

function assertSameVector(actual: SparseVector, expected: SparseVector, what: string): void {
  assert.deepEqual([...actual.positive], [...expected.positive], `${what}: positive`);
  assert.deepEqual([...actual.negative], [...expected.negative], `${what}: negative`);
}

test('native contentFingerprint equals the JavaScript one on every length 0..700, 5,100 short and 2,500 seeded inputs up to 70,000 bytes', { skip: nativeSkipReason }, () => {
  const budgets = [Number.POSITIVE_INFINITY, CHUNK_FINGERPRINT_MAX_NON_ZERO, 64, 7.5, 1, 0, 20_000];
  let thinned = 0;
  let nonZeros = 0;
  let serializedChecked = 0;
  const check = (bytes: Uint8Array, budget: number, what: string): void => {
    const expected = contentFingerprintJs(bytes, { maxNonZero: budget });
    const actual = contentFingerprint(bytes, { maxNonZero: budget });
    assertSameVector(actual, expected, what);
    nonZeros += expected.nonZeroCount;
    if (budget === CHUNK_FINGERPRINT_MAX_NON_ZERO) {
      // The write path's call: vector and vsa serialization in one native call.
      const both = serializedChunkFingerprint(bytes);
      assertSameVector(both.vector, expected, `${what} (serialized)`);
      assert.deepEqual(both.serialized, serializeVector(expected), `${what}: serialized bytes`);
      serializedChecked += 1;
    }
    if (budget < contentFingerprintJs(bytes).nonZeroCount) thinned += 1;
  };
  for (let length = 0; length <= 700; length += 1) check(shapedBytes(length, length), budgets[length % budgets.length], `length ${length}`);
  // Short inputs in bulk: the first 7 positions must never anchor, whatever the bytes.
  for (let length = 0; length <= 16; length += 1) {
    for (let seed = 0; seed < 300; seed += 1) check(shapedBytes(length, seed), Number.POSITIVE_INFINITY, `short length ${length} seed ${seed}`);
  }
  const lengths = seededBytes(4 * 2500, 2024);
  for (let index = 0; index < 2500; index += 1) {
    const length = ((lengths[4 * index] << 16) | (lengths[4 * index + 1] << 8) | lengths[4 * index + 2]) % 70_001;
    const seed = 1000 + index;
    const bytes = shapedBytes(length, seed);
    // A subarray at an odd offset too: the kernel must honour byteOffset.
    check(index % 2 === 0 ? bytes : bytes.subarray(Math.min(3, length)), budgets[lengths[4 * index + 3] % budgets.length], `input ${index} (length ${length}, seed ${seed})`);
  }
  // The inputs exercised what they are meant to: thinning and plenty of non-zeros.
  assert.ok(thinned > 300, `thinned inputs: ${thinned}`);
  assert.ok(nonZeros > 100_000, `non-zeros compared: ${nonZeros}`);
  assert.ok(serializedChecked > 400, `serializations compared: ${serializedChecked}`);
});

test('serializedChunkFingerprint returns chunkFingerprint and its vsa serialization (native or JavaScript)', () => {
  for (const [length, seed] of [[0, 1], [7, 2], [100, 3], [4096, 4], [4096, 5], [4096, 6], [65_536, 7], [300_000, 8]]) {
    const bytes = shapedBytes(length, seed);
    const both = serializedChunkFingerprint(bytes);
    const expected = contentFingerprintJs(bytes, { maxNonZero: CHUNK_FINGERPRINT_MAX_NON_ZERO });
    assertSameVector(both.vector, expected, `length ${length}`);
    assert.deepEqual(both.serialized, serializeVector(expected), `length ${length}: serialized bytes`);
  }
  assert.throws(() => serializedChunkFingerprint('text' as unknown as Uint8Array), TypeError);
});

test('chunkFingerprints equals chunkFingerprint of each chunk (native batch and JavaScript)', () => {
  for (const [length, chunkBytes, seed] of [[0, 4096, 1], [1, 4096, 2], [4096, 4096, 3], [4097, 4096, 4], [300_000, 4096, 5], [100_000, 65_536, 6], [50_000, 1000, 7], [50_000, 7, 8]]) {
    const bytes = shapedBytes(length, seed);
    const vectors = chunkFingerprints(bytes, chunkBytes);
    assert.equal(vectors.length, Math.ceil(length / chunkBytes));
    vectors.forEach((vector, chunk) => {
      const piece = bytes.subarray(chunk * chunkBytes, (chunk + 1) * chunkBytes);
      assertSameVector(vector, contentFingerprintJs(piece, { maxNonZero: CHUNK_FINGERPRINT_MAX_NON_ZERO }), `length ${length} chunk ${chunk}`);
    });
  }
  assert.throws(() => chunkFingerprints(new Uint8Array(8), 0), RangeError);
  assert.throws(() => chunkFingerprints([1, 2] as unknown as Uint8Array, 4096), TypeError);
});

test('a worker thread uses the same fingerprint implementation and gets the same vector', async () => {
  const bytes = seededBytes(4096, 42);
  const moduleUrl = new URL('./fingerprint.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.moduleUrl).then((m) => {
      const vector = m.chunkFingerprint(workerData.bytes);
      parentPort.postMessage({ kind: m.fingerprintImplementation().kind, positive: [...vector.positive], negative: [...vector.negative] });
    });`;
  const reply = await new Promise<{ kind: string; positive: number[]; negative: number[] }>((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { moduleUrl, bytes } });
    worker.once('message', (message) => {
      resolve(message);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
  assert.equal(reply.kind, implementation.kind);
  const expected = contentFingerprintJs(bytes, { maxNonZero: CHUNK_FINGERPRINT_MAX_NON_ZERO });
  assert.deepEqual({ positive: reply.positive, negative: reply.negative }, { positive: [...expected.positive], negative: [...expected.negative] });
});
