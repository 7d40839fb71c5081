/**
 * The `positional` profile (the default): an exact positional code in which no two bytes of a
 * chunk can collide.
 *
 * Vector layout: a chunk of up to C bytes lives in dimension C * 128, cut into C blocks of 128
 * dimensions. Byte b at position p sets exactly one non-zero, in block p, at index
 * p*128 + (b & 0x7f), with sign +1 when b < 0x80 and -1 otherwise. Blocks of positions past the
 * chunk's end are all zero. It is position-vector ⊗ byte-vector binding in a structured basis: the
 * block selects the position, the signed offset inside it the byte; since blocks are disjoint no
 * two bytes interfere, so the vector decodes exactly (every byte right, correction `none`).
 *
 * Serialized vector: for each block p < byteLength, one byte holding the signed offset of its
 * single non-zero: bit 7 = the sign is -1, bits 0..6 = the offset within the block. That byte is
 * the chunk byte itself — a bijection — so the serialized vector costs exactly what the bytes cost
 * (and compresses exactly as well). The hot paths rely on that identity instead of materializing
 * index arrays; {@link blockEntryOfByte} and {@link byteOfBlockEntry} state it and are tested
 * over all 256 values.
 *
 * @example
 * ```ts
 * blockEntryOfByte(0x41); // { offset: 0x41, negative: false }
 * positionalVector(Uint8Array.of(0x41, 0xc1), 4).negative; // Uint32Array [ 128 + 0x41 ]
 * ```
 */
import { SparseVector } from '../vsa/sparse.js';

/** Dimensions per position block: one per 7-bit offset; the sign carries the eighth bit. */
export const POSITIONAL_BLOCK_DIMENSIONS = 128;

/**
 * Where byte `byte` puts its non-zero inside its position's block.
 *
 * @example
 * ```ts
 * blockEntryOfByte(0xc1); // { offset: 0x41, negative: true }
 * ```
 */
export function blockEntryOfByte(byte: number): { offset: number; negative: boolean } {
  return { offset: byte & 0x7f, negative: byte >= 0x80 };
}

/**
 * The byte a block's single non-zero stands for: the inverse of {@link blockEntryOfByte}.
 *
 * @example
 * ```ts
 * byteOfBlockEntry(0x41, true); // 0xc1
 * ```
 */
export function byteOfBlockEntry(offset: number, negative: boolean): number {
  return (negative ? 0x80 : 0) | offset;
}

/**
 * The serialized vector of `chunk`: one signed-offset byte per block, which is the chunk itself.
 * Returns the offset after it.
 *
 * @example
 * ```ts
 * writePositionalVector(chunk, payload, 7); // 7 + chunk.length
 * ```
 */
export function writePositionalVector(chunk: Uint8Array, target: Uint8Array, offset: number): number {
  target.set(chunk, offset);
  return offset + chunk.length;
}

/**
 * The vector of a serialized positional section (one signed-offset byte per block) in dimension
 * `chunkBytes * 128`, built through the block layout (not the identity) so tests can hold the
 * fast path to it.
 *
 * @example
 * ```ts
 * positionalVector(Uint8Array.of(1), 1).positive; // Uint32Array [ 1 ]
 * ```
 */
export function positionalVector(section: Uint8Array, chunkBytes: number): SparseVector {
  let negativeCount = 0;
  for (let block = 0; block < section.length; block += 1) if (section[block] >= 0x80) negativeCount += 1;
  const positive = new Uint32Array(section.length - negativeCount);
  const negative = new Uint32Array(negativeCount);
  let positiveAt = 0;
  let negativeAt = 0;
  for (let block = 0; block < section.length; block += 1) {
    const entry = blockEntryOfByte(section[block]);
    const index = block * POSITIONAL_BLOCK_DIMENSIONS + entry.offset;
    if (entry.negative) negative[negativeAt++] = index;
    else positive[positiveAt++] = index;
  }
  return new SparseVector(chunkBytes * POSITIONAL_BLOCK_DIMENSIONS, positive, negative);
}

/**
 * Decodes a vector in the positional layout back to bytes (the slow, general path: it reads the
 * non-zero of each block). Throws RangeError when a block holds other than exactly one non-zero
 * among the first `byteLength` blocks or any non-zero past them.
 *
 * @example
 * ```ts
 * bytesOfPositionalVector(positionalVector(Uint8Array.of(7, 200), 2), 2); // Uint8Array [ 7, 200 ]
 * ```
 */
export function bytesOfPositionalVector(vector: SparseVector, byteLength: number): Uint8Array {
  const bytes = new Uint8Array(byteLength);
  const seen = new Uint8Array(byteLength);
  const place = (index: number, negative: boolean): void => {
    const block = Math.floor(index / POSITIONAL_BLOCK_DIMENSIONS);
    if (block >= byteLength || seen[block] === 1) throw new RangeError(`block ${block} is not a single non-zero of the chunk`);
    seen[block] = 1;
    bytes[block] = byteOfBlockEntry(index % POSITIONAL_BLOCK_DIMENSIONS, negative);
  };
  for (const index of vector.positive) place(index, false);
  for (const index of vector.negative) place(index, true);
  if (seen.indexOf(0) >= 0) throw new RangeError(`block ${seen.indexOf(0)} has no non-zero`);
  return bytes;
}
