/**
 * Commands that change the live tree one path at a time: `put`, `rm`, `mv`, `mkdir`.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Transaction, WriteOptions } from '../fs/api.js';
import { CliFailure, ExitCode, type ExitCodeValue } from './failure.js';
import { writeOut } from './output.js';
import { withEngram } from './session.js';

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/**
 * `embrfs put`: streams a local file (or `-` for stdin) into the engram. `--if-version N`
 * writes only if the file's current version is N (0: only if it does not exist yet).
 * Prints the new version.
 *
 * @example
 * ```ts
 * await putCommand({ engramFile: 'data.engram', localFile: 'notes.txt', path: '/notes.txt', ifVersion: 3 });
 * ```
 */
export async function putCommand(options: { engramFile: string; localFile: string; path: string; ifVersion?: number }): Promise<ExitCodeValue> {
  const writeOptions: WriteOptions = {};
  if (options.localFile !== '-') {
    const local = await stat(options.localFile);
    if (!local.isFile()) throw new CliFailure(ExitCode.badInput, 'not a regular file', options.localFile, 'give a file (or - for stdin)');
    writeOptions.mode = local.mode & 0o7777;
  }
  if (options.ifVersion === 0) writeOptions.exclusive = true;
  else if (options.ifVersion !== undefined) writeOptions.expectedVersion = options.ifVersion;
  return withEngram(options.engramFile, {}, async (engram) => {
    const source = options.localFile === '-' ? process.stdin : createReadStream(options.localFile, { highWaterMark: 1024 * 1024 });
    const version = await engram.writeFileFrom(options.path, source as AsyncIterable<Uint8Array>, writeOptions);
    await writeOut(`${version}\n`);
    return ExitCode.success;
  });
}

async function removeTree(tx: Transaction, path: string): Promise<void> {
  const current = await tx.stat(path);
  if (current.type === 'directory') {
    for (const entry of await tx.readdir(path)) await removeTree(tx, childPath(path, entry.name));
    await tx.rmdir(path);
  } else {
    await tx.deleteFile(path);
  }
}

/**
 * `embrfs rm`: removes files and symlinks; `-r` removes directories with their contents, `-d`
 * empty directories. All paths go in one atomic commit.
 *
 * @example
 * ```ts
 * await removeCommand({ engramFile: 'data.engram', paths: ['/old'], recursive: true, directories: false });
 * ```
 */
export async function removeCommand(options: { engramFile: string; paths: string[]; recursive: boolean; directories: boolean; ifVersion?: number }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, {}, async (engram) => {
    await engram.transaction(async (tx) => {
      for (const path of options.paths) {
        const current = await tx.stat(path);
        if (current.type === 'directory') {
          if (options.recursive) await removeTree(tx, path);
          else if (options.directories) await tx.rmdir(path);
          else throw new CliFailure(ExitCode.badInput, 'is a directory', path, 'use rm -r (with contents) or rm -d (empty)');
        } else {
          await tx.deleteFile(path, options.ifVersion === undefined ? {} : { expectedVersion: options.ifVersion });
        }
      }
    });
    return ExitCode.success;
  });
}

/**
 * `embrfs mv`: atomic rename, replacing an existing target unless `--no-clobber`.
 *
 * @example
 * ```ts
 * await moveCommand({ engramFile: 'data.engram', from: '/a', to: '/b', noReplace: false });
 * ```
 */
export async function moveCommand(options: { engramFile: string; from: string; to: string; noReplace: boolean }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, {}, async (engram) => {
    await engram.rename(options.from, options.to, { noReplace: options.noReplace });
    return ExitCode.success;
  });
}

/**
 * `embrfs mkdir`: creates directories (`-p`: with parents, no error if present).
 *
 * @example
 * ```ts
 * await mkdirCommand({ engramFile: 'data.engram', paths: ['/a/b'], parents: true });
 * ```
 */
export async function mkdirCommand(options: { engramFile: string; paths: string[]; parents: boolean; mode?: number }): Promise<ExitCodeValue> {
  return withEngram(options.engramFile, {}, async (engram) => {
    await engram.transaction(async (tx) => {
      for (const path of options.paths) {
        await tx.mkdir(path, { parents: options.parents, ...(options.mode === undefined ? {} : { mode: options.mode }) });
      }
    });
    return ExitCode.success;
  });
}
