/**
 * A separate process for the bounded-memory streaming test: it streams `totalBytes` of seeded
 * content into a new engram with `writeFileFrom`, streams it back out with `createReadStream`,
 * hashes both sides, and reports its own peak RSS (so the parent's memory does not blur it).
 *
 * Input: one JSON argument, {@link StreamChildInput}. Output: one JSON line, {@link StreamChildOutput}.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openEngram } from '../../src/index.js';
import { describeError, seededBytes } from './helpers.js';

export interface StreamChildInput {
  engramFile: string;
  totalBytes: number;
  pieceBytes: number;
}

export interface StreamChildOutput {
  ok: boolean;
  error?: string;
  writtenSha256: string;
  readSha256: string;
  readBytes: number;
  /** Peak resident set size of this process, in bytes. */
  maxRssBytes: number;
  /** Resident set size after opening the engram, before streaming (the baseline). */
  baselineRssBytes: number;
  writeSeconds: number;
  readSeconds: number;
}

async function main(input: StreamChildInput): Promise<StreamChildOutput> {
  const output: StreamChildOutput = { ok: false, writtenSha256: '', readSha256: '', readBytes: 0, maxRssBytes: 0, baselineRssBytes: 0, writeSeconds: 0, readSeconds: 0 };
  const engram = await openEngram(input.engramFile, { create: true });
  try {
    output.baselineRssBytes = process.memoryUsage().rss;
    const written = createHash('sha256');
    async function* source(): AsyncIterable<Uint8Array> {
      for (let offset = 0; offset < input.totalBytes; offset += input.pieceBytes) {
        const piece = seededBytes(`stream:${offset}`, Math.min(input.pieceBytes, input.totalBytes - offset));
        written.update(piece);
        yield piece;
      }
    }
    let start = process.hrtime.bigint();
    await engram.writeFileFrom('/stream.bin', source());
    output.writeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    output.writtenSha256 = written.digest('hex');
    start = process.hrtime.bigint();
    const read = createHash('sha256');
    for await (const piece of engram.createReadStream('/stream.bin')) {
      read.update(piece);
      output.readBytes += piece.length;
    }
    output.readSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    output.readSha256 = read.digest('hex');
    output.ok = true;
  } catch (error) {
    output.error = describeError(error);
  } finally {
    await engram.close();
  }
  output.maxRssBytes = peakRssBytes();
  return output;
}

/**
 * Peak RSS of this process image. `process.resourceUsage().maxRSS` is no good here: Linux keeps
 * the rusage maximum across fork and exec, so a child spawned by a parent holding 700 MB reports
 * at least that. /proc/self/status VmHWM belongs to the address space exec created.
 */
function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match !== null) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: fall back to rusage (kilobytes), which may include the parent's peak.
  }
  return process.resourceUsage().maxRSS * 1024;
}

main(JSON.parse(process.argv[2] ?? '{}') as StreamChildInput).then(
  (output) => {
    process.stdout.write(`${JSON.stringify(output)}\n`);
  },
  (error: unknown) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: describeError(error) })}\n`);
    process.exitCode = 1;
  },
);
