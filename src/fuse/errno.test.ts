import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { EmbrError, type ErrorCode } from '../errors.js';
import { Errno, errnoByCode, errnoOf, FuseErrnoError, isExpectedError } from './errno.js';

test('every Errno value is the platform errno of the same name', () => {
  const platform = constants.errno as Record<string, number>;
  for (const [name, value] of Object.entries(Errno)) assert.equal(value, platform[name], name);
});

test('errnoOf maps each error code to the errno a POSIX program expects', () => {
  const expected: Record<string, number> = {
    NOT_FOUND: constants.errno.ENOENT,
    EXISTS: constants.errno.EEXIST,
    NOT_DIRECTORY: constants.errno.ENOTDIR,
    IS_DIRECTORY: constants.errno.EISDIR,
    NOT_EMPTY: constants.errno.ENOTEMPTY,
    NAME_TOO_LONG: constants.errno.ENAMETOOLONG,
    NO_ATTRIBUTE: constants.errno.ENODATA,
    NO_SPACE: constants.errno.ENOSPC,
    READ_ONLY: constants.errno.EROFS,
    CORRUPT: constants.errno.EIO,
    IO: constants.errno.EIO,
    NOT_SUPPORTED: constants.errno.EPERM,
  };
  for (const [code, errno] of Object.entries(expected)) {
    assert.equal(errnoOf(new EmbrError(code as ErrorCode, 'x')), -errno, code);
  }
});

test('only data damage and real I/O failures become EIO', () => {
  const eio = Object.entries(errnoByCode).filter(([, errno]) => errno === Errno.EIO).map(([code]) => code).sort();
  assert.deepEqual(eio, ['CORRUPT', 'IO', 'NOT_ENGRAM']);
});

test('errnoOf answers EIO for a bug and the carried errno for a FuseErrnoError', () => {
  assert.equal(errnoOf(new TypeError('bug')), -Errno.EIO);
  assert.equal(isExpectedError(new TypeError('bug')), false);
  const unsupported = new FuseErrnoError(Errno.EOPNOTSUPP, 'acl');
  assert.equal(errnoOf(unsupported), -95);
  assert.equal(isExpectedError(unsupported), true);
});
