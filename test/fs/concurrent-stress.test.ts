// Concurrent stress (the seed's 8): interleaved async calls in one process, worker_threads that
// each open the same engram file, and several OS processes on one engram.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SeededRandom,
  assertBytesEqual,
  createTempEngram,
  expectEmbrError,
  fromUtf8,
  incrementCounter,
  isVersionMismatch,
  seededBytes,
  sha256Hex,
  sleep,
  slowTier,
  utf8,
} from './helpers.js';
import { runCounterProcess, runCounterThread } from './workers.js';

test('writers on different files never conflict when each file has one writer (4 worker threads)', async () => {
  const scratch = await createTempEngram();
  try {
    await scratch.engram.mkdir('/w');
    const workerCount = 4;
    const rounds = slowTier ? 50 : 15;
    const inputs = Array.from({ length: workerCount }, (_, workerIndex) => ({
      mode: 'own-files' as const,
      engramFile: scratch.file,
      paths: [0, 1, 2].map((fileIndex) => `/w/worker${workerIndex}-file${fileIndex}`),
      rounds,
      seed: 100 + workerIndex,
    }));
    const outputs = await Promise.all(inputs.map((input) => runCounterThread(input)));
    const allVersions: number[] = [];
    for (const [workerIndex, output] of outputs.entries()) {
      assert.ok(output.ok, `worker ${workerIndex} failed: ${output.error}`);
      assert.equal(output.commits, rounds * 3);
      for (const path of inputs[workerIndex].paths) {
        const versions = output.versions[path];
        for (let index = 1; index < versions.length; index += 1) {
          assert.ok(versions[index] > versions[index - 1], `${path}: versions must strictly increase`);
        }
        const { data, version } = await scratch.engram.readFile(path);
        assert.equal(version, versions[versions.length - 1], `${path}: last committed version is the stored one`);
        assert.equal(sha256Hex(data), output.lastSha256[path], `${path}: last content`);
        allVersions.push(...versions);
      }
    }
    // Versions are global commit numbers: no two commits share one.
    assert.equal(new Set(allVersions).size, allVersions.length, 'every commit has its own version');
    const entries = await scratch.engram.readdir('/w');
    assert.equal(entries.length, workerCount * 3);
  } finally {
    await scratch.cleanup();
  }
});

test('many writers on one file with the same expected version: exactly one wins, losers get VERSION_MISMATCH with expected and actual', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    const startVersion = await engram.writeFile('/contended', utf8('start'));
    const writerCount = 16;
    const results = await Promise.allSettled(
      Array.from({ length: writerCount }, (_, writer) =>
        engram.writeFile('/contended', utf8(`writer ${writer}`), { expectedVersion: startVersion }),
      ),
    );
    const winners = results.flatMap((result, writer) => (result.status === 'fulfilled' ? [{ writer, version: result.value }] : []));
    assert.equal(winners.length, 1, 'one expected version admits exactly one commit');
    const [winner] = winners;
    for (const result of results) {
      if (result.status === 'fulfilled') continue;
      const error: unknown = result.reason;
      assert.ok(isVersionMismatch(error), `a loser must get VERSION_MISMATCH, got ${String(error)}`);
      assert.equal(error.data.expected, startVersion);
      assert.equal(error.data.actual, winner.version);
    }
    const { data, version } = await engram.readFile('/contended');
    assert.equal(fromUtf8(data), `writer ${winner.writer}`);
    assert.equal(version, winner.version);
  } finally {
    await scratch.cleanup();
  }
});

