/**
 * The engram's similarity index (src/query) wired into its commits and reads. The index is keyed
 * by inode (`/<ino>`), not by path: a rename or a hard link changes no index row, and a query
 * names files by resolving each matched inode to its live directory entries. Every commit that
 * changes a file's chunks updates the index in the same store transaction; a rollback or another
 * process's commit makes the cached index be reloaded. See docs/design/query.md §6.
 *
 * @example
 * ```ts
 * const similarity = new EngramSimilarity(chunkBytes);
 * store.write(start, (writer) => { ...; similarity.update(writer, context.changes); });
 * store.read((reader) => similarity.query(reader, 'needle', { k: 5 }));
 * ```
 */
import { EmbrError, invariant } from '../errors.js';
import type { StoreReader, StoreWriter } from '../store/api.js';
import { LIVE, ROOT_INO } from '../store/api.js';
import { FINGERPRINT_DIMENSION } from '../query/fingerprint.js';
import type { IndexedChunk } from '../query/similarity-index.js';
import { DEFAULT_CHECKPOINT_EVERY_CHUNKS, DEFAULT_CHECKPOINT_EVERY_COMMITS, SimilarityIndex } from '../query/similarity-index.js';
import type { SearchMatch } from '../query/search.js';
import { queryVector, rootScore, searchIndex, similarFiles } from '../query/search.js';
import { StoreIndexStorage } from '../query/store-storage.js';
import { MemoryIndexStorage } from '../query/storage.js';
import { SparseVector } from '../vsa/sparse.js';
import { fingerprintVector } from './encode.js';
import { PATH_MAX_BYTES } from './path.js';
import type { ContentDelta } from './content-delta.js';
import type { BundleAccumulator } from '../vsa/accumulator.js';
import type { QueryMatch, QueryResult } from './api.js';

/** Largest `k` a query accepts (results are one per file; more is a listing, not a search). */
export const MAX_QUERY_K = 10_000;

/** Commits by other connections the cached index catches up on by replaying their log rows; more means a reload. */
const MAX_CATCH_UP_COMMITS = 1024;

/**
 * A bulk writer's index folds its log every this many changed chunks (128 MiB of 4 KiB chunks),
 * inline in the commit that crosses it: the ordinary fold mark ({@link INDEX_FOLD_DUE_CHUNKS}),
 * so that a bulk load ends with a log any engram may hold and need not fold at its end
 * (`checkpoint({ index: 'due' })`). Each fold rewrites the posting rows of the slots it covers, so
 * folding every 8,192 chunks made a third of a bulk commit. It was 131,072 until the fourth
 * session, which made `embrfs ingest` fold ~43,000 chunks at its end while its other worker sat
 * idle (~0.6 s of a ~4.2 s ingest of the bench:peers corpus); now the fold runs mid-load, beside
 * the other worker's encoding (ingest 4.80 -> 4.41 s, medians of 6 alternating pairs). The
 * bound also keeps what a connection caches until the fold (the chunks' fingerprints) and what a
 * crashed bulk load leaves for the next opener to replay.
 */
export const BULK_INDEX_CHECKPOINT_CHUNKS = 32_768;

/** ... and every this many commits. */
export const BULK_INDEX_CHECKPOINT_COMMITS = 1024;

/**
 * An ordinary (not bulk) engram folds its index log in a commit of its own once it holds this
 * many changed chunks (32,768: 128 MiB of 4 KiB chunks) or log rows
 * ({@link EngramSimilarity.foldDue}), scheduled right after the commit that crossed the mark, so
 * the fold does not sit inside the write that happened to cross it, and at close. A fold rewrites
 * every posting row its slots touch, ~10,000 rows whether the log holds 8,192 chunks or 32,768,
 * so the larger mark makes it 3-4 times rarer for about the same cost each; the price is the
 * replay at open (~6 ms per 1,000 logged chunks) after a process that did not close. The log
 * stays bounded: a commit folds inline, as before, once the log holds twice the mark (when no
 * fold commit could run in between).
 */
export const INDEX_FOLD_DUE_CHUNKS = 4 * DEFAULT_CHECKPOINT_EVERY_CHUNKS;
export const INDEX_FOLD_DUE_COMMITS = DEFAULT_CHECKPOINT_EVERY_COMMITS;

/** A path prefix filter first asks the index for this many times `k` candidates. */
const PREFIX_OVERFETCH = 4;

const EMPTY_FINGERPRINT = SparseVector.empty(FINGERPRINT_DIMENSION);

/** The index key of an inode: the index wants an absolute path-like key. */
function inodeKey(ino: number): string {
  return `/${ino}`;
}

