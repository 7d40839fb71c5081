import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { CommitOrder, OrderAbortedError } from './commit-order.js';

test('CommitOrder lets tickets through in order, whatever order they arrive in', async () => {
  const order = new CommitOrder();
  const passed: number[] = [];
  const waiters = [3, 1, 2, 0].map(async (ticket) => {
    await order.waitFor(ticket);
    passed.push(ticket);
    // Give a later ticket the chance to slip through if the lock were wrong.
    await new Promise((resolve) => setTimeout(resolve, 5));
    order.done(ticket);
  });
  await Promise.all(waiters);
  assert.deepEqual(passed, [0, 1, 2, 3]);
});

test('CommitOrder.abort stops every waiter with OrderAbortedError, and later waits too', async () => {
  const order = new CommitOrder();
  await order.waitFor(0);
  const later = [1, 2].map((ticket) => order.waitFor(ticket));
  order.abort();
  for (const waiting of later) await assert.rejects(waiting, OrderAbortedError);
  await assert.rejects(order.waitFor(3), OrderAbortedError);
});

test('CommitOrder orders threads that share its buffer', async () => {
  const order = new CommitOrder();
  const log = new Int32Array(new SharedArrayBuffer(4 * 9));
  // Each worker runs this module's CommitOrder on the shared buffer and logs its tickets.
  const source = `
    const { workerData } = require('node:worker_threads');
    import(workerData.module).then(async ({ CommitOrder }) => {
      const order = new CommitOrder(workerData.order);
      const log = new Int32Array(workerData.log);
      for (const ticket of workerData.tickets) {
        await order.waitFor(ticket);
        const at = Atomics.add(log, 0, 1);
        log[at + 1] = ticket;
        order.done(ticket);
      }
    });
  `;
  const module = new URL('./commit-order.js', import.meta.url).href;
  const workers = [
    [1, 3, 5, 7],
    [2, 4, 6],
  ].map((tickets) => new Worker(source, { eval: true, workerData: { module, order: order.buffer, log: log.buffer, tickets } }));
  const exited = workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve)));
  await order.waitFor(0);
  order.done(0);
  await order.waitFor(8);
  await Promise.all(exited);
  assert.deepEqual([...log.subarray(1, 8)], [1, 2, 3, 4, 5, 6, 7]);
});
