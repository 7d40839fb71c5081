/**
 * fast-check arbitraries shared by the vector property tests (`src/vsa/*.test.ts`).
 *
 * @example
 * ```ts
 * fc.assert(fc.property(vectorOf(100), (vector) => cosine(vector, vector) <= 1), { numRuns: 100 * RUNS_SCALE });
 * ```
 */
import fc from 'fast-check';
import { SparseVector } from '../../src/vsa/sparse.js';

/** EMBRFS_SLOW=1 runs every property 20 times as many cases (the default run stays fast). */
export const RUNS_SCALE = process.env.EMBRFS_SLOW === '1' ? 20 : 1;

/** A random vector of the given dimension with up to `maxNonZeroCount` non-zeros. */
export function vectorOf(dimension: number, maxNonZeroCount = 64): fc.Arbitrary<SparseVector> {
  return fc
    .uniqueArray(fc.tuple(fc.nat(dimension - 1), fc.boolean()), { selector: (entry) => entry[0], maxLength: Math.min(dimension, maxNonZeroCount) })
    .map((entries) => {
      const sorted = entries.sort((left, right) => left[0] - right[0]);
      return new SparseVector(
        dimension,
        Uint32Array.from(sorted.filter((entry) => entry[1]).map((entry) => entry[0])),
        Uint32Array.from(sorted.filter((entry) => !entry[1]).map((entry) => entry[0])),
      );
    });
}
