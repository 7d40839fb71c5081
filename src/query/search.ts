/**
 * Similarity search over a {@link SimilarityIndex}: "which files, and where in them, look like
 * this?" Answers name a path, the byte offset and length of the matching region, and a score.
 *
 * Scoring (docs/design/query.md, "Search and scoring"):
 * - The query is fingerprinted exactly like stored content ({@link contentFingerprint}, same
 *   construction, same dimension), so query and chunks live in one vector space.
 * - Each dimension d gets an IDF weight w_d = ln(1 + N / df_d), N = live chunks, df_d = chunks
 *   non-zero at d (df 0 counts as 1). Boilerplate features sit in dimensions many chunks share and
 *   weigh little.
 * - A chunk's raw score is the weighted dot product Σ w_d² q_d c_d.
 * - A file's score is its best *region*: a run of consecutive chunks at most
 *   ceil(queryBytes / chunkBytes) + 1 long, chosen by the sum of its chunk scores, ends trimmed,
 *   then rescored exactly: Σ over query dimensions of w_d² q_d sign(region bundle at d), divided
 *   by the query's weighted norm Σ w_d² q_d². That is the weighted fraction of the query found in
 *   the region (1 = everything), so a short excerpt is not out-scored by a small file sharing one
 *   common feature, and a long excerpt collects its evidence across the chunks it spans. It is
 *   multiplied by the evidence factor n / (n + {@link SCORE_PRIOR_DIMENSIONS}).
 * - `cosine` is the plain cosine of the query with the majority bundle of the region's chunk
 *   fingerprints, reported beside the score.
 *
 * {@link searchIndex} reads only the posting rows of the query's dimensions (and skips
 * dimensions held by more than `maxPostingFraction` of all chunks); {@link bruteForceSearch}
 * computes the same score against every stored fingerprint, as the yardstick for recall.
 *
 * @example
 * ```ts
 * const matches = searchIndex(index, 'static int parse_header(', { k: 5 });
 * for (const match of matches) console.log(match.path, match.offset, match.length, match.score);
 * ```
 */
import { majorityBundle } from '../vsa/accumulator.js';
import { SparseVector, cosine } from '../vsa/sparse.js';
import { FINGERPRINT_DIMENSION, contentFingerprint, fileFingerprint } from './fingerprint.js';
import { SLOTS_PER_POSTING_BLOCK, type IndexedFile, type SimilarityIndex } from './similarity-index.js';

/** Default number of matches. */
export const DEFAULT_K = 10;

/** Dimensions posted by more than this fraction of all chunks are skipped by the indexed search (they weigh little). */
export const DEFAULT_MAX_POSTING_FRACTION = 0.05;

/** The indexed search scans the postings of this many query dimensions at most, the rarest first. */
export const DEFAULT_MAX_SCANNED_DIMENSIONS = 1024;

/** A dimension held by at most this many chunks is always scanned, whatever the fraction (cheap, and small engrams need it). */
export const MIN_SKIPPED_DOCUMENT_FREQUENCY = 64;

/**
 * Evidence prior, in query dimensions: a score is the weighted fraction of the query found,
 * times n / (n + prior) for a query with n non-zero dimensions. A query with few features
 * (a short or repetitive excerpt) can be fully "found" by chance in a large engram; the prior
 * keeps its score modest, while a 4 KiB excerpt (about 50 dimensions) keeps 86% of its score.
 */
export const SCORE_PRIOR_DIMENSIONS = 8;

/** Queries keep at most this many non-zeros (consistent thinning), bounding the work of a huge query. */
export const MAX_QUERY_NON_ZERO = 16_384;

export interface SearchOptions {
  /** Number of matches to return (default {@link DEFAULT_K}). */
  k?: number;
  /** Only files at or under this path ('/docs' matches '/docs' and '/docs/a', not '/docs2'). */
  pathPrefix?: string;
  /** Indexed search only: skip dimensions posted by more than this fraction of chunks (default {@link DEFAULT_MAX_POSTING_FRACTION}; 1 = skip none). */
  maxPostingFraction?: number;
  /** Indexed search only: scan the postings of at most this many query dimensions, the rarest first (default {@link DEFAULT_MAX_SCANNED_DIMENSIONS}; Infinity = all). */
  maxScannedDimensions?: number;
  /** Leave this path out of the results (used by {@link similarFiles}). */
  excludePath?: string;
}

