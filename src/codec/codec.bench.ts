/**
 * Codec benchmark (issue 2, part 5): both profiles on a mixed corpus the benchmark builds itself
 * (32 MiB at size 'real', 1 MiB at 'small'): text (/usr/share/doc, gunzipped where needed),
 * C headers (/usr/include), seeded random bytes, zeros and repetitive JSON records. Where the
 * system folders are missing, generated text stands in.
 *
 * One line per profile:
 * `{"bench":"codec","profile":P,"inputBytes":N,"storedBytes":N,"encodeMBps":X,"decodeMBps":X,"sha256MBps":X,"vectorByteFraction":X,...}`
 * - `storedBytes`: each payload compressed alone with zstd level 3, or kept raw when that is
 *   smaller, summed. `payloadBytes`: the raw payloads summed.
 * - `perChunkZstdBytes`: zstd-3 of each raw chunk alone, summed (the floor's yardstick);
 *   `wholeZstdBytes`: zstd-3 of the whole corpus as one buffer; `packedZstdBytes` /
 *   `packed1MiBZstdBytes`: payloads concatenated into packs of at least 64 KiB / 1 MiB, each pack
 *   compressed with zstd-3.
 * - `encodeMBps`/`decodeMBps`: medians over several runs of encode (SHA-256 included) and decode
 *   (full SHA-256 check included) of every chunk; `sha256MBps` is node:crypto SHA-256 of the same
 *   chunks in the same run.
 * Extra lines: holographic vectorByteFraction on the text+code chunks, at several group sizes
 * (`codec-holographic-groups`), and zstd-3 of each corpus region cut into compression units of
 * 4 KiB, 16 KiB, 64 KiB and 1 MiB against the whole region (`codec-compression-unit`).
 *
 * @example
 * ```sh
 * npx tsc -p tsconfig.json && npm run bench -- --json codec
 * ```
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { compress } from 'zstd-napi';
import { medianSeconds, megabytesPerSecond, sha256MegabytesPerSecond, type BenchContext } from '../benchmark.js';
import type { ChunkCodec, CodecProfileName, EncodedChunk } from './api.js';
import { createChunkCodec } from './codec.js';
import { DEFAULT_GROUP_BYTES } from './holographic.js';

const CHUNK_BYTES = 4096;
const PACK_BYTES = 64 * 1024;
const MIB = 1024 * 1024;

export interface Region {
  kind: 'text' | 'code' | 'random' | 'zeros' | 'records';
  bytes: Uint8Array;
}

const sha256 = (bytes: Uint8Array): Uint8Array => createHash('sha256').update(bytes).digest();
const zstd3Bytes = (bytes: Uint8Array): number => compress(bytes, { compressionLevel: 3 }).length;

/**
 * Runs the benchmark at `context.size`.
 *
 * @example
 * ```ts
 * await run({ size: 'small', emit: console.log, tmpDir: '/tmp' });
 * ```
 */
