/**
 * The similarity index (issue 6): an inverted index from fingerprint dimensions to the chunks
 * that hold them, kept as rows of an {@link IndexStorage} so the store can persist it in SQLite
 * and update it in the same transaction as each commit. Format version {@link INDEX_FORMAT_VERSION}.
 *
 * Model. Every indexed file is a list of chunks, each with a fingerprint ({@link chunkFingerprint})
 * and a byte length. Each chunk occupies one *slot*, a uint32 handed out in increasing order and
 * never reused, so a file's chunks are the contiguous slots `firstSlot .. firstSlot+chunkCount-1`.
 *
 * Rows (values in docs/design/query.md):
 * - `meta`: format version, dimension, root depth, the log range, and the counters (next slot,
 *   next file id, live slots, live files) as of the last checkpoint.
 * - `log:<n>`: the operations (add path with its chunks, remove path) of one flush. A commit
 *   writes one log row; every so many commits a *checkpoint* writes the base rows below and
 *   deletes the log rows. Opening the index replays the log on top of the base rows.
 * - `path:<path>` → file id. `file:<fileId>` → path, first slot, and per chunk its byte length
 *   and fingerprint (needed to un-index and un-bundle on removal, and for brute force).
 * - `slots:<slot / 4096>` → the file id owning each slot of that block (run-length coded; 0 = free).
 * - `post:<dimension>:<slot / 16384>` → the slots whose fingerprint is non-zero at `dimension`,
 *   with the sign, delta-varint coded. Only live slots appear: removal deletes the entries.
 * - `root:<directory>` → the majority-bundle counts ({@link BundleAccumulator}) of every chunk
 *   fingerprint under that directory: `/` is the engram root; directories down to `rootDepth`
 *   components get their own root. Removal subtracts exactly what adding added.
 *
 * Caching. Decoded rows are cached; {@link SimilarityIndex.flush} writes one log row (and at
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

/** A decoded `file:` row. */
export interface IndexedFile {
  readonly fileId: number;
  readonly path: string;
  readonly firstSlot: number;
  /** Byte offset of each chunk in the file. */
  readonly chunkOffsets: readonly number[];
  readonly chunkLengths: readonly number[];
  readonly fingerprints: readonly SparseVector[];
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
}

/** A checkpoint every 128 commits bounds the log that opening the index replays. */
export const DEFAULT_CHECKPOINT_EVERY_COMMITS = 128;

/** ... and every 8192 changed chunks (32 MiB of 4 KiB chunks) bounds it in work. */
export const DEFAULT_CHECKPOINT_EVERY_CHUNKS = 8192;