/** One match: the region of `path` that resembles the query. */
export interface SearchMatch {
  path: string;
  /** Byte offset of the region in the file (a chunk boundary). */
  offset: number;
  /** Byte length of the region. */
  length: number;
  /** Weighted fraction of the query found in the region times the evidence factor, in [-1, 1]; results are sorted by it, descending. */
  score: number;
  /** Plain cosine of the query fingerprint with the bundle of the region's chunk fingerprints. */
  cosine: number;
}

/** A query in vector form: its fingerprint and the byte length it was made from. */
export interface QueryVector {
  fingerprint: SparseVector;
  byteLength: number;
}

/**
 * Fingerprints a query (bytes, or text taken as UTF-8) the same way stored content is fingerprinted.
 *
 * @example
 * ```ts
 * const query = queryVector('needle text');
 * query.fingerprint.nonZeroCount; // features of the text
 * ```
 */
export function queryVector(query: Uint8Array | string): QueryVector {
  let bytes: Uint8Array;
  if (typeof query === 'string') bytes = new TextEncoder().encode(query);
  else if (query instanceof Uint8Array) bytes = query;
  else throw new TypeError('query must be a Uint8Array or a string');
  return { fingerprint: contentFingerprint(bytes, { maxNonZero: MAX_QUERY_NON_ZERO }), byteLength: bytes.length };
}

/**
 * The k best matching regions, one per file, in descending score order, found through the
 * inverted index (see the module comment).
 *
 * @example
 * ```ts
 * searchIndex(index, excerptBytes, { k: 10, pathPrefix: '/src' });
 * ```
 */
export function searchIndex(index: SimilarityIndex, query: Uint8Array | string | QueryVector, options: SearchOptions = {}): SearchMatch[] {
  const vector = isQueryVector(query) ? query : queryVector(query);
  const k = checkK(options.k);
  const maxPostingFraction = options.maxPostingFraction ?? DEFAULT_MAX_POSTING_FRACTION;
  if (!(maxPostingFraction > 0 && maxPostingFraction <= 1)) throw new RangeError(`maxPostingFraction must be in (0, 1], got ${maxPostingFraction}`);
  const maxScannedDimensions = options.maxScannedDimensions ?? DEFAULT_MAX_SCANNED_DIMENSIONS;
  if (!(maxScannedDimensions >= 1)) throw new RangeError(`maxScannedDimensions must be >= 1, got ${maxScannedDimensions}`);
  const chunkCount = index.liveSlotCount;
  if (chunkCount === 0 || vector.fingerprint.nonZeroCount === 0) return [];
  const scores = new Float64Array(index.nextSlot);
  const hit = new Uint8Array(index.nextSlot);
  const hitSlots: number[] = [];
  const blockCount = index.postingBlockCount;
  // The floor matters in small engrams: 5% of 40 chunks would skip every shared dimension.
  const maxDocumentFrequency = Math.max(MIN_SKIPPED_DOCUMENT_FREQUENCY, maxPostingFraction * chunkCount);
  const signedWeight = new Float64Array(FINGERPRINT_DIMENSION);
  let queryWeight = 0;
  // First pass: the document frequency and weight of every query dimension (posting lengths only).
  const { positive, negative } = vector.fingerprint;
  const dimensions = new Uint32Array(positive.length + negative.length);
  dimensions.set(positive, 0);
  dimensions.set(negative, positive.length);
  const documentFrequencies = new Float64Array(dimensions.length);
  for (let position = 0; position < dimensions.length; position += 1) {
    const dimension = dimensions[position];
    let documentFrequency = 0;
    for (let block = 0; block < blockCount; block += 1) documentFrequency += index.postings(dimension, block).length;
    documentFrequencies[position] = documentFrequency;
    const weightSquared = idfWeightSquared(chunkCount, documentFrequency);
    queryWeight += weightSquared;
    signedWeight[dimension] = position < positive.length ? weightSquared : -weightSquared;
  }
  // Second pass: scan the postings of the rarest dimensions only. They carry the most weight and
  // the least work; the exact rescoring in rankRegions still counts every query dimension.
  const order = Array.from(dimensions.keys()).sort((left, right) => documentFrequencies[left] - documentFrequencies[right] || dimensions[left] - dimensions[right]);
  let scannedCount = Math.min(order.length, maxScannedDimensions);
  let scannedPostings = 0;
  for (let rank = 0; rank < scannedCount; rank += 1) {
    if (documentFrequencies[order[rank]] > maxDocumentFrequency && maxPostingFraction < 1) {
      scannedCount = rank;
      break;
    }
    scannedPostings += documentFrequencies[order[rank]];
  }
  // A large query touches most chunks: then tracking which were hit costs more than reading
  // every score once in rankRegions, so the dense mode skips the tracking.
  const dense = scannedPostings * 4 > scores.length;
  for (let rank = 0; rank < scannedCount; rank += 1) {
    const dimension = dimensions[order[rank]];
    const agreeing = signedWeight[dimension];
    for (let block = 0; block < blockCount; block += 1) {
      const entries = index.postings(dimension, block);
      const base = block * SLOTS_PER_POSTING_BLOCK;
      if (dense) {
        for (let entryIndex = 0; entryIndex < entries.length; entryIndex += 1) {
          const entry = entries[entryIndex];
          scores[base + (entry >>> 1)] += (entry & 1) === 0 ? agreeing : -agreeing;
        }
        continue;
      }
      for (let entryIndex = 0; entryIndex < entries.length; entryIndex += 1) {
        const entry = entries[entryIndex];
        const slot = base + (entry >>> 1);
        if (hit[slot] === 0) {
          hit[slot] = 1;
          hitSlots.push(slot);
        }
        scores[slot] += (entry & 1) === 0 ? agreeing : -agreeing;
      }
    }
  }
  return rankRegions(index, vector, dense ? null : hitSlots, scores, signedWeight, queryWeight, k, options);
}

