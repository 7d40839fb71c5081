/**
 * VersionedEmbrFS over a {@link Store}: the live engram, its transactions, file handles,
 * streaming, snapshots, history, compaction, verify and stats. See docs/design/store.md.
 *
 * @example
 * ```ts
 * const engram = await openEngram('data.engram', { create: true });
 * await engram.writeFile('/a.txt', new TextEncoder().encode('hi'));
 * await engram.close();
 * ```
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { threadId } from 'node:worker_threads';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { EmbrError, invariant, isEmbrError } from '../errors.js';
import type {
  CompactOptions,
  CompactReport,
  Engram,
  EngramStats,
  FileHandle,
  HistoryEntry,
  QueryMatch,
  QueryResult,
  ReadOptions,
  ReadResult,
  SnapshotInfo,
  Stat,
  Transaction,
  TransactionOptions,
  VerifyReport,
  WriteOptions,
  XattrOptions,
} from './api.js';
import type { InodeRow, PackBatch, StagedIds, Store, StoreReader } from '../store/api.js';
import { LIVE, ROOT_INO } from '../store/api.js';
import type { Pipeline } from './encode.js';
import { batchVectors, coalescePacks, encodeChunk, pickFresh, shaKey, splitContent } from './encode.js';
import { batchPacks, mergeBatches, preparePacks, unbatchPacks } from '../store/pack.js';
import type { EncodePool } from './encode-pool.js';
import { encodePool } from './encode-pool.js';
import type { ReadPool } from './read-pool.js';
import { POOL_HANDLE_READ_MIN_BYTES, readPool } from './read-pool.js';
import { HandleReadCache, readCached } from './read-cache.js';
import type { CommitContext } from './operations.js';
import {
  ChunkVanishedError,
  assertFile,
  checkContent,
  checkVersion,
  chunkLength,
  createInode,
  dataOf,
  decodeRef,
  destroyInode,
  insertRefs,
  LiveDirectories,
  closeRefs,
  materialize,
  mustResolveFile,
  readRange,
  resolveParent,
  resolvePath,
  statOf,
  truncateTo,
  writeAt,
} from './operations.js';
import { parsePath, validateName } from './path.js';
import { ContentDelta } from './content-delta.js';
import type { Op, OpBuilder, SessionHost } from './session.js';
import { Session, applyMetadataChange, metadataChanges, nowNs, replaceFile, validateXattrName } from './session.js';
import type { MetadataChange } from './session.js';
import { BundleAccumulator } from '../vsa/accumulator.js';
import { deserializeVector, serializeVector } from '../vsa/serialize.js';
import type { SparseVector } from '../vsa/sparse.js';
import { FINGERPRINT_DIMENSION } from '../query/fingerprint.js';
import { BULK_INDEX_CHECKPOINT_CHUNKS, BULK_INDEX_CHECKPOINT_COMMITS, EngramSimilarity, MAX_QUERY_K } from './similarity.js';

/** History kept by `compact()` when `retainCommits` is not given: the last 100 commits. */
export const DEFAULT_RETAIN_COMMITS = 100;
/** Bytes per window of `createReadStream` and per staged batch of `writeFileFrom`. */
export const STREAM_WINDOW_BYTES = 1 << 20;
const STAGE_BATCH_BYTES = 4 << 20;
/**
 * A whole-file `writeFile` of at least this many bytes is staged while it encodes
 * ({@link EngramImpl.writeStaged}); smaller ones encode and commit in one step.
 */
export const STAGED_WRITE_MIN_BYTES = 4 << 20;
/** Bytes per batch of a staged write: hashed, encoded in the pool and staged on its own. */
const STAGED_WRITE_BATCH_BYTES = 1 << 20;
/** Batches of a staged write whose chunks may be in the pool's hash queue at once. */
const STAGED_WRITE_HASH_AHEAD = 2;

/** One batch of a staged write as the pool returns it: each chunk's SHA-256 (null: a hole) and the packs of the fresh ones. */
interface StagedContent {
  shas: Array<Uint8Array | null>;
  batches: PackBatch[];
}

/**
 * One staged batch: its chunk ids (null for holes) and the fingerprint vectors of the chunks it
 * stored, by chunk id (each vector carries its serialization).
 */
interface StagedBatch {
  ids: Array<number | null>;
  vectors: Map<number, SparseVector>;
  /** The `stage` commit that stored the batch (claimed by the final commit). */
  stageCommit: number;
}
/** Unreferenced chunks staged by a streaming write are spared by GC for this long. */
export const STAGED_CHUNK_GRACE_NS = 3_600_000_000_000n;
const VERIFY_BATCH_CHUNKS = 256;
const MAX_BACKOFF_MS = 200;

function snapshotCommit(reader: StoreReader, options: ReadOptions | undefined): number {
  if (options?.snapshot === undefined) return LIVE;
  const snapshot = reader.snapshot(options.snapshot);
  if (snapshot === undefined) throw new EmbrError('NOT_FOUND', `no snapshot named ${options.snapshot}`, { snapshot: options.snapshot });
  return snapshot.commit;
}

function validateSnapshotName(name: string): void {
  if (typeof name !== 'string') throw new TypeError('snapshot name must be a string');
  try {
    validateName(name, name);
  } catch (error) {
    if (isEmbrError(error)) throw new EmbrError('INVALID_ARGUMENT', `bad snapshot name ${JSON.stringify(name)}`, { reason: 'snapshot name', name });
    throw error;
  }
  if (name.includes('\0') || name.includes(':')) {
    throw new EmbrError('INVALID_ARGUMENT', `bad snapshot name ${JSON.stringify(name)} (no NUL, '/' or ':')`, { reason: 'snapshot name', name });
  }
}

function checkQueryK(k: number | undefined): number {
  const value = k ?? 10;
  if (!Number.isInteger(value) || value < 1 || value > MAX_QUERY_K) throw new RangeError(`k must be an integer in [1, ${MAX_QUERY_K}], got ${k}`);
  return value;
}

/** What a transaction observed of a path: inode and version (0/0 = absent, -1/-1 = not resolvable). */
interface Observation {
  ino: number;
  version: number;
}

function observe(reader: StoreReader, path: string): Observation {
  try {
    const found = resolvePath(reader, LIVE, path);
    return found === undefined ? { ino: 0, version: 0 } : { ino: found.ino, version: found.row.fromCommit };
  } catch (error) {
    if (isEmbrError(error, 'NOT_DIRECTORY')) return { ino: -1, version: -1 };
    throw error;
  }
}

/** Owner tags of the engram instances open in this process. */
const liveOwnerTags = new Set<string>();
let nextOwnerSerial = 1;

/**
 * True when the instance that tagged an orphan may still hold it open: an instance open in this
 * process, or another live process on this host (signal 0 probes it). Untagged → not alive.
 */
