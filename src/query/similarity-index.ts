/**
 * The similarity index (issue 6): an inverted index from fingerprint dimensions to the chunks
 * that hold them, kept as rows of an {@link IndexStorage} so the store can persist it in SQLite
 * and update it in the same transaction as each commit. Format version {@link INDEX_FORMAT_VERSION}.
 *
 * Model. Every indexed file is a list of chunks, each with a fingerprint ({@link chunkFingerprint})
 * and a byte length, kept in *segments* of {@link SEGMENT_CHUNKS} chunks so that a partial write
 * re-indexes only the segments it touches ({@link SimilarityIndex.replaceChunks}). Each chunk
 * occupies one *slot*, a uint32 handed out in increasing order and never reused, so a segment's
 * chunks are the contiguous slots `firstSlot .. firstSlot+chunkCount-1`.
 *
 * Rows (values in docs/design/query.md):
 * - `meta`: format version, dimension, root depth, the log range, and the counters (next slot,
 *   next file id, live slots, live files) as of the last checkpoint.
 * - `log:<n>`: the operations (add a segment with its chunks, remove a segment) of one flush. A
 *   commit writes one log row; every so many commits a *checkpoint* writes the base rows below
 *   and deletes the log rows. Opening the index replays the log on top of the base rows.
 * - `path:<path>` → the file id of each segment. `file:<fileId>` → one segment: path, segment
 *   number, byte offset, first slot, and per chunk its byte length and fingerprint (needed to
 *   un-index and un-bundle on removal, for rewrites, and for brute force).
 * - `slots:<slot / 4096>` → the segment file id owning each slot of that block (run-length coded; 0 = free).
 * - `post:<dimension>:<slot / 16384>` → the slots whose fingerprint is non-zero at `dimension`,
 *   with the sign, delta-varint coded. Only live slots appear: removal deletes the entries.
 * - `root:<directory>` → the majority-bundle counts ({@link BundleAccumulator}) of every chunk
 *   fingerprint under that directory: `/` is the engram root; directories down to `rootDepth`
 *   components get their own root. Removal subtracts exactly what adding added.
 *
 * Caching. Decoded rows are cached, within a budget of estimated bytes
 * ({@link SimilarityIndexOptions.cacheBytes}): past it, clean rows (unchanged since the last
 * checkpoint, so equal to their stored row) are evicted least recently used and re-read on their
 * next use. Rows changed since the last checkpoint are pinned: the log replays them only on open,
 * so storage does not hold them. {@link SimilarityIndex.flush} writes one log row (and at
 * times a checkpoint). The caller runs `flush()` inside the same storage transaction as the
 * commit and calls {@link SimilarityIndex.discardCache} if that transaction rolls back or another
 * process committed to the engram.
 *
 * @example
 * ```ts
 * const index = new SimilarityIndex(new MemoryIndexStorage());
 * index.addFileBytes('/docs/a.txt', bytes);
 * index.flush();
 * index.removeFile('/docs/a.txt');
 * index.checkpoint(); // storage holds only `meta` again
 * ```
 */
import { EmbrError, invariant } from '../errors.js';
import { BundleAccumulator } from '../vsa/accumulator.js';
import { readVector, serializedVectorByteLength, writeVector } from '../vsa/serialize.js';
import type { SparseVector } from '../vsa/sparse.js';
import { VarintReader, varintByteLength, writeVarint } from '../vsa/varint.js';
import { FINGERPRINT_DIMENSION, chunkFingerprint } from './fingerprint.js';
import type { IndexStorage } from './storage.js';

/** Version of the row formats above. */
export const INDEX_FORMAT_VERSION = 1;

/** Slots per `slots:` row. */
export const SLOTS_PER_DIRECTORY_BLOCK = 4096;

/** Slots per `post:` row: bounds the size of a row that one commit rewrites. */
export const SLOTS_PER_POSTING_BLOCK = 16384;

/** Default chunk length of {@link SimilarityIndex.addFileBytes}, matching the codec's default. */
export const DEFAULT_INDEX_CHUNK_BYTES = 4096;

/** One chunk of a file as the index sees it. */
export interface IndexedChunk {
  fingerprint: SparseVector;
  byteLength: number;
}

/**
 * A decoded `file:` row: one *segment* of a file, at most {@link SEGMENT_CHUNKS} chunks, so that
 * a partial write re-indexes only the segments it touches. {@link SimilarityIndex.fileByPath}
 * returns all segments of a path merged into one view.
 */
export interface IndexedFile {
  readonly fileId: number;
  readonly path: string;
  /** Segment number: the segment holds the file's chunks from segment * SEGMENT_CHUNKS on. */
  readonly segment: number;
  readonly firstSlot: number;
  /** Byte offset of the segment's first chunk in the file. */
  readonly baseOffset: number;
  /** Byte offset of each chunk in the file. */
  readonly chunkOffsets: readonly number[];
  readonly chunkLengths: readonly number[];
  readonly fingerprints: readonly SparseVector[];
  /** Bytes of the segment (of the whole file in a merged view). */
  readonly byteLength: number;
  /** Longest chunk (the file's chunk size unless it has a single short chunk). */
  readonly maxChunkBytes: number;
}

export interface SimilarityIndexOptions {
  /** Directories down to this many path components keep their own root bundle (default 1). Fixed when the index is created. */
  rootDepth?: number;
  /** Checkpoint after this many log rows (default {@link DEFAULT_CHECKPOINT_EVERY_COMMITS}). */
  checkpointEveryCommits?: number;
  /** Checkpoint after this many chunks were added or removed (default {@link DEFAULT_CHECKPOINT_EVERY_CHUNKS}). */
  checkpointEveryChunks?: number;
  /**
   * Budget, in estimated heap bytes, of the decoded rows kept cached (default
   * {@link DEFAULT_CACHE_BYTES}; `Infinity` keeps every row, as before eviction existed). Rows
   * changed since the last checkpoint count against it but are never evicted.
   */
  cacheBytes?: number;
}

/**
 * 512 MiB of decoded rows. Fully decoded, an index takes ~1.2 KiB per chunk (a file row ~680 B
 * of fingerprints, postings ~500 B), so this keeps the whole index of ~440,000 chunks (~1.7 GB of
 * 4 KiB chunks) in memory, where searches and re-indexing run at full speed; a larger engram
 * re-reads rows from storage (several times slower, docs/design/query.md §7) instead of growing
 * the heap of a long-running mount with the engram. The helper that built the cache chose 48 MiB
 * and the lead first 128 MiB: with 128 MiB, writing one 1 GiB file through the mount (262,144
 * chunks re-indexed segment by segment) ran at 20.4 MB/s instead of 43.3 unbounded, re-reading
 * evicted rows at every commit; 512 MiB measured 37.2 against 40.9 unbounded in the same minutes.
 */
export const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024;

/** Read-only figures of the row cache ({@link SimilarityIndex.cacheStats}). */
export interface SimilarityIndexCacheStats {
  /** Estimated heap bytes of every cached row (clean and pinned). */
  readonly bytes: number;
  /** Of those, the rows changed since the last checkpoint (not evictable). */
  readonly pinnedBytes: number;
  /** The budget ({@link SimilarityIndexOptions.cacheBytes}). */
  readonly budget: number;
  /** Cached rows per kind. */
  readonly entries: { readonly postings: number; readonly directory: number; readonly files: number; readonly paths: number; readonly roots: number };
  /** Rows evicted since the index was constructed. */
  readonly evictions: number;
}

// Estimated heap bytes of cached rows (64-bit V8): a Map entry with its key and an object
// header, plus the payload. Approximate by design; the budget is a bound on the order of size.
const ENTRY_OVERHEAD_BYTES = 80;
/** A row's recency node and its entry in the recency Map (measured ~85 bytes). */
const RECENCY_NODE_BYTES = 88;
/** A posting list is a plain array of small integers: 8 bytes per entry (plus growth slack). */
const POSTING_ENTRY_BYTES = 8;
const DIRECTORY_BLOCK_BYTES = ENTRY_OVERHEAD_BYTES + 4 * SLOTS_PER_DIRECTORY_BLOCK;
/** A SparseVector: the object and its two Uint32Arrays, each with its buffer (measured ~400 bytes). */
const VECTOR_OVERHEAD_BYTES = 400;
/** After a sweep the cache is at most this fraction of the budget, so sweeps are rare. */
const SWEEP_TARGET = 7 / 8;

/** A checkpoint every 128 commits bounds the log that opening the index replays. */
export const DEFAULT_CHECKPOINT_EVERY_COMMITS = 128;

/** ... and every 8192 changed chunks (32 MiB of 4 KiB chunks) bounds it in work. */
export const DEFAULT_CHECKPOINT_EVERY_CHUNKS = 8192;

/** Chunks per file segment (1 MiB of 4 KiB chunks): the unit a partial write re-indexes. */
export const SEGMENT_CHUNKS = 256;

