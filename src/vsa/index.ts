/**
 * The VSA core: sparse ternary hypervectors and their algebra. Pure (no `node:*`, no clock,
 * no `Math.random`); see src/vsa/README.md and docs/design/vsa.md.
 *
 * @example
 * ```ts
 * import { basisVector, bind, mask, cosine } from './vsa/index.js';
 * const key = basisVector('position', 3);
 * const value = basisVector('byte', 0x41);
 * bind(bind(value, key), key).equals(mask(value, key)); // true: self-inverse on key's support
 * cosine(value, basisVector('byte', 0x42));            // near 0: basis vectors are quasi-orthogonal
 * ```
 */
export * from './sparse.js';
export * from './algebra.js';
export * from './accumulator.js';
export * from './basis.js';
export * from './packed.js';
export * from './serialize.js';
export * from './sha256.js';
export * from './varint.js';
