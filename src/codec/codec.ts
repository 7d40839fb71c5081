/**
 * `createChunkCodec`: the chunk codec of issue 2. A chunk becomes a payload (format version 1,
 * src/codec/format.ts) holding its serialized hypervector and a correction; decoding reads the
 * vector back, applies the correction and checks the chunk's full SHA-256.
 *
 * Validity rule (checked on every decode): a payload is valid for bytes B exactly when it is
 * byte-for-byte the payload `encode(B)` produces and SHA-256(B) is the hash the caller holds.
 * The positional profile gets this from strict parsing alone (its payload is a bijection of the
 * bytes); the holographic one re-encodes, because its decoder is noise-tolerant by design and a
 * flipped bit in a vector could otherwise go unnoticed. So any stored bit flipped gives CORRUPT.
 *
 * @example
 * ```ts
 * // sha256: e.g. (bytes) => createHash('sha256').update(bytes).digest(), from node's crypto module
 * const codec = createChunkCodec({ profile: 'positional', sha256 });
 * const encoded = codec.encode(new TextEncoder().encode('hello'));
 * codec.decode(encoded.payload, encoded.sha256); // the 5 bytes of 'hello'
 * ```
 */
import { EmbrError } from '../errors.js';
import { SparseVector } from '../vsa/sparse.js';
import type { ChunkCodec, CodecOptions, CodecProfileName, EncodedChunk } from './api.js';
import { applyCorrection, planCorrection, writeCorrection } from './correction.js';
import {
  COMMON_HEADER_BYTES,
  CORRECTION_KIND,
  PROFILE_ID,
  PayloadReader,
  corrupt,
  readHeader,
  toHex,
  writeHeader,
} from './format.js';
import {
  DEFAULT_GROUP_BYTES,
  DEFAULT_STRIPE_COUNT,
  HOLOGRAPHIC_BASIS_VERSION,
  HolographicCore,
  MAX_GROUP_BYTES,
  MAX_STRIPE_COUNT,
  createHolographicBasis,
} from './holographic.js';
import { POSITIONAL_BLOCK_DIMENSIONS, positionalVector, writePositionalVector } from './positional.js';

/** Default chunk size: 4 KiB. */
export const DEFAULT_CHUNK_BYTES = 4096;

/**
 * Length of the positional profile's payload of a chunk of `byteLength` bytes.
 *
 * @example
 * ```ts
 * positionalPayloadBytes(4096); // 4103
 * ```
 */
export function positionalPayloadBytes(byteLength: number): number {
  return COMMON_HEADER_BYTES + byteLength;
}

/**
 * Writes the positional profile's payload of `chunk` (the bytes `encode` returns for it) into
 * `target` at `offset`; returns the offset after it. For writers that lay payloads out in a
 * larger buffer (a pack) instead of allocating one per chunk.
 *
 * @example
 * ```ts
 * const end = writePositionalPayload(chunk, pack, offset);
 * ```
 */
export function writePositionalPayload(chunk: Uint8Array, target: Uint8Array, offset: number): number {
  writeHeader(target.subarray(offset, offset + COMMON_HEADER_BYTES), PROFILE_ID.positional, chunk.length, CORRECTION_KIND.none);
  return writePositionalVector(chunk, target, offset + COMMON_HEADER_BYTES);
}
/** Holographic payloads carry three parameter bytes after the common header. */
const HOLOGRAPHIC_PARAMETER_BYTES = 3;
/** Vector dimensions must fit the VSA core's 31-bit index space. */
const MAX_DIMENSION = 0x7fff_ffff;
const SHA256_BYTES = 32;
/** Holographic bases kept per codec; the configured one is never evicted. */
const MAX_CACHED_CORES = 4;

/**
 * Creates a chunk codec. Throws TypeError/RangeError on malformed options and EmbrError
 * INVALID_ARGUMENT on an unknown profile name (it may come from user input or engram metadata).
 *
 * @example
 * ```ts
 * const codec = createChunkCodec({ profile: 'holographic', chunkBytes: 4096, groupBytes: 8, sha256 });
 * const { payload, sha256: hash, vectorCorrectBytes } = codec.encode(chunk);
 * ```
 */