function ownerIsAlive(tag: string | undefined): boolean {
  if (tag === undefined) return false;
  if (liveOwnerTags.has(tag)) return true;
  const [host, pidText] = tag.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The text verify reports for a failure while checking one item. Rows of a damaged engram can
 * hold values no decoder anticipates (a flipped bit turns a dimension, a NOT NULL column or a
 * length into nonsense), so verify treats every failure there as damage to report, never as a
 * crash of verify itself.
 */
function damageMessage(error: unknown): string {
  if (isEmbrError(error)) return error.message;
  return `unreadable (${error instanceof Error ? error.message : String(error)})`;
}

/**
 * Op kinds that never move or remove a directory (creates, content and metadata changes, unlinks
 * of files, mkdir): after a commit of only these, every live directory keeps its path.
 */
const KEEPS_DIRECTORIES: ReadonlySet<string> = new Set([
  'open',
  'write',
  'truncate',
  'delete',
  'mkdir',
  'symlink',
  'link',
  'chmod',
  'chown',
  'utimes',
  'setxattr',
  'removexattr',
  'release',
]);

class EngramImpl extends Session implements Engram, SessionHost {
  readonly pipeline: Pipeline;
  readonly ownerTag = `${hostname()}:${process.pid}:${threadId}.${nextOwnerSerial++}`;
  readonly pool: EncodePool | undefined;
  /** Large handle reads of a file-backed engram (undefined for other stores): see read-pool.ts. */
  readonly readPool: ReadPool | undefined;
  private closed = false;
  /** Open handles per inode in this process. */
  private readonly openHandles = new Map<number, number>();
  /**
   * Open inodes a commit of this engram left with nlink 0 (a superset: a rolled-back commit's
   * stay too). Only such a commit can leave an inode open here unlinked (another process's or
   * engram's unlink destroys it), so the last close reads the row of these only.
   */
  private readonly keptOrphans = new Set<number>();
  /** Commits pinned by reads in progress (streams), spared by compaction. */
  private readonly pins = new Map<number, number>();
  /** The similarity index, updated in every commit that changes file content. */
  private readonly similarity: EngramSimilarity;
  /** A deferred fold of the index log is queued ({@link scheduleIndexFold}). */
  private indexFoldScheduled = false;
  /** Live directories by path for reads (see LiveDirectories): told of every commit made here. */
  private readonly directories = new LiveDirectories();

  constructor(
    readonly file: string,
    private readonly store: Store,
    pipeline: Pipeline,
    bulk = false,
    readWorker = false,
  ) {
    super();
    this.pipeline = pipeline;
    this.pool = encodePool({ profile: store.info.profile, chunkBytes: store.info.chunkBytes });
    this.readPool = readWorker ? readPool(file, store.info.profile, store.info.chunkBytes) : undefined;
    this.similarity = new EngramSimilarity(store.info.chunkBytes, bulk ? { checkpointEveryChunks: BULK_INDEX_CHECKPOINT_CHUNKS, checkpointEveryCommits: BULK_INDEX_CHECKPOINT_COMMITS } : {});
    liveOwnerTags.add(this.ownerTag);
  }

  /** Encodes bytes as chunks from `firstIndex` (for file handles). */
  encodeRange(bytes: Uint8Array, firstIndex: number, forceEncode: boolean): Promise<import('./encode.js').EncodedContent> {
    return this.encode(bytes, firstIndex, forceEncode);
  }

  get readOnly(): boolean {
    return this.store.readOnly;
  }

  assertOpen(): void {
    if (this.closed) throw new EmbrError('CLOSED', `${this.file}: the engram is closed`);
  }

  assertWritable(): void {
    this.assertOpen();
    if (this.store.readOnly) throw new EmbrError('READ_ONLY', `${this.file} is open read-only`, {});
  }

  lookupStored(shas: Uint8Array[]): boolean[] {
    if (shas.length === 0) return [];
    return this.store.read((reader) => shas.map((sha) => reader.chunkIdBySha256(sha) !== undefined));
  }

  isOpen(ino: number): boolean {
    return (this.openHandles.get(ino) ?? 0) > 0;
  }

  // ---- the Session seams ----

  protected view<T>(options: ReadOptions | undefined, _observed: string[], body: (reader: StoreReader, at: number) => T): T {
    this.assertOpen();
    return this.store.read((reader) => body(reader, snapshotCommit(reader, options)));
  }

  protected override directoriesAt(at: number): LiveDirectories | undefined {
    return at === LIVE ? this.directories : undefined;
  }

  protected async submit<T>(kind: string, _touched: string[], build: OpBuilder<T>): Promise<T> {
    this.assertWritable();
    for (let attempt = 0; ; attempt += 1) {
      const op = await build(attempt > 0);
      this.assertWritable();
      try {
        return this.commit(kind, [op], () => undefined)[0] as T;
      } catch (error) {
        if (error instanceof ChunkVanishedError && attempt === 0) continue;
        throw error;
      }
    }
  }

  /** Applies ops as one commit (one IMMEDIATE transaction). `validate` runs first, inside it. */
  commit(kind: string, ops: Array<Op<unknown>>, validate: (reader: StoreReader) => void): unknown[] {
    try {
      let committed = 0;
      const results = this.store.write({ kind, timeNs: nowNs() }, (writer) => {
        validate(writer);
        const context = this.contextFor(writer);
        const results = ops.map((op) => op.apply(context));
        // Last, in the same transaction: the index (and its root bundle, the engram's root
        // vector) describes exactly what this commit leaves.
        this.similarity.update(writer, context.changes);
        committed = writer.commit;
        return results;
      });
      this.directories.afterOwnCommit(committed, ops.every((op) => KEEPS_DIRECTORIES.has(op.kind)));
      return results;
    } catch (error) {
      // The transaction rolled back: the cached index may hold its changes.
      this.similarity.discard();
      throw error;
    } finally {
      if (this.similarity.foldDue()) this.scheduleIndexFold();
    }
  }

  /**
   * Folds the similarity index's log in a commit of its own (kind `index-checkpoint`) once the
   * current call has returned, instead of inside the commit that crossed the fold mark: the
   * write that crossed it is acknowledged without the fold's 30-45 ms. The fold changes no
   * content, so it commits without its own fsync (`durable: false`; the next durable commit or
   * checkpoint covers it, and losing it loses nothing: the log rows it absorbs stay until it
   * commits). A failure leaves the log as it was; commits fold inline at twice the mark anyway.
   */
  private scheduleIndexFold(): void {
    if (this.indexFoldScheduled) return;
    this.indexFoldScheduled = true;
    setImmediate(() => {
      this.indexFoldScheduled = false;
      if (this.closed || this.store.readOnly || !this.similarity.foldDue()) return;
      this.foldIndexLog();
    });
  }

  private foldIndexLog(): void {
    try {
      this.store.write({ kind: 'index-checkpoint', timeNs: nowNs(), durable: false }, (writer) => {
        this.similarity.foldLog(writer);
      });
    } catch {
      // BUSY (another process holds the write lock) or I/O: the next commit folds inline at the bound.
      this.similarity.discard();
    }
  }

  contextFor(writer: import('../store/api.js').StoreWriter): CommitContext {
    return {
      writer,
      timeNs: nowNs(),
      changes: new ContentDelta(),
      pipeline: this.pipeline,
      isOpen: (ino) => this.isOpen(ino),
      ownerTag: this.ownerTag,
      keepOrphan: (ino) => {
        writer.setOrphanOwner(ino, this.ownerTag);
        this.keptOrphans.add(ino);
      },
    };
  }

  /** Applies queued ops in a commit that is rolled back, then reads (a transaction's own writes). */
  speculate<T>(ops: Array<Op<unknown>>, body: (reader: StoreReader) => T): T {
    return this.store.speculate({ kind: 'preview', timeNs: nowNs() }, (writer) => {
      const context = this.contextFor(writer);
      for (const op of ops) op.apply(context);
      return body(writer);
    });
  }

  readStore<T>(body: (reader: StoreReader) => T): T {
    this.assertOpen();
    return this.store.read(body);
  }

  // ---- transactions ----

  async transaction<T>(body: (tx: Transaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.assertOpen();
    const retries = options.retries ?? 0;
    if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`retries must be a non-negative integer, got ${retries}`);
    let forceEncode = false;
    for (let attempt = 0; ; attempt += 1) {
      const tx = new TransactionImpl(this, forceEncode);
      try {
        const result = await body(tx);
        await tx.commitQueued(options.beforeCommit);
        return result;
      } catch (error) {
        if (error instanceof ChunkVanishedError && !forceEncode) {
          forceEncode = true;
          attempt -= 1;
          continue;
        }
        if (isEmbrError(error, 'VERSION_MISMATCH') && attempt < retries) {
          // Jittered exponential backoff so competing writers spread out instead of colliding again.
          const ceilingMs = Math.min(MAX_BACKOFF_MS, 2 ** attempt);
          await new Promise((resolve) => setTimeout(resolve, Math.random() * ceilingMs));
          continue;
        }
        throw error;
      } finally {
        tx.finish();
      }
    }
  }

  // ---- handles ----

  async open(
    path: string,
    options: { create?: boolean; exclusive?: boolean; truncate?: boolean; mode?: number; uid?: number; gid?: number } = {},
  ): Promise<FileHandle> {
    parsePath(path);
    this.assertOpen();
    const mutates = options.create === true || options.truncate === true;
    if (mutates) this.assertWritable();
    let ino: number;
    if (!mutates) {
      ino = this.view(undefined, [path], (reader, at) => mustResolveFile(reader, at, path, this.directoriesAt(at)).ino);
    } else {
      const op: Op<number> = {
        kind: 'open',
        touched: [path],
        apply: (context) => {
          const { parentIno, name, child } = resolveParent(context.writer, LIVE, path);
          if (child !== undefined) {
            if (options.exclusive && options.create) throw new EmbrError('EXISTS', `${path} exists`, { path });
            if (child.row.type === 'directory') throw new EmbrError('IS_DIRECTORY', `${path} is a directory`, { path });
            if (options.truncate && child.row.size > 0) truncateTo(context, child.ino, child.row, 0);
            return child.ino;
          }
          if (!options.create) throw new EmbrError('NOT_FOUND', `${path}: no such file`, { path });
          return createInode(context, parentIno, name, {
            type: 'file',
            mode: options.mode ?? 0o644,
            uid: options.uid ?? 0,
            gid: options.gid ?? 0,
            size: 0,
            nlink: 1,
            symlinkTarget: null,
            contentSha256: this.pipeline.sha256(new Uint8Array(0)),
          });
        },
      };
      ino = this.commit('open', [op], () => undefined)[0] as number;
    }
    this.openHandles.set(ino, (this.openHandles.get(ino) ?? 0) + 1);
    return new FileHandleImpl(this, ino, path);
  }

  async releaseHandle(ino: number): Promise<void> {
    const count = (this.openHandles.get(ino) ?? 0) - 1;
    if (count > 0) {
      this.openHandles.set(ino, count);
      return;
    }
    this.openHandles.delete(ino);
    // Not left with nlink 0 by this engram: nothing to destroy, no read (one per FUSE release).
    if (!this.keptOrphans.delete(ino) || this.closed || this.store.readOnly) return;
    const row = this.store.read((reader) => reader.inode(ino, LIVE));
    if (row !== undefined && row.nlink === 0) {
      this.commit('release', [{ kind: 'release', touched: [], apply: (context) => destroyOrphan(context, ino) }], () => undefined);
    }
  }

  /** Cleans inodes left unlinked-but-open by a process (or engram instance) that ended. */
  cleanOrphans(): void {
    if (this.store.readOnly) return;
    const orphans = this.store.read((reader) => reader.orphanInodes().filter((ino) => !ownerIsAlive(reader.orphanOwner(ino))));
    if (orphans.length === 0) return;
    const ops = orphans.map((ino) => ({ kind: 'release', touched: [], apply: (context: CommitContext) => destroyOrphan(context, ino) }));
    this.commit('release', ops, () => undefined);
  }

  // ---- streaming ----

  createReadStream(path: string, options: ReadOptions & { start?: number; end?: number } = {}): AsyncIterable<Uint8Array> {
    parsePath(path);
    if (options.start !== undefined && (!Number.isSafeInteger(options.start) || options.start < 0)) throw new RangeError('start must be a non-negative integer');
    if (options.end !== undefined && (!Number.isSafeInteger(options.end) || options.end < 0)) throw new RangeError('end must be a non-negative integer');
    const engram = this;
    return {
      async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
        engram.assertOpen();
        // Pin the commit so every window reads the same version, even while others write.
        const { at, ino, size, recorded } = engram.store.read((reader) => {
          const pinned = options.snapshot === undefined ? reader.headCommit() : snapshotCommit(reader, options);
          const found = mustResolveFile(reader, pinned, path);
          return { at: pinned, ino: found.ino, size: found.row.size, recorded: found.row.contentSha256 };
        });
        engram.pins.set(at, (engram.pins.get(at) ?? 0) + 1);
        try {
          const start = options.start ?? 0;
          // `end` is inclusive, as in node:fs.createReadStream.
          const end = Math.min(size, options.end === undefined ? size : options.end + 1);
          // A whole-file stream is checked end to end like readFile (the error comes after the last piece).
          const whole = start === 0 && end === size && recorded !== null ? createHash('sha256') : undefined;
          for (let position = start; position < end; position += STREAM_WINDOW_BYTES) {
            const length = Math.min(STREAM_WINDOW_BYTES, end - position);
            engram.assertOpen();
            const piece = engram.store.read((reader) => readRange(reader, engram.pipeline, at, ino, size, position, length));
            whole?.update(piece);
            yield piece;
          }
          if (whole !== undefined && recorded !== null && Buffer.compare(whole.digest(), recorded) !== 0) {
            throw new EmbrError('CORRUPT', `${path}: the file's content does not match its recorded SHA-256`, { what: 'file', path });
          }
        } finally {
          const count = (engram.pins.get(at) ?? 1) - 1;
          if (count > 0) engram.pins.set(at, count);
          else engram.pins.delete(at);
        }
      },
    };
  }

  protected override async writeWhole(path: string, data: Uint8Array, options: WriteOptions): Promise<number> {
    if (this.pool === undefined || data.length < STAGED_WRITE_MIN_BYTES) return super.writeWhole(path, data, options);
    try {
      return await this.writeStaged(path, data, options, this.pool);
    } catch (error) {
      // A chunk found stored was compacted away before the commit: the one-step path re-encodes
      // (and retries once). What this attempt staged is reclaimed like an aborted stream's.
      if (error instanceof ChunkVanishedError) return super.writeWhole(path, data, options);
      throw error;
    }
  }

  /**
   * A large whole-file write as a pipeline: the bytes are cut into 1 MiB batches; each batch is
   * hashed here, looked up, and sent to the encode pool, and the packs coming back are stored in
   * order in `stage` commits (no fsync, like a stream's, see writeFileFrom) while later batches
   * still encode; after each, an asynchronous fdatasync of the WAL starts (`Store.syncAhead`), so
   * the final commit's fsync finds most of the bytes on disk. The final commit then only checks
   * the preconditions, claims the staged chunks, switches the file to them and updates the index,
   * and syncs. No WAL checkpoint runs inside any of these commits (`Store.holdCheckpoints`); it
   * runs in the background after. Preconditions are checked before staging too, so a write that
   * would fail stages nothing (unless the file changes meanwhile: then its staged chunks are
   * garbage that compaction frees after the staging grace, as for an aborted stream).
   */
  private async writeStaged(path: string, data: Uint8Array, options: WriteOptions, pool: EncodePool): Promise<number> {
    this.store.read((reader) => {
      const { child } = resolveParent(reader, LIVE, path);
      if (child !== undefined && options.exclusive) throw new EmbrError('EXISTS', `${path} exists`, { path });
      if (child !== undefined) assertFile(child.row, path);
      checkVersion(path, options.expectedVersion, child?.row);
    });
    const pipeline = this.pipeline;
    const chunkBytes = pipeline.chunkBytes;
    const batchBytes = Math.max(chunkBytes, Math.floor(STAGED_WRITE_BATCH_BYTES / chunkBytes) * chunkBytes);
    const ids: Array<number | null> = [];
    const stageCommits: number[] = [];
    const dedupHits = new Set<number>();
    const knownVectors = new Map<number, SparseVector>();
    const sent = new Set<string>();
    const stages: Array<Promise<StagedBatch>> = [];
    // The whole file's SHA-256, fed a batch at a time right after the batch is sent to the pool
    // (its bytes are then hot in the cache): 0.6 ms per MiB here. WebCrypto's digest of the whole
    // buffer, which this replaced, copied it first and blocked this thread ~28 ms per 10 MB.
    const wholeHash = createHash('sha256');
    // Batches whose chunks the workers are hashing. The workers take tasks in order, so sending
    // every batch's hash task at once queued all hashing ahead of the first encode, and the first
    // stage commit waited for the whole file to be hashed; two batches ahead keep both busy.
    const hashing: Array<Promise<void>> = [];
    const hold = this.store.holdCheckpoints();
    try {
      let chain: Promise<void> = Promise.resolve();
      for (let offset = 0; offset < data.length; offset += batchBytes) {
        if (hashing.length >= STAGED_WRITE_HASH_AHEAD) await hashing.shift();
        const bytes = data.subarray(offset, Math.min(data.length, offset + batchBytes));
        let hashed!: () => void;
        hashing.push(new Promise<void>((resolve) => (hashed = resolve)));
        // The workers hash the batch's chunks; the chunks neither stored nor already picked by
        // this write are encoded (a chunk repeated within the write is encoded once).
        const select = async (shas: Array<Uint8Array | null>): Promise<boolean[]> => {
          hashed();
          // Asked of the store's background connection when it has one (its page cache holds
          // the index pages the earlier batches' stage commits wrote; see lookupInBackground).
          const present = shas.filter((sha): sha is Uint8Array => sha !== null);
          const stored = (await this.store.lookupInBackground?.(present)) ?? this.lookupStored(present);
          return pickFresh(shas, () => stored, sent);
        };
        // Settled, never rejected: a batch that fails after an earlier one failed must not be an unhandled rejection.
        const encoded: Promise<{ content: StagedContent } | { error: unknown }> = pool.hashAndEncode(bytes, chunkBytes, select).then(
          ({ shas, batches }) => ({ content: { shas, batches } }),
          (error: unknown) => {
            hashed();
            if (isEmbrError(error)) return { error };
            // A worker that cannot start or crashed must not fail the write: encode here instead
            // (chunks this batch had picked are picked again).
            try {
              const { shas, fresh } = splitContent(pipeline, bytes, (batchShas) => this.lookupStored(batchShas));
              return { content: { shas, batches: [batchPacks(preparePacks(fresh.map((chunk) => encodeChunk(pipeline, chunk))), true)] } };
            } catch (inlineError) {
              return { error: inlineError };
            }
          },
        );
        // Batches are staged in order (a later batch finds the chunks an earlier one staged).
        chain = chain.then(async () => {
          const result = await encoded;
          if ('error' in result) throw result.error;
          const stage = this.stageBatch(result.content);
          // Read below, after every batch was sent; until then a failure must not count as unhandled.
          stage.catch(() => undefined);
          stages.push(stage);
        });
        // Awaited after the loop; until then (the loop waits for hashing) a failure must not count as unhandled.
        chain.catch(() => undefined);
        wholeHash.update(bytes);
      }
      const contentSha256 = new Uint8Array(wholeHash.digest());
      await chain;
      // Every stage settles before the outcome is read (no rejection left unhandled).
      for (const outcome of await Promise.allSettled(stages)) {
        if (outcome.status === 'rejected') throw outcome.reason;
      }
      for (const outcome of stages) {
        const batch = await outcome;
        stageCommits.push(batch.stageCommit);
        // The known vectors are exactly the chunks this write staged: the rest were found stored.
        for (const [id, vector] of batch.vectors) knownVectors.set(id, vector);
        for (const id of batch.ids) if (id !== null && !knownVectors.has(id)) dedupHits.add(id);
        for (const id of batch.ids) ids.push(id);
      }
      this.assertWritable();
      const size = data.length;
      invariant(ids.length === Math.ceil(size / chunkBytes), `a staged write of ${size} bytes has ${ids.length} chunk ids`);
      const op: Op<number> = {
        kind: 'write',
        touched: [path],
        apply: (context) => {
          for (const id of dedupHits) if (context.writer.chunkInfo(id) === undefined) throw new ChunkVanishedError();
          context.writer.claimStages(stageCommits);
          context.changes.adoptKnownVectors(knownVectors);
          return replaceFile(context, path, { firstIndex: 0, shas: [], packs: [], byteLength: size }, size, contentSha256, options, { ids });
        },
      };
      return this.commit('write', [op], () => undefined)[0] as number;
    } finally {
      hold.release();
    }
  }

  /**
   * Stores one batch of a staged write in a `stage` commit (on the store's background connection
   * when it has one, else here) and resolves to its chunk ids (null for holes) and the
   * fingerprint vectors of the chunks it stored, by chunk id.
   */
  private async stageBatch(content: StagedContent): Promise<StagedBatch> {
    const batch = mergeBatches(content.batches);
    // Built now, while the pool encodes the next batches, from the indices the workers sent (no
    // parsing), and handed to the final commit's index update; each vector keeps its
    // serialization, so the index log copies those bytes instead of encoding the vector again.
    const batchVectorList = batchVectors(batch);
    let staged: StagedIds;
    const background = this.store.stageInBackground?.(nowNs(), batch, content.shas);
    if (background !== undefined) {
      staged = await background;
    } else {
      staged = this.store.write({ kind: 'stage', timeNs: nowNs(), durable: false }, (writer) => {
        const ids = materialize(this.contextFor(writer), { firstIndex: 0, shas: content.shas, packs: unbatchPacks(batch, batchVectorList), byteLength: 0 });
        const chunkIds = batchVectorList.map((_, index) => writer.chunkIdBySha256(batch.sha256s.subarray(32 * index, 32 * index + 32)) ?? -1);
        this.similarity.advance(writer);
        return { ids, chunkIds, stageCommit: writer.commit };
      });
    }
    this.store.syncAhead();
    const vectors = new Map<number, SparseVector>();
    batchVectorList.forEach((vector, index) => {
      const id = staged.chunkIds[index];
      invariant(id !== undefined && id >= 0, `staged chunk ${index} has no id`);
      vectors.set(id, vector);
    });
    content.shas.forEach((sha, position) => {
      const id = staged.ids[position];
      // A chunk found stored at hashing time was compacted away before its batch was staged.
      if (sha !== null && (id === undefined || id === null)) throw new ChunkVanishedError();
    });
    return { ids: staged.ids as Array<number | null>, vectors, stageCommit: staged.stageCommit };
  }

  async writeFileFrom(path: string, source: AsyncIterable<Uint8Array>, options: WriteOptions = {}): Promise<number> {
    parsePath(path);
    this.assertWritable();
    if (options.exclusive && (await this.exists(path))) throw new EmbrError('EXISTS', `${path} exists`, { path });
    const chunkBytes = this.pipeline.chunkBytes;
    const batchBytes = Math.max(chunkBytes, Math.floor(STAGE_BATCH_BYTES / chunkBytes) * chunkBytes);
    const ids: Array<number | null> = [];
    const dedupHits = new Set<number>();
    const stageCommits: number[] = [];
    const hash = createHash('sha256');
    let size = 0;
    let pending = new Uint8Array(batchBytes);
    let pendingBytes = 0;
    const stage = async (bytes: Uint8Array): Promise<void> => {
      // Inline, not in the pool: the workers' heaps would break the streaming memory bound.
      const content = await this.encode(bytes, ids.length, false, true);
      const staged = new Set<string>();
      for (const pack of content.packs) for (const chunk of pack.chunks) staged.add(shaKey(chunk.sha256));
      // Staged packs are unreferenced until the final commit, whose fsync covers them: no sync here.
      const batchIds = this.store.write({ kind: 'stage', timeNs: nowNs(), durable: false }, (writer) => {
        const context = this.contextFor(writer);
        const batch = materialize(context, content);
        this.similarity.advance(writer);
        stageCommits.push(writer.commit);
        return batch;
      });
      content.shas.forEach((sha, position) => {
        const id = batchIds[position];
        if (sha === null || id === null) return;
        // Chunks this batch did not store itself were found stored: re-checked in the final commit.
        if (!staged.has(shaKey(sha))) dedupHits.add(id);
      });
      ids.push(...batchIds);
    };
    for await (const piece of source) {
      if (!(piece instanceof Uint8Array)) throw new TypeError('writeFileFrom: the source must yield Uint8Array pieces');
      hash.update(piece);
      size += piece.length;
      let offset = 0;
      while (offset < piece.length) {
        const take = Math.min(piece.length - offset, batchBytes - pendingBytes);
        pending.set(piece.subarray(offset, offset + take), pendingBytes);
        pendingBytes += take;
        offset += take;
        if (pendingBytes === batchBytes) {
          await stage(pending);
          pending = new Uint8Array(batchBytes);
          pendingBytes = 0;
        }
      }
      this.assertWritable();
    }
    if (pendingBytes > 0) await stage(pending.subarray(0, pendingBytes));
    const contentSha256 = new Uint8Array(hash.digest());
    const op: Op<number> = {
      kind: 'write',
      touched: [path],
      apply: (context) => {
        // Chunks found already stored (not staged by us) may have been freed meanwhile.
        for (const id of dedupHits) if (context.writer.chunkInfo(id) === undefined) throw new EmbrError('BUSY', `${path}: a chunk was compacted away during the upload; retry`, { file: this.file });
        context.writer.claimStages(stageCommits);
        return replaceFile(context, path, { firstIndex: 0, shas: [], packs: [], byteLength: size }, size, contentSha256, options, { ids });
      },
    };
    return this.commit('write', [op], () => undefined)[0] as number;
  }

  // ---- snapshots ----

  async createSnapshot(name: string): Promise<SnapshotInfo> {
    validateSnapshotName(name);
    this.assertWritable();
    const timeNs = nowNs();
    return this.store.write({ kind: 'snapshot', timeNs }, (writer) => {
      if (writer.snapshot(name) !== undefined) throw new EmbrError('EXISTS', `snapshot ${name} exists`, { snapshot: name });
      const info = { name, commit: writer.commit, createdNs: timeNs };
      writer.putSnapshot(info);
      this.similarity.advance(writer);
      return info;
    });
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    return this.readStore((reader) => reader.snapshots());
  }

  async deleteSnapshot(name: string): Promise<void> {
    if (typeof name !== 'string') throw new TypeError('snapshot name must be a string');
    this.assertWritable();
    this.store.write({ kind: 'snapshot-delete', timeNs: nowNs() }, (writer) => {
      if (writer.snapshot(name) === undefined) throw new EmbrError('NOT_FOUND', `no snapshot named ${name}`, { snapshot: name });
      writer.removeSnapshot(name);
      this.similarity.advance(writer);
    });
  }

  async restoreSnapshot(name: string): Promise<number> {
    if (typeof name !== 'string') throw new TypeError('snapshot name must be a string');
    this.assertWritable();
    const op: Op<number> = { kind: 'restore', touched: ['/'], movesSubtrees: true, apply: (context) => restoreTree(context, name) };
    return this.commit('restore', [op], () => undefined)[0] as number;
  }

  // ---- history ----

  async history(path: string): Promise<HistoryEntry[]> {
    parsePath(path);
    return this.readStore((reader) => {
      if (path === '/') return inodeHistory(reader, this.pipeline, ROOT_INO, 1, null);
      const { parentIno, name } = resolveParent(reader, LIVE, path);
      const entries: HistoryEntry[] = [];
      for (const dentry of reader.dentryHistory(parentIno, name)) {
        entries.push(...inodeHistory(reader, this.pipeline, dentry.childIno, dentry.fromCommit, dentry.toCommit));
        if (dentry.toCommit !== null) {
          const elsewhere = reader
            .dentriesOf(dentry.childIno, dentry.toCommit)
            .some((other) => other.parentIno !== parentIno || other.name !== name);
          entries.push({
            commit: dentry.toCommit,
            version: dentry.toCommit,
            timeNs: reader.commitInfo(dentry.toCommit)?.timeNs ?? 0n,
            kind: elsewhere ? 'rename-out' : 'delete',
            size: 0,
            sha256: null,
          });
        }
      }
      if (entries.length === 0) throw new EmbrError('NOT_FOUND', `${path}: no history`, { path });
      return entries.sort((left, right) => left.commit - right.commit);
    });
  }

  // ---- maintenance ----

  async compact(options: CompactOptions = {}): Promise<CompactReport> {
    // Not beside this store's own background checkpoint: compaction ends with a TRUNCATE
    // checkpoint that a running one would make fail, and its byte counts would move under it.
    await this.store.idle?.();
    const retain = options.retainCommits ?? DEFAULT_RETAIN_COMMITS;
    if (!Number.isSafeInteger(retain) || retain < 0) throw new RangeError(`retainCommits must be a non-negative integer, got ${retain}`);
    this.assertWritable();
    const head = this.store.read((reader) => reader.headCommit());
    // The size before any of compaction's own commits (the index rebuild below may grow the WAL).
    const bytesBefore = this.store.storedBytes();
    // Rebuilt before GC so that the index's dead rows (never-reused slots) are freed by its vacuum.
    this.rebuildIndex();
    const report = this.store.collectGarbage({
      pinnedCommits: [...this.pins.keys()],
      retainAfterCommit: head - retain,
      stagedGraceAfterNs: nowNs() - STAGED_CHUNK_GRACE_NS,
    });
    return { ...report, bytesBefore };
  }

  /**
   * Builds the similarity index (and so the root vector) of an engram written before the index
   * existed, in one commit, when it is open writable; a read-only open leaves it to verify to say.
   */
  buildMissingIndex(): void {
    if (this.store.readOnly) return;
    if (this.store.read((reader) => this.similarity.exists(reader) || reader.totals().chunks === 0)) return;
    this.rebuildIndex();
  }

  /** Replaces the similarity index with one built from the live files, in one commit. */
  private rebuildIndex(): void {
    try {
      this.store.write({ kind: 'index-rebuild', timeNs: nowNs() }, (writer) => this.similarity.rebuild(writer));
    } catch (error) {
      this.similarity.discard();
      throw error;
    }
  }

  async verify(options: { onProgress?: (checkedBytes: number) => void } = {}): Promise<VerifyReport> {
    this.assertOpen();
    const problems: string[] = [];
    const damagedChunks = new Set<number>();
    let checkedChunks = 0;
    let checkedBytes = 0;
    const guarded = (what: string, body: () => void): boolean => {
      try {
        body();
        return true;
      } catch (error) {
        problems.push(`${what}: ${damageMessage(error)}`);
        return false;
      }
    };
    // The database's own structure first: damage here explains most of what follows.
    guarded('database', () => {
      for (const problem of this.store.integrityCheck()) problems.push(`database integrity check: ${problem}`);
    });
    let chunkIds: number[] = [];
    guarded('chunk list', () => {
      chunkIds = this.store.read((reader) => reader.allChunkIds());
    });
    for (let start = 0; start < chunkIds.length; start += VERIFY_BATCH_CHUNKS) {
      const batch = chunkIds.slice(start, start + VERIFY_BATCH_CHUNKS);
      guarded(`chunks ${batch[0]}..${batch.at(-1)}`, () =>
        this.store.read((reader) => {
          for (const chunkId of batch) {
            const info = reader.chunkInfo(chunkId);
            if (info === undefined) continue; // freed by a concurrent compaction
            const ok = guarded(`chunk ${chunkId}`, () => {
              decodeRef(reader, this.pipeline, info, chunkId, info.byteLength);
              if (reader.chunkFingerprint(chunkId) === undefined) throw new EmbrError('CORRUPT', 'no fingerprint', { what: 'chunk', chunkId });
            });
            if (!ok) damagedChunks.add(chunkId);
            checkedChunks += 1;
            checkedBytes += info.byteLength;
          }
        }),
      );
      options.onProgress?.(checkedBytes);
      await yieldToEventLoop();
    }
    const damagedPaths = new Set<string>();
    let checkedFiles = 0;
    // A damaged b-tree can hide a row from the full scan above yet serve it to a lookup, so any
    // chunk a file references that the scan did not vouch for is decoded during the walk.
    const verifiedChunks = new Set<number>(chunkIds.filter((id) => !damagedChunks.has(id)));
    guarded('tree', () =>
      this.store.read((reader) => {
        const head = reader.headCommit();
        const chunkBytes = this.pipeline.chunkBytes;
        const views: Array<{ prefix: string; at: number }> = [{ prefix: '', at: LIVE }];
        for (const snapshot of reader.snapshots()) views.push({ prefix: `${snapshot.name}:`, at: snapshot.commit });
        const liveRoot = new BundleAccumulator(FINGERPRINT_DIMENSION);
        let rootComparable = true;
        const bundle = (chunkId: number): void => {
          const fingerprint = reader.chunkFingerprint(chunkId);
          if (fingerprint === undefined) return;
          try {
            liveRoot.add(deserializeVector(fingerprint));
          } catch (error) {
            rootComparable = false;
            problems.push(`chunk ${chunkId}: fingerprint is damaged: ${damageMessage(error)}`);
          }
        };
        /** Problems of one file's chunk refs (empty when sound). */
        const checkFile = (ino: number, row: InodeRow, at: number): string[] => {
          const found: string[] = [];
          const chunkCount = Math.ceil(row.size / chunkBytes);
          for (const ref of reader.chunkRefs(ino, at, 0, Number.MAX_SAFE_INTEGER)) {
            if (ref.chunk === undefined) found.push(`chunk ${ref.chunkId} is missing`);
            else if (ref.chunkIndex >= chunkCount) found.push(`chunk index ${ref.chunkIndex} lies past the end (${row.size} bytes)`);
            else if (ref.chunk.byteLength !== chunkLength(row.size, chunkBytes, ref.chunkIndex)) found.push(`chunk ${ref.chunkId} has the wrong length`);
            else if (damagedChunks.has(ref.chunkId)) found.push(`chunk ${ref.chunkId} is damaged`);
            else if (!verifiedChunks.has(ref.chunkId)) {
              try {
                decodeRef(reader, this.pipeline, ref.chunk, ref.chunkId, ref.chunk.byteLength);
                verifiedChunks.add(ref.chunkId);
                checkedChunks += 1;
                checkedBytes += ref.chunk.byteLength;
              } catch (error) {
                damagedChunks.add(ref.chunkId);
                found.push(`chunk ${ref.chunkId}: ${damageMessage(error)}`);
              }
            }
            if (at === LIVE && ref.chunk !== undefined) bundle(ref.chunkId);
          }
          return found;
        };
        for (const view of views) {
          const linkCounts = new Map<number, number>();
          const visited = new Map<number, InodeRow>();
          const damagedInodes = new Set<number>();
          const report = (path: string, problem: string): void => {
            problems.push(`${view.prefix}${path}: ${problem}`);
            damagedPaths.add(view.prefix + path);
          };
          const walk = (ino: number, path: string, row: InodeRow): void => {
            if (row.fromCommit > head || (row.toCommit !== null && row.toCommit <= row.fromCommit)) {
              report(path, `inode ${ino} has an impossible version interval`);
            }
            if (row.type === 'directory') {
              if (visited.has(ino)) {
                report(path, `directory inode ${ino} appears twice (a cycle)`);
                return;
              }
              visited.set(ino, row);
              let entries: Array<{ name: string; childIno: number }>;
              try {
                entries = reader.listDirectory(ino, view.at);
              } catch (error) {
                report(path, `cannot list: ${damageMessage(error)}`);
                return;
              }
              let subdirectories = 0;
              for (const { name, childIno } of entries) {
                const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
                let childRow: InodeRow | undefined;
                try {
                  childRow = reader.inode(childIno, view.at);
                } catch (error) {
                  report(childPath, `inode ${childIno} is unreadable: ${damageMessage(error)}`);
                  continue;
                }
                if (childRow === undefined) {
                  report(childPath, `entry names missing inode ${childIno}`);
                  continue;
                }
                linkCounts.set(childIno, (linkCounts.get(childIno) ?? 0) + 1);
                if (childRow.type === 'directory') subdirectories += 1;
                walk(childIno, childPath, childRow);
              }
              if (row.nlink !== 2 + subdirectories) problems.push(`${view.prefix}${path}: directory nlink ${row.nlink}, expected ${2 + subdirectories}`);
              return;
            }
            if (row.type === 'symlink') {
              if (row.symlinkTarget === null || Buffer.byteLength(row.symlinkTarget) !== row.size) report(path, 'symlink size does not match its target');
              return;
            }
            checkedFiles += 1;
            if (visited.has(ino)) {
              // A hard link: the inode was checked under its first name; name this path too if damaged.
              if (damagedInodes.has(ino)) report(path, `hard link to damaged inode ${ino}`);
              return;
            }
            visited.set(ino, row);
            let found: string[];
            try {
              found = checkFile(ino, row, view.at);
            } catch (error) {
              found = [`chunk references are unreadable: ${damageMessage(error)}`];
            }
            if (found.length === 0 && row.contentSha256 !== null) {
              try {
                checkContent(this.pipeline, row, readRange(reader, this.pipeline, view.at, ino, row.size, 0, row.size), path);
              } catch (error) {
                found.push(damageMessage(error));
              }
            }
            if (found.length > 0) damagedInodes.add(ino);
            for (const problem of found) report(path, problem);
          };
          let rootRow: InodeRow | undefined;
          try {
            rootRow = reader.inode(ROOT_INO, view.at);
          } catch (error) {
          }
          if (rootRow === undefined) {
            report('/', 'the root directory is missing');
            continue;
          }
          walk(ROOT_INO, '/', rootRow);
          if (view.at === LIVE) {
            for (const [ino, count] of linkCounts) {
              const row = visited.get(ino);
              if (row !== undefined && row.type !== 'directory' && row.nlink !== count) problems.push(`inode ${ino}: nlink ${row.nlink}, but ${count} entries name it`);
            }
            for (const orphan of reader.orphanInodes()) {
              for (const ref of reader.chunkRefs(orphan, LIVE, 0, Number.MAX_SAFE_INTEGER)) bundle(ref.chunkId);
            }
          }
        }
        if (!rootComparable) return;
        if (!this.similarity.exists(reader) && liveRoot.counts.some((count) => count !== 0)) {
          problems.push('the similarity index is missing (an engram from before it existed): open the engram writable once to build it');
          return;
        }
        const stored = this.similarity.root(reader);
        if (Buffer.compare(Buffer.from(stored.counts.buffer, stored.counts.byteOffset, stored.counts.byteLength), Buffer.from(liveRoot.counts.buffer)) !== 0) {
          problems.push('the root vector differs from the bundle of the live content');
        }
      }),
    );
    // Parses meta, the log and every file and slot row (what a query or a commit would read).
    guarded('similarity index', () => this.store.read((reader) => this.similarity.check(reader)));
    return {
      ok: problems.length === 0,
      damagedPaths: [...damagedPaths].sort(),
      problems,
      checkedChunks,
      checkedFiles,
      checkedBytes,
    };
  }

  async stats(): Promise<EngramStats> {
    // Stored bytes as they stand once this store's background checkpoint (if any) has finished.
    await this.store.idle?.();
    return this.readStore((reader) => {
      const totals = reader.totals();
      const root = this.similarity.root(reader).toVector();
      return {
        files: totals.files,
        directories: totals.directories,
        symlinks: totals.symlinks,
        logicalBytes: totals.logicalBytes,
        storedBytes: totals.storedBytes,
        uniqueChunkBytes: totals.uniqueChunkBytes,
        dedupRatio: totals.uniqueChunkBytes === 0 ? 1 : totals.logicalBytes / totals.uniqueChunkBytes,
        correctionBytes: totals.correctionBytes,
        vectorByteFraction: totals.uniqueChunkBytes === 0 ? 0 : totals.vectorCorrectBytes / totals.uniqueChunkBytes,
        chunks: totals.chunks,
        snapshots: totals.snapshots,
        commits: totals.commits,
        profile: reader.info.profile,
        chunkBytes: reader.info.chunkBytes,
        rootVector: { nonZeroCount: root.nonZeroCount, bytes: serializeVector(root).length },
        indexBytes: totals.indexBytes,
      };
    });
  }

  async query(input: Uint8Array | string, options: ReadOptions & { k?: number; path?: string } = {}): Promise<QueryResult> {
    if (typeof input !== 'string' && !(input instanceof Uint8Array)) throw new TypeError('query input must be a Uint8Array or a string');
    const k = checkQueryK(options.k);
    let prefix: string | undefined;
    if (options.path !== undefined) {
      const components = parsePath(options.path);
      prefix = components.length === 0 ? undefined : '/' + components.join('/');
    }
    return this.view(options, [], (reader, at) =>
      at === LIVE ? this.similarity.query(reader, input, k, prefix) : this.similarity.queryAt(reader, at, input, k, prefix),
    );
  }

  async similar(path: string, options: ReadOptions & { k?: number } = {}): Promise<QueryMatch[]> {
    const k = checkQueryK(options.k);
    return this.view(options, [], (reader, at) => {
      const ino = mustResolveFile(reader, at, path).ino;
      if (at === LIVE) return this.similarity.similar(reader, ino, k);
      return this.similarity.similarAt(reader, at, '/' + parsePath(path).join('/'), k);
    });
  }

  async currentCommit(): Promise<number> {
    return this.readStore((reader) => reader.headCommit());
  }

  async sync(): Promise<void> {
    this.assertOpen();
    // Off the event loop: a mount keeps serving requests while its group sync runs.
    await this.store.syncAsync();
  }

  async checkpoint(options: { index?: boolean | 'due' } = {}): Promise<void> {
    this.assertOpen();
    const index = options.index ?? false;
    const fold =
      index !== false &&
      !this.store.readOnly &&
      this.store.read((reader) => (index === 'due' ? this.similarity.foldDueAt(reader) : this.similarity.pendingLogRows(reader) > 0));
    if (fold) {
      try {
        this.store.write({ kind: 'index-checkpoint', timeNs: nowNs() }, (writer) => this.similarity.foldLog(writer));
      } catch (error) {
        this.similarity.discard();
        throw error;
      }
    }
    this.store.checkpoint();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // A log left past the fold mark would be replayed by every later open (~6 ms per 1,000
    // chunks): fold it now, as the deferred fold would have.
    if (!this.store.readOnly && this.similarity.foldDue()) this.foldIndexLog();
    this.closed = true;
    liveOwnerTags.delete(this.ownerTag);
    // The worker's connection first, so the main connection is the last one and checkpoints.
    await this.readPool?.close();
    this.store.close();
  }
}

