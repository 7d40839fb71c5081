/**
 * Similarity search quality and speed (issue 6). Builds a corpus of text (/usr/share/doc),
 * source (/usr/include) and binaries (/usr/bin, /usr/lib/x86_64-linux-gnu), indexes it in 4 KiB
 * chunks, and runs a seeded query set: excerpts of 256 B..64 KiB at random offsets, clean, with
 * 1/5/10% of bytes edited, or with lines inserted and deleted, plus unrelated controls (Perl
 * modules that are not in the corpus, made-up words, and random bytes). Emits JSON lines:
 *
 * - `query.corpus`: corpus size, chunks, index bytes by row kind, index / corpus and index /
 *   engram estimate (zstd level 3 of each file), build time.
 * - `query.fingerprint`: fingerprint MB/s over the corpus chunks, with SHA-256 MB/s as yardstick.
 * - `query.recall`: per excerpt size and edit kind, recall@1 and recall@10 of the true source file
 *   for the indexed and the brute-force search, and indexed recall@10 relative to brute force.
 * - `query.summary`: the floor figures (issue 6) and latency p50/p99 of the indexed search.
 * - `query.controls`: false-positive rate of the controls at {@link MATCH_SCORE_THRESHOLD}.
 *
 * `size: 'small'` uses a few MB so that `npm test` runs it in seconds; 'real' at least 100,000
 * chunks (about 400 MB).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compress } from 'zstd-napi';
import { median, medianSeconds, megabytesPerSecond, sha256MegabytesPerSecond, type BenchContext } from '../benchmark.js';
import { chunkFingerprint } from './fingerprint.js';
import { bruteForceSearch, searchIndex, type SearchMatch } from './search.js';
import { SimilarityIndex } from './similarity-index.js';
import { MemoryIndexStorage } from './storage.js';

/** A top match scoring at or above this is reported as "found"; controls above it are false positives. */
export const MATCH_SCORE_THRESHOLD = 0.25;

const CHUNK_BYTES = 4096;

interface CorpusFile {
  path: string;
  kind: 'text' | 'source' | 'binary';
  bytes: Uint8Array;
}

interface Query {
  truePath: string | null;
  /** Where a control came from (not in the corpus). */
  sourcePath?: string;
  sizeBytes: number;
  edit: string;
  bytes: Uint8Array;
}

/** Seeded PRNG (mulberry32): the query set is the same in every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** Regular files under `root` in sorted order, no symlinks, each at most `maxFileBytes`. */
function walkFiles(root: string, accept: (path: string) => boolean, maxFileBytes: number): string[] {
  const found: string[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const directory = stack.pop() as string;
    let names: string[];
    try {
      names = readdirSync(directory).sort().reverse();
    } catch {
      continue; // unreadable directory: the corpus is best effort
    }
    for (const name of names) {
      const path = join(directory, name);
      const stats = lstatSync(path, { throwIfNoEntry: false });
      if (stats === undefined) continue;
      if (stats.isDirectory()) stack.push(path);
      else if (stats.isFile() && stats.size > 0 && stats.size <= maxFileBytes && accept(path)) found.push(path);
    }
  }
  return found.sort();
}

/** Reads files until `budgetBytes`, skipping content already taken (so each excerpt has one true source file). */
function takeFiles(paths: string[], kind: CorpusFile['kind'], budgetBytes: number, seen: Set<string>, out: CorpusFile[]): number {
  let takenBytes = 0;
  for (const path of paths) {
    if (takenBytes >= budgetBytes) break;
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(path));
    } catch {
      continue;
    }
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (seen.has(digest)) continue;
    seen.add(digest);
    out.push({ path, kind, bytes });
    takenBytes += bytes.length;
  }
  return takenBytes;
}