test('readers during writes (async, worker threads, another process) always see one whole committed version', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    const versionCount = slowTier ? 120 : 40;
    // Multi-chunk contents of varying length, so a read mixing two versions would be detectable.
    const contents = Array.from({ length: versionCount }, (_, index) => seededBytes(`torn:${index}`, 30_000 + index * 1_000));
    const shaToIndex = new Map(contents.map((content, index) => [sha256Hex(content), index]));
    await engram.writeFile('/shared', contents[0]);
    // Readers on other connections too: two worker threads and one OS process.
    const remoteInput = (index: number) => ({
      mode: 'read-verify' as const,
      engramFile: scratch.file,
      paths: ['/shared'],
      rounds: 0,
      seed: index,
      allowedSha256: contents.map((content) => sha256Hex(content)),
      readyPath: `/ready${index}`,
    });
    const remoteReaders = [runCounterThread(remoteInput(0)), runCounterThread(remoteInput(1)), runCounterProcess(remoteInput(2))];
    for (let waitedMs = 0; !(await Promise.all([0, 1, 2].map((index) => engram.exists(`/ready${index}`)))).every(Boolean); waitedMs += 10) {
      assert.ok(waitedMs < 60_000, 'remote readers did not start');
      await sleep(10);
    }
    let writing = true;
    const writer = (async () => {
      try {
        for (let index = 1; index < versionCount; index += 1) await engram.writeFile('/shared', contents[index]);
      } finally {
        writing = false;
      }
    })();
    const readerCount = 6;
    const readers = Array.from({ length: readerCount }, async () => {
      let reads = 0;
      let lastVersion = 0;
      let lastIndex = -1;
      while (writing || reads < 3) {
        const { data, version } = await engram.readFile('/shared');
        const index = shaToIndex.get(sha256Hex(data));
        assert.ok(index !== undefined, `read ${data.length} bytes that match no committed version (torn read)`);
        assert.ok(version >= lastVersion, 'a reader never goes back in versions');
        assert.ok(index >= lastIndex, 'a reader never goes back in content');
        lastVersion = version;
        lastIndex = index;
        reads += 1;
      }
      return reads;
    });
    const readCounts = await Promise.all([writer, ...readers]);
    assert.ok(readCounts.slice(1).every((reads) => typeof reads === 'number' && reads >= 3));
    for (const [index, output] of (await Promise.all(remoteReaders)).entries()) {
      assert.ok(output.ok, `remote reader ${index}: ${output.error}`);
      assert.ok((output.reads ?? 0) >= 1);
    }
    assertBytesEqual((await engram.readFile('/shared')).data, contents[versionCount - 1], 'final content');
  } finally {
    await scratch.cleanup();
  }
});

test('create/delete cycles leave nothing behind in readdir, stats or chunks', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    await engram.mkdir('/cycle');
    const taskCount = 8;
    const cycles = slowTier ? 100 : 25;
    await Promise.all(
      Array.from({ length: taskCount }, async (_, task) => {
        for (let cycle = 0; cycle < cycles; cycle += 1) {
          const path = `/cycle/t${task}-${cycle % 3}`;
          const content = seededBytes(`cycle:${task}:${cycle}`, 1_000 + cycle * 300);
          // Creates of different paths never conflict with each other (the seed's bug).
          await engram.writeFile(path, content, { exclusive: true });
          assertBytesEqual((await engram.readFile(path)).data, content, path);
          await engram.deleteFile(path);
          assert.equal(await engram.exists(path), false);
        }
      }),
    );
    assert.deepEqual(await engram.readdir('/cycle'), []);
    await engram.rmdir('/cycle');
    assert.deepEqual(await engram.readdir('/'), []);
    const stats = await engram.stats();
    assert.equal(stats.files, 0);
    assert.equal(stats.logicalBytes, 0);
    // With no history retained and no snapshots, nothing can reach any chunk any more.
    await engram.compact({ retainCommits: 0 });
    const compacted = await engram.stats();
    assert.equal(compacted.chunks, 0, 'compaction frees every chunk no file, history or snapshot reaches');
    assert.equal(compacted.uniqueChunkBytes, 0);
    assert.ok((await engram.verify()).ok);
  } finally {
    await scratch.cleanup();
  }
});

test('a large file read concurrently gives every reader every byte', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    const content = seededBytes('large-concurrent', slowTier ? 32 << 20 : 8 << 20);
    await engram.writeFile('/large.bin', content);
    const random = new SeededRandom(5);
    const ranges = Array.from({ length: 8 }, () => {
      const offset = random.integer(0, content.length - 1);
      return { offset, length: random.integer(1, 3 << 20) };
    });
    const [whole, ...parts] = await Promise.all([
      Promise.all(Array.from({ length: 6 }, () => engram.readFile('/large.bin'))),
      ...ranges.map((range) => engram.read('/large.bin', range.offset, range.length)),
    ]);
    for (const [reader, result] of whole.entries()) assertBytesEqual(result.data, content, `whole reader ${reader}`);
    for (const [index, result] of parts.entries()) {
      const { offset, length } = ranges[index];
      assertBytesEqual(result.data, content.subarray(offset, offset + length), `range reader ${index} at ${offset}+${length}`);
    }
  } finally {
    await scratch.cleanup();
  }
});

