/**
 * Shared helpers for the VersionedEmbrFS suites in `test/fs`: temporary engrams, a seeded byte
 * generator, whole-buffer comparison and typed-error expectations.
 *
 * Everything here is deterministic: content comes from seeded generators (never `Math.random`) so
 * a failing run can be replayed with the seed it prints.
 *
 * @example
 * ```ts
 * const scratch = await createTempEngram();
 * try {
 *   await scratch.engram.writeFile('/a', seededBytes(1, 100));
 * } finally {
 *   await scratch.cleanup();
 * }
 * ```
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbrError, openEngram, type Engram, type ErrorCode, type OpenOptions } from '../../src/index.js';

/** True when the slow tier was asked for (`EMBRFS_SLOW=1`). */
export const slowTier = process.env.EMBRFS_SLOW === '1';

/** A scratch directory with an engram file inside it. */
export interface TempEngram {
  directory: string;
  file: string;
  engram: Engram;
  /** Closes the engram (if still open) and removes the directory. */
  cleanup(): Promise<void>;
}

/**
 * Creates a fresh engram in a new temporary directory.
 *
 * @example
 * ```ts
 * const { engram, cleanup } = await createTempEngram({ durability: 'normal' });
 * ```
 */
export async function createTempEngram(options: OpenOptions = {}): Promise<TempEngram> {
  const directory = await mkdtemp(join(tmpdir(), 'embrfs-fs-test-'));
  const file = join(directory, 'test.engram');
  let engram: Engram;
  try {
    engram = await openEngram(file, { create: true, ...options });
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  let closed = false;
  return {
    directory,
    file,
    engram,
    async cleanup() {
      if (!closed) {
        closed = true;
        await engram.close().catch(() => undefined);
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `body` with a new temporary directory that is removed afterwards, even on failure.
 *
 * @example
 * ```ts
 * await withTempDirectory(async (directory) => { ... });
 * ```
 */
export async function withTempDirectory<T>(body: (directory: string) => Promise<T>): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), 'embrfs-fs-test-'));
  try {
    return await body(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * Hex SHA-256 of the whole of `data`.
 *
 * @example
 * ```ts
 * assert.equal(sha256Hex(read.data), sha256Hex(written));
 * ```
 */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A small seeded pseudo-random generator (splitmix32) for choices in tests: sizes, offsets,
 * delays, which operation next. Bulk bytes come from {@link seededBytes}, which is faster.
 *
 * @example
 * ```ts
 * const random = new SeededRandom(42);
 * const size = random.integer(1, 4096);
 * ```
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let mixed = this.state;
    mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b) >>> 0;
    mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35) >>> 0;
    return (mixed ^ (mixed >>> 16)) >>> 0;
  }

  /** A uniform integer in [minimum, maximum] (both inclusive). */
  integer(minimum: number, maximum: number): number {
    if (!Number.isInteger(minimum) || !Number.isInteger(maximum) || maximum < minimum) {
      throw new RangeError(`bad integer range [${minimum}, ${maximum}]`);
    }
    return minimum + (this.nextUint32() % (maximum - minimum + 1));
  }

  /** A uniform float in [0, 1). */
  fraction(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** One element of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.integer(0, items.length - 1)];
  }
}

/**
 * `byteCount` pseudo-random bytes determined by `seed` (AES-256-CTR keystream keyed by the
 * SHA-256 of the seed): incompressible, reproducible, and fast enough for 100 MB files.
 *
 * @example
 * ```ts
 * const data = seededBytes(7, 10 * 1024 * 1024);
 * ```
 */
