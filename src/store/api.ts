/**
 * The store contract: the only seam between VersionedEmbrFS (`src/fs`) and where bytes live.
 *
 * A store keeps versioned rows in the MVCC-by-interval form of docs/design/store.md: every inode
 * version, directory entry, chunk reference and extended attribute carries `[fromCommit,
 * toCommit)` (toCommit `null` = live). Reading "at commit s" sees the rows with
 * `fromCommit <= s < toCommit`. Chunks are content-addressed by full SHA-256 and stored once,
 * grouped into compressed packs.
 *
 * Every read and write runs synchronously inside {@link Store.read} / {@link Store.write}, so an
 * implementation can map each call to one database transaction that is never held across an
 * `await`. Two implementations pass one conformance suite (`conformance.ts`): `MemoryStore`
 * (tests) and `SqliteStore` (the embedded default). A PostgreSQL or S3-backed store would
 * implement the same interface (rows in tables, pack payloads in objects).
 *
 * @example
 * ```ts
 * const store: Store = openSqliteStore({ file: 'a.engram', create: { profile: 'positional', chunkBytes: 4096 } });
 * const commit = store.write({ kind: 'mkdir', timeNs: 1n }, (writer) => writer.commit);
 * store.close();
 * ```
 */
import type { CodecProfileName } from '../codec/api.js';
import type { SparseVector } from '../vsa/sparse.js';

/** The kind of an inode (same values as the fs layer's EntryType). */
export type InodeType = 'file' | 'directory' | 'symlink';

/** How hard a commit waits for the disk (the fs layer's Durability). */
export type StoreDurability = 'full' | 'normal';

/** Inode number of the root directory, created with the store. */
export const ROOT_INO = 1;

/** A commit number larger than any real one: reading "at LIVE" sees the live rows. */
export const LIVE = Number.MAX_SAFE_INTEGER;

/** What made an inode version (drives `history` kinds). */
export type ChangeKind = 'create' | 'write' | 'metadata' | 'rename' | 'link' | 'unlink';

/** Fixed facts of an engram, written at creation. */
export interface StoreInfo {
  profile: CodecProfileName;
  chunkBytes: number;
  schemaVersion: number;
  createdNs: bigint;
}

/** The fields of one inode version (without its interval). */
export interface InodeData {
  type: InodeType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;
  /** Symlink target (UTF-8 text), null otherwise. */
  symlinkTarget: string | null;
  /** SHA-256 of the whole content when known at write time (full writes), else null. */
  contentSha256: Uint8Array | null;
  change: ChangeKind;
}

/** One inode version row. */
export interface InodeRow extends InodeData {
  ino: number;
  fromCommit: number;
  toCommit: number | null;
}

/** One directory entry row (`name` is the UTF-8 text of one path component). */
export interface DentryRow {
  parentIno: number;
  name: string;
  childIno: number;
  fromCommit: number;
  toCommit: number | null;
}

/** A chunk reference of a file at a commit, with what is needed to read it. */
export interface ChunkRef {
  chunkIndex: number;
  chunkId: number;
  /** The chunk's metadata; undefined when the reference dangles (a corrupt store). */
  chunk: ChunkInfo | undefined;
}

/** Where a chunk's payload lies. */
export type PayloadLocation = Pick<ChunkInfo, 'chunkId' | 'packId' | 'packOffset' | 'payloadBytes'>;

/** A chunk reference with where its payload lies; `chunk` undefined when the reference dangles. */
export interface ChunkPlacement {
  chunkIndex: number;
  chunkId: number;
  chunk: (PayloadLocation & { byteLength: number }) | undefined;
}

/** Metadata of a stored chunk. */
export interface ChunkInfo {
  chunkId: number;
  sha256: Uint8Array;
  byteLength: number;
  packId: number;
  packOffset: number;
  payloadBytes: number;
  vectorCorrectBytes: number;
  correctionBytes: number;
}

