/**
 * The read and write operations shared by the live engram and a transaction. A subclass decides
 * how a read sees the store (`view`) and what happens to a prepared mutation (`submit`: commit it
 * at once, or queue it in a transaction).
 *
 * A mutation is prepared in two halves: async work outside any transaction (encoding chunks),
 * then a synchronous {@link Op} that a commit applies inside one IMMEDIATE transaction, where all
 * version checks happen, so several processes can never lose an update.
 *
 * @example
 * ```ts
 * class Live extends Session { ... }
 * ```
 */
import { EmbrError } from '../errors.js';
import type {
  DirectoryEntry,
  MkdirOptions,
  ReadApi,
  ReadOptions,
  ReadResult,
  RenameOptions,
  Stat,
  WriteApi,
  WriteOptions,
  XattrOptions,
} from './api.js';
import type { InodeData, InodeRow, StoreReader } from '../store/api.js';
import { LIVE, ROOT_INO } from '../store/api.js';
import type { EncodedContent, Pipeline } from './encode.js';
import { encodeContentAsync } from './encode.js';
import type { DecodeRequest, EncodePool } from './encode-pool.js';
import type { CommitContext, LiveDirectories } from './operations.js';
import {
  adjustDirectoryLinks,
  assertFile,
  checkContent,
  chunkLength,
  checkVersion,
  closeRefs,
  createInode,
  dataOf,
  insertRefs,
  listEntries,
  materialize,
  liveRow,
  mustResolve,
  mustResolveFile,
  mustResolveFileIn,
  mustResolveIn,
  putEntry,
  putRow,
  readRange,
  readWholeFile,
  removeEntry,
  resolveParentIn,
  resolvePath,
  statOf,
  touchDirectory,
  truncateTo,
  unlinkInode,
  writeAt,
} from './operations.js';
import { parsePath } from './path.js';

/** The synchronous half of a mutation, applied inside a commit. */
export interface Op<T> {
  readonly kind: string;
  /** Paths whose state the op changes (a transaction's own reads of these are not validated). */
  readonly touched: string[];
  /** True when the op moves whole subtrees (rename, restore): paths below `touched` change too. */
  readonly movesSubtrees?: boolean;
  /**
   * The content a whole-file write encoded before the commit: a transaction may move its small
   * packs into packs shared with its other writes ({@link coalescePacks}) before committing.
   */
  readonly content?: EncodedContent;
  apply(context: CommitContext): T;
}

/** Builds an op; `forceEncode` re-encodes chunks the store claimed to hold (see ChunkVanishedError). */
export type OpBuilder<T> = (forceEncode: boolean) => Op<T> | Promise<Op<T>>;

const XATTR_NAME_MAX_BYTES = 255;
const XATTR_VALUE_MAX_BYTES = 64 * 1024;
const SYMLINK_TARGET_MAX_BYTES = 4096;
const encoder = new TextEncoder();

/** Wall-clock time in nanoseconds (microsecond resolution: what performance.now gives). */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function assertNonNegativeInteger(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${String(value)}`);
  }
}

function assertOptionalVersion(value: unknown): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)) {
    throw new RangeError(`expectedVersion must be a non-negative integer, got ${String(value)}`);
  }
}

function assertMode(mode: unknown): asserts mode is number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new RangeError(`mode must be an integer in 0..0o7777, got ${String(mode)}`);
  }
}

function assertId(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${what} must be an integer in 0..2^32-1, got ${String(value)}`);
  }
}

/** Refuses an xattr name that is empty, over the length limit or holds a NUL (INVALID_ARGUMENT). */
export function validateXattrName(path: string, name: string): void {
  if (typeof name !== 'string') throw new TypeError('xattr name must be a string');
  const bytes = encoder.encode(name).length;
  if (bytes === 0 || bytes > XATTR_NAME_MAX_BYTES || name.includes('\0')) {
    throw new EmbrError('INVALID_ARGUMENT', `bad extended attribute name ${JSON.stringify(name)}`, { reason: 'xattr name', path, name });
  }
}

/** The engram-wide services a session uses. */
export interface SessionHost {
  readonly pipeline: Pipeline;
  /** Worker pool for large encodes (undefined: encode inline). */
  readonly pool: EncodePool | undefined;
  /** Chunk SHA-256s the store already holds (one read). */
  lookupStored(shas: Uint8Array[]): boolean[];
  assertWritable(): void;
}

