/**
 * The SQLite store: one engram = one SQLite database file (better-sqlite3, WAL mode).
 *
 * Schema, commit protocol and GC rule: docs/design/store.md. Every write is one `BEGIN
 * IMMEDIATE` transaction run synchronously (never across an `await`); reads run in one deferred
 * transaction so they see one consistent WAL snapshot.
 *
 * @example
 * ```ts
 * const store = openSqliteStore('a.engram', { create: { profile: 'positional', chunkBytes: 4096, timeNs: 0n } });
 * store.write({ kind: 'mkdir', timeNs: 1n }, (writer) => writer.allocateIno());
 * store.close();
 * ```
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, fdatasync, fsyncSync, linkSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { BackgroundReply, BackgroundRequest } from './background-worker.js';
import { withBatchVfs } from './batch-vfs.js';
import { EmbrError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type {
  ChunkInfo,
  ChunkPlacement,
  ChunkRef,
  CommitRow,
  CommitStart,
  DentryRow,
  GcReport,
  GcRule,
  InodeData,
  InodeRow,
  PackBatch,
  PreparedPack,
  SnapshotRow,
  StagedIds,
  Store,
  StoreInfo,
  StoreOpenOptions,
  StoreReader,
  StoreTotals,
  StoreWriter,
  PayloadLocation,
} from './api.js';
import { LIVE, ROOT_INO } from './api.js';
import { PackCache } from './pack-cache.js';
import { PackScratch, encodePackBytes, unpack } from './pack.js';

/** `PRAGMA application_id` of an engram: ASCII "Embr". */
export const ENGRAM_APPLICATION_ID = 0x456d6272;
/**
 * `PRAGMA user_version`: the schema version this code writes. It reads every version from 1 on,
 * and a writable open brings an older file up to date ({@link migrate}).
 * - 1: the first schema.
 * - 2: `index_rows` is an ordinary (rowid) table with a unique index on `key`, no longer a
 *   WITHOUT ROWID table: in a WITHOUT ROWID table a row larger than about 1 KB (index log rows,
 *   file and root rows) overflows, and every key comparison against it during a lookup reads its
 *   whole overflow chain, so a lookup near a 400 KB log row cost 40-370 us instead of 0.5.
 * - 3: `file_chunks.run_count` (default 1): a row holds a run of up to {@link MAX_REF_RUN}
 *   references to consecutive chunk ids (a 10 MB file written whole is 39 rows, not 2,442).
 *   Older rows are runs of one.
 */
export const SCHEMA_VERSION = 3;
/**
 * Longest run of chunk references one `file_chunks` row holds (schema 3): a row maps chunk
 * indexes [chunk_index, chunk_index + run_count) of a file to chunk ids [chunk_id, chunk_id +
 * run_count). The cap bounds how far below a range a query looks for a run that reaches into it.
 */
export const MAX_REF_RUN = 64;
/** How long a writer waits for another process's transaction before BUSY. */
export const BUSY_TIMEOUT_MS = 15_000;
const PACK_CACHE_BYTES = 8 << 20;
/** Free pages worth giving back at close. */
const RELEASE_FREE_BYTES_AT_CLOSE = 256 * 1024;
/** SQLite's default `wal_autocheckpoint`, restored when the last checkpoint hold is released. */
const AUTO_CHECKPOINT_PAGES = 1000;

/** Bytes of a SHA-256 digest. */
const SHA256_BYTES = 32;
/** Longest wait at close for the background connection to close. */
const BACKGROUND_CLOSE_WAIT_MS = 15_000;

/** The main thread's side of a store's background connection (src/store/background-worker.ts). */
interface BackgroundConnection {
  worker: Worker;
  /** Set to 1 by the worker once its connection is closed. */
  closed: Int32Array;
  waiting: Map<number, { resolve: (reply: Extract<BackgroundReply, { ids?: unknown }>) => void; reject: (error: Error) => void }>;
  nextId: number;
  checkpointRunning: boolean;
  checkpointAgain: boolean;
  failed: boolean;
}
/** A pack whose live payload share falls below this is rewritten by GC. */
const REPACK_LIVE_SHARE = 0.5;

const SQLITE_HEADER = 'SQLite format 3\0';

const SCHEMA = `
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE commits(commit_id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER NOT NULL, kind TEXT NOT NULL);
CREATE TABLE inodes(
  ino INTEGER NOT NULL, from_commit INTEGER NOT NULL, to_commit INTEGER,
  type TEXT NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
  size INTEGER NOT NULL, nlink INTEGER NOT NULL,
  atime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, birthtime_ns INTEGER NOT NULL,
  symlink_target TEXT, content_sha256 BLOB, change TEXT NOT NULL,
  PRIMARY KEY(ino, from_commit)) WITHOUT ROWID;
CREATE INDEX inodes_live ON inodes(ino) WHERE to_commit IS NULL;
CREATE INDEX inodes_orphans ON inodes(ino) WHERE to_commit IS NULL AND nlink = 0;
CREATE TABLE dentries(
  parent_ino INTEGER NOT NULL, name TEXT NOT NULL, from_commit INTEGER NOT NULL, to_commit INTEGER,
  child_ino INTEGER NOT NULL,
  PRIMARY KEY(parent_ino, name, from_commit)) WITHOUT ROWID;
CREATE INDEX dentries_child ON dentries(child_ino);
CREATE TABLE file_chunks(
  ino INTEGER NOT NULL, chunk_index INTEGER NOT NULL, from_commit INTEGER NOT NULL, to_commit INTEGER,
  chunk_id INTEGER NOT NULL, run_count INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY(ino, chunk_index, from_commit)) WITHOUT ROWID;
CREATE INDEX file_chunks_chunk ON file_chunks(chunk_id);
CREATE TABLE xattrs(
  ino INTEGER NOT NULL, name TEXT NOT NULL, from_commit INTEGER NOT NULL, to_commit INTEGER,
  value BLOB NOT NULL,
  PRIMARY KEY(ino, name, from_commit)) WITHOUT ROWID;
CREATE TABLE packs(pack_id INTEGER PRIMARY KEY AUTOINCREMENT, raw_bytes INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE chunks(
  chunk_id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 BLOB NOT NULL UNIQUE, byte_length INTEGER NOT NULL,
  pack_id INTEGER NOT NULL, pack_offset INTEGER NOT NULL, payload_bytes INTEGER NOT NULL,
  vector_correct_bytes INTEGER NOT NULL, correction_bytes INTEGER NOT NULL,
  fingerprint BLOB, added_commit INTEGER NOT NULL);
CREATE INDEX chunks_pack ON chunks(pack_id);
CREATE TABLE snapshots(name TEXT PRIMARY KEY, commit_id INTEGER NOT NULL, created_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE root_vector(id INTEGER PRIMARY KEY CHECK (id = 1), counts BLOB NOT NULL);
CREATE TABLE index_rows(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE orphan_owners(ino INTEGER PRIMARY KEY, owner TEXT NOT NULL);
`;

/**
 * Maps a better-sqlite3 error to the house error type: SQLITE_FULL → NO_SPACE, SQLITE_IOERR →
 * IO, SQLITE_BUSY/LOCKED → BUSY, SQLITE_CORRUPT → CORRUPT, SQLITE_NOTADB → NOT_ENGRAM,
 * SQLITE_READONLY → READ_ONLY. Anything else (including EmbrError) is returned unchanged.
 *
 * @example
 * ```ts
 * try { statement.run(); } catch (error) { throw translateSqliteError(error, file); }
 * ```
 */
export function translateSqliteError(error: unknown, file: string): unknown {
  if (!(error instanceof Error) || error instanceof EmbrError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;
  if (code.startsWith('SQLITE_FULL')) return new EmbrError('NO_SPACE', `${file}: the disk is full`, { file }, { cause: error });
  if (code.startsWith('SQLITE_IOERR')) return new EmbrError('IO', `${file}: I/O error (${code})`, { file, cause: code }, { cause: error });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new EmbrError('BUSY', `${file}: locked by another writer for longer than ${BUSY_TIMEOUT_MS} ms`, { file }, { cause: error });
  }
  if (code.startsWith('SQLITE_CORRUPT')) return new EmbrError('CORRUPT', `${file}: database pages are damaged (${code})`, { what: 'database', file }, { cause: error });
  if (code.startsWith('SQLITE_NOTADB')) return new EmbrError('NOT_ENGRAM', `${file}: not an engram (not a database)`, { file, reason: 'not a database' }, { cause: error });
  if (code.startsWith('SQLITE_READONLY')) return new EmbrError('READ_ONLY', `${file}: the engram file is read-only`, { file }, { cause: error });
  if (code === 'SQLITE_ERROR' || code === 'SQLITE_SCHEMA' || code === 'SQLITE_MISMATCH' || code === 'SQLITE_FORMAT') {
    // Our SQL is fixed and tested, so a generic error here means the stored schema is not the one we
    // wrote (a damaged sqlite_master page): the engram is corrupt, not the caller's fault.
    return new EmbrError('CORRUPT', `${file}: the database does not match the engram schema (${error.message})`, { what: 'schema', file }, { cause: error });
  }
  if (code.startsWith('SQLITE_CANTOPEN')) return new EmbrError('IO', `${file}: cannot open (${code})`, { file, cause: code }, { cause: error });
  return error;
}

