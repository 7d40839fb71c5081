// Large files (the seed's 16): 10 MiB to 128 MiB in the default run (2 GiB with EMBRFS_SLOW=1),
// many content shapes, concurrency on large files, appends and a file of more than 12,800
// chunks. Every byte is verified: whole-buffer comparison or a SHA-256 of the whole content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Engram } from '../../src/index.js';
import {
  archiveLikeBytes,
  compressibleBytes,
  constantBytes,
  counterBytes,
  databaseLikeBytes,
  encryptedLikeBytes,
  imageLikeBytes,
  sequentialBytes,
  textBytes,
  videoLikeBytes,
} from './content.js';
import type { StreamChildInput, StreamChildOutput } from './stream-child.js';
import { SeededRandom, assertBytesEqual, createTempEngram, seededBytes, sha256Hex, slowTier, type TempEngram } from './helpers.js';

const mebibyte = 1024 * 1024;

/** Writes `content`, then checks stat, the returned version and every byte read back. */
async function roundTrip(engram: Engram, path: string, content: Uint8Array): Promise<number> {
  const version = await engram.writeFile(path, content);
  const stat = await engram.stat(path);
  assert.equal(stat.size, content.length, `${path}: stat size`);
  assert.equal(stat.version, version);
  const { data, version: readVersion } = await engram.readFile(path);
  assert.equal(readVersion, version);
  assertBytesEqual(data, content, path);
  return version;
}

/** SHA-256 of everything `createReadStream` yields, and the byte count. */
async function streamDigest(engram: Engram, path: string): Promise<{ sha256: string; byteCount: number }> {
  const hash = createHash('sha256');
  let byteCount = 0;
  for await (const piece of engram.createReadStream(path)) {
    hash.update(piece);
    byteCount += piece.length;
  }
  return { sha256: hash.digest('hex'), byteCount };
}

/** Yields `content` in pieces of `pieceBytes`, as a file being read from disk would. */
async function* piecesOf(content: Uint8Array, pieceBytes: number): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < content.length; offset += pieceBytes) yield content.subarray(offset, offset + pieceBytes);
}

async function withEngram(body: (scratch: TempEngram) => Promise<void>): Promise<void> {
  const scratch = await createTempEngram();
  try {
    await body(scratch);
  } finally {
    await scratch.cleanup();
  }
}

test('a 10 MiB file of zeros round-trips and is stored as at most one chunk', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/zeros.bin', constantBytes(0, 10 * mebibyte));
    const stats = await engram.stats();
    // One stored chunk, or none if zero runs are kept as holes.
    assert.ok(stats.chunks <= 1, `identical chunks are stored once (${stats.chunks} chunks)`);
    assert.equal(stats.logicalBytes, 10 * mebibyte);
  }));

test('a 10 MiB file of 0xFF bytes round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/ones.bin', constantBytes(0xff, 10 * mebibyte));
    assert.equal((await engram.stats()).chunks, 1);
  }));

test('a 10 MiB file of sequential bytes round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/sequential.bin', sequentialBytes(10 * mebibyte));
    await roundTrip(engram, '/counter.bin', counterBytes(10 * mebibyte + 777));
    assert.ok((await engram.verify()).ok);
  }));

test('a 10 MiB file of random bytes round-trips and verifies', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/random.bin', seededBytes('random-10', 10 * mebibyte));
    const report = await engram.verify();
    assert.ok(report.ok, report.problems.join('; '));
    assert.ok(report.checkedBytes >= 10 * mebibyte);
  }));

test('a 10 MiB compressible file round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/compressible.bin', compressibleBytes(11, 10 * mebibyte));
  }));

test('a 10 MiB text file round-trips, including byte ranges across chunk boundaries', () =>
  withEngram(async ({ engram }) => {
    const content = textBytes(12, 10 * mebibyte + 13);
    await roundTrip(engram, '/text.txt', content);
    for (const [offset, length] of [[4095, 2], [4096 * 100 - 1, 4096 * 3 + 2], [content.length - 10, 100], [0, 1]]) {
      assertBytesEqual((await engram.read('/text.txt', offset, length)).data, content.subarray(offset, offset + length), `range ${offset}+${length}`);
    }
  }));

