/**
 * The `holographic` profile: the reference project's algebra (bind each byte's basis vector to a
 * position vector, bundle the bound terms, decode by unbinding a position and picking the
 * best-matching byte), laid out so that it is fast and accurate.
 *
 * Layout (basis version 1). A chunk is cut into groups of `groupBytes` (G) bytes; each group has
 * its own vector of D = 256 * stripeCount (K) dimensions, and the chunk vector is their
 * concatenation (group g occupies [g*D, (g+1)*D)).
 * - Stripe k is the dimension range [k*256, k*256+256) of a group vector.
 * - Byte basis: byte b has exactly one non-zero per stripe, at k*256 + perm_k(b), with sign
 *   s_k(b). perm_k is a seeded permutation, so distinct bytes have disjoint supports and the
 *   inverse map dimension -> byte (`owner`) is exact.
 * - Position vectors: position i of a group is a dense seeded ±1 pattern over the D dimensions.
 *   Binding (element-wise product) flips signs and keeps the byte's support.
 * - Bundle: the sum of the G bound terms, then its sign (ternary majority; a tie gives 0).
 * - Decode position i: unbind (multiply by pos_i) and take the dot product with each byte whose
 *   support is non-zero; the largest wins (ties: the lowest byte value). Because supports are
 *   disjoint, only bytes present in the group can score, so this is at most G candidates, each a
 *   32-bit popcount (the K signs of a byte's support packed in one word), not 256 cosines.
 *
 * Seeds: every table comes from a SHA-256 counter stream,
 * block j = SHA-256(ASCII(label) || uint32le(j)), with P = `embrfs/codec/holographic/v1/G<G>/K<K>/`
 * and labels `P + permutation/<k>` (Fisher-Yates from the last element down, each choice a 16-bit
 * little-endian draw with rejection sampling), `P + byte-signs` (stripe k: bytes [32k, 32k+32),
 * bit b set = s_k(b) is -1) and `P + positions` (position i, stripe k: bytes [(K*i+k)*32, +32),
 * bit o set = pos_i is -1 at offset o of stripe k). G and K are part of every label so that a
 * payload whose parameter bytes were altered decodes against a different basis and fails the
 * canonical check instead of being accepted.
 *
 * Serialized vector, in basis coordinates. Every non-zero index of a group vector is
 * k*256 + perm_k(b) for one (stripe k, owner byte b), so the group vector is exactly the list of
 * owners b with, per owner, which stripes are non-zero and which of those are -1. For each group:
 * one byte `count` (0..G), then `count` entries in strictly increasing owner order, each: the owner
 * byte, its non-zero mask and its negative mask (each ceil(K/8) bytes, little-endian, bit k =
 * stripe k). A listed owner has a non-zero mask != 0, its negative mask is a subset of it, bits
 * >= K are zero: so each vector has exactly one serialization. Listing the ~256 non-zeros of a
 * group one by one (offset + sign) would take ~4x the bytes and ~4x the time for the same vector.
 *
 * @example
 * ```ts
 * const basis = createHolographicBasis(sha256, 8, 32);
 * const core = new HolographicCore(basis);
 * const end = core.encodeVector(chunk, payload, 10, decoded); // decoded = bytes read back from the vector
 * ```
 */
import { PayloadReader, corrupt } from './format.js';

/** Version of the seed scheme and layout above; stored in every holographic payload. */
export const HOLOGRAPHIC_BASIS_VERSION = 1;
/** Dimensions per stripe: one per byte value. */
export const STRIPE_DIMENSIONS = 256;
/** Stripes are packed in one 32-bit word per byte, so at most 32. */
export const MAX_STRIPE_COUNT = 32;
/** Largest supported group. */
export const MAX_GROUP_BYTES = 16;
/** Defaults: the best measured accuracy/size trade-off (docs/design/codec.md). */
export const DEFAULT_GROUP_BYTES = 4;
export const DEFAULT_STRIPE_COUNT = 32;