function buildCorpus(size: BenchContext['size']): CorpusFile[] {
  const megabyte = 1 << 20;
  const budgets = size === 'small' ? { text: 1 * megabyte, source: 1 * megabyte, binary: 2 * megabyte } : { text: 60 * megabyte, source: 125 * megabyte, binary: 270 * megabyte };
  const maxFileBytes = size === 'small' ? 256 << 10 : 16 * megabyte;
  const seen = new Set<string>();
  const corpus: CorpusFile[] = [];
  takeFiles(walkFiles('/usr/share/doc', (path) => !path.endsWith('.gz'), maxFileBytes), 'text', budgets.text, seen, corpus);
  takeFiles(walkFiles('/usr/include', () => true, maxFileBytes), 'source', budgets.source, seen, corpus);
  const binaryBytes = takeFiles(walkFiles('/usr/bin', () => true, maxFileBytes), 'binary', budgets.binary, seen, corpus);
  takeFiles(walkFiles('/usr/lib/x86_64-linux-gnu', (path) => !path.endsWith('.py'), maxFileBytes), 'binary', budgets.binary - binaryBytes, seen, corpus);
  return corpus;
}

/** Replaces about `rate` of the bytes with seeded random bytes. */
function editBytes(bytes: Uint8Array, rate: number, random: () => number): Uint8Array {
  const edited = bytes.slice();
  const editCount = Math.round(edited.length * rate);
  for (let edit = 0; edit < editCount; edit += 1) edited[Math.floor(random() * edited.length)] = Math.floor(random() * 256);
  return edited;
}

/** Deletes about one line in ten and inserts a made-up line after about one in ten. */
function editLines(bytes: Uint8Array, random: () => number): Uint8Array {
  const lines = Buffer.from(bytes).toString('latin1').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const roll = random();
    if (roll < 0.1) continue;
    out.push(line);
    if (roll > 0.9) out.push(`inserted line ${Math.floor(random() * 1e9)}`);
  }
  return new Uint8Array(Buffer.from(out.join('\n'), 'latin1'));
}

function buildQueries(corpus: CorpusFile[], size: BenchContext['size'], random: () => number): Query[] {
  const sizes = [256, 1024, 4096, 16384, 65536];
  const edits: { name: string; apply: (bytes: Uint8Array) => Uint8Array }[] = [
    { name: 'none', apply: (bytes) => bytes },
    { name: 'bytes1%', apply: (bytes) => editBytes(bytes, 0.01, random) },
    { name: 'bytes5%', apply: (bytes) => editBytes(bytes, 0.05, random) },
    { name: 'bytes10%', apply: (bytes) => editBytes(bytes, 0.1, random) },
    { name: 'lines', apply: (bytes) => editLines(bytes, random) },
  ];
  const perCell = size === 'small' ? 2 : 40;
  const queries: Query[] = [];
  for (const sizeBytes of sizes) {
    const candidates = corpus.filter((file) => file.bytes.length >= sizeBytes);
    if (candidates.length === 0) continue;
    for (const edit of edits) {
      for (let count = 0; count < perCell; count += 1) {
        const file = candidates[Math.floor(random() * candidates.length)];
        const offset = Math.floor(random() * (file.bytes.length - sizeBytes + 1));
        const excerpt = file.bytes.subarray(offset, offset + sizeBytes);
        queries.push({ truePath: file.path, sizeBytes, edit: edit.name, bytes: edit.apply(excerpt) });
      }
    }
  }
  return queries;
}

