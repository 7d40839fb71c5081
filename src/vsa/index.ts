/**
 * The VSA core: sparse ternary hypervectors and their algebra. Pure (no `node:*`, no clock,
 * no `Math.random`); see src/vsa/README.md.
 *
 * @example
 * ```ts
 * import { SparseVector, cosine } from './vsa/index.js';
 * const v = new SparseVector(10_000, Uint32Array.of(1, 2), Uint32Array.of(3));
 * cosine(v, v); // 1
 * ```
 */
export * from './sparse.js';
