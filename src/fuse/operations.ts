/**
 * FUSE operations on an {@link Engram}: path-based libfuse calls mapped onto the fs API.
 *
 * Design (docs/design/fuse.md has the reasoning):
 * - Every FUSE open gets its own `FileHandle` from `engram.open`, so a handle follows its inode
 *   through renames and keeps an unlinked file alive until release.
 * - Writes are buffered per inode (not per handle, so every handle of an inode sees them) as a
 *   list of runs: a write that continues the last run extends it, any other write starts a new
 *   run (later runs win where they overlap, as they are applied in order). The runs are written
 *   on flush, fsync, release, truncate, metadata changes, an overlapping read, or when they reach
 *   `writeBufferBytes` (8x that when they are several runs): one run with `FileHandle.write(offset, bytes)` (re-encodes only the
 *   chunks it touches), several in ONE transaction (one commit for a burst of random writes),
 *   falling back to one handle write per run if the path no longer names the inode.
 * - Data operations of one inode run one after another on a promise queue (libfuse serves
 *   requests on several threads). A read with nothing pending or queued skips the queue so the
 *   kernel's parallel readahead requests are served in parallel.
 * - Sequential reads fetch `readAheadBytes` at once and serve the following requests from that
 *   buffer (fewer, larger engram reads); once a buffer serves a request the next one is
 *   prefetched (decoded by the engram's read worker meanwhile, so decoding overlaps the
 *   transfer). Any write or truncate of the inode drops them, and they
 *   expires after `readAheadTtlMs` so other writers' changes show up like attributes do.
 * - libfuse 2 "hides" an open file on unlink/rename-over by renaming it to `.fuse_hiddenXXXX`
 *   and unlinks that name on release. We turn the hiding rename into the real unlink (the open
 *   handles keep the inode alive) and answer the hidden name from the handles, so no hidden file
 *   ever shows up in the engram, in readdir, or makes rmdir fail.
 */
import { statfs as statFilesystem } from 'node:fs/promises';
import { dirname, posix } from 'node:path';
import { EmbrError, invariant } from '../errors.js';
import type { Engram, EntryType, FileHandle, ReadOptions, Stat } from '../fs/api.js';
import type { AsyncFuseOperations, Caller, FuseStat, FuseStatfs, TimeUpdate } from './binding.js';
import { Errno, FuseErrnoError } from './errno.js';
import { modeFromAccessAcl } from './acl.js';
import { SyncGroup } from './sync-group.js';

/** `st_mode` type bits. */
const typeBits: Readonly<Record<EntryType, number>> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
};
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_ISGID = 0o2000;
const O_ACCMODE = 0o3;
const O_RDONLY = 0o0;
const O_TRUNC = 0o1000;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** chown(2)'s "leave unchanged", as the binding's uint32. */
const UNCHANGED_ID = 0xffffffff;
const aclNames = new Set(['system.posix_acl_access', 'system.posix_acl_default']);
const hiddenNamePattern = /^\.fuse_hidden[0-9a-f]{16}$/;
/** The xattr the kernel reads before every write(2) (see `capabilityCacheMs`). */
const capabilityName = 'security.capability';
/** Bound on the negative `security.capability` cache (cleared whole when full). */
const maxCapabilityCacheEntries = 4096;
/** The answer of a cached negative `security.capability` lookup (ENODATA; nobody reads its message or stack). */
const noCapabilityAnswer = new FuseErrnoError(Errno.ENODATA, `no ${capabilityName} (remembered)`);

export interface EngramOperationsOptions {
  engram: Engram;
  /** The engram file; statfs reports the filesystem holding it. */
  engramFile: string;
  /** Serve this snapshot (read-only) instead of the live tree. */
  snapshot?: string;
  /**
   * Pending runs of an inode are written when they reach this many bytes (default 8 MiB) while
   * they are one run (a sequential writer), or 8 times as many when they are several (a
   * scattered writer: each commit of scattered runs re-indexes every 1 MiB index segment they
   * touch, so larger batches cost less per write).
   */
  writeBufferBytes?: number;
  /**
   * Write-behinds of one inode in flight at once (default 2): with more than one, the library
   * encodes the next buffer while it commits the previous one (sequential writers only).
   */
  writeBehindDepth?: number;
  /** Bytes fetched at once for sequential reads (default 1 MiB; 0 turns read-ahead off). */
  readAheadBytes?: number;
  /** How long read-ahead bytes may be served (default 1000 ms, the attribute timeout). */
  readAheadTtlMs?: number;
  /** The clock for UTIME_NOW (injected so tests can pin it). */
  nowNs?: () => bigint;
  /**
   * True when commits are not durable by themselves (the engram's durability 'normal'): then
   * fsync, fdatasync and fsyncdir call `engram.sync()` before answering, and the release of a
   * handle that wrote answers after a sync shared with the releases of the next
   * `releaseSyncDelayMs` (a group sync). False (durability 'full', the default here): every
   * commit is already durable.
   */
  syncOnDurabilityPoints?: boolean;
  /** How long a release waits for others to share its sync (default 50 ms). */
  releaseSyncDelayMs?: number;
  /**
   * How long a negative answer for `security.capability` is reused (default 1000 ms, the
   * attribute timeout). The kernel asks for it before every write(2) (to clear setuid and
   * capabilities), so a 4 KiB random writer would otherwise pay a metadata lookup per write.
   */
  capabilityCacheMs?: number;
}

