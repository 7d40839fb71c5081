/**
 * Seeded bytes for tests (xorshift32): the same in every run, so failures reproduce.
 *
 * @example
 * ```ts
 * const bytes = seededBytes(4096, 7);
 * ```
 */
export function seededBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed | 1;
  for (let index = 0; index < length; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

/**
 * Deterministic bytes that neither repeat per chunk nor compress away (an LCG's high byte).
 *
 * @example
 * ```ts
 * const bytes = pattern(10_000, 3);
 * ```
 */
export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed * 2654435761 + 1;
  for (let index = 0; index < length; index += 1) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

/**
 * Deterministic compressible text: words drawn by an LCG, separated by spaces.
 *
 * @example
 * ```ts
 * const bytes = wordText(4096, 5);
 * ```
 */
export function wordText(length: number, seed: number): Uint8Array {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'engram', 'chunk', 'vector', 'commit', 'snapshot'];
  let state = seed;
  let out = '';
  while (out.length < length) {
    state = (state * 1103515245 + 12345) >>> 0;
    out += `${words[state % words.length]} `;
  }
  return new TextEncoder().encode(out.slice(0, length));
}