const OPERATION_ADD_SEGMENT = 1;
const OPERATION_REMOVE_SEGMENT = 2;

/**
 * Posting entries of one (dimension, block): `(slot - blockBase) * 2 + (negative ? 1 : 0)`,
 * strictly increasing.
 */
type PostingEntries = number[];

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** See the module comment. */
export class SimilarityIndex {
  readonly storage: IndexStorage;
  private rootDepthValue = 1;
  private nextSlotValue = 0;
  private nextFileId = 1;
  private liveSlots = 0;
  private liveFiles = 0;
  private metaDirty = false;
  /** Counters as of the last checkpoint: what the base rows describe (the log replays on top). */
  private base = { nextSlot: 0, nextFileId: 1, liveSlots: 0, liveFiles: 0 };
  /** Log rows `log:<logFirst>` .. `log:<logNext - 1>` hold the operations since the last checkpoint. */
  private logFirst = 0;
  private logNext = 0;
  /** Encoded operations since the last flush: the next log row. */
  private pendingOperations: Uint8Array[] = [];
  private chunksSinceCheckpoint = 0;
  private readonly checkpointEveryCommits: number;
  private readonly checkpointEveryChunks: number;

  // Keyed by block * FINGERPRINT_DIMENSION + dimension: numbers, because building a string key
  // per posting made indexing three times slower. Row keys are built only at flush.
  private readonly postingCache = new Map<number, PostingEntries>();
  private readonly dirtyPostings = new Set<number>();
  /** Per posting block, 1 for each dimension already in dirtyPostings (a Set.add per entry cost a third of indexing). */
  private readonly dirtyPostingMarks = new Map<number, Uint8Array>();
  /**
   * Posting changes not yet applied to {@link postingCache}: the segments added (by file id, in
   * slot order) and the applied segments removed since. Postings are needed only by searches and
   * checkpoints, so they are applied then ({@link applyDeferredPostings}): a segment added and
   * removed in between (a file rewritten twice) never touches them, and a connection that only
   * replays another's log rows never builds postings it will discard at the other's checkpoint.
   */
  private readonly deferredAdds = new Map<number, { firstSlot: number; fingerprints: readonly SparseVector[] }>();
  private deferredRemovals: Array<{ firstSlot: number; fingerprints: readonly SparseVector[] }> = [];
  private readonly directoryCache = new Map<number, Uint32Array>();
  private readonly dirtyDirectory = new Set<number>();
  private readonly fileCache = new Map<number, IndexedFile | null>();
  private readonly dirtyFiles = new Set<number>();
  /** File ids of each segment of a path (0 = no such segment), or null for a path not indexed. */
  private readonly pathCache = new Map<string, number[] | null>();
  private readonly dirtyPaths = new Set<string>();
  private readonly rootCache = new Map<string, BundleAccumulator>();
  private readonly dirtyRoots = new Set<string>();

  // The row caches' byte accounts (see cacheStats) and one recency order over the rows of every
  // kind: a doubly linked list of nodes, found by each row's recency key (RowCache.recencyKey).
  // A miss links the row as the newest, a hit relinks it there (a Map.get and a few pointer
  // writes: a Map delete + set per hit rehashed the Map every few thousand hits and made
  // queries 5x slower), and a sweep evicts from the oldest end, skipping pinned (dirty) rows.
  // With an infinite budget none of this runs.
  private readonly cacheBudget: number;
  private readonly bounded: boolean;
  /** Per-row overhead: ENTRY_OVERHEAD_BYTES, plus RECENCY_NODE_BYTES when the budget is finite. */
  private readonly rowBytes: number;
  private readonly recency = new Map<number | string, RecencyNode>();
  private oldest: RecencyNode | null = null;
  private newest: RecencyNode | null = null;
  /** The recency key last inserted or touched: still the newest, unless evicted (then a miss re-inserts it). */
  private lastTouched: number | string | symbol = NO_KEY;
  /**
   * Bytes of rows inserted since the last sweep, and how many a sweep waits for: 0, or an eighth
   * of the budget after a sweep that pinned rows kept above its target (so that a cache full of
   * pinned rows is not scanned once per inserted row).
   */
  private insertedSinceSweep = 0;
  private sweepEvery = 0;
  private cachedBytes = 0;
  private evictionCount = 0;
  private readonly postingAccount: RowCache<number, PostingEntries> = {
    map: this.postingCache,
    isPinned: (key) => this.dirtyPostings.has(key),
    recencyKey: (key) => key * 4 + RECENCY_POSTING,
    sizeOf: (_key, entries) => this.rowBytes + POSTING_ENTRY_BYTES * entries.length,
    bytes: 0,
  };
  private readonly directoryAccount: RowCache<number, Uint32Array> = {
    map: this.directoryCache,
    isPinned: (key) => this.dirtyDirectory.has(key),
    recencyKey: (key) => key * 4 + RECENCY_DIRECTORY,
    sizeOf: () => this.rowBytes - ENTRY_OVERHEAD_BYTES + DIRECTORY_BLOCK_BYTES,
    bytes: 0,
  };
  private readonly fileAccount: RowCache<number, IndexedFile | null> = {
    map: this.fileCache,
    isPinned: (key) => this.dirtyFiles.has(key),
    recencyKey: (key) => key * 4 + RECENCY_FILE,
    sizeOf: (_key, file) => this.rowBytes - ENTRY_OVERHEAD_BYTES + fileBytes(file),
    bytes: 0,
  };
  private readonly pathAccount: RowCache<string, number[] | null> = {
    map: this.pathCache,
    isPinned: (key) => this.dirtyPaths.has(key),
    recencyKey: (key) => key,
    sizeOf: (path, segmentIds) => this.rowBytes + 96 + path.length + (segmentIds === null ? 0 : 32 + 8 * segmentIds.length),
    bytes: 0,
  };
  private readonly rootAccount: RowCache<string, BundleAccumulator> = {
    map: this.rootCache,
    isPinned: (key) => this.dirtyRoots.has(key),
    // Paths and directories both start with '/': a NUL (never in a path) keeps them apart.
    recencyKey: (key) => `\0${key}`,
    sizeOf: (directory, root) => this.rowBytes + 2 * directory.length + 100 + 4 * root.counts.length,
    bytes: 0,
  };
  private readonly accounts: ReadonlyArray<{ bytes: number }> = [this.postingAccount, this.directoryAccount, this.fileAccount, this.pathAccount, this.rootAccount];

  /**
   * Opens the index kept in `storage`, or starts an empty one (written at the first flush).
   *
   * @example
   * ```ts
   * const index = new SimilarityIndex(storage, { rootDepth: 2 });
   * ```
   */
  constructor(storage: IndexStorage, options: SimilarityIndexOptions = {}) {
    this.storage = storage;
    const rootDepth = options.rootDepth ?? 1;
    if (!Number.isInteger(rootDepth) || rootDepth < 0 || rootDepth > 64) throw new RangeError(`rootDepth must be an integer in [0, 64], got ${rootDepth}`);
    this.rootDepthValue = rootDepth;
    this.checkpointEveryCommits = options.checkpointEveryCommits ?? DEFAULT_CHECKPOINT_EVERY_COMMITS;
    this.checkpointEveryChunks = options.checkpointEveryChunks ?? DEFAULT_CHECKPOINT_EVERY_CHUNKS;
    if (!(this.checkpointEveryCommits >= 1) || !(this.checkpointEveryChunks >= 1)) throw new RangeError('checkpoint thresholds must be >= 1');
    this.cacheBudget = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    if (!(this.cacheBudget >= 0)) throw new RangeError(`cacheBytes must be >= 0, got ${this.cacheBudget}`);
    this.bounded = this.cacheBudget !== Infinity;
    this.rowBytes = ENTRY_OVERHEAD_BYTES + (this.bounded ? RECENCY_NODE_BYTES : 0);
    this.load();
  }

  /** Number of chunks currently indexed. */
  get liveSlotCount(): number {
    return this.liveSlots;
  }

  /** Number of files currently indexed. */
  get liveFileCount(): number {
    return this.liveFiles;
  }

  /** One past the highest slot ever handed out (slot ids are never reused). */
  get nextSlot(): number {
    return this.nextSlotValue;
  }

  /** Directories down to this depth have their own root bundle. */
  get rootDepth(): number {
    return this.rootDepthValue;
  }

  /**
   * Indexes `path` with the given chunks (replacing what was indexed under `path` before; only
   * segments that differ are re-indexed).
   *
   * @example
   * ```ts
   * index.addFile('/a.txt', [{ fingerprint: chunkFingerprint(chunk), byteLength: chunk.length }]);
   * ```
   */
  addFile(path: string, chunks: readonly IndexedChunk[]): void {
    // Segments whose chunks did not change are kept as they are (a rewrite costs what it changes).
    this.replaceChunks(path, 0, chunks, chunks.length);
  }