interface OpenFile {
  fileHandle: number;
  ino: number;
  /** The path at open time: snapshot reads go by path (a snapshot never changes). */
  path: string;
  /** Null in a snapshot mount, where reads go by path. */
  handle: FileHandle | null;
  /** End offset of the last read, to recognise sequential reading. */
  lastReadEnd: number;
  /** At most two: the buffer being read and the next one, prefetched. */
  readAheads: ReadAhead[];
  /** Data was written through this handle (its release makes it durable). */
  wrote: boolean;
}

interface ReadAhead {
  offset: number;
  requestedBytes: number;
  bytes: Promise<Uint8Array>;
  fetchedAtMs: number;
  /** Bytes copied out to requests so far (all of them: the buffer can be given back). */
  servedBytes: number;
  /** Requests waiting for `bytes`. */
  waiting: number;
}

interface WriteRun {
  offset: number;
  parts: Buffer[];
  length: number;
  handle: FileHandle;
}

interface InodeState {
  ino: number;
  openFiles: Set<number>;
  /** Pending writes in the order they were acknowledged. */
  runs: WriteRun[];
  runBytes: number;
  /** Operations queued or running on this inode. */
  queuedCount: number;
  /** Batches of runs being written right now (still counted in the size getattr reports). */
  inFlight: Array<WriteRun[]>;
  /** Write-behinds of runs that reached `writeBufferBytes` still running (at most `writeBehindDepth`). */
  writeBehinds: Array<{ runs: WriteRun[]; done: Promise<void> }>;
  /** A write-behind failure, reported by the next flush/fsync/close (like a writeback error). */
  deferredError: unknown;
  /** Tail of this inode's operation queue. */
  queue: Promise<void>;
}

/** A bound on the runs of one inode, so one flush transaction stays a bounded loop. */
const maxRunsPerInode = 16384;
/** A scattered writer's runs may reach this multiple of `writeBufferBytes` before they are written. */
const scatteredBufferFactor = 8;

/**
 * The FUSE operations of one mount. Create one per mount; call {@link flushAll} and
 * {@link closeAll} when unmounting.
 *
 * @example
 * ```ts
 * const operations = new EngramFuseOperations({ engram, engramFile: 'x.engram' });
 * const mount = new FuseMount('/mnt/x', operations, { readOnly: false, attributeTimeoutSeconds: 1, onUnexpectedError: console.error });
 * ```
 */
export class EngramFuseOperations implements AsyncFuseOperations {
  private readonly engram: Engram;
  private readonly engramFile: string;
  private readonly readOptions: ReadOptions;
  private readonly snapshot: string | undefined;
  private readonly writeBufferBytes: number;
  private readonly readAheadBytes: number;
  private readonly writeBehindDepth: number;
  private readonly readAheadTtlMs: number;
  private readonly nowNs: () => bigint;
  /** Null when every commit is durable by itself (durability 'full'). */
  private readonly syncs: SyncGroup | null;
  private readonly capabilityCacheMs: number;
  /** Paths known to have no `security.capability`, with when that was learnt (ms). */
  private readonly noCapability = new Map<string, number>();
  private readonly files = new Map<number, OpenFile>();
  private readonly inodes = new Map<number, InodeState>();
  /** `.fuse_hidden…` path -> inode of the unlinked-but-open file it stands for. */
  private readonly hidden = new Map<string, number>();
  private nextFileHandle = 1;

  constructor(options: EngramOperationsOptions) {
    this.engram = options.engram;
    this.engramFile = options.engramFile;
    this.snapshot = options.snapshot;
    this.readOptions = options.snapshot === undefined ? {} : { snapshot: options.snapshot };
    this.writeBufferBytes = options.writeBufferBytes ?? 8 << 20;
    if (!Number.isInteger(this.writeBufferBytes) || this.writeBufferBytes < 1) {
      throw new RangeError(`writeBufferBytes must be a positive integer, got ${this.writeBufferBytes}`);
    }
    this.writeBehindDepth = options.writeBehindDepth ?? 2;
    if (!Number.isInteger(this.writeBehindDepth) || this.writeBehindDepth < 1) {
      throw new RangeError(`writeBehindDepth must be a positive integer, got ${this.writeBehindDepth}`);
    }
    this.readAheadBytes = options.readAheadBytes ?? 1 << 20;
    this.readAheadTtlMs = options.readAheadTtlMs ?? 1000;
    if (!Number.isInteger(this.readAheadBytes) || this.readAheadBytes < 0) {
      throw new RangeError(`readAheadBytes must be an integer >= 0, got ${this.readAheadBytes}`);
    }
    this.nowNs = options.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.syncs = options.syncOnDurabilityPoints === true ? new SyncGroup(() => this.engram.sync(), options.releaseSyncDelayMs ?? 50) : null;
    this.capabilityCacheMs = options.capabilityCacheMs ?? 1000;
  }

  /** Number of open FUSE file handles (for tests and diagnostics). */
  get openFileCount(): number {
    return this.files.size;
  }

  // ---- metadata ----

  async getattr(path: string): Promise<FuseStat> {
    const hiddenIno = this.hidden.get(path);
    if (hiddenIno !== undefined) return this.statOpenInode(hiddenIno);
    const stat = await this.engram.stat(path, this.readOptions);
    return this.withPendingSize(toFuseStat(stat));
  }

