/**
 * EmbrError codes to POSIX errno: the only place in EmbrFS that knows errno (STYLE habit 4).
 *
 * FUSE replies carry a negative errno, so {@link errnoOf} returns a negative number; `0` means
 * success. Anything that is not an {@link EmbrError} is a bug in EmbrFS or the binding: it maps
 * to EIO (the kernel has no better answer) and the caller logs it, so it is never swallowed.
 */
import { isEmbrError, type ErrorCode } from '../errors.js';

/** Linux errno values used by the mount (positive, as in `<errno.h>`). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  ENOTCONN: 107,
} as const;

/**
 * The errno (positive) each stable error code stands for. Every code is listed, so adding a code
 * to `ErrorCode` without deciding its errno fails to compile.
 */
export const errnoByCode: Readonly<Record<ErrorCode, number>> = {
  // A FUSE call never passes an expected version, so a mismatch means another writer won a race
  // inside one call: "try again" is the honest answer, not an I/O failure.
  VERSION_MISMATCH: Errno.EAGAIN,
  EXISTS: Errno.EEXIST,
  NOT_FOUND: Errno.ENOENT,
  NOT_DIRECTORY: Errno.ENOTDIR,
  IS_DIRECTORY: Errno.EISDIR,
  NOT_EMPTY: Errno.ENOTEMPTY,
  INVALID_PATH: Errno.EINVAL,
  NAME_TOO_LONG: Errno.ENAMETOOLONG,
  CORRUPT: Errno.EIO,
  NOT_ENGRAM: Errno.EIO,
  READ_ONLY: Errno.EROFS,
  NO_SPACE: Errno.ENOSPC,
  IO: Errno.EIO,
  BUSY: Errno.EBUSY,
  NO_ATTRIBUTE: Errno.ENODATA,
  INVALID_ARGUMENT: Errno.EINVAL,
  // The engram was closed under a live request (unmount in progress): like a disconnected mount.
  CLOSED: Errno.ENOTCONN,
  // The one unsupported operation a POSIX program meets is a hard link to a directory: link(2)
  // answers EPERM for that.
  NOT_SUPPORTED: Errno.EPERM,
};

/**
 * The negative errno for a FUSE reply to `error`.
 *
 * @example
 * ```ts
 * try { await engram.rmdir('/a'); reply(0); }
 * catch (error) { reply(errnoOf(error)); } // ENOTEMPTY -> -39
 * ```
 */
export function errnoOf(error: unknown): number {
  if (isEmbrError(error)) return -errnoByCode[error.code];
  if (error instanceof FuseErrnoError) return -error.errno;
  return -Errno.EIO;
}

/**
 * An answer the FUSE layer itself gives with a specific errno that no EmbrError code stands for
 * (e.g. EOPNOTSUPP for an ACL the engram cannot represent). Never leaves `src/fuse`.
 */
export class FuseErrnoError extends Error {
  readonly errno: number;

  constructor(errno: number, message: string) {
    super(message);
    this.name = 'FuseErrnoError';
    this.errno = errno;
  }
}

/** True when `error` is an operating condition (it maps to a specific errno), false for a bug. */
export function isExpectedError(error: unknown): boolean {
  return isEmbrError(error) || error instanceof FuseErrnoError;
}
