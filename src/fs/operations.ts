/**
 * The synchronous core of VersionedEmbrFS: path resolution, reads at a commit and the mutation
 * steps a commit applies. Everything here runs inside one store read or write (one SQLite
 * transaction) and never awaits; `engram.ts` does the async work (encoding) around it.
 *
 * @example
 * ```ts
 * const found = store.read((reader) => resolvePath(reader, LIVE, '/a.txt'));
 * ```
 */
import { allocateOutput } from './output-memory.js';
import { EmbrError } from '../errors.js';
import type { DirectoryEntry, Stat } from './api.js';
import type { ChunkInfo, ChunkRef, InodeData, InodeRow, StoreReader, StoreWriter } from '../store/api.js';
import { LIVE, ROOT_INO } from '../store/api.js';
import type { EncodedContent, Pipeline } from './encode.js';
import { encodeContent, shaKey } from './encode.js';
import { parsePath } from './path.js';
import { ContentDelta } from './content-delta.js';

/** Everything a mutation step needs: the open commit, its time and its content changes. */
export interface CommitContext {
  readonly writer: StoreWriter;
  readonly timeNs: bigint;
  readonly changes: ContentDelta;
  readonly pipeline: Pipeline;
  /** True when the inode has open handles in this process (an unlinked inode then stays). */
  isOpen(ino: number): boolean;
  /** Tag of this engram instance, recorded on inodes it keeps open after unlink. */
  readonly ownerTag: string;
  /**
   * Records that this engram keeps `ino` (open here) alive with nlink 0: sets its orphan owner
   * (`ownerTag`) and tells the engram, whose last close of the inode then destroys it.
   */
  keepOrphan(ino: number): void;
}

/**
 * What one commit knows of the live directories: their inode rows and the entries naming them,
 * as the store holds them now, inside this commit. Path resolution inside a commit reads through
 * it, so a batch of creates under the same directories resolves each directory once per commit
 * instead of once per path component per create; and a row write identical to the row this
 * commit already wrote is skipped (a directory touched by many creates in one commit is written
 * once: every touch gives it the same mtime, ctime and version). It also keeps the ids of the
 * chunks the commit stored, for the writes whose chunks went into another write's packs.
 *
 * It is exact because every write of an inode row or a directory entry made inside a commit by
 * this module and session.ts goes through {@link putRow}, {@link removeRow}, {@link putEntry} and
 * {@link removeEntry}, which keep it equal to the store. Code that writes rows or entries through
 * `context.writer` directly must not rely on it afterwards in the same commit (engram.ts's
 * snapshot restore does, in a commit of its own, and reads nothing through it after its writes).
 * One cache per {@link CommitContext}: a new commit, a retried one and a speculation (always
 * rolled back) each get a fresh context, so nothing outlives the transaction it describes.
 */
class CommitCache implements Lookups {
  /** Live rows of directories, by inode. */
  private readonly directories = new Map<number, InodeRow>();
  /** Live entries naming directories: `${parentIno}/${name}` → child inode. */
  private readonly subdirectories = new Map<string, number>();
  /**
   * Chunk ids by SHA-256 key ({@link shaKey}) of the chunks this commit stored or found stored
   * (chunks are never freed inside a commit: GC is a commit of its own).
   */
  readonly chunkIds = new Map<string, number>();

  constructor(private readonly writer: StoreWriter) {}

  inode(ino: number): InodeRow | undefined {
    const cached = this.directories.get(ino);
    if (cached !== undefined) return cached;
    const row = this.writer.inode(ino, LIVE);
    if (row !== undefined && row.type === 'directory') this.directories.set(ino, row);
    return row;
  }

  entry(parentIno: number, name: string): { ino: number; row: InodeRow | undefined } | undefined {
    const key = `${parentIno}/${name}`;
    const cached = this.subdirectories.get(key);
    if (cached !== undefined) {
      const row = this.directories.get(cached);
      if (row !== undefined) return { ino: cached, row };
    }
    const ino = this.writer.lookup(parentIno, name, LIVE);
    if (ino === undefined) return undefined;
    const row = this.inode(ino);
    // Only entries naming directories are kept (a file's entry is typically looked up once).
    if (row !== undefined && row.type === 'directory') this.subdirectories.set(key, ino);
    return { ino, row };
  }

  putRow(ino: number, data: InodeData): void {
    const writer = this.writer;
    const cached = this.directories.get(ino);
    // Rewriting this commit's own row with the same fields changes nothing: skip it.
    if (cached !== undefined && cached.fromCommit === writer.commit && sameData(cached, data)) return;
    writer.putInode(ino, data);
    if (data.type === 'directory') this.directories.set(ino, { ...data, ino, fromCommit: writer.commit, toCommit: null });
    else this.directories.delete(ino);
  }

  removeRow(ino: number): void {
    this.writer.removeInode(ino);
    this.directories.delete(ino);
  }

