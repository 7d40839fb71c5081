/**
 * VersionedEmbrFS benchmarks: the seed's groups, one JSON line per result.
 *
 * - `fs.write` / `fs.read`: one file of 1 KB, 100 KB, 1 MB, 10 MB (MB/s and ops/s);
 * - `fs.concurrent-writes` / `fs.concurrent-reads` / `fs.concurrent-updates` at 2, 4, 8 async writers;
 * - `fs.many-files`: 1000 small files written, then listed and stat'ed;
 * - `fs.content`: compressible vs random data (speed and engram bytes per input byte);
 * - `fs.contention`: optimistic-locking contention on one counter at 2-8 writers (conflict rate, commits/s).
 *
 * Every record carries `sha256MBps` measured over the same bytes in the same run and
 * `ratioToSha256` (our MB/s divided by it), so figures compare across noisy, shared machines.
 * Default durability ('full': fsync per commit) throughout, since that is what users get.
 *
 * @example
 * ```sh
 * npm run bench -- --json fs.bench
 * ```
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchContext, median, medianSeconds, megabytesPerSecond, sha256MegabytesPerSecond } from '../benchmark.js';
import { isEmbrError } from '../errors.js';
import type { Engram } from './api.js';
import { openEngram } from './index.js';

/** Pseudo-random bytes from a seed (AES-256-CTR keystream): incompressible and reproducible. */
function seededBytes(seed: string, byteCount: number): Uint8Array {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const bytes = cipher.update(Buffer.alloc(byteCount));
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Compressible bytes: short text lines with a counter, the shape of logs and CSV. */
function compressibleBytes(byteCount: number): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  const encoder = new TextEncoder();
  let offset = 0;
  for (let line = 0; offset < byteCount; line += 1) {
    const text = encoder.encode(`2026-11-24T01:00:${String(line % 60).padStart(2, '0')}Z level=info request=${line} status=200 path=/api/v1/items\n`);
    const take = Math.min(text.length, byteCount - offset);
    bytes.set(text.subarray(0, take), offset);
    offset += take;
  }
  return bytes;
}

function ratio(ours: number, yardstick: number): number {
  return yardstick > 0 ? Math.round((ours / yardstick) * 1000) / 1000 : 0;
}

function engramBytes(file: string): number {
  let total = 0;
  for (const suffix of ['', '-wal']) if (existsSync(file + suffix)) total += statSync(file + suffix).size;
  return total;
}

async function withEngram<T>(context: BenchContext, name: string, body: (engram: Engram, file: string) => Promise<T>): Promise<T> {
  const directory = mkdtempSync(join(context.tmpDir, `${name}-`));
  const file = join(directory, 'bench.engram');
  const engram = await openEngram(file, { create: true });
  try {
    return await body(engram, file);
  } finally {
    await engram.close();
  }
}

async function benchSingleFile(context: BenchContext, runs: number): Promise<void> {
  const sizes = context.size === 'small' ? [1_000, 100_000, 1_000_000] : [1_000, 100_000, 1_000_000, 10_000_000];
  for (const fileBytes of sizes) {
    await withEngram(context, `single-${fileBytes}`, async (engram) => {
      // Distinct content per run, so a write never hits chunks the previous run already stored.
      const contents = Array.from({ length: runs + 1 }, (_, index) => seededBytes(`single:${fileBytes}:${index}`, fileBytes));
      const sha256MBps = await sha256MegabytesPerSecond([contents[0]], runs);
      let next = 0;
      const writeSeconds = await medianSeconds(runs, async () => {
        await engram.writeFile('/bench.bin', contents[next % contents.length]);
        next += 1;
      });
      const writeMBps = megabytesPerSecond(fileBytes, writeSeconds);
      context.emit({ bench: 'fs.write', fileBytes, MBps: writeMBps, opsPerSecond: Math.round(1 / writeSeconds), sha256MBps, ratioToSha256: ratio(writeMBps, sha256MBps) });
      const readSeconds = await medianSeconds(runs, async () => {
        const { data } = await engram.readFile('/bench.bin');
        if (data.length !== fileBytes) throw new Error(`read ${data.length} bytes, expected ${fileBytes}`);
      });
      const readMBps = megabytesPerSecond(fileBytes, readSeconds);
      context.emit({ bench: 'fs.read', fileBytes, MBps: readMBps, opsPerSecond: Math.round(1 / readSeconds), sha256MBps, ratioToSha256: ratio(readMBps, sha256MBps) });
    });
  }
}

