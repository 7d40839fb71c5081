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

/**
 * How a batch shares its worker with the batch before it (see {@link serve}): `encodeAfter`
 * settles when the previous batch has finished encoding (this one may start); `encoded` is called
 * when this one has, `committed` when it has committed (or failed); `earlier` is the previous
 * batch while it waits for its commit turn.
 */
interface BatchTurns {
  encodeAfter: Promise<unknown>;
  encoded(): void;
  committed(): void;
  earlier(): WaitingBatch | undefined;
}

/** A batch of this worker; `committed` settles once it committed or failed. */
interface WaitingBatch {
  ticket: number;
  isCommitted: boolean;
  committed: Promise<unknown>;
}

async function writeBatch(engram: Engram, order: CommitOrder, ticket: number, ops: TreeOp[], turns: BatchTurns): Promise<void> {
  const big: FileWriteJob[] = [];
  const inTransaction: TreeOp[] = [];
  for (const op of ops) {
    if (op.kind === 'write' && op.job.data === undefined && op.job.sizeBytes > streamThresholdBytes) big.push(op.job);
    else inTransaction.push(op);
  }
  try {
    await turns.encodeAfter;
    // Read before the transaction: the body may be retried, the bytes need not be read again.
    await Promise.all(
      inTransaction.map(async (op) => {
        if (op.kind === 'write' && op.job.data === undefined) op.job.data = await readFile(op.job.sourcePath);
      }),
    );
    await retryWhileBusy(() =>
      engram.transaction(
        async (tx) => {
          for (const op of inTransaction) {
            // The batch before this one (same thread) commits first: once its turn has come, it must
            // not wait for this batch's encoding, or every later batch in the other worker waits too.
            const earlier = turns.earlier();
            if (earlier !== undefined && order.next >= earlier.ticket) await earlier.committed;
            await applyTreeOp(tx, op);
          }
        },
        {
          retries: 5,
          // Everything is encoded and packed now; the commit follows at once, after the earlier batches'.
          beforeCommit: async () => {
            turns.encoded();
            await order.waitFor(ticket);
          },
        },
      ),
    );
  } catch (error) {
    // Later batches may need what this one did not commit: stop them before the ticket moves on.
    order.abort();
    throw error;
  }
  order.done(ticket);
  turns.committed();
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
  // Up to two batches at a time (the pool's depth): while one waits for its commit turn, the
  // next one encodes, so the thread is not idle while the other worker commits. Encoding is one
  // batch after the other; commits follow the tickets.
  let encodeTurn: Promise<unknown> = Promise.resolve();
  let previous: WaitingBatch | undefined;
  const inFlight = new Set<Promise<unknown>>();
  let lastTicket = -1;
  port.on('message', (request: WorkerRequest) => {
    if (request.kind === 'batch') {
      const encodeAfter = encodeTurn;
      let encoded!: () => void;
      encodeTurn = new Promise<void>((resolve) => {
        encoded = resolve;
      });
      const earlier = previous;
      let settle!: () => void;
      const batch: WaitingBatch = {
        ticket: request.ticket,
        isCommitted: false,
        committed: new Promise<void>((resolve) => {
          settle = resolve;
        }),
      };
      previous = batch;
      const markCommitted = () => {
        batch.isCommitted = true;
        settle();
      };
      const run = (async () => {
        try {
          await writeBatch(engram, order, request.ticket, request.ops, {
            encodeAfter,
            encoded,
            committed: markCommitted,
            earlier: () => (earlier !== undefined && !earlier.isCommitted ? earlier : undefined),
          });
          lastTicket = Math.max(lastTicket, request.ticket);
          port.postMessage({ kind: 'done', id: request.id } satisfies WorkerReply);
        } catch (error) {
          order.abort();
          port.postMessage(failureReply(request.id, error));
        } finally {
          encoded();
          markCommitted();
        }
      })();
      inFlight.add(run);
      void run.finally(() => inFlight.delete(run));
      return;
    }
    // close: after every batch in flight.
    void (async () => {
      await Promise.all([...inFlight]);
      // The worker that committed the last batch has the current index in its cache: it folds the
      // index log its bulk commits left (one commit) if that log is past the mark at which an
      // ordinary writer folds; below it, the log is what any engram may hold, and folding it here
      // would keep the other worker idle (the bulk commits fold every 32,768 chunks meanwhile).
      if (lastTicket >= 0 && lastTicket === order.next - 1) {
        try {
          await engram.checkpoint({ index: 'due' });
        } catch {
          // Best effort: the next writer folds what is left.
        }
      }
      await engram.close();
      port.postMessage({ kind: 'closed' } satisfies WorkerReply);
      port.close();
    })();
  });
  port.postMessage({ kind: 'ready' } satisfies WorkerReply);
}

await serve();
