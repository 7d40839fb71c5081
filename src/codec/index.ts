/**
 * The chunk codec: bytes -> hypervector + correction -> bytes, verified by SHA-256. Pure (no
 * `node:*`, no clock, no randomness); see src/codec/README.md and docs/design/codec.md.
 *
 * @example
 * ```ts
 * import { createChunkCodec } from './codec/index.js';
 * const codec = createChunkCodec({ profile: 'positional', sha256 });
 * const { payload, sha256: hash } = codec.encode(chunk);
 * codec.decode(payload, hash); // chunk, or EmbrError CORRUPT
 * ```
 */
export type { ChunkCodec, CodecOptions, CodecProfileName, EncodedChunk } from './api.js';
export { createChunkCodec, DEFAULT_CHUNK_BYTES, positionalPayloadBytes, writePositionalPayload } from './codec.js';
export { PAYLOAD_FORMAT_VERSION, PROFILE_ID, CORRECTION_KIND } from './format.js';
export { HOLOGRAPHIC_BASIS_VERSION, DEFAULT_GROUP_BYTES, DEFAULT_STRIPE_COUNT } from './holographic.js';
export { POSITIONAL_BLOCK_DIMENSIONS } from './positional.js';
