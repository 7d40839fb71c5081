/**
 * The public contract of VersionedEmbrFS: what `openEngram` returns.
 *
 * The CLI (`src/cli`), the FUSE adapter (`src/fuse`) and the test suites are written against
 * these types only. The implementation lives beside this file.
 *
 * Conventions:
 * - Paths are absolute, normalized POSIX paths (`/`, `/a/b.txt`). Hostile paths (`..` escaping
 *   the root, NUL, empty components, a component over 255 bytes, a path over 4096 bytes) are
 *   refused with `INVALID_PATH` / `NAME_TOO_LONG`. The API never follows symlinks: a symlink is
 *   an entry with a target (like tar or git); `stat` on a symlink describes the link.
 * - Versions are positive integers. The version of an inode is the global commit sequence number
 *   of the last commit that changed it (content or metadata), so it strictly increases and the
 *   value stored is the value returned. Directories change version when entries are added or
 *   removed. Hard links share an inode and therefore a version.
 * - Times are nanoseconds since the Unix epoch as `bigint` (names end in `Ns`).
 * - Every mutation is one SQLite transaction; nothing is held across an `await`.
 */

/** The codec profile used for newly written chunks. */
export type ProfileName = 'positional' | 'holographic';

/** How hard a commit waits for the disk. `full` (default): SQLite synchronous=FULL. `normal`: opt-in, may lose the last commits on power loss (never on process crash). */
export type Durability = 'full' | 'normal';

export interface OpenOptions {
  /** Create the engram file if it does not exist (default false: a missing file is NOT_FOUND). */
  create?: boolean;
  /** Codec profile for new chunks (default 'positional'). Stored in the engram at creation. */
  profile?: ProfileName;
  /** Chunk size in bytes for new engrams (default 4096). Stored in the engram at creation. */
  chunkBytes?: number;
  /** Open read-only: every mutation fails with READ_ONLY. */
  readOnly?: boolean;
  /** Default 'full'. */
  durability?: Durability;
  /**
   * Default false. True for a bulk writer (large transactions one after another, like the workers
   * of `embrfs ingest`): commits never copy the write-ahead log into the database file, and the
   * similarity index folds its log into its base rows every 131,072 changed chunks instead of
   * every 8,192. The caller runs {@link Engram.checkpoint} when it suits
   * it: the WAL copy after each batch (outside its ordered commits), `{ index: true }` at the end.
   * What is left, close and the next writers fold; nothing is lost either way.
   */
  bulk?: boolean;
  /**
   * Default 0 (off). Bytes of the engram file SQLite reads through a memory map instead of
   * read(2) (`PRAGMA mmap_size`, capped by the SQLite build at 2 GiB): a 128 KiB pack spans 30-odd
   * overflow pages, each a read(2) and a copy without the map, so reads of file content cost about
   * 15-20 % less CPU. The FUSE mount turns it on. The price: a disk I/O error while reading
   * through the map is a SIGBUS (the process ends) instead of an IO error, and the mapped pages
   * count in the process's RSS (they are the page cache, shared, not extra memory).
   */
  mmapBytes?: number;
  /**
   * Default false. True: file-handle reads of 256 KiB or more are served by a worker thread with a
   * read-only connection of its own (src/fs/read-pool.ts), so a caller that keeps a read in flight
   * while it uses the previous one (the FUSE mount's read-ahead) has the lookups, decompression,
   * decoding and SHA-256 checks done on another core. A caller that awaits each read in turn gains
   * nothing and pays a thread round trip per read. Ignored off the main thread and on one core.
   */
  readWorker?: boolean;
}

export type EntryType = 'file' | 'directory' | 'symlink';

/** POSIX metadata of an inode. Answered from metadata only: never decodes data. */
export interface Stat {
  /** Stable inode number (survives reopen; never reused while the engram lives). */
  ino: number;
  type: EntryType;
  /** Permission bits only (0o7777); the type is in `type`. */
  mode: number;
  uid: number;
  gid: number;
  /** Logical size in bytes (symlink: byte length of its target). */
  size: number;
  nlink: number;
  version: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;
}

export interface DirectoryEntry {
  name: string;
  type: EntryType;
  ino: number;
}

/** Options on every read-side call. */
export interface ReadOptions {
  /** Read as of the named snapshot instead of the live tree. */
  snapshot?: string;
}

export interface ReadResult {
  data: Uint8Array;
  version: number;
}

export interface WriteOptions {
  /** Fail with VERSION_MISMATCH unless the file's current version is this one (an absent file has version 0). */
  expectedVersion?: number;
  /** Create-only: fail with EXISTS if the path exists. Never conflicts with creates of other paths. */
  exclusive?: boolean;
  /** Mode for a newly created file (default 0o644). Ignored for an existing file. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Set the modification time (default: now). */
  mtimeNs?: bigint;
}

export interface MkdirOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
  /** Create missing parents, and succeed if the directory exists (mkdir -p). */
  parents?: boolean;
}

export interface RenameOptions {
  /** Fail with EXISTS instead of replacing an existing target (RENAME_NOREPLACE). */
  noReplace?: boolean;
}