  putEntry(parentIno: number, name: string, childIno: number, childType: InodeData['type']): void {
    this.writer.putDentry(parentIno, name, childIno);
    const key = `${parentIno}/${name}`;
    if (childType === 'directory') this.subdirectories.set(key, childIno);
    else this.subdirectories.delete(key);
  }

  removeEntry(parentIno: number, name: string): void {
    this.writer.removeDentry(parentIno, name);
    this.subdirectories.delete(`${parentIno}/${name}`);
  }
}

function sameData(row: InodeData, data: InodeData): boolean {
  return (
    row.type === data.type &&
    row.mode === data.mode &&
    row.uid === data.uid &&
    row.gid === data.gid &&
    row.size === data.size &&
    row.nlink === data.nlink &&
    row.atimeNs === data.atimeNs &&
    row.mtimeNs === data.mtimeNs &&
    row.ctimeNs === data.ctimeNs &&
    row.birthtimeNs === data.birthtimeNs &&
    row.symlinkTarget === data.symlinkTarget &&
    row.change === data.change &&
    (row.contentSha256 === data.contentSha256 ||
      (row.contentSha256 !== null && data.contentSha256 !== null && Buffer.compare(row.contentSha256, data.contentSha256) === 0))
  );
}

const commitCaches = new WeakMap<CommitContext, CommitCache>();

function cacheOf(context: CommitContext): CommitCache {
  let cache = commitCaches.get(context);
  if (cache === undefined) {
    cache = new CommitCache(context.writer);
    commitCaches.set(context, cache);
  }
  return cache;
}

/** The live row of `ino` inside a commit (through the commit's directory cache). */
export function liveRow(context: CommitContext, ino: number): InodeRow | undefined {
  return cacheOf(context).inode(ino);
}

/** Writes the live row of `ino` in this commit (every row write of a commit goes through here). */
export function putRow(context: CommitContext, ino: number, data: InodeData): void {
  cacheOf(context).putRow(ino, data);
}

/** Ends `ino` (row, chunk refs, xattrs) in this commit. */
export function removeRow(context: CommitContext, ino: number): void {
  cacheOf(context).removeRow(ino);
}

/** Links `childIno` (of type `childType`) into `parentIno` as `name`, replacing an entry there. */
export function putEntry(context: CommitContext, parentIno: number, name: string, childIno: number, childType: InodeData['type']): void {
  cacheOf(context).putEntry(parentIno, name, childIno, childType);
}

/** Removes the entry `name` of `parentIno` in this commit. */
export function removeEntry(context: CommitContext, parentIno: number, name: string): void {
  cacheOf(context).removeEntry(parentIno, name);
}

/** A chunk that the encoder found stored was freed (by compaction) before the commit: re-encode. */
export class ChunkVanishedError extends Error {
  constructor() {
    super('a deduplicated chunk was freed before the commit; the write is encoded again');
    this.name = 'ChunkVanishedError';
  }
}

export interface Resolved {
  ino: number;
  row: InodeRow;
}

export interface ResolvedParent {
  parentIno: number;
  parentRow: InodeRow;
  name: string;
  /** The entry's inode if it exists. */
  child: Resolved | undefined;
}

/** The reads path resolution makes, at one commit. */
interface Lookups {
  inode(ino: number): InodeRow | undefined;
  /** The inode the entry `name` of `parentIno` names and its row (undefined row: a dangling entry). */
  entry(parentIno: number, name: string): { ino: number; row: InodeRow | undefined } | undefined;
}

function readerLookups(reader: StoreReader, at: number): Lookups {
  return {
    inode: (ino) => reader.inode(ino, at),
    entry: (parentIno, name) => {
      const ino = reader.lookup(parentIno, name, at);
      return ino === undefined ? undefined : { ino, row: reader.inode(ino, at) };
    },
  };
}

/**
 * Walks `count` components from the root. `onDirectory(length, ino)` hears of every directory on
 * the way, named by how many components lead to it (0: the root).
 */
function walk(
  source: Lookups,
  components: string[],
  count: number,
  path: string,
  onDirectory?: (length: number, ino: number) => void,
): Resolved | undefined {
  let ino = ROOT_INO;
  let row = source.inode(ROOT_INO);
  if (row === undefined) throw new EmbrError('CORRUPT', 'the root directory is missing', { what: 'inode', ino: ROOT_INO });
  if (onDirectory !== undefined && row.type === 'directory') onDirectory(0, ino);
  for (let position = 0; position < count; position += 1) {
    if (row.type !== 'directory') {
      throw new EmbrError('NOT_DIRECTORY', `${'/' + components.slice(0, position).join('/')} is not a directory`, { path });
    }
    const child = source.entry(ino, components[position]);
    if (child === undefined) return undefined;
    if (child.row === undefined) {
      throw new EmbrError('CORRUPT', `directory entry ${path} names missing inode ${child.ino}`, { what: 'dentry', path, ino: child.ino });
    }
    ino = child.ino;
    row = child.row;
    if (onDirectory !== undefined && row.type === 'directory') onDirectory(position + 1, ino);
  }
  return { ino, row };
}