/** The seeded tables of one (groupBytes, stripeCount) configuration. Immutable once built. */
export interface HolographicBasis {
  readonly groupBytes: number;
  readonly stripeCount: number;
  /** Dimensions of one group vector: 256 * stripeCount. */
  readonly groupDimension: number;
  /** perm_k(b) at [k*256 + b]. */
  readonly permutation: Uint8Array;
  /** The byte owning offset o of stripe k, at [k*256 + o]: the inverse of `permutation`. */
  readonly owner: Uint8Array;
  /** Bit k set when s_k(b) is -1, at [b]. */
  readonly byteNegativeBits: Int32Array;
  /** Bit k set when pos_i is -1 on byte b's support in stripe k, at [i*256 + b]. */
  readonly positionNegativeBits: Int32Array;
  /** Bit o&7 of byte [(i*stripeCount + k)*32 + (o>>3)] set when pos_i is -1 at k*256 + o. */
  readonly positionPatterns: Uint8Array;
  /**
   * At [b*256 + (w & 0xff)]: the one position i whose positionNegativeBits[i*256 + b] has low
   * byte w & 0xff, -1 when none has, -2 when several have. A decoding speed-up only: it finds the
   * single candidate position of a byte's exact match without scanning all G positions.
   */
  readonly positionLookup: Int8Array;
}

/**
 * Builds the seeded tables (deterministic: the same arguments give the same tables everywhere).
 *
 * @example
 * ```ts
 * const basis = createHolographicBasis((bytes) => createHash('sha256').update(bytes).digest(), 8, 32);
 * basis.groupDimension; // 8192
 * ```
 */
export function createHolographicBasis(
  sha256: (bytes: Uint8Array) => Uint8Array,
  groupBytes: number,
  stripeCount: number,
): HolographicBasis {
  if (!Number.isInteger(groupBytes) || groupBytes < 1 || groupBytes > MAX_GROUP_BYTES) {
    throw new RangeError(`groupBytes must be an integer in 1..${MAX_GROUP_BYTES}, got ${groupBytes}`);
  }
  if (!Number.isInteger(stripeCount) || stripeCount < 1 || stripeCount > MAX_STRIPE_COUNT) {
    throw new RangeError(`stripeCount must be an integer in 1..${MAX_STRIPE_COUNT}, got ${stripeCount}`);
  }
  const labelPrefix = `embrfs/codec/holographic/v${HOLOGRAPHIC_BASIS_VERSION}/G${groupBytes}/K${stripeCount}/`;
  const permutation = new Uint8Array(stripeCount * STRIPE_DIMENSIONS);
  const owner = new Uint8Array(stripeCount * STRIPE_DIMENSIONS);
  for (let stripe = 0; stripe < stripeCount; stripe += 1) {
    const stream = new Sha256CounterStream(sha256, `${labelPrefix}permutation/${stripe}`);
    const order = new Uint8Array(STRIPE_DIMENSIONS);
    for (let value = 0; value < STRIPE_DIMENSIONS; value += 1) order[value] = value;
    for (let last = STRIPE_DIMENSIONS - 1; last > 0; last -= 1) {
      const choice = stream.uniformBelow(last + 1);
      const kept = order[last];
      order[last] = order[choice];
      order[choice] = kept;
    }
    for (let byte = 0; byte < STRIPE_DIMENSIONS; byte += 1) {
      permutation[stripe * STRIPE_DIMENSIONS + byte] = order[byte];
      owner[stripe * STRIPE_DIMENSIONS + order[byte]] = byte;
    }
  }

  const byteNegativeBits = new Int32Array(STRIPE_DIMENSIONS);
  const signStream = new Sha256CounterStream(sha256, `${labelPrefix}byte-signs`);
  for (let stripe = 0; stripe < stripeCount; stripe += 1) {
    const bits = signStream.take(32);
    for (let byte = 0; byte < STRIPE_DIMENSIONS; byte += 1) {
      if ((bits[byte >>> 3] >>> (byte & 7)) & 1) byteNegativeBits[byte] |= 1 << stripe;
    }
  }

  const positionPatterns = new Uint8Array(groupBytes * stripeCount * 32);
  const positionStream = new Sha256CounterStream(sha256, `${labelPrefix}positions`);
  for (let position = 0; position < groupBytes; position += 1) {
    for (let stripe = 0; stripe < stripeCount; stripe += 1) {
      positionPatterns.set(positionStream.take(32), (position * stripeCount + stripe) * 32);
    }
  }
  const positionNegativeBits = new Int32Array(groupBytes * STRIPE_DIMENSIONS);
  for (let position = 0; position < groupBytes; position += 1) {
    for (let byte = 0; byte < STRIPE_DIMENSIONS; byte += 1) {
      let bits = 0;
      for (let stripe = 0; stripe < stripeCount; stripe += 1) {
        const offset = permutation[stripe * STRIPE_DIMENSIONS + byte];
        const patternByte = positionPatterns[(position * stripeCount + stripe) * 32 + (offset >>> 3)];
        if ((patternByte >>> (offset & 7)) & 1) bits |= 1 << stripe;
      }
      positionNegativeBits[position * STRIPE_DIMENSIONS + byte] = bits;
    }
  }
  const positionLookup = new Int8Array(STRIPE_DIMENSIONS * 256).fill(-1);
  for (let byte = 0; byte < STRIPE_DIMENSIONS; byte += 1) {
    for (let position = 0; position < groupBytes; position += 1) {
      const at = byte * 256 + (positionNegativeBits[position * STRIPE_DIMENSIONS + byte] & 0xff);
      positionLookup[at] = positionLookup[at] === -1 ? position : -2;
    }
  }
  return {
    groupBytes,
    stripeCount,
    groupDimension: stripeCount * STRIPE_DIMENSIONS,
    positionLookup,
    permutation,
    owner,
    byteNegativeBits,
    positionNegativeBits,
    positionPatterns,
  };
}

