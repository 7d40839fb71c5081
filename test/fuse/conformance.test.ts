/**
 * POSIX conformance of the mount: the same ordered system calls on a tmpfs directory (/dev/shm)
 * and on a mounted engram, compared case by case (result value or errno). Permission cases run
 * in a child process as uid/gid 65534.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCases, type ConformanceCase } from './conformance-cases.js';
import { runStep, type Outcome } from './posix-steps.js';
import { fuseUnavailableReason, startMount, teardown, type TestMount } from './harness.js';
import { fusePatchLevel } from '../../src/fuse/binding.js';

const runnerScript = fileURLToPath(new URL('./posix-runner.js', import.meta.url));
const NOBODY = 65534;

function runAll(root: string, cases: ConformanceCase[]): Outcome[] {
  const outcomes: Outcome[] = [];
  let index = 0;
  while (index < cases.length) {
    if (cases[index].user !== 'nobody') {
      outcomes.push(runStep(root, cases[index].step));
      index += 1;
      continue;
    }
    // One child per run of consecutive unprivileged cases.
    let end = index;
    while (end < cases.length && cases[end].user === 'nobody') end += 1;
    const steps = cases.slice(index, end).map((entry) => entry.step);
    const result = spawnSync(process.execPath, [runnerScript], {
      input: JSON.stringify({ root, steps }),
      uid: NOBODY,
      gid: NOBODY,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (result.status !== 0) throw new Error(`unprivileged runner failed (${result.status}): ${result.stderr}`);
    outcomes.push(...(JSON.parse(result.stdout) as Outcome[]));
    index = end;
  }
  return outcomes;
}

function prepareRoot(base: string): string {
  chmodSync(base, 0o755);
  const root = join(base, 'w');
  mkdirSync(root);
  chmodSync(root, 0o777);
  return root;
}

test('the mount answers every conformance case like tmpfs does', { skip: fuseUnavailableReason() }, async (t) => {
  const cases = buildCases(fusePatchLevel);
  assert.ok(cases.length >= 300, `at least 300 cases (have ${cases.length})`);
  const previousUmask = process.umask(0o022);
  const tmpfsBase = mkdtempSync('/dev/shm/embrfs-conformance-');
  let mount: TestMount | undefined;
  t.after(async () => {
    process.umask(previousUmask);
    rmSync(tmpfsBase, { recursive: true, force: true });
    await teardown(mount);
  });
  mount = await startMount({ memory: process.env.EMBRFS_FUSE_BACKEND === 'memory' });
  const expected = runAll(prepareRoot(tmpfsBase), cases);
  const actual = runAll(prepareRoot(mount.mountpoint), cases);
  for (const [index, entry] of cases.entries()) {
    await t.test(`case ${index + 1}: ${entry.name}`, () => {
      if (entry.difference !== undefined) {
        assert.notDeepEqual(expected[index], entry.difference.mount, 'a listed difference must still be a difference');
        assert.deepEqual(actual[index], entry.difference.mount, entry.difference.reason);
      } else {
        assert.deepEqual(actual[index], expected[index], JSON.stringify(entry.step));
      }
    });
  }
  assert.equal(mount.stderr().includes('unexpected failure'), false, mount.stderr());
});