/** Destroys an inode left with nlink 0 (its last handle closed, or its process ended). */
function destroyOrphan(context: CommitContext, ino: number): void {
  const row = context.writer.inode(ino, LIVE);
  if (row !== undefined && row.nlink === 0) destroyInode(context, ino);
}

/** The history entries of one inode while it was named by an entry [fromCommit, toCommit). */
function inodeHistory(reader: StoreReader, pipeline: Pipeline, ino: number, fromCommit: number, toCommit: number | null): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const version of reader.inodeVersions(ino)) {
    const start = Math.max(version.fromCommit, fromCommit);
    const stop = Math.min(version.toCommit ?? Number.MAX_SAFE_INTEGER, toCommit ?? Number.MAX_SAFE_INTEGER);
    if (start >= stop) continue;
    let kind: HistoryEntry['kind'];
    if (version.fromCommit < fromCommit || (version.change === 'rename' && version.fromCommit === fromCommit)) kind = 'rename-in';
    else if (version.change === 'create' || version.change === 'write') kind = 'write';
    else kind = 'metadata';
    entries.push({
      commit: start,
      version: start,
      timeNs: reader.commitInfo(start)?.timeNs ?? 0n,
      kind,
      size: version.size,
      sha256: contentHash(reader, pipeline, ino, version, start),
    });
  }
  return entries;
}

