/**
 * `embrfs extract`: writes an engram's tree (or a snapshot, or a subtree) into a directory,
 * bit-perfect, with modes, times, owners (as root), symlinks and hard links.
 *
 * Safety rules (docs/design/cli.md), whatever names or link targets the engram holds:
 * 1. The output directory must be new or empty, so the only links in it are the ones we make.
 * 2. Every name is checked on the way out: not empty, not `.` or `..`, no `/` or NUL, at most
 *    255 bytes. A bad name is skipped and reported (exit 1); nothing is written for it.
 * 3. Files are created with O_CREAT|O_EXCL|O_NOFOLLOW: an existing entry (or link) at the path
 *    is an error, never something to write through.
 * 4. Symlinks are created last, after every file, hard link and directory exists, and nothing
 *    is written through a path after that except metadata of directories we made, whose
 *    ancestors are all real directories (a symlink never has children in an engram tree).
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, chown, link, lchown, lstat, lutimes, mkdir, open, readdir, symlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Engram, ReadOptions, Stat } from '../fs/api.js';
import { CliFailure, ExitCode } from './failure.js';
import { openForCli } from './session.js';
import { needsExactTime, secondsOf, setExactTimes, type ExactTime } from './exact-times.js';
import { createProgress } from './progress.js';

/** Files written at once: enough to keep decoding and disk busy, few enough to bound memory. */
const fileConcurrency = 8;
/** Files up to this size are read whole (one library call, one write); bigger ones stream. */
const wholeReadBytes = 1024 * 1024;
/** Write size when streaming a big file. */
const coalesceBytes = 1024 * 1024;

export interface ExtractOptions {
  engramFile: string;
  outDir: string;
  snapshot?: string;
  /** Only this engram path and what is below it (kept at its full path under outDir). */
  pathPrefix?: string;
  quiet: boolean;
  /** An engram already open (tests inject a crafted one); it is not closed. Default: open `engramFile` read-only. */
  engram?: Engram;
}

export interface ExtractSummary {
  files: number;
  directories: number;
  symlinks: number;
  hardLinks: number;
  bytes: number;
  /** Entries refused because their names or types were unsafe. */
  refusedEntries: string[];
  elapsedMs: number;
}

/**
 * Why a name from an engram cannot become a local name, or undefined if it can.
 *
 * @example
 * ```ts
 * unsafeNameReason('..'); // "'..' as a name"
 * ```
 */
export function unsafeNameReason(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name === '.' || name === '..') return `'${name}' as a name`;
  if (name.includes('/')) return 'slash in a name';
  if (name.includes('\0')) return 'NUL in a name';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'name over 255 bytes';
  return undefined;
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** Splits a normalized engram path into checked components. */
function prefixComponents(pathPrefix: string): string[] {
  if (!pathPrefix.startsWith('/')) {
    throw new CliFailure(ExitCode.badInput, 'the --path prefix must be absolute', pathPrefix, "start it with '/' as shown by 'embrfs ls'");
  }
  const components = pathPrefix.split('/').filter((component) => component.length > 0);
  for (const component of components) {
    const reason = unsafeNameReason(component);
    if (reason !== undefined) throw new CliFailure(ExitCode.badInput, `bad --path prefix: ${reason}`, pathPrefix, 'give a plain absolute path');
  }
  return components;
}