async function benchConcurrency(context: BenchContext): Promise<void> {
  const fileBytes = context.size === 'small' ? 16_384 : 262_144;
  const filesPerWriter = context.size === 'small' ? 4 : 16;
  for (const writerCount of [2, 4, 8]) {
    await withEngram(context, `concurrent-${writerCount}`, async (engram) => {
      const contents = Array.from({ length: writerCount * filesPerWriter }, (_, index) => seededBytes(`concurrent:${writerCount}:${index}`, fileBytes));
      const sha256MBps = await sha256MegabytesPerSecond(contents, 3);
      const totalBytes = fileBytes * contents.length;

      let start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: writerCount }, async (_, writer) => {
          for (let file = 0; file < filesPerWriter; file += 1) {
            await engram.writeFile(`/w${writer}-${file}`, contents[writer * filesPerWriter + file], { exclusive: true });
          }
        }),
      );
      let seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const writeMBps = megabytesPerSecond(totalBytes, seconds);
      context.emit({ bench: 'fs.concurrent-writes', writers: writerCount, fileBytes, files: contents.length, MBps: writeMBps, commitsPerSecond: Math.round(contents.length / seconds), sha256MBps, ratioToSha256: ratio(writeMBps, sha256MBps) });

      start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: writerCount }, async (_, reader) => {
          // Every reader reads every file, starting at a different one.
          for (let step = 0; step < contents.length; step += 1) {
            const index = (reader * filesPerWriter + step) % contents.length;
            const { data } = await engram.readFile(`/w${Math.floor(index / filesPerWriter)}-${index % filesPerWriter}`);
            if (data.length !== fileBytes) throw new Error('short read');
          }
        }),
      );
      seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const readMBps = megabytesPerSecond(totalBytes * writerCount, seconds);
      context.emit({ bench: 'fs.concurrent-reads', readers: writerCount, fileBytes, reads: contents.length * writerCount, MBps: readMBps, opsPerSecond: Math.round((contents.length * writerCount) / seconds), sha256MBps, ratioToSha256: ratio(readMBps, sha256MBps) });

      // Updates: each writer rewrites its own files with expectedVersion (no contention).
      start = process.hrtime.bigint();
      let updates = 0;
      await Promise.all(
        Array.from({ length: writerCount }, async (_, writer) => {
          for (let file = 0; file < filesPerWriter; file += 1) {
            const path = `/w${writer}-${file}`;
            const { version } = await engram.readFile(path);
            const content = contents[(writer * filesPerWriter + file + 1) % contents.length];
            await engram.writeFile(path, content, { expectedVersion: version });
            updates += 1;
          }
        }),
      );
      seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const updateMBps = megabytesPerSecond(totalBytes, seconds);
      context.emit({ bench: 'fs.concurrent-updates', writers: writerCount, fileBytes, updates, MBps: updateMBps, commitsPerSecond: Math.round(updates / seconds), sha256MBps, ratioToSha256: ratio(updateMBps, sha256MBps) });
    });
  }
}

async function benchManyFiles(context: BenchContext): Promise<void> {
  const fileCount = context.size === 'small' ? 100 : 1000;
  const fileBytes = 1_000;
  await withEngram(context, 'many-files', async (engram) => {
    const contents = Array.from({ length: fileCount }, (_, index) => seededBytes(`many:${index}`, fileBytes));
    const sha256MBps = await sha256MegabytesPerSecond(contents, 3);
    await engram.mkdir('/many');
    const start = process.hrtime.bigint();
    for (let index = 0; index < fileCount; index += 1) await engram.writeFile(`/many/f${index}`, contents[index]);
    const writeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const listingSeconds = await medianSeconds(3, async () => {
      const entries = await engram.readdir('/many');
      if (entries.length !== fileCount) throw new Error(`listed ${entries.length} of ${fileCount}`);
    });
    const statSeconds = await medianSeconds(3, async () => {
      for (let index = 0; index < fileCount; index += 1) await engram.stat(`/many/f${index}`);
    });
    const writeMBps = megabytesPerSecond(fileCount * fileBytes, writeSeconds);
    context.emit({
      bench: 'fs.many-files',
      files: fileCount,
      fileBytes,
      filesPerSecond: Math.round(fileCount / writeSeconds),
      MBps: writeMBps,
      listingMs: Math.round(listingSeconds * 1e4) / 10,
      statsPerSecond: Math.round(fileCount / statSeconds),
      sha256MBps,
      ratioToSha256: ratio(writeMBps, sha256MBps),
    });
  });
}