export abstract class Session implements ReadApi, WriteApi {
  protected readonly host: SessionHost;

  /** Without `host` the session is its own host (the live engram). */
  constructor(host?: SessionHost) {
    this.host = host ?? (this as unknown as SessionHost);
  }

  /** Runs a synchronous read; `observed` are the paths whose state the read depends on. */
  protected abstract view<T>(options: ReadOptions | undefined, observed: string[], body: (reader: StoreReader, at: number) => T): T;

  /** Applies (or queues) a mutation and resolves to its result. */
  protected abstract submit<T>(kind: string, touched: string[], build: OpBuilder<T>): Promise<T>;

  /**
   * The directory cache reads at `at` may resolve paths through, inside a {@link view} body
   * (undefined: walk from the root; a transaction's reads see its own queued changes).
   */
  protected directoriesAt(_at: number): LiveDirectories | undefined {
    return undefined;
  }

  /** Encodes bytes as chunks; `inline` skips the worker pool (streams: the pool costs ~120 MB of RSS). */
  protected encode(bytes: Uint8Array, firstIndex: number, forceEncode: boolean, inline = false, whole = false): Promise<EncodedContent> {
    const lookup = (shas: Uint8Array[]): boolean[] => (forceEncode ? shas.map(() => false) : this.host.lookupStored(shas));
    // Only a whole-file write's content is handed to the commit's pack merge (Op.content).
    const options = { deferSmallPackCompression: whole && this.mergesSmallPacks };
    return encodeContentAsync(this.host.pipeline, bytes, firstIndex, lookup, inline ? undefined : this.host.pool, options);
  }

  /** True in a transaction, whose commit merges and compresses the small packs of its writes. */
  protected get mergesSmallPacks(): boolean {
    return false;
  }

  // ---- reads ----

  async readFile(path: string, options?: ReadOptions): Promise<ReadResult> {
    const pool = this.host.pool;
    const result = this.view<ReadResult | { plan: ReadPlan; version: number; row: InodeRow }>(options, [path], (reader, at) => {
      const { ino, row } = mustResolveFile(reader, at, path, this.directoriesAt(at));
      // The pool pays only where chunks are checked one by one (its messages cost more than the
      // one hash pass of a positional file with a content hash).
      const checkedWhole = row.contentSha256 !== null && this.host.pipeline.codec.profile === 'positional';
      if (pool === undefined || row.size < POOL_READ_MIN_BYTES || checkedWhole) {
        return { data: readWholeFile(reader, this.host.pipeline, at, ino, row, path), version: row.fromCommit };
      }
      // Large files: gather the payloads in this one consistent read, decode them in the pool after it.
      return { plan: planRead(reader, this.host.pipeline, at, ino, row.size), version: row.fromCommit, row };
    });
    if ('data' in result) return result;
    const data = await decodePlan(this.host.pipeline, pool as EncodePool, result.plan);
    checkContent(this.host.pipeline, result.row, data, path);
    return { data, version: result.version };
  }

  async read(path: string, offset: number, length: number, options?: ReadOptions): Promise<ReadResult> {
    assertNonNegativeInteger(offset, 'offset');
    assertNonNegativeInteger(length, 'length');
    return this.view(options, [path], (reader, at) => {
      const { ino, row } = mustResolveFile(reader, at, path, this.directoriesAt(at));
      return { data: readRange(reader, this.host.pipeline, at, ino, row.size, offset, length), version: row.fromCommit };
    });
  }

  async stat(path: string, options?: ReadOptions): Promise<Stat> {
    return this.view(options, [path], (reader, at) => {
      const { ino, row } = mustResolve(reader, at, path, this.directoriesAt(at));
      return statOf(ino, row);
    });
  }

  async exists(path: string, options?: ReadOptions): Promise<boolean> {
    parsePath(path);
    return this.view(options, [path], (reader, at) => {
      try {
        return resolvePath(reader, at, path, this.directoriesAt(at)) !== undefined;
      } catch (error) {
        if (error instanceof EmbrError && error.code === 'NOT_DIRECTORY') return false;
        throw error;
      }
    });
  }

