import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatTimeNs, toJson } from './output.js';

test('toJson writes bigint nanoseconds as decimal strings without losing digits', () => {
  assert.equal(toJson({ mtimeNs: 1_700_000_000_123_456_789n, size: 3 }), '{"mtimeNs":"1700000000123456789","size":3}');
});

test('formatTimeNs shows UTC with all nine fraction digits', () => {
  assert.equal(formatTimeNs(1_700_000_000_000_000_007n), '2023-11-14 22:13:20.000000007');
});

test('formatBytes uses decimal units like restic', () => {
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1500), '1.50 kB');
  assert.equal(formatBytes(250_000_000), '250.0 MB');
});
