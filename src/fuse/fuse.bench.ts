/**
 * The mount against `bindfs` over a plain directory and the plain directory itself, in one run:
 * sequential write and read (fio, 1 MiB blocks, random data; 1 GiB real, 8 MiB small), 4 KiB
 * random read and write IOPS (fio), create+stat+unlink of small files (10,000 real, 300 small),
 * and `git clone` of a generated repository. One JSON line per figure, each with its ratio to
 * bindfs. Real sizes run once each (1 GiB per target does not fit a median of several runs on a
 * shared machine); small sizes exist so the bench never rots.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../benchmark.js';
import { megabytesPerSecond } from '../benchmark.js';
import { fuseUnavailableReason, startMount, type TestMount } from '../../test/fuse/harness.js';

interface Target {
  name: 'embrfs' | 'bindfs' | 'plain';
  directory: string;
}

interface FioResult {
  bytesPerSecond: number;
  iops: number;
}

function fio(directory: string, job: string, readWrite: string, blockSize: string, sizeBytes: number, runtimeSeconds: number | null): FioResult {
  const args = [
    `--name=${job}`,
    `--directory=${directory}`,
    `--filename=${job}.fio`,
    `--rw=${readWrite}`,
    `--bs=${blockSize}`,
    `--size=${sizeBytes}`,
    '--ioengine=psync',
    '--fallocate=none',
    '--end_fsync=1',
    '--output-format=json',
    ...(runtimeSeconds === null ? [] : ['--time_based', `--runtime=${runtimeSeconds}`]),
  ];
  const output = execFileSync('fio', args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  const job0 = (JSON.parse(output) as { jobs: Array<Record<'read' | 'write', { bw_bytes: number; iops: number }>> }).jobs[0];
  const side = readWrite.includes('read') ? job0.read : job0.write;
  return { bytesPerSecond: side.bw_bytes, iops: side.iops };
}

function dropCaches(): void {
  // Best effort: plain-directory reads would otherwise come from the page cache. Needs root.
  spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
}

function seconds(body: () => void): number {
  const start = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function metadataOpsPerSecond(directory: string, fileCount: number): number {
  const work = join(directory, 'meta');
  fs.mkdirSync(work);
  const payload = Buffer.alloc(512, 0x61);
  const elapsed = seconds(() => {
    for (let index = 0; index < fileCount; index += 1) fs.writeFileSync(join(work, `f${index}`), payload);
    for (let index = 0; index < fileCount; index += 1) fs.statSync(join(work, `f${index}`));
    for (let index = 0; index < fileCount; index += 1) fs.unlinkSync(join(work, `f${index}`));
  });
  fs.rmdirSync(work);
  return Math.round((3 * fileCount) / elapsed);
}

/** A deterministic repository: `fileCount` text files over `commitCount` commits. */
function makeRepository(directory: string, fileCount: number, commitCount: number): void {
  const environment = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b', GIT_AUTHOR_DATE: '1700000000 +0000', GIT_COMMITTER_DATE: '1700000000 +0000' };
  fs.mkdirSync(directory);
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: directory, env: environment });
  let state = 12345;
  const next = (): number => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state;
  };
  for (let commit = 0; commit < commitCount; commit += 1) {
    for (let index = commit; index < fileCount; index += commitCount) {
      const subdirectory = join(directory, `dir${index % 50}`);
      fs.mkdirSync(subdirectory, { recursive: true });
      const lines: string[] = [];
      const lineCount = 20 + (next() % 300);
      for (let line = 0; line < lineCount; line += 1) lines.push(`line ${line} of file ${index}: ${next().toString(36)} ${next().toString(36)}`);
      fs.writeFileSync(join(subdirectory, `file${index}.txt`), lines.join('\n'));
    }
    execFileSync('git', ['add', '-A'], { cwd: directory, env: environment });
    execFileSync('git', ['commit', '-q', '-m', `commit ${commit}`], { cwd: directory, env: environment });
  }
}

function unmountBindfs(mountpoint: string): void {
  if (spawnSync('fusermount', ['-u', mountpoint]).status !== 0) spawnSync('fusermount', ['-uz', mountpoint]);
}

