/**
 * `embrfs mount` / `embrfs umount` end to end: the CLI runs in the foreground as a child, the
 * test reads through the kernel, then unmounts with `embrfs umount` and expects exit 0.
 * The mount is always removed in teardown (fusermount -u, then -uz) and the child killed by PID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers.js';

function isMounted(mountpoint: string): boolean {
  return spawnSync('mountpoint', ['-q', mountpoint]).status === 0;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

const fuseBuilt = existsSync('dist/src/fuse/index.js') && existsSync('/dev/fuse');

function startMount(engramFile: string, mountpoint: string): { child: ChildProcess; exited: Promise<number | null>; stderrText: () => string } {
  const child = spawn(process.execPath, ['bin/embrfs.js', 'mount', engramFile, mountpoint, '--read-only', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderrText = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderrText += data.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderrText: () => stderrText };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | 'timeout'> {
  return Promise.race([promise, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref())]);
}

function cleanUp(mountpoint: string, children: ChildProcess[]): void {
  if (isMounted(mountpoint)) {
    if (spawnSync('fusermount', ['-u', mountpoint]).status !== 0) spawnSync('fusermount', ['-uz', mountpoint]);
  }
  for (const child of children) if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
}

// Skipped only when the FUSE layer (issue 5) is not built yet or the machine has no /dev/fuse.
const skip = fuseBuilt ? false : 'src/fuse/index.ts not built or no /dev/fuse';

test('mount serves the engram read-only and SIGINT unmounts it and ends the process with exit 0', { skip }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'embrfs-cli-mount-'));
  const mountpoint = join(base, 'mnt');
  const children: ChildProcess[] = [];
  try {
    const source = join(base, 'source');
    await mkdir(join(source, 'dir'), { recursive: true });
    await writeFile(join(source, 'dir', 'hello.txt'), 'hello through fuse\n');
    const engramFile = join(base, 'm.engram');
    assert.equal((await runCli(['ingest', source, '-o', engramFile, '--quiet'])).code, 0);
    await mkdir(mountpoint);
    const mounted = startMount(engramFile, mountpoint);
    children.push(mounted.child);
    assert.ok(await waitFor(() => isMounted(mountpoint), 20_000), `not mounted: ${mounted.stderrText()}`);
    assert.deepEqual(await readdir(mountpoint), ['dir']);
    assert.equal(await readFile(join(mountpoint, 'dir', 'hello.txt'), 'utf8'), 'hello through fuse\n');
    mounted.child.kill('SIGINT');
    assert.equal(await withTimeout(mounted.exited, 20_000), 0, mounted.stderrText());
    assert.equal(isMounted(mountpoint), false);

    // embrfs umount from another process.
    const again = startMount(engramFile, mountpoint);
    children.push(again.child);
    assert.ok(await waitFor(() => isMounted(mountpoint), 20_000), `not mounted: ${again.stderrText()}`);
    const unmounted = await runCli(['umount', mountpoint]);
    assert.equal(unmounted.code, 0, unmounted.stderr);
    assert.equal(isMounted(mountpoint), false);
    // Known gap (reported to the lead): after an external unmount the mount process returns
    // from main but fuse-native keeps the event loop alive, so the process is killed in teardown.
    const notMounted = await runCli(['umount', mountpoint]);
    assert.equal(notMounted.code, 2);
    assert.match(notMounted.stderr, /^embrfs: cannot unmount/);
  } finally {
    cleanUp(mountpoint, children);
    await rm(base, { recursive: true, force: true });
  }
});

test('mountCommand refuses an unknown durability before mounting anything', async () => {
  const { mountCommand } = await import('../../src/cli/mount.js');
  const { CliFailure, ExitCode } = await import('../../src/cli/failure.js');
  await assert.rejects(
    mountCommand({ engramFile: 'unused.engram', mountpoint: 'unused', readOnly: false, quiet: true, durability: 'sometimes' as 'full' }),
    (error: unknown) => error instanceof CliFailure && error.exitCode === ExitCode.badInput && /durability/.test(error.message),
  );
});

test('embrfs mount --durability takes full and refuses anything else with exit 2', async () => {
  const refused = await runCli(['mount', 'unused.engram', 'unused', '--durability', 'sometimes']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /durability/);
  const help = await runCli(['mount', '--help']);
  assert.match(help.stdout, /--durability <mode>/);
});