test('a 100 MiB random file streams in and reads back whole and as a stream', () =>
  withEngram(async ({ engram }) => {
    const content = seededBytes('random-100', 100 * mebibyte);
    const version = await engram.writeFileFrom('/big.bin', piecesOf(content, mebibyte));
    assert.equal((await engram.stat('/big.bin')).size, content.length);
    const streamed = await streamDigest(engram, '/big.bin');
    assert.equal(streamed.byteCount, content.length);
    assert.equal(streamed.sha256, sha256Hex(content));
    const { data, version: readVersion } = await engram.readFile('/big.bin');
    assert.equal(readVersion, version);
    assertBytesEqual(data, content, '/big.bin');
  }));

test('a file of more than 12,800 chunks round-trips, also by ranges across chunk boundaries', () =>
  withEngram(async ({ engram }) => {
    const chunkBytes = (await engram.stats()).chunkBytes;
    const chunkCount = 12_802;
    // A counter pattern makes every chunk distinct, so none is deduplicated away.
    const content = counterBytes(chunkCount * chunkBytes - 100);
    await roundTrip(engram, '/many-chunks.bin', content);
    assert.ok((await engram.stats()).chunks >= chunkCount, 'every distinct chunk is stored');
    const random = new SeededRandom(12_800);
    for (let index = 0; index < 20; index += 1) {
      const offset = random.integer(0, content.length - 1);
      const length = random.integer(1, chunkBytes * 5);
      assertBytesEqual((await engram.read('/many-chunks.bin', offset, length)).data, content.subarray(offset, offset + length), `range ${offset}+${length}`);
    }
    const report = await engram.verify();
    assert.ok(report.ok, report.problems.join('; '));
    assert.ok(report.checkedChunks >= chunkCount);
  }));

test('10 concurrent writes of 10 MiB files all read back exactly', () =>
  withEngram(async ({ engram }) => {
    const contents = Array.from({ length: 10 }, (_, index) => seededBytes(`concurrent-10:${index}`, 10 * mebibyte));
    const versions = await Promise.all(contents.map((content, index) => engram.writeFile(`/file${index}.bin`, content)));
    assert.equal(new Set(versions).size, 10, 'each write is its own commit');
    const reads = await Promise.all(contents.map((_, index) => engram.readFile(`/file${index}.bin`)));
    for (const [index, { data }] of reads.entries()) assertBytesEqual(data, contents[index], `/file${index}.bin`);
  }));

test('20 concurrent readers of one 50 MiB file each get every byte', () =>
  withEngram(async ({ engram }) => {
    const content = seededBytes('readers-50', 50 * mebibyte);
    const expectedSha256 = sha256Hex(content);
    await engram.writeFile('/shared.bin', content);
    // Half read whole buffers, half stream, so the 20 readers do not need 1 GiB at once.
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, reader) => {
        if (reader % 2 === 0) {
          const { data } = await engram.readFile('/shared.bin');
          return { sha256: sha256Hex(data), byteCount: data.length };
        }
        return streamDigest(engram, '/shared.bin');
      }),
    );
    for (const [reader, result] of results.entries()) {
      assert.equal(result.byteCount, content.length, `reader ${reader} length`);
      assert.equal(result.sha256, expectedSha256, `reader ${reader} content`);
    }
  }));

test('an image-like file (BMP with gradient and noise) round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/photo.bmp', imageLikeBytes(1, 10 * mebibyte));
  }));

test('a video-like file (frames with small deltas) round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/clip.mpg', videoLikeBytes(2, 10 * mebibyte + 5));
  }));

test('an archive-like file (tar headers and gzip members) round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/bundle.tar.gz', archiveLikeBytes(3, 10 * mebibyte));
  }));