  /**
   * Updates an indexed file after a partial write: chunks `fromChunk .. fromChunk + chunks.length - 1`
   * get the given fingerprints and the file then has `chunkCount` chunks (a truncate, or an
   * append when `fromChunk` is the old count). Only the segments ({@link SEGMENT_CHUNKS} chunks)
   * that change are re-indexed. An unindexed path is added (then `fromChunk` must be 0).
   *
   * @example
   * ```ts
   * index.replaceChunks('/log.txt', oldChunkCount - 1, [lastChunk, newChunk], oldChunkCount + 1); // append
   * ```
   */
  replaceChunks(path: string, fromChunk: number, chunks: readonly IndexedChunk[], chunkCount: number): void {
    checkPath(path);
    checkChunks(chunks);
    const oldSegments = (this.segmentIdsOf(path) ?? []).map((fileId) => {
      const file = this.file(fileId);
      invariant(file !== undefined, `segment file ${fileId} of ${path} exists`);
      return file;
    });
    const oldCount = oldSegments.reduce((sum, segment) => sum + segment.chunkLengths.length, 0);
    if (!Number.isInteger(fromChunk) || fromChunk < 0 || fromChunk > oldCount) throw new RangeError(`replaceChunks: fromChunk ${fromChunk} outside 0..${oldCount}`);
    const replacedEnd = fromChunk + chunks.length;
    if (!Number.isInteger(chunkCount) || chunkCount < replacedEnd || chunkCount > Math.max(oldCount, replacedEnd)) {
      throw new RangeError(`replaceChunks: chunkCount ${chunkCount} must be in ${replacedEnd}..${Math.max(oldCount, replacedEnd)}`);
    }
    const addedChunks = chunks.length + Math.max(0, chunkCount - oldCount);
    if (this.nextSlotValue + addedChunks + SEGMENT_CHUNKS > 0xffff_ffff) throw new EmbrError('NO_SPACE', 'similarity index: slot ids exhausted; rebuild the index', { file: 'index' });
    const chunkAt = (index: number): IndexedChunk => {
      if (index >= fromChunk && index < replacedEnd) return chunks[index - fromChunk];
      const segment = oldSegments[Math.floor(index / SEGMENT_CHUNKS)];
      const position = index % SEGMENT_CHUNKS;
      return { fingerprint: segment.fingerprints[position], byteLength: segment.chunkLengths[position] };
    };
    const newSegmentCount = Math.max(1, Math.ceil(chunkCount / SEGMENT_CHUNKS));
    const firstSegment = Math.min(Math.floor(fromChunk / SEGMENT_CHUNKS), newSegmentCount - 1);
    let baseOffset = firstSegment < oldSegments.length ? oldSegments[firstSegment].baseOffset : oldSegments.reduce((sum, segment) => sum + segment.byteLength, 0);
    for (let segment = firstSegment; segment < newSegmentCount; segment += 1) {
      const start = segment * SEGMENT_CHUNKS;
      const end = Math.min(chunkCount, start + SEGMENT_CHUNKS);
      const old = oldSegments[segment];
      // Past the replaced range, a segment whose place and chunks are unchanged stays as it is;
      // and once one such segment is found, all later ones are unchanged too.
      if (start >= replacedEnd && old !== undefined && old.baseOffset === baseOffset && old.chunkLengths.length === end - start) break;
      const segmentChunks: IndexedChunk[] = [];
      for (let index = start; index < end; index += 1) segmentChunks.push(chunkAt(index));
      if (old === undefined || !sameSegment(old, baseOffset, segmentChunks)) {
        this.pendingOperations.push(encodeAddOperation(path, segment, baseOffset, segmentChunks));
        this.applyAddSegment(path, segment, baseOffset, segmentChunks);
      }
      baseOffset += segmentChunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    }
    for (let segment = oldSegments.length - 1; segment >= newSegmentCount; segment -= 1) {
      this.pendingOperations.push(encodeRemoveOperation(path, segment));
      this.applyRemoveSegment(path, segment);
    }
  }

  private applyAddSegment(path: string, segment: number, baseOffset: number, chunks: readonly IndexedChunk[]): void {
    const segmentIds = this.segmentIdsOf(path)?.slice() ?? [];
    if (segmentIds[segment] !== undefined && segmentIds[segment] !== 0) this.applyRemoveSegment(path, segment);
    const idsAfterRemoval = this.segmentIdsOf(path)?.slice() ?? [];
    if (idsAfterRemoval.length === 0) this.liveFiles += 1;
    const fileId = this.nextFileId;
    this.nextFileId += 1;
    const firstSlot = this.nextSlotValue;
    this.nextSlotValue += chunks.length;
    const file = makeFile(fileId, path, segment, firstSlot, baseOffset, chunks.map((chunk) => chunk.byteLength), chunks.map((chunk) => chunk.fingerprint));
    const roots = this.rootsOf(path);
    for (let chunkIndex = 0; chunkIndex < chunks.length; chunkIndex += 1) {
      const slot = firstSlot + chunkIndex;
      const fingerprint = chunks[chunkIndex].fingerprint;
      this.setSlotOwner(slot, fileId);
      for (const root of roots) root.add(fingerprint);
    }
    if (chunks.length > 0) this.deferredAdds.set(fileId, { firstSlot, fingerprints: file.fingerprints });
    this.putRow(this.fileAccount, fileId, file);
    this.dirtyFiles.add(fileId);
    while (idsAfterRemoval.length <= segment) idsAfterRemoval.push(0);
    idsAfterRemoval[segment] = fileId;
    this.putRow(this.pathAccount, path, idsAfterRemoval);
    this.dirtyPaths.add(path);
    this.liveSlots += chunks.length;
    this.chunksSinceCheckpoint += chunks.length;
  }

