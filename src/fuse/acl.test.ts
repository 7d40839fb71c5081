import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { modeFromAccessAcl } from './acl.js';

function acl(entries: Array<[tag: number, permissions: number, id?: number]>, version = 2): Uint8Array {
  const bytes = Buffer.alloc(4 + entries.length * 8);
  bytes.writeUInt32LE(version, 0);
  entries.forEach(([tag, permissions, id], index) => {
    bytes.writeUInt16LE(tag, 4 + index * 8);
    bytes.writeUInt16LE(permissions, 6 + index * 8);
    bytes.writeUInt32LE(id ?? 0xffffffff, 8 + index * 8);
  });
  return bytes;
}

test('a minimal ACL gives back exactly its mode bits, for every mode', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0o777 }), (mode) => {
      const bytes = acl([
        [0x01, (mode >> 6) & 7],
        [0x04, (mode >> 3) & 7],
        [0x20, mode & 7],
      ]);
      return modeFromAccessAcl(bytes) === mode;
    }),
    { numRuns: 600 },
  );
});

test('an ACL with named users, a mask, a wrong version or a bad length is not a mode', () => {
  assert.equal(modeFromAccessAcl(acl([[0x01, 7], [0x02, 5, 1000], [0x04, 5], [0x10, 5], [0x20, 5]])), null);
  assert.equal(modeFromAccessAcl(acl([[0x01, 7], [0x04, 5], [0x20, 5]], 1)), null);
  assert.equal(modeFromAccessAcl(acl([[0x01, 7], [0x04, 5]])), null);
  assert.equal(modeFromAccessAcl(acl([[0x01, 7], [0x01, 7], [0x20, 5]])), null);
  assert.equal(modeFromAccessAcl(new Uint8Array(7)), null);
  assert.equal(modeFromAccessAcl(new Uint8Array(0)), null);
});