function buildControls(size: BenchContext['size'], random: () => number): Query[] {
  const controls: Query[] = [];
  const count = size === 'small' ? 4 : 100;
  // Perl modules: real source text that is not in the corpus (Python would not do: the python3.11
  // binary in /usr/bin embeds frozen stdlib modules, so Python excerpts have true matches).
  const perl = walkFiles('/usr/share/perl', (path) => path.endsWith('.pm'), 1 << 20).filter((path) => lstatSync(path).size >= 16384);
  for (let index = 0; index < count && perl.length > 0; index += 1) {
    const sourcePath = perl[Math.floor(random() * perl.length)];
    const bytes = new Uint8Array(readFileSync(sourcePath));
    const sizeBytes = [1024, 4096, 16384][index % 3];
    const offset = Math.floor(random() * (bytes.length - sizeBytes + 1));
    controls.push({ truePath: null, sourcePath, sizeBytes, edit: 'control-perl', bytes: bytes.subarray(offset, offset + sizeBytes) });
  }
  // Made-up words: text-shaped bytes (letters, spaces, newlines) that share no content with the corpus.
  for (let index = 0; index < count; index += 1) {
    const sizeBytes = [1024, 4096, 16384][index % 3];
    let text = '';
    while (text.length < sizeBytes) {
      const wordLength = 1 + Math.floor(random() * 9);
      for (let letter = 0; letter < wordLength; letter += 1) text += String.fromCharCode(97 + Math.floor(random() * 26));
      text += random() < 0.1 ? '\n' : ' ';
    }
    controls.push({ truePath: null, sourcePath: 'made-up words', sizeBytes, edit: 'control-words', bytes: new TextEncoder().encode(text.slice(0, sizeBytes)) });
  }
  for (let index = 0; index < count; index += 1) {
    const bytes = new Uint8Array([1024, 4096, 16384][index % 3]);
    for (let position = 0; position < bytes.length; position += 1) bytes[position] = Math.floor(random() * 256);
    controls.push({ truePath: null, sizeBytes: bytes.length, edit: 'control-random', bytes });
  }
  return controls;
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function rankOf(matches: SearchMatch[], path: string | null): number {
  return path === null ? -1 : matches.findIndex((match) => match.path === path);
}

/**
 * The write-path cost of keeping the index current: files indexed one commit at a time (add, then
 * flush into the storage) on top of an index that already holds the corpus, counting the rows
 * and bytes each commit writes.
 */
function measureCommitCost(corpus: CorpusFile[], size: BenchContext['size']): Record<string, unknown> {
  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  for (const file of corpus) index.addFileBytes(file.path, file.bytes, CHUNK_BYTES);
  index.checkpoint();
  let rowsWritten = 0;
  let bytesWritten = 0;
  const counting = {
    get: (key: string) => storage.get(key),
    put: (key: string, value: Uint8Array) => {
      rowsWritten += 1;
      bytesWritten += key.length + value.length;
      storage.put(key, value);
    },
    delete: (key: string) => {
      rowsWritten += 1;
      storage.delete(key);
    },
  };
  const reopened = new SimilarityIndex(counting);
  const commitFiles = corpus.slice(0, size === 'small' ? 20 : 2000).map((file) => file.bytes.subarray(0, CHUNK_BYTES));
  const start = process.hrtime.bigint();
  commitFiles.forEach((bytes, position) => {
    reopened.addFileBytes(`/commits/file${position}`, bytes, CHUNK_BYTES);
    reopened.flush();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    bench: 'query.commit',
    note: 'one 4 KiB file per commit, index cache cold at start, corpus already indexed',
    commits: commitFiles.length,
    microsecondsPerCommit: round((seconds / commitFiles.length) * 1e6, 1),
    rowsWrittenPerCommit: round(rowsWritten / commitFiles.length, 1),
    bytesWrittenPerCommit: round(bytesWritten / commitFiles.length, 0),
  };
}

export async function run(context: BenchContext): Promise<void> {
  const random = seededRandom(6);
  const buildStart = process.hrtime.bigint();
  const corpus = buildCorpus(context.size);
  const corpusBytes = corpus.reduce((sum, file) => sum + file.bytes.length, 0);

  const chunks: Uint8Array[] = [];
  for (const file of corpus) {
    for (let offset = 0; offset < file.bytes.length; offset += CHUNK_BYTES) chunks.push(file.bytes.subarray(offset, offset + CHUNK_BYTES));
  }
  const fingerprintSeconds = await medianSeconds(context.size === 'small' ? 1 : 3, () => {
    for (const chunk of chunks) chunkFingerprint(chunk);
  });
  context.emit({
    bench: 'query.fingerprint',
    inputBytes: corpusBytes,
    chunkCount: chunks.length,
    fingerprintMBps: megabytesPerSecond(corpusBytes, fingerprintSeconds),
    sha256MBps: await sha256MegabytesPerSecond(chunks, context.size === 'small' ? 1 : 3),
  });

  const storage = new MemoryIndexStorage();
  const index = new SimilarityIndex(storage);
  const indexStart = process.hrtime.bigint();
  for (const file of corpus) index.addFileBytes(file.path, file.bytes, CHUNK_BYTES);
  // Sizes are those of the base rows: a checkpoint leaves no log rows behind.
  index.checkpoint();
  const indexSeconds = Number(process.hrtime.bigint() - indexStart) / 1e9;
  let engramEstimateBytes = 0;
  for (const file of corpus) engramEstimateBytes += compress(file.bytes).length;
  const sizes = storage.byteSizeByPrefix();
  const indexBytes = Object.values(sizes).reduce((sum, bytes) => sum + bytes, 0);
  context.emit({
    bench: 'query.corpus',
    size: context.size,
    fileCount: corpus.length,
    corpusBytes,
    chunkCount: index.liveSlotCount,
    textFiles: corpus.filter((file) => file.kind === 'text').length,
    sourceFiles: corpus.filter((file) => file.kind === 'source').length,
    binaryFiles: corpus.filter((file) => file.kind === 'binary').length,
    engramEstimateBytes,
    indexBytes,
    indexBytesByRow: sizes,
    indexRowCount: storage.rowCount,
    indexPerCorpus: round(indexBytes / corpusBytes, 4),
    indexPerEngram: round(indexBytes / engramEstimateBytes, 4),
    indexBuildSeconds: round(indexSeconds, 2),
    corpusReadSeconds: round(Number(indexStart - buildStart) / 1e9, 2),
  });

  context.emit(measureCommitCost(corpus, context.size));

  const queries = buildQueries(corpus, context.size, random);
  const controls = buildControls(context.size, random);
  const latenciesMs: number[] = [];
  const cells = new Map<string, { count: number; indexed1: number; indexed10: number; brute1: number; brute10: number; overlap10: number; latenciesMs: number[] }>();
  let floorCount = 0;
  let floorHits = 0;
  let overlapSum = 0;
  let bruteTruthHits = 0;
  let indexedTruthHits = 0;
  const trueTopScores: number[] = [];
  for (const query of queries) {
    const start = process.hrtime.bigint();
    const indexed = searchIndex(index, query.bytes, { k: 10 });
    const latencyMs = Number(process.hrtime.bigint() - start) / 1e6;
    latenciesMs.push(latencyMs);
    const brute = bruteForceSearch(index, query.bytes, { k: 10 });
    const indexedRank = rankOf(indexed, query.truePath);
    const bruteRank = rankOf(brute, query.truePath);
    const brutePaths = new Set(brute.map((match) => match.path));
    const overlap = brute.length === 0 ? 1 : indexed.filter((match) => brutePaths.has(match.path)).length / brute.length;
    overlapSum += overlap;
    if (indexedRank >= 0) indexedTruthHits += 1;
    if (bruteRank >= 0) bruteTruthHits += 1;
    if (indexedRank === 0) trueTopScores.push(indexed[0].score);
    const key = `${query.sizeBytes}|${query.edit}`;
    const cell = cells.get(key) ?? { count: 0, indexed1: 0, indexed10: 0, brute1: 0, brute10: 0, overlap10: 0, latenciesMs: [] };
    cell.latenciesMs.push(latencyMs);
    cell.count += 1;
    if (indexedRank === 0) cell.indexed1 += 1;
    if (indexedRank >= 0) cell.indexed10 += 1;
    if (bruteRank === 0) cell.brute1 += 1;
    if (bruteRank >= 0) cell.brute10 += 1;
    cell.overlap10 += overlap;
    cells.set(key, cell);
    if (query.sizeBytes >= 4096 && ['none', 'bytes1%', 'bytes5%'].includes(query.edit)) {
      floorCount += 1;
      if (indexedRank >= 0) floorHits += 1;
    }
  }
  for (const [key, cell] of cells) {
    const [sizeBytes, edit] = key.split('|');
    context.emit({
      bench: 'query.recall',
      excerptBytes: Number(sizeBytes),
      edit,
      queries: cell.count,
      recallAt1: round(cell.indexed1 / cell.count),
      recallAt10: round(cell.indexed10 / cell.count),
      bruteRecallAt1: round(cell.brute1 / cell.count),
      bruteRecallAt10: round(cell.brute10 / cell.count),
      indexedOverlapWithBruteAt10: round(cell.overlap10 / cell.count),
      latencyP50Ms: round(median(cell.latenciesMs), 2),
    });
  }
  trueTopScores.sort((a, b) => a - b);
  let allFalsePositives = 0;
  for (const kind of ['control-perl', 'control-words', 'control-random']) for (const controlBytes of [1024, 4096, 16384]) {
    let falsePositives = 0;
    const controlTopScores: number[] = [];
    let worst: { score: number; query: Query; match: SearchMatch } | undefined;
    for (const control of controls.filter((query) => query.edit === kind && query.sizeBytes === controlBytes)) {
      const start = process.hrtime.bigint();
      const matches = searchIndex(index, control.bytes, { k: 10 });
      latenciesMs.push(Number(process.hrtime.bigint() - start) / 1e6);
      const top = matches[0]?.score ?? 0;
      controlTopScores.push(top);
      if (top >= MATCH_SCORE_THRESHOLD) falsePositives += 1;
      if (top >= MATCH_SCORE_THRESHOLD) allFalsePositives += 1;
      if (matches.length > 0 && (worst === undefined || top > worst.score)) worst = { score: top, query: control, match: matches[0] };
    }
    controlTopScores.sort((a, b) => a - b);
    context.emit({
      bench: 'query.controls',
      kind,
      controlBytes,
      controls: controlTopScores.length,
      scoreThreshold: MATCH_SCORE_THRESHOLD,
      falsePositiveRate: round(controlTopScores.length === 0 ? 0 : falsePositives / controlTopScores.length),
      controlTopScoreP50: round(percentile(controlTopScores, 0.5)),
      controlTopScoreP99: round(percentile(controlTopScores, 0.99)),
      controlTopScoreMax: round(controlTopScores[controlTopScores.length - 1] ?? 0),
      worstControl: worst === undefined ? null : { bytes: worst.query.sizeBytes, source: worst.query.sourcePath ?? 'random bytes', match: worst.match },
      trueTopScoreP10: round(percentile(trueTopScores, 0.1)),
      trueTopScoreP50: round(median(trueTopScores.length === 0 ? [Number.NaN] : trueTopScores)),
    });
  }
  latenciesMs.sort((a, b) => a - b);
  context.emit({
    bench: 'query.summary',
    chunkCount: index.liveSlotCount,
    queries: queries.length,
    floorExcerptsAtLeast4KiBUpTo5PercentEdits: floorCount,
    floorTrueSourceInTop10: round(floorCount === 0 ? 1 : floorHits / floorCount),
    indexedRecallAt10RelativeToBrute: round(bruteTruthHits === 0 ? 1 : indexedTruthHits / bruteTruthHits),
    indexedOverlapWithBruteAt10: round(queries.length === 0 ? 1 : overlapSum / queries.length),
    latencyP50Ms: round(percentile(latenciesMs, 0.5), 2),
    latencyP99Ms: round(percentile(latenciesMs, 0.99), 2),
    indexPerEngram: round(indexBytes / engramEstimateBytes, 4),
    controls: controls.length,
    controlFalsePositiveRate: round(controls.length === 0 ? 0 : allFalsePositives / controls.length),
    scoreThreshold: MATCH_SCORE_THRESHOLD,
  });
}