  /**
   * Cuts `bytes` into chunks of `chunkBytes`, fingerprints them and indexes them under `path`.
   *
   * @example
   * ```ts
   * index.addFileBytes('/src/main.c', readFileSync('main.c'));
   * ```
   */
  addFileBytes(path: string, bytes: Uint8Array, chunkBytes = DEFAULT_INDEX_CHUNK_BYTES): void {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
    const chunks: IndexedChunk[] = [];
    for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
      const chunk = bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes));
      chunks.push({ fingerprint: chunkFingerprint(chunk), byteLength: chunk.length });
    }
    this.addFile(path, chunks);
  }

  /**
   * Removes `path` from the index: its postings, its slots and its share of every root bundle.
   * Returns false when `path` was not indexed.
   *
   * @example
   * ```ts
   * index.removeFile('/a.txt'); // true
   * ```
   */
  removeFile(path: string): boolean {
    checkPath(path);
    const segmentIds = this.segmentIdsOf(path);
    if (segmentIds === undefined) return false;
    for (let segment = segmentIds.length - 1; segment >= 0; segment -= 1) {
      if (segmentIds[segment] === 0) continue;
      this.pendingOperations.push(encodeRemoveOperation(path, segment));
      this.applyRemoveSegment(path, segment);
    }
    return true;
  }

  private applyRemoveSegment(path: string, segment: number): boolean {
    const segmentIds = this.segmentIdsOf(path)?.slice();
    const fileId = segmentIds?.[segment];
    if (segmentIds === undefined || fileId === undefined || fileId === 0) return false;
    const file = this.file(fileId);
    invariant(file !== undefined && file.path === path && file.segment === segment, `file row ${fileId} is segment ${segment} of ${path}`);
    const roots = this.rootsOf(path);
    for (let chunkIndex = 0; chunkIndex < file.fingerprints.length; chunkIndex += 1) {
      const slot = file.firstSlot + chunkIndex;
      const fingerprint = file.fingerprints[chunkIndex];
      invariant(this.slotOwner(slot) === fileId, `slot ${slot} is owned by file ${fileId}`);
      this.setSlotOwner(slot, 0);
      for (const root of roots) root.subtract(fingerprint);
    }
    // Added since the postings were last applied: forgetting the add is the whole removal.
    if (!this.deferredAdds.delete(fileId) && file.fingerprints.length > 0) this.deferredRemovals.push({ firstSlot: file.firstSlot, fingerprints: file.fingerprints });
    this.putRow(this.fileAccount, fileId, null);
    this.dirtyFiles.add(fileId);
    segmentIds[segment] = 0;
    while (segmentIds.length > 0 && segmentIds[segmentIds.length - 1] === 0) segmentIds.pop();
    this.putRow(this.pathAccount, path, segmentIds.length === 0 ? null : segmentIds);
    this.dirtyPaths.add(path);
    if (segmentIds.length === 0) this.liveFiles -= 1;
    this.liveSlots -= file.fingerprints.length;
    this.chunksSinceCheckpoint += file.fingerprints.length;
    return true;
  }

  /**
   * Tells the index that `path` was never indexed (the engram's keys are inode numbers, which are
   * never reused, so an inode created in this commit qualifies): the next add of it skips the
   * storage read for its old segments. Ignored when `path` is cached already.
   *
   * @example
   * ```ts
   * index.noteNeverIndexed('/4711');
   * index.addFile('/4711', chunks);
   * ```
   */
  noteNeverIndexed(path: string): void {
    if (!this.pathCache.has(path)) this.insertRow(this.pathAccount, path, null);
  }

  /** All segments of `path` merged into one record, or undefined when it is not indexed. */
  fileByPath(path: string): IndexedFile | undefined {
    const segmentIds = this.segmentIdsOf(path);
    if (segmentIds === undefined) return undefined;
    const segments = segmentIds.map((fileId) => {
      const file = this.file(fileId);
      invariant(file !== undefined, `segment file ${fileId} of ${path} exists`);
      return file;
    });
    if (segments.length === 1) return segments[0];
    const chunkLengths = segments.flatMap((segment) => segment.chunkLengths);
    const fingerprints = segments.flatMap((segment) => segment.fingerprints);
    return makeFile(segments[0].fileId, path, 0, segments[0].firstSlot, 0, chunkLengths, fingerprints);
  }

  /**
   * Number of chunks indexed under `path` (0 when not indexed), reading only its last segment:
   * the engram needs it before a partial update without merging a large file's segments.
   *
   * @example
   * ```ts
   * index.chunkCountOf('/a.txt'); // 3
   * ```
   */
  chunkCountOf(path: string): number {
    const segmentIds = this.segmentIdsOf(path);
    if (segmentIds === undefined || segmentIds.length === 0) return 0;
    const last = this.file(segmentIds[segmentIds.length - 1]);
    invariant(last !== undefined, `last segment of ${path} exists`);
    return (segmentIds.length - 1) * SEGMENT_CHUNKS + last.chunkLengths.length;
  }

  /** The decoded record of a file id, or undefined for a removed or unknown id. */
  file(fileId: number): IndexedFile | undefined {
    let file = this.fileCache.get(fileId);
    if (file === undefined) {
      const row = this.storage.get(`file:${fileId}`);
      file = row === undefined ? null : decodeFile(fileId, row);
      this.insertRow(this.fileAccount, fileId, file);
    } else if (this.bounded) this.touch(fileId * 4 + RECENCY_FILE);
    return file ?? undefined;
  }

  /** The file id owning `slot`, or 0 when the slot is free. */
  slotOwner(slot: number): number {
    return this.directoryBlock(Math.floor(slot / SLOTS_PER_DIRECTORY_BLOCK))[slot % SLOTS_PER_DIRECTORY_BLOCK];
  }

  /** Posting entries of `dimension` in posting block `block` (see {@link PostingEntries}); do not mutate. */
  postings(dimension: number, block: number): readonly number[] {
    this.applyDeferredPostings();
    return this.postingBlock(dimension, block);
  }

  /** Number of posting blocks that can hold entries (slots are below `nextSlot`). */
  get postingBlockCount(): number {
    return Math.ceil(this.nextSlotValue / SLOTS_PER_POSTING_BLOCK);
  }

  /**
   * The root bundle of `directory` ('/' for the whole engram; a directory of at most `rootDepth`
   * components otherwise). A copy: changing it does not change the index.
   */
  root(directory = '/'): BundleAccumulator {
    if (directory !== '/') checkPath(directory);
    return this.rootAccumulator(directory).clone();
  }

  /** Calls `visit` for every live file, in slot order. */
  forEachFile(visit: (file: IndexedFile) => void): void {
    let slot = 0;
    while (slot < this.nextSlotValue) {
      const owner = this.slotOwner(slot);
      if (owner === 0) {
        slot += 1;
        continue;
      }
      const file = this.file(owner);
      invariant(file !== undefined && file.firstSlot === slot, `slot ${slot} starts file ${owner}`);
      visit(file);
      slot += Math.max(1, file.chunkLengths.length);
    }
  }

  /**
   * Makes the changes since the last flush durable: writes them as one log row (`log:<n>`), and
   * every {@link SimilarityIndexOptions.checkpointEveryCommits} log rows or
   * {@link SimilarityIndexOptions.checkpointEveryChunks} changed chunks runs {@link checkpoint}.
   * Run it inside the storage transaction of the commit that made the changes; after a rollback
   * call {@link discardCache}.
   *
   * @example
   * ```ts
   * db.transaction(() => { writeCommitRows(); index.addFile(path, chunks); index.flush(); })();
   * ```
   */
  flush(): void {
    if (this.pendingOperations.length > 0) this.flushWithoutCheckpoint();
    if (this.logNext - this.logFirst >= this.checkpointEveryCommits || this.chunksSinceCheckpoint >= this.checkpointEveryChunks) this.checkpoint();
    if (this.metaDirty) this.writeMeta();
  }

  /**
   * Writes every changed base row (postings, slots, files, paths, roots) and deletes the log rows
   * they absorb, so that opening the index replays nothing. Run it inside a storage transaction;
   * unflushed operations are logged first.
   *
   * @example
   * ```ts
   * db.transaction(() => index.checkpoint())();
   * ```
   */
  checkpoint(): void {
    // Unlogged operations are already applied to the cached rows written below.
    this.pendingOperations = [];
    this.applyDeferredPostings();
    for (const cacheKey of this.dirtyPostings) {
      const entries = this.postingCache.get(cacheKey);
      const key = postingRowKey(cacheKey % FINGERPRINT_DIMENSION, Math.floor(cacheKey / FINGERPRINT_DIMENSION));
      invariant(entries !== undefined, 'dirty posting block is cached');
      if (entries.length === 0) {
        this.storage.delete(key);
        // Fold the tombstone: a rewrite leaves every (dimension, block) of the old slots empty,
        // and keeping them cached grew the maps (and GC work) with every version of a file.
        this.dropRow(this.postingAccount, cacheKey, entries);
      } else {
        this.storage.put(key, encodePostings(entries));
        // Appends do not touch (they are the indexing hot path): a list changed since the last
        // checkpoint counts as used now, not when it was first read.
        if (this.bounded) this.touch(cacheKey * 4 + RECENCY_POSTING);
      }
    }
    this.dirtyPostings.clear();
    this.dirtyPostingMarks.clear();
    for (const block of this.dirtyDirectory) {
      const owners = this.directoryCache.get(block);
      invariant(owners !== undefined, 'dirty directory block is cached');
      const key = `slots:${block}`;
      if (owners.every((owner) => owner === 0)) {
        this.storage.delete(key);
        this.dropRow(this.directoryAccount, block, owners);
      } else this.storage.put(key, encodeDirectory(owners));
    }
    this.dirtyDirectory.clear();
    for (const fileId of this.dirtyFiles) {
      const file = this.fileCache.get(fileId);
      const key = `file:${fileId}`;
      if (file === null || file === undefined) {
        this.storage.delete(key);
        if (file === null) this.dropRow(this.fileAccount, fileId, file);
      } else this.storage.put(key, encodeFile(file));
    }
    this.dirtyFiles.clear();
    for (const path of this.dirtyPaths) {
      const segmentIds = this.pathCache.get(path);
      const key = `path:${path}`;
      if (segmentIds === null || segmentIds === undefined) this.storage.delete(key);
      else {
        invariant(segmentIds.every((fileId) => fileId !== 0), `segments of ${path} are contiguous`);
        this.storage.put(key, encodeVarints([segmentIds.length, ...segmentIds]));
      }
    }
    this.dirtyPaths.clear();
    for (const directory of this.dirtyRoots) {
      const root = this.rootCache.get(directory);
      invariant(root !== undefined, 'dirty root is cached');
      const key = `root:${directory}`;
      if (root.vectorCount === 0 && root.counts.every((count) => count === 0)) this.storage.delete(key);
      else this.storage.put(key, root.serialize());
    }
    this.dirtyRoots.clear();
    for (let sequence = this.logFirst; sequence < this.logNext; sequence += 1) this.storage.delete(`log:${sequence}`);
    this.logFirst = this.logNext;
    this.base = { nextSlot: this.nextSlotValue, nextFileId: this.nextFileId, liveSlots: this.liveSlots, liveFiles: this.liveFiles };
    this.chunksSinceCheckpoint = 0;
    this.writeMeta();
    // Every row is clean now: the budget holds again.
    this.sweepEvery = 0;
    if (this.cachedBytes > this.cacheBudget) this.sweep(undefined);
  }

  /**
   * Forgets every cached row and unflushed change and reloads from the storage (after a
   * rolled-back transaction, or when another process has committed to the same engram).
   */
  discardCache(): void {
    this.postingCache.clear();
    this.dirtyPostings.clear();
    this.dirtyPostingMarks.clear();
    this.deferredAdds.clear();
    this.deferredRemovals = [];
    this.directoryCache.clear();
    this.dirtyDirectory.clear();
    this.fileCache.clear();
    this.dirtyFiles.clear();
    this.pathCache.clear();
    this.dirtyPaths.clear();
    this.rootCache.clear();
    this.dirtyRoots.clear();
    for (const account of this.accounts) account.bytes = 0;
    this.cachedBytes = 0;
    this.sweepEvery = 0;
    this.recency.clear();
    this.oldest = null;
    this.newest = null;
    this.lastTouched = NO_KEY;
    this.pendingOperations = [];
    this.load();
  }

  /**
   * Brings the cached rows up to date with the log rows another connection appended since this
   * cache last loaded, flushed or caught up, by replaying just those rows. Valid only when no
   * checkpoint ran in between: then the base rows this cache read are unchanged, and the new log
   * rows are everything that changed. Returns false when that does not hold (a checkpoint, unflushed
   * changes here, no index yet); then {@link discardCache} is the way back. Replaying a few log rows
   * is much cheaper than a reload, which replays the whole log and re-reads every base row it uses.
   *
   * @example
   * ```ts
   * if (!index.catchUp()) index.discardCache();
   * ```
   */
  catchUp(): boolean {
    if (this.pendingOperations.length > 0) return false;
    const row = this.storage.get('meta');
    if (row === undefined) return false;
    const meta = parseMeta(row);
    const base = this.base;
    if (
      meta.rootDepth !== this.rootDepthValue ||
      meta.logFirst !== this.logFirst ||
      meta.logNext < this.logNext ||
      meta.base.nextSlot !== base.nextSlot ||
      meta.base.nextFileId !== base.nextFileId ||
      meta.base.liveSlots !== base.liveSlots ||
      meta.base.liveFiles !== base.liveFiles
    ) {
      return false;
    }
    for (let sequence = this.logNext; sequence < meta.logNext; sequence += 1) {
      const logRow = this.storage.get(`log:${sequence}`);
      if (logRow === undefined) throw new EmbrError('CORRUPT', `similarity index: log row ${sequence} is missing`, { what: 'similarity index log', sequence });
      this.replay(logRow, sequence);
    }
    this.logNext = meta.logNext;
    this.metaDirty = false;
    return true;
  }

  /** Number of log rows not yet absorbed by a checkpoint. */
  get pendingLogRows(): number {
    return this.logNext - this.logFirst;
  }

  /** Chunks added or removed since the last checkpoint (the work a checkpoint or an open replays). */
  get changedChunksSinceCheckpoint(): number {
    return this.chunksSinceCheckpoint;
  }

  private flushWithoutCheckpoint(): void {
    this.storage.put(`log:${this.logNext}`, concatenate([Uint8Array.of(INDEX_FORMAT_VERSION), ...this.pendingOperations]));
    this.pendingOperations = [];
    this.logNext += 1;
    this.metaDirty = true;
  }

  /** Reads `meta` and replays the log rows on top of the base rows. */
  private load(): void {
    const meta = this.storage.get('meta');
    this.metaDirty = meta === undefined;
    this.chunksSinceCheckpoint = 0;
    if (meta === undefined) {
      this.base = { nextSlot: 0, nextFileId: 1, liveSlots: 0, liveFiles: 0 };
      this.logFirst = 0;
      this.logNext = 0;
    } else {
      const parsed = parseMeta(meta);
      this.rootDepthValue = parsed.rootDepth;
      this.logFirst = parsed.logFirst;
      this.logNext = parsed.logNext;
      this.base = parsed.base;
    }
    this.nextSlotValue = this.base.nextSlot;
    this.nextFileId = this.base.nextFileId;
    this.liveSlots = this.base.liveSlots;
    this.liveFiles = this.base.liveFiles;
    for (let sequence = this.logFirst; sequence < this.logNext; sequence += 1) {
      const row = this.storage.get(`log:${sequence}`);
      if (row === undefined) throw new EmbrError('CORRUPT', `similarity index: log row ${sequence} is missing`, { what: 'similarity index log', sequence });
      this.replay(row, sequence);
    }
  }

  private replay(row: Uint8Array, sequence: number): void {
    const reader = new VarintReader(row, `similarity index log:${sequence}`);
    const version = reader.readByte();
    if (version !== INDEX_FORMAT_VERSION) reader.corrupt(`unknown log format version ${version}`);
    while (reader.offset < row.length) {
      const kind = reader.readByte();
      const path = readPath(reader);
      const segment = reader.readVarint();
      if (kind === OPERATION_ADD_SEGMENT) {
        const baseOffset = reader.readVarint() * 0x1_0000_0000 + reader.readVarint();
        this.applyAddSegment(path, segment, baseOffset, readChunks(reader));
      } else if (kind === OPERATION_REMOVE_SEGMENT) {
        if (!this.applyRemoveSegment(path, segment)) reader.corrupt(`removes segment ${segment} of ${path}, which is not indexed`);
      } else reader.corrupt(`unknown operation ${kind}`);
    }
  }

  private writeMeta(): void {
    const { nextSlot, nextFileId, liveSlots, liveFiles } = this.base;
    this.storage.put('meta', encodeVarints([INDEX_FORMAT_VERSION, FINGERPRINT_DIMENSION, this.rootDepthValue, this.logFirst, this.logNext, nextSlot, nextFileId, liveSlots, liveFiles]));
    this.metaDirty = false;
  }

  /** File ids of the segments of `path` (every entry non-zero), or undefined when not indexed. */
  private segmentIdsOf(path: string): number[] | undefined {
    let segmentIds = this.pathCache.get(path);
    if (segmentIds === undefined) {
      const row = this.storage.get(`path:${path}`);
      if (row === undefined) segmentIds = null;
      else {
        const reader = new VarintReader(row, `similarity index path row ${path}`);
        const segmentCount = reader.readVarint();
        if (segmentCount === 0 || segmentCount > row.length) reader.corrupt(`segment count ${segmentCount}`);
        // Sized up front: a pushed-to array reserves 17 slots, tripling a one-segment path's row.
        segmentIds = new Array<number>(segmentCount);
        for (let segment = 0; segment < segmentCount; segment += 1) {
          const fileId = reader.readVarint();
          if (fileId === 0) reader.corrupt(`segment ${segment} missing`);
          segmentIds[segment] = fileId;
        }
        reader.expectEnd();
      }
      this.insertRow(this.pathAccount, path, segmentIds);
    } else if (this.bounded) this.touch(path);
    return segmentIds ?? undefined;
  }

  private directoryBlock(block: number): Uint32Array {
    let owners = this.directoryCache.get(block);
    if (owners === undefined) {
      const row = block * SLOTS_PER_DIRECTORY_BLOCK >= this.base.nextSlot ? undefined : this.storage.get(`slots:${block}`);
      owners = row === undefined ? new Uint32Array(SLOTS_PER_DIRECTORY_BLOCK) : decodeDirectory(row, block);
      this.insertRow(this.directoryAccount, block, owners);
    } else if (this.bounded) this.touch(block * 4 + RECENCY_DIRECTORY);
    return owners;
  }

  private setSlotOwner(slot: number, fileId: number): void {
    const block = Math.floor(slot / SLOTS_PER_DIRECTORY_BLOCK);
    this.directoryBlock(block)[slot % SLOTS_PER_DIRECTORY_BLOCK] = fileId;
    this.dirtyDirectory.add(block);
  }

  private postingBlock(dimension: number, block: number): PostingEntries {
    const cacheKey = block * FINGERPRINT_DIMENSION + dimension;
    let entries = this.postingCache.get(cacheKey);
    if (entries === undefined) {
      const key = postingRowKey(dimension, block);
      // Base rows hold only slots below the checkpoint's nextSlot: a block past it has no row.
      const row = block * SLOTS_PER_POSTING_BLOCK >= this.base.nextSlot ? undefined : this.storage.get(key);
      entries = row === undefined ? [] : decodePostings(row, key);
      this.insertRow(this.postingAccount, cacheKey, entries);
    } else if (this.bounded) this.touch(cacheKey * 4 + RECENCY_POSTING);
    return entries;
  }

  private postingMarks(block: number): Uint8Array {
    let marks = this.dirtyPostingMarks.get(block);
    if (marks === undefined) {
      marks = new Uint8Array(FINGERPRINT_DIMENSION);
      this.dirtyPostingMarks.set(block, marks);
    }
    return marks;
  }

  /**
   * Applies the deferred posting changes: removals first (they cut slots applied before), then the
   * adds in slot order (every added slot is above every applied one, so appending keeps lists sorted).
   */
  private applyDeferredPostings(): void {
    if (this.deferredRemovals.length > 0) {
      const removals = this.deferredRemovals;
      this.deferredRemovals = [];
      // Grouped by posting block, so each (dimension, block) list is filtered once for all the
      // removals in it: cutting it once per removed segment moved its tail once per segment, and
      // a batch of scattered writes removes every segment of a large file (256 per 256 MiB).
      const byBlock = new Map<number, Array<{ firstSlot: number; fingerprints: readonly SparseVector[] }>>();
      for (const removal of removals) {
        const endSlot = removal.firstSlot + removal.fingerprints.length;
        for (let block = Math.floor(removal.firstSlot / SLOTS_PER_POSTING_BLOCK); block * SLOTS_PER_POSTING_BLOCK < endSlot; block += 1) {
          const inBlock = byBlock.get(block);
          if (inBlock === undefined) byBlock.set(block, [removal]);
          else inBlock.push(removal);
        }
      }
      for (const [block, inBlock] of byBlock) this.removeSlotsInBlock(block, inBlock);
    }
    if (this.deferredAdds.size > 0) {
      for (const { firstSlot, fingerprints } of this.deferredAdds.values()) {
        for (let chunkIndex = 0; chunkIndex < fingerprints.length; chunkIndex += 1) {
          this.appendPostings(fingerprints[chunkIndex].positive, firstSlot + chunkIndex, 0);
          this.appendPostings(fingerprints[chunkIndex].negative, firstSlot + chunkIndex, 1);
        }
      }
      this.deferredAdds.clear();
    }
    // The lists grew (all of them dirty now): make room among the clean rows.
    if (this.cachedBytes > this.cacheBudget && this.insertedSinceSweep >= this.sweepEvery) this.sweep(undefined);
  }

  private appendPostings(dimensions: Uint32Array, slot: number, negativeBit: 0 | 1): void {
    const block = Math.floor(slot / SLOTS_PER_POSTING_BLOCK);
    this.postingAccount.bytes += POSTING_ENTRY_BYTES * dimensions.length;
    this.cachedBytes += POSTING_ENTRY_BYTES * dimensions.length;
    const entry = (slot - block * SLOTS_PER_POSTING_BLOCK) * 2 + negativeBit;
    const marks = this.postingMarks(block);
    for (let index = 0; index < dimensions.length; index += 1) {
      const dimension = dimensions[index];
      const entries = this.postingCache.get(block * FINGERPRINT_DIMENSION + dimension) ?? this.postingBlock(dimension, block);
      // New slots are above every slot handed out before, so appending keeps the order.
      invariant(entries.length === 0 || entries[entries.length - 1] < entry, 'posting entries stay increasing');
      entries.push(entry);
      if (marks[dimension] === 0) {
        marks[dimension] = 1;
        this.dirtyPostings.add(block * FINGERPRINT_DIMENSION + dimension);
      }
    }
  }

  /**
   * Removes, from posting block `block`, the postings of every slot of `removals` that lies in
   * it (each removal: the contiguous slots `firstSlot ..` holding `fingerprints`). Each touched
   * (dimension, block) list is filtered once, from its first removed entry on, and must lose
   * exactly the entries the removed fingerprints put there (an index that disagrees with its
   * file rows is a broken invariant, not a condition to work around).
   */
  private removeSlotsInBlock(block: number, removals: ReadonlyArray<{ firstSlot: number; fingerprints: readonly SparseVector[] }>): void {
    const blockBase = block * SLOTS_PER_POSTING_BLOCK;
    const removed = new Uint8Array(SLOTS_PER_POSTING_BLOCK);
    // Expected entries per dimension; only the dimensions the fingerprints use are visited.
    const expected = new Uint32Array(FINGERPRINT_DIMENSION);
    const touched: number[] = [];
    const tally = (dimensions: Uint32Array): void => {
      for (let index = 0; index < dimensions.length; index += 1) {
        if (expected[dimensions[index]]++ === 0) touched.push(dimensions[index]);
      }
    };
    let lowSlot = SLOTS_PER_POSTING_BLOCK;
    for (const { firstSlot, fingerprints } of removals) {
      const startInBlock = Math.max(firstSlot, blockBase);
      const endInBlock = Math.min(firstSlot + fingerprints.length, blockBase + SLOTS_PER_POSTING_BLOCK);
      if (startInBlock - blockBase < lowSlot) lowSlot = startInBlock - blockBase;
      for (let slot = startInBlock; slot < endInBlock; slot += 1) {
        invariant(removed[slot - blockBase] === 0, `slot ${slot} is removed once`);
        removed[slot - blockBase] = 1;
        const { positive, negative } = fingerprints[slot - firstSlot];
        tally(positive);
        tally(negative);
      }
    }
    const lowEntry = lowSlot * 2;
    const marks = this.postingMarks(block);
    for (const dimension of touched) {
      const count = expected[dimension];
      const cacheKey = block * FINGERPRINT_DIMENSION + dimension;
      const entries = this.postingCache.get(cacheKey) ?? this.postingBlock(dimension, block);
      // In place: entries of removed slots are dropped, the others move down.
      const length = entries.length;
      let to = lowerBound(entries, lowEntry);
      let found = 0;
      for (let from = to; from < length; from += 1) {
        const entry = entries[from];
        // entry >> 1 is the slot within the block (the low bit is the sign).
        if (removed[entry >> 1] === 1) found += 1;
        else {
          entries[to] = entry;
          to += 1;
        }
      }
      invariant(found === count, `removed slots of block ${block} are posted ${count} times under dimension ${dimension}, found ${found}`);
      entries.length = to;
      this.postingAccount.bytes -= POSTING_ENTRY_BYTES * found;
      this.cachedBytes -= POSTING_ENTRY_BYTES * found;
      if (marks[dimension] === 0) {
        marks[dimension] = 1;
        this.dirtyPostings.add(cacheKey);
      }
    }
  }

  private rootAccumulator(directory: string): BundleAccumulator {
    let root = this.rootCache.get(directory);
    if (root === undefined) {
      const row = this.storage.get(`root:${directory}`);
      root = row === undefined ? new BundleAccumulator(FINGERPRINT_DIMENSION) : BundleAccumulator.deserialize(row);
      if (root.dimension !== FINGERPRINT_DIMENSION) throw new EmbrError('CORRUPT', `similarity index root ${directory}: dimension ${root.dimension}`, { what: 'similarity index root', directory });
      this.insertRow(this.rootAccount, directory, root);
    } else if (this.bounded) this.touch(`\0${directory}`);
    return root;
  }

  /** Moves a cached row to the newest end of the recency order. */
  private touch(recencyKey: number | string): void {
    // Below half the budget no row can be evicted before the cache has grown past that half
    // again, and from there on every hit reorders: the order that matters at eviction time is
    // kept, and a cache that fits (the common case) pays nothing per hit. A search of the query
    // bench's 103,673-chunk index paid ~0.5 ms per query for reordering on every hit.
    if (this.cachedBytes < this.cacheBudget / 2) return;
    if (recencyKey === this.lastTouched) return;
    this.lastTouched = recencyKey;
    const node = this.recency.get(recencyKey);
    if (node === undefined || node === this.newest) return;
    this.unlink(node);
    this.linkNewest(node);
  }

  private linkNewest(node: RecencyNode): void {
    node.older = this.newest;
    node.newer = null;
    if (this.newest === null) this.oldest = node;
    else this.newest.newer = node;
    this.newest = node;
  }

  private unlink(node: RecencyNode): void {
    if (node.older === null) this.oldest = node.newer;
    else node.older.newer = node.newer;
    if (node.newer === null) this.newest = node.older;
    else node.newer.older = node.older;
  }

  /** Takes a row out of the recency order (evicted or dropped). */
  private forget(recencyKey: number | string): void {
    const node = this.recency.get(recencyKey);
    if (node === undefined) return;
    this.recency.delete(recencyKey);
    this.unlink(node);
  }

  /** Caches a row read from storage (clean) as the newest, then sweeps if over budget, sparing this row: its caller may be about to change it and mark it dirty. */
  private insertRow<K, V>(account: RowCache<K, V>, key: K, value: V): void {
    account.map.set(key, value);
    const bytes = account.sizeOf(key, value);
    account.bytes += bytes;
    this.cachedBytes += bytes;
    if (!this.bounded) return;
    const recencyKey = account.recencyKey(key);
    const node: RecencyNode = { key: recencyKey, older: null, newer: null };
    this.recency.set(recencyKey, node);
    this.linkNewest(node);
    this.lastTouched = recencyKey;
    this.insertedSinceSweep += bytes;
    if (this.cachedBytes > this.cacheBudget && this.insertedSinceSweep >= this.sweepEvery) this.sweep(recencyKey);
  }

  /** Caches a changed row (the caller marks it dirty next), replacing the cached one; sweeps like {@link insertRow}. */
  private putRow<K, V>(account: RowCache<K, V>, key: K, value: V): void {
    const old = account.map.get(key);
    if (old !== undefined) {
      const bytes = account.sizeOf(key, old);
      account.bytes -= bytes;
      this.cachedBytes -= bytes;
      if (this.bounded) this.forget(account.recencyKey(key));
    }
    this.insertRow(account, key, value);
  }

  private dropRow<K, V>(account: RowCache<K, V>, key: K, value: V): void {
    account.map.delete(key);
    const bytes = account.sizeOf(key, value);
    account.bytes -= bytes;
    this.cachedBytes -= bytes;
    if (this.bounded) this.forget(account.recencyKey(key));
  }

  /**
   * Evicts clean rows, least recently used first, until the cache is at {@link SWEEP_TARGET} of
   * the budget. Pinned (dirty) rows and the row `spare` stay. When they alone keep the cache
   * above the target, the next sweep waits for another eighth of the budget (not one per
   * inserted row); a checkpoint, which unpins every row, resets that.
   */
  private sweep(spare: number | string | undefined): void {
    const target = this.cacheBudget * SWEEP_TARGET;
    for (let node = this.oldest; node !== null && this.cachedBytes > target; ) {
      const recencyKey = node.key;
      // Read before the row may be unlinked.
      node = node.newer;
      if (recencyKey === spare) continue;
      if (typeof recencyKey === 'number') {
        const kind = recencyKey % 4;
        const key = (recencyKey - kind) / 4;
        if (kind === RECENCY_POSTING) this.evict(this.postingAccount, key, recencyKey);
        else if (kind === RECENCY_FILE) this.evict(this.fileAccount, key, recencyKey);
        else this.evict(this.directoryAccount, key, recencyKey);
      } else if (recencyKey.charCodeAt(0) === 0) this.evict(this.rootAccount, recencyKey.slice(1), recencyKey);
      else this.evict(this.pathAccount, recencyKey, recencyKey);
    }
    this.insertedSinceSweep = 0;
    this.sweepEvery = this.cachedBytes > target ? this.cacheBudget / 8 : 0;
  }

  private evict<K, V>(account: RowCache<K, V>, key: K, recencyKey: number | string): void {
    if (account.isPinned(key)) return;
    const value = account.map.get(key);
    invariant(value !== undefined, 'a row in the recency order is cached');
    account.map.delete(key);
    this.forget(recencyKey);
    const bytes = account.sizeOf(key, value);
    account.bytes -= bytes;
    this.cachedBytes -= bytes;
    this.evictionCount += 1;
  }

  /**
   * Figures of the row cache: estimated bytes (all rows, and the pinned ones), the budget, rows
   * per kind and evictions so far. Walks the dirty rows: for tests and diagnostics, not hot paths.
   *
   * @example
   * ```ts
   * index.cacheStats().bytes <= index.cacheStats().budget; // true right after a checkpoint
   * ```
   */
  cacheStats(): SimilarityIndexCacheStats {
    let pinnedBytes = 0;
    const pinned = <K, V>(account: RowCache<K, V>, keys: Iterable<K>): void => {
      for (const key of keys) {
        const value = account.map.get(key);
        if (value !== undefined) pinnedBytes += account.sizeOf(key, value);
      }
    };
    pinned(this.postingAccount, this.dirtyPostings);
    pinned(this.directoryAccount, this.dirtyDirectory);
    pinned(this.fileAccount, this.dirtyFiles);
    pinned(this.pathAccount, this.dirtyPaths);
    pinned(this.rootAccount, this.dirtyRoots);
    return {
      bytes: this.cachedBytes,
      pinnedBytes,
      budget: this.cacheBudget,
      entries: { postings: this.postingCache.size, directory: this.directoryCache.size, files: this.fileCache.size, paths: this.pathCache.size, roots: this.rootCache.size },
      evictions: this.evictionCount,
    };
  }

  /** The root accumulators a file at `path` contributes to, marked dirty. */
  private rootsOf(path: string): BundleAccumulator[] {
    const directories = ['/'];
    const components = path.split('/').slice(1, -1);
    for (let depth = 1; depth <= Math.min(this.rootDepthValue, components.length); depth += 1) {
      directories.push(`/${components.slice(0, depth).join('/')}`);
    }
    return directories.map((directory) => {
      this.dirtyRoots.add(directory);
      return this.rootAccumulator(directory);
    });
  }
}