export async function run(context: BenchContext): Promise<void> {
  const real = context.size === 'real';
  const regions = buildCorpus(real ? 32 * MIB : 1 * MIB);
  const chunks: Uint8Array[] = [];
  const textOrCode: boolean[] = [];
  for (const region of regions) {
    for (let offset = 0; offset < region.bytes.length; offset += CHUNK_BYTES) {
      chunks.push(region.bytes.subarray(offset, offset + CHUNK_BYTES));
      textOrCode.push(region.kind === 'text' || region.kind === 'code');
    }
  }
  const inputBytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  let perChunkZstdBytes = 0;
  for (const chunk of chunks) perChunkZstdBytes += zstd3Bytes(chunk);
  const whole = new Uint8Array(inputBytes);
  let filled = 0;
  for (const chunk of chunks) {
    whole.set(chunk, filled);
    filled += chunk.length;
  }
  const wholeZstdBytes = zstd3Bytes(whole);
  const composition = Object.fromEntries(regions.map((region) => [region.kind, region.bytes.length]));

  for (const profile of ['positional', 'holographic'] as CodecProfileName[]) {
    const codec = createChunkCodec({ profile, sha256, chunkBytes: CHUNK_BYTES });
    const runs = real ? (profile === 'holographic' ? 3 : 5) : 1;
    const encoded: EncodedChunk[] = chunks.map((chunk) => codec.encode(chunk));
    const encodeSeconds = await medianSeconds(runs, () => {
      for (const chunk of chunks) codec.encode(chunk);
    });
    const decodeSeconds = await medianSeconds(runs, () => {
      for (const chunk of encoded) codec.decode(chunk.payload, chunk.sha256);
    });
    verifyAll(codec, chunks, encoded);
    const sha256MBps = await sha256MegabytesPerSecond(chunks, real ? 5 : 1);
    let vectorCorrectBytes = 0;
    let textCodeBytes = 0;
    let textCodeCorrectBytes = 0;
    let payloadBytes = 0;
    let storedBytes = 0;
    let correctionBytes = 0;
    for (let index = 0; index < encoded.length; index += 1) {
      const chunk = encoded[index];
      vectorCorrectBytes += chunk.vectorCorrectBytes;
      payloadBytes += chunk.payload.length;
      correctionBytes += chunk.correctionBytes;
      storedBytes += Math.min(chunk.payload.length, zstd3Bytes(chunk.payload));
      if (textOrCode[index]) {
        textCodeBytes += chunk.byteLength;
        textCodeCorrectBytes += chunk.vectorCorrectBytes;
      }
    }
    const encodeMBps = megabytesPerSecond(inputBytes, encodeSeconds);
    const decodeMBps = megabytesPerSecond(inputBytes, decodeSeconds);
    context.emit({
      bench: 'codec',
      profile,
      inputBytes,
      storedBytes,
      encodeMBps,
      decodeMBps,
      sha256MBps,
      vectorByteFraction: round4(vectorCorrectBytes / inputBytes),
      chunkBytes: CHUNK_BYTES,
      chunkCount: chunks.length,
      payloadBytes,
      correctionBytes,
      perChunkZstdBytes,
      wholeZstdBytes,
      packedZstdBytes: packedZstdBytes(encoded, PACK_BYTES),
      packed1MiBZstdBytes: packedZstdBytes(encoded, MIB),
      storedPerInput: round4(storedBytes / inputBytes),
      storedPerChunkZstd: round4(storedBytes / perChunkZstdBytes),
      encodePerSha256: round4(encodeMBps / sha256MBps),
      decodePerSha256: round4(decodeMBps / sha256MBps),
      runs,
      composition,
    });
    if (profile === 'holographic') {
      context.emit({
        bench: 'codec',
        profile,
        subset: 'text+code',
        groupBytes: DEFAULT_GROUP_BYTES,
        stripeCount: 32,
        inputBytes: textCodeBytes,
        vectorByteFraction: round4(textCodeCorrectBytes / textCodeBytes),
      });
    }
  }

  // Why the compression unit matters: zstd-3 of each region cut into units of several sizes.
  for (const region of regions) {
    const record: Record<string, unknown> = { bench: 'codec-compression-unit', region: region.kind, inputBytes: region.bytes.length };
    for (const unitBytes of [CHUNK_BYTES, 16 * 1024, PACK_BYTES, MIB]) {
      let compressed = 0;
      for (let offset = 0; offset < region.bytes.length; offset += unitBytes) compressed += zstd3Bytes(region.bytes.subarray(offset, offset + unitBytes));
      record[`zstd3Unit${unitBytes / 1024}KiBBytes`] = compressed;
    }
    record.zstd3WholeBytes = zstd3Bytes(region.bytes);
    context.emit(record);
  }

  // Holographic accuracy and size against the group size, on (up to 4 MiB of) the text+code chunks.
  const sweepChunks = chunks.filter((_, index) => textOrCode[index]).slice(0, real ? 1024 : 64);
  const sweepBytes = sweepChunks.reduce((sum, chunk) => sum + chunk.length, 0);
  for (const groupBytes of [4, 8, 12, 16]) {
    const codec = createChunkCodec({ profile: 'holographic', sha256, chunkBytes: CHUNK_BYTES, groupBytes, stripeCount: 32 });
    let correct = 0;
    let stored = 0;
    for (const chunk of sweepChunks) {
      const encoded = codec.encode(chunk);
      correct += encoded.vectorCorrectBytes;
      stored += Math.min(encoded.payload.length, zstd3Bytes(encoded.payload));
    }
    context.emit({
      bench: 'codec-holographic-groups',
      subset: 'text+code',
      groupBytes,
      stripeCount: 32,
      inputBytes: sweepBytes,
      storedBytes: stored,
      vectorByteFraction: round4(correct / sweepBytes),
    });
  }
}

/** Every chunk decodes to its exact bytes (all bytes compared, not sampled). */
function verifyAll(codec: ChunkCodec, chunks: Uint8Array[], encoded: EncodedChunk[]): void {
  for (let index = 0; index < chunks.length; index += 1) {
    const decoded = codec.decode(encoded[index].payload, encoded[index].sha256);
    const chunk = chunks[index];
    if (decoded.length !== chunk.length) throw new Error(`codec bench: chunk ${index} decoded to ${decoded.length} bytes`);
    for (let offset = 0; offset < chunk.length; offset += 1) {
      if (decoded[offset] !== chunk[offset]) throw new Error(`codec bench: chunk ${index} differs at byte ${offset}`);
    }
  }
}