async function benchContent(context: BenchContext, runs: number): Promise<void> {
  const fileBytes = context.size === 'small' ? 262_144 : 4_000_000;
  for (const kind of ['compressible', 'random'] as const) {
    await withEngram(context, `content-${kind}`, async (engram, file) => {
      const contents = Array.from({ length: runs + 1 }, (_, index) =>
        kind === 'random' ? seededBytes(`content:${index}`, fileBytes) : compressibleBytes(fileBytes + index),
      );
      const sha256MBps = await sha256MegabytesPerSecond([contents[0]], runs);
      let next = 0;
      const writeSeconds = await medianSeconds(runs, async () => {
        await engram.writeFile(`/content${next}`, contents[next % contents.length]);
        next += 1;
      });
      const readSeconds = await medianSeconds(runs, async () => {
        await engram.readFile('/content0');
      });
      const stats = await engram.stats();
      const writeMBps = megabytesPerSecond(fileBytes, writeSeconds);
      const readMBps = megabytesPerSecond(fileBytes, readSeconds);
      context.emit({
        bench: 'fs.content',
        kind,
        fileBytes,
        writeMBps,
        readMBps,
        // Engram bytes on disk per input byte (< 1 means smaller than the input).
        storedPerInputByte: Math.round(((stats.storedBytes || engramBytes(file)) / stats.logicalBytes) * 1000) / 1000,
        sha256MBps,
        ratioToSha256: ratio(writeMBps, sha256MBps),
        readRatioToSha256: ratio(readMBps, sha256MBps),
      });
    });
  }
}

async function benchContention(context: BenchContext): Promise<void> {
  const incrementsPerWriter = context.size === 'small' ? 5 : 40;
  const counterBytes = 4096;
  for (const writerCount of [2, 4, 8]) {
    await withEngram(context, `contention-${writerCount}`, async (engram) => {
      // A 4 KiB counter record (the value, space-padded): one chunk per commit, as a small row would be.
      const encodeCounter = (value: number) => new TextEncoder().encode(String(value).padStart(counterBytes, ' '));
      await engram.writeFile('/counter', encodeCounter(0));
      let conflicts = 0;
      let commits = 0;
      const latenciesMs: number[] = [];
      const start = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: writerCount }, async () => {
          for (let increment = 0; increment < incrementsPerWriter; increment += 1) {
            const incrementStart = process.hrtime.bigint();
            for (let attempt = 0; ; attempt += 1) {
              if (attempt > 10_000) throw new Error('contention bench: retry bound reached');
              const { data, version } = await engram.readFile('/counter');
              const value = Number(new TextDecoder().decode(data).trim()) + 1;
              try {
                await engram.writeFile('/counter', encodeCounter(value), { expectedVersion: version });
                commits += 1;
                break;
              } catch (error) {
                if (!isEmbrError(error, 'VERSION_MISMATCH')) throw error;
                conflicts += 1;
              }
            }
            latenciesMs.push(Number(process.hrtime.bigint() - incrementStart) / 1e6);
          }
        }),
      );
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const final = Number(new TextDecoder().decode((await engram.readFile('/counter')).data).trim());
      if (final !== writerCount * incrementsPerWriter) throw new Error(`lost updates: ${final} != ${writerCount * incrementsPerWriter}`);
      // The yardstick: SHA-256 over the bytes the committed writes carried.
      const payloads = Array.from({ length: commits }, (_, index) => encodeCounter(index + 1));
      const sha256MBps = await sha256MegabytesPerSecond(payloads, 3);
      const payloadBytes = payloads.reduce((sum, payload) => sum + payload.length, 0);
      const MBps = megabytesPerSecond(payloadBytes, seconds);
      context.emit({
        bench: 'fs.contention',
        writers: writerCount,
        commits,
        conflicts,
        conflictRate: Math.round((conflicts / (conflicts + commits)) * 1000) / 1000,
        commitsPerSecond: Math.round(commits / seconds),
        medianIncrementMs: Math.round(median(latenciesMs) * 100) / 100,
        MBps,
        sha256MBps,
        ratioToSha256: ratio(MBps, sha256MBps),
      });
    });
  }
}

/** Runs every group; `small` finishes in seconds for `npm test`. */
export async function run(context: BenchContext): Promise<void> {
  const runs = context.size === 'small' ? 1 : 5;
  await benchSingleFile(context, runs);
  await benchConcurrency(context);
  await benchManyFiles(context);
  await benchContent(context, runs);
  await benchContention(context);
}