/**
 * Encoder/decoder of holographic vectors for one basis, with scratch buffers sized once so the
 * per-chunk loops do not allocate. Not re-entrant (one call at a time), which is how JS runs it.
 *
 * Within a group, the distinct bytes ("slots") are always held in increasing byte order: the
 * encoder sorts the group's (byte, position) pairs, and the parser requires increasing owners.
 *
 * @example
 * ```ts
 * const core = new HolographicCore(basis);
 * const vectorEnd = core.encodeVector(chunk, payload, bodyOffset, decoded);
 * ```
 */
export class HolographicCore {
  readonly basis: HolographicBasis;
  private readonly fullMask: number;
  /** Bytes of one stripe mask in the serialization: ceil(K/8). */
  private readonly maskBytes: number;
  // The current group's distinct bytes in increasing order, with their masks over the stripes.
  private readonly slotByte: Uint8Array;
  private readonly slotNonZero: Int32Array;
  private readonly slotNegative: Int32Array;
  /** Per slot, for the scoring loop: popcount of the non-zero mask, and negative ^ s(b). */
  private readonly slotWeight: Int32Array;
  private readonly slotSigns: Int32Array;
  private slotCount = 0;
  // The group's (byte << 4 | position) keys, sorted, and each position's bound-term sign mask.
  private readonly keys: Int32Array;
  private readonly termNegative: Int32Array;
  // What decodeVector parsed, per group (G entries each, in byte order), for matchesVectorOf.
  private parsedByte = new Uint8Array(0);
  private parsedNonZero = new Int32Array(0);
  private parsedNegative = new Int32Array(0);
  private parsedCount = new Uint8Array(0);

  constructor(basis: HolographicBasis) {
    this.basis = basis;
    this.fullMask = basis.stripeCount === 32 ? -1 : (1 << basis.stripeCount) - 1;
    this.maskBytes = (basis.stripeCount + 7) >>> 3;
    this.slotByte = new Uint8Array(basis.groupBytes);
    this.slotNonZero = new Int32Array(basis.groupBytes);
    this.slotNegative = new Int32Array(basis.groupBytes);
    this.slotWeight = new Int32Array(basis.groupBytes);
    this.slotSigns = new Int32Array(basis.groupBytes);
    this.keys = new Int32Array(basis.groupBytes);
    this.termNegative = new Int32Array(basis.groupBytes);
  }

