/**
 * The root vector: a majority bundle (integer counts, {@link BundleAccumulator}) over the chunk
 * fingerprints of the live content, one add per live chunk reference (a hard-linked inode counts
 * once; holes count nothing). A commit collects +1/-1 per chunk id in a {@link RootDelta} and
 * applies it to the stored counts at the end of the same transaction, so the root is always
 * exactly the bundle of the live tree and deleting a file un-bundles it.
 *
 * @example
 * ```ts
 * const delta = new RootDelta();
 * delta.add(chunkId, +1);
 * delta.flush(writer);
 * ```
 */
import { EmbrError } from '../errors.js';
import type { StoreReader, StoreWriter } from '../store/api.js';
import { FINGERPRINT_DIMENSION } from '../query/fingerprint.js';
import { BundleAccumulator } from '../vsa/accumulator.js';
import type { SparseVector } from '../vsa/sparse.js';
import { fingerprintVector } from './encode.js';

/**
 * Decoded fingerprints kept per store (by chunk id) across commits: a rewrite un-bundles the
 * chunks the previous commit bundled, and reading + decoding them again cost ~15-20 ms per 10 MB.
 * Bounded: 32,768 entries (~10 MB of vectors, 128 MiB of 4 KiB chunks).
 */
export const DECODED_FINGERPRINT_CACHE_ENTRIES = 32_768;

/**
 * A chunk id names the same bytes forever once committed (ids are never reused), but ids handed
 * out in a rolled-back transaction are handed out again: every rollback bumps this generation
 * (through {@link forgetDecodedFingerprints}) and a cache of an older generation is dropped.
 */
let cacheGeneration = 0;
const decodedFingerprintCaches = new WeakMap<object, { generation: number; vectors: Map<number, SparseVector> }>();

/**
 * Drops every cached decoded fingerprint. Call it when a commit's transaction rolled back (its
 * new chunk ids may name other chunks next time).
 *
 * @example
 * ```ts
 * try { store.write(start, body); } catch (error) { forgetDecodedFingerprints(); throw error; }
 * ```
 */
export function forgetDecodedFingerprints(): void {
  cacheGeneration += 1;
}

function decodedFingerprintCache(writer: StoreWriter): Map<number, SparseVector> {
  let cache = decodedFingerprintCaches.get(writer);
  if (cache === undefined || cache.generation !== cacheGeneration) {
    cache = { generation: cacheGeneration, vectors: new Map() };
    decodedFingerprintCaches.set(writer, cache);
  }
  return cache.vectors;
}

/** Pending changes of the root vector within one commit. */
export class RootDelta {
  private readonly counts = new Map<number, number>();
  /** Counts already summed elsewhere (a streamed file's fingerprints), added as they are. */
  private readonly summed: BundleAccumulator[] = [];
  /** Fingerprints of chunks written in this commit (saves a read per new chunk). */
  readonly knownFingerprints = new Map<number, Uint8Array>();
  /**
   * Inodes whose chunk references or size changed in this commit, each with the lowest chunk
   * index that changed: the similarity index re-indexes each from there (same transaction).
   */
  readonly touchedInodes = new Map<number, number>();

  /**
   * Chunk refs this commit inserted and did not close again, per inode (chunk index → chunk id):
   * the similarity index reads a freshly written file from here instead of the store.
   */
  readonly insertedRefs = new Map<number, Map<number, number>>();

  /** Records refs inserted at `firstIndex + i` (for the similarity index). */
  recordInserted(ino: number, firstIndex: number, chunkIds: readonly number[]): void {
    let refs = this.insertedRefs.get(ino);
    if (refs === undefined) {
      refs = new Map();
      this.insertedRefs.set(ino, refs);
    }
    for (let position = 0; position < chunkIds.length; position += 1) refs.set(firstIndex + position, chunkIds[position]);
  }

  /** Forgets recorded refs of `ino` in [firstIndex, endIndex) (they were closed). */
  recordClosed(ino: number, firstIndex: number, endIndex: number): void {
    const refs = this.insertedRefs.get(ino);
    if (refs === undefined) return;
    for (const chunkIndex of [...refs.keys()]) if (chunkIndex >= firstIndex && chunkIndex < endIndex) refs.delete(chunkIndex);
  }

  /** Records that `ino` changed from chunk `firstIndex` on (for the similarity index). */
  touch(ino: number, firstIndex: number): void {
    const previous = this.touchedInodes.get(ino);
    if (previous === undefined || firstIndex < previous) this.touchedInodes.set(ino, firstIndex);
  }

  add(chunkId: number, times: number): void {
    const next = (this.counts.get(chunkId) ?? 0) + times;
    if (next === 0) this.counts.delete(chunkId);
    else this.counts.set(chunkId, next);
  }

  get size(): number {
    return this.counts.size + this.summed.length;
  }

  /** Adds counts summed outside the commit (their chunk refs are inserted without `add`). */
  addSummed(counts: BundleAccumulator): void {
    this.summed.push(counts);
  }

  /** Applies the pending changes to the stored root counts (inside the commit's transaction). */
  flush(writer: StoreWriter): void {
    if (this.size === 0) return;
    const root = loadRoot(writer);
    for (const summed of this.summed) {
      const counts = root.counts;
      for (let index = 0; index < counts.length; index += 1) counts[index] += summed.counts[index];
    }
    this.summed.length = 0;
    const cache = decodedFingerprintCache(writer);
    for (const [chunkId, times] of this.counts) {
      let fingerprint = cache.get(chunkId);
      if (fingerprint === undefined) {
        const serialized = this.knownFingerprints.get(chunkId) ?? writer.chunkFingerprint(chunkId);
        if (serialized === undefined) {
          throw new EmbrError('CORRUPT', `chunk ${chunkId} has no fingerprint`, { what: 'chunk', chunkId });
        }
        fingerprint = fingerprintVector(serialized);
      } else cache.delete(chunkId);
      // Most recently used last: Map keeps insertion order, so the first key is the eviction victim.
      cache.set(chunkId, fingerprint);
      if (cache.size > DECODED_FINGERPRINT_CACHE_ENTRIES) cache.delete(cache.keys().next().value as number);
      for (let step = 0; step < Math.abs(times); step += 1) {
        if (times > 0) root.add(fingerprint);
        else root.subtract(fingerprint);
      }
    }
    writer.setRootCounts(root.serialize());
    this.counts.clear();
  }
}

/**
 * The stored root accumulator, or an empty one before any content.
 *
 * @example
 * ```ts
 * loadRoot(reader).toVector().nonZeroCount;
 * ```
 */
export function loadRoot(reader: StoreReader): BundleAccumulator {
  const stored = reader.rootCounts();
  return stored === undefined ? new BundleAccumulator(FINGERPRINT_DIMENSION) : BundleAccumulator.deserialize(stored);
}
