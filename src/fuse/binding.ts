/**
 * The FUSE binding: `fuse-native` 2.2.6 (libfuse 2.9 high-level, path-based API), wrapped so the
 * rest of `src/fuse` sees promise-returning operations with typed arguments, and patched where its
 * defects can be reached. See docs/design/fuse.md for what cannot be reached and why.
 *
 * Its C side, patched (native/fuse/patch.mjs, built by `npm ci` into
 * native/fuse/build/Release/embrfs_fuse.node), replaces the stock prebuild's functions when it
 * loads ({@link fusePatchLevel} 1): times in nanoseconds both ways, utimens with its real mtime and
 * with UTIME_NOW and UTIME_OMIT told apart (also when only one time is set: `touch -m`, tar -x),
 * and the caller's uid/gid on create, mknod, mkdir and symlink. Without it (no compiler at
 * install, or `EMBRFS_STOCK_FUSE=1`) the stock prebuild runs with the workarounds below.
 *
 * Workarounds applied here (each is a subclass override of a `fuse-native` internal; the version
 * is pinned in package.json, and `binding.test.ts` fails loudly if an internal moves):
 * - Mount options `fuse-native` has no switch for: `big_writes`, `max_write=131072` (writes arrive
 *   in 128 KiB requests instead of 4 KiB), `use_ino` (our stable inode numbers reach `stat`),
 *   `auto_cache` (the page cache survives an open when size and mtime are unchanged, so re-reads
 *   do not reach us, and a change by another writer still drops it), `negative_timeout`.
 * - `utimens`: the C side passes atime twice; the real mtime (milliseconds) still sits in the
 *   per-thread request record, which is a Node Buffer that `fuse-native` allocated from JS, so we
 *   read it from there (offset checked against the C struct layout).
 * - `getxattr`/`listxattr`: a buffer smaller than the value gave EIO (and listxattr's size query
 *   over-reported by 128 bytes); we answer ERANGE and the exact size.
 * - `fgetattr`: forwarded with its file handle instead of being turned into a path `getattr`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Errno, errnoOf, isExpectedError } from './errno.js';

/**
 * What the kernel is told about an inode. Times are nanoseconds since the epoch; the stock binding
 * carries milliseconds, so it truncates them.
 */