function contentHash(reader: StoreReader, pipeline: Pipeline, ino: number, version: InodeRow, at: number): string | null {
  if (version.type === 'directory') return null;
  if (version.type === 'symlink') return createHash('sha256').update(version.symlinkTarget ?? '').digest('hex');
  if (version.contentSha256 !== null) return Buffer.from(version.contentSha256).toString('hex');
  try {
    const hash = createHash('sha256');
    for (let offset = 0; offset < version.size; offset += STREAM_WINDOW_BYTES) {
      hash.update(readRange(reader, pipeline, at, ino, version.size, offset, STREAM_WINDOW_BYTES));
    }
    return hash.digest('hex');
  } catch (error) {
    if (isEmbrError(error)) return null;
    throw error;
  }
}

/** Makes the live tree equal to the snapshot's inside one commit (see docs/design/store.md). */
function restoreTree(context: CommitContext, name: string): number {
  const writer = context.writer;
  const snapshot = writer.snapshot(name);
  if (snapshot === undefined) throw new EmbrError('NOT_FOUND', `no snapshot named ${name}`, { snapshot: name });
  const at = snapshot.commit;
  const collect = (commit: number): Map<number, InodeRow> => {
    const found = new Map<number, InodeRow>();
    const queue = [ROOT_INO];
    while (queue.length > 0) {
      const ino = queue.pop() as number;
      if (found.has(ino)) continue;
      const row = writer.inode(ino, commit);
      if (row === undefined) continue;
      found.set(ino, row);
      if (row.type === 'directory') for (const entry of writer.listDirectory(ino, commit)) queue.push(entry.childIno);
    }
    return found;
  };
  const before = collect(at);
  const live = collect(LIVE);
  // Directory entries: end the ones the snapshot does not have, put back the ones it has.
  for (const [ino, row] of live) {
    if (row.type !== 'directory') continue;
    const wanted = new Map<string, number>();
    if (before.get(ino)?.type === 'directory') for (const entry of writer.listDirectory(ino, at)) wanted.set(entry.name, entry.childIno);
    for (const entry of writer.listDirectory(ino, LIVE)) {
      if (wanted.get(entry.name) !== entry.childIno) writer.removeDentry(ino, entry.name);
    }
  }
  for (const [ino, row] of before) {
    if (row.type !== 'directory') continue;
    for (const entry of writer.listDirectory(ino, at)) {
      if (writer.lookup(ino, entry.name, LIVE) !== entry.childIno) writer.putDentry(ino, entry.name, entry.childIno);
    }
  }
  // Inodes: unchanged since the snapshot means the live row is the snapshot's row.
  for (const [ino, row] of before) {
    const liveRow = writer.inode(ino, LIVE);
    if (liveRow !== undefined && liveRow.fromCommit <= at) continue;
    writer.putInode(ino, { ...dataOf(row), ctimeNs: context.timeNs, change: 'write' });
    closeRefs(context, ino, 0, Number.MAX_SAFE_INTEGER);
    const refs = writer.chunkRefs(ino, at, 0, Number.MAX_SAFE_INTEGER);
    for (const ref of refs) {
      if (ref.chunk === undefined) throw new EmbrError('CORRUPT', `snapshot ${name} references missing chunk ${ref.chunkId}`, { what: 'chunk', chunkId: ref.chunkId });
      insertRefs(context, ino, ref.chunkIndex, [ref.chunkId]);
    }
    for (const xattrName of writer.xattrNames(ino, LIVE)) writer.removeXattr(ino, xattrName);
    for (const xattrName of writer.xattrNames(ino, at)) writer.setXattr(ino, xattrName, writer.xattr(ino, xattrName, at) as Uint8Array);
  }
  for (const [ino, row] of live) {
    if (before.has(ino)) continue;
    if (row.type !== 'directory' && context.isOpen(ino)) {
      writer.putInode(ino, { ...dataOf(row), nlink: 0, ctimeNs: context.timeNs, change: 'unlink' });
      context.keepOrphan(ino);
    } else {
      destroyInode(context, ino);
    }
  }
  return writer.commit;
}