/** The inode of an index key, or undefined for a key the engram did not write. */
function inodeOfKey(key: string): number | undefined {
  const ino = Number(key.slice(1));
  return Number.isSafeInteger(ino) && ino > 0 && inodeKey(ino) === key ? ino : undefined;
}

/**
 * Live paths naming `ino` (several for hard links), sorted; empty for an unlinked inode. Walks
 * parent entries up to the root, bounded by the deepest path the engram accepts.
 *
 * @example
 * ```ts
 * livePathsOf(reader, 42); // ['/docs/a.txt']
 * ```
 */
export function livePathsOf(reader: StoreReader, ino: number): string[] {
  const paths: string[] = [];
  for (const entry of reader.dentriesOf(ino, LIVE)) {
    const names = [entry.name];
    let parent = entry.parentIno;
    let steps = 0;
    let reachable = true;
    while (parent !== ROOT_INO) {
      // A path of PATH_MAX_BYTES has at most half as many components: a longer walk is a cycle.
      if ((steps += 1) > PATH_MAX_BYTES / 2) throw new EmbrError('CORRUPT', `directory entries above inode ${ino} form a cycle`, { what: 'dentry', ino });
      const up = reader.dentriesOf(parent, LIVE);
      if (up.length === 0) {
        reachable = false;
        break;
      }
      names.push(up[0].name);
      parent = up[0].parentIno;
    }
    if (reachable) paths.push('/' + names.reverse().join('/'));
  }
  return paths.sort();
}

/** True when `path` is `prefix` or under it ('/a' covers '/a' and '/a/x', not '/ab'). */
function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || path.startsWith(prefix + '/');
}

/** See the module comment. One per open engram. */
export class EngramSimilarity {
  private readonly storage = new StoreIndexStorage();
  private index: SimilarityIndex | undefined;
  /** Head commit the cached index reflects; any other head means reload. */
  private seenCommit = -1;

  /** Without explicit thresholds the fold is deferred to a commit of its own ({@link foldDue}); the inline bound is twice the mark. */
  private readonly deferFold: boolean;

  constructor(
    private readonly chunkBytes: number,
    private readonly thresholds: { checkpointEveryChunks?: number; checkpointEveryCommits?: number } = {},
  ) {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
    this.deferFold = thresholds.checkpointEveryChunks === undefined && thresholds.checkpointEveryCommits === undefined;
    if (this.deferFold) this.thresholds = { checkpointEveryChunks: 2 * INDEX_FOLD_DUE_CHUNKS, checkpointEveryCommits: 2 * INDEX_FOLD_DUE_COMMITS };
  }

  /**
   * True when the cached index's log is past the fold mark of a deferred-fold engram (the engram
   * then folds it in a commit of its own, {@link foldLog}). Always false for explicit thresholds.
   */
  foldDue(): boolean {
    if (!this.deferFold || this.index === undefined) return false;
    return this.index.changedChunksSinceCheckpoint >= INDEX_FOLD_DUE_CHUNKS || this.index.pendingLogRows >= INDEX_FOLD_DUE_COMMITS;
  }

  /**
   * True when the index's log, as of `reader`, is past the mark at which an ordinary writer folds
   * it ({@link INDEX_FOLD_DUE_CHUNKS}, {@link INDEX_FOLD_DUE_COMMITS}), whatever this connection's
   * own thresholds (a bulk writer's end of load).
   */
  foldDueAt(reader: StoreReader): boolean {
    if (!this.exists(reader)) return false;
    return this.withIndex(reader, (index) => index.changedChunksSinceCheckpoint >= INDEX_FOLD_DUE_CHUNKS || index.pendingLogRows >= INDEX_FOLD_DUE_COMMITS);
  }

  /** Log rows the index holds beyond its base rows (what opening it replays). */
  pendingLogRows(reader: StoreReader): number {
    if (!this.exists(reader)) return 0;
    return this.withIndex(reader, (index) => index.pendingLogRows);
  }

  /** Folds the index's log into its base rows, inside the commit `writer` is writing. */
  foldLog(writer: StoreWriter): void {
    this.catchUp(writer, writer.commit - 1);
    this.storage.bind(
      writer,
      () => {
        this.loaded().checkpoint();
      },
      true,
    );
    this.seenCommit = writer.commit;
  }

  /** Forgets the cached index (after a rolled-back commit); the next use reloads it from the store. */
  discard(): void {
    this.reload();
  }

  /** True when the engram has an index (engrams from before the index existed have none). */
  exists(reader: StoreReader): boolean {
    return reader.indexRow('meta') !== undefined;
  }

