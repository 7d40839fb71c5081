import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Sha256, sha256 } from './sha256.js';

/** EMBRFS_SLOW=1 runs every property 20 times as many cases (the default run stays fast). */
const RUNS_SCALE = process.env.EMBRFS_SLOW === '1' ? 20 : 1;

function nodeSha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

test('sha256 gives the FIPS 180-4 digests when given the standard test messages', () => {
  const encoder = new TextEncoder();
  assert.equal(hex(sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(hex(sha256(encoder.encode('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(
    hex(sha256(encoder.encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  assert.equal(hex(sha256(new Uint8Array(1_000_000).fill(0x61))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('sha256 matches node:crypto when given every length from 0 to 200 bytes', () => {
  for (let length = 0; length <= 200; length += 1) {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index += 1) bytes[index] = (index * 131 + length) & 0xff;
    assert.deepEqual(sha256(bytes), nodeSha256(bytes), `length ${length}`);
  }
});

test('sha256 matches node:crypto when given random bytes fed in random pieces', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(130), { maxLength: 8 }), (bytes, cuts) => {
      const hash = new Sha256();
      let offset = 0;
      for (const cut of cuts) {
        const end = Math.min(bytes.length, offset + cut);
        hash.update(bytes.subarray(offset, end));
        offset = end;
      }
      hash.update(bytes.subarray(offset));
      assert.deepEqual(hash.digest(), nodeSha256(bytes));
    }),
    { numRuns: 300 * RUNS_SCALE },
  );
});

test('Sha256 refuses update and digest after digest until reset, then hashes a new message', () => {
  const hash = new Sha256().update(Uint8Array.of(1, 2, 3));
  hash.digest();
  assert.throws(() => hash.update(Uint8Array.of(4)), TypeError);
  assert.throws(() => hash.digest(), TypeError);
  hash.reset().update(Uint8Array.of(4));
  assert.deepEqual(hash.digest(), nodeSha256(Uint8Array.of(4)));
});

test('Sha256.digestInto writes at the offset and refuses an output that is too small', () => {
  const out = new Uint8Array(40).fill(0xee);
  new Sha256().update(Uint8Array.of(9)).digestInto(out, 4);
  assert.deepEqual(out.subarray(4, 36), nodeSha256(Uint8Array.of(9)));
  assert.deepEqual([...out.subarray(0, 4), ...out.subarray(36)], [0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee]);
  assert.throws(() => new Sha256().digestInto(new Uint8Array(31)), RangeError);
});
