/**
 * What one commit changed in file content, collected by the mutation steps for the similarity
 * index, which re-indexes the touched inodes at the end of the same transaction. The engram's root
 * vector is the index's root bundle (`root:/`), so un-bundling a deleted file and bundling a new
 * one happen there too (see docs/design/query.md).
 *
 * @example
 * ```ts
 * const changes = new ContentDelta();
 * changes.touch(ino, 0);
 * changes.recordInserted(ino, 0, [chunkId]);
 * ```
 */
import type { SparseVector } from '../vsa/sparse.js';

/** Content changes of one commit. */
export class ContentDelta {
  /** Fingerprints of chunks written in this commit (saves a read per new chunk). */
  readonly knownFingerprints = new Map<number, Uint8Array>();
  /**
   * Their vectors, where the encoding thread kept them (saves parsing the fingerprint). A large
   * staged write hands over its whole map ({@link adoptKnownVectors}) instead of copying it.
   */
  knownVectors = new Map<number, SparseVector>();

  /** Takes `vectors` as the known vectors when none are recorded yet, else adds them. */
  adoptKnownVectors(vectors: Map<number, SparseVector>): void {
    if (this.knownVectors.size === 0) {
      this.knownVectors = vectors;
      return;
    }
    for (const [id, vector] of vectors) this.knownVectors.set(id, vector);
  }
  /**
   * Inodes whose chunk references or size changed in this commit, each with the lowest chunk
   * index that changed: the similarity index re-indexes each from there (same transaction).
   */
  readonly touchedInodes = new Map<number, number>();

  /**
   * Inodes this commit created. Inode numbers are never reused, so none of them was ever in the
   * similarity index: indexing one needs no lookup of what it held before.
   */
  readonly created = new Set<number>();

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
    if (refs === undefined || refs.size === 0) return;
    // Whichever is shorter: the range (a small write closes a chunk or two; walking every
    // recorded ref instead made a transaction of n scattered writes cost O(n^2)) or the refs
    // (a truncate closes everything past a point).
    if (endIndex - firstIndex <= refs.size) {
      for (let chunkIndex = firstIndex; chunkIndex < endIndex; chunkIndex += 1) refs.delete(chunkIndex);
    } else {
      for (const chunkIndex of [...refs.keys()]) if (chunkIndex >= firstIndex && chunkIndex < endIndex) refs.delete(chunkIndex);
    }
  }

  /** Records that `ino` changed from chunk `firstIndex` on (for the similarity index). */
  touch(ino: number, firstIndex: number): void {
    const previous = this.touchedInodes.get(ino);
    if (previous === undefined || firstIndex < previous) this.touchedInodes.set(ino, firstIndex);
  }
}
