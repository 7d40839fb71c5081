import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbrError } from '../errors.js';
import { CliFailure, describeFailure, ExitCode } from './failure.js';

test('describeFailure gives exit 1 for conflicts and damage and names the path', () => {
  const mismatch = describeFailure(new EmbrError('VERSION_MISMATCH', 'x', { path: '/a.txt', expected: 3, actual: 5 }), 'e.engram');
  assert.equal(mismatch.exitCode, ExitCode.failedCheck);
  assert.equal(mismatch.line, 'version mismatch: expected 3, found 5 (/a.txt): re-read the file and retry with the current version');
  assert.equal(describeFailure(new EmbrError('CORRUPT', 'bad sha', { what: 'chunk' }), 'e.engram').exitCode, ExitCode.failedCheck);
  assert.equal(describeFailure(new EmbrError('EXISTS', 'x', { path: '/b' })).exitCode, ExitCode.failedCheck);
});

test('describeFailure gives exit 2 for bad input and names the engram when the error has no path', () => {
  const foreign = describeFailure(new EmbrError('NOT_ENGRAM', 'x', { file: 'f.bin', reason: 'no embrfs header' }), 'f.bin');
  assert.equal(foreign.exitCode, ExitCode.badInput);
  assert.match(foreign.line, /^not an engram \(no embrfs header\) \(f\.bin\): /);
  const missing = describeFailure(new EmbrError('NOT_FOUND', 'x', {}), 'e.engram');
  assert.equal(missing.exitCode, ExitCode.badInput);
  assert.match(missing.line, /\(e\.engram\)/);
  const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT', path: '/no/such' });
  assert.deepEqual(describeFailure(enoent), { exitCode: ExitCode.badInput, line: 'no such file or directory (/no/such): check the path' });
});

test('describeFailure keeps a CliFailure as it was phrased and reports unknown errors with exit 1', () => {
  const failure = new CliFailure(ExitCode.badInput, 'output directory is not empty', '/out', 'extract into a new or empty directory');
  assert.deepEqual(describeFailure(failure), { exitCode: 2, line: 'output directory is not empty (/out): extract into a new or empty directory' });
  const bug = describeFailure(new Error('boom'), 'e.engram');
  assert.equal(bug.exitCode, ExitCode.failedCheck);
  assert.match(bug.line, /^boom \(e\.engram\): /);
});
