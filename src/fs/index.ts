/**
 * VersionedEmbrFS entry point: {@link openEngram}.
 *
 * @example
 * ```ts
 * import { openEngram } from './fs/index.js';
 * const engram = await openEngram('data.engram', { create: true });
 * const version = await engram.writeFile('/hello.txt', new TextEncoder().encode('hi'));
 * const { data } = await engram.readFile('/hello.txt');
 * await engram.close();
 * ```
 */
import { EmbrError } from '../errors.js';
import type { Engram, OpenOptions } from './api.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/api.js';
import { createPipeline } from './encode.js';
import { EngramImpl } from './engram.js';
import { nowNs } from './session.js';

export type * from './api.js';
export { DEFAULT_RETAIN_COMMITS } from './engram.js';

/** Default chunk size of a new engram. */
export const DEFAULT_CHUNK_BYTES = 4096;
const MAX_CHUNK_BYTES = 1 << 20;
const MIN_CHUNK_BYTES = 64;

/**
 * Opens an engram file (one SQLite database), creating it with `create: true`. A missing file is
 * NOT_FOUND; an empty, truncated, random or foreign file is NOT_ENGRAM; damaged pages are CORRUPT.
 * Inodes left unlinked-but-open by a process that ended are cleaned on a writable open.
 *
 * @example
 * ```ts
 * const engram = await openEngram('data.engram', { create: true, profile: 'positional', chunkBytes: 4096 });
 * ```
 */
export async function openEngram(file: string, options: OpenOptions = {}): Promise<Engram> {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('openEngram: file must be a non-empty string');
  const profile = options.profile ?? 'positional';
  if (profile !== 'positional' && profile !== 'holographic') {
    throw new EmbrError('INVALID_ARGUMENT', `unknown profile '${String(profile)}' (use positional or holographic)`, { reason: 'profile' });
  }
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES) {
    throw new EmbrError('INVALID_ARGUMENT', `chunkBytes must be an integer in ${MIN_CHUNK_BYTES}..${MAX_CHUNK_BYTES}, got ${chunkBytes}`, { reason: 'chunkBytes' });
  }
  if (options.mmapBytes !== undefined && (!Number.isSafeInteger(options.mmapBytes) || options.mmapBytes < 0)) {
    throw new EmbrError('INVALID_ARGUMENT', `mmapBytes must be a non-negative integer, got ${String(options.mmapBytes)}`, { reason: 'mmapBytes' });
  }
  if (options.durability !== undefined && options.durability !== 'full' && options.durability !== 'normal') {
    throw new EmbrError('INVALID_ARGUMENT', `unknown durability '${String(options.durability)}' (use full or normal)`, { reason: 'durability' });
  }
  const store = openSqliteStore(file, {
    readOnly: options.readOnly === true,
    durability: options.durability ?? 'full',
    autoCheckpoint: options.bulk !== true,
    create: options.create ? { profile, chunkBytes, timeNs: nowNs() } : undefined,
    mmapBytes: options.mmapBytes ?? 0,
  });
  return openEngramOnStore(file, store, { bulk: options.bulk === true, readWorker: options.readWorker === true });
}

/**
 * Builds an engram over any {@link Store} (the in-memory store in tests, a future server backend).
 * `readWorker`: `file` is the SQLite engram file of `store`, so large file-handle reads may go to
 * a worker thread with a read-only connection of its own (src/fs/read-pool.ts).
 *
 * @example
 * ```ts
 * const engram = openEngramOnStore('memory', createMemoryStore({ profile: 'positional', chunkBytes: 4096 }));
 * ```
 */
export function openEngramOnStore(file: string, store: Store, options: { bulk?: boolean; readWorker?: boolean } = {}): Engram {
  try {
    const pipeline = createPipeline({ profile: store.info.profile, chunkBytes: store.info.chunkBytes });
    const engram = new EngramImpl(file, store, pipeline, options.bulk === true, options.readWorker === true);
    engram.cleanOrphans();
    engram.buildMissingIndex();
    return engram;
  } catch (error) {
    store.close();
    throw error;
  }
}