export interface FuseStat {
  ino: number;
  /** Type bits and permission bits, as in `st_mode`. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  blksize: number;
  /** 512-byte blocks. */
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** A time argument of `utimens`: set it (nanoseconds since the epoch), set it to now, or leave it. */
export type TimeUpdate = { kind: 'set'; timeNs: bigint } | { kind: 'now' } | { kind: 'omit' };

/** Who asked for a create: the calling process's ids (patched binding only). */
export interface Caller {
  uid: number;
  gid: number;
}

/**
 * The operations a filesystem implements for {@link FuseMount}. Each returns a promise; a
 * rejection becomes the errno of {@link errnoOf}. Numbers are plain (offsets up to 2^53).
 */
export interface AsyncFuseOperations {
  getattr(path: string): Promise<FuseStat>;
  fgetattr(path: string, fileHandle: number): Promise<FuseStat>;
  access(path: string, mode: number): Promise<void>;
  statfs(path: string): Promise<FuseStatfs>;
  readdir(path: string): Promise<{ names: string[]; stats: FuseStat[] }>;
  /** Returns the file handle number (never 0: the binding treats 0 as "none"). */
  open(path: string, flags: number): Promise<number>;
  /** `caller` is undefined with the stock binding (the entry is then owned by the mount's user). */
  create(path: string, mode: number, caller?: Caller): Promise<number>;
  read(path: string, fileHandle: number, buffer: Buffer, length: number, offset: number): Promise<number>;
  write(path: string, fileHandle: number, buffer: Buffer, length: number, offset: number): Promise<number>;
  flush(path: string, fileHandle: number): Promise<void>;
  fsync(path: string, dataSync: boolean, fileHandle: number): Promise<void>;
  fsyncdir(path: string, dataSync: boolean): Promise<void>;
  release(path: string, fileHandle: number): Promise<void>;
  truncate(path: string, sizeBytes: number): Promise<void>;
  ftruncate(path: string, fileHandle: number, sizeBytes: number): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  link(existingPath: string, newPath: string): Promise<void>;
  symlink(target: string, path: string, caller?: Caller): Promise<void>;
  readlink(path: string): Promise<string>;
  mkdir(path: string, mode: number, caller?: Caller): Promise<void>;
  mknod(path: string, mode: number, device: number, caller?: Caller): Promise<void>;
  rmdir(path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** `uid`/`gid` of 0xffffffff mean "leave unchanged" (chown(2)'s -1). */
  chown(path: string, uid: number, gid: number): Promise<void>;
  utimens(path: string, atime: TimeUpdate, mtime: TimeUpdate): Promise<void>;
  setxattr(path: string, name: string, value: Uint8Array, flags: number): Promise<void>;
  getxattr(path: string, name: string): Promise<Uint8Array>;
  listxattr(path: string): Promise<string[]>;
  removexattr(path: string, name: string): Promise<void>;
}

export interface FuseMountOptions {
  /** Kernel-side read-only mount (`-o ro`): writes fail with EROFS before they reach us. */
  readOnly: boolean;
  /** Seconds the kernel caches attributes and names (libfuse default 1). */
  attributeTimeoutSeconds: number;
  /** Log unexpected (non-EmbrError) failures here. */
  onUnexpectedError: (operation: string, error: unknown) => void;
}

type Callback = (...args: unknown[]) => void;
type Signal = (result: number, ...args: unknown[]) => void;
type NativeHandler = (nativeLocals: Buffer, opCode: number, ...args: unknown[]) => unknown;

interface FuseNativeInstance {
  mnt: string;
  _thread: Buffer | null;
  _close(callback: (error: Error | null) => void): void;
  mount(callback: (error: Error | null) => void): void;
  unmount(callback: (error: Error | null) => void): void;
  _fuseOptions(): string;
  _handlers: NativeHandler[];
  ops: Record<string, Callback>;
}

interface FuseNativeClass {
  new (mountpoint: string, ops: Record<string, Callback>, options: Record<string, unknown>): FuseNativeInstance;
  unmount(mountpoint: string, callback: (error: Error | null) => void): void;
}

const require = createRequire(import.meta.url);
const FuseNative = require('fuse-native') as FuseNativeClass;
/** The native module fuse-native loaded (node-gyp-build returns the same, already loaded one). */
const nativeBinding = (createRequire(require.resolve('fuse-native'))('node-gyp-build') as (directory: string) => Record<string, unknown> & { fuse_native_unmount(mountpoint: string, thread: Buffer): void })(
  dirname(require.resolve('fuse-native/package.json')),
);

/** The patch level native/fuse/patch.mjs builds, and the one this file speaks. */
const PATCH_LEVEL = 1;

/**
 * Puts the patched build's functions in place of the stock prebuild's, in the object fuse-native's
 * JavaScript calls them through (it looks every function up at call time; both builds come from
 * the same source, so they export the same names). Returns the patch level in use: 0 = stock.
 */
function installPatchedBinding(): number {
  if (process.env.EMBRFS_STOCK_FUSE === '1') return 0;
  let patched: Record<string, unknown>;
  try {
    patched = require(fileURLToPath(new URL('../../../native/fuse/build/Release/embrfs_fuse.node', import.meta.url))) as Record<string, unknown>;
  } catch {
    return 0;
  }
  if (patched.embrfs_patch_level !== PATCH_LEVEL) return 0;
  const missing = Object.keys(nativeBinding).filter((name) => !(name in patched));
  if (missing.length > 0) return 0;
  Object.assign(nativeBinding, patched);
  return PATCH_LEVEL;
}

/**
 * 1 when the patched C side is in use (nanosecond times, single-time utimens, the caller's ids on
 * create), 0 with the stock prebuild. `EMBRFS_EXPECT_NATIVE=1` tests require 1.
 */
export const fusePatchLevel = installPatchedBinding();

/** tv_nsec of UTIME_NOW and UTIME_OMIT (Linux `<sys/stat.h>`). */
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;

/** The opcode of utimens in fuse-native.c (`op_utimens`). */
const utimensOpCode = 12;
/**
 * Byte offset of `size_t mtime` in fuse-native.c's `fuse_thread_locals_t` on 64-bit Linux:
 * 8 pointers/size_t before it (self, op+pad, op_fn, path, dest, linkname, info, buf, offset, len),
 * then mode_t (4, padded to 8), dev_t (8), uid_t+gid_t (8), atime (8). Measured with offsetof().
 */
export const nativeMtimeOffsetBytes = 112;
/**
 * libfuse passes UTIME_NOW and UTIME_OMIT as tv_sec 0 with tv_nsec (1<<30)-1 / (1<<30)-2; the
 * binding turns a timespec into milliseconds as tv_sec*1000 + tv_nsec/1e6, so both become 1073.
 */
export const utimeSentinelMs = 1073;

/** Extra libfuse options fuse-native has no switch for (see the module comment). */
const extraOptions = ['big_writes', 'max_write=131072', 'max_read=131072', 'use_ino', 'auto_cache', 'fsname=embrfs', 'subtype=embrfs'];

/** Decodes the two utimens times the stock binding gives us (milliseconds) into set/now/omit. */
export function decodeUtimens(atimeMs: number, mtimeMs: number): { atime: TimeUpdate; mtime: TimeUpdate } {
  const atimeIsSentinel = atimeMs === utimeSentinelMs;
  const mtimeIsSentinel = mtimeMs === utimeSentinelMs;
  // NOW and OMIT are indistinguishable after the binding's conversion. Both sentinels: the
  // common case is touch(1) / utimensat(NULL), i.e. both NOW. One sentinel beside a real time: the
  // common case is `touch -m -d` / futimens with one UTIME_OMIT, so leave that one alone.
  if (atimeIsSentinel && mtimeIsSentinel) return { atime: { kind: 'now' }, mtime: { kind: 'now' } };
  return {
    atime: atimeIsSentinel ? { kind: 'omit' } : { kind: 'set', timeNs: BigInt(Math.round(atimeMs)) * 1_000_000n },
    mtime: mtimeIsSentinel ? { kind: 'omit' } : { kind: 'set', timeNs: BigInt(Math.round(mtimeMs)) * 1_000_000n },
  };
}

/** Decodes one utimens time of the patched binding (a timespec as seconds and nanoseconds). */
export function decodeTimespec(seconds: number, nanoseconds: number): TimeUpdate {
  if (nanoseconds === UTIME_NOW) return { kind: 'now' };
  if (nanoseconds === UTIME_OMIT) return { kind: 'omit' };
  return { kind: 'set', timeNs: BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds) };
}

/**
 * A live FUSE mount of {@link AsyncFuseOperations} at a mountpoint.
 *
 * @example
 * ```ts
 * const mount = new FuseMount('/mnt/x', operations, { readOnly: false, attributeTimeoutSeconds: 1, onUnexpectedError: console.error });
 * await mount.mount();
 * // ... serve ...
 * await mount.unmount();
 * ```
 */
export class FuseMount {
  readonly mountpoint: string;
  private readonly fuse: FuseNativeInstance;

