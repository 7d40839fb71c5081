// Golden payloads pin payload format version 1 and holographic basis version 1: re-encoding the
// fixed inputs must give the stored files byte for byte, and the stored files must decode.
// Regenerate (only for a deliberate format change, with a new version number):
//   EMBRFS_UPDATE_GOLDEN=1 node scripts/run-tests.mjs codec/golden
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createChunkCodec } from './codec.js';
import type { CodecProfileName } from './api.js';

const sha256 = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());
// dist/src/codec -> repository root
const goldenDirectory = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testdata', 'codec', 'v1');
const updating = process.env.EMBRFS_UPDATE_GOLDEN === '1';

function xorshiftBytes(byteLength: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(byteLength);
  let state = seed;
  for (let index = 0; index < byteLength; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

const textLine = '#define EMBRFS_CHUNK_BYTES 4096 /* one chunk: a vector plus a correction */\n';
function textBytes(byteLength: number): Uint8Array {
  let text = '';
  for (let line = 0; text.length < byteLength; line += 1) text += `${line.toString(7)}: ${textLine.slice(line % 17)}`;
  return Uint8Array.from({ length: byteLength }, (_, index) => text.charCodeAt(index));
}

const inputs: Record<string, Uint8Array> = {
  empty: new Uint8Array(0),
  'one-byte': Uint8Array.of(0x9c),
  'zeros-100': new Uint8Array(100),
  'all-bytes': Uint8Array.from({ length: 256 }, (_, index) => index),
  'random-300': xorshiftBytes(300, 0x2545f491),
  'text-4096': textBytes(4096),
};

const configurations: Array<{ name: string; profile: CodecProfileName; groupBytes?: number }> = [
  { name: 'positional', profile: 'positional' },
  { name: 'holographic', profile: 'holographic' }, // default G = 4, K = 32
  { name: 'holographic-g8', profile: 'holographic', groupBytes: 8 }, // the reference's group size
];

for (const { name: configuration, profile, groupBytes } of configurations) {
  test(`${configuration}: re-encoding the golden inputs gives the golden payloads byte for byte, and they decode`, () => {
    const codec = createChunkCodec({ profile, sha256, groupBytes });
    const defaultCodec = createChunkCodec({ profile, sha256 });
    if (updating) mkdirSync(goldenDirectory, { recursive: true });
    for (const [name, input] of Object.entries(inputs)) {
      const file = join(goldenDirectory, `${configuration}-${name}.payload`);
      const encoded = codec.encode(input);
      if (updating) writeFileSync(file, encoded.payload);
      assert.ok(existsSync(file), `missing golden file ${file}`);
      const golden = new Uint8Array(readFileSync(file));
      assert.deepEqual(encoded.payload, golden, `${file} differs from a fresh encoding`);
      assert.deepEqual(codec.decode(golden, sha256(input)), input, `${file} does not decode to its input`);
      // Payloads carry their parameters: a codec with default options reads them too.
      assert.deepEqual(defaultCodec.decode(golden, sha256(input)), input, `${file} with default options`);
    }
  });
}

test('the golden holographic text payloads carry a correction (the vector alone is not exact)', () => {
  for (const configuration of ['holographic', 'holographic-g8']) {
    const golden = new Uint8Array(readFileSync(join(goldenDirectory, `${configuration}-text-4096.payload`)));
    assert.notEqual(golden[6], 0, `${configuration}: correction kind byte`);
  }
});
