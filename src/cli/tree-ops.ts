/**
 * The mutations `ingest` makes, as plain data, so the same list can be applied in the main
 * thread (through {@link TransactionBatch}) or sent to a worker thread and applied there, in
 * the order the walk produced them.
 */
import type { Transaction, WriteOptions } from '../fs/api.js';

/** One file for a worker to write (source bytes are read by the worker when `data` is absent). */
export interface FileWriteJob {
  engramPath: string;
  sourcePath: string;
  sizeBytes: number;
  mode: number;
  mtimeNs: bigint;
  uid?: number;
  gid?: number;
  /** The bytes when the main thread already read them (small files); else the worker reads `sourcePath`. */
  data?: Uint8Array;
  /** The path existed as a file: mode/owner are not taken from write options, so set them after. */
  fixMetadata?: { mode?: number; uid?: number; gid?: number };
}

/** A change of the engram tree, applied inside a transaction by {@link applyTreeOp}. */
export type TreeOp =
  | { kind: 'mkdir'; path: string; mode: number; mtimeNs: bigint; uid?: number; gid?: number }
  | { kind: 'symlink'; path: string; target: string; mtimeNs: bigint; uid?: number; gid?: number }
  /** Removes a file, a symlink or a whole directory tree. */
  | { kind: 'remove'; path: string }
  /** chown, then chmod (chown clears set-id bits), then the mtime: whichever are given. */
  | { kind: 'metadata'; path: string; mode?: number; uid?: number; gid?: number; mtimeNs?: bigint }
  /** Makes `path` a hard link of `firstPath`, replacing what is there. */
  | { kind: 'link'; path: string; firstPath: string }
  | { kind: 'write'; job: FileWriteJob };

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** Removes `path` and everything under it inside `tx`. */
export async function removeTree(tx: Transaction, path: string): Promise<void> {
  const stats = await tx.stat(path);
  if (stats.type === 'directory') {
    for (const entry of await tx.readdir(path)) await removeTree(tx, childPath(path, entry.name));
    await tx.rmdir(path);
  } else {
    await tx.deleteFile(path);
  }
}

/** The write options of a file job (mode, mtime, owner). */
export function writeOptionsOf(job: FileWriteJob): WriteOptions {
  const options: WriteOptions = { mode: job.mode, mtimeNs: job.mtimeNs };
  if (job.uid !== undefined) options.uid = job.uid;
  if (job.gid !== undefined) options.gid = job.gid;
  return options;
}

/** After rewriting an existing file: its mode/owner (not taken from write options), then its mtime again. */
export async function fixFileMetadata(tx: Pick<Transaction, 'chown' | 'chmod' | 'utimes'>, job: FileWriteJob): Promise<void> {
  const fix = job.fixMetadata;
  if (fix === undefined) return;
  if (fix.uid !== undefined && fix.gid !== undefined) await tx.chown(job.engramPath, fix.uid, fix.gid);
  if (fix.mode !== undefined) await tx.chmod(job.engramPath, fix.mode);
  await tx.utimes(job.engramPath, null, job.mtimeNs);
}

/**
 * Applies one op inside `tx`. A `write` op needs its bytes in `job.data` (big files are streamed
 * outside transactions by the caller).
 *
 * @example
 * ```ts
 * await engram.transaction((tx) => applyTreeOp(tx, { kind: 'mkdir', path: '/a', mode: 0o755, mtimeNs: 0n }));
 * ```
 */
export async function applyTreeOp(tx: Transaction, op: TreeOp): Promise<void> {
  switch (op.kind) {
    case 'mkdir': {
      const options: { mode: number; mtimeNs: bigint; uid?: number; gid?: number } = { mode: op.mode, mtimeNs: op.mtimeNs };
      if (op.uid !== undefined) options.uid = op.uid;
      if (op.gid !== undefined) options.gid = op.gid;
      await tx.mkdir(op.path, options);
      return;
    }
    case 'symlink': {
      const options: { mtimeNs: bigint; uid?: number; gid?: number } = { mtimeNs: op.mtimeNs };
      if (op.uid !== undefined) options.uid = op.uid;
      if (op.gid !== undefined) options.gid = op.gid;
      await tx.symlink(op.target, op.path, options);
      return;
    }
    case 'remove':
      await removeTree(tx, op.path);
      return;
    case 'metadata':
      if (op.uid !== undefined && op.gid !== undefined) await tx.chown(op.path, op.uid, op.gid);
      if (op.mode !== undefined) await tx.chmod(op.path, op.mode);
      if (op.mtimeNs !== undefined) await tx.utimes(op.path, null, op.mtimeNs);
      return;
    case 'link':
      if (await tx.exists(op.path)) await removeTree(tx, op.path);
      await tx.link(op.firstPath, op.path);
      return;
    case 'write': {
      const data = op.job.data;
      if (data === undefined) throw new Error(`internal: no bytes for ${op.job.engramPath}`);
      await tx.writeFile(op.job.engramPath, data, writeOptionsOf(op.job));
      await fixFileMetadata(tx, op.job);
      return;
    }
  }
}