/**
 * The same ranking as {@link searchIndex}, computed against every stored fingerprint (no index,
 * no skipped dimensions): the exact yardstick for recall. O(total non-zeros).
 *
 * @example
 * ```ts
 * const exact = bruteForceSearch(index, excerptBytes, { k: 10 });
 * ```
 */
export function bruteForceSearch(index: SimilarityIndex, query: Uint8Array | string | QueryVector, options: SearchOptions = {}): SearchMatch[] {
  const vector = isQueryVector(query) ? query : queryVector(query);
  const k = checkK(options.k);
  const files: IndexedFile[] = [];
  index.forEachFile((file) => files.push(file));
  const documentFrequency = new Uint32Array(FINGERPRINT_DIMENSION);
  let chunkCount = 0;
  for (const file of files) {
    for (const fingerprint of file.fingerprints) {
      chunkCount += 1;
      for (const dimension of fingerprint.positive) documentFrequency[dimension] += 1;
      for (const dimension of fingerprint.negative) documentFrequency[dimension] += 1;
    }
  }
  if (chunkCount === 0 || vector.fingerprint.nonZeroCount === 0) return [];
  const signedWeight = new Float64Array(FINGERPRINT_DIMENSION);
  let queryWeight = 0;
  for (const dimension of vector.fingerprint.positive) {
    const weightSquared = idfWeightSquared(chunkCount, documentFrequency[dimension]);
    signedWeight[dimension] = weightSquared;
    queryWeight += weightSquared;
  }
  for (const dimension of vector.fingerprint.negative) {
    const weightSquared = idfWeightSquared(chunkCount, documentFrequency[dimension]);
    signedWeight[dimension] = -weightSquared;
    queryWeight += weightSquared;
  }
  const scores = new Float64Array(index.nextSlot);
  const hitSlots: number[] = [];
  for (const file of files) {
    for (let chunkIndex = 0; chunkIndex < file.fingerprints.length; chunkIndex += 1) {
      const fingerprint = file.fingerprints[chunkIndex];
      let score = 0;
      let shared = false;
      for (const dimension of fingerprint.positive) {
        const weight = signedWeight[dimension];
        if (weight !== 0) {
          score += weight;
          shared = true;
        }
      }
      for (const dimension of fingerprint.negative) {
        const weight = signedWeight[dimension];
        if (weight !== 0) {
          score -= weight;
          shared = true;
        }
      }
      if (shared) {
        const slot = file.firstSlot + chunkIndex;
        scores[slot] = score;
        hitSlots.push(slot);
      }
    }
  }
  return rankRegions(index, vector, hitSlots, scores, signedWeight, queryWeight, k, options);
}

/**
 * Files most similar to a file already in the index (near-duplicates first), the file itself
 * left out. Uses the file's chunk fingerprints, so it needs no bytes.
 *
 * @example
 * ```ts
 * similarFiles(index, '/src/a.c', { k: 5 });
 * ```
 */
export function similarFiles(index: SimilarityIndex, path: string, options: SearchOptions = {}): SearchMatch[] {
  const file = index.fileByPath(path);
  if (file === undefined) return [];
  const fingerprint = fileFingerprint(file.fingerprints);
  return searchIndex(index, { fingerprint, byteLength: file.byteLength }, { ...options, excludePath: path });
}

