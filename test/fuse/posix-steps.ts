/**
 * The system-call steps of the POSIX conformance suite and their executor. The same steps run
 * on a tmpfs directory and on the mount (and, for the permission cases, in a child process running
 * as an unprivileged uid), and each step's outcome is a small JSON value compared case by case.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';

/** Bytes of a file: literal text, or `size` deterministic pseudo-random bytes from `seed`. */
export type Content = string | { size: number; seed: number };

export type Step =
  | { op: 'writeFile'; path: string; data: Content; flag?: string; mode?: number }
  | { op: 'appendFile'; path: string; data: Content }
  | { op: 'readFile'; path: string }
  | { op: 'pread'; path: string; offset: number; length: number }
  | { op: 'pwrite'; path: string; flags: string; offset: number; data: Content }
  | { op: 'open'; path: string; flags: string; mode?: number }
  | { op: 'stat'; path: string }
  | { op: 'lstat'; path: string }
  /** atime and mtime in nanoseconds, or in milliseconds when `milliseconds` (the stock binding's resolution). */
  | { op: 'times'; path: string; milliseconds?: boolean }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'ftruncate'; path: string; size: number }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string; mode?: number }
  | { op: 'rmdir'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'readlink'; path: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'chown'; path: string; uid: number; gid: number }
  | { op: 'utimes'; path: string; atimeMs: number; mtimeMs: number }
  | { op: 'readdir'; path: string }
  | { op: 'access'; path: string; mode: number }
  | { op: 'unlinkedHandle'; path: string }
  | { op: 'fsync'; path: string; data: Content }
  | { op: 'statfs'; path: string }
  | { op: 'xattr'; action: 'set' | 'get' | 'list' | 'remove' | 'getsized' | 'listsized'; path: string; name?: string; value?: string; flags?: number; size?: number }
  | { op: 'shell'; command: string };

/** A step's observable result: a value, or `{ error: 'ECODE' }`. */
export type Outcome = unknown;

