/**
 * Crash: the mount process is killed with SIGKILL while another process writes and fsyncs files
 * through it. After cleaning the stale mount and remounting, every file whose fsync returned must
 * be intact, and the engram must pass `verify()`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { contentBytes } from './posix-steps.js';
import { fuseUnavailableReason, startMount, teardown, type TestMount } from './harness.js';

const slow = process.env.EMBRFS_SLOW === '1';
const ackedTarget = slow ? 200 : 25;

/** The writer: writes f<i> (deterministic content), fsyncs, then prints i; also scribbles unsynced data. */
const writerScript = `
const fs = require('node:fs');
const path = require('node:path');
const [mountpoint] = process.argv.slice(1);
function content(size, seed) {
  const bytes = Buffer.alloc(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; bytes[i] = state & 0xff; }
  return bytes;
}
const scratch = fs.openSync(path.join(mountpoint, 'unsynced.bin'), 'w');
for (let i = 0; ; i += 1) {
  const fd = fs.openSync(path.join(mountpoint, 'f' + i), 'w');
  const bytes = content(1000 + ((i * 7919) % 200000), i + 1);
  for (let offset = 0; offset < bytes.length; offset += 16384) fs.writeSync(fd, bytes, offset, Math.min(16384, bytes.length - offset), offset);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  process.stdout.write(i + '\\n');
  fs.writeSync(scratch, content(50000, i + 1000));
}
`;

test('every fsynced file survives a SIGKILL of the mount process and the engram verifies', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  let remount: TestMount | undefined;
  let writer: ReturnType<typeof spawn> | undefined;
  t.after(async () => {
    writer?.kill('SIGKILL');
    if (remount !== undefined) await teardown(remount);
    else await teardown(mount);
  });
  mount = await startMount();
  const acked: number[] = [];
  writer = spawn(process.execPath, ['-e', writerScript, mount.mountpoint], { stdio: ['ignore', 'pipe', 'pipe'] });
  const writerExited = new Promise<void>((resolve) => writer?.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${acked.length} files acknowledged in 120 s`)), 120_000);
    let pending = '';
    writer?.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) acked.push(Number(line));
      if (acked.length >= ackedTarget) {
        clearTimeout(timer);
        resolve();
      }
    });
    writer?.once('exit', (code) => {
      clearTimeout(timer);
      if (acked.length < ackedTarget) reject(new Error(`writer exited with ${code} after ${acked.length} files`));
    });
  });
  // Kill the server mid-stream: the writer is in the middle of its next file.
  await mount.kill();
  writer.kill('SIGKILL');
  await writerExited;
  assert.equal(fs.existsSync(join(mount.mountpoint, 'f0')), false, 'the stale mount is gone (the directory is empty again)');

  remount = await startMount({ directory: mount.directory });
  for (const index of acked) {
    const expected = contentBytes({ size: 1000 + ((index * 7919) % 200000), seed: index + 1 });
    const actual = fs.readFileSync(join(remount.mountpoint, `f${index}`));
    assert.ok(actual.equals(expected), `f${index} (fsynced before the kill) is intact`);
  }
  assert.equal(await remount.stop(), 0, 'the remount exits cleanly');

  const { openEngram } = await import('../../src/fs/index.js');
  const engram = await openEngram(remount.engramFile, { readOnly: true });
  try {
    const report = await engram.verify();
    assert.equal(report.ok, true, report.problems.join('\n'));
    assert.ok(report.checkedFiles >= acked.length, 'verify checked at least every acknowledged file');
  } finally {
    await engram.close();
  }
});
