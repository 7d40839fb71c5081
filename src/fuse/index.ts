/**
 * The read-write FUSE mount of an engram (`embrfs mount`).
 *
 * {@link mountEngram} opens the engram, mounts it and serves it until {@link MountedEngram.unmount}
 * is called, the process gets SIGINT/SIGTERM (everything pending is flushed first), or someone
 * runs `fusermount -u` on the mountpoint (noticed within a second). {@link serveEngram} does the
 * same for an engram the caller opened. {@link cleanupStaleMount} detaches the leftovers of a
 * mount whose process died.
 */
import { realpath, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EmbrError } from '../errors.js';
import type { Durability, Engram } from '../fs/api.js';
import { cleanupStaleMount, FuseMount, isMounted } from './binding.js';
import { EngramFuseOperations } from './operations.js';

export { cleanupStaleMount, isMounted } from './binding.js';
export { Errno, errnoByCode, errnoOf } from './errno.js';
export { EngramFuseOperations } from './operations.js';

export interface MountOptions {
  engramFile: string;
  mountpoint: string;
  /** Serve read-only (the kernel refuses writes with EROFS). */
  readOnly?: boolean;
  /** Serve this snapshot, read-only. */
  snapshot?: string;
  /**
   * Commit durability (default 'normal'). 'normal': each FUSE call's commit survives a kill of
   * the mount process at once, and a power loss once synced: fsync, fdatasync, fsyncdir and the
   * last close of a written file sync, and anything else committed is synced within
   * `syncIntervalMs`. 'full': every commit is synced before the call is answered.
   */
  durability?: Durability;
  /** With durability 'normal': sync commits not yet synced at least this often (default 1000 ms). */
  syncIntervalMs?: number;
  /**
   * Pending writes of a file are committed once they reach this many bytes in one run (default
   * 8 MiB; tests use less), or 8 times as many in several runs (a scattered writer).
   */
  writeBufferBytes?: number;
  /** Seconds the kernel caches attributes and names; other writers' changes show up after it (default 1). */
  attributeTimeoutSeconds?: number;
  /** Unmount cleanly on SIGINT/SIGTERM (default true; the CLI runs the mount in the foreground). */
  handleSignals?: boolean;
  /** Where unexpected failures (bugs, never operating conditions) are logged (default stderr). */
  log?: (message: string) => void;
}

export interface MountedEngram {
  readonly mountpoint: string;
  /** Flushes every pending write, detaches the mount and closes the engram. Idempotent. */
  unmount(): Promise<void>;
  /** Resolves once the mount is gone and the engram closed, however that happened. */
  closed: Promise<void>;
}

/** The mount's `mmapBytes` (see OpenOptions): SQLite's maximum, 2 GiB. */
const MOUNT_MMAP_BYTES = 0x7fff0000;

/**
 * Mounts an engram file at `mountpoint` and serves it until unmounted.
 *
 * @example
 * ```ts
 * const mounted = await mountEngram({ engramFile: 'data.engram', mountpoint: '/mnt/data' });
 * // ordinary programs now read and write /mnt/data
 * await mounted.unmount();
 * ```
 */
export async function mountEngram(options: MountOptions): Promise<MountedEngram> {
  validateOptions(options);
  const readOnly = options.readOnly === true || options.snapshot !== undefined;
  // Loaded on demand so serveEngram (tests with an injected engram) does not pull in the store.
  const { openEngram } = await import('../fs/index.js');
  // Reads through a memory map (15-20 % less CPU per read MB), and the read-ahead decoded by a
  // read worker on another core (docs/design/fuse.md, "Handles, write buffering and reads").
  const engram = await openEngram(options.engramFile, { readOnly, durability: options.durability ?? 'normal', mmapBytes: MOUNT_MMAP_BYTES, readWorker: true });
  try {
    return await serveEngram(engram, { ...options, readOnly, closeEngram: true });
  } catch (error) {
    await engram.close();
    throw error;
  }
}

/**
 * Serves an already open engram at `mountpoint`. With `closeEngram` the engram is closed when the
 * mount ends; otherwise it stays open for the caller.
 *
 * @example
 * ```ts
 * const mounted = await serveEngram(engram, { engramFile: engram.file, mountpoint: '/mnt/x', closeEngram: false });
 * ```
 */
