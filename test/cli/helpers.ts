/**
 * Helpers of the CLI end-to-end tests: run the built `embrfs` as a user would, generate a tree
 * with every case a faithful copy must keep, and compare two trees entry by entry.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/embrfs.js ...args` from the repository root. */
export function runCli(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['bin/embrfs.js', ...args],
      { cwd: process.cwd(), maxBuffer: 256 * 1024 * 1024, timeout: options.timeoutMs ?? 180_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 99;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Runs any program and returns its exit code and output. */
export function runProgram(program: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(program, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 99;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Deterministic pseudo-random bytes (SHA-256 counter stream), so failures reproduce. */
export function pseudoRandomBytes(seed: string, lengthBytes: number): Buffer {
  const output = Buffer.alloc(lengthBytes);
  let offset = 0;
  for (let counter = 0; offset < lengthBytes; counter += 1) {
    const block = createHash('sha256').update(`${seed}:${counter}`).digest();
    offset += block.copy(output, offset);
  }
  return output;
}

/** Chunk size the tests use for size edge cases (the library default). */
export const chunkBytes = 4096;

/**
 * Builds a tree with names with spaces, unicode, a 255-byte name, deep nesting, sizes 0, 1,
 * chunk-1, chunk, chunk+1 and several MiB, empty directories, symlinks (relative, absolute,
 * dangling, to a directory), hard links (also across directories), modes and, as root, owners.
 */
export async function makeTree(root: string, options: { bigFileBytes: number }): Promise<void> {
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'name with spaces.txt'), 'spaces\n');
  await writeFile(join(root, 'ünïcödé 日本語 ✓.txt'), 'unicode\n');
  await writeFile(join(root, `${'n'.repeat(251)}.bin`), 'long name\n');
  for (const size of [0, 1, chunkBytes - 1, chunkBytes, chunkBytes + 1]) {
    await writeFile(join(root, `size-${size}.bin`), pseudoRandomBytes(`size-${size}`, size));
  }
  await writeFile(join(root, 'big.bin'), pseudoRandomBytes('big', options.bigFileBytes));
  // Compressible and repetitive content: dedup inside one file and across files.
  await writeFile(join(root, 'text.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(2000));
  await writeFile(join(root, 'text-copy.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(2000));
  let deep = root;
  for (let level = 0; level < 40; level += 1) deep = join(deep, `level-${level}`);
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'deep.txt'), 'bottom\n');
  await mkdir(join(root, 'empty-dir'));
  await mkdir(join(root, 'empty-dir-2', 'nested-empty'), { recursive: true });
  await mkdir(join(root, 'sub'));
  await writeFile(join(root, 'sub', 'target.txt'), 'link target\n');
  await symlink('target.txt', join(root, 'sub', 'relative-link'));
  await symlink('/etc/passwd', join(root, 'absolute-link'));
  await symlink('does/not/exist', join(root, 'dangling-link'));
  await symlink('sub', join(root, 'dir-link'));
  await writeFile(join(root, 'hard-a.txt'), 'hard linked\n');
  await link(join(root, 'hard-a.txt'), join(root, 'hard-b.txt'));
  await link(join(root, 'hard-a.txt'), join(root, 'sub', 'hard-c.txt'));
  await writeFile(join(root, 'private.txt'), 'secret\n', { mode: 0o600 });
  await chmod(join(root, 'private.txt'), 0o600);
  await writeFile(join(root, 'script.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'script.sh'), 0o755);
  await writeFile(join(root, 'setuid'), 'x');
  await chmod(join(root, 'setuid'), 0o4750);
  await chmod(join(root, 'sub'), 0o750);
  if (process.getuid?.() === 0) {
    await chown(join(root, 'private.txt'), 1234, 5678);
    await chmod(join(root, 'private.txt'), 0o600);
    await chown(join(root, 'sub', 'relative-link'), 4321, 8765).catch(() => {});
  }
}

interface EntrySnapshot {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  nlink: bigint;
  target?: string;
  /** Index of the hard-link group inside the tree (by first path), so groups compare across trees. */
  linkGroup?: string;
}

async function snapshotTree(root: string): Promise<Map<string, EntrySnapshot>> {
  const result = new Map<string, EntrySnapshot>();
  const firstPathByIno = new Map<bigint, string>();
  const walk = async (directory: string) => {
    for (const name of (await readdir(directory)).sort()) {
      const path = join(directory, name);
      const stats = await lstat(path, { bigint: true });
      const key = relative(root, path);
      const entry: EntrySnapshot = {
        type: stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : 'other',
        mode: Number(stats.mode) & 0o7777,
        uid: Number(stats.uid),
        gid: Number(stats.gid),
        size: stats.isDirectory() ? 0n : stats.size,
        mtimeNs: stats.mtimeNs,
        nlink: stats.isDirectory() ? 0n : stats.nlink,
      };
      if (stats.isSymbolicLink()) entry.target = await readlink(path);
      if (stats.isFile() && stats.nlink > 1n) {
        const first = firstPathByIno.get(stats.ino) ?? key;
        firstPathByIno.set(stats.ino, first);
        entry.linkGroup = first;
      }
      result.set(key, entry);
      if (stats.isDirectory()) await walk(path);
    }
  };
  const rootStats = await lstat(root, { bigint: true });
  result.set('.', { type: 'directory', mode: Number(rootStats.mode) & 0o7777, uid: Number(rootStats.uid), gid: Number(rootStats.gid), size: 0n, mtimeNs: rootStats.mtimeNs, nlink: 0n });
  await walk(root);
  return result;
}

/**
 * Compares two trees: names, types, modes, owners, sizes, mtimes (ns), link targets, hard-link
 * groups, and every byte of every file. Returns the differences (empty when equal).
 */
export async function compareTrees(expectedRoot: string, actualRoot: string): Promise<string[]> {
  const [expected, actual] = await Promise.all([snapshotTree(expectedRoot), snapshotTree(actualRoot)]);
  const differences: string[] = [];
  for (const [key, expectedEntry] of expected) {
    const actualEntry = actual.get(key);
    if (actualEntry === undefined) {
      differences.push(`missing ${key}`);
      continue;
    }
    for (const field of ['type', 'mode', 'uid', 'gid', 'size', 'mtimeNs', 'nlink', 'target', 'linkGroup'] as const) {
      if (expectedEntry[field] !== actualEntry[field]) {
        differences.push(`${key}: ${field} ${String(expectedEntry[field])} != ${String(actualEntry[field])}`);
      }
    }
    if (expectedEntry.type === 'file' && actualEntry.type === 'file') {
      const [expectedBytes, actualBytes] = await Promise.all([readFile(join(expectedRoot, key)), readFile(join(actualRoot, key))]);
      if (!expectedBytes.equals(actualBytes)) differences.push(`${key}: content differs`);
    }
  }
  for (const key of actual.keys()) if (!expected.has(key)) differences.push(`unexpected ${key}`);
  return differences;
}