  /** Dimension of the vector of a chunk of `chunkBytes` bytes (whole groups). */
  dimensionFor(chunkBytes: number): number {
    return Math.max(1, Math.ceil(chunkBytes / this.basis.groupBytes)) * this.basis.groupDimension;
  }

  /** Upper bound of the serialized vector of `byteLength` bytes. */
  maxVectorBytes(byteLength: number): number {
    const { groupBytes } = this.basis;
    return Math.ceil(byteLength / groupBytes) * (1 + groupBytes * (1 + 2 * this.maskBytes));
  }

  /**
   * Serializes the vector of `chunk` at `offset` of `target` (room: {@link maxVectorBytes}) and
   * writes into `decoded` the bytes that decoding this vector gives. Returns the offset after it.
   */
  encodeVector(chunk: Uint8Array, target: Uint8Array, offset: number, decoded: Uint8Array): number {
    const groupBytes = this.basis.groupBytes;
    const maskBytes = this.maskBytes;
    const byteLength = chunk.length;
    const slotByte = this.slotByte;
    const slotNonZero = this.slotNonZero;
    const slotNegative = this.slotNegative;
    for (let groupStart = 0; groupStart < byteLength; groupStart += groupBytes) {
      const memberCount = Math.min(groupBytes, byteLength - groupStart);
      this.bundleGroup(chunk, groupStart, memberCount);
      const slotCount = this.slotCount;
      target[offset] = slotCount;
      offset += 1;
      for (let slot = 0; slot < slotCount; slot += 1) {
        const nonZero = slotNonZero[slot];
        const negative = slotNegative[slot];
        target[offset] = slotByte[slot];
        if (maskBytes === 4) {
          target[offset + 1] = nonZero;
          target[offset + 2] = nonZero >>> 8;
          target[offset + 3] = nonZero >>> 16;
          target[offset + 4] = nonZero >>> 24;
          target[offset + 5] = negative;
          target[offset + 6] = negative >>> 8;
          target[offset + 7] = negative >>> 16;
          target[offset + 8] = negative >>> 24;
        } else {
          for (let maskByte = 0; maskByte < maskBytes; maskByte += 1) {
            target[offset + 1 + maskByte] = nonZero >>> (8 * maskByte);
            target[offset + 1 + maskBytes + maskByte] = negative >>> (8 * maskByte);
          }
        }
        offset += 1 + 2 * maskBytes;
      }
      this.decodeGroup(decoded, groupStart, memberCount);
    }
    return offset;
  }

  /**
   * Parses a serialized vector for `decoded.length` bytes from `reader` and writes the decoded
   * bytes. Checks the layout (counts, byte order, masks, bounds); throws CORRUPT. Keeps what it
   * parsed so that {@link matchesVectorOf} can compare it with the true bytes.
   */
  decodeVector(reader: PayloadReader, decoded: Uint8Array): void {
    const byteLength = decoded.length;
    const groupBytes = this.basis.groupBytes;
    const groupCount = Math.ceil(byteLength / groupBytes);
    if (this.parsedByte.length < groupCount * groupBytes) {
      this.parsedByte = new Uint8Array(groupCount * groupBytes);
      this.parsedNonZero = new Int32Array(groupCount * groupBytes);
      this.parsedNegative = new Int32Array(groupCount * groupBytes);
      this.parsedCount = new Uint8Array(groupCount);
    }
    for (let group = 0, groupStart = 0; groupStart < byteLength; group += 1, groupStart += groupBytes) {
      const memberCount = Math.min(groupBytes, byteLength - groupStart);
      this.readGroup(reader, memberCount);
      const slotCount = this.slotCount;
      const base = group * groupBytes;
      this.parsedCount[group] = slotCount;
      for (let slot = 0; slot < slotCount; slot += 1) {
        this.parsedByte[base + slot] = this.slotByte[slot];
        this.parsedNonZero[base + slot] = this.slotNonZero[slot];
        this.parsedNegative[base + slot] = this.slotNegative[slot];
      }
      this.decodeGroup(decoded, groupStart, memberCount);
    }
  }