export async function run(context: BenchContext): Promise<void> {
  const unavailable = fuseUnavailableReason();
  if (unavailable !== undefined) {
    context.emit({ bench: 'fuse.unavailable', reason: unavailable });
    return;
  }
  const real = context.size === 'real';
  const sequentialBytes = real ? 1 << 30 : 8 << 20;
  const randomFileBytes = real ? 256 << 20 : 4 << 20;
  const randomSeconds = real ? 20 : 2;
  const smallFileCount = real ? 10_000 : 300;
  const repository = join(context.tmpDir, 'repository');
  makeRepository(repository, real ? 3000 : 100, real ? 20 : 2);

  const plainDirectory = join(context.tmpDir, 'plain');
  const bindSource = join(context.tmpDir, 'bind-source');
  const bindMountpoint = join(context.tmpDir, 'bind-mnt');
  for (const directory of [plainDirectory, bindSource, bindMountpoint]) fs.mkdirSync(directory);
  let mount: TestMount | undefined;
  let bindMounted = false;
  try {
    execFileSync('bindfs', [bindSource, bindMountpoint]);
    bindMounted = true;
    mount = await startMount({ directory: join(context.tmpDir, 'embrfs') });
    const targets: Target[] = [
      { name: 'embrfs', directory: mount.mountpoint },
      { name: 'bindfs', directory: bindMountpoint },
      { name: 'plain', directory: plainDirectory },
    ];
    const emit = (bench: string, unit: string, values: Record<Target['name'], number>, extra: Record<string, unknown>): void => {
      context.emit({
        bench,
        unit,
        embrfs: values.embrfs,
        bindfs: values.bindfs,
        plain: values.plain,
        ratioToBindfs: Math.round((values.embrfs / values.bindfs) * 100) / 100,
        ...extra,
      });
    };
    const measure = (body: (target: Target) => number): Record<Target['name'], number> => {
      const values = { embrfs: 0, bindfs: 0, plain: 0 };
      for (const target of targets) values[target.name] = body(target);
      return values;
    };

    const write = measure((target) => megabytesPerSecond(fio(target.directory, 'seq', 'write', '1M', sequentialBytes, null).bytesPerSecond, 1));
    emit('fuse.sequential-write', 'MB/s', write, { bytes: sequentialBytes, tool: 'fio psync bs=1M end_fsync=1' });
    const read = measure((target) => {
      dropCaches();
      return megabytesPerSecond(fio(target.directory, 'seq', 'read', '1M', sequentialBytes, null).bytesPerSecond, 1);
    });
    emit('fuse.sequential-read', 'MB/s', read, { bytes: sequentialBytes, tool: 'fio psync bs=1M' });
    for (const target of targets) fs.rmSync(join(target.directory, 'seq.fio'), { force: true });

    const randomRead = measure((target) => {
      fio(target.directory, 'rand', 'write', '1M', randomFileBytes, null);
      dropCaches();
      return Math.round(fio(target.directory, 'rand', 'randread', '4k', randomFileBytes, randomSeconds).iops);
    });
    emit('fuse.random-read-4k', 'IOPS', randomRead, { fileBytes: randomFileBytes, seconds: randomSeconds });
    const randomWrite = measure((target) => Math.round(fio(target.directory, 'rand', 'randwrite', '4k', randomFileBytes, randomSeconds).iops));
    emit('fuse.random-write-4k', 'IOPS', randomWrite, { fileBytes: randomFileBytes, seconds: randomSeconds });
    for (const target of targets) fs.rmSync(join(target.directory, 'rand.fio'), { force: true });

    const metadata = measure((target) => metadataOpsPerSecond(target.directory, smallFileCount));
    emit('fuse.create-stat-unlink', 'ops/s', metadata, { files: smallFileCount });

    const clone = measure((target) => {
      const destination = join(target.directory, 'clone');
      const elapsed = seconds(() => execFileSync('git', ['clone', '-q', '--no-hardlinks', repository, destination]));
      return Math.round(elapsed * 1000) / 1000;
    });
    // For a duration, "ratio to bindfs" is bindfs time / embrfs time, so higher is better everywhere.
    context.emit({
      bench: 'fuse.git-clone',
      unit: 's',
      embrfs: clone.embrfs,
      bindfs: clone.bindfs,
      plain: clone.plain,
      ratioToBindfs: Math.round((clone.bindfs / clone.embrfs) * 100) / 100,
      files: real ? 3000 : 100,
    });
  } finally {
    if (mount !== undefined) await mount.stop();
    if (bindMounted) unmountBindfs(bindMountpoint);
  }
}
