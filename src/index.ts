/**
 * EmbrFS public entry point.
 *
 * @example
 * ```ts
 * import { openEngram } from 'embrfs';
 * const engram = await openEngram('data.engram', { create: true });
 * const version = await engram.writeFile('/hello.txt', new TextEncoder().encode('hi'));
 * const { data } = await engram.readFile('/hello.txt');
 * await engram.close();
 * ```
 */
export * from './errors.js';
export type * from './fs/api.js';
export { openEngram, openEngramOnStore, DEFAULT_CHUNK_BYTES, DEFAULT_RETAIN_COMMITS } from './fs/index.js';
export { createMemoryStore } from './store/memory-store.js';
export type { Store } from './store/api.js';
/** The pure layers, for callers who work with vectors and chunk payloads directly. */
export * as vsa from './vsa/index.js';
export * as codec from './codec/index.js';
export { chunkFingerprint, FINGERPRINT_DIMENSION } from './query/fingerprint.js';