  /**
   * True when the vector last parsed by {@link decodeVector} is exactly the vector of `chunk`.
   * Parsing is strict (one serialization per vector), so equal vectors mean equal serialized bytes.
   */
  matchesVectorOf(chunk: Uint8Array): boolean {
    const groupBytes = this.basis.groupBytes;
    for (let group = 0, groupStart = 0; groupStart < chunk.length; group += 1, groupStart += groupBytes) {
      this.bundleGroup(chunk, groupStart, Math.min(groupBytes, chunk.length - groupStart));
      const base = group * groupBytes;
      if (this.slotCount !== this.parsedCount[group]) return false;
      for (let slot = 0; slot < this.slotCount; slot += 1) {
        if (
          this.parsedByte[base + slot] !== this.slotByte[slot] ||
          this.parsedNonZero[base + slot] !== this.slotNonZero[slot] ||
          this.parsedNegative[base + slot] !== this.slotNegative[slot]
        ) {
          return false;
        }
      }
    }
    return true;
  }

  /**
   * Parses a serialized vector for `byteLength` bytes and returns its non-zero indices, sorted.
   *
   * @example
   * ```ts
   * const { positive, negative } = core.vectorIndices(reader, 4096);
   * ```
   */
  vectorIndices(reader: PayloadReader, byteLength: number): { positive: Uint32Array; negative: Uint32Array } {
    const { groupBytes, stripeCount, groupDimension, permutation } = this.basis;
    const positive: number[] = [];
    const negative: number[] = [];
    const stripeEntries: number[] = [];
    for (let group = 0, groupStart = 0; groupStart < byteLength; group += 1, groupStart += groupBytes) {
      this.readGroup(reader, Math.min(groupBytes, byteLength - groupStart));
      for (let stripe = 0; stripe < stripeCount; stripe += 1) {
        stripeEntries.length = 0;
        for (let slot = 0; slot < this.slotCount; slot += 1) {
          if (((this.slotNonZero[slot] >>> stripe) & 1) === 0) continue;
          const index = group * groupDimension + stripe * STRIPE_DIMENSIONS + permutation[stripe * STRIPE_DIMENSIONS + this.slotByte[slot]];
          stripeEntries.push((this.slotNegative[slot] >>> stripe) & 1 ? -index - 1 : index);
        }
        // Owners come in byte order; the vector wants index order within the stripe.
        stripeEntries.sort((left, right) => (left < 0 ? -left - 1 : left) - (right < 0 ? -right - 1 : right));
        for (const entry of stripeEntries) {
          if (entry < 0) negative.push(-entry - 1);
          else positive.push(entry);
        }
      }
    }
    return { positive: Uint32Array.from(positive), negative: Uint32Array.from(negative) };
  }

