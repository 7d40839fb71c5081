/**
 * Launchers for `counter-worker.js`: as a worker thread or as a separate OS process. Both resolve
 * to the worker's {@link CounterWorkerOutput}; a worker that dies without reporting rejects.
 *
 * @example
 * ```ts
 * const outputs = await Promise.all([0, 1, 2, 3].map((index) =>
 *   runCounterProcess({ mode: 'increment', engramFile, paths: ['/counter'], rounds: 50, seed: index })));
 * ```
 */
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import type { CounterWorkerInput, CounterWorkerOutput } from './counter-worker.js';

const workerScriptUrl = new URL('./counter-worker.js', import.meta.url);

/** Runs the counter worker in a `worker_threads` worker. */
export function runCounterThread(input: CounterWorkerInput): Promise<CounterWorkerOutput> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerScriptUrl, { workerData: input });
    let output: CounterWorkerOutput | undefined;
    worker.once('message', (message: CounterWorkerOutput) => {
      output = message;
    });
    worker.once('error', reject);
    worker.once('exit', (exitCode) => {
      if (output !== undefined) resolve(output);
      else reject(new Error(`counter worker thread exited with code ${exitCode} without a report`));
    });
  });
}

/** Runs the counter worker as a separate Node process (its own SQLite connection and locks). */
export function runCounterProcess(input: CounterWorkerInput): Promise<CounterWorkerOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [workerScriptUrl.pathname, JSON.stringify(input)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.once('error', reject);
    child.once('close', (exitCode, signal) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as CounterWorkerOutput);
      } catch {
        reject(new Error(`counter process exited (code ${exitCode}, signal ${signal}) without a report; stderr: ${stderr.slice(-2000)}`));
      }
    });
  });
}