test('many files updated by many worker threads with retry lose no update', async () => {
  const scratch = await createTempEngram();
  try {
    const fileCount = 6;
    const paths = Array.from({ length: fileCount }, (_, index) => `/counter${index}`);
    for (const path of paths) await scratch.engram.writeFile(path, utf8('0'));
    const workerCount = 4;
    const rounds = slowTier ? 40 : 10;
    const outputs = await Promise.all(
      Array.from({ length: workerCount }, (_, worker) =>
        runCounterThread({ mode: 'increment', engramFile: scratch.file, paths, rounds, seed: 200 + worker }),
      ),
    );
    for (const [worker, output] of outputs.entries()) assert.ok(output.ok, `worker ${worker} failed: ${output.error}`);
    for (const path of paths) {
      const { data, version } = await scratch.engram.readFile(path);
      assert.equal(Number(fromUtf8(data)), workerCount * rounds, `${path}: no lost update`);
      const committed = outputs.flatMap((output) => output.versions[path]);
      assert.equal(new Set(committed).size, workerCount * rounds, `${path}: each increment its own version`);
      assert.equal(version, Math.max(...committed));
    }
  } finally {
    await scratch.cleanup();
  }
});

test('versions strictly increase, the stored version is the returned one, and a stale version is refused', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    let previous = 0;
    const seen: number[] = [];
    for (let index = 0; index < 50; index += 1) {
      const version = await engram.writeFile('/v', utf8(`version ${index}`), index === 0 ? {} : { expectedVersion: previous });
      assert.ok(Number.isInteger(version) && version > previous, `version ${version} after ${previous}`);
      assert.equal((await engram.stat('/v')).version, version);
      assert.equal((await engram.readFile('/v')).version, version);
      assert.equal(await engram.currentCommit(), version, 'a version is the global commit number');
      seen.push(version);
      previous = version;
      // An unrelated write in between must not make /v's version stale.
      if (index % 10 === 5) await engram.writeFile(`/other${index}`, utf8('x'));
    }
    for (const stale of [seen[0], seen[25], previous - 1, previous + 1]) {
      const error = await expectEmbrError(engram.writeFile('/v', utf8('stale'), { expectedVersion: stale }), 'VERSION_MISMATCH');
      assert.equal(error.data.expected, stale);
      assert.equal(error.data.actual, previous);
    }
    await expectEmbrError(engram.deleteFile('/v', { expectedVersion: seen[0] }), 'VERSION_MISMATCH');
    await expectEmbrError(engram.write('/v', 0, utf8('S'), { expectedVersion: seen[1] }), 'VERSION_MISMATCH');
    await expectEmbrError(engram.truncate('/v', 1, { expectedVersion: seen[2] }), 'VERSION_MISMATCH');
    assert.equal(fromUtf8((await engram.readFile('/v')).data), 'version 49', 'refused writes changed nothing');
  } finally {
    await scratch.cleanup();
  }
});

test('a retry loop counts to exactly N: async tasks in one process and 4 OS processes on one engram', async () => {
  const scratch = await createTempEngram();
  try {
    const { engram } = scratch;
    // Interleaved async calls in one process: 10 tasks x 10 increments.
    await engram.writeFile('/async-counter', utf8('0'));
    const random = new SeededRandom(9);
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let index = 0; index < 10; index += 1) await incrementCounter(engram, '/async-counter', random);
      }),
    );
    assert.equal(fromUtf8((await engram.readFile('/async-counter')).data), '100');

    // Separate OS processes, each with its own SQLite connection: 4 x 50 increments = exactly 200.
    await engram.writeFile('/counter', utf8('0'));
    const processCount = 4;
    const increments = slowTier ? 200 : 50;
    const outputs = await Promise.all(
      Array.from({ length: processCount }, (_, index) =>
        runCounterProcess({ mode: 'increment', engramFile: scratch.file, paths: ['/counter'], rounds: increments, seed: 300 + index }),
      ),
    );
    for (const [index, output] of outputs.entries()) {
      assert.ok(output.ok, `process ${index} failed: ${output.error}`);
      assert.equal(output.commits, increments);
    }
    const { data, version } = await engram.readFile('/counter');
    assert.equal(Number(fromUtf8(data)), processCount * increments, '0 lost updates across processes');
    const committed = outputs.flatMap((output) => output.versions['/counter']);
    assert.equal(new Set(committed).size, processCount * increments);
    assert.equal(version, Math.max(...committed));
    const history = await engram.history('/counter');
    assert.equal(history.filter((entry) => entry.kind === 'write').length, processCount * increments + 1);
    assert.ok((await engram.verify()).ok);
  } finally {
    await scratch.cleanup();
  }
});
