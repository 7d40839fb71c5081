/**
 * Canonical unsigned LEB128 varints for uint32 values, used by the vector and bundle
 * serializations. Canonical means one encoding per value: the reader refuses overlong forms
 * (a trailing 0x00 group) and values of 2^32 or more, so decode(encode(x)) and
 * encode(decode(bytes)) are both identities and a changed byte never decodes to the same value.
 *
 * @example
 * ```ts
 * const out = new Uint8Array(5);
 * writeVarint(out, 0, 300);           // returns 2: bytes ac 02
 * new VarintReader(out, 'demo').readVarint(); // 300
 * ```
 */
import { EmbrError } from '../errors.js';

/** Largest encoded length of a uint32. */
export const MAX_VARINT_BYTES = 5;

/**
 * Bytes needed to encode `value` (a uint32).
 *
 * @example
 * ```ts
 * varintByteLength(127); // 1
 * varintByteLength(128); // 2
 * ```
 */
export function varintByteLength(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  return 5;
}

/**
 * Writes `value` (an integer in [0, 2^32)) at `offset`; returns the offset after it.
 *
 * @example
 * ```ts
 * writeVarint(new Uint8Array(5), 0, 1); // 1
 * ```
 */
export function writeVarint(out: Uint8Array, offset: number, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`varint value must be a uint32, got ${value}`);
  let remaining = value;
  while (remaining >= 0x80) {
    out[offset++] = (remaining & 0x7f) | 0x80;
    remaining = Math.floor(remaining / 128);
  }
  out[offset++] = remaining;
  return offset;
}

/**
 * Maps an int32 to a uint32 so small magnitudes stay small: 0,-1,1,-2,... -> 0,1,2,3,...
 *
 * @example
 * ```ts
 * zigzagEncode(-1); // 1
 * zigzagDecode(1);  // -1
 * ```
 */
export function zigzagEncode(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

/**
 * The inverse of {@link zigzagEncode}.
 *
 * @example
 * ```ts
 * zigzagDecode(4); // 2
 * ```
 */
export function zigzagDecode(encoded: number): number {
  return (encoded >>> 1) ^ -(encoded & 1);
}

/**
 * Reads varints and bytes from a buffer; every malformed input (truncated, overlong, too large)
 * throws EmbrError('CORRUPT') naming `what` and the byte offset.
 *
 * @example
 * ```ts
 * const reader = new VarintReader(Uint8Array.of(1, 0x96, 0x01), 'vector');
 * reader.readByte();   // 1
 * reader.readVarint(); // 150
 * ```
 */
export class VarintReader {
  offset: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
    offset = 0,
  ) {
    this.offset = offset;
  }

  /** Throws EmbrError('CORRUPT') about this input. */
  corrupt(reason: string): never {
    throw new EmbrError('CORRUPT', `${this.what}: ${reason} at byte ${this.offset}`, { what: this.what, reason, offset: this.offset });
  }

  readByte(): number {
    if (this.offset >= this.bytes.length) this.corrupt('truncated');
    return this.bytes[this.offset++];
  }

  readVarint(): number {
    const bytes = this.bytes;
    let value = 0;
    let scale = 1;
    for (let group = 0; group < MAX_VARINT_BYTES; group += 1) {
      if (this.offset >= bytes.length) this.corrupt('truncated varint');
      const byte = bytes[this.offset++];
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && group > 0) this.corrupt('overlong varint');
        if (value > 0xffff_ffff) this.corrupt('varint above 2^32 - 1');
        return value;
      }
      scale *= 128;
    }
    return this.corrupt('varint longer than 5 bytes');
  }

  /** Throws CORRUPT unless every byte was consumed (trailing garbage is damage, not slack). */
  expectEnd(): void {
    if (this.offset !== this.bytes.length) this.corrupt(`${this.bytes.length - this.offset} trailing bytes`);
  }
}
