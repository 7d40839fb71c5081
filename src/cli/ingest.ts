/**
 * `embrfs ingest`: makes an engram's tree equal to one or more source trees, creating the
 * engram or updating it.
 *
 * Pipeline (docs/design/cli.md): a depth-first walk, one directory at a time, compares each
 * source entry (lstat, never following links) with the engram entry at the same path.
 * The walk, the reads of small files and their content keys run on this thread; worker threads
 * ({@link FileWritePool}) encode and commit, so this thread does only what must be ordered here,
 * with synchronous calls (page-cached metadata and small reads cost less than promise round trips).
 * - Unchanged regular files (same size and mtime, like restic) cost nothing; only changed
 *   metadata is applied. Changed files are rewritten; the library's content-addressed chunks
 *   make unchanged chunks free.
 * - Small files are read and queued into {@link TransactionBatch} (512 files or 64 MiB per
 *   commit); a big file is streamed with `writeFileFrom`, so memory stays bounded.
 * - Entries in the engram but not in the source are removed.
 * - Hard links (same dev+ino in the source) are linked after all files exist; directory
 *   mtimes are set last because adding entries changes them.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, type BigIntStats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { DirectoryEntry, Engram, OpenOptions, ProfileName } from '../fs/api.js';
import { isEmbrError } from '../errors.js';
import { retryWhileBusy, TransactionBatch } from './batch.js';
import { CliFailure, ExitCode } from './failure.js';
import { openForCli } from './session.js';
import { createProgress, type Progress } from './progress.js';
import { FileWritePool } from './write-pool.js';
import { applyTreeOp, fixFileMetadata, writeOptionsOf, type FileWriteJob, type TreeOp } from './tree-ops.js';

/** Files up to this size are read whole and batched; bigger ones are streamed on their own. */
const streamThresholdBytes = 8 * 1024 * 1024;
/** Worker threads start once this much has been written in this thread (small updates stay single-threaded). */
const workersAfterBytes = 16 * 1024 * 1024;
const workersAfterFiles = 1024;
/**
 * The same for an engram this run creates: its workers' open is cheap (nothing to check), and
 * every file the main thread encodes delays the walk (measured on the bench:peers corpus, medians
 * of 4: main-thread CPU 1.69 -> 1.21 s, all threads 11.6 -> 10.8 s against the thresholds above).
 */
const freshWorkersAfterBytes = 2 * 1024 * 1024;
const freshWorkersAfterFiles = 128;
/** Content keys (and file sizes) remembered for deferring copies (about 100 bytes each); beyond it copies are written at once. */
const maxSeenContents = 1_000_000;
/** Bytes of deferred copies kept in memory (beyond it they are read again when written). */
const maxKeptCopyBytes = 64 * 1024 * 1024;
/**
 * Ops per worker batch (one commit each; bytes are capped by the batch limit, 64 MiB). Larger
 * than the main thread's 512: with two writers every commit reloads the library's similarity
 * index cache (another connection committed in between), so fewer commits cost less CPU
 * (measured on the bench:peers corpus: about 10% less ingest CPU at 2048 than at 512).
 */
const poolBatchOperations = 2048;
/**
 * The pool's first batch has this many ops, and each next one twice as many up to
 * {@link poolBatchOperations}: the workers start encoding before the walk has read 2,048 files
 * (bench:peers corpus, 7 alternating pairs at load ~2: median 4.67 s against 4.78 s).
 */
const poolFirstBatchOperations = 256;
/**
 * Bytes per worker batch. Commits go in batch order, so one batch that takes long to encode holds
 * up every commit after it: at 64 MiB a batch of large files took ~1.2 s to encode while the
 * other worker's encoded batches waited (bench:peers corpus, traced).
 */
const poolBatchBytes = 16 * 1024 * 1024;

