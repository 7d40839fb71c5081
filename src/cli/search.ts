/**
 * Similarity commands: `query` (which files and regions look like this file or text) and
 * `similar` (which files look like this file of the engram). Thin: the work is
 * `Engram.query` / `Engram.similar` (src/fs/similarity.ts, docs/design/query.md).
 */
import { readFile, stat } from 'node:fs/promises';
import type { QueryMatch } from '../fs/api.js';
import { CliFailure, ExitCode, type ExitCodeValue } from './failure.js';
import { toJson, writeOut } from './output.js';
import { withEngram } from './session.js';

/** Largest query file read: a query's fingerprint keeps at most 16,384 features, ~1 MiB of varied bytes already fills it. */
export const MAX_QUERY_FILE_BYTES = 64 << 20;

/** Largest `-k` accepted (the library's bound). */
export const MAX_K = 10_000;

/** A score at or above this is a confident match (docs/design/query.md §5: 0 of 300 unrelated controls reach it). */
export const CONFIDENT_SCORE = 0.25;

function checkK(k: number, engramFile: string): number {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new CliFailure(ExitCode.badInput, `-k must be between 1 and ${MAX_K}, got ${k}`, engramFile, 'give a smaller k');
  return k;
}

async function writeMatches(matches: QueryMatch[]): Promise<void> {
  if (matches.length === 0) {
    await writeOut('no matches\n');
    return;
  }
  await writeOut(`${'score'.padEnd(8)}${'offset'.padStart(12)}${'length'.padStart(10)}  path\n`);
  for (const match of matches) {
    const mark = match.score >= CONFIDENT_SCORE ? '' : '  (weak)';
    await writeOut(`${match.score.toFixed(3).padEnd(8)}${String(match.offset).padStart(12)}${String(match.length).padStart(10)}  ${match.path}${mark}\n`);
  }
}

/**
 * `embrfs query`: the k files whose content best matches a local file or a text, with the byte
 * region, the score, and the query's resonance with the whole engram (root score).
 *
 * @example
 * ```ts
 * await queryCommand({ engramFile: 'docs.engram', text: 'quarterly report', k: 5, json: true });
 * ```
 */
export async function queryCommand(options: { engramFile: string; file?: string; text?: string; k: number; path?: string; json: boolean }): Promise<ExitCodeValue> {
  const k = checkK(options.k, options.engramFile);
  if ((options.file === undefined) === (options.text === undefined)) {
    throw new CliFailure(ExitCode.badInput, 'give exactly one of --file and --text', options.engramFile, "see 'embrfs query --help'");
  }
  let input: Uint8Array | string;
  if (options.file !== undefined) {
    const info = await stat(options.file);
    if (!info.isFile()) throw new CliFailure(ExitCode.badInput, 'the query file is not a regular file', options.file, 'give a file');
    if (info.size > MAX_QUERY_FILE_BYTES) {
      throw new CliFailure(ExitCode.badInput, `the query file is larger than ${MAX_QUERY_FILE_BYTES} bytes`, options.file, 'query with an excerpt of it');
    }
    input = new Uint8Array(await readFile(options.file));
  } else input = options.text as string;
  const queryBytes = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    const result = await engram.query(input, { k, ...(options.path === undefined ? {} : { path: options.path }) });
    if (options.json) {
      await writeOut(`${toJson({ file: options.engramFile, queryBytes, k, path: options.path ?? '/', rootScore: result.rootScore, matches: result.matches })}\n`);
      return ExitCode.success;
    }
    await writeMatches(result.matches);
    await writeOut(`root score ${result.rootScore.toFixed(3)} (cosine of the query with the whole engram)\n`);
    return ExitCode.success;
  });
}

/**
 * `embrfs similar`: the k files most like a file of the engram, near-duplicates first.
 *
 * @example
 * ```ts
 * await similarCommand({ engramFile: 'docs.engram', path: '/a.txt', k: 5, json: false });
 * ```
 */
export async function similarCommand(options: { engramFile: string; path: string; k: number; json: boolean }): Promise<ExitCodeValue> {
  const k = checkK(options.k, options.engramFile);
  return withEngram(options.engramFile, { readOnly: true }, async (engram) => {
    const matches = await engram.similar(options.path, { k });
    if (options.json) {
      await writeOut(`${toJson({ file: options.engramFile, path: options.path, k, matches })}\n`);
      return ExitCode.success;
    }
    await writeMatches(matches);
    return ExitCode.success;
  });
}