export interface XattrOptions {
  /** 'create': fail with EXISTS if present (XATTR_CREATE); 'replace': fail with NO_ATTRIBUTE if absent (XATTR_REPLACE). */
  flag?: 'create' | 'replace';
}

/** One entry of a path's history. */
export interface HistoryEntry {
  /** Global commit sequence number of the change. */
  commit: number;
  /** The inode version after the change (equals `commit`). */
  version: number;
  timeNs: bigint;
  kind: 'write' | 'delete' | 'rename-in' | 'rename-out' | 'metadata';
  /** Size after the change (0 for delete). */
  size: number;
  /** Hex SHA-256 of the whole content after the change (null for delete). */
  sha256: string | null;
}

export interface SnapshotInfo {
  name: string;
  commit: number;
  createdNs: bigint;
}

export interface VerifyReport {
  ok: boolean;
  /** Paths (live and in snapshots, as `name:/path` for snapshots) whose data failed a check. */
  damagedPaths: string[];
  /** Human-readable descriptions of every problem found. */
  problems: string[];
  checkedChunks: number;
  checkedFiles: number;
  checkedBytes: number;
}

export interface CompactOptions {
  /** Keep file history versions newer than this many commits back (default: see DESIGN.md). */
  retainCommits?: number;
}

export interface CompactReport {
  freedChunks: number;
  freedVersions: number;
  bytesBefore: number;
  bytesAfter: number;
}

export interface EngramStats {
  files: number;
  directories: number;
  symlinks: number;
  /** Sum of live file sizes. */
  logicalBytes: number;
  /** Bytes of the engram file(s) on disk. */
  storedBytes: number;
  /** Bytes of unique chunk payloads (after dedup, before compression). */
  uniqueChunkBytes: number;
  /** logicalBytes / uniqueChunkBytes. */
  dedupRatio: number;
  /** Bytes stored as corrections. */
  correctionBytes: number;
  /** Share of chunk bytes that decode right from the vector alone (0..1). */
  vectorByteFraction: number;
  chunks: number;
  snapshots: number;
  commits: number;
  profile: ProfileName;
  chunkBytes: number;
  /** Non-zeros in the root vector and its serialized size. */
  rootVector: { nonZeroCount: number; bytes: number };
  /** Bytes of the similarity index rows (keys + values, before SQLite's per-row overhead). */
  indexBytes: number;
}

/** A similarity match (issue 6). */
export interface QueryMatch {
  path: string;
  offset: number;
  length: number;
  score: number;
}

export interface QueryResult {
  matches: QueryMatch[];
  /** Cosine of the query fingerprint with the engram's root vector (how much the engram as a whole resonates). */
  rootScore: number;
}

/** An open file, for FUSE-style access: survives unlink of its path until closed. */
export interface FileHandle {
  readonly ino: number;
  read(offset: number, length: number): Promise<ReadResult>;
  /**
   * Gives back the bytes of an earlier {@link read} of this handle that the caller (and every
   * view of them) is done with: a later large read may decode into the same memory instead of
   * fresh pages (the FUSE mount's read-ahead does this). Using `data` afterwards reads garbage or
   * nothing; passing anything else is ignored.
   */
  releaseReadBuffer(data: Uint8Array): void;
  /** Writes at an offset (extending with zeros if past the end); returns the new version. */
  write(offset: number, data: Uint8Array): Promise<number>;
  truncate(size: number): Promise<number>;
  stat(): Promise<Stat>;
  /**
   * Metadata of the open inode (fchmod, fchown, futimens, fsetxattr, ...): as the path calls of
   * {@link Engram}, also after the inode's last name was unlinked. Each returns the new version.
   */
  chmod(mode: number): Promise<number>;
  chown(uid: number, gid: number): Promise<number>;
  /** `null` leaves that time unchanged. */
  utimes(atimeNs: bigint | null, mtimeNs: bigint | null): Promise<number>;
  setxattr(name: string, value: Uint8Array, options?: XattrOptions): Promise<number>;
  getxattr(name: string): Promise<Uint8Array>;
  listxattr(): Promise<string[]>;
  removexattr(name: string): Promise<number>;
  /** Releases the handle; an unlinked inode is freed on its last close. */
  close(): Promise<void>;
}

/** The read-side operations, shared by the live engram and a transaction. */
export interface ReadApi {
  readFile(path: string, options?: ReadOptions): Promise<ReadResult>;
  /** Reads up to `length` bytes at `offset` (short at end of file). */
  read(path: string, offset: number, length: number, options?: ReadOptions): Promise<ReadResult>;
  stat(path: string, options?: ReadOptions): Promise<Stat>;
  exists(path: string, options?: ReadOptions): Promise<boolean>;
  readdir(path: string, options?: ReadOptions): Promise<DirectoryEntry[]>;
  readlink(path: string, options?: ReadOptions): Promise<string>;
  getxattr(path: string, name: string, options?: ReadOptions): Promise<Uint8Array>;
  listxattr(path: string, options?: ReadOptions): Promise<string[]>;
}