export interface IngestOptions {
  sources: string[];
  engramFile: string;
  profile?: ProfileName;
  chunkBytes?: number;
  quiet: boolean;
  /** True: end with a history-keeping compaction that frees unreferenced packs (default off: the deferral of copies leaves about 2% to free). */
  compact?: boolean;
  /** Worker threads writing files (default: 2, or 1 on a one-core machine, started after 16 MiB or 1024 files). 1 writes in this thread. */
  jobs?: number;
}

export interface IngestSummary {
  files: number;
  directories: number;
  symlinks: number;
  hardLinks: number;
  unchangedFiles: number;
  writtenFiles: number;
  writtenBytes: number;
  removedEntries: number;
  skippedEntries: number;
  commits: number;
  /** Bytes the final compaction gave back (0 when it did not run). */
  compactedBytes: number;
  elapsedMs: number;
}

interface SourceEntry {
  name: string;
  sourcePath: string;
  stats: BigIntStats;
}

interface PendingDirectory {
  engramPath: string;
  /** The source directory, listed (readdir + lstat) at its turn. */
  sourcePath: string;
  /** Known already (the root); else listed at its turn. */
  children: SourceEntry[] | undefined;
  /** Created in this run: the engram holds nothing under it yet (its mkdir may still be queued). */
  isNew: boolean;
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

function permissionBits(stats: BigIntStats): number {
  return Number(stats.mode) & 0o7777;
}

/**
 * Lists a source directory: its entries, sorted by name, each with its lstat. Synchronous: with
 * the metadata in the page cache an lstat is a few microseconds, less than the promise form's
 * thread-pool round trip and callback on this thread (bench:peers corpus, medians of 4:
 * main-thread CPU 1.69 -> 1.47 s; profiled, the listing fell from ~0.6 to ~0.2 s).
 */
function listSource(directory: string, warn: (line: string) => void, excluded: ReadonlySet<string>): SourceEntry[] {
  const entries: SourceEntry[] = [];
  for (const name of readdirSync(directory).sort()) {
    const sourcePath = join(directory, name);
    if (excluded.has(sourcePath)) continue;
    const stats = lstatSync(sourcePath, { bigint: true, throwIfNoEntry: false });
    if (stats === undefined) {
      // A file that vanished during the walk is not an error of the ingest as a whole.
      warn(`embrfs: skipped, vanished during ingest (${sourcePath})`);
      continue;
    }
    entries.push({ name, sourcePath, stats });
  }
  return entries;
}

/** Maps the command line's sources to the engram root's entries. */
function resolveRoot(sources: string[]): { rootSource: SourceEntry | undefined; children: SourceEntry[] } {
  const resolved: SourceEntry[] = [];
  for (const source of sources) {
    const sourcePath = resolve(source);
    const stats = lstatSync(sourcePath, { bigint: true, throwIfNoEntry: false });
    if (stats === undefined) throw new CliFailure(ExitCode.badInput, 'source not found', source, 'check the path');
    resolved.push({ name: basename(sourcePath), sourcePath, stats });
  }
  if (resolved.length === 1 && resolved[0].stats.isDirectory()) {
    return { rootSource: resolved[0], children: [] };
  }
  const names = new Set<string>();
  for (const entry of resolved) {
    if (entry.name === '' || entry.name === '/' ) {
      throw new CliFailure(ExitCode.badInput, 'cannot ingest the file system root among several sources', entry.sourcePath, 'give it alone');
    }
    if (names.has(entry.name)) {
      throw new CliFailure(ExitCode.badInput, `two sources share the name '${entry.name}'`, entry.sourcePath, 'ingest them into separate engrams or rename one');
    }
    names.add(entry.name);
  }
  return { rootSource: undefined, children: resolved };
}

/**
 * Runs the ingest and returns what it did.
 *
 * @example
 * ```ts
 * const summary = await ingest({ sources: ['./photos'], engramFile: 'photos.engram', quiet: true });
 * console.log(summary.writtenFiles, summary.unchangedFiles);
 * ```
 */
export async function ingest(options: IngestOptions): Promise<IngestSummary> {
  const startMs = Date.now();
  const asRoot = process.getuid?.() === 0;
  const warn = (line: string) => process.stderr.write(`${line}\n`);
  const { rootSource, children: rootChildren } = resolveRoot(options.sources);
  // The engram may live inside a source tree: never ingest it (or SQLite's side files) into itself.
  const engramPath = resolve(options.engramFile);
  const ownFiles = new Set(['', '-wal', '-shm', '-journal'].map((suffix) => engramPath + suffix));
  // Commits without fsync (they survive a killed process, not a power loss); the one sync() at the
  // end makes the finished ingest exactly as durable as fsync'd commits would have.
  const openOptions: OpenOptions = { create: true, durability: 'normal' };
  if (options.profile !== undefined) openOptions.profile = options.profile;
  if (options.chunkBytes !== undefined) openOptions.chunkBytes = options.chunkBytes;
  const freshEngram = !existsSync(options.engramFile);
  const engram: Engram = await openForCli(options.engramFile, openOptions);
  if (options.profile !== undefined || options.chunkBytes !== undefined) {
    // Both are fixed when the engram is created; say so instead of silently ignoring them.
    const stats = await engram.stats();
    if ((options.profile !== undefined && stats.profile !== options.profile) || (options.chunkBytes !== undefined && stats.chunkBytes !== options.chunkBytes)) {
      warn(`embrfs: --profile/--chunk-size ignored (${options.engramFile}): the engram was created with ${stats.profile}, ${stats.chunkBytes}-byte chunks; ingest into a new file to change them`);
    }
  }
  const progress: Progress = createProgress({ label: 'ingest', quiet: options.quiet });
  const summary: IngestSummary = {
    files: 0,
    directories: 0,
    symlinks: 0,
    hardLinks: 0,
    unchangedFiles: 0,
    writtenFiles: 0,
    writtenBytes: 0,
    removedEntries: 0,
    skippedEntries: 0,
    commits: 0,
    compactedBytes: 0,
    elapsedMs: 0,
  };
  const batch = new TransactionBatch(engram);
  const jobs = options.jobs ?? Math.min(2, availableParallelism());
  // An explicit --jobs starts the workers at the first write; by default they wait for real work.
  const explicitJobs = options.jobs !== undefined;
  const poolAfterBytes = freshEngram ? freshWorkersAfterBytes : workersAfterBytes;
  const poolAfterFiles = freshEngram ? freshWorkersAfterFiles : workersAfterFiles;
  /**
   * True once changes go to the worker threads. Their pool starts in the background: the
   * workers load and open the engram while this thread commits its own batch and walks on
   * (a start takes 0.2-0.4 s); the first dispatch waits for it.
   */
  let pooled = false;
  let poolStarting: Promise<FileWritePool> | undefined;
  /** The started pool (undefined before it is started, or while it starts). */
  let pool: FileWritePool | undefined;
  /** The pool once started (waiting for its start); undefined when this thread writes. */
  const readyPool = async (): Promise<FileWritePool | undefined> => {
    if (pool === undefined && poolStarting !== undefined) pool = await poolStarting;
    return pool;
  };
  // While the pool runs, every change goes to it, in walk order, as batches that commit in order.
  let pendingOps: TreeOp[] = [];
  let pendingBytes = 0;
  let dispatchedBatches = 0;
  const dispatch = async () => {
    if (!pooled || pendingOps.length === 0) return;
    const ops = pendingOps;
    pendingOps = [];
    pendingBytes = 0;
    dispatchedBatches += 1;
    const started = await readyPool();
    if (started === undefined) throw new Error('internal: no pool to dispatch to');
    await started.submit(ops);
  };
  /** Queues one change: into the pool's next batch while it runs, else into this thread's batch. */
  const queueOp = async (op: TreeOp, bytes = 0) => {
    if (!pooled) {
      await batch.add((tx) => applyTreeOp(tx, op), bytes);
      return;
    }
    pendingOps.push(op);
    pendingBytes += bytes;
    const limit = Math.min(poolBatchOperations, poolFirstBatchOperations << Math.min(dispatchedBatches, 8));
    if (pendingOps.length >= limit || pendingBytes >= poolBatchBytes) await dispatch();
  };
  try {
    const firstPathByInode = new Map<string, string>();
    const hardLinks: { engramPath: string; firstPath: string }[] = [];
    /** `isNew`: created in this run, so its mtime surely changed since (no stat needed). */
    const directoryTimes: { engramPath: string; mtimeNs: bigint; isNew: boolean }[] = [];
    // Copies of one content (see writeRegularFile). A content key is the size and SHA-256 of a
    // file's bytes. Hashing is lazy: the first file of a size is only remembered (its path); a
    // second file of that size hashes both (the first is read again), so files of a size met once
    // are never hashed (on the bench:peers corpus: 113 of 243 MB hashed instead of all).
    const seenContent = new Set<string>();
    /** null: the first file of this size is hashed already (its key is in seenContent). */
    const firstPathBySize = new Map<number, string | null>();
    const contentKey = (data: Uint8Array) => `${data.length}:${createHash('sha256').update(data).digest('base64')}`;
    interface DeferredCopy {
      entry: SourceEntry;
      engramPath: string;
      replace: 'none' | 'overwrite';
      existing: { mode: number; uid: number; gid: number } | undefined;
      /** Its bytes, kept while {@link maxKeptCopyBytes} allows; else read again when written. */
      data?: Buffer;
    }
    const deferred: DeferredCopy[] = [];
    let keptCopyBytes = 0;

    const ownerOptions = (stats: BigIntStats): { uid?: number; gid?: number } =>
      asRoot ? { uid: Number(stats.uid), gid: Number(stats.gid) } : {};

    const syncMetadata = async (engramPath: string, stats: BigIntStats, current: { mode: number; uid: number; gid: number }) => {
      const mode = permissionBits(stats);
      const changeMode = current.mode !== mode;
      const changeOwner = asRoot && (current.uid !== Number(stats.uid) || current.gid !== Number(stats.gid));
      if (!changeMode && !changeOwner) return false;
      const op: TreeOp = { kind: 'metadata', path: engramPath };
      if (changeOwner) {
        op.uid = Number(stats.uid);
        op.gid = Number(stats.gid);
      }
      if (changeMode) op.mode = mode;
      await queueOp(op);
      return true;
    };

    const writeRegularFile = async (
      entry: SourceEntry,
      engramPath: string,
      replace: 'none' | 'overwrite' | 'remove-first',
      existing: { mode: number; uid: number; gid: number } | undefined,
      isDeferred = false,
      keptData?: Buffer,
    ) => {
      const sizeBytes = Number(entry.stats.size);
      let data: Buffer | undefined;
      if (sizeBytes <= streamThresholdBytes) {
        // Synchronous: a page-cached small file costs three syscalls here, where the promise
        // form costs four thread-pool round trips and their callbacks on this (busiest) thread.
        data = keptData ?? readFileSync(entry.sourcePath);
        // Workaround (reported to the library): chunks are deduplicated only against committed
        // ones, so copies of one content inside one batch (or in two workers' batches) are all
        // encoded and stored. A copy of content already seen in this run waits until the first
        // one is committed; then the library finds its chunks stored and skips their encoding.
        if (!isDeferred && data.length > 0) {
          const size = data.length;
          const firstPath = firstPathBySize.get(size);
          if (firstPath === undefined) {
            if (firstPathBySize.size < maxSeenContents) firstPathBySize.set(size, entry.sourcePath);
          } else {
            if (firstPath !== null) {
              firstPathBySize.set(size, null);
              let firstData: Buffer | undefined;
              try {
                firstData = readFileSync(firstPath);
              } catch {
                // Gone or unreadable since it was written: its copies are just not deferred.
              }
              if (firstData !== undefined && firstData.length === size) seenContent.add(contentKey(firstData));
            }
            const key = contentKey(data);
            if (seenContent.has(key)) {
              // The path is cleared now, in walk order; the copy is written there later.
              if (replace === 'remove-first') await queueOp({ kind: 'remove', path: engramPath });
              const copy: DeferredCopy = { entry, engramPath, replace: replace === 'remove-first' ? 'none' : replace, existing };
              if (keptCopyBytes + data.buffer.byteLength <= maxKeptCopyBytes) {
                // byteLength of the whole buffer: a small file's bytes are a slice of a shared 8 KiB pool.
                copy.data = data;
                keptCopyBytes += data.buffer.byteLength;
              }
              deferred.push(copy);
              return;
            }
            if (seenContent.size < maxSeenContents) seenContent.add(key);
          }
        }
      }
      if (!pooled && jobs > 1 && (explicitJobs || summary.writtenBytes >= poolAfterBytes || summary.writtenFiles >= poolAfterFiles)) {
        // Started only for real work: each worker's open of an existing engram costs a check of the file.
        // What this thread queued commits first: the workers' batches build on it.
        poolStarting = FileWritePool.start(options.engramFile, jobs, (files, bytes) => {
          progress.advance(files, bytes);
          // The workers' bulk commits never copy the WAL into the database file: this thread, idle
          // most of the run, does it after each batch, beside their work instead of on their time
          // (bench:peers corpus: ~0.36 s of worker CPU). A failed copy loses nothing (the WAL keeps
          // every commit) and the final sync reports I/O errors.
          engram.checkpoint().catch(() => {});
        });
        // Observed at the first dispatch (or in the cleanup); not an unhandled rejection meanwhile.
        poolStarting.catch(() => {});
        await batch.drain();
        pooled = true;
      }
      if (replace === 'remove-first') await queueOp({ kind: 'remove', path: engramPath });
      const job: FileWriteJob = { engramPath, sourcePath: entry.sourcePath, sizeBytes, mode: permissionBits(entry.stats), mtimeNs: entry.stats.mtimeNs, ...ownerOptions(entry.stats) };
      if (data !== undefined) job.data = data;
      if (replace === 'overwrite' && existing !== undefined) {
        // An existing file keeps its mode/owner through writeFile: set them after, then the mtime again.
        const fix: NonNullable<FileWriteJob['fixMetadata']> = {};
        if (existing.mode !== job.mode) fix.mode = job.mode;
        if (asRoot && (existing.uid !== Number(entry.stats.uid) || existing.gid !== Number(entry.stats.gid))) {
          fix.uid = Number(entry.stats.uid);
          fix.gid = Number(entry.stats.gid);
        }
        if (fix.mode !== undefined || fix.uid !== undefined) job.fixMetadata = fix;
      }
      summary.writtenFiles += 1;
      summary.writtenBytes += sizeBytes;
      if (pooled) {
        await queueOp({ kind: 'write', job }, sizeBytes);
        // A big file is streamed by the worker after its batch commits: send it off now.
        if (data === undefined) await dispatch();
        return;
      }
      if (data === undefined) {
        // Keep commit order: everything queued before this file lands first.
        await batch.drain();
        await retryWhileBusy(() => engram.writeFileFrom(engramPath, createReadStream(entry.sourcePath, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>, writeOptionsOf(job)));
        if (job.fixMetadata !== undefined) await retryWhileBusy(() => engram.transaction((tx) => fixFileMetadata(tx, job)));
      } else {
        await queueOp({ kind: 'write', job }, sizeBytes);
      }
      progress.advance(1, sizeBytes);
    };

    const syncEntry = async (entry: SourceEntry, engramPath: string, existing: DirectoryEntry | undefined, pending: PendingDirectory[]) => {
      const stats = entry.stats;
      if (stats.isDirectory()) {
        summary.directories += 1;
        const times = { engramPath, mtimeNs: stats.mtimeNs, isNew: false };
        directoryTimes.push(times);
        const directory: PendingDirectory = { engramPath, sourcePath: entry.sourcePath, children: undefined, isNew: false };
        if (existing?.type === 'directory') {
          const current = await engram.stat(engramPath);
          await syncMetadata(engramPath, stats, current);
          pending.push(directory);
          return;
        }
        if (existing !== undefined) {
          await queueOp({ kind: 'remove', path: engramPath });
          summary.removedEntries += 1;
        }
        await queueOp({ kind: 'mkdir', path: engramPath, mode: permissionBits(stats), mtimeNs: stats.mtimeNs, ...ownerOptions(stats) });
        directory.isNew = true;
        times.isNew = true;
        pending.push(directory);
        return;
      }
      if (stats.isSymbolicLink()) {
        summary.symlinks += 1;
        const target = readlinkSync(entry.sourcePath);
        if (existing?.type === 'symlink') {
          const [currentTarget, current] = await Promise.all([engram.readlink(engramPath), engram.stat(engramPath)]);
          const ownerMatches = !asRoot || (current.uid === Number(stats.uid) && current.gid === Number(stats.gid));
          if (currentTarget === target && current.mtimeNs === stats.mtimeNs && ownerMatches) return;
        }
        if (existing !== undefined) await queueOp({ kind: 'remove', path: engramPath });
        await queueOp({ kind: 'symlink', path: engramPath, target, mtimeNs: stats.mtimeNs, ...ownerOptions(stats) });
        return;
      }
      if (stats.isFile()) {
        summary.files += 1;
        if (stats.nlink > 1n) {
          const inodeKey = `${stats.dev}:${stats.ino}`;
          const firstPath = firstPathByInode.get(inodeKey);
          if (firstPath !== undefined) {
            hardLinks.push({ engramPath, firstPath });
            progress.advance(1, 0);
            return;
          }
          firstPathByInode.set(inodeKey, engramPath);
        }
        if (existing?.type === 'file') {
          const current = await engram.stat(engramPath);
          // A path that shares its inode with other paths in the engram but not in the source must be cut loose before writing.
          const mustUnlink = current.nlink > 1 && stats.nlink === 1n;
          if (!mustUnlink && current.size === Number(stats.size) && current.mtimeNs === stats.mtimeNs) {
            await syncMetadata(engramPath, stats, current);
            summary.unchangedFiles += 1;
            progress.advance(1, Number(stats.size));
            return;
          }
          await writeRegularFile(entry, engramPath, current.nlink > 1 ? 'remove-first' : 'overwrite', current);
          return;
        }
        if (existing !== undefined) {
          summary.removedEntries += 1;
          await writeRegularFile(entry, engramPath, 'remove-first', undefined);
          return;
        }
        await writeRegularFile(entry, engramPath, 'none', undefined);
        return;
      }
      summary.skippedEntries += 1;
      warn(`embrfs: skipped, not a regular file, directory or symlink (${entry.sourcePath})`);
    };

    const syncDirectory = async (directory: PendingDirectory, children: SourceEntry[], pending: PendingDirectory[]) => {
      const existingByName = new Map<string, DirectoryEntry>();
      if (!directory.isNew) {
        for (const entry of await engram.readdir(directory.engramPath)) existingByName.set(entry.name, entry);
      }
      const sourceNames = new Set(children.map((child) => child.name));
      for (const [name] of existingByName) {
        if (sourceNames.has(name)) continue;
        const engramPath = childPath(directory.engramPath, name);
        await queueOp({ kind: 'remove', path: engramPath });
        summary.removedEntries += 1;
      }
      for (const child of children) {
        await syncEntry(child, childPath(directory.engramPath, child.name), existingByName.get(child.name), pending);
      }
    };

    // The root: either the single source directory itself, or a virtual directory of the sources.
    let rootChildrenEntries = rootChildren;
    if (rootSource !== undefined) {
      rootChildrenEntries = listSource(rootSource.sourcePath, warn, ownFiles);
      const current = await engram.stat('/');
      await syncMetadata('/', rootSource.stats, current);
      // The root of an engram created by this run is as new as any directory created in it.
      directoryTimes.push({ engramPath: '/', mtimeNs: rootSource.stats.mtimeNs, isNew: freshEngram });
    }
    // Depth-first with an explicit stack: memory grows with depth x width, never with file sizes.
    const stack: PendingDirectory[] = [{ engramPath: '/', sourcePath: '', children: rootChildrenEntries, isNew: false }];
    while (stack.length > 0) {
      const directory = stack.pop();
      if (directory === undefined) break;
      const children = directory.children ?? listSource(directory.sourcePath, warn, ownFiles);
      progress.addTotal(
        children.filter((child) => child.stats.isFile()).length,
        children.reduce((sum, child) => sum + (child.stats.isFile() ? Number(child.stats.size) : 0), 0),
      );
      const discovered: PendingDirectory[] = [];
      await syncDirectory(directory, children, discovered);
      for (let index = discovered.length - 1; index >= 0; index -= 1) stack.push(discovered[index]);
    }
    // Copies of content seen earlier in this run: now that the first ones are committed (drain
    // first), their chunks are found stored and cost no encoding. Waiting per batch of the first
    // copy instead of for both workers was tried: no time gain measured, and before the library's
    // bulk open it grew the similarity index rows (docs/design/cli.md, item 9).
    if (deferred.length > 0) {
      await dispatch();
      await (await readyPool())?.drain();
      await batch.drain();
      for (const copy of deferred) await writeRegularFile(copy.entry, copy.engramPath, copy.replace, copy.existing, true, copy.data);
      deferred.length = 0;
    }

    // Everything below reads the engram's state; it is made of commits only.
    const settle = async () => {
      await dispatch();
      await (await readyPool())?.drain();
      await batch.drain();
    };
    // Hard links: every first path exists once everything queued is committed.
    if (hardLinks.length > 0) await settle();
    let linksQueued = false;
    for (const { engramPath, firstPath } of hardLinks) {
      summary.hardLinks += 1;
      let linked = false;
      try {
        const [current, first] = await Promise.all([engram.stat(engramPath), engram.stat(firstPath)]);
        linked = current.ino === first.ino;
      } catch (error) {
        if (!isEmbrError(error, 'NOT_FOUND')) throw error;
      }
      if (linked) continue;
      await queueOp({ kind: 'link', path: engramPath, firstPath });
      linksQueued = true;
    }

    // Directory mtimes last: creating and removing entries above changed them. A directory
    // created in this run is set without a look (its entries changed it); the others are compared
    // with the engram once everything before is committed. The ops go where everything else went
    // (the pool's batches commit in order), so no barrier is needed before them.
    if (linksQueued || directoryTimes.some((times) => !times.isNew)) await settle();
    for (const { engramPath, mtimeNs, isNew } of directoryTimes) {
      if (!isNew) {
        const current = await engram.stat(engramPath);
        if (current.mtimeNs === mtimeNs) continue;
      }
      await queueOp({ kind: 'metadata', path: engramPath, mtimeNs });
    }
    await settle();
    const closing = await readyPool();
    if (closing !== undefined) {
      summary.commits += closing.commits;
      pool = undefined;
      poolStarting = undefined;
      await closing.close();
    }

    // Workaround (reported to the library): a commit stores a chunk pack even when every chunk in
    // it turned out to be a duplicate of one committed first. The deferral of copies above avoids
    // most of it; `--compact` frees the rest with a compaction that keeps all history.
    if (options.compact === true) {
      const report = await retryWhileBusy(() => engram.compact({ retainCommits: Number.MAX_SAFE_INTEGER }));
      summary.compactedBytes = report.bytesBefore - report.bytesAfter;
    }
    // Every commit of this run, the workers' too (they share the WAL), is durable once this returns.
    await engram.sync();
  } finally {
    progress.stop();
    const leftover = pool ?? (await poolStarting?.catch(() => undefined));
    if (leftover !== undefined) await leftover.close().catch(() => {});
    // On success everything is drained already; after a failure, queued work is dropped, not committed.
    await batch.abandon();
    await engram.close();
  }
  summary.commits += batch.commits;
  summary.elapsedMs = Date.now() - startMs;
  return summary;
}