  /**
   * The bundle of one group: per distinct byte (in increasing order), the stripes where the sum
   * of its bound terms is non-zero and those where it is negative. Bytes whose terms cancel in
   * every stripe are not in the vector and get no slot.
   */
  private bundleGroup(chunk: Uint8Array, groupStart: number, memberCount: number): void {
    const { byteNegativeBits, positionNegativeBits } = this.basis;
    const keys = this.keys;
    const termNegative = this.termNegative;
    // Insertion sort of (byte, position) keys: equal bytes become adjacent runs.
    for (let position = 0; position < memberCount; position += 1) {
      const byte = chunk[groupStart + position];
      termNegative[position] = byteNegativeBits[byte] ^ positionNegativeBits[position * STRIPE_DIMENSIONS + byte];
      const key = (byte << 4) | position;
      let place = position;
      while (place > 0 && keys[place - 1] > key) {
        keys[place] = keys[place - 1];
        place -= 1;
      }
      keys[place] = key;
    }
    let slotCount = 0;
    let runStart = 0;
    while (runStart < memberCount) {
      const byte = keys[runStart] >>> 4;
      let runEnd = runStart + 1;
      while (runEnd < memberCount && keys[runEnd] >>> 4 === byte) runEnd += 1;
      const occurrences = runEnd - runStart;
      let nonZero: number;
      let negative: number;
      const first = termNegative[keys[runStart] & 15];
      if (occurrences === 1) {
        // A byte seen once keeps its bound term as is.
        nonZero = this.fullMask;
        negative = first;
      } else if (occurrences === 2) {
        // Two terms agree (keep the sign) or cancel (0).
        const second = termNegative[keys[runStart + 1] & 15];
        nonZero = ~(first ^ second) & this.fullMask;
        negative = first & second;
      } else if (occurrences === 3) {
        // Three terms: the bitwise majority of the sign bits, never a tie.
        const second = termNegative[keys[runStart + 1] & 15];
        const third = termNegative[keys[runStart + 2] & 15];
        nonZero = this.fullMask;
        negative = (first & second) | (first & third) | (second & third);
      } else {
        // Four or more terms: count the negative signs per stripe in bit-sliced form (planes of
        // a 5-bit counter, one bit per stripe), then compare each count with half the terms.
        let plane0 = 0;
        let plane1 = 0;
        let plane2 = 0;
        let plane3 = 0;
        let plane4 = 0;
        for (let member = runStart; member < runEnd; member += 1) {
          let carry = termNegative[keys[member] & 15];
          let next = plane0 & carry;
          plane0 ^= carry;
          carry = next;
          next = plane1 & carry;
          plane1 ^= carry;
          carry = next;
          next = plane2 & carry;
          plane2 ^= carry;
          carry = next;
          next = plane3 & carry;
          plane3 ^= carry;
          plane4 ^= next; // at most 16 terms: the count never overflows 5 bits
        }
        // negative where count > occurrences/2 (more -1 than +1), zero where count == occurrences/2.
        const half = occurrences >>> 1;
        const odd = occurrences & 1;
        let equal = -1;
        let greater = 0;
        // Bit-sliced comparison of each stripe's count with `half`, most significant plane first.
        if ((half >>> 4) & 1) equal &= plane4;
        else {
          greater |= equal & plane4;
          equal &= ~plane4;
        }
        if ((half >>> 3) & 1) equal &= plane3;
        else {
          greater |= equal & plane3;
          equal &= ~plane3;
        }
        if ((half >>> 2) & 1) equal &= plane2;
        else {
          greater |= equal & plane2;
          equal &= ~plane2;
        }
        if ((half >>> 1) & 1) equal &= plane1;
        else {
          greater |= equal & plane1;
          equal &= ~plane1;
        }
        if (half & 1) equal &= plane0;
        else {
          greater |= equal & plane0;
          equal &= ~plane0;
        }
        // count > half: for odd occurrences, count == half means more +1 terms (not negative).
        negative = greater & this.fullMask;
        nonZero = odd === 1 ? this.fullMask : ~equal & this.fullMask;
      }
      if (nonZero !== 0) {
        this.slotByte[slotCount] = byte;
        this.slotNonZero[slotCount] = nonZero;
        this.slotNegative[slotCount] = negative;
        slotCount += 1;
      }
      runStart = runEnd;
    }
    this.slotCount = slotCount;
  }