export function createChunkCodec(options: CodecOptions): ChunkCodec {
  if (typeof options !== 'object' || options === null) throw new TypeError('createChunkCodec: options must be an object');
  if (typeof options.sha256 !== 'function') throw new TypeError('createChunkCodec: options.sha256 must be a function');
  const profile = options.profile;
  if (profile !== 'positional' && profile !== 'holographic') {
    throw new EmbrError('INVALID_ARGUMENT', `unknown codec profile '${String(profile)}' (use positional or holographic)`, {
      reason: 'unknown profile',
      profile,
    });
  }
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  const groupBytes = options.groupBytes ?? DEFAULT_GROUP_BYTES;
  const stripeCount = options.stripeCount ?? DEFAULT_STRIPE_COUNT;
  const codec = new Codec(profile, chunkBytes, options.sha256, groupBytes, stripeCount);
  return codec;
}

class Codec implements ChunkCodec {
  readonly profile: CodecProfileName;
  readonly chunkBytes: number;
  readonly dimension: number;
  private readonly sha256: (bytes: Uint8Array) => Uint8Array;
  private readonly groupBytes: number;
  private readonly stripeCount: number;
  /** Holographic cores by `${groupBytes}/${stripeCount}`: decode honours a payload's own parameters. */
  private readonly cores = new Map<string, HolographicCore>();
  private readonly differingOffsets: Uint32Array;
  private readonly decodedScratch: Uint8Array;
  private payloadScratch: Uint8Array;

  constructor(profile: CodecProfileName, chunkBytes: number, sha256: (bytes: Uint8Array) => Uint8Array, groupBytes: number, stripeCount: number) {
    this.profile = profile;
    this.chunkBytes = chunkBytes;
    this.sha256 = sha256;
    this.groupBytes = groupBytes;
    this.stripeCount = stripeCount;
    if (profile === 'positional') {
      this.dimension = chunkBytes * POSITIONAL_BLOCK_DIMENSIONS;
      if (this.dimension > MAX_DIMENSION) throw new RangeError(`chunkBytes ${chunkBytes} too large for the positional profile`);
    } else {
      const core = this.coreFor(groupBytes, stripeCount); // validates groupBytes and stripeCount
      this.dimension = core.dimensionFor(chunkBytes);
      if (this.dimension > MAX_DIMENSION) throw new RangeError(`chunkBytes ${chunkBytes} too large for ${groupBytes}-byte groups`);
    }
    this.differingOffsets = new Uint32Array(chunkBytes);
    this.decodedScratch = new Uint8Array(chunkBytes);
    this.payloadScratch = new Uint8Array(0);
  }

  encode(chunk: Uint8Array): EncodedChunk {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('encode: chunk must be a Uint8Array');
    if (chunk.length > this.chunkBytes) throw new RangeError(`encode: chunk of ${chunk.length} bytes exceeds chunkBytes ${this.chunkBytes}`);
    const hash = this.hash(chunk);
    if (this.profile === 'positional') {
      const payload = new Uint8Array(positionalPayloadBytes(chunk.length));
      writePositionalPayload(chunk, payload, 0);
      return { payload, sha256: hash, byteLength: chunk.length, vectorCorrectBytes: chunk.length, correctionBytes: 0, vectorBytes: chunk.length };
    }
    const built = this.buildHolographic(chunk, this.coreFor(this.groupBytes, this.stripeCount));
    return { ...built, payload: built.payload.slice(), sha256: hash, byteLength: chunk.length };
  }

  decode(payload: Uint8Array, sha256: Uint8Array): Uint8Array {
    if (!(payload instanceof Uint8Array)) throw new TypeError('decode: payload must be a Uint8Array');
    if (!(sha256 instanceof Uint8Array) || sha256.length !== SHA256_BYTES) throw new TypeError('decode: sha256 must be a 32-byte Uint8Array');
    const header = readHeader(payload, this.chunkBytes);
    let bytes: Uint8Array;
    let holographic: { core: HolographicCore; correctionStart: number; vectorDecoded: Uint8Array } | undefined;
    if (header.profileId === PROFILE_ID.positional) {
      bytes = this.positionalBytes(payload, header.byteLength, header.correctionKind);
    } else if (header.profileId === PROFILE_ID.holographic) {
      const reader = new PayloadReader(payload, header.bodyOffset);
      const core = this.readHolographicParameters(reader);
      bytes = new Uint8Array(header.byteLength);
      core.decodeVector(reader, bytes);
      const vectorDecoded = this.decodedScratch.subarray(0, header.byteLength);
      vectorDecoded.set(bytes);
      holographic = { core, correctionStart: reader.offset, vectorDecoded };
      applyCorrection(reader, header.correctionKind, bytes);
    } else {
      return corrupt('unknown profile id', { profileId: header.profileId });
    }
    this.checkHash(bytes, sha256);
    if (holographic !== undefined) this.checkCanonicalHolographic(payload, bytes, holographic);
    return bytes;
  }