/** A chunk encoded by the codec, ready to go into a pack. */
export interface NewChunk {
  sha256: Uint8Array;
  byteLength: number;
  payload: Uint8Array;
  vectorCorrectBytes: number;
  correctionBytes: number;
  /** Serialized similarity fingerprint (opaque to the store). */
  fingerprint: Uint8Array;
  /**
   * The fingerprint as a vector when the encoding thread still has it (never stored): the commit's
   * similarity-index update then skips parsing `fingerprint`.
   */
  fingerprintVector?: SparseVector | undefined;
}

/** A pack prepared (compressed) outside any transaction by `preparePack`. */
export interface PreparedPack {
  /** Compressed pack bytes as stored. */
  data: Uint8Array;
  /** Sum of the payload lengths (the decompressed size). */
  rawBytes: number;
  /** The chunks in pack order; `offset` is the payload's offset in the decompressed pack. */
  chunks: Array<Omit<NewChunk, 'payload'> & { offset: number; payloadBytes: number }>;
}

/**
 * The packs of one encode batch with their chunks in columns (every pack's chunks, in pack order,
 * back to back): what an encode worker posts and a background connection stores. A few typed
 * arrays instead of one object per chunk: structured-cloning ~2,500 chunk objects per 10 MB
 * written (worker to main thread, main thread to the background connection) cost the main thread
 * ~25 ms, a fifth of the write. Built by `batchPacks`, read back by `unbatchPacks` (src/store/pack.ts).
 */
export interface PackBatch {
  /** Each pack's stored bytes and raw size, and how many of the batch's chunks (the next ones) it holds. */
  packs: Array<{ data: Uint8Array; rawBytes: number; chunkCount: number }>;
  /** 32 bytes per chunk. */
  sha256s: Uint8Array;
  /** {@link PACK_BATCH_FIELDS} per chunk: byteLength, offset in its decompressed pack, payloadBytes, vectorCorrectBytes, correctionBytes. */
  fields: Uint32Array;
  /** The serialized fingerprints back to back: chunk i's ends at fingerprintEnds[i] (and starts where chunk i-1's ends). */
  fingerprints: Uint8Array;
  fingerprintEnds: Uint32Array;
  /**
   * Optional: each chunk's fingerprint as indices, positive then negative, back to back, with
   * dimCounts[2i] = positives and dimCounts[2i + 1] = negatives of chunk i: the receiving thread
   * builds the vectors from them instead of parsing `fingerprints` (~12 ms per 10 MB).
   */
  dims?: Uint32Array;
  dimCounts?: Uint32Array;
  /** The vectors' dimension (with `dims`; every chunk's is the same). */
  dimension?: number;
}

/** What {@link Store.stageInBackground} resolves to. */
export interface StagedIds {
  /** Per entry of the `shas` asked about: its chunk id, null for a hole, undefined if unknown. */
  ids: Array<number | null | undefined>;
  /** Per chunk of the batch, in batch order: its chunk id (the existing one for a chunk stored before). */
  chunkIds: number[];
  /** The number of the `stage` commit that stored the batch (for {@link StoreWriter.claimStages}). */
  stageCommit: number;
}

/** Numbers per chunk in {@link PackBatch.fields}. */
export const PACK_BATCH_FIELDS = 5;

export interface SnapshotRow {
  name: string;
  commit: number;
  createdNs: bigint;
}

export interface CommitRow {
  commit: number;
  timeNs: bigint;
  kind: string;
}

/** Aggregates for `stats`. */
export interface StoreTotals {
  files: number;
  directories: number;
  symlinks: number;
  logicalBytes: number;
  storedBytes: number;
  uniqueChunkBytes: number;
  correctionBytes: number;
  vectorCorrectBytes: number;
  chunks: number;
  snapshots: number;
  commits: number;
  /** Bytes of the similarity index rows (UTF-8 key bytes + value bytes, before SQLite's per-row overhead). */
  indexBytes: number;
}