  constructor(mountpoint: string, operations: AsyncFuseOperations, options: FuseMountOptions) {
    this.mountpoint = mountpoint;
    const timeout = options.attributeTimeoutSeconds;
    // Names looked up as missing are cached as long as attributes: creates through this mount
    // invalidate them at once, other writers' creates show up within the same timeout.
    const kernelOptions = [...extraOptions, `attr_timeout=${timeout}`, `entry_timeout=${timeout}`, `negative_timeout=${timeout}`];
    if (options.readOnly) kernelOptions.push('ro');
    this.fuse = createPatchedFuse(mountpoint, operations, options, kernelOptions);
  }

  /** Mounts; resolves once the kernel has sent INIT (the mount is usable). */
  mount(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.fuse.mount((error) => (error ? reject(error) : resolve()));
    });
  }

  /** Detaches the mount (`fusermount -uz`) and releases the native side. */
  unmount(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.fuse.unmount((error) => (error ? reject(error) : resolve()));
    });
  }
}

function createPatchedFuse(
  mountpoint: string,
  operations: AsyncFuseOperations,
  options: FuseMountOptions,
  kernelOptions: string[],
): FuseNativeInstance {
  const report = (name: string, error: unknown): number => {
    if (!isExpectedError(error)) options.onUnexpectedError(name, error);
    return errnoOf(error);
  };
  // Every call: run the promise, answer (result...) or an errno. `fail` lists the extra arguments a
  // failed reply must still carry for the binding's C side (it reads them unconditionally).
  const call = <T>(name: string, promise: () => Promise<T>, done: (value: T) => unknown[], cb: Callback, fail: unknown[] = []): void => {
    let pending: Promise<T>;
    try {
      pending = promise();
    } catch (error) {
      cb(report(name, error), ...fail);
      return;
    }
    pending.then(
      (value) => cb(0, ...done(value)),
      (error: unknown) => cb(report(name, error), ...fail),
    );
  };
  const none = (): unknown[] => [];

  const ops: Record<string, Callback> = {
    init: (cb) => (cb as Callback)(0),
    access: (path, mode, cb) => call('access', () => operations.access(path as string, mode as number), none, cb as Callback),
    statfs: (path, cb) => call('statfs', () => operations.statfs(path as string), (statfs) => [statfs], cb as Callback),
    open: (path, flags, cb) => call('open', () => operations.open(path as string, flags as number), (handle) => [handle], cb as Callback),
    read: (path, handle, buffer, length, offset, cb) =>
      call(
        'read',
        () => operations.read(path as string, handle as number, buffer as Buffer, length as number, offset as number),
        (bytes) => [bytes],
        // fuse-native replies to read/write with the byte count in the result slot: cb(bytes).
        (result, ...rest) => (cb as Callback)(result === 0 ? (rest[0] as number) : result),
      ),
    write: (path, handle, buffer, length, offset, cb) =>
      call(
        'write',
        () => operations.write(path as string, handle as number, buffer as Buffer, length as number, offset as number),
        (bytes) => [bytes],
        (result, ...rest) => (cb as Callback)(result === 0 ? (rest[0] as number) : result),
      ),
    flush: (path, handle, cb) => call('flush', () => operations.flush(path as string, handle as number), none, cb as Callback),
    fsync: (path, dataSync, handle, cb) =>
      call('fsync', () => operations.fsync(path as string, dataSync !== 0, handle as number), none, cb as Callback),
    fsyncdir: (path, dataSync, _handle, cb) =>
      call('fsyncdir', () => operations.fsyncdir(path as string, dataSync !== 0), none, cb as Callback),
    release: (path, handle, cb) => call('release', () => operations.release(path as string, handle as number), none, cb as Callback),
    releasedir: (_path, _handle, cb) => (cb as Callback)(0),
    opendir: (_path, _flags, cb) => (cb as Callback)(0, 0),
    truncate: (path, size, cb) => call('truncate', () => operations.truncate(path as string, size as number), none, cb as Callback),
    ftruncate: (path, handle, size, cb) =>
      call('ftruncate', () => operations.ftruncate(path as string, handle as number, size as number), none, cb as Callback),
    unlink: (path, cb) => call('unlink', () => operations.unlink(path as string), none, cb as Callback),
    rename: (from, to, cb) => call('rename', () => operations.rename(from as string, to as string), none, cb as Callback),
    link: (from, to, cb) => call('link', () => operations.link(from as string, to as string), none, cb as Callback),
    readlink: (path, cb) => call('readlink', () => operations.readlink(path as string), (target) => [target], cb as Callback),
    rmdir: (path, cb) => call('rmdir', () => operations.rmdir(path as string), none, cb as Callback),
    chmod: (path, mode, cb) => call('chmod', () => operations.chmod(path as string, mode as number), none, cb as Callback),
    chown: (path, uid, gid, cb) =>
      call('chown', () => operations.chown(path as string, uid as number, gid as number), none, cb as Callback),
    setxattr: (path, name, value, _position, flags, cb) =>
      call(
        'setxattr',
        // The value buffer points into libfuse memory that is gone after the reply: copy it.
        () => operations.setxattr(path as string, name as string, Uint8Array.from(value as Buffer), flags as number),
        none,
        cb as Callback,
      ),
    removexattr: (path, name, cb) =>
      call('removexattr', () => operations.removexattr(path as string, name as string), none, cb as Callback),
    // Present so fuse-native registers them with libfuse; the real work is in the overrides below
    // (stats in our encoding, the caller's ids, the patched utimens).
    getattr: (_path, cb) => (cb as Callback)(-Errno.ENOSYS),
    readdir: (_path, cb) => (cb as Callback)(-Errno.ENOSYS),
    create: (_path, _mode, cb) => (cb as Callback)(-Errno.ENOSYS),
    mkdir: (_path, _mode, cb) => (cb as Callback)(-Errno.ENOSYS),
    mknod: (_path, _mode, _device, cb) => (cb as Callback)(-Errno.ENOSYS),
    symlink: (_target, _path, cb) => (cb as Callback)(-Errno.ENOSYS),
    fgetattr: (_path, _handle, cb) => (cb as Callback)(-Errno.ENOSYS),
    utimens: (_path, _atime, _mtime, cb) => (cb as Callback)(-Errno.ENOSYS),
    getxattr: (_path, _name, _position, cb) => (cb as Callback)(-Errno.ENOSYS),
    listxattr: (_path, cb) => (cb as Callback)(-Errno.ENOSYS),
  };

  class PatchedFuse extends FuseNative {
    /** The request record of the utimens call in progress (set synchronously before `_op_utimens`). */
    private utimensLocals: Buffer | null = null;

    constructor() {
      super(mountpoint, ops, { timeout: 10 * 60 * 1000, allowOther: true, defaultPermissions: true });
      const original = this._handlers[utimensOpCode];
      this._handlers[utimensOpCode] = (nativeLocals, opCode, ...args) => {
        this.utimensLocals = nativeLocals;
        try {
          return original(nativeLocals, opCode, ...args);
        } finally {
          this.utimensLocals = null;
        }
      };
    }

    /**
     * The stock close gives up (and never releases the native side, whose libuv handle then
     * keeps the process alive) when `fusermount -uz` fails because someone already unmounted.
     */
    override _close(callback: (error: Error | null) => void): void {
      execFile('fusermount', ['-uz', this.mnt], (error) => {
        if (error !== null && isMounted(this.mnt)) {
          callback(error);
          return;
        }
        try {
          if (this._thread !== null) nativeBinding.fuse_native_unmount(this.mnt, this._thread);
        } catch (nativeError) {
          callback(nativeError as Error);
          return;
        }
        callback(null);
      });
    }

    override _fuseOptions(): string {
      const base = super._fuseOptions();
      const joined = kernelOptions.join(',');
      return base === '' ? `-o${joined}` : `${base},${joined}`;
    }

    _op_fgetattr(signal: Signal, path: string, fileHandle: number): void {
      // The stock handler drops the file handle and asks getattr by path, which fails for an open
      // file whose path was unlinked.
      call('fgetattr', () => operations.fgetattr(path, fileHandle), (stat) => [toStatArray(stat)], (result, ...rest) => {
        if (result !== 0) signal(result as number, toStatArray(null));
        else signal(0, ...rest);
      });
    }

    _op_getattr(signal: Signal, path: string): void {
      // Our stat encoding (the stock one carries milliseconds, the patched C side reads seconds and nanoseconds).
      call('getattr', () => operations.getattr(path), (stat) => [toStatArray(stat)], (result, ...rest) => {
        if (result !== 0) signal(result as number, toStatArray(null));
        else signal(0, ...rest);
      });
    }

    _op_readdir(signal: Signal, path: string): void {
      call('readdir', () => operations.readdir(path), (listing) => [listing.names, listing.stats.map(toStatArray)], (result, ...rest) => {
        if (result !== 0) signal(result as number);
        else signal(0, ...rest);
      });
    }

    _op_create(signal: Signal, path: string, mode: number, uid?: number, gid?: number): void {
      call('create', () => operations.create(path, mode, callerOf(uid, gid)), (handle) => [handle], (result, ...rest) => signal(result as number, ...rest));
    }

    _op_mknod(signal: Signal, path: string, mode: number, device: number, uid?: number, gid?: number): void {
      call('mknod', () => operations.mknod(path, mode, device, callerOf(uid, gid)), none, (result) => signal(result as number));
    }

    _op_mkdir(signal: Signal, path: string, mode: number, uid?: number, gid?: number): void {
      call('mkdir', () => operations.mkdir(path, mode, callerOf(uid, gid)), none, (result) => signal(result as number));
    }

    _op_symlink(signal: Signal, target: string, path: string, uid?: number, gid?: number): void {
      call('symlink', () => operations.symlink(target, path, callerOf(uid, gid)), none, (result) => signal(result as number));
    }

    _op_utimens(signal: Signal, path: string, atimeLow: number, atimeHigh: number, mtimeLow: number, mtimeHigh: number): void {
      if (fusePatchLevel >= 1) {
        // Patched: (seconds, nanoseconds) of atime, then of mtime.
        const atime = decodeTimespec(atimeLow, atimeHigh);
        const mtime = decodeTimespec(mtimeLow, mtimeHigh);
        call('utimens', () => operations.utimens(path, atime, mtime), none, (result) => signal(result as number));
        return;
      }
      const atimeMs = atimeLow + atimeHigh * 4294967296;
      const locals = this.utimensLocals;
      const mtimeMs = locals !== null && locals.length >= nativeMtimeOffsetBytes + 8 ? Number(locals.readBigUInt64LE(nativeMtimeOffsetBytes)) : atimeMs;
      const { atime, mtime } = decodeUtimens(atimeMs, mtimeMs);
      call('utimens', () => operations.utimens(path, atime, mtime), none, (result) => signal(result as number));
    }

    _op_getxattr(signal: Signal, path: string, name: string, valueBuffer: Buffer): void {
      call(
        'getxattr',
        () => operations.getxattr(path, name),
        (value) => [value],
        (result, value) => {
          if (result !== 0) return signal(result as number, valueBuffer.buffer);
          const bytes = value as Uint8Array;
          if (valueBuffer.length === 0) return signal(bytes.length, valueBuffer.buffer);
          if (bytes.length > valueBuffer.length) return signal(-Errno.ERANGE, valueBuffer.buffer);
          valueBuffer.set(bytes);
          return signal(bytes.length, valueBuffer.buffer);
        },
      );
    }

    _op_listxattr(signal: Signal, path: string, listBuffer: Buffer): void {
      call(
        'listxattr',
        () => operations.listxattr(path),
        (names) => [names],
        (result, names) => {
          if (result !== 0) return signal(result as number, listBuffer.buffer);
          const encoded = Buffer.concat((names as string[]).map((name) => Buffer.from(`${name}\0`, 'utf8')));
          if (listBuffer.length === 0) return signal(encoded.length, listBuffer.buffer);
          if (encoded.length > listBuffer.length) return signal(-Errno.ERANGE, listBuffer.buffer);
          encoded.copy(listBuffer);
          return signal(encoded.length, listBuffer.buffer);
        },
      );
    }
  }

  return new PatchedFuse();
}

