/**
 * The child process of the crash test. It opens an engram with default (full) durability and
 * writes files in a loop until it is killed, reporting on stdout, one line each:
 *
 *   ready
 *   intent <path> <sha256>            before a write starts (the content may end up committed)
 *   ack <path> <version> <sha256>     after the write resolved (the content MUST survive)
 *   busy                              a step failed with BUSY (not acknowledged; counted)
 *
 * About one step in forty is a compaction (keeping 20 commits of history) instead of a write.
 *
 * One write in four is a two-file transaction (both files get the same bytes), reported as two
 * intents before and, after it committed, two `ack-at-least <path> <version> <sha256>` lines whose
 * version is a lower bound (the commit number of a transaction is not returned to the caller).
 *
 * Writes to a pipe are synchronous in Node on Linux, so a line is in the parent's pipe before the
 * next statement runs: an `intent` is always seen before its commit can happen, and an `ack` is
 * never seen for a write that did not resolve.
 *
 * Input: one JSON argument, {@link CrashWriterInput}.
 */
import { isEmbrError, openEngram, type Engram } from '../../src/index.js';
import { SeededRandom, seededBytes, sha256Hex } from './helpers.js';

/** What the crash test passes to a writer. */
export interface CrashWriterInput {
  engramFile: string;
  paths: string[];
  /** Two paths always written together, with the same content, in one transaction. */
  pairPaths: [string, string];
  seed: number;
  /**
   * When set, every plain write (not the pair transactions) writes this many fresh bytes instead:
   * large enough to be staged while it encodes (docs/design/store.md §3.7), so kills land during
   * staging, between the stage commits and the final commit, and in the background checkpoint.
   */
  largeBytes?: number;
}

/** 16 fixed 4 KiB blocks: contents are built from them so the engram stays small through dedup. */
const blocks = Array.from({ length: 16 }, (_, index) => seededBytes(`crash-block:${index}`, 4096));

function makeContent(random: SeededRandom, seed: number, sequence: number): Uint8Array {
  const blockCount = random.integer(0, 15) === 0 ? random.integer(8, 40) : random.integer(0, 3);
  const tailBytes = random.integer(0, 3000);
  // A unique 32-byte head keeps every content distinct; the rest deduplicates.
  const head = seededBytes(`crash-head:${seed}:${sequence}`, 32);
  const content = new Uint8Array(head.length + blockCount * 4096 + tailBytes);
  content.set(head, 0);
  for (let block = 0; block < blockCount; block += 1) content.set(random.pick(blocks), head.length + block * 4096);
  content.set(seededBytes(`crash-tail:${seed}:${sequence}`, tailBytes), head.length + blockCount * 4096);
  return content;
}

async function main(input: CrashWriterInput): Promise<void> {
  const random = new SeededRandom(input.seed);
  const engram = await openEngram(input.engramFile);
  process.stdout.write('ready\n');
  // Bounded: the parent kills us long before this ends.
  for (let sequence = 0; sequence < 1_000_000; sequence += 1) {
    try {
      await step(engram, random, input, sequence);
    } catch (error) {
      // BUSY (the lock was held past the busy timeout, e.g. by a compaction on a loaded machine)
      // is an operating condition a client retries; the write was not acknowledged.
      if (!isEmbrError(error, 'BUSY')) throw error;
      process.stdout.write('busy\n');
    }
  }
  await engram.close();
}

async function step(engram: Engram, random: SeededRandom, input: CrashWriterInput, sequence: number): Promise<void> {
  if (random.integer(0, 39) === 0) {
    // Now and then a compaction, racing the other writers and the kill: it must never free
    // what a live file (or a write being staged by another process) still needs.
    await engram.compact({ retainCommits: 20 });
    return;
  }
  const content = makeContent(random, input.seed, sequence);
  const sha256 = sha256Hex(content);
  if (random.integer(0, 3) === 0) {
    // One write in four is a transaction putting the same bytes in both pair files: after any
    // crash the two must be equal (all of a transaction or none of it).
    const [first, second] = input.pairPaths;
    process.stdout.write(`intent ${first} ${sha256}\nintent ${second} ${sha256}\n`);
    // Inside a transaction the version is only known at commit (tx.writeFile returns a guess),
    // so the ack carries a lower bound: the commit lands after the head we saw before it.
    const headBefore = await engram.currentCommit();
    await engram.transaction(async (tx) => {
      await tx.writeFile(first, content);
      await tx.writeFile(second, content);
    });
    process.stdout.write(`ack-at-least ${first} ${headBefore + 1} ${sha256}\nack-at-least ${second} ${headBefore + 1} ${sha256}\n`);
  } else {
    const path = random.pick(input.paths);
    const bytes = input.largeBytes === undefined ? content : seededBytes(`crash-large:${input.seed}:${sequence}`, input.largeBytes);
    const bytesSha256 = input.largeBytes === undefined ? sha256 : sha256Hex(bytes);
    process.stdout.write(`intent ${path} ${bytesSha256}\n`);
    const version = await engram.writeFile(path, bytes);
    process.stdout.write(`ack ${path} ${version} ${bytesSha256}\n`);
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as CrashWriterInput).catch((error: unknown) => {
  process.stderr.write(`crash-writer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(3);
});
