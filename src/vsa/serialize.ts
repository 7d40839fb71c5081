/**
 * Binary serialization of a SparseVector, format version 1 (docs/design/vsa.md, "Vector format").
 *
 * ```
 * u8      format version = 1
 * varint  dimension             (1 .. 2^31 - 1)
 * varint  positiveCount
 * varint  negativeCount          (positiveCount + negativeCount <= dimension)
 * varint  x positiveCount        first index, then (index - previous - 1) for each next one
 * varint  x negativeCount        same, for the -1 positions
 * ```
 * Varints are canonical unsigned LEB128 (see varint.ts). The encoding is canonical as a whole:
 * a vector has exactly one serialization, and the reader refuses anything else (bad version,
 * truncation, trailing bytes, overlong varints, indices at or above the dimension, a position
 * both +1 and -1) with EmbrError('CORRUPT'). There is no checksum: a flipped bit yields either
 * CORRUPT or a different valid vector, never the original one, and never an invalid vector. The
 * codec catches the second case with the chunk's SHA-256. Golden files in testdata/vsa pin it.
 *
 * @example
 * ```ts
 * const bytes = serializeVector(new SparseVector(16, Uint32Array.of(1, 5), Uint32Array.of(7)));
 * // 01 10 02 01 01 03 07
 * deserializeVector(bytes).equals(original); // true
 * ```
 */
import { MAX_DIMENSION, SparseVector, intersectionCount } from './sparse.js';
import { VarintReader, varintByteLength, writeVarint } from './varint.js';


/**
 * Records that `bytes` (never to be changed) is exactly `serializeVector(v)`, so later writes of
 * `v` copy it instead of encoding again. For callers that just made or parsed those bytes.
 *
 * @example
 * ```ts
 * rememberSerialization(vector, serializeVector(vector));
 * ```
 */
export function rememberSerialization(v: SparseVector, bytes: Uint8Array): void {
  // On the vector, not in a WeakMap keyed by it: the ephemerons of one per chunk cost the GC more
  // than the encoding they saved. Writing a vector again (an index log row, then its file row)
  // copies these bytes; vectors are immutable.
  v.knownSerialization = bytes;
}

/** Version byte of the format above. A new layout gets a new version; old ones stay readable. */
export const VECTOR_FORMAT_VERSION = 1;

/**
 * Exact length in bytes of `serializeVector(v)`, for callers that lay out a larger payload.
 *
 * @example
 * ```ts
 * serializedVectorByteLength(SparseVector.empty(16)); // 4
 * ```
 */
export function serializedVectorByteLength(v: SparseVector): number {
  const known = v.knownSerialization;
  if (known !== undefined) return known.length;
  return serializedIndicesByteLength(v.dimension, v.positive, v.negative);
}

/**
 * Length of the format-version-1 serialization of the vector with these indices (strictly
 * increasing, below `dimension`, disjoint: the caller's promise, not checked here).
 *
 * @example
 * ```ts
 * serializedIndicesByteLength(16, Uint32Array.of(3), new Uint32Array(0)); // 5
 * ```
 */
export function serializedIndicesByteLength(dimension: number, positive: Uint32Array, negative: Uint32Array): number {
  return 1 + varintByteLength(dimension) + varintByteLength(positive.length) + varintByteLength(negative.length) +
    gapsByteLength(positive) + gapsByteLength(negative);
}

/**
 * Writes the format-version-1 serialization of the vector with these indices (as for
 * {@link serializedIndicesByteLength}) into `out` at `offset`; returns the offset after it: the
 * same bytes {@link serializeVector} gives for that vector, without building it.
 *
 * @example
 * ```ts
 * writeIndices(out, 0, 16, Uint32Array.of(3), new Uint32Array(0)); // 5 (bytes 01 10 01 00 03)
 * ```
 */
export function writeIndices(out: Uint8Array, offset: number, dimension: number, positive: Uint32Array, negative: Uint32Array): number {
  out[offset++] = VECTOR_FORMAT_VERSION;
  offset = writeVarint(out, offset, dimension);
  offset = writeVarint(out, offset, positive.length);
  offset = writeVarint(out, offset, negative.length);
  offset = writeGaps(positive, out, offset);
  return writeGaps(negative, out, offset);
}

/**
 * Serializes `v` in format version 1.
 *
 * @example
 * ```ts
 * serializeVector(SparseVector.empty(16)); // 01 10 00 00
 * ```
 */