/** A transaction: reads are recorded and validated at commit; writes are queued and applied in one commit. */
/** The live inode `path` names, or undefined when it does not resolve (any reason). */
function resolveQuietly(reader: StoreReader, path: string): number | undefined {
  try {
    return resolvePath(reader, LIVE, path)?.ino;
  } catch {
    return undefined;
  }
}

class TransactionImpl extends Session implements Transaction {
  private readonly ops: Array<Op<unknown>> = [];
  private readonly observations = new Map<string, Observation>();
  private done = false;
  private nextCommitGuess: number | undefined;

  constructor(
    private readonly engram: EngramImpl,
    private readonly forceEncode: boolean,
  ) {
    super(engram);
  }

  finish(): void {
    this.done = true;
  }

  protected override get mergesSmallPacks(): boolean {
    return true;
  }

  private assertActive(): void {
    if (this.done) throw new EmbrError('CLOSED', 'the transaction has ended');
    this.engram.assertOpen();
  }

  /** Paths the queued ops change, every ancestor of them, and subtrees they move. */
  private readonly touchedPaths = new Set<string>();
  private readonly touchedAncestors = new Set<string>();
  private readonly movedPaths = new Set<string>();
  /** Hard-linked inodes (nlink > 1) the queued ops change: reachable by other names. */
  private readonly touchedLinkedInodes = new Set<number>();
  /** Paths queued ops touched, not yet resolved into touchedLinkedInodes (done at the next read that needs it). */
  private unresolvedTouched: string[] = [];