/** The caller of a patched create-like request; undefined from the stock binding (which passes no ids). */
function callerOf(uid: number | undefined, gid: number | undefined): Caller | undefined {
  return typeof uid === 'number' && typeof gid === 'number' ? { uid, gid } : undefined;
}

/**
 * The binding's wire form of a stat (fuse-native.c `populate_stat`): 18 uint32 words; each time is
 * two words, seconds and nanoseconds with the patched C side, a 64-bit millisecond count with the
 * stock one. Times before the epoch are sent as the epoch.
 */
export function toStatArray(stat: FuseStat | null, patchLevel: number = fusePatchLevel): Uint32Array {
  const words = new Uint32Array(18);
  if (stat === null) return words;
  const setDouble = (index: number, value: number): void => {
    words[index] = value % 4294967296;
    words[index + 1] = Math.floor(value / 4294967296);
  };
  words[0] = stat.mode;
  words[1] = stat.uid;
  words[2] = stat.gid;
  setDouble(3, stat.size);
  words[5] = 0;
  words[6] = stat.nlink;
  words[7] = stat.ino;
  words[8] = 0;
  words[9] = stat.blksize;
  setDouble(10, stat.blocks);
  const setTime = (index: number, timeNs: bigint): void => {
    const clamped = timeNs < 0n ? 0n : timeNs;
    if (patchLevel >= 1) {
      words[index] = Number(clamped / 1_000_000_000n);
      words[index + 1] = Number(clamped % 1_000_000_000n);
    } else setDouble(index, Number(clamped / 1_000_000n));
  };
  setTime(12, stat.atimeNs);
  setTime(14, stat.mtimeNs);
  setTime(16, stat.ctimeNs);
  return words;
}

/**
 * Detaches whatever is mounted at `mountpoint`: `fusermount -u`, then the lazy `-uz` if busy.
 * Resolves true if something was unmounted, false if nothing was mounted there.
 *
 * @example
 * ```ts
 * await cleanupStaleMount('/tmp/mnt'); // after a mount process was killed with SIGKILL
 * ```
 */
export async function cleanupStaleMount(mountpoint: string): Promise<boolean> {
  const run = (args: string[]): Promise<boolean> =>
    new Promise((resolve) => {
      execFile('fusermount', args, (error) => resolve(error === null));
    });
  if (await run(['-u', mountpoint])) return true;
  return run(['-uz', mountpoint]);
}

/**
 * True when a filesystem is mounted exactly at `mountpoint` (per /proc/self/mountinfo).
 *
 * @example
 * ```ts
 * if (isMounted('/mnt/data')) await cleanupStaleMount('/mnt/data');
 * ```
 */
export function isMounted(mountpoint: string): boolean {
  const table = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of table.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    // mountinfo escapes space, tab, newline and backslash as octal.
    const point = fields[4].replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    if (point === mountpoint) return true;
  }
  return false;
}
