/**
 * What an open file's small reads look up before they decode: the file's live inode row and its
 * chunk references (with each chunk's SHA-256 and pack placement), kept per {@link FileHandle}
 * while no commit has landed in the engram. A random 4 KiB read through the FUSE mount otherwise
 * spent about a fifth of its main-thread time on those two lookups (the inode row and one
 * `chunkRefs` query per read); with the cache it asks only for the head commit.
 *
 * Why the head commit is the key: every change of a file's size or chunk references is a commit,
 * commit ids only grow (commit rows are never deleted, and a rolled-back commit is never seen),
 * and the check runs inside the read's own transaction, so an unchanged head means the cached row
 * and references are those of the snapshot being read. The one change without a commit row is
 * the garbage collector's repack, which moves live chunks to other packs: a cached placement may
 * then name a pack that is gone or holds other bytes. Such a read fails its SHA-256 check (or
 * finds no pack) and is retried once without the cache ({@link readCached}); no byte is ever
 * returned unchecked.
 *
 * References are fetched in windows of {@link READ_CACHE_WINDOW_CHUNKS} chunks once the cache has
 * served a few reads under the same head (a random reader then pays one query per window instead
 * of one per read); until then only the chunks a read needs are fetched, so a file that is
 * written between reads (a database on the mount) does not fetch windows it never uses.
 *
 * @example
 * ```ts
 * const cache = new HandleReadCache();
 * store.read((reader) => readCached(reader, pipeline, cache, ino, path, offset, length));
 * ```
 */
import { EmbrError, isEmbrError } from '../errors.js';
import type { ChunkRef, InodeRow, StoreReader } from '../store/api.js';
import { LIVE } from '../store/api.js';
import type { Pipeline } from './encode.js';
import { readRange } from './operations.js';

/** Chunks per cached window of references (256 KiB of 4 KiB chunks). */
export const READ_CACHE_WINDOW_CHUNKS = 64;

/** Windows one handle keeps (64 MiB of a file's references at 4 KiB chunks); all are dropped when full. */
export const READ_CACHE_MAX_WINDOWS = 1024;

/** Reads under one head before whole windows are fetched. */
const WINDOW_AFTER_READS = 4;

/** See the module comment. One per open file handle; not shared between engram connections. */
export class HandleReadCache {
  private head = -1;
  private row: InodeRow | undefined;
  private readsAtHead = 0;
  private readonly windows = new Map<number, Array<ChunkRef | undefined>>();

  /** Forgets everything (the next read looks up afresh). */
  clear(): void {
    this.head = -1;
    this.row = undefined;
    this.readsAtHead = 0;
    this.windows.clear();
  }

  /** The live row of `ino` as of `reader`'s snapshot; `load` looks it up when a commit came in between. */
  liveRow(reader: StoreReader, load: () => InodeRow): InodeRow {
    const head = reader.headCommit();
    if (head !== this.head || this.row === undefined) {
      this.clear();
      this.row = load();
      this.head = head;
    }
    this.readsAtHead += 1;
    return this.row;
  }

  /** Live references of `ino` in [firstIndex, endIndex), in chunk order (holes left out). Call after {@link liveRow}. */
  refs(reader: StoreReader, ino: number, firstIndex: number, endIndex: number): ChunkRef[] {
    if (this.readsAtHead <= WINDOW_AFTER_READS) return reader.chunkRefs(ino, LIVE, firstIndex, endIndex);
    const refs: ChunkRef[] = [];
    for (let window = Math.floor(firstIndex / READ_CACHE_WINDOW_CHUNKS); window * READ_CACHE_WINDOW_CHUNKS < endIndex; window += 1) {
      const windowStart = window * READ_CACHE_WINDOW_CHUNKS;
      let cached = this.windows.get(window);
      if (cached === undefined) {
        if (this.windows.size >= READ_CACHE_MAX_WINDOWS) this.windows.clear();
        cached = new Array<ChunkRef | undefined>(READ_CACHE_WINDOW_CHUNKS);
        for (const ref of reader.chunkRefs(ino, LIVE, windowStart, windowStart + READ_CACHE_WINDOW_CHUNKS)) cached[ref.chunkIndex - windowStart] = ref;
        this.windows.set(window, cached);
      }
      const to = Math.min(endIndex, windowStart + READ_CACHE_WINDOW_CHUNKS);
      for (let chunkIndex = Math.max(firstIndex, windowStart); chunkIndex < to; chunkIndex += 1) {
        const ref = cached[chunkIndex - windowStart];
        if (ref !== undefined) refs.push(ref);
      }
    }
    return refs;
  }
}

/**
 * `length` bytes at `offset` of the live file `ino`, every chunk checked against its SHA-256 as
 * {@link readRange} does, looked up through `cache`. A CORRUPT verdict reached through the cache
 * is checked again without it (a repack may have moved a cached chunk), and that verdict stands.
 */
export function readCached(reader: StoreReader, pipeline: Pipeline, cache: HandleReadCache, ino: number, path: string, offset: number, length: number): { data: Uint8Array; version: number } {
  const load = (): InodeRow => {
    const row = reader.inode(ino, LIVE);
    if (row === undefined) throw new EmbrError('NOT_FOUND', `${path}: the file was removed by another process`, { path });
    return row;
  };
  const row = cache.liveRow(reader, load);
  try {
    return { data: readRange(reader, pipeline, LIVE, ino, row.size, offset, length, (first, end) => cache.refs(reader, ino, first, end)), version: row.fromCommit };
  } catch (error) {
    if (!isEmbrError(error) || error.code !== 'CORRUPT') throw error;
    cache.clear();
    const fresh = load();
    return { data: readRange(reader, pipeline, LIVE, ino, fresh.size, offset, length), version: fresh.fromCommit };
  }
}