/** One row cache and its byte account. */
interface RowCache<K, V> {
  readonly map: Map<K, V>;
  /** True for a row changed since the last checkpoint: storage does not hold it, so it stays. */
  readonly isPinned: (key: K) => boolean;
  /** Estimated heap bytes of a row. */
  readonly sizeOf: (key: K, value: V) => number;
  /** The row's key in the recency order: numbers for numeric kinds (key * 4 + kind), strings for paths and roots. */
  readonly recencyKey: (key: K) => number | string;
  bytes: number;
}

/** Matches no cache key. */
const NO_KEY = Symbol('no key');

/** A row's place in the recency order. */
interface RecencyNode {
  readonly key: number | string;
  older: RecencyNode | null;
  newer: RecencyNode | null;
}

/** Kinds of numeric recency keys (key * 4 + kind). */
const RECENCY_POSTING = 0;
const RECENCY_FILE = 1;
const RECENCY_DIRECTORY = 2;

/** Estimated heap bytes of a cached `file:` row (see ENTRY_OVERHEAD_BYTES). */
function fileBytes(file: IndexedFile | null): number {
  if (file === null) return ENTRY_OVERHEAD_BYTES;
  const chunkCount = file.chunkLengths.length;
  // The record, its path, and three arrays of one number or pointer per chunk.
  let bytes = ENTRY_OVERHEAD_BYTES + 300 + file.path.length + 3 * (32 + 8 * chunkCount);
  for (let index = 0; index < chunkCount; index += 1) {
    const fingerprint = file.fingerprints[index];
    bytes += VECTOR_OVERHEAD_BYTES + 4 * (fingerprint.positive.length + fingerprint.negative.length);
  }
  return bytes;
}

