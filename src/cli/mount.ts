/**
 * `embrfs mount` (foreground until unmounted or SIGINT/SIGTERM) and `embrfs umount`.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { CliFailure, ExitCode, type ExitCodeValue } from './failure.js';

type Durability = 'full' | 'normal';

interface MountCommandMountOptions {
  engramFile: string;
  mountpoint: string;
  readOnly?: boolean;
  snapshot?: string;
  durability?: Durability;
}

/** The part of `src/fuse/index.ts` the CLI uses (issue 5). */
interface FuseModule {
  mountEngram(options: MountCommandMountOptions): Promise<{ unmount(): Promise<void>; closed: Promise<void> }>;
}

/**
 * Mounts an engram and waits until it is unmounted (by `embrfs umount`, `fusermount -u` or a
 * signal, after which it unmounts cleanly).
 *
 * @example
 * ```ts
 * await mountCommand({ engramFile: 'data.engram', mountpoint: '/mnt/data', readOnly: true });
 * ```
 */
export async function mountCommand(options: {
  engramFile: string;
  mountpoint: string;
  readOnly: boolean;
  snapshot?: string;
  quiet: boolean;
  /** Default 'normal' (commits synced on fsync and on the last close of a written file); 'full' syncs every commit. */
  durability?: Durability;
}): Promise<ExitCodeValue> {
  if (options.durability !== undefined && options.durability !== 'full' && options.durability !== 'normal') {
    throw new CliFailure(ExitCode.badInput, `unknown durability '${String(options.durability)}'`, options.engramFile, "use 'full' or 'normal'");
  }
  try {
    await stat(options.engramFile);
  } catch {
    throw new CliFailure(ExitCode.badInput, 'engram not found', options.engramFile, "check the path, or create it with 'embrfs ingest'");
  }
  // A variable specifier keeps the FUSE native module out of every other command's start-up.
  const specifier = '../fuse/index.js';
  const fuse = (await import(specifier)) as FuseModule;
  const mountOptions: MountCommandMountOptions = {
    engramFile: options.engramFile,
    mountpoint: options.mountpoint,
    readOnly: options.readOnly || options.snapshot !== undefined,
  };
  if (options.snapshot !== undefined) mountOptions.snapshot = options.snapshot;
  if (options.durability !== undefined) mountOptions.durability = options.durability;
  const mounted = await fuse.mountEngram(mountOptions);
  if (!options.quiet) process.stderr.write(`embrfs: mounted ${options.engramFile} on ${options.mountpoint}; Ctrl-C or 'embrfs umount ${options.mountpoint}' to unmount\n`);
  let unmounting: Promise<void> | undefined;
  const onSignal = () => {
    unmounting ??= mounted.unmount();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await mounted.closed;
    if (unmounting !== undefined) await unmounting;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return ExitCode.success;
}

function runFusermount(args: string[]): Promise<{ code: number; stderrText: string }> {
  return new Promise((resolve) => {
    const child = spawn('fusermount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderrText = '';
    child.stderr.on('data', (data: Buffer) => {
      stderrText += data.toString();
    });
    child.on('error', (error) => resolve({ code: 127, stderrText: error.message }));
    child.on('close', (code) => resolve({ code: code ?? 1, stderrText }));
  });
}

/**
 * Unmounts with `fusermount -u`, falling back to a lazy `-uz` when the mount is busy.
 *
 * @example
 * ```ts
 * await umountCommand({ mountpoint: '/mnt/data' });
 * ```
 */
export async function umountCommand(options: { mountpoint: string }): Promise<ExitCodeValue> {
  const first = await runFusermount(['-u', options.mountpoint]);
  if (first.code === 0) return ExitCode.success;
  const lazy = await runFusermount(['-uz', options.mountpoint]);
  if (lazy.code === 0) return ExitCode.success;
  throw new CliFailure(ExitCode.badInput, `cannot unmount: ${first.stderrText.trim() || lazy.stderrText.trim()}`, options.mountpoint, 'check that it is an embrfs mount point');
}
