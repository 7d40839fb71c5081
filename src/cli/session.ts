/**
 * Opening an engram for one command and always closing it, whatever the command throws.
 */
import type { Engram, OpenOptions } from '../fs/api.js';
import { openEngram } from '../fs/index.js';
import { isEmbrError } from '../errors.js';
import { CliFailure, ExitCode } from './failure.js';
import { stat } from 'node:fs/promises';

/**
 * Runs `body` with the engram open and closes it afterwards. A missing engram file is bad
 * input (exit 2), never silently created.
 *
 * @example
 * ```ts
 * const files = await withEngram('data.engram', { readOnly: true }, async (engram) => (await engram.stats()).files);
 * ```
 */
export async function withEngram<T>(engramFile: string, options: OpenOptions, body: (engram: Engram) => Promise<T>): Promise<T> {
  if (options.create !== true) {
    try {
      await stat(engramFile);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CliFailure(ExitCode.badInput, 'engram not found', engramFile, "check the path, or create it with 'embrfs ingest'");
      }
      throw error;
    }
  }
  const engram = await openForCli(engramFile, options);
  try {
    return await body(engram);
  } finally {
    await engram.close();
  }
}

/**
 * Opens an engram for a command. A file that cannot even be opened as an engram (damaged
 * beyond its header, foreign, empty) is bad input, exit 2; damage found later by reading or
 * verifying stays a failed check, exit 1.
 *
 * @example
 * ```ts
 * const engram = await openForCli('data.engram', { readOnly: true });
 * ```
 */
export async function openForCli(engramFile: string, options: OpenOptions): Promise<Engram> {
  try {
    return await openEngram(engramFile, options);
  } catch (error) {
    if (isEmbrError(error, 'CORRUPT')) {
      throw new CliFailure(ExitCode.badInput, `damaged engram, cannot be opened (${error.message})`, engramFile, 'restore the file from a copy; nothing was changed');
    }
    throw error;
  }
}
