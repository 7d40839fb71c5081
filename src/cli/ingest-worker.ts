/**
 * Worker thread of `ingest` (see write-pool.ts): opens the engram once and applies the batches
 * of tree ops it is sent, one transaction per batch, committing in ticket order.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import type { Engram } from '../fs/api.js';
import { openEngram } from '../fs/index.js';
import { EmbrError } from '../errors.js';
import { retryWhileBusy } from './batch.js';
import { CommitOrder, OrderAbortedError } from './commit-order.js';
import { applyTreeOp, fixFileMetadata, writeOptionsOf, type FileWriteJob, type TreeOp } from './tree-ops.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './write-pool.js';

/** Files above this size are streamed with bounded memory instead of read whole. */
const streamThresholdBytes = 8 * 1024 * 1024;

async function writeBatch(engram: Engram, order: CommitOrder, ticket: number, ops: TreeOp[]): Promise<void> {
  const big: FileWriteJob[] = [];
  const inTransaction: TreeOp[] = [];
  for (const op of ops) {
    if (op.kind === 'write' && op.job.data === undefined && op.job.sizeBytes > streamThresholdBytes) big.push(op.job);
    else inTransaction.push(op);
  }
  // Read before the transaction: the body may be retried, the bytes need not be read again.
  await Promise.all(
    inTransaction.map(async (op) => {
      if (op.kind === 'write' && op.job.data === undefined) op.job.data = await readFile(op.job.sourcePath);
    }),
  );
  try {
    await retryWhileBusy(() =>
      engram.transaction(
        async (tx) => {
          for (const op of inTransaction) await applyTreeOp(tx, op);
          // Everything is encoded now; the commit follows this body at once, after the earlier batches'.
          await order.waitFor(ticket);
        },
        { retries: 5 },
      ),
    );
  } catch (error) {
    // Later batches may need what this one did not commit: stop them before the ticket moves on.
    order.abort();
    throw error;
  }
  order.done(ticket);
  // The WAL is copied into the database file here, after the turn is passed on, so the copy and its
  // fsync run beside the next batch's commit instead of inside the ordered section (commits never
  // checkpoint on their own in this connection: bulk). The batch is committed already, so a failed
  // copy must not report it failed: the WAL keeps everything, and the final sync surfaces I/O errors.
  await engram.checkpoint().catch(() => {});
  for (const job of big) {
    // Streamed after this batch's commit (its directory exists); a retry opens the source again.
    await retryWhileBusy(() => engram.writeFileFrom(job.engramPath, createReadStream(job.sourcePath, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>, writeOptionsOf(job)));
    if (job.fixMetadata !== undefined) await retryWhileBusy(() => engram.transaction((tx) => fixFileMetadata(tx, job)));
  }
}

function failureReply(id: number, error: unknown): WorkerReply {
  if (error instanceof OrderAbortedError) return { kind: 'failed', id, message: error.message, aborted: true };
  if (error instanceof EmbrError) return { kind: 'failed', id, code: error.code, message: error.message, data: { ...error.data } };
  const nodeError = error as NodeJS.ErrnoException;
  const reply: WorkerReply = { kind: 'failed', id, message: error instanceof Error ? error.message : String(error) };
  if (typeof nodeError?.code === 'string') reply.nodeCode = nodeError.code;
  if (typeof nodeError?.path === 'string') reply.path = nodeError.path;
  return reply;
}

async function serve(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('ingest-worker must run as a worker thread');
  const setup = workerData as WorkerSetup;
  const order = new CommitOrder(setup.order);
  let engram: Engram;
  try {
    // No fsync per commit: the main thread syncs once when the ingest is complete.
    engram = await openEngram(setup.engramFile, { durability: 'normal', bulk: true });
  } catch (error) {
    port.postMessage(failureReply(0, error));
    return;
  }
  // One batch at a time: the pool never sends a second before the first is answered.
  let queue = Promise.resolve();
  let lastTicket = -1;
  port.on('message', (request: WorkerRequest) => {
    queue = queue.then(async () => {
      if (request.kind === 'close') {
        // The worker that committed the last batch has the current index in its cache: it folds the
        // index log its bulk commits left (one commit), so the next process opens a tidy index.
        if (lastTicket >= 0 && lastTicket === order.next - 1) {
          try {
            await engram.checkpoint({ index: true });
          } catch {
            // Best effort: the next writer folds what is left.
          }
        }
        await engram.close();
        port.postMessage({ kind: 'closed' } satisfies WorkerReply);
        port.close();
        return;
      }
      try {
        await writeBatch(engram, order, request.ticket, request.ops);
        lastTicket = request.ticket;
        port.postMessage({ kind: 'done', id: request.id } satisfies WorkerReply);
      } catch (error) {
        order.abort();
        port.postMessage(failureReply(request.id, error));
      }
    });
  });
  port.postMessage({ kind: 'ready' } satisfies WorkerReply);
}

await serve();
