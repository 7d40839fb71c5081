/**
 * Deterministic generators of large test contents with the shapes real files have: constant,
 * sequential, random, compressible, text, and imitations of images, video, archives, encrypted
 * data and database pages. Each is a pure function of (seed, byteCount), so a test can regenerate
 * the expected bytes instead of keeping a second copy.
 *
 * @example
 * ```ts
 * const bitmap = imageLikeBytes(3, 10 * 1024 * 1024);
 * ```
 */
import { gzipSync } from 'node:zlib';
import { SeededRandom, seededBytes } from './helpers.js';

/** `byteCount` bytes of `value`. */
export function constantBytes(value: number, byteCount: number): Uint8Array {
  return new Uint8Array(byteCount).fill(value);
}

/** 0, 1, ..., 255, 0, 1, ...: every chunk identical when the chunk size is a multiple of 256. */
export function sequentialBytes(byteCount: number): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  for (let offset = 0; offset < byteCount; offset += 1) bytes[offset] = offset & 0xff;
  return bytes;
}

/** A 32-bit counter, little-endian: sequential but no two 4 KiB chunks alike. */
export function counterBytes(byteCount: number): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  const view = new DataView(bytes.buffer);
  for (let offset = 0; offset + 4 <= byteCount; offset += 4) view.setUint32(offset, offset >>> 2, true);
  return bytes;
}

/** Highly compressible: a few random 64-byte phrases repeated, with a rare mutated byte. */
export function compressibleBytes(seed: number, byteCount: number): Uint8Array {
  const random = new SeededRandom(seed);
  const phrases = Array.from({ length: 8 }, (_, index) => seededBytes(`phrase:${seed}:${index}`, 64));
  const bytes = new Uint8Array(byteCount);
  for (let offset = 0; offset < byteCount; offset += 64) {
    bytes.set(random.pick(phrases).subarray(0, Math.min(64, byteCount - offset)), offset);
    if (random.integer(0, 99) === 0) bytes[offset] ^= 0x5a;
  }
  return bytes;
}

const words = [
  'engram', 'vector', 'chunk', 'commit', 'version', 'snapshot', 'the', 'a', 'of', 'and', 'file', 'store',
  'hyper', 'ternary', 'sparse', 'bundle', 'bind', 'permute', 'correction', 'decode', 'encode', 'verify',
];

const encodedWords = words.map((word) => new TextEncoder().encode(word));

/** English-like ASCII text of random words, sentences and line breaks. */
export function textBytes(seed: number, byteCount: number): Uint8Array {
  const random = new SeededRandom(seed);
  const bytes = new Uint8Array(byteCount);
  let offset = 0;
  let wordsInLine = 0;
  while (offset < byteCount) {
    const word = encodedWords[random.nextUint32() % encodedWords.length];
    const take = Math.min(word.length, byteCount - offset);
    bytes.set(take === word.length ? word : word.subarray(0, take), offset);
    offset += take;
    wordsInLine += 1;
    if (offset < byteCount) {
      const lineBreak = wordsInLine > 12 && (random.nextUint32() & 3) === 0;
      bytes[offset] = lineBreak ? 0x0a : 0x20;
      if (lineBreak) wordsInLine = 0;
      offset += 1;
    }
  }
  return bytes;
}

/** A 24-bit BMP: a 54-byte header, then a smooth gradient with seeded sensor noise. */
export function imageLikeBytes(seed: number, byteCount: number): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  const view = new DataView(bytes.buffer);
  const width = 1920;
  bytes[0] = 0x42;
  bytes[1] = 0x4d;
  view.setUint32(2, byteCount, true);
  view.setUint32(10, 54, true);
  view.setUint32(14, 40, true);
  view.setInt32(18, width, true);
  view.setInt32(22, Math.floor((byteCount - 54) / (width * 3)), true);
  view.setUint16(26, 1, true);
  view.setUint16(28, 24, true);
  const noise = seededBytes(`image-noise:${seed}`, byteCount);
  for (let offset = 54; offset < byteCount; offset += 1) {
    const pixel = Math.floor((offset - 54) / 3);
    const x = pixel % width;
    const y = Math.floor(pixel / width);
    const channel = (offset - 54) % 3;
    bytes[offset] = ((x >> 3) + (y >> 2) * (channel + 1) + (noise[offset] & 0x07)) & 0xff;
  }
  return bytes;
}

/** Video-like: 64 KiB frames, each the previous one with a few hundred bytes changed, and a header per frame. */
export function videoLikeBytes(seed: number, byteCount: number): Uint8Array {
  const random = new SeededRandom(seed);
  const frameBytes = 64 * 1024;
  const frame = seededBytes(`keyframe:${seed}`, frameBytes);
  const bytes = new Uint8Array(byteCount);
  for (let offset = 0, frameIndex = 0; offset < byteCount; offset += frameBytes, frameIndex += 1) {
    for (let change = 0; change < 300; change += 1) frame[random.integer(16, frameBytes - 1)] = random.integer(0, 255);
    const header = new DataView(frame.buffer, frame.byteOffset, 16);
    header.setUint32(0, 0x000001b3, false);
    header.setUint32(4, frameIndex, true);
    bytes.set(frame.subarray(0, Math.min(frameBytes, byteCount - offset)), offset);
  }
  return bytes;
}

/** Archive-like: gzip members of text, each behind a 512-byte tar-style header, cut to size. */
export function archiveLikeBytes(seed: number, byteCount: number): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  const encoder = new TextEncoder();
  let offset = 0;
  for (let member = 0; offset < byteCount; member += 1) {
    const header = new Uint8Array(512);
    header.set(encoder.encode(`member-${seed}-${member}.txt`));
    header.set(encoder.encode('ustar'), 257);
    const body = gzipSync(textBytes(seed * 1000 + member, 256 * 1024), { level: 1 });
    for (const part of [header, body]) {
      const take = Math.min(part.length, byteCount - offset);
      bytes.set(part.subarray(0, take), offset);
      offset += take;
    }
  }
  return bytes;
}

/** Encrypted-like: indistinguishable from random (an AES-CTR keystream), with a small clear header. */
export function encryptedLikeBytes(seed: number, byteCount: number): Uint8Array {
  const bytes = seededBytes(`encrypted:${seed}`, byteCount);
  bytes.set(new TextEncoder().encode('Salted__').subarray(0, Math.min(8, byteCount)));
  return bytes;
}

/** Database-like: 4 KiB pages with a header, a slot array and mostly-empty, partly repeated records. */
export function databaseLikeBytes(seed: number, byteCount: number): Uint8Array {
  const random = new SeededRandom(seed);
  const pageBytes = 4096;
  const bytes = new Uint8Array(byteCount);
  const encoder = new TextEncoder();
  for (let pageStart = 0, pageNumber = 0; pageStart < byteCount; pageStart += pageBytes, pageNumber += 1) {
    const page = new Uint8Array(pageBytes);
    const view = new DataView(page.buffer);
    view.setUint8(0, 0x0d);
    view.setUint32(4, pageNumber, true);
    const recordCount = random.integer(0, 30);
    view.setUint16(2, recordCount, true);
    let recordOffset = pageBytes;
    for (let record = 0; record < recordCount; record += 1) {
      const text = encoder.encode(`{"id":${pageNumber * 64 + record},"name":"row ${random.integer(0, 999)}","active":${record % 2 === 0}}`);
      recordOffset -= text.length;
      page.set(text, recordOffset);
      view.setUint16(8 + record * 2, recordOffset, true);
    }
    bytes.set(page.subarray(0, Math.min(pageBytes, byteCount - pageStart)), pageStart);
  }
  return bytes;
}
