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
 * - `transfer`: `rounds` transfers between random pairs of the decimal balances in `paths`, each one
 *   multi-file transaction with optimistic retry; reports every transfer it committed.
 * - `read-verify`: reads one path until the last expected content appears, checking that every
 *   read is one whole committed content and never goes back (readers in other threads/processes).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { openEngram, type Engram } from '../../src/index.js';
import { SeededRandom, describeError, fromUtf8, incrementCounter, seededBytes, sha256Hex, utf8 } from './helpers.js';

/** What the parent asks a counter worker to do. */
export interface CounterWorkerInput {
  mode: 'increment' | 'own-files' | 'read-verify' | 'transfer';
  engramFile: string;
  paths: string[];
  rounds: number;
  seed: number;
  /** read-verify: the SHA-256 of every committed content of paths[0], in commit order. */
  allowedSha256?: string[];
  /** read-verify: created (exclusive) once the worker has opened the engram, so a writer can wait for it. */
  readyPath?: string;
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
  /** read-verify mode: how many whole reads were checked. */
  reads?: number;
  /** transfer mode: every committed transfer as [from path index, to path index, amount]. */
  transfers?: Array<[number, number, number]>;
}

/**
 * Reads paths[0] whole, over and over, until it shows the last allowed content: every read must
 * be exactly one committed content (no torn read), and neither version nor content may go back.
 */
async function readAndVerify(engram: Engram, input: CounterWorkerInput): Promise<number> {
  const allowed = input.allowedSha256 ?? [];
  const indexOf = new Map(allowed.map((sha256, index) => [sha256, index]));
  if (input.readyPath !== undefined) await engram.writeFile(input.readyPath, new Uint8Array(0), { exclusive: true });
  let lastVersion = 0;
  let lastIndex = -1;
  const deadlineMs = Date.now() + 120_000;
  for (let reads = 1; Date.now() < deadlineMs; reads += 1) {
    const { data, version } = await engram.readFile(input.paths[0]);
    const index = indexOf.get(sha256Hex(data));
    if (index === undefined) throw new Error(`read ${data.length} bytes at version ${version} that match no committed content (torn read)`);
    if (version < lastVersion || index < lastIndex) throw new Error(`went back from version ${lastVersion} to ${version}`);
    lastVersion = version;
    lastIndex = index;
    if (index === allowed.length - 1) return reads;
  }
  throw new Error('read-verify: the last content never showed up within 120 s');
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
    } else if (input.mode === 'transfer') {
      output.transfers = [];
      for (let round = 0; round < input.rounds; round += 1) {
        const from = random.integer(0, input.paths.length - 1);
        const to = (from + random.integer(1, input.paths.length - 1)) % input.paths.length;
        const amount = random.integer(1, 100);
        await engram.transaction(
          async (tx) => {
            const fromValue = Number(fromUtf8((await tx.readFile(input.paths[from])).data));
            const toValue = Number(fromUtf8((await tx.readFile(input.paths[to])).data));
            await tx.writeFile(input.paths[from], utf8(String(fromValue - amount)));
            await tx.writeFile(input.paths[to], utf8(String(toValue + amount)));
          },
          { retries: 1000 },
        );
        output.transfers.push([from, to, amount]);
        output.commits += 1;
      }
    } else if (input.mode === 'read-verify') {
      output.reads = await readAndVerify(engram, input);
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
