/**
 * Payload format version 1: the byte layout shared by both profiles (docs/design/codec.md).
 *
 * ```
 * offset  size  field
 * 0       1     format version (1)
 * 1       1     profile id (1 = positional, 2 = holographic)
 * 2       4     chunk length in bytes, unsigned little-endian
 * 6       1     correction kind (0 none, 1 bit flips, 2 block replace, 3 verbatim)
 * 7       ...   profile parameters (positional: none; holographic: groupBytes, stripeCount, basis version)
 * ...     ...   serialized vector (layout owned by the profile)
 * ...     ...   correction (runs to the end of the payload)
 * ```
 *
 * Every reader here is strict and bounded: a truncated, over-long or malformed payload throws
 * EmbrError('CORRUPT'), never a RangeError from a typed array and never a partial result.
 *
 * @example
 * ```ts
 * const header = readHeader(payload); // { profileId: 1, byteLength: 4096, correctionKind: 0, bodyOffset: 7 }
 * ```
 */
import { EmbrError } from '../errors.js';

/** The payload format this module writes. Readers refuse any other value. */
export const PAYLOAD_FORMAT_VERSION = 1;

/** Bytes of the header common to every profile (version, profile, length, correction kind). */
export const COMMON_HEADER_BYTES = 7;

/** Profile ids stored in byte 1 of a payload. Stable: never renumber. */
export const PROFILE_ID = { positional: 1, holographic: 2 } as const;

/** Correction kinds stored in byte 6 of a payload. Stable: never renumber. */
export const CORRECTION_KIND = { none: 0, bitFlips: 1, blockReplace: 2, verbatim: 3 } as const;

export type CorrectionKindId = (typeof CORRECTION_KIND)[keyof typeof CORRECTION_KIND];

/** The fields of the common header. */
export interface PayloadHeader {
  profileId: number;
  byteLength: number;
  correctionKind: CorrectionKindId;
  /** Offset of the first byte after the common header. */
  bodyOffset: number;
}

/**
 * Throws the one error every malformed or mismatching payload produces.
 *
 * @example
 * ```ts
 * if (offset > payload.length) corrupt('payload truncated', { offset });
 * ```
 */
export function corrupt(reason: string, data: Record<string, unknown> = {}): never {
  throw new EmbrError('CORRUPT', `chunk payload is corrupt: ${reason}`, { what: 'chunk payload', reason, ...data });
}

/**
 * Writes the common header at the start of `target` and returns its length.
 *
 * @example
 * ```ts
 * const headerBytes = writeHeader(buffer, PROFILE_ID.positional, 4096, CORRECTION_KIND.none); // 7
 * ```
 */
export function writeHeader(target: Uint8Array, profileId: number, byteLength: number, correctionKind: CorrectionKindId): number {
  target[0] = PAYLOAD_FORMAT_VERSION;
  target[1] = profileId;
  target[2] = byteLength & 0xff;
  target[3] = (byteLength >>> 8) & 0xff;
  target[4] = (byteLength >>> 16) & 0xff;
  target[5] = (byteLength >>> 24) & 0xff;
  target[6] = correctionKind;
  return COMMON_HEADER_BYTES;
}

/**
 * Reads and checks the common header; `maxByteLength` is the largest chunk the reader accepts.
 *
 * @example
 * ```ts
 * const { byteLength } = readHeader(payload, 4096);
 * ```
 */
export function readHeader(payload: Uint8Array, maxByteLength: number): PayloadHeader {
  if (payload.length < COMMON_HEADER_BYTES) corrupt('shorter than its header', { payloadBytes: payload.length });
  if (payload[0] !== PAYLOAD_FORMAT_VERSION) corrupt('unknown format version', { formatVersion: payload[0] });
  const byteLength = (payload[2] | (payload[3] << 8) | (payload[4] << 16) | (payload[5] << 24)) >>> 0;
  if (byteLength > maxByteLength) corrupt('chunk length exceeds the chunk size', { byteLength, maxByteLength });
  const correctionKind = payload[6];
  if (correctionKind > CORRECTION_KIND.verbatim) corrupt('unknown correction kind', { correctionKind });
  return { profileId: payload[1], byteLength, correctionKind: correctionKind as CorrectionKindId, bodyOffset: COMMON_HEADER_BYTES };
}

/**
 * Appends `value` (a non-negative integer below 2^32) as unsigned LEB128 at `offset`; returns the
 * offset after it. The caller guarantees room for 5 bytes.
 *
 * @example
 * ```ts
 * writeVarint(buffer, 0, 300); // 2 (bytes 0xac 0x02)
 * ```
 */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  let remaining = value >>> 0;
  while (remaining >= 0x80) {
    target[offset] = (remaining & 0x7f) | 0x80;
    offset += 1;
    remaining >>>= 7;
  }
  target[offset] = remaining;
  return offset + 1;
}

/**
 * Bytes `writeVarint` uses for `value`.
 *
 * @example
 * ```ts
 * varintBytes(127); // 1
 * varintBytes(128); // 2
 * ```
 */
export function varintBytes(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

/**
 * A bounded cursor over a payload. Every read checks the end first and throws CORRUPT past it.
 *
 * @example
 * ```ts
 * const reader = new PayloadReader(payload, 7);
 * const count = reader.varint();
 * ```
 */
export class PayloadReader {
  readonly payload: Uint8Array;
  offset: number;

  constructor(payload: Uint8Array, offset: number) {
    this.payload = payload;
    this.offset = offset;
  }

  get remainingBytes(): number {
    return this.payload.length - this.offset;
  }

  byte(): number {
    if (this.offset >= this.payload.length) corrupt('truncated', { offset: this.offset });
    const value = this.payload[this.offset];
    this.offset += 1;
    return value;
  }

  /** Reads a canonical (shortest-form) LEB128 value below 2^32. */
  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte();
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && shift > 0) corrupt('over-long varint', { offset: this.offset - 1 });
        if (value > 0xffffffff) corrupt('varint out of range', { offset: this.offset - 1 });
        return value;
      }
    }
    return corrupt('varint longer than 5 bytes', { offset: this.offset });
  }

  /** A view of the next `byteCount` bytes (not a copy). */
  bytes(byteCount: number): Uint8Array {
    if (byteCount > this.remainingBytes) corrupt('truncated', { offset: this.offset, wantedBytes: byteCount });
    const view = this.payload.subarray(this.offset, this.offset + byteCount);
    this.offset += byteCount;
    return view;
  }

  /** Throws CORRUPT unless every byte has been read. */
  expectEnd(): void {
    if (this.offset !== this.payload.length) corrupt('trailing bytes', { offset: this.offset, payloadBytes: this.payload.length });
  }
}

/**
 * Lower-case hex of a byte string, for error data.
 *
 * @example
 * ```ts
 * toHex(Uint8Array.of(0, 255)); // '00ff'
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (let index = 0; index < bytes.length; index += 1) hex += bytes[index].toString(16).padStart(2, '0');
  return hex;
}
