/**
 * A writer used by the concurrency suites, both as a `worker_threads` worker (input in
 * `workerData`, result by `postMessage`) and as a separate OS process (input as JSON in argv[2],
 * result as one JSON line on stdout). Each run opens the engram file itself, so it exercises
 * several connections on one engram, as separate processes would.
 *
 * Modes:
 * - `increment`: `rounds` times, for every path, read-increment-write the decimal counter with
 *   `expectedVersion` and retry on VERSION_MISMATCH. Reports every version it committed.
 * - `own-files`: writes `rounds` versions of each of its own paths with `expectedVersion` equal to
 *   the version it wrote last; with one writer per file, any conflict is a bug (unrelated files
 *   must never conflict).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { openEngram } from '../../src/index.js';
import { SeededRandom, describeError, incrementCounter, seededBytes, sha256Hex } from './helpers.js';

/** What the parent asks a counter worker to do. */
export interface CounterWorkerInput {
  mode: 'increment' | 'own-files';
  engramFile: string;
  paths: string[];
  rounds: number;
  seed: number;
}

/** What a counter worker reports back. */
export interface CounterWorkerOutput {
  ok: boolean;
  error?: string;
  commits: number;
  conflicts: number;
  /** path -> versions this worker committed, in order. */
  versions: Record<string, number[]>;
  /** own-files mode: path -> SHA-256 of the last content written. */
  lastSha256: Record<string, string>;
}

async function runWorker(input: CounterWorkerInput): Promise<CounterWorkerOutput> {
  const output: CounterWorkerOutput = { ok: false, commits: 0, conflicts: 0, versions: {}, lastSha256: {} };
  for (const path of input.paths) output.versions[path] = [];
  const random = new SeededRandom(input.seed);
  const engram = await openEngram(input.engramFile);
  try {
    if (input.mode === 'increment') {
      for (let round = 0; round < input.rounds; round += 1) {
        for (const path of input.paths) {
          const result = await incrementCounter(engram, path, random);
          output.commits += 1;
          output.conflicts += result.conflicts;
          output.versions[path].push(result.version);
        }
      }
    } else {
      const lastVersion = new Map<string, number | undefined>();
      for (let round = 0; round < input.rounds; round += 1) {
        for (const path of input.paths) {
          const data = seededBytes(`${input.seed}:${path}:${round}`, random.integer(0, 20_000));
          const expectedVersion = lastVersion.get(path);
          const version = await engram.writeFile(
            path,
            data,
            expectedVersion === undefined ? { exclusive: true } : { expectedVersion },
          );
          lastVersion.set(path, version);
          output.commits += 1;
          output.versions[path].push(version);
          output.lastSha256[path] = sha256Hex(data);
        }
      }
    }
    output.ok = true;
  } catch (error) {
    output.error = describeError(error);
  } finally {
    await engram.close();
  }
  return output;
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  runWorker(workerData as CounterWorkerInput).then(
    (output) => port.postMessage(output),
    (error: unknown) => port.postMessage({ ok: false, error: describeError(error), commits: 0, conflicts: 0, versions: {}, lastSha256: {} }),
  );
} else if (process.argv[2] !== undefined) {
  runWorker(JSON.parse(process.argv[2]) as CounterWorkerInput).then(
    (output) => {
      process.stdout.write(`${JSON.stringify(output)}\n`);
      process.exitCode = output.ok ? 0 : 1;
    },
    (error: unknown) => {
      process.stdout.write(`${JSON.stringify({ ok: false, error: describeError(error), commits: 0, conflicts: 0, versions: {}, lastSha256: {} })}\n`);
      process.exitCode = 1;
    },
  );
}
