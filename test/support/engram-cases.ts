/**
 * Helpers shared by the library's test files: run a body on an engram that is closed afterwards,
 * and the error code a synchronous call throws.
 *
 * @example
 * ```ts
 * await using(() => openEngram(file, { create: true }), async (engram) => { ... });
 * assert.equal(codeOf(() => parsePath('bad')), 'INVALID_PATH');
 * ```
 */
import { isEmbrError } from '../../src/errors.js';
import type { Engram } from '../../src/fs/api.js';

/** Opens an engram for one test case. */
export type Maker = () => Promise<Engram>;

/** Runs `body` on a fresh engram from `make` and closes it, also when `body` throws. */
export async function using(make: Maker, body: (engram: Engram) => Promise<void>): Promise<void> {
  const engram = await make();
  try {
    await body(engram);
  } finally {
    await engram.close();
  }
}

/** The EmbrError code `body` throws ('not-embr' for another error), or undefined when it returns. */
export function codeOf(body: () => unknown): string | undefined {
  try {
    body();
    return undefined;
  } catch (error) {
    return isEmbrError(error) ? error.code : 'not-embr';
  }
}
