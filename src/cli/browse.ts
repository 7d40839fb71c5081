/**
 * Read-only commands: `ls`, `cat`, `info`, `log`.
 */
import type { DirectoryEntry, Engram, HistoryEntry, ReadOptions, Stat } from '../fs/api.js';
import { isEmbrError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from './failure.js';
import { formatBytes, formatTimeNs, toJson, writeOut } from './output.js';
import { withEngram } from './session.js';

function readOptionsOf(snapshot: string | undefined): ReadOptions {
  return snapshot === undefined ? {} : { snapshot };
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/**
 * `drwxr-xr-x` from a type and permission bits (with set-id and sticky bits like ls).
 *
 * @example
 * ```ts
 * modeString('file', 0o4755); // '-rwsr-xr-x'
 * ```
 */
export function modeString(type: Stat['type'], mode: number): string {
  const typeChar = type === 'directory' ? 'd' : type === 'symlink' ? 'l' : '-';
  const triplet = (shift: number, special: boolean, specialChar: string) => {
    const bits = (mode >> shift) & 7;
    const execute = bits & 1 ? (special ? specialChar : 'x') : special ? specialChar.toUpperCase() : '-';
    return `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${execute}`;
  };
  return `${typeChar}${triplet(6, (mode & 0o4000) !== 0, 's')}${triplet(3, (mode & 0o2000) !== 0, 's')}${triplet(0, (mode & 0o1000) !== 0, 't')}`;
}

interface ListedEntry {
  name: string;
  path: string;
  type: Stat['type'];
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  version: number;
  mtimeNs: bigint;
  target?: string;
}

async function describeEntry(engram: Engram, path: string, name: string, readOptions: ReadOptions): Promise<ListedEntry> {
  const stat = await engram.stat(path, readOptions);
  const listed: ListedEntry = {
    name,
    path,
    type: stat.type,
    ino: stat.ino,
    mode: stat.mode,
    uid: stat.uid,
    gid: stat.gid,
    size: stat.size,
    nlink: stat.nlink,
    version: stat.version,
    mtimeNs: stat.mtimeNs,
  };
  if (stat.type === 'symlink') listed.target = await engram.readlink(path, readOptions);
  return listed;
}

/**
 * `embrfs ls`: one name per line, `-l` for a long listing, `--json` for one JSON document.
 *
 * @example
 * ```ts
 * await listCommand({ engramFile: 'data.engram', path: '/', long: true, json: false });
 * ```
 */
export async function listCommand(options: { engramFile: string; path: string; long: boolean; json: boolean; snapshot?: string }): Promise<ExitCodeValue> {
  const readOptions = readOptionsOf(options.snapshot);
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    const stat = await engram.stat(options.path, readOptions);
    let entries: ListedEntry[];
    if (stat.type === 'directory') {
      const names: DirectoryEntry[] = (await engram.readdir(options.path, readOptions)).sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
      entries = [];
      for (const entry of names) entries.push(await describeEntry(engram, childPath(options.path, entry.name), entry.name, readOptions));
    } else {
      entries = [await describeEntry(engram, options.path, options.path.slice(options.path.lastIndexOf('/') + 1), readOptions)];
    }
    if (options.json) {
      await writeOut(`${toJson({ path: options.path, snapshot: options.snapshot ?? null, entries })}\n`);
      return ExitCode.success;
    }
    if (!options.long) {
      for (const entry of entries) await writeOut(`${entry.name}\n`);
      return ExitCode.success;
    }
    const sizeWidth = Math.max(1, ...entries.map((entry) => String(entry.size).length));
    for (const entry of entries) {
      const link = entry.target === undefined ? '' : ` -> ${entry.target}`;
      await writeOut(`${modeString(entry.type, entry.mode)} ${String(entry.nlink).padStart(2)} ${entry.uid} ${entry.gid} ${String(entry.size).padStart(sizeWidth)} ${formatTimeNs(entry.mtimeNs)} ${entry.name}${link}\n`);
    }
    return ExitCode.success;
  });
}

/**
 * `embrfs cat`: streams a file's bytes to stdout with bounded memory.
 *
 * @example
 * ```ts
 * await catCommand({ engramFile: 'data.engram', path: '/notes.txt' });
 * ```
 */
export async function catCommand(options: { engramFile: string; path: string; snapshot?: string }): Promise<ExitCodeValue> {
  const readOptions = readOptionsOf(options.snapshot);
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    // stat first so a directory or missing path fails before any byte is written.
    const stat = await engram.stat(options.path, readOptions);
    if (stat.type === 'directory') {
      await engram.readFile(options.path, readOptions); // raises the library's IS_DIRECTORY error
    }
    for await (const piece of engram.createReadStream(options.path, readOptions)) await writeOut(piece);
    return ExitCode.success;
  });
}

/**
 * `embrfs info`: what the engram holds and what it costs.
 *
 * @example
 * ```ts
 * await infoCommand({ engramFile: 'data.engram', json: true });
 * ```
 */