  /**
   * True when a queued op could change what a read of `path` sees: it changed `path` itself or
   * something below it (a listing), moved a subtree holding `path` (rename, restore), or changed
   * the inode `path` names through another hard link. Creating an ancestor cannot make `path`
   * exist without an op touching `path` itself.
   */
  private touchedByOwnWrites(path: string, reader?: StoreReader): boolean {
    if (this.touchedPaths.size === 0) return false;
    if (this.touchedPaths.has(path) || this.touchedAncestors.has(path)) return true;
    if (this.unresolvedTouched.length > 0 || this.touchedLinkedInodes.size > 0) {
      const check = (live: StoreReader): boolean => {
        // Resolved lazily: a batch of writes that never reads (an ingest) pays nothing for this.
        for (const touched of this.unresolvedTouched) {
          const ino = resolveQuietly(live, touched);
          if (ino !== undefined && (live.inode(ino, LIVE)?.nlink ?? 0) > 1) this.touchedLinkedInodes.add(ino);
        }
        this.unresolvedTouched = [];
        if (this.touchedLinkedInodes.size === 0) return false;
        const resolved = resolveQuietly(live, path);
        return resolved !== undefined && this.touchedLinkedInodes.has(resolved);
      };
      if (reader === undefined ? this.engram.readStore(check) : check(reader)) return true;
    }
    if (this.movedPaths.size === 0) return false;
    if (this.movedPaths.has('/')) return true;
    for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
      if (this.movedPaths.has(path.slice(0, cut))) return true;
    }
    return false;
  }

  private noteTouched(op: Op<unknown>): void {
    this.unresolvedTouched.push(...op.touched);
    for (const path of op.touched) {
      this.touchedPaths.add(path);
      if (op.movesSubtrees) this.movedPaths.add(path);
      for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) this.touchedAncestors.add(path.slice(0, cut));
      this.touchedAncestors.add('/');
    }
  }

  protected view<T>(options: ReadOptions | undefined, observed: string[], body: (reader: StoreReader, at: number) => T): T {
    this.assertActive();
    if (options?.snapshot !== undefined) return this.engram.readStore((reader) => body(reader, snapshotCommit(reader, options)));
    const record = (reader: StoreReader): void => {
      for (const path of observed) {
        if (this.observations.has(path) || this.touchedByOwnWrites(path, reader)) continue;
        this.observations.set(path, observe(reader, path));
      }
    };
    // Reads of paths no queued op touched see the live store directly; only reads that could see
    // the transaction's own writes pay for a speculative replay of the queued ops.
    if (this.ops.length === 0 || !observed.some((path) => this.touchedByOwnWrites(path))) {
      return this.engram.readStore((reader) => {
        record(reader);
        return body(reader, LIVE);
      });
    }
    return this.engram.speculate(this.ops, (reader) => {
      record(reader);
      return body(reader, LIVE);
    });
  }

  protected async submit<T>(kind: string, touched: string[], build: OpBuilder<T>): Promise<T> {
    this.assertActive();
    const op = await build(this.forceEncode);
    this.assertActive();
    this.ops.push(op as Op<unknown>);
    this.noteTouched(op as Op<unknown>);
    // The final version is the commit number, known only at commit: this is the next one as of the
    // transaction's first write (read once: a read transaction per queued write cost ~13% of a
    // 2,048-file transaction's CPU).
    this.nextCommitGuess ??= (await this.engram.currentCommit()) + 1;
    return this.nextCommitGuess as T;
  }

  async commitQueued(beforeCommit?: () => Promise<void>): Promise<void> {
    this.assertActive();
    // Small files written together are packed together (and a chunk copied among them once).
    coalescePacks(this.ops.flatMap((op) => (op.content === undefined ? [] : [op.content])));
    if (beforeCommit !== undefined) {
      await beforeCommit();
      this.assertActive();
    }
    if (this.ops.length === 0) return;
    this.engram.commit('transaction', this.ops, (reader) => {
      for (const [path, seen] of this.observations) {
        const now = observe(reader, path);
        if (now.ino !== seen.ino || now.version !== seen.version) {
          throw new EmbrError('VERSION_MISMATCH', `${path} changed since the transaction read it (version ${seen.version} → ${now.version})`, {
            path,
            expected: seen.version,
            actual: now.version,
          });
        }
      }
    });
  }

  async open(): Promise<FileHandle> {
    throw new EmbrError('NOT_SUPPORTED', 'file handles cannot be opened inside a transaction', { reason: 'transaction' });
  }
}

