/**
 * How the CLI turns failures into one line and an exit code. Only `src/cli` knows exit codes
 * (STYLE habit 4): the library throws {@link EmbrError} with stable codes, Node throws errors
 * with `code` (ENOENT...), and the commands throw {@link CliFailure} for their own checks.
 */
import { EmbrError } from '../errors.js';

/** Exit codes of every `embrfs` command. */
export const ExitCode = {
  /** The command did what was asked. */
  success: 0,
  /** A check failed or a conflict happened: verify found damage, an `--if-version` mismatch. */
  failedCheck: 1,
  /** Bad usage or bad input: unknown option, not an engram, a missing file. */
  badInput: 2,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * A failure the CLI detected itself, already phrased for the user.
 *
 * @example
 * ```ts
 * throw new CliFailure(ExitCode.badInput, 'output directory is not empty', outDir, 'extract into a new or empty directory');
 * ```
 */
export class CliFailure extends Error {
  readonly exitCode: ExitCodeValue;
  readonly what: string;
  readonly file: string;
  readonly todo: string;

  constructor(exitCode: ExitCodeValue, what: string, file: string, todo: string) {
    super(`${what} (${file}): ${todo}`);
    this.name = 'CliFailure';
    this.exitCode = exitCode;
    this.what = what;
    this.file = file;
    this.todo = todo;
  }
}

/** What the user sees for a failure: the exit code and one line without the `embrfs: ` prefix. */
export interface FailureReport {
  exitCode: ExitCodeValue;
  line: string;
}

function dataString(error: EmbrError, key: string): string | undefined {
  const value = error.data[key];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

function describeEmbrError(error: EmbrError, engramFile: string | undefined): FailureReport {
  const where = dataString(error, 'path') ?? dataString(error, 'snapshot') ?? dataString(error, 'file') ?? engramFile ?? '?';
  const located = (what: string, todo: string, exitCode: ExitCodeValue): FailureReport => ({
    exitCode,
    line: `${what} (${where}): ${todo}`,
  });
  switch (error.code) {
    case 'VERSION_MISMATCH':
      return located(
        `version mismatch: expected ${dataString(error, 'expected') ?? '?'}, found ${dataString(error, 'actual') ?? '?'}`,
        're-read the file and retry with the current version',
        ExitCode.failedCheck,
      );
    case 'EXISTS':
      return located('already exists', 'choose another name or remove it first', ExitCode.failedCheck);
    case 'NOT_FOUND':
      if (dataString(error, 'path') === undefined && dataString(error, 'snapshot') !== undefined) {
        return located('snapshot not found', "list snapshots with 'embrfs snapshot list'", ExitCode.badInput);
      }
      return located('not found', "check the path with 'embrfs ls'", ExitCode.badInput);
    case 'NOT_DIRECTORY':
      return located('not a directory', 'use a directory path', ExitCode.badInput);
    case 'IS_DIRECTORY':
      return located('is a directory', 'give a file path (or use rm -r for a directory)', ExitCode.badInput);
    case 'NOT_EMPTY':
      return located('directory not empty', 'remove its entries first or use rm -r', ExitCode.badInput);
    case 'INVALID_PATH':
      return located(`invalid path${dataString(error, 'reason') ? ` (${dataString(error, 'reason')})` : ''}`, 'use an absolute path without .., NUL or empty components', ExitCode.badInput);
    case 'NAME_TOO_LONG':
      return located('name too long', 'keep names under 256 bytes and paths under 4097 bytes', ExitCode.badInput);
    case 'CORRUPT':
      return located(`engram data failed a check: ${error.message}`, "run 'embrfs verify' and restore from a copy or snapshot", ExitCode.failedCheck);
    case 'NOT_ENGRAM':
      return {
        exitCode: ExitCode.badInput,
        line: `not an engram${dataString(error, 'reason') ? ` (${dataString(error, 'reason')})` : ''} (${dataString(error, 'file') ?? engramFile ?? '?'}): give a file made by 'embrfs ingest'`,
      };
    case 'READ_ONLY':
      return located('read-only', 'open the live engram (not a snapshot) with write access', ExitCode.badInput);
    case 'NO_SPACE':
      return located('disk full', 'free space and retry; the engram stays readable', ExitCode.failedCheck);
    case 'IO':
      return located(`I/O error: ${error.message}`, 'check the disk and retry', ExitCode.failedCheck);
    case 'BUSY':
      return located('engram busy: another writer holds the lock', 'retry when the other writer is done', ExitCode.failedCheck);
    case 'NO_ATTRIBUTE':
      return located('no such attribute', 'list attributes first', ExitCode.badInput);
    case 'INVALID_ARGUMENT':
      return located(`invalid argument: ${dataString(error, 'reason') ?? error.message}`, "see 'embrfs <command> --help'", ExitCode.badInput);
    case 'CLOSED':
      return located('engram closed', 'this is a bug in embrfs; please report it', ExitCode.failedCheck);
    case 'NOT_SUPPORTED':
      return located(`not supported: ${dataString(error, 'reason') ?? error.message}`, 'use another operation', ExitCode.badInput);
  }
}

const nodeCodeText: Record<string, { what: string; todo: string; exitCode: ExitCodeValue }> = {
  ENOENT: { what: 'no such file or directory', todo: 'check the path', exitCode: ExitCode.badInput },
  EACCES: { what: 'permission denied', todo: 'check the permissions', exitCode: ExitCode.badInput },
  EPERM: { what: 'operation not permitted', todo: 'check the permissions', exitCode: ExitCode.badInput },
  EISDIR: { what: 'is a directory', todo: 'give a file', exitCode: ExitCode.badInput },
  ENOTDIR: { what: 'not a directory', todo: 'give a directory', exitCode: ExitCode.badInput },
  EEXIST: { what: 'already exists', todo: 'remove it or choose another path', exitCode: ExitCode.badInput },
  ENOSPC: { what: 'disk full', todo: 'free space and retry', exitCode: ExitCode.failedCheck },
  ELOOP: { what: 'refusing to follow a symbolic link', todo: 'remove the link', exitCode: ExitCode.badInput },
};

/**
 * Turns any thrown value into the user's line and exit code. Unknown errors (bugs) keep their
 * message so a report can name them.
 *
 * @example
 * ```ts
 * const { exitCode, line } = describeFailure(error, 'data.engram');
 * process.stderr.write(`embrfs: ${line}\n`);
 * ```
 */
export function describeFailure(error: unknown, engramFile?: string): FailureReport {
  if (error instanceof CliFailure) return { exitCode: error.exitCode, line: error.message };
  if (error instanceof EmbrError) return describeEmbrError(error, engramFile);
  if (error instanceof Error) {
    const nodeError = error as NodeJS.ErrnoException;
    const known = nodeError.code === undefined ? undefined : nodeCodeText[nodeError.code];
    if (known !== undefined) {
      return { exitCode: known.exitCode, line: `${known.what} (${nodeError.path ?? engramFile ?? '?'}): ${known.todo}` };
    }
    return { exitCode: ExitCode.failedCheck, line: `${error.message} (${engramFile ?? 'embrfs'}): this may be a bug in embrfs; please report it` };
  }
  return { exitCode: ExitCode.failedCheck, line: `unexpected failure ${String(error)} (${engramFile ?? 'embrfs'}): please report it` };
}