/** Bound on {@link LiveDirectories} (emptied whole when full). */
const maxLiveDirectories = 8192;

/**
 * The live tree's directories by path, kept across the reads of one engram: a read that resolves
 * `/a/b/c` (stat, open, read, ...) then costs three queries (the head commit, the entry `c` of
 * the cached `/a/b`, its row) instead of seven; a FUSE mount resolves a path for nearly every
 * request (git clone: 34,000 getattrs for 3,000 files). Paths directly under the root do not use
 * it. Holds directories only, never an absent name.
 *
 * Exact for one head commit: every use first calls {@link validate} with the head its read
 * transaction sees, and any other head empties it, so another process's
 * commits (or this engram's commits that did not report themselves) are never answered from it.
 * The engram reports each of its own commits ({@link afterOwnCommit}); one that may have moved or
 * removed a directory (rename, rmdir, restore) empties it, the rest (creates, writes, unlinks of
 * files, metadata changes, mkdir) leave every cached path naming the same directory.
 */
export class LiveDirectories {
  private readonly inos = new Map<string, number>();
  /** The head commit the entries describe (-1: none yet). */
  private head = -1;

  /** Called before every use, inside the read, with the head commit the read sees. */
  validate(head: number): void {
    if (head === this.head) return;
    this.inos.clear();
    this.head = head;
  }

  /** After this engram's commit `commit`; `keepsDirectories`: it moved or removed no directory. */
  afterOwnCommit(commit: number, keepsDirectories: boolean): void {
    // Anything committed between the head we know and this one was someone else's.
    if (!keepsDirectories || commit !== this.head + 1) this.inos.clear();
    this.head = commit;
  }

  get(path: string): number | undefined {
    return this.inos.get(path);
  }

  set(path: string, ino: number): void {
    if (this.inos.size >= maxLiveDirectories) this.inos.clear();
    this.inos.set(path, ino);
  }
}

/** {@link resolvePath} of the live tree through `directories`. */
function resolveLive(reader: StoreReader, directories: LiveDirectories, components: string[], path: string): Resolved | undefined {
  const count = components.length;
  // Under the root the cache saves nothing (the head check costs the query it saves).
  if (count < 2) return walk(readerLookups(reader, LIVE), components, count, path);
  directories.validate(reader.headCommit());
  const parentIno = directories.get('/' + components.slice(0, count - 1).join('/'));
  if (parentIno === undefined) {
    return walk(readerLookups(reader, LIVE), components, count, path, (length, ino) => {
      if (length > 0) directories.set('/' + components.slice(0, length).join('/'), ino);
    });
  }
  const ino = reader.lookup(parentIno, components[count - 1], LIVE);
  if (ino === undefined) return undefined;
  const row = reader.inode(ino, LIVE);
  if (row === undefined) throw new EmbrError('CORRUPT', `directory entry ${path} names missing inode ${ino}`, { what: 'dentry', path, ino });
  if (row.type === 'directory') directories.set('/' + components.join('/'), ino);
  return { ino, row };
}