/** The write-side operations, shared by the live engram and a transaction. Each returns the new version of the changed inode where one exists. */
export interface WriteApi {
  writeFile(path: string, data: Uint8Array, options?: WriteOptions): Promise<number>;
  write(path: string, offset: number, data: Uint8Array, options?: { expectedVersion?: number }): Promise<number>;
  truncate(path: string, size: number, options?: { expectedVersion?: number }): Promise<number>;
  deleteFile(path: string, options?: { expectedVersion?: number }): Promise<void>;
  mkdir(path: string, options?: MkdirOptions): Promise<number>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string, options?: RenameOptions): Promise<void>;
  symlink(target: string, path: string, options?: { uid?: number; gid?: number; mtimeNs?: bigint }): Promise<number>;
  link(existingPath: string, newPath: string): Promise<number>;
  chmod(path: string, mode: number): Promise<number>;
  chown(path: string, uid: number, gid: number): Promise<number>;
  /** `null` leaves a time unchanged (UTIME_OMIT); use the current time for UTIME_NOW. */
  utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null): Promise<number>;
  setxattr(path: string, name: string, value: Uint8Array, options?: XattrOptions): Promise<number>;
  removexattr(path: string, name: string): Promise<number>;
}

/**
 * A multi-file transaction: reads are recorded and validated at commit. Reads see the
 * transaction's own queued writes. Write methods resolve to a provisional version (the next
 * commit number when queued); all changes get the transaction's commit number. Precondition
 * errors of queued writes (EXISTS, VERSION_MISMATCH, NOT_FOUND...) surface from `transaction()`.
 */
export interface Transaction extends ReadApi, WriteApi {}

export interface TransactionOptions {
  /** Retry the callback on VERSION_MISMATCH up to this many times with jittered backoff (default 0: fail at once). */
  retries?: number;
  /**
   * Runs after the callback, once every write it queued is encoded and packed, right before the
   * commit (on every attempt, also when nothing was written). Use it to order commits made in
   * parallel: `ingest`'s workers wait here for their turn, so everything up to the commit itself
   * runs beside the other workers' commits. A rejection fails the transaction (not retried).
   */
  beforeCommit?: () => Promise<void>;
}

/** An open engram. */
export interface Engram extends ReadApi, WriteApi {
  readonly file: string;
  readonly readOnly: boolean;

  /** Opens a handle on an existing file (or creates it with `create`). */
  open(path: string, options?: { create?: boolean; exclusive?: boolean; truncate?: boolean; mode?: number; uid?: number; gid?: number }): Promise<FileHandle>;

  /**
   * Streams a file out in pieces of at most 1 MiB with bounded memory, all from the version current
   * when iteration starts. `start` and `end` are byte offsets, `end` inclusive (as node:fs).
   */
  createReadStream(path: string, options?: ReadOptions & { start?: number; end?: number }): AsyncIterable<Uint8Array>;
  /** Streams a file in from an async iterable with bounded memory; commits once at the end. */
  writeFileFrom(path: string, source: AsyncIterable<Uint8Array>, options?: WriteOptions): Promise<number>;

  /**
   * Runs `body` as one atomic multi-file transaction. Everything read through `tx` is validated
   * at commit; on conflict nothing is applied and VERSION_MISMATCH is thrown (after `retries`).
   */
  transaction<T>(body: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>;

  createSnapshot(name: string): Promise<SnapshotInfo>;
  listSnapshots(): Promise<SnapshotInfo[]>;
  deleteSnapshot(name: string): Promise<void>;
  /** Makes the live tree equal to the snapshot's, as one new commit. */
  restoreSnapshot(name: string): Promise<number>;

  history(path: string): Promise<HistoryEntry[]>;
  compact(options?: CompactOptions): Promise<CompactReport>;
  verify(options?: { onProgress?: (checkedBytes: number) => void }): Promise<VerifyReport>;
  stats(): Promise<EngramStats>;
  /**
   * Similarity search (issue 6): the k regions most like `input` (bytes or text), best first.
   * `path` restricts results to a path prefix.
   */
  query(input: Uint8Array | string, options?: ReadOptions & { k?: number; path?: string }): Promise<QueryResult>;
  /** Files most similar to the file at `path` (near-duplicates first), excluding itself. */
  similar(path: string, options?: ReadOptions & { k?: number }): Promise<QueryMatch[]>;

  /** The current global commit sequence number. */
  currentCommit(): Promise<number>;

  /**
   * Makes every commit so far durable. Needed only with `durability: 'normal'`, whose commits
   * survive a killed process but not a power loss until synced (what `fsync(2)` on a mount does).
   */
  sync(): Promise<void>;

  /**
   * Copies committed changes from the write-ahead log into the database file as far as other
   * readers allow, without waiting for them. With `index: true`, first folds the similarity
   * index's log into its base rows, in a commit of its own (kind `index-checkpoint`) when the log
   * holds anything, so the next process to open the index replays nothing. With `index: 'due'`,
   * folds only a log past the mark at which an ordinary writer folds (32,768 changed chunks or 128
   * log rows), leaving what any engram may hold. Needed only after writing with `bulk: true`.
   */
  checkpoint(options?: { index?: boolean | 'due' }): Promise<void>;

  close(): Promise<void>;
}