  async fgetattr(path: string, fileHandle: number): Promise<FuseStat> {
    const file = this.files.get(fileHandle);
    if (file === undefined || file.handle === null) return this.getattr(path);
    return this.withPendingSize(toFuseStat(await file.handle.stat()));
  }

  async access(path: string, _mode: number): Promise<void> {
    // Permission bits are checked by the kernel (`default_permissions`); only existence is ours.
    if (this.hidden.has(path)) return;
    await this.engram.stat(path, this.readOptions);
  }

  async statfs(_path: string): Promise<FuseStatfs> {
    const host = await statFilesystem(dirname(this.engramFile));
    return {
      bsize: host.bsize,
      frsize: host.bsize,
      blocks: host.blocks,
      bfree: host.bfree,
      bavail: host.bavail,
      files: host.files,
      ffree: host.ffree,
      favail: host.ffree,
      fsid: 0,
      flag: this.engram.readOnly ? 1 : 0,
      namemax: 255,
    };
  }

  async readdir(path: string): Promise<{ names: string[]; stats: FuseStat[] }> {
    const [entries, self, parent] = await Promise.all([
      this.engram.readdir(path, this.readOptions),
      this.engram.stat(path, this.readOptions),
      this.engram.stat(posix.dirname(path), this.readOptions),
    ]);
    const names = ['.', '..'];
    const stats = [toFuseStat(self), toFuseStat(parent)];
    for (const entry of entries) {
      names.push(entry.name);
      // readdir only needs the inode number and the type; the kernel asks getattr for the rest.
      stats.push({ ...emptyStat, ino: entry.ino, mode: typeBits[entry.type] });
    }
    return { names, stats };
  }

  async readlink(path: string): Promise<string> {
    return this.engram.readlink(this.livePath(path), this.readOptions);
  }

  async getxattr(path: string, name: string): Promise<Uint8Array> {
    // Permissions live in the mode only, so there is never an ACL beyond it (as tmpfs answers for
    // a file whose ACL equals its mode).
    if (aclNames.has(name)) throw new EmbrError('NO_ATTRIBUTE', `${path} has no ACL beyond its mode`, { path, name });
    if (name !== capabilityName) return (await this.metadataOf(path)).getxattr(name);
    const learntAtMs = this.noCapability.get(path);
    // One shared answer: a fresh error per write(2) cost ~25 us (its stack trace).
    if (learntAtMs !== undefined && Date.now() - learntAtMs <= this.capabilityCacheMs) throw noCapabilityAnswer;
    try {
      return await (await this.metadataOf(path)).getxattr(name);
    } catch (error) {
      if (error instanceof EmbrError && error.code === 'NO_ATTRIBUTE') this.rememberNoCapability(path);
      throw error;
    }
  }

  async listxattr(path: string): Promise<string[]> {
    const names = await (await this.metadataOf(path)).listxattr();
    return names.filter((name) => !aclNames.has(name));
  }

  // ---- files ----

  async open(path: string, flags: number): Promise<number> {
    if (this.snapshot !== undefined) {
      const stat = await this.engram.stat(path, this.readOptions);
      if (stat.type === 'directory') throw new EmbrError('IS_DIRECTORY', `${path} is a directory`, { path });
      return this.register({ fileHandle: 0, ino: stat.ino, path, handle: null, lastReadEnd: -1, readAheads: [], wrote: false });
    }
    const handle = await this.engram.open(path);
    const fileHandle = this.register({ fileHandle: 0, ino: handle.ino, path, handle, lastReadEnd: -1, readAheads: [], wrote: false });
    if ((flags & O_TRUNC) !== 0 && (flags & O_ACCMODE) !== O_RDONLY) {
      try {
        this.dropReadAhead(handle.ino);
        await this.onInode(handle.ino, async (state) => {
          await this.flushRuns(state);
          await handle.truncate(0);
        });
      } catch (error) {
        await this.release(path, fileHandle);
        throw error;
      }
    }
    return fileHandle;
  }

  async create(path: string, mode: number, caller?: Caller): Promise<number> {
    const handle = await this.engram.open(path, { create: true, mode: mode & 0o7777, ...(await this.ownerOfNew(path, caller)) });
    // A new file has no xattrs: its first write(2) need not look up security.capability.
    this.rememberNoCapability(path);
    return this.register({ fileHandle: 0, ino: handle.ino, path, handle, lastReadEnd: -1, readAheads: [], wrote: false });
  }

  async mknod(path: string, mode: number, _device: number, caller?: Caller): Promise<void> {
    if ((mode & S_IFMT) !== S_IFREG) {
      throw new EmbrError('NOT_SUPPORTED', `${path}: only regular files can be created (no devices, FIFOs or sockets)`, {
        path,
        reason: 'special file',
      });
    }
    await this.engram.writeFile(path, new Uint8Array(0), { exclusive: true, mode: mode & 0o7777, ...(await this.ownerOfNew(path, caller)) });
  }