test('an encrypted-like file round-trips', () =>
  withEngram(async ({ engram }) => {
    await roundTrip(engram, '/secret.enc', encryptedLikeBytes(4, 10 * mebibyte - 3));
  }));

test('a database-like file (4 KiB pages of records) round-trips and survives in-place page updates', () =>
  withEngram(async ({ engram }) => {
    const content = databaseLikeBytes(5, 10 * mebibyte);
    await roundTrip(engram, '/app.db', content);
    // Update pages in place as a database engine would: a 4 KiB write at a page offset.
    const random = new SeededRandom(55);
    for (let update = 0; update < 50; update += 1) {
      const page = random.integer(0, content.length / 4096 - 1);
      const replacement = seededBytes(`page:${update}`, 4096);
      await engram.write('/app.db', page * 4096, replacement);
      content.set(replacement, page * 4096);
    }
    assertBytesEqual((await engram.readFile('/app.db')).data, content, '/app.db after page updates');
    assert.equal((await engram.stat('/app.db')).size, content.length);
  }));

test('50 appends to a log file build exactly the concatenation', () =>
  withEngram(async ({ engram }) => {
    const appends = Array.from({ length: 50 }, (_, index) => textBytes(1000 + index, 100_000 + index * 1_000));
    const total = appends.reduce((sum, part) => sum + part.length, 0);
    const expected = new Uint8Array(total);
    let size = 0;
    let lastVersion = 0;
    for (const [index, part] of appends.entries()) {
      const version = index === 0 ? await engram.writeFile('/app.log', part) : await engram.write('/app.log', size, part);
      assert.ok(version > lastVersion);
      lastVersion = version;
      expected.set(part, size);
      size += part.length;
      assert.equal((await engram.stat('/app.log')).size, size);
    }
    assertBytesEqual((await engram.readFile('/app.log')).data, expected, '/app.log');
    assert.equal((await engram.history('/app.log')).filter((entry) => entry.kind === 'write').length, 50);
    const report = await engram.verify();
    assert.ok(report.ok, report.problems.join('; '));
  }));

test(`a ${slowTier ? '2 GiB' : '128 MiB'} file streams in and out of a separate process under 300 MB peak RSS`, async () => {
  const scratch = await createTempEngram();
  try {
    await scratch.engram.close();
    const input: StreamChildInput = {
      engramFile: join(scratch.directory, 'stream.engram'),
      totalBytes: slowTier ? 2 * 1024 * mebibyte : 128 * mebibyte,
      pieceBytes: mebibyte,
    };
    const output = await runStreamChild(input);
    assert.ok(output.ok, `stream child failed: ${output.error}`);
    assert.equal(output.readBytes, input.totalBytes);
    assert.equal(output.readSha256, output.writtenSha256, 'every byte streamed out equals what was streamed in');
    const figures = `peak RSS ${(output.maxRssBytes / 1e6).toFixed(0)} MB (baseline ${(output.baselineRssBytes / 1e6).toFixed(0)} MB), write ${(input.totalBytes / 1e6 / output.writeSeconds).toFixed(1)} MB/s, read ${(input.totalBytes / 1e6 / output.readSeconds).toFixed(1)} MB/s`;
    console.log(`streaming ${input.totalBytes} bytes: ${figures}`);
    // The floor: a 2 GiB file in and out under 300 MB peak RSS. A smaller file must fit too.
    assert.ok(output.maxRssBytes < 300e6, `streaming must use bounded memory: ${figures}`);
  } finally {
    await scratch.cleanup();
  }
});

/** Runs `stream-child.js` in its own process and parses its one-line report. */
function runStreamChild(input: StreamChildInput): Promise<StreamChildOutput> {
  return new Promise((resolve, reject) => {
    const script = new URL('./stream-child.js', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.once('error', reject);
    child.once('close', (exitCode) => {
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as StreamChildOutput);
      } catch {
        reject(new Error(`stream child exited with ${exitCode} without a report: ${stderr.slice(-2000)}`));
      }
    });
  });
}