  /**
   * Unbinds each position and picks the best-scoring present byte (ties: the lowest value).
   *
   * Score of byte b at position i = dot(unbind(group vector, pos_i), basis(b)) =
   * popcount(nonZero_b) - 2 * popcount(nonZero_b & (negative_b ^ s(b) ^ pos_i(b))), at most K.
   * Fast path: a byte with all K stripes non-zero whose signs equal its bound term at position i
   * scores exactly K, the largest possible score, so the first such byte in byte order is the
   * answer without scoring the others (this is every byte that occurs once in its group).
   */
  private decodeGroup(decoded: Uint8Array, groupStart: number, memberCount: number): void {
    const { stripeCount, byteNegativeBits, positionNegativeBits } = this.basis;
    const slotCount = this.slotCount;
    const slotByte = this.slotByte;
    const slotNonZero = this.slotNonZero;
    const slotNegative = this.slotNegative;
    const fullMask = this.fullMask;
    const allDecided = (1 << memberCount) - 1;
    const positionLookup = this.basis.positionLookup;
    let decidedMask = 0;
    for (let slot = 0; slot < slotCount && decidedMask !== allDecided; slot += 1) {
      if (slotNonZero[slot] !== fullMask) continue;
      const byte = slotByte[slot];
      const key = slotNegative[slot] ^ byteNegativeBits[byte];
      const candidate = positionLookup[byte * 256 + (key & 0xff)];
      if (candidate === -1) continue; // no position's bound term matches: not an exact match anywhere
      if (candidate >= 0) {
        if (candidate < memberCount && positionNegativeBits[candidate * STRIPE_DIMENSIONS + byte] === key && ((decidedMask >>> candidate) & 1) === 0) {
          decidedMask |= 1 << candidate;
          decoded[groupStart + candidate] = byte;
        }
        continue;
      }
      for (let position = 0; position < memberCount; position += 1) {
        if (positionNegativeBits[position * STRIPE_DIMENSIONS + byte] === key && ((decidedMask >>> position) & 1) === 0) {
          decidedMask |= 1 << position;
          decoded[groupStart + position] = byte;
        }
      }
    }
    if (decidedMask === allDecided) return;
    if (slotCount === 1) {
      // One candidate: every undecided position decodes to it (its score is the maximum by default).
      for (let position = 0; position < memberCount; position += 1) if (((decidedMask >>> position) & 1) === 0) decoded[groupStart + position] = slotByte[0];
      return;
    }
    const slotWeight = this.slotWeight;
    const slotSigns = this.slotSigns;
    for (let slot = 0; slot < slotCount; slot += 1) {
      slotWeight[slot] = popcount32(slotNonZero[slot]);
      slotSigns[slot] = slotNegative[slot] ^ byteNegativeBits[slotByte[slot]];
    }
    for (let position = 0; position < memberCount; position += 1) {
      if ((decidedMask >>> position) & 1) continue;
      let bestByte = 0;
      let bestScore = -1 << 30;
      const positionBase = position * STRIPE_DIMENSIONS;
      for (let slot = 0; slot < slotCount; slot += 1) {
        const byte = slotByte[slot];
        const disagreeing = slotNonZero[slot] & (slotSigns[slot] ^ positionNegativeBits[positionBase + byte]);
        const score = slotWeight[slot] - 2 * (POPCOUNT16[disagreeing & 0xffff] + POPCOUNT16[disagreeing >>> 16]);
        if (score > bestScore) {
          // Slots go in increasing byte order, so keeping the first maximum is "ties: lowest byte".
          bestScore = score;
          bestByte = byte;
          if (score === stripeCount) break;
        }
      }
      decoded[groupStart + position] = bestByte;
    }
  }

  /**
   * Reads one group of `memberCount` bytes into the slots, checking the layout: at most
   * memberCount entries (a group bundles at most that many distinct bytes), bytes strictly
   * increasing, masks non-zero, negative within non-zero, no bit at or above K, no overrun.
   */
  private readGroup(reader: PayloadReader, memberCount: number): void {
    const maskBytes = this.maskBytes;
    const fullMask = this.fullMask;
    const payload = reader.payload;
    let offset = reader.offset;
    if (offset >= payload.length) corrupt('truncated vector', { offset });
    const count = payload[offset];
    offset += 1;
    if (count > memberCount) corrupt('group lists more bytes than the group holds', { count, memberCount, offset: offset - 1 });
    if (offset + count * (1 + 2 * maskBytes) > payload.length) corrupt('truncated vector', { offset });
    let previous = -1;
    for (let entry = 0; entry < count; entry += 1) {
      const byte = payload[offset];
      if (byte <= previous) corrupt('group entries not in increasing byte order', { offset });
      previous = byte;
      let nonZero = 0;
      let negative = 0;
      if (maskBytes === 4) {
        nonZero = payload[offset + 1] | (payload[offset + 2] << 8) | (payload[offset + 3] << 16) | (payload[offset + 4] << 24);
        negative = payload[offset + 5] | (payload[offset + 6] << 8) | (payload[offset + 7] << 16) | (payload[offset + 8] << 24);
      } else {
        for (let maskByte = 0; maskByte < maskBytes; maskByte += 1) {
          nonZero |= payload[offset + 1 + maskByte] << (8 * maskByte);
          negative |= payload[offset + 1 + maskBytes + maskByte] << (8 * maskByte);
        }
      }
      if (nonZero === 0 || (nonZero & ~fullMask) !== 0 || (negative & ~nonZero) !== 0) {
        corrupt('group entry masks out of range', { offset });
      }
      this.slotByte[entry] = byte;
      this.slotNonZero[entry] = nonZero;
      this.slotNegative[entry] = negative;
      offset += 1 + 2 * maskBytes;
    }
    this.slotCount = count;
    reader.offset = offset;
  }
}