async function prepareOutDir(outDir: string): Promise<void> {
  let isDirectory = false;
  try {
    const stats = await lstat(outDir);
    if (!stats.isDirectory()) throw new CliFailure(ExitCode.badInput, 'output exists and is not a directory', outDir, 'give a new or empty directory');
    isDirectory = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (isDirectory) {
    if ((await readdir(outDir)).length > 0) {
      throw new CliFailure(ExitCode.badInput, 'output directory is not empty', outDir, 'extract into a new or empty directory');
    }
    return;
  }
  await mkdir(outDir, { recursive: true });
}

/** A bounded pool: `run` waits while `limit` tasks are in flight; failures surface at `drain`. */
class TaskPool {
  readonly #limit: number;
  readonly #running = new Set<Promise<void>>();
  #failure: unknown;
  #failed = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  async run(task: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.#limit) await Promise.race(this.#running);
    if (this.#failed) throw this.#failure;
    const running: Promise<void> = task()
      .catch((error: unknown) => {
        if (!this.#failed) {
          this.#failed = true;
          this.#failure = error;
        }
      })
      .finally(() => this.#running.delete(running));
    this.#running.add(running);
  }

  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    if (this.#failed) throw this.#failure;
  }
}

/**
 * Extracts and returns what was written.
 *
 * @example
 * ```ts
 * const summary = await extract({ engramFile: 'photos.engram', outDir: './restored', quiet: true });
 * if (summary.refusedEntries.length > 0) console.error(summary.refusedEntries);
 * ```
 */
export async function extract(options: ExtractOptions): Promise<ExtractSummary> {
  const startMs = Date.now();
  const asRoot = process.getuid?.() === 0;
  const outDir = resolve(options.outDir);
  const components = prefixComponents(options.pathPrefix ?? '/');
  const engram: Engram = options.engram ?? (await openForCli(options.engramFile, { readOnly: true }));
  const readOptions: ReadOptions = options.snapshot === undefined ? {} : { snapshot: options.snapshot };
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, hardLinks: 0, bytes: 0, refusedEntries: [], elapsedMs: 0 };
  const progress = createProgress({ label: 'extract', quiet: options.quiet });
  const pool = new TaskPool(fileConcurrency);
  const exactTimes: ExactTime[] = [];
  // umask 0: modes come from the engram, as with tar -p; restored when extract ends.
  const savedUmask = process.umask(0);
  try {
    // Validate the engram side first so a missing prefix or snapshot creates nothing.
    const prefixPath = components.length === 0 ? '/' : `/${components.join('/')}`;
    const prefixStat = await engram.stat(prefixPath, readOptions);
    if (options.pathPrefix === undefined && options.snapshot === undefined) {
      const stats = await engram.stats();
      progress.addTotal(stats.files, stats.logicalBytes);
    }
    await prepareOutDir(outDir);

    const directories: { localPath: string; stat: Stat }[] = [];
    const symlinks: { localPath: string; target: string; stat: Stat }[] = [];
    const hardLinks: { localPath: string; firstLocalPath: string }[] = [];
    const firstLocalPathByIno = new Map<number, string>();

    const setTimes = async (localPath: string, stat: Stat) => {
      await lutimes(localPath, secondsOf(stat.atimeNs), secondsOf(stat.mtimeNs));
      if (needsExactTime(stat.mtimeNs) || needsExactTime(stat.atimeNs)) exactTimes.push({ path: localPath, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
    };

    const ownUid = process.getuid?.() ?? -1;
    const ownGid = process.getgid?.() ?? -1;
    const writeAll = async (handle: FileHandle, data: Uint8Array) => {
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await handle.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
    };
    const writeFile = async (engramPath: string, localPath: string, stat: Stat) => {
      // A new file is owned by us; chown only when the engram says otherwise (as root).
      const needsChown = asRoot && (stat.uid !== ownUid || stat.gid !== ownGid);
      // With umask 0 (set for the whole extract) the final permission bits can be given at
      // creation, saving a chmod per file; set-id and sticky bits get an explicit chmod.
      const createMode = needsChown ? 0o600 : stat.mode & 0o777;
      const needsChmod = needsChown || (stat.mode & 0o7000) !== 0;
      // O_EXCL|O_NOFOLLOW: never write through anything that already sits at this path.
      const handle = await open(localPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, createMode);
      let writtenBytes = 0;
      try {
        if (stat.size <= wholeReadBytes) {
          const { data } = await engram.readFile(engramPath, readOptions);
          await writeAll(handle, data);
          writtenBytes = data.length;
          progress.advance(0, data.length);
        } else {
          // Coalesce the chunk-sized pieces into big writes: one syscall per MiB, not per chunk.
          const buffer = new Uint8Array(coalesceBytes);
          let filled = 0;
          for await (const piece of engram.createReadStream(engramPath, readOptions)) {
            let consumed = 0;
            while (consumed < piece.length) {
              const take = Math.min(piece.length - consumed, buffer.length - filled);
              buffer.set(piece.subarray(consumed, consumed + take), filled);
              filled += take;
              consumed += take;
              if (filled === buffer.length) {
                await writeAll(handle, buffer);
                filled = 0;
              }
            }
            writtenBytes += piece.length;
            progress.advance(0, piece.length);
          }
          if (filled > 0) await writeAll(handle, buffer.subarray(0, filled));
        }
        if (writtenBytes !== stat.size) {
          throw new CliFailure(ExitCode.failedCheck, `read ${writtenBytes} bytes but the file has ${stat.size}`, engramPath, "run 'embrfs verify'");
        }
        // chown before chmod: chown clears set-id bits.
        if (needsChown) await handle.chown(stat.uid, stat.gid);
        if (needsChmod) await handle.chmod(stat.mode);
        await handle.utimes(secondsOf(stat.atimeNs), secondsOf(stat.mtimeNs));
      } finally {
        await handle.close();
      }
      if (needsExactTime(stat.mtimeNs) || needsExactTime(stat.atimeNs)) exactTimes.push({ path: localPath, atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs });
      summary.files += 1;
      summary.bytes += writtenBytes;
      progress.advance(1, 0);
    };

    const visit = async (engramPath: string, localPath: string, stat: Stat, stack: { engramPath: string; localPath: string }[]) => {
      if (stat.type === 'directory') {
        if (engramPath !== '/') await mkdir(localPath, { mode: 0o700 });
        directories.push({ localPath, stat });
        stack.push({ engramPath, localPath });
        return;
      }
      if (stat.type === 'symlink') {
        symlinks.push({ localPath, target: await engram.readlink(engramPath, readOptions), stat });
        return;
      }
      if (stat.nlink > 1) {
        const first = firstLocalPathByIno.get(stat.ino);
        if (first !== undefined) {
          hardLinks.push({ localPath, firstLocalPath: first });
          return;
        }
        firstLocalPathByIno.set(stat.ino, localPath);
      }
      await pool.run(() => writeFile(engramPath, localPath, stat));
    };

    // Ancestors of the prefix: real directories with their own metadata.
    let ancestorEngramPath = '/';
    let ancestorLocalPath = outDir;
    const rootStat = await engram.stat('/', readOptions);
    directories.push({ localPath: outDir, stat: rootStat });
    for (const component of components.slice(0, -1)) {
      ancestorEngramPath = childPath(ancestorEngramPath, component);
      ancestorLocalPath = join(ancestorLocalPath, component);
      await mkdir(ancestorLocalPath, { mode: 0o700 });
      directories.push({ localPath: ancestorLocalPath, stat: await engram.stat(ancestorEngramPath, readOptions) });
    }
    const stack: { engramPath: string; localPath: string }[] = [];
    if (components.length === 0) {
      stack.push({ engramPath: '/', localPath: outDir });
    } else {
      await visit(prefixPath, join(outDir, ...components), prefixStat, stack);
    }
    while (stack.length > 0) {
      const directory = stack.pop();
      if (directory === undefined) break;
      const entries = (await engram.readdir(directory.engramPath, readOptions)).sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
      const namesSeen = new Set<string>();
      for (const entry of entries) {
        const reason = unsafeNameReason(entry.name);
        const engramPath = childPath(directory.engramPath, entry.name);
        if (reason !== undefined) {
          summary.refusedEntries.push(`${JSON.stringify(engramPath)}: ${reason}`);
          continue;
        }
        // A damaged or crafted engram may list one name twice (say a symlink, then a file):
        // only the first is written, so a later entry can never land on or through an earlier one.
        if (namesSeen.has(entry.name)) {
          summary.refusedEntries.push(`${JSON.stringify(engramPath)}: duplicate name`);
          continue;
        }
        namesSeen.add(entry.name);
        const stat = await engram.stat(engramPath, readOptions);
        await visit(engramPath, join(directory.localPath, entry.name), stat, stack);
      }
    }
    await pool.drain();

    for (const { localPath, firstLocalPath } of hardLinks) {
      await link(firstLocalPath, localPath);
      summary.hardLinks += 1;
      summary.files += 1;
      progress.advance(1, 0);
    }
    // Symlinks last: from here on nothing is created below outDir.
    for (const { localPath, target, stat } of symlinks) {
      await symlink(target, localPath);
      if (asRoot) await lchown(localPath, stat.uid, stat.gid);
      await setTimes(localPath, stat);
      summary.symlinks += 1;
    }
    // Directories deepest first, so setting a child's times never disturbs its parent's.
    for (let index = directories.length - 1; index >= 0; index -= 1) {
      const { localPath, stat } = directories[index];
      if (asRoot) await chown(localPath, stat.uid, stat.gid);
      await chmod(localPath, stat.mode);
      await setTimes(localPath, stat);
    }
    summary.directories = directories.length;
    if (!(await setExactTimes(exactTimes))) {
      process.stderr.write(`embrfs: times restored to the microsecond only (${outDir}): install python3 or coreutils touch for nanoseconds\n`);
    }
  } finally {
    progress.stop();
    await pool.drain().catch(() => {});
    process.umask(savedUmask);
    if (options.engram === undefined) await engram.close();
  }
  summary.elapsedMs = Date.now() - startMs;
  return summary;
}