const OPERATION_ADD = 1;
const OPERATION_REMOVE = 2;

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
  private readonly directoryCache = new Map<number, Uint32Array>();
  private readonly dirtyDirectory = new Set<number>();
  private readonly fileCache = new Map<number, IndexedFile | null>();
  private readonly dirtyFiles = new Set<number>();
  private readonly pathCache = new Map<string, number | null>();
  private readonly dirtyPaths = new Set<string>();
  private readonly rootCache = new Map<string, BundleAccumulator>();
  private readonly dirtyRoots = new Set<string>();

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
   * Indexes `path` with the given chunks (replacing what was indexed under `path` before).
   *
   * @example
   * ```ts
   * index.addFile('/a.txt', [{ fingerprint: chunkFingerprint(chunk), byteLength: chunk.length }]);
   * ```
   */
  addFile(path: string, chunks: readonly IndexedChunk[]): void {
    checkPath(path);
    if (!Array.isArray(chunks)) throw new TypeError('addFile: chunks must be an array');
    for (const chunk of chunks) {
      if (chunk.fingerprint.dimension !== FINGERPRINT_DIMENSION) throw new RangeError(`addFile: fingerprint dimension ${chunk.fingerprint.dimension} is not ${FINGERPRINT_DIMENSION}`);
      if (!Number.isInteger(chunk.byteLength) || chunk.byteLength < 0) throw new RangeError(`addFile: chunk byteLength must be a non-negative integer, got ${chunk.byteLength}`);
    }
    if (this.nextSlotValue + chunks.length > 0xffff_ffff) throw new EmbrError('NO_SPACE', 'similarity index: slot ids exhausted; rebuild the index', { file: 'index' });
    this.pendingOperations.push(encodeOperation(OPERATION_ADD, path, chunks));
    this.applyAdd(path, chunks);
  }

  private applyAdd(path: string, chunks: readonly IndexedChunk[]): void {
    this.applyRemove(path);
    const fileId = this.nextFileId;
    this.nextFileId += 1;
    const firstSlot = this.nextSlotValue;
    this.nextSlotValue += chunks.length;
    const file = makeFile(fileId, path, firstSlot, chunks.map((chunk) => chunk.byteLength), chunks.map((chunk) => chunk.fingerprint));
    const roots = this.rootsOf(path);
    for (let chunkIndex = 0; chunkIndex < chunks.length; chunkIndex += 1) {
      const slot = firstSlot + chunkIndex;
      const fingerprint = chunks[chunkIndex].fingerprint;
      this.setSlotOwner(slot, fileId);
      this.appendPostings(fingerprint.positive, slot, 0);
      this.appendPostings(fingerprint.negative, slot, 1);
      for (const root of roots) root.add(fingerprint);
    }
    this.fileCache.set(fileId, file);
    this.dirtyFiles.add(fileId);
    this.pathCache.set(path, fileId);
    this.dirtyPaths.add(path);
    this.liveSlots += chunks.length;
    this.liveFiles += 1;
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
    if (this.fileIdOf(path) === undefined) return false;
    this.pendingOperations.push(encodeOperation(OPERATION_REMOVE, path, []));
    return this.applyRemove(path);
  }

  private applyRemove(path: string): boolean {
    const fileId = this.fileIdOf(path);
    if (fileId === undefined) return false;
    const file = this.file(fileId);
    invariant(file !== undefined && file.path === path, `file row ${fileId} belongs to path ${path}`);
    const roots = this.rootsOf(path);
    for (let chunkIndex = 0; chunkIndex < file.fingerprints.length; chunkIndex += 1) {
      const slot = file.firstSlot + chunkIndex;
      const fingerprint = file.fingerprints[chunkIndex];
      invariant(this.slotOwner(slot) === fileId, `slot ${slot} is owned by file ${fileId}`);
      this.setSlotOwner(slot, 0);
      this.removePostings(fingerprint.positive, slot, 0);
      this.removePostings(fingerprint.negative, slot, 1);
      for (const root of roots) root.subtract(fingerprint);
    }
    this.fileCache.set(fileId, null);
    this.dirtyFiles.add(fileId);
    this.pathCache.set(path, null);
    this.dirtyPaths.add(path);
    this.liveSlots -= file.fingerprints.length;
    this.liveFiles -= 1;
    this.chunksSinceCheckpoint += file.fingerprints.length;
    return true;
  }

  /** The decoded record of `path`, or undefined when it is not indexed. */
  fileByPath(path: string): IndexedFile | undefined {
    const fileId = this.fileIdOf(path);
    return fileId === undefined ? undefined : this.file(fileId);
  }

  /** The decoded record of a file id, or undefined for a removed or unknown id. */
  file(fileId: number): IndexedFile | undefined {
    let file = this.fileCache.get(fileId);
    if (file === undefined) {
      const row = this.storage.get(`file:${fileId}`);
      file = row === undefined ? null : decodeFile(fileId, row);
      this.fileCache.set(fileId, file);
    }
    return file ?? undefined;
  }

  /** The file id owning `slot`, or 0 when the slot is free. */
  slotOwner(slot: number): number {
    return this.directoryBlock(Math.floor(slot / SLOTS_PER_DIRECTORY_BLOCK))[slot % SLOTS_PER_DIRECTORY_BLOCK];
  }

  /** Posting entries of `dimension` in posting block `block` (see {@link PostingEntries}); do not mutate. */
  postings(dimension: number, block: number): readonly number[] {
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
    for (const cacheKey of this.dirtyPostings) {
      const entries = this.postingCache.get(cacheKey);
      const key = postingRowKey(cacheKey % FINGERPRINT_DIMENSION, Math.floor(cacheKey / FINGERPRINT_DIMENSION));
      invariant(entries !== undefined, 'dirty posting block is cached');
      if (entries.length === 0) this.storage.delete(key);
      else this.storage.put(key, encodePostings(entries));
    }
    this.dirtyPostings.clear();
    for (const block of this.dirtyDirectory) {
      const owners = this.directoryCache.get(block);
      invariant(owners !== undefined, 'dirty directory block is cached');
      const key = `slots:${block}`;
      if (owners.every((owner) => owner === 0)) this.storage.delete(key);
      else this.storage.put(key, encodeDirectory(owners));
    }
    this.dirtyDirectory.clear();
    for (const fileId of this.dirtyFiles) {
      const file = this.fileCache.get(fileId);
      const key = `file:${fileId}`;
      if (file === null || file === undefined) this.storage.delete(key);
      else this.storage.put(key, encodeFile(file));
    }
    this.dirtyFiles.clear();
    for (const path of this.dirtyPaths) {
      const fileId = this.pathCache.get(path);
      const key = `path:${path}`;
      if (fileId === null || fileId === undefined) this.storage.delete(key);
      else this.storage.put(key, encodeVarints([fileId]));
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
  }

  /**
   * Forgets every cached row and unflushed change and reloads from the storage (after a
   * rolled-back transaction, or when another process has committed to the same engram).
   */
  discardCache(): void {
    this.postingCache.clear();
    this.dirtyPostings.clear();
    this.directoryCache.clear();
    this.dirtyDirectory.clear();
    this.fileCache.clear();
    this.dirtyFiles.clear();
    this.pathCache.clear();
    this.dirtyPaths.clear();
    this.rootCache.clear();
    this.dirtyRoots.clear();
    this.pendingOperations = [];
    this.load();
  }

  /** Number of log rows not yet absorbed by a checkpoint. */
  get pendingLogRows(): number {
    return this.logNext - this.logFirst;
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
      const reader = new VarintReader(meta, 'similarity index meta');
      const version = reader.readVarint();
      if (version !== INDEX_FORMAT_VERSION) reader.corrupt(`unknown index format version ${version}`);
      const dimension = reader.readVarint();
      if (dimension !== FINGERPRINT_DIMENSION) reader.corrupt(`fingerprint dimension ${dimension} is not ${FINGERPRINT_DIMENSION}`);
      this.rootDepthValue = reader.readVarint();
      this.logFirst = reader.readVarint();
      this.logNext = reader.readVarint();
      if (this.logNext < this.logFirst) reader.corrupt('log range reversed');
      this.base = { nextSlot: reader.readVarint(), nextFileId: reader.readVarint(), liveSlots: reader.readVarint(), liveFiles: reader.readVarint() };
      reader.expectEnd();
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
      if (kind === OPERATION_ADD) this.applyAdd(path, readChunks(reader));
      else if (kind === OPERATION_REMOVE) {
        if (!this.applyRemove(path)) reader.corrupt(`removes ${path}, which is not indexed`);
      } else reader.corrupt(`unknown operation ${kind}`);
    }
  }

  private writeMeta(): void {
    const { nextSlot, nextFileId, liveSlots, liveFiles } = this.base;
    this.storage.put('meta', encodeVarints([INDEX_FORMAT_VERSION, FINGERPRINT_DIMENSION, this.rootDepthValue, this.logFirst, this.logNext, nextSlot, nextFileId, liveSlots, liveFiles]));
    this.metaDirty = false;
  }

  private fileIdOf(path: string): number | undefined {
    let fileId = this.pathCache.get(path);
    if (fileId === undefined) {
      const row = this.storage.get(`path:${path}`);
      if (row === undefined) fileId = null;
      else {
        const reader = new VarintReader(row, `similarity index path row ${path}`);
        fileId = reader.readVarint();
        reader.expectEnd();
      }
      this.pathCache.set(path, fileId);
    }
    return fileId ?? undefined;
  }

  private directoryBlock(block: number): Uint32Array {
    let owners = this.directoryCache.get(block);
    if (owners === undefined) {
      const row = this.storage.get(`slots:${block}`);
      owners = row === undefined ? new Uint32Array(SLOTS_PER_DIRECTORY_BLOCK) : decodeDirectory(row, block);
      this.directoryCache.set(block, owners);
    }
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
      const row = this.storage.get(key);
      entries = row === undefined ? [] : decodePostings(row, key);
      this.postingCache.set(cacheKey, entries);
    }
    return entries;
  }

  private appendPostings(dimensions: Uint32Array, slot: number, negativeBit: 0 | 1): void {
    const block = Math.floor(slot / SLOTS_PER_POSTING_BLOCK);
    const entry = (slot - block * SLOTS_PER_POSTING_BLOCK) * 2 + negativeBit;
    for (let index = 0; index < dimensions.length; index += 1) {
      const entries = this.postingBlock(dimensions[index], block);
      // New slots are above every slot handed out before, so appending keeps the order.
      invariant(entries.length === 0 || entries[entries.length - 1] < entry, 'posting entries stay increasing');
      entries.push(entry);
      this.dirtyPostings.add(block * FINGERPRINT_DIMENSION + dimensions[index]);
    }
  }

  private removePostings(dimensions: Uint32Array, slot: number, negativeBit: 0 | 1): void {
    const block = Math.floor(slot / SLOTS_PER_POSTING_BLOCK);
    const entry = (slot - block * SLOTS_PER_POSTING_BLOCK) * 2 + negativeBit;
    for (let index = 0; index < dimensions.length; index += 1) {
      const entries = this.postingBlock(dimensions[index], block);
      const position = lowerBound(entries, entry);
      invariant(entries[position] === entry, `slot ${slot} is posted under dimension ${dimensions[index]}`);
      entries.splice(position, 1);
      this.dirtyPostings.add(block * FINGERPRINT_DIMENSION + dimensions[index]);
    }
  }

  private rootAccumulator(directory: string): BundleAccumulator {
    let root = this.rootCache.get(directory);
    if (root === undefined) {
      const row = this.storage.get(`root:${directory}`);
      root = row === undefined ? new BundleAccumulator(FINGERPRINT_DIMENSION) : BundleAccumulator.deserialize(row);
      if (root.dimension !== FINGERPRINT_DIMENSION) throw new EmbrError('CORRUPT', `similarity index root ${directory}: dimension ${root.dimension}`, { what: 'similarity index root', directory });
      this.rootCache.set(directory, root);
    }
    return root;
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

function postingRowKey(dimension: number, block: number): string {
  return `post:${dimension}:${block}`;
}

/** Refuses paths the index cannot key: they must be absolute, without NUL, and not end in '/'. */
function checkPath(path: string): void {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0') || (path.length > 1 && path.endsWith('/'))) {
    throw new TypeError(`similarity index: path must be absolute without NUL or trailing '/', got ${JSON.stringify(path)}`);
  }
}