/** Set bits of every 16-bit value: two lookups count a 32-bit word in the scoring loop. */
const POPCOUNT16 = (() => {
  const table = new Uint8Array(1 << 16);
  for (let value = 1; value < table.length; value += 1) table[value] = (value & 1) + table[value >>> 1];
  return table;
})();

/**
 * Number of set bits of a 32-bit integer.
 *
 * @example
 * ```ts
 * popcount32(0b1011); // 3
 * popcount32(-1);     // 32
 * ```
 */
export function popcount32(value: number): number {
  let bits = value - ((value >>> 1) & 0x55555555);
  bits = (bits & 0x33333333) + ((bits >>> 2) & 0x33333333);
  return Math.imul((bits + (bits >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/**
 * The seed stream: block j = SHA-256(ASCII(label) || uint32le(j)), j = 0, 1, 2, ...
 *
 * @example
 * ```ts
 * const stream = new Sha256CounterStream(sha256, 'embrfs/codec/holographic/v1/byte-signs');
 * stream.take(32); // the first block
 * ```
 */
export class Sha256CounterStream {
  private readonly sha256: (bytes: Uint8Array) => Uint8Array;
  private readonly input: Uint8Array;
  private readonly labelBytes: number;
  private counter = 0;
  private block: Uint8Array = new Uint8Array(0);
  private used = 0;

  constructor(sha256: (bytes: Uint8Array) => Uint8Array, label: string) {
    this.sha256 = sha256;
    this.labelBytes = label.length;
    this.input = new Uint8Array(label.length + 4);
    for (let index = 0; index < label.length; index += 1) {
      const code = label.charCodeAt(index);
      if (code > 0x7f) throw new RangeError('seed labels are ASCII');
      this.input[index] = code;
    }
  }

  /** The next byte of the stream. */
  nextByte(): number {
    if (this.used === this.block.length) {
      const counter = this.counter;
      this.input[this.labelBytes] = counter & 0xff;
      this.input[this.labelBytes + 1] = (counter >>> 8) & 0xff;
      this.input[this.labelBytes + 2] = (counter >>> 16) & 0xff;
      this.input[this.labelBytes + 3] = (counter >>> 24) & 0xff;
      this.block = this.sha256(this.input);
      this.counter += 1;
      this.used = 0;
    }
    const value = this.block[this.used];
    this.used += 1;
    return value;
  }

  /** The next `byteCount` bytes as a new array. */
  take(byteCount: number): Uint8Array {
    const bytes = new Uint8Array(byteCount);
    for (let index = 0; index < byteCount; index += 1) bytes[index] = this.nextByte();
    return bytes;
  }

  /** A uniform integer in [0, bound) for bound <= 65536, by rejection of 16-bit draws (unbiased). */
  uniformBelow(bound: number): number {
    const limit = 65536 - (65536 % bound);
    for (;;) {
      const draw = this.nextByte() | (this.nextByte() << 8);
      if (draw < limit) return draw % bound;
    }
  }
}