  async readdir(path: string, options?: ReadOptions): Promise<DirectoryEntry[]> {
    return this.view(options, [path], (reader, at) => {
      const { ino, row } = mustResolve(reader, at, path, this.directoriesAt(at));
      if (row.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', `${path} is not a directory`, { path });
      return listEntries(reader, at, ino);
    });
  }

  async readlink(path: string, options?: ReadOptions): Promise<string> {
    return this.view(options, [path], (reader, at) => {
      const { row } = mustResolve(reader, at, path, this.directoriesAt(at));
      if (row.type !== 'symlink' || row.symlinkTarget === null) {
        throw new EmbrError('INVALID_ARGUMENT', `${path} is not a symlink`, { path, reason: 'not a symlink' });
      }
      return row.symlinkTarget;
    });
  }

  async getxattr(path: string, name: string, options?: ReadOptions): Promise<Uint8Array> {
    validateXattrName(path, name);
    return this.view(options, [path], (reader, at) => {
      const { ino } = mustResolve(reader, at, path, this.directoriesAt(at));
      const value = reader.xattr(ino, name, at);
      if (value === undefined) throw new EmbrError('NO_ATTRIBUTE', `${path} has no attribute ${name}`, { path, name });
      return value;
    });
  }

  async listxattr(path: string, options?: ReadOptions): Promise<string[]> {
    return this.view(options, [path], (reader, at) => {
      const { ino } = mustResolve(reader, at, path, this.directoriesAt(at));
      return reader.xattrNames(ino, at);
    });
  }

  // ---- writes ----

  async writeFile(path: string, data: Uint8Array, options: WriteOptions = {}): Promise<number> {
    parsePath(path);
    assertBytes(data, 'data');
    assertOptionalVersion(options.expectedVersion);
    if (options.mode !== undefined) assertMode(options.mode);
    if (options.uid !== undefined) assertId(options.uid, 'uid');
    if (options.gid !== undefined) assertId(options.gid, 'gid');
    this.host.assertWritable();
    return this.writeWhole(path, data, options);
  }

  /** The commit half of a validated {@link writeFile} (the live engram stages large writes instead). */
  protected writeWhole(path: string, data: Uint8Array, options: WriteOptions): Promise<number> {
    const pipeline = this.host.pipeline;
    return this.submit('write', [path], async (forceEncode) => {
      const encoding = this.encode(data, 0, forceEncode, false, true);
      // Hashed while the pool encodes a large write; a file of one chunk hashes to its chunk's SHA-256.
      const wholeSha256 = data.length > pipeline.chunkBytes ? pipeline.sha256(data) : undefined;
      const content = await encoding;
      const contentSha256 = wholeSha256 ?? oneChunkSha256(content, data.length, pipeline.chunkBytes) ?? pipeline.sha256(data);
      return {
        kind: 'write',
        touched: [path],
        content,
        apply: (context) => replaceFile(context, path, content, data.length, contentSha256, options),
      };
    });
  }

  async write(path: string, offset: number, data: Uint8Array, options: { expectedVersion?: number } = {}): Promise<number> {
    parsePath(path);
    assertNonNegativeInteger(offset, 'offset');
    assertBytes(data, 'data');
    assertOptionalVersion(options.expectedVersion);
    this.host.assertWritable();
    return this.submit('write', [path], async (forceEncode) => {
      const interior = await this.encodeInterior(offset, data, forceEncode);
      return {
        kind: 'write',
        touched: [path],
        apply: (context) => {
          const { ino, row } = mustResolveFileIn(context, path);
          checkVersion(path, options.expectedVersion, row);
          if (data.length === 0) return row.fromCommit;
          return writeAt(context, ino, row, offset, data, interior);
        },
      };
    });
  }

  /** Pre-encodes the chunks that `data` at `offset` covers completely. */
  protected async encodeInterior(offset: number, data: Uint8Array, forceEncode: boolean): Promise<EncodedContent | null> {
    const chunkBytes = this.host.pipeline.chunkBytes;
    const first = Math.ceil(offset / chunkBytes);
    const end = Math.floor((offset + data.length) / chunkBytes);
    if (first >= end) return null;
    return this.encode(data.subarray(first * chunkBytes - offset, end * chunkBytes - offset), first, forceEncode);
  }

  async truncate(path: string, size: number, options: { expectedVersion?: number } = {}): Promise<number> {
    parsePath(path);
    assertNonNegativeInteger(size, 'size');
    assertOptionalVersion(options.expectedVersion);
    this.host.assertWritable();
    return this.submit('truncate', [path], () => ({
      kind: 'truncate',
      touched: [path],
      apply: (context) => {
        const { ino, row } = mustResolveFileIn(context, path);
        checkVersion(path, options.expectedVersion, row);
        return truncateTo(context, ino, row, size);
      },
    }));
  }

  async deleteFile(path: string, options: { expectedVersion?: number } = {}): Promise<void> {
    parsePath(path);
    assertOptionalVersion(options.expectedVersion);
    this.host.assertWritable();
    return this.submit('delete', [path], () => ({
      kind: 'delete',
      touched: [path],
      apply: (context) => {
        const { parentIno, name, child } = resolveParentIn(context, path);
        if (child === undefined) throw new EmbrError('NOT_FOUND', `${path}: no such file`, { path });
        if (child.row.type === 'directory') throw new EmbrError('IS_DIRECTORY', `${path} is a directory (use rmdir)`, { path });
        checkVersion(path, options.expectedVersion, child.row);
        removeEntry(context, parentIno, name);
        unlinkInode(context, child.ino, child.row);
        touchDirectory(context, parentIno);
      },
    }));
  }

  async mkdir(path: string, options: MkdirOptions = {}): Promise<number> {
    const components = parsePath(path);
    if (options.mode !== undefined) assertMode(options.mode);
    if (options.uid !== undefined) assertId(options.uid, 'uid');
    if (options.gid !== undefined) assertId(options.gid, 'gid');
    this.host.assertWritable();
    return this.submit('mkdir', [path], () => ({
      kind: 'mkdir',
      touched: [path],
      apply: (context) => {
        const targets = options.parents ? components.map((_, position) => '/' + components.slice(0, position + 1).join('/')) : [path];
        if (components.length === 0) {
          if (options.parents) return (liveRow(context, ROOT_INO) as InodeRow).fromCommit;
          throw new EmbrError('EXISTS', '/ exists', { path });
        }
        let version = 0;
        for (const target of targets) {
          const { parentIno, name, child } = resolveParentIn(context, target);
          if (child !== undefined) {
            if (options.parents && child.row.type === 'directory') {
              version = child.row.fromCommit;
              continue;
            }
            if (options.parents && child.row.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', `${target} is not a directory`, { path: target });
            throw new EmbrError('EXISTS', `${target} exists`, { path: target });
          }
          createInode(context, parentIno, name, {
            type: 'directory',
            mode: options.mode ?? 0o755,
            uid: options.uid ?? 0,
            gid: options.gid ?? 0,
            size: 0,
            nlink: 2,
            symlinkTarget: null,
            contentSha256: null,
            mtimeNs: options.mtimeNs,
          });
          version = context.writer.commit;
        }
        return version;
      },
    }));
  }

  async rmdir(path: string): Promise<void> {
    parsePath(path);
    this.host.assertWritable();
    return this.submit('rmdir', [path], () => ({
      kind: 'rmdir',
      touched: [path],
      apply: (context) => {
        if (path === '/') throw new EmbrError('NOT_SUPPORTED', 'the root directory cannot be removed', { path, reason: 'root' });
        const { parentIno, name, child } = resolveParentIn(context, path);
        if (child === undefined) throw new EmbrError('NOT_FOUND', `${path}: no such directory`, { path });
        if (child.row.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', `${path} is not a directory`, { path });
        if (context.writer.listDirectory(child.ino, LIVE).length > 0) throw new EmbrError('NOT_EMPTY', `${path} is not empty`, { path });
        removeEntry(context, parentIno, name);
        unlinkInode(context, child.ino, child.row);
        adjustDirectoryLinks(context, parentIno, -1);
      },
    }));
  }

  async rename(from: string, to: string, options: RenameOptions = {}): Promise<void> {
    const fromComponents = parsePath(from);
    const toComponents = parsePath(to);
    this.host.assertWritable();
    return this.submit('rename', [from, to], () => ({
      kind: 'rename',
      touched: [from, to],
      movesSubtrees: true,
      apply: (context) => {
        const writer = context.writer;
        if (fromComponents.length === 0 || toComponents.length === 0) {
          throw new EmbrError('INVALID_ARGUMENT', 'the root directory cannot be renamed', { reason: 'root' });
        }
        const source = resolveParentIn(context, from);
        if (source.child === undefined) throw new EmbrError('NOT_FOUND', `${from}: no such file or directory`, { path: from });
        const target = resolveParentIn(context, to);
        if (from === to) return;
        const moving = source.child;
        if (moving.row.type === 'directory' && to.startsWith(from + '/')) {
          throw new EmbrError('INVALID_ARGUMENT', `cannot move ${from} into itself`, { reason: 'into itself', path: to });
        }
        if (target.child !== undefined) {
          if (options.noReplace) throw new EmbrError('EXISTS', `${to} exists`, { path: to });
          if (target.child.ino === moving.ino) return;
          const replaced = target.child;
          if (replaced.row.type === 'directory') {
            if (moving.row.type !== 'directory') throw new EmbrError('IS_DIRECTORY', `${to} is a directory`, { path: to });
            if (writer.listDirectory(replaced.ino, LIVE).length > 0) throw new EmbrError('NOT_EMPTY', `${to} is not empty`, { path: to });
          } else if (moving.row.type === 'directory') {
            throw new EmbrError('NOT_DIRECTORY', `${to} is not a directory`, { path: to });
          }
          removeEntry(context, target.parentIno, target.name);
          unlinkInode(context, replaced.ino, replaced.row);
          if (replaced.row.type === 'directory') adjustDirectoryLinks(context, target.parentIno, -1);
        }
        removeEntry(context, source.parentIno, source.name);
        putEntry(context, target.parentIno, target.name, moving.ino, moving.row.type);
        const movingRow = liveRow(context, moving.ino);
        if (movingRow !== undefined) putRow(context, moving.ino, { ...dataOf(movingRow), ctimeNs: context.timeNs, change: 'rename' });
        if (moving.row.type === 'directory' && source.parentIno !== target.parentIno) {
          adjustDirectoryLinks(context, source.parentIno, -1);
          adjustDirectoryLinks(context, target.parentIno, 1);
        } else {
          touchDirectory(context, source.parentIno);
          if (target.parentIno !== source.parentIno) touchDirectory(context, target.parentIno);
        }
      },
    }));
  }

  async symlink(target: string, path: string, options: { uid?: number; gid?: number; mtimeNs?: bigint } = {}): Promise<number> {
    parsePath(path);
    if (typeof target !== 'string') throw new TypeError('symlink target must be a string');
    const targetBytes = encoder.encode(target).length;
    if (targetBytes === 0 || targetBytes > SYMLINK_TARGET_MAX_BYTES || target.includes('\0')) {
      throw new EmbrError('INVALID_PATH', `bad symlink target ${JSON.stringify(target.slice(0, 100))}`, { path: target, reason: 'symlink target' });
    }
    if (options.uid !== undefined) assertId(options.uid, 'uid');
    if (options.gid !== undefined) assertId(options.gid, 'gid');
    this.host.assertWritable();
    return this.submit('symlink', [path], () => ({
      kind: 'symlink',
      touched: [path],
      apply: (context) => {
        const { parentIno, name, child } = resolveParentIn(context, path);
        if (child !== undefined) throw new EmbrError('EXISTS', `${path} exists`, { path });
        createInode(context, parentIno, name, {
          type: 'symlink',
          mode: 0o777,
          uid: options.uid ?? 0,
          gid: options.gid ?? 0,
          size: targetBytes,
          nlink: 1,
          symlinkTarget: target,
          contentSha256: null,
          mtimeNs: options.mtimeNs,
        });
        return context.writer.commit;
      },
    }));
  }

  async link(existingPath: string, newPath: string): Promise<number> {
    parsePath(existingPath);
    parsePath(newPath);
    this.host.assertWritable();
    return this.submit('link', [existingPath, newPath], () => ({
      kind: 'link',
      touched: [existingPath, newPath],
      apply: (context) => {
        const writer = context.writer;
        const existing = mustResolveIn(context, existingPath);
        if (existing.row.type === 'directory') {
          throw new EmbrError('NOT_SUPPORTED', `${existingPath}: hard links to directories are not allowed`, { reason: 'directory link', path: existingPath });
        }
        const { parentIno, name, child } = resolveParentIn(context, newPath);
        if (child !== undefined) throw new EmbrError('EXISTS', `${newPath} exists`, { path: newPath });
        putEntry(context, parentIno, name, existing.ino, existing.row.type);
        putRow(context, existing.ino, { ...dataOf(existing.row), nlink: existing.row.nlink + 1, ctimeNs: context.timeNs, change: 'link' });
        touchDirectory(context, parentIno);
        return writer.commit;
      },
    }));
  }

  async chmod(path: string, mode: number): Promise<number> {
    return this.changeMetadata('chmod', path, metadataChanges.chmod(mode));
  }

  async chown(path: string, uid: number, gid: number): Promise<number> {
    return this.changeMetadata('chown', path, metadataChanges.chown(uid, gid));
  }

  async utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null): Promise<number> {
    return this.changeMetadata('utimes', path, metadataChanges.utimes(atimeNs, mtimeNs));
  }

  async setxattr(path: string, name: string, value: Uint8Array, options: XattrOptions = {}): Promise<number> {
    return this.changeMetadata('setxattr', path, metadataChanges.setxattr(path, name, value, options));
  }

  async removexattr(path: string, name: string): Promise<number> {
    return this.changeMetadata('removexattr', path, metadataChanges.removexattr(path, name));
  }

  /** A metadata-only change of the inode `path` names: see {@link applyMetadataChange}. */
  private changeMetadata(kind: string, path: string, change: MetadataChange): Promise<number> {
    parsePath(path);
    this.host.assertWritable();
    return this.submit(kind, [path], () => ({
      kind,
      touched: [path],
      apply: (context) => {
        const { ino, row } = mustResolveIn(context, path);
        return applyMetadataChange(context, ino, row, change);
      },
    }));
  }
}

/** A metadata-only change of one inode: the row fields to set, given its live row (may throw). */
export type MetadataChange = (row: InodeRow, ino: number, context: CommitContext) => Partial<InodeData>;

/**
 * The metadata changes of chmod, chown, utimes, setxattr and removexattr, checked when built
 * (bad arguments throw before anything is submitted). Shared by the path calls of a session and
 * the calls of an open {@link FileHandle} (fchmod & co., which also reach an unlinked inode).
 * `label` names the file in errors.
 */
export const metadataChanges = {
  chmod(mode: number): MetadataChange {
    assertMode(mode);
    return () => ({ mode });
  },
  chown(uid: number, gid: number): MetadataChange {
    assertId(uid, 'uid');
    assertId(gid, 'gid');
    return () => ({ uid, gid });
  },
  utimes(atimeNs: bigint | null, mtimeNs: bigint | null): MetadataChange {
    for (const [value, what] of [[atimeNs, 'atimeNs'], [mtimeNs, 'mtimeNs']] as const) {
      if (value !== null && typeof value !== 'bigint') throw new TypeError(`${what} must be a bigint or null`);
    }
    return (row) => ({ atimeNs: atimeNs ?? row.atimeNs, mtimeNs: mtimeNs ?? row.mtimeNs });
  },
  setxattr(label: string, name: string, value: Uint8Array, options: XattrOptions = {}): MetadataChange {
    validateXattrName(label, name);
    assertBytes(value, 'value');
    if (value.length > XATTR_VALUE_MAX_BYTES) {
      throw new EmbrError('INVALID_ARGUMENT', `extended attribute value over ${XATTR_VALUE_MAX_BYTES} bytes`, { reason: 'xattr value', path: label, name });
    }
    const copy = new Uint8Array(value);
    return (_row, ino, context) => {
      const present = context.writer.xattr(ino, name, LIVE) !== undefined;
      if (options.flag === 'create' && present) throw new EmbrError('EXISTS', `${label} already has attribute ${name}`, { path: label, name });
      if (options.flag === 'replace' && !present) throw new EmbrError('NO_ATTRIBUTE', `${label} has no attribute ${name}`, { path: label, name });
      context.writer.setXattr(ino, name, copy);
      return {};
    };
  },
  removexattr(label: string, name: string): MetadataChange {
    validateXattrName(label, name);
    return (_row, ino, context) => {
      if (context.writer.xattr(ino, name, LIVE) === undefined) throw new EmbrError('NO_ATTRIBUTE', `${label} has no attribute ${name}`, { path: label, name });
      context.writer.removeXattr(ino, name);
      return {};
    };
  },
};

/** Applies a metadata change to inode `ino` (live row `row`): its fields, and ctime and the version move. Returns the commit. */
export function applyMetadataChange(context: CommitContext, ino: number, row: InodeRow, change: MetadataChange): number {
  const fields = change(row, ino, context);
  putRow(context, ino, { ...dataOf(row), ...fields, ctimeNs: context.timeNs, change: 'metadata' });
  return context.writer.commit;
}

/**
 * The SHA-256 of a whole file of `size` bytes encoded as `content` when the file is one stored
 * chunk (1..chunkBytes bytes, not all zeros): the chunk's SHA-256 is the file's.
 */
function oneChunkSha256(content: EncodedContent, size: number, chunkBytes: number): Uint8Array | undefined {
  if (size === 0 || size > chunkBytes || content.firstIndex !== 0 || content.shas.length !== 1) return undefined;
  return content.shas[0] ?? undefined;
}

/** Files at least this large are decoded in the worker pool by readFile. */
export const POOL_READ_MIN_BYTES = 1 << 20;

/** What readFile decodes outside the read transaction: every chunk with where it goes. */
interface ReadPlan {
  size: number;
  indexes: number[];
  requests: DecodeRequest[];
}

function planRead(reader: StoreReader, pipeline: Pipeline, at: number, ino: number, size: number): ReadPlan {
  const plan: ReadPlan = { size, indexes: [], requests: [] };
  for (const ref of reader.chunkRefs(ino, at, 0, Math.ceil(size / pipeline.chunkBytes))) {
    const expected = chunkLength(size, pipeline.chunkBytes, ref.chunkIndex);
    if (ref.chunk === undefined) throw new EmbrError('CORRUPT', `chunk ${ref.chunkId} is referenced but missing`, { what: 'chunk', chunkId: ref.chunkId });
    if (ref.chunk.byteLength !== expected) {
      throw new EmbrError('CORRUPT', `chunk ${ref.chunkId} holds ${ref.chunk.byteLength} bytes where the file needs ${expected}`, { what: 'chunk', chunkId: ref.chunkId });
    }
    plan.indexes.push(ref.chunkIndex);
    plan.requests.push({ payload: reader.chunkPayload(ref.chunk), sha256: ref.chunk.sha256, byteLength: expected });
  }
  return plan;
}

async function decodePlan(pipeline: Pipeline, pool: EncodePool, plan: ReadPlan): Promise<Uint8Array> {
  let decoded: Uint8Array;
  try {
    decoded = await pool.decode(plan.requests);
  } catch (error) {
    if (error instanceof EmbrError) throw error;
    // The pool itself failed (a worker could not start): decode here; the verdict is the same.
    decoded = new Uint8Array(plan.requests.reduce((sum, request) => sum + request.byteLength, 0));
    let offset = 0;
    for (const request of plan.requests) {
      decoded.set(pipeline.codec.decode(request.payload, request.sha256), offset);
      offset += request.byteLength;
    }
  }
  const out = new Uint8Array(plan.size);
  let offset = 0;
  plan.indexes.forEach((index, position) => {
    const length = plan.requests[position].byteLength;
    out.set(decoded.subarray(offset, offset + length), index * pipeline.chunkBytes);
    offset += length;
  });
  return out;
}

/** The commit half of writeFile: create or replace a whole file. */
export function replaceFile(
  context: CommitContext,
  path: string,
  content: EncodedContent,
  size: number,
  contentSha256: Uint8Array,
  options: WriteOptions,
  staged?: { ids: Array<number | null> },
): number {
  const writer = context.writer;
  const { parentIno, name, child } = resolveParentIn(context, path);
  let ino: number;
  if (child !== undefined) {
    if (options.exclusive) throw new EmbrError('EXISTS', `${path} exists`, { path });
    assertFile(child.row, path);
    checkVersion(path, options.expectedVersion, child.row);
    ino = child.ino;
    const ids = staged?.ids ?? materialize(context, content);
    closeRefs(context, ino, 0, Number.MAX_SAFE_INTEGER);
    insertRefs(context, ino, 0, ids);
    putRow(context, ino, {
      ...dataOf(child.row),
      size,
      mtimeNs: options.mtimeNs ?? context.timeNs,
      ctimeNs: context.timeNs,
      contentSha256,
      change: 'write',
    });
  } else {
    checkVersion(path, options.expectedVersion, undefined);
    const ids = staged?.ids ?? materialize(context, content);
    ino = createInode(context, parentIno, name, {
      type: 'file',
      mode: options.mode ?? 0o644,
      uid: options.uid ?? 0,
      gid: options.gid ?? 0,
      size,
      nlink: 1,
      symlinkTarget: null,
      contentSha256,
      mtimeNs: options.mtimeNs,
    });
    insertRefs(context, ino, 0, ids);
  }
  return writer.commit;
}
