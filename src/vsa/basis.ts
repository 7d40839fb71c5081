/**
 * Deterministic basis vectors: scheme version 1 (see docs/design/vsa.md, "Basis scheme").
 *
 * A basis vector is a function of (seed, index, dimension, nonZeroCount) only, never of a clock
 * or `Math.random`, so every process, machine and version of EmbrFS that implements scheme 1
 * derives the same vectors. Golden vectors in `testdata/vsa/basis-v1.json` pin the scheme: a
 * change to any step below fails a test and must come with a new BASIS_SCHEME_VERSION.
 *
 * Scheme 1:
 * 1. message(counter) = ASCII "embrfs-basis-v1" || u32be(byteLength(utf8(seed))) || utf8(seed)
 *    || u32be(index) || u32be(dimension) || u32be(nonZeroCount) || u32be(counter)
 * 2. For counter = 0, 1, 2, ...: digest = SHA-256(message(counter)), read as 8 big-endian
 *    uint32 words w, in order.
 * 3. Each word is a draw: drop it if w >= 2^32 - (2^32 mod dimension) (rejection keeps positions
 *    uniform), else position = w mod dimension; drop it if the position was already chosen.
 * 4. The first ceil(nonZeroCount / 2) chosen positions are +1, the next floor(nonZeroCount / 2)
 *    are -1. Stop as soon as nonZeroCount positions are chosen (later words are ignored).
 *
 * @example
 * ```ts
 * const byteVector = basisVector('bytes', 0x41, { dimension: 10_000, nonZeroCount: 200 });
 * byteVector.positive.length; // 100
 * byteVector.negative.length; // 100
 * ```
 */
import { DEFAULT_DIMENSION, MAX_DIMENSION, SparseVector } from './sparse.js';
import { Sha256, SHA256_BYTES } from './sha256.js';

/** Version of the basis scheme described above. Bump it whenever any generated vector would change. */
export const BASIS_SCHEME_VERSION = 1;

/** Default number of non-zeros of a basis vector: 100 of +1 and 100 of -1, as in the reference. */
export const DEFAULT_BASIS_NON_ZERO_COUNT = 200;

const DOMAIN_TAG = new TextEncoder().encode('embrfs-basis-v1');
const UINT32_RANGE = 0x1_0000_0000;

/** Shape of a basis vector. */
export interface BasisOptions {
  /** Number of positions (default {@link DEFAULT_DIMENSION}). */
  dimension?: number;
  /** Number of non-zeros, at most `dimension` (default {@link DEFAULT_BASIS_NON_ZERO_COUNT}). */
  nonZeroCount?: number;
}

/**
 * The basis vector number `index` of the family named `seed` (scheme 1, see the module comment).
 * Different seeds, indices, dimensions or non-zero counts give unrelated vectors.
 *
 * @example
 * ```ts
 * const a = basisVector('position', 7);
 * basisVector('position', 7).equals(a); // true, on every machine
 * ```
 */
export function basisVector(seed: string, index: number, options: BasisOptions = {}): SparseVector {
  const dimension = options.dimension ?? DEFAULT_DIMENSION;
  const nonZeroCount = options.nonZeroCount ?? DEFAULT_BASIS_NON_ZERO_COUNT;
  if (typeof seed !== 'string') throw new TypeError('basis seed must be a string');
  if (!Number.isInteger(index) || index < 0 || index >= UINT32_RANGE) {
    throw new RangeError(`basis index must be an integer in [0, 2^32), got ${index}`);
  }
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > MAX_DIMENSION) {
    throw new RangeError(`dimension must be an integer in [1, ${MAX_DIMENSION}], got ${dimension}`);
  }
  if (!Number.isInteger(nonZeroCount) || nonZeroCount < 0 || nonZeroCount > dimension) {
    throw new RangeError(`nonZeroCount must be an integer in [0, dimension], got ${nonZeroCount}`);
  }

  const seedBytes = new TextEncoder().encode(seed);
  const message = new Uint8Array(DOMAIN_TAG.length + 4 + seedBytes.length + 16);
  message.set(DOMAIN_TAG, 0);
  let offset = DOMAIN_TAG.length;
  offset = writeUint32BigEndian(message, offset, seedBytes.length);
  message.set(seedBytes, offset);
  offset += seedBytes.length;
  offset = writeUint32BigEndian(message, offset, index);
  offset = writeUint32BigEndian(message, offset, dimension);
  offset = writeUint32BigEndian(message, offset, nonZeroCount);
  const counterOffset = offset;

  const positiveCount = Math.ceil(nonZeroCount / 2);
  const positive = new Uint32Array(positiveCount);
  const negative = new Uint32Array(nonZeroCount - positiveCount);
  const chosen = new Set<number>();
  const acceptLimit = UINT32_RANGE - (UINT32_RANGE % dimension);
  const hash = new Sha256();
  const digest = new Uint8Array(SHA256_BYTES);
  // Bound: choosing all `dimension` positions is a coupon-collector run of about d*ln(d) draws;
  // 2^32 blocks of 8 draws each is far beyond that, and the counter must fit in its 4 bytes.
  for (let counter = 0; chosen.size < nonZeroCount; counter += 1) {
    if (counter >= UINT32_RANGE) throw new Error('invariant failed: basis counter exhausted');
    writeUint32BigEndian(message, counterOffset, counter);
    hash.reset().update(message).digestInto(digest);
    for (let word = 0; word < 8 && chosen.size < nonZeroCount; word += 1) {
      const at = word * 4;
      const draw = ((digest[at] << 24) | (digest[at + 1] << 16) | (digest[at + 2] << 8) | digest[at + 3]) >>> 0;
      if (draw >= acceptLimit) continue;
      const position = draw % dimension;
      if (chosen.has(position)) continue;
      if (chosen.size < positiveCount) positive[chosen.size] = position;
      else negative[chosen.size - positiveCount] = position;
      chosen.add(position);
    }
  }
  positive.sort();
  negative.sort();
  return new SparseVector(dimension, positive, negative);
}

function writeUint32BigEndian(out: Uint8Array, offset: number, value: number): number {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
  return offset + 4;
}