export async function serveEngram(engram: Engram, options: MountOptions & { closeEngram: boolean }): Promise<MountedEngram> {
  validateOptions(options);
  const log = options.log ?? ((message: string) => process.stderr.write(`embrfs mount: ${message}\n`));
  const readOnly = options.readOnly === true || options.snapshot !== undefined || engram.readOnly;
  if (options.snapshot !== undefined) {
    const snapshots = await engram.listSnapshots();
    if (!snapshots.some((snapshot) => snapshot.name === options.snapshot)) {
      throw new EmbrError('NOT_FOUND', `snapshot '${options.snapshot}' does not exist in ${options.engramFile}`, { snapshot: options.snapshot });
    }
  }
  const mountpoint = await prepareMountpoint(options.mountpoint);
  // serveEngram does not know how the caller opened the engram: syncing an engram opened with
  // durability 'full' is redundant, never wrong.
  const syncs = !readOnly && (options.durability ?? 'normal') === 'normal';
  const operations = new EngramFuseOperations({
    engram,
    engramFile: options.engramFile,
    syncOnDurabilityPoints: syncs,
    ...(options.writeBufferBytes === undefined ? {} : { writeBufferBytes: options.writeBufferBytes }),
    ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
  });
  const mount = new FuseMount(mountpoint, operations, {
    readOnly,
    attributeTimeoutSeconds: options.attributeTimeoutSeconds ?? 1,
    onUnexpectedError: (operation, error) => {
      log(`unexpected failure in ${operation}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    },
  });
  await mount.mount();

  let resolveClosed: () => void = () => undefined;
  let rejectClosed: (error: unknown) => void = () => undefined;
  const closed = new Promise<void>((resolvePromise, rejectPromise) => {
    resolveClosed = resolvePromise;
    rejectClosed = rejectPromise;
  });
  let shutdown: Promise<void> | null = null;

  const finish = async (detach: boolean): Promise<void> => {
    clearInterval(watcher);
    clearInterval(syncTimer);
    await backgroundSync;
    removeSignalHandlers();
    let firstError: unknown = null;
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        firstError ??= error;
      }
    };
    // Flush before detaching so nothing acknowledged to a writer is lost if the detach fails.
    await attempt(() => operations.flushAll());
    if (detach) await attempt(() => mount.unmount());
    else await attempt(() => mount.unmount().catch(() => undefined));
    await attempt(() => operations.closeAll());
    if (options.closeEngram) await attempt(() => engram.close());
    if (firstError !== null) throw firstError;
  };
  const stop = (detach: boolean): Promise<void> => {
    shutdown ??= finish(detach).then(
      () => resolveClosed(),
      (error: unknown) => {
        rejectClosed(error);
        throw error;
      },
    );
    return shutdown;
  };

  // fuse-native does not tell us when someone else unmounts: watch the mount table.
  const watcher = setInterval(() => {
    if (!isMounted(mountpoint)) stop(false).catch((error: unknown) => log(`shutdown after external unmount failed: ${String(error)}`));
  }, 1000);

  // Durability 'normal': commits that no fsync/close made durable (unlink, rename, mkdir, chmod,
  // ...) are synced within syncIntervalMs, so a power loss loses at most that much (like ext4's
  // journal commit interval). Skipped when nothing was committed since the last sync.
  let syncedCommit = -1;
  let backgroundSync: Promise<void> = Promise.resolve();
  const syncTimer = setInterval(() => {
    if (!syncs || shutdown !== null) return;
    backgroundSync = backgroundSync
      .then(async () => {
        const head = await engram.currentCommit();
        if (head === syncedCommit || shutdown !== null) return;
        await engram.sync();
        syncedCommit = head;
      })
      .catch((error: unknown) => {
        if (shutdown === null) log(`background sync failed: ${error instanceof Error ? error.message : String(error)}`);
      });
  }, options.syncIntervalMs ?? 1000);
  syncTimer.unref();

  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: flushing and unmounting ${mountpoint}`);
    stop(true).catch((error: unknown) => log(`unmount failed: ${String(error)}`));
  };
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  function removeSignalHandlers(): void {
    if (!handleSignals) return;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  return {
    mountpoint,
    unmount: () => stop(true),
    closed,
  };
}

function validateOptions(options: MountOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('mount options must be an object');
  if (typeof options.engramFile !== 'string' || options.engramFile === '') throw new TypeError('engramFile must be a non-empty string');
  if (typeof options.mountpoint !== 'string' || options.mountpoint === '') throw new TypeError('mountpoint must be a non-empty string');
  if (options.snapshot !== undefined && (typeof options.snapshot !== 'string' || options.snapshot === '')) {
    throw new TypeError('snapshot must be a non-empty string');
  }
  const interval = options.syncIntervalMs;
  if (interval !== undefined && (!Number.isFinite(interval) || interval <= 0)) {
    throw new RangeError(`syncIntervalMs must be a finite number > 0, got ${interval}`);
  }
  const timeout = options.attributeTimeoutSeconds;
  if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
    throw new RangeError(`attributeTimeoutSeconds must be a finite number >= 0, got ${timeout}`);
  }
}

/** Resolves the mountpoint, detaching a dead mount left there by a killed process. */
async function prepareMountpoint(mountpoint: string): Promise<string> {
  const absolute = resolve(mountpoint);
  try {
    await stat(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTCONN: "Transport endpoint is not connected", the mark of a FUSE server that died.
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') await cleanupStaleMount(absolute);
    else if (code === 'ENOENT') throw new EmbrError('NOT_FOUND', `mountpoint ${absolute} does not exist: create the directory first`, { path: absolute });
    else throw error;
  }
  const real = await realpath(absolute);
  const info = await stat(real);
  if (!info.isDirectory()) throw new EmbrError('NOT_DIRECTORY', `mountpoint ${real} is not a directory`, { path: real });
  if (isMounted(real)) throw new EmbrError('EXISTS', `something is already mounted at ${real}: unmount it first (embrfs umount ${real})`, { path: real });
  return real;
}