  async read(_path: string, fileHandle: number, buffer: Buffer, length: number, offset: number): Promise<number> {
    const file = this.fileOf(fileHandle);
    const state = this.inodes.get(file.ino);
    if (state === undefined || (state.runs.length === 0 && state.queuedCount === 0 && state.writeBehinds.length === 0)) {
      return this.readStored(file, offset, length, buffer);
    }
    return this.onInode(file.ino, async (current) => {
      await this.settleWriteBehind(current, false);
      // A read that overlaps a pending run must see it. A read elsewhere sees stored bytes,
      // unless it hits the stored end of file: a run may extend the file (with a hole before
      // it), so a short read writes the runs and reads again.
      if (current.runs.some((run) => offset < run.offset + run.length && run.offset < offset + length)) await this.flushRuns(current);
      const count = await this.readStored(file, offset, length, buffer);
      if (count < length && current.runs.length > 0) {
        await this.flushRuns(current);
        return this.readStored(file, offset, length, buffer);
      }
      return count;
    });
  }

  async write(_path: string, fileHandle: number, buffer: Buffer, length: number, offset: number): Promise<number> {
    const file = this.fileOf(fileHandle);
    invariant(file.handle !== null, 'writes never reach a snapshot mount (mounted ro)');
    const handle = file.handle;
    // The buffer is libfuse's memory, valid only until we reply: copy before queueing.
    const bytes = Buffer.from(buffer.subarray(0, length));
    file.wrote = true;
    this.dropReadAhead(file.ino);
    return this.onInode(file.ino, async (state) => {
      const last = state.runs.length > 0 ? state.runs[state.runs.length - 1] : null;
      if (last !== null && last.handle === handle && last.offset + last.length === offset) {
        last.parts.push(bytes);
        last.length += bytes.length;
      } else {
        if (state.runs.length >= maxRunsPerInode) await this.flushRuns(state);
        state.runs.push({ offset, parts: [bytes], length: bytes.length, handle });
      }
      state.runBytes += bytes.length;
      if (state.runBytes >= (state.runs.length === 1 ? this.writeBufferBytes : this.writeBufferBytes * scatteredBufferFactor)) {
        // Write-behind: encode and commit these runs while the writer sends the next ones.
        // Back-pressure bounds memory to writeBehindDepth + 1 buffers. Several are in flight
        // only when each is one run and none overlaps another: then their commits may land in
        // any order (each merges its partial edge chunks inside its own commit), so the
        // library encodes one buffer on its workers while it commits the one before.
        while (state.writeBehinds.length > 0 && !this.mayWriteBehindAlongside(state)) {
          await Promise.race(state.writeBehinds.map((writeBehind) => writeBehind.done));
        }
        const runs = this.takeRuns(state);
        const writeBehind = {
          runs,
          done: this.writeRuns(state, runs).catch((error: unknown) => {
            state.deferredError ??= error;
          }),
        };
        state.writeBehinds.push(writeBehind);
        void writeBehind.done.then(() => {
          state.writeBehinds = state.writeBehinds.filter((other) => other !== writeBehind);
        });
      }
      return length;
    });
  }

  async flush(_path: string, fileHandle: number): Promise<void> {
    const file = this.files.get(fileHandle);
    if (file === undefined || file.handle === null) return;
    await this.onInode(file.ino, (state) => this.flushRuns(state));
  }

  async fsync(path: string, _dataSync: boolean, fileHandle: number): Promise<void> {
    // Commit what is pending, then make every commit so far durable (with durability 'full'
    // each commit already is).
    await this.flush(path, fileHandle);
    if (this.syncs !== null) await this.syncs.now();
  }

  async fsyncdir(_path: string, _dataSync: boolean): Promise<void> {
    // Namespace changes are committed when they are answered; fsync of a directory makes them
    // (and everything else committed so far) durable.
    if (this.syncs !== null) await this.syncs.now();
  }

  async release(_path: string, fileHandle: number): Promise<void> {
    const file = this.files.get(fileHandle);
    if (file === undefined) return;
    const state = this.inodes.get(file.ino);
    try {
      if (state !== undefined && file.handle !== null) {
        // Runs may have been written through this handle: write them while the handle lives.
        await this.onInode(file.ino, (current) => this.flushRuns(current));
        // The last close of a file that was written makes its data durable. close(2) returned
        // after the commit of flush; the kernel sends release after it without waiting for the
        // answer, so releases can share one sync (a sync per release doubled git clone's time).
        // The release is answered at once, not after that sync: the kernel keeps at most 12
        // background requests (releases among them) in flight, so releases held for the group
        // window stalled every later request on their paths (unlink waited ~50 ms per 12 files).
        // Nobody waits for a release; a failed sync is reported by the next fsync, which syncs
        // again.
        if (file.wrote && this.syncs !== null) void this.syncs.soon().catch(() => undefined);
      }
    } finally {
      this.files.delete(fileHandle);
      if (state !== undefined) {
        state.openFiles.delete(fileHandle);
        if (state.openFiles.size === 0 && state.runs.length === 0 && state.queuedCount === 0 && state.writeBehinds.length === 0) this.inodes.delete(file.ino);
      }
      if (file.handle !== null) await file.handle.close();
    }
  }

  async truncate(path: string, sizeBytes: number): Promise<void> {
    const hiddenIno = this.hidden.get(path);
    const ino = hiddenIno ?? (await this.engram.stat(path)).ino;
    const state = this.inodes.get(ino);
    if (state === undefined) {
      invariant(hiddenIno === undefined, 'a hidden file is open');
      await this.engram.truncate(path, sizeBytes);
      return;
    }
    this.dropReadAhead(ino);
    await this.onInode(ino, async (current) => {
      await this.flushRuns(current);
      if (hiddenIno !== undefined) await this.anyHandle(current).truncate(sizeBytes);
      else await this.engram.truncate(path, sizeBytes);
    });
  }

