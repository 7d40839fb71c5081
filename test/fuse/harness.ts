/**
 * Mount lifecycle for the FUSE tests: every mount runs in a child process (mount-child.js) and is
 * unmounted in teardown whatever happened, with `fusermount -u`, then `-uz`, as the fallback.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupStaleMount } from '../../src/fuse/binding.js';
import { isMounted } from '../../src/fuse/index.js';

const childScript = fileURLToPath(new URL('./mount-child.js', import.meta.url));
/** Mountpoints this process started; detached on exit even if a test forgot. */
const liveMountpoints = new Set<string>();
process.on('exit', () => {
  for (const mountpoint of liveMountpoints) {
    try {
      execFileSync('fusermount', ['-uz', mountpoint], { stdio: 'ignore' });
    } catch {
      // Not mounted any more: nothing to clean.
    }
  }
});

/**
 * Why FUSE tests cannot run here, or undefined when they can: they mount (needs /dev/fuse and
 * fusermount), run cases as uid 65534 and mount a small tmpfs (need root).
 */
export function fuseUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'FUSE tests need root (mounts, uid 65534 cases, a tmpfs for the full-disk case)';
  if (!existsSync('/dev/fuse')) return 'FUSE tests need /dev/fuse';
  return undefined;
}

export interface TestMount {
  /** Scratch directory holding the engram file and the mountpoint. */
  directory: string;
  engramFile: string;
  mountpoint: string;
  child: ChildProcess;
  /** Everything the mount process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM and wait for a clean exit; resolves with its exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL the mount process (leaves a stale mount behind, like a crash). */
  kill(): Promise<void>;
}

export interface StartOptions {
  /** Use this directory (a remount if it holds test.engram; created if missing); default: a fresh scratch directory. */
  directory?: string;
  /** Serve this engram file instead of `<directory>/test.engram` (a second mount of one engram). */
  engramFile?: string;
  /** Serve the in-memory test double instead of a real engram. */
  memory?: boolean;
  readOnly?: boolean;
  snapshot?: string;
  durability?: 'full' | 'normal';
  attributeTimeoutSeconds?: number;
  syncIntervalMs?: number;
  writeBufferBytes?: number;
}

/** Creates an empty engram file with the real library. */
export async function createEngramFile(engramFile: string): Promise<void> {
  const { openEngram } = await import('../../src/fs/index.js');
  const engram = await openEngram(engramFile, { create: true });
  await engram.close();
}

/** Starts a mount in a child process and waits until it serves requests. */
export async function startMount(options: StartOptions = {}): Promise<TestMount> {
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'embrfs-fuse-')));
  await mkdir(directory, { recursive: true });
  await chmod(directory, 0o755);
  const engramFile = options.engramFile ?? join(directory, 'test.engram');
  const mountpoint = join(directory, 'mnt');
  try {
    await mkdir(mountpoint, { recursive: true });
  } catch (error) {
    // A stale mount from a killed server: mountEngram itself must clean that up.
    if ((error as NodeJS.ErrnoException).code !== 'ENOTCONN') throw error;
  }
  if (options.memory !== true && !existsSync(engramFile)) await createEngramFile(engramFile);
  const childOptions = {
    engramFile,
    mountpoint,
    memory: options.memory === true,
    readOnly: options.readOnly === true,
    ...(options.snapshot === undefined ? {} : { snapshot: options.snapshot }),
    ...(options.durability === undefined ? {} : { durability: options.durability }),
    ...(options.attributeTimeoutSeconds === undefined ? {} : { attributeTimeoutSeconds: options.attributeTimeoutSeconds }),
    ...(options.syncIntervalMs === undefined ? {} : { syncIntervalMs: options.syncIntervalMs }),
    ...(options.writeBufferBytes === undefined ? {} : { writeBufferBytes: options.writeBufferBytes }),
  };
  const child = spawn(process.execPath, [childScript, JSON.stringify(childOptions)], { stdio: ['ignore', 'pipe', 'pipe'] });
  liveMountpoints.add(mountpoint);
  let stderrText = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mount did not become ready in 60 s; stderr: ${stderrText}`)), 60_000);
    let stdoutText = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdoutText += chunk.toString();
      if (stdoutText.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mount process exited with ${code} before ready; stderr: ${stderrText}`));
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await cleanupStaleMount(mountpoint);
    liveMountpoints.delete(mountpoint);
    throw error;
  });

  const finish = async (): Promise<void> => {
    if (isMounted(mountpoint)) await cleanupStaleMount(mountpoint);
    liveMountpoints.delete(mountpoint);
  };
  return {
    directory,
    engramFile,
    mountpoint,
    child,
    stderr: () => stderrText,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref());
      const outcome = await Promise.race([exited, timeout]);
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
      await finish();
      return outcome === 'timeout' ? null : outcome;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
      await finish();
    },
  };
}

/** Stops the mount (if given) and removes its scratch directory; safe to call twice. */
export async function teardown(mount: TestMount | undefined): Promise<void> {
  if (mount === undefined) return;
  try {
    await mount.stop();
  } finally {
    if (!isMounted(mount.mountpoint)) await rm(mount.directory, { recursive: true, force: true });
  }
}
