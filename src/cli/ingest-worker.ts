/**
 * The worker thread of {@link FileWritePool}: opens the engram once and writes each batch of
 * files it receives in one transaction (big files are streamed in their own commit).
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import type { Engram, Transaction, WriteOptions } from '../fs/api.js';
import { openEngram } from '../fs/index.js';
import { EmbrError } from '../errors.js';
import { retryWhileBusy } from './batch.js';
import type { FileWriteJob, WorkerReply, WorkerRequest } from './write-pool.js';

/** Files above this size are streamed with bounded memory instead of read whole. */
const streamThresholdBytes = 8 * 1024 * 1024;

function writeOptionsOf(job: FileWriteJob): WriteOptions {
  const options: WriteOptions = { mode: job.mode, mtimeNs: job.mtimeNs };
  if (job.uid !== undefined) options.uid = job.uid;
  if (job.gid !== undefined) options.gid = job.gid;
  return options;
}

async function fixMetadata(tx: Pick<Transaction, 'chown' | 'chmod' | 'utimes'>, job: FileWriteJob): Promise<void> {
  const fix = job.fixMetadata;
  if (fix === undefined) return;
  // chown before chmod: chown clears set-id bits.
  if (fix.uid !== undefined && fix.gid !== undefined) await tx.chown(job.engramPath, fix.uid, fix.gid);
  if (fix.mode !== undefined) await tx.chmod(job.engramPath, fix.mode);
  await tx.utimes(job.engramPath, null, job.mtimeNs);
}

async function writeBatch(engram: Engram, files: FileWriteJob[]): Promise<void> {
  const small = files.filter((job) => job.sizeBytes <= streamThresholdBytes);
  const big = files.filter((job) => job.sizeBytes > streamThresholdBytes);
  if (small.length > 0) {
    // Read before the transaction: the body may be retried, the bytes need not be read again.
    const contents = await Promise.all(small.map((job) => job.data ?? readFile(job.sourcePath)));
    await retryWhileBusy(() =>
      engram.transaction(
        async (tx) => {
          for (let index = 0; index < small.length; index += 1) {
            await tx.writeFile(small[index].engramPath, contents[index], writeOptionsOf(small[index]));
            await fixMetadata(tx, small[index]);
          }
        },
        { retries: 5 },
      ),
    );
  }
  for (const job of big) {
    // A stream cannot be replayed, so a retry opens the source again.
    await retryWhileBusy(() => engram.writeFileFrom(job.engramPath, createReadStream(job.sourcePath, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>, writeOptionsOf(job)));
    if (job.fixMetadata !== undefined) await retryWhileBusy(() => engram.transaction((tx) => fixMetadata(tx, job)));
  }
}

function failureReply(id: number, error: unknown): WorkerReply {
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
  const { engramFile } = workerData as { engramFile: string };
  let engram: Engram;
  try {
    engram = await openEngram(engramFile);
  } catch (error) {
    port.postMessage(failureReply(0, error));
    return;
  }
  // One batch at a time: the pool never sends a second before the first is answered.
  let queue = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    queue = queue.then(async () => {
      if (request.kind === 'close') {
        await engram.close();
        port.postMessage({ kind: 'closed' } satisfies WorkerReply);
        port.close();
        return;
      }
      try {
        await writeBatch(engram, request.files);
        port.postMessage({ kind: 'done', id: request.id } satisfies WorkerReply);
      } catch (error) {
        port.postMessage(failureReply(request.id, error));
      }
    });
  });
  port.postMessage({ kind: 'ready' } satisfies WorkerReply);
}

await serve();