/**
 * How strongly the query resonates with everything under `directory` ('/' = the whole engram):
 * the cosine of the query fingerprint with the majority vector of that directory's root bundle.
 * 0 for an empty engram or an empty query.
 *
 * @example
 * ```ts
 * rootScore(index, 'some text'); // e.g. 0.12
 * ```
 */
export function rootScore(index: SimilarityIndex, query: Uint8Array | string | QueryVector, directory = '/'): number {
  const vector = isQueryVector(query) ? query : queryVector(query);
  return cosine(vector.fingerprint, index.root(directory).toVector());
}

/** Squared IDF weight of a dimension held by `documentFrequency` of `chunkCount` chunks. */
function idfWeightSquared(chunkCount: number, documentFrequency: number): number {
  const weight = Math.log(1 + chunkCount / Math.max(1, documentFrequency));
  return weight * weight;
}

function isQueryVector(query: Uint8Array | string | QueryVector): query is QueryVector {
  return typeof query === 'object' && !(query instanceof Uint8Array) && query.fingerprint instanceof SparseVector;
}

function checkK(k: number | undefined): number {
  const value = k ?? DEFAULT_K;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  return value;
}

function pathMatchesPrefix(path: string, prefix: string | undefined): boolean {
  if (prefix === undefined || prefix === '/' || prefix === '') return true;
  const directory = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === directory || path.startsWith(`${directory}/`);
}

/** A region's end chunks scoring below this fraction of its strongest chunk are trimmed off. */
const REGION_TRIM_FRACTION = 0.2;

/** Candidates rescored exactly per requested match (see rankRegions). */
const RESCORED_CANDIDATES_PER_MATCH = 10;
const MIN_RESCORED_CANDIDATES = 100;

function compareCandidates(left: RegionCandidate, right: RegionCandidate): number {
  return right.score - left.score || (left.file.path < right.file.path ? -1 : left.file.path > right.file.path ? 1 : 0) || left.firstChunk - right.firstChunk;
}

// Scratch for exactRegionScore: per-dimension sums of the region's chunk values.
const regionCounts = new Int32Array(FINGERPRINT_DIMENSION);
const regionTouched = new Uint32Array(FINGERPRINT_DIMENSION);

/** Σ over query dimensions of signedWeight × sign(region bundle), each dimension counted once. */
function exactRegionScore(candidate: RegionCandidate, signedWeight: Float64Array): number {
  let touchedCount = 0;
  for (let chunk = candidate.firstChunk; chunk <= candidate.lastChunk; chunk += 1) {
    const fingerprint = candidate.file.fingerprints[chunk];
    for (const dimension of fingerprint.positive) {
      if (signedWeight[dimension] === 0) continue;
      if (regionCounts[dimension] === 0) regionTouched[touchedCount++] = dimension;
      regionCounts[dimension] += 1;
    }
    for (const dimension of fingerprint.negative) {
      if (signedWeight[dimension] === 0) continue;
      if (regionCounts[dimension] === 0) regionTouched[touchedCount++] = dimension;
      regionCounts[dimension] -= 1;
    }
  }
  let score = 0;
  for (let position = 0; position < touchedCount; position += 1) {
    const dimension = regionTouched[position];
    const count = regionCounts[dimension];
    // A count that went back to 0 may be listed twice; it contributes nothing either time.
    if (count > 0) score += signedWeight[dimension];
    else if (count < 0) score -= signedWeight[dimension];
    regionCounts[dimension] = 0;
  }
  return score;
}

interface RegionCandidate {
  file: IndexedFile;
  score: number;
  firstChunk: number;
  lastChunk: number;
}

/**
 * Groups hit slots by file, finds each file's best region and returns the top k. Shared by the
 * indexed and the brute-force search so that they differ only in how chunk scores are found.
 */