function makeFile(fileId: number, path: string, firstSlot: number, chunkLengths: number[], fingerprints: SparseVector[]): IndexedFile {
  const chunkOffsets: number[] = [];
  let byteLength = 0;
  let maxChunkBytes = 0;
  for (const length of chunkLengths) {
    chunkOffsets.push(byteLength);
    byteLength += length;
    if (length > maxChunkBytes) maxChunkBytes = length;
  }
  return { fileId, path, firstSlot, chunkOffsets, chunkLengths, fingerprints, byteLength, maxChunkBytes };
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

/** Log operation: u8 kind, varint pathBytes, path (UTF-8), and for an add: varint chunkCount, per chunk varint byteLength + vector. */
function encodeOperation(kind: number, path: string, chunks: readonly IndexedChunk[]): Uint8Array {
  const pathBytes = textEncoder.encode(path);
  let byteLength = 1 + varintByteLength(pathBytes.length) + pathBytes.length;
  if (kind === OPERATION_ADD) {
    byteLength += varintByteLength(chunks.length);
    for (const chunk of chunks) byteLength += varintByteLength(chunk.byteLength) + serializedVectorByteLength(chunk.fingerprint);
  }
  const out = new Uint8Array(byteLength);
  out[0] = kind;
  let offset = writeVarint(out, 1, pathBytes.length);
  out.set(pathBytes, offset);
  offset += pathBytes.length;
  if (kind === OPERATION_ADD) {
    offset = writeVarint(out, offset, chunks.length);
    for (const chunk of chunks) {
      offset = writeVarint(out, offset, chunk.byteLength);
      offset = writeVector(chunk.fingerprint, out, offset);
    }
  }
  invariant(offset === out.length, 'log operation length');
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

/** File row: u8 version, varint pathBytes, path (UTF-8), varint firstSlot, varint chunkCount, then per chunk varint byteLength + vector (vsa format). */
function encodeFile(file: IndexedFile): Uint8Array {
  const pathBytes = textEncoder.encode(file.path);
  let byteLength = 1 + varintByteLength(pathBytes.length) + pathBytes.length + varintByteLength(file.firstSlot) + varintByteLength(file.chunkLengths.length);
  for (let index = 0; index < file.chunkLengths.length; index += 1) {
    byteLength += varintByteLength(file.chunkLengths[index]) + serializedVectorByteLength(file.fingerprints[index]);
  }
  const out = new Uint8Array(byteLength);
  out[0] = INDEX_FORMAT_VERSION;
  let offset = writeVarint(out, 1, pathBytes.length);
  out.set(pathBytes, offset);
  offset = writeVarint(out, offset + pathBytes.length, file.firstSlot);
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
  const firstSlot = reader.readVarint();
  const chunks = readChunks(reader);
  reader.expectEnd();
  return makeFile(fileId, path, firstSlot, chunks.map((chunk) => chunk.byteLength), chunks.map((chunk) => chunk.fingerprint));
}