  /**
   * The engram's root vector: the index's root bundle (integer counts) of every indexed chunk
   * fingerprint, i.e. of the live content, updated in the transaction of every commit. A copy.
   */
  root(reader: StoreReader): BundleAccumulator {
    return this.withIndex(reader, (index) => index.root('/'));
  }

  /** Forgets the cached index only (another commit came in between; nothing rolled back). */
  private reload(): void {
    this.index = undefined;
    this.seenCommit = -1;
  }

  /**
   * Re-indexes the inodes `root` recorded as touched, inside the commit's transaction, then
   * flushes (one log row). Must run after every other change of the commit.
   */
  update(writer: StoreWriter, root: ContentDelta): void {
    if (root.touchedInodes.size === 0) {
      this.advance(writer);
      return;
    }
    // Another connection (or a commit of ours that bypassed `advance`) came in between.
    this.catchUp(writer, writer.commit - 1);
    this.storage.bind(
      writer,
      () => {
        const index = this.loaded();
        for (const [ino, firstChanged] of root.touchedInodes) this.reindex(writer, index, ino, firstChanged, root.knownFingerprints, root.knownVectors, root.insertedRefs.get(ino), root.created.has(ino));
        index.flush();
      },
      true,
    );
    this.seenCommit = writer.commit;
  }

  /**
   * Notes a commit of this engram that changes no indexed content (metadata, directories,
   * snapshots, staged packs): without it the next content commit would see a gap in the commit
   * numbers, take it for another process's commit and reload the whole index cache.
   */
  advance(writer: StoreWriter): void {
    if (this.seenCommit === writer.commit - 1) this.seenCommit = writer.commit;
  }

  /** Replaces the whole index with one built from the live files (compaction). */
  rebuild(writer: StoreWriter): { files: number; chunks: number } {
    writer.clearIndexRows();
    this.discard();
    let files = 0;
    this.storage.bind(
      writer,
      () => {
        const index = this.loaded();
        const seen = new Set<number>();
        const walk = (directoryIno: number): void => {
          for (const entry of writer.listDirectory(directoryIno, LIVE)) {
            const row = writer.inode(entry.childIno, LIVE);
            if (row === undefined) throw new EmbrError('CORRUPT', `entry ${entry.name} names missing inode ${entry.childIno}`, { what: 'dentry', ino: entry.childIno });
            if (row.type === 'directory') walk(entry.childIno);
            else if (row.type === 'file' && !seen.has(entry.childIno)) {
              seen.add(entry.childIno);
              this.reindex(writer, index, entry.childIno, 0, new Map(), new Map());
              files += 1;
            }
          }
        };
        walk(ROOT_INO);
        index.checkpoint();
      },
      true,
    );
    this.seenCommit = writer.commit;
    return { files, chunks: this.index?.liveSlotCount ?? 0 };
  }

  /**
   * The k best matching files (live paths) for `input`, and the query's cosine with the root.
   * With `pathPrefix`, asks the index for more candidates until k files under the prefix are
   * found or the index has no more.
   */
  query(reader: StoreReader, input: Uint8Array | string, k: number, pathPrefix: string | undefined): QueryResult {
    return this.withIndex(reader, (index) => {
      const vector = queryVector(input);
      const matches = this.resolveMatches(reader, (fetch) => searchIndex(index, vector, { k: fetch }), k, pathPrefix, index.liveFileCount);
      return { matches, rootScore: rootScore(index, vector) };
    });
  }

  /**
   * The same answers for the tree as of commit `at` (a snapshot). The persisted index describes
   * the live tree only (it is updated in place, not versioned), so this builds a transient index
   * from the chunk fingerprints the store keeps per chunk: no chunk is decoded, but the cost grows
   * with the snapshot's size (every file's chunk refs are read), unlike a live query.
   */
  queryAt(reader: StoreReader, at: number, input: Uint8Array | string, k: number, pathPrefix: string | undefined): QueryResult {
    const index = this.snapshotIndex(reader, at);
    const vector = queryVector(input);
    const found = searchIndex(index, vector, { k: index.liveFileCount === 0 ? 1 : index.liveFileCount });
    const matches: QueryMatch[] = [];
    for (const match of found) {
      if (pathPrefix !== undefined && !underPrefix(match.path, pathPrefix)) continue;
      matches.push({ path: match.path, offset: match.offset, length: match.length, score: match.score });
      if (matches.length === k) break;
    }
    return { matches, rootScore: rootScore(index, vector) };
  }