/** The `meta` row: root depth, log range and the counters as of the last checkpoint. */
function parseMeta(row: Uint8Array): {
  rootDepth: number;
  logFirst: number;
  logNext: number;
  base: { nextSlot: number; nextFileId: number; liveSlots: number; liveFiles: number };
} {
  const reader = new VarintReader(row, 'similarity index meta');
  const version = reader.readVarint();
  if (version !== INDEX_FORMAT_VERSION) reader.corrupt(`unknown index format version ${version}`);
  const dimension = reader.readVarint();
  if (dimension !== FINGERPRINT_DIMENSION) reader.corrupt(`fingerprint dimension ${dimension} is not ${FINGERPRINT_DIMENSION}`);
  const rootDepth = reader.readVarint();
  const logFirst = reader.readVarint();
  const logNext = reader.readVarint();
  if (logNext < logFirst) reader.corrupt('log range reversed');
  const base = { nextSlot: reader.readVarint(), nextFileId: reader.readVarint(), liveSlots: reader.readVarint(), liveFiles: reader.readVarint() };
  reader.expectEnd();
  return { rootDepth, logFirst, logNext, base };
}

function postingRowKey(dimension: number, block: number): string {
  return `post:${dimension}:${block}`;
}

/** Refuses paths the index cannot key: they must be absolute, without NUL, and not end in '/'. */
function checkPath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0') || (path.length > 1 && path.endsWith('/'))) {
    throw new TypeError(`similarity index: path must be absolute without NUL or trailing '/', got ${JSON.stringify(path)}`);
  }
}

