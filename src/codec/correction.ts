/**
 * Corrections: what turns the bytes a vector decodes to into the exact chunk. Four kinds, and the
 * encoder stores whichever serializes smallest (ties go to the lower kind id):
 *
 * - `none` (0): the vector decoded every byte right; nothing is stored.
 * - `bitFlips` (1): varint count, then for each flipped bit (bit index = byte * 8 + bit, bit 0 the
 *   least significant) the varint gap from the previous flipped bit + 1 (the first: its index).
 *   Pays when wrong bytes differ in one or two bits.
 * - `blockReplace` (2): varint run count, then per run: varint gap from the previous run's end
 *   (the first: its offset), varint length - 1, the replacement bytes. Runs closer than
 *   {@link MERGE_GAP_BYTES} + 1 bytes are merged, since a split costs two varints.
 * - `verbatim` (3): all `byteLength` bytes; the decoded bytes are ignored.
 *
 * A correction always runs to the end of the payload: its reader checks it consumed it exactly.
 *
 * @example
 * ```ts
 * const plan = planCorrection(decoded, actual, scratch);
 * const end = writeCorrection(payload, offset, plan, decoded, actual, scratch);
 * ```
 */
import { CORRECTION_KIND, type CorrectionKindId, PayloadReader, corrupt, varintBytes, writeVarint } from './format.js';

/** Two runs separated by at most this many equal bytes are stored as one run. */
export const MERGE_GAP_BYTES = 2;

/** The chosen correction and its size. */
export interface CorrectionPlan {
  kind: CorrectionKindId;
  /** Serialized size of the chosen correction in bytes. */
  serializedBytes: number;
  /** Number of byte positions where the decoded bytes differ from the chunk. */
  wrongByteCount: number;
}

/**
 * Finds where `decoded` differs from `actual` (same length) and picks the smallest correction.
 * `scratch` must hold at least `actual.length` entries; it receives the differing offsets.
 *
 * @example
 * ```ts
 * planCorrection(Uint8Array.of(1, 2), Uint8Array.of(1, 3), new Uint32Array(2)).kind; // 1 (bitFlips)
 * ```
 */
export function planCorrection(decoded: Uint8Array, actual: Uint8Array, scratch: Uint32Array): CorrectionPlan {
  const byteLength = actual.length;
  let wrongByteCount = 0;
  for (let offset = 0; offset < byteLength; offset += 1) {
    if (decoded[offset] !== actual[offset]) {
      scratch[wrongByteCount] = offset;
      wrongByteCount += 1;
    }
  }
  if (wrongByteCount === 0) return { kind: CORRECTION_KIND.none, serializedBytes: 0, wrongByteCount };

  let flipCount = 0;
  let flipGapBytes = 0;
  let previousBit = -1;
  let runCount = 0;
  let runBytes = 0;
  let runStart = -1;
  let runEnd = -1; // exclusive
  let previousRunEnd = 0;
  for (let index = 0; index < wrongByteCount; index += 1) {
    const offset = scratch[index];
    let difference = decoded[offset] ^ actual[offset];
    for (let bit = 0; difference !== 0; bit += 1, difference >>>= 1) {
      if ((difference & 1) === 0) continue;
      const bitIndex = offset * 8 + bit;
      flipGapBytes += varintBytes(bitIndex - previousBit - 1);
      previousBit = bitIndex;
      flipCount += 1;
    }
    if (runStart >= 0 && offset - runEnd <= MERGE_GAP_BYTES) {
      runEnd = offset + 1;
    } else {
      if (runStart >= 0) {
        runBytes += varintBytes(runStart - previousRunEnd) + varintBytes(runEnd - runStart - 1) + (runEnd - runStart);
        previousRunEnd = runEnd;
      }
      runCount += 1;
      runStart = offset;
      runEnd = offset + 1;
    }
  }
  runBytes += varintBytes(runStart - previousRunEnd) + varintBytes(runEnd - runStart - 1) + (runEnd - runStart);

  const flipTotal = varintBytes(flipCount) + flipGapBytes;
  const runTotal = varintBytes(runCount) + runBytes;
  let kind: CorrectionKindId = CORRECTION_KIND.bitFlips;
  let serializedBytes = flipTotal;
  if (runTotal < serializedBytes) {
    kind = CORRECTION_KIND.blockReplace;
    serializedBytes = runTotal;
  }
  if (byteLength < serializedBytes) {
    kind = CORRECTION_KIND.verbatim;
    serializedBytes = byteLength;
  }
  return { kind, serializedBytes, wrongByteCount };
}

/**
 * Serializes the planned correction at `offset` of `target` and returns the offset after it.
 * `scratch` must still hold the differing offsets that {@link planCorrection} left there.
 *
 * @example
 * ```ts
 * const end = writeCorrection(payload, vectorEnd, plan, decoded, chunk, scratch);
 * ```
 */