/** Deterministic content bytes (xorshift32), so both sides write exactly the same file. */
export function contentBytes(content: Content): Buffer {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  const bytes = Buffer.alloc(content.size);
  let state = content.seed >>> 0 || 1;
  for (let index = 0; index < bytes.length; index += 1) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

function digest(bytes: Uint8Array): string {
  return `${bytes.length}:${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;
}

function describeStat(stat: fs.Stats): Record<string, unknown> {
  const type = stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'symlink' : 'other';
  const described: Record<string, unknown> = { type, perm: (stat.mode & 0o7777).toString(8), uid: stat.uid, gid: stat.gid };
  // Directory sizes and link counts are filesystem-specific (tmpfs counts entries); files' are not.
  if (type !== 'directory') {
    described.size = stat.size;
    described.nlink = stat.nlink;
  }
  return described;
}

const xattrScript = `
import ctypes, errno, json, os, sys
op, path = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
def fail(code):
    print(json.dumps({"error": errno.errorcode[code]})); sys.exit(0)
try:
    if op == "set":
        os.setxattr(path, sys.argv[3], sys.argv[4].encode(), int(sys.argv[5])); print(json.dumps("ok"))
    elif op == "get":
        print(json.dumps(os.getxattr(path, sys.argv[3]).decode()))
    elif op == "list":
        print(json.dumps(sorted(os.listxattr(path))))
    elif op == "remove":
        os.removexattr(path, sys.argv[3]); print(json.dumps("ok"))
    elif op == "getsized":
        size = int(sys.argv[4]); buf = ctypes.create_string_buffer(max(size, 1))
        result = libc.getxattr(path.encode(), sys.argv[3].encode(), buf if size > 0 else None, size)
        if result < 0: fail(ctypes.get_errno())
        print(json.dumps(result))
    elif op == "listsized":
        size = int(sys.argv[3]); buf = ctypes.create_string_buffer(max(size, 1))
        result = libc.listxattr(path.encode(), buf if size > 0 else None, size)
        if result < 0: fail(ctypes.get_errno())
        print(json.dumps(result))
except OSError as error:
    fail(error.errno)
`;

/** Runs one step under `root`; never throws for a failed system call (that is an outcome). */
export function runStep(root: string, step: Step): Outcome {
  const at = (path: string): string => join(root, path);
  try {
    switch (step.op) {
      case 'writeFile':
        fs.writeFileSync(at(step.path), contentBytes(step.data), { flag: step.flag ?? 'w', ...(step.mode === undefined ? {} : { mode: step.mode }) });
        return 'ok';
      case 'appendFile':
        fs.appendFileSync(at(step.path), contentBytes(step.data));
        return 'ok';
      case 'readFile':
        return digest(fs.readFileSync(at(step.path)));
      case 'pread': {
        const descriptor = fs.openSync(at(step.path), 'r');
        try {
          const buffer = Buffer.alloc(step.length);
          const bytesRead = fs.readSync(descriptor, buffer, 0, step.length, step.offset);
          return digest(buffer.subarray(0, bytesRead));
        } finally {
          fs.closeSync(descriptor);
        }
      }
      case 'pwrite': {
        const descriptor = fs.openSync(at(step.path), step.flags);
        try {
          const bytes = contentBytes(step.data);
          return fs.writeSync(descriptor, bytes, 0, bytes.length, step.offset);
        } finally {
          fs.closeSync(descriptor);
        }
      }
      case 'open':
        fs.closeSync(fs.openSync(at(step.path), step.flags, step.mode));
        return 'ok';
      case 'stat':
        return describeStat(fs.statSync(at(step.path)));
      case 'lstat':
        return describeStat(fs.lstatSync(at(step.path)));
      case 'times': {
        const stat = fs.statSync(at(step.path), { bigint: true });
        const unit = step.milliseconds === true ? 1_000_000n : 1n;
        return [String(stat.atimeNs / unit), String(stat.mtimeNs / unit)];
      }
      case 'truncate':
        fs.truncateSync(at(step.path), step.size);
        return 'ok';
      case 'ftruncate': {
        const descriptor = fs.openSync(at(step.path), 'r+');
        try {
          fs.ftruncateSync(descriptor, step.size);
          return fs.fstatSync(descriptor).size;
        } finally {
          fs.closeSync(descriptor);
        }
      }
      case 'unlink':
        fs.unlinkSync(at(step.path));
        return 'ok';
      case 'mkdir':
        fs.mkdirSync(at(step.path), step.mode === undefined ? undefined : { mode: step.mode });
        return 'ok';
      case 'rmdir':
        fs.rmdirSync(at(step.path));
        return 'ok';
      case 'rename':
        fs.renameSync(at(step.from), at(step.to));
        return 'ok';
      case 'symlink':
        fs.symlinkSync(step.target, at(step.path));
        return 'ok';
      case 'readlink':
        return fs.readlinkSync(at(step.path));
      case 'link':
        fs.linkSync(at(step.from), at(step.to));
        return 'ok';
      case 'chmod':
        fs.chmodSync(at(step.path), step.mode);
        return 'ok';
      case 'chown':
        fs.chownSync(at(step.path), step.uid, step.gid);
        return 'ok';
      case 'utimes':
        fs.utimesSync(at(step.path), step.atimeMs / 1000, step.mtimeMs / 1000);
        return 'ok';
      case 'readdir':
        return fs.readdirSync(at(step.path)).sort();
      case 'access':
        fs.accessSync(at(step.path), step.mode);
        return 'ok';
      case 'unlinkedHandle': {
        const descriptor = fs.openSync(at(step.path), 'r+');
        try {
          fs.unlinkSync(at(step.path));
          const exists = fs.existsSync(at(step.path));
          fs.writeSync(descriptor, Buffer.from('through the handle'), 0, 18, 0);
          const buffer = Buffer.alloc(64);
          const bytesRead = fs.readSync(descriptor, buffer, 0, 64, 0);
          return { exists, read: buffer.subarray(0, bytesRead).toString('utf8'), size: fs.fstatSync(descriptor).size };
        } finally {
          fs.closeSync(descriptor);
        }
      }
      case 'fsync': {
        const descriptor = fs.openSync(at(step.path), 'w');
        try {
          fs.writeSync(descriptor, contentBytes(step.data));
          fs.fsyncSync(descriptor);
          fs.fdatasyncSync(descriptor);
        } finally {
          fs.closeSync(descriptor);
        }
        return digest(fs.readFileSync(at(step.path)));
      }
      case 'statfs': {
        const stat = fs.statfsSync(at(step.path));
        return { positiveBlockSize: stat.bsize > 0, hasBlocks: stat.blocks > 0 };
      }
      case 'xattr': {
        const args = [step.action, at(step.path)];
        if (step.action === 'set') args.push(step.name ?? '', step.value ?? '', String(step.flags ?? 0));
        else if (step.action === 'getsized') args.push(step.name ?? '', String(step.size ?? 0));
        else if (step.action === 'listsized') args.push(String(step.size ?? 0));
        else if (step.action !== 'list') args.push(step.name ?? '');
        const result = spawnSync('python3', ['-c', xattrScript, ...args], { encoding: 'utf8' });
        if (result.status !== 0) return { error: `python3 exited ${result.status}: ${result.stderr}` };
        return JSON.parse(result.stdout) as Outcome;
      }
      case 'shell': {
        const result = spawnSync('sh', ['-c', step.command], { cwd: root, encoding: 'utf8' });
        return { status: result.status, stdout: result.stdout };
      }
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return { error: code };
    throw error;
  }
}

/** Runs steps in order and returns one outcome per step. */
export function runSteps(root: string, steps: Step[]): Outcome[] {
  return steps.map((step) => runStep(root, step));
}