/** What GC keeps: rows live at any of these commits, or live after `retainAfterCommit`. */
export interface GcRule {
  pinnedCommits: number[];
  /** Rows whose interval ends after this commit are kept (history retention). */
  retainAfterCommit: number;
  /** Unreferenced chunks added by a 'stage' commit after this time are kept (a streaming write in progress). */
  stagedGraceAfterNs: bigint;
}

export interface GcReport {
  freedChunks: number;
  freedVersions: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** Read access inside one consistent read (one read transaction). */
export interface StoreReader {
  readonly info: StoreInfo;
  /** The newest commit number (0 for a fresh store). */
  headCommit(): number;
  commitInfo(commit: number): CommitRow | undefined;
  /** The inode version visible at `at` ({@link LIVE} for the live tree). */
  inode(ino: number, at: number): InodeRow | undefined;
  /** Every stored version of an inode, oldest first. */
  inodeVersions(ino: number): InodeRow[];
  lookup(parentIno: number, name: string, at: number): number | undefined;
  /** Entries of a directory at `at`, sorted by name (UTF-16 code unit order). */
  listDirectory(parentIno: number, at: number): Array<{ name: string; childIno: number }>;
  /** Every stored (parent, name) entry row, oldest first. */
  dentryHistory(parentIno: number, name: string): DentryRow[];
  /** Entries naming `childIno` at `at`. */
  dentriesOf(childIno: number, at: number): DentryRow[];
  /** Chunk references of a file at `at` with chunkIndex in [firstIndex, endIndex), ascending. */
  chunkRefs(ino: number, at: number, firstIndex: number, endIndex: number): ChunkRef[];
  /**
   * Like {@link chunkRefs} without the chunks' hashes (a whole-file read checked by the file's
   * content hash needs only where each payload lies: no hash Buffer per chunk).
   */
  chunkPlacements(ino: number, at: number, firstIndex: number, endIndex: number): ChunkPlacement[];
  chunkInfo(chunkId: number): ChunkInfo | undefined;
  chunkIdBySha256(sha256: Uint8Array): number | undefined;
  /** The uncompressed payload of a chunk (served from a small pack cache); CORRUPT if its pack is missing or bad. */
  chunkPayload(chunk: PayloadLocation): Uint8Array;
  /**
   * The same bytes as {@link chunkPayload}, for a caller that uses them at once and keeps nothing:
   * valid only until the next `chunkPayloadView` call on this reader (a pack not in the cache is
   * unpacked into one reused buffer instead of a new one; sequential chunks of one pack unpack it
   * once). Same checks, same CORRUPT errors.
   */
  chunkPayloadView(chunk: PayloadLocation): Uint8Array;
  /**
   * Optional. The payload of a chunk a caller reads alone (a small random read), for a store that
   * can read it without loading its whole pack: a pack stored uncompressed gives just the chunk's
   * bytes; any other pack is unpacked as {@link chunkPayloadView} would. Same validity (until the
   * next payload call on this reader). The caller checks the bytes against the chunk's SHA-256,
   * which is what vouches for them (a slice skips the pack's format byte). CORRUPT if the pack is
   * missing or the chunk lies outside it.
   */
  chunkPayloadAlone?(chunk: PayloadLocation): Uint8Array;
  chunkFingerprint(chunkId: number): Uint8Array | undefined;
  xattr(ino: number, name: string, at: number): Uint8Array | undefined;
  xattrNames(ino: number, at: number): string[];
  snapshot(name: string): SnapshotRow | undefined;
  snapshots(): SnapshotRow[];
  /** Live inodes with nlink 0 (unlinked while open). */
  orphanInodes(): number[];
  /** Who holds an orphan open (an opaque owner tag, see fs), if recorded. */
  orphanOwner(ino: number): string | undefined;
  totals(): StoreTotals;
  /** Every chunk id stored (for verify), ascending. */
  allChunkIds(): number[];
  /** A row of the similarity index (key → blob, see src/query/storage.ts), or undefined. */
  indexRow(key: string): Uint8Array | undefined;
}

/** Write access inside one commit (one IMMEDIATE transaction). */
export interface StoreWriter extends StoreReader {
  /** The commit number being written. */
  readonly commit: number;
  allocateIno(): number;
  /** Replaces the live version of `ino` (or creates it) with `data` from this commit on. */
  putInode(ino: number, data: InodeData): void;
  /** Ends the live version of `ino`, its chunk refs and xattrs at this commit. */
  removeInode(ino: number): void;
  putDentry(parentIno: number, name: string, childIno: number): void;
  removeDentry(parentIno: number, name: string): void;
  /** Stores a pack; returns the chunk ids of its chunks in order (existing ids for known SHA-256). */
  putPack(pack: PreparedPack): number[];
  /**
   * Ends the live refs with index in [firstIndex, endIndex); returns how many it ended (refs this
   * commit began are dropped, not ended, and count too). Not their ids: nothing needs them, and
   * reading 2,441 of them back cost a large write's final commit a query.
   */
  closeChunkRefs(ino: number, firstIndex: number, endIndex: number): number;
  /** Adds live refs `chunkIds[i]` at index `firstIndex + i` (those indexes must have no live ref). */
  insertChunkRefs(ino: number, firstIndex: number, chunkIds: number[]): void;
  setXattr(ino: number, name: string, value: Uint8Array): void;
  removeXattr(ino: number, name: string): void;
  putSnapshot(row: SnapshotRow): void;
  removeSnapshot(name: string): void;
  /** Records which engram instance keeps an unlinked inode open (removed with the inode). */
  setOrphanOwner(ino: number, owner: string): void;
  /**
   * Marks earlier `stage` commits as claimed by this commit: their chunks lose the staging grace
   * (GC then frees them like any chunk once unreferenced). The commits' kind becomes
   * `stage-claimed`; one row per stage commit, where claiming chunk by chunk rewrote every chunk
   * row of a large write in its final commit.
   */
  claimStages(stageCommits: number[]): void;
  /** Inserts or replaces a similarity-index row in this commit's transaction (not versioned). */
  putIndexRow(key: string, value: Uint8Array): void;
  deleteIndexRow(key: string): void;
  /** Removes every similarity-index row (an index rebuild starts from nothing). */
  clearIndexRows(): void;
}

export interface CommitStart {
  /** Short label of the operation (e.g. 'write', 'rename', 'transaction'). */
  kind: string;
  timeNs: bigint;
  /**
   * false: this commit need not reach the disk before it returns (SQLite: synchronous=NORMAL for
   * it). Only for commits nothing depends on until a later durable commit, whose sync then covers
   * them too (a streaming write's staged packs). Default true.
   */
  durable?: boolean;
}

/** An open engram store. */
export interface Store {
  readonly info: StoreInfo;
  readonly readOnly: boolean;
  /** Runs `body` in one consistent read; `body` must be synchronous. */
  read<T>(body: (reader: StoreReader) => T): T;
  /** Runs `body` as one new commit in one IMMEDIATE transaction; rolls back if it throws. */
  write<T>(start: CommitStart, body: (writer: StoreWriter) => T): T;
  /** Runs `body` as a commit that is always rolled back (read-your-writes previews). */
  speculate<T>(start: CommitStart, body: (writer: StoreWriter) => T): T;
  /** Frees rows outside `rule` and chunks and packs nothing references, then shrinks. */
  collectGarbage(rule: GcRule): GcReport;
  /** Bytes the store occupies (files on disk, or payload bytes in memory). */
  storedBytes(): number;
  /**
   * The backend's structural self-check (SQLite `PRAGMA quick_check`): the problems found, empty
   * when sound. Costly (reads every page), so `verify` runs it, opening does not.
   */
  integrityCheck(): string[];
  /**
   * Makes every commit so far durable (SQLite: fsync of the WAL, then of the database file). A
   * no-op under full durability, where each commit already synced; under 'normal' it is what
   * `fsync(2)` on a mount calls.
   */
  sync(): void;
  /**
   * {@link sync} off the calling thread (the fsyncs run on libuv's thread pool), so a mount's
   * event loop keeps serving requests meanwhile. Covers every commit made before the call.
   */
  syncAsync(): Promise<void>;
  /**
   * Copies what the WAL holds into the database file as far as readers allow, without waiting for
   * them (SQLite `wal_checkpoint(PASSIVE)`). Commits do this themselves unless the store was opened
   * with `autoCheckpoint: false`; a no-op for stores without a log.
   */
  checkpoint(): void;
  /**
   * A large write made of relaxed commits (`durable: false`, its staged packs) and one final
   * durable commit: until `release()`, commits run no automatic WAL checkpoint (copying megabytes
   * of WAL into the database file and syncing it inside a commit of the write); `release()` asks
   * for that checkpoint off the calling thread. A no-op for stores without a log.
   */
  holdCheckpoints(): { release(): void };
  /**
   * Starts making what the commits so far wrote durable in the background (SQLite: an
   * asynchronous fdatasync of the WAL on libuv's thread pool), so that the sync of a later
   * durable commit finds most of its bytes already on disk. Correctness never depends on it: the
   * durable commit still syncs; a no-op where nothing needs syncing.
   */
  syncAhead(): void;
  /**
   * Which of `shas` the store holds, answered by the store's background connection (undefined
   * without one: the caller looks them up itself). That connection wrote the SHA-256 index pages
   * of a large write's earlier batches and still has them cached, where the caller's connection
   * lost its whole page cache to that commit (SQLite resets a connection's cache when another
   * connection changed the file): 2,441 lookups cost ~1.8 ms there against ~9 ms here.
   */
  lookupInBackground?(shas: Uint8Array[]): Promise<boolean[]> | undefined;
  /**
   * Optional (SQLite): stores the packs of `batch` in a `stage` commit (`durable: false`) made by
   * a background connection, off the calling thread, and resolves to one chunk id per entry of
   * `shas` (null for null, undefined for a SHA-256 neither in the packs nor stored) and one per
   * chunk of the batch. Requests are applied in the order they are made. The pack bodies that own
   * their whole buffer are moved away (detached here); the other columns are copied.
   * Returns undefined when no background connection is available: stage in a commit of your own.
   */
  stageInBackground?(timeNs: bigint, batch: PackBatch, shas: Array<Uint8Array | null>): Promise<StagedIds> | undefined;
  /**
   * Optional (SQLite): resolves once every request made to the background connection so far
   * (staged packs, checkpoints) is answered. Compaction and stats wait for it, so they neither
   * race the store's own checkpoint nor read file sizes it is changing.
   */
  idle?(): Promise<void>;
  close(): void;
}

/** Options common to every store factory. */
export interface StoreOpenOptions {
  readOnly?: boolean;
  durability?: StoreDurability;
  /**
   * Default true: a commit that leaves the WAL above SQLite's threshold (1000 pages) copies it into
   * the database file before returning. False: commits never do; the owner calls
   * {@link Store.checkpoint} when it suits it (a bulk writer, outside its ordered commit section),
   * and close checkpoints the rest. The WAL grows meanwhile.
   */
  autoCheckpoint?: boolean;
  /** Create a new store with these facts when none exists. */
  create?: { profile: CodecProfileName; chunkBytes: number; timeNs: bigint };
  /**
   * Default true: the metadata tables are integrity-checked at open. False skips that, for a second
   * connection to a file this process has already opened and checked (the read worker's).
   */
  checkOnOpen?: boolean;
  /**
   * Bytes of the file SQLite may read through a memory map instead of read(2) (`PRAGMA mmap_size`;
   * default 0, off). Only the read worker's read-only connection uses it: see docs/design/store.md.
   */
  mmapBytes?: number;
}
