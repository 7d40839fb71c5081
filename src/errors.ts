/**
 * The one error class for operating conditions (STYLE habit 4).
 *
 * - `assert` (node:assert or {@link invariant}) is for broken invariants: a bug, never caught.
 * - `TypeError` / `RangeError` are for misuse at a public boundary (wrong argument types).
 * - {@link EmbrError} with a stable {@link ErrorCode} is for conditions a caller can meet in
 *   normal operation (a conflict, a missing file, a corrupted engram). Only `src/fuse` maps
 *   codes to errno and only `src/cli` maps them to exit codes.
 *
 * This module is pure (no `node:*` imports) so every layer may import it.
 *
 * @example
 * ```ts
 * try { await engram.writeFile('/a', data, { expectedVersion: 3 }); }
 * catch (error) {
 *   if (error instanceof EmbrError && error.code === 'VERSION_MISMATCH') {
 *     console.log(error.data.expected, error.data.actual);
 *   }
 * }
 * ```
 */

/** Stable error codes. Adding a code is fine; renaming or reusing one is a breaking change. */
export type ErrorCode =
  /** An expected version did not match the stored one. data: { path?, expected, actual }. */
  | 'VERSION_MISMATCH'
  /** The target exists (create-only write, mkdir, link, rename with noReplace). data: { path }. */
  | 'EXISTS'
  /** No such file, directory, snapshot or attribute holder. data: { path } or { snapshot }. */
  | 'NOT_FOUND'
  /** A path component that must be a directory is not one. data: { path }. */
  | 'NOT_DIRECTORY'
  /** A file operation was applied to a directory. data: { path }. */
  | 'IS_DIRECTORY'
  /** rmdir (or rename over) a directory that has entries. data: { path }. */
  | 'NOT_EMPTY'
  /** A path is hostile or malformed (`..` escaping, NUL, empty component, not absolute). data: { path, reason }. */
  | 'INVALID_PATH'
  /** A path component is longer than 255 bytes or the path longer than 4096 bytes. data: { path }. */
  | 'NAME_TOO_LONG'
  /** Stored data failed a check (SHA-256 mismatch, bad serialization, broken reference). data: { what, ... }. */
  | 'CORRUPT'
  /** The file is not an engram (foreign SQLite file, random bytes, empty, newer schema). data: { file, reason }. */
  | 'NOT_ENGRAM'
  /** A write was attempted on a read-only engram, view or snapshot. data: { path? }. */
  | 'READ_ONLY'
  /** The disk is full (SQLITE_FULL, ENOSPC). The engram stays readable. data: { file }. */
  | 'NO_SPACE'
  /** Another I/O error from the operating system or SQLite. data: { file, cause }. */
  | 'IO'
  /** The engram is locked by another writer for longer than the busy timeout. data: { file }. */
  | 'BUSY'
  /** An extended attribute does not exist. data: { path, name }. */
  | 'NO_ATTRIBUTE'
  /** An argument is well-typed but not acceptable (bad offset, unknown profile, bad name). data: { reason }. */
  | 'INVALID_ARGUMENT'
  /** The engram has been closed. */
  | 'CLOSED'
  /** An operation is not supported by this object (e.g. hard link to a directory). data: { reason }. */
  | 'NOT_SUPPORTED';

/** An operating-condition error with a stable {@link ErrorCode} and structured data. */
export class EmbrError extends Error {
  readonly code: ErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EmbrError';
    this.code = code;
    this.data = data;
  }
}

/** True when `error` is an {@link EmbrError}, optionally with the given code. */
export function isEmbrError(error: unknown, code?: ErrorCode): error is EmbrError {
  return error instanceof EmbrError && (code === undefined || error.code === code);
}

/**
 * Asserts an invariant. A failure is a bug in EmbrFS, not an operating condition: it throws a
 * plain `Error` that callers must not catch. Pure code uses this instead of `node:assert`.
 *
 * @example
 * ```ts
 * invariant(indices.length === signs.length, 'one sign per index');
 * ```
 */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(`invariant failed: ${message}`);
  }
}