  decodeInto(payload: Uint8Array, sha256: Uint8Array, target: Uint8Array): void {
    if (!(target instanceof Uint8Array)) throw new TypeError('decodeInto: target must be a Uint8Array');
    if (!(payload instanceof Uint8Array)) throw new TypeError('decodeInto: payload must be a Uint8Array');
    if (!(sha256 instanceof Uint8Array) || sha256.length !== SHA256_BYTES) throw new TypeError('decodeInto: sha256 must be a 32-byte Uint8Array');
    const header = readHeader(payload, this.chunkBytes);
    if (header.byteLength !== target.length) {
      corrupt('chunk length differs from the length expected', { byteLength: header.byteLength, expectedByteLength: target.length });
    }
    if (header.profileId !== PROFILE_ID.positional) {
      target.set(this.decode(payload, sha256));
      return;
    }
    // Positional: the bytes are the payload body. Hash the view in place, copy once it matched.
    this.checkPositional(payload, header.byteLength, header.correctionKind);
    const bytes = payload.subarray(COMMON_HEADER_BYTES);
    this.checkHash(bytes, sha256);
    target.set(bytes);
  }

  decodeIntoUnverified(payload: Uint8Array, target: Uint8Array): void {
    if (!(target instanceof Uint8Array)) throw new TypeError('decodeIntoUnverified: target must be a Uint8Array');
    if (!(payload instanceof Uint8Array)) throw new TypeError('decodeIntoUnverified: payload must be a Uint8Array');
    const header = readHeader(payload, this.chunkBytes);
    if (header.byteLength !== target.length) {
      corrupt('chunk length differs from the length expected', { byteLength: header.byteLength, expectedByteLength: target.length });
    }
    if (header.profileId !== PROFILE_ID.positional) return corrupt('decodeIntoUnverified: only positional payloads decode unverified', { profileId: header.profileId });
    this.checkPositional(payload, header.byteLength, header.correctionKind);
    target.set(payload.subarray(COMMON_HEADER_BYTES));
  }

  /** CORRUPT unless SHA-256(bytes) equals `sha256`. */
  private checkHash(bytes: Uint8Array, sha256: Uint8Array): void {
    const actual = this.hash(bytes);
    for (let index = 0; index < SHA256_BYTES; index += 1) {
      if (actual[index] !== sha256[index]) {
        corrupt('SHA-256 of the decoded bytes differs', { expectedSha256: toHex(sha256), actualSha256: toHex(actual), byteLength: bytes.length });
      }
    }
  }

  vectorOf(payload: Uint8Array): SparseVector {
    if (!(payload instanceof Uint8Array)) throw new TypeError('vectorOf: payload must be a Uint8Array');
    const header = readHeader(payload, this.chunkBytes);
    if (header.profileId === PROFILE_ID.positional) {
      this.positionalBytes(payload, header.byteLength, header.correctionKind);
      return positionalVector(payload.subarray(COMMON_HEADER_BYTES), this.chunkBytes);
    }
    if (header.profileId !== PROFILE_ID.holographic) return corrupt('unknown profile id', { profileId: header.profileId });
    const reader = new PayloadReader(payload, header.bodyOffset);
    const core = this.readHolographicParameters(reader);
    const { positive, negative } = core.vectorIndices(reader, header.byteLength);
    // The correction is not needed for the vector, but a malformed one still makes the payload bad.
    applyCorrection(reader, header.correctionKind, new Uint8Array(header.byteLength));
    return new SparseVector(core.dimensionFor(this.chunkBytes), positive, negative);
  }

  /**
   * The holographic decoder tolerates noise by design, so right bytes do not prove an intact
   * payload: check that the stored vector is the vector of the bytes and the stored correction
   * the one the encoder would choose, byte for byte.
   */
  private checkCanonicalHolographic(
    payload: Uint8Array,
    bytes: Uint8Array,
    parsed: { core: HolographicCore; correctionStart: number; vectorDecoded: Uint8Array },
  ): void {
    if (!parsed.core.matchesVectorOf(bytes)) corrupt('stored vector is not the vector of the decoded bytes');
    const plan = planCorrection(parsed.vectorDecoded, bytes, this.differingOffsets);
    const storedCorrectionBytes = payload.length - parsed.correctionStart;
    if (plan.kind !== payload[6] || plan.serializedBytes !== storedCorrectionBytes) {
      corrupt('stored correction is not the canonical one', { correctionKind: payload[6], canonicalKind: plan.kind });
    }
    if (this.payloadScratch.length < plan.serializedBytes) this.payloadScratch = new Uint8Array(plan.serializedBytes);
    writeCorrection(this.payloadScratch, 0, plan, parsed.vectorDecoded, bytes, this.differingOffsets);
    for (let index = 0; index < storedCorrectionBytes; index += 1) {
      if (this.payloadScratch[index] !== payload[parsed.correctionStart + index]) {
        corrupt('stored correction is not the canonical one', { offset: parsed.correctionStart + index });
      }
    }
  }

