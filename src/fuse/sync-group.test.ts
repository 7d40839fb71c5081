import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncGroup } from './sync-group.js';

function counter(fail = false) {
  const calls: number[] = [];
  let count = 0;
  const sync = async (): Promise<void> => {
    count += 1;
    calls.push(count);
    if (fail) throw new Error('fsync failed (simulated)');
  };
  return { sync, calls: () => count };
}

test('callers of soon() within the delay share one sync', async () => {
  const { sync, calls } = counter();
  const group = new SyncGroup(sync, 20);
  const waits = [group.soon(), group.soon(), group.soon()];
  assert.equal(calls(), 0, 'nothing synced before the delay');
  await Promise.all(waits);
  assert.equal(calls(), 1);
  await group.soon();
  assert.equal(calls(), 2, 'a later caller gets a sync of its own');
});

test('now() syncs at once and answers those already waiting', async () => {
  const { sync, calls } = counter();
  const group = new SyncGroup(sync, 60_000);
  let answered = false;
  const waiting = group.soon().then(() => {
    answered = true;
  });
  await group.now();
  await waiting;
  assert.equal(answered, true, 'the soon() caller did not wait for its (one minute) delay');
  assert.equal(calls(), 1);
  await group.settle();
  assert.equal(calls(), 1, 'settle with nobody waiting does not sync');
});

test('a failed sync rejects the callers it was for, and the next round syncs again', async () => {
  let fail = true;
  let count = 0;
  const group = new SyncGroup(async () => {
    count += 1;
    if (fail) throw new Error('fsync failed (simulated)');
  }, 5);
  const first = group.soon();
  const second = group.soon();
  await assert.rejects(first, /simulated/);
  await assert.rejects(second, /simulated/);
  fail = false;
  await group.soon();
  assert.equal(count, 2);
});

test('settle() syncs for callers still waiting on their delay', async () => {
  const { sync, calls } = counter();
  const group = new SyncGroup(sync, 60_000);
  const waiting = group.soon();
  await group.settle();
  await waiting;
  assert.equal(calls(), 1);
});

test('a negative delay is refused', () => {
  assert.throws(() => new SyncGroup(async () => undefined, -1), RangeError);
});