  /** Files most like the file at `path` as of commit `at`, itself left out. */
  similarAt(reader: StoreReader, at: number, path: string, k: number): QueryMatch[] {
    const index = this.snapshotIndex(reader, at);
    return similarFiles(index, path, { k }).map((match) => ({ path: match.path, offset: match.offset, length: match.length, score: match.score }));
  }

  /** A transient in-memory index of the files at commit `at`, keyed by path (a hard link is indexed under its first path). */
  private snapshotIndex(reader: StoreReader, at: number): SimilarityIndex {
    const index = new SimilarityIndex(new MemoryIndexStorage(), { rootDepth: 0 });
    const seen = new Set<number>();
    const walk = (directoryIno: number, directoryPath: string): void => {
      for (const entry of reader.listDirectory(directoryIno, at)) {
        const path = directoryPath === '/' ? `/${entry.name}` : `${directoryPath}/${entry.name}`;
        const row = reader.inode(entry.childIno, at);
        if (row === undefined) throw new EmbrError('CORRUPT', `entry ${path} names missing inode ${entry.childIno}`, { what: 'dentry', ino: entry.childIno });
        if (row.type === 'directory') walk(entry.childIno, path);
        if (row.type !== 'file' || row.size === 0 || seen.has(entry.childIno)) continue;
        seen.add(entry.childIno);
        const chunkCount = Math.ceil(row.size / this.chunkBytes);
        const chunks: IndexedChunk[] = [];
        for (const ref of reader.chunkRefs(entry.childIno, at, 0, chunkCount)) {
          while (chunks.length < ref.chunkIndex) chunks.push({ fingerprint: EMPTY_FINGERPRINT, byteLength: this.lengthOf(row.size, chunks.length) });
          const serialized = reader.chunkFingerprint(ref.chunkId);
          if (serialized === undefined) throw new EmbrError('CORRUPT', `chunk ${ref.chunkId} has no fingerprint`, { what: 'chunk', chunkId: ref.chunkId });
          chunks.push({ fingerprint: fingerprintVector(serialized), byteLength: this.lengthOf(row.size, ref.chunkIndex) });
        }
        while (chunks.length < chunkCount) chunks.push({ fingerprint: EMPTY_FINGERPRINT, byteLength: this.lengthOf(row.size, chunks.length) });
        index.addFile(path, chunks);
      }
    };
    walk(ROOT_INO, '/');
    return index;
  }

  /** Files most like the file `ino` (near-duplicates first), itself left out. */
  similar(reader: StoreReader, ino: number, k: number): QueryMatch[] {
    return this.withIndex(reader, (index) => this.resolveMatches(reader, (fetch) => similarFiles(index, inodeKey(ino), { k: fetch }), k, undefined, index.liveFileCount));
  }

  /** Parses every index row reachable from `meta` (for verify); returns the indexed file and chunk counts. */
  check(reader: StoreReader): { files: number; chunks: number } {
    return this.storage.bind(reader, () => {
      const fresh = new SimilarityIndex(this.storage, { rootDepth: 0 });
      let chunks = 0;
      fresh.forEachFile((file) => {
        chunks += file.chunkLengths.length;
      });
      if (chunks !== fresh.liveSlotCount) {
        throw new EmbrError('CORRUPT', `similarity index: ${chunks} chunks in file rows, meta says ${fresh.liveSlotCount}`, { what: 'similarity index' });
      }
      return { files: fresh.liveFileCount, chunks };
    });
  }

  /**
   * Makes the cached index describe commit `head` after other connections committed: replays the
   * log rows they appended ({@link SimilarityIndex.catchUp}) when no checkpoint or rebuild came in
   * between and the gap is small, else forgets the cache (the next use reloads it).
   */
  private catchUp(reader: StoreReader, head: number): void {
    if (this.seenCommit === head) return;
    const index = this.index;
    if (index === undefined || this.seenCommit < 0 || head < this.seenCommit || head - this.seenCommit > MAX_CATCH_UP_COMMITS) {
      this.reload();
      return;
    }
    for (let commit = this.seenCommit + 1; commit <= head; commit += 1) {
      // A rebuild replaces every row; a missing commit row means history this cache cannot vouch for.
      const info = reader.commitInfo(commit);
      if (info === undefined || info.kind === 'index-rebuild') {
        this.reload();
        return;
      }
    }
    if (this.storage.bind(reader, () => index.catchUp())) this.seenCommit = head;
    else this.reload();
  }