/** Payloads concatenated into packs of at least `packBytes`, each pack compressed with zstd-3. */
function packedZstdBytes(encoded: EncodedChunk[], packBytes: number): number {
  let total = 0;
  let pack: Uint8Array[] = [];
  let filledBytes = 0;
  const flush = (): void => {
    if (filledBytes === 0) return;
    const buffer = new Uint8Array(filledBytes);
    let offset = 0;
    for (const payload of pack) {
      buffer.set(payload, offset);
      offset += payload.length;
    }
    total += Math.min(buffer.length, zstd3Bytes(buffer));
    pack = [];
    filledBytes = 0;
  };
  for (const chunk of encoded) {
    pack.push(chunk.payload);
    filledBytes += chunk.payload.length;
    if (filledBytes >= packBytes) flush();
  }
  flush();
  return total;
}

/** The mixed corpus, region by region (exported so a one-off script can compare other tools on it). */
export function buildCorpus(totalBytes: number): Region[] {
  const textBytes = Math.floor((totalBytes * 5) / 16);
  const codeBytes = Math.floor((totalBytes * 5) / 16);
  const randomBytes = Math.floor(totalBytes / 8);
  const zeroBytes = Math.floor(totalBytes / 8);
  const recordBytes = totalBytes - textBytes - codeBytes - randomBytes - zeroBytes;
  return [
    { kind: 'text', bytes: fillFromFiles('/usr/share/doc', /\.(txt|md|rst|gz)$|^(README|NEWS|copyright)/i, textBytes, 1) },
    { kind: 'code', bytes: fillFromFiles('/usr/include', /\.(h|hpp)$/, codeBytes, 2) },
    { kind: 'random', bytes: seededBytes(randomBytes, 0x9e3779b9) },
    { kind: 'zeros', bytes: new Uint8Array(zeroBytes) },
    { kind: 'records', bytes: records(recordBytes) },
  ];
}

/** Files under `root` matching `pattern`, in sorted path order, concatenated up to `byteCount`. */
function fillFromFiles(root: string, pattern: RegExp, byteCount: number, seed: number): Uint8Array {
  const out = new Uint8Array(byteCount);
  let filled = 0;
  const visit = (directory: string): void => {
    let names: string[];
    try {
      names = readdirSync(directory).sort();
    } catch {
      return; // unreadable folder: skip it, the generated fallback fills any shortfall
    }
    for (const name of names) {
      if (filled >= byteCount) return;
      const path = join(directory, name);
      let stats;
      try {
        stats = statSync(path);
      } catch {
        continue;
      }
      if (stats.isDirectory()) visit(path);
      else if (stats.isFile() && pattern.test(name) && stats.size > 0 && stats.size < 8 * MIB) {
        let bytes: Uint8Array = readFileSync(path);
        if (name.endsWith('.gz')) {
          try {
            bytes = gunzipSync(bytes);
          } catch {
            continue;
          }
        }
        const take = Math.min(bytes.length, byteCount - filled);
        out.set(bytes.subarray(0, take), filled);
        filled += take;
      }
    }
  };
  if (existsSync(root)) visit(root);
  if (filled < byteCount) out.set(generatedText(byteCount - filled, seed), filled);
  return out;
}

function generatedText(byteCount: number, seed: number): Uint8Array {
  const words = ['the', 'chunk', 'vector', 'store', 'engram', 'file', 'version', 'of', 'and', 'a', 'int', 'return', 'struct', 'const', 'size_t', '{', '}', ';', '=', 'if'];
  const random = seededBytes(byteCount, seed);
  const out = new Uint8Array(byteCount);
  let filled = 0;
  for (let index = 0; filled < byteCount; index += 1) {
    const word = `${words[random[index % byteCount] % words.length]}${random[(index * 7) % byteCount] % 11 === 0 ? '\n' : ' '}`;
    for (let char = 0; char < word.length && filled < byteCount; char += 1) out[filled++] = word.charCodeAt(char);
  }
  return out;
}

function seededBytes(byteCount: number, seed: number): Uint8Array {
  const out = new Uint8Array(byteCount);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < byteCount; index += 1) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[index] = state >>> 24;
  }
  return out;
}

function records(byteCount: number): Uint8Array {
  const out = new Uint8Array(byteCount);
  let filled = 0;
  for (let id = 0; filled < byteCount; id += 1) {
    const line = `{"id":${id},"user":"user-${id % 977}","balanceCents":${(id * 7919) % 1000003},"status":"${id % 3 === 0 ? 'active' : 'closed'}","created":"2024-${String((id % 12) + 1).padStart(2, '0')}-${String((id % 28) + 1).padStart(2, '0')}"}\n`;
    for (let char = 0; char < line.length && filled < byteCount; char += 1) out[filled++] = line.charCodeAt(char);
  }
  return out;
}

function round4(value: number): number {
  return Math.round(value * 10000) / 10000;
}