function notEngram(file: string, reason: string): EmbrError {
  return new EmbrError('NOT_ENGRAM', `${file} is not an engram: ${reason}`, { file, reason });
}

/** Reads the 100-byte SQLite header (or less) to refuse random bytes before SQLite sees them. */
function checkHeader(file: string): void {
  const size = statSync(file).size;
  if (size === 0) throw notEngram(file, 'the file is empty');
  if (size < 512) throw notEngram(file, `the file is truncated (${size} bytes)`);
  const header = Buffer.alloc(16);
  const descriptor = openSync(file, 'r');
  try {
    readSync(descriptor, header, 0, 16, 0);
  } finally {
    closeSync(descriptor);
  }
  if (header.toString('latin1') !== SQLITE_HEADER) throw notEngram(file, 'it does not start with an SQLite header');
}

/** Creates a new engram atomically: built under a temporary name, then renamed into place. */
function createEngramFile(file: string, create: NonNullable<StoreOpenOptions['create']>): void {
  const temporary = `${file}.creating-${process.pid}-${Date.now()}`;
  const db = withBatchVfs(() => new Database(temporary));
  try {
    // auto_vacuum must be chosen before the first table exists.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = FULL');
    db.exec('BEGIN');
    db.exec(SCHEMA);
    const insertMeta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
    insertMeta.run('profile', create.profile);
    insertMeta.run('chunk_bytes', create.chunkBytes);
    insertMeta.run('created_ns', create.timeNs);
    insertMeta.run('next_ino', ROOT_INO + 1);
    db.prepare('INSERT INTO commits(time_ns, kind) VALUES (?, ?)').run(create.timeNs, 'create');
    db.prepare(
      `INSERT INTO inodes(ino, from_commit, to_commit, type, mode, uid, gid, size, nlink, atime_ns, mtime_ns, ctime_ns, birthtime_ns, symlink_target, content_sha256, change)
       VALUES (?, 1, NULL, 'directory', ?, 0, 0, 0, 2, ?, ?, ?, ?, NULL, NULL, 'create')`,
    ).run(ROOT_INO, 0o755, create.timeNs, create.timeNs, create.timeNs, create.timeNs);
    db.pragma(`application_id = ${ENGRAM_APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    db.exec('COMMIT');
    db.pragma('journal_mode = WAL');
    db.close();
    try {
      // link, not rename: if another process created the engram meanwhile, keep theirs (a rename
      // would replace a file that process already has open).
      linkSync(temporary, file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        // A filesystem without hard links: rename unless someone else got there first.
        if (!existsSync(file)) renameSync(temporary, file);
      } else if (code !== 'EEXIST') {
        throw error;
      }
    }
    rmSync(temporary, { force: true });
  } catch (error) {
    if (db.open) db.close();
    rmSync(temporary, { force: true });
    rmSync(`${temporary}-wal`, { force: true });
    rmSync(`${temporary}-shm`, { force: true });
    throw translateSqliteError(error, file);
  }
}

/**
 * Opens (or creates) the SQLite store of an engram file. Refuses a missing file (NOT_FOUND unless
 * `create`), empty, truncated, random or foreign files (NOT_ENGRAM) and damaged pages (CORRUPT).
 *
 * @example
 * ```ts
 * const store = openSqliteStore('a.engram', { readOnly: true });
 * ```
 */
/**
 * Brings a file of an older schema version up to {@link SCHEMA_VERSION}, in one transaction (a
 * concurrent opener that migrated first leaves nothing to do). The statements read and write the
 * same columns in every version, so a read-only open of an older file works as it is.
 */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version < 2) {
      db.exec(`CREATE TABLE index_rows_v2(key TEXT PRIMARY KEY, value BLOB NOT NULL);
INSERT INTO index_rows_v2(key, value) SELECT key, value FROM index_rows;
DROP TABLE index_rows;
ALTER TABLE index_rows_v2 RENAME TO index_rows;`);
    }
    if (version < 3) db.exec('ALTER TABLE file_chunks ADD COLUMN run_count INTEGER NOT NULL DEFAULT 1');
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Tables checked at open (every table but the bulky `packs` and `index_rows`), see openSqliteStore. */
const OPEN_CHECKED_TABLES = ['meta', 'commits', 'inodes', 'dentries', 'file_chunks', 'xattrs', 'chunks', 'snapshots', 'root_vector', 'orphan_owners'];

export function openSqliteStore(file: string, options: StoreOpenOptions = {}): Store {
  if (!existsSync(file)) {
    if (options.create === undefined || options.readOnly) {
      throw new EmbrError('NOT_FOUND', `${file}: no such engram (use create to make one)`, { path: file });
    }
    createEngramFile(file, options.create);
  }
  checkHeader(file);
  let db: Database.Database;
  try {
    db = withBatchVfs(() => new Database(file, { readonly: options.readOnly === true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS }));
  } catch (error) {
    throw translateSqliteError(error, file);
  }
  try {
    const applicationId = db.pragma('application_id', { simple: true });
    if (applicationId !== ENGRAM_APPLICATION_ID) {
      throw notEngram(file, `it is an SQLite database of another application (application_id ${String(applicationId)})`);
    }
    const userVersion = db.pragma('user_version', { simple: true });
    if (typeof userVersion !== 'number' || userVersion < 1 || userVersion > SCHEMA_VERSION) {
      throw notEngram(file, `its schema version ${String(userVersion)} is not supported (this build reads 1 to ${SCHEMA_VERSION})`);
    }
    if (!options.readOnly && userVersion < SCHEMA_VERSION) migrate(db);
    // quick_check of the metadata tables only: the whole file (~1.9 s CPU for a 110 MB engram,
    // which every `cat`/`ls`/`info` paid) is mostly pack blobs, whose contents are checked against
    // their SHA-256 on every read, and similarity-index rows, parsed on use. A damaged tree or
    // file map is refused here, so verify can still name paths; `verify` checks the whole file
    // (Store.integrityCheck).
    for (const table of options.checkOnOpen === false ? [] : OPEN_CHECKED_TABLES) {
      const check = db.pragma(`quick_check(${table})`, { simple: true });
      if (check !== 'ok') throw new EmbrError('CORRUPT', `${file}: integrity check of ${table} failed: ${String(check)}`, { what: 'database', file });
    }
    if (!options.readOnly) db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('cache_size = -16384');
    if (options.mmapBytes !== undefined && options.mmapBytes > 0) db.pragma(`mmap_size = ${Math.floor(options.mmapBytes)}`);
    if (options.autoCheckpoint === false) db.pragma('wal_autocheckpoint = 0');
    return new SqliteStore(db, file, options.readOnly === true, options.durability === 'normal' ? 'NORMAL' : 'FULL', options.autoCheckpoint !== false);
  } catch (error) {
    db.close();
    throw translateSqliteError(error, file);
  }
}

/**
 * The SQL of the statements over a range [@first, @end) of a file's chunk indexes, given the
 * expression of a row's run length (`run_count`, or `1` for a schema 1-2 file opened read-only).
 * Each bounds its scan of the primary key on both sides (a test checks the query plans): a run
 * reaching into the range starts at most MAX_REF_RUN - 1 indexes below it.
 */
export function rangeStatementSql(RUN: string): Record<'chunkRefs' | 'chunkPlacements' | 'refsInside' | 'deleteRunsInside' | 'closeRunsInside' | 'runsAcross', string> {
  return {
    // Runs live at @at that reach into [@first, @end), each joined to the chunk rows of its part
    // inside the range (a LEFT JOIN: a run whose chunk rows are all missing still shows; missing
    // ones inside a run are found by their ids, see expandRuns).
    chunkRefs: `SELECT f.chunk_index, f.chunk_id, ${RUN} AS run, c.chunk_id AS found, hex(c.sha256), c.byte_length, c.pack_id, c.pack_offset, c.payload_bytes, c.vector_correct_bytes, c.correction_bytes
       FROM file_chunks f LEFT JOIN chunks c
         ON c.chunk_id BETWEEN f.chunk_id + max(0, @first - f.chunk_index) AND f.chunk_id + min(${RUN}, @end - f.chunk_index) - 1
       WHERE f.ino = @ino AND f.chunk_index < @end AND f.chunk_index > @first - ${MAX_REF_RUN} AND f.chunk_index + ${RUN} > @first
         AND f.from_commit <= @at AND (f.to_commit IS NULL OR f.to_commit > @at)
       ORDER BY f.chunk_index, c.chunk_id`,
    chunkPlacements: `SELECT f.chunk_index, f.chunk_id, ${RUN} AS run, c.chunk_id AS found, c.byte_length, c.pack_id, c.pack_offset, c.payload_bytes
       FROM file_chunks f LEFT JOIN chunks c
         ON c.chunk_id BETWEEN f.chunk_id + max(0, @first - f.chunk_index) AND f.chunk_id + min(${RUN}, @end - f.chunk_index) - 1
       WHERE f.ino = @ino AND f.chunk_index < @end AND f.chunk_index > @first - ${MAX_REF_RUN} AND f.chunk_index + ${RUN} > @first
         AND f.from_commit <= @at AND (f.to_commit IS NULL OR f.to_commit > @at)
       ORDER BY f.chunk_index, c.chunk_id`,
    // Live runs inside [@first, @end): their refs in total, then dropped (begun by this commit) or
    // ended. (`chunk_index < @end`, implied by the run's end, bounds the index scan: without it a
    // one-chunk write scanned every row to the end of the file, 3,149 -> 716 random-write IOPS.)
    refsInside: `SELECT coalesce(sum(${RUN}), 0) FROM file_chunks
       WHERE ino = @ino AND chunk_index >= @first AND chunk_index < @end AND chunk_index + ${RUN} <= @end AND to_commit IS NULL`,
    deleteRunsInside: `DELETE FROM file_chunks WHERE ino = @ino AND chunk_index >= @first AND chunk_index < @end AND chunk_index + ${RUN} <= @end AND to_commit IS NULL AND from_commit = @commit`,
    closeRunsInside: `UPDATE file_chunks SET to_commit = @commit WHERE ino = @ino AND chunk_index >= @first AND chunk_index < @end AND chunk_index + ${RUN} <= @end AND to_commit IS NULL`,
    // Live runs that reach into [@first, @end) from outside it (two at most).
    runsAcross: `SELECT chunk_index, from_commit, chunk_id, ${RUN} FROM file_chunks
       WHERE ino = @ino AND chunk_index < @end AND chunk_index > @first - ${MAX_REF_RUN} AND chunk_index + ${RUN} > @first
         AND (chunk_index < @first OR chunk_index + ${RUN} > @end) AND to_commit IS NULL`,
  };
}

type Row = Record<string, unknown>;

/**
 * Walks the rows of the `chunkRefs`/`chunkPlacements` queries (ordered by chunk index, then chunk
 * id: per run, columns 0-2 are its first index, first chunk id and length, column 3 the id of a
 * joined chunk row or null) and calls `visit` for every chunk index of [first, end) a run covers,
 * with the joined chunk row, or undefined when the chunk's row is missing (a damaged engram: the
 * caller reports it, never a hole).
 */
function expandRuns<R extends unknown[]>(rows: R[], first: number, end: number, visit: (chunkIndex: number, chunkId: number, row: R | undefined) => void): void {
  let position = 0;
  while (position < rows.length) {
    const runIndex = Number(rows[position][0]);
    const runId = Number(rows[position][1]);
    const runEnd = runIndex + Number(rows[position][2]);
    let next = position;
    while (next < rows.length && Number(rows[next][0]) === runIndex) next += 1;
    let joined = position;
    for (let chunkIndex = Math.max(first, runIndex); chunkIndex < Math.min(end, runEnd); chunkIndex += 1) {
      const chunkId = runId + (chunkIndex - runIndex);
      while (joined < next && rows[joined][3] !== null && Number(rows[joined][3]) < chunkId) joined += 1;
      const row = joined < next && rows[joined][3] !== null && Number(rows[joined][3]) === chunkId ? rows[joined] : undefined;
      visit(chunkIndex, chunkId, row);
    }
    position = next;
  }
}

/**
 * An integer time column as bigint. A damaged schema or row can hand back a missing or non-integer
 * value: that is CORRUPT, never an untyped TypeError from `BigInt(undefined)`.
 */
function timeColumn(row: Row, column: string): bigint {
  const value = row[column];
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new EmbrError('CORRUPT', `damaged row: ${column} is ${value === undefined ? 'missing' : typeof value}`, { what: 'row', column });
}

const INODE_TYPES: ReadonlySet<unknown> = new Set(['file', 'directory', 'symlink']);

function toInodeRow(row: Row): InodeRow {
  if (!INODE_TYPES.has(row.type)) throw new EmbrError('CORRUPT', `damaged inode row ${String(row.ino)}: type ${String(row.type)}`, { what: 'inode', column: 'type' });
  return {
    ino: Number(row.ino),
    fromCommit: Number(row.from_commit),
    toCommit: row.to_commit === null ? null : Number(row.to_commit),
    type: row.type as InodeRow['type'],
    mode: Number(row.mode),
    uid: Number(row.uid),
    gid: Number(row.gid),
    size: Number(row.size),
    nlink: Number(row.nlink),
    atimeNs: timeColumn(row, 'atime_ns'),
    mtimeNs: timeColumn(row, 'mtime_ns'),
    ctimeNs: timeColumn(row, 'ctime_ns'),
    birthtimeNs: timeColumn(row, 'birthtime_ns'),
    symlinkTarget: (row.symlink_target as string | null) ?? null,
    contentSha256: row.content_sha256 === null ? null : new Uint8Array(row.content_sha256 as Buffer),
    change: row.change as InodeRow['change'],
  };
}

function toChunkInfo(row: Row): ChunkInfo {
  return {
    chunkId: Number(row.chunk_id),
    sha256: new Uint8Array(row.sha256 as Buffer),
    byteLength: Number(row.byte_length),
    packId: Number(row.pack_id),
    packOffset: Number(row.pack_offset),
    payloadBytes: Number(row.payload_bytes),
    vectorCorrectBytes: Number(row.vector_correct_bytes),
    correctionBytes: Number(row.correction_bytes),
  };
}

const VISIBLE = 'from_commit <= @at AND (to_commit IS NULL OR to_commit > @at)';

class SqliteStore implements Store, StoreWriter {
  /** Inode numbers this commit allocated that have no row yet (their first putInode only inserts). */
  private readonly freshInos = new Set<number>();
  /** The next inode number once this commit allocated one (written to meta when it ends). */
  private nextIno: number | undefined;
  /** Inode numbers this commit allocated (directories among them hold only this commit's entries). */
  private readonly createdInos = new Set<number>();
  /** `parent/name` of the entries this commit wrote under the directories it created. */
  private readonly writtenDentries = new Set<string>();
  /** Live rows this commit wrote (null: removed): reading one back costs no query. */
  private readonly writtenInodes = new Map<number, InodeRow | null>();
  readonly info: StoreInfo;
  private readonly packCache = new PackCache(PACK_CACHE_BYTES);
  /** Where chunkPayloadView unpacks packs the cache does not hold, and which pack it holds now. */
  private readonly scratch = new PackScratch();
  private scratchPackId = -1;
  private scratchRaw: Uint8Array | undefined;
  private currentCommit = 0;
  private closed = false;
  /** Open {@link holdCheckpoints} holds; automatic checkpoints are off while there are any. */
  private checkpointHolds = 0;
  /** The background connection (a worker thread), once started. */
  private background: BackgroundConnection | undefined;
  /** The WAL descriptor {@link syncAhead} syncs (closed with the store, after any sync in flight). */
  private readonly walSync: { fd: number | undefined; running: boolean; again: boolean } = { fd: undefined, running: false, again: false };
  private readonly statements;
  /**
   * A file of schema 1-2 opened read-only reads every reference row as a run of one. Another
   * process may migrate the file to schema 3 and write longer runs meanwhile: the reads then
   * refuse to answer (this handle must be reopened) rather than read the rest of a run as holes.
   */
  private readonly runsUnknown: boolean;
  private readonly readTransaction;
  private readonly writeTransaction;

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    readonly readOnly: boolean,
    private readonly synchronous: 'FULL' | 'NORMAL',
    private readonly autoCheckpoint = true,
  ) {
    const prepare = (sql: string) => db.prepare(sql);
    const prepareBig = (sql: string) => db.prepare(sql).safeIntegers(true);
    // A file of schema 1 or 2 opened read-only has no run_count column: every row is a run of one.
    const hasRuns = (db.pragma('table_info(file_chunks)') as Array<{ name: string }>).some((column) => column.name === 'run_count');
    const RUN = hasRuns ? 'run_count' : '1';
    const rangeSql = rangeStatementSql(RUN);
    this.runsUnknown = !hasRuns;
    this.statements = {
      meta: prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      metaBig: prepareBig('SELECT value FROM meta WHERE key = ?').pluck(),
      setMeta: prepare('UPDATE meta SET value = ? WHERE key = ?'),
      headCommit: prepare('SELECT max(commit_id) FROM commits').pluck(),
      commitInfo: prepareBig('SELECT commit_id, time_ns, kind FROM commits WHERE commit_id = ?'),
      insertCommit: prepare('INSERT INTO commits(time_ns, kind) VALUES (?, ?)'),
      // An inode's versions are disjoint intervals, so the one visible at @at (if any) is the newest
      // starting at or before it: one backward step on the primary key instead of every version.
      inodeAt: prepareBig('SELECT * FROM inodes WHERE ino = @ino AND from_commit <= @at ORDER BY from_commit DESC LIMIT 1'),
      // INDEXED BY: left to itself the planner walks every version of the inode through the primary
      // key, and a directory gains one version per entry created in it (O(entries) per create).
      inodeLive: prepareBig('SELECT * FROM inodes INDEXED BY inodes_live WHERE ino = ? AND to_commit IS NULL'),
      inodeVersions: prepareBig('SELECT * FROM inodes WHERE ino = ? ORDER BY from_commit'),
      deleteInodeAtCommit: prepare('DELETE FROM inodes WHERE ino = ? AND from_commit = ?'),
      closeInode: prepare('UPDATE inodes INDEXED BY inodes_live SET to_commit = ? WHERE ino = ? AND to_commit IS NULL'),
      insertInode: prepare(
        `INSERT INTO inodes(ino, from_commit, to_commit, type, mode, uid, gid, size, nlink, atime_ns, mtime_ns, ctime_ns, birthtime_ns, symlink_target, content_sha256, change)
         VALUES (@ino, @commit, NULL, @type, @mode, @uid, @gid, @size, @nlink, @atimeNs, @mtimeNs, @ctimeNs, @birthtimeNs, @symlinkTarget, @contentSha256, @change)`,
      ),
      lookup: prepare(`SELECT child_ino FROM dentries WHERE parent_ino = @parent AND name = @name AND ${VISIBLE}`).pluck(),
      listDirectory: prepare(`SELECT name, child_ino FROM dentries WHERE parent_ino = @parent AND ${VISIBLE} ORDER BY name`),
      dentryHistory: prepare('SELECT * FROM dentries WHERE parent_ino = ? AND name = ? ORDER BY from_commit'),
      dentriesOf: prepare(`SELECT * FROM dentries WHERE child_ino = @child AND ${VISIBLE}`),
      deleteDentryAtCommit: prepare('DELETE FROM dentries WHERE parent_ino = ? AND name = ? AND from_commit = ?'),
      closeDentry: prepare('UPDATE dentries SET to_commit = ? WHERE parent_ino = ? AND name = ? AND to_commit IS NULL'),
      insertDentry: prepare('INSERT INTO dentries(parent_ino, name, from_commit, to_commit, child_ino) VALUES (?, ?, ?, NULL, ?)'),
      // The statements over a range of chunk indexes (rangeStatementSql).
      chunkRefs: prepare(rangeSql.chunkRefs).raw(true),
      chunkPlacements: prepare(rangeSql.chunkPlacements).raw(true),
      refsInside: prepare(rangeSql.refsInside).pluck(),
      deleteRunsInside: prepare(rangeSql.deleteRunsInside),
      closeRunsInside: prepare(rangeSql.closeRunsInside),
      runsAcross: prepare(rangeSql.runsAcross).raw(true),
      deleteRun: prepare('DELETE FROM file_chunks WHERE ino = ? AND chunk_index = ? AND from_commit = ?'),
      closeRun: prepare('UPDATE file_chunks SET to_commit = ? WHERE ino = ? AND chunk_index = ? AND from_commit = ?'),
      // (A read-only open of a schema 1-2 file never writes; its statement must only compile.)
      insertRun: prepare(
        hasRuns
          ? 'INSERT INTO file_chunks(ino, chunk_index, from_commit, to_commit, chunk_id, run_count) VALUES (?, ?, ?, NULL, ?, ?)'
          : 'INSERT INTO file_chunks(ino, chunk_index, from_commit, to_commit, chunk_id) VALUES (?, ?, ?, NULL, ?)',
      ),
      chunkInfo: prepare('SELECT * FROM chunks WHERE chunk_id = ?'),
      chunkIdBySha: prepare('SELECT chunk_id FROM chunks WHERE sha256 = ?').pluck(),
      fingerprint: prepare('SELECT fingerprint FROM chunks WHERE chunk_id = ?').pluck(),
      pack: prepare('SELECT raw_bytes, data FROM packs WHERE pack_id = ?'),
      // A pack stored uncompressed is its format byte and then exactly raw_bytes bytes (a zstd
      // pack is always shorter: packGroup keeps zstd only when it shrinks), so length() (which
      // SQLite answers without reading the overflow pages) tells which; substr() then copies out
      // only the chunk instead of a 128 KiB blob per random read.
      packSlice: prepare(
        'SELECT raw_bytes, length(data) = raw_bytes + 1 AS uncompressed, CASE WHEN length(data) = raw_bytes + 1 THEN substr(data, @start, @length) ELSE data END AS body FROM packs WHERE pack_id = @id',
      ),
      insertPack: prepare('INSERT INTO packs(raw_bytes, data) VALUES (?, ?)'),
      insertChunk: prepare(
        `INSERT OR IGNORE INTO chunks(sha256, byte_length, pack_id, pack_offset, payload_bytes, vector_correct_bytes, correction_bytes, fingerprint, added_commit)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      xattr: prepare(`SELECT value FROM xattrs WHERE ino = @ino AND name = @name AND ${VISIBLE}`).pluck(),
      xattrNames: prepare(`SELECT name FROM xattrs WHERE ino = @ino AND ${VISIBLE} ORDER BY name`).pluck(),
      deleteXattrAtCommit: prepare('DELETE FROM xattrs WHERE ino = ? AND name = ? AND from_commit = ?'),
      closeXattr: prepare('UPDATE xattrs SET to_commit = ? WHERE ino = ? AND name = ? AND to_commit IS NULL'),
      insertXattr: prepare('INSERT INTO xattrs(ino, name, from_commit, to_commit, value) VALUES (?, ?, ?, NULL, ?)'),
      deleteAllXattrsAtCommit: prepare('DELETE FROM xattrs WHERE ino = ? AND from_commit = ?'),
      closeAllXattrs: prepare('UPDATE xattrs SET to_commit = ? WHERE ino = ? AND to_commit IS NULL'),
      snapshot: prepareBig('SELECT * FROM snapshots WHERE name = ?'),
      snapshots: prepareBig('SELECT * FROM snapshots ORDER BY commit_id, name'),
      insertSnapshot: prepare('INSERT INTO snapshots(name, commit_id, created_ns) VALUES (?, ?, ?)'),
      deleteSnapshot: prepare('DELETE FROM snapshots WHERE name = ?'),
      orphans: prepare('SELECT ino FROM inodes WHERE to_commit IS NULL AND nlink = 0 ORDER BY ino').pluck(),
      typeTotals: prepare("SELECT type, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM inodes WHERE to_commit IS NULL AND (nlink > 0 OR type = 'directory') GROUP BY type"),
      chunkTotals: prepare(
        'SELECT count(*) AS n, coalesce(sum(byte_length), 0) AS bytes, coalesce(sum(correction_bytes), 0) AS correction, coalesce(sum(vector_correct_bytes), 0) AS vector FROM chunks',
      ),
      snapshotCount: prepare('SELECT count(*) FROM snapshots').pluck(),
      indexBytes: prepare('SELECT coalesce(sum(length(CAST(key AS BLOB)) + length(value)), 0) FROM index_rows').pluck(),
      clearIndexRows: prepare('DELETE FROM index_rows'),
      allChunkIds: prepare('SELECT chunk_id FROM chunks ORDER BY chunk_id').pluck(),
      indexRow: prepare('SELECT value FROM index_rows WHERE key = ?').pluck(),
      putIndexRow: prepare('INSERT INTO index_rows(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      deleteIndexRow: prepare('DELETE FROM index_rows WHERE key = ?'),
      claimStage: prepare("UPDATE commits SET kind = 'stage-claimed' WHERE commit_id = ? AND kind = 'stage'"),
      orphanOwner: prepare('SELECT owner FROM orphan_owners WHERE ino = ?').pluck(),
      setOrphanOwner: prepare('INSERT INTO orphan_owners(ino, owner) VALUES (?, ?) ON CONFLICT(ino) DO UPDATE SET owner = excluded.owner'),
      deleteOrphanOwner: prepare('DELETE FROM orphan_owners WHERE ino = ?'),
    };
    const profile = this.statements.meta.get('profile');
    const chunkBytes = Number(this.statements.meta.get('chunk_bytes'));
    // A damaged meta table must be CORRUPT at open, not a NaN chunk size or BigInt(undefined) later.
    if ((profile !== 'positional' && profile !== 'holographic') || !Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
      throw new EmbrError('CORRUPT', `${file}: damaged engram metadata (profile ${String(profile)}, chunk size ${chunkBytes})`, { what: 'meta', file });
    }
    this.info = {
      profile,
      chunkBytes,
      schemaVersion: Number(db.pragma('user_version', { simple: true })),
      createdNs: timeColumn({ created_ns: this.statements.metaBig.get('created_ns') }, 'created_ns'),
    };
    this.readTransaction = db.transaction(<T>(body: (reader: StoreReader) => T): T => body(this));
    this.writeTransaction = db.transaction(<T>(start: CommitStart, body: (writer: StoreWriter) => T): T => {
      this.beginCommit(start);
      const result = body(this);
      this.endCommit();
      return result;
    });
  }

  get commit(): number {
    return this.currentCommit;
  }

  private guard<T>(body: () => T): T {
    if (this.closed) throw new EmbrError('CLOSED', `${this.file}: the engram is closed`);
    try {
      return body();
    } catch (error) {
      throw translateSqliteError(error, this.file);
    }
  }

  private beginCommit(start: CommitStart): void {
    this.forgetAllocations();
    const result = this.statements.insertCommit.run(start.timeNs, start.kind);
    this.currentCommit = Number(result.lastInsertRowid);
  }

  /** Writes what the commit kept in memory (the next inode number); runs inside its transaction. */
  private endCommit(): void {
    if (this.nextIno !== undefined) this.statements.setMeta.run(this.nextIno, 'next_ino');
    this.forgetAllocations();
  }

  private forgetAllocations(): void {
    this.nextIno = undefined;
    this.freshInos.clear();
    this.createdInos.clear();
    this.writtenDentries.clear();
    this.writtenInodes.clear();
  }

  read<T>(body: (reader: StoreReader) => T): T {
    return this.guard(() => this.readTransaction.deferred(body) as T);
  }

  write<T>(start: CommitStart, body: (writer: StoreWriter) => T): T {
    this.assertWritable();
    return this.guard(() => {
      // In WAL mode NORMAL skips the fsync at commit but keeps checkpoints safe; the next FULL
      // commit's fsync of the WAL makes this commit's frames durable too.
      const relaxed = start.durable === false && this.synchronous === 'FULL';
      if (relaxed) this.db.pragma('synchronous = NORMAL');
      try {
        return this.writeTransaction.immediate(start, body) as T;
      } catch (error) {
        // A rolled-back transaction may have cached packs whose ids SQLite will hand out again.
        this.forgetPacks();
        throw error;
      } finally {
        this.currentCommit = 0;
        this.forgetAllocations();
        if (relaxed) this.db.pragma('synchronous = FULL');
      }
    });
  }

  speculate<T>(start: CommitStart, body: (writer: StoreWriter) => T): T {
    this.assertWritable();
    return this.guard(() => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        this.beginCommit(start);
        return body(this);
      } finally {
        this.currentCommit = 0;
        this.forgetAllocations();
        this.db.exec('ROLLBACK');
        this.forgetPacks();
      }
    });
  }

  private assertWritable(): void {
    if (this.readOnly) throw new EmbrError('READ_ONLY', `${this.file} is open read-only`, {});
  }

  // ---- reader ----

  headCommit(): number {
    return Number(this.statements.headCommit.get() ?? 0);
  }

  commitInfo(commit: number): CommitRow | undefined {
    const row = this.statements.commitInfo.get(commit) as Row | undefined;
    if (row === undefined) return undefined;
    return { commit: Number(row.commit_id), timeNs: timeColumn(row, 'time_ns'), kind: row.kind as string };
  }

  inode(ino: number, at: number): InodeRow | undefined {
    if (at === LIVE && this.currentCommit !== 0) {
      const written = this.writtenInodes.get(ino);
      if (written !== undefined) return written ?? undefined;
    }
    // The live row comes from the partial index; an older commit takes one step back on the key.
    const row = (at === LIVE ? this.statements.inodeLive.get(ino) : this.statements.inodeAt.get({ ino, at })) as Row | undefined;
    if (row === undefined) return undefined;
    const inode = toInodeRow(row);
    return inode.toCommit !== null && inode.toCommit <= at ? undefined : inode;
  }

  inodeVersions(ino: number): InodeRow[] {
    return (this.statements.inodeVersions.all(ino) as Row[]).map(toInodeRow);
  }

  lookup(parentIno: number, name: string, at: number): number | undefined {
    const child = this.statements.lookup.get({ parent: parentIno, name, at });
    return child === undefined ? undefined : Number(child);
  }

  listDirectory(parentIno: number, at: number): Array<{ name: string; childIno: number }> {
    const rows = this.statements.listDirectory.all({ parent: parentIno, at }) as Row[];
    const entries = rows.map((row) => ({ name: row.name as string, childIno: Number(row.child_ino) }));
    // SQLite orders by UTF-8 bytes; the contract promises UTF-16 code unit order like the memory store.
    return entries.sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  }

  dentryHistory(parentIno: number, name: string): DentryRow[] {
    return (this.statements.dentryHistory.all(parentIno, name) as Row[]).map(toDentryRow);
  }

  dentriesOf(childIno: number, at: number): DentryRow[] {
    return (this.statements.dentriesOf.all({ child: childIno, at }) as Row[]).map(toDentryRow);
  }

  /** See {@link runsUnknown}. */
  private assertRunsOfOne(): void {
    if (this.runsUnknown && Number(this.db.pragma('user_version', { simple: true })) >= 3) {
      throw new EmbrError('BUSY', `${this.file}: another process upgraded the engram to schema 3 since it was opened read-only; open it again`, { file: this.file });
    }
  }

  chunkRefs(ino: number, at: number, firstIndex: number, endIndex: number): ChunkRef[] {
    this.assertRunsOfOne();
    // Raw rows (arrays in column order), and the SHA-256s as hex text written into one buffer that
    // every ref of the answer views: a blob column is a Buffer (an ArrayBuffer of its own) per row,
    // and a sequential read of 1 GiB fetches 262,144 rows. Hex plus one buffer per query cost 45 %
    // less CPU per row than the blobs (the per-row allocations, and sweeping them afterwards).
    const end = Math.min(endIndex, Number.MAX_SAFE_INTEGER);
    const rows = this.statements.chunkRefs.all({ ino, at, first: firstIndex, end }) as unknown[][];
    const refs: ChunkRef[] = [];
    const hashes = Buffer.allocUnsafe(SHA256_BYTES * rows.length);
    let hashed = 0;
    expandRuns(rows, firstIndex, end, (chunkIndex, chunkId, row) => {
      let chunk: ChunkInfo | undefined;
      if (row !== undefined) {
        const hex = row[4] as string;
        // A damaged row's hash of another length keeps its own bytes (and fails every check).
        const sha256 =
          hex.length === 2 * SHA256_BYTES && hashes.write(hex, SHA256_BYTES * hashed, 'hex') === SHA256_BYTES
            ? hashes.subarray(SHA256_BYTES * hashed, SHA256_BYTES * (hashed + 1))
            : Buffer.from(hex, 'hex');
        hashed += 1;
        chunk = {
          chunkId,
          sha256,
          byteLength: Number(row[5]),
          packId: Number(row[6]),
          packOffset: Number(row[7]),
          payloadBytes: Number(row[8]),
          vectorCorrectBytes: Number(row[9]),
          correctionBytes: Number(row[10]),
        };
      }
      refs.push({ chunkIndex, chunkId, chunk });
    });
    return refs;
  }

  chunkPlacements(ino: number, at: number, firstIndex: number, endIndex: number): ChunkPlacement[] {
    this.assertRunsOfOne();
    const end = Math.min(endIndex, Number.MAX_SAFE_INTEGER);
    const rows = this.statements.chunkPlacements.all({ ino, at, first: firstIndex, end }) as number[][];
    const placements: ChunkPlacement[] = [];
    expandRuns(rows, firstIndex, end, (chunkIndex, chunkId, row) => {
      placements.push({
        chunkIndex,
        chunkId,
        chunk: row === undefined ? undefined : { chunkId, byteLength: row[4], packId: row[5], packOffset: row[6], payloadBytes: row[7] },
      });
    });
    return placements;
  }

  chunkInfo(chunkId: number): ChunkInfo | undefined {
    const row = this.statements.chunkInfo.get(chunkId) as Row | undefined;
    return row === undefined ? undefined : toChunkInfo(row);
  }

  chunkIdBySha256(sha256: Uint8Array): number | undefined {
    const id = this.statements.chunkIdBySha.get(sha256);
    return id === undefined ? undefined : Number(id);
  }

  chunkPayload(chunk: PayloadLocation): Uint8Array {
    let raw = this.packCache.get(chunk.packId);
    if (raw === undefined) {
      const row = this.packRow(chunk);
      raw = this.packCache.put(chunk.packId, unpack(row.data as Buffer, Number(row.raw_bytes)));
    }
    return this.payloadIn(raw, chunk);
  }

  chunkPayloadView(chunk: PayloadLocation): Uint8Array {
    let raw = this.packCache.get(chunk.packId);
    if (raw === undefined) {
      if (this.scratchPackId !== chunk.packId || this.scratchRaw === undefined) {
        // Forget the old contents first: a failed unpack must not leave them under the new id.
        this.scratchPackId = -1;
        const row = this.packRow(chunk);
        this.scratchRaw = this.scratch.unpack(row.data as Buffer, Number(row.raw_bytes));
        this.scratchPackId = chunk.packId;
      }
      raw = this.scratchRaw;
    }
    return this.payloadIn(raw, chunk);
  }

  chunkPayloadAlone(chunk: PayloadLocation): Uint8Array {
    // A pack already unpacked here is cheaper to slice than to query again.
    if (this.scratchPackId === chunk.packId || this.packCache.get(chunk.packId) !== undefined) return this.chunkPayloadView(chunk);
    // substr() counts from 1, and byte 1 is the format byte.
    const row = this.statements.packSlice.get({ id: chunk.packId, start: chunk.packOffset + 2, length: chunk.payloadBytes }) as Row | undefined;
    if (row === undefined) {
      throw new EmbrError('CORRUPT', `${this.file}: pack ${chunk.packId} of chunk ${chunk.chunkId} is missing`, { what: 'pack', chunkId: chunk.chunkId });
    }
    if (Number(row.uncompressed) !== 1) {
      this.scratchPackId = -1;
      this.scratchRaw = this.scratch.unpack(row.body as Buffer, Number(row.raw_bytes));
      this.scratchPackId = chunk.packId;
      return this.payloadIn(this.scratchRaw, chunk);
    }
    const body = row.body as Buffer;
    if (chunk.packOffset + chunk.payloadBytes > Number(row.raw_bytes) || body.length !== chunk.payloadBytes) {
      throw new EmbrError('CORRUPT', `${this.file}: chunk ${chunk.chunkId} lies outside its pack`, { what: 'chunk', chunkId: chunk.chunkId });
    }
    return body;
  }

  private packRow(chunk: PayloadLocation): Row {
    const row = this.statements.pack.get(chunk.packId) as Row | undefined;
    if (row === undefined) {
      throw new EmbrError('CORRUPT', `${this.file}: pack ${chunk.packId} of chunk ${chunk.chunkId} is missing`, { what: 'pack', chunkId: chunk.chunkId });
    }
    return row;
  }

  private payloadIn(raw: Uint8Array, chunk: PayloadLocation): Uint8Array {
    if (chunk.packOffset + chunk.payloadBytes > raw.length) {
      throw new EmbrError('CORRUPT', `${this.file}: chunk ${chunk.chunkId} lies outside its pack`, { what: 'chunk', chunkId: chunk.chunkId });
    }
    return raw.subarray(chunk.packOffset, chunk.packOffset + chunk.payloadBytes);
  }

  /** Forgets every unpacked pack (rolled-back packs' ids are handed out again). */
  private forgetPacks(): void {
    this.packCache.clear();
    this.scratchPackId = -1;
    this.scratchRaw = undefined;
  }

  chunkFingerprint(chunkId: number): Uint8Array | undefined {
    const value = this.statements.fingerprint.get(chunkId) as Buffer | null | undefined;
    return value === undefined || value === null ? undefined : new Uint8Array(value);
  }

  xattr(ino: number, name: string, at: number): Uint8Array | undefined {
    const value = this.statements.xattr.get({ ino, name, at }) as Buffer | undefined;
    return value === undefined ? undefined : new Uint8Array(value);
  }

  xattrNames(ino: number, at: number): string[] {
    return this.statements.xattrNames.all({ ino, at }) as string[];
  }

  snapshot(name: string): SnapshotRow | undefined {
    const row = this.statements.snapshot.get(name) as Row | undefined;
    return row === undefined ? undefined : toSnapshotRow(row);
  }

  snapshots(): SnapshotRow[] {
    return (this.statements.snapshots.all() as Row[]).map(toSnapshotRow);
  }

  orphanInodes(): number[] {
    return (this.statements.orphans.all() as unknown[]).map(Number);
  }

  totals(): StoreTotals {
    const totals: StoreTotals = {
      files: 0,
      directories: 0,
      symlinks: 0,
      logicalBytes: 0,
      storedBytes: this.storedBytes(),
      uniqueChunkBytes: 0,
      correctionBytes: 0,
      vectorCorrectBytes: 0,
      chunks: 0,
      snapshots: Number(this.statements.snapshotCount.get()),
      commits: this.headCommit(),
      indexBytes: Number(this.statements.indexBytes.get()),
    };
    for (const row of this.statements.typeTotals.all() as Row[]) {
      const count = Number(row.n);
      if (row.type === 'file') {
        totals.files = count;
        totals.logicalBytes = Number(row.bytes);
      } else if (row.type === 'directory') totals.directories = count;
      else if (row.type === 'symlink') totals.symlinks = count;
    }
    const chunkRow = this.statements.chunkTotals.get() as Row;
    totals.chunks = Number(chunkRow.n);
    totals.uniqueChunkBytes = Number(chunkRow.bytes);
    totals.correctionBytes = Number(chunkRow.correction);
    totals.vectorCorrectBytes = Number(chunkRow.vector);
    return totals;
  }

  allChunkIds(): number[] {
    return (this.statements.allChunkIds.all() as unknown[]).map(Number);
  }

  indexRow(key: string): Uint8Array | undefined {
    const value = this.statements.indexRow.get(key) as Buffer | undefined;
    return value === undefined ? undefined : new Uint8Array(value);
  }

  // ---- writer ----

  putIndexRow(key: string, value: Uint8Array): void {
    this.statements.putIndexRow.run(key, value);
  }

  deleteIndexRow(key: string): void {
    this.statements.deleteIndexRow.run(key);
  }

  clearIndexRows(): void {
    this.statements.clearIndexRows.run();
  }

  orphanOwner(ino: number): string | undefined {
    return this.statements.orphanOwner.get(ino) as string | undefined;
  }

  setOrphanOwner(ino: number, owner: string): void {
    this.statements.setOrphanOwner.run(ino, owner);
  }

  claimStages(stageCommits: number[]): void {
    for (const commit of new Set(stageCommits)) this.statements.claimStage.run(commit);
  }

  allocateIno(): number {
    // Read once per commit and written back at its end: an ingest commit creates thousands.
    const ino = this.nextIno ?? Number(this.statements.meta.get('next_ino'));
    this.nextIno = ino + 1;
    this.freshInos.add(ino);
    this.createdInos.add(ino);
    return ino;
  }

  putInode(ino: number, data: InodeData): void {
    const s = this.statements;
    // A number this commit allocated has no rows yet: nothing to replace or close (two statements
    // of three per created file).
    if (!this.freshInos.delete(ino)) {
      s.deleteInodeAtCommit.run(ino, this.commit);
      s.closeInode.run(this.commit, ino);
    }
    s.insertInode.run({
      ino,
      commit: this.commit,
      type: data.type,
      mode: data.mode,
      uid: data.uid,
      gid: data.gid,
      size: data.size,
      nlink: data.nlink,
      atimeNs: data.atimeNs,
      mtimeNs: data.mtimeNs,
      ctimeNs: data.ctimeNs,
      birthtimeNs: data.birthtimeNs,
      symlinkTarget: data.symlinkTarget,
      contentSha256: data.contentSha256,
      change: data.change,
    });
    this.writtenInodes.set(ino, {
      ...data,
      contentSha256: data.contentSha256 === null ? null : new Uint8Array(data.contentSha256),
      ino,
      fromCommit: this.commit,
      toCommit: null,
    });
  }

  removeInode(ino: number): void {
    this.writtenInodes.set(ino, null);
    const s = this.statements;
    s.deleteInodeAtCommit.run(ino, this.commit);
    s.closeInode.run(this.commit, ino);
    this.closeChunkRefs(ino, 0, Number.MAX_SAFE_INTEGER);
    s.deleteAllXattrsAtCommit.run(ino, this.commit);
    s.closeAllXattrs.run(this.commit, ino);
    s.deleteOrphanOwner.run(ino);
  }

  putDentry(parentIno: number, name: string, childIno: number): void {
    // Under a directory this commit created, a name not yet written in it has no rows to end.
    if (this.createdInos.has(parentIno)) {
      const key = `${parentIno}/${name}`;
      if (this.writtenDentries.has(key)) this.removeDentry(parentIno, name);
      else this.writtenDentries.add(key);
    } else this.removeDentry(parentIno, name);
    this.statements.insertDentry.run(parentIno, name, this.commit, childIno);
  }

  removeDentry(parentIno: number, name: string): void {
    this.statements.deleteDentryAtCommit.run(parentIno, name, this.commit);
    this.statements.closeDentry.run(this.commit, parentIno, name);
  }

  putPack(pack: PreparedPack): number[] {
    const s = this.statements;
    const packId = Number(s.insertPack.run(pack.rawBytes, pack.data).lastInsertRowid);
    const ids: number[] = [];
    for (const chunk of pack.chunks) {
      const result = s.insertChunk.run(
        chunk.sha256,
        chunk.byteLength,
        packId,
        chunk.offset,
        chunk.payloadBytes,
        chunk.vectorCorrectBytes,
        chunk.correctionBytes,
        chunk.fingerprint,
        this.commit,
      );
      ids.push(result.changes === 1 ? Number(result.lastInsertRowid) : Number(s.chunkIdBySha.get(chunk.sha256)));
    }
    return ids;
  }

  closeChunkRefs(ino: number, firstIndex: number, endIndex: number): number {
    const s = this.statements;
    const commit = this.commit;
    const first = firstIndex;
    const end = Math.min(endIndex, Number.MAX_SAFE_INTEGER);
    if (end <= first) return 0;
    const across = s.runsAcross.all({ ino, first, end }) as number[][];
    // Runs wholly inside: refs this commit began are dropped (they never were), the others end.
    let ended = Number(s.refsInside.get({ ino, first, end }));
    s.deleteRunsInside.run({ ino, first, end, commit });
    s.closeRunsInside.run({ ino, first, end, commit });
    // Runs reaching in from outside: end the run, and begin again its parts outside the range.
    for (const [chunkIndex, fromCommit, chunkId, run] of across) {
      if (fromCommit === commit) s.deleteRun.run(ino, chunkIndex, fromCommit);
      else s.closeRun.run(commit, ino, chunkIndex, fromCommit);
      const runEnd = chunkIndex + run;
      ended += Math.min(end, runEnd) - Math.max(first, chunkIndex);
      if (chunkIndex < first) s.insertRun.run(ino, chunkIndex, commit, chunkId, first - chunkIndex);
      if (runEnd > end) s.insertRun.run(ino, end, commit, chunkId + (end - chunkIndex), runEnd - end);
    }
    return ended;
  }

  insertChunkRefs(ino: number, firstIndex: number, chunkIds: number[]): void {
    // One row per run of consecutive chunk ids (at most MAX_REF_RUN): a file written whole from
    // one batch of new chunks is a run per 64 chunks, not a row per chunk.
    const insert = this.statements.insertRun;
    for (let start = 0; start < chunkIds.length; ) {
      let end = start + 1;
      while (end < chunkIds.length && end - start < MAX_REF_RUN && chunkIds[end] === chunkIds[end - 1] + 1) end += 1;
      insert.run(ino, firstIndex + start, this.commit, chunkIds[start], end - start);
      start = end;
    }
  }

  setXattr(ino: number, name: string, value: Uint8Array): void {
    this.removeXattr(ino, name);
    this.statements.insertXattr.run(ino, name, this.commit, value);
  }

  removeXattr(ino: number, name: string): void {
    this.statements.deleteXattrAtCommit.run(ino, name, this.commit);
    this.statements.closeXattr.run(this.commit, ino, name);
  }

  putSnapshot(row: SnapshotRow): void {
    this.statements.insertSnapshot.run(row.name, row.commit, row.createdNs);
  }

  removeSnapshot(name: string): void {
    this.statements.deleteSnapshot.run(name);
  }

  // ---- maintenance ----

  collectGarbage(rule: GcRule): GcReport {
    this.assertWritable();
    return this.guard(() => {
      const bytesBefore = this.storedBytes();
      const db = this.db;
      const counts = db.transaction(() => {
        db.exec('CREATE TEMP TABLE IF NOT EXISTS gc_pins(commit_id INTEGER PRIMARY KEY)');
        db.exec('DELETE FROM gc_pins');
        const insertPin = db.prepare('INSERT OR IGNORE INTO gc_pins(commit_id) VALUES (?)');
        for (const pin of rule.pinnedCommits) insertPin.run(pin);
        // Snapshots are read inside the same transaction so one created concurrently is honoured.
        db.exec('INSERT OR IGNORE INTO gc_pins(commit_id) SELECT commit_id FROM snapshots');
        const dead = (table: string) =>
          `DELETE FROM ${table} WHERE to_commit IS NOT NULL AND to_commit <= @retain
             AND NOT EXISTS (SELECT 1 FROM gc_pins p WHERE p.commit_id >= ${table}.from_commit AND p.commit_id < ${table}.to_commit)`;
        const freedVersions = db.prepare(dead('inodes')).run({ retain: rule.retainAfterCommit }).changes;
        db.prepare(dead('dentries')).run({ retain: rule.retainAfterCommit });
        db.prepare(dead('file_chunks')).run({ retain: rule.retainAfterCommit });
        db.prepare(dead('xattrs')).run({ retain: rule.retainAfterCommit });
        const freedChunks = db
          .prepare(
            `DELETE FROM chunks WHERE NOT EXISTS (SELECT 1 FROM file_chunks f WHERE f.chunk_id <= chunks.chunk_id
                 AND f.chunk_id > chunks.chunk_id - ${MAX_REF_RUN} AND f.chunk_id + f.run_count > chunks.chunk_id)
               AND added_commit NOT IN (SELECT commit_id FROM commits WHERE kind = 'stage' AND time_ns > @grace)`,
          )
          .run({ grace: rule.stagedGraceAfterNs }).changes;
        db.exec('DELETE FROM packs WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.pack_id = packs.pack_id)');
        this.repack();
        return { freedChunks, freedVersions };
      }).immediate();
      this.forgetPacks();
      db.pragma('incremental_vacuum');
      db.pragma('wal_checkpoint(TRUNCATE)');
      return { ...counts, bytesBefore, bytesAfter: this.storedBytes() };
    });
  }

  /** Rewrites packs whose live payloads are under half of their bytes (inside the GC transaction). */
  private repack(): void {
    const db = this.db;
    const sparse = db
      .prepare(
        `SELECT p.pack_id, p.raw_bytes, p.data, sum(c.payload_bytes) AS live FROM packs p JOIN chunks c ON c.pack_id = p.pack_id
         GROUP BY p.pack_id HAVING sum(c.payload_bytes) < p.raw_bytes * ${REPACK_LIVE_SHARE}`,
      )
      .all() as Row[];
    const chunksOf = db.prepare('SELECT chunk_id, pack_offset, payload_bytes FROM chunks WHERE pack_id = ? ORDER BY pack_offset');
    const move = db.prepare('UPDATE chunks SET pack_id = ?, pack_offset = ? WHERE chunk_id = ?');
    for (const pack of sparse) {
      const raw = unpack(pack.data as Buffer, Number(pack.raw_bytes));
      const live = chunksOf.all(pack.pack_id) as Row[];
      const rebuilt = new Uint8Array(Number(pack.live));
      const moves: Array<[number, number]> = [];
      let offset = 0;
      for (const chunk of live) {
        const start = Number(chunk.pack_offset);
        const length = Number(chunk.payload_bytes);
        rebuilt.set(raw.subarray(start, start + length), offset);
        moves.push([Number(chunk.chunk_id), offset]);
        offset += length;
      }
      const newPackId = Number(this.statements.insertPack.run(rebuilt.length, encodePackBytes(rebuilt)).lastInsertRowid);
      for (const [chunkId, newOffset] of moves) move.run(newPackId, newOffset, chunkId);
      db.prepare('DELETE FROM packs WHERE pack_id = ?').run(pack.pack_id);
    }
  }

  integrityCheck(): string[] {
    return this.guard(() => {
      const rows = this.db.pragma('quick_check') as Array<Record<string, unknown>>;
      const messages = rows.map((row) => String(Object.values(row)[0]));
      return messages.length === 1 && messages[0] === 'ok' ? [] : messages;
    });
  }

  checkpoint(): void {
    if (this.closed || this.readOnly) return;
    this.guard(() => {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    });
  }

  holdCheckpoints(): { release(): void } {
    if (this.closed || this.readOnly) return { release: () => undefined };
    if (this.checkpointHolds === 0 && this.autoCheckpoint) this.db.pragma('wal_autocheckpoint = 0');
    this.checkpointHolds += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.checkpointHolds -= 1;
        if (this.checkpointHolds > 0 || this.closed || !this.autoCheckpoint) return;
        this.db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
        this.checkpointInBackground();
      },
    };
  }

  /**
   * Asks the background connection for a PASSIVE checkpoint; one at a time (a request while one
   * runs is remembered and sent when it ends). Without a background connection it runs here.
   */
  private checkpointInBackground(): void {
    const background = this.backgroundConnection();
    if (background === undefined) {
      this.checkpoint();
      return;
    }
    if (background.checkpointRunning) {
      background.checkpointAgain = true;
      return;
    }
    background.checkpointRunning = true;
    this.request(background, { kind: 'checkpoint', id: 0 }, []).then(
      () => {
        background.checkpointRunning = false;
        if (background.checkpointAgain && !this.closed) {
          background.checkpointAgain = false;
          this.checkpointInBackground();
        }
      },
      () => {
        background.checkpointRunning = false;
      },
    );
  }

  /**
   * Stores `packs` in a `stage` commit (`durable: false`) made by the background connection, and
   * resolves to one chunk id per entry of `shas`: null for null (a hole), undefined for a SHA-256
   * that is neither in the packs nor stored. The pack bodies are moved to the worker (the caller's
   * copies are detached). Undefined when the store has no background connection (read-only,
   * closed, or the worker could not start): the caller stages in its own commits then.
   */
  stageInBackground(timeNs: bigint, batch: PackBatch, shas: Array<Uint8Array | null>): Promise<StagedIds> | undefined {
    if (this.closed || this.readOnly) return undefined;
    const background = this.backgroundConnection();
    if (background === undefined) return undefined;
    // The pack bodies go without the fingerprint indices (the caller keeps those), and the
    // SHA-256s asked about in one buffer with a hole mask: a few clones, not one per chunk.
    const { dims: _dims, dimCounts: _dimCounts, ...stored } = batch;
    const asked = new Uint8Array(32 * shas.length);
    const holes = new Uint8Array(shas.length);
    shas.forEach((sha, position) => {
      if (sha === null) holes[position] = 1;
      else asked.set(sha, 32 * position);
    });
    const transfer = batch.packs
      .map((pack) => pack.data)
      .filter((data) => data.byteOffset === 0 && data.byteLength === data.buffer.byteLength)
      .map((data) => data.buffer as ArrayBuffer);
    transfer.push(asked.buffer, holes.buffer);
    return this.request(background, { kind: 'stage', id: 0, timeNs, batch: stored, shas: asked, holes }, transfer).then((reply) => {
      if (reply.stageCommit === undefined) throw new Error('the background connection did not say which commit staged the batch');
      return { ids: reply.ids ?? [], chunkIds: reply.chunkIds ?? [], stageCommit: reply.stageCommit };
    });
  }

  lookupInBackground(shas: Uint8Array[]): Promise<boolean[]> | undefined {
    if (this.closed || shas.length === 0) return undefined;
    const background = this.backgroundConnection();
    if (background === undefined) return undefined;
    const asked = new Uint8Array(32 * shas.length);
    shas.forEach((sha, position) => asked.set(sha, 32 * position));
    return this.request(background, { kind: 'lookup', id: 0, shas: asked }, [asked.buffer]).then((reply) => {
      const found = reply.found;
      if (found === undefined || found.length !== shas.length) throw new Error(`background lookup answered ${found?.length ?? 'nothing'} for ${shas.length} hashes`);
      return Array.from(found, (flag) => flag === 1);
    });
  }

  async idle(): Promise<void> {
    // Requests are answered in order: a ping answered means everything before it was. A finished
    // checkpoint may send the one asked for while it ran, hence the loop.
    for (let round = 0; round < 8; round += 1) {
      const background = this.background;
      if (background === undefined || background.failed || this.closed || background.waiting.size === 0) return;
      await this.request(background, { kind: 'ping', id: 0 }, []).catch(() => undefined);
    }
  }

  /** The background connection, started on first use; undefined once it failed or the store closed. */
  private backgroundConnection(): BackgroundConnection | undefined {
    if (this.closed || this.readOnly) return undefined;
    if (this.background !== undefined) return this.background.failed ? undefined : this.background;
    try {
      const closed = new Int32Array(new SharedArrayBuffer(4));
      const worker = new Worker(new URL('./background-worker.js', import.meta.url), {
        workerData: { file: this.file, closed },
        execArgv: process.execArgv.filter((flag) => !flag.startsWith('--input-type') && !flag.startsWith('--eval') && flag !== '-e'),
      });
      const background: BackgroundConnection = { worker, closed, waiting: new Map(), nextId: 1, checkpointRunning: false, checkpointAgain: false, failed: false };
      worker.on('message', (reply: BackgroundReply) => {
        const waiter = background.waiting.get(reply.id);
        if (waiter === undefined) return;
        background.waiting.delete(reply.id);
        if (background.waiting.size === 0) worker.unref();
        if ('error' in reply) {
          waiter.reject(reply.code === undefined ? new Error(`background connection: ${reply.error}`) : new EmbrError(reply.code as ErrorCode, reply.error, reply.data ?? {}));
        } else waiter.resolve(reply);
      });
      worker.on('error', (error) => {
        background.failed = true;
        for (const waiter of background.waiting.values()) waiter.reject(error);
        background.waiting.clear();
      });
      worker.unref();
      this.background = background;
      return background;
    } catch {
      return undefined;
    }
  }

  private request(background: BackgroundConnection, request: BackgroundRequest, transfer: ArrayBuffer[]): Promise<Extract<BackgroundReply, { ids?: unknown }>> {
    if (background.failed) return Promise.reject(new Error('background connection failed'));
    request.id = background.nextId;
    background.nextId += 1;
    background.worker.ref();
    return new Promise((resolve, reject) => {
      background.waiting.set(request.id, { resolve, reject });
      background.worker.postMessage(request, transfer);
    });
  }

  syncAhead(): void {
    // Under NORMAL no commit syncs, so there is nothing to get ahead of.
    if (this.closed || this.readOnly || this.synchronous !== 'FULL') return;
    if (this.walSync.running) {
      this.walSync.again = true;
      return;
    }
    if (this.walSync.fd === undefined) {
      try {
        // The WAL file only (SQLite keeps its POSIX locks on the database and -shm files, and
        // closing a descriptor of a locked file would drop them).
        this.walSync.fd = openSync(this.file + '-wal', 'r');
      } catch {
        return;
      }
    }
    const fd = this.walSync.fd;
    this.walSync.running = true;
    fdatasync(fd, () => {
      this.walSync.running = false;
      if (this.closed) {
        this.closeWalSyncFd();
        return;
      }
      if (this.walSync.again) {
        this.walSync.again = false;
        this.syncAhead();
      }
    });
  }

  private closeWalSyncFd(): void {
    if (this.walSync.fd === undefined || this.walSync.running) return;
    const fd = this.walSync.fd;
    this.walSync.fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // Nothing to do: the descriptor is gone either way.
    }
  }

  sync(): void {
    if (this.closed || this.readOnly) return;
    this.guard(() => {
      // Commits under synchronous=NORMAL sit in the WAL unsynced; checkpoints sync the WAL before
      // copying it, so the two files together hold everything once both are fsynced.
      for (const suffix of ['-wal', '']) {
        let fd: number;
        try {
          fd = openSync(this.file + suffix, 'r');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT' && suffix === '-wal') continue;
          throw error;
        }
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    });
  }

  async syncAsync(): Promise<void> {
    if (this.closed || this.readOnly) return;
    // As sync, on the thread pool. Commits made meanwhile on this thread are safe: a checkpoint
    // syncs the database file before the WAL it copied can be reset, so a commit made before
    // this call is in a synced WAL or a synced database file either way.
    for (const suffix of ['-wal', '']) {
      let handle: FileHandle;
      try {
        handle = await openFile(this.file + suffix, 'r');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' && suffix === '-wal') continue;
        throw error;
      }
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  }

  storedBytes(): number {
    let total = 0;
    for (const suffix of ['', '-wal']) {
      try {
        total += statSync(this.file + suffix).size;
      } catch {
        // A missing WAL file simply holds nothing.
      }
    }
    return total;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The background checkpoint's connection closes first (waiting for a checkpoint in progress):
    // nothing of this store may touch the file after close returns.
    const background = this.background;
    this.background = undefined;
    if (background !== undefined && !background.failed) {
      background.worker.postMessage({ kind: 'close', id: 0 } satisfies BackgroundRequest);
      Atomics.wait(background.closed, 0, 0, BACKGROUND_CLOSE_WAIT_MS);
      background.worker.unref();
      // Requests it never answered (a stage sent just before close) fail as the store is closed.
      for (const waiter of background.waiting.values()) waiter.reject(new EmbrError('CLOSED', `${this.file}: the engram is closed`));
      background.waiting.clear();
    }
    this.closeWalSyncFd();
    if (!this.readOnly) this.releaseFreePages();
    this.db.close();
  }

  /**
   * Gives free pages back to the file system at close (the file is `auto_vacuum = INCREMENTAL`):
   * index checkpoints and rewrites leave some behind (0.9 MB after the bench:peers ingest). Best
   * effort: skipped when another connection holds the write lock or the disk refuses.
   */
  private releaseFreePages(): void {
    try {
      const freePages = Number(this.db.pragma('freelist_count', { simple: true }));
      const pageBytes = Number(this.db.pragma('page_size', { simple: true }));
      if (freePages * pageBytes < RELEASE_FREE_BYTES_AT_CLOSE) return;
      this.db.pragma('busy_timeout = 50');
      this.db.pragma('incremental_vacuum');
    } catch {
      // The pages stay free and are reused by later writes.
    }
  }
}

function toDentryRow(row: Row): DentryRow {
  return {
    parentIno: Number(row.parent_ino),
    name: row.name as string,
    childIno: Number(row.child_ino),
    fromCommit: Number(row.from_commit),
    toCommit: row.to_commit === null ? null : Number(row.to_commit),
  };
}

function toSnapshotRow(row: Row): SnapshotRow {
  return { name: row.name as string, commit: Number(row.commit_id), createdNs: timeColumn(row, 'created_ns') };
}