  private withIndex<T>(reader: StoreReader, body: (index: SimilarityIndex) => T): T {
    const head = reader.headCommit();
    this.catchUp(reader, head);
    return this.storage.bind(reader, () => {
      const index = this.loaded();
      this.seenCommit = head;
      return body(index);
    });
  }

  private loaded(): SimilarityIndex {
    // rootDepth 0: keys are inodes, so there are no directories to keep roots for.
    this.index ??= new SimilarityIndex(this.storage, { rootDepth: 0, ...this.thresholds });
    return this.index;
  }

  private resolveMatches(reader: StoreReader, search: (fetch: number) => SearchMatch[], k: number, pathPrefix: string | undefined, fileCount: number): QueryMatch[] {
    let fetch = pathPrefix === undefined ? k : k * PREFIX_OVERFETCH;
    for (;;) {
      const found = search(Math.min(fetch, Math.max(1, fileCount)));
      const matches: QueryMatch[] = [];
      for (const match of found) {
        const ino = inodeOfKey(match.path);
        if (ino === undefined) continue;
        // Unlinked-but-open inodes have no live path: they are not results.
        const path = livePathsOf(reader, ino).find((candidate) => pathPrefix === undefined || underPrefix(candidate, pathPrefix));
        if (path === undefined) continue;
        matches.push({ path, offset: match.offset, length: match.length, score: match.score });
        if (matches.length === k) return matches;
      }
      if (found.length < fetch || fetch >= fileCount) return matches;
      fetch *= PREFIX_OVERFETCH;
    }
  }

  private reindex(
    writer: StoreWriter,
    index: SimilarityIndex,
    ino: number,
    firstChanged: number,
    known: ReadonlyMap<number, Uint8Array>,
    knownVectors: ReadonlyMap<number, SparseVector>,
    inserted?: ReadonlyMap<number, number>,
    isNew = false,
  ): void {
    const key = inodeKey(ino);
    if (isNew) index.noteNeverIndexed(key);
    const row = writer.inode(ino, LIVE);
    const chunkCount = row === undefined || row.type !== 'file' ? 0 : Math.ceil(row.size / this.chunkBytes);
    if (chunkCount === 0) {
      index.removeFile(key);
      return;
    }
    invariant(row !== undefined, 'a file with chunks has a row');
    const fromChunk = Math.min(firstChanged, index.chunkCountOf(key), chunkCount);
    const chunks: IndexedChunk[] = [];
    let nextIndex = fromChunk;
    const pushHoles = (endIndex: number): void => {
      for (; nextIndex < endIndex; nextIndex += 1) chunks.push({ fingerprint: EMPTY_FINGERPRINT, byteLength: this.lengthOf(row.size, nextIndex) });
    };
    for (const ref of this.refsOf(writer, ino, fromChunk, chunkCount, inserted)) {
      pushHoles(ref.chunkIndex);
      let vector = knownVectors.get(ref.chunkId);
      if (vector === undefined) {
        const serialized = known.get(ref.chunkId) ?? writer.chunkFingerprint(ref.chunkId);
        if (serialized === undefined) throw new EmbrError('CORRUPT', `chunk ${ref.chunkId} has no fingerprint`, { what: 'chunk', chunkId: ref.chunkId });
        vector = fingerprintVector(serialized);
      }
      chunks.push({ fingerprint: vector, byteLength: this.lengthOf(row.size, ref.chunkIndex) });
      nextIndex = ref.chunkIndex + 1;
    }
    pushHoles(chunkCount);
    index.replaceChunks(key, fromChunk, chunks, chunkCount);
  }

  /** Live refs of `ino` in [fromChunk, endChunk): from this commit's inserts when they cover the range (saves a store read per chunk), else from the store. */
  private refsOf(writer: StoreWriter, ino: number, fromChunk: number, endChunk: number, inserted: ReadonlyMap<number, number> | undefined): Array<{ chunkIndex: number; chunkId: number }> {
    if (inserted !== undefined) {
      const refs: Array<{ chunkIndex: number; chunkId: number }> = [];
      for (let chunkIndex = fromChunk; chunkIndex < endChunk; chunkIndex += 1) {
        const chunkId = inserted.get(chunkIndex);
        // Not inserted by this commit: an older ref or a hole; only the store knows which.
        if (chunkId === undefined) return writer.chunkRefs(ino, LIVE, fromChunk, endChunk);
        refs.push({ chunkIndex, chunkId });
      }
      return refs;
    }
    return writer.chunkRefs(ino, LIVE, fromChunk, endChunk);
  }

  private lengthOf(size: number, chunkIndex: number): number {
    return Math.min(this.chunkBytes, size - chunkIndex * this.chunkBytes);
  }
}
