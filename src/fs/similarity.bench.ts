/**
 * What the similarity index costs the write path: `similarity.write` writes fresh 10 MB files
 * (1 MB at size 'small') and reports the median writeFile time and the time spent inside the
 * index update of each commit, measured by wrapping `EngramSimilarity.prototype.update` (the
 * update runs inside the commit transaction, so its share cannot be timed from outside).
 *
 * @example
 * ```ts
 * await run({ size: 'small', emit: console.log, tmpDir: '/tmp/x' });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { BenchContext } from '../benchmark.js';
import { median } from '../benchmark.js';
import { openEngram } from './index.js';
import { EngramSimilarity } from './similarity.js';

export async function run(context: BenchContext): Promise<void> {
  const fileBytes = context.size === 'small' ? 1 << 20 : 10 << 20;
  const fileCount = context.size === 'small' ? 3 : 9;
  const original = EngramSimilarity.prototype.update;
  const updateSamplesMs: number[] = [];
  EngramSimilarity.prototype.update = function timedUpdate(this: EngramSimilarity, ...args: Parameters<typeof original>): void {
    const start = process.hrtime.bigint();
    original.apply(this, args);
    updateSamplesMs.push(Number(process.hrtime.bigint() - start) / 1e6);
  };
  const engram = await openEngram(join(context.tmpDir, 'similarity.engram'), { create: true });
  try {
    const writeSamplesMs: number[] = [];
    for (let file = 0; file < fileCount; file += 1) {
      const data = randomBytes(fileBytes);
      const start = process.hrtime.bigint();
      await engram.writeFile(`/f${file}.bin`, data);
      writeSamplesMs.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const stats = await engram.stats();
    context.emit({
      bench: 'similarity.write',
      fileBytes,
      fileCount,
      writeMsMedian: Math.round(median(writeSamplesMs)),
      indexUpdateMsMedian: Math.round(median(updateSamplesMs) * 10) / 10,
      indexShareOfWrite: Math.round((median(updateSamplesMs) / median(writeSamplesMs)) * 1000) / 1000,
      indexBytes: stats.indexBytes,
      indexBytesPerLogicalByte: Math.round((stats.indexBytes / stats.logicalBytes) * 10_000) / 10_000,
    });
  } finally {
    EngramSimilarity.prototype.update = original;
    await engram.close();
  }
}