function walkParent(source: Lookups, path: string): ResolvedParent {
  const components = parsePath(path);
  if (components.length === 0) throw new EmbrError('INVALID_ARGUMENT', 'the root directory has no parent', { reason: 'root', path });
  const parentPath = '/' + components.slice(0, -1).join('/');
  // Resolved as the path of the parent would be: the same errors name the same prefix.
  const parent = walk(source, components, components.length - 1, parentPath);
  if (parent === undefined) throw new EmbrError('NOT_FOUND', `${parentPath}: no such directory`, { path });
  if (parent.row.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', `${parentPath} is not a directory`, { path });
  const name = components[components.length - 1];
  const entry = source.entry(parent.ino, name);
  let child: Resolved | undefined;
  if (entry !== undefined) {
    if (entry.row === undefined) throw new EmbrError('CORRUPT', `directory entry ${path} names missing inode ${entry.ino}`, { what: 'dentry', path });
    child = { ino: entry.ino, row: entry.row };
  }
  return { parentIno: parent.ino, parentRow: parent.row, name, child };
}

/**
 * Resolves a path at commit `at` without following symlinks; undefined when a component is
 * missing, NOT_DIRECTORY when a non-final component is not a directory. `directories` (live
 * reads of an engram): cached directories stand in for the walk.
 *
 * @example
 * ```ts
 * resolvePath(reader, LIVE, '/docs/a.txt')?.ino;
 * ```
 */
export function resolvePath(reader: StoreReader, at: number, path: string, directories?: LiveDirectories): Resolved | undefined {
  const components = parsePath(path);
  if (directories !== undefined && at === LIVE) return resolveLive(reader, directories, components, path);
  return walk(readerLookups(reader, at), components, components.length, path);
}

/**
 * Resolves the parent directory of a path (which must exist and be a directory) and its entry.
 * The root itself has no parent: callers handle `/` first.
 *
 * @example
 * ```ts
 * const { parentIno, name, child } = resolveParent(reader, LIVE, '/a/b');
 * ```
 */
export function resolveParent(reader: StoreReader, at: number, path: string): ResolvedParent {
  return walkParent(readerLookups(reader, at), path);
}

/**
 * {@link resolvePath} of the live tree inside a commit, through the commit's directory cache
 * (see {@link CommitCache}): the directories on the way cost no query once this commit has seen them.
 *
 * @example
 * ```ts
 * const found = resolveIn(context, '/docs/a.txt');
 * ```
 */
export function resolveIn(context: CommitContext, path: string): Resolved | undefined {
  const components = parsePath(path);
  return walk(cacheOf(context), components, components.length, path);
}

/** {@link resolveParent} of the live tree inside a commit, through the commit's directory cache. */
export function resolveParentIn(context: CommitContext, path: string): ResolvedParent {
  return walkParent(cacheOf(context), path);
}

/** {@link resolveIn} or NOT_FOUND. */
export function mustResolveIn(context: CommitContext, path: string): Resolved {
  const found = resolveIn(context, path);
  if (found === undefined) throw new EmbrError('NOT_FOUND', `${path}: no such file or directory`, { path });
  return found;
}

/** {@link resolveIn} of a regular file, or NOT_FOUND / IS_DIRECTORY / NOT_SUPPORTED (symlink). */
export function mustResolveFileIn(context: CommitContext, path: string): Resolved {
  const found = mustResolveIn(context, path);
  assertFile(found.row, path);
  return found;
}

/** Resolves or throws NOT_FOUND (through `directories` when given: see {@link resolvePath}). */
export function mustResolve(reader: StoreReader, at: number, path: string, directories?: LiveDirectories): Resolved {
  const found = resolvePath(reader, at, path, directories);
  if (found === undefined) throw new EmbrError('NOT_FOUND', `${path}: no such file or directory`, { path });
  return found;
}

/** Resolves a regular file or throws NOT_FOUND / IS_DIRECTORY / NOT_SUPPORTED (symlink). */
export function mustResolveFile(reader: StoreReader, at: number, path: string, directories?: LiveDirectories): Resolved {
  const found = mustResolve(reader, at, path, directories);
  assertFile(found.row, path);
  return found;
}

export function assertFile(row: InodeRow, path: string): void {
  if (row.type === 'directory') throw new EmbrError('IS_DIRECTORY', `${path} is a directory`, { path });
  if (row.type === 'symlink') {
    throw new EmbrError('NOT_SUPPORTED', `${path} is a symlink (the API does not follow links)`, { path, reason: 'symlink' });
  }
}

/** Throws VERSION_MISMATCH when `expected` is given and differs from the inode's version (0 = absent). */
export function checkVersion(path: string, expected: number | undefined, row: InodeRow | undefined): void {
  if (expected === undefined) return;
  const actual = row === undefined ? 0 : row.fromCommit;
  if (actual !== expected) {
    throw new EmbrError('VERSION_MISMATCH', `${path}: expected version ${expected}, found ${actual}`, { path, expected, actual });
  }
}

/** The inode fields of a row without its interval. */
export function dataOf(row: InodeRow): InodeData {
  return {
    type: row.type,
    mode: row.mode,
    uid: row.uid,
    gid: row.gid,
    size: row.size,
    nlink: row.nlink,
    atimeNs: row.atimeNs,
    mtimeNs: row.mtimeNs,
    ctimeNs: row.ctimeNs,
    birthtimeNs: row.birthtimeNs,
    symlinkTarget: row.symlinkTarget,
    contentSha256: row.contentSha256,
    change: row.change,
  };
}

export function statOf(ino: number, row: InodeRow): Stat {
  return {
    ino,
    type: row.type,
    mode: row.mode,
    uid: row.uid,
    gid: row.gid,
    size: row.size,
    nlink: row.nlink,
    version: row.fromCommit,
    atimeNs: row.atimeNs,
    mtimeNs: row.mtimeNs,
    ctimeNs: row.ctimeNs,
    birthtimeNs: row.birthtimeNs,
  };
}

export function listEntries(reader: StoreReader, at: number, ino: number): DirectoryEntry[] {
  return reader.listDirectory(ino, at).map(({ name, childIno }) => {
    const row = reader.inode(childIno, at);
    if (row === undefined) throw new EmbrError('CORRUPT', `entry ${name} names missing inode ${childIno}`, { what: 'dentry', ino: childIno });
    return { name, type: row.type, ino: childIno };
  });
}

// ---- chunk reads ----

/** Expected byte length of chunk `index` of a file of `size` bytes. */
export function chunkLength(size: number, chunkBytes: number, index: number): number {
  return Math.max(0, Math.min(chunkBytes, size - index * chunkBytes));
}

/**
 * Reads `length` bytes at `offset` of inode `ino` (of `size` bytes) as of `at`: holes read as zeros,
 * every chunk decoded and checked against its SHA-256 by the codec.
 */
export function readRange(
  reader: StoreReader,
  pipeline: Pipeline,
  at: number,
  ino: number,
  size: number,
  offset: number,
  length: number,
  /** Where the references come from (default: the store); a handle's read cache passes its own. */
  refsOf: (firstIndex: number, endIndex: number) => ChunkRef[] = (firstIndex, endIndex) => reader.chunkRefs(ino, at, firstIndex, endIndex),
  /** Memory to read into when it is large enough (the answer is then a view of it from 0). */
  into?: Uint8Array,
): Uint8Array {
  const end = Math.min(size, offset + length);
  if (end <= offset) return new Uint8Array(0);
  const chunkBytes = pipeline.chunkBytes;
  // Holes are not written below: reused memory starts zeroed like a new array.
  const out = into !== undefined && into.length >= end - offset ? into.subarray(0, end - offset).fill(0) : allocateOutput(end - offset);
  const firstIndex = Math.floor(offset / chunkBytes);
  const endIndex = Math.ceil(end / chunkBytes);
  const refs = refsOf(firstIndex, endIndex);
  // A read of one or two chunks (a random 4 KiB read) asks for just their payloads: from an
  // uncompressed pack that is a slice, not the whole pack.
  const alone = refs.length <= 2;
  // Positional chunks the range covers whole are copied in unchecked and then hashed in one call
  // over their span of `out` (pipeline.sha256Chunks); each is compared with its recorded SHA-256
  // before anything is returned, and a mismatch re-runs that chunk's checked decode for its error.
  const batched = !alone && pipeline.codec.profile === 'positional';
  const unchecked: ChunkRef[] = [];
  for (const ref of refs) {
    const chunkStart = ref.chunkIndex * chunkBytes;
    const expectedLength = chunkLength(size, chunkBytes, ref.chunkIndex);
    if (chunkStart >= offset && chunkStart + expectedLength <= end && ref.chunk !== undefined && ref.chunk.byteLength === expectedLength) {
      // A chunk the range covers whole is decoded straight into the output (checked before it lands).
      const payload = alone && reader.chunkPayloadAlone !== undefined ? reader.chunkPayloadAlone(ref.chunk) : reader.chunkPayloadView(ref.chunk);
      const target = out.subarray(chunkStart - offset, chunkStart - offset + expectedLength);
      if (batched) {
        pipeline.codec.decodeIntoUnverified(payload, target);
        unchecked.push(ref);
      } else pipeline.codec.decodeInto(payload, ref.chunk.sha256, target);
      continue;
    }
    const bytes = decodeRef(reader, pipeline, ref.chunk, ref.chunkId, expectedLength, alone);
    const from = Math.max(offset, chunkStart);
    const to = Math.min(end, chunkStart + bytes.length);
    out.set(bytes.subarray(from - chunkStart, to - chunkStart), from - offset);
  }
  if (unchecked.length > 0) checkCopied(reader, pipeline, out, offset, size, unchecked);
  return out;
}

/**
 * Checks the chunks {@link readRange} copied unchecked into `out` (the bytes from `offset`): one
 * batched SHA-256 over the span from the first to the last of them, each compared
 * with its recorded hash. A mismatch decodes that chunk again through the checked path, which
 * throws its CORRUPT error (and, should the bytes now match, puts checked bytes in place).
 */
function checkCopied(reader: StoreReader, pipeline: Pipeline, out: Uint8Array, offset: number, size: number, chunks: ChunkRef[]): void {
  const chunkBytes = pipeline.chunkBytes;
  const firstIndex = chunks[0].chunkIndex;
  const spanStart = firstIndex * chunkBytes - offset;
  const spanEnd = Math.min(out.length, chunks[chunks.length - 1].chunkIndex * chunkBytes + chunkLength(size, chunkBytes, chunks[chunks.length - 1].chunkIndex) - offset);
  const digests = new Uint8Array(32 * Math.ceil((spanEnd - spanStart) / chunkBytes));
  pipeline.sha256Chunks(out.subarray(spanStart, spanEnd), chunkBytes, digests);
  for (const ref of chunks) {
    const position = 32 * (ref.chunkIndex - firstIndex);
    const chunk = ref.chunk as ChunkInfo;
    if (Buffer.compare(digests.subarray(position, position + 32), chunk.sha256) === 0) continue;
    const start = ref.chunkIndex * chunkBytes - offset;
    pipeline.codec.decodeInto(reader.chunkPayloadView(chunk), chunk.sha256, out.subarray(start, start + chunk.byteLength));
  }
}

/**
 * A whole file, checked once against its recorded content SHA-256 instead of chunk by chunk: one
 * hash pass over the bytes instead of two (a 10 MB read hashed every chunk and then the file).
 * The hash covers every byte and the references' order, so a match proves the bytes; on a
 * mismatch the checked path ({@link readRange}) runs to name the damaged chunk, and if every chunk
 * is sound the references themselves are damaged. Files without a content hash (changed by a
 * partial write) and holographic engrams take the checked path directly.
 */
export function readWholeFile(reader: StoreReader, pipeline: Pipeline, at: number, ino: number, row: InodeRow, path: string): Uint8Array {
  if (row.contentSha256 === null || pipeline.codec.profile !== 'positional') {
    const data = readRange(reader, pipeline, at, ino, row.size, 0, row.size);
    checkContent(pipeline, row, data, path);
    return data;
  }
  const chunkBytes = pipeline.chunkBytes;
  const out = allocateOutput(row.size);
  let sound = true;
  for (const ref of reader.chunkPlacements(ino, at, 0, Math.ceil(row.size / chunkBytes))) {
    const chunkStart = ref.chunkIndex * chunkBytes;
    const expectedLength = chunkLength(row.size, chunkBytes, ref.chunkIndex);
    if (ref.chunk === undefined || ref.chunk.byteLength !== expectedLength || chunkStart + expectedLength > row.size) {
      sound = false;
      break;
    }
    pipeline.codec.decodeIntoUnverified(reader.chunkPayloadView(ref.chunk), out.subarray(chunkStart, chunkStart + expectedLength));
  }
  if (sound && Buffer.compare(pipeline.sha256(out), row.contentSha256) === 0) return out;
  // Name the damage: a bad chunk throws from the checked path; otherwise the references are wrong.
  const checked = readRange(reader, pipeline, at, ino, row.size, 0, row.size);
  checkContent(pipeline, row, checked, path);
  return checked;
}

/**
 * End-to-end check of a whole file's bytes against the SHA-256 recorded when it was written whole
 * (null after partial writes: then only the per-chunk checks apply). It catches damage to the
 * chunk references themselves, which per-chunk hashes cannot see: a reference lost to a flipped
 * bit would otherwise read as a hole of zeros.
 */
export function checkContent(pipeline: Pipeline, row: InodeRow, data: Uint8Array, path: string): void {
  if (row.contentSha256 === null || data.length !== row.size) return;
  const actual = pipeline.sha256(data);
  if (Buffer.compare(actual, row.contentSha256) !== 0) {
    throw new EmbrError('CORRUPT', `${path}: the file's content does not match its recorded SHA-256`, { what: 'file', path });
  }
}

/** Decodes one referenced chunk and checks its length; CORRUPT on any mismatch. */
export function decodeRef(
  reader: StoreReader,
  pipeline: Pipeline,
  chunk: ChunkInfo | undefined,
  chunkId: number,
  expectedLength: number,
  /** The chunk is read alone (see {@link StoreReader.chunkPayloadAlone}). */
  alone = false,
): Uint8Array {
  if (chunk === undefined) throw new EmbrError('CORRUPT', `chunk ${chunkId} is referenced but missing`, { what: 'chunk', chunkId });
  const payload = alone && reader.chunkPayloadAlone !== undefined ? reader.chunkPayloadAlone(chunk) : reader.chunkPayloadView(chunk);
  const bytes = pipeline.codec.decode(payload, chunk.sha256);
  if (bytes.length !== expectedLength || chunk.byteLength !== expectedLength) {
    throw new EmbrError('CORRUPT', `chunk ${chunkId} holds ${bytes.length} bytes where the file needs ${expectedLength}`, {
      what: 'chunk',
      chunkId,
    });
  }
  return bytes;
}

// ---- mutation steps ----

/** Stores the packs of `content` and returns one chunk id per chunk (null for holes). */
export function materialize(context: CommitContext, content: EncodedContent): Array<number | null> {
  const writer = context.writer;
  // Per commit, not per call: a transaction's small packs are merged into the packs of its first
  // write (coalescePacks), and its other writes find their chunks' ids here without a query.
  const byKey = cacheOf(context).chunkIds;
  for (const pack of content.packs) {
    const ids = writer.putPack(pack);
    pack.chunks.forEach((chunk, position) => {
      byKey.set(shaKey(chunk.sha256), ids[position]);
      context.changes.knownFingerprints.set(ids[position], chunk.fingerprint);
      if (chunk.fingerprintVector !== undefined) context.changes.knownVectors.set(ids[position], chunk.fingerprintVector);
    });
  }
  return content.shas.map((sha) => {
    if (sha === null) return null;
    const key = shaKey(sha);
    let id = byKey.get(key);
    if (id === undefined) {
      id = writer.chunkIdBySha256(sha);
      if (id === undefined) throw new ChunkVanishedError();
      byKey.set(key, id);
    }
    return id;
  });
}

/** Ends the live refs of `ino` in [firstIndex, endIndex) (the index re-indexes it from there). */
export function closeRefs(context: CommitContext, ino: number, firstIndex: number, endIndex: number): void {
  context.changes.touch(ino, firstIndex);
  context.changes.recordClosed(ino, firstIndex, endIndex);
  context.writer.closeChunkRefs(ino, firstIndex, endIndex);
}

/** Adds refs `ids[i]` at `firstIndex + i` (skipping holes). */
export function insertRefs(context: CommitContext, ino: number, firstIndex: number, ids: Array<number | null>): void {
  context.changes.touch(ino, firstIndex);
  let runStart = -1;
  const flush = (endPosition: number): void => {
    if (runStart < 0) return;
    const run = ids.slice(runStart, endPosition) as number[];
    context.writer.insertChunkRefs(ino, firstIndex + runStart, run);
    context.changes.recordInserted(ino, firstIndex + runStart, run);
    runStart = -1;
  };
  for (let position = 0; position < ids.length; position += 1) {
    if (ids[position] === null) flush(position);
    else if (runStart < 0) runStart = position;
  }
  flush(ids.length);
}

/** Encodes chunks inside the commit (small edits: the edge chunks of a partial write, truncation). */
export function encodeInCommit(context: CommitContext, bytes: Uint8Array, firstIndex: number): Array<number | null> {
  const writer = context.writer;
  const content = encodeContent(context.pipeline, bytes, firstIndex, (shas) => shas.map((sha) => writer.chunkIdBySha256(sha) !== undefined));
  return materialize(context, content);
}

/** Bumps a directory's mtime/ctime (its version) after an entry changed. */
export function touchDirectory(context: CommitContext, ino: number): void {
  const row = liveRow(context, ino);
  if (row === undefined) throw new EmbrError('CORRUPT', `directory inode ${ino} is missing`, { what: 'inode', ino });
  // Touched already in this commit (and unchanged since): the write would change nothing.
  if (row.fromCommit === context.writer.commit && row.mtimeNs === context.timeNs && row.ctimeNs === context.timeNs && row.change === 'metadata') return;
  putRow(context, ino, { ...dataOf(row), mtimeNs: context.timeNs, ctimeNs: context.timeNs, change: 'metadata' });
}

/** Ends an inode for good: its chunk refs leave the root vector. */
export function destroyInode(context: CommitContext, ino: number): void {
  closeRefs(context, ino, 0, Number.MAX_SAFE_INTEGER);
  removeRow(context, ino);
}

/**
 * Drops one link of an inode: a file or symlink loses a link and is destroyed at zero unless open
 * in this process (then it stays with nlink 0 until its last handle closes); a directory is
 * destroyed (callers check it is empty).
 */
export function unlinkInode(context: CommitContext, ino: number, row: InodeRow): void {
  if (row.type === 'directory') {
    destroyInode(context, ino);
    return;
  }
  const nlink = row.nlink - 1;
  if (nlink > 0 || context.isOpen(ino)) {
    putRow(context, ino, { ...dataOf(row), nlink: Math.max(0, nlink), ctimeNs: context.timeNs, change: 'unlink' });
    if (nlink <= 0) context.keepOrphan(ino);
  } else {
    destroyInode(context, ino);
  }
}

/** Adjusts a directory's nlink by `delta` (subdirectory added/removed) and bumps its version. */
export function adjustDirectoryLinks(context: CommitContext, ino: number, delta: number): void {
  const row = liveRow(context, ino);
  if (row === undefined) throw new EmbrError('CORRUPT', `directory inode ${ino} is missing`, { what: 'inode', ino });
  putRow(context, ino, {
    ...dataOf(row),
    nlink: row.nlink + delta,
    mtimeNs: context.timeNs,
    ctimeNs: context.timeNs,
    change: 'metadata',
  });
}

/** Reads one chunk's current bytes (zeros for a hole), padded or cut to `length`. */
export function chunkBytesAt(reader: StoreReader, pipeline: Pipeline, ino: number, size: number, index: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const stored = chunkLength(size, pipeline.chunkBytes, index);
  if (stored === 0) return out;
  const [ref] = reader.chunkRefs(ino, LIVE, index, index + 1);
  if (ref === undefined) return out;
  const bytes = decodeRef(reader, pipeline, ref.chunk, ref.chunkId, stored);
  out.set(bytes.subarray(0, Math.min(length, bytes.length)));
  return out;
}

/**
 * Writes `data` at `offset` of a file inside the commit. `interior` holds the pre-encoded chunks
 * fully covered by `data` (indices [interiorFirst, interiorEnd)); the at most two edge chunks
 * and a zero-padded old last chunk are read, merged and encoded here. Only touched chunks change.
 */
export function writeAt(
  context: CommitContext,
  ino: number,
  row: InodeRow,
  offset: number,
  data: Uint8Array,
  interior: EncodedContent | null,
): number {
  const pipeline = context.pipeline;
  const chunkBytes = pipeline.chunkBytes;
  const writer = context.writer;
  const size = row.size;
  const end = offset + data.length;
  const newSize = Math.max(size, end);
  const firstTouched = Math.floor(offset / chunkBytes);
  const lastTouched = Math.floor((end - 1) / chunkBytes);
  // Writing past the end adds hole chunks that no ref records: re-index from the old end too.
  context.changes.touch(ino, Math.min(firstTouched, Math.floor(size / chunkBytes)));
  // Growing past a short last chunk: that chunk gets zero-padded (the gap between is holes).
  if (offset > size && size % chunkBytes !== 0) {
    const lastOld = Math.floor(size / chunkBytes);
    if (lastOld < firstTouched) {
      const padded = chunkBytesAt(writer, pipeline, ino, size, lastOld, chunkLength(newSize, chunkBytes, lastOld));
      const ids = encodeInCommit(context, padded, lastOld);
      closeRefs(context, ino, lastOld, lastOld + 1);
      insertRefs(context, ino, lastOld, ids);
    }
  }
  const interiorFirst = interior?.firstIndex ?? Number.MAX_SAFE_INTEGER;
  const interiorEnd = interior === null ? Number.MAX_SAFE_INTEGER : interior.firstIndex + interior.shas.length;
  for (let index = firstTouched; index <= lastTouched; index += 1) {
    if (interior !== null && index >= interiorFirst && index < interiorEnd) continue;
    const chunkStart = index * chunkBytes;
    const merged = chunkBytesAt(writer, pipeline, ino, size, index, chunkLength(newSize, chunkBytes, index));
    const from = Math.max(offset, chunkStart);
    const to = Math.min(end, chunkStart + merged.length);
    merged.set(data.subarray(from - offset, to - offset), from - chunkStart);
    const ids = encodeInCommit(context, merged, index);
    closeRefs(context, ino, index, index + 1);
    insertRefs(context, ino, index, ids);
  }
  if (interior !== null && interior.shas.length > 0) {
    const ids = materialize(context, interior);
    closeRefs(context, ino, interiorFirst, interiorEnd);
    insertRefs(context, ino, interiorFirst, ids);
  }
  putRow(context, ino, {
    ...dataOf(row),
    size: newSize,
    mtimeNs: context.timeNs,
    ctimeNs: context.timeNs,
    contentSha256: null,
    change: 'write',
  });
  return writer.commit;
}

/** Sets a file's size inside the commit, re-encoding at most the one chunk the new end cuts or pads. */
export function truncateTo(context: CommitContext, ino: number, row: InodeRow, newSize: number): number {
  const pipeline = context.pipeline;
  const chunkBytes = pipeline.chunkBytes;
  const writer = context.writer;
  const size = row.size;
  // The chunk count can change without a ref changing (growing by holes): re-index from the old end.
  context.changes.touch(ino, Math.floor(Math.min(size, newSize) / chunkBytes));
  if (newSize < size) {
    const keepChunks = Math.ceil(newSize / chunkBytes);
    if (newSize % chunkBytes !== 0) {
      const index = keepChunks - 1;
      const cut = chunkBytesAt(writer, pipeline, ino, size, index, newSize - index * chunkBytes);
      const ids = encodeInCommit(context, cut, index);
      closeRefs(context, ino, index, Number.MAX_SAFE_INTEGER);
      insertRefs(context, ino, index, ids);
    } else {
      closeRefs(context, ino, keepChunks, Number.MAX_SAFE_INTEGER);
    }
  } else if (newSize > size && size % chunkBytes !== 0) {
    const index = Math.floor(size / chunkBytes);
    const padded = chunkBytesAt(writer, pipeline, ino, size, index, chunkLength(newSize, chunkBytes, index));
    const ids = encodeInCommit(context, padded, index);
    closeRefs(context, ino, index, index + 1);
    insertRefs(context, ino, index, ids);
  }
  putRow(context, ino, {
    ...dataOf(row),
    size: newSize,
    mtimeNs: context.timeNs,
    ctimeNs: context.timeNs,
    contentSha256: newSize === 0 ? pipeline.sha256(new Uint8Array(0)) : newSize === size ? row.contentSha256 : null,
    change: 'write',
  });
  return writer.commit;
}

/** Creates a new inode with its first version and links it into `parentIno` under `name`. */
export function createInode(
  context: CommitContext,
  parentIno: number,
  name: string,
  data: Omit<InodeData, 'atimeNs' | 'mtimeNs' | 'ctimeNs' | 'birthtimeNs' | 'change'> & { mtimeNs?: bigint },
): number {
  const writer = context.writer;
  const ino = writer.allocateIno();
  context.changes.created.add(ino);
  const now = context.timeNs;
  putRow(context, ino, {
    ...data,
    atimeNs: now,
    mtimeNs: data.mtimeNs ?? now,
    ctimeNs: now,
    birthtimeNs: now,
    change: 'create',
  });
  putEntry(context, parentIno, name, ino, data.type);
  if (data.type === 'directory') adjustDirectoryLinks(context, parentIno, 1);
  else touchDirectory(context, parentIno);
  return ino;
}