export function writeCorrection(
  target: Uint8Array,
  offset: number,
  plan: CorrectionPlan,
  decoded: Uint8Array,
  actual: Uint8Array,
  scratch: Uint32Array,
): number {
  const start = offset;
  switch (plan.kind) {
    case CORRECTION_KIND.none:
      break;
    case CORRECTION_KIND.verbatim:
      target.set(actual, offset);
      offset += actual.length;
      break;
    case CORRECTION_KIND.bitFlips: {
      let flipCount = 0;
      for (let index = 0; index < plan.wrongByteCount; index += 1) {
        const position = scratch[index];
        flipCount += popcount8(decoded[position] ^ actual[position]);
      }
      offset = writeVarint(target, offset, flipCount);
      let previousBit = -1;
      for (let index = 0; index < plan.wrongByteCount; index += 1) {
        const position = scratch[index];
        let difference = decoded[position] ^ actual[position];
        for (let bit = 0; difference !== 0; bit += 1, difference >>>= 1) {
          if ((difference & 1) === 0) continue;
          const bitIndex = position * 8 + bit;
          offset = writeVarint(target, offset, bitIndex - previousBit - 1);
          previousBit = bitIndex;
        }
      }
      break;
    }
    case CORRECTION_KIND.blockReplace: {
      // Runs are re-derived with the same merge rule as planCorrection, so sizes agree exactly.
      let runCount = 0;
      let runEnd = -1;
      for (let index = 0; index < plan.wrongByteCount; index += 1) {
        const position = scratch[index];
        if (runCount > 0 && position - runEnd <= MERGE_GAP_BYTES) runEnd = position + 1;
        else {
          runCount += 1;
          runEnd = position + 1;
        }
      }
      offset = writeVarint(target, offset, runCount);
      let previousRunEnd = 0;
      let index = 0;
      while (index < plan.wrongByteCount) {
        const runStart = scratch[index];
        let end = runStart + 1;
        index += 1;
        while (index < plan.wrongByteCount && scratch[index] - end <= MERGE_GAP_BYTES) {
          end = scratch[index] + 1;
          index += 1;
        }
        offset = writeVarint(target, offset, runStart - previousRunEnd);
        offset = writeVarint(target, offset, end - runStart - 1);
        target.set(actual.subarray(runStart, end), offset);
        offset += end - runStart;
        previousRunEnd = end;
      }
      break;
    }
    default:
      throw new Error(`invariant failed: unknown correction kind ${String(plan.kind)}`);
  }
  if (offset - start !== plan.serializedBytes) {
    throw new Error(`invariant failed: correction wrote ${offset - start} bytes, planned ${plan.serializedBytes}`);
  }
  return offset;
}

/**
 * Reads a correction of `kind` from `reader` (to the payload's end) and applies it to `bytes` in
 * place. Any out-of-range offset, overlap, truncation or trailing byte throws CORRUPT.
 *
 * @example
 * ```ts
 * applyCorrection(new PayloadReader(payload, vectorEnd), header.correctionKind, decoded);
 * ```
 */
export function applyCorrection(reader: PayloadReader, kind: CorrectionKindId, bytes: Uint8Array): void {
  const byteLength = bytes.length;
  switch (kind) {
    case CORRECTION_KIND.none:
      break;
    case CORRECTION_KIND.verbatim:
      bytes.set(reader.bytes(byteLength));
      break;
    case CORRECTION_KIND.bitFlips: {
      const flipCount = reader.varint();
      const bitCount = byteLength * 8;
      if (flipCount === 0 || flipCount > bitCount) corrupt('bit flip count out of range', { flipCount, bitCount });
      let bitIndex = -1;
      for (let flip = 0; flip < flipCount; flip += 1) {
        bitIndex += reader.varint() + 1;
        if (bitIndex >= bitCount) corrupt('bit flip beyond the chunk', { bitIndex, bitCount });
        bytes[bitIndex >>> 3] ^= 1 << (bitIndex & 7);
      }
      break;
    }
    case CORRECTION_KIND.blockReplace: {
      const runCount = reader.varint();
      if (runCount === 0 || runCount > byteLength) corrupt('run count out of range', { runCount, byteLength });
      let position = 0;
      for (let run = 0; run < runCount; run += 1) {
        const start = position + reader.varint();
        const runBytes = reader.varint() + 1;
        if (start + runBytes > byteLength) corrupt('replaced run beyond the chunk', { start, runBytes, byteLength });
        bytes.set(reader.bytes(runBytes), start);
        position = start + runBytes;
      }
      break;
    }
    default:
      corrupt('unknown correction kind', { correctionKind: kind });
  }
  reader.expectEnd();
}

function popcount8(value: number): number {
  let count = 0;
  for (let rest = value; rest !== 0; rest &= rest - 1) count += 1;
  return count;
}