/** An open file by inode: keeps an unlinked inode alive until closed. */
class FileHandleImpl implements FileHandle {
  private released = false;
  private readonly readCache = new HandleReadCache();

  constructor(
    private readonly engram: EngramImpl,
    readonly ino: number,
    private readonly path: string,
  ) {}

  private assertActive(): void {
    if (this.released) throw new EmbrError('CLOSED', `handle on ${this.path} is closed`);
  }

  private liveRow(reader: StoreReader): InodeRow {
    const row = reader.inode(this.ino, LIVE);
    if (row === undefined) throw new EmbrError('NOT_FOUND', `${this.path}: the file was removed by another process`, { path: this.path });
    return row;
  }

  async read(offset: number, length: number): Promise<ReadResult> {
    this.assertActive();
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) throw new RangeError('offset and length must be non-negative integers');
    const pool = this.engram.readPool;
    if (pool !== undefined && length >= POOL_HANDLE_READ_MIN_BYTES) {
      try {
        return await pool.read(this.ino, this.path, offset, length);
      } catch (error) {
        // A verdict (CORRUPT, NOT_FOUND, ...) stands; a failure of the pool itself: read here.
        if (isEmbrError(error)) throw error;
      }
      this.assertActive();
    }
    // Small reads (a random reader through the mount) look the file up through the handle's cache.
    return this.engram.readStore((reader) => readCached(reader, this.engram.pipeline, this.readCache, this.ino, this.path, offset, length));
  }

  releaseReadBuffer(data: Uint8Array): void {
    this.engram.readPool?.release(data);
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    this.assertActive();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError('offset must be a non-negative integer');
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    this.engram.assertWritable();
    if (data.length === 0) return (await this.stat()).version;
    const chunkBytes = this.engram.pipeline.chunkBytes;
    const first = Math.ceil(offset / chunkBytes);
    const end = Math.floor((offset + data.length) / chunkBytes);
    for (let attempt = 0; ; attempt += 1) {
      const interior = first < end ? await this.engram.encodeRange(data.subarray(first * chunkBytes - offset, end * chunkBytes - offset), first, attempt > 0) : null;
      const op: Op<number> = {
        kind: 'write',
        touched: [],
        apply: (context) => writeAt(context, this.ino, this.liveRow(context.writer), offset, data, interior),
      };
      try {
        return this.engram.commit('write', [op], () => undefined)[0] as number;
      } catch (error) {
        if (error instanceof ChunkVanishedError && attempt === 0) continue;
        throw error;
      }
    }
  }

  async truncate(size: number): Promise<number> {
    this.assertActive();
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a non-negative integer');
    this.engram.assertWritable();
    const op: Op<number> = { kind: 'truncate', touched: [], apply: (context) => truncateTo(context, this.ino, this.liveRow(context.writer), size) };
    return this.engram.commit('truncate', [op], () => undefined)[0] as number;
  }

  async stat(): Promise<Stat> {
    this.assertActive();
    return this.engram.readStore((reader) => statOf(this.ino, this.liveRow(reader)));
  }

  async chmod(mode: number): Promise<number> {
    return this.changeMetadata('chmod', metadataChanges.chmod(mode));
  }

  async chown(uid: number, gid: number): Promise<number> {
    return this.changeMetadata('chown', metadataChanges.chown(uid, gid));
  }

  async utimes(atimeNs: bigint | null, mtimeNs: bigint | null): Promise<number> {
    return this.changeMetadata('utimes', metadataChanges.utimes(atimeNs, mtimeNs));
  }

  async setxattr(name: string, value: Uint8Array, options: XattrOptions = {}): Promise<number> {
    return this.changeMetadata('setxattr', metadataChanges.setxattr(this.path, name, value, options));
  }

  async removexattr(name: string): Promise<number> {
    return this.changeMetadata('removexattr', metadataChanges.removexattr(this.path, name));
  }

  async getxattr(name: string): Promise<Uint8Array> {
    this.assertActive();
    validateXattrName(this.path, name);
    return this.engram.readStore((reader) => {
      this.liveRow(reader);
      const value = reader.xattr(this.ino, name, LIVE);
      if (value === undefined) throw new EmbrError('NO_ATTRIBUTE', `${this.path} has no attribute ${name}`, { path: this.path, name });
      return value;
    });
  }

  async listxattr(): Promise<string[]> {
    this.assertActive();
    return this.engram.readStore((reader) => {
      this.liveRow(reader);
      return reader.xattrNames(this.ino, LIVE);
    });
  }

  /** A metadata change of the handle's inode, found by number (its names may be gone). */
  private async changeMetadata(kind: string, change: MetadataChange): Promise<number> {
    this.assertActive();
    this.engram.assertWritable();
    const op: Op<number> = { kind, touched: [], apply: (context) => applyMetadataChange(context, this.ino, this.liveRow(context.writer), change) };
    return this.engram.commit(kind, [op], () => undefined)[0] as number;
  }

  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.engram.releaseHandle(this.ino);
  }
}

export { EngramImpl };
