/**
 * The chunk codec contract (issue 2). Pure: no `node:*`, no clock, no randomness. Hashing is
 * injected so the codec stays pure and the caller (store/fs) supplies node:crypto's SHA-256.
 *
 * A chunk of 1..chunkBytes bytes becomes a *payload*: the serialized hypervector plus its
 * correction (uncompressed; the store compresses payloads in units larger than one chunk).
 * `decode(payload, sha256)` returns the exact bytes or throws EmbrError('CORRUPT'); it never
 * returns bytes whose SHA-256 differs from the one given.
 */
import type { SparseVector } from '../vsa/sparse.js';

export type CodecProfileName = 'positional' | 'holographic';

export interface CodecOptions {
  profile: CodecProfileName;
  /** Maximum chunk length in bytes (default 4096). */
  chunkBytes?: number;
  /** Full SHA-256 of a byte string (32 bytes). Injected: the codec itself imports nothing from node. */
  sha256: (bytes: Uint8Array) => Uint8Array;
  /** Holographic only: bytes bundled into one group vector (1..16, default 4: the most accurate, smallest and fastest measured; docs/design/codec.md). */
  groupBytes?: number;
  /** Holographic only: stripes of 256 dimensions per group vector (1..32, default 32). */
  stripeCount?: number;
}

export interface EncodedChunk {
  /** Serialized vector + correction in the versioned format of docs/DESIGN.md. */
  payload: Uint8Array;
  /** SHA-256 of the chunk bytes (32 bytes): the content address. */
  sha256: Uint8Array;
  /** Length of the chunk in bytes. */
  byteLength: number;
  /** How many bytes came out right from the vector alone, before the correction. */
  vectorCorrectBytes: number;
  /** Bytes of the payload that belong to the correction. */
  correctionBytes: number;
  /** Bytes of the payload that hold the serialized vector. */
  vectorBytes: number;
}

export interface ChunkCodec {
  readonly profile: CodecProfileName;
  readonly chunkBytes: number;
  /** Encodes one chunk (1..chunkBytes bytes; the last chunk of a file may be short). */
  encode(chunk: Uint8Array): EncodedChunk;
  /** Decodes a payload and checks it against `sha256`; throws EmbrError CORRUPT on any mismatch. */
  decode(payload: Uint8Array, sha256: Uint8Array): Uint8Array;
  /**
   * Like `decode`, but writes the bytes into `target` (whose length must be the chunk's length),
   * only after they matched `sha256`: readers fill their output without a copy per chunk.
   * Throws CORRUPT on any mismatch (also a chunk length other than `target.length`).
   */
  decodeInto(payload: Uint8Array, sha256: Uint8Array, target: Uint8Array): void;
  /**
   * Like `decodeInto` without the chunk's own SHA-256 check, for a caller that checks a hash over
   * many chunks at once (a whole file's content hash) and falls back to `decodeInto` to name the
   * damaged chunk when that fails. The payload is still parsed strictly (CORRUPT on a malformed
   * one). Positional payloads only: a holographic decoder tolerates noise, so its payloads must
   * go through `decodeInto` (this method refuses them with CORRUPT).
   */
  decodeIntoUnverified(payload: Uint8Array, target: Uint8Array): void;
  /** The hypervector of a payload (for algebra and tests); throws CORRUPT on a bad payload. */
  vectorOf(payload: Uint8Array): SparseVector;
  /** Dimension of the vectors this codec produces (positional: chunkBytes * 128). */
  readonly dimension: number;
}
