/**
 * A minimal in-memory {@link Engram} for the FUSE adapter's own fast tests: just the calls the
 * adapter makes, with the errors the fs contract promises. It is NOT the real VersionedEmbrFS and
 * is never used to claim anything about it; it lets the FUSE layer be tested in isolation.
 */
import { EmbrError } from '../../src/errors.js';
import type { DirectoryEntry, Engram, EntryType, FileHandle, ReadResult, Stat } from '../../src/fs/api.js';

interface Inode {
  ino: number;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  data: Uint8Array;
  target: string;
  entries: Map<string, number>;
  xattrs: Map<string, Uint8Array>;
  version: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  openCount: number;
}

export interface MemoryEngramCounters {
  writes: number;
  writtenBytes: number;
  transactions: number;
  /** Calls of `sync()` (what fsync and the last close of a written file call with durability 'normal'). */
  syncs: number;
}

/** Creates an in-memory engram (test double). */
export function createMemoryEngram(): Engram & { counters: MemoryEngramCounters } {
  const inodes = new Map<number, Inode>();
  let nextIno = 1;
  let commit = 0;
  const counters: MemoryEngramCounters = { writes: 0, writtenBytes: 0, transactions: 0, syncs: 0 };
  const now = (): bigint => BigInt(Date.now()) * 1_000_000n;
  const make = (type: EntryType, mode: number): Inode => {
    const inode: Inode = {
      ino: nextIno++,
      type,
      mode,
      uid: 0,
      gid: 0,
      nlink: type === 'directory' ? 2 : 1,
      data: new Uint8Array(0),
      target: '',
      entries: new Map(),
      xattrs: new Map(),
      version: ++commit,
      atimeNs: now(),
      mtimeNs: now(),
      ctimeNs: now(),
      openCount: 0,
    };
    inodes.set(inode.ino, inode);
    return inode;
  };
  const root = make('directory', 0o755);
  const touch = (inode: Inode, content: boolean): number => {
    inode.version = ++commit;
    inode.ctimeNs = now();
    if (content) inode.mtimeNs = inode.ctimeNs;
    return inode.version;
  };
  const split = (path: string): string[] => {
    if (!path.startsWith('/')) throw new EmbrError('INVALID_PATH', `${path} is not absolute`, { path });
    const parts = path.split('/').filter((part) => part !== '');
    for (const part of parts) if (Buffer.byteLength(part) > 255) throw new EmbrError('NAME_TOO_LONG', path, { path });
    return parts;
  };
  const lookup = (path: string): Inode => {
    let current = root;
    for (const part of split(path)) {
      if (current.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', path, { path });
      const next = current.entries.get(part);
      if (next === undefined) throw new EmbrError('NOT_FOUND', path, { path });
      current = inodes.get(next) as Inode;
    }
    return current;
  };
  const parentOf = (path: string): { parent: Inode; name: string } => {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined) throw new EmbrError('EXISTS', 'root', { path });
    const parent = lookup(`/${parts.join('/')}`);
    if (parent.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', path, { path });
    return { parent, name };
  };
  const dropLink = (inode: Inode): void => {
    inode.nlink -= inode.type === 'directory' ? 2 : 1;
    if (inode.nlink <= 0 && inode.openCount === 0) inodes.delete(inode.ino);
  };
  const toStat = (inode: Inode): Stat => ({
    ino: inode.ino,
    type: inode.type,
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    size: inode.type === 'symlink' ? Buffer.byteLength(inode.target) : inode.type === 'directory' ? 4096 : inode.data.length,
    nlink: Math.max(0, inode.nlink),
    version: inode.version,
    atimeNs: inode.atimeNs,
    mtimeNs: inode.mtimeNs,
    ctimeNs: inode.ctimeNs,
    birthtimeNs: inode.ctimeNs,
  });
  const fileOf = (path: string): Inode => {
    const inode = lookup(path);
    if (inode.type === 'directory') throw new EmbrError('IS_DIRECTORY', path, { path });
    return inode;
  };
  const writeAt = (inode: Inode, offset: number, data: Uint8Array): number => {
    counters.writes += 1;
    counters.writtenBytes += data.length;
    const end = offset + data.length;
    if (end > inode.data.length) {
      const grown = new Uint8Array(end);
      grown.set(inode.data);
      inode.data = grown;
    }
    inode.data.set(data, offset);
    return touch(inode, true);
  };
  const truncateTo = (inode: Inode, size: number): number => {
    const resized = new Uint8Array(size);
    resized.set(inode.data.subarray(0, size));
    inode.data = resized;
    return touch(inode, true);
  };
  const readAt = (inode: Inode, offset: number, length: number): ReadResult => ({
    data: inode.data.slice(offset, offset + length),
    version: inode.version,
  });
  const addEntry = (path: string, inode: Inode): void => {
    const { parent, name } = parentOf(path);
    if (parent.entries.has(name)) throw new EmbrError('EXISTS', path, { path });
    parent.entries.set(name, inode.ino);
    if (inode.type === 'directory') parent.nlink += 1;
    touch(parent, true);
  };
  const notImplemented = (): never => {
    throw new EmbrError('NOT_SUPPORTED', 'not in the memory test double', { reason: 'test double' });
  };
  // Metadata changes of one inode, shared by the path calls and the handle calls.
  const metadata = {
    chmod(inode: Inode, mode: number): number {
      inode.mode = mode & 0o7777;
      return touch(inode, false);
    },
    chown(inode: Inode, uid: number, gid: number): number {
      inode.uid = uid;
      inode.gid = gid;
      return touch(inode, false);
    },
    utimes(inode: Inode, atimeNs: bigint | null, mtimeNs: bigint | null): number {
      if (atimeNs !== null) inode.atimeNs = atimeNs;
      if (mtimeNs !== null) inode.mtimeNs = mtimeNs;
      return touch(inode, false);
    },
    setxattr(inode: Inode, path: string, name: string, value: Uint8Array, options: { flag?: 'create' | 'replace' }): number {
      if (options.flag === 'create' && inode.xattrs.has(name)) throw new EmbrError('EXISTS', name, { path });
      if (options.flag === 'replace' && !inode.xattrs.has(name)) throw new EmbrError('NO_ATTRIBUTE', name, { path, name });
      inode.xattrs.set(name, Uint8Array.from(value));
      return touch(inode, false);
    },
    removexattr(inode: Inode, path: string, name: string): number {
      if (!inode.xattrs.delete(name)) throw new EmbrError('NO_ATTRIBUTE', name, { path, name });
      return touch(inode, false);
    },
  };

  const engram = {
    file: ':memory:',
    readOnly: false,
    counters,
    async readFile(path: string): Promise<ReadResult> {
      const inode = fileOf(path);
      return readAt(inode, 0, inode.data.length);
    },
    async read(path: string, offset: number, length: number): Promise<ReadResult> {
      return readAt(fileOf(path), offset, length);
    },
    async stat(path: string): Promise<Stat> {
      return toStat(lookup(path));
    },
    async exists(path: string): Promise<boolean> {
      try {
        lookup(path);
        return true;
      } catch {
        return false;
      }
    },
    async readdir(path: string): Promise<DirectoryEntry[]> {
      const inode = lookup(path);
      if (inode.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', path, { path });
      return [...inode.entries].map(([name, ino]) => ({ name, ino, type: (inodes.get(ino) as Inode).type }));
    },
    async readlink(path: string): Promise<string> {
      const inode = lookup(path);
      if (inode.type !== 'symlink') throw new EmbrError('INVALID_ARGUMENT', 'not a symlink', { reason: 'not a symlink' });
      return inode.target;
    },
    async getxattr(path: string, name: string): Promise<Uint8Array> {
      const value = lookup(path).xattrs.get(name);
      if (value === undefined) throw new EmbrError('NO_ATTRIBUTE', name, { path, name });
      return value;
    },
    async listxattr(path: string): Promise<string[]> {
      return [...lookup(path).xattrs.keys()];
    },
    async writeFile(path: string, data: Uint8Array, options: { exclusive?: boolean; mode?: number } = {}): Promise<number> {
      let inode: Inode;
      try {
        inode = fileOf(path);
        if (options.exclusive) throw new EmbrError('EXISTS', path, { path });
      } catch (error) {
        if (!(error instanceof EmbrError) || error.code !== 'NOT_FOUND') throw error;
        inode = make('file', options.mode ?? 0o644);
        addEntry(path, inode);
      }
      inode.data = Uint8Array.from(data);
      return touch(inode, true);
    },
    async write(path: string, offset: number, data: Uint8Array): Promise<number> {
      return writeAt(fileOf(path), offset, data);
    },
    async truncate(path: string, size: number): Promise<number> {
      return truncateTo(fileOf(path), size);
    },
    async deleteFile(path: string): Promise<void> {
      const { parent, name } = parentOf(path);
      const inode = fileOf(path);
      parent.entries.delete(name);
      touch(parent, true);
      dropLink(inode);
    },
    async mkdir(path: string, options: { mode?: number } = {}): Promise<number> {
      const inode = make('directory', options.mode ?? 0o755);
      try {
        addEntry(path, inode);
      } catch (error) {
        inodes.delete(inode.ino);
        throw error;
      }
      return inode.version;
    },
    async rmdir(path: string): Promise<void> {
      const { parent, name } = parentOf(path);
      const inode = lookup(path);
      if (inode.type !== 'directory') throw new EmbrError('NOT_DIRECTORY', path, { path });
      if (inode.entries.size > 0) throw new EmbrError('NOT_EMPTY', path, { path });
      parent.entries.delete(name);
      parent.nlink -= 1;
      touch(parent, true);
      inodes.delete(inode.ino);
    },
    async rename(from: string, to: string): Promise<void> {
      const source = parentOf(from);
      const inode = lookup(from);
      const target = parentOf(to);
      const existingIno = target.parent.entries.get(target.name);
      if (existingIno === inode.ino) return;
      if (existingIno !== undefined) {
        const existing = inodes.get(existingIno) as Inode;
        if (existing.type === 'directory' && inode.type !== 'directory') throw new EmbrError('IS_DIRECTORY', to, { path: to });
        if (existing.type !== 'directory' && inode.type === 'directory') throw new EmbrError('NOT_DIRECTORY', to, { path: to });
        if (existing.type === 'directory' && existing.entries.size > 0) throw new EmbrError('NOT_EMPTY', to, { path: to });
        if (existing.type === 'directory') target.parent.nlink -= 1;
        dropLink(existing);
      }
      source.parent.entries.delete(source.name);
      if (inode.type === 'directory') source.parent.nlink -= 1;
      target.parent.entries.set(target.name, inode.ino);
      if (inode.type === 'directory') target.parent.nlink += 1;
      touch(source.parent, true);
      touch(target.parent, true);
      touch(inode, false);
    },
    async symlink(target: string, path: string): Promise<number> {
      const inode = make('symlink', 0o777);
      inode.target = target;
      try {
        addEntry(path, inode);
      } catch (error) {
        inodes.delete(inode.ino);
        throw error;
      }
      return inode.version;
    },
    async link(existingPath: string, newPath: string): Promise<number> {
      const inode = lookup(existingPath);
      if (inode.type === 'directory') throw new EmbrError('NOT_SUPPORTED', 'hard link to a directory', { reason: 'directory' });
      addEntry(newPath, inode);
      inode.nlink += 1;
      return touch(inode, false);
    },
    async chmod(path: string, mode: number): Promise<number> {
      return metadata.chmod(lookup(path), mode);
    },
    async chown(path: string, uid: number, gid: number): Promise<number> {
      return metadata.chown(lookup(path), uid, gid);
    },
    async utimes(path: string, atimeNs: bigint | null, mtimeNs: bigint | null): Promise<number> {
      return metadata.utimes(lookup(path), atimeNs, mtimeNs);
    },
    async setxattr(path: string, name: string, value: Uint8Array, options: { flag?: 'create' | 'replace' } = {}): Promise<number> {
      return metadata.setxattr(lookup(path), path, name, value, options);
    },
    async removexattr(path: string, name: string): Promise<number> {
      return metadata.removexattr(lookup(path), path, name);
    },
    async open(
      path: string,
      options: { create?: boolean; exclusive?: boolean; truncate?: boolean; mode?: number } = {},
    ): Promise<FileHandle> {
      let inode: Inode;
      try {
        inode = fileOf(path);
        if (options.exclusive) throw new EmbrError('EXISTS', path, { path });
      } catch (error) {
        if (!(error instanceof EmbrError) || error.code !== 'NOT_FOUND' || !options.create) throw error;
        inode = make('file', options.mode ?? 0o644);
        addEntry(path, inode);
      }
      if (options.truncate) truncateTo(inode, 0);
      inode.openCount += 1;
      let closed = false;
      const live = inode;
      return {
        ino: live.ino,
        async read(offset: number, length: number) {
          return readAt(live, offset, length);
        },
        releaseReadBuffer() {
          // Nothing to reuse: every read here is a fresh copy.
        },
        async write(offset: number, data: Uint8Array) {
          return writeAt(live, offset, data);
        },
        async truncate(size: number) {
          return truncateTo(live, size);
        },
        async stat() {
          return toStat(live);
        },
        // By inode: these reach an unlinked inode too (fchmod & co.).
        async chmod(mode: number) {
          return metadata.chmod(live, mode);
        },
        async chown(uid: number, gid: number) {
          return metadata.chown(live, uid, gid);
        },
        async utimes(atimeNs: bigint | null, mtimeNs: bigint | null) {
          return metadata.utimes(live, atimeNs, mtimeNs);
        },
        async setxattr(name: string, value: Uint8Array, options: { flag?: 'create' | 'replace' } = {}) {
          return metadata.setxattr(live, path, name, value, options);
        },
        async getxattr(name: string) {
          const value = live.xattrs.get(name);
          if (value === undefined) throw new EmbrError('NO_ATTRIBUTE', name, { path, name });
          return Uint8Array.from(value);
        },
        async listxattr() {
          return [...live.xattrs.keys()];
        },
        async removexattr(name: string) {
          return metadata.removexattr(live, path, name);
        },
        async close() {
          if (closed) return;
          closed = true;
          live.openCount -= 1;
          if (live.nlink <= 0 && live.openCount === 0) inodes.delete(live.ino);
        },
      };
    },
    createReadStream: notImplemented,
    writeFileFrom: notImplemented,
    // No isolation: the adapter's transactions only batch writes to one file.
    async transaction<T>(body: (transaction: unknown) => Promise<T>): Promise<T> {
      counters.transactions += 1;
      return body(engram);
    },
    createSnapshot: notImplemented,
    async listSnapshots() {
      return [];
    },
    deleteSnapshot: notImplemented,
    restoreSnapshot: notImplemented,
    history: notImplemented,
    compact: notImplemented,
    verify: notImplemented,
    stats: notImplemented,
    query: notImplemented,
    similar: notImplemented,
    async currentCommit() {
      return commit;
    },
    async sync() {
      counters.syncs += 1;
    },
    async close() {},
  };
  return engram as unknown as Engram & { counters: MemoryEngramCounters };
}