  private hash(bytes: Uint8Array): Uint8Array {
    const hash = this.sha256(bytes);
    if (!(hash instanceof Uint8Array) || hash.length !== SHA256_BYTES) throw new TypeError('the injected sha256 must return 32 bytes');
    return hash;
  }

  /** The chunk bytes of a positional payload, after checking it is exactly header + one byte per block. */
  private positionalBytes(payload: Uint8Array, byteLength: number, correctionKind: number): Uint8Array {
    this.checkPositional(payload, byteLength, correctionKind);
    return payload.slice(COMMON_HEADER_BYTES);
  }

  /** CORRUPT unless the payload is exactly header + one byte per block, without a correction. */
  private checkPositional(payload: Uint8Array, byteLength: number, correctionKind: number): void {
    // The positional vector always decodes exactly, so the encoder never writes a correction.
    if (correctionKind !== CORRECTION_KIND.none) corrupt('positional payload with a correction', { correctionKind });
    if (payload.length !== COMMON_HEADER_BYTES + byteLength) {
      corrupt('positional payload length does not match its chunk length', { payloadBytes: payload.length, byteLength });
    }
  }

  private readHolographicParameters(reader: PayloadReader): HolographicCore {
    const groupBytes = reader.byte();
    const stripeCount = reader.byte();
    const basisVersion = reader.byte();
    if (basisVersion !== HOLOGRAPHIC_BASIS_VERSION) corrupt('unknown holographic basis version', { basisVersion });
    if (groupBytes < 1 || groupBytes > MAX_GROUP_BYTES || stripeCount < 1 || stripeCount > MAX_STRIPE_COUNT) {
      corrupt('holographic parameters out of range', { groupBytes, stripeCount });
    }
    const core = this.coreFor(groupBytes, stripeCount);
    if (core.dimensionFor(this.chunkBytes) > MAX_DIMENSION) corrupt('holographic parameters too large for the chunk size', { groupBytes, stripeCount });
    return core;
  }

  private coreFor(groupBytes: number, stripeCount: number): HolographicCore {
    const key = `${groupBytes}/${stripeCount}`;
    let core = this.cores.get(key);
    if (core === undefined) {
      // Bounded: damaged payloads name arbitrary (G, K) pairs, and each basis is ~100 KiB.
      if (this.cores.size >= MAX_CACHED_CORES) {
        for (const cachedKey of this.cores.keys()) {
          if (cachedKey !== `${this.groupBytes}/${this.stripeCount}`) this.cores.delete(cachedKey);
        }
      }
      core = new HolographicCore(createHolographicBasis(this.sha256, groupBytes, stripeCount));
      this.cores.set(key, core);
    }
    return core;
  }

  /** Builds a holographic payload in the scratch buffer; the returned payload is a view of it. */
  private buildHolographic(chunk: Uint8Array, core: HolographicCore): Omit<EncodedChunk, 'sha256' | 'byteLength'> {
    const byteLength = chunk.length;
    const parameterEnd = COMMON_HEADER_BYTES + HOLOGRAPHIC_PARAMETER_BYTES;
    const capacity = parameterEnd + core.maxVectorBytes(byteLength) + byteLength;
    if (this.payloadScratch.length < capacity) this.payloadScratch = new Uint8Array(capacity);
    const target = this.payloadScratch;
    const decoded = this.decodedScratch.subarray(0, byteLength);
    target[COMMON_HEADER_BYTES] = core.basis.groupBytes;
    target[COMMON_HEADER_BYTES + 1] = core.basis.stripeCount;
    target[COMMON_HEADER_BYTES + 2] = HOLOGRAPHIC_BASIS_VERSION;
    const vectorEnd = core.encodeVector(chunk, target, parameterEnd, decoded);
    const plan = planCorrection(decoded, chunk, this.differingOffsets);
    writeHeader(target, PROFILE_ID.holographic, byteLength, plan.kind);
    const end = writeCorrection(target, vectorEnd, plan, decoded, chunk, this.differingOffsets);
    return {
      payload: target.subarray(0, end),
      vectorCorrectBytes: byteLength - plan.wrongByteCount,
      correctionBytes: plan.serializedBytes,
      vectorBytes: vectorEnd - parameterEnd,
    };
  }
}