function makeFile(fileId: number, path: string, segment: number, firstSlot: number, baseOffset: number, chunkLengths: number[], fingerprints: SparseVector[]): IndexedFile {
  const chunkOffsets: number[] = [];
  let byteLength = 0;
  let maxChunkBytes = 0;
  for (const length of chunkLengths) {
    chunkOffsets.push(baseOffset + byteLength);
    byteLength += length;
    if (length > maxChunkBytes) maxChunkBytes = length;
  }
  return { fileId, path, segment, firstSlot, baseOffset, chunkOffsets, chunkLengths, fingerprints, byteLength, maxChunkBytes };
}

function checkChunks(chunks: readonly IndexedChunk[]): void {
  if (!Array.isArray(chunks)) throw new TypeError('chunks must be an array');
  for (const chunk of chunks) {
    if (chunk.fingerprint.dimension !== FINGERPRINT_DIMENSION) throw new RangeError(`fingerprint dimension ${chunk.fingerprint.dimension} is not ${FINGERPRINT_DIMENSION}`);
    if (!Number.isInteger(chunk.byteLength) || chunk.byteLength < 0) throw new RangeError(`chunk byteLength must be a non-negative integer, got ${chunk.byteLength}`);
  }
}

/** True when a stored segment already holds exactly these chunks at this offset. */
function sameSegment(old: IndexedFile, baseOffset: number, chunks: readonly IndexedChunk[]): boolean {
  if (old.baseOffset !== baseOffset || old.chunkLengths.length !== chunks.length) return false;
  for (let index = 0; index < chunks.length; index += 1) {
    if (old.chunkLengths[index] !== chunks[index].byteLength) return false;
    if (old.fingerprints[index] !== chunks[index].fingerprint && !old.fingerprints[index].equals(chunks[index].fingerprint)) return false;
  }
  return true;
}