export function serializeVector(v: SparseVector): Uint8Array {
  const out = new Uint8Array(serializedVectorByteLength(v));
  const end = writeVector(v, out, 0);
  if (end !== out.length) throw new Error(`invariant failed: vector serialization wrote ${end} of ${out.length} bytes`);
  return out;
}

/**
 * Writes `v` in format version 1 into `out` at `offset`; returns the offset after it. `out` needs
 * {@link serializedVectorByteLength} bytes from `offset`.
 *
 * @example
 * ```ts
 * const payload = new Uint8Array(1 + serializedVectorByteLength(v));
 * writeVector(v, payload, 1);
 * ```
 */
export function writeVector(v: SparseVector, out: Uint8Array, offset: number): number {
  if (offset < 0 || offset + serializedVectorByteLength(v) > out.length) throw new RangeError('vector does not fit in the output buffer');
  const known = v.knownSerialization;
  if (known !== undefined) {
    out.set(known, offset);
    return offset + known.length;
  }
  return writeIndices(out, offset, v.dimension, v.positive, v.negative);
}

/**
 * Reads one serialized vector that fills `bytes` exactly. Throws EmbrError('CORRUPT') on any
 * malformed input; never returns a vector that breaks an invariant.
 *
 * @example
 * ```ts
 * deserializeVector(Uint8Array.of(1, 16, 0, 0)).nonZeroCount; // 0
 * ```
 */
export function deserializeVector(bytes: Uint8Array): SparseVector {
  const reader = new VarintReader(bytes, 'vector');
  const vector = readVectorFrom(reader);
  reader.expectEnd();
  return vector;
}

/**
 * Reads one serialized vector starting at `offset` inside a larger payload; returns it with the
 * offset just after it. Throws EmbrError('CORRUPT') like {@link deserializeVector}.
 *
 * @example
 * ```ts
 * const { vector, nextOffset } = readVector(payload, 1);
 * ```
 */
export function readVector(bytes: Uint8Array, offset: number): { vector: SparseVector; nextOffset: number } {
  if (!Number.isInteger(offset) || offset < 0 || offset > bytes.length) throw new RangeError(`offset ${offset} outside the ${bytes.length}-byte payload`);
  const reader = new VarintReader(bytes, 'vector', offset);
  const vector = readVectorFrom(reader);
  return { vector, nextOffset: reader.offset };
}

function readVectorFrom(reader: VarintReader): SparseVector {
  const version = reader.readByte();
  if (version !== VECTOR_FORMAT_VERSION) reader.corrupt(`unknown vector format version ${version}`);
  const dimension = reader.readVarint();
  if (dimension < 1 || dimension > MAX_DIMENSION) reader.corrupt(`dimension ${dimension} out of range`);
  const positiveCount = reader.readVarint();
  const negativeCount = reader.readVarint();
  if (positiveCount + negativeCount > dimension) reader.corrupt('more non-zeros than the dimension');
  // Each index takes at least one byte: refuse counts the remaining input cannot hold before
  // allocating for them (a flipped bit must not turn into a 4 GiB allocation).
  if (positiveCount + negativeCount > reader.bytes.length - reader.offset) reader.corrupt('truncated indices');
  const positive = readGaps(reader, positiveCount, dimension);
  const negative = readGaps(reader, negativeCount, dimension);
  if (intersectionCount(positive, negative) !== 0) reader.corrupt('a position is both +1 and -1');
  // readGaps made both lists strictly increasing and below the dimension; the overlap is checked above.
  return SparseVector.fromCheckedIndices(dimension, positive, negative);
}

function gapsByteLength(indices: Uint32Array): number {
  let total = 0;
  let previous = -1;
  for (let at = 0; at < indices.length; at += 1) {
    total += varintByteLength(indices[at] - previous - 1);
    previous = indices[at];
  }
  return total;
}

function writeGaps(indices: Uint32Array, out: Uint8Array, offset: number): number {
  let previous = -1;
  for (let at = 0; at < indices.length; at += 1) {
    offset = writeVarint(out, offset, indices[at] - previous - 1);
    previous = indices[at];
  }
  return offset;
}

function readGaps(reader: VarintReader, count: number, dimension: number): Uint32Array {
  const indices = new Uint32Array(count);
  let previous = -1;
  for (let at = 0; at < count; at += 1) {
    const index = previous + 1 + reader.readVarint();
    if (index >= dimension) reader.corrupt(`index ${index} not below dimension ${dimension}`);
    indices[at] = index;
    previous = index;
  }
  return indices;
}