function rankRegions(
  index: SimilarityIndex,
  vector: QueryVector,
  /** Slots with a score, or null when any slot may have one (dense mode: every score is read). */
  hitSlots: number[] | null,
  scores: Float64Array,
  signedWeight: Float64Array,
  queryWeight: number,
  k: number,
  options: SearchOptions,
): SearchMatch[] {
  // Only chunks with a positive score can start or end a best window; the exact rescoring below
  // accounts for everything else. Dense hit sets are read in slot order without a sort.
  let slots: Uint32Array;
  if (hitSlots === null || hitSlots.length * 8 > scores.length) {
    let positiveCount = 0;
    for (let slot = 0; slot < scores.length; slot += 1) if (scores[slot] > 0) positiveCount += 1;
    slots = new Uint32Array(positiveCount);
    positiveCount = 0;
    for (let slot = 0; slot < scores.length; slot += 1) if (scores[slot] > 0) slots[positiveCount++] = slot;
  } else {
    slots = Uint32Array.from(hitSlots.filter((slot) => scores[slot] > 0)).sort();
  }
  const candidates: RegionCandidate[] = [];
  let position = 0;
  while (position < slots.length) {
    const owner = index.slotOwner(slots[position]);
    const file = index.file(owner);
    if (file === undefined) throw new Error(`invariant failed: hit slot ${slots[position]} has no live file`);
    const endSlot = file.firstSlot + file.chunkLengths.length;
    let groupEnd = position;
    while (groupEnd < slots.length && slots[groupEnd] < endSlot) groupEnd += 1;
    if (pathMatchesPrefix(file.path, options.pathPrefix) && file.path !== options.excludePath) {
      const windowChunks = Math.ceil(vector.byteLength / Math.max(1, file.maxChunkBytes)) + 1;
      let bestScore = Number.NEGATIVE_INFINITY;
      let bestFirst = 0;
      let bestLast = 0;
      for (let start = position; start < groupEnd; start += 1) {
        if (scores[slots[start]] <= 0) continue;
        let sum = 0;
        for (let end = start; end < groupEnd && slots[end] - slots[start] < windowChunks; end += 1) {
          const score = scores[slots[end]];
          sum += score;
          if (score > 0 && sum > bestScore) {
            bestScore = sum;
            bestFirst = slots[start] - file.firstSlot;
            bestLast = slots[end] - file.firstSlot;
          }
        }
      }
      if (bestScore > 0) {
        // Containment never drops when a region grows, so a window absorbs neighbours that share
        // a stray common feature. Trim ends holding under REGION_TRIM_FRACTION of the strongest chunk.
        let strongest = 0;
        for (let chunk = bestFirst; chunk <= bestLast; chunk += 1) strongest = Math.max(strongest, scores[file.firstSlot + chunk]);
        while (bestFirst < bestLast && scores[file.firstSlot + bestFirst] < REGION_TRIM_FRACTION * strongest) bestFirst += 1;
        while (bestLast > bestFirst && scores[file.firstSlot + bestLast] < REGION_TRIM_FRACTION * strongest) bestLast -= 1;
        candidates.push({ file, score: bestScore / queryWeight, firstChunk: bestFirst, lastChunk: bestLast });
      }
    }
    position = groupEnd;
  }
  // Chunk scores add up over a region, so a feature present in several of its chunks counted
  // several times and scores could pass 1. The best candidates are rescored exactly: each query
  // dimension counts once, with the sign of the region's bundle.
  const rescoredCount = Math.max(RESCORED_CANDIDATES_PER_MATCH * k, MIN_RESCORED_CANDIDATES);
  let shortlist = candidates;
  if (candidates.length > 2 * rescoredCount) {
    // A numeric sort of the scores finds the cut-off; only the shortlist gets the full comparator.
    const sortedScores = Float64Array.from(candidates, (candidate) => candidate.score).sort();
    const cutOff = sortedScores[sortedScores.length - rescoredCount];
    shortlist = candidates.filter((candidate) => candidate.score >= cutOff);
  }
  shortlist.sort(compareCandidates);
  const rescored = shortlist.slice(0, rescoredCount);
  const evidence = vector.fingerprint.nonZeroCount / (vector.fingerprint.nonZeroCount + SCORE_PRIOR_DIMENSIONS);
  for (const candidate of rescored) candidate.score = (exactRegionScore(candidate, signedWeight) / queryWeight) * evidence;
  rescored.sort(compareCandidates);
  // One match per file: a large file is indexed as several segments, each a candidate.
  const seenPaths = new Set<string>();
  const best = rescored.filter((candidate) => {
    if (seenPaths.has(candidate.file.path)) return false;
    seenPaths.add(candidate.file.path);
    return true;
  });
  return best.slice(0, k).map((candidate) => {
    const { file, firstChunk, lastChunk } = candidate;
    const offset = file.chunkOffsets[firstChunk];
    const length = file.chunkOffsets[lastChunk] + file.chunkLengths[lastChunk] - offset;
    const region = majorityBundle(file.fingerprints.slice(firstChunk, lastChunk + 1), FINGERPRINT_DIMENSION);
    return { path: file.path, offset, length, score: candidate.score, cosine: cosine(vector.fingerprint, region) };
  });
}