/** Index of the first entry >= value in a sorted array. */
function lowerBound(entries: readonly number[], value: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle] < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

function encodeVarints(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.reduce((sum, value) => sum + varintByteLength(value), 0));
  let offset = 0;
  for (const value of values) offset = writeVarint(out, offset, value);
  return out;
}

/** Posting row: varint count, then count varints: the first entry, then each entry minus the previous. */
function encodePostings(entries: readonly number[]): Uint8Array {
  let byteLength = varintByteLength(entries.length);
  let previous = 0;
  for (const entry of entries) {
    byteLength += varintByteLength(entry - previous);
    previous = entry;
  }
  const out = new Uint8Array(byteLength);
  let offset = writeVarint(out, 0, entries.length);
  previous = 0;
  for (const entry of entries) {
    offset = writeVarint(out, offset, entry - previous);
    previous = entry;
  }
  return out;
}

function decodePostings(row: Uint8Array, key: string): PostingEntries {
  const reader = new VarintReader(row, `similarity index ${key}`);
  const count = reader.readVarint();
  if (count > row.length) reader.corrupt('more entries than bytes');
  const entries: PostingEntries = new Array<number>(count);
  let previous = 0;
  for (let index = 0; index < count; index += 1) {
    const delta = reader.readVarint();
    if (index > 0 && delta === 0) reader.corrupt('entries not strictly increasing');
    previous += delta;
    if (previous >= SLOTS_PER_POSTING_BLOCK * 2) reader.corrupt('entry beyond its block');
    entries[index] = previous;
  }
  reader.expectEnd();
  return entries;
}

/** Directory row: runs of equal owners, varint runCount then runCount x { varint fileId, varint runLength }. */
function encodeDirectory(owners: Uint32Array): Uint8Array {
  const values: number[] = [];
  let runStart = 0;
  for (let slot = 1; slot <= owners.length; slot += 1) {
    if (slot === owners.length || owners[slot] !== owners[runStart]) {
      values.push(owners[runStart], slot - runStart);
      runStart = slot;
    }
  }
  return encodeVarints([values.length / 2, ...values]);
}

function decodeDirectory(row: Uint8Array, block: number): Uint32Array {
  const reader = new VarintReader(row, `similarity index slots:${block}`);
  const owners = new Uint32Array(SLOTS_PER_DIRECTORY_BLOCK);
  const runCount = reader.readVarint();
  let slot = 0;
  for (let run = 0; run < runCount; run += 1) {
    const owner = reader.readVarint();
    const length = reader.readVarint();
    if (length === 0 || slot + length > owners.length) reader.corrupt('run outside the block');
    owners.fill(owner, slot, slot + length);
    slot += length;
  }
  if (slot !== owners.length) reader.corrupt('runs do not cover the block');
  reader.expectEnd();
  return owners;
}

function concatenate(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Log operations. Add segment: u8 1, varint pathBytes, path (UTF-8), varint segment, varint
 * baseOffset / 2^32, varint baseOffset % 2^32, varint chunkCount, per chunk varint byteLength +
 * vector. Remove segment: u8 2, varint pathBytes, path, varint segment.
 */
function encodeAddOperation(path: string, segment: number, baseOffset: number, chunks: readonly IndexedChunk[]): Uint8Array {
  const pathBytes = textEncoder.encode(path);
  const offsetHigh = Math.floor(baseOffset / 0x1_0000_0000);
  const offsetLow = baseOffset % 0x1_0000_0000;
  let byteLength = 1 + varintByteLength(pathBytes.length) + pathBytes.length + varintByteLength(segment) + varintByteLength(offsetHigh) + varintByteLength(offsetLow) + varintByteLength(chunks.length);
  for (const chunk of chunks) byteLength += varintByteLength(chunk.byteLength) + serializedVectorByteLength(chunk.fingerprint);
  const out = new Uint8Array(byteLength);
  out[0] = OPERATION_ADD_SEGMENT;
  let offset = writeVarint(out, 1, pathBytes.length);
  out.set(pathBytes, offset);
  offset = writeVarint(out, offset + pathBytes.length, segment);
  offset = writeVarint(out, offset, offsetHigh);
  offset = writeVarint(out, offset, offsetLow);
  offset = writeVarint(out, offset, chunks.length);
  for (const chunk of chunks) {
    offset = writeVarint(out, offset, chunk.byteLength);
    offset = writeVector(chunk.fingerprint, out, offset);
  }
  invariant(offset === out.length, 'log operation length');
  return out;
}

function encodeRemoveOperation(path: string, segment: number): Uint8Array {
  const pathBytes = textEncoder.encode(path);
  const out = new Uint8Array(1 + varintByteLength(pathBytes.length) + pathBytes.length + varintByteLength(segment));
  out[0] = OPERATION_REMOVE_SEGMENT;
  const offset = writeVarint(out, 1, pathBytes.length);
  out.set(pathBytes, offset);
  writeVarint(out, offset + pathBytes.length, segment);
  return out;
}

function readPath(reader: VarintReader): string {
  const pathLength = reader.readVarint();
  if (pathLength > reader.bytes.length - reader.offset) reader.corrupt('truncated path');
  let path: string;
  try {
    path = textDecoder.decode(reader.bytes.subarray(reader.offset, reader.offset + pathLength));
  } catch {
    return reader.corrupt('path is not UTF-8');
  }
  reader.offset += pathLength;
  return path;
}

function readChunks(reader: VarintReader): IndexedChunk[] {
  const chunkCount = reader.readVarint();
  if (chunkCount > reader.bytes.length - reader.offset) reader.corrupt('more chunks than bytes');
  const chunks: IndexedChunk[] = [];
  for (let index = 0; index < chunkCount; index += 1) {
    const byteLength = reader.readVarint();
    const { vector, nextOffset } = readVector(reader.bytes, reader.offset);
    if (vector.dimension !== FINGERPRINT_DIMENSION) reader.corrupt(`fingerprint dimension ${vector.dimension}`);
    reader.offset = nextOffset;
    chunks.push({ fingerprint: vector, byteLength });
  }
  return chunks;
}

/** File row: u8 version, varint pathBytes, path (UTF-8), varint segment, varint baseOffset / 2^32, varint baseOffset % 2^32, varint firstSlot, varint chunkCount, then per chunk varint byteLength + vector (vsa format). */
function encodeFile(file: IndexedFile): Uint8Array {
  const pathBytes = textEncoder.encode(file.path);
  const offsetHigh = Math.floor(file.baseOffset / 0x1_0000_0000);
  const offsetLow = file.baseOffset % 0x1_0000_0000;
  let byteLength = 1 + varintByteLength(pathBytes.length) + pathBytes.length + varintByteLength(file.segment) + varintByteLength(offsetHigh) + varintByteLength(offsetLow) +
    varintByteLength(file.firstSlot) + varintByteLength(file.chunkLengths.length);
  for (let index = 0; index < file.chunkLengths.length; index += 1) {
    byteLength += varintByteLength(file.chunkLengths[index]) + serializedVectorByteLength(file.fingerprints[index]);
  }
  const out = new Uint8Array(byteLength);
  out[0] = INDEX_FORMAT_VERSION;
  let offset = writeVarint(out, 1, pathBytes.length);
  out.set(pathBytes, offset);
  offset = writeVarint(out, offset + pathBytes.length, file.segment);
  offset = writeVarint(out, offset, offsetHigh);
  offset = writeVarint(out, offset, offsetLow);
  offset = writeVarint(out, offset, file.firstSlot);
  offset = writeVarint(out, offset, file.chunkLengths.length);
  for (let index = 0; index < file.chunkLengths.length; index += 1) {
    offset = writeVarint(out, offset, file.chunkLengths[index]);
    offset = writeVector(file.fingerprints[index], out, offset);
  }
  invariant(offset === out.length, 'file row length');
  return out;
}

function decodeFile(fileId: number, row: Uint8Array): IndexedFile {
  const reader = new VarintReader(row, `similarity index file:${fileId}`);
  const version = reader.readByte();
  if (version !== INDEX_FORMAT_VERSION) reader.corrupt(`unknown file row version ${version}`);
  const path = readPath(reader);
  const segment = reader.readVarint();
  const baseOffset = reader.readVarint() * 0x1_0000_0000 + reader.readVarint();
  const firstSlot = reader.readVarint();
  const chunks = readChunks(reader);
  reader.expectEnd();
  return makeFile(fileId, path, segment, firstSlot, baseOffset, chunks.map((chunk) => chunk.byteLength), chunks.map((chunk) => chunk.fingerprint));
}