  async ftruncate(path: string, fileHandle: number, sizeBytes: number): Promise<void> {
    const file = this.fileOf(fileHandle);
    const handle = file.handle;
    if (handle === null) return this.truncate(path, sizeBytes);
    this.dropReadAhead(file.ino);
    await this.onInode(file.ino, async (state) => {
      await this.flushRuns(state);
      await handle.truncate(sizeBytes);
    });
  }

  // ---- namespace ----

  async unlink(path: string): Promise<void> {
    this.noCapability.delete(path);
    // libfuse unlinks a hidden name after the last release; the engram entry is already gone.
    if (this.hidden.delete(path)) return;
    await this.engram.deleteFile(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.noCapability.clear();
    if (hiddenNamePattern.test(posix.basename(to)) && !this.hidden.has(from)) {
      const stat = await this.engram.stat(from);
      if (this.inodes.has(stat.ino) && stat.type === 'file') {
        // libfuse hides an open file instead of unlinking it; unlink it for real (the open
        // handles keep the inode) and remember the hidden name for the remaining calls.
        await this.engram.deleteFile(from);
        this.hidden.set(to, stat.ino);
        return;
      }
    }
    await this.engram.rename(this.livePath(from), this.livePath(to));
    // Keep the paths of open files current, so their runs can still be written in one
    // transaction by path (the transaction checks the path still names the inode).
    for (const file of this.files.values()) {
      if (file.path === from) file.path = to;
      else if (file.path.startsWith(`${from}/`)) file.path = to + file.path.slice(from.length);
    }
  }

  async link(existingPath: string, newPath: string): Promise<void> {
    this.noCapability.delete(newPath);
    await this.flushPath(this.livePath(existingPath));
    await this.engram.link(existingPath, newPath);
  }

  async symlink(target: string, path: string, caller?: Caller): Promise<void> {
    await this.engram.symlink(target, path, await this.ownerOfNew(path, caller));
  }

  async mkdir(path: string, mode: number, caller?: Caller): Promise<void> {
    const owner = await this.ownerOfNew(path, caller);
    // A directory made in a set-group-ID directory is set-group-ID too (POSIX; tmpfs and ext4 do so).
    await this.engram.mkdir(path, { mode: (mode & 0o7777) | (owner.inheritsGroup === true ? S_ISGID : 0), uid: owner.uid, gid: owner.gid });
  }

  /**
   * Owner of an entry `caller` creates at `path`: the caller's uid, and its gid unless the parent
   * directory is set-group-ID, whose group the entry then takes (as tmpfs and ext4 do). Empty with
   * the stock binding, which passes no caller (the entry is then owned by the mount's user).
   */
  private async ownerOfNew(path: string, caller: Caller | undefined): Promise<{ uid?: number; gid?: number; inheritsGroup?: boolean }> {
    if (caller === undefined) return {};
    const parent = await this.engram.stat(posix.dirname(path));
    if ((parent.mode & S_ISGID) !== 0) return { uid: caller.uid, gid: parent.gid, inheritsGroup: true };
    return { uid: caller.uid, gid: caller.gid };
  }

  async rmdir(path: string): Promise<void> {
    await this.engram.rmdir(path);
  }

  async chmod(path: string, mode: number): Promise<void> {
    await (await this.metadataOf(path, true)).chmod(mode & 0o7777);
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    const target = await this.metadataOf(path, true);
    if (uid === UNCHANGED_ID || gid === UNCHANGED_ID) {
      const stat = await target.stat();
      await target.chown(uid === UNCHANGED_ID ? stat.uid : uid, gid === UNCHANGED_ID ? stat.gid : gid);
      return;
    }
    await target.chown(uid, gid);
  }

  async utimens(path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void> {
    const toNs = (time: TimeUpdate): bigint | null => {
      if (time.kind === 'omit') return null;
      if (time.kind === 'now') return this.nowNs();
      return time.timeNs;
    };
    // futimens() after write() must win over the write's own mtime: pending bytes are written
    // first (cp -a, tar and rsync set times on a file they have just written, before close()).
    // The other metadata changes flush too, so the attributes they reply with stay true after close.
    await (await this.metadataOf(path, true)).utimes(toNs(atime), toNs(mtime));
  }

  async setxattr(path: string, name: string, value: Uint8Array, flags: number): Promise<void> {
    // A hard link elsewhere may name the same inode: forget every cached negative answer.
    if (name === capabilityName) this.noCapability.clear();
    const target = await this.metadataOf(path, true);
    if ((flags & XATTR_CREATE) !== 0 && (flags & XATTR_REPLACE) !== 0) {
      throw new EmbrError('INVALID_ARGUMENT', 'XATTR_CREATE and XATTR_REPLACE together', { reason: 'flags' });
    }
    if (aclNames.has(name)) {
      // cp -a, tar and rsync copy permissions as an ACL xattr. A minimal ACL is just the mode:
      // apply it as chmod; anything richer cannot be stored, and EOPNOTSUPP makes tools fall
      // back to chmod instead of storing an ACL that would never be enforced.
      const permissionBits = name === 'system.posix_acl_access' ? modeFromAccessAcl(value) : null;
      if (permissionBits === null) throw new FuseErrnoError(Errno.EOPNOTSUPP, `${path}: ACLs beyond the mode are not supported`);
      const stat = await target.stat();
      await target.chmod((stat.mode & 0o7000) | permissionBits);
      return;
    }
    const flag = (flags & XATTR_CREATE) !== 0 ? 'create' : (flags & XATTR_REPLACE) !== 0 ? 'replace' : undefined;
    await target.setxattr(name, value, flag === undefined ? {} : { flag });
  }

  async removexattr(path: string, name: string): Promise<void> {
    await (await this.metadataOf(path, true)).removexattr(name);
  }

  // ---- lifecycle ----

  /** Writes every pending run. Call before unmounting (and before a final close). */
  async flushAll(): Promise<void> {
    const failures: unknown[] = [];
    await Promise.all(
      [...this.inodes.keys()].map((ino) =>
        this.onInode(ino, (state) => this.flushRuns(state)).catch((error: unknown) => {
          failures.push(error);
        }),
      ),
    );
    if (failures.length > 0) throw failures[0];
  }

  /** Flushes and closes every open handle (the kernel will not release them after unmount). */
  async closeAll(): Promise<void> {
    await this.flushAll();
    await Promise.all([...this.files.keys()].map((fileHandle) => this.release('', fileHandle)));
    this.hidden.clear();
    if (this.syncs !== null) await this.syncs.settle();
  }

  // ---- internals ----

  private rememberNoCapability(path: string): void {
    if (this.capabilityCacheMs <= 0) return;
    if (this.noCapability.size >= maxCapabilityCacheEntries) this.noCapability.clear();
    this.noCapability.set(path, Date.now());
  }

  private register(file: OpenFile): number {
    // Handle numbers are 32-bit in the binding and 0 means "none": wrap within 1..2^31-1.
    let fileHandle = this.nextFileHandle;
    while (this.files.has(fileHandle)) fileHandle = fileHandle >= 0x7fffffff ? 1 : fileHandle + 1;
    this.nextFileHandle = fileHandle >= 0x7fffffff ? 1 : fileHandle + 1;
    file.fileHandle = fileHandle;
    this.files.set(fileHandle, file);
    let state = this.inodes.get(file.ino);
    if (state === undefined) {
      state = {
        ino: file.ino,
        openFiles: new Set(),
        runs: [],
        runBytes: 0,
        queuedCount: 0,
        inFlight: [],
        writeBehinds: [],
        deferredError: undefined,
        queue: Promise.resolve(),
      };
      this.inodes.set(file.ino, state);
    }
    state.openFiles.add(fileHandle);
    return fileHandle;
  }

  private fileOf(fileHandle: number): OpenFile {
    const file = this.files.get(fileHandle);
    invariant(file !== undefined, `the kernel used unknown file handle ${fileHandle}`);
    return file;
  }

  /** Runs `body` after every earlier queued operation on the inode. */
  private onInode<T>(ino: number, body: (state: InodeState) => Promise<T>): Promise<T> {
    const state = this.inodes.get(ino);
    invariant(state !== undefined, `inode ${ino} has no open state`);
    state.queuedCount += 1;
    const result = state.queue.then(() => body(state));
    state.queue = result.then(
      () => {
        state.queuedCount -= 1;
      },
      () => {
        state.queuedCount -= 1;
      },
    );
    return result;
  }

  /**
   * Writes every pending run of the inode, in order. Runs stay visible to reads until the write
   * is done (reads that see runs queue behind this). On failure the runs are dropped and the
   * caller (close, fsync, ...) gets the error, so the same bytes are not written again later.
   */
  /**
   * Writes every pending run of the inode, in order, after any write-behind in flight. Runs are
   * taken off first: if the write fails the caller (close, fsync, ...) gets the error and the
   * same bytes are not written again later.
   */
  private async flushRuns(state: InodeState): Promise<void> {
    await this.settleWriteBehind(state, true);
    if (state.runs.length === 0) return;
    await this.writeRuns(state, this.takeRuns(state));
  }

  private takeRuns(state: InodeState): WriteRun[] {
    const runs = state.runs;
    state.runs = [];
    state.runBytes = 0;
    return runs;
  }

  private async writeRuns(state: InodeState, runs: WriteRun[]): Promise<void> {
    // Read-ahead fetched while these runs were pending holds the bytes they are about to change.
    this.dropReadAhead(state.ino);
    state.inFlight.push(runs);
    try {
      if (runs.length === 1) {
        await runs[0].handle.write(runs[0].offset, joinRun(runs[0]));
      } else if (!(await this.writeRunsInTransaction(state.ino, runs))) {
        for (const run of runs) await run.handle.write(run.offset, joinRun(run));
      }
    } finally {
      state.inFlight = state.inFlight.filter((batch) => batch !== runs);
      this.dropReadAhead(state.ino);
    }
  }

  /** True when the pending runs may be written behind while the write-behinds in flight run. */
  private mayWriteBehindAlongside(state: InodeState): boolean {
    if (state.writeBehinds.length >= this.writeBehindDepth || state.runs.length !== 1) return false;
    const run = state.runs[0];
    return state.writeBehinds.every(
      (writeBehind) =>
        writeBehind.runs.length === 1 &&
        (writeBehind.runs[0].offset + writeBehind.runs[0].length <= run.offset || run.offset + run.length <= writeBehind.runs[0].offset),
    );
  }

  /** Waits for every write-behind; with `report`, throws (once) the error one deferred. */
  private async settleWriteBehind(state: InodeState, report: boolean): Promise<void> {
    while (state.writeBehinds.length > 0) await Promise.all(state.writeBehinds.map((writeBehind) => writeBehind.done));
    if (report && state.deferredError !== undefined) {
      const error = state.deferredError;
      state.deferredError = undefined;
      throw error;
    }
  }

  /**
   * Writes several runs as one commit, by path. Returns false (nothing written) when no open
   * path of the inode is known to name it any more or another writer got in between.
   */
  private async writeRunsInTransaction(ino: number, runs: WriteRun[]): Promise<boolean> {
    const path = this.pathOfInode(ino);
    if (path === null) return false;
    try {
      await this.engram.transaction(async (transaction) => {
        const stat = await transaction.stat(path);
        if (stat.ino !== ino) throw new EmbrError('VERSION_MISMATCH', `${path} no longer names inode ${ino}`, { path });
        for (const run of runs) await transaction.write(path, run.offset, joinRun(run));
      });
      return true;
    } catch (error) {
      if (error instanceof EmbrError && (error.code === 'VERSION_MISMATCH' || error.code === 'NOT_FOUND')) return false;
      throw error;
    }
  }

  private pathOfInode(ino: number): string | null {
    const state = this.inodes.get(ino);
    if (state === undefined) return null;
    for (const fileHandle of state.openFiles) {
      const file = this.files.get(fileHandle);
      if (file !== undefined && file.handle !== null) return file.path;
    }
    return null;
  }

  /**
   * Copies stored bytes (no pending runs) into `target`, through the file's read-ahead buffers
   * when reading sequentially; returns how many (fewer than `length` only at the end of file).
   */
  private async readStored(file: OpenFile, offset: number, length: number, target: Buffer): Promise<number> {
    const sequential = offset === file.lastReadEnd;
    file.lastReadEnd = offset + length;
    const nowMs = Date.now();
    for (const entry of file.readAheads) {
      if (nowMs - entry.fetchedAtMs > this.readAheadTtlMs || offset < entry.offset || offset >= entry.offset + entry.requestedBytes) continue;
      const bytes = await this.awaitReadAhead(entry);
      // Dropped while we waited (a write or truncate): read fresh bytes below.
      if (!file.readAheads.includes(entry)) break;
      const start = offset - entry.offset;
      const atEndOfFile = bytes.length < entry.requestedBytes;
      // Served only if the buffer holds the whole request, or ends at the end of the file.
      if (start + length > bytes.length && !atEndOfFile) break;
      // The next buffer is fetched as soon as this one is being read: with the engram's read
      // worker it is decoded on another core meanwhile.
      if (!atEndOfFile) this.prefetch(file, entry.offset + entry.requestedBytes);
      return this.serve(file, entry, bytes, start, length, target);
    }
    if (!sequential || this.readAheadBytes <= length) {
      const bytes = await this.fetchStored(file, offset, length);
      target.set(bytes);
      return bytes.length;
    }
    const entry = this.prefetch(file, offset);
    return this.serve(file, entry, await this.awaitReadAhead(entry), 0, length, target);
  }

  /** The bytes of a read-ahead buffer; while a request waits for them the buffer is not given back. */
  private async awaitReadAhead(entry: ReadAhead): Promise<Uint8Array> {
    entry.waiting += 1;
    try {
      return await entry.bytes;
    } finally {
      entry.waiting -= 1;
    }
  }

  /**
   * Copies a request's part of a read-ahead buffer into `target` (synchronously, so nothing can
   * give the buffer back in between). A buffer every byte of which was served, with no request
   * waiting for it, leaves the file's list and goes back to the handle, whose next read-ahead
   * decodes into the same memory (FileHandle.releaseReadBuffer).
   */
  private serve(file: OpenFile, entry: ReadAhead, bytes: Uint8Array, start: number, length: number, target: Buffer): number {
    const piece = bytes.subarray(start, Math.min(bytes.length, start + length));
    target.set(piece);
    entry.servedBytes += piece.length;
    if (entry.servedBytes >= bytes.length && entry.waiting === 0 && file.handle !== null) {
      const index = file.readAheads.indexOf(entry);
      if (index >= 0) {
        file.readAheads.splice(index, 1);
        file.handle.releaseReadBuffer(bytes);
      }
    }
    return piece.length;
  }

  private fetchStored(file: OpenFile, offset: number, length: number): Promise<Uint8Array> {
    if (file.handle === null) return this.engram.read(file.path, offset, length, this.readOptions).then((result) => result.data);
    return file.handle.read(offset, length).then((result) => result.data);
  }

  /** Starts (or finds) the read-ahead fetch at `offset`; keeps the two newest. */
  private prefetch(file: OpenFile, offset: number): ReadAhead {
    const existing = file.readAheads.find((entry) => entry.offset === offset);
    if (existing !== undefined) return existing;
    const entry: ReadAhead = { offset, requestedBytes: this.readAheadBytes, bytes: this.fetchStored(file, offset, this.readAheadBytes), fetchedAtMs: Date.now(), servedBytes: 0, waiting: 0 };
    // A failed fetch is forgotten; whoever awaits it gets the error, a prefetch nobody awaits
    // must not become an unhandled rejection.
    entry.bytes.catch(() => {
      file.readAheads = file.readAheads.filter((other) => other !== entry);
    });
    file.readAheads.push(entry);
    while (file.readAheads.length > 2) file.readAheads.shift();
    return entry;
  }

  private dropReadAhead(ino: number): void {
    const state = this.inodes.get(ino);
    if (state === undefined) return;
    for (const fileHandle of state.openFiles) {
      const file = this.files.get(fileHandle);
      if (file !== undefined) file.readAheads = [];
    }
  }

  /** Writes the pending runs of the inode at `path`, if it has any. */
  private async flushPath(path: string): Promise<void> {
    if (this.inodes.size === 0) return;
    const { ino } = await this.engram.stat(path);
    const state = this.inodes.get(ino);
    if (state !== undefined && (state.runs.length > 0 || state.queuedCount > 0 || state.writeBehinds.length > 0)) {
      await this.onInode(ino, (current) => this.flushRuns(current));
    }
  }

  private withPendingSize(stat: FuseStat): FuseStat {
    const state = this.inodes.get(stat.ino);
    if (state === undefined || (state.runs.length === 0 && state.inFlight.length === 0)) return stat;
    const pendingEnd = (end: number, run: WriteRun): number => Math.max(end, run.offset + run.length);
    const size = state.runs.reduce(pendingEnd, state.inFlight.flat().reduce(pendingEnd, stat.size));
    return { ...stat, size, blocks: allocatedBlocks(size) };
  }

  private anyHandle(state: InodeState): FileHandle {
    for (const fileHandle of state.openFiles) {
      const handle = this.files.get(fileHandle)?.handle;
      if (handle) return handle;
    }
    invariant(false, `inode ${state.ino} has open state but no handle`);
  }

  private async statOpenInode(ino: number): Promise<FuseStat> {
    const state = this.inodes.get(ino);
    if (state === undefined) throw new EmbrError('NOT_FOUND', `inode ${ino} is no longer open`, { ino });
    return this.withPendingSize(toFuseStat(await this.anyHandle(state).stat()));
  }

  /**
   * Path operations other than metadata, stat, truncate and unlink on a hidden (unlinked, still
   * open) file: rename, link and readlink need a name, and it has none.
   */
  private livePath(path: string): string {
    if (this.hidden.has(path)) {
      throw new EmbrError('NOT_FOUND', `${path} was unlinked while open`, { path });
    }
    return path;
  }

  /**
   * Where a metadata call on `path` applies: the inode the path names, or, for a hidden name
   * (unlinked while open: fchmod, fchown, futimens, fsetxattr after unlink), the open handle's
   * inode. With `flush`, the inode's pending writes are written first (see utimens).
   */
  private async metadataOf(path: string, flush = false): Promise<MetadataTarget> {
    const hiddenIno = this.hidden.get(path);
    if (hiddenIno !== undefined) {
      const state = this.inodes.get(hiddenIno);
      if (state === undefined) throw new EmbrError('NOT_FOUND', `${path} is no longer open`, { path });
      if (flush) await this.onInode(hiddenIno, (current) => this.flushRuns(current));
      return this.anyHandle(state);
    }
    if (flush) await this.flushPath(path);
    const engram = this.engram;
    const readOptions = this.readOptions;
    return {
      stat: () => engram.stat(path, readOptions),
      chmod: (mode) => engram.chmod(path, mode),
      chown: (uid, gid) => engram.chown(path, uid, gid),
      utimes: (atimeNs, mtimeNs) => engram.utimes(path, atimeNs, mtimeNs),
      setxattr: (name, value, options) => engram.setxattr(path, name, value, options),
      getxattr: (name) => engram.getxattr(path, name, readOptions),
      listxattr: () => engram.listxattr(path, readOptions),
      removexattr: (name) => engram.removexattr(path, name),
    };
  }
}

/** The metadata calls of an inode, by path or through an open handle ({@link EngramFuseOperations.metadataOf}). */
type MetadataTarget = Pick<FileHandle, 'stat' | 'chmod' | 'chown' | 'utimes' | 'setxattr' | 'getxattr' | 'listxattr' | 'removexattr'>;

const emptyStat: FuseStat = {
  ino: 0,
  mode: 0,
  uid: 0,
  gid: 0,
  size: 0,
  nlink: 1,
  blksize: 4096,
  blocks: 0,
  atimeNs: 0n,
  mtimeNs: 0n,
  ctimeNs: 0n,
};

/** The kernel's view of a {@link Stat}: type bits in the mode (times as stored, in nanoseconds). */
export function toFuseStat(stat: Stat): FuseStat {
  return {
    ino: stat.ino,
    mode: typeBits[stat.type] | (stat.mode & 0o7777),
    uid: stat.uid,
    gid: stat.gid,
    size: stat.size,
    nlink: stat.nlink,
    blksize: 4096,
    blocks: stat.type === 'file' ? allocatedBlocks(stat.size) : 0,
    atimeNs: stat.atimeNs,
    mtimeNs: stat.mtimeNs,
    ctimeNs: stat.ctimeNs,
  };
}

/** 512-byte blocks as a page-granular filesystem (tmpfs, ext4) reports them, so `du` and `ls -s` agree. */
function allocatedBlocks(sizeBytes: number): number {
  return Math.ceil(sizeBytes / 4096) * 8;
}

function joinRun(run: WriteRun): Buffer {
  return run.parts.length === 1 ? run.parts[0] : Buffer.concat(run.parts, run.length);
}