export async function infoCommand(options: { engramFile: string; json: boolean }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    const stats = await engram.stats();
    const snapshots = await engram.listSnapshots();
    const storedRatio = stats.logicalBytes === 0 ? 0 : stats.storedBytes / stats.logicalBytes;
    const correctionOverhead = stats.logicalBytes === 0 ? 0 : stats.correctionBytes / stats.logicalBytes;
    const document = {
      file: options.engramFile,
      files: stats.files,
      directories: stats.directories,
      symlinks: stats.symlinks,
      logicalBytes: stats.logicalBytes,
      storedBytes: stats.storedBytes,
      storedRatio,
      uniqueChunkBytes: stats.uniqueChunkBytes,
      dedupRatio: stats.dedupRatio,
      correctionBytes: stats.correctionBytes,
      correctionOverhead,
      vectorByteFraction: stats.vectorByteFraction,
      chunks: stats.chunks,
      commits: stats.commits,
      profile: stats.profile,
      chunkBytes: stats.chunkBytes,
      rootVector: stats.rootVector,
      indexBytes: stats.indexBytes,
      snapshotCount: stats.snapshots,
      snapshots: snapshots.map((snapshot) => ({ name: snapshot.name, commit: snapshot.commit, createdNs: snapshot.createdNs })),
    };
    if (options.json) {
      await writeOut(`${toJson(document)}\n`);
      return ExitCode.success;
    }
    const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;
    const lines = [
      ['engram', options.engramFile],
      ['files', String(stats.files)],
      ['directories', String(stats.directories)],
      ['symlinks', String(stats.symlinks)],
      ['logical bytes', `${formatBytes(stats.logicalBytes)} (${stats.logicalBytes} B)`],
      ['stored bytes', `${formatBytes(stats.storedBytes)} (${stats.storedBytes} B), ${storedRatio.toFixed(3)} x logical`],
      ['dedup ratio', `${stats.dedupRatio.toFixed(3)} (unique chunk bytes ${formatBytes(stats.uniqueChunkBytes)})`],
      ['corrections', `${formatBytes(stats.correctionBytes)}, overhead ${percent(correctionOverhead)} of logical`],
      ['from vectors', `${percent(stats.vectorByteFraction)} of chunk bytes decode from vectors alone`],
      ['chunks', `${stats.chunks} (${stats.chunkBytes} B each, profile ${stats.profile})`],
      ['commits', String(stats.commits)],
      ['root vector', `${stats.rootVector.nonZeroCount} non-zeros, ${formatBytes(stats.rootVector.bytes)}`],
      ['index', `${formatBytes(stats.indexBytes)} similarity index (${stats.storedBytes === 0 ? 0 : ((stats.indexBytes / stats.storedBytes) * 100).toFixed(1)}% of stored)`],
      ['snapshots', snapshots.length === 0 ? 'none' : snapshots.map((snapshot) => `${snapshot.name}@${snapshot.commit}`).join(', ')],
    ];
    for (const [label, value] of lines) await writeOut(`${label.padEnd(14)}${value}\n`);
    return ExitCode.success;
  });
}

interface LoggedEntry extends HistoryEntry {
  path: string;
}

async function collectHistories(engram: Engram, directory: string, into: LoggedEntry[], fileBudget: { remaining: number }): Promise<void> {
  for (const entry of await engram.readdir(directory)) {
    const path = childPath(directory, entry.name);
    if (entry.type === 'directory') {
      await collectHistories(engram, path, into, fileBudget);
      continue;
    }
    if (fileBudget.remaining <= 0) return;
    fileBudget.remaining -= 1;
    for (const item of await engram.history(path)) into.push({ path, ...item });
  }
}

/**
 * `embrfs log`: the history of one path, or (without a path) the newest changes across the
 * live tree, newest first.
 *
 * @example
 * ```ts
 * await logCommand({ engramFile: 'data.engram', path: '/notes.txt', json: false, limit: 20 });
 * ```
 */
export async function logCommand(options: { engramFile: string; path?: string; json: boolean; limit: number }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    const entries: LoggedEntry[] = [];
    if (options.path !== undefined) {
      let history: HistoryEntry[];
      try {
        history = await engram.history(options.path);
      } catch (error) {
        if (isEmbrError(error, 'IS_DIRECTORY')) {
          history = [];
          await collectHistories(engram, options.path, entries, { remaining: 100_000 });
        } else {
          throw error;
        }
      }
      for (const item of history) entries.push({ path: options.path, ...item });
    } else {
      // Bounded: the walk reads the histories of at most this many files.
      await collectHistories(engram, '/', entries, { remaining: 100_000 });
    }
    entries.sort((left, right) => right.commit - left.commit || (left.path < right.path ? -1 : 1));
    const shown = entries.slice(0, options.limit);
    if (options.json) {
      await writeOut(`${toJson({ path: options.path ?? null, entries: shown })}\n`);
      return ExitCode.success;
    }
    for (const item of shown) {
      const sha = item.sha256 === null ? '-'.padEnd(16) : item.sha256.slice(0, 16);
      await writeOut(`commit ${String(item.commit).padStart(6)}  ${formatTimeNs(item.timeNs)}  ${item.kind.padEnd(10)} ${String(item.size).padStart(10)} B  ${sha}  ${item.path}\n`);
    }
    return ExitCode.success;
  });
}
