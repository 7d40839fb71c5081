/**
 * Ordinary tools on a mounted engram: git (clone, commit, fsck, checkout), the sqlite3 CLI in WAL
 * mode, tar onto the mount and back, rsync -a and cp -a, each checked with the tool's own
 * integrity check or `diff -r` against the source tree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentBytes } from './posix-steps.js';
import { fuseUnavailableReason, startMount, teardown, type TestMount } from './harness.js';
import { fusePatchLevel } from '../../src/fuse/binding.js';

const gitEnvironment = {
  ...process.env,
  GIT_AUTHOR_NAME: 'EmbrFS Test',
  GIT_AUTHOR_EMAIL: 'test@embrfs.invalid',
  GIT_COMMITTER_NAME: 'EmbrFS Test',
  GIT_COMMITTER_EMAIL: 'test@embrfs.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

function run(command: string, args: string[], cwd: string, input?: string): string {
  return execFileSync(command, args, { cwd, env: gitEnvironment, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/** A source tree with nested directories, files of assorted sizes, a symlink, odd modes and times. */
function makeTree(root: string): void {
  fs.mkdirSync(join(root, 'a/b/c'), { recursive: true });
  fs.mkdirSync(join(root, 'empty'));
  for (let index = 0; index < 30; index += 1) {
    const directory = ['', 'a', 'a/b', 'a/b/c'][index % 4];
    fs.writeFileSync(join(root, directory, `file-${index}.bin`), contentBytes({ size: (index * 7919) % 70000, seed: index + 1 }));
  }
  fs.writeFileSync(join(root, 'script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  fs.chmodSync(join(root, 'script.sh'), 0o755);
  fs.symlinkSync('a/b/file-2.bin', join(root, 'link'));
  fs.utimesSync(join(root, 'a/file-1.bin'), 1_000_000_000, 1_000_000_000);
  // Sub-millisecond digits, which only the patched binding carries through the mount.
  fs.utimesSync(join(root, 'a/b/file-2.bin'), 1_234_567_890.123456, 1_234_567_890.654321);
}

/**
 * Every regular file's mtime under `copy` equals the source's: to the nanosecond with the patched
 * binding, to the millisecond with the stock one (its resolution).
 */
function assertSameMtimes(source: string, copy: string): void {
  const unit = fusePatchLevel >= 1 ? 1n : 1_000_000n;
  for (const name of fs.readdirSync(source, { recursive: true }) as string[]) {
    const original = fs.lstatSync(join(source, name), { bigint: true });
    if (!original.isFile()) continue;
    const copied = fs.lstatSync(join(copy, name), { bigint: true });
    assert.equal(copied.mtimeNs / unit, original.mtimeNs / unit, `mtime of ${name}`);
  }
}

test('ordinary tools work on the mount', { skip: fuseUnavailableReason() }, async (t) => {
  let mount: TestMount | undefined;
  const scratch = fs.mkdtempSync(join(tmpdir(), 'embrfs-tools-'));
  t.after(async () => {
    await teardown(mount);
    fs.rmSync(scratch, { recursive: true, force: true });
  });
  mount = await startMount({ memory: process.env.EMBRFS_FUSE_BACKEND === 'memory' });
  const mountpoint = mount.mountpoint;
  const source = join(scratch, 'source');
  fs.mkdirSync(source);
  makeTree(source);

  await t.test('git clones onto the mount, commits, passes fsck and checks out another branch', () => {
    const origin = join(scratch, 'origin');
    fs.mkdirSync(origin);
    run('git', ['init', '-q', '-b', 'main'], origin);
    fs.cpSync(source, origin, { recursive: true, verbatimSymlinks: true });
    run('git', ['add', '-A'], origin);
    run('git', ['commit', '-q', '-m', 'first'], origin);
    run('git', ['checkout', '-q', '-b', 'other'], origin);
    fs.writeFileSync(join(origin, 'other.txt'), 'only on the other branch\n');
    run('git', ['add', 'other.txt'], origin);
    run('git', ['commit', '-q', '-m', 'other'], origin);
    run('git', ['checkout', '-q', 'main'], origin);

    run('git', ['clone', '-q', origin, join(mountpoint, 'clone')], scratch);
    const clone = join(mountpoint, 'clone');
    fs.writeFileSync(join(clone, 'a/new.txt'), 'committed on the mount\n');
    fs.appendFileSync(join(clone, 'file-0.bin'), 'appended');
    run('git', ['add', '-A'], clone);
    run('git', ['commit', '-q', '-m', 'on the mount'], clone);
    assert.equal(run('git', ['status', '--porcelain'], clone), '');
    run('git', ['fsck', '--full', '--strict'], clone);
    run('git', ['checkout', '-q', 'other'], clone);
    assert.equal(fs.readFileSync(join(clone, 'other.txt'), 'utf8'), 'only on the other branch\n');
    assert.equal(fs.existsSync(join(clone, 'a/new.txt')), false);
    run('git', ['checkout', '-q', 'main'], clone);
    assert.equal(fs.readFileSync(join(clone, 'a/new.txt'), 'utf8'), 'committed on the mount\n');
    assert.equal(run('git', ['log', '--format=%s'], clone), 'on the mount\nfirst\n');
    run('git', ['gc', '-q'], clone);
    run('git', ['fsck', '--full', '--strict'], clone);
  });

  await t.test('sqlite3 runs WAL transactions and passes integrity_check', () => {
    const database = join(mountpoint, 'test.sqlite');
    const script = `
PRAGMA journal_mode=WAL;
CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, note TEXT);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO account SELECT i, 100, hex(randomblob(40)) FROM n;
COMMIT;
BEGIN;
UPDATE account SET balance = balance - 30 WHERE id = 1;
UPDATE account SET balance = balance + 30 WHERE id = 2;
COMMIT;
BEGIN;
DELETE FROM account;
ROLLBACK;
CREATE INDEX account_note ON account(note);
PRAGMA wal_checkpoint(TRUNCATE);
SELECT count(*), sum(balance) FROM account;
PRAGMA integrity_check;
`;
    const output = run('sqlite3', ['-batch', database], scratch, script);
    assert.equal(output, 'wal\n0|0|0\n5000|500000\nok\n');
    const reopened = run('sqlite3', ['-batch', database], scratch, 'PRAGMA journal_mode; SELECT balance FROM account WHERE id IN (1,2) ORDER BY id; PRAGMA integrity_check;');
    assert.equal(reopened, 'wal\n70\n130\nok\n');
  });

  await t.test('tar onto the mount and back gives the same tree', () => {
    const onMount = join(mountpoint, 'tarred');
    const back = join(scratch, 'back');
    fs.mkdirSync(onMount);
    fs.mkdirSync(back);
    const archive = join(scratch, 'tree.tar');
    const archiveBack = join(scratch, 'back.tar');
    // Separate steps so every tar's exit status counts ("file changed as we read it" is exit 1).
    run('tar', ['-C', source, '-cf', archive, '.'], scratch);
    run('tar', ['-C', onMount, '-xpf', archive], scratch);
    run('tar', ['-C', onMount, '-cf', archiveBack, '.'], scratch);
    run('tar', ['-C', back, '-xpf', archiveBack], scratch);
    run('diff', ['-r', '--no-dereference', source, onMount], scratch);
    run('diff', ['-r', '--no-dereference', source, back], scratch);
    // tar -x sets mtime with futimens(atime = UTIME_OMIT), which the stock binding drops (so the
    // check needs the patched one); GNU tar's default archive format keeps whole seconds.
    if (fusePatchLevel >= 1) {
      for (const name of ['a/file-1.bin', 'a/b/file-2.bin', 'script.sh']) {
        assert.equal(fs.statSync(join(onMount, name)).mtimeMs / 1000 | 0, fs.statSync(join(source, name)).mtimeMs / 1000 | 0, `mtime of ${name} after tar -x`);
      }
    }
    assert.equal(fs.statSync(join(back, 'script.sh')).mode & 0o777, 0o755);
    assert.equal(fs.readlinkSync(join(back, 'link')), 'a/b/file-2.bin');
  });

  await t.test('rsync -a copies the tree and a second run changes nothing', () => {
    const target = join(mountpoint, 'rsynced');
    run('rsync', ['-a', `${source}/`, `${target}/`], scratch);
    run('diff', ['-r', '--no-dereference', source, target], scratch);
    assert.equal(fs.statSync(join(target, 'a/file-1.bin')).mtimeMs, 1_000_000_000_000);
    assertSameMtimes(source, target);
    const second = run('rsync', ['-a', '--itemize-changes', `${source}/`, `${target}/`], scratch);
    assert.equal(second, '', 'nothing to transfer on the second run');
  });

  await t.test('cp -a copies the tree with modes, links and times', () => {
    const target = join(mountpoint, 'copied');
    run('cp', ['-a', source, target], scratch);
    run('diff', ['-r', '--no-dereference', source, target], scratch);
    assert.equal(fs.statSync(join(target, 'script.sh')).mode & 0o777, 0o755);
    assert.equal(fs.statSync(join(target, 'a/file-1.bin')).mtimeMs, 1_000_000_000_000);
    assertSameMtimes(source, target);
    assert.equal(fs.readlinkSync(join(target, 'link')), 'a/b/file-2.bin');
  });

  assert.equal(mount.stderr().includes('unexpected failure'), false, mount.stderr());
});