export function seededBytes(seed: number | string, byteCount: number): Uint8Array {
  const key = createHash('sha256').update(`embrfs-test-seed:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const keystream = cipher.update(Buffer.alloc(byteCount));
  cipher.final();
  return new Uint8Array(keystream.buffer, keystream.byteOffset, keystream.byteLength);
}

/**
 * UTF-8 bytes of `text`.
 *
 * @example
 * ```ts
 * await engram.writeFile('/counter', utf8('0'));
 * ```
 */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/**
 * `bytes` decoded as UTF-8.
 *
 * @example
 * ```ts
 * const value = Number(fromUtf8((await engram.readFile('/counter')).data));
 * ```
 */
export function fromUtf8(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/**
 * Asserts that two byte arrays are equal in length and in every byte. On a mismatch it reports
 * the first differing offset instead of dumping megabytes into the test log.
 *
 * @example
 * ```ts
 * assertBytesEqual((await engram.readFile('/big.bin')).data, content, '/big.bin');
 * ```
 */
export function assertBytesEqual(actual: Uint8Array, expected: Uint8Array, label: string): void {
  const actualBuffer = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const expectedBuffer = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (actualBuffer.equals(expectedBuffer)) return;
  const commonLength = Math.min(actualBuffer.length, expectedBuffer.length);
  let firstDifference = commonLength;
  for (let offset = 0; offset < commonLength; offset += 1) {
    if (actualBuffer[offset] !== expectedBuffer[offset]) {
      firstDifference = offset;
      break;
    }
  }
  assert.fail(
    `${label}: bytes differ (actual ${actualBuffer.length} bytes, expected ${expectedBuffer.length} bytes, ` +
      `first difference at offset ${firstDifference}: actual ${actualBuffer[firstDifference]} expected ${expectedBuffer[firstDifference]})`,
  );
}

/**
 * Awaits `promise` and asserts it rejects with an {@link EmbrError} whose code is one of `codes`.
 * Returns the error for further checks on its data.
 *
 * @example
 * ```ts
 * const error = await expectEmbrError(engram.readFile('/missing'), 'NOT_FOUND');
 * ```
 */
export async function expectEmbrError(promise: Promise<unknown>, ...codes: ErrorCode[]): Promise<EmbrError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof EmbrError, `expected an EmbrError (${codes.join('|')}), got ${describeError(error)}`);
    assert.ok(codes.includes(error.code), `expected code ${codes.join('|')}, got ${error.code}: ${error.message}`);
    return error;
  }
  assert.fail(`expected a rejection with ${codes.join('|')}, but the call succeeded`);
}

/**
 * True for a VERSION_MISMATCH EmbrError (the one error an optimistic retry loop may swallow).
 *
 * @example
 * ```ts
 * catch (error) { if (!isVersionMismatch(error)) throw error; conflicts += 1; }
 * ```
 */
export function isVersionMismatch(error: unknown): error is EmbrError {
  return error instanceof EmbrError && error.code === 'VERSION_MISMATCH';
}

/**
 * A one-line description of any thrown value, for assertion messages.
 *
 * @example
 * ```ts
 * assert.fail(`expected success, got ${describeError(error)}`);
 * ```
 */
export function describeError(error: unknown): string {
  if (error instanceof EmbrError) return `EmbrError ${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Resolves after `delayMs` milliseconds.
 *
 * @example
 * ```ts
 * await sleep(random.integer(0, 5));
 * ```
 */
export function sleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}

/**
 * Read-increment-write of a decimal counter file with optimistic retry: reads the value and its
 * version, writes value + 1 with `expectedVersion`, and retries on VERSION_MISMATCH (bounded).
 * Returns the version written and how many conflicts it met.
 *
 * @example
 * ```ts
 * const { version, conflicts } = await incrementCounter(engram, '/counter', new SeededRandom(1));
 * ```
 */
export async function incrementCounter(
  engram: Engram,
  path: string,
  random: SeededRandom,
  maxAttempts = 10_000,
): Promise<{ version: number; conflicts: number; value: number }> {
  let conflicts = 0;
  for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
    const { data, version } = await engram.readFile(path);
    const value = Number(fromUtf8(data)) + 1;
    try {
      const written = await engram.writeFile(path, utf8(String(value)), { expectedVersion: version });
      return { version: written, conflicts, value };
    } catch (error) {
      if (!isVersionMismatch(error)) throw error;
      conflicts += 1;
      // Jittered backoff so contending writers spread out instead of colliding in lockstep.
      await sleep(random.integer(0, Math.min(8, conflicts)));
    }
  }
  throw new Error(`incrementCounter(${path}): gave up after ${maxAttempts} attempts`);
}
